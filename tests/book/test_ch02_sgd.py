"""descent.ch02_sgd: the numbers chapter 2 computes, checked against closed forms."""

import itertools

import matplotlib.pyplot as plt
import numpy as np
import pytest

import optimkit
from optimkit import landscapes
from optimkit.digits import MLP, load_digits_split, train

from descent import ch02_sgd as ch02


@pytest.fixture(scope="module")
def data():
    return load_digits_split()


@pytest.mark.parametrize("kappa", [1.0, 7.5, 20.0, 100.0])
def test_critical_lr_is_two_over_the_largest_curvature(kappa):
    land = landscapes.ravine(kappa)
    edge = ch02.critical_lr(land)
    assert edge == pytest.approx(2 / (0.2 * kappa), rel=1e-15)
    np.testing.assert_allclose(ch02.gd_error_factors(land, 0.3), [1 - 0.3 * 0.2, 1 - 0.3 * 0.2 * kappa])
    below = landscapes.run(land, lambda p: optimkit.SGD(p, lr=0.99 * edge), steps=400)
    above = landscapes.run(land, lambda p: optimkit.SGD(p, lr=1.01 * edge), steps=400)
    start = np.linalg.norm(land.start)
    assert np.linalg.norm(below.points[-1]) < start < np.linalg.norm(above.points[-1])


def test_critical_lr_uses_the_hessian_eigenvalues_not_its_diagonal():
    land = landscapes.booth()  # Hessian [[10, 8], [8, 10]]: eigenvalues 2 and 18, diagonal 10
    assert ch02.critical_lr(land) == pytest.approx(2 / 18, rel=1e-14)
    np.testing.assert_allclose(ch02.gd_error_factors(land, 0.1), [1 - 0.2, 1 - 1.8], rtol=1e-14)


def test_gd_on_the_ravine_follows_the_factors_exactly_and_stalls_on_the_edge():
    land = landscapes.ravine()
    for lr in [0.1, 0.45, 0.55]:
        p = landscapes.run(land, lambda q: optimkit.SGD(q, lr=lr), steps=30).points
        np.testing.assert_allclose(p[1:] / p[:-1], np.broadcast_to(ch02.gd_error_factors(land, lr), (30, 2)),
                                   rtol=1e-14)
    edge = landscapes.run(land, lambda q: optimkit.SGD(q, lr=0.5), steps=6).points
    assert list(edge[:, 1]) == [2.0, -2.0, 2.0, -2.0, 2.0, -2.0, 2.0]  # factor exactly -1


def test_lr_knife_edge_figure_frames_and_verdicts():
    sf = ch02.lr_knife_edge_figure(landscapes.ravine(), [0.45, 0.5, 0.55], steps=30)
    assert sf.frame_count() == 3
    frames = sf.frames()
    assert len(set(frames.values())) == 3
    assert "so the run converges" in sf.alt_text({"lr": 0.45})
    assert "neither converges nor diverges" in sf.alt_text({"lr": 0.5})
    assert "so the run diverges" in sf.alt_text({"lr": 0.55})
    plt.close(sf.fig)


def test_loss_recorder_does_not_change_training(data):
    plain, recorded = MLP(seed=0), MLP(seed=0)
    train(plain, data, lambda p: optimkit.SGD(p, lr=0.1), epochs=2, batch_size=64)
    box = {}

    def make(params):
        box["rec"] = ch02.LossRecorder(optimkit.SGD(params, lr=0.1), recorded, data, at=[1, 5, 46])
        return box["rec"]

    train(recorded, data, make, epochs=2, batch_size=64)
    for a, b in zip(plain.params, recorded.params):
        assert np.array_equal(a, b)
    assert box["rec"].recorded_steps == [1, 5, 46]  # 1438 / 64 -> 23 steps per epoch, 46 in all
    assert box["rec"].recorded_losses[-1] == recorded.loss(data.X_train, data.y_train)


def test_batch_size_curves_count_samples_and_start_from_the_initial_loss(data):
    n = len(data.y_train)
    curves = ch02.batch_size_curves(data, {"full": (None, 3), "B = 100": (100, 30)}, lr=0.1, points=10,
                                 also_at=[7, 31])
    full, mini = curves["full"], curves["B = 100"]
    initial = MLP(seed=0).loss(data.X_train, data.y_train)
    assert full.loss[0] == mini.loss[0] == initial
    np.testing.assert_array_equal(full.samples, full.steps * n)
    # 15 steps per epoch: 14 batches of 100 and one of 38.
    expected = [0 if s == 0 else (s // 15) * n + (s % 15) * 100 for s in mini.steps]
    np.testing.assert_array_equal(mini.samples, expected)
    assert mini.steps[-1] == 30 and mini.loss[-1] < initial
    assert 7 in mini.steps and 31 not in mini.steps and list(full.steps) == [0, 1, 2, 3]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 6])
def test_noise_closed_form_equals_the_average_over_every_possible_batch(batch_size):
    G = np.random.default_rng(3).normal(size=(6, 4)) + [1.0, -2.0, 0.5, 0.0]
    g = G.mean(axis=0)
    exact = np.mean([np.sum((G[list(idx)].mean(axis=0) - g) ** 2)
                     for idx in itertools.combinations(range(6), batch_size)])
    assert ch02.minibatch_noise_closed_form(G, batch_size) == pytest.approx(exact, rel=1e-12, abs=1e-15)


def test_noise_closed_form_limits_and_noise_scale():
    G = np.random.default_rng(0).normal(size=(50, 7)) + 0.3
    g = G.mean(axis=0)
    sigma2 = np.mean(np.sum((G - g) ** 2, axis=1))
    assert ch02.minibatch_noise_closed_form(G, 1) == pytest.approx(sigma2, rel=1e-13)
    assert ch02.minibatch_noise_closed_form(G, 50) == 0.0
    assert ch02.noise_scale(G) == pytest.approx(sigma2 / (g @ g), rel=1e-13)
    with pytest.raises(ValueError, match="batch_size must be in"):
        ch02.minibatch_noise_closed_form(G, 51)


def test_minibatch_gradient_is_the_mean_of_per_sample_gradients(data):
    model = MLP(seed=1)
    X, y = data.X_train[:40], data.y_train[:40]
    G = ch02.per_sample_gradients(model, X, y)
    assert G.shape == (40, 64 * 32 + 32 + 32 * 10 + 10)
    idx = np.array([3, 17, 0, 39, 22])
    np.testing.assert_allclose(ch02.flat_grads(model.loss_and_grads(X[idx], y[idx])[1]),
                               G[idx].mean(axis=0), rtol=1e-12, atol=1e-15)


def test_measured_noise_agrees_with_the_closed_form(data):
    model = MLP(seed=0)
    X, y = data.X_train[:200], data.y_train[:200]
    G = ch02.per_sample_gradients(model, X, y)
    samples = ch02.minibatch_noise_samples(model, X, y, [1, 10, 100, 200], draws=300, seed=1)
    assert np.all(samples[200] < 1e-24)  # the full batch is exact
    for b in (1, 10, 100):
        v = samples[b]
        stderr = v.std(ddof=1) / np.sqrt(len(v))
        assert abs(v.mean() - ch02.minibatch_noise_closed_form(G, b)) < 5 * stderr
    means = ch02.minibatch_noise(model, X, y, [1, 10, 100, 200], draws=300, seed=1)
    assert means == {b: pytest.approx(v.mean(), rel=1e-15) for b, v in samples.items()}


def test_minibatch_cloud_full_batch_is_exactly_the_gradient(data):
    model = MLP(seed=0)
    X, y = data.X_train[:60], data.y_train[:60]
    sf = ch02.minibatch_cloud_figure(model, X, y, [1, 60], draws=20)
    assert sf.cosine[60] == pytest.approx(1.0, abs=1e-12) and sf.downhill[60] == 20
    assert sf.cosine[1] < sf.cosine[60]
    frames = sf.frames()
    assert len(set(frames.values())) == 2 and 'alt="Scatter of 20 minibatch gradients' in frames[(60,)]
    plt.close(sf.fig)


def test_live_mode_redraws_on_a_slider_move():
    sf = ch02.lr_knife_edge_figure(landscapes.ravine(), [0.1, 0.55], steps=10)
    box = sf.widget("live")
    (slider,), view = box.children[0].children, box.children[1]
    before = view.value
    slider.value = 0.55
    assert view.value != before and "so the run diverges" in view.value
