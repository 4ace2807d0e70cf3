"""The instructor's report: one self-contained HTML page (plots embedded, no network)."""

from __future__ import annotations

import base64
import html
import io
from collections import Counter, defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _distribution_figure(assignment: str, rows) -> str:
    scores = defaultdict(list)
    for row in rows:
        for problem, score in row.scores.items():
            scores[problem].append(score)
    problems = sorted(scores)
    fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(problems), 3.2))
    ax.boxplot([scores[p] for p in problems], showmeans=True)
    for i, p in enumerate(problems, start=1):
        ax.scatter([i] * len(scores[p]), scores[p], s=12, alpha=0.6, color="#0072B2", zorder=3)
    ax.set_xticks(range(1, len(problems) + 1), problems, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("points")
    ax.set_title(f"{assignment}: score per problem")
    return _png(fig)


def _mistakes_figure(counter: Counter) -> str:
    items = counter.most_common(12)[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(items) + 1))
    ax.barh([f"{problem}: {name[:60]}" for (problem, name), _ in items], [n for _, n in items], color="#D55E00")
    ax.set_xlabel("submissions")
    ax.set_title("Most common named mistakes")
    ax.tick_params(axis="y", labelsize=8)
    return _png(fig)


def write_report(rows, path: Path, *, isolation: str, warnings: list[str]) -> None:
    graded = [r for r in rows if r.status == "graded"]
    failed = [r for r in rows if r.status != "graded"]
    by_assignment = defaultdict(list)
    for row in graded:
        by_assignment[row.assignment].append(row)
    mistakes = Counter((p, m) for r in graded for p, m in r.mistakes.items())
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Grading report</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px}"
        ".warn{background:#fff3cd;padding:8px;border-left:4px solid #e0a800}</style></head><body>",
        "<h1>Grading report</h1>",
        f"<p>{len(rows)} submissions: {len(graded)} graded, {len(failed)} could not be graded. "
        f"Isolation: <b>{e(isolation)}</b>.</p>",
    ]
    if isolation == "none":
        parts.append("<p class='warn'>No operating-system isolation was available: student code "
                     "ran as the grader.</p>")
    parts.append("<h2>Per assignment</h2><table><tr><th>assignment</th><th>graded</th>"
                 "<th>mean total</th><th>max</th></tr>")
    for assignment, group in sorted(by_assignment.items()):
        mean = sum(r.total for r in group) / len(group)
        parts.append(f"<tr><td>{e(assignment)}</td><td>{len(group)}</td><td>{mean:.2f}</td>"
                     f"<td>{group[0].max_total:g}</td></tr>")
    parts.append("</table>")
    for assignment, group in sorted(by_assignment.items()):
        parts.append(f"<img alt='Score distribution per problem for {e(assignment)}' "
                     f"src='data:image/png;base64,{_distribution_figure(assignment, group)}'>")
    if mistakes:
        parts.append("<h2>Named mistakes</h2>")
        parts.append(f"<img alt='Most common named mistakes' src='data:image/png;base64,{_mistakes_figure(mistakes)}'>")
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
