"""Every export of a course folder, made from nbgrader's gradebook (the one source of grades).

    python -m autograder export --out autograder/course [--missing zero|blank] [--roster roster.csv]

Runs at the end of every ``grade``, and on its own after hand grading in nbgrader's formgrader,
so a hand grade reaches every file with one command. Written into ``--out``:

* ``grades.csv``: one line per submission, and one per student of the roster (``roster.csv`` here:
  every ``--roster`` given to ``grade`` or ``export``) and assignment with no submission (status
  ``missing``): status (``graded``, ``pending hand grading``, ``could not grade``,
  ``missing``), total, max_total, pending (points awaiting hand grading) and the reason;
* ``lms/<assignment>.csv``: the long form, one line per student (the roster's and everyone who
  submitted anything) and problem: student, assignment,
  problem, score, max, status (``graded``, ``pending``, ``missing``, ``could not grade``);
* ``lms/canvas.csv`` and ``lms/moodle.csv``: the wide gradebook, one line per roster student, one
  column per assignment (Canvas: Student, ID, SIS User ID, SIS Login ID, Section, then the
  assignments, with a "Points Possible" line; Moodle: Username, then the assignments). Missing
  work is 0 (``--missing zero``, the default) or left blank (``--missing blank``); a submission
  awaiting hand grading or one that could not be graded is blank (not final: importing a blank
  changes nothing in either LMS);
* ``rows.json``, ``report.html``: the pipeline's record of each submission and the report;
* ``feedback/``: each student's page, written again when its grades or comments changed;
* ``nbgrader_config.py``: so nbgrader's commands and its formgrader, started in this folder,
  see this course (its gradebook, submissions and feedback).

Scores in the CSV files are rounded to :data:`PRECISION` decimals (``2.3499999999999996`` is
``2.35``; whole numbers have no decimals); ``rows.json`` keeps six.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

from . import course, feedback, pipeline

PRECISION = 2  # decimals of every score in the CSV files
MISSING = ("zero", "blank")
FEEDBACK_STAMP = ".gradebook-key"  # in each feedback folder: what the page was made from


def number(value) -> str:
    """A score as the CSV files write it: :data:`PRECISION` decimals at most, no float noise."""
    if value is None:
        return ""
    text = f"{round(float(value), PRECISION) + 0.0:.{PRECISION}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


# --- the course folder's nbgrader configuration -------------------------------------------------

CONFIG_TEMPLATE = '''\
"""nbgrader's configuration for the course folder {out_name}, written by `python -m autograder`.

Start nbgrader's commands or its formgrader here and they see this course: e.g.
`cd {out_name} && jupyter lab` (then Nbgrader > Formgrader), or `nbgrader formgrader`. After
hand grading, `python -m autograder export --out {out_name}` rewrites the CSV files, the report
and the feedback from the gradebook. Written again by every grade and export; edits are lost.
"""

import os

HERE = os.path.dirname(os.path.abspath(__file__))
load_subconfig({repo_config!r})  # the course's own settings (sandbox, feedback, cells)

c = get_config()  # noqa: F821 - provided by traitlets when nbgrader loads this file
c.CourseDirectory.root = HERE
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = {release!r}
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = {db_url}
c.SandboxExecute.seed_file = os.path.join(HERE, "seed")
c.SandboxExecute.cache_dir = os.path.join(HERE, "cache")
'''


def default_db_url(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / 'gradebook.db'}"


def write_config(out: Path, db_url: str) -> Path:
    """``out/nbgrader_config.py``: nbgrader (commands, formgrader) started in ``out`` sees it."""
    out = Path(out)
    if db_url.startswith("sqlite:///"):  # a relative path (--out autograder/course) made absolute
        db_url = f"sqlite:///{Path(db_url[len('sqlite:///'):]).resolve()}"
    db = ('"sqlite:///" + os.path.join(HERE, "gradebook.db")' if db_url == default_db_url(out)
          else repr(db_url))
    text = CONFIG_TEMPLATE.format(out_name=out.name, repo_config=str(course.CONFIG_DIR / "nbgrader_config.py"),
                                  release=str(course.EXERCISES), db_url=db)
    path = out / "nbgrader_config.py"
    tmp = out / f".nbgrader_config.py.{os.getpid()}"
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def course_db_url(out: Path) -> str:
    """The gradebook of a course folder: as its nbgrader_config.py says, else its SQLite file."""
    path = Path(out) / "nbgrader_config.py"
    if path.exists():
        from traitlets.config.loader import PyFileConfigLoader

        config = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
        url = config.get("CourseDirectory", {}).get("db_url")
        if url:
            return str(url)
    return default_db_url(out)


def overrides(out: Path, db_url: str) -> dict:
    """NbGraderAPI settings for the course folder ``out`` (its folders and gradebook)."""
    out = Path(out).resolve()
    return {"CourseDirectory.db_url": db_url,
            "CourseDirectory.source_directory": str(out / "source"),
            "CourseDirectory.submitted_directory": str(out / "submitted"),
            "CourseDirectory.autograded_directory": str(out / "autograded"),
            "CourseDirectory.feedback_directory": str(out / "feedback")}


# --- reading the gradebook ----------------------------------------------------------------------

def problem_of(assignment: str, cell: str) -> str:
    declared = course.grade_cells(assignment)
    return declared[cell].problem if cell in declared else cell


def read_gradebook(gb) -> dict:
    """{(assignment, student): {"cells": {grade id: (score, max, pending)}, "comments": {...}}}
    for every submission in the gradebook, plus its students and assignments."""
    found = {}
    for assignment in gb.assignments:
        for submission in gb.assignment_submissions(assignment.name):
            cells, comments = {}, {}
            for nb in submission.notebooks:
                for g in nb.grades:
                    cells[g.name] = (None if g.needs_manual_grade else float(g.score or 0.0),
                                     float(g.max_score or 0.0), bool(g.needs_manual_grade),
                                     g.auto_score, g.manual_score, g.extra_credit)
                for comment in nb.comments:
                    comments[comment.name] = (comment.auto_comment, comment.manual_comment)
            found[(assignment.name, submission.student_id)] = {"cells": cells, "comments": comments}
    return {"submissions": found, "students": sorted(s.id for s in gb.students),
            "assignments": sorted(a.name for a in gb.assignments)}


def scores_of(assignment: str, cells: dict) -> dict:
    """Per problem: score (None while any of its cells awaits hand grading), max, pending."""
    problems: dict[str, dict] = {}
    for name, (score, maximum, pending, *_rest) in cells.items():
        p = problems.setdefault(problem_of(assignment, name), {"score": 0.0, "max": 0.0, "pending": False})
        p["max"] = round(p["max"] + maximum, 6)
        p["pending"] |= pending
        if score is not None:
            p["score"] = round(p["score"] + score, 6)
    return problems


def fingerprint(out: Path, student: str, assignment: str, entry: dict) -> str:
    """What a feedback page shows: its grades and comments, the graded notebooks, the template."""
    digest = hashlib.sha256(json.dumps([entry["cells"], entry["comments"]], sort_keys=True, default=str).encode())
    for path in sorted((Path(out) / "autograded" / student / assignment).glob("*.ipynb")):
        digest.update(path.read_bytes())
    for path in sorted((feedback.TEMPLATES / feedback.TEMPLATE).iterdir()) + [Path(feedback.__file__)]:
        digest.update(path.read_bytes())
    return digest.hexdigest()


def stamp_feedback(out: Path, student: str, assignment: str, gb) -> None:
    """Mark the feedback just written for ``student``'s ``assignment`` as made from the gradebook's
    present grades (the pipeline calls this after nbgrader's generate_feedback)."""
    submission = gb.find_submission(assignment, student)
    entry = {"cells": {}, "comments": {}}
    for nb in submission.notebooks:
        for g in nb.grades:
            entry["cells"][g.name] = (None if g.needs_manual_grade else float(g.score or 0.0),
                                      float(g.max_score or 0.0), bool(g.needs_manual_grade),
                                      g.auto_score, g.manual_score, g.extra_credit)
        for comment in nb.comments:
            entry["comments"][comment.name] = (comment.auto_comment, comment.manual_comment)
    folder = Path(out) / "feedback" / student / assignment
    if folder.is_dir():
        (folder / FEEDBACK_STAMP).write_text(fingerprint(out, student, assignment, entry))


# --- property failures, from the graded notebooks -------------------------------------------------

PROPERTIES = (  # the start of a hidden check's failed line -> what the report counts
    ("✗ modifies its input", "writes its inputs in place"),
    ("✗ failed after", "crashes on some inputs"),
    ("✗ values", "wrong values"),
    ("✗ your answer uses", "uses optimkit or torch"),
)


def property_failures(out: Path, student: str, assignment: str) -> dict[str, list[str]]:
    """{problem: [failed property, ...]} from the hidden test cells' reports in the graded notebook."""
    declared = course.grade_cells(assignment)
    found: dict[str, list[str]] = {}
    for path in sorted((Path(out) / "autograded" / student / assignment).glob("*.ipynb")):
        try:
            nb = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for cell in nb.get("cells", []):
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id not in declared or not declared[grade_id].hidden:
                continue
            text = "".join("".join(o.get("text", "")) for o in cell.get("outputs", [])
                           if o.get("output_type") == "stream")
            for line in text.splitlines():
                line = line.strip()
                if line.startswith("✗"):
                    kind = next((name for prefix, name in PROPERTIES if line.startswith(prefix)),
                                "wrong shapes, dtypes or other checks")
                    found.setdefault(declared[grade_id].problem, []).append(kind)
    return found


# --- the export -----------------------------------------------------------------------------------

def course_rows(out: Path, book: dict, batch: list = ()) -> list[pipeline.Row]:
    """One row per submission of the course folder: the pipeline's record of it (status, named
    mistakes, notes, why it could not be graded) with every score taken from the gradebook.
    A submission the gradebook has and the pipeline did not grade (nbgrader's own autograde)
    has a row too. ``batch``: the rows of a batch just run (its retriable failures are in no
    state file)."""
    rows = {(r.assignment, r.student): r for r in pipeline.whole_course(out, list(batch))}
    for key, entry in book["submissions"].items():
        if key not in rows:
            rows[key] = pipeline.Row(key[1], key[0], "graded", notes=["graded outside the pipeline"])
    for (assignment, student), row in rows.items():
        entry = book["submissions"].get((assignment, student))
        if row.status != "graded" or entry is None:
            continue
        problems = scores_of(assignment, entry["cells"])
        row.scores = {p: v["score"] for p, v in problems.items() if not v["pending"]}
        row.max_scores = {p: v["max"] for p, v in problems.items()}
        row.pending = {p: v["max"] for p, v in problems.items() if v["pending"]}
        row.total = round(sum(row.scores.values()), 6)
        row.max_total = round(sum(row.max_scores.values()), 6)
        row.failures = property_failures(out, student, assignment)
    return [rows[k] for k in sorted(rows)]


def status_of(row: pipeline.Row) -> str:
    if row.status == "graded" and row.pending:
        return "pending hand grading"
    return row.status


def write_grades(rows, roster, assignments, path: Path) -> None:
    """grades.csv: a line per submission and per roster student's missing submission."""
    have = {(r.assignment, r.student) for r in rows}
    lines = [{"student": r.student, "assignment": r.assignment, "status": status_of(r),
              "total": number(r.total) if r.status == "graded" else "",
              "max_total": number(r.max_total) if r.status == "graded" else "",
              "pending": number(sum(r.pending.values())) if r.pending else "", "reason": r.reason}
             for r in rows]
    lines += [{"student": s, "assignment": a, "status": "missing", "total": "", "max_total": "",
               "pending": "", "reason": "no submission"}
              for a in assignments for s in roster if (a, s) not in have]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["student", "assignment", "status", "total", "max_total",
                                               "pending", "reason"])
        writer.writeheader()
        writer.writerows(sorted(lines, key=lambda line: (line["assignment"], line["student"])))


def assignment_maxima(assignment: str) -> dict[str, float]:
    """Each problem's points, as solutions/ declares them (every grade cell of the problem)."""
    maxima: dict[str, float] = {}
    for cell in course.grade_cells(assignment).values():
        maxima[cell.problem] = round(maxima.get(cell.problem, 0.0) + float(cell.points), 6)
    return maxima


def write_long(assignment: str, rows, roster, missing: str, path: Path) -> None:
    """lms/<assignment>.csv: student, assignment, problem, score, max, status."""
    by_student = {r.student: r for r in rows if r.assignment == assignment}
    maxima = assignment_maxima(assignment)
    lines = []
    for student in sorted(set(roster) | set(by_student)):
        row = by_student.get(student)
        for problem, maximum in maxima.items():
            if row is None:
                score, status = (0.0 if missing == "zero" else None), "missing"
            elif row.status != "graded":
                score, status = None, "could not grade"
            elif problem in row.pending:
                score, status = None, "pending"
            else:
                score, status = row.scores.get(problem, 0.0), "graded"
            maximum = (row.max_scores.get(problem, maximum) if row is not None and row.status == "graded"
                       else maximum)
            lines.append([student, assignment, problem, number(score), number(maximum), status])
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "assignment", "problem", "score", "max", "status"])
        writer.writerows(lines)


def write_wide(rows, roster, assignments, missing: str, out_dir: Path) -> None:
    """lms/canvas.csv and lms/moodle.csv: a line per student, a column per assignment."""
    by_key = {(r.assignment, r.student): r for r in rows}
    students = sorted(set(roster) | {r.student for r in rows})
    maxima = {a: sum(assignment_maxima(a).values()) for a in assignments}

    def cell(student, assignment):
        row = by_key.get((assignment, student))
        if row is None:
            return number(0.0) if missing == "zero" else ""
        if row.status != "graded" or row.pending:
            return ""  # not final: could not grade, or awaiting hand grading
        return number(row.total)

    with open(out_dir / "canvas.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *assignments])
        writer.writerow(["    Points Possible", "", "", "", "", *(number(maxima[a]) for a in assignments)])
        for student in students:
            writer.writerow([student, "", "", student, "", *(cell(student, a) for a in assignments)])
    with open(out_dir / "moodle.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["Username", *assignments])
        for student in students:
            writer.writerow([student, *(cell(student, a) for a in assignments)])


def refresh_feedback(out: Path, db_url: str, book: dict, rows, say) -> int:
    """Write again each graded submission's feedback page whose grades, comments or graded
    notebooks changed since it was made (hand grades included); returns how many."""
    stale = []
    for row in rows:
        entry = book["submissions"].get((row.assignment, row.student))
        if row.status != "graded" or entry is None:
            continue
        key = fingerprint(out, row.student, row.assignment, entry)
        stamp = Path(out) / "feedback" / row.student / row.assignment / FEEDBACK_STAMP
        if not stamp.exists() or stamp.read_text() != key:
            stale.append((row, key))
    if not stale:
        return 0
    with course.nbgrader_api(**overrides(out, db_url)) as api:
        for row, key in stale:
            result = api.generate_feedback(row.assignment, row.student, force=True)
            if not result["success"]:
                say(f"note: feedback for {row.student}/{row.assignment} could not be written: "
                    f"{(result.get('error') or result.get('log') or '')[-300:]}")
                continue
            (Path(out) / "feedback" / row.student / row.assignment / FEEDBACK_STAMP).write_text(key)
    return len(stale)


ROSTER = "roster.csv"  # in the course folder: every student a roster named, kept across batches


def remember_roster(out: Path, roster) -> set[str]:
    """The course folder's roster: the students of ``roster`` added to those kept before."""
    path = Path(out) / ROSTER
    known = set()
    if path.exists():
        with open(path, newline="") as f:
            known = {row["student"].strip() for row in csv.DictReader(f)}
    if roster and not set(roster) <= known:
        known |= set(roster)
        tmp = path.with_name(f".{ROSTER}.{os.getpid()}")
        tmp.write_text("student\n" + "".join(f"{s}\n" for s in sorted(known)))
        os.replace(tmp, path)
    return known


def export(out: Path, *, db_url: str | None = None, missing: str = "zero", roster: set[str] | None = None,
           batch: list = (), isolation: str | None = None, warnings: list[str] = (), say=lambda *a: None) -> list[pipeline.Row]:
    """Every export of the course folder ``out`` from its gradebook; returns the rows."""
    from nbgrader.api import Gradebook

    from .report import write_report

    if missing not in MISSING:
        raise ValueError(f"--missing must be one of {', '.join(MISSING)}, not {missing!r}")
    out = Path(out)
    db_url = db_url or course_db_url(out)
    write_config(out, db_url)
    bin_dir = str(Path(sys.executable).parent)  # nbgrader's Gradebook runs alembic from PATH
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    with Gradebook(db_url) as gb:
        book = read_gradebook(gb)
    rows = course_rows(out, book, batch)
    roster = sorted(remember_roster(out, roster))
    students = sorted(set(roster) | {r.student for r in rows})  # the LMS files: everyone
    assignments = sorted(set(book["assignments"]) | {r.assignment for r in rows if r.status == "graded"})
    refreshed = refresh_feedback(out, db_url, book, rows, say)
    if isolation is None:
        isolation = _last_isolation(out)
    (out / "lms").mkdir(exist_ok=True)
    writers = [("grades.csv", lambda p: write_grades(rows, roster, assignments, p)),
               ("rows.json", lambda p: p.write_text(json.dumps([asdict(r) for r in rows], indent=1))),
               ("report.html", lambda p: write_report(rows, p, isolation=isolation, warnings=list(warnings),
                                                      roster=students, assignments=assignments))]
    writers += [(f"lms/{a}.csv", lambda p, a=a: write_long(a, rows, students, missing, p)) for a in assignments]
    for name, writer in writers:
        tmp = out / f"{name}.{os.getpid()}.tmp"
        writer(tmp)
        os.replace(tmp, out / name)
    write_wide(rows, students, assignments, missing, out / "lms")
    (out / ".isolation").write_text(isolation)
    pending = sum(1 for r in rows if r.pending)
    say(f"exported {len(rows)} submissions of {len(students)} students"
        + (f" ({pending} awaiting hand grading)" if pending else "")
        + (f"; {refreshed} feedback page(s) written again" if refreshed else ""))
    return rows


def _last_isolation(out: Path) -> str:
    try:
        return (Path(out) / ".isolation").read_text().strip()
    except OSError:
        return "unknown"


def main_export(args, say) -> int:
    """The ``export`` subcommand (see autograder/__main__.py)."""
    roster = None
    if args.roster:
        with open(args.roster, newline="") as f:
            roster = {row["student"].strip() for row in csv.DictReader(f)}
    if not (args.out / "gradebook.db").exists() and not (args.out / "nbgrader_config.py").exists() \
            and not args.db_url:
        raise SystemExit(f"error: {args.out} is not a course folder (no gradebook.db or nbgrader_config.py): "
                         f"give the --out a grade wrote into")
    with pipeline.exclusive(args.out):
        export(args.out, db_url=args.db_url, missing=args.missing, roster=roster, say=say)
    return 0


def per_student_totals(rows, students, assignments) -> dict[str, dict[str, tuple]]:
    """{student: {assignment: (total or None, max, state)}}; state graded/pending/missing/failed."""
    table: dict[str, dict[str, tuple]] = defaultdict(dict)
    by_key = {(r.assignment, r.student): r for r in rows}
    for student in students:
        for assignment in assignments:
            row = by_key.get((assignment, student))
            if row is None:
                table[student][assignment] = (None, None, "missing")
            elif row.status != "graded":
                table[student][assignment] = (None, None, "could not grade")
            else:
                table[student][assignment] = (row.total, row.max_total, "pending" if row.pending else "graded")
    return table
