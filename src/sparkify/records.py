"""The input record contract: fields, their types, and the SQL that validates them.

Both inputs are JSON objects whose fields each have a logical type. A value is
accepted when it converts without loss (a JSON number where text is expected
becomes its text; an integer may arrive as a number or as text); anything
else rejects the record with a reason naming the field. The SQL generated
here runs on DuckDB; the Spark engine implements the same table of fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparkify.normalize import NON_ASCII_PATTERN, WHITESPACE


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


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_macros() -> list[str]:
    """Macros the generated SQL relies on (the ASCII fast path of normalize.py)."""
    ws = " || ".join(f"chr({ord(c)})" for c in WHITESPACE)
    pattern = _sql_literal(NON_ASCII_PATTERN)
    return [
        f"CREATE OR REPLACE TEMP MACRO sp_trim(s) AS trim(s, {ws})",
        "CREATE OR REPLACE TEMP MACRO sp_unquote(s) AS CASE WHEN length(s) >= 2 AND "
        "starts_with(s, '\"') AND ends_with(s, '\"') THEN substr(s, 2, length(s) - 2) ELSE s END",
        "CREATE OR REPLACE TEMP MACRO sp_bare(s) AS nullif(sp_trim(sp_unquote(sp_trim(s))), '')",
        f"CREATE OR REPLACE TEMP MACRO sp_clean(s) AS CASE WHEN regexp_matches(s, {pattern}) "
        "THEN sparkify_clean_text(s) ELSE sp_bare(s) END",
        f"CREATE OR REPLACE TEMP MACRO sp_key(s) AS CASE WHEN regexp_matches(s, {pattern}) "
        "THEN sparkify_match_key(s) ELSE lower(s) END",
        f"CREATE OR REPLACE TEMP MACRO sp_int(s) AS CASE WHEN regexp_matches(sp_bare(s), "
        f"{_sql_literal(INTEGER_PATTERN)}) THEN TRY_CAST(split_part(sp_bare(s), '.', 1) AS BIGINT) END",
    ]


def _field_sql(i: int, field: Field) -> tuple[str, str]:
    """(value expression, error expression) for field i of the extracted lists v and t."""
    v, t = f"v[{i}]", f"t[{i}]"
    nested = f"{t} IN ('OBJECT', 'ARRAY')"
    if field.type == "text":
        value = f"sp_clean({v})"
        error = f"CASE WHEN {nested} THEN '{field.key}: expected text, got ' || lower({t}) END"
    elif field.type == "int":
        value = f"sp_int({v})"
        error = (
            f"CASE WHEN {nested} OR {t} = 'BOOLEAN' THEN '{field.key}: expected an integer, got ' || lower({t}) "
            f"WHEN sp_bare({v}) IS NOT NULL AND sp_int({v}) IS NULL "
            f"THEN '{field.key}: not an integer in range: ' || left(sp_bare({v}), 40) END"
        )
    else:
        value = f"TRY_CAST(sp_bare({v}) AS DOUBLE)"
        error = (
            f"CASE WHEN {nested} OR {t} = 'BOOLEAN' THEN '{field.key}: expected a number, got ' || lower({t}) "
            f"WHEN sp_bare({v}) IS NOT NULL AND NOT coalesce(isfinite(TRY_CAST(sp_bare({v}) AS DOUBLE)), false) "
            f"THEN '{field.key}: not a finite number: ' || left(sp_bare({v}), 40) END"
        )
    return value, error


def parse_sql(source: str, fields: tuple[Field, ...], required: tuple[str, ...]) -> str:
    """SELECT that types every field of the JSON text in `raw` and names the first problem.

    `source` must provide source_file, line and raw. The result keeps them and
    adds one column per field plus `error` (NULL for a valid record).
    """
    paths = ", ".join(_sql_literal(f"$.{f.key}") for f in fields)
    columns, errors = [], []
    for i, field in enumerate(fields, start=1):
        value, error = _field_sql(i, field)
        columns.append(f"{value} AS {field.name}")
        errors.append(error)
    missing = [
        f"CASE WHEN {_field_sql(fields.index(f) + 1, f)[0]} IS NULL THEN '{f.key} is missing' END"
        for f in fields
        if f.name in required
    ]
    error = (
        "CASE WHEN NOT json_valid(raw) THEN 'not valid JSON' "
        "WHEN json_type(raw) <> 'OBJECT' THEN 'not a JSON object, but ' || lower(json_type(raw)) "
        f"ELSE coalesce({', '.join(errors + missing)}) END"
    )
    return f"""
        SELECT source_file, line, raw, {', '.join(columns)}, {error} AS error
        FROM (
            SELECT source_file, line, raw,
                   CASE WHEN json_valid(raw) THEN json_extract_string(raw, [{paths}]) END AS v,
                   CASE WHEN json_valid(raw) THEN json_type(raw, [{paths}]) END AS t
            FROM {source}
        )
    """
