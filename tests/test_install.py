"""A base install is really base, and runs the DuckDB default end to end.

A fresh venv gets the package with no extra, at the versions in constraints.txt (with
uv, as scripts/setup.sh installs it), from a copy of the sources (so the build never
writes into the work tree); then `sparkify run` loads the real sample into a DuckDB
file and `sparkify check` passes. The optional libraries must be absent, and asking for what needs them
must name the extra to install.

Needs PyPI (or a warm uv cache) for the wheels: CI has it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.install

OPTIONAL = ("psycopg", "pyspark", "s3fs")
"""Imported only by the extras postgres, spark and s3 (redshift adds sqlglot)."""


def _sh(*args: str | Path, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPARKIFY_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(NO_COLOR="1", COLUMNS="200", TZ="UTC")
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding sparkify with no extra, installed (not editable) from a copy of the sources."""
    root = tmp_path_factory.mktemp("install")
    src = root / "sparkify-src"
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
    shutil.copytree(REPO / "src", src / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    venv = root / "venv"
    made = _sh(sys.executable, "-m", "venv", "--without-pip", venv)
    assert made.returncode == 0, made.stderr
    uv = Path(sys.executable).parent / "uv"  # the installer of scripts/setup.sh
    install = _sh(uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", venv / "bin" / "python",
                  "-c", REPO / "constraints.txt", src)
    assert install.returncode == 0, f"the install failed:\n{install.stdout}\n{install.stderr}"
    return venv


def test_base_install_runs_the_sample_and_checks(base_venv: Path, sample: Path, tmp_path: Path) -> None:
    sparkify = base_venv / "bin" / "sparkify"
    target = tmp_path / "star.duckdb"
    run = _sh(sparkify, "run", "--songs", sample / "song_data", "--logs", sample / "log_data",
              "--target", target, "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["accounting"]["events"]["loaded"] == 6820
    assert summary["tables"]["songplays"] == 6820
    check = _sh(sparkify, "check", "--target", target, cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr
    query = _sh(sparkify, "query", "SELECT min(start_time) AS first FROM songplays", "--target", target,
                "--format", "csv", cwd=tmp_path)  # a TIMESTAMPTZ back as a Python value: DuckDB needs pytz
    assert query.returncode == 0 and query.stdout.splitlines() == ["first", "2018-11-01 21:01:46.796000+00:00"], \
        query.stdout + query.stderr


def test_base_install_has_no_optional_library(base_venv: Path) -> None:
    probe = ("import importlib.util, json; "
             f"print(json.dumps({{m: importlib.util.find_spec(m) is not None for m in {OPTIONAL!r}}}))")
    out = _sh(base_venv / "bin" / "python", "-c", probe)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {m: False for m in OPTIONAL}


@pytest.mark.parametrize(("option", "extra"), [
    (("--target", "postgresql://u@127.0.0.1:1/x"), "postgres"),
    (("--engine", "spark"), "spark"),
])
def test_a_missing_extra_is_named(base_venv: Path, sample: Path, tmp_path: Path,
                                  option: tuple[str, str], extra: str) -> None:
    """Port 1 has no server: the run must stop at the missing library, before any connection."""
    target = () if option[0] == "--target" else ("--target", tmp_path / "star.duckdb")
    run = _sh(base_venv / "bin" / "sparkify", "run", "--songs", sample / "song_data",
              "--logs", sample / "log_data", *target, *option, cwd=tmp_path)
    assert run.returncode != 0
    message = " ".join((run.stdout + run.stderr).split())  # undo the console's wrapping
    assert f"pip install 'sparkify[{extra}]'" in message, message
    assert "Traceback" not in message
