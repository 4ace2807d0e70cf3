"""From solutions/ (text notebooks) to nbgrader's source notebooks and the student release.

    solutions/<assignment>/<name>.md   --build_source-->   _build/course/source/<assignment>/<name>.ipynb
                                        --nbgrader generate_assignment-->   exercises/<assignment>/<name>.ipynb

Cells in solutions/ carry a compact nbgrader spec, ``{id, kind, points}``, which
:func:`autograder.cells.expand` turns into nbgrader's full cell metadata (``cells.KINDS``:
solution, tests, written, locked). The points of every test live there and only there:
:func:`points` (a hidden check's) and :func:`total_points` (a problem's: its visible and hidden
test cells together, what its heading states) read them.

Two things every notebook gets here, written once: chapter links point at the built book
(``../../book/05-adam.md`` becomes ``/descent/book/05-adam.html``, served next to the student
lab by :mod:`autograder.lab`; ``DESCENT_SITE_URL`` names another site), and a closing
"How to submit" cell (:data:`HOW_TO_SUBMIT`).

``exercises/`` is only ever written by ``release`` (``make exercises``); ``check`` (run by
``make``) regenerates into a temporary folder and fails, naming the stale files, when the
committed release differs. Students never edit exercises/: ``make lab`` copies it into their
own working folder once.
"""

from __future__ import annotations

import contextlib
import filecmp
import functools
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

import jupytext
import nbformat

from . import cells

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"
SOURCE = ROOT / "_build" / "course" / "source"
CONFIG_DIR = ROOT / "autograder"

# Where chapter links in the notebooks point: the built book (_build/html), which the student
# lab serves at /descent/ (autograder.lab). A course with the book online sets DESCENT_SITE_URL
# (e.g. https://example.org/descent) before `make exercises`.
SITE_URL_ENV = "DESCENT_SITE_URL"
DEFAULT_SITE_URL = "/descent"
CHAPTER_LINK = re.compile(r"\]\(\.\./\.\./book/(\d\d-[\w-]+)\.md(#[\w-]*)?\)")

# The last cell of every notebook: how a student hands the work in ({notebook} is its path).
HOW_TO_SUBMIT = """## How to submit

1. Save (Ctrl+S), then check your work: click **Validate** in the notebook's toolbar (or
   **Kernel ▸ Restart Kernel and Run All Cells…**). Every visible test should print "passed".
   Passing them is necessary, not sufficient: hidden checks run your functions on secret
   inputs when the notebook is graded.
2. Hand in this file, `{notebook}`, under that name: upload it where your course collects
   work (download it first with **File ▸ Download** if your lab runs elsewhere). Leave the
   locked cells as they are; the grader restores them anyway.
3. You can hand it in again until the deadline; the latest copy is graded.
"""


def assignments() -> list[str]:
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and any(p.glob("*.md")))


def notebooks(assignment: str) -> list[str]:
    """The names of an assignment's notebooks (solutions/<assignment>/<name>.md)."""
    return sorted(p.stem for p in (SOLUTIONS / assignment).glob("*.md"))


def site_url() -> str:
    """The built book's address in the notebooks' chapter links (no trailing slash)."""
    return (os.environ.get(SITE_URL_ENV) or DEFAULT_SITE_URL).rstrip("/")


def chapter_links(text: str) -> str:
    """``[...](../../book/05-adam.md#bias)`` -> ``[...](<site>/book/05-adam.html#bias)``."""
    return CHAPTER_LINK.sub(lambda m: f"]({site_url()}/book/{m[1]}.html{m[2] or ''})", text)


def read_solution(path: Path):
    nb = jupytext.read(path)
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = chapter_links(cell.source)
    notebook = f"{path.parent.name}/{path.stem}.ipynb"
    nb.cells.append(nbformat.v4.new_markdown_cell(
        HOW_TO_SUBMIT.format(notebook=notebook).strip(),
        metadata={"nbgrader": {"id": "how_to_submit", "kind": "locked"}}))
    nb = cells.expand(nb, str(path.relative_to(ROOT)))
    for index, cell in enumerate(nb.cells):  # stable ids keep the release reproducible
        cell.id = cells.cell_name(cell) or f"cell-{index}"
    return nb


@functools.cache
def grade_cells(assignment: str) -> dict[str, cells.GradeCell]:
    """Every grade cell of the assignment's source notebooks, by id (see :func:`cells.grade_cells`):
    the problem each test checks and its points, as solutions/ declares them."""
    found = {}
    for name in notebooks(assignment):
        path = SOLUTIONS / assignment / f"{name}.md"
        found.update(cells.grade_cells(read_solution(path).cells, str(path.relative_to(ROOT))))
    return found


def points(assignment: str, problem: str) -> float:
    """The points of ``problem``'s hidden check: its hidden test cell's, in solutions/."""
    found = [cell.points for cell in grade_cells(assignment).values() if cell.hidden and cell.problem == problem]
    if len(found) != 1:
        raise cells.ProtocolError(f"solutions/{assignment}: {len(found)} hidden test cells check {problem!r}; "
                                  f"there must be exactly one (the hidden check's points are its points)")
    return found[0]


def total_points(assignment: str, problem: str) -> float:
    """All the points of ``problem``: its visible and hidden test cells' (a written answer's own).
    Its heading in solutions/ states this, and the gradebook's per-problem maximum is this."""
    found = [cell.points for cell in grade_cells(assignment).values() if cell.problem == problem]
    if not found:
        raise cells.ProtocolError(f"solutions/{assignment}: no test cell checks {problem!r}")
    return float(sum(found))


def build_source(dest: Path = SOURCE) -> list[Path]:
    """Write nbgrader's source notebooks (.ipynb) for every assignment; returns their paths."""
    written = []
    for assignment in assignments():
        out_dir = dest / assignment
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        for md in sorted((SOLUTIONS / assignment).glob("*.md")):
            nb = read_solution(md)
            target = out_dir / (md.stem + ".ipynb")
            nbformat.write(nb, target)
            written.append(target)
    return written


@contextlib.contextmanager
def nbgrader_api(**overrides):
    """An NbGraderAPI configured by autograder/nbgrader_config.py (plus ``overrides``)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # alembic
    config = PyFileConfigLoader("nbgrader_config.py", path=str(CONFIG_DIR)).load_config()
    for dotted, value in overrides.items():
        section, key = dotted.split(".")
        config.setdefault(section, Config())[key] = value
    (ROOT / "autograder" / "course").mkdir(parents=True, exist_ok=True)
    yield NbGraderAPI(config=config)


def generate_release(release_dir: Path = EXERCISES, only: list[str] | None = None) -> list[Path]:
    """Regenerate the student release from solutions/ with nbgrader; returns the notebooks.

    The release does not depend on any gradebook, so a throw-away one is used: the
    instructor's gradebook is left alone and parallel runs do not share an SQLite file.
    """
    build_source()
    produced = []
    scratch = tempfile.TemporaryDirectory(prefix="descent-release-")
    overrides = {"CourseDirectory.release_directory": str(Path(release_dir).resolve()),
                 "CourseDirectory.db_url": f"sqlite:///{scratch.name}/gradebook.db"}
    with scratch, nbgrader_api(**overrides) as api:
        for assignment in only or assignments():
            result = api.generate_assignment(assignment, force=True, create=True)
            if not result["success"]:
                raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{result['log']}"
                                   f"\n{result.get('error', '')}")
            produced += sorted((Path(release_dir) / assignment).glob("*.ipynb"))
    for nb_path in produced:  # deterministic files: no outputs, stable JSON
        nb = nbformat.read(nb_path, as_version=4)
        nbformat.write(nb, nb_path)
    return produced


def stale_release(release_dir: Path = EXERCISES) -> list[str]:
    """What differs between ``release_dir`` and a release regenerated now into a temporary
    folder: the paths (relative to ``release_dir``) that are stale, missing or extra. Writes
    nothing in ``release_dir``."""
    release_dir = Path(release_dir)
    with tempfile.TemporaryDirectory(prefix="descent-check-") as tmp:
        fresh = Path(tmp) / "exercises"
        generate_release(release_dir=fresh)
        want = {p.relative_to(fresh).as_posix() for p in fresh.rglob("*") if p.is_file()}
        have = ({p.relative_to(release_dir).as_posix() for p in release_dir.rglob("*") if p.is_file()}
                if release_dir.is_dir() else set())
        problems = [f"{name} (missing)" for name in sorted(want - have)]
        problems += [f"{name} (stale)" for name in sorted(want & have)
                     if not filecmp.cmp(fresh / name, release_dir / name, shallow=False)]
        problems += [f"{name} (not made by nbgrader)" for name in sorted(have - want)]
    return problems


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m autograder.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["source", "release", "check"],
                        help="source: nbgrader's source notebooks; release: regenerate exercises/; "
                             "check: fail if exercises/ differs from a fresh release (writes nothing there)")
    parser.add_argument("--only", nargs="+", metavar="ASSIGNMENT", help="just these assignments")
    args = parser.parse_args(argv)
    if args.command == "source":
        for path in build_source():
            print(path.relative_to(ROOT))
    elif args.command == "check":
        problems = stale_release()
        if problems:
            rel = EXERCISES.relative_to(ROOT)
            print(f"error: {rel}/ is not what nbgrader makes from solutions/ now:\n"
                  + "".join(f"  {rel}/{p}\n" for p in problems)
                  + f"Run `make exercises` to regenerate it and commit the result (students work on "
                    f"their own copies, made by `make lab`, which this never touches).", file=sys.stderr)
            return 1
        print(f"{EXERCISES.relative_to(ROOT)}/: up to date with solutions/ "
              f"({len(list(EXERCISES.rglob('*.ipynb')))} notebooks)")
    else:
        for path in generate_release(only=args.only):
            print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
