"""The analysts' questions: one portable SQL file per named query.

Each file starts with a `-- description` line and uses only the SQL that
DuckDB, PostgreSQL and Redshift share (no FILTER, no `::`, no DuckDB-only
functions), so `sparkify query NAME` and the report give the same rows,
in the same order, on every target.
"""

from __future__ import annotations

from importlib import resources


def load_queries() -> dict[str, tuple[str, str]]:
    """Every packaged query: name -> (one-line description, SQL)."""
    queries = {}
    for entry in resources.files(__name__).iterdir():
        if not entry.name.endswith(".sql"):
            continue
        sql = entry.read_text(encoding="utf-8")
        first, _, _ = sql.partition("\n")
        if not first.startswith("--"):
            raise ValueError(f"{entry.name} must start with a '-- description' line")
        queries[entry.name.removesuffix(".sql")] = (first.removeprefix("--").strip(), sql.strip())
    return dict(sorted(queries.items()))
