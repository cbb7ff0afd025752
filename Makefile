# authgraph: `make run` serves the API, `make test` runs every check CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The GraphQL-over-HTTP audit's node packages (graphql-http), pinned by its lock file.
AUDIT := tests/http_audit
AUDIT_STAMP := $(AUDIT)/node_modules/.package-lock.json
# The real OpenID provider of the social sign-in tests (oidc-provider), pinned by its lock file.
OIDC := tests/oidc_provider
OIDC_STAMP := $(OIDC)/node_modules/.package-lock.json
# Apollo Client and its persisted-queries link (tests/e2e/test_apollo_client.py).
APOLLO := tests/apollo_client
APOLLO_STAMP := $(APOLLO)/node_modules/.package-lock.json
HOST ?= 127.0.0.1
PORT ?= 8000
SPA_PORT ?= 5173

.PHONY: install run spa resource-server test lint typecheck pytest schema bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Without npm the audit's tests skip (CI installs nodejs and npm, and there they must run).
$(AUDIT_STAMP): $(AUDIT)/package.json $(AUDIT)/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix $(AUDIT) --no-audit --no-fund; \
	else echo "install: npm is missing, so the GraphQL-over-HTTP audit will skip" \
	  "(Debian/Ubuntu: sudo apt-get install -y nodejs npm)" >&2; fi

# Without npm the social sign-in tests against the provider skip (CI has it: there they run).
$(OIDC_STAMP): $(OIDC)/package.json $(OIDC)/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix $(OIDC) --no-audit --no-fund; \
	else echo "install: npm is missing, so the social sign-in tests will skip" >&2; fi


$(APOLLO_STAMP): $(APOLLO)/package.json $(APOLLO)/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix $(APOLLO) --no-audit --no-fund; \
	else echo "install: npm is missing, so the Apollo Client test will skip" >&2; fi

install: $(STAMP) $(AUDIT_STAMP) $(OIDC_STAMP) $(APOLLO_STAMP)

run: install
	$(BIN)/authgraph migrate
	$(BIN)/authgraph serve --host $(HOST) --port $(PORT)

# The example SPA (examples/spa) on http://localhost:$(SPA_PORT), beside the API in cookie mode
# on http://localhost:$(PORT) with CORS open to the SPA's origin only. Ctrl-C stops both.
spa: install
	$(BIN)/authgraph migrate
	@REFRESH_TOKEN_TRANSPORT=cookie CORS_ORIGINS=http://localhost:$(SPA_PORT) \
	  $(BIN)/authgraph serve --host $(HOST) --port $(PORT) & api=$$!; \
	  trap 'kill $$api 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/python examples/spa/serve.py --host $(HOST) --port $(SPA_PORT) \
	    --api http://localhost:$(PORT)/graphql

# The example resource server (examples/resource_server) on http://$(HOST):$(RS_PORT)/protected,
# verifying the API's tokens from its JWKS (RS_MODE=introspect asks /introspect instead, as
# INTROSPECTION_CLIENTS' resource-server with RESOURCE_SERVER_CLIENT_SECRET). Ctrl-C stops both.
RS_PORT ?= 8100
RS_MODE ?= jwks
resource-server: install
	$(BIN)/authgraph migrate
	@$(BIN)/authgraph serve --host $(HOST) --port $(PORT) & api=$$!; \
	  trap 'kill $$api 2>/dev/null' EXIT INT TERM; \
	  $(BIN)/python examples/resource_server/server.py --host $(HOST) --port $(RS_PORT) \
	    --api http://$(HOST):$(PORT) --mode $(RS_MODE)

test: lint typecheck pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

pytest: install
	$(BIN)/pytest

schema: install
	$(BIN)/authgraph export-schema > schema.graphql

# About 10 minutes; needs wrk and taskset. Results: bench/out/latest.md (see bench/RESULTS.md).
bench: install
	@command -v wrk >/dev/null || { echo "bench: wrk is missing; on Debian/Ubuntu: sudo apt-get install -y wrk" >&2; exit 2; }
	@command -v taskset >/dev/null || { echo "bench: taskset is missing; on Debian/Ubuntu: sudo apt-get install -y util-linux" >&2; exit 2; }
	$(BIN)/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info $(AUDIT)/node_modules $(OIDC)/node_modules
