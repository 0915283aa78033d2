"""The Spark job: a whole dataset to the spec's Parquet lake layout, written by Spark itself.

For data that outgrows one machine, as the original Data Lake project ran
on EMR. Reads every *.json under --songs and --logs (recursive file lookup:
listing many small song files stays fast), computes the batch with the same
code as `sparkify run --engine spark`, and writes:

    OUT/songs/year=.../artist_id=.../   OUT/time/year=.../month=.../
    OUT/songplays/year=.../month=.../   OUT/users/   OUT/artists/   OUT/_rejects/

Run it with spark-submit (a file path, so the package need not be zipped
for the driver; executors need sparkify installed, see deploy/emr/):

    spark-submit --master yarn src/sparkify/spark_job.py --songs s3://b/song_data --logs s3://b/log_data --out s3://b/lake
    python -m sparkify.spark_job --songs DIR --logs DIR --out DIR [--master local[2]]

It rebuilds the tables from the whole source; partitions it does not write
are left alone (dynamic partition overwrite). The accounting is printed as
one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import uuid

log = logging.getLogger("sparkify.spark_job")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparkify-spark-job", description=__doc__.splitlines()[0])
    parser.add_argument("--songs", required=True, help="song_data folder or URL (s3:// on EMR, s3a:// elsewhere)")
    parser.add_argument("--logs", required=True, help="log_data folder or URL")
    parser.add_argument("--out", required=True, help="the lake: a folder or URL")
    parser.add_argument("--master", help="Spark master (default: spark-submit's, else local[2])")
    return parser


def write_lake(spark, result, out: str, run_id: str) -> dict[str, int]:
    """The batch's tables in the spec's layout under `out`; rows per table in the lake afterwards."""
    from pyspark.sql import functions as F

    from sparkify.engines.spark_batch import conform, spark_schema
    from sparkify.schema import ARTISTS, REJECTS, SONGPLAYS, SONGS, TIME, USERS

    t = result.tables
    start = F.col("start_time")
    songplays = conform(t["b_songplays"], SONGPLAYS).select("*", F.year(start).alias("year"),
                                                           F.month(start).alias("month"))
    rejects = spark.createDataFrame([{"run_id": run_id, **r} for r in result.rejects], spark_schema(REJECTS))
    tables = {
        "songs": (conform(t["b_songs"], SONGS), SONGS.partition_by),
        "artists": (conform(t["b_artists"], ARTISTS), ()),
        "users": (conform(t["b_users"], USERS), ()),
        "time": (conform(t["b_time"], TIME), TIME.partition_by),
        "songplays": (songplays, SONGPLAYS.partition_by),
        "_rejects": (rejects, ()),
    }
    written = {}
    for name, (df, partitions) in tables.items():
        df = df.repartition(*partitions) if partitions else df.coalesce(1)
        writer = df.write.mode("overwrite")
        if partitions:
            writer = writer.partitionBy(*partitions)
        writer.parquet(f"{out.rstrip('/')}/{name}")
        written[name] = spark.read.parquet(f"{out.rstrip('/')}/{name}").count()
        log.info("%s: %d rows", name, written[name])
    return written


def main(argv: list[str] | None = None) -> int:
    from sparkify.engines.spark_batch import compute
    from sparkify.engines.spark_session import session

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    spark = session(args.master, submitted="PYSPARK_GATEWAY_PORT" in os.environ)
    result = compute(spark, args.songs, args.logs, catalogue=None)
    try:
        result.finish(result.tables["b_songs"].count(), result.plays.count())
        written = write_lake(spark, result, args.out, run_id)
    finally:
        result.release()
    events = dict(result.events)
    duplicate = events.pop("in_batch_duplicate")
    filtered = events.pop("filtered")
    events.update(loaded=events.pop("song_plays") - duplicate, duplicate=duplicate,
                  filtered=sum(filtered.values()), filtered_by_page=filtered)
    summary = {"run_id": run_id, "engine": "spark", "target": args.out, "tables": written,
               "accounting": {"songs": result.songs, "events": events},
               "timings": {"total": round(time.perf_counter() - started, 3)}}
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
