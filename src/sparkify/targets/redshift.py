"""Redshift: raw JSON COPied from S3 into staging tables, the star built and merged by SQL in the cluster.

URL: redshift://user@cluster-host:5439/db?iam_role=arn:...&region=us-west-2&staging=s3://bucket/prefix
(also `schema`, `lambda_udf`, `maxerror`). Each option may instead come from the
[target] table of sparkify.toml or SPARKIFY_REDSHIFT_<OPTION>; the URL wins.
The password comes from PGPASSWORD or ~/.pgpass, never from a file of ours.
The driver is psycopg: Redshift speaks the PostgreSQL protocol.

A run: list the sources, keep the files the ledger lacks, upload the local
ones to the staging prefix (S3 sources are COPied in place), write one
manifest per kind and the JSONPaths file, then in one transaction: COPY
both staging tables, read each COPY's load errors, build and merge the
star (targets/redshift_sql.py), record the run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import PurePosixPath
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg

from sparkify import objectstore
from sparkify.pipeline import RejectLimit
from sparkify.progress import Progress
from sparkify.schema import LOADED_FILES
from sparkify.sources import SourceFile, is_remote
from sparkify.targets import redshift_sql as sql
from sparkify.targets.base import Capabilities, Target, TargetError
from sparkify.targets.postgres import _secrets, redact
from sparkify.targets.pushdown import (
    RunContext,
    Step,
    finish,
    merge_steps,
    prepare,
    run_info_step,
    star_steps,
    table_counts,
)

log = logging.getLogger(__name__)

OPTIONS = ("iam_role", "region", "staging", "schema", "lambda_udf", "maxerror")
ENV_PREFIX = "SPARKIFY_REDSHIFT_"
LIBPQ_OPTIONS = ("sslmode", "connect_timeout", "application_name")
PATTERNS = {
    "iam_role": r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]+",
    "region": r"[a-z]{2}(-[a-z]+)+-[0-9]+",
    "staging": r"s3://[a-z0-9][a-z0-9.-]+(/[\w.=/-]*)?",
    "lambda_udf": r"[\w-]+(:[\w-]+)?",
    "maxerror": r"[0-9]+",
    "schema": r"[A-Za-z_][\w$]*",
}
"""What the options may hold: they reach COPY as literals, which take no parameters."""


class RedshiftTarget(Target):
    name = "redshift"
    capabilities = Capabilities(transactions=True, enforces_constraints=False, upsert=True, partitions=False)
    pushdown = True

    def __init__(self, url: str, iam_role: str, staging: str, region: str | None = None, schema: str = "public",
                 lambda_udf: str | None = None, max_errors: int = 100_000, connect=psycopg.connect):
        self.url, self.iam_role, self.region, self.schema = url, iam_role, region, schema
        self.staging = staging.rstrip("/")
        self.lambda_udf = lambda_udf
        self.max_errors = max_errors
        self._connect_fn = connect
        self._con: psycopg.Connection | None = None

    @classmethod
    def from_url(cls, url: str, options: dict, env: dict | None = None) -> RedshiftTarget:
        env = os.environ if env is None else env
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        value = {k: query.get(k) or options.get(k) or env.get(ENV_PREFIX + k.upper()) for k in OPTIONS}
        missing = [k for k in ("iam_role", "staging") if not value[k]]
        if missing:
            raise TargetError(f"Redshift needs {' and '.join(missing)}: in the URL (?{missing[0]}=...), "
                              f"the [target] table or {ENV_PREFIX}{missing[0].upper()}")
        for name, pattern in PATTERNS.items():
            if value[name] and not re.fullmatch(pattern, str(value[name])):
                raise TargetError(f"Redshift option {name} is not valid: {value[name]!r} (expected {pattern})")
        libpq = urlencode([(k, v) for k, v in query.items() if k in LIBPQ_OPTIONS])
        pg_url = urlunsplit(("postgresql", parts.netloc, parts.path, libpq, ""))
        return cls(pg_url, str(value["iam_role"]), str(value["staging"]), value["region"] or None,
                   str(value["schema"] or "public"), value["lambda_udf"] or None,
                   int(value["maxerror"] or 100_000))

    def describe(self) -> str:
        return f"Redshift {redact(self.url.replace('postgresql://', 'redshift://', 1))} schema {self.schema}"

    @property
    def names(self) -> sql.Names:
        return sql.Names(self.schema)

    # -- connections -----------------------------------------------------------

    def _scrub(self, message: object) -> str:
        text = str(message).strip().replace(self.url, redact(self.url))
        for secret in _secrets(self.url):
            text = text.replace(secret, "***")
        return text

    def _open(self) -> psycopg.Connection:
        try:
            con = self._connect_fn(self.url, autocommit=True)
        except psycopg.Error as exc:
            raise TargetError(f"cannot connect to {self.describe()}: {self._scrub(exc)}") from None
        con.execute("SET timezone TO 'UTC'")
        con.execute(f"SET search_path TO {sql.q(self.schema)}")
        return con

    @contextmanager
    def session(self) -> Iterator[None]:
        con = self._open()
        self._con = con
        try:
            yield
        finally:
            self._con = None
            con.close()

    def engine_connection(self):
        raise TargetError("Redshift computes the star in the cluster: there is no engine connection")

    def catalogue_relation(self, con, full_refresh: bool) -> str:
        raise TargetError("Redshift computes the star in the cluster: its catalogue stays there")

    def write(self, batch, full_refresh, summary):
        raise TargetError("Redshift loads raw files itself: use `sparkify run` (the in-warehouse path)")

    def ledger(self) -> dict[str, tuple[int, str]]:
        assert self._con is not None, "use within session()"
        rows = self._con.execute(f"SELECT path, size, modified FROM {self.names(LOADED_FILES)}").fetchall()
        return {path: (size, modified) for path, size, modified in rows}

    # -- statements ---------------------------------------------------------------

    def ddl_steps(self, reset: bool = False) -> list[Step]:
        drops = [Step("drop", s) for s in sql.redshift_drop(self.schema)] if reset else []
        return drops + [Step("table", s) for s in sql.redshift_ddl(self.schema)]

    def create_schema(self, reset: bool = False) -> None:
        with self.session(), self._transaction() as cur:
            for step in self.ddl_steps(reset):
                cur.execute(step.sql)

    @property
    def jsonpaths_url(self) -> str:
        return f"{self.staging}/jsonpaths/{sql.STAGING_EVENTS}.json"

    def object_url(self, run_id: str, kind: str, f: SourceFile) -> str:
        """Where a file is COPied from: in place when already in S3, else under the staging prefix."""
        if is_remote(f.path):
            return f.path
        tag = hashlib.sha256(f.path.encode()).hexdigest()[:12]
        return f"{self.staging}/{run_id}/{kind}/{tag}-{PurePosixPath(f.path).name}"

    def manifest_url(self, run_id: str, kind: str) -> str:
        return f"{self.staging}/{run_id}/{kind}.manifest"

    def copy_steps(self, ctx: RunContext) -> list[Step]:
        """Staging tables, the files of this run, both COPYs and what their error tables say."""
        settings = sql.CopySettings(self.iam_role, self.region, self.jsonpaths_url, self.max_errors)
        steps = [Step("functions", s) for s in sql.text_functions(sql.REDSHIFT, self.lambda_udf, self.iam_role)]
        steps += [Step("staging", s) for s in sql.staging_ddl()] + [run_info_step(ctx)]
        for kind, files in (("song", ctx.song_files), ("log", ctx.log_files)):
            steps += [Step("files", f"INSERT INTO {sql.STAGED_FILES} (path, kind, size, modified, url) "
                                    "VALUES (%s, %s, %s, %s, %s)",
                           (f.path, kind, f.size, f.modified, self.object_url(ctx.run_id, kind, f)))
                      for f in files]
        if ctx.log_files:
            steps.append(Step("copy events", sql.copy_events(self.manifest_url(ctx.run_id, "log"), settings)))
            steps += [Step("copy events", s) for s in sql.copy_errors("event")]
        if ctx.song_files:
            steps.append(Step("copy songs", sql.copy_songs(self.manifest_url(ctx.run_id, "song"), settings)))
            steps += [Step("copy songs", s) for s in sql.copy_errors("song")]
        return steps

    def plan(self, songs: str, logs: str, full_refresh: bool = False) -> list[Step]:
        """Every statement of a run over all listed files, for --dry-run (nothing is contacted but the sources)."""
        ctx = prepare(_NoLedger(), songs, logs, True, Progress(quiet=True))
        uploads = [Step("upload", f"-- upload {f.path} -> {self.object_url(ctx.run_id, kind, f)}")
                   for kind, files in (("song", ctx.song_files), ("log", ctx.log_files))
                   for f in files if not is_remote(f.path)]
        return (self.ddl_steps(full_refresh) + uploads + self.copy_steps(ctx)
                + star_steps(sql.REDSHIFT, self.names) + merge_steps(self.names))

    # -- the run --------------------------------------------------------------------

    def upload(self, ctx: RunContext) -> None:
        """Local files to the staging prefix, the manifests and the JSONPaths file."""
        client = objectstore.client()

        def put(url: str, body: bytes) -> None:
            bucket, key = objectstore.split_url(url)
            client.put_object(Bucket=bucket, Key=key, Body=body)

        put(self.jsonpaths_url, sql.jsonpaths_text().encode())
        for kind, files in (("song", ctx.song_files), ("log", ctx.log_files)):
            entries = []
            for f in files:
                url = self.object_url(ctx.run_id, kind, f)
                if not is_remote(f.path):
                    bucket, key = objectstore.split_url(url)
                    client.upload_file(f.path, bucket, key)
                entries.append({"url": url, "mandatory": True})
            if entries:
                put(self.manifest_url(ctx.run_id, kind), json.dumps({"entries": entries}, indent=2).encode())

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor]:
        assert self._con is not None, "use within session()"
        try:
            with self._con.transaction():
                yield self._con.cursor()
        except psycopg.Error as exc:
            raise TargetError(f"{self.describe()}: nothing was written: {self._scrub(exc)}") from None

    def run(self, songs: str, logs: str, full_refresh: bool = False, max_rejects: RejectLimit = RejectLimit(),
            progress: Progress | None = None) -> dict:
        progress = progress or Progress(quiet=True)
        with self.session():
            with self._transaction() as cur:
                for step in self.ddl_steps(False):
                    cur.execute(step.sql)
            ctx = prepare(self, songs, logs, full_refresh, progress)
            with progress.stage("upload"):
                self.upload(ctx)
            with self._transaction() as cur:
                if full_refresh:
                    for step in self.ddl_steps(True):
                        cur.execute(step.sql)
                with progress.stage("copy"):
                    for step in self.copy_steps(ctx):
                        cur.execute(step.sql, step.params)
                summary = finish(cur, ctx, sql.REDSHIFT, self.names, self, max_rejects, progress)
            summary["tables"] = table_counts(self._con.cursor(), self.names)
        return summary

    def query(self, text: str) -> tuple[list[str], Iterator[tuple]]:
        con = self._open()
        try:
            cur = con.execute(text)
            columns, rows = [d.name for d in cur.description], cur.fetchall()
        except psycopg.Error as exc:
            raise TargetError(f"query failed on {self.describe()}: {self._scrub(exc)}") from None
        finally:
            con.close()
        return columns, iter(rows)


class _NoLedger:
    """The ledger of a dry run: nothing loaded, so every listed file is shown."""

    @staticmethod
    def ledger() -> dict:
        return {}
