"""A Jupyter server for a browser test, started, waited for and stopped: formgrader's
(`tests/browser/test_formgrader.py`) and the student lab (`tests/browser/test_lab_browser.py`)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyter_server(argv: list[str], ready_url: str, what: str, seconds: float, **popen):
    """Run ``argv`` until ``ready_url`` answers (failing the test, with the server's output, if it
    exits first or takes over ``seconds``); yield the process; terminate it afterwards."""
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                              **popen)
    try:
        deadline = time.time() + seconds
        while True:
            try:
                urllib.request.urlopen(ready_url, timeout=5)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"{what} exited: {server.stdout.read().decode()[-2000:]}")
                if time.time() > deadline:
                    pytest.fail(f"{what} did not start within {seconds:g} s")
                time.sleep(0.5)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
