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

from sparkify.normalize import WHITESPACE
from sparkify.records import INTEGER_PATTERN, Field

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
    """records' sp_bare: trimmed, one pair of wrapping quotes removed, '' as NULL."""
    t = F.btrim(col, F.lit(WHITESPACE))
    wrapped = (F.length(t) >= 2) & t.startswith('"') & t.endswith('"')
    inner = F.btrim(t.substr(F.lit(2), F.length(t) - 2), F.lit(WHITESPACE))
    return F.nullif(F.when(wrapped, inner).otherwise(t), F.lit(""))


def integer(bare_text: Column) -> Column:
    """records' int typing, from the bare text: an integer as a number or text ('12.0' too), in BIGINT range."""
    return F.when(full_match(bare_text, INTEGER_PATTERN), F.substring_index(bare_text, ".", 1).try_cast("bigint"))


def _finite_double(text: Column) -> Column:
    value = F.regexp_replace(F.regexp_replace(F.btrim(text, F.lit(" \t\n\x0b\x0c\r")), "_", ""),
                             "^\\+-", "-").try_cast("double")
    finite = ~F.isnan(value) & (F.abs(value) != F.lit(float("inf")))
    return F.when(text.rlike(DUCKDB_DOUBLE) & finite, value)


def double(text: Column, bare_text: Column) -> Column:
    """records' double typing: the text as read, else bare, as a finite number."""
    return F.coalesce(_finite_double(text), _finite_double(bare_text))


def _variant_type(raw: Column, key: str) -> Column:
    """The JSON type of one key of the line, from a typed parse: only ever reached on rare values."""
    return F.schema_of_variant(F.try_variant_get(F.try_parse_json(raw), f"$.{key}", "variant"))


def _python_float(java: Column) -> Column:
    """A float Java wrote as d.dddEn, as DuckDB (and Python's repr) write it."""
    sign, first, frac = (F.regexp_extract(java, _JAVA_SCI, i) for i in (1, 2, 3))
    exp = F.regexp_extract(java, _JAVA_SCI, 4).cast("int")
    digits = F.regexp_replace(F.concat(first, frac), "0+$", "")
    n = F.length(digits)
    fixed_large = F.when(n <= exp + 1, F.concat(digits, F.repeat(F.lit("0"), exp + 1 - n), F.lit(".0"))).otherwise(
        F.concat(digits.substr(F.lit(1), exp + 1), F.lit("."), digits.substr(exp + 2, F.lit(1 << 20))))
    fixed_small = F.concat(F.lit("0."), F.repeat(F.lit("0"), -exp - 1), digits)
    sci = F.concat(first, F.when(n > 1, F.concat(F.lit("."), digits.substr(F.lit(2), n))).otherwise(F.lit("")),
                   F.lit("e"), F.when(exp < 0, F.lit("-")).otherwise(F.lit("+")),
                   F.lpad(F.abs(exp).cast("string"), 2, "0"))
    body = F.when(exp.between(7, 15), fixed_large).when(exp.between(-4, -1), fixed_small).otherwise(sci)
    return F.concat(sign, body)


def as_read(value: Column, raw: Column, key: str) -> Column:
    """A field's text as DuckDB's from_json gives it, from Jackson's: numbers written the same way."""
    java_float = value.contains("E") & value.rlike(_JAVA_SCI)
    overflow = value.startswith('"') & value.isin('"Infinity"', '"-Infinity"')
    token = F.regexp_extract(raw, f'"\\Q{key}\\E"\\s*:\\s*(-?[0-9][0-9.eE+-]*)', 1)
    vtype = _variant_type(raw, key)
    return (F.when(java_float & (vtype.startswith("DECIMAL") | (vtype == "DOUBLE")), _python_float(value))
            .when(overflow & (token != ""), token)
            .otherwise(value))


def single_value(text: Column) -> Column:
    """The text is exactly one JSON value: a sentinel after it must come out as the second element."""
    parsed = F.from_json(F.concat(F.lit("["), text, F.lit(",0]")), T.ArrayType(T.StringType()),
                         {"allowSingleQuotes": "false"})
    return F.coalesce(F.size(parsed) == 2, F.lit(False))


def is_object_text(text: Column) -> Column:
    """DuckDB's `json_valid(text) AND json_type(text) = 'OBJECT'`."""
    return F.ltrim(text, F.lit(JSON_WS)).startswith("{") & single_value(text)


def _decimal(n: int) -> Column:
    return F.lit(str(n)).cast("decimal(38,0)")


def _json_type(raw: Column) -> Column:
    """lower(json_type(raw)) as DuckDB names it, for a line known to be valid JSON."""
    t = F.btrim(raw, F.lit(JSON_WS))
    first = t.substr(1, 1)
    big = t.try_cast("decimal(38,0)")
    integral = t.rlike("^-?(0|[1-9][0-9]*)$")
    return (F.when(first == "{", "object").when(first == "[", "array").when(first == '"', "varchar")
            .when(first.isin("t", "f"), "boolean").when(first == "n", "null")
            .when(integral & t.startswith("-") & (big >= _decimal(_INT64_MIN)), "bigint")
            .when(integral & ~t.startswith("-") & (big <= _decimal(_UINT64_MAX)), "ubigint")
            .otherwise("double"))


def struct_schema(fields: tuple[Field, ...]) -> T.StructType:
    """Every field as text (typed afterwards, as records.struct_type does) plus the corrupt-record column."""
    return T.StructType([T.StructField(f.key, T.StringType()) for f in fields]
                        + [T.StructField(CORRUPT, T.StringType())])


def read_fields(lines: DataFrame, fields: tuple[Field, ...]) -> DataFrame:
    """Parse `raw` of (source_file, line, raw): text fields as read (`a_<name>`), numbers typed, `problem`.

    `problem` is the first thing wrong with the record that does not depend
    on cleaning text (records.typed_sql's reasons, in its order); `parsed`
    says the line is a JSON object. Missing required fields are judged by
    `with_errors`, once text is cleaned. Each step is its own projection:
    Spark keeps a column it computed once, but would copy a nested
    expression into every place that uses it.
    """
    raw = F.col("raw")
    end = F.length(F.rtrim(raw, F.lit(JSON_WS)))
    one_value = F.when(F.instr(raw, "}") < end, single_value(raw)).otherwise(F.lit(True))
    j = lines.select("*", F.from_json(raw, struct_schema(fields), JSON_OPTIONS).alias("_j"))
    parsed = F.col(f"_j.{CORRUPT}").isNull() & F.ltrim(raw, F.lit(WHITESPACE)).startswith("{") & one_value
    keep = [c for c in lines.columns]
    a = j.select(*keep, parsed.alias("parsed"),
                 *(as_read(F.col(f"_j.`{f.key}`"), raw, f.key).alias(f"a_{f.name}") for f in fields))
    numbers = [f for f in fields if f.type != "text"]
    b = a.select("*", *(bare(F.col(f"a_{f.name}")).alias(f"b_{f.name}") for f in numbers))
    typed = b.select("*", *((integer(F.col(f"b_{f.name}")) if f.type == "int"
                             else double(F.col(f"a_{f.name}"), F.col(f"b_{f.name}"))).alias(f.name)
                            for f in numbers))
    problems = []
    for f in fields:
        text = F.col(f"a_{f.name}")
        if f.type == "text":
            nested = _variant_type(raw, f.key)
            problems.append(F.when(
                text.startswith("{") | text.startswith("["),
                F.when(nested.startswith("OBJECT"), F.lit(f"{f.key}: expected text, got object"))
                 .when(nested.startswith("ARRAY"), F.lit(f"{f.key}: expected text, got array"))))
        else:
            what = "an integer in range" if f.type == "int" else "a finite number"
            shown = F.col(f"b_{f.name}")
            problems.append(F.when(F.col(f.name).isNull() & shown.isNotNull(),
                                   F.concat(F.lit(f"{f.key}: not {what}: "), F.left(shown, F.lit(40)))))
    not_object = F.when(~single_value(raw), F.lit("not valid JSON")).otherwise(
        F.concat(F.lit("not a JSON object, but "), _json_type(raw)))
    problem = F.when(~F.col("parsed"), not_object).otherwise(F.coalesce(*problems))
    out = typed.select("*", problem.alias("problem"))
    return out.drop(*(f"a_{f.name}" for f in numbers), *(f"b_{f.name}" for f in numbers))


def with_errors(df: DataFrame, fields: tuple[Field, ...], required: tuple[str, ...]) -> DataFrame:
    """Add `error`: the parse problem, else the first required field that is missing (NULL if valid).

    Every field must by now have its value column named after it (text
    cleaned or as read, as the caller's engine rule says).
    """
    missing = [F.when(F.col(f.name).isNull(), F.lit(f"{f.key} is missing")) for f in fields if f.name in required]
    return df.withColumn("error", F.coalesce(F.col("problem"), *missing))
