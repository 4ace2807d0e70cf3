"""optimkit.plots.adaptive: the measuring helpers and comparison variants behind chapters 4 and 5,
checked against closed forms (each claim the chapters print comes from one of these)."""

import math

import matplotlib
import numpy as np
import pytest

import optimkit
from optimkit import landscapes
from optimkit.interactive import SliderFigure
from optimkit.plots import adaptive as A

EPS = 1e-8


def steps_of(make, grads, start=None):
    return A.feed(make, grads, start=start).steps


# -- AdaGrad -----------------------------------------------------------------------------------

def test_adagrad_under_a_constant_gradient_steps_like_one_over_sqrt_t():
    lr, g, T = 0.5, 3.0, 200
    fed = A.feed(lambda p: optimkit.Adagrad(p, lr=lr), np.full(T, g))
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
    eff = A.feed(lambda p: optimkit.Adagrad(p, lr=1.0), stream).effective_lr[-1]
    want = (math.sqrt(T) + 1e-10) / (math.sqrt(T / 10) + 1e-10)
    assert eff[1] / eff[0] == pytest.approx(want, rel=1e-12)
    assert want == pytest.approx(math.sqrt(10), rel=1e-9)


# -- RMSProp and eps placement -----------------------------------------------------------------

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
    inside = steps_of(lambda p: A.RMSpropEpsInside(p, lr=lr, alpha=alpha, eps=eps),
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
    assert A.step_per_lr(eps, eps, "outside") == pytest.approx(0.5)
    assert A.step_per_lr(math.sqrt(eps), eps, "inside") == pytest.approx(1 / math.sqrt(2))
    # the chapter's table: |g| = 1e-4 at eps = 1e-8 loses 29% of its step inside the root
    short = 1 - A.step_per_lr(1e-4, eps, "inside") / A.step_per_lr(1e-4, eps, "outside")
    assert short == pytest.approx(1 - (1e-4 + eps) / math.sqrt(2e-8), rel=1e-12)
    assert 0.29 < short < 0.30
    with pytest.raises(ValueError, match="where must be"):
        A.step_per_lr(1.0, eps, "middle")


def test_scaled_landscape_scales_value_gradient_and_hessian_only():
    base = landscapes.ravine(100.0)
    s = A.scaled(base, 1e-6)
    p = (-3.0, 1.5)
    assert s(p) == pytest.approx(1e-6 * base(p), rel=1e-15)
    np.testing.assert_allclose(s.grad(p), 1e-6 * base.grad(p), rtol=1e-15)
    np.testing.assert_allclose(s.hessian(p), 1e-6 * base.hessian(p), rtol=1e-15)
    assert s.minima == base.minima and s.start == base.start
    with pytest.raises(ValueError, match="c must be > 0"):
        A.scaled(base, 0.0)


def test_eps_outside_keeps_rmsprop_scale_free_and_eps_inside_does_not():
    base = landscapes.ravine(100.0)
    tiny = A.scaled(base, 1e-6)
    ref = landscapes.run(base, lambda p: optimkit.RMSprop(p, lr=0.1), steps=100)
    out = landscapes.run(tiny, lambda p: optimkit.RMSprop(p, lr=0.1), steps=100)
    ins = landscapes.run(tiny, lambda p: A.RMSpropEpsInside(p, lr=0.1), steps=100)
    assert out.losses[-1] / 1e-6 < 10 * ref.losses[-1] + 1e-3
    assert ins.losses[-1] / 1e-6 > 1000 * ref.losses[-1]


# -- effective_lr, feed, run_tracked -----------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda p: optimkit.Adagrad(p, lr=0.3),
    lambda p: optimkit.RMSprop(p, lr=0.03, alpha=0.9),
    lambda p: optimkit.RMSprop(p, lr=0.03, centered=True),
    lambda p: A.RMSpropEpsInside(p, lr=0.03),
])
def test_effective_lr_times_gradient_is_the_step(make):
    grads = np.random.default_rng(2).normal(size=(30, 3))
    fed = A.feed(make, grads)
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
                                   A.effective_lr(opt) * opt.state[0]["exp_avg"], rtol=1e-12)


def test_effective_lr_and_feed_reject_what_they_cannot_measure():
    with pytest.raises(ValueError, match="not taken a step"):
        A.effective_lr(optimkit.Adagrad([np.zeros(2)]))
    opt = optimkit.SGD([np.zeros(1)], lr=0.1)
    opt.step([np.ones(1)])
    with pytest.raises(TypeError, match="SGD"):
        A.effective_lr(opt)
    fed = A.feed(lambda p: optimkit.SGD(p, lr=0.1), np.ones(3))   # no effective lr: NaN
    assert np.all(np.isnan(fed.effective_lr)) and np.allclose(fed.steps, -0.1)
    with pytest.raises(ValueError, match="grads must have shape"):
        A.feed(lambda p: optimkit.SGD(p, lr=0.1), np.ones((2, 2, 2)))


def test_run_tracked_records_one_effective_lr_per_step():
    land = landscapes.rosenbrock()
    tr, eff = A.run_tracked(land, lambda p: optimkit.Adagrad(p, lr=0.5), steps=25)
    assert eff.shape == (25, 2) and len(tr.points) == 26
    g0 = land.grad(land.start)
    np.testing.assert_allclose(eff[0], 0.5 / (np.abs(g0) + 1e-10), rtol=1e-13)
    assert np.all(np.diff(eff, axis=0) <= 0)          # AdaGrad's rate only shrinks


# -- Adam: bias correction, efficient form, noise, scale, AMSGrad -------------------------------

def test_adam_variant_with_defaults_is_optimkit_adam_bit_for_bit():
    grads = np.random.default_rng(4).normal(size=(60, 5)) * np.logspace(-3, 2, 5)
    a = steps_of(lambda p: optimkit.Adam(p, lr=0.01, betas=(0.8, 0.99)), grads)
    b = steps_of(lambda p: A.AdamVariant(p, lr=0.01, betas=(0.8, 0.99)), grads)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.99)])
def test_bias_correction_variants_under_a_constant_gradient(betas):
    b1, b2 = betas
    lr, g, T = 0.01, 0.7, 400
    t = np.arange(1, T + 1)
    m, v = (1 - b1 ** t) * g, (1 - b2 ** t) * g * g      # the biased moments
    want = {"both": lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + EPS),
            "none": lr * m / (np.sqrt(v) + EPS),
            "m": lr * (m / (1 - b1 ** t)) / (np.sqrt(v) + EPS)}
    for which, expected in want.items():
        got = -steps_of(lambda p: A.AdamVariant(p, lr=lr, betas=betas, bias_correction=which),
                        np.full(T, g))[:, 0]
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_first_steps_with_and_without_correction_are_the_chapter_numbers():
    first = {w: -steps_of(lambda p: A.AdamVariant(p, lr=1.0, bias_correction=w),
                          np.ones(1))[0, 0] for w in A.AdamVariant.CORRECTIONS}
    assert first["both"] == pytest.approx(1.0, abs=1e-7)
    assert first["none"] == pytest.approx(0.1 / math.sqrt(0.001), rel=1e-6)    # 3.162
    assert first["m"] == pytest.approx(1 / math.sqrt(0.001), rel=1e-6)         # 31.62
    uncorrected = -steps_of(lambda p: A.AdamVariant(p, lr=1.0, bias_correction="none"),
                            np.ones(3000))[:, 0]
    t = np.arange(1, 3001)
    closed = (1 - 0.9 ** t) / np.sqrt(1 - 0.999 ** t)
    assert np.argmax(uncorrected) == np.argmax(closed) == 11         # peak at step 12
    assert uncorrected.max() == pytest.approx(closed.max(), rel=1e-6)


def test_kingma_efficient_form_is_torch_with_eps_divided_by_sqrt_bc2():
    lr, eps, g, T = 1.0, 1e-3, 1.0, 200
    t = np.arange(1, T + 1)
    kingma = -steps_of(lambda p: A.AdamVariant(p, lr=lr, eps=eps, eps_form="kingma"),
                       np.full(T, g))[:, 0]
    np.testing.assert_allclose(kingma, lr * g / (g + eps / np.sqrt(1 - 0.999 ** t)), rtol=1e-12)
    torch = -steps_of(lambda p: optimkit.Adam(p, lr=lr, eps=eps), np.full(T, g))[:, 0]
    np.testing.assert_allclose(torch, lr * g / (g + eps), rtol=1e-12)
    rel1 = 1 - kingma[0] / torch[0]
    assert 0.029 < rel1 < 0.031                     # "3% shorter" at t = 1


def test_first_moment_shrinks_the_noise_step_by_sqrt_of_one_minus_beta_over_one_plus():
    noise = np.random.default_rng(0).normal(size=(3000, 100))
    for beta1 in (0.0, 0.5, 0.9):
        steps = steps_of(lambda p: optimkit.Adam(p, lr=1.0, betas=(beta1, 0.999)), noise)
        rms = np.sqrt(np.mean(steps[1000:] ** 2))
        assert rms == pytest.approx(math.sqrt((1 - beta1) / (1 + beta1)), rel=0.05)


def test_adam_is_blind_to_the_scale_of_the_loss_and_sgd_is_not():
    base = landscapes.ravine(100.0)
    ref = landscapes.run(base, lambda p: optimkit.Adam(p, lr=0.1), steps=200)
    for c in (1e-3, 1e3):
        tr = landscapes.run(A.scaled(base, c), lambda p: optimkit.Adam(p, lr=0.1), steps=200)
        assert np.abs(tr.points - ref.points).max() < 1e-4
    sgd = landscapes.run(A.scaled(base, 1e3),
                         lambda p: optimkit.SGD(p, lr=0.05, momentum=0.9), steps=200)
    assert sgd.diverged


def test_sparse_gradient_step_respects_kingmas_bound():
    stream = np.zeros(1001)
    stream[-1] = 1.0
    late = -steps_of(lambda p: optimkit.Adam(p, lr=1.0), stream)[-1, 0]
    m_hat = 0.1 / (1 - 0.9 ** 1001)
    v_hat = 0.001 / (1 - 0.999 ** 1001)
    assert late == pytest.approx(m_hat / (math.sqrt(v_hat) + EPS), rel=1e-9)
    assert 1.0 < late < 0.1 / math.sqrt(0.001)


def test_amsgrad_keeps_the_largest_second_moment():
    stream = np.concatenate([np.ones(200), np.full(800, 0.01)])
    theta = [np.zeros(1)]
    opt = optimkit.Adam(theta, lr=1.0, amsgrad=True)
    seen = 0.0
    for g in stream:
        opt.step([np.array([g])])
        seen = max(seen, float(opt.state[0]["exp_avg_sq"][0]))
        assert opt.state[0]["max_exp_avg_sq"][0] == seen
    assert seen == pytest.approx(1 - 0.999 ** 200, rel=1e-12)


# -- figures -----------------------------------------------------------------------------------

def test_slider_figures_build_update_and_describe_each_frame():
    ros = landscapes.rosenbrock()
    figs = [
        A.rmsprop_figure(ros, lrs=[0.01, 0.1], alphas=[0.9, 0.99], steps=30),
        A.eps_figure([1e-8, 1e-3]),
        A.bias_correction_figure([0.99, 0.999], steps=50),
        A.betas_figure(landscapes.ravine(100.0), [0.0, 0.9], [0.999], lr=0.1, steps=30,
                       grad_noise=1.0),
    ]
    for sf in figs:
        assert isinstance(sf, SliderFigure) and sf.animated
        for values in (sf.initial, {k: v[-1] for k, v in sf.sliders.items()}):
            sf.update(**values)
            assert sf._alt(values).strip()
    assert figs[0].frame_count() == 4 and figs[3].frame_count() == 2
    alt = figs[2]._alt({"beta2": 0.999})
    assert "starts at 3.16" in alt and "correcting only m starts at 31.6" in alt
    assert "1.0e-04" in figs[1]._alt({"eps": 1e-8})     # sqrt(eps) marks the inside knee
    for sf in figs:
        matplotlib.pyplot.close(sf.fig)


def test_static_figures_return_matplotlib_figures():
    rng = np.random.default_rng(5)
    grads = rng.normal(size=100) * np.logspace(-3, 1, 100)
    figs = [
        A.effective_lr_figure({"a": np.ones((10, 2)), "b": np.full((10, 2), 0.5)}),
        A.step_size_figure({1: (grads, 1e-3 * np.sign(grads))}, lr=1e-3),
        A.ablation_figure({"x": ([1e-3, 1e-2], [0.5, 0.1])}),
    ]
    for fig in figs:
        assert isinstance(fig, matplotlib.figure.Figure)
        matplotlib.pyplot.close(fig)
