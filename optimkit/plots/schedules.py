r"""Figures and small experiments for the chapters on learning-rate schedules and warmup.

Everything here is computed from :mod:`optimkit` (its schedules, optimizers and the digits
MLP); the chapters call these functions and print or glue what they return, so every number
in the text comes from a run.

Two references that are *not* optimkit's behaviour, kept here so the chapters can compare:

* :func:`torch_cosine_annealing_lrs` -- the learning rates ``torch.optim.lr_scheduler.
  CosineAnnealingLR`` produces, recursion and all, including past ``T_max`` where torch climbs
  back up (optimkit and optax clamp). ``tests/test_plots_schedules.py`` checks it against torch.
* :func:`noise_floor` -- the stationary expected loss of SGD with gradient noise on a quadratic.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from .. import rules
from .. import schedules as S
from ..clipping import global_norm
from ..digits import MLP, DigitsData, train
from ..interactive import SliderFigure
from ..optim import SGD, Adam, RAdam
from .landscape import COLORS

__all__ = [
    "FAMILIES", "family_schedule", "schedule_values", "noise_floor", "noisy_sgd_losses",
    "noise_floor_figure", "schedule_zoo_figure", "torch_cosine_annealing_lrs",
    "clamp_vs_climb_figure", "plateau_figure", "phases_figure", "finetune_figure",
    "running_mean", "schedule_explorer", "v_hat_samples", "v_hat_relative_std",
    "radam_rectifier", "adam_relative_steps", "v_hat_figure", "radam_figure",
    "warmup_runs", "dead_units", "warmup_explorer",
]


# --- schedules for the explorer ------------------------------------------------------------

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


# --- why decay: the noise floor ---------------------------------------------------------------

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


# --- the zoo --------------------------------------------------------------------------------

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


# --- past the end: clamp (optimkit, optax) or climb (torch) --------------------------------

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


# --- ReduceLROnPlateau, phases, fine-tuning -------------------------------------------------

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


# --- the schedule explorer ---------------------------------------------------------------------

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


# --- warmup: Adam's second moment, RAdam's rectifier -----------------------------------------

def v_hat_samples(ts: Sequence[int], beta2: float = 0.999, runs: int = 20000,
                  seed: int = 0) -> np.ndarray:
    r"""Adam's bias-corrected second moment :math:`\hat v_t = v_t / (1 - \beta_2^t)` at the steps
    ``ts``, for ``runs`` independent streams of :math:`\mathcal N(0, 1)` gradients.

    Same recurrence as :func:`optimkit.rules.adam_kernel` (:math:`v_t = \beta_2 v_{t-1} +
    (1-\beta_2) g_t^2`), on one scalar per run. Shape ``(len(ts), runs)``.
    """
    ts = [int(t) for t in ts]
    if not ts or min(ts) < 1:
        raise ValueError(f"ts must be steps >= 1, got {ts!r}")
    rng = np.random.default_rng(seed)
    v = np.zeros(runs)
    out = np.empty((len(ts), runs))
    wanted = {t: i for i, t in enumerate(ts)}
    for t in range(1, max(ts) + 1):
        g = rng.standard_normal(runs)
        v *= beta2
        v += (1 - beta2) * g * g
        if t in wanted:
            out[wanted[t]] = v / (1 - beta2**t)
    return out


def v_hat_relative_std(t, beta2: float = 0.999):
    r"""Standard deviation of :math:`\hat v_t` divided by its mean, for i.i.d. zero-mean Gaussian
    gradients: :math:`\hat v_t = \sum_i w_i g_i^2` with :math:`w_i = (1-\beta_2)\beta_2^{t-i}/(1-\beta_2^t)`
    and :math:`\operatorname{Var} g^2 = 2\sigma^4`, so

    .. math:: \frac{\operatorname{sd}\hat v_t}{\mathbb E\hat v_t} = \sqrt{2\sum_i w_i^2}
              = \sqrt{\frac{2(1-\beta_2)(1+\beta_2^t)}{(1+\beta_2)(1-\beta_2^t)}}

    which is :math:`\sqrt2` at :math:`t = 1` and :math:`\sqrt{2(1-\beta_2)/(1+\beta_2)}` as
    :math:`t \to \infty`.
    """
    t = np.asarray(t, dtype=np.float64)
    return np.sqrt(2 * (1 - beta2) * (1 + beta2**t) / ((1 + beta2) * (1 - beta2**t)))


def radam_rectifier(t: int, beta2: float = 0.999) -> float:
    r"""RAdam's :math:`r_t`, or NaN on the steps where :math:`\rho_t \le 5` and RAdam takes an
    un-adapted momentum step instead (the same test and formula as ``optimkit.rules.radam_kernel``).
    """
    r = rules.radam_rectifier(t, beta2)
    return math.nan if r is None else r


def adam_relative_steps(model: MLP, data: DigitsData, lr: float, steps: int, batch_size: int = 64,
                        seed: int = 0, betas=(0.9, 0.999)):
    r"""Train ``model`` with :class:`optimkit.Adam` on random minibatches and record, at every step,
    :math:`|\Delta\theta| / \eta` for every parameter entry and the gradient's global norm.

    Returns ``(ratios, grad_norms)`` with shapes ``(steps, n_params)`` and ``(steps,)``. Row
    ``t - 1`` of ``ratios`` is Adam's step at :math:`t` in units of the learning rate,
    :math:`|\hat m_t| / (\sqrt{\hat v_t} + \epsilon)` up to rounding.
    """
    rng = np.random.default_rng(seed)
    opt = Adam(model.params, lr=lr, betas=betas)
    n = len(data.y_train)
    ratios = np.empty((steps, sum(p.size for p in model.params)))
    norms = np.empty(steps)
    for t in range(steps):
        idx = rng.choice(n, size=batch_size, replace=False)
        _, grads = model.loss_and_grads(data.X_train[idx], data.y_train[idx])
        norms[t] = global_norm(grads)
        before = np.concatenate([p.ravel() for p in model.params])
        opt.step(grads)
        after = np.concatenate([p.ravel() for p in model.params])
        ratios[t] = np.abs(after - before) / lr
    return ratios, norms


def v_hat_figure(t: np.ndarray, empirical: np.ndarray, formula: np.ndarray,
                 step_quantiles: dict | None = None):
    """Relative spread of Adam's v-hat against step: simulation dots, formula line."""
    cols = 2 if step_quantiles else 1
    fig, axes = plt.subplots(1, cols, figsize=(4.2 * cols, 3.4), layout="constrained", squeeze=False)
    ax = axes[0, 0]
    ax.plot(t, formula, color=COLORS[0], lw=1.8, label="formula")
    ax.plot(t, empirical, "o", color=COLORS[1], ms=3.5, label="20,000 simulated runs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("sd / mean of v-hat")
    ax.set_title("How uncertain Adam's v-hat is", fontsize=10)
    ax.legend(fontsize=8)
    if step_quantiles:
        ax = axes[0, 1]
        for color, (label, (steps, values)) in zip(COLORS[2:], step_quantiles.items()):
            ax.plot(steps, values, color=color, lw=1.6, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("step t")
        ax.set_ylabel("|step| / lr")
        ax.set_title("Adam's steps on the digits MLP", fontsize=10)
        ax.legend(fontsize=8)
    return fig


def radam_figure(t: np.ndarray, r: np.ndarray, warmup_steps: int, fallback_steps: int):
    """RAdam's r_t against step, next to a linear warmup of ``warmup_steps`` steps."""
    fig, ax = plt.subplots(figsize=(7.0, 3.3), layout="constrained")
    ax.axvspan(0.5, fallback_steps + 0.5, color=COLORS[4], alpha=0.25, lw=0,
               label=f"steps 1-{fallback_steps}: momentum step, no v")
    ax.plot(t, r, color=COLORS[0], lw=1.8, label="RAdam's rectifier r_t")
    ax.plot(t, np.minimum(t / warmup_steps, 1.0), color=COLORS[1], lw=1.4, ls="--",
            label=f"linear warmup over {warmup_steps} steps")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("step t")
    ax.set_ylabel("multiplier on the lr")
    ax.legend(fontsize=8, loc="upper left")
    return fig


# --- warmup on the digits MLP ---------------------------------------------------------------

def warmup_runs(data: DigitsData, peak_lr: float, warmup_steps: int, *, steps: int = 60,
                layer_sizes=(64, 64, 64, 64, 10), activation: str = "relu", seed: int = 0,
                optimizer: str = "Adam") -> dict:
    """Full-batch training of a deeper MLP under ``warmup_cosine(peak_lr, warmup_steps, steps)``.

    Every step uses the whole training set (the large-batch setting in which warmup became
    standard practice). Returns ``train_loss`` (before each step, then after the last), ``lr``
    (per step), ``val_accuracy`` and ``val_loss`` at the end, ``diverged`` and the ``model``.
    """
    if optimizer not in ("Adam", "RAdam"):
        raise ValueError(f"optimizer must be 'Adam' or 'RAdam', got {optimizer!r}")
    model = MLP(layer_sizes, seed=seed, activation=activation)
    opt = (Adam if optimizer == "Adam" else RAdam)(model.params, lr=peak_lr)
    schedule = S.warmup_cosine(peak_lr, warmup_steps, steps)
    losses, lrs, diverged = [], [], False
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            opt.lr = schedule(t)
            loss, grads = model.loss_and_grads(data.X_train, data.y_train)
            losses.append(loss)
            lrs.append(opt.lr)
            if not np.isfinite(loss):
                diverged = True
                break
            opt.step(grads)
        if not diverged:
            losses.append(model.loss(data.X_train, data.y_train))
            diverged = not np.isfinite(losses[-1])
    return {"train_loss": np.array(losses), "lr": np.array(lrs), "diverged": diverged,
            "val_accuracy": model.accuracy(data.X_val, data.y_val) if not diverged else math.nan,
            "val_loss": model.loss(data.X_val, data.y_val) if not diverged else math.nan,
            "model": model}


def dead_units(model: MLP, X: np.ndarray) -> list:
    """Per hidden ReLU layer, the fraction of units that output 0 on every row of ``X``
    (a dead unit gets no gradient, so it stays dead)."""
    if model.activation != "relu":
        raise ValueError("dead units are a ReLU notion; this model uses " + model.activation)
    fractions, a = [], np.asarray(X, dtype=np.float64)
    for k in range(len(model.params) // 2 - 1):
        a = np.maximum(a @ model.params[2 * k] + model.params[2 * k + 1], 0.0)
        fractions.append(float(np.mean(~(a > 0).any(axis=0))))
    return fractions


def warmup_explorer(data: DigitsData, warmups: Sequence[int] = (0, 3, 10, 20, 40),
                    peak_lrs: Sequence[float] = (0.05, 0.1, 0.2), *, steps: int = 60,
                    seed: int = 0, **run_kwargs) -> SliderFigure:
    """Slider over warmup length and peak lr: the lr schedule and the training loss it gives.

    Runs :func:`warmup_runs` for every pair; the run without warmup at the same peak is drawn
    dashed for reference. ``results[(warmup, peak)]`` holds ``peak_loss`` (largest training
    loss after step 0), ``final_loss`` and ``val_accuracy``.
    """
    histories, results = {}, {}
    for peak in peak_lrs:
        for w in warmups:
            run = warmup_runs(data, peak, w, steps=steps, seed=seed, **run_kwargs)
            losses = run["train_loss"]
            histories[w, peak] = (run["lr"], losses)
            results[w, peak] = {"peak_loss": float(np.nanmax(losses[1:])), "final_loss": float(losses[-1]),
                                "val_accuracy": run["val_accuracy"], "diverged": run["diverged"]}

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8.4, 3.5), layout="constrained",
                                  gridspec_kw={"width_ratios": [1, 1.6]})
    (lr_line,) = ax.plot([], [], color=COLORS[0], lw=2.0)
    (lr_ref,) = ax.plot([], [], color="0.55", lw=1.0, ls="--")
    ax.set_xlim(0, steps)
    ax.set_ylim(0, max(peak_lrs) * 1.08)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    (loss_line,) = ax2.plot([], [], color=COLORS[1], lw=1.8, label="with this warmup")
    (loss_ref,) = ax2.plot([], [], color="0.55", lw=1.0, ls="--", label="no warmup, same peak")
    finite = np.concatenate([h[1][np.isfinite(h[1])] for h in histories.values()])
    ax2.set_yscale("log")
    ax2.set_ylim(max(finite.min(), 1e-4) * 0.7, finite.max() * 1.5)
    ax2.set_xlim(0, steps)
    ax2.set_xlabel("step (full batch)")
    ax2.set_ylabel("training loss")
    ax2.legend(fontsize=8, loc="upper right")
    heading = fig.suptitle("placeholder", fontsize=10)

    def update(warmup: int, peak_lr: float) -> None:
        lrs, losses = histories[warmup, peak_lr]
        ref_lrs, ref_losses = histories[warmups[0], peak_lr]
        lr_line.set_data(np.arange(len(lrs)), lrs)
        lr_ref.set_data(np.arange(len(ref_lrs)), ref_lrs)
        loss_line.set_data(np.arange(len(losses)), losses)  # one more: the loss after the last step
        loss_ref.set_data(np.arange(len(ref_losses)), ref_losses)
        r = results[warmup, peak_lr]
        heading.set_text(f"Adam, peak lr {peak_lr:g}, warmup {warmup} steps: largest loss "
                         f"{r['peak_loss']:.3g}, validation accuracy {r['val_accuracy']:.1%}")

    def alt(warmup: int, peak_lr: float) -> str:
        r = results[warmup, peak_lr]
        return (f"Learning rate and training loss of Adam on the digits MLP with peak lr {peak_lr:g} "
                f"and {warmup} warmup steps: the loss peaks at {r['peak_loss']:.3g} and ends at "
                f"{r['final_loss']:.3g}, validation accuracy {r['val_accuracy']:.1%}.")

    sf = SliderFigure(fig, update, {"warmup": list(warmups), "peak_lr": list(peak_lrs)}, alt=alt,
                      labels={"warmup": "warmup steps", "peak_lr": "peak lr"},
                      initial={"warmup": warmups[0], "peak_lr": peak_lrs[-1]},
                      animated=[lr_line, lr_ref, loss_line, loss_ref, heading])
    sf.results = results
    return sf
