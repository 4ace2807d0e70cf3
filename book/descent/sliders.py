"""Slider-driven figures that are live in a kernel and still interactive on a static page.

Importing this module switches matplotlib to the Agg backend (frames are rendered off-screen);
that is why it lives in the book, not in optimkit.

One object, two ways to show it:

* **live** (JupyterLab): a slider move calls ``update(**values)``, which changes the
  figure's artists in place (``set_data``, ``set_offsets``), then the same figure is
  re-rendered into the same image widget. Nothing is rebuilt.
* **static** (the built site, no kernel): every combination of slider values is
  rendered once at build time into nested ``Stack`` widgets, and each slider's
  ``index`` is ``jslink``-ed to its stacks' ``selected_index``. The links live in
  the saved widget state, so the browser flips frames with no server.

The mode is "static" when the environment variable ``DESCENT_STATIC`` is set (the
book build sets it) and "live" otherwise. Frames are ``<img>`` tags with alt text.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import os
from typing import Callable, Sequence

import ipywidgets as widgets
import matplotlib

matplotlib.use("Agg")  # frames are rendered off-screen, in a kernel or a build alike
import matplotlib.pyplot as plt  # noqa: E402

STATIC_ENV = "DESCENT_STATIC"
FRAME_FORMAT = "webp"  # lossless WebP: a third of PNG's size for line art
FRAME_DPI = 80


def default_mode() -> str:
    return "static" if os.environ.get(STATIC_ENV) else "live"


def render(fig, fmt: str = FRAME_FORMAT, dpi: int = FRAME_DPI) -> bytes:
    """The figure's current state as image bytes."""
    buffer = io.BytesIO()
    options = {"pil_kwargs": {"lossless": True, "method": 4}} if fmt == "webp" else {}
    # An opaque white face keeps figures readable on the site's dark theme too.
    fig.savefig(buffer, format=fmt, dpi=dpi, facecolor="white", **options)
    return buffer.getvalue()


def img_tag(data: bytes, alt: str, fmt: str = FRAME_FORMAT) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return (f'<img src="data:image/{fmt};base64,{encoded}" alt="{html.escape(alt, quote=True)}" '
            f'style="max-width:100%;height:auto" class="descent-frame"/>')


def show_figure(fig, alt: str):
    """Display a static figure as an image with alt text, and close it."""
    from IPython.display import HTML, display

    display(HTML(img_tag(render(fig, dpi=100), alt)))
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
        self.initial = {name: (initial or {}).get(name, values[0]) for name, values in self.sliders.items()}
        self.animated = list(animated or [])
        self._background = None
        fig.set_dpi(FRAME_DPI)

    def alt_text(self, values: dict) -> str:
        """The alt text of the frame for ``values`` (``{slider name: value}``)."""
        return self.alt(**values) if callable(self.alt) else self.alt

    def frame(self, **values) -> str:
        """Update the figure for ``values`` and return it as an ``<img>`` tag."""
        self.update(**values)
        return img_tag(self.render(), self.alt_text(values))

    def render(self) -> bytes:
        """The figure as it is now, as image bytes (blitting the animated artists if any)."""
        if not self.animated:
            return render(self.fig)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from PIL import Image

        canvas = self.fig.canvas
        if not isinstance(canvas, FigureCanvasAgg):  # plt.close() detaches the Agg canvas
            canvas = FigureCanvasAgg(self.fig)
            self._background = None
        if self._background is None:  # draw everything that never changes, once
            for artist in self.animated:
                artist.set_animated(True)
            canvas.draw()
            self._background = canvas.copy_from_bbox(self.fig.bbox)
        canvas.restore_region(self._background)
        for artist in self.animated:
            self.fig.draw_artist(artist)
        width, height = canvas.get_width_height()
        image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format=FRAME_FORMAT, lossless=True, method=2)
        return buffer.getvalue()

    def _controls(self, mode: str):
        controls = {}
        for name, values in self.sliders.items():
            controls[name] = widgets.SelectionSlider(
                options=[(_fmt(v), v) for v in values], value=self.initial[name],
                description=self.labels.get(name, name), continuous_update=True,
                style={"description_width": "initial"}, layout=widgets.Layout(width="420px"))
        row = list(controls.values())
        # A Play button linked to the slider breaks the slider's own link to the frames in
        # the saved-state page (measured in Chromium), so the static page keeps the slider only.
        if self.play is not None and mode == "live":
            player = widgets.Play(min=0, max=len(self.sliders[self.play]) - 1, interval=120,
                                  description=f"replay {self.play}")
            widgets.jslink((player, "value"), (controls[self.play], "index"))
            row = [player] + row
        return controls, widgets.HBox(row, layout=widgets.Layout(flex_flow="row wrap"))

    def widget(self, mode: str | None = None):
        """The figure with its sliders, as an ipywidgets box ("live" or "static")."""
        mode = mode or default_mode()
        if mode not in ("live", "static"):
            raise ValueError(f"mode must be 'live' or 'static', got {mode!r}")
        controls, bar = self._controls(mode)
        if mode == "live":
            view = widgets.HTML(self.frame(**self.initial))

            def on_change(_change):
                view.value = self.frame(**{n: c.value for n, c in controls.items()})

            for control in controls.values():
                control.observe(on_change, names="value")
        else:
            view = self._stack(list(self.sliders), {}, controls)
        plt.close(self.fig)  # keep the inline backend from also printing the last frame
        return widgets.VBox([bar, view], layout=widgets.Layout(align_items="flex-start"))

    def _stack(self, names, fixed, controls):
        """Nested Stacks: one level per slider, each level jslink-ed to its slider."""
        name, rest = names[0], names[1:]
        children = []
        for value in self.sliders[name]:
            values = {**fixed, name: value}
            children.append(widgets.HTML(self.frame(**values)) if not rest
                            else self._stack(rest, values, controls))
        stack = widgets.Stack(children, selected_index=self.sliders[name].index(self.initial[name]))
        widgets.jslink((controls[name], "index"), (stack, "selected_index"))
        return stack

    def frame_count(self) -> int:
        return len(list(itertools.product(*self.sliders.values())))

    def frames(self) -> dict[tuple, str]:
        """Every frame's ``<img>`` tag, keyed by its slider values (in the sliders' order)."""
        return {combo: self.frame(**dict(zip(self.sliders, combo)))
                for combo in itertools.product(*self.sliders.values())}


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
