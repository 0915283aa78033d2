"""The record contract of records.py as Spark SQL: the same fields, verdicts and reasons.

DuckDB's exact reading (records.typed_sql over raw lines) is the reference;
this module states the same rules for Spark, field by field from
records.EVENT_FIELDS / SONG_FIELDS, so the two engines agree record for
record. Where Spark's JSON reader (Jackson) differs from DuckDB's (yyjson),
the difference is bridged here, on the rare values it concerns only:

- a line must hold one JSON value: Jackson stops after the first one, so a
  line whose first '}' is not its last character is checked once more;
- floats are rendered as DuckDB renders them (Python's repr), not Java's
  `1.0E-5`; an overflowing number keeps its text (`1E400`) as in DuckDB;
- an object or array in a text field is told from a string that merely
  looks like one with a typed (variant) parse of that line only.

Known differences, on input no real feed sends: trailing commas (DuckDB
accepts them, Spark rejects the line), duplicate keys (DuckDB keeps the
first value, Spark the last), lone UTF-16 surrogate escapes.

Every expression is Spark SQL text over column names (sql.py renders the
values in it), so that a projection of a few dozen columns costs the driver
one call to Spark, not one per function applied.
"""

from __future__ import annotations

from pyspark.sql import DataFrame

from sparkify.engines.spark.sql import double, name, string, strings
from sparkify.normalize import ASCII_WHITESPACE
from sparkify.records import HOLDS_NUL, INTEGER_PATTERN, Field

CORRUPT = "_corrupt_record"
JSON_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT, "allowSingleQuotes": "false"}
"""Jackson as strict as DuckDB: PERMISSIVE keeps a malformed line (in CORRUPT) instead of failing."""

JSON_WS = " \t\n\r"
"""Whitespace between JSON tokens (RFC 8259)."""

_CAST_WS = "[ \\t\\n\\x0B\\f\\r]*"
_DIGITS = "[0-9]+(?:_[0-9]+)*"
DUCKDB_DOUBLE = (
    f"^{_CAST_WS}\\+?-?(?:{_DIGITS}(?:\\.(?:{_DIGITS})?)?|\\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?{_CAST_WS}\\z"
)
"""Finite numbers DuckDB's TRY_CAST(text AS DOUBLE) accepts (Spark's cast also takes '1.5d', '0x1p3')."""

_JAVA_SCI = "^(-?)([1-9])\\.([0-9]+)E(-?[0-9]+)$"
_INT64_MIN, _UINT64_MAX = -(2**63), 2**64 - 1


def options(values: dict[str, str]) -> str:
    """A map of options, as Spark SQL's from_json takes them."""
    return "map(" + ", ".join(f"{string(k)}, {string(v)}" for k, v in values.items()) + ")"


def full_match(x: str, pattern: str) -> str:
    """RE2's full match in Java regex: `$` would also match before a final newline."""
    anchored = "^(?:" + pattern.removeprefix("^").removesuffix("$") + ")\\z"
    return f"({x} RLIKE {string(anchored)})"


def non_ascii(x: str) -> str:
    """The values normalize.py's Python path must see (bytes and characters differ)."""
    return f"(octet_length({x}) != length({x}))"


def bare(x: str) -> str:
    """records' sp_bare: trimmed (normalize.ASCII_WHITESPACE), one pair of wrapping quotes removed, '' as NULL."""
    t = f"btrim({x}, {string(ASCII_WHITESPACE)})"
    return (f"nullif(CASE WHEN length({t}) >= 2 AND startswith({t}, '\"') AND endswith({t}, '\"') "
            f"THEN btrim(substr({t}, 2, length({t}) - 2), {string(ASCII_WHITESPACE)}) ELSE {t} END, '')")


def integer(bare_text: str) -> str:
    """records' int typing, from the bare text: an integer as a number or text ('12.0' too), in BIGINT range."""
    return (f"CASE WHEN {full_match(bare_text, INTEGER_PATTERN)} "
            f"THEN try_cast(substring_index({bare_text}, '.', 1) AS BIGINT) END")


def duckdb_double(text: str) -> str:
    """TRY_CAST(text AS DOUBLE) as DuckDB does it (digit separators, '+-5'), possibly not finite."""
    return (f"CASE WHEN {text} RLIKE {string(DUCKDB_DOUBLE)} "
            f"THEN try_cast(replace(replace({text}, '_', ''), '+-', '-') AS DOUBLE) END")


def finite(value: str) -> str:
    return f"CASE WHEN NOT isnan({value}) AND abs({value}) != CAST('Infinity' AS DOUBLE) THEN {value} END"


def _variant_type(raw: str, key: str) -> str:
    """The JSON type of one key of the line, from a typed parse: only ever reached on rare values."""
    return f"schema_of_variant(try_variant_get(try_parse_json({raw}), {string('$.' + key)}, 'variant'))"


def _python_float(java: str) -> str:
    """A float Java wrote as d.dddEn, as DuckDB (and Python's repr) write it: 1e-05, 12345678.0, 1e+22."""
    trailing_zeros, final_dot, zero_exponent = string("0+$"), string("\\.$"), string("\\.0E")
    fixed = (f"regexp_replace(regexp_replace(CAST(try_cast({java} AS DECIMAL(38,21)) AS STRING), "
             f"{trailing_zeros}, ''), {final_dot}, '.0')")
    sci = (f"regexp_replace(regexp_replace(regexp_replace({java}, {zero_exponent}, 'E'), "
           f"'E([0-9])', {string('e+$1')}), 'E-', 'e-')")
    magnitude = f"abs(try_cast({java} AS DOUBLE))"
    return (f"CASE WHEN {magnitude} >= {double(1e-4)} AND {magnitude} < {double(1e16)} THEN {fixed} "
            f"ELSE regexp_replace({sci}, {string('e([+-])([0-9])$')}, {string('e$10$2')}) END")


_QUOTED_WORDS = strings(['"Infinity"', '"-Infinity"', '"NaN"'])


def _java_float(value: str) -> str:
    """Java wrote a float: DuckDB writes it otherwise."""
    return f"(contains({value}, 'E') AND {value} RLIKE {string(_JAVA_SCI)})"


def _quoted_word(value: str) -> str:
    """Jackson wrote NaN or an overflow as a quoted word: DuckDB keeps the line's text."""
    return f"(startswith({value}, '\"') AND {value} IN ({_QUOTED_WORDS}))"


def _token(raw: str, key: str) -> str:
    """The key's value as written on the line when it is a number or a NaN/Infinity literal, else ''."""
    pattern = f'"\\Q{key}\\E"\\s*:\\s*(-?(?:[0-9][0-9.eE+-]*|Infinity|NaN))'
    return f"regexp_extract({raw}, {string(pattern)}, 1)"


def as_read(value: str, token: str) -> str:
    """A field's text as DuckDB's from_json gives it, from Jackson's: numbers written the same way.

    Jackson writes a float as Java does (1.0E-5), NaN and an overflowing
    number as "NaN" and "Infinity"; DuckDB writes Python's repr and keeps the
    literal's or the overflow's text. `token` (the line's own text for the
    key, NULL when not looked up) tells a number from a string that looks like one.
    """
    return (f"CASE WHEN {_java_float(value)} AND {token} != '' THEN {_python_float(value)} "
            f"WHEN {_quoted_word(value)} AND {token} != '' THEN {token} ELSE {value} END")


def single_value(text: str) -> str:
    """The text is exactly one JSON value: a sentinel after it must come out as the second element."""
    parsed = f"from_json(concat('[', {text}, ',0]'), 'array<string>', {options({'allowSingleQuotes': 'false'})})"
    return f"coalesce(size({parsed}) = 2, false)"


def is_object_text(text: str) -> str:
    """DuckDB's `json_valid(text) AND json_type(text) = 'OBJECT'`."""
    return f"(startswith(btrim({text}, {string(JSON_WS)}), '{{') AND {single_value(text)})"


def _decimal(n: int) -> str:
    return f"CAST('{n}' AS DECIMAL(38,0))"


def _json_type(t: str) -> str:
    """lower(json_type(...)) as DuckDB names it, for the trimmed text of a valid JSON value."""
    first = f"substr({t}, 1, 1)"
    integral = f"{t} RLIKE {string('^-?(0|[1-9][0-9]*)$')}"
    in_range = (f"CASE WHEN startswith({t}, '-') THEN try_cast({t} AS DECIMAL(38,0)) >= {_decimal(_INT64_MIN)} "
                f"ELSE try_cast({t} AS DECIMAL(38,0)) <= {_decimal(_UINT64_MAX)} END")
    number = (f"CASE WHEN {integral} AND {in_range} THEN CASE WHEN startswith({t}, '-') THEN 'bigint' "
              f"ELSE 'ubigint' END ELSE 'double' END")
    return (f"CASE WHEN {first} = '{{' THEN 'object' WHEN {first} = '[' THEN 'array' "
            f"WHEN {first} = '\"' THEN 'varchar' WHEN {first} IN ('t', 'f') THEN 'boolean' "
            f"WHEN {first} = 'n' THEN 'null' ELSE {number} END")


def struct_schema(fields: tuple[Field, ...]) -> str:
    """Every field as text (typed afterwards, as records.struct_type does) plus the corrupt-record column."""
    return ", ".join(f"{name(key)} STRING" for key in (*(f.key for f in fields), CORRUPT))


def read_fields(lines: DataFrame, fields: tuple[Field, ...]) -> DataFrame:
    """Parse `raw` of (source_file, line, raw): text fields as read (`a_<name>`), numbers typed, `problem`.

    `problem` is the first thing wrong with the record that does not depend
    on cleaning text (records.typed_sql's reasons, in its order); `parsed`
    says the line is a JSON object. Missing required fields are judged by
    `with_errors`, once text is cleaned.

    Cost: one Jackson parse per line. Everything costly beyond it (a regex
    over the line, a second or typed parse) is needed by rare lines only, so
    each is computed once, in its own projection, under a cheap guard: Spark
    evaluates an expression that appears twice in a projection for every row,
    guard or not (common subexpression elimination), and a projection whose
    column is used twice is not merged into the next.
    """
    plain = "startswith(raw, '{') AND endswith(raw, '}')"  # nothing to trim: most lines
    body = f"CASE WHEN {plain} THEN raw ELSE btrim(raw, {string(JSON_WS)}) END"
    j = lines.selectExpr("*", f"from_json(raw, {string(struct_schema(fields))}, {options(JSON_OPTIONS)}) AS _j",
                         f"{body} AS _body")
    value = {f.name: f"_j.{name(f.key)}" for f in fields}
    corrupt = f"(_j.{name(CORRUPT)} IS NOT NULL)"
    starts = "(startswith(raw, '{') OR startswith(ltrim(raw), '{'))"
    size = "octet_length(_body)"
    first_close = "octet_length(substring_index(_body, '}', 1))"  # in bytes: '}' is one byte
    suspect = f"({size} > 0 AND {first_close} + 1 != {size})"  # something after the first '}', or no '}'
    rare = j.selectExpr("*", f"CASE WHEN {corrupt} OR NOT {starts} OR {suspect} THEN {single_value('raw')} END "
                             "AS _single",
                        *(f"CASE WHEN {_java_float(value[f.name])} OR {_quoted_word(value[f.name])} "
                          f"THEN {_token('raw', f.key)} END AS {name('_t_' + f.name)}" for f in fields))
    parsed = f"NOT {corrupt} AND {starts} AND (NOT {suspect} OR _single)"
    keep = [name(c) for c in lines.columns]
    a = rare.selectExpr(*keep, "_body", "_single", f"{parsed} AS parsed",
                        *(f"{as_read(value[f.name], name('_t_' + f.name))} AS {name('a_' + f.name)}"
                          for f in fields))
    texts = [f for f in fields if f.type == "text"]
    numbers = [f for f in fields if f.type != "text"]
    doubles = [f for f in numbers if f.type == "double"]
    a_ = {f.name: name(f"a_{f.name}") for f in fields}
    b_ = {f.name: name(f"b_{f.name}") for f in numbers}
    b = a.selectExpr("*", *(f"{bare(a_[f.name])} AS {b_[f.name]}" for f in numbers),
                     *(f"CASE WHEN startswith({a_[f.name]}, '{{') OR startswith({a_[f.name]}, '[') "
                       f"THEN lower(regexp_extract({_variant_type('raw', f.key)}, '^(OBJECT|ARRAY)', 1)) END "
                       f"AS {name('n_' + f.name)}" for f in texts),
                     f"CASE WHEN NOT parsed AND _single THEN {_json_type('_body')} END AS _type")
    cast = b.selectExpr("*", *(f"{duckdb_double(name(f'{p}_{f.name}'))} AS {name(f'{p}d_{f.name}')}"
                               for f in doubles for p in ("a", "b")))
    typed = cast.selectExpr("*", *(f"{integer(b_[f.name])} AS {name(f.name)}" if f.type == "int" else
                                   f"coalesce({finite(name('ad_' + f.name))}, {finite(name('bd_' + f.name))}) "
                                   f"AS {name(f.name)}" for f in numbers))
    problems = []
    for f in fields:
        if f.type == "text":
            problems.append(f"coalesce(concat({string(f'{f.key}: expected text, got ')}, "
                            f"nullif({name('n_' + f.name)}, '')), CASE WHEN contains({a_[f.name]}, {string(chr(0))}) "
                            f"THEN {string(f'{f.key}: {HOLDS_NUL}')} END)")
        else:
            what = "an integer in range" if f.type == "int" else "a finite number"
            problems.append(f"CASE WHEN {name(f.name)} IS NULL AND {b_[f.name]} IS NOT NULL "
                            f"THEN concat({string(f'{f.key}: not {what}: ')}, left({b_[f.name]}, 40)) END")
    not_object = "CASE WHEN NOT _single THEN 'not valid JSON' ELSE concat('not a JSON object, but ', _type) END"
    problem = f"CASE WHEN NOT parsed THEN {not_object} ELSE coalesce({', '.join(problems)}) END"
    return typed.selectExpr(*keep, "parsed", *(a_[f.name] for f in texts), *(name(f.name) for f in numbers),
                            f"{problem} AS problem")


def with_errors(df: DataFrame, fields: tuple[Field, ...], required: tuple[str, ...]) -> DataFrame:
    """Add `error`: the parse problem, else the first required field that is missing (NULL if valid).

    Every field must by now have its value column named after it (text
    cleaned or as read, as the caller's engine rule says).
    """
    missing = [f"CASE WHEN {name(f.name)} IS NULL THEN {string(f'{f.key} is missing')} END"
               for f in fields if f.name in required]
    return df.selectExpr("*", f"coalesce(problem, {', '.join(missing)}) AS error")
