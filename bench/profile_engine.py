"""Where a DuckDB run's time goes: every SQL statement of one `sparkify run`, timed.

    python -m bench.profile_engine DATASET_DIR [--scratch FOLDER] [--top 15]

Runs the pipeline in this process into a fresh DuckDB file (in a folder of
its own under --scratch, removed afterwards) with a connection
that times each statement (execute plus fetch; wall, and CPU of the process,
which counts every DuckDB thread and is the fairer figure on a shared
machine) and prints the statements by CPU time, with their stage. Python-side work
between statements (locating rejects, building Arrow tables) shows as the
stage time not covered by statements.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
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


def _clocks() -> tuple[float, float]:
    """(wall, CPU of this process: every DuckDB thread) seconds."""
    return time.perf_counter(), time.process_time()


class _Timed:
    """A result whose fetches add to the time of the statement that produced it."""

    def __init__(self, result, record):
        self._result, self._record = result, record

    def __getattr__(self, name):
        attr = getattr(self._result, name)
        if not name.startswith("fetch"):
            return attr

        def timed(*args, **kwargs):
            started = _clocks()
            try:
                return attr(*args, **kwargs)
            finally:
                self._record(started)

        return timed


class TimingConnection:
    """Delegates to a DuckDB connection, timing every execute() by statement and stage."""

    def __init__(self, con, progress: Progress, explain: str | None = None, out: Path | None = None):
        self._con, self._progress = con, progress
        self._explain, self._out, self._profiling = explain, out, False
        self.plans: list[Path] = []
        self.failed: tuple[tuple[str, str], Exception] | None = None
        self.times: dict[tuple[str, str], float] = defaultdict(float)
        self.cpu: dict[tuple[str, str], float] = defaultdict(float)
        self.counts: dict[tuple[str, str], int] = defaultdict(int)

    def __getattr__(self, name):
        return getattr(self._con, name)

    def execute(self, sql, *args, **kwargs):
        key = (self._progress.current, " ".join(str(sql).split())[:110])

        def record(started: tuple[float, float]) -> None:
            now = _clocks()
            self.times[key] += now[0] - started[0]
            self.cpu[key] += now[1] - started[1]

        if self._profiling:
            self._con.execute("PRAGMA disable_profiling")
            self._profiling = False
        if self._explain and any(part in key[1] for part in self._explain.split("|")):
            plan = self._out / f"plan-{len(self.plans) + 1}.json"
            self._con.execute("PRAGMA enable_profiling = 'json'")
            self._con.execute("SET profiling_output = ?", [str(plan)])
            self.plans.append(plan)
            self._profiling = True
        started = _clocks()
        try:
            result = self._con.execute(sql, *args, **kwargs)
        except Exception as exc:
            self.failed = (key, exc)
            raise
        finally:
            record(started)
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


def _operators(node: dict, depth: int = 0):
    for child in node.get("children", []):
        yield depth, child
        yield from _operators(child, depth + 1)


def _print_plan(profile: dict) -> None:
    """DuckDB's profile of one statement: its operators by time, with rows and what each computes."""
    query, system = profile["query"], profile.get("system", {})
    console.print(f"\n[bold]{' '.join(query['sql'].split())[:110]}[/bold]")
    console.print(f"total {query['total_time']:.2f} s, CPU (all threads) {query['cpu_time']:.2f} s, "
                  f"peak buffer memory {system.get('peak_buffer_memory', 0) / 2**20:.0f} MB")
    table = Table()
    for col in ("operator", "s", "rows", "detail"):
        table.add_column(col, justify="right" if col in ("s", "rows") else "left")
    nodes = [(d, n) for top in profile["operator"] for d, n in [(0, top), *_operators(top, 1)]]
    for depth, node in sorted(nodes, key=lambda dn: -dn[1].get("timing", 0))[:8]:
        detail = "; ".join(f"{k}: {v if isinstance(v, str) else ', '.join(map(str, v))}"[:60]
                           for k, v in node.get("extra_info", {}).items() if k != "Estimated Cardinality")
        table.add_row("  " * depth + node["type"], f"{node.get('timing', 0):.2f}",
                      f"{node.get('intermediate_rows', 0):,}", detail[:120])
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--scratch", type=Path, default=Path("bench/data/run"),
                        help="where the run's own folder is made (the DuckDB file, its spill, the plans)")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--explain", help="also print DuckDB's profile (operators, timings) of the statements "
                                          "containing this text (alternatives separated by |), e.g. 'INSERT INTO ev'")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="profile-", dir=args.scratch))
    plans = workdir / "plans"
    plans.mkdir()
    progress = StageProgress(quiet=True)
    target = duckdb_target.DuckDBTarget(str(workdir / "star.duckdb"))
    connect = target._connect
    timing: list[TimingConnection] = []

    def timed_connect(read_only: bool = False):
        con = TimingConnection(connect(read_only), progress, args.explain, plans)
        timing.append(con)
        return con

    target._connect = timed_connect
    started, cpu_started = _clocks()
    try:
        summary = pipeline.run(target, str(args.dataset / "song_data"), str(args.dataset / "log_data"),
                               progress=progress)
    except Exception as exc:
        failed = next((con.failed for con in timing if con.failed), None)
        where = f"in stage {failed[0][0]}, statement: {failed[0][1]}" if failed else "outside SQL"
        console.print(f"[red]the run failed after {time.perf_counter() - started:.0f} s {where}: {exc}[/red]")
        summary = {"accounting": {"events": {"read": 0}}, "timings": dict(progress.timings, total=0)}
    total, total_cpu = time.perf_counter() - started, time.process_time() - cpu_started
    times = {k: v for con in timing for k, v in con.times.items()}
    cpu = {k: v for con in timing for k, v in con.cpu.items()}
    table = Table(title=f"{args.dataset}: {summary['accounting']['events']['read']:,} events, "
                        f"{total:.1f} s wall, {total_cpu:.1f} s CPU")
    for col in ("stage", "wall s", "CPU s", "CPU share", "calls", "statement"):
        table.add_column(col, justify="left" if col in ("stage", "statement") else "right")
    for (stage, sql), seconds in sorted(cpu.items(), key=lambda kv: -kv[1])[: args.top]:
        calls = sum(con.counts.get((stage, sql), 0) for con in timing)
        table.add_row(stage, f"{times[(stage, sql)]:.2f}", f"{seconds:.2f}", f"{seconds / total_cpu:.0%}",
                      str(calls), re.sub(r"\s+", " ", sql))
    console.print(table)
    covered, covered_cpu = defaultdict(float), defaultdict(float)
    for (stage, _), seconds in times.items():
        covered[stage] += seconds
        covered_cpu[stage] += cpu[(stage, _)]
    for stage, seconds in summary["timings"].items():
        if stage != "total":
            console.print(f"{stage}: {seconds:.2f} s, of which SQL statements {covered.get(stage, 0):.2f} s wall, "
                          f"{covered_cpu.get(stage, 0):.2f} s CPU")
    for plan in (p for con in timing for p in con.plans if p.exists()):
        _print_plan(json.loads(plan.read_text()))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
