"""Python values as Spark SQL text, for the engine's expressions written as SQL.

The engine builds its columns as SQL text (DataFrame.selectExpr, functions.expr):
one py4j call then carries a whole expression, where the Column API makes a
call for every function applied and every literal. A value that goes into
that text goes through these helpers, never through plain formatting: Spark
reads backslash escapes in string literals (spark.sql.parser.escapedStringLiterals
is false), so a regex's `\\z` has to be written `\\\\z`, and it substitutes
`${...}` in the text of any expression before parsing it.
"""

from __future__ import annotations

import math

_ESCAPES = {"\\": "\\\\", "'": "\\'"}


def string(text: str) -> str:
    """`text` as a Spark SQL string literal that reads back as exactly `text`.

    Backslashes and quotes are escaped; control characters, and the `$` of
    a `${`, are written as \\uXXXX escapes: a raw control character would reach
    the parser as it is, and `${` would start a variable substitution.
    """
    body = "".join(_ESCAPES.get(c) or (f"\\u{ord(c):04x}" if c < " " or c == "\x7f" else c) for c in text)
    return "'" + body.replace("${", "\\u0024{") + "'"


def double(value: float) -> str:
    """A finite float as a DOUBLE literal (a bare `0.001` would be a DECIMAL)."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value}")
    return f"{value!r}D"


def name(column: str) -> str:
    """A column or field name, quoted."""
    return "`" + column.replace("`", "``") + "`"


def strings(values) -> str:
    """Comma-separated string literals, for IN lists and function arguments."""
    return ", ".join(string(v) for v in values)
