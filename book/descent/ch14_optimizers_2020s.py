"""Chapter 14, the optimizers of the 2020s: Muon's Newton-Schulz map, the methods' race on the
landscapes and the digits MLP, warmup-stable-decay schedules, and memory per parameter.

The update rules are optimkit's (``rules.newton_schulz``, ``rules.muon_kernel``,
``rules.adafactor_kernel``, ``beyond.lion_kernel``, ``beyond.schedulefree_adamw_kernel``,
``beyond.shampoo_kernel``); this module only drives and draws them.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np

import optimkit
from optimkit import beyond, digits, landscapes, lr_scheduler, rules

from .drawing import COLORS
from .sliders import SliderFigure

# --- Muon on a point and on a network -------------------------------------------------------


class PointMuon:
    """Muon on a landscape's point: the (2,) array seen as a 1 x 2 matrix (a view, so Muon's
    in-place step moves the point). Newton-Schulz on a single row divides it by its norm:
    Muon here is normalised momentum descent, every step of length ~lr."""

    def __init__(self, params, **kwargs):
        (point,) = params
        self.matrix = point.reshape(1, -1)  # a view of the caller's array
        self.optimizer = optimkit.Muon([self.matrix], **kwargs)

    @property
    def lr(self):
        return self.optimizer.lr

    @lr.setter
    def lr(self, value):
        self.optimizer.lr = value

    def step(self, grads):
        (g,) = grads
        self.optimizer.step([np.reshape(g, self.matrix.shape)])


class MuonWithAdamW:
    """The recipe torch's documentation gives: Muon for the hidden layers' weight matrices,
    AdamW for everything else (biases, and the output layer, as Keller Jordan's runs do).
    ``lr`` reads and writes the Muon learning rate; AdamW's follows in proportion."""

    def __init__(self, params, lr=0.02, adamw_lr=3e-3, weight_decay=0.0, momentum=0.95):
        hidden = [p for p in params[:-2] if p.ndim == 2]
        self.hidden_ids = {id(p) for p in hidden}
        rest = [p for p in params if id(p) not in self.hidden_ids]
        self.muon = optimkit.Muon(hidden, lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.adamw = optimkit.AdamW(rest, lr=adamw_lr, weight_decay=weight_decay)
        self.params, self.ratio = list(params), adamw_lr / lr

    @property
    def lr(self):
        return self.muon.lr

    @lr.setter
    def lr(self, value):
        self.muon.lr = value
        self.adamw.lr = value * self.ratio

    def step(self, grads):
        self.muon.step([g for p, g in zip(self.params, grads) if id(p) in self.hidden_ids])
        self.adamw.step([g for p, g in zip(self.params, grads) if id(p) not in self.hidden_ids])


def schedule_free(params, **kwargs):
    """The authors' class starts in eval mode: training begins with ``train()``."""
    opt = beyond.AdamWScheduleFree(params, **kwargs)
    opt.train()
    return opt


# --- Newton-Schulz, seen one singular value at a time ----------------------------------------

def ns_scalar(x, steps, coefficients=rules.MUON_COEFFICIENTS):
    """The polynomial :math:`x \\mapsto ax + bx^3 + cx^5` applied ``steps`` times: what
    Newton-Schulz does to each singular value of the normalised matrix."""
    a, b, c = coefficients
    x = np.asarray(x, dtype=np.float64)
    for _ in range(steps):
        x = a * x + b * x ** 3 + c * x ** 5
    return x


def singular_values_after(G, steps, bfloat16=False):
    """Singular values of ``newton_schulz(G, steps=steps)`` (``steps=0``: of ``G / ||G||_F``)."""
    return np.linalg.svd(rules.newton_schulz(G, steps=steps, bfloat16=bfloat16), compute_uv=False)


def ns_figure(G, max_steps: int = 6) -> SliderFigure:
    """Left: the scalar map iterated k times on [0, 1]; right: the singular values of the
    gradient matrix ``G`` after k Newton-Schulz steps. Slider: k."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.6, 3.6), layout="constrained")
    xs = np.geomspace(1e-3, 1, 400)
    left.axhspan(0.68, 1.21, color=COLORS[2], alpha=0.12, label="band [0.68, 1.21]")
    left.plot(xs, xs, color="0.6", linewidth=0.8, linestyle="--")
    (curve,) = left.plot([], [], color=COLORS[0], linewidth=1.8)
    left.set(xscale="log", xlim=(1e-3, 1), ylim=(0, 1.3), xlabel="singular value / ‖G‖_F",
             ylabel="after k steps")
    left.legend(loc="upper left", fontsize=8)
    index = np.arange(1, min(G.shape) + 1)
    right.axhspan(0.68, 1.21, color=COLORS[2], alpha=0.12)
    (bars,) = right.plot([], [], marker="o", linestyle="none", color=COLORS[1], markersize=4)
    right.set(xlim=(0, len(index) + 1), ylim=(0, 1.3), xlabel="index (largest first)",
              ylabel="singular value")
    title = fig.suptitle("")
    values = {k: singular_values_after(G, k) for k in range(max_steps + 1)}

    def update(k: int) -> None:
        curve.set_data(xs, ns_scalar(xs, k))
        bars.set_data(index, values[k])
        title.set_text(f"Newton–Schulz, k = {k} step(s)")

    def alt(k: int) -> str:
        s = values[k]
        return (f"After {k} Newton-Schulz steps the singular values of a {G.shape[0]} by "
                f"{G.shape[1]} gradient matrix run from {s.min():.2f} to {s.max():.2f}.")

    return SliderFigure(fig, update, {"k": list(range(max_steps + 1))}, alt=alt, play="k",
                        animated=[curve, bars, title])


# --- the race on a landscape and on digits ---------------------------------------------------

def landscape_entrants(lrs: dict | None = None) -> dict:
    """``{label: make_optimizer}`` for a 2-D point. Learning rates are the caller's or a
    default per method (Lion and Muon take steps of length ~lr, so theirs are small)."""
    lrs = {"AdamW": 0.05, "Lion": 0.03, "Muon": 0.05, "Schedule-free AdamW": 0.05,
           "Shampoo": 0.2, **(lrs or {})}
    return {
        "AdamW": lambda p: optimkit.AdamW(p, lr=lrs["AdamW"], weight_decay=0.0),
        "Lion": lambda p: beyond.Lion(p, lr=lrs["Lion"]),
        "Muon": lambda p: PointMuon(p, lr=lrs["Muon"], weight_decay=0.0),
        "Schedule-free AdamW": lambda p: schedule_free(p, lr=lrs["Schedule-free AdamW"]),
        "Shampoo": lambda p: beyond.Shampoo(p, lr=lrs["Shampoo"]),
    }


def digits_entrants() -> dict:
    """``{label: make_optimizer}`` for the digits MLP, each at a learning rate in its own
    customary range (Lion's a few times smaller than AdamW's, as its authors advise; Shampoo's,
    an AdaGrad whose steps shrink, larger). Not tuned per method beyond that."""
    return {
        "AdamW": lambda p: optimkit.AdamW(p, lr=3e-3, weight_decay=0.0),
        "Adafactor": lambda p: optimkit.Adafactor(p, lr=1e-2),
        "Lion": lambda p: beyond.Lion(p, lr=2e-3),
        "Muon + AdamW": lambda p: MuonWithAdamW(p, lr=0.02, adamw_lr=3e-3),
        "Schedule-free AdamW": lambda p: schedule_free(p, lr=3e-3),
        "Shampoo": lambda p: beyond.Shampoo(p, lr=0.3),
    }


def train_digits(make_optimizer, data, epochs: int = 8, seed: int = 0):
    """Train the 64-32-10 tanh MLP; returns the history and the final validation accuracy
    and loss, measured at the average x for schedule-free AdamW (``eval()``)."""
    made = []

    def make(params):
        made.append(make_optimizer(params))
        return made[0]
    model = digits.MLP((64, 32, 10), seed=seed)
    history = digits.train(model, data, make, epochs=epochs, batch_size=64, seed=seed)
    if hasattr(made[0], "eval"):
        made[0].eval()
    return history, model.accuracy(data.X_val, data.y_val), model.loss(data.X_val, data.y_val)


def digits_race(data, epochs: int = 8) -> dict:
    """``{label: (history, val_accuracy, val_loss)}`` for every entrant."""
    return {label: train_digits(make, data, epochs) for label, make in digits_entrants().items()}


def digits_race_figure(results: dict):
    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    for color, (label, (history, _, _)) in zip(COLORS, results.items()):
        loss = np.asarray(history.train_loss)
        smooth = np.convolve(loss, np.ones(10) / 10, mode="valid")
        ax.plot(np.arange(len(smooth)) + 10, smooth, color=color, label=label, linewidth=1.4)
    ax.set(yscale="log", xlabel="step", ylabel="training loss (10-step mean)")
    ax.legend(fontsize=8, ncol=2)
    return fig


# --- warmup-stable-decay ---------------------------------------------------------------------

def wsd_scheduler(optimizer, warmup: int, total: int, decay_fraction: float = 0.2):
    """Warmup-stable-decay from torch's own parts: linear warmup, a constant plateau, and a
    linear decay to zero over the last ``decay_fraction`` of the run (``SequentialLR``)."""
    decay = max(1, round(decay_fraction * total))
    stable = total - warmup - decay
    return lr_scheduler.SequentialLR(optimizer, [
        lr_scheduler.LinearLR(optimizer, start_factor=1e-2, end_factor=1.0, total_iters=warmup),
        lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=stable),
        lr_scheduler.LinearLR(optimizer, start_factor=1.0, end_factor=0.0, total_iters=decay),
    ], milestones=[warmup, warmup + stable])


def cosine_scheduler(optimizer, warmup: int, total: int):
    """Linear warmup into a cosine to zero: the schedule WSD is compared with."""
    return lr_scheduler.SequentialLR(optimizer, [
        lr_scheduler.LinearLR(optimizer, start_factor=1e-2, end_factor=1.0, total_iters=warmup),
        lr_scheduler.CosineAnnealingLR(optimizer, T_max=total - warmup, eta_min=0.0),
    ], milestones=[warmup])


def lrs_of(make_scheduler, total: int, lr: float = 1.0) -> np.ndarray:
    """The learning rate each of ``total`` steps uses under ``make_scheduler(optimizer)``."""
    opt = optimkit.SGD([np.zeros(1)], lr=lr)
    sched = make_scheduler(opt)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step([np.zeros(1)])
        sched.step()
    return np.array(out)


def train_with_schedule(data, make_scheduler, epochs: int = 8, lr: float = 3e-3, seed: int = 0):
    """AdamW on the digits MLP with ``make_scheduler(optimizer)`` stepped after every step;
    returns the final validation loss."""
    model = digits.MLP((64, 32, 10), seed=seed)
    opt = optimkit.AdamW(model.params, lr=lr, weight_decay=0.0)
    steps_per_epoch = math.ceil(len(data.y_train) / 64)
    sched = make_scheduler(opt, epochs * steps_per_epoch)

    class Stepping:  # digits.train calls step(grads); the scheduler steps after each
        params = opt.params

        @property
        def lr(self):
            return opt.lr

        def step(self, grads):
            opt.step(grads)
            sched.step()
    digits.train(model, data, lambda p: Stepping(), epochs=epochs, batch_size=64, seed=seed)
    return model.loss(data.X_val, data.y_val)


def schedules_figure(total: int, warmup: int):
    fig, ax = plt.subplots(figsize=(6.4, 2.8), layout="constrained")
    for color, (label, make) in zip(COLORS, {
            "warmup + cosine": lambda o: cosine_scheduler(o, warmup, total),
            "WSD, 20 % decay": lambda o: wsd_scheduler(o, warmup, total, 0.2),
            "constant": lambda o: lr_scheduler.ConstantLR(o, factor=1.0, total_iters=0)}.items()):
        ax.plot(lrs_of(make, total), color=color, label=label)
    ax.set(xlabel="step", ylabel="lr / peak lr")
    ax.legend(fontsize=8)
    return fig


# --- Adam's second moment and a sudden gradient (the LLM recipe's beta_2 = 0.95) --------------

def spike_step(beta2: float, quiet_steps: int = 1000, quiet: float = 1e-3, spike: float = 1.0,
               beta1: float = 0.9, eps: float = 1e-8) -> float:
    """The size of Adam's step (in units of lr) when a gradient of size ``spike`` arrives after
    ``quiet_steps`` of size ``quiet``: the second moment still remembers the quiet."""
    p = np.zeros(1)
    opt = optimkit.Adam([p], lr=1.0, betas=(beta1, beta2), eps=eps)
    rng = np.random.default_rng(0)
    for _ in range(quiet_steps):
        opt.step([quiet * rng.choice([-1.0, 1.0], size=1)])
    before = p.copy()
    opt.step([np.array([spike])])
    return float(abs(p - before)[0])


# --- memory per parameter --------------------------------------------------------------------

MEMORY_ENTRANTS = {
    "SGD with momentum": lambda p: optimkit.SGD(p, lr=1e-2, momentum=0.9),
    "AdamW": lambda p: optimkit.AdamW(p),
    "Adafactor": lambda p: optimkit.Adafactor(p),
    "Lion": lambda p: beyond.Lion(p),
    "Muon": lambda p: optimkit.Muon(p),
    "Schedule-free AdamW": schedule_free,
    "Shampoo": lambda p: beyond.Shampoo(p),
}


def state_floats(make_optimizer, shape=(256, 128), steps: int = 2) -> float:
    """Floats of state per parameter, counted in what the optimizer keeps (``opt.state``)
    after ``steps`` steps on a ``shape`` matrix."""
    rng = np.random.default_rng(0)
    W = rng.normal(size=shape)
    opt = make_optimizer([W])
    for _ in range(steps):
        opt.step([rng.normal(size=shape)])
    total = sum(v.size for state in opt.state for v in state.values()
                if isinstance(v, np.ndarray) and v.dtype.kind == "f")
    return total / W.size


def memory_rows(shape=(256, 128), params_billion: float = 7.0) -> list[list]:
    """One row per optimizer: state floats per parameter (measured on a ``shape`` matrix),
    state bytes per parameter in fp32, and the whole training footprint per parameter under
    mixed precision (bf16 weights and gradients, fp32 master weights: 2 + 2 + 4 bytes, plus
    the state in fp32), with what that is for a model of ``params_billion`` billion
    parameters. The 8-bit row is AdamW's two moments stored in 1 byte each with one fp32
    scale per block of 2,048 (block-wise quantisation)."""
    rows = []
    fixed = 2 + 2 + 4
    for label, make in MEMORY_ENTRANTS.items():
        floats = state_floats(make, shape)
        rows.append([label, floats, 4 * floats, fixed + 4 * floats,
                     (fixed + 4 * floats) * params_billion * 1e9 / 2 ** 30])
    eight_bit = 2 * (1 + 4 / 2048)
    rows.append(["AdamW, 8-bit states", 2.0, eight_bit, fixed + eight_bit,
                 (fixed + eight_bit) * params_billion * 1e9 / 2 ** 30])
    return rows


# --- weight averaging on a noisy landscape ---------------------------------------------------

def averaged_losses(landscape, lr: float = 0.02, steps: int = 600, noise: float = 2.0,
                    decay: float = 0.98, swa_start: int = 500, seed: int = 0) -> dict:
    """SGD with noisy gradients, and two averages of its iterates (optimkit.swa_utils):
    an EMA and SWA's uniform average from ``swa_start`` on. The losses at the end."""
    from optimkit import swa_utils
    point = np.array(landscape.start, dtype=np.float64)
    opt = optimkit.SGD([point], lr=lr)
    ema = swa_utils.AveragedModel([point], multi_avg_fn=swa_utils.get_ema_multi_avg_fn(decay))
    swa = swa_utils.AveragedModel([point])
    rng = np.random.default_rng(seed)
    for k in range(steps):
        opt.step([landscape.grad(point) + noise * rng.normal(size=2)])
        ema.update_parameters([point])
        if k >= swa_start:
            swa.update_parameters([point])
    return {"last iterate": landscape(point), "EMA": landscape(ema.module[0]),
            "SWA": landscape(swa.module[0])}


def key(label: str) -> str:
    """A glue name from a legend label: "Schedule-free AdamW" -> "schedule_free_adamw"."""
    return "_".join(label.lower().replace("-", " ").replace("+", " ").split())


def landscape_race(landscape, steps: int = 500) -> dict:
    return {label: landscapes.run(landscape, make, steps=steps)
            for label, make in landscape_entrants().items()}
