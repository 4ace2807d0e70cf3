"""The sandbox and its channel, attacked directly (no nbgrader), and the grader run as an
ordinary user and through nbgrader's own commands."""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from autograder import demo, sandbox, wire

ROOT = Path(__file__).resolve().parents[2]
MODE = sandbox.detect()
MODES = ["user", "userns"] if os.geteuid() == 0 else ["userns"]


def in_sandbox(code: str, mode: str = MODE, **limits) -> sandbox.Outcome:
    argv = [sandbox.python(), "-I", "-S", "-c", code]
    return sandbox.run(argv, mode=mode, limits=sandbox.Limits(wall_clock=60, **limits))


@pytest.mark.parametrize("mode", MODES)
def test_student_code_has_no_capabilities_and_sees_only_the_runtime(mode):
    outcome = in_sandbox("""
import os
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
print(status["CapEff"].strip(), status["CapBnd"].strip(), os.getuid() != 0)
print(sorted(os.listdir("/")))
print(sorted(os.listdir("/opt/descent/lib/autograder")), sorted(os.listdir("/opt/descent/lib/autograder/checks")))
""", mode)
    assert outcome.returncode == 0, outcome.log_tail
    caps, listing, lib = outcome.stdout.decode().splitlines()
    assert caps == "0000000000000000 0000000000000000 True"
    assert set(eval(listing)) <= {"usr", "bin", "lib", "lib64", "sbin", "proc", "dev", "tmp", "opt",
                                  *Path(sys.base_prefix).resolve().parts[1:2]}
    assert lib == "['checks', 'runner.py', 'wire.py'] ['core.py']"


@pytest.mark.parametrize("mode", MODES)
def test_the_repository_and_the_venv_are_not_there(mode):
    probes = [ROOT / "solutions", ROOT / "optimkit" / "rules.py", ROOT / "autograder" / "checks" / "a01_sgd.py",
              Path(sys.prefix) / "bin", Path(tempfile.gettempdir()) / "descent-grading"]
    code = f"import os; print([os.path.exists(p) for p in {[str(p) for p in probes]!r}])"
    outcome = in_sandbox(code, mode)
    assert outcome.returncode == 0, outcome.log_tail
    assert outcome.stdout.decode().strip() == str([False] * len(probes))
    assert all(p.exists() for p in probes[:4])  # negative control: outside the sandbox they are there


def test_only_numeric_arrays_cross_the_channel():
    good = wire.pack({"data": {"x": np.arange(6.0).reshape(2, 3), "s": [1, (2.5, float("nan"))]}})
    n_text, n_payload = wire.HEADER.unpack_from(good)
    back = wire.unpack(good[8:8 + n_text], good[8 + n_text:], trusted=False)
    assert np.array_equal(back["data"]["x"], np.arange(6.0).reshape(2, 3)) and np.isnan(back["data"]["s"][1][1])
    hostile = [
        {"data": {"__array__": 0, "dtype": "|O", "shape": [1]}, "buffers": [8]},     # object dtype
        {"data": {"__array__": 0, "dtype": "<f8", "shape": [100]}, "buffers": [8]},  # size mismatch
        {"data": {"__float__": "__import__('os')"}, "buffers": []},
        {"data": {"__weird__": 1}, "buffers": []},
    ]
    for message in hostile:
        text = json.dumps(message).encode()
        with pytest.raises(wire.WireError):
            wire.unpack(text, b"\0" * sum(message["buffers"]), trusted=False)
    nested = {"data": None, "buffers": []}
    value = []
    for _ in range(wire.MAX_DEPTH + 5):
        value = {"__seq__": [value], "tuple": False}
    nested["data"] = value
    with pytest.raises(wire.WireError):
        wire.unpack(json.dumps(nested).encode(), b"", trusted=False)


def test_a_frame_over_the_cap_is_refused():
    r, w = os.pipe()
    os.write(w, wire.HEADER.pack(wire.MAX_FRAME, 1))
    with pytest.raises(wire.WireError):
        wire.Reader(r, trusted=False).read(deadline=None)
    os.close(r), os.close(w)


# --- the grader as an ordinary user -------------------------------------------------------------------

def _unreachable_ancestor(path: Path) -> Path | None:
    """The first folder on ``path`` that others cannot enter (e.g. /root), if any."""
    for parent in reversed(path.parents):
        if parent != Path("/") and not parent.stat().st_mode & 0o001:
            return parent
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="the suite already runs as an ordinary user: every test is this case")
def test_an_ordinary_user_grades_in_a_path_with_a_space(tmp_path):
    """A user the test creates (not root with a flag), a copy of the repository it owns under
    /tmp in a folder whose name has a space, the venv's Python: isolation 'userns', same grades,
    09's torch included. Meanwhile the same user runs a process of 100 threads, as a Dask worker
    or a busy grader does: the process limit counts threads, and the sandboxes still start."""
    name = "descent-test-grader"
    if subprocess.run(["id", name], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True)
    user = pwd.getpwnam(name)
    top = Path(tempfile.mkdtemp(prefix="descent grader ", dir="/tmp"))
    try:
        repo = top / "repo"
        shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".git", ".venv", "_build", "course", "node_modules",
                                                                  "__pycache__"))
        inbox = top / "inbox"
        for student in ("correct", "escape", "reference"):
            shutil.copytree(demo.DEMO / "submissions" / student / "01_sgd", inbox / student / "01_sgd")
        shutil.copytree(demo.DEMO / "submissions" / "correct" / "09_torch_optimizer",
                        inbox / "correct" / "09_torch_optimizer")
        subprocess.run(["chown", "-R", f"{user.pw_uid}:{user.pw_gid}", str(top)], check=True)
        os.chmod(top, 0o755)
        command = [sys.executable, "-m", "autograder", "grade", str(inbox), "--out", str(top / "out"),
                   "--workers", "2", "--seed", "7"]
        drop = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--",
                "env", f"HOME={top}", f"PATH={Path(sys.executable).parent}:/usr/bin:/bin"]
        script = ["set -e"]
        hidden = _unreachable_ancestor(Path(sys.base_prefix).resolve())
        if hidden:  # e.g. pyenv under root's 0700 home: show the user the interpreter, nothing else there
            base = Path(sys.base_prefix).resolve()
            script += ["mount --make-rprivate /", "mount -t tmpfs -o size=1m,mode=0755 stage /mnt",
                       "mkdir /mnt/python", f"mount --bind {shlex.quote(str(base))} /mnt/python",
                       f"mount -t tmpfs -o size=1m,mode=0755 cover {shlex.quote(str(hidden))}",
                       f"mkdir -p {shlex.quote(str(base))}", f"mount --bind /mnt/python {shlex.quote(str(base))}"]
        threads = ("import threading, time\nfor _ in range(100):\n"
                   "    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\ntime.sleep(600)")
        script += ["cd " + shlex.quote(str(repo)), shlex.join(drop + [sys.executable, "-c", threads]) + " & busy=$!",
                   "sleep 1", "set +e", shlex.join(drop + command), "status=$?", "kill $busy", "exit $status"]
        result = subprocess.run(["unshare", "--mount", "--", "/bin/sh", "-c", "\n".join(script)],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "isolation: userns" in result.stderr
        rows = {(r["student"], r["assignment"]): r for r in json.loads((top / "out" / "rows.json").read_text())}
        for (student, assignment), row in rows.items():
            assert row["scores"] == pytest.approx(demo.expected_scores(
                assignment, demo.corpus()[student][assignment], 7)), student
        assert (top / "out" / "gradebook.db").stat().st_uid == user.pw_uid
    finally:
        shutil.rmtree(top, ignore_errors=True)


# --- nbgrader's own commands ---------------------------------------------------------------------------

def test_nbgrader_autograde_works_on_the_course_and_deletes_nothing(tmp_path):
    """`cd autograder && nbgrader autograde 01_sgd --force`: no environment variable, the seed read
    from the course, the pipeline's graded notebooks and scores kept."""
    course = ROOT / "autograder" / "course"
    inbox = tmp_path / "inbox"
    for student in ("correct", "mistakes-1"):
        shutil.copytree(demo.DEMO / "submissions" / student / "01_sgd", inbox / student / "01_sgd")
    subprocess.run([sys.executable, "-m", "autograder", "grade", str(inbox), "--workers", "2"], cwd=ROOT,
                   check=True, capture_output=True)

    rows = {r["student"]: r["total"] for r in json.loads((course / "rows.json").read_text())
            if r["assignment"] == "01_sgd" and r["student"] in ("correct", "mistakes-1")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("DESCENT_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    result = subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "autograde", "01_sgd", "--force",
                             "--student=mistakes-1"],
                            cwd=ROOT / "autograder", env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    for student in ("correct", "mistakes-1"):
        assert (course / "autograded" / student / "01_sgd" / "sgd.ipynb").exists()
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id="descent") as gb:
        for student, total in rows.items():
            assert gb.find_submission("01_sgd", student).score == pytest.approx(total)


def _served(student_source: str, grader_seconds: float) -> tuple[dict, list]:
    """Serve ``f`` to a drive that computes ``grader_seconds`` in the grader before each of its
    three calls, under a 1 s cell limit."""
    import time

    from autograder.checks import core
    from autograder.grading import Settings, run_in_sandbox

    def drive(call, rng):
        for _ in range(3):
            time.sleep(grader_seconds)
            call(x=np.ones(2))

    problem = core.Problem(name="f", reference=lambda x: x, drive=drive, seeds=1)
    plan = {"assignment": "test", "allowed_imports": [], "cell_timeout": 1.0, "cells": [
        {"id": "f", "index": 0, "role": "code", "source": student_source},
        {"id": "f_hidden", "index": 1, "role": "hidden", "source": "", "problem": "f"}]}
    settings = Settings(seed=1, isolation=MODE, limits=sandbox.Limits(cell_timeout=1.0, wall_clock=30))
    return run_in_sandbox(plan, settings, {"f": problem})


def test_the_graders_own_time_is_not_charged_to_the_student():
    """A slow or busy grading host must not turn a correct answer into a timeout: 4.5 s of the
    grader's own computing between calls, under a 1 s cell limit, and every call is answered."""
    records, notes = _served("def f(x):\n    return x\n", grader_seconds=1.5)
    transcript = records["f_hidden"]["transcript"]
    assert notes == [] and transcript.aborted is None and len(transcript.calls) == 3
    assert all(c.error is None for c in transcript.calls)


def test_the_students_own_time_still_is():
    """Negative control: the same drive with a function that itself takes 1.5 s is stopped."""
    records, notes = _served("import time\ndef f(x):\n    time.sleep(1.5)\n    return x\n", grader_seconds=0.0)
    transcript = records.get("f_hidden", {}).get("transcript")
    stopped = transcript is None or transcript.aborted or any(c.error for c in transcript.calls)
    assert stopped, (records, notes)
