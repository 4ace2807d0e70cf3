"""Tests for optimkit.landscapes: derivatives, minima, and the trajectory runner."""

import math

import numpy as np
import pytest

from optimkit import landscapes as L
from plain_gd import GD, gd  # the runners' stand-in optimizer


ALL_2D = [f() for f in L.LANDSCAPES.values()] + [L.ravine(7.5), L.rosenbrock(a=-0.5, b=10.0)]
IDS = [ls.name for ls in ALL_2D[:-2]] + ["ravine-7.5", "rosenbrock-a-0.5-b10"]
WITH_MINIMA = [ls for ls in ALL_2D if ls.minima]

# Published coordinates (6 decimals), from the conventions reference: an independent check of the
# Newton-refined minima stored by the module.
HIMMELBLAU_PUBLISHED = [(3, 2), (-2.805118, 3.131313), (-3.779310, -3.283186), (3.584428, -1.848127)]
KNOWN_MINIMA = {
    "ravine": [(0, 0)], "rosenbrock": [(1, 1)], "beale": [(3, 0.5)], "himmelblau": HIMMELBLAU_PUBLISHED,
    "saddle": [], "rastrigin": [(0, 0)], "booth": [(1, 3)],
}


def random_points(ls, n=6, seed=0):
    (x0, x1), (y0, y1) = ls.bounds
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)])


def fd_grad(f, p, h):
    return np.array([(f(p + h * e) - f(p - h * e)) / (2 * h) for e in np.eye(len(p))])


# Central differences: error ~ h^2 |f'''| / 6 (truncation) + eps |f| / h (rounding). With h = 1e-5,
# |f'''| <= ~1e4 and |f| <= ~1e4 inside the plotting bounds (Rosenbrock is the worst), both terms are
# below ~1e-6, so 1e-6 relative to the value's scale leaves a safe margin while catching any wrong
# coefficient (which errs by O(1) relative). The Hessian is differenced from the analytic gradient,
# the same argument one derivative higher.
H = 1e-5


def close(approx, exact, scale):
    return np.all(np.abs(approx - exact) <= 1e-6 * (1 + scale))


@pytest.mark.parametrize("ls", ALL_2D, ids=IDS)
def test_gradient_matches_central_differences(ls):
    for p in random_points(ls):
        scale = max(abs(ls(p)), np.abs(ls.grad(p)).max())
        assert close(fd_grad(ls, p, H), ls.grad(p), scale), (ls.name, p)


@pytest.mark.parametrize("ls", ALL_2D, ids=IDS)
def test_hessian_matches_central_differences_and_is_symmetric(ls):
    for p in random_points(ls, seed=1):
        hess = ls.hessian(p)
        fd = np.column_stack([(ls.grad(p + H * e) - ls.grad(p - H * e)) / (2 * H) for e in np.eye(2)])
        assert hess.shape == (2, 2)
        assert np.array_equal(hess, hess.T)
        assert close(fd, hess, max(np.abs(ls.grad(p)).max(), np.abs(hess).max())), (ls.name, p)


@pytest.mark.parametrize("ls", ALL_2D, ids=IDS)
def test_f_is_vectorised_like_pointwise_calls(ls):
    pts = random_points(ls, n=12, seed=2)
    grid = ls.f(pts[:, 0].reshape(3, 4), pts[:, 1].reshape(3, 4))
    assert grid.shape == (3, 4)
    np.testing.assert_allclose(grid.ravel(), [ls(p) for p in pts], rtol=1e-15, atol=1e-15)
    gx, gy = ls.grad_xy(pts[:, 0], pts[:, 1])
    np.testing.assert_allclose(np.column_stack([gx + 0 * pts[:, 0], gy + 0 * pts[:, 1]]),
                               [ls.grad(p) for p in pts], rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("name", list(L.LANDSCAPES))
def test_minima_match_the_known_locations(name):
    ls = L.LANDSCAPES[name]()
    assert len(ls.minima) == len(KNOWN_MINIMA[name])
    # 6 published decimals: the refined minima must agree to within their rounding (5e-7).
    np.testing.assert_allclose(np.reshape(ls.minima, (-1, 2)), np.reshape(KNOWN_MINIMA[name], (-1, 2)), atol=6e-7, rtol=0)


@pytest.mark.parametrize("ls", WITH_MINIMA, ids=[ls.name for ls in WITH_MINIMA])
def test_minima_are_zero_stationary_and_positive_definite(ls):
    for m in ls.minima:
        # All these functions have minimum value 0; refined to machine precision, so f is ~ eps^2.
        assert abs(ls(m)) < 1e-20, (m, ls(m))
        assert np.linalg.norm(ls.grad(m)) < 1e-9, (m, ls.grad(m))
        assert ls.hessian_eigenvalues(m).min() > 0


def test_published_himmelblau_coordinates_are_only_approximately_minimal():
    # Why the module refines them: at 6 decimals f is ~1e-10, not 0, and the gradient ~1e-5.
    ls = L.himmelblau()
    worst = max(ls(p) for p in HIMMELBLAU_PUBLISHED[1:])
    assert 1e-14 < worst < 1e-8


@pytest.mark.parametrize("ls", WITH_MINIMA, ids=[ls.name for ls in WITH_MINIMA])
def test_minima_are_global_over_the_plotting_box(ls):
    best = min(ls(m) for m in ls.minima)
    assert all(ls(p) >= best for p in random_points(ls, n=2000, seed=3))


def test_ravine_20_is_the_reference_quadratic():
    ls = L.ravine(20)
    for x, y in random_points(ls, seed=4):
        assert ls((x, y)) == pytest.approx(0.1 * x**2 + 2 * y**2, rel=1e-15)
    np.testing.assert_allclose(ls.hessian_eigenvalues((0.3, -1)), [0.2, 4.0], rtol=1e-15)
    assert ls.latex == r"f(x, y) = 0.1\,x^2 + 2\,y^2"


@pytest.mark.parametrize("kappa", [1.0, 3.0, 20.0, 1000.0])
def test_ravine_condition_number_is_the_hessian_eigenvalue_ratio(kappa):
    lo, hi = L.ravine(kappa).hessian_eigenvalues((1.0, 2.0))
    assert lo == pytest.approx(0.2)
    assert hi / lo == pytest.approx(kappa, rel=1e-12)


@pytest.mark.parametrize("bad", [0.5, 0.0, -3.0, math.nan, math.inf, "20"])
def test_ravine_rejects_bad_condition_numbers(bad):
    with pytest.raises(ValueError, match="condition_number"):
        L.ravine(bad)


def test_saddle_has_no_minimum_and_curvatures_plus_minus_two():
    ls = L.saddle()
    assert ls.minima == ()
    assert np.array_equal(ls.grad((0, 0)), [0.0, 0.0])
    for p in random_points(ls, seed=5):
        np.testing.assert_array_equal(ls.hessian_eigenvalues(p), [-2.0, 2.0])


def test_landscape_metadata_is_usable_for_plotting():
    for name, factory in L.LANDSCAPES.items():
        ls = factory()
        assert ls.name == name
        (x0, x1), (y0, y1) = ls.bounds
        assert x0 < ls.start[0] < x1 and y0 < ls.start[1] < y1
        assert all(x0 <= mx <= x1 and y0 <= my <= y1 for mx, my in ls.minima)
        assert ls.latex.startswith("f(x, y) =")
        if ls.log_contours:  # log-spaced levels need f >= 0
            (x0, x1), (y0, y1) = ls.bounds
            assert ls.f(*np.meshgrid(np.linspace(x0, x1, 50), np.linspace(y0, y1, 50))).min() >= 0
    assert L.rosenbrock().log_contours and not L.saddle().log_contours


def test_landscapes_are_frozen():
    with pytest.raises(AttributeError):
        L.booth().start = (0.0, 0.0)


@pytest.mark.parametrize("bad", [(1.0,), (1.0, 2.0, 3.0), [[1.0, 2.0]]])
def test_point_of_wrong_size_is_rejected_by_name(bad):
    with pytest.raises(ValueError, match="point"):
        L.booth().grad(bad)


# -- 1-D sharp and flat minima ------------------------------------------------------------------------

def test_sharp_flat_derivatives_match_central_differences():
    ls = L.sharp_flat_1d()
    for x in np.random.default_rng(6).uniform(*ls.bounds, 20):
        # Same error budget as in 2-D; the sharp well has |f'''| ~ 1/width^3 = 1e3.
        assert ls.grad(x) == pytest.approx((ls.f(x + H) - ls.f(x - H)) / (2 * H), abs=1e-6)
        assert ls.hessian(x) == pytest.approx((ls.grad(x + H) - ls.grad(x - H)) / (2 * H), abs=1e-5)


def test_sharp_flat_minima_are_located_and_labelled():
    ls = L.sharp_flat_1d()
    assert ls.labels == ("sharp", "flat")
    for m, c in zip(ls.minima, ls.curvatures):
        # A Newton step from m is |f'/f''|: the distance to the true minimum, to first order.
        assert abs(ls.grad(m) / ls.hessian(m)) < 1e-10
        assert c == ls.hessian(m) > 0
        assert ls(m) < min(ls(m - 1e-3), ls(m + 1e-3))
    sharp, flat = ls.curvatures
    assert sharp > 30 * flat
    assert abs(ls(ls.minima[0]) - ls(ls.minima[1])) < 0.1  # similar depth: only the width differs
    assert abs(ls.minima[0] + 1) < 0.01 and abs(ls.minima[1] - 2) < 0.05


def test_gd_can_only_settle_in_the_sharp_minimum_if_lr_is_below_two_over_curvature():
    ls = L.sharp_flat_1d()
    sharp, flat = ls.minima
    assert 0.01 < 2 / ls.curvatures[0] < 0.5 < 2 / ls.curvatures[1]
    t = L.run(ls, gd(0.01), start=-0.8, steps=3000)
    assert t.points.shape == (3001, 1)
    assert t.points[-1, 0] == pytest.approx(sharp, abs=1e-8)
    t = L.run(ls, gd(0.5), start=-0.8, steps=3000)
    assert t.points[-1, 0] == pytest.approx(flat, abs=1e-8)


# -- runner ------------------------------------------------------------------------------------------

def test_gd_on_ravine_converges_just_below_two_over_lambda_max_and_diverges_just_above():
    ls = L.ravine(20.0)
    lam_max = ls.hessian_eigenvalues((0, 0)).max()
    below = L.run(ls, gd(0.99 * 2 / lam_max), steps=2000)
    assert not below.diverged and below.steps_taken == 2000
    assert np.linalg.norm(below.points[-1]) < 1e-6  # y contracts by |1 - 1.98| per step
    above = L.run(ls, gd(1.01 * 2 / lam_max), steps=2000)
    assert above.diverged
    assert above.steps_taken < 2000
    assert abs(above.losses[-1]) > L.DIVERGENCE_THRESHOLD
    assert np.all(np.abs(above.losses[:-1]) <= L.DIVERGENCE_THRESHOLD)  # stopped at the first one
    assert above.points.shape == (above.steps_taken + 1, 2)
    assert above.lrs.shape == (above.steps_taken,)


def test_trajectory_shapes_and_contents():
    ls = L.rosenbrock()
    t = L.run(ls, gd(1e-3), steps=50)
    assert t.points.shape == (51, 2) and t.losses.shape == (51,) and t.lrs.shape == (50,)
    assert t.steps_taken == 50 and not t.diverged
    assert np.array_equal(t.points[0], ls.start)
    np.testing.assert_array_equal(t.losses, [ls(p) for p in t.points])
    np.testing.assert_array_equal(t.lrs, 1e-3)
    np.testing.assert_allclose(t.points[1], np.array(ls.start) - 1e-3 * ls.grad(ls.start), rtol=1e-15)
    assert t.losses[-1] < t.losses[0]


def test_start_override_and_zero_steps():
    t = L.run(L.booth(), gd(0.01), start=[2.0, 2.0], steps=0)
    assert np.array_equal(t.points, [[2.0, 2.0]]) and t.lrs.shape == (0,) and t.steps_taken == 0


def test_schedule_sets_lr_before_every_step():
    ls = L.booth()
    sched = lambda k: 0.05 / (1 + k)  # noqa: E731
    t = L.run(ls, gd(123.0), steps=10, schedule=sched)
    np.testing.assert_array_equal(t.lrs, [sched(k) for k in range(10)])
    for k in range(10):  # each recorded step really used that lr
        np.testing.assert_allclose(t.points[k + 1], t.points[k] - t.lrs[k] * ls.grad(t.points[k]), rtol=1e-14)


def test_schedule_returning_nonsense_is_named():
    with pytest.raises(ValueError, match=r"schedule\(3\)"):
        L.run(L.booth(), gd(0.01), steps=10, schedule=lambda k: -1.0 if k == 3 else 0.01)


def test_gradient_noise_is_seeded_and_escapes_the_saddle():
    ls = L.saddle()
    clean = L.run(ls, gd(0.1), steps=200)
    assert np.all(clean.points[:, 1] == 0)  # the start is on the stable manifold
    assert np.linalg.norm(clean.points[-1]) < 1e-12  # stuck at the saddle point
    a = L.run(ls, gd(0.1), steps=60, grad_noise=0.01, seed=1)
    b = L.run(ls, gd(0.1), steps=60, grad_noise=0.01, seed=1)
    c = L.run(ls, gd(0.1), steps=60, grad_noise=0.01, seed=2)
    assert np.array_equal(a.points, b.points)
    assert not np.array_equal(a.points, c.points)
    assert abs(a.points[-1, 1]) > 1.0 and a.losses[-1] < -1.0  # escaped downhill along y


def test_non_finite_point_stops_the_run():
    class Breaks(GD):
        def step(self, grads):
            self.params[0][:] = np.nan

    t = L.run(L.booth(), lambda p: Breaks(p, 0.1), steps=10)
    assert t.diverged and t.steps_taken == 1 and t.points.shape == (2, 2)
    assert np.isnan(t.points[-1]).all()


@pytest.mark.parametrize("kwargs, name", [
    ({"steps": -1}, "steps"), ({"steps": 2.5}, "steps"), ({"grad_noise": -0.1}, "grad_noise"),
    ({"seed": -1}, "seed"), ({"start": (1.0, 2.0, 3.0)}, "start"), ({"start": (np.nan, 0.0)}, "start"),
])
def test_runner_rejects_bad_arguments_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        L.run(L.booth(), gd(0.01), **kwargs)


def test_run_leaves_the_callers_start_array_alone():
    start = np.array([-1.2, 1.0])

    class GD:
        def __init__(self, params):
            self.params, self.lr = params, 1e-3

        def step(self, grads):
            self.params[0] -= self.lr * grads[0]

    L.run(L.rosenbrock(), GD, start=start, steps=5)
    np.testing.assert_array_equal(start, [-1.2, 1.0])


# --- the cliff (chapter 10) -------------------------------------------------------------------

@pytest.fixture(scope="module")
def cliff():
    return L.cliff()


def test_cliff_derivatives_match_finite_differences(cliff):
    h = 1e-6
    for point in [(-3.0, 1.5), (0.9, 0.1), (1.05, 0.0), (1.2, -0.5), (2.0, 1.0)]:
        p = np.array(point)
        num_grad = [(cliff(p + e) - cliff(p - e)) / (2 * h) for e in np.eye(2) * h]
        np.testing.assert_allclose(cliff.grad(p), num_grad, rtol=1e-6, atol=1e-6)
        num_hess = np.array([(cliff.grad(p + e) - cliff.grad(p - e)) / (2 * h) for e in np.eye(2) * h])
        np.testing.assert_allclose(cliff.hessian(p), num_hess, rtol=1e-5, atol=1e-4)


def test_cliff_minimum_is_at_the_foot_of_the_wall(cliff):
    (m,) = cliff.minima
    assert np.abs(cliff.grad(m)).max() < 1e-12
    assert np.all(cliff.hessian_eigenvalues(m) > 0)
    assert abs(m[0] + 0.5 * m[1] - 1.0) < 0.1      # right at the wall's edge
    # inside the wall the slope is about H * sqrt(1.25); in the valley it is small
    assert np.linalg.norm(cliff.grad((1.6, 0.0))) == pytest.approx(20 * math.sqrt(1.25), rel=0.05)
    with pytest.raises(ValueError):
        L.cliff(height=0.0)
