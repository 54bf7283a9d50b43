"""A scipy.sparse X through the core (issue 12): the same statistics, fits and trajectories as the same matrix dense,
from its stored entries only."""

import sys

import numpy as np
import pytest
import scipy.sparse as sp

import gdlab
from gdlab.scaling import Scaling
from gdlab.sources.gram import GramStats

LOSSES = ["squared_error", "huber", "log_loss", "poisson"]
PENALTIES = [None, "l2", "l1", "elasticnet"]


def sparse_problem(m=400, d=25, density=0.1, seed=0):
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((m, d)) * (rng.random((m, d)) < density) * rng.uniform(0.1, 50.0, d)
    w = rng.standard_normal(d) / 10
    eta = D @ w / 5 + 0.3
    return D, w, eta, rng


def target(loss, eta, rng):
    if loss == "log_loss":
        return (rng.random(eta.size) < 1 / (1 + np.exp(-eta))).astype(float)
    if loss == "poisson":
        return rng.poisson(np.exp(np.clip(eta, -5, 3))).astype(float)
    return eta * 5 + rng.standard_normal(eta.size)


@pytest.mark.parametrize("fmt", ["csr_matrix", "csc_matrix", "csr_array", "coo_array"])
def test_sparse_statistics_are_the_dense_ones(fmt):
    D, _, eta, rng = sparse_problem()
    Y = np.column_stack([eta, -eta + 1])
    sw = rng.uniform(0.2, 3.0, D.shape[0])
    S = getattr(sp, fmt)(D)
    for weights in (None, sw):
        a = GramStats.from_arrays(np.ascontiguousarray(D), Y, weights, kernel="numpy")
        b = GramStats.from_arrays(S, Y, weights)
        assert a.n == pytest.approx(b.n, rel=1e-15) and a.n_rows == b.n_rows
        np.testing.assert_allclose(b.mean, a.mean, rtol=1e-12, atol=1e-14)
        scale = np.sqrt(np.outer(np.diag(a.comoment), np.diag(a.comoment))) + 1e-300
        assert np.max(np.abs(b.comoment - a.comoment) / scale) < 1e-12
        sa, sb = Scaling.from_columns(D, weights, True), Scaling.from_columns(sp.csr_array(D), weights, True)
        np.testing.assert_allclose(sb.center, sa.center, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(sb.scale, sa.scale, rtol=1e-10)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("penalty", PENALTIES)
def test_full_batch_descent_on_sparse_x_is_the_dense_descent(loss, penalty):
    D, _, eta, rng = sparse_problem(seed=1)
    y = target(loss, eta, rng)
    kw = dict(loss=loss, penalty=penalty, alpha=1e-3, max_iter=60, tol=None, warn=False)
    # (mini-batches: the NumPy epochs on both, whose shuffles are the same; the compiled epochs draw their own)
    for extra in ({}, {"learning_rate": 1e-4, "standardize": False},
                  {"batch_size": 16, "random_state": 0, "engine": "numpy"},
                  {"batch_size": 1, "random_state": 1, "max_iter": 3, "learning_rate": 1e-4, "standardize": False,
                   "engine": "numpy"}):
        a = gdlab.descend(D, y, **{**kw, **extra})
        b = gdlab.descend(sp.csr_matrix(D), y, **{**kw, **extra})
        assert a.source == b.source
        # full-batch 'auto' gd takes Barzilai-Borwein steps under a line search: the secant steps and the
        # accept/reject decisions at the rounding of F amplify the last bits of the sums, so those paths agree to
        # ~1e-7; every fixed-step path agrees to 1e-12
        tight = bool(extra)
        np.testing.assert_allclose(b.trajectory.params, a.trajectory.params, rtol=1e-12 if tight else 1e-6,
                                   atol=1e-12 if tight else 1e-8)
        np.testing.assert_allclose(b.trajectory.loss, a.trajectory.loss, rtol=1e-12 if tight else 1e-10)
        if penalty in ("l1", "elasticnet"):
            assert np.array_equal(b.coef == 0, a.coef == 0)  # L1 keeps its exact zeros
        np.testing.assert_allclose(b.predict(sp.csr_matrix(D)), a.predict(D), rtol=1e-12 if tight else 1e-5,
                                   atol=1e-12 if tight else 1e-7)


def test_sample_weights_and_several_outputs_on_sparse_x():
    D, _, eta, rng = sparse_problem(seed=2)
    Y = np.column_stack([eta, 2 - eta]) * 5 + rng.standard_normal((D.shape[0], 2))
    sw = rng.uniform(0.2, 3.0, D.shape[0])
    a = gdlab.descend(D, Y, sample_weight=sw, penalty="l2", alpha=0.01)
    b = gdlab.descend(sp.csc_matrix(D), Y, sample_weight=sw, penalty="l2", alpha=0.01)
    assert a.converged and b.converged
    np.testing.assert_allclose(b.coef, a.coef, rtol=1e-10, atol=1e-12)


def test_the_closed_form_of_sparse_x_is_the_dense_one_by_normal_equations_or_lsmr(monkeypatch):
    D, _, eta, rng = sparse_problem(seed=3)
    y = target("squared_error", eta, rng)
    sw = rng.uniform(0.5, 2.0, D.shape[0])
    for l2 in (0.0, 0.5):
        want = gdlab.closed_form(D, y, l2=l2, sample_weight=sw)
        got = gdlab.closed_form(sp.csr_matrix(D), y, l2=l2, sample_weight=sw)
        assert got.extra["solver"].startswith("sparse normal equations")
        np.testing.assert_allclose(got.coef, want.coef, rtol=1e-10, atol=1e-12)
        assert got.loss == pytest.approx(want.loss, rel=1e-12)
        # wide: LSMR on the implicitly centred operator (forced here by lowering the width limit)
        monkeypatch.setattr(sys.modules["gdlab.closed_form"], "_SPARSE_NORMAL_MAX", 5)
        lsmr = gdlab.closed_form(sp.csr_matrix(D), y, l2=l2 + 1e-3, sample_weight=sw)
        ref = gdlab.closed_form(D, y, l2=l2 + 1e-3, sample_weight=sw)
        monkeypatch.undo()
        assert lsmr.extra["solver"] == "LSMR (sparse least squares)" and lsmr.converged
        np.testing.assert_allclose(lsmr.coef, ref.coef, rtol=1e-7, atol=1e-9 * np.abs(ref.coef).max())
        assert lsmr.intercept == pytest.approx(ref.intercept, rel=1e-7, abs=1e-9)
        assert lsmr.loss == pytest.approx(ref.loss, rel=1e-10)


def test_a_bad_stored_entry_is_named_by_row_and_column():
    D, _, eta, _ = sparse_problem()
    S = sp.lil_matrix(D)
    S[7, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN at row 7, column 2 \(a stored entry"):
        gdlab.descend(S.tocsr(), eta)
    with pytest.raises(ValueError, match="solver='qr' factors the dense X"):
        gdlab.closed_form(sp.csr_matrix(D), eta, solver="qr")


def test_a_sparse_x_is_never_densified_by_the_fit():
    """The fit's allocations stay O(nnz + d^2): a 200000 x 500 X at 0.2% density (800 MB dense, 2 MB stored) fits
    in a few tens of MB, full batch and mini-batch."""
    import tracemalloc

    rng = np.random.default_rng(5)
    m, d = 200_000, 500
    S = sp.random(m, d, density=0.002, format="csr", random_state=6, data_rvs=rng.standard_normal)
    y = S @ rng.standard_normal(d) + rng.standard_normal(m)
    dense_bytes = m * d * 8
    for kw in (dict(max_iter=20), dict(loss="huber", max_iter=5), dict(batch_size=256, max_iter=1)):
        tracemalloc.start()
        r = gdlab.descend(S, y, penalty="l2", alpha=0.1, tol=None, warn=False, random_state=0, **kw)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert np.all(np.isfinite(r.coef))
        assert peak < dense_bytes / 10, (kw, peak)
