# Two commands a newcomer needs: `make demo` and `make test`. Everything else is for developers.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
ARGS ?=

.PHONY: install test lint demo bench clean

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
	scripts/install-system-packages.sh || [ "$${REQUIRE_SERVICES:-0}" != 1 ]
	$(BIN)/ruff check --quiet .
	$(BIN)/lint-imports --no-cache >/dev/null || $(BIN)/lint-imports --no-cache
	scripts/with-services.sh $(BIN)/pytest $(ARGS)

## Migrate the embedded SQLite database and serve on http://127.0.0.1:8000/.
demo: install
	$(BIN)/python manage.py migrate --no-input -v0
	$(BIN)/python manage.py seed_demo
	@echo "Serving on http://127.0.0.1:8000/admin/"
	$(BIN)/python manage.py runserver 127.0.0.1:8000

## Benchmarks: JSON figures beside a raw baseline measured in the same run.
bench: install
	$(BIN)/pip install -q -e '.[dev,bench]'
	scripts/install-system-packages.sh
	SERVICES_MODE=--durable scripts/with-services.sh $(BIN)/python -m bench.append
	SERVICES_MODE=--durable scripts/with-services.sh $(BIN)/python -m bench.replay

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
