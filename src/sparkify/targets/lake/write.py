"""Writing one table of the lake: hive-partitioned Parquet from rows sorted by partition.

pyarrow's write_dataset keeps a writer per partition and spent about 1.2 ms
on each one here; songs in the spec's layout have a partition per artist
(14,749 for the generated catalogue), so that alone took 18 s. The rows
arrive sorted by partition (merge.py, LakeMerge.rows), so each partition is one run:
a small run becomes one file in memory, written by a pool of threads
(pyarrow releases the GIL while it encodes and writes), and a run longer
than a row group streams to its own writer, a row group at a time. Memory
stays bounded by the row group size and the rows handed to the pool.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sparkify.schema import Table
from sparkify.targets.lake.layout import Layout
from sparkify.targets.lake.store import NULL_PARTITION, FileEntry

ROW_GROUP = 1 << 20
"""Rows per row group (DuckDB's and Spark's readers split work by row group), unless the layout asks for fewer."""
POOL_ROWS = 2 * ROW_GROUP
"""Rows of small partitions waiting for the pool before the writer waits for it."""


@dataclass
class Written:
    entries: list[FileEntry]
    paths: list[str]


def hive_folder(names: tuple[str, ...], values: tuple) -> str:
    """`year=2018/artist_id=AR1`: NULL as Hive's default partition, other values URI-escaped."""
    return "/".join(f"{n}={NULL_PARTITION if v is None else quote(str(v), safe='')}"
                    for n, v in zip(names, values, strict=True))


def partition_runs(batch: pa.RecordBatch, names: tuple[str, ...]) -> Iterator[tuple[tuple, pa.RecordBatch]]:
    """(partition values, rows) for each run of equal partition values in a sorted batch."""
    if not names or batch.num_rows == 0:
        yield (), batch
        return
    change = None
    for name in names:
        column = batch.column(name)
        before, after = column.slice(0, len(column) - 1), column.slice(1)
        differs = pc.fill_null(pc.not_equal(before, after), True)
        differs = pc.if_else(pc.and_(pc.is_null(before), pc.is_null(after)), False, differs)
        change = differs if change is None else pc.or_(change, differs)
    starts = [0, *(i + 1 for i in pc.indices_nonzero(change).to_pylist()), batch.num_rows]
    firsts = [batch.column(n).take(starts[:-1]).to_pylist() for n in names]  # one conversion per batch
    for run, (start, end) in enumerate(zip(starts, starts[1:])):
        yield tuple(values[run] for values in firsts), batch.slice(start, end - start)


class TableWriter:
    """Files of one table under `base_dir`: `rel` names them for the manifest."""

    def __init__(self, layout: Layout, table: Table, base_dir: str, filesystem, version: str,
                 rel: Callable[[str], str], max_rows_per_file: int, compression: str, threads: int):
        full, partition = layout.arrow_schemas(table)
        self.full, self.names = full, tuple(partition.names)
        self.file_schema = pa.schema([f for f in full if f.name not in self.names])
        self.base_dir, self.fs, self.version, self.rel = base_dir, filesystem, version, rel
        self.max_rows, self.compression = max_rows_per_file, compression
        self.row_group = min(max_rows_per_file, layout.row_group(table) or ROW_GROUP)
        self.local = isinstance(filesystem, pafs.LocalFileSystem)
        self.threads = threads
        self.out = Written([], [])
        self._waiting: deque[Future] = deque()
        self._waiting_rows = 0
        self._key: tuple = ()
        self._rows: list[pa.RecordBatch] = []
        self._count = 0
        self._files = 0
        self._open: tuple[pq.ParquetWriter, pa.NativeFile, str] | None = None
        self._open_rows = 0

    def write(self, reader: pa.RecordBatchReader) -> Written:
        """Every row of `reader` (sorted by partition) into files; what was written."""
        with ThreadPoolExecutor(self.threads, thread_name_prefix="sparkify-parquet") as self._pool:
            try:
                for batch in reader:
                    for key, rows in partition_runs(batch.cast(self.full), self.names):
                        if key != self._key:
                            self._end_partition()
                            self._key = key
                        self._add(rows.drop_columns(list(self.names)))
                self._end_partition()
                if not self.out.entries and not self._waiting and not self.names:
                    self._small(self.file_schema.empty_table())  # an unpartitioned table always has a file
                self._drain(None)
            finally:
                if self._open is not None:
                    self._open[1].close()
                for future in self._waiting:
                    future.cancel()
        return self.out

    def _add(self, rows: pa.RecordBatch) -> None:
        self._rows.append(rows)
        self._count += rows.num_rows
        while self._count >= self.row_group:
            self._stream(self._take(min(self.row_group, self.max_rows - self._open_rows)))

    def _take(self, n: int) -> pa.Table:
        """The first `n` rows held."""
        table = pa.Table.from_batches(self._rows, self.file_schema)
        if n >= self._count:  # a whole small partition: the common case, one per artist
            self._rows, self._count = [], 0
            return table
        taken, rest = table.slice(0, n), table.slice(n)
        self._rows, self._count = rest.to_batches(), rest.num_rows
        return taken

    def _path(self) -> str:
        folder = f"{self.base_dir}/{hive_folder(self.names, self._key)}" if self.names else self.base_dir
        self._files += 1
        return f"{folder}/part-{self.version}-{self._files - 1}.parquet"

    def _stream(self, rows: pa.Table) -> None:
        """Rows into the partition's open file, which is closed once it holds max_rows_per_file."""
        if self._open is None:
            path = self._path()
            sink = self._sink(path)
            self._open = (pq.ParquetWriter(sink, self.file_schema, compression=self.compression), sink, path)
        self._open[0].write_table(rows, row_group_size=self.row_group)
        self._open_rows += rows.num_rows
        if self._open_rows >= self.max_rows:
            self._close_open()

    def _close_open(self) -> None:
        (writer, sink, path), self._open = self._open, None
        writer.close()
        size = sink.tell()
        sink.close()
        self._record(path, self._key, self._open_rows, size)
        self._open_rows = 0

    def _end_partition(self) -> None:
        if self._open is not None:
            while self._count:
                self._stream(self._take(min(self._count, self.max_rows - self._open_rows)))
            if self._open is not None:
                self._close_open()
        elif self._count:
            self._small(self._take(self._count))
        self._rows, self._count, self._files = [], 0, 0

    def _small(self, rows: pa.Table) -> None:
        """A whole partition as one file, encoded and written by the pool."""
        self._drain(POOL_ROWS - rows.num_rows)
        self._waiting.append(self._pool.submit(self._write_file, rows, self._path(), self._key))
        self._waiting_rows += rows.num_rows

    def _write_file(self, rows: pa.Table, path: str, key: tuple) -> tuple[str, tuple, int, int]:
        buffer = pa.BufferOutputStream()
        pq.write_table(rows, buffer, compression=self.compression, row_group_size=self.row_group)
        data = buffer.getvalue()
        with self._sink(path) as sink:
            sink.write(data)
        return path, key, rows.num_rows, data.size

    def _sink(self, path: str) -> pa.NativeFile:
        """A new file; on local disk its folder is made first (in the pool's threads: a folder per artist)."""
        if self.local:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        return self.fs.open_output_stream(path)

    def _drain(self, room: int | None) -> None:
        """Wait for the pool until at most `room` rows wait for it (None: until all are written)."""
        while self._waiting and (room is None or self._waiting_rows > room):
            path, key, rows, size = self._waiting.popleft().result()
            self._waiting_rows -= rows
            self._record(path, key, rows, size)

    def _record(self, path: str, key: tuple, rows: int, size: int) -> None:
        self.out.paths.append(path)
        self.out.entries.append(FileEntry(self.rel(path), key, rows, size))


def write_parquet(reader: pa.RecordBatchReader, layout: Layout, table: Table, base_dir: str, filesystem,
                  version: str, rel: Callable[[str], str], max_rows_per_file: int,
                  compression: str = "snappy", threads: int = 4) -> Written:
    """Write one table's rows (sorted by partition) as hive-partitioned, compressed Parquet; what was written."""
    return TableWriter(layout, table, base_dir, filesystem, version, rel, max_rows_per_file, compression,
                       threads).write(reader)
