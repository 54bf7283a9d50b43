"""The core's decisions for issue 10 beyond the real-data table (tests/test_defaults_real_data.py): wide data, the
step theory, what a failed fit's report shows, and that the estimator keeps no loop of its own."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

import gdlab
from gdlab.curvature import auto_parameters, budget_condition_number, Curvature


def wide_problem(m=60, d=4200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d)) * 10 ** rng.uniform(-2, 2, d) + 5.0
    return X, rng.standard_normal(m)


def test_wide_data_gets_L_from_lanczos_and_fits_instead_of_refusing():
    """More than 4000 parameters: no p x p statistics; L from a few Lanczos products, within 4% above the truth."""
    X, y = wide_problem()
    r = gdlab.descend(X, y)
    assert r.scaling == "standardize" and not r.diverged
    assert r.curvature is not None and not r.curvature.mu_known
    sc = r.extra["scaling"]
    Zb = np.c_[np.ones(len(X)), (X - sc.center) / sc.scale]
    L_true = 2.0 / len(X) * np.linalg.svd(Zb, compute_uv=False)[0] ** 2
    assert L_true <= r.curvature.L <= 1.04 * L_true
    # more features than rows: the least-squares minimum is 0; converged means the gradient fell to sqrt(tol)
    mse = float(np.mean((X @ r.coef + r.intercept - y) ** 2))
    assert r.converged and mse <= 1e-6 * np.var(y)


def test_the_step_plans_for_the_budget_and_ignores_directions_of_zero_curvature():
    # a constant column: eigenvalue exactly 0, which is no direction at all; the step is that of the others
    c = Curvature(np.array([0.0, 1.0, 2.0]))
    eta, _, _ = auto_parameters(c, "gd", max_iter=1000, tol=1e-10)
    assert eta == pytest.approx(2.0 / (2.0 + 1.0))
    # a huge condition number: planned for k_T, where the best rate^(2T) = tol
    c = Curvature(np.array([1e-9, 1.0]))
    k_T = budget_condition_number(1000, 1e-10)
    assert ((k_T - 1) / (k_T + 1)) ** 2000 == pytest.approx(1e-10, rel=1e-6)
    eta, _, _ = auto_parameters(c, "gd", max_iter=1000, tol=1e-10)
    assert eta == pytest.approx(2.0 / (1.0 + 1.0 / k_T)) and eta < c.stable_step
    # heavy ball: step and beta chosen together, and stable by the theory
    eta, params, _ = auto_parameters(c, "momentum", max_iter=1000, tol=1e-10)
    assert c.spectral_radius(eta, "momentum", params["beta"]) < 1.0


@pytest.mark.parametrize("optimizer,beta", [("momentum", 0.7), ("nesterov", 0.7), ("gd", 0.0)])
def test_spectral_radius_predicts_the_observed_contraction(optimizer, beta):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((300, 3)) * [1.0, 3.0, 10.0]
    y = X @ [1.0, -1.0, 0.5] + rng.standard_normal(300)
    c = gdlab.curvature(X)
    eta = 0.5 / c.L
    r = gdlab.descend(X, y, optimizer=optimizer, learning_rate=eta, max_iter=400, tol=None,
                      **({"beta": beta} if optimizer != "gd" else {}))
    exact = gdlab.closed_form(X, y)
    err = np.linalg.norm(r.trajectory.params - exact.params, axis=1)
    observed = (err[350] / err[250]) ** (1 / 100)
    assert observed == pytest.approx(c.spectral_radius(eta, optimizer, beta), rel=0.02)


def test_a_run_that_stops_short_says_how_far_and_its_suggested_budget_works():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((400, 4)) @ np.diag([1.0, 1.0, 1.0, 0.05]) @ rng.standard_normal((4, 4))
    y = X @ [1.0, 2.0, -1.0, 0.5] + 0.1 * rng.standard_normal(400)
    with pytest.warns(gdlab.ConvergenceWarning, match=r"the minimum .*use max_iter=\d+"):
        r = gdlab.descend(X, y, max_iter=8)  # (the Barzilai-Borwein steps of 'auto' need ~30 here)
    assert not r.converged and r.status == 1
    n = dict(r.extra["diagnosis"].remedies)["max_iter"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = gdlab.descend(X, y, max_iter=n)
    assert again.converged and again.gap <= 1e-10 * again.optimum_loss


def test_a_collinear_problem_says_it_is_rank_deficient_and_lands_on_the_minimum_norm_solution():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 3))
    X = np.c_[X, X[:, 0]]  # a duplicated column
    y = X[:, :3] @ [1.0, 2.0, 3.0] + rng.standard_normal(200)
    r = gdlab.descend(X, y)
    assert r.converged and any("minimum-norm" in n for n in r.extra["notes"])
    assert "rank deficient" in r.message
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gdlab.RankDeficiencyWarning)
        cf = gdlab.closed_form(X, y)
    np.testing.assert_allclose(r.coef, cf.coef, rtol=1e-4)  # the duplicates share the weight equally


def test_the_estimator_has_no_loop_of_its_own():
    """GDRegressor's fits are descend's: the same trajectory, for full batches and for the compiled epochs."""
    from gdlab import estimator

    assert not hasattr(estimator.GDRegressor, "_run_kernel") and not hasattr(estimator.GDRegressor, "_auto_schedule")
    rng = np.random.default_rng(4)
    X = rng.standard_normal((120, 3)) * [1.0, 100.0, 0.01] + [0.0, 1e3, 5.0]
    y = X @ [1.0, 0.02, 30.0] + rng.standard_normal(120)
    full = gdlab.GDRegressor(penalty=None).fit(X, y)
    ref = gdlab.descend(X, y)
    np.testing.assert_array_equal(full.trajectory_.loss, ref.trajectory.loss)
    sgd = gdlab.GDRegressor(penalty=None, batch_size=8, learning_rate="constant", eta0=1e-6, max_iter=3, tol=None,
                            shuffle=False).fit(X, y)
    ref = gdlab.descend(X, y, batch_size=8, learning_rate=1e-6, max_iter=3, tol=None, shuffle=False)
    np.testing.assert_allclose(sgd.trajectory_.loss, ref.trajectory.loss, rtol=1e-13)
    assert sgd.solver_ == ("numba kernel" if ref.extra["engine"] == "compiled" else "descend (memory source)")


def test_a_failed_fit_report_has_a_banner_with_the_fix_as_a_flag(tmp_path):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((300, 2))
    X = np.c_[a, a[:, 0] + 0.01 * rng.standard_normal(300)]  # nearly collinear: slow even standardized
    data = tmp_path / "d.csv"
    np.savetxt(data, np.c_[X, X @ [1.0, 1.0, 1.0] + rng.standard_normal(300)], delimiter=",",
               header="a,b,c,y", comments="")
    out = subprocess.run([sys.executable, "-m", "gdlab", "fit", str(data), "--target", "y", "--iters", "4",
                          "--report", str(tmp_path / "rep"), "--quiet"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert "warning:" in out.stderr and "--iters" in out.stderr
    page = (tmp_path / "rep" / "index.html").read_text()
    assert 'class="banner"' in page and "did not reach the optimum" in page and "--iters" in page
    assert "max_iter=" not in page  # the report speaks the command line's language


@pytest.fixture(scope="module")
def diabetes_raw():
    from sklearn.datasets import load_diabetes

    return load_diabetes(return_X_y=True, scaled=False)


@pytest.mark.parametrize("loss", ["huber", "epsilon_insensitive", "squared_epsilon_insensitive"])
@pytest.mark.parametrize("penalty", [None, "l2", "l1", "elasticnet"])
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_auto_never_diverges_on_raw_real_data_for_any_loss_penalty_and_optimizer(diabetes_raw, loss, penalty,
                                                                                   optimizer):
    """'auto' on raw diabetes: no divergence, and converged only with a small first-order measure."""
    X, y = diabetes_raw
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = gdlab.descend(X, y, loss=loss, epsilon=10.0, penalty=penalty, alpha=0.1, optimizer=optimizer,
                          max_iter=300)
    assert not r.diverged and not any(issubclass(w.category, gdlab.DivergenceWarning) for w in caught)
    assert np.all(np.isfinite(r.coef)) and r.scaling == "standardize"
    start = r.trajectory.loss[0]
    assert r.loss < start  # it went downhill from the start
    if not r.converged:  # and a run that did not get there says so
        assert any(issubclass(w.category, gdlab.ConvergenceWarning) for w in caught)


def test_a_ridge_term_makes_the_minimiser_unique_and_the_message_does_not_say_otherwise():
    """More features than rows: without a penalty the minimiser is not unique (said); with l2 > 0 it is, and the
    fit lands on Ridge's one."""
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(21)
    X, y = rng.normal(size=(60, 200)), rng.normal(size=60)
    plain = gdlab.descend(X, y, warn=False)
    assert "not unique" in plain.message
    ridge = gdlab.descend(X, y, penalty="l2", alpha=0.5)
    assert ridge.converged and "not unique" not in ridge.message and "rank deficient" not in ridge.message
    ref = Ridge(alpha=0.5 * 60 / 2).fit(X, y)  # gdlab: MSE + alpha/2 |w|^2; scikit-learn: |r|^2 + alpha |w|^2
    np.testing.assert_allclose(ridge.coef, ref.coef_, rtol=1e-4, atol=1e-6)
