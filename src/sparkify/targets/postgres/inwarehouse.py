"""The in-warehouse merge, shared by Redshift and PostgreSQL: MERGE and anti-joined INSERTs.

Redshift has no INSERT ... ON CONFLICT, so the batch tables the in-warehouse
engine built are merged with statements both warehouses run; the effect is
that of targets/sqlmerge.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sparkify.batch import SummaryFn, WarehouseBatch, WriteResult
from sparkify.records import ID_TAIL
from sparkify.schema import (
    ARTISTS,
    LOADED_FILES,
    REJECTS,
    RUNS,
    SONG_RECORDS,
    SONGPLAYS,
    SONGS,
    TIME,
    USER_LATEST,
    USERS,
    Table,
)
from sparkify.staging import Names, ctas, q


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
        *ctas("b_users_newer", f"SELECT b.* FROM b_users b LEFT JOIN {t(USER_LATEST)} o "
                                f"ON o.user_id = b.user_id WHERE {later}"),
        ("users", _merge(USERS, "b_users_newer", t)),
        ("user_latest", _merge(USER_LATEST, "b_users_newer", t)),
        ("time", _insert_new(TIME, "b_time", t)),
        ("songplays", _insert_new(SONGPLAYS, "b_songplays", t)),
        ("rejects", f"DELETE FROM {t(REJECTS)} WHERE source_file IN (SELECT path FROM b_files)"),
        ("rejects", f"INSERT INTO {t(REJECTS)} ({rejects}) SELECT {rejects} FROM b_rejects"),
        ("files", _merge(LOADED_FILES, "b_files", t)),
    ]


def write(batch: WarehouseBatch, names: Names, summary: SummaryFn) -> WriteResult:
    """Merge the batch on its own transaction's cursor and record the run; the transaction commits after."""
    cur, inserted = batch.cursor, 0
    for purpose, statement in merge_statements(names):
        cur.execute(statement)
        if purpose == "songplays":
            inserted = cur.rowcount
    result = WriteResult(inserted)
    cur.execute(f"INSERT INTO {names(RUNS)} (run_id, started_at, finished_at, summary) VALUES (%s, %s, %s, %s)",
                (batch.run_id, batch.run.started, datetime.now(UTC), summary(result)))
    return result
