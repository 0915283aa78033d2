"""A run killed at any moment leaves its target as before the run or as after it, never a mix.

Each trial loads the first half of the sample into a fresh target, starts
the run that adds the second half, and SIGKILLs it at a moment drawn from a
seeded RNG, spread over the duration of that run measured once per target.
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
