"""The embedded default: a DuckDB database file.

The engine computes inside this file's own connection, so a batch reaches
the star without a copy; the merge runs in one DuckDB transaction, which the
write-ahead log makes atomic against a crash or a kill, whatever the batch's
size: the fact-sized tables carry no index (UNKEYED), so what a transaction
holds in memory does not grow with them. A run holds `<file>.lock` (flock)
from start to end, so a second run waits for it, and a process that holds
the file without that lock (a notebook, say) is told apart from a run.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from urllib.parse import parse_qsl

import duckdb

from sparkify.batch import DUCKDB, DuckDBBatch, SummaryFn, WriteResult, configure
from sparkify.errors import disk_full
from sparkify.schema import (
    ALL_TABLES,
    DUCKDB_DIALECT,
    PLAY_KEYS,
    RUNS,
    SONG_RECORDS,
    SONGPLAYS,
    STAR,
    STATE,
    TIME,
    Table,
    create_table_sql,
)
from sparkify.targets.base import VERSIONED_STATE, Capabilities, DuckDBHost, Target, TargetError, outdated_state
from sparkify.targets.sqlmerge import SqlMerge

log = logging.getLogger(__name__)

RUN_INSERT = "INSERT INTO {table} VALUES (?, now(), now(), ?)"
"""The run's row in _sparkify_runs: id, started, finished, summary."""

DIALECT = replace(DUCKDB_DIALECT, name="duckdb-file", enforce_foreign_keys=False)
"""The file declares no foreign keys: DuckDB would index their columns in fact-sized tables (see UNKEYED)."""

UNKEYED: dict[Table, str] = {SONGPLAYS: "b_songplays", TIME: "b_time", PLAY_KEYS: "b_play_keys"}
"""Fact-sized tables without a declared key (and the batch table their rows come from): DuckDB holds the
index of every key a transaction touches in memory. Their rows are added by anti-join on the key under the
run's lock, and `verify` proves the keys and references over each run's rows before it commits;
`sparkify check` proves them afterwards."""


class DuckDBTarget(DuckDBHost, Target):
    name = "duckdb"
    capabilities = Capabilities(engines=("duckdb", "spark"), accepts=frozenset({DUCKDB}), transactions=True,
                                enforces_constraints=True, partitions=False)

    def __init__(self, path: str, memory_limit: str = "600MB", lock_timeout: float = 600.0):
        self.path = path
        self.memory_limit = memory_limit
        self.lock_timeout = lock_timeout
        self._con: duckdb.DuckDBPyConnection | None = None

    @classmethod
    def from_url(cls, url: str, options: dict) -> DuckDBTarget:
        """`path.duckdb`, options from the [target] section or a query string (`?lock_timeout=60`)."""
        url, _, query = url.partition("?")
        options = {**options, **dict(parse_qsl(query))}
        return cls(url, memory_limit=options.get("memory_limit", "600MB"),
                   lock_timeout=float(options.get("lock_timeout", 600)))

    def describe(self) -> str:
        return f"DuckDB file {self.path}"

    def _wait(self, deadline: float, announced: list[bool], holder: str, exc: Exception | None = None) -> None:
        """One pause of the wait for `holder`, saying once that we wait; past the deadline, give up."""
        if time.monotonic() > deadline:
            raise TargetError(f"{self.path} is held by {holder}; gave up waiting after {self.lock_timeout:.0f} s") \
                from exc
        if not announced:
            log.warning("%s is held by %s: waiting for it (up to %.0f s)", self.path, holder, self.lock_timeout)
            announced.append(True)
        time.sleep(0.2)

    def _run_lock(self) -> int:
        """Hold `<file>.lock` (flock) for the run: it tells another run from any other process holding the file."""
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline, announced = time.monotonic() + self.lock_timeout, []
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                try:
                    self._wait(deadline, announced, "another sparkify run")
                except BaseException:
                    os.close(fd)
                    raise

    def _connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting (and saying who holds it) while another process has it open."""
        if read_only and not os.path.exists(self.path):
            raise TargetError(f"{self.path} does not exist: run `sparkify run` first")
        deadline, announced = time.monotonic() + self.lock_timeout, []
        while True:
            try:
                con = duckdb.connect(self.path, read_only=read_only)
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise TargetError(f"cannot open {self.path}: {exc}") from exc
                self._wait(deadline, announced, _holder(str(exc)), exc)
        temp_dir = f"{self.path}.tmp"
        configure(con, self.memory_limit, None if read_only else temp_dir)
        return con

    @contextmanager
    def session(self) -> Iterator[None]:
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        lock = self._run_lock()
        try:
            self._con = self._connect()
            try:
                self._create(self._con)
                yield
            except Exception as exc:
                if disk_full(exc):
                    raise self._no_space(exc) from exc
                raise
            finally:
                self._con.close()
                self._con = None
        finally:
            os.close(lock)

    def _no_space(self, exc: Exception) -> TargetError:
        """Say which of the file's own files filled its disk: DuckDB names a file it failed to write, but not its
        spill directory."""
        named = re.search(r'file "([^"]+)"', str(exc))
        path = named.group(1) if named else f"{self.path}.tmp"
        what = ("the write-ahead log" if path.endswith(".wal") else "the spill files"
                if path.startswith(f"{self.path}.tmp") else "the database file")
        return TargetError(f"no space left on device writing {path} ({what} of DuckDB file {self.path}): the run "
                           "stopped and wrote nothing. Free space on that disk and run again")

    def engine_connection(self) -> duckdb.DuckDBPyConnection:
        assert self._con is not None, "use within session()"
        return self._con

    def _create(self, con: duckdb.DuckDBPyConnection) -> None:
        for table in STAR + STATE:
            con.execute(create_table_sql(table, DIALECT, keys=table not in UNKEYED))

    def _drop(self, con: duckdb.DuckDBPyConnection) -> None:
        for table in reversed(ALL_TABLES):
            con.execute(f"DROP TABLE IF EXISTS {DIALECT.quote(table.name)}")

    def ledger(self) -> dict[str, tuple[int, str]]:
        con = self.engine_connection()
        outdated_state(self.path, {t: [r[0] for r in con.execute(
            "SELECT column_name FROM duckdb_columns() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = ?", [t]).fetchall()]
            for t in VERSIONED_STATE})
        rows = con.execute("SELECT path, size, modified FROM _sparkify_files").fetchall()
        return {path: (size, modified) for path, size, modified in rows}

    def catalogue_relation(self, con: duckdb.DuckDBPyConnection, full_refresh: bool) -> str:
        if full_refresh:  # rebuilt from the sources; the stored one may be an earlier sparkify's, short of columns
            columns = ", ".join(f"NULL::{DIALECT.types[c.type]} AS {DIALECT.quote(c.name)}"
                                for c in SONG_RECORDS.columns)
            return f"(SELECT {columns} WHERE false)"
        return f"main.{DIALECT.quote(SONG_RECORDS.name)}"

    def write(self, batch: DuckDBBatch, full_refresh: bool, summary: SummaryFn) -> WriteResult:
        con = self.engine_connection()
        merge = SqlMerge(DIALECT.quote, self._table, lambda name: name)
        con.execute("BEGIN TRANSACTION")
        try:
            if full_refresh:
                self._drop(con)
                self._create(con)
            inserted = 0
            for purpose, sql in merge.statements():
                rows = con.execute(sql).fetchall()
                if purpose == "songplays":
                    inserted = rows[0][0]
            verify(con, self._table)
            result = WriteResult(inserted)
            con.execute(RUN_INSERT.format(table=self._table(RUNS)), [batch.run_id, summary(result)])
            con.execute("COMMIT")
        except BaseException:
            rollback(con)
            raise
        return result

    def _table(self, table: Table) -> str:
        return f"main.{DIALECT.quote(table.name)}"

    def create_schema(self, reset: bool = False) -> None:
        with self.session():
            con = self.engine_connection()
            if reset:
                con.execute("BEGIN TRANSACTION")
                self._drop(con)
                self._create(con)
                con.execute("COMMIT")

    def query(self, sql: str) -> tuple[list[str], Iterator[tuple]]:
        own = self._con is None
        con = self._connect(read_only=True) if own else self._con
        cursor = con.cursor()
        cursor.execute("SET TimeZone = 'UTC'")
        cursor.execute(sql)
        columns = [d[0] for d in cursor.description]

        def rows() -> Iterator[tuple]:
            try:
                while chunk := cursor.fetchmany(10_000):
                    yield from chunk
            finally:
                if own:
                    con.close()

        return columns, rows()


def verify(con: duckdb.DuckDBPyConnection, table: Callable[[Table], str]) -> None:
    """Prove, before the run commits, what the file's missing keys would have enforced, over the batch's rows:
    the keys of the unkeyed tables are unique, and every reference the batch made resolves."""
    problems = []
    for t, batch_table in UNKEYED.items():
        key = ", ".join(DIALECT.quote(c) for c in t.primary_key)
        problems.append((f"{t.name}: {key} is not unique", f"""
            SELECT count(*) FROM (SELECT {key} FROM {table(t)}
            WHERE ({key}) IN (SELECT {key} FROM {batch_table}) GROUP BY ALL HAVING count(*) > 1)"""))
    for t in STAR:
        for fk in t.foreign_keys:
            (col,), (ref,) = fk.columns, fk.ref_columns
            target = next(x for x in STAR if x.name == fk.table)
            col, ref = DIALECT.quote(col), DIALECT.quote(ref)
            problems.append((f"{t.name}.{fk.columns[0]} refers to a missing {fk.table} row", f"""
                SELECT count(*) FROM b_{t.name} b WHERE b.{col} IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM {table(target)} r WHERE r.{ref} = b.{col})"""))
    failed = [f"{what} ({n:,} rows)" for what, sql in problems for n in [con.execute(sql).fetchall()[0][0]] if n]
    if failed:
        raise TargetError("the run would break the star's keys, nothing was written: " + "; ".join(failed))


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")


def _holder(message: str) -> str:
    """Who holds the file, from DuckDB's lock error: a process that is not a sparkify run (that one holds
    <file>.lock, which this run already has), such as a notebook or a BI tool with the file open."""
    found = _LOCK_HOLDER.search(message)
    return f"another process ({found.group(1)}, PID {found.group(2)})" if found else "another process"


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back after a failure; a commit that failed has ended the transaction already."""
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass
