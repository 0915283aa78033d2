"""The command line: settings precedence, output formats, exit codes, clear errors."""

from __future__ import annotations

import json

import pytest

from sparkify import config
from sparkify.quality import CHECKS
from tests.conftest import run_cli, run_json


def test_command_line_wins_over_environment_over_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sparkify.toml").write_text('max_rejects = "5"\n'
                                            '[target]\nurl = "from_file.duckdb"\nschema = "analytics"\n')
    assert config.resolve({"target": None})["target"] == "from_file.duckdb"
    monkeypatch.setenv("SPARKIFY_TARGET", "from_env.duckdb")
    settings = config.resolve({"target": None})
    assert settings["target"] == "from_env.duckdb"
    assert settings["max_rejects"] == "5"
    assert settings["target_options"]["schema"] == "analytics"
    assert config.resolve({"target": "cli.duckdb"})["target"] == "cli.duckdb"


def test_sources_from_the_config_file(tmp_path, monkeypatch, sample):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sparkify.toml").write_text(
        f'songs = "{sample / "song_data"}"\nlogs = "{sample / "log_data"}"\ntarget = "cfg.duckdb"\n')
    code, out = run_cli("run", "--json")
    assert code == 0
    assert json.loads(out.splitlines()[-1])["tables"]["songplays"] == 6820
    assert (tmp_path / "cfg.duckdb").exists()


def test_json_summary_is_the_last_stdout_line(tmp_path, sample):
    summary = run_json("--songs", sample / "song_data", "--logs", sample / "log_data",
                       "--target", tmp_path / "t.duckdb")
    assert set(summary) >= {"tables", "accounting", "timings", "files", "run_id"}
    assert summary["timings"]["total"] > 0


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_query_formats(tmp_path, sample, fmt):
    target = tmp_path / "t.duckdb"
    run_json("--songs", sample / "song_data", "--logs", sample / "log_data", "--target", target)
    code, out = run_cli("query", "SELECT level, count(*) AS plays FROM songplays GROUP BY level ORDER BY level",
                        "--target", target, "--format", fmt)
    assert code == 0
    if fmt == "csv":
        assert out.splitlines()[0] == "level,plays"
        assert len(out.splitlines()) == 3
    elif fmt == "json":
        rows = [json.loads(line) for line in out.splitlines()]
        assert [r["level"] for r in rows] == ["free", "paid"]
        assert sum(r["plays"] for r in rows) == 6820
    else:
        assert "free" in out and "paid" in out


@pytest.mark.parametrize("args, message", [
    (["run", "--songs", "/nonexistent/songs", "--logs", "/nonexistent/logs"], "source not found: /nonexistent/songs"),
    (["run", "--logs", "x"], "--songs is required"),
    (["run", "--songs", ".", "--logs", ".", "--max-rejects", "lots"], "--max-rejects takes a number"),
    (["query", "SELECT 1", "--target", "/nonexistent/x.duckdb"], "does not exist"),
    (["check", "--target", "ftp://host/x"], "unknown target"),
])
def test_bad_input_gives_one_clear_error(args, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _ = run_cli(*args)
    assert code == 2
    assert message in capsys.readouterr().err.replace("\n", " ")


def test_check_fails_on_a_broken_table(tmp_path, sample, capsys):
    import duckdb

    target = tmp_path / "t.duckdb"
    run_json("--songs", sample / "song_data", "--logs", sample / "log_data", "--target", target)
    con = duckdb.connect(str(target))
    con.execute("UPDATE users SET level = 'gold' WHERE user_id = 15")
    con.close()
    code, out = run_cli("check", "--target", target)
    assert code == 1
    assert "users: level is free or paid" in out
    assert f"1 of {len(CHECKS)} checks failed" in capsys.readouterr().err
