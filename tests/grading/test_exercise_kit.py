"""The exercise kit under real nbgrader and real kernels.

exercises/ is exactly what nbgrader makes from solutions/; it leaks no solution or
hidden-test text; the source passes its own tests and the release fails them
(nbgrader's validator); autograding gives the solutions full marks and blank releases
zero. `make` checks exercises/ without writing it, and a student's working copy (made by
`make lab`) is never touched again. Every property a hidden check grades has a visible test
that catches its common violation: an input changed in place, and each problem's first named
mistake. Each notebook says how to submit and links to the built book.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pytest

from autograder import cells, checks, course, lab
from autograder.checks import core

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


# --- the release is checked, never rewritten, and a student's copy is never touched -------------------

def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def student_edits(work: Path) -> None:
    """What a student does: write an answer into 04_adam (saved as JupyterLab saves) and add a file."""
    path = work / "04_adam" / "adam.ipynb"
    nb = nbformat.read(path, as_version=4)
    answer = next(c for c in nb.cells if cells.cell_name(c) == "adam_step")
    answer.source = "def adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps):\n    theta -= lr * grad  # mine\n    return theta, m, v\n"
    nbformat.write(nb, path)
    (work / "04_adam" / "notes.txt").write_text("my notes\n")


def test_make_checks_the_release_and_leaves_a_students_copy_untouched(tmp_path):
    """`make check-exercises` (what `make` runs instead of regenerating) and a second `make lab`
    copy step, after a student edited their copy: not one byte of it changes, nor of exercises/."""
    work = tmp_path / "my work"
    found = lab.copy_release(work)
    assert sorted(found["added"]) == sorted(snapshot(course.EXERCISES)) and not found["kept"]
    student_edits(work)
    before, release_before = snapshot(work), snapshot(course.EXERCISES)
    bin_dir = Path(os.sys.executable).parent
    # -o: the venv is what it is; this test must not reinstall it.
    run = subprocess.run(["make", "--no-print-directory", "check-exercises", f"WORK={work}",
                          "-o", ".venv/.runtime-installed", "-o", ".venv/etc/ipython/ipython_kernel_config.py"],
                         cwd=course.ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}"))
    assert run.returncode == 0, run.stdout + run.stderr
    again = lab.copy_release(work)
    assert not again["added"] and sorted(again["kept"]) == sorted(release_before)
    assert snapshot(work) == before, "make or make lab changed the student's copy"
    assert snapshot(course.EXERCISES) == release_before, "make check-exercises wrote into exercises/"
    # Negative control: what `make` used to do (regenerate with force where the student works)
    # does destroy the edit, and this comparison sees it.
    course.generate_release(release_dir=work, only=["04_adam"])
    assert snapshot(work) != before


def test_a_new_assignment_is_added_to_a_students_copy_and_a_changed_one_is_reported(tmp_path):
    release, work = tmp_path / "release", tmp_path / "work"
    shutil.copytree(course.EXERCISES / "01_sgd", release / "01_sgd")
    lab.copy_release(work, release)
    (work / "01_sgd" / "sgd.ipynb").write_text("the student's bytes")
    shutil.copytree(course.EXERCISES / "04_adam", release / "04_adam")   # a new assignment is released
    (release / "01_sgd" / "sgd.ipynb").write_bytes(b"{}")                # and an old one changes
    found = lab.copy_release(work, release)
    assert found["added"] == ["04_adam/adam.ipynb"]
    assert found["updated_in_release"] == ["01_sgd/sgd.ipynb"]
    assert (work / "01_sgd" / "sgd.ipynb").read_text() == "the student's bytes"


def test_a_stale_release_is_named_with_the_command_that_fixes_it(tmp_path):
    stale = tmp_path / "exercises"
    shutil.copytree(course.EXERCISES, stale)
    nb = nbformat.read(stale / "01_sgd" / "sgd.ipynb", as_version=4)
    nb.cells[0].source += "\nedited by hand"
    nbformat.write(nb, stale / "01_sgd" / "sgd.ipynb")
    (stale / "04_adam" / "adam.ipynb").unlink()
    (stale / "04_adam" / "stray.txt").write_text("x")
    assert course.stale_release(stale) == ["04_adam/adam.ipynb (missing)", "01_sgd/sgd.ipynb (stale)",
                                           "04_adam/stray.txt (not made by nbgrader)"]
    assert nbformat.read(stale / "01_sgd" / "sgd.ipynb", as_version=4).cells[0].source.endswith("edited by hand")
    assert course.stale_release(course.EXERCISES) == [], "exercises/ is stale: run `make exercises`"


# --- each notebook says how to submit, and links to the built book ----------------------------------

@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_notebook_ends_with_how_to_submit_and_links_to_built_chapters(assignment):
    for name in notebooks(assignment):
        release = nbformat.read(course.EXERCISES / assignment / f"{name}.ipynb", as_version=4)
        last = release.cells[-1]
        assert last.cell_type == "markdown" and last.source.startswith("## How to submit"), last.source[:80]
        assert f"`{assignment}/{name}.ipynb`" in last.source and "Validate" in last.source
        assert cells.is_locked(last)
        text = "\n".join(c.source for c in release.cells if c.cell_type == "markdown")
        assert "../../book/" not in text, "a chapter link still points at the Markdown source"
        links = re.findall(r"\]\((/descent/book/(\d\d-[\w-]+)\.html)(?:#[\w-]*)?\)", text)
        assert links, f"{assignment}/{name}: no chapter link"
        for _, stem in links:  # the page the built book has for that chapter
            assert (course.ROOT / "book" / f"{stem}.md").exists(), stem


# --- visible tests catch what the hidden checks grade ---------------------------------------------------

REGISTRY = checks.registry()
PROBLEMS = [(a, name) for a, problems in REGISTRY.items() for name in problems]


def visible_tests(assignment: str):
    """(the set-up and reference answers' code, {problem: [its visible test code]}), from solutions/."""
    setup, tests = [], {}
    for name in notebooks(assignment):
        nb = course.read_solution(course.SOLUTIONS / assignment / f"{name}.md")
        declared = cells.grade_cells(nb.cells)
        setup += [nb.cells[i].source for i in cells.setup_cells(nb.cells)]
        for cell in nb.cells:
            if cell.cell_type == "code" and cells.is_solution(cell):
                setup.append(cell.source)
            elif cell.cell_type == "code" and cells.is_test(cell):
                tests.setdefault(declared[cells.cell_name(cell)].problem, []).append(cells.visible_part(cell.source))
    return setup, tests


def visible_failure(setup, tests, name, fn=None) -> str | None:
    """Run the visible tests of ``name`` with ``fn`` as the answer (the reference if None), in
    this process as Validate runs them in a kernel; the first failure, or None when all pass."""
    namespace = {}
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for code in setup:
            exec(code, namespace)  # noqa: S102 - the solution notebook's own code
        if fn is not None:
            namespace[name] = fn(namespace[name])
        try:
            for code in tests:
                exec(code, namespace)  # noqa: S102
        except Exception as error:  # noqa: BLE001 - any failure is what Validate reports
            return f"{type(error).__name__}: {error}"
    return None


def array_inputs(problem, fn) -> list[str]:
    """The inputs the hidden check passes as arrays (or lists of them) and grades as unchanged."""
    names = set()
    for call in core.record(problem, fn, 1).calls:
        for key, value in call.inputs.items():
            values = value if isinstance(value, (list, tuple)) else [value]
            if key not in problem.mutable and any(isinstance(v, np.ndarray) for v in values):
                names.add(key)
    return sorted(names)


def changing_in_place(argument: str):
    """The correct answer, but it also writes into ``argument`` (as `theta -= ...` does)."""
    def wrap(fn):
        signature = inspect.signature(fn)

        def mutant(*args, **kwargs):
            out = fn(*args, **kwargs)
            value = signature.bind(*args, **kwargs).arguments.get(argument)
            for array in (value if isinstance(value, (list, tuple)) else [value]):
                if isinstance(array, np.ndarray) and array.size and array.flags.writeable:
                    array[...] = array * 2 + 1 if array.dtype.kind == "f" else array + 1
            return out
        return mutant
    return wrap


@pytest.mark.parametrize("assignment,name", PROBLEMS, ids=[n for _, n in PROBLEMS])
def test_visible_tests_catch_an_input_changed_in_place(assignment, name):
    """The hidden check takes points for any input changed in place; the visible tests must
    fail for each such input, so Validate says so before grading does."""
    setup, tests = visible_tests(assignment)
    assert name in tests, f"{assignment}: {name} has no visible test cell"
    assert visible_failure(setup, tests[name], name) is None, "the reference fails its own visible tests"
    namespace = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for code in setup:
            exec(code, namespace)  # noqa: S102
    problem = REGISTRY[assignment][name]
    missed = [arg for arg in array_inputs(problem, namespace[name])
              if visible_failure(setup, tests[name], name, changing_in_place(arg)) is None]
    assert not missed, (f"{assignment}: the visible tests of {name} pass an answer that changes {missed} in place, "
                        f"which the hidden check grades; add an assertion that the input is unchanged")


@pytest.mark.parametrize("assignment,name", [(a, n) for a, n in PROBLEMS if REGISTRY[a][n].variants],
                         ids=[n for a, n in PROBLEMS if REGISTRY[a][n].variants])
def test_visible_tests_catch_the_first_named_mistake(assignment, name):
    """A problem's first variant is its most common mistake: Validate must already reject it."""
    setup, tests = visible_tests(assignment)
    variant = REGISTRY[assignment][name].variants[0]
    assert visible_failure(setup, tests[name], name, lambda _: variant.function(name)), (
        f"{assignment}: the visible tests of {name} pass the known mistake {variant.name!r}")


def test_an_unchecked_input_is_found():
    """Negative control: with its unchanged-input assertions removed, 04_adam's visible tests
    pass `theta -= ...`, and the harness above reports it."""
    setup, tests = visible_tests("04_adam")
    stripped = [re.sub(r"for name, now, before in .*\n    assert np.array_equal\(now, before\).*\n", "", code)
                for code in tests["adam_step"]]
    assert stripped != tests["adam_step"]
    assert visible_failure(setup, stripped, "adam_step") is None
    assert visible_failure(setup, stripped, "adam_step", changing_in_place("theta")) is None
    assert visible_failure(setup, tests["adam_step"], "adam_step", changing_in_place("theta"))


def test_headings_add_up_to_what_the_gradebook_grades_out_of():
    """The problem totals (what headings state, test_checks keeps them equal) sum to the notebook's points."""
    for assignment in ASSIGNMENTS:
        declared = course.grade_cells(assignment)
        problems = {cell.problem for cell in declared.values()}
        assert sum(course.total_points(assignment, p) for p in problems) == sum(c.points for c in declared.values())
        for p in problems:  # a problem with a hidden check has visible tests too: its total is more
            if any(c.hidden for c in declared.values() if c.problem == p):
                assert course.total_points(assignment, p) > course.points(assignment, p)


def test_the_student_lab_disables_exactly_the_instructor_panels():
    """autograder/student_lab's page config names plugins the installed nbgrader really has
    (a renamed plugin would silently stay enabled), and keeps Validate."""
    config = json.loads((lab.CONFIG / "labconfig" / "page_config.json").read_text())
    disabled = set(config["disabledExtensions"])
    bundle = Path(os.sys.executable).parents[1] / "share" / "jupyter" / "labextensions" / "@jupyter" / "nbgrader"
    plugins = set(re.findall(r'"(@jupyter/nbgrader:[a-z-]+)"', "".join(
        p.read_text(errors="ignore") for p in bundle.rglob("*.js"))))
    assert disabled <= plugins, f"not nbgrader plugins: {disabled - plugins}"
    assert plugins - disabled == {"@jupyter/nbgrader:validate-assignment"}
    server = json.loads((lab.CONFIG / "jupyter_server_config.json").read_text())["ServerApp"]["jpserver_extensions"]
    assert server["autograder.lab"] and not server["nbgrader.server_extensions.formgrader"]
