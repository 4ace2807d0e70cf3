"""Assignment 09 is written with torch: torch is allowed there (and mounted in its sandbox) and
nowhere else; optimkit and descent stay forbidden in 09 too. The checks' oracle is optimkit's
LAMB, itself checked against optax.lamb in tests/core/test_beyond.py."""

from __future__ import annotations

import numpy as np
import pytest

from autograder import checks, sandbox
from autograder.checks import a09_torch_optimizer as a09
from autograder.checks import core
from autograder.grading import forbidden_use

PROBLEM = a09.lamb_steps


def _function(code: str):
    namespace = {"np": np}
    exec(compile(code, "<answer>", "exec"), namespace)  # noqa: S102 - our own test code
    return namespace["lamb_steps"]


def test_torch_is_allowed_in_09_only():
    assert checks.of("09_torch_optimizer").packages == ("torch",)
    assert "torch" in checks.of("09_torch_optimizer").allowed_imports
    assert PROBLEM.forbidden == ("optimkit", "descent")
    for assignment, check in checks.modules().items():
        if assignment != "09_torch_optimizer":
            assert check.packages == () and "torch" not in check.allowed_imports, assignment
            assert all(p.forbidden == core.FORBIDDEN for p in check.problems.values())
    assert forbidden_use("import torch\nx = torch.zeros(1)", checks.of("09_torch_optimizer").allowed_imports) is None
    assert forbidden_use("import torch\nx = torch.zeros(1)", checks.of("04_adam").allowed_imports) == "torch"


def test_a_torch_answer_earns_full_marks_and_its_precision_is_far_inside_the_tolerance():
    seed = 11
    verdict = core.judge(PROBLEM, core.record_answer(PROBLEM, _function(a09.CORRECT), seed), seed, 6)
    assert verdict.score == 6
    got, want = core.record(PROBLEM, _function(a09.CORRECT), seed), core.record(PROBLEM, PROBLEM.reference, seed)
    worst = max(float(np.max(np.abs(g - w) / np.maximum(np.abs(w), 1e-300)))
                for c, r in zip(got.calls, want.calls) for gs, ws in zip(c.output, r.output) for g, w in zip(gs, ws))
    assert worst < 1e-12 < a09.RTOL * 1e-2  # 3e-14 measured: three decades inside rtol


@pytest.mark.parametrize("code, why", [
    ("import optimkit\n", "optimkit"),
    ("from optimkit.beyond import LAMB as _L\n", "optimkit"),
    ("import descent\n", "descent"),
])
def test_a_09_answer_that_reaches_optimkit_scores_zero(code, why):
    answer = code + a09.CORRECT
    # the grader's source scan, with 09's allowed imports: optimkit and descent are still named
    assert forbidden_use(answer, checks.of("09_torch_optimizer").allowed_imports) == why
    # and in plain nbgrader, the import itself fails while the answer is recorded
    transcript = core.record_answer(PROBLEM, _function(answer.replace(code, "")), 1)
    transcript.forbidden = why
    assert core.judge(PROBLEM, transcript, 1, 6).score == 0


def test_optimkit_cannot_be_imported_while_a_09_answer_runs_but_torch_can():
    code = a09.CORRECT.replace("    tensors = [", "    import optimkit.beyond\n    tensors = [", 1)
    transcript = core.record_answer(PROBLEM, _function(code), 1)
    assert transcript.aborted and "optimkit cannot be imported" in transcript.aborted
    # negative control: the same answer without the import runs (torch is importable)
    assert not core.record_answer(PROBLEM, _function(a09.CORRECT), 1).aborted


def test_the_sandbox_mounts_torch_for_09_only_and_nothing_of_the_project():
    plain = {dest for _, dest in sandbox.mounts()}
    with_torch = {dest for _, dest in sandbox.mounts(("torch",))}
    assert f"{sandbox.SITE}/torch" in with_torch and f"{sandbox.SITE}/torch" not in plain
    assert not any(dest.rsplit("/", 1)[-1] in ("optimkit", "descent", "autograder") for dest in with_torch
                   if dest.startswith(sandbox.SITE))
    with pytest.raises(ValueError, match="can add only torch"):
        sandbox.site_entries(("optimkit",))


def test_in_the_09_sandbox_torch_imports_and_the_reference_is_absent():
    """The real sandbox, as assignment 09's notebook gets it: torch imports; optimkit, the
    checks module and the repository's files are not there."""
    probe = ("import sys, glob, importlib.util; sys.path[:0] = ['/opt/descent/lib', '/opt/descent/site']\n"
             "import torch; print('torch', torch.__version__.split('+')[0])\n"
             "print('optimkit', importlib.util.find_spec('optimkit'))\n"
             "print('a09', importlib.util.find_spec('autograder.checks.a09_torch_optimizer'))\n"
             "print('files', glob.glob('/opt/**/a09_torch_optimizer.py', recursive=True)[:1] + "
             "glob.glob('/opt/**/optimkit', recursive=True)[:1] + glob.glob('/tmp/*')[:1])\n")
    process = sandbox.Process([sandbox.python(), "-I", "-S", "-c", probe], mode=sandbox.detect(),
                              packages=("torch",))
    out = process.popen.stdout.read().decode()
    process.popen.wait()
    assert "torch 2.13.0" in out, process.log_tail
    assert "optimkit None" in out and "a09 None" in out and "files []" in out, out
    # negative control: without 09's packages torch is absent
    process = sandbox.Process([sandbox.python(), "-I", "-S", "-c", probe], mode=sandbox.detect())
    process.popen.stdout.read()
    process.popen.wait()
    assert "No module named 'torch'" in process.log_tail
