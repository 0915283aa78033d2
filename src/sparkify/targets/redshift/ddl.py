"""Redshift's DDL: the star and its state with distribution and sort keys, keys declared (informational)."""

from __future__ import annotations

from sparkify.schema import (
    ARTISTS,
    LOADED_FILES,
    PLAY_KEYS,
    REJECTS,
    RUNS,
    SONG_RECORDS,
    SONGPLAYS,
    SONGS,
    STAR,
    STATE,
    TIME,
    USER_LATEST,
    USERS,
    Dialect,
    create_table_sql,
)
from sparkify.staging import VARCHAR_MAX, q

REDSHIFT_DDL = Dialect(
    "redshift",
    {"bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE PRECISION", "text": VARCHAR_MAX,
     "timestamp": "TIMESTAMPTZ"},
    enforce_foreign_keys=True,
    extra_table_clause={
        ARTISTS.name: " DISTSTYLE ALL SORTKEY (\"artist_id\")",
        SONGS.name: " DISTSTYLE ALL SORTKEY (\"song_id\")",
        USERS.name: " DISTSTYLE ALL SORTKEY (\"user_id\")",
        TIME.name: " DISTKEY (\"start_time\") SORTKEY (\"start_time\")",
        SONGPLAYS.name: " DISTKEY (\"user_id\") COMPOUND SORTKEY (\"start_time\")",
        REJECTS.name: " DISTSTYLE EVEN",
        LOADED_FILES.name: " DISTSTYLE ALL",
        SONG_RECORDS.name: " DISTSTYLE ALL SORTKEY (\"title_key\")",
        PLAY_KEYS.name: " DISTKEY (\"songplay_id\") COMPOUND SORTKEY (\"title_key\", \"artist_key\")",
        USER_LATEST.name: " DISTSTYLE ALL",
        RUNS.name: " DISTSTYLE ALL",
    },
)
"""Keys are declared (informational in Redshift); see docs/redshift.md for the DIST/SORT choices."""


def redshift_ddl(schema: str) -> list[str]:
    """CREATE SCHEMA and every table of the star and the state, with distribution and sort keys."""
    return [f"CREATE SCHEMA IF NOT EXISTS {q(schema)}"] + [
        create_table_sql(t, REDSHIFT_DDL, schema) for t in STAR + STATE
    ]


def redshift_drop(schema: str) -> list[str]:
    return [f"DROP TABLE IF EXISTS {q(schema)}.{q(t.name)}" for t in reversed(STAR + STATE)]
