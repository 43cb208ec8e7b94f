# The README's two commands: `make demo` and `make test`. Both set everything up first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench setup system-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	$(BIN)/python -m pip install -q -e '.[all,test]'
	touch $(STAMP)

setup: $(STAMP) system-deps
	bash scripts/pgvector-portable.sh $(BIN)/python

system-deps:
	bash scripts/system-deps.sh

demo: setup
	bash scripts/demo.sh

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: setup
	DRKIT_BENCH=1 bash scripts/system-deps.sh
	test -x /tmp/litellm-venv/bin/litellm || ($(PYTHON) -m venv /tmp/litellm-venv && \
		/tmp/litellm-venv/bin/pip install -q 'litellm[proxy]')
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
