r"""Measurements and figures for chapters 4 (AdaGrad, RMSProp) and 5 (Adam).

Two kinds of helpers live here:

* **measuring** -- :func:`effective_lr` reads the per-coordinate step size out of an optimizer's
  state, :func:`feed` pushes a prescribed gradient stream through an optimizer and records what it
  did, :func:`run_tracked` does the same along a trajectory on a landscape;
* **comparison variants** -- :class:`RMSpropEpsInside` and :class:`AdamVariant` implement the
  forms other texts print (eps inside the root, no bias correction, Kingma's "efficient" step).
  They are *not* part of optimkit's torch-checked API; they exist so the chapters can show with
  numbers what each textbook choice changes.

The figures return :class:`~optimkit.interactive.SliderFigure` objects (or plain matplotlib figures
for :func:`~optimkit.interactive.show_figure`); every number they draw is computed, never typed.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .. import rules, validate
from ..interactive import SliderFigure
from ..landscapes import Landscape, run
from ..optim import Adagrad, Adam, Optimizer, RMSprop
from .landscape import COLORS, draw_contours

__all__ = [
    "AdamVariant", "Fed", "RMSpropEpsInside", "ablation_figure", "betas_figure",
    "bias_correction_figure", "effective_lr", "effective_lr_figure", "eps_figure", "feed",
    "step_size_figure", "rmsprop_figure", "run_tracked", "scaled", "step_per_lr",
]


# ---------------------------------------------------------------------------
# comparison variants
# ---------------------------------------------------------------------------

class RMSpropEpsInside(Optimizer):
    r"""RMSProp with :math:`\epsilon` *inside* the square root, as d2l and optax write it:

    .. math:: v_t = \alpha v_{t-1} + (1-\alpha) g_t^2, \qquad
              \theta_t = \theta_{t-1} - \eta\, g_t / \sqrt{v_t + \epsilon}

    (torch, and :class:`optimkit.RMSprop`, use :math:`\sqrt{v_t} + \epsilon`).
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))

    def _check(self, group):
        validate.non_negative("lr", group["lr"])
        validate.in_unit_interval("alpha", group["alpha"])
        validate.positive("eps", group["eps"])

    def _init_state(self, p, group):
        return {"step": 0, "square_avg": np.zeros_like(p)}

    def _update(self, p, g, state, group):
        v = state["square_avg"]
        v *= group["alpha"]
        v += (1 - group["alpha"]) * g * g
        p -= group["lr"] * g / np.sqrt(v + group["eps"])

    def effective_lr(self) -> np.ndarray:
        group = self.param_groups[0]
        if not self.state[0]:
            raise ValueError("the optimizer has not taken a step yet")
        return group["lr"] / np.sqrt(self.state[0]["square_avg"] + group["eps"])


class AdamVariant(Optimizer):
    r"""Adam with the switches the chapters ablate.

    ``bias_correction``: ``"both"`` (torch), ``"none"`` (CS231n's simplified Adam) or ``"m"``
    (first moment only). ``eps_form``: ``"torch"`` adds :math:`\epsilon` to the bias-corrected
    root, :math:`\frac{\eta}{c_1}\, m_t / (\sqrt{v_t}/\sqrt{c_2} + \epsilon)`; ``"kingma"`` is the
    paper's "efficient" form :math:`\eta\,\frac{\sqrt{c_2}}{c_1}\, m_t / (\sqrt{v_t} + \epsilon)`.
    Here :math:`c_1 = 1-\beta_1^t` and :math:`c_2 = 1-\beta_2^t` when corrected, 1 otherwise.
    With the defaults it computes exactly what :class:`optimkit.Adam` computes.
    """

    CORRECTIONS = ("both", "none", "m")
    EPS_FORMS = ("torch", "kingma")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, *,
                 bias_correction="both", eps_form="torch"):
        super().__init__(params, dict(lr=lr, betas=rules.check_betas(betas), eps=eps,
                                      bias_correction=bias_correction, eps_form=eps_form))

    def _check(self, group):
        rules.check_adam(group["lr"], group["betas"], group["eps"], 0.0)
        if group["bias_correction"] not in self.CORRECTIONS:
            raise ValueError(f"bias_correction must be one of {self.CORRECTIONS}, "
                             f"got {group['bias_correction']!r}")
        if group["eps_form"] not in self.EPS_FORMS:
            raise ValueError(f"eps_form must be one of {self.EPS_FORMS}, got {group['eps_form']!r}")

    def _init_state(self, p, group):
        return {"step": 0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}

    def _corrections(self, t, group):
        beta1, beta2 = group["betas"]
        which = group["bias_correction"]
        c1 = 1 - beta1 ** t if which in ("both", "m") else 1.0
        c2 = 1 - beta2 ** t if which == "both" else 1.0
        return c1, c2

    def _update(self, p, g, state, group):
        beta1, beta2 = group["betas"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * g
        v *= beta2
        v += (1 - beta2) * g * g
        c1, c2 = self._corrections(state["step"], group)
        lr, eps = group["lr"], group["eps"]
        if group["eps_form"] == "torch":  # the same operations, in the same order, as _adam_kernel
            denom = np.sqrt(v) / math.sqrt(c2) + eps
            p -= (lr / c1) * m / denom
        else:
            p -= (lr * math.sqrt(c2) / c1) * m / (np.sqrt(v) + eps)


# ---------------------------------------------------------------------------
# measuring
# ---------------------------------------------------------------------------

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
    return lr / (1 - beta1 ** t) / (np.sqrt(v) / math.sqrt(1 - beta2 ** t) + eps)


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


# ---------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------

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


def rmsprop_figure(landscape: Landscape, lrs: Sequence[float], alphas: Sequence[float], *,
                   steps: int = 400) -> SliderFigure:
    """RMSProp on ``landscape`` for every (lr, alpha): the path on the contours and the loss
    per step, with a slider for each."""
    runs = {(lr, a): run(landscape, lambda p, lr=lr, a=a: RMSprop(p, lr=lr, alpha=a), steps=steps)
            for lr in lrs for a in alphas}
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(10.0, 4.2), layout="constrained",
                                      gridspec_kw={"width_ratios": [1.25, 1]})
    draw_contours(ax, landscape)
    start = landscape.start
    ax.plot(*start, marker="o", ms=8, color="white", mec="black", ls="none", zorder=6)
    (path,) = ax.plot([], [], color=COLORS[1], lw=1.2, zorder=4)
    (head,) = ax.plot([], [], marker="o", ms=7, color=COLORS[1], mec="black", ls="none", zorder=7)
    floor = min(float(np.min(t.losses[np.isfinite(t.losses)])) for t in runs.values())
    top = max(float(np.max(t.losses[np.isfinite(t.losses)])) for t in runs.values())
    ax_loss.set_yscale("log")
    ax_loss.set_xlim(0, steps)
    ax_loss.set_ylim(max(floor, 1e-12) / 2, top * 2)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss f(x, y)")
    ax_loss.grid(True, alpha=0.3)
    (loss_line,) = ax_loss.plot([], [], color=COLORS[1], lw=1.4)
    heading = ax.set_title("")
    readout = ax_loss.set_title("")

    def update(lr, alpha):
        t = runs[(lr, alpha)]
        path.set_data(t.points[:, 0], t.points[:, 1])
        head.set_data([t.points[-1, 0]], [t.points[-1, 1]])
        loss_line.set_data(np.arange(len(t.losses)), np.maximum(t.losses, floor / 2))
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
                        animated=[path, head, loss_line, heading, readout])


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


def bias_correction_figure(beta2s: Sequence[float], *, beta1: float = 0.9, steps: int = 3000,
                           lr: float = 1.0) -> SliderFigure:
    """Measured step / lr of :class:`AdamVariant` under a constant gradient, with and without bias
    correction, for every beta2 (slider). The steps are taken by the optimizer, not a formula."""
    grads = np.ones(steps)
    curves = {}
    for b2 in beta2s:
        for which in AdamVariant.CORRECTIONS:
            fed = feed(lambda p, b2=b2, w=which: AdamVariant(p, lr=lr, betas=(beta1, b2),
                                                            bias_correction=w), grads)
            curves[(b2, which)] = -fed.steps[:, 0] / lr
    labels = {"both": "torch (both corrected)", "none": "no correction", "m": "only m corrected"}
    t = np.arange(1, steps + 1)
    fig, ax = plt.subplots(figsize=(7.2, 4.0), layout="constrained")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1, steps)
    top = max(float(c.max()) for c in curves.values())
    ax.set_ylim(0.5, top * 1.6)
    ax.set_xlabel("step t (constant gradient)")
    ax.set_ylabel("step length / learning rate")
    ax.grid(True, which="both", alpha=0.25)
    lines = {}
    for color, which in zip(COLORS, AdamVariant.CORRECTIONS):
        (lines[which],) = ax.plot([], [], color=color, lw=2.0, label=labels[which])
    ax.legend(loc="upper right", fontsize=9)
    heading = ax.set_title("")

    def update(beta2):
        for which, line in lines.items():
            line.set_data(t, curves[(beta2, which)])
        none = curves[(beta2, "none")]
        heading.set_text(f"β₁ = {beta1:g}, β₂ = {beta2:g}: uncorrected peak {none.max():.2f}× "
                         f"at t = {int(none.argmax()) + 1}")

    def alt(beta2):
        none, m_only = curves[(beta2, "none")], curves[(beta2, "m")]
        return (f"Log-log plot of Adam's step length per unit learning rate over {steps} steps of "
                f"a constant gradient, beta1 {beta1:g}, beta2 {beta2:g}: with both corrections "
                f"the step is 1 throughout; without correction it starts at {none[0]:.2f}, peaks "
                f"at {none.max():.2f} at step {int(none.argmax()) + 1} and decays towards 1; "
                f"correcting only m starts at {m_only[0]:.1f}.")

    return SliderFigure(fig, update, {"beta2": list(beta2s)}, alt=alt, labels={"beta2": "β₂"},
                        initial={"beta2": beta2s[len(beta2s) // 2]},
                        animated=list(lines.values()) + [heading])


def step_size_figure(records: dict, *, lr: float):
    """Static: how spread out the gradients are against how spread out Adam's steps are.

    ``records`` maps a step number k to ``(grads, steps)``, the flat arrays of every parameter's
    gradient and update at step k. Both panels share one log axis, relative to the median
    gradient (left) and to ``lr`` (right); exact zeros are left out (the caption counts them)."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(9.0, 3.4), sharex=True, sharey=True,
                               layout="constrained")
    bins = np.geomspace(1e-4, 1e2, 49)
    for color, (k, (grads, steps)) in zip(COLORS, records.items()):
        g = np.abs(np.asarray(grads, dtype=np.float64))
        s = np.abs(np.asarray(steps, dtype=np.float64)) / lr
        g, s = g[g > 0], s[s > 0]
        a.hist(np.clip(g / np.median(g), bins[0], bins[-1]), bins=bins, histtype="step",
               lw=1.8, color=color, label=f"step {k}")
        b.hist(np.clip(s, bins[0], bins[-1]), bins=bins, histtype="step", lw=1.8, color=color,
               label=f"step {k}")
    a.set_xscale("log")
    a.set_xlabel("|gradient| / median |gradient|")
    a.set_ylabel("parameters")
    a.set_title("gradients")
    b.set_xlabel("|update| / learning rate")
    b.set_title("Adam's updates")
    for ax in (a, b):
        ax.grid(True, alpha=0.25)
    b.legend(fontsize=8, loc="upper left")
    return fig


def ablation_figure(results: dict, *, ylabel: str = "training loss, last epoch"):
    """Static: a metric against the learning rate, one line per ``{label: (lrs, values)}``."""
    fig, ax = plt.subplots(figsize=(7.2, 3.8), layout="constrained")
    for color, marker, (label, (lrs, values)) in zip(COLORS, "osD^v<>", results.items()):
        ax.loglog(lrs, values, color=color, marker=marker, lw=1.6, label=label)
    ax.set_xlabel("learning rate")
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=9)
    return fig


def betas_figure(landscape: Landscape, beta1s: Sequence[float], beta2s: Sequence[float], *,
                 lr: float, steps: int = 300, grad_noise: float = 0.0, seed: int = 0) -> SliderFigure:
    """Adam on ``landscape`` for every (beta1, beta2): path on the contours and loss per step."""
    runs = {(b1, b2): run(landscape, lambda p, b1=b1, b2=b2: Adam(p, lr=lr, betas=(b1, b2)),
                          steps=steps, grad_noise=grad_noise, seed=seed)
            for b1 in beta1s for b2 in beta2s}
    fig, (ax, ax_loss) = plt.subplots(1, 2, figsize=(10.0, 4.2), layout="constrained",
                                      gridspec_kw={"width_ratios": [1.25, 1]})
    draw_contours(ax, landscape)
    ax.plot(*landscape.start, marker="o", ms=8, color="white", mec="black", ls="none", zorder=6)
    (path,) = ax.plot([], [], color=COLORS[2], lw=1.2, zorder=4)
    (head,) = ax.plot([], [], marker="o", ms=7, color=COLORS[2], mec="black", ls="none", zorder=7)
    finite = [t.losses[np.isfinite(t.losses)] for t in runs.values()]
    floor = max(min(float(f.min()) for f in finite), 1e-12)
    ax_loss.set_yscale("log")
    ax_loss.set_xlim(0, steps)
    ax_loss.set_ylim(floor / 2, max(float(f.max()) for f in finite) * 2)
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("loss f(x, y)")
    ax_loss.grid(True, alpha=0.3)
    (loss_line,) = ax_loss.plot([], [], color=COLORS[2], lw=1.4)
    heading = ax.set_title("")
    readout = ax_loss.set_title("")

    def update(beta1, beta2):
        t = runs[(beta1, beta2)]
        path.set_data(t.points[:, 0], t.points[:, 1])
        head.set_data([t.points[-1, 0]], [t.points[-1, 1]])
        loss_line.set_data(np.arange(len(t.losses)), np.maximum(t.losses, floor / 2))
        heading.set_text(f"Adam, lr = {lr:g}, β₁ = {beta1:g}, β₂ = {beta2:g}")
        readout.set_text(f"mean loss over the last 50 steps: {t.losses[-50:].mean():.3g}")

    def alt(beta1, beta2):
        t = runs[(beta1, beta2)]
        return (f"Adam with beta1 {beta1:g} and beta2 {beta2:g} (learning rate {lr:g}) on the "
                f"{landscape.name} function{' with gradient noise' if grad_noise else ''}: after "
                f"{steps} steps it is at ({t.points[-1, 0]:.2f}, {t.points[-1, 1]:.2f}), mean loss "
                f"over the last 50 steps {t.losses[-50:].mean():.3g}.")

    return SliderFigure(fig, update, {"beta1": list(beta1s), "beta2": list(beta2s)}, alt=alt,
                        labels={"beta1": "β₁", "beta2": "β₂"},
                        initial={"beta1": beta1s[-2] if len(beta1s) > 1 else beta1s[0],
                                 "beta2": beta2s[-2] if len(beta2s) > 1 else beta2s[0]},
                        animated=[path, head, loss_line, heading, readout])
