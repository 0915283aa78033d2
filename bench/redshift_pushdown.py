"""PostgreSQL, two ways: the default path (DuckDB computes, binary COPY, merge) against --pushdown
(staging by COPY FROM STDIN, the star computed by the shared Redshift/PostgreSQL SQL in the server).

Each configuration loads the same generated dataset into a fresh database,
first load then a rerun with nothing new, and reports wall times and the
star's row counts (which must agree). Prints a markdown table.
Usage: bench/redshift_pushdown.py --events 100000 [--pg-url URL] [--data DIR]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console

from bench.pgscratch import scratch_database
from sparkify import generate
from sparkify.pipeline import run as pipeline_run
from sparkify.targets.postgres import PostgresTarget

console = Console()


def _load(kind: str, url: str, data: Path) -> tuple[float, dict]:
    songs, logs = str(data / "song_data"), str(data / "log_data")
    start = time.perf_counter()
    if kind == "pushdown":
        summary = pipeline_run(PostgresTarget.from_url(url, {}), songs, logs, engine_name="warehouse")
    else:
        summary = pipeline_run(PostgresTarget.from_url(url, {}), songs, logs)
    return time.perf_counter() - start, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", default="100000")
    parser.add_argument("--pg-url", default=os.environ.get("SPARKIFY_TEST_PG_URL"))
    parser.add_argument("--data", help="an existing dataset (song_data/, log_data/) instead of generating one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sparkify-bench-") as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "data"
        if not args.data:
            options = argparse.ArgumentParser()
            generate.add_arguments(options)
            generate.main(options.parse_args(["--out", str(data), "--events", args.events]))
        rows = []
        for kind in ("default", "pushdown"):
            with scratch_database(args.pg_url) as url:
                first, summary = _load(kind, url, data)
                rerun, _ = _load(kind, url, data)
            events = summary["accounting"]["events"]["read"]
            rows.append((kind, events, first, events / first, rerun, summary["tables"]))
    console.print("| path | events | first load (s) | events/s | rerun, nothing new (s) | star rows |", markup=False)
    console.print("|---|---:|---:|---:|---:|---|", markup=False)
    for kind, events, first, rate, rerun, tables in rows:
        star = ", ".join(f"{k} {v:,}" for k, v in tables.items())
        console.print(f"| {kind} | {events:,} | {first:.2f} | {rate:,.0f} | {rerun:.2f} | {star} |",
                      markup=False, soft_wrap=True)
    assert rows[0][5] == rows[1][5], "the two paths built different stars"


if __name__ == "__main__":
    main()
