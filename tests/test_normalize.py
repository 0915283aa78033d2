"""Text rules: the Python definition, and the SQL fast path that must agree with it on ASCII."""

from __future__ import annotations

import json

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparkify.batch import configure
from sparkify.normalize import clean_text, match_key, repair_mojibake
from sparkify.records import SONG_FIELDS, raw_json_source, typed_sql


def mojibake(text: str, times: int) -> str:
    for _ in range(times):
        text = text.encode("utf-8").decode("latin-1")
    return text


@pytest.mark.parametrize("original", ["Björk", "Beyoncé", "Sinisten tähtien alla", "Orchestre de la Société",
                                      "Alceu Valença", "Markus Krunegård", "Mötley Crüe", "Ζορμπάς", "東京"])
@pytest.mark.parametrize("times", [0, 1, 2])
def test_mojibake_once_or_twice_is_repaired(original, times):
    assert repair_mojibake(mojibake(original, times)) == original


def test_real_values_from_the_logs():
    assert repair_mojibake("BjÃ\x83Â¶rk") == "Björk"
    assert repair_mojibake("Michael BublÃ\x83Â©") == "Michael Bublé"


@pytest.mark.parametrize("text", ["Beyoncé", "Ã", "naïve café", "plain", "Ã ", "©2008 Ã©"])
def test_text_that_is_not_mojibake_is_left_alone(text):
    assert repair_mojibake(text) == text


def test_clean_trims_unquotes_and_nulls_empty():
    assert clean_text('  "Mozilla/5.0 (X11)"  ') == "Mozilla/5.0 (X11)"
    assert clean_text('""') is None
    assert clean_text("   ") is None
    assert clean_text('"a"b"') == 'a"b'
    assert clean_text("Cafe\u0301") == "Café"  # NFC


def test_match_key_casefolds():
    assert match_key("  STRASSE ") == "strasse"
    assert match_key("Straße") == "strasse"
    assert match_key(mojibake("Björk", 2)) == match_key("BJÖRK")


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect()
    configure(connection, "256MB", None)
    return connection


def sql_paths(con, texts: list[str]) -> list[tuple[str | None, str | None]]:
    """The engine's own SQL on song titles, all in one query: (stored value, match key) of each."""
    source = raw_json_source("(SELECT 'f' AS source_file, generate_subscripts($1, 1) AS line, unnest($1) AS raw)",
                             SONG_FIELDS)
    rows = con.execute(f"SELECT line, title, sp_key(title) FROM ({typed_sql(source, SONG_FIELDS, (), False)}) "
                       "ORDER BY line", [[json.dumps({"title": text}) for text in texts]]).fetchall()
    assert [row[0] for row in rows] == list(range(1, len(texts) + 1))
    return [row[1:] for row in rows]


def sql_path(con, text: str) -> tuple[str | None, str | None]:
    return sql_paths(con, [text])[0]


ascii_text = st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=127), max_size=30)


@settings(max_examples=60, deadline=None)
@given(st.lists(ascii_text, min_size=1, max_size=40))
def test_sql_fast_path_equals_python_on_ascii(con, texts):
    """Many values a query: the SQL's cost is the query, not the value."""
    assert sql_paths(con, texts) == [(clean_text(t), match_key(t)) for t in texts]


@pytest.mark.parametrize("text", ["\xa0", " \u3000 ", "\u2003\xa0\u2003", '"\xa0"'])
def test_unicode_whitespace_alone_is_unknown_in_sql(con, text):
    assert sql_path(con, text) == (None, None)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=40))
def test_sql_equals_python_on_any_text(con, texts):
    assert sql_paths(con, texts) == [(clean_text(t), match_key(clean_text(t))) for t in texts]
