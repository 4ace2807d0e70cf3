r"""Learning-rate schedules equal to ``torch.optim.lr_scheduler`` (and optax).

Every factory returns a pure function ``schedule(step) -> float``: the learning
rate to use at optimizer step ``step`` (counted from 0).  That is the value a
torch scheduler holds after ``step`` calls of ``sched.step()``, because torch's
constructor already makes the first step.  torch computes most schedules
recursively (multiplying the current lr); the closed forms here agree with it
to rounding (a few 1e-15 relative over 1,000 steps) as long as nothing else changes the lr.

The returned functions carry a readable ``__name__``/``__qualname__`` such as
``cosine(lr=0.1, total_steps=100)`` (arguments left at their default are not
shown), a ``hparams`` dict with every argument, and ``total_steps``: the
schedule's natural horizon for plots, or ``None`` when it has none.

:class:`ReduceLROnPlateau` is the one stateful schedule: it reacts to a metric.
The classes under torch's names, stepping an optimizer's parameter groups, are in
:mod:`optimkit.lr_scheduler` (whose ``ReduceLROnPlateau`` counts with this one's code).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from . import validate

__all__ = [
    "constant",
    "step_decay",
    "exponential",
    "cosine",
    "cosine_warm_restarts",
    "linear_warmup",
    "warmup_cosine",
    "one_cycle",
    "ReduceLROnPlateau",
]


# --- private helpers -------------------------------------------------------


def _step(step) -> int:
    return validate.non_negative_int("step", step)


def _lr_min(lr_min, lr, lr_name: str = "lr") -> float:
    # A "minimum" above the starting lr would turn the decay into a climb;
    # torch accepts it silently, we refuse it.
    lr_min = validate.non_negative("lr_min", lr_min)
    if lr_min > lr:
        raise ValueError(f"lr_min must be <= {lr_name} ({lr!r}), got {lr_min!r}")
    return lr_min


def _named(fn, name: str, args: dict, defaults: dict | None = None, total_steps=None):
    """Give ``fn`` a readable name showing its non-default arguments."""
    defaults = defaults or {}
    # A wrapped schedule shows as its own name, numbers as their repr.
    shown = ", ".join(
        f"{k}={v.__name__ if callable(v) else repr(v)}"
        for k, v in args.items()
        if k not in defaults or v != defaults[k]
    )
    fn.__name__ = fn.__qualname__ = f"{name}({shown})"
    fn.hparams = dict(args)
    fn.total_steps = total_steps
    return fn


# --- schedules ---------------------------------------------------------------


def constant(lr):
    r"""Constant learning rate.

    .. math:: \eta_t = \eta_0

    Equals ``torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1.0)`` and
    ``optax.constant_schedule(lr)``.
    """
    lr = validate.positive("lr", lr)

    def schedule(step):
        _step(step)
        return lr

    return _named(schedule, "constant", {"lr": lr})


def step_decay(lr, step_size, gamma=0.1):
    r"""Multiply the lr by ``gamma`` every ``step_size`` steps.

    .. math:: \eta_t = \eta_0 \, \gamma^{\lfloor t / s \rfloor}

    Equals ``torch.optim.lr_scheduler.StepLR(opt, step_size, gamma)``.
    ``gamma > 1`` is allowed (a staircase that grows).
    """
    lr = validate.positive("lr", lr)
    step_size = validate.positive_int("step_size", step_size)
    gamma = validate.positive("gamma", gamma)

    def schedule(step):
        return lr * gamma ** (_step(step) // step_size)

    return _named(
        schedule, "step_decay", {"lr": lr, "step_size": step_size, "gamma": gamma}, {"gamma": 0.1}
    )


def exponential(lr, gamma):
    r"""Multiply the lr by ``gamma`` every step.

    .. math:: \eta_t = \eta_0 \, \gamma^{t}

    Equals ``torch.optim.lr_scheduler.ExponentialLR(opt, gamma)``.
    """
    lr = validate.positive("lr", lr)
    gamma = validate.positive("gamma", gamma)

    def schedule(step):
        return lr * gamma ** _step(step)

    return _named(schedule, "exponential", {"lr": lr, "gamma": gamma})


def cosine(lr, total_steps, lr_min=0.0):
    r"""Cosine annealing from ``lr`` to ``lr_min`` over ``total_steps`` steps.

    .. math::
        \eta_t = \eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})
                 \left(1 + \cos\left(\pi \, \min(t, T) / T\right)\right)

    For :math:`t \le T` this equals
    ``torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps,
    eta_min=lr_min)``.  Past ``total_steps`` we **clamp at** ``lr_min``, like
    ``optax.cosine_decay_schedule``.  torch's ``CosineAnnealingLR`` does not
    clamp: it keeps following the cosine, so the lr climbs back to ``lr`` at
    :math:`2T` and repeats with period :math:`2T`; that form is
    :class:`optimkit.lr_scheduler.CosineAnnealingLR` (both are kept: the same curve up to
    :math:`T`, to rounding).  For restarts on purpose use :func:`cosine_warm_restarts`.
    """
    lr = validate.positive("lr", lr)
    total_steps = validate.positive_int("total_steps", total_steps)
    lr_min = _lr_min(lr_min, lr)

    def schedule(step):
        t = min(_step(step), total_steps)  # the clamp
        # Same operation order as torch's closed form, so it agrees to the last bits.
        return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * t / total_steps)) / 2

    return _named(
        schedule,
        "cosine",
        {"lr": lr, "total_steps": total_steps, "lr_min": lr_min},
        {"lr_min": 0.0},
        total_steps=total_steps,
    )


def cosine_warm_restarts(lr, period, period_mult=1, lr_min=0.0):
    r"""Cosine annealing restarted every cycle (SGDR), cycles growing by ``period_mult``.

    With :math:`T_i = T_0 \, m^i` the length of cycle :math:`i` and
    :math:`t_{cur}` the steps since the last restart:

    .. math::
        \eta_t = \eta_{\min} + \tfrac12(\eta_0 - \eta_{\min})
                 \left(1 + \cos\left(\pi \, t_{cur} / T_i\right)\right)

    Equals ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=period,
    T_mult=period_mult, eta_min=lr_min)`` stepped with integer steps.  At
    :math:`t_{cur} = T_i` the cycle has already restarted, so ``lr_min`` itself
    is never returned (period 4: 0.1, 0.0854, 0.05, 0.0146, 0.1, ...).
    """
    lr = validate.positive("lr", lr)
    period = validate.positive_int("period", period)
    period_mult = validate.positive_int("period_mult", period_mult)
    lr_min = _lr_min(lr_min, lr)

    def schedule(step):
        t_cur, t_i = _step(step), period
        if period_mult == 1:
            t_cur %= period
        else:
            while t_cur >= t_i:  # O(log step): cycles grow geometrically
                t_cur -= t_i
                t_i *= period_mult
        return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2

    return _named(
        schedule,
        "cosine_warm_restarts",
        {"lr": lr, "period": period, "period_mult": period_mult, "lr_min": lr_min},
        {"period_mult": 1, "lr_min": 0.0},
    )


def linear_warmup(schedule, warmup_steps, start_factor=0.0):
    r"""Scale another schedule by a factor rising linearly to 1 over ``warmup_steps``.

    .. math::
        \eta_t = s(t) \cdot
        \begin{cases}
            f + (1 - f)\, t / W & t < W \\
            1 & t \ge W
        \end{cases}

    The wrapped schedule :math:`s` sees the **raw** step :math:`t` (it is not
    shifted by ``warmup_steps``), so ``linear_warmup(cosine(lr, T), W)`` still
    ends at step ``T``, like torch's ``ChainedScheduler([LinearLR(...),
    CosineAnnealingLR(...)])``.  ``linear_warmup(constant(lr), W, f)`` equals
    ``torch.optim.lr_scheduler.LinearLR(opt, start_factor=f, end_factor=1,
    total_iters=W)``; torch requires :math:`f > 0`, here :math:`f = 0` (start
    from zero) is allowed and is the default.  For optax's shape (linear from 0
    to the peak, then a cosine over the remaining steps) use
    :func:`warmup_cosine`.
    """
    if not callable(schedule):
        raise TypeError(f"schedule must be a schedule function, got {type(schedule).__name__}")
    warmup_steps = validate.non_negative_int("warmup_steps", warmup_steps)
    start_factor = validate.in_unit_interval("start_factor", start_factor, closed_right=True)

    def warmed(step):
        value = schedule(_step(step))
        if step < warmup_steps:
            # Same operation order as torch's LinearLR closed form.
            value *= start_factor + (1 - start_factor) * step / warmup_steps
        return value

    return _named(
        warmed,
        "linear_warmup",
        {"schedule": schedule, "warmup_steps": warmup_steps, "start_factor": start_factor},
        {"start_factor": 0.0},
        total_steps=getattr(schedule, "total_steps", None),
    )


def warmup_cosine(peak_lr, warmup_steps, total_steps, lr_min=0.0):
    r"""Linear warm-up from 0 to ``peak_lr``, then cosine decay to ``lr_min``.

    With :math:`W` = ``warmup_steps`` and :math:`T` = ``total_steps`` (which
    **includes** the warm-up):

    .. math::
        \eta_t =
        \begin{cases}
            \eta_{\text{peak}} \, t / W & t < W \\
            \eta_{\min} + \tfrac12(\eta_{\text{peak}} - \eta_{\min})
            \left(1 + \cos\left(\pi \, \frac{\min(t, T) - W}{T - W}\right)\right) & t \ge W
        \end{cases}

    Equals ``optax.warmup_cosine_decay_schedule(init_value=0.0,
    peak_value=peak_lr, warmup_steps=warmup_steps, decay_steps=total_steps,
    end_value=lr_min)``: ``peak_lr`` at step ``W``, ``lr_min`` at step ``T``
    and clamped there afterwards.  With ``warmup_steps == total_steps`` there
    is no decay phase and the clamp wins: the lr rises to
    :math:`\eta_{\text{peak}}(W-1)/W` and is ``lr_min`` from step ``W`` on.
    """
    peak_lr = validate.positive("peak_lr", peak_lr)
    warmup_steps = validate.non_negative_int("warmup_steps", warmup_steps)
    total_steps = validate.positive_int("total_steps", total_steps)
    if warmup_steps > total_steps:
        raise ValueError(
            f"warmup_steps must be <= total_steps ({total_steps}) because total_steps "
            f"includes the warm-up, got {warmup_steps}"
        )
    lr_min = _lr_min(lr_min, peak_lr, "peak_lr")
    decay_steps = total_steps - warmup_steps

    def schedule(step):
        t = _step(step)
        if t < warmup_steps:
            return peak_lr * t / warmup_steps
        if t >= total_steps:  # the clamp (also covers decay_steps == 0)
            return lr_min
        frac = (t - warmup_steps) / decay_steps
        return lr_min + (peak_lr - lr_min) * (1 + math.cos(math.pi * frac)) / 2

    return _named(
        schedule,
        "warmup_cosine",
        {"peak_lr": peak_lr, "warmup_steps": warmup_steps, "total_steps": total_steps, "lr_min": lr_min},
        {"lr_min": 0.0},
        total_steps=total_steps,
    )


def one_cycle(max_lr, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
    r"""The 1cycle policy: cosine up to ``max_lr``, then cosine down far below the start.

    With :math:`\eta_{\text{init}} = \eta_{\max} / d`, :math:`\eta_{\text{end}} =
    \eta_{\text{init}} / d_f`, :math:`N` = ``total_steps``, :math:`e = pN - 1`
    (:math:`p` = ``pct_start``) and
    :math:`a(x, y, u) = y + \tfrac12 (x - y)(1 + \cos \pi u)`:

    .. math::
        \eta_t =
        \begin{cases}
            a(\eta_{\text{init}}, \eta_{\max}, t / e) & t \le e \\
            a(\eta_{\max}, \eta_{\text{end}}, (t - e) / (N - 1 - e)) & t > e
        \end{cases}

    Equals ``torch.optim.lr_scheduler.OneCycleLR(opt, max_lr, total_steps,
    pct_start, anneal_strategy='cos', div_factor, final_div_factor,
    three_phase=False)`` (its momentum cycling is not modelled here; the linear and
    three-phase forms and the momentum are in :class:`optimkit.lr_scheduler.OneCycleLR`).  The annealing
    ends at step :math:`N-1`; torch still allows step :math:`N` (where the
    cosine has already turned back up, to about the value at step
    :math:`N-2`) and raises past it, and so does this function: a step above
    ``total_steps`` is a ``ValueError``.  ``pct_start`` must be in [0, 1) and
    ``pct_start * total_steps`` must not be 1 (a zero-length warm-up, where
    torch divides by zero).
    """
    max_lr = validate.positive("max_lr", max_lr)
    total_steps = validate.positive_int("total_steps", total_steps)
    pct_start = validate.in_unit_interval("pct_start", pct_start)
    div_factor = validate.positive("div_factor", div_factor)
    final_div_factor = validate.positive("final_div_factor", final_div_factor)
    # Same float arithmetic as torch, so the two agree bit for bit.
    end_up = float(pct_start * total_steps) - 1
    end_down = total_steps - 1
    if end_up == 0:
        raise ValueError(
            f"pct_start * total_steps must not be 1 (a zero-length warm-up phase), "
            f"got pct_start={pct_start!r}, total_steps={total_steps}"
        )
    initial_lr = max_lr / div_factor
    final_lr = initial_lr / final_div_factor

    def anneal(start, end, pct):
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    def schedule(step):
        t = _step(step)
        if t > total_steps:
            raise ValueError(
                f"step {t} is past total_steps={total_steps}: one_cycle is only defined "
                f"for steps 0..{total_steps} (torch's OneCycleLR raises here too)"
            )
        if t <= end_up:
            return anneal(initial_lr, max_lr, t / end_up)
        return anneal(max_lr, final_lr, (t - end_up) / (end_down - end_up))

    return _named(
        schedule,
        "one_cycle",
        {
            "max_lr": max_lr,
            "total_steps": total_steps,
            "pct_start": pct_start,
            "div_factor": div_factor,
            "final_div_factor": final_div_factor,
        },
        {"pct_start": 0.3, "div_factor": 25.0, "final_div_factor": 1e4},
        total_steps=total_steps,
    )


# --- ReduceLROnPlateau ------------------------------------------------------


class ReduceLROnPlateau:
    r"""Multiply the lr by ``factor`` (< 1) when a metric stops improving.

    Exactly ``torch.optim.lr_scheduler.ReduceLROnPlateau``.  A metric
    :math:`a` is *better* than the best so far :math:`b` when

    .. math::
        \begin{array}{ll}
        \text{min, rel:} & a < b\,(1 - \tau) \\
        \text{min, abs:} & a < b - \tau \\
        \text{max, rel:} & a > b\,(1 + \tau) \\
        \text{max, abs:} & a > b + \tau
        \end{array}

    (:math:`\tau` = ``threshold``).  A better metric becomes the best and resets
    the bad-epoch counter, anything else (including a NaN metric) adds one bad
    epoch.  While cooling down the counter is held at 0.  When it exceeds
    ``patience``:

    .. math:: \eta \leftarrow \max(\eta \cdot \text{factor}, \eta_{\min})

    applied only if it lowers :math:`\eta` by more than ``eps``; then the
    cooldown restarts and the counter resets (even when ``eps`` blocked the
    change).  Note that in ``rel`` mode the threshold scales with
    :math:`b`, so for negative metrics in ``min`` mode a slightly *worse*
    value counts as better (torch does the same).

    The first argument is either a learning rate, or an optimizer-like object
    with an ``lr`` attribute (how optimkit's torch-style optimizers expose
    theirs).  Attached to an optimizer, the lr is read from ``optimizer.lr``
    at every step (so outside changes are respected, as torch reads its
    ``param_groups``) and a reduced lr is written back to ``optimizer.lr``.

    ``step(metric)`` returns the lr after the step; ``lr`` is the current lr.
    ``state_dict()`` holds the counters, hyperparameters and lr.
    ``load_state_dict()`` restores them; when attached, the optimizer owns its
    lr (restore it with the optimizer's own state), as in torch.
    """

    _HPARAMS = ("mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps")
    _COUNTERS = ("num_bad_epochs", "cooldown_counter", "last_epoch")
    _STATE_KEYS = (*_HPARAMS, *_COUNTERS, "best", "lr")

    def __init__(
        self,
        lr_or_optimizer,
        mode="min",
        factor=0.1,
        patience=10,
        threshold=1e-4,
        threshold_mode="rel",
        cooldown=0,
        min_lr=0.0,
        eps=1e-8,
    ):
        if isinstance(lr_or_optimizer, (Real, np.number)):
            self.optimizer = None
            self._lr = validate.positive("lr", lr_or_optimizer)
        elif hasattr(lr_or_optimizer, "lr"):
            self.optimizer = lr_or_optimizer
            validate.positive("optimizer.lr", lr_or_optimizer.lr)
        else:
            raise TypeError(
                "lr_or_optimizer must be a learning rate or an object with an lr "
                f"attribute, got {type(lr_or_optimizer).__name__}"
            )
        min_lr = validate.non_negative("min_lr", min_lr)
        self.set_hyperparameters(mode, factor, patience, threshold, threshold_mode, cooldown, eps)
        self.min_lr = min_lr
        self.best = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs = 0
        self.cooldown_counter = 0
        self.last_epoch = 0

    def set_hyperparameters(self, mode, factor, patience, threshold, threshold_mode, cooldown, eps):
        """Check and set the settings (shared with optimkit.lr_scheduler.ReduceLROnPlateau)."""
        # Validate everything before assigning anything. (min_lr is the caller's: one
        # number here, one per parameter group in optimkit.lr_scheduler.ReduceLROnPlateau.)
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        factor = validate.in_unit_interval("factor", factor)
        patience = validate.non_negative_int("patience", patience)
        threshold = validate.non_negative("threshold", threshold)
        if mode == "min" and threshold_mode == "rel" and threshold >= 1:
            # best * (1 - threshold) <= 0 could never be beaten by a positive metric
            # (and inf * 0 is NaN for the first metric).
            raise ValueError(
                f"threshold must be < 1 with mode='min', threshold_mode='rel', got {threshold!r}"
            )
        cooldown = validate.non_negative_int("cooldown", cooldown)
        eps = validate.non_negative("eps", eps)
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode, self.cooldown = threshold, threshold_mode, cooldown
        self.eps = eps

    @property
    def lr(self) -> float:
        """The current learning rate (read from the optimizer when attached)."""
        return float(self.optimizer.lr) if self.optimizer is not None else self._lr

    def _is_better(self, a: float, best: float) -> bool:
        # Same expressions as torch (1 - threshold is computed first there too).
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return a < best * (1.0 - self.threshold) if rel else a < best - self.threshold
        return a > best * (self.threshold + 1.0) if rel else a > best + self.threshold

    def observe(self, metric) -> bool:
        """Count one epoch's metric; True when the lr is to be reduced now.

        The counters are already reset for the next epoch when it returns True.
        """
        current = float(metric)  # accepts 0-d arrays / tensors, like torch
        self.last_epoch += 1
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
            return True
        return False

    def reduced(self, old: float, min_lr: float) -> float | None:
        """The lr after one reduction of ``old``, or ``None`` when the change is negligible."""
        new = max(old * self.factor, min_lr)
        return new if old - new > self.eps else None  # ignore negligible (or upward) changes

    def step(self, metric) -> float:
        """Record one epoch's metric; returns the lr to use next."""
        if self.observe(metric):
            new = self.reduced(self.lr, self.min_lr)
            if new is not None:
                if self.optimizer is not None:
                    self.optimizer.lr = new
                else:
                    self._lr = new
        return self.lr

    def state_dict(self) -> dict:
        """Counters, hyperparameters and the current lr, as a plain dict."""
        return {key: getattr(self, key) for key in self._STATE_KEYS}

    def load_state_dict(self, state: dict) -> None:
        """Restore from :meth:`state_dict`; checks everything before changing anything."""
        missing = set(self._STATE_KEYS) - set(state)
        unexpected = set(state) - set(self._STATE_KEYS)
        if missing or unexpected:
            raise ValueError(
                f"state has missing keys {sorted(missing)} and unexpected keys {sorted(unexpected)}"
            )
        lr = validate.positive("state['lr']", state["lr"])
        counters = {k: validate.non_negative_int(f"state[{k!r}]", state[k]) for k in self._COUNTERS}
        best = state["best"]
        if not isinstance(best, (Real, np.number)) or isinstance(best, bool):
            raise ValueError(f"state['best'] must be a number (inf before any metric), got {best!r}")
        min_lr = validate.non_negative("state['min_lr']", state["min_lr"])
        self.set_hyperparameters(**{k: state[k] for k in self._HPARAMS if k != "min_lr"})
        self.min_lr = min_lr
        self.best = float(best)
        for key, value in counters.items():
            setattr(self, key, value)
        if self.optimizer is None:
            self._lr = lr

    def __repr__(self) -> str:
        return (
            f"ReduceLROnPlateau(lr={self.lr!r}, mode={self.mode!r}, factor={self.factor!r}, "
            f"patience={self.patience}, best={self.best!r}, num_bad_epochs={self.num_bad_epochs})"
        )
