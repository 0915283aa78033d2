"""write synthetic song_data/ and log_data/ shaped like the real sample, at any scale (optionally dirty)

`sparkify generate --out DIR --events N` writes the song catalogue (one JSON
file per song, A/B/C/TR....json), one log file per day, and DIR/manifest.json
with the accounting a correct run must report and, with --dirty, every
planted reject. Same options and seed, same bytes. See docs/generate.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from sparkify.generate import params


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a rate between 0 and 1, not {text}")
    return value


def _count(text: str) -> int:
    value = int(float(text.replace("_", "").lower().replace("k", "e3").replace("m", "e6")))
    if value < 0:
        raise argparse.ArgumentTypeError(f"a count of at least 0, not {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="directory to write song_data/, log_data/ and manifest.json")
    parser.add_argument("--events", required=True, type=_count, metavar="N",
                        help="log events to write (e.g. 100000, 1m)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="same seed and options, same bytes (default 0)")
    parser.add_argument("--songs", type=_count, default=params.CATALOGUE_SONGS, metavar="M",
                        help=f"songs in the catalogue (default {params.CATALOGUE_SONGS:,}, the original's)")
    parser.add_argument("--days", type=int, default=30, metavar="D", help="days of logs, one file each (default 30)")
    parser.add_argument("--users", type=_count, metavar="U", help="users (default: the sample's 97 per 8,056 events)")
    parser.add_argument("--match-rate", type=_rate, default=params.MATCH_RATE, metavar="R",
                        help=f"share of plays drawn from the catalogue (default {params.MATCH_RATE})")
    parser.add_argument("--dirty", type=_rate, default=0.0, metavar="RATE",
                        help="plant rejects and absorbable mess at this rate of the records (default 0)")
    parser.add_argument("--json", action="store_true", help="print the manifest on stdout")


def main(args: argparse.Namespace) -> int:
    from sparkify.generate.dataset import Options, generate  # numpy only when generating

    if args.days < 1:
        raise ValueError("--days must be at least 1")
    options = Options(events=args.events, seed=args.seed, songs=args.songs, days=args.days, users=args.users,
                      match_rate=args.match_rate, dirty=args.dirty)
    manifest = generate(Path(args.out), options)
    console = Console(stderr=True)
    files, seconds = manifest["files"], manifest["seconds"]
    console.print(
        f"wrote {files['songs']:,} song files and {files['logs']:,} log files "
        f"({files['log_bytes'] / 1e6:,.1f} MB, {manifest['expected']['events']['read']:,} events, "
        f"{len(manifest['rejects']):,} planted rejects) to {args.out} in {seconds['total']:.1f} s; "
        f"logs: {options.events / max(seconds['logs'], 1e-9):,.0f} events/s, "
        f"{options.events / max(seconds['logs_cpu'], 1e-9):,.0f} per CPU second"
    )
    if args.json:
        sys.stdout.write(json.dumps(manifest) + "\n")
    return 0
