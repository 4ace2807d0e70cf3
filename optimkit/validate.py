"""Argument checks shared by every public entry point (the one place optimkit validates).

Each check raises before anything is modified, and its message names the
argument, the value it got, and what would be accepted. Each returns the
value it checked, converted (``float``, ``int``, a ``list`` of arrays).
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np


def is_real(value) -> bool:
    """A real number: Python or NumPy, or a one-element real array (torch takes 1-element
    tensors as hyperparameters); not a bool."""
    if isinstance(value, np.ndarray):
        return value.size == 1 and (np.issubdtype(value.dtype, np.floating)
                                    or np.issubdtype(value.dtype, np.integer))
    return isinstance(value, (Real, np.floating, np.integer)) and not isinstance(value, (bool, np.bool_))


def plain(value):
    """``value`` with NumPy scalars and one-element arrays turned into Python numbers (tuples
    entry by entry), so hyperparameters enter the arithmetic as Python floats do: a float32
    ``lr`` must not promote a float32 parameter to float64."""
    if isinstance(value, tuple):
        return tuple(plain(v) for v in value)
    if isinstance(value, np.ndarray) and value.size == 1:
        return value.reshape(()).item()
    if isinstance(value, np.generic):
        return value.item()
    return value


def finite(name: str, value) -> float:
    """A finite real number (a NumPy scalar or one-element array counts)."""
    if not is_real(value) or not math.isfinite(float(plain(value))):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(plain(value))


def non_negative(name: str, value) -> float:
    """A finite real number >= 0."""
    value = finite(name, value)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return value


def positive(name: str, value) -> float:
    """A finite real number > 0."""
    value = finite(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def in_unit_interval(name: str, value, *, closed_right: bool = False) -> float:
    """A number in [0, 1) (or [0, 1] with ``closed_right``)."""
    value = finite(name, value)
    ok = 0.0 <= value <= 1.0 if closed_right else 0.0 <= value < 1.0
    if not ok:
        interval = "[0, 1]" if closed_right else "[0, 1)"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return value


def positive_int(name: str, value) -> int:
    """An integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def non_negative_int(name: str, value) -> int:
    """An integer >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def point(value, dim: int = 2) -> np.ndarray:
    """A point with ``dim`` coordinates, as a float64 array of shape ``(dim,)``."""
    p = np.asarray(value, dtype=np.float64)
    if p.size != dim or p.ndim > 1:
        raise ValueError(f"point must have {dim} coordinate(s), got shape {p.shape}: {value!r}")
    return p.reshape(dim)


def _array_list(name: str, arrays, item: str) -> list:
    """``arrays`` as a list, refusing a bare array (a common slip for a list of one)."""
    if isinstance(arrays, np.ndarray):
        raise TypeError(
            f"{name} must be a list of NumPy arrays, got a single array; wrap it: [{item}]"
        )
    try:
        return list(arrays)
    except TypeError:
        raise TypeError(f"{name} must be a list of NumPy arrays, got {type(arrays).__name__}") from None


def _all_floating(name: str, arrays: list, item: str, why: str) -> list[np.ndarray]:
    """Every entry a floating-point NumPy array; ``why`` says why it must be floating point."""
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}[{i}] must be a NumPy array, got {type(a).__name__}")
        if not np.issubdtype(a.dtype, np.floating):
            raise TypeError(
                f"{name}[{i}] has dtype {a.dtype}; {why}, "
                f"so they must be floating point: use {item}.astype(np.float64)"
            )
    return arrays


def float_params(params) -> list[np.ndarray]:
    """A non-empty list of floating-point NumPy arrays (updated in place later)."""
    params = _array_list("params", params, "array")
    if not params:
        raise ValueError("params is empty: pass at least one array to optimize")
    return _all_floating("params", params, "array", "optimizers update parameters in place")


def float_grads(grads) -> list[np.ndarray]:
    """A list of writeable floating-point arrays, for functions that scale gradients in place.

    All are checked before any is touched.
    """
    grads = _array_list("grads", grads, "grad")
    _all_floating("grads", grads, "grad", "clipping scales gradients in place")
    for i, g in enumerate(grads):
        if not g.flags.writeable:
            raise ValueError(f"grads[{i}] is read-only; clipping works in place: pass a writeable copy")
    return grads


def grads_like(grads, params, *, allow_none: bool = False) -> list:
    """A list of gradients matching ``params`` one-to-one in count and shape."""
    if isinstance(grads, np.ndarray):
        raise TypeError("grads must be a list of NumPy arrays, got a single array; wrap it: [grad]")
    grads = list(grads)
    if len(grads) != len(params):
        raise ValueError(
            f"got {len(grads)} gradients for {len(params)} parameters: pass one gradient per parameter"
        )
    for i, (g, p) in enumerate(zip(grads, params)):
        if g is None:
            if allow_none:
                continue
            raise ValueError(f"grads[{i}] is None: this function needs every gradient")
        if hasattr(g, "toarray") and hasattr(g, "nnz"):  # scipy.sparse: np.asarray makes a 0-d object
            raise TypeError(f"grads[{i}] is a sparse matrix ({type(g).__name__}); optimkit updates "
                            f"dense arrays (sparse gradients, like torch's SparseAdam, are out of "
                            f"scope): pass grads[{i}].toarray()")
        g = np.asarray(g)
        if g.shape != p.shape:
            raise ValueError(f"grads[{i}] has shape {g.shape} but params[{i}] has shape {p.shape}")
        if not (np.issubdtype(g.dtype, np.floating) or np.issubdtype(g.dtype, np.integer)):
            raise TypeError(f"grads[{i}] has dtype {g.dtype}; gradients must be numeric")
    return grads


# ---------------------------------------------------------------------------
# parameter groups (torch.optim's layout)
# ---------------------------------------------------------------------------

def param_groups(params) -> list[dict]:
    """The ``params`` an optimizer is built with, as a list of group dicts.

    A list of arrays is one group; a list of dicts is one group each (as in torch). The dicts
    are not checked here: :func:`param_group` checks each as it is added.
    """
    if isinstance(params, dict):
        raise TypeError("params must be a list of arrays or a list of param-group dicts, got a "
                        "single dict; wrap it: [group]")
    params = _array_list("params", params, "array")
    if not params:
        raise ValueError("params is empty: pass at least one array to optimize")
    if not any(isinstance(p, dict) for p in params):
        return [{"params": float_params(params)}]
    for i, p in enumerate(params):
        if not isinstance(p, dict):
            raise TypeError(f"params[{i}] is a {type(p).__name__} among param-group dicts: "
                            f"give every group as a dict, e.g. {{'params': [array]}}")
    return params


def plain_group(group: dict) -> dict:
    """A copy of a param group with every hyperparameter :func:`plain`."""
    return {k: v if k == "params" else plain(v) for k, v in group.items()}


def closure_result(result) -> tuple:
    """What a closure returned, as ``(loss, grads)``."""
    try:
        loss, grads = result
    except (TypeError, ValueError):
        raise TypeError(f"the closure must return (loss, grads), the loss and one gradient per "
                        f"parameter at the current parameters; it returned "
                        f"{type(result).__name__}") from None
    return loss, grads


def param_group(group, defaults: dict, taken: list, index: int, allowed=()) -> dict:
    """Check one param group before it joins an optimizer; return its ``params`` as a list.

    ``defaults`` are the optimizer's hyperparameters (every other key is refused unless it is in
    ``allowed``: the keys torch's schedulers write); ``taken`` the arrays already in earlier
    groups, none of which may appear again.
    """
    where = f"param group {index}"
    if not isinstance(group, dict):
        raise TypeError(f"{where} must be a dict with a 'params' entry, got {type(group).__name__}")
    if "params" not in group:
        raise ValueError(f"{where} has no 'params' entry: give its arrays as "
                         f"{{'params': [W, b], ...}}")
    unknown = sorted(set(group) - set(defaults) - set(allowed) - {"params"}, key=str)
    if unknown:
        raise ValueError(f"{where} has unknown key(s) {unknown}: this optimizer's hyperparameters "
                         f"are {sorted(defaults)}")
    arrays = group["params"]
    if isinstance(arrays, np.ndarray):
        arrays = [arrays]  # torch takes a lone tensor as a group of one
    elif isinstance(arrays, (set, frozenset)):
        raise TypeError(f"{where}: 'params' must be an ordered collection (a list), not a set, "
                        f"so the order of the gradients is defined")
    arrays = _all_floating(f"{where}['params']", _array_list(f"{where}['params']", arrays, "array"),
                           "array", "optimizers update parameters in place")
    if not arrays:
        raise ValueError(f"{where} has no arrays in 'params'")
    seen = {id(p): "an earlier group" for p in taken}
    for i, p in enumerate(arrays):
        if id(p) in seen:
            raise ValueError(f"{where}['params'][{i}] is already in {seen[id(p)]}: "
                             f"an array may appear in one group, once")
        seen[id(p)] = f"{where} (as ['params'][{i}])"
    return arrays


def grads_for_groups(grads, sizes: list[int], params: list) -> list:
    """Gradients for every parameter across groups, as one flat list.

    Accepts the flat list (the gradients in the order of the parameters, group after group)
    or one list per group, ``[[gW, gb], [g_norm]]``; a ``None`` skips its array.
    """
    if isinstance(grads, np.ndarray):
        raise TypeError("grads must be a list of NumPy arrays, got a single array; wrap it: [grad]")
    grads = list(grads)
    # One list of arrays per group; a flat entry is an array (or numbers), never a list of arrays.
    nested = len(grads) == len(sizes) and all(
        isinstance(g, (list, tuple)) and all(x is None or isinstance(x, np.ndarray) for x in g)
        for g in grads)
    if nested:
        for k, (g, n) in enumerate(zip(grads, sizes)):
            if len(g) != n:
                raise ValueError(f"got {len(g)} gradients for param group {k}, which has {n} "
                                 f"parameters")
        grads = [x for g in grads for x in g]
    return grads_like(grads, params, allow_none=True)


NOOP_OPTIONS = {"foreach": (None, False), "fused": (None, False), "capturable": (False,),
                "differentiable": (False,)}


def implementation_options(name: str, **options) -> None:
    """torch's implementation switches, accepted at the values that change nothing here.

    ``foreach`` and ``fused`` choose torch's loop or kernel, ``capturable`` CUDA graphs,
    ``differentiable`` autograd through the step: optimkit has one NumPy implementation, which is
    torch's single-tensor path (``foreach=False``).
    """
    why = {"foreach": "torch's multi-tensor loop", "fused": "torch's fused kernel",
           "capturable": "CUDA-graph capture", "differentiable": "autograd through the step"}
    for key, value in options.items():
        if not (value is None or isinstance(value, (bool, np.bool_))) or value not in NOOP_OPTIONS[key]:
            accepted = " or ".join(repr(v) for v in NOOP_OPTIONS[key])
            raise ValueError(f"{name}({key}={value!r}) asks for {why[key]}, which optimkit (one "
                             f"NumPy implementation, torch's single-tensor arithmetic) does not "
                             f"have: pass {key}={accepted}")


def turned_on_mid_run(name: str, option: str, key: str, index: int, state: dict) -> None:
    """Refuse an option that needs state (``key``) made at the first step, turned on after
    ``params[index]`` took steps without it."""
    raise ValueError(
        f"{name}: {option} was turned on after params[{index}] took {state['step']} step(s) "
        f"without it, so there is no {key!r} for it (torch fails with KeyError: {key!r}); "
        f"choose {option} before the first step, or start a new optimizer")


def pair(name: str, value) -> tuple:
    """Two entries, as a tuple."""
    try:
        first, second = value
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair, got {value!r}") from None
    return first, second


# --- the arguments of each rule (shared by optimkit.rules and optimkit.optim) ---------------

def common_args(lr, weight_decay) -> None:
    non_negative("lr", lr)
    non_negative("weight_decay", weight_decay)


def betas_pair(betas) -> tuple[float, float]:
    """``(beta1, beta2)``, each in [0, 1)."""
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
    return (in_unit_interval("betas[0]", beta1), in_unit_interval("betas[1]", beta2))


def sgd_args(lr, momentum, dampening, weight_decay, nesterov) -> None:
    common_args(lr, weight_decay)
    non_negative("momentum", momentum)
    finite("dampening", dampening)
    if nesterov and (momentum <= 0 or dampening != 0):
        raise ValueError(
            f"nesterov=True needs momentum > 0 and dampening = 0, "
            f"got momentum={momentum!r}, dampening={dampening!r}"
        )


def adam_args(lr, betas, eps, weight_decay) -> None:
    common_args(lr, weight_decay)
    betas_pair(betas)
    positive("eps", eps)


def rprop_etas(etas) -> tuple[float, float]:
    """Rprop's ``(etaminus, etaplus)`` with 0 < etaminus < 1 < etaplus."""
    minus, plus = pair("etas", etas)
    minus, plus = finite("etas[0]", minus), finite("etas[1]", plus)
    if not 0.0 < minus < 1.0 < plus:
        raise ValueError(f"etas must satisfy 0 < etaminus < 1 < etaplus, got {etas!r}")
    return minus, plus


def rprop_step_sizes(step_sizes) -> tuple[float, float]:
    """Rprop's ``(min, max)`` step sizes with 0 <= min <= max."""
    low, high = pair("step_sizes", step_sizes)
    low, high = non_negative("step_sizes[0]", low), non_negative("step_sizes[1]", high)
    if low > high:
        raise ValueError(f"step_sizes must be (min, max) with min <= max, got {step_sizes!r}")
    return low, high


def adafactor_args(lr, beta2_decay, eps, d, weight_decay) -> tuple:
    """Adafactor's hyperparameters as torch checks them; returns ``eps`` as a pair."""
    non_negative("lr", lr)
    if finite("beta2_decay", beta2_decay) > 0:
        raise ValueError(f"beta2_decay must be <= 0, got {beta2_decay!r}")
    eps1, eps2 = pair("eps", eps)
    if eps1 is not None:
        eps1 = non_negative("eps[0]", eps1)
    eps2 = non_negative("eps[1]", eps2)
    if finite("d", d) < 1:
        raise ValueError(f"d (the clipping threshold) must be >= 1, got {d!r}")
    non_negative("weight_decay", weight_decay)
    return eps1, eps2


def lbfgs_args(lr, max_iter, max_eval, tolerance_grad, tolerance_change, history_size,
               line_search_fn) -> int:
    """L-BFGS's settings; returns ``max_eval`` (torch's default: ``max_iter * 5 // 4``)."""
    non_negative("lr", lr)
    max_iter = positive_int("max_iter", max_iter)
    max_eval = max_iter * 5 // 4 if max_eval is None else positive_int("max_eval", max_eval)
    non_negative("tolerance_grad", tolerance_grad)
    non_negative("tolerance_change", tolerance_change)
    positive_int("history_size", history_size)
    if line_search_fn not in (None, "strong_wolfe"):
        raise ValueError(f"line_search_fn must be None or 'strong_wolfe', got {line_search_fn!r}")
    return max_eval


def adamax_args(lr, betas, eps, weight_decay) -> None:
    """Adamax's hyperparameters (eps may be 0, as torch allows)."""
    non_negative("lr", lr)
    non_negative("weight_decay", weight_decay)
    pair("betas", betas)
    in_unit_interval("betas[0]", betas[0])
    in_unit_interval("betas[1]", betas[1])
    non_negative("eps", eps)


def adadelta_args(lr, rho, eps, weight_decay) -> None:
    """Adadelta's hyperparameters."""
    non_negative("lr", lr)
    non_negative("weight_decay", weight_decay)
    in_unit_interval("rho", rho, closed_right=True)
    non_negative("eps", eps)


def asgd_args(lr, lambd, alpha, t0, weight_decay) -> None:
    """ASGD's hyperparameters."""
    non_negative("lr", lr)
    non_negative("weight_decay", weight_decay)
    non_negative("lambd", lambd)
    finite("alpha", alpha)
    finite("t0", t0)


def muon_args(lr, weight_decay, momentum, nesterov, ns_coefficients, eps, ns_steps,
              adjust_lr_fn) -> tuple:
    """Muon's hyperparameters (torch's checks, and the ones torch makes only inside its step);
    returns ``ns_coefficients`` as a tuple of three floats."""
    non_negative("lr", lr)
    non_negative("weight_decay", weight_decay)
    non_negative("momentum", momentum)
    if not isinstance(nesterov, (bool, np.bool_)):
        raise ValueError(f"nesterov must be True or False, got {nesterov!r}")
    try:
        a, b, c = ns_coefficients
    except (TypeError, ValueError):
        raise ValueError(f"ns_coefficients must be three numbers (a, b, c) of the Newton-Schulz "
                         f"polynomial a X + b (X X^T) X + c (X X^T)^2 X, got "
                         f"{ns_coefficients!r}") from None
    coefficients = (finite("ns_coefficients[0]", a), finite("ns_coefficients[1]", b),
                    finite("ns_coefficients[2]", c))
    non_negative("eps", eps)
    if non_negative_int("ns_steps", ns_steps) >= 100:
        raise ValueError(f"ns_steps must be less than 100 (torch's limit; 5 is the default), "
                         f"got {ns_steps!r}")
    if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
        raise ValueError(f"adjust_lr_fn must be None, 'original' or 'match_rms_adamw', got "
                         f"{adjust_lr_fn!r} (torch: Adjust learning rate function "
                         f"{adjust_lr_fn} is not supported)")
    return coefficients


def matrix_params(name: str, params) -> None:
    """Every array two-dimensional: Muon orthogonalises matrices only."""
    for i, p in enumerate(params):
        if np.ndim(p) != 2:
            raise ValueError(
                f"{name} only supports 2D parameters (matrices), but params[{i}] has shape "
                f"{np.shape(p)}: give biases, gains, embeddings and the output layer to AdamW "
                f"(a second optimizer), as torch's Muon asks")


# --- schedulers (optimkit.lr_scheduler, optimkit.swa_utils) --------------------------------

def scheduled_optimizer(optimizer):
    """An optimizer with torch's ``param_groups``: a non-empty list of dicts, each with an ``lr``."""
    groups = getattr(optimizer, "param_groups", None)
    if not isinstance(groups, list) or not groups or not all(
            isinstance(g, dict) and "lr" in g for g in groups):
        raise TypeError(f"optimizer must be an optimizer with param_groups (an optimkit "
                        f"optimizer), got {type(optimizer).__name__}")
    return optimizer


def one_of(name: str, value, choices):
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def last_epoch(value) -> int:
    """An integer >= -1 (-1: start from the beginning)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < -1:
        raise ValueError(f"last_epoch must be an integer >= -1 (-1 starts the schedule), got {value!r}")
    return int(value)


def per_group(name: str, value, optimizer, check=finite) -> list:
    """One value per parameter group: a list of that length, or one value repeated (torch's rule)."""
    n = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise ValueError(f"{name} must have one value per parameter group: the optimizer "
                             f"has {n} groups, {name} has {len(value)} values")
        return [check(f"{name}[{i}]", v) for i, v in enumerate(value)]
    return [check(name, value)] * n
