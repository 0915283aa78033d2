"""sparkify: Sparkify's raw song and event JSON as a star schema, on DuckDB, PostgreSQL, Redshift or a Parquet lake.

    import sparkify

    summary = sparkify.run("data/song_data", "data/log_data", target="star.duckdb")
    results = sparkify.check("star.duckdb")
    table = sparkify.query("top_songs", target="star.duckdb")    # a pyarrow.Table

See docs/api.md. The API (sparkify.api) is imported on first use, so that
importing one of sparkify's modules does not load the engines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sparkify.errors import (
    ChecksFailed,
    ConfigError,
    EmptyRun,
    RejectLimitExceeded,
    SourceError,
    SparkifyError,
    TargetError,
)

if TYPE_CHECKING:
    from sparkify.api import (
        CheckResult,
        RunSummary,
        check,
        create_schema,
        queries,
        query,
        run,
    )

__version__ = "0.1.0"

__all__ = ["CheckResult", "ChecksFailed", "ConfigError", "EmptyRun", "RejectLimitExceeded", "RunSummary",
           "SourceError", "SparkifyError", "TargetError", "__version__", "check", "create_schema", "queries", "query",
           "run"]

_API = ("CheckResult", "RunSummary", "check", "create_schema", "queries", "query", "run")
"""Loaded from sparkify.api on first use."""


def __getattr__(name: str) -> Any:
    if name in _API:
        from sparkify import api

        return getattr(api, name)
    raise AttributeError(f"module 'sparkify' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
