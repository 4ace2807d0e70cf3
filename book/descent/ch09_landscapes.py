"""Chapter 9 (book/09-landscapes.md): what loss landscapes look like, and how the optimizer moves.

Measurements on the digits MLP (1-D interpolation, 2-D slices along filter-normalised random
directions, flatness under random perturbations), saddle-escape statistics, gradient descent on
the 1-D sharp/flat function, and the chapter's figures (two of them slider figures).
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap, LogNorm

from optimkit import validate
from optimkit.landscapes import Landscape1D, run, saddle
from optimkit.optim import SGD

from .drawing import COLORS, draw_contours
from .sliders import SliderFigure


def interpolate(a, b, alpha: float) -> list[np.ndarray]:
    r"""The point :math:`(1-\alpha)\,a + \alpha\, b` between two lists of arrays."""
    return [(1.0 - alpha) * x + alpha * y for x, y in zip(a, b)]


def interpolation_losses(model, X, y, start, end, alphas) -> np.ndarray:
    r""":math:`L\bigl((1-\alpha)\theta_{\text{start}} + \alpha\,\theta_{\text{end}}\bigr)` for every
    :math:`\alpha` in ``alphas`` (mean cross-entropy of ``model`` on ``X, y``)."""
    return np.array([model.loss(X, y, interpolate(start, end, a)) for a in alphas])


def filter_normalized_direction(params, rng: np.random.Generator) -> list[np.ndarray]:
    r"""A random direction scaled filter by filter to the size of ``params`` (Li et al., 2018).

    For every weight matrix ``W`` (shape (fan_in, fan_out)) each column -- the weights into one
    unit, a "filter" -- gets a Gaussian direction rescaled so that
    :math:`\lVert d_{:,j}\rVert = \lVert W_{:,j}\rVert`. Bias vectors get no direction (zeros),
    as in the paper. Without this scaling a step of a given size means very different things
    for layers of different scale, and slices of different networks could not be compared.
    """
    direction = []
    for p in params:
        d = rng.standard_normal(p.shape)
        if p.ndim == 2:
            d *= np.linalg.norm(p, axis=0, keepdims=True) / np.linalg.norm(d, axis=0, keepdims=True)
        else:
            d[...] = 0.0
        direction.append(d)
    return direction


def loss_surface(model, X, y, center, d1, d2, alphas, betas) -> np.ndarray:
    r"""``Z[i, j]`` :math:`= L(\theta^* + \alpha_j d_1 + \beta_i d_2)`: a 2-D slice of the loss."""
    Z = np.empty((len(betas), len(alphas)))
    for i, b in enumerate(betas):
        for j, a in enumerate(alphas):
            Z[i, j] = model.loss(X, y, [c + a * u + b * v for c, u, v in zip(center, d1, d2)])
    return Z


def perturbation_rise(model, X, y, scale: float = 0.5, directions: int = 8, seed: int = 0) -> float:
    r"""Flatness probe: the mean rise :math:`L(\theta + s\,d) - L(\theta)` over ``directions``
    filter-normalised random directions :math:`d` at relative size :math:`s` = ``scale``.
    Small for a flat minimum, large for a sharp one."""
    rng = np.random.default_rng(seed)
    base = model.loss(X, y)
    rises = [model.loss(X, y, [p + scale * d for p, d in
                               zip(model.params, filter_normalized_direction(model.params, rng))]) - base
             for _ in range(directions)]
    return float(np.mean(rises))


def escape_step(trajectory, radius: float = 1.0) -> int | None:
    """First step k at which ``|y_k| > radius``, or None if the run never leaves."""
    hits = np.flatnonzero(np.abs(trajectory.points[:, 1]) > radius)
    return int(hits[0]) if hits.size else None


def escape_steps(lr: float, sigma: float, runs: int = 32, seed: int = 0, radius: float = 1.0,
                 max_steps: int = 2000, start=(1.5, 0.0)) -> np.ndarray:
    r"""Escape steps of ``runs`` independent noisy gradient-descent runs on :math:`x^2 - y^2`.

    Exactly the process of :func:`optimkit.landscapes.run` with ``SGD(lr)`` and
    ``grad_noise=sigma``, for many runs at once: every step draws
    :math:`\xi \sim \mathcal N(0, \sigma^2 I)` and sets
    :math:`\theta \leftarrow \theta - \eta(\nabla f(\theta) + \xi)`. With ``runs=1`` the noise
    stream is the one ``run(..., seed=seed)`` draws. Runs that never leave get ``-1``.
    """
    lr = validate.positive("lr", lr)
    sigma = validate.non_negative("sigma", sigma)
    rng = np.random.default_rng(seed)
    theta = np.tile(np.asarray(start, dtype=np.float64), (runs, 1))
    escaped = np.full(runs, -1)
    if np.any(np.abs(theta[:, 1]) > radius):
        escaped[:] = 0
        return escaped
    for k in range(1, max_steps + 1):
        grad = np.stack([2.0 * theta[:, 0], -2.0 * theta[:, 1]], axis=1)
        if sigma:
            grad = grad + rng.normal(0.0, sigma, size=(runs, 2)).reshape(runs, 2)
        theta = theta - lr * grad
        newly = (escaped < 0) & (np.abs(theta[:, 1]) > radius)
        escaped[newly] = k
        theta[escaped >= 0] = 0.0  # park finished runs (no overflow); they no longer matter
        if np.all(escaped >= 0):
            break
    return escaped


def predicted_escape_step(lr: float, sigma: float, radius: float = 1.0, quantile_z: float = 0.6745) -> float:
    r"""Linearised escape time along the unstable direction of :math:`x^2 - y^2`.

    Along y, noisy GD is :math:`y_{k+1} = r\,y_k - \eta\,\xi_k` with :math:`r = 1 + 2\eta`, so
    from :math:`y_0 = 0`

    .. math:: y_k = -\eta \sum_{j<k} r^{k-1-j}\,\xi_j \approx r^k\, Z\,
              \frac{\eta\sigma}{\sqrt{r^2 - 1}}, \qquad Z \sim \mathcal N(0, 1),

    (the early noise, amplified the longest, dominates). :math:`|y_k|` reaches ``radius`` at

    .. math:: k^* = \log\!\Bigl(\frac{\text{radius}\,\sqrt{r^2-1}}{\eta\,\sigma\,|Z|}\Bigr) \Big/ \log r,

    and with :math:`|Z|` at its median 0.6745 this is the median escape step. Each factor of
    10 less noise adds :math:`\log 10 / \log r` steps: escape time grows like
    :math:`\log(1/\sigma)`, never to infinity -- except at :math:`\sigma = 0` exactly.
    """
    r = 1.0 + 2.0 * lr
    if sigma == 0:
        return math.inf
    return math.log(radius * math.sqrt(r * r - 1.0) / (lr * sigma * quantile_z)) / math.log(r)


OUTCOMES = ("settled in the sharp minimum", "bouncing in the sharp well",
            "settled in the flat minimum", "bouncing in the flat well", "elsewhere (diverged or still sliding)")


def gd_1d_grid(landscape: Landscape1D, lrs, starts, steps: int = 2000, tail: int = 100):
    r"""Plain gradient descent :math:`x \leftarrow x - \eta f'(x)` on a 1-D landscape for every
    (lr, start) pair at once. Returns ``(final, spread, mean, turns)``, arrays of shape
    (len(lrs), len(starts)): the last iterate; the range and the mean of the last ``tail``
    iterates; and the fraction of those steps that reversed the previous one (a run that
    bounces turns at almost every step, a run still sliding downhill never does)."""
    eta = np.asarray(lrs, dtype=np.float64)[:, None]
    x = np.broadcast_to(np.asarray(starts, dtype=np.float64)[None, :], (eta.shape[0], len(starts))).copy()
    lo = np.full_like(x, np.inf)
    hi = np.full_like(x, -np.inf)
    total = np.zeros_like(x)
    turns = np.zeros(x.shape, dtype=int)
    previous = np.zeros_like(x)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            step = -eta * landscape.grad(x)
            x = x + step
            if k >= steps - tail:
                lo, hi, total = np.minimum(lo, x), np.maximum(hi, x), total + x
                turns += (np.sign(step) * np.sign(previous)) < 0
            previous = step
    return x, hi - lo, total / tail, turns / tail


def classify_1d(landscape: Landscape1D, final, spread, mean, turns, settle_tol: float = 1e-6) -> np.ndarray:
    """Index into :data:`OUTCOMES` for each run of :func:`gd_1d_grid` on ``sharp_flat_1d``.

    "Settled": the last iterates stopped moving (spread < ``settle_tol``) at a minimum.
    "Bouncing": they still move, reversing direction at least every fifth step (chaotic
    bouncing reverses irregularly, sliding downhill never), and their average
    lies in that minimum's well (the wells meet at the maximum of f between the minima).
    Anything else -- diverged, or still sliding along the far slopes -- is "elsewhere".
    """
    sharp, flat = landscape.minima
    xs = np.linspace(sharp, flat, 4001)
    barrier = xs[np.argmax(landscape.f(xs))]
    final, spread, mean = (np.asarray(a, dtype=float) for a in (final, spread, mean))
    turns = np.asarray(turns)
    out = np.full(final.shape, 4)
    finite = np.isfinite(final) & np.isfinite(mean)
    settled = finite & (spread < settle_tol)
    bouncing = finite & ~settled & (turns >= 0.2)
    out[settled & (np.abs(final - sharp) < 1e-4)] = 0
    out[bouncing & (mean < barrier)] = 1
    out[settled & (np.abs(final - flat) < 1e-4)] = 2
    out[bouncing & (mean >= barrier)] = 3
    return out


def interpolation_figure(alphas, train, val):
    """Static: training and validation loss along the straight line from init to trained."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
    ax.plot(alphas, train, color=COLORS[0], label="training loss")
    ax.plot(alphas, val, color=COLORS[1], linestyle="--", label="validation loss")
    for a, name in ((0.0, "initialisation"), (1.0, "trained")):
        ax.axvline(a, color="0.5", linewidth=0.8)
        ax.text(a, ax.get_ylim()[1] * 0.98, f" {name}", va="top", fontsize=8, color="0.3")
    ax.set_yscale("log")
    ax.set_xlabel(r"$\alpha$ in $(1-\alpha)\,\theta_0 + \alpha\,\theta^*$")
    ax.set_ylabel("mean cross-entropy")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return fig


def surface_figure(alphas, betas, Z, title: str = "training loss around the trained parameters"):
    """Static: filled log-spaced contours of a 2-D loss slice, the trained point at the centre."""
    fig, ax = plt.subplots(figsize=(5.6, 4.6), layout="constrained")
    levels = np.geomspace(Z.min(), Z.max(), 18)
    cs = ax.contourf(alphas, betas, Z, levels=levels, norm=LogNorm(), cmap="viridis")
    ax.contour(alphas, betas, Z, levels=levels, colors="white", linewidths=0.3)
    ax.plot(0, 0, marker="*", markersize=14, color="gold", markeredgecolor="black", linestyle="none")
    fig.colorbar(cs, ax=ax, label="mean cross-entropy (log scale)", format="%.2g")
    ax.set_xlabel(r"$\alpha$ (direction $d_1$)")
    ax.set_ylabel(r"$\beta$ (direction $d_2$)")
    ax.set_title(title, fontsize=10)
    return fig


def saddle_figure(lrs=(0.05, 0.1, 0.2), sigmas=(0.0, 1e-12, 1e-9, 1e-6, 1e-3), steps: int = 400,
                  radius: float = 1.0, seed: int = 0) -> SliderFigure:
    r"""Gradient descent from (1.5, 0) on :math:`x^2 - y^2`, with gradient noise :math:`\sigma`.

    Left: the path on the contours. Right: :math:`|y_k|` on a log scale, the escape radius,
    the step at which this run escapes and the predicted median escape step
    (:func:`predicted_escape_step`). Sliders: noise and learning rate.
    """
    land = saddle()
    runs = {(lr, s): run(land, lambda p, lr=lr: SGD(p, lr=lr), steps=steps, grad_noise=s, seed=seed)
            for lr in lrs for s in sigmas}

    fig, (ax, ay) = plt.subplots(1, 2, figsize=(9.6, 4.0), layout="constrained",
                                 gridspec_kw={"width_ratios": [1, 1.25]})
    draw_contours(ax, land, resolution=120, levels=20)
    ax.plot(*land.start, marker="o", markersize=8, color="white", markeredgecolor="black",
            linestyle="none", zorder=6)
    ax.plot(0, 0, marker="x", markersize=9, color="black", linestyle="none", zorder=6)
    (path,) = ax.plot([], [], color=COLORS[1], linewidth=1.6, zorder=4)
    (head,) = ax.plot([], [], marker="o", markersize=7, color=COLORS[1], markeredgecolor="black",
                      linestyle="none", zorder=7)
    ax.set_title("path of gradient descent")

    floor = 1e-18
    ay.set_yscale("log")
    ay.set_xlim(0, steps)
    ay.set_ylim(floor, 1e3)
    ay.axhline(radius, color="0.3", linewidth=0.8, linestyle=":")
    ay.text(steps * 0.99, radius * 1.6, "escape radius", ha="right", fontsize=8, color="0.3")
    ay.set_xlabel("step k")
    ay.set_ylabel(r"$|y_k|$ (distance from the ridge $y = 0$)")
    ay.grid(alpha=0.3)
    (curve,) = ay.plot([], [], color=COLORS[1], linewidth=1.4)
    predicted = ay.axvline(0, color=COLORS[2], linestyle="--", linewidth=1.2)
    (actual,) = ay.plot([], [], marker="o", markersize=8, color=COLORS[1], markeredgecolor="black",
                        linestyle="none")
    note = ay.text(0.03, 0.05, "", transform=ay.transAxes, fontsize=9, va="bottom",
                   bbox=dict(facecolor="white", edgecolor="0.7", alpha=0.9))
    title = fig.suptitle("")

    def update(noise, lr):
        t = runs[(lr, noise)]
        pts = t.points
        path.set_data(pts[:, 0], pts[:, 1])
        k_end = len(pts) - 1
        head.set_data([np.clip(pts[k_end, 0], -2, 2)], [np.clip(pts[k_end, 1], -2, 2)])
        ys = np.maximum(np.abs(pts[:, 1]), floor * 0.1)
        curve.set_data(np.arange(len(pts)), ys)
        k = escape_step(t, radius)
        kp = predicted_escape_step(lr, noise, radius)
        if k is None:
            actual.set_data([], [])
        else:
            actual.set_data([k], [abs(pts[k, 1])])
        predicted.set_xdata([kp, kp] if math.isfinite(kp) else [-10, -10])
        if noise == 0:
            note.set_text(f"no noise: y stays exactly 0 for all {t.steps_taken} steps,\n"
                          f"x shrinks to {abs(pts[-1, 0]):.1e}: stuck at the saddle")
        else:
            note.set_text(f"escapes at step {k}; predicted median {kp:.0f} (dashed)"
                          if k is not None else f"no escape in {steps} steps")
        title.set_text(f"x² − y² from (1.5, 0): lr = {lr:g}, gradient noise σ = {noise:g}")

    def alt(noise, lr):
        t = runs[(lr, noise)]
        k = escape_step(t, radius)
        if noise == 0:
            return (f"Gradient descent with lr {lr:g} and no noise walks along y = 0 into the saddle of "
                    f"x² − y² and stays there; |y| is exactly 0 at every step.")
        return (f"Gradient descent with lr {lr:g} and gradient noise {noise:g}: the path first approaches "
                f"the saddle, then leaves along y; |y| grows exponentially and passes {radius:g} at step "
                f"{k}, near the predicted {predicted_escape_step(lr, noise, radius):.0f}.")

    return SliderFigure(fig, update, {"noise": list(sigmas), "lr": list(lrs)}, alt=alt,
                        labels={"noise": "gradient noise σ", "lr": "learning rate"},
                        initial={"noise": sigmas[0], "lr": lrs[1] if len(lrs) > 1 else lrs[0]},
                        animated=[path, head, curve, predicted, actual, note, title])


_OUTCOME_COLORS = ["#0072B2", "#56B4E9", "#D55E00", "#E69F00", "#BBBBBB"]


def basin_map_figure(landscape: Landscape1D, lrs, starts, outcome: np.ndarray, steps: int = 3000):
    """Static: which outcome (:data:`OUTCOMES`) gradient descent reaches for each start and lr."""
    fig, ax = plt.subplots(figsize=(7.2, 4.2), layout="constrained")
    edges_x = np.concatenate([[starts[0] - (starts[1] - starts[0]) / 2],
                              (np.asarray(starts[1:]) + starts[:-1]) / 2,
                              [starts[-1] + (starts[-1] - starts[-2]) / 2]])
    loglr = np.log10(lrs)
    edges_y = 10 ** np.concatenate([[loglr[0] - (loglr[1] - loglr[0]) / 2], (loglr[1:] + loglr[:-1]) / 2,
                                    [loglr[-1] + (loglr[-1] - loglr[-2]) / 2]])
    ax.pcolormesh(edges_x, edges_y, outcome, cmap=ListedColormap(_OUTCOME_COLORS), vmin=-0.5, vmax=4.5)
    ax.set_yscale("log")
    for curvature, label in zip(landscape.curvatures, landscape.labels):
        ax.axhline(2 / curvature, color="black", linestyle="--", linewidth=1)
        ax.text(starts[-1], 2 / curvature * 1.08, f"2 / curvature of the {label} minimum",
                ha="right", va="bottom", fontsize=8)
    for m in landscape.minima:
        ax.axvline(m, color="white", linewidth=0.8, linestyle=":")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in _OUTCOME_COLORS]
    ax.legend(handles, OUTCOMES, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_xlabel("start x₀")
    ax.set_ylabel("learning rate η")
    ax.set_title(f"where plain gradient descent ends after {steps:,} steps", fontsize=10)
    return fig


def sharp_flat_figure(landscape: Landscape1D, lrs, starts, steps: int = 300,
                      shown: int = 60, classify_steps: int = 3000) -> SliderFigure:
    r"""Gradient descent on the 1-D sharp/flat function, sliders for the learning rate and start.

    Left: :math:`f` with the first ``shown`` iterates :math:`(x_k, f(x_k))`. Right: :math:`x_k`
    against k for ``steps`` steps, both minima marked. The title says where the run ends
    (:func:`classify_1d` after ``classify_steps`` steps, as in the chapter's map).
    """
    lrs, starts = list(lrs), list(starts)
    outcome = classify_1d(landscape, *gd_1d_grid(landscape, lrs, starts, steps=classify_steps))
    paths = {}
    for i, lr in enumerate(lrs):
        for j, x0 in enumerate(starts):
            xs = [x0]
            for _ in range(steps):
                xs.append(xs[-1] - lr * float(landscape.grad(xs[-1])))
            paths[(lr, x0)] = np.array(xs)

    lo, hi = landscape.bounds
    grid = np.linspace(lo, hi, 800)
    fig, (ax, ak) = plt.subplots(1, 2, figsize=(9.6, 3.8), layout="constrained",
                                 gridspec_kw={"width_ratios": [1.2, 1]})
    ax.plot(grid, landscape.f(grid), color="0.25", linewidth=1.2)
    for m, label in zip(landscape.minima, landscape.labels):
        ax.annotate(f"{label}\n(curvature {float(landscape.hessian(m)):.3g})", (m, landscape.f(m)),
                    xytext=(0, -34), textcoords="offset points", ha="center", fontsize=8)
    ax.set_xlim(lo, hi)
    ax.set_ylim(-1.35, 0.45)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    (zig,) = ax.plot([], [], color=COLORS[1], linewidth=0.7, alpha=0.8)
    (dots,) = ax.plot([], [], marker="o", markersize=3.5, color=COLORS[1], linestyle="none")
    (end,) = ax.plot([], [], marker="o", markersize=9, color=COLORS[0], markeredgecolor="black",
                     linestyle="none")
    for m in landscape.minima:
        ak.axhline(m, color="0.5", linestyle=":", linewidth=1)
    ak.set_xlim(0, steps)
    ak.set_ylim(lo, hi)
    ak.set_xlabel("step k")
    ak.set_ylabel(r"$x_k$")
    ak.text(steps, landscape.minima[0], "sharp ", ha="right", va="bottom", fontsize=8, color="0.3")
    ak.text(steps, landscape.minima[1], "flat ", ha="right", va="bottom", fontsize=8, color="0.3")
    (trace,) = ak.plot([], [], color=COLORS[0], linewidth=1.0)
    title = fig.suptitle("")

    def update(lr, start):
        xs = paths[(lr, start)]
        ys = landscape.f(xs)
        finite = np.isfinite(xs)
        zig.set_data(xs[:shown + 1][finite[:shown + 1]], ys[:shown + 1][finite[:shown + 1]])
        dots.set_data(xs[:shown + 1][finite[:shown + 1]], ys[:shown + 1][finite[:shown + 1]])
        last = xs[finite][-1]
        end.set_data([last], [landscape.f(last)])
        trace.set_data(np.arange(len(xs))[finite], xs[finite])
        o = outcome[lrs.index(lr), starts.index(start)]
        title.set_text(f"η = {lr:g} (2/η = {2 / lr:.3g}), x₀ = {start:g}: {OUTCOMES[o]}")

    def alt(lr, start):
        o = outcome[lrs.index(lr), starts.index(start)]
        return (f"Gradient descent with learning rate {lr:g} from x = {start:g} on a function with a "
                f"sharp minimum near -1 and a flat one near 2: the run ends {OUTCOMES[o]}.")

    return SliderFigure(fig, update, {"lr": lrs, "start": starts}, alt=alt,
                        labels={"lr": "learning rate η", "start": "start x₀"},
                        animated=[zig, dots, end, trace, title])


# ---------------------------------------------------------------------------------------------
# Symmetries of a one-hidden-layer tanh network, and linear connectivity after alignment
# ---------------------------------------------------------------------------------------------

def align_hidden_units(reference, other) -> list[np.ndarray]:
    r"""``other`` (``[W1, b1, W2, b2]`` of a one-hidden-layer tanh MLP) with its hidden units
    permuted and sign-flipped to match ``reference`` as closely as possible ("weight matching",
    Ainsworth et al., 2023). The result computes exactly the same function as ``other``.

    Unit :math:`j` is described by its incoming weights, its bias and its outgoing weights. Two
    operations leave the function unchanged: permuting the units, and, because tanh is odd,
    flipping the sign of all three parts of one unit. The permutation maximising the summed
    :math:`|\langle u_j, u'_{\pi(j)}\rangle|` is a linear assignment problem (solved exactly by
    SciPy, which scikit-learn already brings); each matched unit then takes the sign that makes
    its inner product positive.
    """
    from scipy.optimize import linear_sum_assignment

    W1r, b1r, W2r, _ = reference
    W1, b1, W2, b2 = other
    units_ref = np.vstack([W1r, b1r[None, :], W2r.T]).T  # one row per hidden unit
    units = np.vstack([W1, b1[None, :], W2.T]).T
    similarity = units_ref @ units.T
    rows, cols = linear_sum_assignment(-np.abs(similarity))
    sign = np.where(similarity[rows, cols] < 0, -1.0, 1.0)
    return [W1[:, cols] * sign, b1[cols] * sign, W2[cols] * sign[:, None], b2.copy()]


# ---------------------------------------------------------------------------------------------
# Sharpness during training: the edge of stability
# ---------------------------------------------------------------------------------------------

def mse_tanh_mlp(X: np.ndarray, Y: np.ndarray):
    r"""``loss_and_grads(params)`` for a one-hidden-layer tanh MLP with squared-error loss
    :math:`\frac1{2n}\sum_i \lVert f(x_i) - y_i\rVert^2` on the fixed data ``X, Y`` (full batch).
    Cohen et al. (2021) found progressive sharpening most reliably with this loss."""
    n = len(X)

    def loss_and_grads(params):
        W1, b1, W2, b2 = params
        A = np.tanh(X @ W1 + b1)
        residual = A @ W2 + b2 - Y
        loss = 0.5 * float(np.sum(residual ** 2)) / n
        d_out = residual / n
        d_hidden = (d_out @ W2.T) * (1.0 - A ** 2)
        return loss, [X.T @ d_hidden, d_hidden.sum(0), A.T @ d_out, d_out.sum(0)]

    return loss_and_grads


def _flat(arrays) -> np.ndarray:
    return np.concatenate([a.ravel() for a in arrays])


def _unflat(vector: np.ndarray, like) -> list[np.ndarray]:
    out, i = [], 0
    for a in like:
        out.append(vector[i:i + a.size].reshape(a.shape))
        i += a.size
    return out


def top_hessian_eigenvalue(loss_and_grads, params, v: np.ndarray | None = None, *, iters: int = 20,
                           eps: float = 1e-5, seed: int = 0) -> tuple[float, np.ndarray]:
    r"""The Hessian eigenvalue of largest magnitude at ``params`` by power iteration,
    and its eigenvector (pass it back as ``v`` to warm-start the next measurement).

    Each Hessian-vector product is a central difference of two gradients,
    :math:`Hv \approx (\nabla L(\theta + \varepsilon v) - \nabla L(\theta - \varepsilon v))/(2\varepsilon)`,
    so the Hessian is never formed.
    """
    theta = _flat(params)
    if v is None:
        v = np.random.default_rng(seed).standard_normal(theta.size)
    eigenvalue = 0.0
    for _ in range(iters):
        v = v / np.linalg.norm(v)
        plus = _flat(loss_and_grads(_unflat(theta + eps * v, params))[1])
        minus = _flat(loss_and_grads(_unflat(theta - eps * v, params))[1])
        hv = (plus - minus) / (2 * eps)
        eigenvalue = float(v @ hv)
        v = hv
    return eigenvalue, v / np.linalg.norm(v)


def sharpness_run(X: np.ndarray, Y: np.ndarray, lr: float, *, steps: int = 6000, every: int = 100,
                  hidden: int = 32, seed: int = 0) -> dict:
    r"""Full-batch gradient descent (``optimkit.SGD``) on :func:`mse_tanh_mlp`, measuring the
    sharpness :math:`\lambda_{\max}` every ``every`` steps: ``{"steps", "sharpness", "losses"}``
    (``losses`` at every step)."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((X.shape[1], hidden)) / math.sqrt(X.shape[1]), np.zeros(hidden),
              rng.standard_normal((hidden, Y.shape[1])) / math.sqrt(hidden), np.zeros(Y.shape[1])]
    loss_and_grads = mse_tanh_mlp(X, Y)
    opt = SGD(params, lr=lr)
    measured_at, sharpness, losses, v = [], [], [], None
    for k in range(steps + 1):
        if k % every == 0:
            lam, v = top_hessian_eigenvalue(loss_and_grads, params, v)
            measured_at.append(k)
            sharpness.append(lam)
        loss, grads = loss_and_grads(params)
        losses.append(loss)
        if k < steps:
            opt.step(grads)
    return {"steps": np.array(measured_at), "sharpness": np.array(sharpness),
            "losses": np.array(losses)}


def sharpness_figure(runs: dict):
    """Sharpness (top) and training loss (bottom, log scale) against the step for each
    ``{lr: sharpness_run(...)}``, with the line 2/lr dashed in each run's colour (a line far
    above every measured sharpness is left out, and its legend entry says so)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7.0, 5.6), sharex=True)
    highest = max(r["sharpness"].max() for r in runs.values())
    ceiling = 1.15 * highest
    for i, (lr, r) in enumerate(runs.items()):
        color = COLORS[i % len(COLORS)]
        shown = 2 / lr <= ceiling
        top.plot(r["steps"], r["sharpness"], color=color, linewidth=1.6,
                 label=f"η = {lr:g}: 2/η = {2 / lr:.3g}" + ("" if shown else " (off the scale)"))
        if shown:
            top.axhline(2 / lr, color=color, linestyle="--", linewidth=1.0)
        bottom.plot(np.arange(len(r["losses"])), r["losses"], color=color, linewidth=0.9)
    top.set_ylim(0.8 * min(r["sharpness"].min() for r in runs.values()), ceiling)
    top.set_ylabel(r"sharpness $\lambda_{\max}$")
    top.legend(loc="upper left", fontsize=8)
    bottom.set_yscale("log")
    bottom.set_xlabel("step")
    bottom.set_ylabel("training loss (MSE)")
    fig.tight_layout()
    return fig
