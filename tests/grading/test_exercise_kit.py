"""The exercise kit under real nbgrader and real kernels.

exercises/ is exactly what nbgrader makes from solutions/; it leaks no solution or
hidden-test text; the source passes its own tests and the release fails them
(nbgrader's validator); autograding gives the solutions full marks and blank releases
zero.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from autograder import course

ASSIGNMENTS = course.assignments()
SEED = "20261123"


def notebooks(assignment):
    return sorted(p.stem for p in (course.SOLUTIONS / assignment).glob("*.md"))


def normalized(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return json.dumps({"cells": [{k: c[k] for k in ("cell_type", "source", "metadata")} for c in nb.cells],
                       "metadata": nb.metadata}, sort_keys=True, indent=1)


@pytest.fixture(scope="module")
def fresh_release(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("release")
    course.generate_release(release_dir=tmp / "exercises")
    return tmp / "exercises"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_what_nbgrader_makes_from_the_solutions(fresh_release, assignment):
    for name in notebooks(assignment):
        committed = course.EXERCISES / assignment / f"{name}.ipynb"
        assert committed.exists(), f"{committed} missing: run `make exercises` and commit exercises/"
        assert normalized(committed) == normalized(fresh_release / assignment / f"{name}.ipynb"), (
            f"exercises/{assignment}/{name}.ipynb is stale or was edited by hand: "
            f"run `make exercises` and commit the result")
    extra = {p.name for p in (course.EXERCISES / assignment).iterdir()} - {f"{n}.ipynb" for n in notebooks(assignment)}
    assert not extra, f"exercises/{assignment} holds files nbgrader did not make: {sorted(extra)}"


def _protected_lines(source_nb) -> set[str]:
    """Lines inside solution and hidden-test regions that would give the answer away."""
    lines = set()
    for cell in source_nb.cells:
        for region in re.findall(r"### BEGIN (?:SOLUTION|HIDDEN TESTS)\n(.*?)### END", cell.source, re.S):
            lines |= {line.strip() for line in region.splitlines() if len(line.strip()) > 12}
    return lines


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_leaks_no_solution_or_hidden_test_text(assignment):
    for name in notebooks(assignment):
        source = course.read_solution(course.SOLUTIONS / assignment / f"{name}.md")
        release_text = (course.EXERCISES / assignment / f"{name}.ipynb").read_text()
        for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "autograder.checks"):
            assert marker not in release_text, f"{assignment}/{name}: release contains {marker!r}"
        release = nbformat.reads(release_text, as_version=4)
        released_lines = {line.strip() for cell in release.cells for line in cell.source.splitlines()}
        leaked = _protected_lines(source) & released_lines
        assert not leaked, f"{assignment}/{name}: release contains solution lines {sorted(leaked)[:3]}"


@pytest.fixture(scope="module")
def validator():
    from nbgrader.validator import Validator

    return Validator


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_passes_and_release_fails_its_own_tests(validator, assignment, tmp_path, monkeypatch):
    monkeypatch.setenv("DESCENT_GRADING_SEED", SEED)
    course.build_source()
    for name in notebooks(assignment):
        source = tmp_path / f"{name}-source.ipynb"
        shutil.copy(course.SOURCE / assignment / f"{name}.ipynb", source)
        result = validator().validate(str(source))
        assert not result.get("failed") and not result.get("changed"), f"source fails: {result}"
        release = tmp_path / f"{name}-release.ipynb"
        shutil.copy(course.EXERCISES / assignment / f"{name}.ipynb", release)
        inverted = validator(invert=True).validate(str(release))
        assert not inverted.get("passed"), (
            f"the blank release passes some of its own tests: "
            f"{[c['source'][:60] for c in inverted['passed']]}")


@pytest.fixture(scope="module")
def grader(tmp_path_factory):
    """A throw-away course (own gradebook and folders) graded with nbgrader's API."""
    tmp = tmp_path_factory.mktemp("course")
    course.build_source()
    overrides = {f"CourseDirectory.{k}_directory": str(tmp / k)
                 for k in ("release", "submitted", "autograded", "feedback")}
    with course.nbgrader_api(**overrides, **{"CourseDirectory.db_url": f"sqlite:///{tmp / 'gb.db'}"}) as api:
        for assignment in ASSIGNMENTS:  # registers notebooks and test cells in the gradebook
            assert api.generate_assignment(assignment, force=True, create=True)["success"]

        def autograde(assignment: str, student: str, submission: dict[str, object]):
            folder = tmp / "submitted" / student / assignment
            folder.mkdir(parents=True, exist_ok=True)
            for name, nb in submission.items():
                nbformat.write(nb, folder / f"{name}.ipynb")
            result = api.autograde(assignment, student, force=True, create=True)
            assert result["success"], result.get("log")
            feedback = api.generate_feedback(assignment, student, force=True)
            assert feedback["success"], feedback.get("log")
            with api.gradebook as gb:
                submitted = gb.find_submission(assignment, student)
                scores = {g.name: g.score for nb in submitted.notebooks for g in nb.grades}
                total, max_total = submitted.score, submitted.max_score
            html = "".join(p.read_text() for p in (tmp / "feedback" / student / assignment).glob("*.html"))
            return scores, total, max_total, html

        yield autograde


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solutions_earn_full_marks_and_blank_releases_zero(grader, assignment, monkeypatch):
    monkeypatch.setenv("DESCENT_GRADING_SEED", SEED)
    solved = {n: nbformat.read(course.SOURCE / assignment / f"{n}.ipynb", as_version=4) for n in notebooks(assignment)}
    _, total, max_total, html = grader(assignment, "solutions", solved)
    manual = sum(c.metadata["nbgrader"]["points"] for nb in solved.values() for c in nb.cells
                 if c.metadata.get("nbgrader", {}).get("grade") and c.metadata["nbgrader"].get("solution"))
    assert total == max_total - manual, f"solutions scored {total} of {max_total - manual} autograded points"
    for nb in solved.values():
        for cell in nb.cells:
            for line in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END", cell.source, re.S):
                for code in line.splitlines():
                    assert code.strip() not in html, "feedback shows hidden test code"
    blank = {n: nbformat.read(course.EXERCISES / assignment / f"{n}.ipynb", as_version=4) for n in notebooks(assignment)}
    _, total, _, _ = grader(assignment, "blank", blank)
    assert total == 0

# Every known mistake named in real nbgrader feedback: tests/grading/test_pipeline.py grades the demo
# corpus (a submission per mistake, every assignment) and checks each name in its feedback.
