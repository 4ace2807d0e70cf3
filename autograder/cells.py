"""What a notebook cell is, in nbgrader's terms: the one module that reads or writes cell metadata.

Small predicates and readers in the spirit of ``nbgrader.utils`` (``is_grade``, ``is_solution``,
``is_locked``), plus the facts this course adds to nbgrader's protocol:

* **kinds**: a cell in solutions/ carries a compact spec ``{id, kind, points}``; :func:`expand`
  turns it into nbgrader's metadata (the table in ``KINDS``);
* **set-up cells**: the locked code cells before the first answer (imports, constants), which
  visible tests may rely on (:func:`setup_cells`);
* **which problem a test checks**: the answer cell above it. A test cell (visible or hidden)
  grades the nearest solution cell before it in the *source* notebook (solutions/), and it is
  looked up by its grade_id, which nbgrader restores in every submission; the problem is that
  answer's grade_id, which is also the function's name and the key of the checks module's
  ``PROBLEMS``. A test cell with no answer above it is a :class:`ProtocolError`
  (:func:`grade_cells`);
* **points** live in the source's metadata only (``points`` of a tests cell, what the gradebook
  uses); a hidden check is worth its hidden test cell's points (:func:`points`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)

# The compact kinds of solutions/ and the nbgrader metadata each one stands for.
KINDS = {
    "solution": dict(solution=True, grade=False, locked=False),   # autograded answer (code)
    "tests": dict(solution=False, grade=True, locked=True),       # visible or hidden tests
    "written": dict(solution=True, grade=True, locked=False),     # manually graded answer (markdown)
    "locked": dict(solution=False, grade=False, locked=True),     # read-only
}


class ProtocolError(ValueError):
    """A notebook whose cells break the protocol above; the message says where and how."""


# --- readers and predicates --------------------------------------------------------------------

def metadata(cell) -> dict:
    """The cell's nbgrader metadata ({} for a cell nbgrader does not know)."""
    return cell.metadata.get("nbgrader", {})


def cell_name(cell) -> str | None:
    """The cell's nbgrader name (its ``grade_id``): what nbgrader restores it by."""
    return metadata(cell).get("grade_id")


def is_nbgrader(cell) -> bool:
    """Whether nbgrader knows the cell (a cell the student added has no metadata)."""
    return bool(metadata(cell))


def is_solution(cell) -> bool:
    """An answer: code the student writes, or a written (markdown) answer."""
    return bool(metadata(cell).get("solution"))


def is_grade(cell) -> bool:
    """A cell that earns points: a test cell or a written answer."""
    return bool(metadata(cell).get("grade"))


def is_test(cell) -> bool:
    """A test cell (visible tests, maybe followed by a hidden part)."""
    return is_grade(cell) and not is_solution(cell)


def is_hidden_test(cell) -> bool:
    """A test cell with a hidden part (``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``)."""
    return is_test(cell) and bool(HIDDEN.search(cell.source))


def is_locked(cell) -> bool:
    """The cell's own ``locked`` flag (read-only for the student)."""
    return bool(metadata(cell).get("locked"))


def points(cell) -> float:
    return metadata(cell)["points"]


def set_points(cell, value: float) -> None:
    metadata(cell)["points"] = value


def visible_part(source: str) -> str:
    """A test cell's code before its hidden part (all of it when there is none)."""
    return source.split(HIDDEN_BEGIN)[0]


def first_answer(cells) -> int:
    """The index of the first answer cell (``len(cells)`` when there is none)."""
    return next((i for i, cell in enumerate(cells) if is_solution(cell)), len(cells))


def setup_cells(cells) -> list[int]:
    """Indices of the set-up cells: the locked code cells before the first answer."""
    return [i for i, cell in enumerate(cells[:first_answer(cells)])
            if cell.cell_type == "code" and is_locked(cell) and not is_grade(cell)]


def answers(cells) -> dict[str, object]:
    """``{grade_id: cell}`` of the answer cells."""
    return {cell_name(cell): cell for cell in cells if is_solution(cell)}


# --- the problem a grade cell belongs to ---------------------------------------------------------

@dataclass(frozen=True)
class GradeCell:
    """A cell that earns points, as the source notebook declares it."""

    problem: str     # the answer it grades: the answer above a test, a written answer itself
    points: float
    hidden: bool     # a test with a hidden part: the checks module's judge scores it


def grade_cells(cells, where: str = "the notebook") -> dict[str, GradeCell]:
    """``{grade_id: GradeCell}`` for every grade cell of a *source* notebook."""
    found, answer = {}, None
    for index, cell in enumerate(cells):
        if is_solution(cell):
            answer = cell_name(cell)
        if not is_grade(cell):
            continue
        if answer is None:
            raise ProtocolError(f"{where}, cell {index + 1} ({cell_name(cell)}): a test cell checks the "
                                f"answer cell above it, and there is none; put it after its answer")
        found[cell_name(cell)] = GradeCell(answer, points(cell), is_hidden_test(cell))
    return found


# --- solutions/ specs ------------------------------------------------------------------------------

def expand(nb, where: str):
    """Turn compact ``{id, kind, points}`` specs into nbgrader's cell metadata, in place."""
    seen = set()
    for index, cell in enumerate(nb.cells):
        spec = cell.metadata.get("nbgrader")
        if spec is None or "schema_version" in spec:  # none, or already full nbgrader metadata
            continue
        cell.metadata["nbgrader"] = _full_metadata(spec, cell, f"{where}, cell {index + 1}", seen)
    return nb


def _full_metadata(spec: dict, cell, label: str, seen: set) -> dict:
    kind, name = spec.get("kind"), spec.get("id")
    if kind not in KINDS:
        raise ProtocolError(f"{label}: kind must be one of {sorted(KINDS)}, got {kind!r}")
    if not name or name in seen:
        raise ProtocolError(f"{label}: id must be present and unique, got {name!r}")
    seen.add(name)
    full = dict(KINDS[kind], grade_id=name, schema_version=3)
    if full["grade"]:
        value = spec.get("points")
        if not isinstance(value, (int, float)) or value <= 0:
            raise ProtocolError(f"{label}: a {kind} cell needs points > 0, got {value!r}")
        full["points"] = value
    if kind == "written" and cell.cell_type != "markdown":
        raise ProtocolError(f"{label}: a written answer must be a markdown cell")
    return full
