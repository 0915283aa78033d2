"""What a target declares and must do.

A target stores; it never computes the contract. It tells the pipeline what
it supports (as data, in `Capabilities`), hands the engine the state it
needs (the ledger of loaded files and the song catalogue), and lands a
`Batch` whole or not at all.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from sparkify.schema import STAR

if TYPE_CHECKING:
    import duckdb

    from sparkify.engines.duckdb import Batch


class TargetError(RuntimeError):
    """A target that cannot be reached or used: the message is safe to print."""


@dataclass(frozen=True)
class Capabilities:
    transactions: bool
    enforces_constraints: bool
    upsert: bool
    partitions: bool
    shares_duckdb_connection: bool = False
    """The engine may compute inside the target's own DuckDB connection (no copy)."""


@dataclass(frozen=True)
class WriteResult:
    songplays_inserted: int


SummaryFn = Callable[[WriteResult], str]
"""Builds the run's JSON summary once the write knows what it inserted."""


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
    def engine_connection(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection the engine computes in."""

    @abc.abstractmethod
    def ledger(self) -> dict[str, tuple[int, str]]:
        """Files already loaded: path -> (size, modified)."""

    @abc.abstractmethod
    def catalogue_relation(self, con: duckdb.DuckDBPyConnection, full_refresh: bool) -> str:
        """Name, on the engine's connection, of the song records already loaded."""

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
