"""optimkit.schedules against torch.optim.lr_scheduler (the independent oracle).

torch's schedulers are stepped on a dummy SGD optimizer; the lr at optimizer
step k is the optimizer's lr after k calls of sched.step(). All values are
Python floats (float64) on both sides.

Tolerance: relative 1e-12. torch computes ExponentialLR, StepLR, LinearLR and
CosineAnnealingLR recursively (multiplying the current lr each step), which
accumulates about one rounding per step: the largest gap measured over 1,000
steps was 4.4e-15 relative (CosineAnnealingLR), so 1e-12 holds with margin while a
wrong formula (off-by-one step, wrong phase boundary) is off by >= 1e-4.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.optim import lr_scheduler as tls

from optimkit import schedules as S

N = 1000
RTOL = 1e-12


def torch_lrs(make, lr, n=N):
    """lr used at optimizer steps 0..n-1 by the torch scheduler ``make(opt)``."""
    opt = torch.optim.SGD([torch.zeros(1, dtype=torch.float64, requires_grad=True)], lr=lr)
    sched = make(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(n - 1):
        opt.step()  # no grad: a no-op that keeps torch's step-order check quiet
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return np.array(lrs, dtype=np.float64)


def ours(schedule, n=N):
    return np.array([schedule(k) for k in range(n)], dtype=np.float64)


def assert_close(actual, expected, rtol=RTOL):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0)


# --- torch comparisons, 1,000 steps --------------------------------------------------


def test_constant_matches_torch():
    assert_close(ours(S.constant(0.3)), torch_lrs(lambda o: tls.LambdaLR(o, lambda k: 1.0), 0.3))


@pytest.mark.parametrize(
    "lr, step_size, gamma", [(0.1, 30, 0.1), (0.5, 7, 0.5), (1.0, 1, 0.99), (0.3, 100, 2.0)]
)
def test_step_decay_matches_torch(lr, step_size, gamma):
    expected = torch_lrs(lambda o: tls.StepLR(o, step_size, gamma), lr)
    assert_close(ours(S.step_decay(lr, step_size, gamma)), expected)


@pytest.mark.parametrize("lr, gamma", [(0.1, 0.99), (1.0, 0.999), (0.05, 1.001), (0.1, 0.9)])
def test_exponential_matches_torch(lr, gamma):
    assert_close(ours(S.exponential(lr, gamma)), torch_lrs(lambda o: tls.ExponentialLR(o, gamma), lr))


@pytest.mark.parametrize("lr, total, lr_min", [(0.1, 999, 0.0), (1.0, 400, 1e-3), (0.05, 37, 0.01)])
def test_cosine_matches_torch_up_to_total_then_clamps(lr, total, lr_min):
    sched = S.cosine(lr, total, lr_min)
    expected = torch_lrs(lambda o: tls.CosineAnnealingLR(o, total, lr_min), lr)
    k = min(total + 1, N)
    assert_close(ours(sched, k), expected[:k])
    assert sched(total) == pytest.approx(lr_min, abs=1e-15)
    assert all(sched(t) == lr_min for t in range(total + 1, N))


def test_cosine_clamp_differs_from_torch_past_total():
    # torch keeps following the cosine and is back at lr at 2T; we stay at lr_min.
    lr, total = 0.1, 50
    expected = torch_lrs(lambda o: tls.CosineAnnealingLR(o, total), lr, 2 * total + 1)
    assert expected[2 * total] == pytest.approx(lr, rel=1e-9)
    assert S.cosine(lr, total)(2 * total) == 0.0


@pytest.mark.parametrize(
    "lr, period, mult, lr_min",
    [(0.1, 4, 2, 0.0), (0.1, 10, 1, 1e-3), (0.5, 3, 3, 0.01), (1.0, 7, 2, 0.0), (0.2, 1, 1, 0.0)],
)
def test_cosine_warm_restarts_matches_torch(lr, period, mult, lr_min):
    expected = torch_lrs(lambda o: tls.CosineAnnealingWarmRestarts(o, period, mult, lr_min), lr)
    assert_close(ours(S.cosine_warm_restarts(lr, period, mult, lr_min)), expected)


def test_cosine_warm_restarts_known_values():
    # From the conventions file: T0=4, Tmult=2 never emits lr_min itself.
    got = [S.cosine_warm_restarts(0.1, 4, 2)(k) for k in range(5)]
    np.testing.assert_allclose(got, [0.1, 0.0853553, 0.05, 0.0146447, 0.1], rtol=1e-5)
    # Second cycle is 8 long: restart at 4 + 8 = 12, not at 8.
    sched = S.cosine_warm_restarts(0.1, 4, 2)
    assert sched(8) == pytest.approx(0.05) and sched(12) == 0.1


@pytest.mark.parametrize(
    "max_lr, total, kwargs",
    [
        (0.1, 1000, {}),
        (1.0, 1000, dict(pct_start=0.25, div_factor=10.0, final_div_factor=100.0)),
        (0.01, 999, dict(pct_start=0.5, div_factor=5.0, final_div_factor=1e3)),
        (0.3, 1200, dict(pct_start=0.0)),
        (0.3, 1001, dict(pct_start=0.123)),  # fractional phase boundary
    ],
)
def test_one_cycle_matches_torch(max_lr, total, kwargs):
    n = min(total + 1, N)  # torch allows steps 0..total
    def make(opt):
        return tls.OneCycleLR(opt, max_lr, total_steps=total, cycle_momentum=False, **kwargs)

    assert_close(ours(S.one_cycle(max_lr, total, **kwargs), n), torch_lrs(make, max_lr, n))


def test_one_cycle_past_total_raises_like_torch():
    total = 20
    sched = S.one_cycle(0.1, total)
    at_total = torch_lrs(lambda o: tls.OneCycleLR(o, 0.1, total), 0.1, total + 1)[-1]
    assert sched(total) == pytest.approx(at_total, rel=RTOL) and at_total > sched(total - 1)  # turned back up
    with pytest.raises(ValueError, match="Tried to step"):
        torch_lrs(lambda o: tls.OneCycleLR(o, 0.1, total), 0.1, total + 2)
    with pytest.raises(ValueError, match=r"step 21 .*total_steps=20"):
        sched(total + 1)


def test_one_cycle_structure():
    sched = S.one_cycle(0.1, 1000)  # pct 0.3: peak at step 299
    assert sched(0) == pytest.approx(0.1 / 25)
    assert sched(299) == 0.1
    assert sched(999) == pytest.approx(0.1 / 25 / 1e4)


@pytest.mark.parametrize(
    "lr, warmup, f", [(0.1, 100, 0.1), (1.0, 999, 0.5), (0.3, 10, 1e-3), (0.2, 500, 1.0)]
)
def test_linear_warmup_of_constant_matches_linear_lr(lr, warmup, f):
    expected = torch_lrs(lambda o: tls.LinearLR(o, start_factor=f, end_factor=1.0, total_iters=warmup), lr)
    assert_close(ours(S.linear_warmup(S.constant(lr), warmup, f)), expected)


@pytest.mark.parametrize("inner", ["cosine", "exponential"])
def test_linear_warmup_passes_raw_step_like_chained_scheduler(inner):
    # ChainedScheduler multiplies both factors at the same raw step: linear_warmup's semantics.
    lr, warmup, f, total = 0.1, 50, 0.2, 1000
    if inner == "cosine":  # eta_min=0 keeps torch's cosine recursion purely multiplicative
        wrapped, make_inner = S.cosine(lr, total), lambda o: tls.CosineAnnealingLR(o, total)
    else:
        wrapped, make_inner = S.exponential(lr, 0.998), lambda o: tls.ExponentialLR(o, 0.998)

    def make(opt):
        return tls.ChainedScheduler([tls.LinearLR(opt, f, 1.0, warmup), make_inner(opt)])

    assert_close(ours(S.linear_warmup(wrapped, warmup, f)), torch_lrs(make, lr))


def test_linear_warmup_from_zero():
    inner = S.cosine(0.1, 100)
    sched = S.linear_warmup(inner, 10)
    assert sched(0) == 0.0
    assert sched(5) == pytest.approx(inner(5) * 0.5, rel=1e-15)
    assert [sched(k) for k in range(10, 101)] == [inner(k) for k in range(10, 101)]
    assert S.linear_warmup(inner, 0)(0) == inner(0)  # no warm-up


# --- warmup_cosine: the optax formula, evaluated independently ------------------------


def optax_warmup_cosine(t, init, peak, warmup, decay, end):
    """optax.warmup_cosine_decay_schedule as written in the conventions file."""
    t = np.asarray(t, dtype=np.float64)
    s = np.minimum(t - warmup, decay - warmup)
    with np.errstate(divide="ignore", invalid="ignore"):
        warm = init + (peak - init) * t / warmup
        cos = end + (peak - end) * (1 + np.cos(np.pi * s / (decay - warmup))) / 2
    return np.where(t < warmup, warm, cos)


@pytest.mark.parametrize(
    "peak, warmup, total, lr_min",
    [(0.1, 100, 1000, 0.0), (1.0, 1, 800, 1e-3), (0.5, 0, 500, 0.1), (3e-4, 250, 251, 1e-5)],
)
def test_warmup_cosine_matches_optax_formula(peak, warmup, total, lr_min):
    sched = S.warmup_cosine(peak, warmup, total, lr_min)
    assert_close(ours(sched), optax_warmup_cosine(np.arange(N), 0.0, peak, warmup, total, lr_min))
    assert sched(0) == (0.0 if warmup else peak)
    assert sched(warmup) == peak
    assert all(sched(t) == lr_min for t in range(total, total + 50))


def test_warmup_cosine_without_decay_phase_clamps():
    sched = S.warmup_cosine(1.0, 10, 10, 0.01)
    assert sched(9) == pytest.approx(0.9) and sched(10) == 0.01


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 200), st.integers(1, 400), st.floats(0.0, 0.9))
def test_warmup_cosine_shape(warmup, extra, min_frac):
    total = warmup + extra
    sched = S.warmup_cosine(1.0, warmup, total, min_frac)
    vals = ours(sched, total + 5)
    assert np.all(np.diff(vals[: warmup + 1]) > 0)  # strictly rising warm-up
    assert np.all(np.diff(vals[warmup:]) <= 1e-15)  # then never rising
    assert vals[warmup:].min() >= min_frac - 1e-15 and vals.max() == 1.0


# --- ReduceLROnPlateau vs torch ---------------------------------------------------------

# threshold 0.01 in both modes: near 10 the rel threshold (0.1) is wider than the
# abs one, near 0.5 narrower (0.005), so rel and abs see different improvements.
# Then plateaus, a cooldown window, and enough bad epochs to hit min_lr.
SEG_TEN = [10.0, 9.0, 8.96, 8.93, 8.92, 8.915]  # rel: all bad after 9.0; abs: all better
SEG_HALF = [0.5, 0.493, 0.486, 0.479, 0.472, 0.465, 0.47, 0.47, 0.47, 0.47]  # rel better, abs bad
SEG_END = [0.3, 0.3, 0.2999, 0.29] + [0.7] * 12 + [0.2, 0.2, 0.21]


def script(mode):
    if mode == "min":
        return SEG_TEN + SEG_HALF + SEG_END
    # max mode sees mirror images at the same scale, so the same events happen.
    return [20 - m for m in SEG_TEN] + [1 - m for m in SEG_HALF + SEG_END]


COMBOS = [(m, t) for m in ("min", "max") for t in ("rel", "abs")]
HP = dict(factor=0.5, patience=2, threshold=0.01, cooldown=2, min_lr=0.012)


def torch_plateau(metrics, lr, **kwargs):
    opt = torch.optim.SGD([torch.zeros(1, dtype=torch.float64, requires_grad=True)], lr=lr)
    sched = tls.ReduceLROnPlateau(opt, **kwargs)
    out = []
    for m in metrics:
        sched.step(m)
        out.append(opt.param_groups[0]["lr"])
    return out, sched


@pytest.mark.parametrize("mode, threshold_mode", COMBOS)
def test_plateau_matches_torch(mode, threshold_mode):
    metrics = script(mode)
    expected, tsched = torch_plateau(metrics, 0.1, mode=mode, threshold_mode=threshold_mode, **HP)
    ours_ = S.ReduceLROnPlateau(0.1, mode=mode, threshold_mode=threshold_mode, **HP)
    got = [ours_.step(m) for m in metrics]
    assert got == expected  # same operations -> bit-identical
    assert (ours_.best, ours_.num_bad_epochs, ours_.cooldown_counter) == (
        tsched.best, tsched.num_bad_epochs, tsched.cooldown_counter,
    )  # fmt: skip
    # The script really exercises the rules: several reductions, ending at min_lr.
    assert len(set(got)) >= 5 and got[-1] == HP["min_lr"]


@pytest.mark.parametrize("mode", ["min", "max"])
def test_plateau_script_separates_rel_from_abs(mode):
    # Guard for the test above: a rel/abs mix-up must change the trajectory.
    rel, _ = torch_plateau(script(mode), 0.1, mode=mode, threshold_mode="rel", **HP)
    abs_, _ = torch_plateau(script(mode), 0.1, mode=mode, threshold_mode="abs", **HP)
    assert rel != abs_


@pytest.mark.parametrize("mode, threshold_mode", COMBOS)
def test_plateau_ties_are_not_improvements(mode, threshold_mode):
    # threshold 0: a repeated value is not "better" (strict comparison), so it reduces.
    metrics = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5] if mode == "min" else [0.5, 0.5, 0.5, 1.0, 1.0, 1.0]
    kwargs = dict(mode=mode, threshold_mode=threshold_mode, threshold=0.0, patience=1)
    expected, _ = torch_plateau(metrics, 0.1, **kwargs)
    sched = S.ReduceLROnPlateau(0.1, **kwargs)
    assert [sched.step(m) for m in metrics] == expected
    assert expected[2] < 0.1


@pytest.mark.parametrize("mode, threshold_mode", COMBOS)
def test_plateau_defaults_match_torch(mode, threshold_mode):
    rng = np.random.default_rng(0)
    metrics = list(np.round(1 + rng.normal(0, 0.05, 200), 3))
    expected, _ = torch_plateau(metrics, 0.5, mode=mode, threshold_mode=threshold_mode)
    sched = S.ReduceLROnPlateau(0.5, mode=mode, threshold_mode=threshold_mode)
    got = [sched.step(m) for m in metrics]
    assert got == expected and got[-1] < 0.5


def test_plateau_eps_and_nan_like_torch():
    metrics = [1.0, float("nan"), 1.0, 1.0, 1.0, 1.0]  # NaN counts as a bad epoch
    finals = {}
    for lr in (1e-8, 0.1):  # 1e-8 * 0.5 is a change below eps: ignored
        expected, _ = torch_plateau(metrics, lr, factor=0.5, patience=1)
        sched = S.ReduceLROnPlateau(lr, factor=0.5, patience=1)
        got = [sched.step(m) for m in metrics]
        assert got == expected
        finals[lr] = got[-1]
    assert finals == {1e-8: 1e-8, 0.1: 0.025}


class FakeOptimizer:
    def __init__(self, lr):
        self.lr = lr


def test_plateau_attached_to_optimizer():
    metrics = script("min")
    opt = FakeOptimizer(0.1)
    sched = S.ReduceLROnPlateau(opt, **HP)
    got = []
    for m in metrics:
        got.append(sched.step(m))
        assert opt.lr == got[-1] == sched.lr
    assert got == torch_plateau(metrics, 0.1, **HP)[0]
    opt.lr = 0.05  # an outside change is respected, as torch reads param_groups
    assert sched.lr == 0.05


def test_plateau_state_dict_round_trip():
    metrics = script("max")
    kwargs = dict(mode="max", threshold_mode="abs", **HP)
    full = S.ReduceLROnPlateau(0.1, **kwargs)
    expected = [full.step(m) for m in metrics]
    first = S.ReduceLROnPlateau(0.1, **kwargs)
    got = [first.step(m) for m in metrics[:13]]
    resumed = S.ReduceLROnPlateau(0.7)  # different everything: all restored from the state
    resumed.load_state_dict(first.state_dict())
    got += [resumed.step(m) for m in metrics[13:]]
    assert got == expected
    assert resumed.state_dict() == full.state_dict()


# --- names and attributes ---------------------------------------------------------------


def test_readable_names():
    assert S.cosine(0.1, 100).__name__ == "cosine(lr=0.1, total_steps=100)"
    assert "cosine(lr=0.1, total_steps=100) at" in repr(S.cosine(0.1, 100))
    assert S.cosine(0.1, 100, 0.01).__qualname__ == "cosine(lr=0.1, total_steps=100, lr_min=0.01)"
    warm = S.linear_warmup(S.cosine(0.1, 100), 10)
    assert warm.__name__ == "linear_warmup(schedule=cosine(lr=0.1, total_steps=100), warmup_steps=10)"
    assert warm.total_steps == 100 and S.exponential(0.1, 0.9).total_steps is None
    assert S.one_cycle(0.1, 50).hparams["div_factor"] == 25.0


# --- bad input ---------------------------------------------------------------------------

BAD_FACTORIES = [
    (lambda: S.constant(0.0), "lr", "0.0"),
    (lambda: S.constant(-0.1), "lr", "-0.1"),
    (lambda: S.constant(float("inf")), "lr", "inf"),
    (lambda: S.constant(float("nan")), "lr", "nan"),
    (lambda: S.constant("0.1"), "lr", "'0.1'"),
    (lambda: S.step_decay(0.1, 0), "step_size", "0"),
    (lambda: S.step_decay(0.1, 2.5), "step_size", "2.5"),
    (lambda: S.step_decay(0.1, 10, gamma=0.0), "gamma", "0.0"),
    (lambda: S.exponential(0.1, -0.9), "gamma", "-0.9"),
    (lambda: S.cosine(0.1, 0), "total_steps", "0"),
    (lambda: S.cosine(0.1, 10, lr_min=-1e-3), "lr_min", "-0.001"),
    (lambda: S.cosine(0.1, 10, lr_min=0.2), "lr_min", "0.2"),
    (lambda: S.cosine_warm_restarts(0.1, 0), "period", "0"),
    (lambda: S.cosine_warm_restarts(0.1, 5, period_mult=1.5), "period_mult", "1.5"),
    (lambda: S.linear_warmup(S.constant(0.1), -1), "warmup_steps", "-1"),
    (lambda: S.linear_warmup(S.constant(0.1), 5, start_factor=1.5), "start_factor", "1.5"),
    (lambda: S.warmup_cosine(0.1, -1, 10), "warmup_steps", "-1"),
    (lambda: S.warmup_cosine(0.1, 11, 10), "warmup_steps", "11"),
    (lambda: S.warmup_cosine(0.1, 5, 0), "total_steps", "0"),
    (lambda: S.warmup_cosine(0.0, 5, 10), "peak_lr", "0.0"),
    (lambda: S.one_cycle(0.1, 0), "total_steps", "0"),
    (lambda: S.one_cycle(0.1, 100, pct_start=1.0), "pct_start", "1.0"),
    (lambda: S.one_cycle(0.1, 10, pct_start=0.1), "pct_start", "0.1"),
    (lambda: S.one_cycle(0.1, 100, div_factor=0), "div_factor", "0"),
    (lambda: S.one_cycle(0.1, 100, final_div_factor=-1.0), "final_div_factor", "-1.0"),
    (lambda: S.ReduceLROnPlateau(0.0), "lr", "0.0"),
    (lambda: S.ReduceLROnPlateau(0.1, mode="minimum"), "mode", "'minimum'"),
    (lambda: S.ReduceLROnPlateau(0.1, threshold_mode="relative"), "threshold_mode", "'relative'"),
    (lambda: S.ReduceLROnPlateau(0.1, factor=1.0), "factor", "1.0"),
    (lambda: S.ReduceLROnPlateau(0.1, factor=-0.5), "factor", "-0.5"),
    (lambda: S.ReduceLROnPlateau(0.1, patience=-1), "patience", "-1"),
    (lambda: S.ReduceLROnPlateau(0.1, cooldown=1.5), "cooldown", "1.5"),
    (lambda: S.ReduceLROnPlateau(0.1, threshold=-1e-4), "threshold", "-0.0001"),
    (lambda: S.ReduceLROnPlateau(0.1, threshold=1.0), "threshold", "1.0"),
    (lambda: S.ReduceLROnPlateau(0.1, min_lr=-1.0), "min_lr", "-1.0"),
    (lambda: S.ReduceLROnPlateau(0.1, eps=float("nan")), "eps", "nan"),
    (lambda: S.ReduceLROnPlateau(FakeOptimizer(-0.1)), "optimizer.lr", "-0.1"),
]


@pytest.mark.parametrize("make, arg, value", BAD_FACTORIES)
def test_bad_arguments_raise_value_error_naming_them(make, arg, value):
    with pytest.raises(ValueError, match=rf"^{arg}\b.*{value}"):
        make()


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: S.linear_warmup(0.1, 5), "^schedule must be"),
        (lambda: S.ReduceLROnPlateau("lr"), "^lr_or_optimizer must be"),
    ],
)
def test_bad_argument_types(make, match):
    with pytest.raises(TypeError, match=match):
        make()


ALL_SCHEDULES = [
    S.constant(0.1), S.step_decay(0.1, 5), S.exponential(0.1, 0.9), S.cosine(0.1, 10),
    S.cosine_warm_restarts(0.1, 3, 2), S.linear_warmup(S.constant(0.1), 5), S.warmup_cosine(0.1, 2, 10),
    S.one_cycle(0.1, 10),
]  # fmt: skip


@pytest.mark.parametrize("sched", ALL_SCHEDULES, ids=lambda s: s.__name__)
@pytest.mark.parametrize("step", [-1, 1.5, 2.0, True, "3", None])
def test_bad_step_raises_naming_step(sched, step):
    before = sched(3)
    with pytest.raises(ValueError, match=rf"^step must be a non-negative integer, got {step!r}"):
        sched(step)
    assert sched(3) == before  # pure: nothing changed
    assert isinstance(sched(np.int64(3)), float)


def test_plateau_bad_load_changes_nothing():
    sched = S.ReduceLROnPlateau(0.1, **HP)
    for m in script("min")[:8]:
        sched.step(m)
    before = sched.state_dict()
    good = S.ReduceLROnPlateau(0.5).state_dict()
    for key, bad, arg in [("mode", "up", "mode"), ("num_bad_epochs", -1, "num_bad_epochs"), ("lr", 0.0, "lr"),
                          ("factor", 2.0, "factor"), ("best", "x", "best")]:  # fmt: skip
        with pytest.raises(ValueError, match=arg):
            sched.load_state_dict({**good, key: bad})
        assert sched.state_dict() == before
    with pytest.raises(ValueError, match="missing keys.*'lr'"):
        sched.load_state_dict({k: v for k, v in good.items() if k != "lr"})
    assert sched.state_dict() == before


def test_plateau_bad_construction_leaves_optimizer_alone():
    opt = FakeOptimizer(0.1)
    with pytest.raises(ValueError, match="factor"):
        S.ReduceLROnPlateau(opt, factor=1.5)
    assert opt.lr == 0.1


def test_torch_is_quiet():
    # Guard for the oracle itself: stepping order must not trigger torch's warnings.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch_lrs(lambda o: tls.StepLR(o, 3), 0.1, 10)
    assert math.isclose(torch_lrs(lambda o: tls.StepLR(o, 3), 0.1, 10)[3], 0.01)
