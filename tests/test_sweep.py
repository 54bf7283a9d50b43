"""gdlab.sweep against a plain NumPy transcription of the workshop's loop, and the theory of the stable step."""

import math

import numpy as np
import pytest

import gdlab
from gdlab.sweep import parse_iterations, parse_learning_rates, sweep


def numpy_losses(X, y, w0, eta, iterations):
    """The workshop's loop (its slips fixed): MSE after each requested number of iterations."""
    X_b = np.c_[np.ones((len(X), 1)), X]
    w = np.array(w0, dtype=float).reshape(-1, 1)
    yy = y.reshape(-1, 1)
    m = len(X)
    out = {}
    with np.errstate(all="ignore"):
        for it in range(1, max(iterations) + 1):
            w = w - eta * (2 / m * X_b.T.dot(X_b.dot(w) - yy))
            if it in iterations:
                out[it] = float(np.mean((X_b.dot(w) - yy) ** 2))
    return out


def test_grid_equals_the_workshop_loop_run_at_each_learning_rate():
    ds = gdlab.datasets.workshop_line()
    lrs = [0.01, 0.05, 0.1, 0.3, 0.45]
    its = [1, 10, 100, 300]
    res = sweep(ds.X, ds.y, lrs, its, coef_init=ds.coef_init, intercept_init=ds.intercept_init)
    assert not res.diverged.any()
    for i, eta in enumerate(lrs):
        ref = numpy_losses(ds.X, ds.y, ds.w_init, eta, its)
        np.testing.assert_allclose(res.final_loss[i], [ref[n] for n in its], rtol=1e-10)


def test_steps_above_two_over_L_diverge_and_steps_below_do_not():
    ds = gdlab.datasets.workshop_line()
    X_b = np.c_[np.ones(len(ds.X)), ds.X]
    L = np.linalg.eigvalsh(2 / len(ds.X) * X_b.T @ X_b)[-1]
    res = sweep(ds.X, ds.y, [0.9 * 2 / L, 0.99 * 2 / L, 1.02 * 2 / L, 1.5 * 2 / L], [5, 2000],
                coef_init=ds.coef_init, intercept_init=ds.intercept_init)
    assert res.stable_step == pytest.approx(2 / L, rel=1e-12)
    np.testing.assert_array_equal(res.diverged[:, -1], [False, False, True, True])
    assert np.all(res.diverged_at[2:] > 0) and np.all(res.diverged_at[:2] == 0)
    assert np.isnan(res.final_loss[2:, -1]).all()
    # stable runs end at the minimum the Normal Equation gives
    cf = gdlab.closed_form(ds.X, ds.y)
    np.testing.assert_allclose(res.final_loss[:2, -1], cf.loss, rtol=1e-9)
    assert res.optimum_loss == pytest.approx(cf.loss, rel=1e-12)


def test_grid_is_sorted_and_frame_and_dict_agree():
    ds = gdlab.datasets.workshop_line()
    res = sweep(ds.X, ds.y, [0.3, 0.01, 0.1], [100, 10])
    assert res.learning_rates.tolist() == [0.01, 0.1, 0.3] and res.iterations.tolist() == [10, 100]
    frame = res.to_frame()
    assert len(frame) == 6
    np.testing.assert_array_equal(frame["final_loss"].to_numpy().reshape(3, 2), res.final_loss)
    d = res.to_dict()
    assert d["final_loss"] == res.final_loss.tolist() and d["stable_step"] == res.stable_step
    eta, n, loss = res.best()
    assert loss == np.nanmin(res.final_loss)
    assert res.best_at(10)[1] == np.nanmin(res.final_loss[:, 0])


def test_module_and_function_are_both_callable_as_gdlab_sweep():
    ds = gdlab.datasets.workshop_line()
    a = gdlab.sweep(ds.X, ds.y, [0.1], [10])
    b = sweep(ds.X, ds.y, [0.1], [10])
    np.testing.assert_array_equal(a.final_loss, b.final_loss)


@pytest.mark.parametrize("lrs,its,match", [
    ([0.1, -1], [10], "learning_rates must be positive"),
    ([0.1], [0], "iterations must be positive integers"),
    ([0.1], [2.5], "iterations must be positive integers"),
    ([], [10], "non-empty"),
    ([float("nan")], [10], "learning_rates must be positive"),
])
def test_bad_grids_are_refused(lrs, its, match):
    ds = gdlab.datasets.workshop_line()
    with pytest.raises(ValueError, match=match):
        sweep(ds.X, ds.y, lrs, its)


def test_sweep_refuses_settings_it_owns():
    ds = gdlab.datasets.workshop_line()
    with pytest.raises(ValueError, match="max_iter"):
        sweep(ds.X, ds.y, [0.1], [10], max_iter=5)


def test_parse_learning_rates_and_iterations():
    np.testing.assert_allclose(parse_learning_rates("1e-3:1:4"), [1e-3, 1e-2, 1e-1, 1])
    np.testing.assert_allclose(parse_learning_rates("0.1, 0.5"), [0.1, 0.5])
    assert parse_iterations("10,100").tolist() == [10, 100]
    for bad in ("0:1:3", "a:b:c", "1:2", "-0.1", "x"):
        with pytest.raises(ValueError):
            parse_learning_rates(bad)
    for bad in ("0", "ten", "", "-5"):
        with pytest.raises(ValueError):
            parse_iterations(bad)
    assert math.isfinite(parse_learning_rates("1e-3:1:20")[-1])
