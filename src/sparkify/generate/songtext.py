"""Songs and artists as pure functions of an integer key: titles, names, durations.

A song is identified by (kind, key): kind CATALOGUE for the songs written to
song_data/, UNIVERSE for the million songs the logs play that are not in the
catalogue. Every attribute is a hash of the key, so the same song reads the
same in the song files and in every play without storing the universe, and
all of it vectorises over numpy arrays of keys.

Text is built from pieces (vocabulary words): each piece exists in four forms
(plain text for song files; JSON-escaped for logs, clean or mis-decoded once or
twice), and a piece's forms compose, because both JSON escaping and mojibake
work character by character.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sparkify.generate import params, vocab

CATALOGUE, UNIVERSE = 0, 1

RAW, LOG_CLEAN, LOG_MOJIBAKE_ONCE, LOG_MOJIBAKE_TWICE = range(4)
"""The forms of a piece: plain, and JSON-escaped for a log line after 0, 1 or 2 mis-decodings."""

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection on uint64 that scrambles every bit."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def uniform(keys: np.ndarray, salt: np.ndarray | int, field: int) -> np.ndarray:
    """A uniform [0, 1) float per key, independent for every (salt, field); salt may vary per row."""
    with np.errstate(over="ignore"):
        salted = (np.asarray(salt, dtype=np.uint64) << np.uint64(16)) + np.uint64(field)
        x = mix(np.asarray(keys, dtype=np.uint64) * _GOLDEN + salted * _M2)
    return (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def mojibake(text: str, rounds: int) -> str:
    """UTF-8 read as Latin-1, `rounds` times: what the real logs did to accented titles."""
    for _ in range(rounds):
        text = text.encode("utf-8").decode("latin-1")
    return text


def json_text(text: str) -> str:
    """A JSON string body the way the real logs write it: ASCII only, slashes escaped."""
    return json.dumps(text)[1:-1].replace("/", "\\/")


class Pieces:
    """A vocabulary in its four forms, plus an empty piece (the last index) for 'no piece here'."""

    def __init__(self, words: tuple[str, ...]):
        self.words = words
        self.empty = len(words)
        size = len(words) + 1
        forms = [
            list(words),
            [json_text(w) for w in words],
            [json_text(mojibake(w, 1)) for w in words],
            [json_text(mojibake(w, 2)) for w in words],
        ]
        self.size = size
        self.array = pa.array([w for form in forms for w in (*form, "")], type=pa.string())

    def take(self, index: np.ndarray, form: np.ndarray | int) -> pa.Array:
        rows = np.asarray(index, dtype=np.int64) + np.asarray(form, dtype=np.int64) * self.size
        return self.array.take(pa.array(rows))


def _choose(u: np.ndarray, ascii_count: int, accented_count: int, v: np.ndarray) -> np.ndarray:
    """An index into ASCII words followed by accented ones: accented with NON_ASCII_WORD_SHARE."""
    accented = u < params.NON_ASCII_WORD_SHARE
    return np.where(accented, ascii_count + (v * accented_count).astype(np.int64),
                    (v * ascii_count).astype(np.int64))


TITLE_WORDS = Pieces(vocab.TITLE_WORDS + vocab.TITLE_WORDS_ACCENTED)
TITLE_NEXT = Pieces(tuple(" " + w for w in vocab.TITLE_WORDS + vocab.TITLE_WORDS_ACCENTED))
TITLE_SUFFIX = Pieces(vocab.TITLE_SUFFIXES)
_FIRST = vocab.FEMALE_NAMES + vocab.MALE_NAMES
ARTIST_THE = Pieces(("The ",))
ARTIST_HEAD = Pieces(_FIRST + vocab.BAND_WORDS + vocab.ACCENTED_NAME_PARTS)
ARTIST_TAIL = Pieces(tuple(" " + w for w in vocab.LAST_NAMES + vocab.BAND_WORDS + vocab.ACCENTED_NAME_PARTS))
ARTIST_FEAT = Pieces(tuple(" feat. " + w for w in _FIRST))

TITLE_WORD_COUNT_SHARE = (0.25, 0.35, 0.25, 0.15)
TITLE_SUFFIX_SHARE = 0.10
BAND_SHARE = 0.55
FEAT_SHARE = 0.10
"""Title lengths and shapes: chosen to look like the sample's titles (1 to 4 words, some with a
version note); names: people ('First Last') and bands ('The Word Words'); a catalogue artist's
later songs name it differently one time in ten ('X feat. Y'), as the Million Song Dataset does."""


UNIVERSE_TITLES = 65_536
UNIVERSE_ARTISTS = 32_768
UNIVERSE_DURATIONS = 65_536
"""A song outside the catalogue takes its title, artist and duration from tables this big, by hashes of
its key: a million songs whose text is built once (98 k strings), so a play costs a lookup, not a build.
Distinct songs can share a title or an artist (as real ones do), practically never all three."""

_CAT_TITLE, _CAT_ARTIST, _CAT_PICK, _CAT_DURATION, _UNI_TITLE, _UNI_ARTIST, _UNI_PICK, _UNI_DURATION = range(8)
"""Salts: one independent stream of hashes per use."""


class SongModel:
    """Every attribute of a song from its (kind, key), for a catalogue size and a seed.

    Rows into the tables a renderer builds: titles and names are laid out as
    [catalogue songs | universe table], durations likewise.
    """

    def __init__(self, seed: int, catalogue_songs: int):
        self.seed = seed
        self.catalogue_songs = catalogue_songs
        self.catalogue_artists = max(1, round(catalogue_songs * params.ARTISTS_PER_SONG)) if catalogue_songs else 0
        keys = np.arange(catalogue_songs)
        pick = (self._u(keys, _CAT_PICK, 0) * max(self.catalogue_artists, 1)).astype(np.int64)
        self.catalogue_artist = np.where(keys < self.catalogue_artists, keys, pick)
        """The artist of each catalogue song: song j < artists is artist j, so every artist has a song."""
        variant = (keys >= self.catalogue_artists) & (self._u(keys, _CAT_PICK, 1) < FEAT_SHARE)
        self.feat = np.where(variant, (self._u(keys, _CAT_PICK, 2) * len(_FIRST)).astype(np.int64), ARTIST_FEAT.empty)
        """A catalogue artist's later song sometimes names it 'X feat. Y' (a spelling variant)."""
        self.durations_table = np.concatenate([
            self._durations(keys, _CAT_DURATION, params.DURATION_LOG),
            self._durations(np.arange(UNIVERSE_DURATIONS), _UNI_DURATION, params.PLAY_LENGTH_LOG)])

    def _u(self, keys: np.ndarray, salt: int, field: int) -> np.ndarray:
        return uniform(keys, (self.seed % 1_000_003) * 16 + salt, field)

    def _durations(self, keys: np.ndarray, salt: int, log_normal: tuple[float, float]) -> np.ndarray:
        """Seconds, 5 decimals, log-normal."""
        z = np.sqrt(-2.0 * np.log(1.0 - self._u(keys, salt, 0))) * np.cos(2.0 * np.pi * self._u(keys, salt, 1))
        return np.round(np.clip(np.exp(log_normal[0] + log_normal[1] * z), 15.0, 3000.0), 5)

    def _title_pieces(self, keys: np.ndarray, salt: int) -> list[tuple[Pieces, np.ndarray]]:
        n_words = np.searchsorted(np.cumsum(TITLE_WORD_COUNT_SHARE), self._u(keys, salt, 0), side="right") + 1
        pieces = []
        ascii_n, accented_n = len(vocab.TITLE_WORDS), len(vocab.TITLE_WORDS_ACCENTED)
        for i in range(4):
            index = _choose(self._u(keys, salt, 10 + i), ascii_n, accented_n, self._u(keys, salt, 20 + i))
            if i:
                index = np.where(n_words > i, index, TITLE_NEXT.empty)
            pieces.append((TITLE_NEXT if i else TITLE_WORDS, index))
        has_suffix = self._u(keys, salt, 30) < TITLE_SUFFIX_SHARE
        suffix = (self._u(keys, salt, 31) * len(vocab.TITLE_SUFFIXES)).astype(np.int64)
        pieces.append((TITLE_SUFFIX, np.where(has_suffix, suffix, TITLE_SUFFIX.empty)))
        return pieces

    def _artist_pieces(self, artists: np.ndarray, salt: int) -> list[tuple[Pieces, np.ndarray]]:
        band = self._u(artists, salt, 0) < BAND_SHARE
        the = band & (self._u(artists, salt, 1) < 0.5)
        n_first, n_band = len(_FIRST), len(vocab.BAND_WORDS)
        n_accented = len(vocab.ACCENTED_NAME_PARTS)
        accented_head = self._u(artists, salt, 2) < params.NON_ASCII_NAME_SHARE
        accented_tail = self._u(artists, salt, 3) < params.NON_ASCII_NAME_SHARE
        v_head, v_tail = self._u(artists, salt, 4), self._u(artists, salt, 5)
        head = np.where(band, n_first + (v_head * n_band).astype(np.int64), (v_head * n_first).astype(np.int64))
        head = np.where(accented_head, n_first + n_band + (v_head * n_accented).astype(np.int64), head)
        n_last = len(vocab.LAST_NAMES)
        tail = np.where(band, n_last + (v_tail * n_band).astype(np.int64), (v_tail * n_last).astype(np.int64))
        tail = np.where(accented_tail, n_last + n_band + (v_tail * n_accented).astype(np.int64), tail)
        tail = np.where(band & (self._u(artists, salt, 6) < 0.4), ARTIST_TAIL.empty, tail)
        return [(ARTIST_THE, np.where(the, 0, ARTIST_THE.empty)), (ARTIST_HEAD, head), (ARTIST_TAIL, tail)]

    @property
    def variant(self) -> np.ndarray:
        """Whether each catalogue song spells its artist's name differently."""
        return self.feat != ARTIST_FEAT.empty

    def titles(self, form: int, universe: bool = True) -> pa.Array:
        """Every title in one form: the catalogue's, then (if asked) the universe table's."""
        tables = [text(self._title_pieces(np.arange(self.catalogue_songs), _CAT_TITLE), form)]
        if universe:
            tables.append(text(self._title_pieces(np.arange(UNIVERSE_TITLES), _UNI_TITLE), form))
        return pa.concat_arrays(tables)

    def artist_names(self, form: int, universe: bool = True) -> pa.Array:
        """Every artist name songs carry in one form: the catalogue's, then (if asked) the universe table's."""
        catalogue = self._artist_pieces(self.catalogue_artist, _CAT_ARTIST) + [(ARTIST_FEAT, self.feat)]
        tables = [text(catalogue, form)]
        if universe:
            tables.append(text(self._artist_pieces(np.arange(UNIVERSE_ARTISTS), _UNI_ARTIST), form))
        return pa.concat_arrays(tables)

    def rows(self, kind: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each song's rows in the title, artist-name and duration tables."""
        catalogue = kind == CATALOGUE
        m = self.catalogue_songs
        title = np.where(catalogue, key, m + (self._u(key, _UNI_PICK, 0) * UNIVERSE_TITLES).astype(np.int64))
        artist = np.where(catalogue, key, m + (self._u(key, _UNI_PICK, 1) * UNIVERSE_ARTISTS).astype(np.int64))
        duration = np.where(catalogue, key, m + (self._u(key, _UNI_PICK, 2) * UNIVERSE_DURATIONS).astype(np.int64))
        return title, artist, duration

    def durations(self, kind: np.ndarray, key: np.ndarray) -> np.ndarray:
        return self.durations_table[self.rows(kind, key)[2]]


def text(pieces: list[tuple[Pieces, np.ndarray]], form: np.ndarray | int) -> pa.Array:
    """The concatenated pieces in one form, as an Arrow string array."""
    return pc.binary_join_element_wise(*(p.take(index, form) for p, index in pieces), "")
