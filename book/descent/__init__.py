"""descent: the Descent book's machinery, one module per chapter (optimkit is the algorithms).

* ``ch01_introduction`` ... ``ch12_beyond``: what chapter ``book/NN-name.md`` computes and draws,
  named like the chapter file. A function lives in the module of the first chapter that uses
  it; later chapters import it from there (imports go to earlier chapters, never back).
* shared by the chapters: :mod:`descent.sliders` (:class:`~descent.sliders.SliderFigure`,
  :func:`~descent.sliders.show_figure`), :mod:`descent.drawing` (contours, trajectories, the race
  figure, :data:`~descent.drawing.COLORS`), :mod:`descent.variants` (the textbook forms of the
  optimizers, to compare with optimkit's) and :mod:`descent.prose` (``glue`` and ``table``).

Chapters import from ``descent`` and ``optimkit`` only. Nothing in ``optimkit`` imports this
package.
"""
