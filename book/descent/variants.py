r"""Every textbook variant of an optimizer the chapters compare with optimkit's, in one module.

They are *not* part of optimkit's torch-checked API: they implement the forms other texts print,
so a chapter can show with numbers what each choice changes. Each keeps optimkit's interface
(``step(grads)`` on a list of arrays updated in place, a writable ``lr``), so
:func:`optimkit.landscapes.run` and :func:`optimkit.digits.train` drive them unchanged.

* chapter 3, momentum: :class:`LrInsideMomentum` (:math:`v \leftarrow \gamma v + \eta g`,
  :math:`\theta \leftarrow \theta - v`) and :class:`EMAMomentum`
  (:math:`v \leftarrow \beta v + (1-\beta) g`, :math:`\theta \leftarrow \theta - \eta v`),
  against torch's :math:`b \leftarrow \mu b + g`, :math:`\theta \leftarrow \theta - \eta b`;
* chapter 4: :class:`RMSpropEpsInside` (eps inside the root, as d2l and optax);
* chapter 5: :class:`AdamVariant` (bias correction off or on ``m`` only; Kingma's "efficient" step);
* chapter 5, the Yogi box: :class:`Yogi` (Zaheer et al.'s additive second moment);
* chapter 6: :class:`SGDDecoupled`, :class:`AdamWPaper` (Loshchilov and Hutter's Algorithm 2) and
  :class:`AdamWDecayAfter` (the decay after the Adam step). The AdamW ones reuse
  :func:`optimkit.rules.adam_kernel`, so their Adam part is :class:`optimkit.AdamW`'s arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

from optimkit import rules, validate
from optimkit.optim import Optimizer


class LrInsideMomentum:
    r"""The learning rate inside the velocity: :math:`v_t = \gamma v_{t-1} + \eta_t g_t`,
    :math:`\theta_t = \theta_{t-1} - v_t`, :math:`v_0 = 0` (CS231n writes the same with
    :math:`v \mapsto -v`)."""

    def __init__(self, params, lr, momentum):
        self.params, self.lr, self.momentum = params, lr, momentum
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, grads):
        for p, g, v in zip(self.params, grads, self.velocity):
            v *= self.momentum
            v += self.lr * g
            p -= v


class EMAMomentum:
    r"""The velocity as an exponential moving average: :math:`v_t = \beta v_{t-1} + (1-\beta) g_t`,
    :math:`\theta_t = \theta_{t-1} - \eta_t v_t`, :math:`v_0 = 0`."""

    def __init__(self, params, lr, beta):
        self.params, self.lr, self.beta = params, lr, beta
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, grads):
        for p, g, v in zip(self.params, grads, self.velocity):
            v *= self.beta
            v += (1 - self.beta) * g
            p -= self.lr * v


class RMSpropEpsInside(Optimizer):
    r"""RMSProp with :math:`\epsilon` *inside* the square root, as d2l and optax write it:

    .. math:: v_t = \alpha v_{t-1} + (1-\alpha) g_t^2, \qquad
              \theta_t = \theta_{t-1} - \eta\, g_t / \sqrt{v_t + \epsilon}

    (torch, and :class:`optimkit.RMSprop`, use :math:`\sqrt{v_t} + \epsilon`).
    """

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps))

    def _check(self, group):
        validate.non_negative("lr", group["lr"])
        validate.in_unit_interval("alpha", group["alpha"])
        validate.positive("eps", group["eps"])

    def _init_state(self, p, group):
        return {"step": 0, "square_avg": np.zeros_like(p)}

    def _update(self, p, g, state, group):
        v = rules.update_moment(state["square_avg"], g, group["alpha"], order=2)
        p -= group["lr"] * g / np.sqrt(v + group["eps"])

    def effective_lr(self) -> np.ndarray:
        group = self.param_groups[0]
        if not self.state[0]:
            raise ValueError("the optimizer has not taken a step yet")
        return group["lr"] / np.sqrt(self.state[0]["square_avg"] + group["eps"])


class AdamVariant(Optimizer):
    r"""Adam with the switches the chapters ablate.

    ``bias_correction``: ``"both"`` (torch), ``"none"`` (CS231n's simplified Adam) or ``"m"``
    (first moment only). ``eps_form``: ``"torch"`` adds :math:`\epsilon` to the bias-corrected
    root, :math:`\frac{\eta}{c_1}\, m_t / (\sqrt{v_t}/\sqrt{c_2} + \epsilon)`; ``"kingma"`` is the
    paper's "efficient" form :math:`\eta\,\frac{\sqrt{c_2}}{c_1}\, m_t / (\sqrt{v_t} + \epsilon)`.
    Here :math:`c_1 = 1-\beta_1^t` and :math:`c_2 = 1-\beta_2^t` when corrected, 1 otherwise.
    With the defaults it computes exactly what :class:`optimkit.Adam` computes.
    """

    CORRECTIONS = ("both", "none", "m")
    EPS_FORMS = ("torch", "kingma")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, *,
                 bias_correction="both", eps_form="torch"):
        super().__init__(params, dict(lr=lr, betas=validate.betas_pair(betas), eps=eps,
                                      bias_correction=bias_correction, eps_form=eps_form))

    def _check(self, group):
        validate.adam_args(group["lr"], group["betas"], group["eps"], 0.0)
        if group["bias_correction"] not in self.CORRECTIONS:
            raise ValueError(f"bias_correction must be one of {self.CORRECTIONS}, "
                             f"got {group['bias_correction']!r}")
        if group["eps_form"] not in self.EPS_FORMS:
            raise ValueError(f"eps_form must be one of {self.EPS_FORMS}, got {group['eps_form']!r}")

    def _init_state(self, p, group):
        return {"step": 0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}

    def _corrections(self, t, group):
        beta1, beta2 = group["betas"]
        which = group["bias_correction"]
        c1 = rules.bias_correction(beta1, t) if which in ("both", "m") else 1.0
        c2 = rules.bias_correction(beta2, t) if which == "both" else 1.0
        return c1, c2

    def _update(self, p, g, state, group):
        beta1, beta2 = group["betas"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        rules.update_moment(m, g, beta1)
        rules.update_moment(v, g, beta2, order=2)
        c1, c2 = self._corrections(state["step"], group)
        lr, eps = group["lr"], group["eps"]
        if group["eps_form"] == "torch":  # the operations of rules.adam_kernel, in its order
            denom = np.sqrt(v) / math.sqrt(c2) + eps
            p -= (lr / c1) * m / denom
        else:
            p -= (lr * math.sqrt(c2) / c1) * m / (np.sqrt(v) + eps)



class Yogi(Optimizer):
    r"""Yogi (Zaheer et al., 2018, Algorithm 2): Adam whose second moment moves additively,

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \qquad
        v_t = v_{t-1} - (1-\beta_2)\,\mathrm{sign}(v_{t-1} - g_t^2)\, g_t^2, \qquad
        \theta_t = \theta_{t-1} - \eta\, \frac{m_t}{\sqrt{v_t} + \epsilon},

    with :math:`m_0 = 0` and :math:`v_0` = ``initial_v`` (the paper's Algorithm 2 has no bias
    correction; its experiments use :math:`\epsilon = 10^{-3}`). Adam's
    :math:`v_t - v_{t-1} = (1-\beta_2)(g_t^2 - v_{t-1})` is proportional to the gap; Yogi's has
    the gap's sign and the size :math:`(1-\beta_2) g_t^2` only, so a large :math:`v` falls slowly
    when gradients turn small. Not in torch.optim (optax has ``optax.yogi``, with bias correction).
    """

    def __init__(self, params, lr=1e-2, betas=(0.9, 0.999), eps=1e-3, initial_v=0.0):
        super().__init__(params, dict(lr=lr, betas=validate.betas_pair(betas), eps=eps,
                                      initial_v=initial_v))

    def _check(self, group):
        validate.adam_args(group["lr"], group["betas"], group["eps"], 0.0)
        validate.non_negative("initial_v", group["initial_v"])

    def _init_state(self, p, group):
        return {"step": 0, "exp_avg": np.zeros_like(p),
                "exp_avg_sq": np.full_like(p, group["initial_v"])}

    def _update(self, p, g, state, group):
        beta1, beta2 = group["betas"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        rules.update_moment(m, g, beta1)
        g2 = g * g
        v -= (1 - beta2) * np.sign(v - g2) * g2
        p -= group["lr"] * m / (np.sqrt(v) + group["eps"])

class SGDDecoupled(Optimizer):
    r"""Plain SGD with decoupled decay: :math:`\theta \leftarrow (1-\eta\lambda)\,\theta`, then
    :math:`\theta \leftarrow \theta - \eta g`. Equal to ``SGD(weight_decay=λ)`` up to rounding."""

    def __init__(self, params, lr=1e-3, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

    def _check(self, group):
        validate.common_args(group["lr"], group["weight_decay"])

    def _init_state(self, p, group):
        return {"step": 0}

    def _update(self, p, g, state, group):
        p *= 1 - group["lr"] * group["weight_decay"]
        p -= group["lr"] * g


class _AdamBase(Optimizer):
    """Adam's state and checks; subclasses place the decay around :meth:`_adam_step`."""

    def __init__(self, params, defaults):
        super().__init__(params, defaults)

    def _check(self, group):
        validate.adam_args(group["lr"], group["betas"], group["eps"], group["weight_decay"])

    def _init_state(self, p, group):
        return {"step": 0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p)}

    def _adam_step(self, p, g, state, group):
        rules.adam_kernel(p, g, state["exp_avg"], state["exp_avg_sq"], None, t=state["step"],
                           lr=group["lr"], betas=group["betas"], eps=group["eps"],
                           weight_decay=0.0, decoupled=True, amsgrad=False, maximize=False)


class AdamWPaper(_AdamBase):
    r"""AdamW as in Loshchilov and Hutter's Algorithm 2:

    .. math:: \theta_t = \theta_{t-1} - \eta_t\Bigl(\alpha\,\frac{\hat m_t}{\sqrt{\hat v_t}
              + \epsilon} + \lambda\,\theta_{t-1}\Bigr)

    :math:`\alpha` is the base learning rate (``lr`` at construction), :math:`\eta_t` the
    schedule multiplier. A schedule writes ``opt.lr`` as usual (:math:`\alpha\eta_t`); the decay
    uses only :math:`\eta_t = ` ``lr / initial_lr``. torch's ``AdamW(weight_decay=λ/α)`` is the
    same optimizer."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4):
        lr = validate.positive("lr", lr)
        super().__init__(params, dict(lr=lr, initial_lr=lr, betas=validate.betas_pair(betas),
                                      eps=eps, weight_decay=weight_decay))

    def _update(self, p, g, state, group):
        multiplier = group["lr"] / group["initial_lr"]
        p *= 1 - multiplier * group["weight_decay"]
        self._adam_step(p, g, state, group)


class AdamWDecayAfter(_AdamBase):
    r"""AdamW with the decay applied *after* the Adam step:
    :math:`\theta_t = (1-\eta\lambda)\,(\theta_{t-1} - \eta\,u_t)`, where torch decays first,
    :math:`\theta_t = (1-\eta\lambda)\,\theta_{t-1} - \eta\,u_t`. They differ by
    :math:`\eta^2\lambda\,u_t` per step."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, dict(lr=lr, betas=validate.betas_pair(betas), eps=eps,
                                      weight_decay=weight_decay))

    def _update(self, p, g, state, group):
        self._adam_step(p, g, state, group)
        p *= 1 - group["lr"] * group["weight_decay"]
