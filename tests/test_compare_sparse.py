"""gdlab.compare on a scipy.sparse X (issue 12): every row that reads X the same way gives the dense table's result,
the rows that do not (scikit-learn's SGD on sparse data) are scikit-learn's own sparse fit, and X is never densified."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge, SGDClassifier, SGDRegressor

import gdlab

FORMATS = ["csr_matrix", "csc_matrix", "coo_matrix", "csr_array", "coo_array"]


def raw_sparse(m, d, density, seed):
    """Raw, non-centred sparse features of different scales (a column's stored values around its own level)."""
    rng = np.random.default_rng(seed)
    A = sp.random(m, d, density=density, random_state=seed, format="csr", data_rvs=lambda k: rng.uniform(1, 3, k))
    A = A @ sp.diags(rng.uniform(0.5, 20.0, d))
    return sp.csr_array(A)


@pytest.fixture(scope="module")
def regression_data():
    A = raw_sparse(400, 25, 0.12, 1)
    rng = np.random.default_rng(2)
    y = A @ rng.normal(size=A.shape[1]) + 3.0 + rng.normal(scale=0.5, size=A.shape[0])
    return A, y


def relative(a, b):
    a, b = np.atleast_1d(np.asarray(a, float)), np.atleast_1d(np.asarray(b, float))
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


@pytest.mark.parametrize("fmt", FORMATS)
def test_least_squares_rows_on_sparse_x_are_the_dense_rows(regression_data, fmt):
    A, y = regression_data
    X = getattr(sp, fmt)(A)
    sw = np.random.default_rng(4).uniform(0.2, 2.0, len(y)) if fmt == "csc_matrix" else None
    sparse, dense = gdlab.compare(X, y, sample_weight=sw), gdlab.compare(A.toarray(), y, sample_weight=sw)
    assert [r.method for r in sparse.rows] == [r.method for r in dense.rows]
    assert sparse.settings["sparse"] and not dense.settings["sparse"]
    assert sparse.optimum_mse == pytest.approx(dense.optimum_mse, rel=1e-10)
    for method in ("closed_form", "gd", "momentum", "adam", "LinearRegression"):
        s, d = sparse[method], dense[method]
        assert relative(s.coef, d.coef) <= 1e-10 and relative(s.intercept, d.intercept) <= 1e-10, method
        assert s.mse == pytest.approx(d.mse, rel=1e-10) and s.r2 == pytest.approx(d.r2, rel=1e-10)
        assert s.n_iter == d.n_iter and s.converged
    assert "sparse normal equations" in sparse["closed_form"].note
    assert "lsqr" in sparse["LinearRegression"].note  # scikit-learn's sparse path; the dense one is lstsq
    # SGDRegressor on sparse X damps its intercept steps (scikit-learn's SPARSE_INTERCEPT_DECAY = 0.01): another
    # path than on the dense X, so its row is checked against scikit-learn's own sparse fit, not the dense row
    direct = SGDRegressor(penalty=None, random_state=0).fit(X, y, sample_weight=sw)
    row = sparse["SGDRegressor"]
    np.testing.assert_allclose(row.coef, direct.coef_, rtol=1e-12)
    assert row.n_iter == direct.n_iter_ and "damped" in row.note
    pred = A.toarray() @ direct.coef_ + direct.intercept_[0]
    weights = np.ones(len(y)) if sw is None else sw
    assert row.mse == pytest.approx(np.average((pred - y) ** 2, weights=weights), rel=1e-12)


def test_linear_regression_row_on_sparse_x_is_scikit_learns_lsqr(regression_data):
    A, y = regression_data
    row = gdlab.compare(A, y, methods=["LinearRegression"])["LinearRegression"]
    direct = LinearRegression(tol=1e-12).fit(A, y)
    np.testing.assert_allclose(row.coef, direct.coef_, rtol=1e-12)
    exact = np.linalg.lstsq(np.column_stack([np.ones(len(y)), A.toarray()]), y, rcond=None)[0]
    np.testing.assert_allclose(row.coef, exact[1:], rtol=1e-10)


@pytest.fixture(scope="module")
def classification_data():
    A = raw_sparse(500, 20, 0.15, 5)
    rng = np.random.default_rng(6)
    eta = (A - A.mean(axis=0)) @ rng.normal(scale=0.3, size=A.shape[1])
    y = (rng.uniform(size=A.shape[0]) < 1 / (1 + np.exp(-eta))).astype(float)
    return A, y


def test_classification_rows_on_sparse_x_are_the_dense_rows(classification_data):
    A, y = classification_data
    methods = ["gd", "momentum", "adam", "newton", "lbfgs", "LogisticRegression", "SGDClassifier"]
    kwargs = {"loss": "log_loss", "penalty": "l2", "alpha": 0.01, "methods": methods}
    sparse, dense = gdlab.compare(sp.csr_matrix(A), y, **kwargs), gdlab.compare(A.toarray(), y, **kwargs)
    for method in ("gd", "momentum", "adam"):
        s, d = sparse[method], dense[method]
        assert relative(s.coef, d.coef) <= 1e-10 and s.loss == pytest.approx(d.loss, rel=1e-10), method
        assert s.converged == d.converged and s.n_iter == d.n_iter
    # LogisticRegression's lbfgs stops when the objective's decrease falls below its ftol (64 eps relative): the
    # same objective to 1e-10, the coefficients only to what that leaves them (~1e-9 here), not bit for bit
    s, d = sparse["LogisticRegression"], dense["LogisticRegression"]
    assert s.loss == pytest.approx(d.loss, rel=1e-10) and relative(s.coef, d.coef) <= 1e-7 and s.converged
    # the reference solvers read the stored entries (the Hessian X^T S X from them): the dense rows, and the gap
    # measured from the same certified minimum
    for method in ("newton", "lbfgs"):
        s, d = sparse[method], dense[method]
        assert not s.skipped and s.converged and relative(s.coef, d.coef) <= 1e-10, method
        assert s.loss == pytest.approx(d.loss, rel=1e-12)
    assert dense.settings["reference"] == sparse.settings["reference"] == "Newton's certified minimum"
    assert sparse.optimum_mse == pytest.approx(dense.optimum_mse, rel=1e-12)
    row = sparse["SGDClassifier"]  # scikit-learn's own sparse fit (its intercept steps are damped on sparse X)
    direct = SGDClassifier(loss="log_loss", penalty="l2", alpha=0.01, random_state=0).fit(sp.csr_matrix(A), y)
    np.testing.assert_allclose(row.coef, direct.coef_[0], rtol=1e-12)
    z = (2 * y - 1) * (A @ direct.coef_[0] + direct.intercept_[0])
    objective = np.mean(np.logaddexp(0, -z)) + 0.005 * direct.coef_[0] @ direct.coef_[0]
    assert row.loss == pytest.approx(objective, rel=1e-12)


def test_a_wide_sparse_ridge_is_the_dense_one_and_ridges():
    m, d, alpha = 100, 400, 0.5
    A = raw_sparse(m, d, 0.03, 7)
    rng = np.random.default_rng(8)
    y = A @ rng.normal(size=d) + rng.normal(size=m)
    kwargs = {"penalty": "l2", "alpha": alpha, "methods": ["closed_form", "gd", "SGDRegressor"], "max_iter": 5000}
    sparse, dense = gdlab.compare(A, y, **kwargs), gdlab.compare(A.toarray(), y, **kwargs)
    s, dd = sparse["closed_form"], dense["closed_form"]
    assert relative(s.coef, dd.coef) <= 1e-10 and s.loss == pytest.approx(dd.loss, rel=1e-10)
    # gd's adaptive steps follow the rounding of each path (here ~600 iterations, not the same count on both), and
    # its stop rule is on the objective (tol=1e-10 relative), which fixes the coefficients of this ill-conditioned
    # problem only to ~1e-5: both rows are checked against the minimum instead of against each other
    for table in (sparse, dense):
        assert table["gd"].converged and 0 <= table["gd"].gap <= 1e-8 * table.optimum_mse
    # more features than samples: the ridge term makes the minimiser unique; scikit-learn's Ridge minimises
    # sum r^2 + alpha_R |w|^2, m times gdlab's MSE + alpha/2 |w|^2 for alpha_R = m alpha / 2
    ridge = Ridge(alpha=m * alpha / 2, solver="sparse_cg", tol=1e-14, max_iter=100000).fit(A, y)
    scale = np.abs(ridge.coef_).max()
    np.testing.assert_allclose(sparse["closed_form"].coef, ridge.coef_, rtol=1e-6, atol=1e-8 * scale)
    w = sparse["closed_form"].coef
    objective = np.mean((A @ w + sparse["closed_form"].intercept - y) ** 2) + 0.5 * alpha * w @ w
    assert sparse.optimum_mse == pytest.approx(objective, rel=1e-12)
    assert "+ (alpha/2) |w|²" in str(sparse)


def test_a_large_sparse_x_is_never_densified():
    m, d = 200_000, 200
    A = raw_sparse(m, d, 0.005, 9)
    y = A @ np.linspace(-1, 1, d) + 1.0 + np.random.default_rng(10).normal(size=m)
    dense_bytes = m * d * 8
    tracemalloc.start()
    try:
        table = gdlab.compare(A, y, methods=["closed_form", "gd", "LinearRegression", "SGDRegressor"], max_iter=50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    stored = A.data.nbytes + A.indices.nbytes + A.indptr.nbytes
    assert peak < dense_bytes / 10, (peak, dense_bytes, stored)
    assert table["closed_form"].gap == 0 and table["gd"].loss >= table.optimum_mse * (1 - 1e-12)
