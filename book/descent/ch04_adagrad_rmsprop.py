"""Chapter 4 (book/04-adagrad-rmsprop.md): measuring what AdaGrad and RMSProp do.

* :func:`effective_lr` reads the per-coordinate step size out of an optimizer's state,
  :func:`feed` pushes a prescribed gradient stream through an optimizer and records what it did,
  :func:`run_tracked` does the same along a trajectory on a landscape (chapters 5 and 6 use
  them too);
* :func:`scaled`, :func:`step_per_lr` and the chapter's figures.

The textbook forms it compares with (eps inside the root) are in :mod:`descent.variants`. Every
number the figures draw is computed, never typed.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import matplotlib.pyplot as plt
import numpy as np

from optimkit import rules, validate
from optimkit.landscapes import Landscape, run
from optimkit.optim import Adagrad, Adam, RMSprop

from .drawing import COLORS, draw_contours
from .sliders import SliderFigure


def effective_lr(opt) -> np.ndarray:
    r"""The per-coordinate factor that multiplied the gradient in ``opt``'s last step, for an
    optimizer over one array: :math:`\eta/(\sqrt{s_t}+\epsilon)` for AdaGrad,
    :math:`\eta/(\sqrt{v_t}+\epsilon)` for RMSProp, and for Adam the factor multiplying
    :math:`m_t`, :math:`\frac{\eta}{1-\beta_1^t} / (\sqrt{v_t}/\sqrt{1-\beta_2^t}+\epsilon)`
    (with :math:`\max_{s\le t} v_s` under AMSGrad)."""
    if hasattr(opt, "effective_lr"):
        return opt.effective_lr()
    if not isinstance(opt, (Adagrad, RMSprop, Adam)):
        raise TypeError(f"effective_lr does not know {type(opt).__name__}")
    group, state = opt.param_groups[0], opt.state[0]
    if not state:
        raise ValueError("the optimizer has not taken a step yet")
    t, lr, eps = state["step"], group["lr"], group["eps"]
    if isinstance(opt, Adagrad):
        return lr / (1 + (t - 1) * group["lr_decay"]) / (np.sqrt(state["sum"]) + eps)
    if isinstance(opt, RMSprop):
        v = state["square_avg"]
        if group["centered"]:
            v = v - state["grad_avg"] ** 2
        return lr / (np.sqrt(v) + eps)
    beta1, beta2 = group["betas"]  # Adam (AdamW included)
    v = state["max_exp_avg_sq"] if group["amsgrad"] else state["exp_avg_sq"]
    c1, c2 = rules.bias_correction(beta1, t), rules.bias_correction(beta2, t)
    return lr / c1 / (np.sqrt(v) / math.sqrt(c2) + eps)


class Fed(NamedTuple):
    """What :func:`feed` recorded, one row per step: the update ``steps[k] = θ_{k+1} - θ_k`` and
    the optimizer's :func:`effective_lr` after that step (NaN where it has none)."""

    steps: np.ndarray
    effective_lr: np.ndarray


def feed(make_optimizer: Callable, grads, start=None) -> Fed:
    """Push the gradient stream ``grads`` (shape (T, d), or (T,) for one coordinate) through
    ``make_optimizer([θ])`` from ``start`` (default zeros) and record every update."""
    grads = np.asarray(grads, dtype=np.float64)
    if grads.ndim == 1:
        grads = grads[:, None]
    if grads.ndim != 2 or len(grads) == 0:
        raise ValueError(f"grads must have shape (T, d) with T >= 1, got {grads.shape}")
    theta = np.zeros(grads.shape[1]) if start is None else np.array(start, dtype=np.float64)
    opt = make_optimizer([theta])
    steps = np.empty_like(grads)
    eff = np.full_like(grads, np.nan)
    for k, g in enumerate(grads):
        before = theta.copy()
        opt.step([g.copy()])
        steps[k] = theta - before
        try:
            eff[k] = effective_lr(opt)
        except TypeError:
            pass
    return Fed(steps=steps, effective_lr=eff)


def run_tracked(landscape, make_optimizer: Callable, steps: int = 100, **run_kwargs):
    """:func:`optimkit.landscapes.run`, also recording :func:`effective_lr` after every step.

    Returns ``(trajectory, eff)`` with ``eff`` of shape (steps_taken, 2)."""
    record = []

    def make(params):
        opt = make_optimizer(params)
        plain_step = opt.step

        def step(grads):
            plain_step(grads)
            record.append(np.array(effective_lr(opt), dtype=np.float64))

        opt.step = step
        return opt

    trajectory = run(landscape, make, steps=steps, **run_kwargs)
    return trajectory, np.array(record)


def scaled(landscape: Landscape, c: float) -> Landscape:
    """The landscape :math:`c\\,f`: same minima and contours, every gradient multiplied by ``c``."""
    c = validate.positive("c", c)
    grad = landscape.grad_xy
    hess = landscape.hessian_xy
    return Landscape(
        name=f"{c:g} × {landscape.name}",
        f=lambda x, y: c * landscape.f(x, y),
        grad_xy=lambda x, y: tuple(c * np.asarray(gi) for gi in grad(x, y)),
        hessian_xy=lambda x, y: tuple(tuple(c * hij for hij in row) for row in hess(x, y)),
        minima=landscape.minima, bounds=landscape.bounds, start=landscape.start,
        log_contours=landscape.log_contours, latex=rf"{c:g}\,\bigl({landscape.latex}\bigr)",
    )


def step_per_lr(g, eps, where: str = "outside"):
    r"""Step length per unit learning rate, :math:`|g|/(|g| + \epsilon)` (``"outside"``) or
    :math:`|g|/\sqrt{g^2 + \epsilon}` (``"inside"``), for a second moment that has settled at
    :math:`v = g^2`."""
    g = np.abs(np.asarray(g, dtype=np.float64))
    if where == "outside":
        return g / (g + eps)
    if where == "inside":
        return g / np.sqrt(g * g + eps)
    raise ValueError(f"where must be 'outside' or 'inside', got {where!r}")


def effective_lr_figure(tracks: dict, *, coords=("x", "y"), title: str = ""):
    """Static: the effective learning rate of each coordinate over the steps, one panel per
    coordinate, one line per ``{label: eff}`` (``eff`` of shape (T, len(coords)))."""
    fig, axes = plt.subplots(1, len(coords), figsize=(9.0, 3.4), sharey=True, layout="constrained")
    axes = np.atleast_1d(axes)
    for i, (ax, name) in enumerate(zip(axes, coords)):
        for color, (label, eff) in zip(COLORS, tracks.items()):
            ax.loglog(np.arange(1, len(eff) + 1), eff[:, i], color=color, lw=1.8, label=label)
        ax.set_xlabel("step t")
        ax.set_title(f"coordinate {name}")
        ax.grid(True, which="major", alpha=0.3)
    axes[0].set_ylabel("effective learning rate")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def path_and_loss_figure(landscape: Landscape, runs: dict, steps: int, color: str):
    """An explorer of runs on ``landscape``: the path on the contours (left) and the loss per
    step on a log scale (right), both empty for a slider to fill in.

    Returns ``(fig, (path, head, loss_line, title, loss_title), floor)``, ``floor`` being the
    lowest finite loss of all ``runs``.
    """
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(10.0, 4.2), layout="constrained",
                                      gridspec_kw={"width_ratios": [1.25, 1]})
    draw_contours(ax, landscape)
    ax.plot(*landscape.start, marker="o", ms=8, color="white", mec="black", ls="none", zorder=6)
    (path,) = ax.plot([], [], color=color, lw=1.2, zorder=4)
    (head,) = ax.plot([], [], marker="o", ms=7, color=color, mec="black", ls="none", zorder=7)
    finite = [t.losses[np.isfinite(t.losses)] for t in runs.values()]
    floor = min(float(f.min()) for f in finite)
    ax_loss.set_yscale("log")
    ax_loss.set_xlim(0, steps)
    ax_loss.set_ylim(max(floor, 1e-12) / 2, max(float(f.max()) for f in finite) * 2)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss f(x, y)")
    ax_loss.grid(True, alpha=0.3)
    (loss_line,) = ax_loss.plot([], [], color=color, lw=1.4)
    return fig, (path, head, loss_line, ax.set_title(""), ax_loss.set_title("")), floor


def show_run(artists, trajectory, loss_floor: float) -> None:
    """Draw ``trajectory`` into :func:`path_and_loss_figure`'s artists (losses clipped below at
    ``loss_floor``, which a log axis needs); the titles are the caller's."""
    path, head, loss_line = artists[:3]
    path.set_data(trajectory.points[:, 0], trajectory.points[:, 1])
    head.set_data([trajectory.points[-1, 0]], [trajectory.points[-1, 1]])
    loss_line.set_data(np.arange(len(trajectory.losses)), np.maximum(trajectory.losses, loss_floor))


def rmsprop_figure(landscape: Landscape, lrs: Sequence[float], alphas: Sequence[float], *,
                   steps: int = 400) -> SliderFigure:
    """RMSProp on ``landscape`` for every (lr, alpha): the path on the contours and the loss
    per step, with a slider for each."""
    runs = {(lr, a): run(landscape, lambda p, lr=lr, a=a: RMSprop(p, lr=lr, alpha=a), steps=steps)
            for lr in lrs for a in alphas}
    fig, artists, floor = path_and_loss_figure(landscape, runs, steps, COLORS[1])
    heading, readout = artists[3:]

    def update(lr, alpha):
        t = runs[(lr, alpha)]
        show_run(artists, t, floor / 2)
        heading.set_text(f"RMSProp, lr = {lr:g}, α = {alpha:g}")
        tail = np.linalg.norm(np.diff(t.points[-51:], axis=0), axis=1).mean()
        readout.set_text(f"final loss {t.losses[-1]:.3g}; mean step over last 50: {tail:.3g}")

    def alt(lr, alpha):
        t = runs[(lr, alpha)]
        return (f"RMSProp with learning rate {lr:g} and alpha {alpha:g} on the {landscape.name} "
                f"function: after {steps} steps it is at ({t.points[-1, 0]:.2f}, "
                f"{t.points[-1, 1]:.2f}) with loss {t.losses[-1]:.3g}; the right panel shows the "
                f"loss per step on a log scale.")

    return SliderFigure(fig, update, {"lr": list(lrs), "alpha": list(alphas)}, alt=alt,
                        labels={"lr": "learning rate η", "alpha": "α (decay of v)"},
                        initial={"lr": lrs[len(lrs) // 2], "alpha": alphas[len(alphas) // 2]},
                        animated=list(artists))


def eps_figure(eps_values: Sequence[float], *, g_min: float = 1e-10, g_max: float = 1.0,
               points: int = 241) -> SliderFigure:
    r"""Step length per unit lr against the gradient size, eps outside the root
    (:math:`|g|/(|g|+\epsilon)`) and inside (:math:`|g|/\sqrt{g^2+\epsilon}`), with an eps slider."""
    g = np.geomspace(g_min, g_max, points)
    fig, ax = plt.subplots(figsize=(7.2, 4.0), layout="constrained")
    ax.set_xscale("log")
    ax.set_xlim(g_min, g_max)
    ax.set_ylim(-0.03, 1.08)
    ax.set_xlabel("gradient size |g| (with v settled at g²)")
    ax.set_ylabel("step length / learning rate")
    ax.grid(True, alpha=0.3)
    (outside,) = ax.plot([], [], color=COLORS[0], lw=2.0, label=r"torch: $g/(\sqrt{v}+\epsilon)$")
    (inside,) = ax.plot([], [], color=COLORS[1], lw=2.0, ls="--",
                        label=r"d2l / optax: $g/\sqrt{v+\epsilon}$")
    mark_out = ax.axvline(1.0, color=COLORS[0], lw=0.8, ls=":")
    mark_in = ax.axvline(1.0, color=COLORS[1], lw=0.8, ls=":")
    ax.legend(loc="upper left", fontsize=9)
    heading = ax.set_title("")

    def update(eps):
        outside.set_data(g, step_per_lr(g, eps, "outside"))
        inside.set_data(g, step_per_lr(g, eps, "inside"))
        mark_out.set_xdata([eps, eps])
        mark_in.set_xdata([math.sqrt(eps)] * 2)
        heading.set_text(f"ε = {eps:g}: half step at |g| = ε = {eps:.0e} (outside) "
                         f"vs |g| ≈ √ε = {math.sqrt(eps):.1e} (inside)")

    def alt(eps):
        return (f"Step length per unit learning rate against gradient size on a log axis for "
                f"epsilon {eps:g}: with epsilon outside the root the step stays near 1 until the "
                f"gradient falls to about {eps:.0e}; with epsilon inside it already falls off "
                f"near {math.sqrt(eps):.1e}.")

    return SliderFigure(fig, update, {"eps": list(eps_values)}, alt=alt,
                        labels={"eps": "ε"}, initial={"eps": eps_values[len(eps_values) // 2]},
                        animated=[outside, inside, mark_out, mark_in, heading])
