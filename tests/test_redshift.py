"""Redshift target and the in-warehouse path.

There is no Redshift here: the Redshift statements are pinned with a fake
connection and parsed with sqlglot's redshift dialect; the staging-to-star
SQL they share with PostgreSQL runs on the real PostgreSQL server (staging
filled by COPY FROM STDIN from the raw files) and must equal the DuckDB
engine row for row, on noisy generated datasets (the real sample, its
increments and a failed merge are cells of tests/test_contract.py).
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from pathlib import Path

import boto3
import psycopg
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparkify import cli, pipeline, staging
from sparkify.engines import warehouse as warehouse_engine
from sparkify.engines.warehouse import star
from sparkify.engines.warehouse import text as wtext
from sparkify.normalize import clean_text, match_key, repair_mojibake, unquote
from sparkify.records import EVENT_FIELDS, HOLDS_NUL
from sparkify.targets import open_target
from sparkify.targets.postgres import PostgresTarget
from sparkify.targets.postgres.target import strip_pushdown
from sparkify.targets.redshift import RedshiftTarget
from sparkify.targets.redshift import copy as rcopy
from sparkify.targets.redshift import ddl as rddl
from sparkify.targets.redshift.lambda_udf import handler
from tests.conftest import balanced, run_cli, run_json, star_rows

ROLE = "arn:aws:iam::123456789012:role/dwhRole"
URL = f"redshift://awsuser@dwh.abc123.us-west-2.redshift.amazonaws.com:5439/dev?iam_role={ROLE}&region=us-west-2"


def _redshift(staging: str = "s3://sparkify-staging/runs", **extra) -> RedshiftTarget:
    return RedshiftTarget.from_url(f"{URL}&staging={staging}", extra, env={})


def _parse_redshift(statements: list[str], caplog) -> None:
    """Every statement parses under sqlglot's redshift dialect, none falls back to an opaque Command."""
    caplog.set_level(logging.WARNING, logger="sqlglot")
    for text in statements:
        for tree in sqlglot.parse(text, read="redshift"):
            assert not isinstance(tree, sqlglot.exp.Command), text[:120]
    assert not [r for r in caplog.records if r.name == "sqlglot"], [r.getMessage() for r in caplog.records]


# -- configuration -----------------------------------------------------------------


def test_url_options_toml_and_environment(monkeypatch):
    t = _redshift()
    assert (t.iam_role, t.region, t.staging, t.schema) == (ROLE, "us-west-2", "s3://sparkify-staging/runs", "public")
    assert t.url == "postgresql://awsuser@dwh.abc123.us-west-2.redshift.amazonaws.com:5439/dev"
    bare = "redshift://u@h:5439/dev"
    from_options = RedshiftTarget.from_url(bare, {"iam_role": ROLE, "staging": "s3://abc/x", "schema": "dwh"}, env={})
    assert (from_options.iam_role, from_options.schema, from_options.region) == (ROLE, "dwh", None)
    env = {"SPARKIFY_REDSHIFT_IAM_ROLE": ROLE, "SPARKIFY_REDSHIFT_STAGING": "s3://abc/y"}
    assert RedshiftTarget.from_url(bare, {}, env=env).staging == "s3://abc/y"
    monkeypatch.setenv("SPARKIFY_REDSHIFT_IAM_ROLE", ROLE)
    monkeypatch.setenv("SPARKIFY_REDSHIFT_STAGING", "s3://abc/z")
    assert isinstance(open_target(bare), RedshiftTarget)


def test_bad_options_are_refused_not_pasted_into_sql():
    from sparkify.targets.base import TargetError

    with pytest.raises(TargetError, match="iam_role"):
        RedshiftTarget.from_url("redshift://u@h/dev?staging=s3://abc/x", {}, env={})
    with pytest.raises(TargetError, match="staging is not valid"):
        _redshift("s3://abc/x'; DROP TABLE users; --")


def test_the_password_is_never_shown():
    t = RedshiftTarget.from_url(f"redshift://awsuser:s3cr3t@h:5439/dev?iam_role={ROLE}&staging=s3://abc/x", {}, env={})
    assert "s3cr3t" not in t.describe() and "***" in t.describe()
    assert "s3cr3t" not in t.redacted(f"connection to {t.url} failed for s3cr3t")


# -- generated statements ---------------------------------------------------------


def test_ddl_distribution_sort_and_informational_keys(caplog):
    ddl = rddl.redshift_ddl("dwh")
    songplays = next(s for s in ddl if '"songplays" (' in s)
    assert songplays.endswith(') DISTKEY ("user_id") COMPOUND SORTKEY ("start_time")')
    assert 'PRIMARY KEY ("songplay_id")' in songplays
    assert 'FOREIGN KEY ("song_id") REFERENCES "dwh"."songs" ("song_id")' in songplays
    for small in ("artists", "songs", "users"):
        assert re.search(rf'"{small}" \(.*\) DISTSTYLE ALL SORTKEY', next(s for s in ddl if f'"{small}" (' in s), re.S)
    assert '"start_time" TIMESTAMPTZ NOT NULL' in songplays and '"location" VARCHAR(65535)' in songplays
    _parse_redshift(ddl + rddl.redshift_drop("dwh"), caplog)


def test_jsonpaths_follow_the_event_fields_and_the_original_file(sample):
    paths = rcopy.jsonpaths()["jsonpaths"]
    original = json.loads((sample / "log_json_path.json").read_text())["jsonpaths"]
    expected = ["$['ts']", "$['userId']", "$['sessionId']", "$['itemInSession']", "$['page']", "$['level']",
                "$['firstName']", "$['lastName']", "$['gender']", "$['location']", "$['userAgent']",
                "$['song']", "$['artist']", "$['length']"]
    assert paths == expected
    assert set(paths) <= set(original)  # the same spelling as the original, without the unused fields
    assert len(paths) == len(EVENT_FIELDS)


def test_copy_statements_are_pinned(caplog):
    s = rcopy.CopySettings(ROLE, "us-west-2", "s3://abc/p/jsonpaths/staging_events.json", 500)
    events = rcopy.copy_events("s3://abc/p/r1/log.manifest", s)
    assert events == (
        'COPY staging_events ("ts", "user_id", "session_id", "item_in_session", "page", "level", "first_name", '
        '"last_name", "gender", "location", "user_agent", "song", "artist", "length") '
        f"FROM 's3://abc/p/r1/log.manifest' IAM_ROLE '{ROLE}' FORMAT AS JSON "
        "'s3://abc/p/jsonpaths/staging_events.json' MANIFEST TIMEFORMAT 'epochmillisecs' BLANKSASNULL "
        "TRUNCATECOLUMNS MAXERROR 500 REGION 'us-west-2'"
    )
    songs = rcopy.copy_songs("s3://abc/p/r1/song.manifest", s)
    assert "FORMAT AS JSON 'auto' MANIFEST BLANKSASNULL MAXERROR 500" in songs
    assert "TRUNCATECOLUMNS" not in songs
    errors = rcopy.copy_errors("event")
    assert "FROM stl_load_errors e" in errors[0] and "WHERE e.query = pg_last_copy_id()" in errors[0]
    assert "FROM stl_load_commits WHERE query = pg_last_copy_id()" in errors[1]
    _parse_redshift([events, songs, *errors], caplog)


def test_songplay_id_is_one_small_dialect_function():
    assert staging.REDSHIFT.songplay_id("x") == "STRTOL(LEFT(MD5(x), 15), 16)"
    assert staging.POSTGRES.songplay_id("x") == "CAST(CAST('x' || LEFT(MD5(x), 15) AS BIT(60)) AS BIGINT)"


def test_songplay_id_on_postgres_equals_the_first_15_hex_digits_of_md5(pg_url):
    import hashlib

    identity = "583|11|26|1542242481796"
    expected = int(hashlib.md5(identity.encode()).hexdigest()[:15], 16)
    with psycopg.connect(pg_url) as con:
        got = con.execute(f"SELECT {staging.POSTGRES.songplay_id('%s')}", [identity]).fetchone()[0]
    assert got == expected


def test_the_whole_redshift_plan_parses_as_redshift(sample, caplog):
    steps = pipeline.statements(_redshift(), str(sample / "song_data"), str(sample / "log_data"))
    statements = [s.sql for s in steps if not s.sql.startswith("--")]
    assert any(s.startswith("COPY staging_events") for s in statements)
    assert any(s.startswith("MERGE INTO") for s in statements)
    assert not any("ON CONFLICT" in s for s in statements)
    _parse_redshift(statements, caplog)


def test_lambda_udf_statements_name_the_function_and_role():
    stmts = wtext.text_functions(staging.REDSHIFT, "sparkify-text", ROLE)
    assert stmts[0] == wtext.repair_function()  # the repair stays in SQL, the Lambda only adds NFC and casefold
    assert stmts[1] == ("CREATE OR REPLACE EXTERNAL FUNCTION f_sparkify_clean (VARCHAR) RETURNS VARCHAR(65535) "
                        f"STABLE LAMBDA 'sparkify-text' IAM_ROLE '{ROLE}'")


def test_lambda_handler_runs_normalize_after_the_sql_repair():
    event = {"external_function": "f_sparkify_clean",
             "arguments": [["Cafe\u0301"], ['  "Caf\u00e9" '], [None], ["BeyoncÃ©"]]}
    assert handler(event) == {"success": True, "num_records": 4, "results": ["Café", "Café", None, "BeyoncÃ©"]}
    keyed = handler({"external_function": "public.f_sparkify_key", "arguments": [["MOTÖRHEAD"], ["Straße"]]})
    assert keyed["results"] == ["motörhead", "strasse"]
    assert handler({"arguments": []})["success"] is False


# -- a Redshift run against a fake cluster, with the real S3 server ---------------------


class FakeCursor:
    """Records every statement; answers the few queries a run reads back."""

    def __init__(self, log: list):
        self.log, self.rowcount, self._rows = log, 0, []

    def execute(self, text, params=None):
        self.log.append((text, params))
        answers = {star.ACCOUNTING: [(0, 0, 0, 0, 0, 0, 0)], star.FILTERED: []}
        self._rows = answers.get(text, [(0,)] if text.startswith("SELECT COUNT(*)") else [])
        return self

    def fetchone(self):
        return self._rows[0]

    def fetchall(self):
        return self._rows


class FakeConnection:
    def __init__(self):
        self.log: list = []

    def execute(self, text, params=None):
        return FakeCursor(self.log).execute(text, params)

    def cursor(self):
        return FakeCursor(self.log)

    def transaction(self):
        from contextlib import nullcontext

        self.log.append(("BEGIN", None))
        return nullcontext()

    def close(self):
        pass


def test_a_run_uploads_local_files_and_copies_them_in_one_transaction(s3_bucket, sample):
    con = FakeConnection()
    t = _redshift(f"s3://{s3_bucket}/stage")
    t._connect_fn = lambda url, autocommit: con
    songs = sample / "song_data" / "A" / "A" / "A"
    pipeline.run(t, str(songs), str(sample / "log_data"))
    s3 = boto3.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert f"stage/jsonpaths/{staging.STAGING_EVENTS}.json" in keys
    paths = json.loads(s3.get_object(Bucket=s3_bucket, Key=f"stage/jsonpaths/{staging.STAGING_EVENTS}.json")
                       ["Body"].read())["jsonpaths"]
    assert paths[0] == "$['ts']" and len(paths) == 14
    log_manifest = next(k for k in keys if k.endswith("/log.manifest"))
    entries = json.loads(s3.get_object(Bucket=s3_bucket, Key=log_manifest)["Body"].read())["entries"]
    assert len(entries) == 30 and all(e["mandatory"] for e in entries)
    first = entries[0]["url"].split("/", 3)[3]
    local = sorted((sample / "log_data").rglob("*.json"))[0]
    assert s3.get_object(Bucket=s3_bucket, Key=first)["Body"].read() == local.read_bytes()
    texts = [text for text, _ in con.log]
    copies = [x for x in texts if x.startswith("COPY ")]
    assert copies[0].startswith("COPY staging_events") and f"s3://{s3_bucket}/{log_manifest}" in copies[0]
    assert copies[1].startswith("COPY staging_songs")
    begins = [i for i, x in enumerate(texts) if x == "BEGIN"]
    assert begins[-1] < texts.index(copies[0]) < texts.index(next(x for x in texts if x.startswith("MERGE")))
    assert texts.index(next(x for x in texts if "_sparkify_runs" in x and x.startswith("INSERT"))) > begins[-1]
    files = [p for text, p in con.log if text.startswith(f"INSERT INTO {staging.STAGED_FILES}")]
    assert {p[0] for p in files} == {str(p) for p in (sample / "log_data").rglob("*.json")} | \
        {str(p) for p in songs.rglob("*.json")}


def test_s3_sources_are_copied_in_place(s3_bucket, sample):
    s3 = boto3.client("s3")
    for path in (sample / "log_data").rglob("*.json"):
        s3.upload_file(str(path), s3_bucket, f"raw/log_data/{path.name}")
    s3.upload_file(str(next((sample / "song_data").rglob("*.json"))), s3_bucket, "raw/song_data/one.json")
    con = FakeConnection()
    t = _redshift(f"s3://{s3_bucket}/stage")
    t._connect_fn = lambda url, autocommit: con
    pipeline.run(t, f"s3://{s3_bucket}/raw/song_data", f"s3://{s3_bucket}/raw/log_data")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="stage/")["Contents"]}
    assert not [k for k in keys if "/log/" in k or "/song/" in k]  # nothing uploaded but manifests and JSONPaths
    manifest = next(k for k in keys if k.endswith("/log.manifest"))
    urls = [e["url"] for e in json.loads(s3.get_object(Bucket=s3_bucket, Key=manifest)["Body"].read())["entries"]]
    assert urls[0] == f"s3://{s3_bucket}/raw/log_data/2018-11-01-events.json"


# -- the shared SQL on the real PostgreSQL server --------------------------------------


def _duck(data: Path, tmp_path: Path) -> tuple[str, dict]:
    duck = str(tmp_path / "ref.duckdb")
    return duck, run_json("--songs", data / "song_data", "--logs", data / "log_data", "--target", duck)


def _pushdown(data: Path, pg_url: str, *extra: str) -> dict:
    return run_json("--songs", data / "song_data", "--logs", data / "log_data", "--target", pg_url,
                    "--pushdown", *extra)


def _rejects(url: str, *more: str) -> list[tuple]:
    """(kind, source_file, line, *more) of every reject, in order."""
    target = open_target(url)
    try:
        _, rows = target.query(f"SELECT {', '.join(('kind', 'source_file', 'line', *more))} FROM rejects "
                               "ORDER BY 1, 2, 3")
        return list(rows)
    finally:
        target.close()


def test_pushdown_on_a_noisy_dataset_equals_duckdb(pg_url, tmp_path):
    data = tmp_path / "noisy"
    code, _ = run_cli("generate", "--out", data, "--events", "4000", "--songs", "400", "--seed", "7",
                      "--dirty", "0.05", "--match-rate", "0.5")
    assert code == 0
    manifest = json.loads((data / "manifest.json").read_text())
    summary = _pushdown(data, pg_url)
    duck, ref = _duck(data, tmp_path)
    assert balanced(summary) and summary["accounting"] == ref["accounting"]
    assert summary["accounting"]["events"]["rejected"] > 0 and summary["accounting"]["songs"]["rejected"] > 0
    assert summary["accounting"]["events"]["read"] == manifest["expected"]["events"]["read"]
    assert star_rows(pg_url) == star_rows(duck)
    assert _rejects(pg_url) == _rejects(duck)


def test_pushdown_increment_and_interplay_with_the_default_path(pg_url, sample_copy, tmp_path):
    later = tmp_path / "later"
    later.mkdir()
    days = sorted((sample_copy / "log_data").rglob("*.json"))
    for path in days[15:]:
        path.rename(later / path.name)
    run_json("--songs", sample_copy / "song_data", "--logs", sample_copy / "log_data", "--target", pg_url)
    for path in later.iterdir():
        path.rename(days[0].parent / path.name)
    summary = _pushdown(sample_copy, pg_url)
    assert summary["files"]["logs"] == {"new": 15, "skipped": 15} and balanced(summary)
    duck, _ = _duck(sample_copy, tmp_path)
    assert star_rows(pg_url) == star_rows(duck)


def redshift_functions_on_postgres() -> list[str]:
    return wtext.postgres_shims() + wtext.json_functions() + wtext.text_functions(staging.REDSHIFT)


def _mojibake(text: str, rounds: int) -> str:
    for _ in range(rounds):
        text = text.encode("utf-8").decode("latin-1")
    return text


def _without_nfc(text: str | None) -> str | None:
    """normalize.clean_text without its NFC step (Redshift SQL has none), from normalize's own parts."""
    if text is None:
        return None
    text = unquote(repair_mojibake(text).strip()).strip()
    return text or None


ALPHABET = st.one_of(
    st.characters(min_codepoint=1, max_codepoint=0xFF),
    st.characters(min_codepoint=0x100, max_codepoint=0x17F, exclude_characters="\u0130"),
    st.characters(min_codepoint=0x300, max_codepoint=0x36F),  # combining marks: NFC matters
    st.characters(min_codepoint=0x391, max_codepoint=0x3C9, exclude_characters="\u03a3"),  # Greek, no final sigma
    st.sampled_from("日本語ሀቿ€™…😀☃\u212b\ufeff"),
)
"""Characters whose lower case PostgreSQL (C.UTF-8) and Python agree on: İ and Σ (final sigma) are not."""

TEXTS = st.one_of(
    st.text(ALPHABET, max_size=12),
    st.builds(_mojibake, st.text(ALPHABET, max_size=12), st.integers(1, 4)),
    st.text(st.characters(min_codepoint=1, max_codepoint=0xFF), max_size=12),  # Latin-1: mostly invalid UTF-8
    st.builds(lambda pre, text, post: pre + text + post, st.sampled_from(["", " ", '"', ' " ']),
              st.builds(_mojibake, st.text(ALPHABET, max_size=8), st.integers(0, 3)),
              st.sampled_from(["", " ", '"', ' " '])),
)


@pytest.fixture()
def redshift_functions(pg_url):
    """A connection on which the Redshift text functions (and only they) are defined."""
    with psycopg.connect(pg_url, autocommit=True) as con:
        for statement in redshift_functions_on_postgres():
            con.execute(statement)
        yield con


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(TEXTS, min_size=1, max_size=40))
def test_redshift_text_functions_on_postgres_equal_normalize(redshift_functions, values):
    """clean and key as the shared SQL calls them, Redshift UDFs and all, against normalize.py.

    Equal to the spec without NFC on every value; equal to the spec itself
    whenever NFC changes nothing. An invalid byte handed to
    FROM_VARBYTE(..., 'utf8') would raise here (convert_from refuses it).
    """
    rows = redshift_functions.execute(
        f"SELECT v, {wtext.clean('v')}, {wtext.key(wtext.clean('v'))} "
        "FROM unnest(CAST(%s AS VARCHAR[])) WITH ORDINALITY AS u(v, n) ORDER BY n", [values]).fetchall()
    for value, cleaned, keyed in rows:
        expected = _without_nfc(value)
        assert cleaned == expected, value
        twice = _without_nfc(expected)
        assert keyed == (twice.lower() if twice is not None else None), value
        if unicodedata.is_normalized("NFC", repair_mojibake(value)):
            assert cleaned == clean_text(value), value
            if twice is not None and twice.lower() == twice.casefold() and unicodedata.is_normalized("NFC", twice):
                assert keyed == match_key(clean_text(value)), value


def test_redshift_repair_examples_and_its_length_limit(redshift_functions):
    """Each round applied only when lossless, up to three; values over REPAIR_MAX_BYTES are left as they are."""
    def repair(value: str) -> str:
        return redshift_functions.execute(f"SELECT {wtext.repaired('CAST(%s AS VARCHAR)')}", [value]).fetchone()[0]

    for rounds in range(5):
        for text in ("Beyoncé", "Motörhead ☃ 😀", "L(é*+8", "Ì8,<L|", "L:3ã|(+"):  # hex pairs read out of step
            mojibake = _mojibake(text, rounds)
            assert repair(mojibake) == repair_mojibake(mojibake)
            assert (repair(mojibake) == text) == (rounds <= 3)
    assert repair("BeyoncÃ© ☃") == "BeyoncÃ© ☃"  # not all Latin-1: no round
    assert repair("Ã(") == "Ã("  # Latin-1, but not UTF-8 once encoded
    invalid = ["\u00c0\u0080", "\u00c1\u00bf", "\u00e0\u0080\u0080", "\u00ed\u00a0\u0080",
               "\u00f0\u0080\u0080\u0080", "\u00f4\u0090\u0080\u0080", "\u00f5\u0080\u0080\u0080", "\u0080",
               "\u00c3", "\u00e2\u0082"]  # overlong, surrogate, above U+10FFFF, stray or cut sequences
    for value in invalid:
        assert repair_mojibake(value) == value and repair(value) == value, value
    assert [repair(v) for v in ("\u00ed\u009f\u00bf", "\u00f4\u008f\u00bf\u00bf")] == ["\ud7ff", "\U0010ffff"]
    longest = "x" * (wtext.REPAIR_MAX_BYTES - 4) + "Ã©"
    assert len(longest.encode()) == wtext.REPAIR_MAX_BYTES and repair(longest) == longest[:-2] + "é"
    assert repair("x" + longest) == "x" + longest


def test_redshift_text_functions_on_postgres_equal_duckdb_on_mojibake(pg_url, tmp_path, monkeypatch):
    """A run with the Redshift functions (shims for TO_VARBYTE/FROM_VARBYTE) on a noisy dataset whose
    accented titles and artists arrive mis-decoded once or twice: every table equals DuckDB's."""
    data = tmp_path / "accents"
    assert run_cli("generate", "--out", data, "--events", "3000", "--songs", "300", "--seed", "5",
                   "--match-rate", "0.6", "--dirty", "0.05")[0] == 0
    mojibake = json.loads((data / "manifest.json").read_text())["mojibake_plays"]
    assert mojibake["song"] > 0 and mojibake["artist"] > 0
    # the in-warehouse run with Redshift's text functions, TO_VARBYTE/FROM_VARBYTE given by PostgreSQL shims
    monkeypatch.setattr(warehouse_engine, "text_functions", lambda *_: redshift_functions_on_postgres())
    summary = pipeline.run(PostgresTarget.from_url(pg_url, {"pushdown": "true"}), str(data / "song_data"),
                           str(data / "log_data"))
    duck, ref = _duck(data, tmp_path)
    assert summary["accounting"] == ref["accounting"] and summary["accounting"]["events"]["rejected"] > 0
    got, expected = star_rows(pg_url), star_rows(duck)
    assert got == expected
    song_of = {r[0]: r[4] for r in got["songplays"]}
    repaired = [song_of.get(_songplay_id(e)) for e in _events(data) if e.get("page") == "NextSong"
                and isinstance(e.get("song"), str) and repair_mojibake(e["song"]) != e["song"]]
    assert [s for s in repaired if s is not None], "plays whose title arrived mis-decoded found their songs"
    assert _rejects(pg_url) == _rejects(duck)


def _events(data: Path) -> list[dict]:
    out = []
    for path in sorted((data / "log_data").rglob("*.json")):
        for line in path.read_bytes().splitlines():
            try:
                record = json.loads(line)
            except ValueError:  # the dataset's planted bad lines, undecodable ones included
                continue
            if isinstance(record, dict):
                out.append(record)
    return out


def _songplay_id(event: dict) -> int | None:
    """md5 of session|item|user|ts, first 15 hex digits: the engines' songplay_id, for a well-typed event."""
    import hashlib

    parts = [str(event.get(k)) for k in ("sessionId", "itemInSession", "userId", "ts")]
    if not all(re.fullmatch("-?[0-9]+", p) for p in parts):
        return None
    return int(hashlib.md5("|".join(str(int(p)) for p in parts).encode()).hexdigest()[:15], 16)


def test_nul_in_text_gets_the_same_verdict_in_pushdown_and_duckdb(pg_url, sample_copy, tmp_path):
    """A \\u0000 escape in a JSON string (staged as that escape) rejects its record with the engines'
    reason; a raw NUL byte makes the line invalid JSON. Star, accounting and rejects equal DuckDB's."""
    log = sorted((sample_copy / "log_data").rglob("*.json"))[3]
    lines = log.read_text().splitlines()
    play = next(json.loads(line) for line in lines if json.loads(line)["page"] == "NextSong")
    planted = [
        json.dumps({**play, "itemInSession": 9100, "location": "Nul\u0000City"}),
        json.dumps({**play, "itemInSession": 9101, "artist": "A\u0000", "song": "S\u0000"}),
        json.dumps({**play, "itemInSession": 9102, "firstName": "\u0000"}),
        json.dumps({**play, "itemInSession": 9103, "page": "Home", "userAgent": "x\u0000y"}),
        json.dumps({**play, "itemInSession": 9104, "artist": "@@"}).replace("@@", "Nul\x00Byte"),
    ]
    log.write_text("\n".join(lines[:5] + planted + lines[5:]) + "\n")
    song = min((sample_copy / "song_data").rglob("*.json"))
    record = json.loads(song.read_text())
    song.write_text(json.dumps({**record, "title": record["title"] + "\u0000"}))
    summary = _pushdown(sample_copy, pg_url)
    duck, ref = _duck(sample_copy, tmp_path)
    assert balanced(summary) and summary["accounting"] == ref["accounting"]
    assert summary["accounting"]["events"]["rejected"] == 5 and summary["accounting"]["songs"]["rejected"] == 1
    assert star_rows(pg_url) == star_rows(duck)
    assert _rejects(pg_url) == _rejects(duck)
    reasons = {r[:3]: r[3:] for r in _rejects(pg_url, "reason", "raw")}
    expected = {r[:3]: r[3:] for r in _rejects(duck, "reason", "raw")}
    nul = [k for k, (reason, _) in expected.items() if HOLDS_NUL in reason]
    assert len(nul) == 5
    assert {k: reasons[k] for k in nul} == {k: expected[k] for k in nul}
    assert reasons[("song", str(song), 1)][0] == f"title: {HOLDS_NUL}"



def test_pushdown_url_option_and_dry_runs(pg_url, capsys):
    assert strip_pushdown(pg_url + "?pushdown=true&sslmode=disable") == pg_url + "?sslmode=disable"
    assert cli.main(["schema", "--target", "postgresql://nobody@127.0.0.1:1/none", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert 'CREATE TABLE IF NOT EXISTS "public"."songplays"' in out and "FOREIGN KEY" in out
    assert cli.main(["schema", "--target", f"{URL}&staging=s3://abc/x", "--dry-run", "--reset"]) == 0
    out = capsys.readouterr().out
    assert 'DROP TABLE IF EXISTS "public"."songplays";' in out and "DISTSTYLE ALL" in out


def test_run_dry_run_prints_and_touches_nothing(sample, capsys):
    args = ["run", "--songs", str(sample / "song_data"), "--logs", str(sample / "log_data"), "--dry-run"]
    assert cli.main([*args, "--target", f"{URL}&staging=s3://abc/x"]) == 0
    out = capsys.readouterr().out
    assert out.count("-- upload ") == 101 and "COPY staging_events" in out and "MERGE INTO" in out
    unreachable = "postgresql://nobody@127.0.0.1:1/none"
    assert cli.main([*args, "--target", unreachable, "--pushdown"]) == 0
    out = capsys.readouterr().out
    assert "CREATE TEMP TABLE b_songplays AS" in out and "BIT(60)" in out
    assert cli.main([*args, "--target", unreachable]) == 0
    assert "ON CONFLICT" in capsys.readouterr().out
