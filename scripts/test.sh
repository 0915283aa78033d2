#!/usr/bin/env bash
# Set everything up, start the servers, run the whole test suite, stop the servers.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v java >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }
scripts/setup.sh dev
scripts/install-chromium.sh
trap 'scripts/services.sh stop' EXIT
scripts/services.sh start
source .ci/state/env
export SPARKIFY_REQUIRE_SERVICES=1 TZ=UTC SPARK_LOCAL_IP=127.0.0.1
.venv/bin/python -m pytest "$@"
