"""A Sphinx extension for the bibliography page: accessible markup for sphinxcontrib-bibtex's list.

docutils writes the bibliography as ``<div role="list" class="citation-list">`` holding
``<div class="citation" role="doc-biblioentry">`` entries. ARIA's ``list`` role requires
``listitem`` children and ``doc-biblioentry`` is deprecated, so axe-core reports a critical
violation (aria-required-children) on the page. The entries are already a sequence of blocks with
ids that the citations link to; this drops the two roles and keeps everything else. Loaded by
``_config.yml`` (``descent.bibliography_html`` in ``sphinx.config.extensions``).
"""

from __future__ import annotations

import re

LIST_ROLE = re.compile(r'(<div\b[^>]*?)\s+role="list"([^>]*class="citation-list")|'
                       r'(<div\b[^>]*class="citation-list"[^>]*?)\s+role="list"')
ENTRY_ROLE = re.compile(r'(<div\b[^>]*class="citation"[^>]*?)\s+role="doc-biblioentry"')


def accessible_citations(body: str) -> str:
    """``body`` with the citation list's ``list`` and ``doc-biblioentry`` roles removed."""
    body = LIST_ROLE.sub(lambda m: (m.group(1) + m.group(2)) if m.group(1) else m.group(3), body)
    return ENTRY_ROLE.sub(r"\1", body)


def _page_context(app, pagename, templatename, context, doctree):
    if "citation-list" in context.get("body", ""):
        context["body"] = accessible_citations(context["body"])


def setup(app):
    app.connect("html-page-context", _page_context)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
