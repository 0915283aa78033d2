"""Spark local[2] next to the DuckDB engine on the same generated data, and Spark's cost per event.

    python -m bench.spark_bench [--scales 1m,10m] [--repeats 1] [--out FILE] [--no-event-log]

For each scale (generated once by `sparkify generate`, see bench/datasets.py)
both engines load the data from scratch into a fresh DuckDB file, each in its
own measured process, in rotating order so drift on a shared machine hits
both alike. Reported: median wall and CPU time, events/s, peak RSS and PSS of the
whole process tree (for Spark that is the Python driver plus the JVM that
does the work), Spark's stage timings, and Spark's wall time per event at
each scale next to the smallest one (flat means it scales linearly).

Spark's runs also write Spark's event log (to a temporary folder, through a
[spark] table in a config file the run is given): the summary keeps, for
each Spark action (a collect, a table written), its wall time, the task time
and CPU time of its stages, its tasks and its shuffle bytes, so the figures
say where Spark's time went, not only how long the whole took.
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


def sparkify_run(data: datasets.Dataset, engine: str, target: Path,
                 config: Path | None = None) -> tuple[measure.Measurement, dict]:
    argv = [sys.executable, "-m", "sparkify.cli", "run", "--songs", str(data.song_data), "--logs",
            str(data.log_data), "--target", str(target), "--engine", engine, "--json"]
    env = {**os.environ, "TZ": "UTC", "SPARK_LOCAL_IP": "127.0.0.1"}
    if config is not None:
        env["SPARKIFY_CONFIG"] = str(config)
    result = measure.run(argv, env=env)
    if result.exit_code != 0:
        raise SystemExit(f"{engine}: exit {result.exit_code}\n{result.stderr[-3000:]}")
    return result, json.loads(result.stdout.strip().splitlines()[-1])


def event_log_config(folder: Path) -> Path:
    """A config file whose [spark] table makes Spark write its event log, uncompressed, into `folder`."""
    folder.mkdir()
    config = folder.parent / "sparkify.toml"
    config.write_text("[spark]\n\"spark.eventLog.enabled\" = \"true\"\n\"spark.eventLog.compress\" = \"false\"\n"
                      f"\"spark.eventLog.dir\" = \"{folder.as_uri()}\"\n")
    return config


def event_log(folder: Path) -> list[dict]:
    """The events of the Spark event log written into `folder`, in order."""
    return [json.loads(line) for path in sorted(folder.rglob("events_*")) for line in path.open()]


def actions(events: list[dict]) -> list[dict]:
    """Each Spark action of a run's event log: what started it, wall, task and CPU seconds, tasks, shuffle."""
    jobs: dict[int, dict] = {}
    stage_job: dict[int, int] = {}
    for e in events:
        if e["Event"] == "SparkListenerJobStart":
            props = e.get("Properties") or {}
            jobs[e["Job ID"]] = {"sql": props.get("spark.sql.execution.id"), "start": e["Submission Time"]}
            stage_job.update((s, e["Job ID"]) for s in e["Stage IDs"])
        elif e["Event"] == "SparkListenerJobEnd":
            jobs[e["Job ID"]]["end"] = e["Completion Time"]
    names = {str(e["executionId"]): e["description"] for e in events if e["Event"].endswith("SQLExecutionStart")}
    out: dict[str, dict] = {}
    for job in jobs.values():
        key = job["sql"] if job["sql"] is not None else "other"
        row = out.setdefault(key, {"action": names.get(key, key), "start": job["start"], "end": job["start"],
                                   "task_s": 0.0, "cpu_s": 0.0, "tasks": 0, "shuffle_mb": 0.0})
        row["start"], row["end"] = min(row["start"], job["start"]), max(row["end"], job.get("end", job["start"]))
    for e in events:
        if e["Event"] != "SparkListenerTaskEnd" or e["Stage ID"] not in stage_job:
            continue
        sql = jobs[stage_job[e["Stage ID"]]]["sql"]
        row = out[sql if sql is not None else "other"]
        metrics = e.get("Task Metrics") or {}
        row["tasks"] += 1
        row["task_s"] += metrics.get("Executor Run Time", 0) / 1e3
        row["cpu_s"] += metrics.get("Executor CPU Time", 0) / 1e9
        row["shuffle_mb"] += metrics.get("Shuffle Write Metrics", {}).get("Shuffle Bytes Written", 0) / 2**20
    first = min((r["start"] for r in out.values()), default=0)
    return [{"action": r["action"], "at_s": round((r["start"] - first) / 1e3, 1),
             "wall_s": round((r["end"] - r["start"]) / 1e3, 1), "task_s": round(r["task_s"], 1),
             "cpu_s": round(r["cpu_s"], 1), "tasks": r["tasks"], "shuffle_mb": round(r["shuffle_mb"], 1)}
            for r in sorted(out.values(), key=lambda r: r["start"])]


def bench_scale(scale: str, repeats: int, with_event_log: bool = True) -> dict:
    data = datasets.ensure(scale)
    console.log(f"{scale}: {data.events:,} events, {data.songs:,} song files, {data.input_bytes / 2**20:,.0f} MiB")
    runs: dict[str, list[dict]] = {e: [] for e in ENGINES}
    for repeat in range(repeats):
        order = ENGINES if repeat % 2 == 0 else tuple(reversed(ENGINES))
        for engine in order:
            with tempfile.TemporaryDirectory(prefix="spark-bench-", dir=os.environ.get("SPARKIFY_BENCH_TMP")) as tmp:
                logged = with_event_log and engine == "spark"
                config = event_log_config(Path(tmp) / "eventlog") if logged else None
                result, summary = sparkify_run(data, engine, Path(tmp) / "star.duckdb", config)
                spark_actions = actions(event_log(Path(tmp) / "eventlog")) if logged else None
            runs[engine].append({"wall_s": result.wall_s, "cpu_s": result.cpu_s, "peak_rss_mb": result.peak_rss_mb,
                                 "peak_pss_mb": result.peak_pss_mb,
                                 "load_avg": os.getloadavg(), "timings": summary["timings"],
                                 "tables": summary["tables"], **({"spark_actions": spark_actions} if logged else {})})
            console.log(f"{scale} #{repeat + 1} {engine}: {result.wall_s:.1f} s, "
                        f"peak RSS {result.peak_rss_mb:,.0f} MB, PSS {result.peak_pss_mb:,.0f} MB")
    assert runs["spark"][0]["tables"] == runs["duckdb"][0]["tables"], "the engines disagree"
    return {"scale": scale, "events": data.events, "song_files": data.songs, "input_bytes": data.input_bytes,
            "runs": runs}


def median(rows: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in rows), 2)


def markdown(results: list[dict]) -> str:
    lines = ["| scale | engine | wall s | CPU s | events/s | peak RSS MB (tree) | peak PSS MB (tree) | µs/event "
             "| vs smallest scale |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    base: dict[str, float] = {}
    for res in results:
        for engine, rows in res["runs"].items():
            wall = median(rows, "wall_s")
            per_event = wall / res["events"] * 1e6
            base.setdefault(engine, per_event)
            lines.append(f"| {res['scale']} | {engine} | {wall} | {median(rows, 'cpu_s')} | "
                         f"{res['events'] / wall:,.0f} | {median(rows, 'peak_rss_mb'):,.0f} | "
                         f"{median(rows, 'peak_pss_mb'):,.0f} | "
                         f"{per_event:.1f} | {per_event / base[engine]:.2f}x |")
    lines += ["", "Spark stages (s, median): " + "; ".join(
        f"{res['scale']}: " + ", ".join(
            f"{k} {statistics.median(r['timings'][k] for r in res['runs']['spark']):.1f}"
            for k in res["runs"]["spark"][0]["timings"] if k != "total")
        for res in results)]
    for res in results:
        logged = [r for r in res["runs"]["spark"] if r.get("spark_actions")]
        if not logged:
            continue
        lines += ["", f"Spark actions at {res['scale']} (first run; task and CPU s summed over tasks):", "",
                  "| at s | action | wall s | task s | CPU s | tasks | shuffle MB |",
                  "|---:|---|---:|---:|---:|---:|---:|"]
        lines += [f"| {a['at_s']} | {a['action']} | {a['wall_s']} | {a['task_s']} | {a['cpu_s']} | {a['tasks']} | "
                  f"{a['shuffle_mb']} |" for a in logged[0]["spark_actions"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="1m,10m", help="comma-separated: sample, 100k, 1m, 10m, ...")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", help="write the raw figures as JSON here")
    parser.add_argument("--no-event-log", action="store_true", help="run Spark without writing its event log")
    args = parser.parse_args()
    results = [bench_scale(scale.strip(), args.repeats, not args.no_event_log) for scale in args.scales.split(",")]
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main()
