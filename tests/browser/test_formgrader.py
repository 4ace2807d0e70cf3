"""The instructor's side in headless Debian chromium: a student's feedback page opened from
file:// with the network blocked (nothing requested, math typeset, each error once, long lines
wrapped), and a hand grade entered in nbgrader's formgrader (a real `jupyter server` started in
the course folder, which finds the course through the nbgrader_config.py grading wrote there)
reaching the CSV files, the feedback and the report after one `python -m autograder export`.

Uses the session's small graded course (tests/conftest.py: small_course)."""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from autograder import export
from servers import free_port, jupyter_server

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def open_offline(browser, url: str):
    """A page loaded with every non-file request recorded and refused; returns (page, requests)."""
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    requested = []

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            requested.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.goto(url, wait_until="load")
    page.wait_for_timeout(300)
    return page, requested


def page_facts(page) -> dict:
    text = page.locator("body").inner_text()
    return {
        "text": text,
        "math": page.locator("math").count(),
        "flat_math": page.evaluate("() => [...document.querySelectorAll('math')]"
                                   ".filter(m => m.getBoundingClientRect().width === 0).length"),
        "tallest_math": page.evaluate("() => Math.max(0, ...[...document.querySelectorAll('math')]"
                                      ".map(m => m.getBoundingClientRect().height))"),
        "overflowing": page.evaluate("() => [...document.querySelectorAll('pre')]"
                                     ".filter(p => p.scrollWidth > p.clientWidth + 1).length"),
        "raw_tex": any(t in text for t in ("$$", "\\frac", "\\begin{", "$m_t$")),
    }


def test_feedback_renders_offline(small_course, browser, tmp_path):
    out, _ = small_course
    page_path = out / "feedback" / "mistakes-1" / "04_adam" / "adam.html"
    page, requested = open_offline(browser, page_path.as_uri())
    facts = page_facts(page)
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "feedback-04_adam.png"), full_page=True)
    assert requested == [], f"the feedback page asked the network for {requested}"
    assert facts["math"] > 10 and facts["flat_math"] == 0 and not facts["raw_tex"]
    assert facts["tallest_math"] > 60  # Adam's aligned update rule: three rows of fractions, laid out
    assert facts["overflowing"] == 0, "a line runs off its box instead of wrapping"
    errors = [line for line in facts["text"].splitlines() if line.startswith("AssertionError: ")]
    assert errors and len(errors) == len(set(errors)), errors  # each error once
    assert "Out[" not in facts["text"] and "no bias correction" in facts["text"]

    # Negative control: the same checks on a page as nbgrader's stock template makes it (MathJax
    # from a CDN, math left as TeX, no wrapping) find the request, the raw TeX and the long line.
    stock = tmp_path / "stock.html"
    stock.write_text("<html><head><script src='https://cdnjs.cloudflare.com/ajax/libs/mathjax/2.7.7/latest.js'>"
                     "</script></head><body><p>$$m_t = \\frac{1}{2}$$</p><pre>" + "x" * 400 + "</pre></body></html>")
    bad_page, bad_requests = open_offline(browser, stock.as_uri())
    bad = page_facts(bad_page)
    assert bad_requests and bad["raw_tex"] and bad["overflowing"] == 1 and bad["math"] == 0


@pytest.fixture
def formgrader(small_course, tmp_path):
    """`jupyter server` (formgrader is nbgrader's server extension) started in a copy of the
    graded course folder, as an instructor would: `cd OUT && jupyter lab`."""
    out = tmp_path / "out"
    shutil.copytree(small_course[0], out, symlinks=True)
    home = tmp_path / "home"
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}", HOME=str(home),
               JUPYTER_CONFIG_DIR=str(home / ".jupyter"), JUPYTER_RUNTIME_DIR=str(home / ".runtime"))
    base = f"http://127.0.0.1:{port}"
    argv = [str(BIN / "jupyter"), "server", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
            f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={out}",
            *(["--allow-root"] if os.geteuid() == 0 else [])]
    with jupyter_server(argv, f"{base}/formgrader/api/assignments?token={token}", "jupyter server with formgrader",
                        120, cwd=out, env=env):
        yield out, base, token


def manual_score(out: Path, student: str, assignment: str, cell: str):
    from nbgrader.api import Gradebook

    with Gradebook(export.course_db_url(out)) as gb:
        submission = gb.find_submission(assignment, student)
        grade = next(g for nb in submission.notebooks for g in nb.grades if g.name == cell)
        return grade.manual_score, grade.needs_manual_grade


def test_a_hand_grade_in_formgrader_reaches_every_export(formgrader, browser):
    out, base, token = formgrader
    before = {(r["student"], r["assignment"]): r for r in read_csv(out / "grades.csv")}
    assert before[("correct", "08_capstone")]["status"] == "pending hand grading"

    with urllib.request.urlopen(f"{base}/formgrader/api/submitted_notebooks/08_capstone/capstone?token={token}") as r:
        notebooks = {n["student"]: n for n in json.load(r)}
    assert notebooks["correct"]["needs_manual_grade"] is True  # formgrader sees this course's gradebook

    # The token as a header: formgrader's own API calls then carry it too. Its page asks a CDN for
    # MathJax, refused here as it would be offline: the page still grades.
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  extra_http_headers={"Authorization": f"token {token}"})
    context.route("**/*", lambda r: r.continue_() if r.request.url.startswith((base, "file://")) else r.abort())
    page = context.new_page()
    page.goto(f"{base}/formgrader/submissions/{notebooks['correct']['id']}/?token={token}")
    score = page.locator("input.score#why_answer")
    score.wait_for(timeout=60000)
    score.fill("2")
    score.press("Tab")  # formgrader saves a score when its field changes
    deadline = time.time() + 30
    while time.time() < deadline and manual_score(out, "correct", "08_capstone", "why_answer")[0] != 2:
        time.sleep(0.5)
    assert manual_score(out, "correct", "08_capstone", "why_answer") == (2, False)

    result = subprocess.run([sys.executable, "-m", "autograder", "export", "--out", str(out)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    after = {(r["student"], r["assignment"]): r for r in read_csv(out / "grades.csv")}
    capstone = after[("correct", "08_capstone")]
    assert (capstone["status"], capstone["total"], capstone["max_total"], capstone["pending"]) == \
        ("graded", "9", "9", "")
    long = {(r["student"], r["problem"]): r for r in read_csv(out / "lms" / "08_capstone.csv")}
    assert (long[("correct", "why_answer")]["score"], long[("correct", "why_answer")]["status"]) == ("2", "graded")
    assert {r["Username"]: r for r in read_csv(out / "lms" / "moodle.csv")}["correct"]["08_capstone"] == "9"

    feedback, requested = open_offline(browser, (out / "feedback" / "correct" / "08_capstone" / "capstone.html").as_uri())
    text = feedback.locator("body").inner_text()
    assert "capstone (Score: 9.0 / 9.0)" in text and "awaiting hand grading" not in text and requested == []
    report = context.new_page()
    report.goto((out / "report.html").as_uri())
    row = report.locator("tr:has(td:text-is('correct'))").last.inner_text()
    assert "9 / 9" in row and "pending" not in row, row
    assert "None." in report.locator("h2:has-text('Awaiting hand grading') + p").inner_text()
