"""Find the input files of a run and tell which of them are new.

A source is a directory (searched recursively for *.json), a glob, or an
object-store URL. Each file is identified by its path, size and modification
stamp; the target's ledger of loaded files says which ones a run can skip.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path


class SourceError(ValueError):
    """A source that cannot be read: the message says which and why."""


@dataclass(frozen=True)
class SourceFile:
    path: str
    size: int
    modified: str


def is_remote(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def list_files(source: str) -> list[SourceFile]:
    """Every JSON file under a source, sorted by path so runs are deterministic."""
    if is_remote(source):
        from sparkify import objectstore

        return objectstore.list_files(source)
    source = source.removeprefix("file://")
    if any(ch in source for ch in "*?["):
        paths = [p for p in glob.glob(source, recursive=True) if os.path.isfile(p)]
    elif os.path.isdir(source):
        paths = [str(p) for p in Path(source).rglob("*.json") if p.is_file()]
    elif os.path.isfile(source):
        paths = [source]
    else:
        raise SourceError(f"source not found: {source}")
    files = []
    for path in sorted(os.path.abspath(p) for p in paths):
        stat = os.stat(path)
        files.append(SourceFile(path, stat.st_size, str(stat.st_mtime_ns)))
    return files


def new_files(
    files: list[SourceFile], ledger: dict[str, tuple[int, str]]
) -> list[SourceFile]:
    """The files not in the ledger, or changed since they were loaded."""
    return [f for f in files if ledger.get(f.path) != (f.size, f.modified)]
