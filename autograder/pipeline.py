"""The grading pipeline: an inbox of submissions in, grades, feedback and a report out.

    collect -> register -> grade (parallel, sandboxed) -> feedback -> CSV -> report

Built on nbgrader: submissions land in nbgrader's ``submitted/`` folder, are graded by
``nbgrader autograde`` (with :class:`autograder.grading.SandboxExecute` as its executor),
stored in nbgrader's gradebook, and get nbgrader's HTML feedback. What it adds:

* **collect** from ``<student>/<assignment>/*.ipynb`` folders or an LMS zip
  (Canvas-style names ``<student>_<id>_<id>_<notebook>.ipynb``); unknown students,
  duplicates and unreadable files are reported, never dropped silently;
* **parallel** grading in long-lived worker processes (one sandbox user each); the
  sandbox phase runs concurrently, the gradebook write is serialised for SQLite and
  concurrent for PostgreSQL; or, with ``cluster``, the same steps (:func:`prepare`,
  :func:`sandbox_phase`, :func:`record`) with the sandbox phase on a Dask cluster's workers
  (:mod:`autograder.cluster`);
* **nothing lost**: every submission ends with a grade row or an explicit "could not
  grade: why" row; each finished submission is recorded atomically in
  ``<out>/state``, so re-running is idempotent and a killed batch resumes;
* a **progress** line with counts and time left; at the end every export (CSV files, report,
  rows.json, feedback) is made from the gradebook by :func:`autograder.export.export`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import multiprocessing
import os
import re
import select
import shutil
import signal
import sys
import threading
import tempfile
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import nbformat

from . import checks, course, grading, sandbox
from .checks import core

ROOT = course.ROOT
CANVAS_NAME = re.compile(r"^(?P<student>[A-Za-z0-9.\-]+?)(?:_LATE)?_(?P<uid>\d+)_(?P<sid>\d+)_(?P<file>.+\.ipynb)$")
MAX_NOTEBOOK = 20 * 2**20  # bytes: a notebook of answers is far smaller; outputs make it big
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


def _add_submission_without_autoflush(add_submission):
    """nbgrader 0.9.6's ``Gradebook.add_submission`` builds a submission's objects (notebooks,
    grades, comments) while it still queries (``find_student``, ``assignment.notebooks``); under
    SQLAlchemy 2 each query autoflushes the half-built graph, which SQLAlchemy refuses with a
    warning per object ("Object of type <SubmittedAssignment> not in session": a dozen lines a
    batch). The same method with autoflush held until its own ``add`` and ``commit``: the same
    rows are written, and nothing is flushed half-built."""
    def wrapped(self, *args, **kwargs):
        with self.db.no_autoflush:
            return add_submission(self, *args, **kwargs)
    wrapped.unpatched = add_submission
    return wrapped


def quiet_gradebook() -> None:
    """Install :func:`_add_submission_without_autoflush` on nbgrader's Gradebook (once)."""
    from nbgrader.api import Gradebook

    if not hasattr(Gradebook.add_submission, "unpatched"):
        Gradebook.add_submission = _add_submission_without_autoflush(Gradebook.add_submission)


quiet_gradebook()


class InputError(ValueError):
    """What was given cannot be graded as it is (an inbox that is no folder or zip, an output
    folder graded with other cells); the message says what to give."""


class EnvironmentFailure(RuntimeError):
    """Grading is impossible here (no sandbox, a broken install): nothing is recorded as a grade."""


@dataclass
class Submission:
    student: str
    assignment: str
    files: dict[str, str]        # notebook name -> path of the submitted file
    origin: str                  # where it came from, for the report
    problems: list[str] = field(default_factory=list)  # collection issues worth reporting


@dataclass
class Row:
    """One line of the outcome: a grade, or why there is none."""

    student: str
    assignment: str
    status: str                  # "graded" or "could not grade"
    total: float | None = None
    max_total: float | None = None
    scores: dict = field(default_factory=dict)    # problem -> points
    mistakes: dict = field(default_factory=dict)  # problem -> named mistake
    notes: list = field(default_factory=list)
    reason: str = ""
    seconds: float = 0.0
    final: bool = True           # False: a failure of ours, not the submission's; re-runs retry it
    # Filled by autograder.export from the gradebook (the one source of grades):
    max_scores: dict = field(default_factory=dict)  # problem -> its points
    pending: dict = field(default_factory=dict)     # problem -> points awaiting hand grading
    failures: dict = field(default_factory=dict)    # problem -> properties its hidden check failed


# --- collect ----------------------------------------------------------------------------------

def collect(inbox: Path, assignment: str | None, roster: set[str] | None,
            workdir: Path) -> tuple[list[Submission], list[Row], list[str]]:
    """Submissions found in ``inbox`` (a folder tree or an LMS zip), plus rows for
    what cannot be graded and a list of warnings (unknown students, duplicates)."""
    known = set(course.assignments())
    rows, warnings, found = [], [], {}
    if inbox.is_file() and not zipfile.is_zipfile(inbox):
        raise InputError(f"{inbox} is a file but not a zip archive: give an LMS zip or a folder of "
                         f"<student>/<assignment>/*.ipynb")
    if zipfile.is_zipfile(inbox):
        if not assignment:
            raise SystemExit("an LMS zip holds one assignment: say which with --assignment")
        extract = workdir / "unzipped"
        with zipfile.ZipFile(inbox) as archive:
            for member in archive.infolist():
                name = Path(member.filename).name
                if member.is_dir() or not name.endswith(".ipynb"):
                    continue
                match = CANVAS_NAME.match(name)
                if not match:
                    warnings.append(f"{inbox.name}: {member.filename} does not look like "
                                    f"<student>_<id>_<id>_<notebook>.ipynb; skipped")
                    continue
                target = extract / f"{match['student']}-{match['sid']}-{match['file']}"
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, length=1 << 20)
                key = (match["student"], assignment)
                found.setdefault(key, []).append((int(match["sid"]), match["file"], target,
                                                  f"{inbox.name}:{member.filename}"))
    else:
        for path in sorted(inbox.glob("*/*/*.ipynb")):
            student, assignment_id = path.parent.parent.name, path.parent.name
            found.setdefault((student, assignment_id), []).append((0, path.name, path, str(path)))
        for folder in sorted(p for p in inbox.glob("*/*") if p.is_dir()):
            if (folder.parent.name, folder.name) not in found:  # a submission with no notebook
                found[(folder.parent.name, folder.name)] = []
        for path in sorted(p for p in inbox.iterdir() if p.is_file() or not any(p.iterdir())):
            warnings.append(f"{path.name}: not a <student>/<assignment>/ folder; ignored")

    submissions, outsiders = [], {}
    for (student, assignment_id), items in sorted(found.items()):
        if not STUDENT_ID.match(student):
            rows.append(Row(student, assignment_id, "could not grade",
                            reason=f"the student id {student!r} is not a valid folder name"))
            continue
        if assignment_id not in known:
            rows.append(Row(student, assignment_id, "could not grade",
                            reason=f"unknown assignment {assignment_id!r} (known: {', '.join(sorted(known))})"))
            continue
        notes = []
        if roster is not None and student not in roster:
            outsiders[student] = outsiders.get(student, 0) + 1
            notes.append("not in the roster")
        expected = course.notebooks(assignment_id)
        files = {}
        for sid, filename, path, origin in sorted(items, key=lambda item: item[0], reverse=True):
            stem = re.sub(r"(-\d+)?\.ipynb$", "", filename)  # LMS resubmissions: sgd-1.ipynb
            name = stem if stem in expected else (expected[0] if len(expected) == 1 else None)
            if name is None:
                warnings.append(f"{student}/{assignment_id}: {filename} is not one of {expected}; ignored")
                continue
            if name in files:
                warnings.append(f"{student}/{assignment_id}: duplicate {filename} from {origin} "
                                f"ignored; the latest submission ({Path(files[name]).name}) is graded")
                notes.append("duplicate submission (latest graded)")
                continue
            files[name] = str(path)
        if not files:
            rows.append(Row(student, assignment_id, "could not grade",
                            reason=f"no notebook named {expected[0]}.ipynb in the submission"
                                   + ("" if items else " (the folder is empty)")))
            continue
        submissions.append(Submission(student, assignment_id, files, items[0][3], notes))
    for student, count in sorted(outsiders.items()):
        warnings.append(f"{student}: not in the roster; graded and added to the gradebook"
                        + (f" ({count} submissions)" if count > 1 else ""))
    return submissions, rows, warnings


def check_notebook(path: str) -> str | None:
    """Why a submitted file is not a gradable notebook (None if it is)."""
    size = os.path.getsize(path)
    if size > MAX_NOTEBOOK:
        return (f"the notebook is {size / 2**20:.1f} MiB, over the {MAX_NOTEBOOK // 2**20} MiB limit: "
                f"clear its outputs (Kernel > Restart and Clear Outputs) and submit again")
    try:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # noqa: BLE001 - any unreadable file gets its reason
        return f"not a valid Jupyter notebook ({type(exc).__name__}: {str(exc)[:120]})"
    return None


# --- grade --------------------------------------------------------------------------------------

@dataclass
class Config:
    out: Path
    seed: int
    workers: int
    isolation: str
    db_url: str
    limits: sandbox.Limits
    allow_unsandboxed: bool = False


ENVIRONMENT = "environment failure"
_worker: dict = {}


def _die_with_grader(grader: int) -> None:
    """SIGKILL this worker as soon as the grader process ``grader`` ends, however it ends (kill -9
    included): the worker's sandbox then dies with it (bubblewrap's --die-with-parent). The
    worker's own parent is the forkserver, which outlives a killed grader, so watch the grader."""
    try:
        pidfd = os.pidfd_open(grader)
    except ProcessLookupError:
        os._exit(1)

    def watch():
        select.select([pidfd], [], [])  # readable once the process has exited
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="die-with-grader", daemon=True).start()


def _init_worker(config: Config, slots, grader: int) -> None:
    """Runs once per worker process: a sandbox slot and a configured NbGraderAPI."""
    _die_with_grader(grader)
    open_grader(config, slots.get())


def open_grader(config: Config, slot: int) -> contextlib.ExitStack:
    """This process grades (a local worker, or the coordinator of a cluster batch, which runs
    no sandbox): the config, a sandbox slot, a configured NbGraderAPI, the checks imported."""
    _worker["slot"] = slot
    _worker["config"] = config
    os.environ[core.SEED_ENV] = str(config.seed)
    stack = contextlib.ExitStack()
    _worker["api"] = stack.enter_context(course.nbgrader_api(**_nbgrader_overrides(config)))
    _worker["stack"] = stack
    checks.modules()  # import every checks module (and optimkit) once, not per submission
    return stack


def _nbgrader_overrides(config: Config) -> dict:
    """The output folder is nbgrader's course folder (the default is autograder/course, as in
    nbgrader_config.py, so nbgrader's own commands see the same gradebook and files)."""
    out = config.out.resolve()
    return {"CourseDirectory.db_url": config.db_url,
            # Each batch its own copy of the sources: two batches (two courses on one cluster)
            # never rewrite the notebooks the other is registering.
            "CourseDirectory.source_directory": str(out / "source"),
            "CourseDirectory.submitted_directory": str(out / "submitted"),
            "CourseDirectory.autograded_directory": str(out / "autograded"),
            "CourseDirectory.feedback_directory": str(out / "feedback"),
            "SandboxExecute.seed": config.seed,
            "SandboxExecute.seed_file": str(out / "seed"),
            "SandboxExecute.isolation": config.isolation,
            "SandboxExecute.allow_unsandboxed": config.allow_unsandboxed,
            "SandboxExecute.cache_dir": str(config.out / "cache"),
            "SandboxExecute.cell_timeout": config.limits.cell_timeout,
            "SandboxExecute.wall_clock": config.limits.wall_clock}


@contextlib.contextmanager
def _gradebook_lock(config: Config):
    """SQLite has one writer at a time; PostgreSQL takes concurrent writers."""
    if not config.db_url.startswith("sqlite"):
        yield
        return
    with open(config.out / "gradebook.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def submission_key(sub: Submission, seed: int) -> str:
    digest = hashlib.sha256(f"{seed}:{sub.student}:{sub.assignment}".encode())
    for name in sorted(sub.files):
        digest.update(name.encode())
        digest.update(Path(sub.files[name]).read_bytes())
    return digest.hexdigest()[:32]


def grade_submission(sub: Submission) -> Row:
    """In a worker: sandbox phase (concurrent), then nbgrader autograde + feedback."""
    config: Config = _worker["config"]
    started = time.monotonic()
    row, prepared = prepare(sub)
    if prepared is not None:
        with failures(row):
            settings = grading.Settings(seed=config.seed, isolation=config.isolation, limits=config.limits,
                                        slot=_worker["slot"])
            graded = sandbox_phase(sub.assignment, {name: nb for name, (_, nb) in prepared.items()}, settings)
        if row.status == "graded":
            record(sub, row, prepared, graded)
    row.seconds = round(time.monotonic() - started, 3)
    return row


@contextlib.contextmanager
def failures(row: Row):
    """What went wrong while grading ``row``'s submission, as the row's status: the sandbox or the
    machine failing is an environment failure (the batch stops), anything else of ours is a
    non-final "could not grade" (a re-run retries it); never a grade."""
    try:
        yield
    except (grading.SandboxError, sandbox.SandboxUnavailable) as exc:
        row.status, row.reason, row.final = ENVIRONMENT, str(exc)[:500], False
    except Exception as exc:  # noqa: BLE001 - one bad submission never stops the batch
        # Not the submission's doing as far as we know: reported, never cached as final.
        row.status, row.reason, row.final = "could not grade", f"{type(exc).__name__}: {exc}"[:500], False


def prepare(sub: Submission) -> tuple[Row, dict | None]:
    """Where the gradebook is: check the files, put them in nbgrader's submitted/ folder and
    sanitise them like nbgrader (restore test cells from the gradebook). Returns the row and
    {notebook name: (cache key, notebook)} to grade, or None when the row already says why not."""
    config: Config = _worker["config"]
    api = _worker["api"]
    row = Row(sub.student, sub.assignment, "graded", notes=list(sub.problems))
    prepared = {}
    with failures(row):
        for name, path in sub.files.items():
            reason = check_notebook(path)
            if reason:
                row.status, row.reason = "could not grade", f"{name}.ipynb: {reason}"
                return row, None
        place(sub, {name: Path(path).read_bytes() for name, path in sub.files.items()})
        for name, nb in _sanitized(api, sub, config).items():
            prepared[name] = (grading.notebook_key(nb, config.seed), nb)
    return row, (prepared if row.status == "graded" else None)


def place(sub: Submission, notebooks: dict[str, bytes]) -> None:
    """The submission's notebooks where nbgrader's autograde reads them, in this process's course
    folder: submitted/<student>/<assignment>/<notebook>.ipynb."""
    api = _worker["api"]
    folder = Path(api.coursedir.format_path(api.coursedir.submitted_directory, sub.student, sub.assignment))
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, data in notebooks.items():
        (folder / f"{name}.ipynb").write_bytes(data)
    (folder / "timestamp.txt").write_text(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))


def sandbox_phase(assignment: str, notebooks: dict, settings: grading.Settings) -> dict:
    """The expensive part, run wherever there is a sandbox (a local worker or a cluster's): each
    notebook graded, as {name: (graded notebook, summary)}. Needs no gradebook and no files."""
    return {name: grading.grade_notebook(nb, assignment, settings) for name, nb in notebooks.items()}


def record(sub: Submission, row: Row, prepared: dict, graded: dict) -> Row:
    """Where the gradebook is: leave the graded notebooks where SandboxExecute finds them, then
    nbgrader records them (OverwriteCells, SaveAutoGrades, ...; one writer at a time on SQLite),
    writes the feedback, and the row gets the gradebook's scores."""
    config: Config = _worker["config"]
    api = _worker["api"]
    with failures(row):
        cache = config.out / "cache"
        cache.mkdir(parents=True, exist_ok=True)
        for name, (nb, summary) in graded.items():
            key = prepared[name][0]
            tmp = cache / f".{key}.{os.getpid()}.ipynb"
            nbformat.write(nb, tmp)
            os.replace(tmp, cache / f"{key}.ipynb")
            row.mistakes.update(summary["mistakes"])
            row.notes += summary["notes"]
        with _gradebook_lock(config):
            result = api.autograde(sub.assignment, sub.student, force=True, create=True)
        if not result["success"]:  # nbgrader's own machinery, not the submission: not final
            row.status, row.reason, row.final = ("could not grade", "nbgrader autograde failed: "
                                                 + _last_error(result), False)
            return row
        feedback = api.generate_feedback(sub.assignment, sub.student, force=True)
        if not feedback["success"]:
            row.notes.append("feedback could not be generated: " + _last_error(feedback))
        from . import export  # (export imports this module)

        with api.gradebook as gb:
            submitted = gb.find_submission(sub.assignment, sub.student)
            row.total, row.max_total = float(submitted.score), float(submitted.max_score)
            cells = {g.name: float(g.score) for nb in submitted.notebooks for g in nb.grades}
            if feedback["success"]:  # the page is up to date with the gradebook: export keeps it
                export.stamp_feedback(config.out, sub.student, sub.assignment, gb)
        row.scores = per_problem(sub.assignment, cells)
    return row


# nbgrader's closing lines after a failure, which name no cause.
NBGRADER_GENERIC = ("Please see the the above traceback", "There was an error processing")


def _last_error(result: dict) -> str:
    """The most specific error line of an nbgrader API result: its last error line that names a
    cause (e.g. "RuntimeError: Cannot add or remove cells ..."), not the generic ones after it."""
    lines = [line.strip() for line in (result.get("log") or "").splitlines()
             if ("ERROR" in line or "Error" in line) and not any(g in line for g in NBGRADER_GENERIC)]
    return (lines[-1] if lines else result.get("error") or "unknown error")[-300:]


def _sanitized(api, sub: Submission, config: Config) -> dict:
    """Each notebook as nbgrader's autograde will see it before it executes: outputs cleared, ids
    deduplicated, the kernelspec and the test cells restored from the gradebook."""
    from nbgrader.preprocessors import ClearOutput, DeduplicateIds, OverwriteKernelspec

    notebooks = {}
    for name, path in sub.files.items():
        nb = nbformat.read(path, as_version=4)
        resources = {"nbgrader": {"notebook": name, "assignment": sub.assignment, "student": sub.student,
                                  "db_url": config.db_url}}
        for pp in (ClearOutput, DeduplicateIds, OverwriteKernelspec, grading.RestoreCells):
            nb, resources = pp(parent=api).preprocess(nb, resources)
        notebooks[name] = nb
    return notebooks


def per_problem(assignment: str, scores: dict[str, float]) -> dict[str, float]:
    """Scores by grade cell id, summed by the problem each cell grades (solutions/ declares it)."""
    declared = course.grade_cells(assignment)
    totals: dict[str, float] = {}
    for cell_id, score in scores.items():
        problem = declared[cell_id].problem if cell_id in declared else cell_id
        totals[problem] = round(totals.get(problem, 0.0) + score, 6)
    return totals


# --- state, progress, outputs --------------------------------------------------------------------

def _state_path(out: Path, sub_or_row) -> Path:
    return out / "state" / sub_or_row.assignment / f"{sub_or_row.student}.json"


def load_done(out: Path, sub: Submission, key: str) -> Row | None:
    path = _state_path(out, sub)
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return Row(**data["row"]) if data.get("key") == key else None


def save_done(out: Path, row: Row, key: str) -> None:
    path = _state_path(out, row)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "row": asdict(row)}))
    os.replace(tmp, path)  # atomic: a kill leaves the old state or the new one, never half


class Progress:
    """One updating line on stderr: bar, counts, rate (submissions a minute), time left."""

    def __init__(self, total: int, label: str):
        self.total, self.label, self.done, self.failed = total, label, 0, 0
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()

    def update(self, failed: bool = False) -> None:
        self.done += 1
        self.failed += failed
        if not self.tty and self.done < self.total and self.done % max(1, self.total // 10):
            return  # a log gets a line per tenth, not per submission
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done) if self.done else 0
        rate = self.done / elapsed * 60 if elapsed > 0 else 0.0
        width = 24
        filled = int(width * self.done / max(self.total, 1))
        line = (f"{self.label} [{'#' * filled}{'-' * (width - filled)}] {self.done}/{self.total}"
                f"  could not grade: {self.failed}  {rate:5.1f}/min  elapsed {elapsed:5.1f} s  left ~{left:5.1f} s")
        sys.stderr.write(("\r" + line) if self.tty else line + "\n")
        if self.tty and self.done == self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def grade_inbox(inbox: Path, *, out: Path, assignment: str | None = None, roster: set[str] | None = None,
          workers: int = 0, seed: int | None = None, isolation: str | None = None,
          db_url: str | None = None, limits: sandbox.Limits = sandbox.Limits(),
          allow_unsandboxed: bool = False, quiet: bool = False, cluster: str | None = None,
          missing: str = "zero") -> list[Row]:
    """Grade everything in ``inbox``; returns one Row per submission of the course folder
    ``out`` (this batch's and earlier ones'). With ``cluster`` (a Dask scheduler's address), the
    sandbox phase runs on that cluster's workers instead of a local pool. Raises
    :class:`EnvironmentFailure` when grading is impossible here, :class:`Busy` when another batch holds ``out``."""
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr))
    if cluster is None:
        isolation = isolation or sandbox.detect()
        try:
            grading.check_isolation(isolation, allow_unsandboxed)
        except sandbox.SandboxUnavailable as exc:
            raise EnvironmentFailure(str(exc)) from None
        say(f"isolation: {isolation}" + ("" if isolation != "none" else "\n" + sandbox.WARNING_NONE))
    # On a cluster each worker checks its own sandbox (autograder.cluster); this process runs none.
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)  # gradebook, seed and submissions: the grader's alone
    _remove_legacy_jobs()
    with exclusive(out):
        return _grade_locked(inbox, out, assignment, roster, workers, seed, isolation or "", db_url, limits,
                             allow_unsandboxed, say, quiet, cluster, missing)


def _remove_legacy_jobs(path: Path = Path("/var/tmp/descent-grading")) -> None:
    """Earlier versions left job folders (plan and seed) here after a kill; today's sandbox keeps
    nothing on disk. Remove ours."""
    with contextlib.suppress(OSError):
        if path.stat().st_uid == os.geteuid():
            shutil.rmtree(path, ignore_errors=True)


class Busy(RuntimeError):
    """Another batch is grading into the same course folder."""


@contextlib.contextmanager
def exclusive(out: Path):
    """One batch per course folder at a time: the second is told so at once, and changes nothing."""
    with open(out / ".batch.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise Busy(f"{out} is being graded by another batch ({holder}): wait for it to finish "
                       f"(its grades will include the earlier ones), or grade into another --out") from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"pid {os.getpid()}, started {time.strftime('%H:%M:%S')}")
        lock.flush()
        try:
            yield
        finally:
            lock.seek(0)
            lock.truncate()


def _grade_locked(inbox, out, assignment, roster, workers, seed, isolation, db_url, limits,
                  allow_unsandboxed, say, quiet, cluster, missing) -> list[Row]:
    seed = seed if seed is not None else grading.course_seed(out / "seed")
    db_url = db_url or f"sqlite:///{out / 'gradebook.db'}"
    workers = workers or max(1, min(os.cpu_count() or 1, 8))
    environment: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="descent-inbox-") as tmp, contextlib.ExitStack() as stack:
        submissions, rows, warnings = collect(Path(inbox), assignment, roster, Path(tmp))
        for warning in warnings:
            say(f"note: {warning}")
        config = Config(out=out, seed=seed, workers=workers, isolation=isolation, db_url=db_url,
                        limits=limits, allow_unsandboxed=allow_unsandboxed)
        if cluster is not None:
            from . import cluster as dask_cluster  # Dask is imported only when a cluster is asked for

            # Refuses (EnvironmentFailure) before anything is recorded if a worker cannot isolate.
            executor = stack.enter_context(dask_cluster.Cluster(cluster, config, say))
            isolation, workers = executor.isolation, executor.slots
        register(config, {s.assignment for s in submissions}, {s.student for s in submissions} | (roster or set()))
        todo, keys = [], {}
        for sub in submissions:
            keys[(sub.student, sub.assignment)] = key = submission_key(sub, seed)
            done = load_done(out, sub, key)
            if done is not None:
                rows.append(done)  # already graded in an earlier (maybe killed) run: not again
            else:
                todo.append(sub)
        say(f"{len(submissions)} submissions: {len(submissions) - len(todo)} already graded, "
            f"{len(todo)} to grade with {workers} workers" + (f" on {cluster}" if cluster else ""))
        progress = Progress(len(todo), "grading")
        stop = threading.Event()  # set: an environment failure, the rest would fail the same way
        results = _local_pool(config, todo, stop) if cluster is None else executor.results(todo, stop)
        for sub, row in results if todo else ():
            if row.status == ENVIRONMENT:
                environment.append(row)
                stop.set()
                continue
            if row.final:
                save_done(out, row, keys[(sub.student, sub.assignment)])
            rows.append(row)
            if not quiet:
                progress.update(failed=row.status != "graded")
    from . import export  # (export imports this module)

    rows = export.export(out, db_url=db_url, missing=missing, roster=roster, batch=rows,
                         isolation=isolation, warnings=warnings, say=say)
    say(f"done: {sum(r.status == 'graded' for r in rows)} graded, "
        f"{sum(r.status != 'graded' for r in rows)} could not be graded; see {out / 'report.html'}")
    if environment:
        raise EnvironmentFailure(
            f"grading stopped: {environment[0].reason}. {len(environment)} submission(s) hit this and "
            f"the rest were not started; nothing was recorded for them, so running the same command "
            f"again after fixing it grades them")
    return rows


def _local_pool(config: Config, todo: list[Submission], stop: threading.Event):
    """(submission, row) as each is graded by this machine's worker processes; once ``stop`` is
    set, the ones not started are cancelled."""
    ctx = multiprocessing.get_context("forkserver")
    slots = ctx.Queue()
    for slot in range(config.workers):
        slots.put(slot)
    with ProcessPoolExecutor(max_workers=config.workers, mp_context=ctx, initializer=_init_worker,
                             initargs=(config, slots, os.getpid())) as pool:
        futures = {pool.submit(grade_submission, sub): sub for sub in todo}
        for future in as_completed(futures):
            sub = futures[future]
            if future.cancelled():
                continue
            try:
                row = future.result()
            except Exception as exc:  # noqa: BLE001 - a dead worker loses no submission
                row = lost(sub, exc)
            yield sub, row
            if stop.is_set():
                for other in futures:
                    other.cancel()


def lost(sub: Submission, exc: BaseException) -> Row:
    """The row of a submission whose worker died under it: not final, so a re-run grades it."""
    return Row(sub.student, sub.assignment, "could not grade", final=False,
               reason=f"the grading worker failed: {type(exc).__name__}: {exc}"[:300])


def whole_course(out: Path, batch: list[Row]) -> list[Row]:
    """Every submission graded into ``out`` (earlier batches too), with this batch's rows on top."""
    rows = {}
    for path in sorted((out / "state").glob("*/*.json")):
        try:
            rows[(path.parent.name, path.stem)] = Row(**json.loads(path.read_text())["row"])
        except (OSError, ValueError, TypeError, KeyError):
            continue
    rows = {(r.assignment, r.student): r for r in rows.values()}
    rows.update({(r.assignment, r.student): r for r in batch})
    return [rows[k] for k in sorted(rows)]


def register(config: Config, assignments: set[str], students: set[str]) -> None:
    """Make the gradebook know the current assignments (cells, points) and the students."""
    course.build_source(config.out.resolve() / "source")
    with tempfile.TemporaryDirectory() as scratch, \
            course.nbgrader_api(**_nbgrader_overrides(config),
                                **{"CourseDirectory.release_directory": scratch}) as api:
        for assignment in sorted(assignments):
            result = api.generate_assignment(assignment, force=True, create=True)
            if not result["success"]:
                reason = _last_error(result)
                if "Cannot add or remove cells" in reason:  # nbgrader's rule for a graded assignment
                    raise InputError(
                        f"{assignment}'s graded cells in solutions/ differ from those it was graded with "
                        f"in {config.out} ({reason}); nbgrader keeps a graded assignment's cells fixed. "
                        f"Grade this version into a new --out folder, or check out the version of "
                        f"solutions/{assignment} this folder was graded with.")
                raise RuntimeError(f"could not register {assignment} in the gradebook: {reason}")
        with api.gradebook as gb:
            for student in sorted(students):
                gb.update_or_create_student(student)

