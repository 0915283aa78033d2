"""The contract on every target: reruns, increments, full refresh, atomic failure.

Parametrised over every kind of target (conftest.TARGET_KINDS); each must
end with the same tables as the plain-Python reading of the spec.
"""

from __future__ import annotations

import shutil
from pathlib import Path


from sparkify.targets import sqlmerge
from tests import reference
from tests.conftest import balanced, run_cli, run_json, star_rows


def _args(data: Path, target: str, *extra: str) -> tuple:
    return ("--songs", data / "song_data", "--logs", data / "log_data", "--target", target, *extra)


def _split_days(data: Path, later: Path) -> None:
    """Move the second half of November's log files out of `data`, to `later`."""
    later.mkdir(parents=True)
    for path in sorted((data / "log_data" / "2018" / "11").glob("*.json"))[15:]:
        shutil.move(path, later / path.name)


def test_rerun_changes_nothing_and_reads_nothing(target_url, sample):
    first = run_json(*_args(sample, target_url))
    assert balanced(first)
    before = star_rows(target_url)
    second = run_json(*_args(sample, target_url))
    assert second["files"]["logs"] == {"new": 0, "skipped": 30}
    assert second["accounting"]["events"]["read"] == 0
    assert star_rows(target_url) == before
    assert before == star_rows_expected(sample)


def star_rows_expected(data: Path) -> dict:
    expected = reference.star(data / "song_data", data / "log_data")
    expected["artists"] = [tuple(round(v, 9) if isinstance(v, float) else v for v in row)
                           for row in expected["artists"]]
    expected["songs"] = [tuple(round(v, 9) if isinstance(v, float) else v for v in row)
                         for row in expected["songs"]]
    return expected


def test_half_the_days_then_all_equals_all_at_once(target_url, sample_copy, tmp_path):
    later = tmp_path / "later"
    _split_days(sample_copy, later)
    first = run_json(*_args(sample_copy, target_url))
    assert first["files"]["logs"]["new"] == 15
    for path in later.iterdir():
        shutil.move(path, sample_copy / "log_data" / "2018" / "11" / path.name)
    second = run_json(*_args(sample_copy, target_url))
    assert second["files"]["logs"] == {"new": 15, "skipped": 15}
    assert balanced(second)
    assert second["tables"] == {"songplays": 6820, "users": 97, "songs": 71, "artists": 69, "time": 6813}
    assert star_rows(target_url) == star_rows_expected(sample_copy)


def test_level_moves_forward_only_when_an_older_file_arrives_late(target_url, sample_copy, tmp_path):
    """Load the month's second half first: the users' level must still end at their latest event."""
    early = tmp_path / "early"
    early.mkdir()
    for path in sorted((sample_copy / "log_data" / "2018" / "11").glob("*.json"))[:15]:
        shutil.move(path, early / path.name)
    run_json(*_args(sample_copy, target_url))
    for path in early.iterdir():
        shutil.move(path, sample_copy / "log_data" / "2018" / "11" / path.name)
    run_json(*_args(sample_copy, target_url))
    assert star_rows(target_url)["users"] == star_rows_expected(sample_copy)["users"]


def test_full_refresh_rebuilds_the_same_tables(target_url, sample):
    run_json(*_args(sample, target_url))
    before = star_rows(target_url)
    summary = run_json(*_args(sample, target_url, "--full-refresh"))
    assert summary["files"]["logs"]["new"] == 30
    assert summary["accounting"]["events"]["loaded"] == 6820
    assert star_rows(target_url) == before


def test_a_failure_mid_load_leaves_the_target_unchanged(target_url, sample_copy, tmp_path, monkeypatch):
    later = tmp_path / "later"
    _split_days(sample_copy, later)
    run_json(*_args(sample_copy, target_url))
    before = star_rows(target_url)
    for path in later.iterdir():
        shutil.move(path, sample_copy / "log_data" / "2018" / "11" / path.name)

    original = sqlmerge.SqlMerge.statements

    def failing(self):
        statements = original(self)
        at = next(i for i, (purpose, _) in enumerate(statements) if purpose == "songplays") + 1
        return statements[:at] + [("boom", "SELECT injected_failure_after_songplays()")] + statements[at:]

    monkeypatch.setattr(sqlmerge.SqlMerge, "statements", failing)
    code, _ = run_cli("run", *_args(sample_copy, target_url))
    assert code != 0
    assert star_rows(target_url) == before
    monkeypatch.undo()
    summary = run_json(*_args(sample_copy, target_url))
    assert summary["files"]["logs"]["new"] == 15
    assert star_rows(target_url) == star_rows_expected(sample_copy)


def test_check_passes(target_url, sample):
    run_json(*_args(sample, target_url))
    assert run_cli("check", "--target", target_url)[0] == 0


def test_the_tables_merged_by_on_conflict_are_exactly_the_upserted_ones():
    """The lake keys only sqlmerge.UPSERTED in its working tables (lakemerge.KEYED): a statement with
    ON CONFLICT on any other table would fail there for want of a key."""
    merge = sqlmerge.SqlMerge(lambda name: f'"{name}"', lambda table: f'"{table.name}"', lambda name: name)
    targets = {statement.split('"')[1] for _, statement in merge.statements() if "ON CONFLICT" in statement}
    assert targets == {t.name for t in sqlmerge.UPSERTED}
    from sparkify.targets.lakemerge import KEYED

    assert KEYED == targets
