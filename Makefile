# `make run` sets up the environment and starts the whole system; `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# What runs the platform (make run, a worker host), and that plus the test and lint tools.
RUNTIME_STAMP := $(VENV)/.installed-runtime
STAMP := $(VENV)/.installed
# openapi-python-client, for the generated-client test, in an environment of its own.
GENERATOR := $(VENV)/client-generator
GENERATOR_STAMP := $(GENERATOR)/.installed

.PHONY: run test lint install install-runtime bench clean-data

run: $(RUNTIME_STAMP)
	$(BIN)/lakehouse up

# Two workers (pytest-xdist): tests/conftest.py keeps each module on one worker and every
# test that starts whole systems on the same one, and starts the longest first.
test: $(STAMP) lint
	$(BIN)/pytest -n 2

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check --no-cache .
	$(BIN)/mypy

install: $(STAMP)

install-runtime: $(RUNTIME_STAMP)

# Each re-installs only when the project's dependencies or their pins change.
$(RUNTIME_STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e .
	@touch $(RUNTIME_STAMP)

$(STAMP): $(RUNTIME_STAMP) $(GENERATOR_STAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

$(GENERATOR_STAMP): constraints-client-generator.txt $(RUNTIME_STAMP)
	@test -x $(GENERATOR)/bin/python || $(PYTHON) -m venv $(GENERATOR)
	$(GENERATOR)/bin/python -m pip install --quiet --disable-pip-version-check \
		-c constraints-client-generator.txt openapi-python-client
	@touch $(GENERATOR_STAMP)

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/nesting_scan.py
	$(BIN)/python bench/flush.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/compaction.py
	$(BIN)/python bench/query_tracking.py
	$(BIN)/python bench/tpch.py
	$(BIN)/python bench/scaling_limits.py
	$(BIN)/python bench/multihost.py  # simulated hosts: needs root

clean-data:
	rm -rf data/wal data/catalog.db* data/warehouse data/prefect data/dask data/logs
