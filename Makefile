# The README's two commands (`make demo`, `make test`) must work on a fresh machine from
# nothing but a clone: each creates the virtual environment when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test test-all bench lint typecheck format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

demo: $(BIN)/python
	$(PIP) install --quiet -e '.[cli]'
	$(BIN)/poolkit demo

test: $(BIN)/python
	$(PIP) install --quiet -e '.[dev,cli,bench,progress,postgres,memcache,cloudpickle,resque,dask,sqlalchemy,prometheus,opentelemetry]'
	bash scripts/install-test-servers.sh
	$(BIN)/python scripts/gen_sync.py --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	# User-style programs: their `# type: ignore[...]` lines must still fail (tests/typing).
	$(BIN)/mypy tests/typing
	$(BIN)/python -m pytest

# `make test`, then the suite on every other CPython >= requires-python found here
# (pyenv's, python3.N on PATH), each in its own .venv-X.Y set up as `make test` sets
# up .venv; ruff and mypy run once, in `make test`. See scripts/test_all.py.
test-all: test
	$(BIN)/python scripts/test_all.py --skip "$$($(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')"

bench: $(BIN)/python
	$(PIP) install --quiet -e '.[cli,bench,resque,dask]'
	$(BIN)/poolkit bench

format: $(BIN)/python
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .venv-3.* poolkit-demo .mypy_cache .pytest_cache .ruff_cache .hypothesis
