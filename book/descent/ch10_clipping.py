"""Chapter 10 (book/10-clipping.md): gradient clipping, figures and helpers.

* :class:`Clipped` -- wraps any optimkit optimizer so every step clips its gradients first
  (with :func:`optimkit.clip_grad_norm` or :func:`optimkit.clip_grad_value`) and records the
  norms; it drops into :func:`optimkit.landscapes.run` and :func:`optimkit.digits.train`.
* :func:`cliff_runs`, :func:`cliff_figure` -- SGD and Adam on :func:`optimkit.landscapes.cliff`,
  the slider figure over ``max_norm``.

optax's rule and the global norm are optimkit's (:mod:`optimkit.clipping`).
"""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from optimkit.clipping import clip_grad_norm, clip_grad_value, global_norm
from optimkit.landscapes import Landscape, run
from optimkit.optim import Adam, SGD, Wrapper

from .drawing import COLORS, draw_contours
from .sliders import SliderFigure


class Clipped(Wrapper):
    """An optimizer whose every step clips a copy of the gradients first.

    ``max_norm`` uses :func:`optimkit.clip_grad_norm` (torch's ``clip_grad_norm_``),
    ``clip_value`` uses :func:`optimkit.clip_grad_value`; with neither (or ``max_norm=math.inf``)
    the gradients pass unchanged. ``norms`` records the global norm of each step's gradients
    *before* clipping.
    """

    def __init__(self, optimizer, max_norm: float | None = None, clip_value: float | None = None):
        if max_norm is not None and clip_value is not None:
            raise ValueError("give max_norm or clip_value, not both")
        super().__init__(optimizer)
        self.max_norm = max_norm
        self.clip_value = clip_value
        self.norms: list[float] = []


    def step(self, grads) -> None:
        grads = [np.array(g, dtype=np.float64, copy=True) for g in grads]  # clipping works in place
        if self.max_norm is not None and not math.isinf(self.max_norm):
            self.norms.append(clip_grad_norm(grads, self.max_norm))
        else:
            self.norms.append(global_norm(grads))
            if self.clip_value is not None:
                clip_grad_value(grads, self.clip_value)
        self.optimizer.step(grads)


def angle_deg(a, b) -> float:
    """The angle between two gradients (arrays, or lists of arrays), in degrees."""
    a = np.concatenate([np.ravel(x) for x in (a if isinstance(a, (list, tuple)) else [a])])
    b = np.concatenate([np.ravel(x) for x in (b if isinstance(b, (list, tuple)) else [b])])
    u, v = a / np.linalg.norm(a), b / np.linalg.norm(b)
    # 2 atan2(|u - v|, |u + v|) stays accurate for tiny angles, where acos(u . v) does not
    return math.degrees(2.0 * math.atan2(float(np.linalg.norm(u - v)), float(np.linalg.norm(u + v))))


def clip_vectors_figure(g, c: float):
    """A 2-D gradient ``g`` with the box of value clipping at ``c``, the circle of norm clipping
    at ``c``, and the two clipped vectors."""
    g = np.asarray(g, dtype=np.float64)
    by_value = [g.copy()]
    clip_grad_value(by_value, c)
    by_norm = [g.copy()]
    clip_grad_norm(by_norm, c)
    fig, ax = plt.subplots(figsize=(5.2, 4.0), layout="constrained")
    ax.add_patch(plt.Rectangle((-c, -c), 2 * c, 2 * c, fill=False, ls="--", color=COLORS[1], lw=1.2))
    ax.add_patch(plt.Circle((0, 0), c, fill=False, ls="--", color=COLORS[2], lw=1.2))
    def pair(v):
        return f"({v[0]:.2f}, {v[1]:.2f})"

    for vec, color, label in ((g, "0.2", f"raw gradient {pair(g)}"),
                              (by_value[0], COLORS[1], f"clipped by value: {pair(by_value[0])}, "
                                                      f"{angle_deg(g, by_value[0]):.1f}° off"),
                              (by_norm[0], COLORS[2], f"clipped by norm: {pair(by_norm[0])}, "
                                                     f"{angle_deg(g, by_norm[0]):.1f}° off")):
        ax.annotate("", xy=vec, xytext=(0, 0),
                    arrowprops=dict(arrowstyle="-|>", color=color, lw=2.0, mutation_scale=14))
        ax.plot([], [], color=color, lw=2.0, label=label)
    span = max(abs(g).max(), c) * 1.15
    ax.set_xlim(-c * 1.3, span)
    ax.set_ylim(-c * 1.3, max(span * 0.75, c * 1.3))
    ax.set_aspect("equal")
    ax.axhline(0, color="0.8", lw=0.6)
    ax.axvline(0, color="0.8", lw=0.6)
    ax.legend(fontsize=7.5, loc="upper left")
    ax.set_title(f"clipping at c = {c:g}: the box (value) and the circle (norm)", fontsize=9)
    return fig


def cliff_runs(landscape: Landscape, max_norms: Sequence[float], *, steps: int = 60,
               sgd_lr: float = 0.3, adam_lr: float = 0.3) -> dict:
    """``{(optimizer, max_norm): Trajectory}`` for plain SGD and Adam, each wrapped in
    :class:`Clipped` (``math.inf`` means no clipping: the factor is then always 1)."""
    out = {}
    for c in max_norms:
        out["SGD", c] = run(landscape, lambda p: Clipped(SGD(p, lr=sgd_lr), max_norm=c), steps=steps)
        out["Adam", c] = run(landscape, lambda p: Clipped(Adam(p, lr=adam_lr), max_norm=c), steps=steps)
    return out


def _fmt_norm(c: float) -> str:
    return "off" if math.isinf(c) else f"{c:g}"


def cliff_figure(landscape: Landscape, runs: dict, max_norms: Sequence[float],
                 step_values: Sequence[int]) -> SliderFigure:
    """Paths of SGD and Adam on the cliff (left) and their losses (right), with sliders over
    ``max_norm`` and the step. ``runs`` comes from :func:`cliff_runs`."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(9.2, 3.9), layout="constrained",
                                  gridspec_kw={"width_ratios": [1.25, 1]})
    draw_contours(ax, landscape)
    ax.plot(*landscape.start, marker="o", markersize=8, color="white", markeredgecolor="black",
            linestyle="none", zorder=6, label="start")
    artists = {}
    for color, name in zip(COLORS, ("SGD", "Adam")):
        (path,) = ax.plot([], [], color=color, lw=1.5, marker=".", ms=4, zorder=4, label=name)
        (head,) = ax.plot([], [], marker="o", ms=7, color=color, markeredgecolor="black",
                          linestyle="none", zorder=7)
        (loss,) = ax2.plot([], [], color=color, lw=1.5, label=name)
        artists[name] = (path, head, loss)
    ax.legend(loc="lower left", fontsize=8, framealpha=0.9)
    all_losses = np.concatenate([t.losses for t in runs.values()])
    ax2.set_yscale("log")
    ax2.set_xlim(0, max(len(t.losses) for t in runs.values()) - 1)
    ax2.set_ylim(all_losses.min() * 0.8, all_losses.max() * 1.5)
    ax2.axhline(landscape(landscape.minima[0]), color="0.4", lw=0.8, ls=":", label="minimum")
    ax2.set_xlabel("step")
    ax2.set_ylabel("loss")
    ax2.legend(fontsize=8, loc="upper right")
    heading = fig.suptitle("placeholder", fontsize=10)

    def longest_step(traj, upto):
        pts = traj.points[: upto + 1]
        return float(np.max(np.linalg.norm(np.diff(pts, axis=0), axis=1))) if len(pts) > 1 else 0.0

    def update(max_norm: float, step: int) -> None:
        for name, (path, head, loss) in artists.items():
            traj = runs[name, max_norm]
            k = min(step, len(traj.points) - 1)
            path.set_data(traj.points[: k + 1, 0], traj.points[: k + 1, 1])
            head.set_data([traj.points[k, 0]], [traj.points[k, 1]])
            loss.set_data(np.arange(k + 1), traj.losses[: k + 1])
        heading.set_text(f"max_norm {_fmt_norm(max_norm)}, step {step}: longest single step so far "
                         f"SGD {longest_step(runs['SGD', max_norm], step):.2f}, "
                         f"Adam {longest_step(runs['Adam', max_norm], step):.2f}")

    def alt(max_norm: float, step: int) -> str:
        parts = []
        for name in ("SGD", "Adam"):
            traj = runs[name, max_norm]
            k = min(step, len(traj.points) - 1)
            parts.append(f"{name} at ({traj.points[k, 0]:.2f}, {traj.points[k, 1]:.2f}), loss "
                         f"{traj.losses[k]:.3g}, longest step {longest_step(traj, k):.2f}")
        clipping = "off" if math.isinf(max_norm) else f"at max_norm {max_norm:g}"
        return (f"Contour plot of a valley ending in a steep wall, with SGD and Adam paths after "
                f"{step} steps, gradient clipping {clipping}: " + "; ".join(parts) + ".")

    animated = [a for trio in artists.values() for a in trio] + [heading]
    # No replay button: its Play widget would reset the step slider to 0 on load, and the full
    # paths are the first thing to see.
    return SliderFigure(fig, update, {"max_norm": list(max_norms), "step": list(step_values)},
                        alt=alt, labels={"max_norm": "max_norm", "step": "step"},
                        initial={"max_norm": max_norms[0], "step": step_values[-1]},
                        animated=animated)


def norm_histogram_figure(norms: np.ndarray, thresholds: Sequence[float]):
    """Histogram (log x) of per-step gradient norms with candidate ``max_norm`` values marked."""
    norms = np.asarray(norms, dtype=np.float64)
    fig, ax = plt.subplots(figsize=(7.0, 3.0), layout="constrained")
    bins = np.geomspace(norms.min() * 0.9, norms.max() * 1.1, 40)
    ax.hist(norms, bins=bins, color=COLORS[0], alpha=0.8)
    ax.set_xscale("log")
    for color, c in zip(COLORS[1:], thresholds):
        ax.axvline(c, color=color, lw=1.4, ls="--",
                   label=f"max_norm {c:.3g}: clips {np.mean(norms > c):.0%} of steps")
    ax.set_xlabel("global gradient norm before clipping")
    ax.set_ylabel("steps")
    ax.legend(fontsize=8)
    return fig


def deep_tanh_gradients(depth: int = 30, width: int = 64, gain: float = 1.0, residual: bool = False,
                        batch: int = 128, seed: int = 0) -> np.ndarray:
    r"""Norm of the loss gradient with respect to each layer's weights, at initialisation.

    A stack of ``depth`` tanh layers of ``width`` units, weights drawn from
    :math:`\mathcal N(0, \text{gain}^2/\text{width})`, on ``batch`` standard-normal inputs; plain
    (:math:`h_\ell = \tanh(h_{\ell-1}W_\ell)`) or residual
    (:math:`h_\ell = h_{\ell-1} + \tanh(h_{\ell-1}W_\ell)/\sqrt{\text{depth}}`). The loss is the
    mean squared distance of :math:`h_L` to random targets. Backpropagation by hand:
    :math:`\delta_\ell = \partial L/\partial z_\ell`, :math:`\partial L/\partial W_\ell = h_{\ell-1}^\top\delta_\ell`.
    Returns an array of shape (2, depth): row 0 is the backpropagated signal
    :math:`\lVert\partial L/\partial h_{\ell-1}\rVert` arriving at layer ℓ's input, row 1 the weight
    gradient :math:`\lVert\partial L/\partial W_\ell\rVert_F`, for ℓ = 1..depth (Frobenius norms).
    """
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((width, width)) * gain / math.sqrt(width) for _ in range(depth)]
    x = rng.standard_normal((batch, width))
    target = rng.standard_normal((batch, width))
    scale = 1 / math.sqrt(depth) if residual else 1.0
    hs, acts = [x], []
    for w in ws:
        a = np.tanh(hs[-1] @ w)
        acts.append(a)
        hs.append(hs[-1] + scale * a if residual else a)
    grad_h = (hs[-1] - target) / batch               # d/dh of 0.5 * mean over the batch of |h - y|^2
    norms = np.empty((2, depth))
    for layer in range(depth - 1, -1, -1):
        a, w = acts[layer], ws[layer]
        delta = grad_h * (scale if residual else 1.0) * (1 - a * a)   # through tanh
        norms[1, layer] = np.linalg.norm(hs[layer].T @ delta)
        grad_h = (grad_h if residual else 0.0) + delta @ w.T
        norms[0, layer] = np.linalg.norm(grad_h)
    return norms


def deep_tanh_loss(ws_flat_layer: int, depth: int = 4, width: int = 5, gain: float = 1.0,
                   residual: bool = False, batch: int = 7, seed: int = 0, delta=None) -> float:
    """The loss of :func:`deep_tanh_gradients`'s network with layer ``ws_flat_layer``'s weights
    shifted by ``delta`` (a (width, width) array): the finite-difference check of its gradients."""
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((width, width)) * gain / math.sqrt(width) for _ in range(depth)]
    x = rng.standard_normal((batch, width))
    target = rng.standard_normal((batch, width))
    if delta is not None:
        ws[ws_flat_layer] = ws[ws_flat_layer] + delta
    scale = 1 / math.sqrt(depth) if residual else 1.0
    h = x
    for w in ws:
        a = np.tanh(h @ w)
        h = h + scale * a if residual else a
    return 0.5 * float(np.sum((h - target) ** 2)) / batch


def vanishing_figure(curves: dict) -> plt.Figure:
    """The backpropagated signal per layer (log scale) for each configuration in ``curves``."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for (label, norms), color in zip(curves.items(), COLORS):
        ax.semilogy(np.arange(1, len(norms) + 1), norms, marker="o", markersize=3, color=color, label=label)
    ax.set_xlabel("layer (1 = next to the input)")
    ax.set_ylabel("‖∂L/∂h‖ reaching the layer")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig
