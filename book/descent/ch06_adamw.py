"""Chapter 6 (book/06-adamw.md): coupled L2 against decoupled weight decay on the digits MLP.

* :func:`train_run` / :func:`sweep` train the digits MLP and keep the model and the optimizer,
  :func:`shrinkage_by_gradient_rms` measures which weights a regulariser shrank;
* :func:`decay_sweep_figure` (a slider over the weight decay) and :func:`shrinkage_figure`.

The comparison variants (:class:`SGDDecoupled`, :class:`AdamWPaper`, :class:`AdamWDecayAfter`)
are in :mod:`descent.variants`.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator

from optimkit import rules
from optimkit.digits import DigitsData, History, MLP, train
from optimkit.optim import Adam, AdamW

from .drawing import COLORS
from .sliders import SliderFigure


class Run(NamedTuple):
    """One training run: its :class:`~optimkit.digits.History`, the trained model and the
    optimizer (whose state holds the moments)."""

    history: History
    model: MLP
    optimizer: object


def train_run(data: DigitsData, make_optimizer: Callable, *, epochs: int = 20, seed: int = 0,
              layer_sizes=(64, 32, 10), **train_kwargs) -> Run:
    """Train a fresh ``MLP(layer_sizes, seed)`` and keep the model and optimizer too."""
    box = {}

    def make(params):
        box["opt"] = make_optimizer(params)
        return box["opt"]

    model = MLP(layer_sizes, seed=seed)
    history = train(model, data, make, epochs=epochs, seed=seed, **train_kwargs)
    return Run(history, model, box["opt"])


METHODS = {
    "Adam + L2": lambda lr, wd: (lambda p: Adam(p, lr=lr, weight_decay=wd)),
    "AdamW": lambda lr, wd: (lambda p: AdamW(p, lr=lr, weight_decay=wd)),
}
"""The two regularised optimizers chapter 6 compares: ``METHODS[name](lr, wd)`` makes a
``make_optimizer``. Both apply their decay to every parameter, biases included."""


def sweep(data: DigitsData, weight_decays: Sequence[float], *, lr: float = 3e-3,
          epochs: int = 20, seed: int = 0) -> dict:
    """``{(method, wd): Run}`` for every method in :data:`METHODS` and every ``wd``; with
    ``wd == 0`` both methods are plain Adam, so that run is made once and shared."""
    results = {}
    for wd in weight_decays:
        if wd == 0:
            shared = train_run(data, METHODS["AdamW"](lr, 0.0), epochs=epochs, seed=seed)
            for name in METHODS:
                results[name, wd] = shared
            continue
        for name, method in METHODS.items():
            results[name, wd] = train_run(data, method(lr, wd), epochs=epochs, seed=seed)
    return results


def shrinkage_by_gradient_rms(base: Run, runs: dict, *, layer: int = 0, bins: int = 10):
    r"""Which weights did each regulariser shrink?

    The weights of matrix ``layer`` (``params[2 * layer]``) are sorted into ``bins``
    equal-count groups by their gradient RMS in the unregularised ``base`` run,
    :math:`\sqrt{\hat v}` from its Adam state. For every ``{label: run}`` the result holds, per
    group, the norm of the run's final weights divided by the norm of ``base``'s.

    Returns ``(rms_centres, {label: ratios})``: the median gradient RMS of each group and the
    ratios, both of length ``bins``, groups in increasing gradient RMS."""
    index = 2 * layer
    state = base.optimizer.state[index]
    beta2 = base.optimizer.param_groups[0]["betas"][1]
    rms = np.sqrt(state["exp_avg_sq"] / rules.bias_correction(beta2, state["step"])).ravel()
    order = np.argsort(rms, kind="stable")
    groups = np.array_split(order, bins)
    w0 = base.model.params[index].ravel()
    centres = np.array([np.median(rms[g]) for g in groups])
    ratios = {}
    for label, run in runs.items():
        w = run.model.params[index].ravel()
        ratios[label] = np.array([np.linalg.norm(w[g]) / np.linalg.norm(w0[g]) for g in groups])
    return centres, ratios


def decay_sweep_figure(results: dict, weight_decays: Sequence[float]) -> SliderFigure:
    """A slider over the weight decay: weight norm and validation accuracy per epoch for both
    methods, and the final weight norm of every setting with the current one marked."""
    names = list(METHODS)
    epochs = len(results[names[0], weight_decays[0]].history.weight_norm)
    x = np.arange(1, epochs + 1)
    fig = plt.figure(figsize=(8.4, 6.6), layout="constrained")
    grid = fig.add_gridspec(2, 2)
    ax_norm, ax_acc = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
    ax_final = fig.add_subplot(grid[1, :])
    top = max(max(r.history.weight_norm) for r in results.values())
    ax_norm.set_xlim(1, epochs)
    ax_norm.set_ylim(0, top * 1.05)
    ax_norm.set_xlabel("epoch")
    ax_norm.set_ylabel("norm of all weight matrices")
    ax_acc.set_xlim(1, epochs)
    for ax in (ax_norm, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acc.set_ylim(0, 1.0)
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("validation accuracy")
    positive = [wd for wd in weight_decays if wd > 0]
    ax_final.set_xscale("log")
    ax_final.set_xlabel("weight decay λ (0 drawn at the left edge)")
    ax_final.set_ylabel("final weight norm")
    left = min(positive) / 3
    xs = [wd if wd > 0 else left for wd in weight_decays]
    lines, marks = {}, {}
    for color, name in zip(COLORS, names):
        (lines[name, "norm"],) = ax_norm.plot([], [], color=color, lw=2.0, label=name)
        (lines[name, "acc"],) = ax_acc.plot([], [], color=color, lw=2.0, label=name)
        finals = [results[name, wd].history.weight_norm[-1] for wd in weight_decays]
        ax_final.plot(xs, finals, color=color, lw=1.4, marker="o", ms=4, label=name)
        (marks[name],) = ax_final.plot([], [], marker="o", ms=11, mfc="none", mec=color,
                                       mew=2.2, ls="none")
    for ax in (ax_norm, ax_acc, ax_final):
        ax.grid(True, alpha=0.3)
    ax_final.legend(loc="upper right", fontsize=9)
    ax_final.set_ylim(0, top * 1.05)
    heading = ax_norm.set_title("")
    readout = ax_acc.set_title("")

    def update(weight_decay):
        parts = []
        for name in names:
            h = results[name, weight_decay].history
            lines[name, "norm"].set_data(x, h.weight_norm)
            lines[name, "acc"].set_data(x, h.val_accuracy)
            marks[name].set_data([weight_decay if weight_decay > 0 else left],
                                 [h.weight_norm[-1]])
            parts.append(f"{name} {h.val_accuracy[-1]:.1%}")
        heading.set_text(f"λ = {weight_decay:g}")
        readout.set_text("final: " + ", ".join(parts))

    def alt(weight_decay):
        parts = "; ".join(
            f"{name}: final weight norm {results[name, weight_decay].history.weight_norm[-1]:.2f}, "
            f"validation accuracy {results[name, weight_decay].history.val_accuracy[-1]:.1%}"
            for name in names)
        return (f"Training the digits MLP for {epochs} epochs with weight decay {weight_decay:g}. "
                f"Left: weight norm per epoch; middle: validation accuracy per epoch; right: "
                f"final weight norm against the weight decay for every setting. {parts}.")

    return SliderFigure(fig, update, {"weight_decay": list(weight_decays)}, alt=alt,
                        labels={"weight_decay": "weight decay λ"},
                        initial={"weight_decay": positive[len(positive) // 2]},
                        animated=[*lines.values(), *marks.values(), heading, readout])


def shrinkage_figure(centres, ratios: dict, *, title: str = ""):
    """Static: per gradient-RMS group, final weight norm relative to the unregularised run."""
    fig, ax = plt.subplots(figsize=(7.2, 3.8), layout="constrained")
    for color, marker, (label, r) in zip(COLORS, "osD^", ratios.items()):
        ax.plot(centres, r, color=color, marker=marker, lw=1.8, label=label)
    ax.set_xscale("log")
    ax.set_ylim(0, 1.05 * max(1.0, max(float(np.max(r)) for r in ratios.values())))
    ax.set_xlabel("gradient RMS √v̂ of the weights in the group (unregularised run)")
    ax.set_ylabel("weight norm / unregularised")
    ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
    ax.grid(True, which="both", alpha=0.25)
    ax.legend(fontsize=9)
    if title:
        ax.set_title(title)
    return fig
