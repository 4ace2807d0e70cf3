"""The few lines `make` ends with: what was built and what was graded.

    python tools/summary.py --site _build/html --exercises exercises --rows autograder/course/rows.json

Reads only what the three jobs left behind (the site, the student release, the grading
pipeline's rows.json: one row per submission with student, assignment, status "graded" or
"could not grade", and reason). Exits 1 when one of them is missing, since then `make` did not
do its job; a submission that could not be graded is the submission's outcome, not make's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path


def site_line(site: Path) -> tuple[str, bool]:
    if not (site / "index.html").is_file():
        return f"site:       missing ({site}/index.html was not built)", False
    pages = [p for p in site.rglob("*.html") if "_static" not in p.relative_to(site).parts]
    return f"site:       {site}/index.html ({len(pages)} HTML pages)", True


def exercises_line(folder: Path) -> tuple[str, bool]:
    assignments = sorted(p.name for p in folder.glob("*/") if p.is_dir() and not p.name.startswith("."))
    if not assignments:
        return f"exercises:  none in {folder}/", False
    return f"exercises:  {len(assignments)} assignments in {folder}/", True


def grading_lines(rows_path: Path) -> tuple[list[str], bool]:
    try:
        rows = json.loads(rows_path.read_text())
    except FileNotFoundError:
        return [f"grading:    no record ({rows_path} was not written)"], False
    except (OSError, ValueError) as e:
        return [f"grading:    unreadable record {rows_path}: {e}"], False
    graded = [r for r in rows if r.get("status") == "graded"]
    failed = [r for r in rows if r.get("status") != "graded"]
    lines = [f"grading:    {len(rows)} submissions: {len(graded)} graded, "
             f"{len(failed)} could not grade (report: {rows_path.parent}/report.html)"]
    # One line per distinct reason, most frequent first, with who it hit.
    by_reason = Counter((r.get("reason") or "no reason given").strip().splitlines()[0] for r in failed)
    for reason, n in by_reason.most_common():
        who = sorted(f"{r['student']}/{r['assignment']}" for r in failed
                     if (r.get("reason") or "no reason given").strip().splitlines()[0] == reason)
        shown = ", ".join(who[:3]) + (f" and {len(who) - 3} more" if len(who) > 3 else "")
        lines.append(f"  {n} x {reason}  ({shown})")
    return lines, True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=Path("_build/html"))
    parser.add_argument("--exercises", type=Path, default=Path("exercises"))
    parser.add_argument("--rows", type=Path, default=Path("autograder/course/rows.json"))
    args = parser.parse_args(argv)

    site, site_ok = site_line(args.site)
    exercises, exercises_ok = exercises_line(args.exercises)
    grading, grading_ok = grading_lines(args.rows)
    print("\n".join(["", "Summary", site, exercises, *grading]))
    return 0 if site_ok and exercises_ok and grading_ok else 1


if __name__ == "__main__":
    sys.exit(main())
