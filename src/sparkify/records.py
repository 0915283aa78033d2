"""The input record contract: fields, their types, and the SQL that validates them.

Both inputs are JSON objects whose fields each have a logical type. A value is
accepted when it converts without loss (a JSON number where text is expected
becomes its text; an integer may arrive as a number or as text); anything
else rejects the record with a reason naming the field. The SQL generated
here runs on DuckDB; the Spark engine implements the same table of fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sparkify.normalize import ASCII_WHITESPACE


@dataclass(frozen=True)
class Field:
    key: str  # the JSON key
    name: str  # the column it becomes
    type: str  # text | int | double


EVENT_FIELDS: tuple[Field, ...] = (
    Field("ts", "ts", "int"),
    Field("userId", "user_id", "int"),
    Field("sessionId", "session_id", "int"),
    Field("itemInSession", "item_in_session", "int"),
    Field("page", "page", "text"),
    Field("level", "level", "text"),
    Field("firstName", "first_name", "text"),
    Field("lastName", "last_name", "text"),
    Field("gender", "gender", "text"),
    Field("location", "location", "text"),
    Field("userAgent", "user_agent", "text"),
    Field("song", "song", "text"),
    Field("artist", "artist", "text"),
    Field("length", "length", "double"),
)

SONG_FIELDS: tuple[Field, ...] = (
    Field("song_id", "song_id", "text"),
    Field("title", "title", "text"),
    Field("artist_id", "artist_id", "text"),
    Field("artist_name", "artist_name", "text"),
    Field("artist_location", "artist_location", "text"),
    Field("artist_latitude", "artist_latitude", "double"),
    Field("artist_longitude", "artist_longitude", "double"),
    Field("duration", "duration", "double"),
    Field("year", "year", "int"),
)

EVENT_REQUIRED = ("ts",)
NEXTSONG_REQUIRED = ("user_id", "session_id", "item_in_session")
SONG_REQUIRED = ("song_id", "title", "artist_id", "artist_name", "duration")

INTEGER_PATTERN = "^-?[0-9]+(\\.0*)?$"
"""An integer written as a number or text; '12.0' is accepted, '12.5' is not."""

ID_TAIL = "-9223372036854775808"
"""Stands for a missing sessionId or itemInSession when ordering events: before any real one."""

RAW_TEXT_LIMIT = 65536
"""Longest raw text kept in rejects; longer lines keep their head and a note."""

HOLDS_NUL = "holds U+0000 (NUL), which PostgreSQL and Redshift text cannot store"
"""Why text holding U+0000 rejects its record: on every target alike, so that they all keep the same rows."""


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


WHITESPACE_SQL = " || ".join(f"chr({ord(c)})" for c in ASCII_WHITESPACE)
"""normalize.ASCII_WHITESPACE as a SQL expression (every code point is at most 32, the space)."""


def duckdb_macros() -> list[str]:
    """Macros for the ASCII fast path of normalize.py.

    sp_trim strips normalize.ASCII_WHITESPACE. A value whose byte length
    differs from its character length holds non-ASCII text and goes to the
    Python definition; the common value (nothing at or below the space at
    either end, no quote, not empty, ASCII) is returned after a few byte
    tests, and so is the common wrapped value ("Mozilla/5.0 ...", quotes and
    nothing else); the rest goes through sp_bare, which is exact.
    """
    return [
        f"CREATE OR REPLACE TEMP MACRO sp_trim(a) AS trim(a, {WHITESPACE_SQL})",
        "CREATE OR REPLACE TEMP MACRO sp_bare(a) AS CASE WHEN length(sp_trim(a)) >= 2 "
        "AND starts_with(sp_trim(a), '\"') AND ends_with(sp_trim(a), '\"') "
        "THEN nullif(sp_trim(substr(sp_trim(a), 2, length(sp_trim(a)) - 2)), '') ELSE nullif(sp_trim(a), '') END",
        "CREATE OR REPLACE TEMP MACRO sp_clean(a) AS CASE WHEN strlen(a) <> length(a) "
        "THEN sparkify_clean_text(a) "
        "WHEN starts_with(a, '\"') AND ends_with(a, '\"') AND strlen(a) >= 2 "
        "AND ascii(substr(a, 2, 1)) > 32 AND ascii(substr(a, strlen(a) - 1, 1)) > 32 "
        "THEN nullif(substr(a, 2, strlen(a) - 2), '') "
        "WHEN a = '' OR ascii(a) <= 32 OR ascii(right(a, 1)) <= 32 OR starts_with(a, '\"') THEN sp_bare(a) "
        "ELSE a END",
        "CREATE OR REPLACE TEMP MACRO sp_key(s) AS CASE WHEN strlen(s) <> length(s) "
        "THEN sparkify_match_key(s) ELSE lower(s) END",
    ]


def struct_type(fields: tuple[Field, ...]) -> str:
    """JSON structure for from_json/read_json: every field as VARCHAR, typed later by typed_sql."""
    return sql_literal(json.dumps({f.key: "VARCHAR" for f in fields}))


def read_json_columns(fields: tuple[Field, ...]) -> str:
    return "{" + ", ".join(f"{sql_literal(f.key)}: 'VARCHAR'" for f in fields) + "}"


def _q(key: str) -> str:
    return '"' + key.replace('"', '""') + '"'


def _typed(a: str, field: Field, lazy: bool) -> str:
    """SQL for a field's value from its text as read (column a); lazy text stays as read."""
    if field.type == "text":
        return a if lazy else f"sp_clean({a})"
    if field.type == "int":  # the common value is its integer's own text: a cast and a compare, no regex
        return (f"CASE WHEN TRY_CAST({a} AS BIGINT)::VARCHAR = {a} THEN TRY_CAST({a} AS BIGINT) "
                f"WHEN regexp_full_match(sp_bare({a}), {sql_literal(INTEGER_PATTERN)}) "
                f"THEN TRY_CAST(split_part(sp_bare({a}), '.', 1) AS BIGINT) END")
    return (f"CASE WHEN isfinite(TRY_CAST({a} AS DOUBLE)) THEN TRY_CAST({a} AS DOUBLE) "
            f"WHEN isfinite(TRY_CAST(sp_bare({a}) AS DOUBLE)) THEN TRY_CAST(sp_bare({a}) AS DOUBLE) END")


def _starts_with_bracket(a: str) -> str:
    return f"(({a} >= '[' AND {a} < '\\') OR ({a} >= '{{' AND {a} < '|'))"


def _error(a: str, field: Field) -> str:
    """SQL naming the problem with a field, or NULL.

    Text holding an object or array is only detectable with the raw line at
    hand; without it (the fast read) the answer is 'look closer'. Its first
    character is found by comparing with the byte ranges of '[' and '{', which
    DuckDB settles on the string's inlined prefix (starts_with reads the string).
    """
    x = _q(field.name)
    if field.type == "text":
        path = sql_literal(f"$.{field.key}")
        return (f"coalesce(CASE WHEN {_starts_with_bracket(a)} THEN CASE WHEN raw IS NULL "
                f"THEN '{CLOSER_LOOK}' WHEN json_type(raw, {path}) IN ('OBJECT', 'ARRAY') "
                f"THEN '{field.key}: expected text, got ' || lower(json_type(raw, {path})) END END, "
                f"CASE WHEN contains({a}, chr(0)) THEN '{field.key}: {HOLDS_NUL}' END)")
    what = "an integer in range" if field.type == "int" else "a finite number"
    return (f"CASE WHEN {x} IS NULL AND sp_bare({a}) IS NOT NULL "
            f"THEN '{field.key}: not {what}: ' || left(sp_bare({a}), 40) END")


CLOSER_LOOK = "needs a closer look"
"""The fast read's verdict on a record only the raw line can settle: its file is read again exactly."""


def typed_sql(source: str, fields: tuple[Field, ...], required: tuple[str, ...], lazy_text: bool) -> str:
    """SELECT that types the fields read as text and names each record's first problem.

    `source` provides source_file, line, raw (NULL when read by read_json),
    `parsed` (the line is a JSON object; NULL when unknown) and one VARCHAR
    column per field key. The result has source_file, line, raw, one column
    per field name, and `error` (NULL for a valid record).
    """
    n = range(1, len(fields) + 1)
    columns = ", ".join(f"{_typed(f'a{i}', f, lazy_text)} AS {_q(f.name)}" for i, f in zip(n, fields))
    problems = [_error(f"a{i}", f) for i, f in zip(n, fields)]
    problems += [f"CASE WHEN {_q(f.name)} IS NULL THEN '{f.key} is missing' END" for f in fields
                 if f.name in required]
    error = (
        "CASE WHEN parsed = false AND raw IS NOT NULL AND NOT json_valid(raw) THEN 'not valid JSON' "
        "WHEN parsed = false THEN 'not a JSON object, but ' || lower(json_type(raw)) "
        f"ELSE coalesce({', '.join(problems)}) END"
    )
    read = ", ".join(f"{_q(f.key)} AS a{i}" for i, f in zip(n, fields))
    kept = ", ".join(f"a{i}" for i in n)
    names = ", ".join(_q(f.name) for f in fields)
    return f"""
        SELECT source_file, line, raw, {names}, {error} AS error
        FROM (SELECT source_file, line, raw, parsed, {kept}, {columns}
              FROM (SELECT source_file, line, raw, parsed, {read} FROM {source}))
    """


def raw_json_source(lines: str, fields: tuple[Field, ...]) -> str:
    """A typed_sql source over raw lines (source_file, line, raw): each parsed with from_json."""
    return f"""(
        SELECT source_file, line, raw, s IS NOT NULL AND starts_with(ltrim(raw), '{{') AS parsed, unnest(s)
        FROM (SELECT source_file, line, raw, try(from_json(raw, {struct_type(fields)})) AS s FROM {lines})
    )"""
