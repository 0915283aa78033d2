"""The app's users: who they are, where, on what browser, and how often they come back.

A user's attributes are fixed for the whole dataset (as in the sample, where
every user has one name, location and agent); their level changes only
through Submit Upgrade / Submit Downgrade events (sessions.py).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from sparkify.generate import params, vocab


def from_quantiles(u: np.ndarray, quantiles: tuple[float, ...]) -> np.ndarray:
    """Inverse CDF through the profile's quantile points (linear between them)."""
    return np.interp(u, params.PROFILE_QUANTILES, quantiles)


def _metro(rnd: random.Random) -> str:
    cities = rnd.sample(vocab.CITIES, rnd.choice((1, 2, 2, 3)))
    states = rnd.sample(vocab.STATES, rnd.choice((1, 1, 1, 2, 3)))
    return f"{'-'.join(cities)}, {'-'.join(states)}"


def _agent(rnd: random.Random) -> str:
    family = rnd.choices(list(params.BROWSER_SHARE), weights=list(params.BROWSER_SHARE.values()))[0]
    platforms, template = vocab.AGENT_PLATFORMS[family]
    numbers = {
        "Chrome": {"major": rnd.choice((35, 36, 36, 37)), "build": rnd.choice((1916, 1985, 2062)),
                   "patch": rnd.choice((94, 102, 103, 125, 143, 153))},
        "Firefox": {"major": rnd.choice((30, 31, 31, 32))},
        "Safari": {"major": rnd.randint(1, 6), "build": rnd.choice((75, 77, 78)), "patch": rnd.randint(2, 14)},
        "iPhone": {"build": rnd.randint(100, 299)},
        "Trident": {"major": rnd.choice((9, 10)), "patch": rnd.choice((5, 6))},
    }[family]
    text = template.format(os=rnd.choice(platforms), **numbers)
    return f'"{text}"' if "," in text else text


def _pool(rnd: random.Random, make, size: int) -> list[str]:
    seen: dict[str, None] = {}
    for _ in range(size * 20):
        if len(seen) == size:
            break
        seen.setdefault(make(rnd), None)
    return list(seen)


def _zipf_weights(n: int) -> np.ndarray:
    """P(rank) ~ rank^-0.5: the sample's top metro holds 10 % of the users, its top agent 10 % too."""
    w = 1.0 / np.sqrt(np.arange(1, n + 1))
    return w / w.sum()


FIRST_NAMES = vocab.FEMALE_NAMES + vocab.MALE_NAMES


@dataclass
class Users:
    """One row per user; index u has userId u + 1. Text attributes are indices into small tables
    (names, metro areas, agents), which keeps rendering cache-friendly. `level` (0 free, 1 paid)
    is updated day by day."""

    first: np.ndarray  # into FIRST_NAMES; the female names come first
    last: np.ndarray  # into vocab.LAST_NAMES
    location: np.ndarray  # into locations
    agent: np.ndarray  # into agents
    registration: np.ndarray  # epoch ms; -1 until the user's first event (sessions.py sets it)
    level: np.ndarray
    weight: np.ndarray
    locations: list[str]
    agents: list[str]

    @property
    def count(self) -> int:
        return len(self.first)


def make_users(count: int, seed: int) -> Users:
    rng = np.random.default_rng([seed, 7])
    rnd = random.Random(f"sparkify-users-{seed}")
    metros = _pool(rnd, _metro, min(400, max(20, round(count * params.LOCATIONS_PER_USER))))
    agents = _pool(rnd, _agent, min(400, max(12, round(count * params.AGENTS_PER_USER))))
    female = rng.random(count) < params.FEMALE_SHARE
    first = np.where(female, rng.integers(0, len(vocab.FEMALE_NAMES), count),
                     len(vocab.FEMALE_NAMES) + rng.integers(0, len(vocab.MALE_NAMES), count))
    return Users(
        first=first,
        last=rng.integers(0, len(vocab.LAST_NAMES), count),
        location=rng.choice(len(metros), count, p=_zipf_weights(len(metros))),
        agent=rng.choice(len(agents), count, p=_zipf_weights(len(agents))),
        registration=np.full(count, -1, dtype=np.int64),
        level=(rng.random(count) < params.FIRST_LEVEL_PAID).astype(np.uint8),
        weight=rng.lognormal(0.0, params.USER_ACTIVITY_SIGMA, count),
        locations=metros,
        agents=agents,
    )
