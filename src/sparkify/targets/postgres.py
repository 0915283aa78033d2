"""PostgreSQL: the star in a real server, bulk-loaded by binary COPY and merged in one transaction.

The engine computes in a private in-memory DuckDB (spilling to a temporary
directory); the target only stores. A run holds a session-level advisory
lock on its schema, so two runs never interleave; the write is one
transaction (staging, merge, rejects, ledger, run row), so a failure or a
kill leaves the previous state. Keys and indexes are statements of their
own (`keys()`), as pg_dump writes them, so that a load into an empty star
(the first run, or --full-refresh) copies the rows in bare and builds every
key once afterwards instead of maintaining it row by row.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import unquote

import duckdb
import psycopg
import pyarrow as pa

from sparkify.config import DEFAULTS
from sparkify.engines.duckdb import Batch, configure
from sparkify.schema import (
    ALL_TABLES,
    ARTISTS,
    LOADED_FILES,
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
    Dialect,
    Table,
    arrow_schema,
    create_table_sql,
)
from sparkify.scratch import scratch_dir
from sparkify.targets import pgaside, pgcopy
from sparkify.targets.duckdb import DIALECT as DUCKDB_DIALECT
from sparkify.targets.base import Capabilities, SummaryFn, Target, TargetError, WriteResult
from sparkify.targets.sqlmerge import SqlMerge

log = logging.getLogger(__name__)

DIALECT = Dialect(
    "postgresql",
    {"bigint": "bigint", "int": "integer", "double": "double precision", "text": "text", "timestamp": "timestamptz"},
    enforce_foreign_keys=False,
)
"""Foreign keys are added by `keys()`, not inline, so a bulk load can build them after the rows."""

LOADS: tuple[tuple[Table, str], ...] = (
    (ARTISTS, "b_artists"),
    (SONGS, "b_songs"),
    (SONG_RECORDS, "b_song_records"),
    (USERS, "b_users"),
    (USER_LATEST, "b_users"),
    (TIME, "b_time"),
    (SONGPLAYS, "b_songplays"),
    (REJECTS, "b_rejects"),
    (LOADED_FILES, "b_files"),
)
"""Each table and the batch table its rows come from."""

STAGED = ("b_artists", "b_songs", "b_song_records", "b_users", "b_time", "b_songplays", "b_rejects", "b_files")
"""The batch tables the merge reads, copied into temporary staging tables of the same name."""

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
_SIZE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(i?)b?|b|bytes?)?\s*")

_PASSWORD_PARAM = re.compile(r"(?i)(password\s*=\s*)('[^']*'|[^&\s]*)")


def redact(url: str) -> str:
    """The URL with any password shown as ***: all that logs, errors and describe() ever show."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _PASSWORD_PARAM.sub(r"\1***", url)
    head, qmark, params = rest.partition("?")
    userinfo, at, hostpath = head.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    params = _PASSWORD_PARAM.sub(r"\1***", params)
    return f"{scheme}{sep}{userinfo}{at}{hostpath}{qmark}{params}"


def _secrets(url: str) -> set[str]:
    """Every spelling of the passwords in a URL, to scrub them from messages we did not write."""
    found = {m.group(2).strip("'") for m in _PASSWORD_PARAM.finditer(url)}
    userinfo = url.partition("://")[2].partition("?")[0].rpartition("@")[0]
    if ":" in userinfo:
        found.add(userinfo.split(":", 1)[1])
    return {s for s in found | {unquote(s) for s in found} if s}


def size_bytes(text: str) -> int | None:
    """A DuckDB memory size ('600MB', '1.5GiB', '4000000') in bytes; None if it is not one."""
    match = _SIZE.fullmatch(text)
    if not match:
        return None
    number, prefix, binary = match.groups()
    power = "kmgt".index(prefix.lower()) + 1 if prefix else 0
    return int(float(number) * (1024 if binary else 1000) ** power)


def lock_key(schema: str) -> int:
    """The advisory lock of a schema (advisory locks are per database already)."""
    return int.from_bytes(hashlib.sha256(f"sparkify:{schema}".encode()).digest()[:8], "big", signed=True)


@dataclass(frozen=True)
class Key:
    """A primary key, foreign key or index, with the statements that add and drop it."""

    name: str
    create: str
    drop: str
    tables: tuple[str, ...]
    """The table it is on, then, for a foreign key, the table it references."""
    primary: bool = False
    indexed: bool = False
    """A foreign key whose columns lead an index or the primary key of their table: checkable by a merge
    join over the two indexes."""


class PostgresTarget(Target):
    name = "postgres"
    dialect = DIALECT
    capabilities = Capabilities(transactions=True, enforces_constraints=True, upsert=True, partitions=False)

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
        return cls(
            url,
            schema=str(options.get("schema", "public")),
            connection={k: options[k] for k in CONNECTION_OPTIONS if k in options},
            memory_limit=str(options.get("memory_limit", DEFAULTS["memory_limit"])),
            lock_timeout=float(options.get("lock_timeout", 600)),
            connect_timeout=int(options.get("connect_timeout", 10)),
            rebuild_keys_above=float(options.get("rebuild_keys_above", REBUILD_KEYS_ABOVE)),
            parallel_load_above=int(options.get("parallel_load_above", PARALLEL_LOAD_ABOVE)),
        )

    def describe(self) -> str:
        return f"PostgreSQL {redact(self.url)} schema {self.schema}"

    # -- names ---------------------------------------------------------------

    def table(self, table: Table, schema: str | None = None) -> str:
        """The table's qualified name, in the target's schema or in `schema` (pgaside's)."""
        return f"{DIALECT.quote(schema or self.schema)}.{DIALECT.quote(table.name)}"

    @staticmethod
    def stage(name: str) -> str:
        return f"pg_temp.{DIALECT.quote(name)}"

    def keys(self, schema: str | None = None) -> list[Key]:
        """Primary keys, the indexes the analysts' joins need, then foreign keys: build in this order,
        so that a foreign key's check can read the indexes. `schema`: where the tables are (default the
        target's; pgaside builds some in a schema of its own)."""
        q, tables, schema = DIALECT.quote, STAR + STATE, schema or self.schema

        def cols(names: tuple[str, ...]) -> str:
            return ", ".join(map(q, names))

        def constraint(t: Table, name: str, definition: str, tables: tuple[str, ...], primary: bool = False,
                       indexed: bool = False) -> Key:
            on = self.table(t, schema)
            return Key(name, f"ALTER TABLE {on} ADD CONSTRAINT {q(name)} {definition}",
                       f"ALTER TABLE {on} DROP CONSTRAINT IF EXISTS {q(name)}", tables, primary, indexed)

        # {table}_pkey is also what PostgreSQL names the inline key of create_table_sql.
        primary = [constraint(t, f"{t.name}_pkey", f"PRIMARY KEY ({cols(t.primary_key)})", (t.name,), primary=True)
                   for t in tables if t.primary_key]
        foreign = [
            constraint(t, f"{t.name}_{'_'.join(fk.columns)}_fkey", f"FOREIGN KEY ({cols(fk.columns)}) "
                       f"REFERENCES {q(schema)}.{q(fk.table)} ({cols(fk.ref_columns)})", (t.name, fk.table),
                       indexed=fk.columns in (*t.indexes, t.primary_key))
            for t in tables for fk in t.foreign_keys
        ]
        indexes = [
            Key(name, f"CREATE INDEX IF NOT EXISTS {q(name)} ON {self.table(t, schema)} ({cols(columns)})",
                f"DROP INDEX IF EXISTS {q(schema)}.{q(name)}", (t.name,))
            for t in tables for columns in t.indexes
            for name in [f"{t.name}_{'_'.join(columns)}_idx"]
        ]
        return primary + indexes + foreign

    # -- connections ---------------------------------------------------------

    def _scrub(self, message: object) -> str:
        text = str(message).strip().replace(self.url, redact(self.url))
        for secret in _secrets(self.url):
            text = text.replace(secret, "***")
        return text

    def _connect(self) -> psycopg.Connection:
        """An autocommit connection in UTC with the schema first on the search path."""
        params = dict(self.connection)
        if "connect_timeout" not in self.url and not os.environ.get("PGCONNECT_TIMEOUT"):
            params["connect_timeout"] = self.connect_timeout
        try:
            con = psycopg.connect(self.url, autocommit=True, **params)
        except psycopg.Error as exc:
            raise TargetError(f"cannot connect to PostgreSQL at {redact(self.url)}: {self._scrub(exc)}") from None
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
        con = self._connect()
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
                raise TargetError(f"cannot create the tables in {self.describe()}: {self._scrub(exc)}") from None
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
                raise TargetError(f"cannot create the tables in {self.describe()}: {self._scrub(exc)}") from None

    # -- state for the engine ------------------------------------------------

    def ledger(self) -> dict[str, tuple[int, str]]:
        assert self._con is not None, "use within session()"
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
        """One transaction: rows in (bulk or merged), run row, commit; any failure rolls all back."""
        con = self._con
        assert con is not None, "use within session()"
        self._limit_for_write(batch.con)
        try:
            with con.transaction():
                cur = con.cursor()
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
        except psycopg.Error as exc:
            raise TargetError(f"loading into {self.describe()} failed, nothing was written: "
                              f"{self._scrub(exc)}") from None
        return result

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

    def _bulk_load(self, cur: psycopg.Cursor, batch: Batch, fresh: bool) -> int:
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
                    self._timed(f"copy {table.name}", lambda: self._copy_table(cur, table, reader))
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

    def _copy_table(self, cur: psycopg.Cursor, table: Table, reader: pa.RecordBatchReader,
                    schema: str | None = None) -> None:
        """COPY rows into a table created or emptied in the same transaction: FREEZE writes them frozen."""
        names = ", ".join(DIALECT.quote(c) for c in table.column_names)
        self._copy(cur, f"COPY {self.table(table, schema)} ({names}) FROM STDIN (FORMAT BINARY, FREEZE)", reader)

    @staticmethod
    def _reader(batch: Batch, table: Table, source: str) -> pa.RecordBatchReader:
        """A batch table's rows in the target table's columns and types, COPY_ROWS at a time."""
        columns = ", ".join(f"CAST({DIALECT.quote(c.name)} AS {DUCKDB_TYPES[c.type]})" for c in table.columns)
        return batch.con.sql(f"SELECT {columns} FROM {source}").to_arrow_reader(COPY_ROWS)

    def _merge(self, cur: psycopg.Cursor, batch: Batch) -> int:
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
        for purpose, statement in SqlMerge(DIALECT.quote, self.table, self.stage, anti_join=False).statements():
            self._timed(f"merge {purpose}", lambda: cur.execute(statement))
            if purpose == "songplays":
                inserted = cur.rowcount
        for key in rebuild:
            self._timed(f"key {key.name}", lambda: cur.execute(key.create))
        return inserted

    def _large(self, cur: psycopg.Cursor, batch: Batch) -> bool:
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

    # -- reads ---------------------------------------------------------------

    def row_counts(self) -> dict[str, int]:
        """Within a run, one statement on the run's connection instead of a new connection per table."""
        if self._con is None:
            return super().row_counts()
        counts = ", ".join(f"(SELECT count(*) FROM {self.table(t)})" for t in STAR)
        try:
            row = self._con.execute(f"SELECT {counts}").fetchone()
        except psycopg.Error as exc:
            raise TargetError(f"counting the rows of {self.describe()} failed: {self._scrub(exc)}") from None
        return dict(zip((t.name for t in STAR), row))

    def query(self, sql: str) -> tuple[list[str], Iterator[tuple]]:
        """One read-only statement through a server-side cursor on its own connection, in UTC.

        Its own connection: the caller may hold several row iterators at once,
        each ends its transaction (and connection) when exhausted or dropped.
        """
        con = self._connect()
        try:
            con.execute("BEGIN READ ONLY")
            cursor = con.cursor(name="sparkify_query")
            cursor.execute(sql)
        except psycopg.Error as exc:
            con.close()
            raise TargetError(f"query failed on {self.describe()}: {self._scrub(exc)}") from None
        columns = [d.name for d in cursor.description]

        def rows() -> Iterator[tuple]:
            try:
                while chunk := cursor.fetchmany(READ_ROWS):
                    yield from chunk
            except psycopg.Error as exc:
                raise TargetError(f"query failed on {self.describe()}: {self._scrub(exc)}") from None
            finally:
                con.close()

        return columns, rows()
