"""The benchmark harness: datasets at chosen scales, scenarios as measured processes, results as tables.

Run it with `make bench` or `python -m bench --help`; see docs/benchmarks.md.
"""
