"""Targets by URL: which package stores the star for a given --target.

Adding a target means adding a package and a line to TARGETS; no engine changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from sparkify.targets.base import Target, TargetError

TARGETS: list[tuple[Callable[[str], bool], str, str, str | None]] = [
    (lambda url: url.startswith(("postgresql://", "postgres://")), "sparkify.targets.postgres", "PostgresTarget",
     "postgres"),
    (lambda url: url.startswith("redshift://"), "sparkify.targets.redshift", "RedshiftTarget", "redshift"),
    (lambda url: url.partition("?")[0].endswith(".duckdb"), "sparkify.targets.duckdb", "DuckDBTarget", None),
    (lambda url: url.startswith("s3://") or "://" not in url, "sparkify.targets.lake", "LakeTarget", None),
]
"""(matches the URL, package, class, the extra that installs what it imports)."""


def open_target(url: str, options: dict | None = None) -> Target:
    """The target for a --target value; `options` come from the [target] config section."""
    for matches, module, cls, extra in TARGETS:
        if matches(url):
            try:
                target_cls = getattr(importlib.import_module(module), cls)
            except ModuleNotFoundError as exc:
                hint = f": pip install 'sparkify[{extra}]'" if extra else ""
                raise TargetError(f"the target for {url.split('://')[0]} needs {exc.name}{hint}") from exc
            return target_cls.from_url(url, options or {})
    raise TargetError(f"unknown target {url!r}: use a .duckdb path, postgresql://, redshift://, a directory or s3://")
