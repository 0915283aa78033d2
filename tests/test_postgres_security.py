"""The PostgreSQL target: connection errors and secrets.
"""

from __future__ import annotations

import json
import uuid

import pytest
from psycopg import sql

from sparkify.targets import open_target
from sparkify.targets.base import TargetError
from sparkify.targets.postgres import PostgresTarget
from sparkify.targets.postgres.connection import redact
from tests.conftest import run_cli
from tests.pgutil import (
    STAR_COUNTS,
    _args,
    _pg,
)

pytestmark = pytest.mark.postgres


# -- errors and secrets --------------------------------------------------------------------------

@pytest.fixture()
def secret_url(pg_url: str):
    """The test database reached as a role of its own, with a password in the URL."""
    role, password = "sp_" + uuid.uuid4().hex[:10], "Pw-" + uuid.uuid4().hex
    dbname = pg_url.rsplit("/", 1)[1]
    with _pg(pg_url) as con:
        con.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        con.execute(sql.SQL("GRANT CREATE, CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(dbname), sql.Identifier(role)))
        con.execute(sql.SQL("GRANT CREATE, USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    host = pg_url.split("@", 1)[1]
    yield f"postgresql://{role}:{password}@{host}", password
    with _pg(pg_url) as con:
        con.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        con.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_password_is_never_printed(secret_url, sample, capsys, caplog):
    url, password = secret_url
    caplog.set_level("DEBUG")
    code, out = run_cli("-v", "run", *_args(sample, url), "--json")
    summary = json.loads(out.strip().splitlines()[-1])
    assert (code, summary["tables"]) == (0, STAR_COUNTS)
    assert password not in summary["target"] and ":***@" in summary["target"]
    outputs = [json.dumps(summary)]
    base, dbname = url.rsplit("/", 1)
    host_port = base.rsplit("@", 1)[1]
    for args in (("check", "--target", url), ("query", "SELECT count(*) FROM songplays", "--target", url),
                 ("query", "SELECT nonsense FROM songplays", "--target", url),
                 ("schema", "--target", url),
                 ("query", "SELECT 1", "--target", base + "/no_such_db"),
                 ("query", "SELECT 1", "--target", url.replace(host_port, "127.0.0.1:1")),
                 ("run", *_args(sample, url + "?options=-cbogus_setting%3D1"))):
        code, out = run_cli("-v", *args)
        outputs.append(out)
    captured = capsys.readouterr()
    outputs += [captured.out, captured.err, caplog.text]
    assert "***" in captured.err
    for text in outputs:
        assert password not in text


def test_connection_errors_are_clear_and_redacted(pg_url):
    base = pg_url.rsplit("/", 1)[0].replace("postgres@", "postgres:hunter22@")
    cases = {
        "does not exist": base + "/no_such_database",
        "Connection refused": "postgresql://postgres:hunter22@127.0.0.1:1/postgres",
        'role "nobody" does not exist': base.replace("postgres:", "nobody:") + "/postgres",
    }
    for reason, url in cases.items():
        with pytest.raises(TargetError) as err:
            open_target(url).query("SELECT 1")
        message = str(err.value)
        assert reason in message and redact(url) in message and "hunter22" not in message
    slow = PostgresTarget.from_url("postgresql://postgres:hunter22@10.255.255.1:5432/x", {"connect_timeout": 1})
    with pytest.raises(TargetError, match="cannot connect to PostgreSQL at postgresql://postgres:\\*\\*\\*@10.255"):
        slow.query("SELECT 1")


def test_redact():
    assert redact("postgresql://u:p%40ss@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert redact("postgres://u@h/db?sslmode=require&password=x") == "postgres://u@h/db?sslmode=require&password=***"
    assert redact("postgresql://h/db") == "postgresql://h/db"
    assert redact("postgresql://") == "postgresql://"
