"""optimkit.swa_utils against torch.optim.swa_utils.

AveragedModel: torch's AveragedModel over a float64 ``nn.Linear`` and optimkit's over the list
``[W, b]`` see the same sequence of parameter values; the averaged parameters are compared after
every update. The default SWA average is the same operations as torch's CPU path (measured
difference 0); torch's ``lerp`` (EMA, and SWA through ``get_swa_multi_avg_fn``) fuses a
multiply-add, so those differ by at most an ulp or two (measured <= 2e-16 absolute on values of
order 1 over 1,000 updates): tolerance 1e-12 relative with a 1e-15 floor.

SWALR: every step's lr against torch's, 1,000 steps, after another scheduler has run.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler as tl
from torch.optim import swa_utils as tswa

import optimkit
from optimkit import lr_scheduler as ol
from optimkit import swa_utils as oswa

RTOL, ATOL = 1e-12, 1e-15


def parameter_sequence(n, seed=0):
    """n successive values of (W, b), drifting like iterates of a noisy optimizer."""
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(2, 3)), rng.normal(size=2)
    for _ in range(n):
        W, b = 0.99 * W + 0.1 * rng.normal(size=W.shape), 0.99 * b + 0.1 * rng.normal(size=b.shape)
        yield W, b


def run_both(torch_kwargs, ours_kwargs, n=1000, dtype=np.float64):
    """Both averages after each update: (torch's, ours, n_averaged pairs)."""
    linear = torch.nn.Linear(3, 2).to(torch.float64 if dtype == np.float64 else torch.float32)
    theirs = tswa.AveragedModel(linear, **torch_kwargs)
    model = [np.zeros((2, 3), dtype), np.zeros(2, dtype)]
    ours = oswa.AveragedModel(model, **ours_kwargs)
    want, got = [], []
    for W, b in parameter_sequence(n):
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(W))
            linear.bias.copy_(torch.tensor(b))
        model[0][...], model[1][...] = W, b
        theirs.update_parameters(linear)
        ours.update_parameters(model)
        want.append(np.concatenate([p.detach().numpy().ravel() for p in theirs.module.parameters()]))
        got.append(np.concatenate([p.ravel() for p in ours.module]))
        assert int(theirs.n_averaged) == ours.n_averaged
    return np.array(want), np.array(got)


AVERAGES = {
    "swa-default": ({}, {}),
    "ema-multi": (dict(multi_avg_fn=tswa.get_ema_multi_avg_fn(0.99)),
                  dict(multi_avg_fn=oswa.get_ema_multi_avg_fn(0.99))),
    "ema-multi-large-weight": (dict(multi_avg_fn=tswa.get_ema_multi_avg_fn(0.3)),
                               dict(multi_avg_fn=oswa.get_ema_multi_avg_fn(0.3))),
    "ema-single": (dict(avg_fn=tswa.get_ema_avg_fn(0.95)), dict(avg_fn=oswa.get_ema_avg_fn(0.95))),
    "swa-single": (dict(avg_fn=tswa.get_swa_avg_fn()), dict(avg_fn=oswa.get_swa_avg_fn())),
    "swa-multi": (dict(multi_avg_fn=tswa.get_swa_multi_avg_fn()), dict(multi_avg_fn=oswa.get_swa_multi_avg_fn())),
    "custom": (dict(avg_fn=lambda avg, cur, n: 0.1 * avg + 0.9 * cur),
               dict(avg_fn=lambda avg, cur, n: 0.1 * avg + 0.9 * cur)),
    "use_buffers": (dict(use_buffers=True), dict(use_buffers=True)),
}


@pytest.fixture
def float32_default():
    """torch's default dtype as torch ships it: get_swa_multi_avg_fn's weight 1/(n+1) has it."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize("name", list(AVERAGES))
def test_averaged_model_matches_torch(name, float32_default):
    want, got = run_both(*AVERAGES[name])
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)
    if name in ("swa-default", "swa-single", "ema-single", "custom", "use_buffers"):
        assert np.array_equal(got, want)  # the same operations: bit for bit


def test_averaged_model_float32_matches_torch():
    want, got = run_both({}, {}, n=300, dtype=np.float32)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_swa_is_the_mean_and_ema_the_recursion():
    seq = list(parameter_sequence(50))
    swa = oswa.AveragedModel([np.zeros((2, 3)), np.zeros(2)])
    ema = oswa.AveragedModel([np.zeros((2, 3)), np.zeros(2)], multi_avg_fn=oswa.get_ema_multi_avg_fn(0.9))
    expected_ema = None
    for W, b in seq:
        swa.update_parameters([W, b])
        ema.update_parameters([W, b])
        expected_ema = W if expected_ema is None else 0.9 * expected_ema + 0.1 * W
    np.testing.assert_allclose(swa.module[0], np.mean([W for W, _ in seq], axis=0), rtol=1e-12)
    np.testing.assert_allclose(ema.module[0], expected_ema, rtol=1e-12)


def test_negative_control_wrong_decay_fails():
    want, got = run_both(AVERAGES["ema-multi"][0], dict(multi_avg_fn=oswa.get_ema_multi_avg_fn(0.99 + 1e-9)))
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


def test_averaged_model_copies_and_never_aliases():
    W = np.ones((2, 2))
    avg = oswa.AveragedModel([W])
    assert avg.module[0] is not W and avg.n_averaged == 0 and avg.parameters() is avg.module
    avg.update_parameters([W])
    W += 1  # the model moves on; the average does not follow
    assert np.all(avg.module[0] == 1)


def test_averaged_model_state_dict_round_trip():
    seq = list(parameter_sequence(40))
    make = lambda: oswa.AveragedModel([np.zeros((2, 3)), np.zeros(2)])  # noqa: E731
    whole = make()
    for W, b in seq:
        whole.update_parameters([W, b])
    first = make()
    for W, b in seq[:17]:
        first.update_parameters([W, b])
    resumed = make()
    resumed.load_state_dict(first.state_dict())
    for W, b in seq[17:]:
        resumed.update_parameters([W, b])
    assert resumed.n_averaged == whole.n_averaged == 40
    assert all(np.array_equal(a, b) for a, b in zip(resumed.module, whole.module))


@pytest.mark.parametrize("call, error, match", [
    (lambda: oswa.AveragedModel([np.zeros(2)], avg_fn=oswa.get_swa_avg_fn(),
                                multi_avg_fn=oswa.get_swa_multi_avg_fn()), ValueError, "Only one of"),
    (lambda: oswa.AveragedModel(np.zeros(2)), TypeError, "single array"),
    (lambda: oswa.AveragedModel([np.zeros(2)], device="cuda"), ValueError, "^device must be None"),
    (lambda: oswa.AveragedModel([np.zeros(2)], avg_fn=0.5), TypeError, "^avg_fn must be a function"),
    (lambda: oswa.AveragedModel([np.zeros(2)]).update_parameters([np.zeros(3)]), ValueError,
     r"^model\[0\] has shape \(3,\), the averaged parameter \(2,\)"),
    (lambda: oswa.AveragedModel([np.zeros(2)]).update_parameters([]), ValueError, "^model has 0 arrays"),
    (lambda: oswa.get_ema_multi_avg_fn(1.5), ValueError, r"^decay must be in \[0, 1\], got 1.5"),
    (lambda: oswa.get_ema_avg_fn(-0.1), ValueError, r"^decay must be in \[0, 1\]"),
    (lambda: oswa.AveragedModel([np.zeros(2)]).load_state_dict({"module": [np.zeros(2)]}), ValueError,
     "n_averaged"),
])
def test_bad_arguments(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_torch_refuses_the_same_decays():
    for decay in (1.5, -0.1):
        with pytest.raises(ValueError):
            tswa.get_ema_multi_avg_fn(decay)


# --- SWALR -----------------------------------------------------------------------------------


def swalr_lrs(lib, swa_kwargs, switch=100, n=1000, groups=False):
    """Every step's lrs: MultiplicativeLR until ``switch``, then SWALR (torch's recipe)."""
    if lib == "torch":
        params = [torch.zeros(2, dtype=torch.float64, requires_grad=True) for _ in range(2)]
        opt_cls, sched, swa = torch.optim.SGD, tl, tswa
    else:
        params = [np.zeros(2) for _ in range(2)]
        opt_cls, sched, swa = optimkit.SGD, ol, oswa
    spec = [{"params": params[:1]}, {"params": params[1:], "lr": 0.3}] if groups else params
    opt = opt_cls(spec, lr=0.1, momentum=0.9)
    before = sched.MultiplicativeLR(opt, lambda epoch: 0.99)
    after = swa.SWALR(opt, **swa_kwargs)
    out = []
    for k in range(n):
        out.append([g["lr"] for g in opt.param_groups])
        opt.step() if lib == "torch" else opt.step([np.ones(2)] * 2)
        (before if k < switch else after).step()
    return np.array(out), after


@pytest.mark.parametrize("kwargs", [
    dict(swa_lr=0.01),
    dict(swa_lr=0.05, anneal_epochs=300, anneal_strategy="linear"),
    dict(swa_lr=0.2, anneal_epochs=0),
    dict(swa_lr=0.02, anneal_epochs=1),
    dict(swa_lr=0.5, anneal_epochs=25, anneal_strategy="cos"),
])
def test_swalr_matches_torch(kwargs):
    want, theirs = swalr_lrs("torch", kwargs)
    got, ours = swalr_lrs("optimkit", kwargs)
    assert np.array_equal(got, want)  # 1,000 steps, bit for bit
    assert got[-1, 0] == kwargs["swa_lr"]
    assert set(ours.state_dict()) == set(theirs.state_dict())


def test_swalr_per_group_matches_torch():
    kwargs = dict(swa_lr=[0.01, 0.02], anneal_epochs=40, anneal_strategy="linear")
    want, _ = swalr_lrs("torch", kwargs, groups=True)
    got, _ = swalr_lrs("optimkit", kwargs, groups=True)
    assert np.array_equal(got, want) and list(got[-1]) == [0.01, 0.02]


def test_swalr_anneals_as_the_formula_says():
    # torch's own test: after the switch, lr = start * a(t) + swa_lr * (1 - a(t)).
    lrs, _ = swalr_lrs("optimkit", dict(swa_lr=0.01, anneal_epochs=5), switch=5, n=15)
    start = 0.1 * 0.99 ** 5

    def coef(t):
        return 0.0 if t + 1 >= 5 else (1 + math.cos(math.pi * (t + 1) / 5)) / 2

    np.testing.assert_allclose(lrs[6:, 0], [start * coef(t) + 0.01 * (1 - coef(t)) for t in range(9)], rtol=1e-12)


def test_swalr_state_dict_round_trip_is_bit_exact():
    kwargs = dict(swa_lr=0.05, anneal_epochs=30)
    whole, _ = swalr_lrs("optimkit", kwargs, switch=0, n=60)
    opt = optimkit.SGD([np.zeros(2)], lr=0.1)
    sched = oswa.SWALR(opt, **kwargs)
    got = []
    for _ in range(20):
        got.append(opt.param_groups[0]["lr"])
        sched.step()
    saved_opt, saved = opt.state_dict(), copy.deepcopy(sched.state_dict())
    opt2 = optimkit.SGD([np.zeros(2)], lr=0.7)
    sched2 = oswa.SWALR(opt2, swa_lr=1.0, anneal_strategy="linear")
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved)
    for _ in range(40):
        got.append(opt2.param_groups[0]["lr"])
        sched2.step()
    assert got == list(whole[:, 0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(anneal_strategy="exponential", swa_lr=1.0), "anneal_strategy must"),
    (dict(anneal_epochs=-1, swa_lr=1.0), "anneal_epochs must"),
    (dict(anneal_epochs=1.7, swa_lr=1.0), "anneal_epochs must"),
    (dict(swa_lr=[1.0, 0.1, 0.01]), "swa_lr must"),
])
def test_swalr_bad_arguments_like_torch(kwargs, match):
    with pytest.raises(ValueError, match=match):  # torch's messages begin the same way
        tswa.SWALR(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), **kwargs)
    opt = optimkit.SGD([np.zeros(1)], lr=0.1)
    with pytest.raises(ValueError, match=match):
        oswa.SWALR(opt, **kwargs)
    assert "swa_lr" not in opt.param_groups[0]  # refused before touching the optimizer


def test_full_swa_recipe_matches_torch():
    # Train a least-squares model with SGD + CosineAnnealingLR, then SWALR and an AveragedModel
    # from epoch 30: the averaged weights at the end agree with torch's recipe.
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(64, 3)), rng.normal(size=64)

    def grad(w, k):
        rows = slice((8 * k) % 64, (8 * k) % 64 + 8)  # minibatches of 8
        return 2 * X[rows].T @ (X[rows] @ w - y[rows]) / 8

    results = []
    for lib in ("torch", "optimkit"):
        if lib == "torch":
            w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
            model = torch.nn.Module()
            model.w = torch.nn.Parameter(w)
            opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
            sched, swa_sched = tl.CosineAnnealingLR(opt, 30), tswa.SWALR(opt, swa_lr=0.01, anneal_epochs=5)
            avg = tswa.AveragedModel(model)
        else:
            w = np.zeros(3)
            opt = optimkit.SGD([w], lr=0.05, momentum=0.9)
            sched, swa_sched = ol.CosineAnnealingLR(opt, 30), oswa.SWALR(opt, swa_lr=0.01, anneal_epochs=5)
            avg = oswa.AveragedModel([w])
        for epoch in range(60):
            for k in range(8):
                if lib == "torch":
                    model.w.grad = torch.tensor(grad(model.w.detach().numpy(), k))
                    opt.step()
                else:
                    opt.step([grad(w, k)])
            if epoch >= 30:
                avg.update_parameters(model if lib == "torch" else [w])
                swa_sched.step()
            else:
                sched.step()
        final = next(avg.module.parameters()).detach().numpy() if lib == "torch" else avg.module[0]
        results.append(final.copy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-10, atol=1e-14)
