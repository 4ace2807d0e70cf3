"""`make pdf`: the book as one PDF through Jupyter Book's LaTeX builder (xelatex).

The whole book takes minutes of LaTeX (measured 6.5 min on 2 busy cores), so this test runs the
same command `make pdf` runs on a small book of the same parts: the landing page and the first
two chapters, in a scratch root that borrows the site build's execution cache (no chapter is
executed again). It checks that the PDF is a PDF and that every figure of those chapters is in
it as an image, slider figures as their default frame.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(os.environ.get("DESCENT_SITE_ROOT", Path(__file__).resolve().parents[2]))
BIN = Path(sys.executable).parent
SUBSET = ["book/01-introduction", "book/02-sgd"]


def images_in(pdf: bytes) -> int:
    """Image XObjects in a PDF: streams, never packed into object streams, so countable."""
    return len(re.findall(rb"/Subtype\s*/Image", pdf))


def test_make_pdf_builds_a_book_with_every_figure(tmp_path):
    for tool in ("latexmk", "xelatex"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} not found: `make pdf` installs TeX Live when root "
                        f"(bash tools/preflight.sh pdf names the Debian packages)")
    cache = ROOT / "_build" / ".jupyter_cache"
    if not cache.exists():
        pytest.fail("no execution cache in _build: build the site first (make site)")
    root = tmp_path / "book-root"
    root.mkdir()
    shutil.copy(ROOT / "_config.yml", root)
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    toc.pop("chapters", None)
    toc["parts"] = [{"caption": "Chapters", "numbered": True, "chapters": [{"file": f} for f in SUBSET]}]
    (root / "_toc.yml").write_text(yaml.safe_dump(toc))
    for name in ("book", "optimkit", "exercises", "tools"):
        (root / name).symlink_to(ROOT / name)
    (root / "_build").mkdir()
    shutil.copytree(cache, root / "_build" / ".jupyter_cache")
    shutil.copytree(ROOT / "_build" / "frames", root / "_build" / "frames")   # its digest stamp
    env = dict(os.environ, DESCENT_STATIC="1", OPENBLAS_NUM_THREADS="1",
               PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    started = time.perf_counter()
    done = subprocess.run([str(BIN / "jupyter-book"), "build", "--quiet", "--builder", "pdflatex", "."],
                          cwd=root, env=env, capture_output=True, text=True, timeout=900)
    seconds = time.perf_counter() - started
    pdf = root / "_build" / "latex" / "descent.pdf"
    assert done.returncode == 0 and pdf.exists(), (done.stdout + done.stderr)[-3000:]
    assert "Executing notebook" not in done.stdout + done.stderr, "a chapter was executed again"
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    print(f"PDF of {len(SUBSET)} chapters: {seconds:.0f} s, {len(data) / 2**20:.1f} MB")
    figures = 0
    for chapter in SUBSET:
        html = ROOT / "_build" / "html" / (chapter + ".html")
        text = html.read_text(encoding="utf-8")
        figures += text.count('class="descent-slider"') + text.count("descent-static")
    assert figures >= 3, f"only {figures} figures in {SUBSET} on the built site: build it first (make site)"
    assert images_in(data) >= figures, f"{images_in(data)} images in the PDF for {figures} figures on the site"


def test_images_in_counts_image_streams():
    """The counter can fail: a page with no image counts 0, one image stream counts 1."""
    assert images_in(b"%PDF-1.5\n1 0 obj << /Type /Page >> endobj") == 0
    assert images_in(b"%PDF-1.5\n5 0 obj << /Type /XObject /Subtype /Image /Width 4 >> stream") == 1
