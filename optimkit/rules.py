r"""Update rules as small pure functions with explicit state.

Every rule comes as a pair, the way optax writes them::

    state = adam_init(params)
    params, state = adam_update(grads, state, params, lr=1e-3)
    print(state.m[0], state.v[0])        # the moments are plain arrays

``params`` and ``grads`` are lists of NumPy arrays. ``*_update`` never modifies
its arguments: it returns new parameters and a new state.

Each rule's arithmetic lives in one public per-array kernel (``sgd_kernel``,
``adagrad_kernel``, ``rmsprop_kernel``, ``adam_kernel``, ``nadam_kernel``,
``radam_kernel``, ``adamax_kernel``, ``adadelta_kernel``, ``rprop_kernel``,
``asgd_kernel``, ``adafactor_kernel``, ``muon_kernel``) that works in place on the arrays it is
given; L-BFGS, which needs the loss, is ``lbfgs_update`` over a closure. The pure
functions run it on copies; the torch-style classes in :mod:`optimkit.optim` run
it on their own buffers. So both faces compute the same numbers, bit for bit, and
the book shows the kernels as the code the tests check. What several kernels
share is written once: :func:`decay_or_couple` (weight decay),
:func:`update_moment` (a moving average of g or g²), :func:`bias_correction`
and :func:`radam_rectifier`.

Conventions follow ``torch.optim`` 2.13 (``_single_tensor_*`` paths): the step
counter ``t`` starts at 1 on the first update, ``eps`` is added *outside* the
square root, and coupled weight decay is added to the gradient first.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import validate

Arrays = list  # list[np.ndarray], one entry per parameter array


def _copy(arrays) -> list:
    return [None if a is None else np.array(a, copy=True) for a in arrays]


def decay_or_couple(p, g, lr, weight_decay, decoupled):
    """Apply weight decay: shrink ``p`` in place (decoupled) or return g + wd·p (L2)."""
    if weight_decay == 0:
        return g
    if decoupled:
        p *= 1 - lr * weight_decay
        return g
    return g + weight_decay * p


def update_moment(moment, g, decay, order=1):
    r"""The exponential moving average of :math:`g^{order}`, in place on ``moment``.

    .. math:: m \leftarrow \beta\, m + (1-\beta)\, g^{k}

    ``optax.tree.update_moment``'s job; written as ``m *= β; m += (1-β)·g·g`` so every kernel
    keeps torch's rounding (``mul_`` then ``add_``/``addcmul_``), bit for bit.
    """
    moment *= decay
    moment += (1 - decay) * g if order == 1 else (1 - decay) * g * g
    return moment


def bias_correction(decay, t):
    r""":math:`1 - \beta^t`, what a moving average started at zero falls short by after ``t`` steps."""
    return 1 - decay ** t


# ---------------------------------------------------------------------------
# SGD with momentum
# ---------------------------------------------------------------------------

def sgd_kernel(p, g, buf, *, t, lr, momentum, dampening, weight_decay, nesterov, maximize):
    """One SGD step on one array, in place on ``p`` and ``buf``."""
    if maximize:
        g = -g
    g = decay_or_couple(p, g, lr, weight_decay, decoupled=False)
    if momentum != 0:
        if t == 1:
            buf[...] = g  # the first buffer is the raw gradient, not damped
        else:
            buf *= momentum
            buf += g if dampening == 0 else (1 - dampening) * g  # no temporary when undamped
        g = g + momentum * buf if nesterov else buf
    p -= lr * g


class SGDState(NamedTuple):
    step: int
    momentum: Arrays  # the velocity b, one array per parameter


def sgd_init(params) -> SGDState:
    return SGDState(step=0, momentum=[np.zeros_like(p) for p in params])


def sgd_update(grads, state: SGDState, params, *, lr=1e-3, momentum=0.0, dampening=0.0,
               weight_decay=0.0, nesterov=False, maximize=False):
    r"""SGD with (heavy-ball or Nesterov) momentum, as ``torch.optim.SGD``.

    .. math::

        g_t &\leftarrow \nabla J(\theta_{t-1}) + \lambda\,\theta_{t-1} \\
        b_t &= \begin{cases} g_t & t = 1 \\ \mu\, b_{t-1} + (1-\tau)\, g_t & t > 1 \end{cases} \\
        \theta_t &= \theta_{t-1} - \eta\, \begin{cases} g_t + \mu\, b_t & \text{Nesterov} \\
                                                          b_t & \text{otherwise} \end{cases}

    With :math:`\mu = 0` this is plain SGD, :math:`\theta_t = \theta_{t-1} - \eta g_t`.
    """
    validate.sgd_args(lr, momentum, dampening, weight_decay, nesterov)
    params = _copy(validate.float_params(params))
    grads = validate.grads_like(grads, params)
    t = state.step + 1
    bufs = _copy(state.momentum)
    for p, g, b in zip(params, grads, bufs):
        sgd_kernel(p, np.asarray(g), b, t=t, lr=lr, momentum=momentum, dampening=dampening,
                    weight_decay=weight_decay, nesterov=nesterov, maximize=maximize)
    return params, SGDState(step=t, momentum=bufs)


# ---------------------------------------------------------------------------
# AdaGrad
# ---------------------------------------------------------------------------

def adagrad_kernel(p, g, s, *, t, lr, lr_decay, weight_decay, eps, maximize):
    """One AdaGrad step on one array, in place on ``p`` and ``s``."""
    if maximize:
        g = -g
    g = decay_or_couple(p, g, lr, weight_decay, decoupled=False)
    clr = lr / (1 + (t - 1) * lr_decay)
    s += g * g
    p -= clr * g / (np.sqrt(s) + eps)


class AdagradState(NamedTuple):
    step: int
    sum_sq: Arrays  # s: the running sum of squared gradients


def adagrad_init(params, initial_accumulator_value=0.0) -> AdagradState:
    validate.non_negative("initial_accumulator_value", initial_accumulator_value)
    return AdagradState(step=0, sum_sq=[np.full_like(p, initial_accumulator_value) for p in params])


def adagrad_update(grads, state: AdagradState, params, *, lr=1e-2, lr_decay=0.0,
                   weight_decay=0.0, eps=1e-10, maximize=False):
    r"""AdaGrad, as ``torch.optim.Adagrad``.

    .. math::

        s_t &= s_{t-1} + g_t \odot g_t \\
        \theta_t &= \theta_{t-1} - \frac{\eta}{1 + (t-1)\,\delta}\;
                    \frac{g_t}{\sqrt{s_t} + \epsilon}

    :math:`\delta` is ``lr_decay``; :math:`\epsilon` sits outside the root.
    """
    validate.common_args(lr, weight_decay)
    validate.non_negative("lr_decay", lr_decay)
    validate.positive("eps", eps)
    params = _copy(validate.float_params(params))
    grads = validate.grads_like(grads, params)
    t = state.step + 1
    sums = _copy(state.sum_sq)
    for p, g, s in zip(params, grads, sums):
        adagrad_kernel(p, np.asarray(g), s, t=t, lr=lr, lr_decay=lr_decay,
                        weight_decay=weight_decay, eps=eps, maximize=maximize)
    return params, AdagradState(step=t, sum_sq=sums)


# ---------------------------------------------------------------------------
# RMSProp
# ---------------------------------------------------------------------------

def rmsprop_kernel(p, g, v, g_avg, buf, *, lr, alpha, eps, weight_decay, momentum,
                    centered, maximize):
    """One RMSProp step on one array, in place on ``p``, ``v``, ``g_avg``, ``buf``."""
    if maximize:
        g = -g
    g = decay_or_couple(p, g, lr, weight_decay, decoupled=False)
    update_moment(v, g, alpha, order=2)
    if centered:
        update_moment(g_avg, g, alpha)
        denom = np.sqrt(v - g_avg * g_avg) + eps
    else:
        denom = np.sqrt(v) + eps
    if momentum > 0:
        buf *= momentum
        buf += g / denom
        p -= lr * buf
    else:
        p -= lr * g / denom


class RMSpropState(NamedTuple):
    step: int
    v: Arrays                # moving average of g², "square_avg" in torch
    g_avg: Arrays | None     # moving average of g (centered only)
    momentum: Arrays | None  # momentum buffer (momentum > 0 only)


def rmsprop_init(params, *, momentum=0.0, centered=False) -> RMSpropState:
    zeros = lambda: [np.zeros_like(p) for p in params]  # noqa: E731
    return RMSpropState(step=0, v=zeros(), g_avg=zeros() if centered else None,
                        momentum=zeros() if momentum > 0 else None)


def rmsprop_update(grads, state: RMSpropState, params, *, lr=1e-2, alpha=0.99, eps=1e-8,
                   weight_decay=0.0, momentum=0.0, centered=False, maximize=False):
    r"""RMSProp, as ``torch.optim.RMSprop`` (no bias correction, eps outside the root).

    .. math::

        v_t &= \alpha\, v_{t-1} + (1-\alpha)\, g_t^2 \\
        d_t &= \sqrt{v_t - \bar g_t^{\,2}} + \epsilon \quad\text{(centered, with }
               \bar g_t = \alpha \bar g_{t-1} + (1-\alpha) g_t\text{), else } \sqrt{v_t} + \epsilon \\
        \theta_t &= \theta_{t-1} - \eta\, g_t / d_t
        \qquad\text{or, with momentum } \mu:\quad
        b_t = \mu b_{t-1} + g_t / d_t,\;\; \theta_t = \theta_{t-1} - \eta\, b_t
    """
    validate.common_args(lr, weight_decay)
    validate.non_negative("alpha", alpha)
    validate.positive("eps", eps)
    validate.non_negative("momentum", momentum)
    if (centered and state.g_avg is None) or (momentum > 0 and state.momentum is None):
        raise ValueError("state was made for other settings: call "
                         "rmsprop_init(params, momentum=..., centered=...) with the same ones")
    params = _copy(validate.float_params(params))
    grads = validate.grads_like(grads, params)
    n = len(params)
    v = _copy(state.v)
    g_avg = _copy(state.g_avg) if centered else [None] * n
    bufs = _copy(state.momentum) if momentum > 0 else [None] * n
    for p, g, v_i, ga_i, b_i in zip(params, grads, v, g_avg, bufs):
        rmsprop_kernel(p, np.asarray(g), v_i, ga_i, b_i, lr=lr, alpha=alpha, eps=eps,
                        weight_decay=weight_decay, momentum=momentum, centered=centered,
                        maximize=maximize)
    return params, RMSpropState(step=state.step + 1, v=v,
                                g_avg=g_avg if centered else state.g_avg,
                                momentum=bufs if momentum > 0 else state.momentum)


# ---------------------------------------------------------------------------
# Adam, AdamW
# ---------------------------------------------------------------------------

def adam_kernel(p, g, m, v, v_max, *, t, lr, betas, eps, weight_decay, decoupled,
                 amsgrad, maximize):
    """One Adam (``decoupled=False``) or AdamW step on one array, in place."""
    beta1, beta2 = betas
    if maximize:
        g = -g
    g = decay_or_couple(p, g, lr, weight_decay, decoupled)
    update_moment(m, g, beta1)
    update_moment(v, g, beta2, order=2)
    if amsgrad:
        np.maximum(v_max, v, out=v_max)
        v = v_max
    bias_correction1 = bias_correction(beta1, t)
    bias_correction2 = bias_correction(beta2, t)
    denom = np.sqrt(v) / math.sqrt(bias_correction2) + eps
    p -= (lr / bias_correction1) * m / denom


class AdamState(NamedTuple):
    step: int
    m: Arrays             # first moment, "exp_avg" in torch
    v: Arrays             # second moment, "exp_avg_sq" in torch
    v_max: Arrays | None  # running max of v (amsgrad only)


def adam_init(params, *, amsgrad=False) -> AdamState:
    zeros = lambda: [np.zeros_like(p) for p in params]  # noqa: E731
    return AdamState(step=0, m=zeros(), v=zeros(), v_max=zeros() if amsgrad else None)


def adam_update(grads, state: AdamState, params, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                weight_decay=0.0, amsgrad=False, decoupled_weight_decay=False, maximize=False):
    r"""Adam, as ``torch.optim.Adam`` (AdamW with ``decoupled_weight_decay=True``).

    .. math::

        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t \\
        v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        \theta_t &= \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
                    \frac{m_t}{\sqrt{v_t}\,/\sqrt{1-\beta_2^t} + \epsilon}

    Coupled (L2) decay adds :math:`\lambda\theta_{t-1}` to :math:`g_t`; decoupled decay
    (AdamW) first shrinks :math:`\theta_{t-1} \leftarrow (1-\eta\lambda)\,\theta_{t-1}`.
    AMSGrad replaces :math:`v_t` in the step by :math:`\max_{s\le t} v_s`.
    """
    validate.adam_args(lr, betas, eps, weight_decay)
    if amsgrad and state.v_max is None:
        raise ValueError("state has no v_max: call adam_init(params, amsgrad=True) for AMSGrad")
    params = _copy(validate.float_params(params))
    grads = validate.grads_like(grads, params)
    t = state.step + 1
    m, v = _copy(state.m), _copy(state.v)
    v_max = _copy(state.v_max) if amsgrad else [None] * len(params)
    for p, g, m_i, v_i, vm_i in zip(params, grads, m, v, v_max):
        adam_kernel(p, np.asarray(g), m_i, v_i, vm_i, t=t, lr=lr, betas=betas, eps=eps,
                     weight_decay=weight_decay, decoupled=decoupled_weight_decay,
                     amsgrad=amsgrad, maximize=maximize)
    return params, AdamState(step=t, m=m, v=v, v_max=v_max if amsgrad else state.v_max)


def adamw_update(grads, state: AdamState, params, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=1e-2, amsgrad=False, maximize=False):
    r"""AdamW, as ``torch.optim.AdamW``: decoupled weight decay applied before the Adam step.

    .. math::

        \theta' &= (1 - \eta\lambda)\,\theta_{t-1} \\
        \theta_t &= \theta' - \frac{\eta}{1-\beta_1^t}\,
                    \frac{m_t}{\sqrt{v_t}\,/\sqrt{1-\beta_2^t} + \epsilon}
    """
    return adam_update(grads, state, params, lr=lr, betas=betas, eps=eps,
                       weight_decay=weight_decay, amsgrad=amsgrad,
                       decoupled_weight_decay=True, maximize=maximize)


adamw_init = adam_init


# ---------------------------------------------------------------------------
# NAdam
# ---------------------------------------------------------------------------

def nadam_momentum(t, beta1, momentum_decay):
    r"""Dozat's momentum schedule :math:`\mu_t = \beta_1(1 - \tfrac12\, 0.96^{t\psi})`."""
    return beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))


def nadam_kernel(p, g, m, v, *, t, mu_product, lr, betas, eps, weight_decay,
                  momentum_decay, decoupled, maximize):
    """One NAdam step on one array; returns the updated product of the mu's."""
    beta1, beta2 = betas
    if maximize:
        g = -g
    g = decay_or_couple(p, g, lr, weight_decay, decoupled)
    mu = nadam_momentum(t, beta1, momentum_decay)
    mu_next = nadam_momentum(t + 1, beta1, momentum_decay)
    mu_product = mu_product * mu
    update_moment(m, g, beta1)
    update_moment(v, g, beta2, order=2)
    denom = np.sqrt(v / bias_correction(beta2, t)) + eps
    p -= (lr * (1 - mu) / (1 - mu_product)) * g / denom
    p -= (lr * mu_next / (1 - mu_product * mu_next)) * m / denom
    return mu_product


class NAdamState(NamedTuple):
    step: int
    mu_product: float  # \prod_{s \le t} \mu_s
    m: Arrays
    v: Arrays


def nadam_init(params) -> NAdamState:
    return NAdamState(step=0, mu_product=1.0, m=[np.zeros_like(p) for p in params],
                      v=[np.zeros_like(p) for p in params])


def nadam_update(grads, state: NAdamState, params, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.0, momentum_decay=4e-3, decoupled_weight_decay=False,
                 maximize=False):
    r"""NAdam (Adam with Nesterov momentum), as ``torch.optim.NAdam``.

    .. math::

        \mu_t &= \beta_1\bigl(1 - \tfrac12\, 0.96^{t\psi}\bigr), \qquad
        \Pi_t = \textstyle\prod_{s\le t} \mu_s \\
        d_t &= \sqrt{v_t / (1-\beta_2^t)} + \epsilon \\
        \theta_t &= \theta_{t-1} - \eta\,\frac{1-\mu_t}{1-\Pi_t}\,\frac{g_t}{d_t}
                    - \eta\,\frac{\mu_{t+1}}{1-\Pi_t\,\mu_{t+1}}\,\frac{m_t}{d_t}
    """
    validate.adam_args(lr, betas, eps, weight_decay)
    validate.non_negative("momentum_decay", momentum_decay)
    params = _copy(validate.float_params(params))
    grads = validate.grads_like(grads, params)
    t = state.step + 1
    m, v = _copy(state.m), _copy(state.v)
    mu_product = state.mu_product
    for p, g, m_i, v_i in zip(params, grads, m, v):
        new_product = nadam_kernel(p, np.asarray(g), m_i, v_i, t=t, mu_product=mu_product,
                                    lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                    momentum_decay=momentum_decay,
                                    decoupled=decoupled_weight_decay, maximize=maximize)
    return params, NAdamState(step=t, mu_product=new_product, m=m, v=v)


# ---------------------------------------------------------------------------
# RAdam
# ---------------------------------------------------------------------------

def radam_rho(t, beta2):
    r"""Length of the approximated SMA: :math:`\rho_t = \rho_\infty - 2t\beta_2^t/(1-\beta_2^t)`."""
    rho_inf = 2 / (1 - beta2) - 1
    return rho_inf - 2 * t * beta2 ** t / (1 - beta2 ** t), rho_inf


def radam_rectifier(t, beta2):
    r"""RAdam's :math:`r_t`, or ``None`` while :math:`\rho_t \le 5` (an un-adapted momentum step).

    .. math::
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}
    """
    rho_t, rho_inf = radam_rho(t, beta2)
    if rho_t <= 5:
        return None
    return math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))


def radam_kernel(p, g, m, v, *, t, lr, betas, eps, weight_decay, decoupled, maximize):
    """One RAdam step on one array, in place."""
    beta1, beta2 = betas
    if maximize:
        g = -g
    g = decay_or_couple(p, g, lr, weight_decay, decoupled)
    update_moment(m, g, beta1)
    update_moment(v, g, beta2, order=2)
    bias_correction1 = bias_correction(beta1, t)
    bias_correction2 = bias_correction(beta2, t)
    rect = radam_rectifier(t, beta2)
    if rect is not None:
        p -= (m / bias_correction1) * lr * (math.sqrt(bias_correction2) / (np.sqrt(v) + eps)) * rect
    else:  # variance not yet tractable: an un-adapted momentum step
        p -= (m / bias_correction1) * lr


class RAdamState(NamedTuple):
    step: int
    m: Arrays
    v: Arrays


def radam_init(params) -> RAdamState:
    return RAdamState(step=0, m=[np.zeros_like(p) for p in params],
                      v=[np.zeros_like(p) for p in params])


def radam_update(grads, state: RAdamState, params, *, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                 weight_decay=0.0, decoupled_weight_decay=False, maximize=False):
    r"""RAdam (rectified Adam), as ``torch.optim.RAdam``.

    .. math::

        \rho_\infty &= \frac{2}{1-\beta_2} - 1, \qquad
        \rho_t = \rho_\infty - \frac{2t\,\beta_2^t}{1-\beta_2^t} \\
        \theta_t &= \theta_{t-1} - \eta\,\frac{m_t}{1-\beta_1^t}\cdot
        \begin{cases}
          r_t\,\dfrac{\sqrt{1-\beta_2^t}}{\sqrt{v_t}+\epsilon} & \rho_t > 5 \\
          1 & \text{otherwise}
        \end{cases}, \qquad
        r_t = \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}
    """
    validate.adam_args(lr, betas, eps, weight_decay)
    params = _copy(validate.float_params(params))
    grads = validate.grads_like(grads, params)
    t = state.step + 1
    m, v = _copy(state.m), _copy(state.v)
    for p, g, m_i, v_i in zip(params, grads, m, v):
        radam_kernel(p, np.asarray(g), m_i, v_i, t=t, lr=lr, betas=betas, eps=eps,
                      weight_decay=weight_decay, decoupled=decoupled_weight_decay,
                      maximize=maximize)
    return params, RAdamState(step=t, m=m, v=v)


# ---------------------------------------------------------------------------
# Adamax
# ---------------------------------------------------------------------------

def adamax_kernel(p, g, m, u, *, t, lr, betas, eps, weight_decay, maximize):
    """One Adamax step on one array, in place on ``p``, ``m`` and ``u`` (the infinity norm)."""
    beta1, beta2 = betas
    if maximize:
        g = -g
    g = decay_or_couple(p, g, lr, weight_decay, decoupled=False)
    update_moment(m, g, beta1)
    u *= beta2
    np.maximum(u, np.abs(g) + eps, out=u)  # eps inside the max, so u > 0 from the first step
    p -= (lr / bias_correction(beta1, t)) * m / u


class AdamaxState(NamedTuple):
    step: int
    m: Arrays  # first moment, "exp_avg" in torch
    u: Arrays  # exponentially weighted infinity norm, "exp_inf" in torch


def adamax_init(params) -> AdamaxState:
    return AdamaxState(step=0, m=[np.zeros_like(p) for p in params],
                       u=[np.zeros_like(p) for p in params])


def adamax_update(grads, state: AdamaxState, params, *, lr=2e-3, betas=(0.9, 0.999), eps=1e-8,
                  weight_decay=0.0, maximize=False):
    r"""Adamax (Adam with the infinity norm), as ``torch.optim.Adamax``.

    .. math::

        \begin{aligned}
            &\hspace{5mm}if \: \lambda \neq 0                                                    \\
            &\hspace{10mm} g_t \leftarrow g_t + \lambda  \theta_{t-1}                            \\
            &\hspace{5mm}m_t      \leftarrow   \beta_1 m_{t-1} + (1 - \beta_1) g_t               \\
            &\hspace{5mm}u_t      \leftarrow   \mathrm{max}(\beta_2 u_{t-1}, |g_{t}|+\epsilon)   \\
            &\hspace{5mm}\theta_t \leftarrow \theta_{t-1} - \frac{\gamma m_t}{(1-\beta^t_1) u_t}
        \end{aligned}

    :math:`\gamma` is ``lr``; :math:`m_0 = u_0 = 0`.
    """
    validate.adamax_args(lr, betas, eps, weight_decay)
    params = _copy(validate.float_params(params))
    grads = validate.grads_like(grads, params)
    t = state.step + 1
    m, u = _copy(state.m), _copy(state.u)
    for p, g, m_i, u_i in zip(params, grads, m, u):
        adamax_kernel(p, np.asarray(g), m_i, u_i, t=t, lr=lr, betas=betas, eps=eps,
                      weight_decay=weight_decay, maximize=maximize)
    return params, AdamaxState(step=t, m=m, u=u)


# ---------------------------------------------------------------------------
# Adadelta
# ---------------------------------------------------------------------------

def adadelta_kernel(p, g, v, u, *, lr, rho, eps, weight_decay, maximize):
    """One Adadelta step on one array, in place on ``p``, ``v`` (g²) and ``u`` (Δx²)."""
    if maximize:
        g = -g
    g = decay_or_couple(p, g, lr, weight_decay, decoupled=False)
    update_moment(v, g, rho, order=2)
    delta = np.sqrt(u + eps) / np.sqrt(v + eps) * g  # eps inside both roots
    update_moment(u, delta, rho, order=2)
    p -= lr * delta


class AdadeltaState(NamedTuple):
    step: int
    v: Arrays  # moving average of g², "square_avg" in torch
    u: Arrays  # moving average of the squared steps, "acc_delta" in torch


def adadelta_init(params) -> AdadeltaState:
    return AdadeltaState(step=0, v=[np.zeros_like(p) for p in params],
                         u=[np.zeros_like(p) for p in params])


def adadelta_update(grads, state: AdadeltaState, params, *, lr=1.0, rho=0.9, eps=1e-6,
                    weight_decay=0.0, maximize=False):
    r"""Adadelta, as ``torch.optim.Adadelta``.

    .. math::

        \begin{aligned}
            &\hspace{5mm}if \: \lambda \neq 0                                                    \\
            &\hspace{10mm} g_t \leftarrow g_t + \lambda  \theta_{t-1}                            \\
            &\hspace{5mm} v_t      \leftarrow v_{t-1} \rho + g^2_t (1 - \rho)                    \\
            &\hspace{5mm}\Delta x_t    \leftarrow   \frac{\sqrt{u_{t-1} +
                \epsilon }}{ \sqrt{v_t + \epsilon}  }g_t \hspace{21mm}                           \\
            &\hspace{5mm} u_t  \leftarrow   u_{t-1}  \rho +
                 \Delta x^2_t  (1 - \rho)                                                        \\
            &\hspace{5mm}\theta_t      \leftarrow   \theta_{t-1} - \gamma  \Delta x_t
        \end{aligned}

    :math:`\gamma` is ``lr`` (1 by default: Adadelta's step has the units of θ on its own).
    """
    validate.adadelta_args(lr, rho, eps, weight_decay)
    params = _copy(validate.float_params(params))
    grads = validate.grads_like(grads, params)
    v, u = _copy(state.v), _copy(state.u)
    for p, g, v_i, u_i in zip(params, grads, v, u):
        adadelta_kernel(p, np.asarray(g), v_i, u_i, lr=lr, rho=rho, eps=eps,
                        weight_decay=weight_decay, maximize=maximize)
    return params, AdadeltaState(step=state.step + 1, v=v, u=u)


# ---------------------------------------------------------------------------
# Rprop
# ---------------------------------------------------------------------------

def torch_sign(x):
    """``torch.sign``: the sign of each element, and 0 for NaN (NumPy's ``sign`` gives NaN)."""
    return np.sign(np.nan_to_num(x, nan=0.0))


def rprop_kernel(p, g, prev, step_size, *, etas, step_sizes, maximize):
    """One Rprop step on one array, in place on ``p``, ``prev`` and ``step_size``."""
    etaminus, etaplus = etas
    if maximize:
        g = -g
    sign = torch_sign(g * prev)
    factor = np.where(sign > 0, etaplus, np.where(sign < 0, etaminus, 1.0))
    step_size *= factor
    np.clip(step_size, step_sizes[0], step_sizes[1], out=step_size)
    g = np.where(sign < 0, 0.0, g)  # after a sign change: no step, and no change next time
    p -= torch_sign(g) * step_size  # so a NaN gradient element moves nothing, as in torch
    prev[...] = g


class RpropState(NamedTuple):
    step: int
    prev: Arrays       # the previous (possibly zeroed) gradient
    step_size: Arrays  # one step size per element


def rprop_init(params, lr=1e-2) -> RpropState:
    validate.non_negative("lr", lr)
    return RpropState(step=0, prev=[np.zeros_like(p) for p in params],
                      step_size=[np.full_like(p, lr) for p in params])


def rprop_update(grads, state: RpropState, params, *, etas=(0.5, 1.2), step_sizes=(1e-6, 50),
                 maximize=False):
    r"""Rprop (resilient backpropagation), as ``torch.optim.Rprop``: only the sign of each
    gradient element is used, with a step size per element that grows while the sign holds.

    .. math::

        \begin{aligned}
            &\hspace{5mm} \textbf{for} \text{  } i = 0, 1, \ldots, d-1 \: \mathbf{do}            \\
            &\hspace{10mm}  \textbf{if} \:   g^i_{prev} g^i_t  > 0                               \\
            &\hspace{15mm}  \eta^i_t \leftarrow \mathrm{min}(\eta^i_{t-1} \eta_{+},
                \Gamma_{max})                                                                    \\
            &\hspace{10mm}  \textbf{else if}  \:  g^i_{prev} g^i_t < 0                           \\
            &\hspace{15mm}  \eta^i_t \leftarrow \mathrm{max}(\eta^i_{t-1} \eta_{-},
                \Gamma_{min})                                                                    \\
            &\hspace{15mm}  g^i_t \leftarrow 0                                                   \\
            &\hspace{10mm}  \textbf{else}  \:                                                    \\
            &\hspace{15mm}  \eta^i_t \leftarrow \eta^i_{t-1}                                     \\
            &\hspace{5mm}\theta_t \leftarrow \theta_{t-1}- \eta_t \mathrm{sign}(g_t)             \\
            &\hspace{5mm}g_{prev} \leftarrow  g_t
        \end{aligned}

    The step sizes start at ``lr`` (:func:`rprop_init`); later values of ``lr`` are not used.
    """
    etas = validate.rprop_etas(etas)
    step_sizes = validate.rprop_step_sizes(step_sizes)
    params = _copy(validate.float_params(params))
    grads = validate.grads_like(grads, params)
    prev, sizes = _copy(state.prev), _copy(state.step_size)
    for p, g, prev_i, size_i in zip(params, grads, prev, sizes):
        rprop_kernel(p, np.asarray(g), prev_i, size_i, etas=etas, step_sizes=step_sizes,
                     maximize=maximize)
    return params, RpropState(step=state.step + 1, prev=prev, step_size=sizes)


# ---------------------------------------------------------------------------
# ASGD
# ---------------------------------------------------------------------------

def asgd_schedule(t, *, lr, lambd, alpha, t0):
    r"""ASGD's step size and averaging weight after step ``t``:
    :math:`\eta_t = \gamma / (1 + \lambda\gamma t)^{\alpha}`, :math:`\mu_t = 1/\max(1, t - t_0)`."""
    return lr / ((1 + lambd * lr * t) ** alpha), 1 / max(1, t - t0)


def asgd_kernel(p, g, ax, *, eta, mu, lambd, weight_decay, maximize):
    """One ASGD step on one array with this step's ``eta`` and ``mu``, in place on ``p`` and
    ``ax`` (the running average of the iterates)."""
    if maximize:
        g = -g
    g = decay_or_couple(p, g, eta, weight_decay, decoupled=False)
    p *= 1 - lambd * eta
    p -= eta * g
    if mu != 1:
        ax += (p - ax) * mu
    else:  # mu = 1 until t0 steps have passed: the "average" is the last iterate
        ax[...] = p


class ASGDState(NamedTuple):
    step: int
    eta: float  # the step size this step uses
    mu: float   # the averaging weight this step uses
    ax: Arrays  # the averaged parameters (read them for the ASGD estimate)


def asgd_init(params, lr=1e-2) -> ASGDState:
    validate.non_negative("lr", lr)
    return ASGDState(step=0, eta=float(lr), mu=1.0, ax=[np.zeros_like(p) for p in params])


def asgd_update(grads, state: ASGDState, params, *, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6,
                weight_decay=0.0, maximize=False):
    r"""Averaged SGD (Polyak and Juditsky), as ``torch.optim.ASGD``.

    torch's documentation gives no formulas; its code does, per step :math:`t`:

    .. math::

        \theta_t &= (1 - \lambda\eta_{t-1})\,\theta_{t-1} - \eta_{t-1}\, g_t \\
        \bar\theta_t &= \bar\theta_{t-1} + \mu_{t-1}\,(\theta_t - \bar\theta_{t-1}) \\
        \eta_t &= \frac{\gamma}{(1 + \lambda\gamma t)^{\alpha}}, \qquad
        \mu_t = \frac{1}{\max(1,\, t - t_0)}

    with :math:`\eta_0 = \gamma` (``lr``), :math:`\mu_0 = 1`, and L2 weight decay added to
    :math:`g_t`. The average :math:`\bar\theta` (``ax``) is the estimate ASGD returns; the
    parameters themselves follow plain decayed SGD.
    """
    validate.asgd_args(lr, lambd, alpha, t0, weight_decay)
    params = _copy(validate.float_params(params))
    grads = validate.grads_like(grads, params)
    t = state.step + 1
    ax = _copy(state.ax)
    for p, g, ax_i in zip(params, grads, ax):
        asgd_kernel(p, np.asarray(g), ax_i, eta=state.eta, mu=state.mu, lambd=lambd,
                    weight_decay=weight_decay, maximize=maximize)
    eta, mu = asgd_schedule(t, lr=lr, lambd=lambd, alpha=alpha, t0=t0)
    return params, ASGDState(step=t, eta=eta, mu=mu, ax=ax)


# ---------------------------------------------------------------------------
# Adafactor
# ---------------------------------------------------------------------------

def adafactor_kernel(p, g, row, col, v, *, t, lr, beta2_decay, eps, d, weight_decay, maximize):
    """One Adafactor step on one array, in place on ``p`` and its second-moment state: the row
    and column factors ``row``, ``col`` for a matrix (or a stack of them), ``v`` otherwise."""
    eps1, eps2 = eps
    if eps1 is None:
        eps1 = np.finfo(p.dtype).eps
    if maximize:
        g = -g
    decay = 1 - t ** beta2_decay  # the step-dependent beta_2: 0 at t = 1, rising towards 1
    rho = min(lr, 1 / t ** 0.5)
    alpha = max(eps2, float(np.linalg.norm(p)) / p.size ** 0.5) * rho  # before the decay
    if weight_decay != 0:
        p *= 1 - lr * weight_decay
    if g.ndim > 1:
        update_moment(row, np.mean(g * g, axis=-1, keepdims=True), decay)
        update_moment(col, np.mean(g * g, axis=-2, keepdims=True), decay)
        v = row @ col / np.maximum(np.mean(row, axis=-2, keepdims=True), eps1)
    else:
        update_moment(v, g, decay, order=2)
    u = g / np.sqrt(np.maximum(v, eps1 * eps1))
    denom = max(1.0, float(np.linalg.norm(u)) / (u.size ** 0.5 * d))  # clip RMS(u) at d
    p -= (alpha / denom) * u


class AdafactorState(NamedTuple):
    step: int
    row: Arrays  # row factor R (matrices; None for vectors), "row_var" in torch
    col: Arrays  # column factor C (matrices; None for vectors), "col_var" in torch
    v: Arrays    # second moment (vectors and scalars; None for matrices), "variance" in torch


def adafactor_init(params) -> AdafactorState:
    def factor(p, axis):
        shape = list(p.shape)
        shape[axis] = 1
        return np.zeros(shape, dtype=p.dtype)
    matrix = [np.ndim(p) > 1 for p in params]
    return AdafactorState(step=0,
                          row=[factor(p, -1) if m else None for p, m in zip(params, matrix)],
                          col=[factor(p, -2) if m else None for p, m in zip(params, matrix)],
                          v=[None if m else np.zeros_like(p) for p, m in zip(params, matrix)])


def adafactor_update(grads, state: AdafactorState, params, *, lr=1e-2, beta2_decay=-0.8,
                     eps=(None, 1e-3), d=1.0, weight_decay=0.0, maximize=False):
    r"""Adafactor, as ``torch.optim.Adafactor``: the second moment of a matrix kept as a row
    and a column factor (memory m + n instead of mn), relative step sizes, update clipping.

    .. math::

        \begin{aligned}
            &\hspace{5mm}\widehat{\beta}_{2_t} \leftarrow 1 - t^{\tau}                           \\
            &\hspace{5mm}\rho_t         \leftarrow min(\gamma, \frac{1}{\sqrt{t}})               \\
            &\hspace{5mm}\alpha_t       \leftarrow max(\epsilon_2,
                \text{RMS}(\theta_{t-1}))\rho_t                                                  \\
            &\hspace{5mm}\theta_t       \leftarrow \theta_{t-1} - \gamma \lambda \theta_{t-1}    \\
            &\hspace{5mm}\textbf{if} \: \text{dim}(G_t) > 1:                                     \\
            &\hspace{10mm}R_t           \leftarrow \widehat{\beta}_{2_t}R_{t-1}+
                (1-\widehat{\beta}_{2_t})(G_t \odot G_t) \cdot 1_m                               \\
            &\hspace{10mm}C_t           \leftarrow \widehat{\beta}_{2_t}C_{t-1}+
                (1-\widehat{\beta}_{2_t}) 1^\top_n \cdot (G_t \odot G_t)                         \\
            &\hspace{10mm}\widehat{V}_t \leftarrow
                \frac{R_t \cdot C_t}{max(1^\top_n \cdot R_t, \epsilon_1)}                        \\
            &\hspace{5mm}\textbf{else}                                                           \\
            &\hspace{10mm}\widehat{V}_t \leftarrow \widehat{\beta}_{2_t}\widehat{V}_{t-1}+
                (1-\widehat{\beta}_{2_t}) \cdot (G_t \odot G_t)                                  \\
            &\hspace{5mm}U_t            \leftarrow
                \frac{G_t}{max(\sqrt{\widehat{V}_t}, \epsilon_1)}                                \\
            &\hspace{5mm}\widehat{U}_t  \leftarrow \frac{U_t}{max(1, \frac{\text{RMS}(U_t)}{d})} \\
            &\hspace{5mm}\theta_t       \leftarrow \theta_{t-1} - \alpha_t \widehat{U}_t
        \end{aligned}

    As torch's code (its documentation writes sums): :math:`R` and :math:`C` average
    :math:`G \odot G` over rows and columns, and :math:`\widehat V` divides by the *mean* of
    :math:`R`. :math:`\epsilon_1` = ``None`` is the dtype's machine epsilon.
    """
    eps = validate.adafactor_args(lr, beta2_decay, eps, d, weight_decay)
    params = _copy(validate.float_params(params))
    grads = validate.grads_like(grads, params)
    t = state.step + 1
    row, col, v = _copy(state.row), _copy(state.col), _copy(state.v)
    for p, g, r_i, c_i, v_i in zip(params, grads, row, col, v):
        adafactor_kernel(p, np.asarray(g), r_i, c_i, v_i, t=t, lr=lr, beta2_decay=beta2_decay,
                         eps=eps, d=d, weight_decay=weight_decay, maximize=maximize)
    return params, AdafactorState(step=t, row=row, col=col, v=v)


# ---------------------------------------------------------------------------
# Muon
# ---------------------------------------------------------------------------

MUON_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
"""Keller Jordan's quintic Newton-Schulz coefficients (a, b, c), torch's default."""


def lerp(start, end, weight):
    """``start + weight (end - start)`` as torch's ``lerp`` computes it: from ``end`` backwards
    when ``weight >= 0.5``, so that weight 1 gives ``end`` exactly."""
    if abs(weight) < 0.5:
        return start + weight * (end - start)
    return end - (end - start) * (1 - weight)


def round_bfloat16(x):
    """``x`` rounded to the nearest bfloat16 (ties to even), kept in float64: bfloat16 is
    float32 with the low 16 bits of the mantissa cut, 8 significant bits (relative spacing
    2^-7, so a rounding error of at most 2^-8 ≈ 0.4 %). Torch converts float64 to bfloat16
    through float32, as this does."""
    x32 = np.asarray(x, dtype=np.float32)
    bits = x32.view(np.uint32).astype(np.uint64)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    rounded = bits.astype(np.uint32).view(np.float32).astype(np.float64)
    return np.where(np.isfinite(x32), rounded, x32)


def newton_schulz(G, coefficients=MUON_COEFFICIENTS, steps=5, eps=1e-7, *, bfloat16=True):
    r"""The quintic Newton-Schulz iteration that pushes every singular value of ``G`` towards 1:
    :math:`G = U\Sigma V^\top \mapsto U S' V^\top`, with :math:`S'_{ii}` roughly in [0.7, 1.2].

    .. math::

        X_0 = \frac{G}{\max(\lVert G\rVert_F, \varepsilon)}, \qquad
        X_{k+1} = a X_k + \left(b\, X_k X_k^\top + c\, (X_k X_k^\top)^2\right) X_k

    on :math:`G^\top` when ``G`` has more rows than columns (so :math:`X X^\top` is the smaller
    Gram matrix). Each singular value follows :math:`\sigma \mapsto a\sigma + b\sigma^3 + c\sigma^5`;
    dividing by the Frobenius norm puts them all in (0, 1] first. ``bfloat16=True`` rounds every
    operation's result to bfloat16, as ``torch.optim.Muon`` computes it (on the CPU too, whatever
    the parameter's dtype); ``False`` computes in ``G``'s own dtype.
    """
    a, b, c = coefficients
    r = round_bfloat16 if bfloat16 else np.asarray
    X = r(G)
    tall = X.shape[0] > X.shape[1]
    if tall:
        X = X.T
    X = r(X / max(r(np.linalg.norm(X)), r(eps)))
    for _ in range(steps):
        A = r(X @ X.T)
        B = r(b * A + c * (A @ A))
        X = r(a * X + B @ X)
    return (X.T if tall else X).astype(G.dtype)


def muon_adjusted_lr(lr, adjust_lr_fn, shape):
    r"""The learning rate Muon applies to a matrix of ``shape`` (A, B):
    :math:`\gamma\sqrt{\max(1, A/B)}` (``None``/``"original"``, Keller Jordan's) or
    :math:`0.2\,\gamma\sqrt{\max(A, B)}` (``"match_rms_adamw"``, Moonshot's: the update's RMS
    then matches AdamW's, so AdamW's lr and weight decay carry over)."""
    rows, cols = shape[:2]
    if adjust_lr_fn == "match_rms_adamw":
        return lr * (0.2 * math.sqrt(max(rows, cols)))
    return lr * math.sqrt(max(1, rows / cols))


def muon_kernel(p, g, buf, *, lr, weight_decay, momentum, nesterov, ns_coefficients, eps,
                ns_steps, adjust_lr_fn, bfloat16=True):
    """One Muon step on one matrix, in place on ``p`` and its momentum buffer ``buf``."""
    buf[...] = lerp(buf, g, 1 - momentum)  # B <- mu B + (1 - mu) g
    update = lerp(g, buf, momentum) if nesterov else buf
    O = newton_schulz(update, ns_coefficients, ns_steps, eps, bfloat16=bfloat16)
    p *= 1 - lr * weight_decay  # decoupled, with the unadjusted lr
    p -= muon_adjusted_lr(lr, adjust_lr_fn, p.shape) * O


class MuonState(NamedTuple):
    step: int
    momentum_buffer: Arrays  # B, one matrix per parameter


def muon_init(params) -> MuonState:
    validate.matrix_params("Muon", params)
    return MuonState(step=0, momentum_buffer=[np.zeros_like(p) for p in params])


def muon_update(grads, state: MuonState, params, *, lr=1e-3, weight_decay=0.1, momentum=0.95,
                nesterov=True, ns_coefficients=MUON_COEFFICIENTS, eps=1e-7, ns_steps=5,
                adjust_lr_fn=None, bfloat16=True):
    r"""Muon (MomentUm Orthogonalized by Newton-Schulz), as ``torch.optim.Muon``: momentum,
    then the matrix nearest to it with every singular value near 1, for 2-D parameters only.

    .. math::

        \begin{aligned}
            &\hspace{5mm} g_t \leftarrow \nabla_{\theta} f_t(\theta_{t-1}) \\
            &\hspace{5mm} B_t \leftarrow \mu B_{t-1} + (1-\mu)\, g_t \\
            &\hspace{5mm} \widetilde{B}_t \leftarrow
                \begin{cases}
                   (1-\mu)\, g_t + \mu B_t, & \text{if nesterov} \\
                   B_t,           & \text{otherwise}
                \end{cases} \\
            &\hspace{5mm} O_t \leftarrow \mathrm{NS}^{(a,b,c)}_{k}\big(\widetilde{B}_t;\ \varepsilon\big) \\
            &\hspace{5mm} \theta_t \leftarrow \theta_{t-1} - \gamma\,\lambda\,\theta_{t-1} \\
            &\hspace{5mm} \theta_t \leftarrow \theta_t - \mathrm{AdjustLR}\big(\gamma;\ \mathrm{shape}(\theta_t)\big)\, O_t
        \end{aligned}

    with :math:`\mathrm{NS}` :func:`newton_schulz` and :math:`\mathrm{AdjustLR}`
    :func:`muon_adjusted_lr`. torch's documentation writes :math:`B_t \leftarrow \mu B_{t-1} + g_t`
    and :math:`g_t + \mu B_t`; its code (and this) averages, ``lerp``. The two differ by the
    factor :math:`1-\mu`, which the Newton-Schulz normalisation divides out (up to
    :math:`\varepsilon`). ``bfloat16=False`` runs Newton-Schulz in the parameters' dtype
    instead of torch's bfloat16.
    """
    coefficients = validate.muon_args(lr, weight_decay, momentum, nesterov, ns_coefficients, eps,
                                      ns_steps, adjust_lr_fn)
    params = _copy(validate.float_params(params))
    validate.matrix_params("Muon", params)
    grads = validate.grads_like(grads, params)
    bufs = _copy(state.momentum_buffer)
    for p, g, b in zip(params, grads, bufs):
        muon_kernel(p, np.asarray(g), b, lr=lr, weight_decay=weight_decay, momentum=momentum,
                    nesterov=nesterov, ns_coefficients=coefficients, eps=eps, ns_steps=ns_steps,
                    adjust_lr_fn=adjust_lr_fn, bfloat16=bfloat16)
    return params, MuonState(step=state.step + 1, momentum_buffer=bufs)


# ---------------------------------------------------------------------------
# L-BFGS (torch's, with its strong-Wolfe line search)
# ---------------------------------------------------------------------------

def cubic_interpolate(x1, f1, g1, x2, f2, g2, bounds=None):
    """The minimiser of the cubic through (x1, f1) and (x2, f2) with slopes g1, g2, clamped to
    ``bounds`` (default: between x1 and x2); their midpoint when the cubic has no minimum."""
    xmin_bound, xmax_bound = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 ** 2 - g1 * g2
    if d2_square < 0:
        return (xmin_bound + xmax_bound) / 2.0
    d2 = math.sqrt(d2_square)
    if x1 <= x2:
        min_pos = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        min_pos = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(min_pos, xmin_bound), xmax_bound)


def strong_wolfe(evaluate, t, d, f, g, gtd, c1=1e-4, c2=0.9, tolerance_change=1e-9, max_ls=25):
    r"""torch's line search along ``d`` for a step ``t`` meeting the strong Wolfe conditions

    .. math:: f(x + t d) \le f(x) + c_1 t\, g^\top d, \qquad
              |\nabla f(x + t d)^\top d| \le c_2\, |g^\top d|

    by bracketing then zooming with cubic interpolation. ``evaluate(t)`` returns the loss and
    flat gradient at :math:`x + t d`. Returns ``(f_new, g_new, t, evaluations)``.
    """
    d_norm = float(np.max(np.abs(d)))
    f_new, g_new = evaluate(t)
    ls_func_evals, gtd_new = 1, float(g_new @ d)
    t_prev, f_prev, g_prev, gtd_prev = 0, f, g, gtd
    done, ls_iter = False, 0
    while ls_iter < max_ls:  # bracket a step that satisfies the conditions
        if f_new > (f + c1 * t * gtd) or (ls_iter > 1 and f_new >= f_prev):
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        if abs(gtd_new) <= -c2 * gtd:
            bracket, bracket_f, bracket_g, done = [t], [f_new], [g_new], True
            break
        if gtd_new >= 0:
            bracket, bracket_f = [t_prev, t], [f_prev, f_new]
            bracket_g, bracket_gtd = [g_prev, g_new], [gtd_prev, gtd_new]
            break
        min_step, max_step = t + 0.01 * (t - t_prev), t * 10
        t_prev, t = t, cubic_interpolate(t_prev, f_prev, gtd_prev, t, f_new, gtd_new,
                                         bounds=(min_step, max_step))
        f_prev, g_prev, gtd_prev = f_new, g_new, gtd_new
        f_new, g_new = evaluate(t)
        ls_func_evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
    if ls_iter == max_ls:
        bracket, bracket_f, bracket_g = [0, t], [f, f_new], [g, g_new]
    insuf_progress = False
    low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[-1] else (1, 0)
    while not done and ls_iter < max_ls:  # zoom into the bracket
        if abs(bracket[1] - bracket[0]) * d_norm < tolerance_change:
            break
        t = cubic_interpolate(bracket[0], bracket_f[0], bracket_gtd[0],
                              bracket[1], bracket_f[1], bracket_gtd[1])
        # a step too close to an end of the bracket makes no progress: move it inside
        eps = 0.1 * (max(bracket) - min(bracket))
        if min(max(bracket) - t, t - min(bracket)) < eps:
            if insuf_progress or t >= max(bracket) or t <= min(bracket):
                t = max(bracket) - eps if abs(t - max(bracket)) < abs(t - min(bracket)) \
                    else min(bracket) + eps
                insuf_progress = False
            else:
                insuf_progress = True
        else:
            insuf_progress = False
        f_new, g_new = evaluate(t)
        ls_func_evals += 1
        gtd_new = float(g_new @ d)
        ls_iter += 1
        if f_new > (f + c1 * t * gtd) or f_new >= bracket_f[low_pos]:
            bracket[high_pos], bracket_f[high_pos] = t, f_new
            bracket_g[high_pos], bracket_gtd[high_pos] = g_new, gtd_new
            low_pos, high_pos = (0, 1) if bracket_f[0] <= bracket_f[1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (bracket[high_pos] - bracket[low_pos]) >= 0:
                bracket[high_pos], bracket_f[high_pos] = bracket[low_pos], bracket_f[low_pos]
                bracket_g[high_pos] = bracket_g[low_pos]
                bracket_gtd[high_pos] = bracket_gtd[low_pos]
            bracket[low_pos], bracket_f[low_pos] = t, f_new
            bracket_g[low_pos], bracket_gtd[low_pos] = g_new, gtd_new
    return bracket_f[low_pos], bracket_g[low_pos], bracket[low_pos], ls_func_evals


def lbfgs_direction(g, old_dirs, old_stps, ro, H_diag):
    r"""The two-loop recursion: :math:`-H g` for the L-BFGS inverse-Hessian estimate :math:`H`
    built from the pairs :math:`y_i` (``old_dirs``), :math:`s_i` (``old_stps``),
    :math:`\rho_i = 1/y_i^\top s_i` and the initial scaling ``H_diag`` :math:`= s^\top y/y^\top y`."""
    q = -g
    al = [0.0] * len(old_dirs)
    for i in range(len(old_dirs) - 1, -1, -1):
        al[i] = float(old_stps[i] @ q) * ro[i]
        q -= al[i] * old_dirs[i]
    r = q * H_diag
    for i in range(len(old_dirs)):
        be_i = float(old_dirs[i] @ r) * ro[i]
        r += (al[i] - be_i) * old_stps[i]
    return r


class LBFGSState(NamedTuple):
    func_evals: int                      # closure calls, over all steps
    n_iter: int                          # iterations, over all steps
    d: np.ndarray | None                 # the last direction (flat)
    t: float | None                      # the last step length
    old_dirs: Arrays                     # y_i = g_{i+1} - g_i, newest last
    old_stps: Arrays                     # s_i = t_i d_i
    ro: list                             # 1 / (y_i . s_i)
    H_diag: float                        # s.y / y.y of the newest pair
    prev_flat_grad: np.ndarray | None
    prev_loss: float | None


def lbfgs_init(params=None) -> LBFGSState:
    return LBFGSState(func_evals=0, n_iter=0, d=None, t=None, old_dirs=[], old_stps=[], ro=[],
                      H_diag=1.0, prev_flat_grad=None, prev_loss=None)


def lbfgs_update(fun, state: LBFGSState, params, *, lr=1.0, max_iter=20, max_eval=None,
                 tolerance_grad=1e-7, tolerance_change=1e-9, history_size=100,
                 line_search_fn=None):
    r"""One ``step`` of ``torch.optim.LBFGS``: up to ``max_iter`` L-BFGS iterations.

    ``fun(params)`` returns ``(loss, grads)`` at the given list of arrays (a ``None`` gradient
    counts as zeros). Returns ``(params, state, loss)``, ``loss`` being the loss at the start,
    as torch's ``step`` returns. Each iteration moves :math:`x \leftarrow x + t\,d` along the
    two-loop direction :math:`d = -H g` (:func:`lbfgs_direction`), with :math:`t` =
    ``lr`` (the first iteration ever: :math:`\min(1, 1/\lVert g\rVert_1)\,`\ ``lr``) or, with
    ``line_search_fn="strong_wolfe"``, the step :func:`strong_wolfe` finds from there. A pair
    :math:`(s, y)` enters the history only when :math:`y^\top s > 10^{-10}`. It stops early
    when :math:`\max|g| \le` ``tolerance_grad``, when a step or a change of loss falls below
    ``tolerance_change``, or after ``max_eval`` evaluations.
    """
    max_eval = validate.lbfgs_args(lr, max_iter, max_eval, tolerance_grad, tolerance_change,
                                   history_size, line_search_fn)
    params = validate.float_params(params)
    shapes, sizes = [p.shape for p in params], [p.size for p in params]
    x = np.concatenate([np.ravel(p) for p in params]).astype(np.result_type(*params))

    def evaluate(flat):
        arrays = [a.reshape(s) for a, s in zip(np.split(flat, np.cumsum(sizes)[:-1]), shapes)]
        loss, grads = validate.closure_result(fun(arrays))
        grads = validate.grads_like(grads, arrays, allow_none=True)
        return float(loss), np.concatenate([np.zeros(n) if g is None else np.ravel(g)
                                            for g, n in zip(grads, sizes)])

    def unflatten(flat):
        return [a.reshape(s).copy() for a, s in zip(np.split(flat, np.cumsum(sizes)[:-1]), shapes)]

    func_evals, n_total = state.func_evals, state.n_iter
    d, t, old_dirs, old_stps = state.d, state.t, list(state.old_dirs), list(state.old_stps)
    ro, H_diag = list(state.ro), state.H_diag
    prev_flat_grad, prev_loss = state.prev_flat_grad, state.prev_loss

    orig_loss, flat_grad = evaluate(x)
    loss, current_evals = orig_loss, 1
    func_evals += 1
    if np.max(np.abs(flat_grad)) <= tolerance_grad:  # already optimal
        return unflatten(x), state._replace(func_evals=func_evals), orig_loss

    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        n_total += 1
        if n_total == 1:
            d, old_dirs, old_stps, ro, H_diag = -flat_grad, [], [], [], 1.0
        else:
            y = flat_grad - prev_flat_grad
            s = d * t
            ys = float(y @ s)
            if ys > 1e-10:  # keep only pairs with positive curvature
                if len(old_dirs) == history_size:
                    old_dirs.pop(0), old_stps.pop(0), ro.pop(0)
                old_dirs.append(y)
                old_stps.append(s)
                ro.append(1.0 / ys)
                H_diag = ys / float(y @ y)
            d = lbfgs_direction(flat_grad, old_dirs, old_stps, ro, H_diag)
        prev_flat_grad, prev_loss = flat_grad.copy(), loss
        t = min(1.0, 1.0 / float(np.sum(np.abs(flat_grad)))) * lr if n_total == 1 else lr
        gtd = float(flat_grad @ d)
        if gtd > -tolerance_change:  # not a descent direction
            break
        ls_func_evals = 0
        if line_search_fn is not None:
            loss, flat_grad, t, ls_func_evals = strong_wolfe(
                lambda step: evaluate(x + step * d), t, d, loss, flat_grad, gtd,
                max_ls=max_eval - current_evals)
            x = x + t * d
            opt_cond = np.max(np.abs(flat_grad)) <= tolerance_grad
        else:
            x = x + t * d
            if n_iter != max_iter:  # no use evaluating after the last iteration
                loss, flat_grad = evaluate(x)
                opt_cond = np.max(np.abs(flat_grad)) <= tolerance_grad
                ls_func_evals = 1
        current_evals += ls_func_evals
        func_evals += ls_func_evals
        if n_iter == max_iter or current_evals >= max_eval or opt_cond:
            break
        if np.max(np.abs(d * t)) <= tolerance_change or abs(loss - prev_loss) < tolerance_change:
            break  # no progress
    new_state = LBFGSState(func_evals=func_evals, n_iter=n_total, d=d, t=t, old_dirs=old_dirs,
                           old_stps=old_stps, ro=ro, H_diag=H_diag,
                           prev_flat_grad=prev_flat_grad, prev_loss=prev_loss)
    return unflatten(x), new_state, orig_loss
