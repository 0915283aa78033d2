"""S3 sources for every target and the lake on S3, against the real moto server on 127.0.0.1.

The sample is uploaded with boto3; what sparkify reads back is compared
with the DuckDB target loaded from the local files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import boto3
import duckdb
import pandas as pd
import pyarrow.dataset as ds
import pytest
import s3fs

from sparkify import objectstore
from sparkify.schema import TABLES
from sparkify.sources import SourceError
from sparkify.targets.lake import target as lake_module
from tests.conftest import balanced, run_cli, run_json, star_rows
from tests.test_lake import COUNTS, args, error_text, kill, ordered, read_duckdb, start_paused

pytestmark = pytest.mark.s3


def upload(client, bucket: str, local: Path, prefix: str) -> int:
    count = 0
    for path in sorted(local.rglob("*.json")):
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(local)}")
        count += 1
    return count


@pytest.fixture()
def s3_sample(s3_bucket, s3_endpoint, sample) -> str:
    """The real sample in a fresh bucket, as s3://bucket/raw/{song_data,log_data}."""
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    upload(client, s3_bucket, sample, "raw")
    return f"s3://{s3_bucket}/raw"


@pytest.fixture(scope="module")
def reference(tmp_path_factory, sample) -> dict:
    """The DuckDB target loaded from the local sample: the rows every S3 path must give back."""
    target = str(tmp_path_factory.mktemp("ref") / "star.duckdb")
    run_json(*args(sample, target))
    return star_rows(target)


def plain_fs() -> s3fs.S3FileSystem:
    """What a plain reader opens: its own s3fs, no cache shared with sparkify."""
    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False)


def s3_args(source: str, target: str, *extra: str) -> tuple:
    return ("--songs", f"{source}/song_data", "--logs", f"{source}/log_data", "--target", target, *extra)


def keys(bucket: str, prefix: str) -> dict[str, str]:
    """Every object under a prefix with its ETag."""
    client = boto3.client("s3")
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    return found


def test_list_files_gives_every_json_object_with_its_etag(s3_sample, sample):
    local = sorted((sample / "song_data").rglob("*.json"))
    files = objectstore.list_files(f"{s3_sample}/song_data")
    assert [f.path for f in files] == [f"{s3_sample}/song_data/{p.relative_to(sample / 'song_data')}" for p in local]
    assert [f.size for f in files] == [p.stat().st_size for p in local]
    assert [f.modified for f in files] == [hashlib.md5(p.read_bytes()).hexdigest() for p in local]
    assert objectstore.read_bytes(files[0].path) == local[0].read_bytes()
    glob = objectstore.list_files(f"{s3_sample}/log_data/2018/11/2018-11-0*.json")
    assert len(glob) == 9


def test_a_missing_prefix_or_bucket_is_a_clear_source_error(s3_bucket):
    with pytest.raises(SourceError, match="source not found"):
        objectstore.list_files(f"s3://{s3_bucket}/nothing/here")
    with pytest.raises(SourceError, match="source not found"):
        objectstore.list_files("s3://no-such-bucket-sparkify/x")


def test_settings_come_from_options_then_env_then_the_config_file(tmp_path, monkeypatch, s3_endpoint, s3_sample):
    config = tmp_path / "sparkify.toml"
    config.write_text(f'[s3]\nendpoint_url = "{s3_endpoint}"\nanon = true\n')
    monkeypatch.setenv("SPARKIFY_CONFIG", str(config))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    from_file = objectstore.settings()
    assert (from_file.endpoint_url, from_file.anon) == (s3_endpoint, True)
    # anonymous (unsigned) requests, endpoint from the [s3] section only: moto serves them
    fs = objectstore.filesystem(from_file)
    assert fs.anon is True
    assert len(objectstore.list_files(f"{s3_sample}/log_data", from_file)) == 30
    env = {"SPARKIFY_S3_ANON": "0", "SPARKIFY_S3_ENDPOINT_URL": "http://127.0.0.1:1"}
    assert objectstore.settings(env=env) == objectstore.S3Settings("http://127.0.0.1:1", False, None, None)
    assert objectstore.settings({"endpoint_url": "http://x:9"}, env=env).endpoint_url == "http://x:9"


def test_s3_sources_into_the_duckdb_target(tmp_path, s3_sample, reference):
    target = str(tmp_path / "star.duckdb")
    summary = run_json(*s3_args(s3_sample, target))
    assert balanced(summary) and summary["tables"] == COUNTS
    assert star_rows(target) == reference
    con = duckdb.connect(target, read_only=True)
    paths = [r[0] for r in con.execute("SELECT path FROM _sparkify_files").fetchall()]
    con.close()
    assert len(paths) == 101 and all(p.startswith(s3_sample) for p in paths)
    assert run_json(*s3_args(s3_sample, target))["files"]["logs"] == {"new": 0, "skipped": 30}


def test_a_bad_line_in_an_s3_log_is_rejected_with_its_line_number(tmp_path, s3_bucket, sample):
    client = boto3.client("s3")
    good = (sample / "log_data/2018/11/2018-11-01-events.json").read_text().splitlines()
    broken = "\n".join([*good[:2], '{"ts": 1541105830796, "page": "NextSong", "userId": "x"', *good[2:]]) + "\n"
    client.put_object(Bucket=s3_bucket, Key="raw/log_data/2018-11-01-events.json", Body=broken.encode())
    upload(client, s3_bucket, sample / "song_data", "raw/song_data")
    target = str(tmp_path / "star.duckdb")
    summary = run_json(*s3_args(f"s3://{s3_bucket}/raw", target))
    assert summary["accounting"]["events"]["rejected"] == 1 and balanced(summary)
    con = duckdb.connect(target, read_only=True)
    (reject,) = con.execute("SELECT source_file, line, raw FROM rejects").fetchall()
    con.close()
    assert reject == (f"s3://{s3_bucket}/raw/log_data/2018-11-01-events.json", 3,
                      '{"ts": 1541105830796, "page": "NextSong", "userId": "x"')


def read_s3_lake(bucket: str, table: str) -> dict[str, list[tuple]]:
    """One table of an S3 lake as plain DuckDB, pyarrow and pandas users read it."""
    con = duckdb.connect()
    con.register_filesystem(plain_fs())
    arrow_fs = objectstore.arrow_filesystem()  # pyarrow's own S3 client, as pandas and pyarrow users have it
    folder, names = f"{bucket}/lake/{table}", TABLES[table].column_names
    options = {"partitioning": ds.HivePartitioning.discover(infer_dictionary=False)} if table == "songs" else {}
    frame = pd.read_parquet(folder, filesystem=arrow_fs, **options)
    data = ds.dataset(folder, format="parquet", partitioning="hive", filesystem=arrow_fs).to_table()
    return {
        "duckdb": read_duckdb(f"s3://{bucket}/lake", table, con),
        "pyarrow": ordered(table, zip(*(data.column(c).to_pylist() for c in names), strict=True)),
        "pandas": ordered(table, frame[names].astype(object).itertuples(index=False, name=None)),
    }


def test_s3_to_s3_lake_reads_back_like_the_duckdb_target(s3_sample, s3_bucket, reference):
    lake = f"s3://{s3_bucket}/lake"
    summary = run_json(*s3_args(s3_sample, lake))
    assert balanced(summary) and summary["tables"] == COUNTS
    for table in COUNTS:
        for reader, rows in read_s3_lake(s3_bucket, table).items():
            assert rows == reference[table], (table, reader)
    assert star_rows(lake) == reference  # sparkify query: DuckDB over the live version's files
    manifest = json.loads(boto3.client("s3").get_object(Bucket=s3_bucket, Key="lake/_sparkify/CURRENT")["Body"].read())
    assert {tuple(e["partition"]) for e in manifest["tables"]["songplays"]} == {(2018, 11)}
    assert sum(e["rows"] for e in manifest["tables"]["songplays"]) == COUNTS["songplays"]
    assert any(e["partition"][0] is None for e in manifest["tables"]["songs"])  # the unknown years
    assert run_cli("check", "--target", lake)[0] == 0
    # between runs, the live version is exactly what a plain listing finds
    listed = {f"s3://{k}" for k in plain_fs().find(f"{s3_bucket}/lake/songplays")}
    assert listed == set(lake_module.lake_files(lake, "songplays"))
    # a rerun writes no star file; a new month adds its partitions and keeps November's objects
    star_objects = {k: v for k, v in keys(s3_bucket, "lake/").items()
                    if k.split("/")[1] in COUNTS}
    assert run_json(*s3_args(s3_sample, lake))["files"]["logs"]["new"] == 0
    assert {k: v for k, v in keys(s3_bucket, "lake/").items() if k.split("/")[1] in COUNTS} == star_objects


def test_kill_before_the_commit_on_s3_then_the_next_run_completes(tmp_path, s3_sample, s3_bucket, reference,
                                                                 capsys):
    lake = f"s3://{s3_bucket}/lake"
    client = boto3.client("s3")
    first_half = [f"raw/log_data/2018/11/2018-11-{d:02d}-events.json" for d in range(16, 31)]
    moved = {k: client.get_object(Bucket=s3_bucket, Key=k)["Body"].read() for k in first_half}
    client.delete_objects(Bucket=s3_bucket, Delete={"Objects": [{"Key": k} for k in first_half]})
    run_json(*s3_args(s3_sample, lake))
    before = star_rows(lake)
    committed = set(keys(s3_bucket, "lake/"))
    for key, body in moved.items():
        client.put_object(Bucket=s3_bucket, Key=key, Body=body)

    flag = tmp_path / "paused"
    proc = start_paused(flag, "S3Store", "run", *s3_args(s3_sample, f"{lake}?lock_lease=2"))
    try:
        uncommitted = set(keys(s3_bucket, "lake/")) - committed
        assert uncommitted and all(flag.read_text() in k for k in uncommitted if k.endswith(".parquet"))
        assert star_rows(lake) == before  # readers that follow _sparkify/CURRENT see the last commit
        code, _ = run_cli("run", *s3_args(s3_sample, f"{lake}?lock_timeout=1"))
        assert code == 1 and "locked by another sparkify run" in error_text(capsys)
    finally:
        kill(proc)
    summary = run_json(*s3_args(s3_sample, f"{lake}?lock_timeout=60"))  # takes over the expired lease
    assert summary["files"]["logs"] == {"new": 15, "skipped": 15}
    assert star_rows(lake) == reference
    live = {k for k in keys(s3_bucket, "lake/") if not k.startswith("lake/_sparkify/")}
    assert not any(flag.read_text() in k for k in live)  # the killed run's objects are gone
    assert {f"s3://{s3_bucket}/{k}" for k in live} == {
        url for t in lake_module.TABLES for url in lake_module.lake_files(lake, t)}
    assert "lake/_sparkify/lock" not in keys(s3_bucket, "lake/_sparkify/")


def test_an_s3_prefix_holding_other_objects_is_refused(s3_bucket, sample, capsys):
    boto3.client("s3").put_object(Bucket=s3_bucket, Key="data/report.csv", Body=b"a,b\n")
    code, _ = run_cli("run", *args(sample, f"s3://{s3_bucket}/data"))
    assert code == 1 and "not a sparkify lake" in error_text(capsys)
    assert set(keys(s3_bucket, "data/")) == {"data/report.csv"}


def test_lake_target_options_set_the_s3_timeouts(s3_endpoint, s3_bucket):
    from sparkify.targets.lake import LakeTarget

    lake = LakeTarget.from_url(f"s3://{s3_bucket}/opts?read_timeout=3&max_attempts=2",
                               {"connect_timeout": "1.5", "endpoint_url": s3_endpoint})
    config = lake.store.client.meta.config
    assert (config.connect_timeout, config.read_timeout, config.retries["total_max_attempts"]) == (1.5, 3.0, 2)
    with pytest.raises(SourceError, match="read_timeout"):
        LakeTarget.from_url(f"s3://{s3_bucket}/opts?read_timeout=soon", {"endpoint_url": s3_endpoint})


def test_the_s3_section_of_the_file_given_with_config_is_read(tmp_path, monkeypatch, s3_endpoint, s3_bucket, sample):
    from sparkify import config

    settings = tmp_path / "elsewhere.toml"
    settings.write_text(f'[s3]\nendpoint_url = "{s3_endpoint}"\nread_timeout = 4\n')
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "SPARKIFY_CONFIG", "SPARKIFY_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    code, out = run_cli("--config", settings, "run", "--songs", sample / "song_data", "--logs", sample / "log_data",
                        "--target", f"s3://{s3_bucket}/from-config", "--json")
    assert code == 0, out
    assert json.loads(out.strip().splitlines()[-1])["tables"] == COUNTS
    listed = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=s3_bucket, Prefix="from-config")
    assert listed["KeyCount"] > 0, "the lake was written to the endpoint of the --config file"
    assert config.load_file(None) == {} and objectstore.settings().endpoint_url is None, "--config ends with its run"
