"""S3 (and S3-compatible stores) for sources and for the lake: one set of settings, three clients.

DuckDB 2.0 has no httpfs offline (ENVIRONMENT.md), so the engine reads
s3:// sources through an fsspec/s3fs filesystem registered on its
connection. The lake reads and writes Parquet through pyarrow's own S3
filesystem (C++, parallel: about 7 times faster than s3fs on many small
files here, and no Python callbacks from I/O threads), and makes its few
conditional writes (lock, pointer) with boto3, whose errors say exactly
which precondition failed.

Settings, most specific first: options handed in (the lake's [target]
section), SPARKIFY_S3_ENDPOINT_URL / _ANON / _PROFILE / _REGION /
_CONNECT_TIMEOUT / _READ_TIMEOUT / _MAX_ATTEMPTS, the [s3] section of the
config file (SPARKIFY_CONFIG or ./sparkify.toml), then AWS_ENDPOINT_URL_S3 /
AWS_ENDPOINT_URL, AWS_REGION / AWS_DEFAULT_REGION and AWS_MAX_ATTEMPTS.
Credentials come from the standard AWS chain (environment, profile files,
instance roles); with an explicit profile, botocore resolves it for all three.

All three clients share bounded timeouts and retries (S3Settings): with
botocore's defaults (60 s read timeout, 5 attempts, and s3fs retrying each
of those 5 times more) an endpoint that accepts connections but never
answers failed a run only after 5 minutes or more.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sparkify import config
from sparkify.files import SourceError, SourceFile, is_remote

if TYPE_CHECKING:
    import duckdb
    import s3fs

log = logging.getLogger(__name__)

SCHEME = "s3://"
_TRUE = ("1", "true", "yes", "on")
SETTINGS = ("endpoint_url", "anon", "profile", "region", "connect_timeout", "read_timeout", "max_attempts")


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str | None = None
    anon: bool = False
    profile: str | None = None
    region: str | None = None
    connect_timeout: float = 5.0
    """Seconds to open a connection."""
    read_timeout: float = 10.0
    """Seconds to wait for the next bytes of an answer: a request to a silent endpoint fails after this."""
    max_attempts: int = 3
    """Attempts per request, first one included (botocore's standard retry mode, backing off up to 2 s)."""


def settings(options: Mapping | None = None, env: Mapping | None = None) -> S3Settings:
    """The S3 settings in force: `options` over SPARKIFY_S3_* over the [s3] config section."""
    env = os.environ if env is None else env
    layers = (
        options or {},
        {name: env.get(f"SPARKIFY_S3_{name.upper()}") for name in SETTINGS},
        config.load_file(None).get("s3", {}),
        {"endpoint_url": env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"),
         "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"),
         "max_attempts": env.get("AWS_MAX_ATTEMPTS")},
    )
    value = {
        name: next((layer[name] for layer in layers if layer.get(name) not in (None, "")), None)
        for name in SETTINGS
    }
    return S3Settings(
        endpoint_url=value["endpoint_url"],
        anon=str(value["anon"]).lower() in _TRUE,
        profile=value["profile"],
        region=value["region"],
        connect_timeout=_positive(value, "connect_timeout", float),
        read_timeout=_positive(value, "read_timeout", float),
        max_attempts=_positive(value, "max_attempts", int),
    )


def _positive(value: dict, name: str, kind: type[float | int]) -> float | int:
    """A timeout or an attempt count as set, or S3Settings' default when unset; anything else is an error."""
    if value[name] is None:
        return getattr(S3Settings, name)
    try:
        number = kind(value[name])
        if number > 0:
            return number
    except (TypeError, ValueError):
        pass
    raise SourceError(f"S3 setting {name}: expected a positive {kind.__name__}, got {value[name]!r}")


def _botocore_config(s: S3Settings) -> dict:
    """botocore Config arguments for these settings (boto3 and, through s3fs, aiobotocore)."""
    return {"connect_timeout": s.connect_timeout, "read_timeout": s.read_timeout,
            "retries": {"mode": "standard", "total_max_attempts": s.max_attempts}}


def _quiet() -> None:
    """botocore logs every credential lookup at INFO (kept for --verbose) and, at DEBUG, every request's
    headers with the session token in them: never shown."""
    verbose = logging.getLogger().isEnabledFor(logging.DEBUG)
    for name in ("botocore", "aiobotocore", "s3fs"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.WARNING)


def filesystem(s: S3Settings | None = None) -> s3fs.S3FileSystem:
    """The s3fs filesystem for these settings (fsspec keeps one instance per settings).

    Its listing cache is what makes the engine's reads fast: list_files fills
    it, and DuckDB's per-file lookups are then answered from it instead of a
    HEAD request per file (71 song files on moto: 3.7 s without, 0.75 s with).
    botocore retries; s3fs's own retry loop around it is turned off, so that
    `max_attempts` is the number of attempts a request gets.
    """
    try:
        import s3fs
    except ModuleNotFoundError as exc:
        raise SourceError("S3 needs the s3 extra: pip install 'sparkify[s3]'") from exc
    s = s or settings()
    _quiet()
    kwargs: dict = {"anon": s.anon, "config_kwargs": _botocore_config(s)}
    if s.endpoint_url:
        kwargs["endpoint_url"] = s.endpoint_url
    if s.profile:
        kwargs["profile"] = s.profile
    if s.region:
        kwargs["client_kwargs"] = {"region_name": s.region}
    fs = s3fs.S3FileSystem(**kwargs)
    fs.retries = 1
    return fs


def client(s: S3Settings | None = None):
    """A boto3 S3 client with the same settings as `filesystem`, for conditional writes."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    s = s or settings()
    _quiet()
    session = boto3.Session(profile_name=s.profile) if s.profile else boto3.Session()
    unsigned = {"signature_version": UNSIGNED} if s.anon else {}
    return session.client(
        "s3",
        endpoint_url=s.endpoint_url,
        region_name=s.region,
        config=Config(**_botocore_config(s), **unsigned),
    )


def arrow_filesystem(s: S3Settings | None = None):
    """pyarrow's S3 filesystem with the same settings (it reads no AWS_ENDPOINT_URL itself)."""
    from urllib.parse import urlsplit

    from pyarrow import fs as pafs

    s = s or settings()
    # delayed open: a small file goes up in one PutObject instead of a 3-request multipart upload
    kwargs: dict = {"anonymous": s.anon, "region": s.region, "allow_delayed_open": True,
                    "connect_timeout": s.connect_timeout, "request_timeout": s.read_timeout,
                    "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=s.max_attempts)}
    if s.endpoint_url:
        parts = urlsplit(s.endpoint_url if "://" in s.endpoint_url else f"https://{s.endpoint_url}")
        kwargs.update(endpoint_override=parts.netloc, scheme=parts.scheme)
    if s.profile and not s.anon:
        import boto3

        creds = boto3.Session(profile_name=s.profile).get_credentials()
        if creds is not None:
            frozen = creds.get_frozen_credentials()
            kwargs.update(access_key=frozen.access_key, secret_key=frozen.secret_key,
                          session_token=frozen.token)
    return pafs.S3FileSystem(**kwargs)


def split_url(url: str) -> tuple[str, str]:
    """('bucket', 'key/prefix') of an s3:// URL, without a trailing slash."""
    if not url.startswith(("s3://", "s3a://")):
        raise SourceError(f"not an s3:// URL: {url}")
    bucket, _, key = url.split("://", 1)[1].partition("/")
    if not bucket:
        raise SourceError(f"no bucket in {url}")
    return bucket, key.strip("/")


def _source_error(url: str, exc: Exception) -> SourceError:
    if isinstance(exc, FileNotFoundError):
        return SourceError(f"source not found: {url} (no such bucket or key)")
    if isinstance(exc, PermissionError):
        return SourceError(f"access denied to {url}: check the AWS credentials or use anon for a public bucket")
    return SourceError(f"cannot list {url}: {exc}")


def _forget(fs, path: str) -> None:
    """Drop cached listings of `path`, its parents and everything under it: a new run lists afresh."""
    fs.invalidate_cache(path)
    for cached in [k for k in fs.dircache if k.startswith(path.rstrip("/") + "/")]:
        fs.dircache.pop(cached, None)


def list_files(source: str, s: S3Settings | None = None) -> list[SourceFile]:
    """Every *.json object under an s3:// prefix (or matching a glob), sorted by path.

    `modified` is the object's ETag (its content hash for single-part uploads),
    so a file re-uploaded with new content is read again.
    """
    fs = filesystem(s)
    bucket, key = split_url(source)
    path = f"{bucket}/{key}" if key else bucket
    _forget(fs, path)
    try:
        if any(ch in key for ch in "*?["):
            found = fs.glob(path, detail=True)
        else:
            found = fs.find(path, detail=True)
            found = {k: v for k, v in found.items() if k.endswith(".json") or k == path}
    except Exception as exc:  # s3fs raises builtin OSErrors; name the source in the message
        raise _source_error(source, exc) from exc
    files = [
        SourceFile(SCHEME + name, int(info.get("size") or 0),
                   str(info.get("ETag") or info.get("LastModified") or "").strip('"'))
        for name, info in found.items() if info.get("type", "file") == "file"
    ]
    if not files and not found:
        raise SourceError(f"source not found: {source} (no objects under this prefix)")
    return sorted(files, key=lambda f: f.path)


def read_bytes(url: str, s: S3Settings | None = None) -> bytes:
    """One object whole: the rare path that locates a rejected line (see rawlines)."""
    bucket, key = split_url(url)
    return filesystem(s).cat_file(f"{bucket}/{key}")


def register(con: duckdb.DuckDBPyConnection, s: S3Settings | None = None) -> None:
    """Let DuckDB read s3:// paths on this connection (read_blob, read_csv, read_parquet)."""
    if not con.filesystem_is_registered("s3"):
        con.register_filesystem(filesystem(s))


def register_for_sources(con: duckdb.DuckDBPyConnection, *sources: str) -> None:
    """Register S3 on the engine's connection when a source is remote; nothing otherwise."""
    if any(is_remote(src) for src in sources):
        register(con)
