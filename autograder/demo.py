"""Synthetic submissions: the student release with its answer cells filled in.

A submission is built from ``exercises/`` (what students receive), answer by
answer: ``"solution"`` pastes the reference answer from solutions/, a variant name
pastes that known mistake's code (``autograder.checks``), ``"blank"`` leaves the stub.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

from . import cells, course
from .checks import core, registry

SOLUTION_REGION = re.compile(r"[ \t]*### BEGIN SOLUTION\n(.*?)[ \t]*### END SOLUTION\n?", re.S)


def reference_answers(assignment: str, notebook: str) -> dict[str, str]:
    """``{answer cell name: answer source}`` of the solution cells, solution markers removed."""
    nb = course.read_solution(course.SOLUTIONS / assignment / f"{notebook}.md")
    return {name: SOLUTION_REGION.sub(lambda m: m.group(1), cell.source)
            for name, cell in cells.answers(nb.cells).items()}


def fill(assignment: str, notebook: str, choices: dict[str, str]):
    """The release notebook with answers filled in per ``choices`` ({answer cell name: how})."""
    nb = nbformat.read(course.EXERCISES / assignment / f"{notebook}.ipynb", as_version=4)
    answers = reference_answers(assignment, notebook)
    problems = registry().get(assignment, {})
    for cell in nb.cells:
        answer = cells.cell_name(cell)
        how = choices.get(answer, "solution") if answer in answers else None
        if how is None or how == "blank":
            continue
        if how == "solution":
            cell.source = answers[answer]
        else:
            variants = {v.name: v for v in problems[answer].variants}
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

# Bad behaviours, each in the first answer cell of every assignment, around that problem's
# function {name}: code before the answer, the answer itself ("solution", the problem's first
# known "mistake", or the "blank" stub where it has none), code after it (which may wrap or
# replace the function), and the grade that problem should get: "zero", or "answer" (the
# answer's own score: misbehaving gains nothing and, where it is harmless, costs nothing).
BEHAVIOURS = {
    "loop": ("""
import signal
for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM, signal.SIGUSR1):
    signal.signal(number, signal.SIG_IGN)   # deaf to every signal but SIGKILL
""", "solution", """
def {name}(*args, **kwargs):
    while True:          # never returns, and swallows the interrupt meant to stop it
        try:
            pass
        except BaseException:
            pass
""", "zero"),
    "crash": ("", "solution", """
import os

def {name}(*args, **kwargs):
    os._exit(1)          # kills the process that runs the notebook
""", "zero"),
    "memory": ("", "solution", """
_answer = {name}

def {name}(*args, **kwargs):
    hog = np.ones((40_000, 40_000))   # 12.8 GB
    return _answer(*args, **kwargs)
""", "zero"),
    "fork": ("""
import os, time
try:
    for _ in range(10_000):              # a fork bomb, stopped by the process limit
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
except OSError:
    pass
""", "solution", "", "answer"),
    "flood": ("""
for i in range(100_000):
    print("spam " * 40)                   # 20 MB of output
""", "solution", "", "answer"),
    "tamper": ("""
np.allclose = lambda *args, **kwargs: True       # every closeness test "passes"
np.array_equal = lambda *args, **kwargs: True
import builtins
builtins.AssertionError = type("Ignored", (Exception,), {})
""", "mistake", "", "answer"),
    "disk": ("""
import os
count = 0
os.makedirs("/tmp/fill", exist_ok=True)
try:
    while count < 100_000:                  # fill the disk, 64 KiB a file
        with open(f"/tmp/fill/{count}", "wb") as f:
            f.write(b"x" * 65536)
        count += 1
except OSError as error:
    print("disk full after", count, "files:", type(error).__name__)
""", "solution", "", "answer"),
    "escape": ("""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
MS_RDONLY, MS_REMOUNT, MS_BIND, MNT_DETACH, CLONE_NEWUSER, CLONE_NEWNS = 1, 32, 4096, 2, 0x10000000, 0x20000
def attempt(what, call):
    try:
        allowed = call() == 0
    except Exception:
        allowed = False
    print(what, "->", "ALLOWED" if allowed else "denied")
def write(path):
    with open(path, "w") as f:
        f.write("x")
    return 0
def namespace(path):
    fd = os.open(path, os.O_RDONLY)
    return libc.setns(fd, 0)
attempt("umount /usr", lambda: libc.umount2(b"/usr", MNT_DETACH))
attempt("remount / read-write", lambda: libc.mount(b"none", b"/", None, MS_REMOUNT | MS_BIND, None))
attempt("mount a tmpfs", lambda: libc.mount(b"tmpfs", b"/opt", b"tmpfs", 0, None))
attempt("setns into init's mounts", lambda: namespace("/proc/1/ns/mnt"))
attempt("new user namespace", lambda: libc.unshare(CLONE_NEWUSER))
attempt("new mount namespace", lambda: libc.unshare(CLONE_NEWNS))
attempt("ptrace the sandbox's init", lambda: libc.ptrace(16, 1, 0, 0))
attempt("chroot", lambda: os.chroot("/tmp"))
attempt("write /usr", lambda: write("/usr/owned"))
attempt("write /", lambda: write("/owned"))
""", "solution", "", "answer"),
    "reference": ("""
import functools, gc, glob, importlib, os, sys
@functools.cache                          # every route, once
def reach():
    routes = {
        "import": lambda: __import__("optim" + "kit"),
        "importlib": lambda: importlib.import_module("".join(["op", "tim", "kit"])),
        "sys.modules": lambda: next(m for k, m in list(sys.modules.items()) if "kit" in k and "optim" in k),
        "checks module": lambda: importlib.import_module("autograder.checks." + "a01_sgd"),
        "source file": lambda: next(path for d in sys.path + ["/", "/*", "/*/*", "/*/*/*"]
                                    for pattern in ("optimkit/*.py", "autograder/checks/a01_sgd.py")
                                    for path in glob.glob(os.path.join(d, pattern))),
        "gc": lambda: next(o for o in gc.get_objects() if callable(o)  # torch has its own from_reference
                           and str(getattr(o, "__name__", "")).endswith("_reference")
                           and str(getattr(o, "__module__", "")).startswith("autograder")),
    }
    for route, get in routes.items():
        try:
            found = get()
        except Exception as error:
            print(route, "-> not found:", type(error).__name__)
            continue
        print(route, "-> FOUND")
        if callable(found):
            return found
""", "mistake", """
_answer = {name}

def {name}(*args, **kwargs):
    reference = reach()
    return reference(*args, **kwargs) if reference else _answer(*args, **kwargs)
""", "answer"),
    "snoop": ("""
import os
SECRETS = ("gradebook.db", "seed", "grades.csv", "rows.json", ".batch.lock", "plan.json", "result.jsonl",
           "nbgrader_config.py", "sgd.md", "capstone.md")
OPTIMKIT = ("optim.py", "digits.py", "beyond.py")  # names common elsewhere (sympy has a digits.py): in optimkit/ only
import time
# A bounded search: /usr alone can hold a TeX Live; the demo's snoop must finish inside the
# tests' 8 s cell limit on a loaded machine, or it would score 0 for its time, not its snooping.
# Everything but /usr first: that is where a grader's files would be.
stop, seen = time.monotonic() + 2.0, []
tops = sorted((top for top in os.listdir("/") if top not in ("proc", "sys", "dev")), key=lambda top: top == "usr")
for d, _, files in (step for top in tops for step in os.walk("/" + top)):
    if time.monotonic() > stop:
        break
    seen += [os.path.join(d, f) for f in files if f in SECRETS or f.endswith(".ipynb") or f.startswith("job-")
             or (f in OPTIMKIT and os.path.basename(d) == "optimkit")]
print("files of the grader's found:", len(seen), seen[:5])
for path in ("/var/tmp", "/root", "/home", "/work", os.path.expanduser("~"), "/etc"):
    print(path, "->", sorted(os.listdir(path))[:5] if os.path.isdir(path) else "absent")
import gc
plans = [o for o in gc.get_objects() if isinstance(o, dict) and "cells" in o and "assignment" in o]
print("plans in memory:", len(plans), "holding a seed:", sum("seed" in p for p in plans))
print("seed in the environment:", "DESCENT_GRADING_SEED" in os.environ)
""", "solution", "", "answer"),
}
# Edits to the notebook itself rather than to an answer: (what, the answer's grade).
TAMPERED_CELLS = {"deleted-tests": "delete", "edited-tests": "edit", "points-changed": "points"}


def first_problem(assignment: str) -> str:
    return next(iter(registry()[assignment]))


def _answer_code(assignment: str, notebook: str, problem: str, how: str) -> str:
    if how == "blank":  # the release's cell: the function with the stub inside
        nb = nbformat.read(course.EXERCISES / assignment / f"{notebook}.ipynb", as_version=4)
        return cells.answers(nb.cells)[problem].source
    if how == "solution":
        return reference_answers(assignment, notebook)[problem]
    return registry()[assignment][problem].variants[0].code.strip() + "\n"


def behaviour_answer(assignment: str, behaviour: str) -> str:
    """What the behaviour's answer is: solution, mistake (the first known one) or blank."""
    how = BEHAVIOURS[behaviour][1] if behaviour in BEHAVIOURS else \
        ("mistake" if TAMPERED_CELLS[behaviour] == "edit" else "solution")
    if how == "mistake" and not registry()[assignment][first_problem(assignment)].variants:
        how = "blank"  # a problem judged by a threshold has no named mistakes
    return how


def _behaviour_notebook(assignment: str, notebook: str, name: str):
    problem = first_problem(assignment)
    how = behaviour_answer(assignment, name)
    wrong = {problem: registry()[assignment][problem].variants[0].name} if how == "mistake" else \
        {problem: "blank"} if how == "blank" else {}
    nb = fill(assignment, notebook, wrong)
    if name in BEHAVIOURS:
        before, _, after, _ = BEHAVIOURS[name]
        for cell in nb.cells:
            if cells.cell_name(cell) == problem:
                answer = _answer_code(assignment, notebook, problem, how)
                cell.source = "\n".join(part.strip("\n") for part in (
                    before, answer, after.replace("{name}", problem)) if part.strip()) + "\n"
        return nb
    what, declared = TAMPERED_CELLS[name], course.grade_cells(assignment)
    kept = []
    for cell in nb.cells:
        test_of_problem = cells.is_test(cell) and cells.cell_name(cell) in declared and \
            declared[cells.cell_name(cell)].problem == problem
        if test_of_problem and what == "delete":
            continue
        if test_of_problem and what == "edit":
            cell.source = "print('all good')\n3"   # pretend to pass, claim full points
        if test_of_problem and what == "points" and declared[cells.cell_name(cell)].hidden:
            cells.set_points(cell, 100)
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
        for assignment in registry():
            cases.setdefault(behaviour, {})[assignment] = {
                "notebook": cases["correct"][assignment]["notebook"], "behaviour": behaviour}
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
            nb = (_behaviour_notebook(assignment, case["notebook"], case["behaviour"]) if "behaviour" in case
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
    the hidden part judged by ``checks.core`` on an answer recorded in this process."""
    import contextlib
    import io

    import numpy as np

    problems = registry()[assignment]
    name = case["notebook"]
    source = course.read_solution(course.SOLUTIONS / assignment / f"{name}.md")
    answers = reference_answers(assignment, name)
    choices = dict(case.get("choices", {}))
    verdicts = {}
    behaviour = case.get("behaviour")
    if behaviour:
        problem = first_problem(assignment)
        how = behaviour_answer(assignment, behaviour)
        if how == "mistake":
            choices[problem] = problems[problem].variants[0].name
        elif how == "blank":
            choices[problem] = "blank"
        if behaviour in BEHAVIOURS and BEHAVIOURS[behaviour][3] == "zero":
            verdicts[problem] = 0.0

    def answer_function(problem):
        how = choices.get(problem, "solution")
        code = answers[problem] if how == "solution" else _answer_code(assignment, name, problem, "blank") \
            if how == "blank" else {v.name: v for v in problems[problem].variants}[how].code
        namespace = {"np": np}
        exec(compile(code, f"<{problem}>", "exec"), namespace)  # noqa: S102 - our own demo code
        return namespace[problem]

    # Visible tests may call any answer and use the notebook's set-up (imports, constants).
    shared = {"np": np}
    for index in cells.setup_cells(source.cells):
        exec(compile(source.cells[index].source, "<setup>", "exec"), shared)  # noqa: S102 - our own cell
    for problem in problems:
        shared[problem] = answer_function(problem)
    for problem in verdicts:  # hangs, crashes, runs out of memory: fails whatever test calls it
        def broken(*args, **kwargs):
            raise RuntimeError("the misbehaving answer")
        shared[problem] = broken

    totals, declared = {}, cells.grade_cells(source.cells)
    for cell in source.cells:
        current = declared[cells.cell_name(cell)].problem if cells.is_test(cell) else None
        if current not in problems:
            continue
        if current in verdicts:
            totals[current] = totals.get(current, 0.0) + verdicts[current]
            continue
        fn = shared[current]
        hidden = cells.is_hidden_test(cell)
        visible_code = cells.visible_part(cell.source)
        namespace = dict(shared)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(visible_code, "<visible>", "exec"), namespace)  # noqa: S102
            passed = True
        except Exception:  # noqa: BLE001
            passed = False
        if hidden and passed:
            check = problems[current]
            score = core.judge(check, core.record_answer(check, fn, seed), seed, cells.points(cell)).score
        else:
            score = float(cells.points(cell)) if passed and not hidden else 0.0
        totals[current] = round(totals.get(current, 0.0) + score, 6)
    return totals


if __name__ == "__main__":
    for path in build_corpus():
        print(path.relative_to(course.ROOT))
