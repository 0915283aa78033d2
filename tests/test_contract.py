"""The contract on every engine and target: reruns, increments, full refresh, atomic failure, rejects.

One matrix of cells (engine x target kind, CELLS): the DuckDB engine on every
kind of target (conftest.TARGET_KINDS), the Spark engine on a DuckDB file,
PostgreSQL and both lakes, and the in-warehouse engine on PostgreSQL. Every
cell must end with the same tables as the plain-Python reading of the spec
(tests/reference.py), the same accounting as the DuckDB engine, and the same
rejects as the DuckDB engine on a DuckDB file. The Spark cells run from
tests/test_contract_spark.py, a file of their own so that a second test
worker runs them beside these.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from sparkify.errors import EXIT_FAILED
from sparkify.targets import open_target, sqlmerge
from sparkify.targets.postgres import inwarehouse
from tests import reference
from tests.conftest import (
    TARGET_KINDS,
    balanced,
    new_target,
    run_cli,
    run_json,
    star_rows,
)

CELLS = [
    *(("duckdb", kind) for kind in TARGET_KINDS),
    *(("spark", kind) for kind in ("duckdb", "postgres", "lake", "s3lake")),
    ("warehouse", "postgres"),
]
"""(engine, target kind) of every cell; the first is the reference for rejects."""

ENGINE_LABEL = {"duckdb": "duckdb", "spark": "spark", "warehouse": "postgresql (in-warehouse)"}
"""The summary's "engine" of each engine (on PostgreSQL for the in-warehouse one)."""

STAR_COUNTS = {"songplays": 6820, "users": 97, "songs": 71, "artists": 69, "time": 6813}
"""The sample's figures, as stated in the issue."""


@dataclass(frozen=True)
class Cell:
    engine: str
    target: str

    def args(self, data: Path, *extra: str) -> tuple:
        """`sparkify run` arguments for this cell's engine and target."""
        return ("--songs", data / "song_data", "--logs", data / "log_data", "--target", self.target,
                "--engine", self.engine, *extra)


@pytest.fixture(params=[pytest.param(c, id="-".join(c)) for c in CELLS if c[0] != "spark"])
def cell(request, tmp_path: Path) -> Cell:
    """An empty target of the cell's kind (the Spark cells are in tests/test_contract_spark.py)."""
    engine, kind = request.param
    return Cell(engine, new_target(kind, request, tmp_path))


@pytest.fixture(scope="session")
def duckdb_on_sample(sample: Path, tmp_path_factory) -> dict:
    """The reference cell's summary of the sample, loaded at once."""
    return run_json(*Cell("duckdb", str(tmp_path_factory.mktemp("reference") / "star.duckdb")).args(sample))


def _split_days(data: Path, later: Path, which: slice = slice(15, None)) -> None:
    """Move some of November's log files (by default the second half) out of `data`, to `later`."""
    later.mkdir(parents=True)
    for path in sorted((data / "log_data" / "2018" / "11").glob("*.json"))[which]:
        shutil.move(path, later / path.name)


def _move_back(later: Path, data: Path) -> None:
    for path in later.iterdir():
        shutil.move(path, data / "log_data" / "2018" / "11" / path.name)


def star_rows_expected(data: Path) -> dict:
    """reference.star with floats rounded as star_rows rounds them."""
    expected = reference.star(data / "song_data", data / "log_data")
    expected["artists"] = [tuple(round(v, 9) if isinstance(v, float) else v for v in row)
                           for row in expected["artists"]]
    expected["songs"] = [tuple(round(v, 9) if isinstance(v, float) else v for v in row)
                         for row in expected["songs"]]
    return expected


def test_rerun_changes_nothing_then_full_refresh_rebuilds_the_same_tables_and_check_passes(
        cell, sample, duckdb_on_sample):
    rerun_refresh_check(cell, sample, duckdb_on_sample, star_rows_expected(sample))


def rerun_refresh_check(cell: Cell, data: Path, reference_summary: dict, expected: dict) -> None:
    """One load of `data`, then three scenarios on it (a Spark run costs seconds, so the cells share it)."""
    first = run_json(*cell.args(data))
    assert balanced(first)
    assert first["engine"] == ENGINE_LABEL[cell.engine]
    assert first["tables"] == STAR_COUNTS
    assert first["accounting"] == reference_summary["accounting"]
    before = star_rows(cell.target)
    assert before == expected

    second = run_json(*cell.args(data))
    assert second["files"]["logs"] == {"new": 0, "skipped": 30}
    assert second["accounting"]["events"]["read"] == 0
    assert star_rows(cell.target) == before

    refreshed = run_json(*cell.args(data, "--full-refresh"))
    assert refreshed["files"]["logs"]["new"] == 30
    assert refreshed["accounting"]["events"]["loaded"] == 6820
    assert star_rows(cell.target) == before

    assert run_cli("check", "--target", cell.target)[0] == 0


def test_half_the_days_then_all_equals_all_at_once(cell, sample_copy, tmp_path):
    later = tmp_path / "later"
    _split_days(sample_copy, later)
    first = run_json(*cell.args(sample_copy))
    assert first["files"]["logs"]["new"] == 15
    _move_back(later, sample_copy)
    second = run_json(*cell.args(sample_copy))
    assert second["files"]["logs"] == {"new": 15, "skipped": 15}
    assert balanced(second)
    assert second["tables"] == STAR_COUNTS
    assert star_rows(cell.target) == star_rows_expected(sample_copy)


def test_level_moves_forward_only_when_an_older_file_arrives_late(cell, sample_copy, tmp_path):
    """Load the month's second half first: the users' level must still end at their latest event."""
    early = tmp_path / "early"
    _split_days(sample_copy, early, slice(None, 15))
    run_json(*cell.args(sample_copy))
    _move_back(early, sample_copy)
    run_json(*cell.args(sample_copy))
    assert star_rows(cell.target)["users"] == star_rows_expected(sample_copy)["users"]


def _fail_after_songplays(statements: list[tuple[str, str]]) -> list[tuple[str, str]]:
    at = next(i for i, (purpose, _) in enumerate(statements) if purpose == "songplays") + 1
    return [*statements[:at], ("boom", "SELECT injected_failure_after_songplays()"), *statements[at:]]


def _break_the_merge(cell: Cell, monkeypatch) -> None:
    """A failing statement right after the songplays insert, in the merge this cell's run executes."""
    if cell.engine == "warehouse":
        original = inwarehouse.merge_statements
        monkeypatch.setattr(inwarehouse, "merge_statements",
                            lambda *args: _fail_after_songplays(original(*args)))
    else:
        statements = sqlmerge.SqlMerge.statements
        monkeypatch.setattr(sqlmerge.SqlMerge, "statements", lambda self: _fail_after_songplays(statements(self)))


def test_a_failure_mid_load_leaves_the_target_unchanged(cell, sample_copy, tmp_path, monkeypatch):
    """A failed increment (and in-warehouse, a failed full refresh) leaves the target as it was; the
    next run completes it."""
    later = tmp_path / "later"
    _split_days(sample_copy, later)
    run_json(*cell.args(sample_copy))
    before = star_rows(cell.target)
    _move_back(later, sample_copy)

    _break_the_merge(cell, monkeypatch)
    code, _ = run_cli("run", *cell.args(sample_copy))
    assert code == EXIT_FAILED
    assert star_rows(cell.target) == before
    if cell.engine == "warehouse":  # where a full refresh runs the same merge (others first-load aside)
        code, _ = run_cli("run", *cell.args(sample_copy, "--full-refresh"))
        assert code == EXIT_FAILED
        assert star_rows(cell.target) == before
    monkeypatch.undo()

    summary = run_json(*cell.args(sample_copy))
    assert summary["files"]["logs"]["new"] == 15
    assert star_rows(cell.target) == star_rows_expected(sample_copy)


# -- rejects ----------------------------------------------------------------------------------------

CORRUPT = [
    '{"ts": 1541903636796, "page": "NextSong", "userId": "39"',         # cut short
    '[{"ts": 1541903636796}]',                                          # not an object
    '{"ts": 1541903636796, "page": "NextSong", "userId": "", "sessionId": 1, "itemInSession": 1}',
    '{"ts": "soon", "page": "Home", "userId": "39"}',
]


@pytest.fixture(scope="session")
def corrupted(sample: Path, tmp_path_factory) -> Path:
    """A copy of the sample with a few corrupted log lines, among the good ones of two days."""
    data = tmp_path_factory.mktemp("corrupted") / "data"
    shutil.copytree(sample / "song_data", data / "song_data")
    shutil.copytree(sample / "log_data", data / "log_data")
    for day in sorted((data / "log_data").rglob("*.json"))[3:5]:
        lines = day.read_text().splitlines()
        day.write_text("\n".join([*lines[:4], *CORRUPT, *lines[4:]]) + "\n")
    return data


def _rejects(url: str) -> list[tuple]:
    target = open_target(url)
    try:
        _, rows = target.query("SELECT kind, source_file, line, reason FROM rejects ORDER BY 1, 2, 3, 4")
        return [tuple(row) for row in rows]
    finally:
        target.close()


@pytest.fixture(scope="session")
def duckdb_on_corrupted(corrupted: Path, tmp_path_factory) -> tuple[dict, list[tuple]]:
    """The reference cell (the DuckDB engine on a DuckDB file) on the corrupted sample: summary and rejects."""
    url = str(tmp_path_factory.mktemp("reference-rejects") / "star.duckdb")
    summary = run_json(*Cell("duckdb", url).args(corrupted))
    assert summary["accounting"]["events"]["rejected"] == 2 * len(CORRUPT)
    return summary, _rejects(url)


@pytest.fixture(scope="session")
def reference_rejects(duckdb_on_corrupted) -> list[tuple]:
    """The reference cell's rejects of the corrupted sample."""
    return duckdb_on_corrupted[1]


def test_corrupted_lines_give_the_reference_cells_rejects(cell, corrupted, reference_rejects):
    summary = run_json(*cell.args(corrupted))
    assert balanced(summary)
    assert summary["accounting"]["events"]["rejected"] == 2 * len(CORRUPT)
    assert len(reference_rejects) == 2 * len(CORRUPT)
    assert _rejects(cell.target) == reference_rejects


def test_the_tables_merged_by_on_conflict_are_exactly_the_upserted_ones():
    """The lake keys only sqlmerge.UPSERTED in its working tables (lakemerge.KEYED): a statement with
    ON CONFLICT on any other table would fail there for want of a key."""
    merge = sqlmerge.SqlMerge(lambda name: f'"{name}"', lambda table: f'"{table.name}"', lambda name: name)
    targets = {statement.split('"')[1] for _, statement in merge.statements() if "ON CONFLICT" in statement}
    assert targets == {t.name for t in sqlmerge.UPSERTED}
    from sparkify.targets.lake.merge import KEYED

    assert KEYED == targets


def test_every_cell_is_named_for_its_engine_and_target():
    from sparkify.pipeline import ENGINES

    assert {engine for engine, _ in CELLS} == set(ENGINES)
    assert {kind for _, kind in CELLS} == set(TARGET_KINDS)
    assert len({"-".join(c) for c in CELLS}) == len(CELLS) == 9
