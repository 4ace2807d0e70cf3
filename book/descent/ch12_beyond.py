r"""Chapter 12 (book/12-beyond.md): figures for the optimizers of :mod:`optimkit.beyond`.

``beyond_race`` runs Adam, Lookahead, LAMB, SAM and L-BFGS on one landscape (the closure-based
ones through :func:`optimkit.beyond.run_closure`) and counts gradient evaluations;
``sam_figure`` shows the objective SAM aims at on the 1-D sharp/flat function, with a slider for
the neighbourhood radius :math:`\rho`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from optimkit import beyond, optim, schedules
from optimkit.landscapes import Landscape1D, run

from .drawing import COLORS
from .sliders import SliderFigure


def _adam(lr):
    return lambda p: optim.Adam(p, lr=lr)


# label -> (factory taking the step budget, needs a closure?)
BEYOND_ENTRANTS = {
    "Adam (lr 0.04)": (lambda steps: _adam(0.04), False),
    "Lookahead(Adam 0.04), k=5, α=0.5": (
        lambda steps: (lambda p: beyond.Lookahead(optim.Adam(p, lr=0.04), k=5, alpha=0.5)), False),
    "LAMB (lr 0.02, cosine decay)": (lambda steps: (lambda p: beyond.LAMB(p, lr=0.02)), False),
    "SAM(Adam 0.04), ρ=0.01": (
        lambda steps: (lambda p: beyond.SAM(optim.Adam(p, lr=0.04), rho=0.01)), True),
    "L-BFGS (m=10, backtracking)": (lambda steps: (lambda p: beyond.LBFGS(p, history_size=10)), True),
}


def beyond_race(landscape, steps: int = 3000, lbfgs_steps: int = 100):
    """Run every entrant of :data:`BEYOND_ENTRANTS` on ``landscape`` from its default start.

    Returns ``(trajectories, evaluations)``, both dicts keyed by label; ``evaluations[label][k]``
    is the number of gradient evaluations used by the first k steps (one per step for the
    gradient-only optimizers, two for SAM, one per line-search trial for L-BFGS). LAMB's learning
    rate follows a cosine decay to 0 over ``steps``.
    """
    trajectories, evaluations = {}, {}
    for label, (factory, closure) in BEYOND_ENTRANTS.items():
        make = factory(steps)
        if closure:
            n = lbfgs_steps if label.startswith("L-BFGS") else steps
            t, ev = beyond.run_closure(landscape, make, steps=n)
        else:
            schedule = schedules.cosine(0.02, steps) if label.startswith("LAMB") else None
            t = run(landscape, make, steps=steps, schedule=schedule)
            ev = np.arange(len(t.points))
        trajectories[label], evaluations[label] = t, ev
    return trajectories, evaluations


def sam_objective(f, xs, rho: float, samples: int = 401) -> np.ndarray:
    r"""The loss SAM aims at, :math:`L^{\text{SAM}}_\rho(x) = \max_{|e| \le \rho} f(x + e)`, for a
    1-D function ``f``, on the points ``xs`` (the maximum over ``samples`` evenly spaced e)."""
    xs = np.asarray(xs, dtype=np.float64)
    if rho == 0:
        return f(xs)
    offsets = np.linspace(-rho, rho, samples)
    return f(xs[:, None] + offsets[None, :]).max(axis=1)


def sam_figure(landscape: Landscape1D, rhos) -> SliderFigure:
    r"""The 1-D sharp/flat function and SAM's objective :math:`\max_{|e|\le\rho} f(x+e)`, with a
    slider for :math:`\rho`. The windows :math:`[m-\rho, m+\rho]` around both minima are shaded
    and the SAM loss at each minimum is marked."""
    lo, hi = landscape.bounds
    xs = np.linspace(lo, hi, 1200)
    fig, ax = plt.subplots(figsize=(7.2, 3.9), layout="constrained")
    ax.plot(xs, landscape.f(xs), color="0.35", linewidth=1.2, label="f(x)")
    (sam_line,) = ax.plot([], [], color=COLORS[1], linewidth=2.0, label="SAM objective")
    shades = [ax.axvspan(m, m, color=COLORS[0], alpha=0.15) for m in landscape.minima]
    (marks,) = ax.plot([], [], marker="o", markersize=8, color=COLORS[1], markeredgecolor="black",
                       linestyle="none")
    note = ax.text(0.02, 0.04, "", transform=ax.transAxes, fontsize=9,
                   bbox=dict(facecolor="white", edgecolor="0.7", alpha=0.9))
    title = ax.set_title("")
    ax.set_xlim(lo, hi)
    ax.set_ylim(-1.3, 0.5)
    ax.set_xlabel("x")
    ax.set_ylabel("loss")
    ax.legend(loc="upper right", fontsize=8)
    curves = {rho: sam_objective(landscape.f, xs, rho) for rho in rhos}
    at_minima = {rho: [float(sam_objective(landscape.f, [m], rho)[0]) for m in landscape.minima]
                 for rho in rhos}

    def update(rho):
        sam_line.set_data(xs, curves[rho])
        for shade, m in zip(shades, landscape.minima):
            shade.set_x(m - rho)  # axvspan returns a Rectangle (matplotlib >= 3.9)
            shade.set_width(2 * rho)
        marks.set_data(list(landscape.minima), at_minima[rho])
        sharp, flat = at_minima[rho]
        note.set_text(f"SAM loss at the sharp minimum: {sharp:+.3f}\n"
                      f"SAM loss at the flat minimum:  {flat:+.3f}")
        title.set_text(f"ρ = {rho:g}: the worst loss within ρ of each point")

    def alt(rho):
        sharp, flat = at_minima[rho]
        return (f"The sharp/flat function and SAM's objective for radius {rho:g}: the worst loss "
                f"within {rho:g} of each point is {sharp:.3f} at the sharp minimum and {flat:.3f} "
                f"at the flat one.")

    return SliderFigure(fig, update, {"rho": list(rhos)}, alt=alt, labels={"rho": "radius ρ"},
                        animated=[sam_line, *shades, marks, note, title])
