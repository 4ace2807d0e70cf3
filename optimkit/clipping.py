r"""Gradient clipping, in place, equal to ``torch.nn.utils.clip_grad_norm_`` / ``clip_grad_value_``;
optax's ``clip_by_global_norm`` (new arrays, no :math:`10^{-6}`) for comparison; and the global
norm every part of the project measures gradients with (:func:`global_norm`)."""

from __future__ import annotations

import math

import numpy as np

from . import validate

__all__ = ["clip_grad_norm", "clip_grad_value", "clip_by_global_norm", "global_norm",
           "NonFiniteNormError"]

# torch adds this to the norm before dividing (guards total = 0); optax does not.
_NORM_EPS = 1e-6


class NonFiniteNormError(ValueError, RuntimeError):
    """The total gradient norm is NaN or infinite.

    A ``ValueError`` like every optimkit argument error, and also a
    ``RuntimeError`` like the error torch raises, so either ``except`` works.
    """


def _norm_type(norm_type) -> float:
    if norm_type == math.inf:
        return math.inf
    try:
        return validate.positive("norm_type", norm_type)
    except ValueError:
        raise ValueError(f"norm_type must be > 0 or math.inf, got {norm_type!r}") from None


def _p_norm(x: np.ndarray, p: float) -> float:
    return float(np.linalg.norm(x.ravel(), ord=p))


def clip_grad_norm(grads, max_norm, norm_type=2.0, error_if_nonfinite=False) -> float:
    r"""Rescale gradients in place so their total ``norm_type``-norm is at most ``max_norm``.

    ``max_norm=math.inf`` clips nothing and only measures the norm, as in torch.

    .. math::
        \|g\|_p = \Big\| \big(\|g_1\|_p, \dots, \|g_n\|_p\big) \Big\|_p, \qquad
        g_i \leftarrow g_i \cdot \min\!\left(1, \frac{c}{\|g\|_p + 10^{-6}}\right)

    (for :math:`p = \infty`, :math:`\|g\|_\infty = \max |g|`).  Returns the
    total norm **before** clipping, as a float.

    Exactly ``torch.nn.utils.clip_grad_norm_``: the factor is applied
    **unconditionally**, so gradients below the threshold are multiplied by 1
    and those exactly at it shrink by a relative :math:`10^{-6}/\|g\|`.  With a
    NaN total every gradient becomes NaN; with an infinite total finite entries
    become 0 and infinite ones NaN.  ``error_if_nonfinite=True`` raises
    :class:`NonFiniteNormError` instead, leaving the gradients untouched.
    Norms are accumulated in float64.  An empty array contributes 0 (torch
    raises for the inf-norm of an empty tensor); an empty list returns 0.0.

    Contrast ``optax.clip_by_global_norm`` (2-norm only): no :math:`10^{-6}`,
    gradients below the threshold are returned unchanged, those above become
    :math:`g \cdot c / \|g\|_2` exactly.
    """
    grads = validate.float_grads(grads)
    # +inf is allowed, as in torch: nothing is clipped and the total norm is still measured.
    if not (validate.is_real(max_norm) and float(max_norm) == math.inf):
        max_norm = validate.non_negative("max_norm", max_norm)
    p = _norm_type(norm_type)
    norms = [_p_norm(g, p) for g in grads if g.size]
    total = _p_norm(np.array(norms, dtype=np.float64), p) if norms else 0.0
    if not math.isfinite(total) and error_if_nonfinite:
        raise NonFiniteNormError(
            f"the total norm of order {norm_type} of the gradients is {total}, so it "
            f"cannot be clipped; pass error_if_nonfinite=False to scale by it anyway"
        )
    coef = max_norm / (total + _NORM_EPS)
    coef = 1.0 if coef > 1.0 else coef  # written so a NaN coef stays NaN, as in torch's clamp
    with np.errstate(invalid="ignore"):  # inf * 0 -> NaN is torch's behaviour, not news
        for g in grads:
            g *= coef
    return total


def clip_grad_value(grads, clip_value) -> None:
    r"""Clamp every gradient entry in place to :math:`[-c, c]`.

    .. math:: g \leftarrow \min(\max(g, -c), c)

    Exactly ``torch.nn.utils.clip_grad_value_`` (NaN entries stay NaN); same as
    ``optax.clip``.  Unlike norm clipping it changes the gradient's direction.
    """
    grads = validate.float_grads(grads)
    c = validate.non_negative("clip_value", clip_value)
    for g in grads:
        np.clip(g, -c, c, out=g)


def global_norm(arrays) -> float:
    r"""The 2-norm of all entries of all arrays together, :math:`\sqrt{\sum_i \lVert g_i\rVert_2^2}`.

    Summed array by array in float64, as ``optax.global_norm``. (:func:`clip_grad_norm`
    takes the norm of the per-array norms instead, as torch does; the two agree to rounding.)
    """
    return math.sqrt(sum(float(np.sum(np.square(np.asarray(a)))) for a in arrays))


def clip_by_global_norm(grads, max_norm: float) -> list:
    r"""``optax.clip_by_global_norm`` on NumPy arrays (returns new float64 arrays).

    .. math::
        g_i \leftarrow \begin{cases} g_i & \lVert g\rVert_2 < c \\
                                     g_i / \lVert g\rVert_2 \cdot c & \text{otherwise} \end{cases}

    Below the threshold the gradients are returned unchanged; at or above it every entry
    becomes :math:`g / \lVert g\rVert_2 \cdot c`, with no :math:`10^{-6}` in the denominator
    (contrast :func:`clip_grad_norm`, torch's rule).
    """
    g_norm = global_norm(grads)
    if g_norm < max_norm:
        return [np.array(g, dtype=np.float64, copy=True) for g in grads]
    return [np.asarray(g, dtype=np.float64) / g_norm * max_norm for g in grads]
