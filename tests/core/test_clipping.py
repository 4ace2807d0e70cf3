"""optimkit.clipping against torch.nn.utils.clip_grad_norm_ / clip_grad_value_ (the oracle).

float64 on both sides. Tolerance: relative 1e-12 on gradients and norms; the
measured gap is <= 4e-16 (the same reductions, possibly summed in another
order), while the behaviours under test differ by >= 1e-7 (the 1e-6 guard at
a norm of ~10) or by far more (wrong norm, conditional scaling).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from optimkit import clipping
from optimkit.clipping import NonFiniteNormError, clip_grad_norm, clip_grad_value

RTOL = 1e-12
SHAPES = [(3,), (2, 4), (5, 1, 2), (), (7,)]
NORM_TYPES = [1.0, 2.0, 3.0, math.inf]


def random_grads(seed, shapes=SHAPES, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 2.0, s).astype(dtype) for s in shapes]


def torch_clip_norm(grads, max_norm, norm_type, **kwargs):
    """Clipped copies of ``grads`` and the returned total norm, per torch."""
    params = []
    for g in grads:
        p = torch.zeros(g.shape, dtype=torch.from_numpy(g).dtype, requires_grad=True)
        p.grad = torch.from_numpy(g.copy())
        params.append(p)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type, **kwargs)
    return [p.grad.numpy() for p in params], float(total)


def total_norm(grads, p):
    norms = [np.linalg.norm(g.ravel(), p) for g in grads]
    return float(np.linalg.norm(norms, p))


@pytest.mark.parametrize("norm_type", NORM_TYPES)
@pytest.mark.parametrize("where", ["below", "at", "above"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clip_grad_norm_matches_torch(norm_type, where, seed):
    grads = random_grads(seed)
    norm = total_norm(grads, norm_type)
    max_norm = {"below": 2 * norm, "at": norm, "above": norm / 3}[where]
    expected, expected_total = torch_clip_norm(grads, max_norm, norm_type)
    before = [g.copy() for g in grads]
    total = clip_grad_norm(grads, max_norm, norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(expected_total, rel=RTOL)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=RTOL, atol=0)
    # torch scales unconditionally: exactly at the threshold the grads shrink by ~1e-6/norm.
    if where == "at":
        ratio = grads[0].ravel()[0] / before[0].ravel()[0]
        assert ratio == pytest.approx(norm / (norm + 1e-6), rel=1e-12) and ratio < 1
    if where == "below":
        assert all(np.array_equal(g, b) for g, b in zip(grads, before))  # coef clamped to exactly 1


def test_clip_grad_norm_float32_matches_torch():
    grads = random_grads(3, dtype=np.float32)
    expected, expected_total = torch_clip_norm(grads, 1.0, 2.0)
    total = clip_grad_norm(grads, 1.0)
    assert total == pytest.approx(expected_total, rel=1e-6)  # torch sums in float32, we in float64
    for g, e in zip(grads, expected):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, e, rtol=1e-6)


@pytest.mark.parametrize("norm_type", [1.0, 2.0, 3.0])
def test_empty_arrays_contribute_nothing(norm_type):
    grads = random_grads(4, [(3,), (0,), (2, 0)])
    expected, expected_total = torch_clip_norm(grads, 0.5, norm_type)
    assert clip_grad_norm(grads, 0.5, norm_type) == pytest.approx(expected_total, rel=RTOL)
    np.testing.assert_allclose(grads[0], expected[0], rtol=RTOL)
    # torch cannot take the inf-norm of an empty tensor; we skip empty arrays.
    grads = random_grads(4, [(3,), (0,)])
    assert clip_grad_norm(grads, 10.0, math.inf) == pytest.approx(np.abs(random_grads(4, [(3,)])[0]).max())


def test_empty_list_returns_zero_like_torch():
    assert clip_grad_norm([], 1.0) == 0.0 == float(torch.nn.utils.clip_grad_norm_([], 1.0))


def test_zero_grads_stay_zero():
    grads = [np.zeros(4)]
    assert clip_grad_norm(grads, 1.0) == 0.0
    assert np.array_equal(grads[0], np.zeros(4))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_nonfinite_total_follows_torch(bad, norm_type):
    grads = random_grads(5)
    grads[1][0, 2] = bad
    expected, expected_total = torch_clip_norm(grads, 1.0, norm_type)
    total = clip_grad_norm(grads, 1.0, norm_type)
    assert (math.isnan(total) and math.isnan(expected_total)) or total == expected_total
    for g, e in zip(grads, expected):
        np.testing.assert_array_equal(g, e)  # NaN == NaN here; inf total: finite -> 0, inf -> NaN
    assert np.isnan(grads[1][0, 2])


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_error_if_nonfinite_raises_and_modifies_nothing(bad):
    grads = random_grads(6)
    grads[2][3, 0, 1] = bad
    before = [g.copy() for g in grads]
    with pytest.raises(RuntimeError, match="non-finite"):  # torch's error
        torch_clip_norm(grads, 1.0, 2.0, error_if_nonfinite=True)
    with pytest.raises(NonFiniteNormError, match=rf"total norm of order 2.0 .* is {bad}"):
        clip_grad_norm(grads, 1.0, error_if_nonfinite=True)
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)
    assert issubclass(NonFiniteNormError, ValueError) and issubclass(NonFiniteNormError, RuntimeError)
    # finite grads pass through error_if_nonfinite=True untouched by the check
    ok = random_grads(6)
    norm = total_norm(ok, 2.0)
    assert clip_grad_norm(ok, 1.0, error_if_nonfinite=True) == pytest.approx(norm, rel=RTOL)
    assert total_norm(ok, 2.0) == pytest.approx(1.0, rel=1e-6)


finite = st.floats(-1e6, 1e6, allow_nan=False)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)
grad_lists = st.lists(hnp.arrays(np.float64, shapes, elements=finite), min_size=1, max_size=4)


@settings(max_examples=200, deadline=None)
@given(grad_lists, st.floats(1e-3, 1e3), st.sampled_from(NORM_TYPES))
def test_clipped_norm_is_bounded_and_direction_kept(grads, max_norm, norm_type):
    before = [g.copy() for g in grads]
    total = clip_grad_norm(grads, max_norm, norm_type)
    assert total == pytest.approx(total_norm(before, norm_type), rel=1e-12, abs=0)
    assert total_norm(grads, norm_type) <= max_norm * (1 + 1e-12)
    coef = min(1.0, max_norm / (total + 1e-6))
    for g, b in zip(grads, before):
        np.testing.assert_allclose(g, b * coef, rtol=1e-15, atol=0)


# --- clip_grad_value ----------------------------------------------------------------------


@pytest.mark.parametrize("clip_value", [0.0, 0.5, 1.7, 100.0])
def test_clip_grad_value_matches_torch(clip_value):
    grads = random_grads(7)
    grads[0][1] = math.nan
    expected = [torch.from_numpy(g.copy()) for g in grads]
    params = []
    for e in expected:
        p = torch.zeros_like(e, requires_grad=True)
        p.grad = e
        params.append(p)
    torch.nn.utils.clip_grad_value_(params, clip_value)
    assert clip_grad_value(grads, clip_value) is None
    for g, p in zip(grads, params):
        np.testing.assert_array_equal(g, p.grad.numpy())
    assert all(np.nanmax(np.abs(g), initial=0) <= clip_value for g in grads)


# --- bad input: error type, argument named, nothing modified ----------------------------

BAD_NORM_CALLS = [
    (dict(max_norm=-1.0), ValueError, r"^max_norm must be >= 0, got -1.0"),
    (dict(max_norm=math.nan), ValueError, r"^max_norm must be a finite number, got nan"),
    (dict(max_norm="1"), ValueError, r"^max_norm must be a finite number, got '1'"),
    (dict(max_norm=1.0, norm_type=0), ValueError, r"^norm_type must be > 0 or math.inf, got 0"),
    (dict(max_norm=1.0, norm_type=-2.0), ValueError, r"^norm_type must be > 0 or math.inf, got -2.0"),
    (dict(max_norm=1.0, norm_type=math.nan), ValueError, r"^norm_type .* got nan"),
    (dict(max_norm=1.0, norm_type="fro"), ValueError, r"^norm_type .* got 'fro'"),
]


@pytest.mark.parametrize("kwargs, exc, match", BAD_NORM_CALLS)
def test_clip_grad_norm_bad_arguments(kwargs, exc, match):
    grads = random_grads(8)
    before = [g.copy() for g in grads]
    with pytest.raises(exc, match=match):
        clip_grad_norm(grads, **kwargs)
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)


def bad_grad_lists():
    ro = np.ones(3)
    ro.flags.writeable = False
    return [
        ([np.ones(3), np.arange(4)], TypeError, r"^grads\[1\] has dtype int64.*floating point"),
        ([np.ones(3), [1.0, 2.0]], TypeError, r"^grads\[1\] must be a NumPy array, got list"),
        ([np.ones(3), ro], ValueError, r"^grads\[1\] is read-only"),
        (np.ones(3), TypeError, r"^grads must be a list .*single array"),
        (5.0, TypeError, r"^grads must be a list of NumPy arrays, got float"),
    ]


@pytest.mark.parametrize("case", range(len(bad_grad_lists())))
@pytest.mark.parametrize("func, arg", [(clip_grad_norm, 0.1), (clip_grad_value, 0.1)])
def test_bad_grads_rejected_before_any_change(case, func, arg):
    grads, exc, match = bad_grad_lists()[case]
    before = [np.array(g, copy=True) for g in grads] if isinstance(grads, list) else None
    with pytest.raises(exc, match=match):
        func(grads, arg)
    if before is not None:  # the valid first array was not scaled before the error
        for g, b in zip(grads, before):
            np.testing.assert_array_equal(g, b)


@pytest.mark.parametrize(
    "clip_value, match",
    [(-0.5, r"^clip_value must be >= 0, got -0.5"), (math.inf, r"^clip_value must be a finite number, got inf")],
)
def test_clip_grad_value_bad_clip_value(clip_value, match):
    grads = random_grads(9)
    before = [g.copy() for g in grads]
    with pytest.raises(ValueError, match=match):
        clip_grad_value(grads, clip_value)
    for g, b in zip(grads, before):
        np.testing.assert_array_equal(g, b)


def test_an_infinite_max_norm_only_measures_like_torch():
    grads = random_grads(11, [(3,), (2, 2)])
    params = [torch.tensor(g.copy(), requires_grad=True) for g in grads]
    for p, g in zip(params, grads):
        p.grad = torch.from_numpy(g.copy())
    expected_total = float(torch.nn.utils.clip_grad_norm_(params, math.inf))
    before = [g.copy() for g in grads]
    assert clip_grad_norm(grads, math.inf) == pytest.approx(expected_total, rel=1e-12)
    for g, b, p in zip(grads, before, params):
        np.testing.assert_array_equal(g, b)
        np.testing.assert_array_equal(g, p.grad.numpy())


# --- the global 2-norm and optax's rule (optimkit.clipping.global_norm, clip_by_global_norm) ---

@pytest.mark.parametrize("seed", [0, 1, 2])
def test_global_norm_is_torchs_total_two_norm(seed):
    grads = random_grads(seed)
    expected = float(torch.linalg.vector_norm(torch.cat([torch.from_numpy(g).reshape(-1) for g in grads])))
    assert clipping.global_norm(grads) == pytest.approx(expected, rel=RTOL)
    assert clipping.global_norm([]) == 0.0


@pytest.mark.parametrize("where", ["below", "at", "above"])
def test_clip_by_global_norm_is_optaxs_rule(where):
    grads = random_grads(3)
    norm = clipping.global_norm(grads)
    c = {"below": 2 * norm, "at": norm, "above": norm / 3}[where]
    before = [g.copy() for g in grads]
    out = clipping.clip_by_global_norm(grads, c)
    for g, b, o in zip(grads, before, out):
        np.testing.assert_array_equal(g, b)                     # new arrays; the inputs stay
        assert o is not g
        expected = b if where == "below" else b / norm * c    # no 1e-6, unlike torch
        np.testing.assert_array_equal(o, expected)
