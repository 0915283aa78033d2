"""The cluster job on a real Spark standalone cluster, submitted as a cluster runs it.

scripts/services.sh starts a master and two workers (1 core, 1g each) on
127.0.0.1 and exports SPARKIFY_TEST_SPARK_MASTER. Each test submits the job
with `spark-submit --deploy-mode client --py-files dist/sparkify-spark.zip
dist/spark_job.py` (both built by scripts/spark-artifact.sh, as
deploy/emr/create_emr.sh builds them): the driver is its own process, the
executors are JVMs the workers start, and every Python process runs an
interpreter that has sparkify's dependencies but not sparkify itself (a
venv whose only packages are the test venv's site-packages, without its
editable install), from a folder outside the repository. So sparkify can only
come from the zip, and the job's `code` report (which Python, which file,
from the driver and from tasks on the executors) shows that it did.

The input is the real sample plus the hand-made mess of test_spark.py; the
lake must hold the DuckDB engine's tables and rejects on the same input.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyspark
import pytest

from tests.conftest import REPO, _service, balanced, run_json
from tests.test_spark import snapshot, write_mess

pytestmark = [pytest.mark.spark, pytest.mark.spark_cluster]

SPARK_HOME = Path(pyspark.__file__).parent
JAVA_OPTS = "-Duser.timezone=UTC -XX:+UseSerialGC -XX:TieredStopAtLevel=1"
SUBMIT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.locality.wait": "0",
    "spark.executor.memory": "768m",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC -XX:+UseSerialGC -XX:TieredStopAtLevel=1",
    "spark.executorEnv.TZ": "UTC",
}
"""Each executor JVM runs one short job: C1 alone (TieredStopAtLevel=1) spends less on compiling than the
full JIT would gain back (docs/spark.md, "The tests' JVMs")."""
LAYOUT = ["_rejects", "artists", "songplays", "songs", "time", "users"]
HIVE_TYPES = {"year": "INTEGER", "month": "INTEGER", "artist_id": "VARCHAR"}
CONNECT_PORT = 15002
CONNECT_CLIENT = ["grpcio>=1.76.0", "grpcio-status>=1.76.0", "googleapis-common-protos>=1.71.0", "zstandard>=0.25.0"]
"""What pyspark[connect] adds to pyspark for a Spark Connect client (pyspark's own metadata)."""


@pytest.fixture(scope="module")
def master() -> str:
    return _service("SPARKIFY_TEST_SPARK_MASTER")


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    """dist/ as scripts/spark-artifact.sh builds it, in a folder of its own."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([str(REPO / "scripts" / "spark-artifact.sh"), str(out)], check=True, capture_output=True)
    assert (out / "sparkify-spark.zip").is_file() and (out / "spark_job.py").is_file()
    return out


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """A Python with sparkify's dependencies and without sparkify: a venv that sees the test venv's
    site-packages through a .pth line, which does not run the .pth files there (the editable install)."""
    venv = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    python = venv / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import pyarrow, duckdb, pyspark, s3fs\nimport sparkify"],
                           capture_output=True, text=True, cwd=venv, env=job_env(venv / "bin" / "python"))
    assert "No module named 'sparkify'" in probe.stderr, probe.stderr
    return python


@pytest.fixture(scope="module")
def data(tmp_path_factory, sample) -> Path:
    """The real sample plus the hand-made mess (rejects of every kind, repairs, ties)."""
    dest = tmp_path_factory.mktemp("cluster-data") / "data"
    shutil.copytree(sample / "song_data", dest / "song_data")
    shutil.copytree(sample / "log_data", dest / "log_data")
    write_mess(dest)
    return dest


@pytest.fixture(scope="module")
def duckdb_run(data, tmp_path_factory) -> tuple[dict, dict]:
    """The DuckDB engine on the same input: (summary, every row of the star and the rejects)."""
    db = tmp_path_factory.mktemp("duckdb-engine") / "star.duckdb"
    summary = run_json("--songs", data / "song_data", "--logs", data / "log_data", "--target", db,
                       "--engine", "duckdb")
    return summary, snapshot(db)


def job_env(python: Path, **extra: str) -> dict[str, str]:
    """The environment of a submitted job: the bare Python, no PYTHONPATH, UTC, loopback."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(TZ="UTC", SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=str(python), PYSPARK_DRIVER_PYTHON=str(python),
               **extra)
    return env


def conf_args(settings: dict[str, str]) -> list[str]:
    return [a for k, v in settings.items() for a in ("--conf", f"{k}={v}")]


class Submitted:
    """A spark-submit of the artifact in client mode, running in the background."""

    def __init__(self, master: str, artifact: Path, python: Path, cwd: Path, *job_args: str,
                 conf: dict | None = None, env: dict | None = None):
        settings = {**SUBMIT_CONF, **(conf or {})}
        command = [str(SPARK_HOME / "bin" / "spark-submit"), "--master", master, "--deploy-mode", "client",
                   "--driver-java-options", JAVA_OPTS, "--py-files", str(artifact / "sparkify-spark.zip"),
                   *conf_args(settings),
                   str(artifact / "spark_job.py"), *job_args]
        self.out, self.err = cwd / "job.out", cwd / "job.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(command, env=job_env(python, **(env or {})), cwd=cwd, stdout=out,
                                         stderr=err)

    def summary(self) -> dict:
        """The job's JSON summary, once it ended well."""
        code = self.proc.wait(timeout=600)
        stdout = self.out.read_text(errors="replace")
        assert code == 0, self.err.read_text(errors="replace")[-4000:] + stdout[-2000:]
        return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def jobs(master, artifact, bare_python, data, s3_endpoint, tmp_path_factory) -> Iterator[dict]:
    """The job submitted twice at once, one executor (1 core) each, so the two share the cluster's time:
    into a local lake with Spark's writer, and into S3 with `--write-with arrow`."""
    import boto3

    bucket = "t-cluster-" + uuid.uuid4().hex[:8]
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="lake/users/part-stale.parquet", Body=b"not parquet")
    aws = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    aws["AWS_EC2_METADATA_DISABLED"] = "true"
    sources = ("--songs", str(data / "song_data"), "--logs", str(data / "log_data"))
    one_core = {"spark.cores.max": "1"}
    local_dir, s3_dir = tmp_path_factory.mktemp("job-local"), tmp_path_factory.mktemp("job-s3")
    started = {
        "local": Submitted(master, artifact, bare_python, local_dir, *sources, "--out", str(local_dir / "lake"),
                           conf=one_core),
        "s3": Submitted(master, artifact, bare_python, s3_dir, *sources, "--out", f"s3://{bucket}/lake",
                        "--write-with", "arrow", conf={**one_core, **{f"spark.executorEnv.{k}": v
                                                                       for k, v in aws.items()}},
                        env={"SPARKIFY_S3_ENDPOINT_URL": s3_endpoint, **aws}),
    }
    try:
        yield {"local": (started["local"], local_dir / "lake"), "s3": (started["s3"], bucket)}
    finally:
        for job in started.values():
            job.stop()


def assert_code_from_artifact(summary: dict, artifact: Path, python: Path) -> None:
    """The driver imported sparkify from the zip it was given; tasks on the executors, separate processes
    on the bare Python, from the copy of the zip Spark shipped to their worker."""
    code = summary["code"]
    zip_path = str(artifact / "sparkify-spark.zip")
    assert code["driver"]["python"] == str(python)
    assert code["driver"]["sparkify"].startswith(zip_path + os.sep), code["driver"]
    assert code["executors"], code
    for executor in code["executors"]:
        assert executor["python"] == str(python), executor
        assert executor["pid"] != code["driver"]["pid"], executor
        assert "sparkify-spark.zip" + os.sep in executor["sparkify"], executor
        assert not executor["sparkify"].startswith((zip_path, str(REPO / "src"))), executor


def lake_rows(root: str, con: duckdb.DuckDBPyConnection | None = None) -> dict[str, list[tuple]]:
    """Every table of the job's lake as DuckDB reads it (hive partitions), in snapshot()'s order and form."""
    from sparkify.schema import STAR

    con = con or duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    out = {}
    for table in STAR:
        cols = ", ".join(f'"{c}"' for c in table.column_names)
        types = {k: v for k, v in HIVE_TYPES.items() if k in table.partition_by}
        source = (f"read_parquet('{root}/{table.name}/**/*.parquet', hive_partitioning = true, hive_types = {types})"
                  if table.partition_by else f"read_parquet('{root}/{table.name}/*.parquet')")
        out[table.name] = con.execute(f"SELECT {cols} FROM {source} ORDER BY ALL").fetchall()
    out["rejects"] = con.execute(f"SELECT kind, source_file, line, reason, raw FROM read_parquet('{root}/_rejects/"
                                 "*.parquet') ORDER BY ALL").fetchall()
    return out


def assert_same_as_duckdb(summary: dict, duckdb_run: tuple[dict, dict], rows: dict) -> None:
    expected_summary, expected = duckdb_run
    for name in expected:
        assert rows[name] == expected[name], name
    assert summary["accounting"] == expected_summary["accounting"]
    assert summary["tables"] == {**expected_summary["tables"], "_rejects": len(expected["rejects"])}
    assert balanced(summary)


def test_job_on_the_cluster_writes_the_duckdb_engines_lake(jobs, artifact, bare_python, duckdb_run):
    """Spark's own writer, a local lake: the spec's layout, the DuckDB engine's rows and rejects."""
    job, lake = jobs["local"]
    summary = job.summary()
    assert_code_from_artifact(summary, artifact, bare_python)
    assert sorted(p.name for p in lake.iterdir() if not p.name.startswith((".", "_S"))) == LAYOUT
    assert all(p.name.startswith("year=") for p in (lake / "songs").iterdir() if p.is_dir())
    assert all(p.name.startswith("month=") for p in next((lake / "songplays").glob("year=*")).iterdir())
    assert_same_as_duckdb(summary, duckdb_run, lake_rows(str(lake)))
    assert len(duckdb_run[1]["rejects"]) > 20  # the mess reached the rules


def test_job_on_the_cluster_writes_the_lake_to_s3(jobs, artifact, bare_python, duckdb_run, s3_endpoint, tmp_path):
    """S3 without hadoop-aws: `--write-with arrow`, each executor writes its Parquet files to the loopback
    S3 server through pyarrow (the endpoint from SPARKIFY_S3_ENDPOINT_URL, resolved on the driver; keys
    from the executors' environment); the sources are local folders. A stale object in a folder the run
    rewrites is gone afterwards (dynamic overwrite)."""
    import boto3

    job, bucket = jobs["s3"]
    summary = job.summary()
    assert_code_from_artifact(summary, artifact, bare_python)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", []) if not o["Key"].endswith("/")]  # pyarrow's folder markers
    assert "lake/users/part-stale.parquet" not in keys
    assert sorted({k.split("/")[1] for k in keys}) == LAYOUT
    assert any(k.startswith("lake/songs/year=") and "/artist_id=" in k for k in keys)
    local = tmp_path / "copy"
    for key in keys:  # DuckDB 2.0 has no httpfs here: read the lake from a copy of its objects
        (local / key).parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(local / key))
    assert_same_as_duckdb(summary, duckdb_run, lake_rows(str(local / "lake")))


# -- Spark Connect ---------------------------------------------------------------

@pytest.fixture(scope="module")
def connect_client(tmp_path_factory) -> str:
    """PYTHONPATH entries for a Spark Connect client: the test venv's, or pyspark[connect]'s few extra
    packages installed into a folder of their own (PyPI), so the test venv stays as constraints.txt has it."""
    try:
        import google.rpc  # noqa: F401
        import grpc  # noqa: F401
        import zstandard  # noqa: F401

        return ""
    except ImportError:
        pass
    target = tmp_path_factory.mktemp("connect-client")
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(target), *CONNECT_CLIENT],
                         capture_output=True, text=True, timeout=300)
    if pip.returncode != 0:
        pytest.skip(f"cannot install the Spark Connect client's packages: {pip.stderr[-500:]}")
    return str(target)


class ConnectServer:
    """sbin/start-connect-server.sh from the pyspark package, on the cluster (all its cores), its Python
    workers on the bare Python. A Spark application that holds its executors until stopped."""

    def __init__(self, master: str, python: Path, logs: Path):
        self.logs = logs
        self.env = job_env(python, SPARK_LOG_DIR=str(logs), SPARK_PID_DIR=str(logs),
                           SPARK_IDENT_STRING="sparkify-test")
        conf = {**SUBMIT_CONF, "spark.connect.grpc.binding.address": "127.0.0.1",
                "spark.connect.grpc.binding.port": str(CONNECT_PORT)}
        subprocess.run([str(SPARK_HOME / "sbin" / "start-connect-server.sh"), "--master", master,
                        "--driver-java-options", JAVA_OPTS, *conf_args(conf)],
                       env=self.env, check=True, capture_output=True, timeout=120)

    def url(self, seconds: float = 180) -> str:
        deadline = time.monotonic() + seconds
        while not _listening(CONNECT_PORT):
            if time.monotonic() > deadline:
                log = "".join(p.read_text(errors="replace")[-3000:] for p in self.logs.glob("*.out"))
                pytest.fail(f"the Spark Connect server did not listen on {CONNECT_PORT}: {log}")
            time.sleep(0.5)
        return f"sc://127.0.0.1:{CONNECT_PORT}"

    def stop(self) -> None:
        subprocess.run([str(SPARK_HOME / "sbin" / "stop-connect-server.sh")], env=self.env, capture_output=True,
                       timeout=120)


@pytest.fixture(scope="module")
def connect_server(master, bare_python, tmp_path_factory) -> Iterator[str]:
    """A Spark Connect server on the cluster, for the slow run only (its JVM and the job cost minutes)."""
    server = ConnectServer(master, bare_python, tmp_path_factory.mktemp("connect-logs"))
    try:
        yield server.url()
    finally:
        server.stop()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
def test_job_through_spark_connect(connect_server, connect_client, artifact, bare_python, data, duckdb_run,
                                   tmp_path):
    """The same job as a Spark Connect client (a plain Python process importing sparkify from the zip): it
    adds the zip to the session, and the server's Python workers import sparkify from that copy."""
    lake = tmp_path / "lake"
    path = os.pathsep.join(p for p in (str(artifact / "sparkify-spark.zip"), connect_client) if p)
    env = {**job_env(bare_python), "PYTHONPATH": path}
    proc = subprocess.run([str(bare_python), str(artifact / "spark_job.py"), "--master", connect_server,
                           "--songs", str(data / "song_data"), "--logs", str(data / "log_data"), "--out", str(lake)],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
    assert summary["code"]["driver"]["sparkify"].startswith(str(artifact / "sparkify-spark.zip") + os.sep)
    for executor in summary["code"]["executors"]:
        assert executor["python"] == str(bare_python)
        assert "sparkify-spark.zip" + os.sep in executor["sparkify"], executor
    assert_same_as_duckdb(summary, duckdb_run, lake_rows(str(lake)))


def test_the_cluster_has_two_workers(master):
    """What the tests above ran on: the master's own status page."""
    ui = _service("SPARKIFY_TEST_SPARK_UI")
    status = json.load(urllib.request.urlopen(f"{ui}/json/", timeout=10))
    assert status["url"] == master
    assert status["aliveworkers"] == 2 and [w["cores"] for w in status["workers"] if w["state"] == "ALIVE"] == [1, 1]
