"""The descent loop against independent references: the closed form, scikit-learn, plain NumPy transcriptions."""

import importlib
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gdlab
from gdlab import ConvergenceWarning, DivergenceWarning
from gdlab.datasets import make_regression


def problem(m=200, d=3, cond=5.0, seed=0, noise=0.3, intercept=1.5):
    return make_regression(m, d, noise=noise, condition_number=cond, intercept=intercept, random_state=seed)


# ---- convergence and divergence (the theory) ---------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), m=st.integers(20, 300), d=st.integers(1, 6),
       fraction=st.floats(0.05, 0.95), cond=st.floats(1.0, 30.0))
def test_gd_below_the_stable_step_converges_to_the_closed_form(seed, m, d, fraction, cond):
    ds = problem(m, d, cond, seed)
    curv = gdlab.curvature(ds.X)
    eta = fraction * curv.stable_step
    exact = gdlab.closed_form(ds.X, ds.y)
    n_needed = int(min(200_000, 3 * curv.iterations_to(1e-24, eta) + 50))
    r = gdlab.descend(ds.X, ds.y, learning_rate=eta, max_iter=n_needed, tol=None, gtol=1e-12, warn=False)
    assert not r.diverged
    np.testing.assert_allclose(r.params, exact.params, rtol=1e-6, atol=1e-8)
    assert r.loss >= exact.loss - 1e-12 * max(1.0, exact.loss)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), factor=st.floats(1.05, 3.0))
def test_gd_above_the_stable_step_is_reported_divergent(seed, factor):
    ds = problem(100, 2, 4.0, seed)
    curv = gdlab.curvature(ds.X)
    eta = factor * curv.stable_step
    with pytest.warns(DivergenceWarning, match=r"2/L = "):
        r = gdlab.descend(ds.X, ds.y, learning_rate=eta, max_iter=5000)
    assert r.diverged and r.status == 2 and not r.converged
    assert f"{curv.stable_step:.4g}" in r.message and "above" in r.message
    assert r.n_iter < 5000  # stopped early


def test_divergence_message_suggests_standardising_badly_scaled_features():
    rng = np.random.default_rng(0)
    X = np.c_[rng.standard_normal(100), 1000 * rng.standard_normal(100)]
    y = X @ [1.0, 0.001] + rng.standard_normal(100)
    with pytest.warns(DivergenceWarning, match="StandardScaler"):
        gdlab.descend(X, y, learning_rate=0.1)


def test_predicted_rate_matches_the_observed_contraction():
    ds = problem(500, 4, 20.0, 3)
    curv = gdlab.curvature(ds.X)
    exact = gdlab.closed_form(ds.X, ds.y)
    for eta in (0.3 * curv.stable_step, curv.best_step, 0.9 * curv.stable_step):
        r = gdlab.descend(ds.X, ds.y, learning_rate=eta, max_iter=60, tol=None, gtol=None)
        err = np.linalg.norm(r.trajectory.params - exact.params, axis=1)
        observed = (err[-1] / err[-21]) ** (1 / 20)  # asymptotic per-step contraction
        assert observed <= curv.rate(eta) * (1 + 1e-6)
        assert observed >= curv.rate(eta) * 0.9


def test_curvature_is_the_spectrum_of_the_mse_hessian():
    ds = problem(300, 4, 10.0, 1)
    Xb = np.c_[np.ones(len(ds.X)), ds.X]
    H = 2 / len(ds.X) * Xb.T @ Xb
    eig = np.linalg.eigvalsh(H)
    c = gdlab.curvature(ds.X)
    np.testing.assert_allclose([c.mu, c.L], [eig[0], eig[-1]], rtol=1e-10)
    assert c.stable_step == pytest.approx(2 / eig[-1])
    assert c.best_step == pytest.approx(2 / (eig[0] + eig[-1]))
    k = eig[-1] / eig[0]
    assert c.best_rate == pytest.approx((k - 1) / (k + 1))
    assert c.rate(c.best_step) == pytest.approx(c.best_rate)
    hb = c.heavy_ball
    assert hb["rate"] == pytest.approx((math.sqrt(k) - 1) / (math.sqrt(k) + 1))
    # without intercept the Hessian has no ones column
    H0 = 2 / len(ds.X) * ds.X.T @ ds.X
    assert gdlab.curvature(ds.X, fit_intercept=False).L == pytest.approx(np.linalg.eigvalsh(H0)[-1])


def test_heavy_ball_at_polyaks_parameters_reaches_its_predicted_rate():
    ds = problem(400, 5, 100.0, 2, noise=0.5)
    c = gdlab.curvature(ds.X)
    exact = gdlab.closed_form(ds.X, ds.y)
    r = gdlab.descend(ds.X, ds.y, optimizer="momentum", learning_rate="auto", max_iter=300, tol=None, gtol=None,
                      standardize=False)  # Polyak's parameters on the raw problem, whose curvature c describes
    err = np.linalg.norm(r.trajectory.params - exact.params, axis=1)
    observed = (err[250] / err[150]) ** (1 / 100)
    assert observed <= c.heavy_ball["rate"] * 1.1
    assert observed < c.best_rate  # faster than the best plain GD


# ---- sources -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("weighted", [False, True])
def test_gram_and_memory_sources_give_the_same_trajectory(fit_intercept, weighted):
    ds = problem(1000, 5, 10.0, 7, intercept=3.0)
    sw = np.random.default_rng(1).uniform(0.1, 2.0, len(ds.y)) if weighted else None
    kw = dict(learning_rate=0.05, max_iter=1000, tol=None, gtol=None, fit_intercept=fit_intercept,
              sample_weight=sw)
    mem = gdlab.descend(ds.X, ds.y, source="memory", **kw)
    gram = gdlab.descend(ds.X, ds.y, source="gram", **kw)
    assert (mem.source, gram.source) == ("memory", "gram")
    scale = np.abs(mem.trajectory.params).max()
    assert np.abs(mem.trajectory.params - gram.trajectory.params).max() / scale < 1e-10
    np.testing.assert_allclose(mem.trajectory.loss, gram.trajectory.loss, rtol=1e-10)


def test_gram_statistics_do_not_lose_digits_when_columns_have_large_means():
    rng = np.random.default_rng(0)
    X = 1e8 + rng.standard_normal((5000, 2))
    y = X @ [2.0, -1.0] + 3.0 + 0.01 * rng.standard_normal(5000)
    stats = gdlab.sources.GramStats.from_arrays(X, y[:, None])
    Z = np.c_[X, y]
    centred = Z - Z.mean(0)  # exact enough: the spread is O(1) after subtracting the mean
    np.testing.assert_allclose(stats.comoment, centred.T @ centred, rtol=1e-8)
    # merging blocks equals one pass
    a = gdlab.sources.GramStats.from_arrays(X[:1234], y[:1234, None])
    b = gdlab.sources.GramStats.from_arrays(X[1234:], y[1234:, None])
    merged = a.merge(b)
    scale = np.sqrt(np.outer(np.diag(stats.comoment), np.diag(stats.comoment)))
    assert np.abs(merged.comoment - stats.comoment).max() / scale.max() < 1e-10
    np.testing.assert_allclose(merged.mean, stats.mean, rtol=1e-15)


def test_auto_source_reports_its_choice():
    ds = problem(2000, 3)
    r = gdlab.descend(ds.X, ds.y, max_iter=500, standardize=False)
    assert r.source == "gram" and "beats" in r.source_reason
    r = gdlab.descend(ds.X, ds.y, max_iter=500)  # standardizing reads the statistics anyway
    assert r.source == "gram" and "standardiz" in r.source_reason and r.scaling == "standardize"
    r = gdlab.descend(ds.X, ds.y, loss="huber", learning_rate=0.1, max_iter=50, warn=False)
    assert r.source == "memory" and "huber" in r.source_reason and r.scaling == "none"


# ---- optimizers (a table of optimizers x problems with a known minimum) -------------------------------------

OPTIMIZER_SETTINGS = [
    ("gd", {"learning_rate": "auto"}),
    ("momentum", {"learning_rate": "auto"}),
    ("nesterov", {"learning_rate": "auto"}),
    ("adagrad", {"learning_rate": 0.5}),
    ("rmsprop", {"learning_rate": 0.1, "decay": 0.9}),
    ("adam", {"learning_rate": 0.05}),
]


@pytest.mark.parametrize("name,kw", OPTIMIZER_SETTINGS, ids=[o for o, _ in OPTIMIZER_SETTINGS])
@pytest.mark.parametrize("seed,cond", [(0, 1.0), (1, 10.0), (2, 50.0)])
def test_every_optimizer_reaches_the_optimum(name, kw, seed, cond):
    ds = problem(300, 3, cond, seed)
    exact = gdlab.closed_form(ds.X, ds.y)
    if name in ("rmsprop", "adam"):  # constant-step adaptive methods hover; a decaying step settles them
        kw = {**kw, "learning_rate": gdlab.schedules.invscaling(kw["learning_rate"], 0.6)}
    r = gdlab.descend(ds.X, ds.y, optimizer=name, max_iter=20_000, tol=0.0, gtol=1e-10, warn=False, **kw)
    assert not r.diverged
    assert r.gap / exact.loss < 1e-6, (name, r.gap, r.message)
    np.testing.assert_allclose(r.params, exact.params, rtol=1e-2, atol=1e-3)


def numpy_optimizer(name, X, y, eta, steps, beta=0.9, b1=0.9, b2=0.999, eps=1e-8, decay=0.9):
    """Plain NumPy transcriptions of each update rule, from the papers' equations."""
    Xb = np.c_[np.ones(len(X)), X]
    w = np.zeros(Xb.shape[1])
    v = np.zeros_like(w)
    s = np.zeros_like(w)
    out = []
    for t in range(1, steps + 1):
        g = 2 / len(X) * Xb.T @ (Xb @ w - y)
        if name == "gd":
            w = w - eta * g
        elif name == "momentum":  # Polyak: w_{t+1} = w_t - eta g_t + beta (w_t - w_{t-1}), w_{-1} = w_0
            w_prev = out[-2] if len(out) >= 2 else np.zeros_like(w)
            w = w - eta * g + beta * (w - w_prev)
        elif name == "nesterov":  # Sutskever et al.: v = beta v + g; w -= eta (g + beta v)
            v = beta * v + g
            w = w - eta * (g + beta * v)
        elif name == "adagrad":
            s = s + g * g
            w = w - eta * g / (np.sqrt(s) + 1e-10)
        elif name == "rmsprop":
            s = decay * s + (1 - decay) * g * g
            w = w - eta * g / (np.sqrt(s) + eps)
        elif name == "adam":
            v = b1 * v + (1 - b1) * g
            s = b2 * s + (1 - b2) * g * g
            w = w - eta * (v / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps)
        out.append(w.copy())
    return np.array(out)


@pytest.mark.parametrize("name", ["gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_each_optimizer_follows_its_update_equations(name):
    ds = problem(80, 2, 3.0, 4)
    got = gdlab.descend(ds.X, ds.y, optimizer=name, learning_rate=0.05, max_iter=40, tol=None, gtol=None,
                        source="memory")
    ref = numpy_optimizer(name, ds.X, ds.y, 0.05, 40)
    np.testing.assert_allclose(got.trajectory.params[1:], ref, rtol=1e-9, atol=1e-12)


def test_momentum_with_zero_beta_is_plain_gd():
    ds = problem(100, 3)
    a = gdlab.descend(ds.X, ds.y, optimizer="momentum", beta=0.0, learning_rate=0.1, max_iter=50, tol=None)
    b = gdlab.descend(ds.X, ds.y, optimizer="gd", learning_rate=0.1, max_iter=50, tol=None)
    np.testing.assert_array_equal(a.trajectory.params, b.trajectory.params)


def test_optax_style_update_equals_the_loop_step():
    opt = gdlab.optimizers.adam(0.01)
    params = np.array([[1.0], [2.0]])
    state = opt.init(params)
    g = np.array([[0.5], [-1.0]])
    updates, state = opt.update(g, state, params)
    # first Adam step: m_hat = g, v_hat = g^2, so the update is -eta * sign(g) (up to eps)
    np.testing.assert_allclose(updates, -0.01 * np.sign(g), rtol=1e-6)
    assert state[0] == 1


# ---- schedules -------------------------------------------------------------------------------------------


def test_schedules_follow_their_formulas():
    s = gdlab.schedules
    assert s.invscaling(0.1, 0.5)(3) == pytest.approx(0.1 / 2.0)
    assert s.exponential(1.0, 0.5, 2)(4) == pytest.approx(0.25)
    assert s.step(1.0, 10, 0.1)(25) == pytest.approx(0.01)
    assert s.cosine(1.0, 100)(50) == pytest.approx(0.5)
    assert s.cosine(1.0, 100, 0.1)(1000) == pytest.approx(0.1)
    assert s.constant(0.3)(99) == 0.3


def test_schedule_steps_are_the_recorded_learning_rates():
    ds = problem(100, 2)
    sched = gdlab.schedules.invscaling(0.2, 0.5)
    r = gdlab.descend(ds.X, ds.y, learning_rate=sched, max_iter=20, tol=None)
    np.testing.assert_allclose(r.trajectory.learning_rate[1:], [sched(t) for t in range(20)])
    assert np.isnan(r.trajectory.learning_rate[0])


def test_line_search_never_increases_the_loss_even_from_a_huge_step():
    ds = problem(200, 3, 20.0)
    r = gdlab.descend(ds.X, ds.y, learning_rate=100.0, line_search=True, max_iter=5000, tol=0.0, gtol=None)
    assert np.all(np.diff(r.trajectory.loss) <= 0)
    assert r.converged and r.gap < 1e-12
    t = r.trajectory  # Armijo: every accepted step decreased the loss by at least eta/2 |g|^2
    assert np.all(t.loss[1:] <= t.loss[:-1] - 0.5 * t.learning_rate[1:] * t.grad_norm[:-1] ** 2 + 1e-15)


# ---- batches ----------------------------------------------------------------------------------------------


def test_batch_size_m_gives_exactly_the_full_batch_iterates():
    ds = problem(150, 3)
    full = gdlab.descend(ds.X, ds.y, learning_rate=0.1, max_iter=30, tol=None, source="memory")
    batch = gdlab.descend(ds.X, ds.y, learning_rate=0.1, max_iter=30, tol=None, batch_size=150, random_state=0,
                          source="memory")
    np.testing.assert_array_equal(full.trajectory.params, batch.trajectory.params)


def test_minibatch_epoch_equals_a_numpy_transcription_with_the_same_shuffles():
    ds = problem(103, 2)
    r = gdlab.descend(ds.X, ds.y, learning_rate=0.05, max_iter=3, tol=None, batch_size=10, random_state=42,
                      engine="numpy")  # (the compiled epochs shuffle by Fisher-Yates in place: test_estimator.py)
    rng = np.random.default_rng(42)
    Xb = np.c_[np.ones(len(ds.X)), ds.X]
    w = np.zeros(3)
    for _ in range(3):
        order = rng.permutation(len(ds.X))
        for start in range(0, len(order), 10):
            rows = order[start:start + 10]
            g = 2 / len(rows) * Xb[rows].T @ (Xb[rows] @ w - ds.y[rows])
            w = w - 0.05 * g
    np.testing.assert_allclose(r.params, w, rtol=1e-12)
    assert r.n_updates == 3 * 11


@pytest.mark.skipif(not importlib.import_module("gdlab._sgd_kernel").HAVE_NUMBA, reason="the compiled epochs need numba")
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "nesterov"])
def test_the_one_loop_drives_both_epoch_engines_to_the_same_trajectory(optimizer, standardize):
    """The compiled kernel is an engine of descend's loop: same updates, same trajectory, same stop and state, on
    raw rows and on rows it standardizes on the fly (with the penalty per coefficient in those coordinates)."""
    ds = problem(97, 3)
    X = ds.X * [1.0, 100.0, 0.1] + [5.0, 1e3, -2.0] if standardize else ds.X
    ds = type("D", (), {"X": X, "y": ds.y})
    kw = dict(optimizer=optimizer, learning_rate=gdlab.schedules.invscaling(0.02, 0.3), max_iter=6, tol=None,
              batch_size=8, shuffle=False, penalty="elasticnet", alpha=0.01, average=20, standardize=standardize)
    a = gdlab.descend(ds.X, ds.y, engine="compiled", **kw)
    b = gdlab.descend(ds.X, ds.y, engine="numpy", **kw)
    assert a.extra["engine"] == "compiled" and b.extra["engine"] == "numpy"
    np.testing.assert_allclose(a.trajectory.params, b.trajectory.params, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(a.trajectory.loss, b.trajectory.loss, rtol=1e-12)
    np.testing.assert_allclose(a.params, b.params, rtol=1e-11, atol=1e-13)  # the averaged iterate
    assert a.n_updates == b.n_updates == 6 * 13
    # going on from the state: 3 + 3 epochs are the 6 epochs
    for engine in ("compiled", "numpy"):
        first = gdlab.descend(ds.X, ds.y, engine=engine, **{**kw, "max_iter": 3})
        th = first.extra["theta"]
        second = gdlab.descend(ds.X, ds.y, engine=engine, **{**kw, "max_iter": 3}, state=first.extra["state"],
                               coef_init=th[1:], intercept_init=th[0])
        np.testing.assert_allclose(second.params, a.params, rtol=1e-11, atol=1e-13)


def test_stochastic_descent_with_a_decaying_step_approaches_the_optimum():
    ds = problem(2000, 3, noise=0.1)
    exact = gdlab.closed_form(ds.X, ds.y)
    r = gdlab.descend(ds.X, ds.y, batch_size=1, learning_rate=gdlab.schedules.invscaling(0.05, 0.5),
                      max_iter=5, tol=None, random_state=0)
    assert r.gap / exact.loss < 0.05


# ---- penalties and losses --------------------------------------------------------------------------------


def test_l2_penalty_reaches_the_ridge_closed_form_and_scikit_learn_ridge():
    from sklearn.linear_model import Ridge

    ds = problem(300, 4)
    alpha = 0.3
    r = gdlab.descend(ds.X, ds.y, penalty="l2", alpha=alpha, max_iter=5000, tol=0.0, gtol=1e-12, warn=False)
    exact = gdlab.closed_form(ds.X, ds.y, l2=alpha)
    np.testing.assert_allclose(r.params, exact.params, rtol=1e-8)
    # MSE + alpha/2 |w|^2 = (1/m)(|r|^2 + m alpha/2 |w|^2): Ridge's alpha is m * alpha / 2
    sk = Ridge(alpha=len(ds.y) * alpha / 2).fit(ds.X, ds.y)
    np.testing.assert_allclose(r.coef, sk.coef_, rtol=1e-7)
    assert r.intercept == pytest.approx(sk.intercept_, rel=1e-7)


def test_l1_penalty_makes_exact_zeros_and_matches_scikit_learn_lasso():
    from sklearn.linear_model import Lasso

    rng = np.random.default_rng(0)
    X = rng.standard_normal((400, 8))
    y = X[:, :3] @ [3.0, -2.0, 1.0] + 0.1 * rng.standard_normal(400)
    alpha = 0.1
    r = gdlab.descend(X, y, penalty="l1", alpha=alpha, learning_rate="auto", max_iter=20000, tol=0.0,
                      gtol=None, warn=False)
    assert np.sum(r.coef == 0.0) >= 4  # exact zeros from the proximal step
    # MSE + alpha |w|_1 = 2 ((1/2m)|r|^2 + alpha/2 |w|_1): Lasso's alpha is alpha / 2
    sk = Lasso(alpha=alpha / 2, tol=1e-12, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(r.coef, sk.coef_, atol=1e-6)
    np.testing.assert_array_equal(r.coef == 0, sk.coef_ == 0)


@pytest.mark.parametrize("penalty", ["l1", "elasticnet"])
def test_line_search_with_an_l1_term_reaches_scikit_learns_optimum(penalty):
    # proximal backtracking tests the smooth part only: a step that grows |w|_1 is still taken when it should be
    from sklearn.linear_model import ElasticNet

    rng = np.random.default_rng(5)
    X = rng.standard_normal((400, 4)) * np.linspace(0.8, 1.5, 4) + np.linspace(-0.5, 0.5, 4)
    y = X @ rng.standard_normal(4) + 1.5 + 0.3 * rng.standard_normal(400)
    l1_ratio = 1.0 if penalty == "l1" else 0.5
    r = gdlab.descend(X, y, penalty=penalty, alpha=0.2, l1_ratio=l1_ratio, line_search=True, learning_rate=1.0,
                      max_iter=5000, tol=None, gtol=None)
    assert r.n_iter == 5000 and "line search" not in r.message
    sk = ElasticNet(alpha=0.1, l1_ratio=l1_ratio, tol=1e-13, max_iter=100_000).fit(X, y)
    np.testing.assert_allclose(r.coef, sk.coef_, atol=1e-8)
    assert r.intercept == pytest.approx(sk.intercept_, abs=1e-8)


@pytest.mark.parametrize("loss", ["huber", "squared_epsilon_insensitive"])
def test_smooth_robust_losses_reach_the_optimum_found_by_scipy(loss):
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 2))
    y = X @ [1.0, -2.0] + 0.5 + rng.standard_t(2, 300)
    eps = 0.5
    obj = gdlab.objectives.get_loss(loss, eps)

    def f(theta):
        r = X @ theta[1:] + theta[0] - y
        return obj.value(r, 0.0).mean()

    ref = minimize(f, np.zeros(3), method="BFGS", options={"gtol": 1e-12}).x
    r = gdlab.descend(X, y, loss=loss, epsilon=eps, learning_rate=0.5, max_iter=20000, tol=0.0, gtol=1e-11,
                      warn=False)
    np.testing.assert_allclose(r.params, ref, atol=1e-5)


def test_huber_is_robust_to_an_outlier_where_squared_error_is_not():
    ds = problem(100, 1, noise=0.05, intercept=0.0)
    y = ds.y.copy()
    y[0] += 1000
    sq = gdlab.closed_form(ds.X, y)
    hub = gdlab.descend(ds.X, y, loss="huber", epsilon=1.0, learning_rate=1.0, max_iter=5000, tol=1e-12,
                        warn=False)
    assert abs(hub.coef[0] - ds.coef[0]) < 0.05 < abs(sq.coef[0] - ds.coef[0])


# ---- data shapes, weights, dtypes --------------------------------------------------------------------------


def test_float32_input_works_and_matches_float64():
    ds = problem(500, 3)
    r64 = gdlab.descend(ds.X, ds.y, max_iter=500)
    r32 = gdlab.descend(ds.X.astype(np.float32), ds.y, max_iter=500)
    np.testing.assert_allclose(r32.params, r64.params, rtol=1e-5)
    kw = dict(learning_rate=0.1, max_iter=200, source="memory", tol=None)
    r32m = gdlab.descend(ds.X.astype(np.float32), ds.y, **kw)
    r64m = gdlab.descend(ds.X, ds.y, **kw)
    np.testing.assert_allclose(r32m.params, r64m.params, rtol=1e-5)


def test_multi_output_fits_each_column_as_if_alone():
    ds = make_regression(200, 3, n_outputs=2, random_state=5)
    both = gdlab.descend(ds.X, ds.y, learning_rate=0.1, max_iter=50, tol=None)
    for j in range(2):
        one = gdlab.descend(ds.X, ds.y[:, j], learning_rate=0.1, max_iter=50, tol=None)
        np.testing.assert_allclose(both.coef[:, j], one.coef, rtol=1e-12)
        np.testing.assert_allclose(both.intercept[j], one.intercept, rtol=1e-12)
    assert both.trajectory.coef.shape == (51, 3, 2)


def test_integer_sample_weights_equal_repeated_rows():
    ds = problem(60, 2)
    w = np.random.default_rng(0).integers(1, 4, 60)
    a = gdlab.descend(ds.X, ds.y, sample_weight=w, learning_rate=0.1, max_iter=40, tol=None, source="memory")
    b = gdlab.descend(np.repeat(ds.X, w, axis=0), np.repeat(ds.y, w), learning_rate=0.1, max_iter=40, tol=None,
                      source="memory")
    np.testing.assert_allclose(a.trajectory.params, b.trajectory.params, rtol=1e-12)


def test_intercept_only_descent_finds_the_workshop_mean():
    dm = gdlab.datasets.workshop_mean()
    r = gdlab.descend(dm.features, dm.y, learning_rate=0.1, max_iter=200, tol=None, gtol=None, intercept_init=1.0)
    assert r.intercept == pytest.approx(dm.X.mean(), rel=1e-12)
    assert r.trajectory.loss[-1] == pytest.approx(dm.mse(dm.X.mean()), rel=1e-12)


# ---- stopping, recording, results ------------------------------------------------------------------------


def test_max_iter_without_convergence_warns():
    ds = problem(100, 2)
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        r = gdlab.descend(ds.X, ds.y, learning_rate=0.01, max_iter=3)
    assert r.status == 1 and not r.converged


def test_callback_sees_each_iteration_and_can_stop_the_run():
    ds = problem(100, 2)
    seen = []

    def cb(info):
        seen.append(info.iteration)
        return info.iteration == 7

    r = gdlab.descend(ds.X, ds.y, learning_rate=0.05, max_iter=100, callback=cb, tol=None)
    assert seen == list(range(1, 8)) and r.n_iter == 7 and r.status == 3


def test_full_batch_tol_is_the_relative_gap_to_the_minimum():
    ds = problem(200, 2)
    exact = gdlab.closed_form(ds.X, ds.y)
    for tol in (1e-3, 1e-6, 1e-10):
        r = gdlab.descend(ds.X, ds.y, learning_rate="auto", max_iter=10_000, tol=tol)
        assert r.converged and r.loss - exact.loss <= tol * exact.loss
        # and it stopped at the first iteration that met it (the gap before was above)
        assert r.trajectory.loss[-2] - exact.loss > tol * exact.loss


def test_mini_batch_patience_stops_when_the_loss_settles_and_claims_only_a_checked_gap():
    ds = problem(200, 2)
    exact = gdlab.closed_form(ds.X, ds.y)
    r = gdlab.descend(ds.X, ds.y, learning_rate=0.01, batch_size=20, max_iter=10_000, tol=1e-4,
                      n_iter_no_change=3, random_state=0, warn=False)
    assert r.n_iter < 10_000 and r.status in (0, 5)
    losses = r.trajectory.loss
    rel = np.abs(np.diff(losses[-4:])) / losses[-4:-1]
    assert np.all(rel <= 1e-4)
    assert r.converged == (r.loss - exact.loss <= 1e-4 * exact.loss)


def test_recording_is_bounded_and_keeps_the_last_iterate():
    ds = problem(50, 2)
    r = gdlab.descend(ds.X, ds.y, learning_rate=0.001, max_iter=1000, tol=None, max_records=64)
    traj = r.trajectory
    assert len(traj) <= 65
    assert traj.iteration[0] == 0 and traj.iteration[-1] == 1000
    assert np.all(np.diff(traj.iteration) > 0)
    np.testing.assert_array_equal(traj.coef[-1], r.coef)
    r2 = gdlab.descend(ds.X, ds.y, learning_rate=0.001, max_iter=100, tol=None, record_every=10)
    assert list(r2.trajectory.iteration) == list(range(0, 101, 10))


def test_gap_to_the_optimum_is_recorded_and_exports_cleanly(tmp_path):
    ds = gdlab.datasets.workshop_line()
    r = gdlab.descend(ds.X, ds.y, learning_rate=0.1, max_iter=10, tol=None, coef_init=ds.coef_init,
                      intercept_init=ds.intercept_init)
    exact = gdlab.closed_form(ds.X, ds.y)
    assert r.optimum_loss == pytest.approx(exact.loss, rel=1e-12)
    np.testing.assert_allclose(r.trajectory.gap, r.trajectory.loss - exact.loss, rtol=1e-9, atol=1e-14)
    frame = r.to_frame()
    assert list(frame.columns) == ["iteration", "intercept", "w1", "loss", "grad_norm", "learning_rate", "gap"]
    assert len(frame) == 11
    doc = json.loads(r.to_json(tmp_path / "r.json"))
    assert doc == json.loads((tmp_path / "r.json").read_text())
    assert doc["trajectory"]["coef"][-1] == pytest.approx(list(r.coef))
    assert doc["curvature"]["stable_step"] == pytest.approx(r.curvature.stable_step)


# ---- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("X,y,kw,match", [
    (np.array([[1.0], [np.nan]]), [1.0, 2.0], {}, r"X contains NaN at row 1, column 0"),
    (np.array([[1.0], [2.0]]), [1.0, np.inf], {}, r"y contains inf at row 1"),
    (np.ones((3, 1)), [1.0, 2.0], {}, r"X has 3 rows, y has 2"),
    (np.ones((0, 1)), [], {}, r"empty"),
    (np.ones((3, 0)), [1.0, 2.0, 3.0], {"fit_intercept": False}, r"no features and fit_intercept=False"),
    (np.ones((3, 1)), [1.0, 2.0, 3.0], {"learning_rate": -0.1}, r"learning_rate must be > 0, got -0.1"),
    (np.ones((3, 1)), [1.0, 2.0, 3.0], {"learning_rate": 0}, r"learning_rate must be > 0"),
    (np.ones((3, 1)), [1.0, 2.0, 3.0], {"batch_size": 4}, r"batch_size=4 is larger than the number of samples"),
    (np.ones((3, 1)), [1.0, 2.0, 3.0], {"optimizer": "adamw"}, r"unknown optimizer 'adamw'.*'gd'.*'adam'"),
    (np.ones((3, 1)), [1.0, 2.0, 3.0], {"loss": "hinges"}, r"unknown loss 'hinges'.*'huber'"),
    (np.ones((3, 1)), [1.0, 2.0, 3.0], {"learning_rate": "warmup"}, r"unknown learning-rate schedule 'warmup'"),
    (np.ones((3, 1)), [1.0, 2.0, 3.0], {"source": "disk"}, r"unknown source 'disk'"),
    (np.ones((3, 1)), [1.0, 2.0, 3.0], {"max_iter": 0}, r"max_iter must be > 0"),
    (np.ones((3, 1)), [1.0, 2.0, 3.0], {"optimizer": "gd", "beta": 0.9}, r"unknown parameter\(s\) beta"),
    (np.ones(3), [1.0, 2.0, 3.0], {}, r"reshape\(-1, 1\)"),
    (np.array([["a"], ["b"]]), [1.0, 2.0], {}, r"must be numeric"),
])
def test_bad_input_gets_one_clear_error(X, y, kw, match):
    with pytest.raises(ValueError, match=match):
        gdlab.descend(X, y, **kw)


def test_closed_form_warns_on_rank_deficiency_and_returns_a_minimiser():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(50)
    X = np.c_[a, 2 * a]
    y = 3 * a + 1
    with pytest.warns(gdlab.RankDeficiencyWarning, match="rank 2 of 3"):
        r = gdlab.closed_form(X, y)
    assert r.loss < 1e-20
    np.testing.assert_allclose(r.predict(X), y, atol=1e-10)


def test_a_source_object_keeps_its_own_loss_and_refuses_another():
    ds = problem(200, 2)
    Y = ds.y[:, None]
    huber = gdlab.objectives.get_loss("huber", 0.5)
    src = gdlab.sources.MemorySource(ds.X, Y, None, huber)
    r = gdlab.descend(src, None, learning_rate=0.1, max_iter=20, tol=None)
    ref = gdlab.descend(ds.X, ds.y, loss="huber", epsilon=0.5, learning_rate=0.1, max_iter=20, tol=None)
    np.testing.assert_allclose(r.trajectory.params, ref.trajectory.params, rtol=1e-12)
    with pytest.raises(ValueError, match="differs from the loss the 'memory' source computes"):
        gdlab.descend(src, None, loss="epsilon_insensitive")
    with pytest.raises(ValueError, match="sample_weight cannot be given"):
        gdlab.descend(src, None, sample_weight=np.ones(200))


def test_weighted_minibatch_gradients_average_to_the_full_gradient():
    ds = problem(120, 3)
    sw = np.random.default_rng(2).uniform(0.1, 3.0, 120)
    src = gdlab.sources.MemorySource(ds.X, ds.y[:, None], sw, gdlab.objectives.get_loss("squared_error"))
    W, b = np.ones((3, 1)), np.zeros(1)
    _, gW, gb = src.value_and_grad(W, b)
    for size in (1, 4, 30):
        parts = [src.take(slice(i, i + size)).value_and_grad(W, b) for i in range(0, 120, size)]
        np.testing.assert_allclose(np.mean([p[1] for p in parts], axis=0), gW, rtol=1e-12)
        np.testing.assert_allclose(np.mean([p[2] for p in parts], axis=0), gb, rtol=1e-12)
