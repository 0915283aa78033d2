"""The embedded default: a DuckDB database file.

The engine computes inside this file's own connection, so a batch reaches
the star without a copy; the merge runs in one DuckDB transaction, which the
write-ahead log makes atomic against a crash or a kill. A batch of more than
`slice_rows` plays (default 1,000,000) is built aside instead and swapped in
(aside.py). A run holds `<file>.lock` from start to end, so a second run
waits for it, even while the file itself is closed for the swap.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl

import duckdb

from sparkify.batch import DUCKDB, DuckDBBatch, SummaryFn, WriteResult, configure
from sparkify.schema import ALL_TABLES, RUNS, SONG_RECORDS, STAR, STATE, Table, create_table_sql
from sparkify.schema import DUCKDB as DIALECT
from sparkify.targets.base import Capabilities, DuckDBHost, Target, TargetError
from sparkify.targets.duckdb.aside import RUN_INSERT, AsideBuild, remove_leftovers, rollback
from sparkify.targets.sqlmerge import SqlMerge

log = logging.getLogger(__name__)


class DuckDBTarget(DuckDBHost, Target):
    name = "duckdb"
    capabilities = Capabilities(engines=("duckdb", "spark"), accepts=frozenset({DUCKDB}), transactions=True,
                                enforces_constraints=True, partitions=False)

    def __init__(self, path: str, memory_limit: str = "600MB", lock_timeout: float = 600.0,
                 slice_rows: int = 1_000_000):
        self.path = path
        self.memory_limit = memory_limit
        self.lock_timeout = lock_timeout
        self.slice_rows = slice_rows
        self._con: duckdb.DuckDBPyConnection | None = None

    @classmethod
    def from_url(cls, url: str, options: dict) -> DuckDBTarget:
        """`path.duckdb`, options from the [target] section or a query string (`?slice_rows=500`)."""
        url, _, query = url.partition("?")
        options = {**options, **dict(parse_qsl(query))}
        return cls(url, memory_limit=options.get("memory_limit", "600MB"),
                   lock_timeout=float(options.get("lock_timeout", 600)),
                   slice_rows=int(options.get("slice_rows", 1_000_000)))

    def describe(self) -> str:
        return f"DuckDB file {self.path}"

    def _wait(self, deadline: float, announced: list[bool], exc: Exception | None = None) -> None:
        """One pause of the wait for another process, saying once that we wait; past the deadline, give up."""
        if time.monotonic() > deadline:
            raise TargetError(f"{self.path} is held by another process; gave up waiting") from exc
        if not announced:
            log.warning("%s is in use by another sparkify run: waiting for it to finish", self.path)
            announced.append(True)
        time.sleep(0.2)

    def _run_lock(self) -> int:
        """Hold `<file>.lock` (flock) for the run: the lock outlives the file's connection during a swap."""
        fd = os.open(f"{self.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline, announced = time.monotonic() + self.lock_timeout, []
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except BlockingIOError:
                try:
                    self._wait(deadline, announced)
                except BaseException:
                    os.close(fd)
                    raise

    def _connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting (and saying so) while another process holds it."""
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
                self._wait(deadline, announced, exc)
        temp_dir = f"{self.path}.tmp"
        configure(con, self.memory_limit, None if read_only else temp_dir)
        return con

    @contextmanager
    def session(self) -> Iterator[None]:
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        lock = self._run_lock()
        try:
            remove_leftovers(self.path)
            self._con = self._connect()
            try:
                self._create(self._con)
                yield
            finally:
                if self._con is not None:  # None when a swap failed after closing it
                    self._con.close()
                self._con = None
        finally:
            os.close(lock)

    def engine_connection(self) -> duckdb.DuckDBPyConnection:
        assert self._con is not None, "use within session()"
        return self._con

    def _create(self, con: duckdb.DuckDBPyConnection) -> None:
        for table in STAR + STATE:
            con.execute(create_table_sql(table, DIALECT))

    def _drop(self, con: duckdb.DuckDBPyConnection) -> None:
        for table in reversed(ALL_TABLES):
            con.execute(f"DROP TABLE IF EXISTS {DIALECT.quote(table.name)}")

    def ledger(self) -> dict[str, tuple[int, str]]:
        rows = self.engine_connection().execute("SELECT path, size, modified FROM _sparkify_files").fetchall()
        return {path: (size, modified) for path, size, modified in rows}

    def catalogue_relation(self, con: duckdb.DuckDBPyConnection, full_refresh: bool) -> str:
        name = f"main.{DIALECT.quote(SONG_RECORDS.name)}"
        return f"(SELECT * FROM {name} WHERE NOT {str(full_refresh).lower()})"

    def write(self, batch: DuckDBBatch, full_refresh: bool, summary: SummaryFn) -> WriteResult:
        con = self.engine_connection()
        if batch.count("b_songplays") > self.slice_rows:
            return self._write_aside(batch, full_refresh, summary)
        merge = SqlMerge(DIALECT.quote, self._table, lambda name: name)
        con.execute("BEGIN TRANSACTION")
        try:
            if full_refresh:
                self._drop(con)
                self._create(con)
            inserted = 0
            for purpose, sql in merge.statements():
                count = con.execute(sql).fetchall()[0]
                if purpose == "songplays":
                    inserted = count[0]
            result = WriteResult(inserted)
            con.execute(RUN_INSERT.format(table=self._table(RUNS)), [batch.run_id, summary(result)])
            con.execute("COMMIT")
        except BaseException:
            rollback(con)
            raise
        return result

    def _write_aside(self, batch: DuckDBBatch, full_refresh: bool, summary: SummaryFn) -> WriteResult:
        """Build the next version aside in slices, then swap it in (closing the file meanwhile)."""
        aside = AsideBuild(self.engine_connection(), self.path, DIALECT, self.slice_rows, self._create)
        inserted = aside.build(full_refresh, lambda n: [batch.run_id, summary(WriteResult(n))])
        self._con.close()
        self._con = None
        aside.swap()
        self._con = self._connect()
        return WriteResult(inserted)

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
