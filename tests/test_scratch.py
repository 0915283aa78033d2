"""Scratch directories: a killed run's is removed by the next run, a live run's never is."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sparkify import scratch
from sparkify.scratch import scratch_dir, sweep

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
