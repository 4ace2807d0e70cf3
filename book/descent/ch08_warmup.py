"""Chapter 8 (book/08-warmup.md): why warmup helps Adam, measured.

The spread of Adam's second moment early on (:func:`v_hat_samples`, :func:`v_hat_relative_std`),
RAdam's rectifier (:func:`radam_rectifier`, NaN where RAdam takes a momentum step), Adam's
relative steps on the digits MLP, warmup runs and the chapter's figures.
"""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from optimkit import rules, schedules as S
from optimkit.clipping import global_norm
from optimkit.digits import DigitsData, MLP
from optimkit.optim import Adam, RAdam

from .drawing import COLORS
from .sliders import SliderFigure


def v_hat_samples(ts: Sequence[int], beta2: float = 0.999, runs: int = 20000,
                  seed: int = 0) -> np.ndarray:
    r"""Adam's bias-corrected second moment :math:`\hat v_t = v_t / (1 - \beta_2^t)` at the steps
    ``ts``, for ``runs`` independent streams of :math:`\mathcal N(0, 1)` gradients.

    The recurrence of :func:`optimkit.rules.adam_kernel` (:math:`v_t = \beta_2 v_{t-1} +
    (1-\beta_2) g_t^2`), on one scalar per run. Shape ``(len(ts), runs)``.
    """
    ts = [int(t) for t in ts]
    if not ts or min(ts) < 1:
        raise ValueError(f"ts must be steps >= 1, got {ts!r}")
    rng = np.random.default_rng(seed)
    v = np.zeros(runs)
    out = np.empty((len(ts), runs))
    wanted = {t: i for i, t in enumerate(ts)}
    for t in range(1, max(ts) + 1):
        g = rng.standard_normal(runs)
        rules.update_moment(v, g, beta2, order=2)
        if t in wanted:
            out[wanted[t]] = v / rules.bias_correction(beta2, t)
    return out


def v_hat_relative_std(t, beta2: float = 0.999):
    r"""Standard deviation of :math:`\hat v_t` divided by its mean, for i.i.d. zero-mean Gaussian
    gradients: :math:`\hat v_t = \sum_i w_i g_i^2` with :math:`w_i = (1-\beta_2)\beta_2^{t-i}/(1-\beta_2^t)`
    and :math:`\operatorname{Var} g^2 = 2\sigma^4`, so

    .. math:: \frac{\operatorname{sd}\hat v_t}{\mathbb E\hat v_t} = \sqrt{2\sum_i w_i^2}
              = \sqrt{\frac{2(1-\beta_2)(1+\beta_2^t)}{(1+\beta_2)(1-\beta_2^t)}}

    which is :math:`\sqrt2` at :math:`t = 1` and :math:`\sqrt{2(1-\beta_2)/(1+\beta_2)}` as
    :math:`t \to \infty`.
    """
    t = np.asarray(t, dtype=np.float64)
    return np.sqrt(2 * (1 - beta2) * (1 + beta2**t) / ((1 + beta2) * (1 - beta2**t)))


def radam_rectifier(t: int, beta2: float = 0.999) -> float:
    r"""RAdam's :math:`r_t`, or NaN on the steps where :math:`\rho_t \le 5` and RAdam takes an
    un-adapted momentum step instead (the same test and formula as ``optimkit.rules.radam_kernel``).
    """
    r = rules.radam_rectifier(t, beta2)
    return math.nan if r is None else r


def adam_relative_steps(model: MLP, data: DigitsData, lr: float, steps: int, batch_size: int = 64,
                        seed: int = 0, betas=(0.9, 0.999)):
    r"""Train ``model`` with :class:`optimkit.Adam` on random minibatches and record, at every step,
    :math:`|\Delta\theta| / \eta` for every parameter entry and the gradient's global norm.

    Returns ``(ratios, grad_norms)`` with shapes ``(steps, n_params)`` and ``(steps,)``. Row
    ``t - 1`` of ``ratios`` is Adam's step at :math:`t` in units of the learning rate,
    :math:`|\hat m_t| / (\sqrt{\hat v_t} + \epsilon)` up to rounding.
    """
    rng = np.random.default_rng(seed)
    opt = Adam(model.params, lr=lr, betas=betas)
    n = len(data.y_train)
    ratios = np.empty((steps, sum(p.size for p in model.params)))
    norms = np.empty(steps)
    for t in range(steps):
        idx = rng.choice(n, size=batch_size, replace=False)
        _, grads = model.loss_and_grads(data.X_train[idx], data.y_train[idx])
        norms[t] = global_norm(grads)
        before = np.concatenate([p.ravel() for p in model.params])
        opt.step(grads)
        after = np.concatenate([p.ravel() for p in model.params])
        ratios[t] = np.abs(after - before) / lr
    return ratios, norms


def v_hat_figure(t: np.ndarray, empirical: np.ndarray, formula: np.ndarray,
                 step_quantiles: dict | None = None):
    """Relative spread of Adam's v-hat against step: simulation dots, formula line."""
    cols = 2 if step_quantiles else 1
    fig, axes = plt.subplots(1, cols, figsize=(4.2 * cols, 3.4), layout="constrained", squeeze=False)
    ax = axes[0, 0]
    ax.plot(t, formula, color=COLORS[0], lw=1.8, label="formula")
    ax.plot(t, empirical, "o", color=COLORS[1], ms=3.5, label="20,000 simulated runs")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("sd / mean of v-hat")
    ax.set_title("How uncertain Adam's v-hat is", fontsize=10)
    ax.legend(fontsize=8)
    if step_quantiles:
        ax = axes[0, 1]
        for color, (label, (steps, values)) in zip(COLORS[2:], step_quantiles.items()):
            ax.plot(steps, values, color=color, lw=1.6, label=label)
        ax.set_xscale("log")
        ax.set_xlabel("step t")
        ax.set_ylabel("|step| / lr")
        ax.set_title("Adam's steps on the digits MLP", fontsize=10)
        ax.legend(fontsize=8)
    return fig


def radam_figure(t: np.ndarray, r: np.ndarray, warmup_steps: int, fallback_steps: int):
    """RAdam's r_t against step, next to a linear warmup of ``warmup_steps`` steps."""
    fig, ax = plt.subplots(figsize=(7.0, 3.3), layout="constrained")
    ax.axvspan(0.5, fallback_steps + 0.5, color=COLORS[4], alpha=0.25, lw=0,
               label=f"steps 1-{fallback_steps}: momentum step, no v")
    ax.plot(t, r, color=COLORS[0], lw=1.8, label="RAdam's rectifier r_t")
    ax.plot(t, np.minimum(t / warmup_steps, 1.0), color=COLORS[1], lw=1.4, ls="--",
            label=f"linear warmup over {warmup_steps} steps")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("step t")
    ax.set_ylabel("multiplier on the lr")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def warmup_runs(data: DigitsData, peak_lr: float, warmup_steps: int, *, steps: int = 60,
                layer_sizes=(64, 64, 64, 64, 10), activation: str = "relu", seed: int = 0,
                optimizer: str = "Adam") -> dict:
    """Full-batch training of a deeper MLP under ``warmup_cosine(peak_lr, warmup_steps, steps)``.

    Every step uses the whole training set (the large-batch setting in which warmup became
    standard practice). Returns ``train_loss`` (before each step, then after the last), ``lr``
    (per step), ``val_accuracy`` and ``val_loss`` at the end, ``diverged`` and the ``model``.
    """
    if optimizer not in ("Adam", "RAdam"):
        raise ValueError(f"optimizer must be 'Adam' or 'RAdam', got {optimizer!r}")
    model = MLP(layer_sizes, seed=seed, activation=activation)
    opt = (Adam if optimizer == "Adam" else RAdam)(model.params, lr=peak_lr)
    schedule = S.warmup_cosine(peak_lr, warmup_steps, steps)
    losses, lrs, diverged = [], [], False
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(steps):
            opt.lr = schedule(t)
            loss, grads = model.loss_and_grads(data.X_train, data.y_train)
            losses.append(loss)
            lrs.append(opt.lr)
            if not np.isfinite(loss):
                diverged = True
                break
            opt.step(grads)
        if not diverged:
            losses.append(model.loss(data.X_train, data.y_train))
            diverged = not np.isfinite(losses[-1])
    return {"train_loss": np.array(losses), "lr": np.array(lrs), "diverged": diverged,
            "val_accuracy": model.accuracy(data.X_val, data.y_val) if not diverged else math.nan,
            "val_loss": model.loss(data.X_val, data.y_val) if not diverged else math.nan,
            "model": model}


def dead_units(model: MLP, X: np.ndarray) -> list:
    """Per hidden ReLU layer, the fraction of units that output 0 on every row of ``X``
    (a dead unit gets no gradient, so it stays dead)."""
    if model.activation != "relu":
        raise ValueError("dead units are a ReLU notion; this model uses " + model.activation)
    fractions, a = [], np.asarray(X, dtype=np.float64)
    for k in range(len(model.params) // 2 - 1):
        a = np.maximum(a @ model.params[2 * k] + model.params[2 * k + 1], 0.0)
        fractions.append(float(np.mean(~(a > 0).any(axis=0))))
    return fractions


def warmup_explorer(data: DigitsData, warmups: Sequence[int] = (0, 3, 10, 20, 40),
                    peak_lrs: Sequence[float] = (0.05, 0.1, 0.2), *, steps: int = 60,
                    seed: int = 0, **run_kwargs) -> SliderFigure:
    """Slider over warmup length and peak lr: the lr schedule and the training loss it gives.

    Runs :func:`warmup_runs` for every pair; the run without warmup at the same peak is drawn
    dashed for reference. ``results[(warmup, peak)]`` holds ``peak_loss`` (largest training
    loss after step 0), ``final_loss`` and ``val_accuracy``.
    """
    histories, results = {}, {}
    for peak in peak_lrs:
        for w in warmups:
            run = warmup_runs(data, peak, w, steps=steps, seed=seed, **run_kwargs)
            losses = run["train_loss"]
            histories[w, peak] = (run["lr"], losses)
            results[w, peak] = {"peak_loss": float(np.nanmax(losses[1:])), "final_loss": float(losses[-1]),
                                "val_accuracy": run["val_accuracy"], "diverged": run["diverged"]}

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(8.4, 3.5), layout="constrained",
                                  gridspec_kw={"width_ratios": [1, 1.6]})
    (lr_line,) = ax.plot([], [], color=COLORS[0], lw=2.0)
    (lr_ref,) = ax.plot([], [], color="0.55", lw=1.0, ls="--")
    ax.set_xlim(0, steps)
    ax.set_ylim(0, max(peak_lrs) * 1.08)
    ax.set_xlabel("step")
    ax.set_ylabel("learning rate")
    (loss_line,) = ax2.plot([], [], color=COLORS[1], lw=1.8, label="with this warmup")
    (loss_ref,) = ax2.plot([], [], color="0.55", lw=1.0, ls="--", label="no warmup, same peak")
    finite = np.concatenate([h[1][np.isfinite(h[1])] for h in histories.values()])
    ax2.set_yscale("log")
    ax2.set_ylim(max(finite.min(), 1e-4) * 0.7, finite.max() * 1.5)
    ax2.set_xlim(0, steps)
    ax2.set_xlabel("step (full batch)")
    ax2.set_ylabel("training loss")
    ax2.legend(fontsize=8, loc="upper right")
    heading = fig.suptitle("placeholder", fontsize=10)

    def update(warmup: int, peak_lr: float) -> None:
        lrs, losses = histories[warmup, peak_lr]
        ref_lrs, ref_losses = histories[warmups[0], peak_lr]
        lr_line.set_data(np.arange(len(lrs)), lrs)
        lr_ref.set_data(np.arange(len(ref_lrs)), ref_lrs)
        loss_line.set_data(np.arange(len(losses)), losses)  # one more: the loss after the last step
        loss_ref.set_data(np.arange(len(ref_losses)), ref_losses)
        r = results[warmup, peak_lr]
        heading.set_text(f"Adam, peak lr {peak_lr:g}, warmup {warmup} steps: largest loss "
                         f"{r['peak_loss']:.3g}, validation accuracy {r['val_accuracy']:.1%}")

    def alt(warmup: int, peak_lr: float) -> str:
        r = results[warmup, peak_lr]
        return (f"Learning rate and training loss of Adam on the digits MLP with peak lr {peak_lr:g} "
                f"and {warmup} warmup steps: the loss peaks at {r['peak_loss']:.3g} and ends at "
                f"{r['final_loss']:.3g}, validation accuracy {r['val_accuracy']:.1%}.")

    sf = SliderFigure(fig, update, {"warmup": list(warmups), "peak_lr": list(peak_lrs)}, alt=alt,
                      labels={"warmup": "warmup steps", "peak_lr": "peak lr"},
                      initial={"warmup": warmups[0], "peak_lr": peak_lrs[-1]},
                      animated=[lr_line, lr_ref, loss_line, loss_ref, heading])
    sf.results = results
    return sf


# --- A tiny transformer, in NumPy, to show why Post-LN needs warmup (Xiong et al., 2020) ------

def layer_norm(x, eps=1e-5):
    """Parameter-free layer normalisation over the last axis; returns (y, cache)."""
    mu = x.mean(axis=-1, keepdims=True)
    inv = 1 / np.sqrt(((x - mu) ** 2).mean(axis=-1, keepdims=True) + eps)
    y = (x - mu) * inv
    return y, (y, inv)


def layer_norm_backward(dy, cache):
    y, inv = cache
    return inv * (dy - dy.mean(axis=-1, keepdims=True) - y * (dy * y).mean(axis=-1, keepdims=True))


class TinyTransformer:
    r"""A ``layers``-block, single-head transformer encoder on sequences of ``n`` tokens.

    Post-LN blocks (the 2017 original): :math:`x \leftarrow \mathrm{LN}(x + \mathrm{Attn}(x))`,
    :math:`x \leftarrow \mathrm{LN}(x + \mathrm{MLP}(x))`. Pre-LN blocks:
    :math:`x \leftarrow x + \mathrm{Attn}(\mathrm{LN}(x))`, :math:`x \leftarrow x + \mathrm{MLP}(\mathrm{LN}(x))`,
    with a final LN before the read-out. Layer norms have no gain or bias; attention is
    :math:`\mathrm{softmax}(QK^\top/\sqrt d)V W_o`, the MLP ReLU with ``2d`` hidden units. The loss is
    the mean cross-entropy over every position. ``loss_and_grads`` backpropagates by hand.
    """

    def __init__(self, vocab=8, n=8, d=16, layers=4, pre_ln=False, seed=0):
        rng = np.random.default_rng(seed)
        self.vocab, self.n, self.d, self.layers, self.pre_ln = vocab, n, d, layers, pre_ln
        g = lambda *shape, scale: rng.standard_normal(shape) * scale  # noqa: E731
        self.params = [g(vocab, d, scale=1.0), g(n, d, scale=1.0)]            # token and position embeddings
        for _ in range(layers):
            self.params += [g(d, d, scale=d ** -0.5) for _ in range(4)]       # Wq, Wk, Wv, Wo
            self.params += [g(d, 2 * d, scale=d ** -0.5), g(2 * d, d, scale=(2 * d) ** -0.5)]
        self.params.append(g(d, vocab, scale=d ** -0.5))                       # read-out

    def block_params(self, layer):
        return self.params[2 + 6 * layer: 8 + 6 * layer]

    @staticmethod
    def _attention(x, wq, wk, wv, wo):
        d = x.shape[-1]
        q, k, v = x @ wq, x @ wk, x @ wv
        s = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        a = np.exp(s - s.max(axis=-1, keepdims=True))
        a /= a.sum(axis=-1, keepdims=True)
        o = a @ v
        return o @ wo, (x, q, k, v, a, o)

    @staticmethod
    def _attention_backward(dy, cache, wq, wk, wv, wo):
        x, q, k, v, a, o = cache
        d = x.shape[-1]
        dwo = np.einsum("bnd,bne->de", o, dy)
        do = dy @ wo.T
        da = do @ v.transpose(0, 2, 1)
        dv = a.transpose(0, 2, 1) @ do
        ds = a * (da - (da * a).sum(axis=-1, keepdims=True)) / math.sqrt(d)
        dq, dk = ds @ k, ds.transpose(0, 2, 1) @ q
        grads = [np.einsum("bnd,bne->de", x, dz) for dz in (dq, dk, dv)] + [dwo]
        return dq @ wq.T + dk @ wk.T + dv @ wv.T, grads

    @staticmethod
    def _mlp(x, w1, w2):
        h = np.maximum(x @ w1, 0.0)
        return h @ w2, (x, h)

    @staticmethod
    def _mlp_backward(dy, cache, w1, w2):
        x, h = cache
        dw2 = np.einsum("bnh,bnd->hd", h, dy)
        dh = (dy @ w2.T) * (h > 0)
        return dh @ w1.T, [np.einsum("bnd,bnh->dh", x, dh), dw2]

    def loss_and_grads(self, tokens, targets):
        """Mean cross-entropy of predicting ``targets`` (B, n) from ``tokens`` (B, n), and its
        gradient for every array of ``params`` (same order)."""
        emb, pos, w_out = self.params[0], self.params[1], self.params[-1]
        x = emb[tokens] + pos[None]
        caches = []
        for layer in range(self.layers):
            wq, wk, wv, wo, w1, w2 = self.block_params(layer)
            if self.pre_ln:
                ln1, c_ln1 = layer_norm(x)
                att, c_att = self._attention(ln1, wq, wk, wv, wo)
                x1 = x + att
                ln2, c_ln2 = layer_norm(x1)
                mlp, c_mlp = self._mlp(ln2, w1, w2)
                x = x1 + mlp
            else:
                att, c_att = self._attention(x, wq, wk, wv, wo)
                x1, c_ln1 = layer_norm(x + att)
                mlp, c_mlp = self._mlp(x1, w1, w2)
                x, c_ln2 = layer_norm(x1 + mlp)
            caches.append((c_ln1, c_att, c_ln2, c_mlp))
        if self.pre_ln:
            x, c_final = layer_norm(x)
        logits = x @ w_out
        logits -= logits.max(axis=-1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=-1, keepdims=True)
        count = tokens.size
        loss = -float(np.log(np.take_along_axis(p, targets[..., None], axis=-1)).sum()) / count
        dlogits = p.copy()
        np.put_along_axis(dlogits, targets[..., None], np.take_along_axis(p, targets[..., None], -1) - 1, -1)
        dlogits /= count
        grads = [None] * len(self.params)
        grads[-1] = np.einsum("bnd,bnv->dv", x, dlogits)
        dx = dlogits @ w_out.T
        if self.pre_ln:
            dx = layer_norm_backward(dx, c_final)
        for layer in range(self.layers - 1, -1, -1):
            wq, wk, wv, wo, w1, w2 = self.block_params(layer)
            c_ln1, c_att, c_ln2, c_mlp = caches[layer]
            if self.pre_ln:
                dln2, g_mlp = self._mlp_backward(dx, c_mlp, w1, w2)
                dx1 = dx + layer_norm_backward(dln2, c_ln2)
                dln1, g_att = self._attention_backward(dx1, c_att, wq, wk, wv, wo)
                dx = dx1 + layer_norm_backward(dln1, c_ln1)
            else:
                db = layer_norm_backward(dx, c_ln2)
                dx1_mlp, g_mlp = self._mlp_backward(db, c_mlp, w1, w2)
                dx1 = db + dx1_mlp
                da = layer_norm_backward(dx1, c_ln1)
                dx_att, g_att = self._attention_backward(da, c_att, wq, wk, wv, wo)
                dx = da + dx_att
            grads[2 + 6 * layer: 8 + 6 * layer] = g_att + g_mlp
        grads[0] = np.zeros_like(emb)
        np.add.at(grads[0], tokens, dx)
        grads[1] = dx.sum(axis=0)
        return loss, grads


def reversal_batch(rng, batch=32, n=8, vocab=8):
    """The task: read ``n`` random tokens and output them in reverse order (needs attention
    to the mirrored position)."""
    tokens = rng.integers(0, vocab, size=(batch, n))
    return tokens, tokens[:, ::-1].copy()


def train_tiny_transformer(pre_ln: bool, warmup: int, lr: float = 3e-3, steps: int = 400,
                           layers: int = 4, seed: int = 0, batch: int = 32):
    """Adam with a linear warmup over ``warmup`` steps (0: none) then a constant ``lr``; returns
    the training losses, one per step."""
    from optimkit import Adam

    model = TinyTransformer(layers=layers, pre_ln=pre_ln, seed=seed)
    opt = Adam(model.params, lr=lr)
    rng = np.random.default_rng(seed + 1000)
    losses = []
    for t in range(1, steps + 1):
        opt.lr = lr * min(1.0, t / warmup) if warmup else lr
        tokens, targets = reversal_batch(rng, batch=batch)
        loss, grads = model.loss_and_grads(tokens, targets)
        losses.append(loss)
        opt.step(grads)
    return np.array(losses)


def block_gradient_norms(pre_ln: bool, layers: int = 8, seed: int = 0, batch: int = 64,
                         inits: int = 8) -> np.ndarray:
    """At initialisation: the norm of the gradient of each block's weights (the six arrays
    together), block 1 next to the input, as a root mean square over ``inits`` initialisations
    (seeds ``seed`` to ``seed + inits - 1``): one draw is noisy, the effect is in expectation."""
    squares = np.zeros(layers)
    for s in range(seed, seed + inits):
        model = TinyTransformer(layers=layers, pre_ln=pre_ln, seed=s)
        tokens, targets = reversal_batch(np.random.default_rng(s + 1), batch=batch)
        _, grads = model.loss_and_grads(tokens, targets)
        squares += [sum(float(np.sum(g * g)) for g in grads[2 + 6 * i: 8 + 6 * i]) for i in range(layers)]
    return np.sqrt(squares / inits)


def attention_warmup_figure(curves: dict, chance: float) -> plt.Figure:
    """Training loss per step of the tiny transformer, one line per run in ``curves``."""
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    for (label, losses), color in zip(curves.items(), COLORS):
        ax.plot(np.arange(1, len(losses) + 1), losses, color=color, label=label, lw=1.4)
    ax.axhline(chance, color="0.5", ls=":", lw=1)
    ax.annotate("chance (ln 8)", (len(next(iter(curves.values()))), chance), ha="right", va="bottom",
                fontsize=8, color="0.4")
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("training loss (cross-entropy)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
