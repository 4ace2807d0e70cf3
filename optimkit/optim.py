"""torch.optim-style classes over the pure rules in :mod:`optimkit.rules`.

Names, arguments, defaults and semantics follow ``torch.optim`` 2.13, so code
written against these classes reads like the PyTorch students meet next::

    params = [W, b]                      # float NumPy arrays, updated in place
    opt = optimkit.Adam(params, lr=1e-3)
    for batch in batches:
        grads = loss_and_grads(batch)    # one gradient per parameter array
        opt.step(grads)
    opt.lr = 1e-4                        # schedules write the learning rate here

Parameter groups as in torch: ``SGD([{"params": [W], "weight_decay": 0.0}, {"params": [b]}],
lr=0.1, weight_decay=1e-4)`` gives each group its own hyperparameters, the constructor's
arguments being the defaults; ``opt.param_groups[k]["lr"]`` is read and written freely (values
are checked when ``step`` uses them) and :meth:`Optimizer.add_param_group` adds a group later.
NumPy arrays carry no ``.grad``, so ``step(grads)`` takes the gradients in the order of the
parameters, group after group (``opt.params``), or one list per group. Per-array state lives
in ``opt.state[i]`` (``i`` indexing ``opt.params``) under torch's keys (``exp_avg``, ...).

``step(closure)`` takes the place of torch's: ``closure()`` returns ``(loss, grads)`` at the
current parameters, and ``step`` returns that loss.

Every class runs its rule's kernel from :mod:`optimkit.rules`; :class:`SGD`, :class:`Adam` and
:class:`AdamW` run it through :mod:`optimkit.fused`, the same operations in the same order block
by block in place (bit for bit the kernel's numbers, no parameter-sized temporary), whenever
the arrays allow (contiguous float32/float64 of one dtype), the kernel itself otherwise.

A gradient of ``None`` skips its array, as torch skips a parameter whose
``.grad`` is ``None``. NaN or infinite gradients are *not* caught: as in torch,
they propagate into that array and its state (and only that one; Rprop, which reads signs
only, leaves a NaN element where it is, as torch's does). Guard with
``optimkit.clip_grad_norm(grads, max_norm, error_if_nonfinite=True)``.
"""

from __future__ import annotations

import copy

import numpy as np

from . import fused, rules, validate

SCHEDULER_KEYS = frozenset({"initial_lr", "max_lr", "min_lr", "base_momentum", "max_momentum",
                            "swa_lr"})
"""Keys torch's schedulers store in a param group besides the optimizer's hyperparameters."""


class Optimizer:
    """Base class: parameter groups with their hyperparameters, and per-array state."""

    def __init__(self, params, defaults: dict):
        self._checked(defaults)
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: list[dict] = []
        for group in validate.param_groups(params):
            self.add_param_group(group)

    # Subclasses define these three (and may refine _check_state).
    def _check(self, group: dict) -> None:
        raise NotImplementedError

    def _init_state(self, p: np.ndarray, group: dict) -> dict:
        raise NotImplementedError

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict, group: dict) -> None:
        raise NotImplementedError

    def _check_state(self, index: int, state: dict, group: dict) -> None:
        """Refuse settings the existing state of ``params[index]`` cannot serve."""

    def _checked(self, group: dict) -> dict:
        """``group`` with its numbers made plain, once every value is checked."""
        group = validate.plain_group(group)
        self._check(group)
        validate.implementation_options(type(self).__name__, **{
            key: group[key] for key in validate.NOOP_OPTIONS if key in group})
        return group

    @property
    def params(self) -> list[np.ndarray]:
        """Every parameter array, group after group: the order ``step(grads)`` expects."""
        return [p for group in self.param_groups for p in group["params"]]

    def add_param_group(self, param_group: dict) -> None:
        """Add a group (a dict with ``"params"`` and any hyperparameters), as torch does:
        missing hyperparameters come from the constructor's defaults, and the dict itself
        becomes ``param_groups[-1]``."""
        arrays = validate.param_group(param_group, self.defaults, self.params,
                                      len(self.param_groups), allowed=SCHEDULER_KEYS)
        group = {**self.defaults, **param_group, "params": arrays}
        self._checked(group)
        param_group.update(group)  # torch fills in the caller's dict and keeps it
        self.param_groups.append(param_group)
        self.state.extend({} for _ in arrays)

    @property
    def lr(self) -> float:
        """The learning rate when every group has the same one (always true of one group).

        With several groups sharing one lr, writing sets it in each; when their lrs differ,
        reading or writing ``lr`` raises: use ``param_groups[k]["lr"]``.
        """
        lrs = [group["lr"] for group in self.param_groups]
        if any(validate.plain(lr) != validate.plain(lrs[0]) for lr in lrs):
            raise ValueError(f"the {len(lrs)} param groups have different learning rates "
                             f"{lrs}: read or write param_groups[k]['lr'] instead of lr")
        return lrs[0]

    @lr.setter
    def lr(self, value) -> None:
        self.lr  # noqa: B018  (refuses when the groups' lrs differ)
        value = validate.non_negative("lr", value)
        for group in self.param_groups:
            group["lr"] = value

    def step(self, grads=None, closure=None):
        """One update of every array whose gradient is not ``None``, in place.

        ``step(grads)``: the gradients in the order of :attr:`params` (or one list per group).
        ``step(closure)``: ``closure()`` returns ``(loss, grads)`` at the current parameters;
        the step uses those gradients and returns the loss (``None`` without a closure, as torch).
        Everything is checked before any array or state changes.
        """
        if callable(grads):
            grads, closure = None, grads
        loss = None
        if closure is not None:
            loss, grads = validate.closure_result(closure())
        if grads is None:
            raise TypeError("step() needs the gradients, step(grads), or a closure returning "
                            "(loss, grads): NumPy arrays have no .grad to read")
        groups = [self._checked(group) for group in self.param_groups]
        params = self.params
        if len(params) != len(self.state):
            raise ValueError(f"param_groups hold {len(params)} arrays but the optimizer keeps "
                             f"state for {len(self.state)}: add arrays with add_param_group()")
        grads = validate.grads_for_groups(grads, [len(g["params"]) for g in groups], params)
        owner = [group for group in groups for _ in group["params"]]
        work = [(i, p, grads[i], owner[i]) for i, p in enumerate(params) if grads[i] is not None]
        for i, p, g, group in work:
            if self.state[i]:
                self._check_state(i, self.state[i], group)
        for i, p, g, group in work:
            state = self.state[i]
            if not state:
                state.update(self._init_state(p, group))
            state["step"] += 1
            self._update(p, np.asarray(g), state, group)
        return loss

    def state_dict(self) -> dict:
        """A deep copy of state and groups in torch's layout: ``param_groups`` with ``params``
        as indices into :attr:`params`, ``state`` keyed by those indices (non-empty only)."""
        groups, start = [], 0
        for group in self.param_groups:
            packed = {k: copy.deepcopy(v) for k, v in group.items() if k != "params"}
            packed["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(packed)
        return {"state": {i: copy.deepcopy(s) for i, s in enumerate(self.state) if s},
                "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` saved (groups' hyperparameters and state); checks
        everything before changing anything."""
        try:
            saved_groups = list(state_dict["param_groups"])
            saved_state = dict(state_dict["state"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("state_dict must have 'state' and 'param_groups', as "
                             "state_dict() returns") from None
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"state_dict holds {len(saved_groups)} param groups, this optimizer "
                             f"has {len(self.param_groups)}")
        index = {}  # saved id -> position in self.params
        for k, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            ids = list(saved.get("params", ()))
            if len(ids) != len(group["params"]):
                raise ValueError(f"state_dict's param group {k} holds {len(ids)} parameters, "
                                 f"this optimizer's has {len(group['params'])}")
            keys = set(saved) - {"params"}
            if not set(self.defaults) <= keys <= set(self.defaults) | SCHEDULER_KEYS:
                raise ValueError(f"state_dict was saved by another optimizer: its settings are "
                                 f"{sorted(keys)}, expected {sorted(self.defaults)}")
            index.update((i, len(index)) for i in ids)
        new_groups = [{**copy.deepcopy({k: v for k, v in saved.items() if k != "params"}),
                       "params": group["params"]}
                      for saved, group in zip(saved_groups, self.param_groups)]
        checked = [self._checked(group) for group in new_groups]
        params = self.params
        owner = [group for group in checked for _ in group["params"]]
        state = [{} for _ in params]
        for i, s in saved_state.items():
            if i not in index:
                raise ValueError(f"state_dict has state for parameter {i!r}, which no group holds")
            p = params[index[i]]
            fresh = self._init_state(p, owner[index[i]])  # the shapes this parameter's state has
            for key, value in s.items():
                want = getattr(fresh.get(key), "shape", None)
                if isinstance(value, np.ndarray) and want is not None and value.shape != want:
                    raise ValueError(f"state[{i}][{key!r}] has shape {value.shape}, but "
                                     f"params[{index[i]}] (shape {p.shape}) needs {want}")
            # floating state follows its parameter's dtype, as torch casts it
            state[index[i]] = {key: value.astype(p.dtype) if isinstance(value, np.ndarray)
                               and np.issubdtype(value.dtype, np.floating) else copy.deepcopy(value)
                               for key, value in s.items()}
        for group, new in zip(self.param_groups, new_groups):
            group.clear()  # the same dicts stay in param_groups (a scheduler may hold them)
            group.update(new)
        self.state = state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for k, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {k}")
            lines += [f"    {key}: {v}" for key, v in sorted(group.items()) if key != "params"]
        return "\n".join(lines + [")"])


class Wrapper:
    """Base for optimizers that wrap another (Lookahead, SAM, clipping, recording losses):
    the learning rate and the param groups pass through, so a schedule can set them on the
    wrapper."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    @property
    def param_groups(self) -> list[dict]:
        return self.optimizer.param_groups

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
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize, foreach=foreach,
                                      differentiable=differentiable, fused=fused))

    def _check(self, group):
        validate.sgd_args(group["lr"], group["momentum"], group["dampening"],
                        group["weight_decay"], group["nesterov"])

    def _init_state(self, p, group):
        return {"step": 0}

    def _update(self, p, g, state, group):
        # As torch, the buffer is made when momentum is first used (possibly mid-run), and
        # starts as that step's gradient, undamped.
        fresh = group["momentum"] != 0 and "momentum_buffer" not in state
        if fresh:
            state["momentum_buffer"] = _zeros(p)
        buf = state.get("momentum_buffer")
        # the kernel's arithmetic, block by block with no parameter-sized temporary (bit-equal)
        kernel = fused.sgd_step if fused.eligible(p, g, buf) else rules.sgd_kernel
        kernel(p, g, buf, t=1 if fresh else state["step"],
               lr=group["lr"], momentum=group["momentum"],
               dampening=group["dampening"], weight_decay=group["weight_decay"],
               nesterov=group["nesterov"], maximize=group["maximize"])


class Adagrad(Optimizer):
    """AdaGrad, as ``torch.optim.Adagrad``. Update rule: :func:`optimkit.rules.adagrad_update`."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, foreach=None, *, maximize=False,
                 differentiable=False, fused=None):
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value,
                                      eps=eps, foreach=foreach, maximize=maximize,
                                      differentiable=differentiable, fused=fused))

    def _check(self, group):
        validate.common_args(group["lr"], group["weight_decay"])
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
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered,
                                      capturable=capturable, foreach=foreach, maximize=maximize,
                                      differentiable=differentiable))

    def _check(self, group):
        validate.common_args(group["lr"], group["weight_decay"])
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

    def _check_state(self, index, state, group):
        # Their buffers are made at the first step only (as torch, which then fails on them).
        if group["momentum"] > 0 and "momentum_buffer" not in state:
            validate.turned_on_mid_run("RMSprop", "momentum > 0", "momentum_buffer", index, state)
        if group["centered"] and "grad_avg" not in state:
            validate.turned_on_mid_run("RMSprop", "centered=True", "grad_avg", index, state)

    def _update(self, p, g, state, group):
        rules.rmsprop_kernel(p, g, state["square_avg"], state.get("grad_avg"),
                              state.get("momentum_buffer"), lr=group["lr"],
                              alpha=group["alpha"], eps=group["eps"],
                              weight_decay=group["weight_decay"], momentum=group["momentum"],
                              centered=group["centered"], maximize=group["maximize"])


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam``. Update rule: :func:`optimkit.rules.adam_update`."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        super().__init__(params, dict(lr=lr, betas=validate.betas_pair(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      foreach=foreach, maximize=maximize, capturable=capturable,
                                      differentiable=differentiable, fused=fused,
                                      decoupled_weight_decay=decoupled_weight_decay))

    def _check(self, group):
        validate.adam_args(group["lr"], group["betas"], group["eps"], group["weight_decay"])

    def _init_state(self, p, group):
        state = {"step": 0, "exp_avg": _zeros(p), "exp_avg_sq": _zeros(p)}
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = _zeros(p)
        return state

    def _check_state(self, index, state, group):
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            validate.turned_on_mid_run(type(self).__name__, "amsgrad=True", "max_exp_avg_sq",
                                      index, state)

    def _update(self, p, g, state, group):
        m, v, v_max = state["exp_avg"], state["exp_avg_sq"], state.get("max_exp_avg_sq")
        v_max = v_max if group["amsgrad"] else None
        # the kernel's arithmetic, block by block with no parameter-sized temporary (bit-equal)
        kernel = fused.adam_step if fused.eligible(p, g, m, v, v_max) else rules.adam_kernel
        kernel(p, g, m, v, v_max, t=state["step"], lr=group["lr"],
               betas=group["betas"], eps=group["eps"],
               weight_decay=group["weight_decay"],
               decoupled=group["decoupled_weight_decay"],
               amsgrad=group["amsgrad"], maximize=group["maximize"])


class AdamW(Adam):
    """AdamW (decoupled weight decay), as ``torch.optim.AdamW``.

    Update rule: :func:`optimkit.rules.adamw_update`.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)


class NAdam(Optimizer):
    """NAdam, as ``torch.optim.NAdam``. Update rule: :func:`optimkit.rules.nadam_update`."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3, decoupled_weight_decay=False, *, foreach=None,
                 maximize=False, capturable=False, differentiable=False):
        super().__init__(params, dict(lr=lr, betas=validate.betas_pair(betas), eps=eps,
                                      weight_decay=weight_decay, momentum_decay=momentum_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      foreach=foreach, maximize=maximize, capturable=capturable,
                                      differentiable=differentiable))

    def _check(self, group):
        validate.adam_args(group["lr"], group["betas"], group["eps"], group["weight_decay"])
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
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False):
        super().__init__(params, dict(lr=lr, betas=validate.betas_pair(betas), eps=eps,
                                      weight_decay=weight_decay,
                                      decoupled_weight_decay=decoupled_weight_decay,
                                      foreach=foreach, maximize=maximize, capturable=capturable,
                                      differentiable=differentiable))

    def _check(self, group):
        validate.adam_args(group["lr"], group["betas"], group["eps"], group["weight_decay"])

    def _init_state(self, p, group):
        return {"step": 0, "exp_avg": _zeros(p), "exp_avg_sq": _zeros(p)}

    def _update(self, p, g, state, group):
        rules.radam_kernel(p, g, state["exp_avg"], state["exp_avg_sq"], t=state["step"],
                            lr=group["lr"], betas=group["betas"], eps=group["eps"],
                            weight_decay=group["weight_decay"],
                            decoupled=group["decoupled_weight_decay"],
                            maximize=group["maximize"])


class Adamax(Optimizer):
    """Adamax, as ``torch.optim.Adamax``. Update rule: :func:`optimkit.rules.adamax_update`."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 foreach=None, *, maximize=False, differentiable=False, capturable=False):
        super().__init__(params, dict(lr=lr, betas=validate.betas_pair(betas), eps=eps,
                                      weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable,
                                      capturable=capturable))

    def _check(self, group):
        validate.adamax_args(group["lr"], group["betas"], group["eps"], group["weight_decay"])

    def _init_state(self, p, group):
        return {"step": 0, "exp_avg": _zeros(p), "exp_inf": _zeros(p)}

    def _update(self, p, g, state, group):
        rules.adamax_kernel(p, g, state["exp_avg"], state["exp_inf"], t=state["step"],
                            lr=group["lr"], betas=group["betas"], eps=group["eps"],
                            weight_decay=group["weight_decay"], maximize=group["maximize"])


class Adadelta(Optimizer):
    """Adadelta, as ``torch.optim.Adadelta``. Update rule: :func:`optimkit.rules.adadelta_update`."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay,
                                      foreach=foreach, capturable=capturable, maximize=maximize,
                                      differentiable=differentiable))

    def _check(self, group):
        validate.adadelta_args(group["lr"], group["rho"], group["eps"], group["weight_decay"])

    def _init_state(self, p, group):
        return {"step": 0, "square_avg": _zeros(p), "acc_delta": _zeros(p)}

    def _update(self, p, g, state, group):
        rules.adadelta_kernel(p, g, state["square_avg"], state["acc_delta"], lr=group["lr"],
                              rho=group["rho"], eps=group["eps"],
                              weight_decay=group["weight_decay"], maximize=group["maximize"])


class Rprop(Optimizer):
    """Rprop, as ``torch.optim.Rprop``. Update rule: :func:`optimkit.rules.rprop_update`.

    ``lr`` is each element's first step size; a scheduler writing it later changes nothing
    (as in torch)."""

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *,
                 capturable=False, foreach=None, maximize=False, differentiable=False):
        super().__init__(params, dict(lr=lr, etas=etas, step_sizes=step_sizes,
                                      foreach=foreach, maximize=maximize,
                                      differentiable=differentiable, capturable=capturable))

    def _check(self, group):
        validate.non_negative("lr", group["lr"])
        validate.rprop_etas(group["etas"])
        validate.rprop_step_sizes(group["step_sizes"])

    def _init_state(self, p, group):
        return {"step": 0, "prev": _zeros(p), "step_size": np.full_like(p, group["lr"])}

    def _update(self, p, g, state, group):
        rules.rprop_kernel(p, g, state["prev"], state["step_size"], etas=group["etas"],
                           step_sizes=group["step_sizes"], maximize=group["maximize"])


class ASGD(Optimizer):
    """Averaged SGD, as ``torch.optim.ASGD``. Update rule: :func:`optimkit.rules.asgd_update`.

    The average of the iterates is ``state[i]["ax"]``."""

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0,
                 foreach=None, maximize=False, differentiable=False, capturable=False):
        super().__init__(params, dict(lr=lr, lambd=lambd, alpha=alpha, t0=t0,
                                      weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize, differentiable=differentiable,
                                      capturable=capturable))

    def _check(self, group):
        validate.asgd_args(group["lr"], group["lambd"], group["alpha"], group["t0"],
                           group["weight_decay"])

    def _init_state(self, p, group):
        return {"step": 0, "eta": float(group["lr"]), "mu": 1.0, "ax": _zeros(p)}

    def _update(self, p, g, state, group):
        rules.asgd_kernel(p, g, state["ax"], eta=state["eta"], mu=state["mu"],
                          lambd=group["lambd"], weight_decay=group["weight_decay"],
                          maximize=group["maximize"])
        state["eta"], state["mu"] = rules.asgd_schedule(
            state["step"], lr=group["lr"], lambd=group["lambd"], alpha=group["alpha"],
            t0=group["t0"])


class Adafactor(Optimizer):
    """Adafactor, as ``torch.optim.Adafactor``. Update rule: :func:`optimkit.rules.adafactor_update`."""

    def __init__(self, params, lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0,
                 weight_decay=0.0, *, foreach=None, maximize=False):
        super().__init__(params, dict(lr=lr, beta2_decay=beta2_decay, eps=eps, d=d,
                                      weight_decay=weight_decay, foreach=foreach,
                                      maximize=maximize))

    def _check(self, group):
        validate.adafactor_args(group["lr"], group["beta2_decay"], group["eps"], group["d"],
                                group["weight_decay"])

    def _init_state(self, p, group):
        (row,), (col,), (v,) = rules.adafactor_init([p])[1:]
        state = {"step": 0}
        if v is None:
            state.update(row_var=row, col_var=col)
        else:
            state["variance"] = v
        return state

    def _update(self, p, g, state, group):
        rules.adafactor_kernel(p, g, state.get("row_var"), state.get("col_var"),
                               state.get("variance"), t=state["step"], lr=group["lr"],
                               beta2_decay=group["beta2_decay"], eps=group["eps"], d=group["d"],
                               weight_decay=group["weight_decay"], maximize=group["maximize"])


class LBFGS(Optimizer):
    """L-BFGS, as ``torch.optim.LBFGS`` (one parameter group; ``line_search_fn=None`` or
    ``"strong_wolfe"``). Update rule: :func:`optimkit.rules.lbfgs_update`.

    ``step(closure)`` only: ``closure()`` returns ``(loss, grads)`` at the current arrays, and
    one ``step`` runs up to ``max_iter`` iterations, calling it as often as it needs. Its state
    (history, last direction, counters) is ``state[0]`` under torch's keys. Not
    :class:`optimkit.beyond.LBFGS`, the book's one-iteration-per-step teaching version.
    """

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7,
                 tolerance_change=1e-9, history_size=100, line_search_fn=None):
        max_eval = validate.lbfgs_args(lr, max_iter, max_eval, tolerance_grad, tolerance_change,
                                       history_size, line_search_fn)
        super().__init__(params, dict(lr=lr, max_iter=max_iter, max_eval=max_eval,
                                      tolerance_grad=tolerance_grad,
                                      tolerance_change=tolerance_change,
                                      history_size=history_size, line_search_fn=line_search_fn))

    def add_param_group(self, param_group: dict) -> None:
        if self.param_groups:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups): "
                             "it works on all its arrays as one vector; give them as one list")
        super().add_param_group(param_group)

    def _check(self, group):
        validate.lbfgs_args(group["lr"], group["max_iter"], group["max_eval"],
                            group["tolerance_grad"], group["tolerance_change"],
                            group["history_size"], group["line_search_fn"])

    def _init_state(self, p, group):
        return rules.lbfgs_init()._asdict()

    def step(self, closure=None):
        """Up to ``max_iter`` iterations; returns the loss at the start, as torch's."""
        if not callable(closure):
            raise TypeError("LBFGS.step needs a closure returning (loss, grads): it evaluates "
                            "the loss at points of its own choosing")
        group = self._checked(self.param_groups[0])
        arrays = group["params"]

        def fun(values):
            for p, v in zip(arrays, values):
                p[...] = v
            return closure()

        saved = self.state[0]
        state = rules.LBFGSState(**saved) if saved else rules.lbfgs_init()
        hyper = {k: group[k] for k in self.defaults}
        new_params, state, loss = rules.lbfgs_update(fun, state, [p.copy() for p in arrays],
                                                     **hyper)
        for p, v in zip(arrays, new_params):
            p[...] = v
        self.state[0] = state._asdict()
        return loss


OPTIMIZERS = {cls.__name__: cls for cls in (SGD, Adagrad, RMSprop, Adam, AdamW, NAdam, RAdam,
                                             Adamax, Adadelta, Rprop, ASGD, Adafactor)}
"""The classes that step with gradients, ``step(grads)``, by name (LBFGS, which needs a
closure, is not among them)."""


class Muon(Optimizer):
    """Muon, as ``torch.optim.Muon``: for 2-D parameters (the weight matrices of hidden layers)
    only; biases, gains, embeddings and the output layer go to AdamW. Update rule:
    :func:`optimkit.rules.muon_update`.

    As torch's, the Newton-Schulz iteration runs in bfloat16 (emulated: every operation's
    result rounded to bfloat16), whatever the parameters' dtype; set the attribute
    ``bfloat16 = False`` to run it in the parameters' dtype (torch has no such switch).
    """

    bfloat16 = True

    def __init__(self, params, lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                 ns_coefficients=rules.MUON_COEFFICIENTS, eps=1e-7, ns_steps=5,
                 adjust_lr_fn=None):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                                      nesterov=nesterov, ns_coefficients=ns_coefficients,
                                      eps=eps, ns_steps=ns_steps, adjust_lr_fn=adjust_lr_fn))

    def _check(self, group):
        validate.muon_args(group["lr"], group["weight_decay"], group["momentum"],
                           group["nesterov"], group["ns_coefficients"], group["eps"],
                           group["ns_steps"], group["adjust_lr_fn"])
        validate.matrix_params("Muon", group.get("params", ()))

    def _init_state(self, p, group):
        return {"step": 0, "momentum_buffer": _zeros(p)}

    def _update(self, p, g, state, group):
        rules.muon_kernel(p, g, state["momentum_buffer"], lr=group["lr"],
                          weight_decay=group["weight_decay"], momentum=group["momentum"],
                          nesterov=group["nesterov"],
                          ns_coefficients=tuple(group["ns_coefficients"]), eps=group["eps"],
                          ns_steps=group["ns_steps"], adjust_lr_fn=group["adjust_lr_fn"],
                          bfloat16=self.bfloat16)


OPTIMIZERS["Muon"] = Muon  # torch.optim's newest, for matrices only
