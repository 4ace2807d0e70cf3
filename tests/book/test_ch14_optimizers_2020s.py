"""descent.ch14_optimizers_2020s: chapter 14's drivers and figures, checked against closed forms
and the claims the chapter's prose makes (the kernels themselves: tests/core/test_muon.py,
tests/core/test_beyond_2020s.py, and torch's Adafactor in tests/core/test_optim_vs_torch.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import optimkit
from optimkit import digits, landscapes, rules

from descent import ch14_optimizers_2020s as C


@pytest.fixture(scope="module")
def data():
    return digits.load_digits_split()


def test_newton_schulz_maps_each_singular_value_through_the_scalar_polynomial():
    """X X^T X keeps the singular vectors: k steps on the matrix are k steps of the scalar map
    on each normalised singular value (float64 path; the negative control: the identity map)."""
    G = np.random.default_rng(0).normal(size=(9, 5))
    s = np.linalg.svd(G, compute_uv=False) / np.linalg.norm(G)
    for k in range(6):
        np.testing.assert_allclose(np.sort(C.singular_values_after(G, k)), np.sort(C.ns_scalar(s, k)),
                                   rtol=1e-10)  # the map is not monotone: compare sorted
    assert not np.allclose(C.singular_values_after(G, 3), s, rtol=1e-2)


def test_ns_figure_frames_differ_and_describe_themselves():
    G = np.random.default_rng(1).normal(size=(12, 6))
    fig = C.ns_figure(G, max_steps=3)
    assert fig.frame_count() == 4
    assert fig.frame(k=0) != fig.frame(k=3)
    assert "After 3 Newton-Schulz steps" in fig.alt_text({"k": 3})


def test_muon_on_a_point_is_normalised_momentum():
    point = np.array([3.0, -4.0])
    opt = C.PointMuon([point], lr=0.1, weight_decay=0.0)
    opt.step([np.array([3.0, -4.0])])
    step = np.array([3.0, -4.0]) - point
    # one row: NS divides by the norm, then scales the single singular value into the band
    assert 0.68 * 0.1 <= np.linalg.norm(step) <= 1.21 * 0.1
    np.testing.assert_allclose(step / np.linalg.norm(step), [0.6, -0.8], atol=1e-2)  # bfloat16
    opt.lr = 0.05
    assert opt.optimizer.lr == 0.05


def test_muon_with_adamw_splits_the_parameters_as_torch_advises():
    model = digits.MLP((64, 32, 16, 10), seed=0)
    opt = C.MuonWithAdamW(model.params, lr=0.02, adamw_lr=2e-3)
    W1, b1, W2, b2, W3, b3 = model.params
    assert [p is q for p, q in zip(opt.muon.params, [W1, W2])] == [True, True]
    assert len(opt.adamw.params) == 4 and any(p is W3 for p in opt.adamw.params)  # output layer
    opt.lr = 0.01
    assert opt.adamw.lr == pytest.approx(1e-3)


def test_wsd_is_warmup_plateau_and_linear_decay_to_zero():
    total, warmup = 100, 10
    lrs = C.lrs_of(lambda o: C.wsd_scheduler(o, warmup, total, 0.2), total)
    decay_start = total - 20
    expected = [1e-2 + (1 - 1e-2) * k / warmup if k < warmup else
                1.0 if k < decay_start else 1 - (k - decay_start) / 20 for k in range(total)]
    np.testing.assert_allclose(lrs, expected, atol=1e-12)
    cosine = C.lrs_of(lambda o: C.cosine_scheduler(o, warmup, total), total)
    k = np.arange(warmup, total)
    np.testing.assert_allclose(cosine[warmup:], 0.5 * (1 + np.cos(np.pi * (k - warmup) / (total - warmup))),
                               atol=1e-12)


def test_spike_step_follows_the_second_moment():
    """Closed form: after n quiet steps of size q (random signs) v = q^2 (1 - beta2^n), so the
    spike's step is ~ m / sqrt(v) with m ~ (1 - beta1) and v ~ beta2 q^2 + (1 - beta2)."""
    for beta2 in (0.95, 0.999):
        v = (0.001 ** 2 * (1 - beta2 ** 1000) * beta2 + (1 - beta2)) / (1 - beta2 ** 1001)
        rough = 0.1 / (1 - 0.9 ** 1001) / math.sqrt(v)
        assert C.spike_step(beta2) == pytest.approx(rough, rel=0.05)
    assert C.spike_step(0.999) > 5 * C.spike_step(0.95)  # the chapter's claim


def test_memory_rows_count_the_state_each_optimizer_keeps():
    m, n = 40, 24
    rows = {r[0]: r for r in C.memory_rows((m, n), params_billion=1.0)}
    expected = {"SGD with momentum": 1, "AdamW": 2, "Adafactor": (m + n) / (m * n), "Lion": 1,
                "Muon": 1, "Schedule-free AdamW": 2, "Shampoo": (m * m + n * n) / (m * n)}
    for label, floats in expected.items():
        assert rows[label][1] == pytest.approx(floats)
        assert rows[label][3] == pytest.approx(8 + 4 * floats)
        assert rows[label][4] == pytest.approx((8 + 4 * floats) * 1e9 / 2 ** 30)
    assert rows["AdamW, 8-bit states"][2] == pytest.approx(2 + 8 / 2048)


def test_the_chapters_claims_on_averaging_and_schedules(data):
    avg = C.averaged_losses(landscapes.ravine())
    assert avg["EMA"] < avg["last iterate"] and avg["SWA"] < avg["last iterate"]
    T = lambda make: C.train_with_schedule(data, make, lr=1e-2)  # noqa: E731
    wsd = T(lambda o, n: C.wsd_scheduler(o, 20, n, 0.2))
    cosine = T(lambda o, n: C.cosine_scheduler(o, 20, n))
    assert wsd < cosine  # the prose explains why the plateau wins here


def test_every_method_trains_the_digits_mlp(data):
    race = C.digits_race(data, epochs=3)
    for label, (history, acc, loss) in race.items():
        assert not history.diverged and acc > 0.8, (label, acc)
    control = C.train_digits(lambda p: optimkit.SGD(p, lr=0.0), data, epochs=1)
    assert control[1] < 0.5  # a method that does not move cannot pass the same bar


def test_landscape_race_runs_every_entrant_and_keys_are_glue_names():
    runs = C.landscape_race(landscapes.ravine(), steps=50)
    assert set(runs) == set(C.landscape_entrants())
    assert all(not t.diverged for t in runs.values())
    assert C.key("Schedule-free AdamW") == "schedule_free_adamw"
    assert C.key("Muon + AdamW") == "muon_adamw"


def test_lion_steps_have_length_lr_per_coordinate():
    point = np.array([1.0, 2.0])
    opt = C.landscape_entrants({"Lion": 0.03})["Lion"]([point])
    opt.step([np.array([0.5, -2.0])])
    np.testing.assert_allclose(point, [1.0 - 0.03, 2.0 + 0.03])
    assert rules.MUON_COEFFICIENTS == (3.4445, -4.7750, 2.0315)
