"""The one SparkSession a process uses, built with the settings the contract needs.

Starting a JVM costs seconds, so the session is built once per process and
reused (a session someone else started first, such as a test fixture or
spark-submit's, is reused as it is, with the settings below applied on top
where Spark allows it at run time). Settings that matter for results, not
just for speed: UTC everywhere (session and JVM), microsecond Parquet
timestamps, case-sensitive field names like DuckDB's JSON, and duplicate JSON
keys accepted by the rare-path parser as DuckDB accepts them.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

DEFAULT_MASTER = "local[2]"

RUNTIME_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.caseSensitive": "true",
    "spark.sql.variant.allowDuplicateKeys": "true",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}
"""Settings that decide results: applied to every session, new or reused."""

LAUNCH_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.sql.adaptive.enabled": "true",
}
"""Settings that only a new JVM takes."""

TUNING_CONF = {
    "spark.sql.files.openCostInBytes": "8192",
    "spark.sql.codegen.hugeMethodLimit": "8000",
    "spark.sql.codegen.cache.maxEntries": "1000",
}
"""Speed only, for new sessions. Song files are a few KB each; Spark's 4 MB default cost of opening
one spreads the original 14,896 files over hundreds of tasks instead of a few. The JVM never compiles
a method over 8,000 bytes of bytecode: a whole-stage method that big (the record typing makes one)
runs interpreted, several times slower than Spark's split per-operator code. A run generates more
classes than Spark's default cache of compiled code holds: with a larger cache, a later run in the
same process (a reused session, as in the tests) compiles none of them again."""

SPLITS_PER_CORE = 4
"""Input splits per core: fewer leaves one core idle at the end of a scan of a few large log files."""

SHUFFLE_BYTES = 32 * 2**20
"""Input bytes per shuffle partition: AQE coalesces the small ones, so this only bounds the large."""

LOCAL_CONF = {
    "spark.sql.shuffle.partitions": "4",
    "spark.driver.memory": "2g",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC -XX:+UseParallelGC",
}
"""Defaults for a local master: few cores, one JVM holding driver and executors. Its heap holds the cached
rows (spilled to disk beyond it), every task's sort and hash pages and the broadcasts; the largest
benchmark's run fits it (docs/spark.md), and `spark.driver.memory` in the [spark] table raises it. The
throughput collector: its cheaper write barriers suit a batch job on few cores better than the default G1."""

_lock = threading.Lock()


def is_local(master: str) -> bool:
    return master.startswith("local")


def session(master: str | None = None, conf: dict[str, str] | None = None, submitted: bool = False):
    """The process's SparkSession: the active one if any, else a new one on `master`.

    `conf` (keys `spark.*` of the [spark] table of sparkify.toml) wins over
    the defaults here. A local master runs its Python workers on this very
    interpreter, so the workers see the same sparkify and pyarrow. Under
    spark-submit (`submitted`), the master and launch settings are
    spark-submit's unless `master` is given.
    """
    from pyspark.sql import SparkSession

    with _lock:
        active = SparkSession.getActiveSession()
        if active is not None:
            for key, value in RUNTIME_CONF.items():
                active.conf.set(key, value)
            return active
        if submitted:
            settings = {**TUNING_CONF, **RUNTIME_CONF, **(conf or {})}
        else:
            master = master or os.environ.get("SPARKIFY_SPARK_MASTER") or DEFAULT_MASTER
            settings = {**LAUNCH_CONF, **TUNING_CONF, **(LOCAL_CONF if is_local(master) else {}), **RUNTIME_CONF,
                        **(conf or {})}
            if is_local(master):
                settings.setdefault("spark.pyspark.python", sys.executable)
                os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        builder = SparkSession.builder.appName("sparkify")
        if master:
            builder = builder.master(master)
        for key, value in settings.items():
            builder = builder.config(key, value)
        log.info("starting Spark on %s", master or "spark-submit's master")
        spark = builder.getOrCreate()
        spark.sparkContext.setLogLevel("WARN")
        if "spark.sql.files.minPartitionNum" not in settings:
            splits = SPLITS_PER_CORE * spark.sparkContext.defaultParallelism
            spark.conf.set("spark.sql.files.minPartitionNum", str(splits))
        return spark


def in_one_jvm(spark) -> bool:
    """Driver and executors are this process's JVM: a classic session on a local master (a Spark Connect
    session's JVM is its server's, wherever that runs)."""
    from pyspark.errors import PySparkAttributeError

    try:
        return is_local(spark.sparkContext.master)
    except PySparkAttributeError:
        return False


def _cores(spark) -> int:
    """The cores tasks run on. A Spark Connect session has no SparkContext: its server's setting, else 2."""
    from pyspark.errors import PySparkAttributeError

    try:
        return spark.sparkContext.defaultParallelism
    except PySparkAttributeError:
        return int(spark.conf.get("spark.default.parallelism", "2"))


def size_shuffles(spark, input_bytes: int) -> None:
    """Shuffle partitions for this much input: at least one per core, more as the data grows."""
    cores = _cores(spark)
    spark.conf.set("spark.sql.shuffle.partitions", str(max(cores, min(input_bytes // SHUFFLE_BYTES, 50 * cores))))
