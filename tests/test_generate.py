"""`sparkify generate`: real layouts, determinism, realistic shape, and dirt the pipeline finds exactly.

Expected values come from the raw files (read here in plain Python), from the
real sample, or from the generator's manifest of what it planted; never from
the pipeline's own output.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pytest

from sparkify.generate.dirt import MESS_EVENT_KINDS, MESS_SONG_KINDS, REJECT_EVENT_KINDS, REJECT_SONG_KINDS
from sparkify.generate.profile import profile
from tests.conftest import balanced, run_cli, run_json

EVENT_KEYS = ["artist", "auth", "firstName", "gender", "itemInSession", "lastName", "length", "level", "location",
              "method", "page", "registration", "sessionId", "song", "status", "ts", "userAgent", "userId"]
SONG_KEYS = ["num_songs", "artist_id", "artist_latitude", "artist_longitude", "artist_location", "artist_name",
             "song_id", "title", "duration", "year"]


def generate(out: Path, *args: str) -> dict:
    code, _ = run_cli("generate", "--out", str(out), *args)
    assert code == 0
    return json.loads((out / "manifest.json").read_text())


def run(data: Path, target: Path) -> dict:
    return run_json("--songs", data / "song_data", "--logs", data / "log_data", "--target", target)


def accounting(summary: dict) -> dict:
    events = dict(summary["accounting"]["events"])
    events.pop("filtered_by_page")
    return {"songs": summary["accounting"]["songs"], "events": events}


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.json")) if p.name != "manifest.json"}


def raw_lines(log_dir: Path) -> list[bytes]:
    return [line for p in sorted(log_dir.rglob("*.json")) for line in p.read_bytes().split(b"\n")]


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("clean") / "data"
    generate(out, "--events", "30000", "--songs", "400", "--seed", "11", "--match-rate", "0.1")
    return out


@pytest.fixture(scope="module")
def dirty(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dirty") / "data"
    generate(out, "--events", "20000", "--songs", "300", "--seed", "5", "--dirty", "0.02")
    return out


def test_layout_and_format_are_the_real_ones(clean: Path, sample: Path):
    songs = sorted((clean / "song_data").rglob("*.json"))
    assert len(songs) == 400
    for path in songs[:50]:
        data = path.read_bytes()
        assert not data.endswith(b"\n")
        record = json.loads(data)
        assert list(record) == SONG_KEYS
        assert re.fullmatch(r"TR([A-Z])([A-Z])([A-Z])[A-Z0-9]{13}\.json", path.name)
        assert path.parent.relative_to(clean / "song_data").parts == tuple(path.name[2:5])
        assert re.fullmatch(r"SO[A-Z0-9]{16}", record["song_id"]) and re.fullmatch(r"AR[A-Z0-9]{16}",
                                                                                        record["artist_id"])
    logs = sorted((clean / "log_data").rglob("*.json"))
    assert [p.name for p in logs] == [f"2018-11-{d:02d}-events.json" for d in range(1, 31)]
    real_types = {k: set() for k in EVENT_KEYS}
    for line in raw_lines(sample / "log_data"):
        if line.strip():
            for k, v in json.loads(line).items():
                real_types[k].add(type(v).__name__)
    for path in logs:
        data = path.read_bytes()
        assert not data.endswith(b"\n") and data.isascii()
        for line in data.split(b"\n"):
            event = json.loads(line)
            assert list(event) == EVENT_KEYS
            assert all(type(v).__name__ in real_types[k] for k, v in event.items()), event
            assert path.name.startswith(datetime.fromtimestamp(event["ts"] / 1000, timezone.utc).strftime("%F"))
    agents = {json.loads(line)["userAgent"] for line in raw_lines(clean / "log_data")} - {None}
    assert all(a.startswith('"') == ("," in a) for a in agents)
    assert sum(a.startswith('"') for a in agents) > len(agents) / 3


def test_clean_data_runs_balanced_with_the_counts_of_the_files(clean: Path, tmp_path: Path):
    events = [json.loads(line) for line in raw_lines(clean / "log_data")]
    plays = sum(e["page"] == "NextSong" for e in events)
    summary = run(clean, tmp_path / "star.duckdb")
    assert balanced(summary)
    assert accounting(summary)["events"] == {"read": len(events), "loaded": plays, "filtered": len(events) - plays,
                                             "duplicate": 0, "rejected": 0}
    assert accounting(summary)["songs"] == {"read": 400, "loaded": 400, "duplicate": 0, "rejected": 0}
    assert summary["tables"]["users"] == len({e["userId"] for e in events if e["userId"]})
    manifest = json.loads((clean / "manifest.json").read_text())
    assert accounting(summary) == manifest["expected"]


def test_match_rate_is_near_the_requested_one_and_survives_mojibake(clean: Path, tmp_path: Path):
    target = tmp_path / "star.duckdb"
    run(clean, target)
    with duckdb.connect(str(target), read_only=True) as con:
        plays, matched = con.execute("SELECT count(*), count(song_id) FROM songplays").fetchone()
        titles = {r[0] for r in con.execute(
            "SELECT s.title FROM songplays p JOIN songs s USING (song_id) WHERE NOT s.title ~ '^[ -~]*$'"
        ).fetchall()}
    assert 0.085 < matched / plays < 0.115
    mangled = [json.loads(line) for line in raw_lines(clean / "log_data") if b"\\u00c3\\u0083" in line]
    assert {e["song"].encode("latin-1").decode("utf-8").encode("latin-1").decode("utf-8")
            for e in mangled if e["song"] and "\u00c3" in e["song"]} & titles


def test_no_match_when_asked(tmp_path: Path):
    data = tmp_path / "data"
    generate(data, "--events", "3000", "--songs", "50", "--match-rate", "0")
    target = tmp_path / "star.duckdb"
    run(data, target)
    with duckdb.connect(str(target), read_only=True) as con:
        assert con.execute("SELECT count(song_id), count(*) FROM songplays").fetchone()[0] == 0


def test_dirty_rejects_are_found_exactly(dirty: Path, tmp_path: Path):
    manifest = json.loads((dirty / "manifest.json").read_text())
    planted = {(r["file"], r["line"]) for r in manifest["rejects"]}
    assert {r["kind"] for r in manifest["rejects"]} == set(REJECT_EVENT_KINDS) | set(REJECT_SONG_KINDS)
    assert set(manifest["mess"]["events"]) == set(MESS_EVENT_KINDS) | {"empty_file", "duplicate_file"}
    assert set(manifest["mess"]["songs"]) == set(MESS_SONG_KINDS)
    target = tmp_path / "star.duckdb"
    summary = run(dirty, target)
    assert balanced(summary)
    with duckdb.connect(str(target), read_only=True) as con:
        found = {(str(Path(f).relative_to(dirty)), line)
                 for f, line in con.execute("SELECT source_file, line FROM rejects").fetchall()}
    assert found == planted
    assert accounting(summary) == manifest["expected"]
    assert accounting(summary)["events"]["rejected"] == len([r for r in planted if r[0].startswith("log_data")])


def test_dirty_lines_are_what_the_manifest_says(dirty: Path):
    manifest = json.loads((dirty / "manifest.json").read_text())
    lines = {str(p.relative_to(dirty)): p.read_bytes().split(b"\n") for p in (dirty / "log_data").rglob("*.json")}
    for reject in manifest["rejects"]:
        if reject["file"].startswith("log_data"):
            raw = lines[reject["file"]][reject["line"] - 1]
            try:
                value = json.loads(raw)
            except ValueError:
                assert reject["kind"] in ("truncated", "garbage", "flipped_byte", "invalid_utf8")
                continue
            assert reject["kind"] not in ("truncated", "garbage", "flipped_byte", "invalid_utf8")
            if reject["kind"] == "not_object":
                assert not isinstance(value, dict)
    blank = sum(1 for name, file in lines.items() if "resent" not in name and file != [b""]
                for line in file if not line.strip())
    assert blank == manifest["mess"]["events"]["blank_line"]
    resent = [f for f in lines if f.endswith("-resent.json")]
    assert len(resent) == 1 and lines[resent[0]] == lines[resent[0].replace("-resent", "")]
    assert [f for f, content in lines.items() if content == [b""]] == ["log_data/2018/12/2018-12-01-events.json"]


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path):
    args = ("--events", "4000", "--songs", "60", "--dirty", "0.01", "--days", "3")
    generate(tmp_path / "a", *args, "--seed", "7")
    generate(tmp_path / "b", *args, "--seed", "7")
    generate(tmp_path / "c", *args, "--seed", "8")
    a, b, c = (tree_digest(tmp_path / x) for x in "abc")
    assert a == b and len(a) > 60
    assert a != c and set(a.values()).isdisjoint(set(c.values()) - {hashlib.sha256(b"").hexdigest()})


def test_refuses_to_write_over_a_dataset(tmp_path: Path):
    generate(tmp_path / "d", "--events", "100", "--songs", "5", "--days", "2")
    code, _ = run_cli("generate", "--out", str(tmp_path / "d"), "--events", "100")
    assert code == 2


@pytest.fixture(scope="module")
def shapes(tmp_path_factory, sample: Path) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("shape") / "data"
    generate(out, "--events", "60000", "--songs", "1000", "--seed", "3")
    return profile(sample), profile(out)


def test_distributions_resemble_the_sample(shapes):
    real, made = (p["events"] for p in shapes)
    assert abs(made["page_share"]["NextSong"] - real["page_share"]["NextSong"]) < 0.02
    assert abs(made["page_share"]["Home"] - real["page_share"]["Home"]) < 0.02
    assert set(made["page_share"]) == set(real["page_share"])
    assert abs(made["logged_out_share"] - real["logged_out_share"]) < 0.01
    assert set(made["logged_out_page_share"]) == set(real["logged_out_page_share"])
    assert abs(made["event_level_share"]["paid"] - real["event_level_share"]["paid"]) < 0.08
    for level in ("free", "paid"):
        mean, real_mean = made["session_length_mean_by_level"][level], real["session_length_mean_by_level"][level]
        assert abs(mean - real_mean) / real_mean < 0.2
    assert abs(made["sessions_per_user_day"]["1"] - real["sessions_per_user_day"]["1"]) < 0.05
    assert sum(abs(a - b) for a, b in zip(made["hour_share"], real["hour_share"])) / 2 < 0.08
    peak = max(range(24), key=lambda h: made["hour_share"][h])
    assert 14 <= peak <= 19
    assert made["ts_millis"] == real["ts_millis"]
    assert abs(made["gender_share"]["F"] - real["gender_share"]["F"]) < 0.05
    assert made["level_changes_per_user"]["1"] > 0.02
    assert abs(made["gap_after_song_is_whole_song_share"] - real["gap_after_song_is_whole_song_share"]) < 0.02
    for key in ("song", "artist"):
        assert abs(made["mojibake_share"][key] - real["mojibake_share"][key]) < 0.012
    assert made["agent_quoted_iff_comma"] and real["agent_quoted_iff_comma"]
    for i, (a, b) in enumerate(zip(made["play_length_log_mean_sd"], real["play_length_log_mean_sd"])):
        assert abs(a - b) < 0.05, i


def test_catalogue_resembles_the_sample(shapes):
    real, made = (p["songs"] for p in shapes)
    for key in ("year_unknown_share", "latitude_null_share", "location_empty_share", "artists_per_song"):
        assert abs(made[key] - real[key]) < 0.06, key
    assert abs(made["duration_log_mean_sd"][0] - real["duration_log_mean_sd"][0]) < 0.06


def test_users_default_to_the_sample_ratio(tmp_path: Path):
    manifest = generate(tmp_path / "d", "--events", "8056", "--songs", "10", "--days", "30")
    assert manifest["options"]["users"] == 97
    events = [json.loads(line) for line in raw_lines(tmp_path / "d" / "log_data")]
    assert len(events) == 8056
    assert Counter(e["page"] == "NextSong" and e["userId"] == "" for e in events)[True] == 0
