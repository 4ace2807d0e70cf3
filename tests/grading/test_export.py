"""Every export made from nbgrader's gradebook: pending hand grades said as pending (never 0), a
hand grade reaching the CSV files, the feedback and the report after one `export`, LMS-shaped
files with a row for missing work, scores rounded without float noise, feedback with its math
rendered and each error once, and grading that prints no SQLAlchemy warnings.

The slow tests use the session's small graded course (tests/conftest.py: small_course); the
oracles are nbgrader's own `nbgrader export`, the gradebook read with plain SQL, the demo's
expected scores and Python's Decimal."""

from __future__ import annotations

import csv
import re
import shutil
import sqlite3
import subprocess
import sys
import warnings
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

import pytest

from autograder import demo, export, feedback, pipeline

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261123


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def by_key(rows: list[dict], *keys: str) -> dict:
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


def run_export(out: Path, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "autograder", "export", "--out", str(out), *extra],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def hand_grade(out: Path, student: str, assignment: str, cell: str, score: float) -> None:
    """What formgrader does when a grader types a score (tests/browser/test_formgrader.py drives
    formgrader itself): the grade's manual score in the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(export.course_db_url(out)) as gb:
        submission = gb.find_submission(assignment, student)
        grade = next(g for nb in submission.notebooks for g in nb.grades if g.name == cell)
        grade.manual_score = score
        grade.needs_manual_grade = False  # as formgrader's grade handler does
        gb.db.commit()


@pytest.fixture
def course(small_course, tmp_path) -> Path:
    """A copy of the session's graded course, to change."""
    out = tmp_path / "out"
    shutil.copytree(small_course[0], out, symlinks=True)
    export.write_config(out, export.default_db_url(out))  # the copy's own gradebook
    return out


# --- fast ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", [2.3499999999999996, 1.4, 1.05, 4.0, 0.0, 1 / 3, 2.675, 0.1 + 0.2, 7.125, 1e-9])
def test_scores_are_rounded_to_the_documented_precision(value):
    exact = Decimal(value).quantize(Decimal(1).scaleb(-export.PRECISION), rounding=ROUND_HALF_EVEN)
    expected = format(exact.normalize(), "f") if exact != 0 else "0"
    assert export.number(value) == expected
    assert len(export.number(value).partition(".")[2]) <= export.PRECISION


def test_feedback_math_is_rendered_when_written():
    from nbconvert.filters.markdown_mistune import markdown2html_mistune

    source = ("Adam keeps $m_t$ and $v_t$:\n\n$$\n\\begin{aligned}\nm_t &= \\beta_1 m_{t-1}, &"
              " v_t &= \\beta_2 v_{t-1} \\\\\n\\hat m_t &= \\frac{m_t}{1-\\beta_1^t}\n\\end{aligned}\n$$\n\n"
              "and `$not math$` in code.")
    rendered = feedback.markdown2html(source)
    assert rendered.count("<math") == 3 and "<mtable>" in rendered and "<mfrac>" in rendered
    assert "<mi>&amp;</mi>" not in rendered and "<mi>&</mi>" not in rendered  # aligned's & are columns
    assert "$" not in rendered.replace("$not math$", "")  # no TeX left for a script to typeset
    assert "$m_t$" in markdown2html_mistune(source)  # negative control: nbconvert's leaves it for MathJax


def test_the_gradebook_records_a_submission_without_sqlalchemy_warnings(tmp_path, monkeypatch):
    from nbgrader.api import Gradebook

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{__import__('os').environ['PATH']}")
    pipeline.quiet_gradebook()

    def add(method, name):
        with Gradebook(f"sqlite:///{tmp_path / name}.db") as gb:
            gb.add_assignment("a1")
            gb.add_notebook("nb", "a1")
            gb.add_grade_cell("c1", "nb", "a1", max_score=2, cell_type="code")
            gb.add_solution_cell("s1", "nb", "a1")
            gb.add_student("alice")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                submission = method(gb, "a1", "alice")
                cells = sorted((g.name, g.max_score) for nb in submission.notebooks for g in nb.grades)
        return [str(w.message) for w in caught if "not in session" in str(w.message)], cells

    quiet, cells = add(Gradebook.add_submission, "patched")
    noisy, same_cells = add(Gradebook.add_submission.unpatched, "stock")
    assert quiet == [] and cells == same_cells == [("c1", 2.0)]
    assert noisy, "negative control: nbgrader's own add_submission warns under SQLAlchemy 2"


# --- on a graded course -------------------------------------------------------------------------

def test_grading_prints_no_sqlalchemy_warnings(small_course):
    _, result = small_course
    assert "SAWarning" not in result.stderr and "not in session" not in result.stderr, result.stderr[-2000:]


def test_pending_hand_grading_is_pending_everywhere_until_graded(course):
    grades = by_key(read_csv(course / "grades.csv"), "student", "assignment")
    capstone = grades[("correct", "08_capstone")]
    assert capstone["status"] == "pending hand grading" and capstone["pending"] == "2", capstone
    long = by_key(read_csv(course / "lms" / "08_capstone.csv"), "student", "problem")
    assert long[("correct", "why_answer")]["status"] == "pending" and long[("correct", "why_answer")]["score"] == ""
    assert long[("correct", "my_update")]["status"] == "graded"
    canvas = by_key(read_csv(course / "lms" / "canvas.csv"), "Student")
    assert canvas["correct"]["08_capstone"] == ""  # not final: nothing to import yet
    page = (course / "feedback" / "correct" / "08_capstone" / "capstone.html").read_text()
    assert "awaiting hand grading" in page and "Score: 0.0 / 2.0" not in page
    report = (course / "report.html").read_text()
    assert "why_answer (2)" in report and "(+2 pending)" in report

    hand_grade(course, "correct", "08_capstone", "why_answer", 1.5)
    result = run_export(course)
    assert "1 feedback page(s) written again" in result.stderr  # only the one that changed

    grades = by_key(read_csv(course / "grades.csv"), "student", "assignment")
    assert grades[("correct", "08_capstone")]["status"] == "graded"
    assert grades[("correct", "08_capstone")]["total"] == "8.5" and grades[("correct", "08_capstone")]["pending"] == ""
    long = by_key(read_csv(course / "lms" / "08_capstone.csv"), "student", "problem")
    assert long[("correct", "why_answer")]["score"] == "1.5" and long[("correct", "why_answer")]["status"] == "graded"
    assert by_key(read_csv(course / "lms" / "canvas.csv"), "Student")["correct"]["08_capstone"] == "8.5"
    page = (course / "feedback" / "correct" / "08_capstone" / "capstone.html").read_text()
    assert "awaiting hand grading" not in page and "Score: 1.5 / 2.0" in page and "(Score: 8.5 / 9.0)" in page
    report = (course / "report.html").read_text()
    assert "(+2 pending)" not in report and "8.5 / 9" in report

    # nbgrader's own export, run in the course folder with no settings but its nbgrader_config.py,
    # agrees with ours for every submission.
    nbgrader = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "export", "--to", "nbgrader.csv"],
                              cwd=course, capture_output=True, text=True,
                              env={**__import__("os").environ, "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"})
    assert nbgrader.returncode == 0, nbgrader.stderr[-2000:]
    theirs = {(r["student_id"], r["assignment"]): float(r["score"]) for r in read_csv(course / "nbgrader.csv")
              if r["timestamp"]}
    ours = {(r["student"], r["assignment"]): float(r["total"]) for r in read_csv(course / "grades.csv") if r["total"]}
    assert theirs == pytest.approx(ours) and len(ours) == 3


def test_lms_files_have_a_row_for_missing_work_and_the_gradebooks_maxima(course):
    with sqlite3.connect(course / "gradebook.db") as db:  # the oracle: the gradebook, read with SQL
        maxima = dict(db.execute(
            "select a.name, sum(gc.max_score) from grade_cells gc join base_cell b on gc.id = b.id join notebook n "
            "on b.notebook_id = n.id join assignment a on n.assignment_id = a.id group by a.name"))
        cells = db.execute(
            "select st.id, a.name, b.name, coalesce(g.manual_score, g.auto_score), gc.max_score from grade g "
            "join grade_cells gc on g.cell_id = gc.id join base_cell b on b.id = gc.id "
            "join submitted_notebook sn on g.notebook_id = sn.id "
            "join submitted_assignment sa on sn.assignment_id = sa.id join student st on sa.student_id = st.id "
            "join assignment a on sa.assignment_id = a.id").fetchall()
    assert set(maxima) == {"04_adam", "08_capstone"}
    grades = by_key(read_csv(course / "grades.csv"), "student", "assignment")
    assert set(grades) == {(s, a) for s in ("absent", "correct", "mistakes-1") for a in maxima}
    assert grades[("absent", "04_adam")]["status"] == grades[("mistakes-1", "08_capstone")]["status"] == "missing"

    canvas = read_csv(course / "lms" / "canvas.csv")
    assert list(canvas[0])[:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas[0]["Student"].strip() == "Points Possible"
    assert {a: float(canvas[0][a]) for a in maxima} == pytest.approx(maxima)
    assert [r["Student"] for r in canvas[1:]] == ["absent", "correct", "mistakes-1"]  # one row per roster student
    moodle = by_key(read_csv(course / "lms" / "moodle.csv"), "Username")
    assert moodle["absent"]["04_adam"] == "0" and moodle["mistakes-1"]["08_capstone"] == "0"

    expected = demo.expected_scores("04_adam", demo.corpus()["mistakes-1"]["04_adam"], SEED)
    long = read_csv(course / "lms" / "04_adam.csv")
    assert list(long[0]) == ["student", "assignment", "problem", "score", "max", "status"]
    mine = {r["problem"]: r for r in long if r["student"] == "mistakes-1"}
    assert set(mine) == set(expected)
    sums: dict = {}
    for student, assignment, cell, score, maximum in cells:
        if student == "mistakes-1" and assignment == "04_adam":
            problem = export.problem_of(assignment, cell)
            s, m = sums.get(problem, (0.0, 0.0))
            sums[problem] = (s + score, m + maximum)
    for problem, row in mine.items():
        assert float(row["score"]) == pytest.approx(expected[problem], abs=0.005)
        assert row["score"] == export.number(sums[problem][0]) and row["max"] == export.number(sums[problem][1])
        assert re.fullmatch(r"\d+(\.\d{1,2})?", row["score"]), row  # no float noise
    assert {r["status"] for r in long if r["student"] == "absent"} == {"missing"}
    assert {r["score"] for r in long if r["student"] == "absent"} == {"0"}

    run_export(course, "--missing", "blank")
    assert by_key(read_csv(course / "lms" / "moodle.csv"), "Username")["absent"]["04_adam"] == ""
    assert {r["score"] for r in read_csv(course / "lms" / "04_adam.csv") if r["student"] == "absent"} == {""}
    result = subprocess.run([sys.executable, "-m", "autograder", "export", "--out", str(course), "--missing", "none"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "zero" in result.stderr and "blank" in result.stderr


def test_feedback_shows_each_error_once_and_no_raw_scores(course):
    page = (course / "feedback" / "mistakes-1" / "04_adam" / "adam.html").read_text()
    errors = re.findall(r"AssertionError: [^\n<]+", page)
    assert errors and all(page.count(e) == 1 for e in set(errors)), errors
    assert "Out[" not in page and "output_execute_result" not in page
    assert "cdnjs" not in page and "<script src=" not in page and page.count("<math") > 10
    assert "no bias correction" in page  # the named mistake is still there


def test_the_report_counts_failed_properties_and_totals_per_student(course):
    report = (course / "report.html").read_text()
    assert "Failed properties" in report and "04_adam adam_step: wrong values" in report
    adam = by_key(read_csv(course / "grades.csv"), "student", "assignment")[("mistakes-1", "04_adam")]
    assert f"<td>mistakes-1</td><td class='num'>{adam['total']} / {adam['max_total']}</td><td class='missing'>missing</td>" \
        in report, report[report.find("Per student"):][:1500]
    assert "no bias correction (m and v used as they are)" in report  # the mistake's full name


def test_export_refuses_a_folder_that_is_no_course(tmp_path):
    result = subprocess.run([sys.executable, "-m", "autograder", "export", "--out", str(tmp_path)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode != 0 and "is not a course folder" in result.stderr
