"""descent.ch08_warmup: the measurements behind chapter 8, checked against closed forms and
optimkit's torch-checked rules."""

import math

import numpy as np
import pytest

import optimkit
from optimkit import digits, rules
from optimkit import schedules as S

from descent import ch08_warmup as ch08


@pytest.fixture(scope="module")
def data():
    return digits.load_digits_split()


def test_v_hat_samples_use_adams_recurrence():
    ts = [1, 2, 7, 30]
    ours = ch08.v_hat_samples(ts, beta2=0.99, runs=5, seed=4)
    rng = np.random.default_rng(4)
    params, state = [np.zeros(5)], rules.adam_init([np.zeros(5)])
    for t in range(1, 31):
        params, state = rules.adam_update([rng.standard_normal(5)], state, params, lr=0.0,
                                          betas=(0.9, 0.99))
        if t in ts:
            np.testing.assert_allclose(ours[ts.index(t)], state.v[0] / (1 - 0.99**t), rtol=1e-13)
    with pytest.raises(ValueError, match="steps >= 1"):
        ch08.v_hat_samples([0, 3])


@pytest.mark.parametrize("beta2", [0.999, 0.9])
def test_v_hat_relative_std_formula(beta2):
    assert ch08.v_hat_relative_std(1, beta2) == pytest.approx(math.sqrt(2), rel=1e-12)
    for t in (2, 5, 40):
        w = (1 - beta2) * beta2 ** (t - np.arange(1, t + 1)) / (1 - beta2**t)
        assert w.sum() == pytest.approx(1.0)
        assert ch08.v_hat_relative_std(t, beta2) == pytest.approx(math.sqrt(2 * np.sum(w**2)), rel=1e-10)
    assert ch08.v_hat_relative_std(10**6, beta2) == pytest.approx(math.sqrt(2 * (1 - beta2) / (1 + beta2)))


def test_v_hat_relative_std_matches_simulation():
    ts = np.array([1, 3, 10, 100])
    v = ch08.v_hat_samples(ts, runs=40000, seed=1)
    np.testing.assert_allclose(v.std(axis=1) / v.mean(axis=1), ch08.v_hat_relative_std(ts), rtol=0.03)


def test_radam_rectifier_is_the_factor_radam_applies():
    assert all(math.isnan(ch08.radam_rectifier(t, 0.999)) for t in range(1, 6))
    assert ch08.radam_rectifier(6, 0.999) > 0
    rng = np.random.default_rng(0)
    params, state = [np.array([0.3, -1.0, 2.0])], rules.radam_init([np.zeros(3)])
    for t in range(1, 40):
        before = params[0].copy()
        params, state = rules.radam_update([rng.normal(size=3)], state, params, lr=0.01)
        m_hat = state.m[0] / (1 - 0.9**t)
        adaptive = math.sqrt(1 - 0.999**t) / (np.sqrt(state.v[0]) + 1e-8)
        r = ch08.radam_rectifier(t, 0.999)
        expected = before - 0.01 * m_hat * (1.0 if math.isnan(r) else r * adaptive)
        np.testing.assert_allclose(params[0], expected, rtol=1e-12)


def test_adam_first_step_is_a_sign_step(data):
    model = digits.MLP(seed=0)
    ratios, norms = ch08.adam_relative_steps(model, data, lr=1e-3, steps=20, seed=2)
    assert ratios.shape == (20, sum(p.size for p in model.params)) and norms.shape == (20,)
    # recompute the first minibatch's gradient: the first step is |g| / (|g| + eps) per entry
    idx = np.random.default_rng(2).choice(len(data.y_train), size=64, replace=False)
    _, grads = digits.MLP(seed=0).loss_and_grads(data.X_train[idx], data.y_train[idx])
    g = np.abs(np.concatenate([x.ravel() for x in grads]))
    np.testing.assert_allclose(ratios[0], g / (g + 1e-8), rtol=1e-6, atol=1e-12)
    assert norms[0] == pytest.approx(math.sqrt(np.sum(g**2)))
    assert np.median(ratios[-1]) < np.median(ratios[0])


def test_warmup_runs_match_digits_train(data):
    run = ch08.warmup_runs(data, 0.05, 3, steps=8, layer_sizes=(64, 16, 10), seed=1)
    hist = digits.train(digits.MLP((64, 16, 10), seed=1, activation="relu"), data,
                        lambda p: optimkit.Adam(p, lr=0.05), epochs=8, batch_size=None, seed=1,
                        schedule=S.warmup_cosine(0.05, 3, 8))
    np.testing.assert_allclose(run["train_loss"][:-1], hist.train_loss, rtol=1e-13)
    np.testing.assert_allclose(run["lr"], hist.lr)
    assert run["val_accuracy"] == hist.val_accuracy[-1]
    radam = ch08.warmup_runs(data, 0.05, 0, steps=8, layer_sizes=(64, 16, 10), seed=1, optimizer="RAdam")
    assert not np.allclose(radam["train_loss"], run["train_loss"])
    with pytest.raises(ValueError, match="'Adam' or 'RAdam'"):
        ch08.warmup_runs(data, 0.05, 0, steps=2, optimizer="SGD")


def test_warmup_prevents_the_collapse_the_chapter_shows(data):
    # chapter 8's headline, seed 0: no warmup spikes and collapses, 10 warmup steps train
    cold = ch08.warmup_runs(data, 0.2, 0, seed=0)
    warm = ch08.warmup_runs(data, 0.2, 10, seed=0)
    assert cold["train_loss"][1:].max() > 10 * warm["train_loss"][1:].max()
    assert cold["val_accuracy"] < 0.5 < 0.9 < warm["val_accuracy"]
    assert ch08.dead_units(cold["model"], data.X_train)[1] > 0.8


def test_dead_units():
    model = digits.MLP((3, 4, 2), seed=0, activation="relu")
    X = np.random.default_rng(0).normal(size=(50, 3))
    model.params[1][:2] = -100.0  # two units that can never fire
    assert ch08.dead_units(model, X) == [0.5]
    with pytest.raises(ValueError, match="ReLU"):
        ch08.dead_units(digits.MLP(seed=0), X)


def test_warmup_explorer_frames_and_results(data):
    sf = ch08.warmup_explorer(data, warmups=(0, 4), peak_lrs=(0.05,), steps=6, layer_sizes=(64, 8, 10))
    assert sf.frame_count() == 2
    r = sf.results[4, 0.05]
    assert r["peak_loss"] >= r["final_loss"] and 0 <= r["val_accuracy"] <= 1
    assert "4 warmup steps" in sf.alt_text({"warmup": 4, "peak_lr": 0.05})
    assert sf.frame(warmup=0, peak_lr=0.05) != sf.frame(warmup=4, peak_lr=0.05)


@pytest.mark.parametrize("pre_ln", [False, True])
def test_tiny_transformer_gradients_match_finite_differences(pre_ln):
    from descent.ch08_warmup import TinyTransformer

    model = TinyTransformer(vocab=5, n=4, d=6, layers=2, pre_ln=pre_ln, seed=1)
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 5, size=(3, 4))
    targets = tokens[:, ::-1].copy()
    _, grads = model.loss_and_grads(tokens, targets)
    h = 1e-6
    for p, g in zip(model.params, grads):
        assert g.shape == p.shape
        for _ in range(4):
            idx = tuple(int(rng.integers(0, s)) for s in p.shape)
            old = p[idx]
            p[idx] = old + h
            up, _ = model.loss_and_grads(tokens, targets)
            p[idx] = old - h
            down, _ = model.loss_and_grads(tokens, targets)
            p[idx] = old
            assert g[idx] == pytest.approx((up - down) / (2 * h), rel=1e-4, abs=1e-8)


def test_post_ln_gradients_grow_towards_the_output_and_pre_ln_do_not():
    from descent.ch08_warmup import block_gradient_norms

    post, pre = block_gradient_norms(pre_ln=False, seed=8), block_gradient_norms(pre_ln=True, seed=8)
    assert post[-1] > 1.5 * post[0] and pre[-1] < pre[0]   # Xiong et al. (2020): large near the output in Post-LN
    assert pre[-1] < post[-1]            # negative control: the other placement differs
