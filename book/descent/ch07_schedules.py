"""Chapter 7 (book/07-schedules.md): learning-rate schedules, figures and small experiments.

Everything here is computed from :mod:`optimkit` (its schedules, optimizers and the digits
MLP); the chapter calls these functions and prints or glues what they return, so every number
in the text comes from a run.

Two references that are *not* optimkit's behaviour, kept here so the chapter can compare:

* :func:`torch_cosine_annealing_lrs` -- the learning rates ``torch.optim.lr_scheduler.
  CosineAnnealingLR`` produces, recursion and all, including past ``T_max`` where torch climbs
  back up (optimkit and optax clamp). ``tests/book/test_ch07_schedules.py`` checks it against torch.
* :func:`noise_floor` -- the stationary expected loss of SGD with gradient noise on a quadratic.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from optimkit import schedules as S
from optimkit.digits import DigitsData, MLP, train
from optimkit.optim import SGD

from .drawing import COLORS
from .sliders import SliderFigure


FAMILIES = ("constant", "step", "exponential", "cosine", "warm restarts", "one-cycle",
            "warmup + cosine")


def family_schedule(family: str, peak_lr: float, total_steps: int) -> Callable[[int], float]:
    """One schedule per family, all built for ``total_steps`` and starting at (or peaking at)
    ``peak_lr``.

    step: x0.2 at 1/3 and 2/3 of the run; exponential: down to 1% of the peak at the end;
    warm restarts: three cosine cycles; one-cycle: torch's defaults; warmup + cosine: a
    linear warmup over the first 10% of the steps.
    """
    T = int(total_steps)
    if family == "constant":
        return S.constant(peak_lr)
    if family == "step":
        return S.step_decay(peak_lr, math.ceil(T / 3), 0.2)
    if family == "exponential":
        return S.exponential(peak_lr, 0.01 ** (1 / T))
    if family == "cosine":
        return S.cosine(peak_lr, T)
    if family == "warm restarts":
        return S.cosine_warm_restarts(peak_lr, math.ceil(T / 3))
    if family == "one-cycle":
        return S.one_cycle(peak_lr, T)
    if family == "warmup + cosine":
        return S.warmup_cosine(peak_lr, T // 10, T)
    raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")


def schedule_values(schedule, steps: int) -> np.ndarray:
    """``schedule(0), ..., schedule(steps - 1)`` as an array."""
    return np.array([schedule(k) for k in range(steps)], dtype=np.float64)


def noise_floor(lr: float, curvatures: Sequence[float], noise: float) -> float:
    r"""Stationary :math:`\mathbb E[f]` of SGD on :math:`f = \tfrac12\sum_i \lambda_i x_i^2` when
    every gradient coordinate carries independent :math:`\mathcal N(0, \sigma^2)` noise.

    Each coordinate follows :math:`x \leftarrow (1 - \eta\lambda)x - \eta\sigma\xi`, whose
    variance settles at :math:`s = \eta\sigma^2 / (\lambda(2 - \eta\lambda))`, so

    .. math:: \mathbb E[f] = \sum_i \frac{\lambda_i s_i}{2} = \sum_i \frac{\eta\sigma^2}{2(2 - \eta\lambda_i)}

    (valid for :math:`0 < \eta\lambda_i < 2`).
    """
    total = 0.0
    for lam in curvatures:
        if not 0 < lr * lam < 2:
            raise ValueError(f"the floor exists only for 0 < lr*curvature < 2, got {lr}*{lam}")
        total += lr * noise**2 / (2 * (2 - lr * lam))
    return total


def noisy_sgd_losses(landscape, schedule, steps: int, noise: float, runs: int = 200,
                     seed: int = 0) -> np.ndarray:
    r"""Mean loss over ``runs`` independent SGD runs with gradient noise, after 0..``steps`` steps.

    All runs start at ``landscape.start`` and are advanced together: one :class:`optimkit.SGD`
    holds a ``(runs, 2)`` array (its update is elementwise), and every step adds fresh
    :math:`\mathcal N(0, \sigma^2)` noise to each gradient coordinate.
    """
    rng = np.random.default_rng(seed)
    X = np.tile(np.asarray(landscape.start, dtype=np.float64), (runs, 1))
    opt = SGD([X], lr=schedule(0))
    losses = np.empty(steps + 1)
    losses[0] = landscape.f(X[:, 0], X[:, 1]).mean()
    for k in range(steps):
        opt.lr = schedule(k)
        gx, gy = landscape.grad_xy(X[:, 0], X[:, 1])
        g = np.column_stack([gx, gy]) + rng.normal(0.0, noise, X.shape)
        opt.step([g])
        losses[k + 1] = landscape.f(X[:, 0], X[:, 1]).mean()
    return losses


def noise_floor_figure(curves: dict, floors: dict, switch_step: int | None = None):
    """Mean loss against step (log scale) for each labelled run, its predicted floor dashed."""
    fig, ax = plt.subplots(figsize=(7.0, 3.6), layout="constrained")
    for color, (label, losses) in zip(COLORS, curves.items()):
        ax.plot(losses, color=color, lw=1.6, label=label)
        if label in floors:
            ax.axhline(floors[label], color=color, ls="--", lw=1.0)
    if switch_step is not None:
        ax.axvline(switch_step, color="0.5", lw=0.8, ls=":")
        ax.annotate("lr drops", (switch_step, ax.get_ylim()[1]), xytext=(4, -14),
                    textcoords="offset points", fontsize=8, color="0.3")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("mean loss over runs")
    ax.set_title("SGD with noisy gradients: dashed lines are the predicted floors")
    ax.legend(fontsize=8)
    return fig


def schedule_zoo_figure(schedules: dict, steps: int):
    """Small multiples: one panel per labelled schedule, lr against step."""
    n = len(schedules)
    cols = 3
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(9.0, 2.3 * rows), sharex=True, sharey=True,
                             layout="constrained")
    t = np.arange(steps)
    for ax, color, (label, fn) in zip(axes.flat, COLORS * 2, schedules.items()):
        ax.plot(t, schedule_values(fn, steps), color=color, lw=1.8)
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("step")
    for ax in axes[:, 0]:
        ax.set_ylabel("learning rate")
    return fig


def torch_cosine_annealing_lrs(lr: float, T_max: int, eta_min: float = 0.0, steps: int = 0) -> np.ndarray:
    """The lr at optimizer steps ``0..steps-1`` under ``torch.optim.lr_scheduler.CosineAnnealingLR``.

    A transcription of torch 2.13's recursive ``get_lr`` (the scheduler multiplies the current lr
    by a ratio of cosines each step, and adds a fixed increment on the step after each trough):
    it keeps following the cosine past ``T_max``, back up to ``lr`` at ``2 * T_max``.
    """
    out = [float(lr)]
    current = float(lr)
    for epoch in range(1, steps):
        if (epoch - 1 - T_max) % (2 * T_max) == 0:
            current = current + (lr - eta_min) * (1 - math.cos(math.pi / T_max)) / 2
        else:
            current = ((1 + math.cos(math.pi * epoch / T_max))
                       / (1 + math.cos(math.pi * (epoch - 1) / T_max))
                       * (current - eta_min) + eta_min)
        out.append(current)
    return np.array(out[:steps], dtype=np.float64)


def clamp_vs_climb_figure(ours: np.ndarray, torch_lrs: np.ndarray, total_steps: int,
                          losses: dict | None = None):
    """optimkit's clamped cosine against torch's, past ``total_steps``; optional loss panel."""
    rows = 2 if losses else 1
    fig, axes = plt.subplots(rows, 1, figsize=(7.0, 2.6 * rows), sharex=True, layout="constrained",
                             squeeze=False)
    ax = axes[0, 0]
    t = np.arange(len(ours))
    ax.plot(t, torch_lrs, color=COLORS[1], lw=1.8, label="torch CosineAnnealingLR (climbs back)")
    ax.plot(t, ours, color=COLORS[0], lw=1.8, ls="--", label="optimkit / optax cosine (clamps)")
    ax.axvline(total_steps, color="0.4", lw=0.8, ls=":")
    ax.set_ylabel("learning rate")
    ax.legend(fontsize=8, loc="upper center")
    ax.set_title(f"cosine schedules with total_steps = T_max = {total_steps}, run for {len(ours)} steps")
    if losses:
        ax2 = axes[1, 0]
        for color, (label, curve) in zip([COLORS[1], COLORS[0]], losses.items()):
            ax2.plot(np.arange(len(curve)), curve, color=color, lw=1.4, label=label)
        ax2.axvline(total_steps, color="0.4", lw=0.8, ls=":")
        ax2.set_yscale("log")
        ax2.set_ylabel("training loss\n(one-epoch mean)")
        ax2.legend(fontsize=8)
    axes[-1, 0].set_xlabel("step")
    return fig


def plateau_figure(val_losses: Sequence[float], bests: Sequence[float], lrs: Sequence[float]):
    """Validation loss and best-so-far per epoch, and the lr ReduceLROnPlateau chose (log axis)."""
    epochs = np.arange(1, len(val_losses) + 1)
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7.0, 4.4), sharex=True, layout="constrained")
    ax.plot(epochs, val_losses, "o-", color=COLORS[0], ms=3.5, lw=1.2, label="validation loss")
    ax.step(epochs, bests, where="post", color=COLORS[1], lw=1.2,
            label="best so far (the scheduler's record)")
    ax.set_ylabel("validation loss")
    ax.legend(fontsize=8)
    ax2.step(epochs, lrs, where="post", color=COLORS[2], lw=1.8)
    ax2.set_yscale("log")
    ax2.set_ylabel("lr for this epoch")
    ax2.set_xlabel("epoch")
    return fig


def running_mean(values: Sequence[float], window: int) -> np.ndarray:
    """Mean of the last ``window`` values at every step (fewer at the start)."""
    values = np.asarray(values, dtype=np.float64)
    csum = np.concatenate([[0.0], np.cumsum(values)])
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(idx - int(window), 0)
    return (csum[idx] - csum[lo]) / (idx - lo)


def phases_figure(lrs: dict, losses: dict, phases: Sequence[tuple]):
    """lr and smoothed training loss of labelled runs, with shaded ``(start, end, name)`` phases."""
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7.0, 4.6), sharex=True, layout="constrained")
    shades = ["#E69F00", "#56B4E9", "#009E73"]
    for (start, end, name), shade in zip(phases, shades):
        for a in (ax, ax2):
            a.axvspan(start, end, color=shade, alpha=0.12, lw=0)
        ax.text((start + end) / 2, 1.02, name, transform=ax.get_xaxis_transform(), ha="center",
                va="bottom", fontsize=8)
    for color, (label, values) in zip(COLORS, lrs.items()):
        ax.plot(values, color=color, lw=1.6, label=label)
    for color, (label, values) in zip(COLORS, losses.items()):
        ax2.plot(values, color=color, lw=1.4, label=label)
    ax.set_ylabel("learning rate")
    ax.legend(fontsize=8, loc="center right")
    ax2.set_yscale("log")
    ax2.set_ylabel("training objective\n(one-epoch mean)")
    ax2.set_xlabel("step")
    return fig


def finetune_figure(runs: dict, train_before: float, val_before: float):
    """Full training and validation loss of a trained model during fine-tuning, one line per
    labelled run ``{label: (train_losses, val_losses)}``; dashed lines at the values before."""
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 3.4), layout="constrained")
    for color, (label, (tr, va)) in zip(COLORS, runs.items()):
        axes[0].plot(np.arange(1, len(tr) + 1), tr, color=color, lw=1.3, label=label)
        axes[1].plot(np.arange(1, len(va) + 1), va, color=color, lw=1.3, label=label)
    for ax, before, name in ((axes[0], train_before, "training"), (axes[1], val_before, "validation")):
        ax.axhline(before, color="0.3", lw=1.0, ls="--")
        ax.set_xlabel("fine-tuning step")
        ax.set_ylabel(f"{name} loss (full set)")
    axes[0].set_yscale("log")
    axes[1].legend(fontsize=7)
    return fig


def schedule_explorer(data: DigitsData, families: Sequence[str] = FAMILIES,
                      peak_lrs: Sequence[float] = (0.05, 0.2, 0.8, 2.0), *, epochs: int = 10,
                      batch_size: int = 32, l2: float = 1e-2, seed: int = 0,
                      smooth: int = 15) -> SliderFigure:
    """Train the digits MLP with plain SGD under every (family, peak lr) and show each run.

    Top: the lr as a fraction of the peak, against step. Bottom: the training objective
    (cross-entropy plus the L2 term, mean of the last ``smooth`` minibatches), with the
    constant-lr run at the same peak dashed for reference.
    The returned figure carries ``results[(family, peak_lr)]`` with the final full-batch
    ``objective``, ``val_accuracy`` and ``diverged``.
    """
    n = len(data.y_train)
    steps_per_epoch = math.ceil(n / batch_size)
    T = epochs * steps_per_epoch
    runs, results = {}, {}
    for family in families:
        for peak in peak_lrs:
            schedule = family_schedule(family, peak, T)
            model = MLP(seed=seed)
            hist = train(model, data, lambda p: SGD(p, lr=peak), epochs=epochs,
                         batch_size=batch_size, seed=seed, schedule=schedule, weight_decay_l2=l2)
            objective, _ = model.loss_and_grads(data.X_train, data.y_train, l2=l2)
            runs[family, peak] = (np.array(hist.lr) / peak, running_mean(hist.train_loss, smooth))
            results[family, peak] = {
                "objective": objective if not hist.diverged else math.inf,
                "val_accuracy": hist.val_accuracy[-1] if hist.val_accuracy else math.nan,
                "diverged": hist.diverged}

    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(6.6, 4.8), sharex=True, layout="constrained")
    t = np.arange(T)
    (lr_line,) = ax.plot([], [], color=COLORS[0], lw=2.0)
    (lr_ref,) = ax.plot(t, np.ones(T), color="0.55", lw=1.0, ls="--", label="constant")
    (loss_line,) = ax2.plot([], [], color=COLORS[1], lw=1.6, label="this schedule")
    (loss_ref,) = ax2.plot([], [], color="0.55", lw=1.0, ls="--", label="constant at the same peak")
    ax.set_ylabel("lr / peak lr")
    ax.set_ylim(0, 1.08)
    ax.legend(fontsize=8, loc="upper right")
    ax2.set_yscale("log")
    ax2.set_ylabel(f"training objective\n(mean of {smooth} steps)")
    ax2.set_xlabel("step")
    ax2.legend(fontsize=8, loc="upper right")
    ax.set_xlim(0, T)
    all_losses = np.concatenate([loss[np.isfinite(loss)] for _, loss in runs.values()])
    ax2.set_ylim(all_losses.min() * 0.9, min(all_losses.max(), 10.0) * 1.1)
    heading = ax.set_title("placeholder", fontsize=9)

    def update(schedule: str, peak_lr: float) -> None:
        lrs, loss = runs[schedule, peak_lr]
        lr_line.set_data(t[: len(lrs)], lrs)
        loss_line.set_data(t[: len(loss)], loss)
        ref = runs.get(("constant", peak_lr))
        loss_ref.set_data(t[: len(ref[1])], ref[1]) if ref else loss_ref.set_data([], [])
        r = results[schedule, peak_lr]
        heading.set_text(f"{schedule}, peak lr {peak_lr:g}: final objective "
                         f"{r['objective']:.4f}, validation accuracy {r['val_accuracy']:.1%}")

    def alt(schedule: str, peak_lr: float) -> str:
        r = results[schedule, peak_lr]
        ref = results.get(("constant", peak_lr))
        tail = (f" (constant lr at the same peak: {ref['objective']:.4f})"
                if ref and schedule != "constant" else "")
        return (f"Learning rate against step for the {schedule} schedule with peak {peak_lr:g}, "
                f"and the training objective of the digits MLP under it, falling to "
                f"{r['objective']:.4f}{tail}.")

    sf = SliderFigure(fig, update, {"schedule": list(families), "peak_lr": list(peak_lrs)}, alt=alt,
                      labels={"schedule": "schedule", "peak_lr": "peak lr"},
                      initial={"schedule": "cosine", "peak_lr": peak_lrs[len(peak_lrs) // 2]},
                      animated=[lr_line, loss_line, loss_ref, heading])
    sf.results = results
    sf.total_steps = T
    return sf
