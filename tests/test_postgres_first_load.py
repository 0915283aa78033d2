"""The PostgreSQL target: a first load built aside (targets/postgres/aside.py), and its keys.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from sparkify import pipeline
from sparkify.targets.base import TargetError
from sparkify.targets.postgres import PostgresTarget
from sparkify.targets.postgres import aside as pgaside
from sparkify.targets.postgres import target as postgres
from tests.conftest import REPO, database, run_cli, run_json
from tests.pgutil import (
    STAR_COUNTS,
    _args,
    _aside_schemas,
    _backend,
    _keys,
    _one_row_batch,
    _pg,
    _wait_for,
    snapshot,
)

pytestmark = pytest.mark.postgres


# -- a first load built aside (targets/postgres/aside.py) ------------------------------------------------

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
    caplog.set_level("INFO", logger="sparkify.targets.postgres.aside")
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
        caplog.set_level("INFO", logger="sparkify.targets.postgres.aside")
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
    connect, opened = PostgresTarget.connect, []

    def at_most_one(self):
        opened.append(self)
        if len(opened) > 1:
            raise TargetError("too many clients already (injected)")
        return connect(self)

    monkeypatch.setattr(PostgresTarget, "connect", at_most_one)
    caplog.set_level("INFO", logger="sparkify.targets.postgres.aside")
    code, out = run_cli("run", *_args(sample, pg_url), "--json")
    monkeypatch.undo()
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1])["tables"] == STAR_COUNTS
    assert "in one transaction: no side connection: too many clients already (injected)" in caplog.text
    assert _aside_schemas(pg_url) == []


def test_a_key_that_fails_aside_fails_the_load_and_leaves_nothing(pg_url, caplog):
    caplog.set_level("DEBUG", logger="sparkify.targets.postgres.aside")
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
from sparkify.targets.postgres import aside as pgaside
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


# -- the keys of a first load ----------------------------------------------------------------------

def test_keys_build_indexes_before_the_foreign_keys_that_can_use_them(pg_url):
    keys = PostgresTarget.from_url(pg_url, {}).keys()
    kinds = ["pkey" if k.primary else "fkey" if k.name.endswith("_fkey") else "idx" for k in keys]
    assert kinds == sorted(kinds, key=["pkey", "idx", "fkey"].index), "primary keys, indexes, then foreign keys"
    merge_checked = {k.name for k in keys if k.indexed}
    assert merge_checked == {"songplays_start_time_fkey", "songplays_user_id_fkey", "songplays_song_id_fkey"}

# -- the keys of a first load ----------------------------------------------------------------------

def test_a_first_load_leaves_every_foreign_key_validated(first_load, pg_url, sample):
    target = PostgresTarget.from_url(pg_url, {})
    pipeline.run(target, str(sample / "song_data"), str(sample / "log_data"))
    with psycopg.connect(pg_url) as con:
        fkeys = con.execute("SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' "
                            "AND connamespace = 'public'::regnamespace ORDER BY 1").fetchall()
        assert [name for name, _ in fkeys] == sorted(k.name for k in target.keys() if k.name.endswith("_fkey"))
        assert all(valid for _, valid in fkeys)
