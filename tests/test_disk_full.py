"""A run that meets a full disk fails with one clear line, leaves the target as it was, and the next run completes.

Each trial puts the target, or the run's scratch space (TMPDIR, where a
PostgreSQL target's or a lake's DuckDB spills), on a real tmpfs mount and,
once the state the failing run starts from is there, fills the mount with
a filler file that leaves a few hundred KB: the exact free space, whatever
the mount's size. The failing run must exit 1 with an `error:` line naming
the full path and what it was writing, and no traceback; every table, the
ledger, the rejects and the runs must be as before it. Then the filler
goes and the next run must end where a run that never failed ends. The
first-load trials load a small generated dataset into the empty star: a
spill needs more than the sample under a low memory limit, and a DuckDB
file commits a load that size by writing the database file, not its WAL.
The default run tries one trial per target; `-m slow` repeats every trial
and writes the table in RELIABILITY.md.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.killharness import CLI, Result, Scenario, Targets, child_env, read_state, sparkify, stamp, write_rows

SIZE_MB = 64
SPILL_LIMIT = "150MB"
"""A memory limit under which the generated dataset's first load must spill to complete, and does.

With fewer events the load can fit in it when DuckDB finds no room to spill:
the run then completes and no disk is ever full (100,000 events did)."""
REPEATS_SLOW = 3


@dataclass(frozen=True)
class Trial:
    name: str
    kind: str
    full: str  # "target": the target's own files are on the mount; "scratch": TMPDIR is
    leave_kb: int
    words: str  # what the message must say was being written
    first_load: bool = False  # the generated dataset into the empty tables of `sparkify schema`
    memory_limit: str | None = None


TRIALS = [
    Trial("DuckDB file, second load", "duckdb", "target", 300, "the write-ahead log"),
    Trial("DuckDB file, first load", "duckdb", "target", 2000, "the database file", True),
    Trial("DuckDB file's spill, first load", "duckdb", "target", 2000, "the spill files", True, SPILL_LIMIT),
    Trial("lake, second load", "lake", "target", 300, "the run's files into Parquet lake"),
    Trial("lake scratch (spill), first load", "lake", "scratch", 64, "DuckDB's spill files", True, SPILL_LIMIT),
    Trial("PostgreSQL client spill, first load", "postgres", "scratch", 256, "DuckDB's spill files", True,
          SPILL_LIMIT),
]
DEFAULT = [TRIALS[0], TRIALS[3], TRIALS[5]]


@contextmanager
def tmpfs(path: Path, size_mb: int) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def free_bytes(path: Path) -> int:
    stat = os.statvfs(path)
    return stat.f_bavail * stat.f_frsize


def fill(mount: Path, leave_kb: int) -> Path:
    """A filler file that leaves `leave_kb` KB free on the mount."""
    filler = mount / "filler"
    with open(filler, "wb") as fh:
        os.posix_fallocate(fh.fileno(), 0, free_bytes(mount) - leave_kb * 1024)
    return filler


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """Enough events that a run at SPILL_LIMIT has to spill, few enough songs to read fast; their log bytes stay
    under the limit, so the run's tables are temporary tables (what spills), not a scratch database."""
    out = tmp_path_factory.mktemp("generated") / "data"
    result = subprocess.run([*CLI, "generate", "--out", str(out), "--events", "200k", "--songs", "500",
                             "--days", "10"], capture_output=True, text=True, env=child_env())
    assert result.returncode == 0, result.stderr
    return out


@dataclass
class Outcome:
    trial: Trial
    failed: Result
    as_before: bool
    converged: bool
    scratch_left: int
    tables: int


def attempt(trial: Trial, data: Path, targets: Targets, root: Path) -> Outcome:
    """The state the run under test starts from; a copy of it run to the end undisturbed; the run with its disk
    full; one more run with space again."""
    scenario = Scenario.build(data, root / "scenario")
    extra = ["--memory-limit", trial.memory_limit] if trial.memory_limit else []

    def run(target: str, tmp: Path) -> Result:
        return sparkify(*scenario.run_args(target), *extra, workdir=root / "work", env=child_env(tmp))

    def start(target: str, tmp: Path) -> None:
        """Bring a fresh target to the state the run under test starts from, and deliver what that run reads."""
        if trial.first_load:
            done = sparkify("schema", "--target", target, workdir=root / "work", env=child_env(tmp))
        else:
            scenario.first_half()
            done = run(target, tmp)
        assert done.code == 0, done.stderr[-3000:]
        scenario.second_half()

    with tmpfs(root / "mnt", SIZE_MB) as mount:
        on_mount = trial.full == "target"
        tmp = mount / "tmp" if not on_mount else root / "tmp"
        if trial.kind == "duckdb":
            target = str((mount if on_mount else root) / "star.duckdb")
        elif trial.kind == "lake":
            target = f"lake://{(mount if on_mount else root) / 'lake'}"
        else:
            target = targets("trial")
        start(target, tmp)
        before = read_state(target)
        expected = read_state(undisturbed(trial, target, targets, root, run, start))
        filler = fill(mount, trial.leave_kb)
        failed = run(target, tmp)
        as_before = read_state(target) == before
        filler.unlink()
        next_run = run(target, tmp)
        converged = next_run.code == 0 and read_state(target).same_data(expected)
        scratch_left = len(list(tmp.glob("sparkify-*")))
    return Outcome(trial, failed, as_before, converged, scratch_left, len(before.star))


def undisturbed(trial: Trial, target: str, targets: Targets, root: Path, run, start) -> str:
    """A target in the state `target` is in now, brought to its end by a run that meets no full disk: a copy
    of a file target, or a server's target started afresh (a first load: the same empty tables)."""
    if trial.kind == "duckdb":
        reference = str(root / "reference.duckdb")
        for suffix in ("", ".wal"):
            if os.path.exists(target + suffix):
                shutil.copy2(target + suffix, reference + suffix)
    elif trial.kind == "lake":
        reference = f"lake://{root / 'reference'}"
        shutil.copytree(target.removeprefix("lake://"), root / "reference", symlinks=True)
    else:
        reference = targets("reference")
        start(reference, root / "tmp")
    result = run(reference, root / "tmp")
    assert result.code == 0, result.stderr[-3000:]
    return reference


def check(outcome: Outcome, mount: Path) -> None:
    failed = outcome.failed
    assert failed.code == 1 and failed.clear_error, failed.stderr[-3000:]
    message = failed.stderr[failed.stderr.index("error:"):]
    assert "no space left on device" in message and str(mount) in message and outcome.trial.words in message, message
    assert outcome.as_before, "the failed run changed the target"
    assert outcome.converged, "the next run did not end where an undisturbed run ends"
    assert outcome.scratch_left == 0


def _targets(request, trial: Trial, root: Path) -> Targets:
    if trial.kind == "postgres":
        request.getfixturevalue("pg_server")
    return Targets(request, trial.kind, root / "targets")


def _data(request, trial: Trial) -> Path:
    return request.getfixturevalue("generated" if trial.first_load else "sample")


@pytest.mark.parametrize("trial", DEFAULT, ids=lambda t: t.name)
def test_a_full_disk_fails_clearly_and_leaves_the_target_as_it_was(trial, request, tmp_path):
    targets = _targets(request, trial, tmp_path)
    try:
        outcome = attempt(trial, _data(request, trial), targets, tmp_path)
    finally:
        targets.close()
    check(outcome, tmp_path / "mnt")


@pytest.mark.slow
@pytest.mark.parametrize("trial", TRIALS, ids=lambda t: t.name)
def test_full_disks_repeated(trial, request, tmp_path):
    outcomes = []
    for repeat in range(REPEATS_SLOW):
        root = tmp_path / f"r{repeat}"
        targets = _targets(request, trial, root)
        try:
            outcome = attempt(trial, _data(request, trial), targets, root)
        finally:
            targets.close()
        if trial.memory_limit and outcome.failed.code == 0:  # DuckDB kept it all in memory this time
            assert outcome.converged
        else:
            check(outcome, root / "mnt")
            outcomes.append(outcome)
    assert outcomes, "no repeat met the full disk"
    first = outcomes[0].failed
    message = first.stderr[first.stderr.index("error:"):].strip().replace(str(first_root(tmp_path, outcomes)), "…")
    where = "the target's own files" if trial.full == "target" else "TMPDIR (the run's scratch)"
    spared = REPEATS_SLOW - len(outcomes)
    row = [trial.name, f"{where} on a {SIZE_MB} MB tmpfs, {trial.leave_kb} KB left free"
           + (f"; {spared} of {REPEATS_SLOW} runs spilled nothing and completed" if spared else ""),
           " ".join(message.split()).replace("|", "/"),
           f"{sum(o.as_before for o in outcomes)}/{len(outcomes)} as before ({outcomes[0].tables} tables, ledger, "
           "rejects, runs)",
           f"{sum(o.converged for o in outcomes)}/{len(outcomes)} completed, equal to an undisturbed run",
           stamp()]
    write_rows("disk-full", ("trial", "what filled", "message", "target after", "next run", "measured"), [row])


def first_root(tmp_path: Path, outcomes: list[Outcome]) -> Path:
    """The repeat directory the first failed run's paths are under."""
    return next(root for root in sorted(tmp_path.glob("r*")) if str(root) in outcomes[0].failed.stderr)
