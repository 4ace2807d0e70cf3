"""A PostgreSQL gradebook (nbgrader's db_url) with two workers writing at once, against a
real server started here on 127.0.0.1 (Debian's postgresql package; .ci/run installs it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from autograder import demo
from test_pipeline import SEED, rows_of, run_grader, slice_inbox

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
import postgres as postgres_server  # noqa: E402 - tools/postgres.py, shared with the benchmark


@pytest.fixture(scope="module")
def postgres():
    if postgres_server.bin_dir() is None:
        pytest.fail(postgres_server.MISSING)
    with postgres_server.server() as url:
        yield url


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
