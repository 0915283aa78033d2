"""A scratch PostgreSQL database: created empty, dropped afterwards (even after a failure).

Shared by the benchmarks and the tests (tests/conftest.py imports it), so it
depends on psycopg only, never on pytest.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def scratch_database(server: str, prefix: str = "bench_") -> Iterator[str]:
    """A fresh, empty database on `server` (a PostgreSQL URL); yields its URL and drops it on exit."""
    import psycopg

    name = prefix + uuid.uuid4().hex[:12]
    with psycopg.connect(server, autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(server, autocommit=True) as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
