"""The real sample through the default engine and target: SPEC.md's figures and rules."""

from __future__ import annotations

import datetime as dt

import pytest

from tests import reference
from tests.conftest import balanced, run_cli, run_json, star_rows


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, sample) -> tuple[str, dict]:
    target = str(tmp_path_factory.mktemp("sample") / "star.duckdb")
    summary = run_json("--songs", sample / "song_data", "--logs", sample / "log_data", "--target", target)
    return target, summary


def test_row_counts_of_the_issue(loaded):
    _, summary = loaded
    assert summary["tables"] == {"songplays": 6820, "users": 97, "songs": 71, "artists": 69, "time": 6813}


def test_accounting_balances_and_counts_every_event(loaded):
    _, summary = loaded
    assert balanced(summary)
    events = summary["accounting"]["events"]
    assert events["read"] == 8056
    assert events["filtered_by_page"]["Home"] == 806
    assert sum(events["filtered_by_page"].values()) == events["filtered"] == 8056 - 6820


def test_tables_equal_the_plain_python_reading_of_the_spec(loaded, sample):
    target, _ = loaded
    expected = reference.star(sample / "song_data", sample / "log_data")
    actual = star_rows(target)
    for name, rows in expected.items():
        assert len(actual[name]) == len(rows), name
        for got, want in zip(actual[name], rows):
            assert got == pytest.approx(want) if name == "artists" else got == want, (name, got, want)


def test_the_single_matched_play(loaded):
    target, _ = loaded
    code, out = run_cli("query", "--target", target, "--format", "json",
                        "SELECT p.user_id, p.start_time, s.title, a.name FROM songplays p "
                        "JOIN songs s USING (song_id) JOIN artists a ON a.artist_id = p.artist_id")
    assert code == 0
    rows = [line for line in out.splitlines() if line.strip()]
    assert len(rows) == 1
    assert '"user_id": 15' in rows[0]
    assert "2018-11-21 21:56:47.796000+00:00" in rows[0]
    assert '"title": "Setanta matins"' in rows[0] and '"name": "Elena"' in rows[0]


def test_users_end_at_their_latest_level(loaded, sample):
    import json

    events = [json.loads(line) for f in sorted((sample / "log_data").rglob("*.json"))
              for line in f.read_text().splitlines() if line.strip()]
    by_user: dict[str, list] = {}
    for e in events:
        if e["userId"]:
            by_user.setdefault(e["userId"], []).append(e)
    changed = {u: max(es, key=lambda e: (e["ts"], e["sessionId"], e["itemInSession"]))["level"]
               for u, es in by_user.items() if len({e["level"] for e in es}) > 1}
    assert len(changed) >= 5, "the sample has users who upgraded or downgraded"
    target, _ = loaded
    rows = {row[0]: row[4] for row in star_rows(target)["users"]}
    for user, level in changed.items():
        assert rows[int(user)] == level


def test_user_agents_lose_their_wrapping_quotes(loaded):
    target, _ = loaded
    agents = {row[8] for row in star_rows(target)["songplays"]}
    assert not any(a.startswith('"') or a.endswith('"') for a in agents if a)
    assert any(a.startswith("Mozilla/5.0") for a in agents)


def test_time_rows_are_utc_and_iso(loaded):
    target, _ = loaded
    for start, hour, day, week, month, year, weekday in star_rows(target)["time"]:
        assert (hour, day, month, year) == (start.hour, start.day, start.month, start.year)
        assert (week, weekday) == (start.isocalendar()[1], start.isoweekday())
        assert start.tzinfo == dt.timezone.utc


def test_check_passes_on_the_sample(loaded):
    target, _ = loaded
    code, _ = run_cli("check", "--target", target)
    assert code == 0
