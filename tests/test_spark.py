"""The Spark engine against the DuckDB engine: the same tables, rejects and accounting.

A real local Spark (pyspark on the machine's Java 17), one session for the
whole module. The DuckDB engine is the reference; the expected figures of the
real sample come from the issue, and every messy input below is written here,
byte by byte, so each difference would show.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pytest

from tests.conftest import balanced, run_cli, run_json, star_rows

pytestmark = pytest.mark.spark

def snapshot(db: Path) -> dict[str, list[tuple]]:
    """Every column of the five tables and every reject of a DuckDB target, in a fixed order, exact."""
    from sparkify.schema import STAR

    con = duckdb.connect(str(db), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    try:
        out = {}
        for table in STAR:
            cols = ", ".join(f'"{c}"' for c in table.column_names)
            out[table.name] = con.execute(f'SELECT {cols} FROM "{table.name}" ORDER BY ALL').fetchall()
        out["rejects"] = con.execute(
            "SELECT kind, source_file, line, reason, raw FROM rejects ORDER BY ALL").fetchall()
        return out
    finally:
        con.close()


def accounting(summary: dict) -> dict:
    return {"accounting": summary["accounting"], "files": summary["files"], "tables": summary["tables"]}


def both_engines(data: Path, out: Path, *extra: str) -> tuple[dict, dict]:
    """Run each engine into its own DuckDB file: (summaries, snapshots) keyed by engine."""
    summaries, snaps = {}, {}
    for engine in ("duckdb", "spark"):
        db = out / f"{engine}.duckdb"
        summaries[engine] = run_json("--songs", data / "song_data", "--logs", data / "log_data",
                                     "--target", db, "--engine", engine, *extra)
        snaps[engine] = snapshot(db)
    return summaries, snaps


def assert_same(summaries: dict, snaps: dict) -> None:
    for name in snaps["duckdb"]:
        assert snaps["spark"][name] == snaps["duckdb"][name], name
    assert accounting(summaries["spark"]) == accounting(summaries["duckdb"])
    assert balanced(summaries["spark"])


# -- one record at a time --------------------------------------------------------

EVENT_LINES = [
    '{"ts":1541903636796,"userId":"39","sessionId":38,"itemInSession":0,"page":"NextSong","length":277.89016}',
    '{"ts":"1541903636796","userId":39,"sessionId":"38","itemInSession":"0.0","length":"277.89"}',
    '{"ts":1.541903636796E12,"userId":"  \\"39\\" ","sessionId":38.0,"itemInSession":1e1}',
    '{"ts":1541903636796.0,"length":1e-5,"song":1.5e7,"artist":1e22,"page":0.0001,"level":12345678.0,'
    '"location":-0.0,"firstName":1E400,"lastName":NaN,"gender":Infinity,"userAgent":-Infinity}',
    '{"ts":1,"length":1E400}', '{"ts":1,"length":NaN}', '{"ts":1,"length":"1_000"}', '{"ts":1,"length":"1.5d"}',
    '{"ts":1,"length":" +-5 "}', '{"ts":1,"length":true}', '{"ts":1,"length":{"a":1}}', '{"ts":1,"userId":true}',
    '{"ts":1,"userId":[1,2]}', '{"ts":1,"userId":"12.5"}', '{"ts":1,"userId":"99999999999999999999"}',
    '{"ts":1,"userId":"12\\n"}', '{"ts":1,"song":{"x":[1,"a"]}}', '{"ts":1,"song":[1]}',
    '{"ts":1,"song":"{not nested}"}', '{"ts":1,"song":"[x"}', '{"ts":1,"song":true}',
    '{"ts":1,"song":"caf\\u00e9"}', '{"ts":1,"song":"Ã©"}', '{"ts":1} x', '{"ts":1}{"ts":2}',
    '{"ts":1} {"ts":2}', '{"ts":1},{"ts":2}', '{"ts":1}]', '{"ts":1', '[1]', '42', '-42', '"s"', 'null', 'true',
    '1.5', '18446744073709551616', '-9223372036854775809', '\t{"ts":1}', ' {"ts":1}', "{'ts':1}",
    'not json at all', '{"ts":"abc"}', '{}', '{"userId":"5"}', '{"ts": 01}', '\ufeff{"ts":1}', '{"ts":1}\r',
    '{"ts":1,"song":"a\\"b"}', '{"ts":1,"song":"\\"quoted\\""}', '{"ts":1,"TS":2}', '{"ts":1,"song":"}{"}',
    '{"ts":-0}', '{"ts":"-0"}', '{"ts":"007"}', '{"ts":"+5"}', '{"ts":1,"length":"0x10"}',
    '{"ts":1,"length":"inf"}', '{"ts":1,"length":".5"}', '{"ts":1,"length":"5."}', '{"ts":1,"length":2.5e-10}',
    '{"ts":1,"song":123456789012345678901234567890}', '{"ts":1,"song":0.1234567890123456789}',
    '{"ts":1,"song":1.5e-4,"artist":1.5e-3,"level":1e16,"location":1e15}',
    '{"ts":1,"location":"Nul\\u0000City"}', '{"ts":1,"song":{"a":"\\u0000"}}',
]
SONG_LINES = [
    '{"song_id":"S1","title":"T","artist_id":"A","artist_name":"N","duration":1.5,"year":0}',
    '{"song_id":" \\"S1\\" ","title":"\\"\\"","artist_id":"A","artist_name":"N","duration":"1.5"}',
    '{"song_id":"S1","title":"T","artist_id":"A","artist_name":"Ã©","duration":1e400}',
    '{"song_id":"S1","title":{"t":1},"artist_id":"A","artist_name":"N","duration":1}',
    '{"song_id":"S1","title":"T","artist_id":"A","artist_name":"N","duration":1,"year":"1997.0",'
    '"artist_latitude":"x"}',
    '{"song_id":123,"title":4.5,"artist_id":true,"artist_name":"N","duration":1,"artist_longitude":-0.0}',
    '{"song_id":"S1","title":"T\\u0000","artist_id":"A","artist_name":"N","duration":1}',
]


def typed_both(spark, lines: list[str], fields, required, lazy: bool) -> tuple[dict, dict]:
    """records.typed_sql on DuckDB and spark_records on Spark over the same raw lines: {line: (values, error)}."""
    from pyspark.sql import functions as F

    from sparkify.batch import configure
    from sparkify.engines.spark.records import read_fields, with_errors
    from sparkify.engines.spark.text import TextFix
    from sparkify.records import raw_json_source, typed_sql

    con = duckdb.connect()
    configure(con, "1GB", None)
    con.execute("CREATE TABLE lines (source_file VARCHAR, line BIGINT, raw VARCHAR)")
    con.executemany("INSERT INTO lines VALUES ('f', ?, ?)", list(enumerate(lines)))
    names = ", ".join(f'"{f.name}"' for f in fields)
    sql = typed_sql(raw_json_source("lines", fields), fields, required, lazy_text=lazy)
    duck = {r[0]: (r[1:-1], r[-1]) for r in con.execute(f"SELECT line, {names}, error FROM ({sql})").fetchall()}
    rows = read_fields(spark.createDataFrame(list(enumerate(lines)), "line bigint, raw string"), fields)
    text = {f.name: f"a_{f.name}" for f in fields if f.type == "text"}
    if lazy:
        rows = rows.select("*", *(F.col(a).alias(n) for n, a in text.items()))
    else:
        rows = TextFix(spark, rows.select(F.explode(F.array(*text.values())))).apply(rows, text)
    got = with_errors(rows, fields, required).collect()
    return duck, {r["line"]: (tuple(r[f.name] for f in fields), r["error"]) for r in got}



@pytest.mark.parametrize("kind", ["events", "songs"])
def test_each_record_gets_the_duckdb_verdict(spark, kind):
    """Values and reasons, record by record, on lines chosen where Jackson and DuckDB's parser differ."""
    from sparkify.records import EVENT_FIELDS, EVENT_REQUIRED, SONG_FIELDS, SONG_REQUIRED

    lines = EVENT_LINES if kind == "events" else SONG_LINES
    fields, required = (EVENT_FIELDS, EVENT_REQUIRED) if kind == "events" else (SONG_FIELDS, SONG_REQUIRED)
    duck, got = typed_both(spark, lines, fields, required, lazy=kind == "events")
    for i, line in enumerate(lines):
        assert got[i][1] == duck[i][1], line
        if duck[i][1] is None:
            assert got[i][0] == duck[i][0], line
    assert sum(e is None for _, e in duck.values()) >= 2 and sum(e is not None for _, e in duck.values()) >= 2


SQL_VALUES = ["", "it's", "a\\b", "\\z", "^(?:-?[0-9]+(\\.0*)?)\\z", "\\\\'", "\u0000", "\t\n\r\x0b\x0c\x1f\x7f",
               "\\u0041", "\\'", "${spark.app.name}", "$1 $10$2 $", "%_\\%\\_", "\"", "Björk 🎵", "\\", "'''"]


def test_python_values_reach_spark_sql_unchanged(spark):
    """The engine's expressions are SQL text: every string and number in them must read back as written."""
    from sparkify.engines.spark.sql import double, name, string

    row = spark.range(1).selectExpr(*(f"{string(v)} AS {name(f'v{i}')}" for i, v in enumerate(SQL_VALUES)),
                                    f"{double(1e-4)} AS small", f"{double(1e16)} AS big",
                                    f"{double(-1.0)} AS minus", f"{double(0.001)} AS milli").first()
    assert [row[f"v{i}"] for i in range(len(SQL_VALUES))] == SQL_VALUES
    assert (row.small, row.big, row.minus, row.milli) == (1e-4, 1e16, -1.0, 0.001)
    assert {f.name: f.dataType.simpleString() for f in spark.range(1).selectExpr(f"{double(0.5)} AS d").schema} \
        == {"d": "double"}
    assert spark.range(1).selectExpr(f"'a1' RLIKE {string('^a[0-9]' + chr(92) + 'z')} AS m").first().m
    assert spark.range(1).selectExpr("1 AS `we``ird`").select(name("we`ird")).columns == ["we`ird"]


def test_known_differences_are_what_the_docs_say(spark):
    """Trailing commas: DuckDB loads, Spark rejects. Duplicate keys: DuckDB keeps the first, Spark the last."""
    from sparkify.records import EVENT_FIELDS, EVENT_REQUIRED

    lines = ['{"ts":1,"page":"Home",}', '{"ts":1,"ts":2}']
    duck, got = typed_both(spark, lines, EVENT_FIELDS, EVENT_REQUIRED, lazy=True)
    assert duck[0][1] is None and got[0][1] == "not valid JSON"
    assert duck[1][0][0] == 1 and got[1][0][0] == 2


# -- the real sample ----------------------------------------------------------

@pytest.fixture(scope="session")
def sample_runs(spark, sample, tmp_path_factory):
    out = tmp_path_factory.mktemp("sample-engines")
    return out, *both_engines(sample, out)


def test_sample_gives_exactly_the_duckdb_engines_values_and_accounting(sample_runs):
    """Exact values (the contract matrix compares floats rounded to 9 digits), rejects and the whole
    summary against the DuckDB engine; the issue's figures and every target are in test_contract.py."""
    _, summaries, snaps = sample_runs
    assert summaries["spark"]["engine"] == "spark"
    assert_same(summaries, snaps)


# -- messy input --------------------------------------------------------------

PLAY = {"artist": "Harmonia", "auth": "Logged In", "firstName": "Ryan", "gender": "M", "itemInSession": 0,
        "lastName": "Smith", "length": 655.77751, "level": "free", "location": "San Jose-Sunnyvale-Santa Clara, CA",
        "method": "PUT", "page": "NextSong", "registration": 1541016707796.0, "sessionId": 583,
        "song": "Sehr kosmisch", "status": 200, "ts": 1542241826796,
        "userAgent": "\"Mozilla/5.0 (X11; Linux x86_64) Chrome/36.0.1985.125 Safari/537.36\"", "userId": "26"}


def play(**changes) -> str:
    return json.dumps({**PLAY, **changes}, ensure_ascii=False)


def mojibake(text: str, rounds: int = 1) -> str:
    for _ in range(rounds):
        text = text.encode("utf-8").decode("latin-1")
    return text


def write_mess(data: Path) -> None:
    """Hand-made mess on top of a dataset: every kind SPEC.md lists, and the corners where Spark's
    JSON reader differs from DuckDB's (floats in Java notation, trailing text, control bytes)."""
    logs = data / "log_data" / "2030" / "01"
    logs.mkdir(parents=True)
    s = 1_900_000_000_000
    lines = [
        play(ts=s, itemInSession=1),
        play(ts=s, itemInSession=1, level="paid", location="Elsewhere"),          # same event, other text
        play(ts=s + 1, itemInSession=2, artist=mojibake("Björk", 2), song=mojibake("Jóga"), length=305.1),
        play(ts=s + 2, itemInSession=3, userId=" \"26\" ", sessionId="583.0", length="655.77751"),
        '{"ts": 1900000000003.0, "userId": 26.0, "sessionId": 583, "itemInSession": 4.0, "page": "NextSong"}',
        '{"ts": 1.900000000004E12, "userId": 26, "sessionId": 583, "itemInSession": 5, "page": "NextSong"}',
        play(ts=s + 5, itemInSession=6, page='"NextSong"', firstName="  Ryan ", lastName='""'),
        play(ts=s + 6, itemInSession=7, song={"title": "x"}),                       # object in a text field
        play(ts=s + 7, itemInSession=8, song="{not an object}", artist="[nor an array"),
        play(ts=s + 8, itemInSession=9, song=12.5, artist=1e-5, location=1.5e7),   # numbers for text
        '{"ts": 1900000000009, "page": "Home", "length": NaN, "userId": "26"}',
        '{"ts": 1900000000010, "page": "Home", "length": 1E400, "userId": "26"}',
        '{"ts": 1900000000011, "page": "Home"}{"ts": 1900000000012, "page": "Home"}',  # two on a line
        '{"ts": 1900000000013, "page": "Home"} trailing',
        '\t{"ts": 1900000000014, "page": "Home"}',                                  # tab before the object
        '{"ts": 1900000000015, "page": "Home", "userId": "9"}\x01after a control byte',
        '\x01', '  \x01' + play(ts=s + 23, itemInSession=13),                     # nothing before the byte
        '{"ts": "1900000000016x", "page": "Home"}',
        '{"ts": 1900000000017, "page": "NextSong", "userId": "", "sessionId": 1, "itemInSession": 1}',
        '{"ts": 1900000000018, "page": "NextSong", "userId": "7", "sessionId": true, "itemInSession": 1}',
        '{"ts": 1900000000019, "page": "NextSong", "userId": "7", "sessionId": 1, '
        '"itemInSession": 99999999999999999999}',
        '[{"ts": 1900000000020}]', '42', '"text"', 'null', '   ', '',
        "{'ts': 1900000000021}",
        play(ts=s + 22, itemInSession=10, userId="27", firstName="Zoë", gender="F", level="paid"),
        play(ts=s + 22, itemInSession=11, userId="27", firstName="Zoe", gender="F", level="free"),  # tie on ts
    ]
    body = "\n".join(lines).encode("utf-8")
    (logs / "2030-01-01-events.json").write_bytes(
        body + b"\n" + b'{"ts": 1900000000030, "page": "Home", "artist": "Bj\xf6rk"}\n'
        + play(ts=s + 31, itemInSession=12).encode())
    crlf = "\r\n".join(play(ts=s + 40 + i, itemInSession=20 + i) for i in range(3)) + "\r\n"
    (logs / "2030-01-02-events.json").write_bytes(crlf.encode())
    (logs / "2030-01-03-events.json").write_bytes(b"")

    songs = data / "song_data" / "Z" / "Z"
    songs.mkdir(parents=True)
    song = {"num_songs": 1, "artist_id": "ARZZZ", "artist_latitude": 45.5, "artist_longitude": -73.6,
            "artist_location": "Montréal", "artist_name": "Björk", "song_id": "SOZZZ1", "title": "Jóga",
            "duration": 305.1, "year": 1997}
    (songs / "TRZ1.json").write_text(json.dumps(song, indent=4, ensure_ascii=False))  # pretty-printed
    (songs / "TRZ2.json").write_text("\n".join([
        json.dumps({**song, "song_id": "SOZZZ2", "title": "Hunter", "artist_name": mojibake("Björk"),
                    "year": "1997.0", "duration": "255.5"}),
        "",
        json.dumps({**song, "song_id": "SOZZZ3", "title": "Army of Me", "artist_location": None,
                    "year": 0}),
        '{"song_id": "SOZZZ4", "title": "Broken"',
        json.dumps({**song, "song_id": "SOZZZ5", "duration": "long"}),
        json.dumps({**song, "song_id": "SOZZZ6", "artist_latitude": float("nan")}),
        json.dumps({**song, "song_id": "SOZZZ1", "title": "Jóga (duplicate, later file)"}),
    ]) + "\n")
    (songs / "TRZ3.json").write_bytes(
        json.dumps({**song, "song_id": "SOZZZ7", "title": "Isobel", "artist_name": "Bjork"}).encode()
        + b"\n" + b'{"song_id": "SOZZZ8", "title": "Caf\xe9"}\n')
    (songs / "TRZ4.json").write_text(json.dumps([song]))
    (songs / "TRZ5.json").write_text("")


@pytest.fixture(scope="session")
def messy(spark, tmp_path_factory) -> Path:
    """Generated data with every planted kind of dirt, plus the hand-made mess above."""
    data = tmp_path_factory.mktemp("messy") / "data"
    code, _ = run_cli("generate", "--out", str(data), "--events", "6000", "--songs", "150", "--days", "4",
                      "--seed", "3", "--dirty", "0.03", "--match-rate", "0.3")
    assert code == 0
    write_mess(data)
    return data


@pytest.fixture(scope="session")
def messy_runs(messy, tmp_path_factory):
    out = tmp_path_factory.mktemp("messy-engines")
    return out, *both_engines(messy, out)


def test_messy_input_gives_the_same_tables_rejects_and_accounting(messy_runs):
    _, summaries, snaps = messy_runs
    assert_same(summaries, snaps)


def test_duplicate_plays_joined_by_shuffle_give_the_same_tables(messy, messy_runs, tmp_path, monkeypatch):
    """Past BROADCAST_DUPLICATES the identities of duplicated plays are joined by shuffle, not broadcast:
    the same rows (the messy input holds duplicates, so that path really runs)."""
    from sparkify.engines.spark import compute

    monkeypatch.setattr(compute, "BROADCAST_DUPLICATES", 0)
    _, summaries, snaps = messy_runs
    db = tmp_path / "spark.duckdb"
    summary = run_json("--songs", messy / "song_data", "--logs", messy / "log_data", "--target", db,
                       "--engine", "spark")
    assert summary["accounting"]["events"]["duplicate"] > 0
    assert snapshot(db) == snaps["duckdb"]
    assert accounting(summary) == accounting(summaries["duckdb"])


def test_messy_input_really_is_messy(messy_runs):
    """The comparison above means something only if the mess reached every rule."""
    _, summaries, snaps = messy_runs
    reasons = {r[3] for r in snaps["spark"]["rejects"]}
    for expected in ("not valid JSON", "not a JSON object, but array", "not a JSON object, but ubigint",
                     "not a JSON object, but null", "not a JSON object, but object", "song: expected text, got object",
                     "length: not a finite number: 1E400", "length: not a finite number: NaN",
                     "NextSong without userId", "not valid UTF-8 text", "duration: not a finite number: long",
                     "ts: not an integer in range: 1900000000016x"):
        assert any(r.startswith(expected) for r in reasons), expected
    assert any(r.endswith("is missing") for r in reasons)
    events = summaries["spark"]["accounting"]["events"]
    assert events["duplicate"] > 0 and events["rejected"] > 20


def test_mess_is_repaired_and_matched(messy_runs):
    """Spot checks worked out by hand from write_mess: repaired text, ties, typed numbers."""
    out, _, _ = messy_runs
    con = duckdb.connect(str(out / "spark.duckdb"), read_only=True)
    s = 1_900_000_000_000
    plays = {row[0]: row[1:] for row in con.execute(
        "SELECT epoch_ms(start_time), song_id, artist_id, level, location FROM songplays "
        "WHERE start_time >= make_timestamptz(2030, 1, 1, 0, 0, 0)").fetchall()}
    assert plays[s + 1][:2] == ("SOZZZ1", "ARZZZ")     # double mojibake repaired, matched
    assert plays[s][2:] == ("free", "San Jose-Sunnyvale-Santa Clara, CA")  # the smaller text wins the tie
    assert s + 3 in plays and s + 4 in plays            # float ts, in Java's notation for Spark
    user = con.execute("SELECT first_name, level FROM users WHERE user_id = 27").fetchone()
    assert user == ("Zoe", "free")                       # same ts and session: the later item wins
    artist = con.execute("SELECT name, location FROM artists WHERE artist_id = 'ARZZZ'").fetchone()
    assert artist == ("Björk", "Montréal")
    assert con.execute("SELECT title, year FROM songs WHERE song_id = 'SOZZZ1'").fetchone() == ("Jóga", 1997)
    assert con.execute("SELECT year FROM songs WHERE song_id = 'SOZZZ3'").fetchone() == (None,)


# -- every target -------------------------------------------------------------

def read_lake_with_spark(spark, root: str, table: str):
    """A table of the lake as plain Spark reads it: its files, hive partitioning from the folder names."""
    from sparkify.targets.lake import lake_files

    files = lake_files(root, table)
    base = files[0][: files[0].index(f"/{table}/") + len(table) + 1]
    return spark.read.option("basePath", base).parquet(*files)


def normal(row) -> tuple:
    return tuple(v.replace(tzinfo=dt.UTC) if isinstance(v, dt.datetime) else v for v in row)


def test_a_lake_reads_back_in_spark_as_the_engines_tables(spark, sample_runs, sample, tmp_path):
    """Spark reads a lake (its files, hive partitions from the folder names) as the tables the engines
    computed. The lake is written by the DuckDB engine: its layout is the target's, whatever the engine
    (the contract's spark-lake cells land the Spark engine's batch there)."""
    from sparkify.schema import STAR

    out, _, snaps = sample_runs
    lake = str(tmp_path / "lake")
    summary = run_json("--songs", sample / "song_data", "--logs", sample / "log_data", "--target", f"lake://{lake}",
                       "--engine", "duckdb")
    assert summary["tables"]["songplays"] == 6820
    for table in STAR:
        df = read_lake_with_spark(spark, lake, table.name)
        assert set(table.partition_by) <= set(df.columns), table.name
        rows = sorted(normal(r) for r in df.select(*table.column_names).collect())
        assert rows == sorted(normal(r) for r in snaps["duckdb"][table.name]), table.name
    songplays = read_lake_with_spark(spark, lake, "songplays")
    bad = songplays.where("year <> year(start_time) OR month <> month(start_time)").count()
    assert bad == 0


# -- the command line -----------------------------------------------------------

def test_spark_master_flag_reaches_the_engine(monkeypatch, tmp_path):
    from sparkify import pipeline

    seen = {}

    def fake_run(target, songs, logs, **kwargs):
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(pipeline, "run", fake_run)
    with pytest.raises(SystemExit):
        run_cli("run", "--songs", tmp_path, "--logs", tmp_path, "--target", tmp_path / "x.duckdb",
                "--engine", "spark", "--spark-master", "spark://example:7077")
    assert seen["engine_name"] == "spark"
    assert seen["engine_options"]["master"] == "spark://example:7077"


def test_a_run_with_nothing_new_starts_no_spark(sample, tmp_path, monkeypatch):
    """Every file already in the ledger: the empty batch comes without Spark (its compute would fail here),
    the summary still names the engine asked for, and the target is as it was."""
    from sparkify.engines.spark import SparkEngine

    db = tmp_path / "star.duckdb"
    args = ("--songs", sample / "song_data", "--logs", sample / "log_data", "--target", db, "--engine", "spark")
    run_json(*args[:-2])
    before = star_rows(str(db))

    def no_spark(*_):
        raise AssertionError("Spark computed a run with nothing to read")

    monkeypatch.setattr(SparkEngine, "compute", no_spark)
    summary = run_json(*args)
    assert summary["engine"] == "spark"
    assert summary["files"]["logs"] == {"new": 0, "skipped": 30}
    assert summary["accounting"]["events"]["read"] == 0 and balanced(summary)
    assert star_rows(str(db)) == before
    code, _ = run_cli("run", *args, "--full-refresh")  # files to read again: Spark is asked to compute
    assert code != 0


def test_a_run_keeps_its_rows_as_local_checkpoints_and_frees_them(spark, sample, tmp_path, monkeypatch):
    """In one JVM the stored rows are local checkpoints (compute._persist), and the run frees them when it
    ends: a process that runs again holds none of an earlier run's rows."""
    from sparkify.engines.spark import compute

    kept = []
    persist = compute._persist
    monkeypatch.setattr(compute, "_persist", lambda batch, df: kept.append(batch.checkpoint) or persist(batch, df))
    stored = spark.sparkContext._jsc.getPersistentRDDs
    before = stored().size()
    run_json("--songs", sample / "song_data", "--logs", sample / "log_data", "--target", tmp_path / "star.duckdb",
             "--engine", "spark")
    assert kept and all(kept)
    assert stored().size() == before
