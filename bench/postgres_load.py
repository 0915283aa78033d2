"""Star rows per second into PostgreSQL: sparkify's write path against plain loaders.

Synthesizes one run's batch tables (b_songplays, b_time, b_users, b_songs,
b_artists, ...) in a DuckDB file, shaped like the real sample (85 % of
events are song plays, a third of them match a song, ~110-byte user
agents), then loads the same rows into fresh PostgreSQL databases by:

- sparkify, first load: PostgresTarget.write into an empty star (keys built after the rows;
  songplays and time built on side connections whatever the size, and with --rounds also in one
  transaction);
- sparkify, increment: a further 10 % of new rows into the loaded star (keys maintained row by row);
- plain binary COPY: psycopg `write_row` with `set_types`, straight into the keyed star tables;
- row-per-INSERT: the original project's way, one INSERT per row in autocommit, on a slice.

Each step runs in a child process that reports its wall time, the CPU time of
the whole PostgreSQL server (all its processes) and the client's CPU time and
peak RSS. By default the benchmark starts a PostgreSQL server of its own
(initdb in a temporary directory, fsync=off like the test server), so that
server CPU counts only this work; --pg-url uses an existing server instead.
Usage: bench/postgres_load.py [--songplays 1000000] [--insert-rows 20000] [--rounds N] [--pg-url URL]
"""

from __future__ import annotations

import argparse
import glob
import logging
import multiprocessing
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import duckdb
import psycopg

from bench.pgscratch import scratch_database
from sparkify.batch import DuckDBBatch, Run
from sparkify.schema import STAR
from sparkify.targets.postgres import PostgresTarget
from sparkify.targets.postgres.ddl import DIALECT

AGENTS = [
    "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_4) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/36.0.1985.143 Safari/537.36",
    "Mozilla/5.0 (Windows NT 6.1; WOW64; rv:31.0) Gecko/20100101 Firefox/31.0",
    "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; WOW64; Trident/6.0)",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu Chromium/36.0.1985.125 "
    "Chrome/36.0.1985.125 Safari/537.36",
]
CITIES = ["San Francisco-Oakland-Hayward, CA", "Phoenix-Mesa-Scottsdale, AZ", "Atlanta-Sandy Springs-Roswell, GA",
          "New York-Newark-Jersey City, NY-NJ-PA", "Lansing-East Lansing, MI", "Chicago-Naperville-Elgin, IL-IN-WI"]
START_MS = 1_541_030_400_000  # 2018-11-01 UTC
MONTH_MS = 30 * 86_400_000


def synthesize(path: str, songplays: int, first: int = 0) -> None:
    """Batch tables for song plays number first .. first+songplays-1 (disjoint ids across calls)."""
    songs = max(1_000, songplays // 100)
    users = max(100, songplays // 1_000)
    con = duckdb.connect(path)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET memory_limit = '1GB'")
    con.execute("SET enable_progress_bar = false")
    con.execute("CREATE OR REPLACE MACRO h(x, s) AS (hash(x * 31 + s) % 1000000)::BIGINT")
    con.execute(f"""
        CREATE OR REPLACE TABLE b_artists AS
        SELECT printf('AR%016X', i) AS artist_id, 'Artist ' || i AS name,
               CASE WHEN h(i, 1) % 3 = 0 THEN NULL ELSE $c[1 + h(i, 2) % {len(CITIES)}] END AS location,
               CASE WHEN h(i, 3) % 2 = 0 THEN NULL ELSE (h(i, 4) / 10000.0 - 50)::DOUBLE END AS latitude,
               CASE WHEN h(i, 3) % 2 = 0 THEN NULL ELSE (h(i, 5) / 5000.0 - 100)::DOUBLE END AS longitude
        FROM range({first // 100}, {first // 100 + songs * 9 // 10}) r(i)
    """, {"c": CITIES})
    con.execute(f"""
        CREATE OR REPLACE TABLE b_song_records AS
        SELECT printf('SO%016X', i) AS song_id, 'Song title ' || i AS title,
               printf('AR%016X', {first // 100} + i % {songs * 9 // 10}) AS artist_id, 'Artist ' || i AS artist_name,
               NULL::VARCHAR AS artist_location, NULL::DOUBLE AS artist_latitude, NULL::DOUBLE AS artist_longitude,
               CASE WHEN h(i, 6) % 4 = 0 THEN NULL ELSE (1950 + h(i, 7) % 70)::INTEGER END AS year,
               (60 + h(i, 8) / 2000.0)::DOUBLE AS duration,
               'song title ' || i AS title_key, 'artist ' || i AS artist_key
        FROM range({first // 100}, {first // 100 + songs}) r(i)
    """)
    con.execute("CREATE OR REPLACE TABLE b_songs AS "
                "SELECT song_id, title, artist_id, year, duration FROM b_song_records")
    step = max(1, MONTH_MS // (songplays + first))
    con.execute(f"""
        CREATE OR REPLACE TABLE b_songplays AS
        SELECT ((i::HUGEINT * 7046029254386353131) % 9223372036854775808)::BIGINT AS songplay_id,
               epoch_ms({START_MS} + i * {step} + h(i, 9) % {step})::TIMESTAMPTZ AS start_time,
               (1 + h(i, 10) % {users})::BIGINT AS user_id,
               CASE WHEN h(i, 11) % 4 = 0 THEN 'paid' ELSE 'free' END AS level,
               CASE WHEN h(i, 12) % 3 = 0 THEN printf('SO%016X', {first // 100} + h(i, 13) % {songs}) END AS song_id,
               NULL::VARCHAR AS artist_id,
               (i // 20)::BIGINT AS session_id,
               $c[1 + h(i, 14) % {len(CITIES)}] AS location,
               $a[1 + h(i, 15) % {len(AGENTS)}] AS user_agent
        FROM range({first}, {first + songplays}) r(i)
    """, {"c": CITIES, "a": AGENTS})
    con.execute("UPDATE b_songplays p SET artist_id = s.artist_id FROM b_songs s WHERE s.song_id = p.song_id")
    con.execute("""
        CREATE OR REPLACE TABLE b_time AS
        SELECT start_time, hour(t)::INTEGER AS hour, day(t)::INTEGER AS day, week(t)::INTEGER AS week,
               month(t)::INTEGER AS month, year(t)::INTEGER AS year, isodow(t)::INTEGER AS weekday
        FROM (SELECT DISTINCT start_time, start_time::TIMESTAMP AS t FROM b_songplays)
    """)
    con.execute(f"""
        CREATE OR REPLACE TABLE b_users AS
        SELECT i::BIGINT AS user_id, 'First' || i AS first_name, 'Last' || i AS last_name,
               CASE WHEN i % 2 = 0 THEN 'F' ELSE 'M' END AS gender,
               CASE WHEN i % 4 = 0 THEN 'paid' ELSE 'free' END AS level,
               ({START_MS} + {first}::BIGINT * {step} + i)::BIGINT AS ts, i::BIGINT AS session_id,
               0::BIGINT AS item_in_session
        FROM range(1, {users + 1}) r(i)
    """)
    con.execute("""
        CREATE OR REPLACE TABLE b_rejects AS SELECT NULL::VARCHAR AS run_id, NULL::VARCHAR AS kind,
            NULL::VARCHAR AS source_file, NULL::BIGINT AS line, NULL::VARCHAR AS reason, NULL::VARCHAR AS raw
        WHERE false
    """)
    con.execute(f"""
        CREATE OR REPLACE TABLE b_files AS
        SELECT printf('log_data/2018/11/%d-events-{first}.json', i) AS path, 'log' AS kind, 1000000::BIGINT AS size,
               '2018-12-01T00:00:00' AS modified, 1000::BIGINT AS records, 'bench' AS run_id
        FROM range(30) r(i)
    """)
    con.close()


def star_rows(path: str) -> int:
    with duckdb.connect(path, read_only=True) as con:
        return sum(con.execute(f"SELECT count(*) FROM b_{t.name}").fetchone()[0] for t in STAR)


@contextmanager
def own_server(settings: list[str]) -> Iterator[str]:
    """A throwaway PostgreSQL on 127.0.0.1 (as in ENVIRONMENT.md), stopped and removed afterwards."""
    ctl = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not ctl:
        raise SystemExit("no PostgreSQL binaries under /usr/lib/postgresql (apt-get install postgresql)")
    bindir = Path(ctl[-1]).parent
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory(prefix="sparkify-bench-pg-") as home:
        if as_postgres:
            shutil.chown(home, "postgres", "postgres")
        data = f"{home}/data"
        subprocess.run([*as_postgres, bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                        "--locale=C.UTF-8", "-N"], check=True, stdout=subprocess.DEVNULL)
        options = " ".join([f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={home}",
                            *(f"-c {s}" for s in settings)])
        subprocess.run([*as_postgres, bindir / "pg_ctl", "-D", data, "-l", f"{home}/log", "-w", "-o", options,
                        "start"], check=True, stdout=subprocess.DEVNULL)
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*as_postgres, bindir / "pg_ctl", "-D", data, "-m", "fast", "stop"],
                           check=True, stdout=subprocess.DEVNULL)


# -- the measured steps (each in a child process) -------------------------------------------------

def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _cpu(backend: int) -> float:
    """CPU seconds used so far by the whole PostgreSQL server of a backend on this machine.

    Every process of the server counts (parallel workers, WAL writer, checkpointer):
    the live children of the postmaster, and through its cutime/cstime those that
    ended. Meaningful on a server nothing else uses, like the one --own-server starts.
    """
    postmaster = int(_stat(backend)[1])
    fields = _stat(postmaster)
    ticks = sum(int(f) for f in fields[11:15])
    ticks += sum(int(child[11]) + int(child[12]) for _, child in _server_processes(postmaster))
    return ticks / os.sysconf("SC_CLK_TCK")


def _server_processes(postmaster: int) -> Iterator[tuple[int, list[str]]]:
    """(pid, stat fields) of the postmaster's live children."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                child = _stat(int(entry.name))
            except OSError:
                continue
            if int(child[1]) == postmaster:
                yield int(entry.name), child


def _children(backend: int) -> set[int]:
    return {pid for pid, _ in _server_processes(int(_stat(backend)[1]))}


def _settled(backend: int, before: set[int], limit: float = 10.0) -> None:
    """Wait until the backends the step started (side connections) have exited and been reaped: _cpu
    misses a process reaped between its two readings."""
    deadline = time.monotonic() + limit
    while _children(backend) - before and time.monotonic() < deadline:
        time.sleep(0.05)


def step_sparkify(url: str, path: str, options: dict | None = None) -> tuple[float, float]:
    """The target's write path, from batch tables on its own engine connection, as in a run."""
    target = PostgresTarget.from_url(url, options or {})
    with target.session():
        con = target.engine_connection()
        con.execute("SET enable_progress_bar = false")
        con.execute("ATTACH ? AS src (READ_ONLY)", [path])
        for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'src'").fetchall():
            con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM src.{name}")
        con.execute("DETACH src")
        backend = target._con.info.backend_pid
        before = _children(backend)
        start, cpu = time.perf_counter(), _cpu(backend)
        run = Run("songs", "logs", [], [], run_id="bench-" + uuid.uuid4().hex[:8])
        target.write(DuckDBBatch(run, con=con), False, lambda r: "{}")
        wall = time.perf_counter() - start
        _settled(backend, before)
        return wall, _cpu(backend) - cpu


def step_plain_copy(url: str, path: str) -> tuple[float, float]:
    """What a straightforward script does: binary COPY row by row with psycopg, into the keyed tables."""
    PostgresTarget.from_url(url, {}).create_schema()
    with psycopg.connect(url) as pg, duckdb.connect(path, read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        start, cpu = time.perf_counter(), _cpu(pg.info.backend_pid)
        for table in STAR:
            columns = ", ".join(DIALECT.quote(c) for c in table.column_names)
            with pg.cursor().copy(f"COPY {DIALECT.quote(table.name)} ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types([DIALECT.types[c.type] for c in table.columns])
                for batch in con.sql(f"SELECT {columns} FROM b_{table.name}").to_arrow_reader(100_000):
                    for row in zip(*(c.to_pylist() for c in batch.columns)):
                        copy.write_row(row)
        pg.commit()
        return time.perf_counter() - start, _cpu(pg.info.backend_pid) - cpu


def step_insert(url: str, path: str) -> tuple[float, float]:
    """The original project's etl.py: one INSERT per row, autocommit (run on a slice)."""
    PostgresTarget.from_url(url, {}).create_schema()
    with psycopg.connect(url, autocommit=True) as pg, duckdb.connect(path, read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        start, cpu = time.perf_counter(), _cpu(pg.info.backend_pid)
        for table in STAR:
            columns = ", ".join(DIALECT.quote(c) for c in table.column_names)
            marks = ", ".join(["%s"] * len(table.columns))
            sql = f"INSERT INTO {DIALECT.quote(table.name)} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING"
            for row in con.execute(f"SELECT {columns} FROM b_{table.name}").fetchall():
                pg.execute(sql, row)
        return time.perf_counter() - start, _cpu(pg.info.backend_pid) - cpu


def _child(queue, fn, args, verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="  %(message)s")
    wall, server_cpu = fn(*args)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    queue.put((wall, server_cpu, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024))


def measured(fn, *args, verbose: bool = False) -> tuple[float, float, float, float]:
    """Wall and server CPU seconds of the step fn(*args) times, client CPU seconds and peak RSS (MB)
    of the whole fresh process it runs in."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn, args, verbose))
    proc.start()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"{fn.__name__} failed with exit code {proc.exitcode}")
    return queue.get()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songplays", type=int, default=1_000_000)
    parser.add_argument("--insert-rows", type=int, default=20_000, help="songplays for the row-per-INSERT slice")
    parser.add_argument("--pg-url", help="a server where databases can be created (default: --own-server)")
    parser.add_argument("--server-setting", action="append", default=["fsync=off"],
                        help="postgresql.conf setting for --own-server (default fsync=off, as the test server)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each step of the write")
    parser.add_argument("--skip", nargs="*", default=[], choices=["plain", "insert", "increment"])
    parser.add_argument("--rounds", type=int, default=1,
                        help="first loads of each kind, alternated: built aside (the default) and in one transaction")
    args = parser.parse_args()
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sparkify-bench-")))
        if not args.pg_url:
            args.pg_url = stack.enter_context(own_server(args.server_setting))
            print(f"own server at {args.pg_url} with {', '.join(args.server_setting)}", file=sys.stderr)
        with psycopg.connect(args.pg_url) as con:
            version = con.execute("SHOW server_version").fetchone()[0]
        results = measure_all(args, work)
    print(f"\n{args.songplays:,} synthesized song plays; PostgreSQL {version}; "
          f"{os.cpu_count()} CPUs; server CPU = all its processes\n")
    print("| method | star rows | wall s | star rows/s (wall) | server CPU s | star rows per server CPU s "
          "| client CPU s | client peak RSS MB |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for method, rows, seconds, server, client, rss in results:
        print(f"| {method} | {rows:,} | {seconds:.2f} | {rows / seconds:,.0f} | {server:.1f} | "
              f"{rows / server:,.0f} | {client:.1f} | {rss:,.0f} |")
    for method in dict.fromkeys(r[0] for r in results):
        runs = [r for r in results if r[0] == method]
        if len(runs) > 1:
            rates = [rows / seconds for _, rows, seconds, *_ in runs]
            print(f"\n{method}: median {statistics.median(rates):,.0f} star rows/s over {len(runs)} runs "
                  f"({min(rates):,.0f} to {max(rates):,.0f})")
    return 0


FIRST_LOAD = "sparkify write, first load (songplays and time built aside)"
FIRST_LOAD_ONE = "sparkify write, first load in one transaction"


def measure_all(args: argparse.Namespace, work: Path) -> list[tuple]:
    first, more, small = str(work / "first.duckdb"), str(work / "more.duckdb"), str(work / "small.duckdb")
    print(f"synthesizing {args.songplays:,} song plays ...", file=sys.stderr)
    synthesize(first, args.songplays)
    results = []

    def record(method: str, path: str, fn, url: str, *more) -> None:
        rows = star_rows(path)
        load = os.getloadavg()[0]
        seconds, server, client, rss = measured(fn, url, path, *more, verbose=args.verbose)
        results.append((method, rows, seconds, server, client, rss))
        print(f"{method}: {rows:,} star rows in {seconds:.2f} s, {rows / seconds:,.0f} rows/s "
              f"(server CPU {server:.1f} s; load average {load:.2f} before)", file=sys.stderr)

    aside, one_transaction = {"parallel_load_above": 0}, {"parallel_load_above": 2**62}  # whatever the size
    for _ in range(args.rounds - 1):
        for method, options in ((FIRST_LOAD, aside), (FIRST_LOAD_ONE, one_transaction)):
            with scratch_database(args.pg_url) as url:
                record(method, first, step_sparkify, url, options)
    if args.rounds > 1:
        with scratch_database(args.pg_url) as url:
            record(FIRST_LOAD_ONE, first, step_sparkify, url, one_transaction)
    with scratch_database(args.pg_url) as url:
        record(FIRST_LOAD, first, step_sparkify, url, aside)
        if "increment" not in args.skip:
            synthesize(more, args.songplays // 10, first=args.songplays)
            record("sparkify write, +10 % increment (keys maintained)", more, step_sparkify, url)
    for name, path, fn, size in (("plain", first, step_plain_copy, args.songplays),
                                 ("insert", small, step_insert, args.insert_rows)):
        if name in args.skip:
            continue
        if name == "insert":
            synthesize(path, size)
        label = {"plain": "plain binary COPY (psycopg write_row + set_types)",
                 "insert": f"row-per-INSERT, autocommit ({size:,} song plays)"}[name]
        with scratch_database(args.pg_url) as url:
            record(label, path, fn, url)
    return results


if __name__ == "__main__":
    sys.exit(main())
