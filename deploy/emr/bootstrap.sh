#!/usr/bin/env bash
# EMR bootstrap action: Python 3.11 and sparkify (with pyarrow) on every node, for the driver and the
# Python workers that clean the rare non-ASCII values. Argument: the wheel's s3:// URL.
set -euo pipefail
wheel_url=${1:?usage: bootstrap.sh s3://bucket/path/sparkify-VERSION-py3-none-any.whl}
work=$(mktemp -d)
sudo dnf install -y -q python3.11 python3.11-pip
aws s3 cp "$wheel_url" "$work/"
wheel=("$work"/*.whl)
sudo python3.11 -m pip install --quiet "${wheel[0]}[s3]"  # s3fs: the driver reads rejected lines back from S3
rm -rf "$work"
