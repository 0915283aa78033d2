"""The Python API: run, check and query from Python, as the command line does.

    import sparkify

    summary = sparkify.run("data/song_data", "data/log_data", target="star.duckdb", max_rejects="1%")
    print(summary.tables["songplays"], summary.accounting["events"]["rejected"])
    failed = [c for c in sparkify.check("star.duckdb") if not c.passed]
    top = sparkify.query("top_songs", target="star.duckdb").to_pandas()

Settings resolve as the command line's do (`config.resolve`): an argument
left at None is taken from the SPARKIFY_* environment, then from
sparkify.toml (or `config=`), then the default. Every failure is a
`sparkify.SparkifyError` (ConfigError, SourceError, TargetError,
RejectLimitExceeded, ChecksFailed, EmptyRun), each with an `exit_code`.
The command line (cli.py) is a thin layer over these functions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sparkify import config as settings_
from sparkify import pipeline, quality
from sparkify.batch import RejectLimit
from sparkify.errors import ChecksFailed, ConfigError, EmptyRun
from sparkify.progress import Progress
from sparkify.quality import CheckResult
from sparkify.queries import load_queries, sql_for
from sparkify.targets import open_target
from sparkify.targets.base import Step, Target, TargetError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["CheckResult", "RunSummary", "check", "create_schema", "describe", "queries", "query", "run",
           "schema_statements", "statements"]

log = logging.getLogger("sparkify")


@dataclass(frozen=True)
class RunSummary:
    """What a run did: the same fields, with the same values, as `sparkify run --json`."""

    run_id: str
    target: str
    """Where the star went, safe to print (a password shows as ***)."""
    engine: str
    files: dict[str, dict[str, int]]
    """{"songs": {"new": N, "skipped": M}, "logs": {...}}: files read, and files already loaded and skipped."""
    accounting: dict[str, dict[str, Any]]
    """{"songs": {...}, "events": {...}}: read = loaded + filtered + duplicate + rejected, for each."""
    tables: dict[str, int] | None
    """Rows in each table of the star after the run."""
    timings: dict[str, float]
    """Seconds per stage, and "total"."""

    @classmethod
    def from_dict(cls, summary: dict) -> RunSummary:
        return cls(**{name: summary[name] for name in cls.__dataclass_fields__})

    def to_dict(self) -> dict:
        """Exactly the object `sparkify run --json` prints."""
        return asdict(self)

    @property
    def loaded(self) -> int:
        """Records loaded: songs and events together."""
        return sum(int(a.get("loaded", 0)) for a in self.accounting.values())

    @property
    def new_files(self) -> int:
        return sum(f["new"] for f in self.files.values())

    @property
    def empty(self) -> bool:
        """The run loaded no record although the sources held no file at all, or it read new files.

        A run that only found files it had loaded before is not empty: it had nothing new to do."""
        return self.loaded == 0 and (self.new_files > 0 or sum(f["skipped"] for f in self.files.values()) == 0)


@contextmanager
def _opened(target: str | None, config: str | None, **cli: Any) -> Iterator[tuple[Target, dict]]:
    """The settings (command-line values in `cli`) and the target they name, closed afterwards."""
    with settings_.given(config):
        settings = settings_.resolve({"target": target, **cli}, config)
        tgt = open_target(settings["target"], settings["target_options"])
        try:
            yield tgt, settings
        finally:
            tgt.close()


def _sources(settings: dict) -> tuple[str, str]:
    for key in ("songs", "logs"):
        if not settings.get(key):
            raise ConfigError(f"--{key} is required (or set {key} in sparkify.toml or "
                              f"{settings_.ENV_PREFIX}{key.upper()})")
    return str(settings["songs"]), str(settings["logs"])


def run(
    songs: str | None = None,
    logs: str | None = None,
    target: str | None = None,
    engine: str | None = None,
    full_refresh: bool | None = None,
    max_rejects: int | str | None = None,
    config: str | None = None,
    progress: bool | Progress = False,
    fail_on_empty: bool | None = None,
    memory_limit: str | None = None,
    spark_master: str | None = None,
) -> RunSummary:
    """Load the sources' new files into the target's star schema, whole or not at all.

    songs, logs: a directory (searched recursively for *.json), a glob, or s3://bucket/prefix.
    target: a .duckdb path or duckdb://path (default sparkify.duckdb), postgresql://..., redshift://...,
        lake://path or s3://bucket/prefix.
    engine: "duckdb", "spark" or "warehouse" (default: the target's own first choice).
    full_refresh: rebuild the target from every file, loaded before or not.
    max_rejects: a number of records (5) or a percentage ("1%"): above it the run raises
        RejectLimitExceeded and writes nothing.
    config: a sparkify.toml to read instead of ./sparkify.toml (or SPARKIFY_CONFIG).
    progress: True shows each stage on stderr (or pass a sparkify.progress.Progress).
    fail_on_empty: raise EmptyRun (with the summary) when the run loads no record.
    memory_limit: DuckDB's memory limit ("600MB", "1.5GiB", "80%"); beyond it DuckDB spills to disk.
    spark_master: the Spark master URL for engine="spark" (default local[2]).

    Arguments left at None come from SPARKIFY_* variables, then the config file, then the defaults.
    """
    cli = {"songs": songs, "logs": logs, "engine": engine, "full_refresh": full_refresh,
           "max_rejects": max_rejects, "memory_limit": memory_limit, "fail_on_empty": fail_on_empty}
    with _opened(target, config, **cli) as (tgt, s):
        songs, logs = _sources(s)
        tgt_options = s["target_options"]
        tgt_options["memory_limit"] = s["memory_limit"]
        engine_options = {**s["engine_options"], **({"master": spark_master} if spark_master else {})}
        shown = progress if isinstance(progress, Progress) else Progress(quiet=not progress)
        summary = RunSummary.from_dict(pipeline.run(
            tgt, songs, logs,
            full_refresh=s["full_refresh"],
            max_rejects=RejectLimit.parse(s["max_rejects"]),
            progress=shown,
            engine_name=s.get("engine"),
            engine_options=engine_options,
        ))
    if summary.empty:
        message = f"run {summary.run_id} loaded no record: " + (
            "the sources hold no files" if summary.new_files == 0
            else "every record read was filtered, a duplicate or rejected")
        if s["fail_on_empty"]:
            raise EmptyRun(message, summary)
        log.warning("%s", message)
    return summary


def check(target: str | None = None, config: str | None = None, raise_on_failure: bool = False) -> list[CheckResult]:
    """Run the data-quality checks on a target: one CheckResult (name, failures, passed) per check.

    With raise_on_failure, a failed check raises ChecksFailed (its `results` hold every result)."""
    with _opened(target, config) as (tgt, _):
        results = quality.run_checks(tgt)
    failed = [r for r in results if not r.passed]
    if failed and raise_on_failure:
        raise ChecksFailed(f"{len(failed)} of {len(results)} checks failed: "
                           + "; ".join(f"{r.name} ({r.failures:,})" for r in failed), results)
    return results


def describe(target: str | None = None, config: str | None = None) -> tuple[str, bool]:
    """The target as it is shown (no secrets), and whether it enforces its keys itself."""
    with _opened(target, config) as (tgt, _):
        return tgt.describe(), tgt.capabilities.enforces_constraints


def queries() -> dict[str, str]:
    """The packaged queries: name -> one-line description."""
    return {name: description for name, (description, _) in load_queries().items()}


def query(name_or_sql: str, target: str | None = None, config: str | None = None) -> pa.Table:
    """A packaged query's rows (see queries()) or any SELECT's, as a pyarrow Table.

    `.to_pandas()` makes it a pandas DataFrame, `polars.from_arrow(table)` a polars one.
    A single word that names no packaged query raises ConfigError with the nearest name."""
    import pyarrow as pa

    sql = sql_for(name_or_sql)
    with _opened(target, config) as (tgt, _):
        columns, rows = tgt.query(sql)
        rows = list(rows)
    values = list(zip(*rows)) if rows else [() for _ in columns]
    return pa.Table.from_arrays([pa.array(list(v)) for v in values], names=list(columns))


def create_schema(target: str | None = None, reset: bool = False, config: str | None = None) -> str:
    """Create the star's tables if missing (with reset: drop and recreate them). Returns the target's description."""
    with _opened(target, config) as (tgt, _):
        tgt.create_schema(reset=reset)
        return tgt.describe()


def schema_statements(target: str | None = None, reset: bool = False, config: str | None = None) -> list[Step]:
    """The statements create_schema would send to a SQL target; nothing is run."""
    with _opened(target, config) as (tgt, _):
        if not tgt.capabilities.dry_run:
            raise TargetError(f"--dry-run needs a SQL target, not {tgt.describe()}")
        return tgt.schema_plan(reset)


def statements(songs: str | None = None, logs: str | None = None, target: str | None = None,
               engine: str | None = None, full_refresh: bool | None = None,
               config: str | None = None) -> list[Step]:
    """Every statement a run would send to a SQL target (PostgreSQL, Redshift); nothing is run."""
    with _opened(target, config, songs=songs, logs=logs, engine=engine, full_refresh=full_refresh) as (tgt, s):
        songs, logs = _sources(s)
        return pipeline.statements(tgt, songs, logs, s["full_refresh"], s.get("engine"))
