"""descent.ch03_momentum and the momentum forms of descent.variants: the closed forms of
chapter 3 on a quadratic, and the three ways of writing momentum against torch's."""

import itertools
import math

import matplotlib.pyplot as plt
import numpy as np
import pytest

import optimkit
from optimkit import landscapes
from optimkit import schedules

from descent import ch03_momentum as ch03
from descent import variants


RAVINE = landscapes.ravine()


CURVATURES = [0.2, 4.0]


def path(make, schedule=None, steps=40, land=RAVINE):
    return landscapes.run(land, make, steps=steps, schedule=schedule).points


def gradient_stream(steps=30, shape=(3,), seed=0):
    return [np.random.default_rng(seed + t).normal(size=shape) for t in range(steps)]


@pytest.mark.parametrize("mu", [0.5, 0.9, 0.99])
def test_forms_agree_at_constant_lr(mu):
    lr = 0.05
    ref = path(lambda p: optimkit.SGD(p, lr=lr, momentum=mu))
    inside = path(lambda p: variants.LrInsideMomentum(p, lr=lr, momentum=mu))
    average = path(lambda p: variants.EMAMomentum(p, lr=lr / (1 - mu), beta=mu))
    np.testing.assert_allclose(inside, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(average, ref, rtol=0, atol=1e-12)


def test_under_a_schedule_only_the_moving_average_still_agrees():
    mu, lr = 0.9, 0.1
    drop = schedules.step_decay(lr, step_size=20, gamma=0.1)
    ref = path(lambda p: optimkit.SGD(p, lr=lr, momentum=mu), drop)
    average = path(lambda p: variants.EMAMomentum(p, lr=1.0, beta=mu), lambda k: drop(k) / (1 - mu))
    inside = path(lambda p: variants.LrInsideMomentum(p, lr=lr, momentum=mu), drop)
    np.testing.assert_allclose(average, ref, rtol=0, atol=1e-12)
    np.testing.assert_allclose(inside[:21], ref[:21], rtol=0, atol=1e-12)  # same until the drop
    assert np.abs(inside - ref).max() > 0.5


def test_torch_dampening_differs_from_the_moving_average_by_beta_t_g1():
    beta, grads = 0.9, gradient_stream()
    damped = optimkit.SGD([np.zeros(3)], lr=1.0, momentum=beta, dampening=beta)
    average = variants.EMAMomentum([np.zeros(3)], lr=1.0, beta=beta)
    for t, g in enumerate(grads, start=1):
        damped.step([g])
        average.step([g])
        np.testing.assert_allclose(damped.state[0]["momentum_buffer"] - average.velocity[0],
                                   beta**t * grads[0], rtol=1e-10, atol=1e-14)


def test_forms_against_torch():
    torch = pytest.importorskip("torch")
    mu, lr, grads = 0.9, 0.03, gradient_stream(steps=25)
    inside = [np.zeros(3)]
    average = [np.zeros(3)]
    opt_inside = variants.LrInsideMomentum(inside, lr=lr, momentum=mu)
    opt_average = variants.EMAMomentum(average, lr=lr / (1 - mu), beta=mu)
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt_torch = torch.optim.SGD([w], lr=lr, momentum=mu)
    for g in grads:
        opt_inside.step([g])
        opt_average.step([g])
        w.grad = torch.tensor(g, dtype=torch.float64)
        opt_torch.step()
        ref = w.detach().numpy()
        np.testing.assert_allclose(inside[0], ref, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(average[0], ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("lr, mu, lam", [(0.1, 0.9, 4.0), (0.7, 0.4, 0.2), (0.3, 0.6, 2.5)])
def test_momentum_matrix_is_one_step_of_sgd(nesterov, lr, mu, lam):
    theta = np.array([1.7])  # minimum at 0, so theta is the error e
    opt = optimkit.SGD([theta], lr=lr, momentum=mu, nesterov=nesterov)
    R = ch03.momentum_matrix(lr, mu, lam, nesterov)
    state = np.array([0.0, theta[0]])  # b_0 = 0: the matrix also covers torch's first step
    for _ in range(8):
        opt.step([lam * theta])
        state = R @ state
        np.testing.assert_allclose([opt.state[0]["momentum_buffer"][0], theta[0]], state,
                                   rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("nesterov", [False, True])
def test_rate_grid_matches_eigenvalues(nesterov):
    lrs, betas = np.linspace(0.01, 1.2, 13), np.linspace(0.0, 0.97, 11)
    grid = ch03.rate_grid(lrs, betas, CURVATURES, nesterov=nesterov)
    for (i, b), (j, lr) in itertools.product(enumerate(betas), enumerate(lrs)):
        assert grid[i, j] == pytest.approx(ch03.convergence_rate(lr, b, CURVATURES, nesterov), rel=1e-7)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("mu", [0.0, 0.3, 0.9, 0.99])
def test_lr_threshold_is_the_edge_of_stability(nesterov, mu):
    edge = ch03.lr_threshold(mu, 4.0, nesterov)
    expected = (2 + 2 * mu) / (1 + 2 * mu if nesterov else 1) / 4.0
    assert edge == pytest.approx(expected, rel=1e-15)
    assert ch03.convergence_rate(0.999 * edge, mu, CURVATURES, nesterov) < 1
    assert ch03.convergence_rate(1.001 * edge, mu, CURVATURES, nesterov) > 1


def test_distill_optimum_for_the_ravine():
    best = ch03.distill_optimum(0.2, 4.0)
    r = (math.sqrt(20) - 1) / (math.sqrt(20) + 1)
    assert best["rate"] == pytest.approx(r, rel=1e-15)
    assert best["momentum"] == pytest.approx(r * r, rel=1e-15)
    assert best["lr"] == pytest.approx(4 / (math.sqrt(0.2) + 2) ** 2, rel=1e-15)
    # A double eigenvalue: rounding moves it by ~sqrt(eps), so eight digits, not sixteen.
    assert ch03.convergence_rate(best["lr"], best["momentum"], CURVATURES) == pytest.approx(r, abs=1e-7)
    grid = ch03.rate_grid(np.linspace(0.3, 1.0, 141), np.linspace(0.0, 0.95, 96), CURVATURES)
    assert grid.min() >= r - 1e-7  # nothing on the grid beats the closed form


def test_gd_optimum_balances_both_ends():
    plain = ch03.gd_optimum(0.2, 4.0)
    assert plain["lr"] == pytest.approx(2 / 4.2, rel=1e-15)
    assert plain["rate"] == pytest.approx(19 / 21, rel=1e-15)
    assert ch03.convergence_rate(plain["lr"], 0.0, CURVATURES) == pytest.approx(19 / 21, rel=1e-12)


def test_optimal_run_decays_like_k_r_to_the_k():
    best = ch03.distill_optimum(0.2, 4.0)
    dist = np.linalg.norm(path(lambda p: optimkit.SGD(p, lr=best["lr"], momentum=best["momentum"]),
                               steps=100), axis=1)
    k = np.arange(20, 101, 20)
    ratio = dist[k] / (k * best["rate"] ** k)
    assert np.all(np.abs(np.diff(ratio)) / ratio[:-1] < 0.05)  # k r^k explains the decay


def test_torch_nesterov_iterates_are_the_lookahead_points():
    thetas, ahead = ch03.nesterov_lookahead_path(RAVINE, lr=0.1, momentum=0.9, steps=50)
    torch_form = path(lambda p: optimkit.SGD(p, lr=0.1, momentum=0.9, nesterov=True), steps=50)
    np.testing.assert_allclose(torch_form, ahead, rtol=0, atol=1e-12)
    assert np.abs(torch_form - thetas).max() > 0.1


def test_nesterov_lookahead_against_torch_on_rosenbrock():
    torch = pytest.importorskip("torch")
    land = landscapes.rosenbrock()
    _, ahead = ch03.nesterov_lookahead_path(land, lr=1e-3, momentum=0.9, steps=40)
    w = torch.tensor(land.start, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=1e-3, momentum=0.9, nesterov=True)
    for k in range(40):
        w.grad = torch.tensor(land.grad(w.detach().numpy()), dtype=torch.float64)
        opt.step()
        np.testing.assert_allclose(w.detach().numpy(), ahead[k + 1], rtol=1e-9, atol=1e-12)


def test_momentum_explorer_figure():
    best = ch03.distill_optimum(0.2, 4.0)
    sf = ch03.momentum_explorer_figure(RAVINE, [0.2, best["lr"], 0.85], [0.0, best["momentum"]], steps=40,
                                    initial={"beta": best["momentum"], "lr": best["lr"]})
    assert sf.frame_count() == 6 <= 40
    assert sf.initial == {"beta": best["momentum"], "lr": best["lr"]}
    frames = {combo: sf.frame(beta=combo[0], lr=combo[1])
              for combo in itertools.product(sf.sliders["beta"], sf.sliders["lr"])}
    assert len(set(frames.values())) == 6
    assert "(unstable;" in sf.alt_text({"beta": 0.0, "lr": 0.85})  # 0.85 * 4 = 3.4 > 2
    assert "(unstable;" in sf.alt_text({"beta": best["momentum"], "lr": 0.85})  # 3.4 > 2 + 2 * 0.4026
    assert "(stable;" in sf.alt_text({"beta": best["momentum"], "lr": 0.2})
    assert "the run diverges" in sf.alt_text({"beta": 0.0, "lr": 0.85})
    plt.close(sf.fig)


def test_step_length_figure_draws_one_line_per_run():
    runs = {name: landscapes.run(RAVINE, make, steps=10) for name, make in
            [("a", lambda p: optimkit.SGD(p, lr=0.1)), ("b", lambda p: optimkit.SGD(p, lr=0.2))]}
    fig = ch03.step_length_figure(runs, drop_at=5)
    lines = fig.axes[0].get_lines()
    lengths = np.linalg.norm(np.diff(runs["a"].points, axis=0), axis=1)
    np.testing.assert_allclose(lines[0].get_ydata(), lengths)
    plt.close(fig)


def test_explorer_live_mode_redraws_on_a_slider_move():
    sf = ch03.momentum_explorer_figure(RAVINE, [0.2, 0.85], [0.0, 0.9], steps=20)
    box = sf.widget("live")
    (beta_slider, lr_slider), view = box.children[0].children, box.children[1]
    before = view.value
    lr_slider.value = 0.85
    assert view.value != before and "(unstable;" in view.value
    beta_slider.value = 0.9
    assert "(stable;" in view.value  # 0.85 * 4 = 3.4 < 2 + 2 * 0.9
