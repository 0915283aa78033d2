"""The contract's Spark cells: the scenarios of tests/test_contract.py, run by the Spark engine.

A file of its own so that a second test worker runs it beside the other
cells (a Spark run of the sample takes seconds where DuckDB's takes a
fraction). Every Spark cell lands the corrupted sample, whose good lines
are the sample's, in one set of runs for the contract's two sample
scenarios: tables against tests/reference.py, accounting and rejects against
the reference cell's, a rerun, a full refresh, the check. The increment
and failure scenarios exercise what the engine hands the target and the
target's own merge, which the DuckDB cells already run on every target:
here they run on the DuckDB file. One fixed sequence of
increments (later days first, then the older days, late songs with a
replacing record, a redelivered day) stands for the contract's increment
scenarios (half the days then all; an older file arriving late) and for
tests/test_increments.py's random orders, which a Spark run per draw would
make too slow: it ends equal to one DuckDB run in every table, users'
levels included.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import sparkify
from tests import test_contract as contract
from tests.conftest import new_target, star_rows
from tests.test_contract import Cell, corrupted, duckdb_on_corrupted  # noqa: F401 (fixtures)
from tests.test_increments import _deliver, _files, dataset  # noqa: F401 (the fixture)

pytestmark = pytest.mark.spark

SPARK_CELLS = [c for c in contract.CELLS if c[0] == "spark"]


@pytest.fixture(params=[pytest.param(c, id="-".join(c)) for c in SPARK_CELLS])
def cell(request, tmp_path: Path, spark) -> Cell:
    """An empty target of the cell's kind, the in-process Spark session started first (and reused)."""
    engine, kind = request.param
    return Cell(engine, new_target(kind, request, tmp_path))


@pytest.fixture()
def on_a_duckdb_file(request, tmp_path: Path, spark) -> Cell:
    return Cell("spark", new_target("duckdb", request, tmp_path))


def test_corrupted_sample_rerun_full_refresh_and_check_end_as_the_reference_cell(
        cell, sample, corrupted, duckdb_on_corrupted):  # noqa: F811 (the fixture imported above)
    """The contract's two sample scenarios in one set of Spark runs: the first run is of the corrupted
    sample, whose good lines are the sample's (tests/reference.py's rows of the sample) and whose bad
    lines must be the reference cell's rejects; then the rerun, the full refresh and the check."""
    summary, rejects = duckdb_on_corrupted
    assert len(rejects) == 2 * len(contract.CORRUPT)
    contract.rerun_refresh_check(cell, corrupted, summary, contract.star_rows_expected(sample))
    assert contract._rejects(cell.target) == rejects


def test_a_failure_mid_load_leaves_the_target_unchanged(on_a_duckdb_file, sample_copy, tmp_path, monkeypatch):
    contract.test_a_failure_mid_load_leaves_the_target_unchanged(on_a_duckdb_file, sample_copy, tmp_path,
                                                                  monkeypatch)


def _redeliver(day: Path) -> None:
    """The day again under another name, every third event with other values; the other lines as they
    were, byte for byte (re-encoding a line the feed got wrong would test the JSON readers instead)."""
    out = []
    for n, line in enumerate(day.read_bytes().splitlines(keepends=True)):
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if n % 3 == 0 and isinstance(event, dict):
            line = (json.dumps({**event, "level": "paid" if event.get("level") == "free" else "free",
                                "location": "Zzz, ZZ", "firstName": "Aaa"}) + "\n").encode()
        out.append(line)
    (day.parent / ("again-" + day.name)).write_bytes(b"".join(out))


def test_late_songs_older_days_and_a_redelivered_day_end_as_one_duckdb_run(
        on_a_duckdb_file, dataset, tmp_path, monkeypatch):  # noqa: F811 (the fixture imported above)
    """Half the songs with the later days, the earlier days, the other songs (one record replacing a stored
    one), then a day again under another name with other values: the star of one DuckDB-engine run.
    Every run's new files are many, so Spark lists their folders, where the earlier runs' files are too:
    only the new ones may count, and plays match the songs stored by earlier runs."""
    from sparkify.engines.spark import compute

    monkeypatch.setattr(compute, "EXPLICIT_PATHS", 5)
    data = tmp_path / "data"
    _deliver(dataset, [p for p in _files(dataset) if not p.name.startswith("again-")], data)
    days = sorted(p for p in _files(data) if p.parts[0] == "log_data")
    _redeliver(data / days[0])
    files = _files(data)
    songs = [p for p in files if p.parts[0] == "song_data"]
    late = [p for p in songs if p.parts[1] == "0"]  # the replacing record and the smaller song_id
    replaced = json.loads((data / "song_data" / "0" / "early.json").read_text())["song_id"]
    original = next(p for p in songs if p not in late and replaced in (data / p).read_text(errors="replace"))
    rest = [p for p in songs if p not in late and p != original]
    again = [p for p in files if p.name.startswith("again-")]
    half = len(days) // 2
    runs = [[original, *rest[:len(rest) // 2], *days[half:]], days[:half], [*rest[len(rest) // 2:], *late], again]
    assert sorted(p for run in runs for p in run) == files

    full = str(tmp_path / "full.duckdb")
    once = sparkify.run(str(data / "song_data"), str(data / "log_data"), target=full).accounting
    src = tmp_path / "src"
    totals: dict[str, dict[str, int]] = {}
    for run in runs:
        _deliver(data, run, src)
        summary = sparkify.run(str(src / "song_data"), str(src / "log_data"), target=on_a_duckdb_file.target,
                               engine="spark")
        for what, counts in summary.accounting.items():
            for name, n in counts.items():
                if isinstance(n, int):
                    totals.setdefault(what, {}).setdefault(name, 0)
                    totals[what][name] += n
    assert star_rows(on_a_duckdb_file.target) == star_rows(full)
    for what, counts in totals.items():
        assert counts == {k: v for k, v in once[what].items() if isinstance(v, int)}, what
