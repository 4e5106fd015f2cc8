# The two commands of the quick start: `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.8
VENV := .venv
STAMP := $(VENV)/.synced-$(UV_VERSION)
PYTHON_BIN = $(shell scripts/find-python)
UV = $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/residuals

.PHONY: help run test env lint format worker-redis clean

help:
	@echo "make run    set up, migrate SQLite, load demo data, serve http://127.0.0.1:8000 with a worker and beat"
	@echo "make test   set up, lint, and run the whole test suite on PostgreSQL"

# --- the environment --------------------------------------------------------
.tools/bin/uv:
	@python=$$(scripts/find-python) || exit 1; \
	echo "Installing uv $(UV_VERSION) into .tools/ (with $$python)"; \
	"$$python" -m venv .tools && .tools/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(STAMP): pyproject.toml uv.lock
	@command -v uv >/dev/null 2>&1 || $(MAKE) --no-print-directory .tools/bin/uv
	@python=$$(scripts/find-python) || exit 1; \
	$(UV) sync --frozen --python "$$python"
	@touch $@

env: $(STAMP)

# --- make run: SQLite and the embedded broker unless told otherwise ---------
run: env
	@mkdir -p var
	$(VENV)/bin/python manage.py migrate --noinput
	$(VENV)/bin/python manage.py seed_demo
	$(VENV)/bin/python manage.py seed_demo_market
	@echo "Serving on http://127.0.0.1:8000 (web, worker and beat; Ctrl-C stops all three)"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start -f Procfile

# --- make test: lint, then every test on PostgreSQL --------------------------
test: env
	@DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" scripts/check-postgres
	@scripts/ensure-chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DATABASE_URL="$${DATABASE_URL:-$(TEST_DATABASE_URL)}" RESIDUALS_ENV=test $(VENV)/bin/pytest

lint: env
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: env
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .tools var .pytest_cache .ruff_cache
