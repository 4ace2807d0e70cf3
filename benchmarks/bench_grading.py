"""Grading throughput: this pipeline vs plain serial `nbgrader autograde`, same run, same batch;
then the same batch through a Dask cluster on this machine (a `dask scheduler` and as many
`dask worker` processes as the local pool has workers), as the ratio of its time to the local
pool's, and the cluster's own cost per task (trivial tasks through the same scheduler).

The batch is the demo corpus's honest submissions (correct answers and known mistakes,
every assignment); the bad-behaviour ones are left out because plain nbgrader has no
defence against them (a fork bomb there outlives its kernel). All grade with the same
secret seed, so their scores must agree exactly; the benchmark fails if they do not.

    python benchmarks/bench_grading.py [--workers N] [--no-cluster]
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


def run_pipeline(tmp: Path, workers: int, *extra: str, name: str = "pipeline") -> tuple[float, dict]:
    out = tmp / name
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autograder", "grade", str(tmp / "inbox"), "--out", str(out),
                    "--workers", str(workers), "--seed", str(SEED), *extra], cwd=ROOT, check=True,
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


def start_cluster(tmp: Path, workers: int) -> tuple[str, list[subprocess.Popen]]:
    """A `dask scheduler` and ``workers`` `dask worker` processes on 127.0.0.1, as make worker starts them."""
    import socket

    from distributed import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address, dask = f"tcp://127.0.0.1:{port}", str(Path(sys.executable).parent / "dask")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": tmp, "start_new_session": True}
    processes = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                   "--no-dashboard"], **quiet)]
    processes += [subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--resources", "sandbox=1",
                                    "--no-dashboard", "--host", "127.0.0.1"], **quiet) for _ in range(workers)]
    with Client(address, timeout="60s") as client:
        client.wait_for_workers(workers, timeout=120)
    return address, processes


def _nothing(i: int) -> int:
    return i


def task_overhead(address: str, n: int = 400) -> tuple[float, float]:
    """The cluster's own cost: milliseconds per trivial task when ``n`` are in flight at once (the
    scheduler's throughput), and for one task at a time (its round trip)."""
    from distributed import Client, wait

    with Client(address) as client:
        client.submit(_nothing, -1, resources={"sandbox": 1}).result()  # connections warm
        started = time.perf_counter()
        wait([client.submit(_nothing, i, resources={"sandbox": 1}, pure=False) for i in range(n)])
        batch = (time.perf_counter() - started) / n
        started = time.perf_counter()
        for i in range(n // 10):
            client.submit(_nothing, i, resources={"sandbox": 1}, pure=False).result()
        single = (time.perf_counter() - started) / (n // 10)
    return batch * 1000, single * 1000


def phase_costs(tmp: Path, count: int = 16) -> dict[str, float]:
    """Seconds per submission of each step of grading one, in this process, one at a time:
    prepare (coordinator: files in place, test cells restored), the sandbox phase (a worker), and
    record (nbgrader autograde and feedback: wherever the gradebook is written)."""
    from autograder import grading, pipeline, sandbox

    out = tmp / "phases"
    subs, _, _ = pipeline.collect(tmp / "inbox", None, None, tmp / "unzipped")
    subs = subs[:count]
    mode = sandbox.detect()
    config = pipeline.Config(out=out, seed=SEED, workers=1, isolation=mode,
                             db_url=f"sqlite:///{out / 'gradebook.db'}", limits=sandbox.Limits())
    out.mkdir()
    pipeline.register(config, {s.assignment for s in subs}, {s.student for s in subs})
    totals = {"prepare": 0.0, "sandbox phase": 0.0, "record": 0.0}
    settings = grading.Settings(seed=SEED, isolation=mode, limits=config.limits, slot=0)
    with pipeline.open_grader(config, slot=0):
        for sub in subs:
            started = time.perf_counter()
            row, prepared = pipeline.prepare(sub)
            prepared_at = time.perf_counter()
            graded = pipeline.sandbox_phase(sub.assignment, {k: nb for k, (_, nb) in prepared.items()}, settings)
            graded_at = time.perf_counter()
            pipeline.record(sub, row, prepared, graded)
            assert row.status == "graded", row.reason
            totals["prepare"] += prepared_at - started
            totals["sandbox phase"] += graded_at - prepared_at
            totals["record"] += time.perf_counter() - graded_at
    return {step: seconds / len(subs) for step, seconds in totals.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--no-cluster", action="store_true", help="skip the Dask cluster comparison")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp_name:
        tmp = Path(tmp_name)
        items = batch(tmp)
        n = len(items)
        plain_s, plain = run_plain(tmp, items)
        plain_peak = children_peak_mb()
        pipe_s, piped = run_pipeline(tmp, args.workers)
        pipe_peak = children_peak_mb()
        phases = phase_costs(tmp)
        cluster_s, clustered, per_task = None, {}, None
        if not args.no_cluster:
            address, processes = start_cluster(tmp, args.workers)
            try:
                cluster_s, clustered = run_pipeline(tmp, args.workers, "--cluster", address, name="cluster")
                per_task = task_overhead(address)
            finally:
                for process in processes:
                    process.kill()
                    process.wait()
    mismatched = {k: (plain[k], piped.get(k)) for k in plain if abs(plain[k] - (piped.get(k) or -1)) > 1e-9}
    if cluster_s is not None:
        mismatched.update({("cluster",) + k: (plain[k], clustered.get(k)) for k in plain
                           if abs(plain[k] - (clustered.get(k) or -1)) > 1e-9})
    print(f"Grading {n} honest demo submissions (every assignment), the same seed in every run")
    print(f"{'grader':<38}{'sub/min':>9}{'s/notebook':>12}{'peak MB':>9}")
    print(f"{'plain nbgrader autograde (serial CLI)':<38}{n / plain_s * 60:>9.1f}{plain_s / n:>12.2f}{plain_peak:>9.0f}")
    print(f"{f'this pipeline ({args.workers} workers, sandboxed)':<38}{n / pipe_s * 60:>9.1f}"
          f"{pipe_s / n:>12.2f}{pipe_peak:>9.0f}")
    if cluster_s is not None:
        print(f"{f'the same on a Dask cluster ({args.workers} workers)':<38}{n / cluster_s * 60:>9.1f}"
              f"{cluster_s / n:>12.2f}{'':>9}")
    print(f"throughput ratio (pipeline / plain): {plain_s / pipe_s:.2f}x (target >= 5x)")
    if cluster_s is not None:
        print(f"cluster overhead (cluster time / local pool time, same workers, same machine): "
              f"{cluster_s / pipe_s:.2f}x (target <= 1.15x)")
        print(f"scheduling overhead per task (trivial tasks): {per_task[0]:.2f} ms with 400 in flight, "
              f"{per_task[1]:.2f} ms one at a time (round trip)")
    print("peak MB: the largest single child process of each run (ru_maxrss).")
    print("one submission at a time, seconds each: " + ", ".join(f"{k} {v:.2f}" for k, v in phases.items()))
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if mismatched:
        print(f"SCORES DIFFER for {len(mismatched)} submissions: {dict(list(mismatched.items())[:5])}")
        return 1
    print(f"scores identical for all {n} submissions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
