# The two commands of the README, and a few for the data team.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DATA_HOME ?= $(or $(SILOBREAKER_HOME),$(CURDIR)/var)

.PHONY: demo test dev clean bench-setup bench warehouse-doc

## Set up and run the whole pipeline on the generated demo district (20,000 people).
demo: $(VENV)/.installed
	$(BIN)/silobreaker demo

## Set up and run the test suite, a worker per core unless other work keeps them busy (tests/conftest.py).
test: $(VENV)/.installed
	$(BIN)/pytest -n auto --dist worksteal

## Serve the Dagster UI on the same data home as the CLI (http://127.0.0.1:3000).
# VIRTUAL_ENV: dg compares the environment it is told is active with the project's, and warns when none is.
dev: $(VENV)/.installed
	mkdir -p $(DATA_HOME)/dagster && cp dagster.yaml $(DATA_HOME)/dagster/dagster.yaml
	VIRTUAL_ENV=$(abspath $(VENV)) DAGSTER_HOME=$(DATA_HOME)/dagster SILOBREAKER_HOME=$(DATA_HOME) $(BIN)/dg dev --use-active-venv

## Regenerate the tables and columns of docs/warehouse.md from publish/catalog.py (the warehouse's comments).
warehouse-doc: $(VENV)/.installed
	$(BIN)/python -c "from publish.catalog import main; main()"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

## Benchmarks against Splink, in a separate venv (recordlinkage caps pandas < 3; the test venv stays on 3).
bench-setup: .venv-bench/.installed

.venv-bench/.installed: pyproject.toml
	python3.11 -m venv .venv-bench
	.venv-bench/bin/pip install --quiet -e '.[bench]'
	touch $@

## Accuracy (FEBRL3/4, demo district) and speed/memory (100k, 1M) of silobreaker vs Splink.
bench: .venv-bench/.installed $(VENV)/.installed
	.venv-bench/bin/python benchmarks/splink_compare.py all

clean:
	rm -rf var .pytest_cache
