# Two commands for a newcomer: `make demo` and `make test`. Both install what they need.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTHON  ?= python3

.PHONY: install demo test lint check bench clean

$(STAMP): pyproject.toml
	@command -v redis-server >/dev/null && command -v mosquitto >/dev/null || { \
	  echo "redis-server and mosquitto are needed: sudo apt-get install redis-server mosquitto"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/yiwang demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy gis dispatch/core devices/topics.py devices/messages.py devices/quality.py devices/telemetry
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

bench: install
	$(BIN)/yiwang bench ingest

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
