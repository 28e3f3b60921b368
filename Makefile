# The two commands: `make run` (the whole system, embedded defaults) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RUN_STAMP := $(VENV)/.run-$(shell cat requirements.txt | sha1sum | cut -c1-12)
DEV_STAMP := $(VENV)/.dev-$(shell cat requirements.txt requirements-dev.txt | sha1sum | cut -c1-12)

# Tests run against real services: PostgreSQL and Redis on loopback (see README).
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/portal
TEST_BROKER_URL ?= redis://127.0.0.1:6379/14
TEST_ENV := DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) PORTAL_DATA_DIR=$(CURDIR)/data/test

.PHONY: run test bench lint format vendor clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip

$(RUN_STAMP): requirements.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

# make run's ports (the Procfile reads them too): WEB_PORT=8001 SMSC_PORT=2776 make run
WEB_PORT ?= 8000
SMSC_PORT ?= 2775
export WEB_PORT SMSC_PORT

run: $(RUN_STAMP)
	$(PY) manage.py migrate --no-input -v0
	$(PY) manage.py seed_demo --fleet data/fleet.json --books data/books \
		--server-url http://127.0.0.1:$(WEB_PORT)/syncml --smsc-port $(SMSC_PORT)
	$(VENV)/bin/honcho start -f Procfile

test: $(DEV_STAMP)
	scripts/install-apt-packages apt-packages.txt
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(TEST_ENV) $(PY) manage.py check_services --create-database
	$(TEST_ENV) $(PY) manage.py makemigrations --check --dry-run -v0
	$(TEST_ENV) $(VENV)/bin/pytest $(PYTEST_ARGS)

bench: $(DEV_STAMP)
	$(TEST_ENV) $(PY) manage.py check_services
	@for b in benchmarks/bench_*.py; do echo "### $$b"; $(TEST_ENV) $(PY) $$b || exit 1; done

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(DEV_STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Refresh the vendored front-end assets from the npm registry (versions in package.json).
vendor:
	npm install --no-save --no-package-lock
	cp node_modules/bootstrap/dist/css/bootstrap.min.css node_modules/bootstrap/dist/js/bootstrap.bundle.min.js static/vendor/
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/

clean:
	rm -rf $(VENV) data/test staticfiles
