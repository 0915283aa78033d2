"""Run plain.sql: the five tables the simple way, into a fresh DuckDB file.

Usage: python bench/baselines/plain_duckdb.py SONG_DIR LOG_DIR TARGET.duckdb. Prints {"songplays": N} as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import duckdb


def main(song_dir: str, log_dir: str, target: str) -> None:
    con = duckdb.connect(target)
    con.execute("SET VARIABLE songs = ?", [f"{song_dir}/**/*.json"])
    con.execute("SET VARIABLE logs = ?", [f"{log_dir}/**/*.json"])
    con.execute((Path(__file__).parent / "plain.sql").read_text())
    print(json.dumps({"songplays": con.execute("SELECT count(*) FROM songplays").fetchone()[0]}))
    con.close()


if __name__ == "__main__":
    main(*sys.argv[1:4])
