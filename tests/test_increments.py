"""Increments equal a full rebuild: any split of the files into runs, in any order, ends as one run over all.

The dataset is generated (songs matched by many plays, dirt, duplicates) and
given the cases an increment meets in life: a song record that replaces one
already loaded (a smaller file and line), a song with a smaller song_id that
takes plays over, a day delivered again under another name with other values
for some of its events, and a file overlapping two days. Hypothesis draws the
order of the files and the runs they arrive in; every target (and the
in-warehouse engine) must end with exactly the rows of one run over all the
files into a fresh target of its kind, and the accounting summed over the runs
must balance and count each play and song once.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sparkify
from bench.pgscratch import scratch_database
from tests.conftest import star_rows

KINDS = {
    "duckdb": (None, 6),
    "lake": (None, 3),
    "postgres": (None, 3),
    "s3lake": (None, 2),
    "warehouse-postgres": ("warehouse", 3),
}
"""Target kind -> (engine, examples drawn). Fewer examples where a run costs more."""


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8", errors="surrogateescape").splitlines()


def _events(path: Path) -> list[dict]:
    out = []
    for line in _lines(path):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            out.append(event)
    return out


def _write_json_lines(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A generated month in small, plus the late, replacing, redelivered and overlapping files."""
    root = tmp_path_factory.mktemp("increments")
    code, _ = _generate(root)
    assert code == 0
    logs = sorted((root / "log_data").rglob("*.json"))
    songs = sorted((root / "song_data").rglob("*.json"))
    plays = [e for e in _events(logs[0]) if e.get("page") == "NextSong" and e.get("song")]
    records = {}
    for path in songs:
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            continue
        if isinstance(record, dict) and all(isinstance(record.get(k), str)
                                            for k in ("song_id", "title", "artist_name")):
            records[(record.get("title"), record.get("artist_name"))] = record
    played = [records[(e["song"], e["artist"])] for e in plays if (e["song"], e["artist"]) in records]
    assert len(played) >= 2, "the generator's match rate should give matched plays"
    first, second = played[0], next(r for r in played if r["song_id"] != played[0]["song_id"])
    # a record of an existing song from a smaller path: it replaces the stored one, and its plays lose it
    _write_json_lines(root / "song_data" / "0" / "early.json", [{**first, "title": first["title"] + " (live)"}])
    # a smaller song_id fitting the plays of another song: they move to it, whenever it arrives
    _write_json_lines(root / "song_data" / "0" / "smaller.json", [{**second, "song_id": "SO0000000000000000"}])
    # a day again under another name, some events with other values (the rule keeps the smaller)
    again = []
    for n, event in enumerate(_events(logs[0])):
        if n % 3 == 0:
            event = {**event, "level": "paid" if event.get("level") == "free" else "free",
                     "location": "Zzz, ZZ", "firstName": "Aaa"}
        again.append(event)
    _write_json_lines(logs[0].parent / ("again-" + logs[0].name), again)
    # a file overlapping two days
    _write_json_lines(logs[1].parent / "overlap.json",
                      _events(logs[1])[len(_events(logs[1])) // 2:] + _events(logs[2])[:50])
    return root


def _generate(root: Path) -> tuple[int, str]:
    from tests.conftest import run_cli

    return run_cli("generate", "--out", root, "--events", "2500", "--songs", "60", "--days", "6",
                   "--match-rate", "0.6", "--dirty", "0.02", "--seed", "11")


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for d in ("song_data", "log_data") for p in (root / d).rglob("*.json"))


class Targets:
    """Fresh targets of one kind, and their clean-up."""

    def __init__(self, kind: str, request, stack: ExitStack):
        self.kind, self.request, self.stack = kind, request, stack
        self.dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sp-inc-")))

    def new(self) -> str:
        name = uuid.uuid4().hex[:8]
        if self.kind == "duckdb":
            return str(self.dir / f"{name}.duckdb")
        if self.kind == "lake":
            return f"lake://{self.dir / name}"
        if self.kind == "s3lake":
            return f"s3://{self.request.getfixturevalue('s3_bucket')}/{name}"
        server = self.request.getfixturevalue("pg_server")
        return self.stack.enter_context(scratch_database(server, prefix="t_inc_"))


def _deliver(root: Path, files: list[Path], into: Path) -> None:
    for rel in files:
        (into / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(root / rel, into / rel)


def _run(into: Path, target: str, engine: str | None) -> dict:
    summary = sparkify.run(str(into / "song_data"), str(into / "log_data"), target=target, engine=engine)
    return summary.accounting


@pytest.fixture(params=list(KINDS), ids=list(KINDS))
def kind(request):
    if request.param in ("postgres", "warehouse-postgres"):
        request.getfixturevalue("pg_server")
    if request.param == "s3lake":
        request.getfixturevalue("s3_endpoint")
    return request.param


def test_any_arrival_order_ends_as_one_full_run(kind, dataset, request):
    engine, examples = KINDS[kind]
    files = _files(dataset)
    with ExitStack() as stack:
        targets = Targets(kind.split("-")[-1], request, stack)
        whole = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sp-inc-src-")))
        (whole / "song_data").mkdir()
        (whole / "log_data").mkdir()
        _deliver(dataset, files, whole)
        full = targets.new()
        once = _run(whole, full, engine)
        expected = star_rows(full)
        assert sum(1 for row in expected["songplays"] if row[4] is not None) > 100

        @settings(max_examples=examples, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(order=st.permutations(files), cuts=st.lists(st.integers(1, len(files) - 1), max_size=3))
        def runs_in_any_order(order, cuts):
            target = targets.new()
            with tempfile.TemporaryDirectory(prefix="sp-inc-src-") as src:
                src = Path(src)
                (src / "song_data").mkdir()
                (src / "log_data").mkdir()
                totals: dict[str, dict[str, int]] = {}
                bounds = [0, *sorted(set(cuts)), len(order)]
                for start, end in zip(bounds, bounds[1:]):
                    _deliver(dataset, order[start:end], src)
                    for what, counts in _run(src, target, engine).items():
                        for name, n in counts.items():
                            if isinstance(n, int):
                                totals.setdefault(what, {}).setdefault(name, 0)
                                totals[what][name] += n
            assert star_rows(target) == expected
            for what, counts in totals.items():
                assert counts["read"] == (counts["loaded"] + counts.get("filtered", 0) + counts["duplicate"]
                                          + counts["rejected"]), what
                assert {k: v for k, v in counts.items()} == {k: v for k, v in once[what].items()
                                                              if isinstance(v, int)}, what

        runs_in_any_order()



def _drop_a_new_column(kind: str, target: str) -> None:
    """Make the target's state look as an earlier sparkify wrote it (no file and line per song record)."""
    sql = 'ALTER TABLE "_sparkify_song_records" DROP COLUMN "line"'
    if kind == "duckdb":
        import duckdb

        with duckdb.connect(target) as con:
            con.execute(sql)
    else:
        import psycopg

        with psycopg.connect(target, autocommit=True) as con:
            con.execute(sql)


@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_state_an_earlier_sparkify_wrote_needs_a_full_refresh(kind, sample_copy, tmp_path, request, capsys):
    """Its plays have no stored keys, so no increment could equal a rebuild: the run says so and writes
    nothing; a full refresh then rebuilds it."""
    from tests.conftest import new_target, run_cli, run_json

    target = new_target(kind, request, tmp_path)
    args = ("--songs", sample_copy / "song_data", "--logs", sample_copy / "log_data", "--target", target)
    run_json(*args)
    before = star_rows(target)
    _drop_a_new_column(kind, target)
    capsys.readouterr()
    code, _ = run_cli("run", *args)
    message = capsys.readouterr().err
    assert code == 1 and "_sparkify_song_records.line" in message and "--full-refresh" in message
    assert star_rows(target) == before
    run_json(*args, "--full-refresh")
    assert star_rows(target) == before
