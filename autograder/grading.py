"""Grade one notebook: run it in the sandbox, decide every score in this process.

The sandbox (autograder.runner) only reports what the student's code did. Here:

* visible test cells are re-run in this process against replay stubs that hand back the
  outputs the student's functions recorded (inputs checked call by call), so a test
  passes only if the recorded outputs really pass it: tampering with NumPy or
  ``assert`` inside the sandbox changes nothing here;
* hidden checks: the transcript is replayed against this process's own drive
  (secret inputs verified) and judged against optimkit;
* answers that mention optimkit or torch score zero for that problem (source scan here,
  plus the sandbox's own block).

The result is written into the notebook as cell outputs that nbgrader's own
``SaveAutoGrades`` turns into grades, so the gradebook, feedback and exports are
nbgrader's. :class:`SandboxExecute` plugs this into ``nbgrader autograde`` in place of
its kernel-based ``Execute``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sys
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Float, Integer, Unicode

from . import sandbox
from .checks import core, registry

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
GRADE_CALL = re.compile(r'grade\("(\w+)"')
JOBS = Path("/var/tmp/descent-grading")
MAX_RESTARTS = 3


class SandboxError(RuntimeError):
    """The sandbox itself failed; the submission could not be graded (not scored zero)."""


@dataclass
class Settings:
    seed: int
    isolation: str
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    slot: int = 0
    hidden_paths: list | None = None  # extra paths to hide (inbox, outputs)


def forbidden_use(source: str, allowed: list[str] = ()) -> str | None:
    """The forbidden module (optimkit, torch) a cell's *code* names; comments and strings do
    not count. Modules in ``allowed`` (e.g. "optimkit.digits") may be named."""
    for module in allowed:
        package, _, name = module.rpartition(".")
        source = re.sub(rf"\b{re.escape(module)}\b", "", source)
        if package:
            source = re.sub(rf"\bfrom\s+{re.escape(package)}\s+import\s+{re.escape(name)}\b", "", source)
    try:
        names = [t.string for t in tokenize.generate_tokens(io.StringIO(source).readline)
                 if t.type == tokenize.NAME]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        names = re.findall(r"\w+", re.sub(r"#.*", "", source))
    return next((n for n in names if n in core.FORBIDDEN), None)


def _role(cell, allowed=()) -> str:
    meta = cell.metadata.get("nbgrader", {})
    if meta.get("grade") and not meta.get("solution"):
        return "hidden" if HIDDEN.search(cell.source) else "visible"
    if meta.get("locked") and not meta.get("solution") and forbidden_use(cell.source, allowed):
        return "display"  # our own cells that show optimkit next to the student's code
    return "code"


def make_plan(nb, assignment: str, settings: Settings) -> dict:
    cells = []
    allowed = getattr(_checks_module(assignment), "ALLOWED_IMPORTS", [])
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        role = _role(cell, allowed)
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell-{index}"
        entry = {"id": grade_id, "index": index, "role": role, "source": cell.source}
        if role == "hidden":
            match = GRADE_CALL.search(HIDDEN.search(cell.source).group(1))
            entry["problem"] = match.group(1) if match else None
            entry["source"] = cell.source[: cell.source.index("### BEGIN HIDDEN TESTS")]
            entry["role"] = "hidden" if match else "visible"
        if role == "display":
            continue
        cells.append(entry)
    module = _checks_module(assignment)
    return {"assignment": assignment, "checks_module": module.__name__, "seed": settings.seed,
            "cells": cells, "cell_timeout": settings.limits.cell_timeout,
            "allowed_imports": getattr(module, "ALLOWED_IMPORTS", [])}


def _checks_module(assignment: str):
    import importlib

    from .checks import registry

    registry()  # imports every checks module once
    for name, module in sys.modules.items():
        if name.startswith("autograder.checks.") and getattr(module, "ASSIGNMENT", None) == assignment:
            return importlib.import_module(name)
    raise KeyError(f"no checks module declares ASSIGNMENT = {assignment!r}")


def run_in_sandbox(plan: dict, settings: Settings) -> tuple[dict, list[str]]:
    """Records per cell id, and notes (timeouts, crashes) about the run."""
    notes, skip, records = [], [], {}
    for attempt in range(MAX_RESTARTS + 1):
        job = sandbox.make_job_dir(JOBS / str(os.getpid()), settings.slot, settings.isolation)
        try:
            plan_now = dict(plan, skip=skip)
            (job / "plan.json").write_text(json.dumps(plan_now))
            sandbox.give_to_sandbox(job / "plan.json", settings.slot, settings.isolation)
            hidden = sandbox.default_hidden() + [Path(p) for p in settings.hidden_paths or []]
            outcome = sandbox.run([sys.executable, "-m", "autograder.runner", str(job)], job,
                                  slot=settings.slot, mode=settings.isolation,
                                  limits=settings.limits, hidden=hidden)
            records, started, done = _read_results(job / "result.jsonl")
        finally:
            shutil.rmtree(job, ignore_errors=True)
        if done:
            break
        if not records and not started and not outcome.timed_out:
            # The runner never reached the first cell: our sandbox failed, not the student.
            raise SandboxError(f"the sandbox did not start (exit code {outcome.returncode}): "
                               f"{_summarize(outcome.log_tail)}")
        hung = started - set(records)  # started but never reported: where it stopped
        if outcome.timed_out:
            notes.append(f"the notebook ran past its {settings.limits.wall_clock:g} s limit and was "
                         f"stopped (all its processes killed)")
        else:
            notes.append(f"the notebook's process ended early (exit code {outcome.returncode}): "
                         f"{_summarize(outcome.log_tail)}")
        if not hung or attempt == MAX_RESTARTS:
            break
        skip += sorted(hung)
        notes.append(f"re-ran it without the cell(s) {', '.join(sorted(hung))}, which did not finish")
    return records, notes


def _summarize(log_tail: str) -> str:
    lines = [line for line in log_tail.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "it crashed or hit a resource limit (memory, processes or file size)"


def _read_results(path: Path):
    records, started, done = {}, set(), False
    if not path.exists():
        return records, started, done
    for line in path.read_text(errors="replace").splitlines():
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(item, dict):
            continue
        if item.get("done") is True:
            done = True
        elif item.get("started") is True and isinstance(item.get("id"), str):
            started.add(item["id"])
        elif isinstance(item.get("id"), str) and "role" in item:
            records[item["id"]] = item
    return records, started, done


class _ReplayFunction:
    """A student's function, played back from what it returned in the sandbox."""

    def __init__(self, name: str, calls: list):
        self.name, self.calls, self.index = name, calls, 0

    def __call__(self, *args, **kwargs):
        if self.index >= len(self.calls):
            raise AssertionError(f"{self.name} was called more often than in your run")
        call = self.calls[self.index]
        self.index += 1
        same = len(args) == len(call.args) and all(core._same_value(a, b) for a, b in zip(args, call.args)) \
            and set(kwargs) == set(call.inputs) and all(core._same_value(kwargs[k], call.inputs[k]) for k in kwargs)
        if not same:
            raise AssertionError(f"{self.name} was called with other arguments than in your run")
        if call.error is not None:
            raise RuntimeError(call.error)
        for key, value in call.after.items():  # reproduce in-place changes the call made
            target = args[int(key[1:])] if key.startswith("#") else kwargs.get(key)
            if isinstance(target, np.ndarray) and isinstance(value, np.ndarray) and target.shape == value.shape:
                target[...] = value
        return core._copy(call.output)


def replay_visible(source: str, calls: dict, setup: list[str]) -> str | None:
    """Run our visible test ``source`` here against recorded calls; None if it passes."""
    namespace = {"np": np, "__name__": "__visible__"}
    try:
        for code in setup:
            exec(compile(code, "<setup>", "exec"), namespace)  # noqa: S102 - our own cells
        for name, raw in calls.items():
            namespace[name] = _ReplayFunction(name, core.transcript_from_json({"calls": raw, "aborted": None,
                                                                               "forbidden": None}).calls)
        with open(os.devnull, "w") as sink:
            stdout, sys.stdout = sys.stdout, sink
            try:
                exec(compile(source, "<visible test>", "exec"), namespace)  # noqa: S102 - our own cell
            finally:
                sys.stdout = stdout
    except AssertionError as exc:
        return f"AssertionError: {exc}"
    except Exception as exc:  # noqa: BLE001 - a failing test is a result
        return f"{type(exc).__name__}: {exc}"
    return None


def _stream(text: str, name: str = "stdout"):
    return nbformat.v4.new_output("stream", name=name, text=text)


def _error(message: str):
    ename, _, evalue = message.partition(": ")
    return nbformat.v4.new_output("error", ename=ename or "Error", evalue=evalue, traceback=[message])


def grade_notebook(nb, assignment: str, settings: Settings) -> tuple[object, dict]:
    """Fill ``nb``'s cells with graded outputs; returns (nb, summary)."""
    problems = registry()[assignment]
    plan = make_plan(nb, assignment, settings)
    records, notes = run_in_sandbox(plan, settings)
    by_index = {entry["index"]: entry for entry in plan["cells"]}
    allowed = getattr(_checks_module(assignment), "ALLOWED_IMPORTS", [])
    solution_text = {}
    extra_mentions = []
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            solution_text[meta.get("grade_id")] = cell.source
        elif cell.cell_type == "code" and not meta and forbidden_use(cell.source, allowed):
            extra_mentions.append(forbidden_use(cell.source, allowed))
    # Set-up for replaying tests here: our locked cells before the first answer (imports,
    # constants), never a cell that runs student code.
    first_answer = min((i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("solution")),
                       default=len(nb.cells))
    setup = [e["source"] for e in plan["cells"] if e["role"] == "code" and e["index"] < first_answer
             and nb.cells[e["index"]].metadata.get("nbgrader", {}).get("locked")]
    summary = {"problems": {}, "notes": notes, "mistakes": {}}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        entry = by_index.get(index)
        if entry is None:  # a display cell: not run when grading
            cell.outputs = [_stream("(not run when grading: this cell uses optimkit, which graded code "
                                    "may not import; run it yourself in JupyterLab)\n")]
            continue
        record = records.get(entry["id"])
        if record is None:
            cell.outputs = [_error("NotRun: this cell did not run (" + ("; ".join(notes) or "no result") + ")")]
            continue
        if record.get("stdout"):
            cell.outputs.append(_stream(record["stdout"][-5000:]))
        if entry["role"] == "code":
            if record.get("error"):
                cell.outputs.append(_error(record["error"]))
        elif entry["role"] == "visible":
            failure = record.get("error") or replay_visible(entry["source"], record.get("calls", {}), setup)
            if failure:
                cell.outputs.append(_error(failure))
        elif entry["role"] == "hidden":
            cell.outputs = _hidden_outputs(entry, record, problems, solution_text, extra_mentions,
                                           allowed, setup, settings, summary)
    return nb, summary


def _hidden_outputs(entry, record, problems, solution_text, extra_mentions, allowed, setup,
                    settings, summary):
    problem = problems[entry["problem"]]
    prefix_failure = record.get("error") or (
        replay_visible(entry["source"], record.get("calls", {}), setup) if entry["source"].strip() else None)
    if prefix_failure and "transcript" not in record:
        summary["problems"][problem.name] = 0.0
        return [_error(prefix_failure)]
    transcript = core.transcript_from_json(record["transcript"])
    mention = forbidden_use(solution_text.get(problem.name, "") or "", allowed)
    if mention or extra_mentions:
        transcript.forbidden = mention or extra_mentions[0]
    verdict = core.judge(problem, transcript, settings.seed, verified=False)
    score = 0.0 if prefix_failure else verdict.score
    summary["problems"][problem.name] = score
    if verdict.matched_variant:
        summary["mistakes"][problem.name] = verdict.matched_variant
    outputs = [_stream(verdict.report() + "\n")]
    if prefix_failure:
        outputs.append(_error(prefix_failure))
    else:
        outputs.append(nbformat.v4.new_output("execute_result", data={"text/plain": repr(score)},
                                              execution_count=None))
    return outputs


def notebook_key(nb, seed: int) -> str:
    """Identifies a submission's code and seed (the cache key between the two grading phases)."""
    digest = hashlib.sha256(str(seed).encode())
    for cell in nb.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode())
            digest.update(json.dumps(cell.metadata.get("nbgrader", {}), sort_keys=True).encode())
    return digest.hexdigest()


class SandboxExecute(NbGraderPreprocessor):
    """nbgrader's Execute, replaced: the notebook runs in the sandbox, scores are decided here.

    When the grading pipeline already graded this exact notebook (same code, same seed),
    its result is taken from ``cache_dir``; plain ``nbgrader autograde`` grades it now.
    """

    seed = Integer(0, help="Secret seed of the hidden checks (0: from DESCENT_GRADING_SEED)").tag(config=True)
    isolation = Unicode("", help="user, userns or none (empty: the strongest available)").tag(config=True)
    cache_dir = Unicode("", help="Where the pipeline leaves graded notebooks").tag(config=True)
    cell_timeout = Float(30.0).tag(config=True)
    wall_clock = Float(120.0).tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        seed = self.seed or int(os.environ.get(core.SEED_ENV, "0") or 0)
        if not seed:
            raise ValueError(f"no grading seed: set {core.SEED_ENV} or SandboxExecute.seed")
        key = notebook_key(nb, seed)
        cached = Path(self.cache_dir) / f"{key}.ipynb" if self.cache_dir else None
        if cached and cached.exists():
            return nbformat.read(cached, as_version=4), resources
        settings = Settings(seed=seed, isolation=self.isolation or sandbox.detect(),
                            limits=sandbox.Limits(cell_timeout=self.cell_timeout, wall_clock=self.wall_clock))
        if settings.isolation == "none":
            self.log.warning(sandbox.WARNING_NONE)
        nb, summary = grade_notebook(nb, info["assignment"], settings)
        for note in summary["notes"]:
            self.log.warning("%s/%s: %s", info["student"], info["assignment"], note)
        return nb, resources
