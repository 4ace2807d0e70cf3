"""descent.ch12_beyond: chapter 12's figures and race over optimkit.beyond, checked against closed
forms and the claims the chapter makes (optimkit.beyond itself: tests/core/test_beyond.py)."""

import numpy as np

from optimkit import landscapes as L
from optimkit import schedules

from descent import ch12_beyond as ch12


# -- chapter-12 figures and race --------------------------------------------------------------------------

def test_sam_objective_of_a_parabola_is_the_parabola_at_the_far_edge():
    xs = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(ch12.sam_objective(lambda x: x ** 2, xs, 0.5), (np.abs(xs) + 0.5) ** 2)
    np.testing.assert_array_equal(ch12.sam_objective(lambda x: x ** 2, xs, 0.0), xs ** 2)


def test_sam_objective_fills_the_sharp_well_first():
    sf = L.sharp_flat_1d()
    sharp, flat = (ch12.sam_objective(sf.f, [m], 0.1)[0] for m in sf.minima)
    assert sf(sf.minima[0]) < sf(sf.minima[1])  # without SAM the sharp minimum is (slightly) deeper
    assert sharp > flat + 0.3


def test_sam_figure_frames_differ_and_describe_themselves():
    sf = ch12.sam_figure(L.sharp_flat_1d(), rhos=[0.0, 0.3])
    assert sf.frame_count() == 2
    assert sf.frame(rho=0.0) != sf.frame(rho=0.3)
    assert "radius 0.3" in sf.alt_text({"rho": 0.3})


def test_beyond_race_counts_gradient_evaluations():
    runs, evals = ch12.beyond_race(L.rosenbrock(), steps=200, lbfgs_steps=60)
    for label, t in runs.items():
        ev = evals[label]
        assert len(ev) == len(t.points) and ev[0] == 0
        # every step costs at least one gradient, except L-BFGS once it sits at a stationary point
        assert np.all(np.diff(ev) >= (0 if label.startswith("L-BFGS") else 1))
        if label.startswith("SAM"):
            np.testing.assert_array_equal(ev, 2 * np.arange(len(ev)))
    lbfgs = runs[next(k for k in runs if k.startswith("L-BFGS"))]
    assert np.linalg.norm(lbfgs.points[-1] - 1.0) < 1e-6
    lamb = runs[next(k for k in runs if k.startswith("LAMB"))]
    np.testing.assert_allclose(lamb.lrs, [schedules.cosine(0.02, 200)(k) for k in range(200)])
