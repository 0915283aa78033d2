"""The Parquet lake on local disk: layout, types, plain readers, increments, atomic publishing, locking.

Expected values come from the raw sample files read in plain Python, from the
issue's figures, or from the DuckDB target loaded with the same input.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from sparkify.schema import STAR, STATE, TABLES
from sparkify.targets.lake import merge as lake_merge
from sparkify.targets.lake import target as lake_module
from sparkify.targets.lake.store import NULL_PARTITION
from tests.conftest import balanced, run_cli, run_json, star_rows

COUNTS = {"songplays": 6820, "users": 97, "songs": 71, "artists": 69, "time": 6813}

PAUSE_AT_COMMIT = """
import pathlib, sys, time
from sparkify.targets.lake import store as lakestore
flag, store = pathlib.Path(sys.argv[1]), getattr(lakestore, sys.argv[2])
def paused(self, new, written):
    flag.write_text(new.id)
    time.sleep(600)
store.commit = paused
from sparkify import cli
sys.exit(cli.main(sys.argv[3:]))
"""
"""A `sparkify` process that writes all its files, then stops just before the commit."""


def args(data: Path, target: str, *extra: str) -> tuple:
    """A run's arguments; a plain folder is named as a lake (lake://), which a new one must be."""
    target = str(target)
    if "://" not in target and not target.partition("?")[0].endswith(".duckdb"):
        target = f"lake://{target}"
    return ("--songs", data / "song_data", "--logs", data / "log_data", "--target", target, *extra)


def normal(value):
    """One value as star_rows() gives it, whatever reader produced it."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc)
    if isinstance(value, float):
        return round(value, 9)
    if hasattr(value, "item"):  # numpy scalars
        return normal(value.item())
    return value


def ordered(table: str, rows) -> list[tuple]:
    spec = TABLES[table]
    keys = [spec.column_names.index(c) for c in spec.primary_key]
    out = [tuple(normal(v) for v in row) for row in rows]
    return sorted(out, key=lambda r: tuple(r[k] for k in keys))


def read_duckdb(root: str, table: str, con: duckdb.DuckDBPyConnection | None = None) -> list[tuple]:
    """What a plain DuckDB user reads: a glob over the table folder with hive partitioning."""
    con = con or duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cols = ", ".join(f'"{c}"' for c in TABLES[table].column_names)
    folder = "_rejects" if table == "rejects" else table
    glob = f"{root}/{folder}/**/*.parquet"
    return ordered(table, con.execute(
        f"SELECT {cols} FROM read_parquet('{glob}', hive_partitioning = true)").fetchall())


def read_pyarrow(source, table: str, filesystem=None) -> list[tuple]:
    """What a plain pyarrow user reads: a dataset over the folder with hive partitioning."""
    data = ds.dataset(source, format="parquet", partitioning="hive", filesystem=filesystem).to_table()
    columns = TABLES[table].column_names
    return ordered(table, zip(*(data.column(c).to_pylist() for c in columns), strict=True))


def read_pandas(path: str, table: str, **options) -> list[tuple]:
    """pandas.read_parquet on the folder; songs, with its NULL-year partition, needs partitions read
    without dictionaries (pyarrow cannot yet unify a dictionary holding a null)."""
    if table == "songs":
        options.setdefault("partitioning", ds.HivePartitioning.discover(infer_dictionary=False))
    frame = pd.read_parquet(path, **options)
    columns = TABLES[table].column_names
    return ordered(table, frame[columns].astype(object).itertuples(index=False, name=None))


def error_text(capsys) -> str:
    """What the command printed on stderr, unwrapped (rich wraps long lines)."""
    return " ".join(capsys.readouterr().err.split())


def song_partitions(data: Path) -> Counter:
    """(year or None, artist_id) of every song file of the raw sample, read in plain Python."""
    found = Counter()
    for path in (data / "song_data").rglob("*.json"):
        song = json.loads(path.read_text())
        found[(song["year"] or None, song["artist_id"])] += 1
    return found


def digests(root: Path, folders) -> dict[str, str]:
    """sha256 of every Parquet file a plain reader sees under the given table folders."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for folder in folders for p in sorted((root / folder).rglob("*.parquet"))}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, sample) -> dict:
    """The sample in a local lake and in the DuckDB target."""
    base = tmp_path_factory.mktemp("lake")
    lake, reference = str(base / "lake"), str(base / "star.duckdb")
    summary = run_json(*args(sample, lake))
    run_json(*args(sample, reference))
    return {"lake": lake, "summary": summary, "expected": star_rows(reference)}


def test_run_lands_the_issue_figures_and_balances(loaded):
    assert loaded["summary"]["tables"] == COUNTS
    assert balanced(loaded["summary"])
    assert loaded["summary"]["target"].startswith("Parquet lake ")


def test_layout_is_one_folder_per_table_with_hive_partitions(loaded, sample):
    root = Path(loaded["lake"])
    songs = {(p.parent.parent.name, p.parent.name) for p in (root / "songs").rglob("*.parquet")}
    expected = {(f"year={NULL_PARTITION if year is None else year}", f"artist_id={artist}")
                for year, artist in song_partitions(sample)}
    assert songs == expected
    assert len(list((root / "songs").rglob("*.parquet"))) == len(expected)
    for table in ("time", "songplays"):
        parts = {str(p.parent.relative_to(root / table)) for p in (root / table).rglob("*.parquet")}
        assert parts == {"year=2018/month=11"}  # every event of the sample is in November 2018
    for folder in ("users", "artists", "_rejects", "_sparkify_files", "_sparkify_song_records",
                   "_sparkify_user_latest", "_sparkify_runs"):
        files = list((root / folder).glob("*.parquet"))
        assert files and all(p.parent == root / folder for p in (root / folder).rglob("*.parquet")), folder


def test_parquet_files_carry_exact_logical_types_and_compression(loaded):
    root = Path(loaded["lake"])
    (plays,) = (root / "songplays").rglob("*.parquet")
    meta = pq.ParquetFile(plays)
    schema = meta.schema_arrow
    assert schema.names == TABLES["songplays"].column_names  # year/month live in the folder names only
    assert str(schema.field("start_time").type) == "timestamp[us, tz=UTC]"
    assert meta.schema.column(1).physical_type == "INT64"
    assert str(meta.schema.column(1).logical_type).startswith("Timestamp(isAdjustedToUTC=true, timeUnit=microseconds")
    assert {str(schema.field(c).type) for c in ("songplay_id", "user_id", "session_id")} == {"int64"}
    assert not schema.field("songplay_id").nullable and schema.field("song_id").nullable
    assert meta.metadata.row_group(0).column(0).compression == "SNAPPY"
    time_file = next((root / "time").rglob("*.parquet"))
    time_schema = pq.read_schema(time_file)
    assert time_schema.names == ["start_time", "hour", "day", "week", "weekday"]
    assert {str(time_schema.field(c).type) for c in time_schema.names[1:]} == {"int32"}
    song_schema = pq.read_schema(next((root / "songs").rglob("*.parquet")))
    assert song_schema.names == ["song_id", "title", "duration"]
    assert str(song_schema.field("duration").type) == "double"


@pytest.mark.parametrize("table", [t.name for t in STAR])
def test_plain_readers_see_the_duckdb_target_rows(loaded, table):
    root, expected = loaded["lake"], loaded["expected"][table]
    assert len(expected) == COUNTS[table]
    assert read_duckdb(root, table) == expected
    assert read_pyarrow(f"{root}/{table}", table) == expected
    assert read_pandas(f"{root}/{table}", table) == expected


def test_state_and_rejects_live_in_underscore_folders(loaded):
    root = loaded["lake"]
    files = read_duckdb(root, "_sparkify_files")
    assert Counter(kind for _, kind, *_ in files) == {"song": 71, "log": 30}
    assert len(read_duckdb(root, "_sparkify_song_records")) == 71
    assert len(read_duckdb(root, "_sparkify_user_latest")) == 97
    assert read_duckdb(root, "rejects") == []  # the sample has no bad record; the empty file keeps the schema
    (run,) = read_duckdb(root, "_sparkify_runs")
    assert json.loads(run[3])["run_id"] == run[0] == loaded["summary"]["run_id"]


def test_check_and_query_run_on_the_lake(loaded):
    assert run_cli("check", "--target", loaded["lake"])[0] == 0
    code, out = run_cli("query", "SELECT level, count(*) AS n FROM songplays GROUP BY level ORDER BY level",
                        "--target", loaded["lake"], "--format", "json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    expected = Counter(row[3] for row in loaded["expected"]["songplays"])
    assert rows == [{"level": k, "n": v} for k, v in sorted(expected.items())]


def test_query_on_a_folder_without_a_lake_says_so(tmp_path, capsys):
    code, _ = run_cli("query", "SELECT 1", "--target", f"lake://{tmp_path / 'nothing-here'}")
    assert code == 1
    assert "holds no lake yet" in error_text(capsys)
    code, _ = run_cli("query", "SELECT 1", "--target", tmp_path / "nothing-here")
    assert code == 2  # a bare path that is no lake is not taken for one
    assert "lake://" in error_text(capsys)


def test_a_folder_that_is_not_a_lake_is_refused(tmp_path, sample, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    code, _ = run_cli("run", *args(sample, f"lake://{tmp_path / 'mine'}"))
    assert code == 1
    assert "not a sparkify lake" in error_text(capsys)
    assert os.listdir(tmp_path / "mine") == ["notes.txt"]  # untouched


def test_rerun_rewrites_no_star_file_and_records_the_run(tmp_path, sample):
    root = tmp_path / "lake"
    run_json(*args(sample, root))
    before = digests(root, [t.name for t in STAR])
    second = run_json(*args(sample, root))
    assert second["files"]["logs"] == {"new": 0, "skipped": 30}
    assert digests(root, [t.name for t in STAR]) == before
    assert len(read_duckdb(str(root), "_sparkify_runs")) == 2


def _december_copy(data: Path) -> int:
    """Copy the 30 November events one day later (into December); the number of new song plays."""
    source = data / "log_data" / "2018" / "11" / "2018-11-30-events.json"
    target = data / "log_data" / "2018" / "12" / "2018-12-01-events.json"
    target.parent.mkdir(parents=True)
    plays, lines = set(), []
    for line in source.read_text().splitlines():
        event = json.loads(line)
        event["ts"] += 86_400_000
        lines.append(json.dumps(event))
        if event["page"] == "NextSong" and event["userId"] != "":
            plays.add((event["sessionId"], event["itemInSession"], event["userId"], event["ts"]))
    target.write_text("\n".join(lines) + "\n")
    return len(plays)


def test_a_new_month_adds_its_partitions_and_keeps_the_old_files(tmp_path, sample_copy):
    root = tmp_path / "lake"
    run_json(*args(sample_copy, root))
    november = digests(root, ["songplays", "time", "songs"])
    added = _december_copy(sample_copy)
    summary = run_json(*args(sample_copy, root))
    assert summary["files"]["logs"] == {"new": 1, "skipped": 30}
    assert summary["accounting"]["events"]["loaded"] == added > 0
    after = digests(root, ["songplays", "time", "songs"])
    assert {k: v for k, v in after.items() if k in november} == november  # November untouched
    new = {str(Path(k).parent) for k in after.keys() - november.keys()}
    assert new == {"songplays/year=2018/month=12", "time/year=2018/month=12"}
    plays = read_duckdb(str(root), "songplays")
    assert len(plays) == COUNTS["songplays"] + added
    reference = str(tmp_path / "star.duckdb")
    run_json(*args(sample_copy, reference))
    assert {t: read_duckdb(str(root), t) for t in COUNTS} == star_rows(reference)


LATE_SONG = Path("song_data/A/A/C/TRAACCG128F92E8A55.json")
"""The one song of the sample that a play matches (Elena's 'Setanta matins', year unknown)."""


def lake_manifest(root: Path) -> dict:
    return json.loads((root / "_current" / "_manifest.json").read_text())


def play_key_files(root: Path) -> dict[str, str]:
    return digests(root, ["_sparkify_play_keys"])


def full_lake(tmp_path: Path, data: Path) -> str:
    """A fresh lake holding one run over all of `data`: what increments must end equal to."""
    root = tmp_path / "full"
    run_json(*args(data, root))
    return str(root)


def test_a_late_song_matches_the_plays_loaded_before_it(tmp_path, sample_copy, monkeypatch):
    root = tmp_path / "lake"
    held = tmp_path / "held"
    for rel in (LATE_SONG, Path("log_data/2018/11/2018-11-30-events.json")):
        (held / rel).parent.mkdir(parents=True, exist_ok=True)
        (sample_copy / rel).rename(held / rel)
    run_json(*args(sample_copy, root))
    assert not [r for r in read_duckdb(str(root), "songplays") if r[4] is not None]
    keys_before = play_key_files(root)
    read: list[str] = []
    original = lake_merge.dataset
    monkeypatch.setattr(lake_merge, "dataset", lambda layout, table, *rest: read.append(table.name)
                        or original(layout, table, *rest))

    (held / "log_data/2018/11/2018-11-30-events.json").rename(sample_copy / "log_data/2018/11/2018-11-30-events.json")
    run_json(*args(sample_copy, root))  # a day of plays and no song: the play keys gain a file, none is read
    assert "_sparkify_play_keys" not in read
    keys_after = play_key_files(root)
    assert {k: v for k, v in keys_after.items() if k in keys_before} == keys_before
    assert len(keys_after) == len(keys_before) + 1

    read.clear()
    (held / LATE_SONG).rename(sample_copy / LATE_SONG)
    summary = run_json(*args(sample_copy, root))  # the song: its play is matched, the play keys stay as they are
    assert summary["files"]["songs"]["new"] == 1 and "_sparkify_play_keys" in read
    assert play_key_files(root) == keys_after
    matched = [r for r in read_duckdb(str(root), "songplays") if r[4] is not None]
    assert [(r[4], r[5]) for r in matched] == [("SOZCTXZ12AB0182364", "AR5KOSW1187FB35FF4")]
    full = full_lake(tmp_path, sample_copy)
    assert star_rows(f"lake://{root}") == star_rows(f"lake://{full}")
    assert {t: read_duckdb(str(root), t) for t in COUNTS} == {t: read_duckdb(full, t) for t in COUNTS}
    before = digests(root, [t.name for t in TABLES.values() if t.name != "_sparkify_runs"])
    run_json(*args(sample_copy, root))
    assert digests(root, [t.name for t in TABLES.values() if t.name != "_sparkify_runs"]) == before


def test_a_replaced_song_record_moves_its_song_to_its_new_partition(tmp_path, sample_copy):
    root = tmp_path / "lake"
    run_json(*args(sample_copy, root))
    old = root / "songs" / f"year={NULL_PARTITION}" / "artist_id=AR5KOSW1187FB35FF4"
    assert list(old.glob("*.parquet"))
    record = json.loads((sample_copy / LATE_SONG).read_text())
    record.update(year=2001, artist_id="ARNEW1187FB35FF4", artist_name="Elena Nova")
    (sample_copy / LATE_SONG.parent / "AAAA-corrected.json").write_text(json.dumps(record))  # a smaller file
    summary = run_json(*args(sample_copy, root))
    assert summary["accounting"]["songs"]["loaded"] == 0  # the song is not new: its record is replaced
    songs = read_duckdb(str(root), "songs")
    assert [r for r in songs if r[0] == "SOZCTXZ12AB0182364"] == [
        ("SOZCTXZ12AB0182364", "Setanta matins", "ARNEW1187FB35FF4", 2001, 269.58322)]
    assert not old.exists() or not list(old.glob("*.parquet"))
    assert list((root / "songs" / "year=2001" / "artist_id=ARNEW1187FB35FF4").glob("*.parquet"))
    assert not [r for r in read_duckdb(str(root), "songplays") if r[4] is not None]  # its play no longer fits
    assert "AR5KOSW1187FB35FF4" not in {r[0] for r in read_duckdb(str(root), "artists")}
    full = full_lake(tmp_path, sample_copy)
    assert star_rows(f"lake://{root}") == star_rows(f"lake://{full}")
    assert {t: read_duckdb(str(root), t) for t in COUNTS} == {t: read_duckdb(full, t) for t in COUNTS}
    folders = {str(p.parent.relative_to(root)) for p in (root / "songs").rglob("*.parquet")}
    assert folders == {str(p.parent.relative_to(full)) for p in (Path(full) / "songs").rglob("*.parquet")}


def test_a_lake_without_the_keys_of_late_songs_needs_a_full_refresh(tmp_path, sample_copy, capsys):
    root = tmp_path / "lake"
    run_json(*args(sample_copy, root))
    (path,) = (root / "_sparkify_song_records").rglob("*.parquet")  # as an earlier sparkify wrote it
    pq.write_table(pq.read_table(path).drop_columns(["source_file", "line"]), path)
    _december_copy(sample_copy)
    code, _ = run_cli("run", *args(sample_copy, root))
    message = error_text(capsys)
    assert code == 1 and "_sparkify_song_records.line" in message and "--full-refresh" in message
    run_json(*args(sample_copy, root, "--full-refresh"))
    assert star_rows(f"lake://{root}") == star_rows(f"lake://{full_lake(tmp_path, sample_copy)}")


def test_compact_layout_partitions_songs_by_year_only(tmp_path, sample, capsys):
    root = tmp_path / "lake"
    summary = run_json(*args(sample, f"{root}?layout=compact&compression=zstd"))
    assert summary["tables"] == COUNTS
    years = {year for year, _ in song_partitions(sample)}
    folders = {p.parent.name for p in (root / "songs").rglob("*.parquet")}
    assert folders == {f"year={NULL_PARTITION if y is None else y}" for y in years}
    assert len(list((root / "songs").rglob("*.parquet"))) == len(years) < len(song_partitions(sample))
    song_file = pq.ParquetFile(next((root / "songs").rglob("*.parquet")))
    assert "artist_id" in song_file.schema_arrow.names
    assert song_file.metadata.row_group(0).column(0).compression == "ZSTD"
    assert len(read_duckdb(str(root), "songs")) == COUNTS["songs"]
    code, _ = run_cli("run", *args(sample, f"{root}?layout=hive"))
    assert code == 1 and "needs --full-refresh" in error_text(capsys)
    run_json(*args(sample, f"{root}?layout=hive", "--full-refresh"))
    assert len({p.parent for p in (root / "songs").rglob("*.parquet")}) == len(song_partitions(sample))


def test_a_failure_mid_publish_leaves_the_previous_version(tmp_path, sample_copy, monkeypatch):
    root = tmp_path / "lake"
    run_json(*args(sample_copy, root))
    before = {t: read_duckdb(str(root), t) for t in COUNTS}
    trees = sorted(p.relative_to(root) for p in (root / "_tables").glob("*/*"))
    _december_copy(sample_copy)
    original, calls = lake_module.write_parquet, []

    def failing(reader, layout, table, *rest):
        calls.append(table.name)
        if table.name == "_sparkify_files":  # the star tables are written by now
            raise OSError("disk full (injected)")
        return original(reader, layout, table, *rest)

    monkeypatch.setattr(lake_module, "write_parquet", failing)
    code, _ = run_cli("run", *args(sample_copy, root))
    assert code == 1 and "songplays" in calls
    assert {t: read_duckdb(str(root), t) for t in COUNTS} == before
    assert sorted(p.relative_to(root) for p in (root / "_tables").glob("*/*")) == trees  # nothing left over
    monkeypatch.undo()
    summary = run_json(*args(sample_copy, root))
    assert summary["files"]["logs"]["new"] == 1
    assert len(read_duckdb(str(root), "songplays")) > COUNTS["songplays"]


def start_paused(flag: Path, store: str, *cli_args) -> subprocess.Popen:
    """Start a run that stops right before its commit; wait until it is there."""
    proc = subprocess.Popen([sys.executable, "-c", PAUSE_AT_COMMIT, str(flag), store, *map(str, cli_args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not flag.exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "the paused run never reached its commit"
        time.sleep(0.05)
    return proc


def kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stderr.close()


def test_sigkill_before_the_commit_leaves_the_previous_version(tmp_path, sample_copy, capsys):
    root = tmp_path / "lake"
    run_json(*args(sample_copy, root))
    before = {t: read_duckdb(str(root), t) for t in COUNTS}
    _december_copy(sample_copy)
    flag = tmp_path / "paused"
    proc = start_paused(flag, "LocalStore", "run", *args(sample_copy, root))
    try:
        new_trees = list((root / "_tables").glob(f"*/{flag.read_text()}"))
        assert new_trees and any(p.rglob("*.parquet") for p in new_trees)  # its files are written...
        assert {t: read_duckdb(str(root), t) for t in COUNTS} == before  # ...and no reader sees them
        code, _ = run_cli("run", *args(sample_copy, f"{root}?lock_timeout=1"))
        assert code == 1
        assert "locked by another sparkify run" in error_text(capsys)
    finally:
        kill(proc)
    assert {t: read_duckdb(str(root), t) for t in COUNTS} == before
    summary = run_json(*args(sample_copy, root))
    assert summary["files"]["logs"] == {"new": 1, "skipped": 30}
    assert not list((root / "_tables").glob(f"*/{flag.read_text()}"))  # the killed run's files are gone
    assert len(read_duckdb(str(root), "songplays")) == COUNTS["songplays"] + summary["accounting"]["events"][
        "loaded"]


def test_a_killed_holder_never_blocks_the_next_run(tmp_path, sample):
    """The lock is an flock: the kernel releases it with the killed process."""
    root = tmp_path / "lake"
    flag = tmp_path / "paused"
    kill(start_paused(flag, "LocalStore", "run", *args(sample, root)))
    assert not os.path.lexists(root / "_current")
    summary = run_json(*args(sample, f"{root}?lock_timeout=5"))
    assert summary["tables"] == COUNTS


def test_lake_files_lists_exactly_what_a_plain_reader_finds_between_runs(loaded):
    root = Path(loaded["lake"])
    for table in (*STAR, *STATE):
        folder = "_rejects" if table.name == "rejects" else table.name
        plain = {os.path.realpath(p) for p in (root / folder).rglob("*.parquet")}
        assert plain and plain == set(lake_module.lake_files(str(root), table.name)), table.name
