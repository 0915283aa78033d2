"""Locate rejected lines in their files: the rare path, in plain Python.

The SQL engines read lines set-based and cannot number them cheaply; a
rejected record is rare, so its line number and its exact raw bytes are
recovered here, by scanning only the files that had a reject. Lines are
split the way the readers split them: at \\n, \\r\\n or \\r.
"""

from __future__ import annotations

import logging
import mmap
import os
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sparkify.records import RAW_TEXT_LIMIT

log = logging.getLogger(__name__)

UNDECODABLE = "not valid UTF-8 text"


@dataclass(frozen=True)
class Line:
    number: int
    data: bytes


@contextmanager
def _open_bytes(path: str) -> Iterator[bytes | mmap.mmap]:
    if "://" in path:
        from sparkify import objectstore

        yield objectstore.read_bytes(path)
        return
    if os.path.getsize(path) == 0:
        yield b""
        return
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        yield mm


def _spans(data: bytes | mmap.mmap) -> Iterator[tuple[int, int, int]]:
    """(number, start, end) of every line: its 1-based number and the byte range of its text."""
    size, pos, number = len(data), 0, 0
    cr = data.find(b"\r")
    while pos < size:
        nl = data.find(b"\n", pos)
        if 0 <= cr < pos:
            cr = data.find(b"\r", pos)
        ends = [e for e in (nl, cr) if e >= 0]
        end = min(ends) if ends else size
        number += 1
        yield number, pos, end
        if end < size and data[end : end + 1] == b"\r" and data[end + 1 : end + 2] == b"\n":
            end += 1
        pos = end + 1


def iter_lines(path: str) -> Iterator[Line]:
    """Every line of a file with its 1-based number, without loading the file whole."""
    with _open_bytes(path) as data:
        for number, start, end in _spans(data):
            yield Line(number, bytes(data[start:end]))


def raw_text(data: bytes, size: int | None = None) -> str:
    """A reject's raw text: undecodable bytes shown as \\xNN, very long lines cut with a note.

    `size` is the line's length when `data` holds only its start (a line of
    100 MB is not copied whole just to keep its first RAW_TEXT_LIMIT bytes).
    """
    size = len(data) if size is None else size
    text = data[:RAW_TEXT_LIMIT].decode("utf-8", "backslashreplace")
    if size > RAW_TEXT_LIMIT:
        text += f"... [{size - RAW_TEXT_LIMIT} more bytes]"
    return text


def storable(text: str | None) -> str | None:
    """A reject's raw text or reason as every target can store it: U+0000 shown as \\x00, the way
    raw_text shows an undecodable byte (PostgreSQL and Redshift text cannot hold U+0000)."""
    return text.replace("\x00", "\\x00") if text else text


def decode_line(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def locate(
    rejected: dict[str, Counter],
    reasons: dict[tuple[str, str], str],
    unreadable: dict[str, dict[int, str]],
    longest: int | None = None,
) -> Iterator[tuple[str, int | None, str, str]]:
    """(file, line, reason, raw) for every rejected line.

    `rejected[path]` counts the rejected lines by the text the SQL reader saw
    (up to and with the first \x01 byte), `reasons[(path, text)]` says why, and
    `unreadable[path]` maps the byte offset of an error the reader met in a
    line it could not read (any byte of the line or its end) to its reason.
    An offset, not a line number or a line start: DuckDB's line numbers and
    line positions are shifted by the empty lines before the bad one, its
    error positions are not; an empty line is never marked. A line longer
    than `longest` (the reader's limit) is rejected whether or not the
    reader reported it (DuckDB's read_csv dropped a 300 MB line without a
    word), and such a line is not copied whole.
    A line that cannot be found keeps its text and no number.
    """
    for path in sorted(set(rejected) | set(unreadable)):
        pending = Counter(rejected.get(path, {}))
        marks = deque(sorted(unreadable.get(path, {}).items()))
        with _open_bytes(path) as data:
            for number, start, end in _spans(data):
                reason = None
                while marks and marks[0][0] <= end and start < end:
                    reason = marks.popleft()[1]
                if longest is not None and end - start > longest:
                    reason = f"line longer than {longest} bytes ({end - start} bytes)"
                if reason is not None:
                    head = bytes(data[start : min(end, start + RAW_TEXT_LIMIT)])
                    yield path, number, reason, raw_text(head, end - start)
                    continue
                line = bytes(data[start:end])
                text = decode_line(line)
                if text is None:
                    yield path, number, UNDECODABLE, raw_text(line)
                    continue
                visible = text.split("\x01", 1)[0] + ("\x01" if "\x01" in text else "")
                if pending.get(visible):
                    pending[visible] -= 1
                    yield path, number, reasons[(path, visible)], raw_text(line)
        for raw, left in pending.items():
            for _ in range(left):
                log.warning("%s: a rejected line could not be located; kept without its number", path)
                yield path, None, reasons[(path, raw)], raw
