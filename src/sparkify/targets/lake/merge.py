"""The lake's merge: the SQL targets' ON CONFLICT statements, run on the rows a batch can change.

Parquet files cannot be updated, so a run rewrites whole partitions: the
ones a batch touches are loaded from the live version into working tables
(schema `w`, with primary keys) on the engine's DuckDB connection, the very
statements of `sqlmerge` merge the batch into them, and a per-partition
fingerprint (row count and a sum of row hashes) taken before and after tells
which partitions really changed; only those are written again.

Loading only the touched partitions is enough because every primary key
fixes its row's partition: a songplay's id is derived from its `ts`, which
fixes `start_time`, its year and month; a time row is keyed by `start_time`;
a song keeps the (year, artist) of its first load, and the engine never
hands back a song_id the catalogue holds. Unpartitioned tables are loaded
whole when the batch touches them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import duckdb
import pyarrow as pa

from sparkify.schema import ALL_TABLES, RUNS, Table, create_table_sql
from sparkify.targets.lake.layout import DIALECT, Layout, dataset, q, select_sql
from sparkify.targets.lake.store import Manifest, Store
from sparkify.targets.sqlmerge import UPSERTED, SqlMerge

log = logging.getLogger(__name__)

WORK = "w"
SOURCES: dict[str, tuple[str, ...]] = {
    "artists": ("b_artists",),
    "songs": ("b_songs",),
    "_sparkify_song_records": ("b_song_records",),
    "users": ("b_users",),
    "_sparkify_user_latest": ("b_users",),
    "time": ("b_time",),
    "songplays": ("b_songplays",),
    "rejects": ("b_rejects", "b_files"),
    "_sparkify_files": ("b_files",),
    "_sparkify_runs": (),
}
"""The batch tables whose rows can change each lake table (the runs table changes on every run)."""
KEYED = frozenset(t.name for t in UPSERTED)
"""The tables sqlmerge merges by ON CONFLICT, which needs their key. It adds rows to the others by
anti-join, so their working tables go unkeyed: DuckDB holds a key's index in memory (about 50 bytes
a key), and 10 M events' keyed plays and times did not fit the default 600 MB limit."""


class LakeMerge:
    def __init__(self, con: duckdb.DuckDBPyConnection, layout: Layout, base: Manifest | None, store: Store):
        """`base` is the version merged into (None: an empty lake), read from `store`."""
        self.con, self.layout, self.base, self.store = con, layout, base, store

    def _one(self, sql: str) -> tuple:
        return self.con.execute(sql).fetchall()[0]

    def _work(self, table: Table) -> str:
        return f"{WORK}.{q(table.name)}"

    def create_work(self) -> None:
        """Empty working tables, keyed where sqlmerge's ON CONFLICT needs it."""
        self.con.execute(f"DROP SCHEMA IF EXISTS {WORK} CASCADE")
        self.con.execute(f"CREATE SCHEMA {WORK}")
        for table in ALL_TABLES:
            keyed = table if table.name in KEYED else replace(table, primary_key=())
            self.con.execute(create_table_sql(keyed, DIALECT, schema=WORK))

    def prepare(self) -> dict[str, dict]:
        """Load into the working tables what the batch touches; their fingerprints before the merge."""
        self.create_work()
        before = {}
        for table in ALL_TABLES:
            touched = self._touched(table)
            if touched:
                self._load(table, touched)
                before[table.name] = self.fingerprints(table)
        return before

    def _touched(self, table: Table) -> set[tuple]:
        sources = SOURCES[table.name]
        if not self.layout.partition_by(table):
            if table is RUNS or any(self._one(f"SELECT count(*) FROM {s}")[0] for s in sources):
                return {()}
            return set()
        (source,) = sources
        return {tuple(r) for r in self.con.execute(
            f"SELECT DISTINCT {', '.join(self.layout.partition_sql(table))} FROM {source}").fetchall()}

    def _load(self, table: Table, touched: set[tuple]) -> None:
        base = self.base
        entries = [e for e in base.files(table.name) if e.partition in touched] if base else []
        if entries:
            files = dataset(self.layout, table, entries, lambda rel: self.store.path(base, rel), self.store.fs)
            self.con.register("sp_lake_load", files)
            self.con.execute(f"INSERT INTO {self._work(table)} {select_sql(table, 'sp_lake_load')}")
            self.con.unregister("sp_lake_load")

    def fingerprints(self, table: Table) -> dict[tuple, tuple]:
        parts = self.layout.partition_sql(table)
        rows = f"hash({', '.join(q(c) for c in table.column_names)})::HUGEINT"
        group = f" GROUP BY {', '.join(parts)}" if parts else ""
        select = ", ".join([*parts, "count(*)", f"coalesce(sum({rows}), 0)"])
        return {tuple(r[:-2]): tuple(r[-2:]) for r in self.con.execute(
            f"SELECT {select} FROM {self._work(table)}{group}").fetchall()}

    def merge(self, run_id: str, summary: Callable[[int], str]) -> tuple[int, dict[str, set[tuple]]]:
        """Run sqlmerge's statements and record the run; (songplays inserted, changed partitions per table)."""
        before = self.prepare()
        merge = SqlMerge(q, self._work, lambda name: name)
        inserted = 0
        for purpose, sql in merge.statements():
            rows = self.con.execute(sql).fetchall()
            if purpose == "songplays":
                inserted = rows[0][0]
        self.con.execute(f"INSERT INTO {self._work(RUNS)} VALUES (?, now(), now(), ?)", [run_id, summary(inserted)])
        changed = {}
        for table in ALL_TABLES:
            if table.name in before:
                old, new = before[table.name], self.fingerprints(table)
                keys = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
                if keys:
                    changed[table.name] = keys
        return inserted, changed

    def rows(self, table: Table, partitions: set[tuple]) -> pa.RecordBatchReader:
        """The working table's rows of `partitions`, sorted, with the derived partition columns."""
        names, exprs = self.layout.partition_by(table), self.layout.partition_sql(table, "t.")
        derived = [f"{e} AS {q(n)}" for n, e in zip(names, exprs, strict=True) if n in self.layout.derived(table)]
        cols = ", ".join([*(f"t.{q(c)}" for c in table.column_names), *derived])
        where = ""
        if names:
            _, schema = self.layout.arrow_schemas(table)
            self.con.register("sp_lake_keys", pa.Table.from_pylist(
                [dict(zip(names, k, strict=True)) for k in partitions], schema=schema))
            on = " AND ".join(f"k.{q(n)} IS NOT DISTINCT FROM {e}" for n, e in zip(names, exprs, strict=True))
            where = f" SEMI JOIN sp_lake_keys k ON {on}"
        sql = f"SELECT {cols} FROM {self._work(table)} t{where} ORDER BY {self.layout.sort_sql(table, 't.')}"
        return self.con.sql(sql).to_arrow_reader(200_000)


