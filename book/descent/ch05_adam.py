"""Chapter 5 (book/05-adam.md): Adam's bias correction, step size, ablation and betas, as figures.

The measurements come from :mod:`descent.ch04_adagrad_rmsprop` (:func:`feed`) and the textbook
forms from :mod:`descent.variants` (:class:`AdamVariant`).
"""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from optimkit.landscapes import Landscape, run
from optimkit.optim import Adam

from .ch04_adagrad_rmsprop import feed, path_and_loss_figure, show_run
from .drawing import COLORS
from .sliders import SliderFigure
from .variants import AdamVariant


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
    fig, artists, lowest = path_and_loss_figure(landscape, runs, steps, COLORS[2])
    heading, readout = artists[3:]
    floor = max(lowest, 1e-12)

    def update(beta1, beta2):
        t = runs[(beta1, beta2)]
        show_run(artists, t, floor / 2)
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
                        animated=list(artists))
