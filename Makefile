# Two commands on a fresh machine: `make run` and `make test`. Both build the virtualenv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install browser-js run test screenshots lint bench bench-engine bench-growth bench-voice check clean vendor-nhsuk

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: install
	$(BIN)/python -m ipoa.devserver

# axe-core for the browser tests' accessibility checks (tests/helpers/axe.py), pinned in tests/browser/:
# a test-only dependency, kept beside the tests rather than at the top where it would look like the app's.
BROWSER_JS := tests/browser
browser-js: $(BROWSER_JS)/node_modules/.installed

$(BROWSER_JS)/node_modules/.installed: $(BROWSER_JS)/package.json $(BROWSER_JS)/package-lock.json
	cd $(BROWSER_JS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: install browser-js
	$(BIN)/pytest

# PNGs of each role's main pages into docs/screenshots/ (the demo data on the embedded defaults).
screenshots: install
	$(BIN)/python scripts/screenshots.py

# ruff over the checkout; mypy over ipoa and workers (the domain and the service layer strictly). Settings in pyproject.toml.
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

check: install
	$(BIN)/flask --app ipoa workflows check

bench: install
	$(BIN)/python bench/intake.py

# The engine core (issue 14): the call lifecycle through the service layer against the same-work limit and
# SpiffWorkflow (the `bench` extra, installed here), on SQLite (WAL) and PostgreSQL (bench/engine.py).
bench-engine: install
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/engine.py --backend both --calls 300 --rounds 3

# Growth (issue 14, point 5): step, intake and dashboard cost at 0, 100k and 1M calls with their history,
# on PostgreSQL (bench/growth.py; seeding 1M takes several minutes).
bench-growth: install
	$(BIN)/python bench/growth.py --sizes 0,100000,1000000 --rounds 5

# Voice (issue 15): the TwiML answer to an incoming call at 20 calls/s against a bare TwiML endpoint, on
# PostgreSQL (bench/voice.py: its own database ipoa_voice_bench and Redis db 9).
bench-voice: install
	$(BIN)/python bench/voice.py --lock-wait 600

# Re-vendor nhsuk-frontend's CSS, JS and icons into ipoa/static/vendor/nhsuk/ (npm; reproduces them exactly).
vendor-nhsuk:
	bash scripts/vendor-nhsuk.sh

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis $(BROWSER_JS)/node_modules
