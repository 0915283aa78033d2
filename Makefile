# make bench [SCALES=sample,100k,1m,10m] [SCENARIOS=duckdb,bare_scan,...]
PYTHON ?= .venv/bin/python
SCALES ?= sample,100k,1m
BENCH_ARGS ?=

.PHONY: bench
bench:
	$(PYTHON) -m bench --scales $(SCALES) $(if $(SCENARIOS),--scenarios $(SCENARIOS)) $(BENCH_ARGS)
