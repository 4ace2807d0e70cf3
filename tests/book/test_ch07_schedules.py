"""descent.ch07_schedules: the measurements behind chapter 7, checked against torch, closed
forms and optimkit's torch-checked schedules."""

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tls

import optimkit
from optimkit import digits, landscapes
from optimkit import schedules as S

from descent.sliders import SliderFigure
from descent import ch07_schedules as ch07


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


@pytest.mark.parametrize("lr, T, eta_min",
                         [(0.1, 100, 0.0), (2.0, 115, 0.0), (1.0, 37, 1e-3), (0.05, 7, 0.01)])
def test_torch_cosine_transcription_matches_torch_past_the_end(lr, T, eta_min):
    expected = torch_lrs(lambda o: tls.CosineAnnealingLR(o, T, eta_min), lr, 5 * T)
    ours = ch07.torch_cosine_annealing_lrs(lr, T, eta_min, steps=5 * T)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-15)
    # and it does climb back (what the chapter shows), unlike optimkit's clamped cosine
    assert ours[2 * T] == pytest.approx(lr, rel=1e-9)
    assert S.cosine(lr, T, eta_min)(2 * T) == eta_min


def test_schedule_values_and_family_schedules_peak_at_the_peak():
    T = 90
    for family in ch07.FAMILIES:
        values = ch07.schedule_values(ch07.family_schedule(family, 0.5, T), T)
        assert values.shape == (T,)
        assert values.max() == pytest.approx(0.5, rel=1e-12), family
    assert ch07.schedule_values(ch07.family_schedule("step", 1.0, T), T)[[0, 29, 30, 60]].tolist() == \
        pytest.approx([1.0, 1.0, 0.2, 0.04])
    assert ch07.family_schedule("exponential", 1.0, T)(T) == pytest.approx(0.01)
    with pytest.raises(ValueError, match="family must be one of"):
        ch07.family_schedule("linear", 1.0, T)


def test_noise_floor_formula_for_one_coordinate():
    # eta sigma^2 / (2 (2 - eta lambda)) by hand
    assert ch07.noise_floor(0.2, (4.0,), 1.0) == pytest.approx(0.2 / (2 * 1.2))
    assert ch07.noise_floor(0.1, (0.2, 4.0), 2.0) == pytest.approx(0.1 * 4 / (2 * 1.98) + 0.1 * 4 / (2 * 1.6))
    with pytest.raises(ValueError, match="0 < lr\\*curvature < 2"):
        ch07.noise_floor(0.5, (4.0,), 1.0)


@pytest.mark.parametrize("lr", [0.2, 0.05])
def test_noisy_sgd_settles_on_the_predicted_floor(lr):
    ravine = landscapes.ravine(20.0)
    losses = ch07.noisy_sgd_losses(ravine, S.constant(lr), 2500, 1.0, runs=2000, seed=3)
    assert losses[0] == pytest.approx(ravine(ravine.start))
    assert losses[-1000:].mean() == pytest.approx(ch07.noise_floor(lr, (0.2, 4.0), 1.0), rel=0.04)


def test_noisy_sgd_without_noise_is_plain_gradient_descent():
    ravine = landscapes.ravine(20.0)
    losses = ch07.noisy_sgd_losses(ravine, S.constant(0.1), 50, 0.0, runs=3)
    gd = landscapes.run(ravine, lambda p: optimkit.SGD(p, lr=0.1), steps=50)
    np.testing.assert_allclose(losses, gd.losses, rtol=1e-12)


def test_running_mean():
    np.testing.assert_allclose(ch07.running_mean([1, 2, 3, 4, 5], 2), [1, 1.5, 2.5, 3.5, 4.5])
    np.testing.assert_allclose(ch07.running_mean([4.0, 0.0, 2.0], 10), [4.0, 2.0, 2.0])


def test_schedule_explorer_frames_and_results(data):
    sf = ch07.schedule_explorer(data, ("constant", "cosine"), (0.1, 1.0), epochs=1, batch_size=256)
    assert isinstance(sf, SliderFigure) and sf.frame_count() == 4
    assert set(sf.results) == {("constant", 0.1), ("constant", 1.0), ("cosine", 0.1), ("cosine", 1.0)}
    # the recorded objective is the full-batch objective of a run we can redo by hand
    model = digits.MLP(seed=0)
    digits.train(model, data, lambda p: optimkit.SGD(p, lr=1.0), epochs=1, batch_size=256, seed=0,
                 schedule=S.cosine(1.0, sf.total_steps), weight_decay_l2=1e-2)
    assert sf.results["cosine", 1.0]["objective"] == pytest.approx(
        model.loss_and_grads(data.X_train, data.y_train, l2=1e-2)[0], rel=1e-12)
    alt = sf.alt_text({"schedule": "cosine", "peak_lr": 1.0})
    assert "cosine" in alt and f"{sf.results['cosine', 1.0]['objective']:.4f}" in alt
    frames = {sf.frame(schedule=s, peak_lr=p) for s in ("constant", "cosine") for p in (0.1, 1.0)}
    assert len(frames) == 4
