"""The Spark job at 1, 2, ... executor cores on the standalone cluster, beside local[2], and what more cores give.

    scripts/services.sh start                      # the master and two 1-core workers on 127.0.0.1
    python -m bench.spark_scaleout --scale 805.6k [--cores 1,2] [--no-local] [--out FILE]

Every run is the job a cluster runs: `spark-submit --py-files dist/sparkify-spark.zip
dist/spark_job.py` (built by scripts/spark-artifact.sh) writing a fresh lake, with
`spark.cores.max` set to the cores asked for; `local[2]` is the same job with a
local master in one JVM. Each run writes Spark's event log, from which come the
executors' task time and CPU time (the executors are the workers' children, not
the submitting process's, so the process tree's CPU covers only the driver).

Prediction: this machine has two cores, so the curve stops at 2. For more, the
event log of each run is replayed: each stage's tasks, with their measured run
times, are placed in launch order on N slots (each task on the slot that frees
first), and the driver's own time (the run's wall time outside every stage) is
added unchanged. Checked on the measured points: the 1-core run's replay at 2
slots is set beside the 2-core run's measured wall time.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from bench import datasets, measure
from bench.spark_bench import actions, event_log
from sparkify.engines.spark.session import LOCAL_CONF

console = Console(stderr=True)
REPO = datasets.REPO
JAVA_OPTS = "-Duser.timezone=UTC -XX:+UseSerialGC -XX:TieredStopAtLevel=1"
CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.locality.wait": "0",
    "spark.executor.memory": "900m",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC -XX:+UseSerialGC",
    "spark.executorEnv.TZ": "UTC",
    "spark.eventLog.enabled": "true",
    "spark.eventLog.compress": "false",
}
"""As tests/test_spark_cluster.py submits, plus the event log. Workers have 1 GB each (scripts/services.sh)."""
LOCAL_DRIVER_MEMORY = LOCAL_CONF["spark.driver.memory"]
"""As engines/spark/session.py gives a local master: the one JVM holds driver and executors."""
PREDICT = (1, 2, 4, 8, 16)


def artifact(folder: Path) -> Path:
    subprocess.run([str(REPO / "scripts" / "spark-artifact.sh"), str(folder)], check=True, capture_output=True)
    return folder


def submit(master: str, dist: Path, data: datasets.Dataset, work: Path, conf: dict[str, str]) -> measure.Measurement:
    import pyspark

    events = work / "eventlog"
    events.mkdir()
    settings = {**CONF, "spark.eventLog.dir": events.as_uri(), **conf}
    memory = ["--driver-memory", LOCAL_DRIVER_MEMORY] if master.startswith("local") else []
    argv = [str(Path(pyspark.__file__).parent / "bin" / "spark-submit"), "--master", master, *memory,
            "--driver-java-options", JAVA_OPTS, "--py-files", str(dist / "sparkify-spark.zip"),
            *(a for k, v in settings.items() for a in ("--conf", f"{k}={v}")),
            str(dist / "spark_job.py"), "--songs", str(data.song_data), "--logs", str(data.log_data),
            "--out", str(work / "lake")]
    env = {**os.environ, "TZ": "UTC", "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
           "PYSPARK_DRIVER_PYTHON": sys.executable}
    result = measure.run(argv, env=env, cwd=str(work))
    if result.exit_code != 0:
        raise SystemExit(f"{master}: exit {result.exit_code}\n{result.stderr[-3000:]}")
    return result


def stages(events: list[dict]) -> tuple[float, list[list[float]], float, float]:
    """(the driver's s outside every stage, each stage's task run times in launch order, task s, executor CPU s)."""
    start = next(e["Timestamp"] for e in events if e["Event"] == "SparkListenerApplicationStart")
    end = max(e.get("Timestamp") or e.get("Completion Time") or 0 for e in events
              if e["Event"] in ("SparkListenerApplicationEnd", "SparkListenerJobEnd"))
    tasks: dict[tuple[int, int], list[tuple[int, float]]] = {}
    spans: list[tuple[int, int]] = []
    task_s = cpu_s = 0.0
    for e in events:
        if e["Event"] == "SparkListenerTaskEnd":
            info, metrics = e["Task Info"], e.get("Task Metrics") or {}
            seconds = (info["Finish Time"] - info["Launch Time"]) / 1e3
            tasks.setdefault((e["Stage ID"], e["Stage Attempt ID"]), []).append((info["Launch Time"], seconds))
            task_s += seconds
            cpu_s += metrics.get("Executor CPU Time", 0) / 1e9
        elif e["Event"] == "SparkListenerStageCompleted":
            info = e["Stage Info"]
            if info.get("Submission Time") and info.get("Completion Time"):
                spans.append((info["Submission Time"], info["Completion Time"]))
    in_stages, reach = 0, start
    for begin, finish in sorted(spans):  # the union of the stages' spans
        begin = max(begin, reach)
        if finish > begin:
            in_stages += finish - begin
            reach = finish
    driver = (end - start - in_stages) / 1e3
    ordered = [[s for _, s in sorted(t)] for _, t in sorted(tasks.items())]
    return driver, ordered, task_s, cpu_s


def makespan(tasks: list[float], slots: int) -> float:
    """The stage's length with `slots` task slots, tasks taken in launch order by the first free slot."""
    free = [0.0] * slots
    for seconds in tasks:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


def predict(driver: float, ordered: list[list[float]], slots: int) -> float:
    return driver + sum(makespan(t, slots) for t in ordered)


def run_one(label: str, master: str, conf: dict[str, str], dist: Path, data: datasets.Dataset) -> dict:
    with tempfile.TemporaryDirectory(prefix="spark-scaleout-", dir=os.environ.get("SPARKIFY_BENCH_TMP")) as tmp:
        result = submit(master, dist, data, Path(tmp), conf)
        events = event_log(Path(tmp) / "eventlog")
        driver, ordered, task_s, cpu_s = stages(events)
        summary = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
        row = {"run": label, "wall_s": result.wall_s, "submit_tree_cpu_s": result.cpu_s,
               "submit_tree_peak_rss_mb": result.peak_rss_mb, "driver_s": round(driver, 1),
               "task_s": round(task_s, 1), "executor_cpu_s": round(cpu_s, 1), "tasks": sum(map(len, ordered)),
               "stages": len(ordered), "load_avg": os.getloadavg(), "accounting": summary["accounting"],
               "predicted_wall_s": {n: round(predict(driver, ordered, n), 1) for n in PREDICT},
               "actions": actions(events)}
    console.log(f"{label}: {row['wall_s']:.1f} s wall, driver {driver:.1f} s, tasks {task_s:.1f} s")
    return row


def markdown(scale: str, data: datasets.Dataset, rows: list[dict]) -> str:
    local = next((r for r in rows if r["run"] == "local[2]"), None)
    lines = [f"{scale}: {data.events:,} events, {data.songs:,} song files", "",
             "| run | wall s | vs local[2] | driver s | task s | executor CPU s | tasks | "
             + " | ".join(f"replayed at {n}" for n in PREDICT) + " |",
             "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(PREDICT)]
    for r in rows:
        ratio = f"{r['wall_s'] / local['wall_s']:.2f}x" if local else ""
        lines.append(f"| {r['run']} | {r['wall_s']:.1f} | {ratio} | {r['driver_s']} | {r['task_s']} | "
                     f"{r['executor_cpu_s']} | {r['tasks']} | "
                     + " | ".join(str(r["predicted_wall_s"][n]) for n in PREDICT) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="805.6k")
    parser.add_argument("--cores", default="1,2", help="executor cores on the cluster, comma-separated")
    parser.add_argument("--master", default=os.environ.get("SPARKIFY_TEST_SPARK_MASTER", "spark://127.0.0.1:7077"))
    parser.add_argument("--no-local", action="store_true", help="skip the local[2] run")
    parser.add_argument("--out", help="write the raw figures as JSON here")
    args = parser.parse_args()
    data = datasets.ensure(args.scale)
    with tempfile.TemporaryDirectory(prefix="spark-dist-") as tmp:
        dist = artifact(Path(tmp))
        rows = [] if args.no_local else [run_one("local[2]", "local[2]", {}, dist, data)]
        for cores in (int(c) for c in args.cores.split(",")):
            rows.append(run_one(f"cluster, {cores} core{'s' if cores > 1 else ''}", args.master,
                                {"spark.cores.max": str(cores)}, dist, data))
    accounting = {json.dumps(r["accounting"], sort_keys=True) for r in rows}
    assert len(accounting) == 1, f"the runs disagree: {accounting}"
    if args.out:
        Path(args.out).write_text(json.dumps({"scale": args.scale, "events": data.events, "runs": rows}, indent=1))
    print(markdown(args.scale, data, rows))


if __name__ == "__main__":
    main()
