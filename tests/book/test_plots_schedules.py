"""optimkit.plots.schedules: the measurements behind chapters 7 (schedules) and 8 (warmup),
checked against torch, closed forms and optimkit's torch-checked rules."""

import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tls

import optimkit
from optimkit import digits, landscapes, rules
from optimkit import schedules as S
from optimkit.interactive import SliderFigure
from optimkit.plots import schedules as P


@pytest.fixture(scope="module")
def data():
    return digits.load_digits_split()


def torch_lrs(make, lr, n):
    """lr used at optimizer steps 0..n-1 by the torch scheduler ``make(opt)``."""
    opt = torch.optim.SGD([torch.zeros(1, dtype=torch.float64, requires_grad=True)], lr=lr)
    sched = make(opt)
    out = [opt.param_groups[0]["lr"]]
    for _ in range(n - 1):
        opt.step()
        sched.step()
        out.append(opt.param_groups[0]["lr"])
    return np.array(out)


# --- past the end of a cosine -------------------------------------------------------------------

@pytest.mark.parametrize("lr, T, eta_min",
                         [(0.1, 100, 0.0), (2.0, 115, 0.0), (1.0, 37, 1e-3), (0.05, 7, 0.01)])
def test_torch_cosine_transcription_matches_torch_past_the_end(lr, T, eta_min):
    expected = torch_lrs(lambda o: tls.CosineAnnealingLR(o, T, eta_min), lr, 5 * T)
    ours = P.torch_cosine_annealing_lrs(lr, T, eta_min, steps=5 * T)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-15)
    # and it does climb back (what the chapter shows), unlike optimkit's clamped cosine
    assert ours[2 * T] == pytest.approx(lr, rel=1e-9)
    assert S.cosine(lr, T, eta_min)(2 * T) == eta_min


def test_schedule_values_and_family_schedules_peak_at_the_peak():
    T = 90
    for family in P.FAMILIES:
        values = P.schedule_values(P.family_schedule(family, 0.5, T), T)
        assert values.shape == (T,)
        assert values.max() == pytest.approx(0.5, rel=1e-12), family
    assert P.schedule_values(P.family_schedule("step", 1.0, T), T)[[0, 29, 30, 60]].tolist() == \
        pytest.approx([1.0, 1.0, 0.2, 0.04])
    assert P.family_schedule("exponential", 1.0, T)(T) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="family must be one of"):
        P.family_schedule("linear", 1.0, T)


# --- the noise floor ------------------------------------------------------------------------------

def test_noise_floor_formula_for_one_coordinate():
    # eta sigma^2 / (2 (2 - eta lambda)) by hand
    assert P.noise_floor(0.2, (4.0,), 1.0) == pytest.approx(0.2 / (2 * 1.2))
    assert P.noise_floor(0.1, (0.2, 4.0), 2.0) == pytest.approx(0.1 * 4 / (2 * 1.98) + 0.1 * 4 / (2 * 1.6))
    with pytest.raises(ValueError, match="0 < lr\\*curvature < 2"):
        P.noise_floor(0.5, (4.0,), 1.0)


@pytest.mark.parametrize("lr", [0.2, 0.05])
def test_noisy_sgd_settles_on_the_predicted_floor(lr):
    ravine = landscapes.ravine(20.0)
    losses = P.noisy_sgd_losses(ravine, S.constant(lr), 2500, 1.0, runs=2000, seed=3)
    assert losses[0] == pytest.approx(ravine(ravine.start))
    assert losses[-1000:].mean() == pytest.approx(P.noise_floor(lr, (0.2, 4.0), 1.0), rel=0.04)


def test_noisy_sgd_without_noise_is_plain_gradient_descent():
    ravine = landscapes.ravine(20.0)
    losses = P.noisy_sgd_losses(ravine, S.constant(0.1), 50, 0.0, runs=3)
    gd = landscapes.run(ravine, lambda p: optimkit.SGD(p, lr=0.1), steps=50)
    np.testing.assert_allclose(losses, gd.losses, rtol=1e-12)


def test_running_mean():
    np.testing.assert_allclose(P.running_mean([1, 2, 3, 4, 5], 2), [1, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(P.running_mean([4.0, 0.0, 2.0], 10), [4.0, 2.0, 2.0])


# --- Adam's second moment and RAdam ------------------------------------------------------------------

def test_v_hat_samples_use_adams_recurrence():
    ts = [1, 2, 7, 30]
    ours = P.v_hat_samples(ts, beta2=0.99, runs=5, seed=4)
    rng = np.random.default_rng(4)
    params, state = [np.zeros(5)], rules.adam_init([np.zeros(5)])
    for t in range(1, 31):
        params, state = rules.adam_update([rng.standard_normal(5)], state, params, lr=0.0,
                                          betas=(0.9, 0.99))
        if t in ts:
            np.testing.assert_allclose(ours[ts.index(t)], state.v[0] / (1 - 0.99**t), rtol=1e-13)
    with pytest.raises(ValueError, match="steps >= 1"):
        P.v_hat_samples([0, 3])


@pytest.mark.parametrize("beta2", [0.999, 0.9])
def test_v_hat_relative_std_formula(beta2):
    assert P.v_hat_relative_std(1, beta2) == pytest.approx(math.sqrt(2), rel=1e-12)
    for t in (2, 5, 40):
        w = (1 - beta2) * beta2 ** (t - np.arange(1, t + 1)) / (1 - beta2**t)
        assert w.sum() == pytest.approx(1.0)
        assert P.v_hat_relative_std(t, beta2) == pytest.approx(math.sqrt(2 * np.sum(w**2)), rel=1e-10)
    assert P.v_hat_relative_std(10**6, beta2) == pytest.approx(math.sqrt(2 * (1 - beta2) / (1 + beta2)))


def test_v_hat_relative_std_matches_simulation():
    ts = np.array([1, 3, 10, 100])
    v = P.v_hat_samples(ts, runs=40000, seed=1)
    np.testing.assert_allclose(v.std(axis=1) / v.mean(axis=1), P.v_hat_relative_std(ts), rtol=0.03)


def test_radam_rectifier_is_the_factor_radam_applies():
    assert all(math.isnan(P.radam_rectifier(t, 0.999)) for t in range(1, 6))
    assert P.radam_rectifier(6, 0.999) > 0
    rng = np.random.default_rng(0)
    params, state = [np.array([0.3, -1.0, 2.0])], rules.radam_init([np.zeros(3)])
    for t in range(1, 40):
        before = params[0].copy()
        params, state = rules.radam_update([rng.normal(size=3)], state, params, lr=0.01)
        m_hat = state.m[0] / (1 - 0.9**t)
        adaptive = math.sqrt(1 - 0.999**t) / (np.sqrt(state.v[0]) + 1e-8)
        r = P.radam_rectifier(t, 0.999)
        expected = before - 0.01 * m_hat * (1.0 if math.isnan(r) else r * adaptive)
        np.testing.assert_allclose(params[0], expected, rtol=1e-12)


def test_adam_first_step_is_a_sign_step(data):
    model = digits.MLP(seed=0)
    ratios, norms = P.adam_relative_steps(model, data, lr=1e-3, steps=20, seed=2)
    assert ratios.shape == (20, sum(p.size for p in model.params)) and norms.shape == (20,)
    # recompute the first minibatch's gradient: the first step is |g| / (|g| + eps) per entry
    idx = np.random.default_rng(2).choice(len(data.y_train), size=64, replace=False)
    _, grads = digits.MLP(seed=0).loss_and_grads(data.X_train[idx], data.y_train[idx])
    g = np.abs(np.concatenate([x.ravel() for x in grads]))
    np.testing.assert_allclose(ratios[0], g / (g + 1e-8), rtol=1e-6, atol=1e-12)
    assert norms[0] == pytest.approx(math.sqrt(np.sum(g**2)))
    assert np.median(ratios[-1]) < np.median(ratios[0])


# --- digits runs --------------------------------------------------------------------------------------

def test_warmup_runs_match_digits_train(data):
    run = P.warmup_runs(data, 0.05, 3, steps=8, layer_sizes=(64, 16, 10), seed=1)
    hist = digits.train(digits.MLP((64, 16, 10), seed=1, activation="relu"), data,
                        lambda p: optimkit.Adam(p, lr=0.05), epochs=8, batch_size=None, seed=1,
                        schedule=S.warmup_cosine(0.05, 3, 8))
    np.testing.assert_allclose(run["train_loss"][:-1], hist.train_loss, rtol=1e-13)
    np.testing.assert_allclose(run["lr"], hist.lr)
    assert run["val_accuracy"] == hist.val_accuracy[-1]
    radam = P.warmup_runs(data, 0.05, 0, steps=8, layer_sizes=(64, 16, 10), seed=1, optimizer="RAdam")
    assert not np.allclose(radam["train_loss"], run["train_loss"])
    with pytest.raises(ValueError, match="'Adam' or 'RAdam'"):
        P.warmup_runs(data, 0.05, 0, steps=2, optimizer="SGD")


def test_warmup_prevents_the_collapse_the_chapter_shows(data):
    # chapter 8's headline, seed 0: no warmup spikes and collapses, 10 warmup steps train
    cold = P.warmup_runs(data, 0.2, 0, seed=0)
    warm = P.warmup_runs(data, 0.2, 10, seed=0)
    assert cold["train_loss"][1:].max() > 10 * warm["train_loss"][1:].max()
    assert cold["val_accuracy"] < 0.5 < 0.9 < warm["val_accuracy"]
    assert P.dead_units(cold["model"], data.X_train)[1] > 0.8


def test_dead_units():
    model = digits.MLP((3, 4, 2), seed=0, activation="relu")
    X = np.random.default_rng(0).normal(size=(50, 3))
    model.params[1][:2] = -100.0  # two units that can never fire
    assert P.dead_units(model, X) == [0.5]
    with pytest.raises(ValueError, match="ReLU"):
        P.dead_units(digits.MLP(seed=0), X)


def test_schedule_explorer_frames_and_results(data):
    sf = P.schedule_explorer(data, ("constant", "cosine"), (0.1, 1.0), epochs=1, batch_size=256)
    assert isinstance(sf, SliderFigure) and sf.frame_count() == 4
    assert set(sf.results) == {("constant", 0.1), ("constant", 1.0), ("cosine", 0.1), ("cosine", 1.0)}
    # the recorded objective is the full-batch objective of a run we can redo by hand
    model = digits.MLP(seed=0)
    digits.train(model, data, lambda p: optimkit.SGD(p, lr=1.0), epochs=1, batch_size=256, seed=0,
                 schedule=S.cosine(1.0, sf.total_steps), weight_decay_l2=1e-2)
    assert sf.results["cosine", 1.0]["objective"] == pytest.approx(
        model.loss_and_grads(data.X_train, data.y_train, l2=1e-2)[0], rel=1e-12)
    alt = sf._alt({"schedule": "cosine", "peak_lr": 1.0})
    assert "cosine" in alt and f"{sf.results['cosine', 1.0]['objective']:.4f}" in alt
    frames = {sf.frame(schedule=s, peak_lr=p) for s in ("constant", "cosine") for p in (0.1, 1.0)}
    assert len(frames) == 4


def test_warmup_explorer_frames_and_results(data):
    sf = P.warmup_explorer(data, warmups=(0, 4), peak_lrs=(0.05,), steps=6, layer_sizes=(64, 8, 10))
    assert sf.frame_count() == 2
    r = sf.results[4, 0.05]
    assert r["peak_loss"] >= r["final_loss"] and 0 <= r["val_accuracy"] <= 1
    assert "4 warmup steps" in sf._alt({"warmup": 4, "peak_lr": 0.05})
    assert sf.frame(warmup=0, peak_lr=0.05) != sf.frame(warmup=4, peak_lr=0.05)
