"""gdlab.compare against the libraries it compares: each row must hold what that library returns on its own."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, SGDRegressor
from sklearn.metrics import r2_score

import gdlab
from gdlab.compare import Comparison


@pytest.fixture(scope="module")
def workshop_table():
    ds = gdlab.datasets.workshop_line()
    return ds, gdlab.compare(ds.X, ds.y)


def test_rows_hold_each_librarys_own_answer(workshop_table):
    ds, table = workshop_table
    assert isinstance(table, Comparison)
    assert [r.method for r in table.rows] == ["closed form", "gdlab gd", "gdlab momentum", "gdlab adam",
                                              "scikit-learn LinearRegression", "scikit-learn SGDRegressor"]
    lr = LinearRegression().fit(ds.X, ds.y)
    np.testing.assert_allclose(table["LinearRegression"].coef, lr.coef_, rtol=1e-12)
    np.testing.assert_allclose(table["closed_form"].coef, lr.coef_, rtol=1e-10)
    sgd = SGDRegressor(penalty=None, random_state=0).fit(ds.X, ds.y)
    np.testing.assert_allclose(table["SGDRegressor"].coef, sgd.coef_, rtol=1e-12)
    assert table["SGDRegressor"].n_iter == sgd.n_iter_
    gd = gdlab.descend(ds.X, ds.y, learning_rate="auto", max_iter=1000, tol=1e-10, warn=False)
    np.testing.assert_allclose(table["gd"].coef, gd.coef, rtol=1e-12)
    assert table["gd"].n_iter == gd.n_iter


def test_mse_r2_and_gap_are_computed_from_the_coefficients(workshop_table):
    ds, table = workshop_table
    for row in table.rows:
        pred = ds.X @ np.atleast_1d(row.coef) + row.intercept
        assert row.mse == pytest.approx(np.mean((pred - ds.y) ** 2), rel=1e-12)
        assert row.r2 == pytest.approx(r2_score(ds.y, pred), rel=1e-12)
        assert row.gap == pytest.approx(row.mse - table.optimum_mse, abs=1e-15)
        assert row.gap >= -1e-12  # nothing beats the optimum
    assert table["gd"].gap < 1e-9 and table["momentum"].gap < 1e-9
    assert table.optimum_mse == pytest.approx(gdlab.closed_form(ds.X, ds.y).loss, rel=1e-12)


def test_to_frame_and_to_dict(workshop_table):
    _, table = workshop_table
    frame = table.to_frame()
    assert list(frame.columns[:4]) == ["method", "library", "intercept", "w1"]
    assert {"mse", "r2", "gap", "n_iter", "seconds", "converged", "note"} <= set(frame.columns)
    assert len(frame) == len(table)
    assert frame.loc[frame.method == "gdlab gd", "w1"].item() == pytest.approx(table["gd"].coef[0])
    import json

    json.dumps(table.to_dict())  # JSON-ready


def test_renders_as_rich_and_html_and_text(workshop_table):
    from rich.console import Console

    _, table = workshop_table
    console = Console(width=80, record=True)
    console.print(table.__rich__(80))
    text = console.export_text()
    assert "LinearRegression" in text and "5.8883" in text  # the workshop's slope, uncut in 80 columns
    assert max(len(line) for line in text.splitlines()) <= 80
    html = table._repr_html_()
    assert html.startswith("<table") and "SGDRegressor" in html and html.endswith("</table>")
    assert "gdlab gd" in str(table) or "gd " in str(table)


def test_multi_output_skips_sgdregressor_and_matches_linear_regression():
    s = gdlab.datasets.make_regression(200, 3, n_outputs=2, random_state=1)
    table = gdlab.compare(s.X, s.y, methods=["closed_form", "gd", "LinearRegression", "SGDRegressor"], tol=0.0)
    lr = LinearRegression().fit(s.X, s.y)
    np.testing.assert_allclose(table["LinearRegression"].coef, lr.coef_.T, rtol=1e-12)
    np.testing.assert_allclose(table["gd"].coef, lr.coef_.T, rtol=1e-6)
    assert table["SGDRegressor"].skipped
    frame = table.to_frame()
    assert "w1[1]" in frame.columns and "intercept[1]" in frame.columns


def test_pandas_columns_become_coefficient_labels():
    pd = pytest.importorskip("pandas")
    ds = gdlab.datasets.workshop_line()
    table = gdlab.compare(pd.DataFrame({"x": ds.X[:, 0]}), ds.y, methods=["closed_form", "gd"])
    assert table.feature_names == ["x"] and "x" in table.to_frame().columns


def test_unknown_method_is_a_clear_error():
    ds = gdlab.datasets.workshop_line()
    with pytest.raises(ValueError, match="unknown method 'bfgs'.*'newton', 'lbfgs'"):
        gdlab.compare(ds.X, ds.y, methods=["bfgs"])
    with pytest.raises(KeyError, match="no row"):
        gdlab.compare(ds.X, ds.y, methods=["gd"])["adam"]


def test_newton_and_lbfgs_race_on_least_squares():
    ds = gdlab.datasets.workshop_line()
    table = gdlab.compare(ds.X, ds.y, methods=["closed_form", "gd", "newton", "lbfgs"])
    newton, lbfgs = table["newton"], table["lbfgs"]
    assert newton.n_iter == 1 and newton.converged and abs(newton.gap) <= 1e-15 * table.optimum_mse
    np.testing.assert_allclose(newton.coef, table["closed_form"].coef, rtol=1e-12)
    assert lbfgs.converged and lbfgs.gap <= 1e-10 * table.optimum_mse
    for row in (newton, lbfgs):  # every iterate recorded, for the explorer's "few steps against many"
        assert len(row.result.trajectory) == row.n_iter + 1
    assert "newton" in str(table) and "MSE" in str(table)


def test_another_loss_races_against_newtons_certified_minimum():
    from sklearn.datasets import load_breast_cancer

    X, y = load_breast_cancer(return_X_y=True)
    X = X[:, :5]
    table = gdlab.compare(X, y, loss="log_loss")
    assert [r.method for r in table.rows] == ["gdlab gd", "gdlab momentum", "gdlab adam", "gdlab newton",
                                              "gdlab lbfgs", "scikit-learn LogisticRegression",
                                              "scikit-learn SGDClassifier"]
    newton = gdlab.solvers.newton(X, y, loss="log_loss")
    assert table.optimum_mse == pytest.approx(newton.loss, rel=1e-14) and table.loss == "log_loss"
    for row in table.rows:  # each row's loss from its coefficients, the gap against Newton's minimum
        eta = X @ row.coef + row.intercept
        assert row.loss == pytest.approx(np.mean(np.logaddexp(0, -(2 * y - 1) * eta)), rel=1e-12)
        assert row.gap == pytest.approx(row.loss - newton.loss, abs=1e-15) and row.gap >= -1e-12 * newton.loss
        assert np.isnan(row.mse) and np.isnan(row.r2)
    assert table["newton"].gap == 0 and table["lbfgs"].gap <= 1e-9 * newton.loss
    assert table["newton"].n_iter < 20 < table["gd"].n_iter
    text = str(table)
    assert "loss" in text.splitlines()[0] and "MSE" not in text and "Newton's certified minimum" in text
    assert "log_loss" in table._repr_html_() and "loss" in set(table.to_frame().columns)


def test_least_squares_only_methods_are_refused_for_another_loss():
    ds = gdlab.datasets.workshop_line()
    with pytest.raises(ValueError, match="method 'closed_form' fits least squares only, not loss='log_loss'.*"
                                         "'newton', 'lbfgs'"):
        gdlab.compare(ds.X, (ds.y > ds.y.mean()).astype(float), loss="log_loss", methods=["closed_form", "gd"])


def test_a_non_smooth_loss_races_the_gradient_methods_only_by_default():
    from sklearn.datasets import load_wine

    X, y = load_wine(return_X_y=True)
    c = gdlab.compare(X, (y == 0).astype(float), loss="hinge", max_iter=200)
    # Newton and L-BFGS need a second derivative; SGDClassifier's hinge is the same objective
    assert [r.method for r in c.rows] == ["gdlab gd", "gdlab momentum", "gdlab adam", "scikit-learn SGDClassifier"]
    with pytest.raises(ValueError, match="not smooth"):
        gdlab.compare(X, (y == 0).astype(float), loss="hinge", methods=["newton"])
