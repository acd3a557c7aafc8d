# Two commands for a newcomer: `make demo` and `make test`. Both install what they need.
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTHON  ?= python3
BUNDLE  := frontend/dist/command.js
# Debian packages: the daemons the demo and the tests start, npm for the screens' bundle, for
# the browser tests Debian's Chromium with a CJK font, and docker-compose, whose `config` checks
# docker-compose.yml (no container runs). Missing ones are installed as root, else named in one
# `sudo apt-get install` line.
PACKAGES      := deploy/system-packages.sh
DEMO_PACKAGES := python3-venv redis-server mosquitto postgresql npm
TEST_PACKAGES := $(DEMO_PACKAGES) chromium fonts-noto-cjk docker-compose
# Options for the demo: make demo ARGS="--speed 10 --fresh"
ARGS    ?=

.PHONY: install frontend demo test lint check bench clean shell demo-packages test-packages

demo-packages:
	@$(PACKAGES) $(DEMO_PACKAGES)

test-packages:
	@$(PACKAGES) $(TEST_PACKAGES)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --editable ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# The screens: npm packages from the lock file, bundled by esbuild (no CDN at run time).
$(BUNDLE): frontend/package-lock.json frontend/build.mjs $(wildcard frontend/src/*.js frontend/src/*/*.js frontend/static/*)
	@$(PACKAGES) npm
	cd frontend && npm ci --no-audit --no-fund --loglevel=error && node build.mjs

frontend: $(BUNDLE)

demo: demo-packages install frontend
	$(BIN)/yiwang demo $(ARGS)

# A shell with the `yiwang` command on PATH (it is .venv/bin/yiwang).
shell: install
	@echo "yiwang is on PATH in this shell; exit to leave"
	@PATH="$(CURDIR)/$(BIN):$$PATH" $${SHELL:-/bin/sh}

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy gis dispatch/core devices/mqttwire.py devices/backlog.py devices/topics.py devices/messages.py \
	  devices/quality.py devices/telemetry devices/translate.py devices/downlink.py devices/presence.py \
	  devices/sink.py devices/backfill.py devices/membership.py devices/osmand.py devices/jt808 \
	  devices/sensors.py devices/backoff.py
	$(BIN)/lint-imports

test: test-packages lint frontend
	$(BIN)/pytest

bench: install
	$(BIN)/yiwang bench ingest

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis frontend/node_modules frontend/dist
