"""A throwaway PostgreSQL server on 127.0.0.1 (Debian's postgresql package), for the tests'
PostgreSQL gradebook and the gradebook benchmark: ``with server() as url: ...``."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

MISSING = "PostgreSQL server not installed: apt-get install postgresql (make test does as root)"


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def bin_dir() -> Path | None:
    binaries = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(binaries[-1]).parent if binaries else None


@contextlib.contextmanager
def server(database: str = "gradebook", *, max_connections: int = 100, log: Path | None = None):
    """A fresh server and database; yields its SQLAlchemy URL; the server and its files go after
    (the server's log is copied to ``log`` first, when given)."""
    tools = bin_dir()
    if tools is None:
        raise RuntimeError(MISSING)
    # Not under a root-private temporary folder: the server runs as postgres when we are root.
    data = Path(tempfile.mkdtemp(prefix="descent-pg-", dir="/var/tmp"))
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        shutil.chown(data, entry.pw_uid, entry.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    subprocess.run(_as_postgres([str(tools / "initdb"), "-D", str(data), "--auth=trust", "-U", "grader"]),
                   check=True, capture_output=True)
    options = f"-h 127.0.0.1 -p {port} -k {data} -c max_connections={max_connections}"
    subprocess.run(_as_postgres([str(tools / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"),
                                 "-o", options, "start"]), check=True, capture_output=True)
    try:
        subprocess.run(_as_postgres([str(tools / "createdb"), "-h", "127.0.0.1", "-p", str(port),
                                     "-U", "grader", database]), check=True, capture_output=True)
        yield f"postgresql://grader@127.0.0.1:{port}/{database}"
    finally:
        subprocess.run(_as_postgres([str(tools / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
        if log is not None:
            shutil.copy(data / "log", log)
        shutil.rmtree(data, ignore_errors=True)


def fresh_database(url: str, name: str) -> str:
    """Another, empty database on ``url``'s server (tests that must not see each other's rows)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as db:
        db.execute(f'DROP DATABASE IF EXISTS "{name}"')
        db.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + "/" + name
