#!/usr/bin/env bash
# EMR bootstrap action: Python 3.11 and sparkify's dependencies (pyarrow, duckdb, s3fs, ...) on every node,
# for the driver and the Python workers. sparkify itself is not installed: every step ships it as
# sparkify-spark.zip (--py-files), the artifact scripts/spark-artifact.sh builds and the tests submit.
# Argument: the s3:// URL of sparkify-spark-requirements.txt (the same build, pinned as constraints.txt).
set -euo pipefail
requirements_url=${1:?usage: bootstrap.sh s3://bucket/path/sparkify-spark-requirements.txt}
work=$(mktemp -d)
sudo dnf install -y -q python3.11 python3.11-pip
aws s3 cp "$requirements_url" "$work/requirements.txt"
sudo python3.11 -m pip install --quiet -r "$work/requirements.txt"  # s3fs: the driver reads rejected lines back
rm -rf "$work"
