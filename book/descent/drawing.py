"""Contour plots of 2-D landscapes and optimizer trajectories replayed step by step, for every
chapter: :data:`COLORS`, :func:`draw_contours`, :func:`trajectory_figure` and :func:`race`."""

from __future__ import annotations

from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm

from optimkit.landscapes import Landscape, Trajectory, run

from .sliders import SliderFigure

# Colour-blind-safe palette (Okabe-Ito), one colour per optimizer in a race.
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]


def draw_contours(ax, landscape: Landscape, resolution: int = 160, levels: int = 24):
    """Filled contours of ``landscape`` over its plotting bounds, minima starred."""
    (x0, x1), (y0, y1) = landscape.bounds
    X, Y = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    Z = landscape.f(X, Y)
    if landscape.log_contours:
        shifted = Z - Z.min() + 1e-3  # log levels need positive values
        ax.contourf(X, Y, shifted, levels=np.geomspace(shifted.min(), shifted.max(), levels),
                    norm=LogNorm(), cmap="Greys_r", alpha=0.55)
        ax.contour(X, Y, shifted, levels=np.geomspace(shifted.min(), shifted.max(), levels),
                   norm=LogNorm(), colors="0.45", linewidths=0.4)
    else:
        ax.contourf(X, Y, Z, levels=levels, cmap="Greys_r", alpha=0.55)
        ax.contour(X, Y, Z, levels=levels, colors="0.45", linewidths=0.4)
    for i, (mx, my) in enumerate(landscape.minima):
        ax.plot(mx, my, marker="*", markersize=15, color="gold", markeredgecolor="black",
                linestyle="none", zorder=5, label="minimum" if i == 0 else None)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    return ax


def trajectory_figure(landscape: Landscape, runs: dict[str, Trajectory], *,
                      frames: int = 31, title: str | None = None) -> SliderFigure:
    """Race several trajectories on one landscape, with a step slider and a replay button.

    ``runs`` maps a legend label to a :class:`~optimkit.landscapes.Trajectory`.
    The slider steps through ``frames`` evenly spaced step numbers.
    """
    if not runs:
        raise ValueError("runs is empty: give at least one {label: trajectory}")
    longest = max(len(t.points) - 1 for t in runs.values())
    steps = sorted(set(np.linspace(0, longest, frames).round().astype(int).tolist()))

    fig, ax = plt.subplots(figsize=(6.4, 4.6), layout="constrained")
    draw_contours(ax, landscape)
    start = next(iter(runs.values())).points[0]
    ax.plot(*start, marker="o", markersize=8, color="white", markeredgecolor="black",
            linestyle="none", zorder=6, label="start")
    paths, heads = [], []
    for color, (label, trajectory) in zip(COLORS * 4, runs.items()):
        (path,) = ax.plot([], [], color=color, linewidth=1.6, label=label, zorder=4)
        (head,) = ax.plot([], [], marker="o", markersize=7, color=color,
                          markeredgecolor="black", linestyle="none", zorder=7)
        paths.append((path, trajectory))
        heads.append(head)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    heading = ax.set_title(title or landscape.name)

    def update(step: int) -> None:
        for (path, trajectory), head in zip(paths, heads):
            k = min(step, len(trajectory.points) - 1)  # a diverged run stops where it left
            path.set_data(trajectory.points[: k + 1, 0], trajectory.points[: k + 1, 1])
            head.set_data([trajectory.points[k, 0]], [trajectory.points[k, 1]])
        heading.set_text(f"{title or landscape.name} — step {step}")

    def alt(step: int) -> str:
        where = "; ".join(
            f"{label} at ({t.points[min(step, len(t.points) - 1), 0]:.2f}, "
            f"{t.points[min(step, len(t.points) - 1), 1]:.2f})" for label, t in runs.items())
        return f"Contour plot of {landscape.name} with optimizer paths after {step} steps: {where}."

    return SliderFigure(fig, update, {"step": steps}, alt=alt, play="step",
                        animated=[path for path, _ in paths] + heads + [heading])


def race(landscape: Landscape, optimizers: dict[str, Callable], *, steps: int = 100,
         start: Sequence[float] | None = None, **run_kwargs) -> dict[str, Trajectory]:
    """Run each ``{label: make_optimizer}`` from the same start; returns the trajectories."""
    return {label: run(landscape, make, start=start, steps=steps, **run_kwargs)
            for label, make in optimizers.items()}
