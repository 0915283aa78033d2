"""--dirty: plant the bad input SPEC.md lists, and know exactly what was planted.

Two families, each spread evenly over its kinds (every kind at least once):
- rejects: what the pipeline must reject (records.py and engines/duckdb.py):
  a line that is not JSON (truncated, garbage, a flipped byte), a JSON value
  that is not an object, a missing or non-integer ts, a play without an
  integer userId/sessionId/itemInSession, an object or array where a value is
  expected, a length that is not a finite number, bytes that are not UTF-8;
  a song file that is not a JSON object or lacks song_id/title/artist_id/
  artist_name or a numeric duration.
- mess: what it must absorb: numbers where text is expected (and integers as
  text), values in stray double quotes, empty strings, blank lines, duplicate
  events, an empty file and a file delivered twice under another name.
The generator records every reject's file, line and kind in the manifest.
"""

from __future__ import annotations

import json
import random

import numpy as np

from sparkify.generate.sessions import DayEvents, P

REJECT_EVENT_KINDS = ("truncated", "garbage", "flipped_byte", "not_object", "bad_ts", "play_bad_id",
                      "nested_value", "bad_length", "invalid_utf8")
MESS_EVENT_KINDS = ("number_for_text", "stray_quotes", "empty_string", "blank_line", "duplicate_event")
REJECT_SONG_KINDS = ("song_missing_field", "song_bad_duration", "song_not_json", "song_not_object",
                     "song_nested_value", "song_invalid_utf8")
MESS_SONG_KINDS = ("song_stray_quotes", "song_number_for_text", "duplicate_file", "empty_file")

GARBAGE = (
    b"<html><head><title>502 Bad Gateway</title></head></html>",
    b"Traceback (most recent call last):",
    b"ERROR: connection reset by peer",
    b"#### rotated log ####",
    b"undefined",
)
TEXT_FIELDS = ("firstName", "lastName", "location", "page", "level", "song", "artist")
EMPTY_FIELDS = ("firstName", "lastName", "location", "gender", "userAgent", "song", "artist")
EVENT_VALUE_FIELDS = ("artist", "firstName", "gender", "itemInSession", "lastName", "length", "level",
                      "location", "page", "sessionId", "song", "ts", "userAgent", "userId")


def dump_event(event: dict) -> bytes:
    """An event line in the real logs' form (compact, ASCII, slashes escaped)."""
    return json.dumps(event, separators=(",", ":")).replace("/", "\\/").encode()


def _spread(total: int, kinds: tuple[str, ...]) -> dict[str, int]:
    return {k: max(1, total // len(kinds) + (i < total % len(kinds))) for i, k in enumerate(kinds)}


class Dirt:
    """The plan of what to plant where, for a rate, and the edits that plant it."""

    def __init__(self, rate: float, seed: int, day_events: list[int]):
        self.rate = rate
        self.seed = seed
        rng = np.random.default_rng([seed, 3])
        total = sum(day_events)
        planted = round(rate * total)
        share = np.array(day_events, dtype=float) / max(total, 1)
        self.day_counts: list[dict[str, int]] = [{} for _ in day_events]
        for kind, count in {**_spread(planted, REJECT_EVENT_KINDS), **_spread(planted, MESS_EVENT_KINDS)}.items():
            for day, n in enumerate(rng.multinomial(count, share)):
                if n:
                    self.day_counts[day][kind] = int(n)
        nonempty = [d for d, n in enumerate(day_events) if n]
        self.copied_day = int(rng.choice(nonempty)) if nonempty else None

    # -- songs ---------------------------------------------------------------

    def song_plan(self, count: int) -> dict[int, str]:
        """Song index -> what to plant in (or beside) its file."""
        planted = round(self.rate * count)
        wanted = [k for k, n in {**_spread(planted, REJECT_SONG_KINDS), **_spread(planted, MESS_SONG_KINDS)}.items()
                  for _ in range(n)]
        rows = np.random.default_rng([self.seed, 4]).permutation(count)[: len(wanted)]
        return {int(r): k for r, k in zip(rows, wanted)}

    def song_edit(self, kind: str, record: dict) -> bytes:
        """The bytes of a song file carrying `kind`."""
        rnd = random.Random(f"{self.seed}-song-{record['song_id']}")
        record = dict(record)
        if kind == "song_missing_field":
            key = rnd.choice(("song_id", "title", "artist_id", "artist_name"))
            if rnd.random() < 0.5:
                del record[key]
            else:
                record[key] = rnd.choice(("", None, "  "))
        elif kind == "song_bad_duration":
            record["duration"] = rnd.choice(("abc", None, "NaN", "Infinity"))
        elif kind == "song_nested_value":
            record[rnd.choice(("title", "artist_name", "duration"))] = rnd.choice(([1, 2], {"value": 1}))
        elif kind == "song_stray_quotes":
            record["title"] = f'"{record["title"]}"'
        elif kind == "song_number_for_text":
            record["artist_location"] = rnd.randint(1000, 99999)
        data = json.dumps(record).encode()
        if kind == "song_not_json":
            return data[: rnd.randint(1, len(data) - 2)]
        if kind == "song_not_object":
            return b"[" + data + b"]"
        if kind == "song_invalid_utf8":
            return data.replace(b'"title": "', b'"title": "\xe9', 1)
        return data

    # -- events --------------------------------------------------------------

    def day_plan(self, day_index: int, day: DayEvents) -> dict[int, str]:
        """Row of the day's events -> the kind planted on it (plays for play-only kinds)."""
        counts = self.day_counts[day_index] if day_index < len(self.day_counts) else {}
        if not counts or not len(day):
            return {}
        rng = np.random.default_rng([self.seed, 6, day_index])
        plays = rng.permutation(np.flatnonzero(day.page == P["NextSong"]))
        plan: dict[int, str] = {}
        for row in plays[: counts.get("play_bad_id", 0)]:
            plan[int(row)] = "play_bad_id"
        others = [k for k, n in counts.items() if k != "play_bad_id" for _ in range(n)]
        free = [int(r) for r in rng.permutation(len(day)) if int(r) not in plan]
        for row, kind in zip(free, others):
            plan[row] = kind
        return plan

    def event_edit(self, kind: str, line: bytes, rnd: random.Random) -> list[tuple[bytes, str]]:
        """The line(s) replacing `line`, each with its fate: 'reject', 'record' or 'blank'."""
        if kind == "truncated":
            return [(line[: rnd.randint(1, len(line) - 2)], "reject")]
        if kind == "garbage":
            return [(rnd.choice(GARBAGE), "reject")]
        if kind == "flipped_byte":
            return [(line.replace(b":", b";", 1), "reject")]
        if kind == "invalid_utf8":
            return [(line.replace(b'"auth":"Logged', b'"auth":"Logged\xe9', 1), "reject")]
        if kind == "not_object":
            return [(rnd.choice((b"[" + line + b"]", b'"NextSong"', b"42", b"null", b"true")), "reject")]
        if kind == "blank_line":
            return [(line, "record"), (rnd.choice((b"", b"   ", b"\t")), "blank")]
        if kind == "duplicate_event":
            return [(line, "record"), (line, "record")]
        event = json.loads(line)
        fate = "reject" if kind in REJECT_EVENT_KINDS else "record"
        if kind == "bad_ts":
            if rnd.random() < 0.3:
                del event["ts"]
            else:
                event["ts"] = rnd.choice((event["ts"] + 0.5, "soon", True, "", None))
        elif kind == "play_bad_id":
            key = rnd.choice(("userId", "sessionId", "itemInSession"))
            if rnd.random() < 0.3:
                del event[key]
            else:
                event[key] = rnd.choice(("", None, "abc", 1.5, "12x"))
        elif kind == "nested_value":
            event[rnd.choice(EVENT_VALUE_FIELDS)] = rnd.choice(([1, 2], {"value": 1}, []))
        elif kind == "bad_length":
            event["length"] = rnd.choice(("NaN", "Infinity", "-inf", "n/a", "abc"))
        elif kind == "number_for_text":
            _number_for_text(event, rnd)
        elif kind == "stray_quotes":
            key = rnd.choice([k for k in TEXT_FIELDS if isinstance(event.get(k), str)])
            event[key] = f'"{event[key]}"'
        elif kind == "empty_string":
            choices = [k for k in EMPTY_FIELDS if isinstance(event.get(k), str)]
            event[rnd.choice(choices) if choices else "song"] = ""
        return [(dump_event(event), fate)]


def _number_for_text(event: dict, rnd: random.Random) -> None:
    """A lossless coercion: a number where text is expected, or an integer written as text."""
    choices = ["sessionId", "itemInSession"]
    if event.get("userId"):
        choices += ["userId", "lastName", "location"]
    key = rnd.choice(choices)
    if key == "userId":
        event[key] = int(event[key])
    elif key in ("sessionId", "itemInSession"):
        event[key] = str(event[key])
    else:
        event[key] = rnd.randint(10, 99999)

