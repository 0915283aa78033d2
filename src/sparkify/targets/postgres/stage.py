"""Fill the staging tables from the raw files with COPY FROM STDIN: what Redshift's COPY JSON does, on PostgreSQL.

Each record becomes one row of text values, one per JSONPaths entry, as
Redshift's COPY writes them into VARCHAR columns: a string as its
characters, a number as written, an object or array as its JSON text, an
empty string (BLANKSASNULL) or a missing key as NULL. A line COPY could
not load (not JSON, not an object, not UTF-8) becomes a load error, which
is what stl_load_errors holds on Redshift. Unlike Redshift's COPY, this
one also fills source_file, line and raw, so spec rejects keep them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg

from sparkify import rawlines
from sparkify.records import EVENT_FIELDS, SONG_FIELDS, Field
from sparkify.sources import SourceFile
from sparkify.staging import LOAD_ERRORS, RECORD_COLUMNS, STAGED_FILES, STAGING_EVENTS, STAGING_SONGS, q

WIDTH = 65535
"""The staging columns' width: events are cut to it (TRUNCATECOLUMNS), songs are rejected above it."""


class _NotJson(ValueError):
    pass


def _constant(name: str):
    raise _NotJson(name)


def _json_type(value: object) -> str:
    """The type name DuckDB's json_type gives, as the reference engine's reject reasons say it."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "varchar"
    if value is None:
        return "null"
    return "double" if "." in value or "e" in value.lower() else ("bigint" if value.startswith("-") else "ubigint")


NUL_ESCAPE = "\\u0000"
"""U+0000 in a staged string: its JSON escape, which PostgreSQL text can hold and the SQL rejects
(engines/warehouse/star.py, NUL_STAGED), as every engine rejects text holding U+0000."""


def staged_text(value: object) -> str | None:
    """A JSON value as COPY puts it in a VARCHAR column (numbers keep their written form)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return None if value.strip(" ") == "" else value.replace("\x00", NUL_ESCAPE)


def parse(text: str) -> tuple[dict | None, str | None]:
    """(the object, None) or (None, why COPY would not load it)."""
    try:
        value = json.loads(text, parse_int=str, parse_float=str, parse_constant=_constant)
    except (ValueError, RecursionError):
        return None, "not valid JSON"
    if not isinstance(value, dict):
        return None, f"not a JSON object, but {_json_type(value)}"
    return value, None


@dataclass
class Staged:
    """What one kind of source put into staging: rows, load errors, records per file."""

    rows: list[tuple] = field(default_factory=list)
    errors: list[tuple] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)


def _record(path: str, number: int, text: str, fields: tuple[Field, ...], kind: str, out: Staged) -> None:
    out.records[path] = out.records.get(path, 0) + 1
    obj, why = parse(text)
    values = [] if obj is None else [staged_text(obj.get(f.key)) for f in fields]
    if obj is not None and kind == "song" and any(v is not None and len(v) > WIDTH for v in values):
        why = "a value longer than the staging column (COPY without TRUNCATECOLUMNS)"
    if why is not None:
        out.errors.append((kind, path, number, why, rawlines.raw_text(text.encode())))
        return
    out.rows.append((path, number, text[:WIDTH], *(v if v is None else v[:WIDTH] for v in values)))


def _lines(path: str, kind: str, out: Staged, blank: str) -> Iterator[tuple[int, str]]:
    for line in rawlines.iter_lines(path):
        text = rawlines.decode_line(line.data)
        if text is None:
            out.records[path] = out.records.get(path, 0) + 1
            out.errors.append((kind, path, line.number, rawlines.UNDECODABLE, rawlines.raw_text(line.data)))
        elif text.strip(blank):
            yield line.number, text


def stage_events(files: list[SourceFile]) -> Staged:
    out = Staged()
    for f in files:
        for number, text in _lines(f.path, "event", out, " \t\r"):
            _record(f.path, number, text, EVENT_FIELDS, "event", out)
    return out


def stage_songs(files: list[SourceFile]) -> Staged:
    """A song file is one JSON object (over any number of lines) or one object per line."""
    out = Staged()
    for f in files:
        whole = _whole_object(f.path)
        if whole is not None:
            _record(f.path, 1, whole, SONG_FIELDS, "song", out)
            continue
        for number, text in _lines(f.path, "song", out, " "):
            _record(f.path, number, text, SONG_FIELDS, "song", out)
    return out


def _whole_object(path: str) -> str | None:
    with rawlines._open_bytes(path) as data:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError:
            return None
    return text if parse(text)[0] is not None else None


def copy_in(cur: psycopg.Cursor, events: Staged, songs: Staged, files: list[tuple[str, str, SourceFile]]) -> None:
    """COPY FROM STDIN into the staging tables; `files` are (kind, url, file) of this run."""
    for table, flds, staged in ((STAGING_EVENTS, EVENT_FIELDS, events), (STAGING_SONGS, SONG_FIELDS, songs)):
        names = ", ".join(q(c) for c in (*RECORD_COLUMNS, *(f.name for f in flds)))
        with cur.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
            for row in staged.rows:
                copy.write_row(row)
    with cur.copy(f"COPY {LOAD_ERRORS} (kind, source_file, line, reason, raw) FROM STDIN") as copy:
        for *where, raw in events.errors + songs.errors:
            copy.write_row((*where, rawlines.storable(raw)))
    records = {**songs.records, **events.records}
    with cur.copy(f"COPY {STAGED_FILES} (path, kind, size, modified, url, records) FROM STDIN") as copy:
        for kind, url, f in files:
            copy.write_row((f.path, kind, f.size, f.modified, url, records.get(f.path, 0)))
