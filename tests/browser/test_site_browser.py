"""The built site as a reader meets it: every page in headless Chromium, served on 127.0.0.1.

Needs the site in _build/html (`make test` builds it first) and Debian's chromium
(`.ci/run` installs it). Checks per page: no console errors, no failed requests,
no request to any other host, math typeset, every image loaded and described, and
on every slider figure a slider move changes the picture. Screenshots of every
page land in _build/screenshots/.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

# DESCENT_SITE_ROOT points at another book root (with its own _toc.yml and _build/html),
# e.g. a scratch build of a few chapters.
ROOT = Path(os.environ.get("DESCENT_SITE_ROOT", Path(__file__).resolve().parents[2]))
SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    parts = toc.get("parts", [toc])   # numbered chapters and back matter are two parts
    files = [toc["root"]] + [entry["file"] for part in parts for entry in part.get("chapters", [])]
    return [f + ".html" for f in files]


@pytest.fixture(scope="module")
def server():
    if not (SITE / "index.html").exists():
        pytest.fail("no built site in _build/html: run `make` (or `make test`, which builds it)")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def visible_frames(box) -> list[str]:
    return [img.get_attribute("alt") + str(len(img.get_attribute("src") or ""))
            for img in box.locator("img.descent-frame").all() if img.is_visible()]


@pytest.mark.parametrize("page_path", toc_pages())
@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_page_reads_well(server, browser, page_path, color_scheme):
    context = browser.new_context(color_scheme=color_scheme, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems, foreign = [], []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.on("request", lambda r: foreign.append(r.url)
            if urlparse(r.url).scheme in ("http", "https") and urlparse(r.url).hostname != "127.0.0.1" else None)

    page.goto(f"{server}/{page_path}", wait_until="networkidle")
    if page.locator(".math").count():
        page.wait_for_selector("mjx-container", state="attached", timeout=15000)  # math in headings also sits in the hidden side toc
        page.wait_for_function("() => !window.MathJax || !window.MathJax.startup || "
                               "window.MathJax.startup.promise", timeout=15000)
        page.evaluate("() => window.MathJax.startup.promise")
    article = page.locator("article")
    text = article.inner_text()
    assert "$$" not in text and "\\(" not in text and "\\[" not in text, "raw TeX left untypeset"
    assert page.locator(".math").count() <= page.locator("mjx-container").count(), "some math not typeset"

    for img in page.locator("article img").all():
        assert img.evaluate("i => i.complete && i.naturalWidth > 0"), f"image not loaded: {img.get_attribute('src')[:80]}"
        assert (img.get_attribute("alt") or "").strip(), "image without alt text"

    # Every widget on the site is a slider figure: a box with sliders and one visible frame
    # (a Stack renders only its selected frame). None may be missing or inert.
    views = page.locator("script[type='application/vnd.jupyter.widget-view+json']").count()
    boxes = [box for box in page.locator(".jupyter-widgets.widget-vbox").all()
             if box.locator("img.descent-frame").count() >= 1 and box.locator(".noUi-handle").count()]
    assert len(boxes) == views, f"{views} widget views but {len(boxes)} slider figures rendered"
    for box in boxes:
        handles = box.locator(".noUi-handle").all()
        for handle in handles:
            before = visible_frames(box)
            assert len(before) == 1, f"expected one visible frame, got {len(before)}"
            handle.focus()
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(150)
            after = visible_frames(box)
            if after == before:  # the slider may start at its right end
                page.keyboard.press("ArrowLeft")
                page.keyboard.press("ArrowLeft")
                page.wait_for_timeout(150)
                after = visible_frames(box)
            assert after != before, f"slider move did not change the picture ({before})"

    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{Path(page_path).stem}-{color_scheme}.png"), full_page=True)
    context.close()
    assert not problems, "\n".join(problems)
    assert not foreign, f"requests to other hosts: {foreign}"


def test_every_toc_page_was_built():
    missing = [p for p in toc_pages() if not (SITE / p).exists()]
    assert not missing, f"pages in _toc.yml missing from _build/html: {missing}"
