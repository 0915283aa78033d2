"""The in-warehouse run: staging tables in, the star computed and merged by SQL inside the target.

Redshift always runs this way; PostgreSQL does with --pushdown (or
`?pushdown=true` on its URL). The steps after staging are the same SQL
text on both (targets/redshift_sql.py); how the staging tables are filled
differs (COPY from S3 on Redshift, COPY FROM STDIN here). Everything from
staging to the run row is one transaction. --dry-run prints the statements
of any SQL target instead of running them.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from rich.console import Console

from sparkify.pipeline import RejectLimit, RejectLimitExceeded
from sparkify.progress import Progress
from sparkify.schema import RUNS, STAR, STATE, create_table_sql
from sparkify.sources import SourceFile, list_files, new_files
from sparkify.targets import open_target as open_plain_target
from sparkify.targets import pushdown_stage
from sparkify.targets import redshift_sql as sql
from sparkify.targets.base import Target, TargetError
from sparkify.targets.postgres import DIALECT, PostgresTarget
from sparkify.targets.sqlmerge import SqlMerge

log = logging.getLogger(__name__)

TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Step:
    """One statement of a run, with its parameters (never pasted into the text)."""

    purpose: str
    sql: str
    params: tuple | None = None


def star_steps(dialect: sql.SqlDialect, names: sql.Names) -> list[Step]:
    return [Step(p, s) for p, s in sql.star_statements(dialect, names)]


def merge_steps(names: sql.Names) -> list[Step]:
    return [Step(p, s) for p, s in sql.merge_statements(names)]


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


@dataclass
class RunContext:
    """What one in-warehouse run knows before it touches the warehouse."""

    run_id: str
    songs: str
    logs: str
    song_files: list[SourceFile]
    log_files: list[SourceFile]
    skipped: dict[str, int]
    started: datetime
    clock: float


def run_info_step(ctx: RunContext) -> Step:
    return Step("run", f"INSERT INTO {sql.RUN_INFO} (run_id, songs_source, logs_source) VALUES (%s, %s, %s)",
                (ctx.run_id, ctx.songs, ctx.logs))


def finish(cur, ctx: RunContext, dialect: sql.SqlDialect, names: sql.Names, target: Target,
           max_rejects: RejectLimit, progress: Progress) -> dict:
    """From filled staging tables to a merged star and its run row, on `cur` inside the run's transaction."""
    with progress.stage("star"):
        for step in star_steps(dialect, names):
            cur.execute(step.sql)
    songs_read, songs_rejected, songs_valid, songs_loaded, ev_read, ev_rejected, plays = \
        cur.execute(sql.ACCOUNTING).fetchone()
    filtered = {page: int(n) for page, n in cur.execute(sql.FILTERED).fetchall()}
    rejected, read = songs_rejected + ev_rejected, songs_read + ev_read
    if max_rejects.exceeded(rejected, read):
        examples = "\n  ".join(f"{p}:{'?' if n is None else n}: {r}" for p, n, r in cur.execute(
            "SELECT source_file, line, reason FROM b_rejects ORDER BY kind, source_file, line LIMIT 10").fetchall())
        raise RejectLimitExceeded(f"{rejected} of {read} records rejected, over the limit; nothing was written. "
                                  f"First rejects:\n  {examples}")
    inserted = 0
    with progress.stage("load"):
        for step in merge_steps(names):
            cur.execute(step.sql)
            if step.purpose == "songplays":
                inserted = cur.rowcount
    summary = {
        "run_id": ctx.run_id,
        "target": target.describe(),
        "engine": f"{dialect.name} (in-warehouse)",
        "files": {"songs": {"new": len(ctx.song_files), "skipped": ctx.skipped["songs"]},
                  "logs": {"new": len(ctx.log_files), "skipped": ctx.skipped["logs"]}},
        "accounting": {
            "songs": {"read": songs_read, "loaded": songs_loaded, "rejected": songs_rejected,
                      "duplicate": songs_valid - songs_loaded},
            "events": {"read": ev_read, "rejected": ev_rejected, "loaded": inserted,
                       "duplicate": plays - inserted, "filtered": sum(filtered.values()),
                       "filtered_by_page": filtered},
        },
        "tables": None,
        "timings": {**progress.timings, "total": round(time.perf_counter() - ctx.clock, 3)},
    }
    cur.execute(f"INSERT INTO {names(RUNS)} (run_id, started_at, finished_at, summary) VALUES (%s, %s, %s, %s)",
                (ctx.run_id, ctx.started, datetime.now(UTC), json.dumps(summary)))
    return summary


def prepare(target, songs: str, logs: str, full_refresh: bool, progress: Progress) -> RunContext:
    """List the sources and keep the files the target's ledger does not hold (within its session)."""
    clock = time.perf_counter()
    with progress.stage("list"):
        all_songs, all_logs = list_files(songs), list_files(logs)
    ledger = {} if full_refresh else target.ledger()
    song_files, log_files = new_files(all_songs, ledger), new_files(all_logs, ledger)
    return RunContext(new_run_id(), songs, logs, song_files, log_files,
                      {"songs": len(all_songs) - len(song_files), "logs": len(all_logs) - len(log_files)},
                      datetime.now(UTC), clock)


def table_counts(cur, names: sql.Names) -> dict[str, int]:
    return {t.name: cur.execute(f"SELECT COUNT(*) FROM {names(t)}").fetchone()[0] for t in STAR}


class PushdownPostgresTarget(PostgresTarget):
    """PostgreSQL computing the star itself, from staging tables filled by COPY FROM STDIN."""

    name = "postgres-pushdown"
    pushdown = True

    @classmethod
    def from_url(cls, url: str, options: dict) -> PushdownPostgresTarget:
        return super().from_url(strip_pushdown(url), options)

    def describe(self) -> str:
        return super().describe() + " (in-warehouse)"

    @property
    def names(self) -> sql.Names:
        return sql.Names(self.schema)

    def setup_steps(self) -> list[Step]:
        return [Step("functions", s) for s in sql.text_functions(sql.POSTGRES)] + \
               [Step("staging", s) for s in sql.staging_ddl()]

    def run(self, songs: str, logs: str, full_refresh: bool = False, max_rejects: RejectLimit = RejectLimit(),
            progress: Progress | None = None) -> dict:
        progress = progress or Progress(quiet=True)
        with self._locked() as con:
            try:
                self._con = con
                self._ensure(con)
                ctx = prepare(self, songs, logs, full_refresh, progress)
                with progress.stage("stage"):
                    events = pushdown_stage.stage_events(ctx.log_files)
                    song_rows = pushdown_stage.stage_songs(ctx.song_files)
                with con.transaction():
                    cur = con.cursor()
                    if full_refresh:
                        self._drop(cur)
                        self._ensure(con)
                    for step in self.setup_steps() + [run_info_step(ctx)]:
                        cur.execute(step.sql, step.params)
                    files = [("song", f.path, f) for f in ctx.song_files] + [("log", f.path, f) for f in ctx.log_files]
                    pushdown_stage.copy_in(cur, events, song_rows, files)
                    summary = finish(cur, ctx, sql.POSTGRES, self.names, self, max_rejects, progress)
                summary["tables"] = table_counts(con.cursor(), self.names)
                return summary
            except psycopg.Error as exc:
                raise TargetError(f"loading into {self.describe()} failed, nothing was written: "
                                  f"{self._scrub(exc)}") from None
            finally:
                self._con = None


def strip_pushdown(url: str) -> str:
    """The URL without its `pushdown` option (libpq would refuse it)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "pushdown"]
    return urlunsplit(parts._replace(query=urlencode(query)))


def wants_pushdown(url: str, options: dict, flag: bool) -> bool:
    asked = dict(parse_qsl(urlsplit(url).query)).get("pushdown", options.get("pushdown", ""))
    return flag or str(asked).lower() in TRUE


# -- the command line's view ---------------------------------------------------------


class DryRun:
    """A SQL target whose run and schema print their statements instead of running them."""

    def __init__(self, target: Target, console: Console | None = None):
        self.target = target
        self.console = console or Console(soft_wrap=True)

    def describe(self) -> str:
        return self.target.describe() + " (dry run)"

    def statements(self, reset: bool) -> list[Step]:
        if hasattr(self.target, "ddl_steps"):
            return self.target.ddl_steps(reset)
        if isinstance(self.target, PostgresTarget):
            drops = [Step("drop", f"DROP TABLE IF EXISTS {self.target.table(t)}") for t in reversed(STAR + STATE)]
            create = [Step("schema", f"CREATE SCHEMA IF NOT EXISTS {DIALECT.quote(self.target.schema)}")]
            tables = [Step("table", create_table_sql(t, DIALECT, self.target.schema)) for t in STAR + STATE]
            keys = [Step("key", k.create) for k in self.target.keys() if not k.name.endswith("_pkey")]
            return (drops if reset else []) + create + tables + keys
        raise TargetError(f"--dry-run needs a SQL target, not {self.target.describe()}")

    def create_schema(self, reset: bool = False) -> None:
        self.print(self.statements(reset))

    def run(self, songs: str, logs: str, full_refresh: bool = False, **_: object) -> None:
        """The statements of a run over every listed file (no ledger is read: nothing is contacted)."""
        target = self.target
        if hasattr(target, "plan"):
            self.print(target.plan(songs, logs, full_refresh))
        elif isinstance(target, PushdownPostgresTarget):
            steps = self.statements(full_refresh) + target.setup_steps()
            steps.append(Step("stage", "-- COPY staging_events, staging_songs, staging_load_errors, "
                                       "staging_files FROM STDIN (the raw files, parsed as COPY JSON would)"))
            self.print(steps + star_steps(sql.POSTGRES, target.names) + merge_steps(target.names))
        elif isinstance(target, PostgresTarget):
            steps = [Step("stage", "-- the DuckDB engine computes the batch; each b_* table is COPied "
                                   "FROM STDIN (FORMAT BINARY) into a temporary table of that name")]
            steps += [Step(p, s) for p, s in SqlMerge(DIALECT.quote, target.table, target.stage).statements()]
            self.print(self.statements(full_refresh) + steps)
        else:
            raise TargetError(f"--dry-run needs a SQL target, not {target.describe()}")

    def print(self, steps: list[Step]) -> None:
        for step in steps:
            text = step.sql if step.sql.startswith("--") else step.sql + ";"
            if step.params:
                text += f"  -- parameters: {', '.join(map(repr, step.params))}"
            self.console.print(text, markup=False, highlight=False)

    def close(self) -> None:
        self.target.close()


def open_target(url: str, options: dict, pushdown: bool = False, dry_run: bool = False):
    """The target of the command line: the in-warehouse PostgreSQL when asked, wrapped for --dry-run."""
    if url.startswith(("postgresql://", "postgres://")) and wants_pushdown(url, options, pushdown):
        target: Target = PushdownPostgresTarget.from_url(url, options)
    else:
        target = open_plain_target(url, options)
    return DryRun(target) if dry_run else target


def runner(target) -> Callable[..., dict | None] | None:
    """The target's own run (in-warehouse or dry), or None for the pipeline's."""
    if isinstance(target, DryRun) or getattr(target, "pushdown", False):
        return lambda _target, songs, logs, **kw: target.run(songs, logs, **{
            k: v for k, v in kw.items() if k in ("full_refresh", "max_rejects", "progress")})
    return None

