# Two commands for a newcomer: `make demo` and `make test`. Both install what they need.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTHON  ?= python3
BUNDLE  := frontend/dist/command.js

.PHONY: install frontend demo test lint check bench clean

$(STAMP): pyproject.toml
	@command -v redis-server >/dev/null && command -v mosquitto >/dev/null \
	  && ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  echo "redis-server, mosquitto and PostgreSQL are needed:" \
	    "sudo apt-get install redis-server mosquitto postgresql"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The screens: npm packages from the lock file, bundled by esbuild (no CDN at run time).
$(BUNDLE): frontend/package-lock.json frontend/build.mjs $(wildcard frontend/src/*.js frontend/src/*/*.js frontend/static/*)
	@command -v npm >/dev/null || { echo "npm is needed for the screens: sudo apt-get install npm"; exit 1; }
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

frontend: $(BUNDLE)

demo: install frontend
	$(BIN)/yiwang demo

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy gis dispatch/core devices/mqttwire.py devices/backlog.py devices/topics.py devices/messages.py \
	  devices/quality.py devices/telemetry devices/translate.py devices/downlink.py devices/presence.py \
	  devices/sink.py devices/backfill.py devices/membership.py devices/osmand.py devices/jt808 \
	  devices/sensors.py
	$(BIN)/lint-imports

test: lint frontend
	$(BIN)/pytest

bench: install
	$(BIN)/yiwang bench ingest

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis frontend/node_modules frontend/dist
