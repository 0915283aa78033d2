"""Servers that fail: unreachable, restarting or cutting connections mid-run.

Unreachable servers must give a clear error in bounded time (the command is
killed after a generous limit, so a hang fails the test). Mid-run faults use
the kill harness: a fresh target holding the first half of the sample, the
run that adds the second half, and the fault at a moment spread over that
run's duration. The run may fail (clearly) or succeed, but the target holds
the state before or after it, `sparkify check` passes, and the next run
converges. PostgreSQL restarts happen on a private server of this module
(tests/faultservers.py), S3 outages on a proxy in front of the moto server,
so no other test is disturbed.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from tests.faultservers import PrivatePostgres, TcpProxy, free_port
from tests.killharness import (
    PHASES_HEADER,
    TRIALS_HEADER,
    Campaign,
    Child,
    Scenario,
    child_env,
    failures,
    phases_row,
    sparkify,
    stamp,
    trials_row,
    write_rows,
)

SEED = 20261123
RESTARTS, RESTARTS_SLOW = 2, 20
OUTAGES, OUTAGES_SLOW = 2, 15
OUTAGE_SECONDS = 3.0
BOUND = 180
"""Seconds after which a command that should fail is deemed hung (and killed)."""


@pytest.fixture(scope="module")
def private_pg():
    server = PrivatePostgres().start()
    yield server
    server.stop()


@pytest.fixture()
def scenario(sample: Path, tmp_path: Path) -> Scenario:
    return Scenario.build(sample, tmp_path / "scenario")


def _fails_clearly(result, *words: str) -> None:
    assert not result.timed_out, f"no answer within {BOUND} s"
    assert result.clear_error, result.output[-2000:]
    message = result.stderr[result.stderr.index("error:"):]
    for word in words:
        assert word in message, message


def test_postgres_unreachable(sample, tmp_path):
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/sparkify"
    result = sparkify("run", "--songs", sample / "song_data", "--logs", sample / "log_data", "--target", url,
                      workdir=tmp_path, timeout=BOUND)
    _fails_clearly(result, "cannot connect to PostgreSQL", url)


def test_s3_unreachable_as_target(sample, tmp_path, s3_endpoint):
    result = sparkify("run", "--songs", sample / "song_data", "--logs", sample / "log_data",
                      "--target", "s3://no-server/lake", workdir=tmp_path, timeout=BOUND,
                      env=child_env(tmp_path / "tmp", AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}"))
    _fails_clearly(result, "127.0.0.1")


def test_s3_unreachable_as_source(tmp_path, s3_endpoint):
    result = sparkify("run", "--songs", "s3://no-server/song_data", "--logs", "s3://no-server/log_data",
                      "--target", tmp_path / "t.duckdb", workdir=tmp_path, timeout=BOUND,
                      env=child_env(tmp_path / "tmp", AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}"))
    _fails_clearly(result, "s3://no-server/song_data")
    assert not (tmp_path / "t.duckdb").exists(), "the target was touched before the sources were listed"


# -- PostgreSQL restarting mid-run ---------------------------------------------------

def _restart_campaign(private_pg, scenario, tmp_path, count: int):
    def new_target(name: str) -> str:
        return private_pg.url(private_pg.create_database(f"t_{name}_{uuid.uuid4().hex[:6]}"))

    def restart(child: Child) -> None:
        private_pg.restart()

    campaign = Campaign("postgres", scenario, new_target, tmp_path / "runs")
    return campaign.run(count, SEED, fault=restart)


def test_postgres_restarting_mid_run(private_pg, scenario, tmp_path):
    trials = _restart_campaign(private_pg, scenario, tmp_path, RESTARTS)
    assert any(t.struck for t in trials)
    assert not failures(trials), failures(trials)


@pytest.mark.slow
def test_postgres_restarting_mid_run_many_times(private_pg, scenario, tmp_path):
    trials = _restart_campaign(private_pg, scenario, tmp_path, RESTARTS_SLOW)
    name = "PostgreSQL restart (pg_ctl restart -m fast)"
    write_rows("faults", (*TRIALS_HEADER, "measured"), [[*trials_row(name, trials), stamp()]])
    write_rows("fault-phases", PHASES_HEADER, [phases_row(name, trials)])
    assert not failures(trials), failures(trials)


# -- S3 going away mid-run -----------------------------------------------------------

def _orphans(bucket: str, prefix: str) -> list[str]:
    """Objects under a lake that its live manifest does not list (outside the control folder)."""
    import boto3

    s3 = boto3.client("s3")
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"{prefix}/_sparkify/CURRENT")["Body"].read())
    live = {f"{prefix}/{e['path']}" for entries in manifest["tables"].values() for e in entries}
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
            for o in page.get("Contents", [])]
    return [k for k in keys if k not in live and not k.startswith(f"{prefix}/_sparkify/")]


def _outage_campaign(s3_endpoint, s3_bucket, scenario, tmp_path, count: int):
    host, port = s3_endpoint.removeprefix("http://").split(":")
    prefixes: list[str] = []

    def new_target(name: str) -> str:
        prefixes.append(name)
        return f"s3://{s3_bucket}/{name}?lock_lease=3"

    with TcpProxy(host, int(port)) as proxy:
        def outage(child: Child) -> None:
            proxy.down()
            time.sleep(OUTAGE_SECONDS)
            proxy.up()

        campaign = Campaign("s3lake", scenario, new_target, tmp_path / "runs", env={"AWS_ENDPOINT_URL": proxy.endpoint})
        trials = campaign.run(count, SEED, fault=outage)
    leftovers = {p: _orphans(s3_bucket, p) for p in prefixes}
    return trials, {p: keys for p, keys in leftovers.items() if keys}


def test_s3_going_away_mid_run(s3_endpoint, s3_bucket, scenario, tmp_path):
    """The lock cannot be renewed during the outage, and the Parquet write meets it: the run must not
    publish blind, and it must not hang (the S3 clients' timeouts and retries are bounded)."""
    trials, orphans = _outage_campaign(s3_endpoint, s3_bucket, scenario, tmp_path, OUTAGES)
    assert any(t.struck for t in trials)
    assert not failures(trials), failures(trials)
    assert not orphans, f"objects no version lists, left after the next run: {orphans}"


@pytest.mark.slow
def test_s3_going_away_mid_run_many_times(s3_endpoint, s3_bucket, scenario, tmp_path):
    trials, orphans = _outage_campaign(s3_endpoint, s3_bucket, scenario, tmp_path, OUTAGES_SLOW)
    name = f"S3 unreachable for {OUTAGE_SECONDS:g} s (connections reset, then refused)"
    write_rows("faults", (*TRIALS_HEADER, "measured"), [[*trials_row(name, trials), stamp()]])
    write_rows("fault-phases", PHASES_HEADER, [phases_row(name, trials)])
    assert not failures(trials), failures(trials)
    assert not orphans, orphans
