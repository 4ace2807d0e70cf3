r"""Small test functions for watching optimizers move, plus a runner that records trajectories.

Every 2-D landscape has an analytic gradient and Hessian, so trajectories are exact up to rounding and
curvature arguments (e.g. "GD diverges for :math:`\eta > 2/\lambda_{\max}`") can be checked numerically.

>>> ravine(20.0).hessian((0.0, 0.0))          # 0.1 x^2 + 2 y^2
array([[0.2, 0. ],
       [0. , 4. ]])
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from . import validate

__all__ = [
    "Landscape", "Landscape1D", "Trajectory", "LANDSCAPES", "run",
    "ravine", "rosenbrock", "beale", "himmelblau", "saddle", "rastrigin", "booth", "cliff",
    "sharp_flat_1d",
]

# Runs stop once |f| exceeds this: beyond it the picture is "diverged" and float overflow is near.
DIVERGENCE_THRESHOLD = 1e12


@dataclass(frozen=True, eq=False)
class Landscape:
    r"""A 2-D test function :math:`f(x, y)` with analytic derivatives.

    ``f(x, y)`` and ``grad_xy(x, y)`` broadcast over NumPy arrays (contour and quiver grids);
    ``grad(point)``, ``hessian(point)`` and ``landscape(point)`` take one (2,) point.
    """

    name: str
    f: Callable
    grad_xy: Callable  # (x, y) -> (df/dx, df/dy)
    hessian_xy: Callable  # (x, y) -> ((f_xx, f_xy), (f_xy, f_yy))
    minima: tuple  # global minima as (x, y) tuples; () when there is none
    bounds: tuple  # ((xmin, xmax), (ymin, ymax)) for plotting
    start: tuple  # a default start giving an instructive trajectory
    log_contours: bool  # large dynamic range: space contour levels logarithmically
    latex: str

    def __call__(self, point) -> float:
        x, y = validate.point(point)
        return float(self.f(x, y))

    def grad(self, point) -> np.ndarray:
        x, y = validate.point(point)
        return np.array(self.grad_xy(x, y), dtype=np.float64)

    def hessian(self, point) -> np.ndarray:
        x, y = validate.point(point)
        return np.array(self.hessian_xy(x, y), dtype=np.float64)

    def hessian_eigenvalues(self, point) -> np.ndarray:
        """Curvatures along the principal axes at ``point``, ascending."""
        return np.linalg.eigvalsh(self.hessian(point))


def ravine(condition_number: float = 20.0) -> Landscape:
    r"""Ill-conditioned quadratic :math:`\tfrac12(\lambda_{\min} x^2 + \lambda_{\max} y^2)`.

    :math:`\lambda_{\min} = 0.2` and :math:`\lambda_{\max} = 0.2\kappa`, so ``ravine(20)`` is
    :math:`0.1x^2 + 2y^2` (Hessian eigenvalues 0.2 and 4). Gradient descent diverges for
    :math:`\eta > 2/\lambda_{\max}` and converges at rate :math:`\max|1 - \eta\lambda|`.
    """
    kappa = validate.finite("condition_number", condition_number)
    if kappa < 1:
        raise ValueError(f"condition_number must be >= 1, got {condition_number!r}")
    lo, hi = 0.2, 0.2 * kappa
    return Landscape(
        name="ravine",
        f=lambda x, y: 0.5 * (lo * x**2 + hi * y**2),
        grad_xy=lambda x, y: (lo * x, hi * y),
        hessian_xy=lambda x, y: ((lo, 0.0), (0.0, hi)),
        minima=((0.0, 0.0),),
        bounds=((-10.0, 10.0), (-3.0, 3.0)),
        start=(-9.0, 2.0),
        log_contours=False,
        latex=rf"f(x, y) = {lo / 2:g}\,x^2 + {hi / 2:g}\,y^2",
    )


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Landscape:
    r"""Rosenbrock's banana :math:`(a - x)^2 + b\,(y - x^2)^2`, minimum 0 at :math:`(a, a^2)`."""
    a = validate.finite("a", a)
    b = validate.positive("b", b)
    return Landscape(
        name="rosenbrock",
        f=lambda x, y: (a - x) ** 2 + b * (y - x**2) ** 2,
        grad_xy=lambda x, y: (-2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)),
        hessian_xy=lambda x, y: ((2 - 4 * b * y + 12 * b * x**2, -4 * b * x), (-4 * b * x, 2 * b)),
        minima=((a, a * a),),
        bounds=((-2.0, 2.0), (-1.0, 3.0)),
        start=(-1.2, 1.0),  # the classic start: down into the valley, then a long crawl along it
        log_contours=True,
        latex=rf"f(x, y) = ({a:g} - x)^2 + {b:g}\,(y - x^2)^2",
    )


_BEALE_C = (1.5, 2.25, 2.625)


def _beale_terms(x, y):
    # t_i = c_i - x + x y^i for i = 1, 2, 3, with first and second partials.
    for i, c in enumerate(_BEALE_C, start=1):
        t = c - x + x * y**i
        dt = (y**i - 1, i * x * y ** (i - 1))
        d2t_xy = i * y ** (i - 1)
        d2t_yy = i * (i - 1) * x * y ** (i - 2) if i > 1 else 0.0
        yield t, dt, d2t_xy, d2t_yy


def _beale_grad(x, y):
    gx = gy = 0.0
    for t, (tx, ty), _, _ in _beale_terms(x, y):
        gx, gy = gx + 2 * t * tx, gy + 2 * t * ty
    return gx, gy


def _beale_hessian(x, y):
    # Gauss-Newton part 2 grad(t) grad(t)^T plus the curvature part 2 t hess(t); t_xx = 0.
    hxx = hxy = hyy = 0.0
    for t, (tx, ty), txy, tyy in _beale_terms(x, y):
        hxx += 2 * tx * tx
        hxy += 2 * (tx * ty + t * txy)
        hyy += 2 * (ty * ty + t * tyy)
    return (hxx, hxy), (hxy, hyy)


def beale() -> Landscape:
    r"""Beale's function :math:`\sum_{i=1}^3 (c_i - x + x y^i)^2`, :math:`c = (1.5, 2.25, 2.625)`;
    minimum 0 at (3, 0.5), flat plateaus and steep walls."""
    return Landscape(
        name="beale",
        f=lambda x, y: sum(t**2 for t, _, _, _ in _beale_terms(x, y)),
        grad_xy=_beale_grad,
        hessian_xy=_beale_hessian,
        minima=((3.0, 0.5),),
        bounds=((-4.5, 4.5), (-4.5, 4.5)),
        start=(1.0, 1.5),
        log_contours=True,
        latex=r"f(x, y) = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2",
    )


def _himmelblau_grad(x, y):
    u, v = x**2 + y - 11, x + y**2 - 7
    return 4 * x * u + 2 * v, 2 * u + 4 * y * v


def _himmelblau_hessian(x, y):
    return (12 * x**2 + 4 * y - 42, 4 * (x + y)), (4 * (x + y), 12 * y**2 + 4 * x - 26)


def _newton_refine(grad, hessian, guess, iterations=8):
    # Quadratic convergence: from 6-decimal guesses a few steps reach machine precision.
    p = np.array(guess, dtype=np.float64)
    for _ in range(iterations):
        p = p - np.linalg.solve(np.array(hessian(*p)), np.array(grad(*p)))
    return tuple(float(c) for c in p)


# The published 6-decimal coordinates leave f ~ 1e-10; refining makes "f = 0 at the minimum" exact-ish.
_HIMMELBLAU_MINIMA = tuple(
    _newton_refine(_himmelblau_grad, _himmelblau_hessian, g)
    for g in ((3.0, 2.0), (-2.805118, 3.131313), (-3.779310, -3.283186), (3.584428, -1.848127))
)


def himmelblau() -> Landscape:
    r"""Himmelblau's function :math:`(x^2 + y - 11)^2 + (x + y^2 - 7)^2`: four minima of value 0
    (which one you reach depends on where you start), a local maximum near (-0.27, -0.92)."""
    return Landscape(
        name="himmelblau",
        f=lambda x, y: (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2,
        grad_xy=_himmelblau_grad,
        hessian_xy=_himmelblau_hessian,
        minima=_HIMMELBLAU_MINIMA,
        bounds=((-5.0, 5.0), (-5.0, 5.0)),
        start=(-0.5, -0.5),  # near the maximum: small changes send optimizers to different minima
        log_contours=True,
        latex=r"f(x, y) = (x^2 + y - 11)^2 + (x + y^2 - 7)^2",
    )


def saddle() -> Landscape:
    r"""The saddle :math:`x^2 - y^2`: stationary point at the origin, no minimum.

    The default start lies on the stable manifold (y = 0), so noiseless gradient descent walks into
    the saddle and stays; any gradient noise lets it escape along y.
    """
    return Landscape(
        name="saddle",
        f=lambda x, y: x**2 - y**2,
        grad_xy=lambda x, y: (2 * x, -2 * y),
        hessian_xy=lambda x, y: ((2.0, 0.0), (0.0, -2.0)),
        minima=(),
        bounds=((-2.0, 2.0), (-2.0, 2.0)),
        start=(1.5, 0.0),
        log_contours=False,
        latex=r"f(x, y) = x^2 - y^2",
    )


def rastrigin() -> Landscape:
    r"""2-D Rastrigin :math:`20 + \sum_{u \in \{x, y\}} (u^2 - 10\cos 2\pi u)`: a bowl covered in
    local minima on the integer lattice; global minimum 0 at the origin."""
    two_pi = 2 * math.pi
    return Landscape(
        name="rastrigin",
        f=lambda x, y: 20 + x**2 - 10 * np.cos(two_pi * x) + y**2 - 10 * np.cos(two_pi * y),
        grad_xy=lambda x, y: (
            2 * x + 10 * two_pi * np.sin(two_pi * x),
            2 * y + 10 * two_pi * np.sin(two_pi * y),
        ),
        hessian_xy=lambda x, y: (
            (2 + 10 * two_pi**2 * np.cos(two_pi * x), 0.0),
            (0.0, 2 + 10 * two_pi**2 * np.cos(two_pi * y)),
        ),
        minima=((0.0, 0.0),),
        bounds=((-5.12, 5.12), (-5.12, 5.12)),
        start=(3.3, -2.6),
        log_contours=False,
        latex=r"f(x, y) = 20 + x^2 - 10\cos(2\pi x) + y^2 - 10\cos(2\pi y)",
    )


def booth() -> Landscape:
    r"""Booth's function :math:`(x + 2y - 7)^2 + (2x + y - 5)^2`: a tilted quadratic bowl
    (Hessian eigenvalues 2 and 18), minimum 0 at (1, 3)."""
    return Landscape(
        name="booth",
        f=lambda x, y: (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2,
        grad_xy=lambda x, y: (10 * x + 8 * y - 34, 8 * x + 10 * y - 38),
        hessian_xy=lambda x, y: ((10.0, 8.0), (8.0, 10.0)),
        minima=((1.0, 3.0),),
        bounds=((-10.0, 10.0), (-10.0, 10.0)),
        start=(-8.0, -6.0),
        log_contours=True,
        latex=r"f(x, y) = (x + 2y - 7)^2 + (2x + y - 5)^2",
    )


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # no overflow warnings for large |z|


def cliff(height: float = 20.0, sharpness: float = 50.0) -> Landscape:
    r"""A gentle valley that ends in a steep wall, where one gradient step can throw the
    parameters far away (the "exploding gradient" picture of Pascanu et al.; chapter 10).

    .. math::
        f(x, y) = \tfrac14 (x - 3)^2 + \tfrac12 y^2 + \frac{H}{k}\,\operatorname{softplus}\bigl(k\,s\bigr),
        \qquad s = x + \tfrac12 y - 1

    Left of the line :math:`s = 0` the wall term is almost exactly 0 and the valley pulls
    towards :math:`x = 3`; right of it the loss climbs with slope :math:`H\sqrt{1.25}` (the
    gradient of the wall term is :math:`H\,\sigma(ks)\,(1, \tfrac12)`). The corner between
    the two is :math:`1/k` wide. The minimum sits at the foot of the wall.
    """
    H, k = float(height), float(sharpness)
    if H <= 0 or k <= 0:
        raise ValueError(f"height and sharpness must be > 0, got {height!r}, {sharpness!r}")

    def f(x, y):
        s = x + 0.5 * y - 1.0
        return 0.25 * (x - 3.0) ** 2 + 0.5 * y**2 + H / k * np.logaddexp(0.0, k * s)

    def grad_xy(x, y):
        q = _sigmoid(k * (x + 0.5 * y - 1.0))
        return 0.5 * (x - 3.0) + H * q, y + 0.5 * H * q

    def hessian_xy(x, y):
        q = _sigmoid(k * (x + 0.5 * y - 1.0))
        c = H * k * q * (1.0 - q)
        return (0.5 + c, 0.5 * c), (0.5 * c, 1.0 + 0.25 * c)

    p = np.array([1.0, 0.0])  # Newton from the corner; the wall's tail balances the valley's pull
    for _ in range(100):
        step = np.linalg.solve(np.array(hessian_xy(*p)), np.array(grad_xy(*p)))
        p -= step
        if np.max(np.abs(step)) < 1e-14:
            break
    return Landscape(
        name="cliff",
        f=f,
        grad_xy=grad_xy,
        hessian_xy=hessian_xy,
        minima=((float(p[0]), float(p[1])),),
        bounds=((-5.5, 2.5), (-3.5, 2.5)),
        start=(-3.0, 1.5),
        log_contours=True,
        latex=(rf"f(x, y) = \tfrac14 (x-3)^2 + \tfrac12 y^2 + \tfrac{{{H:g}}}{{{k:g}}}"
               rf"\,\mathrm{{softplus}}\bigl({k:g}\,(x + \tfrac12 y - 1)\bigr)"),
    )


# The race's landscapes (chapter 11); the cliff is chapter 10's alone.
LANDSCAPES: dict[str, Callable[[], Landscape]] = {
    "ravine": ravine,
    "rosenbrock": rosenbrock,
    "beale": beale,
    "himmelblau": himmelblau,
    "saddle": saddle,
    "rastrigin": rastrigin,
    "booth": booth,
}


@dataclass(frozen=True, eq=False)
class Landscape1D:
    r"""A 1-D function :math:`f(x)` with derivative ``grad`` and second derivative ``hessian``
    (all broadcast over arrays). ``minima[i]`` has curvature ``curvatures[i]`` and label ``labels[i]``."""

    name: str
    f: Callable
    grad: Callable
    hessian: Callable
    minima: tuple
    curvatures: tuple
    labels: tuple
    bounds: tuple  # (xmin, xmax)
    start: float
    latex: str

    def __call__(self, point) -> float:
        return float(self.f(validate.point(point, dim=1)[0]))


def sharp_flat_1d() -> Landscape1D:
    r"""Two minima of similar depth, one sharp and one flat:

    .. math:: f(x) = -e^{-(x + 1)^2 / (2 \cdot 0.1^2)} - e^{-(x - 2)^2 / (2 \cdot 0.8^2)} + 0.01\,x^2

    ``minima[0]`` (near x = -1, width 0.1) is the **sharp** one, curvature about 100;
    ``minima[1]`` (near x = 2, width 0.8) is the **flat** one, curvature about 1.6.
    The weak quadratic keeps f bounded below away from both wells.
    """
    wells = ((-1.0, 0.1), (2.0, 0.8))  # (centre, width); depth 1 each
    q = 0.01

    def f(x):
        return sum(-np.exp(-((x - c) ** 2) / (2 * s * s)) for c, s in wells) + q * x**2

    def grad(x):
        return sum((x - c) / (s * s) * np.exp(-((x - c) ** 2) / (2 * s * s)) for c, s in wells) + 2 * q * x

    def hessian(x):
        return sum(
            (1 - (x - c) ** 2 / (s * s)) / (s * s) * np.exp(-((x - c) ** 2) / (2 * s * s)) for c, s in wells
        ) + 2 * q

    minima = []
    for c, _ in wells:
        x = c
        for _ in range(50):  # Newton from the well's centre; stops once the step is below rounding
            step = grad(x) / hessian(x)
            x -= step
            if abs(step) < 1e-14:
                break
        minima.append(float(x))
    return Landscape1D(
        name="sharp_flat_1d",
        f=f,
        grad=grad,
        hessian=hessian,
        minima=tuple(minima),
        curvatures=tuple(float(hessian(m)) for m in minima),
        labels=("sharp", "flat"),
        bounds=(-3.0, 5.0),
        start=0.5,
        latex=r"f(x) = -e^{-(x+1)^2/0.02} - e^{-(x-2)^2/1.28} + 0.01\,x^2",
    )


@dataclass
class Trajectory:
    """What :func:`run` recorded: ``points[k]`` and ``losses[k]`` after k steps, ``lrs[k]`` used by step k.

    A diverged run stops early and keeps the offending point, so
    ``len(points) == steps_taken + 1`` and ``len(lrs) == steps_taken`` always hold.
    """

    points: np.ndarray  # (steps_taken + 1, dim)
    losses: np.ndarray  # (steps_taken + 1,)
    lrs: np.ndarray  # (steps_taken,)
    diverged: bool
    steps_taken: int


def run(landscape, make_optimizer, start=None, steps: int = 100, schedule=None,
        grad_noise: float = 0.0, seed: int = 0) -> Trajectory:
    r"""Optimise ``landscape`` from ``start`` (default ``landscape.start``) and record the path.

    ``make_optimizer(params)`` gets ``[point]`` (a float64 array of shape (2,), or (1,) for a
    :class:`Landscape1D`) and must return an object with ``.step(grads)`` and a writable ``.lr``.
    ``schedule(k)`` sets ``opt.lr`` before step k. ``grad_noise`` adds
    :math:`\mathcal N(0, \sigma^2)` noise (seeded by ``seed``) to every gradient.
    """
    dim = 1 if isinstance(landscape, Landscape1D) else 2
    steps = validate.non_negative_int("steps", steps)
    grad_noise = validate.non_negative("grad_noise", grad_noise)
    seed = validate.non_negative_int("seed", seed)
    start = landscape.start if start is None else start
    try:
        point = validate.point(start, dim).copy()  # the optimizer updates it in place: never the caller's array
    except ValueError:
        raise ValueError(f"start must have {dim} coordinate(s), got {start!r}") from None
    if not np.all(np.isfinite(point)):
        raise ValueError(f"start must be finite, got {start!r}")

    opt = make_optimizer([point])
    rng = np.random.default_rng(seed)
    points, losses, lrs = [point.copy()], [landscape(point)], []
    diverged = False
    for k in range(steps):
        if schedule is not None:
            opt.lr = validate.non_negative(f"schedule({k})", schedule(k))
        g = np.asarray(landscape.grad(point), dtype=np.float64).reshape(dim)
        if grad_noise:
            g = g + rng.normal(0.0, grad_noise, size=dim)
        lrs.append(float(opt.lr))
        opt.step([g])  # updates `point` in place
        with np.errstate(over="ignore", invalid="ignore"):
            loss = landscape(point)
        points.append(point.copy())
        losses.append(loss)
        if not (np.all(np.isfinite(point)) and abs(loss) <= DIVERGENCE_THRESHOLD):
            diverged = True
            break
    return Trajectory(
        points=np.array(points),
        losses=np.array(losses),
        lrs=np.array(lrs, dtype=np.float64),
        diverged=diverged,
        steps_taken=len(lrs),
    )
