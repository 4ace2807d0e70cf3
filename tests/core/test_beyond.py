"""optimkit.beyond (Lookahead, LAMB, SAM, L-BFGS, K-FAC on one layer), checked against closed forms,
independent re-implementations and the claims chapter 12 makes (its figures: tests/book)."""

import math

import numpy as np
import pytest

import optimkit
from optimkit import beyond as B
from optimkit import landscapes as L
from optimkit import schedules


def rosenbrock_closure(land, point):
    return lambda: (land(point), [land.grad(point)])


# -- Lookahead --------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda p: optimkit.Adam(p, lr=0.02),
    lambda p: optimkit.SGD(p, lr=1e-3, momentum=0.9),
], ids=["Adam", "SGD-momentum"])
def test_lookahead_with_alpha_one_is_the_inner_optimizer_step_for_step(make):
    land = L.rosenbrock()
    inner = L.run(land, make, steps=200)
    wrapped = L.run(land, lambda p: B.Lookahead(make(p), k=5, alpha=1.0), steps=200)
    np.testing.assert_array_equal(wrapped.points, inner.points)


def test_lookahead_after_k_steps_is_the_slow_step_towards_the_inner_trajectory():
    land = L.rosenbrock()
    k, alpha = 7, 0.3
    inner = L.run(land, lambda p: optimkit.Adam(p, lr=0.01), steps=k)
    wrapped = L.run(land, lambda p: B.Lookahead(optimkit.Adam(p, lr=0.01), k=k, alpha=alpha), steps=k)
    start, fast = inner.points[0], inner.points[k]
    np.testing.assert_array_equal(wrapped.points[: k], inner.points[: k])  # fast steps as usual
    np.testing.assert_allclose(wrapped.points[k], start + alpha * (fast - start), rtol=0, atol=1e-15)


def test_lookahead_with_alpha_zero_returns_to_the_start_every_k_steps():
    land = L.ravine(20.0)
    t = L.run(land, lambda p: B.Lookahead(optimkit.SGD(p, lr=0.1), k=4, alpha=0.0), steps=12)
    for step in (4, 8, 12):
        np.testing.assert_array_equal(t.points[step], t.points[0])
    assert not np.array_equal(t.points[3], t.points[0])


def test_lookahead_passes_the_learning_rate_through_to_the_inner_optimizer():
    p = np.zeros(2)
    la = B.Lookahead(optimkit.Adam([p], lr=0.1))
    la.lr = 0.05
    assert la.optimizer.lr == 0.05 == la.lr
    t = L.run(L.ravine(), lambda q: B.Lookahead(optimkit.SGD(q, lr=1.0)), steps=5,
              schedule=schedules.exponential(0.1, 0.5))
    np.testing.assert_allclose(t.lrs, 0.1 * 0.5 ** np.arange(5))


@pytest.mark.parametrize("kwargs, name", [(dict(k=0), "k"), (dict(alpha=1.5), "alpha"),
                                          (dict(alpha=-0.1), "alpha")])
def test_lookahead_rejects_bad_arguments_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        B.Lookahead(optimkit.SGD([np.zeros(2)], lr=0.1), **kwargs)
    with pytest.raises(TypeError, match="optimkit optimizer"):
        B.Lookahead(object())


def test_lookahead_lowers_the_noise_floor_on_the_noisy_ravine():
    # Chapter 12's claim: averaging halves (or better) the stationary loss with gradient noise.
    land = L.ravine(20.0)

    def floor(make):
        return np.mean([L.run(land, make, steps=2000, grad_noise=1.0, seed=s).losses[-1000:].mean()
                        for s in range(3)])

    for make in (lambda p: optimkit.SGD(p, lr=0.1, momentum=0.9), lambda p: optimkit.Adam(p, lr=0.1)):
        assert floor(lambda p, make=make: B.Lookahead(make(p))) < 0.8 * floor(make)


# -- LAMB -----------------------------------------------------------------------------------------------

def lamb_reference(params, grads_seq, lr, betas=(0.9, 0.999), eps=1e-6, wd=0.0):
    """An independent LAMB in optax's form: scale_by_adam -> add_decayed_weights -> trust ratio."""
    params = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_seq, start=1):
        for i, (p, g) in enumerate(zip(params, grads)):
            m[i] = betas[0] * m[i] + (1 - betas[0]) * g
            v[i] = betas[1] * v[i] + (1 - betas[1]) * g ** 2
            adam = (m[i] / (1 - betas[0] ** t)) / (np.sqrt(v[i] / (1 - betas[1] ** t)) + eps)
            update = adam + wd * p
            pn, un = np.linalg.norm(p), np.linalg.norm(update)
            ratio = 1.0 if pn == 0 or un == 0 else pn / un
            params[i] = p - lr * ratio * update
    return params


@pytest.mark.parametrize("wd", [0.0, 0.01])
def test_lamb_matches_an_independent_implementation_over_many_steps(wd):
    rng = np.random.default_rng(0)
    params = [rng.normal(size=(4, 3)), rng.normal(size=3), np.zeros(5)]
    grads_seq = [[rng.normal(size=p.shape) * 10.0 ** rng.integers(-3, 3) for p in params] for _ in range(20)]
    expected = lamb_reference(params, grads_seq, lr=0.01, wd=wd)
    mine = [p.copy() for p in params]
    opt = B.LAMB(mine, lr=0.01, weight_decay=wd)
    for grads in grads_seq:
        opt.step(grads)
    for a, b in zip(mine, expected):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("wd", [0.0, 0.1])
def test_lamb_moves_every_nonzero_layer_by_exactly_lr_times_its_norm(wd):
    rng = np.random.default_rng(1)
    scales = [1e-3, 1.0, 1e3]  # gradient scales that differ by six orders of magnitude
    params = [rng.normal(size=(8, 4)) * s for s in (0.1, 1.0, 10.0)]
    opt = B.LAMB(params, lr=0.02, weight_decay=wd)
    for _ in range(3):
        before = [p.copy() for p in params]
        opt.step([rng.normal(size=p.shape) * s for p, s in zip(params, scales)])
        for p, b in zip(params, before):
            assert np.linalg.norm(p - b) == pytest.approx(0.02 * np.linalg.norm(b), rel=1e-12)


def test_lamb_trust_ratio_is_one_for_a_zero_layer():
    p = np.zeros(3)
    opt = B.LAMB([p], lr=0.1)
    opt.step([np.array([1.0, -2.0, 0.0])])
    # first step: m_hat = g, v_hat = g^2, so u = g / (|g| + eps) = sign(g) up to eps
    np.testing.assert_allclose(p, -0.1 * np.array([1.0, -2.0, 0.0]) / (np.array([1.0, 2.0, 0.0]) + 1e-6))
    assert opt.state[0]["trust_ratio"] == 1.0
    assert B.lamb_trust_ratio(0.0, 5.0) == 1.0 == B.lamb_trust_ratio(5.0, 0.0)
    assert B.lamb_trust_ratio(2.0, 8.0) == 0.25


# -- SAM --------------------------------------------------------------------------------------------------

class Recorder:
    """An 'optimizer' that records the gradients it is given and the params at that moment."""

    def __init__(self, params):
        self.params, self.lr, self.seen = params, 0.0, []

    def step(self, grads):
        self.seen.append(([p.copy() for p in self.params], [np.array(g) for g in grads]))


def test_sam_perturbation_has_norm_rho_over_all_arrays():
    grads = [np.array([3.0, 0.0]), np.array([[0.0, 4.0]])]
    eps = B.sam_perturbation(grads, rho=0.05)
    assert math.sqrt(sum(np.sum(e ** 2) for e in eps)) == pytest.approx(0.05, rel=1e-12)
    np.testing.assert_allclose(eps[0], [0.03, 0.0])
    zero = B.sam_perturbation([np.zeros(3)], rho=0.05)
    assert np.all(zero[0] == 0.0)  # a zero gradient gives no perturbation, not NaN


def test_sam_hands_the_inner_optimizer_the_gradient_at_the_perturbed_point():
    land = L.rosenbrock()
    point = np.array([-0.5, 1.3])
    start = point.copy()
    rec = Recorder([point])
    sam = B.SAM(rec, rho=0.2)
    loss = sam.step(rosenbrock_closure(land, point))
    assert loss == land(start)
    (params_then, grads_then), = rec.seen
    np.testing.assert_array_equal(params_then[0], start)  # restored exactly before the inner step
    g = land.grad(start)
    perturbed = start + 0.2 * g / np.linalg.norm(g)
    np.testing.assert_allclose(grads_then[0], land.grad(perturbed), rtol=1e-12)
    assert np.linalg.norm(sam.last_perturbation[0]) == pytest.approx(0.2, rel=1e-12)


def test_sam_with_rho_zero_is_the_inner_optimizer():
    land = L.rosenbrock()
    plain = L.run(land, lambda p: optimkit.Adam(p, lr=0.01), steps=100)
    sam, evaluations = B.run_closure(land, lambda p: B.SAM(optimkit.Adam(p, lr=0.01), rho=0.0), steps=100)
    np.testing.assert_array_equal(sam.points, plain.points)
    np.testing.assert_array_equal(evaluations, 2 * np.arange(101))  # still two gradients a step


def test_sam_prefers_the_wider_part_of_the_rosenbrock_valley():
    # Chapter 12's claim: SAM stops short of (1, 1), where the valley is narrower.
    land = L.rosenbrock()
    t, _ = B.run_closure(land, lambda p: B.SAM(optimkit.Adam(p, lr=0.04), rho=0.01), steps=3000)
    end = t.points[-1]
    assert np.linalg.norm(end - 1.0) > 0.01
    assert land.hessian_eigenvalues(end).max() < land.hessian_eigenvalues((1.0, 1.0)).max()


# -- L-BFGS -------------------------------------------------------------------------------------------------

def random_quadratic(n, seed, condition=1e3):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    A = Q @ np.diag(np.geomspace(1.0, condition, n)) @ Q.T
    return A, rng.standard_normal(n)


def exact_line_search(phi, f0, slope, t0):
    return -slope / (2 * (phi(1.0) - f0 - slope))


@pytest.mark.parametrize("n", [2, 6, 10])
def test_lbfgs_with_exact_line_search_solves_a_quadratic_in_n_steps(n):
    A, b = random_quadratic(n, seed=n)
    theta = np.zeros(n)
    opt = B.LBFGS([theta], history_size=n, line_search=exact_line_search)
    for _ in range(n):
        opt.step(lambda: (0.5 * theta @ A @ theta - b @ theta, [A @ theta - b]))
    np.testing.assert_allclose(theta, np.linalg.solve(A, b), rtol=1e-9, atol=1e-10)


def test_lbfgs_is_not_finished_one_step_earlier_on_a_generic_quadratic():
    # The n-step bound is tight for distinct eigenvalues: a test that would notice a cheat.
    n = 6
    A, b = random_quadratic(n, seed=n)
    theta = np.zeros(n)
    opt = B.LBFGS([theta], history_size=n, line_search=exact_line_search)
    for _ in range(n - 1):
        opt.step(lambda: (0.5 * theta @ A @ theta - b @ theta, [A @ theta - b]))
    assert np.linalg.norm(theta - np.linalg.solve(A, b)) > 1e-6


def test_lbfgs_converges_on_rosenbrock_in_far_fewer_steps_than_gradient_descent():
    land = L.rosenbrock()
    t, evaluations = B.run_closure(land, lambda p: B.LBFGS(p), steps=100)
    distance = np.linalg.norm(t.points - 1.0, axis=1)
    first = int(np.argmax(distance < 1e-8))
    assert distance[first] < 1e-8 and first < 60 and evaluations[first] < 80
    gd = L.run(land, lambda p: optimkit.SGD(p, lr=1e-3), steps=2000)
    assert np.linalg.norm(gd.points[-1] - 1.0) > 0.1  # GD is nowhere near after 2000 steps


def test_two_loop_applies_the_bfgs_inverse_hessian():
    rng = np.random.default_rng(3)
    n = 5
    A, _ = random_quadratic(n, seed=9, condition=30.0)
    s_list = [rng.normal(size=n) for _ in range(3)]
    y_list = [A @ s for s in s_list]  # curvature pairs of a convex quadratic: y's > 0
    # Explicit BFGS: H <- (I - rho s y^T) H (I - rho y s^T) + rho s s^T, from H0 = gamma I
    gamma = (s_list[-1] @ y_list[-1]) / (y_list[-1] @ y_list[-1])
    H = gamma * np.eye(n)
    for s, y in zip(s_list, y_list):
        rho = 1.0 / (y @ s)
        V = np.eye(n) - rho * np.outer(y, s)
        H = V.T @ H @ V + rho * np.outer(s, s)
    g = rng.normal(size=n)
    np.testing.assert_allclose(B.two_loop(g, s_list, y_list), H @ g, rtol=1e-10)
    np.testing.assert_allclose(B.two_loop(y_list[-1], s_list, y_list), s_list[-1], rtol=1e-10)  # secant
    np.testing.assert_array_equal(B.two_loop(g, [], []), g)


def test_backtracking_returns_the_first_step_that_satisfies_armijo():
    f = lambda t: (t - 0.1) ** 2  # noqa: E731  phi(0) = 0.01, phi'(0) = -0.2
    t = B.backtracking(f, f(0.0), -0.2, t0=1.0, c1=1e-4, shrink=0.5)
    assert t == 0.125  # 1, 0.5, 0.25 fail; 0.125 gives 0.000625 <= 0.01 - 2.5e-6
    assert f(t) <= f(0.0) + 1e-4 * t * (-0.2)
    assert f(0.25) > f(0.0) + 1e-4 * 0.25 * (-0.2)


def test_lbfgs_keeps_at_most_history_size_pairs_and_counts_evaluations():
    land = L.rosenbrock()
    point = np.array(land.start, dtype=float)
    opt = B.LBFGS([point], history_size=3)
    for _ in range(20):
        opt.step(rosenbrock_closure(land, point))
        assert len(opt.s_list) == len(opt.y_list) <= 3
    assert opt.iterations == 20 and opt.evaluations >= 21


def test_lbfgs_rejects_bad_arguments():
    with pytest.raises(ValueError, match="line_search"):
        B.LBFGS([np.zeros(2)], line_search="wolfe")
    with pytest.raises(ValueError, match="history_size"):
        B.LBFGS([np.zeros(2)], history_size=0)


# -- K-FAC on one softmax layer -----------------------------------------------------------------------------

def small_layer(seed=0, n=7, d=4, k=3, scale=1.0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    W = rng.normal(size=(d, k)) * scale
    return a, W, B.softmax_probs(a, W)


def test_softmax_fisher_is_the_expected_outer_product_of_per_example_gradients():
    a, W, P = small_layer()
    n, d = a.shape
    k = W.shape[1]
    F = np.zeros((d * k, d * k))
    for i in range(n):  # enumerate the labels y ~ p_i: E_y[grad log p(y) grad log p(y)^T]
        for y in range(k):
            g = np.outer(a[i], np.eye(k)[y] - P[i]).ravel()  # d log softmax_y / dW
            F += P[i, y] * np.outer(g, g) / n
    np.testing.assert_allclose(B.softmax_fisher(a, P), F, rtol=1e-12, atol=1e-15)


def test_kfac_is_exact_when_every_example_has_the_same_prediction():
    a, _, _ = small_layer()
    P = B.softmax_probs(a, np.zeros((4, 3)))  # W = 0: uniform predictions everywhere
    A, G = B.kfac_factors(a, P)
    np.testing.assert_allclose(np.kron(A, G), B.softmax_fisher(a, P), rtol=1e-12, atol=1e-15)
    _, _, P2 = small_layer(scale=3.0)
    A2, G2 = B.kfac_factors(a, P2)
    assert np.linalg.norm(np.kron(A2, G2) - B.softmax_fisher(a, P2)) > 1e-3  # not exact in general


def test_kfac_direction_solves_the_damped_kronecker_system():
    a, W, P = small_layer(seed=2)
    A, G = B.kfac_factors(a, P)
    grad = np.random.default_rng(5).normal(size=W.shape)
    damping = 1e-2
    r = math.sqrt(damping)
    M = np.kron(A + r * np.eye(len(A)), G + r * np.eye(len(G)))
    expected = np.linalg.solve(M, grad.ravel()).reshape(W.shape)
    np.testing.assert_allclose(B.kfac_direction(grad, A, G, damping), expected, rtol=1e-10)
    with pytest.raises(ValueError, match="damping"):
        B.kfac_direction(grad, A, G, 0.0)


# -- Third-party oracles: optax (JAX on the CPU, float64) ------------------------------------------------
# Lookahead, LAMB and SAM against optax's implementations, which follow the papers:
# * optax.lookahead is Zhang et al.'s Algorithm 1 (slow weights pulled a fraction alpha towards
#   the fast ones every k steps, the fast ones restarted there, the inner state kept: its
#   reset_state=False default). pytorch-optimizer's Lookahead does the same; optax is used for
#   all three so one library, in float64, is the oracle.
# * optax.lamb is You et al.'s Algorithm 2 (ICLR 2020): bias-corrected Adam moments, eps outside
#   the root, decay added to the Adam direction, trust ratio ||x|| / ||r + lambda x|| with
#   phi = identity, and 1 when either norm is 0. pytorch-optimizer's Lamb is *not* this by
#   default: it follows the paper's v3 (no bias correction), clamps ||x|| at 10 and divides by
#   ||u|| + eps, so it is not used.
# * optax.contrib.sam with opaque_mode=True, sync_period=2 and adv_optimizer
#   chain(normalize(), sgd(rho)) is Foret et al.'s Algorithm 1 (the authors' code is JAX):
#   one ascent step of length rho along g / ||g|| (norm over all arrays), the gradient there,
#   the outer optimizer stepping from the original point. The one difference: optimkit divides
#   by ||g|| + 1e-12 (as davda54/sam and pytorch-optimizer's SAM), optax by ||g||; with
#   ||g|| ~ 1 here that is a relative 1e-12, inside the tolerance below.
#
# Tolerance: both sides are float64 and do the same operations in a different order (XLA's
# reductions vs NumPy's pairwise sums, m/bc1 vs lr/bc1 * m, ...), each rounding at 2**-53 =
# 1.1e-16 relative. Over 150 steps of ~30 operations that is at most ~5e-13 if errors add up;
# RTOL = 1e-10 leaves a factor ~200 and is still 1e5 times below what a perturbed
# hyperparameter gives (the negative controls), ATOL = 1e-13 covers entries passing near 0.

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

RTOL, ATOL, STEPS = 1e-10, 1e-13, 150
SHAPES = [(6, 5), (5,), (3, 2, 2)]


def oracle_problem(seed=0):
    """Start arrays, a smooth non-quadratic gradient (of 1/2 c (p - t)^2 - 0.1 cos 3p per array)
    plus one noise draw per step (a minibatch's; SAM's two gradients in a step share it, and it
    keeps the gradient from vanishing), in NumPy for optimkit and jax.numpy for optax."""
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal(s) for s in SHAPES]
    curv = [10.0 ** rng.uniform(-1, 1, size=s) for s in SHAPES]
    target = [rng.standard_normal(s) for s in SHAPES]
    noises = [[0.5 * rng.standard_normal(s) for s in SHAPES] for _ in range(STEPS)]

    def grad(params, noise, xp=np):
        return [c * (p - t) + 0.3 * xp.sin(3 * p) + n
                for p, c, t, n in zip(params, curv, target, noise)]
    return start, grad, noises


def worst(ours, theirs):
    """The largest |ours - theirs| / (ATOL + RTOL |theirs|) over every step and array: <= 1 is a
    match."""
    return max(float(np.max(np.abs(a - b) / (ATOL + RTOL * np.abs(b))))
               for step_a, step_b in zip(ours, theirs) for a, b in zip(step_a, step_b))


STEP_FNS = {}  # one jitted step per optax method: the hyperparameter h is traced, not baked in


def run_optax(make_tx, h, problem, lookahead=False, sam=False):
    """The trajectory of ``make_tx(h)`` in float64: each step's (fast) arrays."""
    start, grad, noises = problem
    with jax.enable_x64(True):
        if make_tx not in STEP_FNS:
            def step(params, state, noise, h):
                tx = make_tx(h)
                fast = params.fast if lookahead else params
                extra = dict(grad_fn=lambda p, i: grad(p, noise, jnp)) if sam else {}
                updates, state = tx.update(grad(fast, noise, jnp), state, params, **extra)
                return optax.apply_updates(params, updates), state
            STEP_FNS[make_tx] = jax.jit(step)
        step = STEP_FNS[make_tx]
        params = [jnp.asarray(p) for p in start]
        if lookahead:
            params = optax.LookaheadParams.init_synced(params)
        state = make_tx(h).init(params)
        out = []
        for noise in noises:
            params, state = step(params, state, [jnp.asarray(n) for n in noise], jnp.asarray(h))
            fast = params.fast if lookahead else params
            assert all(x.dtype == jnp.float64 for x in fast)
            out.append([np.asarray(x) for x in fast])
        return out


def run_ours(make, problem, closure=False):
    start, grad, noises = problem
    params = [p.copy() for p in start]
    opt = make(params)
    out = []
    for noise in noises:
        if closure:
            opt.step(lambda: (0.0, grad(params, noise)))
        else:
            opt.step(grad(params, noise))
        out.append([p.copy() for p in params])
    return out


INNER = {  # optimkit's and optax's inner optimizers: the same arithmetic up to rounding
    "SGD-momentum": (lambda p: optimkit.SGD(p, lr=0.01, momentum=0.9),
                     lambda: optax.sgd(0.01, momentum=0.9)),
    "Adam": (lambda p: optimkit.Adam(p, lr=0.01, betas=(0.9, 0.99), eps=1e-8),
             lambda: optax.adam(0.01, b1=0.9, b2=0.99, eps=1e-8)),
}
LOOKAHEAD = {(inner, k): (lambda alpha, inner=inner, k=k: optax.lookahead(
                 INNER[inner][1](), sync_period=k, slow_step_size=alpha))
             for inner in INNER for k in (3, 5)}
LAMB = {wd: (lambda b2, wd=wd: optax.lamb(0.01, b1=0.9, b2=b2, eps=1e-6, weight_decay=wd))
        for wd in (0.0, 0.01)}
SAM = {inner: (lambda rho, inner=inner: optax.contrib.sam(
           INNER[inner][1](), optax.chain(optax.contrib.normalize(), optax.sgd(rho)),
           sync_period=2, opaque_mode=True))
       for inner in INNER}


@pytest.mark.parametrize("inner", INNER)
def test_lookahead_matches_optax_lookahead(inner):
    problem = oracle_problem(1)
    for k, alpha in [(5, 0.5), (3, 0.8)]:
        ours = run_ours(lambda p: B.Lookahead(INNER[inner][0](p), k=k, alpha=alpha), problem)
        make = LOOKAHEAD[inner, k]
        assert worst(ours, run_optax(make, alpha, problem, lookahead=True)) <= 1.0, (k, alpha)
        # negative control: a slow step 0.01 larger
        assert worst(ours, run_optax(make, alpha + 0.01, problem, lookahead=True)) > 1e4


@pytest.mark.parametrize("wd", LAMB)
def test_lamb_matches_optax_lamb(wd):
    start, grad, noises = oracle_problem(2)
    start[1] = np.zeros_like(start[1])  # a zero layer: the trust ratio is 1 on its first step
    problem = start, grad, noises
    ours = run_ours(lambda p: B.LAMB(p, lr=0.01, betas=(0.9, 0.99), eps=1e-6, weight_decay=wd),
                    problem)
    assert worst(ours, run_optax(LAMB[wd], 0.99, problem)) <= 1.0
    assert worst(ours, run_optax(LAMB[wd], 0.991, problem)) > 1e4  # negative control: b2


@pytest.mark.parametrize("inner", INNER)
def test_sam_matches_optax_contrib_sam(inner):
    problem = oracle_problem(3)
    ours = run_ours(lambda p: B.SAM(INNER[inner][0](p), rho=0.05), problem, closure=True)
    assert worst(ours, run_optax(SAM[inner], 0.05, problem, sam=True)) <= 1.0
    assert worst(ours, run_optax(SAM[inner], 0.051, problem, sam=True)) > 1e4  # negative control
