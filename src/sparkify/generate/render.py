"""Event log lines, byte for byte like the real files, built column-wise with Arrow.

A line is the concatenation of nine pieces, each looked up (`take`) in a
table or cast from a number column, joined row-wise by Arrow in C. Joining
costs about 70 ns per piece and row and dominates, so pieces are as few and
as large as the field order allows; the tables are small (names, metro areas,
agents, songs) or per day (one row per session), which keeps lookups in the
CPU cache. Fields keep the real files' order (alphabetical) and form: compact
JSON, ASCII with \\u escapes, slashes escaped, registration as a float,
userId as text.

    {"artist":..              song, form           (static)
    ,"auth":..,"firstName":..,"gender":..,"itemInSession":N    first name x item
    ,"lastName":..,"length":  last name            (static)
    LENGTH                    song                 (static)
    ,"level":..,"location":..,"method":..,"page":..,"registration":   level x place x page
    REG,"sessionId":ID        session, logged out  (per day)
    ,"song":..,"status":S,"ts":   song or page     (static)
    TS                        cast
    ,"userAgent":..,"userId":".."}\\n   session, logged out (per day)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sparkify.generate import params, vocab
from sparkify.generate.population import FIRST_NAMES, Users
from sparkify.generate.sessions import ITEM_LIMIT, DayEvents
from sparkify.generate.songtext import LOG_MOJIBAKE_ONCE, LOG_MOJIBAKE_TWICE, SongModel, json_text

FORMS = (LOG_MOJIBAKE_ONCE, LOG_MOJIBAKE_TWICE)
"""The forms a play's title and artist go out in; DayEvents.form holds one of them."""


def _table(values: list[str]) -> pa.Array:
    return pa.array(values, type=pa.string())


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _field(name: str, values: list[str]) -> pa.Array:
    """A text field's `"name":"value"` piece for each value, then `"name":null` for a missing one."""
    return _table([f'"{name}":"{json_text(v)}"' for v in values] + [f'"{name}":null'])


def _repeat(values: pa.Array, times: int) -> pa.Array:
    """Each value `times` times in a row: value i at rows i * times ... (i + 1) * times - 1."""
    return values.take(pa.array(np.repeat(np.arange(len(values)), times)))


def _tile(values: pa.Array, times: int) -> pa.Array:
    return pa.concat_arrays([values] * times)


@dataclass
class DayTables:
    """Pieces that depend on the session: rows 2 * (session - first) + logged_out."""

    first_session: int
    registration: pa.Array
    agent: pa.Array


class LineRenderer:
    def __init__(self, users: Users, model: SongModel):
        self.users = users
        self.model = model
        self.mojibake: Counter = Counter()
        """Plays whose artist or title went out mis-decoded (mojibake), so far."""
        genders = ["F"] * len(vocab.FEMALE_NAMES) + ["M"] * len(vocab.MALE_NAMES)
        first = _table([f',"auth":"Logged In","firstName":"{n}","gender":"{g}","itemInSession":'
                        for n, g in zip(FIRST_NAMES, genders)]
                       + [',"auth":"Logged Out","firstName":null,"gender":null,"itemInSession":'])
        items = pc.cast(pa.array(np.arange(ITEM_LIMIT)), pa.string())
        self.first_item = _join(_repeat(first, ITEM_LIMIT), _tile(items, len(first)))
        self.last = _join(",", _field("lastName", list(vocab.LAST_NAMES)), ',"length":')
        self.places = len(users.locations) + 1
        level_place = _join(_repeat(_table([',"level":"free",', ',"level":"paid",']), self.places),
                            _tile(_field("location", users.locations), 2), ',"method":"')
        pages = _table([f'{method}","page":"{name}","registration":' for name, method, _ in params.PAGES])
        self.level_place_page = _join(_repeat(level_place, len(pages)), _tile(pages, len(level_place)))
        self.user_agent = _join(",", _field("userAgent", users.agents), ',"userId":"')
        self.artist, self.song_status, self.artist_mojibake, self.song_mojibake = self._song_tables()
        self.length = pa.concat_arrays([pc.cast(pa.array(model.durations_table), pa.string()), _table(["null"])])

    def _song_tables(self):
        """artist and song+status fields for every song row in each of FORMS, then those of non-plays."""
        artists = [self.model.artist_names(form) for form in FORMS]
        titles = [self.model.titles(form) for form in FORMS]
        artist = pa.concat_arrays([_join('{"artist":"', v, '"') for v in artists] + [_table(['{"artist":null'])])
        play_status = next(status for name, _, status in params.PAGES if name == "NextSong")
        song = pa.concat_arrays([_join(',"song":"', v, f'","status":{play_status},"ts":') for v in titles]
                                + [_table([f',"song":null,"status":{status},"ts":' for _, _, status in params.PAGES])])
        flags = [np.concatenate([pc.match_substring(v, "\\u00c3").to_numpy(zero_copy_only=False) for v in values])
                 for values in (artists, titles)]
        return artist, song, flags[0], flags[1]

    def day_tables(self, day: DayEvents) -> DayTables:
        """The per-session pieces of a day: registration and sessionId; userAgent and userId."""
        if not len(day):
            return DayTables(0, _table([]), _table([]))
        first = int(day.session_id.min())
        user = np.full(int(day.session_id.max()) - first + 1, -1, dtype=np.int64)
        user[day.session_id - first] = day.user
        known = user >= 0
        u = self.users
        rows = np.stack([np.where(known, user, u.count), np.full(len(user), u.count)], axis=1).ravel()
        agents = np.stack([np.where(known, u.agent[np.maximum(user, 0)], len(u.agents)),
                           np.full(len(user), len(u.agents))], axis=1).ravel()
        known_rows = pa.array(rows < u.count)
        ids = pc.if_else(known_rows, pc.cast(pa.array(rows + 1), pa.string()), "")
        registration = u.registration[np.minimum(rows, u.count - 1)]
        registration = pc.if_else(known_rows, _join(pc.cast(pa.array(registration), pa.string()), ".0"), "null")
        sessions = pc.cast(pa.array(np.repeat(first + np.arange(len(user)), 2)), pa.string())
        return DayTables(
            first,
            _join(registration, ',"sessionId":', sessions),
            _join(self.user_agent.take(pa.array(agents)), ids, '"}\n'),
        )

    def lines(self, day: DayEvents, tables: DayTables) -> pa.Array:
        """One line per event, each ending in a newline, as one Arrow string array."""
        u = self.users
        out = day.logged_out | (day.user < 0)
        user = np.where(out, 0, day.user)
        plays = day.song_kind >= 0
        title, artist, duration = self.model.rows(day.song_kind, day.song_key)
        second = (day.form == FORMS[1]).astype(np.int64)
        half = (len(self.artist) - 1) // 2
        artist = np.where(plays, artist + second * half, 2 * half)
        half = (len(self.song_status) - len(params.PAGES)) // 2
        song = np.where(plays, title + second * half, 2 * half + day.page.astype(np.int64))
        self.mojibake["artist"] += int(self.artist_mojibake[artist[plays]].sum())
        self.mojibake["song"] += int(self.song_mojibake[song[plays]].sum())
        first = np.where(out, len(FIRST_NAMES), u.first[user]).astype(np.int64)
        place = np.where(out, self.places - 1, u.location[user])
        session = 2 * (day.session_id - tables.first_session) + out
        return _join(
            self.artist.take(pa.array(artist)),
            self.first_item.take(pa.array(first * ITEM_LIMIT + day.item)),
            self.last.take(pa.array(np.where(out, len(vocab.LAST_NAMES), u.last[user]))),
            self.length.take(pa.array(np.where(plays, duration, len(self.length) - 1))),
            self.level_place_page.take(pa.array((day.level.astype(np.int64) * self.places + place)
                                                * len(params.PAGES) + day.page.astype(np.int64))),
            tables.registration.take(pa.array(session)),
            self.song_status.take(pa.array(song)),
            pc.cast(pa.array(day.ts), pa.string()),
            tables.agent.take(pa.array(session)),
        )
