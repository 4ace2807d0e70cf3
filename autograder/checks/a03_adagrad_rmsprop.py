"""Hidden checks for assignment 03_adagrad_rmsprop (chapter 4, AdaGrad and RMSProp).

The student writes each rule for one array with its state passed in and returned;
the references run optimkit's pure functions on one-element lists.

How the drives tell the variants apart:

* eps is drawn log-uniformly from [1e-3, 1e-1] and the gradient coordinates have
  sizes from 1e-2.5 to 1e0.5, so eps inside the root (sqrt(v + eps), which acts like
  sqrt(eps) ~ 0.03..0.3 outside it) changes the small coordinates' steps by tens of percent;
* lr_decay is drawn from [0.05, 0.3] in one run per drive, so t - 1 versus t and an
  ignored decay are seen; t runs from 1 and the state is fed back for 30 steps;
* alpha is drawn from [0.6, 0.95], at least 0.2 away from 1 - alpha, so swapped weights
  of the moving average are seen.
"""

from __future__ import annotations

import numpy as np

from optimkit import rules

from .core import Problem, Variant, random_shape

CHAPTER = "Chapter 4 (AdaGrad and RMSProp)"
ADAGRAD = f"{CHAPTER}, section 'AdaGrad: divide by everything you have seen'"
RMSPROP = f"{CHAPTER}, section 'RMSProp: forget the distant past'"
EPS = f"{CHAPTER}, section 'Where does ε go?'"

# Tolerances. Each step is a handful of element-wise operations with denominators of at
# least eps >= 1e-3, so no step amplifies rounding: a correct answer written in another
# order differs from the reference by ~1e-16 relative per step, ~1e-14 after 30 fed-back
# steps. The closest mistake (eps inside the root on coordinates of size ~3) changes a
# step by >= 1e-4 relative. rtol = 1e-9 sits far from both; atol for entries near zero.
RTOL, ATOL = 1e-9, 1e-12
STEPS = 30


def _eps(rng):
    return float(10.0 ** rng.uniform(-3, -1))


def _lr_schedule(rng, steps):
    lr0 = float(rng.uniform(0.01, 0.2))
    return [lr0 * float(rng.uniform(0.3, 1.0)) for _ in range(steps)]


def _grads(rng, shape, steps):
    """Coordinates of very different sizes, and a scale that changes from step to step."""
    scale = 10.0 ** rng.uniform(-2.5, 0.5, size=shape)
    return [scale * float(10.0 ** rng.uniform(-0.5, 0.5)) * rng.normal(size=shape) for _ in range(steps)]


# --- adagrad_step(theta, grad, s, t, lr, lr_decay, eps) -> (theta, s) ------------------------

def _adagrad_reference(theta, grad, s, t, lr, lr_decay, eps):
    state = rules.AdagradState(step=t - 1, sum_sq=[s])
    (new,), state = rules.adagrad_update([grad], state, [theta], lr=lr, lr_decay=lr_decay, eps=eps)
    return new, state.sum_sq[0]


def _drive_adagrad(call, rng):
    for lr_decay in (float(rng.uniform(0.05, 0.3)), 0.0):
        shape = random_shape(rng)
        lr, eps = float(rng.uniform(0.01, 0.3)), _eps(rng)
        theta, s = rng.normal(size=shape), np.zeros(shape)
        for t, grad in enumerate(_grads(rng, shape, STEPS), start=1):
            theta, s = call(theta=theta, grad=grad, s=s, t=t, lr=lr, lr_decay=lr_decay, eps=eps)


adagrad_step = Problem(
    name="adagrad_step", reference=_adagrad_reference, drive=_drive_adagrad,
    chapter=ADAGRAD,
    variants=[
        Variant("eps inside the square root of the sum (sqrt(s + eps))", EPS, """
def adagrad_step(theta, grad, s, t, lr, lr_decay, eps):
    s = s + grad ** 2
    clr = lr / (1 + (t - 1) * lr_decay)
    return theta - clr * grad / np.sqrt(s + eps), s
"""),
        Variant("AdaGrad step divided by the sum itself, no square root", ADAGRAD, """
def adagrad_step(theta, grad, s, t, lr, lr_decay, eps):
    s = s + grad ** 2
    clr = lr / (1 + (t - 1) * lr_decay)
    return theta - clr * grad / (s + eps), s
"""),
        Variant("AdaGrad step taken with the previous sum (s updated after the step)", ADAGRAD, """
def adagrad_step(theta, grad, s, t, lr, lr_decay, eps):
    clr = lr / (1 + (t - 1) * lr_decay)
    theta = theta - clr * grad / (np.sqrt(s) + eps)
    return theta, s + grad ** 2
"""),
        Variant("lr decay counted with t instead of t - 1", ADAGRAD, """
def adagrad_step(theta, grad, s, t, lr, lr_decay, eps):
    s = s + grad ** 2
    clr = lr / (1 + t * lr_decay)
    return theta - clr * grad / (np.sqrt(s) + eps), s
"""),
        Variant("lr decay ignored", ADAGRAD, """
def adagrad_step(theta, grad, s, t, lr, lr_decay, eps):
    s = s + grad ** 2
    return theta - lr * grad / (np.sqrt(s) + eps), s
"""),
    ],
    rtol=RTOL, atol=ATOL)


# --- rmsprop_step(theta, grad, v, lr, alpha, eps) -> (theta, v) ------------------------------

def _rmsprop_reference(theta, grad, v, lr, alpha, eps):
    state = rules.RMSpropState(step=0, v=[v], g_avg=None, momentum=None)
    (new,), state = rules.rmsprop_update([grad], state, [theta], lr=lr, alpha=alpha, eps=eps)
    return new, state.v[0]


def _drive_rmsprop(call, rng):
    shape = random_shape(rng)
    alpha, eps = float(rng.uniform(0.6, 0.95)), _eps(rng)
    theta, v = rng.normal(size=shape), np.zeros(shape)
    for lr, grad in zip(_lr_schedule(rng, STEPS), _grads(rng, shape, STEPS)):
        theta, v = call(theta=theta, grad=grad, v=v, lr=lr, alpha=alpha, eps=eps)


rmsprop_step = Problem(
    name="rmsprop_step", reference=_rmsprop_reference, drive=_drive_rmsprop,
    chapter=RMSPROP,
    variants=[
        Variant("eps inside the square root of the average (sqrt(v + eps))", EPS, """
def rmsprop_step(theta, grad, v, lr, alpha, eps):
    v = alpha * v + (1 - alpha) * grad ** 2
    return theta - lr * grad / np.sqrt(v + eps), v
"""),
        Variant("weights of the moving average swapped ((1 - alpha) v + alpha g²)", RMSPROP, """
def rmsprop_step(theta, grad, v, lr, alpha, eps):
    v = (1 - alpha) * v + alpha * grad ** 2
    return theta - lr * grad / (np.sqrt(v) + eps), v
"""),
        Variant("RMSProp step taken with the previous average (v updated after the step)", RMSPROP, """
def rmsprop_step(theta, grad, v, lr, alpha, eps):
    theta = theta - lr * grad / (np.sqrt(v) + eps)
    return theta, alpha * v + (1 - alpha) * grad ** 2
"""),
        Variant("a running sum of g² instead of a moving average (that is AdaGrad)", RMSPROP, """
def rmsprop_step(theta, grad, v, lr, alpha, eps):
    v = v + grad ** 2
    return theta - lr * grad / (np.sqrt(v) + eps), v
"""),
        Variant("RMSProp step divided by the average itself, no square root", RMSPROP, """
def rmsprop_step(theta, grad, v, lr, alpha, eps):
    v = alpha * v + (1 - alpha) * grad ** 2
    return theta - lr * grad / (v + eps), v
"""),
    ],
    rtol=RTOL, atol=ATOL)


# --- centered_rmsprop_step(theta, grad, v, g_avg, lr, alpha, eps) -> (theta, v, g_avg) -------

def _centered_reference(theta, grad, v, g_avg, lr, alpha, eps):
    state = rules.RMSpropState(step=0, v=[v], g_avg=[g_avg], momentum=None)
    (new,), state = rules.rmsprop_update([grad], state, [theta], lr=lr, alpha=alpha, eps=eps,
                                         centered=True)
    return new, state.v[0], state.g_avg[0]


def _drive_centered(call, rng):
    shape = random_shape(rng)
    alpha, eps = float(rng.uniform(0.6, 0.95)), _eps(rng)
    # Each coordinate gets a mean (drift) of 0.5 to 3 times its noise, so centring matters,
    # while the variance v - g_avg² stays a sizeable part of v (no cancellation to speak of).
    scale = 10.0 ** rng.uniform(-2.5, 0.5, size=shape)
    drift = scale * rng.uniform(0.5, 3.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    theta, v, g_avg = rng.normal(size=shape), np.zeros(shape), np.zeros(shape)
    for lr in _lr_schedule(rng, STEPS):
        grad = drift + scale * rng.normal(size=shape)
        theta, v, g_avg = call(theta=theta, grad=grad, v=v, g_avg=g_avg, lr=lr, alpha=alpha, eps=eps)


centered_rmsprop_step = Problem(
    name="centered_rmsprop_step", reference=_centered_reference, drive=_drive_centered,
    chapter=RMSPROP,
    variants=[
        Variant("not centered (the plain RMSProp denominator sqrt(v) + eps)", RMSPROP, """
def centered_rmsprop_step(theta, grad, v, g_avg, lr, alpha, eps):
    v = alpha * v + (1 - alpha) * grad ** 2
    g_avg = alpha * g_avg + (1 - alpha) * grad
    return theta - lr * grad / (np.sqrt(v) + eps), v, g_avg
"""),
        Variant("eps inside the square root of the variance (sqrt(v - g_avg² + eps))", EPS, """
def centered_rmsprop_step(theta, grad, v, g_avg, lr, alpha, eps):
    v = alpha * v + (1 - alpha) * grad ** 2
    g_avg = alpha * g_avg + (1 - alpha) * grad
    return theta - lr * grad / np.sqrt(v - g_avg ** 2 + eps), v, g_avg
"""),
        Variant("mean subtracted outside the root (sqrt(v) - |g_avg|)", RMSPROP, """
def centered_rmsprop_step(theta, grad, v, g_avg, lr, alpha, eps):
    v = alpha * v + (1 - alpha) * grad ** 2
    g_avg = alpha * g_avg + (1 - alpha) * grad
    return theta - lr * grad / (np.sqrt(v) - np.abs(g_avg) + eps), v, g_avg
"""),
        Variant("the average gradient g_avg in the numerator instead of g", RMSPROP, """
def centered_rmsprop_step(theta, grad, v, g_avg, lr, alpha, eps):
    v = alpha * v + (1 - alpha) * grad ** 2
    g_avg = alpha * g_avg + (1 - alpha) * grad
    return theta - lr * g_avg / (np.sqrt(v - g_avg ** 2) + eps), v, g_avg
"""),
    ],
    rtol=RTOL, atol=ATOL)

PROBLEMS = {p.name: p for p in (adagrad_step, rmsprop_step, centered_rmsprop_step)}
