r"""Optimizers beyond the torch.optim core: Lookahead, LAMB, SAM, L-BFGS, and K-FAC on one layer.

All of them are small NumPy code over the same conventions as the rest of optimkit
(lists of float arrays, updated in place). Two interfaces, as in torch:

* :class:`Lookahead` and :class:`LAMB` need one gradient per step: ``opt.step(grads)``,
  so :func:`optimkit.landscapes.run` and :func:`optimkit.digits.train` drive them unchanged;
* :class:`SAM` and :class:`LBFGS` must evaluate the loss or gradient at points of their own
  choosing, so their step takes a *closure*, ``opt.step(closure)``, where ``closure()``
  returns ``(loss, grads)`` at the current parameters (the arrays the optimizer holds).
  :func:`run_closure` records their trajectories on a landscape.

Where they live elsewhere: ``torch.optim.LBFGS`` (torch has no Lookahead, LAMB or SAM in its
core); optax has ``optax.lookahead``, ``optax.lamb``, ``optax.contrib.sam`` and ``optax.lbfgs``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from . import rules, validate
from .clipping import global_norm
from .landscapes import DIVERGENCE_THRESHOLD, Landscape1D, Trajectory
from .optim import Optimizer, Wrapper

__all__ = ["Lookahead", "LAMB", "SAM", "LBFGS", "lamb_trust_ratio", "sam_perturbation", "two_loop",
           "backtracking", "run_closure", "softmax_probs", "softmax_fisher", "kfac_factors",
           "kfac_direction", "Lion", "lion_kernel", "AdamWScheduleFree", "schedulefree_weight",
           "schedulefree_adamw_kernel", "Shampoo", "shampoo_kernel", "matrix_inverse_root"]


# ---------------------------------------------------------------------------
# Lookahead
# ---------------------------------------------------------------------------

def _lookahead_sync(fast, slow, alpha):
    """Pull the slow weights towards the fast ones, then restart the fast ones there."""
    for p, s in zip(fast, slow):
        s *= 1 - alpha  # phi + alpha (theta - phi), written so that alpha = 1 gives theta exactly
        s += alpha * p
        p[...] = s


class Lookahead(Wrapper):
    r"""Lookahead (Zhang et al., 2019) around any optimkit optimizer.

    The inner ("fast") optimizer takes every step; every ``k`` steps the slow weights
    :math:`\phi` move a fraction :math:`\alpha` of the way to the fast weights
    :math:`\theta`, and the fast weights restart from there:

    .. math::

        \theta_{t} &= \text{inner step}(\theta_{t-1}, g_t) \\
        \text{if } k \mid t:\quad
        \phi &\leftarrow \phi + \alpha\,(\theta_t - \phi), \qquad \theta_t \leftarrow \phi

    :math:`\phi` starts at the initial parameters. The inner optimizer keeps its state
    (momentum, moments) across synchronisations, like ``optax.lookahead`` with its default
    ``reset_state=False``. With :math:`\alpha = 1` Lookahead is the inner optimizer itself;
    with :math:`\alpha = 0` the parameters return to their start every ``k`` steps.
    """

    def __init__(self, optimizer, k: int = 5, alpha: float = 0.5):
        if not hasattr(optimizer, "params") or not hasattr(optimizer, "step"):
            raise TypeError("optimizer must be an optimkit optimizer (with .params and .step)")
        super().__init__(optimizer)
        self.k = validate.positive_int("k", k)
        self.alpha = validate.in_unit_interval("alpha", alpha, closed_right=True)
        self.params = optimizer.params
        self.slow = [np.array(p, copy=True) for p in self.params]
        self.steps = 0


    def step(self, grads) -> None:
        self.optimizer.step(grads)
        self.steps += 1
        if self.steps % self.k == 0:
            _lookahead_sync(self.params, self.slow, self.alpha)


# ---------------------------------------------------------------------------
# LAMB
# ---------------------------------------------------------------------------

def lamb_trust_ratio(param_norm: float, update_norm: float) -> float:
    r""":math:`\lVert\theta\rVert / \lVert u\rVert`, or 1 when either norm is 0 (as optax)."""
    if param_norm == 0.0 or update_norm == 0.0:
        return 1.0
    return param_norm / update_norm


def lamb_kernel(p, g, m, v, *, t, lr, betas, eps, weight_decay):
    """One LAMB step on one array (one "layer"), in place; returns the trust ratio used."""
    beta1, beta2 = betas
    rules.update_moment(m, g, beta1)
    rules.update_moment(v, g, beta2, order=2)
    m_hat = m / rules.bias_correction(beta1, t)
    v_hat = v / rules.bias_correction(beta2, t)
    u = m_hat / (np.sqrt(v_hat) + eps) + weight_decay * p  # the Adam direction, plus decay
    ratio = lamb_trust_ratio(float(np.linalg.norm(p)), float(np.linalg.norm(u)))
    p -= lr * ratio * u
    return ratio


class LAMB(Optimizer):
    r"""LAMB (You et al., 2019): Adam's direction, rescaled per layer by a trust ratio.

    Each parameter array is one layer. With Adam's bias-corrected moments:

    .. math::

        u_t &= \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} + \lambda\,\theta_{t-1} \\
        \theta_t &= \theta_{t-1} - \eta\,
            \frac{\lVert\theta_{t-1}\rVert}{\lVert u_t\rVert}\, u_t

    so every layer moves by exactly :math:`\eta\,\lVert\theta_{t-1}\rVert`, a fixed
    *fraction* of its own size, whatever the scale of its gradients (the ratio is 1 when
    either norm is 0). Matches ``optax.lamb`` (eps 1e-6 outside the root, trust ratio
    :math:`\phi(x) = x`, no clipping); torch.optim has no LAMB.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=validate.betas_pair(betas), eps=eps,
                                      weight_decay=weight_decay))

    def _check(self, group):
        validate.adam_args(group["lr"], group["betas"], group["eps"], group["weight_decay"])

    def _init_state(self, p, group):
        return {"step": 0, "exp_avg": np.zeros_like(p), "exp_avg_sq": np.zeros_like(p),
                "trust_ratio": 1.0}

    def _update(self, p, g, state, group):
        state["trust_ratio"] = lamb_kernel(
            p, g, state["exp_avg"], state["exp_avg_sq"], t=state["step"], lr=group["lr"],
            betas=group["betas"], eps=group["eps"], weight_decay=group["weight_decay"])


# ---------------------------------------------------------------------------
# SAM
# ---------------------------------------------------------------------------

def sam_perturbation(grads, rho: float) -> list[np.ndarray]:
    r""":math:`\hat\epsilon = \rho\, g / \lVert g\rVert` over all arrays together (zero when g = 0)."""
    norm = global_norm(grads)
    scale = rho / (norm + 1e-12)  # as the reference implementation: g = 0 gives no perturbation
    return [scale * np.asarray(g, dtype=np.float64) for g in grads]


class SAM(Wrapper):
    r"""Sharpness-aware minimisation (Foret et al., 2021) around any optimkit optimizer.

    SAM minimises :math:`\max_{\lVert\epsilon\rVert \le \rho} L(\theta + \epsilon)`. To first
    order the worst perturbation is along the gradient, so each step costs two gradients:

    .. math::

        \hat\epsilon_t &= \rho\, \frac{\nabla L(\theta_{t-1})}{\lVert\nabla L(\theta_{t-1})\rVert} \\
        g_t^{\text{SAM}} &= \nabla L(\theta_{t-1} + \hat\epsilon_t) \\
        \theta_t &= \text{inner step}(\theta_{t-1}, g_t^{\text{SAM}})

    The norm is taken over all parameter arrays together. ``step(closure)`` calls
    ``closure()`` (which returns ``(loss, grads)`` at the current parameters) at
    :math:`\theta` and at :math:`\theta + \hat\epsilon`, restores :math:`\theta` exactly and
    lets the inner optimizer step with the second gradient. Returns the loss at
    :math:`\theta`. The last perturbation is kept in ``last_perturbation``.
    """

    needs_closure = True

    def __init__(self, optimizer, rho: float = 0.05):
        if not hasattr(optimizer, "params") or not hasattr(optimizer, "step"):
            raise TypeError("optimizer must be an optimkit optimizer (with .params and .step)")
        super().__init__(optimizer)
        self.rho = validate.non_negative("rho", rho)
        self.params = optimizer.params
        self.last_perturbation = None


    def step(self, closure):
        loss, grads = closure()
        eps = sam_perturbation(grads, self.rho)
        saved = [np.array(p, copy=True) for p in self.params]
        for p, e in zip(self.params, eps):
            p += e                                   # climb to the worst nearby point
        _, sharp_grads = closure()
        for p, s in zip(self.params, saved):
            p[...] = s                               # come back exactly
        self.optimizer.step(sharp_grads)             # descend with the gradient from up there
        self.last_perturbation = eps
        return loss


# ---------------------------------------------------------------------------
# L-BFGS
# ---------------------------------------------------------------------------

def two_loop(g, s_list, y_list):
    r"""L-BFGS two-loop recursion: :math:`H_k\, g` without ever forming :math:`H_k`.

    With the stored pairs :math:`s_i = \theta_{i+1} - \theta_i`,
    :math:`y_i = \nabla L(\theta_{i+1}) - \nabla L(\theta_i)`, oldest first, and
    :math:`\rho_i = 1 / (y_i^\top s_i)`:

    .. math::

        q &\leftarrow g; \quad \text{for } i = k-1, \dots, k-m:\;
            \alpha_i = \rho_i\, s_i^\top q,\;\; q \leftarrow q - \alpha_i\, y_i \\
        r &\leftarrow \gamma\, q, \qquad
            \gamma = \frac{s_{k-1}^\top y_{k-1}}{y_{k-1}^\top y_{k-1}} \\
        &\text{for } i = k-m, \dots, k-1:\;
            \beta = \rho_i\, y_i^\top r,\;\; r \leftarrow r + (\alpha_i - \beta)\, s_i

    ``r`` is the BFGS inverse-Hessian estimate (started from :math:`\gamma I`) applied to g;
    the search direction is :math:`-r`. With no pairs it returns g.
    """
    q = np.array(g, dtype=np.float64, copy=True)
    if not s_list:
        return q
    rhos = [1.0 / float(y @ s) for s, y in zip(s_list, y_list)]
    alphas = []
    for s, y, rho in reversed(list(zip(s_list, y_list, rhos))):
        alpha = rho * float(s @ q)
        q -= alpha * y
        alphas.append(alpha)
    s, y = s_list[-1], y_list[-1]
    r = (float(s @ y) / float(y @ y)) * q
    for (s, y, rho), alpha in zip(zip(s_list, y_list, rhos), reversed(alphas)):
        beta = rho * float(y @ r)
        r += (alpha - beta) * s
    return r


def backtracking(phi: Callable[[float], float], f0: float, slope: float, t0: float = 1.0, *,
                 c1: float = 1e-4, shrink: float = 0.5, max_iter: int = 40) -> float:
    r"""Backtracking (Armijo) line search: the first :math:`t = t_0\,\text{shrink}^j` with

    .. math:: \varphi(t) \le \varphi(0) + c_1\, t\, \varphi'(0),

    where :math:`\varphi(t) = L(\theta + t\,d)` and ``slope`` :math:`= \varphi'(0) = g^\top d < 0`.
    Returns the last trial after ``max_iter`` halvings if none is accepted.
    """
    t = t0
    for _ in range(max_iter):
        value = phi(t)
        if np.isfinite(value) and value <= f0 + c1 * t * slope:
            return t
        t *= shrink
    return t


class LBFGS:
    r"""Limited-memory BFGS: a quasi-Newton direction from the last ``history_size`` steps.

    One call of ``step(closure)`` is one iteration:

    .. math::

        d_k &= -H_k\, g_k \quad\text{(two-loop recursion, } H_0 = \gamma I\text{)} \\
        \theta_{k+1} &= \theta_k + t_k\, d_k \quad\text{(}t_k \text{ from the line search)} \\
        s_k &= \theta_{k+1} - \theta_k, \quad y_k = g_{k+1} - g_k
        \quad\text{(kept only if } y_k^\top s_k > 10^{-10}\text{)}

    The line search starts at :math:`t = \eta` (``lr``, 1 by default), except on the first
    iteration, where, as in ``torch.optim.LBFGS``, it starts at
    :math:`\eta \min(1, 1/\lVert g_0\rVert_1)` because there is no curvature estimate yet.
    ``line_search`` is ``"backtracking"`` (Armijo, :func:`backtracking`), ``None`` (take
    :math:`t = \eta` blindly), or a callable ``(phi, f0, slope, t0) -> t``.
    ``closure()`` returns ``(loss, grads)`` at the current parameters. ``evaluations``
    counts closure calls. torch's ``LBFGS`` differs: it runs up to ``max_iter`` = 20
    iterations per ``step`` and offers a strong-Wolfe line search.
    """

    needs_closure = True

    def __init__(self, params, lr: float = 1.0, history_size: int = 10,
                 line_search="backtracking"):
        self.params = validate.float_params(params)
        self.lr = validate.positive("lr", lr)
        self.history_size = validate.positive_int("history_size", history_size)
        if not (line_search in ("backtracking", None) or callable(line_search)):
            raise ValueError(f"line_search must be 'backtracking', None or a callable, got {line_search!r}")
        self.line_search = line_search
        self.s_list: list[np.ndarray] = []
        self.y_list: list[np.ndarray] = []
        self.evaluations = 0
        self.iterations = 0
        self._cache = None  # (theta, loss, flat grad) at the current parameters

    def _flat(self) -> np.ndarray:
        return np.concatenate([p.ravel() for p in self.params])

    def _set(self, theta: np.ndarray) -> None:
        i = 0
        for p in self.params:
            p[...] = theta[i:i + p.size].reshape(p.shape)
            i += p.size

    def _evaluate(self, closure):
        self.evaluations += 1
        loss, grads = closure()
        return float(loss), np.concatenate([np.asarray(g, dtype=np.float64).ravel() for g in grads])

    def step(self, closure):
        theta = self._flat()
        if self._cache is not None and np.array_equal(self._cache[0], theta):
            loss, g = self._cache[1], self._cache[2]
        else:  # first call, or the parameters were changed from outside
            loss, g = self._evaluate(closure)
        d = -two_loop(g, self.s_list, self.y_list)
        slope = float(g @ d)
        if not slope < 0:  # not a descent direction: forget the curvature pairs
            self.s_list.clear()
            self.y_list.clear()
            d, slope = -g, -float(g @ g)
        if slope == 0.0:  # at a stationary point already
            self._cache = (theta, loss, g)
            return loss
        t0 = self.lr if self.s_list else self.lr * min(1.0, 1.0 / max(np.abs(g).sum(), 1e-300))

        trials = {}

        def phi(t):
            self._set(theta + t * d)
            trials[t] = self._evaluate(closure)
            return trials[t][0]

        if self.line_search is None:
            t = t0
        elif self.line_search == "backtracking":
            t = backtracking(phi, loss, slope, t0)
        else:
            t = float(self.line_search(phi, loss, slope, t0))
        new_theta = theta + t * d
        self._set(new_theta)
        new_loss, new_g = trials[t] if t in trials else self._evaluate(closure)
        s, y = new_theta - theta, new_g - g
        if float(y @ s) > 1e-10:
            self.s_list.append(s)
            self.y_list.append(y)
            if len(self.s_list) > self.history_size:
                del self.s_list[0], self.y_list[0]
        self._cache = (new_theta, new_loss, new_g)
        self.iterations += 1
        return loss


# ---------------------------------------------------------------------------
# A runner for closure-based optimizers on the 1-D and 2-D landscapes
# ---------------------------------------------------------------------------

def run_closure(landscape, make_optimizer, start=None, steps: int = 100):
    """Like :func:`optimkit.landscapes.run` for optimizers whose ``step`` takes a closure.

    Returns ``(trajectory, evaluations)``: the :class:`~optimkit.landscapes.Trajectory` of
    the iterates and, per step, the cumulative number of gradient evaluations (closure calls).
    ``trajectory.lrs`` holds the optimizer's ``lr`` at each step.
    """
    dim = 1 if isinstance(landscape, Landscape1D) else 2
    steps = validate.non_negative_int("steps", steps)
    point = validate.point(landscape.start if start is None else start, dim)
    opt = make_optimizer([point])
    calls = [0]

    def closure():
        calls[0] += 1
        with np.errstate(over="ignore", invalid="ignore"):
            return landscape(point), [np.asarray(landscape.grad(point), dtype=np.float64).reshape(dim)]

    points, losses, lrs, evaluations = [point.copy()], [landscape(point)], [], [0]
    diverged = False
    for _ in range(steps):
        lrs.append(float(opt.lr))
        opt.step(closure)
        with np.errstate(over="ignore", invalid="ignore"):
            loss = landscape(point)
        points.append(point.copy())
        losses.append(loss)
        evaluations.append(calls[0])
        if not (np.all(np.isfinite(point)) and abs(loss) <= DIVERGENCE_THRESHOLD):
            diverged = True
            break
    trajectory = Trajectory(points=np.array(points), losses=np.array(losses),
                            lrs=np.array(lrs, dtype=np.float64), diverged=diverged,
                            steps_taken=len(lrs))
    return trajectory, np.array(evaluations)


# ---------------------------------------------------------------------------
# K-FAC on one softmax layer
# ---------------------------------------------------------------------------

def softmax_probs(a: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Row-wise softmax of the logits ``a @ W``."""
    z = a @ W
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def softmax_fisher(a: np.ndarray, probs: np.ndarray) -> np.ndarray:
    r"""The exact Fisher of a softmax layer ``logits = a @ W`` (``W`` of shape (in, out)):

    .. math:: F = \frac1n \sum_i (a_i a_i^\top) \otimes \bigl(\operatorname{diag}(p_i) - p_i p_i^\top\bigr)

    in the row-major order of ``W.ravel()``; shape (in*out, in*out). Labels are drawn from
    the model, so :math:`\mathbb E_y[(p - e_y)(p - e_y)^\top] = \operatorname{diag}(p) - pp^\top`.
    """
    n, d_in = a.shape
    k = probs.shape[1]
    cov = probs[:, :, None] * np.eye(k)[None] - probs[:, :, None] * probs[:, None, :]
    # F[(i,j),(l,m)] = mean_n a_ni a_nl cov_njm: one (in x in) product per output pair (j, m)
    F = np.empty((d_in, k, d_in, k))
    for j in range(k):
        for m in range(j, k):
            block = a.T @ (a * cov[:, j, m][:, None]) / n
            F[:, j, :, m] = block
            F[:, m, :, j] = block
    return F.reshape(d_in * k, d_in * k)


def kfac_factors(a: np.ndarray, probs: np.ndarray):
    r"""K-FAC's Kronecker factors for a softmax layer: :math:`F \approx A \otimes G` with

    .. math:: A = \frac1n \sum_i a_i a_i^\top, \qquad
              G = \frac1n \sum_i \bigl(\operatorname{diag}(p_i) - p_i p_i^\top\bigr)

    (the average of the inputs' second moments times the average of the output-gradient
    covariances: K-FAC assumes the two are independent).
    """
    n = len(a)
    A = a.T @ a / n
    G = np.diag(probs.mean(axis=0)) - probs.T @ probs / n
    return A, G


def kfac_direction(grad_W: np.ndarray, A: np.ndarray, G: np.ndarray, damping: float) -> np.ndarray:
    r"""The K-FAC natural-gradient direction for ``W`` of shape (in, out):

    .. math:: (A \otimes G + \ldots)^{-1} \operatorname{vec}(\nabla_W)
              \approx \operatorname{vec}\bigl((A + \sqrt\lambda I)^{-1}\, \nabla_W\,
              (G + \sqrt\lambda I)^{-1}\bigr)

    using :math:`(A \otimes G)^{-1} = A^{-1} \otimes G^{-1}` and
    :math:`(A \otimes G)\operatorname{vec}(X) = \operatorname{vec}(A X G)` for symmetric
    factors, with Tikhonov damping :math:`\lambda` split between the two factors.
    Two small solves (in x in and out x out) replace one (in*out) x (in*out) solve.
    """
    damping = validate.positive("damping", damping)
    root = math.sqrt(damping)
    left = np.linalg.solve(A + root * np.eye(len(A)), grad_W)
    return np.linalg.solve(G + root * np.eye(len(G)), left.T).T


# ---------------------------------------------------------------------------
# The 2020s: Lion, schedule-free AdamW, Shampoo (torch.optim has none of them)
# ---------------------------------------------------------------------------

def lion_kernel(p, g, m, *, lr, betas, weight_decay):
    """One Lion step on one array, in place on ``p`` and its momentum ``m``."""
    beta1, beta2 = betas
    update = np.sign(beta1 * m + (1 - beta1) * g)  # every coordinate moves by exactly lr (or 0)
    p *= 1 - lr * weight_decay
    p -= lr * update
    m *= beta2  # the momentum is updated after, with the other beta
    m += (1 - beta2) * g


class Lion(Optimizer):
    r"""Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms"): the sign of
    an interpolation of momentum and gradient, so every coordinate moves by exactly :math:`\eta`.

    .. math::

        u_t &= \operatorname{sign}\bigl(\beta_1 m_{t-1} + (1-\beta_1)\, g_t\bigr) \\
        \theta_t &= \theta_{t-1} - \eta\,\lambda\,\theta_{t-1} - \eta\, u_t \\
        m_t &= \beta_2 m_{t-1} + (1-\beta_2)\, g_t

    One state array (the momentum) instead of Adam's two. With :math:`\beta_1 = \beta_2 = 0`
    it is sign descent, :math:`\theta_t = \theta_{t-1} - \eta\operatorname{sign}(g_t)`.
    Defaults as ``lion_pytorch.Lion`` (lr 1e-4, betas (0.9, 0.99)), which the tests run as the
    oracle; ``optax.lion`` computes the same.
    """

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=validate.betas_pair(betas),
                                      weight_decay=weight_decay))

    def _check(self, group):
        validate.common_args(group["lr"], group["weight_decay"])
        validate.betas_pair(group["betas"])

    def _init_state(self, p, group):
        return {"step": 0, "exp_avg": np.zeros_like(p)}

    def _update(self, p, g, state, group):
        lion_kernel(p, g, state["exp_avg"], lr=group["lr"], betas=group["betas"],
                    weight_decay=group["weight_decay"])


def schedulefree_weight(k, *, lr, warmup_steps, r, weight_lr_power, lr_max):
    """Step ``k`` (from 0): the warmed-up lr, the new lr_max and the averaging weight
    :math:`(k+1)^r\\,\\eta_{\\max}^{p}` of the schedule-free average."""
    lr = lr * ((k + 1) / warmup_steps if k < warmup_steps else 1.0)
    lr_max = max(lr, lr_max)
    return lr, lr_max, (k + 1) ** r * lr_max ** weight_lr_power


def schedulefree_adamw_kernel(y, g, z, v, *, lr, c, betas, eps, weight_decay, bias_correction2):
    """One schedule-free AdamW step on one array, in place: ``y`` (the parameters, where the
    gradient is taken), ``z`` (the SGD-like sequence) and ``v`` (Adam's second moment). The
    average ``x`` is never stored: :math:`x = (y - (1-\\beta_1) z)/\\beta_1`."""
    beta1, beta2 = betas
    rules.update_moment(v, g, beta2, order=2)
    u = g / (np.sqrt(v / bias_correction2) + eps)
    if weight_decay != 0:
        u = u + weight_decay * y  # decay taken at y
    y[...] = rules.lerp(y, z, c)
    y += lr * (beta1 * (1 - c) - 1) * u
    z -= lr * u


class AdamWScheduleFree(Optimizer):
    r"""Schedule-free AdamW (Defazio et al., 2024, "The Road Less Scheduled"), as the authors'
    ``schedulefree.AdamWScheduleFree``: no learning-rate schedule, an average instead.

    .. math::

        v_t &= \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2, \qquad
        u_t = \frac{g_t}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon} + \lambda\, y_{t-1} \\
        z_t &= z_{t-1} - \gamma_t\, u_t \\
        x_t &= (1-c_t)\, x_{t-1} + c_t\, z_t, \qquad
            c_t = \frac{t^r\,\gamma_{\max}^{p}}{\sum_{s\le t} s^r\,\gamma_{\max,s}^{p}} \\
        y_t &= (1-\beta_1)\, z_t + \beta_1\, x_t

    The gradient is taken at :math:`y` (the parameters while training); :math:`x`, the
    weighted average of the :math:`z` iterates, is what to evaluate: ``opt.eval()`` puts
    :math:`x` in the parameters, ``opt.train()`` puts :math:`y` back. With :math:`r = 0` and
    a constant lr, :math:`c_t = 1/t`: :math:`x` is the plain average of every :math:`z`.
    As the authors' class it starts in eval mode: call ``opt.train()`` before the first step.
    State per array: ``z`` and ``exp_avg_sq`` (AdamW's memory); :math:`\gamma_t` warms up
    linearly over ``warmup_steps``.
    """

    def __init__(self, params, lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 warmup_steps=0, r=0.0, weight_lr_power=2.0):
        super().__init__(params, dict(lr=lr, betas=validate.betas_pair(betas), eps=eps,
                                      weight_decay=weight_decay, warmup_steps=warmup_steps, r=r,
                                      weight_lr_power=weight_lr_power, k=0, weight_sum=0.0,
                                      lr_max=-1.0, scheduled_lr=0.0, train_mode=False))

    def _check(self, group):
        validate.adam_args(group["lr"], group["betas"], group["eps"], group["weight_decay"])
        if validate.positive("betas[0]", group["betas"][0]) <= 0:  # eval divides by beta1
            raise ValueError("betas[0] must be > 0")
        validate.non_negative_int("warmup_steps", group["warmup_steps"])
        validate.finite("r", group["r"])
        validate.finite("weight_lr_power", group["weight_lr_power"])

    def _init_state(self, p, group):
        return {"step": 0, "z": np.array(p, copy=True), "exp_avg_sq": np.zeros_like(p)}

    def step(self, grads=None, closure=None):
        if not all(group["train_mode"] for group in self.param_groups):
            raise RuntimeError("AdamWScheduleFree.step() in eval mode: call opt.train() before "
                               "training steps and opt.eval() before evaluating (the parameters "
                               "hold y while training, the average x in eval mode)")
        saved = [(g["k"], g["lr_max"], g["weight_sum"], g["scheduled_lr"])
                 for g in self.param_groups]
        for group in self.param_groups:
            lr, group["lr_max"], weight = schedulefree_weight(
                group["k"], lr=group["lr"], warmup_steps=group["warmup_steps"], r=group["r"],
                weight_lr_power=group["weight_lr_power"], lr_max=group["lr_max"])
            group["scheduled_lr"] = lr
            group["weight_sum"] += weight
            group["k"] += 1
        try:
            return super().step(grads, closure)
        except Exception:
            for group, values in zip(self.param_groups, saved):
                group["k"], group["lr_max"], group["weight_sum"], group["scheduled_lr"] = values
            raise

    def _update(self, p, g, state, group):
        k = group["k"]  # already counted this step
        weight = k ** group["r"] * group["lr_max"] ** group["weight_lr_power"]
        c = weight / group["weight_sum"] if group["weight_sum"] else 0.0
        schedulefree_adamw_kernel(p, g, state["z"], state["exp_avg_sq"],
                                  lr=group["scheduled_lr"], c=c, betas=group["betas"],
                                  eps=group["eps"], weight_decay=group["weight_decay"],
                                  bias_correction2=rules.bias_correction(group["betas"][1], k))

    def _swap(self, train: bool) -> None:
        for group, start in zip(self.param_groups, self._starts()):
            if group["train_mode"] == train:
                continue
            beta1 = group["betas"][0]
            for i, p in enumerate(group["params"], start):
                if "z" in self.state[i]:
                    weight = 1 - beta1 if train else 1 - 1 / beta1
                    p[...] = rules.lerp(p, self.state[i]["z"], weight)
            group["train_mode"] = train

    def _starts(self):
        starts, n = [], 0
        for group in self.param_groups:
            starts.append(n)
            n += len(group["params"])
        return starts

    def train(self) -> None:
        """Parameters to :math:`y`, where the gradients are taken."""
        self._swap(True)

    def eval(self) -> None:
        """Parameters to :math:`x`, the average: evaluate (and save) here."""
        self._swap(False)


def matrix_inverse_root(M, root):
    r""":math:`M^{-1/\text{root}}` of a symmetric positive semi-definite matrix, through its
    singular value decomposition (as ``pytorch_optimizer``'s ``compute_power_svd``)."""
    u, s, vh = np.linalg.svd(M, full_matrices=False)
    return (u * s ** (-1.0 / root)) @ vh


def shampoo_kernel(p, g, L, R, *, lr):
    """One Shampoo step on a matrix (or a vector, ``R`` None), in place on ``p`` and the
    statistics ``L`` (rows, m x m) and ``R`` (columns, n x n)."""
    if g.ndim == 1:
        L += np.outer(g, g)
        p -= lr * (matrix_inverse_root(L, 2) @ g)  # full-matrix AdaGrad on a vector
        return
    L += g @ g.T
    R += g.T @ g
    p -= lr * (matrix_inverse_root(L, 4) @ g @ matrix_inverse_root(R, 4))


class Shampoo(Optimizer):
    r"""Shampoo (Gupta, Koren and Singer, 2018): AdaGrad with one preconditioner per side of
    each matrix, a Kronecker-factored approximation of full-matrix AdaGrad.

    .. math::

        L_t &= L_{t-1} + G_t G_t^\top, \qquad R_t = R_{t-1} + G_t^\top G_t \\
        \theta_t &= \theta_{t-1} - \eta\, L_t^{-1/4}\, G_t\, R_t^{-1/4}

    with :math:`L_0 = R_0 = \epsilon I`. For an m x n matrix the state is
    :math:`m^2 + n^2` numbers and each step two inverse fourth roots (an SVD each, cubic in
    m and n); a vector keeps one :math:`L` and takes :math:`L_t^{-1/2} g_t`. As
    ``pytorch_optimizer.Shampoo`` with its defaults (momentum 0, no weight decay, the
    preconditioner recomputed every step), which the tests run as the oracle.
    """

    def __init__(self, params, lr=1e-3, matrix_eps=1e-6):
        super().__init__(params, dict(lr=lr, matrix_eps=matrix_eps))

    def _check(self, group):
        validate.non_negative("lr", group["lr"])
        validate.non_negative("matrix_eps", group["matrix_eps"])
        for i, p in enumerate(group.get("params", ())):
            if np.ndim(p) not in (1, 2):
                raise ValueError(f"Shampoo here takes vectors and matrices, params[{i}] has shape "
                                 f"{np.shape(p)}: reshape it to a matrix")

    def _init_state(self, p, group):
        eye = lambda n: group["matrix_eps"] * np.eye(n, dtype=p.dtype)  # noqa: E731
        return {"step": 0, "pre_cond_0": eye(p.shape[0]),
                "pre_cond_1": eye(p.shape[1]) if p.ndim == 2 else None}

    def _update(self, p, g, state, group):
        shampoo_kernel(p, g, state["pre_cond_0"], state["pre_cond_1"], lr=group["lr"])
