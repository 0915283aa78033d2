"""Fixtures shared by every test: the real sample, servers, and targets of every kind.

Servers (PostgreSQL, S3) are started by scripts/services.sh, which exports
their addresses. With SPARKIFY_REQUIRE_SERVICES=1 (as in CI) a missing server
fails the test instead of skipping it.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from bench.pgscratch import scratch_database
from sparkify import cli

REPO = Path(__file__).resolve().parents[1]
SAMPLE = Path(os.environ.get("SPARKIFY_SAMPLE", REPO.parent / "shared" / "data" / "sparkify"))

TARGET_KINDS = ["duckdb", "postgres", "lake", "s3lake"]
"""Every kind of target the contract tests run against (Redshift is checked on PostgreSQL)."""


def _service(var: str) -> str:
    value = os.environ.get(var)
    if value:
        return value
    if os.environ.get("SPARKIFY_REQUIRE_SERVICES"):
        pytest.fail(f"{var} is not set: scripts/services.sh start did not run or failed")
    pytest.skip(f"{var} not set (run the tests through scripts/test.sh)")


@pytest.fixture(scope="session")
def sample() -> Path:
    assert (SAMPLE / "song_data").is_dir(), f"the real sample is missing at {SAMPLE}"
    return SAMPLE


@pytest.fixture(scope="session")
def duckdb_star(tmp_path_factory, sample: Path) -> str:
    """The sample in a DuckDB file, for the tests that only read a star (queries, report)."""
    url = str(tmp_path_factory.mktemp("queries") / "star.duckdb")
    run_json("--songs", sample / "song_data", "--logs", sample / "log_data", "--target", url)
    return url


@pytest.fixture(scope="session")
def duckdb_results(duckdb_star: str) -> dict:
    """Every standard query's answer on `duckdb_star`."""
    from tests.test_queries import run_all

    return run_all(duckdb_star)


@pytest.fixture()
def sample_copy(tmp_path: Path, sample: Path) -> Path:
    """A writable copy of the sample, for tests that add, change or break files."""
    dest = tmp_path / "data"
    shutil.copytree(sample / "song_data", dest / "song_data")
    shutil.copytree(sample / "log_data", dest / "log_data")
    return dest


@pytest.fixture(scope="session")
def pg_server() -> str:
    return _service("SPARKIFY_TEST_PG_URL")


def database(server: str):
    """A fresh, empty database on the test server, dropped afterwards (bench.pgscratch, shared with bench)."""
    return scratch_database(server, prefix="t_")


@pytest.fixture()
def pg_url(pg_server: str) -> Iterator[str]:
    with database(pg_server) as url:
        yield url


@pytest.fixture(params=["one transaction", "built aside"])
def first_load(request) -> Iterator[str]:
    """Each way of loading an empty star: songplays and time built on side connections (targets/postgres/aside.py)
    from PARALLEL_LOAD_ABOVE song plays on, which the sample's 6,820 are put over or under."""
    from sparkify.targets.postgres import target as postgres

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(postgres, "PARALLEL_LOAD_ABOVE", 0 if request.param == "built aside" else 2**62)
        yield request.param


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    endpoint = _service("SPARKIFY_TEST_S3_ENDPOINT")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    return endpoint


@pytest.fixture()
def s3_bucket(s3_endpoint: str) -> str:
    """A fresh bucket on the loopback S3 server."""
    import boto3

    name = "t-" + uuid.uuid4().hex[:12]
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture(params=TARGET_KINDS)
def target_url(request, tmp_path: Path) -> str:
    """One target of each kind, empty."""
    return new_target(request.param, request, tmp_path)


def new_target(kind: str, request, tmp_path: Path) -> str:
    """An empty target of one of TARGET_KINDS (servers through `request`'s fixtures)."""
    if kind == "duckdb":
        return str(tmp_path / "star.duckdb")
    if kind == "postgres":
        return request.getfixturevalue("pg_url")
    if kind == "lake":
        return f"lake://{tmp_path / 'lake'}"
    return f"s3://{request.getfixturevalue('s3_bucket')}/lake"


SPARK_ENV = {"TZ": "UTC", "SPARK_LOCAL_IP": "127.0.0.1", "PYSPARK_PYTHON": sys.executable,
             "PYSPARK_DRIVER_PYTHON": sys.executable}
FAST_START = {
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC -XX:+UseSerialGC",
    "spark.sql.shuffle.partitions": "2",
}


@pytest.fixture(scope="session")
def spark():
    """One local Spark per test process; the Spark engine reuses it when run in-process (run_cli,
    run_json, pipeline.run). The JIT is left whole: a worker runs dozens of Spark runs in this JVM, and
    C1 alone (TieredStopAtLevel=1) starts sooner but makes every later run slower (docs/spark.md, "The
    tests' JVMs")."""
    os.environ.update(SPARK_ENV)
    time.tzset()
    from sparkify.engines.spark.session import session

    spark = session("local[2]", FAST_START)
    yield spark
    spark.stop()


def run_cli(*args: str) -> tuple[int, str]:
    """Run the sparkify command line in-process: (exit code, stdout)."""
    out = io.StringIO()
    with redirect_stdout(out):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue()


def run_json(*args: str) -> dict:
    """`sparkify run ... --json`, asserting success; the summary from the last stdout line."""
    code, out = run_cli("run", *args, "--json")
    assert code == 0, out
    return json.loads(out.strip().splitlines()[-1])


def balanced(summary: dict) -> bool:
    """read = loaded + filtered + duplicate + rejected, for songs and for events."""
    return all(
        a["read"] == a["loaded"] + a.get("filtered", 0) + a["duplicate"] + a["rejected"]
        for a in summary["accounting"].values()
    )


def star_rows(target: str) -> dict[str, list[tuple]]:
    """Every row of the five tables of a target, ordered by primary key, timestamps as UTC datetimes.

    The common currency of the differential tests: two targets (or engines)
    agree when this returns the same for both.
    """
    import datetime as dt

    from sparkify.schema import STAR
    from sparkify.targets import open_target

    def normal(value):
        if isinstance(value, dt.datetime):
            return value.astimezone(dt.timezone.utc)
        if isinstance(value, float):
            return round(value, 9)
        return value

    tgt = open_target(target)
    try:
        tables = {}
        for table in STAR:
            cols = ", ".join(f'"{c}"' for c in table.column_names)
            order = ", ".join(f'"{c}"' for c in table.primary_key)
            _, rows = tgt.query(f'SELECT {cols} FROM "{table.name}" ORDER BY {order}')
            tables[table.name] = [tuple(normal(v) for v in row) for row in rows]
        return tables
    finally:
        tgt.close()
