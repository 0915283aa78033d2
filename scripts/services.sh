#!/usr/bin/env bash
# Start or stop the servers the tests talk to, all bound to 127.0.0.1:
#   PostgreSQL 15 (port 54329) and an S3-compatible server (moto, port 5555).
# `services.sh start` writes .ci/state/env with the variables the tests read;
# `services.sh stop` stops both. Installs what is missing from Debian/PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=$PWD/.ci/state
PGDIR=${SPARKIFY_PGDIR:-/tmp/sparkify-pg}
PGPORT=${SPARKIFY_PGPORT:-54329}
S3PORT=${SPARKIFY_S3PORT:-5555}

pg_bin() {
  local ctl
  ctl=$(ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -1 || true)
  if [[ -z $ctl ]]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    ctl=$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -1)
  fi
  dirname "$ctl"
}

as_postgres() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_pg() {
  local bin; bin=$(pg_bin)
  mkdir -p "$PGDIR"
  [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$PGDIR" && chmod 700 "$PGDIR"
  if [[ ! -f $PGDIR/data/PG_VERSION ]]; then
    as_postgres "$bin/initdb" -D "$PGDIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 -N >/dev/null
  fi
  if ! as_postgres "$bin/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
    as_postgres "$bin/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PGPORT -c unix_socket_directories=$PGDIR -c fsync=off -c max_connections=200" start >/dev/null
  fi
  as_postgres "$bin/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -tAc "SELECT 1" postgres >/dev/null
}

stop_pg() {
  local bin; bin=$(pg_bin)
  [[ -f $PGDIR/data/PG_VERSION ]] && as_postgres "$bin/pg_ctl" -D "$PGDIR/data" -m fast stop >/dev/null 2>&1 || true
}

start_s3() {
  if ! curl -fs "http://127.0.0.1:$S3PORT/moto-api/" >/dev/null 2>&1; then
    nohup .venv/bin/moto_server -H 127.0.0.1 -p "$S3PORT" >"$STATE/moto.log" 2>&1 &
    echo $! >"$STATE/moto.pid"
    for _ in $(seq 1 100); do
      curl -fs "http://127.0.0.1:$S3PORT/moto-api/" >/dev/null 2>&1 && return 0
      sleep 0.1
    done
    echo "moto_server did not start; see $STATE/moto.log" >&2
    return 1
  fi
}

stop_s3() {
  if [[ -f $STATE/moto.pid ]]; then
    kill "$(cat "$STATE/moto.pid")" 2>/dev/null || true
    rm -f "$STATE/moto.pid"
  fi
}

case ${1:-} in
  start)
    mkdir -p "$STATE"
    start_pg
    start_s3
    cat >"$STATE/env" <<ENV
export SPARKIFY_TEST_PG_URL=postgresql://postgres@127.0.0.1:$PGPORT/postgres
export SPARKIFY_TEST_S3_ENDPOINT=http://127.0.0.1:$S3PORT
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
ENV
    echo "services up: PostgreSQL on 127.0.0.1:$PGPORT, S3 (moto) on 127.0.0.1:$S3PORT"
    ;;
  stop)
    stop_s3
    stop_pg
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
