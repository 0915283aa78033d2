"""Measure a sparkify dataset: the statistics the generator's constants are derived from.

`python -m sparkify.generate.profile DIR` prints them as JSON for a directory
holding song_data/ and log_data/ (the real sample, or generated data). Plain
Python on purpose: the tests compare generated data with the real sample
through this module, independently of how the generator computes anything.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

from sparkify.normalize import repair_mojibake

QUANTILES = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


def _quantiles(values: list[float]) -> list[float]:
    """Quantiles at QUANTILES by linear interpolation, so an inverse CDF can be rebuilt."""
    if not values:
        return []
    ordered = sorted(values)
    out = []
    for q in QUANTILES:
        pos = q * (len(ordered) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(ordered) - 1)
        out.append(round(ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo), 3))
    return out


def _shares(counter: Counter, total: int | None = None) -> dict:
    total = total or sum(counter.values()) or 1
    return {str(k): round(v / total, 4) for k, v in counter.most_common()}


def read_events(log_dir: Path) -> list[dict]:
    """Every event object of every *.json file under log_dir (lines that do not parse are skipped)."""
    events = []
    for path in sorted(log_dir.rglob("*.json")):
        for line in path.read_bytes().split(b"\n"):
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and isinstance(event.get("ts"), int):
                events.append(event)
    return events


def read_songs(song_dir: Path) -> list[dict]:
    songs = []
    for path in sorted(song_dir.rglob("*.json")):
        try:
            song = json.loads(path.read_bytes())
        except ValueError:
            continue
        if isinstance(song, dict):
            songs.append(song)
    return songs


def _browser(agent: str) -> str:
    for family in ("iPhone", "iPad", "Firefox", "Trident", "Chrome", "Safari"):
        if family in agent:
            return family
    return "other"


def profile_events(events: list[dict]) -> dict:
    """Page mix, sessions, levels, time of day, users, songs played: the shape of the logs."""
    logged_in = [e for e in events if e.get("userId")]
    sessions: dict[object, list[dict]] = defaultdict(list)
    for e in events:
        sessions[e.get("sessionId")].append(e)
    for s in sessions.values():
        s.sort(key=lambda e: (e["ts"], e.get("itemInSession") or 0))

    def session_level(s: list[dict]) -> str:
        return s[0].get("level") or "?"

    user_sessions = [s for s in sessions.values() if any(e.get("userId") for e in s)]
    by_level: dict[str, list[int]] = defaultdict(list)
    for s in user_sessions:
        by_level[session_level(s)].append(len(s))
    anonymous = [s for s in sessions.values() if not any(e.get("userId") for e in s)]

    def day(e: dict) -> datetime:
        return datetime.fromtimestamp(e["ts"] / 1000, tz=timezone.utc)

    user_days: dict[tuple, set] = defaultdict(set)
    for e in logged_in:
        user_days[(e["userId"], day(e).date())].add(e.get("sessionId"))
    days = {day(e).date() for e in events}
    per_weekday: dict[int, list[int]] = defaultdict(list)
    per_day = Counter(day(e).date() for e in events)
    for d in days:
        per_weekday[d.weekday()].append(per_day[d])

    gaps_after_song, gaps_other = [], []
    for s in sessions.values():
        for a, b in zip(s, s[1:]):
            gap = (b["ts"] - a["ts"]) / 1000
            if a.get("page") == "NextSong" and isinstance(a.get("length"), (int, float)):
                gaps_after_song.append(gap == math.floor(a["length"]))
            else:
                gaps_other.append(gap)

    levels: dict[str, list[str]] = defaultdict(list)
    first_ts: dict[str, int] = {}
    users: dict[str, dict] = {}
    for e in sorted(logged_in, key=lambda e: e["ts"]):
        levels[e["userId"]].append(e.get("level"))
        first_ts.setdefault(e["userId"], e["ts"])
        users[e["userId"]] = e
    changes = Counter(sum(a != b for a, b in zip(v, v[1:])) for v in levels.values())
    agents = Counter(u.get("userAgent") for u in users.values())
    agent_list = [u.get("userAgent") or "" for u in users.values()]

    plays = [e for e in events if e.get("page") == "NextSong"]
    play_counts = Counter((e.get("song"), e.get("artist")) for e in plays)
    lengths = [e["length"] for e in plays if isinstance(e.get("length"), (int, float)) and e["length"] > 0]

    def mojibake(values: list) -> float:
        texts = [v for v in values if isinstance(v, str)]
        return round(sum(repair_mojibake(v) != v for v in texts) / max(len(texts), 1), 4)

    sessions_per_user_day = Counter(len(v) for v in user_days.values())
    return {
        "events": len(events),
        "page_share": _shares(Counter(e.get("page") for e in events)),
        "logged_in_page_share_by_level": {
            lvl: _shares(Counter(e.get("page") for e in logged_in if e.get("level") == lvl))
            for lvl in ("free", "paid")
        },
        "logged_out_share": round(1 - len(logged_in) / max(len(events), 1), 4),
        "logged_out_page_share": _shares(Counter(e.get("page") for e in events if not e.get("userId"))),
        "event_level_share": _shares(Counter(e.get("level") for e in events)),
        "sessions": len(sessions),
        "session_length_quantiles_by_level": {k: _quantiles(v) for k, v in sorted(by_level.items())},
        "session_length_mean_by_level": {k: round(statistics.mean(v), 2) for k, v in sorted(by_level.items())},
        "sessions_by_level": {k: len(v) for k, v in sorted(by_level.items())},
        "anonymous_session_share": round(len(anonymous) / max(len(sessions), 1), 4),
        "anonymous_session_lengths": _shares(Counter(len(s) for s in anonymous)),
        "sessions_starting_logged_out": round(
            sum(1 for s in user_sessions if not s[0].get("userId")) / max(len(user_sessions), 1), 4),
        "sessions_per_user_day": _shares(sessions_per_user_day),
        "active_user_share_per_day": round(len(user_days) / max(len(days), 1) / max(len(users), 1), 4),
        "active_days_per_user_quantiles": _quantiles(list(Counter(u for u, _ in user_days).values())),
        "hour_share": [round(c / max(len(events), 1), 4) for c in
                       (sum(1 for e in events if day(e).hour == h) for h in range(24))],
        "mean_events_by_weekday": {d: round(statistics.mean(v)) for d, v in sorted(per_weekday.items())},
        "ts_millis": _shares(Counter(e["ts"] % 1000 for e in events)),
        "gap_after_song_is_whole_song_share": round(sum(gaps_after_song) / max(len(gaps_after_song), 1), 4),
        "gap_other_quantiles": _quantiles(gaps_other),
        "users": len(users),
        "gender_share": _shares(Counter(u.get("gender") for u in users.values())),
        "first_level_share": _shares(Counter(v[0] for v in levels.values())),
        "level_changes_per_user": _shares(changes),
        "registration_days_before_first_event_quantiles": _quantiles(
            [(first_ts[u] - users[u]["registration"]) / 86_400_000 for u in users
             if isinstance(users[u].get("registration"), (int, float))]),
        "distinct_locations_per_user": round(len({u.get("location") for u in users.values()}) / max(len(users), 1), 3),
        "distinct_agents_per_user": round(len(agents) / max(len(users), 1), 3),
        "agent_quoted_share": round(sum(a.startswith('"') for a in agent_list) / max(len(agent_list), 1), 3),
        "agent_quoted_iff_comma": all(a.startswith('"') == ("," in a) for a in agent_list),
        "browser_share": _shares(Counter(_browser(a) for a in agent_list)),
        "plays": len(plays),
        "distinct_play_share": round(len(play_counts) / max(len(plays), 1), 4),
        "top_play_share": round(max(play_counts.values(), default=0) / max(len(plays), 1), 4),
        "play_length_log_mean_sd": [round(statistics.mean(map(math.log, lengths)), 4),
                                    round(statistics.stdev(map(math.log, lengths)), 4)] if len(lengths) > 1 else [],
        "mojibake_share": {"song": mojibake([e.get("song") for e in plays]),
                           "artist": mojibake([e.get("artist") for e in plays])},
        "non_ascii_share": {k: round(sum(1 for e in plays if isinstance(e.get(k), str) and not e[k].isascii())
                                     / max(len(plays), 1), 4) for k in ("song", "artist")},
    }


def profile_songs(songs: list[dict]) -> dict:
    durations = [s["duration"] for s in songs if isinstance(s.get("duration"), (int, float)) and s["duration"] > 0]
    years = [s["year"] for s in songs if isinstance(s.get("year"), int) and s["year"]]
    n = max(len(songs), 1)
    artists = {s.get("artist_id") for s in songs}
    return {
        "songs": len(songs),
        "artists_per_song": round(len(artists) / n, 3),
        "duration_log_mean_sd": [round(statistics.mean(map(math.log, durations)), 4),
                                 round(statistics.stdev(map(math.log, durations)), 4)] if len(durations) > 1 else [],
        "year_unknown_share": round(sum(1 for s in songs if s.get("year") == 0) / n, 3),
        "year_quantiles": _quantiles(years),
        "latitude_null_share": round(sum(1 for s in songs if s.get("artist_latitude") is None) / n, 3),
        "location_empty_share": round(sum(1 for s in songs if s.get("artist_location") == "") / n, 3),
        "located_without_coordinates_share": round(
            sum(1 for s in songs if s.get("artist_location") and s.get("artist_latitude") is None) / n, 3),
        "non_ascii_title_share": round(sum(1 for s in songs if not str(s.get("title", "")).isascii()) / n, 3),
    }


def profile(root: Path) -> dict:
    return {"songs": profile_songs(read_songs(root / "song_data")),
            "events": profile_events(read_events(root / "log_data"))}


if __name__ == "__main__":
    json.dump(profile(Path(sys.argv[1])), sys.stdout, indent=1)
    sys.stdout.write("\n")
