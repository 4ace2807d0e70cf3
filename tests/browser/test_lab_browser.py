"""A student's session in a real JupyterLab, started as `make lab` starts it (headless Debian
chromium): open an exercise, fill in the answers, run it, and see the visible tests pass and a
widget render; make a typical mistake, Validate, fix it, Validate, save and download the file
to hand it in (what "submit" means here: the notebook's "How to submit"); then `make` leaves
the student's copy untouched. The lab has no instructor panels, and a chapter link opens the
built book's page."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from autograder import course, demo, lab as student_lab
from servers import free_port, jupyter_server

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab as `make lab` starts it (autograder.lab: the student's own copy of the release,
    the student lab's settings, the book at /descent/), on 127.0.0.1; yields (url, token, work)."""
    home = tmp_path_factory.mktemp("student")
    work = home / "work"
    student_lab.copy_release(work)
    port, token = free_port(), secrets.token_hex(16)
    env = student_lab.lab_environment(dict(os.environ, JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
                                           JUPYTER_RUNTIME_DIR=str(home / ".runtime")))
    base = f"http://127.0.0.1:{port}"
    argv = student_lab.lab_command(work, "--no-browser", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
                                   f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False")
    with jupyter_server(argv, f"{base}/api/status?token={token}", "JupyterLab", 60, env=env):
        yield base, token, work


def test_student_fills_in_sgd_and_sees_visible_tests_pass_and_a_widget(lab, browser):
    base, token, _ = lab
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


def open_notebook(page, base, token, path):
    # A workspace of its own: the lab restores the last one's open tabs, and an earlier test's
    # notebook would be a second .jp-Notebook on the page.
    page.goto(f"{base}/lab/workspaces/{secrets.token_hex(4)}/tree/{path}?token={token}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                           "#jp-main-statusbar :text('Idle')", timeout=60000)


def type_answer(page, grade_id, code):
    editor = page.locator(".jp-CodeCell").filter(has_text=f"def {grade_id}(").locator(".cm-content").first
    editor.click()
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code.rstrip())  # no auto-indent: pasted as is


def validate(page) -> str:
    """Click nbgrader's Validate (it saves, runs the notebook, shows a dialog); the dialog's text."""
    page.locator(".jp-NotebookPanel-toolbar").get_by_text("Validate", exact=True).click()
    dialog = page.locator(".jp-Dialog").filter(has_text="Validation Results")
    dialog.wait_for(timeout=180000)
    dialog.locator(".jp-Dialog-content pre, .jp-Dialog-content p").first.wait_for(timeout=180000)
    text = dialog.inner_text()
    dialog.get_by_role("button", name="Ok").click()
    dialog.wait_for(state="detached", timeout=10000)
    return text


def test_student_validates_fixes_submits_and_make_leaves_the_copy_alone(lab, browser):
    base, token, work = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    open_notebook(page, base, token, "04_adam/adam.ipynb")

    # A student's lab: Validate, and none of nbgrader's instructor panels or their menu.
    assert page.locator(".jp-NotebookPanel-toolbar").get_by_text("Validate", exact=True).count() == 1
    menubar = page.locator("#jp-menu-panel, .lm-MenuBar").first.inner_text()
    assert "Nbgrader" not in menubar, menubar
    palette = page.locator(".lm-CommandPalette").filter(has=page.locator(".lm-CommandPalette-input:visible")).first
    for _ in range(3):  # the palette lists every command; View > Activate Command Palette opens it
        page.locator(".jp-Notebook").click(position={"x": 5, "y": 5})
        page.get_by_role("menuitem", name="View", exact=True).click()
        page.get_by_role("menuitem", name="Activate Command Palette").click()
        try:
            palette.wait_for(timeout=5000)
            break
        except Exception:  # noqa: BLE001 - a click lost while the lab was busy: open it again
            page.keyboard.press("Escape")
    palette.wait_for(timeout=5000)
    page.locator(".lm-CommandPalette-input").fill("Restart Kernel and Run All")  # a control: one it finds
    assert palette.locator(".lm-CommandPalette-item").filter(has_text="Restart Kernel and Run All").count() > 0
    # nbgrader's menu plugin puts these in the palette (category "nbgrader") in an instructor's lab.
    for label in ("Formgrader", "Create assignment", "Assignment List", "Course List"):
        page.locator(".lm-CommandPalette-input").fill(label)
        assert palette.locator(".lm-CommandPalette-item").filter(has_text=label).count() == 0, label
    page.locator(".lm-CommandPalette-input").fill("")
    page.keyboard.press("Escape")

    # The typical mistake: right values, theta changed in place. Validate says which input.
    answers = demo.reference_answers("04_adam", "adam")
    wrong = ("def adam_step(theta, grad, m, v, t, lr, beta1, beta2, eps):\n"
             "    new_m = beta1 * m + (1 - beta1) * grad\n"
             "    new_v = beta2 * v + (1 - beta2) * grad * grad\n"
             "    theta -= lr * (new_m / (1 - beta1 ** t)) / (np.sqrt(new_v / (1 - beta2 ** t)) + eps)\n"
             "    return theta, new_m, new_v\n")
    type_answer(page, "adam_step", wrong)
    type_answer(page, "amsgrad_step", answers["amsgrad_step"])
    verdict = validate(page)
    assert "changed its input theta in place" in verdict, verdict
    type_answer(page, "adam_step", answers["adam_step"])
    verdict = validate(page)
    assert "Success! Your notebook passes all the tests." in verdict, verdict

    # Submit: the notebook says how (save, then hand in this file under its name); download it.
    page.keyboard.press("Control+s")
    page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=30000)
    submit = page.locator(".jp-MarkdownCell").filter(has_text="How to submit")
    submit.scroll_into_view_if_needed()
    assert "04_adam/adam.ipynb" in submit.text_content()
    page.get_by_role("menuitem", name="File", exact=True).click()
    with page.expect_download(timeout=30000) as download:
        page.get_by_role("menuitem", name="Download", exact=True).click()
    handed_in = Path(download.value.path()).read_bytes()
    saved = (work / "04_adam" / "adam.ipynb").read_bytes()
    assert json.loads(handed_in) == json.loads(saved) and b"new_v / (1 - beta2 ** t)" in saved
    assert download.value.suggested_filename == "adam.ipynb"

    # `make`'s release step and `make lab`'s copy step change nothing of the student's copy.
    before = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    run = subprocess.run(["make", "--no-print-directory", "check-exercises", f"WORK={work}",
                          "-o", ".venv/.runtime-installed", "-o", ".venv/etc/ipython/ipython_kernel_config.py"],
                         cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}"))
    assert run.returncode == 0, run.stdout + run.stderr
    added = {work / name for name in student_lab.copy_release(work)["added"]}  # only a newer release adds files
    after = {p: p.read_bytes() for p in work.rglob("*") if p.is_file()}
    assert {p: after[p] for p in before} == before and set(after) - set(before) == added

    # The chapter link in the introduction opens the built book's page for chapter 5.
    link = page.locator(".jp-MarkdownCell a[href$='/book/05-adam.html']").first
    link.scroll_into_view_if_needed()
    with page.context.expect_page(timeout=30000) as opened:
        link.click()
    chapter = opened.value
    chapter.wait_for_load_state()
    assert chapter.url == f"{base}{course.DEFAULT_SITE_URL}/book/05-adam.html", chapter.url
    assert "Adam" in chapter.locator("h1").first.inner_text()
    chapter.close()
    assert not errors, errors
