"""PostgreSQL's DDL: the star and its state, keys and indexes as statements of their own.

Keys and indexes are separate statements (`keys`), as pg_dump writes them,
so that a load into an empty star copies the rows in bare and builds every
key once afterwards instead of maintaining it row by row.
"""

from __future__ import annotations

from dataclasses import dataclass

from sparkify.schema import STAR, STATE, Dialect, Table

DIALECT = Dialect(
    "postgresql",
    {"bigint": "bigint", "int": "integer", "double": "double precision", "text": "text", "timestamp": "timestamptz"},
    enforce_foreign_keys=False,
)
"""Foreign keys are added by `keys()`, not inline, so a bulk load can build them after the rows."""


def qualified(schema: str, table: Table) -> str:
    return f"{DIALECT.quote(schema)}.{DIALECT.quote(table.name)}"


@dataclass(frozen=True)
class Key:
    """A primary key, foreign key or index, with the statements that add and drop it."""

    name: str
    create: str
    drop: str
    tables: tuple[str, ...]
    """The table it is on, then, for a foreign key, the table it references."""
    primary: bool = False
    indexed: bool = False
    """A foreign key whose columns lead an index or the primary key of their table: checkable by a merge
    join over the two indexes."""


def keys(schema: str) -> list[Key]:
    """Primary keys, the indexes the analysts' joins need, then foreign keys: build in this order, so
    that a foreign key's check can read the indexes. `schema`: where the tables are (the target's, or
    the side schema aside.py builds some in)."""
    q, tables = DIALECT.quote, STAR + STATE

    def cols(names: tuple[str, ...]) -> str:
        return ", ".join(map(q, names))

    def constraint(t: Table, name: str, definition: str, tables: tuple[str, ...], primary: bool = False,
                   indexed: bool = False) -> Key:
        on = qualified(schema, t)
        return Key(name, f"ALTER TABLE {on} ADD CONSTRAINT {q(name)} {definition}",
                   f"ALTER TABLE {on} DROP CONSTRAINT IF EXISTS {q(name)}", tables, primary, indexed)

    # {table}_pkey is also what PostgreSQL names the inline key of create_table_sql.
    primary = [constraint(t, f"{t.name}_pkey", f"PRIMARY KEY ({cols(t.primary_key)})", (t.name,), primary=True)
               for t in tables if t.primary_key]
    foreign = [
        constraint(t, f"{t.name}_{'_'.join(fk.columns)}_fkey", f"FOREIGN KEY ({cols(fk.columns)}) "
                   f"REFERENCES {q(schema)}.{q(fk.table)} ({cols(fk.ref_columns)})", (t.name, fk.table),
                   indexed=fk.columns in (*t.indexes, t.primary_key))
        for t in tables for fk in t.foreign_keys
    ]
    indexes = [
        Key(name, f"CREATE INDEX IF NOT EXISTS {q(name)} ON {qualified(schema, t)} ({cols(columns)})",
            f"DROP INDEX IF EXISTS {q(schema)}.{q(name)}", (t.name,))
        for t in tables for columns in t.indexes
        for name in [f"{t.name}_{'_'.join(columns)}_idx"]
    ]
    return primary + indexes + foreign
