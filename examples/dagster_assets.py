"""sparkify on Dagster: a daily-partitioned asset loads one day's event logs, an asset check runs the checks.

`sparkify_star` is the star schema, partitioned by day. Materializing partition
2018-11-15 loads `<log_root>/2018/11/2018-11-15-*.json` (the logs glob given to
`sparkify.run`) plus any new song file (the target's ledger skips song files it has
loaded). `sparkify_checks`, a blocking asset check, then runs `sparkify.check` on the
target: a failed check fails the run and marks the asset's check as failed.

- **Retries.** The asset retries 3 times, 10 minutes apart. A run lands whole or not at
  all and a file already in the target's ledger is skipped, so a retry, or rematerializing
  a day, loads nothing twice. A day whose file is not there yet fails (and is retried),
  instead of "succeeding" with nothing loaded. A settings error (`sparkify.ConfigError`) or
  too many rejected records (`sparkify.RejectLimitExceeded`) fails at once: a retry would
  not change them.
- **Backfills in one run.** `BackfillPolicy.single_run()`: a partition range is one run,
  which loads the days in order, one `sparkify.run` per day. Every run writes to the same
  target (a DuckDB file takes one writer at a time), so keep scheduled runs apart too: the
  asset is in the pool `sparkify_target`; give that pool a limit of 1.
- **Settings** are the `SparkifyTarget` resource: `songs` (a folder, glob or s3:// URL),
  `log_root` (the folder holding YYYY/MM/), `target` (a .duckdb file, postgresql://...,
  redshift://..., lake://... or s3://...). Credentials come from the environment as for
  the command line, never from here.

Install beside Dagster: `pip install sparkify` (plus `'sparkify[postgres]'` etc. for other
targets). Run the UI with `dagster dev -f examples/dagster_assets.py`, or from the shell:

    # one day
    dagster asset materialize -f examples/dagster_assets.py --select sparkify_star --partition 2018-11-15
    # backfill a date range, in one run
    dagster asset materialize -f examples/dagster_assets.py --select sparkify_star \\
        --partition-range 2018-11-01...2018-11-30 \\
        --config-json '{"resources": {"sparkify_target": {"config": {"target": "/srv/sparkify/star.duckdb"}}}}'

In the UI, "Materialize" on the asset offers a partition range too (a backfill). From
Python, the same range in one run:

    dagster.materialize([sparkify_star, sparkify_checks], resources={"sparkify_target": ...},
                        tags={"dagster/asset_partition_range_start": "2018-11-01",
                              "dagster/asset_partition_range_end": "2018-11-30"})
"""

# No `from __future__ import annotations`: Dagster reads the context and resource annotations
# when it defines the asset.
import datetime as dt

import dagster as dg

import sparkify

DAILY = dg.DailyPartitionsDefinition(start_date="2018-11-01")


class SparkifyTarget(dg.ConfigurableResource):
    """Where the raw data lives and where the star goes."""

    songs: str = "/data/sparkify/song_data"
    log_root: str = "/data/sparkify/log_data"
    target: str = "/data/sparkify/star.duckdb"

    def day_glob(self, day: dt.date) -> str:
        """The glob of one day's event log files: <log_root>/YYYY/MM/YYYY-MM-DD-*.json."""
        return f"{self.log_root.rstrip('/')}/{day:%Y}/{day:%m}/{day:%Y-%m-%d}-*.json"


@dg.asset(
    partitions_def=DAILY,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=dg.RetryPolicy(max_retries=3, delay=600),
    pool="sparkify_target",
)
def sparkify_star(context: dg.AssetExecutionContext, sparkify_target: SparkifyTarget) -> dg.MaterializeResult:
    """Songplays, users, songs, artists and time: each partition is one day of event logs."""
    loaded, runs, summary = 0, [], None
    for key in context.partition_keys:  # one day, or every day of a backfilled range, in order
        logs = sparkify_target.day_glob(dt.date.fromisoformat(key))
        try:
            summary = sparkify.run(songs=sparkify_target.songs, logs=logs, target=sparkify_target.target)
        except (sparkify.ConfigError, sparkify.RejectLimitExceeded) as exc:
            # a retry would not change the settings or the data
            raise dg.Failure(description=f"{key}: {exc}", allow_retries=False) from exc
        log_files = summary.files["logs"]
        if log_files["new"] + log_files["skipped"] == 0:
            raise FileNotFoundError(f"no log file for {key} yet: {logs}")
        context.log.info(f"{key}: run {summary.run_id} -> {summary.target}: {summary.accounting['events']}")
        loaded += summary.accounting["events"]["loaded"]
        runs.append(summary.run_id)
    assert summary is not None  # a run has at least one partition key
    return dg.MaterializeResult(metadata={
        "sparkify_runs": runs,
        "songplays_loaded": loaded,
        "songplays_total": (summary.tables or {}).get("songplays"),
        "target": summary.target,
    })


@dg.asset_check(asset=sparkify_star, blocking=True)
def sparkify_checks(sparkify_target: SparkifyTarget) -> dg.AssetCheckResult:
    """sparkify's data-quality checks (keys, references, NULLs, text, ranges) on the whole target."""
    results = sparkify.check(sparkify_target.target)
    failed = {r.name: r.failures for r in results if not r.passed}
    return dg.AssetCheckResult(
        passed=not failed,
        metadata={"checks": len(results), "failed": failed or "none"},
    )


defs = dg.Definitions(
    assets=[sparkify_star],
    asset_checks=[sparkify_checks],
    resources={"sparkify_target": SparkifyTarget()},
)
