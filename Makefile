# The two commands a new user needs: `make demo` and `make test`. Both bootstrap .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo shell test test-fast soak lint typecheck bench clean bytecode

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(MAKE) --no-print-directory bytecode
	touch $(STAMP)

# Bytecode for the checkout (an editable install compiles nothing). Python reads it even where
# PYTHONDONTWRITEBYTECODE is set (as on our CI machines), so no command or test subprocess
# compiles etl's modules from source as it starts (0.03-0.1 s a start). Up-to-date files are
# skipped; a module changed since is compiled again by the next `make test`.
bytecode:
	$(BIN)/python -m compileall -q -j 0 etl tests bench >/dev/null

demo: $(STAMP) bytecode
	$(BIN)/etl demo
	@echo
	@echo "etl and duckdb are in $(BIN). To use them in this shell, run:"
	@echo
	@echo "    source $(BIN)/activate"
	@echo
	@echo "(or 'make shell' for a shell with $(BIN) on its PATH; 'exit' leaves it)"

# A shell with .venv/bin first on the PATH, for the README's examples.
shell: $(STAMP)
	@echo "etl and duckdb are on the PATH of this shell; 'exit' leaves it."
	@VIRTUAL_ENV="$(abspath $(VENV))" PATH="$(abspath $(BIN)):$$PATH" $${SHELL:-/bin/sh} -i

# Lint, types, then every test but the benchmarks and soaks (slow crash tests included: they
# fit). Two workers, whole files each (module fixtures are built once; tests that build on
# each other stay in order): most tests wait on subprocesses, sockets and fsyncs rather than the CPU.
PYTEST_WORKERS ?= 2
test: $(STAMP) lint bytecode
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile -m "not benchmark and not soak"

# Quick loop while developing: no slow tests.
test-fast: $(STAMP) bytecode
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile -m "not benchmark and not slow and not soak"

# On demand: the long soak tests (memory flat over compressed hours; figures in BENCHMARKS.md).
soak: $(STAMP)
	$(BIN)/python -m pytest -q -m soak

lint: $(STAMP)
	$(BIN)/ruff check etl tests bench
	$(BIN)/ruff format --check etl tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
