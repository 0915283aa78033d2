"""Kills at 10 million events: a DuckDB file holding half a generated month, and the run adding the other half.

The sample's kill campaign (test_kills.py) strikes runs of seconds; this one
strikes the one transaction that loads five million events at the default
memory limit, in every phase and at least three times during the load
itself. States are compared by fingerprint (rows and an order-independent
hash of every column, per table), since the tables are too large to read
back into Python whole. Slow: `pytest -m slow tests/test_kills_at_scale.py`
writes its table into RELIABILITY.md.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path

import duckdb
import pytest

from sparkify.schema import ALL_TABLES
from tests.killharness import (
    ANCHOR,
    PHASES,
    PHASES_HEADER,
    STAGES,
    STRUCK_TIMEOUT,
    TRIALS_HEADER,
    Child,
    Trial,
    child_env,
    failures,
    phase,
    phases_row,
    sparkify,
    stamp,
    trials_row,
    write_rows,
)

EVENTS = int(os.environ.get("SPARKIFY_TEST_KILL_EVENTS", "10000000"))
KILLS = int(os.environ.get("SPARKIFY_TEST_KILL_COUNT", "12"))
SEED = 20261207
AIMS = ("load", "star", "load", "events", "load", "after load", "songs", "start-up/list")
"""Phases struck in turn: the load (the one transaction) most often."""


def fingerprint(path: str) -> dict[str, tuple[int, int]]:
    """Per table: rows, and the sum of a hash of each whole row but its run id (equal states, equal prints)."""
    con = duckdb.connect(path, read_only=True)
    try:
        return {t.name: tuple(con.execute(
            f'SELECT count(*), coalesce(sum(hash(t) >> 1), 0) FROM (SELECT * {_but_run_id(t)} FROM "{t.name}") t'
        ).fetchone()) for t in ALL_TABLES if t.name != "_sparkify_runs"}
    finally:
        con.close()


def _but_run_id(table) -> str:
    return "EXCLUDE (run_id)" if "run_id" in table.column_names else ""


def _run(args: list[str], where: Path) -> None:
    result = sparkify(*args, workdir=where, env=child_env(where / "tmp"), timeout=1800)
    assert result.code == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_kills_of_a_run_adding_five_million_events(tmp_path: Path):
    data, stash = tmp_path / "data", tmp_path / "stash"
    _run(["generate", "--out", str(data), "--events", str(EVENTS), "--seed", "7"], tmp_path)
    days = sorted((data / "log_data").rglob("*.json"))
    later = days[len(days) // 2:]
    stash.mkdir()
    for path in later:
        os.rename(path, stash / path.name)
    base = str(tmp_path / "base.duckdb")
    args = ["run", "--songs", str(data / "song_data"), "--logs", str(data / "log_data"), "--json"]
    _run([*args, "--target", base], tmp_path / "first")
    for path in later:
        os.rename(stash / path.name, path)
    before = fingerprint(base)

    reference = str(tmp_path / "reference.duckdb")
    shutil.copyfile(base, reference)
    child = Child([*args, "--target", reference], tmp_path / "reference", child_env(tmp_path / "reference" / "tmp"))
    times = child.timeline()
    assert child.wait().code == 0 and set(STAGES) <= set(times)
    after = fingerprint(reference)
    assert after != before and after["songplays"][0] > before["songplays"][0]
    marks = [0.0, *(times[s] for s in STAGES), times["end"]]
    windows = {name: max(end - start, 0.0) for name, start, end in zip(PHASES, marks, marks[1:])}

    rng, trials = random.Random(SEED), []
    for number in range(KILLS):
        aimed, fraction = AIMS[number % len(AIMS)], rng.random()
        target, where = str(tmp_path / f"trial{number}.duckdb"), tmp_path / f"trial{number}"
        shutil.copyfile(base, target)
        tmp = where / "tmp"
        child = Child([*args, "--target", target], where, child_env(tmp))
        child.reached(ANCHOR[aimed])
        at = child.elapsed() + fraction * windows[aimed]
        struck = child.alive_at(at)
        hit = phase(child.stderr_so_far()) if struck else "(had finished)"
        if struck:
            child.kill()
        result = child.wait(STRUCK_TIMEOUT)
        state = fingerprint(target)
        outcome = "before" if state == before else "after" if state == after else "mixed"
        check = sparkify("check", "--target", target, workdir=where, env=child_env(tmp), timeout=900)
        converge = sparkify(*args, "--target", target, workdir=where, env=child_env(tmp), timeout=1800)
        converged = converge.code == 0 and fingerprint(target) == after
        leftovers = len(list(tmp.iterdir())) if tmp.exists() else 0
        trials.append(Trial("duckdb, 10 M events", number, aimed, round(at, 3), struck, result.killed,
                            result.timed_out, hit, result.code, result.clear_error, outcome, check.code == 0,
                            converged, leftovers, "" if outcome != "mixed" else str(state)))
        os.remove(target)
        time.sleep(0.1)
    name = f"duckdb, {EVENTS / 1e6:g} M events (first half loaded, default settings)"
    write_rows("kills", (*TRIALS_HEADER, "seed", "measured"), [[*trials_row(name, trials), SEED, stamp()]])
    write_rows("kill-phases", PHASES_HEADER, [phases_row(name, trials)])
    assert sum(t.struck and t.phase == "load" for t in trials) >= 3, [t.phase for t in trials]
    assert not failures(trials), failures(trials)
