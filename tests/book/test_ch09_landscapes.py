"""descent.ch09_landscapes (chapter 9): slices of the digits loss, saddle escape, gradient descent on
the sharp/flat function, and the numeric claims the chapter makes."""

import math

import numpy as np
import pytest

import optimkit
from optimkit import digits
from optimkit import landscapes as L

from descent import ch09_landscapes as ch09


@pytest.fixture(scope="module")
def data():
    return digits.load_digits_split()


def test_filter_normalized_direction_matches_every_unit_and_ignores_biases():
    params = digits.MLP(seed=3).params
    params[1][:] = 0.7  # a non-zero bias must still get no direction
    d = ch09.filter_normalized_direction(params, np.random.default_rng(0))
    assert [x.shape for x in d] == [p.shape for p in params]
    for p, x in zip(params, d):
        if p.ndim == 2:
            np.testing.assert_allclose(np.linalg.norm(x, axis=0), np.linalg.norm(p, axis=0), rtol=1e-12)
        else:
            assert np.all(x == 0)


def test_interpolation_and_surface_pass_through_their_anchor_points(data):
    model = digits.MLP(seed=0)
    start = [p.copy() for p in model.params]
    end = [p + 0.1 for p in start]
    losses = ch09.interpolation_losses(model, data.X_val, data.y_val, start, end, [0.0, 0.5, 1.0])
    assert losses[0] == model.loss(data.X_val, data.y_val, start)
    assert losses[2] == model.loss(data.X_val, data.y_val, end)
    rng = np.random.default_rng(1)
    d1, d2 = (ch09.filter_normalized_direction(start, rng) for _ in range(2))
    grid = np.linspace(-1, 1, 3)
    Z = ch09.loss_surface(model, data.X_val, data.y_val, start, d1, d2, grid, grid)
    assert Z.shape == (3, 3)
    assert Z[1, 1] == model.loss(data.X_val, data.y_val, start)
    corner = [c + 1.0 * u - 1.0 * v for c, u, v in zip(start, d1, d2)]  # alpha = +1, beta = -1
    assert Z[0, 2] == pytest.approx(model.loss(data.X_val, data.y_val, corner), rel=1e-12)


def test_perturbation_rise_is_zero_at_scale_zero_and_positive_at_a_trained_minimum(data):
    model = digits.MLP(seed=0)
    digits.train(model, data, lambda p: optimkit.SGD(p, lr=0.05, momentum=0.9), epochs=5, batch_size=32)
    assert ch09.perturbation_rise(model, data.X_train, data.y_train, scale=0.0) == 0.0
    assert ch09.perturbation_rise(model, data.X_train, data.y_train, scale=0.5) > 0.0


def test_random_symmetric_2x2_is_positive_definite_with_the_closed_form_probability():
    # Chapter 9's Monte Carlo: for (A + A^T)/2 with Gaussian A, P(both eigenvalues > 0) is
    # (1 - 1/sqrt 2)/2 = 0.1464 at n = 2, well below the coin-flip 1/4.
    rng = np.random.default_rng(7)
    A = rng.standard_normal((400_000, 2, 2))
    p = np.mean(np.linalg.eigvalsh((A + A.transpose(0, 2, 1)) / 2).min(axis=1) > 0)
    assert p == pytest.approx((1 - 1 / math.sqrt(2)) / 2, abs=0.003)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_escape_matches_the_library_runner_noise_for_noise(seed):
    land = L.saddle()
    t = L.run(land, lambda p: optimkit.SGD(p, lr=0.1), steps=400, grad_noise=1e-6, seed=seed)
    assert ch09.escape_steps(0.1, 1e-6, runs=1, seed=seed)[0] == ch09.escape_step(t)


def test_without_noise_gradient_descent_never_leaves_the_stable_manifold():
    assert np.all(ch09.escape_steps(0.1, 0.0, runs=4, max_steps=3000) == -1)
    t = L.run(L.saddle(), lambda p: optimkit.SGD(p, lr=0.1), steps=1000)
    assert np.all(t.points[:, 1] == 0.0) and ch09.escape_step(t) is None
    assert ch09.predicted_escape_step(0.1, 0.0) == math.inf


@pytest.mark.parametrize("lr", [0.05, 0.1, 0.2])
@pytest.mark.parametrize("sigma", [1e-12, 1e-6, 1e-3])
def test_predicted_median_escape_step_is_within_four_steps_of_simulation(lr, sigma):
    k = ch09.escape_steps(lr, sigma, runs=64, seed=1)
    assert np.all(k > 0)
    assert abs(np.median(k) - ch09.predicted_escape_step(lr, sigma)) < 4


def test_escape_time_grows_like_log_one_over_sigma():
    lr = 0.1
    gap = np.median(ch09.escape_steps(lr, 1e-9, runs=256, seed=2)) - np.median(ch09.escape_steps(lr, 1e-6, runs=256, seed=3))
    assert gap == pytest.approx(math.log(1000) / math.log(1 + 2 * lr), abs=2.0)


def test_saddle_figure_has_one_frame_per_setting_and_they_differ():
    sf = ch09.saddle_figure(lrs=(0.1, 0.2), sigmas=(0.0, 1e-6), steps=200)
    assert sf.frame_count() == 4
    frames = {sf.frame(noise=s, lr=lr) for s in (0.0, 1e-6) for lr in (0.1, 0.2)}
    assert len(frames) == 4
    assert "stays there" in sf.alt_text({"noise": 0.0, "lr": 0.1})
    assert "passes 1 at step" in sf.alt_text({"noise": 1e-6, "lr": 0.1})


def test_vectorised_gradient_descent_equals_the_library_runner():
    sf = L.sharp_flat_1d()
    lrs, starts = [0.01, 0.3], [-1.2, 0.5, 3.0]
    final, *_ = ch09.gd_1d_grid(sf, lrs, starts, steps=500, tail=10)
    for i, lr in enumerate(lrs):
        for j, x0 in enumerate(starts):
            t = L.run(sf, lambda p, lr=lr: optimkit.SGD(p, lr=lr), start=x0, steps=500)
            assert final[i, j] == t.points[-1, 0]


def test_the_stability_threshold_decides_where_gradient_descent_ends():
    sf = L.sharp_flat_1d()
    sharp_limit, flat_limit = (2 / c for c in sf.curvatures)
    lrs = [0.95 * sharp_limit, 1.05 * sharp_limit, 0.3, 0.95 * flat_limit, 1.05 * flat_limit]
    starts = [-1.2, -0.9, 2.5]
    outcome = ch09.classify_1d(sf, *ch09.gd_1d_grid(sf, lrs, starts, steps=3000))
    assert list(outcome[0]) == [0, 0, 2]     # below 2/curvature: each basin keeps its runs
    assert list(outcome[1][:2]) == [1, 1]   # just above: bouncing inside the sharp well
    assert list(outcome[2]) == [2, 2, 2]     # large lr: the flat minimum from everywhere
    assert list(outcome[3]) == [2, 2, 2]
    assert list(outcome[4]) == [3, 3, 3]     # above the flat limit: bouncing in the flat well


def test_slow_sliding_runs_are_classified_elsewhere_not_bouncing():
    sf = L.sharp_flat_1d()
    outcome = ch09.classify_1d(sf, *ch09.gd_1d_grid(sf, [0.004], [-3.0, 4.9], steps=100))
    assert list(outcome[0]) == [4, 4]


def test_sharp_flat_figure_frames_and_alt_text():
    sf = L.sharp_flat_1d()
    fig = ch09.sharp_flat_figure(sf, lrs=[0.01, 0.1], starts=[-1.3, 0.5], steps=100)
    assert fig.frame_count() == 4
    assert fig.frame(lr=0.01, start=-1.3) != fig.frame(lr=0.1, start=-1.3)
    assert "settled in the sharp minimum" in fig.alt_text({"lr": 0.01, "start": -1.3})
    assert "settled in the flat minimum" in fig.alt_text({"lr": 0.1, "start": -1.3})


def test_align_hidden_units_undoes_a_permutation_and_sign_flips_and_keeps_the_function(data):
    model = digits.MLP(seed=4)
    W1, b1, W2, b2 = model.params
    b1[:] = np.random.default_rng(0).standard_normal(b1.shape)  # biases take part in matching
    rng = np.random.default_rng(1)
    perm = rng.permutation(W1.shape[1])
    sign = rng.choice([-1.0, 1.0], size=W1.shape[1])
    scrambled = [W1[:, perm] * sign, b1[perm] * sign, W2[perm] * sign[:, None], b2.copy()]
    X = data.X_val
    # a scrambled copy is the same function (tanh is odd), and alignment recovers the original
    assert model.loss(X, data.y_val, scrambled) == pytest.approx(model.loss(X, data.y_val), rel=1e-12)
    aligned = ch09.align_hidden_units(model.params, scrambled)
    for a, p in zip(aligned, model.params):
        np.testing.assert_array_equal(a, p)
    # negative control: without alignment the scrambled copy is far from the original
    assert np.linalg.norm(scrambled[0] - W1) > 0.5 * np.linalg.norm(W1)


def test_top_hessian_eigenvalue_by_power_iteration_matches_eigvalsh_on_a_quadratic():
    rng = np.random.default_rng(0)
    Q = rng.standard_normal((6, 6))
    A = Q @ np.diag([9.0, 3.0, 2.0, 1.0, 0.5, 0.1]) @ np.linalg.inv(Q)
    A = (A + A.T) / 2
    top = np.linalg.eigvalsh(A)[np.argmax(np.abs(np.linalg.eigvalsh(A)))]

    def loss_and_grads(params):
        x = params[0]
        return 0.5 * x @ A @ x, [A @ x]

    lam, v = ch09.top_hessian_eigenvalue(loss_and_grads, [rng.standard_normal(6)], iters=200)
    assert lam == pytest.approx(top, rel=1e-6)
    np.testing.assert_allclose(A @ v, lam * v, atol=1e-5 * abs(lam))


def test_mse_tanh_mlp_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((7, 4)), rng.standard_normal((7, 3))
    params = [rng.standard_normal((4, 5)), rng.standard_normal(5), rng.standard_normal((5, 3)),
              rng.standard_normal(3)]
    f = ch09.mse_tanh_mlp(X, Y)
    _, grads = f(params)
    for i, p in enumerate(params):
        for idx in [(0,) * p.ndim, tuple(s - 1 for s in p.shape)]:
            plus = [q.copy() for q in params]
            minus = [q.copy() for q in params]
            plus[i][idx] += 1e-6
            minus[i][idx] -= 1e-6
            numeric = (f(plus)[0] - f(minus)[0]) / 2e-6
            assert grads[i][idx] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


def test_sharpness_run_at_a_large_lr_hovers_at_two_over_lr(data):
    X, Y = data.X_train[:200], np.eye(10)[data.y_train[:200]]
    run = ch09.sharpness_run(X, Y, 0.25, steps=4000, every=200)
    assert len(run["losses"]) == 4001 and len(run["sharpness"]) == 21
    assert abs(run["sharpness"][-5:].mean() / 8.0 - 1) < 0.03  # the chapter's edge of stability


def test_sharpness_figure_leaves_out_a_two_over_lr_line_far_above_the_data():
    import matplotlib.pyplot as plt

    steps = np.arange(0, 1001, 100)
    runs = {lr: {"steps": steps, "sharpness": np.full(len(steps), 7.0), "losses": np.ones(1001)}
            for lr in (0.1, 0.25)}
    fig = ch09.sharpness_figure(runs)
    top = fig.axes[0]
    labels = [t.get_text() for t in top.get_legend().get_texts()]
    assert labels == ["η = 0.1: 2/η = 20 (off the scale)", "η = 0.25: 2/η = 8"]
    dashed = [line.get_ydata()[0] for line in top.get_lines() if line.get_linestyle() == "--"]
    assert dashed == [8.0]
    plt.close(fig)
