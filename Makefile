# The README's two commands (`make demo`, `make test`) must work on a fresh machine from
# nothing but a clone: each creates the virtual environment when it is missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip

.PHONY: demo test bench lint typecheck format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

demo: $(BIN)/python
	$(PIP) install --quiet -e '.[cli]'
	$(BIN)/poolkit demo

test: $(BIN)/python
	$(PIP) install --quiet -e '.[dev,cli,bench,progress,postgres,memcache,cloudpickle,resque,dask]'
	bash scripts/install-test-servers.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(BIN)/python
	$(PIP) install --quiet -e '.[cli,bench,resque,dask]'
	$(BIN)/poolkit bench

format: $(BIN)/python
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) poolkit-demo .mypy_cache .pytest_cache .ruff_cache .hypothesis
