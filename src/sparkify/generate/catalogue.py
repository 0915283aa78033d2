"""song_data/: one small JSON file per catalogue song, in the Million Song Dataset layout.

`song_data/A/B/C/TRABC....json` holds one object, written like the real files
(Python's json.dumps: ", " and ": " separators, ASCII with \\u escapes, no
final newline). Titles, names and durations come from songtext.SongModel, so
a play of catalogue song j in the logs carries exactly its title, artist name
and duration.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sparkify.generate import params, vocab
from sparkify.generate.dirt import REJECT_SONG_KINDS, Dirt
from sparkify.generate.population import from_quantiles
from sparkify.generate.songtext import RAW, SongModel, mix

_DIGITS = np.array(list("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
_LETTERS = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))


def _codes(keys: np.ndarray, salt: int) -> list[str]:
    """13 base-36 characters per key, distinct for distinct keys (mix is a bijection)."""
    x = mix(np.asarray(keys, dtype=np.uint64) ^ np.uint64(salt))
    digits = []
    for _ in range(13):
        digits.append(_DIGITS[(x % np.uint64(36)).astype(np.int64)])
        x //= np.uint64(36)
    return ["".join(chars) for chars in zip(*reversed(digits))]


def _letters(keys: np.ndarray, salt: int, count: int) -> list[str]:
    x = mix(np.asarray(keys, dtype=np.uint64) ^ np.uint64(salt))
    letters = []
    for _ in range(count):
        letters.append(_LETTERS[(x % np.uint64(26)).astype(np.int64)])
        x //= np.uint64(26)
    return ["".join(chars) for chars in zip(*letters)]


def _artist_places(count: int, seed: int) -> list[tuple[str, float | None, float | None]]:
    """(location, latitude, longitude) per catalogue artist, at the sample's shares of empty and located."""
    rnd = random.Random(f"sparkify-artists-{seed}")
    no_coordinates = params.ARTIST_LOCATED_WITHOUT_COORDINATES / (1 - params.ARTIST_LOCATION_EMPTY)
    places = []
    for _ in range(count):
        if rnd.random() < params.ARTIST_LOCATION_EMPTY:
            places.append(("", None, None))
            continue
        form = rnd.random()
        if form < 0.55:
            place, lat, lon = f"{rnd.choice(vocab.CITIES)}, {rnd.choice(vocab.STATES)}", (25, 49), (-124, -67)
        elif form < 0.8:
            place, lat, lon = f"{rnd.choice(vocab.CITIES)}, {rnd.choice(vocab.COUNTRIES)}", (-40, 65), (-120, 150)
        else:
            place, lat, lon = rnd.choice(vocab.COUNTRIES), (-40, 65), (-120, 150)
        if rnd.random() < no_coordinates:
            places.append((place, None, None))
        else:
            places.append((place, round(rnd.uniform(*lat), 5), round(rnd.uniform(*lon), 5)))
    return places


@dataclass
class CatalogueResult:
    files: int = 0
    records: int = 0
    rejected: int = 0
    duplicate: int = 0
    rejects: list[dict] = field(default_factory=list)
    mess: dict[str, int] = field(default_factory=dict)


def write_catalogue(root: Path, model: SongModel, seed: int, dirt: Dirt | None) -> CatalogueResult:
    count = model.catalogue_songs
    result = CatalogueResult()
    if not count:
        return result
    keys = np.arange(count)
    titles = model.titles(RAW, universe=False).to_pylist()
    names = model.artist_names(RAW, universe=False).to_pylist()
    durations = model.durations_table[:count].tolist()
    artists = model.catalogue_artist
    variant = model.variant
    artist_ids = [f"AR{a}{c}" for a, c in zip(_letters(artists, seed ^ 0xA7, 3), _codes(artists, seed ^ 0xA1))]
    song_ids = [f"SO{a}{c}" for a, c in zip(_letters(keys, seed ^ 0x57, 3), _codes(keys, seed ^ 0x51))]
    folders = _letters(keys, seed ^ 0x7F, 2)
    top = max(1, math.ceil(count / 10_000))
    tracks = [f"{chr(65 + (j * top) // count)}{f}" for j, f in enumerate(folders)]
    track_ids = [f"TR{t}{c}" for t, c in zip(tracks, _codes(keys, seed ^ 0x71))]
    rng = np.random.default_rng([seed, 5])
    unknown = rng.random(count) < params.YEAR_UNKNOWN_SHARE
    years = np.where(unknown, 0, np.rint(from_quantiles(rng.random(count), params.YEAR_QUANTILES))).astype(int)
    places = _artist_places(model.catalogue_artists, seed)
    blank_variant = rng.random(count) < 0.5
    plan = dirt.song_plan(count) if dirt else {}
    planned = sorted(plan)
    made: set[str] = set()
    spare = dict(zip(planned, _codes(np.array(planned, dtype=np.int64) + count, seed ^ 0x71)))
    for j in range(count):
        place, lat, lon = places[artists[j]]
        if variant[j] and blank_variant[j]:
            place, lat, lon = "", None, None
        record = {
            "num_songs": 1, "artist_id": artist_ids[j], "artist_latitude": lat, "artist_longitude": lon,
            "artist_location": place, "artist_name": names[j], "song_id": song_ids[j], "title": titles[j],
            "duration": durations[j], "year": int(years[j]),
        }
        folder = f"song_data/{tracks[j][0]}/{tracks[j][1]}/{tracks[j][2]}"
        if folder not in made:
            (root / folder).mkdir(parents=True, exist_ok=True)
            made.add(folder)
        action = plan.get(j)
        data = dirt.song_edit(action, record) if action else json.dumps(record).encode()
        (root / folder / f"{track_ids[j]}.json").write_bytes(data)
        result.files += 1
        result.records += 1
        if action in REJECT_SONG_KINDS:
            result.rejected += 1
            result.rejects.append({"file": f"{folder}/{track_ids[j]}.json", "line": 1, "kind": action})
        elif action:
            result.mess[action] = result.mess.get(action, 0) + 1
        if action in ("duplicate_file", "empty_file"):
            other = root / folder / f"TR{tracks[j]}{spare[j]}.json"
            other.write_bytes(data if action == "duplicate_file" else b"")
            result.files += 1
            result.records += action == "duplicate_file"
            result.duplicate += action == "duplicate_file"
    return result
