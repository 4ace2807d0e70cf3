"""Grading on a Dask cluster: the same pipeline, with the sandbox phase on the cluster's workers.

    python -m autograder grade INBOX --cluster tcp://HOST:8786

The coordinator (this process) keeps everything that touches the course folder: it collects,
registers, prepares each submission (nbgrader's submitted/ folder, test cells restored from the
gradebook), and records each result (the cache, ``nbgrader autograde``, feedback, the state
file, the CSV and the report), so with SQLite only it writes the gradebook. A worker gets the
prepared notebooks as data and runs :func:`autograder.pipeline.sandbox_phase` on them, the same
function the local pool runs, in the same sandbox: it needs the project installed and a sandbox,
not the course folder.

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
state, the gradebook and the CSV, so nothing is doubled or half-written. A killed coordinator
loses the unrecorded rest; the same command resumes from the state files as a local batch does.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import distributed
from distributed.diagnostics.plugin import WorkerPlugin

from . import checks, grading, pipeline, sandbox

PLUGIN = "descent-grading"
RESOURCE = "sandbox"
WAIT_FOR_WORKERS = 60.0  # seconds a batch waits for a first worker offering a sandbox
FIX = ("install bubblewrap there (apt-get install bubblewrap) and allow user namespaces, or stop that "
       "worker; `python -m autograder isolation` on that node says what is missing")


class GradingSetup(WorkerPlugin):
    """On each worker, for one batch: the grading settings and a sandbox slot of its own."""

    def __init__(self, seed: int, isolation: str, allow_unsandboxed: bool, limits: sandbox.Limits):
        self.seed, self.isolation, self.allow_unsandboxed, self.limits = seed, isolation, allow_unsandboxed, limits

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
        checks.modules()  # import every checks module once, not per submission

    def teardown(self, worker) -> None:
        self.settings = self.seed = None
        self._slot_lock.close()


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


def worker_isolation(dask_worker) -> dict:
    """Run on each worker by the coordinator: what its sandbox is, and why not when it cannot run."""
    setup = dask_worker.plugins[PLUGIN]
    return {"mode": setup.mode, "problem": setup.problem, "host": setup.host, "slot": setup.slot}


def grade_remote(assignment: str, notebooks: dict) -> dict:
    """A grading task: the prepared notebooks of one submission through the sandbox phase."""
    worker = distributed.get_worker()
    setup = worker.plugins[PLUGIN]
    if setup.problem:
        raise sandbox.SandboxUnavailable(f"worker {worker.address} on {setup.host} cannot isolate: "
                                         f"{setup.problem}; {FIX}")
    started = time.monotonic()
    graded = pipeline.sandbox_phase(assignment, notebooks, setup.settings)
    return {"graded": graded, "seconds": time.monotonic() - started, "worker": worker.address}


class Cluster:
    """A batch's connection to a Dask scheduler, with every worker checked; a context manager."""

    def __init__(self, address: str, config: pipeline.Config, say):
        self.address, self.config, self.say = address, config, say

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
            self.client.unregister_worker_plugin(PLUGIN)  # the seed leaves the workers with the batch
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
        self.client.register_plugin(GradingSetup(config.seed, config.isolation, config.allow_unsandboxed,
                                                 config.limits), name=PLUGIN)
        deadline = time.monotonic() + WAIT_FOR_WORKERS
        while not self._sandbox_workers() and time.monotonic() < deadline:
            time.sleep(0.5)
        workers = self._sandbox_workers()
        if not workers:
            raise pipeline.EnvironmentFailure(
                f"no worker of {self.address} offers a '{RESOURCE}' resource after {WAIT_FOR_WORKERS:.0f} s: "
                f"start workers with `make worker SCHEDULER={self.address}` (dask worker {self.address} "
                f"--nthreads 1 --resources {RESOURCE}=1)")
        reports = self.client.run(worker_isolation, workers=list(workers))
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
        finished are cancelled."""
        futures = {}
        for sub in todo:
            row, prepared = pipeline.prepare(sub)
            if prepared is None:
                yield sub, row
                continue
            future = self.client.submit(
                grade_remote, sub.assignment, {name: nb for name, (_, nb) in prepared.items()},
                key=f"grade-{sub.assignment}-{sub.student}-{prepared[min(prepared)][0][:12]}",
                resources={RESOURCE: 1}, pure=False)
            futures[future] = (sub, row, prepared)
        for future in distributed.as_completed(list(futures), loop=self.client.loop):
            sub, row, prepared = futures.pop(future)
            if future.cancelled():
                continue
            started = time.monotonic()
            try:
                result = future.result()
            except (grading.SandboxError, sandbox.SandboxUnavailable) as exc:
                row.status, row.reason, row.final = pipeline.ENVIRONMENT, str(exc)[:500], False
            except Exception as exc:  # noqa: BLE001 - a worker lost too often: not the submission's doing
                row = pipeline.lost(sub, exc)
            else:
                pipeline.record(sub, row, prepared, result["graded"])
                row.seconds = round(result["seconds"] + time.monotonic() - started, 3)
            yield sub, row
            if stop.is_set() and futures:
                self.client.cancel(list(futures))
