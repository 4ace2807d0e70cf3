"""Shared by the tests: markers by folder, and the browser fixture.

The tests are grouped by what they test, one folder a group and a marker of the same name:

    tests/core/      optimkit against its oracles (torch.optim, closed forms, finite differences)
    tests/book/      the book's machinery (book/descent): figures, sliders, the numbers in prose
    tests/grading/   checks, the exercise kit, the sandbox, the pipeline, PostgreSQL, a Dask cluster
    tests/browser/   Debian's chromium over the built site and a live JupyterLab
    tests/setup/     a fresh clone running `make` and `make test`; the layout ARCHITECTURE.md promises

`pytest -m core` (or book, grading, browser, setup) runs one group. `make test-fast` runs
`pytest -m "not slow and not browser"`: no site build, browser, PostgreSQL server or grading
pipeline. The markers are given here, so a test file does not carry them itself.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
GROUPS = ("core", "book", "grading", "browser", "setup")
# Files whose tests run nbgrader, kernels in the grading sandbox, a PostgreSQL server, git
# clones or builds: minutes, not seconds. (Every browser test is slow too.)
SLOW = {"test_pipeline.py", "test_postgres.py", "test_sandbox.py", "test_exercise_kit.py",
        "test_cluster.py", "test_fresh_clone.py", "test_pdf.py",
        "test_export.py", "test_site_apparatus.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        group = item.path.resolve().relative_to(HERE).parts[0]
        if group not in GROUPS:
            raise pytest.UsageError(f"{item.path}: a test lives in one of tests/{{{','.join(GROUPS)}}}/")
        item.add_marker(getattr(pytest.mark, group))
        if group == "browser" or item.path.name in SLOW:
            item.add_marker(pytest.mark.slow)


# Debian's chromium (make test installs it when root); Playwright never downloads a browser here.
CHROMIUM = os.environ.get("CHROMIUM", shutil.which("chromium") or "/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: apt-get install chromium (make test does as root)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        yield browser
        browser.close()


# A small course graded once per session, for the export and formgrader tests: 04_adam and the
# capstone of "correct" (the capstone's written answer awaits hand grading), 04_adam of
# "mistakes-1" (a named mistake; it has no capstone: missing), and a roster student "absent"
# with no submission. Tests that change it copy it first (tests/grading/test_export.py).
SMALL_COURSE = {"correct": ["04_adam", "08_capstone"], "mistakes-1": ["04_adam"]}


@pytest.fixture(scope="session")
def small_course(tmp_path_factory):
    import subprocess
    import sys

    root = tmp_path_factory.mktemp("small-course")
    submissions = HERE.parent / "autograder" / "demo" / "submissions"
    for student, assignments in SMALL_COURSE.items():
        for assignment in assignments:
            shutil.copytree(submissions / student / assignment, root / "inbox" / student / assignment)
    (root / "roster.csv").write_text("student\n" + "".join(f"{s}\n" for s in [*SMALL_COURSE, "absent"]))
    result = subprocess.run(
        [sys.executable, "-m", "autograder", "grade", str(root / "inbox"), "--out", str(root / "out"),
         "--roster", str(root / "roster.csv"), "--workers", "2", "--seed", "20261123"],
        capture_output=True, text=True, cwd=HERE.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    return root / "out", result
