r"""A real (small) learning problem for the book: scikit-learn's bundled 8x8 digits and a NumPy MLP.

Everything is seeded, so the same call gives bit-identical numbers, and a 10-epoch minibatch run
takes a fraction of a second. The MLP minimises mean softmax cross-entropy

.. math:: L = -\frac1n \sum_i \log \operatorname{softmax}(z_i)_{y_i}
          \;\; \Bigl[+\, \tfrac{\lambda}{2} \sum_\ell \lVert W_\ell \rVert^2 \text{ with L2}\Bigr]

with hand-written backpropagation.

The data needs scikit-learn (it ships the digits file), the one optional extra of optimkit:
``pip install optimkit[digits]`` (``requirements.txt`` installs it). Only
:func:`load_digits_split` imports it, lazily; the model and the training loop are NumPy.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from . import validate
from .clipping import clip_grad_norm, global_norm

__all__ = ["DigitsData", "History", "MLP", "load_digits_split", "minibatches", "train"]

ACTIVATIONS = ("tanh", "relu")


@dataclass(frozen=True, eq=False)
class DigitsData:
    """Standardised features (float64, shape (n, 64)) and labels 0-9 (int64).

    ``mean``/``std`` are the training statistics used for both splits
    (``X * std + mean`` recovers the pixel values, e.g. for ``imshow``).
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    mean: np.ndarray
    std: np.ndarray


@functools.cache
def _raw_digits():
    # Parsing the bundled CSV takes ~20 ms; the book and tests call this often. Read-only, so the
    # cached arrays cannot be changed by callers (the split below indexes, which copies).
    from sklearn.datasets import load_digits  # lazy: only this needs scikit-learn

    digits = load_digits()
    X, y = digits.data.astype(np.float64), digits.target.astype(np.int64)
    X.flags.writeable = y.flags.writeable = False
    return X, y


def load_digits_split(val_fraction: float = 0.2, seed: int = 0) -> DigitsData:
    """Shuffle the 1797 digits with ``seed``, hold out ``val_fraction`` for validation, and
    standardise every pixel with the training split's mean and std (no validation leakage)."""
    val_fraction = validate.finite("val_fraction", val_fraction)
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    seed = validate.non_negative_int("seed", seed)
    X, y = _raw_digits()
    n = len(y)
    n_val = min(max(round(n * val_fraction), 1), n - 1)
    order = np.random.default_rng(seed).permutation(n)
    val, tr = order[:n_val], order[n_val:]
    mean = X[tr].mean(axis=0)
    std = X[tr].std(axis=0)
    std[std == 0] = 1.0  # border pixels are always 0 in training: leave them centred, not divided by 0
    return DigitsData(
        X_train=(X[tr] - mean) / std, y_train=y[tr],
        X_val=(X[val] - mean) / std, y_val=y[val],
        mean=mean, std=std,
    )


def _log_softmax(z: np.ndarray) -> np.ndarray:
    # Subtracting the row max keeps exp() from overflowing; the result is unchanged.
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


class MLP:
    r"""Fully connected network ``layer_sizes[0] -> ... -> layer_sizes[-1]`` with ``activation``
    ('tanh' or 'relu') between layers and softmax cross-entropy on the output.

    ``params`` is ``[W1, b1, W2, b2, ...]`` (``W`` of shape (fan_in, fan_out)); optimizers update
    these arrays in place. Hidden weights use Xavier init :math:`\mathcal N(0, 2/(\text{in}+\text{out}))`
    for tanh and He init :math:`\mathcal N(0, 2/\text{in})` for relu; the output layer uses Xavier;
    biases start at 0.
    """

    def __init__(self, layer_sizes=(64, 32, 10), seed: int = 0, activation: str = "tanh"):
        sizes = tuple(layer_sizes)
        if len(sizes) < 2:
            raise ValueError(f"layer_sizes needs at least an input and an output size, got {layer_sizes!r}")
        for i, s in enumerate(sizes):
            validate.positive_int(f"layer_sizes[{i}]", s)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        seed = validate.non_negative_int("seed", seed)
        self.layer_sizes = tuple(int(s) for s in sizes)
        self.activation = activation
        rng = np.random.default_rng(seed)
        self.params = []
        for k, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            output_layer = k == len(sizes) - 2
            var = 2.0 / fan_in if activation == "relu" and not output_layer else 2.0 / (fan_in + fan_out)
            self.params += [rng.normal(0.0, np.sqrt(var), (fan_in, fan_out)), np.zeros(fan_out)]

    # -- checks ------------------------------------------------------------------------------------
    def _check_X(self, X) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.layer_sizes[0]:
            raise ValueError(f"X must have shape (n, {self.layer_sizes[0]}), got shape {X.shape}")
        return X

    def _check_y(self, y, n: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must be {n} integer labels (shape ({n},)), got dtype {y.dtype}, shape {y.shape}")
        k = self.layer_sizes[-1]
        if n and (y.min() < 0 or y.max() >= k):
            raise ValueError(f"y labels must be in [0, {k - 1}], got values from {y.min()} to {y.max()}")
        return y

    def _check_params(self, params) -> list:
        if params is None:
            return self.params
        params = list(params)
        shapes = [p.shape for p in self.params]
        if [np.shape(p) for p in params] != shapes:
            raise ValueError(f"params must have shapes {shapes}, got {[np.shape(p) for p in params]}")
        return params

    # -- forward / backward ------------------------------------------------------------------------
    def _forward(self, X, params):
        """Logits and the post-activation output of every layer (inputs to the next one)."""
        acts = [X]
        n_layers = len(params) // 2
        for k in range(n_layers):
            z = acts[-1] @ params[2 * k] + params[2 * k + 1]
            if k == n_layers - 1:
                return z, acts
            acts.append(np.tanh(z) if self.activation == "tanh" else np.maximum(z, 0.0))

    def loss_and_grads(self, X, y, params=None, l2: float = 0.0):
        r"""Mean cross-entropy (plus :math:`\tfrac{l2}{2}\sum\lVert W\rVert^2`, weights only) and its
        gradient w.r.t. every parameter, in ``params`` order."""
        params = self._check_params(params)
        X = self._check_X(X)
        y = self._check_y(y, len(X))
        l2 = validate.non_negative("l2", l2)
        n = len(X)
        logits, acts = self._forward(X, params)
        logp = _log_softmax(logits)
        loss = -logp[np.arange(n), y].mean()

        delta = np.exp(logp)  # dL/dlogits = (softmax - onehot) / n
        delta[np.arange(n), y] -= 1.0
        delta /= n
        grads = [None] * len(params)
        for k in range(len(params) // 2 - 1, -1, -1):
            grads[2 * k] = acts[k].T @ delta
            grads[2 * k + 1] = delta.sum(axis=0)
            if k:  # back through the activation that produced acts[k]
                delta = delta @ params[2 * k].T
                delta *= 1.0 - acts[k] ** 2 if self.activation == "tanh" else acts[k] > 0
        if l2:
            for k in range(0, len(params), 2):
                loss += 0.5 * l2 * np.sum(params[k] ** 2)
                grads[k] += l2 * params[k]
        return float(loss), grads

    def loss(self, X, y, params=None) -> float:
        """Mean cross-entropy (no regularisation)."""
        params = self._check_params(params)
        X = self._check_X(X)
        y = self._check_y(y, len(X))
        logp = _log_softmax(self._forward(X, params)[0])
        return float(-logp[np.arange(len(X)), y].mean())

    def predict(self, X) -> np.ndarray:
        """Most likely class for every row of ``X``."""
        return self._forward(self._check_X(X), self.params)[0].argmax(axis=1)

    def accuracy(self, X, y) -> float:
        X = self._check_X(X)
        return float(np.mean(self.predict(X) == self._check_y(y, len(X))))

    def weight_norm(self) -> float:
        """Euclidean norm of all weight matrices together (biases excluded, as for weight decay)."""
        return global_norm(self.params[::2])


def minibatches(n: int, batch_size: int, rng: np.random.Generator):
    """Yield index arrays covering ``rng.permutation(n)`` in order; the last batch may be smaller."""
    n = validate.positive_int("n", n)
    batch_size = validate.positive_int("batch_size", batch_size)
    order = rng.permutation(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


@dataclass
class History:
    """Per optimizer step: ``train_loss`` (minibatch objective, including any L2 term), ``lr`` used,
    ``grad_evals`` (cumulative training samples seen). Per epoch, measured after it:
    ``val_accuracy``, ``val_loss`` (plain cross-entropy), ``train_accuracy``, ``weight_norm``
    (weights only). ``diverged`` is set when the loss went non-finite; training stopped there."""

    train_loss: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    grad_evals: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    weight_norm: list = field(default_factory=list)
    diverged: bool = False


def train(model: MLP, data: DigitsData, make_optimizer, epochs: int = 10, batch_size: int | None = 64,
          seed: int = 0, schedule=None, clip_norm: float | None = None,
          weight_decay_l2: float = 0.0) -> History:
    """Train ``model`` in place with ``make_optimizer(model.params)``.

    ``batch_size=None`` is full-batch gradient descent. ``schedule(step)`` sets ``opt.lr`` before
    each step. ``clip_norm`` clips the global gradient norm (``optimkit.clipping.clip_grad_norm``).
    ``weight_decay_l2`` is *coupled* L2: it is added to the loss and hence to the gradient the
    optimizer sees, unlike decoupled decay (AdamW).
    """
    epochs = validate.positive_int("epochs", epochs)
    if batch_size is not None:
        batch_size = validate.positive_int("batch_size", batch_size)
    seed = validate.non_negative_int("seed", seed)
    if clip_norm is not None:
        clip_norm = validate.positive("clip_norm", clip_norm)
    weight_decay_l2 = validate.non_negative("weight_decay_l2", weight_decay_l2)

    X, y = data.X_train, data.y_train
    n = len(y)
    opt = make_optimizer(model.params)
    rng = np.random.default_rng(seed)
    hist = History()
    step, seen = 0, 0
    for _ in range(epochs):
        batches = [np.arange(n)] if batch_size is None else minibatches(n, batch_size, rng)
        for idx in batches:
            if schedule is not None:
                opt.lr = validate.non_negative(f"schedule({step})", schedule(step))
            with np.errstate(over="ignore", invalid="ignore"):  # a diverging run is a result, not an error
                loss, grads = model.loss_and_grads(X[idx], y[idx], l2=weight_decay_l2)
            seen += len(idx)
            hist.train_loss.append(loss)
            hist.lr.append(float(opt.lr))
            hist.grad_evals.append(seen)
            if not np.isfinite(loss):
                hist.diverged = True
                return hist
            if clip_norm is not None:
                clip_grad_norm(grads, clip_norm)  # in place, as torch's clip_grad_norm_
            opt.step(grads)
            step += 1
        hist.val_accuracy.append(model.accuracy(data.X_val, data.y_val))
        hist.val_loss.append(model.loss(data.X_val, data.y_val))
        hist.train_accuracy.append(model.accuracy(X, y))
        hist.weight_norm.append(model.weight_norm())
    return hist
