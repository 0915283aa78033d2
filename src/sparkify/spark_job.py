"""The Spark job: a whole dataset to the spec's Parquet lake layout, written by Spark itself.

For data that outgrows one machine, as the original Data Lake project ran
on EMR. Reads every *.json under --songs and --logs (recursive file lookup:
listing many small song files stays fast), computes the batch with the same
code as `sparkify run --engine spark` (pipeline.run, the Spark engine, and
the lake target that stores from Spark, targets/lake/spark.py), and writes:

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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparkify-spark-job", description=__doc__.splitlines()[0])
    parser.add_argument("--songs", required=True, help="song_data folder or URL (s3:// on EMR, s3a:// elsewhere)")
    parser.add_argument("--logs", required=True, help="log_data folder or URL")
    parser.add_argument("--out", required=True, help="the lake: a folder or URL")
    parser.add_argument("--master", help="Spark master (default: spark-submit's, else local[2])")
    return parser


def main(argv: list[str] | None = None) -> int:
    from sparkify import pipeline
    from sparkify.targets.lake.spark import SparkLakeTarget

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    args = _parser().parse_args(argv)
    options = {"master": args.master, "submitted": "PYSPARK_GATEWAY_PORT" in os.environ}
    summary = pipeline.run(SparkLakeTarget(args.out), args.songs, args.logs, full_refresh=True,
                           engine_name="spark", engine_options=options)
    sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
