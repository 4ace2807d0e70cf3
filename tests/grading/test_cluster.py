"""Grading on a Dask cluster (--cluster), against a real `dask scheduler` and real `dask worker`
processes on 127.0.0.1: the same grades as a local run, problem by problem; a worker killed
(SIGKILL) or cut off from the network mid-batch, or a killed coordinator, loses and doubles
nothing, with SQLite and with the PostgreSQL gradebook; a worker that cannot isolate is refused by name; and without --cluster no
Dask module is imported and no Dask process started."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import demo, sandbox
from test_pipeline import (ROOT, SEED, answer_output, expected, rows_of, run_grader, sandbox_processes,
                           slice_inbox, wait_until, wait_until_gone)
from test_postgres import postgres, postgres_server  # noqa: F401 - the PostgreSQL server fixture, shared

DASK = Path(sys.executable).parent / "dask"
# test_pipeline's seed, without --workers (the cluster's workers are the workers), and limits that
# no honest notebook reaches even on a loaded machine: these tests compare runs, not timeouts.
LIMITS = ["--wall-clock", "120", "--cell-timeout", "30", "--seed", str(SEED)]
# A slice of the demo corpus: right and wrong answers, and bad behaviour (tampering with NumPy,
# snooping for the grader's files and seed, a fork bomb), in two assignments.
SLICE = {"01_sgd": ["correct", "mistakes-1", "mistakes-2", "tamper", "snoop", "fork"],
         "04_adam": ["correct", "mistakes-1"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DaskCluster:
    """A `dask scheduler` and `dask worker` processes (each --nthreads 1, one 'sandbox'), as
    `make worker` starts them but without a nanny, so that a killed worker stays dead."""

    def __init__(self, logs: Path):
        self.logs = logs
        self.address, self.port = "", 0  # the scheduler's, once started
        self.processes: list[subprocess.Popen] = []
        self.workers: list[subprocess.Popen] = []

    def _start(self, argv: list[str], name: str, env=None) -> subprocess.Popen:
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "w") as log:
            process = subprocess.Popen([str(DASK), *argv], stdout=log, stderr=subprocess.STDOUT, env=env,
                                       cwd=self.logs, start_new_session=True)
        self.processes.append(process)
        return process

    def start(self, workers: int = 2, bare_workers: int = 0, links: list["Link"] | None = None,
              scheduler_env: dict | None = None) -> "DaskCluster":
        """``links``: the first workers' network, one :class:`Link` each, that a test can cut."""
        # The scheduler binds a free port itself and writes its address to a file: a port chosen
        # here and released would be free only until some other socket took it ("Address already
        # in use", seen once in a full run).
        scheduler_file = self.logs / "scheduler.json"
        scheduler = self._start(["scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                 "--scheduler-file", str(scheduler_file)], "scheduler",
                                env={**os.environ, **(scheduler_env or {})})
        deadline = time.monotonic() + 60
        while not self.address:
            try:
                self.address = json.loads(scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):  # not written yet, or half written
                if scheduler.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("the dask scheduler did not start:\n"
                                + (self.logs / "scheduler.log").read_text()[-2000:])
                time.sleep(0.1)
        self.port = int(self.address.rsplit(":", 1)[1])
        bare = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no bwrap: cannot isolate
        for i in range(workers + bare_workers):
            address = ["--host", "127.0.0.1"]
            if links and i < len(links):
                address = links[i].worker_args(self.port)
            self.workers.append(self._start(
                ["worker", links[i].scheduler if links and i < len(links) else self.address, "--nthreads", "1",
                 "--resources", "sandbox=1", "--no-nanny", "--no-dashboard", *address, "--name", f"worker-{i}"],
                f"worker-{i}", env=bare if i >= workers else None))
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(workers + bare_workers, timeout=120)
        return self

    def stop(self) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class Link:
    """A worker's network, which a test can cut and restore: every byte between the worker and
    the rest of the cluster passes through two relays on 127.0.0.1 (the worker reaches the
    scheduler through one; the scheduler and the other workers reach the worker through the other,
    the address it advertises). Cut, the relays stop moving bytes and hold connections open: the
    worker runs on, as a node whose switch failed does, and nobody hears from it. (The
    PostgreSQL server is not behind the link: the worst case, a worker cut off from the scheduler
    that can still write the gradebook.)"""

    def __init__(self):
        import threading

        self.cut = threading.Event()
        self.worker_port = free_port()
        self.scheduler = ""

    def worker_args(self, scheduler_port: int) -> list[str]:
        to_scheduler = self._relay(scheduler_port)
        self.scheduler = f"tcp://127.0.0.1:{to_scheduler}"
        to_worker = self._relay(self.worker_port)
        return ["--listen-address", f"tcp://127.0.0.1:{self.worker_port}",
                "--contact-address", f"tcp://127.0.0.1:{to_worker}"]

    def _relay(self, target: int) -> int:
        import threading

        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(64)

        def pump(source, sink):
            source.settimeout(0.1)
            while True:
                if self.cut.is_set():
                    time.sleep(0.05)
                    continue
                try:
                    data = source.recv(1 << 16)
                except socket.timeout:
                    continue
                except OSError:
                    data = b""
                if not data:
                    with contextlib.suppress(OSError):
                        sink.shutdown(socket.SHUT_WR)
                    return
                with contextlib.suppress(OSError):
                    sink.sendall(data)

        def accept():
            while True:
                client, _ = server.accept()
                while self.cut.is_set():  # a new connection waits, unanswered, like the old ones
                    time.sleep(0.05)
                try:
                    upstream = socket.create_connection(("127.0.0.1", target))
                except OSError:
                    client.close()
                    continue
                for a, b in ((client, upstream), (upstream, client)):
                    threading.Thread(target=pump, args=(a, b), daemon=True).start()

        threading.Thread(target=accept, daemon=True).start()
        return server.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    started = DaskCluster(tmp_path / "dask").start()
    yield started
    started.stop()


def cluster_args(cluster: DaskCluster) -> list[str]:
    return [*LIMITS, "--cluster", cluster.address]


def inbox_of(tmp: Path, plan: dict[str, list[str]], name: str = "inbox") -> Path:
    for assignment, students in plan.items():
        slice_inbox(tmp, students, assignment, name)
    return tmp / name


def csv_rows(out: Path) -> list[dict]:
    with open(out / "grades.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_each_graded_once(out: Path, plan: dict[str, list[str]], db_url: str | None = None) -> None:
    """Every submission: one graded row with the oracle's scores, one CSV line, one gradebook entry."""
    wanted = sorted((s, a) for a, students in plan.items() for s in students)
    rows = rows_of(out)
    assert sorted(rows) == wanted
    for (student, assignment), row in rows.items():
        assert row["status"] == "graded", (student, assignment, row["reason"])
        assert row["scores"] == pytest.approx(expected(student, assignment)), (student, assignment)
    assert sorted((r["student"], r["assignment"]) for r in csv_rows(out)) == wanted
    assert len(list((out / "state").glob("*/*.json"))) == len(wanted)
    if db_url is None:
        with sqlite3.connect(out / "gradebook.db") as db:
            entries = db.execute("select s.student_id, a.name from submitted_assignment s "
                                 "join assignment a on a.id = s.assignment_id").fetchall()
    else:
        from nbgrader.api import Gradebook

        with Gradebook(db_url) as gb:
            entries = [(s.student_id, a) for a in plan for s in gb.assignment_submissions(a)]
    assert sorted(entries) == wanted  # once each: no duplicate, none missing


def test_a_cluster_grades_as_a_local_run_does(cluster, tmp_path):
    inbox = inbox_of(tmp_path, SLICE)
    local = run_grader(inbox, tmp_path / "local", args=["--workers", "2", *LIMITS])
    remote = run_grader(inbox, tmp_path / "remote", args=cluster_args(cluster))
    assert "isolation: " in local.stderr
    assert remote.stderr.count("sandbox slot") == 2 and f"isolation {sandbox.detect()}" in remote.stderr
    assert f"on {cluster.address}" in remote.stderr and "/min" in remote.stderr and "left ~" in remote.stderr
    here, there = rows_of(tmp_path / "local"), rows_of(tmp_path / "remote")
    assert sorted(here) == sorted(there)
    for key in here:
        for field in ("status", "scores", "total", "max_total", "mistakes"):
            assert there[key][field] == here[key][field], (key, field)
    assert csv_rows(tmp_path / "remote") == csv_rows(tmp_path / "local")
    assert_each_graded_once(tmp_path / "remote", SLICE)
    # The sandbox on a worker is the local one: the grader's files and seed are out of reach.
    printed = answer_output(tmp_path / "remote", "snoop", "01_sgd")
    assert "files of the grader's found: 0 []" in printed and "seed in the environment: False" in printed
    assert "plans in memory: 1 holding a seed: 0" in printed
    for student, assignment in there:
        assert list((tmp_path / "remote" / "feedback" / student / assignment).glob("*.html"))


@pytest.mark.parametrize("gradebook", ["sqlite", "postgresql"])
def test_a_worker_killed_mid_batch_loses_and_doubles_nothing(cluster, tmp_path, gradebook, request):
    plan = {"01_sgd": ["correct", "mistakes-1", "mistakes-2", "mistakes-3", "tamper", "fork"]}
    inbox = inbox_of(tmp_path, plan)
    out = tmp_path / "out"
    db_url = request.getfixturevalue("postgres") if gradebook == "postgresql" else None
    extra = ["--db-url", db_url] if db_url else []
    batch = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(inbox), "--out", str(out),
                              *cluster_args(cluster), *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert wait_until(lambda: any(sandbox_processes(w.pid, runners_only=True) for w in cluster.workers),
                          seconds=180), "no worker started a sandbox"
        victim = next(w for w in cluster.workers if sandbox_processes(w.pid, runners_only=True))
        running = sandbox_processes(victim.pid)
        os.kill(victim.pid, signal.SIGKILL)  # mid-task: its sandbox is running a notebook
        victim.wait()
        assert wait_until_gone(running, 5) == [], "a sandbox outlived its killed worker"
        _, stderr = batch.communicate(timeout=400)
    finally:
        if batch.poll() is None:
            os.killpg(batch.pid, signal.SIGKILL)
    assert batch.returncode == 0, stderr[-3000:]
    assert_each_graded_once(out, plan, db_url)
    for student in plan["01_sgd"]:
        assert list((out / "feedback" / student / "01_sgd").glob("*.html")), student
    if db_url:  # the workers recorded: nothing went to SQLite, no graded notebook to the coordinator
        assert not (out / "gradebook.db").exists() and not list((out / "cache").glob("*.ipynb"))
    else:
        assert len(list((out / "cache").glob("*.ipynb"))) == len(plan["01_sgd"])


@pytest.mark.parametrize("gradebook", ["sqlite", "postgresql"])
def test_a_worker_that_loses_its_network_mid_task_doubles_nothing(tmp_path, gradebook, request):
    """A worker's network is cut while its sandbox runs a notebook: the scheduler stops hearing
    from it (its heartbeats time out after worker-ttl: 30 s here, longer than a loaded worker's
    event loop stalls while its grader starts), runs its task on the other worker, and the
    batch ends with each submission graded once. The cut-off worker finishes its task meanwhile
    (with PostgreSQL it can still write the gradebook); once its network is back, its late result
    changes nothing: no second row, no other score, in the CSV or the gradebook."""
    plan = {"01_sgd": ["correct", "mistakes-1", "mistakes-2", "mistakes-3", "tamper", "snoop"]}
    inbox = inbox_of(tmp_path, plan)
    out = tmp_path / "out"
    # A database of its own: the module's server also holds the other tests' gradebooks.
    db_url = postgres_server.fresh_database(request.getfixturevalue("postgres"), "network") \
        if gradebook == "postgresql" else None
    link = Link()
    cluster = DaskCluster(tmp_path / "dask").start(
        links=[link], scheduler_env={"DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL": "30s"})
    cut_off = cluster.workers[0]
    try:
        batch = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(inbox), "--out", str(out),
                                  *cluster_args(cluster), *(["--db-url", db_url] if db_url else [])],
                                 cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                 start_new_session=True)
        try:
            assert wait_until(lambda: sandbox_processes(cut_off.pid, runners_only=True), seconds=180), \
                "the worker behind the link never ran a notebook"
            link.cut.set()  # mid-task
            _, stderr = batch.communicate(timeout=400)
        finally:
            if batch.poll() is None:
                os.killpg(batch.pid, signal.SIGKILL)
        assert batch.returncode == 0, stderr[-3000:]
        assert cut_off.poll() is None, "the cut-off worker was to live on, not die"
        assert_each_graded_once(out, plan, db_url)
        before = (out / "grades.csv").read_bytes()
        link.cut.clear()  # the network is back: the late worker reports, or learns it was dropped
        time.sleep(8)
    finally:
        cluster.stop()
    assert_each_graded_once(out, plan, db_url)
    assert (out / "grades.csv").read_bytes() == before
    if db_url:  # the gradebook's own scores, after the late writer: the oracle's
        from nbgrader.api import Gradebook

        from autograder import course

        problem_of = {name: cell.problem for name, cell in course.grade_cells("01_sgd").items()}
        with Gradebook(db_url) as gb:
            for student in plan["01_sgd"]:
                scores = {}
                for notebook in gb.find_submission("01_sgd", student).notebooks:
                    for grade in notebook.grades:
                        problem = problem_of[grade.cell.name]
                        scores[problem] = scores.get(problem, 0.0) + grade.score
                assert scores == pytest.approx(expected(student, "01_sgd")), student


def test_two_batches_on_one_cluster_keep_their_seeds_apart(cluster, tmp_path):
    """Two courses grade on the same workers at once, each with its own seed: each batch's grades
    are its own seed's (mistakes-1 scores differently under the two), none borrowed the other's."""
    students = ["mistakes-1", "correct", "mistakes-2", "mistakes-3"]
    inbox = slice_inbox(tmp_path, students)
    other_seed = 5
    assert demo.expected_scores("01_sgd", demo.corpus()["mistakes-1"]["01_sgd"], other_seed) \
        != expected("mistakes-1", "01_sgd")  # the seeds tell the batches apart
    args = [arg if arg != str(SEED) else str(other_seed) for arg in cluster_args(cluster)]
    first = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(inbox), "--out", str(tmp_path / "a"),
                              *cluster_args(cluster)], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    run_grader(inbox, tmp_path / "b", args=args)
    _, stderr = first.communicate(timeout=400)
    assert first.returncode == 0, stderr[-3000:]
    assert_each_graded_once(tmp_path / "a", {"01_sgd": students})
    for (student, assignment), row in rows_of(tmp_path / "b").items():
        assert row["status"] == "graded", row["reason"]
        assert row["scores"] == pytest.approx(
            demo.expected_scores(assignment, demo.corpus()[student][assignment], other_seed)), student


def test_a_killed_coordinator_resumes_on_the_cluster(cluster, tmp_path):
    plan = {"01_sgd": ["correct", "mistakes-1", "mistakes-2", "mistakes-3", "tamper", "flood"]}
    inbox = inbox_of(tmp_path, plan)
    out = tmp_path / "out"
    batch = subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(inbox), "--out", str(out),
                              *cluster_args(cluster)], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    assert wait_until(lambda: len(list((out / "state").glob("*/*.json"))) >= 2, seconds=300)
    os.killpg(batch.pid, signal.SIGKILL)
    batch.wait()
    done = len(list((out / "state").glob("*/*.json")))
    assert 0 < done < len(plan["01_sgd"])
    result = run_grader(inbox, out, args=cluster_args(cluster))
    assert f"{done} already graded" in result.stderr
    assert_each_graded_once(out, plan)


def test_a_worker_that_cannot_isolate_is_refused_by_name(tmp_path):
    """One of two workers has no bubblewrap: the batch stops before grading, names that worker
    and the fix, exits 3 like a local environment failure, and records nothing."""
    cluster = DaskCluster(tmp_path / "dask").start(workers=1, bare_workers=1)
    try:
        result = run_grader(slice_inbox(tmp_path, ["correct"]), tmp_path / "out", args=cluster_args(cluster),
                            check=False)
    finally:
        cluster.stop()
    assert result.returncode == 3, result.stderr[-3000:]
    refused = [line for line in result.stderr.splitlines() if "cannot isolate" in line]
    assert refused and refused[0].count("cannot isolate") == 1, result.stderr[-3000:]
    assert "apt-get install bubblewrap" in refused[0]
    assert not (tmp_path / "out" / "state").exists()


def test_no_scheduler_is_an_environment_failure(tmp_path):
    result = run_grader(slice_inbox(tmp_path, ["correct"]), tmp_path / "out", check=False,
                        args=[*LIMITS, "--cluster", f"tcp://127.0.0.1:{free_port()}"])
    assert result.returncode == 3 and "cannot reach the Dask scheduler" in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "out" / "state").exists()


def test_without_cluster_no_dask_is_imported_or_started(tmp_path):
    """The local pool stays the default: grading without --cluster imports no Dask module in the
    grader or in any Python process it starts (its workers included: Python's import log, which
    every child inherits through the environment, names each module imported), so no Dask
    scheduler or worker runs."""
    inbox = slice_inbox(tmp_path, ["correct"])
    result = run_grader(inbox, tmp_path / "out", args=["--workers", "1", *LIMITS],
                        env={**os.environ, "PYTHONPROFILEIMPORTTIME": "1"})
    imported = [line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:") and "|" in line]
    assert imported.count("autograder.grading") >= 2  # the grader and its worker both logged
    assert [m for m in imported if m.split(".")[0] in ("dask", "distributed") or m == "autograder.cluster"] == []
    assert rows_of(tmp_path / "out")[("correct", "01_sgd")]["status"] == "graded"
