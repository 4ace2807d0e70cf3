"""descent.ch06_adamw and the weight-decay variants of descent.variants behind chapter 6, checked
against closed forms and against optimkit's torch-checked optimizers."""

import math
from types import SimpleNamespace

import matplotlib
import numpy as np
import pytest

import optimkit
from optimkit import digits, landscapes

from descent.sliders import SliderFigure
from descent import ch04_adagrad_rmsprop as ch04
from descent import ch06_adamw as ch06
from descent import variants


@pytest.fixture(scope="module")
def data():
    return digits.load_digits_split()


def test_sgd_penalty_and_decoupled_decay_are_the_same_update():
    ravine = landscapes.ravine(100.0)
    a = landscapes.run(ravine, lambda p: optimkit.SGD(p, lr=0.05, weight_decay=0.1), steps=100)
    b = landscapes.run(ravine, lambda p: variants.SGDDecoupled(p, lr=0.05, weight_decay=0.1),
                       steps=100)
    np.testing.assert_allclose(a.points, b.points, rtol=0, atol=1e-13)
    c = landscapes.run(ravine, lambda p: optimkit.SGD(p, lr=0.05), steps=100)
    assert np.abs(a.points - c.points).max() > 1e-3     # and the decay does something


def test_with_zero_gradient_adamw_decays_geometrically_and_adam_l2_marches_at_lr():
    zeros = np.zeros((100, 1))
    w = ch04.feed(lambda p: optimkit.AdamW(p, lr=1e-3, weight_decay=0.5), zeros,
                      start=[1.0])
    theta_w = 1.0 + w.steps.sum()
    assert theta_w == pytest.approx((1 - 1e-3 * 0.5) ** 100, rel=1e-12)
    l2 = ch04.feed(lambda p: optimkit.Adam(p, lr=1e-3, weight_decay=0.5), zeros,
                       start=[1.0])
    # the penalty is the whole gradient: Adam normalises it into steps of ~lr towards zero,
    # whatever wd is (the steps shorten slowly as the penalty gradient shrinks with theta)
    steps = -l2.steps[:, 0]
    assert steps[0] == pytest.approx(1e-3 * 0.5 / (0.5 + 1e-8), rel=1e-12)
    assert np.all((steps > 0.95e-3) & (steps <= 1e-3))
    assert 1.0 + l2.steps.sum() == pytest.approx(1 - 100 * 1e-3, abs=3e-3)


def test_l2_under_adam_crushes_the_quiet_coordinate_and_adamw_does_not():
    noise = np.random.default_rng(0).normal(size=(3000, 2)) * np.array([1.0, 0.01])
    final = {}
    for name, make in {"none": lambda p: optimkit.Adam(p, lr=1e-3),
                       "l2": lambda p: optimkit.Adam(p, lr=1e-3, weight_decay=0.01),
                       "w": lambda p: optimkit.AdamW(p, lr=1e-3, weight_decay=0.01)}.items():
        final[name] = 1.0 + ch04.feed(make, noise, start=[1.0, 1.0]).steps.sum(axis=0)
    shrink = math.exp(-1e-3 * 0.01 * 3000)
    np.testing.assert_allclose(final["w"] / final["none"], shrink, rtol=0.01)
    l2 = final["l2"] / final["none"]
    assert l2[0] == pytest.approx(shrink, rel=0.01) and l2[1] < 0.1


def test_paper_adamw_is_torch_adamw_with_lambda_over_base_lr_under_a_schedule():
    ravine = landscapes.ravine(100.0)
    alpha, lam = 0.01, 0.5

    def cosine(k):
        return alpha * 0.5 * (1 + math.cos(math.pi * k / 100))

    paper = landscapes.run(ravine, lambda p: variants.AdamWPaper(p, lr=alpha, weight_decay=lam),
                           steps=100, schedule=cosine)
    torch = landscapes.run(ravine, lambda p: optimkit.AdamW(p, lr=alpha, weight_decay=lam / alpha),
                           steps=100, schedule=cosine)
    np.testing.assert_allclose(paper.points, torch.points, rtol=0, atol=1e-12)
    same_number = landscapes.run(ravine, lambda p: optimkit.AdamW(p, lr=alpha, weight_decay=lam),
                                 steps=100, schedule=cosine)
    assert np.abs(same_number.points - paper.points).max() > 1e-3


def test_paper_adamw_decay_uses_the_schedule_multiplier_only():
    theta = [np.array([2.0])]
    opt = variants.AdamWPaper(theta, lr=0.5, weight_decay=0.1)
    opt.step([np.zeros(1)])                     # multiplier 1: decay by lambda
    assert theta[0][0] == pytest.approx(2.0 * 0.9, rel=1e-15)
    opt.lr = 0.25                               # the schedule halves the rate
    opt.step([np.zeros(1)])
    assert theta[0][0] == pytest.approx(2.0 * 0.9 * 0.95, rel=1e-15)


def test_decay_after_the_step_differs_by_lr_squared_wd_u():
    lr, wd, g, theta0 = 0.1, 0.5, 3.0, 2.0
    before = [np.array([theta0])]
    after = [np.array([theta0])]
    optimkit.AdamW(before, lr=lr, weight_decay=wd).step([np.array([g])])
    variants.AdamWDecayAfter(after, lr=lr, weight_decay=wd).step([np.array([g])])
    u = g / (abs(g) + 1e-8)                     # Adam's first step direction, bias-corrected
    assert before[0][0] == pytest.approx((1 - lr * wd) * theta0 - lr * u, rel=1e-14)
    assert after[0][0] - before[0][0] == pytest.approx(lr * lr * wd * u, rel=1e-9)


def test_shrinkage_groups_weights_by_gradient_rms():
    rms = np.array([[4.0, 1.0], [3.0, 2.0]])    # gradient RMS of a 2x2 first-layer matrix
    state = {"step": 10, "exp_avg_sq": rms ** 2 * (1 - 0.999 ** 10)}
    opt = SimpleNamespace(state=[state], param_groups=[{"betas": (0.9, 0.999)}])
    base = ch06.Run(None, SimpleNamespace(params=[np.full((2, 2), 2.0)]), opt)
    # halve the two quietest weights (RMS 1 and 2), keep the two busiest
    other = ch06.Run(None, SimpleNamespace(params=[np.array([[2.0, 1.0], [2.0, 1.0]])]), None)
    centres, ratios = ch06.shrinkage_by_gradient_rms(base, {"x": other}, bins=2)
    np.testing.assert_allclose(centres, [1.5, 3.5])
    np.testing.assert_allclose(ratios["x"], [0.5, 1.0])


def test_sweep_shares_the_unregularised_run_and_trains_each_setting(data):
    results = ch06.sweep(data, [0.0, 0.1], lr=3e-3, epochs=2)
    assert set(results) == {(m, wd) for m in ch06.METHODS for wd in (0.0, 0.1)}
    assert results["Adam + L2", 0.0] is results["AdamW", 0.0]
    assert len(results["AdamW", 0.1].history.weight_norm) == 2
    base = results["AdamW", 0.0].history.weight_norm[-1]
    assert results["Adam + L2", 0.1].history.weight_norm[-1] < base
    assert results["AdamW", 0.1].history.weight_norm[-1] < base
    sf = ch06.decay_sweep_figure(results, [0.0, 0.1])
    assert isinstance(sf, SliderFigure) and sf.frame_count() == 2
    for wd in (0.0, 0.1):
        sf.update(weight_decay=wd)
        h = results["AdamW", wd].history
        assert f"final weight norm {h.weight_norm[-1]:.2f}" in sf.alt_text({"weight_decay": wd})
    matplotlib.pyplot.close(sf.fig)
    fig = ch06.shrinkage_figure(np.array([1e-3, 1e-2]), {"a": np.array([0.2, 0.8])})
    assert isinstance(fig, matplotlib.figure.Figure)
    matplotlib.pyplot.close(fig)


def test_adam_l2_with_a_large_penalty_leaves_a_network_that_guesses_uniformly(data):
    run = ch06.train_run(data, ch06.METHODS["Adam + L2"](3e-3, 1.0), epochs=20)
    assert run.history.weight_norm[-1] < 0.05
    assert run.history.val_loss[-1] == pytest.approx(math.log(10), abs=1e-3)
    adamw = ch06.train_run(data, ch06.METHODS["AdamW"](3e-3, 1.0), epochs=20)
    assert adamw.history.val_accuracy[-1] > 0.9
