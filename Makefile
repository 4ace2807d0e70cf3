# Descent: two commands do everything.
#   make            set up .venv, build the book, check exercises/ is up to date, grade the demo corpus
#   make test       the whole test suite (installs the Debian packages it drives when root)
#   make test-fast  unit and oracle tests only: no site build, browser, PostgreSQL or grading
#   make bench      print speed ratios against baselines measured in the same run
#   make worker SCHEDULER=tcp://HOST:8786   a grading node of a Dask cluster (README, Grading)
#
# Works from any folder, a path with spaces included: recipes name the venv's programs by
# their path relative to the repository (make runs recipes there), and every absolute path
# is quoted.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
# The kernels the book and the grader start, and nbgrader's alembic, are found on PATH.
# (A space in $(CURDIR) is fine here: make exports the value as it is.)
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

RUNTIME := $(VENV)/.runtime-installed
TESTENV := $(VENV)/.test-installed
# Read by every IPython kernel this venv starts (IPython's sys.prefix/etc/ipython).
KERNELCONF := $(VENV)/etc/ipython/ipython_kernel_config.py

# What `make grade` grades, and where to (the fresh-clone test grades a small inbox).
GRADE_INBOX ?= autograder/demo/submissions
GRADE_OUT   ?= autograder/course

.PHONY: all preflight venv site pdf exercises check-exercises grade worker lab test test-fast bench clean distclean

# The three jobs; any of them failing fails `make`. Then one short summary.
all: site check-exercises grade
	@$(BIN)/python tools/summary.py --site _build/html --exercises exercises --rows "$(GRADE_OUT)/rows.json"

# Before anything runs: the system packages the goals need (tools/preflight.sh says which).
# Root installs the missing ones with apt-get; anyone else gets one message and nothing runs.
preflight:
	@bash tools/preflight.sh $(or $(MAKECMDGOALS),all)

$(VENV)/bin/python: | preflight
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 (Debian: apt-get install python3.11 python3.11-venv) or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(RUNTIME): requirements.txt pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q -r requirements.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(TESTENV): requirements-test.txt $(RUNTIME)
	$(BIN)/pip install -q -r requirements-test.txt
	touch $@

$(KERNELCONF): tools/ipython_kernel_config.py | $(VENV)/bin/python
	mkdir -p $(dir $@) && cp tools/ipython_kernel_config.py $@

venv: $(RUNTIME) $(KERNELCONF)

# JavaScript the site serves itself (MathJax, RequireJS, the widget manager), from npm.
NPM_DIR := _build/npm
VENDOR  := _build/vendor
VENDORED := _build/.vendored
# RequireJS resolves the widget manager's fonts as <baseUrl>/<module id>: keep that layout.
WIDGETS := $(VENDOR)/widgets/@jupyter-widgets/html-manager/dist
MATHJAX := $(NPM_DIR)/node_modules/mathjax/es5
$(VENDORED): book/vendor/package.json | preflight
	@command -v npm >/dev/null || { echo "error: npm not found; install Node.js 20 (Debian: apt-get install nodejs npm)"; exit 1; }
	@echo "Vendoring MathJax, RequireJS and the widget manager from npm into $(VENDOR)"
	@rm -rf $(VENDOR) && mkdir -p $(NPM_DIR) $(VENDOR)/mathjax $(WIDGETS)
	@cp book/vendor/package.json $(NPM_DIR)/
	@cd $(NPM_DIR) && npm install --no-package-lock --no-audit --no-fund --loglevel=error >/dev/null
	@cp -r $(addprefix $(MATHJAX)/,tex-mml-chtml.js input output a11y ui sre) $(VENDOR)/mathjax/
	@cp $(NPM_DIR)/node_modules/@jupyter-widgets/html-manager/dist/*.* $(WIDGETS)/
	@rm -f $(WIDGETS)/*.map
	@# Some widget modules (the Play button's icons) resolve fonts one folder up.
	@cp $(WIDGETS)/*.woff $(WIDGETS)/*.woff2 $(WIDGETS)/*.ttf $(WIDGETS)/*.eot $(WIDGETS)/*.svg $(VENDOR)/widgets/@jupyter-widgets/
	@cp $(NPM_DIR)/node_modules/requirejs/require.js $(VENDOR)/
	@touch $@

# DESCENT_STATIC makes slider figures pre-render their frames for the kernel-free site.
site: venv $(VENDORED)
	DESCENT_STATIC=1 OPENBLAS_NUM_THREADS=1 $(BIN)/jupyter-book build --quiet .

# The whole book as one PDF, _build/latex/descent.pdf: Jupyter Book's LaTeX builder (xelatex)
# over the chapters the site build executed (same cache), each slider figure as its default
# frame. Needs TeX Live (tools/preflight.sh installs it when root: ~300 MB, ~1.5 min).
pdf: preflight venv $(VENDORED)
	DESCENT_STATIC=1 OPENBLAS_NUM_THREADS=1 $(BIN)/jupyter-book build --quiet --builder pdflatex .

# The student release is generated from solutions/ by nbgrader, never edited by hand:
# `make exercises` rewrites exercises/; `make` only checks it (regenerated into a temporary
# folder and compared; it fails naming the stale files). Students never edit exercises/.
exercises: venv
	$(BIN)/python -m autograder.course release
check-exercises: venv
	$(BIN)/python -m autograder.course check

# Grade the demo corpus (autograder/demo) into nbgrader's course folder, autograder/course:
# grades.csv, report.html, rows.json and feedback/ land there. A grading run that the
# environment (not a submission) made impossible exits non-zero, and so does make.
grade: venv
	$(BIN)/python -m autograder grade "$(GRADE_INBOX)" --out "$(GRADE_OUT)" \
	    --roster autograder/demo/roster.csv --wall-clock 30 --cell-timeout 10

# A grading node of a Dask cluster: `python -m autograder grade INBOX --cluster $(SCHEDULER)` sends
# each submission's sandboxed run to these workers. One worker process per sandbox slot
# (WORKER_SLOTS, default one per core), each offering one 'sandbox' resource, which grading
# tasks ask for. The scheduler is Dask's own: `$(BIN)/dask scheduler` (port 8786).
SCHEDULER    ?=
WORKER_SLOTS ?= $(shell nproc 2>/dev/null || echo 1)
worker: venv
	@test -n "$(SCHEDULER)" || { echo "error: say which scheduler: make worker SCHEDULER=tcp://HOST:8786 (start one with $(BIN)/dask scheduler)"; exit 1; }
	$(BIN)/dask worker "$(SCHEDULER)" --nworkers $(WORKER_SLOTS) --nthreads 1 --resources sandbox=1

# JupyterLab for a student, on their own copy of the release: the first run copies exercises/
# into WORK, later runs add new assignments and never touch a file already there. No instructor
# panels; the built book is served at /descent/, where the notebooks' chapter links point.
WORK ?= work
lab: venv
	$(BIN)/python -m autograder.lab --work "$(WORK)" --ServerApp.ip=127.0.0.1

# The browser tests read the built site, so the site is (re)built first; the execution
# cache keeps that to the chapters that changed.
test: $(TESTENV) site
	$(BIN)/python -m pytest

# The inner loop: everything but the tests marked slow or browser (tests/conftest.py marks them by folder).
test-fast: $(TESTENV) $(KERNELCONF)
	$(BIN)/python -m pytest -m "not slow and not browser"

bench: $(TESTENV) $(KERNELCONF) $(VENDORED)
	$(BIN)/python benchmarks/bench_optimizers.py
	$(BIN)/python benchmarks/bench_site.py
	$(BIN)/python benchmarks/bench_grading.py
	$(BIN)/python benchmarks/bench_gradebook.py

clean:
	rm -rf _build

distclean: clean
	rm -rf $(VENV)
