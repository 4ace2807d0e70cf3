"""The built site's apparatus: every cross-reference resolved, every citation linked to its entry.

Reads the HTML of the built book in _build/html (`make test` builds it first; DESCENT_SITE_ROOT
points at a scratch root, as for tests/browser/test_site_browser.py), the same build the browser
test reads, so nothing is built here. Sphinx renders a reference it could not resolve as an
element with the class ``xref`` and no link (a `{doc}`, `{ref}`, `{numref}` or `{eq}` whose target
is missing), so none may remain. Citations must point at an entry of the bibliography page, and
that page must list every entry of book/references.bib. Sections, equations and figures carry
numbers, external works are links, and no page loads anything from another host.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml
from pybtex.database import parse_file

REPO = Path(__file__).resolve().parents[2]
ROOT = Path(os.environ.get("DESCENT_SITE_ROOT", REPO))
SITE = ROOT / "_build" / "html"
UNRESOLVED = re.compile(r'<(span|code)[^>]*class="xref\b[^"]*"[^>]*>(.*?)</\1>', re.S)
CITATION = re.compile(r'<span class="bibtex-citation"[^>]*>.*?</span>', re.S)
EXTERNAL_LOAD = re.compile(r'<(?:script|img|iframe|source)\b[^>]*\bsrc="(?:https?:)?//|'
                           r'<link\b[^>]*\bhref="(?:https?:)?//')


def pages() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc.get("parts", [toc]) for c in part.get("chapters", [])]
    return [SITE / f"{f}.html" for f in files]


def chapter_pages() -> list[Path]:
    """Chapters 1-12 (this file's; later chapters are checked by their own tests)."""
    return [p for p in pages() if p.name[:2].isdigit() and int(p.name[:2]) <= 12]


@pytest.fixture(scope="module")
def html():
    if not (SITE / "index.html").exists():
        pytest.fail("no built site in _build/html: run `make` (or `make test`, which builds it)")
    missing = [p.name for p in pages() if not p.exists()]
    assert not missing, f"pages in _toc.yml missing from the build: {missing}"
    return {p.stem: p.read_text() for p in pages()}


def unresolved(text: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", m.group(2)).strip() for m in UNRESOLVED.finditer(text)]


def test_the_unresolved_pattern_can_fail():
    assert unresolved('see <span class="xref std std-doc">chapter 2</span>') == ["chapter 2"]
    assert unresolved('<code class="xref std std-numref docutils literal notranslate">'
                      '<span class="pre">section</span></code>') == ["section"]
    assert unresolved('<a class="reference internal" href="02-sgd.html"><span class="doc">'
                      'chapter 2</span></a>') == []


def test_every_reference_resolves(html):
    problems = [f"{stem}: {text!r}" for stem, text in html.items() for text in unresolved(text)]
    assert problems == []


def test_every_citation_links_to_its_bibliography_entry(html):
    entries = set(re.findall(r'<div class="citation" id="([^"]+)"', html["bibliography"]))
    # descent.bibliography_html drops docutils' list/doc-biblioentry roles (axe: aria-required-children)
    assert 'role="doc-biblioentry"' not in html["bibliography"] and 'role="list"' not in html["bibliography"]
    assert len(entries) == len(parse_file(str(REPO / "book" / "references.bib")).entries)
    cited = 0
    for stem, text in html.items():
        for citation in CITATION.findall(text):
            targets = re.findall(r'href="bibliography\.html#([^"]+)"', citation)
            assert targets, f"{stem}: a citation without a link: {citation[:200]}"
            assert set(targets) <= entries, f"{stem}: citation points nowhere: {targets}"
            cited += 1
    assert cited >= 60


def test_chapters_number_sections_equations_and_figures(html):
    for page in chapter_pages():
        text, number = html[page.stem], int(page.name[:2])
        assert f'<span class="section-number">{number}.1. </span>' in text, page.name
        assert f'<span class="caption-number">Fig. {number}.' in text, f"{page.name}: no numbered figure"
        assert "<figcaption>" in text
    numbered_equations = sum(len(re.findall(r'<span class="eqno">\(\d+\.\d+\)', html[p.stem]))
                             for p in chapter_pages())
    assert numbered_equations >= 25


def test_external_works_are_links_and_nothing_external_loads(html):
    assert 'href="https://distill.pub/2017/momentum/"' in html["03-momentum"]
    loads = [f"{stem}: {m.group(0)[:80]}" for stem, text in html.items() for m in EXTERNAL_LOAD.finditer(text)]
    assert loads == []
    assert EXTERNAL_LOAD.search('<script src="https://cdn.example/x.js">')   # the pattern can fail
