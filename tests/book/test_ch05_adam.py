"""descent.ch05_adam and AdamVariant (descent.variants): Adam's bias correction, eps forms and
figures behind chapter 5, checked against closed forms and optimkit.Adam."""

import math

import matplotlib
import numpy as np
import pytest

import optimkit
from optimkit import landscapes

from descent.sliders import SliderFigure
from descent import ch04_adagrad_rmsprop as ch04
from descent import ch05_adam as ch05
from descent import variants


EPS = 1e-8


def steps_of(make, grads, start=None):
    return ch04.feed(make, grads, start=start).steps


def test_adam_variant_with_defaults_is_optimkit_adam_bit_for_bit():
    grads = np.random.default_rng(4).normal(size=(60, 5)) * np.logspace(-3, 2, 5)
    a = steps_of(lambda p: optimkit.Adam(p, lr=0.01, betas=(0.8, 0.99)), grads)
    b = steps_of(lambda p: variants.AdamVariant(p, lr=0.01, betas=(0.8, 0.99)), grads)
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
        got = -steps_of(lambda p: variants.AdamVariant(p, lr=lr, betas=betas, bias_correction=which),
                        np.full(T, g))[:, 0]
        np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_first_steps_with_and_without_correction_are_the_chapter_numbers():
    first = {w: -steps_of(lambda p: variants.AdamVariant(p, lr=1.0, bias_correction=w),
                          np.ones(1))[0, 0] for w in variants.AdamVariant.CORRECTIONS}
    assert first["both"] == pytest.approx(1.0, abs=1e-7)
    assert first["none"] == pytest.approx(0.1 / math.sqrt(0.001), rel=1e-6)    # 3.162
    assert first["m"] == pytest.approx(1 / math.sqrt(0.001), rel=1e-6)         # 31.62
    uncorrected = -steps_of(lambda p: variants.AdamVariant(p, lr=1.0, bias_correction="none"),
                            np.ones(3000))[:, 0]
    t = np.arange(1, 3001)
    closed = (1 - 0.9 ** t) / np.sqrt(1 - 0.999 ** t)
    assert np.argmax(uncorrected) == np.argmax(closed) == 11         # peak at step 12
    assert uncorrected.max() == pytest.approx(closed.max(), rel=1e-6)


def test_kingma_efficient_form_is_torch_with_eps_divided_by_sqrt_bc2():
    lr, eps, g, T = 1.0, 1e-3, 1.0, 200
    t = np.arange(1, T + 1)
    kingma = -steps_of(lambda p: variants.AdamVariant(p, lr=lr, eps=eps, eps_form="kingma"),
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
        tr = landscapes.run(ch04.scaled(base, c), lambda p: optimkit.Adam(p, lr=0.1), steps=200)
        assert np.abs(tr.points - ref.points).max() < 1e-4
    sgd = landscapes.run(ch04.scaled(base, 1e3),
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


def test_slider_figures_build_update_and_describe_each_frame():
    ros = landscapes.rosenbrock()
    figs = [
        ch04.rmsprop_figure(ros, lrs=[0.01, 0.1], alphas=[0.9, 0.99], steps=30),
        ch04.eps_figure([1e-8, 1e-3]),
        ch05.bias_correction_figure([0.99, 0.999], steps=50),
        ch05.betas_figure(landscapes.ravine(100.0), [0.0, 0.9], [0.999], lr=0.1, steps=30,
                       grad_noise=1.0),
    ]
    for sf in figs:
        assert isinstance(sf, SliderFigure) and sf.animated
        for values in (sf.initial, {k: v[-1] for k, v in sf.sliders.items()}):
            sf.update(**values)
            assert sf.alt_text(values).strip()
    assert figs[0].frame_count() == 4 and figs[3].frame_count() == 2
    alt = figs[2].alt_text({"beta2": 0.999})
    assert "starts at 3.16" in alt and "correcting only m starts at 31.6" in alt
    assert "1.0e-04" in figs[1].alt_text({"eps": 1e-8})     # sqrt(eps) marks the inside knee
    for sf in figs:
        matplotlib.pyplot.close(sf.fig)


def test_static_figures_return_matplotlib_figures():
    rng = np.random.default_rng(5)
    grads = rng.normal(size=100) * np.logspace(-3, 1, 100)
    figs = [
        ch04.effective_lr_figure({"a": np.ones((10, 2)), "b": np.full((10, 2), 0.5)}),
        ch05.step_size_figure({1: (grads, 1e-3 * np.sign(grads))}, lr=1e-3),
        ch05.ablation_figure({"x": ([1e-3, 1e-2], [0.5, 0.1])}),
    ]
    for fig in figs:
        assert isinstance(fig, matplotlib.figure.Figure)
        matplotlib.pyplot.close(fig)


def yogi_reference(grads, lr, beta1, beta2, eps, v0, theta0):
    """Zaheer et al. (2018), Algorithm 2, one scalar at a time in plain Python (the oracle)."""
    theta, m, v, path = theta0, 0.0, v0, []
    for g in grads:
        m = beta1 * m + (1 - beta1) * g
        v = v - (1 - beta2) * (1 if v - g * g > 0 else -1 if v - g * g < 0 else 0) * g * g
        theta = theta - lr * m / (math.sqrt(v) + eps)
        path.append(theta)
    return path


def test_yogi_follows_the_paper_and_differs_from_adam():
    from descent.variants import Yogi

    rng = np.random.default_rng(3)
    grads = list(rng.standard_normal(60) * np.r_[np.full(20, 5.0), np.full(40, 0.1)])
    expected = yogi_reference(grads, 0.01, 0.9, 0.99, 1e-3, 1e-6, 0.5)
    p = [np.array([0.5])]
    opt = Yogi(p, lr=0.01, betas=(0.9, 0.99), eps=1e-3, initial_v=1e-6)
    got = []
    for g in grads:
        opt.step([np.array([g])])
        got.append(float(p[0][0]))
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # Negative control: Adam's multiplicative v (no bias correction, same eps) is another path,
    # and the difference is where the paper says: v falls slowly after the large gradients.
    adam_like, theta, m, v = [], 0.5, 0.0, 1e-6
    for g in grads:
        m = 0.9 * m + 0.1 * g
        v = 0.99 * v + 0.01 * g * g
        theta -= 0.01 * m / (math.sqrt(v) + 1e-3)
        adam_like.append(theta)
    assert got[:20] != pytest.approx(adam_like[:20], rel=1e-6)
    assert opt.state[0]["exp_avg_sq"][0] > v   # Yogi's v stays larger once gradients shrink
