# Two commands on a fresh machine: `make demo` and `make test`.
# Each bootstraps .venv from the committed uv.lock: uv lives in its own tools
# venv (.tools), never inside the .venv that `uv sync` manages.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv

# The environment sets PYTHONDONTWRITEBYTECODE; without .pyc files the heavy
# imports are 3-5x slower, so uv compiles bytecode at install time.
export UV_COMPILE_BYTECODE := 1
export UV_PYTHON_DOWNLOADS := never
export MLFLOW_DISABLE_TELEMETRY := true

.PHONY: setup demo test test-fast ui lock clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen
	@# the empty MLflow store every new ./mlflow.db is copied from (pqlml.store), built once
	MLFLOW_DISABLE_TELEMETRY=true $(VENV)/bin/python -c "from pqlml.store import store_template; store_template()"
	touch $@

setup: $(VENV)/.synced

demo: setup
	$(VENV)/bin/pqlml demo

# Two OpenMP runtimes made one HistGradientBoosting fit 19x slower: pin threads.
# Two workers (the machine's cores), each running whole files in order: modules whose
# tests build on each other (a month-by-month retraining) keep their sequence.
PYTEST_WORKERS ?= 2
test: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=25

test-fast: setup
	OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest -m "not slow"

# The MLflow UI over a project's store, mlflow.db beside its config (default: the demo's;
# `make ui STORE=acme/mlflow.db` for yours). Needs the full `mlflow` package: the `ui` extra.
STORE ?= demo-output/mlflow.db
ui: setup
	$(UV) sync --frozen --extra ui
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(abspath $(STORE)) --host 127.0.0.1 --port 5000

lock: | $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .hypothesis demo-output
