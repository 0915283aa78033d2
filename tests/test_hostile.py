"""Hostile input: damaged records and files never crash a run and never touch the good records.

Hypothesis damages real records of the sample the ways data goes bad:
truncation, flipped bytes, wrong types, missing and extra fields, NaN and
infinity, huge numbers, deep nesting, control characters, non-UTF-8, blank
lines, empty files. Each damage carries what SPEC.md makes of it: the record
is rejected, or it is valid, or (where the spec is silent) it is the
engine's call. A run over the damaged input must succeed, balance its
accounting, reject exactly what it must (and nothing it must not), and build
the same star as a run over the same input with the rejected lines taken out.

Beside the properties: one 100 MB line, tens of thousands of tiny files
(peak memory of the run measured with wait4), unreadable files and folders,
symlink loops, and NUL characters on every target.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TARGET_KINDS, balanced, run_cli, run_json, star_rows
from tests.killharness import child_env, sparkify

REJECT, VALID, BLANK = "reject", "valid", "blank"
"""Fates of a line; None: the spec leaves it to the engine."""

BASE_DAY = "2018/11/2018-11-21-events.json"
BASE_LINES = slice(469, 500)  # 31 events around the sample's one song play that matches a song
MATCHED_SONG = "A/A/C/TRAACCG128F92E8A55.json"
BASE_SONGS = 8
MEMORY_BUDGET_KB = 1 << 20
"""1 GiB: the budget the project sets itself (DuckDB's limit is 600 MB so that a large run stays under 1 GB)."""

EVENT_TEXT = ("artist", "song", "firstName", "lastName", "gender", "level", "location", "userAgent", "page")
EVENT_IDS = ("userId", "sessionId", "itemInSession")
EVENT_OPTIONAL = ("artist", "song", "length", "level", "firstName", "lastName", "gender", "location",
                  "userAgent", "auth", "method", "registration", "status", "page")
SONG_REQUIRED = ("song_id", "title", "artist_id", "artist_name", "duration")
SONG_TEXT = ("song_id", "title", "artist_id", "artist_name", "artist_location")
SONG_OPTIONAL = ("artist_location", "artist_latitude", "artist_longitude", "year", "num_songs")
NON_FINITE = ("NaN", "Infinity", "-Infinity", "1e400", "-1e400")

SAFE_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=12)
"""Any text JSON can carry (lone surrogates cannot be encoded)."""
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | SAFE_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SAFE_TEXT, inner, max_size=3),
    max_leaves=8,
)
NOT_INTEGERS = st.one_of(
    st.sampled_from(["abc", "12:00", "1.5", "0x1F", 1.5, -0.25, True, False, [], [1], {}, {"a": 1}]),
    st.integers(min_value=2**63, max_value=10**40),
    st.integers(min_value=-(10**40), max_value=-(2**63) - 1),
)


@dataclass(frozen=True)
class Line:
    data: bytes
    fate: str | None
    family: str = ""


@dataclass(frozen=True)
class SongFile:
    name: str
    line: Line


@dataclass(frozen=True)
class Hostile:
    events: list[Line]
    songs: list[SongFile]


@dataclass(frozen=True)
class Base:
    events: list[bytes]
    songs: list[tuple[str, bytes]]


def base_input(sample: Path) -> Base:
    events = (sample / "log_data" / BASE_DAY).read_bytes().splitlines()[BASE_LINES]
    files = sorted((sample / "song_data").rglob("*.json"))[: BASE_SONGS - 1] + [sample / "song_data" / MATCHED_SONG]
    return Base(events, [(p.name, p.read_bytes().strip()) for p in files])


def dump(record: dict, **raw: str) -> bytes:
    """The record as one JSON line; `raw` puts tokens JSON cannot express (NaN, 1e400, [[[...]]]) in fields."""
    text = json.dumps({**record, **{k: f"@@{k}@@" for k in raw}}, separators=(",", ":"))
    for key, token in raw.items():
        text = text.replace(f'"@@{key}@@"', token)
    return text.encode()


def nested(draw, max_depth: int) -> str:
    depth = draw(st.integers(1, max_depth))
    if draw(st.booleans()):
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


# -- damage that applies to any JSON line ------------------------------------------

def truncated(draw, line: bytes) -> Line:
    return Line(line[: draw(st.integers(1, len(line) - 1))], REJECT)


def high_bit(draw, line: bytes) -> Line:
    """One ASCII byte (between ASCII bytes) replaced by a byte >= 0x80: never valid UTF-8."""
    spots = [i for i in range(len(line)) if all(b < 0x80 for b in line[max(i - 1, 0): i + 2])]
    i = draw(st.sampled_from(spots))
    return Line(line[:i] + bytes([draw(st.integers(0x80, 0xFF))]) + line[i + 1:], REJECT)


def not_an_object(draw, line: bytes) -> Line:
    return Line(draw(st.sampled_from([b"[]", b"[1, 2]", b'"text"', b"42", b"true", b"null", b"1.5"])), REJECT)


def garbage(draw, line: bytes) -> Line:
    data = draw(st.binary(min_size=1, max_size=200)).replace(b"\n", b"_").replace(b"\r", b"_")
    if not data.strip():
        data += b"?"
    return Line(data, None if data.lstrip().startswith(b"{") else REJECT)


def raw_control(draw, record: dict, fields: tuple[str, ...]) -> Line:
    """An unescaped control character inside a string: not JSON."""
    field = draw(st.sampled_from(fields))
    char = draw(st.sampled_from([c for c in range(32) if c not in (10, 13)]))
    record[field] = "@@CTRL@@" + str(record.get(field) or "x")
    return Line(dump(record).replace(b"@@CTRL@@", bytes([char])), REJECT)


def stray_control(draw, line: bytes) -> Line:
    """A raw control byte anywhere in the line, before or after the object too: never JSON. U+0001
    most often, since the line reader splits at it; tab is left out (JSON whitespace between tokens)."""
    char = draw(st.sampled_from([1, 1, 1, *(c for c in range(1, 32) if c not in (9, 10, 13))]))
    i = draw(st.integers(0, len(line)))
    return Line(line[:i] + bytes([char]) + line[i:], REJECT)


def escaped_control(draw, record: dict, fields: tuple[str, ...]) -> Line:
    """An escaped control character: valid text, except U+0000, which rejects the record (README, Decisions)."""
    field = draw(st.sampled_from(fields))
    char = draw(st.integers(0, 31))
    record[field] = str(record.get(field) or "x") + chr(char)
    return Line(dump(record), REJECT if char == 0 else VALID)


def extra_fields(draw, record: dict) -> Line:
    for _ in range(draw(st.integers(1, 3))):
        record["x_" + draw(st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=8))] = \
            draw(JSON_VALUES)
    return Line(dump(record), VALID)


def deep_extra(draw, record: dict) -> Line:
    return Line(dump(record, x_deep=nested(draw, 100_000)), VALID)


# -- damage to events ----------------------------------------------------------------

def _bad_ts(draw, record: dict) -> Line:
    if draw(st.booleans()):
        return Line(dump(record, ts=draw(st.sampled_from([*NON_FINITE, "null"]))), REJECT)
    record["ts"] = draw(NOT_INTEGERS | st.just(""))
    return Line(dump(record), REJECT)


def _bad_id(draw, record: dict) -> Line:
    play = record.get("page") == "NextSong"
    record[draw(st.sampled_from(EVENT_IDS))] = draw(NOT_INTEGERS)
    return Line(dump(record), REJECT if play else None)


def _lost_field(draw, record: dict) -> Line:
    """A field missing or null: fatal for ts, and for a song play's ids."""
    play = record.get("page") == "NextSong"
    field = draw(st.sampled_from(("ts", *EVENT_IDS, *EVENT_OPTIONAL)))
    if draw(st.booleans()):
        record.pop(field, None)
    else:
        record[field] = None
    return Line(dump(record), REJECT if field == "ts" or (field in EVENT_IDS and play) else VALID)


def _bracket_text(draw, record: dict) -> Line:
    """Text that merely looks like JSON."""
    field = draw(st.sampled_from(EVENT_TEXT))
    record[field] = draw(st.sampled_from(["[", "{", "[Live]", "{x}"])) + str(record.get(field) or "")
    return Line(dump(record), VALID)


def _number_as_text(draw, record: dict, fields: tuple[str, ...]) -> Line:
    record[draw(st.sampled_from(fields))] = draw(
        st.integers(-(10**12), 10**12) | st.floats(allow_nan=False, allow_infinity=False))
    return Line(dump(record), VALID)


def _huge_length(draw, record: dict) -> Line:
    record["length"] = draw(st.floats(1e15, 1e308))
    return Line(dump(record), VALID)


def _huge_ignored(draw, record: dict) -> Line:
    record["status"] = draw(st.integers(2**63, 10**400))
    return Line(dump(record), VALID)


def _bool_as_text(draw, record: dict) -> Line:
    record[draw(st.sampled_from(EVENT_TEXT))] = draw(st.booleans())
    return Line(dump(record), None)


EVENT_DAMAGE = {
    "truncated": lambda draw, record, line: truncated(draw, line),
    "high_bit": lambda draw, record, line: high_bit(draw, line),
    "not_an_object": lambda draw, record, line: not_an_object(draw, line),
    "garbage": lambda draw, record, line: garbage(draw, line),
    "raw_control": lambda draw, record, line: raw_control(draw, record, EVENT_TEXT),
    "stray_control": lambda draw, record, line: stray_control(draw, line),
    "escaped_control": lambda draw, record, line: escaped_control(draw, record, EVENT_TEXT),
    "extra_fields": lambda draw, record, line: extra_fields(draw, record),
    "deep_extra": lambda draw, record, line: deep_extra(draw, record),
    "bad_ts": lambda draw, record, line: _bad_ts(draw, record),
    "bad_id": lambda draw, record, line: _bad_id(draw, record),
    "lost_field": lambda draw, record, line: _lost_field(draw, record),
    "nested_text": lambda draw, record, line: Line(
        dump(record, **{draw(st.sampled_from(EVENT_TEXT)): nested(draw, 1000)}), REJECT),
    "bracket_text": lambda draw, record, line: _bracket_text(draw, record),
    "non_finite_length": lambda draw, record, line: Line(
        dump(record, length=draw(st.sampled_from(NON_FINITE))), REJECT),
    "non_finite_ignored": lambda draw, record, line: Line(dump(record, **{
        draw(st.sampled_from(("registration", "status"))): draw(st.sampled_from(NON_FINITE))}), None),
    "huge_ignored": lambda draw, record, line: _huge_ignored(draw, record),
    "huge_length": lambda draw, record, line: _huge_length(draw, record),
    "number_as_text": lambda draw, record, line: _number_as_text(draw, record, EVENT_TEXT),
    "bool_as_text": lambda draw, record, line: _bool_as_text(draw, record),
}


# -- damage to songs -----------------------------------------------------------------

def _song_lost_field(draw, record: dict) -> Line:
    field = draw(st.sampled_from((*SONG_REQUIRED, *SONG_OPTIONAL)))
    record.pop(field, None)
    return Line(dump(record), REJECT if field in SONG_REQUIRED else VALID)


def _empty_required(draw, record: dict) -> Line:
    record[draw(st.sampled_from(SONG_REQUIRED))] = draw(st.sampled_from([None, "", "   "]))
    return Line(dump(record), REJECT)


def _bad_duration(draw, record: dict) -> Line:
    if draw(st.booleans()):
        return Line(dump(record, duration=draw(st.sampled_from(NON_FINITE))), REJECT)
    record["duration"] = draw(st.sampled_from(["abc", "12:30", True, [], {}, [1.5]]))
    return Line(dump(record), REJECT)


def _duration_as_text(draw, record: dict) -> Line:
    record["duration"] = str(record["duration"])
    return Line(dump(record), VALID)


def _bad_year(draw, record: dict) -> Line:
    """Rejected or NULL: the spec does not say."""
    record["year"] = draw(st.sampled_from(["abc", 1.5, [], {}, True]))
    return Line(dump(record), None)


SONG_DAMAGE = {
    "truncated": lambda draw, record, line: truncated(draw, line),
    "high_bit": lambda draw, record, line: high_bit(draw, line),
    "not_an_object": lambda draw, record, line: not_an_object(draw, line),
    "raw_control": lambda draw, record, line: raw_control(draw, record, SONG_TEXT),
    "stray_control": lambda draw, record, line: stray_control(draw, line),
    "extra_fields": lambda draw, record, line: extra_fields(draw, record),
    "deep_extra": lambda draw, record, line: deep_extra(draw, record),
    "lost_field": lambda draw, record, line: _song_lost_field(draw, record),
    "empty_required": lambda draw, record, line: _empty_required(draw, record),
    "bad_duration": lambda draw, record, line: _bad_duration(draw, record),
    "duration_as_text": lambda draw, record, line: _duration_as_text(draw, record),
    "nested_text": lambda draw, record, line: Line(
        dump(record, **{draw(st.sampled_from(SONG_TEXT)): nested(draw, 1000)}), REJECT),
    "number_as_text": lambda draw, record, line: _number_as_text(draw, record, SONG_TEXT),
    "bad_year": lambda draw, record, line: _bad_year(draw, record),
}


def damage(draw, families: dict, line: bytes) -> Line:
    family = draw(st.sampled_from(sorted(families)))
    return replace(families[family](draw, json.loads(line), line), family=family)


@st.composite
def hostile_inputs(draw, base: Base) -> Hostile:
    """The base records with damage: each damaged copy replaces its original or joins the others."""
    events: list[tuple[int | None, Line]] = [(i, Line(line, VALID)) for i, line in enumerate(base.events)]
    for _ in range(draw(st.integers(1, 8))):
        origin = draw(st.integers(0, len(base.events) - 1))
        damaged = damage(draw, EVENT_DAMAGE, base.events[origin])
        at = next((n for n, (o, _) in enumerate(events) if o == origin), None)
        if at is not None and draw(st.booleans()):
            events[at] = (None, damaged)
        else:
            events.insert(draw(st.integers(0, len(events))), (None, damaged))
    for _ in range(draw(st.integers(0, 3))):
        events.insert(draw(st.integers(0, len(events))),
                      (None, Line(draw(st.text(" \t", min_size=1, max_size=4)).encode(), BLANK)))
    songs = [SongFile(name, Line(text, VALID)) for name, text in base.songs]
    for n in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(base.songs) - 1))
        damaged = damage(draw, SONG_DAMAGE, base.songs[i][1])
        if draw(st.booleans()):
            songs[i] = SongFile(songs[i].name, damaged)
        else:
            songs.append(SongFile(f"TRHOSTILE{n:04d}.json", damaged))
    return Hostile([line for _, line in events], songs)


# -- the property --------------------------------------------------------------------

def write_input(root: Path, events: list[bytes], songs: list[tuple[str, bytes]]) -> tuple[Path, Path]:
    (root / "logs").mkdir(parents=True)
    (root / "songs").mkdir()
    (root / "logs" / "day-events.json").write_bytes(b"\n".join(events) + b"\n")
    (root / "logs" / "empty-events.json").write_bytes(b"")
    for name, data in songs:
        (root / "songs" / name).write_bytes(data)
    return root / "songs", root / "logs"


def rejected_lines(target: Path) -> dict[tuple[str, int], str]:
    con = duckdb.connect(str(target), read_only=True)
    try:
        rows = con.execute("SELECT source_file, line, raw FROM rejects").fetchall()
    finally:
        con.close()
    return {(os.path.basename(path), line): raw for path, line, raw in rows}


def check_hostile(hostile: Hostile, root: Path, tally: Counter | None = None) -> None:
    songs, logs = write_input(root / "damaged", [e.data for e in hostile.events],
                              [(s.name, s.line.data) for s in hostile.songs])
    target = root / "damaged.duckdb"
    summary = run_json("--songs", songs, "--logs", logs, "--target", target)
    assert balanced(summary), summary["accounting"]
    rejected = rejected_lines(target)
    lines = {("day-events.json", n): e for n, e in enumerate(hostile.events, start=1)}
    lines |= {(s.name, 1): s.line for s in hostile.songs}
    for where, line in lines.items():
        if line.fate == REJECT:
            assert where in rejected, f"{where} should be rejected: {line.data[:300]!r}"
        elif line.fate in (VALID, BLANK):
            assert where not in rejected, f"{where} wrongly rejected ({rejected[where][:200]!r})"
        if where in rejected and len(line.data) < 60_000:
            text = line.data.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")
            assert rejected[where] == text, f"{where}: the raw text of the reject differs"
    events = summary["accounting"]["events"]
    assert events["read"] == sum(1 for e in hostile.events if e.fate != BLANK)
    assert events["rejected"] == sum(1 for where in rejected if where[0] == "day-events.json")
    assert summary["accounting"]["songs"]["rejected"] == len(rejected) - events["rejected"]

    clean_songs, clean_logs = write_input(
        root / "clean",
        [e.data for n, e in enumerate(hostile.events, start=1) if ("day-events.json", n) not in rejected],
        [(s.name, s.line.data) for s in hostile.songs if (s.name, 1) not in rejected],
    )
    clean = run_json("--songs", clean_songs, "--logs", clean_logs, "--target", root / "clean.duckdb")
    assert clean["accounting"]["events"]["rejected"] == clean["accounting"]["songs"]["rejected"] == 0
    assert star_rows(str(target)) == star_rows(str(root / "clean.duckdb"))
    if tally is not None:
        tally["examples"] += 1
        damaged = [e for e in hostile.events if e.family] + [s.line for s in hostile.songs if s.line.family]
        tally.update(f"{'song' if any(d is s.line for s in hostile.songs) else 'event'} {d.family}" for d in damaged)
        tally.update(f"fate {d.fate or 'engine'}" for d in damaged)


HOSTILE_SETTINGS = dict(deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def base(sample: Path) -> Base:
    return base_input(sample)


@settings(max_examples=10, derandomize=True, **HOSTILE_SETTINGS)
@given(data=st.data())
def test_damaged_records_are_rejected_without_touching_the_good_ones(data, base, tmp_path):
    check_hostile(data.draw(hostile_inputs(base)), tmp_path / uuid.uuid4().hex)


@pytest.fixture(scope="module")
def tally():
    """What the slow property went through, written to RELIABILITY.md when the module ends."""
    from tests.killharness import stamp, write_section

    counts: Counter = Counter()
    yield counts
    if counts:
        families = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if " " in k and not k.startswith("fate"))
        fates = ", ".join(f"{k[5:]} {v}" for k, v in sorted(counts.items()) if k.startswith("fate"))
        write_section("hostile-properties", (
            f"{counts['examples']} passing examples ({stamp()}); damaged lines by expected fate: {fates}.\n\n"
            f"Damage applied: {families}."))


@pytest.mark.slow
@settings(max_examples=400, **HOSTILE_SETTINGS)
@given(data=st.data())
def test_damaged_records_many_examples(data, base, tally, tmp_path):
    check_hostile(data.draw(hostile_inputs(base)), tmp_path / uuid.uuid4().hex, tally)


# -- files the properties do not reach ------------------------------------------------

def _events_of_day(sample: Path, day: str = BASE_DAY) -> list[bytes]:
    return (sample / "log_data" / day).read_bytes().splitlines()


def _songs_dir(base: Base, root: Path) -> Path:
    songs = root / "songs"
    songs.mkdir(parents=True)
    for name, text in base.songs:
        (songs / name).write_bytes(text)
    return songs


def _one_run(songs: Path, logs: Path, target: Path, workdir: Path, **kw):
    return sparkify("run", "--songs", songs, "--logs", logs, "--target", target, "--json",
                    workdir=workdir, env=child_env(workdir / "tmp"), **kw)


def huge_line(sample: Path, base: Base, root: Path, megabytes: int) -> tuple[dict, int]:
    """One valid event padded to `megabytes` among good ones: (summary, peak RSS in KB), the star checked."""
    good = _events_of_day(sample)
    padded = json.loads(good[0])
    padded["x_pad"] = "x" * (megabytes << 20)
    logs = root / "logs"
    logs.mkdir(parents=True)
    (logs / "day-events.json").write_bytes(b"\n".join([*good[:5], json.dumps(padded).encode(), *good[5:]]) + b"\n")
    songs = _songs_dir(base, root)
    result = _one_run(songs, logs, root / "t.duckdb", root)
    assert result.code == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert balanced(summary)
    assert summary["accounting"]["events"]["read"] == len(good) + 1
    rejected = rejected_lines(root / "t.duckdb")
    clean_logs = root / "clean"
    clean_logs.mkdir()
    kept = good if ("day-events.json", 6) in rejected else [*good[:5], good[0], *good[5:]]
    (clean_logs / "day-events.json").write_bytes(b"\n".join(kept) + b"\n")
    run_json("--songs", songs, "--logs", clean_logs, "--target", root / "clean.duckdb")
    assert star_rows(str(root / "t.duckdb")) == star_rows(str(root / "clean.duckdb"))
    return summary, result.peak_rss_kb


def test_a_100_mb_line_neither_crashes_nor_spills_into_the_good_lines(sample, base, tmp_path):
    _, peak = huge_line(sample, base, tmp_path, 100)
    assert peak < MEMORY_BUDGET_KB, f"peak RSS {peak // 1024} MB"


@pytest.mark.parametrize("with_a_bad_neighbour", [False, True])
def test_a_long_valid_line_meets_the_same_fate_whatever_its_neighbours(sample, tmp_path, with_a_bad_neighbour):
    """10 MB: read whole by the fast reader; the exact (line by line) reader must not judge it differently."""
    good = _events_of_day(sample)
    padded = json.loads(good[0])
    padded["x_pad"] = "x" * (10 << 20)
    lines = [*good[:3], json.dumps(padded).encode(), *good[3:]]
    if with_a_bad_neighbour:
        lines.append(b'{"ts": "not a time"}')
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "day-events.json").write_bytes(b"\n".join(lines) + b"\n")
    summary = run_json("--songs", sample / "song_data", "--logs", tmp_path / "logs", "--target", tmp_path / "t.duckdb")
    assert summary["accounting"]["events"]["rejected"] == int(with_a_bad_neighbour)
    assert summary["accounting"]["events"]["read"] == len(lines)


def tiny_files(sample: Path, base: Base, root: Path, count: int) -> int:
    """`count` one-event files (every 100th empty) in folders of 1,000; peak RSS in KB, the star checked."""
    events = [line for day in sorted((sample / "log_data").rglob("*.json")) for line in day.read_bytes().splitlines()]
    used = []
    for i in range(count):
        folder = root / "logs" / f"{i // 1000:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        line = b"" if i % 100 == 99 else events[i % len(events)]
        (folder / f"{i:06d}.json").write_bytes(line + b"\n" if line else b"")
        used += [line] if line else []
    songs = _songs_dir(base, root)
    result = _one_run(songs, root / "logs", root / "t.duckdb", root)
    assert result.code == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert balanced(summary) and summary["accounting"]["events"]["read"] == len(used)
    assert summary["files"]["logs"]["new"] == count
    (root / "one").mkdir()
    (root / "one" / "all-events.json").write_bytes(b"\n".join(used) + b"\n")
    run_json("--songs", songs, "--logs", root / "one", "--target", root / "one.duckdb")
    assert star_rows(str(root / "t.duckdb")) == star_rows(str(root / "one.duckdb"))
    return result.peak_rss_kb


def test_thousands_of_tiny_files(sample, base, tmp_path):
    assert tiny_files(sample, base, tmp_path, 2_000) < MEMORY_BUDGET_KB


@pytest.mark.slow
def test_tens_of_thousands_of_tiny_files(sample, base, tmp_path):
    from tests.killharness import stamp, write_section

    peak = tiny_files(sample, base, tmp_path, 30_000)
    write_section("hostile-figures", f"30,000 one-event log files (every 100th empty) in 30 folders: accounting "
                                     f"balanced, star identical to one file holding the same events; peak RSS "
                                     f"{peak // 1024} MB ({stamp()}).")
    assert peak < MEMORY_BUDGET_KB


def test_empty_lines_before_a_non_utf8_line_are_not_records(sample, tmp_path):
    good = _events_of_day(sample, "2018/11/2018-11-01-events.json")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "day.json").write_bytes(b"\n".join([good[0], b"", b"", b"\x80" + good[1][1:], *good[2:]]))
    summary = run_json("--songs", sample / "song_data", "--logs", tmp_path / "logs", "--target", tmp_path / "t.duckdb")
    assert summary["accounting"]["events"]["read"] == len(good)
    assert set(rejected_lines(tmp_path / "t.duckdb")) == {("day.json", 4)}


# -- files that cannot be read ---------------------------------------------------------

CANNOT_READ = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
"""Root reads any file: the run drops the two capabilities that let it ignore permissions."""


@pytest.fixture()
def readable_copy(sample: Path, tmp_path: Path) -> dict[str, Path]:
    """A few songs and log days, with a target folder, for runs that meet unreadable paths."""
    root = tmp_path / "in"
    songs, logs = root / "songs" / "A", root / "logs" / "2018" / "11"
    songs.mkdir(parents=True)
    logs.mkdir(parents=True)
    for path in sorted((sample / "song_data").rglob("*.json"))[:5]:
        shutil.copy2(path, songs / path.name)
    for path in sorted((sample / "log_data").rglob("*.json"))[:3]:
        shutil.copy2(path, logs / path.name)
    return {"songs": root / "songs", "logs": root / "logs", "target": tmp_path / "t.duckdb", "work": tmp_path}


def _run_without_override(paths: dict[str, Path]):
    return sparkify("run", "--songs", paths["songs"], "--logs", paths["logs"], "--target", paths["target"], "--json",
                    workdir=paths["work"], env=child_env(paths["work"] / "tmp"), setpriv=CANNOT_READ)


@pytest.mark.parametrize("which", ["songs", "logs"])
def test_an_unreadable_file_stops_the_run_with_its_name(readable_copy, which):
    victim = sorted(readable_copy[which].rglob("*.json"))[1]
    victim.chmod(0)
    try:
        result = _run_without_override(readable_copy)
    finally:
        victim.chmod(0o644)
    assert result.clear_error and str(victim) in result.stderr, result.output[-2000:]
    retry = _run_without_override(readable_copy)
    assert retry.code == 0, retry.stderr[-2000:]
    assert json.loads(retry.stdout.splitlines()[-1])["files"][which]["skipped"] == 0, "the failed run left a ledger"


@pytest.mark.parametrize("which", ["a subfolder", "the source folder"])
def test_an_unreadable_folder_is_not_silently_skipped(readable_copy, which):
    folder = readable_copy["logs"] / "2018" if which == "a subfolder" else readable_copy["logs"]
    folder.chmod(0)
    try:
        result = _run_without_override(readable_copy)
    finally:
        folder.chmod(0o755)
    assert result.clear_error and str(folder) in result.stderr, result.output[-2000:]


# -- symlink loops ----------------------------------------------------------------------

def test_a_folder_symlink_loop_in_a_source_folder_reads_each_file_once(readable_copy):
    os.symlink("..", readable_copy["logs"] / "2018" / "11" / "loop")
    result = _run_without_override(readable_copy)
    assert result.code == 0, result.stderr[-2000:]
    events = sum(len(p.read_bytes().splitlines()) for p in readable_copy["logs"].rglob("*.json"))
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["files"]["logs"]["new"] == 3 and summary["accounting"]["events"]["read"] == events


def test_a_file_symlink_loop_is_named(readable_copy):
    folder = readable_copy["logs"] / "2018" / "11"
    os.symlink("loop-b.json", folder / "loop-a.json")
    os.symlink("loop-a.json", folder / "loop-b.json")
    result = _run_without_override(readable_copy)
    assert "Traceback" not in result.output
    assert "loop-a.json" in result.stderr, result.stderr[-2000:]


def test_a_glob_source_through_symlink_loops_ends_and_reads_each_file_once(readable_copy):
    folder = readable_copy["logs"] / "2018" / "11"
    os.symlink("..", folder / "loop1")
    os.symlink("..", folder / "loop2")
    events = sum(len(p.read_bytes().splitlines()) for p in folder.glob("*.json"))
    result = sparkify("run", "--songs", readable_copy["songs"], "--logs", f"{readable_copy['logs']}/**/*.json",
                      "--target", readable_copy["target"], "--json", workdir=readable_copy["work"], timeout=30)
    assert not result.timed_out, "the run did not end within 30 s"
    assert result.code == 0 and json.loads(result.stdout.splitlines()[-1])["accounting"]["events"]["read"] == events


# -- every target alike --------------------------------------------------------------

def fixed_damage(good: list[bytes]) -> list[Line]:
    """One damaged line of each kind (no NUL), deterministic; new ids where a valid variant would collide."""
    play = next(json.loads(line) for line in good if json.loads(line)["page"] == "NextSong")

    def variant(item: int, **changes) -> dict:
        return {**play, "itemInSession": item, **changes}

    line = dump(play)
    middle = len(line) // 2
    return [
        Line(line[:40], REJECT),
        Line(line[:middle] + b"\xe9" + line[middle + 1:], REJECT),
        Line(dump(play, length="NaN"), REJECT),
        Line(dump({**play, "ts": 10**30}), REJECT),
        Line(dump(play, location="[[[]]]"), REJECT),
        Line(dump({**play, "artist": "@@"}).replace(b"@@", b"A\x01B"), REJECT),
        Line(b"[1, 2]", REJECT),
        Line(b"\x01", REJECT),
        Line(b"  \x01" + dump(variant(9005)), REJECT),
        Line(dump(variant(9006)) + b"\x01junk", REJECT),
        Line(dump(variant(9007)) + b"\x01", REJECT),
        Line(dump(variant(9001, location="Here\u0007\u001f")), VALID),
        Line(dump(variant(9002), x_deep="[" * 10_000 + "]" * 10_000), VALID),
        Line(dump(variant(9003, artist=123, x_big=10**40)), VALID),
        Line(dump(variant(9004, userAgent='  "Quoted agent"  ', level=" paid ")), VALID),
        Line(b"   ", BLANK),
    ]


@pytest.fixture()
def any_target(request, tmp_path: Path):
    from tests.killharness import Targets

    targets = Targets(request, request.node.callspec.params["kind"], tmp_path / "targets")
    yield targets("hostile")
    targets.close()


@pytest.mark.parametrize("kind", TARGET_KINDS)
def test_every_target_takes_damaged_input_alike(kind, any_target, sample, base, tmp_path):
    good = _events_of_day(sample)
    damaged = fixed_damage(good)
    songs, logs = write_input(tmp_path / "damaged", [*good[:10], *(d.data for d in damaged), *good[10:]], base.songs)
    code, out = run_cli("run", "--songs", songs, "--logs", logs, "--target", any_target, "--json")
    assert code == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert balanced(summary)
    assert summary["accounting"]["events"]["rejected"] == sum(d.fate == REJECT for d in damaged)
    kept = [*good[:10], *(d.data for d in damaged if d.fate != REJECT), *good[10:]]
    _, clean_logs = write_input(tmp_path / "clean", kept, [])
    run_json("--songs", songs, "--logs", clean_logs, "--target", tmp_path / "clean.duckdb")
    assert star_rows(any_target) == star_rows(str(tmp_path / "clean.duckdb"))


@pytest.mark.parametrize("kind", TARGET_KINDS)
def test_nul_characters_do_not_stop_a_run(kind, any_target, sample, base, tmp_path):
    good = _events_of_day(sample)
    play = next(json.loads(line) for line in good if json.loads(line)["page"] == "NextSong")
    nul_text = dump({**play, "itemInSession": 9100, "location": "Nul\u0000City"})
    nul_byte = dump({**play, "itemInSession": 9101, "artist": "@@"}).replace(b"@@", b"Nul\x00Byte")
    songs, logs = write_input(tmp_path / "damaged", [*good, nul_text, nul_byte], base.songs)
    code, out = run_cli("run", "--songs", songs, "--logs", logs, "--target", any_target, "--json")
    assert code == 0, out
    summary = json.loads(out.strip().splitlines()[-1])
    assert balanced(summary) and summary["accounting"]["events"]["rejected"] == 2, "U+0000 in text rejects its record"
    _, clean_logs = write_input(tmp_path / "clean", good, [])
    run_json("--songs", songs, "--logs", clean_logs, "--target", tmp_path / "clean.duckdb")
    assert star_rows(any_target) == star_rows(str(tmp_path / "clean.duckdb"))
