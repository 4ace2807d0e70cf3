"""Properties of the optimizers that hold by algebra, checked with hypothesis,
plus the pure-function face, state_dict round trips and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

import optimkit
from optimkit import rules

lrs = st.floats(1e-4, 0.5)
betas = st.floats(0.0, 0.999)
seeds = st.integers(0, 2**32 - 1)


def stream(seed, shapes, steps):
    rng = np.random.default_rng(seed)
    return [[rng.normal(size=s) for s in shapes] for _ in range(steps)]


def start(seed, shapes):
    rng = np.random.default_rng(seed + 1)
    return [rng.normal(size=s) for s in shapes]


SHAPES = [(3,), (2, 4)]


@settings(max_examples=40, deadline=None)
@given(seed=seeds, lr=lrs)
def test_sgd_without_momentum_is_plain_gradient_descent(seed, lr):
    params = start(seed, SHAPES)
    expected = [p.copy() for p in params]
    opt = optimkit.SGD(params, lr=lr, momentum=0.0, dampening=0.3)  # dampening unused at momentum 0
    for grads in stream(seed, SHAPES, 20):
        opt.step(grads)
        expected = [p - lr * g for p, g in zip(expected, grads)]
    for p, e in zip(params, expected):
        np.testing.assert_array_equal(p, e)  # same single operation: exact


@settings(max_examples=40, deadline=None)
@given(seed=seeds, lr=lrs, beta1=betas, beta2=betas, amsgrad=st.booleans())
def test_adamw_without_decay_is_adam(seed, lr, beta1, beta2, amsgrad):
    a, b = start(seed, SHAPES), start(seed, SHAPES)
    opt_a = optimkit.Adam(a, lr=lr, betas=(beta1, beta2), amsgrad=amsgrad)
    opt_b = optimkit.AdamW(b, lr=lr, betas=(beta1, beta2), amsgrad=amsgrad, weight_decay=0.0)
    for grads in stream(seed, SHAPES, 30):
        opt_a.step(grads)
        opt_b.step(grads)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, lr=lrs, beta2=st.floats(0.5, 0.999), eps=st.floats(1e-8, 1e-2))
def test_adam_with_beta1_zero_is_bias_corrected_rmsprop(seed, lr, beta2, eps):
    # Adam(beta1=0):  p -= lr * g / (sqrt(v)/sqrt(bc2) + eps).
    # RMSprop(alpha=beta2) with lr' = lr*sqrt(bc2), eps' = eps*sqrt(bc2) is the same step
    # (multiply numerator and denominator by sqrt(bc2)), so they agree to rounding.
    a, b = start(seed, SHAPES), start(seed, SHAPES)
    adam = optimkit.Adam(a, lr=lr, betas=(0.0, beta2), eps=eps)
    rms = optimkit.RMSprop(b, alpha=beta2)
    for t, grads in enumerate(stream(seed, SHAPES, 30), start=1):
        root_bc2 = math.sqrt(1 - beta2 ** t)
        rms.param_groups[0].update(lr=lr * root_bc2, eps=eps * root_bc2)
        adam.step(grads)
        rms.step(grads)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=1e-10, atol=1e-12)


CONFIGS = [
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1), rules.sgd_init, rules.sgd_update),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01), rules.sgd_init, rules.sgd_update),
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, eps=1e-3), rules.adagrad_init, rules.adagrad_update),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True),
     lambda p: rules.rmsprop_init(p, momentum=0.5, centered=True), rules.rmsprop_update),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1),
     lambda p: rules.adam_init(p, amsgrad=True), rules.adam_update),
    ("AdamW", dict(lr=0.01, weight_decay=0.1), rules.adamw_init, rules.adamw_update),
    ("NAdam", dict(lr=0.01), rules.nadam_init, rules.nadam_update),
    ("RAdam", dict(lr=0.01), rules.radam_init, rules.radam_update),
    ("Adamax", dict(lr=0.01, weight_decay=0.1), rules.adamax_init, rules.adamax_update),
    ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.01), rules.adadelta_init,
     rules.adadelta_update),
    ("Rprop", dict(lr=0.01, etas=(0.4, 1.3)), lambda p: rules.rprop_init(p, lr=0.01),
     lambda g, s, p, lr, **kw: rules.rprop_update(g, s, p, **kw)),  # lr: the first step sizes
    ("ASGD", dict(lr=0.05, lambd=0.01, t0=10), lambda p: rules.asgd_init(p, lr=0.05),
     rules.asgd_update),
    ("Adafactor", dict(lr=0.05, weight_decay=0.1, d=1.5), rules.adafactor_init,
     rules.adafactor_update),
]


@pytest.mark.parametrize("name,kwargs,init,update", CONFIGS, ids=[c[0] for c in CONFIGS])
def test_pure_functions_equal_the_classes_and_do_not_mutate(name, kwargs, init, update):
    params = start(7, SHAPES)
    pure = [p.copy() for p in params]
    state = init(pure)
    opt = optimkit.OPTIMIZERS[name](params, **kwargs)
    for grads in stream(7, SHAPES, 25):
        before_params = [p.copy() for p in pure]
        before_grads = [g.copy() for g in grads]
        new_pure, new_state = update(grads, state, pure, **kwargs)
        # Inputs untouched: the function is pure.
        for x, y in zip(pure, before_params):
            np.testing.assert_array_equal(x, y)
        for x, y in zip(grads, before_grads):
            np.testing.assert_array_equal(x, y)
        pure, state = new_pure, new_state
        opt.step(grads)
    for x, y in zip(pure, params):
        np.testing.assert_array_equal(x, y)  # one kernel behind both faces: bit for bit
    assert state.step == 25


@pytest.mark.parametrize("name,kwargs", [(c[0], c[1]) for c in CONFIGS], ids=[c[0] for c in CONFIGS])
def test_state_dict_round_trip_resumes_bit_for_bit(name, kwargs):
    grads_stream = stream(3, SHAPES, 40)
    straight = start(3, SHAPES)
    opt = optimkit.OPTIMIZERS[name](straight, **kwargs)
    for grads in grads_stream:
        opt.step(grads)

    first = start(3, SHAPES)
    opt1 = optimkit.OPTIMIZERS[name](first, **kwargs)
    for grads in grads_stream[:17]:
        opt1.step(grads)
    saved = opt1.state_dict()
    resumed = [p.copy() for p in first]
    for grads in grads_stream[17:20]:  # stepping on must not alter the saved copy
        opt1.step(grads)
    # A fresh optimizer built with other settings takes everything from the state_dict.
    other = dict(lr=123.0, momentum=0.1) if name == "SGD" else dict(lr=123.0)
    opt2 = optimkit.OPTIMIZERS[name](resumed, **other)
    opt2.load_state_dict(saved)
    assert opt2.lr == kwargs["lr"]
    for grads in grads_stream[17:]:
        opt2.step(grads)
    for x, y in zip(resumed, straight):
        np.testing.assert_array_equal(x, y)


# --- bad input: a clear error naming the argument and value, and nothing changed ---------------

BAD_ARGS = [
    ("SGD", dict(lr=-0.1), "lr"),
    ("SGD", dict(lr=float("nan")), "lr"),
    ("SGD", dict(lr=float("inf")), "lr"),
    ("SGD", dict(lr=0.1, nesterov=True), "nesterov"),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "nesterov"),
    ("SGD", dict(lr=0.1, momentum=-0.5), "momentum"),
    ("SGD", dict(lr=0.1, weight_decay=-1), "weight_decay"),
    ("Adam", dict(betas=(1.0, 0.999)), r"betas\[0\]"),
    ("Adam", dict(betas=(0.9, -0.1)), r"betas\[1\]"),
    ("Adam", dict(betas=0.9), "betas"),
    ("Adam", dict(eps=0.0), "eps"),
    ("AdamW", dict(eps=-1e-8), "eps"),
    ("NAdam", dict(momentum_decay=-1), "momentum_decay"),
    ("RAdam", dict(betas=(0.9, 1.5)), r"betas\[1\]"),
    ("Adagrad", dict(lr_decay=-0.1), "lr_decay"),
    ("Adagrad", dict(initial_accumulator_value=-1), "initial_accumulator_value"),
    ("RMSprop", dict(alpha=-0.1), "alpha"),
    ("RMSprop", dict(eps=0), "eps"),
    ("Adamax", dict(betas=(0.9, 1.0)), r"betas\[1\]"),
    ("Adamax", dict(eps=-1e-8), "eps"),
    ("Adadelta", dict(rho=1.5), "rho"),
    ("Rprop", dict(etas=(1.0, 0.5)), "etas"),
    ("Rprop", dict(step_sizes=(1.0, 0.5)), "step_sizes"),
    ("ASGD", dict(lambd=-1.0), "lambd"),
    ("Adafactor", dict(beta2_decay=0.5), "beta2_decay"),
    ("Adafactor", dict(d=0.5), "clipping threshold"),
    ("Adafactor", dict(eps=(None, -1.0)), r"eps\[1\]"),
]


@pytest.mark.parametrize("name,kwargs,match", BAD_ARGS, ids=[f"{n}-{m}" for n, _, m in BAD_ARGS])
def test_bad_hyperparameters_are_named(name, kwargs, match):
    with pytest.raises(ValueError, match=match):
        optimkit.OPTIMIZERS[name]([np.zeros(2)], **kwargs)


@pytest.mark.parametrize("name", [n for n in optimkit.OPTIMIZERS if n != "Muon"])  # 2-D only:
def test_bad_gradients_and_params_change_nothing(name):  # Muon's in test_muon.py
    params = [np.array([1.0, 2.0]), np.ones((2, 2))]
    opt = optimkit.OPTIMIZERS[name](params, lr=0.1)
    opt.step([np.ones(2), np.ones((2, 2))])
    snapshot = [p.copy() for p in params]
    state = opt.state_dict()
    cases = [
        ([np.ones(2)], ValueError, "got 1 gradients for 2 parameters"),
        ([np.ones(2), np.ones((2, 1))], ValueError, r"grads\[1\] has shape \(2, 1\) but params\[1\] has shape \(2, 2\)"),
        (np.ones(2), TypeError, "single array"),
        ([np.ones(2), np.array([["a", "b"], ["c", "d"]])], TypeError, r"grads\[1\]"),
        ([np.ones(2), scipy.sparse.csr_matrix(np.eye(2))], TypeError,
         r"grads\[1\] is a sparse matrix \(csr_matrix\).*grads\[1\]\.toarray\(\)"),
    ]
    for grads, error, match in cases:
        with pytest.raises(error, match=match):
            opt.step(grads)
    opt.param_groups[0]["lr"] = -1.0  # written behind the setter's back: caught at step()
    with pytest.raises(ValueError, match="lr must be >= 0, got -1.0"):
        opt.step([np.ones(2), np.ones((2, 2))])
    with pytest.raises(ValueError, match="lr"):
        opt.lr = float("nan")
    for p, s in zip(params, snapshot):
        np.testing.assert_array_equal(p, s)
    after = opt.state_dict()
    for i in state["state"]:
        for key, value in state["state"][i].items():
            np.testing.assert_array_equal(after["state"][i][key], value)


@pytest.mark.parametrize("params,error,match", [
    ([np.array([1, 2, 3])], TypeError, r"params\[0\] has dtype int64.*astype"),
    (np.zeros(3), TypeError, "single array"),
    ([], ValueError, "empty"),
    ([[1.0, 2.0]], TypeError, r"params\[0\] must be a NumPy array"),
])
def test_bad_params_are_named(params, error, match):
    with pytest.raises(error, match=match):
        optimkit.Adam(params)


def test_load_state_dict_rejects_mismatches_without_change():
    params = [np.zeros(3)]
    opt = optimkit.Adam(params, lr=0.1)
    opt.step([np.ones(3)])
    other = optimkit.SGD([np.zeros(3)], lr=0.1)
    with pytest.raises(ValueError, match="saved by another optimizer"):
        opt.load_state_dict(other.state_dict())
    wrong_shape = optimkit.Adam([np.zeros(4)], lr=0.1)
    wrong_shape.step([np.ones(4)])
    with pytest.raises(ValueError, match=r"state\[0\]\['exp_avg'\] has shape \(4,\)"):
        opt.load_state_dict(wrong_shape.state_dict())
    assert opt.lr == 0.1 and opt.state[0]["step"] == 1


def test_pure_update_rejects_state_for_other_settings():
    params = [np.zeros(2)]
    with pytest.raises(ValueError, match="amsgrad=True"):
        rules.adam_update([np.ones(2)], rules.adam_init(params), params, amsgrad=True)
    with pytest.raises(ValueError, match="centered"):
        rules.rmsprop_update([np.ones(2)], rules.rmsprop_init(params), params, centered=True)


# --- the arithmetic every kernel shares (rules.update_moment, bias_correction, radam_rectifier) ---

@pytest.mark.parametrize("order", [1, 2])
def test_update_moment_is_the_written_out_moving_average_bit_for_bit(order):
    rng = np.random.default_rng(order)
    moment, g, decay = rng.normal(size=7), rng.normal(size=7), 0.9
    expected = moment * decay + ((1 - decay) * g if order == 1 else (1 - decay) * g * g)
    out = rules.update_moment(moment, g, decay, order=order)
    assert out is moment                                   # in place, like the kernels' buffers
    np.testing.assert_array_equal(moment, expected)


def test_bias_correction_undoes_the_zero_start_of_a_moving_average():
    m = np.zeros(1)
    for t in range(1, 50):
        rules.update_moment(m, np.ones(1), 0.9)
        assert m[0] / rules.bias_correction(0.9, t) == pytest.approx(1.0, rel=1e-14)


def test_radam_rectifier_is_none_until_rho_exceeds_five_then_rises_to_one():
    values = [rules.radam_rectifier(t, 0.999) for t in range(1, 20_000)]
    first = next(t for t, r in enumerate(values, start=1) if r is not None)
    assert all(r is None for r in values[:first - 1]) and rules.radam_rho(first - 1, 0.999)[0] <= 5
    tail = values[first - 1:]
    assert all(0 < a < b < 1 for a, b in zip(tail, tail[1:]))


# --- Adamax, Rprop, ASGD: what their definitions promise -------------------------------------

@settings(max_examples=40, deadline=None)
@given(seed=seeds, beta2=st.floats(0.0, 0.999), eps=st.floats(0.0, 1e-2))
def test_adamax_u_is_the_decayed_max_of_gradient_magnitudes(seed, beta2, eps):
    # u_t = max(beta2 u_{t-1}, |g_t| + eps) unrolls to max_s beta2^(t-s) (|g_s| + eps): the
    # p -> infinity limit of Adam's p-norm average, Kingma and Ba's definition of Adamax.
    params = start(seed, SHAPES)
    state = rules.adamax_init(params)
    history = stream(seed, SHAPES, 25)
    for grads in history:
        params, state = rules.adamax_update(grads, state, params, betas=(0.9, beta2), eps=eps)
    t = len(history)
    for i in range(len(SHAPES)):
        unrolled = np.max([beta2 ** (t - s) * (np.abs(grads[i]) + eps)
                           for s, grads in enumerate(history, start=1)], axis=0)
        np.testing.assert_allclose(state.u[i], unrolled, rtol=1e-12, atol=0)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, lr=st.floats(1e-4, 1.0))
def test_rprop_moves_each_element_by_its_step_size_or_not_at_all(seed, lr):
    params = start(seed, SHAPES)
    state = rules.rprop_init(params, lr=lr)
    for grads in stream(seed, SHAPES, 20):
        new, new_state = rules.rprop_update(grads, state, params, step_sizes=(1e-3, 0.5))
        for p, q, size in zip(params, new, new_state.step_size):
            assert np.all((1e-3 <= size) & (size <= 0.5))
            moved = np.abs(q - p)
            assert np.all(np.isclose(moved, size, rtol=1e-12) | (moved == 0))
        params, state = new, new_state


def test_asgd_average_is_the_mean_of_the_iterates_after_t0():
    # Step t uses mu = 1 / max(1, t - 1 - t0): ax is the last iterate up to step t0 + 2, then the
    # running mean of the iterates from that step on.
    params, t0 = start(5, SHAPES), 3
    state = rules.asgd_init(params, lr=0.05)
    iterates = []
    for grads in stream(5, SHAPES, 30):
        params, state = rules.asgd_update(grads, state, params, lr=0.05, t0=t0)
        iterates.append([p.copy() for p in params])
    for i in range(len(SHAPES)):
        mean = np.mean([it[i] for it in iterates[t0 + 1:]], axis=0)  # steps t0 + 2, ...: ax = their mean
        np.testing.assert_allclose(state.ax[i], mean, rtol=1e-12, atol=1e-14)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, n=st.integers(1, 6), lr=st.floats(1e-3, 0.5))
def test_adafactor_on_one_row_equals_its_unfactored_form(seed, n, lr):
    # With one row, R is the row's mean of G², C is G² itself and V = R C / mean(R) = C: the
    # factored estimate is exactly the unfactored moving average, so both take the same steps.
    row = start(seed, [(1, n)])
    flat = [row[0].reshape(n).copy()]
    opt_row, opt_flat = optimkit.Adafactor(row, lr=lr), optimkit.Adafactor(flat, lr=lr)
    for (g,) in stream(seed, [(1, n)], 20):
        opt_row.step([g])
        opt_flat.step([g.reshape(n)])
    np.testing.assert_allclose(row[0].reshape(n), flat[0], rtol=1e-12, atol=1e-15)
    assert set(opt_row.state[0]) == {"step", "row_var", "col_var"}
