"""normalize.py's text rules on Spark: SQL for ASCII, the Python definition for the rest.

ASCII text is trimmed and unquoted in SQL (records.bare) and lower-cased
for match keys, exactly what normalize.clean_text and match_key do to ASCII.
Non-ASCII values (mojibake, accents) are rare: their distinct values are
gathered once into a small table, normalize's own Arrow-vectorised
functions (the ones DuckDB registers) clean them there, and the result is
broadcast-joined back. A Python UDF is never evaluated on the bulk of rows:
Spark would run it for every row of a CASE, not only where it is needed.
"""

from __future__ import annotations

import logging

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from sparkify.engines.spark.records import bare, non_ascii
from sparkify.engines.spark.sql import name
from sparkify.normalize import clean_text_arrow, match_key_arrow

log = logging.getLogger(__name__)

_SCHEMA = T.StructType([T.StructField(n, T.StringType()) for n in ("v", "clean", "key")])


def _clean_text(values: pa.Array) -> pa.Array:
    return clean_text_arrow(values)


def _match_key(values: pa.Array) -> pa.Array:
    return match_key_arrow(values)


class TextFix:
    """Cleaned text and match key of every non-ASCII value of a run."""

    def __init__(self, spark: SparkSession, values: DataFrame):
        """`values`: one string column `v` (any name), possibly with repeats and ASCII values."""
        clean_udf = F.arrow_udf(_clean_text, T.StringType())
        key_udf = F.arrow_udf(_match_key, T.StringType())
        distinct = values.selectExpr(f"{name(values.columns[0])} AS v").where(non_ascii("v")).distinct()
        cleaned = distinct.select("v", clean_udf(F.col("v")).alias("clean"))
        rows = cleaned.select(
            "v", "clean", F.when(F.expr(non_ascii("clean")), key_udf(F.col("clean"))).otherwise(F.lower("clean"))
            .alias("key"),
        ).collect()
        log.info("%d distinct non-ASCII text values cleaned by normalize.py", len(rows))
        self.table = F.broadcast(spark.createDataFrame(rows, _SCHEMA)) if rows else None

    def apply(self, df: DataFrame, columns: dict[str, str], keys: dict[str, str] | None = None) -> DataFrame:
        """Add cleaned columns (`columns`: output -> input) and match keys (`keys`: output -> input)."""
        keys = keys or {}
        kept = [name(c) for c in df.columns]
        if self.table is None:
            return df.selectExpr(*kept, *(f"{bare(name(s))} AS {name(o)}" for o, s in columns.items()),
                                 *(f"lower({bare(name(s))}) AS {name(o)}" for o, s in keys.items()))
        sources = sorted({*columns.values(), *keys.values()})
        for i, src in enumerate(sources):
            fix = self.table.selectExpr(*(f"{c} AS _fx{i}_{c}" for c in ("v", "clean", "key")))
            df = df.join(fix, F.expr(f"CASE WHEN {non_ascii(name(src))} THEN {name(src)} END = _fx{i}_v"), "left")
        index = {src: i for i, src in enumerate(sources)}

        def pick(src: str, what: str, ascii_value: str) -> str:
            return f"CASE WHEN {non_ascii(name(src))} THEN _fx{index[src]}_{what} ELSE {ascii_value} END"

        return df.selectExpr(*kept, *(f"{pick(s, 'clean', bare(name(s)))} AS {name(o)}" for o, s in columns.items()),
                             *(f"{pick(s, 'key', f'lower({bare(name(s))})')} AS {name(o)}" for o, s in keys.items()))
