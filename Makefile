# Two commands on a fresh machine: `make run` and `make test`.
VENV := .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APP_FILES := app.py vault.py cli.py schema.py config.py gunicorn.conf.py deploy/healthcheck.py migrations

.PHONY: run test lint bench purge clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# init-db runs the migrations (flask db upgrade), adopting a database made before them.
run: $(STAMP)
	$(BIN)/flask --app app init-db
	$(BIN)/flask --app app run --host 127.0.0.1 --port 5000

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/bandit --quiet --severity-level medium --confidence-level medium -r $(APP_FILES)
	$(BIN)/hadolint Dockerfile

test: lint
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python tests/bench.py

purge: $(STAMP)
	$(BIN)/flask --app app purge

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts
