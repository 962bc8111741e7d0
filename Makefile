# posfleet — the two commands are `make run` and `make test` (README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements/constraints.txt | cksum | cut -d' ' -f1)
VENDOR_STAMP := src/posfleet/console/static/vendor/.stamp
# Bootstrap Icons: only the icons the code names (scripts/subset_icons.py), so again after any change.
ICONS := src/posfleet/console/static/vendor/bootstrap-icons/bootstrap-icons.min.css
ICON_SOURCES := $(shell find src/posfleet \( -name '*.html' -o -name '*.py' -o -name '*.js' -o -name '*.txt' \) \
                  -not -path '*/static/vendor/*' 2>/dev/null)
PO    := $(wildcard src/posfleet/locale/*/LC_MESSAGES/django.po)
MO    := $(PO:.po=.mo)
# An interpreter >= 3.12 (Django 6.1 needs it); .python-version makes pyenv's shims pick 3.12.1.
PY_BOOT ?= $(shell for p in python3.12 python3.13 python3 python; do \
             if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; \
             then echo $$p; break; fi; done)

.PHONY: help setup run test test-sqlite test-postgres check lint fmt typecheck importlint migrations-check \
        openapi statemachines messages static demo bench clean

help:
	@echo "make run     start web on http://127.0.0.1:8000 with demo data (SQLite under var/)"
	@echo "make test    run the whole suite on SQLite and PostgreSQL, browser tests included"
	@echo "make check   lint, types, import contracts, migrations, OpenAPI snapshot, then the tests"
	@echo "make fmt     format the code"

$(STAMP):
	@test -n "$(PY_BOOT)" || { echo "posfleet needs Python >= 3.12: run 'pyenv install 3.12.1' (see .python-version)"; exit 1; }
	@test -x $(BIN)/python || $(PY_BOOT) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[dev,scale]'
	@rm -f $(VENV)/.installed-* && touch $@

$(VENDOR_STAMP): package.json package-lock.json scripts/vendor-static.sh
	@command -v npm >/dev/null || { echo "npm is needed once to install the console's CSS and JS (apt-get install npm)"; exit 1; }
	npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	./scripts/vendor-static.sh
	@touch $@

$(ICONS): $(STAMP) $(VENDOR_STAMP) scripts/subset_icons.py $(ICON_SOURCES)
	$(BIN)/python scripts/subset_icons.py

%.mo: %.po
	@command -v msgfmt >/dev/null || { echo "msgfmt is needed to compile translations (apt-get install gettext)"; exit 1; }
	msgfmt --check -o $@ $<

messages: $(STAMP)
	cd src/posfleet && ../../$(BIN)/posfleet makemessages -l zh_Hans --no-obsolete --add-location file
	@echo "now translate the new entries in src/posfleet/locale/zh_Hans/LC_MESSAGES/django.po"

setup: $(STAMP) $(VENDOR_STAMP) $(ICONS) $(MO)

run: setup
	@mkdir -p var
	$(BIN)/posfleet migrate --no-input -v 0
	$(BIN)/posfleet demo --if-empty
	$(BIN)/posfleet run

demo: setup
	$(BIN)/posfleet demo

test: setup
	$(BIN)/python scripts/test_suite.py

test-sqlite: setup
	$(BIN)/python scripts/test_suite.py --only sqlite

test-postgres: setup
	$(BIN)/python scripts/test_suite.py --only postgres

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP)
	$(BIN)/mypy

importlint: $(STAMP)
	$(BIN)/lint-imports

migrations-check: $(STAMP)
	DJANGO_SETTINGS_MODULE=posfleet.config.settings.test $(BIN)/posfleet makemigrations --check --dry-run

openapi: $(STAMP)
	DJANGO_SETTINGS_MODULE=posfleet.config.settings.test $(BIN)/posfleet openapi --write

statemachines: $(STAMP)
	DJANGO_SETTINGS_MODULE=posfleet.config.settings.test $(BIN)/posfleet statemachines

check: setup lint typecheck importlint migrations-check
	DJANGO_SETTINGS_MODULE=posfleet.config.settings.test $(BIN)/posfleet openapi --check
	DJANGO_SETTINGS_MODULE=posfleet.config.settings.prod POSFLEET_VAR_DIR=$$(mktemp -d) POSFLEET_SECRET_KEY=check-only-$$(date +%s)-0123456789abcdefghijklmnopqrstuvwxyz \
	  POSFLEET_AUDIT_KEY=check-only POSFLEET_MASTER_KEYS=k1=$$(head -c32 /dev/urandom | base64 | tr "+/" "-_") \
	  $(BIN)/posfleet check --deploy --fail-level WARNING
	$(MAKE) test

bench: setup
	$(BIN)/python bench/import_terminals.py

clean:
	rm -rf $(VENV) node_modules src/posfleet/console/static/vendor var
