"""Targets by URL: which package stores the star for a given --target.

| --target                                  | target                 |
|-------------------------------------------|------------------------|
| `duckdb://path`, or a bare path `*.duckdb` | DuckDB file            |
| `postgresql://...` (`postgres://...`)     | PostgreSQL             |
| `redshift://...`                          | Redshift               |
| `lake://path`, `file://path`, `s3://...`  | Parquet lake           |
| a bare path to an existing lake directory  | that Parquet lake      |

Any other bare path is refused: a misspelled `warehouse.db` must not quietly
become a new lake directory. Adding a target means adding a package and a
line to TARGETS; no engine changes.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from sparkify.errors import ConfigError
from sparkify.targets.base import Target, TargetError

TARGETS: list[tuple[Callable[[str], bool], str, str, str | None]] = [
    (lambda url: url.startswith(("postgresql://", "postgres://")), "sparkify.targets.postgres", "PostgresTarget",
     "postgres"),
    (lambda url: url.startswith("redshift://"), "sparkify.targets.redshift", "RedshiftTarget", "redshift"),
    (lambda url: url.startswith("duckdb://") or "://" not in url and url.partition("?")[0].endswith(".duckdb"),
     "sparkify.targets.duckdb", "DuckDBTarget", None),
    (lambda url: url.startswith(("s3://", "lake://", "file://")) or "://" not in url,
     "sparkify.targets.lake", "LakeTarget", None),
]
"""(matches the URL, package, class, the extra that installs what it imports)."""

LOCAL_SCHEMES = ("duckdb://", "lake://", "file://")
"""Schemes that only say which target a local path is: the target receives the bare path."""


def _is_lake(path: str) -> bool:
    """An existing local directory a sparkify lake was written to (it has a versions folder)."""
    from sparkify.targets.lake.store import LocalStore

    return os.path.isdir(os.path.join(path, LocalStore.VERSIONS)) or os.path.islink(
        os.path.join(path, LocalStore.CURRENT))


def local_path(url: str) -> str:
    """The target's URL as its package takes it: `duckdb://`, `lake://` and `file://` removed.

    A bare path must end in .duckdb or be an existing lake: anything else is a ConfigError."""
    for scheme in LOCAL_SCHEMES:
        if url.startswith(scheme):
            path = url[len(scheme):]
            if not path.partition("?")[0]:
                raise ConfigError(f"--target {url}: no path after {scheme}")
            return path
    if "://" in url or url.partition("?")[0].endswith(".duckdb") or _is_lake(url.partition("?")[0]):
        return url
    raise ConfigError(f"--target {url!r} is neither a .duckdb file nor an existing sparkify lake: "
                      f"say which with --target duckdb://{url} (a DuckDB file) or --target lake://{url} "
                      "(a Parquet lake)")


def open_target(url: str, options: dict | None = None) -> Target:
    """The target for a --target value; `options` come from the [target] config section."""
    for matches, module, cls, extra in TARGETS:
        if matches(url):
            path = local_path(url)
            try:
                target_cls = getattr(importlib.import_module(module), cls)
            except ModuleNotFoundError as exc:
                hint = f": pip install 'sparkify[{extra}]'" if extra else ""
                raise TargetError(f"the target for {url.split('://')[0]} needs {exc.name}{hint}") from exc
            return target_cls.from_url(path, options or {})
    raise ConfigError(f"unknown target {url!r}: use a .duckdb path or duckdb://, postgresql://, redshift://, "
                      "lake:// (or file://) or s3://")
