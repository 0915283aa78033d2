"""The analysts' questions: one portable SQL file per named query.

Each file starts with a `-- description` line and uses only the SQL that
DuckDB, PostgreSQL and Redshift share (no FILTER, no `::`, no DuckDB-only
functions), so `sparkify query NAME` and the report give the same rows,
in the same order, on every target.
"""

from __future__ import annotations

import difflib
import re
from importlib import resources

from sparkify.errors import ConfigError

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
"""What a query name looks like: one word. Anything else is taken as SQL."""


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


def sql_for(name_or_sql: str, queries: dict[str, tuple[str, str]] | None = None) -> str:
    """The SQL of a packaged query, or `name_or_sql` itself when it is SQL.

    A single word that names no packaged query is a ConfigError with the
    nearest name, not SQL handed to the database (which would answer with a
    parser error)."""
    queries = load_queries() if queries is None else queries
    text = name_or_sql.strip()
    if text in queries:
        return queries[text][1]
    if NAME.fullmatch(text):
        close = difflib.get_close_matches(text, list(queries), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}?" if close else "see sparkify query --list"
        raise ConfigError(f"unknown query {text!r}, {hint}")
    return name_or_sql
