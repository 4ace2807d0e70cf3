"""Hidden checks for assignment 08_capstone (chapter 11, Race and guide).

The student writes an optimizer, ``my_update(params, grads, state, step) -> (params, state)``,
which takes its learning rate from their own schedule ``my_lr(step)`` (defined in the same
cell). The drive runs the notebook's ``train_digits`` loop with it, ``RUNS`` times, with the
initial weights and the minibatch order drawn from the secret seed, then runs the same update on
a fixed shallow bowl. The ``assess`` hook (there is no reference to compare with) scores the mean
validation accuracy of the final weights against ``THRESHOLD``, in the grader's process; the
bowl catches an "update" that ignores its gradients (e.g. one returning stored weights).

**Only some calls are recorded.** The drive runs in the grader and calls ``my_update`` in the
sandbox over the wire (``autograder.grading.RemoteFunction``), so every step's gradients are
the grader's own. A transcript keeps the first step of each run (the secret initial weights),
the last step (whose output is the trained network) and every step of the small bowl; the
steps in between are ``Recorder.unrecorded`` calls, so the judge's transcript stays small. The
data, the MLP's initial weights and gradients, the minibatches and the validation accuracy are
``optimkit.digits``'s, as in the notebook. None of this module is ever in the sandbox.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from optimkit import digits, rules, schedules
from optimkit.clipping import global_norm

from .core import NOT_WRITTEN, DriveStopped, Problem, Transcript

# optimkit.digits is the data and the model here: with this set, the grader does not zero the
# answer for the word "optimkit" in the notebook (grading.py's text scan), so students may use
# optimkit.digits in cells of their own to experiment. Such cells fail when graded (optimkit is
# not in the sandbox), which costs nothing: they are not graded.
ALLOWED_IMPORTS = ["optimkit.digits"]
# The cell that runs train_digits (defined by the optimkit.digits cell, which is not run when
# grading: optimkit is not in the sandbox).
NOT_RUN_WHEN_GRADING = ("try_it",)
CHAPTER = "Chapter 11 (Race and guide)"
GUIDE = f"{CHAPTER}, section 'Choosing an optimizer and a schedule'"

# The training budget, as stated in the notebook (its set-up cell defines the same numbers).
LAYERS = (64, 32, 10)
EPOCHS = 10
BATCH_SIZE = 64
VAL_FRACTION, SPLIT_SEED = 0.2, 0  # the validation split the notebook shows
N_TRAIN = 1438                     # 1797 digits minus 359 held out
TOTAL_STEPS = EPOCHS * math.ceil(N_TRAIN / BATCH_SIZE)  # 230
THRESHOLD = 0.95    # mean validation accuracy for full marks
RUNS = 3            # trainings per grading, each with its own secret seeds

# A shallow bowl 0.5 * BOWL_CURVATURE * ||theta||^2, on shapes unlike the MLP's. It is flat enough
# that every learning rate that trains the MLP is stable on it (plain SGD trains the MLP up to
# lr ~ 5, and is stable on the bowl up to lr 2 / 0.01 = 200), and the bar is low enough that
# SGD at lr 0.01 (which reaches only ~0.8 accuracy) passes: (1 - 1e-4)^230 = 0.977.
BOWL_STEPS = TOTAL_STEPS
BOWL_CURVATURE = 0.01
BOWL_SHRINK = 0.99  # the norm must end below this fraction of its start
BOWL_START = (np.linspace(-0.3, 0.5, 12).reshape(3, 4), np.array([0.25, -0.15, 0.05]))

CALLS_PER_RUN = 2 + BOWL_STEPS  # recorded: first and last training step, every bowl step


# --- the data and the MLP: optimkit.digits, in the grader's process only ------------------------

@functools.cache
def _data():
    """The notebook's split: optimkit.digits.load_digits_split(0.2, seed=0)."""
    return digits.load_digits_split(VAL_FRACTION, seed=SPLIT_SEED)


@functools.cache
def _model():
    """The notebook's network; only its shapes matter here (the weights are passed in)."""
    return digits.MLP(LAYERS, seed=0)


def _init(seed: int) -> list[np.ndarray]:
    return digits.MLP(LAYERS, seed=seed).params


def _grads(params, idx) -> list[np.ndarray]:
    """The MLP's gradients at ``params`` on the training rows ``idx``."""
    data = _data()
    return _model().loss_and_grads(data.X_train[idx], data.y_train[idx], params=params)[1]


def _batches(order_seed: int) -> list[np.ndarray]:
    """The minibatches of all epochs, drawn as the notebook's train_digits draws them."""
    rng = np.random.default_rng(order_seed)
    return [idx for _ in range(EPOCHS) for idx in digits.minibatches(N_TRAIN, BATCH_SIZE, rng)]


def check_against_optimkit() -> None:
    """Raise if the budget stated above (as in the notebook) is not optimkit.digits' data set."""
    data = _data()
    assert len(data.y_train) == N_TRAIN, f"the training split has {len(data.y_train)} digits, not {N_TRAIN}"
    assert data.X_train.shape[1] == LAYERS[0], "the network's input size is not the digits' 64 pixels"


# --- the drive ----------------------------------------------------------------------------------

def _unrecorded_step(call, **kwargs):
    """A training step that stays out of the transcript; a failure names the step."""
    try:
        return call.unrecorded(**kwargs)
    except DriveStopped as exc:
        if str(exc) == NOT_WRITTEN:
            raise
        raise DriveStopped(f"at training step {kwargs['step']}: {exc}"[:300]) from None


def _unpack(out, params):
    """The new (params, state) from ``my_update``'s output; a clear message when malformed."""
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise DriveStopped(f"my_update must return a tuple (new_params, new_state), got {type(out).__name__}"
                         + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    new, state = out
    if not isinstance(new, (list, tuple)) or len(new) != len(params):
        raise DriveStopped(f"new_params must be a list of {len(params)} arrays (one per parameter), "
                         f"got {type(new).__name__}")
    for i, (a, p) in enumerate(zip(new, params)):
        if not isinstance(a, np.ndarray) or a.shape != np.shape(p):
            raise DriveStopped(f"new_params[{i}] must be an array of shape {np.shape(p)}, got "
                             f"{getattr(a, 'shape', type(a).__name__)}")
    return list(new), state


def _drive(call, rng):
    init_seed, order_seed = (int(s) for s in rng.integers(0, 2**31, size=2))
    batches = _batches(order_seed)
    params, state = _init(init_seed), None
    last = len(batches) - 1
    for step, idx in enumerate(batches):  # the loop of the notebook's train_digits
        if 0 < step < last:
            out = _unrecorded_step(call, params=params, grads=_grads(params, idx), state=state, step=step)
            params, state = _unpack(out, params)
            continue
        out = call(params=params, grads=_grads(params, idx), state=state, step=step)
        params, state = _unpack(out, params)
    params, state = [p.copy() for p in BOWL_START], None
    for step in range(BOWL_STEPS):
        grads = [BOWL_CURVATURE * p for p in params]
        params, state = _unpack(call(params=params, grads=grads, state=state, step=step), params)


# --- the judge's side ---------------------------------------------------------------------------

def _norm(arrays) -> float:
    return global_norm([np.asarray(a, dtype=np.float64) for a in arrays])


def _finite(arrays) -> bool:
    return all(np.all(np.isfinite(np.asarray(a, dtype=np.float64))) for a in arrays)


def _accuracy(params) -> float:
    data = _data()
    model = digits.MLP(LAYERS, seed=0)
    model.params = [np.asarray(p, dtype=np.float64) for p in params]
    return model.accuracy(data.X_val, data.y_val)


def credit(mean_accuracy: float) -> float:
    """Fraction of the points for a mean validation accuracy (as stated in the notebook)."""
    if mean_accuracy >= THRESHOLD:
        return 1.0
    return 0.1 + 0.7 * min(max((mean_accuracy - 0.5) / (THRESHOLD - 0.5), 0.0), 1.0)


def _assess(transcript: Transcript):
    calls = transcript.calls
    if transcript.aborted or len(calls) != RUNS * CALLS_PER_RUN:
        return 0.0, [f"✗ training stopped: {transcript.aborted or 'my_update was called fewer times than expected'}"]
    lines, accuracies, shrinks = [], [], []
    for r in range(RUNS):
        final = calls[r * CALLS_PER_RUN + 1].output[0]
        if _finite(final):
            accuracies.append(_accuracy(final))
        else:
            accuracies.append(0.0)
            lines.append(f"✗ training run {r + 1} ended with NaN or inf weights; it counts as accuracy 0. "
                         f"The learning rate is too large for this network: lower the peak, warm up, "
                         f"or clip the gradient norm")
        end = calls[(r + 1) * CALLS_PER_RUN - 1].output[0]
        shrinks.append(_norm(end) / _norm(BOWL_START) if _finite(end) else math.inf)
    mean = float(np.mean(accuracies))
    fraction = credit(mean)
    lines.insert(0, f"✓ trained {RUNS} times for {TOTAL_STEPS} steps, with secret initial weights and "
                    f"minibatch orders: validation accuracy {', '.join(f'{a:.3f}' for a in accuracies)}")
    if fraction == 1.0:
        lines.append(f"✓ mean validation accuracy {mean:.4f} ≥ {THRESHOLD}: full marks")
    else:
        lines.append(f"✗ mean validation accuracy {mean:.4f} < {THRESHOLD}: {fraction:.0%} of the points. "
                     f"Tune the peak learning rate and the schedule, and check your mean over several "
                     f"seeds (train_digits(my_update, init_seed=..., order_seed=...)); see {GUIDE}")
    worst = max(shrinks)
    bowl = f"the bowl {BOWL_CURVATURE / 2:g}‖θ‖² (grads = {BOWL_CURVATURE:g} · params, arrays of other shapes)"
    if worst < BOWL_SHRINK:
        lines.append(f"✓ follows its gradients: on {bowl} the norm fell to {worst:.1%} of its start")
    else:
        ended = f"{worst:.1%} of" if worst < 10 else f"{worst:.3g} times"
        fraction = min(fraction, 0.1)
        lines.append(f"✗ does not follow its gradients: on {bowl}, after {BOWL_STEPS} steps the norm is "
                     f"{ended} its start; it must shrink below {BOWL_SHRINK:.0%}. my_update must step "
                     f"along -grads for any list of arrays: capped at 10% of the points")
    mutated = sorted({name for c in calls for name in c.mutated})
    if mutated:
        fraction = max(fraction - 0.1, 0.0)
        lines.append(f"✗ modifies its input(s) {', '.join(mutated)} in place (10% off): return new arrays "
                     f"and a new state (e.g. m = beta * m + (1 - beta) * g, not m *= beta)")
    else:
        lines.append("✓ leaves its inputs unchanged")
    return fraction, lines


# The reference is documentation only (assess judges by the threshold): optimkit's Adam under
# warmup_cosine, the same rule as the solution notebook's answer.
def _reference(params, grads, state, step):
    if state is None:
        state = rules.adam_init(params)
    lr = schedules.warmup_cosine(1e-2, 20, TOTAL_STEPS, 1e-4)(step)
    return rules.adam_update(grads, state, params, lr=lr)


my_update = Problem(
    name="my_update", reference=_reference, drive=_drive, chapter=GUIDE,
    seeds=RUNS, assess=_assess)

PROBLEMS = {p.name: p for p in (my_update,)}
