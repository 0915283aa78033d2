"""The command line: settings precedence, output formats, exit codes, clear errors."""

from __future__ import annotations

import argparse
import io
import json
import re

import pytest
from rich.console import Console

import sparkify as sparkify_package
from sparkify import cli, config, objectstore
from sparkify.progress import Progress
from sparkify.quality import CHECKS
from tests.conftest import REPO, run_cli, run_json
from tests.killharness import child_env, sparkify


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


@pytest.mark.parametrize("args, message, exit_code", [
    (["run", "--songs", "/nonexistent/songs", "--logs", "/nonexistent/logs"], "source not found: /nonexistent/songs",
     1),
    (["run", "--logs", "x"], "--songs is required", 2),
    (["run", "--songs", ".", "--logs", ".", "--max-rejects", "lots"], "--max-rejects takes a number", 2),
    (["query", "SELECT 1", "--target", "/nonexistent/x.duckdb"], "does not exist", 1),
    (["check", "--target", "ftp://host/x"], "unknown target", 2),
])
def test_bad_input_gives_one_clear_error(args, message, exit_code, capsys, tmp_path, monkeypatch):
    """Usage and configuration errors exit 2; a run or command that fails on its data or target exits 1."""
    monkeypatch.chdir(tmp_path)
    code, _ = run_cli(*args)
    assert code == exit_code
    assert message in capsys.readouterr().err.replace("\n", " ")


def test_check_fails_on_a_broken_table(tmp_path, sample, capsys):
    import duckdb

    target = tmp_path / "t.duckdb"
    run_json("--songs", sample / "song_data", "--logs", sample / "log_data", "--target", target)
    con = duckdb.connect(str(target))
    con.execute("UPDATE users SET level = 'gold' WHERE user_id = 15")
    con.close()
    code, out = run_cli("check", "--target", target)
    assert code == 3  # checks failed
    assert "users: level is free or paid" in out
    assert f"1 of {len(CHECKS)} checks failed" in capsys.readouterr().err


# -- the command line's own defects (issue 17) ---------------------------------------------


def stderr_of(capsys) -> str:
    return " ".join(capsys.readouterr().err.split())


def test_version():
    code, out = run_cli("--version")
    assert code == 0 and out.strip() == f"sparkify {sparkify_package.__version__}"


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_before_or_after_the_command(where, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "other.toml").write_text('target = "from_config.duckdb"\n')
    options = ["--config", str(tmp_path / "other.toml"), "-v"]
    args = [*options, "schema"] if where == "before" else ["schema", *options]
    code, _ = run_cli(*args)
    assert code == 0, stderr_of(capsys)
    assert (tmp_path / "from_config.duckdb").exists() and not (tmp_path / "sparkify.duckdb").exists()


@pytest.mark.parametrize("toml, words", [
    ('max_reject = "1%"\n', ["unknown key 'max_reject'", "did you mean max_rejects?"]),
    ('[spakr]\nmaster = "local[1]"\n', ["unknown table 'spakr'", "did you mean spark?"]),
    ('[s3]\nregin = "us-west-2"\n', ["unknown key 's3.regin'", "did you mean s3.region?"]),
])
def test_unknown_config_keys_are_refused_with_the_nearest_name(toml, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sparkify.toml").write_text(toml)
    code, _ = run_cli("run", "--songs", tmp_path, "--logs", tmp_path)
    message = stderr_of(capsys)
    assert code == 2 and "sparkify.toml" in message, message
    for word in words:
        assert word in message
    assert not (tmp_path / "sparkify.duckdb").exists()


def test_unknown_environment_names_are_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SPARKIFY_MAX_REJECT", "1%")
    code, _ = run_cli("run", "--songs", tmp_path, "--logs", tmp_path)
    message = stderr_of(capsys)
    assert code == 2 and "SPARKIFY_MAX_REJECT" in message and "did you mean SPARKIFY_MAX_REJECTS?" in message


def test_every_sparkify_variable_the_project_reads_is_known():
    """Each SPARKIFY_* name in the code, scripts, tests and bench passes the check (a prefix like
    SPARKIFY_S3_ stands for a family). The tests that plant misspelled names are left out."""
    names = set()
    planted = {"test_cli.py", "test_api.py"}
    for folder in ("src", "scripts", "tests", "bench", "deploy", "examples"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix in (".py", ".sh", ".yml", ".yaml", ".md", "") and path.is_file() \
                    and path.name not in planted:
                names.update(re.findall(r"SPARKIFY_[A-Z0-9_]*[A-Z0-9]", path.read_text(errors="replace")))
    assert "SPARKIFY_TEST_PG_URL" in names and "SPARKIFY_S3_ENDPOINT_URL" in names
    families = {n for n in names if any(m.startswith(n + "_") for m in names)}  # SPARKIFY_S3 of SPARKIFY_S3_*
    config.check_env({name: "x" for name in names - families})


def test_s3_keys_are_the_object_stores():
    assert set(config.S3_SETTINGS) == set(objectstore.SETTINGS)


def test_duckdb_scheme_and_a_bare_duckdb_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_cli("schema", "--target", "duckdb://explicit.db")[0] == 0
    assert (tmp_path / "explicit.db").is_file()
    assert run_cli("schema", "--target", "bare.duckdb")[0] == 0
    assert (tmp_path / "bare.duckdb").is_file()


def test_a_bare_path_that_is_no_lake_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _ = run_cli("schema", "--target", "warehouse.db")
    message = stderr_of(capsys)
    assert code == 2 and "lake://warehouse.db" in message and "duckdb://warehouse.db" in message
    assert not (tmp_path / "warehouse.db").exists()


@pytest.mark.parametrize("scheme", ["lake://", "file://"])
def test_a_lake_by_scheme_then_by_its_bare_path(scheme, tmp_path, sample):
    lake = tmp_path / "lake"
    run_json("--songs", sample / "song_data", "--logs", sample / "log_data", "--target", f"{scheme}{lake}")
    assert (lake / "_versions").is_dir()
    code, out = run_cli("query", "SELECT count(*) AS n FROM songplays", "--target", lake, "--format", "csv")
    assert code == 0 and out.splitlines() == ["n", "6820"]


@pytest.mark.parametrize("option, value, words", [
    ("--max-rejects", "-5", ["--max-rejects", "0 or more", "'-5'"]),
    ("--max-rejects", "150%", ["--max-rejects", "0% to 100%", "'150%'"]),
    ("--max-rejects", "abc", ["--max-rejects takes a number or a percentage", "'abc'"]),
    ("--memory-limit", "lots", ["--memory-limit takes a size", "600MB", "'lots'"]),
    ("--memory-limit", "600", ["--memory-limit takes a size", "'600'"]),
])
def test_values_are_checked_before_any_work(option, value, words, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _ = run_cli("run", "--songs", "/nonexistent/songs", "--logs", "/nonexistent/logs", option, value)
    message = stderr_of(capsys)
    assert code == 2, message
    assert "source not found" not in message  # refused before the sources are listed
    for word in words:
        assert word in message
    assert not (tmp_path / "sparkify.duckdb").exists()


@pytest.mark.parametrize("size", ["600MB", "1.5GiB", "80%", "2 GB", "512kib"])
def test_memory_sizes_are_accepted_and_duckdb_takes_them(size):
    import duckdb

    assert config.memory_limit(size) == size
    duckdb.connect().execute("SET memory_limit = ?", [size])


@pytest.mark.parametrize("limit", ["0", "10", "0%", "2.5%", "100%"])
def test_reject_limits_within_range_are_accepted(limit):
    assert config.max_rejects(limit) == limit


def test_an_empty_run_warns_and_fails_with_fail_on_empty(tmp_path, capsys, caplog):
    (tmp_path / "songs").mkdir()
    (tmp_path / "logs").mkdir()
    args = ["run", "--songs", tmp_path / "songs", "--logs", tmp_path / "logs", "--target", tmp_path / "t.duckdb"]
    code, _ = run_cli(*args)
    assert code == 0  # the warning goes through the sparkify logger (stderr outside pytest)
    assert any(r.levelname == "WARNING" and "loaded no record: the sources hold no files" in r.getMessage()
               for r in caplog.records)
    code, out = run_cli(*args, "--fail-on-empty", "--json")
    message = stderr_of(capsys)
    assert code == 1 and "error:" in message and "loaded no record" in message
    assert json.loads(out.splitlines()[-1])["tables"]["songplays"] == 0  # the summary is still printed


def test_a_run_that_rejects_every_record_warns(tmp_path, capsys):
    (tmp_path / "songs").mkdir()
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "bad.json").write_text('not json\n{"broken\n')
    args = ["run", "--songs", tmp_path / "songs", "--logs", tmp_path / "logs", "--target", tmp_path / "t.duckdb"]
    code, _ = run_cli(*args, "--fail-on-empty")
    assert code == 1 and "every record read was filtered, a duplicate or rejected" in stderr_of(capsys)
    code, _ = run_cli(*args, "--fail-on-empty")  # nothing new: not an empty run, just nothing to do
    assert code == 0 and "loaded no record" not in stderr_of(capsys)


def test_the_empty_run_warning_reaches_stderr(tmp_path):
    (tmp_path / "songs").mkdir()
    (tmp_path / "logs").mkdir()
    result = sparkify("run", "--songs", tmp_path / "songs", "--logs", tmp_path / "logs", "--target",
                      tmp_path / "t.duckdb", workdir=tmp_path, env=child_env(tmp_path / "tmp"), timeout=120)
    assert result.code == 0 and "WARNING" in result.stderr
    assert "loaded no record: the sources hold no files" in " ".join(result.stderr.split())


def test_exit_codes_are_in_the_help():
    code, out = run_cli("--help")
    text = " ".join(out.split())
    assert code == 0
    for line in ("0 success", "1 the run or command failed", "2 usage or configuration error",
                 "3 data-quality checks failed", "4 reject limit exceeded"):
        assert line in text


def test_every_option_has_help():
    parser = cli._parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name in ("run", "check", "query", "schema"):
        for action in commands[name]._actions:
            assert action.help, f"sparkify {name} {'/'.join(action.option_strings) or action.dest} has no help"
    fmt = next(a for a in commands["query"]._actions if a.dest == "format")
    assert "JSON Lines" in fmt.help and "one object per row" in fmt.help


def test_unknown_query_name_says_the_nearest(tmp_path, capsys):
    code, _ = run_cli("query", "top_sngs", "--target", tmp_path / "t.duckdb")
    assert code == 2
    assert "unknown query 'top_sngs', did you mean top_songs?" in stderr_of(capsys)


def test_query_table_is_never_cut_when_piped(tmp_path):
    target = tmp_path / "t.duckdb"
    assert run_cli("schema", "--target", target)[0] == 0
    code, out = run_cli("query", "SELECT repeat('x', 300) AS wide, 'end' AS last_column", "--target", target)
    assert code == 0
    assert "x" * 300 in out and "last_column" in out and "end" in out


def test_progress_lines_have_no_source_location():
    buffer = io.StringIO()
    progress = Progress(Console(file=buffer, width=120))
    with progress.stage("list"):
        pass
    line = buffer.getvalue().strip()
    assert re.fullmatch(r"\d\d:\d\d:\d\d list: \d+\.\d\d s", line), line


@pytest.mark.parametrize("width", [80, 120])
def test_the_summary_title_keeps_the_run_id_whole(width, monkeypatch):
    buffer = io.StringIO()
    monkeypatch.setattr(cli, "err_console", Console(file=buffer, width=width))
    run_id = "20261207T051603Z-3f9a1c2e"
    cli._print_summary({
        "run_id": run_id, "target": "DuckDB file /a/rather/long/path/to/somewhere/deep/in/the/tree/sparkify.duckdb",
        "engine": "duckdb", "files": {"songs": {"new": 1, "skipped": 0}, "logs": {"new": 1, "skipped": 0}},
        "accounting": {"songs": {"read": 1, "loaded": 1}, "events": {"read": 1, "loaded": 1}},
        "tables": {"songplays": 1}, "timings": {"total": 1.0}})
    assert any(f"sparkify run {run_id}" in line for line in buffer.getvalue().splitlines())
