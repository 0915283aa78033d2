"""The star schema, declared once.

Every DDL statement, Arrow schema and Spark schema is generated from the
tables below, so a column added here reaches every engine and target.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # logical type: bigint, int, double, text, timestamp
    nullable: bool = True


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    table: str
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    partition_by: tuple[str, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    internal: bool = False
    doc: str = ""

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _cols(*specs: str) -> tuple[Column, ...]:
    """Parse 'name type [not null]' specs: keeps the table list below readable."""
    out = []
    for spec in specs:
        name, typ, *rest = spec.split()
        out.append(Column(name, typ, nullable=not rest))
    return tuple(out)


SONGPLAYS = Table(
    "songplays",
    _cols(
        "songplay_id bigint not-null",
        "start_time timestamp not-null",
        "user_id bigint not-null",
        "level text",
        "song_id text",
        "artist_id text",
        "session_id bigint not-null",
        "location text",
        "user_agent text",
    ),
    primary_key=("songplay_id",),
    foreign_keys=(
        ForeignKey(("start_time",), "time", ("start_time",)),
        ForeignKey(("user_id",), "users", ("user_id",)),
        ForeignKey(("song_id",), "songs", ("song_id",)),
        ForeignKey(("artist_id",), "artists", ("artist_id",)),
    ),
    partition_by=("year", "month"),
    indexes=(("start_time",), ("user_id",), ("song_id",)),
    doc="One row per distinct NextSong event of a logged-in user.",
)

USERS = Table(
    "users",
    _cols(
        "user_id bigint not-null",
        "first_name text",
        "last_name text",
        "gender text",
        "level text",
    ),
    primary_key=("user_id",),
    doc="Every user seen in any event, as of their latest event.",
)

SONGS = Table(
    "songs",
    _cols(
        "song_id text not-null",
        "title text not-null",
        "artist_id text not-null",
        "year int",
        "duration double not-null",
    ),
    primary_key=("song_id",),
    foreign_keys=(ForeignKey(("artist_id",), "artists", ("artist_id",)),),
    partition_by=("year", "artist_id"),
    doc="One row per song_id of the catalogue.",
)

ARTISTS = Table(
    "artists",
    _cols(
        "artist_id text not-null",
        "name text not-null",
        "location text",
        "latitude double",
        "longitude double",
    ),
    primary_key=("artist_id",),
    doc="One row per artist_id: the most frequent spelling of each field.",
)

TIME = Table(
    "time",
    _cols(
        "start_time timestamp not-null",
        "hour int not-null",
        "day int not-null",
        "week int not-null",
        "month int not-null",
        "year int not-null",
        "weekday int not-null",
    ),
    primary_key=("start_time",),
    partition_by=("year", "month"),
    doc="One row per distinct start_time, broken down in UTC (ISO week and weekday).",
)

REJECTS = Table(
    "rejects",
    _cols(
        "run_id text not-null",
        "kind text not-null",
        "source_file text not-null",
        "line bigint",
        "reason text not-null",
        "raw text",
    ),
    doc="Every record that could not be loaded, with where it came from and why.",
)

# Internal state: what a target must remember between runs.
LOADED_FILES = Table(
    "_sparkify_files",
    _cols(
        "path text not-null",
        "kind text not-null",
        "size bigint not-null",
        "modified text not-null",
        "records bigint not-null",
        "run_id text not-null",
    ),
    primary_key=("path",),
    internal=True,
    doc="The ledger: files already loaded, so a rerun does not read them again.",
)

SONG_RECORDS = Table(
    "_sparkify_song_records",
    _cols(
        "song_id text not-null",
        "title text not-null",
        "artist_id text not-null",
        "artist_name text not-null",
        "artist_location text",
        "artist_latitude double",
        "artist_longitude double",
        "year int",
        "duration double not-null",
        "title_key text not-null",
        "artist_key text not-null",
        "source_file text not-null",
        "line bigint not-null",
    ),
    primary_key=("song_id",),
    internal=True,
    doc="The catalogue as loaded (one record per song_id: the one of the smallest file and line seen so far) "
        "with its match keys.",
)

PLAY_KEYS = Table(
    "_sparkify_play_keys",
    _cols(
        "songplay_id bigint not-null",
        "start_time timestamp not-null",
        "title_key text",
        "artist_key text",
        "length double",
    ),
    primary_key=("songplay_id",),
    indexes=(("title_key", "artist_key"),),
    internal=True,
    doc="Each song play's match key as played (song, artist, length): a song that arrives later is "
        "matched to the plays it fits, and a redelivered event is compared with the copy stored.",
)

USER_LATEST = Table(
    "_sparkify_user_latest",
    _cols(
        "user_id bigint not-null",
        "ts bigint not-null",
        "session_id bigint",
        "item_in_session bigint",
        "tie_first_name text not-null",
        "tie_last_name text not-null",
        "tie_gender text not-null",
        "tie_level text not-null",
    ),
    primary_key=("user_id",),
    internal=True,
    doc="Each user's latest event key and, for events of one instant, the text as read that breaks the tie "
        "(NULL as ''), so a later run moves a user only forward, whatever order the files arrive in.",
)

RUNS = Table(
    "_sparkify_runs",
    _cols(
        "run_id text not-null",
        "started_at timestamp not-null",
        "finished_at timestamp not-null",
        "summary text not-null",
    ),
    primary_key=("run_id",),
    internal=True,
    doc="One row per run that landed, with its accounting as JSON.",
)

STAR: tuple[Table, ...] = (ARTISTS, SONGS, USERS, TIME, SONGPLAYS)
"""The five tables, in an order where every table comes after those it refers to."""

STATE: tuple[Table, ...] = (REJECTS, LOADED_FILES, SONG_RECORDS, PLAY_KEYS, USER_LATEST, RUNS)
ALL_TABLES: tuple[Table, ...] = STAR + STATE
TABLES: dict[str, Table] = {t.name: t for t in ALL_TABLES}


def arrow_type(logical: str) -> pa.DataType:
    """A logical type as Arrow spells it. pyarrow is imported here, not above: a run into the DuckDB
    file never needs Arrow, and the import is a fifth of its memory on a small input."""
    import pyarrow as pa

    return {"bigint": pa.int64(), "int": pa.int32(), "double": pa.float64(), "text": pa.string(),
            "timestamp": pa.timestamp("us", tz="UTC")}[logical]


def arrow_schema(table: Table) -> pa.Schema:
    """The Arrow schema of a table: what every engine hands to every target."""
    import pyarrow as pa

    return pa.schema([pa.field(c.name, arrow_type(c.type), nullable=c.nullable) for c in table.columns])


@dataclass(frozen=True)
class Dialect:
    """How one SQL target spells the logical types and quotes names."""

    name: str
    types: dict[str, str]
    enforce_foreign_keys: bool = True
    extra_table_clause: dict[str, str] = field(default_factory=dict)

    def quote(self, ident: str) -> str:
        return '"' + ident.replace('"', '""') + '"'


def create_table_sql(table: Table, dialect: Dialect, schema: str | None = None, keys: bool = True) -> str:
    """CREATE TABLE with NOT NULL, primary and foreign keys, from the declaration (without keys: a bare
    table for a bulk load that builds them after its rows)."""
    q = dialect.quote
    prefix = f"{q(schema)}." if schema else ""
    lines = [
        f"{q(c.name)} {dialect.types[c.type]}{'' if c.nullable else ' NOT NULL'}"
        for c in table.columns
    ]
    if table.primary_key and keys:
        lines.append(f"PRIMARY KEY ({', '.join(q(c) for c in table.primary_key)})")
    if dialect.enforce_foreign_keys and keys:
        for fk in table.foreign_keys:
            lines.append(
                f"FOREIGN KEY ({', '.join(q(c) for c in fk.columns)}) "
                f"REFERENCES {prefix}{q(fk.table)} ({', '.join(q(c) for c in fk.ref_columns)})"
            )
    body = ",\n    ".join(lines)
    tail = dialect.extra_table_clause.get(table.name, "")
    return f"CREATE TABLE IF NOT EXISTS {prefix}{q(table.name)} (\n    {body}\n){tail}"


DUCKDB_DIALECT = Dialect(
    "duckdb",
    {"bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE", "text": "VARCHAR", "timestamp": "TIMESTAMPTZ"},
)
"""DuckDB's spelling: the batch tables, the embedded file and the lake's working tables."""

_SPARK_TYPES = {"bigint": "LongType", "int": "IntegerType", "double": "DoubleType", "text": "StringType",
                "timestamp": "TimestampType"}


def spark_type(logical: str):
    """A logical type as a Spark SQL type (pyspark is imported only when asked)."""
    from pyspark.sql import types

    return getattr(types, _SPARK_TYPES[logical])()


def spark_schema(table: Table):
    """The Spark schema of a table, from the same declaration."""
    from pyspark.sql import types

    return types.StructType([types.StructField(c.name, spark_type(c.type)) for c in table.columns])


def spark_conform(df, table: Table, extra: tuple[str, ...] = ()):
    """A DataFrame with the table's columns, in order, in their declared types (`extra` columns as they are)."""
    from pyspark.sql import functions

    return df.select(*(functions.col(c.name).cast(spark_type(c.type)).alias(c.name) for c in table.columns),
                     *extra)
