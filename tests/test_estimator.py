"""GDRegressor against independent references: the workshop loop, scikit-learn (SGDRegressor replayed step by step,
LinearRegression, Ridge, Lasso, ElasticNet), scipy.optimize for the robust losses, and a plain NumPy transcription
of stochastic descent (after scikit-learn's own test_sgd.py, which keeps a tiny reference ASGD)."""

import logging
import pickle

import numpy as np
import pytest
from scipy import optimize
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, Ridge, SGDRegressor

import gdlab
from gdlab import GDRegressor, _sgd_kernel
from gdlab import estimator as estimator_module

needs_numba = pytest.mark.skipif(not _sgd_kernel.HAVE_NUMBA, reason="numba is not installed")

LOSSES = ["squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive"]


def problem(m=200, d=4, seed=0, noise=0.3, scale=1.0, outliers=False, n_outputs=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d)) * scale
    coef = np.linspace(-2, 3, d) if n_outputs == 1 else rng.standard_normal((d, n_outputs))
    y = X @ coef + 1.5 + noise * rng.standard_normal((m,) if n_outputs == 1 else (m, n_outputs))
    if outliers:
        y[:: max(1, m // 10)] += 20.0
    return X, y


def tight(**kw):
    """Full-batch settings that run to the optimum (tol=0: until the gap to it is 0 in floating point)."""
    return dict(tol=0.0, max_iter=50_000, **kw)


# ---- the workshop -------------------------------------------------------------------------------------------------
def workshop_loop(eta=0.1, n_iterations=10):
    np.random.seed(42)
    X = 2 * np.random.rand(50, 1)
    X_b = np.c_[np.ones((50, 1)), X]
    y = 8 + 6 * X + np.random.randn(50, 1)
    w = np.random.randn(2, 1)
    path = [w[:, 0].copy()]
    for _ in range(n_iterations):
        w = w - eta * 2 / 50 * X_b.T.dot(X_b.dot(w) - y)
        path.append(w[:, 0].copy())
    return np.array(path)


def test_ten_constant_steps_give_the_workshops_weights():
    ds = gdlab.datasets.workshop_line()
    model = GDRegressor(penalty=None, learning_rate="constant", eta0=0.1, max_iter=10, tol=None)
    model.fit(ds.X, ds.y, coef_init=ds.coef_init, intercept_init=ds.intercept_init)
    expected = workshop_loop()
    np.testing.assert_allclose(model.trajectory_.params, expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose([model.intercept_[0], model.coef_[0]], expected[-1], rtol=1e-13)
    assert model.n_iter_ == 10 and model.t_ == 11


# ---- SGDRegressor replayed: the same updates, given the same row order -----------------------------------------------
@needs_numba
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("penalty", [None, "l2"])
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "optimal"])
def test_stochastic_epochs_replay_sgdregressor_step_by_step(loss, penalty, learning_rate):
    X, y = problem(m=150, d=3)
    X = X * 0.2  # keeps scikit-learn's 'optimal' first step (alpha^-1/4 = 1.8) stable on these rows
    sk = SGDRegressor(loss=loss, penalty=penalty, alpha=0.1, learning_rate=learning_rate, eta0=0.02, power_t=0.3,
                      epsilon=0.2, shuffle=False, max_iter=4, tol=None).fit(X, y)
    # gdlab's squared error is twice scikit-learn's: half the step moves the weights as far
    eta0 = 0.01 if loss == "squared_error" else 0.02
    gd = GDRegressor(loss=loss, penalty=penalty, alpha=0.1, learning_rate=learning_rate, eta0=eta0, power_t=0.3,
                     epsilon=0.2, shuffle=False, max_iter=4, tol=None, batch_size=1).fit(X, y)
    assert gd.solver_ == "numba kernel"
    np.testing.assert_allclose(gd.coef_, sk.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gd.intercept_, sk.intercept_, rtol=1e-10, atol=1e-12)
    assert gd.t_ == sk.t_


@needs_numba
def test_averaged_sgd_replays_sgdregressor_average():
    X, y = problem(m=120, d=3)
    for average in (True, 50):
        sk = SGDRegressor(penalty="l2", alpha=0.01, learning_rate="constant", eta0=0.01, average=average,
                          shuffle=False, max_iter=3, tol=None).fit(X, y)
        gd = GDRegressor(penalty="l2", alpha=0.01, learning_rate="constant", eta0=0.005, average=average,
                         shuffle=False, max_iter=3, tol=None, batch_size=1).fit(X, y)
        np.testing.assert_allclose(gd.coef_, sk.coef_, rtol=1e-10)
        np.testing.assert_allclose(gd.intercept_, sk.intercept_, rtol=1e-10)


def test_full_batch_average_is_the_mean_of_the_iterates():
    X, y = problem(m=80, d=2)
    model = GDRegressor(penalty=None, learning_rate="constant", eta0=0.05, max_iter=10, tol=None, average=3)
    model.fit(X, y)
    # plain full-batch GD, the workshop's loop on X_b = [1, X]; average the iterates after updates 3..10
    Xb = np.hstack([np.ones((80, 1)), X])
    w, kept = np.zeros(3), []
    for t in range(1, 11):
        w = w - 0.05 * 2 / 80 * Xb.T @ (Xb @ w - y)
        if t >= 3:
            kept.append(w)
    expected = np.mean(kept, axis=0)
    np.testing.assert_allclose(model.intercept_[0], expected[0], rtol=1e-12)
    np.testing.assert_allclose(model.coef_, expected[1:], rtol=1e-12)


# ---- the same minimiser as scikit-learn's direct solvers ----------------------------------------------------------
PROBLEMS = {
    "well_conditioned": dict(m=200, d=4, seed=0),
    "few_rows": dict(m=12, d=5, seed=1),
    "offset_features": dict(m=150, d=3, seed=2, scale=3.0),
}


@pytest.mark.parametrize("name", PROBLEMS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_no_penalty_reaches_linear_regression(name, fit_intercept):
    X, y = problem(**PROBLEMS[name])
    if name == "few_rows":
        X, y = problem(m=40, d=5, seed=1)
    ref = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
    for optimizer in ("gd", "momentum", "nesterov"):
        gd = GDRegressor(penalty=None, fit_intercept=fit_intercept, optimizer=optimizer, **tight()).fit(X, y)
        np.testing.assert_allclose(gd.coef_, ref.coef_, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(gd.intercept_[0], ref.intercept_, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", PROBLEMS)
@pytest.mark.parametrize("alpha", [1e-3, 0.1])
def test_l2_penalty_reaches_ridge_with_alpha_times_m(name, alpha):
    X, y = problem(**PROBLEMS[name])
    m = X.shape[0]
    ref = Ridge(alpha=alpha * m).fit(X, y)  # Ridge: |y - Xw|^2 + alpha_r |w|^2, i.e. alpha_r = m alpha
    gd = GDRegressor(penalty="l2", alpha=alpha, **tight()).fit(X, y)
    np.testing.assert_allclose(gd.coef_, ref.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gd.intercept_[0], ref.intercept_, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", PROBLEMS)
def test_l1_penalty_reaches_lasso_with_exact_zeros(name):
    X, y = problem(**PROBLEMS[name])
    X = np.hstack([X, np.random.default_rng(1).standard_normal((X.shape[0], 2))])  # two irrelevant features
    alpha = 0.6
    ref = Lasso(alpha=alpha, tol=1e-14, max_iter=100_000).fit(X, y)
    gd = GDRegressor(penalty="l1", alpha=alpha, **tight()).fit(X, y)
    np.testing.assert_allclose(gd.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gd.intercept_[0], ref.intercept_, rtol=1e-6, atol=1e-8)
    # the proximal step makes exact zeros, where the Lasso has them
    assert np.any(ref.coef_ == 0)
    np.testing.assert_array_equal(gd.coef_ == 0, ref.coef_ == 0)


@pytest.mark.parametrize("l1_ratio", [0.15, 0.7])
def test_elasticnet_penalty_reaches_elasticnet(l1_ratio):
    X, y = problem(m=100, d=6, seed=3)
    ref = ElasticNet(alpha=0.3, l1_ratio=l1_ratio, tol=1e-14, max_iter=100_000).fit(X, y)
    gd = GDRegressor(penalty="elasticnet", alpha=0.3, l1_ratio=l1_ratio, **tight()).fit(X, y)
    np.testing.assert_allclose(gd.coef_, ref.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gd.intercept_[0], ref.intercept_, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(gd.coef_ == 0, ref.coef_ == 0)


def sklearn_objective(loss, X, y, w, b, epsilon, alpha):
    """SGDRegressor's objective (its half squared error; its Huber and epsilon losses) plus alpha |w|^2 / 2."""
    r = X @ w + b - y
    a = np.abs(r)
    per = {"squared_error": 0.5 * r * r,
           "huber": np.where(a <= epsilon, 0.5 * r * r, epsilon * (a - 0.5 * epsilon)),
           "epsilon_insensitive": np.maximum(a - epsilon, 0),
           "squared_epsilon_insensitive": np.maximum(a - epsilon, 0) ** 2}[loss]
    return per.mean() + 0.5 * alpha * w @ w


@pytest.mark.parametrize("loss", ["huber", "squared_epsilon_insensitive"])
def test_smooth_robust_losses_reach_the_scipy_minimum(loss):
    X, y = problem(m=120, d=3, seed=4, outliers=True)
    eps, alpha = 0.5, 0.01

    def f(v):
        return sklearn_objective(loss, X, y, v[1:], v[0], eps, alpha)

    ref = optimize.minimize(f, np.zeros(4), method="BFGS", options={"gtol": 1e-12}).x
    gd = GDRegressor(loss=loss, epsilon=eps, alpha=alpha, **tight()).fit(X, y)
    np.testing.assert_allclose(gd.coef_, ref[1:], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gd.intercept_[0], ref[0], rtol=1e-5, atol=1e-6)
    if loss == "huber":  # the outliers pull least squares away; Huber resists them
        assert abs(gd.intercept_[0] - 1.5) < abs(LinearRegression().fit(X, y).intercept_ - 1.5)


def test_epsilon_insensitive_reaches_the_linear_programme_optimum():
    # min (1/m) sum max(0, |r_i| - eps) + alpha |w|_1 is a linear programme: solve it exactly with HiGHS
    X, y = problem(m=80, d=3, seed=5, outliers=True)
    m, d = X.shape
    eps, alpha = 0.2, 0.01
    # variables: w+ (d), w- (d), b+ , b-, slack s (m) >= 0;   s_i >= |x_i w + b - y_i| - eps
    c = np.concatenate([np.full(2 * d, alpha), [0, 0], np.full(m, 1 / m)])
    A = np.block([[X, -X, np.ones((m, 1)), -np.ones((m, 1)), -np.eye(m)],
                  [-X, X, -np.ones((m, 1)), np.ones((m, 1)), -np.eye(m)]])
    ub = np.concatenate([y + eps, eps - y])
    lp = optimize.linprog(c, A_ub=A, b_ub=ub, bounds=(0, None), method="highs")
    assert lp.success
    gd = GDRegressor(loss="epsilon_insensitive", epsilon=eps, penalty="l1", alpha=alpha, max_iter=4000,
                     tol=None).fit(X, y)
    value = sklearn_objective("epsilon_insensitive", X, y, gd.coef_, gd.intercept_[0], eps, 0) + alpha * np.abs(
        gd.coef_).sum()
    assert value >= lp.fun - 1e-9
    assert value - lp.fun < 2e-3 * lp.fun  # a subgradient method: close, not exact


def reference_minimum(loss, penalty, X, y, epsilon, alpha, l1_ratio=0.5):
    """The minimiser of (1/m) sum loss(r_i) + l1 |w|_1 + l2/2 |w|^2 by scipy, independently of gdlab.

    Smooth losses: L-BFGS-B on w = w+ - w- (w+, w- >= 0), which makes the L1 term linear and the problem smooth.
    epsilon-insensitive: SLSQP on slack variables s_i >= |r_i| - epsilon, s_i >= 0 (a convex QP)."""
    l1 = {None: 0.0, "l2": 0.0, "l1": alpha, "elasticnet": alpha * l1_ratio}[penalty]
    l2 = {None: 0.0, "l2": alpha, "l1": 0.0, "elasticnet": alpha * (1 - l1_ratio)}[penalty]
    m, d = X.shape
    lo = gdlab.losses.get_loss(loss, epsilon)
    if lo.smooth:
        def f(v):
            b, w = v[0], v[1:d + 1] - v[d + 1:]
            r = X @ w + b - y
            g_pred = lo.derivative(r, 0.0) / m
            gw = X.T @ g_pred + l2 * w
            value = lo.value(r, 0.0).mean() + l1 * v[1:].sum() + 0.5 * l2 * w @ w
            return value, np.concatenate([[g_pred.sum()], gw + l1, -gw + l1])

        bounds = [(None, None)] + [(0, None)] * (2 * d)
        v = optimize.minimize(f, np.zeros(2 * d + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                              options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000}).x
        return v[1:d + 1] - v[d + 1:], v[0]
    # variables: b, w+ (d), w- (d), s (m)
    n = 1 + 2 * d + m

    def f(v):
        w = v[1:d + 1] - v[d + 1:2 * d + 1]
        value = v[2 * d + 1:].mean() + l1 * v[1:2 * d + 1].sum() + 0.5 * l2 * w @ w
        return value, np.concatenate([[0.0], l1 + l2 * w, l1 - l2 * w, np.full(m, 1 / m)])

    A = np.hstack([np.ones((m, 1)), X, -X, np.zeros((m, m))])
    S = np.hstack([np.zeros((m, 1 + 2 * d)), np.eye(m)])
    cons = [{"type": "ineq", "fun": lambda v: S @ v - (A @ v - y) + epsilon, "jac": lambda v: S - A},
            {"type": "ineq", "fun": lambda v: S @ v + (A @ v - y) + epsilon, "jac": lambda v: S + A}]
    v0 = np.concatenate([np.zeros(1 + 2 * d), np.abs(y) + 1])
    v = optimize.minimize(f, v0, jac=True, method="SLSQP", constraints=cons, bounds=[(None, None)] + [(0, None)] * (n - 1),
                          options={"ftol": 1e-14, "maxiter": 1000}).x
    return v[1:d + 1] - v[d + 1:2 * d + 1], v[0]


@pytest.mark.parametrize("penalty", [None, "l2", "l1", "elasticnet"])
@pytest.mark.parametrize("loss", ["huber", "squared_epsilon_insensitive", "epsilon_insensitive"])
def test_every_robust_loss_and_penalty_pair_reaches_the_scipy_optimum(loss, penalty):
    X, y = problem(m=60, d=3, seed=12, outliers=True)
    eps, alpha = 0.3, 0.05
    w_ref, b_ref = reference_minimum(loss, penalty, X, y, eps, alpha, l1_ratio=0.5)
    if loss != "epsilon_insensitive":
        gd = GDRegressor(loss=loss, penalty=penalty, alpha=alpha, l1_ratio=0.5, epsilon=eps, **tight()).fit(X, y)
        np.testing.assert_allclose(gd.coef_, w_ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(gd.intercept_[0], b_ref, rtol=1e-5, atol=1e-6)
        return
    # the epsilon-insensitive loss has no gradient at its kinks: subgradient descent comes close, not exactly
    gd = GDRegressor(loss=loss, penalty=penalty, alpha=alpha, l1_ratio=0.5, epsilon=eps, max_iter=4000,
                     tol=None).fit(X, y)
    l1 = {None: 0.0, "l2": 0.0, "l1": alpha, "elasticnet": alpha / 2}[penalty]
    l2 = {None: 0.0, "l2": alpha, "l1": 0.0, "elasticnet": alpha / 2}[penalty]

    def objective(w, b):
        return np.maximum(np.abs(X @ w + b - y) - eps, 0).mean() + l1 * np.abs(w).sum() + 0.5 * l2 * w @ w

    ref, got = objective(w_ref, b_ref), objective(gd.coef_, gd.intercept_[0])
    assert got >= ref - 1e-7
    assert got - ref < 2e-3 * ref


def test_multi_output_matches_ridge_per_output():
    X, Y = problem(m=100, d=4, n_outputs=3)
    ref = Ridge(alpha=0.01 * 100).fit(X, Y)
    gd = GDRegressor(alpha=0.01, **tight()).fit(X, Y)
    assert gd.coef_.shape == (3, 4) and gd.intercept_.shape == (3,)
    np.testing.assert_allclose(gd.coef_, ref.coef_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(gd.intercept_, ref.intercept_, rtol=1e-7, atol=1e-9)
    assert gd.predict(X).shape == (100, 3)
    assert gd.score(X, Y) == pytest.approx(ref.score(X, Y), rel=1e-9)


def test_sample_weights_equal_repeated_rows():
    X, y = problem(m=30, d=3)
    w = np.arange(30) % 3
    a = GDRegressor(**tight()).fit(X, y, sample_weight=w)
    b = GDRegressor(**tight()).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    # both stop at the floating-point floor of the (L2-penalised) objective's gap, a few ulps of F*: the
    # coefficients then agree to about the square root of that
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-7)


# ---- the stochastic kernel against a plain NumPy transcription -------------------------------------------------------
def reference_sgd(X, Y, sw, orders, batch_size, eta_of_t, *, l1=0.0, l2=0.0, optimizer="gd", beta=0.0,
                  loss=gdlab.losses.SquaredError(), average_start=-1):
    """Mini-batch SGD written plainly: the batch gradient of (1/n) sum s_i loss_i, divided by |B| mean(s)."""
    m, d = X.shape
    Xb = np.hstack([np.ones((m, 1)), X])
    theta = np.zeros((d + 1, Y.shape[1]))
    v = np.zeros_like(theta)
    avg, n_avg, t = np.zeros_like(theta), 0, 0
    s_bar = 1.0 if sw is None else sw.mean()
    for order in orders:
        for start in range(0, m, batch_size):
            rows = order[start:start + batch_size]
            s = np.ones(len(rows)) if sw is None else sw[rows]
            r = Xb[rows] @ theta - Y[rows]
            g = Xb[rows].T @ (s[:, None] * loss.derivative(r, 0.0)) / (len(rows) * s_bar)
            g[1:] += l2 * theta[1:]
            eta = eta_of_t(t)
            if optimizer == "gd":
                u = g
            else:
                v = g + beta * v
                u = v if optimizer == "momentum" else g + beta * v
            theta = theta - eta * u
            theta[1:] = np.sign(theta[1:]) * np.maximum(np.abs(theta[1:]) - eta * l1, 0)
            t += 1
            if 0 <= average_start < t:
                n_avg += 1
                avg += (theta - avg) / n_avg
    return (avg if average_start >= 0 else theta), t


@needs_numba
@pytest.mark.parametrize("batch_size", [1, 7])
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "nesterov"])
def test_kernel_matches_a_numpy_transcription(batch_size, optimizer):
    X, y = problem(m=60, d=3, seed=6)
    sw = np.random.default_rng(0).uniform(0.2, 2.0, 60)
    model = GDRegressor(penalty="elasticnet", alpha=0.05, l1_ratio=0.5, learning_rate="invscaling", eta0=0.02,
                        power_t=0.3, optimizer=optimizer, beta=0.5, batch_size=batch_size, max_iter=3, tol=None,
                        random_state=3, average=20).fit(X, y, sample_weight=sw)
    # the same row orders: a Generator seeded as the estimator seeds it, shuffling the previous order in place
    # each epoch by Fisher-Yates with one uniform draw per row
    seed = np.random.RandomState(3).randint(np.iinfo(np.int32).max)
    rng = np.random.default_rng(seed)
    order, orders = list(range(60)), []
    for _ in range(3):
        u = rng.random(60)
        for i in range(59, 0, -1):
            j = int(u[i] * (i + 1))
            order[i], order[j] = order[j], order[i]
        orders.append(np.array(order))
    sched = gdlab.schedules.invscaling(0.02, 0.3)
    theta, t = reference_sgd(X, y[:, None], sw, orders, batch_size, sched, l1=0.05 * 2 * 0.5, l2=0.05 * 2 * 0.5,
                             optimizer=optimizer, beta=0.5, average_start=19)
    assert model.solver_ == "numba kernel"
    np.testing.assert_allclose(model.coef_, theta[1:, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.intercept_, theta[0], rtol=1e-10, atol=1e-12)
    assert model.t_ == t + 1


@needs_numba
def test_kernel_and_numpy_minibatch_paths_agree(monkeypatch):
    """Same updates from the compiled loop and from gdlab.descend's NumPy mini-batches."""
    X, y = problem(m=90, d=4, seed=7, n_outputs=2)
    # (the two paths shuffle differently - descend by Generator.permutation - so compare them in order)
    params = dict(learning_rate="constant", eta0=0.01, optimizer="momentum", batch_size=8, max_iter=4, tol=None,
                  shuffle=False, penalty="l1", alpha=0.01)
    kernel = GDRegressor(**params).fit(X, y)
    monkeypatch.setattr(estimator_module, "KERNEL_MAX_BATCH", 0)
    numpy_path = GDRegressor(**params).fit(X, y)
    assert kernel.solver_ == "numba kernel" and numpy_path.solver_.startswith("descend")
    np.testing.assert_allclose(kernel.coef_, numpy_path.coef_, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(kernel.trajectory_.loss, numpy_path.trajectory_.loss, rtol=1e-10)
    np.testing.assert_allclose(kernel.trajectory_.learning_rate, numpy_path.trajectory_.learning_rate)
    np.testing.assert_allclose(kernel.trajectory_.grad_norm, numpy_path.trajectory_.grad_norm, rtol=1e-9)


def test_without_numba_every_fit_runs_in_descend(monkeypatch):
    monkeypatch.setattr(_sgd_kernel, "HAVE_NUMBA", False)
    X, y = problem(m=50, d=2)
    model = GDRegressor(batch_size=1, learning_rate="constant", eta0=0.01, max_iter=2, tol=None,
                        random_state=0).fit(X, y)
    assert model.solver_.startswith("descend")
    assert model.t_ == 2 * 50 + 1


def test_stochastic_auto_step_converges_near_the_optimum():
    X, y = problem(m=400, d=5, seed=8)
    ref = Ridge(alpha=1e-4 * 400).fit(X, y)
    model = GDRegressor(batch_size=1, random_state=0, max_iter=300, tol=1e-4).fit(X, y)
    np.testing.assert_allclose(model.coef_, ref.coef_, atol=2e-2)
    assert not model.diverged_


# ---- partial_fit, warm_start, early stopping ------------------------------------------------------------------
@pytest.mark.parametrize("batch_size,optimizer", [(None, "momentum"), (5, "gd"), (None, "adam"), (5, "adam")])
def test_partial_fit_epochs_continue_the_schedule_and_state(batch_size, optimizer):
    X, y = problem(m=40, d=3, seed=9)
    params = dict(learning_rate="invscaling", eta0=0.05, power_t=0.5, optimizer=optimizer, batch_size=batch_size,
                  shuffle=False, tol=None, penalty=None)
    whole = GDRegressor(max_iter=6, **params).fit(X, y)
    parts = GDRegressor(max_iter=1, **params)
    for _ in range(6):
        parts.partial_fit(X, y)
    np.testing.assert_allclose(parts.coef_, whole.coef_, rtol=1e-10)
    np.testing.assert_allclose(parts.intercept_, whole.intercept_, rtol=1e-10)
    assert parts.t_ == whole.t_


def test_partial_fit_over_chunks_is_one_long_stochastic_descent():
    X, y = problem(m=60, d=2, seed=10)
    model = GDRegressor(learning_rate="invscaling", eta0=0.02, power_t=0.5, batch_size=1, shuffle=False,
                        penalty=None)
    for chunk in np.array_split(np.arange(60), 3):
        model.partial_fit(X[chunk], y[chunk])
    sched = gdlab.schedules.invscaling(0.02, 0.5)
    theta, t = reference_sgd(X, y[:, None], None, [np.arange(60)], 1, sched)
    np.testing.assert_allclose(model.coef_, theta[1:, 0], rtol=1e-10)
    assert model.t_ == 61


def test_partial_fit_rejects_a_different_number_of_features():
    X, y = problem(m=20, d=3)
    model = GDRegressor().partial_fit(X, y)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:, :2], y)


def test_warm_start_continues_from_the_previous_solution():
    X, y = problem(m=60, d=3)
    params = dict(learning_rate="constant", eta0=0.05, max_iter=5, tol=None)
    first = GDRegressor(warm_start=True, **params).fit(X, y)
    coef, intercept = first.coef_.copy(), first.intercept_.copy()
    first.fit(X, y)
    explicit = GDRegressor(**params).fit(X, y, coef_init=coef, intercept_init=intercept)
    np.testing.assert_allclose(first.coef_, explicit.coef_, rtol=1e-12)
    cold = GDRegressor(**params).fit(X, y)
    ten = GDRegressor(**{**params, "max_iter": 10}).fit(X, y)
    np.testing.assert_allclose(first.coef_, ten.coef_, rtol=1e-12)  # constant step: 5 + 5 iterations = 10
    assert not np.allclose(cold.coef_, first.coef_)


@pytest.mark.parametrize("batch_size", [None, 4])
def test_early_stopping_stops_on_the_validation_score(batch_size):
    X, y = problem(m=300, d=5, seed=11, noise=1.0)
    model = GDRegressor(early_stopping=True, validation_fraction=0.2, n_iter_no_change=3, tol=1e-4,
                        batch_size=batch_size, learning_rate="constant", eta0=0.01, max_iter=500,
                        random_state=0).fit(X, y)
    # a stop on the held-out rows is not convergence: converged_ is a claim about the training objective
    assert model.n_iter_ < 500 and not model.converged_ and not model.diverged_
    assert "validation" in model.message_
    assert model.score(X, y) > 0.9


# ---- sklearn manners -------------------------------------------------------------------------------------------
def test_pickle_round_trip_keeps_predictions_and_trajectory():
    X, y = problem()
    for params in ({}, {"batch_size": 1, "random_state": 0, "max_iter": 3, "tol": None}):
        model = GDRegressor(**params).fit(X, y)
        clone = pickle.loads(pickle.dumps(model))
        np.testing.assert_array_equal(clone.predict(X), model.predict(X))
        np.testing.assert_array_equal(clone.trajectory_.loss, model.trajectory_.loss)
        clone.partial_fit(X, y)  # and it can go on


def test_pandas_feature_names_are_kept_and_checked():
    pd = pytest.importorskip("pandas")
    X, y = problem(d=3)
    frame = pd.DataFrame(X, columns=["size", "age", "rooms"])
    model = GDRegressor().fit(frame, pd.Series(y))
    assert list(model.feature_names_in_) == ["size", "age", "rooms"]
    with pytest.warns(UserWarning, match="feature names"):
        from_array = model.predict(X)
    np.testing.assert_allclose(model.predict(frame), from_array)


def test_pipeline_grid_search_and_cross_validation():
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = problem(m=120, d=3, scale=50.0)
    pipe = make_pipeline(StandardScaler(), GDRegressor())
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.min() > 0.9
    grid = GridSearchCV(pipe, {"gdregressor__optimizer": ["gd", "momentum"], "gdregressor__alpha": [1e-4, 1.0]},
                        cv=3).fit(X, y)
    assert grid.best_params_["gdregressor__alpha"] == 1e-4


def test_trajectory_and_curvature_describe_the_fit():
    X, y = problem(m=100, d=3)
    model = GDRegressor(penalty=None, learning_rate="constant", eta0=0.05, max_iter=30, tol=None).fit(X, y)
    traj = model.trajectory_
    assert list(traj.iteration) == list(range(31))
    assert np.all(np.diff(traj.loss) <= 1e-15)
    ref = gdlab.curvature(X)
    assert model.curvature_.stable_step == pytest.approx(ref.stable_step, rel=1e-9)
    frame = traj.to_frame()
    assert {"loss", "grad_norm", "learning_rate", "gap"} <= set(frame.columns)
    assert traj.gap[-1] >= -1e-12


def test_score_is_r2():
    from sklearn.metrics import r2_score

    X, y = problem()
    model = GDRegressor().fit(X, y)
    assert model.score(X, y) == pytest.approx(r2_score(y, model.predict(X)))


# ---- bad input and failure ------------------------------------------------------------------------------------
@pytest.mark.parametrize("params,match", [
    ({"loss": "hinge"}, "loss"),
    ({"alpha": -1.0}, "alpha"),
    ({"batch_size": 0}, "batch_size"),
    ({"optimizer": "lbfgs"}, "optimizer"),
    ({"learning_rate": "fast"}, "learning_rate"),
    ({"beta": 1.5}, "beta"),
    ({"learning_rate": "optimal", "alpha": 0.0}, "alpha > 0"),
])
def test_bad_parameters_name_the_parameter(params, match):
    X, y = problem(m=20, d=2)
    with pytest.raises(ValueError, match=match):
        GDRegressor(**params).fit(X, y)


def test_bad_inputs_get_clear_errors():
    X, y = problem(m=20, d=2)
    with pytest.raises(NotFittedError):
        GDRegressor().predict(X)
    with pytest.raises(ValueError, match="coef_init"):
        GDRegressor().fit(X, y, coef_init=np.zeros(5))
    with pytest.raises(ValueError, match="NaN"):
        GDRegressor().fit(np.where(X > 1, np.nan, X), y)


def test_divergence_warns_with_the_stable_bound_and_keeps_finite_weights():
    X, y = problem(m=100, d=2)
    stable = gdlab.curvature(X).stable_step
    model = GDRegressor(penalty=None, learning_rate="constant", eta0=3 * stable, max_iter=200, tol=None)
    with pytest.warns(gdlab.DivergenceWarning, match="2/L") as record:
        model.fit(X, y)
    assert f"{stable:.4g}" in str(record[0].message)
    assert model.diverged_ and not model.converged_
    assert np.all(np.isfinite(model.coef_))
    assert model.loss_ <= model.trajectory_.loss[0] * 10


def test_divergence_on_unscaled_features_suggests_standard_scaler():
    X, y = problem(m=100, d=2)
    X[:, 1] *= 1000.0
    model = GDRegressor(penalty=None, learning_rate="constant", eta0=0.01, max_iter=50, tol=None)
    with pytest.warns(gdlab.DivergenceWarning, match="StandardScaler"):
        model.fit(X, y)
    assert model.diverged_


@needs_numba
def test_stochastic_divergence_is_caught_too():
    X, y = problem(m=100, d=2)
    X[:, 1] *= 1000.0
    model = GDRegressor(batch_size=1, learning_rate="constant", eta0=0.1, max_iter=5, tol=None, random_state=0)
    with pytest.warns(gdlab.DivergenceWarning, match="StandardScaler"):
        model.fit(X, y)
    assert model.diverged_ and np.all(np.isfinite(model.coef_))


def test_max_iter_without_convergence_is_a_convergence_warning():
    X, y = problem(m=100, d=2)
    with pytest.warns(gdlab.ConvergenceWarning, match="max_iter=3"):
        GDRegressor(learning_rate="constant", eta0=1e-4, max_iter=3).fit(X, y)


def test_verbose_logs_through_logging_and_prints_nothing(caplog, capsys):
    X, y = problem(m=50, d=2)
    with caplog.at_level(logging.INFO, logger="gdlab"):
        GDRegressor(verbose=1, max_iter=5, tol=None).fit(X, y)
        GDRegressor(verbose=1, max_iter=2, tol=None, batch_size=5, random_state=0).fit(X, y)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    messages = [r.getMessage() for r in caplog.records if r.name == "gdlab"]
    assert sum("epoch" in msg for msg in messages) == 5 + 2 + 2  # per epoch, plus a summary per fit
    with caplog.at_level(logging.INFO, logger="gdlab"):
        caplog.clear()
        GDRegressor(max_iter=5, tol=None).fit(X, y)
    assert not caplog.records



# ---- Poisson (issue 11): PoissonRegressor's minimiser, on raw data ------------------------------------------------
def poisson_newton(X, y, alpha, sample_weight=None):
    """A NumPy Newton transcription with halving: min (1/n) sum_i s_i (exp(eta_i) - y_i eta_i) + alpha/2 |w|^2
    (the half deviance up to terms without w; the intercept unpenalised)."""
    m, d = X.shape
    s = np.ones(m) if sample_weight is None else sample_weight
    n = s.sum()
    Xb = np.c_[np.ones(m), X]
    pen = np.full(d + 1, alpha)
    pen[0] = 0.0

    def objective(t):
        eta = Xb @ t
        return float(np.sum(s * (np.exp(eta) - y * eta)) / n + 0.5 * t @ (pen * t))

    theta = np.zeros(d + 1)
    theta[0] = np.log(np.average(y, weights=s))
    for _ in range(200):
        mu = np.exp(Xb @ theta)
        g = Xb.T @ (s * (mu - y)) / n + pen * theta
        step = np.linalg.solve((Xb * (s * mu)[:, None]).T @ Xb / n + np.diag(pen), g)
        scale = 1.0
        while objective(theta - scale * step) > objective(theta) + 1e-13 * abs(objective(theta)) and scale > 1e-10:
            scale /= 2
        theta -= scale * step
        if np.max(np.abs(scale * step)) < 1e-15 * np.max(np.abs(theta)):
            break
    return theta[1:], theta[0]


def poisson_regressor(alpha, **kw):
    from sklearn.linear_model import PoissonRegressor

    return PoissonRegressor(alpha=alpha, solver="newton-cholesky", tol=1e-12, max_iter=1000, **kw)


@pytest.mark.parametrize("alpha", [1e-3, 1.0])
def test_poisson_reaches_poisson_regressor_on_raw_diabetes(alpha):
    """Both minimise (1/n) sum half-deviance + alpha/2 |w|^2: the same alpha, the same minimiser (coefficients to
    ~3e-6 relative at tol=1e-12, the Newton decrement within 1e-12 of the loss)."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, scaled=False)  # raw: age in years, sex 1/2, bmi, blood pressure, ...
    gd = GDRegressor(loss="poisson", alpha=alpha, tol=1e-12, max_iter=50_000).fit(X, y)
    assert gd.converged_
    sk = poisson_regressor(alpha).fit(X, y)
    coef, intercept = poisson_newton(X, y, alpha)
    np.testing.assert_allclose(sk.coef_, coef, rtol=1e-10, atol=1e-12 * np.max(np.abs(coef)))  # the two references
    assert np.max(np.abs(gd.coef_ - coef)) < 1e-5 * np.max(np.abs(coef))
    assert abs(gd.intercept_[0] - intercept) < 1e-5 * abs(intercept)
    np.testing.assert_allclose(gd.predict(X), sk.predict(X), rtol=1e-5)  # the mean exp(eta), not eta
    np.testing.assert_allclose(gd.predict(X), np.exp(X @ gd.coef_ + gd.intercept_[0]), rtol=1e-13)


@pytest.mark.parametrize("alpha", [1e-2, 1.0])
def test_poisson_on_counts_reaches_poisson_regressor_with_weights(alpha):
    from sklearn.datasets import load_linnerud

    data = load_linnerud()
    X, y = data.target, data.data[:, 0]  # chin-ups (counts, zeros included) from weight, waist and pulse
    sw = np.random.default_rng(1).uniform(0.5, 2.0, len(y))
    gd = GDRegressor(loss="poisson", alpha=alpha, tol=1e-13, max_iter=50_000).fit(X, y, sample_weight=sw)
    assert gd.converged_
    sk = poisson_regressor(alpha).fit(X, y, sample_weight=sw)
    coef, intercept = poisson_newton(X, y, alpha, sample_weight=sw)
    for ref_coef, ref_intercept in ((coef, intercept), (sk.coef_, sk.intercept_)):
        assert np.max(np.abs(gd.coef_ - ref_coef)) < 1e-6 * np.max(np.abs(ref_coef))
        assert abs(gd.intercept_[0] - ref_intercept) < 1e-6 * abs(ref_intercept)


def test_poisson_with_several_targets_is_one_poisson_regressor_per_column():
    from sklearn.datasets import load_linnerud

    data = load_linnerud()
    X, Y = data.target, data.data  # chin-ups, sit-ups and jumps
    gd = GDRegressor(loss="poisson", alpha=1.0, tol=1e-12, max_iter=50_000).fit(X, Y)
    assert gd.converged_ and gd.coef_.shape == (3, 3) and gd.predict(X).shape == Y.shape
    for j in range(3):  # (one stop rule for the sum of the three objectives: each column to ~3e-6)
        sk = poisson_regressor(1.0).fit(X, Y[:, j])
        assert np.max(np.abs(gd.coef_[j] - sk.coef_)) < 1e-5 * np.max(np.abs(sk.coef_))


def test_poisson_refuses_negative_targets_with_the_fix():
    X, y = problem()
    with pytest.raises(ValueError, match=r"loss='poisson' models counts \(y >= 0\)"):
        GDRegressor(loss="poisson").fit(X, y - 100)
    with pytest.raises(ValueError, match="loss"):  # classification losses belong to GDClassifier
        GDRegressor(loss="log_loss").fit(X, y)
