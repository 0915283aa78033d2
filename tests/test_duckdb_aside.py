"""A DuckDB run too big for one transaction builds the next file aside, in slices, and swaps it in.

The contract tests run every scenario on a `duckdb-sliced` target too (slices
of 500 plays); these pin what only this path has: the slices, a failure
between two of them, and what a killed build leaves behind.
"""

from __future__ import annotations

import os
import shutil

import duckdb
import pytest

from sparkify.targets import duckdbaside
from tests.conftest import SLICED, run_cli, run_json, star_rows


def _args(data, target: str) -> tuple:
    return ("--songs", data / "song_data", "--logs", data / "log_data", "--target", target)


@pytest.fixture()
def one_transaction(sample, tmp_path) -> dict:
    """The star as the one-transaction path loads it."""
    target = str(tmp_path / "whole.duckdb")
    run_json(*_args(sample, target))
    return star_rows(target)


def test_slices_give_the_one_transaction_tables(sample, tmp_path, one_transaction, caplog):
    target = str(tmp_path / "star.duckdb")
    caplog.set_level("INFO", logger="sparkify.targets.duckdbaside")
    summary = run_json(*_args(sample, target + SLICED))
    slices = [r.getMessage() for r in caplog.records if "written aside" in r.getMessage()]
    assert any(m.startswith("songplays: slice 14 of 14") for m in slices), slices  # 6,820 plays by 500
    assert summary["tables"]["songplays"] == 6820
    assert star_rows(target) == one_transaction
    assert sorted(os.listdir(tmp_path)) == ["star.duckdb", "star.duckdb.lock", "whole.duckdb", "whole.duckdb.lock"]


def test_a_failure_between_two_slices_leaves_the_file_as_it_was(sample_copy, tmp_path, monkeypatch):
    target = str(tmp_path / "star.duckdb")
    november = sample_copy / "log_data" / "2018" / "11"
    later = tmp_path / "later"
    later.mkdir()
    for path in sorted(november.iterdir())[15:]:
        shutil.move(path, later / path.name)
    run_json(*_args(sample_copy, target))
    before = star_rows(target)
    for path in later.iterdir():
        shutil.move(path, november / path.name)

    original, calls = duckdbaside.AsideBuild._transaction, []

    def failing(self, statements):
        calls.append(statements)
        if len(calls) == 4:  # the merge of the small tables, then two slices of time rows, then this
            raise duckdb.IOException("disk full (injected)")
        return original(self, statements)

    monkeypatch.setattr(duckdbaside.AsideBuild, "_transaction", failing)
    code, _ = run_cli("run", *_args(sample_copy, target + "?slice_rows=2000"))
    assert code != 0 and len(calls) == 4
    assert star_rows(target) == before
    assert not os.path.exists(duckdbaside.building_path(target))
    monkeypatch.undo()
    run_json(*_args(sample_copy, target + "?slice_rows=2000"))
    assert star_rows(target) == star_rows_of_all(sample_copy, tmp_path)


def star_rows_of_all(data, tmp_path) -> dict:
    target = str(tmp_path / "all.duckdb")
    run_json(*_args(data, target))
    return star_rows(target)


def test_a_building_file_left_by_a_killed_run_is_removed_and_never_read(sample, tmp_path, one_transaction):
    target = str(tmp_path / "star.duckdb")
    with open(duckdbaside.building_path(target), "wb") as leftover:
        leftover.write(b"half a database")
    run_json(*_args(sample, target))
    assert not os.path.exists(duckdbaside.building_path(target))
    assert star_rows(target) == one_transaction
