"""Argument checks shared by every public entry point.

Each check raises before anything is modified, and its message names the
argument, the value it got, and what would be accepted.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np


def _is_real(value) -> bool:
    return isinstance(value, (Real, np.floating, np.integer)) and not isinstance(value, bool)


def finite(name: str, value) -> float:
    """A finite real number."""
    if not _is_real(value) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


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


def float_params(params) -> list[np.ndarray]:
    """A non-empty list of floating-point NumPy arrays (updated in place later)."""
    if isinstance(params, np.ndarray):
        raise TypeError(
            "params must be a list of NumPy arrays, got a single array; wrap it: [array]"
        )
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"params must be a list of NumPy arrays, got {type(params).__name__}") from None
    if not params:
        raise ValueError("params is empty: pass at least one array to optimize")
    for i, p in enumerate(params):
        if not isinstance(p, np.ndarray):
            raise TypeError(f"params[{i}] must be a NumPy array, got {type(p).__name__}")
        if not np.issubdtype(p.dtype, np.floating):
            raise TypeError(
                f"params[{i}] has dtype {p.dtype}; optimizers update parameters in place, "
                f"so they must be floating point: use array.astype(np.float64)"
            )
    return params


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
        g = np.asarray(g)
        if g.shape != p.shape:
            raise ValueError(f"grads[{i}] has shape {g.shape} but params[{i}] has shape {p.shape}")
        if not (np.issubdtype(g.dtype, np.floating) or np.issubdtype(g.dtype, np.integer)):
            raise TypeError(f"grads[{i}] has dtype {g.dtype}; gradients must be numeric")
    return grads
