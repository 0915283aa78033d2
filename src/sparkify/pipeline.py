"""One run: list the sources, keep what the ledger lacks, compute a batch, enforce the reject limit, land it.

Every run goes through `run`, whatever computes it (the DuckDB or Spark
engine, or the in-warehouse engine inside a SQL target) and wherever it
lands. The engine is chosen from what the target declares
(`Capabilities.engines`); nothing is written before the batch is complete
and within the reject limit, and the target then lands it in one atomic
step, with the run's summary.
"""

from __future__ import annotations

import importlib
import json
import time

from sparkify.batch import Batch, RejectLimit, Run, WriteResult, summarize
from sparkify.config import ConfigError
from sparkify.engines.base import Engine
from sparkify.errors import disk_full
from sparkify.progress import Progress
from sparkify.sources import list_files, new_files
from sparkify.targets.base import Step, Target, TargetError

ENGINES = {
    "duckdb": ("sparkify.engines.duckdb", "DuckDBEngine", None),
    "spark": ("sparkify.engines.spark", "SparkEngine", "spark"),
    "warehouse": ("sparkify.engines.warehouse", "WarehouseEngine", None),
}
"""Engine name -> (module, class, the extra that installs what it imports). A new engine is one line here."""


def open_engine(name: str | None, target: Target, options: dict | None = None) -> Engine:
    """The engine `name` (default: the target's first) if the target declares it may compute for it."""
    engines = target.capabilities.engines
    name = name or engines[0]
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}: {', '.join(ENGINES)}")
    if name not in engines:
        raise ConfigError(f"{target.describe()} cannot be computed by the {name} engine; "
                          f"it takes {' or '.join(engines)}")
    module, cls, extra = ENGINES[name]
    try:
        engine_cls = getattr(importlib.import_module(module), cls)
    except ModuleNotFoundError as exc:
        hint = f": pip install 'sparkify[{extra}]'" if extra else ""
        raise ConfigError(f"the {name} engine needs {exc.name}{hint}") from None
    return engine_cls(options or {})


def _list(target: Target, songs: str, logs: str, progress: Progress) -> tuple[list, list] | None:
    """Every file of both sources, before the target is touched (a missing source changes nothing)."""
    if not target.capabilities.incremental:
        return None
    with progress.stage("list"):
        return list_files(songs), list_files(logs)


def _plan_run(target: Target, songs: str, logs: str, listed: tuple[list, list] | None, full_refresh: bool) -> Run:
    """The run's files: everything listed, less what the target's ledger holds (within its session).
    A target without a ledger rebuilds from the whole sources, which the engine reads itself."""
    if listed is None:
        return Run(songs, logs, [], [], full_refresh=True, listed=False)
    all_songs, all_logs = listed
    ledger = {} if full_refresh else target.ledger()
    song_files, log_files = new_files(all_songs, ledger), new_files(all_logs, ledger)
    return Run(songs, logs, song_files, log_files, full_refresh=full_refresh,
               skipped={"songs": len(all_songs) - len(song_files), "logs": len(all_logs) - len(log_files)})


def _engine_for(plan: Run, engine: Engine, target: Target) -> Engine:
    """The engine that computes `plan`: the one asked for, unless it is slow to start and there is no new file
    to read. The batch is then empty whatever computes it, and the DuckDB engine makes it at once where Spark
    would start a JVM and run its jobs over nothing (a scheduled run that finds nothing new)."""
    nothing_new = plan.listed and not plan.song_files and not plan.log_files
    if nothing_new and engine.slow_to_start and "duckdb" in target.capabilities.engines:
        return open_engine("duckdb", target)
    return engine


def run(
    target: Target,
    songs: str,
    logs: str,
    full_refresh: bool = False,
    max_rejects: RejectLimit = RejectLimit(),
    progress: Progress | None = None,
    engine_name: str | None = None,
    engine_options: dict | None = None,
) -> dict:
    """Run the pipeline once and return its summary (also stored in the target)."""
    progress = progress or Progress(quiet=True)
    started = time.perf_counter()
    engine = open_engine(engine_name, target, engine_options)
    describe = target.describe(), engine.describe(target)

    def summary_of(batch: Batch, result: WriteResult, tables: dict | None) -> dict:
        timings = {**progress.timings, "total": round(time.perf_counter() - started, 3)}
        return summarize(batch, result, *describe, timings, tables)

    listed = _list(target, songs, logs, progress)
    with target.session():
        plan = _plan_run(target, songs, logs, listed, full_refresh)
        with _engine_for(plan, engine, target).compute(target, plan, progress) as batch:
            max_rejects.enforce(batch)
            with progress.stage("load"):
                try:
                    result = target.write(batch, plan.full_refresh,
                                          lambda r: json.dumps(summary_of(batch, r, None)))
                except OSError as exc:  # a target writing files itself (the lake): the OS names no file
                    if not disk_full(exc):
                        raise
                    raise TargetError(f"no space left on device writing the run's files into {describe[0]}: the "
                                      "run stopped and published nothing. Free space on that disk and run again") \
                        from exc
        tables = target.row_counts()
    return summary_of(batch, result, tables)


def statements(target: Target, songs: str, logs: str, full_refresh: bool = False,
               engine_name: str | None = None) -> list[Step]:
    """Every statement a run over all listed files would send (--dry-run): the target is not contacted."""
    if not target.capabilities.dry_run:
        raise TargetError(f"--dry-run needs a SQL target, not {target.describe()}")
    engine = open_engine(engine_name, target)
    plan = Run(songs, logs, list_files(songs), list_files(logs), full_refresh=full_refresh)
    return target.schema_plan(full_refresh) + engine.plan(target, plan) + target.write_plan(engine.host(target))
