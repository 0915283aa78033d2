"""The read limit: DuckDB scans the log files and reads every field the pipeline uses, one aggregate per column.

Usage: python bench/baselines/bare_scan.py LOG_DIR. Prints {"events": N, "seconds": S} as JSON.
"""

from __future__ import annotations

import json
import sys
import time

import duckdb

COLUMNS = {
    "ts": "BIGINT", "userId": "VARCHAR", "sessionId": "BIGINT", "itemInSession": "BIGINT", "page": "VARCHAR",
    "level": "VARCHAR", "firstName": "VARCHAR", "lastName": "VARCHAR", "gender": "VARCHAR", "location": "VARCHAR",
    "userAgent": "VARCHAR", "song": "VARCHAR", "artist": "VARCHAR", "length": "DOUBLE",
}
"""The fields of records.EVENT_FIELDS, typed as the pipeline types them."""


def main(log_dir: str) -> None:
    started = time.perf_counter()
    aggregates = ", ".join(f'max("{name}")' for name in COLUMNS)
    row = duckdb.connect().execute(
        f"SELECT count(*), {aggregates} FROM read_json($glob, format = 'newline_delimited', "
        "columns = $columns, ignore_errors = true)",
        {"glob": f"{log_dir}/**/*.json", "columns": COLUMNS},
    ).fetchone()
    print(json.dumps({"events": row[0], "seconds": round(time.perf_counter() - started, 3)}))


if __name__ == "__main__":
    main(sys.argv[1])
