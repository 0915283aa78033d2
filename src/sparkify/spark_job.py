"""The Spark job: a whole dataset to the spec's Parquet lake layout, written by Spark itself.

For data that outgrows one machine, as the original Data Lake project ran
on EMR. Reads every *.json under --songs and --logs (recursive file lookup:
listing many small song files stays fast), computes the batch with the same
code as `sparkify run --engine spark` (pipeline.run, the Spark engine, and
the lake target that stores from Spark, targets/lake/spark.py), and writes:

    OUT/songs/year=.../artist_id=.../   OUT/time/year=.../month=.../
    OUT/songplays/year=.../month=.../   OUT/users/   OUT/artists/   OUT/_rejects/

On a cluster, ship the package as one artifact (scripts/spark-artifact.sh
builds dist/sparkify-spark.zip and dist/spark_job.py, this file) and submit:

    spark-submit --master spark://HOST:7077 --py-files dist/sparkify-spark.zip dist/spark_job.py \\
        --songs DIR --logs DIR --out DIR
    PYTHONPATH=dist/sparkify-spark.zip python dist/spark_job.py --master sc://HOST:15002 ...   # Spark Connect
    python -m sparkify.spark_job --songs DIR --logs DIR --out DIR [--master local[2]]

With Spark Connect the job is a client: it uploads the zip it imported
sparkify from to the server (addArtifacts), so the server's Python workers
import that same code. `--write-with arrow` has each executor write its
Parquet files through pyarrow (local folders or s3://, with the [s3]
settings), for a Spark without an S3 connector (hadoop-aws); the default,
`spark`, is Spark's own writer.

It rebuilds the tables from the whole source; partitions it does not write
are left alone (dynamic partition overwrite). The accounting is printed as
one JSON object on stdout, with `code`: where the driver and the executors
imported sparkify from (the artifact, or an installed package).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

log = logging.getLogger("sparkify.spark_job")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparkify-spark-job", description=__doc__.splitlines()[0])
    parser.add_argument("--songs", required=True, help="song_data folder or URL (s3:// on EMR, s3a:// elsewhere)")
    parser.add_argument("--logs", required=True, help="log_data folder or URL")
    parser.add_argument("--out", required=True, help="the lake: a folder or URL")
    parser.add_argument("--master", help="Spark master (default: spark-submit's, else local[2]); sc://HOST:PORT "
                                         "for Spark Connect")
    parser.add_argument("--write-with", choices=("spark", "arrow"), default="spark",
                        help="who writes the Parquet files: Spark's writer (default) or pyarrow on each executor "
                             "(s3:// without hadoop-aws)")
    return parser


def _artifact() -> str | None:
    """The zip (or wheel) this process imported sparkify from, if it came from one."""
    import sparkify

    path = os.path.abspath(sparkify.__file__)
    for suffix in (".zip", ".whl"):
        if suffix + os.sep in path:
            return path[: path.index(suffix + os.sep) + len(suffix)]
    return None


def _connect(url: str):
    """A Spark Connect session, with the artifact sparkify came from added for the server's Python workers."""
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(url).appName("sparkify").getOrCreate()
    artifact = _artifact()
    if artifact:
        spark.addArtifacts(artifact, pyfile=True)
    else:
        log.warning("sparkify is not imported from a zip: the Connect server's Python must have it installed")
    return spark


def _origin(batches):
    """On an executor: which Python ran the task and where it imported sparkify from."""
    import pyarrow as pa

    import sparkify

    for _ in batches:
        pass
    yield pa.RecordBatch.from_pylist([{"pid": os.getpid(), "python": sys.executable,
                                       "sparkify": os.path.abspath(sparkify.__file__)}])


def code_origin(spark, tasks: int = 4) -> dict:
    """Where the driver and the executors imported sparkify from (a few one-row tasks, each reporting)."""
    import sparkify

    rows = (spark.range(0, tasks, 1, tasks)
            .mapInArrow(_origin, "pid long, python string, sparkify string").distinct().collect())
    return {"driver": {"pid": os.getpid(), "python": sys.executable, "sparkify": os.path.abspath(sparkify.__file__)},
            "executors": sorted((r.asDict() for r in rows), key=lambda r: r["pid"])}


def main(argv: list[str] | None = None) -> int:
    from sparkify import pipeline
    from sparkify.targets.lake.spark import SparkLakeTarget

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    args = _parser().parse_args(argv)
    master = args.master
    if master and master.startswith("sc://"):
        _connect(master)
    options = {"master": master, "submitted": "PYSPARK_GATEWAY_PORT" in os.environ}
    target = SparkLakeTarget(args.out, write_with=args.write_with)
    summary = pipeline.run(target, args.songs, args.logs, full_refresh=True, engine_name="spark",
                           engine_options=options)
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    if spark is not None:
        summary["code"] = code_origin(spark)
        log.info("sparkify imported by the driver from %s, by the executors from %s", summary["code"]["driver"]
                 ["sparkify"], sorted({e["sparkify"] for e in summary["code"]["executors"]}))
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
