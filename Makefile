# egov-index — the two commands: `make run` (set up + run the nightly pipeline), `make test`.
# Needs only python3.11 and make; everything else is installed into .venv from pinned requirements.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
UV_VERSION := 0.13.8

.PHONY: run test up venv lint report lock clean bench system-deps

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(PY) -r requirements.txt -r requirements-dev.txt
	$(BIN)/uv pip install --quiet --python $(PY) --no-deps -e .
	touch $@

## run: install, run the nightly pipeline for the sample day through Airflow, print outputs and ranking
run: venv
	$(PY) -m egov_index.cli sample-run

## test: lint (ruff, incl. Airflow AIR rules), the Debian services the integration tests start
## (PostgreSQL, Redis, Chromium: scripts/system-deps.sh), and the whole test suite
test: venv lint system-deps
	$(PY) -m pytest

system-deps:
	bash scripts/system-deps.sh

lint: venv
	$(BIN)/ruff check .

## up: airflow standalone on the project's Airflow home, UI on http://localhost:8080
up: venv
	$(PY) -m egov_index.cli standalone

report: venv
	$(PY) -m egov_index.cli report

## bench: measured figures (JSON), not timed tests: GX validation of 1 M dossier rows; the ranking engine
## (compute, explanations, robustness with 1,000 draws) on the whole country
bench: venv
	$(PY) scripts/bench_gx.py
	$(PY) scripts/bench_ranking.py

## lock: recompile the pinned requirements from requirements*.in
lock: venv
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-header requirements.in -o requirements.txt
	$(BIN)/uv pip compile --quiet --python-version 3.11 --no-header requirements-dev.in -o requirements-dev.txt

clean:
	rm -rf .airflow data
