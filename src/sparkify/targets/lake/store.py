"""Where a lake's files live, and how a new version of the lake becomes visible in one step.

Parquet files are immutable and uniquely named (`part-<version>-<n>.parquet`).
A version is a manifest: for every table, the files that make it up. A run
writes its new files, then commits the new manifest with one atomic
operation; until then no reader that follows the lake's pointer can see them.

Local disk (`LocalStore`): a table that changes gets a new complete tree
`_tables/<table>/<version>/` (files of partitions it did not change are hard
links to the previous tree's); a table that does not change keeps its tree.
A version is a folder `_versions/<id>/` of symlinks, one per table, to its
trees, plus the manifest. `_current` is a symlink to the live version and
each table folder is a fixed symlink through it (`songplays ->
_current/songplays`); the commit is `rename()` of a new symlink over
`_current`, atomic on POSIX. A plain reader listing `lake/songplays/**`
therefore sees exactly one version at any moment.

S3 (`S3Store`): no rename and no links. Files are written under their final
keys (`lake/songplays/year=2018/month=11/part-...parquet`) and the commit is a
single conditional PUT of the manifest to `_sparkify/CURRENT`; files the new
version no longer uses are deleted after it. Readers that follow
`_sparkify/CURRENT` (sparkify query/check, `lake_files()`) see one version;
a plain listing of the prefix can see a run's new files before its commit
(see docs/lake.md for exactly what).
"""

from __future__ import annotations

import abc
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from sparkify.targets.base import TargetError

MANIFEST_FORMAT = 1
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
"""Hive's (and Spark's, and pyarrow's) directory name for a NULL partition value."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the lake root: songplays/year=2018/month=11/part-...parquet
    partition: tuple  # the typed partition values, () for an unpartitioned table
    rows: int
    bytes: int


@dataclass
class Manifest:
    seq: int
    id: str
    previous: str | None
    run_id: str | None
    created_at: str
    songs_partition: tuple[str, ...]
    tables: dict[str, list[FileEntry]] = field(default_factory=dict)
    dirs: dict[str, str] = field(default_factory=dict)
    """Local disk: the version whose tree holds each table folder's files."""

    @classmethod
    def next_after(cls, base: Manifest | None, run_id: str | None, songs_partition: tuple[str, ...]) -> Manifest:
        """An empty manifest for the version after `base` (ids never repeat, even after a killed run)."""
        seq = base.seq + 1 if base else 1
        return cls(seq, f"{seq:06d}-{uuid.uuid4().hex[:8]}", base.id if base else None, run_id,
                   time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), songs_partition)

    def files(self, table: str) -> list[FileEntry]:
        return self.tables.get(table, [])

    def to_json(self) -> str:
        body: dict[str, Any] = {
            "format": MANIFEST_FORMAT, "seq": self.seq, "id": self.id, "previous": self.previous,
            "run_id": self.run_id, "created_at": self.created_at,
            "songs_partition": list(self.songs_partition), "dirs": self.dirs,
            "tables": {name: [{"path": e.path, "partition": list(e.partition), "rows": e.rows, "bytes": e.bytes}
                              for e in entries] for name, entries in self.tables.items()},
        }
        return json.dumps(body, sort_keys=True)  # no indent: the C encoder (14,750 song files: 5 s -> 0.1 s)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        body = json.loads(text)
        if body.get("format") != MANIFEST_FORMAT:
            raise TargetError(f"lake manifest format {body.get('format')} is not supported by this sparkify")
        tables = {
            name: [FileEntry(e["path"], tuple(e["partition"]), e["rows"], e["bytes"]) for e in entries]
            for name, entries in body["tables"].items()
        }
        return cls(body["seq"], body["id"], body["previous"], body["run_id"], body["created_at"],
                   tuple(body["songs_partition"]), tables, body.get("dirs", {}))


class Store(abc.ABC):
    """One lake's storage: locking, reading the live manifest, placing files, committing."""

    display: str

    @abc.abstractmethod
    def lock(self, timeout: float, lease: float) -> AbstractContextManager[Any]:
        """Keep other runs out until the context ends; wait up to `timeout` seconds for one."""

    @abc.abstractmethod
    def prepare(self) -> None:
        """Under the lock, before a run: remove what killed runs left (and refuse what is not a lake)."""

    @abc.abstractmethod
    def current(self) -> Manifest | None:
        """The live version, or None for a lake never written."""

    fs: Any
    """The pyarrow filesystem every Parquet file is read and written through."""
    write_threads = 4
    """Parquet files written at once (encoding is CPU-bound: about the cores, with room for the disk)."""

    @abc.abstractmethod
    def path(self, manifest: Manifest, rel: str) -> str:
        """One file of a version, as `fs` names it."""

    def url(self, manifest: Manifest, rel: str) -> str:
        """One file of a version, as a plain reader names it."""
        return self.path(manifest, rel)

    def carry(self, base: Manifest, new: Manifest, folder: str) -> None:
        """A table the run did not change: the new version shares its files."""

    @abc.abstractmethod
    def write_dir(self, new: Manifest, folder: str) -> str:
        """Where (in `fs`) the files of a changed table go."""

    @abc.abstractmethod
    def rel(self, new: Manifest, folder: str, written: str) -> str:
        """A written file's path as the manifest records it (`songs/year=.../part.parquet`)."""

    def keep(self, base: Manifest | None, new: Manifest, entries: list[FileEntry]) -> None:
        """Files of a changed table's unchanged partitions: make them part of the new version."""

    @abc.abstractmethod
    def commit(self, new: Manifest, written: list[str]) -> None:
        """Make `new` the live version in one atomic step."""

    @abc.abstractmethod
    def collect(self, live: Manifest | None) -> None:
        """Remove what no reader of `live` (or, on disk, of the versions kept before it) needs."""

    @abc.abstractmethod
    def discard(self, new: Manifest, written: list[str]) -> None:
        """Remove what a failed run wrote (best effort: the next run's `prepare` does it anyway)."""


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_filesystem(path: str) -> None:
    """Flush the filesystem holding `path`: one syncfs(2) instead of an fsync per file and folder."""
    import ctypes

    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        if syncfs is None or syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


class LocalStore(Store):
    VERSIONS, TABLES, CURRENT, LOCK = "_versions", "_tables", "_current", "_lock"

    def __init__(self, root: str, keep_versions: int = 2, fsync: bool = True):
        from pyarrow import fs as pafs

        self.fs = pafs.LocalFileSystem()
        self.root = os.path.abspath(root)
        self.display = self.root
        self.keep_versions = keep_versions
        self.fsync = fsync

    def _path(self, *parts: str) -> str:
        return os.path.join(self.root, *parts)

    def lock(self, timeout: float, lease: float):
        from sparkify.targets.lake.lock import LocalLock

        if os.path.isdir(self.root) and not os.path.isdir(self._path(self.VERSIONS)) and \
                [n for n in os.listdir(self.root) if n != self.LOCK]:
            raise TargetError(f"{self.root} is not empty and not a sparkify lake; choose an empty or new directory")
        os.makedirs(self.root, exist_ok=True)
        return LocalLock(self._path(self.LOCK), timeout, f"lake {self.root}")

    def prepare(self) -> None:
        os.makedirs(self._path(self.VERSIONS), exist_ok=True)
        os.makedirs(self._path(self.TABLES), exist_ok=True)
        self.collect(self.current())

    def current(self) -> Manifest | None:
        link = self._path(self.CURRENT)
        if not os.path.islink(link):
            return None
        return self._load(os.path.basename(os.readlink(link)))

    def _load(self, version: str) -> Manifest | None:
        try:
            with open(self._path(self.VERSIONS, version, "_manifest.json"), encoding="utf-8") as fh:
                return Manifest.from_json(fh.read())
        except FileNotFoundError:
            return None

    def path(self, manifest: Manifest, rel: str) -> str:
        folder, _, rest = rel.partition("/")
        return self._path(self.TABLES, folder, manifest.dirs[folder], rest)

    def carry(self, base: Manifest, new: Manifest, folder: str) -> None:
        new.dirs[folder] = base.dirs[folder]

    def write_dir(self, new: Manifest, folder: str) -> str:
        new.dirs[folder] = new.id
        path = self._path(self.TABLES, folder, new.id)
        os.makedirs(path)
        return path

    def rel(self, new: Manifest, folder: str, written: str) -> str:
        base = self._path(self.TABLES, folder, new.id) + os.sep  # written is under write_dir: no relpath per file
        return folder + "/" + written.removeprefix(base).replace(os.sep, "/")

    def keep(self, base: Manifest | None, new: Manifest, entries: list[FileEntry]) -> None:
        for entry in entries:
            target = self.path(new, entry.path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.link(self.path(base, entry.path), target)

    def commit(self, new: Manifest, written: list[str]) -> None:
        version_dir = self._path(self.VERSIONS, new.id)
        os.makedirs(version_dir)
        for folder, tree in new.dirs.items():
            os.symlink(os.path.join("..", "..", self.TABLES, folder, tree), os.path.join(version_dir, folder))
            self._table_link(folder)
        with open(os.path.join(version_dir, "_manifest.json"), "w", encoding="utf-8") as fh:
            fh.write(new.to_json())
        if self.fsync:
            _sync_filesystem(self.root)
        tmp = self._path(f"{self.CURRENT}.tmp-{new.id}")
        os.symlink(os.path.join(self.VERSIONS, new.id), tmp)
        os.replace(tmp, self._path(self.CURRENT))  # the commit
        if self.fsync:
            _fsync_dir(self.root)

    def discard(self, new: Manifest, written: list[str]) -> None:
        shutil.rmtree(self._path(self.VERSIONS, new.id), ignore_errors=True)
        for folder in new.dirs:
            shutil.rmtree(self._path(self.TABLES, folder, new.id), ignore_errors=True)

    def _table_link(self, folder: str) -> None:
        """`lake/<folder> -> _current/<folder>`: created once, never changed."""
        link, target = self._path(folder), os.path.join(self.CURRENT, folder)
        if os.path.islink(link) and os.readlink(link) == target:
            return
        if os.path.lexists(link):
            raise TargetError(f"{link} exists and is not sparkify's link to the live version; move it away")
        os.symlink(target, link)

    def collect(self, live: Manifest | None) -> None:
        """Remove versions no reader should need (all but the live one and `keep_versions` before it),
        the table trees only they used, and whatever a killed run left."""
        versions: set[str] = set()
        trees: set[tuple[str, str]] = set()
        manifest = live
        while manifest is not None and len(versions) <= self.keep_versions:
            versions.add(manifest.id)
            trees |= set(manifest.dirs.items())
            manifest = self._load(manifest.previous) if manifest.previous else None
        for name in os.listdir(self._path(self.VERSIONS)):
            if name not in versions:
                shutil.rmtree(self._path(self.VERSIONS, name), ignore_errors=True)
        for folder in os.listdir(self._path(self.TABLES)):
            for tree in os.listdir(self._path(self.TABLES, folder)):
                if (folder, tree) not in trees:
                    shutil.rmtree(self._path(self.TABLES, folder, tree), ignore_errors=True)
        for name in os.listdir(self.root):
            if name.startswith(f"{self.CURRENT}.tmp-"):
                os.unlink(self._path(name))


class S3Store(Store):
    CONTROL = "_sparkify"
    write_threads = 16
    """Uploads at once: one PUT per small file, so latency, not CPU, bounds a catalogue's write."""

    def __init__(self, url: str, s3_settings):
        from sparkify import objectstore

        self.bucket, self.prefix = objectstore.split_url(url)
        self.display = f"s3://{self._fs_path()}"
        self.fs = objectstore.arrow_filesystem(s3_settings)
        self.client = objectstore.client(s3_settings)
        self._etag: str | None = None

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    def _fs_path(self, *parts: str) -> str:
        """`bucket/prefix/parts...`, as pyarrow names an object."""
        return "/".join(p for p in (self.bucket, self.prefix, *parts) if p)

    def _keys(self) -> Iterator[str]:
        """Every key under the lake's prefix."""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "")
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def _delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in chunk],
                                                                   "Quiet": True})

    def lock(self, timeout: float, lease: float):
        from sparkify.targets.lake.lock import S3Lock

        return S3Lock(self.client, self.bucket, self._key(self.CONTROL, "lock"), timeout, lease, f"lake {self.display}")

    def prepare(self) -> None:
        from botocore.exceptions import ClientError

        marker = self._key(self.CONTROL, "LAKE")
        try:
            self.client.head_object(Bucket=self.bucket, Key=marker)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("404", "NoSuchKey", "NotFound"):
                raise TargetError(f"cannot read {self.display}: {exc}") from exc
            control = self._key(self.CONTROL) + "/"
            if any(not key.startswith(control) for key in self._keys()):
                raise TargetError(f"{self.display} holds other objects and is not a sparkify lake; "
                                  "choose an empty prefix")
            self.client.put_object(Bucket=self.bucket, Key=marker, Body=b"sparkify lake\n")
        self.collect(self.current())

    def current(self) -> Manifest | None:
        from botocore.exceptions import ClientError

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key(self.CONTROL, "CURRENT"))
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                self._etag = None
                return None
            raise TargetError(f"cannot read {self.display}: {exc}") from exc
        self._etag = obj["ETag"]
        return Manifest.from_json(obj["Body"].read())

    def path(self, manifest: Manifest, rel: str) -> str:
        return self._fs_path(rel)

    def url(self, manifest: Manifest, rel: str) -> str:
        return f"s3://{self._fs_path(rel)}"

    def write_dir(self, new: Manifest, folder: str) -> str:
        return self._fs_path(folder)  # files stay where they are written, from version to version

    def rel(self, new: Manifest, folder: str, written: str) -> str:
        return written[len(self._fs_path()) + 1:]

    def commit(self, new: Manifest, written: list[str]) -> None:
        from botocore.exceptions import ClientError

        condition = {"IfMatch": self._etag} if self._etag else {"IfNoneMatch": "*"}
        try:
            response = self.client.put_object(Bucket=self.bucket, Key=self._key(self.CONTROL, "CURRENT"),
                                              Body=new.to_json().encode(), ContentType="application/json",
                                              **condition)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise TargetError(f"{self.display} was changed by another writer during this run; nothing was "
                                  "published (the next run removes this run's files)") from exc
            raise
        self._etag = response["ETag"]

    def discard(self, new: Manifest, written: list[str]) -> None:
        bucket_prefix = f"{self.bucket}/"
        self._delete([p[len(bucket_prefix):] for p in written])

    def collect(self, live: Manifest | None) -> None:
        """Delete table files the live version does not list: a killed run's, or superseded ones."""
        listed = {self._key(path) for path in live_paths(live)} if live else set()
        control = self._key(self.CONTROL) + "/"
        self._delete([key for key in self._keys() if not key.startswith(control) and key not in listed])


def live_paths(manifest: Manifest) -> list[str]:
    return [e.path for entries in manifest.tables.values() for e in entries]
