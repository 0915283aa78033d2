"""Text rules shared by every engine.

The Python functions here are the definition. Engines run a SQL fast path for
plain ASCII text (trim, unquote, lower-case: exactly what these functions do
to ASCII) and call these functions, vectorised, only on the rare values that
hold non-ASCII characters, which is where mojibake repair and Unicode
normalisation can change anything. A property test holds the two paths equal.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
              "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
"""What 'trimmed' strips: every character Python's str.strip() removes (Unicode White_Space, and the
ASCII separators U+001C-U+001F that Python counts too): spaces, tabs, line breaks, U+00A0, U+3000...
Written out, not derived from str.isspace() at import (a scan of every code point, a third of a second
at each start); tests/test_whitespace.py derives it and compares."""

ASCII_WHITESPACE = "".join(c for c in WHITESPACE if c < "\x80")
"""The ASCII part of WHITESPACE: what the engines' SQL fast path trims (non-ASCII values come here)."""

NON_ASCII_PATTERN = "[^\\x00-\\x7F]"
"""Regex (RE2 and Java alike) that selects the values the Python path must see."""

_MOJIBAKE = re.compile("[\u00c2-\u00f4][\u0080-\u00bf]")
MAX_REPAIR_ROUNDS = 3
"""Rounds of repair at most: the SQL engines repeat their one-round function this many times."""


def repair_mojibake(text: str) -> str:
    """Undo UTF-8 that was decoded as Latin-1, once or several times.

    A round is applied only when it is lossless: every character fits in
    Latin-1 and the bytes decode as UTF-8. Text that merely contains accents
    ("Beyoncé") fails that test and is returned unchanged.
    """
    for _ in range(MAX_REPAIR_ROUNDS):
        if not _MOJIBAKE.search(text):
            break
        try:
            text = text.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            break
    return text


def unquote(text: str) -> str:
    """Remove one pair of double quotes wrapping the whole value."""
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        return text[1:-1]
    return text


def clean_text(text: str | None) -> str | None:
    """A stored text value: repaired, NFC, trimmed, unquoted; '' means unknown."""
    return None if text is None else clean_repaired(repair_mojibake(text))


def clean_repaired(text: str | None) -> str | None:
    """clean_text after the repair: for a path that repairs mojibake elsewhere (Redshift SQL)."""
    if text is None:
        return None
    text = unicodedata.normalize("NFC", text).strip()
    text = unquote(text).strip()
    return text or None


def match_key(text: str | None) -> str | None:
    """The form in which a song title or artist name is compared: cleaned and case-folded."""
    return None if text is None else key_repaired(repair_mojibake(text))


def key_repaired(text: str | None) -> str | None:
    """match_key after the repair (see clean_repaired)."""
    cleaned = clean_repaired(text)
    return cleaned.casefold() if cleaned is not None else None


def _vectorised(fn):
    def apply(values: pa.Array) -> pa.Array:
        import pyarrow as pa  # only Spark's workers call these: the DuckDB path never loads pyarrow

        return pa.array([fn(v) for v in values.to_pylist()], type=pa.string())

    apply.__name__ = f"{fn.__name__}_arrow"
    apply.__doc__ = f"{fn.__name__} over an Arrow array (for DuckDB and Spark UDFs)."
    return apply


clean_text_arrow = _vectorised(clean_text)
match_key_arrow = _vectorised(match_key)
