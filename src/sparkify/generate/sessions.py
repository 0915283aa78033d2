"""One day of app traffic as numpy arrays: sessions, pages, levels, songs, timestamps.

The model, with every rate from params.py: users come back with a weight of
their own; an active user has 1-5 sessions that day, whose length depends on
their level (paid sessions are ten times longer); pages are drawn from the
level's mix; a session may open logged out (Home, Login), and a Logout is
followed by a logged-out Home and, if the session goes on, a Login; Submit
Upgrade / Submit Downgrade flip the user's level from the next event on; a
play is followed by the next event when the song ends (or earlier: a skip);
sessions start at the sample's hours and never overlap for one user.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sparkify.generate import params
from sparkify.generate.population import Users, from_quantiles
from sparkify.generate.songtext import CATALOGUE, LOG_MOJIBAKE_ONCE, LOG_MOJIBAKE_TWICE, UNIVERSE, SongModel

PAGE_NAMES = [name for name, _, _ in params.PAGES]
P = {name: i for i, name in enumerate(PAGE_NAMES)}
PLAN, SUBMIT = 100, 101
"""Drawn before the level is known: rendered as Upgrade/Downgrade, Submit Upgrade/Submit Downgrade."""

ITEM_LIMIT = int(max(max(q) for q in params.SESSION_LENGTH_QUANTILES.values()))
"""No session is longer, so itemInSession < ITEM_LIMIT."""
DAY_SECONDS = 86_400
BREAK_SECONDS = 60
"""At least this long between two sessions of one user."""


def _mix(shares: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    codes = np.array([{"Plan": PLAN, "Submit": SUBMIT}.get(k, P.get(k, -1)) for k in shares])
    weights = np.array(list(shares.values()))
    return codes, np.cumsum(weights) / weights.sum()


_LOGGED_IN = [_mix(params.LOGGED_IN_PAGE_SHARE[level]) for level in ("free", "paid")]
_LOGGED_OUT = _mix(params.LOGGED_OUT_PAGE_SHARE)
_PER_DAY = (np.array(list(params.SESSIONS_PER_USER_DAY)), np.cumsum(list(params.SESSIONS_PER_USER_DAY.values())))
_BROWSE = (np.array(list(params.LOGGED_OUT_BROWSE)), np.cumsum(list(params.LOGGED_OUT_BROWSE.values())))
_ANON_LENGTH = (np.array(list(params.ANONYMOUS_SESSION_LENGTHS)),
                np.cumsum(list(params.ANONYMOUS_SESSION_LENGTHS.values())))
_HOUR_CDF = np.cumsum(params.HOUR_SHARE) / sum(params.HOUR_SHARE)


def _draw(rng: np.random.Generator, table: tuple[np.ndarray, np.ndarray], n: int) -> np.ndarray:
    values, cdf = table
    return values[np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n), side="right"), len(values) - 1)]


def popularity(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Song ranks with P(rank) ~ 1 / (rank + PLAY_POPULARITY_OFFSET), rank < size."""
    k0 = params.PLAY_POPULARITY_OFFSET
    ranks = np.floor(np.exp(rng.random(n) * np.log((size + k0) / k0)) * k0 - k0).astype(np.int64)
    return np.clip(ranks, 0, size - 1)


@dataclass
class DayEvents:
    """A day's events, sorted as the file lists them (by ts)."""

    ts: np.ndarray
    session_id: np.ndarray
    item: np.ndarray
    user: np.ndarray  # user index, -1 for a session that never logs in
    logged_out: np.ndarray
    level: np.ndarray  # 0 free, 1 paid
    page: np.ndarray  # index into params.PAGES
    song_kind: np.ndarray  # CATALOGUE, UNIVERSE, or -1 (not a play)
    song_key: np.ndarray
    form: np.ndarray  # the songtext form a play's title and artist are written in
    length: np.ndarray  # seconds; NaN when not a play

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, index: np.ndarray) -> DayEvents:
        return DayEvents(**{k: v[index] for k, v in self.__dict__.items()})


def _empty_day() -> DayEvents:
    ints = np.zeros(0, dtype=np.int64)
    return DayEvents(ints, ints, ints, ints, ints.astype(bool), ints.astype(np.uint8), ints.astype(np.int8),
                     ints.astype(np.int8), ints, ints.astype(np.uint8), ints.astype(np.float64))


@dataclass
class _Sessions:
    rank: np.ndarray  # groups one user's sessions (anonymous sessions: a group each)
    user: np.ndarray
    anonymous: np.ndarray
    level: np.ndarray
    length: np.ndarray
    start: np.ndarray

    def take(self, index: np.ndarray) -> _Sessions:
        return _Sessions(**{k: v[index] for k, v in self.__dict__.items()})


class DaySimulator:
    """Simulates day after day, carrying users' levels and the session counter."""

    def __init__(self, users: Users, model: SongModel, match_rate: float, seed: int):
        self.users = users
        self.model = model
        self.match_rate = match_rate if model.catalogue_songs else 0.0
        self.seed = seed
        self.next_session = 1

    def day(self, index: int, events: int, day_start_ms: int) -> DayEvents:
        rng = np.random.default_rng([self.seed, 1, index])
        if events == 0:
            return _empty_day()
        s = self._sessions(rng, events)
        n_sessions = len(s.length)
        sess = np.repeat(np.arange(n_sessions), s.length)
        first = np.cumsum(s.length) - s.length
        item = np.arange(events) - first[sess]
        page, logged_out = self._pages(rng, s, sess, first)
        level = self._levels(s, sess, first, page, logged_out)
        page = np.where(page == PLAN, np.where(level == 0, P["Upgrade"], P["Downgrade"]), page)
        page = np.where(page == SUBMIT, np.where(level == 0, P["Submit Upgrade"], P["Submit Downgrade"]), page)
        kind, key, form, length = self._songs(rng, page == P["NextSong"])
        ts = self._times(rng, s, sess, first, page, length, day_start_ms)
        session_id = np.empty(n_sessions, dtype=np.int64)
        session_id[np.argsort(s.start, kind="stable")] = self.next_session + np.arange(n_sessions)
        self.next_session += n_sessions
        day = DayEvents(ts, session_id[sess], item, s.user[sess], logged_out, level, page.astype(np.int8),
                        kind, key, form, length)
        return day.take(np.lexsort((day.item, day.session_id, day.ts)))

    def _sessions(self, rng: np.random.Generator, events: int) -> _Sessions:
        """Enough sessions for `events` events (the last one cut short), grouped by user."""
        users = self.users
        order = np.argsort(-(np.log(users.weight) + rng.gumbel(size=users.count)), kind="stable")
        batch = max(64, events // 8)
        parts, total, pos = [], 0, 0
        while total < events:
            ranks = np.arange(pos, min(pos + batch, users.count))
            pos = ranks[-1] + 1 if pos + batch < users.count else 0
            counts = _draw(rng, _PER_DAY, len(ranks))
            rank = np.repeat(ranks, counts)
            user = order[rank]
            anonymous = rng.random(len(rank)) < params.ANONYMOUS_SESSION_SHARE
            level = np.where(anonymous, rng.random(len(rank)) < 0.5, users.level[user]).astype(np.uint8)
            u = rng.random(len(rank))
            length = np.where(level == 1, from_quantiles(u, params.SESSION_LENGTH_QUANTILES["paid"]),
                              from_quantiles(u, params.SESSION_LENGTH_QUANTILES["free"]))
            length = np.where(anonymous, _draw(rng, _ANON_LENGTH, len(rank)), np.maximum(1, np.rint(length)))
            hour = np.searchsorted(_HOUR_CDF, rng.random(len(rank)), side="right")
            middle = np.minimum(hour, 23) * 3600 + rng.integers(0, 3600, len(rank))
            parts.append((rank, user, anonymous, level, length.astype(np.int64), middle))
            total += int(length.sum())
        rank, user, anonymous, level, length, start = (np.concatenate(c) for c in zip(*parts))
        last = int(np.searchsorted(np.cumsum(length), events))
        keep = slice(0, last + 1)
        s = _Sessions(rank[keep], user[keep], anonymous[keep], level[keep], length[keep].copy(), start[keep])
        s.length[-1] -= int(s.length.sum()) - events
        n = len(s.rank)
        s.rank = np.where(s.anonymous, users.count + np.arange(n), s.rank)
        s.user = np.where(s.anonymous, -1, s.user)
        return s.take(np.lexsort((s.start, s.rank)))

    def _pages(self, rng, s: _Sessions, sess, first) -> tuple[np.ndarray, np.ndarray]:
        n = len(sess)
        page = np.where(s.level[sess] == 1, _draw(rng, _LOGGED_IN[1], n), _draw(rng, _LOGGED_IN[0], n))
        anonymous = s.anonymous[sess]
        logged_out = anonymous.copy()
        page = np.where(anonymous, _draw(rng, _LOGGED_OUT, n), page)
        page[first[s.anonymous]] = P["Home"]
        end = first + s.length
        # a session that opens logged out: [Home,] Login, then Home logged in
        eligible = ~s.anonymous & (s.length >= 2)
        chance = params.SESSION_STARTS_LOGGED_OUT * (~s.anonymous).sum() / max(int(eligible.sum()), 1)
        opens = eligible & (rng.random(len(first)) < chance)
        with_home = opens & (s.length >= 3) & (rng.random(len(first)) < 0.5)
        for at, value, out in ((first[with_home], P["Home"], True), (first[with_home] + 1, P["Login"], True),
                               (first[with_home] + 2, P["Home"], False),
                               (first[opens & ~with_home], P["Login"], True),
                               (first[opens & ~with_home] + 1, P["Home"], False)):
            page[at] = value
            logged_out[at] = out
        # after a Logout: Home and a few more pages logged out, then Login and Home if the session goes on
        cand = np.flatnonzero((page == P["Logout"]) & ~logged_out)
        if len(cand):
            longest = max(params.LOGGED_OUT_BROWSE)
            near = (sess[cand[1:]] == sess[cand[:-1]]) & (cand[1:] - cand[:-1] <= 3 + longest)
            cand = cand[np.concatenate(([True], ~near))]
            stop = end[sess[cand]]
            browse = _draw(rng, _BROWSE, len(cand))
            relog = cand + 3 + browse < stop
            for step in range(1, longest + 4):
                at = cand + step
                inside = at < stop
                out_page = inside & ((step <= 1 + browse) | ((step == 2 + browse) & ~relog))
                login = inside & (step == 2 + browse) & relog
                back = inside & (step == 3 + browse) & relog
                drawn = _draw(rng, _LOGGED_OUT, len(cand))
                page[at[out_page]] = np.where(step == 1, P["Home"], drawn[out_page])
                logged_out[at[out_page]] = True
                page[at[login]], logged_out[at[login]] = P["Login"], True
                page[at[back]], logged_out[at[back]] = P["Home"], False
        # an upgrade or downgrade is confirmed from its page and followed by Home
        sub = np.flatnonzero((page == SUBMIT) & ~logged_out)
        before = sub[(sub > 0) & (sub - 1 >= first[sess[sub]])] - 1
        before = before[~logged_out[before] & (page[before] != SUBMIT)]
        page[before] = PLAN
        after = sub[sub + 1 < end[sess[sub]]] + 1
        after = after[~logged_out[after] & (page[after] != SUBMIT)]
        page[after] = P["Home"]
        return page, logged_out

    def _levels(self, s: _Sessions, sess, first, page, logged_out) -> np.ndarray:
        """Each event's level: the user's, flipped after every Submit; the users' levels move on."""
        flips = ((page == SUBMIT) & ~logged_out).astype(np.int64)
        before = np.cumsum(flips) - flips
        group_start = np.concatenate(([True], s.rank[1:] != s.rank[:-1]))
        group = np.cumsum(group_start) - 1
        group_first_event = first[np.flatnonzero(group_start)]
        event_group = group[sess]
        level = s.level[sess] ^ ((before - before[group_first_event][event_group]) & 1).astype(np.uint8)
        last_event = np.concatenate((group_first_event[1:], [len(sess)])) - 1
        real = s.user[np.flatnonzero(group_start)] >= 0
        final = level[last_event] ^ flips[last_event].astype(np.uint8)
        self.users.level[s.user[np.flatnonzero(group_start)][real]] = final[real]
        return level

    def _songs(self, rng, plays: np.ndarray):
        n = len(plays)
        kind = np.full(n, -1, dtype=np.int8)
        key = np.zeros(n, dtype=np.int64)
        form = np.zeros(n, dtype=np.uint8)
        length = np.full(n, np.nan)
        k = int(plays.sum())
        matched = rng.random(k) < self.match_rate
        catalogue = popularity(rng, k, max(self.model.catalogue_songs, 1))
        universe = popularity(rng, k, params.PLAY_UNIVERSE)
        twice = rng.random(k) < params.MOJIBAKE_ROUNDS_SHARE[2]
        kind[plays] = np.where(matched, CATALOGUE, UNIVERSE)
        key[plays] = np.where(matched, catalogue, universe)
        form[plays] = np.where(twice, LOG_MOJIBAKE_TWICE, LOG_MOJIBAKE_ONCE)
        length[plays] = self.model.durations(kind[plays], key[plays])
        return kind, key, form, length

    def _times(self, rng, s: _Sessions, sess, first, page, length, day_start_ms) -> np.ndarray:
        n = len(sess)
        gap = np.rint(from_quantiles(rng.random(n), params.GAP_QUANTILES)).astype(np.int64)
        whole = (page == P["NextSong"]) & (rng.random(n) < params.GAP_AFTER_WHOLE_SONG)
        gap[whole] = np.floor(length[whole]).astype(np.int64)
        before = np.cumsum(gap) - gap
        offset = before - before[first][sess]
        duration = offset[first + s.length - 1]
        # a session is centred on its drawn time; one user's sessions follow each other:
        # start_j = max(start_j, end_{j-1} + break)
        group_start = np.concatenate(([True], s.rank[1:] != s.rank[:-1]))
        group = np.cumsum(group_start) - 1
        span = duration + BREAK_SECONDS
        spent = np.cumsum(span) - span
        spent -= spent[np.flatnonzero(group_start)][group]
        big = 10 * DAY_SECONDS + int(spent.max(initial=0))
        start = np.maximum(s.start - duration // 2, 0)
        start = np.maximum.accumulate(start - spent + group * big) - group * big + spent
        # and end before midnight: shift a user's day earlier if needed
        overrun = np.maximum.reduceat(start + duration, np.flatnonzero(group_start)) - (DAY_SECONDS - 1)
        start = np.maximum(start - np.maximum(overrun, 0)[group], 0)
        s.start = start
        seconds = np.minimum(start[sess] + offset, DAY_SECONDS - 1)
        ts = day_start_ms + seconds * 1000 + params.TS_MILLIS
        self._register(rng, s, sess, ts)
        return ts

    def _register(self, rng, s: _Sessions, sess, ts) -> None:
        """Users seen for the first time registered some days before their first event."""
        users = s.user[sess]
        seen = users >= 0
        first_ts = np.full(self.users.count, np.iinfo(np.int64).max)
        np.minimum.at(first_ts, users[seen], ts[seen])
        new = np.flatnonzero((first_ts < np.iinfo(np.int64).max) & (self.users.registration < 0))
        days = from_quantiles(rng.random(len(new)), params.REGISTRATION_DAYS_QUANTILES)
        self.users.registration[new] = first_ts[new] - (days * 86_400).astype(np.int64) * 1000
