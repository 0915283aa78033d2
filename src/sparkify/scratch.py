"""Scratch directories (DuckDB spill files, Spark staging) that a killed run does not leave behind.

A run removes its scratch directory when it ends, but a SIGKILL ends it
without cleanup. So each directory holds an `owner` file, locked (flock) by
the run for as long as it lives; the kernel drops the lock when the process
dies, however it dies. Every run, before making its own, removes the
`sparkify-*` directories of the same parent whose lock it can take: their
owner is gone. A live run's directory is never touched, whatever its age.
A directory is emptied before its `owner` file goes (`_remove`), so a kill
while it is being removed still leaves it for the next run to sweep.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from sparkify.errors import SPILL_GAVE_UP, TargetError, disk_full

log = logging.getLogger(__name__)

PREFIX = "sparkify-"
OWNER = "owner"


def sweep(parent: str | Path) -> int:
    """Remove the scratch directories under `parent` whose run has died; return how many."""
    removed = 0
    for entry in Path(parent).glob(f"{PREFIX}*"):
        try:
            fd = os.open(entry / OWNER, os.O_RDWR)
        except OSError:
            continue  # not a scratch directory of ours (or one being made this instant)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # its run is alive
        finally:
            os.close(fd)
        _remove(entry)
        removed += 1
    if removed:
        log.info("removed %d scratch directories left by killed runs in %s", removed, parent)
    return removed


def _remove(path: str | Path) -> None:
    """Everything but the owner file, then the owner file, then the directory: until the last instant, what
    is left of it is still a directory the sweep recognises."""
    path = Path(path)
    with suppress(FileNotFoundError):  # gone already (DuckDB removes its spill directory when it closes)
        for entry in path.iterdir():
            if entry.name == OWNER:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    (path / OWNER).unlink(missing_ok=True)
    with suppress(OSError):
        path.rmdir()


@contextmanager
def scratch_dir(kind: str, parent: str | Path | None = None) -> Iterator[str]:
    """A fresh `sparkify-<kind>-*` directory under `parent` (default: the temp dir), removed on exit."""
    parent = str(parent or tempfile.gettempdir())
    sweep(parent)
    path = tempfile.mkdtemp(prefix=f"{PREFIX}{kind}-", dir=parent)
    fd = os.open(os.path.join(path, OWNER), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield path
    except Exception as exc:
        if disk_full(exc) and (SPILL_GAVE_UP in str(exc) or path in str(exc)):
            what = "DuckDB's spill files" if SPILL_GAVE_UP in str(exc) else "the run's scratch files"
            raise TargetError(f"no space left on device in {path}, writing {what}: the run stopped and wrote "
                              "nothing. Free space on that disk, or point TMPDIR at a larger one, and run again") \
                from exc
        raise
    finally:
        _remove(path)
        os.close(fd)
