# tickwise: `make setup` once (idempotent), then `make run-historical`, `make run-live`, `make test`.
# Every target that needs the environment depends on the setup stamp, so `make test` on a fresh
# clone installs everything first.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.setup-stamp
TICKWISE := $(BIN)/tickwise
PYTEST_ARGS ?=

.PHONY: setup test test-fast lint format type-check db-up db-down db-migrate db-psql \
        run-historical run-live docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh scripts/install_timescaledb.sh
	bash scripts/setup.sh
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

type-check: $(STAMP)
	$(BIN)/mypy

db-up: $(STAMP)
	$(TICKWISE) db up

db-down: $(STAMP)
	$(TICKWISE) db down

db-migrate: $(STAMP)
	$(TICKWISE) db migrate

db-psql: $(STAMP)
	psql "$$($(TICKWISE) db url)"

run-historical: $(STAMP)
	$(TICKWISE) historical

run-live: $(STAMP)
	$(TICKWISE) live

docs: $(STAMP)
	$(BIN)/mkdocs build --strict

clean:
	-$(TICKWISE) db down 2>/dev/null
	rm -rf .data site .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
