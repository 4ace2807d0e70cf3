"""Chapter 11 (book/11-race-and-guide.md): the optimizer race on four landscapes and on the digits
MLP, and the tables that map optimkit to torch.optim and optax.

``RACE`` holds the settings every figure and table of the chapter uses, and the only copy of them:
the tests (``tests/book/test_ch11_race_and_guide.py``) import it. They were picked by hand from
factor-2 grids of learning rates; the tests check that every entrant reaches the minimum with
them, and the outcome the chapter reports for each landscape.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np

from optimkit import optim, schedules, validate
from optimkit.landscapes import LANDSCAPES, Landscape, Trajectory, run

from .drawing import COLORS, trajectory_figure
from .sliders import SliderFigure


# The nine entrants: label -> (optimkit class name, fixed keyword arguments).
ENTRANTS = {
    "SGD": ("SGD", {}),
    "SGD+momentum": ("SGD", {"momentum": 0.9}),
    "Nesterov": ("SGD", {"momentum": 0.9, "nesterov": True}),
    "Adagrad": ("Adagrad", {}),
    "RMSprop": ("RMSprop", {"momentum": 0.9}),
    "Adam": ("Adam", {}),
    "AdamW": ("AdamW", {"weight_decay": 1e-4}),
    "NAdam": ("NAdam", {}),
    "RAdam": ("RAdam", {}),
}


@dataclass(frozen=True)
class RaceSetup:
    """Where a race starts, how long it runs, what "arrived" means, and each entrant's lr."""

    landscape: str
    steps: int
    lrs: dict  # label -> learning rate
    start: tuple | None = None  # None: the landscape's default start
    goal: str = "minimum"  # "minimum": within `tol` of the minimum; "escape": |y| > `tol`
    tol: float = 1e-3


# Ravine 0.1x^2 + 2y^2 (tests/book/test_ch11_race_and_guide.py checks that every entrant
# converges); Nesterov's stability limit is lower than heavy ball's
# (eta*lambda < (2+2mu)/(1+2mu) = 1.36 against 2+2mu = 3.8).
RAVINE_LRS = {"SGD": 0.4, "SGD+momentum": 0.5, "Nesterov": 0.2, "Adagrad": 1.0, "RMSprop": 0.01,
              "Adam": 0.5, "AdamW": 0.5, "NAdam": 0.2, "RAdam": 1.0}

RACE = {
    "ravine": RaceSetup("ravine", 300, dict(RAVINE_LRS)),
    "rosenbrock": RaceSetup("rosenbrock", 10_000, {
        "SGD": 2e-3, "SGD+momentum": 1e-3, "Nesterov": 1e-3, "Adagrad": 0.5, "RMSprop": 3e-4,
        "Adam": 5e-3, "AdamW": 5e-3, "NAdam": 2e-3, "RAdam": 5e-3}),
    "beale": RaceSetup("beale", 3000, {
        "SGD": 0.03, "SGD+momentum": 4e-3, "Nesterov": 4e-3, "Adagrad": 1.0, "RMSprop": 1e-3,
        "Adam": 0.05, "AdamW": 0.05, "NAdam": 0.1, "RAdam": 0.015}),
    # The saddle x^2 - y^2 with the ravine's settings (curvatures of the same size), started a
    # hair off the ridge y = 0: who leaves the saddle first?
    "saddle": RaceSetup("saddle", 40, dict(RAVINE_LRS), start=(1.5, 1e-3), goal="escape", tol=1.0),
}


def make_optimizer(label: str, lr: float):
    """``params -> optimizer`` for one entrant of :data:`ENTRANTS` at learning rate ``lr``."""
    name, kwargs = ENTRANTS[label]
    cls = optim.OPTIMIZERS[name]
    return lambda params: cls(params, lr=lr, **kwargs)


def run_race(setup: RaceSetup) -> dict[str, Trajectory]:
    """Every entrant on ``setup``'s landscape, from the same start: ``{label: trajectory}``."""
    landscape = LANDSCAPES[setup.landscape]()
    return {label: run(landscape, make_optimizer(label, lr), start=setup.start, steps=setup.steps)
            for label, lr in setup.lrs.items()}


def first_step_within(trajectory: Trajectory, point, tol: float) -> int | None:
    """The first step k with ``||points[k] - point|| < tol``, or None if it never gets there."""
    distance = np.linalg.norm(trajectory.points - np.asarray(point, dtype=float), axis=1)
    hits = np.flatnonzero(distance < tol)
    return int(hits[0]) if hits.size else None


def first_escape(trajectory: Trajectory, radius: float) -> int | None:
    """The first step k with ``|y_k| > radius`` (leaving a saddle along y), or None."""
    hits = np.flatnonzero(np.abs(trajectory.points[:, 1]) > radius)
    return int(hits[0]) if hits.size else None


def log_steps(last: int, frames: int) -> list[int]:
    """About ``frames`` distinct step numbers from 0 to ``last``, spaced evenly in log(1 + k)."""
    raw = np.expm1(np.linspace(0.0, np.log1p(last), frames)).round().astype(int)
    return sorted(set(raw.tolist()) | {0, last})


# Line styles for entrants beyond the eight colours of the palette.
_DASHES = ["-", "--", ":", "-."]


def race_figure(landscape: Landscape, runs: dict[str, Trajectory], *, frames: int = 13,
                log: bool = True, title: str | None = None) -> SliderFigure:
    """:func:`descent.drawing.trajectory_figure` for a race of up to 32 entrants.

    With ``log=True`` the step slider is spaced logarithmically (most of the action on
    Rosenbrock happens in the first hundred of ten thousand steps). Entrants past the eighth
    colour are drawn dashed, so every line stays distinguishable.
    """
    sf = trajectory_figure(landscape, runs, frames=frames, title=title)
    ax = sf.fig.axes[0]
    paths = [a for a in sf.animated if getattr(a, "get_label", lambda: "")() in runs]
    for i, path in enumerate(paths):
        path.set_linestyle(_DASHES[(i // len(COLORS)) % len(_DASHES)])
    if len(runs) > len(COLORS):
        ax.legend(loc="upper right", fontsize=7, framealpha=0.9, ncol=2)
    if log:
        longest = max(len(t.points) - 1 for t in runs.values())
        sf.sliders["step"] = log_steps(longest, frames)
        sf.initial["step"] = sf.sliders["step"][-1]   # open on the whole path
    return sf


def lr_sweep_figure(lrs, accuracies: dict[str, list], *, defaults: dict[str, float] | None = None,
                    ylabel: str = "validation accuracy"):
    """Static figure: one line of accuracy against learning rate per optimizer (log x axis),
    each optimizer's torch default lr marked with a hollow circle when ``defaults`` is given."""
    fig, ax = plt.subplots(figsize=(7.2, 4.2), layout="constrained")
    lrs = np.asarray(lrs, dtype=float)
    for i, (label, acc) in enumerate(accuracies.items()):
        color = COLORS[i % len(COLORS)]
        style = _DASHES[(i // len(COLORS)) % len(_DASHES)]
        ax.plot(lrs, acc, marker="o", markersize=3.5, color=color, linestyle=style, label=label)
        if defaults and label in defaults:
            d = defaults[label]
            ax.plot([d], [np.interp(np.log(d), np.log(lrs), np.asarray(acc, dtype=float))],
                    marker="o", markersize=10, markerfacecolor="none", markeredgecolor=color)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(ylabel)
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=3, loc="lower right")
    return fig


# optax has no one-to-one twin for every torch default; these are the closest calls and what
# differs. (Facts from ../shared/reference/optimizer-conventions.md.)
OPTAX_OPTIMIZERS = {
    "SGD": ("optax.sgd(lr, momentum, nesterov)",
            "optax's trace is b = μb + g with b₀ = 0, same as torch when dampening = 0"),
    "Adagrad": ("optax.adagrad(lr, initial_accumulator_value=0.1, eps=1e-7)",
                "optax starts the sum at 0.1 and puts eps inside the square root"),
    "RMSprop": ("optax.rmsprop(lr, decay=0.9, eps=1e-8)",
                "optax's default decay is 0.9 (torch 0.99) and eps goes inside the root"),
    "Adam": ("optax.adam(lr)", "same arithmetic"),
    "AdamW": ("optax.adamw(lr, weight_decay=1e-2)",
              "optax's default weight_decay is 1e-4, torch's 1e-2"),
    "NAdam": ("optax.nadam(lr)", "optax's NAdam has no μ_t momentum-decay schedule"),
    "RAdam": ("optax.radam(lr)",
              "optax rectifies from ρ_t ≥ 5 (torch: ρ_t > 5) and adds eps to √v̂, not √v"),
}


def _signature_defaults(obj) -> dict:
    """The hyperparameters' defaults: torch's implementation switches (``foreach``, ``fused``,
    ``capturable``, ``differentiable``), which choose how to compute and not what, are left out."""
    return {name: p.default for name, p in inspect.signature(obj).parameters.items()
            if p.default is not inspect.Parameter.empty and name not in validate.NOOP_OPTIONS}


def optimizer_twins() -> list[dict]:
    """One row per class in :data:`optimkit.OPTIMIZERS`: its torch twin (read from the class
    docstring), its constructor defaults (read from its signature) and the closest optax call."""
    rows = []
    for name, cls in optim.OPTIMIZERS.items():
        match = re.search(r"``(torch\.optim\.\w+)``", inspect.getdoc(cls) or "")
        defaults = _signature_defaults(cls.__init__)
        optax_call, note = OPTAX_OPTIMIZERS.get(name, ("—", ""))
        rows.append({"optimkit": f"optimkit.{name}", "torch": match.group(1) if match else "—",
                     "defaults": defaults, "optax": optax_call, "note": note})
    return rows


# optax schedules with the same *shape* as an optimkit schedule whose docstring cites no optax
# twin. Not checked number for number (optax is not a test dependency): "similar", not "equal".
OPTAX_SIMILAR_SCHEDULES = {
    "step_decay": "exponential_decay(staircase=True)",
    "exponential": "exponential_decay",
    "cosine_warm_restarts": "sgdr_schedule",
    "linear_warmup": "linear_schedule + join_schedules",
    "one_cycle": "cosine_onecycle_schedule",
    "ReduceLROnPlateau": "contrib.reduce_on_plateau",
}


def schedule_twins() -> list[dict]:
    """One row per schedule in ``optimkit.schedules.__all__``: the torch and optax names its
    docstring says it equals (every ``torch.optim.lr_scheduler.*`` / ``optax.*`` it cites), and
    for the others the closest optax schedule from :data:`OPTAX_SIMILAR_SCHEDULES`."""
    rows = []
    for name in schedules.__all__:
        doc = inspect.getdoc(getattr(schedules, name)) or ""
        flat = " ".join(doc.split())  # names may be wrapped across lines
        torch_names = list(dict.fromkeys(re.findall(r"torch\.optim\.lr_scheduler\.(\w+)", flat)))
        optax_names = list(dict.fromkeys(re.findall(r"optax\.(\w+)", flat)))
        rows.append({"optimkit": f"schedules.{name}", "torch": torch_names, "optax": optax_names,
                     "optax_similar": None if optax_names else OPTAX_SIMILAR_SCHEDULES.get(name)})
    return rows


def state_floats_per_parameter(make_optimizer, size: int = 1000, steps: int = 12, seed: int = 0,
                               closure: bool = False) -> float:
    r"""Floats of optimizer state per parameter, counted from what the optimizer actually keeps.

    Builds ``make_optimizer([θ])`` for one array of ``size`` floats, takes ``steps`` steps on the
    quadratic :math:`\tfrac12\sum_i c_i\theta_i^2` (curvatures :math:`c_i` from 0.1 to 10; plus
    noise, or exact through ``step(closure)`` when ``closure``),
    then walks the optimizer's attributes (dicts, lists, tuples, nested optimizers) and adds up
    every float array that is not a parameter itself. Scalars (step counters, products of
    betas) are ignored, so the result is the per-parameter memory: 0 for SGD, 2 for Adam.
    """
    rng = np.random.default_rng(seed)
    theta = rng.standard_normal(size)
    curv = np.geomspace(0.1, 10.0, size)
    opt = make_optimizer([theta])
    for _ in range(steps):
        if closure:
            opt.step(lambda: (0.5 * float(curv @ theta ** 2), [curv * theta]))
        else:
            opt.step([curv * theta + 0.1 * rng.standard_normal(size)])
    seen, total = {id(theta)}, 0

    def walk(obj, depth=0):
        nonlocal total
        if id(obj) in seen or depth > 8:
            return
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            if obj.dtype.kind == "f" and obj.size > 1:
                total += obj.size
        elif isinstance(obj, dict):
            for value in obj.values():
                walk(value, depth + 1)
        elif isinstance(obj, (list, tuple)):
            for value in obj:
                walk(value, depth + 1)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            for value in vars(obj).values():
                walk(value, depth + 1)

    walk(opt)
    return total / size
