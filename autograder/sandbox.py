"""An operating-system boundary around student code.

Isolation modes, strongest first (``detect()`` picks the best that works here):

``user``    the grader runs as root: each worker slot runs code as its own unprivileged
            system user (``descent-sandbox-N``), inside fresh network, PID and mount
            namespaces (util-linux ``unshare`` + ``setpriv``, no capabilities, no new
            privileges).
``userns``  not root, but user namespaces work: the same namespaces inside a user
            namespace (``unshare --user --map-root-user``).
``none``    neither works: code runs as the grader, with resource limits only.
            The tool warns loudly.

In the namespaced modes the child sees: no network (a fresh network namespace has
only a downed loopback), its own /proc and /tmp, the repository read-only, and
empty tmpfs over every secret path (solutions/, .git, _build, the gradebook and
course folders, the inbox). Resource limits (memory, processes, file size, CPU)
apply in every mode; the whole process tree is killed on the wall-clock limit, and
the PID namespace guarantees nothing outlives its init.
"""

from __future__ import annotations

import os
import pwd
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER_PREFIX = "descent-sandbox-"


@dataclass(frozen=True)
class Limits:
    cell_timeout: float = 30.0          # seconds per cell (enforced inside the runner)
    wall_clock: float = 120.0           # seconds for the whole notebook (enforced here)
    memory: int = 3 * 2**30             # bytes of address space
    processes: int = 64                 # processes/threads of the sandbox user
    file_size: int = 64 * 2**20         # bytes per file written
    cpu: int = 300                      # CPU seconds


@dataclass
class Outcome:
    returncode: int | None
    timed_out: bool
    seconds: float
    log_tail: str = ""


def default_hidden() -> list[Path]:
    """Paths student code must not read."""
    return [ROOT / ".git", ROOT / "solutions", ROOT / "_build", ROOT / "autograder" / "course",
            ROOT / "autograder" / "demo", Path.home()]


def _works(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def detect() -> str:
    """The strongest isolation mode that works on this machine."""
    have = shutil.which("unshare") and shutil.which("setpriv")
    namespaces = ["--net", "--pid", "--mount", "--fork", "--kill-child", "--mount-proc"]
    if have and os.geteuid() == 0 and _works(["unshare", *namespaces, "true"]):
        return "user"
    if have and _works(["unshare", "--user", "--map-root-user", *namespaces, "true"]):
        return "userns"
    return "none"


WARNING_NONE = (
    "WARNING: no operating-system isolation is available here (not root, and user "
    "namespaces are disabled). Student code will run as the grader's own user, with "
    "only resource limits: it can read solutions/ and the gradebook. Grade untrusted "
    "submissions only where `unshare --user` works or as root.")


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


def _mount_script(hidden: list[Path], job_dir: Path) -> str:
    """Shell commands run inside the new mount namespace, before dropping privileges.

    Each hidden path gets an empty tmpfs on top. When a hidden path holds something the
    runner needs (the Python installation, the repository), that is bound back in place
    inside the empty tmpfs, so e.g. the home folder disappears except for ~/.pyenv.
    """
    q = lambda p: shlex.quote(str(p))  # noqa: E731
    needed = [Path(sys.base_prefix).resolve(), ROOT, job_dir]
    lines = ["set -e", "mount --make-rprivate /",
             # First the repository read-only (student code must not change the grader's
             # code), then the covers: a later non-recursive bind would hide them again.
             f"mount --bind {q(ROOT)} {q(ROOT)}", f"mount -o remount,bind,ro {q(ROOT)}",
             "mount -t tmpfs -o size=1m,mode=0700 tmpfs /mnt"]  # staging for bind-backs
    staged, covered = 0, []
    for path in sorted({Path(p).resolve() for p in hidden}, key=lambda p: len(p.parts)):
        if not path.exists() or any((str(path) + os.sep).startswith(str(c) + os.sep) for c in covered):
            continue  # gone, or already inside a covered path
        covered.append(path)
        keep = [n for n in needed if (str(n) + os.sep).startswith(str(path) + os.sep)]
        if not keep:
            lines.append(f"mount --bind /dev/null {q(path)}" if path.is_file() else
                         f"mount -t tmpfs -o size=4k,mode=000 tmpfs {q(path)}")
            continue
        pairs = []
        for n in keep:
            stage = Path("/mnt") / f"keep{staged}"
            staged += 1
            lines += [f"mkdir -p {q(stage)}", f"mount --bind {q(n)} {q(stage)}"]
            pairs.append((stage, path / n.relative_to(path)))
        lines.append(f"mount -t tmpfs -o size=64k,mode=0711 tmpfs {q(path)}")
        for stage, target in pairs:
            lines += [f"mkdir -p {q(target)}", f"mount --bind {q(stage)} {q(target)}"]
    lines += ["mount -t tmpfs -o size=64m,mode=1777 tmpfs /tmp", "umount -l /mnt"]
    return "\n".join(lines)


def _limits(limits: Limits, base_processes: int = 0):
    def apply():
        os.setsid()
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory, limits.memory))
        resource.setrlimit(resource.RLIMIT_NPROC, (base_processes + limits.processes,) * 2)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_size, limits.file_size))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu, limits.cpu))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def _count_processes(uid: int) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def make_job_dir(base: Path, slot: int, mode: str) -> Path:
    """A private folder for one run: only the sandbox user of ``slot`` can enter it."""
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o711)  # others may pass through, not list: job names are unguessable
    job = Path(tempfile.mkdtemp(prefix="job-", dir=base))
    if mode == "user":
        uid, gid = ensure_user(slot)
        os.chown(job, uid, gid)
    os.chmod(job, 0o700)
    return job


def give_to_sandbox(path: Path, slot: int, mode: str) -> None:
    if mode == "user":
        uid, gid = ensure_user(slot)
        os.chown(path, uid, gid)


def run(argv: list[str], job_dir: Path, *, slot: int = 0, mode: str | None = None,
        limits: Limits = Limits(), hidden: list[Path] | None = None) -> Outcome:
    """Run ``argv`` (a Python program) in the sandbox with ``job_dir`` as its home."""
    mode = mode or detect()
    hidden = default_hidden() if hidden is None else hidden
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": str(job_dir),
           "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONNOUSERSITE": "1",
           "MPLCONFIGDIR": str(job_dir / ".matplotlib"), "MPLBACKEND": "Agg",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    namespaces = ["--net", "--pid", "--mount", "--fork", "--kill-child", "--mount-proc"]
    base_processes = 0
    if mode == "user":
        uid, gid = ensure_user(slot)
        base_processes = _count_processes(uid)
        drop = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
                "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all"]
        inner = _mount_script(hidden, job_dir) + "\nexec " + shlex.join(drop + argv)
        command = ["unshare", *namespaces, "--", "/bin/sh", "-c", inner]
    elif mode == "userns":
        base_processes = _count_processes(os.getuid())
        inner = _mount_script(hidden, job_dir) + "\nexec " + shlex.join(argv)
        command = ["unshare", "--user", "--map-root-user", *namespaces, "--", "/bin/sh", "-c", inner]
    elif mode == "none":
        base_processes = _count_processes(os.getuid())
        command = argv
    else:
        raise ValueError(f"isolation mode must be 'user', 'userns' or 'none', got {mode!r}")

    started = time.monotonic()
    with open(job_dir / "sandbox.log", "wb") as log:
        process = subprocess.Popen(command, cwd=job_dir, env=env, stdin=subprocess.DEVNULL,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   preexec_fn=_limits(limits, base_processes))
        try:
            process.wait(timeout=limits.wall_clock)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_tree(process)
    tail = (job_dir / "sandbox.log").read_bytes()[-2000:].decode("utf-8", "replace")
    return Outcome(process.returncode, timed_out, time.monotonic() - started, tail)


def _kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL the sandbox's process group; its PID namespace takes every descendant along."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
