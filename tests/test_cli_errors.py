"""Bad command-line input gets one clear error line, its documented exit code, no traceback, in bounded time.

Exit codes: 1 the run or command failed, 2 usage or configuration, 3 checks failed, 4 reject limit.

Each case runs the real command in a child process (what a user sees), and
a command that has not answered after BOUND seconds is killed and fails the
test: a hang is the worst error message of all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sparkify.schema import STAR
from tests.conftest import star_rows
from tests.faultservers import BlackHole, free_port
from tests.killharness import child_env, sparkify

BOUND = 45
"""Seconds: far above any honest error path here (the slowest, a PostgreSQL connect timeout, is 10 s)."""


def fails_clearly(args: list[object], tmp_path: Path, *words: str, code: int = 1, **env: str) -> str:
    """The command fails with exit `code` (1: it failed; 2: usage or configuration), one `error:` message
    holding every one of `words`, and no traceback."""
    result = sparkify(*args, workdir=tmp_path, env=child_env(tmp_path / "tmp", **env), timeout=BOUND)
    assert not result.timed_out, f"no answer within {BOUND} s"
    assert result.code == code and "error:" in result.stderr and "Traceback" not in result.output, \
        f"exit {result.code}: {result.output[-2000:]}"
    message = " ".join(result.stderr[result.stderr.index("error:"):].split())
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("which", ["songs", "logs"])
def test_a_missing_source(which, sample, tmp_path):
    paths = {"songs": sample / "song_data", "logs": sample / "log_data", which: tmp_path / "nowhere"}
    fails_clearly(["run", "--songs", paths["songs"], "--logs", paths["logs"], "--target", tmp_path / "t.duckdb"],
                  tmp_path, f"source not found: {tmp_path / 'nowhere'}")
    assert not (tmp_path / "t.duckdb").exists()


def test_a_memory_limit_too_small_says_what_to_change(sample, tmp_path):
    target = tmp_path / "t.duckdb"
    fails_clearly(["run", "--songs", sample / "song_data", "--logs", sample / "log_data", "--target", target,
                   "--memory-limit", "10MB"], tmp_path, "Out of Memory", "nothing was written", "--memory-limit")
    assert star_rows(str(target)) == {table.name: [] for table in STAR}


def test_a_missing_config_file(tmp_path):
    fails_clearly(["--config", tmp_path / "nope.toml", "check"], tmp_path, "config file not found", code=2)


def test_a_broken_config_file(tmp_path):
    (tmp_path / "bad.toml").write_text("target = [unclosed\n")
    fails_clearly(["--config", tmp_path / "bad.toml", "check"], tmp_path, "not valid TOML", code=2)


def test_a_missing_duckdb_target_for_reading(tmp_path):
    fails_clearly(["query", "SELECT 1", "--target", tmp_path / "absent.duckdb"], tmp_path, "does not exist")


@pytest.mark.parametrize("url, words", [
    ("postgresql://:::", ["cannot connect to PostgreSQL", "port"]),
    ("postgresql://[::1/db", ["cannot connect to PostgreSQL"]),
    ("postgresql://postgres@127.0.0.1:1/db?sslmode=bogus", ["sslmode"]),
    ("s3://", ["no bucket"]),
    ("s3:///prefix", ["no bucket"]),
])
def test_a_malformed_target_url(url, words, tmp_path):
    fails_clearly(["check", "--target", url], tmp_path, *words)


def test_a_malformed_url_does_not_echo_its_password(tmp_path):
    message = fails_clearly(["check", "--target", "postgresql://u:S3cret-pw@[::1/db"], tmp_path, "cannot connect")
    assert "S3cret-pw" not in message


@pytest.mark.parametrize("url", ["ftp://host/x", "mysql://u@h/db", "http://example.com/lake"])
def test_an_unknown_target_scheme(url, tmp_path):
    fails_clearly(["check", "--target", url], tmp_path, "unknown target", url, code=2)


def test_an_unknown_engine(sample, tmp_path):
    result = sparkify("run", "--songs", sample / "song_data", "--logs", sample / "log_data", "--engine", "pandas",
                      workdir=tmp_path, timeout=BOUND)
    assert result.code == 2 and "invalid choice" in result.stderr and "Traceback" not in result.output


def test_a_postgres_server_that_does_not_answer(sample, tmp_path):
    with BlackHole() as hole:
        fails_clearly(["run", "--songs", sample / "song_data", "--logs", sample / "log_data",
                       "--target", f"postgresql://postgres@127.0.0.1:{hole.port}/db"],
                      tmp_path, "cannot connect to PostgreSQL", "timeout")


def test_a_postgres_server_that_refuses(tmp_path):
    fails_clearly(["check", "--target", f"postgresql://postgres@127.0.0.1:{free_port()}/db"], tmp_path,
                  "cannot connect to PostgreSQL", "refused")


def test_an_s3_endpoint_that_does_not_answer(sample, tmp_path, s3_endpoint):
    """One attempt (AWS_MAX_ATTEMPTS, which the run honours): the default three only repeat the same wait."""
    with BlackHole() as hole:
        fails_clearly(["run", "--songs", sample / "song_data", "--logs", sample / "log_data",
                       "--target", "s3://bucket/lake"], tmp_path, "127.0.0.1",
                      AWS_ENDPOINT_URL=f"http://127.0.0.1:{hole.port}", AWS_MAX_ATTEMPTS="1")
