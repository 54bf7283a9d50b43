"""The two epoch engines (gdlab.engines) against a plain NumPy transcription of mini-batch descent written here.

The transcription is independent of gdlab: its own loss derivatives, its own optimizer updates (the papers'
equations, as in gdlab.optimizers' docstring), its own standardization and penalty. Every optimizer x loss family
x penalty x batch size x sample weights runs through ``descend`` on both engines and must give the same iterates
after each epoch, to 1e-11.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

import gdlab
from gdlab import _sgd_kernel
from gdlab.schedules import invscaling

needs_numba = pytest.mark.skipif(not _sgd_kernel.HAVE_NUMBA, reason="the compiled epochs need numba")

# ---- the transcription --------------------------------------------------------------------------------------------
DERIVATIVES = {  # d loss / d eta
    "squared_error": lambda e, y: 2.0 * (e - y),
    "huber": lambda e, y: np.clip(e - y, -0.1, 0.1),  # epsilon = 0.1
    "epsilon_insensitive": lambda e, y: np.sign(e - y) * (np.abs(e - y) > 0.1),
    "log_loss": lambda e, y: -y * expit(-y * e),
    "hinge": lambda e, y: np.where(y * e < 1.0, -y, 0.0),
    "modified_huber": lambda e, y: np.where(y * e >= 1, 0.0, np.where(y * e >= -1, -2 * y * (1 - y * e), -4 * y)),
    "poisson": lambda e, y: np.exp(e) - y,
}
HYPER = {"gd": {}, "momentum": {"beta": 0.8}, "nesterov": {"beta": 0.7}, "adagrad": {"eps": 1e-6},
         "rmsprop": {"decay": 0.8, "eps": 1e-6}, "adam": {"beta1": 0.8, "beta2": 0.9, "eps": 1e-6}}
ETA0 = {"gd": 0.05, "momentum": 0.02, "nesterov": 0.02, "adagrad": 0.05, "rmsprop": 0.01, "adam": 0.01}
POWER_T = 0.3


def eta0(optimizer, loss):
    # the Poisson loss's curvature exp(eta) is unbounded: a smaller step keeps three epochs from diverging
    return ETA0[optimizer] * (0.1 if loss == "poisson" else 1.0)


def direction(name, g, state, count, h):
    """The optimizer's direction u for gradient g (state: a dict of arrays, updated)."""
    if name == "gd":
        return g
    if name in ("momentum", "nesterov"):
        state["v"] = g + h["beta"] * state.get("v", 0.0)
        return state["v"] if name == "momentum" else g + h["beta"] * state["v"]
    if name == "adagrad":
        state["s"] = state.get("s", 0.0) + g**2
        return g / (np.sqrt(state["s"]) + h["eps"])
    if name == "rmsprop":
        state["s"] = h["decay"] * state.get("s", 0.0) + (1 - h["decay"]) * g**2
        return g / (np.sqrt(state["s"]) + h["eps"])
    b1, b2 = h["beta1"], h["beta2"]
    state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * g
    state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * g**2
    return (state["m"] / (1 - b1**count)) / (np.sqrt(state["v"] / (1 - b2**count)) + h["eps"])


def transcription(X, Y, sw, start, orders, batch_size, loss, optimizer, l1, l2, standardize, average=None):
    """Mini-batch descent from ``start`` (user coordinates [b; w], (p, k)); the user's [b; w] after each epoch.

    With ``standardize`` the descent runs on z = (x - mean) / sd (weighted, population sd) with parameters
    w' = sd w, b' = b + mean . w, and the penalty stays on the user's w."""
    m, d = X.shape
    sw_ = np.ones(m) if sw is None else sw
    c = np.average(X, axis=0, weights=sw_) if standardize else np.zeros(d)
    s = np.sqrt(np.average((X - c) ** 2, axis=0, weights=sw_)) if standardize else np.ones(d)
    Zb = np.c_[np.ones(m), (X - c) / s]
    theta = start.copy()
    theta[1:] = start[1:] * s[:, None]
    theta[0] = start[0] + c @ start[1:]
    dl, h, state = DERIVATIVES[loss], HYPER[optimizer], {}
    t, history, mean_weight = 0, [], sw_.mean()
    avg, n_avg = np.zeros_like(theta), 0
    for order in orders:
        for lo in range(0, m, batch_size):
            rows = order[lo:lo + batch_size]
            G = dl(Zb[rows] @ theta, Y[rows]) * sw_[rows][:, None]
            g = Zb[rows].T @ G / (len(rows) * mean_weight)
            g[1:] += l2 / s[:, None] ** 2 * theta[1:]
            eta = eta0(optimizer, loss) / (t + 1.0) ** POWER_T
            t += 1
            theta = theta - eta * direction(optimizer, g, state, t, h)
            thr = eta * l1 / s[:, None]
            theta[1:] = np.sign(theta[1:]) * np.maximum(np.abs(theta[1:]) - thr, 0.0)
            if average is not None and t > average - 1:
                n_avg += 1
                avg += (theta - avg) / n_avg
        user = theta.copy()
        user[1:] = theta[1:] / s[:, None]
        user[0] = theta[0] - c @ user[1:]
        history.append(user)
    if average is not None:
        user = avg.copy()
        user[1:] = avg[1:] / s[:, None]
        user[0] = avg[0] - c @ user[1:]
        history.append(user)
    return history


def fisher_yates_orders(m, seed, n_epochs):
    """The compiled engine's shuffles: each epoch's order permutes the previous one in place (Fisher-Yates, one
    uniform draw per position from numpy's Generator.random(m))."""
    rng = np.random.default_rng(seed)
    order, orders = np.arange(m), []
    for _ in range(n_epochs):
        u = rng.random(m)
        for i in range(m - 1, 0, -1):
            j = min(int(u[i] * (i + 1)), i)
            order[i], order[j] = order[j], order[i]
        orders.append(order.copy())
    return orders


def data(loss, m=61, d=3, k=1, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d)) * [1.0, 3.0, 0.5] + [0.5, -1.0, 2.0]
    eta = X @ rng.standard_normal((d, k)) * 0.3 + 0.2
    if loss in ("squared_error", "huber", "epsilon_insensitive"):
        Y = eta + 0.5 * rng.standard_normal((m, k))
    elif loss == "poisson":
        Y = rng.poisson(np.exp(eta)).astype(float)
    else:  # labels -1/+1 with some noise, so the classes overlap
        Y = np.where(eta + 0.7 * rng.standard_normal((m, k)) > 0, 1.0, -1.0)
    sw = rng.uniform(0.2, 2.0, m)
    return X, (Y[:, 0] if k == 1 else Y), sw


def packed(traj):
    """The trajectory as [b; w] per record: (n, p, k)."""
    coef = traj.coef if traj.coef.ndim == 3 else traj.coef[:, :, None]
    icpt = traj.intercept if traj.intercept.ndim == 2 else traj.intercept[:, None]
    return np.concatenate([icpt[:, None, :], coef], axis=1)


def run_both(X, y, sw, loss, optimizer, penalty, batch_size, standardize, shuffle=False, epochs=3, engines=None,
             **kw):
    out = {}
    for engine in engines or ("numpy", "compiled"):
        r = gdlab.descend(X, y, sample_weight=sw, loss=loss, epsilon=0.1, optimizer=optimizer,
                          learning_rate=invscaling(eta0(optimizer, loss), POWER_T), batch_size=batch_size,
                          penalty=penalty, alpha=0.05, l1_ratio=0.4, standardize=standardize, shuffle=shuffle,
                          random_state=3, max_iter=epochs, tol=None, engine=engine, warn=False,
                          **HYPER[optimizer], **kw)
        assert r.extra["engine"] == engine and r.n_iter == epochs, (r.extra["engine_reason"], r.message)
        out[engine] = r
    return out


def penalty_terms(penalty):
    alpha, ratio = 0.05, 0.4
    return {None: (0.0, 0.0), "l2": (0.0, alpha), "l1": (alpha, 0.0),
            "elasticnet": (alpha * ratio, alpha * (1 - ratio))}[penalty]


def check_against_transcription(runs, X, y, sw, loss, optimizer, penalty, batch_size, standardize, orders=None):
    Y = y[:, None] if y.ndim == 1 else y
    l1, l2 = penalty_terms(penalty)
    for engine, r in runs.items():
        traj = packed(r.trajectory)
        engine_orders = orders[engine] if orders else [np.arange(len(X))] * (len(traj) - 1)
        expected = transcription(X, Y, sw, traj[0], engine_orders, batch_size, loss, optimizer, l1, l2, standardize)
        np.testing.assert_allclose(traj[1:], np.array(expected), rtol=1e-11, atol=1e-12, err_msg=engine)


# ---- every optimizer x loss family x penalty x batch size x weights, both engines ----------------------------------
OPTIMIZERS = ("gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
LOSS_FAMILIES = ("squared_error", "huber", "log_loss", "hinge", "poisson")


@needs_numba
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("penalty", [None, "l2", "l1", "elasticnet"])
@pytest.mark.parametrize("loss", LOSS_FAMILIES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_both_engines_give_the_transcriptions_iterates(optimizer, loss, penalty, batch_size, weighted):
    X, y, sw = data(loss)
    sw = sw if weighted else None
    runs = run_both(X, y, sw, loss, optimizer, penalty, batch_size, standardize=False)
    check_against_transcription(runs, X, y, sw, loss, optimizer, penalty, batch_size, standardize=False)


@needs_numba
@pytest.mark.parametrize("batch_size", [1, 5])
@pytest.mark.parametrize("loss", LOSS_FAMILIES + ("epsilon_insensitive", "modified_huber"))
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_both_engines_standardize_on_the_fly_with_the_penalty_on_the_users_coefficients(optimizer, loss,
                                                                                         batch_size):
    X, y, sw = data(loss, seed=1)
    runs = run_both(X, y, sw, loss, optimizer, "elasticnet", batch_size, standardize=True)
    check_against_transcription(runs, X, y, sw, loss, optimizer, "elasticnet", batch_size, standardize=True)


@needs_numba
@pytest.mark.parametrize("batch_size", [1, 6])
@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_one_vs_rest_columns_are_independent_models_in_both_engines(optimizer, batch_size):
    X, Y, sw = data("log_loss", k=3, seed=2)
    runs = run_both(X, Y, sw, "log_loss", optimizer, "l2", batch_size, standardize=False)
    check_against_transcription(runs, X, Y, sw, "log_loss", optimizer, "l2", batch_size, standardize=False)
    # column o alone is the same model
    alone = run_both(X, Y[:, 1], sw, "log_loss", optimizer, "l2", batch_size, standardize=False)
    for engine in runs:
        np.testing.assert_allclose(packed(runs[engine].trajectory)[:, :, 1],
                                   packed(alone[engine].trajectory)[:, :, 0], rtol=1e-12, atol=1e-14)


@needs_numba
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_each_engine_shuffles_as_documented(optimizer):
    """numpy: Generator.permutation per epoch (the plain loop's shuffles); compiled: Fisher-Yates in place."""
    X, y, sw = data("squared_error", m=53)
    runs = run_both(X, y, None, "squared_error", optimizer, "l2", 4, standardize=False, shuffle=True, epochs=3)
    rng = np.random.default_rng(3)
    orders = {"numpy": [rng.permutation(len(X)) for _ in range(3)], "compiled": fisher_yates_orders(len(X), 3, 3)}
    check_against_transcription(runs, X, y, None, "squared_error", optimizer, "l2", 4, standardize=False,
                                orders=orders)


@needs_numba
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_the_averaged_iterate_and_the_state_carry_over_in_both_engines(optimizer):
    X, y, sw = data("huber", seed=4)
    runs = run_both(X, y, sw, "huber", optimizer, "l2", 7, standardize=True, epochs=4, average=10)
    l1, l2 = penalty_terms("l2")
    for engine, r in runs.items():
        start = packed(r.trajectory)[0]
        expected = transcription(X, y[:, None], sw, start, [np.arange(len(X))] * 4, 7, "huber", optimizer, l1, l2,
                                 True, average=10)
        got = np.r_[r.intercept, r.coef][:, None]
        np.testing.assert_allclose(got, expected[-1], rtol=1e-11, atol=1e-12, err_msg=engine)
        # 2 + 2 epochs from the state (the optimizer's moments and the step counter go on) are the 4 epochs
        first = run_both(X, y, sw, "huber", optimizer, "l2", 7, standardize=True, epochs=2, average=10,
                         engines=[engine])[engine]
        th = first.extra["theta"]
        second = run_both(X, y, sw, "huber", optimizer, "l2", 7, standardize=True, epochs=2, average=10,
                          engines=[engine], state=first.extra["state"], coef_init=th[1:, 0],
                          intercept_init=th[0, 0])[engine]
        np.testing.assert_allclose(np.r_[second.intercept, second.coef], np.r_[r.intercept, r.coef], rtol=1e-11,
                                   atol=1e-12, err_msg=engine)


@needs_numba
@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("penalty", [None, "elasticnet"])
@pytest.mark.parametrize("optimizer", ["gd", "momentum", "adam"])
def test_wide_rows_take_the_simd_loops_with_the_transcriptions_iterates(optimizer, penalty, batch_size, k):
    """d = 37: the compiled loops over the coefficients run in SIMD registers with reassociated sums (4 or 8 lanes,
    then a remainder); the 3 columns of the other tests run the remainder only."""
    rng = np.random.default_rng(7)
    m, d = 50, 37
    X = rng.standard_normal((m, d)) * rng.uniform(0.2, 1.0, d) + rng.uniform(-0.5, 0.5, d)
    Y = X @ rng.standard_normal((d, k)) * 0.3 + 0.5 * rng.standard_normal((m, k))
    y = Y[:, 0] if k == 1 else Y
    for standardize in (False, True):
        runs = run_both(X, y, None, "squared_error", optimizer, penalty, batch_size, standardize=standardize)
        check_against_transcription(runs, X, y, None, "squared_error", optimizer, penalty, batch_size,
                                    standardize=standardize)


# ---- which engine runs, and why ---------------------------------------------------------------------------------------
@needs_numba
@pytest.mark.parametrize("loss", sorted(set(gdlab.losses.LOSSES) - {"multinomial"}))
def test_every_loss_with_a_scalar_derivative_runs_compiled(loss):
    X, y, _ = data(loss if loss in DERIVATIVES else ("log_loss" if loss in gdlab.losses.CLASSIFICATION_LOSSES
                                                      else "squared_error"))
    r = gdlab.descend(X, y, loss=loss, batch_size=4, max_iter=1, tol=None, learning_rate=0.001, warn=False)
    assert r.extra["engine"] == "compiled", r.extra["engine_reason"]


def test_the_coupled_softmax_stays_on_numpy_and_says_why():
    X, y, _ = data("log_loss", k=1)
    Y = np.eye(3)[np.digitize(X[:, 0], [-0.5, 1.0])]
    r = gdlab.descend(X, Y, loss="multinomial", batch_size=4, max_iter=1, tol=None, learning_rate=0.01,
                      warn=False)
    assert r.extra["engine"] == "numpy"
    assert "couples the outputs" in r.extra["engine_reason"]
    with pytest.raises(ValueError, match="couples the outputs"):
        gdlab.descend(X, Y, loss="multinomial", batch_size=4, max_iter=1, tol=None, learning_rate=0.01,
                      engine="compiled")


def test_an_optimizer_without_a_coordinate_rule_runs_on_numpy():
    from gdlab.optimizers import Optimizer, chain, scale_by_rms, trace
    from gdlab.schedules import constant

    coupled = Optimizer("rms_then_momentum", chain(scale_by_rms(0.9, 1e-8), trace(0.5)), constant(0.01))
    X, y, _ = data("squared_error")
    r = gdlab.descend(X, y, optimizer=coupled, batch_size=4, max_iter=2, tol=None, warn=False)
    assert r.extra["engine"] == "numpy" and "coordinate-wise rule" in r.extra["engine_reason"]


def test_each_named_transform_is_its_coordinate_rule_on_arrays():
    """The NumPy transforms and the compiled epochs share one definition per optimizer: the transform's update is
    its CoordinateRule applied to whole arrays."""
    rng = np.random.default_rng(0)
    for name in OPTIMIZERS:
        opt = gdlab.optimizers.make_optimizer(name, 0.1, **HYPER[name])
        rule = opt.direction.coordinate
        assert rule is not None and rule.update.__module__ == "gdlab.optimizers"
        state = opt.direction.init(np.zeros((4, 2)))
        mine = {}
        for count in range(1, 4):
            g = rng.standard_normal((4, 2))
            u, state = opt.direction.update(g, state)
            np.testing.assert_allclose(u, direction(name, g, mine, count, HYPER[name]), rtol=1e-14)
