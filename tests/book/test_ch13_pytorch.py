"""descent.ch13_pytorch: chapter 13's torch code, checked against torch.optim itself (the
oracle for the optimizers and schedulers), closed forms, and with negative controls."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import optimkit
from optimkit import digits, lr_scheduler

from descent import ch13_pytorch as c13


def test_the_defaults_table_reads_both_packages_and_they_agree():
    rows, counts = c13.defaults_table()
    # every optimkit class with a torch twin is a row, read from torch's own signatures
    assert counts["optimizers"] == len(c13.torch_twins()) >= 12
    assert {"SGD", "Adam", "AdamW", "RMSprop", "LBFGS"} <= set(c13.torch_twins())
    assert counts["differ"] == []
    adamw = next(r for r in rows if r[0] == "torch.optim.AdamW")
    assert f"λ = {inspect.signature(torch.optim.AdamW.__init__).parameters['weight_decay'].default:g}" in adamw[1]
    assert all("foreach" not in r[1] for r in rows)


def test_the_defaults_table_can_see_a_difference(monkeypatch):
    real = c13.signature_defaults  # negative control: optimkit's Adam with another default lr
    monkeypatch.setattr(c13, "signature_defaults",
                        lambda cls: {**real(cls), "lr": 0.5} if cls is optimkit.Adam else real(cls))
    rows, counts = c13.defaults_table()
    assert counts["differ"] == ["Adam.lr"]
    assert next(r for r in rows if r[0] == "torch.optim.Adam")[2] == "differs: lr"


def test_torch_and_optimkit_train_the_digits_mlp_alike():
    total = 30
    lt, lo, gap = c13.twin_runs(
        lambda p: torch.optim.AdamW(p, lr=1e-2), lambda p: optimkit.AdamW(p, lr=1e-2), epochs=2,
        schedulers=(lambda o: c13.warmup_cosine(torch.optim.lr_scheduler, o, 5, total),
                    lambda o: c13.warmup_cosine(lr_scheduler, o, 5, total)))
    assert len(lt) == len(lo) > total and np.max(np.abs(lt - lo)) < 1e-12 and gap < 1e-12
    assert lt[-1] < 0.5 * lt[0]  # it trains
    # negative control: another learning rate on one side is seen at once
    lt2, lo2, gap2 = c13.twin_runs(lambda p: torch.optim.AdamW(p, lr=1e-2),
                                   lambda p: optimkit.AdamW(p, lr=1.1e-2), epochs=1)
    assert gap2 > 1e-4


def test_the_decay_groups_split_matrices_from_vectors():
    groups = c13.transformer_block_groups()
    assert groups["decay"] == ["0.weight", "2.weight"]
    assert groups["no_decay"] == ["0.bias", "2.bias", "3.weight", "3.bias"]
    assert groups["decay_numbers"] == 16 * 64 * 2 and groups["no_decay_numbers"] == 64 + 16 + 16 + 16


def test_groups_train_alike_and_carry_the_same_keys():
    def named(ps):
        return [(str(k), p) for k, p in enumerate(ps)]
    _, _, gap = c13.twin_runs(
        lambda p: torch.optim.AdamW(c13.decay_groups(named(p), 0.1, 1e-2, no_decay_lr=2e-2)),
        lambda p: optimkit.AdamW(c13.decay_groups(named(p), 0.1, 1e-2, no_decay_lr=2e-2)), epochs=1)
    assert gap < 1e-12
    opt_t = torch.optim.AdamW(c13.decay_groups(named(c13.torch_params(digits.MLP())), 0.1, 1e-2))
    opt_o = optimkit.AdamW(c13.decay_groups(named(digits.MLP().params), 0.1, 1e-2))
    assert c13.group_keys(opt_t) == c13.group_keys(opt_o)
    assert [g["weight_decay"] for g in opt_t.param_groups] == [0.1, 0.0]


def test_warmup_cosine_is_torchs_and_has_its_closed_form():
    seq_t, seq_o = c13.lr_sequences(lr=0.1, warmup=5, total=30)
    np.testing.assert_allclose(seq_o, seq_t, rtol=0, atol=1e-15)
    # LinearLR from 0.01 to 1 over 5 steps, then cosine from the peak (closed forms)
    np.testing.assert_allclose(seq_t[:5], 0.1 * (0.01 + 0.99 * np.arange(5) / 5), rtol=1e-12)
    np.testing.assert_allclose(seq_t[5:], 0.05 * (1 + np.cos(np.pi * np.arange(25) / 25)), rtol=1e-12)


def test_the_wrong_step_order_warns_and_skips_the_first_value():
    right, wrong, right_warnings, wrong_warnings = c13.step_order_warning()
    assert right_warnings == [] and len(wrong_warnings) == 1
    assert "lr_scheduler.step()" in wrong_warnings[0] and "before `optimizer.step()`" in wrong_warnings[0]
    np.testing.assert_array_equal(wrong[:-1], right[1:])  # shifted one step early
    assert wrong[0] > right[0]


def test_plateau_agrees_with_optimkit_and_halves_after_patience():
    rows = c13.plateau_run()
    assert all(a == b for _, a, b in rows)
    lrs, losses = [a for _, a, _ in rows], [v for v, _, _ in rows]
    assert min(lrs) < lrs[0] and all(b in (a, a * 0.5) for a, b in zip(lrs, lrs[1:]))
    for k in range(2, len(rows)):  # a cut (patience 1) only after two evaluations worse than the best
        if lrs[k] < lrs[k - 1]:
            assert min(losses[k - 1], losses[k]) > min(losses[:k - 1]) * (1 - 1e-4)


def _digits_step(make, steps=5):
    data = digits.load_digits_split()
    X, y = torch.tensor(data.X_train[:200]), torch.tensor(data.y_train[:200])
    params = c13.torch_params(digits.MLP())
    opt = make(params)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(c13.torch_forward(params, X), y).backward()
        opt.step()
    return params, opt


def test_hand_adamw_is_torchs_adamw_and_optimkits():
    assert c13.hand_vs_torch(steps=10) < 1e-13
    _, _, gap = c13.twin_runs(lambda p: c13.HandAdamW(p, lr=1e-2, weight_decay=0.1),
                              lambda p: optimkit.AdamW(p, lr=1e-2, weight_decay=0.1), epochs=1)
    assert gap < 1e-12
    # negative control: another weight decay is visible
    mine, _ = _digits_step(lambda p: c13.HandAdamW(p, lr=1e-2, weight_decay=0.1))
    theirs, _ = _digits_step(lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.2))
    assert max(float((a - b).abs().max()) for a, b in zip(mine, theirs)) > 1e-6


def test_hand_adamw_keeps_state_per_parameter_and_skips_missing_gradients():
    a = torch.ones(3, dtype=torch.float64, requires_grad=True)
    b = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = c13.HandAdamW([a, b], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        (a ** 2).sum().backward()  # b gets no gradient
        opt.step()
    assert opt.state[a]["step"] == 3 and b not in opt.state
    assert torch.equal(b, torch.ones(2, dtype=torch.float64))
    assert opt.state[a]["exp_avg"] is not opt.state.get(b, {}).get("exp_avg")


def test_the_custom_optimizer_details_matter():
    """Without no_grad the in-place update raises; rebinding p never changes the model."""
    src = inspect.getsource(c13.HandAdamW)
    namespace = {"torch": torch}
    exec(src.replace("    @torch.no_grad()\n", ""), namespace)  # noqa: S102 - our own class, edited
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        _digits_step(lambda p: namespace["HandAdamW"](p, lr=1e-2))
    namespace = {"torch": torch}
    exec(src.replace("p.addcdiv_(m, denom, value=-lr / (1 - beta1 ** t))",  # noqa: S102
                     "p = p.addcdiv(m, denom, value=-lr / (1 - beta1 ** t))"), namespace)
    start = c13.torch_params(digits.MLP())
    params, _ = _digits_step(lambda p: namespace["HandAdamW"](p, lr=1e-2, weight_decay=0.0))
    assert all(torch.equal(p, q) for p, q in zip(params, start))


def test_the_closure_is_called_with_grad_enabled():
    x = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    opt = c13.HandAdamW([x], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (x ** 2).sum()
        loss.backward()
        return loss
    assert float(opt.step(closure)) == 4.0 and float(x) < 2.0


def test_unscale_before_clipping_and_the_wrong_order():
    sc = c13.scaler_clipping(max_norm=1.0)
    assert sc["scaled"] == pytest.approx(sc["scale"] * sc["true"], rel=1e-5)
    assert sc["true"] > 1.0  # so the clip is active
    assert sc["right"] == pytest.approx(1.0, rel=1e-5)
    assert sc["wrong"] == pytest.approx(1.0 / sc["scale"], rel=1e-5)


def test_bf16_autocast_changes_the_losses_a_little():
    bf = c13.bf16_losses(steps=20)
    gap = np.max(np.abs(bf["float32"][0] - bf["bfloat16"][0]))
    assert 0 < gap < 0.05


def test_accumulation_divided_equals_the_full_batch():
    acc = c13.accumulation(micro=4, batch=64)
    assert acc["divided"] < 1e-15 and acc["summed_ratio"] == pytest.approx(4.0, rel=1e-12)
