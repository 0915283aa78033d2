"""PostgreSQL, and the PostgreSQL-protocol code Redshift builds on.

target.py: what the target declares, its session, write and reads;
connection.py: redaction and the schema lock (shared with Redshift); ddl.py:
tables, keys and indexes; copy.py: Arrow to binary COPY; aside.py: a first
load's large tables built on side connections; stage.py and inwarehouse.py:
staging by COPY FROM STDIN and the merge, for the in-warehouse engine.
"""

from sparkify.targets.postgres.target import PostgresTarget

__all__ = ["PostgresTarget"]
