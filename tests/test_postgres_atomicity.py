"""The PostgreSQL target: its transaction under failure and kill, and its lock.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import psycopg
import pytest

from sparkify.targets.base import TargetError
from sparkify.targets.postgres import PostgresTarget
from tests.conftest import REPO, run_cli, run_json
from tests.pgutil import (
    STAR_COUNTS,
    _args,
    _aside_schemas,
    _backend,
    _keys,
    _move_back,
    _move_days,
    _pg,
    _wait_for,
    snapshot,
)

pytestmark = pytest.mark.postgres


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
        blocker.execute("LOCK TABLE songplays IN SHARE MODE")  # the run's first write to songplays waits here
        run = _cli("--config", config, "run", *_args(sample_copy, pg_url))
        pid = _wait_for(lambda: _backend(pg_url, 'UPDATE "public"."songplays"'), "the merge to block")
        run.send_signal(signal.SIGKILL)
        run.wait()
        blocker.execute("ROLLBACK")
    _wait_for(lambda: not _backend(pg_url, 'UPDATE "public"."songplays"', waiting=False),
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
