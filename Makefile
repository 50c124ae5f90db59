# The two commands of the README, and a few for the data team.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test dev clean

## Set up and run the whole pipeline on the generated demo district (20,000 people).
demo: $(VENV)/.installed
	$(BIN)/silobreaker demo

## Set up and run the test suite.
test: $(VENV)/.installed
	$(BIN)/pytest

## Serve the Dagster UI on the same data home as the CLI (http://127.0.0.1:3000).
dev: $(VENV)/.installed
	mkdir -p var/dagster && cp dagster.yaml var/dagster/dagster.yaml
	DAGSTER_HOME=$(CURDIR)/var/dagster $(BIN)/dagster dev

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf var .pytest_cache
