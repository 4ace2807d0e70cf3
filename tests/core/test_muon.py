"""Muon against torch.optim.Muon as torch really computes it: Newton-Schulz in bfloat16.

torch 2.13's Muon casts the (momentum) matrix to bfloat16 before Newton-Schulz, on the CPU
and for float64 parameters too, and adds the bfloat16 result to the parameter. optimkit
emulates that (``rules.round_bfloat16`` after every operation). bfloat16 keeps 8 significant
bits: a result is rounded to a multiple of 2^-8 of its magnitude's power of two. The
emulation multiplies bfloat16 inputs in float64, torch accumulates in float32 in its own
order, so a sum lying within float32 rounding of a bfloat16 tie rounds the other way (one
bfloat16 ulp) and the later iterations carry it. Tolerance: 8 units of 2^-8 max|O| on the
orthogonalised matrix O (the measured worst over 300 random matrices up to 47 x 47, scales
1e-3 to 1e3, is 4.5); and most elements must agree *exactly* (measured: 98 %), which the
float64 path (no emulation) never does: that is the negative control showing the emulation is
torch's arithmetic, not a loose tolerance. The float64 path itself is compared with torch's own
code, its cast removed, at 1e-9 in tests/core/test_optim_vs_torch.py (torch's configurations).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from test_optim_vs_torch import config, gradients, random_problem, to_numpy, torch_configurations
from torch.optim._muon import _zeropower_via_newtonschulz as torch_newton_schulz

import optimkit
from optimkit import rules

BF16_UNIT = 2.0 ** -8
TOLERANCE = 8 * BF16_UNIT  # x max|O|
A, B, C = rules.MUON_COEFFICIENTS


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """torch's bfloat16 matmul on a busy 2-core machine: 10-20 ms a call on two threads, 0.6 ms
    on one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def torch_ns(G, coefficients=rules.MUON_COEFFICIENTS, steps=5, eps=1e-7):
    return torch_newton_schulz(torch.tensor(G), coefficients, steps, eps).double().numpy()


def gap_units(ours, theirs):
    return float(np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300))


def test_bfloat16_newton_schulz_equals_torchs():
    rng = np.random.default_rng(1)
    worst, exact, exact64 = 0.0, [], []
    for _ in range(60):
        m, n = rng.integers(1, 33, size=2)
        G = rng.normal(size=(m, n)) * 10 ** rng.uniform(-3, 3)
        theirs = torch_ns(G)
        ours = rules.newton_schulz(G)
        worst = max(worst, gap_units(ours, theirs))
        exact.append(np.mean(ours == theirs))
        exact64.append(np.mean(rules.newton_schulz(G, bfloat16=False) == theirs))
    assert worst <= TOLERANCE, f"{worst / BF16_UNIT:.2f} x 2^-8 max|O|"
    assert np.mean(exact) >= 0.9, np.mean(exact)
    assert np.mean(exact64) <= 0.05, "the float64 path should not round like bfloat16"
    # tall matrices are transposed, small ones bit for bit
    G = rng.normal(size=(6, 3))
    np.testing.assert_array_equal(rules.newton_schulz(G), torch_ns(G))
    np.testing.assert_array_equal(rules.newton_schulz(G), rules.newton_schulz(G.T).T)


MUON_CASES = [(desc, kwargs) for desc, kwargs in torch_configurations()["Muon"]] + [
    ("no nesterov", dict(lr=0.02, nesterov=False)),
    ("match_rms_adamw", dict(lr=0.02, adjust_lr_fn="match_rms_adamw", weight_decay=0.05)),
    ("original", dict(lr=0.02, adjust_lr_fn="original", momentum=0.5)),
]


def run_bfloat16(kwargs, seed, steps=60, ours_kwargs=None):
    """Both Muons on one gradient stream; torch's parameters reset to ours before every step,
    so each step's orthogonalised update is compared from the same point. Returns the worst
    gap in units of max|O| and the fraction of elements equal bit for bit."""
    rng, params, curvature, targets = random_problem(seed, matrices=True)
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    ours = optimkit.Muon(params, **{**to_numpy(kwargs), **(ours_kwargs or {})})
    theirs = torch.optim.Muon(tparams, **kwargs)
    lr, wd = float(kwargs.get("lr", 1e-3)), kwargs.get("weight_decay", 0.1)
    worst, same, total = 0.0, 0, 0
    for step in range(steps):
        grads = gradients(rng, params, curvature, targets, step)
        before = [p.copy() for p in params]
        for tp, p, g in zip(tparams, params, grads):
            with torch.no_grad():
                tp.copy_(torch.from_numpy(p))
            tp.grad = None if g is None else torch.from_numpy(g.copy())
        ours.step(grads)
        theirs.step()
        for p0, p, tp, g in zip(before, params, tparams, grads):
            if g is None:
                continue
            gamma = rules.muon_adjusted_lr(lr, kwargs.get("adjust_lr_fn"), p.shape)
            o_ours = (p0 * (1 - lr * wd) - p) / gamma
            o_torch = (p0 * (1 - lr * wd) - tp.detach().numpy()) / gamma
            worst = max(worst, gap_units(o_ours, o_torch))
            same += int(np.sum(p == tp.detach().numpy()))
            total += p.size
    return worst, same / total, ours, theirs, tparams


@pytest.mark.parametrize("desc,kwargs", MUON_CASES, ids=[d for d, _ in MUON_CASES])
def test_muon_matches_torchs_bfloat16_step(desc, kwargs):
    worst, exact, ours, theirs, tparams = run_bfloat16(kwargs, seed=5)
    assert worst <= TOLERANCE, f"{desc}: {worst / BF16_UNIT:.2f} x 2^-8 max|O|"
    assert exact >= 0.9, f"{desc}: only {exact:.0%} of the elements equal torch's"
    for i, tp in enumerate(tparams):  # the momentum buffer is float64 on both sides: to rounding
        np.testing.assert_allclose(ours.state[i]["momentum_buffer"],
                                   theirs.state[tp]["momentum_buffer"].numpy(), rtol=1e-12,
                                   atol=1e-15)


@pytest.mark.parametrize("slip", [dict(ns_steps=4), dict(momentum=0.0), dict(nesterov=False),
                                  dict(ns_coefficients=(1.5, -0.5, 0.0))],
                         ids=["ns_steps", "gradient-not-momentum", "nesterov", "cubic"])
def test_negative_controls_fail_the_bfloat16_comparison(slip):
    worst, exact, *_ = run_bfloat16({}, seed=5, steps=20, ours_kwargs=slip)
    assert worst > TOLERANCE or exact < 0.9, f"{slip} went unnoticed ({worst / BF16_UNIT:.2f})"


# --- the property: singular values near 1 ------------------------------------------------------

def normalised_singular_values(G):
    return np.linalg.svd(G, compute_uv=False) / np.linalg.norm(G)


BAND = (0.68, 1.21)  # where x -> a x + b x^3 + c x^5 keeps every x0 in [0.0016, 1] after 5 steps


def test_the_band_is_the_polynomials():
    x = np.geomspace(0.0016, 1, 100_000)
    for _ in range(5):
        x = A * x + B * x ** 3 + C * x ** 5
    assert BAND[0] <= x.min() and x.max() <= BAND[1]


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(1, 12), n=st.integers(1, 12),
       scale=st.floats(1e-3, 1e3), bfloat16=st.booleans())
def test_orthogonalised_update_has_singular_values_near_one(seed, m, n, scale, bfloat16):
    G = np.random.default_rng(seed).normal(size=(m, n)) * scale
    assume(normalised_singular_values(G).min() >= 0.0016)
    s = np.linalg.svd(rules.newton_schulz(G, bfloat16=bfloat16), compute_uv=False)
    low, high = BAND if not bfloat16 else (BAND[0] - 0.03, BAND[1] + 0.03)  # bfloat16: ~2 %
    assert low <= s.min() and s.max() <= high, s


def test_negative_control_too_few_steps_or_no_iteration_leave_the_band():
    G = np.random.default_rng(0).normal(size=(8, 5))
    G[:, 0] *= 0.05  # one small direction: sigma_min / ||G||_F ~ 0.02
    s_raw = normalised_singular_values(G)
    s_two = np.linalg.svd(rules.newton_schulz(G, steps=2, bfloat16=False), compute_uv=False)
    s_five = np.linalg.svd(rules.newton_schulz(G, bfloat16=False), compute_uv=False)
    assert s_raw.min() < BAND[0] and s_two.min() < BAND[0]
    assert BAND[0] <= s_five.min() and s_five.max() <= BAND[1]


# --- the two faces, state, refusals (Muon takes matrices only) ---------------------------------

SHAPES = [(3, 5), (4, 2)]


def stream(seed, steps):
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s) for s in SHAPES] for _ in range(steps)]


def start(seed):
    rng = np.random.default_rng(seed + 1)
    return [rng.normal(size=s) for s in SHAPES]


def test_pure_function_equals_the_class_and_does_not_mutate():
    kwargs = dict(lr=0.02, weight_decay=0.05, momentum=0.9, adjust_lr_fn="match_rms_adamw")
    params = start(7)
    pure = [p.copy() for p in params]
    state = rules.muon_init(pure)
    opt = optimkit.Muon(params, **kwargs)
    for grads in stream(7, 25):
        before = [p.copy() for p in pure] + [g.copy() for g in grads]
        new_pure, state = rules.muon_update(grads, state, pure, **kwargs)
        for x, y in zip(pure + grads, before):
            np.testing.assert_array_equal(x, y)
        pure = new_pure
        opt.step(grads)
    for x, y in zip(pure, params):
        np.testing.assert_array_equal(x, y)
    assert state.step == 25


def test_state_dict_round_trip_resumes_bit_for_bit():
    grads_stream = stream(3, 30)
    straight, first = start(3), start(3)
    opt = optimkit.Muon(straight, lr=0.05)
    for grads in grads_stream:
        opt.step(grads)
    opt1 = optimkit.Muon(first, lr=0.05)
    for grads in grads_stream[:11]:
        opt1.step(grads)
    saved, resumed = opt1.state_dict(), [p.copy() for p in first]
    opt2 = optimkit.Muon(resumed, lr=9.0)
    opt2.load_state_dict(saved)
    for grads in grads_stream[11:]:
        opt2.step(grads)
    for x, y in zip(resumed, straight):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("kwargs,match", [
    (dict(lr=-1.0), "lr must be >= 0"),
    (dict(momentum=-0.1), "momentum must be >= 0"),
    (dict(weight_decay=-0.1), "weight_decay must be >= 0"),
    (dict(ns_steps=100), "ns_steps must be less than 100"),
    (dict(ns_steps=2.5), "ns_steps must be a non-negative integer"),
    (dict(ns_coefficients=(1.0, 2.0)), "ns_coefficients must be three numbers"),
    (dict(adjust_lr_fn="arbitrary"), "Adjust learning rate function arbitrary is not supported"),
    (dict(nesterov="yes"), "nesterov must be True or False"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        optimkit.Muon([np.ones((2, 2))], **kwargs)


def test_only_matrices_as_torch_and_no_implementation_switches():
    for bad in ([np.ones(3)], [np.ones((2, 3, 4))]):
        with pytest.raises(ValueError, match=r"Muon only supports 2D parameters .*params\[0\] "
                                             r"has shape .*AdamW"):
            optimkit.Muon(bad)
        with pytest.raises(ValueError, match="Muon only supports 2D parameters"):
            torch.optim.Muon([torch.tensor(bad[0], requires_grad=True)])
    opt = optimkit.Muon([np.ones((2, 2))])
    with pytest.raises(ValueError, match=r"params\[1\] has shape \(3,\)"):
        opt.add_param_group({"params": [np.ones((2, 2)), np.ones(3)]})
    for switch in ("foreach", "fused"):  # torch's Muon has none: both refuse the keyword
        with pytest.raises(TypeError, match=switch):
            optimkit.Muon([np.ones((2, 2))], **{switch: False})
        with pytest.raises(TypeError, match=switch):
            torch.optim.Muon([torch.ones(2, 2, requires_grad=True)], **{switch: False})


def test_bad_gradients_change_nothing():
    params = start(4)
    opt = optimkit.Muon(params, lr=0.1)
    opt.step([np.ones(s) for s in SHAPES])
    snapshot, state = [p.copy() for p in params], opt.state_dict()
    for grads, error, match in [
        ([np.ones((3, 5))], ValueError, "got 1 gradients for 2 parameters"),
        ([np.ones((3, 5)), np.ones((2, 4))], ValueError, r"grads\[1\] has shape \(2, 4\)"),
    ]:
        with pytest.raises(error, match=match):
            opt.step(grads)
    for p, s in zip(params, snapshot):
        np.testing.assert_array_equal(p, s)
    for i, s in state["state"].items():
        np.testing.assert_array_equal(opt.state[i]["momentum_buffer"], s["momentum_buffer"])


def test_nan_gradient_poisons_its_whole_matrix_like_torch():
    """One NaN element reaches every element of its matrix (the norm and the products mix
    them), in torch as here; the other matrix is untouched."""
    params = start(2)
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    ours, theirs = optimkit.Muon(params, lr=0.1), torch.optim.Muon(tparams, lr=0.1)
    grads = [np.ones((3, 5)), np.ones((4, 2))]
    grads[0][1, 2] = np.nan
    for tp, g in zip(tparams, grads):
        tp.grad = torch.from_numpy(g.copy())
    ours.step(grads)
    theirs.step()
    assert np.isnan(params[0]).all() and torch.isnan(tparams[0]).all()
    np.testing.assert_allclose(params[1], tparams[1].detach().numpy(), rtol=1e-14)


def test_adjusted_lr_is_torchs():
    from torch.optim._muon import _adjust_lr
    for shape in [(3, 5), (5, 3), (7, 7), (1, 9)]:
        for fn in (None, "original", "match_rms_adamw"):
            assert math.isclose(rules.muon_adjusted_lr(0.02, fn, shape),
                                _adjust_lr(0.02, fn, torch.Size(shape)), rel_tol=1e-15)


def test_torch_configurations_are_the_ones_compared():
    assert {d for d, _ in MUON_CASES} >= {"default", "Tensor lr", "passing alternative ns_steps"}
    assert config("Muon", "non-default lr") == {"lr": 0.01}
