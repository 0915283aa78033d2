"""A run killed at any moment leaves its target as before the run or as after it, never a mix.

Each trial starts from a fresh target holding the first half of the sample
(a copy of one that a real run loaded), starts the run that adds the second
half, and SIGKILLs it at a moment drawn from a seeded RNG, spread over the
duration of that run measured once per target.
The default run does a few kills per target; `-m slow` does 50 per target
and records the outcomes in RELIABILITY.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TARGET_KINDS
from tests.killharness import (
    PHASES_HEADER,
    TRIALS_HEADER,
    Campaign,
    Scenario,
    Targets,
    failures,
    phases_row,
    stamp,
    trials_row,
    write_rows,
)

SEED = int(os.environ.get("SPARKIFY_KILL_SEED", "20261122"))
KILLS = 3
KILLS_SLOW = 50
FIRST_LOAD_KILLS = 4
FIRST_LOAD_KILLS_SLOW = 30
S3_LEASE = 3
"""Seconds: a killed run cannot release its S3 lock, so trials use a short lease instead of waiting a minute."""


@pytest.fixture()
def scenario(sample: Path, tmp_path: Path) -> Scenario:
    return Scenario.build(sample, tmp_path / "scenario")


@pytest.fixture()
def make_target(request, tmp_path: Path) -> Iterator[Targets]:
    targets = Targets(request, request.node.callspec.params["kind"], tmp_path / "targets", f"?lock_lease={S3_LEASE}")
    yield targets
    targets.close()


def _campaign(kind: str, scenario: Scenario, make_target, tmp_path: Path, count: int):
    campaign = Campaign(kind, scenario, make_target, tmp_path / "runs")
    ref = campaign.reference()
    assert ref.before.star["songplays"] and ref.before.rejects, "the first half must leave rows and rejects"
    assert ref.before.star != ref.after.star and ref.before.rejects != ref.after.rejects
    assert ref.before.runs == 1 and ref.after.runs == 2
    return campaign.run(count, SEED + TARGET_KINDS.index(kind), ref=ref)


@pytest.mark.parametrize("kind", TARGET_KINDS)
def test_a_killed_run_leaves_the_state_before_or_after(kind, scenario, make_target, tmp_path):
    trials = _campaign(kind, scenario, make_target, tmp_path, KILLS)
    assert any(t.killed for t in trials), "no kill landed while the run was working"
    assert not failures(trials), failures(trials)


@pytest.mark.slow
@pytest.mark.parametrize("kind", TARGET_KINDS)
def test_fifty_kills_per_target(kind, scenario, make_target, tmp_path):
    trials = _campaign(kind, scenario, make_target, tmp_path, KILLS_SLOW)
    write_rows("kills", (*TRIALS_HEADER, "seed", "measured"),
               [[*trials_row(kind, trials), SEED + TARGET_KINDS.index(kind), stamp()]])
    write_rows("kill-phases", PHASES_HEADER, [phases_row(kind, trials)])
    assert not failures(trials), failures(trials)


def _first_load_campaign(scenario: Scenario, make_target: Targets, tmp_path: Path, count: int):
    """Kills aimed at the load of a first load whose songplays and time are built on side connections."""
    config = tmp_path / "aside.toml"
    config.write_text("[target]\nparallel_load_above = 0\n")
    campaign = Campaign("postgres", scenario, make_target, tmp_path / "runs", env={"SPARKIFY_CONFIG": str(config)},
                        first_load=True)
    ref = campaign.reference()
    assert not ref.before.star["songplays"] and ref.after.star["songplays"]
    trials = campaign.run(count, SEED, ref=ref, aims=("load",))
    assert any(t.killed for t in trials), "no kill landed while the run was working"
    import psycopg

    server = make_target.request.getfixturevalue("pg_server").rsplit("/", 1)[0]
    for db in make_target.databases:
        with psycopg.connect(f"{server}/{db}") as con:
            aside = con.execute(r"SELECT nspname FROM pg_namespace WHERE nspname LIKE '\_sparkify\_aside\_%'")
            assert not aside.fetchall(), f"{db}: the side schema outlived the next run"
    return trials


@pytest.mark.parametrize("kind", ["postgres"])
def test_a_killed_first_load_built_aside_leaves_the_empty_star_or_the_whole(kind, scenario, make_target, tmp_path):
    trials = _first_load_campaign(scenario, make_target, tmp_path, FIRST_LOAD_KILLS)
    assert not failures(trials), failures(trials)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["postgres"])
def test_thirty_kills_in_a_first_load_built_aside(kind, scenario, make_target, tmp_path):
    trials = _first_load_campaign(scenario, make_target, tmp_path, FIRST_LOAD_KILLS_SLOW)
    write_rows("kills", (*TRIALS_HEADER, "seed", "measured"),
               [[*trials_row("postgres, first load built aside", trials), SEED, stamp()]])
    assert not failures(trials), failures(trials)
