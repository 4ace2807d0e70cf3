"""A student's session in a real JupyterLab: open an exercise, fill in the answers, run
it, and see the visible tests pass and a widget render (headless Debian chromium)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from autograder import demo

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a copy of exercises/, as `make lab` starts it, on 127.0.0.1."""
    home = tmp_path_factory.mktemp("student")
    shutil.copytree(ROOT / "exercises", home / "exercises")
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
               JUPYTER_CONFIG_DIR=str(home / ".jupyter"), JUPYTER_RUNTIME_DIR=str(home / ".runtime"))
    server = subprocess.Popen(
        [str(BIN / "jupyter"), "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={home / 'exercises'}", "--LabApp.news_url=",
         "--ServerApp.open_browser=False", *(["--allow-root"] if os.geteuid() == 0 else [])],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            break
        except OSError:
            if server.poll() is not None:
                pytest.fail(f"JupyterLab exited: {server.stdout.read().decode()[-2000:]}")
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("JupyterLab did not start within 60 s")
    yield base, token
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()


def test_student_fills_in_sgd_and_sees_visible_tests_pass_and_a_widget(lab, browser):
    base, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/lab/tree/01_sgd/sgd.ipynb?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                           "#jp-main-statusbar :text('Idle')", timeout=60000)

    answers = demo.reference_answers("01_sgd", "sgd")
    for grade_id in ("sgd_step", "minibatch_indices", "critical_lr"):
        cell = page.locator(".jp-CodeCell").filter(has_text=f"def {grade_id}(")
        editor = cell.locator(".cm-content").first
        editor.click()
        page.keyboard.press("Control+a")
        page.keyboard.press("Delete")
        page.keyboard.insert_text(answers[grade_id].rstrip())  # no auto-indent: pasted as is

    page.locator(".jp-Notebook").click(position={"x": 5, "y": 5})
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()

    for grade_id in ("sgd_step", "minibatch_indices", "critical_lr"):
        page.wait_for_selector(f".jp-OutputArea-output:has-text('{grade_id}: visible tests passed')",
                               timeout=60000)
    slider = page.locator(".jp-OutputArea-output .widget-slider, .jp-OutputArea-output .jupyter-widgets.widget-hslider")
    slider.first.wait_for(timeout=60000)
    image = page.locator(".jp-OutputArea-output img.descent-frame")
    image.first.wait_for(timeout=30000)
    before = image.first.get_attribute("alt")
    page.locator(".jp-OutputArea-output .noUi-handle").first.focus()
    page.keyboard.press("End")
    page.wait_for_function(
        "(before) => { const i = document.querySelector('.jp-OutputArea-output img.descent-frame');"
        " return i && i.alt !== before; }", arg=before, timeout=30000)
    assert "0.51" in image.first.get_attribute("alt")  # the kernel re-ran the student's code
    errors_in_outputs = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    assert errors_in_outputs.count() == 0, errors_in_outputs.first.inner_text()
    shots = ROOT / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shots / "lab-01_sgd.png"), full_page=False)
    assert not errors, errors


def test_lab_has_the_nbgrader_and_widgets_extensions():
    out = subprocess.run([str(BIN / "jupyter"), "labextension", "list"], capture_output=True, text=True)
    text = out.stdout + out.stderr
    assert "@jupyter/nbgrader" in text and "@jupyter-widgets/jupyterlab-manager" in text
