"""Scratch directories: a killed run's is removed by the next run, a live run's never is; and the DuckDB
engine's scratch database, which holds a run's tables when they would not fit in memory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sparkify import scratch
from sparkify.scratch import scratch_dir, sweep
from tests.conftest import new_target, run_json, star_rows
from tests.test_contract import (  # noqa: F401 (fixtures)
    Cell,
    _move_back,
    _rejects,
    _split_days,
    corrupted,
    duckdb_on_corrupted,
    reference_rejects,
    rerun_refresh_check,
    star_rows_expected,
)

HOLD = """
import os, signal, sys
from sparkify.scratch import scratch_dir
with scratch_dir("test", sys.argv[1]) as path:
    print(path, flush=True)
    sys.stdin.readline()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _holder(parent: Path) -> tuple[subprocess.Popen, Path]:
    """A process in a scratch directory that SIGKILLs itself when told to."""
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(parent)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    return child, Path(child.stdout.readline().strip())


def test_a_killed_runs_scratch_is_swept_and_a_live_ones_is_not(tmp_path):
    live, live_dir = _holder(tmp_path)
    dead, dead_dir = _holder(tmp_path)
    (dead_dir / "spill.tmp").write_bytes(b"x" * 1000)
    dead.communicate("go\n")
    assert dead.returncode == -signal.SIGKILL and dead_dir.exists(), "SIGKILL leaves the directory"
    foreign = tmp_path / "sparkify-not-ours"
    foreign.mkdir()
    assert sweep(tmp_path) == 1
    assert not dead_dir.exists() and live_dir.exists() and foreign.exists()
    live.communicate("go\n")
    with scratch_dir("next", tmp_path) as path:
        assert os.path.isdir(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sparkify-not-ours"]


def test_scratch_is_removed_on_exit_and_on_error(tmp_path):
    try:
        with scratch_dir("err", tmp_path) as path:
            Path(path, "file").write_text("data")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []


def test_the_owner_file_goes_last_so_a_kill_mid_removal_leaves_a_sweepable_directory(tmp_path, monkeypatch):
    with scratch_dir("order", tmp_path) as path:
        Path(path, "spill-1.tmp").write_bytes(b"x" * 1000)
        Path(path, "spill-2.tmp").write_bytes(b"x" * 1000)
        Path(path, "sub").mkdir()
        Path(path, "sub", "f").write_text("y")
        unlink, rmtree, gone = Path.unlink, scratch.shutil.rmtree, []

        def recording_unlink(self, missing_ok=False):
            gone.append(self.name)
            unlink(self, missing_ok=missing_ok)

        def recording_rmtree(target, *args, **kwargs):
            gone.append(Path(target).name)
            rmtree(target, *args, **kwargs)

        monkeypatch.setattr(Path, "unlink", recording_unlink)
        monkeypatch.setattr(scratch.shutil, "rmtree", recording_rmtree)
    monkeypatch.undo()
    assert sorted(gone[:-1]) == ["spill-1.tmp", "spill-2.tmp", "sub"] and gone[-1] == scratch.OWNER
    assert list(tmp_path.iterdir()) == []


# -- the DuckDB engine's scratch database ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["duckdb", "lake"])
def test_a_run_larger_than_memory_keeps_its_tables_in_a_scratch_database_and_lands_the_same_star(
        kind, sample, corrupted, duckdb_on_corrupted, reference_rejects, tmp_path, monkeypatch,  # noqa: F811
        request):
    """With every run past the threshold, the corrupted sample (rejects, the line-by-line reread), a rerun,
    a full refresh and the check end as the reference cell does (its good lines are the sample's); the file
    goes when the run ends, and a file a killed run left in its place is replaced."""
    from sparkify.engines import duckdb as engine

    monkeypatch.setattr(engine, "SCRATCH_ABOVE", 0)
    used: list[str] = []
    remove = engine._remove_database
    monkeypatch.setattr(engine, "_remove_database", lambda path: (used.append(path), remove(path)))
    target = new_target(kind, request, tmp_path)
    left = Path(f"{target}.tmp") / engine.SCRATCH_FILE
    if kind == "duckdb":
        left.parent.mkdir()
        left.write_bytes(b"what a killed run left")
    rerun_refresh_check(Cell("duckdb", target), corrupted, duckdb_on_corrupted[0], star_rows_expected(sample))
    assert _rejects(target) == reference_rejects
    assert len(used) == 4 and {Path(p).name for p in used} == {engine.SCRATCH_FILE}, "the first run and the refresh"
    assert not any(Path(p).exists() for p in used)
    if kind == "duckdb":
        assert used[0] == str(left) and not left.parent.exists()


def test_an_increment_through_the_scratch_database_equals_one_run(sample_copy, tmp_path, monkeypatch):
    """The second run's plays are matched against the catalogue already in the file, from the scratch."""
    from sparkify.engines import duckdb as engine

    monkeypatch.setattr(engine, "SCRATCH_ABOVE", 0)
    later = tmp_path / "later"
    _split_days(sample_copy, later)
    target = str(tmp_path / "star.duckdb")
    run_json("--songs", sample_copy / "song_data", "--logs", sample_copy / "log_data", "--target", target)
    _move_back(later, sample_copy)
    second = run_json("--songs", sample_copy / "song_data", "--logs", sample_copy / "log_data", "--target", target)
    assert second["files"]["logs"] == {"new": 15, "skipped": 15}
    assert star_rows(target) == star_rows_expected(sample_copy)
