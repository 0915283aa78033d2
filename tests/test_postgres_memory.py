"""The PostgreSQL target: the COPY pipeline's read-ahead and memory, and DuckDB's memory limit during a write.
"""

from __future__ import annotations

import threading

import psycopg
import pyarrow as pa
import pytest

from sparkify import pipeline
from sparkify.batch import size_bytes
from sparkify.targets.postgres import PostgresTarget
from sparkify.targets.postgres import copy as pgcopy
from tests.pgutil import (
    STAR_COUNTS,
    _pg,
)

pytestmark = pytest.mark.postgres


# -- the COPY pipeline: read-ahead, memory ---------------------------------------------------------

def test_ahead_yields_everything_in_order_and_raises_the_producers_error():
    assert list(pgcopy.ahead(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise ValueError("encoder broke")

    items = pgcopy.ahead(failing())
    assert next(items) == 1
    with pytest.raises(ValueError, match="encoder broke"):
        next(items)


def test_ahead_stops_reading_when_the_consumer_stops():
    read, closed = [], []

    def source():
        try:
            for i in range(1_000):
                read.append(i)
                yield i
        finally:
            closed.append(True)

    items = pgcopy.ahead(source(), depth=2)
    assert next(items) == 0
    items.close()
    assert closed == [True]
    assert len(read) <= 4  # the one consumed, two queued, one waiting to be queued


def test_a_copy_the_server_rejects_fails_cleanly_and_stops_the_encoder(pg_url):
    """The server's error reaches the caller; the thread encoding ahead ends with the COPY."""
    table = pa.table({"n": pa.array(range(200_000), pa.int64()),
                      "t": pa.array(["x"] * 199_999 + [None], pa.string())})
    with _pg(pg_url) as con:
        con.execute("CREATE TABLE c (n bigint, t text NOT NULL)")
        with pytest.raises(psycopg.errors.NotNullViolation):
            PostgresTarget._copy(con.cursor(), "COPY c FROM STDIN (FORMAT BINARY)",
                                 pa.RecordBatchReader.from_batches(table.schema, table.to_batches(10_000)))
        assert con.execute("SELECT count(*) FROM c").fetchone()[0] == 0
    assert not [t for t in threading.enumerate() if t.name == "pgcopy-encode"]


@pytest.mark.parametrize("limit, during_write", [("600MB", "256.0 MiB"), ("200MB", "190.7 MiB")])
def test_duckdb_gets_a_small_memory_limit_for_the_write_never_a_larger_one(
        pg_url, sample, monkeypatch, limit, during_write):
    target = PostgresTarget.from_url(pg_url, {"memory_limit": limit})
    seen = []
    original = PostgresTarget._bulk_load

    def bulk_load(self, cur, batch, fresh):
        seen.append(batch.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        return original(self, cur, batch, fresh)

    monkeypatch.setattr(PostgresTarget, "_bulk_load", bulk_load)
    summary = pipeline.run(target, str(sample / "song_data"), str(sample / "log_data"))
    assert seen == [during_write]
    assert summary["tables"] == STAR_COUNTS


def test_size_bytes_reads_duckdb_sizes():
    assert size_bytes("600MB") == 600_000_000
    assert size_bytes("1.5GB") == 1_500_000_000
    assert size_bytes("256MiB") == 256 << 20
    assert size_bytes("2 GiB") == 2 << 30
    assert size_bytes("4000000") == 4_000_000
    assert size_bytes("572.2 MiB") == int(572.2 * 2**20)  # as DuckDB reads its setting back
    assert size_bytes("80%") is None
