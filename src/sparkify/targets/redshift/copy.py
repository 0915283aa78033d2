"""Redshift's COPY: the JSONPaths file, COPY JSON from a manifest into staging, and what the load errors say."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sparkify.records import EVENT_FIELDS, SONG_FIELDS
from sparkify.staging import LOAD_ERRORS, STAGED_FILES, STAGING_EVENTS, STAGING_SONGS, lit, q


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
