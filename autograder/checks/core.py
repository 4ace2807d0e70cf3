"""The vocabulary of the hidden checks: a problem, its drive, the transcript, the judge.

* A :class:`Problem` is one function the student writes: its reference (built on ``optimkit``),
  its known wrong :class:`Variant` s, tolerances, and its **drive**.
* The **drive** (``Problem.drive(call, rng)``) draws secret inputs from ``rng`` and calls the
  function under test through ``call``, a :class:`Recorder`, as often as it likes.
* :func:`record` runs the drive and returns what came back as plain data, a :class:`Transcript`
  (outputs, errors, mutated inputs). It trusts nothing and decides nothing. :func:`record_answer`
  does the same for a student's answer in this process, with its output swallowed and
  ``optimkit``/``torch`` unimportable.
* :func:`judge` records the same drive with the reference and with each variant, compares, and
  awards partial credit per property of the problem's points: it runs, the outputs have the
  right structure (shape, dtype, finite), inputs are not mutated, and the values agree. When
  values disagree it names the variant the answer matches and where the book explains it.
* A :class:`Replay` plays a recorded call back, so a visible test can be re-run on what the
  student's function returned.

In plain nbgrader the drive runs inside the student's kernel (the hidden test cell calls
``autograder.checks.score_answer``). The grading pipeline runs the drive in its own process and
only the student's function in the sandbox, called over a pipe one call at a time
(``autograder.grading.RemoteFunction``): the seed, the drives and the references never enter the
sandbox, and nothing decided there is trusted. This module is mounted in the sandbox (the runner
records visible tests with :class:`Recorder`), so it holds no reference and imports nothing but
NumPy.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import io
import os
import sys
import types
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

SEED_ENV = "DESCENT_GRADING_SEED"
# The answer must be the student's own work: these cannot be imported while it is recorded,
# and an answer that reaches them scores zero. (descent, the book's package, holds the textbook
# forms of the optimizers.) A problem whose answer is written with torch lists it in its
# ``packages`` (assignment 09: a torch.optim.Optimizer subclass): then torch is allowed there,
# and only there; optimkit and descent never are.
FORBIDDEN = ("optimkit", "descent", "torch")
BOOK = "the book"
NOT_WRITTEN = "NotImplementedError: not written yet (the stub still raises)"

# Credit per property, as fractions of the problem's points.
WEIGHTS = {"runs": 0.1, "structure": 0.15, "no_mutation": 0.1, "values": 0.65}


class DriveStopped(Exception):
    """Raised inside a drive when the student's function failed; ends the drive."""


class StudentError(Exception):
    """A call of the student's function failed in the sandbox; the message is what it raised
    there ("ValueError: ...")."""


@dataclass
class Call:
    """One call of the function under test, as recorded."""

    output: Any = None          # arrays (copied) or a tuple/list of them, or a scalar
    error: str | None = None    # "ValueError: ..." if the call raised
    mutated: list[str] = field(default_factory=list)  # names of inputs changed in place
    inputs: dict = field(default_factory=dict)        # the keyword arguments, as passed
    args: list = field(default_factory=list)          # positional arguments (visible tests use them)
    after: dict = field(default_factory=dict)         # mutated inputs' values after the call


@dataclass
class Transcript:
    """What a drive got back from the function under test, call by call."""

    calls: list[Call] = field(default_factory=list)
    aborted: str | None = None   # why the drive stopped early
    forbidden: str | None = None  # "imports optimkit" and the like
    stdout: str = ""


@dataclass
class Variant:
    """A known wrong answer, written as a student would write it.

    ``code`` defines a function named like the problem; the judge compiles it to
    recognise the mistake, and the demo corpus pastes it into a submission.
    """

    name: str     # "Adam without bias correction"
    where: str    # "Chapter 5 (Adam), section 'Bias correction'"
    code: str

    def function(self, problem_name: str) -> Callable:
        namespace = {"np": np}
        exec(compile(self.code, f"<variant {self.name}>", "exec"), namespace)  # noqa: S102 - our own code
        return namespace[problem_name]


@dataclass
class Problem:
    """What a hidden check knows about one function the student writes. Its points are not
    here: they are its hidden test cell's, in solutions/ (``course.points``)."""

    name: str        # the function's name, and the id of its answer cell
    reference: Callable
    drive: Callable  # drive(call, rng): draws inputs from rng, calls `call(**kwargs)` as often as it likes
    variants: list[Variant] = field(default_factory=list)
    rtol: float = 1e-7
    atol: float = 1e-10
    mutable: tuple[str, ...] = ()  # inputs the function is allowed to change in place
    chapter: str = ""             # where the book explains the rule
    seeds: int = 3                # independent drives per grading
    # For problems judged by a threshold rather than by a reference (e.g. "reaches 95%
    # validation accuracy"): assess(transcript) -> (fraction of points in [0, 1], lines).
    assess: Callable | None = None
    # Packages the answer is written with besides NumPy, e.g. ("torch",): never forbidden for
    # this problem, and the grading sandbox provides them (with their dependencies).
    packages: tuple[str, ...] = ()

    @property
    def forbidden(self) -> tuple[str, ...]:
        """The modules this problem's answer may not use: :data:`FORBIDDEN` but its packages."""
        return tuple(m for m in FORBIDDEN if m not in self.packages)


def random_shape(rng, max_axes: int = 2) -> tuple[int, ...]:
    """A small array shape for a drive: 1 to ``max_axes`` axes of length 1 to 4."""
    return tuple(int(s) for s in rng.integers(1, 5, size=rng.integers(1, max_axes + 1)))


def copy_value(value):
    """A deep copy of arrays inside lists, tuples and dicts (other objects are shared)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(copy_value(v) for v in value)
    if isinstance(value, dict):
        return {k: copy_value(v) for k, v in value.items()}
    return value


def unchanged(a, b) -> bool:
    """Whether ``a`` still equals its earlier copy ``b`` (arrays, inside lists and tuples)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and np.array_equal(a, b, equal_nan=True))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(unchanged(x, y) for x, y in zip(a, b))
    return True  # scalars are immutable


class Recorder:
    """Wraps the function under test: records outputs, errors and mutations. A drive calls it as
    ``call(**kwargs)``; :meth:`unrecorded` makes a call that stays out of the transcript."""

    def __init__(self, fn: Callable, mutable: tuple[str, ...]):
        self.fn, self.mutable, self.transcript = fn, mutable, Transcript()

    def __call__(self, *args, **kwargs):
        before = {k: copy_value(v) for k, v in kwargs.items()}
        before_args = [copy_value(a) for a in args]
        call = Call(inputs=before, args=before_args)
        self.transcript.calls.append(call)
        try:
            out = self.fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - any failure of student code is data
            call.error = failure(exc)
            raise DriveStopped(call.error) from None
        call.mutated = [k for k, v in kwargs.items() if k not in self.mutable and not unchanged(v, before[k])]
        call.mutated += [f"argument {i + 1}" for i, (a, b) in enumerate(zip(args, before_args)) if not unchanged(a, b)]
        call.after = {k: copy_value(kwargs[k]) for k in call.mutated if k in kwargs}
        call.after.update({f"#{i}": copy_value(a) for i, (a, b) in enumerate(zip(args, before_args)) if not unchanged(a, b)})
        call.output = copy_value(out)
        return out

    def unrecorded(self, **kwargs):
        """Call the function without recording the call (e.g. the middle of a long training run);
        a failure stops the drive all the same, with :class:`DriveStopped`."""
        try:
            return self.fn(**kwargs)
        except BaseException as exc:  # noqa: BLE001 - any failure of student code is data
            raise DriveStopped(failure(exc)) from None


def failure(exc: BaseException) -> str:
    """What a failed call of the function under test is recorded as ("ValueError: ..."); a
    :class:`DriveStopped` from deeper down is passed on as it is."""
    if isinstance(exc, DriveStopped):
        raise exc
    if isinstance(exc, NotImplementedError):
        return NOT_WRITTEN
    if isinstance(exc, StudentError):
        return NOT_WRITTEN if str(exc).startswith("NotImplementedError") else str(exc)[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


class _BlockImports(importlib.abc.MetaPathFinder):
    def __init__(self, forbidden: tuple[str, ...] = FORBIDDEN):
        self.forbidden = forbidden

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.forbidden:
            raise ImportError(f"{name} cannot be imported while your answer is checked: "
                              f"write the rule yourself")
        return None


@contextlib.contextmanager
def _forbidden_modules_hidden(forbidden: tuple[str, ...] = FORBIDDEN):
    """Make optimkit and torch (``forbidden``) unimportable while an answer is recorded."""
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] in forbidden}
    blocker = _BlockImports(forbidden)
    sys.meta_path.insert(0, blocker)
    try:
        yield
    finally:
        sys.meta_path.remove(blocker)
        sys.modules.update(saved)


def uses_forbidden(fn: Callable, _seen=None, forbidden: tuple[str, ...] = FORBIDDEN) -> str | None:
    """Name the forbidden module a function reaches through its globals, if any."""
    seen = _seen if _seen is not None else set()
    if id(fn) in seen:
        return None
    seen.add(id(fn))
    code = getattr(fn, "__code__", None)
    if code is None:
        module = getattr(fn, "__module__", "") or ""
        return module.split(".")[0] if module.split(".")[0] in forbidden else None
    names = set(code.co_names)
    for const in code.co_consts:  # nested functions and lambdas
        if isinstance(const, types.CodeType):
            names |= set(const.co_names)
    for name in names:
        value = fn.__globals__.get(name)
        if value is None:
            continue
        module = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", "") or ""
        if module.split(".")[0] in forbidden:
            return module.split(".")[0]
        if isinstance(value, (types.FunctionType, type)) and value.__module__ == fn.__module__:
            found = uses_forbidden(value, seen, forbidden) if isinstance(value, types.FunctionType) \
                else _class_uses_forbidden(value, seen, forbidden)
            if found:
                return found
    return None


def _class_uses_forbidden(cls: type, seen: set, forbidden: tuple[str, ...]) -> str | None:
    """A class of the answer's own (a torch.optim.Optimizer subclass): its bases and methods."""
    for base in cls.__mro__[1:]:
        if (base.__module__ or "").split(".")[0] in forbidden:
            return base.__module__.split(".")[0]
    for value in vars(cls).values():
        value = getattr(value, "__func__", value)  # staticmethod, classmethod
        value = getattr(value, "__wrapped__", value)  # a decorator that kept the function (no_grad)
        if isinstance(value, types.FunctionType):
            found = uses_forbidden(value, seen, forbidden)
            if found:
                return found
    return None


def secret_seed(seed: int | None = None) -> int:
    """``seed``, else the course's secret seed (set in the environment), else a random one."""
    if seed is not None:
        return seed
    if os.environ.get(SEED_ENV):
        return int(os.environ[SEED_ENV])
    return int.from_bytes(os.urandom(4), "little")


def record(problem: Problem, fn: Callable, seed: int) -> Transcript:
    """Run ``problem``'s drive with ``fn`` for each sub-seed; the whole transcript."""
    recorder = Recorder(fn, problem.mutable)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # A warning on stderr would zero an nbgrader cell: references and variants stay quiet too.
        warnings.simplefilter("ignore")
        _run_drive(problem, recorder, seed)
    return recorder.transcript


def _run_drive(problem: Problem, recorder: Recorder, seed: int) -> None:
    for k in range(problem.seeds):
        try:
            problem.drive(recorder, np.random.default_rng([seed, k]))
        except DriveStopped as exc:
            recorder.transcript.aborted = str(exc)
            break
        except Exception as exc:  # noqa: BLE001 - the drive itself choked on the answer's output
            recorder.transcript.aborted = f"{type(exc).__name__}: {exc}"[:300]
            break


def record_answer(problem: Problem, fn: Callable, seed: int | None = None) -> Transcript:
    """Record the student's ``fn`` in this process: stdout/stderr and warnings swallowed,
    optimkit and torch unimportable (torch is allowed where the problem's ``packages`` name it),
    and a note when ``fn`` reaches them through its globals."""
    seed = secret_seed(seed)
    forbidden = uses_forbidden(fn, forbidden=problem.forbidden) if callable(fn) else None
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), \
            warnings.catch_warnings(), np.errstate(all="ignore"), _forbidden_modules_hidden(problem.forbidden):
        warnings.simplefilter("ignore")  # a warning on stderr would zero the cell in nbgrader
        if not callable(fn):
            transcript = Transcript(aborted=f"{problem.name} is not a function (got {type(fn).__name__})")
        else:
            transcript = record(problem, fn, seed)
    transcript.forbidden = forbidden
    transcript.stdout = out.getvalue()[-2000:]
    return transcript


# --- the judge ------------------------------------------------------------------------------


def _leaves(value) -> list:
    if isinstance(value, (list, tuple)):
        return [leaf for v in value for leaf in _leaves(v)]
    if isinstance(value, dict):
        return [leaf for k in sorted(value) for leaf in _leaves(value[k])]
    return [value]


def _structure_problem(got, want) -> str | None:
    """Why ``got`` does not have the structure of ``want`` (None when it does)."""
    if isinstance(want, (list, tuple)):
        if not isinstance(got, (list, tuple)) or len(got) != len(want):
            n = len(got) if isinstance(got, (list, tuple)) else 1
            return f"expected {len(want)} values returned as a tuple, got {n} ({type(got).__name__})"
        for i, (g, w) in enumerate(zip(got, want)):
            issue = _structure_problem(g, w)
            if issue:
                return f"item {i}: {issue}"
        return None
    if isinstance(want, np.ndarray):
        if not isinstance(got, np.ndarray):
            return f"expected a NumPy array, got {type(got).__name__}"
        if got.shape != want.shape:
            return f"expected shape {want.shape}, got {got.shape}"
        if got.dtype != want.dtype:
            return f"expected dtype {want.dtype}, got {got.dtype}"
        if np.all(np.isfinite(want)) and not np.all(np.isfinite(got)):
            return "the result contains NaN or inf where the reference is finite"
        return None
    if isinstance(want, (float, int, np.floating, np.integer)) and not isinstance(want, bool):
        if not isinstance(got, (float, int, np.floating, np.integer)) or isinstance(got, bool):
            return f"expected a number, got {type(got).__name__}"
        return None
    if isinstance(want, str):
        return None if isinstance(got, str) else f"expected a string, got {type(got).__name__}"
    return None


def _close(got, want, rtol, atol) -> bool:
    g, w = _leaves(got), _leaves(want)
    if len(g) != len(w):
        return False
    for a, b in zip(g, w):
        if isinstance(b, str):
            if a != b:
                return False
            continue
        try:
            a = np.asarray(a, dtype=float)
            b = np.asarray(b, dtype=float)
        except (TypeError, ValueError):
            return False
        if a.shape != b.shape or not np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True):
            return False
    return True


def _matches(transcript: Transcript, other: Transcript, rtol, atol) -> bool:
    """Same outputs call by call; a run that crashed matches one that crashed the same way
    (same exception type at the same call), so mistakes that raise can be named too."""
    if bool(transcript.aborted) != bool(other.aborted) or len(transcript.calls) != len(other.calls):
        return False
    for mine, theirs in zip(transcript.calls, other.calls):
        if (mine.error is None) != (theirs.error is None):
            return False
        if mine.error is not None:
            if mine.error.split(":")[0] != theirs.error.split(":")[0]:
                return False
        elif not _close(mine.output, theirs.output, rtol, atol):
            return False
    return True


@dataclass
class Verdict:
    problem: str
    points: float
    score: float
    lines: list[str]
    matched_variant: str | None = None
    total: float | None = None   # the problem's points with its visible tests' (course.total_points)

    def report(self) -> str:
        head = f"{self.problem}: {self.score:.2f} / {self.points:g} points"
        if self.total is not None and self.total != self.points:  # say what the other points are
            head = (f"{self.problem}, hidden checks: {self.score:.2f} / {self.points:g} points "
                    f"(of the problem's {self.total:g}; its visible tests give the other {self.total - self.points:g})")
        return "\n".join([head] + [f"  {line}" for line in self.lines])


def same_value(a, b) -> bool:
    """Equal values (arrays by content, NaN equal to NaN)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)  # NaN equals NaN here


def judge(problem: Problem, transcript: Transcript, seed: int, points: float) -> Verdict:
    """Score ``transcript`` out of ``points`` (the hidden test cell's): compare it with the
    reference's and the known wrong variants' on the same drive and seed."""
    P = points
    if transcript.forbidden:
        return Verdict(problem.name, P, 0.0, [
            f"✗ your answer uses {transcript.forbidden}: this problem asks you to write the rule "
            f"yourself with {' and '.join(('NumPy',) + problem.packages)}, so it scores 0. Remove the {transcript.forbidden} import and "
            f"implement the update from the formula in {problem.chapter or BOOK}."])
    if problem.assess is not None:
        fraction, lines = problem.assess(transcript)
        return Verdict(problem.name, P, round(P * min(max(fraction, 0.0), 1.0), 6), lines)
    reference = record(problem, problem.reference, seed)
    if reference.aborted:  # a bug in the check, not in the answer: say so loudly
        raise RuntimeError(f"reference for {problem.name} failed: {reference.aborted}")
    lines, score = [], 0.0
    calls = transcript.calls
    runs = not transcript.aborted and len(calls) == len(reference.calls)
    if runs:
        score += WEIGHTS["runs"] * P
        lines.append("✓ runs on every input")
    else:
        done = sum(1 for c in calls if c.error is None)
        why = transcript.aborted or "stopped early"
        lines.append(f"✗ failed after {done} successful call(s): {why}")
    # Structure, mutation and values are judged on the calls that completed, so one wrong
    # detail that breaks a later call does not zero the whole problem.
    paired = [(c, r) for c, r in zip(calls, reference.calls) if c.error is None]
    structure_issues = [s for s in (_structure_problem(c.output, r.output) for c, r in paired) if s]
    if paired and not structure_issues:
        score += WEIGHTS["structure"] * P
        lines.append("✓ returns the right shapes and dtypes, all finite")
    elif structure_issues:
        lines.append(f"✗ {structure_issues[0]}")
    mutated = sorted({name for c in calls for name in c.mutated})
    if paired and not mutated:
        score += WEIGHTS["no_mutation"] * P
        lines.append("✓ leaves its inputs unchanged")
    elif mutated:
        lines.append(f"✗ modifies its input(s) {', '.join(mutated)} in place: work on copies "
                     f"(e.g. theta = theta - lr * grad, not theta -= lr * grad)")
    matched = None
    if runs and _matches(transcript, reference, problem.rtol, problem.atol):
        score += WEIGHTS["values"] * P
        lines.append(f"✓ values agree with the reference on {len(calls)} secret inputs")
    else:
        good = sum(_close(c.output, r.output, problem.rtol, problem.atol) for c, r in paired)
        # Half the value credit, in proportion, for the calls that agree (e.g. before a state bug).
        score += WEIGHTS["values"] * P * 0.5 * good / len(reference.calls)
        for variant in problem.variants:
            if _matches(transcript, record(problem, variant.function(problem.name), seed),
                        problem.rtol, problem.atol):
                matched = variant.name
                lines.append(f"✗ values differ from the reference; they match a known mistake: "
                             f"{variant.name}. See {variant.where}.")
                break
        else:
            first_bad = next((i for i, (c, r) in enumerate(paired)
                              if not _close(c.output, r.output, problem.rtol, problem.atol)), None)
            where = f" (first difference at call {first_bad + 1})" if first_bad is not None else ""
            lines.append(f"✗ values agree on {good} of {len(reference.calls)} secret inputs{where}; "
                         f"compare your rule with {problem.chapter or BOOK}")
    return Verdict(problem.name, P, round(score, 6), lines, matched)


def quiet_tracebacks() -> None:
    """In IPython, keep any traceback from this cell to one line: no hidden code shown."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        shell.InteractiveTB.set_mode("Minimal")


class Replay:
    """A function played back from its recorded calls (:class:`Call`): each call must come with
    the recorded arguments, and gets the recorded output (or error) and in-place changes back.
    Visible tests are re-run in the grader against replays of the student's functions."""

    def __init__(self, name: str, calls: list[Call]):
        self.name, self.calls, self.index = name, calls, 0

    def __call__(self, *args, **kwargs):
        if self.index >= len(self.calls):
            raise AssertionError(f"{self.name} was called more often than in your run")
        call = self.calls[self.index]
        self.index += 1
        same = len(args) == len(call.args) and all(same_value(a, b) for a, b in zip(args, call.args)) \
            and set(kwargs) == set(call.inputs) and all(same_value(kwargs[k], call.inputs[k]) for k in kwargs)
        if not same:
            raise AssertionError(f"{self.name} was called with other arguments than in your run")
        if call.error is not None:
            raise RuntimeError(call.error)
        for key, value in call.after.items():  # reproduce in-place changes the call made
            target = args[int(key[1:])] if key.startswith("#") else kwargs.get(key)
            if isinstance(target, np.ndarray) and isinstance(value, np.ndarray) and target.shape == value.shape:
                target[...] = value
        return copy_value(call.output)
