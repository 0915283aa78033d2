"""Helpers shared by the PostgreSQL target's tests (tests/test_postgres_*.py)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import duckdb
import psycopg

from sparkify.batch import DuckDBBatch, Run
from sparkify.schema import STAR
from sparkify.targets import open_target

STAR_COUNTS = {"songplays": 6820, "users": 97, "songs": 71, "artists": 69, "time": 6813}
"""The sample's figures, as stated in the issue."""


def _args(data: Path, target: str, *extra) -> tuple:
    return ("--songs", data / "song_data", "--logs", data / "log_data", "--target", target, *extra)


def snapshot(url: str, options: dict | None = None) -> dict[str, list[tuple]]:
    """Every row of the star, the rejects and the ledger, ordered by key, values exactly as stored."""
    target = open_target(url, options or {})
    out = {}
    for table in STAR:
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        order = ", ".join(f'"{c}"' for c in table.primary_key)
        out[table.name] = list(target.query(f'SELECT {cols} FROM "{table.name}" ORDER BY {order}')[1])
    out["rejects"] = list(target.query(
        "SELECT kind, source_file, line, reason, raw FROM rejects ORDER BY kind, source_file, line, raw")[1])
    out["ledger"] = list(target.query(
        'SELECT path, kind, size, modified, records FROM "_sparkify_files" ORDER BY path')[1])
    return out


def _move_days(src: Path, dest: Path, which: slice) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted((src / "log_data" / "2018" / "11").glob("*.json"))[which]:
        shutil.move(path, dest / path.name)


def _move_back(later: Path, data: Path) -> None:
    for path in later.iterdir():
        shutil.move(path, data / "log_data" / "2018" / "11" / path.name)


def _pg(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True)


def _keys(url: str, schema: str = "public") -> set[tuple]:
    """(table, kind, definition) of every constraint and index in the schema."""
    with _pg(url) as con:
        constraints = con.execute(
            "SELECT r.relname::text, c.contype::text, pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "JOIN pg_class r ON r.oid = c.conrelid JOIN pg_namespace n ON n.oid = r.relnamespace "
            "WHERE n.nspname = %s AND c.contype IN ('p', 'f')", [schema]).fetchall()
        indexes = con.execute(
            "SELECT tablename, 'i', indexdef FROM pg_indexes WHERE schemaname = %s", [schema]).fetchall()
    return set(constraints) | set(indexes)


def _aside_schemas(url: str) -> list[str]:
    with _pg(url) as con:
        rows = con.execute(r"SELECT nspname FROM pg_namespace WHERE nspname LIKE '\_sparkify\_aside\_%'")
        return [r[0] for r in rows]


def _wait_for(condition, what: str, limit: float = 60.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def _backend(url: str, query_start: str, waiting: bool = True):
    """The pid of a backend of this database running a query that starts so, blocked on a lock."""
    with _pg(url) as con:
        row = con.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE %s "
            "AND pid <> pg_backend_pid() AND (NOT %s OR wait_event_type = 'Lock')",
            [query_start + "%", waiting]).fetchone()
    return row and row[0]


def _one_row_batch() -> DuckDBBatch:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.execute("""CREATE TEMP TABLE b_songplays AS SELECT 7::BIGINT AS songplay_id,
        TIMESTAMPTZ '2018-11-01 21:01:46.796+00' AS start_time, 8::BIGINT AS user_id, 'free' AS level,
        NULL::VARCHAR AS song_id, NULL::VARCHAR AS artist_id, 139::BIGINT AS session_id,
        'Phoenix, AZ' AS location, 'Mozilla' AS user_agent""")
    con.execute("CREATE TEMP TABLE b_time AS SELECT TIMESTAMPTZ '2018-11-01 21:01:46.796+00' AS start_time, "
                 "21 AS hour, 1 AS day, 44 AS week, 11 AS month, 2018 AS year, 4 AS weekday")
    con.execute("CREATE TEMP TABLE b_users AS SELECT 8::BIGINT AS user_id, 'Kaylee' AS first_name, "
                "'Summers' AS last_name, 'F' AS gender, 'free' AS level, 1541106106796::BIGINT AS ts, "
                "139::BIGINT AS session_id, 0::BIGINT AS item_in_session, 'Kaylee' AS tie_first_name, "
                "'Summers' AS tie_last_name, 'F' AS tie_gender, 'free' AS tie_level")
    con.execute("CREATE TEMP TABLE b_play_keys AS SELECT 7::BIGINT AS songplay_id, "
                "TIMESTAMPTZ '2018-11-01 21:01:46.796+00' AS start_time, 'song' AS title_key, "
                "'artist' AS artist_key, 201.2::DOUBLE AS length")
    con.execute("CREATE TEMP TABLE b_artists AS SELECT 'AR1' AS artist_id, 'Artist' AS name, "
                "NULL::VARCHAR AS location, 1.5::DOUBLE AS latitude, NULL::DOUBLE AS longitude")
    con.execute("CREATE TEMP TABLE b_song_records AS SELECT 'SO1' AS song_id, 'Title' AS title, "
                "'AR1' AS artist_id, 'Artist' AS artist_name, NULL::VARCHAR AS artist_location, "
                "1.5::DOUBLE AS artist_latitude, NULL::DOUBLE AS artist_longitude, NULL::INTEGER AS year, "
                "200.5::DOUBLE AS duration, 'title' AS title_key, 'artist' AS artist_key, "
                "'song_data/SO1.json' AS source_file, 1::BIGINT AS line")
    con.execute("CREATE TEMP TABLE b_songs AS SELECT song_id, title, artist_id, year, duration FROM b_song_records")
    con.execute("CREATE TEMP TABLE b_rejects AS SELECT 'r' AS run_id, 'event' AS kind, 'f.json' AS source_file, "
                "3::BIGINT AS line, 'bad' AS reason, '{' AS raw")
    con.execute("CREATE TEMP TABLE b_files AS SELECT 'f.json' AS path, 'log' AS kind, 10::BIGINT AS size, "
                "'2018-12-01' AS modified, 4::BIGINT AS records, 'r' AS run_id")
    return DuckDBBatch(Run("songs", "logs", [], [], run_id="run-1"), con=con)
