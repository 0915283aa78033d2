#!/usr/bin/env bash
# Start or stop the servers the tests talk to, all bound to 127.0.0.1:
#   PostgreSQL 15 (port 54329), an S3-compatible server (moto, port 5555), and a Spark
#   standalone cluster (a master on 7077 and two workers of 1 core and 1g each, run by the
#   spark-class launcher that ships in the installed pyspark package: nothing is downloaded).
# `services.sh start` writes .ci/state/env with the variables the tests read;
# `services.sh stop` stops them all. Installs what is missing from Debian/PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=$PWD/.ci/state
PGDIR=${SPARKIFY_PGDIR:-/tmp/sparkify-pg}
PGPORT=${SPARKIFY_PGPORT:-54329}
S3PORT=${SPARKIFY_S3PORT:-5555}
SPARK_PORT=7077
SPARK_WORKERS=2
SPARK_JAVA_OPTS="-Duser.timezone=UTC -XX:+UseSerialGC -XX:TieredStopAtLevel=1"  # engines/spark/session.py, tests

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

# -- Spark standalone: a master and $SPARK_WORKERS workers, PIDs in $STATE/spark/*.pid --------------

spark_ui() { cat "$STATE/spark/master.ui" 2>/dev/null; }

spark_alive_workers() {  # the master's JSON status: how many workers registered and alive
  local port; port=$(spark_ui) || return 1
  curl -fs "http://127.0.0.1:$port/json/" 2>/dev/null | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["aliveworkers"])' 2>/dev/null
}

spark_launch() {  # name, class, args...: one JVM through spark-class, in the background, PID recorded
  local name=$1; shift
  TZ=UTC SPARK_LOCAL_IP=127.0.0.1 SPARK_DAEMON_MEMORY=256m SPARK_DAEMON_JAVA_OPTS="$SPARK_JAVA_OPTS" \
    SPARK_WORKER_OPTS="-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.appDataTtl=3600" \
    nohup "$SPARK_HOME_DIR/bin/spark-class" "$@" >"$STATE/spark/$name.log" 2>&1 &
  echo $! >"$STATE/spark/$name.pid"  # spark-class execs java: this is the JVM's PID
}

start_spark() {
  command -v java >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null; }
  SPARK_HOME_DIR=$(.venv/bin/python -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
  mkdir -p "$STATE/spark"
  if [[ $(spark_alive_workers || echo 0) -ge $SPARK_WORKERS ]]; then return 0; fi
  stop_spark
  local ui; ui=$(.venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "$ui" >"$STATE/spark/master.ui"
  spark_launch master org.apache.spark.deploy.master.Master --host 127.0.0.1 --port "$SPARK_PORT" --webui-port "$ui"
  for i in $(seq 1 "$SPARK_WORKERS"); do
    mkdir -p "$STATE/spark/work-$i"
    spark_launch "worker-$i" org.apache.spark.deploy.worker.Worker "spark://127.0.0.1:$SPARK_PORT" \
      --cores 1 --memory 1g --host 127.0.0.1 --webui-port 0 --work-dir "$STATE/spark/work-$i"
  done
  for _ in $(seq 1 240); do  # JVMs start slowly on a loaded 2-core machine: up to 2 minutes
    [[ $(spark_alive_workers || echo 0) -ge $SPARK_WORKERS ]] && return 0
    sleep 0.5
  done
  echo "the Spark cluster did not come up with $SPARK_WORKERS workers; see $STATE/spark/*.log" >&2
  return 1
}

stop_spark() {
  local pidfile pid
  for pidfile in "$STATE"/spark/worker-*.pid "$STATE/spark/master.pid"; do
    [[ -f $pidfile ]] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

case ${1:-} in
  start)
    mkdir -p "$STATE"
    start_pg
    start_s3
    start_spark
    cat >"$STATE/env" <<ENV
export SPARKIFY_TEST_PG_URL=postgresql://postgres@127.0.0.1:$PGPORT/postgres
export SPARKIFY_TEST_S3_ENDPOINT=http://127.0.0.1:$S3PORT
export AWS_ACCESS_KEY_ID=testing
export AWS_SECRET_ACCESS_KEY=testing
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export SPARKIFY_TEST_SPARK_MASTER=spark://127.0.0.1:$SPARK_PORT
export SPARKIFY_TEST_SPARK_UI=http://127.0.0.1:$(spark_ui)
ENV
    echo "services up: PostgreSQL on 127.0.0.1:$PGPORT, S3 (moto) on 127.0.0.1:$S3PORT," \
      "Spark master spark://127.0.0.1:$SPARK_PORT with $SPARK_WORKERS workers (UI http://127.0.0.1:$(spark_ui))"
    ;;
  stop)
    stop_spark
    stop_s3
    stop_pg
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
