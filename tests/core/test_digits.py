"""Tests for optimkit.digits: data split, MLP backprop, minibatching and the training loop."""

import math
import time

import numpy as np
import pytest

from optimkit import digits as D
from plain_gd import GD, gd  # the runners' stand-in optimizer


@pytest.fixture(scope="module")
def data():
    return D.load_digits_split()


# -- data -------------------------------------------------------------------------------------------

def test_split_shapes_dtypes_and_standardisation(data):
    assert data.X_train.shape == (1438, 64) and data.X_val.shape == (359, 64)  # round(0.2 * 1797)
    assert data.y_train.shape == (1438,) and data.y_val.shape == (359,)
    assert data.X_train.dtype == np.float64 and data.y_train.dtype == np.int64
    assert set(np.unique(data.y_train)) == set(range(10)) == set(np.unique(data.y_val))
    np.testing.assert_allclose(data.X_train.mean(axis=0), 0, atol=1e-12)
    std = data.X_train.std(axis=0)
    # Pixels that never vary in training stay at 0; every other pixel has unit variance.
    assert np.all(np.isclose(std, 1.0) | (std == 0)) and np.isclose(std, 1.0).sum() > 55
    assert abs(data.X_val.mean()) < 0.1  # validation uses the train statistics, so only roughly 0


def test_split_is_a_partition_of_the_whole_data_set(data):
    from sklearn.datasets import load_digits

    full = load_digits()
    rows = np.vstack([data.X_train, data.X_val]) * data.std + data.mean
    got = np.column_stack([np.round(rows), np.concatenate([data.y_train, data.y_val])])
    want = np.column_stack([full.data, full.target])
    assert np.array_equal(got[np.lexsort(got.T)], want[np.lexsort(want.T)])


def test_split_is_deterministic_by_seed(data):
    again = D.load_digits_split(seed=0)
    other = D.load_digits_split(seed=1)
    assert np.array_equal(again.X_train, data.X_train) and np.array_equal(again.y_val, data.y_val)
    assert not np.array_equal(other.y_val, data.y_val)
    assert D.load_digits_split(val_fraction=0.5).X_val.shape == (898, 64)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, math.nan, "0.2"])
def test_split_rejects_bad_val_fraction(bad):
    with pytest.raises(ValueError, match="val_fraction"):
        D.load_digits_split(val_fraction=bad)


# -- MLP --------------------------------------------------------------------------------------------

def test_mlp_params_layout_and_seeded_init():
    m = D.MLP((64, 32, 16, 10), seed=3, activation="relu")
    assert [p.shape for p in m.params] == [(64, 32), (32,), (32, 16), (16,), (16, 10), (10,)]
    assert all(p.dtype == np.float64 for p in m.params)
    assert all(np.all(b == 0) for b in m.params[1::2])
    # He init for hidden relu layers: std sqrt(2 / fan_in).
    assert m.params[0].std() == pytest.approx(math.sqrt(2 / 64), rel=0.1)
    same, other = D.MLP((64, 32, 16, 10), seed=3, activation="relu"), D.MLP((64, 32, 16, 10), seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(m.params, same.params))
    assert not np.array_equal(m.params[0], other.params[0])


def fd_grads(model, X, y, l2, h=1e-6):
    """Central differences of the loss w.r.t. every parameter entry."""
    out = []
    for p in model.params:
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            up = model.loss_and_grads(X, y, l2=l2)[0]
            p[i] = old - h
            down = model.loss_and_grads(X, y, l2=l2)[0]
            p[i] = old
            g[i] = (up - down) / (2 * h)
        out.append(g)
    return out


# Central differences with h = 1e-6: truncation h^2 |L'''| / 6 ~ 1e-13 and rounding
# eps |L| / h ~ 2e-16 * 2.5 / 1e-6 ~ 5e-10 per entry. Gradient entries are ~1e-3..1e-1, so a
# norm-wise relative error below 1e-6 has >100x margin, while any backprop bug (wrong transpose,
# missing 1/n, wrong activation derivative) gives relative errors of order 1.
@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_backprop_matches_finite_differences(data, activation, l2):
    model = D.MLP((64, 12, 7, 10), seed=1, activation=activation)
    for p in model.params[1::2]:  # non-zero biases, so their gradients are exercised too
        p += np.random.default_rng(2).normal(0, 0.1, p.shape)
    X, y = data.X_train[:8], data.y_train[:8]
    if activation == "relu":
        # Kinks: finite differences are only valid if no pre-activation crosses 0 within +-h.
        z1 = X @ model.params[0] + model.params[1]
        z2 = np.maximum(z1, 0) @ model.params[2] + model.params[3]
        assert min(np.abs(z1).min(), np.abs(z2).min()) > 1e-4
    loss, grads = model.loss_and_grads(X, y, l2=l2)
    assert [g.shape for g in grads] == [p.shape for p in model.params]
    for g, fd in zip(grads, fd_grads(model, X, y, l2)):
        assert np.linalg.norm(g - fd) <= 1e-6 * np.linalg.norm(fd), (g, fd)


def test_l2_term_is_on_weights_only(data):
    model = D.MLP(seed=5)
    model.params[1] += 0.5  # non-zero biases: a penalty on them would show
    X, y = data.X_train[:50], data.y_train[:50]
    loss0, g0 = model.loss_and_grads(X, y)
    loss1, g1 = model.loss_and_grads(X, y, l2=0.1)
    sq = sum(np.sum(W**2) for W in model.params[::2])
    assert loss1 - loss0 == pytest.approx(0.05 * sq, rel=1e-12)
    for k, (a, b, p) in enumerate(zip(g0, g1, model.params)):
        np.testing.assert_allclose(b - a, 0.1 * p if k % 2 == 0 else 0.0, atol=1e-15)


def test_loss_and_grads_can_evaluate_other_params_without_touching_the_model(data):
    model = D.MLP(seed=0)
    other = [p * 0.5 for p in model.params]
    before = [p.copy() for p in model.params]
    X, y = data.X_val[:20], data.y_val[:20]
    loss, _ = model.loss_and_grads(X, y, params=other)
    assert loss == model.loss(X, y, params=other) != model.loss(X, y)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.params))


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_initial_loss_is_close_to_log_10(data, activation):
    # Near-uniform predictions at init give -log(1/10); the random logits add a bit.
    loss = D.MLP(activation=activation).loss(data.X_train, data.y_train)
    assert abs(loss - math.log(10)) < 0.5


def test_log_softmax_is_stable_for_huge_logits(data):
    model = D.MLP(seed=0)
    big = [p * 1e4 for p in model.params]  # logits ~1e4: a naive exp() overflows to inf/nan
    loss, grads = model.loss_and_grads(data.X_val[:10], data.y_val[:10], params=big)
    assert np.isfinite(loss) and loss > 10
    assert all(np.all(np.isfinite(g)) for g in grads)


def test_predict_and_accuracy_agree(data):
    model = D.MLP(seed=0)
    pred = model.predict(data.X_val)
    assert pred.shape == (359,) and pred.min() >= 0 and pred.max() <= 9
    assert model.accuracy(data.X_val, data.y_val) == np.mean(pred == data.y_val)
    assert model.accuracy(data.X_val, pred) == 1.0


@pytest.mark.parametrize("call, name", [
    (lambda m, d: m.loss_and_grads(d.X_train[:5, :63], d.y_train[:5]), "X"),
    (lambda m, d: m.loss_and_grads(d.X_train[0], d.y_train[:1]), "X"),
    (lambda m, d: m.loss_and_grads(d.X_train[:3], np.array([0, 10, 1])), "y"),
    (lambda m, d: m.loss_and_grads(d.X_train[:3], np.array([0, -1, 1])), "y"),
    (lambda m, d: m.loss_and_grads(d.X_train[:3], np.array([0.0, 1.0, 2.0])), "y"),
    (lambda m, d: m.loss_and_grads(d.X_train[:3], d.y_train[:4]), "y"),
    (lambda m, d: m.loss_and_grads(d.X_train[:3], d.y_train[:3], params=m.params[:2]), "params"),
    (lambda m, d: m.loss_and_grads(d.X_train[:3], d.y_train[:3], l2=-1.0), "l2"),
    (lambda m, d: m.predict(d.X_train[:3].T), "X"),
    (lambda m, d: m.accuracy(d.X_train[:3], d.y_train[:2]), "y"),
])
def test_bad_inputs_are_rejected_by_name(data, call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call(D.MLP(seed=0), data)


@pytest.mark.parametrize("kwargs, name", [
    ({"activation": "sigmoid"}, "activation"), ({"layer_sizes": (64,)}, "layer_sizes"),
    ({"layer_sizes": (64, 0, 10)}, r"layer_sizes\[1\]"), ({"seed": -1}, "seed"),
])
def test_bad_mlp_construction_is_rejected_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        D.MLP(**kwargs)


# -- minibatches ------------------------------------------------------------------------------------

def test_minibatches_cover_every_index_once_per_epoch():
    rng = np.random.default_rng(0)
    for _ in range(3):
        batches = list(D.minibatches(103, 10, rng))
        assert [len(b) for b in batches] == [10] * 10 + [3]  # the last partial batch is kept
        assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(103))
    one = [b.tolist() for b in D.minibatches(50, 8, np.random.default_rng(7))]
    two = [b.tolist() for b in D.minibatches(50, 8, np.random.default_rng(7))]
    assert one == two and np.concatenate(one).tolist() != list(range(50))  # shuffled, reproducibly


@pytest.mark.parametrize("n, bs, name", [(0, 4, "n"), (10, 0, "batch_size"), (10, 2.0, "batch_size")])
def test_minibatches_reject_bad_sizes(n, bs, name):
    with pytest.raises(ValueError, match=name):
        next(D.minibatches(n, bs, np.random.default_rng(0)))


# -- training ---------------------------------------------------------------------------------------

def test_sgd_reaches_90_percent_validation_accuracy(data):
    model = D.MLP(seed=0)
    assert model.accuracy(data.X_val, data.y_val) < 0.3
    hist = D.train(model, data, gd(0.1), epochs=5, batch_size=32)
    assert hist.val_accuracy[-1] > 0.9
    assert hist.train_accuracy[-1] > 0.9
    assert np.mean(hist.train_loss[-10:]) < 0.5 * np.mean(hist.train_loss[:10])
    assert hist.val_loss[-1] == pytest.approx(model.loss(data.X_val, data.y_val), rel=1e-15)


def test_history_bookkeeping(data):
    model = D.MLP(seed=0)
    hist = D.train(model, data, gd(0.05), epochs=3, batch_size=100)
    per_epoch = math.ceil(1438 / 100)
    assert len(hist.train_loss) == len(hist.lr) == len(hist.grad_evals) == 3 * per_epoch
    assert hist.grad_evals[per_epoch - 1] == 1438 and hist.grad_evals[-1] == 3 * 1438
    assert hist.grad_evals[:2] == [100, 200]
    assert all(len(x) == 3 for x in (hist.val_accuracy, hist.val_loss, hist.train_accuracy, hist.weight_norm))
    assert hist.lr == [0.05] * len(hist.lr)
    assert hist.weight_norm[-1] == pytest.approx(np.sqrt(sum(np.sum(W**2) for W in model.params[::2])))
    assert not hist.diverged


def test_full_batch_is_one_step_per_epoch(data):
    hist = D.train(D.MLP(seed=0), data, gd(0.5), epochs=4, batch_size=None)
    assert hist.grad_evals == [1438, 2876, 4314, 5752]
    assert all(b < a for a, b in zip(hist.train_loss, hist.train_loss[1:]))  # GD on a smooth loss


def test_training_is_bit_identical_for_the_same_seed(data):
    runs = []
    for seed in (0, 0, 1):
        model = D.MLP(seed=0)
        runs.append((D.train(model, data, gd(0.1), epochs=2, seed=seed), model.params))
    (h0, p0), (h1, p1), (h2, _) = runs
    assert h0 == h1 and all(np.array_equal(a, b) for a, b in zip(p0, p1))
    assert h0.train_loss != h2.train_loss  # the seed drives the batch order


def test_schedule_sets_lr_before_each_step(data):
    sched = lambda k: 0.1 * 0.9**k  # noqa: E731
    hist = D.train(D.MLP(seed=0), data, gd(99.0), epochs=2, batch_size=500, schedule=sched)
    assert hist.lr == [sched(k) for k in range(6)]
    with pytest.raises(ValueError, match=r"schedule\(0\)"):
        D.train(D.MLP(seed=0), data, gd(0.1), epochs=1, schedule=lambda k: math.nan)


def test_l2_weight_decay_shrinks_weights(data):
    plain = D.train(D.MLP(seed=0), data, gd(0.1), epochs=3)
    decayed = D.train(D.MLP(seed=0), data, gd(0.1), epochs=3, weight_decay_l2=0.05)
    assert decayed.weight_norm[-1] < 0.8 * plain.weight_norm[-1]
    # The recorded objective includes the penalty 0.5 * wd * ||W||^2.
    model = D.MLP(seed=0)
    first = D.train(model, data, gd(0.0), epochs=1, weight_decay_l2=0.05).train_loss[0]
    assert first > plain.train_loss[0] + 0.5 * 0.05 * model.weight_norm() ** 2 - 1e-12


def test_clip_norm_clips_every_step_before_the_optimizer_sees_it(data):
    seen = []

    class Spy(GD):
        def step(self, grads):
            seen.append(math.sqrt(sum(np.sum(g**2) for g in grads)))
            super().step(grads)

    unclipped = []

    class Recorder(GD):
        def step(self, grads):
            unclipped.append(math.sqrt(sum(np.sum(g**2) for g in grads)))
            super().step(grads)

    D.train(D.MLP(seed=0), data, lambda p: Recorder(p, 0.0), epochs=1)
    hist = D.train(D.MLP(seed=0), data, lambda p: Spy(p, 0.0), epochs=1, clip_norm=0.01)
    assert len(seen) == len(hist.train_loss)
    # lr 0 keeps the model fixed, so both runs see the same raw gradients: clipped ones are
    # scaled to max_norm / (norm + 1e-6) of them (torch's rule), which is <= 0.01.
    assert min(unclipped) > 0.01
    np.testing.assert_allclose(seen, [0.01 * n / (n + 1e-6) for n in unclipped], rtol=1e-12)


def test_non_finite_loss_stops_training(data):
    class Explodes(GD):
        def step(self, grads):
            self.params[0][:] = np.inf

    hist = D.train(D.MLP(seed=0), data, lambda p: Explodes(p, 0.1), epochs=3)
    assert hist.diverged and len(hist.train_loss) == 2 and math.isnan(hist.train_loss[-1])
    assert hist.val_accuracy == []


@pytest.mark.parametrize("kwargs, name", [
    ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size"), ({"seed": -2}, "seed"),
    ({"clip_norm": 0.0}, "clip_norm"), ({"weight_decay_l2": -0.1}, "weight_decay_l2"),
])
def test_train_rejects_bad_arguments_by_name(data, kwargs, name):
    with pytest.raises(ValueError, match=name):
        D.train(D.MLP(seed=0), data, gd(0.1), **kwargs)


def test_ten_epoch_minibatch_run_is_fast(data):
    start = time.perf_counter()
    D.train(D.MLP(), data, gd(0.1), epochs=10, batch_size=64)
    assert time.perf_counter() - start < 2.0
