"""The merge of a batch into a SQL star: one statement list for every target with ON CONFLICT.

DuckDB, PostgreSQL and the lake's working tables share this: staging tables
(named by `stage`) are merged into the star so that any sequence of runs
over any arrival order of the same files leaves what one run over all of
them leaves. A rerun changes nothing; a song record replaces the stored one
when it comes from a smaller (file, line); a stored play is replaced by a
redelivered copy that comes first by the value rule, and matched again when
a song that fits it arrives or changes; artists take their recomputed
spelling; a user's row moves only to a later event.
"""

from __future__ import annotations

from collections.abc import Callable

from sparkify.records import ID_TAIL
from sparkify.schema import (
    ARTISTS,
    LOADED_FILES,
    PLAY_KEYS,
    REJECTS,
    SONG_RECORDS,
    SONGPLAYS,
    SONGS,
    TIME,
    USER_LATEST,
    USERS,
    Table,
)

UPSERTED: tuple[Table, ...] = (ARTISTS, SONGS, SONG_RECORDS, USERS, USER_LATEST, LOADED_FILES)
"""The tables merged by INSERT ... ON CONFLICT DO UPDATE (a new value replaces the stored one):
the only ones whose primary key the merge needs, whatever `anti_join` says."""

PLAY_TIE = ("level", "location", "user_agent", "title_key", "artist_key", "length")
"""Of two copies of one event, the one with the smaller values here stays (NULL first): level, location and
user agent as stored, then the match key of the song played (schema.PLAY_KEYS)."""

USER_TIE = ("ts", "session_id", "item_in_session", "tie_first_name", "tie_last_name", "tie_gender", "tie_level")
"""A user's row follows the event with the greatest values here (schema.USER_LATEST)."""


def lexicographic(op: str, left: list[str], right: list[str]) -> str:
    """SQL: the tuple `left` is before (op '<') or after ('>') the tuple `right`, spelled out term by
    term (Redshift has no row comparison). Terms must not be NULL."""
    (a, *rest_a), (b, *rest_b) = left, right
    if not rest_a:
        return f"{a} {op} {b}"
    return f"({a} {op} {b} OR ({a} = {b} AND {lexicographic(op, rest_a, rest_b)}))"


def play_tie(play: str, keys: str, collate: str = "") -> list[str]:
    """The PLAY_TIE terms of a songplays row and its play-keys row, NULL as the smallest value."""
    return ([f"coalesce({play}.{c}, ''){collate}" for c in PLAY_TIE[:3]]
            + [f"coalesce({keys}.{c}, ''){collate}" for c in PLAY_TIE[3:5]]
            + [f"coalesce({keys}.length, -1)"])


def user_tie(row: str, collate: str = "") -> list[str]:
    """The USER_TIE terms of a b_users or _sparkify_user_latest row (a missing id is the smallest)."""
    return [f"{row}.ts", f"coalesce({row}.session_id, {ID_TAIL})", f"coalesce({row}.item_in_session, {ID_TAIL})",
            *(f"{row}.{c}{collate}" for c in USER_TIE[3:])]


def rematch_select(q: Callable[[str], str], t: Callable[[Table], str], records: str, collate: str = "") -> str:
    """SELECT songplay_id, song_id, artist_id: the match, in the catalogue as merged, of every stored play
    whose key a changed song carries (the key of a record in `records`, or of one it replaced, noted in
    sp_song_changes). Shared by this merge and the in-warehouse one."""
    tk, ak, pid, sid, artist = q("title_key"), q("artist_key"), q("songplay_id"), q("song_id"), q("artist_id")
    keys = f"SELECT {tk}, {ak} FROM {records} UNION SELECT {tk}, {ak} FROM sp_song_changes"
    best = (f"SELECT k.{pid}, min(r.{sid}{collate}) AS {sid} FROM {t(PLAY_KEYS)} k "
            f"JOIN ({keys}) a ON a.{tk} = k.{tk} AND a.{ak} = k.{ak} "
            f"LEFT JOIN {t(SONG_RECORDS)} r ON r.{tk} = k.{tk} AND r.{ak} = k.{ak} "
            f"AND abs(r.{q('duration')} - k.{q('length')}) < 0.001 GROUP BY k.{pid}")
    return f"SELECT m.{pid}, m.{sid}, r.{artist} FROM ({best}) m LEFT JOIN {t(SONG_RECORDS)} r ON r.{sid} = m.{sid}"


class SqlMerge:
    def __init__(self, quote: Callable[[str], str], table: Callable[[Table], str], stage: Callable[[str], str],
                 anti_join: bool = True, collate: str = ""):
        """`table` names a star table, `stage` a batch table (b_songplays, ...).

        `anti_join=False` adds new keys by ON CONFLICT DO NOTHING instead: PostgreSQL 15
        plans the anti-join as a hash of the whole star table (no right anti-join before
        16), so every increment would cost as much as the table; ON CONFLICT probes the key
        index per batch row (docs/postgres.md has the figures). `collate` makes the tie
        rules compare text in byte order whatever the database's collation (PostgreSQL:
        ' COLLATE "C"'), as DuckDB and Spark do.
        """
        self.q, self.t, self.stage, self.anti_join, self.collate = quote, table, stage, anti_join, collate

    def _cols(self, table: Table, prefix: str = "") -> str:
        return ", ".join(prefix + self.q(c) for c in table.column_names)

    def _insert(self, table: Table, source: str, on_conflict: str) -> str:
        pk = ", ".join(self.q(c) for c in table.primary_key)
        return (
            f"INSERT INTO {self.t(table)} ({self._cols(table)}) "
            f"SELECT {self._cols(table)} FROM {source} ON CONFLICT ({pk}) {on_conflict}"
        )

    def _insert_new(self, table: Table, source: str) -> str:
        """Insert the rows whose key is not there yet.

        An anti-join rather than ON CONFLICT DO NOTHING: the same result under
        the run's lock, and DuckDB then skips a probe of the key index per row
        (a third of the load time on a large batch).
        """
        if not self.anti_join:
            return self._insert(table, source, "DO NOTHING")
        match = " AND ".join(f"x.{self.q(c)} = s.{self.q(c)}" for c in table.primary_key)
        return (
            f"INSERT INTO {self.t(table)} ({self._cols(table)}) SELECT {self._cols(table, 's.')} "
            f"FROM {source} s WHERE NOT EXISTS (SELECT 1 FROM {self.t(table)} x WHERE {match})"
        )

    def _update_all(self, table: Table) -> str:
        return f"DO UPDATE SET {self._sets(table, 'excluded')}"

    def _sets(self, table: Table, source: str) -> str:
        return ", ".join(
            f"{self.q(c)} = {source}.{self.q(c)}" for c in table.column_names if c not in table.primary_key
        )

    @staticmethod
    def _temp(name: str, select: str) -> list[tuple[str, str]]:
        """A temporary table of the merge, made anew (DuckDB and PostgreSQL spell this alike) and analysed:
        PostgreSQL, knowing it small, finds the plays it names through the play keys' index."""
        return [(name, f"DROP TABLE IF EXISTS {name}"), (name, f"CREATE TEMP TABLE {name} AS {select}"),
                (name, f"ANALYZE {name}")]

    def _songs(self) -> list[tuple[str, str]]:
        """Upsert the batch's song records (new songs, and records from a smaller file and line than
        the stored one), noting first the keys and artists of the records they replace."""
        q, t, b = self.q, self.t, self.stage
        return [
            *self._temp("sp_song_changes", f"SELECT r.{q('title_key')}, r.{q('artist_key')}, r.{q('artist_id')} "
                                           f"FROM {t(SONG_RECORDS)} r WHERE r.{q('song_id')} IN "
                                           f"(SELECT {q('song_id')} FROM {b('b_song_records')})"),
            ("songs", self._insert(SONGS, b("b_songs"), self._update_all(SONGS))),
            ("song_records", self._insert(SONG_RECORDS, b("b_song_records"), self._update_all(SONG_RECORDS))),
        ]

    def _plays(self) -> list[tuple[str, str]]:
        """Add the new plays; replace a stored play by the batch's copy of it when that copy comes first
        by PLAY_TIE, so that any order of deliveries keeps the copy one run over all of them keeps."""
        q, t, b, c = self.q, self.t, self.stage, self.collate
        pid = q("songplay_id")
        before = lexicographic("<", play_tie("n", "nk", c), play_tie("s", "k", c))
        replaced = f"(SELECT {pid} FROM sp_replaced)"
        return [
            *self._temp("sp_replaced", f"SELECT n.{pid} FROM {b('b_songplays')} n "
                                       f"JOIN {b('b_play_keys')} nk ON nk.{pid} = n.{pid} "
                                       f"JOIN {t(SONGPLAYS)} s ON s.{pid} = n.{pid} "
                                       f"JOIN {t(PLAY_KEYS)} k ON k.{pid} = n.{pid} WHERE {before}"),
            ("replaced", f"UPDATE {t(SONGPLAYS)} AS x SET {self._sets(SONGPLAYS, 'n')} FROM {b('b_songplays')} n "
                         f"WHERE x.{pid} = n.{pid} AND n.{pid} IN {replaced}"),
            ("replaced", f"UPDATE {t(PLAY_KEYS)} AS x SET {self._sets(PLAY_KEYS, 'n')} FROM {b('b_play_keys')} n "
                         f"WHERE x.{pid} = n.{pid} AND n.{pid} IN {replaced}"),
            ("songplays", self._insert_new(SONGPLAYS, b("b_songplays"))),
            ("play_keys", self._insert_new(PLAY_KEYS, b("b_play_keys"))),
        ]

    def _rematch(self) -> list[tuple[str, str]]:
        """Match again the stored plays whose key a changed song carries (its new key or the one it
        replaced): a late song gives them its song_id, a replaced record takes it back. The plays are
        found by their key in PLAY_KEYS, the candidates in the catalogue as merged; an artist left
        without a song record goes."""
        q, t = self.q, self.t
        pid, sid, artist = q("songplay_id"), q("song_id"), q("artist_id")
        match = rematch_select(q, t, self.stage("b_song_records"), self.collate)
        return [
            ("rematch", f"UPDATE {t(SONGPLAYS)} AS x SET {sid} = m.{sid}, {artist} = m.{artist} FROM ({match}) m "
                        f"WHERE x.{pid} = m.{pid} AND (x.{sid} IS DISTINCT FROM m.{sid} "
                        f"OR x.{artist} IS DISTINCT FROM m.{artist})"),
            ("artists", f"DELETE FROM {t(ARTISTS)} WHERE {artist} IN (SELECT {artist} FROM sp_song_changes) "
                        f"AND {artist} NOT IN (SELECT {artist} FROM {t(SONG_RECORDS)})"),
        ]

    def statements(self) -> list[tuple[str, str]]:
        """(purpose, SQL) in the order they must run; the songplays insert is tagged 'songplays'."""
        later = lexicographic(">", user_tie("b", self.collate), user_tie("s", self.collate))
        newer = (
            f"(SELECT b.* FROM {self.stage('b_users')} b LEFT JOIN {self.t(USER_LATEST)} s "
            f"ON s.user_id = b.user_id WHERE s.user_id IS NULL OR {later}) AS newer"
        )
        rejects = self._cols(REJECTS)
        return [
            ("artists", self._insert(ARTISTS, self.stage("b_artists"), self._update_all(ARTISTS))),
            *self._songs(),
            ("users", self._insert(USERS, newer, self._update_all(USERS))),
            ("user_latest", self._insert(USER_LATEST, newer, self._update_all(USER_LATEST))),
            ("time", self._insert_new(TIME, self.stage("b_time"))),
            *self._plays(),
            *self._rematch(),
            ("rejects", f"DELETE FROM {self.t(REJECTS)} WHERE source_file IN "
                        f"(SELECT path FROM {self.stage('b_files')})"),
            ("rejects", f"INSERT INTO {self.t(REJECTS)} ({rejects}) SELECT {rejects} FROM {self.stage('b_rejects')}"),
            ("files", self._insert(LOADED_FILES, self.stage("b_files"), self._update_all(LOADED_FILES))),
        ]
