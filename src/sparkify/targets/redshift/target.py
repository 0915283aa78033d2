"""Redshift: raw JSON COPied from S3 into staging tables, the star built and merged by SQL in the cluster.

URL: redshift://user@cluster-host:5439/db?iam_role=arn:...&region=us-west-2&staging=s3://bucket/prefix
(also `schema`, `lambda_udf`, `maxerror`). Each option may instead come from the
[target] table of sparkify.toml or SPARKIFY_REDSHIFT_<OPTION>; the URL wins.
The password comes from PGPASSWORD or ~/.pgpass, never from a file of ours.
The driver is psycopg: Redshift speaks the PostgreSQL protocol.

A run (pipeline.run with the in-warehouse engine, engines/warehouse): list
the sources, keep the files the ledger lacks, upload the local ones to the
staging prefix (S3 sources are COPied in place), write one manifest per
kind and the JSONPaths file, then in one transaction: COPY both staging
tables, read each COPY's load errors (copy.py), build the star (the engine)
and merge it (targets/postgres/inwarehouse.py), record the run.
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
from sparkify.batch import WAREHOUSE, Batch, Run, SummaryFn, WriteResult
from sparkify.schema import LOADED_FILES, STAR
from sparkify.sources import SourceFile, is_remote
from sparkify.staging import REDSHIFT, STAGED_FILES, STAGING_EVENTS, Names, Warehouse, q
from sparkify.targets.base import Capabilities, Statements, Step, Target, TargetError, WarehouseHost, outdated_state
from sparkify.targets.postgres import inwarehouse
from sparkify.targets.postgres.connection import redact, scrub, state_columns
from sparkify.targets.redshift.copy import CopySettings, copy_errors, copy_events, copy_songs, jsonpaths_text
from sparkify.targets.redshift.ddl import redshift_ddl, redshift_drop

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


class RedshiftTarget(WarehouseHost, Statements, Target):
    name = "redshift"
    capabilities = Capabilities(engines=("warehouse",), accepts=frozenset({WAREHOUSE}), transactions=True,
                                enforces_constraints=False, partitions=False, dry_run=True)

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
    def names(self) -> Names:
        return Names(self.schema)

    @property
    def warehouse(self) -> Warehouse:
        return Warehouse(REDSHIFT, self.names, self.lambda_udf, self.iam_role)

    # -- connections -----------------------------------------------------------

    def redacted(self, message: object) -> str:
        return scrub(self.url, message)

    def _open(self) -> psycopg.Connection:
        try:
            con = self._connect_fn(self.url, autocommit=True)
        except psycopg.Error as exc:
            raise TargetError(f"cannot connect to {self.describe()}: {self.redacted(exc)}") from None
        con.execute("SET timezone TO 'UTC'")
        con.execute(f"SET search_path TO {q(self.schema)}")
        return con

    @contextmanager
    def session(self) -> Iterator[None]:
        """A connection for the run; the tables are created first if missing (a transaction of their own)."""
        con = self._open()
        self._con = con
        try:
            with self._transaction() as cur:
                for step in self.schema_plan(False):
                    cur.execute(step.sql)
            yield
        finally:
            self._con = None
            con.close()

    def ledger(self) -> dict[str, tuple[int, str]]:
        assert self._con is not None, "use within session()"
        outdated_state(self.describe(), state_columns(self._con, self.schema))
        rows = self._con.execute(f"SELECT path, size, modified FROM {self.names(LOADED_FILES)}").fetchall()
        return {path: (size, modified) for path, size, modified in rows}

    # -- statements ---------------------------------------------------------------

    def schema_plan(self, reset: bool = False) -> list[Step]:
        drops = [Step("drop", s) for s in redshift_drop(self.schema)] if reset else []
        return drops + [Step("table", s) for s in redshift_ddl(self.schema)]

    def write_plan(self, host: str) -> list[Step]:
        return [Step(p, s) for p, s in inwarehouse.merge_statements(self.names, REDSHIFT)]

    def create_schema(self, reset: bool = False) -> None:
        with self.session(), self._transaction() as cur:
            for step in self.schema_plan(reset):
                cur.execute(step.sql)

    @property
    def jsonpaths_url(self) -> str:
        return f"{self.staging}/jsonpaths/{STAGING_EVENTS}.json"

    def object_url(self, run_id: str, kind: str, f: SourceFile) -> str:
        """Where a file is COPied from: in place when already in S3, else under the staging prefix."""
        if is_remote(f.path):
            return f.path
        tag = hashlib.sha256(f.path.encode()).hexdigest()[:12]
        return f"{self.staging}/{run_id}/{kind}/{tag}-{PurePosixPath(f.path).name}"

    def manifest_url(self, run_id: str, kind: str) -> str:
        return f"{self.staging}/{run_id}/{kind}.manifest"

    def copy_steps(self, run: Run) -> list[Step]:
        """The files of this run, both COPYs and what their error tables say."""
        settings = CopySettings(self.iam_role, self.region, self.jsonpaths_url, self.max_errors)
        steps = []
        for kind, files in (("song", run.song_files), ("log", run.log_files)):
            steps += [Step("files", f"INSERT INTO {STAGED_FILES} (path, kind, size, modified, url) "
                                    "VALUES (%s, %s, %s, %s, %s)",
                           (f.path, kind, f.size, f.modified, self.object_url(run.run_id, kind, f)))
                      for f in files]
        if run.log_files:
            steps.append(Step("copy events", copy_events(self.manifest_url(run.run_id, "log"), settings)))
            steps += [Step("copy events", s) for s in copy_errors("event")]
        if run.song_files:
            steps.append(Step("copy songs", copy_songs(self.manifest_url(run.run_id, "song"), settings)))
            steps += [Step("copy songs", s) for s in copy_errors("song")]
        return steps

    def staging_plan(self, run: Run) -> list[Step]:
        uploads = [Step("upload", f"-- upload {f.path} -> {self.object_url(run.run_id, kind, f)}")
                   for kind, f in run.files() if not is_remote(f.path)]
        return uploads + self.copy_steps(run)

    # -- the run --------------------------------------------------------------------

    def prepare_staging(self, run: Run) -> None:
        """Local files to the staging prefix, the manifests and the JSONPaths file."""
        client = objectstore.client()

        def put(url: str, body: bytes) -> None:
            bucket, key = objectstore.split_url(url)
            client.put_object(Bucket=bucket, Key=key, Body=body)

        put(self.jsonpaths_url, jsonpaths_text().encode())
        for kind, files in (("song", run.song_files), ("log", run.log_files)):
            entries = []
            for f in files:
                url = self.object_url(run.run_id, kind, f)
                if not is_remote(f.path):
                    bucket, key = objectstore.split_url(url)
                    client.upload_file(f.path, bucket, key)
                entries.append({"url": url, "mandatory": True})
            if entries:
                put(self.manifest_url(run.run_id, kind), json.dumps({"entries": entries}, indent=2).encode())

    def fill_staging(self, cursor: psycopg.Cursor, run: Run, prepared: None) -> None:
        for step in self.copy_steps(run):
            cursor.execute(step.sql, step.params)

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor]:
        assert self._con is not None, "use within session()"
        try:
            with self._con.transaction():
                yield self._con.cursor()
        except psycopg.Error as exc:
            raise TargetError(f"{self.describe()}: nothing was written: {self.redacted(exc)}") from None

    @contextmanager
    def run_transaction(self, full_refresh: bool) -> Iterator[psycopg.Cursor]:
        with self._transaction() as cur:
            if full_refresh:
                for step in self.schema_plan(True):
                    cur.execute(step.sql)
            yield cur

    def write(self, batch: Batch, full_refresh: bool, summary: SummaryFn) -> WriteResult:
        return inwarehouse.write(batch, self.names, summary, REDSHIFT)

    def row_counts(self) -> dict[str, int]:
        if self._con is None:
            return super().row_counts()
        cur = self._con.cursor()
        return {t.name: cur.execute(f"SELECT COUNT(*) FROM {self.names(t)}").fetchone()[0] for t in STAR}

    def query(self, text: str) -> tuple[list[str], Iterator[tuple]]:
        con = self._open()
        try:
            cur = con.execute(text)
            columns, rows = [d.name for d in cur.description], cur.fetchall()
        except psycopg.Error as exc:
            raise TargetError(f"query failed on {self.describe()}: {self.redacted(exc)}") from None
        finally:
            con.close()
        return columns, iter(rows)
