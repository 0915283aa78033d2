"""The in-warehouse engine's increments equal a full rebuild (issue 16), on a database that does not sort
text in byte order.

Songs arrive after the plays that match them, older days after newer, a day
is delivered again under another name with other values for some of its
events, and a song record from a file that sorts first replaces one already
loaded. Run by run on PostgreSQL with --pushdown (the SQL Redshift runs),
the star must end as one DuckDB run over all the files (DuckDB compares text
by its bytes, as the tie rules say), and the state tables as one pushdown run.
The database sorts text by ICU's English rules, where 'abc' comes before
'ABC' and 'paid' before 'Paid': a tie broken by the database's collation
instead of byte order would keep the other copy.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from bench.pgscratch import scratch_database
from sparkify import staging
from sparkify.engines.warehouse import star
from sparkify.schema import PLAY_KEYS, SONG_RECORDS, USER_LATEST
from tests.conftest import balanced, run_cli, run_json, star_rows


@contextmanager
def english_database(server: str) -> Iterator[str]:
    """A fresh database whose default collation is ICU's en-US, dropped afterwards."""
    name = "t_icu_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server, autocommit=True) as con:
        con.execute(f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
                    "LOCALE 'C.UTF-8'")
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _state(url: str) -> dict[str, list[tuple]]:
    """The state a later run compares with and matches against, every row ordered by key."""
    with psycopg.connect(url) as con:
        return {t.name: _ordered(con.execute(f'SELECT {", ".join(t.column_names)} FROM "{t.name}"').fetchall())
                for t in (SONG_RECORDS, PLAY_KEYS, USER_LATEST)}


def _ordered(rows: list[tuple]) -> list[tuple]:
    """Rows in one order whatever the database's collation (ORDER BY follows it)."""
    return sorted(rows, key=repr)


def _redelivered(day: Path, to: Path) -> None:
    """The day again, with its case changed in some events: upper-case locations (smaller in byte order:
    this copy's play stays) and capitalised levels (smaller: the user's row keeps the first copy's)."""
    lines = []
    for n, line in enumerate(day.read_text(encoding="utf-8").splitlines()):
        event = json.loads(line)
        if event.get("page") == "NextSong" and n % 3 == 0 and event.get("location"):
            event["location"] = event["location"].upper()
        if n % 2 == 0 and event.get("level"):
            event["level"] = event["level"].capitalize()
        lines.append(json.dumps(event))
    to.parent.mkdir(parents=True, exist_ok=True)
    to.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _replacing_record(songs: list[Path], to: Path) -> None:
    """A record of an already loaded song_id under a new title, artist and duration, in a file that sorts
    before every other: one full run keeps it, so an increment must replace the stored record, take the
    song's plays back and drop its artist if nothing else is theirs."""
    first, other = (json.loads(p.read_text(encoding="utf-8")) for p in songs[:2])
    record = {**first, "title": other["title"], "artist_name": other["artist_name"], "artist_id": "ARREPLACED0001",
              "duration": other["duration"]}
    to.parent.mkdir(parents=True, exist_ok=True)
    to.write_text(json.dumps(record) + "\n", encoding="utf-8")


def test_late_songs_older_days_and_a_redelivered_day_end_as_one_full_run(pg_server, tmp_path):
    gen = tmp_path / "gen"
    code, _ = run_cli("generate", "--out", gen, "--events", "3000", "--songs", "300", "--seed", "16",
                      "--match-rate", "0.7")
    assert code == 0
    songs = sorted((gen / "song_data").rglob("*.json"))
    days = sorted((gen / "log_data").rglob("*.json"))
    extra = tmp_path / "extra"
    _redelivered(days[0], extra / "again.json")
    _replacing_record(songs, extra / "0.json")
    data = tmp_path / "data"

    def deliver(files: list[Path], root: Path = gen) -> None:
        for path in files:
            dest = data / path.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, dest)

    def run(url: str) -> dict:
        return run_json("--songs", data / "song_data", "--logs", data / "log_data", "--target", url, "--pushdown")

    half = len(songs) // 2
    with english_database(pg_server) as inc, scratch_database(pg_server, prefix="t_") as full:
        deliver(songs[half:] + days[len(days) // 2:])
        first = run(inc)
        deliver(days[: len(days) // 2])
        run(inc)
        matched_before = sum(1 for r in star_rows(inc)["songplays"] if r[4] is not None)
        deliver(songs[:half])
        late = run(inc)
        matched_after = sum(1 for r in star_rows(inc)["songplays"] if r[4] is not None)
        assert matched_after > matched_before, "the late songs were matched to the plays already loaded"
        shutil.copy(extra / "again.json", data / days[0].relative_to(gen).parent / "again.json")
        (data / "song_data" / "0").mkdir()
        shutil.copy(extra / "0.json", data / "song_data" / "0" / "0.json")
        last = run(inc)
        assert all(balanced(s) for s in (first, late, last))
        assert last["accounting"]["songs"] == {"read": 1, "loaded": 0, "rejected": 0, "duplicate": 1}

        duck = str(tmp_path / "full.duckdb")
        run_json("--songs", data / "song_data", "--logs", data / "log_data", "--target", duck)
        run(full)
        got, want = ({t: _ordered(rows) for t, rows in star_rows(url).items()} for url in (inc, duck))
        assert got == want
        assert _state(inc) == _state(full)
    replaced = next(r for r in want["songs"] if r[0] == json.loads((extra / "0.json").read_text())["song_id"])
    assert replaced[2] == "ARREPLACED0001"
    locations = [row[7] for row in want["songplays"] if row[7]]
    assert any(x == x.upper() != x.lower() for x in locations), "the redelivered upper-case copies were kept"


def test_redshift_record_rule_keeps_one_record_whatever_the_order(pg_url, sample, tmp_path, monkeypatch):
    """Redshift's COPY gives no file and line, so there one song_id's records are ranked by value. That
    SQL, run here on PostgreSQL in place of the file-and-line rule, keeps the same record whichever of two
    files arrives first, and the one a single run over both keeps."""
    monkeypatch.setattr(star, "REDSHIFT", staging.POSTGRES)
    song = json.loads(next((sample / "song_data").rglob("*.json")).read_text(encoding="utf-8"))
    variants = {"a.json": {**song, "title": "Zebra Crossing"}, "b.json": {**song, "title": "Aardvark Dawn"}}
    day = next((sample / "log_data").rglob("*.json"))

    def load(url: str, runs: list[list[str]]) -> list[tuple]:
        data = tmp_path / uuid.uuid4().hex
        (data / "log_data").mkdir(parents=True)
        shutil.copy(day, data / "log_data" / day.name)
        for names in runs:
            for name in names:
                (data / "song_data").mkdir(exist_ok=True)
                (data / "song_data" / name).write_text(json.dumps(variants[name]) + "\n", encoding="utf-8")
            run_json("--songs", data / "song_data", "--logs", data / "log_data", "--target", url, "--pushdown")
        return star_rows(url)["songs"]

    with scratch_database(pg_url, prefix="t_") as one, scratch_database(pg_url, prefix="t_") as other:
        forward = load(pg_url, [["a.json"], ["b.json"]])
        backward = load(one, [["b.json"], ["a.json"]])
        together = load(other, [["a.json", "b.json"]])
    assert forward == backward == together == [(song["song_id"], "Aardvark Dawn", song["artist_id"],
                                                song["year"] or None, song["duration"])]
