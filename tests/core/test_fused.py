"""optimkit.fused: the blocked, in-place SGD and Adam steps the classes run, equal BIT FOR BIT to
the readable kernels in optimkit.rules (the oracle: the kernel the book shows and torch is
checked against), and allocating no parameter-sized array per step."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import optimkit
from optimkit import fused, rules

UINT = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def same_bits(a, b):
    """Bit-for-bit equality: -0.0 differs from 0.0 and NaN payloads count (np.array_equal's
    value equality would forgive both)."""
    return a.dtype == b.dtype and np.array_equal(a.view(UINT[a.dtype]), b.view(UINT[b.dtype]))


def gradients(rng, shape, dtype, steps):
    """Gradients over twelve orders of magnitude, with exact zeros and sign flips."""
    out = []
    for _ in range(steps):
        g = rng.standard_normal(shape) * 10.0 ** rng.uniform(-6, 6, size=shape)
        g = np.where(rng.random(shape) < 0.05, 0.0, g)
        out.append(np.asarray(g, dtype=dtype))
    return out


SGD_CONFIGS = [
    dict(lr=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    dict(lr=1e-3, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False, maximize=False),
    dict(lr=1e-2, momentum=0.9, dampening=0.3, weight_decay=1e-2, nesterov=False, maximize=False),
    dict(lr=3e-3, momentum=0.7, dampening=0.0, weight_decay=5e-4, nesterov=True, maximize=False),
    dict(lr=1, momentum=0.5, dampening=0.1, weight_decay=0.1, nesterov=False, maximize=True),
    dict(lr=0.05, momentum=0.99, dampening=0.0, weight_decay=0.0, nesterov=True, maximize=True),
    dict(lr=0.2, momentum=0.0, dampening=0.0, weight_decay=1e-3, nesterov=False, maximize=True),
]
ADAM_CONFIGS = [
    dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False,
         amsgrad=False, maximize=False),
    dict(lr=1e-2, betas=(0.8, 0.99), eps=1e-6, weight_decay=1e-2, decoupled=False,
         amsgrad=False, maximize=False),
    dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, decoupled=True,
         amsgrad=False, maximize=False),
    dict(lr=3e-4, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.1, decoupled=True,
         amsgrad=True, maximize=True),
    dict(lr=0.1, betas=(0.0, 0.0), eps=1e-12, weight_decay=0.0, decoupled=False,
         amsgrad=True, maximize=False),
    dict(lr=2e-3, betas=(0.95, 0.9999), eps=1e-8, weight_decay=1e-4, decoupled=False,
         amsgrad=True, maximize=True),
]


def run_both(kernel, blocked, state_names, config, dtype, shape, block, seed=0):
    steps = 12 if np.prod(shape) < 10_000 else 3  # the large case checks the real BLOCK's seams
    rng = np.random.default_rng(seed)
    start = np.asarray(rng.standard_normal(shape), dtype=dtype)
    grads = gradients(rng, shape, dtype, steps)
    runs = []
    for step_fn, kwargs in ((kernel, {}), (blocked, dict(block=block))):
        p = start.copy()
        state = [np.zeros_like(p) for _ in state_names]
        for t, g in enumerate(grads, start=1):
            step_fn(p, g, *state, t=t, **config, **kwargs)
        runs.append((p, state))
    return runs


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, block", [((37, 29), 64), ((fused.BLOCK + 17,), fused.BLOCK),
                                          ((), 64), ((5,), 64)])
@pytest.mark.parametrize("config", SGD_CONFIGS, ids=lambda c: "sgd" + str(sorted(c.values())))
def test_blocked_sgd_equals_the_kernel_bit_for_bit(config, shape, block, dtype):
    (p0, (b0,)), (p1, (b1,)) = run_both(rules.sgd_kernel, fused.sgd_step, ["buf"], config,
                                        dtype, shape, block)
    assert same_bits(p0, p1) and same_bits(b0, b1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, block", [((37, 29), 64), ((fused.BLOCK + 17,), fused.BLOCK),
                                          ((), 64), ((5,), 64)])
@pytest.mark.parametrize("config", ADAM_CONFIGS, ids=lambda c: "adam" + str(sorted(map(str, c.values()))))
def test_blocked_adam_equals_the_kernel_bit_for_bit(config, shape, block, dtype):
    (p0, s0), (p1, s1) = run_both(rules.adam_kernel, fused.adam_step, ["m", "v", "v_max"],
                                  config, dtype, shape, block)
    assert same_bits(p0, p1)
    assert all(same_bits(a, b) for a, b in zip(s0, s1))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_and_inf_gradients_propagate_as_in_the_kernel(dtype):
    rng = np.random.default_rng(3)
    config = dict(ADAM_CONFIGS[3])
    kernel_p, blocked_p = [rng.standard_normal(300).astype(dtype)] * 2
    kernel_p, blocked_p = kernel_p.copy(), blocked_p.copy()
    ks = [np.zeros_like(kernel_p) for _ in range(3)]
    bs = [np.zeros_like(kernel_p) for _ in range(3)]
    for t in range(1, 6):
        g = rng.standard_normal(300).astype(dtype)
        g[[7, 100, 250]] = [np.nan, np.inf, -np.inf]
        with np.errstate(invalid="ignore"):  # inf / inf, as the kernel meets it
            rules.adam_kernel(kernel_p, g, *ks, t=t, **config)
            fused.adam_step(blocked_p, g, *bs, t=t, block=64, **config)
    assert np.isnan(kernel_p).any()
    assert same_bits(kernel_p, blocked_p) and all(same_bits(a, b) for a, b in zip(ks, bs))


def test_the_comparison_can_fail():
    # Negative control: the same run with one operation reordered, (lr * m) / bc1 instead of
    # (lr / bc1) * m, is off in the last bits, and same_bits sees it.
    rng = np.random.default_rng(1)
    p, g = rng.standard_normal(1000).astype(np.float32), rng.standard_normal(1000).astype(np.float32)
    a, b = p.copy(), p.copy()
    ma, va, mb, vb = (np.zeros_like(p) for _ in range(4))
    config = dict(ADAM_CONFIGS[0])
    for t in range(1, 4):
        rules.adam_kernel(a, g, ma, va, None, t=t, **config)
        fused.adam_step(b, g, mb, vb, None, t=t, **config)
    c = p.copy()
    mc, vc = np.zeros_like(p), np.zeros_like(p)
    for t in range(1, 4):
        rules.update_moment(mc, g, 0.9)
        rules.update_moment(vc, g, 0.999, order=2)
        denom = np.sqrt(vc) / np.sqrt(rules.bias_correction(0.999, t)) + 1e-8
        c -= (1e-3 * mc) / rules.bias_correction(0.9, t) / denom
    assert same_bits(a, b)
    assert not same_bits(a, c)
    assert np.allclose(a, c, rtol=1e-5)  # the same numbers to float32 precision, other bits
    assert not same_bits(np.array([0.0]), np.array([-0.0]))  # signed zeros count


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", dict(lr=1e-2, momentum=0.9, weight_decay=1e-3, nesterov=True)),
    ("SGD", dict(lr=1e-2, momentum=0.9, dampening=0.2, maximize=True)),
    ("Adam", dict(lr=1e-3, weight_decay=1e-2, amsgrad=True)),
    ("AdamW", dict(lr=1e-3, weight_decay=1e-1, maximize=True)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_classes_run_the_blocked_path_and_equal_the_pure_rules(name, kwargs, dtype):
    rng = np.random.default_rng(7)
    shapes = [(70, 1000), (300,), ()]
    start = [np.asarray(rng.standard_normal(s), dtype=dtype) for s in shapes]
    grads = [gradients(rng, s, dtype, 1)[0] for s in shapes for _ in range(8)]
    grads = [grads[k::8] for k in range(8)]  # 8 steps, one gradient per array
    params = [p.copy() for p in start]
    opt = getattr(optimkit, name)(params, **kwargs)
    calls = []
    step_fn = fused.sgd_step if name == "SGD" else fused.adam_step
    original = step_fn

    def counting(*args, **kw):
        calls.append(1)
        return original(*args, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(fused, step_fn.__name__, counting)
    try:
        for g in grads:
            opt.step(g)
    finally:
        mp.undo()
    assert len(calls) == len(grads) * len(shapes)  # every array took the blocked path
    pure = {"SGD": (rules.sgd_init, rules.sgd_update), "Adam": (rules.adam_init, rules.adam_update),
            "AdamW": (rules.adamw_init, rules.adamw_update)}[name]
    init_kwargs = {"amsgrad": True} if kwargs.get("amsgrad") else {}
    expected, state = start, pure[0](start, **init_kwargs)
    for g in grads:
        expected, state = pure[1](g, state, expected, **kwargs)
    assert all(same_bits(a, b) for a, b in zip(params, expected))


def test_ineligible_arrays_fall_back_on_the_kernel():
    p = np.ones(10, dtype=np.float32)
    assert fused.eligible(p, np.ones(10, np.float32), np.zeros(10, np.float32), None)
    assert not fused.eligible(p, np.ones(10, np.float64))        # mixed dtypes promote
    assert not fused.eligible(p, np.ones(20, np.float32)[::2])   # a strided gradient
    assert not fused.eligible(p, p)                              # the gradient is the parameter
    assert not fused.eligible(np.ones(10, np.float16), np.ones(10, np.float16))
    # the class still steps them, through the kernel, as before
    q = np.ones((4, 6)).T  # F-ordered
    g = np.full((6, 4), 0.5)
    expected = q - 0.1 * g
    optimkit.SGD([q], lr=0.1).step([g])
    assert np.array_equal(q, expected)


# -- no parameter-sized array per step ---------------------------------------------------------------

SIZE = 4_000_000  # 16 MB of float32: the scratch (2 x BLOCK floats, 1 MB) is 1/16 of it


def peak_extra_bytes(step):
    """Peak bytes allocated (NumPy reports its buffers to tracemalloc) while ``step()`` runs."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", dict(lr=1e-2, momentum=0.9)),
    ("SGD", dict(lr=1e-2, momentum=0.9, weight_decay=1e-4, nesterov=True, maximize=True)),
    ("Adam", dict(lr=1e-3)),
    ("Adam", dict(lr=1e-3, weight_decay=1e-2, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=1e-3, weight_decay=1e-2)),
])
def test_a_step_allocates_no_parameter_sized_array(name, kwargs):
    rng = np.random.default_rng(0)
    p = rng.standard_normal(SIZE, dtype=np.float32)
    g = rng.standard_normal(SIZE, dtype=np.float32)
    opt = getattr(optimkit, name)([p], **kwargs)
    opt.step([g])  # the state is allocated on the first step, as in torch
    opt.step([g])
    peak = peak_extra_bytes(lambda: opt.step([g]))
    assert peak < p.nbytes / 10, f"{name} allocated {peak / p.nbytes:.2f} parameter sizes"
    assert peak <= 2 * fused.BLOCK * p.itemsize + 65536  # the scratch, and small change


@pytest.mark.parametrize("kernel, state", [(rules.sgd_kernel, 1), (rules.adam_kernel, 3)])
def test_the_allocation_check_catches_the_readable_kernel(kernel, state):
    # Negative control: the whole-array kernel makes parameter-sized temporaries.
    rng = np.random.default_rng(0)
    p = rng.standard_normal(SIZE, dtype=np.float32)
    g = rng.standard_normal(SIZE, dtype=np.float32)
    bufs = [np.zeros_like(p) for _ in range(state)]
    config = (dict(lr=1e-2, momentum=0.9, dampening=0.0, weight_decay=1e-4, nesterov=True,
                   maximize=False) if state == 1 else dict(ADAM_CONFIGS[0]))
    peak = peak_extra_bytes(lambda: kernel(p, g, *bufs, t=2, **config))
    assert peak >= p.nbytes
