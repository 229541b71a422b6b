# mammo-mtl — `make demo` and `make test` are the two commands a new user needs.
SHELL := /bin/bash
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
export MAMMO_HOME ?= $(CURDIR)/.mammo
export DAGSTER_HOME ?= $(MAMMO_HOME)/dagster
# TensorFlow: warnings and errors only (its INFO banner would drown the demo summary)
export TF_CPP_MIN_LOG_LEVEL ?= 2
PORT ?= 3000
REVIEW_PORT ?= 8008

.PHONY: install demo test test-fast ui review experiments bench scale-check clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,scale]'
	@touch $@

## generate the demo cohorts and materialise every asset with a persistent Dagster instance
demo: install
	$(BIN)/mammo-mtl demo

## the whole test suite (unit, property, integration, browser when chromium is present)
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile --timeout 900 -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not browser" -x

## Dagster UI on workspace.yaml with the same instance as `make demo`
ui: install
	@mkdir -p $(DAGSTER_HOME)
	$(BIN)/mammo-mtl instance-init
	$(BIN)/dagster dev -w workspace.yaml -p $(PORT)

## annotator review app on the demo data
review: install
	$(BIN)/mammo-mtl review serve --port $(REVIEW_PORT)

## the paper's tables (2-9); EXPERIMENT_BUDGET=paper (GPU: 512x256, 100 epochs), demo, or small (CPU, ~20 min)
EXPERIMENT_BUDGET ?= paper
experiments: install
	$(BIN)/mammo-mtl experiments --all --budget $(EXPERIMENT_BUDGET)

bench: install
	$(BIN)/python bench/run_all.py

## throw-away PostgreSQL + 2-worker Dask LocalCluster: the per-batch job on them vs in-process; one JSON line
scale-check: install
	@$(BIN)/python -m pipelines.scale_check

clean:
	rm -rf $(MAMMO_HOME)
