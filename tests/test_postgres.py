"""The PostgreSQL target against a real PostgreSQL 15 server (scripts/services.sh).

Differential: the same input gives the same tables, row for row, in
PostgreSQL as in the embedded DuckDB target, after a full load, an
increment and a rerun. Then what only a server target has: its schema
option, its lock, its transaction under failure and kill, its errors and
its secrets. One unit test pins the exact SQL and COPY bytes with a fake cursor.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from sparkify import pipeline
from sparkify.engines.duckdb import Batch
from sparkify.schema import STAR
from sparkify.targets import open_target, pgaside, pgcopy, postgres
from sparkify.targets.base import TargetError
from sparkify.targets.postgres import PostgresTarget, redact, size_bytes
from tests.conftest import REPO, balanced, database, run_cli, run_json

pytestmark = pytest.mark.postgres

STAR_COUNTS = {"songplays": 6820, "users": 97, "songs": 71, "artists": 69, "time": 6813}
"""The sample's figures, as stated in the issue."""


def _args(data: Path, target: str, *extra) -> tuple:
    return ("--songs", data / "song_data", "--logs", data / "log_data", "--target", target, *extra)


def snapshot(url: str, options: dict | None = None) -> dict[str, list[tuple]]:
    """Every row of the star, the rejects and the ledger, ordered by key, values exactly as stored."""
    target = open_target(url, options or {})
    out = {}
    for table in STAR:
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        order = ", ".join(f'"{c}"' for c in table.primary_key)
        out[table.name] = list(target.query(f'SELECT {cols} FROM "{table.name}" ORDER BY {order}')[1])
    out["rejects"] = list(target.query(
        "SELECT kind, source_file, line, reason, raw FROM rejects ORDER BY kind, source_file, line, raw")[1])
    out["ledger"] = list(target.query(
        'SELECT path, kind, size, modified, records FROM "_sparkify_files" ORDER BY path')[1])
    return out


def _move_days(src: Path, dest: Path, which: slice) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted((src / "log_data" / "2018" / "11").glob("*.json"))[which]:
        shutil.move(path, dest / path.name)


def _move_back(later: Path, data: Path) -> None:
    for path in later.iterdir():
        shutil.move(path, data / "log_data" / "2018" / "11" / path.name)


def _pg(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def _keys(url: str, schema: str = "public") -> set[tuple]:
    """(table, kind, definition) of every constraint and index in the schema."""
    with _pg(url) as con:
        constraints = con.execute(
            "SELECT r.relname::text, c.contype::text, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace "
            "WHERE n.nspname = %s AND c.contype IN ('p', 'f')", [schema]).fetchall()
        indexes = con.execute(
            "SELECT tablename, 'i', indexdef FROM pg_indexes WHERE schemaname = %s", [schema]).fetchall()
    return set(constraints) | set(indexes)


def _aside_schemas(url: str) -> list[str]:
    with _pg(url) as con:
        rows = con.execute(r"SELECT nspname FROM pg_namespace WHERE nspname LIKE '\_sparkify\_aside\_%'")
        return [r[0] for r in rows]


@pytest.fixture(params=["one transaction", "built aside"])
def first_load(request) -> Iterator[str]:
    """Each way of loading an empty star: songplays and time built on side connections (targets/pgaside.py)
    from PARALLEL_LOAD_ABOVE song plays on, which the sample's 6,820 are put over or under."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(postgres, "PARALLEL_LOAD_ABOVE", 0 if request.param == "built aside" else 2**62)
        yield request.param


# -- the same tables as DuckDB ------------------------------------------------------------------

def test_full_load_equals_duckdb_row_for_row(first_load, pg_url, sample, tmp_path):
    summary = run_json(*_args(sample, pg_url))
    assert balanced(summary)
    assert summary["tables"] == STAR_COUNTS
    duck = str(tmp_path / "ref.duckdb")
    run_json(*_args(sample, duck))
    pg, ref = snapshot(pg_url), snapshot(duck)
    assert {t: len(rows) for t, rows in pg.items() if t in STAR_COUNTS} == STAR_COUNTS
    assert pg == ref
    start = pg["songplays"][0][1]
    assert start.utcoffset() == dt.timedelta(0)
    assert _aside_schemas(pg_url) == []


@pytest.mark.parametrize("keys", ["rebuilt", "maintained"])
def test_increment_then_rerun_equal_duckdb_row_for_row(keys, first_load, pg_url, sample_copy, tmp_path, caplog):
    """Both ways an increment treats the keys: rebuilt after the merge (a large increment), or kept."""
    config = tmp_path / "sparkify.toml"
    config.write_text(f'[target]\nurl = "{pg_url}"\nrebuild_keys_above = {0 if keys == "rebuilt" else 1e9}\n')
    duck = str(tmp_path / "ref.duckdb")
    later = tmp_path / "later"

    def run(target: str) -> dict:
        args = ("--config", config, "run", *_args(sample_copy, target)[:4], "--json")
        code, out = run_cli(*args, *(("--target", target) if target == duck else ()))
        assert code == 0
        return json.loads(out.strip().splitlines()[-1])

    _move_days(sample_copy, later, slice(15, None))
    for target in (pg_url, duck):
        assert run(target)["files"]["logs"]["new"] == 15
    half = snapshot(pg_url)
    assert half == snapshot(duck)
    assert 0 < len(half["songplays"]) < STAR_COUNTS["songplays"]
    keys_before = _keys(pg_url)

    _move_back(later, sample_copy)
    caplog.clear()
    caplog.set_level("DEBUG", logger="sparkify.targets.postgres")
    for target in (pg_url, duck):
        second = run(target)
        assert second["files"]["logs"] == {"new": 15, "skipped": 15}
        assert balanced(second)
    assert ("key songplays_start_time_fkey" in caplog.text) == (keys == "rebuilt")
    after = snapshot(pg_url)
    assert after == snapshot(duck)
    assert {t: len(after[t]) for t in STAR_COUNTS} == STAR_COUNTS
    assert _keys(pg_url) == keys_before

    rerun = run(pg_url)
    assert rerun["files"]["logs"] == {"new": 0, "skipped": 30}
    assert rerun["accounting"]["events"]["read"] == 0
    assert snapshot(pg_url) == after
    with _pg(pg_url) as con:
        assert con.execute('SELECT count(*) FROM "_sparkify_runs"').fetchone()[0] == 3


def test_full_refresh_equals_duckdb_and_keeps_the_keys(first_load, pg_url, sample, tmp_path):
    run_json(*_args(sample, pg_url))
    keys = _keys(pg_url)
    summary = run_json(*_args(sample, pg_url, "--full-refresh"))
    assert summary["files"]["logs"]["new"] == 30
    assert summary["accounting"]["events"]["loaded"] == STAR_COUNTS["songplays"]
    duck = str(tmp_path / "ref.duckdb")
    run_json(*_args(sample, duck))
    assert snapshot(pg_url) == snapshot(duck)
    assert _keys(pg_url) == keys


def _write_logs(folder: Path, day: int, events: list[dict]) -> None:
    path = folder / "log_data" / "2018" / "11" / f"2018-11-{day:02d}-events.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in events))


def _event(user: int, ts: int, level: str, session: int = 1, item: int = 0) -> dict:
    return {"artist": None, "auth": "Logged In", "firstName": "Ann", "gender": "F", "itemInSession": item,
            "lastName": "Lee", "length": None, "level": level, "location": "Town, ST", "method": "GET",
            "page": "Home", "registration": 1.5e12, "sessionId": session, "song": None, "status": 200,
            "ts": ts, "userAgent": "agent", "userId": str(user)}


def test_level_moves_forward_only(pg_url, tmp_path):
    """A late file with older events must not move a user's level back; later events move it on."""
    data = tmp_path / "data"
    (data / "song_data").mkdir(parents=True)
    day = 86_400_000
    _write_logs(data, 20, [_event(1, 1_542_672_000_000, "paid"), _event(2, 1_542_672_000_000, "free", 5, 3)])
    run_json(*_args(data, pg_url))
    _write_logs(data, 10, [_event(1, 1_542_672_000_000 - 10 * day, "free"),
                           _event(2, 1_542_672_000_000, "paid", 5, 2)])  # same ts, earlier item
    run_json(*_args(data, pg_url))
    assert snapshot(pg_url)["users"] == [(1, "Ann", "Lee", "F", "paid"), (2, "Ann", "Lee", "F", "free")]
    _write_logs(data, 21, [_event(1, 1_542_672_000_000 + day, "free"), _event(2, 1_542_672_000_000, "paid", 5, 4)])
    run_json(*_args(data, pg_url))
    assert snapshot(pg_url)["users"] == [(1, "Ann", "Lee", "F", "free"), (2, "Ann", "Lee", "F", "paid")]


# -- DDL, the schema option and the commands ------------------------------------------------------

def test_schema_command_creates_the_declared_keys_and_types(pg_url, sample):
    code, _ = run_cli("schema", "--target", pg_url)
    assert code == 0
    with _pg(pg_url) as con:
        types = dict(((t, c), (d, n)) for t, c, d, n in con.execute(
            "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_schema = 'public'").fetchall())
    assert types[("songplays", "start_time")] == ("timestamp with time zone", "NO")
    assert types[("songplays", "songplay_id")] == ("bigint", "NO")
    assert types[("songplays", "song_id")] == ("text", "YES")
    assert types[("time", "hour")] == ("integer", "NO")
    assert types[("songs", "duration")] == ("double precision", "NO")
    assert types[("artists", "latitude")] == ("double precision", "YES")
    keys = _keys(pg_url)
    for table, key in (("songplays", "songplay_id"), ("users", "user_id"), ("songs", "song_id"),
                       ("artists", "artist_id"), ("time", "start_time")):
        assert (table, "p", f"PRIMARY KEY ({key})") in keys
    for column, ref in (("start_time", "\"time\"(start_time)"), ("user_id", "users(user_id)"),
                        ("song_id", "songs(song_id)"), ("artist_id", "artists(artist_id)")):
        assert ("songplays", "f", f"FOREIGN KEY ({column}) REFERENCES {ref}") in keys
    assert ("songs", "f", "FOREIGN KEY (artist_id) REFERENCES artists(artist_id)") in keys
    indexed = {d.split("USING btree ")[1] for t, k, d in keys if t == "songplays" and k == "i"}
    assert {"(start_time)", "(user_id)", "(song_id)", "(songplay_id)"} <= indexed

    run_json(*_args(sample, pg_url))
    assert run_cli("schema", "--target", pg_url)[0] == 0
    assert snapshot(pg_url)["songplays"], "schema without --reset keeps the data"
    assert run_cli("schema", "--target", pg_url, "--reset")[0] == 0
    assert all(not rows for rows in snapshot(pg_url).values())
    assert _keys(pg_url) == keys


def test_schema_option_from_the_config_file(pg_url, sample, tmp_path):
    config = tmp_path / "sparkify.toml"
    config.write_text(f'[target]\nurl = "{pg_url}"\nschema = "Sparkify Analytics"\n')
    code, out = run_cli("--config", config, "run", "--songs", sample / "song_data", "--logs", sample / "log_data",
                        "--json")
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["tables"] == STAR_COUNTS
    assert "schema Sparkify Analytics" in summary["target"]
    with _pg(pg_url) as con:
        assert con.execute("SELECT count(*) FROM \"Sparkify Analytics\".songplays").fetchone()[0] == 6820
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
                           ).fetchone()[0] == 0
    assert run_cli("--config", config, "check")[0] == 0
    code, out = run_cli("--config", config, "query", "SELECT count(*) AS n FROM songplays", "--format", "csv")
    assert (code, out.split()) == (0, ["n", "6820"])
    assert {t for t, _, _ in _keys(pg_url, "Sparkify Analytics")} >= {t for t in STAR_COUNTS}


def test_check_and_query_work_and_return_utc(pg_url, sample):
    with _pg(pg_url) as con:
        con.execute(sql.SQL("ALTER DATABASE {} SET TimeZone = 'America/New_York'").format(
            sql.Identifier(pg_url.rsplit("/", 1)[1])))
    run_json(*_args(sample, pg_url))
    assert run_cli("check", "--target", pg_url)[0] == 0
    first_ts = min(
        json.loads(line)["ts"]
        for path in (sample / "log_data").rglob("*.json")
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line).get("page") == "NextSong" and json.loads(line).get("userId")
    )
    columns, rows = open_target(pg_url).query("SELECT min(start_time) AS first FROM songplays")
    (first,), = list(rows)
    assert columns == ["first"]
    assert first == dt.datetime.fromtimestamp(first_ts / 1000, dt.timezone.utc)
    assert first.utcoffset() == dt.timedelta(0)
    code, out = run_cli("query", "SELECT min(start_time) AS first FROM songplays", "--target", pg_url,
                        "--format", "json")
    assert json.loads(out)["first"].endswith("+00:00")


def test_query_is_read_only_and_streams(pg_url, sample):
    run_json(*_args(sample, pg_url))
    target = open_target(pg_url)
    with pytest.raises(TargetError, match="read-only"):
        list(target.query("SELECT 1 FROM songplays FOR UPDATE")[1])
    columns, rows = target.query("SELECT songplay_id FROM songplays")
    assert sum(1 for _ in rows) == 6820
    assert open_target(pg_url).query("SELECT count(*) FROM songplays")[1].__next__() == (6820,)


def test_libpq_environment_variables(pg_url, sample, monkeypatch):
    bare = psycopg.conninfo.conninfo_to_dict(pg_url)
    for key, var in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"), ("dbname", "PGDATABASE")):
        monkeypatch.setenv(var, str(bare[key]))
    summary = run_json(*_args(sample, "postgresql://"))
    assert summary["tables"] == STAR_COUNTS
    with _pg(pg_url) as con:
        assert con.execute("SELECT count(*) FROM songplays").fetchone()[0] == 6820


# -- atomicity -----------------------------------------------------------------------------------

def _failing_copy(monkeypatch, table: str) -> None:
    """Make the COPY into `table` fail once its rows are sent (mid-transaction)."""
    original = PostgresTarget._copy

    def copy(cur, statement, reader):
        original(cur, statement, reader)
        if f'"{table}"' in statement:
            raise psycopg.errors.QueryCanceled(f"injected failure after the copy into {table}")

    monkeypatch.setattr(PostgresTarget, "_copy", staticmethod(copy))


def test_a_failed_first_load_leaves_the_empty_keyed_tables(first_load, pg_url, sample, monkeypatch):
    assert run_cli("schema", "--target", pg_url)[0] == 0
    keys = _keys(pg_url)
    _failing_copy(monkeypatch, "songplays")
    code, _ = run_cli("run", *_args(sample, pg_url))
    assert code != 0
    assert all(not rows for rows in snapshot(pg_url).values())
    assert _keys(pg_url) == keys
    assert _aside_schemas(pg_url) == [], "the side schema is dropped after a failure"
    monkeypatch.undo()
    assert run_json(*_args(sample, pg_url))["tables"] == STAR_COUNTS


def test_a_failed_increment_or_full_refresh_leaves_the_previous_state(pg_url, sample_copy, tmp_path, monkeypatch):
    later = tmp_path / "later"
    _move_days(sample_copy, later, slice(15, None))
    run_json(*_args(sample_copy, pg_url))
    before, keys = snapshot(pg_url), _keys(pg_url)
    _move_back(later, sample_copy)
    _failing_copy(monkeypatch, "b_songplays")
    assert run_cli("run", *_args(sample_copy, pg_url))[0] != 0
    assert snapshot(pg_url) == before
    _failing_copy(monkeypatch, "songplays")
    assert run_cli("run", *_args(sample_copy, pg_url, "--full-refresh"))[0] != 0
    assert snapshot(pg_url) == before
    assert _keys(pg_url) == keys
    monkeypatch.undo()
    summary = run_json(*_args(sample_copy, pg_url))
    assert summary["files"]["logs"] == {"new": 15, "skipped": 15}
    assert summary["tables"] == STAR_COUNTS


def _cli(*args, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "COLUMNS": "300", "PYTHONPATH": str(REPO / "src")}
    return subprocess.Popen([sys.executable, "-m", "sparkify.cli", *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _wait_for(condition, what: str, limit: float = 60.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def _backend(url: str, query_start: str, waiting: bool = True):
    """The pid of a backend of this database running a query that starts so, blocked on a lock."""
    with _pg(url) as con:
        row = con.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE %s "
            "AND pid <> pg_backend_pid() AND (NOT %s OR wait_event_type = 'Lock')",
            [query_start + "%", waiting]).fetchone()
    return row and row[0]


def test_a_kill_mid_merge_leaves_the_previous_state(pg_url, sample_copy, tmp_path):
    later = tmp_path / "later"
    _move_days(sample_copy, later, slice(15, None))
    run_json(*_args(sample_copy, pg_url))
    before = snapshot(pg_url)
    _move_back(later, sample_copy)
    config = tmp_path / "sparkify.toml"  # keys maintained: the run stages and merges, then waits
    config.write_text(f'[target]\nurl = "{pg_url}"\nrebuild_keys_above = 1e9\n')
    with _pg(pg_url) as blocker:
        blocker.execute("BEGIN")
        blocker.execute("LOCK TABLE songplays IN SHARE MODE")  # the run's songplays merge will wait here
        run = _cli("--config", config, "run", *_args(sample_copy, pg_url))
        pid = _wait_for(lambda: _backend(pg_url, 'INSERT INTO "public"."songplays"'), "the merge to block")
        run.send_signal(signal.SIGKILL)
        run.wait()
        blocker.execute("ROLLBACK")
    _wait_for(lambda: not _backend(pg_url, 'INSERT INTO "public"."songplays"', waiting=False),
              f"backend {pid} to end")
    assert snapshot(pg_url) == before
    summary = run_json(*_args(sample_copy, pg_url))
    assert summary["files"]["logs"] == {"new": 15, "skipped": 15}
    assert summary["tables"] == STAR_COUNTS


def test_a_second_run_waits_for_the_first_and_says_so(pg_url, sample):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from sparkify.targets import open_target\n"
         f"t = open_target({pg_url!r})\n"
         "with t.session():\n    print('locked', flush=True)\n    sys.stdin.read()\n"],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        run = _cli("run", *_args(sample, pg_url), "--json")
        _wait_for(lambda: _backend(pg_url, "SELECT pg_advisory_lock"), "the second run to wait for the lock")
        with _pg(pg_url) as con:
            assert con.execute('SELECT count(*) FROM "_sparkify_runs"').fetchone()[0] == 0
            assert con.execute("SELECT count(*) FROM songplays").fetchone()[0] == 0
        assert run.poll() is None
    finally:
        holder.stdin.close()
        holder.wait()
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert "waiting for it to finish" in err
    assert json.loads(out.strip().splitlines()[-1])["tables"] == STAR_COUNTS


def test_the_lock_wait_is_bounded(pg_url):
    holder = PostgresTarget.from_url(pg_url, {})
    waiter = PostgresTarget.from_url(pg_url, {"lock_timeout": 0.5})
    with holder.session():
        with pytest.raises(TargetError, match="gave up waiting"):
            with waiter.session():
                pass
    with waiter.session():  # free again once the holder is done
        pass


# -- a first load built aside (targets/pgaside.py) ------------------------------------------------

def _catalogue(url: str) -> dict:
    """What a table is, beyond its rows and keys: columns, types, NOT NULL, owner, kind, persistence, options."""
    with _pg(url) as con:
        tables = con.execute(
            "SELECT relname::text, relkind::text, relpersistence::text, pg_get_userbyid(relowner)::text, "
            "reloptions::text FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1").fetchall()
        columns = con.execute(
            "SELECT attrelid::regclass::text, attnum, attname::text, format_type(atttypid, atttypmod), attnotnull "
            "FROM pg_attribute WHERE attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = "
            "'public'::regnamespace AND relkind = 'r') AND attnum > 0 AND NOT attisdropped ORDER BY 1, 2").fetchall()
    return {"tables": tables, "columns": columns, "keys": _keys(url)}


def _oid(url: str, table: str) -> int:
    with _pg(url) as con:
        return con.execute("SELECT %s::regclass::oid", [table]).fetchone()[0]


def test_built_aside_or_in_one_transaction_the_star_and_its_catalogue_are_the_same(pg_server, sample, monkeypatch):
    seen = {}
    for threshold in (0, 2**62):
        monkeypatch.setattr(postgres, "PARALLEL_LOAD_ABOVE", threshold)
        with database(pg_server) as url:
            assert run_cli("schema", "--target", url)[0] == 0
            created = _oid(url, "songplays"), _oid(url, '"time"')
            assert run_json(*_args(sample, url))["tables"] == STAR_COUNTS
            replaced = (_oid(url, "songplays"), _oid(url, '"time"')) != created
            assert replaced == (threshold == 0), "aside: the tables were replaced; else filled in place"
            assert _aside_schemas(url) == []
            seen[threshold] = snapshot(url), _catalogue(url)
    assert seen[0] == seen[2**62]


def test_tables_carrying_grants_views_or_comments_are_loaded_in_place(pg_url, sample, monkeypatch, caplog):
    monkeypatch.setattr(postgres, "PARALLEL_LOAD_ABOVE", 0)
    assert run_cli("schema", "--target", pg_url)[0] == 0
    with _pg(pg_url) as con:
        con.execute("CREATE VIEW plays_per_user AS SELECT user_id, count(*) AS plays FROM songplays GROUP BY 1")
        con.execute('GRANT SELECT ON "time" TO PUBLIC')
        con.execute("COMMENT ON COLUMN songplays.level IS 'free or paid'")
    oids = _oid(pg_url, "songplays"), _oid(pg_url, '"time"')
    caplog.set_level("INFO", logger="sparkify.targets.pgaside")
    assert run_json(*_args(sample, pg_url))["tables"] == STAR_COUNTS
    assert (_oid(pg_url, "songplays"), _oid(pg_url, '"time"')) == oids
    refusal = next(r.getMessage() for r in caplog.records if "in one transaction" in r.getMessage())
    for reason in ("time has grants", "songplays has comments", "songplays has dependent objects"):
        assert reason in refusal
    with _pg(pg_url) as con:
        assert con.execute("SELECT sum(plays) FROM plays_per_user").fetchone()[0] == STAR_COUNTS["songplays"]
        assert con.execute("SELECT has_table_privilege('public', '\"time\"', 'SELECT')").fetchone()[0]
    assert _aside_schemas(pg_url) == []


def test_a_role_that_may_not_create_schemas_loads_in_one_transaction(pg_url, sample, tmp_path, monkeypatch,
                                                                     caplog):
    monkeypatch.setattr(postgres, "PARALLEL_LOAD_ABOVE", 0)
    role = "etl_" + uuid.uuid4().hex[:8]
    with _pg(pg_url) as con:
        con.execute(f"CREATE ROLE {role} LOGIN")
        con.execute(f"CREATE SCHEMA analytics AUTHORIZATION {role}")
    url = pg_url.replace("postgres@", f"{role}@")
    try:
        caplog.set_level("INFO", logger="sparkify.targets.pgaside")
        config = tmp_path / "sparkify.toml"
        config.write_text(f'[target]\nurl = "{url}"\nschema = "analytics"\n')
        code, out = run_cli("--config", config, "run", *_args(sample, url), "--json")
        assert code == 0, out
        assert json.loads(out.strip().splitlines()[-1])["tables"] == STAR_COUNTS
        assert "in one transaction: the role may not create schemas" in caplog.text
    finally:
        with _pg(pg_url) as con:
            con.execute("DROP SCHEMA analytics CASCADE")
            con.execute(f"DROP ROLE {role}")


def test_without_side_connections_the_first_load_runs_in_one_transaction(pg_url, sample, monkeypatch, caplog):
    monkeypatch.setattr(postgres, "PARALLEL_LOAD_ABOVE", 0)
    connect, opened = PostgresTarget._connect, []

    def at_most_one(self):
        opened.append(self)
        if len(opened) > 1:
            raise TargetError("too many clients already (injected)")
        return connect(self)

    monkeypatch.setattr(PostgresTarget, "_connect", at_most_one)
    caplog.set_level("INFO", logger="sparkify.targets.pgaside")
    code, out = run_cli("run", *_args(sample, pg_url), "--json")
    monkeypatch.undo()
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1])["tables"] == STAR_COUNTS
    assert "in one transaction: no side connection: too many clients already (injected)" in caplog.text
    assert _aside_schemas(pg_url) == []


def test_a_key_that_fails_aside_fails_the_load_and_leaves_nothing(pg_url, caplog):
    caplog.set_level("DEBUG", logger="sparkify.targets.pgaside")
    batch = _one_row_batch()
    batch.con.execute("INSERT INTO b_songplays SELECT * FROM b_songplays")  # songplay_id 7, twice
    target = PostgresTarget.from_url(pg_url, {"parallel_load_above": 0})
    with target.session():
        with pytest.raises(TargetError, match=r"nothing was written: .*songplays_pkey"):
            target.write(batch, False, lambda result: "{}")
    assert "aside copy songplays" in caplog.text
    assert _aside_schemas(pg_url) == []
    assert all(not rows for rows in snapshot(pg_url).values())


PAUSED_AFTER_SIDE_BUILDS = """
import sys
from sparkify import cli
from sparkify.targets import pgaside
finish = pgaside.AsideBuild.finish
def paused(self, cur):
    for build in self.builds:
        build.result()
    print("built aside", flush=True)
    sys.stdin.readline()
    return finish(self, cur)
pgaside.AsideBuild.finish = paused
sys.exit(cli.main(sys.argv[1:]))
"""
"""`sparkify` that stops, once every side build has committed, until its stdin gives a line: the moment to kill."""


def _paused_first_load(pg_url: str, sample: Path, tmp_path: Path) -> tuple[Path, set, subprocess.Popen]:
    """A first load built aside into the empty tables of `sparkify schema`, held once its side builds committed:
    its config file, the keys of those empty tables, and the process (a line on its stdin lets it go on)."""
    config = tmp_path / "sparkify.toml"
    config.write_text(f'[target]\nurl = "{pg_url}"\nparallel_load_above = 0\n')
    assert run_cli("schema", "--target", pg_url)[0] == 0
    keys = _keys(pg_url)
    run = subprocess.Popen(
        [sys.executable, "-c", PAUSED_AFTER_SIDE_BUILDS, "--config", config, "run", *_args(sample, pg_url)],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    assert run.stdout.readline().strip() == "built aside"
    return config, keys, run


def test_a_kill_after_the_side_commits_leaves_the_empty_star_and_the_next_run_sweeps(pg_url, sample, tmp_path):
    aside = pgaside.aside_schema("public")
    config, keys, run = _paused_first_load(pg_url, sample, tmp_path)
    try:
        with _pg(pg_url) as con:
            built = [con.execute("SELECT to_regclass(%s)", [f'"{aside}".{t}']).fetchone()[0]
                     for t in ("songplays", '"time"')]
        assert all(built), "both side tables are committed"
    finally:
        run.send_signal(signal.SIGKILL)
        run.wait()
    _wait_for(lambda: not _backend(pg_url, "", waiting=False), "the killed run's backends to end")
    assert _aside_schemas(pg_url) == [aside], "the killed run left its side tables"
    assert all(not rows for rows in snapshot(pg_url).values())
    assert _keys(pg_url) == keys
    code, out = run_cli("--config", config, "run", *_args(sample, pg_url), "--json")
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1])["tables"] == STAR_COUNTS
    assert _aside_schemas(pg_url) == []
    assert _keys(pg_url) == keys


def test_a_query_waiting_on_a_first_load_built_aside_reads_the_new_table(pg_url, sample, tmp_path):
    *_, run = _paused_first_load(pg_url, sample, tmp_path)
    counted: list = []

    def count() -> None:
        with _pg(pg_url) as con:
            counted.append(con.execute("SELECT count(*) FROM songplays").fetchone()[0])

    reader = threading.Thread(target=count)
    reader.start()
    _wait_for(lambda: _backend(pg_url, "SELECT count(*) FROM songplays"), "the query to wait on the load")
    out, err = run.communicate("go\n", timeout=300)
    reader.join(60)
    assert run.returncode == 0, err
    assert counted == [STAR_COUNTS["songplays"]]


# -- errors and secrets --------------------------------------------------------------------------

@pytest.fixture()
def secret_url(pg_url: str):
    """The test database reached as a role of its own, with a password in the URL."""
    role, password = "sp_" + uuid.uuid4().hex[:10], "Pw-" + uuid.uuid4().hex
    dbname = pg_url.rsplit("/", 1)[1]
    with _pg(pg_url) as con:
        con.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        con.execute(sql.SQL("GRANT CREATE, CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(dbname), sql.Identifier(role)))
        con.execute(sql.SQL("GRANT CREATE, USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    host = pg_url.split("@", 1)[1]
    yield f"postgresql://{role}:{password}@{host}", password
    with _pg(pg_url) as con:
        con.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        con.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_password_is_never_printed(secret_url, sample, capsys, caplog):
    url, password = secret_url
    caplog.set_level("DEBUG")
    code, out = run_cli("-v", "run", *_args(sample, url), "--json")
    summary = json.loads(out.strip().splitlines()[-1])
    assert (code, summary["tables"]) == (0, STAR_COUNTS)
    assert password not in summary["target"] and ":***@" in summary["target"]
    outputs = [json.dumps(summary)]
    base, dbname = url.rsplit("/", 1)
    host_port = base.rsplit("@", 1)[1]
    for args in (("check", "--target", url), ("query", "SELECT count(*) FROM songplays", "--target", url),
                 ("query", "SELECT nonsense FROM songplays", "--target", url),
                 ("schema", "--target", url),
                 ("query", "SELECT 1", "--target", base + "/no_such_db"),
                 ("query", "SELECT 1", "--target", url.replace(host_port, "127.0.0.1:1")),
                 ("run", *_args(sample, url + "?options=-cbogus_setting%3D1"))):
        code, out = run_cli("-v", *args)
        outputs.append(out)
    captured = capsys.readouterr()
    outputs += [captured.out, captured.err, caplog.text]
    assert "***" in captured.err
    for text in outputs:
        assert password not in text


def test_connection_errors_are_clear_and_redacted(pg_url):
    base = pg_url.rsplit("/", 1)[0].replace("postgres@", "postgres:hunter22@")
    cases = {
        "does not exist": base + "/no_such_database",
        "Connection refused": "postgresql://postgres:hunter22@127.0.0.1:1/postgres",
        'role "nobody" does not exist': base.replace("postgres:", "nobody:") + "/postgres",
    }
    for reason, url in cases.items():
        with pytest.raises(TargetError) as err:
            open_target(url).query("SELECT 1")
        message = str(err.value)
        assert reason in message and redact(url) in message and "hunter22" not in message
    slow = PostgresTarget.from_url("postgresql://postgres:hunter22@10.255.255.1:5432/x", {"connect_timeout": 1})
    with pytest.raises(TargetError, match="cannot connect to PostgreSQL at postgresql://postgres:\\*\\*\\*@10.255"):
        slow.query("SELECT 1")


def test_redact():
    assert redact("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgres://u@h/db?sslmode=require&password=x") == "postgres://u@h/db?sslmode=require&password=***"
    assert redact("postgresql://h/db") == "postgresql://h/db"
    assert redact("postgresql://") == "postgresql://"


# -- the exact SQL and bytes (fake cursor, no server) ---------------------------------------------

class FakeCopy:
    def __init__(self, log: list):
        self.log = log

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, data) -> None:
        self.log.append(bytes(data))


class FakeCursor:
    """Answers the two questions write() asks: is the star empty, how many songplays does it hold."""

    def __init__(self, log: list, empty: bool):
        self.log, self.empty, self.rowcount, self.last = log, empty, 0, ""

    def execute(self, statement, params=None):
        self.log.append(statement if params is None else (statement, params))
        self.rowcount, self.last = 1, statement
        return self

    def fetchone(self):
        return (1e9,) if "reltuples" in self.last else (self.empty,)

    def copy(self, statement):
        self.log.append(statement)
        self.rowcount = 1
        return FakeCopy(self.log)


class FakeConnection:
    def __init__(self, empty: bool):
        self.log: list = []
        self.empty = empty

    @contextmanager
    def transaction(self):
        self.log.append("BEGIN")
        yield
        self.log.append("COMMIT")

    def cursor(self):
        return FakeCursor(self.log, self.empty)


def _one_row_batch() -> Batch:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("""CREATE TEMP TABLE b_songplays AS SELECT 7::BIGINT AS songplay_id,
        TIMESTAMPTZ '2018-11-01 21:01:46.796+00' AS start_time, 8::BIGINT AS user_id, 'free' AS level,
        NULL::VARCHAR AS song_id, NULL::VARCHAR AS artist_id, 139::BIGINT AS session_id,
        'Phoenix, AZ' AS location, 'Mozilla' AS user_agent""")
    con.execute("CREATE TEMP TABLE b_time AS SELECT TIMESTAMPTZ '2018-11-01 21:01:46.796+00' AS start_time, "
                 "21 AS hour, 1 AS day, 44 AS week, 11 AS month, 2018 AS year, 4 AS weekday")
    con.execute("CREATE TEMP TABLE b_users AS SELECT 8::BIGINT AS user_id, 'Kaylee' AS first_name, "
                "'Summers' AS last_name, 'F' AS gender, 'free' AS level, 1541106106796::BIGINT AS ts, "
                "139::BIGINT AS session_id, 0::BIGINT AS item_in_session")
    con.execute("CREATE TEMP TABLE b_artists AS SELECT 'AR1' AS artist_id, 'Artist' AS name, "
                "NULL::VARCHAR AS location, 1.5::DOUBLE AS latitude, NULL::DOUBLE AS longitude")
    con.execute("CREATE TEMP TABLE b_song_records AS SELECT 'SO1' AS song_id, 'Title' AS title, "
                "'AR1' AS artist_id, 'Artist' AS artist_name, NULL::VARCHAR AS artist_location, "
                "1.5::DOUBLE AS artist_latitude, NULL::DOUBLE AS artist_longitude, NULL::INTEGER AS year, "
                "200.5::DOUBLE AS duration, 'title' AS title_key, 'artist' AS artist_key")
    con.execute("CREATE TEMP TABLE b_songs AS SELECT song_id, title, artist_id, year, duration FROM b_song_records")
    con.execute("CREATE TEMP TABLE b_rejects AS SELECT 'r' AS run_id, 'event' AS kind, 'f.json' AS source_file, "
                "3::BIGINT AS line, 'bad' AS reason, '{' AS raw")
    con.execute("CREATE TEMP TABLE b_files AS SELECT 'f.json' AS path, 'log' AS kind, 10::BIGINT AS size, "
                "'2018-12-01' AS modified, 4::BIGINT AS records, 'r' AS run_id")
    return Batch(con, "run-1", [], [])


def _fake_target(empty: bool, schema: str = "public") -> tuple[PostgresTarget, FakeConnection]:
    target = PostgresTarget("postgresql://u:secret@h/db", schema=schema)
    fake = FakeConnection(empty)
    target._con = fake
    target._started = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    return target, fake


def _field(fmt: str, value) -> bytes:
    data = struct.pack(fmt, value) if fmt else value.encode()
    return struct.pack("!i", len(data)) + data


SONGPLAY_ROW = (
    struct.pack("!h", 9) + _field("!q", 7)
    + _field("!q", (1541106106796 - 946684800000) * 1000)  # microseconds since 2000-01-01 UTC
    + _field("!q", 8) + _field("", "free") + struct.pack("!i", -1) + struct.pack("!i", -1)
    + _field("!q", 139) + _field("", "Phoenix, AZ") + _field("", "Mozilla")
)
"""b_songplays' row in PostgreSQL binary COPY form, built by hand from the format's documentation."""


def test_merge_sends_exactly_this_sql():
    target, fake = _fake_target(empty=False, schema="an")
    target.write(_one_row_batch(), False, lambda result: "{}")
    log = fake.log
    statements = [s for s in log if isinstance(s, str)]
    assert statements[0] == "BEGIN"
    assert statements[1].startswith('SELECT NOT EXISTS (SELECT FROM "an"."artists") AND NOT EXISTS')
    at = statements.index('CREATE TEMP TABLE "b_songplays" ("songplay_id" bigint, "start_time" timestamptz, '
                          '"user_id" bigint, "level" text, "song_id" text, "artist_id" text, '
                          '"session_id" bigint, "location" text, "user_agent" text) ON COMMIT DROP')
    assert statements[at + 1] == (
        'COPY pg_temp."b_songplays" ("songplay_id", "start_time", "user_id", "level", "song_id", "artist_id", '
        '"session_id", "location", "user_agent") FROM STDIN (FORMAT BINARY)')
    copied = log[log.index(statements[at + 1]) + 1: log.index('ANALYZE pg_temp."b_songplays"')]
    assert b"".join(copied) == pgcopy.SIGNATURE + SONGPLAY_ROW + struct.pack("!h", -1)
    assert (
        'INSERT INTO "an"."songplays" ("songplay_id", "start_time", "user_id", "level", "song_id", "artist_id", '
        '"session_id", "location", "user_agent") SELECT "songplay_id", "start_time", "user_id", "level", '
        '"song_id", "artist_id", "session_id", "location", "user_agent" FROM pg_temp."b_songplays" '
        'ON CONFLICT ("songplay_id") DO NOTHING') in statements
    assert ('INSERT INTO "an"."time" ("start_time", "hour", "day", "week", "month", "year", "weekday") '
            'SELECT "start_time", "hour", "day", "week", "month", "year", "weekday" FROM pg_temp."b_time" '
            'ON CONFLICT ("start_time") DO NOTHING') in statements
    assert (
        'INSERT INTO "an"."users" ("user_id", "first_name", "last_name", "gender", "level") '
        'SELECT "user_id", "first_name", "last_name", "gender", "level" FROM (SELECT b.* FROM pg_temp."b_users" b '
        'LEFT JOIN "an"."_sparkify_user_latest" s ON s.user_id = b.user_id WHERE (s.user_id IS NULL OR '
        'b.ts > s.ts OR (b.ts = s.ts AND (coalesce(b.session_id, -9223372036854775808) > '
        'coalesce(s.session_id, -9223372036854775808) OR (coalesce(b.session_id, -9223372036854775808) = '
        'coalesce(s.session_id, -9223372036854775808) AND coalesce(b.item_in_session, -9223372036854775808) > '
        'coalesce(s.item_in_session, -9223372036854775808)))))) AS newer ON CONFLICT ("user_id") DO UPDATE SET '
        '"first_name" = excluded."first_name", "last_name" = excluded."last_name", "gender" = excluded."gender", '
        '"level" = excluded."level"') in statements
    assert ('SELECT reltuples FROM pg_class WHERE oid = %s::regclass', ['"an"."songplays"']) in log
    staged = [s.split('"')[1] for s in statements if s.startswith("CREATE TEMP TABLE")]
    assert staged == ["b_artists", "b_songs", "b_song_records", "b_users", "b_time", "b_songplays",
                      "b_rejects", "b_files"]
    assert log[-2] == ('INSERT INTO "an"."_sparkify_runs" (run_id, started_at, finished_at, summary) '
                       "VALUES (%s, %s, clock_timestamp(), %s)",
                       ["run-1", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "{}"])
    assert log[-1] == "COMMIT"
    assert not any(s.startswith(("DROP", "ALTER")) for s in statements)


def test_first_load_copies_straight_in_and_builds_the_keys_after():
    target, fake = _fake_target(empty=True)
    target.write(_one_row_batch(), False, lambda result: "{}")
    statements = [s for s in fake.log if isinstance(s, str)]
    copy = ('COPY "public"."songplays" ("songplay_id", "start_time", "user_id", "level", "song_id", "artist_id", '
            '"session_id", "location", "user_agent") FROM STDIN (FORMAT BINARY, FREEZE)')
    at = fake.log.index(copy)
    assert b"".join(fake.log[at + 1: at + 4]) == pgcopy.SIGNATURE + SONGPLAY_ROW + struct.pack("!h", -1)
    at = statements.index(copy)
    drops = statements.index('ALTER TABLE "public"."songplays" DROP CONSTRAINT IF EXISTS "songplays_pkey"')
    assert statements.index('ALTER TABLE "public"."songplays" DROP CONSTRAINT IF EXISTS "songplays_user_id_fkey"') \
        < statements.index('DROP INDEX IF EXISTS "public"."songplays_start_time_idx"') < drops < at
    truncate = next(i for i, s in enumerate(statements) if s.startswith("TRUNCATE "))
    assert drops < truncate < at and '"public"."songplays"' in statements[truncate], "emptied here: COPY FREEZE"
    assert '"public"."_sparkify_runs"' not in statements[truncate], "the runs' history is kept"
    builds = [
        'ALTER TABLE "public"."songplays" ADD CONSTRAINT "songplays_pkey" PRIMARY KEY ("songplay_id")',
        'CREATE INDEX IF NOT EXISTS "songplays_start_time_idx" ON "public"."songplays" ("start_time")',
        "SET LOCAL enable_hashjoin = off",
        'ALTER TABLE "public"."songplays" ADD CONSTRAINT "songplays_start_time_fkey" FOREIGN KEY ("start_time") '
        'REFERENCES "public"."time" ("start_time")',
    ]
    positions = [statements.index(s) for s in builds]
    assert at < positions[0] < positions[1] < positions[2] < positions[3]
    artist = statements.index('ALTER TABLE "public"."songplays" ADD CONSTRAINT "songplays_artist_id_fkey" '
                              'FOREIGN KEY ("artist_id") REFERENCES "public"."artists" ("artist_id")')
    assert statements[artist - 1] == "SET LOCAL enable_hashjoin TO DEFAULT", "no index on artist_id: a hash join"
    assert statements[-3:-1] == ["SET LOCAL enable_hashjoin TO DEFAULT", "SET LOCAL maintenance_work_mem TO DEFAULT"]
    assert not any(s.startswith(("CREATE TEMP", "INSERT INTO \"public\".\"songplays\"")) for s in statements)
    users = 'COPY "public"."_sparkify_user_latest" ("user_id", "ts", "session_id", "item_in_session") FROM STDIN'
    assert any(s.startswith(users) for s in statements)


# -- the COPY encoder against the server -----------------------------------------------------------

_COLUMNS = {
    "i8": (pa.int64(), st.integers(-2**63, 2**63 - 1)),
    "i4": (pa.int32(), st.integers(-2**31, 2**31 - 1)),
    "f8": (pa.float64(), st.floats(allow_nan=False)),
    "tx": (pa.string(), st.text()),
    "ts": (pa.timestamp("us", "UTC"), st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31),
                                                    timezones=st.just(dt.timezone.utc))),
}


@pytest.fixture(scope="module")
def roundtrip_con(pg_server):
    with _pg(pg_server) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE TEMP TABLE rt (n integer, i8 bigint, i4 integer, f8 double precision, tx text, "
                    "ts timestamptz)")
        yield con


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(*(st.none() | strategy for _, strategy in _COLUMNS.values())), max_size=30))
def test_binary_copy_roundtrips_every_type(roundtrip_con, rows):
    rows = [tuple(v.replace("\x00", "") if isinstance(v, str) else v for v in row) for row in rows]
    columns = [pa.array(list(range(len(rows))), pa.int32())] + [
        pa.array([row[i] for row in rows], kind) for i, (kind, _) in enumerate(_COLUMNS.values())]
    table = pa.table(columns, names=["n", *_COLUMNS])
    roundtrip_con.execute("TRUNCATE rt")
    with roundtrip_con.cursor().copy("COPY rt FROM STDIN (FORMAT BINARY)") as copy:
        for chunk in pgcopy.stream(table.to_batches(max_chunksize=7)):
            copy.write(chunk)
    assert roundtrip_con.execute("SELECT i8, i4, f8, tx, ts FROM rt ORDER BY n").fetchall() == rows


# -- the COPY pipeline: read-ahead, memory ---------------------------------------------------------

def test_ahead_yields_everything_in_order_and_raises_the_producers_error():
    assert list(pgcopy.ahead(iter(range(100)), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise ValueError("encoder broke")

    items = pgcopy.ahead(failing())
    assert next(items) == 1
    with pytest.raises(ValueError, match="encoder broke"):
        next(items)


def test_ahead_stops_reading_when_the_consumer_stops():
    read, closed = [], []

    def source():
        try:
            for i in range(1_000):
                read.append(i)
                yield i
        finally:
            closed.append(True)

    items = pgcopy.ahead(source(), depth=2)
    assert next(items) == 0
    items.close()
    assert closed == [True]
    assert len(read) <= 4  # the one consumed, two queued, one waiting to be queued


def test_a_copy_the_server_rejects_fails_cleanly_and_stops_the_encoder(pg_url):
    """The server's error reaches the caller; the thread encoding ahead ends with the COPY."""
    table = pa.table({"n": pa.array(range(200_000), pa.int64()),
                      "t": pa.array(["x"] * 199_999 + [None], pa.string())})
    with _pg(pg_url) as con:
        con.execute("CREATE TABLE c (n bigint, t text NOT NULL)")
        with pytest.raises(psycopg.errors.NotNullViolation):
            PostgresTarget._copy(con.cursor(), "COPY c FROM STDIN (FORMAT BINARY)",
                                 pa.RecordBatchReader.from_batches(table.schema, table.to_batches(10_000)))
        assert con.execute("SELECT count(*) FROM c").fetchone()[0] == 0
    assert not [t for t in threading.enumerate() if t.name == "pgcopy-encode"]


@pytest.mark.parametrize("limit, during_write", [("600MB", "256.0 MiB"), ("200MB", "190.7 MiB")])
def test_duckdb_gets_a_small_memory_limit_for_the_write_never_a_larger_one(
        pg_url, sample, monkeypatch, limit, during_write):
    target = PostgresTarget.from_url(pg_url, {"memory_limit": limit})
    seen = []
    original = PostgresTarget._bulk_load

    def bulk_load(self, cur, batch, fresh):
        seen.append(batch.con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0])
        return original(self, cur, batch, fresh)

    monkeypatch.setattr(PostgresTarget, "_bulk_load", bulk_load)
    summary = pipeline.run(target, str(sample / "song_data"), str(sample / "log_data"))
    assert seen == [during_write]
    assert summary["tables"] == STAR_COUNTS


def test_size_bytes_reads_duckdb_sizes():
    assert size_bytes("600MB") == 600_000_000
    assert size_bytes("1.5GB") == 1_500_000_000
    assert size_bytes("256MiB") == 256 << 20
    assert size_bytes("2 GiB") == 2 << 30
    assert size_bytes("4000000") == 4_000_000
    assert size_bytes("80%") is None


def test_keys_build_indexes_before_the_foreign_keys_that_can_use_them(pg_url):
    keys = PostgresTarget.from_url(pg_url, {}).keys()
    kinds = ["pkey" if k.primary else "fkey" if k.name.endswith("_fkey") else "idx" for k in keys]
    assert kinds == sorted(kinds, key=["pkey", "idx", "fkey"].index), "primary keys, indexes, then foreign keys"
    merge_checked = {k.name for k in keys if k.indexed}
    assert merge_checked == {"songplays_start_time_fkey", "songplays_user_id_fkey", "songplays_song_id_fkey"}


def test_a_first_load_leaves_every_foreign_key_validated(first_load, pg_url, sample):
    target = PostgresTarget.from_url(pg_url, {})
    pipeline.run(target, str(sample / "song_data"), str(sample / "log_data"))
    with psycopg.connect(pg_url) as con:
        fkeys = con.execute("SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' "
                            "AND connamespace = 'public'::regnamespace ORDER BY 1").fetchall()
        assert [name for name, _ in fkeys] == sorted(k.name for k in target.keys() if k.name.endswith("_fkey"))
        assert all(valid for _, valid in fkeys)
