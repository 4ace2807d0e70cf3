"""The built site as a reader meets it: every page in headless Chromium, served on 127.0.0.1.

Needs the site in _build/html (`make test` builds it first), Debian's chromium (`.ci/run`
installs it) and axe-core from npm (`make` vendors it into _build/npm). Per page, in light and
dark mode: no console errors, no failed requests, no request to any other host, math typeset,
every image loaded and described, every slider moves its figure; the first view's transfer
within budget (landing page 1 MB, any other page 3 MB), no widget or icon script, no slider
frame fetched beyond the default ones until a reader moves a slider; 0 serious or critical
axe-core violations; slider values at WCAG AA contrast. On a 360-px phone: nothing overflows
the page outside a scroll box, every slider and its value in view. Without JavaScript every
slider figure shows its default frame with alt text. Each chapter's notebook and assignment
download and open as notebooks; search snippets are plain text. Screenshots of every page
(light, dark, phone) land in _build/screenshots/ for a human to look at.
"""

from __future__ import annotations

import functools
import http.server
import json
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
AXE = ROOT / "_build" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
KB, MB = 1024, 1024 * 1024
# First view, everything transferred (this server sends no compression, so bytes on disk).
BUDGET = {"landing": 1 * MB, "page": 3 * MB}


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


def chapters() -> list[str]:
    return [p for p in toc_pages() if Path(p).stem[:2].isdigit()]


def typeset(page):
    """Wait until MathJax has typeset the page (math in headings also sits in the side toc)."""
    if page.locator(".math").count():
        page.wait_for_selector("mjx-container", state="attached", timeout=20000)
        page.wait_for_function("() => !window.MathJax || !window.MathJax.startup || "
                               "window.MathJax.startup.promise", timeout=20000)
        page.evaluate("() => window.MathJax.startup.promise")


def served_bytes(url: str) -> int:
    """What the test server sent for ``url``: the file's size (no compression here)."""
    path = SITE / urlparse(url).path.lstrip("/")
    if path.is_dir():
        path = path / "index.html"
    return path.stat().st_size if path.exists() else 0


def shown(figure) -> str:
    img = figure.locator("img.descent-frame")
    return f"{img.get_attribute('src')}|{img.get_attribute('alt')}"


# The colour each element shows and the colour behind it, walking up to the first opaque
# background; returns the WCAG contrast ratio of the worst element.
CONTRAST = """els => {
  const rgba = s => { const m = s.match(/[\\d.]+/g).map(Number); return m.length > 3 ? m : [...m, 1]; };
  const lum = ([r, g, b]) => { const f = c => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
                               return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
  const behind = el => { for (let e = el; e; e = e.parentElement) { const c = rgba(getComputedStyle(e).backgroundColor);
                           if (c[3] > 0.5) return c; } return [255, 255, 255, 1]; };
  let worst = 21, what = "";
  for (const el of els) {
    const fg = rgba(getComputedStyle(el).color), bg = behind(el);
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    if (ratio < worst) { worst = ratio; what = `${el.tagName} '${el.textContent}' ${fg} on ${bg}`; }
  }
  return [worst, what];
}"""

AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => `${v.impact} ${v.id}: ${v.help} (${v.nodes.length}x, e.g. ${v.nodes[0].target.join(" ")})`);
}"""


def axe_violations(page) -> list[str]:
    if not AXE.exists():
        pytest.fail(f"axe-core not found at {AXE}: run `make site` (it vendors npm packages, axe-core included)")
    page.add_script_tag(path=str(AXE))
    return page.evaluate(AXE_RUN)


@pytest.mark.parametrize("page_path", toc_pages())
@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_page_reads_well(server, browser, page_path, color_scheme):
    context = browser.new_context(color_scheme=color_scheme, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems, foreign, requested = [], [], []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"failed request: {r.url} ({r.failure})"))
    page.on("response", lambda r: problems.append(f"HTTP {r.status}: {r.url}") if r.status >= 400 else None)
    page.on("request", lambda r: foreign.append(r.url)
            if urlparse(r.url).scheme in ("http", "https") and urlparse(r.url).hostname != "127.0.0.1" else None)
    page.on("request", lambda r: requested.append(r.url) if r.url.startswith(server) else None)

    page.goto(f"{server}/{page_path}", wait_until="networkidle")
    typeset(page)
    page.wait_for_load_state("networkidle")
    article = page.locator("article")
    text = article.inner_text()
    assert "$$" not in text and "\\(" not in text and "\\[" not in text, "raw TeX left untypeset"
    assert page.locator(".math").count() <= page.locator("mjx-container").count(), "some math not typeset"

    # Budgets of the first view: bytes, scripts, and no slider frame beyond the default ones.
    first_view = list(requested)
    total = sum(served_bytes(u) for u in set(first_view))
    budget = BUDGET["landing" if page_path == toc_pages()[0] else "page"]
    assert total <= budget, (f"first view transfers {total / MB:.2f} MB > {budget / MB:.0f} MB: " +
                             ", ".join(f"{urlparse(u).path} {served_bytes(u) // KB} KB" for u in
                                       sorted(set(first_view), key=served_bytes, reverse=True)[:5]))
    paths = [urlparse(u).path for u in first_view]
    assert not [p for p in paths if "embed-amd" in p or p.endswith("require.js") or "/widgets/" in p], \
        "the ipywidgets loader is fetched by a page that has no widget"
    icon_scripts = [u for u in first_view if "fontawesome" in u and urlparse(u).path.endswith(".js")]
    assert all(served_bytes(u) < 16 * KB for u in icon_scripts), \
        f"FontAwesome's script is back: {[(u, served_bytes(u)) for u in icon_scripts]}"
    figures = page.locator(".descent-slider").all()
    frames = [p for p in paths if "/descent-frames/" in p and not p.endswith("figure.webp")]
    assert not [p for p in frames if p.endswith("frames.json")], "alt texts fetched before any slider moved"
    assert len(frames) <= len(figures), f"{len(frames)} slider frames fetched with the page for {len(figures)} figures"

    for img in page.locator("article img").all():
        img.scroll_into_view_if_needed()
        img.evaluate("i => i.decode ? i.decode().catch(() => null) : null")
        assert img.evaluate("i => i.complete && i.naturalWidth > 0"), f"image not loaded: {(img.get_attribute('src') or '')[:80]}"
        assert (img.get_attribute("alt") or "").strip(), "image without alt text"

    # Every slider figure in the page's source is wired: its sliders show, are named, announce
    # their value, and every slider moves the picture.
    in_source = (SITE / page_path).read_text(encoding="utf-8").count('class="descent-slider"')
    assert len(figures) == in_source, f"{in_source} slider figures in the page, {len(figures)} found"
    for figure in figures:
        inputs = figure.locator("input[type=range]").all()
        assert inputs and all(i.is_visible() for i in inputs), "slider controls not shown"
        for slider in inputs:
            name = slider.evaluate("i => i.labels.length ? i.labels[0].textContent : ''")
            assert name.strip(), "slider without an accessible name"
            before = shown(figure)
            slider.focus()
            # One step away from the end it starts at (many start at their right end).
            at_end = slider.input_value() == slider.get_attribute("max")
            page.keyboard.press("ArrowLeft" if at_end else "ArrowRight")
            changed = "(b) => { const i = document.activeElement.closest('.descent-slider').querySelector('img.descent-frame');" \
                      " return i.getAttribute('src') + '|' + i.getAttribute('alt') !== b; }"
            page.wait_for_function(changed, arg=before, timeout=5000)
            values = json.loads(slider.get_attribute("data-values"))
            value = values[int(slider.input_value())]
            assert slider.get_attribute("aria-valuetext") == value, "the slider announces its index, not its value"
            assert figure.locator("output").all()[inputs.index(slider)].inner_text() == value
    if figures:
        assert any(u.endswith("frames.json") for u in requested), "alt texts not fetched on interaction"
        worst, what = page.locator(".descent-control output, .descent-control label").evaluate_all(CONTRAST)
        assert worst >= 4.5, f"slider text below WCAG AA contrast in {color_scheme} mode: {worst:.2f} ({what})"

    violations = axe_violations(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{Path(page_path).stem}-{color_scheme}.png"), full_page=True)
    context.close()
    assert not violations, f"axe-core, {color_scheme} mode:\n" + "\n".join(violations)
    assert not problems, "\n".join(problems)
    assert not foreign, f"requests to other hosts: {foreign}"


# Elements that stick out of the viewport and are not inside a box that scrolls or clips them.
OVERFLOW = """() => {
  const W = document.documentElement.clientWidth, out = [];
  const boxed = el => { for (let e = el.parentElement; e && e !== document.body; e = e.parentElement) {
      const o = getComputedStyle(e).overflowX; if (o === "auto" || o === "scroll" || o === "hidden") return true; }
    return false; };
  for (const el of document.querySelectorAll("body *")) {
    const r = el.getBoundingClientRect();
    if (r.width && (r.right > W + 1 || r.left < -1) && !boxed(el) && getComputedStyle(el).visibility !== "hidden")
      out.push(`${el.tagName}.${el.className} right=${Math.round(r.right)}`);
  }
  return [document.documentElement.scrollWidth - W, out.slice(0, 5)];
}"""


@pytest.mark.parametrize("page_path", toc_pages())
def test_page_on_a_phone(server, browser, page_path):
    context = browser.new_context(viewport={"width": 360, "height": 740}, device_scale_factor=2,
                                  is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{server}/{page_path}", wait_until="networkidle")
    typeset(page)
    excess, sticking_out = page.evaluate(OVERFLOW)
    assert excess <= 1 and not sticking_out, f"wider than the 360-px phone by {excess} px: {sticking_out}"
    for figure in page.locator(".descent-slider").all():
        figure.scroll_into_view_if_needed()
        for part in figure.locator("input[type=range], output").all():
            box = part.bounding_box()
            assert part.is_visible() and box and box["x"] >= 0 and box["x"] + box["width"] <= 361, \
                f"slider part off-screen on a phone: {box}"
    if page_path == toc_pages()[0]:  # the landing page points to where to start, in view
        start = page.locator("article a[href*='01-introduction']").first
        assert start.is_visible(), "the landing page's link to the first chapter is not shown on a phone"
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{Path(page_path).stem}-phone.png"), full_page=True)
    context.close()


def test_without_javascript_slider_figures_show_their_default_frame(server, browser):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    seen = 0
    for page_path in chapters():
        page.goto(f"{server}/{page_path}", wait_until="networkidle")
        for figure in page.locator(".descent-slider").all():
            img = figure.locator("img.descent-frame")
            assert img.is_visible() and img.get_attribute("alt").strip(), f"{page_path}: no default frame"
            response = page.request.get(f"{server}/{urlparse(img.evaluate('i => i.src')).path}")
            assert response.ok and response.headers["content-type"].startswith("image/"), f"{page_path}: frame not served"
            assert not figure.locator("input[type=range]").first.is_visible(), "inert sliders shown without JavaScript"
            seen += 1
    context.close()
    assert seen >= 10, f"only {seen} slider figures found"


def test_each_chapter_offers_its_notebook_and_its_assignment(server, browser):
    import nbformat

    context = browser.new_context()
    page = context.new_page()
    assignments = 0
    for page_path in chapters():
        page.goto(f"{server}/{page_path}")
        links = page.locator(".descent-takeaways a").all()
        assert links and ".ipynb" in links[0].get_attribute("href"), f"{page_path}: no notebook to download"
        title = page.locator("article h1").first.inner_text().rstrip("#").strip()
        for link in links:
            url = link.evaluate("a => a.href")
            response = page.request.get(url)
            assert response.ok, f"{page_path}: {url} is HTTP {response.status}"
            notebook = nbformat.reads(response.text(), as_version=4)
            nbformat.validate(notebook)
            if "/notebooks/" in url:   # the chapter itself, from its MyST source
                source = "\n".join(c.source for c in notebook.cells)
                assert title.split(" ", 1)[-1][:20] in source, f"{url} is not {page_path}'s notebook"
                assert any(c.cell_type == "code" for c in notebook.cells)
            else:                      # the student release of its assignment
                assert any("nbgrader" in c.metadata for c in notebook.cells), f"{url} is no nbgrader notebook"
                assignments += 1
    context.close()
    assert assignments >= 8, f"only {assignments} chapters link their assignment"


def test_search_has_one_button_and_plain_text_snippets(server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{server}/{chapters()[1]}", wait_until="networkidle")
    buttons = [b for b in page.locator("button, a, input").all()
               if b.is_visible() and "search" in ((b.get_attribute("aria-label") or "") + " " +
                                                  (b.get_attribute("placeholder") or "") + " " + b.inner_text()).lower()]
    assert len(buttons) == 1, f"{len(buttons)} search controls on a desktop page"
    page.goto(f"{server}/search.html?q=learning+rate", wait_until="networkidle")
    page.wait_for_selector("#search-results li p.context", timeout=20000)
    page.wait_for_timeout(500)
    snippets = page.locator("#search-results li p.context").all_inner_texts()
    assert snippets
    raw = [s for s in snippets if "\\(" in s or "\\[" in s or "$$" in s or "\\eta" in s]
    assert not raw, f"raw LaTeX in search snippets: {raw[:2]}"
    context.close()


# The h2 section the side toc marks as current (an h3's link counts for its h2 section).
ACTIVE_SECTION = """() => {
  const a = document.querySelector("#pst-page-toc-nav a.active");
  if (!a) return null;
  for (let s = document.getElementById(decodeURIComponent(a.hash.slice(1))); s; s = s.parentElement.closest("section"))
    if (s.querySelector(":scope > h2")) return s.id;
  return null;
}"""


def test_the_table_of_contents_follows_the_reader(server, browser):
    """Scroll each chapter with the mouse wheel, as a reader does: the side toc must mark every
    section on the way (a short last section may never reach the line, so one may be missed)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    stuck = []
    for page_path in chapters():
        page.goto(f"{server}/{page_path}", wait_until="networkidle")
        typeset(page)
        ids = page.locator("article section > h2").evaluate_all("hs => hs.map(h => h.parentElement.id)")
        page.mouse.move(640, 450)
        seen = []
        while True:
            page.mouse.wheel(0, 600)
            page.wait_for_timeout(150)
            active = page.evaluate(ACTIVE_SECTION)
            if active and (not seen or seen[-1] != active):
                seen.append(active)
            if page.evaluate("innerHeight + scrollY >= document.documentElement.scrollHeight - 2"):
                break
        missed = [i for i in ids if i not in seen]
        if len(missed) > 1 or seen != [i for i in ids if i in seen]:
            stuck.append(f"{page_path}: marked {seen}, missed {missed}")
    context.close()
    assert not stuck, "the side table of contents does not follow the reader:\n" + "\n".join(stuck)


def test_every_toc_page_was_built():
    missing = [p for p in toc_pages() if not (SITE / p).exists()]
    assert not missing, f"pages in _toc.yml missing from _build/html: {missing}"
