# Entry points: `make run` (local service), `make test`, `make lint`, `make docs`. See README.md and docs/.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two layers, each reinstalled whenever its requirements change: what serving needs
# (requirements.txt, for `make run`) and the tools the tests and linters add (requirements-dev.txt).
RUN_STAMP := $(VENV)/.run-$(shell cat requirements.txt emailsender/requirements.txt | sha1sum | cut -c1-12)
DEV_STAMP := $(VENV)/.dev-$(shell cat requirements.txt requirements-dev.txt requirements-lint.txt emailsender/requirements.txt | sha1sum | cut -c1-12)
# Human-readable logs on a developer's terminal; every deployment logs JSON (the default).
DEV_ENV := DJANGO_DEBUG=1 LOG_FORMAT=plain
# The docs site's API reference runs `manage.py spectacular` with these settings (docs/hooks/openapi.py).
# NO_MKDOCS_2_WARNING: Material 9.7+ prints a notice about MkDocs 2 on every build; the pins hold both at 1.x/9.x.
DOCS_ENV := $(DEV_ENV) NO_MKDOCS_2_WARNING=1
# The browser tests drive Debian's Chromium (never a browser Playwright downloads).
CHROMIUM_PATH ?= /usr/bin/chromium
export CHROMIUM_PATH

.PHONY: install install-run browser run run-stack test lint docs audit bench chaos

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.run-*
	touch $@

$(DEV_STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	rm -f $(VENV)/.dev-*
	touch $@

install-run: $(RUN_STAMP)
install: $(DEV_STAMP)

## Debian's chromium for the browser tests: installed with apt-get where it exists (as root, or through sudo).
browser:
	@scripts/ensure_chromium.sh

## Serve on http://127.0.0.1:8000 with SQLite, in-process delivery and the local outbox folder.
## The system checks run once, in runserver (before it serves), so each warning is printed once.
run: install-run
	$(DEV_ENV) $(BIN)/python manage.py migrate --noinput --skip-checks
	$(DEV_ENV) $(BIN)/python manage.py demo_admin
	$(DEV_ENV) $(BIN)/python manage.py runserver 127.0.0.1:8000

## Every Procfile process against local PostgreSQL, RabbitMQ and the fake SendGrid (scripts/run_stack.py).
run-stack: install
	$(BIN)/python scripts/run_stack.py

## The whole suite, against PostgreSQL and RabbitMQ on 127.0.0.1. PYTEST_ARGS="-m 'not slow'" to narrow it.
test: install browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(DEV_ENV) $(BIN)/mypy
	$(DEV_ENV) $(BIN)/python manage.py makemigrations --check --dry-run
	$(DEV_ENV) $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null
	manifests/check.sh
	$(DOCS_ENV) $(BIN)/mkdocs build --strict --site-dir site

## The documentation site (mkdocs.yml, docs/) on http://127.0.0.1:8001, rebuilt as its files change.
docs: install
	$(DOCS_ENV) $(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

## Known vulnerabilities in requirements.txt and emailsender/requirements.txt (pip-audit; ignore list:
## scripts/audit_ignore.txt). AUDIT_ARGS=--allow-unreachable passes when the vulnerability service cannot answer.
audit: install
	$(BIN)/python -m scripts.audit $(AUDIT_ARGS)

## Benchmarks (bench/run.py): full stack on local PostgreSQL and RabbitMQ; writes bench/results/latest.*.
## BENCH_ARGS="--quick" for a short try, "--only api_send,pipeline" for some scenarios.
bench: install
	$(BIN)/python -m pip install --quiet -r bench/requirements.txt
	command -v wrk >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## Fault injection (chaos/run.py): a private PostgreSQL and RabbitMQ, the full stack, faults under load;
## writes chaos/results/latest.*. CHAOS_ARGS="--only sender_kill,database_down" for some scenarios.
chaos: install
	$(BIN)/python -m chaos.run $(CHAOS_ARGS)
