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

.PHONY: all site exercises grade lab test bench clean distclean

all: site exercises grade

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

# JavaScript the site serves itself (MathJax, RequireJS, the widget manager), from npm.
NPM_DIR := _build/npm
VENDOR  := _build/vendor
VENDORED := _build/.vendored
# RequireJS resolves the widget manager's fonts as <baseUrl>/<module id>: keep that layout.
WIDGETS := $(VENDOR)/widgets/@jupyter-widgets/html-manager/dist
$(VENDORED): book/vendor/package.json
	@command -v npm >/dev/null || { echo "error: npm not found; install Node.js 20 (Debian: apt-get install nodejs npm)"; exit 1; }
	rm -rf $(VENDOR) && mkdir -p $(NPM_DIR) $(VENDOR)/mathjax $(WIDGETS)
	cp book/vendor/package.json $(NPM_DIR)/
	cd $(NPM_DIR) && npm install --no-package-lock --no-audit --no-fund --loglevel=error
	cd $(NPM_DIR)/node_modules/mathjax/es5 && cp -r tex-mml-chtml.js input output a11y ui sre $(CURDIR)/$(VENDOR)/mathjax/
	cp $(NPM_DIR)/node_modules/@jupyter-widgets/html-manager/dist/*.* $(WIDGETS)/
	rm -f $(WIDGETS)/*.map
	# Some widget modules (the Play button's icons) resolve fonts one folder up.
	cp $(WIDGETS)/*.woff $(WIDGETS)/*.woff2 $(WIDGETS)/*.ttf $(WIDGETS)/*.eot $(WIDGETS)/*.svg $(VENDOR)/widgets/@jupyter-widgets/
	cp $(NPM_DIR)/node_modules/requirejs/require.js $(VENDOR)/
	touch $@

# DESCENT_STATIC makes slider figures pre-render their frames for the kernel-free site.
site: $(RUNTIME) $(VENDORED)
	DESCENT_STATIC=1 OPENBLAS_NUM_THREADS=1 $(BIN)/jupyter-book build --quiet .
	@echo "Book built: open _build/html/index.html"

# The student release is generated from solutions/ by nbgrader, never edited by hand.
exercises: $(RUNTIME)
	$(BIN)/python -m autograder.course release

# Grade the demo corpus (autograder/demo) into nbgrader's course folder, autograder/course:
# grades.csv, report.html and feedback/ land there.
grade: $(RUNTIME)
	$(BIN)/python -m autograder grade autograder/demo/submissions --roster autograder/demo/roster.csv \
	    --wall-clock 30 --cell-timeout 10

# JupyterLab on the student release, with the kernel that has everything installed.
lab: $(RUNTIME)
	cd exercises && $(BIN)/jupyter lab --ServerApp.ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root)

# The browser tests read the built site, so the site is (re)built first; the execution
# cache keeps that to the chapters that changed.
test: $(TESTENV) site
	$(BIN)/python -m pytest

bench: $(TESTENV) $(VENDORED)
	$(BIN)/python benchmarks/bench_optimizers.py
	$(BIN)/python benchmarks/bench_site.py
	$(BIN)/python benchmarks/bench_grading.py

clean:
	rm -rf _build

distclean: clean
	rm -rf $(VENV)
