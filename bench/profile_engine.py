"""Where a DuckDB run's time goes: every SQL statement of one `sparkify run`, timed.

    python -m bench.profile_engine DATASET_DIR [--target FILE.duckdb] [--top 15]

Runs the pipeline in this process into a fresh DuckDB file with a connection
that times each statement (execute plus fetch) and prints the statements by
time, with the stage each ran in and its share of the run. Python-side work
between statements (locating rejects, building Arrow tables) shows as the
stage time not covered by statements.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sparkify import pipeline
from sparkify.progress import Progress
from sparkify.targets import duckdb as duckdb_target

console = Console(width=160)


class _Timed:
    """A result whose fetches add to the time of the statement that produced it."""

    def __init__(self, result, record):
        self._result, self._record = result, record

    def __getattr__(self, name):
        attr = getattr(self._result, name)
        if not name.startswith("fetch"):
            return attr

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return attr(*args, **kwargs)
            finally:
                self._record(time.perf_counter() - started)

        return timed


class TimingConnection:
    """Delegates to a DuckDB connection, timing every execute() by statement and stage."""

    def __init__(self, con, progress: Progress):
        self._con, self._progress = con, progress
        self.times: dict[tuple[str, str], float] = defaultdict(float)
        self.counts: dict[tuple[str, str], int] = defaultdict(int)

    def __getattr__(self, name):
        return getattr(self._con, name)

    def execute(self, sql, *args, **kwargs):
        key = (self._progress.current, " ".join(str(sql).split())[:110])

        def record(seconds: float) -> None:
            self.times[key] += seconds

        started = time.perf_counter()
        result = self._con.execute(sql, *args, **kwargs)
        record(time.perf_counter() - started)
        self.counts[key] += 1
        return _Timed(result, record)


class StageProgress(Progress):
    """Progress that remembers the stage running now."""

    current = "between stages"

    @contextmanager
    def stage(self, name, files=None):
        self.current = name
        try:
            with super().stage(name, files):
                yield
        finally:
            self.current = "between stages"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--target", default="bench/data/run/profile/star.duckdb")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    shutil.rmtree(os.path.dirname(args.target), ignore_errors=True)
    progress = StageProgress(quiet=True)
    target = duckdb_target.DuckDBTarget(args.target)
    connect = target._connect
    timing: list[TimingConnection] = []

    def timed_connect(read_only: bool = False):
        con = TimingConnection(connect(read_only), progress)
        timing.append(con)
        return con

    target._connect = timed_connect
    started = time.perf_counter()
    summary = pipeline.run(target, str(args.dataset / "song_data"), str(args.dataset / "log_data"),
                           progress=progress)
    total = time.perf_counter() - started
    times = {k: v for con in timing for k, v in con.times.items()}
    table = Table(title=f"{args.dataset}: {summary['accounting']['events']['read']:,} events, {total:.1f} s")
    for col in ("stage", "s", "share", "calls", "statement"):
        table.add_column(col, justify="right" if col in ("s", "share", "calls") else "left")
    for (stage, sql), seconds in sorted(times.items(), key=lambda kv: -kv[1])[: args.top]:
        calls = sum(con.counts.get((stage, sql), 0) for con in timing)
        table.add_row(stage, f"{seconds:.2f}", f"{seconds / total:.0%}", str(calls), re.sub(r"\s+", " ", sql))
    console.print(table)
    covered = defaultdict(float)
    for (stage, _), seconds in times.items():
        covered[stage] += seconds
    for stage, seconds in summary["timings"].items():
        if stage != "total":
            console.print(f"{stage}: {seconds:.2f} s, of which SQL statements {covered.get(stage, 0):.2f} s")
    shutil.rmtree(os.path.dirname(args.target), ignore_errors=True)


if __name__ == "__main__":
    main()
