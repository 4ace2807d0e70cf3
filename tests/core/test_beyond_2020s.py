"""The 2020s methods torch.optim lacks, against their authors' published implementations.

* Lion: ``lion_pytorch.Lion`` (lucidrains; the authors' own is in Google's automl repository,
  not on the index; optax.lion computes the same, checked here too);
* schedule-free AdamW: ``schedulefree.AdamWScheduleFree`` and ``AdamWScheduleFreeReference``
  (Facebook Research, the authors');
* Shampoo: ``pytorch_optimizer.Shampoo`` (SOAP is not in optimkit: see the chapter).

Same harness as the torch.optim tests: float64, one gradient stream fed to both (the
gradient of a random quadratic at *our* parameters, plus noise), 150 steps, every element
of every step within 1e-9 relative + 1e-12 absolute. The same float64 operations in nearly
the same order give ~1e-14; schedule-free's reference class (x and z stored, not y and z)
and Shampoo's SVD-based inverse roots (whose rounding depends on the SVD routine) stay
below 1e-12 relative over 150 steps. Each method has a negative control: a perturbed
setting must fail the same comparison.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from optimkit import beyond

RTOL, ATOL = 1e-9, 1e-12
SHAPES = [(3, 4), (5,), (2, 2), (1, 6)]


def run(ours, theirs, steps=150, seed=0, shapes=SHAPES, before=None):
    """Both optimizers (factories over a list of arrays) on one gradient stream; the worst
    gap in tolerance units over every element of every step."""
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s) for s in shapes]
    curvature = [rng.uniform(0.1, 3.0, size=s) for s in shapes]
    tparams = [torch.tensor(p.copy(), dtype=torch.float64, requires_grad=True) for p in params]
    a, b = ours(params), theirs(tparams)
    if before:
        before(a, b)
    worst = 0.0
    for step in range(steps):
        grads = [c * p + 0.1 * rng.normal(size=p.shape) for p, c in zip(params, curvature)]
        for tp, g in zip(tparams, grads):
            tp.grad = torch.from_numpy(g.copy())
        a.step(grads)
        b.step()
        for p, tp in zip(params, tparams):
            t = tp.detach().numpy()
            worst = max(worst, float(np.max(np.abs(p - t) / (RTOL * np.abs(t) + ATOL))))
    return worst, a, b, params, tparams


# --- Lion -----------------------------------------------------------------------------------

LION = [dict(lr=1e-4), dict(lr=0.01, betas=(0.8, 0.95)), dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.003, betas=(0.0, 0.0))]  # the last: sign descent


@pytest.mark.parametrize("kwargs", LION, ids=["defaults", "betas", "decay", "sign-descent"])
def test_lion_matches_lion_pytorch(kwargs):
    from lion_pytorch import Lion
    worst, *_ = run(lambda p: beyond.Lion(p, **kwargs), lambda p: Lion(p, **kwargs))
    assert worst <= 1, f"{kwargs}: {worst:.3g} x the tolerance"


def test_lion_matches_optax_lion():
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import optax
    rng = np.random.default_rng(3)
    params = [rng.normal(size=s) for s in SHAPES]
    ours = beyond.Lion([p.copy() for p in params], lr=0.01, betas=(0.9, 0.99), weight_decay=0.1)
    tx = optax.lion(0.01, b1=0.9, b2=0.99, weight_decay=0.1)
    jparams = [jnp.asarray(p) for p in params]
    state = tx.init(jparams)
    for _ in range(60):
        grads = [0.5 * p + 0.1 * rng.normal(size=p.shape) for p in ours.params]
        updates, state = tx.update([jnp.asarray(g) for g in grads], state, jparams)
        jparams = optax.apply_updates(jparams, updates)
        ours.step(grads)
        jparams = [jnp.asarray(p) for p in ours.params]  # same point for both, every step
    assert all(np.allclose(np.asarray(j), p, rtol=1e-12, atol=1e-15)
               for j, p in zip(jparams, ours.params))


def test_lion_negative_control():
    from lion_pytorch import Lion
    # a sign hides small changes of the betas (measured: 0 difference at 1e-6), not of lr
    worst, *_ = run(lambda p: beyond.Lion(p, lr=0.01 * (1 + 1e-6)), lambda p: Lion(p, lr=0.01))
    assert worst > 1
    worst, *_ = run(lambda p: beyond.Lion(p, lr=0.01, betas=(0.99, 0.9)),  # betas swapped
                    lambda p: Lion(p, lr=0.01, betas=(0.9, 0.99)))
    assert worst > 1


# --- schedule-free AdamW --------------------------------------------------------------------

SCHEDULE_FREE = [dict(), dict(lr=0.01, weight_decay=0.1, warmup_steps=10),
                 dict(lr=0.02, betas=(0.8, 0.99), r=1.0, weight_lr_power=1.0, eps=1e-3)]


def train_both(a, b):
    a.train()
    b.train()


@pytest.mark.parametrize("kwargs", SCHEDULE_FREE, ids=["defaults", "warmup-decay", "r-power"])
def test_schedulefree_matches_the_authors(kwargs, capsys):
    import schedulefree
    for theirs in (lambda p: schedulefree.AdamWScheduleFree(p, foreach=False, **kwargs),
                   lambda p: schedulefree.AdamWScheduleFreeReference(p, **kwargs)):
        worst, a, b, params, tparams = run(lambda p: beyond.AdamWScheduleFree(p, **kwargs),
                                           theirs, before=train_both)
        assert worst <= 1, f"{kwargs}: {worst:.3g} x the tolerance"
        a.eval()
        b.eval()  # the average x, where one evaluates
        for p, tp in zip(params, tparams):
            np.testing.assert_allclose(p, tp.detach().numpy(), rtol=RTOL, atol=ATOL)
        a.train()
        b.train()
        for p, tp in zip(params, tparams):
            np.testing.assert_allclose(p, tp.detach().numpy(), rtol=RTOL, atol=ATOL)


def test_schedulefree_negative_control_and_eval_mode_refused():
    import schedulefree
    worst, *_ = run(lambda p: beyond.AdamWScheduleFree(p, r=1e-6),
                    lambda p: schedulefree.AdamWScheduleFree(p, foreach=False),
                    before=train_both)
    assert worst > 1
    opt = beyond.AdamWScheduleFree([np.ones(2)])
    with pytest.raises(RuntimeError, match=r"call opt.train\(\) before"):
        opt.step([np.ones(2)])
    assert opt.param_groups[0]["k"] == 0


def test_schedulefree_average_is_the_mean_of_z_at_constant_lr():
    """With r = 0 and no warmup, c_t = 1/t: x is the running mean of z_1..z_t (closed form)."""
    rng = np.random.default_rng(0)
    p = [rng.normal(size=3)]
    opt = beyond.AdamWScheduleFree(p, lr=0.05, betas=(0.9, 0.999))
    opt.train()
    zs = []
    for _ in range(20):
        opt.step([rng.normal(size=3)])
        zs.append(opt.state[0]["z"].copy())
    opt.eval()
    np.testing.assert_allclose(p[0], np.mean(zs, axis=0), rtol=1e-12)


# --- Shampoo --------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [dict(), dict(lr=0.01), dict(lr=0.05, matrix_eps=1e-3)],
                         ids=["defaults", "lr", "eps"])
def test_shampoo_matches_pytorch_optimizer(kwargs):
    from pytorch_optimizer import Shampoo
    worst, a, b, params, tparams = run(lambda p: beyond.Shampoo(p, **kwargs),
                                       lambda p: Shampoo(p, **kwargs))
    assert worst <= 1, f"{kwargs}: {worst:.3g} x the tolerance"


def test_shampoo_negative_control_and_the_inverse_root():
    from pytorch_optimizer import Shampoo
    worst, *_ = run(lambda p: beyond.Shampoo(p, lr=0.01, matrix_eps=1e-6 * 1.01),
                    lambda p: Shampoo(p, lr=0.01))
    assert worst > 1
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 5))
    M = X @ X.T + 0.1 * np.eye(5)
    root = beyond.matrix_inverse_root(M, 4)
    np.testing.assert_allclose(np.linalg.matrix_power(root, 4) @ M, np.eye(5), atol=1e-10)
