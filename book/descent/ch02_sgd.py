r"""Chapter 2 (book/02-sgd.md): gradient descent and SGD.

* :func:`critical_lr`, :func:`gd_error_factors` -- the :math:`2/\lambda_{\max}` knife edge of
  gradient descent on a quadratic, and the per-direction factors :math:`1 - \eta\lambda`.
* :func:`lr_knife_edge_figure` -- gradient descent on a 2-D landscape with a learning-rate slider
  across the threshold, next to the error along each Hessian eigenvector and its prediction.
* :func:`batch_size_curves`, :func:`batch_size_figure` -- full-batch, minibatch and single-sample
  SGD on the digits MLP, the full training loss against steps and against samples seen.
* :func:`per_sample_gradients`, :func:`minibatch_noise`, :func:`minibatch_noise_closed_form`,
  :func:`noise_figure`, :func:`minibatch_cloud_figure` -- how noisy a minibatch gradient is,
  measured and in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np

from optimkit import SGD
from optimkit.digits import DigitsData, MLP, train
from optimkit.landscapes import Landscape, run
from optimkit.optim import Wrapper

from .drawing import COLORS, draw_contours
from .sliders import SliderFigure


_TINY = 1e-17  # floor for errors drawn on a log axis (an exact 0 has no logarithm)


def path_on_contours(ax, landscape: Landscape, color: str, *, dot_size: float):
    """Contours, the start and an empty path with its head and title, for a slider to fill in.

    Returns the artists a slider changes: ``(path, head, title)``.
    """
    draw_contours(ax, landscape, resolution=120, levels=16)
    ax.plot(*landscape.start, marker="o", markersize=7, color="white", markeredgecolor="black",
            linestyle="none", zorder=6)
    (path,) = ax.plot([], [], color=color, linewidth=1.3, marker="o", markersize=dot_size, zorder=4)
    (head,) = ax.plot([], [], marker="o", markersize=7, color=color, markeredgecolor="black",
                      linestyle="none", zorder=7)
    return path, head, ax.set_title(" ", fontsize=10)


def _minimum_and_curvatures(landscape: Landscape):
    if not landscape.minima:
        raise ValueError(f"{landscape.name} has no minimum to measure the curvature at")
    minimum = np.array(landscape.minima[0], dtype=np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(landscape.hessian(minimum))
    return minimum, eigenvalues, eigenvectors


def critical_lr(landscape: Landscape) -> float:
    r"""The learning rate :math:`2/\lambda_{\max}` past which gradient descent diverges on a
    quadratic (``λ_max``: the largest Hessian eigenvalue at the landscape's first minimum)."""
    _, eigenvalues, _ = _minimum_and_curvatures(landscape)
    if eigenvalues[-1] <= 0:
        raise ValueError(f"{landscape.name} has no positive curvature at its minimum")
    return 2.0 / float(eigenvalues[-1])


def gd_error_factors(landscape: Landscape, lr: float) -> np.ndarray:
    r"""Per Hessian eigenvector (ascending eigenvalue), the factor :math:`1 - \eta\lambda` that one
    gradient-descent step multiplies the error by on a quadratic."""
    _, eigenvalues, _ = _minimum_and_curvatures(landscape)
    return 1.0 - lr * eigenvalues


def lr_knife_edge_figure(landscape: Landscape, lrs: Sequence[float], *, steps: int = 30,
                         initial_lr: float | None = None) -> SliderFigure:
    r"""Gradient descent (``optimkit.SGD``) on a 2-D quadratic with a learning-rate slider.

    Left: the path on the contours. Right: the error along each Hessian eigenvector,
    :math:`|u_i^\top(\theta_k - \theta^*)|`, measured (dots) and predicted
    :math:`|1-\eta\lambda_i|^k\,|u_i^\top(\theta_0-\theta^*)|` (dashed), log scale.
    """
    lrs = [float(v) for v in lrs]
    minimum, eigenvalues, eigenvectors = _minimum_and_curvatures(landscape)
    runs = {lr: run(landscape, lambda p, lr=lr: SGD(p, lr=lr), steps=steps) for lr in lrs}
    start = np.asarray(landscape.start, dtype=np.float64)
    e0 = np.abs(eigenvectors.T @ (start - minimum))
    k = np.arange(steps + 1)
    lam_names = [f"λ = {lam:.3g}" for lam in eigenvalues]

    fig, (ax, ax_err) = plt.subplots(1, 2, figsize=(8.6, 3.4), layout="constrained",
                                     gridspec_kw={"width_ratios": [1.45, 1]})
    path, head, heading = path_on_contours(ax, landscape, COLORS[1], dot_size=2.5)

    measured, predicted = [], []
    for i, (name, color) in enumerate(zip(lam_names, (COLORS[0], COLORS[1]))):
        (m,) = ax_err.semilogy([], [], marker="o", markersize=3, linestyle="none", color=color,
                               label=f"measured, {name}")
        (p,) = ax_err.semilogy([], [], linestyle="--", linewidth=1.1, color=color,
                               label=f"$|1-\\eta\\lambda|^k$, {name}")
        measured.append(m)
        predicted.append(p)
    ax_err.set_xlim(0, steps)
    ax_err.set_ylim(1e-5, 1e5)
    ax_err.axhline(e0.max(), color="0.6", linewidth=0.6)
    ax_err.set_xlabel("step k")
    ax_err.set_ylabel("error along eigenvector")
    ax_err.legend(loc="lower left", fontsize=7, framealpha=0.9)

    def update(lr: float) -> None:
        traj = runs[lr]
        path.set_data(traj.points[:, 0], traj.points[:, 1])
        head.set_data([traj.points[-1, 0]], [traj.points[-1, 1]])
        err = np.abs((traj.points - minimum) @ eigenvectors)
        kk = np.arange(len(traj.points))
        for i in range(len(eigenvalues)):
            measured[i].set_data(kk, np.maximum(err[:, i], _TINY))
            predicted[i].set_data(k, np.maximum(np.abs(1 - lr * eigenvalues[i]) ** k * e0[i], _TINY))
        factors = ", ".join(f"{1 - lr * lam:+.3g}" for lam in eigenvalues)
        heading.set_text(f"η = {lr:.4g}   factors 1−ηλ: {factors}")

    def alt(lr: float) -> str:
        factors = 1 - lr * eigenvalues
        worst = np.max(np.abs(factors))
        verdict = ("diverges" if worst > 1 else "neither converges nor diverges" if worst == 1
                   else "converges")
        return (f"Gradient descent on {landscape.name} with learning rate {lr:.4g}: one step "
                f"multiplies the error along the two Hessian eigenvectors by "
                f"{factors[0]:.3g} and {factors[1]:.3g}, so the run {verdict}; the measured errors "
                f"lie on the predicted lines.")

    return SliderFigure(fig, update, {"lr": lrs}, alt=alt, labels={"lr": "learning rate η"},
                        initial={"lr": initial_lr if initial_lr is not None else lrs[0]},
                        animated=[path, head, heading, *measured, *predicted])


class LossRecorder(Wrapper):
    """Wraps an optimizer; after the steps listed in ``at`` it records the model's loss on the
    whole training set. ``train()`` drives it like the optimizer itself (``step``, ``lr``)."""

    def __init__(self, optimizer, model: MLP, data: DigitsData, at: Sequence[int]):
        super().__init__(optimizer)
        self.model, self.data = model, data
        self.at = set(int(a) for a in at)
        self.steps = 0
        self.recorded_steps: list[int] = []
        self.recorded_losses: list[float] = []


    def step(self, grads) -> None:
        self.optimizer.step(grads)
        self.steps += 1
        if self.steps in self.at:
            self.recorded_steps.append(self.steps)
            self.recorded_losses.append(self.model.loss(self.data.X_train, self.data.y_train))


@dataclass
class Curve:
    """Full training loss after ``steps[i]`` optimizer steps, i.e. ``samples[i]`` gradient evaluations."""

    label: str
    batch_size: int
    steps: np.ndarray
    samples: np.ndarray
    loss: np.ndarray
    seconds: float


def batch_size_curves(data: DigitsData, runs: dict[str, tuple], *, lr: float, seed: int = 0,
                      points: int = 40, also_at: Sequence[int] = ()) -> dict[str, Curve]:
    """Train a fresh ``MLP(seed=seed)`` per entry of ``runs`` (``{label: (batch_size, steps)}``,
    ``batch_size=None`` for full batch) with ``optimkit.SGD(lr=lr)`` through
    :func:`optimkit.digits.train`, recording the full training loss at ``points`` log-spaced steps
    (step 0 included) and at the steps in ``also_at``."""
    import time

    n = len(data.y_train)
    curves = {}
    for label, (batch_size, steps) in runs.items():
        b = n if batch_size is None else min(int(batch_size), n)
        per_epoch = -(-n // b)
        at = np.unique(np.concatenate([np.geomspace(1, steps, points).round().astype(int),
                                       [a for a in also_at if 1 <= a <= steps]]))
        model = MLP(seed=seed)
        loss0 = model.loss(data.X_train, data.y_train)
        box = {}

        def make(params, at=at, model=model, box=box):
            box["rec"] = LossRecorder(SGD(params, lr=lr), model, data, at)
            return box["rec"]

        tic = time.perf_counter()
        history = train(model, data, make, epochs=-(-steps // per_epoch), batch_size=batch_size,
                        seed=seed)
        rec = box["rec"]
        s = np.array([0] + [t for t in rec.recorded_steps if t <= steps])
        curves[label] = Curve(
            label=label, batch_size=b, steps=s,
            samples=np.array([0] + [history.grad_evals[t - 1] for t in s[1:]]),
            loss=np.array([loss0] + rec.recorded_losses[: len(s) - 1]),
            seconds=time.perf_counter() - tic,
        )
    return curves


def batch_size_figure(curves: dict[str, Curve]):
    """Two panels: full training loss against optimizer steps and against samples seen (log x)."""
    fig, (ax_steps, ax_samples) = plt.subplots(1, 2, figsize=(8.6, 3.4), layout="constrained",
                                               sharey=True)
    for color, curve in zip(COLORS, curves.values()):
        ax_steps.semilogx(np.maximum(curve.steps, 0.7), curve.loss, color=color, marker="o",
                          markersize=2.5, label=curve.label)
        ax_samples.semilogx(np.maximum(curve.samples, 0.7), curve.loss, color=color, marker="o",
                            markersize=2.5, label=curve.label)
    ax_steps.set_xlabel("optimizer steps")
    ax_samples.set_xlabel("gradient evaluations (training samples seen)")
    ax_steps.set_ylabel("loss on the whole training set")
    ax_steps.set_title("against optimizer steps", fontsize=10)
    ax_samples.set_title("against gradient evaluations (compute)", fontsize=10)
    ax_steps.legend(fontsize=8)
    for ax in (ax_steps, ax_samples):
        ax.grid(True, which="major", alpha=0.3)
    return fig


def flat_grads(grads) -> np.ndarray:
    """Concatenate a list of gradient arrays into one vector."""
    return np.concatenate([np.ravel(g) for g in grads])


def per_sample_gradients(model: MLP, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One row per sample: the flattened gradient of that sample's loss, shape (n, parameters)."""
    return np.stack([flat_grads(model.loss_and_grads(X[i:i + 1], y[i:i + 1])[1]) for i in range(len(y))])


def minibatch_noise_samples(model: MLP, X: np.ndarray, y: np.ndarray, batch_sizes: Sequence[int], *,
                            draws: int = 200, seed: int = 0) -> dict[int, np.ndarray]:
    r"""For every batch size, ``draws`` values of :math:`\lVert g_B - g\rVert^2`: the squared
    distance between the gradient of a random minibatch (sampled without replacement, as an
    epoch's shuffle does) and the full-batch gradient :math:`g`."""
    full = flat_grads(model.loss_and_grads(X, y)[1])
    rng = np.random.default_rng(seed)
    out = {}
    for b in batch_sizes:
        values = np.empty(draws)
        for j in range(draws):
            idx = rng.choice(len(y), size=int(b), replace=False)
            d = flat_grads(model.loss_and_grads(X[idx], y[idx])[1]) - full
            values[j] = d @ d
        out[int(b)] = values
    return out


def minibatch_noise(model: MLP, X: np.ndarray, y: np.ndarray, batch_sizes: Sequence[int], *,
                    draws: int = 200, seed: int = 0) -> dict[int, float]:
    r"""Measured :math:`\mathbb E\,\lVert g_B - g\rVert^2`, the mean of
    :func:`minibatch_noise_samples`, for every batch size."""
    samples = minibatch_noise_samples(model, X, y, batch_sizes, draws=draws, seed=seed)
    return {b: float(v.mean()) for b, v in samples.items()}


def minibatch_noise_closed_form(G: np.ndarray, batch_size: int) -> float:
    r"""Exact :math:`\mathbb E\,\lVert g_B - g\rVert^2` for a batch of size :math:`B` drawn without
    replacement from the :math:`n` rows of ``G`` (per-sample gradients, :math:`g` their mean):

    .. math:: \frac{\sigma^2}{B}\,\frac{n - B}{n - 1}, \qquad
              \sigma^2 = \frac1n \sum_i \lVert g_i - g\rVert^2 .
    """
    n = len(G)
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be in [1, {n}], got {batch_size!r}")
    return _finite_population_noise(_spread(G), n, batch_size)


def _spread(G: np.ndarray) -> float:
    return float(np.mean(np.sum((G - G.mean(axis=0)) ** 2, axis=1)))


def _finite_population_noise(sigma2, n, batch_size):
    return sigma2 / batch_size * (n - batch_size) / (n - 1)


def noise_scale(G: np.ndarray) -> float:
    r"""The batch size at which the minibatch noise equals the signal,
    :math:`\sigma^2 / \lVert g\rVert^2` (the "simple noise scale" of McCandlish et al., 2018)."""
    g = G.mean(axis=0)
    return _spread(G) / float(g @ g)


def noise_figure(measured: dict[int, float], G: np.ndarray):
    """Log-log plot: measured minibatch gradient noise against batch size, the closed form, and
    the squared length of the full gradient for scale."""
    n = len(G)
    sizes = np.array(sorted(measured))
    grid = np.unique(np.geomspace(1, n, 200).round().astype(int))
    g = G.mean(axis=0)
    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    sigma2 = _spread(G)
    ax.loglog(grid[grid < n], _finite_population_noise(sigma2, n, grid[grid < n]),
              color=COLORS[0], label=r"closed form $\frac{\sigma^2}{B}\frac{n-B}{n-1}$")
    ax.loglog(sizes, [measured[b] for b in sizes], marker="o", linestyle="none", color=COLORS[1],
              label="measured (random minibatches)")
    ax.axhline(float(g @ g), color=COLORS[2], linestyle="--", linewidth=1.2,
               label=r"signal $\| g\|^2$")
    ax.axvline(noise_scale(G), color="0.5", linestyle=":", linewidth=1.0,
               label=r"noise scale $\sigma^2/\| g\|^2$")
    ax.set_xlabel("batch size B")
    ax.set_ylabel(r"$\mathbb{E}\,\| g_B - g\|^2$")
    ax.legend(fontsize=8)
    ax.grid(True, which="major", alpha=0.3)
    return fig


def minibatch_cloud_figure(model: MLP, X: np.ndarray, y: np.ndarray, batch_sizes: Sequence[int],
                           *, draws: int = 150, seed: int = 0,
                           G: np.ndarray | None = None) -> SliderFigure:
    r"""Minibatch gradients as a cloud of points around the full gradient, with a batch-size slider.

    Each gradient is projected onto two orthonormal directions: :math:`u_1 = g/\lVert g\rVert`
    and :math:`u_2`, the direction (orthogonal to :math:`u_1`) in which the per-sample gradients
    vary most. The title gives the mean cosine between :math:`g_B` and :math:`g` (computed in all
    dimensions, not just the two drawn) and counts the minibatch gradients that point downhill
    (:math:`g_B^\top g > 0`). ``G``: the per-sample gradients, if already computed.
    """
    batch_sizes = [int(b) for b in batch_sizes]
    G = per_sample_gradients(model, X, y) if G is None else G
    g = G.mean(axis=0)
    g_norm = float(np.linalg.norm(g))
    u1 = g / g_norm
    centred = G - g
    centred -= np.outer(centred @ u1, u1)
    # Leading right singular vector of the centred, u1-free per-sample gradients, by power
    # iteration (a full SVD of this 1438 x 2410 matrix takes seconds; this takes milliseconds).
    u2 = np.random.default_rng(seed).normal(size=G.shape[1])
    for _ in range(60):
        u2 = centred.T @ (centred @ u2)
        u2 /= np.linalg.norm(u2)
    rng = np.random.default_rng(seed)
    clouds, downhill, cosine = {}, {}, {}
    for b in batch_sizes:
        pts, cos = [], []
        for _ in range(draws):
            idx = rng.choice(len(y), size=b, replace=False)
            gb = flat_grads(model.loss_and_grads(X[idx], y[idx])[1])
            pts.append((gb @ u1, gb @ u2))
            cos.append(float(gb @ g) / (float(np.linalg.norm(gb)) * g_norm))
        clouds[b], cosine[b] = np.array(pts), float(np.mean(cos))
        downhill[b] = int(np.sum(np.array(cos) > 0))
    reach = float(np.percentile(np.abs(clouds[batch_sizes[0]]), 98)) * 1.15

    fig, ax = plt.subplots(figsize=(6.4, 5.0), layout="constrained")
    ax.axhline(0, color="0.8", linewidth=0.8)
    ax.axvline(0, color="0.8", linewidth=0.8)
    ax.annotate("", xy=(g_norm, 0.0), xytext=(0.0, 0.0),
                arrowprops={"arrowstyle": "->", "color": "black", "linewidth": 1.8}, zorder=6)
    ax.plot(g_norm, 0.0, marker="*", markersize=13, color="gold",
            markeredgecolor="black", linestyle="none", zorder=7, label="full-batch gradient g")
    cloud = ax.scatter([], [], s=10, color=COLORS[0], alpha=0.6, zorder=4,
                       label="minibatch gradients $g_B$")
    ax.set_xlim(-reach, reach)
    ax.set_ylim(-reach, reach)
    ax.set_aspect("equal")
    ax.set_xlabel(r"component along $g$")
    ax.set_ylabel("component along the noisiest other direction")
    ax.legend(loc="upper left", fontsize=8, framealpha=0.9)
    heading = ax.set_title(" ", fontsize=10)

    def update(batch_size: int) -> None:
        cloud.set_offsets(clouds[batch_size])
        heading.set_text(f"B = {batch_size}: mean cosine with g {cosine[batch_size]:.2f}, "
                         f"{downhill[batch_size]} of {draws} point downhill")

    def alt(batch_size: int) -> str:
        spread = float(np.sqrt(np.mean(np.sum((clouds[batch_size] - [g_norm, 0]) ** 2, axis=1))))
        return (f"Scatter of {draws} minibatch gradients of batch size {batch_size}, projected on "
                f"the full gradient's direction and the noisiest other direction: they scatter "
                f"{spread:.2g} (root mean square, in the plane) around the full gradient of length "
                f"{g_norm:.2g}; their mean cosine with it is {cosine[batch_size]:.2f} and "
                f"{downhill[batch_size]} of {draws} point downhill.")

    sf = SliderFigure(fig, update, {"batch_size": batch_sizes}, alt=alt,
                      labels={"batch_size": "batch size B"}, animated=[cloud, heading])
    sf.cosine, sf.downhill = cosine, downhill  # the numbers in the titles, for the text
    return sf
