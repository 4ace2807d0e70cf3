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
    """A real number (Python or NumPy), not a bool."""
    return isinstance(value, (Real, np.floating, np.integer)) and not isinstance(value, bool)


def finite(name: str, value) -> float:
    """A finite real number."""
    if not is_real(value) or not math.isfinite(float(value)):
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
        g = np.asarray(g)
        if g.shape != p.shape:
            raise ValueError(f"grads[{i}] has shape {g.shape} but params[{i}] has shape {p.shape}")
        if not (np.issubdtype(g.dtype, np.floating) or np.issubdtype(g.dtype, np.integer)):
            raise TypeError(f"grads[{i}] has dtype {g.dtype}; gradients must be numeric")
    return grads
