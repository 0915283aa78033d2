#!/usr/bin/env bash
# Create .venv and install sparkify with what the tests and every target need.
# Idempotent: a second call only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
extra=${1:-dev}
.venv/bin/python -m pip install --quiet -e ".[${extra}]" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import sparkify, duckdb; assert duckdb.__version__ == '2.0.0', duckdb.__version__"
