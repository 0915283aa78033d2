"""The Spark engine: the batch computed by Spark, for any target.

Spark computes the batch tables (compute.py). A target that lends a DuckDB
connection (the DuckDB file, PostgreSQL, the lake) gets them there: they are
written as Parquet to a staging folder and loaded into that connection as the
same temporary tables, with the same columns and types, that DuckDBEngine
leaves, and the target lands them unchanged. A target that stores from Spark
itself (the lake the cluster job writes, targets/lake/spark.py) gets the
DataFrames.

Options (the [spark] table of sparkify.toml): `master` (also
`--spark-master` or SPARKIFY_SPARK_MASTER; default local[2]), `staging` (a
folder both this process and Spark's executors can reach: the default
temporary folder suits a local master only), `submitted` (run under
spark-submit, which set the master), and any `spark.*` key, passed to Spark
as configuration.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from sparkify.batch import DUCKDB, SPARK, Batch, DuckDBBatch, Run, SparkBatch, store_rejects
from sparkify.engines.base import Engine
from sparkify.engines.spark.compute import compute as compute_batch
from sparkify.engines.spark.session import session as spark_session
from sparkify.engines.spark.session import size_shuffles
from sparkify.progress import Progress
from sparkify.schema import (
    ARTISTS,
    PLAY_KEYS,
    SONG_RECORDS,
    SONGPLAYS,
    SONGS,
    TIME,
    USER_LATEST,
    USERS,
    Column,
    arrow_schema,
)
from sparkify.schema import (
    DUCKDB_DIALECT as DIALECT,
)
from sparkify.scratch import scratch_dir
from sparkify.targets.base import DuckDBHost, Target

log = logging.getLogger(__name__)

BATCH_COLUMNS: dict[str, tuple[Column, ...]] = {
    "b_artists": ARTISTS.columns,
    "b_songs": SONGS.columns,
    "b_song_records": SONG_RECORDS.columns,
    "b_users": USERS.columns + tuple(c for c in USER_LATEST.columns if c.name != "user_id"),
    "b_time": TIME.columns,
    "b_songplays": SONGPLAYS.columns,
    "b_play_keys": PLAY_KEYS.columns,
}
"""The batch tables Spark computes, with the columns DuckDBEngine gives them."""

CATALOGUE = "catalogue.parquet"
"""The target's song records, staged for Spark (and for telling new song_ids from replaced ones)."""


class SparkEngine(Engine):
    name = "spark"
    slow_to_start = True

    def host(self, target: Target) -> str:
        """Where the batch is handed over: the target's DuckDB connection when it lends one."""
        return DUCKDB if DUCKDB in target.capabilities.accepts else SPARK

    @contextmanager
    def compute(self, target: Target, run: Run, progress: Progress) -> Iterator[Batch]:
        conf = {k: str(v) for k, v in self.options.items() if k.startswith("spark.")}
        with progress.stage("spark"):
            spark = spark_session(self.options.get("master"), conf, submitted=bool(self.options.get("submitted")))
        if "spark.sql.shuffle.partitions" not in conf:
            size_shuffles(spark, sum(f.size for _, f in run.files()))
        into_duckdb = self.host(target) == DUCKDB
        songs = [f.path for f in run.song_files] if run.listed else run.songs
        logs = [f.path for f in run.log_files] if run.listed else run.logs
        result = None
        with scratch_dir("spark", self.options.get("staging")) as scratch:
            try:
                if into_duckdb:
                    con = target.engine_connection()
                    staging = Path(scratch)
                    catalogue = spark.read.parquet(str(self._export_catalogue(target, con, staging, run)))
                else:
                    catalogue = None
                result = compute_batch(spark, songs, logs, catalogue, progress)
                if into_duckdb:
                    batch = self._into_duckdb(con, staging, run, result, progress)
                else:
                    result.finish(result.tables["b_songs"].count(), result.plays.count())
                    batch = SparkBatch(run, songs=result.songs, events=result.events,
                                       file_records=result.file_records, tables=result.tables,
                                       rejects=[{"run_id": run.run_id, **r} for r in result.rejects])
                yield batch
            finally:
                if result is not None:
                    result.release()

    def _into_duckdb(self, con: duckdb.DuckDBPyConnection, staging: Path, run: Run, result,
                     progress: Progress) -> DuckDBBatch:
        """The batch tables written by Spark at once (one thread each: a small table's job is mostly the
        driver's scheduling and commit, which overlap; a large one's tasks share the cores), then loaded into
        the connection one by one as their writes end."""
        with progress.stage("stage"), ThreadPoolExecutor(len(result.tables)) as writers:
            written = {name: writers.submit(df.write.parquet, str(staging / name))
                       for name, df in result.tables.items()}
            for name, done in written.items():
                done.result()
                self._load(con, name, staging / name)
        result.finish(self._new_songs(con, staging), self._count(con, "b_songplays"))
        store_rejects(con, run.run_id, result.rejects)
        batch = DuckDBBatch(run, songs=result.songs, events=result.events, file_records=result.file_records,
                            con=con)
        batch.add_files_table()
        return batch

    @staticmethod
    def _export_catalogue(target: DuckDBHost, con: duckdb.DuckDBPyConnection, staging: Path, run: Run) -> Path:
        """The target's song records as one Parquet file Spark can read (streamed, not held in memory)."""
        relation = target.catalogue_relation(con, run.full_refresh)
        path = staging / CATALOGUE
        names = ", ".join(DIALECT.quote(c.name) for c in SONG_RECORDS.columns)
        reader = con.sql(f"SELECT {names} FROM {relation}").to_arrow_reader(100_000)
        schema = arrow_schema(SONG_RECORDS)
        with pq.ParquetWriter(path, schema) as writer:
            for chunk in reader:
                writer.write_table(pa.Table.from_batches([chunk]).cast(schema))
        return path

    @staticmethod
    def _load(con: duckdb.DuckDBPyConnection, name: str, folder: Path) -> None:
        """One staged table into the connection as a TEMP table typed like DuckDBEngine's."""
        columns = BATCH_COLUMNS[name]
        q = DIALECT.quote
        con.execute(f"CREATE OR REPLACE TEMP TABLE {q(name)} ("
                    + ", ".join(f"{q(c.name)} {DIALECT.types[c.type]}" for c in columns) + ")")
        files = sorted(str(p) for p in folder.glob("*.parquet"))
        if files:
            names = ", ".join(q(c.name) for c in columns)
            con.execute(f"INSERT INTO {q(name)} SELECT {names} FROM read_parquet(?)", [files])

    @staticmethod
    def _new_songs(con: duckdb.DuckDBPyConnection, staging: Path) -> int:
        """The batch's records of song_ids not loaded before: a record that replaces a stored one is a duplicate."""
        stored = str(staging / CATALOGUE)
        return con.execute("SELECT count(*) FROM b_song_records WHERE song_id NOT IN "
                           "(SELECT song_id FROM read_parquet(?))", [stored]).fetchall()[0][0]

    @staticmethod
    def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
        return con.execute(f"SELECT count(*) FROM {DIALECT.quote(table)}").fetchall()[0][0]
