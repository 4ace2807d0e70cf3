"""Hidden checks for assignment 04_adam (chapter 5, Adam).

The student writes Adam and AMSGrad for one array, with the moments and the step
number passed in and returned; the references run optimkit's ``adam_update`` on
one-element lists with a state rebuilt from those arrays.

How the drives tell the variants apart:

* every run goes from t = 1 to t = 50, feeding back the returned parameters and
  moments, with beta2 in [0.95, 0.999]: the bias corrections 1 - beta^t are far from 1
  early on and change every step, so missing, shifted or double-applied corrections
  all show;
* eps is drawn log-uniformly from [1e-3, 1e-1.5] and coordinates have sizes from 1e-2
  to 1e0.5, so eps inside the root, and eps added before the bias correction
  (which effectively multiplies it by sqrt(1 - beta2^t), 0.03..1), move the steps;
* the gradient scale jumps up and down from step to step, so v falls as well as
  rises and AMSGrad's running maximum differs from v;
* the learning rate changes on every call.
"""

from __future__ import annotations

import numpy as np

from optimkit import rules

from .core import Problem, Variant, random_shape

CHAPTER = "Chapter 5 (Adam)"
UPDATE = f"{CHAPTER}, section 'The update'"
BIAS = f"{CHAPTER}, section 'Bias correction'"
EFFICIENT = f"{CHAPTER}, section \"Kingma's 'efficient' form and where ε sits\""
EPS = "Chapter 4 (AdaGrad and RMSProp), section 'Where does ε go?'"
AMSGRAD = f"{CHAPTER}, section 'AMSGrad'"

# Tolerances. A step is a dozen element-wise operations whose only division is by
# sqrt(v_hat) + eps >= 1e-3, so a correct answer written in another order (sqrt(v / bc2)
# instead of sqrt(v) / sqrt(bc2), lr / bc1 * m or lr * (m / bc1), ...) differs from the
# reference by ~1e-16 relative per step and stays below 1e-13 after 50 fed-back steps.
# The closest known mistake (eps inside the root) changes a step by >= 1e-4 relative.
# rtol = 1e-9 sits far from both; atol for entries near zero.
RTOL, ATOL = 1e-9, 1e-12
STEPS = 50


def settings(rng) -> dict:
    """Hyperparameters for one run (shared with the AdamW checks)."""
    return dict(beta1=float(rng.uniform(0.8, 0.95)), beta2=float(rng.uniform(0.95, 0.999)),
                eps=float(10.0 ** rng.uniform(-3, -1.5)))


def lr_schedule(rng, steps=STEPS) -> list[float]:
    """A learning rate that changes on every call: lr0 times a random factor in [0.3, 1]."""
    lr0 = float(rng.uniform(0.01, 0.1))
    return [lr0 * float(rng.uniform(0.3, 1.0)) for _ in range(steps)]


def gradients(rng, shape, steps=STEPS) -> list[np.ndarray]:
    """Coordinates of different sizes; the overall scale jumps by up to 10x between steps."""
    scale = 10.0 ** rng.uniform(-2, 0.5, size=shape)
    return [scale * float(10.0 ** rng.uniform(-1, 0)) * rng.normal(size=shape) for _ in range(steps)]


# --- adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps) -> (theta, m, v) ----------------

def _adam_reference(theta, grad, m, v, t, lr, beta1, beta2, eps):
    state = rules.AdamState(step=t - 1, m=[m], v=[v], v_max=None)
    (new,), state = rules.adam_update([grad], state, [theta], lr=lr, betas=(beta1, beta2), eps=eps)
    return new, state.m[0], state.v[0]


def _drive_adam(call, rng):
    shape = random_shape(rng)
    hyper = settings(rng)
    theta, m, v = rng.normal(size=shape), np.zeros(shape), np.zeros(shape)
    for t, (lr, grad) in enumerate(zip(lr_schedule(rng), gradients(rng, shape)), start=1):
        theta, m, v = call(theta=theta, grad=grad, m=m, v=v, t=t, lr=lr, **hyper)


adam_step = Problem(
    name="adam_step", reference=_adam_reference, drive=_drive_adam,
    chapter=UPDATE,
    variants=[
        Variant("no bias correction (m and v used as they are)", BIAS, """
def adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    return theta - lr * m / (np.sqrt(v) + eps), m, v
"""),
        Variant("eps inside the square root (sqrt(v_hat + eps))", EPS, """
def adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return theta - lr * m_hat / np.sqrt(v_hat + eps), m, v
"""),
        Variant("t counted from 0 (the bias correction uses t - 1, so the first step divides by zero)",
                BIAS, """
def adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    with np.errstate(divide="ignore", invalid="ignore"):  # 1 - beta ** 0 == 0 on the first step
        m_hat = m / (1 - beta1 ** (t - 1))
        v_hat = v / (1 - beta2 ** (t - 1))
        return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
"""),
        Variant("eps added before the bias correction (the paper's 'efficient' form, lr sqrt(1 - beta2^t) / "
                "(1 - beta1^t) m / (sqrt(v) + eps))", EFFICIENT, """
def adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    step_size = lr * np.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    return theta - step_size * m / (np.sqrt(v) + eps), m, v
"""),
        Variant("bias-corrected moments returned as the state (m_hat and v_hat instead of m and v)", BIAS, """
def adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    m = m / (1 - beta1 ** t)
    v = v / (1 - beta2 ** t)
    return theta - lr * m / (np.sqrt(v) + eps), m, v
"""),
        Variant("bias correction one step ahead (t + 1, as if t were counted from 0 and passed from 1)", BIAS, """
def adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps):
    t = t + 1
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
"""),
        Variant("Adam step taken with the previous moments (m and v updated after the step)", UPDATE, """
def adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps):
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    return theta, m, v
"""),
        Variant("beta1 and beta2 swapped", UPDATE, """
def adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps):
    m = beta2 * m + (1 - beta2) * grad
    v = beta1 * v + (1 - beta1) * grad ** 2
    m_hat = m / (1 - beta2 ** t)
    v_hat = v / (1 - beta1 ** t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v
"""),
    ],
    rtol=RTOL, atol=ATOL)


# --- amsgrad_step(theta, grad, m, v, v_max, t, lr, beta1, beta2, eps) -> (theta, m, v, v_max) -

def _amsgrad_reference(theta, grad, m, v, v_max, t, lr, beta1, beta2, eps):
    state = rules.AdamState(step=t - 1, m=[m], v=[v], v_max=[v_max])
    (new,), state = rules.adam_update([grad], state, [theta], lr=lr, betas=(beta1, beta2), eps=eps,
                                      amsgrad=True)
    return new, state.m[0], state.v[0], state.v_max[0]


def _drive_amsgrad(call, rng):
    shape = random_shape(rng)
    hyper = settings(rng)
    theta, m, v, v_max = rng.normal(size=shape), np.zeros(shape), np.zeros(shape), np.zeros(shape)
    for t, (lr, grad) in enumerate(zip(lr_schedule(rng), gradients(rng, shape)), start=1):
        theta, m, v, v_max = call(theta=theta, grad=grad, m=m, v=v, v_max=v_max, t=t, lr=lr, **hyper)


amsgrad_step = Problem(
    name="amsgrad_step", reference=_amsgrad_reference, drive=_drive_amsgrad,
    chapter=AMSGRAD,
    variants=[
        Variant("AMSGrad without bias correction (the original paper's form)", AMSGRAD, """
def amsgrad_step(theta, grad, m, v, v_max, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    v_max = np.maximum(v_max, v)
    return theta - lr * m / (np.sqrt(v_max) + eps), m, v, v_max
"""),
        Variant("max taken of the bias-corrected v_hat (v_max stores max of v / (1 - beta2^t))", AMSGRAD, """
def amsgrad_step(theta, grad, m, v, v_max, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    v_max = np.maximum(v_max, v / (1 - beta2 ** t))
    m_hat = m / (1 - beta1 ** t)
    return theta - lr * m_hat / (np.sqrt(v_max) + eps), m, v, v_max
"""),
        Variant("the running max not used in the step (plain Adam)", AMSGRAD, """
def amsgrad_step(theta, grad, m, v, v_max, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    v_max = np.maximum(v_max, v)
    m_hat = m / (1 - beta1 ** t)
    v_hat = v / (1 - beta2 ** t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v, v_max
"""),
        Variant("v overwritten by its running max (the moving average restarts from the max)", AMSGRAD, """
def amsgrad_step(theta, grad, m, v, v_max, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad ** 2
    v_max = np.maximum(v_max, v)
    v = v_max
    m_hat = m / (1 - beta1 ** t)
    v_hat = v_max / (1 - beta2 ** t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v, v_max
"""),
        Variant("max with the previous v instead of the running max", AMSGRAD, """
def amsgrad_step(theta, grad, m, v, v_max, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v_new = beta2 * v + (1 - beta2) * grad ** 2
    v_max = np.maximum(v, v_new)
    m_hat = m / (1 - beta1 ** t)
    v_hat = v_max / (1 - beta2 ** t)
    return theta - lr * m_hat / (np.sqrt(v_hat) + eps), m, v_new, v_max
"""),
    ],
    rtol=RTOL, atol=ATOL)

PROBLEMS = {p.name: p for p in (adam_step, amsgrad_step)}
