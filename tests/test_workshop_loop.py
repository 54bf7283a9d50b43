"""gdlab's GD against a plain NumPy transcription of the workshop loop (with its two slips fixed)."""

import numpy as np
import pytest

import gdlab


def workshop_loop(eta=0.1, n_iterations=10):
    np.random.seed(42)
    X = 2 * np.random.rand(50, 1)
    X_b = np.c_[np.ones((50, 1)), X]
    y = 8 + 6 * X + np.random.randn(50, 1)
    m = len(X)
    w = np.random.randn(2, 1)
    w_old = []
    for _ in range(n_iterations):
        gradients = 2 / m * X_b.T.dot(X_b.dot(w) - y)
        w = w - eta * gradients
        w_old.append(w.copy())
    return np.array(w_old)[:, :, 0]


@pytest.mark.parametrize("source", ["memory", "gram", "auto"])
def test_ten_iterations_equal_the_workshop_loop(source):
    ds = gdlab.datasets.workshop_line()
    r = gdlab.descend(ds.X, ds.y, learning_rate=0.1, max_iter=10, tol=None, gtol=None, source=source,
                      coef_init=ds.coef_init, intercept_init=ds.intercept_init)
    expected = workshop_loop()
    np.testing.assert_allclose(r.trajectory.params[1:], expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(r.params, expected[-1], rtol=1e-13)
    assert r.n_iter == 10 and r.status == 1


def test_workshop_data_are_the_workshops_numbers():
    np.random.seed(42)
    X = 2 * np.random.rand(50, 1)
    y = 8 + 6 * X + np.random.randn(50, 1)
    w = np.random.randn(2, 1)
    ds = gdlab.datasets.workshop_line()
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.y, y[:, 0])
    np.testing.assert_array_equal(ds.w_init, w[:, 0])
    np.random.seed(42)
    Xm = np.random.normal(loc=2, scale=0.3, size=(1000, 1))
    jitter = np.random.rand(len(Xm), 1)
    dm = gdlab.datasets.workshop_mean()
    np.testing.assert_array_equal(dm.X, Xm)
    np.testing.assert_array_equal(dm.jitter, jitter[:, 0])
    assert dm.mse(dm.candidates).argmin() == np.argmin([np.sum(np.square(c - Xm)) / len(Xm) for c in dm.candidates])
