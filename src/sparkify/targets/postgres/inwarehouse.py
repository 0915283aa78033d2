"""The in-warehouse merge, shared by Redshift and PostgreSQL: MERGE, UPDATE ... FROM and anti-joined INSERTs.

Redshift has no INSERT ... ON CONFLICT and no row comparison, so the batch
tables the in-warehouse engine built are merged with statements both
warehouses run, the tie rules spelled out term by term (sqlmerge's
helpers); the effect is that of targets/sqlmerge.py, so increments equal a
full rebuild here too.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sparkify.batch import SummaryFn, WarehouseBatch, WriteResult
from sparkify.schema import (
    ARTISTS,
    LOADED_FILES,
    PLAY_KEYS,
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
from sparkify.staging import POSTGRES, Names, SqlDialect, ctas, q
from sparkify.targets.sqlmerge import lexicographic, play_tie, rematch_select, user_tie


def _cols(table: Table, prefix: str = "") -> str:
    return ", ".join(prefix + q(c) for c in table.column_names)


def _sets(table: Table) -> str:
    return ", ".join(f"{q(c)} = src.{q(c)}" for c in table.column_names if c not in table.primary_key)


def _merge(table: Table, source: str, t: Names) -> str:
    """MERGE: the row of each key replaced by the batch's (Redshift has no ON CONFLICT)."""
    pk = " AND ".join(f"tgt.{q(c)} = src.{q(c)}" for c in table.primary_key)
    return (f"MERGE INTO {t(table)} AS tgt USING {source} AS src ON {pk} WHEN MATCHED THEN UPDATE SET {_sets(table)} "
            f"WHEN NOT MATCHED THEN INSERT ({_cols(table)}) VALUES ({_cols(table, 'src.')})")


def _insert_new(table: Table, source: str, t: Names) -> str:
    match = " AND ".join(f"x.{q(c)} = s.{q(c)}" for c in table.primary_key)
    return (f"INSERT INTO {t(table)} ({_cols(table)}) SELECT {_cols(table, 's.')} FROM {source} s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {t(table)} x WHERE {match})")


def _update(table: Table, source: str, t: Names, where: str) -> str:
    """UPDATE ... FROM: the rows of `table` that `where` pairs with a row of `source` take its values."""
    return f"UPDATE {t(table)} AS tgt SET {_sets(table)} FROM {source} AS src WHERE {where}"


def _plays(t: Names, byte: str) -> list[tuple[str, str]]:
    """Add the new plays; replace a stored play by the batch's copy of it when that copy comes first by
    sqlmerge.PLAY_TIE, so that any order of deliveries keeps the copy one run over all of them keeps."""
    pid = q("songplay_id")
    before = lexicographic("<", play_tie("n", "nk", byte), play_tie("s", "k", byte))
    replaced = f"tgt.{pid} = src.{pid} AND src.{pid} IN (SELECT {pid} FROM sp_replaced)"
    return [
        *ctas("sp_replaced", f"SELECT n.{pid} FROM b_songplays n JOIN b_play_keys nk ON nk.{pid} = n.{pid} "
                             f"JOIN {t(SONGPLAYS)} s ON s.{pid} = n.{pid} "
                             f"JOIN {t(PLAY_KEYS)} k ON k.{pid} = n.{pid} WHERE {before}"),
        ("replaced", _update(SONGPLAYS, "b_songplays", t, replaced)),
        ("replaced", _update(PLAY_KEYS, "b_play_keys", t, replaced)),
        ("songplays", _insert_new(SONGPLAYS, "b_songplays", t)),
        ("play_keys", _insert_new(PLAY_KEYS, "b_play_keys", t)),
    ]


def _rematch(t: Names, byte: str) -> list[tuple[str, str]]:
    """Match again the stored plays whose key a changed song carries (its key, or that of the record it
    replaced): a late song gives them its song_id, a replaced record takes it back. The plays are found by
    their key in the play keys (indexed on PostgreSQL, the sort key on Redshift), not by a scan of all
    plays; an artist left without a song record goes."""
    pid, sid, artist = q("songplay_id"), q("song_id"), q("artist_id")
    return [
        *ctas("sp_rematch", rematch_select(q, t, "b_song_records", byte), analyze=False),
        ("rematch", f"UPDATE {t(SONGPLAYS)} AS tgt SET {sid} = src.{sid}, {artist} = src.{artist} "
                    f"FROM sp_rematch AS src WHERE tgt.{pid} = src.{pid} "
                    f"AND (COALESCE(tgt.{sid}, '') <> COALESCE(src.{sid}, '') "
                    f"OR COALESCE(tgt.{artist}, '') <> COALESCE(src.{artist}, ''))"),
        ("artists", f"DELETE FROM {t(ARTISTS)} WHERE {artist} IN (SELECT {artist} FROM sp_song_changes) "
                    f"AND {artist} NOT IN (SELECT {artist} FROM {t(SONG_RECORDS)})"),
    ]


def merge_statements(t: Names, dialect: SqlDialect = POSTGRES) -> list[tuple[str, str]]:
    """(purpose, SQL) in order; the songplays insert is tagged 'songplays'. Same effect as targets/sqlmerge.py:
    song records upserted (the engine kept only those that win), stored plays replaced or matched again,
    a user's row moved only to a later event, text ties compared in byte order."""
    byte = dialect.byte_order
    later = lexicographic(">", user_tie("b", byte), user_tie("o", byte))
    rejects = _cols(REJECTS)
    return [
        ("artists", _merge(ARTISTS, "b_artists", t)),
        *ctas("sp_song_changes", f"SELECT r.title_key, r.artist_key, r.artist_id FROM {t(SONG_RECORDS)} r "
                                 "WHERE r.song_id IN (SELECT song_id FROM b_song_records)"),
        ("songs", _merge(SONGS, "b_songs", t)),
        ("song_records", _merge(SONG_RECORDS, "b_song_records", t)),
        *ctas("b_users_newer", f"SELECT b.* FROM b_users b LEFT JOIN {t(USER_LATEST)} o "
                                f"ON o.user_id = b.user_id WHERE o.user_id IS NULL OR {later}"),
        ("users", _merge(USERS, "b_users_newer", t)),
        ("user_latest", _merge(USER_LATEST, "b_users_newer", t)),
        ("time", _insert_new(TIME, "b_time", t)),
        *_plays(t, byte),
        *_rematch(t, byte),
        ("rejects", f"DELETE FROM {t(REJECTS)} WHERE source_file IN (SELECT path FROM b_files)"),
        ("rejects", f"INSERT INTO {t(REJECTS)} ({rejects}) SELECT {rejects} FROM b_rejects"),
        ("files", _merge(LOADED_FILES, "b_files", t)),
    ]


def write(batch: WarehouseBatch, names: Names, summary: SummaryFn, dialect: SqlDialect = POSTGRES) -> WriteResult:
    """Merge the batch on its own transaction's cursor and record the run; the transaction commits after."""
    cur, inserted = batch.cursor, 0
    for purpose, statement in merge_statements(names, dialect):
        cur.execute(statement)
        if purpose == "songplays":
            inserted = cur.rowcount
    result = WriteResult(inserted)
    cur.execute(f"INSERT INTO {names(RUNS)} (run_id, started_at, finished_at, summary) VALUES (%s, %s, %s, %s)",
                (batch.run_id, batch.run.started, datetime.now(UTC), summary(result)))
    return result
