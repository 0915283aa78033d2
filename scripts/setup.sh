#!/usr/bin/env bash
# Create .venv and install sparkify at the versions in constraints.txt.
#   scripts/setup.sh        the package alone: what `sparkify run` into the DuckDB default needs
#   scripts/setup.sh dev    every target, Spark and the test tools
# Idempotent: a second call only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
extra=${1:-}
spec=.
[[ -n $extra ]] && spec=".[${extra}]"
venv_install .venv -c constraints.txt -e "$spec"
.venv/bin/python -m compileall -q src  # the editable package's .pyc too (see scripts/venv.sh)
.venv/bin/python -c "import sparkify, duckdb"
