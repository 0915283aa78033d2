"""Find the input files of a run and tell which of them are new.

A source is a directory (searched recursively for *.json), a glob, or an
object-store URL. Each file is identified by its path, size and modification
stamp; the target's ledger of loaded files says which ones a run can skip.

Local sources are walked here rather than with Path.rglob or glob.glob, which
skip a folder they cannot open without a word (its files would silently not
load) and, for `**`, follow symbolic links to folders (a link back up the
tree makes the walk endless). A folder that cannot be opened stops the run;
neither a folder source nor `**` descends into a symbolic link to a folder
(Python 3.13's pathlib rule); a *.json link that leads to no file is named
in a warning and skipped.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Iterator
from stat import S_ISREG

from sparkify.files import SourceError, SourceFile, is_remote

log = logging.getLogger(__name__)

__all__ = ["SourceError", "SourceFile", "is_remote", "list_files", "new_files"]


def list_files(source: str) -> list[SourceFile]:
    """Every JSON file under a source, sorted by path so runs are deterministic."""
    if is_remote(source):
        from sparkify import objectstore

        return objectstore.list_files(source)
    source = source.removeprefix("file://")
    if _has_magic(source):
        paths = _glob(source)
    elif os.path.isdir(source):
        paths = _walk(source)
    elif os.path.isfile(source):
        paths = [source]
    else:
        raise SourceError(f"source not found: {source}")
    files = []
    for path in sorted({os.path.abspath(p) for p in paths}):
        stat = _stat(path)
        if stat is not None:
            files.append(SourceFile(path, stat.st_size, str(stat.st_mtime_ns)))
    return files


def _has_magic(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def _stat(path: str) -> os.stat_result | None:
    """The file's stat; None for what is no regular file (a folder named *.json, a link that leads nowhere).

    A dangling link or a link loop is named in a warning: it looks like an
    input file, so dropping it silently would hide a broken delivery.
    """
    try:
        result = os.stat(path)
    except OSError as exc:
        if not os.path.islink(path):
            raise SourceError(f"cannot read {path}: {exc.strerror}") from exc
        log.warning("%s: skipped, a symbolic link that leads to no file (%s)", path, exc.strerror)
        return None
    return result if S_ISREG(result.st_mode) else None


def _entries(folder: str) -> list[os.DirEntry]:
    """A folder's entries; a folder that cannot be opened stops the run (its files would be lost)."""
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except OSError as exc:
        raise SourceError(f"cannot read folder {folder}: {exc.strerror}") from exc


def _walk(folder: str) -> Iterator[str]:
    """Every *.json entry under a folder source, without descending into symbolic links to folders."""
    for entry in _entries(folder):
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path)
        elif fnmatch.fnmatchcase(entry.name, "*.json"):
            yield entry.path


def _glob(pattern: str) -> Iterator[str]:
    """What glob.glob(pattern, recursive=True) matches, except that `**` does not descend into symbolic
    links to folders and a folder that cannot be opened stops the run. No folder to start from: no match."""
    parts = pattern.split(os.sep)
    fixed = next(i for i, part in enumerate(parts) if _has_magic(part))
    start = os.sep.join(parts[:fixed]) or (os.sep if pattern.startswith(os.sep) else os.curdir)
    if os.path.isdir(start):
        yield from _expand(start, parts[fixed:])


def _expand(folder: str, parts: list[str]) -> Iterator[str]:
    """The paths under `folder` that match the pattern components `parts`, by glob's rules: `**` matches
    any number of folders (none included), and a wildcard never matches a leading dot."""
    head, rest = parts[0], parts[1:]
    if head == "**" and rest:
        yield from _expand(folder, rest)
    for entry in _entries(folder):
        if entry.name.startswith(".") and not head.startswith("."):
            continue
        if head == "**":
            if not rest:
                yield entry.path
            if entry.is_dir(follow_symlinks=False):
                yield from _expand(entry.path, parts)
        elif fnmatch.fnmatchcase(entry.name, head):
            if not rest:
                yield entry.path
            elif os.path.isdir(entry.path):
                yield from _expand(entry.path, rest)


def new_files(
    files: list[SourceFile], ledger: dict[str, tuple[int, str]]
) -> list[SourceFile]:
    """The files not in the ledger, or changed since they were loaded."""
    return [f for f in files if ledger.get(f.path) != (f.size, f.modified)]
