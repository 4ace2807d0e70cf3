"""Hidden checks for assignment 09_torch_optimizer (chapter 13, from optimkit to PyTorch).

The student writes LAMB as a ``torch.optim.Optimizer`` subclass. LAMB, because torch.optim
has none: torch is importable in this assignment's sandbox (the answer is written with it),
so an optimizer torch ships (Adam, AdamW) could be handed in as ``torch.optim.AdamW`` in
disguise; LAMB has to be written, and it exercises everything a custom torch optimizer needs:
state per parameter (two moments and a step count each), the per-group hyperparameters of
``param_groups``, updates in place under ``torch.no_grad()``, plus decoupled weight decay
and one norm per parameter (the trust ratio).

The graded function is ``lamb_steps``, given in the answer cell below the class: it trains
the student's class on a separable quadratic loss with two parameter groups, through
``zero_grad`` / ``backward`` / ``step``, and returns the parameters after every step. The
reference runs ``optimkit.beyond.LAMB`` (NumPy) with the same groups on the same gradients;
the sandbox never sees it.

How the drives tell the variants apart:

* 2 to 4 parameters in two groups; the second group has its own lr and no weight decay
  (the biases-and-gains recipe of chapter 13), so reading the lr of the defaults shows;
* every parameter gets its own first step, so one step counter shared by all parameters
  gives the second parameter t = 2 at its first step and a different bias correction;
* weight decay from 0.02 to 0.2 on group 0 and bias corrections far from 1 (beta2 from 0.9
  to 0.99, runs of 1, 5 and 15 steps): coupled decay and missing corrections both move it;
* each call starts a fresh optimizer; three calls per run, so state bugs that show only
  after some steps still earn the calls before them half credit.
"""

from __future__ import annotations

import numpy as np

from optimkit.beyond import LAMB

from .core import Problem, Variant, random_shape

CHAPTER = "Chapter 13 (From optimkit to PyTorch)"
CUSTOM = f"{CHAPTER}, section 'A custom optimizer'"
GROUPS = f"{CHAPTER}, section 'Parameter groups'"
LAMB_TEXT = "Chapter 12 (Beyond), section 'LAMB: a step size per layer'"
STEPS = (1, 5, 15)
# A LAMB step is Adam's elementwise arithmetic plus two norms and a ratio of norms; torch and
# NumPy sum the norms in different orders, so a correct torch answer differs from the NumPy
# reference by ~1e-16 relative per step (measured: at most 3e-14 after 15 steps). Every known
# mistake moves the first or second step by far more than 1e-6 relative (the smallest: the
# defaults' lr, 2x to 5x off). rtol = 1e-9 sits far from both.
RTOL, ATOL = 1e-9, 1e-12


def _reference(params, centers, curvatures, group_options, steps, lr, betas, eps, weight_decay):
    groups = [dict(options, params=[np.array(p, dtype=np.float64) for p in group])
              for group, options in zip(params, group_options)]
    optimizer = LAMB(groups, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
    flat = optimizer.params
    c = [np.asarray(x) for group in centers for x in group]
    w = [np.asarray(x) for group in curvatures for x in group]
    trajectory = []
    for _ in range(steps):
        optimizer.step([wi * (p - ci) for p, ci, wi in zip(flat, c, w)])  # the loss's gradient
        trajectory.append([p.copy() for p in flat])
    return trajectory


def _drive(call, rng):
    sizes = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))  # parameters per group
    params = [[rng.normal(size=random_shape(rng)) for _ in range(n)] for n in sizes]
    centers = [[rng.normal(size=p.shape) for p in group] for group in params]
    curvatures = [[10.0 ** rng.uniform(-1, 1, size=p.shape) for p in group] for group in params]
    lr = float(rng.uniform(0.01, 0.1))
    hyper = dict(lr=lr, betas=(float(rng.uniform(0.8, 0.95)), float(rng.uniform(0.9, 0.99))),
                 eps=float(10.0 ** rng.uniform(-6, -3)), weight_decay=float(rng.uniform(0.02, 0.2)))
    # group 1: no weight decay and a learning rate of its own (2x to 5x, never the default's)
    group_options = [{}, {"lr": lr * float(rng.uniform(2, 5)), "weight_decay": 0.0}]
    for steps in STEPS:
        call(params=params, centers=centers, curvatures=curvatures, group_options=group_options,
             steps=steps, **hyper)


# The mistakes are edits of one correct answer, as a student would make them.
CORRECT = '''
import torch


class LAMB(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                m.mul_(beta1).add_(g, alpha=1 - beta1)
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                m_hat = m / (1 - beta1 ** t)
                v_hat = v / (1 - beta2 ** t)
                u = m_hat / (v_hat.sqrt() + group["eps"]) + group["weight_decay"] * p
                p_norm, u_norm = p.norm().item(), u.norm().item()
                ratio = p_norm / u_norm if p_norm > 0 and u_norm > 0 else 1.0
                lr = group["lr"]
                p.add_(u, alpha=-lr * ratio)
        return loss


def lamb_steps(params, centers, curvatures, group_options, steps, lr, betas, eps, weight_decay):
    tensors = [[torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in group] for group in params]
    optimizer = LAMB([dict(options, params=group) for group, options in zip(tensors, group_options)],
                     lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    flat = [p for group in tensors for p in group]
    c = [torch.tensor(x) for group in centers for x in group]
    w = [torch.tensor(x) for group in curvatures for x in group]
    trajectory = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = sum((0.5 * wi * (p - ci) ** 2).sum() for p, ci, wi in zip(flat, c, w))
        loss.backward()
        optimizer.step()
        trajectory.append([p.detach().numpy().copy() for p in flat])
    return trajectory
'''


def _edit(*replacements: tuple[str, str]) -> str:
    code = CORRECT
    for old, new in replacements:
        if code.count(old) != 1:  # a check of our own text: the edit must land exactly once
            raise ValueError(f"the variant's edit {old!r} does not occur once in CORRECT")
        code = code.replace(old, new)
    return code


lamb_steps = Problem(
    name="lamb_steps", reference=_reference, drive=_drive, chapter=CUSTOM, packages=("torch",),
    variants=[
        Variant("no bias correction (m and v used as they are)", LAMB_TEXT, _edit(
            ("m_hat = m / (1 - beta1 ** t)", "m_hat = m"),
            ("v_hat = v / (1 - beta2 ** t)", "v_hat = v"))),
        Variant("one step counter for all parameters (kept on the optimizer, not in each "
                "parameter's state)", CUSTOM, _edit(
            ("        super().__init__(params, defaults)\n",
             "        super().__init__(params, defaults)\n        self.t = 0\n"),
            ('                state["step"] += 1\n                t = state["step"]\n',
             "                self.t += 1\n                t = self.t\n"))),
        Variant("weight decay coupled: added to the gradient (L2) instead of to the update", LAMB_TEXT, _edit(
            ("                g = p.grad\n", '                g = p.grad + group["weight_decay"] * p\n'),
            (' + group["weight_decay"] * p\n                p_norm', "\n                p_norm"))),
        Variant("the learning rate of the defaults, not of the parameter's group", GROUPS, _edit(
            ('lr = group["lr"]', 'lr = self.defaults["lr"]'))),
        Variant("the parameter rebound, not updated in place (p = p - ..., so the model never changes)",
                CUSTOM, _edit(("p.add_(u, alpha=-lr * ratio)", "p = p - lr * ratio * u"))),
        Variant("step without @torch.no_grad() (the in-place update of a parameter that requires "
                "grad raises RuntimeError)", CUSTOM, _edit(("    @torch.no_grad()\n", ""))),
    ],
    rtol=RTOL, atol=ATOL)

PROBLEMS = {p.name: p for p in (lamb_steps,)}
