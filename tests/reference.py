"""An independent, plain-Python reading of SPEC.md, for differential tests.

Written from the spec, not from the engines: slow, obvious code that the SQL
engines' tables are compared with row by row. Only clean-enough inputs are
needed here (the real sample, or generated data), so it rejects only what it
must to stay obviously correct.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import unicodedata
from collections import Counter, defaultdict
from pathlib import Path


def _repair(text: str) -> str:
    while True:
        try:
            fixed = text.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            return text
        if fixed == text:
            return text
        text = fixed


def clean(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        value = "true" if value else "false"
    text = str(value) if not isinstance(value, float) else repr(value)
    if any(ord(c) > 127 for c in text):
        text = unicodedata.normalize("NFC", _repair(text))
    text = text.strip()  # every character Python counts as whitespace, as the contract says
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    return text or None


def key(value) -> str | None:
    text = clean(value)
    return text.casefold() if text is not None else None


def integer(value) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = clean(value)
        if value is None:
            return None
        return int(float(value)) if "." in value else int(value)
    return int(value)


def _json_lines(path: Path):
    for line in path.read_bytes().splitlines():
        if line.strip():
            yield json.loads(line)


def _song_records(song_dir: Path):
    for path in sorted(song_dir.rglob("*.json")):
        text = path.read_text(encoding="utf-8")
        try:
            yield str(path), 1, json.loads(text)
        except json.JSONDecodeError:
            for n, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    yield str(path), n, json.loads(line)


def _utf8(value) -> bytes:
    """Text in byte order (NULL as ''), as the tie rules compare it."""
    return b"" if value is None else str(value).encode("utf-8", "surrogatepass")


def songplay_id(session_id: int, item: int, user_id: int, ts: int) -> int:
    digest = hashlib.md5(f"{session_id}|{item}|{user_id}|{ts}".encode()).hexdigest()
    return int(digest[:15], 16)


def _mode(values: list) -> object:
    counts = Counter(v for v in values if v is not None)
    if not counts:
        return None
    best = max(counts.values())
    return min(v for v, n in counts.items() if n == best)


def star(song_dir: Path, log_dir: Path) -> dict[str, list[tuple]]:
    """The five tables, each a list of tuples sorted by primary key."""
    records: dict[str, tuple] = {}
    for path, line, r in sorted(_song_records(song_dir), key=lambda x: (x[0], x[1])):
        sid = clean(r.get("song_id"))
        if sid is None or sid in records:
            continue
        year = integer(r.get("year"))
        records[sid] = (
            clean(r["title"]), clean(r["artist_id"]), year if year else None, float(r["duration"]),
            clean(r["artist_name"]), clean(r.get("artist_location")),
            r.get("artist_latitude"), r.get("artist_longitude"),
        )
    songs = sorted((sid, t, a, y, d) for sid, (t, a, y, d, *_) in records.items())
    by_artist = defaultdict(list)
    for rec in records.values():
        by_artist[rec[1]].append(rec)
    artists = sorted(
        (aid, _mode([r[4] for r in recs]), _mode([r[5] for r in recs]),
         _mode([r[6] for r in recs]), _mode([r[7] for r in recs]))
        for aid, recs in by_artist.items()
    )
    catalogue = defaultdict(list)
    for sid, (title, aid, _, duration, name, *_) in records.items():
        catalogue[(key(title), key(name))].append((duration, sid, aid))

    plays, latest = {}, {}
    for path in sorted(log_dir.rglob("*.json")):
        for e in _json_lines(path):
            uid = integer(e.get("userId"))
            ts = integer(e["ts"])
            sess, item = integer(e.get("sessionId")), integer(e.get("itemInSession"))
            if uid is not None:
                # the latest event; for events of one instant, the greatest names, gender, level as read
                order = (ts, sess if sess is not None else -(2**63), item if item is not None else -(2**63),
                         *(_utf8(e.get(f)) for f in ("firstName", "lastName", "gender", "level")))
                if uid not in latest or order > latest[uid][0]:
                    latest[uid] = (order, (clean(e.get("firstName")), clean(e.get("lastName")),
                                           clean(e.get("gender")), clean(e.get("level"))))
            if clean(e.get("page")) != "NextSong" or uid is None:
                continue
            pid = songplay_id(sess, item, uid, ts)
            length = e.get("length")
            match = [
                (sid, aid) for duration, sid, aid in catalogue.get((key(e.get("song")), key(e.get("artist"))), [])
                if length is not None and abs(duration - float(length)) < 0.001
            ]
            song_id, artist_id = min(match) if match else (None, None)
            start = dt.datetime.fromtimestamp(ts / 1000, tz=dt.timezone.utc).replace(
                microsecond=(ts % 1000) * 1000)
            row = (pid, start, uid, clean(e.get("level")), song_id, artist_id, sess,
                   clean(e.get("location")), clean(e.get("userAgent")))
            # of several copies of one event, the smallest stored values, then song and artist keys, length
            tie = (*(_utf8(v) for v in (row[3], row[7], row[8], key(e.get("song")), key(e.get("artist")))),
                   -1.0 if length is None else float(length))
            if pid not in plays or tie < plays[pid][0]:
                plays[pid] = (tie, row)
    plays = {pid: row for pid, (_, row) in plays.items()}
    songplays = sorted(plays.values())
    users = sorted((uid, *fields) for uid, (_, fields) in latest.items())
    times = sorted({p[1] for p in songplays})
    time = [(t, t.hour, t.day, t.isocalendar()[1], t.month, t.year, t.isoweekday()) for t in times]
    return {"songplays": songplays, "users": users, "songs": songs, "artists": artists, "time": time}
