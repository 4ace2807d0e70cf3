"""Shared by the tests: markers by file, and the browser fixture.

`make test-fast` runs `pytest -m "not slow and not browser"`: the unit and oracle tests, with no
site build, browser, PostgreSQL server or grading pipeline. The markers are given here by file
name, so a test file does not carry them itself; `make test` runs everything.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Files whose tests drive Debian's chromium over the built site or a live JupyterLab.
BROWSER = {"test_site_browser.py", "test_lab_browser.py"}
# Files whose tests run nbgrader, kernels in the grading sandbox, a PostgreSQL server, git
# clones or builds: minutes, not seconds.
SLOW = {"test_pipeline.py", "test_postgres.py", "test_sandbox.py", "test_exercise_kit.py",
        "test_fresh_clone.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.path.name
        if name in BROWSER:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)
        elif name in SLOW:
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
