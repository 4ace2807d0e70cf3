"""The gradebook's write rate: nbgrader's own database work for recording one submission
(``update_or_create_submission`` with its notebooks and grade rows, every grade cell's score set,
one commit), by 1 to 16 concurrent writer processes into one PostgreSQL gradebook, against one
writer into SQLite (the single-writer path) measured in the same run.

The assignment has one notebook of 11 grade cells (01_sgd's size, the demo's typical one).
Each writer records its own students, as the cluster's workers do with ``--db-url``.

    python benchmarks/bench_gradebook.py [--per-writer N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tools")]

import postgres  # noqa: E402 - tools/postgres.py

# nbgrader's Gradebook runs `alembic` from PATH (make puts the venv's bin there; so do we).
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"

CELLS = 11
ASSIGNMENT, NOTEBOOK = "bench", "bench"


def set_up(url: str) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        gb.add_assignment(ASSIGNMENT)
        gb.add_notebook(NOTEBOOK, ASSIGNMENT)
        for i in range(CELLS):
            gb.add_grade_cell(f"cell_{i}", NOTEBOOK, ASSIGNMENT, max_score=2.0, cell_type="code")


def write(url: str, students: list[str], start, ready) -> None:
    """One writer: its students' submissions recorded one after another, each committed (with
    nbgrader's add_submission as the pipeline runs it: pipeline.quiet_gradebook, no autoflush)."""
    from nbgrader.api import Gradebook

    import autograder.pipeline  # noqa: F401 - installs quiet_gradebook, as grading does

    with Gradebook(url) as gb:
        for student in students:
            gb.update_or_create_student(student)
        ready.put(True)
        start.wait()
        for k, student in enumerate(students):
            submission = gb.update_or_create_submission(ASSIGNMENT, student)
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    grade.auto_score = float((k + len(grade.name)) % 3)
            gb.db.commit()


def rate(url: str, writers: int, per_writer: int, tag: str) -> float:
    """Submissions recorded per second by ``writers`` processes together."""
    context = multiprocessing.get_context("spawn")
    start, ready = context.Event(), context.Queue()
    processes = [context.Process(target=write, args=(url, [f"{tag}-{w}-{i}" for i in range(per_writer)], start, ready))
                 for w in range(writers)]
    for p in processes:
        p.start()
    for _ in processes:
        ready.get(timeout=900)  # 16 processes importing nbgrader on a busy machine
    began = time.perf_counter()
    start.set()
    for p in processes:
        p.join()
        if p.exitcode != 0:
            raise SystemExit(f"a writer failed (exit {p.exitcode})")
    elapsed = time.perf_counter() - began
    return writers * per_writer / elapsed


def check(url: str, expected: int) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(url) as gb:
        found = len(gb.assignment_submissions(ASSIGNMENT))
    if found != expected:
        raise SystemExit(f"the gradebook holds {found} submissions, {expected} were written")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-writer", type=int, default=40)
    args = parser.parse_args()
    n = args.per_writer
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = f"sqlite:///{tmp}/gradebook.db"
        set_up(sqlite)
        baseline = rate(sqlite, 1, n, "sqlite")
        check(sqlite, n)
    print(f"gradebook writes, one submission = {CELLS} grade rows + its submission rows, one commit")
    print(f"  SQLite, 1 writer (baseline)     {baseline:7.1f} submissions/s")
    with postgres.server(log=Path(tempfile.gettempdir()) / "descent-bench-postgres.log") as url:
        set_up(url)
        written = 0
        for writers in (1, 2, 4, 8, 16):
            got = rate(url, writers, n, f"pg{writers}")
            written += writers * n
            print(f"  PostgreSQL, {writers:2d} writer(s)         {got:7.1f} submissions/s   "
                  f"{got / baseline:5.2f}x the baseline")
        check(url, written)


if __name__ == "__main__":
    main()
