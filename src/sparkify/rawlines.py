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
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sparkify.records import RAW_TEXT_LIMIT

log = logging.getLogger(__name__)

UNDECODABLE = "not valid UTF-8 text"


@dataclass(frozen=True)
class Line:
    number: int
    offset: int
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


def iter_lines(path: str) -> Iterator[Line]:
    """Every line of a file with its 1-based number and byte offset, without loading it whole."""
    with _open_bytes(path) as data:
        size, pos, number = len(data), 0, 0
        cr = data.find(b"\r")
        while pos < size:
            nl = data.find(b"\n", pos)
            if 0 <= cr < pos:
                cr = data.find(b"\r", pos)
            ends = [e for e in (nl, cr) if e >= 0]
            end = min(ends) if ends else size
            number += 1
            yield Line(number, pos, bytes(data[pos:end]))
            if end < size and data[end : end + 1] == b"\r" and data[end + 1 : end + 2] == b"\n":
                end += 1
            pos = end + 1


def raw_text(data: bytes) -> str:
    """A reject's raw text: undecodable bytes shown as \\xNN, very long lines cut with a note."""
    text = data[:RAW_TEXT_LIMIT].decode("utf-8", "backslashreplace")
    if len(data) > RAW_TEXT_LIMIT:
        text += f"... [{len(data) - RAW_TEXT_LIMIT} more bytes]"
    return text


def decode_line(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def locate(
    rejected: dict[str, Counter],
    reasons: dict[tuple[str, str], str],
    unreadable: dict[str, dict[int, str]],
) -> Iterator[tuple[str, int | None, str, str]]:
    """(file, line, reason, raw) for every rejected line.

    `rejected[path]` counts the rejected lines by the text the SQL reader saw
    (which stops at a \x01 byte), `reasons[(path, text)]` says why, and
    `unreadable[path]` maps the byte offset of each line the reader could not
    decode to its reason. A line that cannot be found keeps its text and no number.
    """
    for path in sorted(set(rejected) | set(unreadable)):
        pending, offsets = Counter(rejected.get(path, {})), unreadable.get(path, {})
        for line in iter_lines(path):
            text = decode_line(line.data)
            if line.offset in offsets or text is None:
                yield path, line.number, offsets.get(line.offset, UNDECODABLE), raw_text(line.data)
                continue
            visible = text.split("\x01", 1)[0]
            if pending.get(visible):
                pending[visible] -= 1
                yield path, line.number, reasons[(path, visible)], raw_text(line.data)
        for raw, left in pending.items():
            for _ in range(left):
                log.warning("%s: a rejected line could not be located; kept without its number", path)
                yield path, None, reasons[(path, raw)], raw
