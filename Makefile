# Two commands on a fresh machine: `make run` and `make test`. Both build the virtualenv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench check clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: install
	$(BIN)/python -m ipoa.devserver

test: install
	$(BIN)/pytest

# ruff over the checkout; mypy over ipoa and workers (the domain strictly). Settings in pyproject.toml.
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

check: install
	$(BIN)/flask --app ipoa workflows check

bench: install
	$(BIN)/python bench/intake.py

clean:
	rm -rf $(VENV) instance .pytest_cache .hypothesis
