"""A PostgreSQL gradebook (nbgrader's db_url) with two workers writing at once, against a
real server started here on 127.0.0.1 (Debian's postgresql package; .ci/run installs it)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from autograder import demo
from test_pipeline import SEED, rows_of, run_grader, slice_inbox


def _as_postgres(argv):
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not binaries:
        pytest.fail("PostgreSQL server not installed: apt-get install postgresql (.ci/run does)")
    bin_dir = Path(binaries[-1]).parent
    # Not under pytest's tmp root: that is private to root, and the server runs as postgres.
    data = Path(tempfile.mkdtemp(prefix="descent-pg-", dir="/var/tmp"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        shutil.chown(data, entry.pw_uid, entry.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(_as_postgres([str(bin_dir / "initdb"), "-D", str(data), "--auth=trust", "-U", "grader"]),
                   check=True, capture_output=True)
    subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"),
                                 "-o", f"-h 127.0.0.1 -p {port} -k {data}", "start"]),
                   check=True, capture_output=True)
    try:
        subprocess.run(_as_postgres([str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                                     "-U", "grader", "gradebook"]), check=True, capture_output=True)
        yield f"postgresql://grader@127.0.0.1:{port}/gradebook"
    finally:
        subprocess.run(_as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def test_two_workers_write_one_postgres_gradebook(postgres, tmp_path):
    students = ["correct", "mistakes-1", "mistakes-2", "mistakes-3", "tamper", "flood"]
    inbox = slice_inbox(tmp_path, students)
    out = tmp_path / "out"
    run_grader(inbox, out, "--db-url", postgres)
    assert not (out / "gradebook.db").exists()  # nothing went to SQLite
    rows = rows_of(out)
    assert len(rows) == len(students)
    for (student, assignment), row in rows.items():
        expected = demo.expected_scores(assignment, demo.corpus()[student][assignment], SEED)
        assert row["scores"] == pytest.approx(expected), student
    from nbgrader.api import Gradebook

    with Gradebook(postgres) as gb:
        totals = {s.student_id: s.score for s in gb.assignment_submissions("01_sgd")}
    assert totals == pytest.approx({s: rows[(s, "01_sgd")]["total"] for s in students})
