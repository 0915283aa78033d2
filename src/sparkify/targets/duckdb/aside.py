"""A batch too big for one DuckDB transaction: build the new file aside, in slices, then swap it in.

DuckDB keeps the key indexes (ART) a transaction touches in memory until it
commits: 8.4 million time rows took 428 MB of index alone, and one
transaction loading 10 million events failed even at a 2 GB memory limit.
Committing and checkpointing every million rows lets DuckDB write the
indexes out and evict them, but commits in between would let a reader (or a
kill) see half a run. So the slices go into a copy of the file (an empty
file for a full refresh), and the finished copy replaces the target in one
rename: a reader or a kill sees the old file or the new one, never a mix.
Time rows are sliced by start_time, then plays by songplay_id, so that each
slice inserts into one stretch of its table's key index.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable

import duckdb

from sparkify.schema import RUNS, Table
from sparkify.targets.sqlmerge import SqlMerge

log = logging.getLogger(__name__)

CATALOG = "sp_build"
RUN_INSERT = "INSERT INTO {table} VALUES (?, now(), now(), ?)"
"""The run's row in _sparkify_runs: id, started, finished, summary."""
SLICES = (("b_time", "start_time", "time"), ("b_songplays", "songplay_id", "songplays"))
"""(batch table, key, merge statement) run slice by slice; the other statements run once, before them.
Each table is sliced along its own key, so that a slice inserts into one stretch of the table's key
index (plays by start_time would insert all over songplay_id's): every time row before any play."""


def building_path(path: str) -> str:
    return f"{path}.building"


def remove_leftovers(path: str) -> None:
    """What a run killed while building aside left behind (never the live file)."""
    for leftover in (building_path(path), building_path(path) + ".wal"):
        if os.path.exists(leftover):
            log.info("removing %s, left by an interrupted run", leftover)
            os.remove(leftover)


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    """Roll back after a failure; a commit that failed has ended the transaction already."""
    try:
        con.execute("ROLLBACK")
    except duckdb.TransactionException:
        pass


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AsideBuild:
    """Build `path`'s next version in `path`.building on the run's connection `con`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str, dialect, slice_rows: int,
                 create_tables: Callable[[duckdb.DuckDBPyConnection], None]):
        """`create_tables(con)` creates the star and state tables in `con`'s current database."""
        self.con, self.path, self.dialect, self.slice_rows = con, path, dialect, slice_rows
        self.create_tables = create_tables
        self.building = building_path(path)

    def _table(self, table: Table) -> str:
        return f"{CATALOG}.main.{self.dialect.quote(table.name)}"

    def build(self, full_refresh: bool, run_row: Callable[[int], list]) -> int:
        """Merge the batch (the b_* tables on `con`) into the copy; songplays inserted.

        `run_row(inserted)` gives the values of the run's row in _sparkify_runs.
        """
        if not full_refresh:
            self.con.execute("CHECKPOINT")  # the file alone then holds every committed row
            shutil.copyfile(self.path, self.building)
        self.con.execute(f"ATTACH ? AS {CATALOG}", [self.building])
        try:
            inserted = self._merge(full_refresh, run_row)
            self.con.execute(f"CHECKPOINT {CATALOG}")
            self.con.execute(f"DETACH {CATALOG}")
            _fsync(self.building)
        except BaseException:
            self._abandon()
            raise
        return inserted

    def _merge(self, full_refresh: bool, run_row: Callable[[int], list]) -> int:
        if full_refresh:
            home = self.con.execute("SELECT current_database()").fetchall()[0][0]
            self.con.execute(f"USE {CATALOG}")
            self.create_tables(self.con)
            self.con.execute(f"USE {self.dialect.quote(home)}")
        once = SqlMerge(self.dialect.quote, self._table, lambda name: name)
        sliced_purposes = {purpose for _, _, purpose in SLICES}
        self._transaction([(sql, []) for purpose, sql in once.statements() if purpose not in sliced_purposes])
        sliced = dict(SqlMerge(self.dialect.quote, self._table, lambda name: f"{name}_slice").statements())
        inserted = 0
        for stage, key, purpose in SLICES:
            bounds = self._bounds(stage, key)
            for number, (low, high) in enumerate(zip([None, *bounds], [*bounds, None]), start=1):
                self.con.execute(f"CREATE OR REPLACE TEMP TABLE {stage}_slice AS SELECT * FROM {stage} "
                                 f"WHERE ($low IS NULL OR {key} >= $low) AND ($high IS NULL OR {key} < $high)",
                                 {"low": low, "high": high})
                count = self._transaction([(sliced[purpose], [])])[0]
                inserted += count if purpose == "songplays" else 0
                self.con.execute(f"CHECKPOINT {CATALOG}")  # writes the slice's index pages out: they can be evicted
                log.info("%s: slice %d of %d written aside", purpose, number, len(bounds) + 1)
            self.con.execute(f"DROP TABLE {stage}_slice")
        self._transaction([(RUN_INSERT.format(table=self._table(RUNS)), run_row(inserted))])
        return inserted

    def _bounds(self, stage: str, key: str) -> list:
        """Values of `key` that cut the batch table `stage` into slices of about slice_rows."""
        rows = self.con.execute(f"SELECT count(*) FROM {stage}").fetchall()[0][0]
        cuts = -(-rows // self.slice_rows) - 1
        if cuts <= 0:
            return []
        fractions = ", ".join(str((i + 1) / (cuts + 1)) for i in range(cuts))
        found = self.con.execute(f"SELECT quantile_disc({key}, [{fractions}]) FROM {stage}").fetchall()[0][0]
        return sorted(set(found))

    def _transaction(self, statements: list[tuple[str, list]]) -> list[int]:
        """Run `statements` (SQL, parameters) in one transaction: the first value each one returns."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            counts = [self.con.execute(sql, params).fetchall()[0][0] for sql, params in statements]
            self.con.execute("COMMIT")
        except BaseException:
            rollback(self.con)
            raise
        return counts

    def _abandon(self) -> None:
        try:
            self.con.execute(f"DETACH DATABASE IF EXISTS {CATALOG}")
        finally:
            remove_leftovers(self.path)

    def swap(self) -> None:
        """Make the built copy the target: call once the target's own connection is closed."""
        if os.path.exists(self.path + ".wal"):
            raise RuntimeError(f"{self.path}.wal exists after closing: refusing to replace {self.path}")
        os.replace(self.building, self.path)
        _fsync(os.path.dirname(os.path.abspath(self.path)))

