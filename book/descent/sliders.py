"""Slider-driven figures that are live in a kernel and still interactive on a static page.

Importing this module never changes matplotlib's backend: frames are drawn on the figure's own
Agg canvas (``FigureCanvasAgg``), whatever backend the user runs (``plt.show()`` keeps working).

One object, two ways to show it:

* **live** (JupyterLab): a slider move calls ``update(**values)``, which changes the
  figure's artists in place (``set_data``, ``set_offsets``), then the same figure is
  re-rendered into the same image widget (ipywidgets). Nothing is rebuilt, and every frame
  has the size of the first.
* **static** (the built site, no kernel): every combination of slider values is rendered
  once at build time, at twice the display resolution (sharp on HiDPI screens), into image
  files of their own under :func:`frames_root` (the site serves them from
  ``_static/descent-frames/``), with one small JSON of alt texts per figure. The page holds
  plain HTML: the default frame as an ``<img>`` with its alt text (what a reader without
  JavaScript sees), and native range inputs (hidden until ``descent.js`` wires them) whose
  moves fetch the frame they need, the first move fetching the figure's alt texts. The
  output also carries the default frame as ``image/png``, which the PDF build prints.

The mode is "static" when the environment variable ``DESCENT_STATIC`` is set (the
book build sets it) and "live" otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import itertools
import json
import os
from pathlib import Path
from typing import Callable, Sequence

STATIC_ENV = "DESCENT_STATIC"
FRAMES_ENV = "DESCENT_FRAMES"
FRAME_FORMAT = "webp"  # lossless WebP: a third of PNG's size for line art
FRAME_DPI = 80         # the CSS size of a frame: a 6.4-inch figure is 512 px wide
HIDPI = 2              # static frames carry twice the pixels, for HiDPI screens
# Pages refer to frames through this token; the site's Sphinx extension replaces it with the
# page's relative path to _static (tools/descent_site.py).
STATIC_TOKEN = "@descent-static@"
FRAMES_FOLDER = "descent-frames"


def default_mode() -> str:
    return "static" if os.environ.get(STATIC_ENV) else "live"


def frames_root() -> Path:
    """Where static frames are written: ``$DESCENT_FRAMES`` (the book build sets it), else
    ``_build/frames`` next to the folder the kernel runs in (a chapter runs in ``book/``)."""
    configured = os.environ.get(FRAMES_ENV)
    return Path(configured) if configured else Path.cwd().parent / "_build" / "frames"


def agg_canvas(fig):
    """The figure's Agg canvas, attaching one if the figure has none (no backend switch)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    return fig.canvas


def render(fig, fmt: str = FRAME_FORMAT, dpi: int = FRAME_DPI) -> bytes:
    """The figure's current state as image bytes."""
    buffer = io.BytesIO()
    options = {"pil_kwargs": {"lossless": True, "method": 4}} if fmt == "webp" else {}
    # An opaque white face: the figure reads the same on the site's light and dark themes
    # (the dark theme dims it a little, descent.css).
    fig.savefig(buffer, format=fmt, dpi=dpi, facecolor="white", **options)
    return buffer.getvalue()


def img_tag(data: bytes, alt: str, fmt: str = FRAME_FORMAT, width: int | None = None) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    size = f' width="{width}"' if width else ""
    return (f'<img src="data:image/{fmt};base64,{encoded}" alt="{html.escape(alt, quote=True)}"{size} '
            f'style="max-width:100%;height:auto" class="descent-frame"/>')


def write_frames(files: dict[str, bytes], meta: dict | None = None) -> str:
    """Write ``{file name: bytes}`` into a folder named by their content under
    :func:`frames_root`; returns the folder's name. ``meta`` goes to ``frames.json``."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name])
    if meta is not None:
        digest.update(json.dumps(meta, sort_keys=True).encode())
    key = digest.hexdigest()[:16]
    folder = frames_root() / FRAMES_FOLDER / key
    if not (folder / ".complete").exists():
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
        if meta is not None:
            (folder / "frames.json").write_text(json.dumps(meta, ensure_ascii=False))
        (folder / ".complete").write_text("")
    return key


class StaticImage:
    """A figure rendered for the static site: the HTML refers to an image file of its own;
    the PDF build takes the ``image/png``."""

    def __init__(self, html_text: str, png: bytes, text: str):
        self.html, self.png, self.text = html_text, png, text

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"text/html": self.html, "image/png": base64.b64encode(self.png).decode("ascii"),
                "text/plain": self.text}


def _pixel_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        return image.size


def show_figure(fig, alt: str):
    """Display a static figure as an image with alt text, and close it."""
    import matplotlib.pyplot as plt
    from IPython.display import HTML, display

    if default_mode() == "static":
        data = render(fig, dpi=FRAME_DPI * HIDPI)
        width, height = _pixel_size(data)
        key = write_frames({f"figure.{FRAME_FORMAT}": data})
        src = f"{STATIC_TOKEN}/{FRAMES_FOLDER}/{key}/figure.{FRAME_FORMAT}"
        tag = (f'<img src="{src}" alt="{html.escape(alt, quote=True)}" width="{width // HIDPI}" '
               f'height="{height // HIDPI}" loading="lazy" class="descent-frame descent-static"/>')
        display(StaticImage(tag, render(fig, fmt="png", dpi=FRAME_DPI * HIDPI), alt))
    else:
        display(HTML(img_tag(render(fig), alt, width=round(fig.get_figwidth() * FRAME_DPI))))
    plt.close(fig)


class SliderFigure:
    """A figure, a function that updates it in place, and the sliders that drive it.

    Parameters
    ----------
    fig:
        A matplotlib figure.
    update:
        ``update(**values)`` changes the figure's artists for the given slider values.
    sliders:
        ``{name: values}`` in display order; each slider steps through its values.
    alt:
        Alt text for the figure; a callable ``alt(**values)`` may describe each frame.
    labels:
        Optional ``{name: description}`` for the sliders.
    play:
        Name of a slider to animate with a Play button (e.g. the step of a trajectory);
        live mode only.
    initial:
        ``{name: value}`` the figure opens on. A slider not named starts at its first value,
        except the ``play`` slider and a slider named ``step``, which start at their last
        value: a trajectory opens on the frame that shows its whole path.
    animated:
        The artists ``update`` changes. When given, the rest of the figure is rendered
        once and reused (blitting), so a slider move redraws only these.
    """

    def __init__(self, fig, update: Callable[..., None], sliders: dict[str, Sequence],
                 alt: str | Callable[..., str], labels: dict[str, str] | None = None,
                 play: str | None = None, initial: dict | None = None,
                 animated: Sequence | None = None):
        if not sliders:
            raise ValueError("sliders is empty: give at least one {name: values}")
        for name, values in sliders.items():
            if len(values) == 0:
                raise ValueError(f"slider {name!r} has no values")
        if play is not None and play not in sliders:
            raise ValueError(f"play={play!r} is not one of the sliders {list(sliders)}")
        self.fig = fig
        self.update = update
        self.sliders = {name: list(values) for name, values in sliders.items()}
        self.alt = alt
        self.labels = labels or {}
        self.play = play
        given = initial or {}
        self.initial = {name: given.get(name, values[-1] if name in (play, "step") else values[0])
                        for name, values in self.sliders.items()}
        for name, value in self.initial.items():
            if value not in self.sliders[name]:
                raise ValueError(f"initial value {value!r} of slider {name!r} is not one of its values")
        self.animated = list(animated or [])
        self._background = None
        fig.set_dpi(FRAME_DPI)

    def alt_text(self, values: dict) -> str:
        """The alt text of the frame for ``values`` (``{slider name: value}``)."""
        return self.alt(**values) if callable(self.alt) else self.alt

    def frame(self, **values) -> str:
        """Update the figure for ``values`` and return it as an ``<img>`` tag."""
        self.update(**values)
        return img_tag(self.render(), self.alt_text(values), width=self.css_size()[0])

    def css_size(self) -> tuple[int, int]:
        """The frame's size in CSS pixels (the same for every frame)."""
        width, height = self.fig.get_size_inches()
        return round(width * FRAME_DPI), round(height * FRAME_DPI)

    def render(self, scale: int = 1) -> bytes:
        """The figure as it is now, as image bytes (blitting the animated artists if any),
        at ``scale`` times the CSS size. Every call gives the same size."""
        dpi = FRAME_DPI * scale
        if self.fig.dpi != dpi:  # something reset it (a backend, a savefig): frames keep their size
            self.fig.set_dpi(dpi)
            self._background = None
        if not self.animated:
            return render(self.fig, dpi=dpi)
        from PIL import Image

        canvas = agg_canvas(self.fig)
        if self._background is None or getattr(self, "_canvas", None) is not canvas:
            for artist in self.animated:  # draw everything that never changes, once
                artist.set_animated(True)
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.fig.bbox)
            self._canvas = canvas
        canvas.restore_region(self._background)
        for artist in self.animated:
            self.fig.draw_artist(artist)
        width, height = canvas.get_width_height(physical=True)
        image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format=FRAME_FORMAT, lossless=True, method=2)
        return buffer.getvalue()

    def _controls(self, mode: str):
        import ipywidgets as widgets

        controls = {}
        for name, values in self.sliders.items():
            controls[name] = widgets.SelectionSlider(
                options=[(_fmt(v), v) for v in values], value=self.initial[name],
                description=self.labels.get(name, name), continuous_update=True,
                style={"description_width": "initial"},
                layout=widgets.Layout(width="100%", max_width="420px"))
        row = list(controls.values())
        if self.play is not None:
            player = widgets.Play(min=0, max=len(self.sliders[self.play]) - 1, interval=120,
                                  value=self.sliders[self.play].index(self.initial[self.play]),
                                  description=f"replay {self.play}")
            widgets.jslink((player, "value"), (controls[self.play], "index"))
            row = [player] + row
        return controls, widgets.HBox(row, layout=widgets.Layout(flex_flow="row wrap"))

    def widget(self, mode: str | None = None):
        """The figure with its sliders: an ipywidgets box ("live") or a :class:`StaticImage`
        whose HTML is the kernel-free slider figure ("static")."""
        import matplotlib.pyplot as plt

        mode = mode or default_mode()
        if mode not in ("live", "static"):
            raise ValueError(f"mode must be 'live' or 'static', got {mode!r}")
        if mode == "static":
            shown = self.static()
            plt.close(self.fig)
            return shown
        import ipywidgets as widgets

        controls, bar = self._controls(mode)
        view = widgets.HTML(self.frame(**self.initial))

        def on_change(_change):
            view.value = self.frame(**{n: c.value for n, c in controls.items()})

        for control in controls.values():
            control.observe(on_change, names="value")
        plt.close(self.fig)  # keep the inline backend from also printing the last frame
        return widgets.VBox([bar, view], layout=widgets.Layout(align_items="flex-start"))

    def static(self) -> StaticImage:
        """Render every frame at ``HIDPI`` times the CSS size into files of their own (named by
        the frame's index in the sliders' product, row-major), and return the page's HTML."""
        names = list(self.sliders)
        files, alts = {}, []
        for combo in itertools.product(*self.sliders.values()):
            values = dict(zip(names, combo))
            self.update(**values)
            files[f"{len(alts)}.{FRAME_FORMAT}"] = self.render(scale=HIDPI)
            alts.append(self.alt_text(values))
        key = write_frames(files, {"alts": alts})
        indices = [self.sliders[n].index(self.initial[n]) for n in names]
        flat = 0
        for n, i in zip(names, indices):
            flat = flat * len(self.sliders[n]) + i
        width, height = self.css_size()
        base = f"{STATIC_TOKEN}/{FRAMES_FOLDER}/{key}/"
        uid = f"ds-{key[:8]}-{next(_COUNTER)}"
        rows = []
        for k, (name, i) in enumerate(zip(names, indices)):
            labels = [_fmt(v) for v in self.sliders[name]]
            label = self.labels.get(name, name)
            rows.append(
                f'<div class="descent-control"><label for="{uid}-{k}">{html.escape(label)}</label>'
                f'<input type="range" id="{uid}-{k}" min="0" max="{len(labels) - 1}" step="1" '
                f'value="{i}" aria-valuetext="{html.escape(labels[i], quote=True)}" '
                f"data-values='{html.escape(json.dumps(labels), quote=True)}'/>"
                f'<output for="{uid}-{k}" aria-hidden="true">{html.escape(labels[i])}</output></div>')
        self.update(**self.initial)
        png = render(self.fig, fmt="png", dpi=FRAME_DPI * HIDPI)
        alt = alts[flat]
        page = (f'<div class="descent-slider" data-frames="{base}" data-format="{FRAME_FORMAT}" '
                f'data-shape="{",".join(str(len(self.sliders[n])) for n in names)}">'
                f'<div class="descent-controls" hidden>{"".join(rows)}</div>'
                f'<img class="descent-frame" src="{base}{flat}.{FRAME_FORMAT}" width="{width}" '
                f'height="{height}" alt="{html.escape(alt, quote=True)}"/></div>')
        return StaticImage(page, png, f"slider figure: {alt}")

    def frame_count(self) -> int:
        return len(list(itertools.product(*self.sliders.values())))

    def frames(self) -> dict[tuple, str]:
        """Every frame's ``<img>`` tag, keyed by its slider values (in the sliders' order)."""
        return {combo: self.frame(**dict(zip(self.sliders, combo)))
                for combo in itertools.product(*self.sliders.values())}


_COUNTER = itertools.count()


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
