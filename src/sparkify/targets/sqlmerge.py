"""The merge of a batch into a SQL star: one statement list for every target with ON CONFLICT.

DuckDB and PostgreSQL share this: staging tables (named by `stage`) are
merged into the star so that a rerun changes nothing, songs and time rows are
added once, artists take their recomputed spelling, and a user's row moves
only to a later event.
"""

from __future__ import annotations

from collections.abc import Callable

from sparkify.records import ID_TAIL
from sparkify.schema import (
    ARTISTS,
    LOADED_FILES,
    REJECTS,
    SONG_RECORDS,
    SONGPLAYS,
    SONGS,
    TIME,
    USER_LATEST,
    USERS,
    Table,
)

UPSERTED: tuple[Table, ...] = (ARTISTS, USERS, USER_LATEST, LOADED_FILES)
"""The tables merged by INSERT ... ON CONFLICT DO UPDATE (a new value replaces the stored one):
the only ones whose primary key the merge needs, whatever `anti_join` says."""


def _later_than_stored(new: str, old: str) -> str:
    """SQL: event key of `new` is after that of `old` (ts, then sessionId, then itemInSession)."""
    s_new, s_old = f"coalesce({new}.session_id, {ID_TAIL})", f"coalesce({old}.session_id, {ID_TAIL})"
    i_new, i_old = f"coalesce({new}.item_in_session, {ID_TAIL})", f"coalesce({old}.item_in_session, {ID_TAIL})"
    return (
        f"({old}.user_id IS NULL OR {new}.ts > {old}.ts OR ({new}.ts = {old}.ts AND "
        f"({s_new} > {s_old} OR ({s_new} = {s_old} AND {i_new} > {i_old}))))"
    )


class SqlMerge:
    def __init__(self, quote: Callable[[str], str], table: Callable[[Table], str], stage: Callable[[str], str],
                 anti_join: bool = True):
        """`table` names a star table, `stage` a batch table (b_songplays, ...).

        `anti_join=False` adds new keys by ON CONFLICT DO NOTHING instead: PostgreSQL 15
        plans the anti-join as a hash of the whole star table (no right anti-join before
        16), so every increment would cost as much as the table; ON CONFLICT probes the key
        index per batch row (docs/postgres.md has the figures).
        """
        self.q, self.t, self.stage, self.anti_join = quote, table, stage, anti_join

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
        sets = ", ".join(
            f"{self.q(c)} = excluded.{self.q(c)}" for c in table.column_names if c not in table.primary_key
        )
        return f"DO UPDATE SET {sets}"

    def statements(self) -> list[tuple[str, str]]:
        """(purpose, SQL) in the order they must run; the songplays insert is tagged 'songplays'."""
        newer = (
            f"(SELECT b.* FROM {self.stage('b_users')} b LEFT JOIN {self.t(USER_LATEST)} s "
            f"ON s.user_id = b.user_id WHERE {_later_than_stored('b', 's')}) AS newer"
        )
        rejects = self._cols(REJECTS)
        return [
            ("artists", self._insert(ARTISTS, self.stage("b_artists"), self._update_all(ARTISTS))),
            ("songs", self._insert_new(SONGS, self.stage("b_songs"))),
            ("song_records", self._insert_new(SONG_RECORDS, self.stage("b_song_records"))),
            ("users", self._insert(USERS, newer, self._update_all(USERS))),
            ("user_latest", self._insert(USER_LATEST, newer, self._update_all(USER_LATEST))),
            ("time", self._insert_new(TIME, self.stage("b_time"))),
            ("songplays", self._insert_new(SONGPLAYS, self.stage("b_songplays"))),
            ("rejects", f"DELETE FROM {self.t(REJECTS)} WHERE source_file IN "
                        f"(SELECT path FROM {self.stage('b_files')})"),
            ("rejects", f"INSERT INTO {self.t(REJECTS)} ({rejects}) SELECT {rejects} FROM {self.stage('b_rejects')}"),
            ("files", self._insert(LOADED_FILES, self.stage("b_files"), self._update_all(LOADED_FILES))),
        ]
