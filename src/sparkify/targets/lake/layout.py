"""The lake's layout and its Parquet I/O: folders, hive partitions, exact Arrow types.

Files hold the table's columns except the hive partition columns, which live
in the folder names (`year=2018/month=11`, NULL as `__HIVE_DEFAULT_PARTITION__`,
values URI-escaped), as Spark writes them. songplays' year and month are
derived from start_time, and so are those of the play keys (`_sparkify_play_keys`),
which are laid out for the one read a run makes of them: the plays of a
few match keys (see PLAY_KEYS_ROW_GROUP). Reading never parses paths: each file's partition
values come from the manifest, so a version reads back with the exact types
of schema.py whatever the folder names look like.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.dataset as ds

from sparkify.schema import DUCKDB_DIALECT, PLAY_KEYS, REJECTS, SONGPLAYS, SONGS, Dialect, Table, arrow_schema
from sparkify.targets.lake.store import FileEntry

DIALECT = Dialect("duckdb-lake", DUCKDB_DIALECT.types, enforce_foreign_keys=False)
q = DIALECT.quote

SONGS_LAYOUTS = {"hive": ("year", "artist_id"), "compact": ("year",)}

PLAY_KEYS_ROW_GROUP = 1 << 16
"""Rows per row group of the play keys. Their files are sorted by (title_key, artist_key), so each row group
holds a narrow range of title keys and a read filtered by the keys of a run's songs skips every row group whose
range holds none of them (Parquet's min/max statistics): the smaller the group, the less a few keys read."""


@dataclass(frozen=True)
class Layout:
    """Folders and partitions: the spec's layout, or songs by year only (`compact`)."""

    songs_partition: tuple[str, ...] = SONGS_LAYOUTS["hive"]

    def partition_by(self, table: Table) -> tuple[str, ...]:
        """The play keys go with their plays (year and month of start_time): the plays a late song matches
        again are read and rewritten by those partitions, and new plays add keys only to their months."""
        if table is PLAY_KEYS:
            return SONGPLAYS.partition_by
        return self.songs_partition if table is SONGS else table.partition_by

    @staticmethod
    def appended(table: Table) -> bool:
        """Whether a run adds a file to a partition for its new rows rather than rewriting the partition:
        the play keys, so that a run without songs never reads them (the merge rewrites a partition of
        them only when a redelivered play replaces one of its rows)."""
        return table is PLAY_KEYS

    @staticmethod
    def row_group(table: Table) -> int | None:
        """Rows per row group, where the table's reads need smaller groups than the writer's default."""
        return PLAY_KEYS_ROW_GROUP if table is PLAY_KEYS else None

    @staticmethod
    def folder(table: Table) -> str:
        return "_rejects" if table is REJECTS else table.name

    def derived(self, table: Table) -> list[str]:
        """Partition columns that are not table columns: computed from the table's timestamp."""
        return [p for p in self.partition_by(table) if p not in table.column_names]

    def partition_sql(self, table: Table, alias: str = "") -> list[str]:
        stamp = next((c.name for c in table.columns if c.type == "timestamp"), None)
        return [f"{alias}{q(p)}" if p in table.column_names else f"{p}({alias}{q(stamp)})::INTEGER"
                for p in self.partition_by(table)]

    def partition_types(self, table: Table) -> dict[str, str]:
        """DuckDB types of the partition columns, for read_parquet's hive_types."""
        names = table.column_names
        return {p: DIALECT.types[table.column(p).type] if p in names else "INTEGER" for p in self.partition_by(table)}

    def partition_python_types(self, table: Table) -> dict[str, type]:
        return {p: str if t == "VARCHAR" else int for p, t in self.partition_types(table).items()}

    def arrow_schemas(self, table: Table) -> tuple[pa.Schema, pa.Schema]:
        """(every column the writer receives, the hive partition columns among them)."""
        full = arrow_schema(table)
        for name in self.derived(table):
            full = full.append(pa.field(name, pa.int32(), nullable=False))
        return full, pa.schema([full.field(p) for p in self.partition_by(table)])

    def sort_sql(self, table: Table, alias: str = "") -> str:
        """The order rows are written in: partition, then time (the play keys: their match key), then key
        (a total, repeatable order)."""
        stamps = [c.name for c in table.columns if c.type == "timestamp" and c.name not in table.primary_key]
        if table is PLAY_KEYS:
            stamps = ["title_key", "artist_key"]
        keys = [*self.partition_sql(table, alias), *(alias + q(c) for c in (*stamps, *table.primary_key))]
        return ", ".join(keys) if keys else "1"


def dataset(layout: Layout, table: Table, entries: Iterable[FileEntry], path: Callable[[str], str],
            filesystem) -> ds.Dataset:
    """The files of one table as an Arrow dataset, partition values from the manifest (no listing, no I/O)."""
    full, partition = layout.arrow_schemas(table)
    fmt = ds.ParquetFileFormat()
    equal: dict[tuple, ds.Expression] = {}  # one expression per (column, value): years repeat a lot

    def condition(field: pa.Field, value) -> ds.Expression:
        if (field.name, value) not in equal:
            column = ds.field(field.name)
            equal[field.name, value] = column.is_null() if value is None else column == pa.scalar(value, field.type)
        return equal[field.name, value]

    fragments = []
    for entry in entries:
        expr = ds.scalar(True)
        if entry.partition:
            expr = functools.reduce(operator.and_, (condition(f, v) for f, v in zip(partition, entry.partition,
                                                                                      strict=True)))
        fragments.append(fmt.make_fragment(path(entry.path), filesystem=filesystem, partition_expression=expr,
                                           file_size=entry.bytes))
    file_fields = [f for f in full if f.name not in partition.names]
    return ds.FileSystemDataset(fragments, pa.schema([*file_fields, *partition]), fmt, filesystem)


def select_sql(table: Table, source: str) -> str:
    """The table's columns, in order, from a registered dataset (dropping derived partition columns)."""
    return f"SELECT {', '.join(q(c) for c in table.column_names)} FROM {q(source)}"


COMPRESSIONS = ("snappy", "zstd", "none")
"""snappy by default: Spark's default codec; it writes a tiny file in half the time of zstd (0.9 against
1.6 ms here, which counts with one songs file per artist) and a big one about a third faster, for files
about 17 % larger (songplays of 1m events: 17.1 against 14.6 MiB)."""
