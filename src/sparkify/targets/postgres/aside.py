"""PostgreSQL first load over several connections: songplays and time are built aside.

One transaction runs in one backend, and that backend's CPU bounds a first
load (docs/postgres.md, "The write alone"). So for a large first load, side
connections COPY songplays and time into a schema of their own and build
their keys there, in parallel with each other and with the run's
transaction, which meanwhile loads the small tables. The run's transaction
then drops its own empty songplays and time, moves the built ones in with
SET SCHEMA, and adds the foreign keys between them and the small tables.

Nothing shows in the target's schema before that transaction commits. A
failure drops the side schema; a kill leaves it behind, and the next run,
holding the same advisory lock, drops it (`sweep`). Replacing the two
tables would lose what hangs on them (grants, views, triggers, comments,
other keys), so a load whose tables carry any of it stays in one
transaction (`refusal`).
"""

from __future__ import annotations

import hashlib
import logging
import queue
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Protocol

import psycopg
import pyarrow as pa

from sparkify.schema import SONGPLAYS, TIME, Dialect, Table, create_table_sql
from sparkify.targets.base import TargetError
from sparkify.targets.postgres.ddl import Key


class Loader(Protocol):
    """What a side build needs of the PostgreSQL target that started it."""

    schema: str
    dialect: Dialect

    def describe(self) -> str: ...
    def connect(self) -> psycopg.Connection: ...
    def redacted(self, message: object) -> str: ...
    def table(self, table: Table, schema: str | None = None) -> str: ...
    def keys(self, schema: str | None = None) -> list[Key]: ...
    def copy_table(self, cur: psycopg.Cursor, table: Table, reader: pa.RecordBatchReader,
                   schema: str | None = None) -> None: ...


log = logging.getLogger(__name__)

BUILT_ASIDE: tuple[Table, ...] = (TIME, SONGPLAYS)
"""The large tables, in the order they are copied: time's key builds while songplays is copied."""
SIDE_CONNECTIONS = 2
"""One per table while they are copied, then both on songplays' indexes."""
SIDE_SETTINGS = ("SET maintenance_work_mem = '256MB'", "SET max_parallel_maintenance_workers = 0")
"""Each build sorts in one process: the parallelism is the connections'."""

REFUSAL = """
SELECT c.relname || ' ' || reason
FROM pg_class c
CROSS JOIN LATERAL (VALUES
    ('is not a plain table', c.relkind <> 'r' OR c.relispartition OR c.relhassubclass
        OR EXISTS (SELECT FROM pg_inherits i WHERE i.inhrelid = c.oid)),
    ('has grants', c.relacl IS NOT NULL
        OR EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attacl IS NOT NULL)),
    ('is owned by another role', c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)),
    ('has comments', EXISTS (SELECT FROM pg_description d WHERE d.objoid = c.oid
                                                            AND d.classoid = 'pg_class'::regclass)),
    ('has storage options or a tablespace', c.reloptions IS NOT NULL OR c.reltablespace <> 0),
    ('has row security', c.relrowsecurity),
    ('has keys, indexes or constraints not sparkify''s',
        EXISTS (SELECT FROM pg_constraint k WHERE c.oid IN (k.conrelid, k.confrelid))
        OR EXISTS (SELECT FROM pg_index i WHERE i.indrelid = c.oid)),
    ('has dependent objects (views, triggers, rules, policies, defaults, statistics)',
        EXISTS (SELECT FROM pg_depend d WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
                AND NOT (d.classid = 'pg_type'::regclass AND d.objid = c.reltype)
                AND NOT (d.classid = 'pg_class'::regclass AND d.objid = c.reltoastrelid))
        OR EXISTS (SELECT FROM pg_depend d WHERE d.refclassid = 'pg_type'::regclass AND d.refobjid = c.reltype
                   AND NOT (d.classid = 'pg_type'::regclass
                            AND d.objid = (SELECT typarray FROM pg_type WHERE oid = c.reltype))))
) AS r (reason, refused)
WHERE c.oid = ANY(%s::regclass[]) AND refused
UNION ALL
SELECT 'the role may not create schemas' WHERE NOT has_database_privilege(current_database(), 'CREATE')
"""
"""Why songplays and time may not be replaced, after the run dropped sparkify's own keys: anything left on
them is someone else's, and would be lost with the table."""


def aside_schema(schema: str) -> str:
    """The side schema of a target schema: one per schema, as the advisory lock is."""
    return "_sparkify_aside_" + hashlib.sha256(schema.encode()).hexdigest()[:16]


def sweep(con: psycopg.Connection, schema: str) -> None:
    """Drop what a killed first load left aside; called while holding the schema's advisory lock."""
    name = aside_schema(schema)
    if con.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", [name]).fetchone():
        con.execute(f'DROP SCHEMA "{name}" CASCADE')
        log.info("dropped %s, the tables of an interrupted first load of schema %s", name, schema)


def refusal(cur: psycopg.Cursor, tables: list[str]) -> str | None:
    """Why the first load must stay in one transaction, or None."""
    reasons = [r[0] for r in cur.execute(REFUSAL, [tables]).fetchall()]
    return "; ".join(reasons) or None


class AsideBuild:
    """songplays and time, copied and keyed on side connections while the run's transaction goes on."""

    def __init__(self, target: Loader, connections: list[psycopg.Connection]):
        self.target = target
        self.schema = aside_schema(target.schema)
        self.names = {t.name for t in BUILT_ASIDE}
        self.free: queue.Queue[psycopg.Connection] = queue.Queue()
        for con in connections:
            self.free.put(con)
        self.connections = connections
        self.pool = ThreadPoolExecutor(len(connections), thread_name_prefix="sparkify-aside")
        self.builds: list[Future] = []
        keys = target.keys(self.schema)
        self.keys = [k for k in keys if set(k.tables) <= self.names]
        self.deferred = [t for t in BUILT_ASIDE if sum(k.tables == (t.name,) for k in self.keys) > 1]
        """Tables whose primary key is attached once their other indexes are built (`_key_statements`)."""

    # -- splitting the work -------------------------------------------------------

    def main_keys(self, keys: list[Key]) -> tuple[list[Key], list[Key]]:
        """The target's keys the run's transaction builds: before the swap (on the small tables alone)
        and after it (foreign keys from the tables built aside to the small ones)."""
        before = [k for k in keys if not set(k.tables) & self.names]
        after = [k for k in keys if set(k.tables) & self.names and not set(k.tables) <= self.names]
        return before, after

    # -- the side connections -----------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection]:
        con = self.free.get()
        try:
            yield con
        finally:
            self.free.put(con)

    def copy(self, table: Table, reader: pa.RecordBatchReader) -> int:
        """COPY one table into a bare table of the side schema (FREEZE: created in the same transaction),
        commit, and start building its keys; the rows copied. Autovacuum stays off the table until it is
        moved in: its lock would hold up the key builds and the move (up to deadlock_timeout)."""
        start = time.perf_counter()
        with self._connection() as con:
            with con.transaction():
                cur = con.cursor()
                cur.execute(create_table_sql(table, self.target.dialect, self.schema, keys=False)
                            + " WITH (autovacuum_enabled = off)")
                self.target.copy_table(cur, table, reader, self.schema)
                copied = cur.rowcount
        log.debug("aside copy %s: %.3f s", table.name, time.perf_counter() - start)
        for key in self.keys:
            if key.tables == (table.name,):
                self.builds.append(self.pool.submit(self._build, key.name, self._key_statements(table, key)))
        return copied

    def _key_statements(self, table: Table, key: Key) -> list[str]:
        """A primary key is built as a unique index, which other connections can index the table beside
        (ADD PRIMARY KEY would lock them out), then made the primary key: at once where the table has no
        other index (time), else once they are built (`finish`)."""
        if not key.primary:
            return [key.create]
        q = self.target.dialect.quote
        columns = ", ".join(map(q, table.primary_key))
        index = f"CREATE UNIQUE INDEX {q(key.name)} ON {self.target.table(table, self.schema)} ({columns})"
        return [index] if table in self.deferred else [index, self._attach(table)]

    def _attach(self, table: Table) -> str:
        q, name = self.target.dialect.quote, f"{table.name}_pkey"
        return (f"ALTER TABLE {self.target.table(table, self.schema)} ADD CONSTRAINT {q(name)} "
                f"PRIMARY KEY USING INDEX {q(name)}")

    def _build(self, what: str, statements: list[str], merge_join: bool = False) -> None:
        start = time.perf_counter()
        with self._connection() as con, con.transaction():
            if merge_join:
                con.execute("SET LOCAL enable_hashjoin = off")
            for statement in statements:
                con.execute(statement)
        log.debug("aside %s: %.3f s", what, time.perf_counter() - start)

    def finish(self, cur: psycopg.Cursor) -> None:
        """Wait for the side builds, key the tables to each other, and move them into the target schema."""
        for build in self.builds:
            build.result()
        crossing = [k for k in self.keys if len(k.tables) == 2]
        self._build("keys across", [*map(self._attach, self.deferred), *(k.create for k in crossing)],
                    merge_join=all(k.indexed for k in crossing))
        q, target = self.target.dialect.quote, self.target
        for table in reversed(BUILT_ASIDE):
            cur.execute(f"DROP TABLE {target.table(table)}")
        for table in BUILT_ASIDE:
            cur.execute(f"ALTER TABLE {target.table(table, self.schema)} SET SCHEMA {q(target.schema)}")
            cur.execute(f"ALTER TABLE {target.table(table)} RESET (autovacuum_enabled)")
        cur.execute(f"DROP SCHEMA {q(self.schema)}")

    def close(self, failed: bool) -> None:
        """Stop the builds and the side connections; after a failure, drop the side schema too."""
        if failed:
            for con in self.connections:  # a build still running need not finish
                con.cancel_safe()
        self.pool.shutdown(wait=True, cancel_futures=True)
        for con in self.connections:
            con.close()
        if failed:
            try:
                with self.target.connect() as con:
                    sweep(con, self.target.schema)
            except (psycopg.Error, TargetError) as exc:  # the next run sweeps it
                log.warning("could not drop %s after the failed load (the next run will): %s",
                            self.schema, self.target.redacted(exc))


@contextmanager
def aside_build(target: Loader, cur: psycopg.Cursor, rows: int,
                threshold: int) -> Iterator[AsideBuild | None]:
    """An AsideBuild for a first load of `rows` song plays, or None where one transaction must do it all:
    below `threshold`, or when the tables carry what replacing them would lose."""
    if rows < threshold:
        yield None
        return
    reason = refusal(cur, [target.table(t) for t in BUILT_ASIDE])
    connections: list[psycopg.Connection] = []
    if reason is None:
        try:
            for _ in range(SIDE_CONNECTIONS):
                connections.append(target.connect())
            for con in connections:
                for setting in SIDE_SETTINGS:
                    con.execute(setting)
            sweep(connections[0], target.schema)
            connections[0].execute(f"CREATE SCHEMA {target.dialect.quote(aside_schema(target.schema))}")
        except Exception as exc:  # a server out of connections, say: the one-transaction load still works
            reason = f"no side connection: {target.redacted(exc)}"
            for con in connections:
                con.close()
    if reason is not None:
        log.info("first load of %s in one transaction: %s", target.describe(), reason)
        yield None
        return
    build = AsideBuild(target, connections)
    failed = True
    try:
        yield build
        failed = False
    finally:
        build.close(failed)

