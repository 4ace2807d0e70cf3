"""descent.ch01_introduction: gradient descent on a parabola, checked against its closed form."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from descent import ch01_introduction as ch01


@pytest.mark.parametrize("lr", [0.05, 0.3, 0.42, 0.44, 0.6])
def test_gd_1d_path_multiplies_the_error_by_one_minus_lr_lambda(lr):
    lam, minimum, start = 14 / 3, 29 / 14, 0.0
    path = ch01.gd_1d_path(lambda t: lam * (t - minimum), lr, start, steps=12)
    k = np.arange(13)
    np.testing.assert_allclose(path - minimum, (1 - lr * lam) ** k * (start - minimum),
                               rtol=1e-12, atol=1e-14)
    grows = abs(path[-1] - minimum) > abs(start - minimum)
    assert grows == (lr > 2 / lam)


def test_gd_1d_figure_has_one_frame_per_lr_and_describes_each():
    x, y = np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 7.0])
    loss = lambda t: 0.5 * np.mean((np.multiply.outer(t, x) - y) ** 2, axis=-1)  # noqa: E731
    grad = lambda t: float(np.mean(x * (t * x - y)))  # noqa: E731
    lam = float(np.mean(x * x))
    sf = ch01.gd_1d_figure(loss, grad, [0.1, 0.44], start=0.0, minimizer=29 / 14, curvature=lam)
    frames = sf.frames()
    assert len(frames) == 2 and len(set(frames.values())) == 2
    assert "move away from the minimum" in sf.alt_text({"lr": 0.44})      # 0.44 > 2/λ = 0.4286
    assert "approach the minimum" in sf.alt_text({"lr": 0.1})
    assert "from one side" in sf.alt_text({"lr": 0.1}) and "side to side" in sf.alt_text({"lr": 0.44})
    plt.close(sf.fig)
