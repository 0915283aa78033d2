"""The lake as the cluster job writes it: Spark stores the batch in the spec's layout, rebuilt whole.

For data that outgrows one machine (spark_job.py, on EMR or a standalone
cluster). It keeps no ledger and no manifest: every run reads the whole
sources and rewrites each table's partitions (dynamic partition overwrite,
so partitions it does not write are left alone). Readers see it as any
lake: one folder per table, Hive partitions.

Two writers. `spark` (the default) is Spark's own Parquet writer: it needs a
Hadoop filesystem for the URL (s3:// on EMR, s3a:// with hadoop-aws).
`arrow` has each executor write the rows of its partition through pyarrow
(a local folder, or S3 through objectstore's pyarrow filesystem and the [s3]
settings, credentials from the executors' AWS chain), for a Spark without
an S3 connector: the driver then removes the files of the partitions it
rewrote that this run did not write (dynamic overwrite, as Spark's). Only
the list of written files and their row counts comes back to the driver.
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sparkify.batch import SPARK, SparkBatch, SummaryFn, WriteResult
from sparkify.schema import ARTISTS, REJECTS, SONGPLAYS, SONGS, TIME, USERS, spark_conform, spark_schema
from sparkify.targets.base import Capabilities, Target, TargetError

log = logging.getLogger(__name__)


class SparkLakeTarget(Target):
    name = "spark-lake"
    capabilities = Capabilities(engines=("spark",), accepts=frozenset({SPARK}), transactions=False,
                                enforces_constraints=False, partitions=True, incremental=False)

    def __init__(self, out: str, write_with: str = "spark"):
        if write_with not in WRITERS:
            raise TargetError(f"unknown writer {write_with!r}: one of {', '.join(WRITERS)}")
        self.out = out.rstrip("/")
        self.write_with = write_with
        self._written: dict[str, int] = {}

    @classmethod
    def from_url(cls, url: str, options: dict) -> SparkLakeTarget:
        return cls(url)

    def describe(self) -> str:
        return self.out

    @contextmanager
    def session(self) -> Iterator[None]:
        yield

    def ledger(self) -> dict[str, tuple[int, str]]:
        return {}

    def write(self, batch: SparkBatch, full_refresh: bool, summary: SummaryFn) -> WriteResult:
        """Every table in the spec's layout under `out`; rows per table afterwards kept for row_counts."""
        from pyspark.sql import functions as F

        t = batch.tables
        spark = t["b_songplays"].sparkSession
        start = F.col("start_time")
        songplays = spark_conform(t["b_songplays"], SONGPLAYS).select("*", F.year(start).alias("year"),
                                                                      F.month(start).alias("month"))
        rejects = spark.createDataFrame(batch.rejects, spark_schema(REJECTS))
        tables = {
            "songs": (spark_conform(t["b_songs"], SONGS), SONGS.partition_by),
            "artists": (spark_conform(t["b_artists"], ARTISTS), ()),
            "users": (spark_conform(t["b_users"], USERS), ()),
            "time": (spark_conform(t["b_time"], TIME), TIME.partition_by),
            "songplays": (songplays, SONGPLAYS.partition_by),
            "_rejects": (rejects, ()),
        }
        # an explicit count, which adaptive execution does not coalesce: the songs' thousands of artist
        # folders are written by that many tasks across the executors, not all by one
        writers = int(spark.conf.get("spark.sql.shuffle.partitions"))
        for name, (df, partitions) in tables.items():
            df = df.repartition(writers, *partitions) if partitions else df.coalesce(1)
            if self.write_with == "arrow":
                self._written[name] = write_arrow(df, f"{self.out}/{name}", partitions)
            else:
                writer = df.write.mode("overwrite")
                if partitions:
                    writer = writer.partitionBy(*partitions)
                writer.parquet(f"{self.out}/{name}")
                self._written[name] = spark.read.parquet(f"{self.out}/{name}").count()
            log.info("%s: %d rows", name, self._written[name])
        return WriteResult(self._written["songplays"])

    def row_counts(self) -> dict[str, int]:
        return dict(self._written)

    def create_schema(self, reset: bool = False) -> None:
        raise TargetError("the cluster job's lake is created by its first run")

    def query(self, sql: str) -> tuple[list[str], Iterator[tuple]]:
        raise TargetError(f"query {self.out} as a lake: sparkify query --target {self.out}")


WRITERS = ("spark", "arrow")


def _filesystem(url: str, s3):
    """(pyarrow filesystem, path in it) for a local folder, file:// or s3:// URL."""
    from pyarrow import fs as pafs

    from sparkify import objectstore

    if url.startswith(("s3://", "s3a://")):
        bucket, key = objectstore.split_url(url)
        return objectstore.arrow_filesystem(s3), f"{bucket}/{key}" if key else bucket
    path = url.removeprefix("file://")
    return pafs.LocalFileSystem(), path


def _write_partition(url: str, partitions: tuple[str, ...], s3, run: str):
    """The function each task runs: its rows as Parquet under `url`, Hive partitions; yields (path, rows)."""

    def write(batches):
        import pyarrow as pa
        import pyarrow.dataset as ds
        from pyspark import TaskContext

        batches = iter(batches)
        first = next(batches, None)
        if first is None:
            return
        fs, root = _filesystem(url, s3)
        written = []
        task = TaskContext.get().partitionId()
        ds.write_dataset(
            itertools.chain([first], batches), root, schema=first.schema, format="parquet", filesystem=fs,
            partitioning=list(partitions) or None, partitioning_flavor="hive" if partitions else None,
            basename_template=f"part-{task:05d}-{run}-{{i}}.parquet", existing_data_behavior="overwrite_or_ignore",
            max_partitions=1 << 20, file_visitor=lambda f: written.append((f.path, f.metadata.num_rows)),
            file_options=ds.ParquetFileFormat().make_write_options(coerce_timestamps="us",
                                                                  allow_truncated_timestamps=False))
        yield pa.RecordBatch.from_pylist([{"path": p, "rows": n} for p, n in written],
                                         schema=pa.schema([("path", pa.string()), ("rows", pa.int64())]))

    return write


def write_arrow(df, url: str, partitions: tuple[str, ...]) -> int:
    """`df` written under `url` by the executors through pyarrow, replacing the partitions it writes; its rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import fs as pafs

    from sparkify import objectstore

    s3 = objectstore.settings() if url.startswith(("s3://", "s3a://")) else None
    run = uuid.uuid4().hex[:12]
    files = df.mapInArrow(_write_partition(url, partitions, s3, run), "path string, rows long").collect()
    fs, root = _filesystem(url, s3)
    written = {f.path for f in files}
    if not files and not partitions:  # an empty table still has its schema, as Spark writes it
        from pyspark.sql.pandas.types import to_arrow_schema

        path = f"{root}/part-00000-{run}-0.parquet"
        fs.create_dir(root)
        with fs.open_output_stream(path) as out:
            pq.write_table(pa.Table.from_pylist([], schema=to_arrow_schema(df.schema)), out)
        written.add(path)
    # dynamic overwrite: in every folder this run wrote, the files it did not write go
    folders = {p.rsplit("/", 1)[0] for p in written}
    for folder in sorted(folders):
        for info in fs.get_file_info(pafs.FileSelector(folder)):
            if info.type == pafs.FileType.File and info.path not in written:
                fs.delete_file(info.path)
    return sum(f.rows for f in files)
