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


def mistake_submissions(assignment: str, notebook: str) -> list[tuple[dict, object]]:
    """A few submissions that between them make every known mistake once.

    Submission k makes the k-th mistake of every problem that has one; the other
    answers are correct. Returns ``[(choices, notebook), ...]``.
    """
    problems = registry()[assignment]
    rounds = max((len(p.variants) for p in problems.values()), default=0)
    out = []
    for k in range(rounds):
        choices = {name: p.variants[k].name for name, p in problems.items() if k < len(p.variants)}
        out.append((choices, fill(assignment, notebook, choices)))
    return out
