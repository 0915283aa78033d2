"""sparkify on Airflow 3: each day, load that day's event logs, then run the data-quality checks.

One DAG run per day (`@daily`). The run's logical date picks the day's log file(s),
`<log_root>/YYYY/MM/YYYY-MM-DD-*.json`, which goes to `sparkify.run` as the logs glob;
the songs source is given whole (the target's ledger skips song files it has loaded, so
re-listing them costs a directory walk, not a reload). Then `sparkify.check` runs on the
target.

- **Retries.** The load retries 3 times, 10 minutes apart. A run lands whole or not at
  all and a file already in the target's ledger is skipped, so a retry, or a rerun of a
  day that already succeeded, loads nothing twice. A day whose file is not there yet fails
  the load (and is retried), instead of "succeeding" with nothing loaded.
- **No retry where a retry cannot help**: a settings error (`sparkify.ConfigError`), too many
  rejected records (`sparkify.RejectLimitExceeded`) and failed checks fail the run at once.
- **One run at a time** (`max_active_runs=1`): every run writes to the same target, and a
  DuckDB file takes one writer at a time.

Settings are DAG params (the defaults below, or `--conf` / `--dag-run-conf` JSON):
`songs` (a folder, glob or s3:// URL), `log_root` (the folder holding YYYY/MM/), `target`
(a .duckdb file, postgresql://..., redshift://..., lake://... or s3://...; credentials come
from the environment as for the command line, never from here).

Install beside Airflow: `pip install sparkify` (plus `'sparkify[postgres]'` etc. for other
targets). Put this file in the DAGs folder. Try one day without a scheduler:

    airflow dags test sparkify_daily 2018-11-15 -c '{"target": "/tmp/star.duckdb"}'

Backfill a date range (the scheduler creates one run per day, one at a time):

    airflow backfill create --dag-id sparkify_daily --from-date 2018-11-01 --to-date 2018-11-30 \\
        --dag-run-conf '{"target": "/srv/sparkify/star.duckdb"}'

(Airflow 2's `airflow dags backfill` became `airflow backfill create` in Airflow 3.) The
DAG does not catch up by itself (`catchup=False`): deploying it with an early start date
does not start a month of runs unasked.
"""

from __future__ import annotations

import datetime as dt
import logging

from airflow.sdk import Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

import sparkify

log = logging.getLogger(__name__)

DEFAULTS = {
    "songs": "/data/sparkify/song_data",
    "log_root": "/data/sparkify/log_data",
    "target": "/data/sparkify/star.duckdb",
}
"""Where the data lives and where the star goes, unless a run's conf says otherwise."""


def day_glob(log_root: str, day: dt.date) -> str:
    """The glob of one day's event log files: <log_root>/YYYY/MM/YYYY-MM-DD-*.json."""
    return f"{log_root.rstrip('/')}/{day:%Y}/{day:%m}/{day:%Y-%m-%d}-*.json"


@dag(
    dag_id="sparkify_daily",
    schedule="@daily",
    start_date=dt.datetime(2018, 11, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    max_active_runs=1,
    params={name: Param(value, type="string") for name, value in DEFAULTS.items()},
    default_args={"retries": 3, "retry_delay": dt.timedelta(minutes=10)},
    tags=["sparkify"],
)
def sparkify_daily():
    @task
    def load() -> dict:
        """Load the logical date's log file(s) and any new song files into the target."""
        context = get_current_context()
        params, logical_date = context["params"], context["logical_date"]
        if logical_date is None:
            raise AirflowFailException("this DAG loads the day of its logical date: trigger it with one")
        logs = day_glob(params["log_root"], logical_date.date())
        try:
            summary = sparkify.run(songs=params["songs"], logs=logs, target=params["target"])
        except (sparkify.ConfigError, sparkify.RejectLimitExceeded) as exc:
            raise AirflowFailException(str(exc)) from exc  # a retry would not change the settings or the data
        log_files = summary.files["logs"]
        if log_files["new"] + log_files["skipped"] == 0:
            raise FileNotFoundError(f"no log file for {logical_date:%Y-%m-%d} yet: {logs}")
        log.info("run %s -> %s: %s", summary.run_id, summary.target, summary.accounting["events"])
        return {
            "run_id": summary.run_id,
            "logs": logs,
            "songplays_loaded": summary.accounting["events"]["loaded"],
            "songplays_total": (summary.tables or {}).get("songplays"),
        }

    @task(retries=0)
    def check(loaded: dict) -> int:
        """Run the data-quality checks on the target; any failure fails the DAG run."""
        target = get_current_context()["params"]["target"]
        try:
            results = sparkify.check(target, raise_on_failure=True)
        except sparkify.ChecksFailed as exc:
            raise AirflowFailException(f"after run {loaded['run_id']}: {exc}") from exc
        log.info("all %d checks passed on %s after run %s", len(results), target, loaded["run_id"])
        return len(results)

    check(load())


sparkify_daily_dag = sparkify_daily()
