"""The original projects' way, reimplemented as a baseline: pandas and one INSERT per row into PostgreSQL.

The widespread Udacity "Data Modeling with Postgres" etl.py: every song file
read with pandas.read_json and inserted row by row into songs and artists;
every log file read, filtered to NextSong, and each row inserted into time,
users and songplays, after one SELECT per play to find its song. Its
songplay_id is the row's index in its file, so ids collide across files and
ON CONFLICT DO NOTHING keeps only the first file's plays with that index.

Too slow to run whole at scale: --max-songs and --max-events stop each phase
early (at a file boundary); the output says how much was done, and the
harness extrapolates each phase linearly. The benchmark caps only the
events: each play's SELECT scans the songs table (the original has no index
on title), so a play costs in proportion to the catalogue loaded, and a
capped catalogue would understate every play's cost.

Usage: python bench/baselines/original_etl.py SONG_DIR LOG_DIR POSTGRES_URL [--max-songs N] [--max-events N]
Prints {"songs_done", "songs_total", "songs_seconds", "events_done", "events_total", "logs_seconds"}.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import time

import pandas as pd
import psycopg

CREATE = """
DROP TABLE IF EXISTS songplays, users, songs, artists, time;
CREATE TABLE songplays (songplay_id INT PRIMARY KEY, start_time TIMESTAMP NOT NULL, user_id INT NOT NULL,
    level VARCHAR, song_id VARCHAR, artist_id VARCHAR, session_id INT, location VARCHAR, user_agent VARCHAR);
CREATE TABLE users (user_id INT PRIMARY KEY, first_name VARCHAR, last_name VARCHAR, gender CHAR(1), level VARCHAR);
CREATE TABLE songs (song_id VARCHAR PRIMARY KEY, title VARCHAR, artist_id VARCHAR, year INT, duration FLOAT);
CREATE TABLE artists (artist_id VARCHAR PRIMARY KEY, name VARCHAR, location VARCHAR, latitude FLOAT,
    longitude FLOAT);
CREATE TABLE time (start_time TIMESTAMP PRIMARY KEY, hour INT, day INT, week INT, month INT, year INT,
    weekday INT);
"""
SONG_INSERT = "INSERT INTO songs VALUES (%s, %s, %s, %s, %s) ON CONFLICT (song_id) DO NOTHING"
ARTIST_INSERT = "INSERT INTO artists VALUES (%s, %s, %s, %s, %s) ON CONFLICT (artist_id) DO NOTHING"
TIME_INSERT = "INSERT INTO time VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (start_time) DO NOTHING"
USER_INSERT = ("INSERT INTO users VALUES (%s, %s, %s, %s, %s) "
               "ON CONFLICT (user_id) DO UPDATE SET level = EXCLUDED.level")
SONG_SELECT = ("SELECT songs.song_id, artists.artist_id FROM songs JOIN artists ON songs.artist_id = artists.artist_id "
               "WHERE songs.title = %s AND artists.name = %s AND songs.duration = %s")
SONGPLAY_INSERT = "INSERT INTO songplays VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"


def _plain(values: list) -> list:
    """numpy scalars and NaN as the Python values psycopg adapts."""
    return [None if pd.isna(v) else v.item() if hasattr(v, "item") else v for v in values]


def process_song_file(cur, path: str) -> None:
    df = pd.read_json(path, lines=True)
    cur.execute(SONG_INSERT, _plain(df[["song_id", "title", "artist_id", "year", "duration"]].values[0].tolist()))
    cur.execute(ARTIST_INSERT, _plain(df[["artist_id", "artist_name", "artist_location", "artist_latitude",
                                          "artist_longitude"]].values[0].tolist()))


def process_log_file(cur, path: str) -> int:
    df = pd.read_json(path, lines=True)
    if df.empty:
        return 0
    df = df[df["page"] == "NextSong"]
    t = pd.to_datetime(df["ts"], unit="ms")
    time_df = pd.DataFrame({"start_time": t, "hour": t.dt.hour, "day": t.dt.day,
                            "week": t.dt.isocalendar().week, "month": t.dt.month, "year": t.dt.year,
                            "weekday": t.dt.day_of_week})
    for _, row in time_df.iterrows():
        cur.execute(TIME_INSERT, _plain(list(row)))
    for _, row in df[["userId", "firstName", "lastName", "gender", "level"]].iterrows():
        cur.execute(USER_INSERT, _plain(list(row)))
    for index, row in df.iterrows():
        cur.execute(SONG_SELECT, (row.song, row.artist, row.length))
        found = cur.fetchone()
        song_id, artist_id = found if found else (None, None)
        cur.execute(SONGPLAY_INSERT, _plain([index, pd.to_datetime(row.ts, unit="ms"), row.userId, row.level,
                                             song_id, artist_id, row.sessionId, row.location, row.userAgent]))
    return len(df)


def _files(root: str) -> list[str]:
    return sorted(glob.glob(os.path.join(root, "**", "*.json"), recursive=True))


def _lines(path: str) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("songs")
    parser.add_argument("logs")
    parser.add_argument("url")
    parser.add_argument("--max-songs", type=int)
    parser.add_argument("--max-events", type=int)
    args = parser.parse_args()
    songs, logs = _files(args.songs), _files(args.logs)
    report = {"songs_total": len(songs), "events_total": sum(_lines(p) for p in logs)}
    with psycopg.connect(args.url) as conn, conn.cursor() as cur:
        cur.execute(CREATE)
        conn.commit()
        started, done = time.perf_counter(), 0
        for path in songs[: args.max_songs]:
            process_song_file(cur, path)
            conn.commit()
            done += 1
        report |= {"songs_done": done, "songs_seconds": round(time.perf_counter() - started, 3)}
        started, done = time.perf_counter(), 0
        for path in logs:
            if args.max_events is not None and done >= args.max_events:
                break
            process_log_file(cur, path)
            conn.commit()
            done += _lines(path)
        report |= {"events_done": done, "logs_seconds": round(time.perf_counter() - started, 3)}
        cur.execute("SELECT count(*) FROM songplays")
        report["songplays"] = cur.fetchone()[0]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
