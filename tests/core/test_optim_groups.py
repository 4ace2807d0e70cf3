"""Parameter groups, state_dict layout, closures and torch's routine keyword arguments,
against torch.optim's semantics.

The numbers of every class against torch, groups included, are in test_optim_vs_torch.py;
here: what a group is (defaults, per-group values, add_param_group, writable param_groups),
torch's state_dict layout, the errors, and ``step(closure)``.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import optimkit

torch.set_default_dtype(torch.float64)


def arrays(seed=0, shapes=((3, 2), (2,), (4,))):
    rng = np.random.default_rng(seed)
    return [rng.normal(size=s) for s in shapes]


def grad_stream(seed, shapes, steps):
    rng = np.random.default_rng(seed + 100)
    return [[rng.normal(size=s) for s in shapes] for _ in range(steps)]


def torch_twin(params, groups_of):
    """torch tensors for ``params`` and the same grouping, via ``groups_of(tensors)``."""
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    return tparams, groups_of(tparams)


def step_both(opt, topt, params, tparams, grads):
    for tp, g in zip(tparams, grads):
        tp.grad = None if g is None else torch.from_numpy(g.copy())
    opt.step(grads)
    topt.step()


def assert_same(params, tparams, rtol=1e-12):
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p, tp.detach().numpy(), rtol=rtol, atol=1e-14)


def test_groups_take_their_own_values_and_the_defaults_for_the_rest():
    W, b, n = arrays()
    opt = optimkit.SGD([{"params": [W], "weight_decay": 0.0}, {"params": [b, n], "lr": 0.5}],
                       lr=0.1, momentum=0.9, weight_decay=1e-2)
    g0, g1 = opt.param_groups
    assert g0["lr"] == 0.1 and g0["weight_decay"] == 0.0 and g0["momentum"] == 0.9
    assert g1["lr"] == 0.5 and g1["weight_decay"] == 1e-2
    assert g0["params"][0] is W and g1["params"][1] is n
    assert [p is q for p, q in zip(opt.params, [W, b, n])] == [True] * 3


def test_no_decay_on_biases_recipe_matches_torch_with_added_group_and_written_lrs():
    params = arrays(1)
    shapes = [p.shape for p in params]
    W, b, n = params
    opt = optimkit.AdamW([{"params": [W]}, {"params": [b], "weight_decay": 0.0}],
                         lr=0.01, weight_decay=0.1)
    tparams, topt = torch_twin(params, lambda t: torch.optim.AdamW(
        [{"params": [t[0]]}, {"params": [t[1]], "weight_decay": 0.0}], lr=0.01,
        weight_decay=0.1, foreach=False))
    stream = grad_stream(1, shapes, 40)
    for k, grads in enumerate(stream):
        if k == 10:  # a layer unfrozen mid-run joins with its own lr
            opt.add_param_group({"params": n, "lr": 0.003})
            topt.add_param_group({"params": tparams[2], "lr": 0.003})
        if k >= 20:  # a scheduler writing each group's lr
            for group, tgroup in zip(opt.param_groups, topt.param_groups):
                group["lr"] = tgroup["lr"] = tgroup["lr"] * 0.97
        grads = grads if k >= 10 else grads[:2]
        step_both(opt, topt, params[:len(grads)], tparams[:len(grads)], grads)
        assert_same(params, tparams)
    assert opt.param_groups[2]["weight_decay"] == 0.1  # the default filled in


def test_state_dict_is_torchs_layout_and_round_trips_bit_for_bit():
    params = arrays(2)
    shapes = [p.shape for p in params]
    opt = optimkit.Adam([{"params": params[:1], "lr": 0.02}, {"params": params[1:], "amsgrad": True}],
                        lr=0.01, foreach=False)
    tparams, topt = torch_twin(params, lambda t: torch.optim.Adam(
        [{"params": t[:1], "lr": 0.02}, {"params": t[1:], "amsgrad": True}], lr=0.01,
        foreach=False))
    stream = grad_stream(2, shapes, 30)
    for grads in stream[:12]:
        grads = [grads[0], None, grads[2]]  # params[1] never gets a gradient: no state
        step_both(opt, topt, params, tparams, grads)
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert list(ours) == list(theirs)
    assert [g["params"] for g in ours["param_groups"]] == [[0], [1, 2]]
    for g, tg in zip(ours["param_groups"], theirs["param_groups"]):
        assert g == tg
    assert sorted(ours["state"]) == sorted(theirs["state"]) == [0, 2]
    for i in ours["state"]:
        assert set(ours["state"][i]) == set(theirs["state"][i])
    # resume in a fresh optimizer built with other settings: bit for bit
    resumed = [p.copy() for p in params]
    for grads in stream[12:]:
        opt.step(grads)
    other = optimkit.Adam([{"params": resumed[:1]}, {"params": resumed[1:]}], lr=5.0)
    other.load_state_dict(ours)
    assert other.param_groups[0]["lr"] == 0.02 and other.param_groups[1]["amsgrad"] is True
    for grads in stream[12:]:
        other.step(grads)
    for x, y in zip(resumed, params):
        np.testing.assert_array_equal(x, y)


def test_step_takes_one_gradient_list_per_group_too():
    a, b = arrays(3), arrays(3)
    shapes = [p.shape for p in a]
    opt_a = optimkit.SGD([{"params": a[:2]}, {"params": a[2:], "lr": 0.3}], lr=0.1, momentum=0.5)
    opt_b = optimkit.SGD([{"params": b[:2]}, {"params": b[2:], "lr": 0.3}], lr=0.1, momentum=0.5)
    for grads in grad_stream(3, shapes, 5):
        opt_a.step(grads)
        opt_b.step([grads[:2], grads[2:]])
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match="got 0 gradients for param group 1, which has 1"):
        opt_b.step([[np.ones((3, 2)), np.ones(2)], []])


def test_lr_property_with_several_groups():
    W, b, n = arrays()
    opt = optimkit.SGD([{"params": [W]}, {"params": [b, n]}], lr=0.1)
    assert opt.lr == 0.1
    opt.lr = np.float32(0.25)  # one shared lr: written to every group, as a Python float
    assert [g["lr"] for g in opt.param_groups] == [0.25, 0.25]
    opt.param_groups[1]["lr"] = 0.5
    with pytest.raises(ValueError, match=r"different learning rates \[0.25, 0.5\].*param_groups"):
        opt.lr
    with pytest.raises(ValueError, match="different learning rates"):
        opt.lr = 0.1
    assert [g["lr"] for g in opt.param_groups] == [0.25, 0.5]


BAD_GROUPS = [
    (lambda W, b: [{"params": [W]}, {"params": [b, W]}], ValueError,
     r"param group 1\['params'\]\[1\] is already in an earlier group"),
    (lambda W, b: [{"params": [W, b, W]}], ValueError,
     r"param group 0\['params'\]\[2\] is already in param group 0 \(as \['params'\]\[0\]\)"),
    (lambda W, b: [{"params": [W]}, {"lr": 0.1}], ValueError, "param group 1 has no 'params'"),
    (lambda W, b: [{"params": [W], "lr": 0.1, "weight_decy": 0.1}], ValueError,
     r"param group 0 has unknown key\(s\) \['weight_decy'\]: this optimizer's hyperparameters"),
    (lambda W, b: [{"params": [W]}, [b]], TypeError, r"params\[1\] is a list among param-group"),
    (lambda W, b: [{"params": {W.tobytes()}}], TypeError, "not a set"),
    (lambda W, b: [{"params": []}], ValueError, "param group 0 has no arrays"),
    (lambda W, b: [{"params": [W], "lr": -1.0}], ValueError, "lr must be >= 0, got -1.0"),
    (lambda W, b: [{"params": [W.astype(int)]}], TypeError,
     r"param group 0\['params'\]\[0\] has dtype int64"),
    (lambda W, b: {"params": [W]}, TypeError, "single dict; wrap it"),
]


@pytest.mark.parametrize("make,error,match", BAD_GROUPS, ids=range(len(BAD_GROUPS)))
def test_bad_groups_are_named(make, error, match):
    W, b, _ = arrays()
    with pytest.raises(error, match=match):
        optimkit.SGD(make(W, b), lr=0.1)


def test_add_param_group_refuses_without_changing_anything():
    W, b, n = arrays()
    opt = optimkit.Adam([W], lr=0.1)
    opt.step([np.ones_like(W)])
    with pytest.raises(ValueError, match="already in an earlier group"):
        opt.add_param_group({"params": [b, W]})
    with pytest.raises(ValueError, match=r"betas\[0\]"):
        opt.add_param_group({"params": [b], "betas": (1.5, 0.9)})
    assert len(opt.param_groups) == 1 and len(opt.state) == 1
    opt.add_param_group({"params": [b], "initial_lr": 0.1})  # a scheduler's key is welcome
    assert opt.param_groups[1]["initial_lr"] == 0.1 and opt.param_groups[1]["lr"] == 0.1


def test_a_bad_value_written_into_one_group_stops_the_whole_step():
    W, b, n = arrays()
    opt = optimkit.SGD([{"params": [W]}, {"params": [b]}], lr=0.1)
    before = [W.copy(), b.copy()]
    opt.param_groups[1]["lr"] = float("nan")
    with pytest.raises(ValueError, match="lr must be a finite number"):
        opt.step([np.ones_like(W), np.ones_like(b)])
    np.testing.assert_array_equal(W, before[0])  # group 0 was not stepped either
    assert opt.state == [{}, {}]


def test_load_state_dict_checks_the_groups():
    W, b, n = arrays()
    opt = optimkit.SGD([{"params": [W]}, {"params": [b, n]}], lr=0.1)
    one = optimkit.SGD([W.copy(), b.copy(), n.copy()], lr=0.1)
    with pytest.raises(ValueError, match="holds 1 param groups, this optimizer has 2"):
        opt.load_state_dict(one.state_dict())
    swapped = optimkit.SGD([{"params": [W.copy(), b.copy()]}, {"params": [n.copy()]}], lr=0.1)
    with pytest.raises(ValueError, match="param group 0 holds 2 parameters, this optimizer's has 1"):
        opt.load_state_dict(swapped.state_dict())
    saved = opt.state_dict()
    saved["param_groups"][1]["initial_lr"] = 0.1  # what a scheduler adds round-trips
    opt.load_state_dict(saved)
    assert opt.param_groups[1]["initial_lr"] == 0.1 and opt.param_groups[0]["params"][0] is W


def test_closure_step_returns_the_loss_and_equals_the_gradient_step():
    a, b = arrays(4), arrays(4)
    target = arrays(5)
    opt_a = optimkit.RMSprop(a, lr=0.01, momentum=0.9)
    opt_b = optimkit.RMSprop(b, lr=0.01, momentum=0.9)

    def closure():
        loss = sum(0.5 * float(np.sum((p - t) ** 2)) for p, t in zip(a, target))
        return loss, [p - t for p, t in zip(a, target)]

    for _ in range(5):
        expected_loss = sum(0.5 * float(np.sum((p - t) ** 2)) for p, t in zip(b, target))
        assert opt_b.step([p - t for p, t in zip(b, target)]) is None  # as torch without closure
        assert opt_a.step(closure) == expected_loss
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert opt_a.step(closure=closure) is not None
    with pytest.raises(TypeError, match=r"closure must return \(loss, grads\)"):
        opt_a.step(lambda: 1.0)
    with pytest.raises(TypeError, match="needs the gradients"):
        opt_a.step()


def test_closure_matches_torch():
    params = arrays(6)
    target = arrays(7)
    opt = optimkit.NAdam(params, lr=0.01)
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    topt = torch.optim.NAdam(tparams, lr=0.01, foreach=False)
    ttarget = [torch.from_numpy(t) for t in target]

    def closure():
        return (sum(float(np.sum((p - t) ** 4)) for p, t in zip(params, target)),
                [4 * (p - t) ** 3 for p, t in zip(params, target)])

    def tclosure():
        topt.zero_grad()
        loss = sum(((p - t) ** 4).sum() for p, t in zip(tparams, ttarget))
        loss.backward()
        return loss

    for _ in range(20):
        loss, tloss = opt.step(closure), topt.step(tclosure)
        assert loss == pytest.approx(tloss.item(), rel=1e-9)
        assert_same(params, tparams, rtol=1e-9)


def test_repr_lists_every_group():
    W, b, _ = arrays()
    text = repr(optimkit.SGD([{"params": [W]}, {"params": [b], "lr": 0.5}], lr=0.1))
    assert "Parameter Group 0" in text and "Parameter Group 1" in text and "lr: 0.5" in text


# --- torch's implementation switches, tensor-like numbers, options that need state --------------

SWITCHES = ["foreach", "fused", "capturable", "differentiable"]


@pytest.mark.parametrize("name", [n for n in optimkit.OPTIMIZERS if n != "Muon"])  # 2-D only,
def test_implementation_switches_at_their_no_op_values(name):  # no switches: test_muon.py
    import inspect

    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    ours = inspect.signature(optimkit.OPTIMIZERS[name]).parameters
    for key in SWITCHES:
        assert (key in ours) == (key in theirs), f"{name} and torch disagree on {key}"
        if key not in ours:
            continue
        for value in (None, False) if key in ("foreach", "fused") else (False,):
            opt = optimkit.OPTIMIZERS[name]([np.ones(2)], **{key: value})
            opt.step([np.ones(2)])
            assert opt.param_groups[0][key] is value
        with pytest.raises(ValueError, match=rf"{name}\({key}=True\) asks for .*pass {key}="):
            optimkit.OPTIMIZERS[name]([np.ones(2)], **{key: True})
    opt = optimkit.OPTIMIZERS[name]([np.ones(2)])
    key = next(k for k in SWITCHES if k in ours)
    opt.param_groups[0][key] = True  # written later: refused at the step, nothing changed
    with pytest.raises(ValueError, match=f"{key}=True"):
        opt.step([np.ones(2)])
    assert opt.state == [{}]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numpy_scalars_and_one_element_arrays_are_numbers(dtype):
    shapes = [(3,), (2, 2)]
    plain_params = [p.astype(dtype) for p in arrays(8, shapes)]
    numpy_params = [p.copy() for p in plain_params]
    b1, b2 = np.float32(0.9), np.array([0.99], dtype=np.float32)
    plain = optimkit.Adam(plain_params, lr=0.01, betas=(float(b1), float(b2[0])), eps=1e-6,
                          weight_decay=0.1)
    numpy = optimkit.Adam(numpy_params, lr=np.array(0.01), betas=(b1, b2), eps=np.float64(1e-6),
                          weight_decay=np.array([[0.1]]))
    for grads in grad_stream(8, shapes, 10):
        grads = [g.astype(dtype) for g in grads]
        plain.step(grads)
        numpy.step(grads)
        numpy.param_groups[0]["lr"] = np.float32(0.005)  # as a scheduler might write it
        plain.param_groups[0]["lr"] = float(np.float32(0.005))
    for x, y in zip(plain_params, numpy_params):
        assert y.dtype == dtype  # a float32 number did not promote the arithmetic
        np.testing.assert_array_equal(x, y)
    with pytest.raises(ValueError, match=r"lr must be a finite number, got array\(\[1., 2.\]\)"):
        optimkit.SGD([np.ones(2)], lr=np.array([1.0, 2.0]))


MID_RUN = [
    ("RMSprop", dict(momentum=0.9), "momentum > 0", "momentum_buffer"),
    ("RMSprop", dict(centered=True), "centered=True", "grad_avg"),
    ("Adam", dict(amsgrad=True), "amsgrad=True", "max_exp_avg_sq"),
    ("AdamW", dict(amsgrad=True), "amsgrad=True", "max_exp_avg_sq"),
]


@pytest.mark.parametrize("name,change,option,key", MID_RUN, ids=[m[2] for m in MID_RUN])
def test_options_that_need_state_are_refused_mid_run(name, change, option, key):
    W, b, _ = arrays()
    opt = optimkit.OPTIMIZERS[name]([{"params": [W]}, {"params": [b]}], lr=0.01)
    opt.step([np.ones_like(W), np.ones_like(b)])
    before, state = [W.copy(), b.copy()], opt.state_dict()
    opt.param_groups[1].update(change)
    with pytest.raises(ValueError, match=rf"{name}: {re.escape(option)} was turned on after "
                                         rf"params\[1\] took 1 step.*no '{key}'"):
        opt.step([np.ones_like(W), np.ones_like(b)])
    np.testing.assert_array_equal(W, before[0])  # checked before anything moved
    assert opt.state[0]["step"] == state["state"][0]["step"]
    tensor = torch.ones(2, requires_grad=True)  # torch fails too, less clearly
    topt = getattr(torch.optim, name)([tensor], lr=0.01, foreach=False)
    tensor.grad = torch.ones(2)
    topt.step()
    topt.param_groups[0].update(change)
    with pytest.raises(KeyError, match=key):
        topt.step()
    # a parameter that has not stepped yet takes the option from its first step
    fresh = optimkit.OPTIMIZERS[name]([np.ones(2)], lr=0.01)
    fresh.param_groups[0].update(change)
    fresh.step([np.ones(2)])


def test_sgd_momentum_turned_on_mid_run_matches_torch():
    params = arrays(9)
    shapes = [p.shape for p in params]
    opt = optimkit.SGD(params, lr=0.05)
    tparams, topt = torch_twin(params, lambda t: torch.optim.SGD(t, lr=0.05, foreach=False))
    for k, grads in enumerate(grad_stream(9, shapes, 30)):
        if k == 10:  # torch starts the buffer then, from that step's gradient, undamped
            for group in (opt.param_groups[0], topt.param_groups[0]):
                group.update(momentum=0.9, dampening=0.5)
        step_both(opt, topt, params, tparams, grads)
        assert_same(params, tparams)


def test_a_wrapper_passes_the_param_groups_through():
    W, b, _ = arrays()
    inner = optimkit.SGD([{"params": [W]}, {"params": [b], "lr": 0.5}], lr=0.1)
    wrapped = optimkit.optim.Wrapper(inner)
    assert wrapped.param_groups is inner.param_groups
    wrapped.param_groups[1]["lr"] = 0.25  # a scheduler on the wrapper reaches the optimizer
    assert inner.param_groups[1]["lr"] == 0.25
