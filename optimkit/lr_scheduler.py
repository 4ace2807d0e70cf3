r"""Every ``torch.optim.lr_scheduler`` class, under torch's name, stepping optimkit optimizers.

::

    opt = optimkit.SGD(params, lr=0.1, momentum=0.9)
    sched = optimkit.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    for epoch in range(100):
        opt.step(grads)
        sched.step()                   # writes every group's "lr", as torch does
    sched.get_last_lr()                # one lr per parameter group

Semantics are torch 2.13's to the operation: the same recursive updates (most
schedulers multiply the *current* ``group["lr"]``, so an outside change to it
is kept), ``initial_lr`` set in every group, ``base_lrs``, ``last_epoch``
(-1 before the constructor's own first step), the closed form used when a
deprecated ``step(epoch)`` is given, ``SequentialLR``'s restart of each
scheduler at its milestone, and ``state_dict()`` holding the same keys as
torch's (lambdas are kept out as torch keeps them out: only a callable
object's ``__dict__`` is saved).  Over 1,000 steps every lr equals torch's bit
for bit (the tests say so).

The rules are written with :math:`\eta_t` the lr after ``t`` calls of
``step()`` (the constructor makes call 0) and :math:`\eta_0` the group's
``initial_lr``.

For the schedule as a pure function of the step (a closed form, no optimizer)
see :mod:`optimkit.schedules`; where both exist they agree to rounding, except
that :func:`optimkit.schedules.cosine` clamps at ``lr_min`` past its horizon
while :class:`CosineAnnealingLR` keeps following the cosine, as torch's does.

Differences from torch: where torch's recursion rounds a schedule that reaches 0 to a
tiny negative lr (``LinearLR(opt, 0.9, 0.0, 100)`` ends at -8.6e-18), 0.0 is written, since
optimkit's optimizers refuse a negative lr; arguments are checked when the scheduler is built,
with a message naming the argument (torch accepts some that fail later, e.g.
``ConstantLR(factor=0)`` divides by zero at ``total_iters``); no warning when
``step()`` is called before the optimizer's ``step()`` (torch patches the
optimizer's ``step`` to detect it; optimkit leaves the optimizer alone).
"""

from __future__ import annotations

import copy
import math
import types
import warnings
from bisect import bisect_right
from collections import Counter
from numbers import Real

import numpy as np

from . import schedules, validate

__all__ = [
    "LRScheduler",
    "LambdaLR",
    "MultiplicativeLR",
    "StepLR",
    "MultiStepLR",
    "ConstantLR",
    "LinearLR",
    "ExponentialLR",
    "PolynomialLR",
    "CosineAnnealingLR",
    "CyclicLR",
    "OneCycleLR",
    "CosineAnnealingWarmRestarts",
    "SequentialLR",
    "ChainedScheduler",
    "ReduceLROnPlateau",
]

EPOCH_DEPRECATION_WARNING = (
    "step(epoch) is deprecated in torch (and here): it sets last_epoch and uses the closed "
    "form where there is one. Call step() without arguments."
)


# --- argument checks (candidates for optimkit.validate) ------------------------------


# --- the group values, copied so nothing aliases (a 0-d array lr is mutable) -----------


def _copy(value):
    return value.copy() if isinstance(value, np.ndarray) else value


def _values(optimizer, key: str) -> list:
    return [_copy(group[key]) for group in optimizer.param_groups]


def _set(group: dict, key: str, value) -> None:
    if isinstance(group[key], np.ndarray):
        group[key][...] = value  # keep the caller's array, as torch fills a tensor lr
    else:
        group[key] = value


ROUNDING = 1e-12
"""A negative lr within this fraction of the group's lr scale is rounding residue: written as 0."""


def _written(lr, group: dict):
    """torch's value, except the residue of a schedule reaching 0 from above.

    torch's recursive forms can end a step below zero by rounding (``LinearLR(opt, 0.9, 0.0,
    100)`` reaches -8.6e-18); torch's optimizers step with it, optimkit's refuse a negative lr,
    so that residue is written as 0.0 (a difference of 1e-17 in the lr). A really negative lr
    (a lambda's, say) is written as it is, and the optimizer's step refuses it by name.
    """
    if isinstance(lr, (float, np.floating)) and lr < 0:
        scale = max(abs(float(group["lr"])), abs(float(group.get("initial_lr", 0.0))))
        if -lr <= ROUNDING * scale:
            return 0.0
    return lr


def _set_momentum(group: dict, use_beta1: bool, momentum) -> None:
    if use_beta1:
        group["betas"] = (momentum, *group["betas"][1:])
    else:
        group["momentum"] = momentum


def _momentum_key(optimizer) -> bool:
    """True when the optimizer's momentum is ``betas[0]``, False when it is ``momentum``."""
    defaults = getattr(optimizer, "defaults", {})
    if "momentum" not in defaults and "betas" not in defaults:
        raise ValueError(f"cycle_momentum=True needs an optimizer with momentum or betas; "
                         f"{type(optimizer).__name__} has neither: pass cycle_momentum=False")
    return "betas" in defaults


# --- base class --------------------------------------------------------------------


class LRScheduler:
    """Base class, as ``torch.optim.lr_scheduler.LRScheduler``.

    A subclass defines :meth:`get_lr` (the next lrs, computed while
    ``last_epoch`` has already been advanced) and, where torch has one,
    ``_get_closed_form_lr``.  Building a scheduler with ``last_epoch=-1``
    sets ``initial_lr`` in every group that has none and makes the first
    step; resuming with ``last_epoch >= 0`` needs ``initial_lr`` in every
    group (a ``KeyError``, as in torch).
    """

    _get_lr_called_within_step = False
    _is_initial = False

    def __init__(self, optimizer, last_epoch=-1):
        self.optimizer = validate.scheduled_optimizer(optimizer)
        last_epoch = validate.last_epoch(last_epoch)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", _copy(group["lr"]))
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"param 'initial_lr' is not specified in param_groups[{i}] when "
                                   f"resuming scheduler with last_epoch >= 0: load the optimizer's "
                                   f"state first, or start with last_epoch=-1")
        self.base_lrs = _values(optimizer, "initial_lr")
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self) -> None:
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            self._is_initial = False

    def get_lr(self) -> list:
        raise NotImplementedError

    def get_last_lr(self) -> list:
        """The lrs the last step wrote, one per parameter group."""
        return self._last_lr

    def _warn_outside_step(self) -> None:
        if not self._get_lr_called_within_step:
            warnings.warn("To get the last learning rate computed by the scheduler, use "
                          "get_last_lr().", UserWarning, stacklevel=3)

    def step(self, epoch=None) -> None:
        """Advance one step and write every group's lr (``epoch``: deprecated, as in torch)."""
        self._step_count += 1
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch=None) -> None:
        self._get_lr_called_within_step = True
        try:
            if epoch is None:
                self.last_epoch += 1
                values = self.get_lr()
            else:
                self.last_epoch = epoch
                closed = getattr(self, "_get_closed_form_lr", None)
                values = closed() if closed is not None else self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            _set(group, "lr", _written(lr, group))
        self._last_lr = _values(self.optimizer, "lr")

    # --- state ---

    _APART: str | None = None
    """The attribute whose items are saved in their own form (functions, member schedulers)."""

    def _save_item(self, item):
        return _fields(item)

    def _load_item(self, item, saved) -> None:
        if saved is not None and item is not None:
            item.__dict__.update(saved)

    def _check_state(self, state: dict) -> None:
        """Refuse a saved state whose values this scheduler cannot take (before any change)."""

    def _after_load(self) -> None:
        """Rebuild what is derived from the loaded state."""

    def state_dict(self) -> dict:
        """Everything but the optimizer, as a deep copy: torch's keys. A function is saved as
        ``None``, a callable object as its ``__dict__``, a member scheduler as its state_dict."""
        state = {k: copy.deepcopy(v) for k, v in self.__dict__.items()
                 if k not in ("optimizer", self._APART)}
        if self._APART is not None:
            value = getattr(self, self._APART)
            state[self._APART] = ([self._save_item(v) for v in value] if isinstance(value, list)
                                  else self._save_item(value))
        return state

    def _check_keys(self, state_dict) -> dict:
        if not isinstance(state_dict, dict):
            raise TypeError(f"state_dict must be a dict from state_dict(), got {type(state_dict).__name__}")
        expected = set(self.state_dict())
        missing, unexpected = expected - set(state_dict), set(state_dict) - expected
        if missing or unexpected:
            raise ValueError(f"state_dict was saved by another scheduler: missing keys "
                             f"{sorted(missing)}, unexpected keys {sorted(unexpected)}")
        return copy.deepcopy(state_dict)

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore :meth:`state_dict`'s values (the optimizer's lrs are the optimizer's own state)."""
        state = self._check_keys(state_dict)
        pairs = []
        if self._APART is not None:
            current, saved = getattr(self, self._APART), state.pop(self._APART)
            if not isinstance(current, list):
                current, saved = [current], [saved]
            if not isinstance(saved, list) or len(saved) != len(current):
                raise ValueError(f"state_dict's {self._APART} must be a list of {len(current)} "
                                 f"entries, one per item of this scheduler's, got {saved!r}")
            pairs = list(zip(current, saved))
        self._check_state(state)
        self.__dict__.update(state)
        for item, saved_item in pairs:
            self._load_item(item, saved_item)
        self._after_load()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={getattr(self, 'last_epoch', None)}, " \
               f"last_lr={getattr(self, '_last_lr', None)})"


def _fields(fn):
    """What torch saves of a function-like argument: nothing for a function, a callable
    object's fields."""
    return None if fn is None or isinstance(fn, types.FunctionType) else dict(fn.__dict__)


class _LambdaState(LRScheduler):
    """The two lambda schedulers' argument (torch's rule for functions in the state)."""

    _APART = "lr_lambdas"

    def _set_lambdas(self, optimizer, lr_lambda) -> None:
        n = len(validate.scheduled_optimizer(optimizer).param_groups)
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != n:
                raise ValueError(f"Expected {n} lr_lambdas (one per parameter group), got {len(lr_lambda)}")
            lambdas = list(lr_lambda)
        else:
            lambdas = [lr_lambda] * n
        for fn in lambdas:
            if not callable(fn):
                raise TypeError(f"lr_lambda should be a function, but got {type(fn).__name__}")
        self.optimizer, self.lr_lambdas = optimizer, lambdas


class LambdaLR(_LambdaState):
    r"""The initial lr times a function of the step, as ``torch.optim.lr_scheduler.LambdaLR``.

    .. math:: \eta_t = \eta_0 \cdot \lambda(t)

    ``lr_lambda`` is one function or a list with one per parameter group.
    ``LambdaLR(opt, lambda t: 1.0)`` is :func:`optimkit.schedules.constant`.
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        self._set_lambdas(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        return [base_lr * fn(self.last_epoch) for fn, base_lr in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_LambdaState):
    r"""Multiply the current lr by a function of the step, as ``torch.optim.lr_scheduler.MultiplicativeLR``.

    .. math:: \eta_t = \eta_{t-1} \cdot \lambda(t) \quad (t \ge 1)
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        self._set_lambdas(optimizer, lr_lambda)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial:
            return _values(self.optimizer, "lr")
        return [group["lr"] * fn(self.last_epoch)
                for fn, group in zip(self.lr_lambdas, self.optimizer.param_groups)]


class StepLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` every ``step_size`` steps, as ``torch.optim.lr_scheduler.StepLR``.

    .. math:: \eta_t = \eta_0 \, \gamma^{\lfloor t / \text{step\_size} \rfloor}

    computed recursively (:math:`\eta_t = \gamma\,\eta_{t-1}` when ``step_size``
    divides :math:`t`), so outside changes to the lr are kept.  Closed form:
    :func:`optimkit.schedules.step_decay`.
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = validate.positive_int("step_size", step_size)
        self.gamma = validate.positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return _values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size) for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` at each milestone, as ``torch.optim.lr_scheduler.MultiStepLR``.

    .. math:: \eta_t = \eta_0 \, \gamma^{\,|\{m \in \text{milestones} : m \le t\}|}

    A milestone listed :math:`k` times multiplies by :math:`\gamma^k` (torch
    keeps them in a ``Counter``).
    """

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        try:
            milestones = list(milestones)
        except TypeError:
            raise TypeError(f"milestones must be a list of step indices, got "
                            f"{type(milestones).__name__}") from None
        self.milestones = Counter(validate.non_negative_int(f"milestones[{i}]", m)
                                  for i, m in enumerate(milestones))
        self.gamma = validate.positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch not in self.milestones:
            return _values(self.optimizer, "lr")
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch]
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch) for base_lr in self.base_lrs]


class ConstantLR(LRScheduler):
    r"""Multiply the lr by ``factor`` until step ``total_iters``, as ``torch.optim.lr_scheduler.ConstantLR``.

    .. math::
        \eta_t = \eta_0 \cdot \begin{cases} \text{factor} & t < \text{total\_iters} \\
                                            1 & t \ge \text{total\_iters} \end{cases}

    ``factor`` must be in (0, 1] (torch also accepts 0, then divides by it at ``total_iters``).
    """

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        factor = validate.finite("factor", factor)
        if not 0 < factor <= 1:
            raise ValueError(f"factor must be in (0, 1], got {factor!r}")
        self.factor = factor
        self.total_iters = validate.non_negative_int("total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in self.optimizer.param_groups]
        if self.last_epoch != self.total_iters:
            return _values(self.optimizer, "lr")
        return [group["lr"] * (1.0 / self.factor) for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
                for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    r"""Scale the lr by a factor moving linearly from ``start_factor`` to ``end_factor``,
    as ``torch.optim.lr_scheduler.LinearLR``.

    .. math::
        \eta_t = \eta_0 \left(s + (e - s)\,\frac{\min(t, T)}{T}\right)

    (:math:`s, e` the factors, :math:`T` = ``total_iters``), computed
    recursively as torch does:
    :math:`\eta_t = \eta_{t-1}\bigl(1 + \frac{e - s}{T s + (t - 1)(e - s)}\bigr)` for
    :math:`1 \le t \le T`.  Any ``end_factor`` in [0, 1] (a warm-up when it is
    above ``start_factor``, a decay below).  With ``end_factor=1`` this is
    ``schedules.linear_warmup(schedules.constant(lr), T, s)``.
    """

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5, last_epoch=-1):
        start_factor = validate.finite("start_factor", start_factor)
        if not 0 < start_factor <= 1:
            raise ValueError(f"start_factor must be in (0, 1], got {start_factor!r}")
        self.start_factor = start_factor
        self.end_factor = validate.in_unit_interval("end_factor", end_factor, closed_right=True)
        self.total_iters = validate.positive_int("total_iters", total_iters)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in self.optimizer.param_groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return _values(self.optimizer, "lr")
        change = self.end_factor - self.start_factor
        return [group["lr"] * (1.0 + change / (self.total_iters * self.start_factor
                                                + (self.last_epoch - 1) * change))
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                           * min(self.total_iters, self.last_epoch) / self.total_iters)
                for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    r"""Multiply the lr by ``gamma`` every step, as ``torch.optim.lr_scheduler.ExponentialLR``.

    .. math:: \eta_t = \gamma\,\eta_{t-1} = \eta_0\,\gamma^t

    Closed form: :func:`optimkit.schedules.exponential`.
    """

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = validate.positive("gamma", gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial:  # resuming: the constructor's step does not advance the lr
            return _values(self.optimizer, "lr")
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]


class PolynomialLR(LRScheduler):
    r"""Polynomial decay to 0 over ``total_iters`` steps, as ``torch.optim.lr_scheduler.PolynomialLR``.

    .. math::
        \eta_t = \eta_0 \left(1 - \frac{\min(t, T)}{T}\right)^{p}

    computed recursively:
    :math:`\eta_t = \eta_{t-1}\left(\frac{1 - t/T}{1 - (t-1)/T}\right)^{p}` for :math:`t \le T`.
    """

    def __init__(self, optimizer, total_iters=5, power=1.0, last_epoch=-1):
        self.total_iters = validate.positive_int("total_iters", total_iters)
        self.power = validate.non_negative("power", power)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial or self.last_epoch > self.total_iters:
            return _values(self.optimizer, "lr")
        decay = ((1.0 - self.last_epoch / self.total_iters)
                 / (1.0 - (self.last_epoch - 1) / self.total_iters)) ** self.power
        return [group["lr"] * decay for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * (1.0 - min(self.total_iters, self.last_epoch) / self.total_iters) ** self.power
                for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Cosine annealing, as ``torch.optim.lr_scheduler.CosineAnnealingLR`` (torch's recursive form).

    .. math::
        \eta_{t+1} = \eta_{\min} + (\eta_t - \eta_{\min}) \cdot
        \frac{1 + \cos\left(\frac{(T_{cur}+1) \pi}{T_{max}}\right)}
             {1 + \cos\left(\frac{T_{cur} \pi}{T_{max}}\right)}

    which follows the closed form

    .. math::
        \eta_t = \eta_{\min} + \frac{1}{2}(\eta_{\max} - \eta_{\min}) \left(
            1 + \cos\left(\frac{T_{cur} \pi}{T_{max}}\right) \right)

    with :math:`T_{cur} = t`.  Past :math:`T_{max}` it **does not stop**: the
    lr climbs back to :math:`\eta_{\max}` at :math:`2T_{max}` and repeats with
    period :math:`2T_{max}` (at the bottom, where the ratio would be 0/0, torch
    adds the first step of the climb instead; so does this class).
    :func:`optimkit.schedules.cosine` is the same curve up to :math:`T_{max}` and
    **clamps** at ``lr_min`` afterwards (optax's choice); both are kept, pick the
    one you mean.
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = validate.positive_int("T_max", T_max)
        self.eta_min = validate.non_negative("eta_min", eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        if self._is_initial:
            return _values(self.optimizer, "lr")
        if self._step_count == 1 and self.last_epoch > 0:
            return [self.eta_min + (base_lr - self.eta_min)
                    * (1 + math.cos(self.last_epoch * math.pi / self.T_max)) / 2
                    for base_lr in self.base_lrs]
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:  # at the bottom
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base_lr, group in zip(self.base_lrs, self.optimizer.param_groups)]
        return [(1 + math.cos(math.pi * self.last_epoch / self.T_max))
                / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max))
                * (group["lr"] - self.eta_min) + self.eta_min
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class CyclicLR(LRScheduler):
    r"""Cyclical learning rates (CLR), as ``torch.optim.lr_scheduler.CyclicLR``.

    With :math:`S = s_{up} + s_{down}` steps per cycle, cycle
    :math:`c = \lfloor 1 + t/S \rfloor`, position :math:`x = 1 + t/S - c` and
    :math:`r = s_{up}/S`:

    .. math::
        h = \begin{cases} x / r & x \le r \\ (x - 1)/(r - 1) & x > r \end{cases}
        \qquad
        \eta_t = \eta_{base} + (\eta_{max} - \eta_{base})\, h\, f

    where :math:`f` = ``scale_fn(c)`` (``scale_mode='cycle'``) or
    ``scale_fn(t)`` (``'iterations'``): 1 for ``'triangular'``,
    :math:`1/2^{c-1}` for ``'triangular2'``, :math:`\gamma^{t}` for
    ``'exp_range'``.  With ``cycle_momentum`` the momentum (``momentum``, or
    ``betas[0]`` for Adam-like optimizers) moves the other way:
    :math:`m_t = m_{max} - (m_{max} - m_{base})\, h\, f`.

    The constructor sets each group's lr to ``base_lr``; ``base_lrs`` become
    ``base_lr`` after the first step (which, as in torch, still uses the
    groups' ``initial_lr``).  A ``scale_fn`` function is not saved in
    :meth:`state_dict` (a callable object's fields are).
    """

    def __init__(self, optimizer, base_lr, max_lr, step_size_up=2000, step_size_down=None,
                 mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle",
                 cycle_momentum=True, base_momentum=0.8, max_momentum=0.9, last_epoch=-1):
        validate.scheduled_optimizer(optimizer)
        last_epoch = validate.last_epoch(last_epoch)
        base_lrs = validate.per_group("base_lr", base_lr, optimizer, validate.non_negative)
        max_lrs = validate.per_group("max_lr", max_lr, optimizer, validate.non_negative)
        step_size_up = float(validate.positive_int("step_size_up", step_size_up))
        step_size_down = (step_size_up if step_size_down is None
                          else float(validate.positive_int("step_size_down", step_size_down)))
        if scale_fn is None:
            validate.one_of("mode", mode, ("triangular", "triangular2", "exp_range"))
        elif not callable(scale_fn):
            raise TypeError(f"scale_fn must be a function of one number, got {type(scale_fn).__name__}")
        validate.one_of("scale_mode", scale_mode, ("cycle", "iterations"))
        gamma = validate.positive("gamma", gamma)
        if cycle_momentum:
            use_beta1 = _momentum_key(optimizer)
            base_momentums = validate.per_group("base_momentum", base_momentum, optimizer, validate.non_negative)
            max_momentums = validate.per_group("max_momentum", max_momentum, optimizer, validate.non_negative)
        # Checked: now change the optimizer.
        self.optimizer = optimizer
        if last_epoch == -1:
            for lr, group in zip(base_lrs, optimizer.param_groups):
                _set(group, "lr", lr)
        self.max_lrs = max_lrs
        self.total_size = step_size_up + step_size_down
        self.step_ratio = step_size_up / self.total_size
        self.mode, self.gamma = mode, gamma
        self._scale_fn_custom = scale_fn
        self.scale_mode = scale_mode
        self._init_scale_fn()
        self.cycle_momentum = bool(cycle_momentum)
        if cycle_momentum:
            self.use_beta1 = use_beta1
            self.base_momentums, self.max_momentums = base_momentums, max_momentums
            if last_epoch == -1:
                for m_max, m_base, group in zip(max_momentums, base_momentums, optimizer.param_groups):
                    _set_momentum(group, use_beta1, m_max)
                    group["max_momentum"], group["base_momentum"] = m_max, m_base
        super().__init__(optimizer, last_epoch)
        self.base_lrs = base_lrs

    def _init_scale_fn(self) -> None:
        if self._scale_fn_custom is None:  # the built-in modes fix their scale_mode
            self.scale_mode = "iterations" if self.mode == "exp_range" else "cycle"

    def scale_fn(self, x) -> float:
        """The amplitude scale at cycle (or step) ``x``."""
        if self._scale_fn_custom is not None:
            return self._scale_fn_custom(x)
        if self.mode == "triangular":
            return 1.0
        if self.mode == "triangular2":
            return 1 / (2.0 ** (x - 1))
        return self.gamma ** x

    def get_lr(self):
        self._warn_outside_step()
        cycle = math.floor(1 + self.last_epoch / self.total_size)
        x = 1.0 + self.last_epoch / self.total_size - cycle
        if x <= self.step_ratio:
            scale_factor = x / self.step_ratio
        else:
            scale_factor = (x - 1) / (self.step_ratio - 1)
        scale = self.scale_fn(cycle if self.scale_mode == "cycle" else self.last_epoch)
        lrs = [base_lr + (max_lr - base_lr) * scale_factor * scale
               for base_lr, max_lr in zip(self.base_lrs, self.max_lrs)]
        if self.cycle_momentum:
            for group, m_base, m_max in zip(self.optimizer.param_groups, self.base_momentums,
                                            self.max_momentums):
                _set_momentum(group, self.use_beta1, m_max - (m_max - m_base) * scale_factor * scale)
        return lrs

    _APART = "_scale_fn_custom"

    def _check_state(self, state: dict) -> None:
        validate.one_of("mode", state["mode"], ("triangular", "triangular2", "exp_range"))

    def _after_load(self) -> None:
        self._init_scale_fn()


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy, as ``torch.optim.lr_scheduler.OneCycleLR``.

    Phases end at steps :math:`e_1 = pN - 1` and :math:`e_2 = N - 1`
    (``three_phase``: :math:`e_1 = pN - 1`, :math:`e_2 = 2pN - 2`,
    :math:`e_3 = N - 1`); in the phase from :math:`e_{k-1}` (0 for the first)
    to :math:`e_k` the lr moves from :math:`a` to :math:`b` with
    :math:`u = (t - e_{k-1})/(e_k - e_{k-1})`:

    .. math::
        \text{cos:}\ \ \eta_t = b + \frac{a - b}{2}\left(\cos(\pi u) + 1\right)
        \qquad \text{linear:}\ \ \eta_t = (b - a)\,u + a

    through :math:`\eta_{init} = \eta_{max}/d \to \eta_{max} \to \eta_{init}/d_f`
    (three phases: :math:`\eta_{init} \to \eta_{max} \to \eta_{init} \to
    \eta_{init}/d_f`).  With ``cycle_momentum`` the momentum (``momentum`` or
    ``betas[0]``) moves the other way, ``max_momentum`` to ``base_momentum``
    and back.  Steps ``0 .. total_steps`` are allowed and a further step raises,
    as in torch.  ``cycle_momentum=False`` with ``anneal_strategy='cos'`` and two
    phases is :func:`optimkit.schedules.one_cycle`.
    """

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        validate.scheduled_optimizer(optimizer)
        last_epoch = validate.last_epoch(last_epoch)
        if total_steps is not None:
            total = validate.positive_int("total_steps", total_steps)
        elif epochs is not None and steps_per_epoch is not None:
            total = (validate.positive_int("epochs", epochs)
                     * validate.positive_int("steps_per_epoch", steps_per_epoch))
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        pct_start = validate.in_unit_interval("pct_start", pct_start, closed_right=True)
        anneal_strategy = validate.one_of("anneal_strategy", anneal_strategy, ("cos", "linear"))
        div_factor = validate.positive("div_factor", div_factor)
        final_div_factor = validate.positive("final_div_factor", final_div_factor)
        max_lrs = validate.per_group("max_lr", max_lr, optimizer, validate.positive)
        phases = self._phases(float(pct_start * total), total, bool(three_phase))
        if cycle_momentum:
            use_beta1 = _momentum_key(optimizer)
            max_momentums = validate.per_group("max_momentum", max_momentum, optimizer, validate.non_negative)
            base_momentums = validate.per_group("base_momentum", base_momentum, optimizer, validate.non_negative)
        # Checked: now change the optimizer.
        self.optimizer = optimizer
        self.total_steps = total
        self._schedule_phases = phases
        self._anneal_func_type = anneal_strategy
        if last_epoch == -1:
            for group, lr in zip(optimizer.param_groups, max_lrs):
                group["initial_lr"] = lr / div_factor
                group["max_lr"] = lr
                group["min_lr"] = group["initial_lr"] / final_div_factor
        self.cycle_momentum = bool(cycle_momentum)
        if cycle_momentum:
            self.use_beta1 = use_beta1
            if last_epoch == -1:
                for m_max, m_base, group in zip(max_momentums, base_momentums, optimizer.param_groups):
                    _set_momentum(group, use_beta1, m_max)
                    group["max_momentum"], group["base_momentum"] = m_max, m_base
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _phases(up: float, total: int, three_phase: bool) -> list[dict]:
        def phase(end, lr0, lr1, m0, m1):
            return {"end_step": end, "start_lr": lr0, "end_lr": lr1,
                    "start_momentum": m0, "end_momentum": m1}

        if three_phase:
            phases = [phase(up - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                      phase(2 * up - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                      phase(total - 1, "initial_lr", "min_lr", "max_momentum", "max_momentum")]
        else:
            phases = [phase(up - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                      phase(total - 1, "max_lr", "min_lr", "base_momentum", "max_momentum")]
        start = 0.0
        for i, p in enumerate(phases):  # torch divides by each phase's length
            if p["end_step"] == start:
                raise ValueError(f"phase {i + 1} of OneCycleLR has zero length (pct_start * "
                                 f"total_steps = {up!r}, total_steps = {total}): choose another pct_start")
            start = p["end_step"]
        return phases

    @staticmethod
    def _annealing_cos(start, end, pct):
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    @staticmethod
    def _annealing_linear(start, end, pct):
        return (end - start) * pct + start

    def _anneal(self, start, end, pct):
        if self._anneal_func_type == "cos":
            return self._annealing_cos(start, end, pct)
        return self._annealing_linear(start, end, pct)

    def get_lr(self):
        self._warn_outside_step()
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total steps is "
                             f"{self.total_steps}")
        lrs = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end = phase["end_step"]
                if step <= end or i == len(self._schedule_phases) - 1:
                    pct = (step - start) / (end - start)
                    lrs.append(self._anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct))
                    if self.cycle_momentum:
                        _set_momentum(group, self.use_beta1,
                                      self._anneal(group[phase["start_momentum"]],
                                                   group[phase["end_momentum"]], pct))
                    break
                start = end
        return lrs


class CosineAnnealingWarmRestarts(LRScheduler):
    r"""Cosine annealing with warm restarts (SGDR), as
    ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts``.

    .. math::
        \eta_t = \eta_{min} + \frac{1}{2}(\eta_{max} - \eta_{min})\left(1 +
        \cos\left(\frac{T_{cur}}{T_{i}}\pi\right)\right)

    with :math:`T_{cur}` the steps since the last restart and :math:`T_i` the
    current cycle length (:math:`T_0`, then multiplied by ``T_mult`` at each
    restart).  ``step(epoch)`` with a fractional epoch (e.g. ``epoch + i /
    iters``) is allowed, as in torch.  Closed form for integer steps:
    :func:`optimkit.schedules.cosine_warm_restarts`.
    """

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        self.T_0 = validate.positive_int("T_0", T_0)
        self.T_i = self.T_0
        self.T_mult = validate.positive_int("T_mult", T_mult)
        self.eta_min = validate.non_negative("eta_min", eta_min)
        self.T_cur = validate.last_epoch(last_epoch)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        self._warn_outside_step()
        return [self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base_lr in self.base_lrs]

    def step(self, epoch=None) -> None:
        """One step, or jump to ``epoch`` (may be fractional)."""
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            if not isinstance(epoch, Real) or epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch!r}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log((epoch / self.T_0 * (self.T_mult - 1) + 1), self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        self._get_lr_called_within_step = True
        try:
            values = self.get_lr()
        finally:
            self._get_lr_called_within_step = False
        for group, lr in zip(self.optimizer.param_groups, values, strict=True):
            _set(group, "lr", lr)
        self._last_lr = _values(self.optimizer, "lr")


def _check_members(owner: str, optimizer, schedulers) -> list:
    schedulers = list(schedulers)
    if not schedulers:
        raise ValueError(f"{owner} expects at least one scheduler, but got no scheduler.")
    for i, s in enumerate(schedulers):
        if not hasattr(s, "optimizer"):
            raise TypeError(f"{owner}: the scheduler at index {i} ({type(s).__name__}) has no optimizer")
        if isinstance(s, schedules.ReduceLROnPlateau):
            raise ValueError(f"{owner} does not support ReduceLROnPlateau (its step needs a metric), "
                             f"but got one at index {i}")
        if s.optimizer is not optimizer:
            raise ValueError(f"{owner} expects all schedulers to belong to the same optimizer, but the "
                             f"scheduler at index {i} ({type(s).__name__}) has another one")
    return schedulers


class _Composite(LRScheduler):
    """The schedulers made of schedulers: their states are saved inside its own."""

    _APART = "_schedulers"

    def _save_item(self, item):
        return item.state_dict()

    def _load_item(self, item, saved) -> None:
        item.load_state_dict(saved)


class SequentialLR(_Composite):
    r"""Run schedulers one after another, switching at ``milestones``, as
    ``torch.optim.lr_scheduler.SequentialLR``.

    .. math:: \eta_t = s_k(t - m_k) \quad \text{for } m_k \le t < m_{k+1}

    (:math:`m_0 = 0`): at each milestone the next scheduler starts from its
    own step 0 (torch's ``_update_lr(0)``: its closed form at 0 where it has
    one), from the groups' ``initial_lr``-based ``base_lrs``.  The constructor
    undoes the first step the member schedulers made when they were built.
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        validate.scheduled_optimizer(optimizer)
        schedulers = _check_members("SequentialLR", optimizer, schedulers)
        milestones = [validate.non_negative_int(f"milestones[{i}]", m) for i, m in enumerate(milestones)]
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR expects one milestone fewer than schedulers, got "
                             f"{len(schedulers)} schedulers and {len(milestones)} milestones")
        if milestones != sorted(milestones):
            raise ValueError(f"milestones must be increasing, got {milestones}")
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = validate.last_epoch(last_epoch) + 1
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            _set(group, "lr", group["initial_lr"])
        self.recursive_undo()
        idx = bisect_right(milestones, 0)
        schedulers[idx]._initial_step()
        self._last_lr = schedulers[idx].get_last_lr()

    def recursive_undo(self, sched=None) -> None:
        """Step back every member (and their members) by one: undo their constructors' step."""
        s = self if sched is None else sched
        if hasattr(s, "_schedulers"):
            for member in s._schedulers:
                self.recursive_undo(member)
        elif hasattr(s, "last_epoch"):
            s.last_epoch -= 1

    def step(self) -> None:
        self.last_epoch += 1
        idx = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[idx]
        if idx > 0 and self._milestones[idx - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_Composite):
    r"""Step several schedulers together, as ``torch.optim.lr_scheduler.ChainedScheduler``.

    Each ``step()`` calls every scheduler's ``step()`` in order; since most
    multiply the current lr, their factors compose:
    :math:`\eta_t = \eta_0 \prod_k f_k(t)` for multiplicative schedulers.
    ``ChainedScheduler([LinearLR(opt, f, 1, W), CosineAnnealingLR(opt, T)])``
    is :func:`optimkit.schedules.linear_warmup` of :func:`optimkit.schedules.cosine`.
    """

    def __init__(self, schedulers, optimizer=None):
        schedulers = list(schedulers)
        if not schedulers:
            raise ValueError("ChainedScheduler expects at least one scheduler to be chained, but got no scheduler.")
        optimizer = optimizer if optimizer is not None else getattr(schedulers[0], "optimizer", None)
        self._schedulers = _check_members("ChainedScheduler", optimizer, schedulers)
        self.optimizer = optimizer
        self._last_lr = _values(self._schedulers[-1].optimizer, "lr")

    def step(self) -> None:
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = _values(self._schedulers[-1].optimizer, "lr")


class ReduceLROnPlateau(LRScheduler, schedules.ReduceLROnPlateau):
    r"""Reduce every group's lr when a metric stops improving, as
    ``torch.optim.lr_scheduler.ReduceLROnPlateau``.

    The counting rule is :class:`optimkit.schedules.ReduceLROnPlateau`'s (the
    same code): a metric better than the best so far (by ``threshold``, ``rel``
    or ``abs``) resets the bad-epoch count; more than ``patience`` bad epochs
    (not counting the ``cooldown`` after a reduction) reduces each group

    .. math:: \eta^{(g)} \leftarrow \max(\eta^{(g)} \cdot \text{factor},\ \text{min\_lr}^{(g)})

    when that lowers it by more than ``eps``.  ``min_lr`` is one number or one
    per group.  ``step(metrics)``; :meth:`get_last_lr` and the state layout are
    torch's.
    """

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        validate.scheduled_optimizer(optimizer)
        if isinstance(min_lr, (list, tuple)):
            min_lrs, default_min_lr = validate.per_group("min_lr", min_lr, optimizer, validate.non_negative), None
        else:
            default_min_lr = validate.non_negative("min_lr", min_lr)
            min_lrs = [default_min_lr] * len(optimizer.param_groups)
        self.set_hyperparameters(mode, factor, patience, threshold, threshold_mode, cooldown, eps)
        self.optimizer = optimizer
        self.default_min_lr, self.min_lrs = default_min_lr, min_lrs
        self.last_epoch = 0
        self._last_lr = _values(optimizer, "lr")
        self.mode_worse = math.inf if self.mode == "min" else -math.inf
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def step(self, metrics, epoch=None) -> None:  # type: ignore[override]
        """Record one epoch's metric (a number or 0-d array) and reduce the lrs if it is time."""
        reduce = self.observe(metrics)
        if epoch is not None:
            warnings.warn(EPOCH_DEPRECATION_WARNING, UserWarning, stacklevel=2)
            self.last_epoch = epoch
        if reduce:
            groups = self.optimizer.param_groups
            if len(groups) != len(self.min_lrs):  # a group was added since
                if self.default_min_lr is None:
                    raise RuntimeError(f"The number of param groups in the optimizer ({len(groups)}) "
                                       f"differs from when ReduceLROnPlateau was built "
                                       f"({len(self.min_lrs)}): append to min_lrs for the new groups")
                self.min_lrs = [self.default_min_lr] * len(groups)
            for group, min_lr in zip(groups, self.min_lrs):
                new = self.reduced(float(group["lr"]), min_lr)
                if new is not None:
                    _set(group, "lr", new)
        self._last_lr = _values(self.optimizer, "lr")

    def _check_state(self, state: dict) -> None:
        self.set_hyperparameters(*(state[k] for k in ("mode", "factor", "patience", "threshold",
                                               "threshold_mode", "cooldown", "eps")))

    def _after_load(self) -> None:
        self.mode_worse = math.inf if self.mode == "min" else -math.inf
