r"""Weight averaging, as ``torch.optim.swa_utils``: :class:`AveragedModel` (SWA, EMA) and :class:`SWALR`.

In optimkit a model is its list of parameter arrays, so :class:`AveragedModel` keeps an
averaged copy of that list::

    swa = AveragedModel([W, b])                     # SWA: the running mean of the iterates
    ema = AveragedModel([W, b], multi_avg_fn=get_ema_multi_avg_fn(0.999))
    sched = SWALR(opt, swa_lr=0.05, anneal_epochs=10)
    for epoch in range(epochs):
        ...                                         # opt.step(grads) over the epoch
        if epoch >= swa_start:
            swa.update_parameters([W, b])
            sched.step()
    W_swa, b_swa = swa.module                       # the averaged parameters

The averages are computed with torch's operations on the CPU (its default SWA average
:math:`\bar W + (W - \bar W)/(n+1)`, its ``lerp`` for EMA), so they equal torch's to the last
bits or within an ulp (torch's vectorised ``lerp`` may fuse a multiply-add). There is no
``update_bn``: optimkit has no batch-norm statistics to recompute.
"""

from __future__ import annotations

import math

import numpy as np

from . import validate
from .lr_scheduler import LRScheduler

__all__ = ["AveragedModel", "SWALR", "get_ema_multi_avg_fn", "get_swa_multi_avg_fn",
           "get_ema_avg_fn", "get_swa_avg_fn"]


def _decay(decay) -> float:
    return validate.in_unit_interval("decay", decay, closed_right=True)


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """``start`` moved to ``start + weight (end - start)`` in place, in torch's two forms."""
    if abs(weight) < 0.5:
        start += weight * (end - start)
    else:  # torch's lerp switches form for large weights, so that weight 1 gives end exactly
        start[...] = end - (end - start) * (1 - weight)


def get_ema_multi_avg_fn(decay=0.999):
    r"""The exponential moving average over a list of arrays, updated in place (torch's form).

    .. math::
        W_0^{\text{EMA}} = W_0^{\text{model}}, \qquad
        W_{t+1}^{\text{EMA}} = \text{decay} \times W_t^{\text{EMA}}
                               + (1 - \text{decay}) \times W_{t+1}^{\text{model}}

    computed as torch does, ``lerp(ema, model, 1 - decay)``; ``decay`` in [0, 1].
    """
    decay = _decay(decay)

    def ema_update(ema_param_list, current_param_list, _num_averaged) -> None:
        for p_ema, p_model in zip(ema_param_list, current_param_list, strict=True):
            _lerp_(p_ema, p_model, 1 - decay)

    return ema_update


def get_swa_multi_avg_fn():
    r"""The running mean over a list of arrays, updated in place: ``lerp(avg, model, 1/(n+1))``.

    .. math:: \bar W_{n+1} = \bar W_n + \frac{W - \bar W_n}{n + 1}

    As in torch, where ``AveragedModel`` passes :math:`n` as an integer tensor, the weight
    :math:`1/(n+1)` is a float32 number (torch's default dtype): this form is then only
    float32-accurate in its weight, unlike the default average (:func:`get_swa_avg_fn`).
    """

    def swa_update(averaged_param_list, current_param_list, num_averaged) -> None:
        weight = float(np.float32(1) / np.float32(num_averaged + 1))
        for p_avg, p_model in zip(averaged_param_list, current_param_list, strict=True):
            _lerp_(p_avg, p_model, weight)

    return swa_update


def get_ema_avg_fn(decay=0.999):
    r"""The EMA of one array, returned: :math:`\text{decay}\, W^{\text{EMA}} + (1 - \text{decay})\, W`."""
    decay = _decay(decay)

    def ema_update(ema_param, current_param, _num_averaged):
        return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn():
    r"""The running mean of one array, returned: :math:`\bar W + (W - \bar W)/(n + 1)`.

    This is what :class:`AveragedModel` uses by default (torch's default on the CPU).
    """

    def swa_update(averaged_param, current_param, num_averaged):
        return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


def _matching(name: str, arrays, reference: list) -> list[np.ndarray]:
    """``arrays`` as a list of arrays with the count and shapes of ``reference``."""
    if isinstance(arrays, np.ndarray):
        raise TypeError(f"{name} must be a list of arrays (the model's parameters), got a single "
                        f"array; wrap it: [array]")
    arrays = [np.asarray(a) for a in arrays]
    if len(arrays) != len(reference):
        raise ValueError(f"{name} has {len(arrays)} arrays, the averaged model {len(reference)}")
    for i, (a, r) in enumerate(zip(arrays, reference)):
        if a.shape != r.shape:
            raise ValueError(f"{name}[{i}] has shape {a.shape}, the averaged parameter {r.shape}")
    return arrays


class AveragedModel:
    r"""A running average of a model's parameters, as ``torch.optim.swa_utils.AveragedModel``.

    ``model`` is the list of parameter arrays; :attr:`module` is the averaged copy (torch's
    name for the averaged model).  The first :meth:`update_parameters` copies the parameters;
    each later one averages them in, with ``n`` = :attr:`n_averaged` models already averaged:

    .. math::
        \text{SWA (default):}\quad \bar W \leftarrow \bar W + \frac{W - \bar W}{n + 1}
        \qquad
        \text{EMA:}\quad \bar W \leftarrow \text{decay}\,\bar W + (1 - \text{decay})\,W

    ``avg_fn(avg, current, n)`` returns one averaged array; ``multi_avg_fn(avgs, currents,
    n)`` updates the list in place (:func:`get_ema_multi_avg_fn`); give one at most.
    ``use_buffers`` has no meaning here: a NumPy model has parameters only (no batch-norm
    buffers), so both values average exactly what torch averages for a model without
    buffers.  ``device`` must be ``None`` (NumPy arrays live in host memory).
    """

    def __init__(self, model, device=None, avg_fn=None, multi_avg_fn=None, use_buffers=False):
        params = validate.float_params(model)
        if avg_fn is not None and multi_avg_fn is not None:
            raise ValueError("Only one of avg_fn and multi_avg_fn should be provided")
        for name, fn in (("avg_fn", avg_fn), ("multi_avg_fn", multi_avg_fn)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be a function, got {type(fn).__name__}")
        if device is not None:
            raise ValueError(f"device must be None: NumPy arrays have no device, got {device!r}")
        self.module = [np.array(p, copy=True) for p in params]
        self.n_averaged = 0
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = bool(use_buffers)

    def parameters(self) -> list[np.ndarray]:
        """The averaged parameters (the arrays themselves)."""
        return self.module

    def update_parameters(self, model) -> None:
        """Average the current parameters ``model`` (the same list of arrays) in."""
        current = _matching("model", model, self.module)
        if self.n_averaged == 0:
            for p_avg, p_model in zip(self.module, current):
                p_avg[...] = p_model
        elif self.multi_avg_fn is not None:
            self.multi_avg_fn(self.module, current, self.n_averaged)
        else:
            avg_fn = self.avg_fn if self.avg_fn is not None else get_swa_avg_fn()
            for p_avg, p_model in zip(self.module, current):
                p_avg[...] = avg_fn(p_avg, p_model, self.n_averaged)
        self.n_averaged += 1

    def state_dict(self) -> dict:
        """The averaged parameters and ``n_averaged`` (the averaging functions are not saved, as in torch)."""
        return {"module": [p.copy() for p in self.module], "n_averaged": self.n_averaged}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore :meth:`state_dict`; checks everything before changing anything."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"module", "n_averaged"}:
            raise ValueError("state_dict must be a dict with 'module' and 'n_averaged', as state_dict() returns")
        saved = _matching("state_dict['module']", state_dict["module"], self.module)
        n = validate.non_negative_int("n_averaged", state_dict["n_averaged"])
        for p, s in zip(self.module, saved):
            p[...] = s
        self.n_averaged = n

    def __repr__(self) -> str:
        shapes = ", ".join(str(p.shape) for p in self.module)
        return f"AveragedModel([{shapes}], n_averaged={self.n_averaged})"


class SWALR(LRScheduler):
    r"""Anneal every group's lr to a constant ``swa_lr``, as ``torch.optim.swa_utils.SWALR``.

    Over ``anneal_epochs`` steps the lr moves from where it is to ``swa_lr``, then stays:

    .. math::
        \eta_t = \alpha_t\,\eta_{swa} + (1 - \alpha_t)\,\eta_0, \qquad
        \alpha_t = \begin{cases} \tfrac12\left(1 - \cos(\pi\,\tau_t)\right) & \text{cos} \\
                                 \tau_t & \text{linear} \end{cases},
        \qquad \tau_t = \min(1, t / \max(1, \text{anneal\_epochs}))

    computed as torch does, recursively from the group's current lr (the value it would have
    started from is recovered from the previous step's :math:`\alpha`), so it takes over
    from whatever scheduler ran before.  ``swa_lr`` is one value or one per group.
    """

    def __init__(self, optimizer, swa_lr, anneal_epochs=10, anneal_strategy="cos", last_epoch=-1):
        validate.scheduled_optimizer(optimizer)
        swa_lrs = validate.per_group("swa_lr", swa_lr, optimizer, validate.non_negative)
        anneal_strategy = validate.one_of("anneal_strategy", anneal_strategy, ("cos", "linear"))
        anneal_epochs = validate.non_negative_int("anneal_epochs", anneal_epochs)
        for value, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = value
        self._anneal_strategy = anneal_strategy
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    def anneal_func(self, t: float) -> float:
        """The fraction :math:`\\alpha` of the way to ``swa_lr`` at progress ``t`` in [0, 1]."""
        if self._anneal_strategy == "cos":
            return (1 - math.cos(math.pi * t)) / 2
        return t

    @staticmethod
    def _start_lr(lr, swa_lr, alpha):
        return swa_lr if alpha == 1 else (lr - alpha * swa_lr) / (1 - alpha)

    def get_lr(self):
        self._warn_outside_step()
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_alpha = self.anneal_func(max(0, min(1, (step - 1) / max(1, self.anneal_epochs))))
        alpha = self.anneal_func(max(0, min(1, step / max(1, self.anneal_epochs))))
        return [group["swa_lr"] * alpha + self._start_lr(group["lr"], group["swa_lr"], prev_alpha) * (1 - alpha)
                for group in self.optimizer.param_groups]

    def _check_state(self, state: dict) -> None:
        validate.one_of("_anneal_strategy", state["_anneal_strategy"], ("cos", "linear"))
