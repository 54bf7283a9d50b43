"""gdlab.solvers (Newton / IRLS and L-BFGS) against independent references: the closed form, scikit-learn's
LogisticRegression and PoissonRegressor, and IRLS as statsmodels writes it, transcribed plainly in NumPy below."""

import warnings

import numpy as np
import pytest
from scipy.special import expit
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.linear_model import LogisticRegression, PoissonRegressor

import gdlab

from gdlab import solvers
from gdlab.exceptions import ConvergenceWarning, SeparationWarning

SOLVERS = [solvers.newton, solvers.lbfgs]


# ---- the independent reference: IRLS (statsmodels' GLM.fit(method="IRLS")), with a ridge term -----------------
def irls(X, y, family, *, alpha=0.0, sample_weight=None, fit_intercept=True, max_iter=100):
    """Minimise (1/n) sum s_i loss_i + alpha/2 |w|^2 for the binomial (logit, y in {0, 1}) or Poisson (log) family:
    beta <- (X_b^T S W X_b / n + alpha P)^-1 X_b^T S W z / n with the working response z = eta + (y - mu) / W."""
    Xb = np.column_stack([np.ones(len(y)), X]) if fit_intercept else X
    s = np.ones(len(y)) if sample_weight is None else sample_weight
    n = s.sum()
    P = np.eye(Xb.shape[1])
    if fit_intercept:
        P[0, 0] = 0.0
    beta = np.zeros(Xb.shape[1])
    if fit_intercept:
        mean = np.average(y, weights=s)
        beta[0] = np.log(mean / (1 - mean)) if family == "binomial" else np.log(mean)
    for _ in range(max_iter):
        eta = Xb @ beta
        mu = expit(eta) if family == "binomial" else np.exp(eta)
        W = mu * (1 - mu) if family == "binomial" else mu
        z = eta + (y - mu) / W
        A = Xb.T @ (Xb * (s * W)[:, None]) / n + alpha * P
        new = np.linalg.solve(A, Xb.T @ (s * W * z) / n)
        if np.max(np.abs(new - beta)) <= 1e-15 * max(1.0, np.max(np.abs(new))):
            beta = new
            break
        beta = new
    return (beta[1:], beta[0]) if fit_intercept else (beta, 0.0)


def log_loss_objective(X, y01, coef, intercept, alpha, sample_weight=None):
    s = np.ones(len(y01)) if sample_weight is None else sample_weight
    eta = X @ coef + intercept
    return float(np.dot(s, np.logaddexp(0.0, -(2 * y01 - 1) * eta)) / s.sum() + 0.5 * alpha * coef @ coef)


def onehot(y):
    return (y[:, None] == np.unique(y)[None]).astype(float)


# ---- least squares: one Newton step is the Normal Equation ---------------------------------------------------------
@pytest.mark.parametrize("case", ["workshop", "diabetes", "weighted", "ridge", "two outputs", "no intercept"])
def test_newton_on_least_squares_lands_on_the_closed_form_in_one_step(case):
    rng = np.random.default_rng(0)
    X, y = load_diabetes(return_X_y=True)
    kwargs, cf_kwargs = {}, {}
    if case == "workshop":
        ds = gdlab.datasets.workshop_line()
        X, y = ds.X, ds.y
    elif case == "weighted":
        kwargs["sample_weight"] = cf_kwargs["sample_weight"] = rng.uniform(0.1, 3.0, len(y))
    elif case == "ridge":
        kwargs.update(penalty="l2", alpha=0.05)
        cf_kwargs["l2"] = 0.05
    elif case == "two outputs":
        y = np.column_stack([y, np.sqrt(y)])
    elif case == "no intercept":
        kwargs["fit_intercept"] = cf_kwargs["fit_intercept"] = False
    k = 1 if y.ndim == 1 else y.shape[1]
    start = rng.normal(scale=300.0, size=(X.shape[1], k)).squeeze()  # far from the optimum: it does not matter
    r = solvers.newton(X, y, coef_init=start, **kwargs)
    cf = gdlab.closed_form(X, y, **cf_kwargs)
    assert r.n_iter == 1 and r.converged and r.status == 0
    np.testing.assert_allclose(r.coef, cf.coef, rtol=1e-12, atol=1e-12 * np.abs(cf.coef).max())
    np.testing.assert_allclose(r.intercept, cf.intercept, rtol=1e-12, atol=1e-12)
    assert r.loss == pytest.approx(cf.loss, rel=1e-12)
    assert len(r.trajectory) == 2 and r.trajectory.learning_rate[1] == 1.0  # the full step, no backtracking


def test_lbfgs_on_least_squares_reaches_the_closed_forms_loss():
    X, y = load_diabetes(return_X_y=True)
    r = solvers.lbfgs(X, y)
    cf = gdlab.closed_form(X, y)
    assert r.converged and r.loss - cf.loss <= 1e-10 * cf.loss


# ---- GLMs against IRLS in NumPy ----------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("setting", ["ridge", "weighted", "no intercept"])
def test_logistic_regression_matches_numpy_irls(solver, setting):
    X, y = load_breast_cancer(return_X_y=True)
    X = X[:, :8]  # raw features (radius ... concave points), columns from 1e-2 to 1e3
    kwargs = {"penalty": "l2", "alpha": 1e-3}
    if setting == "weighted":
        kwargs["sample_weight"] = np.random.default_rng(1).integers(1, 4, len(y)).astype(float)
    if setting == "no intercept":
        kwargs["fit_intercept"] = False
    w_ref, b_ref = irls(X, y, "binomial", alpha=1e-3, sample_weight=kwargs.get("sample_weight"),
                        fit_intercept=kwargs.get("fit_intercept", True))
    tight = {"tol": 1e-16} if solver is solvers.newton else {}  # quadratic convergence: a step or two more
    r = solver(X, y, loss="log_loss", **kwargs, **tight)
    assert r.converged and r.status == 0
    f_ref = log_loss_objective(X, y, w_ref, b_ref, 1e-3, kwargs.get("sample_weight"))
    assert r.loss == pytest.approx(f_ref, rel=1e-12 if solver is solvers.newton else 1e-9)
    assert r.loss - f_ref <= 1e-10 * f_ref  # the claim: within tol of the minimum
    rtol = 1e-7 if solver is solvers.newton else 1e-3
    np.testing.assert_allclose(r.coef, w_ref, rtol=rtol, atol=rtol * np.abs(w_ref).max())
    assert r.intercept == pytest.approx(b_ref, rel=rtol, abs=rtol * abs(b_ref) + 1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("alpha", [0.0, 1e-3, 1.0])
def test_poisson_matches_numpy_irls_and_poisson_regressor(solver, alpha):
    X, y = load_diabetes(return_X_y=True)
    w_ref, b_ref = irls(X, y, "poisson", alpha=alpha)
    tight = {"tol": 1e-16} if solver is solvers.newton else {}
    r = solver(X, y, loss="poisson", penalty="l2" if alpha else None, alpha=alpha, **tight)
    assert r.converged
    rtol = 1e-7 if solver is solvers.newton else 1e-4
    np.testing.assert_allclose(r.coef, w_ref, rtol=rtol, atol=rtol * np.abs(w_ref).max())
    assert r.intercept == pytest.approx(b_ref, rel=rtol)
    pr = PoissonRegressor(alpha=alpha, tol=1e-12, max_iter=10000).fit(X, y)
    np.testing.assert_allclose(r.coef, pr.coef_, rtol=1e-4, atol=1e-4 * np.abs(pr.coef_).max())
    assert r.intercept == pytest.approx(pr.intercept_, rel=1e-6)


# ---- against scikit-learn's LogisticRegression (raw features, alpha = 1/(n C)) -------------------------------------
def _sklearn_objective(X, Y, coef, intercept, alpha):
    eta = X @ coef + intercept
    lse = np.logaddexp.reduce(eta, axis=1)
    return float(np.mean(lse - np.sum(Y * eta, axis=1)) + 0.5 * alpha * np.sum(coef * coef))


@pytest.mark.parametrize("solver", SOLVERS)
def test_binary_logistic_regression_matches_sklearn(solver):
    X, y = load_breast_cancer(return_X_y=True)
    n, C = len(y), 0.01
    lr = LogisticRegression(C=C, tol=1e-12, max_iter=100_000).fit(X, y)
    r = solver(X, y, loss="log_loss", penalty="l2", alpha=1.0 / (n * C))
    assert r.converged
    f_sk = log_loss_objective(X, y, lr.coef_[0], lr.intercept_[0], 1.0 / (n * C))
    assert r.loss <= f_sk * (1 + 1e-10)  # at least as low as scikit-learn's, whose own stop is looser
    assert r.loss == pytest.approx(f_sk, rel=1e-7)
    np.testing.assert_allclose(r.coef, lr.coef_[0], rtol=1e-3, atol=1e-3 * np.abs(lr.coef_).max())


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("name, loader, C", [("iris", load_iris, 1.0), ("iris", load_iris, 100.0),
                                             ("wine", load_wine, 0.1)])
def test_multinomial_matches_sklearn(solver, name, loader, C):
    X, y = loader(return_X_y=True)
    n, Y = len(y), onehot(y)
    alpha = 1.0 / (n * C)
    lr = LogisticRegression(C=C, tol=1e-12, max_iter=100_000).fit(X, y)
    r = solver(X, Y, loss="multinomial", penalty="l2", alpha=alpha)
    assert r.converged and r.coef.shape == (X.shape[1], 3) and r.intercept.shape == (3,)
    f_sk = _sklearn_objective(X, Y, lr.coef_.T, lr.intercept_, alpha)
    assert r.loss <= f_sk * (1 + 1e-10)
    assert r.loss == pytest.approx(f_sk, rel=1e-7)
    np.testing.assert_allclose(r.coef, lr.coef_.T, rtol=1e-3, atol=1e-3 * np.abs(lr.coef_).max())
    # the softmax is unchanged by a common shift of the intercepts: gdlab keeps them summing to zero
    assert abs(r.intercept.sum()) <= 1e-6 * np.abs(r.intercept).max()
    np.testing.assert_allclose(r.intercept, lr.intercept_ - lr.intercept_.mean(), rtol=1e-3,
                               atol=1e-3 * np.abs(lr.intercept_).max())


def test_newton_and_lbfgs_agree_on_the_coupled_multinomial():
    X, y = load_wine(return_X_y=True)
    kwargs = dict(loss="multinomial", penalty="l2", alpha=1e-2)
    a, b = solvers.newton(X, onehot(y), **kwargs), solvers.lbfgs(X, onehot(y), **kwargs)
    assert a.converged and b.converged
    assert abs(a.loss - b.loss) <= 1e-10 * a.loss
    assert a.n_iter < 20 < b.n_iter  # Newton's few steps against a first-order method's many


def test_sample_weights_are_repeated_rows():
    X, y = load_breast_cancer(return_X_y=True)
    X = X[:, :6]
    counts = np.random.default_rng(3).integers(0, 4, len(y))
    for solver in SOLVERS:
        weighted = solver(X, y, loss="log_loss", penalty="l2", alpha=1e-3, sample_weight=counts.astype(float))
        repeated = solver(np.repeat(X, counts, axis=0), np.repeat(y, counts), loss="log_loss", penalty="l2",
                          alpha=1e-3)
        rtol = 1e-10 if solver is solvers.newton else 1e-3
        np.testing.assert_allclose(weighted.coef, repeated.coef, rtol=rtol, atol=rtol * np.abs(repeated.coef).max())
        assert weighted.loss == pytest.approx(repeated.loss, rel=1e-10)


def test_independent_outputs_are_fitted_as_if_alone():
    X, y = load_breast_cancer(return_X_y=True)
    X = X[:, :5]
    Y = np.column_stack([y, (X[:, 0] > np.median(X[:, 0])) ^ (y > 0)]).astype(float)
    both = solvers.newton(X, Y, loss="log_loss", penalty="l2", alpha=1e-2, tol=1e-16)
    for j in range(2):
        alone = solvers.newton(X, Y[:, j], loss="log_loss", penalty="l2", alpha=1e-2, tol=1e-16)
        np.testing.assert_allclose(both.coef[:, j], alone.coef, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("loss", ["huber", "squared_hinge", "modified_huber", "squared_epsilon_insensitive"])
def test_every_smooth_loss_reaches_the_same_minimum_by_both_solvers(loss):
    X, y = load_diabetes(return_X_y=True)
    if loss in ("squared_hinge", "modified_huber"):
        y = (y > np.median(y)).astype(float)
    else:
        y = (y - y.mean()) / y.std()
    kwargs = dict(loss=loss, epsilon=0.5, penalty="l2", alpha=1e-3, warn=False)
    a, b = solvers.newton(X, y, **kwargs), solvers.lbfgs(X, y, **kwargs)
    assert a.converged and b.converged
    assert abs(a.loss - b.loss) <= 1e-9 * a.loss
    d = gdlab.descend(X, y, **kwargs, max_iter=20000, tol=1e-12)
    assert a.loss <= d.loss * (1 + 1e-12)  # nothing gradient descent finds is lower


# ---- the trajectory ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
def test_trajectory_records_each_iterate(solver):
    X, y = load_iris(return_X_y=True)
    seen = []
    r = solver(X, onehot(y), loss="multinomial", penalty="l2", alpha=1e-2,
               callback=lambda info: seen.append((info.iteration, info.coef.copy(), info.loss)))
    t = r.trajectory
    assert len(t) == r.n_iter + 1 and list(t.iteration) == list(range(r.n_iter + 1))
    assert [s[0] for s in seen] == list(range(1, r.n_iter + 1))
    np.testing.assert_allclose(t.coef[1:], np.stack([s[1] for s in seen]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t.coef[-1], r.coef, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(t.intercept[-1], r.intercept, rtol=1e-12, atol=1e-12)
    assert np.all(np.diff(t.loss) <= 1e-12 * abs(t.loss[0]))  # each step decreases the objective
    assert t.loss[-1] == pytest.approx(r.loss, rel=1e-13)
    assert t.to_frame().shape[0] == len(t)


def test_newton_trajectory_holds_the_line_search_steps():
    X, y = load_diabetes(return_X_y=True)
    r = solvers.newton(X, y, loss="poisson")
    steps = r.trajectory.learning_rate
    assert np.isnan(steps[0]) and np.all((steps[1:] > 0) & (steps[1:] <= 1))
    assert steps[-1] == 1.0  # near the minimum the full step is taken (quadratic convergence)


def test_callback_stops_cleanly():
    X, y = load_iris(return_X_y=True)
    for solver in SOLVERS:
        r = solver(X, onehot(y), loss="multinomial", penalty="l2", alpha=1e-2, callback=lambda info: info.iteration >= 2)
        assert r.status == 3 and r.n_iter == 2 and not r.converged


# ---- honest endings -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
def test_separable_classes_without_a_penalty_are_reported(solver):
    X, y = load_breast_cancer(return_X_y=True)  # 569 samples, 30 raw features: a hyperplane separates them
    with pytest.warns(SeparationWarning, match="linearly separable"):
        r = solver(X, y, loss="log_loss")
    assert r.status == 6 and not r.converged and "penalty='l2'" in r.message
    eta = X @ r.coef + r.intercept
    assert np.all((2 * y - 1) * eta > 0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_stopping_short_is_not_called_converged(solver):
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        r = solver(X, y, loss="log_loss", penalty="l2", alpha=1e-3, max_iter=2)
    assert r.status == 1 and not r.converged and r.n_iter == 2
    assert "decrement" in r.message


def test_converged_means_the_decrement_was_checked():
    X, y = load_wine(return_X_y=True)
    r = solvers.lbfgs(X, onehot(y), loss="multinomial", penalty="l2", alpha=1e-2)
    assert r.converged and r.extra["hessian_evaluations"] >= 1
    assert r.extra["decrement"] <= 1e-10 * r.loss


# ---- bad input: one clear error ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kwargs, y_kind, match", [
    ({"loss": "hinge"}, "binary", r"loss='hinge' is not smooth.*gdlab.descend"),
    ({"loss": "epsilon_insensitive"}, "real", r"not smooth"),
    ({"penalty": "l1", "alpha": 0.1}, "real", r"penalty='l1' has an L1 part.*penalty='l2'.*gdlab.descend"),
    ({"penalty": "elasticnet"}, "real", r"penalty='elasticnet' has an L1 part"),
    ({"penalty": "l3"}, "real", r"unknown penalty 'l3'"),
    ({"loss": "cauchy"}, "real", r"unknown loss 'cauchy'"),
    ({"loss": "multinomial"}, "binary", r"one-hot target of shape \(m, K\)"),
    ({"loss": "log_loss"}, "real", r"loss='log_loss' takes binary labels"),
    ({"loss": "poisson"}, "signed", r"counts \(y >= 0\)"),
    ({"tol": -1.0}, "real", r"tol must be >= 0"),
    ({"max_iter": 0}, "real", r"max_iter must be > 0"),
    ({"coef_init": [1.0, 2.0]}, "real", r"coef_init has 2 values; expected 4"),
    ({"sample_weight": -np.ones(30)}, "real", r"sample_weight is negative for every row"),
])
def test_bad_input_is_one_clear_error(solver, kwargs, y_kind, match):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 4))
    y = {"binary": (X[:, 0] > 0).astype(float), "real": X[:, 0] + 0.5, "signed": X[:, 0]}[y_kind]
    with pytest.raises(ValueError, match=match):
        solver(X, y, **kwargs)


def test_bad_arrays_are_named():
    X = np.ones((5, 2))
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN at row 2, column 1"):
        solvers.newton(X, np.arange(5.0))
    with pytest.raises(ValueError, match="y is missing"):
        solvers.lbfgs(np.ones((5, 2)), None)
    with pytest.raises(ValueError, match="standardize must be True or False"):
        solvers.lbfgs(np.ones((5, 2)), np.arange(5.0), standardize="auto")


def test_newton_refuses_a_hessian_too_large_and_names_the_alternative(monkeypatch):
    monkeypatch.setattr(solvers, "MAX_HESSIAN_PARAMETERS", 3)
    with pytest.raises(ValueError, match="dense Hessian of 5 parameters.*gdlab.solvers.lbfgs"):
        solvers.newton(np.random.default_rng(0).normal(size=(20, 4)), np.arange(20.0))


def test_public_names():
    assert gdlab.solvers.newton is solvers.newton and set(solvers.SOLVERS) == {"newton", "lbfgs"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = solvers.newton(*load_diabetes(return_X_y=True))
    assert r.method == "newton" and isinstance(r, gdlab.Result) and r.success
