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
steps in between go through the recorder's underlying function (``core.Recorder.fn``)
unrecorded, so the judge's transcript stays small. The data and the MLP's gradients are a
NumPy copy of ``optimkit.digits`` (same data file, split, initialisation and arithmetic: bit
for bit the same numbers, see ``_check_against_optimkit``); the validation accuracy is
computed with ``optimkit.digits`` itself. None of this module is ever in the sandbox.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os

import numpy as np

from .core import NOT_WRITTEN, ProbeAbort, Problem, StudentError, Transcript, grade as _grade

ASSIGNMENT = "08_capstone"
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


# --- the data and the MLP, as optimkit.digits computes them -------------------------------------

@functools.cache
def _data():
    """(X_train, y_train), standardised as optimkit.digits.load_digits_split(0.2, seed=0)."""
    spec = importlib.util.find_spec("sklearn")  # the bundled file, without importing scikit-learn
    path = os.path.join(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    raw = np.loadtxt(path, delimiter=",")
    X, y = raw[:, :-1].astype(np.float64), raw[:, -1].astype(np.int64)
    n = len(y)
    n_val = min(max(round(n * VAL_FRACTION), 1), n - 1)
    tr = np.random.default_rng(SPLIT_SEED).permutation(n)[n_val:]
    mean, std = X[tr].mean(axis=0), X[tr].std(axis=0)
    std[std == 0] = 1.0
    X_train, y_train = (X[tr] - mean) / std, y[tr]
    X_train.flags.writeable = y_train.flags.writeable = False
    return X_train, y_train


def _init(seed: int) -> list[np.ndarray]:
    """optimkit.digits.MLP(LAYERS, seed).params (tanh: Xavier for every layer)."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(LAYERS[:-1], LAYERS[1:]):
        params += [rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), (fan_in, fan_out)), np.zeros(fan_out)]
    return params


def _grads(params, idx) -> list[np.ndarray]:
    """optimkit.digits.MLP.loss_and_grads's gradients on the training rows ``idx``."""
    X, y = _data()
    X, y = X[idx], y[idx]
    n = len(X)
    with np.errstate(all="ignore"):  # weights gone to inf/NaN give NaN gradients, not warnings
        acts, n_layers = [X], len(params) // 2
        for k in range(n_layers):
            z = acts[-1] @ params[2 * k] + params[2 * k + 1]
            if k < n_layers - 1:
                acts.append(np.tanh(z))
        z = z - z.max(axis=1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        delta = np.exp(logp)
        delta[np.arange(n), y] -= 1.0
        delta /= n
        grads = [None] * len(params)
        for k in range(n_layers - 1, -1, -1):
            grads[2 * k] = acts[k].T @ delta
            grads[2 * k + 1] = delta.sum(axis=0)
            if k:
                delta = delta @ params[2 * k].T
                delta *= 1.0 - acts[k] ** 2
    return grads


def _batches(order_seed: int) -> list[np.ndarray]:
    """The minibatches of all epochs, as optimkit.digits.minibatches draws them."""
    rng = np.random.default_rng(order_seed)
    out = []
    for _ in range(EPOCHS):
        order = rng.permutation(N_TRAIN)
        out += [order[start:start + BATCH_SIZE] for start in range(0, N_TRAIN, BATCH_SIZE)]
    return out


def _check_against_optimkit(seeds=(0, 1, 2)) -> None:
    """Raise if the NumPy copy above drifts from optimkit.digits (run it after changing either side)."""
    from optimkit import digits

    data = digits.load_digits_split(VAL_FRACTION, seed=SPLIT_SEED)
    X, y = _data()
    assert np.array_equal(X, data.X_train) and np.array_equal(y, data.y_train), "data differ"
    for seed in seeds:
        model = digits.MLP(LAYERS, seed=seed)
        assert all(np.array_equal(a, b) for a, b in zip(_init(seed), model.params)), "init differs"
        batches = _batches(seed)
        rng = np.random.default_rng(seed)
        expected = [b for _ in range(EPOCHS) for b in digits.minibatches(N_TRAIN, BATCH_SIZE, rng)]
        assert all(np.array_equal(a, b) for a, b in zip(batches, expected)), "minibatches differ"
        _, want = model.loss_and_grads(data.X_train[batches[0]], data.y_train[batches[0]])
        assert all(np.array_equal(a, b) for a, b in zip(_grads(model.params, batches[0]), want)), "grads differ"


# --- the drive ----------------------------------------------------------------------------------

def _unrecorded(call):
    """The student's function without the recorder (core.Recorder.fn)."""
    return call.fn


def _run_unrecorded(fn, **kwargs):
    try:
        return fn(**kwargs)
    except ProbeAbort:
        raise
    except NotImplementedError:
        raise ProbeAbort(NOT_WRITTEN) from None
    except StudentError as exc:  # raised in the sandbox: the message names the exception
        raise ProbeAbort(NOT_WRITTEN if str(exc).startswith("NotImplementedError")
                         else f"at training step {kwargs['step']}: {exc}"[:300]) from None
    except Exception as exc:  # noqa: BLE001 - a failure of student code is a result
        raise ProbeAbort(f"at training step {kwargs['step']}: {type(exc).__name__}: {exc}"[:300]) from None


def _unpack(out, params):
    """The new (params, state) from ``my_update``'s output; a clear message when malformed."""
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise ProbeAbort(f"my_update must return a tuple (new_params, new_state), got {type(out).__name__}"
                         + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
    new, state = out
    if not isinstance(new, (list, tuple)) or len(new) != len(params):
        raise ProbeAbort(f"new_params must be a list of {len(params)} arrays (one per parameter), "
                         f"got {type(new).__name__}")
    for i, (a, p) in enumerate(zip(new, params)):
        if not isinstance(a, np.ndarray) or a.shape != np.shape(p):
            raise ProbeAbort(f"new_params[{i}] must be an array of shape {np.shape(p)}, got "
                             f"{getattr(a, 'shape', type(a).__name__)}")
    return list(new), state


def _drive(call, rng):
    init_seed, order_seed = (int(s) for s in rng.integers(0, 2**31, size=2))
    student = _unrecorded(call)
    batches = _batches(order_seed)
    params, state = _init(init_seed), None
    last = len(batches) - 1
    for step, idx in enumerate(batches):  # the loop of the notebook's train_digits
        if 0 < step < last:
            out = _run_unrecorded(student, params=params, grads=_grads(params, idx), state=state, step=step)
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
    return math.sqrt(sum(float(np.sum(np.asarray(a, dtype=np.float64) ** 2)) for a in arrays))


def _finite(arrays) -> bool:
    return all(np.all(np.isfinite(np.asarray(a, dtype=np.float64))) for a in arrays)


def _accuracy(params) -> float:
    from optimkit import digits  # in the grader's process only

    data = digits.load_digits_split(VAL_FRACTION, seed=SPLIT_SEED)
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
    from optimkit import rules, schedules

    if state is None:
        state = rules.adam_init(params)
    lr = schedules.warmup_cosine(1e-2, 20, TOTAL_STEPS, 1e-4)(step)
    return rules.adam_update(grads, state, params, lr=lr)


my_update = Problem(
    name="my_update", points=6, reference=_reference, drive=_drive, chapter=GUIDE,
    seeds=RUNS, assess=_assess)

PROBLEMS = {p.name: p for p in (my_update,)}


def grade(name: str, fn, seed: int | None = None) -> float:
    return _grade(PROBLEMS[name], fn, seed)
