"""The grading pipeline on the demo corpus: exact scores, named mistakes, isolation,
nothing lost (idempotent re-runs, resume after kill -9), LMS zips, both sandboxes."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import demo, sandbox

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261123
ARGS = ["--workers", "2", "--wall-clock", "30", "--cell-timeout", "10", "--seed", str(SEED)]
SUBMISSIONS = demo.DEMO / "submissions"


def run_grader(inbox, out, *extra, check=True):
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", str(inbox), "--out", str(out),
                             *ARGS, *extra], capture_output=True, text=True, cwd=ROOT)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def rows_of(out: Path) -> dict:
    return {(r["student"], r["assignment"]): r for r in json.loads((out / "rows.json").read_text())}


def slice_inbox(tmp: Path, students: list[str], assignment: str = "01_sgd") -> Path:
    inbox = tmp / "inbox"
    for student in students:
        shutil.copytree(SUBMISSIONS / student / assignment, inbox / student / assignment)
    return inbox


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    """The whole demo batch, graded once, as `make grade` does (plus a fixed seed)."""
    out = tmp_path_factory.mktemp("graded")
    started = time.monotonic()
    result = run_grader(SUBMISSIONS, out, "--roster", str(demo.DEMO / "roster.csv"))
    return out, result, time.monotonic() - started


def test_every_submission_ends_with_a_grade_row(corpus_run):
    out, result, _ = corpus_run
    rows = rows_of(out)
    submitted = {(p.parent.parent.name, p.parent.name) for p in SUBMISSIONS.glob("*/*/*.ipynb")}
    assert set(rows) == submitted
    assert all(r["status"] == "graded" for r in rows.values()), \
        [(k, r["reason"]) for k, r in rows.items() if r["status"] != "graded"]
    with open(out / "grades.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(submitted)
    assert "isolation: user" in result.stderr or "isolation: userns" in result.stderr


@pytest.mark.parametrize("student,assignment", sorted(
    (s, a) for s, cases in demo.corpus().items() for a in cases))
def test_scores_match_the_oracle_for_every_problem(corpus_run, student, assignment):
    out, _, _ = corpus_run
    expected = demo.expected_scores(assignment, demo.corpus()[student][assignment], SEED)
    got = rows_of(out)[(student, assignment)]["scores"]
    for problem, points in expected.items():
        assert got.get(problem) == pytest.approx(points, abs=1e-9), (problem, got)


def test_every_named_mistake_appears_in_its_feedback(corpus_run):
    out, _, _ = corpus_run
    checked = 0
    for student, cases in demo.corpus().items():
        for assignment, case in cases.items():
            html = "".join(p.read_text() for p in (out / "feedback" / student / assignment).glob("*.html"))
            assert html, f"no feedback for {student}/{assignment}"
            assert "BEGIN HIDDEN TESTS" not in html and "_checks.grade" not in html
            for mistake in case.get("choices", {}).values():
                assert mistake.split(" (")[0] in html, f"{student}/{assignment}: {mistake!r} not named"
                checked += 1
    assert checked >= 10


def snoop_output(out: Path) -> str:
    """What the snooping answer cell printed, from the autograded notebook."""
    import nbformat

    nb = nbformat.read(out / "autograded" / "snoop" / "01_sgd" / "sgd.ipynb", as_version=4)
    (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "sgd_step"]
    return "".join(o.get("text", "") for o in cell.outputs)


def test_the_snooping_submission_read_and_wrote_nothing(corpus_run):
    out, result, _ = corpus_run
    printed = snoop_output(out)
    assert printed.count("-> denied") == 3, printed  # solutions/, .git/HEAD, the gradebook
    assert "-> written" not in printed and "solutions/01_sgd/sgd.md ->" in printed
    with sqlite3.connect(out / "gradebook.db") as db:
        assert db.execute("select count(*) from grade where manual_score = 100").fetchone()[0] == 0
    assert "snoop: not in the roster" in result.stderr


def test_no_process_outlives_its_submission(corpus_run):
    leftovers = subprocess.run(["pgrep", "-u", ",".join(f"{sandbox.USER_PREFIX}{i}" for i in range(8))],
                               capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", f"processes left behind: {leftovers.stdout}"


def test_the_report_has_plots_and_the_named_mistakes(corpus_run):
    out, _, _ = corpus_run
    report = (out / "report.html").read_text()
    assert report.count("<img") >= 2 and "Most common named mistakes" in report
    assert "could not grade" in report.lower()


def test_rerunning_is_idempotent(corpus_run, tmp_path):
    out, _, _ = corpus_run
    before = (out / "grades.csv").read_text()
    result = run_grader(SUBMISSIONS, out, "--roster", str(demo.DEMO / "roster.csv"))
    assert "0 to grade" in result.stderr
    assert (out / "grades.csv").read_text() == before


def test_a_killed_batch_resumes_without_losing_or_duplicating(tmp_path):
    inbox = slice_inbox(tmp_path, ["correct", "mistakes-1", "mistakes-2", "tamper", "fork", "memory"])
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(inbox), "--out", str(out), *ARGS],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(list((out / "state").glob("*/*.json"))) < 2:
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGKILL)  # kill -9 the whole batch mid-way
    process.wait()
    done_before = len(list((out / "state").glob("*/*.json")))
    assert 0 < done_before < 6
    result = run_grader(inbox, out)
    assert f"{done_before} already graded" in result.stderr
    rows = rows_of(out)
    assert len(rows) == 6
    for (student, assignment), row in rows.items():
        expected = demo.expected_scores(assignment, demo.corpus()[student][assignment], SEED)
        assert row["scores"] == pytest.approx(expected), student
    with sqlite3.connect(out / "gradebook.db") as db:
        per_student = db.execute("select student_id, count(*) from submitted_assignment group by student_id").fetchall()
    assert sorted(per_student) == sorted((s, 1) for s, _ in rows)


def test_an_lms_zip_reports_duplicates_and_grades_the_latest(tmp_path):
    out = tmp_path / "out"
    result = run_grader(demo.DEMO / "lms-01_sgd.zip", out, "--assignment", "01_sgd")
    rows = rows_of(out)
    assert set(rows) == {("correct", "01_sgd"), ("mistakes1", "01_sgd"), ("mistakes2", "01_sgd")}
    assert rows[("correct", "01_sgd")]["total"] == rows[("correct", "01_sgd")]["max_total"]  # the later, right one
    assert "duplicate" in result.stderr and "sgd-1.ipynb" in result.stderr


def test_unreadable_and_misplaced_submissions_get_a_reason(tmp_path):
    inbox = slice_inbox(tmp_path, ["correct"])
    (inbox / "broken" / "01_sgd").mkdir(parents=True)
    (inbox / "broken" / "01_sgd" / "sgd.ipynb").write_text("{ this is not json")
    (inbox / "lost" / "99_unknown").mkdir(parents=True)
    (inbox / "lost" / "99_unknown" / "x.ipynb").write_text("{}")
    out = tmp_path / "out"
    run_grader(inbox, out)
    rows = rows_of(out)
    assert rows[("correct", "01_sgd")]["status"] == "graded"
    assert "not a valid Jupyter notebook" in rows[("broken", "01_sgd")]["reason"]
    assert "unknown assignment" in rows[("lost", "99_unknown")]["reason"]


def test_the_user_namespace_sandbox_gives_the_same_grades(tmp_path):
    """The non-root path (user namespaces), forced here even when the grader is root."""
    inbox = slice_inbox(tmp_path, ["correct", "snoop", "tamper"])
    out = tmp_path / "out"
    result = run_grader(inbox, out, "--isolation", "userns")
    assert "isolation: userns" in result.stderr
    for (student, assignment), row in rows_of(out).items():
        expected = demo.expected_scores(assignment, demo.corpus()[student][assignment], SEED)
        assert row["scores"] == pytest.approx(expected), student
    printed = snoop_output(out)
    assert "-> denied" in printed and "-> written" not in printed
