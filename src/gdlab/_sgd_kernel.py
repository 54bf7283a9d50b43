"""The compiled inner loop of stochastic and mini-batch descent: one epoch over the rows in a given order.

It runs exactly the update of :func:`gdlab.descend` for ``optimizer`` in gd / momentum / nesterov, without a
Python call per mini-batch::

    g     = (1 / (|B| s_bar)) sum_{i in B} s_i loss'(x_b,i . theta - y_i) x_b,i  +  l2 * w       (w: theta minus b)
    v     = g + beta v;   u = g (gd), v (momentum), g + beta v (nesterov)
    theta = prox_{eta l1}(theta - eta u),   eta = schedule(t) * eta_scale,   t = t + 1

with s_bar the mean sample weight of the whole data set (so that a weighted mini-batch gradient is an unbiased
estimate of the weighted full gradient; without weights the divisor is |B|). The losses are gdlab's
(``objectives.Loss``): squared error r^2 (derivative 2r), Huber, epsilon-insensitive and squared
epsilon-insensitive. The schedules are scikit-learn's: constant, invscaling eta0 / (t + 1)^power_t and optimal
1 / (alpha (t0 + t)); ``adaptive`` is the constant eta0 times ``eta_scale``, which the caller divides by 5 between
epochs when the loss stalls. Averaged SGD keeps the running mean of theta after update ``avg_start`` onwards.

The function is compiled by numba with ``cache=True`` (about a second the first time, then loaded from the
cache). Without numba, :data:`HAVE_NUMBA` is False and GDRegressor sends every fit to ``gdlab.descend``'s NumPy
mini-batch path; ``sgd_epoch`` then still runs, as plain (slow) Python, which keeps it testable.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["HAVE_NUMBA", "LOSS_CODES", "SCHEDULE_CODES", "OPTIMIZER_CODES", "sgd_epoch"]

try:  # numba is a dependency of gdlab, but the library must still import (and fit) without it
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    HAVE_NUMBA = False

    def njit(*args, **kwargs):  # type: ignore[no-redef]
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return lambda f: f


LOSS_CODES = {"squared_error": 0, "huber": 1, "epsilon_insensitive": 2, "squared_epsilon_insensitive": 3}
SCHEDULE_CODES = {"constant": 0, "invscaling": 1, "optimal": 2, "adaptive": 0}
OPTIMIZER_CODES = {"gd": 0, "momentum": 1, "nesterov": 2}


@njit(cache=True)
def _dloss(r, loss_code, epsilon):
    if loss_code == 0:
        return 2.0 * r
    if loss_code == 1:
        if r > epsilon:
            return epsilon
        if r < -epsilon:
            return -epsilon
        return r
    z = abs(r) - epsilon
    if z <= 0.0:
        return 0.0
    s = 1.0 if r > 0 else -1.0
    if loss_code == 2:
        return s
    return 2.0 * s * z


@njit(cache=True)
def _learning_rate(t, schedule_code, eta0, power_t, optimal_alpha, optimal_t0):
    if schedule_code == 0:
        return eta0
    if schedule_code == 1:
        # the common exponents by square roots: a general power costs as much as the rest of an update
        if power_t == 0.5:
            return eta0 / math.sqrt(t + 1.0)
        if power_t == 0.25:
            return eta0 / math.sqrt(math.sqrt(t + 1.0))
        return eta0 / (t + 1.0) ** power_t
    return 1.0 / (optimal_alpha * (optimal_t0 + t))


@njit(cache=True)
def _stochastic_single_output(X, y, sample_weight, order, w, velocity, average, counters, fit_intercept,
                              loss_code, epsilon, l1, l2, schedule_code, eta0, power_t, optimal_alpha,
                              optimal_t0, eta_scale, optimizer_code, beta, average_start, mean_weight):
    # sgd_epoch specialised to batch_size=1 and one output (1-D parameters): the same arithmetic, in the same
    # order, about three times faster than the general loop.
    m, d = X.shape
    off = 1 if fit_intercept else 0
    p = w.shape[0]
    has_weight = sample_weight.shape[0] > 0
    t = counters[0]
    n_avg = counters[1]
    eta = eta0
    inv_mean_weight = 1.0 / mean_weight
    for pos in range(m):
        i = order[pos]
        s = sample_weight[i] if has_weight else 1.0
        pred = w[0] if fit_intercept else 0.0
        for j in range(d):
            pred += X[i, j] * w[off + j]
        dl = s * _dloss(pred - y[i], loss_code, epsilon) if s != 0.0 else 0.0
        eta = _learning_rate(t, schedule_code, eta0, power_t, optimal_alpha, optimal_t0) * eta_scale
        # the cases are separate loops so that the common ones (plain SGD, L2 or not) compile to tight code
        if fit_intercept:
            gr = dl * inv_mean_weight
            if optimizer_code == 0:
                u = gr
            else:
                v = gr + beta * velocity[0]
                velocity[0] = v
                u = v if optimizer_code == 1 else gr + beta * v
            w[0] = w[0] - eta * u
        if optimizer_code == 0:
            if l2 != 0.0:
                for j in range(d):
                    w[off + j] = w[off + j] - eta * ((dl * X[i, j]) * inv_mean_weight + l2 * w[off + j])
            elif dl != 0.0:
                for j in range(d):
                    w[off + j] = w[off + j] - eta * ((dl * X[i, j]) * inv_mean_weight)
        else:
            for j in range(d):
                gr = (dl * X[i, j]) * inv_mean_weight
                if l2 != 0.0:
                    gr += l2 * w[off + j]
                v = gr + beta * velocity[off + j]
                velocity[off + j] = v
                u = v if optimizer_code == 1 else gr + beta * v
                w[off + j] = w[off + j] - eta * u
        thr = eta * l1
        if thr != 0.0:
            for j in range(d):
                wr = w[off + j]
                if wr > thr:
                    w[off + j] = wr - thr
                elif wr < -thr:
                    w[off + j] = wr + thr
                else:
                    w[off + j] = 0.0
        t += 1
        if average_start >= 0 and t > average_start:
            n_avg += 1
            inv = 1.0 / n_avg
            for r in range(p):
                average[r] += (w[r] - average[r]) * inv
    counters[0] = t
    counters[1] = n_avg
    return eta


@njit(cache=True)
def sgd_epoch(X, Y, sample_weight, order, batch_size, theta, velocity, average, counters, fit_intercept,
              loss_code, epsilon, l1, l2, schedule_code, eta0, power_t, optimal_alpha, optimal_t0, eta_scale,
              optimizer_code, beta, average_start, mean_weight):
    """One epoch of (mini-batch) stochastic descent, in place.

    Parameters
    ----------
    X : (m, d) float64, C-contiguous.  Y : (m, k) float64.  sample_weight : (m,) float64, or (0,) for none.
    order : (m,) int64 — the row order of this epoch (a permutation, or arange when not shuffling).
    batch_size : int — rows per update (the last batch may be smaller).
    theta : (p, k) — packed parameters, row 0 the intercept when ``fit_intercept``; updated in place.
    velocity : (p, k) — momentum buffer v (unused by gd); updated in place.
    average : (p, k) — running mean of theta (averaged SGD); updated in place from update ``average_start`` on
        (``average_start < 0`` turns averaging off).
    counters : (2,) int64 — [t, n_averaged]: updates made so far, iterates averaged so far; updated in place.
    The remaining scalars select the loss, penalty (l1, l2 as in ``objectives.Penalty``), schedule, optimizer
    (0 gd, 1 momentum, 2 nesterov, with ``beta``) and ``mean_weight`` s_bar (1.0 without weights).

    Returns
    -------
    float — the learning rate of the last update.
    """
    m, d = X.shape
    k = Y.shape[1]
    if batch_size == 1 and k == 1:
        return _stochastic_single_output(X, Y[:, 0], sample_weight, order, theta[:, 0], velocity[:, 0],
                                         average[:, 0], counters, fit_intercept, loss_code, epsilon, l1, l2,
                                         schedule_code, eta0, power_t, optimal_alpha, optimal_t0, eta_scale,
                                         optimizer_code, beta, average_start, mean_weight)
    p = theta.shape[0]
    off = 1 if fit_intercept else 0
    has_weight = sample_weight.shape[0] > 0
    g = np.zeros((p, k))
    t = counters[0]
    n_avg = counters[1]
    eta = eta0
    start = 0
    while start < m:
        stop = min(start + batch_size, m)
        g[:, :] = 0.0
        for pos in range(start, stop):
            i = order[pos]
            s = sample_weight[i] if has_weight else 1.0
            if s == 0.0:
                continue
            for o in range(k):
                pred = theta[0, o] if fit_intercept else 0.0
                for j in range(d):
                    pred += X[i, j] * theta[off + j, o]
                dl = s * _dloss(pred - Y[i, o], loss_code, epsilon)
                if dl != 0.0:
                    if fit_intercept:
                        g[0, o] += dl
                    for j in range(d):
                        g[off + j, o] += dl * X[i, j]
        scale = 1.0 / ((stop - start) * mean_weight)
        eta = _learning_rate(t, schedule_code, eta0, power_t, optimal_alpha, optimal_t0) * eta_scale
        thr = eta * l1
        for r in range(p):
            for o in range(k):
                gr = g[r, o] * scale
                if r >= off and l2 != 0.0:
                    gr += l2 * theta[r, o]
                if optimizer_code == 0:
                    u = gr
                else:
                    v = gr + beta * velocity[r, o]
                    velocity[r, o] = v
                    u = v if optimizer_code == 1 else gr + beta * v
                w = theta[r, o] - eta * u
                if r >= off and thr != 0.0:
                    if w > thr:
                        w -= thr
                    elif w < -thr:
                        w += thr
                    else:
                        w = 0.0
                theta[r, o] = w
        t += 1
        if average_start >= 0 and t > average_start:
            n_avg += 1
            inv = 1.0 / n_avg
            for r in range(p):
                for o in range(k):
                    average[r, o] += (theta[r, o] - average[r, o]) * inv
        start = stop
    counters[0] = t
    counters[1] = n_avg
    return eta


def warm_up() -> float:
    """Compile (or load from the cache) the kernel on a tiny problem; returns the seconds it took."""
    import time

    t0 = time.perf_counter()
    X = np.zeros((2, 1))
    Y = np.zeros((2, 1))
    theta = np.zeros((2, 1))
    sgd_epoch(X, Y, np.zeros(0), np.arange(2, dtype=np.int64), 1, theta, np.zeros_like(theta),
              np.zeros_like(theta), np.zeros(2, dtype=np.int64), True, 0, 0.1, 0.0, 0.0, 0, 0.01, 0.25, 1.0, 1.0,
              1.0, 0, 0.0, -1, 1.0)
    return time.perf_counter() - t0


@njit(cache=True)
def value_and_grad(X, Y, sample_weight, theta, fit_intercept, loss_code, epsilon, grad):
    """The data loss (1/n) sum_i s_i loss(r_i) at theta (p, k) and its gradient, written into ``grad`` (p, k):
    one pass over the rows, no m-sized temporaries (the memory source's formulas, fused)."""
    m, d = X.shape
    k = Y.shape[1]
    off = 1 if fit_intercept else 0
    has_weight = sample_weight.shape[0] > 0
    grad[:, :] = 0.0
    total = 0.0
    n = 0.0
    for i in range(m):
        s = sample_weight[i] if has_weight else 1.0
        n += s
        if s == 0.0:
            continue
        for o in range(k):
            pred = theta[0, o] if fit_intercept else 0.0
            for j in range(d):
                pred += X[i, j] * theta[off + j, o]
            r = pred - Y[i, o]
            if loss_code == 0:
                value = r * r
            elif loss_code == 1:
                a = abs(r)
                value = 0.5 * r * r if a <= epsilon else epsilon * (a - 0.5 * epsilon)
            else:
                z = max(abs(r) - epsilon, 0.0)
                value = z if loss_code == 2 else z * z
            total += s * value
            dl = s * _dloss(r, loss_code, epsilon)
            if dl != 0.0:
                if fit_intercept:
                    grad[0, o] += dl
                for j in range(d):
                    grad[off + j, o] += dl * X[i, j]
    for r in range(grad.shape[0]):
        for o in range(k):
            grad[r, o] /= n
    return total / n
