"""descent.ch10_clipping: the clipping wrapper and the measurements behind chapter 10, checked
against closed forms and optimkit's torch-checked clipping (the cliff itself: tests/core)."""

import math

import numpy as np
import pytest

import optimkit
from optimkit import digits, landscapes

from descent.sliders import SliderFigure
from descent import ch10_clipping as ch10


@pytest.fixture(scope="module")
def cliff():
    return landscapes.cliff()


def test_plain_sgd_is_thrown_off_the_cliff(cliff):
    sgd = landscapes.run(cliff, lambda p: optimkit.SGD(p, lr=0.3), steps=60)
    jumps = np.linalg.norm(np.diff(sgd.points, axis=0), axis=1)
    k = int(jumps.argmax())
    assert jumps[k] > 5 * np.median(jumps[:k]) and sgd.losses[k + 1] > sgd.losses[0]


def test_clipped_wrapper_clips_a_copy_and_records_norms():
    p = [np.zeros(2)]
    opt = ch10.Clipped(optimkit.SGD(p, lr=0.5), max_norm=1.0)
    g = [np.array([3.0, 4.0])]
    opt.step(g)
    np.testing.assert_array_equal(g[0], [3.0, 4.0])                     # the caller's array is untouched
    np.testing.assert_allclose(p[0], -0.5 * np.array([0.6, 0.8]) * 5 / (5 + 1e-6), rtol=1e-15)
    assert opt.norms == [5.0]
    opt.lr = 0.1
    assert opt.optimizer.lr == 0.1 and opt.lr == 0.1
    by_value = ch10.Clipped(optimkit.SGD([q := np.zeros(2)], lr=1.0), clip_value=1.0)
    by_value.step([np.array([3.0, -0.5])])
    np.testing.assert_array_equal(q, [-1.0, 0.5])
    off = ch10.Clipped(optimkit.SGD([r := np.zeros(2)], lr=1.0), max_norm=math.inf)
    off.step([np.array([30.0, 40.0])])
    np.testing.assert_array_equal(r, [-30.0, -40.0])
    assert off.norms == [50.0]
    with pytest.raises(ValueError, match="not both"):
        ch10.Clipped(optimkit.SGD([np.zeros(1)]), max_norm=1.0, clip_value=1.0)


def test_optax_rule_against_torchs():
    g = [np.array([0.6, 0.8]) * 0.5, np.array([[0.0]])]
    below = optimkit.clipping.clip_by_global_norm(g, 1.0)
    assert all(np.array_equal(a, b) for a, b in zip(below, g)) and below[0] is not g[0]
    big = [np.array([3.0]), np.array([[4.0, 0.0]])]
    above = optimkit.clipping.clip_by_global_norm(big, 2.0)
    assert optimkit.clipping.global_norm(above) == pytest.approx(2.0, rel=1e-15)
    assert ch10.angle_deg(big, above) < 1e-6
    assert big[0][0] == 3.0                                            # inputs are not modified
    # the 1e-6 only matters for tiny thresholds: torch keeps 2/3 of the norm here, optax all
    tiny = [np.array([0.6, 0.8]) * 2e-6]
    torch_like = [tiny[0].copy()]
    optimkit.clip_grad_norm(torch_like, 1e-6)
    assert optimkit.clipping.global_norm(torch_like) == pytest.approx(1e-6 * 2 / 3, rel=1e-9)
    assert optimkit.clipping.global_norm(optimkit.clipping.clip_by_global_norm(tiny, 1e-6)) == pytest.approx(1e-6, rel=1e-12)


def test_angle_deg():
    assert ch10.angle_deg(np.array([1.0, 0.0]), np.array([0.0, 2.0])) == pytest.approx(90.0)
    two = [np.array([2.0]), np.array([2.0])]
    assert ch10.angle_deg([np.array([1.0]), np.array([1.0])], two) == pytest.approx(0.0, abs=1e-12)
    tiny = ch10.angle_deg(np.array([1.0, 1e-9]), np.array([1.0, 0.0]))
    assert tiny == pytest.approx(math.degrees(1e-9), rel=1e-6)      # acos would return 0 here
    assert ch10.angle_deg(np.array([1.0, 0.0]), np.array([-1.0, 0.0])) == pytest.approx(180.0)
    g = np.array([3.0, 0.8])
    clipped = [g.copy()]
    optimkit.clip_grad_value(clipped, 1.0)
    expected = math.degrees(math.atan(0.8) - math.atan(0.8 / 3))
    assert ch10.angle_deg(g, clipped[0]) == pytest.approx(expected, rel=1e-12)


def test_cliff_runs_obey_the_step_caps(cliff):
    norms = [math.inf, 4.0, 1.0]
    runs = ch10.cliff_runs(cliff, norms, steps=40)
    longest = {key: np.linalg.norm(np.diff(t.points, axis=0), axis=1).max() for key, t in runs.items()}
    assert longest["SGD", 4.0] <= 0.3 * 4.0 + 1e-12 and longest["SGD", 1.0] <= 0.3 + 1e-12
    assert longest["SGD", math.inf] > 0.3 * 4.0
    for c in norms:  # Adam's longest step is its first, a sign step: lr * sqrt(2) up to eps
        assert longest["Adam", c] == pytest.approx(0.3 * math.sqrt(2), rel=1e-6)


def test_cliff_figure_frames_and_alt(cliff):
    norms = [math.inf, 1.0]
    sf = ch10.cliff_figure(cliff, ch10.cliff_runs(cliff, norms, steps=10), norms, [0, 5, 10])
    assert isinstance(sf, SliderFigure) and sf.frame_count() == 6
    assert sf.initial == {"max_norm": math.inf, "step": 10}
    alt = sf.alt_text({"max_norm": math.inf, "step": 5})
    assert "clipping off" in alt and "SGD at (" in alt and "Adam at (" in alt
    assert "max_norm 1" in sf.alt_text({"max_norm": 1.0, "step": 5})
    assert sf.frame(max_norm=math.inf, step=10) != sf.frame(max_norm=1.0, step=10)


def test_static_figures_render():
    fig = ch10.clip_vectors_figure([3.0, 0.8], 1.0)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == "raw gradient (3.00, 0.80)" and "23.7° off" in labels[1] and "0.0° off" in labels[2]
    norms = np.array([0.1, 0.5, 2.0, 3.0])
    fig = ch10.norm_histogram_figure(norms, [1.0])
    assert "clips 50% of steps" in fig.axes[0].get_legend().get_texts()[0].get_text()


def test_clipping_lets_a_too_large_sgd_rate_train():
    data = digits.load_digits_split()

    def run(max_norm):
        model = digits.MLP((64, 64, 64, 64, 10), seed=0, activation="relu")
        with np.errstate(over="ignore", invalid="ignore"):
            return digits.train(model, data, lambda p: ch10.Clipped(optimkit.SGD(p, lr=3.0), max_norm=max_norm),
                                epochs=3, batch_size=64, seed=0)

    assert run(math.inf).diverged
    clipped = run(1.0)
    assert not clipped.diverged and clipped.val_accuracy[-1] > 0.5


@pytest.mark.parametrize("residual", [False, True])
def test_deep_tanh_weight_gradients_match_finite_differences(residual):
    from descent.ch10_clipping import deep_tanh_gradients, deep_tanh_loss

    kw = dict(depth=4, width=5, gain=1.5, residual=residual, batch=7, seed=2)
    norms = deep_tanh_gradients(**kw)
    h = 1e-6
    for layer in range(4):
        fd = np.empty((5, 5))
        for i in range(5):
            for j in range(5):
                e = np.zeros((5, 5)); e[i, j] = h
                fd[i, j] = (deep_tanh_loss(layer, delta=e, **kw) - deep_tanh_loss(layer, delta=-e, **kw)) / (2 * h)
        assert norms[1, layer] == pytest.approx(np.linalg.norm(fd), rel=1e-6)
    # Negative control: the finite differences of another layer's weights are a different norm.
    assert norms[1, 0] != pytest.approx(norms[1, 3], rel=1e-3)


def test_deep_tanh_signal_vanishes_and_residuals_keep_it():
    from descent.ch10_clipping import deep_tanh_gradients

    small = deep_tanh_gradients(depth=20, width=32, gain=0.5)
    res = deep_tanh_gradients(depth=20, width=32, gain=0.5, residual=True)
    assert small[0, 0] / small[0, -1] < 1e-4 and 0.5 < res[0, 0] / res[0, -1] < 2
