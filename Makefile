# Everything runs from the project's own virtual environment, built from the lock files.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS := -n auto -m "not faults" --cov --cov-report=term --durations=15

.DEFAULT_GOAL := help

.PHONY: help install install-dev run test faults lint typecheck schema schema-check lock bench clean

help:
	@echo "make run     install pinned dependencies, migrate and serve on http://$(HOST):$(PORT)/graphql"
	@echo "make test    install pinned dev dependencies; run ruff, mypy and the whole test suite"
	@echo "make faults  stop, freeze and overload servers of its own under the running app"
	@echo "make schema  regenerate schema.graphql from the code"
	@echo "make lock    re-resolve requirements/*.txt from pyproject.toml"
	@echo "make bench   run the benchmark suite (needs wrk; see BENCHMARKS.md)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
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

# mypy checks beside the tests instead of before them: its quarter of a minute on one core
# mostly fills the moments the test workers spend waiting. Its report follows the tests'.
test: lint
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

bench: install-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.* htmlcov
