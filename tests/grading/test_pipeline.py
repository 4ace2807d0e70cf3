"""The grading pipeline on the demo corpus: exact scores, named mistakes, every attack denied,
nothing lost (idempotent re-runs, resume after kill -9, no process outliving its grader), one
batch per course folder, environment failures that are never grades, LMS zips, bad input."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from autograder import demo, sandbox
from autograder.checks import core

ROOT = Path(__file__).resolve().parents[2]
SEED = 20261123
ARGS = ["--workers", "2", "--wall-clock", "40", "--cell-timeout", "8", "--seed", str(SEED)]
SUBMISSIONS = demo.DEMO / "submissions"
ASSIGNMENTS = sorted(demo.corpus()["correct"])
MODE = sandbox.detect()


def run_grader(inbox, out, *extra, check=True, args=ARGS, **kwargs):
    result = subprocess.run([sys.executable, "-m", "autograder", "grade", str(inbox), "--out", str(out),
                             *args, *extra], capture_output=True, text=True, cwd=ROOT, **kwargs)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def rows_of(out: Path) -> dict:
    return {(r["student"], r["assignment"]): r for r in json.loads((out / "rows.json").read_text())}


def slice_inbox(tmp: Path, students: list[str], assignment: str = "01_sgd", name: str = "inbox") -> Path:
    inbox = tmp / name
    for student in students:
        shutil.copytree(SUBMISSIONS / student / assignment, inbox / student / assignment)
    return inbox


def expected(student: str, assignment: str) -> dict:
    return demo.expected_scores(assignment, demo.corpus()[student][assignment], SEED)


def answer_output(out: Path, student: str, assignment: str) -> str:
    """What the notebook printed (the bad behaviours' own reports), from the autograded notebook."""
    name = demo.corpus()[student][assignment]["notebook"]
    nb = nbformat.read(out / "autograded" / student / assignment / f"{name}.ipynb", as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)


def sandbox_processes(root: int, runners_only: bool = False) -> list[int]:
    """PIDs of sandboxes (bubblewrap and what runs in it) started under process ``root`` (other
    graders' sandboxes may run on this machine at the same time); with ``runners_only``, only
    runners of submissions (not the start-up check of the sandbox)."""
    children: dict[int, list[int]] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                commands[int(entry.name)] = (entry / "cmdline").read_bytes().decode(errors="replace")
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    under, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in under:
            under.add(pid)
            todo += children.get(pid, [])
    return sorted(pid for pid in under if pid in commands and pid != root and (
        "autograder.runner" in commands[pid] or ("bwrap\0" in commands[pid] and not runners_only)))


def alive(pids: list[int]) -> list[int]:
    return [pid for pid in pids if Path(f"/proc/{pid}").exists()
            and "State:\tZ" not in Path(f"/proc/{pid}/status").read_text(errors="replace")]


def wait_until_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and alive(pids):
        time.sleep(0.2)
    return alive(pids)


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    """The whole demo batch, graded once, as `make grade` does (plus a fixed seed)."""
    out = tmp_path_factory.mktemp("graded")
    started = time.time()
    result = run_grader(SUBMISSIONS, out, "--roster", str(demo.DEMO / "roster.csv"))
    return out, result, started, time.time()


def test_every_submission_ends_with_a_grade_row(corpus_run):
    out, result, _, _ = corpus_run
    rows = rows_of(out)
    submitted = {(p.parent.parent.name, p.parent.name) for p in SUBMISSIONS.glob("*/*/*.ipynb")}
    assert set(rows) == submitted and len(submitted) >= 8 * 15
    assert all(r["status"] == "graded" for r in rows.values()), \
        [(k, r["reason"]) for k, r in rows.items() if r["status"] != "graded"]
    with open(out / "grades.csv", newline="") as f:
        lines = list(csv.DictReader(f))  # and a "missing" line per roster student's missing assignment
    assert len([r for r in lines if r["status"] != "missing"]) == len(submitted)
    assert f"isolation: {MODE}" in result.stderr and MODE in ("user", "userns")


@pytest.mark.parametrize("student,assignment", sorted(
    (s, a) for s, cases in demo.corpus().items() for a in cases))
def test_scores_match_the_oracle_for_every_problem(corpus_run, student, assignment):
    out, _, _, _ = corpus_run
    got = rows_of(out)[(student, assignment)]["scores"]
    for problem, points in expected(student, assignment).items():
        assert got.get(problem) == pytest.approx(points, abs=1e-9), (problem, got)


def test_every_named_mistake_appears_in_its_feedback(corpus_run):
    out, _, _, _ = corpus_run
    checked = 0
    for student, cases in demo.corpus().items():
        for assignment, case in cases.items():
            html = "".join(p.read_text() for p in (out / "feedback" / student / assignment).glob("*.html"))
            assert html, f"no feedback for {student}/{assignment}"
            assert "BEGIN HIDDEN TESTS" not in html and "score_answer" not in html
            for mistake in case.get("choices", {}).values():
                assert mistake.split(" (")[0] in html, f"{student}/{assignment}: {mistake!r} not named"
                checked += 1
    assert checked >= 10


def test_feedback_says_each_problems_points_as_the_lms_file_does(corpus_run):
    """A problem's points in its feedback are the per-problem maximum of lms/<assignment>.csv
    (which export reads from the gradebook), visible tests' points included."""
    import csv
    import html as html_lib
    import re

    out, _, _, _ = corpus_run
    checked = 0
    for assignment in ASSIGNMENTS:
        with open(out / "lms" / f"{assignment}.csv", newline="") as f:
            maxima = {r["problem"]: float(r["max"]) for r in csv.DictReader(f) if r["student"] == "correct"}
        text = html_lib.unescape("".join(p.read_text() for p in (out / "feedback" / "correct" / assignment).glob("*.html")))
        for problem, most in maxima.items():
            head = re.search(rf"\b{problem}(, hidden checks)?: [0-9.]+ / [0-9.]+ points.*", text)
            if head is None:
                continue  # a written answer: no hidden check's verdict
            head = head.group(0)
            assert f"of the problem's {most:g};" in head or head.endswith(f"/ {most:g} points"), (assignment, head)
            checked += 1
    assert checked >= 20


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_namespace_escape_works(corpus_run, assignment):
    """umount, remount read-write, mount, setns, a new user or mount namespace, ptrace, chroot,
    writing the filesystem: each denied, in every assignment (the score is the answer's own)."""
    printed = answer_output(corpus_run[0], "escape", assignment)
    assert printed.count("-> denied") == 10 and "ALLOWED" not in printed, printed


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_reference_is_out_of_reach(corpus_run, assignment):
    """import, importlib, sys.modules, the checks module, its source files, gc: no route finds the
    reference; the answer then falls back to a known mistake and scores exactly that (oracle test)."""
    printed = answer_output(corpus_run[0], "reference", assignment)
    assert printed.count("-> not found") == 6 and "FOUND" not in printed, printed


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_nothing_of_the_graders_is_visible(corpus_run, assignment):
    """No gradebook, seed, inbox, notebook, job folder or earlier batch anywhere in the sandbox."""
    printed = answer_output(corpus_run[0], "snoop", assignment)
    assert "files of the grader's found: 0 []" in printed, printed
    for path in ("/var/tmp", "/home", "/work", "/etc"):
        assert f"{path} -> absent" in printed, printed
    # The runner's plan is in the sandbox's memory (the search finds it), and holds no seed.
    assert "plans in memory: 1 holding a seed: 0" in printed, printed
    assert "seed in the environment: False" in printed and core.SEED_ENV == "DESCENT_GRADING_SEED"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_disk_is_capped_per_job(corpus_run, assignment):
    printed = answer_output(corpus_run[0], "disk", assignment)
    count = int(re.search(r"disk full after (\d+) files", printed).group(1))
    assert 0 < count and count * 65536 <= sandbox.Limits().disk


def test_no_process_outlives_its_submission(corpus_run):
    """No sandbox started during the corpus run (bubblewrap or a runner; e.g. the fork bomb's
    sleeping children) is still alive after it."""
    out, _, started, ended = corpus_run
    ticks, boot = os.sysconf("SC_CLK_TCK"), time.time() - float(Path("/proc/uptime").read_text().split()[0])
    left = []
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError):
            continue
        begun = boot + int(fields[19]) / ticks
        if started <= begun <= ended and ("autograder.runner" in command or command.startswith("bwrap\0")) \
                and fields[0] != "Z":
            left.append(command[:120])
    assert left == [], left


def test_the_report_has_plots_and_the_named_mistakes(corpus_run):
    out, _, _, _ = corpus_run
    report = (out / "report.html").read_text()
    assert report.count("<img") >= 2 and "Most common named mistakes" in report


def test_rerunning_is_idempotent(corpus_run):
    out, _, _, _ = corpus_run
    before = (out / "grades.csv").read_text()
    result = run_grader(SUBMISSIONS, out, "--roster", str(demo.DEMO / "roster.csv"))
    assert "0 to grade" in result.stderr
    assert (out / "grades.csv").read_text() == before


def test_the_course_folder_and_its_seed_are_the_graders_alone(tmp_path):
    out = tmp_path / "out"
    run_grader(slice_inbox(tmp_path, ["correct"]), out, args=["--workers", "1"])  # no --seed: the course's
    assert (out / "seed").stat().st_mode & 0o077 == 0 and (out.stat().st_mode & 0o077) == 0


def test_without_a_sandbox_the_reference_attack_would_work(tmp_path):
    """Negative control for the routes above: refused unless asked for explicitly, and then the same
    'reference' answer reaches optimkit and scores full marks, so those checks can fail."""
    inbox = slice_inbox(tmp_path, ["reference"])
    refused = run_grader(inbox, tmp_path / "refused", "--isolation", "none", check=False)
    assert refused.returncode == 3 and "--allow-unsandboxed" in refused.stderr
    assert not (tmp_path / "refused" / "state").exists()
    run_grader(inbox, tmp_path / "out", "--isolation", "none", "--allow-unsandboxed")
    row = rows_of(tmp_path / "out")[("reference", "01_sgd")]
    assert row["scores"]["sgd_step"] == 4.0 > expected("reference", "01_sgd")["sgd_step"]


# --- kill -9 ---------------------------------------------------------------------------------------

def start_batch(inbox, out, *extra):
    return subprocess.Popen([sys.executable, "-m", "autograder", "grade", str(inbox), "--out", str(out),
                             *ARGS, *extra], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def wait_until(condition, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_a_killed_batch_resumes_without_losing_or_duplicating(tmp_path):
    import sqlite3

    students = ["correct", "mistakes-1", "mistakes-2", "tamper", "fork", "loop", "memory"]
    inbox = slice_inbox(tmp_path, students)
    out = tmp_path / "out"
    process = start_batch(inbox, out)
    assert wait_until(lambda: len(list((out / "state").glob("*/*.json"))) >= 2 and sandbox_processes(process.pid, runners_only=True))
    running = sandbox_processes(process.pid)
    os.killpg(process.pid, signal.SIGKILL)  # kill -9 the whole batch mid-way
    process.wait()
    assert wait_until_gone(running, 3) == []
    done_before = len(list((out / "state").glob("*/*.json")))
    assert 0 < done_before < len(students)
    result = run_grader(inbox, out)
    assert f"{done_before} already graded" in result.stderr
    rows = rows_of(out)
    assert len(rows) == len(students)
    for (student, assignment), row in rows.items():
        assert row["scores"] == pytest.approx(expected(student, assignment)), student
    with sqlite3.connect(out / "gradebook.db") as db:
        per_student = db.execute("select student_id, count(*) from submitted_assignment group by student_id").fetchall()
    assert sorted(per_student) == sorted((s, 1) for s, _ in rows)


def test_killing_the_grader_alone_kills_its_sandboxes(tmp_path):
    """kill -9 of the main process only (not its group): the forkserver ends, the workers die
    with it (PR_SET_PDEATHSIG), and bubblewrap's --die-with-parent takes the student code along."""
    inbox = slice_inbox(tmp_path, ["loop"])
    process = start_batch(inbox, tmp_path / "out", "--cell-timeout", "60", "--wall-clock", "120")
    assert wait_until(lambda: bool(sandbox_processes(process.pid, runners_only=True)))
    time.sleep(1)  # the loop is running
    running = sandbox_processes(process.pid)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert running and wait_until_gone(running, 5) == [], "a signal-ignoring loop outlived its grader"


def test_killing_one_worker_loses_nothing(tmp_path):
    inbox = slice_inbox(tmp_path, ["loop", "correct", "mistakes-1"])
    out = tmp_path / "out"
    process = start_batch(inbox, out, "--workers", "1")
    assert wait_until(lambda: bool(sandbox_processes(process.pid, runners_only=True)))
    running = sandbox_processes(process.pid)

    def parent(pid: int) -> int:
        return int(Path(f"/proc/{pid}/status").read_text().split("PPid:")[1].split()[0])

    worker = sandbox_processes(process.pid, runners_only=True)[0]
    while any(word in Path(f"/proc/{worker}/cmdline").read_text(errors="replace")
              for word in ("bwrap", "autograder.runner", "unshare", "setpriv")):
        worker = parent(worker)  # up from the runner and bubblewrap to the worker that started them
    os.kill(worker, signal.SIGKILL)
    assert wait_until_gone(running, 5) == []
    process.wait(timeout=120)
    rows = rows_of(out)
    lost = [r for r in rows.values() if r["status"] != "graded"]  # the killed worker's submission at least
    assert lost and all(not r["final"] for r in lost), rows
    run_grader(inbox, out)
    rows = rows_of(out)
    assert {r["status"] for r in rows.values()} == {"graded"}
    for (student, assignment), row in rows.items():
        assert row["scores"] == pytest.approx(expected(student, assignment)), student


# --- one writer per course folder ----------------------------------------------------------------

def test_a_second_batch_on_the_same_folder_is_told_it_is_busy(tmp_path):
    out = tmp_path / "out"
    first = start_batch(slice_inbox(tmp_path, ["loop", "correct"], name="a"), out)
    assert wait_until(lambda: (out / ".batch.lock").exists() and (out / ".batch.lock").read_text().strip())
    second = run_grader(slice_inbox(tmp_path, ["mistakes-1", "mistakes-2"], name="b"), out, check=False)
    assert second.returncode == 75 and "being graded by another batch" in second.stderr
    assert first.wait(timeout=300) == 0, first.stderr.read()[-2000:]
    run_grader(tmp_path / "b", out)
    rows = rows_of(out)
    assert set(rows) == {(s, "01_sgd") for s in ("loop", "correct", "mistakes-1", "mistakes-2")}
    with open(out / "grades.csv", newline="") as f:  # the CSV holds both batches
        assert {r["student"] for r in csv.DictReader(f)} == {"loop", "correct", "mistakes-1", "mistakes-2"}


# --- environment failures --------------------------------------------------------------------------

def test_no_bubblewrap_stops_before_grading_and_records_nothing(tmp_path):
    inbox = slice_inbox(tmp_path, ["correct"])
    out = tmp_path / "out"
    bare = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # no bwrap, unshare or setpriv
    result = run_grader(inbox, out, check=False, env=bare)
    assert result.returncode == 3 and "apt-get install bubblewrap" in result.stderr, result.stderr[-2000:]
    assert not (out / "state").exists()


def test_a_sandbox_that_cannot_start_is_not_a_grade(tmp_path):
    """A limit too small for Python to start: the batch stops with the reason, exits 3, caches
    nothing; the same command with a sane limit grades everything."""
    inbox = slice_inbox(tmp_path, ["correct", "mistakes-1", "mistakes-2"])
    out = tmp_path / "out"
    result = run_grader(inbox, out, "--memory", "30", check=False)
    assert result.returncode == 3 and "the sandbox did not start" in result.stderr, result.stderr[-2000:]
    assert list((out / "state").glob("*/*.json")) == []
    run_grader(inbox, out)
    assert {r["status"] for r in rows_of(out).values()} == {"graded"}



def test_the_notebooks_memory_budget_starts_after_torch_is_loaded(tmp_path):
    """torch's default wheel from PyPI (CUDA) maps 3.2 GB of address space at import, more than a
    notebook's whole 3 GiB budget: assignment 09 once scored 0 for every student that way. The
    budget now counts from what the runner mapped before the first cell. Here (the CPU wheel maps
    about 0.6 GB) a 400 MiB budget, less than torch alone, grades 09 exactly; the memory hog,
    12.8 GB, still gets nothing."""
    inbox = tmp_path / "inbox"
    for student in ("correct", "memory"):
        shutil.copytree(SUBMISSIONS / student / "09_torch_optimizer", inbox / student / "09_torch_optimizer")
    run_grader(inbox, tmp_path / "out", "--memory", "400")
    for (student, assignment), row in rows_of(tmp_path / "out").items():
        assert row["status"] == "graded" and row["scores"] == pytest.approx(expected(student, assignment)), row


def test_in_09_student_code_gets_its_budget_not_torchs_allowance():
    """The attack on the allowance above: torch loads with 8 GiB of room, but a cell after it
    that asks for 1 GiB under a 400 MiB budget is refused (the runner lowered the limit before
    the first cell); under the default 3 GiB budget the same cell gets it (the control)."""
    from autograder.grading import Settings, grade_notebook

    probe = ("import numpy as np\ntry:\n    hog = np.ones(2**27)  # 1 GiB\n    print('HOG ALLOCATED')\n"
             "except MemoryError:\n    print('HOG REFUSED')\n")
    said = {}
    for mib in (400, 3072):
        nb = nbformat.read(SUBMISSIONS / "correct" / "09_torch_optimizer" / "torch_optimizer.ipynb", as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(probe))
        nb, _ = grade_notebook(nb, "09_torch_optimizer", Settings(
            seed=SEED, isolation=MODE, limits=sandbox.Limits(memory=mib * 2**20, wall_clock=60)))
        said[mib] = "".join(o.get("text", "") for o in nb.cells[-1].get("outputs", []))
    assert "HOG REFUSED" in said[400] and "HOG ALLOCATED" in said[3072], said

def test_a_package_that_cannot_load_is_not_a_grade():
    """Negative control of the test above: with no extra room while torch loads, the import fails
    before any student code runs, and that is the environment's failure, not a score of 0."""
    from autograder.grading import SandboxError, Settings, grade_notebook

    nb = nbformat.read(SUBMISSIONS / "correct" / "09_torch_optimizer" / "torch_optimizer.ipynb", as_version=4)
    settings = Settings(seed=SEED, isolation=MODE,
                        limits=sandbox.Limits(memory=400 * 2**20, packages_memory=0, wall_clock=60))
    with pytest.raises(SandboxError, match="could not load torch"):
        grade_notebook(nb, "09_torch_optimizer", settings)

# --- every input gets a row or a message --------------------------------------------------------------

def test_an_lms_zip_reports_duplicates_and_grades_the_latest(tmp_path):
    out = tmp_path / "out"
    result = run_grader(demo.DEMO / "lms-01_sgd.zip", out, "--assignment", "01_sgd")
    rows = rows_of(out)
    assert set(rows) == {("correct", "01_sgd"), ("mistakes1", "01_sgd"), ("mistakes2", "01_sgd")}
    assert rows[("correct", "01_sgd")]["total"] == rows[("correct", "01_sgd")]["max_total"]  # the later, right one
    assert "duplicate" in result.stderr and "sgd-1.ipynb" in result.stderr


def test_bad_inputs_each_get_a_row_or_a_message(tmp_path):
    inbox = slice_inbox(tmp_path, ["correct"])
    (inbox / "broken" / "01_sgd").mkdir(parents=True)
    (inbox / "broken" / "01_sgd" / "sgd.ipynb").write_text("{ this is not json")
    (inbox / "lost" / "99_unknown").mkdir(parents=True)
    (inbox / "lost" / "99_unknown" / "x.ipynb").write_text("{}")
    (inbox / "empty" / "01_sgd").mkdir(parents=True)
    (inbox / "huge" / "01_sgd").mkdir(parents=True)
    big = nbformat.read(SUBMISSIONS / "correct" / "01_sgd" / "sgd.ipynb", as_version=4)
    big.cells[0].outputs = [nbformat.v4.new_output("stream", text="x" * (21 * 2**20))] \
        if big.cells[0].cell_type == "code" else []
    big.metadata["padding"] = "x" * (21 * 2**20)
    nbformat.write(big, inbox / "huge" / "01_sgd" / "sgd.ipynb")
    (inbox / "stray.txt").write_text("not a submission")
    out = tmp_path / "out"
    result = run_grader(inbox, out, "--roster", str(demo.DEMO / "roster.csv"))
    rows = rows_of(out)
    assert rows[("correct", "01_sgd")]["status"] == "graded"
    assert "not a valid Jupyter notebook" in rows[("broken", "01_sgd")]["reason"]
    assert "unknown assignment" in rows[("lost", "99_unknown")]["reason"]
    assert "folder is empty" in rows[("empty", "01_sgd")]["reason"]
    assert "MiB limit" in rows[("huge", "01_sgd")]["reason"]
    assert "stray.txt: not a <student>/<assignment>/ folder" in result.stderr
    assert "broken: not in the roster" in result.stderr


def test_an_assignment_changed_since_its_folder_was_graded_is_named_with_what_to_do(tmp_path):
    """nbgrader refuses to change a graded assignment's cells; the grader says so in one line
    (not "see the above traceback") with the way out, and the folder's grades stay."""
    from nbgrader.api import Gradebook

    inbox = slice_inbox(tmp_path, ["correct"])
    out = tmp_path / "out"
    run_grader(inbox, out)
    before = (out / "grades.csv").read_bytes()
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}", course_id="descent") as gb:
        # as if solutions/01_sgd had lost a test cell since this folder was graded
        gb.add_grade_cell("a_test_since_removed", "sgd", "01_sgd", max_score=1, cell_type="code")
    result = run_grader(inbox, out, check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "01_sgd's graded cells" in result.stderr and "Cannot add or remove cells" in result.stderr
    assert "new --out folder" in result.stderr
    assert (out / "grades.csv").read_bytes() == before

def test_a_file_that_is_not_a_zip_is_refused_clearly(tmp_path):
    bogus = tmp_path / "grades.zip"
    bogus.write_text("this is not a zip")
    result = run_grader(bogus, tmp_path / "out", "--assignment", "01_sgd", check=False)
    assert result.returncode == 2 and "is a file but not a zip archive" in result.stderr


# --- the modes ----------------------------------------------------------------------------------------

def test_the_user_namespace_sandbox_gives_the_same_grades(tmp_path):
    """The non-root sandbox (the grader's own uid in a user namespace), forced here from root."""
    students = ["correct", "snoop", "tamper", "escape", "reference"]
    inbox = tmp_path / "inbox"
    for student in students:
        for assignment in ("01_sgd", "04_adam"):
            shutil.copytree(SUBMISSIONS / student / assignment, inbox / student / assignment)
    out = tmp_path / "out"
    result = run_grader(inbox, out, "--isolation", "userns")
    assert "isolation: userns" in result.stderr
    for (student, assignment), row in rows_of(out).items():
        assert row["scores"] == pytest.approx(expected(student, assignment)), student
    for assignment in ("01_sgd", "04_adam"):
        assert "ALLOWED" not in answer_output(out, "escape", assignment)
        assert "FOUND" not in answer_output(out, "reference", assignment)


def test_isolation_says_what_is_in_force():
    result = subprocess.run([sys.executable, "-m", "autograder", "isolation"], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() == MODE
    assert "no capabilities" in result.stderr and "/opt/descent/site" in result.stderr
    assert str(ROOT) not in result.stderr  # the repository is not among the mounts
