"""The in-warehouse contract: the raw staging tables a SQL target fills and the warehouse engine reads.

The target fills them (COPY from S3 on Redshift, COPY FROM STDIN on
PostgreSQL); the engine (engines/warehouse) types them and builds the star
by SQL in the same session. Every JSON field is staged as text, so the
spec's typing decides, not COPY's. `Warehouse` is what a target tells the
engine about itself: its dialect, where its tables live, and how its text
functions are defined.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparkify.records import EVENT_FIELDS, SONG_FIELDS
from sparkify.schema import Table

VARCHAR_MAX = "VARCHAR(65535)"
"""Redshift's widest text: staging never cuts a value below what the star can hold."""

STAGING_EVENTS = "staging_events"
STAGING_SONGS = "staging_songs"
LOAD_ERRORS = "staging_load_errors"
STAGED_FILES = "staging_files"
RUN_INFO = "staging_run"

RECORD_COLUMNS = ("source_file", "line", "raw")
"""Where a staged record came from: filled by COPY FROM STDIN; Redshift's COPY leaves them NULL."""


def q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def lit(text: str) -> str:
    """A SQL string literal, for text this package writes itself (never for input values)."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class SqlDialect:
    """What differs between the two warehouses in the shared statements."""

    name: str

    def songplay_id(self, identity: str) -> str:
        """The first 15 hex digits of md5(identity) as a BIGINT, as engines/duckdb.py computes it."""
        if self.name == "redshift":
            return f"STRTOL(LEFT(MD5({identity}), 15), 16)"
        return f"CAST(CAST('x' || LEFT(MD5({identity}), 15) AS BIT(60)) AS BIGINT)"

    @property
    def byte_order(self) -> str:
        """What follows a text term of a tie rule so that it compares in byte order, as DuckDB and Spark do:
        PostgreSQL compares by the database's collation unless told otherwise; Redshift has no locales, and
        its default (case_sensitive) collation compares the UTF-8 bytes."""
        return "" if self.name == "redshift" else ' COLLATE "C"'


REDSHIFT = SqlDialect("redshift")
POSTGRES = SqlDialect("postgresql")


@dataclass(frozen=True)
class Names:
    """Where the star and its state live: a qualified-name function for schema.Table."""

    schema: str

    def __call__(self, table: Table) -> str:
        return f"{q(self.schema)}.{q(table.name)}"


@dataclass(frozen=True)
class Warehouse:
    """What the in-warehouse engine needs to know of its target."""

    dialect: SqlDialect
    names: Names
    lambda_udf: str | None = None
    """Redshift only: a Lambda UDF for the text functions (targets/redshift/lambda_udf.py)."""
    iam_role: str | None = None


def ctas(name: str, select: str, analyze: bool = True) -> list[tuple[str, str]]:
    """A temp table from a SELECT, analysed unless only scanned once: neither warehouse does it by itself."""
    return [(name, f"DROP TABLE IF EXISTS {name}"), (name, f"CREATE TEMP TABLE {name} AS {select}")] + \
        ([(name, f"ANALYZE {name}")] if analyze else [])


def staging_ddl() -> list[str]:
    """Temporary staging tables: every JSON field as text, so the spec's typing decides, not COPY's."""
    record = f"source_file {VARCHAR_MAX}, line BIGINT, raw {VARCHAR_MAX}"
    fields = {STAGING_EVENTS: EVENT_FIELDS, STAGING_SONGS: SONG_FIELDS}
    out = []
    for table, flds in fields.items():
        columns = ", ".join(f"{q(f.name)} {VARCHAR_MAX}" for f in flds)
        out += [f"DROP TABLE IF EXISTS {table}", f"CREATE TEMP TABLE {table} ({record}, {columns})"]
    out += [
        f"DROP TABLE IF EXISTS {LOAD_ERRORS}",
        f"CREATE TEMP TABLE {LOAD_ERRORS} (kind VARCHAR(8), source_file {VARCHAR_MAX}, line BIGINT, "
        f"reason {VARCHAR_MAX}, raw {VARCHAR_MAX})",
        f"DROP TABLE IF EXISTS {STAGED_FILES}",
        f"CREATE TEMP TABLE {STAGED_FILES} (path {VARCHAR_MAX}, kind VARCHAR(8), size BIGINT, "
        f"modified {VARCHAR_MAX}, url {VARCHAR_MAX}, records BIGINT)",
        f"DROP TABLE IF EXISTS {RUN_INFO}",
        f"CREATE TEMP TABLE {RUN_INFO} (run_id {VARCHAR_MAX}, songs_source {VARCHAR_MAX}, "
        f"logs_source {VARCHAR_MAX})",
    ]
    return out
