"""One writer at a time on a lake: a lock file on local disk, a lock object on S3.

Readers never take the lock. A second run waits for the first (saying so
once), up to a timeout, then stops with a message naming the holder.

Local disk: `fcntl.flock` on `lake/_lock`. The kernel drops it when the
holder exits, however it exits (a SIGKILL included), so it is never stale.

S3: `_sparkify/lock`, created with a conditional PUT (`If-None-Match: *`),
so exactly one run can create it. A killed run cannot delete it, so the lock
is a lease: its holder renews it (conditional PUT on its own ETag) every
third of the lease, and a waiter may take over a lock whose last renewal is
older than the lease, by the S3 server's clock (`Date` against
`LastModified`), with a conditional PUT on the stale ETag: exactly one
waiter wins. A holder that fails to renew stops before it commits.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import threading
import time
from email.utils import parsedate_to_datetime

from sparkify.targets.base import TargetError

log = logging.getLogger(__name__)

_CONFLICT = ("PreconditionFailed", "ConditionalRequestConflict")


def _holder(**extra) -> str:
    return json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                       "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra})


def _describe(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "holder unknown"


class _Waiting:
    """The wait loop shared by both locks: announce once, give up after the timeout."""

    def __init__(self, what: str, timeout: float):
        self.what, self.timeout = what, timeout
        self.deadline = time.monotonic() + timeout
        self.announced = False

    def tick(self, holder: str, pause: float) -> None:
        if time.monotonic() > self.deadline:
            raise TargetError(f"{self.what} is locked by another sparkify run ({holder}); "
                              f"gave up after waiting {self.timeout:g} s")
        if not self.announced:
            log.warning("%s is locked by another sparkify run (%s): waiting up to %g s",
                        self.what, holder, self.timeout)
            self.announced = True
        time.sleep(pause)


class LocalLock:
    def __init__(self, path: str, timeout: float, what: str):
        self.path, self.timeout, self.what = path, timeout, what
        self.fd: int | None = None

    def __enter__(self) -> LocalLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        waiting = _Waiting(self.what, self.timeout)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                try:
                    waiting.tick(_describe(os.pread(fd, 4096, 0).decode("utf-8", "replace")), 0.2)
                except BaseException:
                    os.close(fd)
                    raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, _holder().encode(), 0)
        self.fd = fd
        return self

    def check(self) -> None:
        """Held until released: the kernel does not take a flock away."""

    def __exit__(self, *exc) -> None:
        assert self.fd is not None
        os.ftruncate(self.fd, 0)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None


class S3Lock:
    def __init__(self, client, bucket: str, key: str, timeout: float, lease: float, what: str):
        self.client, self.bucket, self.key = client, bucket, key
        self.timeout, self.lease, self.what = timeout, lease, what
        self.etag: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._owned = threading.Lock()  # a renewal and an ownership check never interleave
        self._thread: threading.Thread | None = None

    def _put(self, **condition) -> str:
        body = _holder(lease=self.lease).encode()
        return self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, **condition)["ETag"]

    def __enter__(self) -> S3Lock:
        from botocore.exceptions import ClientError

        waiting = _Waiting(f"{self.what} (lock object s3://{self.bucket}/{self.key})", self.timeout)
        while self.etag is None:
            try:
                self.etag = self._put(IfNoneMatch="*")
                break
            except ClientError as exc:
                if exc.response["Error"]["Code"] not in _CONFLICT:
                    raise TargetError(f"cannot lock {self.what}: {exc}") from exc
            held = self._read()
            if held is None:
                continue  # released between our PUT and our GET: try again at once
            text, etag, age, lease = held
            if age > lease:
                try:
                    self.etag = self._put(IfMatch=etag)
                    log.warning("%s: took over a lock not renewed for %.0f s (%s)", self.what, age, _describe(text))
                    break
                except ClientError as exc:
                    if exc.response["Error"]["Code"] not in _CONFLICT:
                        raise TargetError(f"cannot lock {self.what}: {exc}") from exc
                    continue  # another waiter took it first
            waiting.tick(_describe(text) + f"; expires unless renewed in {max(lease - age, 0):.0f} s", 1.0)
        self._thread = threading.Thread(target=self._renew, name="sparkify-lake-lock", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> tuple[str, str, float, float] | None:
        """(body, ETag, seconds since last renewal by the server's clock, lease) of the held lock."""
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise
        text = obj["Body"].read().decode("utf-8", "replace")
        now = parsedate_to_datetime(obj["ResponseMetadata"]["HTTPHeaders"]["date"])
        try:
            lease = float(json.loads(text).get("lease", self.lease))
        except (ValueError, AttributeError):
            lease = self.lease
        return text, obj["ETag"], (now - obj["LastModified"]).total_seconds(), lease

    def _renew(self) -> None:
        while not self._stop.wait(self.lease / 3):
            with self._owned:
                try:
                    self.etag = self._put(IfMatch=self.etag)
                except Exception:  # any failure to renew means another run may take over
                    log.error("%s: could not renew the lock; this run will not publish", self.what)
                    self.lost = True
                    return

    def check(self) -> None:
        """Raise unless the lock object is still ours: asked of S3 itself, not of the renewal thread,
        which may not have woken yet after the process was stopped past its lease."""
        from botocore.exceptions import ClientError

        with self._owned:
            if not self.lost:
                try:
                    self.lost = self.client.head_object(Bucket=self.bucket, Key=self.key)["ETag"] != self.etag
                except ClientError:
                    self.lost = True
        if self.lost:
            raise TargetError(f"{self.what}: the lock was lost during the run (another run took it over); "
                              "nothing was published")

    def __exit__(self, *exc) -> None:
        from botocore.exceptions import ClientError

        self._stop.set()
        if self._thread:
            self._thread.join()
        if not self.lost:
            try:
                self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
            except ClientError as err:
                log.warning("%s: could not remove the lock (%s); it expires after %g s", self.what, err, self.lease)
        self.etag = None
