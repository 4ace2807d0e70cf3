"""Computed numbers and tables for the chapters' prose: one way to do each, for every chapter.

* :func:`glue` stores a value under a name for ``{glue:text}`name:.3f``` in the text;
* :func:`table` shows rows as a Markdown table, :func:`html_table` as an HTML table with a caption;
* :func:`down` and :func:`up` round a number the prose calls a lower or an upper bound.
"""

from __future__ import annotations

import html
import math
from typing import Sequence

import numpy as np

# myst_nb reads glued values from outputs whose MIME types carry this prefix.
GLUE_PREFIX = "application/papermill.record/"


def plain(value):
    """A NumPy scalar (or 0-d array) as the Python number it holds; anything else unchanged.

    ``{glue:text}`` formats the value's repr, and ``np.float64(0.5)`` does not format as 0.5.
    """
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value


def glue(name: str, value, display: bool = False) -> None:
    """``myst_nb.glue(name, value, display)`` for a value made :func:`plain` first.

    Emits the same output as myst_nb's, without importing myst_nb (it imports nbformat, whose
    first import costs seconds per chapter).
    """
    from IPython.core.formatters import format_display_data
    from IPython.display import display as show

    bundle, metadata = format_display_data(plain(value))
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=prefix)
    show({prefix + mime: data for mime, data in bundle.items()}, raw=True, metadata=metadata)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    """The Markdown text of a table: cells as given (format numbers first), the first column
    left-aligned and the others right-aligned (they hold numbers)."""

    def cell(value) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def table(header: Sequence[str], rows: Sequence[Sequence]) -> None:
    """Show :func:`markdown_table` as a cell output (the book renders it as a table)."""
    from IPython.display import Markdown, display

    display(Markdown(markdown_table(header, rows)))


def html_table(headers, rows, caption: str | None = None):
    """A small HTML table with an optional caption (the site styles it like its other tables).

    Cells are escaped text; numbers should already be formatted.
    """
    from IPython.display import HTML

    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return HTML(f'<table class="table descent-table">{cap}<thead><tr>{head}</tr></thead>'
                f"<tbody>{body}</tbody></table>")


def down(x: float, digits: int) -> float:
    """Round down, for numbers the prose calls a lower bound ("at least")."""
    return math.floor(x * 10**digits) / 10**digits


def up(x: float, digits: int) -> float:
    """Round up, for numbers the prose calls an upper bound ("under", "less than")."""
    return math.ceil(x * 10**digits) / 10**digits
