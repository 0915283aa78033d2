"""Write a benchmark run: bench/results/<timestamp>.json and bench/results/latest.md."""

from __future__ import annotations

import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path

PACKAGES = ("duckdb", "pyarrow", "numpy", "pandas", "psycopg", "pyspark")


def machine() -> dict:
    """What the figures depend on: CPU, cores, memory, load, versions."""
    model = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as fh:
        ram_kb = int(next(line for line in fh if line.startswith("MemTotal")).split()[1])
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu": model, "cores": os.cpu_count(), "ram_gb": round(ram_kb / 2**20, 1),
            "os": platform.platform(), "load_average": os.getloadavg(), "versions": versions}


def _number(value, digits: int = 2) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value >= 1000 or isinstance(value, int):
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _result_row(r: dict) -> str:
    note = r.get("note", "")
    if r.get("extrapolated"):
        note = ("extrapolated: " + note).strip()
    cells = [r["scale"], r["scenario"], r["status"], _number(r.get("wall_s")), _number(r.get("cpu_s")),
             _number(r.get("peak_rss_mb"), 0), _number(r.get("events_per_s"), 0), _number(r.get("mb_per_s"), 1),
             note.replace("|", "/")]
    return "| " + " | ".join(cells) + " |"


def aims(results: list[dict]) -> list[str]:
    """The issue's aims for the DuckDB engine (issue 15), computed from this run where its figures exist."""
    ok = {(r["scale"], r["scenario"]): r for r in results if r["status"] == "ok"}
    lines = ["| scale | duckdb / bare scan, wall (CPU); aim <= 2.5 at 1m, 3 at 10m "
             "| duckdb / plain script; aim <= 1 | duckdb / dlt_arrow; aim < 1 | duckdb / dlt_dbt; aim <= 0.67 "
             "| duckdb peak RSS MB | duckdb us per event, wall (CPU) |", "|---|---|---|---|---|---|---|"]
    per_event = {}

    def ratio(a: dict, b: dict | None) -> str:
        return f"{a['wall_s'] / b['wall_s']:.2f} ({a['cpu_s'] / b['cpu_s']:.2f})" if b else ""

    for scale in dict.fromkeys(r["scale"] for r in results):
        duck = ok.get((scale, "duckdb"))
        if not duck:
            continue
        per_event[scale] = (duck["wall_s"] / duck["events"] * 1e6, duck["cpu_s"] / duck["events"] * 1e6) \
            if duck["events"] else None
        cost = f"{per_event[scale][0]:.1f} ({per_event[scale][1]:.1f})" if per_event[scale] else ""
        peers = " | ".join(ratio(duck, ok.get((scale, name))) for name in ("bare_scan", "plain_sql", "dlt_arrow",
                                                                              "dlt_dbt"))
        lines.append(f"| {scale} | {peers} | {_number(duck['peak_rss_mb'], 0)} | {cost} |")
    if per_event.get("1m") and per_event.get("10m"):
        wall, cpu = (per_event["10m"][i] / per_event["1m"][i] for i in (0, 1))
        lines += ["", f"Cost per event at 10m / at 1m: {wall:.2f} wall, {cpu:.2f} CPU (aim <= 1.2)."]
    return lines


def stamp() -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())


def write(results: list[dict], datasets: list[dict], info: dict, directory: Path, run: str) -> Path:
    """(Re)write the run's files: called after every scenario, so a crash loses nothing measured."""
    directory.mkdir(parents=True, exist_ok=True)
    info = dict(info, load_average_end=info.get("load_average_end") or os.getloadavg())
    path = directory / f"{run}.json"
    path.write_text(json.dumps({"run": run, "machine": info, "datasets": datasets, "results": results},
                               indent=1) + "\n")
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    md = [
        f"# Benchmark {run}",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB RAM, {info['os']}; {versions}. "
        f"Load average (1, 5, 15 min) at start {', '.join(f'{x:.1f}' for x in info['load_average'])}, "
        f"at end {', '.join(f'{x:.1f}' for x in info['load_average_end'])} on {info['cores']} cores: the machine is "
        "shared, so wall figures are noisy; CPU seconds less so.",
        "",
        "| scale | events | song files | input MB | generated in (logs) |",
        "|---|---|---|---|---|",
        *(f"| {d['scale']} | {d['events']:,} | {d['songs']:,} | {d['input_mb']:,.1f} | {d.get('generated', '')} |"
          for d in datasets),
        "",
        "| scale | scenario | status | wall s | CPU s | peak RSS MB | events/s | input MB/s | note |",
        "|---|---|---|---|---|---|---|---|---|",
        *(_result_row(r) for r in results),
        "",
        "## Aims (DuckDB engine into the embedded target)",
        "",
        *aims(results),
        "",
        "Wall and CPU are of the whole process tree (CPU: user + system); a PostgreSQL server's own work is "
        "not in the tree. Events/s and MB/s are per wall second.",
        "",
    ]
    (directory / "latest.md").write_text("\n".join(md))
    return path


def merge(paths: list[Path], directory: Path) -> Path:
    """Re-render runs (several JSON files) as one table: per (scale, scenario) the latest run's result."""
    runs = [json.loads(p.read_text()) for p in paths]
    results = list({(r["scale"], r["scenario"]): dict(r, run=run["run"])
                    for run in runs for r in run["results"]}.values())
    datasets = list({d["scale"]: d for run in runs for d in run["datasets"]}.values())
    info = dict(runs[0]["machine"], load_average_end=runs[-1]["machine"].get("load_average_end"))
    return write(results, datasets, info, directory, "+".join(run["run"] for run in runs))


if __name__ == "__main__":
    import sys

    print(merge([Path(p) for p in sys.argv[1:]], Path(__file__).parent / "results"))
