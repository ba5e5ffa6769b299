# Two commands on a fresh machine: `make demo` and `make test`.
# Each bootstraps .venv from the committed uv.lock, `make demo` with the product alone and
# `make test` with the test tools too: uv lives in its own tools venv (.tools), never
# inside the .venv that `uv sync` manages.
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

.PHONY: setup demo test test-fast bench-setup ui notebooks lock clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

# What each command installs, from uv.lock (tests/test_install.py exports both sets):
# the demo the product alone (pyproject's dependencies); the tests those plus every
# dependency group (pytest and friends, PySpark: spark tests run in CI, polars: tests check
# the benchmarks' comparators).
SYNC := $(UV) sync --frozen
DEMO_SET := --no-default-groups
TEST_SET := --no-default-groups --group dev --group spark --group bench
# The empty MLflow store every new ./mlflow.db is copied from (pqlml.store), built once.
STORE_TEMPLATE := $(VENV)/bin/python -c "from pqlml.store import store_template; store_template()"

# One sentinel per set. `uv sync` is exact (it removes what the set does not name), so the
# demo's sync is exact only where `make test` has not installed its larger set: `make demo`
# never takes away what `make test` installed, and either order works in one checkout.
$(VENV)/.synced-demo: uv.lock pyproject.toml | $(UV)
	$(SYNC) $(DEMO_SET) $(if $(wildcard $(VENV)/.synced-test),--inexact)
	$(STORE_TEMPLATE)
	touch $@

$(VENV)/.synced-test: uv.lock pyproject.toml | $(UV)
	$(SYNC) $(TEST_SET)
	$(STORE_TEMPLATE)
	touch $@ $(VENV)/.synced-demo

# The environment to work on pqlml in: everything `make test` needs.
setup: $(VENV)/.synced-test

demo: $(VENV)/.synced-demo
	$(VENV)/bin/pqlml demo

# Two OpenMP runtimes made one HistGradientBoosting fit 19x slower: pin threads.
# Two workers (the machine's cores), each running whole files in order: modules whose
# tests build on each other (a month-by-month retraining) keep their sequence. Files are
# queued longest first (tests/conftest.py), not by their number of tests (xdist's default).
PYTEST_WORKERS ?= 2
test: $(VENV)/.synced-test
	OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=25

test-fast: $(VENV)/.synced-test
	OMP_NUM_THREADS=1 $(VENV)/bin/python -m pytest -m "not slow"

# benchmarks/: the product plus the hand-written polars comparator (featuretools runs in its
# own uv environment, see benchmarks/_featuretools_dfs.py).
bench-setup: $(VENV)/.synced-demo
	$(SYNC) $(DEMO_SET) --group bench --inexact

# The add-ons below are added beside whatever is installed (--inexact), never in place of it.
# The MLflow UI over a project's store, mlflow.db beside its config (default: the demo's;
# `make ui STORE=acme/mlflow.db` for yours). Needs the full `mlflow` package: the `ui` extra.
STORE ?= demo-output/mlflow.db
ui: $(VENV)/.synced-demo
	$(SYNC) $(DEMO_SET) --extra ui --inexact
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(abspath $(STORE)) --host 127.0.0.1 --port 5000

# JupyterLab on notebooks/, on this machine only (the `notebooks` extra); it opens a browser
# where there is one: `make notebooks JUPYTER_ARGS=--no-browser` to only print the address
# (add --allow-root where you run as root, as in a container). Never run in CI.
JUPYTER_ARGS ?=
notebooks: $(VENV)/.synced-demo
	$(SYNC) $(DEMO_SET) --extra notebooks --inexact
	$(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.root_dir=notebooks $(JUPYTER_ARGS)

lock: | $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .hypothesis demo-output
