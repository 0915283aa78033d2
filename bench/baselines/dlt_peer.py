"""The modern-stack peer: dlt loads the raw JSON into DuckDB, then the star as plain SQL models.

Usage (with the peers' interpreter, scripts/bench-peers.sh):
    python bench/baselines/dlt_peer.py VARIANT SONG_DIR LOG_DIR WORK

VARIANT:
  default  dlt's defaults: its filesystem source and read_jsonl (dicts through dlt's normalizer,
           INSERT-based load into DuckDB), then peer_models.sql run with DuckDB;
  parquet  the same with loader_file_format="parquet";
  arrow    dlt at its fastest documented setting: resources yield Arrow tables read with
           pyarrow.json (dlt's normalizer only moves the files), then peer_models.sql with DuckDB;
  dbt      the arrow load, then the same models run by dbt-duckdb (a dbt project written to WORK).

Writes WORK/peer.duckdb (dataset `raw` for the loaded tables, `main` for the star). Prints one
JSON line: songplays, matched plays, rows per table, seconds per stage, versions.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

MODELS = Path(__file__).with_name("peer_models.sql")
SOURCE = re.compile(r"\{\{\s*source\(\s*'(\w+)'\s*,\s*'(\w+)'\s*\)\s*\}\}")

# Text fields typed explicitly: Arrow would otherwise infer a number where a song's text is one.
SONG_TEXT = ("artist_id", "artist_location", "artist_name", "song_id", "title")
EVENT_TEXT = ("artist", "auth", "firstName", "gender", "lastName", "level", "location", "method", "page",
              "song", "userAgent", "userId")
SONG_BATCH = 2000  # song files per Arrow table


def models() -> dict[str, str]:
    """name -> SELECT, from peer_models.sql."""
    parts = re.split(r"^-- model: (\w+)\s*$", MODELS.read_text(), flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2])}


def files(root: str) -> list[Path]:
    return sorted(Path(root).rglob("*.json"))


# -- the Arrow resources ------------------------------------------------------------------------

def song_tables(song_dir: str):
    import pyarrow as pa
    import pyarrow.json as pj

    schema = pa.schema([(name, pa.string()) for name in SONG_TEXT]
                       + [("artist_latitude", pa.float64()), ("artist_longitude", pa.float64()),
                          ("duration", pa.float64()), ("year", pa.int64()), ("num_songs", pa.int64())])
    paths = files(song_dir)
    for start in range(0, len(paths), SONG_BATCH):
        # one object per song file: the files joined by newlines are newline-delimited JSON
        blob = b"\n".join(p.read_bytes().strip() for p in paths[start:start + SONG_BATCH])
        try:
            yield pj.read_json(io.BytesIO(blob), parse_options=pj.ParseOptions(explicit_schema=schema))
        except pa.ArrowInvalid:
            # a number where text belongs ("changed from string to number"): cast in Python
            rows = [json.loads(line) for line in blob.splitlines()]
            for row in rows:
                for name in SONG_TEXT:
                    if row.get(name) is not None and not isinstance(row[name], str):
                        row[name] = str(row[name])
            yield pa.Table.from_pylist(rows, schema=schema)


def event_tables(log_dir: str):
    import pyarrow as pa
    import pyarrow.json as pj

    schema = pa.schema([(name, pa.string()) for name in EVENT_TEXT]
                       + [("itemInSession", pa.int64()), ("length", pa.float64()), ("sessionId", pa.int64()),
                          ("ts", pa.int64()), ("status", pa.int64()), ("registration", pa.float64())])
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    for path in files(log_dir):
        yield pj.read_json(path, parse_options=options)


# -- the load -----------------------------------------------------------------------------------

def load(variant: str, song_dir: str, log_dir: str, work: Path, db: Path) -> dict[str, float]:
    import dlt

    pipeline = dlt.pipeline(pipeline_name="sparkify_peer", destination=dlt.destinations.duckdb(str(db)),
                            dataset_name="raw", pipelines_dir=str(work / "dlt"))
    if variant in ("default", "parquet"):
        from dlt.sources.filesystem import filesystem, read_jsonl

        songs = (filesystem(bucket_url=str(Path(song_dir).resolve()), file_glob="**/*.json")
                 | read_jsonl()).with_name("songs")
        events = (filesystem(bucket_url=str(Path(log_dir).resolve()), file_glob="**/*.json")
                  | read_jsonl()).with_name("events")
    else:
        songs = dlt.resource(song_tables(song_dir), name="songs")
        events = dlt.resource(event_tables(log_dir), name="events")
    seconds, started = {}, time.perf_counter()
    pipeline.extract([songs, events], loader_file_format="parquet" if variant == "parquet" else None)
    seconds["extract"] = time.perf_counter() - started
    started = time.perf_counter()
    pipeline.normalize()
    seconds["normalize"] = time.perf_counter() - started
    started = time.perf_counter()
    pipeline.load().raise_on_failed_jobs()
    seconds["load"] = time.perf_counter() - started
    return seconds


# -- the models ---------------------------------------------------------------------------------

def run_models_directly(db: Path) -> None:
    import duckdb

    con = duckdb.connect(str(db))
    for name, select in models().items():
        con.execute(f'CREATE OR REPLACE TABLE main."{name}" AS ' + SOURCE.sub(r"\1.\2", select))
    con.close()


def run_models_with_dbt(db: Path, work: Path) -> None:
    project = work / "dbt"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: sparkify_peer\nversion: '1.0'\nconfig-version: 2\nprofile: sparkify_peer\n"
        "model-paths: [models]\nmodels:\n  sparkify_peer:\n    +materialized: table\n")
    (project / "profiles.yml").write_text(
        f"sparkify_peer:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n      path: '{db}'\n"
        "      schema: main\n      threads: 1\n")
    (project / "models" / "sources.yml").write_text(
        "version: 2\nsources:\n  - name: raw\n    schema: raw\n    tables:\n      - name: songs\n"
        "      - name: events\n")
    for name, select in models().items():
        (project / "models" / f"{name}.sql").write_text(select + "\n")
    # `dbt run`, as a dbt project is run: its own process (its start-up is part of the cost)
    argv = [str(Path(sys.executable).with_name("dbt")), "run", "--project-dir", str(project),
            "--profiles-dir", str(project), "--target-path", str(project / "target"),
            "--log-path", str(project / "logs"), "--quiet"]
    done = subprocess.run(argv, check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"error: dbt run failed ({done.returncode}): {(done.stdout + done.stderr)[-1500:]}")


def main(variant: str, song_dir: str, log_dir: str, work_dir: str) -> None:
    if variant not in ("default", "parquet", "arrow", "dbt"):
        raise SystemExit(f"error: unknown variant {variant!r}")
    work = Path(work_dir).resolve()
    # keep dlt's and dbt's state in the run's directory, and nothing sent anywhere
    os.environ.setdefault("DLT_DATA_DIR", str(work / "dlt_data"))
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    db = work / "peer.duckdb"
    total = time.perf_counter()
    seconds = load("arrow" if variant == "dbt" else variant, song_dir, log_dir, work, db)
    started = time.perf_counter()
    if variant == "dbt":
        run_models_with_dbt(db, work)
    else:
        run_models_directly(db)
    seconds["models"] = time.perf_counter() - started

    from importlib import metadata

    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    rows = {name: con.execute(f'SELECT count(*) FROM main."{name}"').fetchone()[0] for name in models()}
    matched = con.execute("SELECT count(song_id) FROM main.songplays").fetchone()[0]
    loaded = {name: con.execute(f"SELECT count(*) FROM raw.{name}").fetchone()[0] for name in ("songs", "events")}
    con.close()
    versions = {}
    for package in ("dlt", "duckdb", "pyarrow", "dbt-core", "dbt-duckdb"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    seconds["total"] = time.perf_counter() - total
    print(json.dumps({"variant": variant, "songplays": rows["songplays"], "matched": matched, "rows": rows,
                      "loaded": loaded, "seconds": {k: round(v, 3) for k, v in seconds.items()},
                      "versions": versions}))


if __name__ == "__main__":
    if len(sys.argv) != 5:
        raise SystemExit(__doc__)
    main(*sys.argv[1:5])
