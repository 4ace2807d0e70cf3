"""Slider figures: live mode updates the same artists in place; static mode pre-renders
every slider combination into Stacks linked to the sliders."""

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


def test_static_mode_nests_one_stack_per_slider_and_links_each():
    sf, _ = sine_figure()
    constructed = []
    widgets.Widget.on_widget_constructed(constructed.append)
    box = sf.widget("static")
    controls, outer = box.children[0].children, box.children[1]
    assert isinstance(outer, widgets.Stack) and len(outer.children) == 3
    inners = outer.children
    assert all(isinstance(s, widgets.Stack) and len(s.children) == 2 for s in inners)
    frames = [leaf.value for s in inners for leaf in s.children]
    assert len(set(frames)) == 6 == sf.frame_count()
    assert 'alt="amplitude 1.5, frequency 2.0"' in inners[2].children[1].value
    # Each stack is jslink-ed to its slider's index: 1 link for the outer, 3 for the inners.
    ours = [w for w in constructed if isinstance(w, Link)]
    assert sorted((l.source[0].description, l.source[1], l.target[1]) for l in ours) == sorted(
        [("a", "index", "selected_index")] + [("b", "index", "selected_index")] * 3)


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
