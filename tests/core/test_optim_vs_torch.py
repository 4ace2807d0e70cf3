"""Every optimizer class against torch.optim (the independent oracle), float64, 120 steps.

Both sides get the same gradient stream: the gradient of a random quadratic
evaluated at *our* parameters, plus seeded noise. Feeding torch its own
gradients would let rounding-level differences grow chaotically; feeding both
the same stream isolates the update rule, which is what we test.

Tolerance: |ours - torch| <= 1e-9 |torch| + 1e-12 element-wise at every step.
Both sides do the same float64 operations in (nearly) the same order, so the
measured gap is ~1e-14 relative; 1e-9 leaves room for the reordered products
(e.g. lerp vs. beta*m + (1-beta)*g) while still failing on any variant: the
variants these settings separate differ by >= 1e-4 relative.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import optimkit

torch.set_default_dtype(torch.float64)  # NAdam keeps mu_product in the default dtype

STEPS = 120
RTOL, ATOL = 1e-9, 1e-12

# name, kwargs: settings chosen so that wrong variants would be caught (see conventions).
CASES = [
    ("SGD", {}),
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.02, momentum=0.9)),
    ("SGD", dict(lr=0.02, momentum=0.9, dampening=0.5)),           # first buffer undamped
    ("SGD", dict(lr=0.02, momentum=0.8, nesterov=True)),
    ("SGD", dict(lr=0.03, momentum=0.9, weight_decay=0.05)),       # lr*wd = 1.5e-3
    ("SGD", dict(lr=0.02, momentum=0.5, maximize=True)),
    ("Adagrad", {}),
    ("Adagrad", dict(lr=0.1, eps=1e-3)),                           # eps placement
    ("Adagrad", dict(lr=0.1, lr_decay=0.01, weight_decay=0.02, initial_accumulator_value=0.1)),
    ("RMSprop", {}),
    ("RMSprop", dict(lr=0.01, eps=1e-3)),
    ("RMSprop", dict(lr=0.005, alpha=0.9, centered=True, eps=1e-3)),
    ("RMSprop", dict(lr=0.005, momentum=0.9, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.003, momentum=0.5, centered=True, weight_decay=0.5, eps=1e-4)),
    ("Adam", {}),
    ("Adam", dict(lr=0.01, eps=1e-3)),                             # eps after bias correction
    ("Adam", dict(lr=0.01, betas=(0.8, 0.99), amsgrad=True)),
    ("Adam", dict(lr=0.01, weight_decay=0.1)),                     # coupled L2
    ("Adam", dict(lr=0.01, betas=(0.0, 0.99))),
    ("AdamW", {}),
    ("AdamW", dict(lr=0.01, weight_decay=0.1)),                    # lr*wd = 1e-3
    ("AdamW", dict(lr=0.02, weight_decay=0.2, amsgrad=True, eps=1e-3)),
    ("NAdam", {}),
    ("NAdam", dict(lr=0.01, momentum_decay=0.01, eps=1e-3)),
    ("NAdam", dict(lr=0.01, weight_decay=0.05)),
    ("NAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
    ("RAdam", {}),                                                 # rho_t > 5 from step 6 on
    ("RAdam", dict(lr=0.01, betas=(0.9, 0.99), eps=1e-3)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1)),
    ("RAdam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True)),
]


def random_problem(seed):
    """Random shapes, a random well-posed quadratic per array, random start."""
    rng = np.random.default_rng(seed)
    shapes = [tuple(rng.integers(1, 6, size=rng.integers(1, 3))) for _ in range(rng.integers(1, 4))]
    params = [rng.normal(size=s) for s in shapes]
    curvature = [rng.uniform(0.1, 3.0, size=s) for s in shapes]
    targets = [rng.normal(size=s) for s in shapes]
    return rng, params, curvature, targets


def gradients(rng, params, curvature, targets, step):
    # A small quadratic keeps the objective away from flat points; noise keeps it stochastic.
    # Every 17th step one gradient is None: that array must be skipped by both sides.
    grads = [c * (p - t) + 0.1 * rng.normal(size=p.shape) for p, c, t in zip(params, curvature, targets)]
    if step % 17 == 16 and len(grads) > 1:
        grads[0] = None
    return grads


def lr_at(step, base_lr, scheduled):
    # A schedule that changes lr every step separates momentum forms and AdamW's lr coupling.
    return base_lr * (0.55 + 0.45 * math.cos(math.pi * step / STEPS)) if scheduled else base_lr


def assert_close(ours, theirs, what):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    bad = np.abs(ours - theirs) > RTOL * np.abs(theirs) + ATOL
    assert not bad.any(), (
        f"{what}: max abs diff {np.max(np.abs(ours - theirs)):.3e} "
        f"(ours {ours[bad][:3]}, torch {theirs[bad][:3]})")


@pytest.mark.parametrize("scheduled", [False, True], ids=["const-lr", "scheduled-lr"])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_torch(name, kwargs, seed, scheduled):
    rng, params, curvature, targets = random_problem(seed)
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    ours = optimkit.OPTIMIZERS[name](params, **kwargs)
    theirs = getattr(torch.optim, name)(tparams, foreach=False, **kwargs)
    base_lr = ours.lr
    for step in range(STEPS):
        lr = lr_at(step, base_lr, scheduled)
        ours.lr = lr
        theirs.param_groups[0]["lr"] = lr
        grads = gradients(rng, params, curvature, targets, step)
        for tp, g in zip(tparams, grads):
            tp.grad = None if g is None else torch.from_numpy(g.copy())
        ours.step(grads)
        theirs.step()
        for i, (p, tp) in enumerate(zip(params, tparams)):
            assert_close(p, tp, f"{name}{kwargs} step {step + 1} params[{i}]")
    # The state agrees too (same keys as torch, same values).
    for i, tp in enumerate(tparams):
        for key, value in theirs.state[tp].items():
            if key == "step":
                assert ours.state[i]["step"] == int(value)
            elif value is not None:
                assert_close(np.asarray(ours.state[i][key]), value, f"{name} state[{i}][{key}]")


@pytest.mark.parametrize("name", list(optimkit.OPTIMIZERS))
def test_defaults_match_torch(name):
    """The same arguments as torch's constructor: names, default values, positional order."""
    import inspect

    ours = inspect.signature(optimkit.OPTIMIZERS[name]).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    for arg, p in ours.items():
        if arg == "params":
            continue
        assert arg in theirs, f"{name} has argument {arg!r} that torch does not"
        assert p.default == theirs[arg].default, (
            f"{name}({arg}=...) default {p.default!r}, torch {theirs[arg].default!r}")
    assert set(theirs) <= set(ours), f"{name} lacks torch's {sorted(set(theirs) - set(ours))}"
    positional = [a for a, p in theirs.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    ours_positional = [a for a, p in ours.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    assert ours_positional == positional, "positional order differs from torch"


@pytest.mark.parametrize("name", list(optimkit.OPTIMIZERS))
def test_nan_gradient_propagates_like_torch(name):
    """Documented behaviour: a NaN gradient poisons its own array (and only it), as in torch."""
    params = [np.array([1.0, -2.0, 0.5]), np.array([0.3, 0.7])]
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    ours = optimkit.OPTIMIZERS[name](params, lr=0.1)
    theirs = getattr(torch.optim, name)(tparams, lr=0.1, foreach=False)
    for step in range(3):
        grads = [np.array([0.5, np.nan if step == 1 else 1.0, -0.2]), np.array([0.1, -0.3])]
        for tp, g in zip(tparams, grads):
            tp.grad = torch.from_numpy(g.copy())
        ours.step(grads)
        theirs.step()
    assert np.isnan(params[0][1])
    assert np.all(np.isfinite(params[1]))
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=RTOL, atol=ATOL, equal_nan=True)
