"""The contract's Spark cells: the scenarios of tests/test_contract.py, run by the Spark engine.

A file of its own so that a second test worker runs it beside the other
cells (a Spark run of the sample takes seconds where DuckDB's takes a
fraction). Every Spark cell lands the sample (tables against
tests/reference.py, accounting against the DuckDB engine's, reruns, full
refresh, check) and the corrupted sample (rejects against the reference
cell's). The increment and failure scenarios exercise what the engine hands
the target and the target's own merge, which the DuckDB cells already run on
every target: here they run on the DuckDB file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import test_contract as contract
from tests.conftest import new_target
from tests.test_contract import Cell, corrupted, duckdb_on_sample, reference_rejects  # noqa: F401 (fixtures)

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


def test_rerun_changes_nothing_then_full_refresh_rebuilds_the_same_tables_and_check_passes(
        cell, sample, duckdb_on_sample):  # noqa: F811 (the fixture imported above)
    contract.test_rerun_changes_nothing_then_full_refresh_rebuilds_the_same_tables_and_check_passes(
        cell, sample, duckdb_on_sample)


def test_corrupted_lines_give_the_reference_cells_rejects(cell, corrupted, reference_rejects):  # noqa: F811
    contract.test_corrupted_lines_give_the_reference_cells_rejects(cell, corrupted, reference_rejects)


def test_half_the_days_then_all_equals_all_at_once(on_a_duckdb_file, sample_copy, tmp_path):
    contract.test_half_the_days_then_all_equals_all_at_once(on_a_duckdb_file, sample_copy, tmp_path)


def test_level_moves_forward_only_when_an_older_file_arrives_late(on_a_duckdb_file, sample_copy, tmp_path):
    contract.test_level_moves_forward_only_when_an_older_file_arrives_late(on_a_duckdb_file, sample_copy, tmp_path)


def test_a_failure_mid_load_leaves_the_target_unchanged(on_a_duckdb_file, sample_copy, tmp_path, monkeypatch):
    contract.test_a_failure_mid_load_leaves_the_target_unchanged(on_a_duckdb_file, sample_copy, tmp_path,
                                                                  monkeypatch)
