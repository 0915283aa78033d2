"""The embedded default: a DuckDB database file (target.py), and the aside build for large batches (aside.py)."""

from sparkify.targets.duckdb.target import DuckDBTarget

__all__ = ["DuckDBTarget"]
