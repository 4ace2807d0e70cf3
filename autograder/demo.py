"""Synthetic submissions: the student release with its answer cells filled in.

A submission is built from ``exercises/`` (what students receive), answer by
answer: ``"solution"`` pastes the reference answer from solutions/, a variant name
pastes that known mistake's code (``autograder.checks``), ``"blank"`` leaves the stub.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from . import course
from .checks import registry

SOLUTION_REGION = re.compile(r"[ \t]*### BEGIN SOLUTION\n(.*?)[ \t]*### END SOLUTION\n?", re.S)


def reference_answers(assignment: str, notebook: str) -> dict[str, str]:
    """``{grade_id: answer source}`` of the solution cells, solution markers removed."""
    nb = course.read_solution(course.SOLUTIONS / assignment / f"{notebook}.md")
    answers = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            answers[meta["grade_id"]] = SOLUTION_REGION.sub(lambda m: m.group(1), cell.source)
    return answers


def fill(assignment: str, notebook: str, choices: dict[str, str]):
    """The release notebook with answers filled in per ``choices`` ({grade_id: how})."""
    nb = nbformat.read(course.EXERCISES / assignment / f"{notebook}.ipynb", as_version=4)
    answers = reference_answers(assignment, notebook)
    problems = registry().get(assignment, {})
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        how = choices.get(grade_id, "solution") if grade_id in answers else None
        if how is None or how == "blank":
            continue
        if how == "solution":
            cell.source = answers[grade_id]
        else:
            variants = {v.name: v for v in problems[grade_id].variants}
            cell.source = variants[how].code.strip() + "\n"
    return nb


def mistake_choices(assignment: str) -> list[dict]:
    """A few submissions that between them make every known mistake once: submission k
    makes the k-th mistake of every problem that has one; the other answers are correct."""
    problems = registry()[assignment]
    rounds = max((len(p.variants) for p in problems.values()), default=0)
    return [{name: p.variants[k].name for name, p in problems.items() if k < len(p.variants)}
            for k in range(rounds)]


def mistake_submissions(assignment: str, notebook: str) -> list[tuple[dict, object]]:
    """``[(choices, notebook), ...]`` for :func:`mistake_choices`."""
    return [(choices, fill(assignment, notebook, choices)) for choices in mistake_choices(assignment)]


# --- the demo corpus -----------------------------------------------------------------------------

DEMO = course.ROOT / "autograder" / "demo"

# Bad behaviours, each in one answer of assignment 01_sgd; the other answers are correct.
# (answer cell, code, what the grade should be for that problem)
BEHAVIOURS = {
    "loop": ("minibatch_indices", """
def minibatch_indices(n, batch_size, seed):
    while True:          # never returns, and swallows the interrupt meant to stop it
        try:
            pass
        except BaseException:
            pass
""", "zero"),
    "crash": ("sgd_step", """
import os

def sgd_step(theta, grad, lr):
    os._exit(1)          # kills the process that runs the notebook
""", "zero"),
    "memory": ("critical_lr", """
def critical_lr(H):
    hog = np.ones((40_000, 40_000))   # 12.8 GB
    return float(2.0 / np.linalg.eigvalsh(H).max())
""", "zero"),
    "fork": ("critical_lr", """
import os, time
try:
    for _ in range(10_000):              # a fork bomb, stopped by the process limit
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
except OSError:
    pass

def critical_lr(H):
    return float(2.0 / np.linalg.eigvalsh(H).max())
""", "solution"),
    "flood": ("sgd_step", """
for i in range(100_000):
    print("spam " * 40)                   # 20 MB of output

def sgd_step(theta, grad, lr):
    return theta - lr * grad
""", "solution"),
    "tamper": ("sgd_step", """
np.allclose = lambda *args, **kwargs: True       # every closeness test "passes"
np.array_equal = lambda *args, **kwargs: True
import builtins
builtins.AssertionError = type("Ignored", (Exception,), {})

def sgd_step(theta, grad, lr):
    return theta - grad                            # wrong: the learning rate is missing
""", "variant:the learning rate left out (θ − g)"),
    "snoop": ("sgd_step", """
import glob, os, sqlite3
root = os.path.dirname(os.path.dirname(__import__("autograder").__file__))   # the repository
for path in [root + "/solutions/01_sgd/sgd.md", root + "/.git/HEAD", *glob.glob(root + "/autograder/course/*.db")]:
    try:
        print(path, "->", open(path).read()[:80])
    except OSError as error:
        print(path, "-> denied:", type(error).__name__)
for db in [root + "/autograder/course/gradebook.db"]:
    try:
        sqlite3.connect(db).execute("update grade set manual_score = 100")
        print(db, "-> written")
    except Exception as error:
        print(db, "-> denied:", type(error).__name__)

def sgd_step(theta, grad, lr):
    return theta - lr * grad
""", "solution"),
}
# Edits to the notebook itself rather than to an answer.
TAMPERED_CELLS = {"deleted-tests": "delete", "edited-tests": "edit", "points-changed": "points"}


def _behaviour_notebook(name: str):
    if name in BEHAVIOURS:
        cell_id, code, _ = BEHAVIOURS[name]
        nb = fill("01_sgd", "sgd", {})
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == cell_id:
                cell.source = code.strip() + "\n"
        return nb
    how = TAMPERED_CELLS[name]
    wrong = {"sgd_step": "the learning rate left out (θ − g)"} if how == "edit" else {}
    nb = fill("01_sgd", "sgd", wrong)
    kept = []
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if grade_id.startswith("sgd_step_") and how == "delete":
            continue
        if grade_id.startswith("sgd_step_") and how == "edit":
            cell.source = "print('all good')\n3"   # pretend to pass, claim full points
        if grade_id == "sgd_step_hidden" and how == "points":
            cell.metadata["nbgrader"]["points"] = 100
        kept.append(cell)
    nb.cells = kept
    return nb


def corpus() -> dict:
    """``{student: {assignment: case}}``: every submission of the demo batch and what it is."""
    cases: dict = {}
    for assignment in registry():
        (name,) = [p.stem for p in (course.SOLUTIONS / assignment).glob("*.md")]
        cases.setdefault("correct", {})[assignment] = {"notebook": name, "choices": {}}
        for k, choices in enumerate(mistake_choices(assignment), start=1):
            cases.setdefault(f"mistakes-{k}", {})[assignment] = {"notebook": name, "choices": choices}
    for behaviour in list(BEHAVIOURS) + list(TAMPERED_CELLS):
        cases[behaviour] = {"01_sgd": {"notebook": "sgd", "behaviour": behaviour}}
    return cases


def build_corpus(dest: Path = DEMO) -> list[Path]:
    """Write the demo submissions (``dest/submissions``), a roster and an LMS zip."""
    import shutil
    import zipfile

    if (dest / "submissions").exists():
        shutil.rmtree(dest / "submissions")
    written = []
    for student, assignments in corpus().items():
        for assignment, case in assignments.items():
            nb = (_behaviour_notebook(case["behaviour"]) if "behaviour" in case
                  else fill(assignment, case["notebook"], case["choices"]))
            path = dest / "submissions" / student / assignment / f"{case['notebook']}.ipynb"
            path.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, path)
            written.append(path)
    # The roster leaves one student out, so the report shows an unknown student.
    students = sorted(s for s in corpus() if s != "snoop")
    (dest / "roster.csv").write_text("student\n" + "\n".join(students) + "\n")
    # An LMS export of 01_sgd (Canvas names), with one student who submitted twice.
    lms = dest / "lms-01_sgd.zip"
    with zipfile.ZipFile(lms, "w", zipfile.ZIP_DEFLATED) as archive:
        for i, student in enumerate(["correct", "mistakes-1", "mistakes-2"]):
            data = (dest / "submissions" / student / "01_sgd" / "sgd.ipynb").read_bytes()
            info = zipfile.ZipInfo(f"{student.replace('-', '')}_{1000 + i}_{5000 + i}_sgd.ipynb",
                                   date_time=(2026, 11, 1, 12, 0, 0))
            archive.writestr(info, data)
        older = fill("01_sgd", "sgd", {"sgd_step": "a step uphill (θ + η g instead of θ − η g)"})
        info = zipfile.ZipInfo("correct_1000_4000_sgd-1.ipynb", date_time=(2026, 10, 30, 12, 0, 0))
        archive.writestr(info, nbformat.writes(older))
    return written


def expected_scores(assignment: str, case: dict, seed: int) -> dict[str, float]:
    """The oracle: each problem's points computed in this process, without the sandbox, the
    transport or nbgrader: our visible test cells run against the answer code directly,
    the hidden part judged by ``checks.core`` on an in-process probe."""
    import contextlib
    import io

    import numpy as np

    from .checks import core

    problems = registry()[assignment]
    name = case["notebook"]
    source = course.read_solution(course.SOLUTIONS / assignment / f"{name}.md")
    answers = reference_answers(assignment, name)
    choices = dict(case.get("choices", {}))
    verdicts = {}
    behaviour = case.get("behaviour")
    if behaviour in BEHAVIOURS:
        cell_id, _, outcome = BEHAVIOURS[behaviour]
        if outcome.startswith("variant:"):
            choices[cell_id] = outcome.split(":", 1)[1]
        elif outcome == "zero":
            verdicts[cell_id] = 0.0
    elif behaviour == "edited-tests":
        choices["sgd_step"] = "the learning rate left out (θ − g)"

    def answer_function(problem):
        how = choices.get(problem, "solution")
        code = answers[problem] if how == "solution" else \
            {v.name: v for v in problems[problem].variants}[how].code
        namespace = {"np": np}
        exec(compile(code, f"<{problem}>", "exec"), namespace)  # noqa: S102 - our own demo code
        return namespace[problem]

    # Visible tests may call any answer and use the notebook's set-up (imports, constants).
    shared = {"np": np}
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            break
        if cell.cell_type == "code" and meta.get("locked"):
            exec(compile(cell.source, "<setup>", "exec"), shared)  # noqa: S102 - our own cell
    for problem in problems:
        shared[problem] = answer_function(problem)

    totals, current = {}, None
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            current = meta["grade_id"]
        if not meta.get("grade") or meta.get("solution") or current not in problems:
            continue
        if current in verdicts:
            totals[current] = totals.get(current, 0.0) + verdicts[current]
            continue
        fn = shared[current]
        hidden = "### BEGIN HIDDEN TESTS" in cell.source
        visible_code = cell.source.split("### BEGIN HIDDEN TESTS")[0]
        namespace = dict(shared)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(visible_code, "<visible>", "exec"), namespace)  # noqa: S102
            passed = True
        except Exception:  # noqa: BLE001
            passed = False
        if hidden:
            score = core.judge(problems[current], core.probe(problems[current], fn, seed), seed).score \
                if passed else 0.0
        else:
            score = float(meta["points"]) if passed else 0.0
        totals[current] = round(totals.get(current, 0.0) + score, 6)
    return totals


if __name__ == "__main__":
    for path in build_corpus():
        print(path.relative_to(course.ROOT))
