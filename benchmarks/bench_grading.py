"""Grading throughput: this pipeline vs plain serial `nbgrader autograde`, same run, same batch.

The batch is the demo corpus's honest submissions (correct answers and known mistakes,
every assignment); the bad-behaviour ones are left out because plain nbgrader has no
defence against them (a fork bomb there outlives its kernel). Both grade with the same
secret seed, so their scores must agree exactly; the benchmark fails if they do not.

    python benchmarks/bench_grading.py [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder import course, demo  # noqa: E402

SEED = 777
HONEST = ("correct", "mistakes-")

PLAIN_CONFIG = """
c = get_config()
load_subconfig({config!r})
# Stock nbgrader: the kernel runs every cell, hidden checks included (autograder.checks.score_answer).
from nbgrader.converters.autograde import Autograde
c.Autograde.autograde_preprocessors = Autograde.class_traits()["autograde_preprocessors"].default()
c.CourseDirectory.submitted_directory = {submitted!r}
c.CourseDirectory.autograded_directory = {autograded!r}
c.CourseDirectory.feedback_directory = {feedback!r}
c.CourseDirectory.db_url = {db!r}
"""


def batch(tmp: Path) -> list[tuple[str, str, Path]]:
    inbox = tmp / "inbox"
    items = []
    for path in sorted((demo.DEMO / "submissions").glob("*/*/*.ipynb")):
        student, assignment = path.parent.parent.name, path.parent.name
        if student.startswith(HONEST):
            target = inbox / student / assignment / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
            items.append((student, assignment, target))
    return items


def children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def run_pipeline(tmp: Path, workers: int) -> tuple[float, dict]:
    out = tmp / "pipeline"
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp / "inbox"), "--out", str(out),
                    "--workers", str(workers), "--seed", str(SEED)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    rows = json.loads((out / "rows.json").read_text())
    return seconds, {(r["student"], r["assignment"]): r["total"] for r in rows}


def run_plain(tmp: Path, items) -> tuple[float, dict]:
    course_dir = tmp / "plain"
    course_dir.mkdir()
    submitted = course_dir / "submitted"
    for student, assignment, path in items:
        target = submitted / student / assignment / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    db = f"sqlite:///{course_dir / 'gradebook.db'}"
    (course_dir / "nbgrader_config.py").write_text(PLAIN_CONFIG.format(
        config=str(ROOT / "autograder" / "nbgrader_config.py"), submitted=str(submitted),
        autograded=str(course_dir / "autograded"), feedback=str(course_dir / "feedback"), db=db))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               DESCENT_GRADING_SEED=str(SEED))
    nbgrader = [str(Path(sys.executable).parent / "nbgrader")]
    course.build_source()
    for assignment in sorted({a for _, a, _ in items}):  # registration is not timed
        subprocess.run(nbgrader + ["generate_assignment", assignment, "--force",
                                   f"--CourseDirectory.release_directory={course_dir / 'release'}"],
                       cwd=course_dir, env=env, check=True, capture_output=True)
    started = time.perf_counter()
    for student, assignment, _ in items:  # serial, one CLI call per submission, as instructors do
        subprocess.run(nbgrader + ["autograde", assignment, "--student", student, "--force"],
                       cwd=course_dir, env=env, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    from nbgrader.api import Gradebook

    totals = {}
    with Gradebook(db) as gb:
        for student, assignment, _ in items:
            totals[(student, assignment)] = float(gb.find_submission(assignment, student).score)
    return seconds, totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp_name:
        tmp = Path(tmp_name)
        items = batch(tmp)
        n = len(items)
        plain_s, plain = run_plain(tmp, items)
        plain_peak = children_peak_mb()
        pipe_s, piped = run_pipeline(tmp, args.workers)
        pipe_peak = children_peak_mb()
    mismatched = {k: (plain[k], piped.get(k)) for k in plain if abs(plain[k] - (piped.get(k) or -1)) > 1e-9}
    print(f"Grading {n} honest demo submissions (every assignment), same seed in both")
    print(f"{'grader':<38}{'sub/min':>9}{'s/notebook':>12}{'peak MB':>9}")
    print(f"{'plain nbgrader autograde (serial CLI)':<38}{n / plain_s * 60:>9.1f}{plain_s / n:>12.2f}{plain_peak:>9.0f}")
    print(f"{f'this pipeline ({args.workers} workers, sandboxed)':<38}{n / pipe_s * 60:>9.1f}"
          f"{pipe_s / n:>12.2f}{pipe_peak:>9.0f}")
    print(f"throughput ratio (pipeline / plain): {plain_s / pipe_s:.2f}x (target >= 5x)")
    print("peak MB: the largest single child process of each run (ru_maxrss).")
    if mismatched:
        print(f"SCORES DIFFER for {len(mismatched)} submissions: {dict(list(mismatched.items())[:5])}")
        return 1
    print(f"scores identical for all {n} submissions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
