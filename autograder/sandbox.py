"""An operating-system boundary around student code (bubblewrap).

The sandbox is an empty root filesystem holding only what the runner needs, read-only:

* ``/usr`` (the C libraries) and the Python installation (``sys.base_prefix``);
* ``/opt/descent/site``: the files of NumPy, IPython and matplotlib and their dependencies,
  taken one by one from site-packages (nothing else installed there: no nbgrader, no optimkit;
  torch and its dependencies only for an assignment whose answers are written with it, 09);
* ``/opt/descent/lib/autograder``: the runner's three files (``runner.py``, ``wire.py`` and
  ``checks/core.py``); no checks module, no reference, no repository;
* a fresh ``/proc`` and ``/dev``, and ``/tmp`` as a size-capped tmpfs (the runner's home and
  working folder; it vanishes with the sandbox, so no job folder is left anywhere).

The notebook, the grader's calls and the results travel over the sandbox's stdin and stdout
(:mod:`autograder.wire`), so nothing of the grader's is on disk where student code could look.
Student code has no capabilities in any user namespace: bubblewrap runs it in a new user
namespace, drops every capability and forbids nested user namespaces (``--disable-userns``),
so mounts cannot be removed or changed. New PID, network, IPC, UTS and cgroup namespaces;
``--die-with-parent`` and the PID namespace tie every process to the grader: kill -9 of the
grader (or of the worker that started the sandbox) kills the whole sandbox.

Isolation modes (``detect()`` picks the strongest that works here):

``user``    the grader runs as root: each worker slot runs code as its own unprivileged
            system user (``descent-sandbox-N``), so process limits count that user alone.
``userns``  not root: the same sandbox as the grader's own user (outside the namespace).
``none``    no bubblewrap or no user namespaces: refused unless explicitly allowed
            (``--isolation none --allow-unsandboxed``); code runs as the grader.
"""

from __future__ import annotations

import importlib.metadata
import os
import pwd
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER_PREFIX = "descent-sandbox-"
LIB = "/opt/descent/lib"
SITE = "/opt/descent/site"
HOME = "/tmp"
SANDBOX_UID = 1000  # the uid student code sees; outside it is the sandbox user (or the grader)
# The runner's own code: the only project files a sandbox sees.
RUNNER_FILES = {"autograder/runner.py": ROOT / "autograder" / "runner.py",
                "autograder/wire.py": ROOT / "autograder" / "wire.py",
                "autograder/checks/core.py": ROOT / "autograder" / "checks" / "core.py"}
# Distributions student code may import (with their dependencies).
RUNTIME = ("numpy", "ipython", "matplotlib")
# Distributions an assignment may add for its own sandbox (its problems' ``packages``); any
# other name is refused, so a checks module cannot mount optimkit or the repository by mistake.
OPTIONAL = ("torch",)
# What the runner imports of such a package before the first cell, off every cell's clock: torch
# loads its compiler (torch._dynamo) when the first optimizer is built, seconds that would
# otherwise fall inside a student's cell, and an import cut short by the cell's timer leaves
# torch half-initialised for the rest of the notebook.
PRELOAD = {"torch": ("torch", "torch._dynamo")}
INSTALL_HINT = "install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)"


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot start on this machine: an environment problem, never a grade."""


@dataclass(frozen=True)
class Limits:
    cell_timeout: float = 30.0          # seconds per cell (enforced inside the runner)
    wall_clock: float = 120.0           # seconds for the whole notebook (enforced here)
    memory: int = 3 * 2**30             # bytes of address space for the notebook's own use
    # More address space while an assignment's packages load, before any student code runs: the
    # runner then lowers the limit to what they mapped plus ``memory``. torch's default (CUDA)
    # wheel from PyPI maps 3.2 GB of libraries at import, the CPU wheel 0.6 GB.
    packages_memory: int = 8 * 2**30
    processes: int = 64                 # processes/threads of the sandbox user
    file_size: int = 64 * 2**20         # bytes per file written
    disk: int = 64 * 2**20              # bytes in the sandbox's /tmp, all files together
    cpu: int = 300                      # CPU seconds


WARNING_NONE = (
    "WARNING: no operating-system isolation: student code runs as the grader's own user, "
    "with only resource limits, and can read everything the grader can (solutions/, the "
    "gradebook). Never use this for untrusted submissions; " + INSTALL_HINT + ".")


# --- what is mounted ------------------------------------------------------------------------------

def _requirement_names(dist) -> list[str]:
    """Names of the distributions ``dist`` needs (no extras)."""
    from packaging.requirements import Requirement

    names = []
    for text in dist.requires or []:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            names.append(req.name)
    return names


@cache
def site_entries(packages: tuple[str, ...] = ()) -> tuple[tuple[str, str], ...]:
    """(source, name) of every top-level site-packages entry of RUNTIME and its dependencies,
    and of ``packages`` (names from OPTIONAL: torch for assignment 09) and theirs."""
    unknown = [p for p in packages if p not in OPTIONAL]
    if unknown:
        raise ValueError(f"the sandbox can add only {', '.join(OPTIONAL)} to its packages, "
                         f"not {', '.join(unknown)}: list it in sandbox.OPTIONAL if it is safe to give students")
    seen, todo, entries = set(), list(RUNTIME) + list(packages), {}
    while todo:
        name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional dependency that is not installed
        base = Path(dist.locate_file("")).resolve()
        for file in dist.files or []:
            top = Path(file).parts[0]
            if top in ("..", "__pycache__") or top.endswith(".pth"):
                continue
            source = base / top
            if source.exists():
                entries[top] = str(source)
        todo += _requirement_names(dist)
    return tuple(sorted((source, top) for top, source in entries.items()))


def mounts(packages: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(source, destination) of every read-only bind in the sandbox (with ``packages``' files)."""
    binds = [("/usr", "/usr")]
    base = Path(sys.base_prefix).resolve()
    if not (str(base) + "/").startswith("/usr/"):
        binds.append((str(base), str(base)))
    binds += [(str(path), f"{LIB}/{name}") for name, path in RUNNER_FILES.items()]
    binds += [(source, f"{SITE}/{top}") for source, top in site_entries(tuple(sorted(packages)))]
    return binds


def python() -> str:
    """The interpreter the sandbox runs: the base installation's, not the venv's."""
    for name in (f"python{sys.version_info.major}.{sys.version_info.minor}", "python3"):
        path = Path(sys.base_prefix) / "bin" / name
        if path.exists():
            return str(path.resolve())
    return str(Path(sys.executable).resolve())


def python_argv(module: str, mode: str = "userns") -> list[str]:
    """Run ``module`` with only the sandbox's own folders on sys.path (-I -S: no site-packages,
    no user site, no PYTHON* variables). With no sandbox: the grader's own Python and code."""
    if mode == "none":
        return [sys.executable, "-m", module]
    code = (f"import sys; sys.path[:0] = [{LIB!r}, {SITE!r}]; import runpy; "
            f"runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")
    return [python(), "-I", "-S", "-c", code]


# --- the modes --------------------------------------------------------------------------------------

def ensure_user(slot: int) -> tuple[int, int]:
    """The uid/gid of worker slot ``slot``'s sandbox user, created when missing (root only)."""
    name = f"{USER_PREFIX}{slot}"
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                        "--shell", "/usr/sbin/nologin", "--user-group", name], check=True,
                       capture_output=True)
        entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


def _bwrap_args(binds: list[tuple[str, str]], limits: Limits, env: dict) -> list[str]:
    # --as-pid-1: no bwrap reaper inside, whose capabilities a ptrace could borrow; the runner
    # is the PID namespace's init, so the namespace (every process in it) ends with it.
    args = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--as-pid-1", "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox", "--clearenv",
            "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID)]  # never uid 0, even inside
    for source, dest in binds:
        args += ["--ro-bind", source, dest]
    for link in ("bin", "lib", "lib64", "sbin"):  # Debian's merged /usr
        if os.path.islink(f"/{link}"):
            args += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
    # The base installation's own site-packages (whatever was pip-installed there) stays hidden.
    base_site = Path(sys.base_prefix).resolve() / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    if base_site.is_dir():
        args += ["--tmpfs", str(base_site)]
    args += ["--proc", "/proc", "--dev", "/dev", "--size", str(limits.disk), "--tmpfs", HOME,
             "--remount-ro", "/", "--chdir", HOME]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args


def _open_to_others(path: str) -> bool:
    """Whether any user can reach ``path`` (every parent folder enterable by others, the path itself
    readable by others): then the sandbox user binds it directly."""
    p = Path(path)
    try:
        if not all(parent.stat().st_mode & 0o001 for parent in p.parents):
            return False
        mode = p.stat().st_mode
    except OSError:
        return False
    return bool(mode & 0o004) and (not p.is_dir() or bool(mode & 0o001))


def _staged(binds: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], list[str]]:
    """For a sandbox user that cannot reach a source (a Python under root's 0700 home): root binds
    each such source into a private staging tmpfs first, in a mount namespace of its own. (Only
    those: each mount here is a process, and the sandbox starts once per notebook.)"""
    staged, script = [], ["set -e", "mount --make-rprivate /",
                          "mount -t tmpfs -o size=1m,mode=0755 descent-stage /mnt"]
    for k, (source, dest) in enumerate(binds):
        if _open_to_others(source):
            staged.append((source, dest))
            continue
        stage = f"/mnt/{k}"
        make = "mkdir" if os.path.isdir(source) else "touch"
        script += [f"{make} {stage}", f"mount --bind {shlex.quote(source)} {stage}"]
        staged.append((stage, dest))
    return staged, script


def command(argv: list[str], *, slot: int, mode: str, limits: Limits, env: dict,
            packages: tuple[str, ...] = ()) -> list[str]:
    """The full command line that runs ``argv`` in the sandbox (``packages``: see :func:`site_entries`)."""
    if mode == "none":
        return argv
    if mode == "userns":
        return _bwrap_args(mounts(packages), limits, env) + ["--", *argv]
    if mode == "user":
        uid, gid = ensure_user(slot)
        binds, script = _staged(mounts(packages))
        drop = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs",
                "--inh-caps=-all", "--bounding-set=-all", "--"]
        inner = "\n".join(script + ["exec " + shlex.join(drop + _bwrap_args(binds, limits, env) + ["--", *argv])])
        return ["unshare", "--mount", "--", "/bin/sh", "-c", inner]
    raise ValueError(f"isolation mode must be 'user', 'userns' or 'none', got {mode!r}")


def environment() -> dict:
    return {"PATH": "/usr/bin:/bin", "HOME": HOME, "USER": "student", "LOGNAME": "student", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
            "MPLCONFIGDIR": f"{HOME}/.matplotlib", "MPLBACKEND": "Agg", "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _count_tasks(uid: int) -> int:
    """Processes and threads of ``uid``: what RLIMIT_NPROC counts (a Dask worker or the grader
    itself runs dozens of threads; counting processes alone left no room to start a sandbox)."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(entry / "task"))
            except OSError:
                pass
    return count


def _limits(limits: Limits, base_tasks: int, packages: tuple[str, ...] = ()):
    address_space = limits.memory + (limits.packages_memory if packages else 0)

    def apply():
        os.setsid()  # one process group: the wall clock kills it whole
        resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
        resource.setrlimit(resource.RLIMIT_NPROC, (base_tasks + limits.processes,) * 2)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size, limits.file_size))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu, limits.cpu))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


class Process:
    """A running sandbox: ``stdin``/``stdout`` are the wire channel, stderr is kept as a capped tail."""

    TAIL = 4000

    def __init__(self, argv: list[str], *, slot: int = 0, mode: str, limits: Limits = Limits(),
                 packages: tuple[str, ...] = ()):
        env = environment()
        if mode == "none":
            env["PYTHONPATH"] = str(ROOT)
        # The process limit counts every thread of the uid: start from what already runs as it
        # (another grader sharing the sandbox users, the grader's own processes in userns mode).
        uid = ensure_user(slot)[0] if mode == "user" else os.getuid()
        base = _count_tasks(uid)
        self.popen = subprocess.Popen(
            command(argv, slot=slot, mode=mode, limits=limits, env=env, packages=packages), env=env if mode == "none" else
            {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, cwd="/", stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_limits(limits, base, packages))
        self.mode = mode
        self.stdin, self.stdout = self.popen.stdin.fileno(), self.popen.stdout.fileno()
        self._tail = bytearray()
        self._drain = threading.Thread(target=self._read_stderr, daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        for chunk in iter(lambda: self.popen.stderr.read1(1 << 16), b""):
            self._tail += chunk
            del self._tail[:-self.TAIL]

    @property
    def log_tail(self) -> str:
        self._drain.join(timeout=1)
        return bytes(self._tail).decode("utf-8", "replace")

    def kill(self) -> None:
        """SIGKILL the sandbox's process group; its PID namespace takes every descendant along."""
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.popen.wait()
        for stream in (self.popen.stdin, self.popen.stdout):
            try:
                stream.close()
            except OSError:
                pass


@dataclass
class Outcome:
    returncode: int | None
    timed_out: bool
    seconds: float
    log_tail: str = ""
    stdout: bytes = b""


def run(argv: list[str], *, slot: int = 0, mode: str, limits: Limits = Limits(),
        stdin: bytes = b"") -> Outcome:
    """Run ``argv`` in the sandbox to the end (or the wall clock); its output, as data."""
    started = time.monotonic()
    process = Process(argv, slot=slot, mode=mode, limits=limits)
    timer = threading.Timer(limits.wall_clock, process.kill)
    timer.start()
    try:
        try:
            process.popen.stdin.write(stdin)
            process.popen.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        stdout = process.popen.stdout.read()
        process.popen.wait()
    finally:
        timer.cancel()
    timed_out = time.monotonic() - started >= limits.wall_clock
    process.kill()
    return Outcome(process.popen.returncode, timed_out, time.monotonic() - started, process.log_tail, stdout)


# --- which mode works here --------------------------------------------------------------------------

def problem(mode: str) -> str | None:
    """Why ``mode`` cannot run here (None when it works): a smoke test of the real sandbox."""
    if mode == "none":
        return None
    if not shutil.which("bwrap"):
        return f"bubblewrap (bwrap) is not installed: {INSTALL_HINT}"
    if mode == "user" and os.geteuid() != 0:
        return "the 'user' mode needs root (it runs code as descent-sandbox-N users); use 'userns'"
    if mode == "user" and not (shutil.which("unshare") and shutil.which("setpriv")):
        return "the 'user' mode needs util-linux's unshare and setpriv"
    try:
        outcome = run(python_argv("autograder.wire", mode), mode=mode, limits=Limits(wall_clock=60))
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the sandbox did not start: {exc}"
    if outcome.returncode == 0:
        return None
    last = [line for line in outcome.log_tail.splitlines() if line.strip()]
    hint = ""
    if any("Operation not permitted" in line or "No space left" in line or "setting up uid map" in line
           for line in last):
        hint = (" (user namespaces look disabled: check `sysctl user.max_user_namespaces` and, on "
                "Ubuntu, kernel.apparmor_restrict_unprivileged_userns)")
    return f"the sandbox did not start: {last[-1] if last else f'exit code {outcome.returncode}'}{hint}"


@cache
def detect() -> str:
    """The strongest isolation mode that works on this machine ('none' when neither does)."""
    for mode in ("user", "userns") if os.geteuid() == 0 else ("userns",):
        if problem(mode) is None:
            return mode
    return "none"


def describe(mode: str) -> str:
    """What is in force, for `python -m autograder isolation`."""
    if mode == "none":
        return WARNING_NONE
    who = (f"unprivileged system users {USER_PREFIX}0.. (one per worker)" if mode == "user"
           else f"the grader's own uid ({os.getuid()}) mapped into a user namespace")
    lines = [f"isolation: {mode}: bubblewrap; student code runs as uid {SANDBOX_UID} inside and as {who} "
             f"outside, with no capabilities and no nested user namespaces",
             "namespaces: user, mount, PID, network (no interfaces), IPC, UTS, cgroup; killed with the grader",
             f"filesystem: read-only, only these paths ({len(mounts())} mounts):"]
    shown = {}
    for source, dest in mounts():
        parent = dest if not dest.startswith(SITE) else SITE
        shown.setdefault(parent, 0)
        shown[parent] += 1
    lines += [f"  {dest}" + (f"  ({n} packages' files: {', '.join(RUNTIME)} and dependencies)" if dest == SITE else "")
              for dest, n in shown.items()]
    lines.append(f"  {HOME}  (writable tmpfs, {Limits().disk // 2**20} MiB, gone with the sandbox)")
    return "\n".join(lines)
