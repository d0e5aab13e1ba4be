# The two commands of the README: `make run` and `make test`. Each sets up what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench bench-volume bench-processes clean graphiql-assets api-doc browser

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "libingest needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(VENV)/.installed $@

# GraphiQL's published browser build, pinned by tools/graphiql's lock file and copied into the
# package, so that the service serves GraphiQL itself (ADR 0032). Without npm, the GraphiQL page
# says how to build them, and the tests that load them skip, saying so.
GRAPHIQL := tools/graphiql
GRAPHIQL_ASSETS := entrypoints/graphiql/assets
$(GRAPHIQL_ASSETS)/.built: $(GRAPHIQL)/package.json $(GRAPHIQL)/package-lock.json
	@if command -v npm >/dev/null; then \
	  (cd $(GRAPHIQL) && npm ci --ignore-scripts --no-audit --no-fund) && mkdir -p $(GRAPHIQL_ASSETS) && \
	  cp $(GRAPHIQL)/node_modules/react/umd/react.production.min.js \
	     $(GRAPHIQL)/node_modules/react-dom/umd/react-dom.production.min.js \
	     $(GRAPHIQL)/node_modules/graphiql/graphiql.min.js \
	     $(GRAPHIQL)/node_modules/graphiql/graphiql.min.css \
	     $(GRAPHIQL)/node_modules/graphql-ws/umd/graphql-ws.min.js $(GRAPHIQL_ASSETS)/ && touch $@; \
	else echo "npm not found: GraphiQL's assets are not built (the page says so)"; fi

graphiql-assets: $(GRAPHIQL_ASSETS)/.built

run: $(VENV)/.installed graphiql-assets
	$(BIN)/libingest migrate
	$(BIN)/libingest serve

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The graphql-http audit's Node packages, pinned by their lock file (ADR 0021). Without npm the
# audit test skips, saying so.
AUDIT := tests/e2e/graphql_http_audit
$(AUDIT)/node_modules/.package-lock.json: $(AUDIT)/package.json $(AUDIT)/package-lock.json
	@if command -v npm >/dev/null; then cd $(AUDIT) && npm ci --no-audit --no-fund; \
	else echo "npm not found: the graphql-http audit test will be skipped"; fi

# The status page's browser test drives Debian's chromium through its chromedriver (ADR 0031).
# Installed when missing and apt-get can (as root); otherwise that test skips, saying why.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver >/dev/null) \
	  || echo "chromium could not be installed: the status page's browser test will be skipped"; \
	else echo "chromium not installed (needs root and apt-get): the browser test will be skipped"; fi

test: lint graphiql-assets browser $(AUDIT)/node_modules/.package-lock.json
	$(BIN)/pytest

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(VENV)/.installed $(VENV)/.installed-dev $@

# docs/api.md from the served schema (tests/unit/test_api_doc.py fails when it is stale).
api-doc: $(VENV)/.installed
	$(BIN)/libingest api-doc > docs/api.md

bench: $(VENV)/.installed-bench
	$(BIN)/python -m bench

# Apart from `make bench`, each writing a page of its own (about 10 minutes each): cost as the
# data grows (docs/benchmarks-volume.md), and as processes are added (docs/benchmarks-processes.md).
bench-volume: $(VENV)/.installed-bench
	$(BIN)/python -m bench --only volume

bench-processes: $(VENV)/.installed-bench
	$(BIN)/python -m bench --only processes

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis $(AUDIT)/node_modules
