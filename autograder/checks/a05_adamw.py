"""Hidden checks for assignment 05_adamw (chapter 6, AdamW).

The student writes AdamW and Adam with an L2 penalty for one array, with the
moments and the step number passed in and returned, and the total shrink that
AdamW's decay applies over a learning-rate schedule. The references run optimkit's
``adamw_update`` / ``adam_update`` on one-element lists.

How the drives tell the variants apart:

* weight_decay is drawn from [0.35, 0.7] and lr from [0.01, 0.1] times a factor in
  [0.3, 1] that changes on every call, so lr * weight_decay >= 1e-3 at every step:
  decaying after the Adam step instead of before it moves theta by
  lr * weight_decay * (the Adam step) >= ~1e-5 per step, 1e4 times the tolerance;
* the learning rate changes on every call, so a decay that ignores the current lr
  (or uses the first one) is seen;
* runs go from t = 1 to t = 50 with the state fed back (see the Adam checks).
"""

from __future__ import annotations

import numpy as np

from optimkit import rules

from .a04_adam import STEPS, gradients, lr_schedule, settings
from .core import Problem, Variant, random_shape

CHAPTER = "Chapter 6 (AdamW)"
DECOUPLED = f"{CHAPTER}, section 'AdamW: decay beside the step, not inside it'"
AFTER = f"{CHAPTER}, section 'Decay before or after the step?'"
L2 = f"{CHAPTER}, section 'For Adam, the penalty gets rescaled'"
SCHEDULE = f"{CHAPTER}, section \"torch's AdamW and the paper's\""
ADAM = "Chapter 5 (Adam), section 'Bias correction'"

# Tolerances: as for Adam (see autograder/checks/adam.py): a correct answer in another
# order of operations stays within ~1e-13 relative of the reference over 50 steps; the
# closest mistake (decay after the step) differs by >= 1e-5 absolute per step.
RTOL, ATOL = 1e-9, 1e-12


def _weight_decay(rng):
    return float(rng.uniform(0.35, 0.7))


# --- adamw_step(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay) -> (theta, m, v) --

def _adamw_reference(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
    state = rules.AdamState(step=t - 1, m=[m], v=[v], v_max=None)
    (new,), state = rules.adamw_update([grad], state, [theta], lr=lr, betas=(beta1, beta2), eps=eps,
                                       weight_decay=weight_decay)
    return new, state.m[0], state.v[0]


def _adam_l2_reference(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
    state = rules.AdamState(step=t - 1, m=[m], v=[v], v_max=None)
    (new,), state = rules.adam_update([grad], state, [theta], lr=lr, betas=(beta1, beta2), eps=eps,
                                      weight_decay=weight_decay)
    return new, state.m[0], state.v[0]


def _drive_decay(call, rng):
    shape = random_shape(rng)
    hyper = dict(settings(rng), weight_decay=_weight_decay(rng))
    theta, m, v = rng.normal(size=shape), np.zeros(shape), np.zeros(shape)
    for t, (lr, grad) in enumerate(zip(lr_schedule(rng), gradients(rng, shape)), start=1):
        theta, m, v = call(theta=theta, grad=grad, m=m, v=v, t=t, lr=lr, **hyper)


_ADAM_PART = """
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
"""

adamw_step = Problem(
    name="adamw_step", reference=_adamw_reference, drive=_drive_decay,
    chapter=DECOUPLED,
    variants=[
        Variant("decay applied after the step (theta shrunk after the Adam update, not before)", AFTER, """
def adamw_step(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):""" + _ADAM_PART + """
    theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    theta = theta * (1 - lr * weight_decay)
    return theta, m, v
"""),
        Variant("decay coupled as an L2 penalty (weight_decay * theta added to the gradient: that is Adam, "
                "not AdamW)", L2, """
def adamw_step(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
    grad = grad + weight_decay * theta""" + _ADAM_PART + """
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
"""),
        Variant("decay not multiplied by the lr (theta (1 - weight_decay))", SCHEDULE, """
def adamw_step(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
    theta = theta * (1 - weight_decay)""" + _ADAM_PART + """
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
"""),
        Variant("decay applied twice, decoupled and as an L2 penalty", L2, """
def adamw_step(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
    grad = grad + weight_decay * theta
    theta = theta * (1 - lr * weight_decay)""" + _ADAM_PART + """
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
"""),
        Variant("AdamW without bias correction in its Adam part", ADAM, """
def adamw_step(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
    theta = theta * (1 - lr * weight_decay)
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    return theta - lr * m / (np.sqrt(v) + eps), m, v
"""),
    ],
    rtol=RTOL, atol=ATOL)


# --- adam_l2_step(...) -> (theta, m, v): torch.optim.Adam's weight_decay ---------------------

adam_l2_step = Problem(
    name="adam_l2_step", reference=_adam_l2_reference, drive=_drive_decay,
    chapter=L2,
    variants=[
        Variant("decoupled decay instead of an L2 penalty (that is AdamW)", L2, """
def adam_l2_step(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
    theta = theta * (1 - lr * weight_decay)""" + _ADAM_PART + """
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
"""),
        Variant("penalty gradient doubled (2 weight_decay theta, the gradient of weight_decay |theta|² "
                "instead of weight_decay / 2 |theta|²)", L2, """
def adam_l2_step(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
    grad = grad + 2 * weight_decay * theta""" + _ADAM_PART + """
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
"""),
        Variant("penalty left out of the second moment (v built from the raw gradient)", L2, """
def adam_l2_step(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):
    m = beta1 * m + (1 - beta1) * (grad + weight_decay * theta)
    v = beta2 * v + (1 - beta2) * grad ** 2
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
"""),
        Variant("penalty subtracted from the weights after the step instead of added to the gradient", L2, """
def adam_l2_step(theta, grad, m, v, t, lr, beta1, beta2, eps, weight_decay):""" + _ADAM_PART + """
    theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    return theta - lr * weight_decay * theta, m, v
"""),
    ],
    rtol=RTOL, atol=ATOL)


# --- decay_factor(lrs, weight_decay) -> float: AdamW's shrink over a schedule ----------------

def _decay_factor_reference(lrs, weight_decay):
    # With a zero gradient Adam's moments stay 0 and its step is 0 / (0 + eps) = 0, so
    # AdamW only decays: running it on theta = 1 gives the product of (1 - lr_t wd).
    theta, state = [np.ones(1)], rules.adamw_init([np.ones(1)])
    for lr in lrs:
        theta, state = rules.adamw_update([np.zeros(1)], state, theta, lr=float(lr),
                                          weight_decay=weight_decay)
    return float(theta[0][0])


def _drive_decay_factor(call, rng):
    for _ in range(4):
        steps = int(rng.integers(20, 200))
        peak = float(rng.uniform(0.005, 0.1))
        warmup = int(rng.integers(1, steps // 4 + 1))
        k = np.arange(steps)
        lrs = np.where(k < warmup, peak * (k + 1) / warmup,   # linear warmup, then cosine decay
                       peak * 0.5 * (1 + np.cos(np.pi * (k - warmup) / (steps - warmup))))
        call(lrs=lrs, weight_decay=_weight_decay(rng))


decay_factor = Problem(
    name="decay_factor", reference=_decay_factor_reference, drive=_drive_decay_factor,
    chapter=SCHEDULE,
    variants=[
        Variant("the first lr used at every step (decay that ignores the schedule)", SCHEDULE, """
def decay_factor(lrs, weight_decay):
    return float((1 - lrs[0] * weight_decay) ** len(lrs))
"""),
        Variant("decay not multiplied by the lr ((1 - weight_decay)^T)", SCHEDULE, """
def decay_factor(lrs, weight_decay):
    return float((1 - weight_decay) ** len(lrs))
"""),
        Variant("decays added instead of compounded (1 - weight_decay sum(lrs))", SCHEDULE, """
def decay_factor(lrs, weight_decay):
    return float(1 - weight_decay * np.sum(lrs))
"""),
        Variant("the largest lr used at every step", SCHEDULE, """
def decay_factor(lrs, weight_decay):
    return float((1 - np.max(lrs) * weight_decay) ** len(lrs))
"""),
    ],
    # A product of up to 200 factors in [0.93, 1]: rounding stays below 1e-13 relative in
    # any order (np.prod, a loop, exp(sum(log))); the closest mistake (sum instead of
    # product) differs by >= 1e-5 relative.
    rtol=1e-10, atol=1e-14)

PROBLEMS = {p.name: p for p in (adamw_step, adam_l2_step, decay_factor)}
