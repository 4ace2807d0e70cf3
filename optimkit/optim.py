"""torch.optim-style classes over the pure rules in :mod:`optimkit.rules`.

Names, arguments, defaults and semantics follow ``torch.optim`` 2.13, so code
written against these classes reads like the PyTorch students meet next::

    params = [W, b]                      # float NumPy arrays, updated in place
    opt = optimkit.Adam(params, lr=1e-3)
    for batch in batches:
        grads = loss_and_grads(batch)    # one gradient per parameter array
        opt.step(grads)
    opt.lr = 1e-4                        # schedules write the learning rate here

One parameter group (``opt.param_groups[0]``, torch's layout); per-array state in
``opt.state[i]`` under torch's keys (``exp_avg``, ``exp_avg_sq``, ...).

A gradient of ``None`` skips its array, as torch skips a parameter whose
``.grad`` is ``None``. NaN or infinite gradients are *not* caught: as in torch,
they propagate into that array and its state (and only that one). Guard with
``optimkit.clip_grad_norm(grads, max_norm, error_if_nonfinite=True)``.
"""

from __future__ import annotations

import copy

import numpy as np

from . import rules, validate


class Optimizer:
    """Base class: holds params, one hyperparameter group and per-array state."""

    def __init__(self, params, defaults: dict):
        self._check(defaults)
        self.params = validate.float_params(params)
        self.defaults = dict(defaults)
        self.param_groups = [dict(defaults, params=self.params)]
        self.state: list[dict] = [{} for _ in self.params]

    # Subclasses define these three.
    def _check(self, group: dict) -> None:
        raise NotImplementedError

    def _init_state(self, p: np.ndarray, group: dict) -> dict:
        raise NotImplementedError

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError

    @property
    def lr(self) -> float:
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value) -> None:
        self.param_groups[0]["lr"] = validate.non_negative("lr", value)

    def step(self, grads) -> None:
        """Update every array whose gradient is not ``None``, in place."""
        group = self.param_groups[0]
        self._check(group)  # lr may have been written straight into param_groups
        grads = validate.grads_like(grads, self.params, allow_none=True)
        for p, g, state in zip(self.params, grads, self.state):
            if g is None:
                continue
            if not state:
                state.update(self._init_state(p, group))
            state["step"] += 1
            self._update(p, np.asarray(g), state, group)

    def state_dict(self) -> dict:
        """A deep copy of state and hyperparameters, in torch's layout."""
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        group["params"] = list(range(len(self.params)))
        return {"state": {i: copy.deepcopy(s) for i, s in enumerate(self.state) if s},
                "param_groups": [group]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` saved; checks everything before changing anything."""
        try:
            (group,) = state_dict["param_groups"]
            saved_state = state_dict["state"]
        except (KeyError, TypeError, ValueError):
            raise ValueError("state_dict must have 'state' and exactly one entry in "
                             "'param_groups', as state_dict() returns") from None
        if len(group.get("params", ())) != len(self.params):
            raise ValueError(f"state_dict holds {len(group.get('params', ()))} parameters, "
                             f"this optimizer has {len(self.params)}")
        if set(group) - {"params"} != set(self.defaults):
            raise ValueError(f"state_dict was saved by another optimizer: its settings are "
                             f"{sorted(set(group) - {'params'})}, expected {sorted(self.defaults)}")
        for i, s in saved_state.items():
            for key, value in s.items():
                if isinstance(value, np.ndarray) and value.shape != self.params[i].shape:
                    raise ValueError(f"state[{i}][{key!r}] has shape {value.shape}, "
                                     f"params[{i}] has shape {self.params[i].shape}")
        new_group = {k: v for k, v in group.items() if k != "params"}
        self._check(new_group)
        self.param_groups[0].update(new_group)
        self.state = [copy.deepcopy(saved_state.get(i, {})) for i in range(len(self.params))]

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} (", "Parameter Group 0"]
        lines += [f"    {k}: {v}" for k, v in sorted(self.param_groups[0].items()) if k != "params"]
        return "\n".join(lines + [")"])


class Wrapper:
    """Base for optimizers that wrap another (Lookahead, SAM, clipping, recording losses):
    the learning rate passes through, so a schedule can set it on the wrapper."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    @lr.setter
    def lr(self, value) -> None:
        self.optimizer.lr = value


def _zeros(p):
    return np.zeros_like(p)


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``.

    Update rule: :func:`optimkit.rules.sgd_update`.
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    def _check(self, group):
        rules.check_sgd(group["lr"], group["momentum"], group["dampening"],
                        group["weight_decay"], group["nesterov"])

    def _init_state(self, p, group):
        return {"step": 0, "momentum_buffer": _zeros(p)}

    def _update(self, p, g, state, group):
        rules.sgd_kernel(p, g, state["momentum_buffer"], t=state["step"], lr=group["lr"],
                          momentum=group["momentum"], dampening=group["dampening"],
                          weight_decay=group["weight_decay"], nesterov=group["nesterov"],
                          maximize=group["maximize"])


class Adagrad(Optimizer):
    """AdaGrad, as ``torch.optim.Adagrad``. Update rule: :func:`optimkit.rules.adagrad_update`."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, *, maximize=False):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, maximize=maximize))

    def _check(self, group):
        rules.check_common(group["lr"], group["weight_decay"])
        validate.non_negative("lr_decay", group["lr_decay"])
        validate.non_negative("initial_accumulator_value", group["initial_accumulator_value"])
        validate.positive("eps", group["eps"])

    def _init_state(self, p, group):
        return {"step": 0, "sum": np.full_like(p, group["initial_accumulator_value"])}

    def _update(self, p, g, state, group):
        rules.adagrad_kernel(p, g, state["sum"], t=state["step"], lr=group["lr"],
                              lr_decay=group["lr_decay"], weight_decay=group["weight_decay"],
                              eps=group["eps"], maximize=group["maximize"])


class RMSprop(Optimizer):
    """RMSProp, as ``torch.optim.RMSprop``. Update rule: :func:`optimkit.rules.rmsprop_update`."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    def _check(self, group):
        rules.check_common(group["lr"], group["weight_decay"])
        validate.non_negative("alpha", group["alpha"])
        validate.positive("eps", group["eps"])
        validate.non_negative("momentum", group["momentum"])

    def _init_state(self, p, group):
        state = {"step": 0, "square_avg": _zeros(p)}
        if group["momentum"] > 0:
            state["momentum_buffer"] = _zeros(p)
        if group["centered"]:
            state["grad_avg"] = _zeros(p)
        return state

    def _update(self, p, g, state, group):
        if group["momentum"] > 0:  # momentum may be switched on mid-run, as in torch
            state.setdefault("momentum_buffer", _zeros(p))
        if group["centered"]:
            state.setdefault("grad_avg", _zeros(p))
        rules.rmsprop_kernel(p, g, state["square_avg"], state.get("grad_avg"),
                              state.get("momentum_buffer"), lr=group["lr"],
                              alpha=group["alpha"], eps=group["eps"],
                              weight_decay=group["weight_decay"], momentum=group["momentum"],
                              centered=group["centered"], maximize=group["maximize"])


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam``. Update rule: :func:`optimkit.rules.adam_update`."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False):
        super().__init__(params, dict(lr=lr, betas=rules.check_betas(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _check(self, group):
        rules.check_adam(group["lr"], group["betas"], group["eps"], group["weight_decay"])

    def _init_state(self, p, group):
        state = {"step": 0, "exp_avg": _zeros(p), "exp_avg_sq": _zeros(p)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = _zeros(p)
        return state

    def _update(self, p, g, state, group):
        rules.adam_kernel(p, g, state["exp_avg"], state["exp_avg_sq"],
                           state.get("max_exp_avg_sq"), t=state["step"], lr=group["lr"],
                           betas=group["betas"], eps=group["eps"],
                           weight_decay=group["weight_decay"],
                           decoupled=group["decoupled_weight_decay"],
                           amsgrad=group["amsgrad"], maximize=group["maximize"])


class AdamW(Adam):
    """AdamW (decoupled weight decay), as ``torch.optim.AdamW``.

    Update rule: :func:`optimkit.rules.adamw_update`.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, decoupled_weight_decay=True)


class NAdam(Optimizer):
    """NAdam, as ``torch.optim.NAdam``. Update rule: :func:`optimkit.rules.nadam_update`."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, betas=rules.check_betas(betas), eps=eps,
                                      weight_decay=weight_decay, momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def _check(self, group):
        rules.check_adam(group["lr"], group["betas"], group["eps"], group["weight_decay"])
        validate.non_negative("momentum_decay", group["momentum_decay"])

    def _init_state(self, p, group):
        return {"step": 0, "mu_product": 1.0, "exp_avg": _zeros(p), "exp_avg_sq": _zeros(p)}

    def _update(self, p, g, state, group):
        state["mu_product"] = rules.nadam_kernel(
            p, g, state["exp_avg"], state["exp_avg_sq"], t=state["step"],
            mu_product=state["mu_product"], lr=group["lr"], betas=group["betas"],
            eps=group["eps"], weight_decay=group["weight_decay"],
            momentum_decay=group["momentum_decay"],
            decoupled=group["decoupled_weight_decay"], maximize=group["maximize"])


class RAdam(Optimizer):
    """RAdam, as ``torch.optim.RAdam``. Update rule: :func:`optimkit.rules.radam_update`."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False, *, maximize=False):
        super().__init__(params, dict(lr=lr, betas=rules.check_betas(betas), eps=eps,
                                      weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      maximize=maximize))

    def _check(self, group):
        rules.check_adam(group["lr"], group["betas"], group["eps"], group["weight_decay"])

    def _init_state(self, p, group):
        return {"step": 0, "exp_avg": _zeros(p), "exp_avg_sq": _zeros(p)}

    def _update(self, p, g, state, group):
        rules.radam_kernel(p, g, state["exp_avg"], state["exp_avg_sq"], t=state["step"],
                            lr=group["lr"], betas=group["betas"], eps=group["eps"],
                            weight_decay=group["weight_decay"],
                            decoupled=group["decoupled_weight_decay"],
                            maximize=group["maximize"])


OPTIMIZERS = {cls.__name__: cls for cls in (SGD, Adagrad, RMSprop, Adam, AdamW, NAdam, RAdam)}
