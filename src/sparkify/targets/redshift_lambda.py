"""The Lambda behind Redshift's text functions: normalize.py itself, for the values SQL cannot clean.

Redshift SQL has no Latin-1 decoding and no Unicode normalisation, and its
Python UDFs reached end of support on 30 June 2026; a Lambda UDF
(`lambda_udf=<function name>` on the target) is the supported way to run
the same code as every other engine. Deploy this module with sparkify's
normalize.py; Redshift calls `handler` with batches of rows.
"""

from __future__ import annotations

from sparkify.normalize import clean_text, match_key

FUNCTIONS = {"f_sparkify_clean": clean_text, "f_sparkify_key": match_key}


def handler(event: dict, context: object = None) -> dict:
    """Redshift's Lambda UDF protocol: `arguments` is a list of argument rows, one result per row."""
    try:
        fn = FUNCTIONS[event["external_function"].split(".")[-1]]
        results = [fn(row[0]) for row in event["arguments"]]
        return {"success": True, "num_records": len(results), "results": results}
    except (KeyError, IndexError, TypeError) as exc:
        return {"success": False, "error_msg": f"sparkify text function: bad request ({exc!r})"}
