"""A source file as a run and the ledger know it, and the error a source that cannot be read raises.

Below both the local listing (sources.py) and the object store (objectstore.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from sparkify.errors import SourceError  # noqa: F401  (its old home: sources.py and objectstore.py raise it)


@dataclass(frozen=True)
class SourceFile:
    path: str
    size: int
    modified: str


def is_remote(source: str) -> bool:
    return "://" in source and not source.startswith("file://")
