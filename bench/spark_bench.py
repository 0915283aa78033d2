"""Spark local[2] next to the DuckDB engine on the same generated data, and Spark's cost per event.

    python -m bench.spark_bench [--scales 1m,10m] [--repeats 1] [--out FILE]

For each scale (generated once by `sparkify generate`, see bench/datasets.py)
both engines load the data from scratch into a fresh DuckDB file, each in its
own measured process, in rotating order so drift on a shared machine hits
both alike. Reported: median wall and CPU time, events/s, peak RSS of the
whole process tree (for Spark that is the Python driver plus the JVM that
does the work), Spark's stage timings, and Spark's wall time per event at
each scale next to the smallest one (flat means it scales linearly).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from bench import datasets, measure

console = Console(stderr=True)
ENGINES = ("duckdb", "spark")
MEMORY_LIMIT = "1500MB"
"""For both engines: the DuckDB file's key indexes need it to take 10 M events in one run (README)."""


def sparkify_run(data: datasets.Dataset, engine: str, target: Path) -> tuple[measure.Measurement, dict]:
    argv = [sys.executable, "-m", "sparkify.cli", "run", "--songs", str(data.song_data), "--logs",
            str(data.log_data), "--target", str(target), "--engine", engine, "--memory-limit", MEMORY_LIMIT, "--json"]
    env = {**os.environ, "TZ": "UTC", "SPARK_LOCAL_IP": "127.0.0.1"}
    result = measure.run(argv, env=env)
    if result.exit_code != 0:
        raise SystemExit(f"{engine}: exit {result.exit_code}\n{result.stderr[-3000:]}")
    return result, json.loads(result.stdout.strip().splitlines()[-1])


def bench_scale(scale: str, repeats: int) -> dict:
    data = datasets.ensure(scale)
    console.log(f"{scale}: {data.events:,} events, {data.songs:,} song files, {data.input_bytes / 2**20:,.0f} MiB")
    runs: dict[str, list[dict]] = {e: [] for e in ENGINES}
    for repeat in range(repeats):
        order = ENGINES if repeat % 2 == 0 else tuple(reversed(ENGINES))
        for engine in order:
            with tempfile.TemporaryDirectory(prefix="spark-bench-", dir=os.environ.get("SPARKIFY_BENCH_TMP")) as tmp:
                result, summary = sparkify_run(data, engine, Path(tmp) / "star.duckdb")
            runs[engine].append({"wall_s": result.wall_s, "cpu_s": result.cpu_s, "peak_rss_mb": result.peak_rss_mb,
                                 "timings": summary["timings"], "tables": summary["tables"]})
            console.log(f"{scale} #{repeat + 1} {engine}: {result.wall_s:.1f} s, "
                        f"peak RSS {result.peak_rss_mb:,.0f} MB")
    assert runs["spark"][0]["tables"] == runs["duckdb"][0]["tables"], "the engines disagree"
    return {"scale": scale, "events": data.events, "song_files": data.songs, "input_bytes": data.input_bytes,
            "runs": runs}


def median(rows: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in rows), 2)


def markdown(results: list[dict]) -> str:
    lines = ["| scale | engine | wall s | CPU s | events/s | peak RSS MB (tree) | µs/event | vs smallest scale |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    base: dict[str, float] = {}
    for res in results:
        for engine, rows in res["runs"].items():
            wall = median(rows, "wall_s")
            per_event = wall / res["events"] * 1e6
            base.setdefault(engine, per_event)
            lines.append(f"| {res['scale']} | {engine} | {wall} | {median(rows, 'cpu_s')} | "
                         f"{res['events'] / wall:,.0f} | {median(rows, 'peak_rss_mb'):,.0f} | "
                         f"{per_event:.1f} | {per_event / base[engine]:.2f}x |")
    lines += ["", "Spark stages (s, median): " + "; ".join(
        f"{res['scale']}: " + ", ".join(
            f"{k} {statistics.median(r['timings'][k] for r in res['runs']['spark']):.1f}"
            for k in res["runs"]["spark"][0]["timings"] if k != "total")
        for res in results)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1m,10m", help="comma-separated: sample, 100k, 1m, 10m, ...")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", help="write the raw figures as JSON here")
    args = parser.parse_args()
    results = [bench_scale(scale.strip(), args.repeats) for scale in args.scales.split(",")]
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main()
