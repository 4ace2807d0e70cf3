"""python -m autograder: grade a folder or LMS zip of submissions.

    python -m autograder grade INBOX [--out autograder/course] [--workers N] ...
    python -m autograder grade INBOX --cluster tcp://HOST:8786   # on a Dask cluster's workers
    python -m autograder export [--out autograder/course]   # every CSV, the report, the feedback,
                                            # again from the gradebook (after hand grading)
    python -m autograder isolation          # which sandbox works here, and what it holds

Exit codes: 0 graded (a submission that could not be graded still has its row and reason),
2 bad input, 3 the environment made grading impossible (nothing recorded: fix it and run the
same command again), 75 another batch is grading into the same --out.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

from . import course, pipeline, sandbox


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade every submission in a folder tree or an LMS zip")
    g.add_argument("inbox", type=Path, help="<student>/<assignment>/*.ipynb folders, or an LMS zip")
    g.add_argument("--out", type=Path, default=course.ROOT / "autograder" / "course",
                   help="nbgrader course folder for submissions, gradebook, feedback, grades.csv, "
                        "report.html (default: autograder/course)")
    g.add_argument("--assignment", help="the assignment an LMS zip holds")
    g.add_argument("--roster", type=Path, help="CSV with a 'student' column: students not in it are reported")
    g.add_argument("--workers", type=int, default=0, help="parallel workers (default: one per core)")
    g.add_argument("--cluster", metavar="tcp://HOST:8786",
                   help="grade on this Dask scheduler's workers (started with `make worker SCHEDULER=...`) "
                        "instead of local worker processes")
    g.add_argument("--db-url", help="nbgrader gradebook URL, e.g. postgresql://user@127.0.0.1/grades "
                                    "(default: SQLite in the output folder)")
    g.add_argument("--isolation", choices=["user", "userns", "none"], help="default: the strongest available")
    g.add_argument("--allow-unsandboxed", action="store_true",
                   help="with --isolation none: grade without a sandbox (only for code you trust)")
    g.add_argument("--cell-timeout", type=float, default=30.0)
    g.add_argument("--wall-clock", type=float, default=120.0)
    g.add_argument("--memory", type=int, default=sandbox.Limits.memory // 2**20,
                   help="MiB of address space per notebook, beyond what its assignment's packages "
                        "(torch) map before the first cell (default: %(default)s)")
    g.add_argument("--seed", type=int, help="secret seed (default: one per output folder, kept in OUT/seed)")
    missing_help = ("missing work in the LMS gradebooks (lms/canvas.csv, lms/moodle.csv) and lms/<assignment>.csv: "
                    "0 or left blank (default: %(default)s)")
    g.add_argument("--missing", choices=["zero", "blank"], default="zero", help=missing_help)
    e = sub.add_parser("export", help="write every export of a course folder again from its gradebook "
                                      "(grades.csv, lms/, rows.json, report.html, feedback): after hand grading")
    e.add_argument("--out", type=Path, default=course.ROOT / "autograder" / "course",
                   help="the course folder a grade wrote (default: autograder/course)")
    e.add_argument("--missing", choices=["zero", "blank"], default="zero", help=missing_help)
    e.add_argument("--roster", type=Path, help="CSV with a 'student' column: also these students (the "
                                               "gradebook already has every student a grade was given a roster for)")
    e.add_argument("--db-url", help="the gradebook, if not the one OUT/nbgrader_config.py names")
    sub.add_parser("isolation", help="print the isolation mode this machine supports")
    args = parser.parse_args(argv)

    if args.command == "isolation":
        mode = sandbox.detect()
        print(mode)
        print(sandbox.describe(mode), file=sys.stderr)
        if mode == "none":
            for candidate in ("user", "userns") if os.geteuid() == 0 else ("userns",):
                print(f"{candidate}: {sandbox.problem(candidate)}", file=sys.stderr)
        return 0
    if args.command == "export":
        from . import export

        return export.main_export(args, say=lambda *a: print(*a, file=sys.stderr))
    if not args.inbox.exists():
        parser.error(f"{args.inbox} does not exist: give a folder of <student>/<assignment>/*.ipynb or a zip")
    roster = None
    if args.roster:
        with open(args.roster, newline="") as f:
            roster = {row["student"].strip() for row in csv.DictReader(f)}
    limits = sandbox.Limits(cell_timeout=args.cell_timeout, wall_clock=args.wall_clock,
                            memory=args.memory * 2**20)
    try:
        pipeline.grade_inbox(args.inbox, out=args.out, assignment=args.assignment, roster=roster,
                       workers=args.workers, seed=args.seed, isolation=args.isolation,
                       db_url=args.db_url, limits=limits, allow_unsandboxed=args.allow_unsandboxed,
                       cluster=args.cluster, missing=args.missing)
    except pipeline.InputError as exc:
        parser.error(str(exc))
    except pipeline.EnvironmentFailure as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except pipeline.Busy as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 75
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
