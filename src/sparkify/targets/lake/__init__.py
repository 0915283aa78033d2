"""The Parquet lake on local disk or S3.

target.py: what the lake declares, its session, write and reads; layout.py:
folders, partitions and Parquet types; write.py: one table's Parquet files;
merge.py: the SQL merge on the rows a batch can change; store.py: where the
files live and how a version is published; lock.py: one writer at a time;
spark.py: the lake as the Spark cluster job writes it.
"""

from sparkify.targets.lake.target import LakeTarget, lake_files

__all__ = ["LakeTarget", "lake_files"]
