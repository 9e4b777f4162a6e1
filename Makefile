# Two commands (see README):  `make repro`  and  `make test`.
# Both create .venv if it is missing. POOLREP_DATA_MIRROR names the offline data mirror (../shared/datasets here).
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export DVC_NO_ANALYTICS := 1
export PYTHONUNBUFFERED := 1
export MPLBACKEND := Agg
# dvc runs stage commands (`poolrep run ...`) through the shell: the venv's tools must be on PATH.
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: setup repro test test-fast lint format lab clean-scratch

$(BIN)/.installed: requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	$(BIN)/python -m pip install --no-deps -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name poolrep --display-name "Python (poolrep)"
	touch $@

setup: $(BIN)/.installed

# Command 1: the whole pipeline on the profile params.yaml selects (default: cpu), offline from the mirror.
repro: setup
	$(BIN)/poolrep fetch --all-offline
	$(BIN)/python tools/lockguard.py  # a dvc.lock DVC left half-written (killed mid-write): restore the last good one
	$(BIN)/dvc commit -q -f data.dvc  # data/ into the DVC cache, so `dvc push` can share it (its hash: data.dvc)
	$(BIN)/dvc repro
	$(BIN)/poolrep claims

# Command 2: every test: pytest for the package, nbval for every notebook, dvc repro on the smoke profile.
test: setup
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-kernel-name poolrep --timeout 900 -p no:cacheprovider

# The package tests alone (no notebooks, no pipeline): seconds.
test-fast: setup
	$(BIN)/python -m pytest tests -m "not slow" -p no:cacheprovider

# Lint and format (ruff, configured in pyproject.toml): the package, tests, benchmarks, tools and the notebooks.
# .ci/run runs `make lint`; `make format` rewrites what `make lint` would refuse.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# JupyterLab: the kernel must not inherit the Agg backend exported above (it would show no figures;
# tests/test_jupyterlab_browser.py found it).
lab: setup
	env -u MPLBACKEND $(BIN)/jupyter lab --notebook-dir=. $(if $(filter 0,$(shell id -u)),--allow-root)
