"""Hidden checks for assignment 07_clipping_landscapes (chapter 9, Loss landscapes; chapter 10,
Gradient clipping).

Clipping is asked for as a function that returns new arrays, with optax's exact global-norm
rule (``optimkit.clipping.clip_by_global_norm``; torch's rule, ``clip_grad_norm``, adds 1e-6 to
the norm); the Hessian test and the saddle escape are described in the chapters in math only.
"""

from __future__ import annotations

import math

import numpy as np
from optimkit import clipping, landscapes
from optimkit.clipping import global_norm

from .core import Problem, Variant, random_shape

CH9 = "Chapter 9 (Loss landscapes)"
CH10 = "Chapter 10 (Gradient clipping)"

GLOBAL_NORM = f"{CH10}, section 'Clipping by global norm'"
AT_THRESHOLD = f"{CH10}, section 'torch and optax at the threshold'"
BY_VALUE = f"{CH10}, section 'Clipping by value'"
HESSIAN = f"{CH9}, section 'Reading the Hessian'"
SADDLES = f"{CH9}, section 'Escaping a saddle'"


def _grads(rng, n_arrays: int, total: float) -> list[np.ndarray]:
    """``n_arrays`` float64 arrays of random shapes whose global 2-norm is ``total``."""
    grads = []
    for _ in range(n_arrays):
        grads.append(rng.normal(size=random_shape(rng, max_axes=3)) * float(rng.uniform(0.2, 3.0)))  # unequal parts
    norm = global_norm(grads)
    return [g * (total / norm) for g in grads]


# --- clip_global_norm(grads, max_norm) -> (new list, total norm before clipping) --------------

def _clip_global_norm_reference(grads, max_norm):
    # optax's exact rule: no 1e-6, nothing changes below the threshold
    return clipping.clip_by_global_norm(grads, max_norm), global_norm(grads)


def _drive_clip_global_norm(call, rng):
    c = float(rng.uniform(0.5, 5.0))
    # Totals stay below 100, so torch's +1e-6 moves values by >= 1e-8 relative (> rtol).
    call(grads=_grads(rng, int(rng.integers(2, 5)), c * float(rng.uniform(2.0, 10.0))), max_norm=c)
    call(grads=_grads(rng, int(rng.integers(2, 5)), c * float(rng.uniform(0.2, 0.9))), max_norm=c)
    exact = _grads(rng, 3, 1.0)
    call(grads=exact, max_norm=global_norm(exact) * 1.0)  # exactly at the threshold
    call(grads=_grads(rng, 1, c * float(rng.uniform(1.5, 5.0))), max_norm=c)
    call(grads=[np.zeros((2, 3)), np.zeros(4)], max_norm=c)  # a zero gradient: total 0
    dominated = _grads(rng, 2, 1.0)
    dominated[0] = dominated[0] * 20.0  # one array carries almost all of the norm
    call(grads=dominated, max_norm=c)


clip_global_norm = Problem(
    name="clip_global_norm", reference=_clip_global_norm_reference,
    drive=_drive_clip_global_norm, chapter=GLOBAL_NORM,
    variants=[
        Variant("clipping per array instead of globally (each array rescaled by its own norm)",
                GLOBAL_NORM, """
def clip_global_norm(grads, max_norm):
    total = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    clipped = []
    for g in grads:
        norm = np.sqrt(np.sum(g ** 2))
        clipped.append(g * (max_norm / norm) if norm > max_norm else g.copy())
    return clipped, float(total)
"""),
        Variant("the torch rule with +1e-6 in the denominator (this problem asks for the exact rule)",
                AT_THRESHOLD, """
def clip_global_norm(grads, max_norm):
    total = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    scale = min(max_norm / (total + 1e-6), 1.0)
    return [g * scale for g in grads], float(total)
"""),
        Variant("value clipping used where norm clipping was asked (entries clamped to max_norm)",
                BY_VALUE, """
def clip_global_norm(grads, max_norm):
    total = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    return [np.clip(g, -max_norm, max_norm) for g in grads], float(total)
"""),
        Variant("the norm after clipping returned instead of the norm before", GLOBAL_NORM, """
def clip_global_norm(grads, max_norm):
    total = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    if total > max_norm:
        grads = [g * (max_norm / total) for g in grads]
    else:
        grads = [g.copy() for g in grads]
    return grads, float(np.sqrt(sum(np.sum(g ** 2) for g in grads)))
"""),
        Variant("every gradient rescaled to max_norm, small ones too (normalising, not clipping)",
                GLOBAL_NORM, """
def clip_global_norm(grads, max_norm):
    total = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    scale = max_norm / total if total > 0 else 1.0
    return [g * scale for g in grads], float(total)
"""),
    ],
    rtol=1e-9, atol=1e-12)  # sums in another order differ by ~1e-16 relative


# --- clip_values(grads, clip_value) -> new list -----------------------------------------------

def _clip_values_reference(grads, clip_value):
    copies = [np.array(g, dtype=np.float64) for g in grads]
    clipping.clip_grad_value(copies, clip_value)
    return copies


def _drive_clip_values(call, rng):
    for k in range(4):
        c = float(rng.uniform(0.1, 2.0))
        grads = _grads(rng, int(rng.integers(1, 4)), c * float(rng.uniform(3.0, 12.0)))
        if k == 0:
            grads[0].flat[0] = c  # entries exactly at the bounds stay
            grads[-1].flat[-1] = -c
        if k == 3:
            grads = [np.clip(g, -0.9 * c, 0.9 * c) for g in grads]  # nothing to clip
        call(grads=grads, clip_value=c)


clip_values = Problem(
    name="clip_values", reference=_clip_values_reference, drive=_drive_clip_values,
    chapter=BY_VALUE,
    variants=[
        Variant("only the upper bound applied (entries below -clip_value are kept)", BY_VALUE, """
def clip_values(grads, clip_value):
    return [np.minimum(g, clip_value) for g in grads]
"""),
        Variant("norm clipping used where value clipping was asked", BY_VALUE, """
def clip_values(grads, clip_value):
    total = np.sqrt(sum(np.sum(g ** 2) for g in grads))
    scale = min(1.0, clip_value / total) if total > 0 else 1.0
    return [g * scale for g in grads]
"""),
    ],
    rtol=0, atol=0)  # clamping is exact


# --- classify_stationary_point(H) -> "minimum" | "maximum" | "saddle" | "degenerate" ----------

ZERO = 1e-8  # |eigenvalue| <= ZERO counts as zero (stated in the problem text)


def _classify_reference(H):
    eig = np.linalg.eigvalsh(np.asarray(H, dtype=np.float64))
    pos, neg = bool(np.any(eig > ZERO)), bool(np.any(eig < -ZERO))
    if pos and neg:
        return "saddle"
    if pos and np.all(eig > ZERO):
        return "minimum"
    if neg and np.all(eig < -ZERO):
        return "maximum"
    return "degenerate"


# Hessians at stationary points of the book's landscapes (optimkit.landscapes).
def _stationary(landscape, guess) -> np.ndarray:
    p = np.array(guess, dtype=np.float64)
    for _ in range(20):  # Newton's method on the gradient: quadratic convergence
        p = p - np.linalg.solve(landscape.hessian(p), landscape.grad(p))
    return p


HIMMELBLAU_POINTS = {"maximum": (-0.27, -0.92), "saddle": (0.09, 2.88), "minimum": (-2.81, 3.13)}
STATIONARY_POINTS = [
    ("saddle", (0.0, 0.0)),        # saddle
    ("rosenbrock", (1.0, 1.0)),    # minimum, kappa ~ 2500
    ("booth", (1.0, 3.0)),         # minimum
] + [("himmelblau", tuple(_stationary(landscapes.himmelblau(), g)))  # maximum, saddle, minimum
     for g in HIMMELBLAU_POINTS.values()]
LANDSCAPE_HESSIANS = [(name, point, landscapes.LANDSCAPES[name]().hessian(point))
                      for name, point in STATIONARY_POINTS]


def check_against_optimkit() -> None:
    """Raise if a point above is not stationary on its optimkit landscape."""
    for name, point, _ in LANDSCAPE_HESSIANS:
        assert np.allclose(landscapes.LANDSCAPES[name]().grad(point), 0.0, atol=1e-9), f"{name}: {point} is not stationary"


def _rotated(rng, eigenvalues) -> np.ndarray:
    n = len(eigenvalues)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    H = (Q * np.asarray(eigenvalues, dtype=np.float64)) @ Q.T
    return (H + H.T) / 2


def _magnitudes(rng, n):
    return rng.uniform(0.1, 10.0, size=n)


def _drive_classify(call, rng):
    for i in rng.permutation(len(LANDSCAPE_HESSIANS))[:3]:
        call(H=LANDSCAPE_HESSIANS[i][2].copy())
    a, b = _magnitudes(rng, 2)
    cases = [
        [a, b],                                   # 2-D minimum
        [-a, -b],                                 # 2-D maximum (det > 0 as for a minimum)
        [a, 0.0],                                 # 2-D degenerate, positive semi-definite
        [-a, 0.0, -b],                            # 3-D degenerate, negative semi-definite
        list(-_magnitudes(rng, 3)),               # 3-D maximum (det < 0 as for a 2-D saddle)
        [a, -b, -float(_magnitudes(rng, 1)[0])],  # 3-D saddle with det > 0
        [a, 0.0, -b],                             # saddle with a zero eigenvalue
        [0.0],                                    # 1-D degenerate
        [-float(_magnitudes(rng, 1)[0])],         # 1-D maximum
        list(_magnitudes(rng, 4) * rng.choice([-1.0, 1.0], size=4)),  # 4-D, any signs
    ]
    for eigenvalues in cases:
        call(H=_rotated(rng, eigenvalues))
    # A saddle turned by 45 degrees: both diagonal entries have the sign of a - b.
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    R = np.array([[c, -s], [s, c]])
    big, small = max(a, b) + 1.0, min(a, b)
    call(H=(R * np.array([big, -small])) @ R.T)


classify_stationary_point = Problem(
    name="classify_stationary_point", reference=_classify_reference, drive=_drive_classify,
    chapter=HESSIAN,
    variants=[
        Variant("the 2-D determinant test used in n dimensions (det < 0 taken as a saddle)", HESSIAN, """
def classify_stationary_point(H):
    det = np.linalg.det(H)
    if abs(det) <= 1e-8:
        return "degenerate"
    if det < 0:
        return "saddle"
    return "minimum" if np.trace(H) > 0 else "maximum"
"""),
        Variant("a positive determinant taken to mean a minimum (a maximum has det > 0 too)", HESSIAN, """
def classify_stationary_point(H):
    det = np.linalg.det(H)
    if abs(det) <= 1e-8:
        return "degenerate"
    return "saddle" if det < 0 else "minimum"
"""),
        Variant("the signs of the diagonal entries used instead of the eigenvalues", HESSIAN, """
def classify_stationary_point(H):
    d = np.diag(H)
    if np.any(d > 1e-8) and np.any(d < -1e-8):
        return "saddle"
    if np.all(d > 1e-8):
        return "minimum"
    if np.all(d < -1e-8):
        return "maximum"
    return "degenerate"
"""),
        Variant("a saddle with a zero eigenvalue called degenerate (zero eigenvalues checked first)",
                HESSIAN, """
def classify_stationary_point(H):
    eig = np.linalg.eigvalsh(H)
    if np.any(np.abs(eig) <= 1e-8):
        return "degenerate"
    if np.all(eig > 0):
        return "minimum"
    if np.all(eig < 0):
        return "maximum"
    return "saddle"
"""),
        Variant("a semi-definite Hessian called a minimum or maximum (eigenvalues >= 0 instead of > 0)",
                HESSIAN, """
def classify_stationary_point(H):
    eig = np.linalg.eigvalsh(H)
    if np.all(eig >= -1e-8):
        return "minimum"
    if np.all(eig <= 1e-8):
        return "maximum"
    return "saddle"
"""),
    ],
    rtol=0, atol=0)  # strings: equal or not


# --- escape_saddle(start, lr, noise, radius, max_steps, seed) -> trajectory -------------------

def _escape_reference(start, lr, noise, radius, max_steps, seed):
    # landscapes.run's loop (gradient + N(0, noise^2) noise from default_rng(seed), then an SGD
    # step), stopped at the first point outside the ball.
    saddle, rng = landscapes.saddle(), np.random.default_rng(seed)
    theta = np.array(start, dtype=np.float64)
    points = [theta.copy()]
    for _ in range(max_steps):
        g = saddle.grad(theta)
        if noise:
            g = g + rng.normal(0.0, noise, size=2)
        theta = theta - lr * g
        points.append(theta.copy())
        if np.linalg.norm(theta) > radius:
            break
    return np.array(points)


def _drive_escape(call, rng):
    def lr():
        return float(rng.uniform(0.05, 0.2))

    def noise():
        return float(10 ** rng.uniform(-4, -2))

    def seed():
        return int(rng.integers(0, 2**31))

    x0 = float(rng.uniform(0.3, 1.2)) * float(rng.choice([-1.0, 1.0]))
    # On the saddle's stable line y = 0: only the noise can push it off.
    call(start=np.array([x0, 0.0]), lr=lr(), noise=noise(), radius=abs(x0) + float(rng.uniform(0.5, 2.0)),
         max_steps=500, seed=seed())
    call(start=np.zeros(2), lr=lr(), noise=noise(), radius=float(rng.uniform(0.5, 2.0)),
         max_steps=500, seed=seed())
    # Without noise, gradient descent walks into the saddle and stays (max_steps reached).
    call(start=np.array([x0, 0.0]), lr=lr(), noise=0.0, radius=abs(x0) + 1.0, max_steps=60, seed=seed())
    # Still inside the ball when max_steps runs out.
    call(start=np.array([x0, 1e-6]), lr=lr(), noise=noise(), radius=2.5, max_steps=int(rng.integers(10, 30)),
         seed=seed())


escape_saddle = Problem(
    name="escape_saddle", reference=_escape_reference, drive=_drive_escape,
    chapter=SADDLES,
    variants=[
        Variant("noise added to the parameters instead of to the gradient", SADDLES, """
def escape_saddle(start, lr, noise, radius, max_steps, seed):
    rng = np.random.default_rng(seed)
    theta = np.array(start, dtype=np.float64)
    points = [theta.copy()]
    for _ in range(max_steps):
        grad = np.array([2 * theta[0], -2 * theta[1]])
        theta = theta - lr * grad + noise * rng.normal(size=2)
        points.append(theta.copy())
        if np.linalg.norm(theta) > radius:
            break
    return np.array(points)
"""),
        Variant("the random generator re-created at every step (the same noise at every step)", SADDLES, """
def escape_saddle(start, lr, noise, radius, max_steps, seed):
    theta = np.array(start, dtype=np.float64)
    points = [theta.copy()]
    for _ in range(max_steps):
        rng = np.random.default_rng(seed)
        grad = np.array([2 * theta[0], -2 * theta[1]]) + noise * rng.normal(size=2)
        theta = theta - lr * grad
        points.append(theta.copy())
        if np.linalg.norm(theta) > radius:
            break
    return np.array(points)
"""),
        Variant("the gradient of -y^2 taken as +2y (a bowl, not a saddle)", SADDLES, """
def escape_saddle(start, lr, noise, radius, max_steps, seed):
    rng = np.random.default_rng(seed)
    theta = np.array(start, dtype=np.float64)
    points = [theta.copy()]
    for _ in range(max_steps):
        grad = np.array([2 * theta[0], 2 * theta[1]]) + noise * rng.normal(size=2)
        theta = theta - lr * grad
        points.append(theta.copy())
        if np.linalg.norm(theta) > radius:
            break
    return np.array(points)
"""),
        Variant("the start point left out of the trajectory", SADDLES, """
def escape_saddle(start, lr, noise, radius, max_steps, seed):
    rng = np.random.default_rng(seed)
    theta = np.array(start, dtype=np.float64)
    points = []
    for _ in range(max_steps):
        grad = np.array([2 * theta[0], -2 * theta[1]]) + noise * rng.normal(size=2)
        theta = theta - lr * grad
        points.append(theta.copy())
        if np.linalg.norm(theta) > radius:
            break
    return np.array(points)
"""),
    ],
    # The y coordinate grows like (1 + 2 lr)^k, which scales rounding and signal alike, so an
    # equivalent update (another operation order) stays within ~1e-13 relative; x stays of the
    # order lr * noise >= 5e-6, far above atol.
    rtol=1e-9, atol=1e-15)


PROBLEMS = {p.name: p for p in (clip_global_norm, clip_values, classify_stationary_point, escape_saddle)}
