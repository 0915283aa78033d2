"""python -m bench: run every scenario on every scale, each as its own measured process.

    python -m bench [--scales sample,100k,1m,10m] [--scenarios duckdb,bare_scan,...] [--seed 0] [--repeat 3]

Datasets are generated once under bench/data/ and reused. Each scenario gets
a fresh target (an empty directory, or an empty PostgreSQL database it drops
afterwards). The input files are read once before a scale's first scenario (the page cache is
warm for all of them alike). With --repeat N every scenario runs N times, in rounds (each round
runs them all, so load that comes and goes falls on all of them), and the run with the median
wall time stands for it. Results: bench/results/<timestamp>.json and bench/results/latest.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.logging import RichHandler

from bench import datasets, measure, report
from bench.pgscratch import scratch_database
from bench.scenarios import DEFAULT, PEERS_PYTHON, Scenario, by_name

log = logging.getLogger("bench")
console = Console(stderr=True)
RESULTS = datasets.BENCH / "results"
UNAVAILABLE_MARKERS = ("is not available", "No module named", "unknown engine", "invalid choice")


def missing(scenario: Scenario) -> list[str]:
    """What a scenario needs that this machine lacks."""
    lacking = []
    for need in scenario.requires:
        kind, _, name = need.partition(":")
        if kind == "pg" and not os.environ.get("SPARKIFY_TEST_PG_URL"):
            lacking.append("a PostgreSQL server (SPARKIFY_TEST_PG_URL)")
        elif kind == "env" and not os.environ.get(name):
            lacking.append(f"${name}")
        elif kind == "module" and not _importable(name):
            lacking.append(f"module {name}")
        elif kind == "cmd" and not shutil.which(name):
            lacking.append(f"command {name}")
        elif kind == "peers" and not _peers_importable(name):
            lacking.append(f"module {name} in {PEERS_PYTHON} (scripts/bench-peers.sh)")
    return lacking


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _peers_importable(module: str) -> bool:
    """Whether the peers' interpreter ({peers_python}) exists and can import `module`."""
    if not PEERS_PYTHON.exists():
        return False
    probe = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    return subprocess.run([str(PEERS_PYTHON), "-c", probe], check=False, capture_output=True).returncode == 0


@contextmanager
def workspace(scenario: Scenario, needs_pg: bool):
    work = datasets.DATA / "run" / scenario.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        if needs_pg:
            with scratch_database(os.environ["SPARKIFY_TEST_PG_URL"]) as url:
                yield work, url
        else:
            yield work, ""
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _last_json(stdout: str) -> dict:
    for line in reversed(stdout.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return {}


def run_scenario(scenario: Scenario, data: datasets.Dataset, timeout: float) -> dict:
    result = {"scenario": scenario.name, "scale": data.scale, "events": data.events,
              "input_mb": round(data.input_bytes / 1e6, 1)}
    lacking = missing(scenario)
    if lacking:
        return result | {"status": "unavailable", "note": "needs " + ", ".join(lacking)}
    needs_pg = any("{pg_url}" in a for a in scenario.argv)
    env = dict(os.environ, TZ="UTC", SPARK_LOCAL_IP="127.0.0.1", PYTHONPATH=str(datasets.REPO))
    with workspace(scenario, needs_pg) as (work, pg_url):
        values = {"python": sys.executable, "songs": data.song_data, "logs": data.log_data, "work": work,
                  "pg_url": pg_url, "peers_python": PEERS_PYTHON}
        argv = [part.format(**values) for part in scenario.argv]
        m = measure.run(argv, env=env, timeout=timeout, cwd=str(datasets.REPO))
    result |= {"wall_s": m.wall_s, "cpu_s": m.cpu_s, "peak_rss_mb": m.peak_rss_mb}
    if m.timed_out:
        return result | {"status": "timeout", "note": f"killed after {timeout:.0f} s"}
    if m.exit_code != 0:
        lines = m.stderr.strip().splitlines() or [""]
        starts = [i for i, line in enumerate(lines) if line.startswith("error:")]
        reason = " ".join(line.strip() for line in lines[starts[-1]:]) if starts else lines[-1]
        status = "unavailable" if any(s in m.stderr for s in UNAVAILABLE_MARKERS) else "failed"
        return result | {"status": status, "note": reason[:300], "exit_code": m.exit_code,
                         "stderr_tail": m.stderr[-2000:]}
    output = _last_json(m.stdout)
    result |= {"status": "ok", "output": output}
    if scenario.output == "summary":
        result["note"] = (f"songplays {output.get('tables', {}).get('songplays', '?'):,}; stages "
                          + " ".join(f"{k} {v:.1f}" for k, v in output.get("timings", {}).items()))
    elif scenario.output == "phases":
        result |= _extrapolate(output, m.wall_s)
    result["events_per_s"] = round(data.events / result["wall_s"], 1) if result["wall_s"] else None
    result["mb_per_s"] = round(result["input_mb"] / result["wall_s"], 2) if result["wall_s"] else None
    return result


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (the slower middle one of an even count), with every run's wall time;
    a scenario that failed once is reported by its first failure."""
    failed = [r for r in runs if r["status"] != "ok"]
    if failed:
        return failed[0]
    median = sorted(runs, key=lambda r: r["wall_s"])[len(runs) // 2]
    if len(runs) == 1:
        return median
    walls = [r["wall_s"] for r in runs]
    runs_note = f"runs {' / '.join(f'{w:.1f}' for w in walls)} s"
    note = f"{runs_note}; {median['note']}" if "note" in median else runs_note
    return median | {"walls_s": walls, "note": note}


def _extrapolate(output: dict, wall: float) -> dict:
    """A capped baseline's full wall time: each phase scaled by the share of its work it did."""
    songs_s, logs_s = output["songs_seconds"], output["logs_seconds"]
    fixed = max(wall - songs_s - logs_s, 0.0)
    full = (fixed + songs_s * output["songs_total"] / max(output["songs_done"], 1)
            + logs_s * output["events_total"] / max(output["events_done"], 1))
    capped = output["songs_done"] < output["songs_total"] or output["events_done"] < output["events_total"]
    note = (f"ran {output['songs_done']:,}/{output['songs_total']:,} songs, {output['events_done']:,}/"
            f"{output['events_total']:,} events in {wall:.1f} s; songplays kept {output.get('songplays', '?'):,}")
    return {"wall_s": round(full, 1) if capped else wall, "extrapolated": capped, "measured_wall_s": wall,
            "note": note}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", default="sample,100k,1m", help="sample and/or event counts (100k, 1m, 10m)")
    parser.add_argument("--scenarios", default=",".join(DEFAULT), help="comma-separated scenario names")
    parser.add_argument("--seed", type=int, default=0, help="generator seed of the datasets")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before a scenario is killed")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each scenario, in rounds; the median stands")
    parser.add_argument("--results", type=Path, default=RESULTS, help="directory for the results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console)])
    scenarios = by_name([s.strip() for s in args.scenarios.split(",") if s.strip()])
    info, stamp = report.machine(), report.stamp()
    results, described = [], []
    for scale in [s.strip() for s in args.scales.split(",") if s.strip()]:
        data = datasets.ensure(scale, args.seed)
        generated = ""
        if data.generated:
            seconds = data.generated["seconds"]
            generated = (f"{seconds['logs']:.1f} s wall, {data.events / max(seconds['logs_cpu'], 1e-9):,.0f} "
                         f"events per CPU s" if data.events else f"song files in {seconds['catalogue']:.1f} s")
        described.append({"scale": scale, "events": data.events, "songs": data.songs, "generated": generated,
                          "input_mb": round(data.input_bytes / 1e6, 1), "path": str(data.root)})
        data.warm()
        runs: dict[str, list[dict]] = {s.name: [] for s in scenarios}
        for round_ in range(1, args.repeat + 1):
            for scenario in scenarios:
                log.info("%s on %s (run %d of %d) ...", scenario.name, scale, round_, args.repeat)
                result = run_scenario(scenario, data, args.timeout)
                runs[scenario.name].append(result)
                report.write(results + [median_run(r) for r in runs.values() if r], described, info, args.results,
                             stamp)  # after every run, as before --repeat: a run cut short keeps what it measured
                log.info("%s on %s: %s %s s, peak %s MB %s", scenario.name, scale, result["status"],
                         result.get("wall_s", ""), result.get("peak_rss_mb", ""), result.get("note", ""))
        results += [median_run(runs[s.name]) for s in scenarios]
    path = report.write(results, described, info, args.results, stamp)
    console.print(f"results: {path} and {args.results / 'latest.md'}")
    return 0 if all(r["status"] in ("ok", "unavailable") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
