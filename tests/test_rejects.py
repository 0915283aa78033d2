"""Bad input: every record ends in exactly one place, and a reject says file, line and why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from tests.conftest import balanced, run_cli, run_json

EVENT = {"artist": "Elena", "auth": "Logged In", "firstName": "Lily", "gender": "F", "itemInSession": 3,
         "lastName": "Koch", "length": 269.58322, "level": "paid", "location": "Chicago, IL",
         "method": "PUT", "page": "NextSong", "registration": 1541048010796.0, "sessionId": 818,
         "song": "Setanta matins", "status": 200, "ts": 1542837407796, "userAgent": '"Mozilla/5.0"',
         "userId": "15"}


def event(**changes) -> str:
    return json.dumps({**EVENT, **changes})


@pytest.fixture()
def messy(sample_copy: Path) -> Path:
    """The sample plus one day of hand-made mess whose every line's fate is known."""
    day = sample_copy / "log_data" / "2018" / "12"
    day.mkdir(parents=True)
    lines = [
        event(ts=1543622400000, itemInSession=1),                   # 1 good play
        '{"ts": 1543622400001, "page": "Home", "userId": "15"',     # 2 truncated: not JSON
        "not json at all",                                          # 3 garbage
        "",                                                         # 4 blank: not a record
        event(ts=1543622400002, itemInSession=2, artist=123),       # 5 number as text: coerced, loaded
        event(ts="abc", itemInSession=4),                           # 6 ts not an integer
        event(ts=1543622400003, itemInSession=5, userId=""),        # 7 NextSong without userId
        "[1, 2, 3]",                                                # 8 not an object
        event(ts=1543622400004, itemInSession=6, length={"x": 1}),  # 9 object where a number belongs
        event(ts=1543622400005, itemInSession=7, sessionId="818.0"),  # 10 integral text: loaded
        event(ts=1543622400006, itemInSession=8, location='""'),    # 11 empty after unquoting: NULL, loaded
    ]
    (day / "2018-12-01-events.json").write_bytes(
        ("\n".join(lines) + "\n").encode() + b'{"ts": 1543622400009, "artist": "Bj\xf6rk"}\n'  # 12 Latin-1 bytes
        + event(ts=1543622400010, itemInSession=9, page="Home").encode()  # 13 filtered, no final newline
    )
    (day / "2018-12-02-events.json").write_bytes(b"")  # an empty file
    original = sample_copy / "log_data" / "2018" / "11" / "2018-11-05-events.json"
    shutil.copy(original, day / "2018-12-03-events-resent.json")  # a file delivered twice
    song = sample_copy / "song_data" / "A" / "A" / "A"
    (song / "TRBROKEN.json").write_text('{"song_id": "SOX", "title": "No duration", "artist_id": "ARX", '
                                        '"artist_name": "X", "duration": "long"}')
    (song / "TRTRUNC.json").write_text('{"song_id": "SOY", "title": "Cut')
    return sample_copy


def test_every_reject_names_file_line_and_reason(messy: Path, tmp_path: Path):
    target = tmp_path / "t.duckdb"
    summary = run_json("--songs", messy / "song_data", "--logs", messy / "log_data", "--target", target)
    assert balanced(summary)
    con = duckdb.connect(str(target), read_only=True)
    rejects = con.execute("SELECT kind, regexp_extract(source_file, '[^/]+$'), line, reason, raw "
                          "FROM rejects ORDER BY kind, source_file, line").fetchall()
    got = [(k, f, n, r) for k, f, n, r, _ in rejects]
    day = "2018-12-01-events.json"
    assert got == [
        ("event", day, 2, "not valid JSON"),
        ("event", day, 3, "not valid JSON"),
        ("event", day, 6, "ts: not an integer in range: abc"),
        ("event", day, 7, "NextSong without userId"),
        ("event", day, 8, "not a JSON object, but array"),
        ("event", day, 9, "length: not a finite number: {\"x\":1}"),
        ("event", day, 12, "not valid UTF-8 text"),
        ("song", "TRBROKEN.json", 1, "duration: not a finite number: long"),
        ("song", "TRTRUNC.json", 1, "not valid JSON"),
    ]
    raws = {n: raw for _, f, n, _, raw in rejects if f == day}
    assert raws[3] == "not json at all"
    assert raws[12] == '{"ts": 1543622400009, "artist": "Bj\\xf6rk"}'
    events = summary["accounting"]["events"]
    resent = sum(1 for line in (messy / "log_data/2018/11/2018-11-05-events.json").read_text().splitlines() if line)
    plays_resent = sum(1 for line in (messy / "log_data/2018/11/2018-11-05-events.json").read_text().splitlines()
                       if '"NextSong"' in line)
    assert events["read"] == 8056 + 12 + resent
    assert events["rejected"] == 7
    assert events["duplicate"] == plays_resent
    assert events["loaded"] == 6820 + 4
    coerced = con.execute("SELECT p.location, a FROM songplays p, (SELECT 1) t(a) "
                          "WHERE start_time = make_timestamptz(1543622400006000)").fetchall()
    assert coerced == [(None, 1)]
    assert summary["accounting"]["songs"] == {"read": 73, "loaded": 71, "duplicate": 0, "rejected": 2}


def test_max_rejects_fails_before_writing_and_names_the_lines(messy: Path, tmp_path: Path, capsys):
    target = tmp_path / "t.duckdb"
    code, _ = run_cli("run", "--songs", messy / "song_data", "--logs", messy / "log_data",
                      "--target", target, "--max-rejects", "5")
    assert code == 4  # the reject limit's own exit code
    err = capsys.readouterr().err
    assert "9 of" in err and "nothing was written" in err
    assert "2018-12-01-events.json:2: not valid JSON" in err
    con = duckdb.connect(str(target), read_only=True)
    assert con.execute("SELECT count(*) FROM songplays").fetchall() == [(0,)]
    assert con.execute("SELECT count(*) FROM _sparkify_files").fetchall() == [(0,)]


def test_max_rejects_as_a_percentage(messy: Path, tmp_path: Path):
    args = ("--songs", messy / "song_data", "--logs", messy / "log_data")
    assert run_cli("run", *args, "--target", tmp_path / "a.duckdb", "--max-rejects", "0.01%")[0] == 4
    assert run_cli("run", *args, "--target", tmp_path / "b.duckdb", "--max-rejects", "1%")[0] == 0


def test_a_pretty_printed_song_and_a_file_of_several_songs(tmp_path: Path, sample: Path):
    songs = tmp_path / "songs"
    songs.mkdir()
    records = [json.loads(p.read_text()) for p in sorted((sample / "song_data").rglob("*.json"))[:3]]
    (songs / "pretty.json").write_text(json.dumps(records[0], indent=4))
    (songs / "many.json").write_text("\n".join(json.dumps(r) for r in records[1:]) + "\n\n")
    summary = run_json("--songs", songs, "--logs", sample / "log_data", "--target", tmp_path / "t.duckdb")
    assert summary["accounting"]["songs"] == {"read": 3, "loaded": 3, "duplicate": 0, "rejected": 0}
