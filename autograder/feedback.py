"""The student's feedback page: nbgrader's feedback HTML, made to read well offline.

nbgrader's ``generate_feedback`` writes it (``autograder/nbgrader_config.py`` names the pieces
here, so the pipeline, ``python -m autograder export`` and nbgrader's own commands and formgrader
all make the same page). What changes from nbgrader's stock page:

* **math is rendered when the page is written** (TeX to MathML, :func:`markdown2html`): no
  MathJax from a CDN, nothing loaded from the network; browsers draw MathML themselves;
* **pending hand grading** is said as such (:class:`FeedbackGrades`): a written answer nobody
  has graded yet reads "awaiting hand grading", never "0 / 2";
* **each error once, no raw scores** (:class:`TidyOutputs`): a test's error already printed with
  its traceback is not repeated, and the partial-credit number a hidden test cell hands to
  nbgrader (``Out[ ]: 1.4``) is not shown; the score is in the cell's heading;
* long lines wrap (the template's CSS).
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool
from nbgrader import utils
from nbgrader.preprocessors import GetGrades

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "feedback"  # the name nbgrader's API insists on; found here first (extra_template_basedirs)
ALIGNED = re.compile(r"\\begin\{(aligned|align\*?|eqnarray\*?)\}(.*?)\\end\{\1\}", re.S)


def _aligned_as_array(tex: str) -> str:
    """latex2mathml has no ``aligned``: the same rows as an array of right/left column pairs."""
    def replace(match):
        body = match.group(2)
        columns = max(row.count("&") for row in body.split(r"\\")) + 1
        return r"\begin{array}{" + ("rl" * columns)[:columns] + "}" + body + r"\end{array}"
    return ALIGNED.sub(replace, tex)


def tex_to_mathml(tex: str, display: bool) -> str:
    """One formula as MathML; a formula it cannot convert stays readable as TeX in <code>."""
    from latex2mathml.converter import convert

    try:
        return convert(_aligned_as_array(tex.strip()), display="block" if display else "inline")
    except Exception:  # noqa: BLE001 - an unsupported command: show the source, never fail the page
        return f"<code class='tex'>{html.escape(tex)}</code>"


class MathMLRenderer(IPythonRenderer):
    """nbconvert's Markdown renderer, with math as MathML instead of $...$ left for MathJax."""

    def block_math(self, body: str) -> str:
        return tex_to_mathml(body, display=True)

    def inline_math(self, body: str) -> str:
        return tex_to_mathml(body, display=False)

    def latex_environment(self, name: str, body: str) -> str:
        return tex_to_mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", display=True)


def markdown2html(source: str) -> str:
    """The template's Markdown filter: nbconvert's parser (same math delimiters), MathML out."""
    return MarkdownWithMath(renderer=MathMLRenderer(escape=False)).render(source)


class FeedbackGrades(GetGrades):
    """nbgrader's GetGrades, plus which grades still await a human: a cell's ``pending`` flag
    (nbgrader's ``needs_manual_grade``) and the notebook's ``pending`` points."""

    def preprocess(self, nb, resources):
        resources["nbgrader"]["pending"] = 0.0
        return super().preprocess(nb, resources)

    def _get_score(self, cell, resources) -> None:
        super()._get_score(cell, resources)
        grade = self.gradebook.find_grade(cell.metadata["nbgrader"]["grade_id"], self.notebook_id,
                                          self.assignment_id, self.student_id)
        cell.metadata.nbgrader["pending"] = bool(grade.needs_manual_grade)
        if grade.needs_manual_grade:
            resources["nbgrader"]["pending"] += float(grade.max_score or 0)


def _error_line(output) -> str:
    return f"{output.get('ename', '')}: {output.get('evalue', '')}".strip()


class TidyOutputs(Preprocessor):
    """Each error shown once; no raw partial-credit values under test cells."""

    enabled = Bool(True)  # nbconvert's preprocessors are off unless enabled; nbgrader registers it as is

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        test_cell = utils.is_grade(cell) and not utils.is_solution(cell)
        kept, printed = [], ""
        for output in cell.outputs:
            if test_cell and output.output_type == "execute_result":
                continue  # the score nbgrader read; the heading shows it
            if output.output_type == "error" and _error_line(output) and _error_line(output) in printed:
                continue  # already printed with its traceback
            if output.output_type == "stream":
                printed += output.text
            kept.append(output)
        cell.outputs = kept
        return cell, resources
