"""The query pack: right answers on the real sample, and the same answers on every target.

Expected values are computed here from the raw JSON files with plain Python,
re-implementing just enough of the spec: NextSong events with a userId,
deduplicated by (sessionId, itemInSession, userId, ts); UTC hour, ISO weekday
and date from ts; the level of each play; the user-agent rules of
docs/queries.md; the song match (title, artist, duration within 1 ms).
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
import sqlglot

from sparkify import report
from sparkify.queries import load_queries
from sparkify.targets import open_target
from tests.conftest import run_cli, run_json

NAMES = {
    "overview", "top_songs", "top_artists", "plays_by_hour", "plays_by_weekday", "plays_by_level",
    "daily_activity", "top_users", "top_locations", "user_agents", "level_changes", "sessions",
}
UTC = dt.timezone.utc


# ---------------------------------------------------------------- the raw files, read independently

def _fix(text: str | None) -> str | None:
    """Stored text as the spec defines it: mojibake undone, NFC, trimmed, one pair of quotes removed."""
    if text is None:
        return None
    for _ in range(3):
        try:
            repaired = text.encode("latin-1").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            break
        if repaired == text:
            break
        text = repaired
    text = unicodedata.normalize("NFC", text).strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    return text or None


def _key(text: str | None) -> str | None:
    fixed = _fix(text)
    return fixed.casefold() if fixed else None


def _lines(root: Path):
    for path in sorted(root.rglob("*.json")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                yield json.loads(line)


@dataclass(frozen=True)
class Play:
    ts: int
    user_id: int
    session_id: int
    item: int
    level: str | None
    location: str | None
    agent: str | None
    song: str | None
    artist: str | None
    length: float | None

    @property
    def when(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.ts // 1000, UTC) + dt.timedelta(milliseconds=self.ts % 1000)


@dataclass
class Raw:
    plays: list[Play]
    users: dict[int, dict]  # user_id -> the latest event
    songs: dict[str, dict]  # song_id -> record
    artist_names: dict[str, str]  # artist_id -> most frequent name


@pytest.fixture(scope="session")
def raw(sample: Path) -> Raw:
    plays: dict[tuple, Play] = {}
    latest: dict[int, tuple] = {}
    for e in _lines(sample / "log_data"):
        if str(e.get("userId") or "").strip() == "":
            continue
        uid = int(e["userId"])
        order = (e["ts"], e.get("sessionId") or 0, e.get("itemInSession") or 0)
        if uid not in latest or order > latest[uid][0]:
            latest[uid] = (order, e)
        if e.get("page") != "NextSong":
            continue
        key = (int(e["sessionId"]), int(e["itemInSession"]), uid, e["ts"])
        plays.setdefault(key, Play(
            e["ts"], uid, int(e["sessionId"]), int(e["itemInSession"]), _fix(e.get("level")),
            _fix(e.get("location")), _fix(e.get("userAgent")), e.get("song"), e.get("artist"), e.get("length"),
        ))
    songs: dict[str, dict] = {}
    names: dict[str, Counter] = defaultdict(Counter)
    for s in _lines(sample / "song_data"):
        songs[s["song_id"]] = s
        names[s["artist_id"]][_fix(s["artist_name"])] += 1
    artist_names = {a: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for a, c in names.items()}
    return Raw(list(plays.values()), {u: e for u, (_, e) in latest.items()}, songs, artist_names)


def _match(raw: Raw) -> dict[Play, str]:
    """play -> song_id for the plays that match a song (smallest song_id when several do)."""
    catalogue = [(_key(s["title"]), _key(s["artist_name"]), s["duration"], sid) for sid, s in raw.songs.items()]
    out = {}
    for p in raw.plays:
        if p.song is None or p.length is None:
            continue
        title, artist = _key(p.song), _key(p.artist)
        hits = sorted(sid for t, a, d, sid in catalogue if (t, a) == (title, artist) and abs(d - p.length) < 0.001)
        if hits:
            out[p] = hits[0]
    return out


def browser(agent: str | None) -> str:
    """The browser rules of docs/queries.md, first match wins."""
    rules = [
        ("Edge", ("Edge/", "Edg/")), ("Opera", ("OPR/", "Opera")), ("Chromium", ("Chromium/",)),
        ("Chrome", ("Chrome/", "CriOS/")), ("Firefox", ("Firefox/", "FxiOS/")),
        ("Internet Explorer", ("MSIE ", "Trident/")), ("Safari", ("Safari/",)),
    ]
    return _first(agent, rules)


def system(agent: str | None) -> str:
    """The operating-system rules of docs/queries.md, first match wins."""
    rules = [
        ("iOS", ("iPhone", "iPad", "iPod")), ("Android", ("Android",)), ("Windows", ("Windows",)),
        ("macOS", ("Macintosh", "Mac OS X")), ("Chrome OS", ("CrOS",)), ("Linux", ("Linux", "X11")),
    ]
    return _first(agent, rules)


def _first(agent: str | None, rules: list[tuple[str, tuple[str, ...]]]) -> str:
    if agent is None:
        return "Unknown"
    return next((name for name, needles in rules if any(n in agent for n in needles)), "Other")


def _ranked(counts: dict, limit: int | None = None) -> list:
    """Keys by count descending, then key ascending (the queries' tie-breaker)."""
    keys = sorted(counts, key=lambda k: (-counts[k], k))
    return keys[:limit] if limit else keys


def _group(plays, key) -> dict:
    groups = defaultdict(list)
    for p in plays:
        groups[key(p)].append(p)
    return groups


def _listeners(plays) -> int:
    return len({p.user_id for p in plays})


def _sessions(plays) -> int:
    return len({(p.user_id, p.session_id) for p in plays})


@pytest.fixture(scope="session")
def expected(raw: Raw) -> dict[str, list[tuple]]:
    """Every query's rows, from the raw files."""
    plays, matched = raw.plays, _match(raw)
    out: dict[str, list[tuple]] = {}
    out["overview"] = [(
        len(plays), _listeners(plays), _sessions(plays), len(raw.users), len(raw.songs),
        len({s["artist_id"] for s in raw.songs.values()}), len(matched),
        min(p.when for p in plays), max(p.when for p in plays),
    )]
    by_song = _group(matched, lambda p: matched[p])
    out["top_songs"] = [
        (sid, _fix(raw.songs[sid]["title"]), raw.artist_names[raw.songs[sid]["artist_id"]],
         len(by_song[sid]), _listeners(by_song[sid]))
        for sid in _ranked({k: len(v) for k, v in by_song.items()}, 10)
    ]
    by_artist = _group(matched, lambda p: raw.songs[matched[p]]["artist_id"])
    out["top_artists"] = [
        (aid, raw.artist_names[aid], len(by_artist[aid]), len({matched[p] for p in by_artist[aid]}),
         _listeners(by_artist[aid]))
        for aid in _ranked({k: len(v) for k, v in by_artist.items()}, 10)
    ]
    by_hour = _group(plays, lambda p: p.when.hour)
    out["plays_by_hour"] = [(h, len(g), _listeners(g)) for h, g in sorted(by_hour.items())]
    by_weekday = _group(plays, lambda p: p.when.isoweekday())
    out["plays_by_weekday"] = [
        (d, dt.date(2024, 1, d).strftime("%A"), len(g), _listeners(g)) for d, g in sorted(by_weekday.items())
    ]
    by_level = _group(plays, lambda p: p.level or "unknown")
    out["plays_by_level"] = [(lv, len(g), _listeners(g), _sessions(g)) for lv, g in sorted(by_level.items())]
    by_day = _group(plays, lambda p: p.when.date())
    out["daily_activity"] = [(d, len(g), _listeners(g), _sessions(g)) for d, g in sorted(by_day.items())]
    by_user = _group(plays, lambda p: p.user_id)
    out["top_users"] = [
        (u, _fix(raw.users[u].get("firstName")), _fix(raw.users[u].get("lastName")), _fix(raw.users[u]["level"]),
         len(by_user[u]), len({p.session_id for p in by_user[u]}),
         min(p.when for p in by_user[u]), max(p.when for p in by_user[u]))
        for u in _ranked({k: len(v) for k, v in by_user.items()}, 10)
    ]
    by_location = _group([p for p in plays if p.location], lambda p: p.location)
    out["top_locations"] = [
        (loc, len(by_location[loc]), _listeners(by_location[loc]))
        for loc in _ranked({k: len(v) for k, v in by_location.items()}, 10)
    ]
    agents = []
    for dimension, parse in (("browser", browser), ("os", system)):
        groups = _group(plays, lambda p: parse(p.agent))
        agents += [(dimension, n, len(groups[n]), _listeners(groups[n]))
                   for n in _ranked({k: len(v) for k, v in groups.items()})]
    out["user_agents"] = agents
    changes = []
    for u, ps in by_user.items():
        ps = sorted((p for p in ps if p.level), key=lambda p: (p.ts, p.session_id, p.item))
        for before, after in zip(ps, ps[1:]):
            if before.level != after.level:
                changes.append((u, _fix(raw.users[u].get("firstName")), _fix(raw.users[u].get("lastName")),
                                before.level, after.level, before.when, after.when))
    out["level_changes"] = sorted(changes, key=lambda c: (c[6], c[0]))
    out["sessions"] = _session_rows(Counter((p.user_id, p.session_id) for p in plays))
    return out


BUCKETS = [("1", 1, 1), ("2-5", 2, 5), ("6-10", 6, 10), ("11-25", 11, 25), ("26-50", 26, 50),
           ("51-100", 51, 100), ("101+", 101, 10**9)]


def _session_rows(per_session: Counter) -> list[tuple]:
    def row(label, sizes):
        return (label, len(sizes), sum(sizes), min(sizes), max(sizes), sum(sizes) / len(sizes))

    rows = []
    for label, low, high in BUCKETS:
        sizes = [n for n in per_session.values() if low <= n <= high]
        if sizes:
            rows.append(row(label, sizes))
    return rows + [row("all", list(per_session.values()))]


# ---------------------------------------------------------------- comparing rows across drivers

def _plain(value):
    """One representation per value whatever the driver returns (Decimal, time zone, float noise)."""
    if isinstance(value, Decimal):
        value = int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, float):
        return round(value, 9)
    return value


def plain(rows) -> list[tuple]:
    return [tuple(_plain(v) for v in row) for row in rows]


def run_all(url: str) -> dict[str, tuple[list[str], list[tuple]]]:
    target = open_target(url)
    try:
        out = {}
        for name, (_, sql) in load_queries().items():
            columns, rows = target.query(sql)
            out[name] = (columns, plain(rows))
        return out
    finally:
        target.close()


# ---------------------------------------------------------------- the tests

def test_the_pack_holds_every_question_with_a_description():
    queries = load_queries()
    assert set(queries) == NAMES
    for name, (description, sql) in queries.items():
        assert len(description) > 20, name
        assert sql.startswith("--") and "\n" not in description


@pytest.mark.parametrize("name", sorted(NAMES))
def test_sql_stays_in_the_portable_subset(name: str):
    sql = load_queries()[name][1]
    upper = sql.upper()
    for construct in ("FILTER (", "::", "QUALIFY", "ARG_MAX", "ARG_MIN", "EPOCH_MS", "STRFTIME", "REGEXP", "ILIKE",
                      "DATE_PART", "EXTRACT(", "GENERATE_SERIES", " // "):
        assert construct not in upper, f"{name} uses {construct}"
    for dialect in ("duckdb", "postgres", "redshift"):
        assert len(sqlglot.parse(sql, read=dialect)) == 1
    if name != "overview":  # one row: nothing to order
        assert "ORDER BY" in upper


def test_the_raw_reading_agrees_with_the_figures_stated_for_the_sample(raw: Raw):
    """Guards the independent computation itself: 6,820 songplays, 97 users, 71 songs, 69 artists."""
    assert len(raw.plays) == 6820
    assert len(raw.users) == 97
    assert len(raw.songs) == 71
    assert len({s["artist_id"] for s in raw.songs.values()}) == 69


@pytest.mark.parametrize("name", sorted(NAMES))
def test_query_gives_the_answer_computed_from_the_raw_files(name: str, expected: dict, duckdb_results: dict):
    want = plain(expected[name])
    columns, got = duckdb_results[name]
    assert got, f"{name} returned no rows"
    assert len(columns) == len(want[0])
    assert got == want


def test_user_agent_rules_cover_the_sample_without_other(raw: Raw):
    """Every agent in the sample is recognised: no play falls in 'Other' for browser or system."""
    assert {browser(p.agent) for p in raw.plays} <= {"Chrome", "Chromium", "Firefox", "Safari", "Internet Explorer"}
    assert {system(p.agent) for p in raw.plays} <= {"Windows", "macOS", "Linux", "iOS"}


def _report_page(url: str) -> str:
    target = open_target(url)
    try:
        return report.render(report.collect(target), "the target", dt.datetime(2026, 1, 1, tzinfo=UTC))
    finally:
        target.close()


def test_same_answer_on_every_target(target_url: str, sample: Path, duckdb_star: str, duckdb_results: dict):
    run_json("--songs", sample / "song_data", "--logs", sample / "log_data", "--target", target_url)
    got = run_all(target_url)
    different = [name for name in duckdb_results if got[name] != duckdb_results[name]]
    assert not different, {name: (got[name], duckdb_results[name]) for name in different}
    assert _report_page(target_url) == _report_page(duckdb_star)


def test_query_list_prints_each_name_with_its_description():
    code, out = run_cli("query", "--list")
    assert code == 0
    flat = " ".join(out.split())  # the console may wrap long descriptions
    for name, (description, _) in load_queries().items():
        assert f"{name} {description}" in flat


def test_query_by_name_in_json_and_csv(duckdb_star: str, expected: dict):
    want = expected["top_locations"]
    code, out = run_cli("query", "top_locations", "--target", duckdb_star, "--format", "json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["location"], r["plays"], r["listeners"]) for r in rows] == want
    code, out = run_cli("query", "plays_by_level", "--target", duckdb_star, "--format", "csv")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "level,plays,listeners,sessions"
    assert lines[1:] == [",".join(str(v) for v in row) for row in expected["plays_by_level"]]
