"""What a target declares and must do.

A target stores; it never computes the contract. It tells the pipeline what
it supports as data (`Capabilities`: which engines may compute for it, which
batch hosts it stores from, whether it prints its statements), hands an
engine the state it needs (the ledger of loaded files, the song catalogue,
or a session to compute in), and lands a batch whole or not at all.

The mixins are the interfaces behind capabilities: `DuckDBHost` for a target
that lends the DuckDB and Spark engines a DuckDB connection, `WarehouseHost`
for one the in-warehouse engine computes inside, `Statements` for one that
can print a run's statements instead of running them (--dry-run).
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sparkify.batch import Batch, Run, SummaryFn, WriteResult
from sparkify.errors import TargetError  # noqa: F401  (its old home: every target raises it)
from sparkify.schema import SONG_RECORDS, STAR, TABLES, USER_LATEST

if TYPE_CHECKING:
    import duckdb

    from sparkify.staging import Warehouse


@dataclass(frozen=True)
class Capabilities:
    engines: tuple[str, ...]
    """The engines that may compute for this target, its default first."""
    accepts: frozenset[str]
    """The batch hosts (batch.DUCKDB, WAREHOUSE, SPARK) it can store from."""
    transactions: bool
    enforces_constraints: bool
    """Keys and foreign keys declared and enforced by the store itself (else `sparkify check` proves them)."""
    partitions: bool
    dry_run: bool = False
    """It can print a run's and a schema's statements instead of running them (the `Statements` mixin)."""
    incremental: bool = True
    """It keeps a ledger, so a run reads only new files; else every run rebuilds from the whole source."""


@dataclass(frozen=True)
class Step:
    """One statement of a run, with its parameters (never pasted into the text)."""

    purpose: str
    sql: str
    params: tuple | None = None


class Target(abc.ABC):
    capabilities: ClassVar[Capabilities]
    name: ClassVar[str]

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str, options: dict) -> Target:
        """Build the target from its --target value and the [target] config section."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the data goes, safe to print (no secrets)."""

    @abc.abstractmethod
    def session(self) -> AbstractContextManager[None]:
        """Hold the target for one run: connect, and keep other runs out until done."""

    @abc.abstractmethod
    def ledger(self) -> dict[str, tuple[int, str]]:
        """Files already loaded: path -> (size, modified)."""

    @abc.abstractmethod
    def write(self, batch: Batch, full_refresh: bool, summary: SummaryFn) -> WriteResult:
        """Merge the batch into the target atomically (or rebuild it on a full refresh)."""

    @abc.abstractmethod
    def create_schema(self, reset: bool = False) -> None:
        """Create the tables if missing; with reset, drop and recreate them empty."""

    @abc.abstractmethod
    def query(self, sql: str) -> tuple[list[str], Iterator[tuple]]:
        """Run one read-only SQL statement: column names and rows."""

    def row_counts(self) -> dict[str, int]:
        """Rows in each star table now, for the run's summary."""
        counts = {}
        for table in STAR:
            _, rows = self.query(f'SELECT count(*) FROM "{table.name}"')
            counts[table.name] = next(iter(rows))[0]
        return counts

    def close(self) -> None:
        """Release connections (a target may be used for several commands)."""


class DuckDBHost(abc.ABC):
    """A target whose batch the engine computes on a DuckDB connection the target provides."""

    @abc.abstractmethod
    def engine_connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection the engine computes in (within session())."""

    @abc.abstractmethod
    def catalogue_relation(self, con: duckdb.DuckDBPyConnection, full_refresh: bool) -> str:
        """Name, on the engine's connection, of the song records already loaded."""


class WarehouseHost(abc.ABC):
    """A SQL target the in-warehouse engine computes inside: raw records staged, the star built by SQL there."""

    warehouse: Warehouse

    @abc.abstractmethod
    def run_transaction(self, full_refresh: bool) -> AbstractContextManager[Any]:
        """The run's one transaction (a cursor), the star emptied first on a full refresh."""

    @abc.abstractmethod
    def prepare_staging(self, run: Run) -> Any:
        """Outside the transaction: what filling the staging tables needs (files parsed, or uploaded)."""

    @abc.abstractmethod
    def fill_staging(self, cursor: Any, run: Run, prepared: Any) -> None:
        """Inside the transaction: the staging tables filled from the run's files."""

    @abc.abstractmethod
    def staging_plan(self, run: Run) -> list[Step]:
        """The statements (or a comment standing for them) that fill the staging tables, for --dry-run."""


class Statements(abc.ABC):
    """A SQL target that can show what it would run (--dry-run): nothing is contacted."""

    @abc.abstractmethod
    def schema_plan(self, reset: bool) -> list[Step]:
        """The DDL of `sparkify schema` (with `reset`: drops first); also a run's first statements."""

    @abc.abstractmethod
    def write_plan(self, host: str) -> list[Step]:
        """The statements that store a batch computed on `host`."""


VERSIONED_STATE = (SONG_RECORDS.name, USER_LATEST.name)
"""The state tables whose columns tell state an earlier sparkify wrote (before play keys) from today's."""


def outdated_state(where: str, columns: dict[str, list[str]]) -> None:
    """Refuse an increment into state an earlier sparkify wrote (`columns`: what each of its state tables
    has): its stored plays lack the keys a late song is matched by, so only a rebuild can equal one."""
    missing = sorted(f"{name}.{c}" for name, have in columns.items() if have
                     for c in TABLES[name].column_names if c not in have)
    if missing:
        raise TargetError(f"{where} was written by an earlier sparkify (it lacks {', '.join(missing)}): "
                          "run once with --full-refresh to rebuild it")
