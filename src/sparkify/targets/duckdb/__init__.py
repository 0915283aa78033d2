"""The embedded default: a DuckDB database file (target.py)."""

from sparkify.targets.duckdb.target import DuckDBTarget

__all__ = ["DuckDBTarget"]
