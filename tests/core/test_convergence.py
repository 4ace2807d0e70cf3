"""Gradient descent converges below 2/λ_max and diverges above it.

That every optimizer reaches the minimum of the ravine and of Rosenbrock with the settings of the
book's race is tested where those settings live: tests/book/test_ch11_race_and_guide.py.
"""

import numpy as np

import optimkit
from optimkit import landscapes


def test_gradient_descent_diverges_just_past_two_over_lambda_max():
    land = landscapes.ravine(20.0)   # λ_max = 4, so the knife edge is lr = 0.5
    ok = landscapes.run(land, lambda p: optimkit.SGD(p, lr=0.49), steps=2000)
    bad = landscapes.run(land, lambda p: optimkit.SGD(p, lr=0.51), steps=2000)
    assert np.linalg.norm(ok.points[-1]) < 1e-6
    assert bad.diverged
