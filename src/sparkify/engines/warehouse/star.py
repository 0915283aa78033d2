"""Staging tables to the batch tables, as SQL that runs unchanged on Redshift and PostgreSQL.

The statements use only what the two share (CTAS into temp tables, window
functions, POSIX `~`, TIMESTAMP 'epoch' + interval); the dialect differences
live in `SqlDialect` (the songplay id) and in the text functions each side
defines (engines/warehouse/text.py). The rules are those of
engines/duckdb.py, which stays the reference: tests compare the two row for row.
"""

from __future__ import annotations

from sparkify.engines.warehouse.text import bare, clean, key
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
from sparkify.schema import SONG_RECORDS
from sparkify.staging import (
    LOAD_ERRORS,
    REDSHIFT,
    RUN_INFO,
    STAGED_FILES,
    STAGING_EVENTS,
    STAGING_SONGS,
    Names,
    SqlDialect,
    ctas,
    lit,
    q,
)

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
        return (f"CASE WHEN LEFT({a}, 1) = '{{' AND is_valid_json({a}) "
                f"THEN {lit(f.key + ': expected text, got object')} "
                f"WHEN LEFT({a}, 1) = '[' AND is_valid_json_array({a}) "
                f"THEN {lit(f.key + ': expected text, got array')} "
                f"WHEN STRPOS({a}, {NUL_STAGED}) > 0 THEN {lit(f.key + ': ' + HOLDS_NUL)} END")
    what = "an integer in range" if f.type == "int" else "a finite number"
    return (f"CASE WHEN {q(f.name)} IS NULL AND {b} IS NOT NULL "
            f"THEN {lit(f'{f.key}: not {what}: ')} || LEFT({b}, 40) END")


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
    steps = ctas(name, f"""SELECT source_file, line, raw, {kept}, {typed}
FROM (SELECT source_file, line, raw, {staged}, {bares} FROM {staging}) s""", analyze=False)
    return steps, f"""SELECT source_file, line, raw, {', '.join(q(n) for n in names)},
    COALESCE({', '.join(problems)}) AS error FROM {name}"""


def _catalogue(t: Names) -> str:
    """The song records as this run leaves them: the stored ones the run's records do not replace, and those."""
    cols = ", ".join(q(c) for c in SONG_RECORDS.column_names)
    return (f"(SELECT {cols} FROM {t(SONG_RECORDS)} WHERE song_id NOT IN (SELECT song_id FROM b_song_records) "
            f"UNION ALL SELECT {cols} FROM b_song_records)")


def _after(left: list[str], right: list[str]) -> str:
    """SQL: the tuple `left` comes after `right`, term by term (Redshift has no row comparison)."""
    (a, *rest_a), (b, *rest_b) = left, right
    return f"{a} > {b}" if not rest_a else f"({a} > {b} OR ({a} = {b} AND {_after(rest_a, rest_b)}))"


def _record_order(dialect: SqlDialect, r: str) -> list[str]:
    """The terms that rank the records of one song_id, smallest first.

    Their file and line where the warehouse knows them (PostgreSQL's staging
    fills both): the record one run over every file keeps, whatever the order
    the files came in, and a file changed in place replaces its own records.
    Redshift's COPY says neither, so there the record's values decide, every
    field, NULL first: still one winner whatever the order.
    """
    c = dialect.byte_order
    if dialect is not REDSHIFT:
        return [f"{r}.source_file{c}", f"{r}.line"]
    text = [f"{r}.{f}" for f in ("title", "artist_id", "artist_name")]
    optional = [f"COALESCE({r}.artist_location, '')"]
    for f in ("artist_latitude", "artist_longitude", "year"):
        optional += [f"CASE WHEN {r}.{f} IS NULL THEN 0 ELSE 1 END", f"COALESCE({r}.{f}, 0)"]
    return text + [f"{r}.duration"] + optional


def star_statements(dialect: SqlDialect, t: Names) -> list[tuple[str, str]]:
    """(purpose, SQL): staging tables to the batch tables b_* of engines/duckdb.py, inside the warehouse."""
    out: list[tuple[str, str]] = []
    nextsong = " ".join(
        f"WHEN {q(n)} IS NULL THEN {lit('NextSong without ' + f.key)}"
        for f in EVENT_FIELDS for n in [f.name] if n in NEXTSONG_REQUIRED
    )
    event_cols = ", ".join(q(f.name) for f in EVENT_FIELDS)
    typing, events = typed_statements(STAGING_EVENTS, "ev_typed", EVENT_FIELDS, EVENT_REQUIRED, lazy=True)
    out += typing + ctas("ev", f"""SELECT source_file, line, raw, {event_cols}, is_play,
    COALESCE(error, CASE WHEN is_play THEN CASE {nextsong} END END) AS err
FROM (SELECT *, CASE WHEN "page" = 'NextSong' THEN TRUE ELSE COALESCE({clean('"page"')} = 'NextSong', FALSE) END
          AS is_play FROM ({events}) v) e""")
    typing, songs = typed_statements(STAGING_SONGS, "song_typed", SONG_FIELDS, SONG_REQUIRED, lazy=False)
    out += typing + ctas("song_parsed", songs)
    record = [c for c in SONG_RECORDS.column_names if c not in ("title_key", "artist_key")]
    picked = {"year": "NULLIF(year, 0) AS year", "source_file": "COALESCE(source_file, r.songs_source) AS source_file",
              "line": "COALESCE(line, 0) AS line"}
    pick = ", ".join(picked.get(c, q(c)) for c in record)
    order = ", ".join(_record_order(dialect, "p"))
    out += ctas("song_first", f"""SELECT * FROM (
    SELECT p.*, ROW_NUMBER() OVER (PARTITION BY song_id ORDER BY {order}) AS rn
    FROM (SELECT {pick} FROM song_parsed CROSS JOIN {RUN_INFO} r WHERE error IS NULL) p) f WHERE rn = 1""")
    out += ctas("song_winners", f"""SELECT {', '.join('f.' + q(c) for c in record)},
    {key('f.title')} AS title_key, {key('f.artist_name')} AS artist_key, s.song_id IS NULL AS new_song
FROM song_first f LEFT JOIN {t(SONG_RECORDS)} s ON s.song_id = f.song_id
WHERE s.song_id IS NULL OR NOT {_after(_record_order(dialect, 'f'), _record_order(dialect, 's'))}""")
    out += ctas("b_song_records", f"SELECT {', '.join(q(c) for c in SONG_RECORDS.column_names)} FROM song_winners")
    out += ctas("replaced_artists", f"SELECT DISTINCT artist_id FROM {t(SONG_RECORDS)} "
                                    "WHERE song_id IN (SELECT song_id FROM b_song_records)", analyze=False)
    out += ctas("b_songs", "SELECT song_id, title, artist_id, year, duration FROM b_song_records")
    out += ctas("b_artists", _artists_select(t))
    out += _plays(dialect, t)
    out += ctas("b_time", """SELECT start_time, CAST(EXTRACT(HOUR FROM start_time) AS INTEGER) AS hour,
    CAST(EXTRACT(DAY FROM start_time) AS INTEGER) AS day, CAST(EXTRACT(WEEK FROM start_time) AS INTEGER) AS week,
    CAST(EXTRACT(MONTH FROM start_time) AS INTEGER) AS month, CAST(EXTRACT(YEAR FROM start_time) AS INTEGER) AS year,
    CAST(MOD(CAST(EXTRACT(DOW FROM start_time) AS INTEGER) + 6, 7) + 1 AS INTEGER) AS weekday
FROM (SELECT DISTINCT start_time FROM b_songplays) s""")
    who = ("first_name", "last_name", "gender", "level")
    order = ", ".join(["ts DESC", f"COALESCE(session_id, {ID_TAIL}) DESC",
                       f"COALESCE(item_in_session, {ID_TAIL}) DESC"]
                      + [f"COALESCE({c}, ''){dialect.byte_order} DESC" for c in who])
    cleaned = ", ".join(f"{clean(c)} AS {c}" for c in who)
    ties = ", ".join(f"COALESCE({c}, '') AS tie_{c}" for c in who)
    out += ctas("b_users", f"""SELECT user_id, {cleaned}, ts, session_id, item_in_session, {ties}
FROM (SELECT user_id, {', '.join(who)}, ts, session_id, item_in_session,
             ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY {order}) AS rn
      FROM ev WHERE err IS NULL AND user_id IS NOT NULL) u WHERE rn = 1""")
    out += ctas("b_rejects", f"""SELECT r.run_id, x.kind, COALESCE(x.source_file, CASE x.kind
        WHEN 'song' THEN r.songs_source ELSE r.logs_source END) AS source_file, x.line, x.reason, x.raw
FROM (SELECT kind, source_file, line, reason, raw FROM {LOAD_ERRORS}
      UNION ALL SELECT 'song', source_file, line, error, raw FROM song_parsed WHERE error IS NOT NULL
      UNION ALL SELECT 'event', source_file, line, err, raw FROM ev WHERE err IS NOT NULL) x
CROSS JOIN {RUN_INFO} r""")
    out += ctas("b_files", f"""SELECT f.path, f.kind, f.size, f.modified, COALESCE(f.records, 0) AS records, r.run_id
FROM {STAGED_FILES} f CROSS JOIN {RUN_INFO} r""")
    return out


def _artists_select(t: Names) -> str:
    """Each artist's most frequent non-NULL value per field, ties to the smallest, over all its songs,
    for the artists of the run's records and of the records they replace (whose artist may have changed)."""
    fields = {"name": "artist_name", "location": "artist_location",
              "latitude": "artist_latitude", "longitude": "artist_longitude"}
    ctes = [f"touched AS (SELECT * FROM {_catalogue(t)} c WHERE artist_id IN "
            f"(SELECT artist_id FROM b_song_records UNION SELECT artist_id FROM replaced_artists))"]
    for out, src in fields.items():
        ctes.append(f"""{out}_v AS (SELECT artist_id, v FROM (
        SELECT artist_id, v, ROW_NUMBER() OVER (PARTITION BY artist_id ORDER BY n DESC, v) AS rn
        FROM (SELECT artist_id, {src} AS v, COUNT(*) AS n FROM touched WHERE {src} IS NOT NULL
              GROUP BY artist_id, {src}) g) r WHERE rn = 1)""")
    joins = " ".join(f"LEFT JOIN {o}_v ON {o}_v.artist_id = name_v.artist_id" for o in fields if o != "name")
    return (f"WITH {', '.join(ctes)}\nSELECT name_v.artist_id, name_v.v AS name, location_v.v AS location, "
            f"latitude_v.v AS latitude, longitude_v.v AS longitude FROM name_v {joins}")


def _plays(dialect: SqlDialect, t: Names) -> list[tuple[str, str]]:
    """Distinct song plays, their match keys and their songs.

    Of duplicate copies of one event the one with the smallest stored values
    stays (targets/sqlmerge.py's PLAY_TIE, the rule a later run applies
    against the stored copy too). Duplicates are rare, so only their copies
    are cleaned to be compared. Keys come from the distinct titles and
    artists played, and plays are matched by key and length: what the merge
    matches stored plays by when a song arrives later.
    """
    play = ("level", "location", "user_agent", "song", "artist", "length")
    identity = ("session_id", "item_in_session", "user_id", "ts")
    same = " AND ".join(f"d.{c} = e.{c}" for c in identity)
    ident_text = " || '|' || ".join(f"CAST({c} AS VARCHAR)" for c in identity)
    byte = dialect.byte_order
    tie = ", ".join([f"COALESCE({clean(x)}, ''){byte}" for x in ("level", "location", "user_agent")]
                    + [f"COALESCE({key(clean(x))}, ''){byte}" for x in ("song", "artist")] + ["COALESCE(length, -1)"])
    chosen = ", ".join(f"e.{x}" for x in identity + play)
    out = ctas("dup_plays", f"""SELECT {', '.join(identity)} FROM ev WHERE err IS NULL AND is_play
GROUP BY {', '.join(identity)} HAVING COUNT(*) > 1""", analyze=False)
    out += ctas("plays", f"""SELECT {dialect.songplay_id(ident_text)} AS songplay_id, ts, user_id, session_id,
    {', '.join(play)}
FROM (SELECT {chosen} FROM ev e WHERE e.err IS NULL AND e.is_play
          AND NOT EXISTS (SELECT 1 FROM dup_plays d WHERE {same})
      UNION ALL
      SELECT {', '.join(identity + play)} FROM (
          SELECT {chosen}, ROW_NUMBER() OVER (PARTITION BY {', '.join('e.' + x for x in identity)} ORDER BY {tie}) AS rn
          FROM ev e JOIN dup_plays d ON {same} WHERE e.err IS NULL AND e.is_play) x WHERE rn = 1) p""")
    for column, text, name in (("song", "title", "title_key"), ("artist", "name", "artist_key")):
        out += ctas(f"{name}s", f"""SELECT {column}, {key(text)} AS {name} FROM (
    SELECT {column}, {clean(column)} AS {text} FROM (
        SELECT DISTINCT {column} FROM plays WHERE {column} IS NOT NULL) d) c""")
    out += ctas("b_play_keys", """SELECT p.songplay_id, p.length, s.title_key, a.artist_key,
    TIMESTAMP 'epoch' + p.ts * INTERVAL '0.001 second' AS start_time
FROM plays p LEFT JOIN title_keys s ON s.song = p.song LEFT JOIN artist_keys a ON a.artist = p.artist""")
    out += ctas("play_match", f"""SELECT m.title_key, m.artist_key, m.length, m.song_id, c.artist_id FROM (
    SELECT k.title_key, k.artist_key, k.length, MIN(c.song_id{byte}) AS song_id
    FROM (SELECT DISTINCT title_key, artist_key, length FROM b_play_keys) k
    JOIN {_catalogue(t)} c ON c.title_key = k.title_key AND c.artist_key = k.artist_key
        AND ABS(c.duration - k.length) < 0.001
    GROUP BY k.title_key, k.artist_key, k.length) m
JOIN {_catalogue(t)} c ON c.song_id = m.song_id""")
    out += ctas("b_songplays", f"""SELECT p.songplay_id, k.start_time, p.user_id, {clean('p.level')} AS level,
    m.song_id, m.artist_id, p.session_id, {clean('p.location')} AS location, {clean('p.user_agent')} AS user_agent
FROM plays p JOIN b_play_keys k ON k.songplay_id = p.songplay_id
LEFT JOIN play_match m ON m.title_key = k.title_key AND m.artist_key = k.artist_key AND m.length = k.length""")
    return out


ACCOUNTING = """SELECT
    (SELECT COUNT(*) FROM song_parsed) + (SELECT COUNT(*) FROM staging_load_errors WHERE kind = 'song'),
    (SELECT COUNT(*) FROM song_parsed WHERE error IS NOT NULL)
        + (SELECT COUNT(*) FROM staging_load_errors WHERE kind = 'song'),
    (SELECT COUNT(*) FROM song_parsed WHERE error IS NULL),
    (SELECT COUNT(*) FROM song_winners WHERE new_song),
    (SELECT COUNT(*) FROM ev) + (SELECT COUNT(*) FROM staging_load_errors WHERE kind = 'event'),
    (SELECT COUNT(*) FROM ev WHERE err IS NOT NULL)
        + (SELECT COUNT(*) FROM staging_load_errors WHERE kind = 'event'),
    (SELECT COUNT(*) FROM ev WHERE err IS NULL AND is_play)"""
"""songs read, rejected, valid, loaded (new song_ids: a record that replaces a stored one is a duplicate);
events read, rejected, song plays."""

FILTERED = f"""SELECT COALESCE({clean('page')}, '(no page)') AS page, SUM(n) FROM (
    SELECT page, COUNT(*) AS n FROM ev WHERE err IS NULL AND NOT is_play GROUP BY page) p
GROUP BY 1 ORDER BY 1"""
"""Events that are not song plays, per page."""
