"""Secrets stay secret, identifiers are quoted, values never pasted into SQL or shell commands.

Credentials reach sparkify from the environment (PGPASSWORD, AWS_*), from
files (~/.pgpass through PGPASSFILE, the AWS shared credentials file) or a
URL; every line the commands print (with --verbose, so debug logs too),
every error, every --json summary and the summaries stored in the target
are scanned for the secret values: none may appear. PostgreSQL runs on a
private server of this module that really checks passwords (scram-sha-256),
so a wrong password really fails.
"""

from __future__ import annotations

import ast
import json
import secrets
import string
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import REPO, run_json
from tests.faultservers import PrivatePostgres, free_port
from tests.killharness import child_env, sparkify

PASSWORD = "Pw:" + secrets.token_hex(8) + "@/%?&#' x"
"""A password with every character a URL or a SQL string would trip on."""
ACCESS_KEY = "AKIA" + "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16))
SECRET_KEY = secrets.token_urlsafe(30)
SESSION_TOKEN = secrets.token_urlsafe(60)
SECRETS = {PASSWORD, quote(PASSWORD, safe=""), SECRET_KEY, SESSION_TOKEN}
USER = "sparkify_writer"


@pytest.fixture(scope="module")
def private_pg():
    from psycopg import sql

    server = PrivatePostgres(password=secrets.token_hex(12)).start()
    server.create_database("sparkify")
    with server.admin() as con:
        con.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(USER), sql.Literal(PASSWORD)))
        con.execute(sql.SQL("ALTER DATABASE sparkify OWNER TO {}").format(sql.Identifier(USER)))
    yield server
    server.stop()


@pytest.fixture()
def small_sample(sample: Path, tmp_path: Path) -> dict[str, Path]:
    """A few song files and two log days: enough to load, quick to run many commands on."""
    import shutil

    songs, logs = tmp_path / "in" / "songs", tmp_path / "in" / "logs"
    songs.mkdir(parents=True)
    logs.mkdir(parents=True)
    for path in sorted((sample / "song_data").rglob("*.json"))[:10]:
        shutil.copy2(path, songs / path.name)
    for path in sorted((sample / "log_data").rglob("*.json"))[:2]:
        shutil.copy2(path, logs / path.name)
    return {"songs": songs, "logs": logs}


class Transcript:
    """Every command's output, to be scanned for secrets at the end."""

    def __init__(self, workdir: Path, env: dict[str, str]):
        self.workdir, self.env, self.text = workdir, env, []

    def __call__(self, *args: object, expect: int | None = 0):
        result = sparkify("-v", *args, workdir=self.workdir, env=self.env, timeout=300)
        self.text.append(result.output)
        if expect is not None:
            assert result.code == expect, result.output[-3000:]
        return result

    def leaks(self, *also: str) -> list[str]:
        """The secrets (and `also`, raw or URL-quoted) found in any output."""
        wanted = SECRETS | set(also) | {quote(a, safe="") for a in also}
        return sorted({s for s in wanted for chunk in self.text if s in chunk})


def _pg_commands(t: Transcript, target: str, data: dict[str, Path], config: Path | None = None) -> None:
    """run --json, check, query of the stored run summaries, a failing query: all scanned."""
    where = ["--config", config] if config else []
    target_arg = [] if config else ["--target", target]
    t(*where, "run", "--songs", data["songs"], "--logs", data["logs"], *target_arg, "--json")
    t(*where, "check", *target_arg)
    t(*where, "query", "SELECT run_id, summary FROM _sparkify_runs", *target_arg, "--format", "json")
    t(*where, "query", "SELECT nonsense FROM nowhere", *target_arg, expect=1)


def test_postgres_password_never_shows(private_pg, small_sample, tmp_path):
    env = child_env(tmp_path / "tmp")
    t = Transcript(tmp_path, env)
    with_password = private_pg.url("sparkify", USER, quote(PASSWORD, safe=""))
    _pg_commands(t, with_password, small_sample)

    t.env = child_env(tmp_path / "tmp", PGPASSWORD=PASSWORD)
    _pg_commands(t, private_pg.url("sparkify", USER), small_sample)

    pgpass = tmp_path / "pgpass"
    escaped = PASSWORD.replace("\\", "\\\\").replace(":", "\\:")
    pgpass.write_text(f"127.0.0.1:{private_pg.port}:sparkify:{USER}:{escaped}\n")
    pgpass.chmod(0o600)
    t.env = child_env(tmp_path / "tmp", PGPASSFILE=str(pgpass))
    _pg_commands(t, private_pg.url("sparkify", USER), small_sample)

    config = tmp_path / "sparkify.toml"
    config.write_text(f"[target]\nurl = {json.dumps(with_password)}\n")
    t.env = env
    _pg_commands(t, with_password, small_sample, config)

    wrong = t("run", "--songs", small_sample["songs"], "--logs", small_sample["logs"],
              "--target", private_pg.url("sparkify", USER, quote(PASSWORD[::-1], safe="")), expect=1)
    assert "password authentication failed" in wrong.stderr
    unreachable = with_password.replace(f":{private_pg.port}/", f":{free_port()}/")
    t("check", "--target", unreachable, expect=1)
    assert not t.leaks(PASSWORD[::-1]), "a password was printed"


def test_aws_keys_never_show(s3_endpoint, s3_bucket, small_sample, tmp_path):
    import boto3

    s3 = boto3.client("s3")
    for kind in ("songs", "logs"):
        for path in small_sample[kind].iterdir():
            s3.upload_file(str(path), s3_bucket, f"raw/{kind}/{path.name}")
    keys = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_SESSION_TOKEN": SESSION_TOKEN}
    t = Transcript(tmp_path, child_env(tmp_path / "tmp", **keys))
    lake = f"s3://{s3_bucket}/lake"
    t("run", "--songs", f"s3://{s3_bucket}/raw/songs", "--logs", f"s3://{s3_bucket}/raw/logs", "--target", lake,
      "--json")
    t("check", "--target", lake, "--json")
    t("query", "SELECT * FROM _sparkify_runs", "--target", lake, "--format", "json")
    t("run", "--songs", f"s3://{s3_bucket}/missing", "--logs", small_sample["logs"], "--target", lake, expect=1)
    t("query", "SELECT 1", "--target", f"s3://{s3_bucket}-absent/lake", expect=1)

    no_keys = {k: v for k, v in child_env(tmp_path / "tmp").items() if not k.startswith("AWS_")}
    no_keys.update(AWS_ENDPOINT_URL=s3_endpoint, AWS_DEFAULT_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true",
                   AWS_CONFIG_FILE=str(tmp_path / "no-config"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    t.env = no_keys
    t("check", "--target", lake, expect=1)  # no credentials anywhere: refused
    credentials = tmp_path / "credentials"
    credentials.write_text(f"[loader]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
                           f"aws_session_token = {SESSION_TOKEN}\n")
    t.env = {**no_keys, "AWS_SHARED_CREDENTIALS_FILE": str(credentials), "SPARKIFY_S3_PROFILE": "loader"}
    t("check", "--target", lake, "--json")  # the same keys from the shared credentials file: accepted
    assert not t.leaks(ACCESS_KEY), "AWS keys were printed"


# -- identifiers and values ---------------------------------------------------------

HOSTILE_SCHEMA = 'a"b; drop schema public cascade; --'


def test_a_hostile_schema_name_is_quoted(pg_url, sample, tmp_path):
    import psycopg

    days = sorted((sample / "log_data").rglob("*.json"))
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, part in ((first, days[:3]), (second, days[:6])):
        folder.mkdir()
        for day in part:
            (folder / day.name).write_bytes(day.read_bytes())
    config = tmp_path / "sparkify.toml"
    config.write_text(f"[target]\nurl = {json.dumps(pg_url)}\nschema = {json.dumps(HOSTILE_SCHEMA)}\n")
    for logs in (first, second):  # the bulk load into an empty star, then the merge
        result = sparkify("--config", config, "run", "--songs", sample / "song_data", "--logs", logs, "--json",
                          workdir=tmp_path, env=child_env(tmp_path / "tmp"))
        assert result.code == 0, result.stderr[-3000:]
    check = sparkify("--config", config, "check", workdir=tmp_path, env=child_env(tmp_path / "tmp"))
    assert check.code == 0, check.output[-3000:]
    with psycopg.connect(pg_url) as con:
        schemas = {r[0] for r in con.execute("SELECT nspname FROM pg_namespace WHERE nspname !~ '^(pg_|information)'")}
        assert schemas == {"public", HOSTILE_SCHEMA}
        tables = {r[0] for r in con.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [HOSTILE_SCHEMA])}
    assert {"songplays", "users", "songs", "artists", "time"} <= tables


def test_source_paths_with_quotes_reach_the_ledger_intact(target_url, sample, tmp_path):
    logs = tmp_path / """it's "quoted"; DROP TABLE songplays; --"""
    logs.mkdir()
    day = sorted((sample / "log_data").rglob("*.json"))[0]
    (logs / "o'clock.json").write_bytes(day.read_bytes().rstrip(b"\n") + b"\nnot json\n")
    run_json("--songs", sample / "song_data", "--logs", logs, "--target", target_url)
    from sparkify.targets import open_target

    target = open_target(target_url)
    try:
        _, rows = target.query("SELECT path FROM _sparkify_files WHERE kind = 'log'")
        assert [r[0] for r in rows] == [str(logs / "o'clock.json")]
        _, rows = target.query("SELECT source_file, raw FROM rejects")
        assert list(rows) == [(str(logs / "o'clock.json"), "not json")]
        _, rows = target.query("SELECT count(*) FROM songplays")
        assert next(iter(rows))[0] > 0
    finally:
        target.close()


def test_a_setting_is_not_pasted_into_sql(sample, tmp_path):
    target = tmp_path / "t.duckdb"
    result = sparkify("run", "--songs", sample / "song_data", "--logs", sample / "log_data", "--target", target,
                      "--memory-limit", "1GB'; CREATE TABLE pwned AS SELECT 1; --",
                      workdir=tmp_path, env=child_env(tmp_path / "tmp"))
    assert "Traceback" not in result.output
    if target.exists():
        import duckdb

        con = duckdb.connect(str(target), read_only=True)
        tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
        con.close()
        assert "pwned" not in tables


def pasted_values(source: str) -> list[int]:
    """Lines where an f-string given to execute()/sql() puts a value inside a SQL string literal ('{x}')."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "executemany", "sql", "query") and node.args
                and isinstance(node.args[0], ast.JoinedStr)):
            continue
        parts = node.args[0].values
        for before, value in zip(parts, parts[1:]):
            if isinstance(value, ast.FormattedValue) and isinstance(before, ast.Constant) \
                    and str(before.value).endswith("'"):
                lines.append(node.lineno)
    return lines


def test_no_value_is_pasted_into_sql_and_no_shell_is_used():
    assert pasted_values("con.execute(f\"SET x = '{value}'\")") == [1], "the scan itself must catch the pattern"
    offenders = {}
    for path in sorted((REPO / "src" / "sparkify").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = str(path.relative_to(REPO))
        if pasted_values(text):
            offenders[rel] = pasted_values(text)
        for word in ("shell=True", "os.system(", "os.popen(", "subprocess."):
            if word in text:
                offenders.setdefault(rel, []).append(word)
    assert not offenders, offenders


def test_dry_run_prints_statements_but_no_secret(small_sample, tmp_path, s3_endpoint):
    keys = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_SESSION_TOKEN": SESSION_TOKEN}
    t = Transcript(tmp_path, child_env(tmp_path / "tmp", **keys))
    redshift = (f"redshift://awsuser:{quote(PASSWORD, safe='')}@example.invalid:5439/dev"
                "?iam_role=arn:aws:iam::123456789012:role/loader&staging=s3://bucket/stage")
    shown = t("run", "--songs", small_sample["songs"], "--logs", small_sample["logs"], "--dry-run",
              "--target", redshift)
    assert "COPY " in shown.stdout, "the dry run printed no statement"
    t("run", "--songs", small_sample["songs"], "--logs", small_sample["logs"], "--dry-run",
      "--target", f"postgresql://postgres:{quote(PASSWORD, safe='')}@127.0.0.1:{free_port()}/db", expect=None)
    assert not t.leaks(ACCESS_KEY), "a secret was printed"
