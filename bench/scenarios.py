"""The benchmark's scenarios: named command lines. Adding a target or engine is one entry here.

Placeholders in a command: {python} (this interpreter), {songs} and {logs} (the
dataset's folders), {work} (an empty directory for this run), {pg_url} (a
fresh, empty PostgreSQL database for this run), {peers_python} (the modern-stack
peers' interpreter, with dlt and dbt-duckdb: bench/data/.venv-peers, made by
scripts/bench-peers.sh; $SPARKIFY_PEERS_VENV moves it). `requires` names what must be
present, else the scenario is reported 'unavailable': `env:VAR`, `module:name`
(importable by {python}), `peers:name` (importable by {peers_python}), `cmd:name`
(on PATH), `pg` (a PostgreSQL server, SPARKIFY_TEST_PG_URL). `output` says how to
read the command's stdout: a sparkify --json summary, or a baseline's own JSON (`phases`: the work done per
phase, which the harness extrapolates when the command stopped early).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

SPARKIFY = ("{python}", "-m", "sparkify.cli", "run", "--songs", "{songs}", "--logs", "{logs}")

_BENCH = Path(__file__).resolve().parent
PEERS_PYTHON = (_BENCH.parent / os.environ.get("SPARKIFY_PEERS_VENV", _BENCH / "data" / ".venv-peers")
                / "bin" / "python")
"""The interpreter of the peers' venv: dlt and dbt are never installed into the project's .venv."""
DLT_PEER = ("{peers_python}", "bench/baselines/dlt_peer.py")
"""dlt loads the raw JSON into DuckDB, then bench/baselines/peer_models.sql builds the star."""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    argv: tuple[str, ...]
    requires: tuple[str, ...] = ()
    output: str = "json"  # summary (sparkify run --json) | json | phases


SCENARIOS: list[Scenario] = [
    Scenario("duckdb", "sparkify run, DuckDB engine, into a fresh DuckDB file",
             (*SPARKIFY, "--target", "{work}/star.duckdb", "--json"), output="summary"),
    Scenario("duckdb_1500mb", "the same with --memory-limit 1500MB: what a DuckDB file's key indexes need for 10 M "
             "events in one run", (*SPARKIFY, "--target", "{work}/star.duckdb", "--memory-limit", "1500MB", "--json"),
             output="summary"),
    Scenario("postgres", "sparkify run, DuckDB engine, into a fresh PostgreSQL database",
             (*SPARKIFY, "--target", "{pg_url}", "--json"), ("pg", "module:sparkify.targets.postgres"),
             output="summary"),
    Scenario("lake", "sparkify run, DuckDB engine, into a fresh Parquet lake (a local directory)",
             (*SPARKIFY, "--target", "{work}/lake", "--json"), ("module:sparkify.targets.lake",), output="summary"),
    Scenario("spark", "sparkify run, Spark engine (local[2]), into a fresh DuckDB file",
             (*SPARKIFY, "--engine", "spark", "--target", "{work}/star.duckdb", "--json"),
             ("module:sparkify.engines.spark", "module:pyspark", "cmd:java"), output="summary"),
    Scenario("lake_1500mb", "the lake with --memory-limit 1500MB (its merge keys every row of the batch in memory)",
             (*SPARKIFY, "--target", "{work}/lake", "--memory-limit", "1500MB", "--json"),
             ("module:sparkify.targets.lake",), output="summary"),
    Scenario("bare_scan", "baseline: DuckDB reads every field the pipeline uses, one aggregate per column",
             ("{python}", "bench/baselines/bare_scan.py", "{logs}")),
    Scenario("plain_sql", "baseline: a ~60-line plain DuckDB SQL script without the spec's rules, into a DuckDB file",
             ("{python}", "bench/baselines/plain_duckdb.py", "{songs}", "{logs}", "{work}/plain.duckdb")),
    Scenario("original_etl", "baseline: pandas and one INSERT per row into PostgreSQL (the original projects)",
             ("{python}", "bench/baselines/original_etl.py", "{songs}", "{logs}", "{pg_url}",
              "--max-events", "10000"), ("pg",), output="phases"),
    Scenario("dlt_default", "peer: dlt's defaults (filesystem source, read_jsonl, INSERT load) into DuckDB, then "
             "the plain model SQL", (*DLT_PEER, "default", "{songs}", "{logs}", "{work}"), ("peers:dlt",)),
    Scenario("dlt_parquet", "peer: dlt's filesystem source and read_jsonl with loader_file_format=parquet, then "
             "the plain model SQL", (*DLT_PEER, "parquet", "{songs}", "{logs}", "{work}"), ("peers:dlt",)),
    Scenario("dlt_arrow", "peer: dlt resources yielding Arrow tables read with pyarrow.json (dlt's normalizer "
             "skipped), then the plain model SQL run directly with DuckDB",
             (*DLT_PEER, "arrow", "{songs}", "{logs}", "{work}"), ("peers:dlt",)),
    Scenario("dlt_dbt", "peer: the dlt_arrow load, then the same models run by `dbt run` (dbt-duckdb)",
             (*DLT_PEER, "dbt", "{songs}", "{logs}", "{work}"), ("peers:dlt", "peers:dbt.adapters.duckdb")),
]

DEFAULT = ["duckdb", "postgres", "lake", "spark", "bare_scan", "plain_sql", "original_etl"]


def by_name(names: list[str]) -> list[Scenario]:
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]
