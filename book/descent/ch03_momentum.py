r"""Chapter 3 (book/03-momentum.md): figures and closed forms for momentum.

Three ways of writing heavy-ball momentum circulate; ``optimkit.SGD`` is torch's:

* torch, Distill, d2l (``optimkit.SGD``):
  :math:`b \leftarrow \mu b + g,\ \theta \leftarrow \theta - \eta b`;
* learning rate inside the velocity (:class:`descent.variants.LrInsideMomentum`):
  :math:`v \leftarrow \gamma v + \eta g,\ \theta \leftarrow \theta - v`;
* exponential moving average (:class:`descent.variants.EMAMomentum`):
  :math:`v \leftarrow \beta v + (1-\beta) g,\ \theta \leftarrow \theta - \eta v`.

On a quadratic with curvature :math:`\lambda` (error :math:`e = \theta - \theta^*`), torch's form
is linear in :math:`(b, e)`:

.. math::
    \begin{pmatrix} b_t \\ e_t \end{pmatrix} =
    \begin{pmatrix} \mu & \lambda \\ -\eta\mu & 1 - \eta\lambda \end{pmatrix}
    \begin{pmatrix} b_{t-1} \\ e_{t-1} \end{pmatrix}

(:func:`momentum_matrix`); its spectral radius is the convergence rate per step.
"""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from optimkit import SGD
from optimkit.landscapes import Landscape, Trajectory, run

from .ch02_sgd import path_on_contours
from .drawing import COLORS
from .sliders import SliderFigure


def momentum_matrix(lr: float, momentum: float, curvature: float, nesterov: bool = False) -> np.ndarray:
    r"""The 2x2 matrix that maps :math:`(b_{t-1}, e_{t-1})` to :math:`(b_t, e_t)` for
    ``optimkit.SGD(lr, momentum, nesterov)`` on :math:`\tfrac12\lambda e^2`.

    Heavy ball: :math:`b_t = \mu b_{t-1} + \lambda e_{t-1}`, :math:`e_t = e_{t-1} - \eta b_t`.
    Nesterov (torch's form): :math:`e_t = e_{t-1} - \eta(\lambda e_{t-1} + \mu b_t)`.
    """
    mu, lam, eta = float(momentum), float(curvature), float(lr)
    if nesterov:
        return np.array([[mu, lam], [-eta * mu * mu, 1 - eta * lam * (1 + mu)]])
    return np.array([[mu, lam], [-eta * mu, 1 - eta * lam]])


def convergence_rate(lr: float, momentum: float, curvatures: Sequence[float],
                     nesterov: bool = False) -> float:
    """The worst spectral radius of :func:`momentum_matrix` over ``curvatures``: the factor by which
    the error shrinks per step in the long run (above 1: divergence)."""
    return max(float(np.max(np.abs(np.linalg.eigvals(momentum_matrix(lr, momentum, lam, nesterov)))))
               for lam in curvatures)


def rate_grid(lrs: np.ndarray, betas: np.ndarray, curvatures: Sequence[float],
              nesterov: bool = False) -> np.ndarray:
    r""":func:`convergence_rate` on a grid, vectorised: ``out[i, j]`` for ``betas[i]``, ``lrs[j]``.

    The eigenvalues of :func:`momentum_matrix` solve :math:`z^2 - Tz + D = 0` with
    :math:`T = 1 + \beta - \eta\lambda,\ D = \beta` (heavy ball) or
    :math:`T = (1 + \beta)(1 - \eta\lambda),\ D = \beta(1 - \eta\lambda)` (Nesterov).
    """
    eta, beta = np.meshgrid(np.asarray(lrs, float), np.asarray(betas, float))
    worst = np.zeros_like(eta)
    for lam in curvatures:
        if nesterov:
            trace, det = (1 + beta) * (1 - eta * lam), beta * (1 - eta * lam)
        else:
            trace, det = 1 + beta - eta * lam, beta
        root = np.sqrt((trace * trace - 4 * det).astype(complex))
        worst = np.maximum(worst, np.maximum(np.abs((trace + root) / 2), np.abs((trace - root) / 2)))
    return worst


def lr_threshold(momentum: float, curvature: float, nesterov: bool = False) -> float:
    r"""The largest stable learning rate on curvature :math:`\lambda`: heavy ball converges for
    :math:`0 < \eta\lambda < 2 + 2\mu`, torch's Nesterov for
    :math:`0 < \eta\lambda < (2 + 2\mu)/(1 + 2\mu)`."""
    mu = float(momentum)
    return (2 + 2 * mu) / ((1 + 2 * mu) if nesterov else 1.0) / float(curvature)


def distill_optimum(lam_min: float, lam_max: float) -> dict:
    r"""Goh's (Distill, 2017) best heavy-ball settings on a quadratic with curvatures in
    :math:`[\lambda_{\min}, \lambda_{\max}]`, :math:`\kappa = \lambda_{\max}/\lambda_{\min}`:

    .. math:: \eta^* = \Bigl(\frac{2}{\sqrt{\lambda_{\min}} + \sqrt{\lambda_{\max}}}\Bigr)^2, \quad
              \beta^* = \Bigl(\frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}\Bigr)^2, \quad
              \text{rate} = \frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}.
    """
    kappa = lam_max / lam_min
    rate = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    return {"lr": (2 / (math.sqrt(lam_min) + math.sqrt(lam_max))) ** 2, "momentum": rate**2,
            "rate": rate}


def gd_optimum(lam_min: float, lam_max: float) -> dict:
    r"""Best constant step for plain gradient descent: :math:`\eta = 2/(\lambda_{\min}+\lambda_{\max})`,
    rate :math:`(\kappa-1)/(\kappa+1)`."""
    kappa = lam_max / lam_min
    return {"lr": 2 / (lam_min + lam_max), "momentum": 0.0, "rate": (kappa - 1) / (kappa + 1)}


def nesterov_lookahead_path(landscape: Landscape, lr: float, momentum: float, steps: int,
                            start=None) -> tuple[np.ndarray, np.ndarray]:
    r"""Sutskever et al.'s (2013) Nesterov momentum, gradient taken at the look-ahead point:

    .. math:: v_t = \mu v_{t-1} - \eta \nabla f(\theta_{t-1} + \mu v_{t-1}), \qquad
              \theta_t = \theta_{t-1} + v_t, \qquad v_0 = 0.

    Returns the iterates :math:`\theta_t` and the look-ahead points :math:`\theta_t + \mu v_t`.
    """
    theta = np.array(landscape.start if start is None else start, dtype=np.float64)
    v = np.zeros_like(theta)
    thetas, ahead = [theta.copy()], [theta.copy()]
    for _ in range(steps):
        v = momentum * v - lr * landscape.grad(theta + momentum * v)
        theta = theta + v
        thetas.append(theta.copy())
        ahead.append(theta + momentum * v)
    return np.array(thetas), np.array(ahead)


def momentum_explorer_figure(landscape: Landscape, lrs: Sequence[float], betas: Sequence[float], *,
                             steps: int = 60, initial: dict | None = None) -> SliderFigure:
    r"""Heavy-ball momentum (``optimkit.SGD(lr, momentum=β)``) on a quadratic, with sliders for
    :math:`\beta` and :math:`\eta`.

    Top: the path on the contours. Bottom left: the convergence rate over the
    :math:`(\eta, \beta)` plane (spectral radius of :func:`momentum_matrix`), the stability
    boundary :math:`\eta\lambda_{\max} = 2 + 2\beta`, Distill's optimum, and the current setting.
    Bottom right: the distance to the minimum per step and the predicted :math:`\text{rate}^k`.
    """
    lrs, betas = [float(v) for v in lrs], [float(v) for v in betas]
    minimum = np.array(landscape.minima[0], dtype=np.float64)
    curvatures = np.linalg.eigvalsh(landscape.hessian(minimum))
    lam_min, lam_max = float(curvatures[0]), float(curvatures[-1])
    runs = {(b, lr): run(landscape, lambda p, lr=lr, b=b: SGD(p, lr=lr, momentum=b), steps=steps)
            for b in betas for lr in lrs}
    rates = {key: convergence_rate(key[1], key[0], curvatures) for key in runs}
    best = distill_optimum(lam_min, lam_max)
    start = np.asarray(landscape.start, dtype=np.float64)
    d0 = float(np.linalg.norm(start - minimum))

    fig = plt.figure(figsize=(8.4, 6.2), layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[1.0, 1.05])
    ax = fig.add_subplot(grid[0, :])
    ax_map = fig.add_subplot(grid[1, 0])
    ax_err = fig.add_subplot(grid[1, 1])

    path, head, heading = path_on_contours(ax, landscape, COLORS[0], dot_size=2.2)

    eta_axis = np.linspace(0, max(lrs) * 1.08, 160)
    beta_axis = np.linspace(0, 0.995, 140)
    R = rate_grid(eta_axis, beta_axis, curvatures)
    levels = [0.0, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0]
    filled = ax_map.contourf(eta_axis, beta_axis, np.minimum(R, 1.0 - 1e-12), levels=levels,
                             cmap="viridis")
    ax_map.contourf(eta_axis, beta_axis, R, levels=[1.0, np.inf], colors=["0.82"], hatches=["//"])
    ax_map.plot((2 + 2 * beta_axis) / lam_max, beta_axis, color="black", linewidth=1.2)
    ax_map.text(0.97, 0.03, "diverges", transform=ax_map.transAxes, ha="right", va="bottom",
                fontsize=8, bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    ax_map.plot(best["lr"], best["momentum"], marker="*", markersize=12, color="gold",
                markeredgecolor="black", linestyle="none", zorder=5)
    fig.colorbar(filled, ax=ax_map, label="rate per step", shrink=0.9)
    (marker,) = ax_map.plot([], [], marker="o", markersize=8, color="white", markeredgecolor="red",
                            markeredgewidth=2, linestyle="none", zorder=6)
    ax_map.set_xlim(eta_axis[0], eta_axis[-1])
    ax_map.set_ylim(0, 1)
    ax_map.set_xlabel("learning rate η")
    ax_map.set_ylabel("momentum β")

    k = np.arange(steps + 1)
    (err_line,) = ax_err.semilogy([], [], color=COLORS[0], marker="o", markersize=2.5,
                                  label=r"measured $\|\theta_k-\theta^*\|$")
    (pred_line,) = ax_err.semilogy([], [], color=COLORS[1], linestyle="--", linewidth=1.2,
                                   label=r"rate$^k \cdot \|\theta_0-\theta^*\|$")
    ax_err.semilogy(k, best["rate"] ** k * d0, color="0.55", linestyle=":", linewidth=1.0,
                    label="best rate (Distill)")
    ax_err.set_xlim(0, steps)
    ax_err.set_ylim(1e-8, 1e4)
    ax_err.set_xlabel("step k")
    ax_err.set_ylabel("distance to the minimum")
    ax_err.legend(loc="lower left", fontsize=7, framealpha=0.9)

    def update(beta: float, lr: float) -> None:
        traj = runs[(beta, lr)]
        path.set_data(traj.points[:, 0], traj.points[:, 1])
        head.set_data([traj.points[-1, 0]], [traj.points[-1, 1]])
        marker.set_data([lr], [beta])
        dist = np.maximum(np.linalg.norm(traj.points - minimum, axis=1), 1e-300)
        err_line.set_data(np.arange(len(dist)), dist)
        pred_line.set_data(k, rates[(beta, lr)] ** k * d0)
        verdict = "diverges" if rates[(beta, lr)] > 1 else f"rate {rates[(beta, lr)]:.3f} per step"
        heading.set_text(f"β = {beta:.4g}, η = {lr:.4g}: ηλ_max = {lr * lam_max:.3g} "
                         f"vs 2 + 2β = {2 + 2 * beta:.3g}, {verdict}")

    def alt(beta: float, lr: float) -> str:
        r = rates[(beta, lr)]
        traj = runs[(beta, lr)]
        end = float(np.linalg.norm(traj.points[-1] - minimum))
        outcome = (f"the run diverges (stopped after {traj.steps_taken} steps)" if traj.diverged
                   else f"after {traj.steps_taken} steps the distance to the minimum is {end:.2g}")
        return (f"Heavy-ball momentum on {landscape.name} with beta {beta:.4g} and learning rate "
                f"{lr:.4g}: predicted rate {r:.3f} per step ({'unstable' if r > 1 else 'stable'}; "
                f"the stability boundary is learning rate times {lam_max:g} equal to 2 + 2 beta); "
                f"{outcome}. The map marks this setting and Distill's optimum "
                f"(learning rate {best['lr']:.3f}, beta {best['momentum']:.3f}, rate {best['rate']:.3f}).")

    first = initial or {}
    return SliderFigure(fig, update, {"beta": betas, "lr": lrs}, alt=alt,
                        labels={"beta": "momentum β", "lr": "learning rate η"},
                        initial={"beta": first.get("beta", betas[0]), "lr": first.get("lr", lrs[0])},
                        animated=[path, head, heading, marker, err_line, pred_line])


def step_length_figure(runs: dict[str, Trajectory], drop_at: int | None = None):
    """Length of every step :math:`\\lVert\\theta_t - \\theta_{t-1}\\rVert` (log scale) for several
    runs, with the step where the learning rate changes marked."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4), layout="constrained")
    styles = ["-", "--", ":", "-."]
    for i, (label, traj) in enumerate(runs.items()):
        lengths = np.linalg.norm(np.diff(traj.points, axis=0), axis=1)
        ax.semilogy(np.arange(1, len(lengths) + 1), lengths, color=COLORS[i % len(COLORS)],
                    linestyle=styles[i % len(styles)], linewidth=1.6, label=label)
    if drop_at is not None:
        ax.axvline(drop_at + 0.5, color="0.5", linewidth=0.8)
        ax.text(drop_at + 1, ax.get_ylim()[1], " lr ÷ 10", va="top", fontsize=8, color="0.3")
    ax.set_xlabel("step t")
    ax.set_ylabel(r"step length $\|\theta_t-\theta_{t-1}\|$")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return fig
