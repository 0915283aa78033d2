"""One run: find new files, compute a batch with an engine, land it in a target.

Nothing is written before the batch is complete and within the reject
limit; the target then lands it in one atomic step.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass

import pyarrow as pa

from sparkify.engines.duckdb import Batch, DuckDBEngine
from sparkify.progress import Progress
from sparkify.schema import LOADED_FILES, arrow_schema
from sparkify.sources import SourceFile, list_files, new_files
from sparkify.targets.base import Target, WriteResult

log = logging.getLogger(__name__)


class RejectLimitExceeded(RuntimeError):
    """Too many rejects: the run stops before writing anything."""


@dataclass(frozen=True)
class RejectLimit:
    count: int | None = None
    percent: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> RejectLimit:
        if text is None or text == "":
            return cls()
        text = str(text).strip()
        try:
            if text.endswith("%"):
                return cls(percent=float(text[:-1]))
            return cls(count=int(text))
        except ValueError:
            raise ValueError(f"--max-rejects takes a number or a percentage, not {text!r}") from None

    def exceeded(self, rejected: int, read: int) -> bool:
        if self.count is not None and rejected > self.count:
            return True
        return self.percent is not None and read > 0 and 100.0 * rejected / read > self.percent


def _files_table(batch: Batch) -> pa.Table:
    rows = [
        {"path": f.path, "kind": kind, "size": f.size, "modified": f.modified,
         "records": batch.file_records.get(f.path, 0), "run_id": batch.run_id}
        for kind, files in (("song", batch.song_files), ("log", batch.log_files))
        for f in files
    ]
    return pa.Table.from_pylist(rows, schema=arrow_schema(LOADED_FILES))


def _reject_examples(batch: Batch, limit: int = 10) -> list[str]:
    rows = batch.con.execute(
        "SELECT source_file, line, reason FROM b_rejects ORDER BY kind, source_file, line LIMIT ?", [limit]
    ).fetchall()
    return [f"{path}:{line if line is not None else '?'}: {reason}" for path, line, reason in rows]


def make_engine(name: str, con, catalogue: str, options: dict):
    """The engine that computes a batch on `con`; every engine returns the same `Batch` tables."""
    if name == "duckdb":
        return DuckDBEngine(con, catalogue)
    if name == "spark":
        from sparkify.engines.spark import SparkEngine

        return SparkEngine(con, catalogue, options)
    raise ValueError(f"unknown engine {name!r}: duckdb or spark")


def run(
    target: Target,
    songs: str,
    logs: str,
    full_refresh: bool = False,
    max_rejects: RejectLimit = RejectLimit(),
    progress: Progress | None = None,
    engine_name: str = "duckdb",
    engine_options: dict | None = None,
) -> dict:
    """Run the pipeline once and return its summary (also stored in the target)."""
    progress = progress or Progress(quiet=True)
    started = time.perf_counter()
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]
    with progress.stage("list"):
        all_songs, all_logs = list_files(songs), list_files(logs)
    with target.session():
        ledger = {} if full_refresh else target.ledger()
        song_files: list[SourceFile] = new_files(all_songs, ledger)
        log_files: list[SourceFile] = new_files(all_logs, ledger)
        con = target.engine_connection()
        from sparkify import objectstore  # s3:// sources: DuckDB reads them through s3fs

        objectstore.register_for_sources(con, songs, logs)
        engine = make_engine(engine_name, con, target.catalogue_relation(con, full_refresh), engine_options or {})
        batch = engine.run(run_id, song_files, log_files, progress)
        con.register("sp_files_arrow", _files_table(batch))
        con.execute("CREATE OR REPLACE TEMP TABLE b_files AS SELECT * FROM sp_files_arrow")
        con.unregister("sp_files_arrow")
        read = batch.songs["read"] + batch.events["read"]
        if max_rejects.exceeded(batch.rejected, read):
            examples = "\n  ".join(_reject_examples(batch))
            raise RejectLimitExceeded(
                f"{batch.rejected} of {read} records rejected, over the limit; nothing was written. "
                f"First rejects:\n  {examples}"
            )
        skipped = {"songs": len(all_songs) - len(song_files), "logs": len(all_logs) - len(log_files)}

        def summary(result: WriteResult) -> str:
            return json.dumps(_summary(target, batch, result, skipped, progress, started, None, engine_name))

        with progress.stage("load"):
            result = target.write(batch, full_refresh, summary)
        tables = target.row_counts()
    return _summary(target, batch, result, skipped, progress, started, tables, engine_name)


def _summary(target, batch: Batch, result: WriteResult, skipped, progress, started, tables, engine) -> dict:
    events = dict(batch.events)
    events["loaded"] = result.songplays_inserted
    events["duplicate"] = events.pop("song_plays") - result.songplays_inserted
    events.pop("in_batch_duplicate", None)
    filtered = events.pop("filtered")
    events["filtered"] = sum(filtered.values())
    events["filtered_by_page"] = filtered
    return {
        "run_id": batch.run_id,
        "target": target.describe(),
        "engine": engine,
        "files": {
            "songs": {"new": len(batch.song_files), "skipped": skipped["songs"]},
            "logs": {"new": len(batch.log_files), "skipped": skipped["logs"]},
        },
        "accounting": {"songs": dict(batch.songs), "events": events},
        "tables": tables,
        "timings": {**progress.timings, "total": round(time.perf_counter() - started, 3)},
    }
