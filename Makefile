# The two commands a new user needs: `make demo` and `make test`. Both bootstrap .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/etl demo

# Lint, types, then every test but the benchmarks (slow crash tests included: they fit).
test: $(STAMP) lint
	$(BIN)/python -m pytest -q -m "not benchmark"

# Quick loop while developing: no slow tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not benchmark and not slow"

lint: $(STAMP)
	$(BIN)/ruff check etl tests bench
	$(BIN)/ruff format --check etl tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
