"""The hidden checks themselves: the reference earns full marks, every known mistake is
recognised and named, and the probe survives what student code does."""

from __future__ import annotations

import re
import warnings

import nbformat
import numpy as np
import pytest

from autograder import cells, checks, course, demo
from autograder.checks import core, registry

REGISTRY = registry()
PROBLEMS = [(a, p) for a, problems in REGISTRY.items() for p in problems.values()]
VARIANTS = [(a, p, v) for a, p in PROBLEMS for v in p.variants]
SEEDS = [0, 1, 987654321]


def points(problem):
    """The problem's points, as solutions/ declares them (its hidden test cell's)."""
    (assignment,) = [a for a, problems in REGISTRY.items() if problems.get(problem.name) is problem]
    return course.points(assignment, problem.name)


def verdict(problem, fn, seed):
    return core.judge(problem, core.record_answer(problem, fn, seed), seed, points(problem))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("assignment,problem", PROBLEMS, ids=[p.name for _, p in PROBLEMS])
def test_reference_answer_earns_full_marks(assignment, problem, seed):
    answer = demo.reference_answers(assignment, assignment.split("_", 1)[1])[problem.name]
    namespace = {"np": np}
    exec(answer, namespace)  # noqa: S102 - the solution notebook's own answer
    v = verdict(problem, namespace[problem.name], seed)
    assert v.score == pytest.approx(points(problem)), v.report()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("assignment,problem,variant", VARIANTS,
                         ids=[f"{p.name}:{v.name[:40]}" for _, p, v in VARIANTS])
def test_every_known_mistake_is_named(assignment, problem, variant, seed):
    v = verdict(problem, variant.function(problem.name), seed)
    assert v.matched_variant == variant.name, v.report()
    assert v.score < points(problem)
    assert variant.name in v.report() and variant.where in v.report()


def test_variants_are_told_apart():
    for assignment, problem in PROBLEMS:
        for a in problem.variants:
            v = verdict(problem, a.function(problem.name), 5)  # judged once, compared with every other
            for b in problem.variants:
                if a is not b:
                    assert v.matched_variant != b.name, f"{problem.name}: {a.name} looks like {b.name}"


def test_an_answer_using_optimkit_scores_zero_with_the_reason():
    problem = REGISTRY["01_sgd"]["sgd_step"]
    namespace = {}
    exec("import optimkit\nfrom optimkit import rules\n"
         "def helper(t, g, lr):\n    (p,), _ = rules.sgd_update([g], rules.sgd_init([t]), [t], lr=lr)\n    return p\n"
         "def sgd_step(theta, grad, lr):\n    return helper(theta, grad, lr)\n", namespace)
    v = verdict(problem, namespace["sgd_step"], 0)
    assert v.score == 0 and "uses optimkit" in v.report()


@pytest.mark.parametrize("module", ["optimkit", "descent.variants", "torch"])
def test_importing_a_forbidden_module_inside_the_answer_fails_at_run_time(module):
    problem = REGISTRY["01_sgd"]["sgd_step"]
    namespace = {}
    exec(f"def sgd_step(theta, grad, lr):\n    import {module}\n    return theta - lr * grad\n", namespace)
    v = verdict(problem, namespace["sgd_step"], 0)
    assert v.score == 0 and "cannot be imported" in v.report()


def test_an_answer_reaching_the_books_textbook_optimizers_scores_zero():
    problem = REGISTRY["01_sgd"]["sgd_step"]
    namespace = {}
    exec("from descent import variants\n"
         "def sgd_step(theta, grad, lr):\n    variants.__name__\n    return theta - lr * grad\n", namespace)
    v = verdict(problem, namespace["sgd_step"], 0)
    assert v.score == 0 and "uses descent" in v.report()


def test_mutating_inputs_costs_that_property_only():
    problem = REGISTRY["01_sgd"]["sgd_step"]
    namespace = {}
    exec("def sgd_step(theta, grad, lr):\n    theta -= lr * grad\n    return theta\n", namespace)
    v = verdict(problem, namespace["sgd_step"], 0)
    assert "modifies its input(s) theta in place" in v.report()
    # The values are still right (the drive feeds the returned array back in).
    assert v.score == pytest.approx(points(problem) * (1 - core.WEIGHTS["no_mutation"]))


def test_wrong_shape_is_reported_in_words_a_student_can_act_on():
    problem = REGISTRY["01_sgd"]["sgd_step"]
    namespace = {"np": np}
    exec("def sgd_step(theta, grad, lr):\n    return (theta - lr * grad).reshape(-1, 1)\n", namespace)
    v = verdict(problem, namespace["sgd_step"], 0)
    assert re.search(r"expected shape \(\d+(, \d+)?,?\), got \(\d+, 1\)", v.report()), v.report()
    assert 0 < v.score < points(problem)


def test_output_and_warnings_from_the_answer_do_not_leak(capsys):
    problem = REGISTRY["01_sgd"]["sgd_step"]
    namespace = {"np": np, "warnings": warnings}
    exec("import sys\ndef sgd_step(theta, grad, lr):\n    print('debug', file=sys.stderr)\n"
         "    warnings.warn('careful')\n    return theta - lr * grad\n", namespace)
    score = checks.score_answer("01_sgd", "sgd_step", namespace["sgd_step"], seed=0)
    captured = capsys.readouterr()
    assert score == points(problem)
    assert captured.err == "" and "debug" not in captured.out


def test_a_non_function_and_a_crash_are_graded_not_fatal():
    problem = REGISTRY["01_sgd"]["critical_lr"]
    assert verdict(problem, None, 0).score == 0
    namespace = {}
    exec("def critical_lr(H):\n    raise ZeroDivisionError('oops')\n", namespace)
    v = verdict(problem, namespace["critical_lr"], 0)
    assert v.score == 0 and "ZeroDivisionError: oops" in v.report()


@pytest.mark.parametrize("assignment,problem,variant", VARIANTS[:3],
                         ids=[f"{p.name}:{v.name[:30]}" for _, p, v in VARIANTS[:3]])
def test_a_function_called_across_the_wire_is_judged_the_same(assignment, problem, variant):
    """The grader's side of the channel (RemoteFunction) against a stand-in session that
    answers each call as the sandbox's runner does, frames packed and unpacked for real."""
    from autograder import grading, wire

    fn = variant.function(problem.name)

    class Loopback:
        def call(self, kwargs):
            frame = wire.pack({"op": "call", "data": kwargs})
            n = wire.HEADER.unpack_from(frame)[0]
            inputs = wire.unpack(frame[8:8 + n], frame[8 + n:], trusted=True)["data"]
            try:
                reply = {"op": "return", "error": None, "data": {"output": fn(**inputs), "after": {}}}
            except Exception as exc:  # noqa: BLE001
                reply = {"op": "return", "error": f"{type(exc).__name__}: {exc}"}
            frame = wire.pack(reply)
            n = wire.HEADER.unpack_from(frame)[0]
            return wire.unpack(frame[8:8 + n], frame[8 + n:], trusted=False)

    remote = core.record(problem, grading.RemoteFunction(Loopback()), 3)
    assert core.judge(problem, remote, 3, points(problem)) == \
        core.judge(problem, core.record_answer(problem, fn, 3), 3, points(problem))


def test_solution_notebooks_and_checks_agree():
    """Every hidden cell checks an existing problem, and says so in the call it makes in a
    kernel; every problem has a solution cell of the same id and exactly one hidden test cell,
    whose points it is worth."""
    for assignment, problems in REGISTRY.items():
        nb = course.read_solution(course.SOLUTIONS / assignment / f"{assignment.split('_', 1)[1]}.md")
        assert set(problems) <= set(cells.answers(nb.cells)), f"{assignment}: problems without a solution cell"
        declared = cells.grade_cells(nb.cells)
        for cell in nb.cells:
            if cells.is_hidden_test(cell):
                problem = declared[cells.cell_name(cell)].problem
                assert problem in problems, f"{assignment}: hidden cell checks unknown {problem}"
                assert f'autograder.checks.score_answer("{assignment}", "{problem}", globals().get("{problem}"))' in cell.source
                assert cells.points(cell) == course.points(assignment, problem)
        for problem in problems:
            assert course.points(assignment, problem) > 0


@pytest.mark.parametrize("assignment", sorted(REGISTRY))
def test_headings_state_the_points_of_the_metadata(assignment):
    """"## 1. ... (4 points)" is what students read: all the points of the answer below it (its
    visible and hidden test cells', or a written answer's own), as the metadata has them; so
    the headings add up to the notebook's total, what the gradebook grades it out of."""
    nb = course.read_solution(course.SOLUTIONS / assignment / f"{assignment.split('_', 1)[1]}.md")
    stated, checked, headings = None, 0, 0.0
    for cell in nb.cells:
        heading = re.match(r"## \d+\. .*\((\d+(?:\.\d+)?) points?", cell.source) if cell.cell_type == "markdown" else None
        if heading:
            stated = float(heading.group(1))
        if cells.is_solution(cell) and stated is not None:
            name = cells.cell_name(cell)
            # Summed here from the cells themselves, not with course.total_points, which is checked against it.
            want = sum(cells.points(c) for c in nb.cells if cells.is_grade(c)
                       and cells.grade_cells(nb.cells)[cells.cell_name(c)].problem == name)
            assert stated == want, (f"{assignment}: the heading above {name} says {stated:g} points; its test "
                                    f"cells (visible and hidden) are worth {want:g} in the metadata")
            assert course.total_points(assignment, name) == want
            stated, checked, headings = None, checked + 1, headings + want
    assert checked == len([c for c in nb.cells if cells.is_solution(c)])
    assert headings == sum(cells.points(c) for c in nb.cells if cells.is_grade(c))


def test_a_test_cell_without_an_answer_above_it_is_an_error():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("assert True", metadata={"nbgrader": {
        "grade": True, "solution": False, "locked": True, "grade_id": "lonely_test", "points": 1}})])
    with pytest.raises(cells.ProtocolError, match="lonely_test.*answer cell above it"):
        cells.grade_cells(nb.cells)


def test_a_checks_module_that_breaks_the_contract_is_named():
    import types

    broken = types.ModuleType("autograder.checks.a99_broken")
    with pytest.raises(checks.ContractError, match="a99_broken does not define PROBLEMS"):
        checks.Checks.of_module(broken)
    broken.PROBLEMS = {"f": "not a problem"}
    with pytest.raises(checks.ContractError, match=r"a99_broken.PROBLEMS\['f'\] must be a core.Problem"):
        checks.Checks.of_module(broken)
    assert checks.assignment_of("autograder.checks.a99_broken") == "99_broken"


@pytest.mark.parametrize("source,allowed,expected", [
    ("import torch\n", [], "torch"),
    ("x = 1  # the same rule as torch.optim.Adam\n", [], None),
    ("msg = 'unlike optimkit, this is mine'\n", [], None),
    ("from optimkit.rules import adam_update\n", [], "optimkit"),
    ("from optimkit.digits import MLP, load_digits_split\n", ["optimkit.digits"], None),
    ("from optimkit import digits\nd = digits.load_digits_split()\n", ["optimkit.digits"], None),
    ("from optimkit import Adam\n", ["optimkit.digits"], "optimkit"),
    ("import optimkit\nopt = optimkit.Adam\n", ["optimkit.digits"], "optimkit"),
    ("def f(:\n    optimkit.rules  # broken code still scanned\n", [], "optimkit"),
    ("from descent.variants import AdamVariant\n", [], "descent"),
    ("import descent.variants as v\n", [], "descent"),
    ("descent = lr * grad\ntheta = theta - descent\n", [], None),
])
def test_the_forbidden_use_scan_reads_code_not_comments(source, allowed, expected):
    from autograder.grading import forbidden_use

    assert forbidden_use(source, allowed) == expected


@pytest.mark.parametrize("assignment", ["08_capstone", "07_clipping_landscapes"])
def test_numbers_written_in_checks_agree_with_optimkit(assignment):
    """Checks that write numbers of optimkit's down (the capstone's training budget, the
    landscapes' Hessians) compare them with optimkit itself; this runs that comparison."""
    checks.of(assignment).module.check_against_optimkit()


def test_the_verdict_names_the_problems_total_not_only_its_hidden_points(capsys):
    """Feedback and the CSV agree: the hidden cell's verdict says its points are part of the
    problem's total (visible and hidden test cells), which is the CSV's column maximum."""
    namespace = {"np": np}
    exec(demo.reference_answers("04_adam", "adam")["adam_step"], namespace)  # noqa: S102
    score = checks.score_answer("04_adam", "adam_step", namespace["adam_step"], seed=0)
    hidden, total = course.points("04_adam", "adam_step"), course.total_points("04_adam", "adam_step")
    assert total > hidden
    head = capsys.readouterr().out.splitlines()[0]
    assert head == (f"adam_step, hidden checks: {score:.2f} / {hidden:g} points (of the problem's {total:g}; "
                    f"its visible tests give the other {total - hidden:g})"), head
