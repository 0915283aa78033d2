"""The Parquet lake: one folder per table, hive partitions, on local disk or S3.

The engine computes in an in-memory DuckDB; the merge (merge.py) runs in
the same connection over the live Parquet files and the batch, and writes
only the partitions that changed as new files; the store (store.py) makes
the new version visible in one atomic step, and the lock (lock.py) keeps a
second run out meanwhile. `sparkify query` and `check` run DuckDB over views
named like the star tables, on the files of the live version only.

Options (the [target] section, or a query string on --target such as
`lake?layout=compact`): layout = hive | compact (songs by year only; also
songs_partition = "year"), compression = snappy | zstd | none (default
snappy), keep_versions (local, default 2), lock_timeout (s, default 600),
lock_lease (S3, s, default 60), fsync (local, default true),
max_rows_per_file (default 4,000,000), memory_limit; on S3 also
endpoint_url, anon, profile, region, connect_timeout, read_timeout, max_attempts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl

import duckdb
import pyarrow.parquet as pq

from sparkify.batch import DUCKDB, DuckDBBatch, SummaryFn, WriteResult, configure
from sparkify.schema import ALL_TABLES, LOADED_FILES, SONG_RECORDS, STAR, TABLES, Table
from sparkify.scratch import scratch_dir
from sparkify.targets.base import VERSIONED_STATE, Capabilities, DuckDBHost, Target, TargetError, outdated_state
from sparkify.targets.lake.layout import COMPRESSIONS, SONGS_LAYOUTS, Layout, dataset, q, select_sql
from sparkify.targets.lake.merge import Changed, LakeMerge
from sparkify.targets.lake.store import LocalStore, Manifest, S3Store, Store
from sparkify.targets.lake.write import write_parquet

log = logging.getLogger(__name__)


def _songs_partition(options: dict) -> tuple[str, ...] | None:
    """The songs layout asked for, or None to keep the lake's own."""
    if options.get("layout"):
        if options["layout"] not in SONGS_LAYOUTS:
            raise TargetError(f"lake layout must be one of {', '.join(SONGS_LAYOUTS)}, not {options['layout']!r}")
        return SONGS_LAYOUTS[options["layout"]]
    value = options.get("songs_partition")
    if not value:
        return None
    names = tuple(v.strip() for v in value.split(",")) if isinstance(value, str) else tuple(value)
    if names not in SONGS_LAYOUTS.values():
        raise TargetError(f"songs_partition must be 'year, artist_id' or 'year', not {value!r}")
    return names


def _flag(value, default: bool) -> bool:
    return default if value in (None, "") else str(value).lower() in ("1", "true", "yes", "on")


class LakeTarget(DuckDBHost, Target):
    name = "lake"
    capabilities = Capabilities(engines=("duckdb", "spark"), accepts=frozenset({DUCKDB}), transactions=True,
                                enforces_constraints=False, partitions=True)

    def __init__(self, store: Store, songs_partition: tuple[str, ...] | None = None, memory_limit: str = "1GB",
                 lock_timeout: float = 600.0, lock_lease: float = 60.0, max_rows_per_file: int = 4_000_000,
                 compression: str = "snappy"):
        if compression not in COMPRESSIONS:
            raise TargetError(f"lake compression must be one of {', '.join(COMPRESSIONS)}, not {compression!r}")
        self.store = store
        self.requested = songs_partition
        self.memory_limit = memory_limit
        self.lock_timeout, self.lock_lease = lock_timeout, lock_lease
        self.max_rows_per_file = max_rows_per_file
        self.compression = compression
        self._con: duckdb.DuckDBPyConnection | None = None
        self._reader: duckdb.DuckDBPyConnection | None = None
        self._base: Manifest | None = None
        self._lock = None

    @classmethod
    def from_url(cls, url: str, options: dict) -> LakeTarget:
        location, _, query = url.partition("?")
        options = {**options, **dict(parse_qsl(query))}
        if location.startswith("s3://"):
            from sparkify import objectstore

            store: Store = S3Store(location, objectstore.settings({k: options.get(k) for k in objectstore.SETTINGS}))
        else:
            store = LocalStore(location, keep_versions=int(options.get("keep_versions", 2)),
                               fsync=_flag(options.get("fsync"), True))
        return cls(
            store, _songs_partition(options), memory_limit=options.get("memory_limit", "1GB"),
            lock_timeout=float(options.get("lock_timeout", 600)), lock_lease=float(options.get("lock_lease", 60)),
            max_rows_per_file=int(options.get("max_rows_per_file", 4_000_000)),
            compression=options.get("compression", "snappy"),
        )

    def describe(self) -> str:
        return f"Parquet lake {self.store.display}"

    def _views(self, con: duckdb.DuckDBPyConnection, manifest: Manifest | None,
               tables: tuple[Table, ...] = ALL_TABLES) -> None:
        """A view per table (named as in the SQL targets) over exactly the files of `manifest`."""
        layout = Layout(manifest.songs_partition) if manifest else Layout()
        for table in tables:
            entries = manifest.files(table.name) if manifest else []
            source = f"sp_lake_{table.name}"
            con.register(source, dataset(layout, table, entries, lambda rel: self.store.path(manifest, rel),
                                         self.store.fs))
            con.execute(f"CREATE OR REPLACE VIEW {q(table.name)} AS {select_sql(table, source)}")

    @contextmanager
    def session(self) -> Iterator[None]:
        with self.store.lock(self.lock_timeout, self.lock_lease) as lock, scratch_dir("lake") as temp_dir:
            con = duckdb.connect()
            try:
                self.store.prepare()
                self._base = self.store.current()
                configure(con, self.memory_limit, temp_dir)
                self._views(con, self._base, (LOADED_FILES, SONG_RECORDS))  # the ledger and the catalogue
                self._con, self._lock = con, lock
                yield
            except Exception:
                lock.check()  # a lock lost meanwhile explains any failure (another run changed the lake): say so
                raise
            finally:
                con.close()
                self._con = self._lock = None

    def engine_connection(self) -> duckdb.DuckDBPyConnection:
        assert self._con is not None, "use within session()"
        return self._con

    def ledger(self) -> dict[str, tuple[int, str]]:
        if self._base is not None:
            outdated_state(self.store.display, {name: self._file_columns(TABLES[name]) for name in VERSIONED_STATE})
        rows = self.engine_connection().execute('SELECT path, size, modified FROM "_sparkify_files"').fetchall()
        return {path: (size, modified) for path, size, modified in rows}

    def _file_columns(self, table: Table) -> list[str]:
        """The columns of the table's files in the live version (one footer read: a run writes them all alike)."""
        entries = self._base.files(table.name)
        if not entries:
            return []
        return pq.read_schema(self.store.path(self._base, entries[0].path), filesystem=self.store.fs).names

    def catalogue_relation(self, con: duckdb.DuckDBPyConnection, full_refresh: bool) -> str:
        return f'(SELECT * FROM "_sparkify_song_records" WHERE NOT {str(full_refresh).lower()})'

    def _layout(self, fresh: bool) -> Layout:
        """The layout to write: the lake's own, unless it is built from scratch."""
        own = self._base.songs_partition if self._base else None
        if fresh:
            return Layout(self.requested or own or SONGS_LAYOUTS["hive"])
        if self.requested and self.requested != own:
            raise TargetError(f"{self.store.display} partitions songs by {', '.join(own)}; "
                              "changing the layout needs --full-refresh")
        return Layout(own)

    def write(self, batch: DuckDBBatch, full_refresh: bool, summary: SummaryFn) -> WriteResult:
        con = self.engine_connection()
        base = None if full_refresh else self._base
        layout = self._layout(full_refresh or self._base is None)
        merge = LakeMerge(con, layout, base, self.store)
        inserted, changed, appended = merge.merge(batch.run_id, lambda n: summary(WriteResult(n)))
        self._publish(merge, layout, base, changed, batch.run_id, appended)
        return WriteResult(inserted)

    def _publish(self, merge: LakeMerge, layout: Layout, base: Manifest | None, changed: Changed,
                 run_id: str | None, appended: Changed | None = None) -> None:
        """Write the changed partitions and the new files of the appended ones, carry the others over,
        and commit the new version."""
        new = Manifest.next_after(self._base, run_id, layout.songs_partition)
        written: list[str] = []
        try:
            for table in ALL_TABLES:
                folder, keys = layout.folder(table), changed.get(table.name, set())
                added = (appended or {}).get(table.name, set())
                if base is not None and not keys and not added:
                    self.store.carry(base, new, folder)
                    new.tables[table.name] = base.files(table.name)
                    continue
                carried = [e for e in (base.files(table.name) if base else []) if e.partition not in keys]
                base_dir = self.store.write_dir(new, folder)
                self.store.keep(base, new, carried)
                entries = list(carried)
                if keys or added or not (carried or layout.partition_by(table)):
                    out = write_parquet(merge.rows(table, keys, added), layout, table, base_dir, self.store.fs, new.id,
                                        lambda path, f=folder: self.store.rel(new, f, path), self.max_rows_per_file,
                                        self.compression, self.store.write_threads)
                    entries += out.entries
                    written += out.paths
                new.tables[table.name] = sorted(entries, key=lambda e: e.path)
            self._lock.check()
            self.store.commit(new, written)
        except BaseException:
            self._discard(new, written)
            raise
        log.debug("published version %s of %s (%d new files)", new.id, self.store.display, len(written))
        self._base = new
        self._close_reader()
        self.store.collect(new)

    def _discard(self, new: Manifest, written: list[str]) -> None:
        """Best effort after a failure: what is left is removed by the next run anyway."""
        try:
            self.store.discard(new, written)
        except Exception as exc:  # never hide the failure that brought us here
            log.warning("could not remove the files of the failed run (%s); the next run will", exc)

    def create_schema(self, reset: bool = False) -> None:
        with self.session():
            if self._base is not None and not reset:
                return
            layout = self._layout(True)
            merge = LakeMerge(self.engine_connection(), layout, None, self.store)
            merge.create_work()
            self._publish(merge, layout, None, {}, None)

    def files(self, table: str) -> list[str]:
        """The files of one table in the live version: what a reader must read to never see a run in progress."""
        manifest = self._base if self._con is not None else self.store.current()
        if manifest is None:
            return []
        return [self.store.url(manifest, e.path) for e in manifest.files(TABLES[table].name)]

    def row_counts(self) -> dict[str, int]:
        """From the live manifest, which records each file's rows: no file is opened."""
        manifest = self._base if self._con is not None else self.store.current()
        return {t.name: sum(e.rows for e in manifest.files(t.name)) if manifest else 0 for t in STAR}

    def _reader_connection(self) -> duckdb.DuckDBPyConnection:
        """One snapshot for the life of the target (or until the next write): every query sees the same version."""
        if self._reader is None:
            manifest = self._base if self._con is not None else self.store.current()
            if manifest is None:
                raise TargetError(f"{self.store.display} holds no lake yet: run `sparkify run` first")
            self._reader = duckdb.connect()
            self._reader.execute("SET TimeZone = 'UTC'")
            self._views(self._reader, manifest)
        return self._reader

    def query(self, sql: str) -> tuple[list[str], Iterator[tuple]]:
        """Rows stream from the snapshot's connection (the datasets behind the views are registered
        on that connection only, so no cursor): consume them before the next query."""
        con = self._reader_connection()
        con.execute(sql)
        columns = [d[0] for d in con.description]

        def rows() -> Iterator[tuple]:
            while chunk := con.fetchmany(10_000):
                yield from chunk

        return columns, rows()

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def close(self) -> None:
        self._close_reader()


def lake_files(url: str, table: str, options: dict | None = None) -> list[str]:
    """The live files of one table of the lake at `url` (paths or s3:// URLs), for plain Parquet readers."""
    target = LakeTarget.from_url(url, options or {})
    try:
        return target.files(table)
    finally:
        target.close()
