"""The PostgreSQL target against a real PostgreSQL 15 server (scripts/services.sh): the load paths.

Differential: the same input gives the same tables, row for row, in
PostgreSQL as in the embedded DuckDB target, after a full load, an
increment and a rerun; then its schema option and the commands.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from sparkify.targets import open_target
from sparkify.targets.base import TargetError
from tests.conftest import balanced, run_cli, run_json
from tests.pgutil import (
    STAR_COUNTS,
    _args,
    _aside_schemas,
    _keys,
    _move_back,
    _move_days,
    _pg,
    snapshot,
)

pytestmark = pytest.mark.postgres


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
