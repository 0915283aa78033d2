"""Text is trimmed of every whitespace character Python's str.strip() removes, by every engine.

Real Million Song Dataset titles end in no-break spaces; such a title must be
stored trimmed and match the plays that name the song without them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparkify.normalize import ASCII_WHITESPACE, WHITESPACE, clean_text, match_key
from tests import reference
from tests.conftest import run_json, star_rows

PADDING = ("\u00a0", "\t\u3000", "\u2003\n", "\x1f ")
"""What real and plausible values carry around them: a no-break space, a tab and an ideographic space,
an em space and a line break, an ASCII unit separator (Python strips it too) and a space."""


def test_whitespace_is_what_str_strip_removes():
    assert all(c.isspace() for c in WHITESPACE)
    assert "".join(c for c in map(chr, range(0x110000)) if c.isspace()) == WHITESPACE
    assert {"\u00a0", "\u3000", "\u2028", "\t", "\n", " "} <= set(WHITESPACE)
    assert ASCII_WHITESPACE == "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f "
    for pad in PADDING:
        assert clean_text(f"{pad}Nothing Else Matters{pad}") == "Nothing Else Matters"
        assert clean_text(f'{pad}"{pad}Quoted{pad}"{pad}') == "Quoted"
        assert match_key(f"Caf\u00e9{pad}") == "café"


def _padded_catalogue(data: Path) -> list[str]:
    """Pad the title and artist name of every song that some play matches; the song ids padded."""
    expected = reference.star(data / "song_data", data / "log_data")
    matched = {row[4] for row in expected["songplays"] if row[4] is not None}
    assert matched, "the sample has matched plays"
    padded = []
    for number, path in enumerate(sorted((data / "song_data").rglob("*.json"))):
        song = json.loads(path.read_text())
        if song["song_id"] in matched:
            pad = PADDING[number % len(PADDING)]
            song["title"] = song["title"] + pad
            song["artist_name"] = pad + song["artist_name"]
            path.write_text(json.dumps(song))
            padded.append(song["song_id"])
    return padded


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("warehouse", marks=pytest.mark.postgres),
                                    pytest.param("spark", marks=pytest.mark.spark)])
def test_padded_titles_are_stored_trimmed_and_still_match(engine, sample_copy, tmp_path, request):
    padded = _padded_catalogue(sample_copy)
    target = str(tmp_path / "star.duckdb") if engine == "duckdb" else request.getfixturevalue("pg_url")
    summary = run_json("--songs", sample_copy / "song_data", "--logs", sample_copy / "log_data",
                       "--target", target, "--engine", engine)
    got = star_rows(target)
    expected = reference.star(sample_copy / "song_data", sample_copy / "log_data")
    assert [r[:2] for r in got["songs"]] == [r[:2] for r in expected["songs"]]
    assert not [r for r in got["songs"] if r[1] != r[1].strip()]
    assert not [r for r in got["artists"] if r[1] is not None and r[1] != r[1].strip()]
    assert sorted(r[4] for r in got["songplays"] if r[4] in padded) == \
        sorted(r[4] for r in expected["songplays"] if r[4] in padded)
    assert got["songplays"] == expected["songplays"]
    assert summary["accounting"]["events"]["loaded"] == 6820
