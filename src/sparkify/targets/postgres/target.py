"""PostgreSQL: the star in a real server, bulk-loaded by binary COPY and merged in one transaction.

The engine computes in a private in-memory DuckDB (spilling to a temporary
directory); the target only stores. A run holds a session-level advisory
lock on its schema, so two runs never interleave; the write is one
transaction (staging, merge, rejects, ledger, run row), so a failure or a
kill leaves the previous state. A load into an empty star (the first run,
or --full-refresh) copies the rows in bare and builds every key once
afterwards (ddl.py, aside.py).

With --pushdown (`?pushdown=true`, or pushdown = true in [target]) the star
is computed inside the server instead (engines/warehouse): the target fills
the staging tables by COPY FROM STDIN (stage.py) and merges the batch the
engine built there with the statements Redshift shares (inwarehouse.py).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import duckdb
import psycopg
import pyarrow as pa

from sparkify.batch import (
    BATCH_TABLES,
    DUCKDB,
    FILES_TABLE,
    WAREHOUSE,
    Batch,
    DuckDBBatch,
    Run,
    SummaryFn,
    WriteResult,
    configure,
    size_bytes,
)
from sparkify.config import DEFAULTS
from sparkify.schema import (
    ALL_TABLES,
    ARTISTS,
    DUCKDB_DIALECT,
    LOADED_FILES,
    PLAY_KEYS,
    REJECTS,
    RUNS,
    SONG_RECORDS,
    SONGPLAYS,
    SONGS,
    STAR,
    STATE,
    TIME,
    USER_LATEST,
    USERS,
    Table,
    arrow_schema,
    create_table_sql,
)
from sparkify.scratch import scratch_dir
from sparkify.staging import POSTGRES, Names, Warehouse
from sparkify.targets.base import (
    Capabilities,
    DuckDBHost,
    Statements,
    Step,
    Target,
    TargetError,
    WarehouseHost,
    outdated_state,
)
from sparkify.targets.postgres import aside as pgaside
from sparkify.targets.postgres import copy as pgcopy
from sparkify.targets.postgres import inwarehouse, stage
from sparkify.targets.postgres.connection import lock_key, redact, scrub, state_columns
from sparkify.targets.postgres.ddl import DIALECT, Key, keys, qualified
from sparkify.targets.sqlmerge import SqlMerge

log = logging.getLogger(__name__)

LOADS: tuple[tuple[Table, str], ...] = (
    (ARTISTS, "b_artists"),
    (SONGS, "b_songs"),
    (SONG_RECORDS, "b_song_records"),
    (USERS, "b_users"),
    (USER_LATEST, "b_users"),
    (TIME, "b_time"),
    (SONGPLAYS, "b_songplays"),
    (PLAY_KEYS, "b_play_keys"),
    (REJECTS, "b_rejects"),
    (LOADED_FILES, "b_files"),
)
"""Each table and the batch table its rows come from."""

STAGED = (*BATCH_TABLES, FILES_TABLE)
"""The batch tables the merge reads, copied into temporary staging tables of the same name."""

COLLATE = ' COLLATE "C"'
"""Byte order for text compared by a rule (ties, the smallest song_id), whatever the database's collation."""

CONNECTION_OPTIONS = ("host", "port", "user", "dbname", "sslmode", "application_name")
"""[target] keys passed to libpq; they override the URL. Passwords: PGPASSWORD or ~/.pgpass."""

DUCKDB_TYPES = DUCKDB_DIALECT.types
PARALLEL_LOAD_ABOVE = 100_000
"""A first load of at least this many song plays builds songplays and time on side connections
(targets/pgaside.py); below it the gain is small, and at 10,000 a loss (docs/postgres.md)."""
REBUILD_KEYS_ABOVE = 0.2
"""An increment of at least this fraction of songplays' rows rebuilds the foreign keys and indexes
instead of maintaining them row by row (docs/postgres.md: the measured crossover)."""
READ_ROWS = 10_000
COPY_ROWS = 50_000
"""Rows per Arrow batch streamed into a COPY: with pgcopy.ahead's two slices in flight, the encoder
holds a few copies of at most ~4 batches (~13 MB each for songplays) at once."""
WRITE_MEMORY_LIMIT = 256 << 20
"""DuckDB's memory limit while the batch is written (never above the run's own limit). The write
only streams the batch tables, so a small buffer pool costs nothing; it makes room for the COPY's
buffers within the run's peak (docs/postgres.md, Memory)."""
TRUE = ("1", "true", "yes", "on")

CAPABILITIES = Capabilities(engines=("duckdb", "spark", "warehouse"), accepts=frozenset({DUCKDB, WAREHOUSE}),
                            transactions=True, enforces_constraints=True, partitions=False, dry_run=True)
PUSHDOWN = replace(CAPABILITIES, engines=("warehouse", "duckdb", "spark"))
"""A target asked to compute in the server (?pushdown=true): the in-warehouse engine by default."""


def strip_pushdown(url: str) -> str:
    """The URL without its `pushdown` option (libpq would refuse it)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "pushdown"]
    return urlunsplit(parts._replace(query=urlencode(query)))


class PostgresTarget(DuckDBHost, WarehouseHost, Statements, Target):
    name = "postgres"
    dialect = DIALECT
    capabilities = CAPABILITIES

    def __init__(
        self,
        url: str,
        schema: str = "public",
        connection: dict | None = None,
        memory_limit: str = DEFAULTS["memory_limit"],
        lock_timeout: float = 600.0,
        connect_timeout: int = 10,
        rebuild_keys_above: float = REBUILD_KEYS_ABOVE,
        parallel_load_above: int = PARALLEL_LOAD_ABOVE,
    ):
        self.url = url
        self.schema = schema
        self.connection = dict(connection or {})
        self.memory_limit = memory_limit
        self.lock_timeout = lock_timeout
        self.connect_timeout = connect_timeout
        self.rebuild_keys_above = rebuild_keys_above
        self.parallel_load_above = parallel_load_above
        self._con: psycopg.Connection | None = None
        self._duck: duckdb.DuckDBPyConnection | None = None
        self._started: datetime | None = None

    @classmethod
    def from_url(cls, url: str, options: dict) -> PostgresTarget:
        asked = options.get("pushdown", "")
        if "pushdown=" in url:  # parsed only then: a malformed URL is libpq's to explain
            asked = dict(parse_qsl(urlsplit(url).query)).get("pushdown", asked)
            url = strip_pushdown(url)
        target = cls(
            url,
            schema=str(options.get("schema", "public")),
            connection={k: options[k] for k in CONNECTION_OPTIONS if k in options},
            memory_limit=str(options.get("memory_limit", DEFAULTS["memory_limit"])),
            lock_timeout=float(options.get("lock_timeout", 600)),
            connect_timeout=int(options.get("connect_timeout", 10)),
            rebuild_keys_above=float(options.get("rebuild_keys_above", REBUILD_KEYS_ABOVE)),
            parallel_load_above=int(options.get("parallel_load_above", PARALLEL_LOAD_ABOVE)),
        )
        if str(asked).lower() in TRUE:
            target.capabilities = PUSHDOWN
        return target

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(POSTGRES, Names(self.schema))

    def describe(self) -> str:
        return f"PostgreSQL {redact(self.url)} schema {self.schema}"

    # -- names ---------------------------------------------------------------

    def table(self, table: Table, schema: str | None = None) -> str:
        """The table's qualified name, in the target's schema or in `schema` (aside.py's)."""
        return qualified(schema or self.schema, table)

    @staticmethod
    def stage(name: str) -> str:
        return f"pg_temp.{DIALECT.quote(name)}"

    def keys(self, schema: str | None = None) -> list[Key]:
        """The keys and indexes of the star and state, in build order (ddl.keys)."""
        return keys(schema or self.schema)

    # -- connections ---------------------------------------------------------

    def redacted(self, message: object) -> str:
        return scrub(self.url, message)

    def connect(self) -> psycopg.Connection:
        """An autocommit connection in UTC with the schema first on the search path."""
        params = dict(self.connection)
        if "connect_timeout" not in self.url and not os.environ.get("PGCONNECT_TIMEOUT"):
            params["connect_timeout"] = self.connect_timeout
        try:
            con = psycopg.connect(self.url, autocommit=True, **params)
        except psycopg.Error as exc:
            raise TargetError(f"cannot connect to PostgreSQL at {redact(self.url)}: {self.redacted(exc)}") from None
        con.execute(
            "SELECT set_config('TimeZone', 'UTC', false), set_config('search_path', %s, false)",
            [DIALECT.quote(self.schema)],
        )
        return con

    def _lock(self, con: psycopg.Connection) -> None:
        """Take the schema's advisory lock, waiting (and saying so) while another run holds it."""
        key = lock_key(self.schema)
        if con.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]:
            return
        log.warning(
            "another sparkify run is loading schema %s of %s: waiting for it to finish (up to %.0f s)",
            self.schema, redact(self.url), self.lock_timeout,
        )
        con.execute("SELECT set_config('lock_timeout', %s, false)", [f"{int(self.lock_timeout * 1000)}ms"])
        try:
            con.execute("SELECT pg_advisory_lock(%s)", [key])
        except psycopg.errors.LockNotAvailable:
            raise TargetError(
                f"schema {self.schema} of {redact(self.url)} is still being loaded by another run "
                f"after {self.lock_timeout:.0f} s; gave up waiting"
            ) from None
        finally:
            con.execute("RESET lock_timeout")
        log.info("the other run finished: loading schema %s", self.schema)

    @contextmanager
    def _locked(self) -> Iterator[psycopg.Connection]:
        """A connection holding the schema's lock; closing it releases the lock, even on a kill."""
        con = self.connect()
        try:
            self._lock(con)
            yield con
        finally:
            con.close()

    @contextmanager
    def session(self) -> Iterator[None]:
        with self._locked() as con:
            self._started = datetime.now(UTC)
            try:
                pgaside.sweep(con, self.schema)
                self._ensure(con)
            except psycopg.Error as exc:
                raise TargetError(f"cannot create the tables in {self.describe()}: {self.redacted(exc)}") from None
            with scratch_dir("pg") as spill:
                self._duck = duckdb.connect()
                configure(self._duck, self.memory_limit, spill)
                self._con = con
                try:
                    yield
                finally:
                    self._con = None
                    self._duck.close()
                    self._duck = None

    def engine_connection(self) -> duckdb.DuckDBPyConnection:
        assert self._duck is not None, "use within session()"
        return self._duck

    # -- DDL -----------------------------------------------------------------

    def _ensure(self, con: psycopg.Connection) -> None:
        """Create what is missing (schema, tables, keys); issue no DDL when all is there."""
        with con.transaction():
            exists = con.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [self.schema]).fetchone()
            if not exists:
                con.execute(f"CREATE SCHEMA {DIALECT.quote(self.schema)}")
            tables = {r[0] for r in con.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", [self.schema])}
            for table in STAR + STATE:
                if table.name not in tables:
                    con.execute(create_table_sql(table, DIALECT, self.schema))
            present = {r[0] for r in con.execute(
                "SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                "WHERE n.nspname = %s UNION ALL SELECT indexname FROM pg_indexes WHERE schemaname = %s",
                [self.schema, self.schema])}
            for key in self.keys():
                if key.name not in present:
                    con.execute(key.create)

    def _drop(self, cur: psycopg.Cursor) -> None:
        for table in reversed(ALL_TABLES):
            cur.execute(f"DROP TABLE IF EXISTS {self.table(table)}")

    def _create_tables(self, cur: psycopg.Cursor) -> None:
        for table in STAR + STATE:
            cur.execute(create_table_sql(table, DIALECT, self.schema))

    def create_schema(self, reset: bool = False) -> None:
        with self._locked() as con:
            try:
                pgaside.sweep(con, self.schema)
                with con.transaction():
                    if reset:
                        self._drop(con.cursor())
                    self._ensure(con)
            except psycopg.Error as exc:
                raise TargetError(f"cannot create the tables in {self.describe()}: {self.redacted(exc)}") from None

    # -- state for the engine ------------------------------------------------

    def ledger(self) -> dict[str, tuple[int, str]]:
        assert self._con is not None, "use within session()"
        outdated_state(self.describe(), state_columns(self._con, self.schema))
        rows = self._con.execute(f"SELECT path, size, modified FROM {self.table(LOADED_FILES)}")
        return {path: (size, modified) for path, size, modified in rows}

    def catalogue_relation(self, con: duckdb.DuckDBPyConnection, full_refresh: bool) -> str:
        """The song records already loaded, copied out of PostgreSQL in binary, a slice at a time."""
        assert self._con is not None, "use within session()"
        schema = arrow_schema(SONG_RECORDS)
        con.register("sp_catalogue_arrow", schema.empty_table())
        con.execute("CREATE OR REPLACE TEMP TABLE sp_catalogue AS SELECT * FROM sp_catalogue_arrow")
        con.unregister("sp_catalogue_arrow")
        if full_refresh:
            return "sp_catalogue"
        columns = ", ".join(DIALECT.quote(c) for c in SONG_RECORDS.column_names)
        types = [DIALECT.types[c.type] for c in SONG_RECORDS.columns]
        with self._con.cursor().copy(
            f"COPY (SELECT {columns} FROM {self.table(SONG_RECORDS)}) TO STDOUT (FORMAT BINARY)"
        ) as copy:
            copy.set_types(types)
            rows: list[tuple] = []
            for row in copy.rows():
                rows.append(row)
                if len(rows) == READ_ROWS:
                    self._append_catalogue(con, schema, rows)
                    rows = []
            self._append_catalogue(con, schema, rows)
        return "sp_catalogue"

    @staticmethod
    def _append_catalogue(con: duckdb.DuckDBPyConnection, schema: pa.Schema, rows: list[tuple]) -> None:
        if not rows:
            return
        columns = list(zip(*rows))
        slice_ = pa.table([pa.array(col, f.type) for col, f in zip(columns, schema)], schema=schema)
        con.register("sp_catalogue_arrow", slice_)
        con.execute("INSERT INTO sp_catalogue SELECT * FROM sp_catalogue_arrow")
        con.unregister("sp_catalogue_arrow")

    # -- the write -----------------------------------------------------------

    def write(self, batch: Batch, full_refresh: bool, summary: SummaryFn) -> WriteResult:
        """One transaction: rows in (bulk or merged), run row, commit; any failure rolls all back.

        A batch the in-warehouse engine built is already in this server, inside the run's transaction
        (run_transaction): it is merged there and commits with it.
        """
        if batch.host == WAREHOUSE:
            return inwarehouse.write(batch, self.warehouse.names, summary)
        return self._write_from_duckdb(batch, full_refresh, summary)

    def _write_from_duckdb(self, batch: DuckDBBatch, full_refresh: bool, summary: SummaryFn) -> WriteResult:
        self._limit_for_write(batch.con)
        with self._transaction() as cur:
            if full_refresh:
                self._drop(cur)
                self._create_tables(cur)
            if full_refresh or self._empty(cur):
                inserted = self._bulk_load(cur, batch, fresh=full_refresh)
            else:
                inserted = self._merge(cur, batch)
            result = WriteResult(inserted)
            cur.execute(
                f"INSERT INTO {self.table(RUNS)} (run_id, started_at, finished_at, summary) "
                "VALUES (%s, %s, clock_timestamp(), %s)",
                [batch.run_id, self._started, summary(result)],
            )
        return result

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor]:
        """The run's transaction on its locked connection; a failure rolls all of it back, said plainly."""
        con = self._con
        assert con is not None, "use within session()"
        try:
            with con.transaction():
                yield con.cursor()
        except psycopg.Error as exc:
            raise TargetError(f"loading into {self.describe()} failed, nothing was written: "
                              f"{self.redacted(exc)}") from None

    def _limit_for_write(self, duck: duckdb.DuckDBPyConnection) -> None:
        """Shrink DuckDB's buffer pool to WRITE_MEMORY_LIMIT: what it holds beyond goes to its spill files."""
        limit = size_bytes(self.memory_limit)
        if limit is None or limit <= WRITE_MEMORY_LIMIT:
            return
        start = time.perf_counter()
        try:
            duck.execute("SET memory_limit = ?", [f"{WRITE_MEMORY_LIMIT >> 20}MiB"])
        except duckdb.Error as exc:  # it could not evict enough: write with the run's limit, as before
            log.debug("DuckDB memory limit kept for the write: %s", exc)
            return
        log.debug("DuckDB memory limit %d MiB for the write: %.3f s", WRITE_MEMORY_LIMIT >> 20,
                  time.perf_counter() - start)

    def _empty(self, cur: psycopg.Cursor) -> bool:
        tests = " AND ".join(f"NOT EXISTS (SELECT FROM {self.table(t)})" for t, _ in LOADS)
        return cur.execute(f"SELECT {tests}").fetchone()[0]

    def _bulk_load(self, cur: psycopg.Cursor, batch: DuckDBBatch, fresh: bool) -> int:
        """Into an empty star: drop the keys, COPY every table straight in, build the keys once.

        Equivalent to the merge because there is nothing to merge with, and the
        batch holds each key once (the primary keys built at the end check it).
        The tables are new (`fresh`: a full refresh) or emptied in this
        transaction, so COPY FREEZE writes their rows frozen and all-visible;
        the indexes are built before the foreign keys, whose checks then run as
        merge joins over two indexes without reading the tables (hash joins
        where the referencing columns have no index); the sorts get 256 MB.
        From `parallel_load_above` song plays on, songplays and time are built
        on side connections meanwhile (targets/pgaside.py; docs/postgres.md,
        "The write alone").
        """
        for key in reversed(self.keys()):
            cur.execute(key.drop)
        if not fresh:
            cur.execute(f"TRUNCATE {', '.join(self.table(t) for t, _ in LOADS)}")
        plays = batch.count("b_songplays") if self.parallel_load_above > 0 else 0
        with pgaside.aside_build(self, cur, plays, self.parallel_load_above) as aside:
            inserted = 0
            first = pgaside.BUILT_ASIDE if aside else ()  # their keys build while the rest is copied
            for table, source in sorted(LOADS, key=lambda load: load[0] not in first):
                reader = self._reader(batch, table, source)
                if table in first:
                    copied = aside.copy(table, reader)
                else:
                    self._timed(f"copy {table.name}", lambda: self.copy_table(cur, table, reader))
                    copied = cur.rowcount
                if table is SONGPLAYS:
                    inserted = copied
            cur.execute("SET LOCAL maintenance_work_mem = '256MB'")
            before, after = aside.main_keys(self.keys()) if aside else (self.keys(), [])
            self._build_keys(cur, before)
            if aside:
                self._timed("aside builds and swap", lambda: aside.finish(cur))
            self._build_keys(cur, after)
        cur.execute("SET LOCAL enable_hashjoin TO DEFAULT")
        cur.execute("SET LOCAL maintenance_work_mem TO DEFAULT")
        return inserted

    def _build_keys(self, cur: psycopg.Cursor, keys: list[Key]) -> None:
        for key in keys:
            cur.execute(f"SET LOCAL enable_hashjoin {'= off' if key.indexed else 'TO DEFAULT'}")
            self._timed(f"key {key.name}", lambda: cur.execute(key.create))

    def copy_table(self, cur: psycopg.Cursor, table: Table, reader: pa.RecordBatchReader,
                    schema: str | None = None) -> None:
        """COPY rows into a table created or emptied in the same transaction: FREEZE writes them frozen."""
        names = ", ".join(DIALECT.quote(c) for c in table.column_names)
        self._copy(cur, f"COPY {self.table(table, schema)} ({names}) FROM STDIN (FORMAT BINARY, FREEZE)", reader)

    @staticmethod
    def _reader(batch: DuckDBBatch, table: Table, source: str) -> pa.RecordBatchReader:
        """A batch table's rows in the target table's columns and types, COPY_ROWS at a time."""
        columns = ", ".join(f"CAST({DIALECT.quote(c.name)} AS {DUCKDB_TYPES[c.type]})" for c in table.columns)
        return batch.con.sql(f"SELECT {columns} FROM {source}").to_arrow_reader(COPY_ROWS)

    def _merge(self, cur: psycopg.Cursor, batch: DuckDBBatch) -> int:
        """Into a star holding rows: stage the batch in temporary tables, then the SQL of targets/sqlmerge.py.

        A large increment drops the foreign keys and indexes first and builds them
        again after (the primary keys stay: the merge needs them).
        """
        rebuild = [key for key in self.keys() if not key.primary] if self._large(cur, batch) else []
        for key in reversed(rebuild):
            cur.execute(key.drop)
        for name in STAGED:
            reader = batch.reader(name, COPY_ROWS)
            q = DIALECT.quote
            columns = ", ".join(f"{q(f.name)} {pgcopy.pg_type(f.type)}" for f in reader.schema)
            cur.execute(f"CREATE TEMP TABLE {q(name)} ({columns}) ON COMMIT DROP")
            names = ", ".join(q(f.name) for f in reader.schema)
            self._timed(f"stage {name}", lambda: self._copy(
                cur, f"COPY {self.stage(name)} ({names}) FROM STDIN (FORMAT BINARY)", reader))
            cur.execute(f"ANALYZE {self.stage(name)}")
        inserted = 0
        for purpose, statement in self._sql_merge().statements():
            self._timed(f"merge {purpose}", lambda: cur.execute(statement))
            if purpose == "songplays":
                inserted = cur.rowcount
        for key in rebuild:
            self._timed(f"key {key.name}", lambda: cur.execute(key.create))
        return inserted

    def _large(self, cur: psycopg.Cursor, batch: DuckDBBatch) -> bool:
        """Whether the batch adds at least rebuild_keys_above of the rows songplays holds."""
        stored = cur.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass",
                             [self.table(SONGPLAYS)]).fetchone()[0]
        if stored < 0:  # never counted by VACUUM, ANALYZE or an index build
            stored = cur.execute(f"SELECT count(*) FROM {self.table(SONGPLAYS)}").fetchone()[0]
        return batch.count("b_songplays") >= self.rebuild_keys_above * stored

    @staticmethod
    def _copy(cur: psycopg.Cursor, statement: str, reader: pa.RecordBatchReader) -> None:
        """Stream `reader` in; the next slices are read and encoded while the server ingests this one."""
        with cur.copy(statement) as copy:
            for chunk in pgcopy.ahead(pgcopy.stream(reader)):
                copy.write(chunk)

    @staticmethod
    def _timed(what: str, step) -> None:
        start = time.perf_counter()
        step()
        log.debug("%s: %.3f s", what, time.perf_counter() - start)

    # -- the in-warehouse engine's host ----------------------------------------

    @contextmanager
    def run_transaction(self, full_refresh: bool) -> Iterator[psycopg.Cursor]:
        with self._transaction() as cur:
            if full_refresh:
                self._drop(cur)
                self._ensure(self._con)
            yield cur

    def prepare_staging(self, run: Run) -> tuple[stage.Staged, stage.Staged]:
        """The raw files parsed as Redshift's COPY JSON would parse them, before the transaction opens."""
        return stage.stage_events(run.log_files), stage.stage_songs(run.song_files)

    def fill_staging(self, cursor: psycopg.Cursor, run: Run, prepared: tuple[stage.Staged, stage.Staged]) -> None:
        events, songs = prepared
        stage.copy_in(cursor, events, songs, [(kind, f.path, f) for kind, f in run.files()])

    def staging_plan(self, run: Run) -> list[Step]:
        return [Step("stage", "-- COPY staging_events, staging_songs, staging_load_errors, "
                              "staging_files FROM STDIN (the raw files, parsed as COPY JSON would)")]

    # -- statements (--dry-run) ------------------------------------------------

    def schema_plan(self, reset: bool) -> list[Step]:
        drops = [Step("drop", f"DROP TABLE IF EXISTS {self.table(t)}") for t in reversed(STAR + STATE)]
        create = [Step("schema", f"CREATE SCHEMA IF NOT EXISTS {DIALECT.quote(self.schema)}")]
        tables = [Step("table", create_table_sql(t, DIALECT, self.schema)) for t in STAR + STATE]
        keys = [Step("key", k.create) for k in self.keys() if not k.name.endswith("_pkey")]
        return (drops if reset else []) + create + tables + keys

    def write_plan(self, host: str) -> list[Step]:
        if host == WAREHOUSE:
            return [Step(p, s) for p, s in inwarehouse.merge_statements(self.warehouse.names)]
        steps = [Step("stage", "-- the DuckDB engine computes the batch; each b_* table is COPied "
                               "FROM STDIN (FORMAT BINARY) into a temporary table of that name")]
        return steps + [Step(p, s) for p, s in self._sql_merge().statements()]

    def _sql_merge(self) -> SqlMerge:
        """sqlmerge's statements on this schema; the tie rules compare text in byte order, as DuckDB does."""
        return SqlMerge(DIALECT.quote, self.table, self.stage, anti_join=False, collate=COLLATE)

    # -- reads ---------------------------------------------------------------

    def row_counts(self) -> dict[str, int]:
        """Within a run, one statement on the run's connection instead of a new connection per table."""
        if self._con is None:
            return super().row_counts()
        counts = ", ".join(f"(SELECT count(*) FROM {self.table(t)})" for t in STAR)
        try:
            row = self._con.execute(f"SELECT {counts}").fetchone()
        except psycopg.Error as exc:
            raise TargetError(f"counting the rows of {self.describe()} failed: {self.redacted(exc)}") from None
        return dict(zip((t.name for t in STAR), row))

    def query(self, sql: str) -> tuple[list[str], Iterator[tuple]]:
        """One read-only statement through a server-side cursor on its own connection, in UTC.

        Its own connection: the caller may hold several row iterators at once,
        each ends its transaction (and connection) when exhausted or dropped.
        """
        con = self.connect()
        try:
            con.execute("BEGIN READ ONLY")
            cursor = con.cursor(name="sparkify_query")
            cursor.execute(sql)
        except psycopg.Error as exc:
            con.close()
            raise TargetError(f"query failed on {self.describe()}: {self.redacted(exc)}") from None
        columns = [d.name for d in cursor.description]

        def rows() -> Iterator[tuple]:
            try:
                while chunk := cursor.fetchmany(READ_ROWS):
                    yield from chunk
            except psycopg.Error as exc:
                raise TargetError(f"query failed on {self.describe()}: {self.redacted(exc)}") from None
            finally:
                con.close()

        return columns, rows()
