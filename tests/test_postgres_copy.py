"""The PostgreSQL target: the exact SQL and COPY bytes (a fake cursor, no server), and the binary
COPY encoder against the server.
"""

from __future__ import annotations

import datetime as dt
import struct
from contextlib import contextmanager

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparkify.targets.postgres import PostgresTarget
from sparkify.targets.postgres import copy as pgcopy
from tests.pgutil import (
    _one_row_batch,
    _pg,
)

pytestmark = pytest.mark.postgres


# -- the exact SQL and bytes (fake cursor, no server) ---------------------------------------------

class FakeCopy:
    def __init__(self, log: list):
        self.log = log

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def write(self, data) -> None:
        self.log.append(bytes(data))


class FakeCursor:
    """Answers the two questions write() asks: is the star empty, how many songplays does it hold."""

    def __init__(self, log: list, empty: bool):
        self.log, self.empty, self.rowcount, self.last = log, empty, 0, ""

    def execute(self, statement, params=None):
        self.log.append(statement if params is None else (statement, params))
        self.rowcount, self.last = 1, statement
        return self

    def fetchone(self):
        return (1e9,) if "reltuples" in self.last else (self.empty,)

    def copy(self, statement):
        self.log.append(statement)
        self.rowcount = 1
        return FakeCopy(self.log)


class FakeConnection:
    def __init__(self, empty: bool):
        self.log: list = []
        self.empty = empty

    @contextmanager
    def transaction(self):
        self.log.append("BEGIN")
        yield
        self.log.append("COMMIT")

    def cursor(self):
        return FakeCursor(self.log, self.empty)


def _fake_target(empty: bool, schema: str = "public") -> tuple[PostgresTarget, FakeConnection]:
    target = PostgresTarget("postgresql://u:secret@h/db", schema=schema)
    fake = FakeConnection(empty)
    target._con = fake
    target._started = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    return target, fake


def _field(fmt: str, value) -> bytes:
    data = struct.pack(fmt, value) if fmt else value.encode()
    return struct.pack("!i", len(data)) + data


SONGPLAY_ROW = (
    struct.pack("!h", 9) + _field("!q", 7)
    + _field("!q", (1541106106796 - 946684800000) * 1000)  # microseconds since 2000-01-01 UTC
    + _field("!q", 8) + _field("", "free") + struct.pack("!i", -1) + struct.pack("!i", -1)
    + _field("!q", 139) + _field("", "Phoenix, AZ") + _field("", "Mozilla")
)
"""b_songplays' row in PostgreSQL binary COPY form, built by hand from the format's documentation."""


def test_merge_sends_exactly_this_sql():
    target, fake = _fake_target(empty=False, schema="an")
    target.write(_one_row_batch(), False, lambda result: "{}")
    log = fake.log
    statements = [s for s in log if isinstance(s, str)]
    assert statements[0] == "BEGIN"
    assert statements[1].startswith('SELECT NOT EXISTS (SELECT FROM "an"."artists") AND NOT EXISTS')
    at = statements.index('CREATE TEMP TABLE "b_songplays" ("songplay_id" bigint, "start_time" timestamptz, '
                          '"user_id" bigint, "level" text, "song_id" text, "artist_id" text, '
                          '"session_id" bigint, "location" text, "user_agent" text) ON COMMIT DROP')
    assert statements[at + 1] == (
        'COPY pg_temp."b_songplays" ("songplay_id", "start_time", "user_id", "level", "song_id", "artist_id", '
        '"session_id", "location", "user_agent") FROM STDIN (FORMAT BINARY)')
    copied = log[log.index(statements[at + 1]) + 1: log.index('ANALYZE pg_temp."b_songplays"')]
    assert b"".join(copied) == pgcopy.SIGNATURE + SONGPLAY_ROW + struct.pack("!h", -1)
    assert (
        'INSERT INTO "an"."songplays" ("songplay_id", "start_time", "user_id", "level", "song_id", "artist_id", '
        '"session_id", "location", "user_agent") SELECT "songplay_id", "start_time", "user_id", "level", '
        '"song_id", "artist_id", "session_id", "location", "user_agent" FROM pg_temp."b_songplays" '
        'ON CONFLICT ("songplay_id") DO NOTHING') in statements
    assert ('INSERT INTO "an"."time" ("start_time", "hour", "day", "week", "month", "year", "weekday") '
            'SELECT "start_time", "hour", "day", "week", "month", "year", "weekday" FROM pg_temp."b_time" '
            'ON CONFLICT ("start_time") DO NOTHING') in statements
    low = -9223372036854775808
    sb, ss = f"coalesce(b.session_id, {low})", f"coalesce(s.session_id, {low})"
    ib, is_ = f"coalesce(b.item_in_session, {low})", f"coalesce(s.item_in_session, {low})"
    fb, fs = 'b.tie_first_name COLLATE "C"', 's.tie_first_name COLLATE "C"'
    lb, ls = 'b.tie_last_name COLLATE "C"', 's.tie_last_name COLLATE "C"'
    gb, gs = 'b.tie_gender COLLATE "C"', 's.tie_gender COLLATE "C"'
    vb, vs = 'b.tie_level COLLATE "C"', 's.tie_level COLLATE "C"'
    assert (
        'INSERT INTO "an"."users" ("user_id", "first_name", "last_name", "gender", "level") '
        'SELECT "user_id", "first_name", "last_name", "gender", "level" FROM (SELECT b.* FROM pg_temp."b_users" b '
        'LEFT JOIN "an"."_sparkify_user_latest" s ON s.user_id = b.user_id WHERE s.user_id IS NULL OR '
        f"(b.ts > s.ts OR (b.ts = s.ts AND ({sb} > {ss} OR ({sb} = {ss} AND ({ib} > {is_} OR ({ib} = {is_} AND "
        f"({fb} > {fs} OR ({fb} = {fs} AND ({lb} > {ls} OR ({lb} = {ls} AND ({gb} > {gs} OR ({gb} = {gs} AND "
        f"{vb} > {vs}))))))))))))) AS newer "
        'ON CONFLICT ("user_id") DO UPDATE SET '
        '"first_name" = excluded."first_name", "last_name" = excluded."last_name", "gender" = excluded."gender", '
        '"level" = excluded."level"') in statements
    assert ('SELECT reltuples FROM pg_class WHERE oid = %s::regclass', ['"an"."songplays"']) in log
    staged = [s.split('"')[1] for s in statements if s.startswith('CREATE TEMP TABLE "')]
    assert staged == ["b_artists", "b_songs", "b_song_records", "b_users", "b_time", "b_songplays",
                      "b_play_keys", "b_rejects", "b_files"]
    assert log[-2] == ('INSERT INTO "an"."_sparkify_runs" (run_id, started_at, finished_at, summary) '
                       "VALUES (%s, %s, clock_timestamp(), %s)",
                       ["run-1", dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "{}"])
    assert log[-1] == "COMMIT"
    assert not any(s.startswith(("ALTER", "DROP INDEX")) for s in statements), "a small merge keeps the keys"


def test_first_load_copies_straight_in_and_builds_the_keys_after():
    target, fake = _fake_target(empty=True)
    target.write(_one_row_batch(), False, lambda result: "{}")
    statements = [s for s in fake.log if isinstance(s, str)]
    copy = ('COPY "public"."songplays" ("songplay_id", "start_time", "user_id", "level", "song_id", "artist_id", '
            '"session_id", "location", "user_agent") FROM STDIN (FORMAT BINARY, FREEZE)')
    at = fake.log.index(copy)
    assert b"".join(fake.log[at + 1: at + 4]) == pgcopy.SIGNATURE + SONGPLAY_ROW + struct.pack("!h", -1)
    at = statements.index(copy)
    drops = statements.index('ALTER TABLE "public"."songplays" DROP CONSTRAINT IF EXISTS "songplays_pkey"')
    assert statements.index('ALTER TABLE "public"."songplays" DROP CONSTRAINT IF EXISTS "songplays_user_id_fkey"') \
        < statements.index('DROP INDEX IF EXISTS "public"."songplays_start_time_idx"') < drops < at
    truncate = next(i for i, s in enumerate(statements) if s.startswith("TRUNCATE "))
    assert drops < truncate < at and '"public"."songplays"' in statements[truncate], "emptied here: COPY FREEZE"
    assert '"public"."_sparkify_runs"' not in statements[truncate], "the runs' history is kept"
    builds = [
        'ALTER TABLE "public"."songplays" ADD CONSTRAINT "songplays_pkey" PRIMARY KEY ("songplay_id")',
        'CREATE INDEX IF NOT EXISTS "songplays_start_time_idx" ON "public"."songplays" ("start_time")',
        "SET LOCAL enable_hashjoin = off",
        'ALTER TABLE "public"."songplays" ADD CONSTRAINT "songplays_start_time_fkey" FOREIGN KEY ("start_time") '
        'REFERENCES "public"."time" ("start_time")',
    ]
    positions = [statements.index(s) for s in builds]
    assert at < positions[0] < positions[1] < positions[2] < positions[3]
    artist = statements.index('ALTER TABLE "public"."songplays" ADD CONSTRAINT "songplays_artist_id_fkey" '
                              'FOREIGN KEY ("artist_id") REFERENCES "public"."artists" ("artist_id")')
    assert statements[artist - 1] == "SET LOCAL enable_hashjoin TO DEFAULT", "no index on artist_id: a hash join"
    assert statements[-3:-1] == ["SET LOCAL enable_hashjoin TO DEFAULT", "SET LOCAL maintenance_work_mem TO DEFAULT"]
    assert not any(s.startswith(("CREATE TEMP", "INSERT INTO \"public\".\"songplays\"")) for s in statements)
    users = ('COPY "public"."_sparkify_user_latest" ("user_id", "ts", "session_id", "item_in_session", '
             '"tie_first_name", "tie_last_name", "tie_gender", "tie_level") FROM STDIN')
    assert any(s.startswith(users) for s in statements)


# -- the COPY encoder against the server -----------------------------------------------------------

_COLUMNS = {
    "i8": (pa.int64(), st.integers(-2**63, 2**63 - 1)),
    "i4": (pa.int32(), st.integers(-2**31, 2**31 - 1)),
    "f8": (pa.float64(), st.floats(allow_nan=False)),
    "tx": (pa.string(), st.text()),
    "ts": (pa.timestamp("us", "UTC"), st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31),
                                                    timezones=st.just(dt.timezone.utc))),
}


@pytest.fixture(scope="module")
def roundtrip_con(pg_server):
    with _pg(pg_server) as con:
        con.execute("SET TimeZone = 'UTC'")
        con.execute("CREATE TEMP TABLE rt (n integer, i8 bigint, i4 integer, f8 double precision, tx text, "
                    "ts timestamptz)")
        yield con


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(*(st.none() | strategy for _, strategy in _COLUMNS.values())), max_size=30))
def test_binary_copy_roundtrips_every_type(roundtrip_con, rows):
    rows = [tuple(v.replace("\x00", "") if isinstance(v, str) else v for v in row) for row in rows]
    columns = [pa.array(list(range(len(rows))), pa.int32())] + [
        pa.array([row[i] for row in rows], kind) for i, (kind, _) in enumerate(_COLUMNS.values())]
    table = pa.table(columns, names=["n", *_COLUMNS])
    roundtrip_con.execute("TRUNCATE rt")
    with roundtrip_con.cursor().copy("COPY rt FROM STDIN (FORMAT BINARY)") as copy:
        for chunk in pgcopy.stream(table.to_batches(max_chunksize=7)):
            copy.write(chunk)
    assert roundtrip_con.execute("SELECT i8, i4, f8, tx, ts FROM rt ORDER BY n").fetchall() == rows
