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

A shuffled epoch visits the rows in random order, so each row's read would wait on main memory: the loops ask the
CPU to prefetch the row PREFETCH_DISTANCE positions ahead (LLVM's prefetch intrinsic), which brings a shuffled
epoch close to the speed of an in-order one. ``shuffle_rows`` draws each epoch's order (Fisher-Yates) and
``value_and_grad`` computes the exact loss and gradient after it, in one pass.

The functions are compiled by numba with ``cache=True`` (a few seconds the first time, then loaded from the
cache; see benchmarks/RESULTS.md). Without numba, :data:`HAVE_NUMBA` is False and GDRegressor sends every fit
to ``gdlab.descend``'s NumPy mini-batch path; ``sgd_epoch`` then still runs, as plain (slow) Python, which keeps it testable.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["HAVE_NUMBA", "LOSS_CODES", "SCHEDULE_CODES", "OPTIMIZER_CODES", "PREFETCH_DISTANCE", "sgd_epoch",
           "shuffle_rows", "value_and_grad", "warm_up"]

try:  # numba is a dependency of gdlab, but the library must still import (and fit) without it
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    HAVE_NUMBA = False

    def njit(*args, **kwargs):  # type: ignore[no-redef]
        if len(args) == 1 and callable(args[0]) and not kwargs:
            return args[0]
        return lambda f: f


if HAVE_NUMBA:
    from llvmlite import binding as _llvm
    from llvmlite import ir as _ir
    from numba import types as _types
    from numba.core import cgutils as _cgutils
    from numba.extending import intrinsic as _intrinsic

    # opaque pointers (LLVM >= 15) name the intrinsic by address space only
    _PREFETCH = "llvm.prefetch.p0" if _llvm.llvm_version_info[0] >= 15 else "llvm.prefetch.p0i8"

    @_intrinsic
    def _prefetch(typingctx, array, flat_index):
        """Ask the CPU to start loading array.flat[flat_index] into cache (a hint: it never faults)."""
        sig = _types.void(array, _types.intp)

        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, args[0])
            i8p = _ir.IntType(8).as_pointer()
            address = builder.bitcast(builder.gep(ary.data, [args[1]]), i8p)
            i32 = _ir.IntType(32)
            fn = _cgutils.get_or_insert_function(builder.module, _ir.FunctionType(_ir.VoidType(), [i8p, i32, i32, i32]),
                                                 _PREFETCH)
            # read, high temporal locality, data cache
            builder.call(fn, [address, _ir.Constant(i32, 0), _ir.Constant(i32, 3), _ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return sig, codegen
else:  # pragma: no cover
    def _prefetch(array, flat_index):
        return None

#: rows ahead whose data are prefetched: a shuffled epoch reads rows in random order, and each read would
#: otherwise wait for main memory (measured on 10^6 x 10 rows: about 5x slower per epoch than in row order
#: without prefetching, about 1.2x with it; 16 to 32 rows ahead work best here)
PREFETCH_DISTANCE = 16

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
                              optimal_t0, eta_scale, optimizer_code, beta, average_start, mean_weight,
                              center, inv_scale, l1_of, l2_of):
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
    scaled = center.shape[0] > 0
    per_coef = l1_of.shape[0] > 0
    buf = np.empty(d)
    for pos in range(m):
        if pos + PREFETCH_DISTANCE < m:
            ahead = order[pos + PREFETCH_DISTANCE]
            _prefetch(X, ahead * d)
            _prefetch(X, ahead * d + d - 1)
            _prefetch(y, ahead)
            if has_weight:
                _prefetch(sample_weight, ahead)
        i = order[pos]
        s = sample_weight[i] if has_weight else 1.0
        if scaled:  # the standardized row (x - c) / s, once per row
            for j in range(d):
                buf[j] = (X[i, j] - center[j]) * inv_scale[j]
            xi = buf
        else:
            xi = X[i]
        pred = w[0] if fit_intercept else 0.0
        for j in range(d):
            pred += xi[j] * w[off + j]
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
            if per_coef:
                for j in range(d):
                    w[off + j] = w[off + j] - eta * ((dl * xi[j]) * inv_mean_weight + l2_of[j] * w[off + j])
            elif l2 != 0.0:
                for j in range(d):
                    w[off + j] = w[off + j] - eta * ((dl * xi[j]) * inv_mean_weight + l2 * w[off + j])
            elif dl != 0.0:
                for j in range(d):
                    w[off + j] = w[off + j] - eta * ((dl * xi[j]) * inv_mean_weight)
        else:
            for j in range(d):
                gr = (dl * xi[j]) * inv_mean_weight
                if per_coef:
                    gr += l2_of[j] * w[off + j]
                elif l2 != 0.0:
                    gr += l2 * w[off + j]
                v = gr + beta * velocity[off + j]
                velocity[off + j] = v
                u = v if optimizer_code == 1 else gr + beta * v
                w[off + j] = w[off + j] - eta * u
        thr = eta * l1
        if thr != 0.0 or per_coef:
            for j in range(d):
                tj = eta * l1_of[j] if per_coef else thr
                wr = w[off + j]
                if wr > tj:
                    w[off + j] = wr - tj
                elif wr < -tj:
                    w[off + j] = wr + tj
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
              optimizer_code, beta, average_start, mean_weight, center, inv_scale, l1_of, l2_of):
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
    center, inv_scale : (d,) — standardized descent: each row is read as (x - center) * inv_scale (both (0,) for
    the raw rows). l1_of, l2_of : (d,) — per-coefficient penalty weights in those coordinates, replacing l1 and l2
    (both (0,) for the scalars).

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
                                         optimizer_code, beta, average_start, mean_weight, center, inv_scale,
                                         l1_of, l2_of)
    p = theta.shape[0]
    off = 1 if fit_intercept else 0
    has_weight = sample_weight.shape[0] > 0
    g = np.zeros((p, k))
    t = counters[0]
    n_avg = counters[1]
    eta = eta0
    scaled = center.shape[0] > 0
    per_coef = l1_of.shape[0] > 0
    buf = np.empty(d)
    start = 0
    while start < m:
        stop = min(start + batch_size, m)
        g[:, :] = 0.0
        for pos in range(start, stop):
            if pos + PREFETCH_DISTANCE < m:
                ahead = order[pos + PREFETCH_DISTANCE]
                _prefetch(X, ahead * d)
                _prefetch(X, ahead * d + d - 1)
                _prefetch(Y, ahead * k)
            i = order[pos]
            s = sample_weight[i] if has_weight else 1.0
            if s == 0.0:
                continue
            if scaled:
                for j in range(d):
                    buf[j] = (X[i, j] - center[j]) * inv_scale[j]
                xi = buf
            else:
                xi = X[i]
            for o in range(k):
                pred = theta[0, o] if fit_intercept else 0.0
                for j in range(d):
                    pred += xi[j] * theta[off + j, o]
                dl = s * _dloss(pred - Y[i, o], loss_code, epsilon)
                if dl != 0.0:
                    if fit_intercept:
                        g[0, o] += dl
                    for j in range(d):
                        g[off + j, o] += dl * xi[j]
        scale = 1.0 / ((stop - start) * mean_weight)
        eta = _learning_rate(t, schedule_code, eta0, power_t, optimal_alpha, optimal_t0) * eta_scale
        thr = eta * l1
        for r in range(p):
            l2r = (l2_of[r - off] if per_coef else l2) if r >= off else 0.0
            thr_r = (eta * l1_of[r - off] if per_coef else thr) if r >= off else 0.0
            for o in range(k):
                gr = g[r, o] * scale
                if l2r != 0.0:
                    gr += l2r * theta[r, o]
                if optimizer_code == 0:
                    u = gr
                else:
                    v = gr + beta * velocity[r, o]
                    velocity[r, o] = v
                    u = v if optimizer_code == 1 else gr + beta * v
                w = theta[r, o] - eta * u
                if thr_r != 0.0:
                    if w > thr_r:
                        w -= thr_r
                    elif w < -thr_r:
                        w += thr_r
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


_NONE = np.zeros(0)  # "not given" for the kernel's optional arrays (center, inv_scale, l1_of, l2_of)


def warm_up() -> float:
    """Compile (or load from the cache) the kernel on a tiny problem; returns the seconds it took."""
    import time

    t0 = time.perf_counter()
    X = np.zeros((2, 1))
    Y = np.zeros((2, 1))
    theta = np.zeros((2, 1))
    sgd_epoch(X, Y, np.zeros(0), np.arange(2, dtype=np.int64), 1, theta, np.zeros_like(theta),
              np.zeros_like(theta), np.zeros(2, dtype=np.int64), True, 0, 0.1, 0.0, 0.0, 0, 0.01, 0.25, 1.0, 1.0,
              1.0, 0, 0.0, -1, 1.0, _NONE, _NONE, _NONE, _NONE)
    sgd_epoch(X, Y, np.zeros(0), np.arange(2, dtype=np.int64), 2, theta, np.zeros_like(theta),
              np.zeros_like(theta), np.zeros(2, dtype=np.int64), True, 0, 0.1, 0.0, 0.0, 0, 0.01, 0.25, 1.0, 1.0,
              1.0, 0, 0.0, -1, 1.0, _NONE, _NONE, _NONE, _NONE)
    value_and_grad(X, Y, np.zeros(0), theta, True, 0, 0.1, np.zeros_like(theta))
    shuffle_rows(np.arange(2, dtype=np.int64), np.zeros(2))
    return time.perf_counter() - t0


@njit(cache=True)
def shuffle_rows(order, uniforms):
    """Fisher-Yates: permute ``order`` in place, drawing position j <= i with the uniform number uniforms[i].

    With uniforms from ``numpy.random.Generator.random`` (seeded) every permutation is equally likely (up to the
    2^-53 granularity of the draws); about three times faster than ``Generator.permutation`` for 10^6 rows."""
    for i in range(order.shape[0] - 1, 0, -1):
        j = int(uniforms[i] * (i + 1))
        if j > i:
            j = i
        tmp = order[i]
        order[i] = order[j]
        order[j] = tmp


@njit(cache=True)
def _value_and_grad_single_output(X, y, sample_weight, w, fit_intercept, loss_code, epsilon, grad):
    # value_and_grad for one output with 1-D contiguous parameters: the same sums, in a loop the compiler vectorises
    m, d = X.shape
    off = 1 if fit_intercept else 0
    has_weight = sample_weight.shape[0] > 0
    grad[:] = 0.0
    total = 0.0
    n = 0.0
    for i in range(m):
        s = sample_weight[i] if has_weight else 1.0
        n += s
        pred = w[0] if fit_intercept else 0.0
        for j in range(d):
            pred += X[i, j] * w[off + j]
        r = pred - y[i]
        if loss_code == 0:
            value = r * r
            dl = 2.0 * r
        else:
            if loss_code == 1:
                a = abs(r)
                value = 0.5 * r * r if a <= epsilon else epsilon * (a - 0.5 * epsilon)
            else:
                z = max(abs(r) - epsilon, 0.0)
                value = z if loss_code == 2 else z * z
            dl = _dloss(r, loss_code, epsilon)
        total += s * value
        dl *= s
        if fit_intercept:
            grad[0] += dl
        for j in range(d):
            grad[off + j] += dl * X[i, j]
    for r in range(grad.shape[0]):
        grad[r] /= n
    return total / n


@njit(cache=True)
def value_and_grad(X, Y, sample_weight, theta, fit_intercept, loss_code, epsilon, grad):
    """The data loss (1/n) sum_i s_i loss(r_i) at theta (p, k) and its gradient, written into ``grad`` (p, k):
    one pass over the rows, no m-sized temporaries (the memory source's formulas, fused)."""
    m, d = X.shape
    k = Y.shape[1]
    if k == 1:
        w = np.ascontiguousarray(theta[:, 0])
        g1 = np.zeros(theta.shape[0])
        total = _value_and_grad_single_output(X, Y[:, 0], sample_weight, w, fit_intercept, loss_code, epsilon, g1)
        grad[:, 0] = g1
        return total
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

