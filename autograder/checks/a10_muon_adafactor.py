"""Hidden checks for assignment 10_muon_adafactor (chapter 14, the optimizers of the 2020s).

The student writes Muon's Newton-Schulz iteration (float64), one Muon step with the exact
orthogonal factor, and Adafactor's factored second moment. The references are optimkit's:
``rules.newton_schulz(bfloat16=False)``; ``rules.lerp`` and ``rules.muon_adjusted_lr`` around
an SVD polar factor (what Newton-Schulz approximates); and ``rules.adafactor_kernel`` run on a
zero parameter with the relative step and the clipping switched off, so that the step it takes
is exactly the student's ``u`` times ``1/sqrt(t)``.

How the drives tell the variants apart:

* Newton-Schulz: tall and wide matrices (so a result not transposed back has the wrong shape),
  1 to 6 steps, scales from 1e-2 to 1e2 (so a missing normalisation blows up or stalls), and the
  number of steps changes between calls (so one step fewer shows);
* Muon: every drive runs a tall and a wide matrix for 15 steps each, feeding back theta and the
  buffer, with momentum in [0.8, 0.97] and gradients that change direction, so orthogonalising
  the gradient, dropping Nesterov, summing the momentum, and a missing or misplaced shape factor
  all move the parameters by far more than the tolerance;
* Adafactor: 25 fed-back steps on matrices with 2 to 6 rows and columns, the gradient's scale
  changing from step to step, so a missing mean(R) normalisation, sums for means, the decay
  taken the wrong way (t^tau instead of 1 - t^tau) and a constant decay all show.
"""

from __future__ import annotations

import numpy as np

from optimkit import rules

from .core import Problem, Variant

CHAPTER = "Chapter 14 (The optimizers of the 2020s)"
MUON = f"{CHAPTER}, section 'Muon: orthogonalise the momentum'"
ADAFACTOR = f"{CHAPTER}, section 'Adafactor: factored second moments'"

# Tolerances. Newton-Schulz is a dozen matrix products of entries at most ~1.2; another
# (equally correct) order of the products, (b A + c A A) X against b (A X) + c A (A X), differs
# by ~1e-15 per step, and six steps amplify it by at most the polynomial's slope at zero,
# 3.44^6 ~ 1700: < 1e-11. The closest mistake (one step fewer) changes entries by > 1e-2.
NS_RTOL, NS_ATOL = 1e-8, 1e-10
# Muon: one SVD per step; LAPACK's polar factor is stable to ~1e-15 relative for the
# well-conditioned random matrices drawn, and 15 fed-back steps add to ~1e-13.
MUON_RTOL, MUON_ATOL = 1e-9, 1e-12
# Adafactor: element-wise arithmetic and one mean; the reference recovers u from a step of a
# zero parameter, -u / sqrt(t) exactly up to one rounding: ~1e-16 relative.
ADA_RTOL, ADA_ATOL = 1e-9, 1e-12


# --- newton_schulz(G, steps) -> X ------------------------------------------------------------

def _ns_reference(G, steps):
    return rules.newton_schulz(np.asarray(G, dtype=np.float64), steps=steps, bfloat16=False)


def _matrix(rng, tall):
    small, large = sorted(int(v) for v in rng.integers(1, 8, size=2))
    large = max(large, small + 1)
    return (large, small) if tall else (small, large)


def _drive_ns(call, rng):
    for tall in (True, False, bool(rng.integers(2))):
        G = rng.normal(size=_matrix(rng, tall)) * float(10.0 ** rng.uniform(-2, 2))
        for steps in (int(rng.integers(1, 4)), int(rng.integers(4, 7))):
            call(G=G, steps=steps)


newton_schulz = Problem(
    name="newton_schulz", reference=_ns_reference, drive=_drive_ns, chapter=MUON,
    variants=[
        Variant("wrong coefficients (the cubic Newton-Schulz 1.5 X - 0.5 (X X^T) X)", MUON, """
def newton_schulz(G, steps):
    a, b, c = 1.5, -0.5, 0.0
    X = G.T if G.shape[0] > G.shape[1] else G
    X = X / max(np.linalg.norm(X), 1e-7)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if G.shape[0] > G.shape[1] else X
"""),
        Variant("no normalisation by the Frobenius norm before the iteration", MUON, """
def newton_schulz(G, steps):
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G.T if G.shape[0] > G.shape[1] else G
    with np.errstate(all="ignore"):
        for _ in range(steps):
            A = X @ X.T
            X = a * X + (b * A + c * A @ A) @ X
    return X.T if G.shape[0] > G.shape[1] else X
"""),
        Variant("a tall matrix's result not transposed back (shape (n, m) for an (m, n) input)", MUON, """
def newton_schulz(G, steps):
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G.T if G.shape[0] > G.shape[1] else G
    X = X / max(np.linalg.norm(X), 1e-7)
    for _ in range(steps):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X
"""),
        Variant("one step fewer than asked (range(steps - 1))", MUON, """
def newton_schulz(G, steps):
    a, b, c = 3.4445, -4.7750, 2.0315
    X = G.T if G.shape[0] > G.shape[1] else G
    X = X / max(np.linalg.norm(X), 1e-7)
    for _ in range(steps - 1):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if G.shape[0] > G.shape[1] else X
"""),
    ],
    rtol=NS_RTOL, atol=NS_ATOL)


# --- muon_step(theta, grad, buf, lr, momentum, weight_decay) -> (theta, buf) -----------------

def _orth(M):
    U, _, Vt = np.linalg.svd(M, full_matrices=False)
    return U @ Vt


def _muon_reference(theta, grad, buf, lr, momentum, weight_decay):
    new_buf = rules.lerp(buf, grad, 1 - momentum)              # mu B + (1 - mu) g
    update = rules.lerp(grad, new_buf, momentum)               # (1 - mu) g + mu B (Nesterov)
    new_theta = theta * (1 - lr * weight_decay)
    new_theta = new_theta - rules.muon_adjusted_lr(lr, None, theta.shape) * _orth(update)
    return new_theta, new_buf


def _drive_muon(call, rng):
    for tall in (True, False):
        shape = _matrix(rng, tall)
        theta, buf = rng.normal(size=shape), np.zeros(shape)
        momentum = float(rng.uniform(0.8, 0.97))
        weight_decay = float(rng.uniform(0.01, 0.2))
        direction = rng.normal(size=shape)
        for _ in range(15):
            grad = 0.5 * direction + rng.normal(size=shape) * float(10.0 ** rng.uniform(-1, 0.5))
            theta, buf = call(theta=theta, grad=grad, buf=buf, lr=float(rng.uniform(0.005, 0.05)),
                              momentum=momentum, weight_decay=weight_decay)


_MUON_HEAD = """
def muon_step(theta, grad, buf, lr, momentum, weight_decay):
    new_buf = momentum * buf + (1 - momentum) * grad
    nesterov = (1 - momentum) * grad + momentum * new_buf
    m, n = theta.shape
    scale = np.sqrt(max(1.0, m / n))
"""


def _orth_source(expr):
    return (f"    U, s, Vt = np.linalg.svd({expr}, full_matrices=False)\n"
            f"    orth = U @ Vt\n")


muon_step = Problem(
    name="muon_step", reference=_muon_reference, drive=_drive_muon, chapter=MUON,
    variants=[
        Variant("the gradient orthogonalised instead of the momentum", MUON,
                _MUON_HEAD + _orth_source("grad")
                + "    return (1 - lr * weight_decay) * theta - lr * scale * orth, new_buf\n"),
        Variant("no Nesterov: the buffer B_t orthogonalised instead of (1 - mu) g + mu B_t", MUON,
                _MUON_HEAD + _orth_source("new_buf")
                + "    return (1 - lr * weight_decay) * theta - lr * scale * orth, new_buf\n"),
        Variant("no shape factor sqrt(max(1, m/n)) on the step of a tall matrix", MUON,
                _MUON_HEAD + _orth_source("nesterov")
                + "    return (1 - lr * weight_decay) * theta - lr * orth, new_buf\n"),
        Variant("the momentum summed (B = mu B + g, torch's documentation) instead of averaged", MUON, """
def muon_step(theta, grad, buf, lr, momentum, weight_decay):
    new_buf = momentum * buf + grad
    nesterov = grad + momentum * new_buf
    m, n = theta.shape
    scale = np.sqrt(max(1.0, m / n))
    U, s, Vt = np.linalg.svd(nesterov, full_matrices=False)
    return (1 - lr * weight_decay) * theta - lr * scale * (U @ Vt), new_buf
"""),
        Variant("weight decay with the shape-scaled learning rate", MUON,
                _MUON_HEAD + _orth_source("nesterov")
                + "    return (1 - lr * scale * weight_decay) * theta - lr * scale * orth, new_buf\n"),
    ],
    rtol=MUON_RTOL, atol=MUON_ATOL)


# --- adafactor_factored(grad, row, col, t, beta2_decay, eps1) -> (u, row, col) ---------------

def _adafactor_reference(grad, row, col, t, beta2_decay, eps1):
    p = np.zeros_like(grad, dtype=np.float64)
    new_row, new_col = np.array(row, dtype=np.float64), np.array(col, dtype=np.float64)
    # lr = 1 and eps2 = 1 on a zero parameter: the step is u / sqrt(t); d = inf: no clipping
    rules.adafactor_kernel(p, np.asarray(grad, dtype=np.float64), new_row, new_col, None, t=t,
                           lr=1.0, beta2_decay=beta2_decay, eps=(eps1, 1.0), d=np.inf,
                           weight_decay=0.0, maximize=False)
    return -p * np.sqrt(t), new_row, new_col


def _drive_adafactor(call, rng):
    shape = tuple(int(v) for v in rng.integers(2, 7, size=2))
    if shape[0] == shape[1]:
        shape = (shape[0], shape[1] + 1)
    row, col = np.zeros((shape[0], 1)), np.zeros((1, shape[1]))
    beta2_decay = float(rng.uniform(-1.0, -0.5))
    eps1 = float(rng.choice([1e-30, 1e-3]))
    scales = 10.0 ** rng.uniform(-1.5, 1, size=shape)
    for t in range(1, 26):
        grad = scales * float(10.0 ** rng.uniform(-1, 0.5)) * rng.normal(size=shape)
        _, row, col = call(grad=grad, row=row, col=col, t=t, beta2_decay=beta2_decay, eps1=eps1)


_ADA_TAIL = """
    v_hat = new_row @ new_col / max(new_row.mean(), eps1)
    return grad / np.sqrt(np.maximum(v_hat, eps1 * eps1)), new_row, new_col
"""

adafactor_factored = Problem(
    name="adafactor_factored", reference=_adafactor_reference, drive=_drive_adafactor,
    chapter=ADAFACTOR,
    variants=[
        Variant("factored without the normalisation (V = R C, not divided by mean(R))", ADAFACTOR, """
def adafactor_factored(grad, row, col, t, beta2_decay, eps1):
    decay = 1 - t ** beta2_decay
    sq = grad * grad
    new_row = decay * row + (1 - decay) * sq.mean(axis=1, keepdims=True)
    new_col = decay * col + (1 - decay) * sq.mean(axis=0, keepdims=True)
    v_hat = new_row @ new_col
    return grad / np.sqrt(np.maximum(v_hat, eps1 * eps1)), new_row, new_col
"""),
        Variant("row and column sums instead of means", ADAFACTOR, """
def adafactor_factored(grad, row, col, t, beta2_decay, eps1):
    decay = 1 - t ** beta2_decay
    sq = grad * grad
    new_row = decay * row + (1 - decay) * sq.sum(axis=1, keepdims=True)
    new_col = decay * col + (1 - decay) * sq.sum(axis=0, keepdims=True)
""" + _ADA_TAIL),
        Variant("the decay taken the wrong way (t^tau, falling, instead of 1 - t^tau)", ADAFACTOR, """
def adafactor_factored(grad, row, col, t, beta2_decay, eps1):
    decay = t ** beta2_decay
    sq = grad * grad
    new_row = decay * row + (1 - decay) * sq.mean(axis=1, keepdims=True)
    new_col = decay * col + (1 - decay) * sq.mean(axis=0, keepdims=True)
""" + _ADA_TAIL),
        Variant("a constant decay (Adam's beta2 = 0.999) instead of the rising 1 - t^tau", ADAFACTOR, """
def adafactor_factored(grad, row, col, t, beta2_decay, eps1):
    decay = 0.999
    sq = grad * grad
    new_row = decay * row + (1 - decay) * sq.mean(axis=1, keepdims=True)
    new_col = decay * col + (1 - decay) * sq.mean(axis=0, keepdims=True)
""" + _ADA_TAIL),
    ],
    rtol=ADA_RTOL, atol=ADA_ATOL)

PROBLEMS = {p.name: p for p in (newton_schulz, muon_step, adafactor_factored)}
