"""Run one command as a separate process and measure it: wall, CPU and peak memory of its whole tree.

Linux only (reads /proc). The tree is polled every POLL_SECONDS: the peak RSS
is the largest sum of the resident sets of the process and all its
descendants seen at once (a JVM that Spark starts counts); the peak PSS, polled
every PSS_POLL_SECONDS, is the same with proportional set sizes, which count a page shared by several
processes (forked Python workers and their parent) once, not once per process. CPU time is the
user + system time of every process of the tree that was waited for
(getrusage of children), plus the last seen CPU of any that was not.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

POLL_SECONDS = 0.05
PSS_POLL_SECONDS = 1.0
"""Reading a process's PSS walks its whole address space (tens of ms for a JVM): once a second."""
_PAGE = os.sysconf("SC_PAGE_SIZE")
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Measurement:
    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    peak_pss_mb: float
    stdout: str
    stderr: str
    timed_out: bool = False


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a live process, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE
    except OSError:
        return 0


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            for line in fh:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree(root: int) -> dict[int, float]:
    """Every live process under `root` (itself included) with its CPU seconds so far."""
    found, stack = {}, [root]
    while stack:
        pid = stack.pop()
        stat = _stat(pid)
        if stat is None or pid in found:
            continue
        found[pid] = stat[1]
        try:
            threads = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in threads:
            try:
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                    stack.extend(int(child) for child in fh.read().split())
            except OSError:
                continue
    return found


def run(argv: list[str], env: dict[str, str] | None = None, timeout: float | None = None,
        cwd: str | None = None) -> Measurement:
    """Run argv to completion (or until `timeout` s, then kill its tree) and measure it."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd, start_new_session=True)
        peak, peak_pss, next_pss, last_cpu, timed_out = 0, 0, 0.0, {}, False
        while proc.poll() is None:
            members = tree(proc.pid)
            peak = max(peak, sum(_rss(pid) for pid in members))
            if time.perf_counter() >= next_pss:  # costly for a large process: the poll would slow what it measures
                peak_pss = max(peak_pss, sum(_pss(pid) for pid in members))
                next_pss = time.perf_counter() + PSS_POLL_SECONDS
            last_cpu.update(members)
            if timeout and time.perf_counter() - started > timeout:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(POLL_SECONDS)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = (f.read().decode("utf-8", "replace") for f in (out, err))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    waited = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    orphans = sum(cpu for pid, cpu in last_cpu.items() if pid != proc.pid and _stat(pid) is not None)
    peak = max(peak, (after.ru_maxrss if after.ru_maxrss > before.ru_maxrss else 0) * 1024)
    return Measurement(proc.returncode, round(wall, 3), round(waited + orphans, 3), round(peak / 2**20, 1),
                       round(peak_pss / 2**20, 1), stdout, stderr, timed_out)
