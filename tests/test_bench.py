"""The benchmark harness on a tiny scale: it runs, measures a process tree, and reports (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bench import measure
from bench.__main__ import _extrapolate, median_run, run_scenario
from bench.datasets import Dataset, parse_scale
from bench.scenarios import SCENARIOS, Scenario, by_name

REPO = Path(__file__).resolve().parents[1]


def test_harness_runs_a_scenario_on_the_sample(tmp_path: Path, sample: Path):
    events = sum(1 for p in (sample / "log_data").rglob("*.json") for line in p.read_bytes().split(b"\n")
                 if line.strip())
    done = subprocess.run([sys.executable, "-m", "bench", "--scales", "sample", "--scenarios", "bare_scan",
                           "--repeat", "3", "--results", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    [path] = tmp_path.glob("*.json")
    run = json.loads(path.read_text())
    [result] = run["results"]
    assert result["status"] == "ok" and result["scenario"] == "bare_scan"
    assert result["events"] == events and result["output"]["events"] == events
    assert result["wall_s"] > 0 and result["cpu_s"] > 0 and result["peak_rss_mb"] > 10
    assert len(result["walls_s"]) == 3 and sorted(result["walls_s"])[1] == result["wall_s"]
    assert run["machine"]["cores"] >= 1 and run["machine"]["versions"]["duckdb"]
    table = (tmp_path / "latest.md").read_text()
    assert "| sample | bare_scan | ok |" in table and "cores" in table


def test_the_median_run_stands_and_a_failure_wins():
    runs = [{"status": "ok", "wall_s": w, "note": f"run {i}"} for i, w in enumerate((9.0, 3.0, 5.0))]
    median = median_run(runs)
    assert median["wall_s"] == 5.0 and median["walls_s"] == [9.0, 3.0, 5.0]
    assert median["note"] == "runs 9.0 / 3.0 / 5.0 s; run 2"
    assert median_run(runs[:2])["wall_s"] == 9.0  # of two, the slower
    failed = {"status": "failed", "note": "boom"}
    assert median_run([runs[0], failed, runs[1]]) is failed


def test_peak_rss_is_the_whole_tree(tmp_path: Path):
    grandchild = "import time; x = b'x' * (150 * 2**20); time.sleep(1)"
    m = measure.run(["bash", "-c", f'{sys.executable} -c "{grandchild}" & wait'])
    assert m.exit_code == 0
    assert m.peak_rss_mb >= 150
    assert m.cpu_s > 0


def test_peak_pss_counts_shared_pages_once():
    """A forked child shares its parent's 150 MB: each resident set holds them, their PSS halves them."""
    forked = "import os, time; x = b'x' * (150 * 2**20); pid = os.fork(); time.sleep(2.5); pid and os.waitpid(pid, 0)"
    m = measure.run([sys.executable, "-c", forked])
    assert m.exit_code == 0
    assert m.peak_rss_mb >= 300
    assert 150 <= m.peak_pss_mb < 0.75 * m.peak_rss_mb


def test_timeout_kills_the_tree():
    m = measure.run(["bash", "-c", "sleep 30 & wait"], timeout=1)
    assert m.timed_out and m.wall_s < 20


def test_a_missing_target_is_unavailable_not_failed(sample: Path):
    scenario = Scenario("future", "a target not written yet", ("{python}", "-c", "raise SystemExit(3)"),
                        ("module:sparkify.targets.not_yet",))
    data = Dataset("sample", sample, 8056, 71, 1)
    result = run_scenario(scenario, data, timeout=60)
    assert result["status"] == "unavailable" and "sparkify.targets.not_yet" in result["note"]


def test_a_capped_baseline_is_extrapolated_per_phase():
    out = {"songs_done": 100, "songs_total": 1000, "songs_seconds": 10.0,
           "events_done": 1000, "events_total": 10000, "logs_seconds": 5.0, "songplays": 7}
    result = _extrapolate(out, wall=16.0)
    assert result["extrapolated"] and result["wall_s"] == 1 + 10 * 10 + 5 * 10
    whole = dict(out, songs_done=1000, events_done=10000)
    assert _extrapolate(whole, wall=16.0) | {"note": ""} == {"wall_s": 16.0, "extrapolated": False,
                                                               "measured_wall_s": 16.0, "note": ""}


def test_scenarios_are_data():
    assert {"duckdb", "postgres", "lake", "spark", "bare_scan", "plain_sql", "original_etl"} <= {
        s.name for s in SCENARIOS}
    assert by_name(["duckdb"])[0].argv[-1] == "--json"
    assert [parse_scale(s) for s in ("sample", "catalogue", "100k", "1m", "10m", "2500")] == [
        None, 0, 100_000, 10**6, 10**7, 2500]


def test_engine_profile_names_the_statements(tmp_path: Path, sample: Path):
    """The profile runs in a folder of its own under --scratch and removes only that (it once removed the
    whole folder its target was in, with whatever else lay there)."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "keep.txt").write_text("not the profile's")
    done = subprocess.run([sys.executable, "-m", "bench.profile_engine", str(sample), "--scratch", str(scratch),
                           "--top", "3"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "8,056 events" in done.stdout
    assert all(f"{stage}:" in done.stdout for stage in ("songs", "events", "star", "load"))
    assert [p.name for p in scratch.iterdir()] == ["keep.txt"]
    assert "CREATE" in done.stdout or "INSERT" in done.stdout


def test_the_scale_out_replay_places_tasks_on_slots_and_keeps_the_driver_serial():
    """bench/spark_scaleout.py: an event log's stages replayed on N task slots (figures worked out by hand)."""
    from bench.spark_scaleout import makespan, predict, stages

    def task(stage: int, launch: int, finish: int) -> dict:
        return {"Event": "SparkListenerTaskEnd", "Stage ID": stage, "Stage Attempt ID": 0,
                "Task Info": {"Launch Time": launch, "Finish Time": finish},
                "Task Metrics": {"Executor CPU Time": 5 * 10**8}}

    def stage(stage_id: int, start: int, end: int) -> dict:
        return {"Event": "SparkListenerStageCompleted",
                "Stage Info": {"Stage ID": stage_id, "Submission Time": start, "Completion Time": end}}

    events = [{"Event": "SparkListenerApplicationStart", "Timestamp": 0},
              task(0, 1_000, 4_000), task(0, 1_100, 2_100), task(0, 2_000, 3_000), stage(0, 1_000, 4_000),
              task(1, 3_500, 5_500), stage(1, 3_500, 6_000),  # overlaps stage 0 by 0.5 s
              {"Event": "SparkListenerApplicationEnd", "Timestamp": 10_000}]
    driver, ordered, task_s, cpu_s = stages(events)
    assert driver == 5.0  # 10 s, less the stages' union (1 to 6 s)
    assert ordered == [[3.0, 1.0, 1.0], [2.0]] and task_s == 7.0 and cpu_s == 2.0
    assert makespan([3.0, 1.0, 1.0], 1) == 5.0 and makespan([3.0, 1.0, 1.0], 2) == 3.0
    assert predict(driver, ordered, 1) == 12.0 and predict(driver, ordered, 4) == 10.0
