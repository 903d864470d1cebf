# Herald: `make run` starts the stack on this machine, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml sdk/python/pyproject.toml | cksum | cut -d' ' -f1)
PYTEST := $(PY) -m pytest

.PHONY: tools install run observe demo test unit integration e2e faults cluster browser screenshots slow bench bench-million bench-scale bench-email bench-notifications bench-receipts lint fmt migrate services up down clean

install: $(STAMP)

$(STAMP): pyproject.toml sdk/python/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	$(PY) -m pip install -q -e './sdk/python[django]'
	rm -f $(VENV)/.installed-* && touch $@

migrate: install
	$(PY) -m shared.db.migrate

run: install
	$(PY) -m deploy.stack

# Prometheus with Herald's alert rules over the stack `make run` started (another terminal).
observe: install tools
	$(PY) -m deploy.observe

demo: install
	$(PY) -m bench.demo

test: install lint unit integration e2e faults cluster browser

unit: install
	$(PYTEST) -m unit tests/unit

integration: install tools
	$(PYTEST) -m integration tests/integration

e2e: install tools
	$(PYTEST) -m e2e tests/e2e

# Fault injection: kills, broker and database restarts, a flaky gateway (own RabbitMQ and PostgreSQL).
faults: install
	$(PYTEST) -m e2e tests/faults

# Three test hosts (network namespaces) on a three-node RabbitMQ cluster of their own: a node
# killed or stopped, a host cut off or lost mid-campaign (needs root and iproute2).
cluster: install
	$(PYTEST) -m e2e tests/cluster

# The console in Debian's Chromium, driven by Playwright (own database and vhost).
browser: install
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)
	$(PYTEST) -m browser tests/browser

# Screenshots of the console's main pages for the README.
screenshots: install
	HERALD_CONSOLE_SCREENSHOTS=docs/console $(PYTEST) -m browser tests/browser

# promtool and prometheus (Debian's): the alert, dashboard and scrape tests run them.
tools:
	command -v promtool >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends prometheus)

bench: install
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(PY) -m bench.run $(BENCH_ARGS)

bench-million: BENCH_ARGS = --recipients 1000000
bench-million: bench

# Ten campaigns of a million in a row, then the retention job (own database): BENCH_SCALE_ARGS
# such as --campaigns 3 --recipients 100000 for a shorter run.
bench-scale: install
	$(PY) -m bench.scale $(BENCH_SCALE_ARGS)

# Notifications through the API: accept latency, accept to gateway idle and beside a campaign,
# the campaign's rate with and without them, arrays of 1,000 end to end (own database).
bench-notifications: install
	$(PY) -m bench.notifications $(BENCH_NOTIFICATIONS_ARGS)

# Delivery receipts posted as arrays through the API, RabbitMQ and stats: applied per second.
bench-receipts: install
	$(PY) -m bench.receipts $(BENCH_RECEIPTS_ARGS)

# E-mails per second through the SMTP pool against a local sink, raw and end to end, and the
# same with a fresh SMTP session per message: the pool's gain as a ratio.
bench-email: install
	$(PY) -m bench.email $(BENCH_EMAIL_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vulture

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# RabbitMQ and PostgreSQL as this machine runs them (no Docker engine here).
services:
	bash .ci/services.sh

up:
	docker compose up -d --build

down:
	docker compose down

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
