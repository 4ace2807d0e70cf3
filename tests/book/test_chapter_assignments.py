"""Chapters and assignments point at each other, and the pointers agree.

Each chapter from 2 on ends with an Exercise admonition naming its assignment's student
notebook; each assignment's introduction says which chapters it goes with (a link); the table
in book/AUTHORING.md lists the pairs for authors. The three are read here and must agree, so a
renamed assignment or a new chapter cannot leave a dangling or contradictory pointer.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"

NOTEBOOK = re.compile(r"Open `exercises/(\d\d_\w+)/(\w+)\.ipynb`")
GOES_WITH = re.compile(r"\[Chapter (\d+), [^\]]+\]\(\.\./\.\./book/((\d\d)-[\w-]+)\.md\)")
TABLE_ROW = re.compile(r"^\| ([^|]+) \| `exercises/(\d\d_\w+)/\w+\.ipynb` \|$", re.M)


def chapter_assignments(chapters: dict[str, str]) -> dict[str, str]:
    """``{chapter stem: assignment}`` from each chapter's Exercise admonition."""
    found = {}
    for stem, text in chapters.items():
        hits = {m.group(1) for m in NOTEBOOK.finditer(text)}
        if len(hits) > 1:
            raise AssertionError(f"book/{stem}.md opens several assignments: {sorted(hits)}")
        if hits:
            found[stem] = hits.pop()
    return found


def assignment_chapters(intro: str) -> list[str]:
    """The chapter stems an assignment's introduction links to, checking number against file."""
    stems = []
    for number, stem, file_number in GOES_WITH.findall(intro):
        if int(number) != int(file_number):
            raise AssertionError(f"'Chapter {number}' links to book/{stem}.md")
        stems.append(stem)
    return stems


def disagreements(chapters: dict[str, str], assignments: dict[str, str]) -> list[str]:
    """Every way the two directions disagree, as sentences (empty when they agree)."""
    by_chapter = chapter_assignments(chapters)
    problems = []
    for name, intro in assignments.items():
        linked = assignment_chapters(intro)
        if not linked:
            problems.append(f"assignment {name} names no chapter it goes with")
        for stem in linked:
            if stem not in chapters:
                problems.append(f"assignment {name} links to book/{stem}.md, which does not exist")
            elif by_chapter.get(stem) != name:
                problems.append(f"assignment {name} goes with book/{stem}.md, whose exercise "
                                f"opens {by_chapter.get(stem)}")
    for stem, name in by_chapter.items():
        if name not in assignments:
            problems.append(f"book/{stem}.md opens exercises/{name}, which is not an assignment")
        elif stem not in assignment_chapters(assignments[name]):
            problems.append(f"book/{stem}.md opens {name}, whose introduction does not link back")
    return problems


def read_chapters() -> dict[str, str]:
    return {p.stem: p.read_text() for p in sorted(BOOK.glob("[0-9][0-9]-*.md"))}


def read_assignments() -> dict[str, str]:
    return {d.name: (d / f"{d.name[3:]}.md").read_text()
            for d in sorted((ROOT / "solutions").iterdir()) if d.is_dir()}


def test_every_chapter_from_2_on_opens_an_assignment():
    by_chapter = chapter_assignments(read_chapters())
    stems = [stem for stem in read_chapters() if not stem.startswith("01-")]
    assert [s for s in stems if s not in by_chapter] == []
    for stem, name in by_chapter.items():
        assert (ROOT / "exercises" / name / f"{name[3:]}.ipynb").is_file(), (stem, name)


def test_chapters_and_assignments_agree():
    assert disagreements(read_chapters(), read_assignments()) == []


def test_authoring_table_lists_what_the_chapters_open():
    table = dict((name, cell) for cell, name in TABLE_ROW.findall((BOOK / "AUTHORING.md").read_text()))
    by_chapter = chapter_assignments(read_chapters())
    for stem, name in by_chapter.items():
        number = str(int(stem[:2]))
        assert name in table and re.search(rf"\b{number}\b", table[name]), (stem, name, table.get(name))
    assert set(table) == set(by_chapter.values())


def test_negative_control_a_swapped_pointer_is_reported():
    chapters, assignments = read_chapters(), read_assignments()
    chapters["03-momentum"] = chapters["03-momentum"].replace(
        "exercises/02_momentum/momentum.ipynb", "exercises/04_adam/adam.ipynb")
    found = disagreements(chapters, assignments)
    assert any("02_momentum goes with book/03-momentum.md" in p for p in found), found
    unlinked = dict(assignments, **{"08_capstone": assignments["08_capstone"].replace("[Chapter 12,", "Chapter 12,")})
    assert "book/12-beyond.md opens 08_capstone, whose introduction does not link back" in \
        disagreements(read_chapters(), unlinked)
    assignments["05_adamw"] = assignments["05_adamw"].replace("[Chapter 6,", "[Chapter 7,")
    try:
        disagreements(chapters, assignments)
    except AssertionError as e:
        assert "Chapter 7" in str(e)
    else:
        raise AssertionError("a chapter number that contradicts its file went unnoticed")
