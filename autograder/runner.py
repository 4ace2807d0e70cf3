"""Runs one submission inside the sandbox and reports what happened, as data.

    python -m autograder.runner JOB_DIR

``JOB_DIR/plan.json`` (written by the grader) lists the notebook's code cells in
order, each with its role:

* ``code``    -- run it (the student's answers and cells, our set-up cells);
* ``visible`` -- a visible test cell: run it with the problem functions wrapped by
  recorders, so the grader can replay the cell against the recorded outputs;
* ``hidden``  -- a hidden check: probe the named problem with the secret seed.

Results go to ``JOB_DIR/result.jsonl``, one line per cell as soon as it finishes, so a
notebook stopped by the wall clock still reports every cell before the one that hung
(the grader then re-runs it with that cell skipped, ``plan["skip"]``). Nothing here is trusted by the grader: it
re-checks every recorded call in its own process. This process only has to keep
going when student code misbehaves: per-cell timeouts, captured and capped output,
and optimkit/torch made unimportable for the whole run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import sys
import traceback
import types
from pathlib import Path

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


def _block_imports(allowed: list[str]):
    from autograder.checks import core

    # An allowed module's whole top-level package is importable: a package's __init__ imports
    # its siblings (optimkit.digits needs optimkit). The grader's scan of the answers' code
    # still forbids naming anything but the allowed module.
    roots = {a.split(".")[0] for a in allowed}

    class Blocker(core._BlockImports):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in roots:
                return None
            return super().find_spec(name, path, target)

    sys.meta_path.insert(0, Blocker())


def main(job_dir: str) -> int:
    job = Path(job_dir)
    plan = json.loads((job / "plan.json").read_text())
    os.chdir(job)
    import importlib

    from autograder.checks import core  # before student code runs: checks stay pristine

    problems = importlib.import_module(plan["checks_module"]).PROBLEMS
    _block_imports(plan.get("allowed_imports", []))
    import numpy as np  # noqa: F401 - loaded once, before any student cell
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance(colors="NoColor")
    shell.InteractiveTB.set_mode("Plain")
    signal.signal(signal.SIGALRM, _on_alarm)
    sink = open(job / "result.jsonl", "a", buffering=1)  # opened before any student code runs
    skip = set(plan.get("skip", []))

    for cell in plan["cells"]:
        record = {"id": cell["id"], "role": cell["role"], "stdout": "", "error": None, "calls": {}}
        if cell["id"] in skip:
            record["error"] = ("SkippedCell: this cell stopped the whole notebook (it hung past the time "
                               "limit or crashed the process), so it was skipped when the notebook was re-run")
            sink.write(json.dumps(record) + "\n")
            continue
        sink.write(json.dumps({"id": cell["id"], "started": True}) + "\n")
        out = _Capped()
        signal.setitimer(signal.ITIMER_REAL, plan["cell_timeout"])
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                if cell["role"] in ("visible", "hidden"):
                    # Test code (ours) runs with the problem functions wrapped by recorders;
                    # for a hidden cell that is the visible part before the hidden region.
                    # Every function defined in the notebook that this test names is recorded
                    # (the problem functions and helpers such as a schedule the test calls).
                    recorders = {}
                    for name in set(re.findall(r"[A-Za-z_]\w*", cell["source"])) | set(problems):
                        value = shell.user_ns.get(name)
                        if isinstance(value, types.FunctionType) and value.__module__ == "__main__":
                            recorders[name] = core._Recorder(value, ())
                            shell.user_ns[name] = recorders[name]
                    try:
                        result = shell.run_cell(cell["source"], store_history=False, silent=True)
                    finally:
                        for name, recorder in recorders.items():
                            shell.user_ns[name] = recorder.fn
                            record["calls"][name] = core.transcript_to_json(recorder.transcript)["calls"]
                    if not result.success:
                        record["error"] = _describe(result)
                    if cell["role"] == "hidden":
                        fn = shell.user_ns.get(cell["problem"])
                        transcript = core.probe(problems[cell["problem"]], fn, plan["seed"])
                        record["transcript"] = core.transcript_to_json(transcript)
                else:
                    result = shell.run_cell(cell["source"], store_history=False, silent=True)
                    if not result.success:
                        record["error"] = _describe(result)
        except CellTimeout:
            record["error"] = f"TimeoutError: the cell ran longer than {plan['cell_timeout']} s and was stopped"
        except BaseException as exc:  # noqa: BLE001 - keep reporting whatever student code did
            record["error"] = f"{type(exc).__name__}: {exc}"[:500]
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        record["stdout"] = out.getvalue()
        sink.write(json.dumps(record) + "\n")
    sink.write(json.dumps({"done": True}) + "\n")
    sink.close()
    return 0


def _describe(result) -> str:
    error = result.error_in_exec or result.error_before_exec
    if isinstance(error, CellTimeout):
        return "TimeoutError: the cell ran too long and was stopped"
    return "".join(traceback.format_exception_only(type(error), error)).strip()[:500]


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
