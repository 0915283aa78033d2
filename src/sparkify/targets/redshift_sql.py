"""The in-warehouse path as SQL text: staging tables, COPY, staging-to-star, merge, Redshift DDL.

The staging-to-star and merge statements use only what Redshift and
PostgreSQL share (CTAS into temp tables, window functions, MERGE, POSIX
`~`, TIMESTAMP 'epoch' + interval), so the same text runs on both; the
dialect differences live in `Dialect` (the songplay id) and in the text
functions each side defines (`text_functions`). The rules are those of
engines/duckdb.py, which stays the reference: tests compare the two row for row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sparkify.normalize import MAX_REPAIR_ROUNDS, WHITESPACE
from sparkify.records import (
    EVENT_FIELDS,
    EVENT_REQUIRED,
    HOLDS_NUL,
    ID_TAIL,
    NEXTSONG_REQUIRED,
    SONG_FIELDS,
    SONG_REQUIRED,
    Field,
)
from sparkify.schema import (
    ARTISTS,
    LOADED_FILES,
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
    Table,
    create_table_sql,
)

VARCHAR_MAX = "VARCHAR(65535)"
"""Redshift's widest text: staging never cuts a value below what the star can hold."""

TEXT_REPAIR = "f_sparkify_repair"
TEXT_CLEAN = "f_sparkify_clean"
TEXT_KEY = "f_sparkify_key"
"""The text functions the shared SQL calls for non-ASCII values: one round of normalize.repair_mojibake,
then normalize.clean_repaired / key_repaired."""

STAGING_EVENTS = "staging_events"
STAGING_SONGS = "staging_songs"
LOAD_ERRORS = "staging_load_errors"
STAGED_FILES = "staging_files"
RUN_INFO = "staging_run"


def q(ident: str) -> str:
    return '"' + ident.replace('"', '""') + '"'


def lit(text: str) -> str:
    """A SQL string literal, for text this module writes itself (never for input values)."""
    return "'" + text.replace("'", "''") + "'"


# -- dialects ------------------------------------------------------------------


@dataclass(frozen=True)
class SqlDialect:
    """What differs between the two warehouses in the shared statements: one function."""

    name: str

    def songplay_id(self, identity: str) -> str:
        """The first 15 hex digits of md5(identity) as a BIGINT, as engines/duckdb.py computes it."""
        if self.name == "redshift":
            return f"STRTOL(LEFT(MD5({identity}), 15), 16)"
        return f"CAST(CAST('x' || LEFT(MD5({identity}), 15) AS BIT(60)) AS BIGINT)"


REDSHIFT = SqlDialect("redshift")
POSTGRES = SqlDialect("postgresql")

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


# -- text rules in SQL ----------------------------------------------------------


def bare(a: str) -> str:
    """normalize.clean_text for ASCII text: trim spaces, drop one pair of wrapping quotes, trim, '' is NULL."""
    t = f"TRIM({a})"
    return (f"CASE WHEN LENGTH({t}) >= 2 AND LEFT({t}, 1) = '\"' AND RIGHT({t}, 1) = '\"' "
            f"THEN NULLIF(TRIM(SUBSTRING({t}, 2, LENGTH({t}) - 2)), '') ELSE NULLIF({t}, '') END")


def non_ascii(a: str) -> str:
    return f"OCTET_LENGTH({a}) <> LENGTH({a})"


def repaired(a: str) -> str:
    """normalize.repair_mojibake: its rounds, each one call of the one-round function.

    Composed here rather than inside a function: no UDF of ours calls another,
    so nothing depends on whether Redshift lets a SQL UDF call a SQL UDF.
    """
    for _ in range(MAX_REPAIR_ROUNDS):
        a = f"{TEXT_REPAIR}({a})"
    return a


def clean(a: str) -> str:
    """A stored text value: the ASCII rules in SQL, repair and the text function for the rest."""
    return f"CASE WHEN {non_ascii(a)} THEN {TEXT_CLEAN}({repaired(a)}) ELSE {bare(a)} END"


def key(a: str) -> str:
    """The match key of a cleaned value: lower-case ASCII in SQL, repair and the text function for the rest.

    The repair runs again on a cleaned value, as normalize.match_key(clean_text(x)) does in the engines.
    """
    return f"CASE WHEN {non_ascii(a)} THEN {TEXT_KEY}({repaired(a)}) ELSE LOWER({a}) END"


LATIN1 = "".join(map(chr, range(0x80, 0x100)))
MARKERS = "".join(map(chr, range(0x1200, 0x1280)))
"""U+0080-U+00FF and the characters TRANSLATE turns them into: U+1200-U+123F are E1 88 80-BF in UTF-8,
U+1240-U+127F are E1 89 80-BF, so each marker's last byte is its Latin-1 byte (U+0080-U+00BF) or that
byte less 0x40 (U+00C0-U+00FF)."""

LATIN1_HEX = "^([0-7][0-9a-f]|c[23][89ab][0-9a-f])*$"
"""UTF-8 as hex pairs in which every character is U+0000-U+00FF: a round's first condition."""

UTF8_HEX = ("^([0-7][0-9a-f]|c[2-9a-f][89ab][0-9a-f]|d[0-9a-f][89ab][0-9a-f]"
            "|e0[ab][0-9a-f][89ab][0-9a-f]|e[1-9a-cef][89ab][0-9a-f][89ab][0-9a-f]|ed[89][0-9a-f][89ab][0-9a-f]"
            "|f0[9ab][0-9a-f]([89ab][0-9a-f]){2}|f[1-3]([89ab][0-9a-f]){3}|f48[0-9a-f]([89ab][0-9a-f]){2})*$")
"""Hex pairs that are valid UTF-8 as Python decodes it (no overlong forms, surrogates or code points
above U+10FFFF): a round's second condition, and what keeps FROM_VARBYTE(..., 'utf8') from invalid bytes."""

REPAIR_MAX_BYTES = 21845
"""Longest value a round handles: its widest intermediate (the hex of the marked text) is 3 characters per
byte, and Redshift's VARCHAR stops at 65,535. Longer values are left as they are (docs/redshift.md)."""


def _utf8_hex(a: str) -> str:
    return f"LOWER(FROM_VARBYTE(TO_VARBYTE({a}, 'utf8'), 'hex'))"


def latin1_hex(a: str) -> str:
    """The Latin-1 bytes of a text of U+0000-U+00FF characters, as lower-case hex.

    Its UTF-8 hex cannot be rewritten pair by pair with REPLACE: a pattern
    such as 'c3a3' (ã) also matches across pairs ('4c' '3a' '3.': 'L:' and a digit), and Redshift
    has no position-aware replacement that PostgreSQL shares. So each
    non-ASCII character first becomes a three-byte marker (MARKERS), whose
    hex 'e1 88 xy' / 'e1 89 xy' no pattern below can match out of step: read
    from an odd position, 'e188'/'e189' would be the ASCII byte 0x18
    followed by a continuation byte, which valid UTF-8 never holds. The
    patterns write upper case, which no later pattern matches.
    """
    h = _utf8_hex(f"TRANSLATE({a}, {lit(LATIN1)}, {lit(MARKERS)})")
    for nibble, latin in zip("89ab", "CDEF"):
        h = f"REPLACE({h}, 'e189{nibble}', '{latin}')"
    return f"LOWER(REPLACE({h}, 'e188', ''))"


def repair_round(a: str) -> str:
    """One round of normalize.repair_mojibake: applied only when every character is U+0000-U+00FF and
    the Latin-1 bytes are valid UTF-8, else the text is returned as it is."""
    m = latin1_hex(a)
    return (f"CASE WHEN OCTET_LENGTH({a}) <= {REPAIR_MAX_BYTES} AND {_utf8_hex(a)} ~ {lit(LATIN1_HEX)} "
            f"AND {m} ~ {lit(UTF8_HEX)} THEN FROM_VARBYTE(TO_VARBYTE({m}, 'hex'), 'utf8') ELSE {a} END")


def postgres_shims() -> list[str]:
    """Redshift's TO_VARBYTE and FROM_VARBYTE on PostgreSQL, for the formats the repair uses.

    With them the Redshift repair function runs unchanged on PostgreSQL:
    convert_from raises on invalid UTF-8, so a run here also shows the
    repair never hands FROM_VARBYTE(..., 'utf8') bytes that are not UTF-8.
    SQL functions, so that PostgreSQL can inline them; another format
    gives NULL, so no round would ever apply (the tests would show it).
    """
    return [
        "CREATE OR REPLACE FUNCTION to_varbyte (a text, format text) RETURNS bytea LANGUAGE sql IMMUTABLE STRICT AS $$ "
        "SELECT CASE lower(format) WHEN 'utf8' THEN convert_to(a, 'UTF8') WHEN 'hex' THEN decode(a, 'hex') END $$",
        "CREATE OR REPLACE FUNCTION from_varbyte (b bytea, format text) RETURNS text LANGUAGE sql IMMUTABLE STRICT AS $$ "
        "SELECT CASE lower(format) WHEN 'hex' THEN encode(b, 'hex') WHEN 'utf8' THEN convert_from(b, 'UTF8') END $$",
    ]


def json_functions() -> list[str]:
    """Redshift's built-in IS_VALID_JSON and IS_VALID_JSON_ARRAY, on PostgreSQL."""
    return [
        """CREATE OR REPLACE FUNCTION is_valid_json (a text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN json_typeof(a::json) = 'object';
EXCEPTION WHEN OTHERS THEN
    RETURN false;
END $$""",
        """CREATE OR REPLACE FUNCTION is_valid_json_array (a text) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN json_typeof(a::json) = 'array';
EXCEPTION WHEN OTHERS THEN
    RETURN false;
END $$""",
    ]


def repair_function() -> str:
    """The one-round repair as a Redshift SQL UDF (one SELECT expression, no FROM); the same text runs on
    PostgreSQL once postgres_shims are in place."""
    return (f"CREATE OR REPLACE FUNCTION {TEXT_REPAIR} (VARCHAR) RETURNS {VARCHAR_MAX} IMMUTABLE AS $$ "
            f"SELECT {repair_round('$1')} $$ LANGUAGE sql")


def text_functions(dialect: SqlDialect, lambda_name: str | None = None, iam_role: str | None = None) -> list[str]:
    """The functions the shared SQL calls, defined for one warehouse.

    Both get the repair as the Redshift SQL UDF (repair_function). After
    it, PostgreSQL has the rest of normalize.clean_text in PL/pgSQL (NFC,
    trim, unquote) and the two JSON tests Redshift has built in; Redshift
    has SQL functions with the ASCII rules (it has no Unicode
    normalisation), or with `lambda_name` a Lambda UDF running
    normalize.clean_repaired / key_repaired (targets/redshift_lambda.py),
    which adds NFC and Python's casefold.
    """
    assert WHITESPACE == " ", "TRIM() strips spaces only"
    if dialect is REDSHIFT and lambda_name:
        assert iam_role, "a Lambda UDF needs the IAM role that may invoke it"
        return [repair_function()] + [
            f"CREATE OR REPLACE EXTERNAL FUNCTION {name} (VARCHAR) RETURNS {VARCHAR_MAX} STABLE "
            f"LAMBDA {lit(lambda_name)} IAM_ROLE {lit(iam_role)}"
            for name in (TEXT_CLEAN, TEXT_KEY)
        ]
    if dialect is REDSHIFT:
        return [
            repair_function(),
            f"CREATE OR REPLACE FUNCTION {TEXT_CLEAN} (VARCHAR) RETURNS {VARCHAR_MAX} IMMUTABLE AS $$ "
            f"SELECT {bare('$1')} $$ LANGUAGE sql",
            f"CREATE OR REPLACE FUNCTION {TEXT_KEY} (VARCHAR) RETURNS {VARCHAR_MAX} IMMUTABLE AS $$ "
            f"SELECT LOWER({bare('$1')}) $$ LANGUAGE sql",
        ]
    return postgres_shims() + [
        repair_function(),
        f"""CREATE OR REPLACE FUNCTION {TEXT_CLEAN} (a text) RETURNS text LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    t text := btrim(normalize(a, NFC), ' ');
BEGIN
    IF length(t) >= 2 AND left(t, 1) = '"' AND right(t, 1) = '"' THEN
        t := btrim(substr(t, 2, length(t) - 2), ' ');
    END IF;
    RETURN nullif(t, '');
END $$""",
        f"CREATE OR REPLACE FUNCTION {TEXT_KEY} (a text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ "
        f"SELECT lower({TEXT_CLEAN}(a)) $$",
    ] + json_functions()


# -- staging --------------------------------------------------------------------

RECORD_COLUMNS = ("source_file", "line", "raw")
"""Where a staged record came from: filled by COPY FROM STDIN; Redshift's COPY leaves them NULL."""


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


def jsonpaths() -> dict:
    """The JSONPaths file for staging_events, one path per records.EVENT_FIELDS entry, in column order."""
    return {"jsonpaths": [f"$['{f.key}']" for f in EVENT_FIELDS]}


def jsonpaths_text() -> str:
    return json.dumps(jsonpaths(), indent=4) + "\n"


@dataclass(frozen=True)
class CopySettings:
    iam_role: str
    region: str | None
    jsonpaths_url: str
    max_errors: int = 100_000


def copy_events(manifest_url: str, s: CopySettings) -> str:
    """COPY the new log files (a manifest lists them) into staging_events.

    TRUNCATECOLUMNS is safe here: every staging column is VARCHAR(65535),
    the widest Redshift has, so only a value that no Redshift column could
    hold is cut, and rejecting the event for it would lose a song play.
    """
    columns = ", ".join(q(f.name) for f in EVENT_FIELDS)
    region = f" REGION {lit(s.region)}" if s.region else ""
    return (f"COPY {STAGING_EVENTS} ({columns}) FROM {lit(manifest_url)} IAM_ROLE {lit(s.iam_role)} "
            f"FORMAT AS JSON {lit(s.jsonpaths_url)} MANIFEST TIMEFORMAT 'epochmillisecs' BLANKSASNULL "
            f"TRUNCATECOLUMNS MAXERROR {int(s.max_errors)}{region}")


def copy_songs(manifest_url: str, s: CopySettings) -> str:
    """COPY the new song files into staging_songs, keys matched by name.

    No TRUNCATECOLUMNS: song_id, title and artist_name are keys and match
    inputs, and a cut key could merge two songs; an over-long value is a
    load error, hence a reject.
    """
    columns = ", ".join(q(f.name) for f in SONG_FIELDS)
    region = f" REGION {lit(s.region)}" if s.region else ""
    return (f"COPY {STAGING_SONGS} ({columns}) FROM {lit(manifest_url)} IAM_ROLE {lit(s.iam_role)} "
            f"FORMAT AS JSON 'auto' MANIFEST BLANKSASNULL MAXERROR {int(s.max_errors)}{region}")


def copy_errors(kind: str) -> list[str]:
    """After a COPY: its load errors (stl_load_errors) as rejects and its files' record counts.

    Local files were uploaded to the staging prefix; staging_files maps each
    object URL back to the path the ledger knows.
    """
    path = "coalesce(f.path, TRIM(e.filename))"
    return [
        f"INSERT INTO {LOAD_ERRORS} (kind, source_file, line, reason, raw) "
        f"SELECT {lit(kind)}, {path}, e.line_number, 'COPY: ' || TRIM(e.err_reason), TRIM(e.raw_line) "
        f"FROM stl_load_errors e LEFT JOIN {STAGED_FILES} f ON f.url = TRIM(e.filename) "
        f"WHERE e.query = pg_last_copy_id()",
        f"UPDATE {STAGED_FILES} SET records = c.lines_scanned "
        f"FROM (SELECT TRIM(filename) AS url, SUM(lines_scanned) AS lines_scanned FROM stl_load_commits "
        f"WHERE query = pg_last_copy_id() GROUP BY TRIM(filename)) c "
        f"WHERE {STAGED_FILES}.url = c.url AND {STAGED_FILES}.kind = {lit(kind)}",
    ]


# -- staging to star --------------------------------------------------------------

NUL_STAGED = "CHR(92) || 'u0000'"
"""U+0000 in a staged string, as its JSON escape (neither warehouse's text holds U+0000); CHR(92), the
backslash, because the two read backslashes in literals differently."""

INTEGER = "^-?[0-9]{1,18}$"
INTEGER_TEXT = "^-?[0-9]{1,18}([.]0*)?$"
NUMBER = "^[-+]?([0-9]+([.][0-9]*)?|[.][0-9]+)([eE][-+]?[0-9]{1,2})?$"
"""What the typing accepts: integers of up to 18 digits (12.0 too), decimal numbers with small exponents."""


def _typed(f: Field, a: str, b: str, lazy: bool) -> str:
    """A field's value from its staged text `a` and its bare form `b` (see records._typed)."""
    if f.type == "text":
        return a if lazy else clean(a)
    if f.type == "int":
        return (f"CASE WHEN {a} ~ {lit(INTEGER)} THEN CAST({a} AS BIGINT) "
                f"WHEN {b} ~ {lit(INTEGER_TEXT)} THEN CAST(SPLIT_PART({b}, '.', 1) AS BIGINT) END")
    return (f"CASE WHEN {a} ~ {lit(NUMBER)} THEN CAST({a} AS DOUBLE PRECISION) "
            f"WHEN {b} ~ {lit(NUMBER)} THEN CAST({b} AS DOUBLE PRECISION) END")


def _problem(f: Field, a: str, b: str) -> str:
    """SQL naming what is wrong with a field, or NULL (records._error's reasons)."""
    if f.type == "text":
        return (f"CASE WHEN LEFT({a}, 1) = '{{' AND is_valid_json({a}) THEN {lit(f.key + ': expected text, got object')} "
                f"WHEN LEFT({a}, 1) = '[' AND is_valid_json_array({a}) THEN {lit(f.key + ': expected text, got array')} "
                f"WHEN STRPOS({a}, {NUL_STAGED}) > 0 THEN {lit(f.key + ': ' + HOLDS_NUL)} END")
    what = "an integer in range" if f.type == "int" else "a finite number"
    return f"CASE WHEN {q(f.name)} IS NULL AND {b} IS NOT NULL THEN {lit(f'{f.key}: not {what}: ')} || LEFT({b}, 40) END"


def typed_statements(staging: str, name: str, fields: tuple[Field, ...], required: tuple[str, ...],
                     lazy: bool) -> tuple[list[tuple[str, str]], str]:
    """(statements, SELECT): source_file, line, raw, every field typed, and `error` (NULL when valid).

    The typed values land in a temp table first: as one nested SELECT, the
    planner would inline each typed expression into every test that reads
    it (ten times slower on PostgreSQL).
    """
    names = [f.name for f in fields]
    bares = ", ".join(f"{bare(q(f.name))} AS {q('b_' + f.name)}" for f in fields if f.type != "text")
    typed = ", ".join(f"{_typed(f, q('s_' + f.name), q('b_' + f.name), lazy)} AS {q(f.name)}" for f in fields)
    staged = ", ".join(f"{q(n)} AS {q('s_' + n)}" for n in names)
    problems = [_problem(f, q("s_" + f.name), q("b_" + f.name)) for f in fields]
    problems += [f"CASE WHEN {q(f.name)} IS NULL THEN {lit(f.key + ' is missing')} END" for f in fields
                 if f.name in required]
    kept = ", ".join([q("s_" + n) for n in names] + [q("b_" + f.name) for f in fields if f.type != "text"])
    steps = _ctas(name, f"""SELECT source_file, line, raw, {kept}, {typed}
FROM (SELECT source_file, line, raw, {staged}, {bares} FROM {staging}) s""", analyze=False)
    return steps, f"""SELECT source_file, line, raw, {', '.join(q(n) for n in names)},
    COALESCE({', '.join(problems)}) AS error FROM {name}"""


@dataclass(frozen=True)
class Names:
    """Where the star and its state live: a qualified-name function for schema.Table."""

    schema: str

    def __call__(self, table: Table) -> str:
        return f"{q(self.schema)}.{q(table.name)}"


def _catalogue(t: Names) -> str:
    cols = ", ".join(q(c) for c in SONG_RECORDS.column_names)
    return f"(SELECT {cols} FROM {t(SONG_RECORDS)} UNION ALL SELECT {cols} FROM b_song_records)"


def _ctas(name: str, select: str, analyze: bool = True) -> list[tuple[str, str]]:
    """A temp table from a SELECT, analysed unless only scanned once: neither warehouse does it by itself."""
    return [(name, f"DROP TABLE IF EXISTS {name}"), (name, f"CREATE TEMP TABLE {name} AS {select}")] + \
        ([(name, f"ANALYZE {name}")] if analyze else [])


def star_statements(dialect: SqlDialect, t: Names) -> list[tuple[str, str]]:
    """(purpose, SQL): staging tables to the batch tables b_* of engines/duckdb.py, inside the warehouse."""
    out: list[tuple[str, str]] = []
    nextsong = " ".join(
        f"WHEN {q(n)} IS NULL THEN {lit('NextSong without ' + f.key)}"
        for f in EVENT_FIELDS for n in [f.name] if n in NEXTSONG_REQUIRED
    )
    event_cols = ", ".join(q(f.name) for f in EVENT_FIELDS)
    typing, events = typed_statements(STAGING_EVENTS, "ev_typed", EVENT_FIELDS, EVENT_REQUIRED, lazy=True)
    out += typing + _ctas("ev", f"""SELECT source_file, line, raw, {event_cols}, is_play,
    COALESCE(error, CASE WHEN is_play THEN CASE {nextsong} END END) AS err
FROM (SELECT *, CASE WHEN "page" = 'NextSong' THEN TRUE ELSE COALESCE({clean('"page"')} = 'NextSong', FALSE) END
          AS is_play FROM ({events}) v) e""")
    typing, songs = typed_statements(STAGING_SONGS, "song_typed", SONG_FIELDS, SONG_REQUIRED, lazy=False)
    out += typing + _ctas("song_parsed", songs)
    record = [c for c in SONG_RECORDS.column_names if c not in ("title_key", "artist_key")]
    pick = ", ".join("NULLIF(year, 0) AS year" if c == "year" else q(c) for c in record)
    out += _ctas("b_song_records", f"""SELECT {', '.join(q(c) for c in record)},
    {key('title')} AS title_key, {key('artist_name')} AS artist_key
FROM (SELECT {pick}, ROW_NUMBER() OVER (PARTITION BY song_id
          ORDER BY source_file, line, title, artist_id, artist_name, duration) AS rn
      FROM song_parsed WHERE error IS NULL) r
WHERE rn = 1 AND song_id NOT IN (SELECT song_id FROM {t(SONG_RECORDS)})""")
    out += _ctas("b_songs", "SELECT song_id, title, artist_id, year, duration FROM b_song_records")
    out += _ctas("b_artists", _artists_select(t))
    out += _plays(dialect, t)
    out += _ctas("b_time", """SELECT start_time, CAST(EXTRACT(HOUR FROM start_time) AS INTEGER) AS hour,
    CAST(EXTRACT(DAY FROM start_time) AS INTEGER) AS day, CAST(EXTRACT(WEEK FROM start_time) AS INTEGER) AS week,
    CAST(EXTRACT(MONTH FROM start_time) AS INTEGER) AS month, CAST(EXTRACT(YEAR FROM start_time) AS INTEGER) AS year,
    CAST(MOD(CAST(EXTRACT(DOW FROM start_time) AS INTEGER) + 6, 7) + 1 AS INTEGER) AS weekday
FROM (SELECT DISTINCT start_time FROM b_songplays) s""")
    who = ("first_name", "last_name", "gender", "level")
    order = ", ".join(["ts DESC", f"COALESCE(session_id, {ID_TAIL}) DESC",
                       f"COALESCE(item_in_session, {ID_TAIL}) DESC"]
                      + [f"COALESCE({c}, '') DESC" for c in who])
    cleaned = ", ".join(f"{clean(c)} AS {c}" for c in who)
    out += _ctas("b_users", f"""SELECT user_id, {cleaned}, ts, session_id, item_in_session
FROM (SELECT user_id, {', '.join(who)}, ts, session_id, item_in_session,
             ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY {order}) AS rn
      FROM ev WHERE err IS NULL AND user_id IS NOT NULL) u WHERE rn = 1""")
    out += _ctas("b_rejects", f"""SELECT r.run_id, x.kind, COALESCE(x.source_file, CASE x.kind
        WHEN 'song' THEN r.songs_source ELSE r.logs_source END) AS source_file, x.line, x.reason, x.raw
FROM (SELECT kind, source_file, line, reason, raw FROM {LOAD_ERRORS}
      UNION ALL SELECT 'song', source_file, line, error, raw FROM song_parsed WHERE error IS NOT NULL
      UNION ALL SELECT 'event', source_file, line, err, raw FROM ev WHERE err IS NOT NULL) x
CROSS JOIN {RUN_INFO} r""")
    out += _ctas("b_files", f"""SELECT f.path, f.kind, f.size, f.modified, COALESCE(f.records, 0) AS records, r.run_id
FROM {STAGED_FILES} f CROSS JOIN {RUN_INFO} r""")
    return out


def _artists_select(t: Names) -> str:
    """Each artist's most frequent non-NULL value per field, ties to the smallest, over all its songs."""
    fields = {"name": "artist_name", "location": "artist_location",
              "latitude": "artist_latitude", "longitude": "artist_longitude"}
    ctes = [f"touched AS (SELECT * FROM {_catalogue(t)} c "
            f"WHERE artist_id IN (SELECT artist_id FROM b_song_records))"]
    for out, src in fields.items():
        ctes.append(f"""{out}_v AS (SELECT artist_id, v FROM (
        SELECT artist_id, v, ROW_NUMBER() OVER (PARTITION BY artist_id ORDER BY n DESC, v) AS rn
        FROM (SELECT artist_id, {src} AS v, COUNT(*) AS n FROM touched WHERE {src} IS NOT NULL
              GROUP BY artist_id, {src}) g) r WHERE rn = 1)""")
    joins = " ".join(f"LEFT JOIN {o}_v ON {o}_v.artist_id = name_v.artist_id" for o in fields if o != "name")
    return (f"WITH {', '.join(ctes)}\nSELECT name_v.artist_id, name_v.v AS name, location_v.v AS location, "
            f"latitude_v.v AS latitude, longitude_v.v AS longitude FROM name_v {joins}")


def _plays(dialect: SqlDialect, t: Names) -> list[tuple[str, str]]:
    """Distinct song plays (ties between copies of one event broken on the text as read), matched to songs."""
    play = ("level", "location", "user_agent", "song", "artist", "length")
    identity = ("session_id", "item_in_session", "user_id", "ts")
    ident_text = " || '|' || ".join(f"CAST({c} AS VARCHAR)" for c in identity)
    tie = ", ".join(f"COALESCE({c}, {'-1' if c == 'length' else repr('')})" for c in play)
    out = _ctas("plays", f"""SELECT {dialect.songplay_id(ident_text)} AS songplay_id, ts, user_id, session_id,
    {', '.join(play)}
FROM (SELECT {', '.join(identity)}, {', '.join(play)},
             ROW_NUMBER() OVER (PARTITION BY {', '.join(identity)} ORDER BY {tie}) AS rn
      FROM ev WHERE err IS NULL AND is_play) p WHERE rn = 1""")
    out += _ctas("play_text", f"""SELECT song, artist, {clean('song')} AS title, {clean('artist')} AS artist_name
FROM (SELECT DISTINCT song, artist FROM plays WHERE song IS NOT NULL AND artist IS NOT NULL) d""", analyze=False)
    out += _ctas("play_keys", f"""SELECT song, artist, {key('title')} AS title_key, {key('artist_name')} AS artist_key
FROM play_text""")
    out += _ctas("play_match", f"""SELECT p.song, p.artist, p.length, MIN(c.song_id) AS song_id
FROM (SELECT DISTINCT song, artist, length FROM plays WHERE length IS NOT NULL) p
JOIN play_keys k ON k.song = p.song AND k.artist = p.artist
JOIN {_catalogue(t)} c ON c.title_key = k.title_key AND c.artist_key = k.artist_key
    AND ABS(c.duration - p.length) < 0.001
GROUP BY p.song, p.artist, p.length""")
    out += _ctas("b_songplays", f"""SELECT p.songplay_id, TIMESTAMP 'epoch' + p.ts * INTERVAL '0.001 second' AS start_time,
    p.user_id, {clean('p.level')} AS level, m.song_id, c.artist_id, p.session_id,
    {clean('p.location')} AS location, {clean('p.user_agent')} AS user_agent
FROM plays p
LEFT JOIN play_match m ON m.song = p.song AND m.artist = p.artist AND m.length = p.length
LEFT JOIN {_catalogue(t)} c ON c.song_id = m.song_id""")
    return out


# -- merge ------------------------------------------------------------------------


def _cols(table: Table, prefix: str = "") -> str:
    return ", ".join(prefix + q(c) for c in table.column_names)


def _merge(table: Table, source: str, t: Names) -> str:
    """MERGE: the row of each key replaced by the batch's (Redshift has no ON CONFLICT)."""
    pk = " AND ".join(f"tgt.{q(c)} = src.{q(c)}" for c in table.primary_key)
    sets = ", ".join(f"{q(c)} = src.{q(c)}" for c in table.column_names if c not in table.primary_key)
    return (f"MERGE INTO {t(table)} AS tgt USING {source} AS src ON {pk} WHEN MATCHED THEN UPDATE SET {sets} "
            f"WHEN NOT MATCHED THEN INSERT ({_cols(table)}) VALUES ({_cols(table, 'src.')})")


def _insert_new(table: Table, source: str, t: Names) -> str:
    match = " AND ".join(f"x.{q(c)} = s.{q(c)}" for c in table.primary_key)
    return (f"INSERT INTO {t(table)} ({_cols(table)}) SELECT {_cols(table, 's.')} FROM {source} s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {t(table)} x WHERE {match})")


def merge_statements(t: Names) -> list[tuple[str, str]]:
    """(purpose, SQL) in order; the songplays insert is tagged 'songplays'. Same effect as targets/sqlmerge.py."""
    s_new, s_old = f"COALESCE(b.session_id, {ID_TAIL})", f"COALESCE(o.session_id, {ID_TAIL})"
    i_new, i_old = f"COALESCE(b.item_in_session, {ID_TAIL})", f"COALESCE(o.item_in_session, {ID_TAIL})"
    later = (f"o.user_id IS NULL OR b.ts > o.ts OR (b.ts = o.ts AND ({s_new} > {s_old} OR "
             f"({s_new} = {s_old} AND {i_new} > {i_old})))")
    rejects = _cols(REJECTS)
    return [
        ("artists", _merge(ARTISTS, "b_artists", t)),
        ("songs", _insert_new(SONGS, "b_songs", t)),
        ("song_records", _insert_new(SONG_RECORDS, "b_song_records", t)),
        *_ctas("b_users_newer", f"SELECT b.* FROM b_users b LEFT JOIN {t(USER_LATEST)} o "
                                f"ON o.user_id = b.user_id WHERE {later}"),
        ("users", _merge(USERS, "b_users_newer", t)),
        ("user_latest", _merge(USER_LATEST, "b_users_newer", t)),
        ("time", _insert_new(TIME, "b_time", t)),
        ("songplays", _insert_new(SONGPLAYS, "b_songplays", t)),
        ("rejects", f"DELETE FROM {t(REJECTS)} WHERE source_file IN (SELECT path FROM b_files)"),
        ("rejects", f"INSERT INTO {t(REJECTS)} ({rejects}) SELECT {rejects} FROM b_rejects"),
        ("files", _merge(LOADED_FILES, "b_files", t)),
    ]


ACCOUNTING = """SELECT
    (SELECT COUNT(*) FROM song_parsed) + (SELECT COUNT(*) FROM staging_load_errors WHERE kind = 'song'),
    (SELECT COUNT(*) FROM song_parsed WHERE error IS NOT NULL)
        + (SELECT COUNT(*) FROM staging_load_errors WHERE kind = 'song'),
    (SELECT COUNT(*) FROM song_parsed WHERE error IS NULL),
    (SELECT COUNT(*) FROM b_songs),
    (SELECT COUNT(*) FROM ev) + (SELECT COUNT(*) FROM staging_load_errors WHERE kind = 'event'),
    (SELECT COUNT(*) FROM ev WHERE err IS NOT NULL)
        + (SELECT COUNT(*) FROM staging_load_errors WHERE kind = 'event'),
    (SELECT COUNT(*) FROM ev WHERE err IS NULL AND is_play)"""
"""songs read, rejected, valid, loaded; events read, rejected, song plays."""

FILTERED = f"""SELECT COALESCE({clean('page')}, '(no page)') AS page, SUM(n) FROM (
    SELECT page, COUNT(*) AS n FROM ev WHERE err IS NULL AND NOT is_play GROUP BY page) p
GROUP BY 1 ORDER BY 1"""
"""Events that are not song plays, per page."""
