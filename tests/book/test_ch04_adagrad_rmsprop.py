"""descent.ch04_adagrad_rmsprop and RMSpropEpsInside (descent.variants): the measuring
helpers behind chapter 4, checked against closed forms (each claim the chapter prints comes from one
of these)."""

import math

import numpy as np
import pytest

import optimkit
from optimkit import landscapes

from descent import ch04_adagrad_rmsprop as ch04
from descent import variants


EPS = 1e-8


def steps_of(make, grads, start=None):
    return ch04.feed(make, grads, start=start).steps


def test_adagrad_under_a_constant_gradient_steps_like_one_over_sqrt_t():
    lr, g, T = 0.5, 3.0, 200
    fed = ch04.feed(lambda p: optimkit.Adagrad(p, lr=lr), np.full(T, g))
    t = np.arange(1, T + 1)
    want = lr * g / (g * np.sqrt(t) + 1e-10)          # s_t = t g^2, eps outside the root
    np.testing.assert_allclose(-fed.steps[:, 0], want, rtol=1e-13)
    np.testing.assert_allclose(fed.effective_lr[:, 0], lr / (g * np.sqrt(t) + 1e-10), rtol=1e-13)


def test_adagrad_first_step_has_length_lr_whatever_the_gradient_scale():
    g = np.array([-1e-6, 1e-3, -1.0, 1e3, 40.0])
    step = steps_of(lambda p: optimkit.Adagrad(p, lr=0.1), g[None, :])[0]
    np.testing.assert_allclose(step, -0.1 * g / (np.abs(g) + 1e-10), rtol=1e-14)
    np.testing.assert_allclose(np.abs(step), 0.1, rtol=1e-4)


def test_adagrad_never_moves_a_coordinate_by_more_than_lr():
    rng = np.random.default_rng(1)
    grads = rng.standard_cauchy(size=(500, 6))      # heavy tails: occasional huge gradients
    steps = steps_of(lambda p: optimkit.Adagrad(p, lr=0.3), grads)
    assert np.abs(steps).max() <= 0.3 * (1 + 1e-12)
    assert np.abs(steps).max() > 0.29                # and the bound is reached (first steps)


def test_a_coordinate_with_a_gradient_one_step_in_ten_keeps_sqrt_10_times_the_rate():
    T = 1000
    stream = np.stack([np.ones(T), (np.arange(T) % 10 == 0).astype(float)], axis=1)
    eff = ch04.feed(lambda p: optimkit.Adagrad(p, lr=1.0), stream).effective_lr[-1]
    want = (math.sqrt(T) + 1e-10) / (math.sqrt(T / 10) + 1e-10)
    assert eff[1] / eff[0] == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx(math.sqrt(10), rel=1e-9)


@pytest.mark.parametrize("alpha", [0.9, 0.99])
def test_rmsprop_under_a_constant_gradient_starts_at_one_over_sqrt_one_minus_alpha(alpha):
    lr, g, T = 0.2, -2.0, 300
    steps = steps_of(lambda p: optimkit.RMSprop(p, lr=lr, alpha=alpha), np.full(T, g))[:, 0]
    t = np.arange(1, T + 1)
    want = -lr * g / (abs(g) * np.sqrt(1 - alpha ** t) + EPS)
    np.testing.assert_allclose(steps, want, rtol=1e-12)
    assert steps[0] == pytest.approx(lr / math.sqrt(1 - alpha), rel=1e-7)


def test_rmsprop_eps_inside_follows_its_closed_form_and_differs_from_torch():
    lr, alpha, eps, g, T = 0.1, 0.99, 1e-3, 0.01, 50
    inside = steps_of(lambda p: variants.RMSpropEpsInside(p, lr=lr, alpha=alpha, eps=eps),
                      np.full(T, g))[:, 0]
    outside = steps_of(lambda p: optimkit.RMSprop(p, lr=lr, alpha=alpha, eps=eps),
                       np.full(T, g))[:, 0]
    t = np.arange(1, T + 1)
    v = (1 - alpha ** t) * g * g
    np.testing.assert_allclose(-inside, lr * g / np.sqrt(v + eps), rtol=1e-13)
    np.testing.assert_allclose(-outside, lr * g / (np.sqrt(v) + eps), rtol=1e-13)
    assert np.all(np.abs(inside) < 0.5 * np.abs(outside))   # inside, eps acts like sqrt(eps)


def test_step_per_lr_closed_forms_and_half_points():
    eps = 1e-8
    assert ch04.step_per_lr(eps, eps, "outside") == pytest.approx(0.5)
    assert ch04.step_per_lr(math.sqrt(eps), eps, "inside") == pytest.approx(1 / math.sqrt(2))
    # the chapter's table: |g| = 1e-4 at eps = 1e-8 loses 29% of its step inside the root
    short = 1 - ch04.step_per_lr(1e-4, eps, "inside") / ch04.step_per_lr(1e-4, eps, "outside")
    assert short == pytest.approx(1 - (1e-4 + eps) / math.sqrt(2e-8), rel=1e-12)
    assert 0.29 < short < 0.30
    with pytest.raises(ValueError, match="where must be"):
        ch04.step_per_lr(1.0, eps, "middle")


def test_scaled_landscape_scales_value_gradient_and_hessian_only():
    base = landscapes.ravine(100.0)
    s = ch04.scaled(base, 1e-6)
    p = (-3.0, 1.5)
    assert s(p) == pytest.approx(1e-6 * base(p), rel=1e-15)
    np.testing.assert_allclose(s.grad(p), 1e-6 * base.grad(p), rtol=1e-15)
    np.testing.assert_allclose(s.hessian(p), 1e-6 * base.hessian(p), rtol=1e-15)
    assert s.minima == base.minima and s.start == base.start
    with pytest.raises(ValueError, match="c must be > 0"):
        ch04.scaled(base, 0.0)


def test_eps_outside_keeps_rmsprop_scale_free_and_eps_inside_does_not():
    base = landscapes.ravine(100.0)
    tiny = ch04.scaled(base, 1e-6)
    ref = landscapes.run(base, lambda p: optimkit.RMSprop(p, lr=0.1), steps=100)
    out = landscapes.run(tiny, lambda p: optimkit.RMSprop(p, lr=0.1), steps=100)
    ins = landscapes.run(tiny, lambda p: variants.RMSpropEpsInside(p, lr=0.1), steps=100)
    assert out.losses[-1] / 1e-6 < 10 * ref.losses[-1] + 1e-3
    assert ins.losses[-1] / 1e-6 > 1000 * ref.losses[-1]


@pytest.mark.parametrize("make", [
    lambda p: optimkit.Adagrad(p, lr=0.3),
    lambda p: optimkit.RMSprop(p, lr=0.03, alpha=0.9),
    lambda p: optimkit.RMSprop(p, lr=0.03, centered=True),
    lambda p: variants.RMSpropEpsInside(p, lr=0.03),
])
def test_effective_lr_times_gradient_is_the_step(make):
    grads = np.random.default_rng(2).normal(size=(30, 3))
    fed = ch04.feed(make, grads)
    np.testing.assert_allclose(-fed.steps, fed.effective_lr * grads, rtol=1e-12)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_effective_lr_of_adam_multiplies_the_first_moment(amsgrad):
    grads = np.random.default_rng(3).normal(size=(40, 2))
    theta = [np.zeros(2)]
    opt = optimkit.Adam(theta, lr=0.01, amsgrad=amsgrad)
    for g in grads:
        before = theta[0].copy()
        opt.step([g])
        np.testing.assert_allclose(before - theta[0],
                                   ch04.effective_lr(opt) * opt.state[0]["exp_avg"], rtol=1e-12)


def test_effective_lr_and_feed_reject_what_they_cannot_measure():
    with pytest.raises(ValueError, match="not taken a step"):
        ch04.effective_lr(optimkit.Adagrad([np.zeros(2)]))
    opt = optimkit.SGD([np.zeros(1)], lr=0.1)
    opt.step([np.ones(1)])
    with pytest.raises(TypeError, match="SGD"):
        ch04.effective_lr(opt)
    fed = ch04.feed(lambda p: optimkit.SGD(p, lr=0.1), np.ones(3))   # no effective lr: NaN
    assert np.all(np.isnan(fed.effective_lr)) and np.allclose(fed.steps, -0.1)
    with pytest.raises(ValueError, match="grads must have shape"):
        ch04.feed(lambda p: optimkit.SGD(p, lr=0.1), np.ones((2, 2, 2)))


def test_run_tracked_records_one_effective_lr_per_step():
    land = landscapes.rosenbrock()
    tr, eff = ch04.run_tracked(land, lambda p: optimkit.Adagrad(p, lr=0.5), steps=25)
    assert eff.shape == (25, 2) and len(tr.points) == 26
    g0 = land.grad(land.start)
    np.testing.assert_allclose(eff[0], 0.5 / (np.abs(g0) + 1e-10), rtol=1e-13)
    assert np.all(np.diff(eff, axis=0) <= 0)          # AdaGrad's rate only shrinks
