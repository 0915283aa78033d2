"""The contract of SPEC.md as DuckDB SQL: raw files in, one batch of star rows out.

The engine reads only the files it is given (the target's ledger decides
which), validates and types every record in SQL, and leaves its results as
tables `b_*` on the connection it was handed (temporary ones, or in a scratch
database for a run larger than memory: see `_tables_held`). It never writes a
target: the batch (batch.py) is what a target consumes.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import duckdb

from sparkify import objectstore, rawlines
from sparkify.batch import BATCH_TABLES, DUCKDB, DuckDBBatch, Run, size_bytes, store_rejects
from sparkify.engines.base import Engine
from sparkify.progress import Progress
from sparkify.records import (
    EVENT_FIELDS,
    EVENT_REQUIRED,
    ID_TAIL,
    SONG_FIELDS,
    SONG_REQUIRED,
    raw_json_source,
    read_json_columns,
    sql_literal,
    typed_sql,
)
from sparkify.schema import DUCKDB_DIALECT, SONG_RECORDS
from sparkify.targets.base import DuckDBHost

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 16 << 20
"""The longest log line read in a file that is read line by line (read_csv's max_line_size); longer ones are
rejected."""


SONG_FILES_PER_READ = 1000
"""Song files per read_blob call: its state grows with the files it is given (a large share of a run's
peak memory for a whole catalogue of small files at once) while each call costs only milliseconds."""


SCRATCH = "sp_scratch"
"""The scratch database's name on the connection (see DuckDBEngine._tables_held)."""

SCRATCH_FILE = "sparkify-batch.duckdb"
"""The scratch database's file, in the connection's temp_directory."""

SCRATCH_ABOVE = 1.0
"""A run keeps its tables in the scratch database when its log files hold more bytes than this many times
the connection's memory limit: its typed events alone take most of that size in memory."""

class DuckDBEngine(Engine):
    name = "duckdb"

    def host(self, target: DuckDBHost) -> str:
        return DUCKDB

    @contextmanager
    def compute(self, target: DuckDBHost, run: Run, progress: Progress) -> Iterator[DuckDBBatch]:
        """The batch as temporary tables on the target's DuckDB connection."""
        self.con = target.engine_connection()
        objectstore.register_for_sources(self.con, run.songs, run.logs)
        self.catalogue = target.catalogue_relation(self.con, run.full_refresh)
        batch = DuckDBBatch(run, con=self.con)
        self._rejects: list[dict] = []
        self._run_id = run.run_id
        with self._tables_held(sum(f.size for f in run.log_files)):
            with progress.stage("songs", len(run.song_files)):
                self._songs(batch)
            with progress.stage("events", len(run.log_files)):
                self._events(batch)
            with progress.stage("star"):
                self._star(batch)
            store_rejects(self.con, self._run_id, self._rejects)
            self._drop_intermediates()
            batch.add_files_table()
            yield batch

    @contextmanager
    def _tables_held(self, log_bytes: int) -> Iterator[None]:
        """Where the run's tables live (`self._new` is how a statement names a new one).

        In memory, as temporary tables, while the run's logs fit in the memory
        limit. DuckDB spills what does not fit as it is, uncompressed; a run
        whose tables would mostly spill (each is written once and read several
        times) keeps them instead in a scratch database file in the connection's
        temp directory, where they are stored compressed, a fraction of the
        bytes, and reached by name through the search path. The file goes once
        the batch is written; one a killed run left is replaced by the next.
        """
        temp_dir = self._setting("temp_directory")
        if not temp_dir or log_bytes <= SCRATCH_ABOVE * size_bytes(self._setting("memory_limit")):
            self._new = "TEMP TABLE "
            yield
            return
        os.makedirs(temp_dir, exist_ok=True)
        path = os.path.join(temp_dir, SCRATCH_FILE)
        _remove_database(path)
        search_path = self._setting("search_path")
        database = self.con.execute("SELECT current_database()").fetchall()[0][0]
        log.info("%.1f GB of logs: the run's tables go to %s", log_bytes / 1e9, path)
        self._sql(f"ATTACH {sql_literal(path)} AS {SCRATCH}")
        try:
            searched = sql_literal(f"{DUCKDB_DIALECT.quote(database)}.main,{SCRATCH}.main")
            self._sql(f"SET search_path = {searched}")
            self._new = f"TABLE {SCRATCH}."
            yield
        finally:
            self._sql(f"SET search_path = {sql_literal(search_path)}")
            self._sql(f"DETACH {SCRATCH}")
            _remove_database(path)
            with suppress(OSError):  # left while it holds DuckDB's spill files, which DuckDB removes
                os.rmdir(temp_dir)

    def _setting(self, name: str) -> str:
        return self.con.execute("SELECT current_setting(?)", [name]).fetchall()[0][0]

    def _drop_intermediates(self) -> None:
        """Free what only the computation needed before the target writes: at scale, gigabytes."""
        keep = ", ".join(f"'{name}'" for name in BATCH_TABLES)
        for database, name in self.con.execute(
                "SELECT database_name, table_name FROM duckdb_tables() WHERE database_name IN ('temp', ?) "
                f"AND table_name NOT IN ({keep})", [SCRATCH]).fetchall():
            self._sql(f'DROP TABLE "{database}".main."{name}"')

    def _sql(self, sql: str, params: list | None = None) -> None:
        self.con.execute(sql, params or []).fetchall()

    # -- songs ---------------------------------------------------------------

    def _songs(self, batch: DuckDBBatch) -> None:
        paths = [f.path for f in batch.song_files]
        self._sql(f"CREATE OR REPLACE {self._new}song_raw (source_file VARCHAR, line BIGINT, raw VARCHAR)")
        if paths:
            self._sql(f"CREATE OR REPLACE {self._new}song_text (source_file VARCHAR, text VARCHAR)")
            for start in range(0, len(paths), SONG_FILES_PER_READ):
                self._sql("INSERT INTO song_text SELECT filename, try(decode(content)) FROM read_blob(?)",
                          [paths[start:start + SONG_FILES_PER_READ]])
            whole = "CASE WHEN json_valid(text) THEN json_type(text) = 'OBJECT' ELSE false END"
            newline = "replace(replace(text, chr(13) || chr(10), chr(10)), chr(13), chr(10))"
            self._sql(f"""
                INSERT INTO song_raw
                SELECT source_file, 1, text FROM song_text WHERE text IS NOT NULL AND {whole}
                UNION ALL
                SELECT source_file, line, raw FROM (
                    SELECT source_file, unnest(range(1, len(parts) + 1)) AS line, unnest(parts) AS raw
                    FROM (SELECT source_file, string_split({newline}, chr(10)) AS parts
                          FROM song_text WHERE text IS NOT NULL AND NOT ({whole}))
                ) WHERE trim(raw) <> ''
            """)
            undecodable = [r[0] for r in self.con.execute(
                "SELECT source_file FROM song_text WHERE text IS NULL").fetchall()]
            self._sql("DROP TABLE song_text")  # its text is in song_raw now: hold the catalogue once
            self._read_undecodable_songs(undecodable)
        source = raw_json_source("song_raw", SONG_FIELDS)
        self._sql(f"CREATE OR REPLACE {self._new}song_parsed AS "
                  + typed_sql(source, SONG_FIELDS, SONG_REQUIRED, lazy_text=False))
        for source_file, line, raw, reason in self.con.execute(
            "SELECT source_file, line, raw, error FROM song_parsed WHERE error IS NOT NULL"
        ).fetchall():
            self._reject("song", source_file, line, reason, raw)
        record = ", ".join(
            f"{f.name} := {'nullif(' + f.name + ', 0)' if f.name == 'year' else f.name}"
            for f in SONG_FIELDS if f.name != "song_id"
        )
        stored = f"(SELECT song_id, source_file, line FROM {self.catalogue})"
        self._sql(f"""
            CREATE OR REPLACE {self._new}b_song_records AS
            SELECT song_id, r.title, r.artist_id, r.artist_name, r.artist_location,
                   r.artist_latitude, r.artist_longitude, r.year::INTEGER AS year, r.duration,
                   sp_key(r.title) AS title_key, sp_key(r.artist_name) AS artist_key,
                   r.source_file, r.line, s.song_id IS NULL AS new_song
            FROM (
                SELECT song_id, arg_min(struct_pack({record}, source_file := source_file, line := line),
                                        struct_pack(f := source_file, l := line)) AS r
                FROM song_parsed WHERE error IS NULL GROUP BY song_id
            ) LEFT JOIN {stored} s USING (song_id)
            WHERE s.song_id IS NULL OR (r.source_file, r.line) <= (s.source_file, s.line)
        """)
        self._sql(f"""
            CREATE OR REPLACE {self._new}replaced_artists AS
            SELECT DISTINCT artist_id FROM {self.catalogue} SEMI JOIN b_song_records USING (song_id)
        """)
        columns = ", ".join(c for c in SONG_RECORDS.column_names)
        self._sql(f"""
            CREATE OR REPLACE TEMP VIEW catalogue AS
            SELECT {columns} FROM {self.catalogue} ANTI JOIN b_song_records USING (song_id)
            UNION ALL SELECT {columns} FROM b_song_records
        """)
        self._sql(f"CREATE OR REPLACE {self._new}b_songs AS "
                  "SELECT song_id, title, artist_id, year, duration FROM b_song_records")
        self._artists()
        counts = self.con.execute("""
            SELECT count(*), count(*) FILTER (WHERE error IS NULL) FROM song_parsed
        """).fetchall()[0]
        rejected_undecodable = sum(1 for r in self._rejects
                                   if r["kind"] == "song" and r["reason"] == rawlines.UNDECODABLE)
        new_songs = self.con.execute("SELECT count(*) FROM b_song_records WHERE new_song").fetchall()[0][0]
        self._sql("ALTER TABLE b_song_records DROP COLUMN new_song")
        batch.songs = {
            "read": counts[0] + rejected_undecodable,
            "loaded": new_songs,
            "rejected": counts[0] - counts[1] + rejected_undecodable,
        }
        batch.songs["duplicate"] = counts[1] - batch.songs["loaded"]
        for path, n in self.con.execute("SELECT source_file, count(*) FROM song_raw GROUP BY 1").fetchall():
            batch.file_records[path] = n

    def _read_undecodable_songs(self, paths: list[str]) -> None:
        """Song files that are not UTF-8 as a whole: keep their good lines, reject the others."""
        rows = []
        for path in paths:
            for line in rawlines.iter_lines(path):
                text = rawlines.decode_line(line.data)
                if text is None:
                    self._reject("song", path, line.number, rawlines.UNDECODABLE, rawlines.raw_text(line.data))
                elif text.strip():
                    rows.append((path, line.number, text))
        if rows:
            self.con.executemany("INSERT INTO song_raw VALUES (?, ?, ?)", rows)

    def _artists(self) -> None:
        """Each artist's most frequent non-NULL value per field (ties: the smallest), over all its songs,
        for the artists of the run's records and those whose record a run's record replaced."""
        fields = {"name": "artist_name", "location": "artist_location",
                  "latitude": "artist_latitude", "longitude": "artist_longitude"}
        ctes = [
            "touched AS (SELECT * FROM catalogue WHERE artist_id IN "
            "(SELECT artist_id FROM b_song_records UNION SELECT artist_id FROM replaced_artists))"
        ]
        for out, src in fields.items():
            ctes.append(f"""{out} AS (
                SELECT artist_id, first(v ORDER BY n DESC, v) AS v FROM (
                    SELECT artist_id, {src} AS v, count(*) AS n FROM touched
                    WHERE {src} IS NOT NULL GROUP BY ALL
                ) GROUP BY artist_id)""")
        joins = " ".join(f"LEFT JOIN {out} USING (artist_id)" for out in fields if out != "name")
        self._sql(f"""
            CREATE OR REPLACE {self._new}b_artists AS
            WITH {', '.join(ctes)}
            SELECT artist_id, name.v AS name, location.v AS location,
                   latitude.v AS latitude, longitude.v AS longitude
            FROM name {joins}
        """)

    # -- events --------------------------------------------------------------

    def _events(self, batch: DuckDBBatch) -> None:
        """Type every event: a fast read of all files, then an exact reread of the files it doubts.

        read_json is the fastest reader but cannot say which line was bad, nor
        keep its text; so every file in which it finds anything wrong (or
        anything only the raw line can settle) is read again line by line,
        where each record gets its exact verdict and a reject keeps its text.
        The line reader splits at a \x01 byte, since read_csv needs a delimiter:
        `after` says a line had one (chr(10) as the NULL string tells "nothing
        after it" from "no \x01"), and such a line is read as its text up to
        the \x01 and the \x01 itself, never valid JSON (JSON has no raw control
        characters), the key by which rawlines finds the whole line.
        """
        paths = [f.path for f in batch.log_files]
        empty = self._typed_events("(SELECT NULL AS x WHERE false)", fast=None)
        self._sql(f"CREATE OR REPLACE {self._new}ev AS {empty}")
        if not paths:
            self._count_events(batch)
            return
        fast = f"""(
            SELECT filename AS source_file, NULL::BIGINT AS line, NULL::VARCHAR AS raw, NULL::BOOLEAN AS parsed,
                   {', '.join('"' + f.key + '"' for f in EVENT_FIELDS)}
            FROM read_json($paths, format = 'newline_delimited', columns = {read_json_columns(EVENT_FIELDS)},
                           ignore_errors = true, filename = true)
        )"""
        too_big = self._fast_read(f"INSERT INTO ev {self._typed_events(fast, fast=True)}", paths)
        doubted = sorted(too_big + [r[0] for r in self.con.execute(
            "SELECT DISTINCT source_file FROM ev WHERE err IS NOT NULL").fetchall()])
        if doubted:
            log.info("%d log files hold bad records: reading them line by line", len(doubted))
            self.con.execute("DELETE FROM ev WHERE source_file IN (SELECT unnest($paths))",
                             {"paths": doubted}).fetchall()
            lines = f"""(
                SELECT source_file, NULL::BIGINT AS line,
                       raw || CASE WHEN after IS NOT NULL THEN chr(1) ELSE '' END AS raw
                FROM (
                    SELECT filename AS source_file, raw, after
                    FROM read_csv($paths, columns = {{'raw': 'VARCHAR', 'after': 'VARCHAR'}},
                                  delim = chr(1), quote = '', escape = '', header = false, auto_detect = false,
                                  new_line = '\\n', null_padding = true, nullstr = chr(10), strict_mode = false,
                                  filename = true, max_line_size = {MAX_LINE_BYTES}, store_rejects = true,
                                  rejects_table = 'sp_csv_errors', rejects_scan = 'sp_csv_scans')
                )
                WHERE after IS NOT NULL OR trim(raw, ' ' || chr(9) || chr(13)) <> ''
            )"""
            source = raw_json_source(lines, EVENT_FIELDS)
            self.con.execute(f"INSERT INTO ev {self._typed_events(source, fast=False)}", {"paths": doubted}).fetchall()
            self._locate_event_rejects(doubted)
        self._count_events(batch)

    def _fast_read(self, insert: str, paths: list[str]) -> list[str]:
        """Run the fast read's INSERT on `paths`; return the files read_json cannot read at all.

        ignore_errors does not cover a line longer than read_json's maximum
        object size: it fails the whole read. The read is then split in halves
        until each such file stands alone, so its neighbours are still read at
        full speed and the file itself goes to the line-by-line reader, which
        rejects the long line. A failed INSERT leaves ev as it was (one
        statement, and the engine runs outside any transaction).
        """
        try:
            self.con.execute(insert, {"paths": paths}).fetchall()
            return []
        except duckdb.InvalidInputException:
            if len(paths) == 1:
                return paths
            half = len(paths) // 2
            return self._fast_read(insert, paths[:half]) + self._fast_read(insert, paths[half:])

    @staticmethod
    def _typed_events(source: str, fast: bool | None) -> str:
        """ev rows from a typed_sql source: typed ids, text as read, is_play, err (and raw when rejected)."""
        if fast is None:
            source = raw_json_source("(SELECT NULL::VARCHAR AS source_file, NULL::BIGINT AS line, "
                                     "NULL::VARCHAR AS raw WHERE false)", EVENT_FIELDS)
        nextsong = " ".join(
            f"WHEN {name} IS NULL THEN 'NextSong without {key}'"
            for name, key in (("user_id", "userId"), ("session_id", "sessionId"),
                              ("item_in_session", "itemInSession"))
        )
        columns = ", ".join(f.name for f in EVENT_FIELDS)
        return f"""
            SELECT source_file, {columns}, is_play, err, CASE WHEN err IS NOT NULL THEN raw END AS raw
            FROM (
                SELECT *, coalesce(error, CASE WHEN is_play THEN CASE {nextsong} END END) AS err
                FROM (
                    SELECT *, page = 'NextSong' OR (page <> 'NextSong' AND sp_clean(page) = 'NextSong') AS is_play
                    FROM ({typed_sql(source, EVENT_FIELDS, EVENT_REQUIRED, lazy_text=True)})
                )
            )
        """

    def _count_events(self, batch: DuckDBBatch) -> None:
        counts = self.con.execute("""
            SELECT count(*) FILTER (WHERE err IS NULL), count(*) FILTER (WHERE err IS NULL AND is_play)
            FROM ev
        """).fetchall()[0]
        filtered = dict(self.con.execute("""
            SELECT coalesce(sp_clean(page), '(no page)') AS page, sum(n)::BIGINT FROM (
                SELECT page, count(*) AS n FROM ev WHERE err IS NULL AND NOT coalesce(is_play, false)
                GROUP BY page
            ) GROUP BY 1 ORDER BY 1
        """).fetchall())
        rejected = sum(1 for r in self._rejects if r["kind"] == "event")
        batch.events = {"read": counts[0] + rejected, "rejected": rejected,
                        "filtered": filtered, "song_plays": counts[1]}
        per_file = Counter(r["source_file"] for r in self._rejects if r["kind"] == "event")
        for path, n in self.con.execute(
            "SELECT source_file, count(*) FROM ev WHERE err IS NULL GROUP BY 1"
        ).fetchall():
            per_file[path] += n
        batch.file_records.update(per_file)

    def _locate_event_rejects(self, doubted: list[str]) -> None:
        """Give every rejected log line of the files read line by line its number and raw text (see rawlines)."""
        by_file: dict[str, Counter] = defaultdict(Counter)
        reasons: dict[tuple[str, str], str] = {}
        for path, raw, reason in self.con.execute(
            "SELECT source_file, raw, err FROM ev WHERE err IS NOT NULL"
        ).fetchall():
            by_file[path][raw] += 1
            reasons[(path, raw)] = reason
        unreadable: dict[str, dict[int, str]] = defaultdict(dict, {path: {} for path in doubted})
        if self._has_table("sp_csv_errors"):
            # byte_position (1-based), not line_byte_position: that one is shifted by the empty lines before
            for path, offset, kind, message in self.con.execute("""
                SELECT s.file_path, e.byte_position - 1, e.error_type, e.error_message
                FROM sp_csv_errors e JOIN sp_csv_scans s USING (scan_id, file_id)
            """).fetchall():
                unreadable[path][offset] = (
                    rawlines.UNDECODABLE if kind == "INVALID ENCODING"
                    else f"unreadable line: {message.splitlines()[0]}"
                )
        for reject in rawlines.locate(by_file, reasons, unreadable, longest=MAX_LINE_BYTES):
            self._reject("event", *reject)

    def _has_table(self, name: str) -> bool:
        return bool(self.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [name]).fetchall()[0][0])

    # -- the star ------------------------------------------------------------

    def _star(self, batch: DuckDBBatch) -> None:
        """Song plays, time, users from ev. Text is cleaned here, after the rows are chosen:
        far fewer values than events, and a play's level, location and user agent once per
        distinct value (a few hundred), joined back, cheaper than cleaning every play's.
        Duplicate events are rare, so only their identities go through the (costly) aggregate,
        which keeps the copy with the smallest stored values (level, location, user agent as
        cleaned, then the song's match key and length): the rule a later run applies against
        the stored copy too (targets/sqlmerge.py). Likewise a user's latest event is chosen
        among that user's events at their largest ts only (the order starts with ts): a plain
        max per user first, so the costly struct aggregate sees a few rows, not every event."""
        play = "level, location, user_agent, song, artist, length"
        identity = "session_id, item_in_session, user_id, ts"
        songplay_id = f"('0x' || md5(concat_ws('|', {identity}))[1:15])::BIGINT AS songplay_id"
        tie = ", ".join(f"{c} := coalesce({e}, '')" for c, e in (
            ("level", "sp_clean(level)"), ("location", "sp_clean(location)"), ("user_agent", "sp_clean(user_agent)"),
            ("title_key", "sp_key(sp_clean(song))"), ("artist_key", "sp_key(sp_clean(artist))")))
        self._sql(f"""
            CREATE OR REPLACE {self._new}dup_plays AS
            SELECT {identity} FROM ev WHERE err IS NULL AND is_play GROUP BY ALL HAVING count(*) > 1
        """)
        self._sql(f"""
            CREATE OR REPLACE {self._new}plays AS
            SELECT {songplay_id}, ts, user_id, session_id, {play}
            FROM ev ANTI JOIN dup_plays USING ({identity}) WHERE err IS NULL AND is_play
            UNION ALL
            SELECT {songplay_id}, ts, user_id, session_id, r.*
            FROM (
                SELECT {identity},
                       arg_min(struct_pack({', '.join(c + ' := ' + c for c in play.split(', '))}),
                               struct_pack({tie}, length := coalesce(length, -1))) AS r
                FROM ev SEMI JOIN dup_plays USING ({identity}) WHERE err IS NULL AND is_play
                GROUP BY ALL
            )
        """)
        self._sql(f"""
            CREATE OR REPLACE {self._new}play_text_keys AS
            SELECT song, artist, sp_key(sp_clean(song)) AS title_key, sp_key(sp_clean(artist)) AS artist_key
            FROM (SELECT DISTINCT song, artist FROM plays WHERE song IS NOT NULL OR artist IS NOT NULL)
        """)
        self._sql(f"""
            CREATE OR REPLACE {self._new}play_match AS
            SELECT p.song, p.artist, p.length, min(c.song_id) AS song_id
            FROM (SELECT DISTINCT song, artist, length FROM plays WHERE length IS NOT NULL) p
            JOIN play_text_keys k USING (song, artist)
            JOIN catalogue c ON c.title_key = k.title_key AND c.artist_key = k.artist_key
                            AND abs(c.duration - p.length) < 0.001
            GROUP BY ALL
        """)
        cleaned = ("level", "location", "user_agent")
        self._sql(f"""
            CREATE OR REPLACE {self._new}b_songplays AS
            WITH {', '.join(f"clean_{c} AS (SELECT {c} AS v, sp_clean({c}) AS clean FROM (SELECT DISTINCT {c} "
                            "FROM plays))" for c in cleaned)}
            SELECT p.songplay_id, epoch_ms(p.ts)::TIMESTAMPTZ AS start_time, p.user_id, clean_level.clean AS level,
                   m.song_id, c.artist_id, p.session_id, clean_location.clean AS location,
                   clean_user_agent.clean AS user_agent
            FROM plays p
            LEFT JOIN play_match m ON m.song = p.song AND m.artist = p.artist AND m.length = p.length
            LEFT JOIN catalogue c ON c.song_id = m.song_id
            {' '.join(f"LEFT JOIN clean_{c} ON clean_{c}.v = p.{c}" for c in cleaned)}
        """)
        self._sql(f"""
            CREATE OR REPLACE {self._new}b_play_keys AS
            SELECT p.songplay_id, epoch_ms(p.ts)::TIMESTAMPTZ AS start_time, k.title_key, k.artist_key, p.length
            FROM plays p LEFT JOIN play_text_keys k ON k.song IS NOT DISTINCT FROM p.song
                                                    AND k.artist IS NOT DISTINCT FROM p.artist
        """)
        self._sql(f"""
            CREATE OR REPLACE {self._new}b_time AS
            SELECT start_time, hour(t)::INTEGER AS hour, day(t)::INTEGER AS day, week(t)::INTEGER AS week,
                   month(t)::INTEGER AS month, year(t)::INTEGER AS year, isodow(t)::INTEGER AS weekday
            FROM (SELECT DISTINCT start_time, start_time::TIMESTAMP AS t FROM b_songplays)
        """)
        who = "first_name, last_name, gender, level"
        key = ("ts", "session_id", "item_in_session")
        self._sql(f"""
            CREATE OR REPLACE {self._new}b_users AS
            SELECT user_id, sp_clean(r.first_name) AS first_name, sp_clean(r.last_name) AS last_name,
                   sp_clean(r.gender) AS gender, sp_clean(r.level) AS level, r.ts, r.session_id, r.item_in_session,
                   {', '.join(f"coalesce(r.{c}, '') AS tie_{c}" for c in who.split(', '))}
            FROM (
                SELECT user_id, arg_max(
                    struct_pack({', '.join(f'{c} := {c}' for c in (*who.split(', '), *key))}),
                    struct_pack(ts := ts, s := coalesce(session_id, {ID_TAIL}),
                                i := coalesce(item_in_session, {ID_TAIL}),
                                {', '.join(f"{c} := coalesce({c}, '')" for c in who.split(', '))})
                ) AS r
                FROM ev SEMI JOIN (SELECT user_id, max(ts) AS ts FROM ev WHERE err IS NULL AND user_id IS NOT NULL
                                   GROUP BY user_id) USING (user_id, ts)
                WHERE err IS NULL AND user_id IS NOT NULL GROUP BY user_id
            )
        """)
        plays = self.con.execute("SELECT count(*) FROM plays").fetchall()[0][0]
        batch.events["in_batch_duplicate"] = batch.events["song_plays"] - plays

    # -- rejects -------------------------------------------------------------

    def _reject(self, kind: str, source_file: str, line: int | None, reason: str, raw: str | None) -> None:
        self._rejects.append({"kind": kind, "source_file": source_file, "line": line,
                              "reason": rawlines.storable(reason), "raw": rawlines.storable(raw)})


def _remove_database(path: str) -> None:
    for name in (path, f"{path}.wal"):
        with suppress(FileNotFoundError):
            os.remove(name)
