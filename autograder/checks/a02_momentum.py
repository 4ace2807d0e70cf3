"""Hidden checks for assignment 02_momentum (chapter 3, Momentum).

The student writes the rules with single arrays and explicit state passed in and
returned, an interface optimkit does not have; the references run optimkit's
pure functions on one-element lists.

How the drives tell the variants apart:

* dampening is drawn from [0.3, 0.45] and momentum from [0.8, 0.95], so the
  dampening weight 1 - tau, the EMA weight 1 - mu and tau itself are all at least
  0.05 apart: a damped first buffer, the EMA weights and swapped weights all move
  the values by far more than the tolerance;
* the learning rate changes on every call (a random schedule), which separates
  the forms that keep the learning rate outside the buffer from the form that
  folds it into the velocity (they agree at constant lr, see chapter 3);
* runs feed the function its own returned parameters and buffer for 25 steps.
"""

from __future__ import annotations

import numpy as np

from optimkit import rules

from .core import Problem, Variant, random_shape

CHAPTER = "Chapter 3 (Momentum)"
FORMS = f"{CHAPTER}, section 'Three ways to write it'"
RULE = f"{CHAPTER}, section 'The update rule'"
NESTEROV = f"{CHAPTER}, section 'Nesterov momentum'"

# Tolerances. Every rule here is a few multiply-adds per step, so a correct answer
# written in any order of operations differs from the reference by rounding only:
# about 1e-16 relative per operation, under 1e-13 after 25 fed-back steps. Every
# known mistake changes the values by at least 1e-3 relative (the settings above).
# rtol = 1e-9 sits far from both; atol covers entries that pass near zero.
RTOL, ATOL = 1e-9, 1e-12
STEPS = 25


def _lr_schedule(rng, steps):
    """A learning rate that changes on every call: lr0 times a random factor in [0.3, 1]."""
    lr0 = float(rng.uniform(0.02, 0.3))
    return [lr0 * float(rng.uniform(0.3, 1.0)) for _ in range(steps)]


def _grads(rng, shape, steps):
    scale = 10.0 ** rng.uniform(-1, 0.5, size=shape)  # coordinates of different sizes
    return [scale * rng.normal(size=shape) for _ in range(steps)]


# --- momentum_step(theta, grad, buf, t, lr, momentum, dampening) -> (theta, buf) ------------

def _momentum_reference(theta, grad, buf, t, lr, momentum, dampening):
    state = rules.SGDState(step=t - 1, momentum=[buf])
    (new,), state = rules.sgd_update([grad], state, [theta], lr=lr, momentum=momentum,
                                     dampening=dampening)
    return new, state.momentum[0]


def _drive_momentum(call, rng):
    # One damped run (the case that separates the variants) and a short undamped one.
    for dampening, steps in ((float(rng.uniform(0.3, 0.45)), STEPS), (0.0, 8)):
        shape = random_shape(rng)
        momentum = float(rng.uniform(0.8, 0.95))
        theta, buf = rng.normal(size=shape), np.zeros(shape)
        for t, (lr, grad) in enumerate(zip(_lr_schedule(rng, steps), _grads(rng, shape, steps)), start=1):
            theta, buf = call(theta=theta, grad=grad, buf=buf, t=t, lr=lr, momentum=momentum,
                              dampening=dampening)


momentum_step = Problem(
    name="momentum_step", reference=_momentum_reference, drive=_drive_momentum,
    chapter=RULE,
    variants=[
        Variant("first momentum step damped (b = (1 - dampening) g at t = 1)", RULE, """
def momentum_step(theta, grad, buf, t, lr, momentum, dampening):
    buf = momentum * buf + (1 - dampening) * grad
    return theta - lr * buf, buf
"""),
        Variant("wrong momentum form: the EMA weight (1 - momentum) instead of (1 - dampening)", FORMS, """
def momentum_step(theta, grad, buf, t, lr, momentum, dampening):
    if t == 1:
        buf = grad.copy()
    else:
        buf = momentum * buf + (1 - momentum) * grad
    return theta - lr * buf, buf
"""),
        Variant("wrong momentum form: lr inside the velocity (v = momentum v + lr (1 - dampening) g, theta - v)",
                FORMS, """
def momentum_step(theta, grad, buf, t, lr, momentum, dampening):
    if t == 1:
        buf = lr * grad
    else:
        buf = momentum * buf + lr * (1 - dampening) * grad
    return theta - buf, buf
"""),
        Variant("dampening ignored (b = momentum b + g)", RULE, """
def momentum_step(theta, grad, buf, t, lr, momentum, dampening):
    if t == 1:
        buf = grad.copy()
    else:
        buf = momentum * buf + grad
    return theta - lr * buf, buf
"""),
        Variant("dampening weight swapped (dampening * g instead of (1 - dampening) * g)", RULE, """
def momentum_step(theta, grad, buf, t, lr, momentum, dampening):
    if t == 1:
        buf = grad.copy()
    else:
        buf = momentum * buf + dampening * grad
    return theta - lr * buf, buf
"""),
        Variant("step taken with the previous buffer (theta moved before b is updated)", RULE, """
def momentum_step(theta, grad, buf, t, lr, momentum, dampening):
    theta = theta - lr * buf
    if t == 1:
        buf = grad.copy()
    else:
        buf = momentum * buf + (1 - dampening) * grad
    return theta, buf
"""),
    ],
    rtol=RTOL, atol=ATOL)


# --- ema_momentum_step(theta, grad, m, lr, beta) -> (theta, m) -----------------------------

def _ema_reference(theta, grad, m, lr, beta):
    # torch's rule past its first step, with dampening = momentum = beta, is the EMA:
    # b = beta b + (1 - beta) g. (state.step = 1 skips the undamped first buffer.)
    state = rules.SGDState(step=1, momentum=[m])
    (new,), state = rules.sgd_update([grad], state, [theta], lr=lr, momentum=beta, dampening=beta)
    return new, state.momentum[0]


def _drive_ema(call, rng):
    shape = random_shape(rng)
    beta = float(rng.uniform(0.6, 0.95))  # 1 - beta and beta at least 0.1 apart
    theta, m = rng.normal(size=shape), np.zeros(shape)
    for lr, grad in zip(_lr_schedule(rng, STEPS), _grads(rng, shape, STEPS)):
        theta, m = call(theta=theta, grad=grad, m=m, lr=lr, beta=beta)


ema_momentum_step = Problem(
    name="ema_momentum_step", reference=_ema_reference, drive=_drive_ema,
    chapter=FORMS,
    variants=[
        Variant("wrong momentum form: torch's m = beta m + g, without the (1 - beta) weight", FORMS, """
def ema_momentum_step(theta, grad, m, lr, beta):
    m = beta * m + grad
    return theta - lr * m, m
"""),
        Variant("weights of the average swapped ((1 - beta) m + beta g)", FORMS, """
def ema_momentum_step(theta, grad, m, lr, beta):
    m = (1 - beta) * m + beta * grad
    return theta - lr * m, m
"""),
        Variant("the EMA step taken with the previous average (theta moved before m is updated)", FORMS, """
def ema_momentum_step(theta, grad, m, lr, beta):
    theta = theta - lr * m
    m = beta * m + (1 - beta) * grad
    return theta, m
"""),
        Variant("wrong momentum form: lr inside the average (m = beta m + (1 - beta) lr g, theta - m)", FORMS, """
def ema_momentum_step(theta, grad, m, lr, beta):
    m = beta * m + (1 - beta) * lr * grad
    return theta - m, m
"""),
    ],
    rtol=RTOL, atol=ATOL)


# --- sgd_equivalent(lr, beta) -> (lr, momentum, dampening) --------------------------------

def _equivalent_reference(lr, beta):
    # EMA: m_t = (1 - beta) * sum_s beta^(t-s) g_s; torch with dampening 0 keeps
    # b_t = sum_s beta^(t-s) g_s from its (undamped) first step on, so m_t = (1 - beta) b_t
    # at every step and the steps agree when torch's lr is (1 - beta) times the EMA's.
    return float(lr * (1 - beta)), float(beta), 0.0


def _drive_equivalent(call, rng):
    for _ in range(6):
        call(lr=float(rng.uniform(0.01, 1.0)), beta=float(rng.uniform(0.55, 0.99)))


sgd_equivalent = Problem(
    name="sgd_equivalent", reference=_equivalent_reference, drive=_drive_equivalent,
    chapter=FORMS,
    variants=[
        Variant("dampening = beta with the same lr (torch does not damp its first buffer, "
                "so the first step is 1/(1 - beta) times too long)", FORMS, """
def sgd_equivalent(lr, beta):
    return lr, beta, beta
"""),
        Variant("the lr converted the wrong way round (lr / (1 - beta) instead of lr (1 - beta))", FORMS, """
def sgd_equivalent(lr, beta):
    return lr / (1 - beta), beta, 0.0
"""),
        Variant("dampening = 1 - beta with the same lr (torch damps g by 1 - dampening)", RULE, """
def sgd_equivalent(lr, beta):
    return lr, beta, 1 - beta
"""),
        Variant("the lr left unchanged (lr, beta, 0)", FORMS, """
def sgd_equivalent(lr, beta):
    return lr, beta, 0.0
"""),
    ],
    rtol=1e-12, atol=1e-15)  # one multiplication: only the last bit can differ


# --- nesterov_step(theta, grad, buf, lr, momentum) -> (theta, buf) --------------------------

def _nesterov_reference(theta, grad, buf, lr, momentum):
    # state.step = 1: b = momentum b + g, which from b = 0 is also torch's first buffer.
    state = rules.SGDState(step=1, momentum=[buf])
    (new,), state = rules.sgd_update([grad], state, [theta], lr=lr, momentum=momentum, nesterov=True)
    return new, state.momentum[0]


def _drive_nesterov(call, rng):
    shape = random_shape(rng)
    momentum = float(rng.uniform(0.5, 0.95))
    theta, buf = rng.normal(size=shape), np.zeros(shape)
    for lr, grad in zip(_lr_schedule(rng, STEPS), _grads(rng, shape, STEPS)):
        theta, buf = call(theta=theta, grad=grad, buf=buf, lr=lr, momentum=momentum)


nesterov_step = Problem(
    name="nesterov_step", reference=_nesterov_reference, drive=_drive_nesterov,
    chapter=NESTEROV,
    variants=[
        Variant("heavy-ball step instead of Nesterov (theta - lr b)", NESTEROV, """
def nesterov_step(theta, grad, buf, lr, momentum):
    buf = momentum * buf + grad
    return theta - lr * buf, buf
"""),
        Variant("Nesterov look-ahead without the momentum factor (g + b instead of g + momentum b)",
                NESTEROV, """
def nesterov_step(theta, grad, buf, lr, momentum):
    buf = momentum * buf + grad
    return theta - lr * (grad + buf), buf
"""),
        Variant("Nesterov written with the lr inside the velocity (v = momentum v + lr g)", NESTEROV, """
def nesterov_step(theta, grad, buf, lr, momentum):
    buf = momentum * buf + lr * grad
    return theta - (lr * grad + momentum * buf), buf
"""),
        Variant("Nesterov buffer scaled by (1 + momentum) instead of adding the gradient", NESTEROV, """
def nesterov_step(theta, grad, buf, lr, momentum):
    buf = momentum * buf + grad
    return theta - lr * (buf + momentum * buf), buf
"""),
    ],
    rtol=RTOL, atol=ATOL)

PROBLEMS = {p.name: p for p in (momentum_step, ema_momentum_step, sgd_equivalent, nesterov_step)}
