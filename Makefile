# One obvious way to run things. `make run` and `make test` are the two commands of the README.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
FLOWER_PORT ?= 5555
export PORT FLOWER_PORT

.PHONY: run test test-fast test-unit bench chaos cluster lint fmt worker beat scheduler flower venv migrate clean

# The virtualenv is rebuilt whenever a requirements file (or the SDK's pyproject.toml) changes.
$(VENV)/.installed: requirements.txt requirements-dev.txt sdk/pyproject.toml
	@test -x $(PY) || { echo "creating virtualenv $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing requirements into $(VENV) ..."
	@$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

migrate: venv
	@$(PY) manage.py waitforservices
	@$(PY) manage.py migrate --noinput -v 0

run: migrate  ## the whole platform in the foreground: API + WebSocket, worker, scheduler, Flower
	@$(PY) manage.py devsetup --port $(PORT) --flower-port $(FLOWER_PORT)
	@# -e /dev/null: the processes see the same environment as migrate and devsetup above
	@# (honcho would otherwise load .env over it; .env is docker compose's file). Flower's API
	@# needs credentials: the development ones devsetup printed, unless FLOWER_BASIC_AUTH is set.
	@# draconic.run_honcho is honcho waiting out the worker's shutdown grace before it kills.
	@FLOWER_BASIC_AUTH="$${FLOWER_BASIC_AUTH:-$$(cat var/dev-flower-auth)}" \
	  exec $(PY) -m draconic.run_honcho --no-prefix -e /dev/null -f Procfile start -p $(PORT) 2>&1 || true

test: venv  ## installs what is missing, then runs the whole suite
	@$(PY) manage.py waitforservices --timeout 60
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: venv  ## tests/unit + tests/integration: PostgreSQL and Redis, no worker processes
	@$(PY) manage.py waitforservices --timeout 60
	$(PY) -m pytest tests/unit tests/integration $(PYTEST_ARGS)

test-unit: venv  ## tests/unit alone: needs neither PostgreSQL nor Redis
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

bench: migrate  ## the benchmarks, printing a table
	$(PY) -m bench $(BENCH_ARGS)

chaos: migrate  ## the fault-injection run, printing its summary
	$(PY) -m tests.chaos $(CHAOS_ARGS)

cluster: venv  ## the platform on network-namespace hosts under faults (root), printing its summary
	$(PY) -m tests.cluster $(CLUSTER_ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy draconic jobs admin_api workers bench sdk/src/draconic_sdk

fmt: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

worker: migrate
	exec $(VENV)/bin/celery -A draconic worker -Q critical,high,normal,low -l INFO -E --without-gossip

scheduler beat: migrate
	exec $(PY) manage.py scheduler

flower: venv
	exec $(VENV)/bin/celery -A draconic flower --port=$(FLOWER_PORT)

clean:
	rm -rf $(VENV) var .pytest_cache
