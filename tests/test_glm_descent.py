"""Gradient descent beyond least squares: logistic, multinomial and Poisson regression through the one loop,
against scikit-learn (LogisticRegression, PoissonRegressor) and an IRLS written plainly in NumPy here."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.linear_model import LogisticRegression, PoissonRegressor

import gdlab
from gdlab.losses import get_loss

OPTIMIZERS = ["gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"]


def irls(X, y, family, sw=None, l2=0.0, iters=100):
    """statsmodels-style IRLS (Newton on the mean loss), written out for a reference: logistic on 0/1 labels or
    Poisson with the log link; the intercept first and unpenalised."""
    m, d = X.shape
    Xb = np.hstack([np.ones((m, 1)), X])
    s = np.ones(m) if sw is None else sw
    n = s.sum()
    beta = np.zeros(d + 1)
    if family == "poisson":
        beta[0] = np.log(np.average(y, weights=s))
    P = np.diag([0.0] + [l2] * d)
    for _ in range(iters):
        eta = Xb @ beta
        mu = 1 / (1 + np.exp(-eta)) if family == "logistic" else np.exp(eta)
        w = mu * (1 - mu) if family == "logistic" else mu
        g = Xb.T @ (s * (mu - y)) / n + P @ beta
        H = Xb.T @ (Xb * (s * w)[:, None]) / n + P
        step = np.linalg.solve(H, g)
        beta = beta - step
        if np.abs(step).max() < 1e-15 * (1 + np.abs(beta).max()):
            break
    return beta


def multinomial_newton(X, Y, l2, iters=60):
    """Newton's method on the mean softmax cross-entropy + l2/2 |W|^2, written out (the common shift of the
    intercepts, where the Hessian is singular, is left at its minimum-norm value)."""
    m, d = X.shape
    K = Y.shape[1]
    Xb = np.hstack([np.ones((m, 1)), X])
    theta = np.zeros((d + 1, K))
    pen = np.repeat(np.r_[0.0, np.full(d, l2)], K)
    for _ in range(iters):
        E = Xb @ theta
        P = np.exp(E - E.max(axis=1, keepdims=True))
        P /= P.sum(axis=1, keepdims=True)
        g = (Xb.T @ (P - Y) / m).ravel() + pen * theta.ravel()
        H = np.zeros(((d + 1) * K, (d + 1) * K))
        for j in range(K):
            for k in range(K):
                w = P[:, j] * ((j == k) - P[:, k])
                H[j::K, k::K] = Xb.T @ (Xb * w[:, None]) / m
        H += np.diag(pen)
        theta = theta - np.linalg.lstsq(H, g, rcond=1e-13)[0].reshape(d + 1, K)
    return theta


def multinomial_objective(X, Y, W, b, l2):
    from scipy.special import logsumexp

    E = X @ W + b
    return np.mean(logsumexp(E, axis=1) - np.sum(Y * E, axis=1)) + 0.5 * l2 * np.sum(W * W)


def poisson_objective(X, y, w, b, l2):
    from scipy.special import xlogy

    eta = X @ w + b
    return np.mean(np.exp(eta) - y * eta + xlogy(y, y) - y) + 0.5 * l2 * w @ w


def logistic_objective(X, y01, w, b, l2):
    eta = X @ w + b
    return np.mean(np.logaddexp(0, -(2 * y01 - 1) * eta)) + 0.5 * l2 * w @ w


@pytest.mark.parametrize("optimizer", ["gd", "nesterov"])
def test_logistic_regression_on_raw_wine_features_is_logistic_regressions_minimiser(optimizer):
    X, y = load_wine(return_X_y=True)
    y = (y == 0).astype(float)
    n, C = len(y), 1.0
    alpha = 1.0 / (n * C)  # LogisticRegression's C: C sum loss + |w|^2/2 = n C [(1/n) sum loss + |w|^2/(2 n C)]
    ref = LogisticRegression(C=C, tol=1e-14, max_iter=100_000).fit(X, y)
    r = gdlab.descend(X, y, loss="log_loss", penalty="l2", alpha=alpha, optimizer=optimizer, max_iter=20_000)
    assert r.converged, r.message
    f, f_ref = (logistic_objective(X, y, r.coef, r.intercept, alpha),
                logistic_objective(X, y, ref.coef_[0], ref.intercept_[0], alpha))
    assert f - f_ref <= 1e-9 * f_ref  # the claim: within tol=1e-10 of the minimum, to second order
    # lbfgs stops on its gradient (gdlab's objective is lower by ~5e-9 here); Newton's coefficients are exact
    beta = irls(X, y, "logistic", l2=alpha)
    np.testing.assert_allclose(r.params, beta, rtol=1e-3, atol=1e-4 * np.abs(beta).max())
    np.testing.assert_allclose(ref.coef_[0], beta[1:], rtol=1e-2)


def test_unpenalised_logistic_regression_is_irls_on_weighted_overlapping_classes():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 3)) * [1.0, 50.0, 0.02] + [0.0, 1e3, 0.0]
    eta = 0.8 * X[:, 0] - 0.01 * (X[:, 1] - 1e3) + 20 * X[:, 2] - 0.3
    y = (rng.random(400) < 1 / (1 + np.exp(-eta))).astype(float)
    sw = rng.uniform(0.2, 3.0, 400)
    ref = irls(X, y, "logistic", sw)
    r = gdlab.descend(X, y, loss="log_loss", sample_weight=sw, max_iter=20_000)
    assert r.converged, r.message
    np.testing.assert_allclose(r.params, ref, rtol=1e-4, atol=1e-6)


def test_poisson_regression_is_poisson_regressors_and_irls_minimiser_on_raw_scales():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2000, 4)) * [1.0, 10.0, 100.0, 0.1] + [0.0, 0.0, 500.0, 0.0]
    y = rng.poisson(np.exp(0.3 * X[:, 0] + 0.02 * X[:, 1] + 0.001 * (X[:, 2] - 500) + 0.5)).astype(float)
    alpha = 1e-3
    r = gdlab.descend(X, y, loss="poisson", penalty="l2", alpha=alpha, max_iter=20_000)
    assert r.converged, r.message
    ref = irls(X, y, "poisson", l2=alpha)
    f_star = poisson_objective(X, y, ref[1:], ref[0], alpha)
    assert poisson_objective(X, y, r.coef, r.intercept, alpha) - f_star <= 2e-10 * f_star  # the claim
    np.testing.assert_allclose(r.coef, ref[1:], rtol=1e-4)
    # (lbfgs, its default, stays at zero on these raw scales: exp overflows in its first line search)
    sk = PoissonRegressor(alpha=alpha, solver="newton-cholesky", tol=1e-12, max_iter=1000).fit(X, y)
    np.testing.assert_allclose(r.coef, sk.coef_, rtol=1e-3, atol=1e-6)


def test_multinomial_logistic_regression_on_raw_iris_is_logistic_regressions_minimiser():
    X, labels = load_iris(return_X_y=True)
    Y = np.eye(3)[labels]
    n, C = len(labels), 10.0
    alpha = 1.0 / (n * C)
    ref = LogisticRegression(C=C, tol=1e-14, max_iter=100_000).fit(X, labels)
    r = gdlab.descend(X, Y, loss="multinomial", penalty="l2", alpha=alpha, optimizer="nesterov", max_iter=50_000,
                      tol=1e-14)
    assert r.coef.shape == (4, 3)
    theta = multinomial_newton(X, Y, alpha)
    np.testing.assert_allclose(r.coef, theta[1:], rtol=1e-5, atol=1e-6 * np.abs(theta).max())
    np.testing.assert_allclose(r.coef.T, ref.coef_, rtol=1e-3, atol=1e-4 * np.abs(ref.coef_).max())
    # the intercepts are defined up to a common shift; the probabilities are not
    proba = get_loss("multinomial").predict(X @ r.coef + r.intercept)
    np.testing.assert_allclose(proba, ref.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("family", ["log_loss", "multinomial", "poisson"])
def test_every_optimizer_reaches_the_optimum_of_each_family(optimizer, family):
    """'converged' is the claim that the objective is within tol of its minimum (here found by Newton's method).
    rmsprop's 1/sqrt(t) decay creeps: it is asked for 1e-7."""
    rng = np.random.default_rng(2)
    X = rng.standard_normal((300, 3)) * [1.0, 4.0, 0.25]
    eta = X @ [0.5, -0.2, 2.0]
    alpha = 1e-3
    tol = 1e-7 if optimizer == "rmsprop" else 1e-10
    if family == "log_loss":
        y = (rng.random(300) < 1 / (1 + np.exp(-eta))).astype(float)
        ref = irls(X, y, "logistic", l2=alpha)
        objective = lambda w, b: logistic_objective(X, y, w, b, alpha)
        f_star = objective(ref[1:], ref[0])
    elif family == "poisson":
        y = rng.poisson(np.exp(0.5 * eta)).astype(float)
        ref = irls(X, y, "poisson", l2=alpha)
        objective = lambda w, b: poisson_objective(X, y, w, b, alpha)
        f_star = objective(ref[1:], ref[0])
    else:
        logits = np.column_stack([eta, -eta, 0 * eta])
        labels = np.array([rng.choice(3, p=np.exp(v) / np.exp(v).sum()) for v in logits])
        y = np.eye(3)[labels]
        theta = multinomial_newton(X, y, alpha)
        objective = lambda W, b: multinomial_objective(X, y, W, b, alpha)
        f_star = objective(theta[1:], theta[0])
    r = gdlab.descend(X, y, loss=family, penalty="l2", alpha=alpha, optimizer=optimizer, tol=tol, max_iter=30_000)
    assert r.converged, r.message
    gap = objective(r.coef, r.intercept) - f_star
    assert -1e-14 <= gap / f_star <= 1.5 * tol


def test_a_step_below_two_over_l_converges_and_one_above_is_reported():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((500, 2)) * [1.0, 3.0]
    y = (rng.random(500) < 0.5).astype(float)  # labels unrelated to X: the optimum sits where p = 1/2, so L is tight
    r = gdlab.descend(X, y, loss="log_loss", max_iter=5000, standardize=False)
    L = r.curvature.L
    # L is lambda_max(X_b^T X_b) / (4 m)
    Xb = np.hstack([np.ones((500, 1)), X])
    assert L == pytest.approx(np.linalg.eigvalsh(Xb.T @ Xb / 500).max() / 4, rel=1e-10)
    ok = gdlab.descend(X, y, loss="log_loss", learning_rate=1.9 / L, max_iter=5000)
    assert ok.converged, ok.message
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bad = gdlab.descend(X, y, loss="log_loss", learning_rate=2.5 / L, max_iter=2000)
    assert not bad.converged and not bad.diverged  # the log-loss's bounded gradient: a 2-cycle, not a blow-up
    assert any(issubclass(w.category, gdlab.ConvergenceWarning) for w in caught)
    assert "above the stable bound 2/L" in bad.message and "learning_rate='auto'" in bad.message
    # the advice works: 'auto', and (as offered here) the same step on standardized features
    assert gdlab.descend(X, y, loss="log_loss", max_iter=2000).converged
    if "standardize=True" in bad.message:
        assert gdlab.descend(X, y, loss="log_loss", learning_rate=2.5 / L, standardize=True, max_iter=2000).converged
    with pytest.warns(gdlab.DivergenceWarning, match=r"above the stable bound 2/L.*\(0.25/m\) X_b\^T X_b"):
        gdlab.descend(X, y, loss="log_loss", learning_rate=100 / L, max_iter=2000)


def test_separated_classes_without_a_penalty_are_diagnosed_and_the_advice_works():
    rng = np.random.default_rng(4)
    X = np.vstack([rng.normal(-2, 0.5, (50, 2)), rng.normal(2, 0.5, (50, 2))])
    y = np.repeat([0.0, 1.0], 50)
    with pytest.warns(gdlab.SeparationWarning, match="linearly separable.*penalty='l2'"):
        r = gdlab.descend(X, y, loss="log_loss", max_iter=10_000)
    assert r.status == 6 and not r.converged and not r.diverged
    assert np.all((2 * y - 1) * (X @ r.coef + r.intercept) > 0)  # the claim: every sample on its side
    fixed = gdlab.descend(X, y, loss="log_loss", penalty="l2", alpha=1e-2, max_iter=10_000)  # the advice
    assert fixed.converged, fixed.message
    # so is the multinomial loss
    with pytest.warns(gdlab.SeparationWarning):
        gdlab.descend(X, np.eye(2)[y.astype(int)], loss="multinomial", max_iter=10_000)


def test_overlapping_classes_are_not_called_separable():
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(5)
    flip = rng.random(len(y)) < 0.1  # a tenth of the labels flipped: no hyperplane separates them
    y = np.where(flip, 1 - y, y).astype(float)
    r = gdlab.descend(X, y, loss="log_loss", max_iter=3000, warn=False)
    assert r.status != 6


def test_converged_on_a_glm_is_a_checked_claim_about_the_gap():
    X, y = load_wine(return_X_y=True)
    y = (y == 1).astype(float)
    alpha = 1e-2
    beta = irls(X, y, "logistic", l2=alpha)
    f_star = logistic_objective(X, y, beta[1:], beta[0], alpha)
    for tol in (1e-4, 1e-8):
        r = gdlab.descend(X, y, loss="log_loss", penalty="l2", alpha=alpha, tol=tol, max_iter=50_000)
        assert r.converged, r.message
        gap = logistic_objective(X, y, r.coef, r.intercept, alpha) - f_star
        assert gap <= 2 * tol * f_star  # the decrement is the gap to second order
        assert "Newton decrement" in r.message


def test_the_auto_start_is_the_null_model():
    X, y = load_wine(return_X_y=True)
    y = (y == 0).astype(float)
    r = gdlab.descend(X, y, loss="log_loss", penalty="l2", alpha=0.1, max_iter=1, tol=None)
    p = y.mean()
    assert r.trajectory.params[0][0] == pytest.approx(np.log(p / (1 - p)), rel=1e-12)
    assert np.all(r.trajectory.params[0][1:] == 0)


def test_auto_gd_on_the_log_loss_lets_its_step_grow_past_the_bound_and_still_reaches_the_optimum():
    """The bound 1/4 X_b^T X_b / m is the Hessian's worst case; near a confident fit the curvature is several times
    smaller, so 'auto' gd's Barzilai-Borwein steps (the inverse of the curvature met) grow past the bound's step."""
    rng = np.random.default_rng(9)
    X = rng.standard_normal((2000, 4))
    y = (rng.random(2000) < 1 / (1 + np.exp(-(3 * X @ [1.0, -0.5, 0.3, 0.0] + 0.2)))).astype(float)
    alpha = 1e-4
    r = gdlab.descend(X, y, loss="log_loss", penalty="l2", alpha=alpha, tol=1e-10, max_iter=5000)
    bound_step = 2 / (r.curvature.L + r.curvature.mu)
    steps = r.trajectory.learning_rate[1:]
    assert steps.max() >= 2 * bound_step and "Barzilai-Borwein" in r.extra["auto"]
    beta = irls(X, y, "logistic", l2=alpha)
    f_star = logistic_objective(X, y, beta[1:], beta[0], alpha)
    assert r.converged and logistic_objective(X, y, r.coef, r.intercept, alpha) - f_star <= 2e-10 * f_star
    fixed = gdlab.descend(X, y, loss="log_loss", penalty="l2", alpha=alpha, tol=1e-10, max_iter=5000,
                          learning_rate=bound_step)  # the bound's constant step: the same optimum, more iterations
    assert fixed.converged and fixed.n_iter > r.n_iter


def test_a_logistic_fit_that_runs_out_of_iterations_says_so_and_newtons_method_it_names_gets_there():
    X, y = load_breast_cancer(return_X_y=True)  # raw: the penalty on raw w leaves a condition number ~1e6
    alpha = 1.0 / len(y)  # LogisticRegression(C=1)
    with pytest.warns(gdlab.ConvergenceWarning, match=r"did not converge.*gdlab\.solvers\.newton\(X, y, loss='log_loss'"):
        r = gdlab.descend(X, y, loss="log_loss", penalty="l2", alpha=alpha, max_iter=300)
    assert ("method", "log_loss") in r.extra["diagnosis"].remedies
    n = gdlab.solvers.newton(X, y, loss="log_loss", penalty="l2", alpha=alpha)  # the advice works
    assert n.converged
    beta = irls(X, y.astype(float), "logistic", l2=alpha)
    f_star = logistic_objective(X, y, beta[1:], beta[0], alpha)
    assert logistic_objective(X, y, n.coef, n.intercept, alpha) - f_star <= 1e-9 * f_star
    assert logistic_objective(X, y, r.coef, r.intercept, alpha) - f_star > 1e-6 * f_star  # the claim: not there


def test_a_diverged_poisson_fit_does_not_call_the_start_s_curvature_a_bound_and_its_advice_works():
    """Poisson's exp(eta) has no global curvature bound: a step below the start's 2/L can still diverge, and the
    warning says so (it once said the step was "below the stable bound"); its advice, 'auto', converges."""
    rng = np.random.default_rng(8)
    X = rng.normal(size=(3000, 3)) * [1.0, 3.0, 0.5]
    y = rng.poisson(np.exp(X @ [0.4, -0.2, 0.8] + 0.3)).astype(float)
    with pytest.warns(gdlab.DivergenceWarning) as caught:
        r = gdlab.descend(X, y, loss="poisson", learning_rate=0.2, max_iter=50)
    assert r.diverged and 0.2 < r.curvature.stable_step
    text = str(caught[0].message)
    assert "no global bound" in text and "stable bound" not in text and "learning_rate='auto'" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = gdlab.descend(X, y, loss="poisson")
    ref = gdlab.solvers.newton(X, y, loss="poisson")
    assert again.converged and again.loss - ref.loss <= 1e-9 * ref.loss


def _softmax_loss(X, Y, W, b):
    Z = X @ W + b
    Z = Z - Z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(Z).sum(axis=1)) - (Y * Z).sum(axis=1)))


def test_one_class_separated_under_the_softmax_is_diagnosed_and_the_loss_has_no_minimum_there():
    """Raw iris, no penalty: setosa is linearly separable from the other two (which overlap), so the softmax has
    no minimiser though its loss stays above 0 (it once ran out of iterations and advised Newton's method). The
    direction named lowers the loss without end (checked in NumPy); the advised penalty converges."""
    X, y = load_iris(return_X_y=True)
    Y = np.eye(3)[y]
    with pytest.warns(gdlab.SeparationWarning, match=r"class 0 .* separable from the others"):
        r = gdlab.descend(X, Y, loss="multinomial", max_iter=5000)
    assert r.status == 6 and not r.converged and r.loss > 0.01
    W, b = np.asarray(r.coef), np.asarray(r.intercept)
    dW, db = np.zeros_like(W), np.zeros_like(b)
    dW[:, 0], db[0] = W[:, 0] - W.mean(axis=1), b[0] - b.mean()
    losses = [_softmax_loss(X, Y, W + t * dW, b + t * db) for t in (0.0, 1.0, 10.0, 100.0)]
    assert all(later < earlier for earlier, later in zip(losses, losses[1:]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed = gdlab.descend(X, Y, loss="multinomial", penalty="l2", alpha=0.01)
    assert fixed.converged


def test_overlapping_classes_under_the_softmax_are_not_called_separated():
    rng = np.random.default_rng(4)
    centres = np.array([[0.0, 0.0], [1.0, 0.5], [0.3, 1.2]])
    labels = rng.integers(0, 3, 600)
    X = centres[labels] + rng.normal(size=(600, 2))
    Y = np.eye(3)[labels]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = gdlab.descend(X, Y, loss="multinomial")
    newton = gdlab.solvers.newton(X, Y, loss="multinomial")
    assert r.converged and r.status == 0 and r.loss - newton.loss <= 1e-9 * newton.loss
