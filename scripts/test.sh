#!/usr/bin/env bash
# Set everything up, start the servers, run the whole test suite, stop the servers.
# Extra arguments go to pytest (default: everything but the `slow` marker, on two
# workers, one test file per worker so each file's servers and Spark stay its own).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .ci/state
{  # Debian's packages (apt) beside the venv (pip): on a fresh machine both take a while
  command -v java >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }
  scripts/install-chromium.sh
} > .ci/state/apt.log 2>&1 &
apt=$!
scripts/test-examples.sh --install > .ci/state/examples.log 2>&1 &  # the examples' venvs, for tests/test_examples_in_their_venvs.py
examples=$!
scripts/setup.sh dev
wait "$apt" || { cat .ci/state/apt.log >&2; exit 1; }
wait "$examples" || { cat .ci/state/examples.log >&2; exit 1; }
trap 'scripts/services.sh stop' EXIT
scripts/services.sh start
source .ci/state/env
export SPARKIFY_REQUIRE_SERVICES=1 TZ=UTC SPARK_LOCAL_IP=127.0.0.1
if [[ $# -eq 0 ]]; then
  # the longest files first (the examples' venvs, Spark), so that the two workers share them
  set -- -m "not slow and not examples" -n 2 --dist loadfile --durations=25 \
    tests/test_examples_in_their_venvs.py tests/test_spark_cluster.py tests/test_contract_spark.py tests/test_spark.py \
    tests
fi
.venv/bin/lint-imports --no-cache | tail -n 3  # the layer contracts in pyproject.toml
.venv/bin/ruff check --quiet src tests bench examples  # pyflakes, import order, line length (pyproject.toml)
.venv/bin/python -m pytest "$@"
