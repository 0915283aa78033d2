"""The lake's Parquet writer: every row once, in its partition's folder, files rolled at max_rows_per_file."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from sparkify.schema import SONGS, USERS
from sparkify.targets.lake.layout import Layout
from sparkify.targets.lake.store import NULL_PARTITION
from sparkify.targets.lake.write import hive_folder, write_parquet


def songs(n: int, seed: int = 1) -> pa.Table:
    """Songs over a few artists and years (some NULL), sorted by partition as lakemerge hands them over."""
    rng = random.Random(seed)
    rows = [{"song_id": f"SO{i:05d}", "title": f"t{i}", "artist_id": f"AR/{rng.randrange(7)} x",
             "year": rng.choice([None, 1990, 2005]), "duration": float(i)} for i in range(n)]
    rows.sort(key=lambda r: (r["year"] is None, r["year"] or 0, r["artist_id"], r["song_id"]))
    return pa.Table.from_pylist(rows, schema=Layout().arrow_schemas(SONGS)[0])


def write(tmp_path: Path, table, rows: pa.Table, max_rows: int, batch: int):
    reader = pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches(max_chunksize=batch))
    return write_parquet(reader, Layout(), table, str(tmp_path), pafs.LocalFileSystem(), "v1",
                         lambda path: str(Path(path).relative_to(tmp_path)), max_rows, threads=3)


@pytest.mark.parametrize("max_rows, batch", [(4_000_000, 1000), (40, 7), (1, 3)])
def test_every_row_lands_once_in_its_partition(tmp_path, max_rows, batch):
    rows = songs(500)
    out = write(tmp_path, SONGS, rows, max_rows, batch)
    expected = Counter((r["year"], r["artist_id"]) for r in rows.to_pylist())
    assert Counter(e.partition for e in out.entries for _ in range(e.rows)) == expected
    files = Counter(e.partition for e in out.entries)
    assert files == {k: math.ceil(n / max_rows) for k, n in expected.items()}
    read = []
    for entry in out.entries:
        folder = Path(entry.path).parent.as_posix()
        assert folder == hive_folder(("year", "artist_id"), entry.partition)
        assert Path(tmp_path / entry.path).stat().st_size == entry.bytes
        part = pq.read_table(tmp_path / entry.path)
        assert part.num_rows == entry.rows and not {"year", "artist_id"} & set(part.column_names)
        read += [{**r, "year": entry.partition[0], "artist_id": entry.partition[1]} for r in part.to_pylist()]
    assert sorted(read, key=lambda r: r["song_id"]) == sorted(rows.to_pylist(), key=lambda r: r["song_id"])
    assert sorted(out.paths) == sorted(str(tmp_path / e.path) for e in out.entries)


def test_folder_names_escape_values_and_name_null_as_hive_does():
    assert hive_folder(("year", "artist_id"), (None, "AR/1 x")) == f"year={NULL_PARTITION}/artist_id=AR%2F1%20x"


def test_an_empty_unpartitioned_table_still_gets_one_readable_file(tmp_path):
    schema = Layout().arrow_schemas(USERS)[0]
    out = write(tmp_path, USERS, schema.empty_table(), 100, 10)
    assert [e.rows for e in out.entries] == [0]
    assert pq.read_table(tmp_path / out.entries[0].path).schema.equals(schema)


def test_an_empty_partitioned_table_writes_nothing(tmp_path):
    out = write(tmp_path, SONGS, Layout().arrow_schemas(SONGS)[0].empty_table(), 100, 10)
    assert out.entries == [] and out.paths == []
