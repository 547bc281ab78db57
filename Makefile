# fourm: the two commands a new machine needs are `make quickstart` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install quickstart quickstart-small test test-all test-browser bench

install: $(VENV)/.installed

# Exact, tested package set (requirements/lock.txt): torch is pinned so pip never resolves a
# different CUDA build; on this machine its wheel comes from the local disk.
$(VENV)/.installed: pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -c requirements/lock.txt -e '.[test]'
	touch $@

quickstart: install
	$(BIN)/fourm quickstart

quickstart-small: install
	$(BIN)/fourm quickstart --small

test: install
	$(BIN)/python -m pytest -q

test-all: install
	$(BIN)/python -m pytest -q -m ''

# The web demo in a real browser: needs Debian's chromium (/usr/bin/chromium; .ci/run installs it)
# and the [demo] extra (gradio, playwright). No browser is downloaded.
test-browser: install
	$(BIN)/pip install --quiet -c requirements/lock.txt -e '.[test,demo]'
	$(BIN)/python -m pytest -q -m browser

bench: install
	$(BIN)/python bench/scenes.py
