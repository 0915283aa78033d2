"""The lake's merge: the SQL targets' ON CONFLICT statements, run on the rows a batch can change.

Parquet files cannot be updated, so a run rewrites whole partitions: the
ones a batch touches are loaded from the live version into working tables
(schema `w`, with primary keys) on the engine's DuckDB connection, the very
statements of `sqlmerge` merge the batch into them, and a per-partition
fingerprint (row count and a sum of row hashes) taken before and after tells
which partitions really changed; only those are written again.

What a batch can change, and so what is loaded: the partitions of its new
rows (a songplay's id is derived from its `ts`, which fixes `start_time`,
its year and month; a time row is keyed by `start_time`); for a song whose
record it replaces, the partition of the stored record too (the song may
move to another year or artist); for every match key its song records
change, the songplays partitions of the stored plays of that key, which are
matched again. Those plays are found in the play keys by a read filtered on
the keys. The play keys themselves are never rewritten for new plays: their
new rows go to a new file of the partition (layout.Layout.appended); a
partition of them is loaded whole, and rewritten, only where the batch
redelivers a stored play, whose stored copy the value rule compares with.
Unpartitioned tables are loaded whole when the batch touches them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sparkify.schema import ALL_TABLES, PLAY_KEYS, RUNS, SONG_RECORDS, SONGPLAYS, SONGS, Table, create_table_sql
from sparkify.targets.lake.layout import DIALECT, Layout, dataset, q
from sparkify.targets.lake.store import Manifest, Store
from sparkify.targets.sqlmerge import UPSERTED, SqlMerge

log = logging.getLogger(__name__)

WORK = "w"
Changed = dict[str, set[tuple]]
"""Partitions per table."""
SOURCES: dict[str, tuple[str, ...]] = {
    "artists": ("b_artists",),
    "songs": ("b_songs",),
    "_sparkify_song_records": ("b_song_records",),
    "users": ("b_users",),
    "_sparkify_user_latest": ("b_users",),
    "time": ("b_time",),
    "songplays": ("b_songplays",),
    "_sparkify_play_keys": ("b_play_keys",),
    "rejects": ("b_rejects", "b_files"),
    "_sparkify_files": ("b_files",),
    "_sparkify_runs": (),
}
"""The batch tables whose rows can change each lake table (the runs table changes on every run)."""
KEYED = frozenset(t.name for t in UPSERTED)
"""The tables sqlmerge merges by ON CONFLICT, which needs their key. It adds rows to the others by
anti-join, so their working tables go unkeyed: DuckDB holds a key's index in memory (about 50 bytes
a key), and 10 M events' keyed plays and times did not fit the default 600 MB limit."""
NEW = "sp_new"
"""A column of the working tables of appended tables only: true for the rows the merge inserted (its default),
false for those loaded, so the rows a run adds to a partition it does not rewrite are told from the stored ones."""


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
            if self.layout.appended(table):
                self.con.execute(f"ALTER TABLE {self._work(table)} ADD COLUMN {NEW} BOOLEAN DEFAULT true")

    def prepare(self) -> dict[str, dict]:
        """Load into the working tables what the batch touches; their fingerprints before the merge.

        The song records come first (the stored records a batch replaces give the songs' old partitions
        and the match keys whose plays are matched again), the play keys last (loaded whole where the
        songplays loaded hold a play the batch redelivers)."""
        self.create_work()
        self.loaded: dict[str, set[tuple]] = {}
        before: dict[str, dict] = {}
        order = [SONG_RECORDS, *(t for t in ALL_TABLES if t not in (SONG_RECORDS, PLAY_KEYS)), PLAY_KEYS]
        for table in order:
            if table is SONGPLAYS:
                self._keyed_plays()
            touched = self._touched(table)
            if touched:
                self._load(table, touched)
                self.loaded[table.name] = touched
            if table is PLAY_KEYS:
                self._add_keyed_plays(touched)
            if touched or self.layout.appended(table):
                before[table.name] = self.fingerprints(table)
        return before

    def _partitions(self, table: Table, sql: str) -> set[tuple]:
        """The partitions of `table` that the rows of `sql` (with the table's columns) fall in."""
        return {tuple(r) for r in self.con.execute(
            f"SELECT DISTINCT {', '.join(self.layout.partition_sql(table))} FROM ({sql})").fetchall()}

    def _touched(self, table: Table) -> set[tuple]:
        sources = SOURCES[table.name]
        if not self.layout.partition_by(table):
            if table is RUNS or any(self._one(f"SELECT count(*) FROM {s}")[0] for s in sources):
                return {()}
            return set()
        (source,) = sources
        if table is PLAY_KEYS:
            return self._partitions(table, f"SELECT * FROM {source} WHERE songplay_id IN "
                                           f"(SELECT songplay_id FROM {self._work(SONGPLAYS)})")
        touched = self._partitions(table, f"SELECT * FROM {source}")
        if table is SONGS:
            touched |= self._partitions(table, f"SELECT * FROM {self._work(SONG_RECORDS)} "
                                               "SEMI JOIN b_song_records USING (song_id)")
        if table is SONGPLAYS:
            touched |= self._partitions(PLAY_KEYS, "SELECT * FROM sp_keyed")
        return touched

    def _keyed_plays(self) -> None:
        """sp_keyed: the stored play keys of every match key the batch's song records carry or replace,
        whose plays sqlmerge matches again. Read from the live files with a filter on the keys, which
        skips every row group whose title keys hold none of them (the files are sorted by key)."""
        columns = ", ".join(q(c) for c in PLAY_KEYS.column_names)
        self.con.execute(f"""
            CREATE OR REPLACE TEMP TABLE sp_changed_keys AS
            SELECT title_key, artist_key FROM b_song_records
            UNION SELECT title_key, artist_key FROM {self._work(SONG_RECORDS)} SEMI JOIN b_song_records USING (song_id)
        """)
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE sp_keyed AS SELECT {columns} FROM {self._work(PLAY_KEYS)} "
                         "LIMIT 0")
        entries = self.base.files(PLAY_KEYS.name) if self.base else []
        keys = self.con.execute("SELECT list(DISTINCT title_key), list(DISTINCT artist_key) "
                                "FROM sp_changed_keys").fetchall()[0]
        if not entries or not keys[0]:
            return
        files = dataset(self.layout, PLAY_KEYS, entries, lambda rel: self.store.path(self.base, rel), self.store.fs)
        wanted = pc.field("title_key").isin(keys[0]) & pc.field("artist_key").isin(keys[1])
        self.con.register("sp_lake_keyed", files.scanner(columns=PLAY_KEYS.column_names, filter=wanted).to_reader())
        self.con.execute(f"INSERT INTO sp_keyed SELECT {columns} FROM sp_lake_keyed "
                         "SEMI JOIN sp_changed_keys USING (title_key, artist_key)")
        self.con.unregister("sp_lake_keyed")

    def _add_keyed_plays(self, whole: set[tuple]) -> None:
        """The play keys read by key, in the partitions not loaded whole: rows sqlmerge reads, never changes."""
        names, parts = self.layout.partition_by(PLAY_KEYS), self.layout.partition_sql(PLAY_KEYS)
        self.con.register("sp_lake_whole", pa.Table.from_pylist(
            [dict(zip(names, k, strict=True)) for k in whole], schema=self.layout.arrow_schemas(PLAY_KEYS)[1]))
        on = " AND ".join(f"w.{q(n)} = {e}" for n, e in zip(names, parts, strict=True))
        columns = ", ".join(q(c) for c in PLAY_KEYS.column_names)
        self.con.execute(f"INSERT INTO {self._work(PLAY_KEYS)} ({columns}, {NEW}) SELECT {columns}, false "
                         f"FROM sp_keyed ANTI JOIN sp_lake_whole w ON {on}")
        self.con.unregister("sp_lake_whole")

    def _load(self, table: Table, touched: set[tuple]) -> None:
        base = self.base
        entries = [e for e in base.files(table.name) if e.partition in touched] if base else []
        if entries:
            files = dataset(self.layout, table, entries, lambda rel: self.store.path(base, rel), self.store.fs)
            self.con.register("sp_lake_load", files)
            columns = ", ".join(q(c) for c in table.column_names)
            new = (f", {NEW}", ", false") if self.layout.appended(table) else ("", "")
            self.con.execute(f"INSERT INTO {self._work(table)} ({columns}{new[0]}) "
                             f"SELECT {columns}{new[1]} FROM sp_lake_load")
            self.con.unregister("sp_lake_load")

    def fingerprints(self, table: Table) -> dict[tuple, tuple]:
        parts = self.layout.partition_sql(table)
        rows = f"hash({', '.join(q(c) for c in table.column_names)})::HUGEINT"
        group = f" GROUP BY {', '.join(parts)}" if parts else ""
        select = ", ".join([*parts, "count(*)", f"coalesce(sum({rows}), 0)"])
        return {tuple(r[:-2]): tuple(r[-2:]) for r in self.con.execute(
            f"SELECT {select} FROM {self._work(table)}{group}").fetchall()}

    def merge(self, run_id: str, summary: Callable[[int], str]) -> tuple[int, Changed, Changed]:
        """Run sqlmerge's statements and record the run; (songplays inserted, the partitions to write again
        per table, the partitions that take a new file of the merge's new rows per appended table)."""
        before = self.prepare()
        merge = SqlMerge(q, self._work, lambda name: name)
        inserted = 0
        for purpose, sql in merge.statements():
            rows = self.con.execute(sql).fetchall()
            if purpose == "songplays":
                inserted = rows[0][0]
        self.con.execute(f"INSERT INTO {self._work(RUNS)} VALUES (?, now(), now(), ?)", [run_id, summary(inserted)])
        changed: Changed = {}
        appended: Changed = {}
        for table in ALL_TABLES:
            if table.name in before:
                old, new = before[table.name], self.fingerprints(table)
                keys = {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}
                if self.layout.appended(table) and keys - self.loaded.get(table.name, set()):
                    appended[table.name] = keys - self.loaded.get(table.name, set())
                    keys &= self.loaded.get(table.name, set())
                if keys:
                    changed[table.name] = keys
        return inserted, changed, appended

    def rows(self, table: Table, partitions: set[tuple], appended: set[tuple] = frozenset()) -> pa.RecordBatchReader:
        """The working table's rows of `partitions`, and the merge's new rows of `appended`, sorted, with
        the derived partition columns."""
        names, exprs = self.layout.partition_by(table), self.layout.partition_sql(table, "t.")
        derived = [f"{e} AS {q(n)}" for n, e in zip(names, exprs, strict=True) if n in self.layout.derived(table)]
        cols = ", ".join([*(f"t.{q(c)}" for c in table.column_names), *derived])
        where = ""
        if names:
            _, schema = self.layout.arrow_schemas(table)
            self.con.register("sp_lake_keys", pa.Table.from_pylist(
                [{**dict(zip(names, k, strict=True)), "sp_all": whole} for keys, whole in ((partitions, True),
                                                                                         (appended, False))
                 for k in keys], schema=schema.append(pa.field("sp_all", pa.bool_()))))
            on = " AND ".join(f"k.{q(n)} IS NOT DISTINCT FROM {e}" for n, e in zip(names, exprs, strict=True))
            where = f" SEMI JOIN sp_lake_keys k ON {on}" + (f" AND (k.sp_all OR t.{NEW})" if appended else "")
        sql = f"SELECT {cols} FROM {self._work(table)} t{where} ORDER BY {self.layout.sort_sql(table, 't.')}"
        return self.con.sql(sql).to_arrow_reader(200_000)


