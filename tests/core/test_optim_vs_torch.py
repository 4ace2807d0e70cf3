"""Every optimizer class against torch.optim (the independent oracle), float64, 150 steps.

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

import functools
import inspect
import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

import optimkit

torch.set_default_dtype(torch.float64)  # NAdam keeps mu_product in the default dtype

STEPS = 150
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


MATRIX_ONLY = {"Muon"}  # optimizers for 2-D parameters only: their problems hold matrices
VECTOR_OPTIMIZERS = [name for name in optimkit.OPTIMIZERS if name not in MATRIX_ONLY]


def random_problem(seed, matrices=False):
    """Random shapes (matrices only, two or more, if ``matrices``), a random well-posed
    quadratic per array, random start."""
    rng = np.random.default_rng(seed)
    if matrices:
        shapes = [tuple(rng.integers(1, 7, size=2)) for _ in range(rng.integers(2, 4))]
    else:
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


def run_both(name, kwargs, *, seed=0, scheduled=False, groups=None, ours_kwargs=None,
             steps=STEPS):
    """Run optimkit's ``name`` and torch's on one gradient stream, comparing every step.

    ``kwargs`` may hold torch tensors (torch's "Tensor lr" configurations): torch gets them,
    optimkit their NumPy arrays. ``groups(arrays)`` makes param groups from a list of arrays
    (the same function for both sides); ``ours_kwargs`` overrides optimkit's arguments (the
    negative controls). Returns the worst ``|ours - torch| / (RTOL |torch| + ATOL)`` over every
    element of every step (<= 1 passes) and the largest relative error where ``|torch| > 1e-3``.

    Muon runs Newton-Schulz in float64 on both sides here (torch's own code with its one
    bfloat16 cast taken out, :func:`float64_newton_schulz`), so its configurations meet the same
    1e-9; tests/core/test_muon.py compares torch's bfloat16 path itself.
    """
    rng, params, curvature, targets = random_problem(seed, matrices=name in MATRIX_ONLY)
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    groups = groups or (lambda arrays: arrays)
    ours = optimkit.OPTIMIZERS[name](groups(params), **{**to_numpy(kwargs), **(ours_kwargs or {})})
    switches = {} if name in MATRIX_ONLY else {"foreach": False}  # torch's Muon has no foreach
    theirs = getattr(torch.optim, name)(groups(tparams), **{**switches, **kwargs})
    torch_step = theirs.step
    if name in MATRIX_ONLY:
        ours.bfloat16 = False
        torch_step = float64_newton_schulz(theirs.step)
    base_lrs = [float(group["lr"]) for group in ours.param_groups]
    worst = rel = 0.0
    for step in range(steps):
        if scheduled:
            for group, tgroup, base in zip(ours.param_groups, theirs.param_groups, base_lrs):
                group["lr"] = tgroup["lr"] = lr_at(step, base, True)
        grads = gradients(rng, params, curvature, targets, step)
        for tp, g in zip(tparams, grads):
            tp.grad = None if g is None else torch.from_numpy(g.copy())
        ours.step(grads)
        torch_step()
        for p, tp in zip(params, tparams):
            t = tp.detach().numpy()
            gap = np.abs(p - t)
            worst = max(worst, float(np.max(gap / (RTOL * np.abs(t) + ATOL))))
            big = np.abs(t) > 1e-3
            if big.any():
                rel = max(rel, float(np.max(gap[big] / np.abs(t[big]))))
    return worst, rel, ours, theirs, tparams


def float64_newton_schulz(step):
    """``step`` (torch's ``Muon.step``) running Newton-Schulz in the parameters' dtype: torch's
    own function (``torch.optim._muon._zeropower_via_newtonschulz``, read from the installed
    torch) with its one cast ``.bfloat16()`` replaced by ``.clone()``, swapped in for the call
    (the step looks it up by name) and restored after."""
    from torch.optim import _muon
    original = _muon._zeropower_via_newtonschulz
    source = inspect.getsource(original)
    assert source.count("grad.bfloat16()") == 1, "torch's Newton-Schulz changed: revisit this"
    namespace = dict(vars(_muon))
    exec(source.replace("grad.bfloat16()", "grad.clone()"), namespace)  # noqa: S102
    in_float64 = namespace["_zeropower_via_newtonschulz"]

    def patched_step():
        _muon._zeropower_via_newtonschulz = in_float64
        try:
            return step()
        finally:
            _muon._zeropower_via_newtonschulz = original
    return patched_step


def to_numpy(kwargs):
    """torch tensors in ``kwargs`` (also inside tuples) as NumPy arrays, other values unchanged."""
    def convert(v):
        if isinstance(v, torch.Tensor):
            return v.detach().numpy().copy()
        return tuple(convert(x) for x in v) if isinstance(v, tuple) else v
    return {k: convert(v) for k, v in kwargs.items()}


@pytest.mark.parametrize("scheduled", [False, True], ids=["const-lr", "scheduled-lr"])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_matches_torch(name, kwargs, seed, scheduled):
    worst, _, ours, theirs, tparams = run_both(name, kwargs, seed=seed, scheduled=scheduled)
    assert worst <= 1, f"{name}{kwargs}: |ours - torch| reached {worst:.3g} x the tolerance"
    assert_same_state(name, ours, theirs, tparams)


def assert_same_state(name, ours, theirs, tparams):
    """The state agrees too: every key torch keeps, with the same values."""
    for i, tp in enumerate(tparams):
        for key, value in theirs.state[tp].items():
            if key == "step":
                assert ours.state[i]["step"] == int(value)
            elif value is not None:
                assert_close(np.asarray(ours.state[i][key]), value, f"{name} state[{i}][{key}]")


# --- torch's own test configurations --------------------------------------------------------
#
# Read from the installed torch's torch/testing/_internal/common_optimizers.py (the
# optim_inputs_func_* functions), in a subprocess: importing that module loads torch's test
# harness, which needs `expecttest` (a torch developer dependency, stubbed there) and changes
# global state (hypothesis' profile, torch.backends flags) that must not leak into this session.
# Configurations not run, and why:
#   * the cuda/xpu/mps-only ones (capturable=True, Tensor lr with capturable): not returned for
#     device "cpu", and capturable=True (CUDA-graph capture) has no NumPy meaning;
#   * the foreach/fused/differentiable=True variants torch's harness adds on top: they choose
#     torch implementations, which optimkit refuses (test_optim_groups.py checks the refusal).

_CONFIG_SCRIPT = r"""
import json, sys, types, unittest
stub = types.ModuleType("expecttest"); stub.TestCase = unittest.TestCase
sys.modules.setdefault("expecttest", stub)
import torch
torch.set_default_dtype(torch.float64)
from torch.testing._internal import common_optimizers as co

def encode(v):
    if isinstance(v, torch.Tensor):
        return {"tensor": v.tolist()}
    if isinstance(v, tuple):
        return {"tuple": [encode(x) for x in v]}
    return v

out = {}
for name in sys.argv[1:]:
    func = getattr(co, "optim_inputs_func_" + name.lower())
    out[name] = [[c.desc, {k: encode(v) for k, v in c.kwargs.items()}, c.params is None]
                 for c in func("cpu", torch.float64)]
print(json.dumps(out))
"""


def decode(v):
    if isinstance(v, dict) and "tensor" in v:
        return torch.tensor(v["tensor"], dtype=torch.float64)
    if isinstance(v, dict) and "tuple" in v:
        return tuple(decode(x) for x in v["tuple"])
    return v


@functools.cache
def torch_configurations() -> dict:
    """``{name: [(desc, kwargs)]}`` for every optimkit class, from torch's own test suite."""
    done = subprocess.run([sys.executable, "-c", _CONFIG_SCRIPT, *optimkit.OPTIMIZERS, "LBFGS"],
                          capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    for name, configs in found.items():
        assert all(default_params for _, _, default_params in configs), name  # params=None only
    return {name: [(desc, {k: decode(v) for k, v in kwargs.items()}) for desc, kwargs, _ in configs]
            for name, configs in found.items()}


TORCH_CONFIGS = [(name, desc) for name, configs in torch_configurations().items()
                 for desc, _ in configs if name in optimkit.OPTIMIZERS]  # LBFGS: below


def config(name, desc):
    return next(kwargs for d, kwargs in torch_configurations()[name] if d == desc)


def two_groups(name, kwargs):
    """Group 0 takes the configuration; group 1 half its lr and another weight decay."""
    lr = float(kwargs.get("lr", inspect.signature(optimkit.OPTIMIZERS[name]).parameters["lr"].default))
    second = {"lr": lr / 2}
    if "weight_decay" in inspect.signature(optimkit.OPTIMIZERS[name]).parameters:
        second["weight_decay"] = 0.05 if kwargs.get("weight_decay", 0) != 0.05 else 0.2

    def groups(arrays):
        assert len(arrays) > 1, "pick a seed whose random_problem has two arrays or more"
        return [{"params": arrays[:1]}, {"params": arrays[1:], **second}]
    return groups


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("name,desc", TORCH_CONFIGS, ids=[f"{n}-{d}" for n, d in TORCH_CONFIGS])
def test_torch_configurations(name, desc, seed):
    """Every configuration torch tests its own optimizer with, in float64 over 150 steps: alone
    at a constant lr, and as group 0 of two groups (group 1: half the lr, another weight decay)
    under a schedule writing each group's lr."""
    kwargs = config(name, desc)
    worst, rel, ours, theirs, tparams = run_both(name, kwargs, seed=seed)
    assert worst <= 1, f"{name} {desc!r}: {worst:.3g} x the tolerance (relative error {rel:.2e})"
    assert_same_state(name, ours, theirs, tparams)
    worst, rel, *_ = run_both(name, kwargs, seed=seed + 10, scheduled=True,
                              groups=two_groups(name, kwargs))
    assert worst <= 1, f"{name} {desc!r} in groups: {worst:.3g} x the tolerance ({rel:.2e})"


# A deliberate slip must fail the same comparison, or the tolerance proves nothing: each
# perturbs one setting of optimkit's side by a small relative amount (or one convention).
NEGATIVE_CONTROLS = [
    ("SGD", dict(momentum=0.9), dict(momentum=0.9 * (1 + 1e-6))),
    ("Adagrad", {}, dict(lr=1e-2 * (1 + 1e-6))),
    ("RMSprop", dict(centered=True, weight_decay=0.1), dict(centered=False, weight_decay=0.1)),
    ("Adam", {}, dict(eps=1e-8 * 1.5)),
    ("AdamW", dict(weight_decay=0.1), dict(weight_decay=0.1 * (1 + 1e-4))),
    ("NAdam", dict(momentum_decay=6e-3), dict(momentum_decay=6e-3 * (1 + 1e-5))),
    ("RAdam", {}, dict(betas=(0.9, 0.999 * (1 + 1e-7)))),
    ("Adamax", {}, dict(betas=(0.9 * (1 + 1e-6), 0.999))),
    ("Adadelta", {}, dict(rho=0.9 * (1 + 1e-6))),
    ("Rprop", {}, dict(etas=(0.5, 1.2 * (1 + 1e-6)))),
    ("ASGD", {}, dict(alpha=0.75 * (1 + 1e-2))),
    ("Adafactor", {}, dict(beta2_decay=-0.8 * (1 + 1e-6))),
    ("Muon", {}, dict(momentum=0.95 * (1 + 1e-6))),
]


@pytest.mark.parametrize("name,kwargs,perturbed", NEGATIVE_CONTROLS,
                         ids=[c[0] for c in NEGATIVE_CONTROLS])
def test_negative_control_fails_the_comparison(name, kwargs, perturbed):
    worst, *_ = run_both(name, kwargs, ours_kwargs=perturbed)
    assert worst > 1, f"{name}: perturbing {perturbed} went unnoticed ({worst:.3g} x tolerance)"


@pytest.mark.parametrize("name", [*optimkit.OPTIMIZERS, "LBFGS"])
def test_defaults_match_torch(name):
    """The same arguments as torch's constructor: names, default values, positional order."""
    ours = inspect.signature(getattr(optimkit, name)).parameters
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


@pytest.mark.parametrize("name", VECTOR_OPTIMIZERS)  # Muon's: tests/core/test_muon.py
def test_nan_gradient_propagates_like_torch(name):
    """Documented behaviour: a NaN gradient poisons its own array (and only it), as in torch
    (Rprop, which reads only its sign, ignores it, as in torch)."""
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
    # Rprop uses only signs, and torch.sign(NaN) = 0: that element does not move
    assert np.isnan(params[0][1]) == (name != "Rprop")
    assert np.all(np.isfinite(params[1]))
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=RTOL, atol=ATOL, equal_nan=True)


# --- LBFGS: closures, on random quadratics and the book's landscapes ----------------------------
#
# Both closures compute the same NumPy gradient at the points each optimizer chooses, so only
# the optimizers' arithmetic differs. On a convex quadratic every step agrees to the tolerance;
# on Rosenbrock without a line search (steps of length lr = 1 that overshoot) rounding-level
# differences (~1e-15 after the first 20 iterations: torch fuses some multiply-adds) grow
# chaotically, so there the first step is compared to rounding and every step's iteration and
# evaluation counts must agree.

def random_quadratic(seed):
    rng = np.random.default_rng(seed)
    shapes = [(3, 2), (4,), (2,)]
    n = sum(int(np.prod(s)) for s in shapes)
    q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    hessian = q @ np.diag(rng.uniform(0.5, 5.0, size=n)) @ q.T
    target = rng.normal(size=n)

    def loss_and_grads(arrays):
        x = np.concatenate([a.ravel() for a in arrays]) - target
        grad = hessian @ x
        parts = np.split(grad, np.cumsum([int(np.prod(s)) for s in shapes])[:-1])
        return 0.5 * float(x @ grad), [g.reshape(s) for g, s in zip(parts, shapes)]
    return [rng.normal(size=s) for s in shapes], loss_and_grads


def rosenbrock_problem():
    def loss_and_grads(arrays):
        (x,) = arrays
        loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        grad = np.array([-2 * (1 - x[0]) - 400 * x[0] * (x[1] - x[0] ** 2),
                         200 * (x[1] - x[0] ** 2)])
        return float(loss), [grad]
    return [np.array([-1.5, 2.0])], loss_and_grads


def run_lbfgs(params, loss_and_grads, kwargs, steps):
    """Both LBFGS on one problem; per step: the worst gap in tolerance units, and the counts."""
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    ours = optimkit.LBFGS(params, **to_numpy(kwargs))
    theirs = torch.optim.LBFGS(tparams, **kwargs)

    def closure():
        return loss_and_grads(params)

    def tclosure():
        loss, grads = loss_and_grads([tp.detach().numpy() for tp in tparams])
        for tp, g in zip(tparams, grads):
            tp.grad = torch.from_numpy(g.copy())
        return torch.tensor(loss)

    history = []
    for _ in range(steps):
        loss, tloss = ours.step(closure), theirs.step(tclosure)
        worst = max(float(np.max(np.abs(p - tp.detach().numpy())
                                 / (RTOL * np.abs(tp.detach().numpy()) + ATOL)))
                    for p, tp in zip(params, tparams))
        tstate = theirs.state[tparams[0]]
        history.append((worst, abs(loss - tloss.item()) / max(abs(tloss.item()), 1e-300),
                        (ours.state[0]["n_iter"], ours.state[0]["func_evals"]),
                        (tstate["n_iter"], tstate["func_evals"])))
    return history


LBFGS_CONFIGS = [desc for desc, _ in torch_configurations()["LBFGS"]]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("desc", LBFGS_CONFIGS)
def test_lbfgs_matches_torch_on_random_quadratics(desc, seed):
    params, loss_and_grads = random_quadratic(seed)
    for worst, loss_gap, ours, theirs in run_lbfgs(params, loss_and_grads, config("LBFGS", desc),
                                                   steps=150):
        assert worst <= 1 and loss_gap <= RTOL and ours == theirs, (desc, worst, ours, theirs)


@pytest.mark.parametrize("desc", LBFGS_CONFIGS)
def test_lbfgs_matches_torch_on_rosenbrock(desc):
    params, loss_and_grads = rosenbrock_problem()
    kwargs = config("LBFGS", desc)
    history = run_lbfgs(params, loss_and_grads, kwargs, steps=30)
    assert all(ours == theirs for _, _, ours, theirs in history)
    if kwargs.get("line_search_fn") == "strong_wolfe":
        assert all(worst <= 1 for worst, *_ in history), [h[0] for h in history]
    else:
        assert history[0][0] <= 1


def test_lbfgs_negative_control_and_refusals():
    params, loss_and_grads = random_quadratic(2)
    ok = run_lbfgs([p.copy() for p in params], loss_and_grads, {"history_size": 3}, steps=5)
    assert all(worst <= 1 for worst, *_ in ok)
    # a history one pair longer on our side only must fail the same comparison
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    ours = optimkit.LBFGS(params, history_size=4)
    theirs = torch.optim.LBFGS(tparams, history_size=3)

    def tclosure():
        loss, grads = loss_and_grads([tp.detach().numpy() for tp in tparams])
        for tp, g in zip(tparams, grads):
            tp.grad = torch.from_numpy(g.copy())
        return torch.tensor(loss)
    ours.step(lambda: loss_and_grads(params))
    theirs.step(tclosure)
    gap = max(float(np.max(np.abs(p - tp.detach().numpy()) / (RTOL * np.abs(tp.detach().numpy())
                                                              + ATOL)))
              for p, tp in zip(params, tparams))
    assert gap > 1
    with pytest.raises(TypeError, match="needs a closure"):
        ours.step([np.zeros_like(p) for p in params])
    with pytest.raises(ValueError, match="per-parameter options"):
        optimkit.LBFGS([{"params": params[:1]}, {"params": params[1:]}])
    with pytest.raises(ValueError, match="line_search_fn must be None or 'strong_wolfe'"):
        optimkit.LBFGS(params, line_search_fn="backtracking")
