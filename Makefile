# Two commands a newcomer needs: `make demo` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: install test lint demo demo-stack bench loadtest backup restore clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## Run the whole suite (or `make test ARGS="tests/eventstore -k conflict"`) against a private
## PostgreSQL and Redis started on 127.0.0.1 and stopped afterwards.
test: install
	scripts/install-system-packages.sh browser || [ "$${REQUIRE_SERVICES:-0}" != 1 ]
	$(BIN)/ruff check --quiet .
	$(BIN)/lint-imports --no-cache >/dev/null || $(BIN)/lint-imports --no-cache
	scripts/with-services.sh $(BIN)/pytest $(ARGS)

DEMO_PORT ?= 8000
DEMO_STREAM_PORT ?= $(shell echo $$(($(DEMO_PORT) + 1)))

## Migrate the embedded SQLite database, load the demo data and users, serve on 127.0.0.1
## (the event streams too: runserver polls the SQLite file for them every half second).
demo: install
	$(BIN)/python manage.py migrate --no-input -v0
	LOG_LEVEL=WARNING $(BIN)/python manage.py demo_setup --base-url http://127.0.0.1:$(DEMO_PORT)
	$(BIN)/python manage.py runserver --noreload 127.0.0.1:$(DEMO_PORT)

## The same demo on PostgreSQL, Redis, gunicorn, a Celery worker and beat, with the event
## streams served by uvicorn on DEMO_STREAM_PORT (LISTEN/NOTIFY); Ctrl-C stops it.
demo-stack: install
	scripts/install-system-packages.sh
	DEMO_PORT=$(DEMO_PORT) DEMO_STREAM_PORT=$(DEMO_STREAM_PORT) scripts/demo-stack.sh

## Benchmarks: JSON figures beside a raw baseline measured in the same run.
bench: install
	$(BIN)/pip install -q -e '.[dev,bench]'
	scripts/install-system-packages.sh
	SERVICES_MODE=--durable scripts/with-services.sh $(BIN)/python -m bench.append
	SERVICES_MODE=--durable scripts/with-services.sh $(BIN)/python -m bench.replay
	SERVICES_MODE=--durable scripts/with-services.sh $(BIN)/python -m bench.projection
	SERVICES_MODE=--durable scripts/with-services.sh $(BIN)/python -m bench.api
	SERVICES_MODE=--durable scripts/with-services.sh $(BIN)/python -m bench.api_cpu
	SERVICES_MODE=--durable scripts/with-services.sh $(BIN)/python -m bench.web_processes
	SERVICES_MODE=--durable scripts/with-services.sh $(BIN)/python -m bench.batch
	SERVICES_MODE=--durable scripts/with-services.sh $(BIN)/python -m bench.import
	SERVICES_MODE=--durable scripts/with-services.sh $(BIN)/python -m bench.feed_stream
	$(MAKE) loadtest

## 16 clients for 60 seconds on 100 deals against a stack of real processes on loopback, its
## PostgreSQL durable (fsync and synchronous_commit on). Every request is counted by outcome
## (status, connection error, timeout, failed check); bench/results/load.json has the counts.
loadtest: install
	scripts/install-system-packages.sh
	$(BIN)/python -m bench.load --seconds 60 --clients 16 --deals 100

FILE ?= ledger-$(shell date -u +%Y%m%dT%H%M%SZ).dump

## Back up the ledger and reference data of DATABASE_URL (pg_dump, custom format).
backup: install
	scripts/backup.sh $(FILE)

## Restore FILE into the migrated, empty database of DATABASE_URL (needs a superuser),
## rebuild the read models and verify the ledger.
restore: install
	scripts/restore.sh $(FILE)

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
