"""Runs one submission inside the sandbox and reports what happened, as data.

    (in the sandbox) python -m autograder.runner      # stdin/stdout: autograder.wire frames

The grader sends a plan: the notebook's code cells in order, each with its role:

* ``code``    -- run it (the student's answers and cells, our set-up cells);
* ``visible`` -- a visible test cell: run it with the notebook's functions wrapped by
  recorders, so the grader can replay the cell against the recorded outputs;
* ``hidden``  -- a hidden check: run its visible part like a visible test, then *serve* the
  named function: the grader drives it call by call over the channel (the secret inputs
  arrive one call at a time), and judges the answers in its own process.

This process holds no checks module, no reference and no secret seed: only this file,
``wire.py`` and ``checks/core.py`` are mounted. Nothing it says is trusted. It reports
``ready`` before any student code runs (so a sandbox that cannot start is told apart from
a notebook that crashes), ``preloaded`` once the assignment's packages are imported and the
address space is capped to the notebook's budget (so a package that cannot load is not a
grade either), then one ``started`` line and one record per cell as soon as the
cell finishes, so the grader knows where a notebook that hung or died stopped.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import re
import resource
import signal
import traceback
import types

OUTPUT_CAP = 20_000  # characters of output kept per cell


class CellTimeout(BaseException):
    """Raised by the per-cell timer (a BaseException so `except Exception` cannot eat it)."""


def _on_alarm(signum, frame):
    raise CellTimeout()


class _Capped(io.StringIO):
    """Keeps the first OUTPUT_CAP characters; later writes cost almost nothing."""

    full = False

    def write(self, text):
        if not self.full:
            room = OUTPUT_CAP - self.tell()
            super().write(text[:room])
            self.full = len(text) >= room
        return len(text)


def _call_dicts(transcript) -> list[dict]:
    return [{"output": c.output, "error": c.error, "mutated": list(c.mutated), "inputs": c.inputs,
             "args": c.args, "after": c.after} for c in transcript.calls]


def _serve(fn, reader, send, handles) -> None:
    """Answer the grader's calls of ``fn`` until it says "end"."""
    from autograder import wire
    from autograder.checks import core

    while True:
        # The cell's timer stops while the grader computes its next call: the grader's time
        # (a slow or busy grading host) is not the student's.
        left = signal.setitimer(signal.ITIMER_REAL, 0)[0]
        try:
            message = reader.read(handles=handles)
        finally:
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))
        if message.get("op") != "call":
            return
        kwargs = message.get("data") or {}
        before = {k: core.copy_value(v) for k, v in kwargs.items()}
        reply = {"op": "return", "error": None}
        try:
            output = fn(**kwargs)
            changed = {k: kwargs[k] for k in kwargs if not core.unchanged(kwargs[k], before[k])}
            reply["data"] = {"output": output, "after": changed}
        except CellTimeout:
            reply["error"] = "TimeoutError: the cell ran longer than its time limit and was stopped"
            send(reply)
            raise
        except BaseException as exc:  # noqa: BLE001 - any failure of student code is data
            reply["error"] = f"{type(exc).__name__}: {exc}"[:300]
        try:
            send(reply, handles)
        except wire.WireError as exc:
            send({"op": "return", "error": f"TypeError: the result cannot be checked: {exc}"})


def main() -> int:
    from autograder import wire
    from autograder.checks import core

    # fd 1 becomes the log (stderr); the channel to the grader is a private copy of the old stdout.
    channel = os.dup(1)
    os.dup2(2, 1)
    reader = wire.Reader(0, trusted=True)

    def send(message, handles=None):
        wire.send(channel, message, handles)

    import numpy  # noqa: F401 - loaded once, before any student cell
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="NoColor")
    shell.InteractiveTB.set_mode("Plain")
    signal.signal(signal.SIGALRM, _on_alarm)
    send({"ready": True})
    plan = reader.read()
    skip = set(plan.get("skip", []))
    for module in plan.get("preload", []):  # the assignment's packages (torch), before any cell's clock
        importlib.import_module(module)
    if plan.get("memory"):
        _cap_address_space(int(plan["memory"]))
    send({"preloaded": True})
    handles: dict = {}  # objects a served function returned that are not plain data (its state)

    for cell in plan["cells"]:
        record = {"id": cell["id"], "role": cell["role"], "stdout": "", "error": None}
        calls = {}
        if cell["id"] in skip:
            record["error"] = ("SkippedCell: this cell stopped the whole notebook (it hung past the time "
                               "limit or crashed the process), so it was skipped when the notebook was re-run")
            send(record)
            continue
        send({"id": cell["id"], "started": True})
        out = _Capped()
        signal.setitimer(signal.ITIMER_REAL, plan["cell_timeout"])
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                if cell["role"] in ("visible", "hidden"):
                    # Test code (ours) runs with the notebook's functions that it names wrapped
                    # by recorders; for a hidden cell, that is the part before the hidden region.
                    recorders = {}
                    for name in set(re.findall(r"[A-Za-z_]\w*", cell["source"])):
                        value = shell.user_ns.get(name)
                        if isinstance(value, types.FunctionType) and value.__module__ == "__main__":
                            recorders[name] = core.Recorder(value, ())
                            shell.user_ns[name] = recorders[name]
                    try:
                        result = shell.run_cell(cell["source"], store_history=False, silent=True)
                    finally:
                        for name, recorder in recorders.items():
                            shell.user_ns[name] = recorder.fn
                            calls[name] = _call_dicts(recorder.transcript)
                    if not result.success:
                        record["error"] = _describe(result)
                    if cell["role"] == "hidden":
                        fn = shell.user_ns.get(cell["problem"])
                        send({"id": cell["id"], "serve": cell["problem"], "callable": callable(fn),
                              "kind": type(fn).__name__})
                        if callable(fn):
                            _serve(fn, reader, send, handles)
                else:
                    result = shell.run_cell(cell["source"], store_history=False, silent=True)
                    if not result.success:
                        record["error"] = _describe(result)
        except CellTimeout:
            record["error"] = f"TimeoutError: the cell ran longer than {plan['cell_timeout']} s and was stopped"
        except (wire.Closed, wire.WireError):
            return 1  # the grader went away or spoke nonsense: nothing left to report to
        except BaseException as exc:  # noqa: BLE001 - keep reporting whatever student code did
            record["error"] = f"{type(exc).__name__}: {exc}"[:500]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        record["stdout"] = out.getvalue()
        try:
            send(dict(record, data={"calls": calls}))
        except wire.WireError as exc:  # e.g. a recorded value nested absurdly deep
            send(dict(record, error=f"the test's calls could not be recorded: {exc}"))
    send({"done": True})
    return 0


def _cap_address_space(budget: int) -> None:
    """Lower the address-space limit to what is mapped now (Python, NumPy, IPython and the
    assignment's packages) plus ``budget``, the notebook's own; never above the limit the
    sandbox started with (a process may lower its limits, not raise them)."""
    with open("/proc/self/status") as status:
        mapped = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    cap = mapped + budget if hard == resource.RLIM_INFINITY else min(hard, mapped + budget)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def _describe(result) -> str:
    error = result.error_in_exec or result.error_before_exec
    if isinstance(error, CellTimeout):
        return "TimeoutError: the cell ran too long and was stopped"
    return "".join(traceback.format_exception_only(type(error), error)).strip()[:500]


if __name__ == "__main__":
    try:
        code = main()
    except BaseException:  # noqa: BLE001 - the log tail is what the grader shows
        traceback.print_exc()
        code = 1
    os._exit(code)  # no atexit hooks of student code
