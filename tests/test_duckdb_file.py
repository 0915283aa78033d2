"""The embedded DuckDB file: keys only on the tables the merge upserts or reads by key, proved by every run.

The fact-sized tables (songplays, time) carry no index; each run proves their
keys, and every reference its rows make, before it commits (targets/duckdb/
target.py: verify). These tests pin the declared keys and show that a run
which would break a key is refused whole.
"""

from __future__ import annotations

import duckdb
import pytest

from sparkify.schema import STAR
from sparkify.targets import sqlmerge
from tests.conftest import run_cli, run_json, star_rows


def _args(data, target: str) -> tuple:
    return ("--songs", data / "song_data", "--logs", data / "log_data", "--target", target)


def test_keys_are_declared_on_the_dimensions_only(sample, tmp_path):
    target = str(tmp_path / "star.duckdb")
    run_json(*_args(sample, target))
    con = duckdb.connect(target, read_only=True)
    try:
        declared = con.execute("""
            SELECT table_name, constraint_type FROM duckdb_constraints()
            WHERE constraint_type IN ('PRIMARY KEY', 'FOREIGN KEY', 'UNIQUE')""").fetchall()
    finally:
        con.close()
    star = {t.name for t in STAR}
    assert sorted((t, c) for t, c in declared if t in star) == [
        ("artists", "PRIMARY KEY"), ("songs", "PRIMARY KEY"), ("users", "PRIMARY KEY")]
    assert not [t for t, c in declared if c == "FOREIGN KEY"]


def _merge_without_anti_join(monkeypatch, table: str) -> None:
    """Make the merge append `table`'s batch rows even where their key is stored: what a key would refuse."""
    original = sqlmerge.SqlMerge.statements

    def appending(self):
        statements = original(self)
        return [(p, f"INSERT INTO {self.t(next(t for t in STAR if t.name == table))} SELECT * FROM b_{table}")
                if p == table else (p, s) for p, s in statements]

    monkeypatch.setattr(sqlmerge.SqlMerge, "statements", appending)


@pytest.mark.parametrize("table", ["songplays", "time"])
def test_a_run_that_would_duplicate_an_unkeyed_key_writes_nothing(sample, tmp_path, monkeypatch, table):
    target = str(tmp_path / "star.duckdb")
    run_json(*_args(sample, target))
    before = star_rows(target)
    con = duckdb.connect(target)
    con.execute("DELETE FROM _sparkify_files")  # every file looks new: the batch repeats every stored key
    con.close()
    _merge_without_anti_join(monkeypatch, table)
    code, _ = run_cli("run", *_args(sample, target))
    assert code != 0
    monkeypatch.undo()
    assert star_rows(target) == before


def test_a_run_whose_plays_refer_to_a_missing_user_writes_nothing(sample_copy, tmp_path, monkeypatch):
    target = str(tmp_path / "star.duckdb")
    original = sqlmerge.SqlMerge.statements

    def without_users(self):
        return [(p, s) for p, s in original(self) if p != "users"]

    monkeypatch.setattr(sqlmerge.SqlMerge, "statements", without_users)
    code, _ = run_cli("run", *_args(sample_copy, target))
    assert code != 0
    monkeypatch.undo()
    con = duckdb.connect(target, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM songplays").fetchone()[0] == 0
    finally:
        con.close()
    assert run_json(*_args(sample_copy, target))["tables"]["songplays"] == 6820


def test_a_process_holding_the_file_is_named_and_not_taken_for_a_run(sample, tmp_path):
    """A notebook (any process with the file open) is told apart from another sparkify run, with its PID."""
    import subprocess
    import sys

    target = str(tmp_path / "star.duckdb")
    run_json(*_args(sample, target))
    holder = subprocess.Popen([sys.executable, "-c", f"import duckdb, sys; c = duckdb.connect({target!r}); "
                               "print('open', flush=True); sys.stdin.readline()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        args = map(str, _args(sample, target + "?lock_timeout=1"))
        done = subprocess.run([sys.executable, "-m", "sparkify.cli", "run", *args],
                              capture_output=True, text=True, timeout=120)
    finally:
        holder.communicate("\n", timeout=30)
    assert done.returncode != 0
    message = " ".join(done.stderr.split())
    assert f"PID {holder.pid}" in message and "another sparkify run" not in message, message


def test_a_run_into_the_file_never_loads_pyarrow_or_pandas(sample, tmp_path):
    """Arrow is for the targets outside DuckDB and for Spark: on the default path its import (and pandas,
    which pyarrow imports when it first builds an array from Python values) would be a large share of a
    small run's peak memory. A fresh interpreter runs the command line, with rejects to store."""
    import subprocess
    import sys

    data = tmp_path / "data"
    (data / "log_data").mkdir(parents=True)
    (data / "log_data" / "day.json").write_text('{"ts": "soon"}\nnot json\n')
    probe = ("import sys\nfrom sparkify import cli\ntry:\n    cli.main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('pyarrow', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe, "run", *_args(sample, str(tmp_path / "s.duckdb"))[:2],
                          "--logs", str(data / "log_data"), "--target", str(tmp_path / "s.duckdb"), "--json"],
                         capture_output=True, text=True, timeout=300)
    lines = out.stdout.strip().splitlines()
    assert '"rejected": 2' in lines[-2], out.stdout + out.stderr
    assert lines[-1] == "[]", out.stdout


def test_song_files_read_a_few_at_a_time_give_the_same_star(sample, tmp_path, monkeypatch):
    """The engine reads the song files in slices (SONG_FILES_PER_READ) to bound read_blob's memory."""
    from sparkify.engines import duckdb as engine

    whole = run_json(*_args(sample, str(tmp_path / "whole.duckdb")))
    monkeypatch.setattr(engine, "SONG_FILES_PER_READ", 7)
    sliced = run_json(*_args(sample, str(tmp_path / "sliced.duckdb")))
    assert sliced["accounting"] == whole["accounting"] and sliced["tables"]["songs"] == 71
    assert star_rows(str(tmp_path / "sliced.duckdb")) == star_rows(str(tmp_path / "whole.duckdb"))
