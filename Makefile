# Descent: two commands do everything.
#   make        set up .venv, build the book into _build/html
#   make test   run the whole test suite (sets up the venv when missing)
#   make bench  print speed ratios against baselines measured in the same run

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(CURDIR)/$(VENV)/bin
# The kernels the book and the grader start, and nbgrader's alembic, are found on PATH.
export PATH := $(BIN):$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

RUNTIME := $(VENV)/.runtime-installed
TESTENV := $(VENV)/.test-installed

.PHONY: all site test bench clean distclean

all: site

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(RUNTIME): requirements.txt pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(TESTENV): requirements-test.txt $(RUNTIME)
	$(BIN)/pip install -q -r requirements-test.txt
	touch $@

site: $(RUNTIME)
	$(BIN)/jupyter-book build --quiet .
	@echo "Book built: open _build/html/index.html"

test: $(TESTENV)
	$(BIN)/python -m pytest

bench: $(TESTENV)
	$(BIN)/python benchmarks/bench_optimizers.py

clean:
	rm -rf _build

distclean: clean
	rm -rf $(VENV)
