"""Hidden numeric checks, one module per assignment (README.md here: how to add one).

Assignment ``NN_name`` (solutions/NN_name/) has its checks in ``aNN_name.py``; the module's
name is the only place that ties the two, so adding an assignment touches no shared file.
What a checks module must define is :data:`CONTRACT`; :func:`modules` checks it.
Hidden test cells call :func:`score_answer`.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
import re
from dataclasses import dataclass
from types import ModuleType
from typing import Callable

from .. import course
from . import core

MODULE_NAME = re.compile(r"^a(\d\d_\w+)$")  # a01_sgd checks assignment 01_sgd

# The runner contract: what a checks module defines, with its type and, for an optional name,
# the value it has when the module leaves it out.
CONTRACT = {
    # {answer cell id (= the function's name): Problem}, one per hidden test cell
    "PROBLEMS": (dict, None),
    # modules the notebook may name without scoring zero, e.g. ["optimkit.digits"]
    "ALLOWED_IMPORTS": (list, []),
    # ids of locked cells that are not run when grading (they need optimkit, absent there)
    "NOT_RUN_WHEN_GRADING": (tuple, ()),
}


class ContractError(TypeError):
    """A checks module that does not define what :data:`CONTRACT` asks for."""


def assignment_of(module_name: str) -> str | None:
    """The assignment a checks module is for (None for a helper module such as core)."""
    match = MODULE_NAME.match(module_name.rpartition(".")[2])
    return match.group(1) if match else None


def _contract_value(module: ModuleType, name: str):
    kind, default = CONTRACT[name]
    if not hasattr(module, name):
        if default is None:
            raise ContractError(f"{module.__name__} does not define {name} ({kind.__name__}), "
                                f"which every checks module must: see autograder/checks/README.md")
        return default
    value = getattr(module, name)
    if not isinstance(value, kind):
        raise ContractError(f"{module.__name__}.{name} must be a {kind.__name__}, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Checks:
    """One assignment's checks module, as the contract describes it."""

    assignment: str
    module: ModuleType
    problems: dict[str, core.Problem]
    allowed_imports: list[str]
    not_run_when_grading: tuple[str, ...]

    @property
    def packages(self) -> tuple[str, ...]:
        """What the answers are written with besides NumPy (their problems' ``packages``, e.g.
        torch): the grading sandbox of this assignment provides them, and its notebook may name them."""
        return tuple(sorted({p for problem in self.problems.values() for p in problem.packages}))

    @classmethod
    def of_module(cls, module: ModuleType) -> "Checks":
        """Check ``module`` against :data:`CONTRACT`; a :class:`ContractError` names what is wrong."""
        problems = _contract_value(module, "PROBLEMS")
        for key, problem in problems.items():
            if not isinstance(problem, core.Problem) or problem.name != key:
                raise ContractError(f"{module.__name__}.PROBLEMS[{key!r}] must be a core.Problem named "
                                    f"{key!r}, got {problem!r:.80}")
        packages = sorted({p for problem in problems.values() for p in problem.packages})
        allowed = list(_contract_value(module, "ALLOWED_IMPORTS")) + [p for p in packages if p not in
                                                                      _contract_value(module, "ALLOWED_IMPORTS")]
        return cls(assignment_of(module.__name__), module, problems, allowed,
                   _contract_value(module, "NOT_RUN_WHEN_GRADING"))


@functools.cache
def modules() -> dict[str, Checks]:
    """``{assignment: Checks}`` for every checks module (imported once, contract checked)."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if assignment_of(info.name):
            found[assignment_of(info.name)] = Checks.of_module(importlib.import_module(f"{__name__}.{info.name}"))
    return dict(sorted(found.items()))


def of(assignment: str) -> Checks:
    try:
        return modules()[assignment]
    except KeyError:
        raise KeyError(f"no checks module for assignment {assignment!r}: "
                       f"expected autograder/checks/a{assignment}.py") from None


def registry() -> dict[str, dict[str, core.Problem]]:
    """``{assignment: {problem name: Problem}}`` for every checks module."""
    return {assignment: checks.problems for assignment, checks in modules().items()}


def score_answer(assignment: str, problem: str, fn: Callable, seed: int | None = None) -> float:
    """A hidden test cell's check, run in the student's kernel (plain nbgrader): record the answer
    on the secret inputs, judge it, print the verdict and return the score. The points are the
    hidden test cell's, read from solutions/ (the grading pipeline does the same in the grader)."""
    core.quiet_tracebacks()
    seed = core.secret_seed(seed)
    check = of(assignment).problems[problem]
    verdict = core.judge(check, core.record_answer(check, fn, seed), seed, course.points(assignment, problem))
    verdict.total = course.total_points(assignment, problem)
    print(verdict.report())
    return verdict.score
