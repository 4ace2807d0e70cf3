"""From solutions/ (text notebooks) to nbgrader's source notebooks and the student release.

    solutions/<assignment>/<name>.md   --build_source-->   _build/course/source/<assignment>/<name>.ipynb
                                        --nbgrader generate_assignment-->   exercises/<assignment>/<name>.ipynb

Cells in solutions/ carry a compact nbgrader spec, ``{id, kind, points}``, which
:func:`autograder.cells.expand` turns into nbgrader's full cell metadata (``cells.KINDS``:
solution, tests, written, locked). The points of every test live there and only there:
:func:`points` reads them.
"""

from __future__ import annotations

import contextlib
import functools
import os
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


def assignments() -> list[str]:
    return sorted(p.name for p in SOLUTIONS.iterdir() if p.is_dir() and any(p.glob("*.md")))


def notebooks(assignment: str) -> list[str]:
    """The names of an assignment's notebooks (solutions/<assignment>/<name>.md)."""
    return sorted(p.stem for p in (SOLUTIONS / assignment).glob("*.md"))


def read_solution(path: Path):
    nb = jupytext.read(path)
    nb.metadata.pop("jupytext", None)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
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


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m autograder.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["source", "release"])
    parser.add_argument("--only", nargs="+", metavar="ASSIGNMENT", help="just these assignments")
    args = parser.parse_args(argv)
    if args.command == "source":
        for path in build_source():
            print(path.relative_to(ROOT))
    else:
        for path in generate_release(only=args.only):
            print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
