"""The instructor's report: one self-contained HTML page (plots embedded, no network).

Made by :func:`autograder.export.export` from the gradebook's rows: per assignment, the score
distribution per problem; the named mistakes and the failed properties (in-place writes,
crashes, wrong values), counted in whole submissions; per student, each assignment's total
(pending hand grading and missing work said as such); what could not be graded, and why.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from collections import Counter, defaultdict
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight", facecolor="white")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> Figure:
    # A Figure of its own, not pyplot: the report never touches the caller's matplotlib backend.
    return Figure(figsize=(width, height))


def _distribution_figure(assignment: str, rows) -> str:
    scores = defaultdict(list)
    for row in rows:
        for problem, score in row.scores.items():
            scores[problem].append(score)
    problems = sorted(scores)
    fig = _figure(1.6 + 1.1 * max(len(problems), 1), 3.2)
    ax = fig.subplots()
    if problems:
        ax.boxplot([scores[p] for p in problems], showmeans=True)
        for i, p in enumerate(problems, start=1):
            ax.scatter([i] * len(scores[p]), scores[p], s=12, alpha=0.6, color="#0072B2", zorder=3)
        ax.set_xticks(range(1, len(problems) + 1), problems, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("points")
    ax.set_title(f"{assignment}: score per problem (hand grades pending not shown)", fontsize=9)
    return _png(fig)


def _count_figure(counter: Counter, title: str, color: str, width: int = 70) -> str:
    """Horizontal bars of whole-submission counts: integer ticks, every label in full (wrapped)."""
    items = counter.most_common(15)[::-1]
    labels = ["\n".join(textwrap.wrap(label, width)) for label, _ in items]
    lines = sum(label.count("\n") + 1 for label in labels)
    fig = _figure(10, 0.32 * lines + 0.35 * len(items) + 1)
    ax = fig.subplots()
    ax.barh(range(len(items)), [n for _, n in items], color=color)
    ax.set_yticks(range(len(items)), labels, fontsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, max(n for _, n in items) + 0.5)
    ax.set_xlabel("submissions")
    ax.set_title(title)
    return _png(fig)


def _points(value) -> str:
    return "" if value is None else f"{round(float(value), 2) + 0.0:g}"


def write_report(rows, path: Path, *, isolation: str, warnings: list[str], roster=(), assignments=()) -> None:
    graded = [r for r in rows if r.status == "graded"]
    failed = [r for r in rows if r.status != "graded"]
    pending = [r for r in graded if getattr(r, "pending", None)]
    by_assignment = defaultdict(list)
    for row in graded:
        by_assignment[row.assignment].append(row)
    assignments = sorted(set(assignments) | set(by_assignment))
    mistakes = Counter(f"{r.assignment} {p}: {m}" for r in graded for p, m in r.mistakes.items())
    properties = Counter(f"{r.assignment} {p}: {kind}" for r in graded
                         for p, kinds in (getattr(r, "failures", None) or {}).items() for kind in set(kinds))
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Grading report</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px}"
        "td.num{text-align:right}.pending{background:#fff3cd}.missing{color:#888}.failed{background:#f8d7da}"
        "img{max-width:100%}"
        ".warn{background:#fff3cd;padding:8px;border-left:4px solid #e0a800}</style></head><body>",
        "<h1>Grading report</h1>",
        f"<p>{len(rows)} submissions: {len(graded)} graded ({len(pending)} awaiting hand grading), "
        f"{len(failed)} could not be graded. Isolation: <b>{e(isolation)}</b>.</p>",
    ]
    if isolation == "none":
        parts.append("<p class='warn'>No operating-system isolation was available: student code "
                     "ran as the grader.</p>")
    parts.append("<h2>Per assignment</h2><table><tr><th>assignment</th><th>graded</th>"
                 "<th>awaiting hand grading</th><th>mean total (final ones)</th><th>max</th></tr>")
    for assignment in assignments:
        group = by_assignment.get(assignment, [])
        final = [r for r in group if not getattr(r, "pending", None)]
        mean = f"{sum(r.total for r in final) / len(final):.2f}" if final else "–"
        maximum = _points(group[0].max_total) if group else ""
        parts.append(f"<tr><td>{e(assignment)}</td><td class='num'>{len(group)}</td>"
                     f"<td class='num'>{len(group) - len(final)}</td><td class='num'>{mean}</td>"
                     f"<td class='num'>{maximum}</td></tr>")
    parts.append("</table>")
    for assignment in assignments:
        if by_assignment.get(assignment):
            parts.append(f"<img alt='Score distribution per problem for {e(assignment)}' "
                         f"src='data:image/png;base64,{_distribution_figure(assignment, by_assignment[assignment])}'>")
    if mistakes:
        parts.append("<h2>Named mistakes</h2>")
        parts.append(f"<img alt='Most common named mistakes' src='data:image/png;base64,"
                     f"{_count_figure(mistakes, 'Most common named mistakes', '#D55E00')}'>")
        parts.append("<table><tr><th>assignment, problem: mistake</th><th>submissions</th></tr>")
        parts += [f"<tr><td>{e(name)}</td><td class='num'>{n}</td></tr>" for name, n in mistakes.most_common()]
        parts.append("</table>")
    parts.append("<h2>Failed properties</h2>")
    if properties:
        parts.append(f"<img alt='Properties the hidden checks failed' src='data:image/png;base64,"
                     f"{_count_figure(properties, 'Properties the hidden checks failed', '#CC79A7')}'>")
        parts.append("<table><tr><th>assignment, problem: property failed</th><th>submissions</th></tr>")
        parts += [f"<tr><td>{e(name)}</td><td class='num'>{n}</td></tr>" for name, n in properties.most_common()]
        parts.append("</table>")
    else:
        parts.append("<p>None.</p>")
    parts.append("<h2>Awaiting hand grading</h2>")
    if pending:
        parts.append("<p>Grade these in nbgrader's formgrader (<code>cd</code> into the course folder, "
                     "<code>jupyter lab</code>), then run <code>python -m autograder export --out …</code>.</p>")
        parts.append("<table><tr><th>student</th><th>assignment</th><th>answers awaiting a grade (points)</th></tr>")
        parts += [f"<tr><td>{e(r.student)}</td><td>{e(r.assignment)}</td><td>"
                  + ", ".join(f"{e(p)} ({_points(v)})" for p, v in sorted(r.pending.items())) + "</td></tr>"
                  for r in pending]
        parts.append("</table>")
    else:
        parts.append("<p>None.</p>")
    students = sorted(set(roster) | {r.student for r in rows})
    if students and assignments:
        by_key = {(r.assignment, r.student): r for r in rows}
        parts.append("<h2>Per student</h2><table><tr><th>student</th>"
                     + "".join(f"<th>{e(a)}</th>" for a in assignments) + "<th>total</th></tr>")
        for student in students:
            cells, total, maximum, open_ = [], 0.0, 0.0, False
            for assignment in assignments:
                row = by_key.get((assignment, student))
                if row is None:
                    cells.append("<td class='missing'>missing</td>")
                    open_ = True
                elif row.status != "graded":
                    cells.append(f"<td class='failed' title='{e(row.reason)}'>could not grade</td>")
                    open_ = True
                else:
                    total += row.total or 0.0
                    maximum += row.max_total or 0.0
                    if row.pending:
                        open_ = True
                        cells.append(f"<td class='pending num'>{_points(row.total)} / {_points(row.max_total)} "
                                     f"(+{_points(sum(row.pending.values()))} pending)</td>")
                    else:
                        cells.append(f"<td class='num'>{_points(row.total)} / {_points(row.max_total)}</td>")
            mark = " (so far)" if open_ else ""
            parts.append(f"<tr><td>{e(student)}</td>{''.join(cells)}"
                         f"<td class='num'>{_points(total)} / {_points(maximum)}{mark}</td></tr>")
        parts.append("</table>")
    parts.append("<h2>Could not grade</h2>")
    if failed:
        parts.append("<table><tr><th>student</th><th>assignment</th><th>why</th></tr>")
        parts += [f"<tr><td>{e(r.student)}</td><td>{e(r.assignment)}</td><td>{e(r.reason)}</td></tr>" for r in failed]
        parts.append("</table>")
    else:
        parts.append("<p>None.</p>")
    notes = [(r, n) for r in graded for n in r.notes]
    if notes or warnings:
        parts.append("<h2>Notes</h2><ul>")
        parts += [f"<li>{e(w)}</li>" for w in warnings]
        parts += [f"<li>{e(r.student)}/{e(r.assignment)}: {e(n)}</li>" for r, n in notes]
        parts.append("</ul>")
    parts.append("</body></html>")
    path.write_text("\n".join(parts))

