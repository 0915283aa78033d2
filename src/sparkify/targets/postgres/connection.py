"""The PostgreSQL protocol's shared parts, for PostgreSQL and for Redshift, which speaks it too.

URLs and messages with their passwords redacted, and the advisory lock key
that keeps two runs on one schema apart.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import unquote

from sparkify.targets.base import VERSIONED_STATE

_PASSWORD_PARAM = re.compile(r"(?i)(password\s*=\s*)('[^']*'|[^&\s]*)")


def redact(url: str) -> str:
    """The URL with any password shown as ***: all that logs, errors and describe() ever show."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return _PASSWORD_PARAM.sub(r"\1***", url)
    head, qmark, params = rest.partition("?")
    userinfo, at, hostpath = head.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.split(":", 1)[0] + ":***"
    params = _PASSWORD_PARAM.sub(r"\1***", params)
    return f"{scheme}{sep}{userinfo}{at}{hostpath}{qmark}{params}"


def secrets(url: str) -> set[str]:
    """Every spelling of the passwords in a URL, to scrub them from messages we did not write."""
    found = {m.group(2).strip("'") for m in _PASSWORD_PARAM.finditer(url)}
    userinfo = url.partition("://")[2].partition("?")[0].rpartition("@")[0]
    if ":" in userinfo:
        found.add(userinfo.split(":", 1)[1])
    return {s for s in found | {unquote(s) for s in found} if s}


def scrub(url: str, message: object) -> str:
    """A message we did not write (a driver's error), with the URL redacted and every password spelling removed."""
    text = str(message).strip().replace(url, redact(url))
    for secret in secrets(url):
        text = text.replace(secret, "***")
    return text


def lock_key(schema: str) -> int:
    """The advisory lock of a schema (advisory locks are per database already)."""
    return int.from_bytes(hashlib.sha256(f"sparkify:{schema}".encode()).digest()[:8], "big", signed=True)


def state_columns(con, schema: str) -> dict[str, list[str]]:
    """The columns of the versioned state tables in `schema` (targets.base.outdated_state), from
    information_schema: PostgreSQL and Redshift both answer it."""
    columns: dict[str, list[str]] = {name: [] for name in VERSIONED_STATE}
    for table, column in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name IN (%s, %s)", [schema, *columns]).fetchall():
        columns[table].append(column)
    return columns
