"""Grade one notebook: run it in the sandbox, decide every score in this process.

The sandbox (autograder.runner, behind autograder.sandbox) only runs the student's code. Here:

* hidden checks: the drive runs in this process with the secret seed, and calls the
  student's function in the sandbox one call at a time over a pipe (:class:`RemoteFunction`);
  the transcript is judged against optimkit here. The sandbox never holds the seed, the
  drives, the references or optimkit;
* visible test cells are re-run in this process against replay stubs that hand back the
  outputs the student's functions recorded (inputs checked call by call), so a test
  passes only if the recorded outputs really pass it: tampering with NumPy or
  ``assert`` inside the sandbox changes nothing here;
* answers that mention optimkit or torch score zero for that problem (a source scan; torch is
  allowed, and mounted in the sandbox, where the problem's answer is written with it: 09).

The result is written into the notebook as cell outputs that nbgrader's own
``SaveAutoGrades`` turns into grades, so the gradebook, feedback and exports are
nbgrader's. :class:`SandboxExecute` plugs this into ``nbgrader autograde`` in place of
its kernel-based ``Execute``; :class:`RestoreCells` replaces its ``OverwriteCells``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys
import time
import tokenize
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import numpy as np
from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells
from traitlets import Bool, Float, Integer, Unicode

from . import cells, checks, course, sandbox, wire
from .checks import core

# nbgrader 0.9.6's gradebook code triggers SQLAlchemy's autoflush warning on every autograde
# ("Object of type <SubmittedAssignment> not in session"); harmless, and it buries real messages.
warnings.filterwarnings("ignore", message=r"Object of type <\w+> not in session", category=Warning)

MAX_RESTARTS = 3
OUTPUT_CAP = 20_000  # characters of a cell's output kept (the runner caps it too)
CELL_GRACE = 2.0  # seconds past a cell's limit before the grader stops the notebook itself


class SandboxError(RuntimeError):
    """The sandbox itself failed; the submission could not be graded (not scored zero)."""


@dataclass
class Settings:
    seed: int
    isolation: str
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    slot: int = 0
    hidden_paths: list | None = None  # extra paths to hide (inbox, outputs)


IMPORT = re.compile(r"^\s*(?:from|import)\s+(\w+)", re.M)
WORD_OK = ("descent",)  # forbidden to import, but fine as a name of one's own


def forbidden_use(source: str, allowed: list[str] = ()) -> str | None:
    """The forbidden module (optimkit, descent, torch) a cell's *code* names; comments and
    strings do not count. Modules in ``allowed`` (e.g. "optimkit.digits") may be named."""
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
    # "descent" is also a word students name variables with: only importing it counts
    imported = {m.group(1) for m in IMPORT.finditer(re.sub(r"#.*", "", source))}
    return next((n for n in names if n in core.FORBIDDEN and (n in imported or n not in WORD_OK)), None)


def _role(cell, not_run=(), allowed=()) -> str:
    if cells.is_test(cell):
        return "hidden" if cells.is_hidden_test(cell) else "visible"
    if cells.is_locked(cell) and not cells.is_solution(cell) and (
            forbidden_use(cell.source, allowed) or cells.cell_name(cell) in not_run):
        return "display"  # our own cells that use optimkit (absent from the sandbox), or what they define
    return "code"


def _hidden_problem(cell, assignment: str) -> str | None:
    """The problem a hidden test cell checks, as solutions/ declares it (None for a cell the
    source does not have, e.g. one whose id the student changed: it runs as a visible test)."""
    declared = course.grade_cells(assignment).get(cells.cell_name(cell))
    if declared is None or not declared.hidden:
        return None
    if declared.problem not in checks.of(assignment).problems:
        raise cells.ProtocolError(f"{cells.cell_name(cell)} is a hidden test of {declared.problem!r}, which "
                                  f"{checks.of(assignment).module.__name__}.PROBLEMS does not define")
    return declared.problem


def make_plan(nb, assignment: str, settings: Settings) -> dict:
    plan_cells = []
    not_run = checks.of(assignment).not_run_when_grading
    packages = checks.of(assignment).packages
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        role = _role(cell, not_run, packages)
        if role == "display":
            continue
        entry = {"id": cells.cell_name(cell) or f"cell-{index}", "index": index, "role": role, "source": cell.source}
        if role == "hidden":
            entry["problem"] = _hidden_problem(cell, assignment)
            if entry["problem"] is None:
                entry["role"] = "visible"
            else:
                entry["source"] = cells.visible_part(cell.source)
        plan_cells.append(entry)
    # Sent into the sandbox: no seed, no reference, nothing but what the runner needs.
    # "packages": what the sandbox mounts for this assignment besides NumPy, IPython, matplotlib.
    return {"assignment": assignment, "cells": plan_cells, "packages": list(packages),
            "preload": [m for p in packages for m in sandbox.PRELOAD.get(p, (p,))],
            "memory": settings.limits.memory, "cell_timeout": settings.limits.cell_timeout, "allowed_imports": checks.of(assignment).allowed_imports}


class RemoteFunction:
    """The student's function, called in the sandbox: the grader's drive passes each call's
    inputs over the channel and gets the output back. In-place changes the call made to its
    inputs are copied onto the grader's arrays, so the recorder sees them as mutations."""

    def __init__(self, session: "Session"):
        self.session = session

    def __call__(self, **kwargs):
        reply = self.session.call(kwargs)
        if reply.get("error"):
            raise core.StudentError(str(reply["error"])[:300])
        data = reply.get("data")
        if not isinstance(data, dict) or "output" not in data:
            raise core.StudentError("ProtocolError: the sandbox answered a call with something else")
        after = data.get("after") if isinstance(data.get("after"), dict) else {}
        for name, value in after.items():
            if name in kwargs:
                _assign_into(kwargs[name], value)
        return data["output"]


def _assign_into(target, value) -> None:
    if isinstance(target, np.ndarray) and isinstance(value, np.ndarray) and target.shape == value.shape \
            and target.flags.writeable:
        target[...] = value
    elif isinstance(target, list) and isinstance(value, (list, tuple)) and len(target) == len(value):
        for i, (t, v) in enumerate(zip(target, value)):
            if isinstance(t, (np.ndarray, list)):
                _assign_into(t, v)
            else:
                target[i] = v


class Session:
    """One run of the runner in the sandbox, talked to over its stdin/stdout."""

    def __init__(self, settings: "Settings", packages: tuple[str, ...] = ()):
        self.settings = settings
        self.deadline = time.monotonic() + settings.limits.wall_clock
        self.cell_deadline: float | None = None  # set while a cell runs: a cell deaf to its timer
        # (signals ignored) is stopped from here, a little after the runner's own timer
        self.process = sandbox.Process(sandbox.python_argv("autograder.runner", settings.isolation), slot=settings.slot,
                                       mode=settings.isolation, limits=settings.limits, packages=packages)
        self.reader = wire.Reader(self.process.stdout, trusted=False)
        self.pending: list[dict] = []  # messages that arrived while a call waited for its answer
        self.served_at: float | None = None  # when the sandbox last answered a call (or asked to serve)

    def send(self, message: dict) -> None:
        try:
            wire.send(self.process.stdin, message)
        except (BrokenPipeError, OSError):
            raise wire.Closed() from None

    def _deadline(self) -> float:
        return min(self.deadline, self.cell_deadline or self.deadline)

    def read(self) -> dict:
        if self.pending:
            return self.pending.pop(0)
        return self.reader.read(self._deadline())

    def call(self, kwargs: dict) -> dict:
        if self.cell_deadline is not None and self.served_at is not None:
            # the time the drive spent here since the last answer is the grader's, not the cell's
            self.cell_deadline += time.monotonic() - self.served_at
        self.send({"op": "call", "data": kwargs})
        message = self.reader.read(self._deadline())
        self.served_at = time.monotonic()
        if message.get("op") != "return":
            self.pending.append(message)  # e.g. the cell's record after its timer fired
            return {"error": "TimeoutError: the cell stopped before this call returned"}
        return message


def _drive_remote(session: Session, problem, settings: "Settings") -> core.Transcript:
    """Run ``problem``'s drive here, in the grader, against the student's function in the sandbox."""
    transcript = core.record(problem, RemoteFunction(session), settings.seed)
    session.send({"op": "end"})
    return transcript


def _expect(session: Session, key: str, failure: str) -> None:
    """The runner's next message must be ``{key: True}``, which it sends before any student code
    runs; anything else is the sandbox failing, a :class:`SandboxError` and never a grade."""
    try:
        message = session.read()
    except (wire.Closed, wire.TimedOut, wire.WireError):
        message = None
    if not message or message.get(key) is not True:
        session.process.kill()
        raise SandboxError(f"{failure} (exit code {session.process.popen.returncode}): "
                           f"{_summarize(session.process.log_tail)}")


def _run_once(plan: dict, settings: "Settings", problems: dict) -> tuple[dict, set, bool, dict]:
    """One sandbox run: (records by cell id, ids started, finished?, what happened)."""
    records, started, done = {}, set(), False
    what = {"timed_out": False, "crashed": False, "corrupt": None, "returncode": None, "log": ""}
    session = Session(settings, tuple(plan.get("packages", ())))
    try:
        _expect(session, "ready", "the sandbox did not start")
        session.send(plan)
        # The assignment's packages load before any student code: failing there (e.g. out of
        # address space) is the environment's doing, never a grade.
        _expect(session, "preloaded", f"the sandbox could not load {', '.join(plan.get('preload') or ['its packages'])}")
        transcripts = {}
        hidden = {c["id"]: c.get("problem") for c in plan["cells"] if c["role"] == "hidden"}
        while True:
            message = session.read()
            if message.get("done") is True:
                done = True
                break
            cell_id = message.get("id")
            if not isinstance(cell_id, str):
                continue
            if message.get("started") is True:
                started.add(cell_id)
                session.cell_deadline = time.monotonic() + settings.limits.cell_timeout + CELL_GRACE
            elif "serve" in message:
                # Only the plan's hidden cell, for the plan's problem, once: the sandbox picks nothing.
                problem = problems.get(hidden.get(cell_id))
                if problem is None or cell_id in transcripts or message["serve"] != problem.name:
                    continue
                if message.get("callable"):
                    session.served_at = time.monotonic()
                    transcripts[cell_id] = _drive_remote(session, problem, settings)
                    session.served_at = None
                else:
                    transcripts[cell_id] = core.Transcript(
                        aborted=f"{problem.name} is not a function (got {str(message.get('kind'))[:40]})")
            elif "role" in message:
                data = message.get("data") if isinstance(message.get("data"), dict) else {}
                calls = data.get("calls") if isinstance(data.get("calls"), dict) else {}
                session.cell_deadline = None
                records[cell_id] = {"id": cell_id, "role": message["role"],
                                    "stdout": str(message.get("stdout") or "")[:OUTPUT_CAP],
                                    "error": str(message["error"])[:500] if message.get("error") else None,
                                    "calls": {str(k): _calls(v) for k, v in calls.items()}}
                if cell_id in transcripts:
                    records[cell_id]["transcript"] = transcripts.pop(cell_id)
    except wire.TimedOut:
        what["timed_out"] = True
        what["cell_timed_out"] = session.cell_deadline is not None and time.monotonic() < session.deadline
    except wire.Closed:
        what["crashed"] = True
    except wire.WireError as exc:
        what["corrupt"] = str(exc)
    finally:
        session.process.kill()
    what["returncode"] = session.process.popen.returncode
    what["log"] = session.process.log_tail
    return records, started, done, what


def _calls(raw) -> list:
    """Recorded calls from the sandbox, as core.Call objects (malformed entries dropped)."""
    out = []
    for c in raw if isinstance(raw, list) else []:
        if not isinstance(c, dict):
            continue
        inputs = c.get("inputs") if isinstance(c.get("inputs"), dict) else {}
        after = c.get("after") if isinstance(c.get("after"), dict) else {}
        args = c.get("args") if isinstance(c.get("args"), (list, tuple)) else []
        error = c.get("error")
        out.append(core.Call(output=c.get("output"), error=str(error)[:300] if error else None,
                             mutated=[str(m) for m in c.get("mutated") or [] if isinstance(m, str)],
                             inputs=inputs, args=list(args), after=after))
    return out


def run_in_sandbox(plan: dict, settings: Settings, problems: dict | None = None) -> tuple[dict, list[str]]:
    """Records per cell id, and notes (timeouts, crashes) about the run."""
    problems = problems if problems is not None else checks.of(plan["assignment"]).problems
    notes, skip, records = [], [], {}
    for attempt in range(MAX_RESTARTS + 1):
        records, started, done, what = _run_once(dict(plan, skip=skip), settings, problems)
        if done:
            break
        hung = started - set(records)  # started but never reported: where it stopped
        if what.get("cell_timed_out"):
            notes.append(f"a cell ran past its {settings.limits.cell_timeout:g} s limit without stopping "
                         f"(it ignored the interrupt), so the notebook was stopped (all its processes killed)")
        elif what["timed_out"]:
            notes.append(f"the notebook ran past its {settings.limits.wall_clock:g} s limit and was "
                         f"stopped (all its processes killed)")
        elif what["corrupt"]:
            notes.append(f"the notebook wrote garbage into the grader's channel ({what['corrupt']}); "
                         f"its later cells were not graded")
            break
        else:
            notes.append(f"the notebook's process ended early (exit code {what['returncode']}): "
                         f"{_summarize(what['log'])}")
        if not hung or attempt == MAX_RESTARTS:
            break
        skip += sorted(hung)
        notes.append(f"re-ran it without the cell(s) {', '.join(sorted(hung))}, which did not finish")
    return records, notes


def _summarize(log_tail: str) -> str:
    lines = [line for line in log_tail.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "it crashed or hit a resource limit (memory, processes or file size)"


def replay_visible(source: str, calls: dict, setup: list[str]) -> str | None:
    """Run our visible test ``source`` here against recorded calls; None if it passes."""
    namespace = {"np": np, "__name__": "__visible__"}
    try:
        for code in setup:
            exec(compile(code, "<setup>", "exec"), namespace)  # noqa: S102 - our own cells
        for name, raw in calls.items():
            namespace[name] = core.Replay(name, raw)
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
    problems = checks.of(assignment).problems
    plan = make_plan(nb, assignment, settings)
    records, notes = run_in_sandbox(plan, settings, problems)
    by_index = {entry["index"]: entry for entry in plan["cells"]}
    allowed = checks.of(assignment).allowed_imports
    solution_text = {cells.cell_name(c): c.source for c in nb.cells if c.cell_type == "code" and cells.is_solution(c)}
    extra_mentions = [forbidden_use(c.source, allowed) for c in nb.cells
                      if c.cell_type == "code" and not cells.is_nbgrader(c) and forbidden_use(c.source, allowed)]
    # Set-up for replaying tests here: the notebook's set-up cells that ran in the sandbox as
    # plain code (imports, constants), never a cell that runs student code.
    setup = [by_index[i]["source"] for i in cells.setup_cells(nb.cells) if by_index.get(i, {}).get("role") == "code"]
    summary = {"problems": {}, "notes": notes, "mistakes": {}}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        cell.outputs, cell.execution_count = [], None
        entry = by_index.get(index)
        if entry is None:  # a display cell: not run when grading
            cell.outputs = [_stream("(not run when grading: this cell uses optimkit, which graded code "
                                    "cannot import, or what such a cell defines; run it yourself in "
                                    "JupyterLab)\n")]
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
                                           allowed, setup, settings, summary,
                                           course.grade_cells(assignment)[entry["id"]].points,
                                           course.total_points(assignment, entry["problem"]))
    return nb, summary


def _hidden_outputs(entry, record, problems, solution_text, extra_mentions, allowed, setup,
                    settings, summary, points, total):
    problem = problems[entry["problem"]]
    prefix_failure = record.get("error") or (
        replay_visible(entry["source"], record.get("calls", {}), setup) if entry["source"].strip() else None)
    if prefix_failure and "transcript" not in record:
        summary["problems"][problem.name] = 0.0
        return [_error(prefix_failure)]
    transcript = record.get("transcript") or core.Transcript(aborted="the hidden check did not run")
    mention = forbidden_use(solution_text.get(problem.name, "") or "", allowed)
    if mention or extra_mentions:
        transcript.forbidden = mention or extra_mentions[0]
    verdict = core.judge(problem, transcript, settings.seed, points)  # driven here: nothing to verify
    verdict.total = total  # the feedback says the problem's points as its heading and the CSV do
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
            digest.update(json.dumps(cells.metadata(cell), sort_keys=True).encode())
    return digest.hexdigest()


class RestoreCells(OverwriteCells):
    """nbgrader's OverwriteCells, with deleted grade cells put back where they were.

    nbgrader 0.9.6 puts a deleted grade cell after the source cell just before it, and fails
    (``KeyError``) when that cell is not a grade or solution cell, e.g. a locked cell between an
    answer and its hidden test (the capstone's ``try_it``). Here a deleted cell goes after the
    nearest earlier source cell that the submission still has (any cell with an nbgrader id),
    or first when there is none; indices are looked up afresh for every insertion.
    """

    def add_missing_grade_cells(self, nb, resources):
        source_nb = self.gradebook.find_notebook(self.notebook_id, self.assignment_id)
        source_cells = source_nb.source_cells
        order = [cell.name for cell in source_cells]
        solutions = {cell.name for cell in source_nb.solution_cells}
        for grade_cell in source_nb.grade_cells:
            present = {cells.cell_name(c): i for i, c in enumerate(nb.cells) if cells.cell_name(c)}
            if grade_cell.name in present:
                continue
            self.log.warning("Missing grade cell %s encountered, adding to notebook", grade_cell.name)
            index = order.index(grade_cell.name)
            cell = self.missing_cell_transform(source_cells[index], grade_cell.max_score,
                                               is_solution=grade_cell.name in solutions)
            cell["id"] = re.sub(r"[^A-Za-z0-9_-]", "-", f"restored-{grade_cell.name}")[:64]  # nbformat 4.5
            before = next((present[name] for name in reversed(order[:index]) if name in present), -1)
            nb.cells.insert(before + 1, cell)
        return nb, resources


class SandboxExecute(NbGraderPreprocessor):
    """nbgrader's Execute, replaced: the notebook runs in the sandbox, scores are decided here.

    When the grading pipeline already graded this exact notebook (same code, same seed),
    its result is taken from ``cache_dir``; plain ``nbgrader autograde`` grades it now.
    """

    seed = Integer(0, help="Secret seed of the hidden checks (0: read from seed_file)").tag(config=True)
    seed_file = Unicode("", help="The course's seed file (made when missing), shared with the pipeline").tag(config=True)
    isolation = Unicode("", help="user, userns or none (empty: the strongest available)").tag(config=True)
    allow_unsandboxed = Bool(False, help="Grade with isolation 'none' (never for untrusted code)").tag(config=True)
    cache_dir = Unicode("", help="Where the pipeline leaves graded notebooks").tag(config=True)
    cell_timeout = Float(30.0).tag(config=True)
    wall_clock = Float(120.0).tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        seed = self.seed or (course_seed(Path(self.seed_file)) if self.seed_file else 0)
        if not seed:
            raise ValueError("no grading seed: set SandboxExecute.seed_file (nbgrader_config.py does)")
        key = notebook_key(nb, seed)
        cached = Path(self.cache_dir) / f"{key}.ipynb" if self.cache_dir else None
        if cached and cached.exists():
            return nbformat.read(cached, as_version=4), resources
        isolation = self.isolation or sandbox.detect()
        check_isolation(isolation, self.allow_unsandboxed)
        settings = Settings(seed=seed, isolation=isolation,
                            limits=sandbox.Limits(cell_timeout=self.cell_timeout, wall_clock=self.wall_clock))
        nb, summary = grade_notebook(nb, info["assignment"], settings)
        for note in summary["notes"]:
            self.log.warning("%s/%s: %s", info["student"], info["assignment"], note)
        return nb, resources


def check_isolation(mode: str, allow_unsandboxed: bool = False) -> None:
    """Refuse to grade where the sandbox cannot run (an environment problem, said once, clearly)."""
    if mode == "none":
        if not allow_unsandboxed:
            raise sandbox.SandboxUnavailable(
                "no sandbox: " + (sandbox.problem("userns") or "isolation 'none' was asked for") +
                ". Grading untrusted code without one needs --isolation none --allow-unsandboxed.")
        return
    why = sandbox.problem(mode)
    if why:
        raise sandbox.SandboxUnavailable(f"the '{mode}' sandbox cannot run here: {why}")


def course_seed(path: Path) -> int:
    """The course's secret seed, kept in ``path`` (created once, readable by its owner only):
    the pipeline and nbgrader's own commands read the same one."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".seed.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(str(int.from_bytes(os.urandom(4), "little") or 1))
        try:
            os.link(tmp, path)  # atomic: of two graders starting together, one seed wins
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return int(path.read_text().strip())
