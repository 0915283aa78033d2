"""The record contract of records.py as Spark columns: the same fields, verdicts and reasons.

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
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

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


def full_match(col: Column, pattern: str) -> Column:
    """RE2's full match in Java regex: `$` would also match before a final newline."""
    return col.rlike("^(?:" + pattern.removeprefix("^").removesuffix("$") + ")\\z")


def non_ascii(col: Column) -> Column:
    """The values normalize.py's Python path must see (bytes and characters differ)."""
    return F.octet_length(col) != F.length(col)


def bare(col: Column) -> Column:
    """records' sp_bare: trimmed (normalize.ASCII_WHITESPACE), one pair of wrapping quotes removed, '' as NULL."""
    t = F.btrim(col, F.lit(ASCII_WHITESPACE))
    wrapped = (F.length(t) >= 2) & t.startswith('"') & t.endswith('"')
    inner = F.btrim(t.substr(F.lit(2), F.length(t) - 2), F.lit(ASCII_WHITESPACE))
    return F.nullif(F.when(wrapped, inner).otherwise(t), F.lit(""))


def integer(bare_text: Column) -> Column:
    """records' int typing, from the bare text: an integer as a number or text ('12.0' too), in BIGINT range."""
    return F.when(full_match(bare_text, INTEGER_PATTERN), F.substring_index(bare_text, ".", 1).try_cast("bigint"))


def duckdb_double(text: Column) -> Column:
    """TRY_CAST(text AS DOUBLE) as DuckDB does it (digit separators, '+-5'), possibly not finite."""
    return F.when(text.rlike(DUCKDB_DOUBLE),
                  F.replace(F.replace(text, F.lit("_"), F.lit("")), F.lit("+-"), F.lit("-")).try_cast("double"))


def finite(value: Column) -> Column:
    return F.when(~F.isnan(value) & (F.abs(value) != F.lit(float("inf"))), value)


def _variant_type(raw: Column, key: str) -> Column:
    """The JSON type of one key of the line, from a typed parse: only ever reached on rare values."""
    return F.schema_of_variant(F.try_variant_get(F.try_parse_json(raw), f"$.{key}", "variant"))


def _python_float(java: Column) -> Column:
    """A float Java wrote as d.dddEn, as DuckDB (and Python's repr) write it: 1e-05, 12345678.0, 1e+22."""
    fixed = F.regexp_replace(F.regexp_replace(java.try_cast("decimal(38,21)").cast("string"), "0+$", ""),
                             "\\.$", ".0")
    sci = F.regexp_replace(F.regexp_replace(F.regexp_replace(java, "\\.0E", "E"), "E([0-9])", "e+$1"),
                           "E-", "e-")
    magnitude = F.abs(java.try_cast("double"))
    return F.when((magnitude >= 1e-4) & (magnitude < 1e16), fixed).otherwise(
        F.regexp_replace(sci, "e([+-])([0-9])$", "e$10$2"))


def _rare_number(value: Column) -> tuple[Column, Column]:
    """(Java wrote a float, Jackson wrote NaN or an overflow as a quoted word): values DuckDB writes otherwise."""
    java_float = value.contains("E") & value.rlike(_JAVA_SCI)
    quoted_word = value.startswith('"') & value.isin('"Infinity"', '"-Infinity"', '"NaN"')
    return java_float, quoted_word


def _token(raw: Column, key: str) -> Column:
    """The key's value as written on the line when it is a number or a NaN/Infinity literal, else ''."""
    return F.regexp_extract(raw, f'"\\Q{key}\\E"\\s*:\\s*(-?(?:[0-9][0-9.eE+-]*|Infinity|NaN))', 1)


def as_read(value: Column, token: Column) -> Column:
    """A field's text as DuckDB's from_json gives it, from Jackson's: numbers written the same way.

    Jackson writes a float as Java does (1.0E-5), NaN and an overflowing
    number as "NaN" and "Infinity"; DuckDB writes Python's repr and keeps the
    literal's or the overflow's text. `token` (the line's own text for the
    key, NULL when not looked up) tells a number from a string that looks like one.
    """
    java_float, quoted_word = _rare_number(value)
    return (F.when(java_float & (token != ""), _python_float(value))
            .when(quoted_word & (token != ""), token)
            .otherwise(value))


def single_value(text: Column) -> Column:
    """The text is exactly one JSON value: a sentinel after it must come out as the second element."""
    parsed = F.from_json(F.concat(F.lit("["), text, F.lit(",0]")), T.ArrayType(T.StringType()),
                         {"allowSingleQuotes": "false"})
    return F.coalesce(F.size(parsed) == 2, F.lit(False))


def is_object_text(text: Column) -> Column:
    """DuckDB's `json_valid(text) AND json_type(text) = 'OBJECT'`."""
    return F.btrim(text, F.lit(JSON_WS)).startswith("{") & single_value(text)


def _decimal(n: int) -> Column:
    return F.lit(str(n)).cast("decimal(38,0)")


def _json_type(t: Column) -> Column:
    """lower(json_type(...)) as DuckDB names it, for the trimmed text of a valid JSON value."""
    first = t.substr(1, 1)
    integral = t.rlike("^-?(0|[1-9][0-9]*)$")
    in_range = F.when(t.startswith("-"), t.try_cast("decimal(38,0)") >= _decimal(_INT64_MIN)).otherwise(
        t.try_cast("decimal(38,0)") <= _decimal(_UINT64_MAX))
    number = F.when(integral & in_range, F.when(t.startswith("-"), "bigint").otherwise("ubigint")).otherwise("double")
    return (F.when(first == "{", "object").when(first == "[", "array").when(first == '"', "varchar")
            .when(first.isin("t", "f"), "boolean").when(first == "n", "null").otherwise(number))


def struct_schema(fields: tuple[Field, ...]) -> T.StructType:
    """Every field as text (typed afterwards, as records.struct_type does) plus the corrupt-record column."""
    return T.StructType([T.StructField(f.key, T.StringType()) for f in fields]
                        + [T.StructField(CORRUPT, T.StringType())])


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
    raw = F.col("raw")
    plain = raw.startswith("{") & raw.endswith("}")  # nothing to trim: most lines
    body = F.when(plain, raw).otherwise(F.btrim(raw, F.lit(JSON_WS)))
    j = lines.select("*", F.from_json(raw, struct_schema(fields), JSON_OPTIONS).alias("_j"), body.alias("_body"))
    value = {f.name: F.col(f"_j.`{f.key}`") for f in fields}
    corrupt = F.col(f"_j.{CORRUPT}").isNotNull()
    starts = raw.startswith("{") | F.ltrim(raw).startswith("{")
    size = F.octet_length("_body")
    first_close = F.octet_length(F.substring_index("_body", "}", 1))  # in bytes: '}' is one byte
    suspect = (size > 0) & (first_close + 1 != size)  # something after the first '}', or no '}'
    rare = j.select("*", F.when(corrupt | ~starts | suspect, single_value(raw)).alias("_single"),
                    *(F.when(_rare_number(value[f.name])[0] | _rare_number(value[f.name])[1], _token(raw, f.key))
                      .alias(f"_t_{f.name}") for f in fields))
    parsed = ~corrupt & starts & (~suspect | F.col("_single"))
    keep = [*lines.columns, "_body", "_single"]
    a = rare.select(*keep, parsed.alias("parsed"),
                    *(as_read(value[f.name], F.col(f"_t_{f.name}")).alias(f"a_{f.name}") for f in fields))
    texts = [f for f in fields if f.type == "text"]
    numbers = [f for f in fields if f.type != "text"]
    doubles = [f for f in numbers if f.type == "double"]
    b = a.select("*", *(bare(F.col(f"a_{f.name}")).alias(f"b_{f.name}") for f in numbers),
                 *(F.when(F.col(f"a_{f.name}").startswith("{") | F.col(f"a_{f.name}").startswith("["),
                          F.lower(F.regexp_extract(_variant_type(raw, f.key), "^(OBJECT|ARRAY)", 1)))
                   .alias(f"n_{f.name}") for f in texts),
                 F.when(~F.col("parsed") & F.col("_single"), _json_type(F.col("_body"))).alias("_type"))
    cast = b.select("*", *(duckdb_double(F.col(f"{p}_{f.name}")).alias(f"{p}d_{f.name}")
                           for f in doubles for p in ("a", "b")))
    typed = cast.select("*", *((integer(F.col(f"b_{f.name}")) if f.type == "int"
                                else F.coalesce(finite(F.col(f"ad_{f.name}")), finite(F.col(f"bd_{f.name}"))))
                               .alias(f.name) for f in numbers))
    problems = []
    for f in fields:
        if f.type == "text":
            problems.append(F.coalesce(
                F.concat(F.lit(f"{f.key}: expected text, got "), F.nullif(f"n_{f.name}", F.lit(""))),
                F.when(F.col(f"a_{f.name}").contains("\u0000"), F.lit(f"{f.key}: {HOLDS_NUL}"))))
        else:
            what = "an integer in range" if f.type == "int" else "a finite number"
            shown = F.col(f"b_{f.name}")
            problems.append(F.when(F.col(f.name).isNull() & shown.isNotNull(),
                                   F.concat(F.lit(f"{f.key}: not {what}: "), F.left(shown, F.lit(40)))))
    not_object = F.when(~F.col("_single"), F.lit("not valid JSON")).otherwise(
        F.concat(F.lit("not a JSON object, but "), F.col("_type")))
    problem = F.when(~F.col("parsed"), not_object).otherwise(F.coalesce(*problems))
    out = typed.select("*", problem.alias("problem"))
    return out.drop("_body", "_single", "_type", *(f"n_{f.name}" for f in texts),
                    *(f"{p}_{f.name}" for f in numbers for p in ("a", "b")),
                    *(f"{p}d_{f.name}" for f in doubles for p in ("a", "b")))


def with_errors(df: DataFrame, fields: tuple[Field, ...], required: tuple[str, ...]) -> DataFrame:
    """Add `error`: the parse problem, else the first required field that is missing (NULL if valid).

    Every field must by now have its value column named after it (text
    cleaned or as read, as the caller's engine rule says).
    """
    missing = [F.when(F.col(f.name).isNull(), F.lit(f"{f.key} is missing")) for f in fields if f.name in required]
    return df.withColumn("error", F.coalesce(F.col("problem"), *missing))
