"""The Lambda behind Redshift's text functions, optional: normalize.py itself, for what SQL cannot do.

Redshift SQL repairs mojibake itself (engines/warehouse/text.py, repair_round) but has no
Unicode normalisation, and its Python UDFs reached end of support on 30
June 2026. A Lambda UDF (`lambda_udf=<function name>` on the target) runs
the rest of clean_text and match_key on the repaired text: NFC and Python's
casefold, which SQL's LOWER differs from for a few characters. Deploy this
module with sparkify's normalize.py; Redshift calls `handler` with batches of rows.
"""

from __future__ import annotations

from sparkify.normalize import clean_repaired, key_repaired

FUNCTIONS = {"f_sparkify_clean": clean_repaired, "f_sparkify_key": key_repaired}


def handler(event: dict, context: object = None) -> dict:
    """Redshift's Lambda UDF protocol: `arguments` is a list of argument rows, one result per row."""
    try:
        fn = FUNCTIONS[event["external_function"].split(".")[-1]]
        results = [fn(row[0]) for row in event["arguments"]]
        return {"success": True, "num_records": len(results), "results": results}
    except (KeyError, IndexError, TypeError) as exc:
        return {"success": False, "error_msg": f"sparkify text function: bad request ({exc!r})"}
