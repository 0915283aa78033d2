"""The time dimension on hand-picked instants: UTC, ISO week and weekday across year boundaries."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.conftest import run_json, star_rows


def ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.timezone.utc).timestamp() * 1000)


# (instant, expected hour, day, ISO week, month, year, ISO weekday), each worked out by hand
CASES = [
    (ms(2018, 12, 31, 23, 59, 59) + 999, (23, 31, 1, 12, 2018, 1)),  # a Monday in ISO week 1 of 2019
    (ms(2021, 1, 1, 0, 0, 0), (0, 1, 53, 1, 2021, 5)),                 # a Friday in ISO week 53 of 2020
    (ms(2021, 1, 3, 12, 0, 0), (12, 3, 53, 1, 2021, 7)),               # Sunday: weekday 7, still week 53
    (ms(2021, 1, 4, 0, 0, 0) + 1, (0, 4, 1, 1, 2021, 1)),              # Monday: week 1 begins
    (ms(2018, 11, 4, 1, 30, 0), (1, 4, 44, 11, 2018, 7)),              # the US clock change: UTC ignores it
    (ms(2020, 2, 29, 6, 0, 0), (6, 29, 9, 2, 2020, 6)),                # a leap day, a Saturday
]


@pytest.fixture()
def logs(tmp_path):
    day = tmp_path / "log_data"
    day.mkdir()
    lines = [json.dumps({"ts": ts, "page": "NextSong", "userId": "7", "sessionId": 1, "itemInSession": i,
                         "level": "free", "song": "x", "artist": "y", "length": 1.0})
             for i, (ts, _) in enumerate(CASES)]
    (day / "events.json").write_text("\n".join(lines))
    (tmp_path / "song_data").mkdir()
    return tmp_path


def test_time_fields_at_hand_picked_instants(logs, tmp_path):
    target = str(tmp_path / "t.duckdb")
    summary = run_json("--songs", logs / "song_data", "--logs", logs / "log_data", "--target", target)
    assert summary["tables"]["time"] == len(CASES)
    rows = {row[0]: row[1:] for row in star_rows(target)["time"]}
    for ts, expected in CASES:
        start = dt.datetime.fromtimestamp(ts // 1000, tz=dt.timezone.utc).replace(microsecond=ts % 1000 * 1000)
        assert rows[start] == expected, start
