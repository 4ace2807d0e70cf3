"""`make` works wherever the repository is cloned.

The committed HEAD is cloned with git into a folder under /tmp whose path holds a space and
whose parent is private (mode 0700, as mkdtemp makes it, like a home folder), and the clone's
own Makefile does the work there: `make venv` builds a fresh .venv inside the clone (pip, from
the registry or its cache), then `make grade` grades a small inbox of demo submissions of one
assignment. Nothing of the working tree or of its .venv is used. Uncommitted changes are not
in the clone: this checks what a newcomer gets.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SUBMISSIONS = ROOT / "autograder" / "demo" / "submissions"
STUDENTS = ["correct", "mistakes-1", "mistakes-2"]
ASSIGNMENT = "01_sgd"


def clean_env() -> dict:
    """The environment a newcomer's shell has: no outer make, no outer venv on PATH."""
    outer_bin = str(ROOT / ".venv" / "bin")
    env = {k: v for k, v in os.environ.items()
           if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "VIRTUAL_ENV",
                        "PYTHONPATH", "PYTHONHOME"}}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != outer_bin)
    return env


def run(argv, cwd, timeout):
    result = subprocess.run(argv, cwd=cwd, env=clean_env(), capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(argv)} exited {result.returncode} in {cwd}\n"
        f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def clone():
    base = Path(tempfile.mkdtemp(prefix="descent fresh clone ", dir="/tmp"))
    try:
        repo = base / "descent"
        run(["git", "clone", "-q", str(ROOT), str(repo)], cwd=base, timeout=300)
        yield repo
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_make_grades_demo_submissions_in_a_clone_under_tmp_with_a_space(clone):
    assert " " in str(clone) and str(clone).startswith("/tmp/")
    inbox = clone.parent / "inbox with space"
    for student in STUDENTS:
        shutil.copytree(SUBMISSIONS / student / ASSIGNMENT, inbox / student / ASSIGNMENT)
    out = clone.parent / "graded out"

    run(["make", "--no-print-directory", "venv"], cwd=clone, timeout=1800)
    assert (clone / ".venv" / "bin" / "python").exists()
    result = run(["make", "--no-print-directory", "grade", f"GRADE_INBOX={inbox}", f"GRADE_OUT={out}"],
                 cwd=clone, timeout=900)

    rows = json.loads((out / "rows.json").read_text())
    assert sorted((r["student"], r["assignment"]) for r in rows) == \
        [(s, ASSIGNMENT) for s in sorted(STUDENTS)], result.stdout[-2000:]
    not_graded = [(r["student"], r["reason"]) for r in rows if r["status"] != "graded"]
    assert not not_graded, f"could not grade in {clone}: {not_graded}\n{result.stderr[-2000:]}"
