"""optimkit.lr_scheduler against torch.optim.lr_scheduler, driven side by side.

Each case is one function ``make(L, opt)`` that builds the scheduler from a namespace ``L``:
torch's classes (``T``) on a torch optimizer, or optimkit's (``O``) on an optimkit one. Both
optimizers take the same gradient every step; every step's lr (and momentum or beta1 when the
scheduler cycles it) is compared, 1,000 steps. The rules are computed with the same operations
as torch's, so the measured difference is 0; the tolerance is 1e-12 relative, and a gamma
perturbed by 1e-9 fails it (the negative control).
"""

from __future__ import annotations

import ast
import copy
import math
import types
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler as tl
from torch.optim import swa_utils as tswa

import optimkit
from optimkit import lr_scheduler as ok
from optimkit import schedules as S

N = 1000
RTOL = 1e-12

# torch warns when a SequentialLR restarts a ChainedScheduler (its own quirk, not the test's order).
pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`:UserWarning")

T = types.SimpleNamespace(**{n: getattr(tl, n) for n in tl.__all__}, SWALR=tswa.SWALR)
O = types.SimpleNamespace(**{n: getattr(ok, n) for n in ok.__all__})


# --- the side-by-side driver ------------------------------------------------------------


SECOND_GROUP = {"sgd": {"lr": 0.025, "momentum": 0.5}, "adam": {"lr": 0.025, "betas": (0.8, 0.95)},
                "adagrad": {"lr": 0.025}}


class Side:
    """One library's optimizer, stepped with the same gradients as the other's.

    ``groups=True``: two parameter groups, the second with its own lr and momentum (or betas).
    """

    def __init__(self, lib, kind="sgd", lr=0.1, groups=False, **kwargs):
        self.lib, rng = lib, np.random.default_rng(0)
        w0 = [rng.normal(size=3), rng.normal(size=2)][: 2 if groups else 1]
        name = {"sgd": "SGD", "adam": "Adam", "adagrad": "Adagrad"}.get(kind, kind)
        if lib is T:
            self.params = [torch.tensor(w, requires_grad=True) for w in w0]
            cls = getattr(torch.optim, name)
        else:
            self.params = [w.copy() for w in w0]
            cls = optimkit.OPTIMIZERS[name]
        spec = [{"params": [self.params[0]]}, {"params": [self.params[1]], **SECOND_GROUP.get(kind.lower(), {"lr": 0.025})}] \
            if groups else self.params
        self.opt = cls(spec, lr=lr, **kwargs)

    def step(self, k):
        grads = [np.cos(np.arange(p.shape[0]) + 0.1 * k + i) for i, p in enumerate(self.params)]
        if self.lib is T:  # the same gradients on both sides
            for p, g in zip(self.params, grads):
                p.grad = torch.tensor(g)
            self.opt.step()
        else:
            self.opt.step(grads)

    def weights(self):
        if self.lib is T:
            return np.concatenate([p.detach().numpy() for p in self.params])
        return np.concatenate(self.params)


def observe(opt):
    """Every group's lr and momentum (momentum, or betas[0]; NaN when the optimizer has none)."""
    out = []
    for g in opt.param_groups:
        m = g["betas"][0] if "betas" in g else g.get("momentum", math.nan)
        out += [float(g["lr"]), float(m)]
    return out


def drive(lib, make, n=N, kind="sgd", metrics=None, opt_kwargs=None, groups=False):
    """(lrs and momenta at every step, final weights, scheduler, side) for one library."""
    if opt_kwargs is None:
        opt_kwargs = {"momentum": 0.9} if kind == "sgd" else {}
    side = Side(lib, kind, groups=groups, **opt_kwargs)
    sched = make(lib, side.opt)
    trace = []
    for k in range(n):
        trace.append(observe(side.opt))
        side.step(k)
        if metrics is not None:
            sched.step(metrics[k])
        else:
            sched.step()
    return np.array(trace), side.weights(), sched, side


def compare(make, n=N, **kwargs):
    """Run both libraries; assert every value within RTOL; return the largest relative gap.

    Where torch's recursion rounds an lr reaching 0 to a tiny negative (-1e-17), optimkit
    writes 0.0 (its optimizers refuse a negative lr): torch's residue counts as 0 here.
    """
    want, w_want, _, _ = drive(T, make, n, **kwargs)
    want[(want < 0) & (want > -1e-15)] = 0.0
    got, w_got, _, _ = drive(O, make, n, **kwargs)
    np.testing.assert_allclose(got, want, rtol=RTOL, atol=0, equal_nan=True)
    np.testing.assert_allclose(w_got, w_want, rtol=1e-9, atol=1e-12)  # and the optimizer followed
    finite = np.isfinite(want) & (want != 0)
    return float(np.max(np.abs(got[finite] - want[finite]) / np.abs(want[finite]), initial=0.0))


def plateau_metrics(n=N):
    """A loss that improves, stalls and jumps, so patience, cooldown and min_lr all act."""
    k = np.arange(n)
    return list(1.0 / (1 + 0.01 * np.minimum(k, 300)) + 0.02 * np.sin(0.37 * k) + 0.5 * (k > 700))


# --- every class, 1,000 steps -----------------------------------------------------------

CASES = {
    "LambdaLR": lambda L, o: L.LambdaLR(o, lambda t: 0.999 ** t * (1 + 0.5 * math.sin(t / 40))),
    "MultiplicativeLR": lambda L, o: L.MultiplicativeLR(o, lambda t: 0.995 if t % 3 else 1.004),
    "StepLR": lambda L, o: L.StepLR(o, 30, 0.5),
    "StepLR-grow": lambda L, o: L.StepLR(o, 7, 1.01),
    "MultiStepLR": lambda L, o: L.MultiStepLR(o, [100, 250, 250, 600], 0.3),
    "ConstantLR": lambda L, o: L.ConstantLR(o, 0.25, 40),
    "ConstantLR-default": lambda L, o: L.ConstantLR(o),
    "LinearLR-warmup": lambda L, o: L.LinearLR(o, 0.1, 1.0, 200),
    "LinearLR-decay": lambda L, o: L.LinearLR(o, 1.0, 0.05, 700),
    "LinearLR-partial": lambda L, o: L.LinearLR(o, 0.3, 0.6, 1000),
    "LinearLR-to-zero": lambda L, o: L.LinearLR(o, 0.5, 0.0, 400),
    "ExponentialLR": lambda L, o: L.ExponentialLR(o, 0.997),
    "PolynomialLR": lambda L, o: L.PolynomialLR(o, 800, 2.0),
    "PolynomialLR-sqrt": lambda L, o: L.PolynomialLR(o, 1200, 0.5),
    "CosineAnnealingLR-periodic": lambda L, o: L.CosineAnnealingLR(o, 300, 0.001),
    "CosineAnnealingLR": lambda L, o: L.CosineAnnealingLR(o, 999),
    "CyclicLR-triangular": lambda L, o: L.CyclicLR(o, 0.001, 0.1, 50),
    "CyclicLR-triangular2": lambda L, o: L.CyclicLR(o, 0.001, 0.1, 40, 60, mode="triangular2"),
    "CyclicLR-exp_range": lambda L, o: L.CyclicLR(o, 0.001, 0.1, 30, mode="exp_range", gamma=0.999),
    "CyclicLR-scale_fn": lambda L, o: L.CyclicLR(o, 0.01, 0.1, 25, scale_fn=lambda x: 1 / (1 + 0.01 * x),
                                                 scale_mode="iterations", base_momentum=0.7),
    "CyclicLR-no-momentum": lambda L, o: L.CyclicLR(o, 0.001, 0.1, 50, cycle_momentum=False),
    "OneCycleLR": lambda L, o: L.OneCycleLR(o, 0.1, 1000),
    "OneCycleLR-linear": lambda L, o: L.OneCycleLR(o, 0.1, 1000, anneal_strategy="linear", pct_start=0.25),
    "OneCycleLR-three_phase": lambda L, o: L.OneCycleLR(o, 0.1, 1000, three_phase=True),
    "OneCycleLR-three_phase-linear": lambda L, o: L.OneCycleLR(
        o, 0.1, epochs=10, steps_per_epoch=100, anneal_strategy="linear", three_phase=True,
        div_factor=10.0, final_div_factor=100.0, base_momentum=0.8, max_momentum=0.99),
    "OneCycleLR-pct0": lambda L, o: L.OneCycleLR(o, 0.1, 1000, pct_start=0.0, cycle_momentum=False),
    "CosineAnnealingWarmRestarts": lambda L, o: L.CosineAnnealingWarmRestarts(o, 50, 2, 1e-4),
    "CosineAnnealingWarmRestarts-T_mult1": lambda L, o: L.CosineAnnealingWarmRestarts(o, 30),
    "SequentialLR-warmup-cosine": lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, 0.1, 1.0, 100), L.CosineAnnealingLR(o, 900)], [100]),
    "SequentialLR-three": lambda L, o: L.SequentialLR(
        o, [L.ConstantLR(o, 0.1, 50), L.ExponentialLR(o, 0.99), L.StepLR(o, 40, 0.5)], [50, 300]),
    "SequentialLR-lambda-poly": lambda L, o: L.SequentialLR(
        o, [L.LambdaLR(o, lambda t: (t + 1) / 20), L.PolynomialLR(o, 980, 1.5)], [20]),
    "SequentialLR-of-chained": lambda L, o: L.SequentialLR(
        o, [L.ChainedScheduler([L.LinearLR(o, 0.1, 1.0, 60), L.ConstantLR(o, 0.5, 60)]),
            L.CosineAnnealingWarmRestarts(o, 100)], [60]),
    "ChainedScheduler-warmup-exp": lambda L, o: L.ChainedScheduler(
        [L.LinearLR(o, 0.1, 1.0, 100), L.ExponentialLR(o, 0.998)]),
    "ChainedScheduler-three": lambda L, o: L.ChainedScheduler(
        [L.ExponentialLR(o, 0.999), L.ConstantLR(o, 0.2, 40), L.StepLR(o, 100, 0.5)]),
    "ChainedScheduler-cos-multistep": lambda L, o: L.ChainedScheduler(
        [L.CosineAnnealingLR(o, 400, 0.0), L.MultiStepLR(o, [200, 500], 0.5)]),
}

@pytest.mark.parametrize("name", list(CASES))
def test_matches_torch_1000_steps(name):
    assert compare(CASES[name]) == 0.0  # measured: the same operations give the same bits


@pytest.mark.parametrize("name", ["CyclicLR-triangular2", "CyclicLR-exp_range", "OneCycleLR",
                                  "OneCycleLR-three_phase-linear"])
def test_beta1_cycled_on_adam_like_torch(name):
    compare(CASES[name], kind="adam", opt_kwargs={"betas": (0.9, 0.99)})


@pytest.mark.parametrize("kwargs", [
    dict(mode="min", patience=5, cooldown=3, factor=0.5, min_lr=1e-3),
    dict(mode="max", patience=10, threshold=0.02, threshold_mode="abs"),
    dict(mode="min", patience=0, factor=0.9, eps=1e-3),
    {},
])
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    metrics = plateau_metrics()
    compare(lambda L, o: L.ReduceLROnPlateau(o, **kwargs), metrics=metrics)
    lrs = drive(O, lambda L, o: L.ReduceLROnPlateau(o, **kwargs), metrics=metrics)[0][:, 0]
    assert len(set(lrs)) >= 2  # it did reduce


def test_plateau_combined_with_step_lr_like_torch():
    # torch's compound cases: a plateau scheduler and a StepLR on one optimizer.
    def make(L, o):
        both = [L.ReduceLROnPlateau(o, patience=5, threshold=0.1, threshold_mode="abs"),
                L.StepLR(o, 3, 0.9)]
        return types.SimpleNamespace(step=lambda m: [both[0].step(m), both[1].step()])

    compare(make, n=200, metrics=plateau_metrics(200))


def test_negative_control_perturbed_gamma_fails():
    def make(L, o):
        return L.ExponentialLR(o, 0.997 * (1 + 1e-9) if L is O else 0.997)

    with pytest.raises(AssertionError):
        compare(make)


@pytest.mark.parametrize("start, total", [(0.9, 100), (0.3, 3), (0.1, 400)])
def test_linear_decay_to_zero_ends_at_zero_not_below(start, total):
    # torch's recursion ends these at about -1e-17 and its SGD steps with that; optimkit writes
    # 0.0, and its optimizer (which refuses a negative lr) keeps stepping.
    make = lambda L, o: L.LinearLR(o, start, 0.0, total)  # noqa: E731
    torch_lrs = drive(T, make, total + 5)[0][:, 0]
    assert torch_lrs[-1] < 0 and torch_lrs[-1] > -1e-16
    lrs = drive(O, make, total + 5)[0][:, 0]
    assert list(lrs[total:]) == [0.0] * 5
    compare(make, total + 5)


def test_a_really_negative_lr_is_written_and_refused_by_the_optimizer():
    side = Side(O)
    sched = ok.LambdaLR(side.opt, lambda t: 1.0 - t)  # negative from step 2 on
    for k in range(2):
        side.step(k)
        sched.step()
    assert side.opt.param_groups[0]["lr"] == -0.1
    with pytest.raises(ValueError, match="lr must be >= 0"):
        side.step(2)


def test_lrs_are_python_floats_like_torch():
    _, _, sched, side = drive(O, CASES["OneCycleLR"], n=10)
    assert all(type(v) is float for v in sched.get_last_lr())
    assert sched.get_last_lr() == [side.opt.param_groups[0]["lr"]]


# --- state: torch's keys, bit-exact resume, loading torch's own state ----------------------

def _resume(make, cut, n=N, metrics=None, groups=False):
    """Run to ``cut``; save optimizer and scheduler; rebuild both from scratch (scheduler first,
    as torch advises, then the optimizer's state, then the scheduler's); continue to ``n``."""
    def run(side, sched, steps, trace):
        for k in steps:
            trace.append(observe(side.opt))
            side.step(k)
            sched.step(metrics[k]) if metrics is not None else sched.step()

    trace = []
    first = Side(O, "sgd", groups=groups, momentum=0.9)
    sched = make(O, first.opt)
    run(first, sched, range(cut), trace)
    saved_opt, saved_sched = first.opt.state_dict(), sched.state_dict()
    second = Side(O, "sgd", groups=groups, momentum=0.9)
    for p, saved in zip(second.params, first.params):  # the model's weights, saved apart
        p[...] = saved
    sched2 = make(O, second.opt)
    second.opt.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    run(second, sched2, range(cut, n), trace)
    np.testing.assert_array_equal(second.weights(), drive(O, make, n, metrics=metrics, groups=groups)[1])
    return trace


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_round_trip_mid_run_is_bit_exact(name):
    whole = drive(O, CASES[name])[0].tolist()
    assert _resume(CASES[name], 437) == whole  # == on floats: bit for bit


@pytest.mark.parametrize("name", ["OneCycleLR-three_phase", "CyclicLR-triangular2", "SequentialLR-of-chained"])
def test_state_dict_round_trip_per_group_is_bit_exact(name):
    assert _resume(CASES[name], 437, groups=True) == drive(O, CASES[name], groups=True)[0].tolist()


def test_plateau_round_trip_mid_run_is_bit_exact():
    metrics = plateau_metrics()

    def make(L, o):
        return L.ReduceLROnPlateau(o, patience=4, cooldown=2, min_lr=[1e-3, 1e-2])

    whole = drive(O, make, metrics=metrics, groups=True)[0].tolist()
    assert _resume(make, 333, metrics=metrics, groups=True) == whole


# --- parameter groups: each group scheduled from its own lr, lists for per-group settings ----


@pytest.mark.parametrize("name", list(CASES))
def test_two_groups_match_torch(name):
    assert compare(CASES[name], groups=True) == 0.0


PER_GROUP = {
    "LambdaLR": lambda L, o: L.LambdaLR(o, [lambda t: 0.999 ** t, lambda t: 1 / (1 + t / 100)]),
    "MultiplicativeLR": lambda L, o: L.MultiplicativeLR(o, [lambda t: 0.998, lambda t: 0.99 if t % 2 else 1.0]),
    "CyclicLR": lambda L, o: L.CyclicLR(o, [0.001, 0.01], [0.1, 0.05], 40, 60, mode="triangular2",
                                       base_momentum=[0.8, 0.6], max_momentum=[0.9, 0.7]),
    "OneCycleLR": lambda L, o: L.OneCycleLR(o, [0.1, 0.02], 1000, three_phase=True,
                                           base_momentum=[0.85, 0.5], max_momentum=[0.95, 0.6]),
    "ReduceLROnPlateau": lambda L, o: L.ReduceLROnPlateau(o, patience=3, min_lr=[1e-3, 1e-2]),
}


@st.composite
def random_scheduler(draw):
    """A scheduler with drawn settings, as ``make(L, o)``."""
    fraction = st.floats(0.05, 1.0)
    steps = st.integers(1, 120)
    kind = draw(st.sampled_from(["StepLR", "MultiStepLR", "LinearLR", "PolynomialLR", "CosineAnnealingLR",
                                 "CyclicLR", "OneCycleLR", "CosineAnnealingWarmRestarts", "ExponentialLR"]))
    if kind == "StepLR":
        args = (draw(steps), draw(st.floats(0.1, 1.05)))
    elif kind == "MultiStepLR":
        args = (draw(st.lists(st.integers(0, 200), max_size=5)), draw(st.floats(0.1, 1.05)))
    elif kind == "LinearLR":
        args = (draw(fraction), draw(st.floats(0.0, 1.0)), draw(steps))
    elif kind == "PolynomialLR":
        args = (draw(steps), draw(st.floats(0.0, 3.0)))
    elif kind == "CosineAnnealingLR":
        args = (draw(steps), draw(st.floats(0.0, 0.05)))
    elif kind == "CyclicLR":
        args = (draw(st.floats(0.0, 0.05)), draw(st.floats(0.05, 1.0)), draw(steps), draw(steps),
                draw(st.sampled_from(["triangular", "triangular2", "exp_range"])), draw(st.floats(0.9, 1.0)))
    elif kind == "OneCycleLR":
        total, pct = draw(st.integers(300, 600)), draw(st.floats(0.0, 0.5))  # steps 0..299 allowed
        three, strategy = draw(st.booleans()), draw(st.sampled_from(["cos", "linear"]))
        up = float(pct * total)
        assume(up != 1 and not (three and 2 * up - 2 == total - 1))  # no zero-length phase
        return lambda L, o: L.OneCycleLR(o, 0.2, total, pct_start=pct, three_phase=three,
                                         anneal_strategy=strategy)
    elif kind == "CosineAnnealingWarmRestarts":
        args = (draw(steps), draw(st.integers(1, 3)), draw(st.floats(0.0, 0.05)))
    else:
        args = (draw(st.floats(0.9, 1.01)),)
    return lambda L, o: getattr(L, kind)(o, *args)


@settings(max_examples=60, deadline=None)
@given(random_scheduler())
def test_random_settings_match_torch(make):
    assert compare(make, n=300) == 0.0


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("name", list(PER_GROUP))
def test_per_group_settings_match_torch(name, kind):
    metrics = plateau_metrics() if name == "ReduceLROnPlateau" else None
    compare(PER_GROUP[name], groups=True, kind=kind, metrics=metrics,
            opt_kwargs={"momentum": 0.9} if kind == "sgd" else {})


@pytest.mark.parametrize("min_lr", ["scalar", "list"])
def test_add_param_group_under_plateau_like_torch(min_lr):
    # torch's case (issue 104361): a group added mid-run; a scalar min_lr extends to it,
    # a list must be extended by hand, else the next reduction raises.
    def scenario(L, side, extend=True):
        sched = L.ReduceLROnPlateau(side.opt, patience=2, min_lr=0 if min_lr == "scalar" else [1e-5])
        out = []
        for k, m in enumerate([1] * 7 + [0.6] + [0.5] * 12):
            if k == 8:
                extra = torch.zeros(2, requires_grad=True) if L is T else np.zeros(2)
                side.opt.add_param_group({"params": [extra], "lr": 0.05})
                if min_lr == "list" and extend:
                    sched.min_lrs.append(1e-6)
            sched.step(m)
            out.append([g["lr"] for g in side.opt.param_groups] + [0.0] * (k < 8))
        return out

    final = both(scenario, "sgd")[-1]
    assert final[0] < 0.1 and final[1] < 0.05  # both groups reduced, the new one too
    if min_lr == "list":
        for lib in (T, O):
            with pytest.raises(RuntimeError, match="number of param groups"):
                scenario(lib, Side(lib), extend=False)


def test_add_param_group_mid_run_like_torch():
    # A group added later has no initial_lr; the recursive schedulers scale it from its own lr.
    def scenario(L, side):
        sched = L.StepLR(side.opt, 3, 0.5)
        out = []
        for k in range(12):
            if k == 4:
                extra = torch.zeros(2, requires_grad=True) if L is T else np.zeros(2)
                side.opt.add_param_group({"params": [extra], "lr": 0.3})
            sched.step()
            out.append([g["lr"] for g in side.opt.param_groups] + [0.0] * (k < 4))
        return out

    both(scenario, "sgd")


KEY_CASES = dict(CASES, **{"ReduceLROnPlateau": lambda L, o: L.ReduceLROnPlateau(o, min_lr=[1e-4])})


@pytest.mark.parametrize("name", list(KEY_CASES))
def test_state_dict_has_torchs_keys(name):
    states = []
    for lib in (T, O):
        side = Side(lib, "sgd", momentum=0.9)
        sched = KEY_CASES[name](lib, side.opt)
        for k in range(5):
            side.step(k)
            sched.step(1.0) if name == "ReduceLROnPlateau" else sched.step()
        states.append(sched.state_dict())
    torch_state, ours = states
    assert set(ours) == set(torch_state)
    for key in ("_schedulers",):
        if key in ours:
            assert [set(s) for s in ours[key]] == [set(s) for s in torch_state[key]]


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "LinearLR-decay", "CosineAnnealingLR-periodic",
                                  "CyclicLR-triangular2", "OneCycleLR-three_phase", "LambdaLR",
                                  "CosineAnnealingWarmRestarts", "SequentialLR-three",
                                  "ChainedScheduler-three"])
def test_loads_torchs_state_dict_and_continues_like_torch(name):
    # torch's layout: a torch scheduler's state (at step 250) continues identically here.
    make, cut = CASES[name], 250
    t_side = Side(T, "sgd", momentum=0.9)
    t_sched = make(T, t_side.opt)
    o_side = Side(O, "sgd", momentum=0.9)
    o_sched = make(O, o_side.opt)
    for k in range(cut):
        t_side.step(k)
        t_sched.step()
    for g_o, g_t in zip(o_side.opt.param_groups, t_side.opt.param_groups):
        g_o.update({k: v for k, v in g_t.items() if k != "params"})
    o_sched.load_state_dict(t_sched.state_dict())
    for k in range(cut, cut + 300):
        assert observe(o_side.opt) == observe(t_side.opt), k
        t_side.step(k)
        t_sched.step()
        o_side.step(k)
        o_sched.step()


def test_lambda_state_keeps_functions_out_and_callable_objects_in():
    class Factor:
        def __init__(self, value):
            self.value = value

        def __call__(self, t):
            return self.value ** t

    opt = optimkit.SGD([np.zeros(2)], lr=0.1)
    state = ok.LambdaLR(opt, lambda t: 0.9 ** t).state_dict()
    assert state["lr_lambdas"] == [None]
    saved = ok.LambdaLR(opt, Factor(0.5))
    saved.step()
    fresh_fn = Factor(0.9)
    restored = ok.LambdaLR(optimkit.SGD([np.zeros(2)], lr=0.1), fresh_fn)
    restored.load_state_dict(saved.state_dict())
    assert fresh_fn.value == 0.5 and restored.last_epoch == 1
    assert ok.MultiplicativeLR(opt, lambda t: 0.9).state_dict()["lr_lambdas"] == [None]


def test_cyclic_scale_fn_state_like_torch():
    opt = optimkit.Adam([np.zeros(2)])
    assert ok.CyclicLR(opt, 1, 5, cycle_momentum=False).state_dict()["_scale_fn_custom"] is None
    built_in = ok.CyclicLR(opt, 1, 5, cycle_momentum=False, mode="triangular2")
    restored = ok.CyclicLR(opt, 1, 5, cycle_momentum=False)
    restored.load_state_dict(built_in.state_dict())
    assert restored.mode == "triangular2" and restored.scale_fn(3) == 0.25


def test_bad_state_dict_is_refused_before_anything_changes():
    opt = optimkit.SGD([np.zeros(2)], lr=0.1)
    sched = ok.StepLR(opt, 3)
    before = sched.state_dict()
    with pytest.raises(ValueError, match=r"missing keys \['step_size'\].*unexpected keys \['T_max'\]"):
        sched.load_state_dict({**{k: v for k, v in before.items() if k != "step_size"}, "T_max": 3})
    with pytest.raises(ValueError, match="unexpected keys"):
        sched.load_state_dict(ok.CosineAnnealingLR(opt, 10).state_dict())
    assert sched.state_dict() == before
    chained = ok.ChainedScheduler([ok.StepLR(opt, 3), ok.ExponentialLR(opt, 0.9)])
    with pytest.raises(ValueError, match="_schedulers must be a list of 2 entries"):
        chained.load_state_dict({**chained.state_dict(), "_schedulers": [sched.state_dict()]})
    plateau = ok.ReduceLROnPlateau(opt)
    with pytest.raises(ValueError, match="factor"):
        plateau.load_state_dict({**plateau.state_dict(), "factor": 2.0})
    assert plateau.factor == 0.1


# --- the cases of torch's own scheduler tests (test/optim/test_lrscheduler.py), against torch

def both(scenario, *args, **kwargs):
    """Run ``scenario(L, side)`` for both libraries; assert they return the same values."""
    want = scenario(T, Side(T, *args, **kwargs))
    got = scenario(O, Side(O, *args, **kwargs))
    np.testing.assert_allclose(np.array(got, dtype=float), np.array(want, dtype=float), rtol=RTOL, atol=0)
    return got


@pytest.mark.parametrize("make", [
    lambda L, o: L.StepLR(o, gamma=0.1, step_size=3),
    lambda L, o: L.LinearLR(o, start_factor=1.0 / 3, end_factor=0.7, total_iters=4),
    lambda L, o: L.ConstantLR(o, factor=1.0 / 3, total_iters=4),
    lambda L, o: L.MultiStepLR(o, gamma=0.1, milestones=[2, 5, 9]),
    lambda L, o: L.ExponentialLR(o, gamma=0.9),
    lambda L, o: L.PolynomialLR(o, power=0.9),
    lambda L, o: L.CosineAnnealingLR(o, T_max=5, eta_min=1e-10),
])
def test_deprecated_step_epoch_uses_the_closed_form_like_torch(make):
    def scenario(L, side):
        sched = make(L, side.opt)
        out = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for epoch in list(range(20)) + [2, 2, 2, 7]:  # constant for a constant epoch, too
                side.step(epoch)
                sched.step(epoch)
                out.append(side.opt.param_groups[0]["lr"])
        return out

    both(scenario, "sgd")
    side = Side(O, "sgd")
    with pytest.warns(UserWarning, match="deprecated"):
        make(O, side.opt).step(3)


@pytest.mark.parametrize("T_mult", [1, 2, 3])
def test_warm_restarts_fractional_and_interleaved_epochs_like_torch(T_mult):
    epochs = [0, 0.1, 0.2, 0.3, 1.3, 2.3, 17.5, 18.5, 19.5, 29.5, 30.5, 31.5, 50, 3, 4, 5, 12, 27, 81, 3]

    def scenario(L, side):
        sched = L.CosineAnnealingWarmRestarts(side.opt, T_0=10, T_mult=T_mult, eta_min=1e-10)
        out = []
        for e in epochs + [None] * 30:  # then plain steps continue from the last epoch
            sched.step() if e is None else sched.step(e)
            out += [side.opt.param_groups[0]["lr"], sched.T_cur, sched.T_i]
        return out

    both(scenario, "sgd")
    with pytest.raises(ValueError, match="non-negative epoch"):
        O.CosineAnnealingWarmRestarts(Side(O).opt, 10).step(-1)


def test_warm_restarts_t_cur_reset_like_torch():
    def scenario(L, side):
        sched = L.CosineAnnealingWarmRestarts(side.opt, T_0=4)
        out = []
        for epoch in [7, 8, 9]:
            sched.T_cur = epoch
            sched.step()
            out.append(sched.T_cur)
        return out

    assert both(scenario, "sgd") == [0, 1, 2]


def test_cosine_then_cyclic_like_torch():
    # torch issue 21965: CyclicLR's first step uses the initial_lr CosineAnnealingLR set.
    def scenario(L, side):
        first = L.CosineAnnealingLR(side.opt, T_max=20, eta_min=0.1)
        second = L.CyclicLR(side.opt, base_lr=0.1, max_lr=0.3, step_size_up=1, step_size_down=3)
        out = []
        for i in range(40):
            side.step(i)
            (first if i <= 20 else second).step()
            out.append(side.opt.param_groups[0]["lr"])
        return out

    assert max(both(scenario, "sgd", 0.5, momentum=0.9)) <= 0.5


def test_sequential_keeps_the_initial_lr_like_torch():
    def scenario(L, side):
        members = [L.ConstantLR(side.opt, factor=1), L.ConstantLR(side.opt, factor=0.1)]
        L.SequentialLR(side.opt, members, milestones=[10])
        return [side.opt.param_groups[0]["lr"]]

    assert both(scenario, "sgd") == [0.1]


def test_sequential_and_chained_get_last_lr_like_torch():
    def scenario(L, side):
        o = side.opt
        members = [L.ConstantLR(o, factor=0.1, total_iters=3), L.ExponentialLR(o, gamma=0.8),
                   L.StepLR(o, gamma=0.1, step_size=2)]
        seq = L.SequentialLR(o, members, milestones=[3, 6])
        chain_members = [L.LinearLR(o, start_factor=0.4, total_iters=3), L.MultiStepLR(o, [4, 8, 10])]
        chain = L.ChainedScheduler(chain_members)
        out = [*seq.get_last_lr(), *chain.get_last_lr(), *chain_members[-1].get_last_lr()]
        for k in range(12):
            side.step(k)
            seq.step()
            out += seq.get_last_lr()
        return out

    both(scenario, "sgd")


def test_resuming_needs_initial_lr_like_torch():
    for lib in (T, O):
        with pytest.raises(KeyError, match="initial_lr"):
            lib.StepLR(Side(lib).opt, step_size=3, gamma=0.1, last_epoch=1)


@pytest.mark.parametrize("make", [
    lambda L, o, **kw: L.LambdaLR(o, lambda e: 0.9 ** e, **kw),
    lambda L, o, **kw: L.MultiplicativeLR(o, lambda e: 0.95, **kw),
    lambda L, o, **kw: L.StepLR(o, step_size=3, **kw),
    lambda L, o, **kw: L.MultiStepLR(o, milestones=[3, 8], **kw),
    lambda L, o, **kw: L.ConstantLR(o, **kw),
    lambda L, o, **kw: L.LinearLR(o, **kw),
    lambda L, o, **kw: L.ExponentialLR(o, gamma=0.9, **kw),
    lambda L, o, **kw: L.PolynomialLR(o, **kw),
    lambda L, o, **kw: L.CosineAnnealingLR(o, T_max=10, **kw),
    lambda L, o, **kw: L.CosineAnnealingWarmRestarts(o, T_0=20, **kw),
    lambda L, o, **kw: L.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4, **kw),
    lambda L, o, **kw: L.OneCycleLR(o, max_lr=0.01, total_steps=10, **kw),
])
def test_resume_with_last_epoch_like_torch(make):
    # torch's checkpoint case: rebuild on a loaded optimizer with last_epoch=k, continue.
    def scenario(L, side):
        sched = make(L, side.opt)
        for k in range(3):
            side.step(k)
            sched.step()
        again = make(L, side.opt, last_epoch=3)
        out = [*again.get_last_lr()]
        for k in range(3, 8):
            side.step(k)
            again.step()
            out += [side.opt.param_groups[0]["lr"], observe(side.opt)[1]]
        return out

    both(scenario, "sgd", 0.1, momentum=0.9)


def test_zero_d_array_lr_is_not_aliased():
    lr = np.array(0.1)
    opt = optimkit.SGD([np.zeros(2)], lr=0.1)
    opt.param_groups[0]["lr"] = lr  # a 0-d array lr, as torch allows a tensor lr
    sched = ok.ExponentialLR(opt, 0.5)
    assert sched.base_lrs[0] is not lr and opt.param_groups[0]["initial_lr"] is not lr
    opt.step([np.ones(2)])
    sched.step()
    assert opt.param_groups[0]["lr"] is lr and float(lr) == 0.05  # written in place
    assert float(sched.base_lrs[0]) == 0.1 and sched.get_last_lr()[0] is not lr
    plateau = ok.ReduceLROnPlateau(opt, patience=0)  # torch: the lr keeps its type
    plateau.step(1.0)
    plateau.step(2.0)
    assert opt.param_groups[0]["lr"] is lr and float(lr) == 0.005000000000000001


def test_cycle_momentum_needs_momentum_or_betas():
    for lib in (T, O):
        with pytest.raises(ValueError, match="momentum"):
            lib.CyclicLR(Side(lib, "adagrad").opt, base_lr=1, max_lr=5, cycle_momentum=True)
        with pytest.raises(ValueError, match="momentum"):
            lib.OneCycleLR(Side(lib, "adagrad").opt, max_lr=1, total_steps=10)
        lib.CyclicLR(Side(lib, "adagrad").opt, base_lr=1, max_lr=5, cycle_momentum=False)
        lib.CyclicLR(Side(lib, "adam").opt, base_lr=1, max_lr=5)  # beta1 is cycled


def test_one_cycle_past_total_steps_raises_like_torch():
    for lib in (T, O):
        side = Side(lib)
        sched = lib.OneCycleLR(side.opt, max_lr=0.1, total_steps=5)
        for k in range(5):
            sched.step()
        with pytest.raises(ValueError, match="Tried to step 6 times"):
            sched.step()


def test_get_lr_outside_step_warns_like_torch():
    for lib in (T, O):
        sched = lib.StepLR(Side(lib).opt, 3)
        with pytest.warns(UserWarning, match="get_last_lr"):
            sched.get_lr()


def test_reduce_lr_on_plateau_before_step_and_min_lrs():
    side = Side(O)
    sched = ok.ReduceLROnPlateau(side.opt)
    assert sched.get_last_lr() == [0.1]
    with pytest.raises(ValueError, match="min_lr must have one value per parameter group"):
        ok.ReduceLROnPlateau(side.opt, min_lr=[0.1, 0.2])
    assert isinstance(sched, ok.LRScheduler) and isinstance(sched, S.ReduceLROnPlateau)


def test_plateau_in_sequential_or_chained_is_refused():
    opt = Side(O).opt
    for build in (lambda p: ok.ChainedScheduler([p]), lambda p: ok.SequentialLR(opt, [p, ok.StepLR(opt, 2)], [3])):
        with pytest.raises(ValueError, match="ReduceLROnPlateau"):
            build(ok.ReduceLROnPlateau(opt))


def test_members_must_share_the_optimizer():
    a, b = Side(O).opt, Side(O).opt
    with pytest.raises(ValueError, match="same optimizer"):
        ok.ChainedScheduler([ok.StepLR(a, 2), ok.StepLR(b, 2)])
    with pytest.raises(ValueError, match="same optimizer"):
        ok.SequentialLR(a, [ok.StepLR(a, 2), ok.StepLR(b, 2)], [3])


# --- torch's optimizer tests drive these scheduler combinations (scheduler_inputs), read from
# --- the installed common_optimizers.py (it needs expecttest to import, so its source is parsed)

COMMON_OPTIMIZERS = Path(torch.__file__).parent / "testing" / "_internal" / "common_optimizers.py"


def torch_scheduler_inputs() -> dict[str, list[str]]:
    """Each scheduler combination's source -> the optimizer classes torch runs it with."""
    tree = ast.parse(COMMON_OPTIMIZERS.read_text())
    found: dict[str, list[str]] = {}
    default = None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == "__init__" and default is None:
            kwargs = [a.arg for a in node.args.kwonlyargs]
            if "scheduler_inputs" in kwargs:
                default = node.args.kw_defaults[kwargs.index("scheduler_inputs")]
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "OptimizerInfo":
            name = node.args[0].id
            given = [kw.value for kw in node.keywords if kw.arg == "scheduler_inputs"]
            for combination in (given[0] if given else default).elts:
                found.setdefault(ast.unparse(combination), []).append(name)
    return found


TORCH_COMBINATIONS = torch_scheduler_inputs()


def test_torch_scheduler_inputs_were_found():
    assert len(TORCH_COMBINATIONS) >= 8 and any("ReduceLROnPlateau" in c for c in TORCH_COMBINATIONS)


@pytest.mark.parametrize("source", list(TORCH_COMBINATIONS))
def test_torchs_scheduler_combinations_match_torch(source):
    # Muon takes matrices only; Side's parameters are vectors (Muon is tested in test_muon.py).
    names = [n for n in TORCH_COMBINATIONS[source] if n in optimkit.OPTIMIZERS and n != "Muon"]
    losses = [max(1.0 - 0.05 * k, 0.2) for k in range(60)]  # improves, then a plateau

    def scenario(L, side):
        schedulers = [make(side.opt) for make in eval(source, dict(vars(L)))]  # noqa: S307
        out = []
        for k, loss in enumerate(losses):
            side.step(k)
            for sched in schedulers:
                sched.step(loss) if isinstance(sched, L.ReduceLROnPlateau) else sched.step()
            out += observe(side.opt)
        return out

    for name in names:
        both(scenario, name, 0.05, groups=True)
    assert names  # every combination runs on at least one optimizer optimkit has


# --- the closed forms in optimkit.schedules compute the same schedules ---------------------


def ours(make, n=N):
    return drive(O, make, n)[0][:, 0]


def closed(schedule, n=N):
    return np.array([schedule(k) for k in range(n)])


@pytest.mark.parametrize("make, schedule, n", [
    (lambda L, o: L.LambdaLR(o, lambda t: 1.0), S.constant(0.1), N),
    (lambda L, o: L.StepLR(o, 30, 0.5), S.step_decay(0.1, 30, 0.5), N),
    (lambda L, o: L.ExponentialLR(o, 0.997), S.exponential(0.1, 0.997), N),
    (lambda L, o: L.CosineAnnealingLR(o, 999, 1e-3), S.cosine(0.1, 999, 1e-3), N),
    (lambda L, o: L.CosineAnnealingLR(o, 300, 1e-3), S.cosine(0.1, 300, 1e-3), 301),  # to T only
    (lambda L, o: L.CosineAnnealingWarmRestarts(o, 50, 2, 1e-4), S.cosine_warm_restarts(0.1, 50, 2, 1e-4), N),
    (lambda L, o: L.LinearLR(o, 0.2, 1.0, 150), S.linear_warmup(S.constant(0.1), 150, 0.2), N),
    (lambda L, o: L.ChainedScheduler([L.LinearLR(o, 0.2, 1.0, 100), L.CosineAnnealingLR(o, 1000)]),
     S.linear_warmup(S.cosine(0.1, 1000), 100, 0.2), N),
    (lambda L, o: L.OneCycleLR(o, 0.3, 1000, cycle_momentum=False), S.one_cycle(0.3, 1000), N),
])
def test_class_and_closed_form_agree(make, schedule, n):
    np.testing.assert_allclose(ours(make, n), closed(schedule, n), rtol=RTOL, atol=1e-17)


def test_cosine_class_continues_where_the_closed_form_clamps():
    lrs = ours(lambda L, o: L.CosineAnnealingLR(o, 300), 601)
    clamped = S.cosine(0.1, 300)
    assert lrs[600] == pytest.approx(0.1, rel=1e-9) and clamped(600) == 0.0
    assert lrs[450] == pytest.approx(0.05, rel=1e-9) and clamped(450) == 0.0


def test_plateau_class_and_schedules_plateau_agree():
    metrics = plateau_metrics()
    lrs = drive(O, lambda L, o: L.ReduceLROnPlateau(o, patience=4, factor=0.5), metrics=metrics)[0][:, 0]
    plain = S.ReduceLROnPlateau(0.1, patience=4, factor=0.5)
    assert list(lrs[1:]) == [plain.step(m) for m in metrics[:-1]]


# --- bad arguments: a ValueError (or TypeError) naming the argument, where torch raises too --

BAD = [  # (make, torch's exception type or None when torch accepts it, our message)
    (lambda L, o: L.LinearLR(o, start_factor=0.0), ValueError, r"^start_factor must be in \(0, 1\], got 0.0"),
    (lambda L, o: L.LinearLR(o, start_factor=1.1), ValueError, r"^start_factor must be in \(0, 1\], got 1.1"),
    (lambda L, o: L.LinearLR(o, end_factor=-0.1), ValueError, r"^end_factor must be in \[0, 1\], got -0.1"),
    (lambda L, o: L.ConstantLR(o, factor=1.5), ValueError, r"^factor must be in \(0, 1\], got 1.5"),
    (lambda L, o: L.ConstantLR(o, factor=0.0), None, r"^factor must be in \(0, 1\], got 0.0"),
    (lambda L, o: L.CyclicLR(o, 0, 0, mode="CATS"), ValueError, r"^mode must be one of 'triangular'.*'CATS'"),
    (lambda L, o: L.CyclicLR(o, [0.1, 0.2], 1.0), ValueError, r"^base_lr must have one value per parameter group"),
    (lambda L, o: L.OneCycleLR(o, max_lr=1e-3, total_steps=10, anneal_strategy="CATS"), ValueError,
     r"^anneal_strategy must be one of 'cos', 'linear', got 'CATS'"),
    (lambda L, o: L.OneCycleLR(o, max_lr=1e-3, total_steps=10, pct_start=1.1), ValueError,
     r"^pct_start must be in \[0, 1\], got 1.1"),
    (lambda L, o: L.OneCycleLR(o, max_lr=1e-3), ValueError, "total_steps OR"),
    (lambda L, o: L.OneCycleLR(o, max_lr=1e-3, total_steps=0), ValueError, r"^total_steps must be a positive"),
    (lambda L, o: L.OneCycleLR(o, max_lr=1e-3, epochs=2, steps_per_epoch=-1), ValueError,
     r"^steps_per_epoch must be a positive"),
    (lambda L, o: L.OneCycleLR(o, max_lr=1e-3, total_steps=10, pct_start=0.1), None, "phase 1 .* zero length"),
    (lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=0), ValueError, r"^T_0 must be a positive integer, got 0"),
    (lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=10, T_mult=1.5), ValueError, r"^T_mult must be"),
    (lambda L, o: L.CosineAnnealingWarmRestarts(o, T_0=10, eta_min="0"), ValueError, r"^eta_min must be"),
    (lambda L, o: L.MultiplicativeLR(o, 0.95), TypeError, "lr_lambda should be a function"),
    (lambda L, o: L.LambdaLR(o, [lambda t: 1.0] * 2), ValueError, "Expected 1 lr_lambdas"),
    (lambda L, o: L.ReduceLROnPlateau(o, factor=1.0), ValueError, r"^factor must be in \[0, 1\), got 1.0"),
    (lambda L, o: L.ReduceLROnPlateau(o, mode="up"), ValueError, r"^mode must be 'min' or 'max'"),
    (lambda L, o: L.ReduceLROnPlateau(o, threshold_mode="x"), ValueError, r"^threshold_mode must be"),
    (lambda L, o: L.ReduceLROnPlateau(o, min_lr=[0.1, 0.1]), ValueError, r"^min_lr must have one value"),
    (lambda L, o: L.SequentialLR(o, [], []), ValueError, "at least one scheduler"),
    (lambda L, o: L.SequentialLR(o, [L.StepLR(o, 2)], [3]), ValueError, "one milestone fewer"),
    (lambda L, o: L.ChainedScheduler([]), ValueError, "at least one scheduler"),
    (lambda L, o: L.StepLR(o, step_size=0), None, r"^step_size must be a positive integer, got 0"),
    (lambda L, o: L.ExponentialLR(o, gamma=-0.5), None, r"^gamma must be > 0, got -0.5"),
    (lambda L, o: L.CosineAnnealingLR(o, T_max=0), None, r"^T_max must be a positive integer, got 0"),
    (lambda L, o: L.MultiStepLR(o, [3, -1]), None, r"^milestones\[1\] must be a non-negative integer"),
    (lambda L, o: L.StepLR(o, 3, last_epoch=-2), None, r"^last_epoch must be an integer >= -1"),
    (lambda L, o: L.CyclicLR(o, 0.1, 1.0, step_size_up=0), None, r"^step_size_up must be a positive"),
    (lambda L, o: L.CyclicLR(o, 0.1, 1.0, scale_mode="epochs"), None, r"^scale_mode must be one of"),
]


@pytest.mark.parametrize("make, torch_error, message", BAD)
def test_bad_arguments(make, torch_error, message):
    if torch_error is not None:
        with pytest.raises(torch_error):
            make(T, Side(T).opt)
    side = Side(O, momentum=0.9)
    with pytest.raises(torch_error or ValueError, match=message):
        make(O, side.opt)
    assert observe(side.opt) == [0.1, 0.9]  # refused before touching the optimizer


def test_not_an_optimizer():
    with pytest.raises(TypeError, match="optimizer must be an optimizer with param_groups.*got list"):
        ok.StepLR([np.zeros(2)], 3)


def test_counter_milestones_count_repeats():
    opt = Side(O).opt
    sched = ok.MultiStepLR(opt, [2, 2, 5])
    assert sched.milestones == Counter({2: 2, 5: 1})
