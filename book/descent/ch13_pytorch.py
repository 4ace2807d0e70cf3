r"""Chapter 13 (book/13-pytorch.md): from optimkit to PyTorch.

The same training run twice, once with ``optimkit`` on NumPy and once with ``torch.optim`` on
torch tensors, and the pieces a torch user meets around it: the defaults of every optimizer
(:func:`defaults_table`), parameter groups (:func:`decay_groups`), schedulers and the order of
their ``step`` (:func:`lr_sequences`, :func:`step_order_warning`), an optimizer written as a
``torch.optim.Optimizer`` subclass (:class:`HandAdamW`), mixed precision with ``GradScaler``
and clipping (:func:`scaler_clipping`, :func:`bf16_losses`) and gradient accumulation
(:func:`accumulation`). Everything runs in float64 on the CPU unless it says otherwise.

``optimkit`` never imports torch: torch is the book's dependency, through this module.
"""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import torch
import torch.nn.functional as F

import optimkit
from optimkit import digits, lr_scheduler

# One thread: the chapter's tensors are small, and on a shared machine torch's thread pool
# spins against other processes; one thread also fixes the order of every sum.
torch.set_num_threads(1)

# The book's symbols for torch's hyperparameter names (chapters 2 to 12).
SYMBOLS = {"lr": "η", "momentum": "μ", "dampening": "τ", "weight_decay": "λ", "nesterov": "Nesterov",
           "betas": "(β₁, β₂)", "eps": "ε", "alpha": "ρ", "rho": "ρ", "lr_decay": "lr decay",
           "initial_accumulator_value": "G₀", "amsgrad": "AMSGrad", "centered": "centred",
           "momentum_decay": "ψ", "decoupled_weight_decay": "decoupled λ", "etas": "(η₋, η₊)",
           "step_sizes": "(Δmin, Δmax)", "lambd": "λ_ASGD", "t0": "t₀", "beta2_decay": "β₂ decay",
           "d": "d", "ns_coefficients": "(a, b, c)", "ns_steps": "Newton–Schulz steps",
           "adjust_lr_fn": "lr rule", "max_iter": "max_iter", "max_eval": "max_eval",
           "tolerance_grad": "tol_grad", "tolerance_change": "tol_change", "history_size": "m",
           "line_search_fn": "line search"}
# Switches that choose torch's implementation (one kernel per tensor, fused, CUDA graphs, ...), not
# the arithmetic: optimkit accepts only their arithmetic-neutral values.
IMPLEMENTATION = ("foreach", "fused", "capturable", "differentiable", "maximize")


# --- the defaults of every optimizer ---------------------------------------------------------------

def signature_defaults(cls) -> dict:
    """The keyword defaults of ``cls.__init__`` (hyperparameters only, no implementation switches)."""
    return {name: p.default for name, p in inspect.signature(cls.__init__).parameters.items()
            if p.default is not inspect.Parameter.empty and name not in IMPLEMENTATION}


def torch_twins() -> list[str]:
    """Names of optimkit's optimizers that torch.optim also has (read from both packages)."""
    return sorted(name for name in optimkit.__all__ if isinstance(getattr(optimkit, name), type)
                  and name != "Optimizer" and isinstance(getattr(torch.optim, name, None), type))


def _show(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    return str(value)


def defaults_table() -> tuple[list[list[str]], dict]:
    """Rows (torch name, its defaults in the book's symbols, optimkit's agree?) and counts."""
    rows, compared, differ = [], 0, []
    for name in torch_twins():
        theirs = signature_defaults(getattr(torch.optim, name))
        ours = signature_defaults(getattr(optimkit, name))
        shown = ", ".join(f"{SYMBOLS.get(k, k)} = {_show(v)}" for k, v in theirs.items())
        mismatched = [k for k in theirs if k not in ours or ours[k] != theirs[k]]
        compared += len(theirs)
        differ += [f"{name}.{k}" for k in mismatched]
        rows.append([f"torch.optim.{name}", shown, "same" if not mismatched else "differs: " + ", ".join(mismatched)])
    for name in ("LAMB", "Lookahead", "SAM"):
        rows.append([f"(none; optimkit.beyond.{name})", "", "torch.optim has no " + name])
    return rows, {"optimizers": len(torch_twins()), "compared": compared, "differ": differ}


# --- the twin training runs --------------------------------------------------------------------

def torch_params(model: digits.MLP) -> list[torch.Tensor]:
    """The MLP's parameters as torch leaf tensors (float64 copies)."""
    return [torch.tensor(p, dtype=torch.float64, requires_grad=True) for p in model.params]


def torch_forward(params, X):
    """The MLP's logits in torch: tanh layers, the last one linear (as ``digits.MLP``)."""
    a = X
    for k in range(0, len(params), 2):
        a = a @ params[k] + params[k + 1]
        if k + 2 < len(params):
            a = torch.tanh(a)
    return a


def twin_runs(make_torch, make_optimkit, epochs: int = 2, batch_size: int = 64, seed: int = 0,
              schedulers=None):
    """Train the digits MLP twice from the same start on the same minibatches: with torch
    (``make_torch(params)``) and with optimkit (``make_optimkit(params)``). ``schedulers``, if
    given, is ``(make_torch_scheduler, make_optimkit_scheduler)``, stepped after every step.

    Returns (torch losses, optimkit losses, largest parameter difference at the end).
    """
    data = digits.load_digits_split()
    model = digits.MLP(seed=seed)
    params = torch_params(model)
    opt_t, opt_o = make_torch(params), make_optimkit(model.params)
    position = {id(p): k for k, p in enumerate(model.params)}  # the model's order of its gradients
    sched_t = sched_o = None
    if schedulers is not None:
        sched_t, sched_o = schedulers[0](opt_t), schedulers[1](opt_o)
    X, y = torch.tensor(data.X_train), torch.tensor(data.y_train)
    rng_t, rng_o = np.random.default_rng(seed), np.random.default_rng(seed)
    losses_t, losses_o = [], []
    for _ in range(epochs):
        for idx_t, idx_o in zip(digits.minibatches(len(y), batch_size, rng_t),
                                digits.minibatches(len(y), batch_size, rng_o)):
            # torch: the training loop every torch program has
            opt_t.zero_grad()
            loss = F.cross_entropy(torch_forward(params, X[idx_t]), y[idx_t])
            loss.backward()
            opt_t.step()
            if sched_t is not None:
                sched_t.step()
            losses_t.append(loss.item())
            # optimkit: the gradient comes back from the model, the step takes it
            value, grads = model.loss_and_grads(data.X_train[idx_o], data.y_train[idx_o])
            opt_o.step([grads[position[id(p)]] for p in opt_o.params])  # groups may reorder them
            if sched_o is not None:
                sched_o.step()
            losses_o.append(value)
    gap = max(float(np.max(np.abs(p.detach().numpy() - q))) for p, q in zip(params, model.params))
    return np.array(losses_t), np.array(losses_o), gap


# --- parameter groups ---------------------------------------------------------------------------

def decay_groups(named_params, weight_decay: float, lr: float, no_decay_lr: float | None = None) -> list[dict]:
    """The usual recipe: matrices decay; biases and normalisation gains (1-D tensors) do not,
    and may take their own learning rate. Works on torch tensors and NumPy arrays alike."""
    decay = [p for _, p in named_params if p.ndim >= 2]
    no_decay = [p for _, p in named_params if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay, "lr": lr},
            {"params": no_decay, "weight_decay": 0.0, "lr": lr if no_decay_lr is None else no_decay_lr}]


def transformer_block_groups() -> dict:
    """How the recipe splits a small block with a LayerNorm (counts of tensors and numbers)."""
    torch.manual_seed(0)
    block = torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.GELU(), torch.nn.Linear(64, 16),
                                torch.nn.LayerNorm(16))
    groups = decay_groups(list(block.named_parameters()), 0.1, 1e-3)
    names = {id(p): n for n, p in block.named_parameters()}
    return {"decay": [names[id(p)] for p in groups[0]["params"]],
            "no_decay": [names[id(p)] for p in groups[1]["params"]],
            "decay_numbers": sum(p.numel() for p in groups[0]["params"]),
            "no_decay_numbers": sum(p.numel() for p in groups[1]["params"])}


def group_keys(optimizer) -> list[str]:
    """The keys of a parameter group, sorted (torch's and optimkit's have the same ones)."""
    return sorted(k for k in optimizer.param_groups[0] if k != "params")


# --- schedulers ----------------------------------------------------------------------------------

def warmup_cosine(module, optimizer, warmup: int, total: int, start_factor: float = 0.01):
    """``SequentialLR(LinearLR warmup, CosineAnnealingLR)`` from ``module`` (torch's
    ``torch.optim.lr_scheduler`` or ``optimkit.lr_scheduler``): the same call for both."""
    return module.SequentialLR(optimizer, [
        module.LinearLR(optimizer, start_factor=start_factor, end_factor=1.0, total_iters=warmup),
        module.CosineAnnealingLR(optimizer, T_max=total - warmup)], milestones=[warmup])


def lr_sequences(lr: float = 0.1, warmup: int = 5, total: int = 30):
    """The lr at every step of :func:`warmup_cosine`, from torch and from optimkit."""
    x = torch.zeros(1, requires_grad=True)
    opt_t = torch.optim.SGD([x], lr=lr)
    opt_o = optimkit.SGD([np.zeros(1)], lr=lr)
    s_t = warmup_cosine(torch.optim.lr_scheduler, opt_t, warmup, total)
    s_o = warmup_cosine(lr_scheduler, opt_o, warmup, total)
    seq_t, seq_o = [], []
    for _ in range(total):
        seq_t.append(opt_t.param_groups[0]["lr"])
        seq_o.append(opt_o.param_groups[0]["lr"])
        x.grad = torch.zeros(1)
        opt_t.step()
        opt_o.step([np.zeros(1)])
        s_t.step()
        s_o.step()
    return np.array(seq_t), np.array(seq_o)


def plateau_run(epochs: int = 14, lr: float = 0.5, patience: int = 1, factor: float = 0.5, seed: int = 0):
    """Full-batch SGD on the digits MLP in torch with ``ReduceLROnPlateau`` on the validation
    loss, and optimkit's scheduler fed the same validation losses. Returns per epoch: the
    validation loss, torch's lr and optimkit's lr after ``scheduler.step(val_loss)``."""
    data = digits.load_digits_split()
    params = torch_params(digits.MLP(seed=seed))
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=factor, patience=patience)
    twin = optimkit.SGD([np.zeros(1)], lr=lr, momentum=0.9)
    twin_plateau = lr_scheduler.ReduceLROnPlateau(twin, factor=factor, patience=patience)
    X, y = torch.tensor(data.X_train), torch.tensor(data.y_train)
    Xv, yv = torch.tensor(data.X_val), torch.tensor(data.y_val)
    rows = []
    for _ in range(epochs):
        for _ in range(5):  # five full-batch steps an "epoch"
            opt.zero_grad()
            F.cross_entropy(torch_forward(params, X), y).backward()
            opt.step()
        with torch.no_grad():
            val = F.cross_entropy(torch_forward(params, Xv), yv).item()
        plateau.step(val)
        twin_plateau.step(val)
        rows.append((val, opt.param_groups[0]["lr"], twin.param_groups[0]["lr"]))
    return rows


def step_order_warning(lr: float = 0.1, warmup: int = 5, total: int = 30):
    """Call ``scheduler.step()`` before ``optimizer.step()`` (the wrong order), as torch sees it:
    the warning it prints (caught, its text returned) and the lrs the steps then use, beside
    the right order's."""
    def run(wrong: bool):
        x = torch.zeros(1, requires_grad=True)
        opt = torch.optim.SGD([x], lr=lr)
        sched = warmup_cosine(torch.optim.lr_scheduler, opt, warmup, total)
        used = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(total):
                x.grad = torch.zeros(1)
                if wrong:
                    sched.step()
                used.append(opt.param_groups[0]["lr"])
                opt.step()
                if not wrong:
                    sched.step()
        return used, [str(w.message) for w in caught]
    right, right_warnings = run(False)
    wrong, wrong_warnings = run(True)
    return np.array(right), np.array(wrong), right_warnings, wrong_warnings


# --- a custom optimizer -------------------------------------------------------------------------

class HandAdamW(torch.optim.Optimizer):
    r"""AdamW written as torch writes its optimizers: hyperparameters in ``param_groups``, state
    in ``self.state[p]``, in-place updates under ``torch.no_grad()``.

    .. math::

        \theta &\leftarrow \theta\,(1 - \eta\lambda) \\
        m_t &= \beta_1 m_{t-1} + (1-\beta_1)\, g_t, \qquad
        v_t = \beta_2 v_{t-1} + (1-\beta_2)\, g_t^2 \\
        \theta_t &= \theta - \eta\,\frac{m_t / (1-\beta_1^t)}{\sqrt{v_t / (1-\beta_2^t)} + \epsilon}
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]              # one state per parameter
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t, m, v = state["step"], state["exp_avg"], state["exp_avg_sq"]
                p.mul_(1 - lr * group["weight_decay"])  # decoupled decay, before the step
                m.lerp_(p.grad, 1 - beta1)
                v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                denom = (v / (1 - beta2 ** t)).sqrt_().add_(eps)
                p.addcdiv_(m, denom, value=-lr / (1 - beta1 ** t))  # in place: the model sees it
        return loss


def hand_vs_torch(steps: int = 20, lr: float = 1e-2, weight_decay: float = 0.1, seed: int = 0) -> float:
    """Full-batch steps of :class:`HandAdamW` and ``torch.optim.AdamW`` on the digits MLP from
    the same start: the largest difference of the weights at the end."""
    data = digits.load_digits_split()
    X, y = torch.tensor(data.X_train), torch.tensor(data.y_train)
    mine, theirs = torch_params(digits.MLP(seed=seed)), torch_params(digits.MLP(seed=seed))
    optimizers = ((HandAdamW(mine, lr=lr, weight_decay=weight_decay), mine),
                  (torch.optim.AdamW(theirs, lr=lr, weight_decay=weight_decay), theirs))
    for _ in range(steps):
        for opt, params in optimizers:
            opt.zero_grad()
            F.cross_entropy(torch_forward(params, X), y).backward()
            opt.step()
    return max(float((a - b).detach().abs().max()) for a, b in zip(mine, theirs))


# --- mixed precision, clipping, accumulation ------------------------------------------------------

def scaler_clipping(max_norm: float = 1.0, seed: int = 0, init_scale: float = 2.0 ** 16):
    """One step of the digits MLP (float32) with ``torch.amp.GradScaler``: the gradient norm the
    scaled gradients have, the true one, and the norm of the gradients the optimizer then uses
    when ``clip_grad_norm_`` runs after ``unscale_`` (right) or before it (wrong)."""
    data = digits.load_digits_split()
    X, y = torch.tensor(data.X_train[:64], dtype=torch.float32), torch.tensor(data.y_train[:64])

    def one(order: str):
        params = [p.detach().float().requires_grad_() for p in torch_params(digits.MLP(seed=seed))]
        opt = torch.optim.SGD(params, lr=0.1)
        scaler = torch.amp.GradScaler("cpu", init_scale=init_scale)
        loss = F.cross_entropy(torch_forward(params, X), y)
        scaler.scale(loss).backward()
        scaled = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
        if order == "right":
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, max_norm)
        else:
            torch.nn.utils.clip_grad_norm_(params, max_norm)
            scaler.unscale_(opt)
        used = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
        scaler.step(opt)
        scaler.update()
        return scaled, used

    params = torch_params(digits.MLP(seed=seed))
    F.cross_entropy(torch_forward(params, X.double()), y).backward()
    true = float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params])))
    scaled, right = one("right")
    _, wrong = one("wrong")
    return {"scale": init_scale, "true": true, "scaled": scaled, "right": right, "wrong": wrong}


def bf16_losses(steps: int = 60, lr: float = 0.05, seed: int = 0):
    """Train the digits MLP (float32 parameters) with plain float32 and with the forward pass
    under ``torch.autocast("cpu", dtype=torch.bfloat16)``, from the same start and minibatches.
    Returns the first loss of each, the largest difference of the per-step losses, and the
    validation accuracy of each at the end."""
    data = digits.load_digits_split()
    X, y = torch.tensor(data.X_train, dtype=torch.float32), torch.tensor(data.y_train)
    Xv, yv = torch.tensor(data.X_val, dtype=torch.float32), torch.tensor(data.y_val)
    out = {}
    for name in ("float32", "bfloat16"):
        params = [p.detach().float().requires_grad_() for p in torch_params(digits.MLP(seed=seed))]
        opt = torch.optim.Adam(params, lr=lr * 0.1)
        rng, losses = np.random.default_rng(seed), []
        batches = [idx for _ in range(10) for idx in digits.minibatches(len(y), 64, rng)][:steps]
        for idx in batches:
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=name == "bfloat16"):
                logits = torch_forward(params, X[idx])
            loss = F.cross_entropy(logits.float(), y[idx])
            loss.backward()
            opt.step()
            losses.append(loss.item())
        with torch.no_grad():
            accuracy = float((torch_forward(params, Xv).argmax(1) == yv).double().mean())
        out[name] = (np.array(losses), accuracy, logits.dtype)
    return out


def accumulation(micro: int = 4, batch: int = 64, seed: int = 0):
    """The gradient of one batch of ``batch`` digits, and the gradient accumulated over ``micro``
    micro-batches (``loss / micro`` each, and without the division): largest differences."""
    data = digits.load_digits_split()
    X, y = torch.tensor(data.X_train[:batch]), torch.tensor(data.y_train[:batch])

    def grads(chunks: int, divide: bool):
        params = torch_params(digits.MLP(seed=seed))
        for Xc, yc in zip(X.chunk(chunks), y.chunk(chunks)):
            loss = F.cross_entropy(torch_forward(params, Xc), yc)
            (loss / chunks if divide else loss).backward()  # .grad adds up across backward calls
        return torch.cat([p.grad.flatten() for p in params])

    full = grads(1, True)
    divided, summed = grads(micro, True), grads(micro, False)
    return {"divided": float((divided - full).abs().max()), "summed_ratio": float(summed.norm() / full.norm()),
            "full_norm": float(full.norm())}
