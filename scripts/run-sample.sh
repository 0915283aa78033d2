#!/usr/bin/env bash
# Set up and load the real sample (../shared/data/sparkify) into sparkify.duckdb, then check it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DATA=${SPARKIFY_SAMPLE:-../shared/data/sparkify}
.venv/bin/sparkify run --songs "$DATA/song_data" --logs "$DATA/log_data" --target sparkify.duckdb "$@"
.venv/bin/sparkify check --target sparkify.duckdb
