"""Slider figures: live mode updates the same artists in place; static mode renders every
slider combination into HiDPI image files and a page of plain HTML (range inputs + the default
frame); importing the book leaves matplotlib's backend alone."""

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import pytest

import optimkit
from optimkit import landscapes

from descent.drawing import race, trajectory_figure
from descent.sliders import SliderFigure
from ipywidgets.widgets.widget_link import Link


def sine_figure(**kwargs):
    fig, ax = plt.subplots()
    x = np.linspace(0, 6, 50)
    (line,) = ax.plot(x, np.sin(x))

    def update(a, b):
        line.set_ydata(a * np.sin(b * x))

    return SliderFigure(fig, update, {"a": [0.5, 1.0, 1.5], "b": [1.0, 2.0]},
                        alt=lambda a, b: f"amplitude {a}, frequency {b}", **kwargs), line


@pytest.mark.parametrize("blit", [False, True])
def test_live_mode_updates_the_same_artists_in_place(blit):
    sf, line = sine_figure()
    if blit:
        sf, line = sine_figure()
        sf.animated = [line]
    box = sf.widget("live")
    controls, view = box.children[0].children, box.children[1]
    assert 'alt="amplitude 0.5, frequency 1.0"' in view.value
    first = view.value
    controls[0].value = 1.5
    assert 'alt="amplitude 1.5, frequency 1.0"' in view.value and view.value != first
    np.testing.assert_allclose(line.get_ydata(), 1.5 * np.sin(np.linspace(0, 6, 50)))
    assert list(sf.fig.axes[0].lines) == [line]  # nothing was added or rebuilt


def decoded(data: bytes) -> np.ndarray:
    from PIL import Image
    import io

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float)


def test_static_mode_writes_every_frame_to_a_file_and_the_page_holds_the_default(tmp_path, monkeypatch):
    import base64
    import json
    import re

    from descent import sliders

    monkeypatch.setenv("DESCENT_FRAMES", str(tmp_path))
    sf, line = sine_figure(initial={"a": 1.0})
    bundle = sf.widget("static")._repr_mimebundle_()
    page = bundle["text/html"]
    assert "base64" not in page, "frames belong in files, not in the page"
    folder = re.search(r'data-frames="@descent-static@/descent-frames/(\w+)/"', page).group(1)
    files = sorted(p.name for p in (tmp_path / "descent-frames" / folder).iterdir())
    assert files == sorted([f"{i}.webp" for i in range(6)] + ["frames.json", ".complete"])
    alts = json.loads((tmp_path / "descent-frames" / folder / "frames.json").read_text())["alts"]
    # Row-major over the sliders' product: index = i_a * 2 + i_b.
    assert alts[3] == "amplitude 1.0, frequency 2.0" and alts[4] == "amplitude 1.5, frequency 1.0"
    # The default frame (a=1.0, b=1.0: index 2) is the <img>, with its alt text and CSS size.
    img = re.search(r"<img [^>]*>", page).group(0)
    assert f'descent-frames/{folder}/2.webp"' in img and 'alt="amplitude 1.0, frequency 1.0"' in img
    assert 'width="512"' in img and 'height="384"' in img   # 6.4 x 4.8 in at 80 px/in
    # One labelled range input per slider, announcing its value (not its index).
    inputs = re.findall(r"<input [^>]*>", page)
    assert len(inputs) == 2 and 'aria-valuetext="1"' in inputs[0] and 'value="1"' in inputs[0]
    assert len(re.findall(r"<label for=", page)) == 2 and "hidden" in page
    # Frames are HiDPI (twice the CSS size) and show what update() drew: compare frame 5
    # (a=1.5, b=2.0) with an independent savefig of the same state.
    frame = decoded((tmp_path / "descent-frames" / folder / "5.webp").read_bytes())
    assert frame.shape == (768, 1024, 3)
    sf.update(a=1.5, b=2.0)
    reference = decoded(sliders.render(sf.fig, fmt="png", dpi=160))
    assert np.mean(np.abs(frame - reference)) < 0.5
    other = decoded((tmp_path / "descent-frames" / folder / "4.webp").read_bytes())
    assert np.mean(np.abs(other - reference)) > 0.5   # negative control: another frame differs
    # The PDF's copy: the default frame as PNG.
    png = decoded(base64.b64decode(bundle["image/png"]))
    sf.update(a=1.0, b=1.0)
    assert np.mean(np.abs(png - decoded(sliders.render(sf.fig, fmt="png", dpi=160)))) < 0.5


def test_a_step_slider_opens_on_its_last_value():
    fig, ax = plt.subplots()
    sf = SliderFigure(fig, lambda step, lr: None, {"step": [0, 5, 10], "lr": [0.1, 0.2]}, alt="x")
    assert sf.initial == {"step": 10, "lr": 0.1}
    with pytest.raises(ValueError, match="initial value 3 of slider 'step' is not one of its values"):
        SliderFigure(fig, lambda step: None, {"step": [0, 5]}, alt="x", initial={"step": 3})
    plt.close(fig)


@pytest.mark.parametrize("blit", [False, True])
def test_live_frames_keep_their_size_when_the_figure_dpi_changes(blit):
    """A backend (IPython's inline one) may reset the figure's dpi after the first frame."""
    sf, line = sine_figure()
    if blit:
        sf.animated = [line]
    box = sf.widget("live")
    controls, view = box.children[0].children, box.children[1]
    import base64
    import re

    def size(tag):
        return decoded(base64.b64decode(re.search(r"base64,([^\"]+)", tag).group(1))).shape

    first = size(view.value)
    sf.fig.set_dpi(100)
    controls[0].value = 1.5
    assert size(view.value) == first == (384, 512, 3)


def test_importing_the_book_never_changes_the_matplotlib_backend():
    import subprocess
    import sys

    code = ("import matplotlib, importlib, pkgutil, descent\n"
            "before = matplotlib.get_backend()\n"
            "for m in pkgutil.iter_modules(descent.__path__):\n"
            "    importlib.import_module('descent.' + m.name)\n"
            "import matplotlib.pyplot\n"
            "after = matplotlib.get_backend()\n"
            "matplotlib.use('Agg')\n"
            "print(before, after, matplotlib.get_backend())\n")
    env = {**__import__("os").environ, "MPLBACKEND": "pdf"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    before, after, control = out.stdout.split()
    assert before == after == "pdf", out.stdout
    assert control.lower() == "agg"  # negative control: a module calling matplotlib.use would be seen


def test_trajectory_figure_blits_identically_to_a_full_render():
    land = landscapes.ravine(20.0)
    runs = race(land, {"SGD": lambda p: optimkit.SGD(p, lr=0.3),
                       "Adam": lambda p: optimkit.Adam(p, lr=0.3)}, steps=40)
    sf = trajectory_figure(land, runs, frames=5)
    assert sf.sliders["step"] == [0, 10, 20, 30, 40]
    from PIL import Image
    import io

    sf.update(step=20)
    blitted = np.asarray(Image.open(io.BytesIO(sf.render())).convert("RGB"), dtype=float)
    for artist in sf.animated:
        artist.set_animated(False)
    sf.fig.canvas.draw()
    full = np.asarray(sf.fig.canvas.buffer_rgba())[..., :3].astype(float)
    assert blitted.shape == full.shape
    assert np.mean(np.abs(blitted - full)) < 0.5  # same picture up to antialiasing at edges
    assert "SGD at (" in sf.alt_text({"step": 20}) and "after 20 steps" in sf.alt_text({"step": 20})


def test_bad_arguments_are_named():
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match="sliders is empty"):
        SliderFigure(fig, lambda: None, {}, alt="x")
    with pytest.raises(ValueError, match="slider 'a' has no values"):
        SliderFigure(fig, lambda a: None, {"a": []}, alt="x")
    with pytest.raises(ValueError, match="play='b' is not one of the sliders"):
        SliderFigure(fig, lambda a: None, {"a": [1]}, alt="x", play="b")
    with pytest.raises(ValueError, match="mode must be 'live' or 'static'"):
        SliderFigure(fig, lambda a: None, {"a": [1]}, alt="x").widget("both")


def test_frames_are_every_combination_of_slider_values():
    fig, ax = plt.subplots()
    (line,) = ax.plot([0, 1], [0, 0])
    sf = SliderFigure(fig, lambda a, b: line.set_ydata([a, b]), {"a": [0, 1], "b": [0, 1, 2]},
                      alt=lambda a, b: f"a={a} b={b}")
    frames = sf.frames()
    assert list(frames) == [(a, b) for a in (0, 1) for b in (0, 1, 2)] and len(frames) == sf.frame_count()
    assert frames[(1, 2)] == sf.frame(a=1, b=2) and 'alt="a=1 b=2"' in frames[(1, 2)]
    plt.close(fig)
