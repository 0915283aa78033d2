"""The lake as the cluster job writes it: Spark stores the batch in the spec's layout, rebuilt whole.

For data that outgrows one machine (spark_job.py, on EMR or a standalone
cluster). It keeps no ledger and no manifest: every run reads the whole
sources and rewrites each table's partitions (dynamic partition overwrite,
so partitions it does not write are left alone). Readers see it as any
lake: one folder per table, Hive partitions.
"""

from __future__ import annotations

import logging
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

    def __init__(self, out: str):
        self.out = out.rstrip("/")
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
        for name, (df, partitions) in tables.items():
            df = df.repartition(*partitions) if partitions else df.coalesce(1)
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
