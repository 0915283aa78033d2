"""The Parquet lake next to the DuckDB target on the same generated data: speed, and the files it writes.

    python -m bench.lake_bench [--scales 100k,1m] [--repeats 3] [--s3]

For each scale (generated once by `sparkify generate`, see bench/datasets.py)
and each repeat, in rotating order so drift on a shared machine hits every
target alike, each target is loaded from scratch in its own measured process:
the DuckDB file, the lake in the spec's layout (songs by year and artist),
the compact lake (songs by year), and with --s3 both lakes on the loopback S3
server (moto: about 20 ms a request here). The lake is then run again on the same input (a rerun: nothing new).
Reported: median wall time, events/s, the lake/DuckDB ratio, the `load`
stage (merge + write + commit), and per table the files and bytes the lake
wrote (from its manifest). Prints a markdown table; --out writes the JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

from rich.console import Console

from bench import datasets, measure

console = Console(stderr=True)


def targets(work: Path, s3: bool) -> dict[str, str]:
    found = {"duckdb": str(work / "star.duckdb"), "lake": str(work / "lake"),
             "lake compact": f"{work / 'compact'}?layout=compact"}
    if s3:
        bucket = _bucket()
        found["lake on S3"] = f"s3://{bucket}/lake"
        found["lake compact on S3"] = f"s3://{bucket}/compact?layout=compact"
    return found


def _bucket() -> str:
    import boto3

    name = "bench-" + uuid.uuid4().hex[:12]
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def sparkify_run(data: datasets.Dataset, target: str) -> tuple[measure.Measurement, dict]:
    argv = [sys.executable, "-m", "sparkify.cli", "run", "--songs", str(data.song_data), "--logs",
            str(data.log_data), "--target", target, "--json"]
    result = measure.run(argv)
    if result.exit_code != 0:
        raise SystemExit(f"{target}: exit {result.exit_code}\n{result.stderr[-2000:]}")
    return result, json.loads(result.stdout.strip().splitlines()[-1])


def lake_files(target: str) -> dict[str, dict[str, int]]:
    """Files and bytes per table folder of a lake's live version, from its manifest."""
    from sparkify.targets.lake import LakeTarget

    lake = LakeTarget.from_url(target, {})
    manifest = lake.store.current()
    return {name: {"files": len(entries), "bytes": sum(e.bytes for e in entries)}
            for name, entries in manifest.tables.items()}


def bench_scale(scale: str, repeats: int, s3: bool) -> dict:
    data = datasets.ensure(scale)
    console.log(f"{scale}: {data.events:,} events, {data.songs:,} song files, {data.input_bytes / 2**20:,.0f} MiB")
    runs: dict[str, list[dict]] = {}
    files: dict[str, dict] = {}
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory(prefix="lake-bench-", dir=os.environ.get("SPARKIFY_BENCH_TMP")) as tmp:
            names = list(targets(Path(tmp), s3).items())
            shift = repeat % len(names)
            for name, target in names[shift:] + names[:shift]:
                result, summary = sparkify_run(data, target)
                row = {"wall_s": result.wall_s, "cpu_s": result.cpu_s, "peak_rss_mb": result.peak_rss_mb,
                       "load_s": summary["timings"].get("load"), "timings": summary["timings"],
                       "tables": summary["tables"]}
                if name != "duckdb":
                    rerun, again = sparkify_run(data, target)
                    row["rerun_wall_s"] = rerun.wall_s
                    assert again["tables"] == summary["tables"], "a rerun changed the tables"
                    files[name] = lake_files(target)
                runs.setdefault(name, []).append(row)
                console.log(f"{scale} #{repeat + 1} {name}: {result.wall_s:.1f} s (load {row['load_s']} s)")
    return {"scale": scale, "events": data.events, "song_files": data.songs, "input_bytes": data.input_bytes,
            "runs": runs, "files": files}


def median(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def markdown(results: list[dict]) -> str:
    lines = ["| scale | target | wall s (median) | events/s | vs DuckDB | load stage s | rerun s | peak RSS MB |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for res in results:
        base = median(res["runs"]["duckdb"], "wall_s")
        for name, rows in res["runs"].items():
            wall = median(rows, "wall_s")
            lines.append(f"| {res['scale']} | {name} | {wall} | {res['events'] / wall:,.0f} | {wall / base:.2f}x | "
                         f"{median(rows, 'load_s')} | {median(rows, 'rerun_wall_s') or ''} | "
                         f"{median(rows, 'peak_rss_mb')} |")
    lines += ["", "| scale | layout | table | files | MiB |", "|---|---|---|---:|---:|"]
    for res in results:
        for name, tables in res["files"].items():
            for table, info in tables.items():
                lines.append(f"| {res['scale']} | {name} | {table} | {info['files']:,} | "
                             f"{info['bytes'] / 2**20:,.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="100k,1m", help="comma-separated: sample, 100k, 1m, ...")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--s3", action="store_true", help="also the lake on S3 (needs AWS_ENDPOINT_URL or AWS)")
    parser.add_argument("--out", help="write the raw figures as JSON here")
    args = parser.parse_args()
    results = [bench_scale(scale.strip(), args.repeats, args.s3) for scale in args.scales.split(",")]
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))
    print(markdown(results))


if __name__ == "__main__":
    main()
