"""The book's apparatus in its sources: citations, cross-references, equation labels, exercises.

Read from the chapters' MyST text (no build): every cited key is in book/references.bib (parsed
with pybtex, not with the Sphinx extension that renders it), every {doc}/{ref}/{numref}/{eq}
target exists, no author-year citation or "chapter N" is left as plain text in the prose, and
every chapter ends with exercises whose solutions are toggled. The built site's side (every
reference resolved, every citation linked) is tests/book/test_site_apparatus.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pybtex.database import parse_file

ROOT = Path(__file__).resolve().parents[2]
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("[0-9][0-9]-*.md"))  # every chapter, the 2020s ones included
ROLE = re.compile(r"\{(cite(?::[pt])?|doc|ref|numref|eq)\}`([^`]*)`")
PLAIN_CITATION = re.compile(
    r"\b[A-Z][\w\-]+(?: et al\.| and [A-Z][\w\-]+)?,? \(?(?:19[4-9]\d|20[0-2]\d)[a-z]?\)?")
PLAIN_CHAPTER = re.compile(r"\b[Cc]hapters? \d+")


def prose_lines(path: Path) -> list[tuple[int, str]]:
    """The Markdown lines of a chapter: no front matter, no code cells (their comments may say
    anything), no math blocks (years do not occur there, numbers do)."""
    out, in_code, in_front = [], False, False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if number == 1 and line == "---":
            in_front = True
            continue
        if in_front:
            in_front = line != "---"
            continue
        if line.startswith("```{code-cell}"):
            in_code = True
        elif in_code and line.strip() == "```":
            in_code = False
        elif not in_code:
            out.append((number, line))
    return out


def bib_keys() -> set[str]:
    return set(parse_file(str(BOOK / "references.bib")).entries)


def roles(path: Path, kinds: tuple[str, ...]) -> list[str]:
    found = []
    for _, line in prose_lines(path):
        for kind, body in ROLE.findall(line):
            if kind.split(":")[0] in kinds or kind in kinds:
                found.append(body)
    return found


def target(body: str) -> str:
    """`text <target>` or `target`."""
    m = re.search(r"<([^>]+)>$", body)
    return m.group(1) if m else body


def labels() -> set[str]:
    defined = set()
    for path in BOOK.glob("*.md"):
        text = path.read_text()
        defined |= set(re.findall(r"^\(([\w\-:]+)\)=\s*$", text, re.M))          # (label)=
        defined |= set(re.findall(r"\$\$\s*\(([\w\-:]+)\)\s*$", text, re.M))    # $$ (label)
        defined |= set(re.findall(r"^:(?:label|name):\s*([\w\-:]+)", text, re.M))
        defined |= set(re.findall(r"^:?\s+name:\s*([\w\-:]+)", text, re.M))      # mystnb figure name (also the :mystnb: option form)
    return defined


def missing_citations(path: Path, keys: set[str]) -> list[str]:
    cited = [k.strip() for body in roles(path, ("cite",)) for k in body.split(",")]
    return [k for k in cited if k not in keys]


def test_the_bibliography_parses_and_is_in_the_build():
    keys = bib_keys()
    assert len(keys) >= 60
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["bibtex_bibfiles"] == ["book/references.bib"]
    assert "sphinxcontrib.bibtex" in config["sphinx"]["config"]["extensions"]
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert "book/bibliography" in files
    assert toc["parts"][0]["numbered"] is True
    assert "{bibliography}" in (BOOK / "bibliography.md").read_text()


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_citation_is_in_the_bib(path):
    assert roles(path, ("cite",)), f"{path.name} cites nothing"
    assert missing_citations(path, bib_keys()) == []


def test_a_missing_key_is_caught(tmp_path):
    chapter = tmp_path / "99-x.md"
    chapter.write_text("As {cite:t}`kingma2015` and {cite:p}`nobody1999,liu2020` said.\n")
    assert missing_citations(chapter, bib_keys()) == ["nobody1999"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_plain_text_citations_or_chapter_numbers(path):
    offenders = []
    for number, line in prose_lines(path):
        bare = ROLE.sub("", line)
        bare = re.sub(r"\$[^$]*\$", "", bare)                   # inline maths
        bare = re.sub(r"\{glue:\w+\}`[^`]*`", "", bare)
        for pattern in (PLAIN_CITATION, PLAIN_CHAPTER):
            offenders += [f"{path.name}:{number}: {m.group(0)}" for m in pattern.finditer(bare)]
    assert offenders == []


def test_the_plain_text_patterns_can_fail():
    assert PLAIN_CITATION.search("as Kingma and Ba (2015) showed")
    assert PLAIN_CITATION.search("(Goyal et al., 2017)")
    assert PLAIN_CHAPTER.search("see chapter 9")
    assert not PLAIN_CHAPTER.search(ROLE.sub("", "see {doc}`chapter 9 <09-landscapes>`"))


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_cross_reference_has_a_target(path):
    docs = [target(b) for b in roles(path, ("doc",))]
    assert [d for d in docs if not (path.parent / f"{d}.md").exists()] == []
    defined = labels()
    refs = [target(b) for b in roles(path, ("ref", "numref", "eq"))]
    assert [r for r in refs if r not in defined] == []


def test_chapters_link_each_other_and_number_equations():
    docs = sum(len(roles(p, ("doc",))) for p in CHAPTERS)
    eqs = sum(len(roles(p, ("eq",))) for p in CHAPTERS)
    assert docs >= 40 and eqs >= 12, (docs, eqs)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_ends_with_exercises_and_hidden_solutions(path):
    text = path.read_text()
    assert "(exercises-" in text and "## Exercises" in text, f"{path.name}: no Exercises section"
    tail = text[text.index("## Exercises"):]
    questions = len(re.findall(r"^\d+\. \*\*", tail, re.M))
    solutions = tail.count(":class: dropdown")
    assert 3 <= questions <= 6, f"{path.name}: {questions} exercises"
    assert solutions == questions, f"{path.name}: {solutions} toggled solutions for {questions} exercises"


def test_the_bibliography_loses_only_its_invalid_aria_roles():
    from descent.bibliography_html import accessible_citations

    docutils_html = ('<div role="list" class="citation-list">\n<div class="citation" id="id3" '
                     'role="doc-biblioentry">\n<span class="label">Rob51</span></div>')
    fixed = accessible_citations(docutils_html)
    assert fixed == ('<div class="citation-list">\n<div class="citation" id="id3">\n'
                     '<span class="label">Rob51</span></div>')
    assert accessible_citations('<ul role="list"><li>x</li></ul>') == '<ul role="list"><li>x</li></ul>'
