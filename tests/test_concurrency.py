"""Two runs against one target never interleave: the second waits, or stops with a clear message.

Run A (the first half of the log days) is started and frozen with SIGSTOP
as soon as it holds the target's lock (seen from outside: /proc/locks for
the DuckDB file and the lake's lock file, pg_locks for PostgreSQL, the lock
object on S3), so run B (the second half) is sure to meet it. B must wait
and then load only what A left to do (A's ledger shows through: B skips
every song file A loaded), or, with a short lock timeout, stop with a clear
message having written nothing. The result is compared with A then B run
one after the other.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import TARGET_KINDS
from tests.killharness import Child, Targets, child_env, read_state, sparkify

SONG_FILES = 71


@pytest.fixture()
def halves(sample: Path, tmp_path: Path) -> dict[str, Path]:
    """The songs, and the log days split into two folders: what run A and run B load."""
    days = sorted((sample / "log_data").rglob("*.json"))
    out = {"songs": tmp_path / "data" / "song_data"}
    shutil.copytree(sample / "song_data", out["songs"])
    for name, part in (("a", days[: len(days) // 2]), ("b", days[len(days) // 2:])):
        out[name] = tmp_path / "data" / f"logs_{name}"
        out[name].mkdir(parents=True)
        for day in part:
            shutil.copy2(day, out[name] / day.name)
    return out


@pytest.fixture()
def make_target(request, tmp_path: Path) -> Iterator[Targets]:
    targets = Targets(request, request.node.callspec.params["kind"], tmp_path / "targets")
    yield targets
    targets.close()


def _posix_or_flock_held(path: str, pid: int) -> bool:
    """/proc/locks shows a lock granted to `pid` on the file at `path` (no probing lock of our own)."""
    try:
        inode = os.stat(path).st_ino
    except FileNotFoundError:
        return False
    with open("/proc/locks", encoding="ascii") as fh:
        for line in fh:
            fields = line.split()
            if "->" not in fields and len(fields) >= 6 and fields[4] == str(pid) \
                    and fields[5].endswith(f":{inode}"):
                return True
    return False


def lock_probe(kind: str, target: str) -> Callable[[Child], bool]:
    """How to see, from outside, that a run holds the target's lock."""
    if kind.startswith("duckdb"):
        return lambda child: _posix_or_flock_held(target.partition("?")[0] + ".lock", child.pid)
    if kind == "lake":
        return lambda child: _posix_or_flock_held(os.path.join(target.removeprefix("lake://"), "_lock"), child.pid)
    if kind == "postgres":
        import psycopg

        def held(child: Child) -> bool:
            with psycopg.connect(target, autocommit=True) as con:
                return con.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                                   "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                                   ).fetchone()[0] > 0
        return held
    import boto3

    bucket, _, prefix = target.removeprefix("s3://").partition("/")
    s3 = boto3.client("s3")

    def exists(child: Child) -> bool:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix.split('?')[0]}/_sparkify/lock")
        return listed.get("KeyCount", 0) > 0
    return exists


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def run_args(songs: Path, logs: Path, target: str | None) -> list[str]:
    return ["run", "--songs", str(songs), "--logs", str(logs), *(["--target", target] if target else []), "--json"]


def sequential(halves: dict[str, Path], target: str, workdir: Path, parts: str = "ab"):
    """The reference: the given halves loaded one after the other, undisturbed."""
    for part in parts:
        result = sparkify(*run_args(halves["songs"], halves[part], target), workdir=workdir)
        assert result.code == 0, result.stderr[-2000:]
    return read_state(target)


def frozen_holder(kind: str, target: str, halves: dict[str, Path], workdir: Path) -> Child:
    """Run A, stopped (SIGSTOP) while it holds the target's lock."""
    holder = Child(run_args(halves["songs"], halves["a"], target), workdir / "a", child_env(workdir / "tmp"))
    held = lock_probe(kind, target)
    wait_for(lambda: not holder.running() or held(holder), "run A to take the lock")
    assert holder.running(), "run A finished before it could be seen holding the lock"
    holder.signal(signal.SIGSTOP)
    return holder


def summary(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("kind", TARGET_KINDS)
def test_the_second_run_waits_for_the_first(kind, halves, make_target, tmp_path):
    expected = sequential(halves, make_target("reference"), tmp_path / "ref")
    target = make_target("shared")
    first = frozen_holder(kind, target, halves, tmp_path)
    second = Child(run_args(halves["songs"], halves["b"], target), tmp_path / "b", child_env(tmp_path / "tmp"))
    try:
        wait_for(lambda: "waiting" in second.stderr_so_far() or not second.running(), "run B to wait")
    finally:
        first.signal(signal.SIGCONT)
    a, b = first.wait(), second.wait()
    assert a.code == 0 and b.code == 0, a.stderr[-2000:] + b.stderr[-2000:]
    assert "waiting" in b.stderr, b.stderr[-2000:]
    files = summary(b.stdout)["files"]
    assert files["songs"] == {"new": 0, "skipped": SONG_FILES}, "run B read the ledger before run A committed"
    assert files["logs"]["new"] == len(list(halves["b"].iterdir()))
    state = read_state(target)
    assert state.same_data(expected) and state.runs == 2


@pytest.mark.parametrize("kind", TARGET_KINDS)
def test_a_second_run_that_cannot_wait_stops_with_a_clear_message(kind, halves, make_target, tmp_path):
    expected = sequential(halves, make_target("reference"), tmp_path / "ref", parts="a")
    target = make_target("shared")
    config = tmp_path / "impatient.toml"
    config.write_text(f"[target]\nurl = {json.dumps(target)}\nlock_timeout = 2\n")
    first = frozen_holder(kind, target, halves, tmp_path)
    try:
        second = sparkify("--config", config, *run_args(halves["songs"], halves["b"], None),
                          workdir=tmp_path / "b", env=child_env(tmp_path / "tmp"), timeout=120)
    finally:
        first.signal(signal.SIGCONT)
    a = first.wait()
    assert a.code == 0, a.stderr[-2000:]
    assert second.clear_error, second.output[-2000:]
    message = second.stderr[second.stderr.index("error:"):]
    assert "another" in message and ("gave up" in message or "still being loaded" in message), message
    state = read_state(target)
    assert state.same_data(expected) and state.runs == 1


def test_a_holder_whose_s3_lease_ran_out_never_overwrites_the_run_that_took_over(halves, s3_bucket, tmp_path):
    """A run frozen past its lease loses the lock; the waiter takes over; the frozen one must not publish."""
    expected = sequential(halves, f"s3://{s3_bucket}/reference", tmp_path / "ref", parts="b")
    target = f"s3://{s3_bucket}/shared?lock_lease=3"
    first = frozen_holder("s3lake", target, halves, tmp_path)
    second = Child(run_args(halves["songs"], halves["b"], target), tmp_path / "b", child_env(tmp_path / "tmp"))
    try:
        b = second.wait(timeout=300)
    finally:
        first.signal(signal.SIGCONT)
    a = first.wait()
    assert b.code == 0 and "took over a lock" in b.stderr, b.stderr[-2000:]
    assert a.clear_error and "nothing was published" in a.stderr, a.output[-2000:]
    state = read_state(target)
    assert state.same_data(expected) and state.runs == 1
