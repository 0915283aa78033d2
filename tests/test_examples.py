"""The scheduling examples (examples/) run for real, in-process, against the sample.

Airflow and Dagster each need their own venv: scripts/test-examples.sh makes them
(.venv-airflow, .venv-dagster) and runs the `airflow` tests in one and the `dagster`
tests in the other (`-k`). The default suite leaves this file out (`-m "not examples"`).

Each test computes what the target should hold from the sample's files alone:
the day's NextSong events with a user, distinct by (sessionId, itemInSession,
userId, ts), as docs/contract.md defines a songplay.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

import sparkify
from tests.conftest import REPO

pytestmark = pytest.mark.examples

EXAMPLES = REPO / "examples"
DAY = dt.date(2018, 11, 15)


def plays_on(sample: Path, *days: dt.date) -> int:
    """Songplays in the sample's log files of these days, counted from the raw JSON lines."""
    keys = set()
    for day in days:
        for path in (sample / "log_data").glob(f"**/{day:%Y-%m-%d}-*.json"):
            for line in path.read_text().splitlines():
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("page") == "NextSong" and str(event.get("userId") or "").strip():
                    keys.add((event["sessionId"], event["itemInSession"], event["userId"], event["ts"]))
    assert keys, f"no play in the sample on {days}"
    return len(keys)


def songplays_by_day(target: Path) -> dict[str, int]:
    """The target's songplays per UTC day of start_time."""
    table = sparkify.query(
        "SELECT strftime(start_time AT TIME ZONE 'UTC', '%Y-%m-%d') AS day, count(*) AS n "
        "FROM songplays GROUP BY 1 ORDER BY 1", target=str(target))
    return {row["day"]: row["n"] for row in table.to_pylist()}


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"sparkify_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Airflow ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow_dag(tmp_path_factory: pytest.TempPathFactory):
    """examples/airflow_dag.py's DAG, with a fresh SQLite metadata database in a temporary AIRFLOW_HOME.

    dag.test() runs the tasks in this process but records the run in the metadata
    database, and finds the DAG there through the DAGs folder (examples/)."""
    home = tmp_path_factory.mktemp("airflow_home")
    with pytest.MonkeyPatch.context() as mp:
        # Airflow reads its configuration when first imported: set it before.
        mp.setenv("AIRFLOW_HOME", str(home))
        mp.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(EXAMPLES))
        mp.setenv("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
        mp.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home}/airflow.db")
        migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"],
                                 capture_output=True, text=True, timeout=300)
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr
        yield load_example("airflow_dag").sparkify_daily_dag


def _dag_test(dag, day: dt.date, conf: dict) -> None:
    run = dag.test(logical_date=dt.datetime.combine(day, dt.time(), dt.timezone.utc), run_conf=conf)
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert run.state == "success", states
    assert states == {"load": "success", "check": "success"}


def test_airflow_dag_loads_the_logical_date_then_checks(airflow_dag, sample: Path, tmp_path: Path) -> None:
    target = tmp_path / "star.duckdb"
    conf = {"songs": str(sample / "song_data"), "log_root": str(sample / "log_data"), "target": str(target)}
    _dag_test(airflow_dag, DAY, conf)
    assert songplays_by_day(target) == {"2018-11-15": plays_on(sample, DAY)}
    # The same day again (a rerun, or a retry after a load that landed): nothing twice.
    _dag_test(airflow_dag, DAY, conf)
    assert songplays_by_day(target) == {"2018-11-15": plays_on(sample, DAY)}


# Dagster ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dagster_example() -> ModuleType:
    return load_example("dagster_assets")


def _materialize(example: ModuleType, sample: Path, target: Path, **how):
    import dagster

    resource = example.SparkifyTarget(songs=str(sample / "song_data"), log_root=str(sample / "log_data"),
                                      target=str(target))
    result = dagster.materialize([example.sparkify_star, example.sparkify_checks],
                                 resources={"sparkify_target": resource},
                                 instance=dagster.DagsterInstance.ephemeral(), **how)
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.passed, check.metadata
    return result


def test_dagster_asset_loads_its_partition_then_checks(dagster_example, sample: Path, tmp_path: Path) -> None:
    target = tmp_path / "star.duckdb"
    result = _materialize(dagster_example, sample, target, partition_key=DAY.isoformat())
    assert songplays_by_day(target) == {"2018-11-15": plays_on(sample, DAY)}
    [materialization] = result.asset_materializations_for_node("sparkify_star")
    assert materialization.partition == "2018-11-15"
    assert materialization.metadata["songplays_loaded"].value == plays_on(sample, DAY)


def test_dagster_backfills_a_partition_range_in_one_run(dagster_example, sample: Path, tmp_path: Path) -> None:
    target = tmp_path / "star.duckdb"
    days = (dt.date(2018, 11, 14), dt.date(2018, 11, 15))
    result = _materialize(dagster_example, sample, target, tags={
        "dagster/asset_partition_range_start": days[0].isoformat(),
        "dagster/asset_partition_range_end": days[1].isoformat(),
    })
    assert songplays_by_day(target) == {f"{d:%Y-%m-%d}": plays_on(sample, d) for d in days}
    materialized = {m.partition for m in result.asset_materializations_for_node("sparkify_star")}
    assert materialized == {"2018-11-14", "2018-11-15"}


def test_dagster_a_day_without_its_file_fails(dagster_example, sample: Path, tmp_path: Path) -> None:
    """Invoked directly (no retry policy, no delay): the day's file has not arrived, so the asset fails."""
    import dagster

    resource = dagster_example.SparkifyTarget(songs=str(sample / "song_data"), log_root=str(sample / "log_data"),
                                              target=str(tmp_path / "star.duckdb"))
    context = dagster.build_asset_context(partition_key="2018-12-01")
    with pytest.raises(FileNotFoundError, match="no log file for 2018-12-01 yet"):
        dagster_example.sparkify_star(context=context, sparkify_target=resource)
