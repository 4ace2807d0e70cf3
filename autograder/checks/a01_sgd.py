"""Hidden checks for assignment 01_sgd (chapter 2, Gradient descent and SGD)."""

from __future__ import annotations

import numpy as np
from optimkit import digits, rules

from .core import Problem, Variant, random_shape

CHAPTER = "Chapter 2 (Gradient descent and SGD)"


# --- sgd_step(theta, grad, lr) -> new theta -------------------------------------------------

def _sgd_reference(theta, grad, lr):
    (new,), _ = rules.sgd_update([grad], rules.sgd_init([theta]), [theta], lr=lr)
    return new


def _drive_sgd_step(call, rng):
    shape = random_shape(rng)
    theta = rng.normal(size=shape)
    lr = float(rng.uniform(0.01, 0.5))
    for _ in range(5):
        theta = call(theta=theta, grad=rng.normal(size=shape), lr=lr)


sgd_step = Problem(
    name="sgd_step", reference=_sgd_reference, drive=_drive_sgd_step,
    chapter=f"{CHAPTER}, section 'The update'",
    variants=[
        Variant("a step uphill (θ + η g instead of θ − η g)", f"{CHAPTER}, section 'The update'", """
def sgd_step(theta, grad, lr):
    return theta + lr * grad
"""),
        Variant("the learning rate left out (θ − g)", f"{CHAPTER}, section 'The update'", """
def sgd_step(theta, grad, lr):
    return theta - grad
"""),
    ],
    rtol=1e-12, atol=1e-14)


# --- minibatch_indices(n, batch_size, seed) -> list of index arrays ---------------------------

def _minibatch_reference(n, batch_size, seed):
    return list(digits.minibatches(n, batch_size, np.random.default_rng(seed)))


def _drive_minibatches(call, rng):
    for _ in range(4):
        n = int(rng.integers(5, 60))
        call(n=n, batch_size=int(rng.integers(2, n)), seed=int(rng.integers(0, 2**31)))


minibatch_indices = Problem(
    name="minibatch_indices", reference=_minibatch_reference, drive=_drive_minibatches,
    chapter=f"{CHAPTER}, section 'Minibatches'",
    variants=[
        Variant("the last, smaller batch dropped", f"{CHAPTER}, section 'Minibatches'", """
def minibatch_indices(n, batch_size, seed):
    order = np.random.default_rng(seed).permutation(n)
    return [order[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]
"""),
        Variant("batches in the original order (no shuffling)", f"{CHAPTER}, section 'Minibatches'", """
def minibatch_indices(n, batch_size, seed):
    order = np.arange(n)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]
"""),
        Variant("a fresh permutation drawn for every batch", f"{CHAPTER}, section 'Minibatches'", """
def minibatch_indices(n, batch_size, seed):
    rng = np.random.default_rng(seed)
    return [rng.permutation(n)[:min(batch_size, n - i)] for i in range(0, n, batch_size)]
"""),
    ],
    rtol=0, atol=0)


# --- critical_lr(H) -> the largest stable learning rate of GD on 0.5 θᵀHθ ---------------------

def _critical_reference(H):
    return float(2.0 / np.linalg.eigvalsh(H).max())


def _drive_critical(call, rng):
    for _ in range(4):
        n = int(rng.integers(2, 6))
        Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        eigenvalues = rng.uniform(0.1, 10.0, size=n)
        call(H=(Q * eigenvalues) @ Q.T)


critical_lr = Problem(
    name="critical_lr", reference=_critical_reference, drive=_drive_critical,
    chapter=f"{CHAPTER}, section 'The learning-rate knife edge'",
    variants=[
        Variant("2 / λ_min (the flattest direction instead of the steepest)",
                f"{CHAPTER}, section 'The learning-rate knife edge'", """
def critical_lr(H):
    return float(2.0 / np.linalg.eigvalsh(H).min())
"""),
        Variant("1 / λ_max (the best single-step rate, not the stability limit)",
                f"{CHAPTER}, section 'The learning-rate knife edge'", """
def critical_lr(H):
    return float(1.0 / np.linalg.eigvalsh(H).max())
"""),
        Variant("2 / max(diag H) (diagonal entries are not eigenvalues)",
                f"{CHAPTER}, section 'The learning-rate knife edge'", """
def critical_lr(H):
    return float(2.0 / np.max(np.diag(H)))
"""),
    ],
    rtol=1e-9, atol=0)

PROBLEMS = {p.name: p for p in (sgd_step, minibatch_indices, critical_lr)}
