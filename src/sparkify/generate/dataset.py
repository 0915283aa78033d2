"""Write a whole dataset: the catalogue, one log file per day, and a manifest of what it holds.

Days are simulated one at a time and rendered in chunks, so memory grows with
the events of one day, not with --events. The manifest (manifest.json beside
song_data/ and log_data/) records the options, the accounting a correct run
must report, every planted reject (file, 1-based line, kind) and the mess.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from bisect import bisect_left
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from sparkify.errors import ConfigError
from sparkify.generate import params
from sparkify.generate.catalogue import write_catalogue
from sparkify.generate.dirt import REJECT_EVENT_KINDS, Dirt
from sparkify.generate.population import make_users
from sparkify.generate.render import LineRenderer
from sparkify.generate.sessions import DayEvents, DaySimulator, P
from sparkify.generate.songtext import SongModel

log = logging.getLogger(__name__)

CHUNK_ROWS = 65_536
"""Rows rendered at a time: bounds the Arrow buffers to a few tens of MB."""
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class Options:
    events: int
    seed: int = 0
    songs: int = params.CATALOGUE_SONGS
    days: int = 30
    users: int | None = None
    match_rate: float = params.MATCH_RATE
    dirty: float = 0.0

    @property
    def user_count(self) -> int:
        return self.users or max(1, round(self.events * params.SAMPLE_USERS / params.SAMPLE_EVENTS))


@dataclass
class _Tally:
    """What the log files hold, as a correct run must count it."""

    read: int = 0
    rejected: int = 0
    filtered: int = 0
    play_lines: int = 0
    plays: int = 0
    rejects: list[dict] = field(default_factory=list)
    mess: Counter = field(default_factory=Counter)


def day_events(total: int, days: int) -> list[int]:
    """--events split over the days by the sample's weekday weights (largest remainder)."""
    start = date.fromisoformat(params.START_DAY)
    weights = np.array([params.WEEKDAY_WEIGHT[(start + timedelta(d)).weekday()] for d in range(days)], float)
    exact = total * weights / weights.sum()
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(-(exact - counts), kind="stable")[: total - int(counts.sum())]] += 1
    return counts.tolist()


def log_path(day: date) -> str:
    return f"log_data/{day:%Y}/{day:%m}/{day:%Y-%m-%d}-events.json"


def generate(out: Path, options: Options) -> dict:
    """Write the dataset under `out` (which must not hold one already) and return its manifest."""
    started = time.perf_counter()
    for sub in ("song_data", "log_data"):
        if (out / sub).exists():
            raise ConfigError(f"{out / sub} exists: choose an empty --out or remove it")
    out.mkdir(parents=True, exist_ok=True)
    quotas = day_events(options.events, options.days)
    dirt = Dirt(options.dirty, options.seed, quotas) if options.dirty > 0 else None
    model = SongModel(options.seed, options.songs)
    songs = write_catalogue(out, model, options.seed, dirt)
    catalogue_seconds = time.perf_counter() - started
    start = datetime.fromisoformat(params.START_DAY).replace(tzinfo=timezone.utc)
    start_ms = int(start.timestamp() * 1000)
    users = make_users(options.user_count, options.seed)
    simulator = DaySimulator(users, model, options.match_rate, options.seed)
    renderer = LineRenderer(users, model)
    tally = _Tally()
    log_files, log_bytes = 0, 0
    logs_started, logs_cpu = time.perf_counter(), time.process_time()
    for index, count in enumerate(quotas):
        day = start.date() + timedelta(index)
        events = simulator.day(index, count, start_ms + index * 86_400_000)
        rel = log_path(day)
        before = (tally.read, tally.rejected, tally.filtered, tally.play_lines, len(tally.rejects))
        log_bytes += _write_day(out / rel, rel, events, renderer, dirt, index, tally)
        log_files += 1
        if dirt and index == dirt.copied_day:
            log_bytes += _copy_day(out, rel, tally, before)
            log_files += 1
    logs_seconds, logs_cpu = time.perf_counter() - logs_started, time.process_time() - logs_cpu
    if dirt:
        empty = out / log_path(start.date() + timedelta(options.days))
        empty.parent.mkdir(parents=True, exist_ok=True)
        empty.touch()
        tally.mess["empty_file"] += 1
        log_files += 1
    manifest = {
        "options": asdict(options) | {"users": options.user_count},
        "files": {"songs": songs.files, "logs": log_files, "log_bytes": log_bytes},
        "expected": {
            "songs": {"read": songs.records, "loaded": songs.records - songs.rejected - songs.duplicate,
                      "duplicate": songs.duplicate, "rejected": songs.rejected},
            "events": {"read": tally.read, "loaded": tally.plays, "filtered": tally.filtered,
                       "duplicate": tally.play_lines - tally.plays, "rejected": tally.rejected},
        },
        "rejects": songs.rejects + tally.rejects,
        "mess": {"songs": songs.mess, "events": dict(tally.mess)},
        "mojibake_plays": dict(renderer.mojibake),
        "seconds": {"total": round(time.perf_counter() - started, 3), "catalogue": round(catalogue_seconds, 3),
                    "logs": round(logs_seconds, 3), "logs_cpu": round(logs_cpu, 3)},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _chunk_bytes(lines: pa.Array) -> tuple[memoryview, np.ndarray]:
    """A chunk's bytes as they sit in the Arrow buffer (no copy) and each line's start in them."""
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32, count=len(lines) + 1, offset=4 * lines.offset)
    return memoryview(lines.buffers()[2])[offsets[0]: offsets[-1]], offsets - offsets[0]


def _write_day(path: Path, rel: str, day: DayEvents, renderer: LineRenderer, dirt: Dirt | None,
               index: int, tally: _Tally) -> int:
    """Write a day's file in a few large writes; edit the planted rows on the way. Returns its size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    plan = dirt.day_plan(index, day) if dirt else {}
    rnd = random.Random(f"{dirt.seed if dirt else 0}-day-{index}")
    plays = day.page == P["NextSong"]
    tally.read += len(day)
    tally.play_lines += int(plays.sum())
    tally.plays += int(plays.sum())
    tally.filtered += len(day) - int(plays.sum())
    edited = sorted(plan)
    tables = renderer.day_tables(day)
    line = 0
    with open(path, "wb") as fh:
        for lo in range(0, len(day), CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, len(day))
            data, offsets = _chunk_bytes(renderer.lines(day.take(np.arange(lo, hi)), tables))
            start = lo
            for row in edited[bisect_left(edited, lo): bisect_left(edited, hi)]:
                fh.write(data[offsets[start - lo]: offsets[row - lo]])
                line += row - start
                original = bytes(data[offsets[row - lo]: offsets[row - lo + 1] - 1])
                for text, fate in dirt.event_edit(plan[row], original, rnd):
                    fh.write(text + b"\n")
                    line += 1
                    _count(tally, fate, bool(plays[row]), {"file": rel, "line": line, "kind": plan[row]})
                _uncount(tally, bool(plays[row]), plan[row])
                start = row + 1
            fh.write(data[offsets[start - lo]:])
            line += hi - start
        size = fh.tell()
        if size:
            fh.truncate(size - 1)  # the real files end without a newline
    return max(size - 1, 0)


def _count(tally: _Tally, fate: str, play: bool, where: dict) -> None:
    if fate == "blank":
        tally.mess[where["kind"]] += 1
        return
    tally.read += 1
    if fate == "reject":
        tally.rejected += 1
        tally.rejects.append(where)
    elif play:
        tally.play_lines += 1
    else:
        tally.filtered += 1


def _uncount(tally: _Tally, play: bool, kind: str) -> None:
    """Take back the original row of an edit (its replacement lines were counted one by one)."""
    tally.read -= 1
    if play:
        tally.play_lines -= 1
        tally.plays -= kind in REJECT_EVENT_KINDS
    else:
        tally.filtered -= 1
    if kind not in REJECT_EVENT_KINDS and kind != "blank_line":
        tally.mess[kind] += 1


def _copy_day(out: Path, rel: str, tally: _Tally, before: tuple) -> int:
    """The same file delivered again under another name: every record of it counted once more."""
    copy = rel.replace("-events.json", "-events-resent.json")
    shutil.copyfile(out / rel, out / copy)
    read, rejected, filtered, play_lines, rejects = before
    tally.read += tally.read - read
    tally.rejected += tally.rejected - rejected
    tally.filtered += tally.filtered - filtered
    tally.play_lines += tally.play_lines - play_lines
    tally.rejects += [dict(r, file=copy) for r in tally.rejects[rejects:]]
    tally.mess["duplicate_file"] += 1
    return (out / copy).stat().st_size
