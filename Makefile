# Herald: `make run` starts it on SQLite with the dev inbox; `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3.13 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench fuzz docs clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Herald needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# `make run HOST=0.0.0.0 PORT=8080`: where `herald serve` listens (then `export HERALD_URL=http://HOST:PORT`).
HOST ?= 127.0.0.1
PORT ?= 8000
run: $(STAMP)
	$(BIN)/herald serve --host '$(HOST)' --port '$(PORT)'

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy src

test: lint typecheck
	$(BIN)/pytest

# schemathesis over every operation, with many more examples than the run in `make test`
fuzz: $(STAMP)
	HERALD_FUZZ_EXAMPLES=$${HERALD_FUZZ_EXAMPLES:-200} $(BIN)/pytest -m fuzz tests/contract

# the documentation (docs/, mkdocs.yml) into site/; strict: a broken link or a stale reference page fails it
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python bench/throughput.py

clean:
	rm -rf $(VENV) var site .pytest_cache .mypy_cache .ruff_cache
