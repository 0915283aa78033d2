"""The errors sparkify raises on purpose, each with the exit code the command line gives it.

A caller of the Python API can catch `SparkifyError` for all of them, or one
kind. Each is also the built-in exception it used to be (`ConfigError` is a
ValueError, `TargetError` a RuntimeError, ...), so older `except` clauses
keep working. Imports nothing from sparkify: every layer may raise these.

Exit codes: 0 ok, 1 the run (or command) failed, 2 usage or configuration,
3 data-quality checks failed, 4 reject limit exceeded.
"""

from __future__ import annotations

import errno
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CHECKS, EXIT_REJECTS = 0, 1, 2, 3, 4


class SparkifyError(Exception):
    """Base of every error sparkify raises on purpose: the message is safe to print (no secrets)."""

    exit_code: int = EXIT_FAILED


class ConfigError(SparkifyError, ValueError):
    """A setting that is missing, misspelled or out of range: nothing was done."""

    exit_code = EXIT_USAGE


class SourceError(SparkifyError, ValueError):
    """A source that cannot be read: the message says which and why."""

    exit_code = EXIT_FAILED


class TargetError(SparkifyError, RuntimeError):
    """A target that cannot be reached or used."""

    exit_code = EXIT_FAILED


class RejectLimitExceeded(SparkifyError, RuntimeError):
    """Too many rejects: the run stopped before writing anything."""

    exit_code = EXIT_REJECTS


class ChecksFailed(SparkifyError):
    """At least one data-quality check found offending rows; `results` holds every check's result."""

    exit_code = EXIT_CHECKS

    def __init__(self, message: str, results: list[Any] | None = None):
        super().__init__(message)
        self.results = results or []


class EmptyRun(SparkifyError):
    """A run that loaded no record (`fail_on_empty`); `summary` is the run's summary (it was recorded)."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, summary: Any = None):
        super().__init__(message)
        self.summary = summary


NO_SPACE = "No space left on device"
SPILL_GAVE_UP = "max_temp_directory_size"
"""DuckDB words a spill that met the end of its disk as running out of memory, naming this setting (by default
the free space of the disk under its temp_directory), not the directory."""


def disk_full(exc: BaseException) -> bool:
    """Whether `exc` is a write that found its disk full, as the OS, pyarrow or DuckDB word it (not yet told)."""
    if isinstance(exc, SparkifyError):
        return False
    return getattr(exc, "errno", None) == errno.ENOSPC or NO_SPACE in str(exc) or SPILL_GAVE_UP in str(exc)
