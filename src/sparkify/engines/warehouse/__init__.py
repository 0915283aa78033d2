"""The in-warehouse engine: the star computed by SQL inside the target itself.

Redshift always computes this way; PostgreSQL does with --pushdown (or
`?pushdown=true` on its URL). The target fills the staging tables with the
run's raw records (staging.py: COPY from S3 on Redshift, COPY FROM STDIN on
PostgreSQL) inside the run's one transaction; this engine defines its text
functions, types the staged records and builds the batch tables there
(star.py), and hands the target a WarehouseBatch on the same transaction.
The target merges it and the run commits whole, or nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sparkify.batch import WAREHOUSE, Run, WarehouseBatch
from sparkify.engines.base import Engine
from sparkify.engines.warehouse.star import ACCOUNTING, FILTERED, star_statements
from sparkify.engines.warehouse.text import text_functions
from sparkify.progress import Progress
from sparkify.staging import RUN_INFO, staging_ddl
from sparkify.targets.base import Step, WarehouseHost


class WarehouseEngine(Engine):
    name = "warehouse"

    def describe(self, target: WarehouseHost) -> str:
        return f"{target.warehouse.dialect.name} (in-warehouse)"

    def host(self, target: WarehouseHost) -> str:
        return WAREHOUSE

    @staticmethod
    def setup_steps(target: WarehouseHost, run: Run) -> list[Step]:
        """The text functions, empty staging tables and the run's sources, at the start of the transaction."""
        w = target.warehouse
        return ([Step("functions", s) for s in text_functions(w.dialect, w.lambda_udf, w.iam_role)]
                + [Step("staging", s) for s in staging_ddl()]
                + [Step("run", f"INSERT INTO {RUN_INFO} (run_id, songs_source, logs_source) VALUES (%s, %s, %s)",
                        (run.run_id, run.songs, run.logs))])

    @staticmethod
    def star_steps(target: WarehouseHost) -> list[Step]:
        return [Step(p, s) for p, s in star_statements(target.warehouse.dialect, target.warehouse.names)]

    def plan(self, target: WarehouseHost, run: Run) -> list[Step]:
        return self.setup_steps(target, run) + target.staging_plan(run) + self.star_steps(target)

    @contextmanager
    def compute(self, target: WarehouseHost, run: Run, progress: Progress) -> Iterator[WarehouseBatch]:
        """The batch, inside the run's transaction: it commits when the caller's block (the write) ends."""
        with progress.stage("stage"):
            prepared = target.prepare_staging(run)
        with target.run_transaction(run.full_refresh) as cur:
            for step in self.setup_steps(target, run):
                cur.execute(step.sql, step.params)
            with progress.stage("copy"):
                target.fill_staging(cur, run, prepared)
            with progress.stage("star"):
                for step in self.star_steps(target):
                    cur.execute(step.sql)
            songs_read, songs_rejected, songs_valid, songs_loaded, ev_read, ev_rejected, plays = \
                cur.execute(ACCOUNTING).fetchone()
            filtered = {page: int(n) for page, n in cur.execute(FILTERED).fetchall()}
            yield WarehouseBatch(
                run,
                songs={"read": songs_read, "loaded": songs_loaded, "rejected": songs_rejected,
                       "duplicate": songs_valid - songs_loaded},
                events={"read": ev_read, "rejected": ev_rejected, "filtered": filtered, "song_plays": plays},
                cursor=cur,
            )
