"""The inputs the benchmark runs on: the real sample, and generated data at chosen scales.

A scale is `sample` (the real files in ../shared/data/sparkify), `catalogue`
(the 14,896 song files and empty logs) or a number of events (`100k`, `1m`,
`10m`): `sparkify generate` writes it once under bench/data/<scale>-seed<seed>/
with the full 14,896-song catalogue, and later runs reuse it when its manifest
says it was made with the same options.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
DATA = BENCH / "data"
SAMPLE = Path(os.environ.get("SPARKIFY_SAMPLE", REPO.parent / "shared" / "data" / "sparkify"))
SAMPLE_EVENTS = 8056

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dataset:
    scale: str
    root: Path
    events: int
    songs: int
    input_bytes: int
    generated: dict | None = None
    """The generator's manifest (options, timings), for generated data."""

    @property
    def song_data(self) -> Path:
        return self.root / "song_data"

    @property
    def log_data(self) -> Path:
        return self.root / "log_data"

    def warm(self) -> None:
        """Read every input file once, so that the first scenario of a scale is not the one that pays for
        reading from disk into the page cache."""
        for path in sorted(self.root.rglob("*.json")):
            with path.open("rb") as f:
                while f.read(1 << 24):
                    pass


def parse_scale(text: str) -> int | None:
    """Events for a scale name: '100k' -> 100000, '1m' -> 1000000, 'catalogue' -> 0 (the songs alone);
    None for 'sample'."""
    text = text.strip().lower()
    if text == "sample":
        return None
    if text == "catalogue":
        return 0
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
    return int(float(text[:-1] if factor > 1 else text) * factor)


def _size(root: Path) -> tuple[int, int]:
    """(bytes, song files) of the inputs under root."""
    total = sum(p.stat().st_size for p in root.rglob("*.json") if p.name != "manifest.json")
    return total, sum(1 for _ in (root / "song_data").rglob("*.json"))


def ensure(scale: str, seed: int = 0) -> Dataset:
    """The dataset for a scale, generated now if it is not there yet (or was made otherwise)."""
    events = parse_scale(scale)
    if events is None:
        size, song_files = _size(SAMPLE)
        return Dataset("sample", SAMPLE, SAMPLE_EVENTS, song_files, size)
    root = DATA / f"{scale}-seed{seed}"
    manifest_path = root / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else None
    if manifest is None or (manifest["options"]["events"], manifest["options"]["seed"]) != (events, seed):
        shutil.rmtree(root, ignore_errors=True)
        log.info("generating %s events under %s", f"{events:,}", root)
        subprocess.run([sys.executable, "-m", "sparkify.cli", "generate", "--out", str(root), "--events", str(events),
                        "--seed", str(seed)], check=True, cwd=REPO)
        manifest = json.loads(manifest_path.read_text())
    size, song_files = _size(root)
    return Dataset(scale, root, manifest["expected"]["events"]["read"], song_files, size, manifest)
