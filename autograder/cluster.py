"""Grading on a Dask cluster: the same pipeline, with the sandbox phase on the cluster's workers.

    python -m autograder grade INBOX --cluster tcp://HOST:8786

The coordinator (this process) keeps the course folder: it collects, registers, prepares each
submission (nbgrader's submitted/ folder, test cells restored from the gradebook), and writes
the state file, the CSV and the report. A worker gets the prepared notebooks as data and runs
:func:`autograder.pipeline.sandbox_phase` on them, the same function the local pool runs, in the
same sandbox: it needs the project installed and a sandbox, not the course folder. Recording a
result (:func:`autograder.pipeline.record`: ``nbgrader autograde`` from the graded notebooks,
then the feedback) happens where the gradebook can be written: with SQLite in the coordinator
alone, one submission at a time; with PostgreSQL on the workers, concurrently, each in a scratch
course folder of its own whose autograded notebook and feedback go back to the coordinator; there the
worker also prepares the submission, so the coordinator only sends files and collects rows.

A worker is ``dask worker tcp://HOST:8786 --nthreads 1 --resources sandbox=1`` (``make worker
SCHEDULER=tcp://HOST:8786``): grading tasks ask for one ``sandbox`` resource, so they go only to
workers that offer it, one at a time each. When the batch starts, :class:`GradingSetup` (a Dask
worker plugin, also sent to workers that join later) gives every worker the seed, the limits and a
sandbox slot of its own on its machine, and checks its sandbox; the batch refuses to start if any
worker cannot isolate, naming it (exit 3, nothing recorded). The seed goes to the workers (whose
grader judges the hidden checks) and never into a sandbox; the plugin is unregistered at the end.

Faults are Dask's to handle: a worker that dies mid-task (SIGKILL, a lost node) has its task run
again elsewhere (``distributed.scheduler.allowed-failures`` times), and a result reaches the
coordinator once per submission, however many times it ran: only the coordinator writes the
state and the CSV, and a gradebook entry is nbgrader's one row per student and assignment,
written again (not added) by a second run, so nothing is doubled or half-written. A worker cut off
from the network is dropped by the scheduler when its heartbeats stop (``worker-ttl``) and its
tasks run elsewhere; its late result is refused, and a late gradebook write (PostgreSQL) writes the
same deterministic grade again (tested by cutting a worker's link mid-task). A killed coordinator
loses the unrecorded rest; the same command resumes from the state files as a local batch does.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import secrets
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import distributed
from distributed.diagnostics.plugin import WorkerPlugin

from . import checks, grading, pipeline, sandbox

PLUGIN = "descent-grading"  # one plugin per batch: PLUGIN-<token>, so batches sharing a cluster keep apart
RESOURCE = "sandbox"
WAIT_FOR_WORKERS = 60.0  # seconds a batch waits for a first worker offering a sandbox
FIX = ("install bubblewrap there (apt-get install bubblewrap) and allow user namespaces, or stop that "
       "worker; `python -m autograder isolation` on that node says what is missing")


class GradingSetup(WorkerPlugin):
    """On each worker, for one batch: the grading settings and a sandbox slot of its own; with a
    PostgreSQL gradebook also a course folder of its own (a scratch one), so that it records its
    submissions in the gradebook itself, concurrently with the other workers."""

    def __init__(self, config: pipeline.Config):
        self.seed, self.isolation, self.allow_unsandboxed = config.seed, config.isolation, config.allow_unsandboxed
        self.limits, self.db_url = config.limits, config.db_url

    def setup(self, worker) -> None:
        self.slot, self._slot_lock = claim_slot()
        self.mode = self.isolation or sandbox.detect()
        try:
            grading.check_isolation(self.mode, self.allow_unsandboxed)
            self.problem = None
        except sandbox.SandboxUnavailable as exc:
            self.problem = str(exc)
        self.settings = grading.Settings(seed=self.seed, isolation=self.mode, limits=self.limits, slot=self.slot)
        self.host = socket.gethostname()
        self.scratch = self._grader = None
        if records_on_workers(self.db_url):
            self.scratch = Path(tempfile.mkdtemp(prefix="descent-worker-"))
            self._grader = pipeline.open_grader(pipeline.Config(
                out=self.scratch, seed=self.seed, workers=1, isolation=self.mode, db_url=self.db_url,
                limits=self.limits, allow_unsandboxed=self.allow_unsandboxed), slot=self.slot)
        checks.modules()  # import every checks module once, not per submission

    def teardown(self, worker) -> None:
        self.settings = self.seed = None
        if self._grader is not None:
            self._grader.close()
            shutil.rmtree(self.scratch, ignore_errors=True)
        self._slot_lock.close()


def records_on_workers(db_url: str) -> bool:
    """A database that takes concurrent writers: the workers record (SQLite: the coordinator alone)."""
    return db_url.startswith(("postgresql", "postgres:"))


def claim_slot(folder: Path = Path(tempfile.gettempdir())) -> tuple[int, object]:
    """The lowest sandbox slot no other worker process on this machine holds (a lock file each),
    so that in the 'user' mode two workers of one node never share a sandbox user."""
    slot = 0
    while True:
        lock = open(folder / f"descent-sandbox-slot-{os.geteuid()}-{slot}.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return slot, lock
        except BlockingIOError:
            lock.close()
            slot += 1


def worker_isolation(plugin: str, dask_worker) -> dict:
    """Run on each worker by the coordinator: what its sandbox is, and why not when it cannot run."""
    setup = dask_worker.plugins[plugin]
    return {"mode": setup.mode, "problem": setup.problem, "host": setup.host, "slot": setup.slot}


def _setup(plugin: str):
    worker = distributed.get_worker()
    setup = worker.plugins[plugin]
    if setup.problem:
        raise sandbox.SandboxUnavailable(f"worker {worker.address} on {setup.host} cannot isolate: "
                                         f"{setup.problem}; {FIX}")
    return worker, setup


def grade_remote(plugin: str, assignment: str, notebooks: dict) -> dict:
    """A grading task (SQLite: the coordinator prepares and records), on a worker set up by the
    batch's ``plugin``: the prepared notebooks of one submission through the sandbox phase."""
    worker, setup = _setup(plugin)
    started = time.monotonic()
    graded = pipeline.sandbox_phase(assignment, notebooks, setup.settings)
    return {"graded": graded, "seconds": time.monotonic() - started, "worker": worker.address}


def grade_and_record_remote(plugin: str, submission: pipeline.Submission, files: dict[str, bytes]) -> dict:
    """A grading task with a PostgreSQL gradebook, all of it on the worker: the submitted files
    placed and prepared in the worker's scratch course folder (so the coordinator's one-at-a-time
    prepare step is not the batch's limit), graded in the sandbox, recorded; the row comes back
    with the autograded notebook and the feedback as files."""
    worker, setup = _setup(plugin)
    started = time.monotonic()
    inbox = setup.scratch / "inbox" / submission.student / submission.assignment
    inbox.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (inbox / f"{name}.ipynb").write_bytes(data)
    here = dataclasses.replace(submission, files={name: str(inbox / f"{name}.ipynb") for name in files})
    row, prepared = pipeline.prepare(here)
    if prepared is not None:
        graded = pipeline.sandbox_phase(submission.assignment, {n: nb for n, (_, nb) in prepared.items()},
                                        setup.settings)
        pipeline.record(here, row, prepared, graded)
    shutil.rmtree(inbox, ignore_errors=True)
    return {"row": row, "files": _take_outputs(setup.scratch, submission),
            "seconds": time.monotonic() - started, "worker": worker.address}


OUTPUTS = ("autograded", "feedback")  # what nbgrader writes per submission, besides the gradebook


def _take_outputs(course: Path, sub: pipeline.Submission) -> dict[str, bytes]:
    """The files nbgrader wrote for ``sub`` in a worker's course folder, removed from it."""
    files = {}
    for folder in (*OUTPUTS, "submitted"):
        root = course / folder / sub.student / sub.assignment
        if folder in OUTPUTS:
            files.update({str(p.relative_to(course)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()})
        shutil.rmtree(root, ignore_errors=True)
    return files


def put_outputs(course: Path, sub: pipeline.Submission, files: dict[str, bytes]) -> None:
    """A worker's files for ``sub`` into the course folder, in place of earlier ones."""
    for folder in OUTPUTS:
        shutil.rmtree(course / folder / sub.student / sub.assignment, ignore_errors=True)
    for name, data in files.items():
        path = course / name
        if path.resolve().is_relative_to(course.resolve()) and Path(name).parts[0] in OUTPUTS:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


class Cluster:
    """A batch's connection to a Dask scheduler, with every worker checked; a context manager."""

    def __init__(self, address: str, config: pipeline.Config, say):
        self.address, self.config, self.say = address, config, say
        self.plugin = f"{PLUGIN}-{secrets.token_hex(6)}"

    def __enter__(self) -> "Cluster":
        try:
            self.client = distributed.Client(self.address, timeout="20s", set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise pipeline.EnvironmentFailure(
                f"cannot reach the Dask scheduler at {self.address} ({type(exc).__name__}: {exc}); start "
                f"one with `dask scheduler` and workers with `make worker SCHEDULER={self.address}`") from None
        try:
            self._check_workers()
            self.grader = pipeline.open_grader(self.config, slot=0)  # prepares and records; no sandbox
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.client.unregister_worker_plugin(self.plugin)  # the seed leaves the workers with the batch
        except Exception:  # noqa: BLE001 - a scheduler gone already holds nothing
            pass
        self.client.close()
        if getattr(self, "grader", None) is not None:
            self.grader.close()

    def _sandbox_workers(self) -> dict:
        workers = self.client.scheduler_info(n_workers=-1)["workers"]
        return {address: info for address, info in workers.items() if info.get("resources", {}).get(RESOURCE)}

    def _check_workers(self) -> None:
        config = self.config
        self.client.register_plugin(GradingSetup(config), name=self.plugin)
        deadline = time.monotonic() + WAIT_FOR_WORKERS
        while not self._sandbox_workers() and time.monotonic() < deadline:
            time.sleep(0.5)
        workers = self._sandbox_workers()
        if not workers:
            raise pipeline.EnvironmentFailure(
                f"no worker of {self.address} offers a '{RESOURCE}' resource after {WAIT_FOR_WORKERS:.0f} s: "
                f"start workers with `make worker SCHEDULER={self.address}` (dask worker {self.address} "
                f"--nthreads 1 --resources {RESOURCE}=1)")
        reports = self.client.run(worker_isolation, self.plugin, workers=list(workers))
        refused = {address: r for address, r in reports.items() if r["problem"]}
        if refused:
            raise pipeline.EnvironmentFailure("; ".join(
                f"worker {address} on {r['host']} cannot isolate: {r['problem']}"
                for address, r in sorted(refused.items())) + f". Fix: {FIX}")
        self.slots = sum(int(info["resources"][RESOURCE]) for info in workers.values())
        modes = sorted({r["mode"] for r in reports.values()})
        self.isolation = "/".join(modes)
        for address, r in sorted(reports.items()):
            self.say(f"worker {address} on {r['host']}: isolation {r['mode']}, sandbox slot {r['slot']}")
        if "none" in modes:
            self.say(sandbox.WARNING_NONE)

    def results(self, todo: list, stop: threading.Event):
        """(submission, row) as each is graded on the cluster; once ``stop`` is set, the tasks not
        finished are cancelled. Submissions are prepared and sent a few at a time (twice the
        cluster's sandboxes ahead), so results are recorded from the start of a long batch."""
        queue, ready, futures = list(reversed(todo)), [], {}
        completed = distributed.as_completed(loop=self.client.loop)
        records_here = not records_on_workers(self.config.db_url)

        def send_more() -> None:
            while queue and len(futures) < max(4, 2 * self.slots):
                sub = queue.pop()
                key = f"grade-{self.plugin}-{sub.assignment}-{sub.student}"
                if records_here:
                    row, prepared = pipeline.prepare(sub)
                    if prepared is None:
                        ready.append((sub, row))
                        continue
                    future = self.client.submit(
                        grade_remote, self.plugin, sub.assignment, {n: nb for n, (_, nb) in prepared.items()},
                        key=key, resources={RESOURCE: 1}, pure=False)
                else:  # the worker prepares, grades and records
                    row, prepared = pipeline.Row(sub.student, sub.assignment, "graded", notes=list(sub.problems)), None
                    future = self.client.submit(
                        grade_and_record_remote, self.plugin, sub,
                        {n: Path(p).read_bytes() for n, p in sub.files.items()},
                        key=key, resources={RESOURCE: 1}, pure=False)
                futures[future] = (sub, row, prepared)
                completed.add(future)

        send_more()
        while ready or futures:
            if ready:
                yield ready.pop(0)
            else:
                future = next(completed)
                sub, row, prepared = futures.pop(future)
                if future.cancelled():
                    continue
                yield sub, self._settle(future, sub, row, prepared)
            if stop.is_set():  # what runs is dropped unrecorded: the same command grades it later
                queue.clear()
                self.client.cancel(list(futures))
                futures.clear()
            send_more()

    def _settle(self, future, sub, row: pipeline.Row, prepared: dict) -> pipeline.Row:
        """The row of a finished task: recorded here (SQLite) or on the worker (PostgreSQL)."""
        started = time.monotonic()
        try:
            result = future.result()
        except (grading.SandboxError, sandbox.SandboxUnavailable) as exc:
            row.status, row.reason, row.final = pipeline.ENVIRONMENT, str(exc)[:500], False
            return row
        except Exception as exc:  # noqa: BLE001 - a worker lost too often: not the submission's doing
            return pipeline.lost(sub, exc)
        if "row" in result:  # recorded on the worker
            row = result["row"]
            put_outputs(self.config.out, sub, result["files"])
        else:
            pipeline.record(sub, row, prepared, result["graded"])
        row.seconds = round(result["seconds"] + time.monotonic() - started, 3)
        return row
