# Two commands on a fresh machine: `make run` and `make test`.
VENV := .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APP_FILES := $(wildcard *.py) deploy/healthcheck.py migrations

.PHONY: run run-lan test lint bench mutation purge clean translations extract lang-add compile-translations

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# The catalogues (translations/<language>/LC_MESSAGES/messages.po) compile to .mo files, never committed.
compile-translations: $(STAMP)
	$(BIN)/pybabel -q compile -d translations

# Extract every string to translations/messages.pot; tests/test_translations.py points POT and CATALOGUES at a copy.
POT ?= translations/messages.pot
CATALOGUES ?= translations
extract:
	$(BIN)/pybabel -q extract -F babel.cfg -k lazy_gettext -k lazy_ngettext:1,2 --no-location --sort-output --no-wrap -o $(POT) .

# Bring each catalogue up to date with the code; then translate what is new (the tests fail until every catalogue is
# complete).
translations: $(STAMP) extract
	$(BIN)/pybabel -q update -i $(POT) -d $(CATALOGUES) --no-fuzzy-matching --ignore-obsolete --no-wrap

# Add a language: `make lang-add LANG=it` (a code Babel knows: it, nl, pt_PT, zh_Hant...), then translate its .po.
lang-add: $(STAMP)
	$(if $(filter command line,$(origin LANG)),,$(error say which language: make lang-add LANG=it))
	$(BIN)/pybabel -q init -i translations/messages.pot -d translations -l $(LANG)

# init-db runs the migrations (flask db upgrade), adopting a database made before them. `make run PORT=5001` when 5000
# is taken: the development settings then trust that port (FLASK_RUN_PORT).
PORT ?= 5000
run: compile-translations
	$(BIN)/flask --app app init-db
	FLASK_RUN_PORT=$(PORT) $(BIN)/flask --app app run --host 127.0.0.1 --port $(PORT)

# The same on this machine's LAN address, its links and a terminal QR code pointing there: try it from a phone.
run-lan: compile-translations
	$(BIN)/flask --app app init-db
	$(BIN)/python lan.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/bandit --quiet --severity-level medium --confidence-level medium -r $(APP_FILES)
	$(BIN)/hadolint Dockerfile

test: lint compile-translations
	$(BIN)/pytest

# SecureShare beside a bare Flask page and snappass (tests/benchmarks/); BENCH_ROUNDS, BENCH_SECONDS shorten it.
bench: compile-translations
	command -v wrk >/dev/null || ( [ "$$(id -u)" = 0 ] && (apt-get install -y wrk || (apt-get update && apt-get install -y wrk)) ) \
		|| echo "bench: wrk missing; the Python load generator stands in"
	command -v redis-server >/dev/null || ( apt-get install -y redis-server || (apt-get update && apt-get install -y redis-server) )
	$(BIN)/python -m tests.benchmarks

# Mutation testing of the Flask-free cores ([tool.mutmut] in pyproject.toml), from scratch so no result is stale;
# tests/MUTATION.md gets the scores and the kept survivors, and the run fails below 95% or on a survivor without a reason.
mutation: $(STAMP)
	rm -rf mutants
	start=$$(date +%s) && $(BIN)/mutmut run && $(BIN)/python -m tests.mutation_report --seconds $$(( $$(date +%s) - start ))

purge: $(STAMP)
	$(BIN)/flask --app app purge

clean:
	rm -rf $(VENV) .pytest_cache test-artifacts mutants translations/*/LC_MESSAGES/*.mo
