"""The batch contract: what an engine hands a target, and what a run reports.

An engine computes one run's rows into the batch tables (`BATCH_TABLES`:
the star's tables, the catalogue's new song records, the rejects and the
files read, each named `b_<table>`) wherever it computes. `Batch.host`
says where that is: a DuckDB connection (`DuckDBBatch`: the DuckDB engine,
and the Spark engine once it has loaded its output there), the target's own
SQL session (`WarehouseBatch`: the in-warehouse engine), or Spark itself
(`SparkBatch`: the cluster job). A target declares the hosts it can store
from in its capabilities; the pipeline pairs engines and targets by them.
"""

from __future__ import annotations

import abc
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

import duckdb

from sparkify.errors import RejectLimitExceeded
from sparkify.normalize import clean_text, match_key
from sparkify.records import duckdb_macros
from sparkify.schema import DUCKDB_DIALECT, LOADED_FILES, REJECTS, Table
from sparkify.sources import SourceFile

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_TABLES = (
    "b_artists",
    "b_songs",
    "b_song_records",
    "b_users",
    "b_time",
    "b_songplays",
    "b_play_keys",
    "b_rejects",
)
"""The tables every engine computes. `b_users` also carries the tie-break columns of `_sparkify_user_latest`;
`b_song_records` holds the records that win over the stored ones (new song_ids, or a smaller file and line);
`b_play_keys` the match key of every play in `b_songplays`."""

FILES_TABLE = "b_files"
"""The files a run read, with their record counts: the ledger's new rows (schema.LOADED_FILES)."""

DUCKDB, WAREHOUSE, SPARK = "duckdb", "warehouse", "spark"
"""Where a batch's tables live (Batch.host, Capabilities.accepts)."""


def new_run_id() -> str:
    """A run's id: its UTC start to the second, then 8 random hex digits."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


@dataclass
class Run:
    """What a run knows before it computes: its id, its sources and the files to read."""

    songs: str
    logs: str
    song_files: list[SourceFile]
    log_files: list[SourceFile]
    full_refresh: bool = False
    listed: bool = True
    """The files were listed and checked against the ledger; else the engine reads the whole sources."""
    skipped: dict[str, int] = field(default_factory=lambda: {"songs": 0, "logs": 0})
    run_id: str = field(default_factory=new_run_id)
    started: datetime = field(default_factory=lambda: datetime.now(UTC))

    def files(self) -> list[tuple[str, SourceFile]]:
        """Every file of the run with its kind ('song' or 'log'), songs first."""
        return [("song", f) for f in self.song_files] + [("log", f) for f in self.log_files]


@dataclass
class Batch(abc.ABC):
    """One run's computed rows and their accounting (`songs`, `events`, records per file)."""

    host: ClassVar[str]
    run: Run
    songs: dict = field(default_factory=dict)
    events: dict = field(default_factory=dict)
    file_records: dict[str, int] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.run.run_id

    @property
    def song_files(self) -> list[SourceFile]:
        return self.run.song_files

    @property
    def log_files(self) -> list[SourceFile]:
        return self.run.log_files

    @property
    def rejected(self) -> int:
        return self.songs.get("rejected", 0) + self.events.get("rejected", 0)

    @property
    def read(self) -> int:
        return self.songs.get("read", 0) + self.events.get("read", 0)

    @abc.abstractmethod
    def reject_examples(self, limit: int = 10) -> list[str]:
        """The first rejects as `file:line: reason`, for the reject limit's message."""


def _examples(rows: list[tuple]) -> list[str]:
    return [f"{path}:{line if line is not None else '?'}: {reason}" for path, line, reason in rows]


REJECT_EXAMPLES = "SELECT source_file, line, reason FROM b_rejects ORDER BY kind, source_file, line LIMIT {limit}"


@dataclass
class DuckDBBatch(Batch):
    """The batch as temporary tables on a DuckDB connection."""

    host: ClassVar[str] = DUCKDB
    con: duckdb.DuckDBPyConnection | None = None

    def reader(self, table: str, batch_size: int = 200_000) -> pa.RecordBatchReader:
        """Stream a batch table as Arrow: how targets outside this connection receive rows."""
        return self.con.sql(f"SELECT * FROM {table}").to_arrow_reader(batch_size)

    def count(self, table: str) -> int:
        return self.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]

    def reject_examples(self, limit: int = 10) -> list[str]:
        return _examples(self.con.execute(REJECT_EXAMPLES.format(limit=int(limit))).fetchall())

    def add_files_table(self) -> None:
        """b_files: the ledger's new rows, from the run's files and the records counted in each."""
        rows = [
            {"path": f.path, "kind": kind, "size": f.size, "modified": f.modified,
             "records": self.file_records.get(f.path, 0), "run_id": self.run_id}
            for kind, f in self.run.files()
        ]
        temp_table_of_rows(self.con, FILES_TABLE, LOADED_FILES, rows)


def reject_order(reject: dict) -> tuple:
    """The order rejects are stored and shown in: kind, file, line."""
    return reject["kind"], reject["source_file"], reject["line"] or 0


def store_rejects(con: duckdb.DuckDBPyConnection, run_id: str, rejects: list[dict]) -> None:
    """b_rejects on a DuckDB connection: the run's rejects (kind, source_file, line, reason, raw), in order."""
    temp_table_of_rows(con, "b_rejects", REJECTS, [{"run_id": run_id, **r} for r in sorted(rejects, key=reject_order)])


def temp_table_of_rows(con: duckdb.DuckDBPyConnection, name: str, table: Table, rows: list[dict]) -> None:
    """A temporary table with `table`'s columns holding `rows` (dicts by column name), in one statement.

    The values go in as one DuckDB list per column. Not as Arrow: pyarrow imports
    pandas the first time it builds an array from Python values, which would
    weigh on the peak memory of every run for a table of a few rows.
    """
    columns = ", ".join(f"unnest(${i + 1}::{DUCKDB_DIALECT.types[c.type]}[]) AS {DUCKDB_DIALECT.quote(c.name)}"
                        for i, c in enumerate(table.columns))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {columns}",
                [[row.get(c.name) for row in rows] for c in table.columns]).fetchall()


@dataclass
class WarehouseBatch(Batch):
    """The batch as temporary tables in the target's SQL session, inside the run's open transaction."""

    host: ClassVar[str] = WAREHOUSE
    cursor: Any = None

    def reject_examples(self, limit: int = 10) -> list[str]:
        return _examples(self.cursor.execute(REJECT_EXAMPLES.format(limit=int(limit))).fetchall())


@dataclass
class SparkBatch(Batch):
    """The batch as Spark DataFrames named like the batch tables, the rejects as rows."""

    host: ClassVar[str] = SPARK
    tables: dict[str, Any] = field(default_factory=dict)
    rejects: list[dict] = field(default_factory=list)

    def reject_examples(self, limit: int = 10) -> list[str]:
        rows = sorted(self.rejects, key=reject_order)[:limit]
        return _examples([(r["source_file"], r["line"], r["reason"]) for r in rows])


_SIZE = re.compile(r"(?i)\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(i?)b?|b|bytes?)?\s*")


def size_bytes(text: str) -> int | None:
    """A DuckDB memory size ('600MB', '1.5GiB', '4000000', or as DuckDB reads it back: '572.2 MiB') in bytes;
    None if it is not one."""
    match = _SIZE.fullmatch(text)
    if not match:
        return None
    number, prefix, binary = match.groups()
    power = "kmgt".index(prefix.lower()) + 1 if prefix else 0
    return int(float(number) * (1024 if binary else 1000) ** power)


def configure(con: duckdb.DuckDBPyConnection, memory_limit: str, temp_dir: str | None) -> None:
    """Settings every DuckDB connection a batch lives on runs with: UTC, bounded memory, our UDFs.

    The UDFs are plain per-value Python functions: the SQL calls them only on
    the rare non-ASCII values (see normalize.py), so they never see the bulk.
    Their null handling is 'special' because a value of Unicode whitespace
    alone cleans to NULL (unknown), which DuckDB's default handling refuses.
    """
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # our own progress goes to stderr
    con.execute("SET preserve_insertion_order = false")
    con.execute("SET memory_limit = ?", [memory_limit])
    if temp_dir:
        con.execute("SET temp_directory = ?", [temp_dir])
    for name, fn in (("sparkify_clean_text", clean_text), ("sparkify_match_key", match_key)):
        try:
            con.create_function(name, fn, [duckdb.sqltype("VARCHAR")], duckdb.sqltype("VARCHAR"),
                                type="native", null_handling="special", side_effects=False)
        except duckdb.CatalogException:
            pass  # already registered on this database instance
    for macro in duckdb_macros():
        con.execute(macro)


# -- the reject limit ----------------------------------------------------------------


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

    def enforce(self, batch: Batch) -> None:
        """Raise before anything is written when the batch rejects more than the limit allows."""
        if self.exceeded(batch.rejected, batch.read):
            examples = "\n  ".join(batch.reject_examples())
            raise RejectLimitExceeded(
                f"{batch.rejected} of {batch.read} records rejected, over the limit; nothing was written. "
                f"First rejects:\n  {examples}"
            )


# -- what a write returns, and the run's summary -------------------------------------


@dataclass(frozen=True)
class WriteResult:
    songplays_inserted: int


SummaryFn = Callable[[WriteResult], str]
"""Builds the run's JSON summary once the write knows what it inserted (targets store it with the run)."""


def summarize(batch: Batch, result: WriteResult, target: str, engine: str, timings: dict[str, float],
              tables: dict[str, int] | None) -> dict:
    """The run's summary: files, accounting (read = loaded + filtered + duplicate + rejected), rows, timings."""
    events = dict(batch.events)
    events["loaded"] = result.songplays_inserted
    events["duplicate"] = events.pop("song_plays") - result.songplays_inserted
    events.pop("in_batch_duplicate", None)
    filtered = events.pop("filtered")
    events["filtered"] = sum(filtered.values())
    events["filtered_by_page"] = filtered
    run = batch.run
    return {
        "run_id": run.run_id,
        "target": target,
        "engine": engine,
        "files": {
            "songs": {"new": len(run.song_files), "skipped": run.skipped["songs"]},
            "logs": {"new": len(run.log_files), "skipped": run.skipped["logs"]},
        },
        "accounting": {"songs": dict(batch.songs), "events": events},
        "tables": tables,
        "timings": timings,
    }
