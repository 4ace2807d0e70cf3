"""Figures the chapters drive with sliders (see :mod:`optimkit.interactive`)."""

from .landscape import COLORS, draw_contours, race, trajectory_figure

__all__ = ["COLORS", "draw_contours", "race", "trajectory_figure"]
