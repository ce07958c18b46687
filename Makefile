# `make run` sets up the environment and starts the whole system; `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint install bench clean-data

run: $(STAMP)
	$(BIN)/lakehouse up

test: $(STAMP) lint
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check --no-cache .
	$(BIN)/mypy

install: $(STAMP)

# Re-installs only when the project's dependencies or their pins change.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

bench: $(STAMP)
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/nesting_scan.py
	$(BIN)/python bench/flush.py
	$(BIN)/python bench/load.py
	$(BIN)/python bench/compaction.py
	$(BIN)/python bench/query_tracking.py
	$(BIN)/python bench/tpch.py

clean-data:
	rm -rf data/wal data/catalog.db* data/warehouse data/prefect data/dask data/logs
