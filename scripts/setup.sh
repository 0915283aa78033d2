#!/usr/bin/env bash
# Create .venv and install sparkify at the versions in constraints.txt.
#   scripts/setup.sh        the package alone: what `sparkify run` into the DuckDB default needs
#   scripts/setup.sh dev    every target, Spark and the test tools
# Idempotent: a second call only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
extra=${1:-}
spec=.
[[ -n $extra ]] && spec=".[${extra}]"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e "$spec" 2>&1 \
  | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import sparkify, duckdb"
