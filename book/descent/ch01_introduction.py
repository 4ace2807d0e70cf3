"""Chapter 1 (book/01-introduction.md): gradient descent on a 1-D loss, with a learning-rate slider.

* :func:`gd_1d_path` -- the iterates of ``optimkit.SGD`` on a 1-D loss;
* :func:`gd_1d_figure` -- the path on the curve and the error per step, a slider over the lr.
"""

from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from optimkit import SGD

from .drawing import COLORS
from .sliders import SliderFigure


def gd_1d_path(grad: Callable[[float], float], lr: float, start: float, steps: int) -> np.ndarray:
    """The iterates :math:`\\theta_0, \\dots, \\theta_{steps}` of ``optimkit.SGD(lr=lr)`` on a 1-D loss."""
    theta = np.array([float(start)])
    opt = SGD([theta], lr=lr)
    path = [theta[0]]
    for _ in range(steps):
        opt.step([np.array([grad(theta[0])])])
        path.append(theta[0])
    return np.array(path)


def gd_1d_figure(loss: Callable, grad: Callable, lrs: Sequence[float], *, start: float,
                 minimizer: float, steps: int = 12, curvature: float | None = None,
                 initial_lr: float | None = None) -> SliderFigure:
    """Gradient descent on a 1-D ``loss`` (left: the path on the curve; right: the error
    :math:`|\\theta_k - \\theta^*|` per step, log scale) with a learning-rate slider.

    With ``curvature`` (a quadratic's :math:`\\lambda`) the right panel also draws the
    prediction :math:`|1-\\eta\\lambda|^k\\,|\\theta_0-\\theta^*|`.
    """
    lrs = [float(v) for v in lrs]
    paths = {lr: gd_1d_path(grad, lr, start, steps) for lr in lrs}
    every = np.concatenate(list(paths.values()))
    lo, hi = min(every.min(), minimizer - 1.0), max(every.max(), minimizer + 1.0)
    pad = 0.08 * (hi - lo)
    grid = np.linspace(lo - pad, hi + pad, 400)

    fig, (ax, ax_err) = plt.subplots(1, 2, figsize=(8.4, 3.5), layout="constrained",
                                     gridspec_kw={"width_ratios": [1.25, 1]})
    ax.plot(grid, loss(grid), color="0.35", linewidth=1.4)
    ax.plot(minimizer, loss(minimizer), marker="*", markersize=14, color="gold",
            markeredgecolor="black", linestyle="none", zorder=5, label=r"minimum $\theta^*$")
    ax.plot(start, loss(start), marker="o", markersize=8, color="white", markeredgecolor="black",
            linestyle="none", zorder=6, label=r"start $\theta_0$")
    (path_line,) = ax.plot([], [], color=COLORS[0], linewidth=1.2, zorder=3)
    (dots,) = ax.plot([], [], marker="o", markersize=5, color=COLORS[0], linestyle="none", zorder=4,
                      label="iterates")
    ax.set_xlim(grid[0], grid[-1])
    ax.set_ylim(min(loss(grid).min(), 0) - 0.05 * np.ptp(loss(grid)), loss(grid).max())
    ax.set_xlabel(r"parameter $\theta$")
    ax.set_ylabel(r"loss $J(\theta)$")
    ax.legend(loc="upper center", fontsize=8, framealpha=0.9)
    heading = ax.set_title(" ")

    k = np.arange(steps + 1)
    floor = 1e-6  # errors below this (an exact hit is 0) are drawn on the bottom edge
    errors = {lr: np.maximum(np.abs(p - minimizer), floor) for lr, p in paths.items()}
    top = max(e.max() for e in errors.values())
    (err_line,) = ax_err.semilogy([], [], marker="o", markersize=4, color=COLORS[0],
                                  label=r"measured $|\theta_k-\theta^*|$")
    (pred_line,) = ax_err.semilogy([], [], color=COLORS[1], linestyle="--", linewidth=1.2,
                                   label=r"$|1-\eta\lambda|^k\,|\theta_0-\theta^*|$")
    ax_err.set_xlim(0, steps)
    ax_err.set_ylim(floor / 1.5, top * 3)
    ax_err.set_xlabel("step k")
    ax_err.set_ylabel("distance to the minimum")
    ax_err.legend(loc="lower left", fontsize=8, framealpha=0.9)
    if curvature is None:
        pred_line.set_visible(False)

    def update(lr: float) -> None:
        p = paths[lr]
        path_line.set_data(p, loss(p))
        dots.set_data(p[1:], loss(p[1:]))
        err_line.set_data(k, errors[lr])
        if curvature is not None:
            pred_line.set_data(k, np.maximum(abs(1 - lr * curvature) ** k * abs(start - minimizer), floor))
        heading.set_text(f"η = {lr:.4g}: {steps} steps of gradient descent")

    def alt(lr: float) -> str:
        p = paths[lr]
        trend = ("move away from the minimum" if abs(p[-1] - minimizer) > abs(start - minimizer)
                 else "approach the minimum")
        crosses = (p[1] - minimizer) * (start - minimizer) < 0
        side = "jumping from side to side" if crosses else "from one side"
        return (f"Gradient descent on a parabola with learning rate {lr:.4g}: the iterates {trend}, "
                f"{side}; after {steps} steps the distance to the minimum is "
                f"{abs(p[-1] - minimizer):.3g} (it started at {abs(start - minimizer):.3g}).")

    return SliderFigure(fig, update, {"lr": lrs}, alt=alt, labels={"lr": "learning rate η"},
                        initial={"lr": initial_lr if initial_lr is not None else lrs[0]},
                        animated=[path_line, dots, err_line, pred_line, heading])
