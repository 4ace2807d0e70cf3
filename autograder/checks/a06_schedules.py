"""Hidden checks for assignment 06_schedules (chapter 7, Learning-rate schedules; chapter 8, Warmup).

Every schedule is asked for as a plain function of the step, ``f(step, ...) -> float``, not as
optimkit's factories; the plateau rule as a function of a whole metric sequence. The drives
call each function at the steps where schedules go wrong: step 0, the step before and at every
decay or restart, exactly ``total_steps`` and past it, plus a few random steps.

Tolerances: the values are a handful of float operations, so a correct answer written another
way (``0.5 * (1 + cos)`` against ``(1 + cos) / 2``, ``gamma ** k`` against repeated
multiplication) agrees to about 1e-15 relative; near the end of a cosine, ``1 + cos`` cancels
and an equivalent formula (``sin²``) can differ by ~1e-13 relative. ``rtol=1e-9`` leaves a wide
margin for that, and every known mistake moves some value by 1e-4 relative or more.
"""

from __future__ import annotations

import numpy as np
from optimkit import schedules

from .core import Problem, Variant

CH7 = "Chapter 7 (Learning-rate schedules)"
CH8 = "Chapter 8 (Warmup)"

STEP_DECAY = f"{CH7}, section 'Step decay'"
COSINE = f"{CH7}, section 'Cosine annealing'"
RESTARTS = f"{CH7}, section 'Warm restarts'"
PLATEAU = f"{CH7}, section 'Reduce on plateau'"
WARMUP = f"{CH8}, section 'Linear warmup into a cosine'"

RTOL, ATOL = 1e-9, 1e-12


def _steps(rng, *anchors, upto: int, extra: int = 4) -> list[int]:
    """The anchor steps (and their neighbours), plus ``extra`` random steps below ``upto``."""
    wanted = {0, 1}
    for a in anchors:
        wanted |= {a - 1, a, a + 1}
    wanted |= {int(s) for s in rng.integers(0, upto, size=extra)}
    return sorted(s for s in wanted if s >= 0)


# --- step_decay_lr(step, lr, step_size, gamma) -> float --------------------------------------

def _step_decay_reference(step, lr, step_size, gamma):
    return schedules.step_decay(lr, step_size, gamma)(step)


def _drive_step_decay(call, rng):
    for _ in range(3):
        lr = float(rng.uniform(0.01, 1.0))
        step_size = int(rng.integers(2, 20))
        gamma = float(rng.uniform(0.1, 0.9))
        s = step_size
        for step in _steps(rng, s, 2 * s, 3 * s, 10 * s, upto=12 * s):
            call(step=step, lr=lr, step_size=step_size, gamma=gamma)


step_decay_lr = Problem(
    name="step_decay_lr", reference=_step_decay_reference, drive=_drive_step_decay,
    chapter=STEP_DECAY,
    variants=[
        Variant("off by one step (steps counted from 1, so the lr drops one step early)", STEP_DECAY, """
def step_decay_lr(step, lr, step_size, gamma):
    return lr * gamma ** ((step + 1) // step_size)
"""),
        Variant("a smooth exponential instead of a staircase (no floor in the exponent)", STEP_DECAY, """
def step_decay_lr(step, lr, step_size, gamma):
    return lr * gamma ** (step / step_size)
"""),
        Variant("decaying at every step (gamma to the power step, ignoring step_size)", STEP_DECAY, """
def step_decay_lr(step, lr, step_size, gamma):
    return lr * gamma ** step
"""),
    ],
    rtol=RTOL, atol=ATOL)


# --- cosine_lr(step, lr, total_steps, lr_min) -> float ---------------------------------------

def _cosine_reference(step, lr, total_steps, lr_min):
    return schedules.cosine(lr, total_steps, lr_min)(step)


def _drive_cosine(call, rng):
    for k in range(4):
        lr = float(rng.uniform(0.01, 1.0))
        total = int(rng.integers(10, 200))
        lr_min = 0.0 if k == 0 else float(rng.uniform(0.01, 0.3)) * lr
        for step in _steps(rng, total // 2, total, 2 * total, upto=3 * total):
            call(step=step, lr=lr, total_steps=total, lr_min=lr_min)


cosine_lr = Problem(
    name="cosine_lr", reference=_cosine_reference, drive=_drive_cosine,
    chapter=COSINE,
    variants=[
        Variant("cosine not clamped past total_steps (it climbs back up, like torch's CosineAnnealingLR)",
                COSINE, """
def cosine_lr(step, lr, total_steps, lr_min):
    return lr_min + (lr - lr_min) * (1 + np.cos(np.pi * step / total_steps)) / 2
"""),
        Variant("off by one step (a cosine over total_steps - 1 steps reaches lr_min one step early)",
                COSINE, """
def cosine_lr(step, lr, total_steps, lr_min):
    t = min(step, total_steps - 1)
    return lr_min + (lr - lr_min) * (1 + np.cos(np.pi * t / (total_steps - 1))) / 2
"""),
        Variant("lr_min ignored (the cosine anneals to 0)", COSINE, """
def cosine_lr(step, lr, total_steps, lr_min):
    t = min(step, total_steps)
    return lr * (1 + np.cos(np.pi * t / total_steps)) / 2
"""),
        Variant("lr_min added on top of a cosine from lr (it starts at lr + lr_min)", COSINE, """
def cosine_lr(step, lr, total_steps, lr_min):
    t = min(step, total_steps)
    return lr_min + lr * (1 + np.cos(np.pi * t / total_steps)) / 2
"""),
    ],
    rtol=RTOL, atol=ATOL)


# --- warmup_cosine_lr(step, peak_lr, warmup_steps, total_steps, lr_min) -> float --------------

def _warmup_cosine_reference(step, peak_lr, warmup_steps, total_steps, lr_min):
    return schedules.warmup_cosine(peak_lr, warmup_steps, total_steps, lr_min)(step)


def _drive_warmup_cosine(call, rng):
    for k in range(4):
        peak = float(rng.uniform(0.01, 1.0))
        warmup = 1 if k == 0 else int(rng.integers(2, 30))
        total = warmup + int(rng.integers(5, 150))
        lr_min = 0.0 if k == 1 else float(rng.uniform(0.01, 0.2)) * peak
        for step in _steps(rng, warmup, (warmup + total) // 2, total, warmup + total, 2 * total,
                           upto=2 * total + 10):
            call(step=step, peak_lr=peak, warmup_steps=warmup, total_steps=total, lr_min=lr_min)


warmup_cosine_lr = Problem(
    name="warmup_cosine_lr", reference=_warmup_cosine_reference, drive=_drive_warmup_cosine,
    chapter=WARMUP,
    variants=[
        Variant("warmup reaching the peak one step early (a ramp of (step + 1) / warmup_steps)", WARMUP, """
def warmup_cosine_lr(step, peak_lr, warmup_steps, total_steps, lr_min):
    if step < warmup_steps:
        return peak_lr * (step + 1) / warmup_steps
    t = min(step, total_steps) - warmup_steps
    return lr_min + (peak_lr - lr_min) * (1 + np.cos(np.pi * t / (total_steps - warmup_steps))) / 2
"""),
        Variant("the cosine not shifted by the warmup (it uses step / total_steps, so it starts below the peak)",
                WARMUP, """
def warmup_cosine_lr(step, peak_lr, warmup_steps, total_steps, lr_min):
    if step < warmup_steps:
        return peak_lr * step / warmup_steps
    t = min(step, total_steps)
    return lr_min + (peak_lr - lr_min) * (1 + np.cos(np.pi * t / total_steps)) / 2
"""),
        Variant("total_steps counted after the warmup (the decay ends at warmup_steps + total_steps)",
                WARMUP, """
def warmup_cosine_lr(step, peak_lr, warmup_steps, total_steps, lr_min):
    if step < warmup_steps:
        return peak_lr * step / warmup_steps
    t = min(step - warmup_steps, total_steps)
    return lr_min + (peak_lr - lr_min) * (1 + np.cos(np.pi * t / total_steps)) / 2
"""),
        Variant("cosine not clamped past total_steps (it climbs back up after the end)", WARMUP, """
def warmup_cosine_lr(step, peak_lr, warmup_steps, total_steps, lr_min):
    if step < warmup_steps:
        return peak_lr * step / warmup_steps
    t = step - warmup_steps
    return lr_min + (peak_lr - lr_min) * (1 + np.cos(np.pi * t / (total_steps - warmup_steps))) / 2
"""),
    ],
    rtol=RTOL, atol=ATOL)


# --- restart_lr(step, lr, period, period_mult, lr_min) -> float -------------------------------

def _restart_reference(step, lr, period, period_mult, lr_min):
    return schedules.cosine_warm_restarts(lr, period, period_mult, lr_min)(step)


def _drive_restarts(call, rng):
    for mult in (1, 2, int(rng.integers(2, 4))):
        lr = float(rng.uniform(0.01, 1.0))
        period = int(rng.integers(2, 9))
        lr_min = float(rng.choice([0.0, float(rng.uniform(0.01, 0.3)) * lr]))
        cycles = 5 if mult == 1 else 3
        end = period * sum(mult ** i for i in range(cycles)) + 2  # every step of a few cycles
        for step in range(end):
            call(step=step, lr=lr, period=period, period_mult=mult, lr_min=lr_min)


restart_lr = Problem(
    name="restart_lr", reference=_restart_reference, drive=_drive_restarts,
    chapter=RESTARTS,
    variants=[
        Variant("cycles not lengthened by period_mult (every cycle is period steps long)", RESTARTS, """
def restart_lr(step, lr, period, period_mult, lr_min):
    t = step % period
    return lr_min + (lr - lr_min) * (1 + np.cos(np.pi * t / period)) / 2
"""),
        Variant("the position in the cycle counted from step 0, not from the last restart", RESTARTS, """
def restart_lr(step, lr, period, period_mult, lr_min):
    t_cur, length = step, period
    while t_cur >= length:
        t_cur -= length
        length *= period_mult
    return lr_min + (lr - lr_min) * (1 + np.cos(np.pi * step / length)) / 2
"""),
        Variant("off by one step (each cycle reaches lr_min at its last step: a cosine over length - 1)",
                RESTARTS, """
def restart_lr(step, lr, period, period_mult, lr_min):
    t_cur, length = step, period
    while t_cur >= length:
        t_cur -= length
        length *= period_mult
    return lr_min + (lr - lr_min) * (1 + np.cos(np.pi * t_cur / (length - 1))) / 2
"""),
    ],
    rtol=RTOL, atol=ATOL)


# --- plateau_lrs(metrics, lr, factor, patience, threshold, cooldown) -> array -----------------

def _plateau_reference(metrics, lr, factor, patience, threshold, cooldown):
    sched = schedules.ReduceLROnPlateau(lr, mode="min", factor=factor, patience=patience,
                                        threshold=threshold, threshold_mode="rel", cooldown=cooldown)
    return np.array([sched.step(float(m)) for m in metrics], dtype=np.float64)


def _metric_sequence(rng, n, threshold):
    """A validation loss that improves, stalls, improves by less than the threshold, and rises."""
    value = float(rng.uniform(1.5, 3.0))  # away from 1, so a relative and an absolute margin differ
    out = [value]
    for _ in range(n - 1):
        kind = rng.choice(4, p=[0.3, 0.25, 0.3, 0.15])
        if kind == 0:    # a real improvement
            value *= 1 - threshold * float(rng.uniform(1.5, 4.0))
        elif kind == 1:  # better, but by less than the threshold
            value *= 1 - threshold * float(rng.uniform(0.1, 0.9))
        elif kind == 2:  # worse
            value *= 1 + float(rng.uniform(0.0, 0.05))
        out.append(value)  # kind 3: the same value again
    return np.array(out, dtype=np.float64)


def _drive_plateau(call, rng):
    for k in range(4):
        lr = float(rng.uniform(0.05, 1.0))
        factor = float(rng.uniform(0.3, 0.7))
        patience = int(rng.integers(1, 4))
        threshold = float(rng.uniform(0.01, 0.1))
        cooldown = 0 if k == 0 else int(rng.integers(1, 4))
        # A reduction needs patience + 1 bad epochs, so at most 8 happen in 8 * (patience + 1)
        # metrics: the lr stays >= 0.05 * 0.3^8 > 1e-6, far from torch's 1e-8 rule (which the
        # problem text says is never reached).
        metrics = _metric_sequence(rng, 8 * (patience + 1), threshold)
        call(metrics=metrics, lr=lr, factor=factor, patience=patience, threshold=threshold,
             cooldown=cooldown)


_PLATEAU_BASE = """
def plateau_lrs(metrics, lr, factor, patience, threshold, cooldown):
    best, bad, cooling, lrs = np.inf, 0, 0, []
    for metric in metrics:
        if {better}:
            best, bad = metric, 0
        else:
            bad += 1
{cooldown_block}        if bad {compare} patience:
            lr = lr * factor
{after_reduce}        lrs.append(lr)
    return np.array(lrs)
"""


def _plateau_variant(better="metric < best * (1 - threshold)", compare=">",
                     cooldown_block="        if cooling > 0:\n            cooling -= 1\n            bad = 0\n",
                     after_reduce="            cooling = cooldown\n            bad = 0\n"):
    return _PLATEAU_BASE.format(better=better, compare=compare, cooldown_block=cooldown_block,
                                after_reduce=after_reduce)


plateau_lrs = Problem(
    name="plateau_lrs", reference=_plateau_reference, drive=_drive_plateau,
    chapter=PLATEAU,
    variants=[
        Variant("ReduceLROnPlateau ignoring threshold (any decrease counts as an improvement)", PLATEAU,
                _plateau_variant(better="metric < best")),
        Variant("ReduceLROnPlateau ignoring cooldown (bad epochs count right after a reduction)", PLATEAU,
                _plateau_variant(cooldown_block="", after_reduce="            bad = 0\n")),
        Variant("patience off by one step (reducing when the bad epochs reach patience, not exceed it)",
                PLATEAU, _plateau_variant(compare=">=")),
        Variant("threshold used as an absolute margin (best - threshold) instead of a relative one",
                PLATEAU, _plateau_variant(better="metric < best - threshold")),
        Variant("each metric compared with the previous one instead of the best so far", PLATEAU, """
def plateau_lrs(metrics, lr, factor, patience, threshold, cooldown):
    previous, bad, cooling, lrs = np.inf, 0, 0, []
    for metric in metrics:
        if metric < previous * (1 - threshold):
            bad = 0
        else:
            bad += 1
        previous = metric
        if cooling > 0:
            cooling -= 1
            bad = 0
        if bad > patience:
            lr = lr * factor
            cooling = cooldown
            bad = 0
        lrs.append(lr)
    return np.array(lrs)
"""),
    ],
    rtol=1e-12, atol=0)  # both sides multiply by factor the same number of times


PROBLEMS = {p.name: p for p in (step_decay_lr, cosine_lr, warmup_cosine_lr, restart_lr, plateau_lrs)}
