"""A source file as a run and the ledger know it, and the error a source that cannot be read raises.

Below both the local listing (sources.py) and the object store (objectstore.py).
"""

from __future__ import annotations

from dataclasses import dataclass


class SourceError(ValueError):
    """A source that cannot be read: the message says which and why."""


@dataclass(frozen=True)
class SourceFile:
    path: str
    size: int
    modified: str


def is_remote(source: str) -> bool:
    return "://" in source and not source.startswith("file://")
