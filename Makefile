# Everything runs from the project's own virtual environment, built from the lock files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS := -n auto -m "not faults and not bench_smoke" --cov --cov-report=term --durations=15

.DEFAULT_GOAL := help

.PHONY: help install install-dev run test faults downstream lint typecheck web-install web-typecheck schema schema-check lock bench bench-smoke clean

help:
	@echo "make run     install pinned dependencies, migrate and serve on http://$(HOST):$(PORT)/graphql"
	@echo "             (make run PORT=8001 HOST=0.0.0.0 to change where; Ctrl+C stops it)"
	@echo "make test    install pinned dev dependencies; run ruff, mypy, the web client's type check"
	@echo "             and the whole test suite"
	@echo "make faults  stop, freeze and overload servers of its own under the running app"
	@echo "make downstream  build the wheel, install it in a fresh venv, run examples/downstream-pytest"
	@echo "make schema  regenerate schema.graphql from the code"
	@echo "make lock    re-resolve requirements/*.txt from pyproject.toml"
	@echo "make bench   run the benchmark suite (needs wrk; see BENCHMARKS.md)"

# A failed venv (Debian's python3 without python3-venv) is removed, so that the next
# make, once the package is installed, starts over instead of using a venv without pip.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
		echo "gql-app needs Python 3.11 or newer; '$(PYTHON)' is not (make run PYTHON=python3.12 picks another)" >&2; \
		exit 1; }
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "'$(PYTHON) -m venv' failed; on Debian or Ubuntu: sudo apt-get install python3-venv" >&2; \
		exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"

# The project itself is installed without build isolation, so its build backend
# comes pinned from requirements/build.txt like everything else.
$(VENV)/.installed-main: requirements/main.txt requirements/build.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/main.txt -r requirements/build.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(VENV)/.installed-dev: requirements/dev.txt requirements/build.txt pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.txt -r requirements/build.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@ $(VENV)/.installed-main

install: $(VENV)/.installed-main
install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/gql-app serve --host $(HOST) --port $(PORT)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install-dev
	$(BIN)/mypy

# The reference web client (examples/web): its packages from the lock file, then its
# documents checked against schema.graphql, so a schema change that breaks it fails here.
WEB := examples/web
$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund

web-install: $(WEB)/node_modules/.package-lock.json

web-typecheck: web-install
	cd $(WEB) && npm run typecheck

# mypy checks beside the tests instead of before them: its quarter of a minute on one core
# mostly fills the moments the test workers spend waiting. Its report follows the tests'.
test: lint web-typecheck
	@mypy_log=$$(mktemp); \
	echo "$(BIN)/mypy (beside the tests)"; \
	$(BIN)/mypy > $$mypy_log 2>&1 & mypy_pid=$$!; \
	echo '$(BIN)/pytest $(PYTEST_ARGS)'; \
	$(BIN)/pytest $(PYTEST_ARGS); tests=$$?; \
	wait $$mypy_pid; typed=$$?; \
	echo "$(BIN)/mypy:"; cat $$mypy_log; rm -f $$mypy_log; \
	[ $$tests -eq 0 ] && [ $$typed -eq 0 ]

# PostgreSQL and Redis of the tests' own, stopped and frozen under load (tests/faults/).
faults: install-dev
	$(BIN)/pytest -m faults

# Another team's suite (examples/downstream-pytest) on gql-app installed as users install it:
# the wheel, in a fresh virtualenv, with the pinned requirements and nothing of this checkout.
DOWNSTREAM := build/downstream
EXAMPLE := examples/downstream-pytest
# This venv's pip installs into that one (a venv without pip of its own starts in a second).
DOWNSTREAM_PIP := $(BIN)/python -m pip --python $(DOWNSTREAM)/venv/bin/python install --quiet

downstream: install-dev
	rm -rf $(DOWNSTREAM)
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir $(DOWNSTREAM)/dist .
	$(PYTHON) -m venv --without-pip $(DOWNSTREAM)/venv
	$(DOWNSTREAM_PIP) --require-hashes -r requirements/main.txt
	$(DOWNSTREAM_PIP) --require-hashes -r $(EXAMPLE)/requirements.txt
	$(DOWNSTREAM_PIP) --no-deps $(DOWNSTREAM)/dist/gql_app-*.whl
	cd $(EXAMPLE) && $(CURDIR)/$(DOWNSTREAM)/venv/bin/python -c \
		'import gql_app, sys; sys.exit(0 if "site-packages" in gql_app.__file__ else "gql_app came from " + gql_app.__file__)'
	cd $(EXAMPLE) && $(CURDIR)/$(DOWNSTREAM)/venv/bin/python -m pytest -p no:cacheprovider

schema: install
	$(BIN)/gql-app export-schema

schema-check: install
	$(BIN)/gql-app export-schema --check

lock: install-dev
	$(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 \
		--generate-hashes --output-file requirements/main.txt
	$(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 \
		--generate-hashes --extra dev --output-file requirements/dev.txt
	echo "hatchling" | $(BIN)/uv pip compile - --quiet --universal --python-version 3.11 \
		--constraint requirements/dev.txt \
		--generate-hashes --output-file requirements/build.txt
	$(BIN)/uv pip compile examples/downstream-pytest/requirements.in --quiet --universal \
		--python-version 3.11 --constraint requirements/dev.txt \
		--generate-hashes --output-file examples/downstream-pytest/requirements.txt

bench: install-dev
	$(BIN)/python -m bench

# The benchmark suite and the enumeration check, each run once end to end at the least
# settings (tests/test_bench_*.py): that they run, not what they measure.
bench-smoke: install-dev
	$(BIN)/pytest -n auto -m bench_smoke

clean:
	rm -rf $(VENV) $(DOWNSTREAM) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
