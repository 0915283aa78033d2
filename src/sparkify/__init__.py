"""sparkify: Sparkify's raw song and event JSON as a star schema, on DuckDB, PostgreSQL, Redshift or a Parquet lake."""

__version__ = "0.1.0"
