#!/usr/bin/env bash
# Create the modern-stack peers' venv for the benchmark: bench/data/.venv-peers (gitignored, with
# the datasets), with dlt, dbt-duckdb and the versions in bench/requirements-peers.txt. Kept apart
# from the project's .venv: dlt and dbt pin their dependencies differently.
#   scripts/bench-peers.sh          create or complete it (idempotent)
#   scripts/bench-peers.sh --fresh  remove it first
# Then: .venv/bin/python -m bench --scales 1m --scenarios duckdb,plain_sql,dlt_arrow,dlt_parquet,dlt_dbt
# (the dlt_* scenarios run with this venv's python; without it they are reported 'unavailable').
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=${SPARKIFY_PEERS_VENV:-bench/data/.venv-peers}
if [[ ${1:-} == --fresh ]]; then
  rm -rf "$VENV"
fi
if [[ ! -x $VENV/bin/python ]]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/requirements-peers.txt 2>&1 \
  | grep -v '^WARNING: Location' || true
"$VENV/bin/python" -c "import dlt, duckdb, pyarrow.json, dbt.adapters.duckdb" 
"$VENV/bin/dbt" --version >/dev/null
echo "peers' venv ready: $VENV/bin/python ($("$VENV/bin/python" -c 'import dlt; print("dlt", dlt.__version__)'))"
