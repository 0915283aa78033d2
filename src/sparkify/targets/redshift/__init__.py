"""Amazon Redshift, built on the PostgreSQL protocol code (targets/postgres).

target.py: what the target declares, its session, staging and write; ddl.py:
tables with distribution and sort keys; copy.py: COPY JSON from S3 and its
load errors; lambda_udf.py: the optional Lambda behind its text functions.
"""

from sparkify.targets.redshift.target import RedshiftTarget

__all__ = ["RedshiftTarget"]
