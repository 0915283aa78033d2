"""What an engine is to the pipeline: it computes one run's batch for a target, and can say where.

An engine reads only the files of the `Run` it is given (the pipeline has
diffed them against the target's ledger), computes the batch tables wherever
it computes (`host`), and yields the batch while the target writes it: a
context, so that an engine computing inside the target's transaction (the
in-warehouse engine) commits only once the write is done.
"""

from __future__ import annotations

import abc
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from sparkify.batch import Batch, Run
from sparkify.progress import Progress
from sparkify.targets.base import Step, Target


class Engine(abc.ABC):
    name: ClassVar[str]
    slow_to_start: ClassVar[bool] = False
    """Starting it costs seconds (a JVM): a run with no new file to read is left to the DuckDB engine."""

    def __init__(self, options: dict[str, Any] | None = None):
        self.options = options or {}

    def describe(self, target: Target) -> str:
        """The engine as the run summary names it."""
        return self.name

    @abc.abstractmethod
    def host(self, target: Target) -> str:
        """Where the batch will live for this target (batch.DUCKDB, WAREHOUSE or SPARK)."""

    def plan(self, target: Target, run: Run) -> list[Step]:
        """The statements the engine sends to the target before its write (--dry-run); none by default."""
        return []

    @abc.abstractmethod
    def compute(self, target: Target, run: Run, progress: Progress) -> AbstractContextManager[Batch]:
        """The run's batch, held while the caller writes it."""
