"""The Spark engine: the batch computed by Spark, handed to any target as DuckDB's engine hands it.

Spark computes the b_* tables (spark_batch), writes them as Parquet to a
staging folder, and they are loaded into the target's DuckDB connection as
the same temporary tables, with the same columns and types, that
DuckDBEngine leaves there. Every target (DuckDB file, PostgreSQL, lake)
then lands them unchanged, so `--engine spark --target anything` works.

Options (the [spark] table of sparkify.toml): `master` (also
`--spark-master` or SPARKIFY_SPARK_MASTER; default local[2]), `staging` (a
folder both this process and Spark's executors can reach: the default
temporary folder suits a local master only), and any `spark.*` key, passed
to Spark as configuration.
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from sparkify.engines.duckdb import Batch
from sparkify.schema import (
    ARTISTS,
    REJECTS,
    SONG_RECORDS,
    SONGPLAYS,
    SONGS,
    TIME,
    USER_LATEST,
    USERS,
    Column,
    arrow_schema,
)
from sparkify.scratch import scratch_dir
from sparkify.sources import SourceFile
from sparkify.targets.duckdb import DIALECT

log = logging.getLogger(__name__)

BATCH_COLUMNS: dict[str, tuple[Column, ...]] = {
    "b_artists": ARTISTS.columns,
    "b_songs": SONGS.columns,
    "b_song_records": SONG_RECORDS.columns,
    "b_users": USERS.columns + tuple(c for c in USER_LATEST.columns if c.name != "user_id"),
    "b_time": TIME.columns,
    "b_songplays": SONGPLAYS.columns,
}
"""The batch tables Spark computes, with the columns DuckDBEngine gives them."""


class SparkEngine:
    name = "spark"

    def __init__(self, con: duckdb.DuckDBPyConnection, catalogue: str, options: dict):
        """`catalogue` names the relation on `con` holding the song records already loaded."""
        self.con = con
        self.catalogue = catalogue
        self.options = options

    def run(self, run_id: str, song_files: list[SourceFile], log_files: list[SourceFile], progress) -> Batch:
        from sparkify.engines.spark_batch import compute
        from sparkify.engines.spark_session import session

        conf = {k: str(v) for k, v in self.options.items() if k.startswith("spark.")}
        with progress.stage("spark"):
            spark = session(self.options.get("master"), conf)
        result = None
        with scratch_dir("spark", self.options.get("staging")) as scratch:
            staging = Path(scratch)
            try:
                catalogue = spark.read.parquet(str(self._export_catalogue(staging)))
                result = compute(spark, [f.path for f in song_files], [f.path for f in log_files], catalogue,
                                 progress)
                with progress.stage("stage"):
                    for name, df in result.tables.items():
                        df.write.parquet(str(staging / name))
                        self._load(name, staging / name)
                result.finish(self._count("b_songs"), self._count("b_songplays"))
                self._store_rejects(run_id, result.rejects)
            finally:
                if result is not None:
                    result.release()
        return Batch(self.con, run_id, song_files, log_files, songs=result.songs, events=result.events,
                     file_records=result.file_records)

    def _export_catalogue(self, staging: Path) -> Path:
        """The target's song records as one Parquet file Spark can read (streamed, not held in memory)."""
        path = staging / "catalogue.parquet"
        names = ", ".join(DIALECT.quote(c.name) for c in SONG_RECORDS.columns)
        reader = self.con.sql(f"SELECT {names} FROM {self.catalogue}").to_arrow_reader(100_000)
        schema = arrow_schema(SONG_RECORDS)
        with pq.ParquetWriter(path, schema) as writer:
            for chunk in reader:
                writer.write_table(pa.Table.from_batches([chunk]).cast(schema))
        return path

    def _load(self, name: str, folder: Path) -> None:
        """One staged table into the connection as a TEMP table typed like DuckDBEngine's."""
        columns = BATCH_COLUMNS[name]
        q = DIALECT.quote
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {q(name)} ("
                         + ", ".join(f"{q(c.name)} {DIALECT.types[c.type]}" for c in columns) + ")")
        files = sorted(str(p) for p in folder.glob("*.parquet"))
        if files:
            names = ", ".join(q(c.name) for c in columns)
            self.con.execute(f"INSERT INTO {q(name)} SELECT {names} FROM read_parquet(?)", [files])

    def _count(self, table: str) -> int:
        return self.con.execute(f"SELECT count(*) FROM {DIALECT.quote(table)}").fetchall()[0][0]

    def _store_rejects(self, run_id: str, rejects: list[dict]) -> None:
        rows = sorted(rejects, key=lambda r: (r["kind"], r["source_file"], r["line"] or 0))
        table = pa.Table.from_pylist([{"run_id": run_id, **r} for r in rows], schema=arrow_schema(REJECTS))
        self.con.register("sp_spark_rejects", table)
        self.con.execute("CREATE OR REPLACE TEMP TABLE b_rejects AS SELECT * FROM sp_spark_rejects")
        self.con.unregister("sp_spark_rejects")
