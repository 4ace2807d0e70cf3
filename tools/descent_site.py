"""The site's own Sphinx extension (``_config.yml``: ``sphinx.local_extensions``).

* Build kernels draw with Agg (``MPLBACKEND``) and write static slider frames to
  ``_build/frames`` (``DESCENT_FRAMES``), which the site serves as ``_static/descent-frames``.
  Each page's frame references (``descent.sliders.STATIC_TOKEN``) become the page's relative
  path to ``_static``; a reference to a frame that is not there fails the build, naming it.
* Take-aways: each chapter ``book/NN-name`` gets, under its title, a link to its notebook
  (``notebooks/NN-name.ipynb``, written from the chapter's MyST source by jupytext when the
  HTML build finishes) and to its assignment's student notebook (the ``exercises/AA_name/x.ipynb``
  the chapter names, copied from ``exercises/`` into the site).
"""

from __future__ import annotations

import html
import os
import re
import shutil
from pathlib import Path

from sphinx.errors import ExtensionError

TOKEN = "@descent-static@"          # descent.sliders.STATIC_TOKEN
FRAMES_FOLDER = "descent-frames"    # descent.sliders.FRAMES_FOLDER
CHAPTER = re.compile(r"^book/(\d\d)-[\w-]+$")
ASSIGNMENT = re.compile(r"exercises/(\d\d_[a-z_]+)/([a-z_]+)\.ipynb")


def frames_dir(app) -> Path:
    return Path(app.confdir) / "_build" / "frames"


# The execution cache keys a chapter by its code cells only. These files decide what a figure's
# output looks like, so a change to any of them re-executes every chapter.
RENDERING = ("book/descent/sliders.py", "book/descent/drawing.py")


def invalidate_stale_cache(app, config):
    import hashlib

    root = Path(app.confdir)
    digest = hashlib.sha256(b"".join((root / f).read_bytes() for f in RENDERING)).hexdigest()
    cache = root / (config.nb_execution_cache_path or "_build/.jupyter_cache")
    stamp = root / "_build" / "frames" / "rendering.sha256"
    if cache.exists() and (not stamp.exists() or stamp.read_text() != digest):
        shutil.rmtree(cache)
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(digest)


def on_config_inited(app, config):
    invalidate_stale_cache(app, config)
    os.environ["MPLBACKEND"] = "Agg"   # kernels started by this build draw off-screen
    os.environ["DESCENT_FRAMES"] = str(frames_dir(app))
    (frames_dir(app) / FRAMES_FOLDER).mkdir(parents=True, exist_ok=True)
    config.html_static_path = list(config.html_static_path) + [str(frames_dir(app))]


def assignment_of(source: str) -> tuple[str, str] | None:
    found = ASSIGNMENT.search(source)
    return (found.group(1), found.group(2)) if found else None


def takeaways(app, docname: str, pathto) -> str:
    source = Path(app.srcdir, docname + ".md")
    links = [f'<a class="descent-download" href="{pathto("notebooks/" + Path(docname).name + ".ipynb", 1)}" '
             f'download>This chapter as a notebook (.ipynb)</a>']
    assignment = assignment_of(source.read_text(encoding="utf-8"))
    if assignment:
        folder, name = assignment
        links.append(f'<a class="descent-download" href="{pathto(f"exercises/{folder}/{name}.ipynb", 1)}" '
                     f'download>Its assignment, {html.escape(folder)} (student notebook)</a>')
    return ('<nav class="descent-takeaways" aria-label="Take-aways">' + " ".join(links) + "</nav>")


def on_page_context(app, pagename, templatename, context, doctree):
    body = context.get("body")
    if not body:
        return
    # myst-nb asks for MathJax on every page; a page without maths does without its 1.1 MB.
    if 'class="math' not in body and "\\(" not in body and "$$" not in body:
        context["script_files"] = [js for js in context.get("script_files", [])
                                   if "mathjax" not in str(getattr(js, "filename", js) or "").lower()]
    if TOKEN in body:
        static = context["pathto"]("_static", 1)
        for ref in set(re.findall(re.escape(TOKEN) + r"/" + FRAMES_FOLDER + r"/([\w./-]+)", body)):
            if ref.endswith("/"):
                ref += "frames.json"
            if not (frames_dir(app) / FRAMES_FOLDER / ref).exists():
                raise ExtensionError(
                    f"{pagename}: slider frame {ref} is missing from {frames_dir(app)}; the execution "
                    f"cache outlived the frames it wrote: delete _build/.jupyter_cache and build again")
        body = body.replace(TOKEN, static.rstrip("/"))
    if app.builder.format == "html" and CHAPTER.match(pagename):
        body = body.replace("</h1>", "</h1>" + takeaways(app, pagename, context["pathto"]), 1)
    context["body"] = body


def on_build_finished(app, exception):
    if exception is not None or app.builder.format != "html":
        return
    import jupytext

    out = Path(app.outdir)
    for docname in sorted(app.env.found_docs):
        if not CHAPTER.match(docname):
            continue
        source = Path(app.srcdir, docname + ".md")
        notebook = jupytext.read(source)
        notebook.metadata.pop("jupytext", None)   # a plain notebook, not a paired text file
        target = out / "notebooks" / (Path(docname).name + ".ipynb")
        target.parent.mkdir(parents=True, exist_ok=True)
        jupytext.write(notebook, target, fmt="ipynb")
        assignment = assignment_of(source.read_text(encoding="utf-8"))
        if assignment:
            folder, name = assignment
            student = Path(app.srcdir, "exercises", folder, name + ".ipynb")
            if not student.exists():
                raise ExtensionError(f"{docname} opens {student}, which does not exist: run `make exercises`")
            (out / "exercises" / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy2(student, out / "exercises" / folder / student.name)


def setup(app):
    app.connect("config-inited", on_config_inited)
    app.connect("html-page-context", on_page_context, priority=900)   # after MathJax adds itself
    app.connect("build-finished", on_build_finished)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
