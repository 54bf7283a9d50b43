"""The compiled inner loop of stochastic and mini-batch descent: one epoch over the rows in a given order.

It runs exactly the update of :func:`gdlab.descend`'s NumPy epochs, without a Python call per mini-batch::

    eta_i = x_i . w + b
    g     = (1 / (|B| s_bar)) sum_{i in B} s_i loss'(eta_i, y_i) x_b,i  +  l2 * w           (w: theta minus b)
    u, state = rule(g, state)                                   (the optimizer's CoordinateRule, per coordinate)
    theta = prox_{lr l1}(theta - lr u),   lr = schedule(t) * eta_scale,   t = t + 1

with s_bar the mean sample weight of the whole data set (so that a weighted mini-batch gradient is an unbiased
estimate of the weighted full gradient; without weights the divisor is |B|). The loss and the optimizer are not
coded here: :func:`epoch_functions` builds the loop around a loss's ``scalar_derivative`` (gdlab.losses) and an
optimizer's coordinate rule (gdlab.optimizers.CoordinateRule), the same plain functions the NumPy path uses, which
numba compiles into the loop. Each output column is its own model (one-vs-rest), so every loss with a scalar
derivative runs here; a coupled loss (the softmax) does not. Nor is the schedule: the loop calls a schedule's
``scalar_rate(t, scalar_params)`` (gdlab.schedules), compiled in the same way, times ``eta_scale``, which the
caller divides by 5 between epochs for ``adaptive`` when the loss stalls. Averaged SGD keeps the running mean of
theta after update ``average_start`` onwards.

A shuffled epoch visits the rows in random order, so each row's read would wait on main memory: the loops ask the
CPU to prefetch every cache line of the row PREFETCH_DISTANCE positions ahead (LLVM's prefetch intrinsic), which
brings a shuffled epoch closer to the speed of an in-order one. ``shuffle_rows`` draws each epoch's order
(Fisher-Yates).

The dense epochs work on contiguous copies of the parameters and the optimizer's slots, by output ((k, d) for the
coefficients, the intercepts apart), written back at the end of the epoch, and are compiled with reassociation and
contraction only (:data:`_LOOP_OPTIONS`): the row's dot product, the gradient's accumulation and the
per-coefficient update then run in SIMD registers (at d = 100 about twice as fast as the serial loops; see
benchmarks/RESULTS.md), with results that differ from the serial sums by rounding only.

The epochs are compiled by numba with ``cache=True``, one cache entry per (derivative, rule, rate), named after a
fingerprint of their code (a few seconds the first time, then loaded from the cache; see benchmarks/RESULTS.md).
Without numba, :data:`HAVE_NUMBA` is False and gdlab.descend runs its NumPy epochs; ``sgd_epoch`` then still runs,
as plain (slow) Python, which keeps it testable.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

__all__ = ["HAVE_NUMBA", "PREFETCH_DISTANCE", "epoch_functions", "rule_is_the_gradient",
           "rule_moves_nothing_on_a_zero_gradient", "sgd_epoch", "shuffle_rows", "sparse_epoch_function", "warm_up"]

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

    def _prefetch_intrinsic(locality):
        """An intrinsic that asks the CPU to start loading array.flat[flat_index] into cache (a hint: it never
        faults); locality 3 is the nearest cache (prefetcht0 on x86), 1 the outer ones (prefetcht2)."""

        @_intrinsic
        def prefetch(typingctx, array, flat_index):
            sig = _types.void(array, _types.intp)

            def codegen(context, builder, signature, args):
                ary = context.make_array(signature.args[0])(context, builder, args[0])
                i8p = _ir.IntType(8).as_pointer()
                address = builder.bitcast(builder.gep(ary.data, [args[1]]), i8p)
                i32 = _ir.IntType(32)
                fn = _cgutils.get_or_insert_function(builder.module,
                                                     _ir.FunctionType(_ir.VoidType(), [i8p, i32, i32, i32]), _PREFETCH)
                # read, the locality, data cache
                builder.call(fn, [address, _ir.Constant(i32, 0), _ir.Constant(i32, locality), _ir.Constant(i32, 1)])
                return context.get_dummy_value()

            return sig, codegen

        return prefetch

    _prefetch = _prefetch_intrinsic(3)
    # a dense row's lines, into the outer caches: measured on 10^6 shuffled rows of d = 100 (800 MB), an epoch
    # takes about 140 ns a row with prefetcht2 against 175 with prefetcht0 (the same at d = 10), the in-order
    # epoch ~75 (13 lines a row, 16 rows ahead: more lines in flight than the nearest cache can track)
    _prefetch_far = _prefetch_intrinsic(1)
else:  # pragma: no cover
    def _prefetch(array, flat_index):
        return None

    _prefetch_far = _prefetch

#: rows ahead whose data are prefetched: a shuffled epoch reads rows in random order, and each read would
#: otherwise wait for main memory (measured on 10^6 x 10 rows: about 5x slower per epoch than in row order
#: without prefetching, about 1.2x with it; 16 to 32 rows ahead work best here)
PREFETCH_DISTANCE = 16

@njit(cache=True)
def _soft_threshold(w, threshold):
    """The proximal step of threshold * |w|: w moved towards 0 by threshold, exactly 0 within it."""
    if w > threshold:
        return w - threshold
    if w < -threshold:
        return w + threshold
    return 0.0


#: how the epochs are compiled. Reassociation lets LLVM split the row's dot product x . w (a serial chain of d
#: dependent additions otherwise) over SIMD lanes and accumulators, and contraction fuses a * b + c; both change a
#: result by rounding only (1e-16 relative a row), never by a branch. No other fast-math flag: NaN and inf keep
#: their meaning (the divergence check reads them). NumPy's error model: a division by zero gives inf or NaN, as in
#: the NumPy epochs, instead of a check and an exception per division, which would keep the loops scalar.
_LOOP_OPTIONS = {"fastmath": {"reassoc", "contract"}, "error_model": "numpy"}

_JITABLE: set = set()  # the plain functions already made callable from compiled code
_EPOCHS: dict = {}  # (derivative, rule, n_state, rate) -> (single-output batch-1 epoch, general epoch)


def _jitable(fn):
    """``fn`` itself, made callable from numba-compiled code (numba.extending.register_jitable: the kernel then
    holds the plain function, which pickles by name, so the compiled epoch can be cached on disk)."""
    if HAVE_NUMBA and fn not in _JITABLE:
        from numba.extending import register_jitable

        register_jitable(fn)
        _JITABLE.add(fn)
    return fn


def _digest(*functions) -> str:
    """A short fingerprint of the functions' code: part of each compiled epoch's cache name, so that editing a loss's
    derivative or an optimizer's rule compiles anew instead of loading a stale epoch (numba only watches this file)."""
    h = hashlib.sha1()
    for fn in functions:
        code = fn.__code__
        h.update(f"{fn.__module__}.{fn.__qualname__}".encode())
        h.update(code.co_code)
        h.update(repr((code.co_consts, code.co_names)).encode())
    return h.hexdigest()[:12]


def epoch_functions(derivative, rule, n_state, rate):
    """The compiled epochs for one loss derivative, one optimizer rule and one schedule (built once, cached on disk).

    derivative : ``loss.scalar_derivative``, d loss / d eta as ``derivative(eta, y, param)`` (gdlab.losses).
    rule : ``optimizer.direction.coordinate.update``, ``rule(g, a, b, count, hyper) -> (u, a, b)``
        (gdlab.optimizers.CoordinateRule); ``n_state`` the state slots it uses (unused ones are not written).
    rate : ``schedule.scalar_rate``, the learning rate as ``rate(t, schedule_params)`` (gdlab.schedules); the
        epochs take ``schedule_params`` (a tuple of floats) as an argument.

    Returns ``(single, general)``: ``single(X, y, ...)`` for batch_size=1 and one output (1-D parameters, about
    three times faster), ``general(X, Y, ..., batch_size, ...)`` for any batch and outputs; the arguments are
    those of :func:`sgd_epoch`. Each is a closure over the three functions, which numba compiles into the loop (no
    call through a pointer, no code for losses, optimizers or schedules in this file). An epoch stops before an
    update whose learning rate is not a positive finite number and returns that rate, with counters[0] the step.
    """
    key = (derivative, rule, int(n_state), rate)
    if key in _EPOCHS:
        return _EPOCHS[key]
    dloss = _jitable(derivative)
    update = _jitable(rule)
    rate = _jitable(rate)
    keep_first = n_state >= 1
    keep_second = n_state >= 2

    def single(X, y, sample_weight, order, w, first, second, average, counters, fit_intercept, param, hyper, l1,
               l2, schedule_params, eta_scale, average_start, mean_weight, center, inv_scale, l1_of, l2_of):
        m, d = X.shape
        off = 1 if fit_intercept else 0
        has_weight = sample_weight.shape[0] > 0
        t = counters[0]
        n_avg = counters[1]
        count = counters[2]
        eta = rate(t, schedule_params) * eta_scale
        inv_mean_weight = 1.0 / mean_weight
        scaled = center.shape[0] > 0
        per_coef = l1_of.shape[0] > 0
        plain = not per_coef and l1 == 0.0 and l2 == 0.0  # no penalty: the update loop has no branch
        averaging = average_start >= 0
        # contiguous copies of the coefficients and their state (w and the slots are often strided views), the
        # intercept's apart: the loops over j then run in SIMD registers
        coef = np.empty(d)
        fw = np.empty(d)
        sw = np.empty(d)
        aw = np.empty(d)
        for j in range(d):
            coef[j] = w[off + j]
            fw[j] = first[off + j]
            sw[j] = second[off + j]
            aw[j] = average[off + j]
        b = w[0] if fit_intercept else 0.0
        fb = first[0] if fit_intercept else 0.0
        sb = second[0] if fit_intercept else 0.0
        ab = average[0] if fit_intercept else 0.0
        buf = np.empty(d)
        for pos in range(m):
            if pos + PREFETCH_DISTANCE < m:
                ahead = order[pos + PREFETCH_DISTANCE] * d
                for q in range(0, d, 8):  # every 64-byte line of the row
                    _prefetch_far(X, ahead + q)
                _prefetch_far(X, ahead + d - 1)
                _prefetch(y, order[pos + PREFETCH_DISTANCE])
                if has_weight:
                    _prefetch(sample_weight, order[pos + PREFETCH_DISTANCE])
            eta = rate(t, schedule_params) * eta_scale
            if not (eta > 0.0 and eta < math.inf):  # (NaN fails both) the caller raises, naming the step
                break
            i = order[pos]
            s = sample_weight[i] if has_weight else 1.0
            if scaled:  # the standardized row (x - c) / s, once per row
                for j in range(d):
                    buf[j] = (X[i, j] - center[j]) * inv_scale[j]
                xi = buf
            else:
                xi = X[i]
            pred = 0.0
            for j in range(d):
                pred += xi[j] * coef[j]
            pred += b
            dl = (s * dloss(pred, y[i], param)) * inv_mean_weight if s != 0.0 else 0.0
            count += 1
            fcount = float(count)
            if fit_intercept:
                u, a, c = update(dl, fb, sb, fcount, hyper)
                if keep_first:
                    fb = a
                if keep_second:
                    sb = c
                b = b - eta * u
            if plain:
                for j in range(d):
                    u, a, c = update(dl * xi[j], fw[j], sw[j], fcount, hyper)
                    if keep_first:
                        fw[j] = a
                    if keep_second:
                        sw[j] = c
                    coef[j] = coef[j] - eta * u
            else:
                for j in range(d):
                    wj = coef[j]
                    gr = dl * xi[j]
                    if per_coef:
                        gr += l2_of[j] * wj
                    elif l2 != 0.0:
                        gr += l2 * wj
                    u, a, c = update(gr, fw[j], sw[j], fcount, hyper)
                    if keep_first:
                        fw[j] = a
                    if keep_second:
                        sw[j] = c
                    wj = wj - eta * u
                    tj = eta * l1_of[j] if per_coef else eta * l1
                    coef[j] = _soft_threshold(wj, tj) if tj != 0.0 else wj
            t += 1
            if averaging and t > average_start:
                n_avg += 1
                inv = 1.0 / n_avg
                ab += (b - ab) * inv
                for j in range(d):
                    aw[j] += (coef[j] - aw[j]) * inv
        for j in range(d):
            w[off + j] = coef[j]
            first[off + j] = fw[j]
            second[off + j] = sw[j]
            average[off + j] = aw[j]
        if fit_intercept:
            w[0] = b
            first[0] = fb
            second[0] = sb
            average[0] = ab
        counters[0] = t
        counters[1] = n_avg
        counters[2] = count
        return eta

    def general(X, Y, sample_weight, order, batch_size, theta, first, second, average, counters, fit_intercept,
                param, hyper, l1, l2, schedule_params, eta_scale, average_start, mean_weight, center, inv_scale,
                l1_of, l2_of):
        m, d = X.shape
        k = Y.shape[1]
        off = 1 if fit_intercept else 0
        has_weight = sample_weight.shape[0] > 0
        t = counters[0]
        n_avg = counters[1]
        count = counters[2]
        eta = rate(t, schedule_params) * eta_scale
        scaled = center.shape[0] > 0
        per_coef = l1_of.shape[0] > 0
        plain = not per_coef and l1 == 0.0 and l2 == 0.0
        averaging = average_start >= 0
        # working copies by output, (k, d) for the coefficients and (k,) for the intercepts: one output's
        # coefficients lie side by side, so that the loops over j (the row's dot product, the gradient's
        # accumulation, the update) read consecutive memory and run in SIMD registers
        W = np.empty((k, d))
        FW = np.empty((k, d))
        SW = np.empty((k, d))
        AW = np.empty((k, d))
        B = np.zeros(k)
        FB = np.zeros(k)
        SB = np.zeros(k)
        AB = np.zeros(k)
        for o in range(k):
            for j in range(d):
                W[o, j] = theta[off + j, o]
                FW[o, j] = first[off + j, o]
                SW[o, j] = second[off + j, o]
                AW[o, j] = average[off + j, o]
            if fit_intercept:
                B[o] = theta[0, o]
                FB[o] = first[0, o]
                SB[o] = second[0, o]
                AB[o] = average[0, o]
        GW = np.zeros((k, d))
        GB = np.zeros(k)
        buf = np.empty(d)
        start = 0
        while start < m:
            stop = min(start + batch_size, m)
            eta = rate(t, schedule_params) * eta_scale
            if not (eta > 0.0 and eta < math.inf):  # (NaN fails both) the caller raises, naming the step
                break
            GW[:, :] = 0.0
            GB[:] = 0.0
            for pos in range(start, stop):
                if pos + PREFETCH_DISTANCE < m:
                    ahead = order[pos + PREFETCH_DISTANCE]
                    for q in range(0, d, 8):  # every 64-byte line of the row
                        _prefetch_far(X, ahead * d + q)
                    _prefetch_far(X, ahead * d + d - 1)
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
                    pred = 0.0
                    for j in range(d):
                        pred += xi[j] * W[o, j]
                    pred += B[o]
                    dl = s * dloss(pred, Y[i, o], param)
                    if dl != 0.0:
                        GB[o] += dl
                        for j in range(d):
                            GW[o, j] += dl * xi[j]
            scale = 1.0 / ((stop - start) * mean_weight)
            count += 1
            fcount = float(count)
            thr = eta * l1
            for o in range(k):
                if fit_intercept:
                    u, a, c = update(GB[o] * scale, FB[o], SB[o], fcount, hyper)
                    if keep_first:
                        FB[o] = a
                    if keep_second:
                        SB[o] = c
                    B[o] = B[o] - eta * u
                if plain:
                    for j in range(d):
                        u, a, c = update(GW[o, j] * scale, FW[o, j], SW[o, j], fcount, hyper)
                        if keep_first:
                            FW[o, j] = a
                        if keep_second:
                            SW[o, j] = c
                        W[o, j] = W[o, j] - eta * u
                else:
                    for j in range(d):
                        l2j = l2_of[j] if per_coef else l2
                        thr_j = eta * l1_of[j] if per_coef else thr
                        gr = GW[o, j] * scale
                        if l2j != 0.0:
                            gr += l2j * W[o, j]
                        u, a, c = update(gr, FW[o, j], SW[o, j], fcount, hyper)
                        if keep_first:
                            FW[o, j] = a
                        if keep_second:
                            SW[o, j] = c
                        wj = W[o, j] - eta * u
                        W[o, j] = _soft_threshold(wj, thr_j) if thr_j != 0.0 else wj
            t += 1
            if averaging and t > average_start:
                n_avg += 1
                inv = 1.0 / n_avg
                for o in range(k):
                    AB[o] += (B[o] - AB[o]) * inv
                    for j in range(d):
                        AW[o, j] += (W[o, j] - AW[o, j]) * inv
            start = stop
        for o in range(k):
            for j in range(d):
                theta[off + j, o] = W[o, j]
                first[off + j, o] = FW[o, j]
                second[off + j, o] = SW[o, j]
                average[off + j, o] = AW[o, j]
            if fit_intercept:
                theta[0, o] = B[o]
                first[0, o] = FB[o]
                second[0, o] = SB[o]
                average[0, o] = AB[o]
        counters[0] = t
        counters[1] = n_avg
        counters[2] = count
        return eta

    # one cache entry per (derivative, rule, rate): numba names the cache files after the qualified name
    name = f"{derivative.__name__}_{rule.__name__}_{rate.__name__}_{n_state}_{_digest(derivative, rule, rate)}"
    name = name.strip("_")
    single.__qualname__ = f"single_output_epoch_{name}"
    general.__qualname__ = f"epoch_{name}"
    _EPOCHS[key] = (njit(cache=True, **_LOOP_OPTIONS)(single), njit(cache=True, **_LOOP_OPTIONS)(general))
    return _EPOCHS[key]


@njit(cache=True)
def _prefetch_row(data, indices, lo, hi):
    """Prefetch every cache line of a CSR row's values and column indices (a shuffled epoch's rows lie anywhere)."""
    if hi <= lo:
        return
    for q in range(lo, hi, 8):  # 64-byte lines: 8 float64 values
        _prefetch(data, q)
    _prefetch(data, hi - 1)
    for q in range(lo, hi, 64 // indices.itemsize):
        _prefetch(indices, q)
    _prefetch(indices, hi - 1)


_SPARSE_EPOCHS: dict = {}  # (derivative, rule, n_state, rate) -> the compiled epochs over CSR rows


def sparse_epoch_function(derivative, rule, n_state, rate):
    """The compiled epochs over CSR rows for one loss derivative, optimizer rule and schedule (built once, cached on
    disk), as :func:`epoch_functions`.

    Returns ``(single, epoch)``. ``epoch(data, indices, indptr, Y, sample_weight, order, batch_size, theta, first,
    second, average, counters, fit_intercept, param, hyper, l1, l2, schedule_params, eta_scale, average_start,
    mean_weight, center, inv_scale, l1_of, l2_of, lazy) -> float``: the
    arguments of :func:`sgd_epoch` with X given as its CSR arrays (data, indices, indptr), and the same updates.
    Each row's prediction and gradient walk its stored entries only; with the standardization, the centring is
    implicit:
    eta_i = b + sum_{j stored} x_ij w_j / s_j - sum_j c_j w_j / s_j, the last sum a scalar kept up to date by the
    update pass, and the gradient's part -c_j / s_j g_b is added in that pass.

    Two ways to update the coefficients after a batch:

    * ``lazy=False``: every coefficient and its optimizer state, each batch (O(nnz of the batch + d));
    * ``lazy=True`` (O(nnz of the batch), for the caller to choose only where it is exact): the coefficients whose
      columns the batch does not touch have a zero data gradient, so their update is a known map that is applied
      when they are next read. It requires no centring term, no averaging, and a rule that moves nothing on a zero
      gradient (u = 0, state unchanged: gd, adagrad) unless the only other term is a scalar L2 with the rule u = g
      (gd): then w = scale * v (scikit-learn's weight scaling), scale <- (1 - lr l2) scale per update. The L1
      step of the untouched coefficients composes, ST(ST(v, a), b) = ST(v, a + b): the threshold accumulated in
      v's units since each coefficient's last update (U = sum lr / scale) is applied when it is read, so the
      exact zeros are the dense kernel's.

    ``single(data, indices, indptr, y, sample_weight, order, w, first, second, counters, fit_intercept, param,
    hyper, l1, l2, schedule_params, eta_scale, mean_weight, inv_scale,
    l1_of)`` is ``epoch``'s lazy case for batch_size=1 and one output (1-D w, first, second): each row reads and
    writes only its own coefficients' slots, no batch bookkeeping (about twice as fast on hashed text features).
    """
    key = (derivative, rule, int(n_state), rate)
    if key in _SPARSE_EPOCHS:
        return _SPARSE_EPOCHS[key]
    dloss = _jitable(derivative)
    update = _jitable(rule)
    rate = _jitable(rate)
    keep_first = n_state >= 1
    keep_second = n_state >= 2

    def single(data, indices, indptr, y, sample_weight, order, w, first, second, counters, fit_intercept, param,
               hyper, l1, l2, schedule_params, eta_scale, mean_weight,
               inv_scale, l1_of):
        # batch 1, one output, lazy: each row reads and writes its own columns only (w[off:] holds v, w = vscale v)
        m = indptr.shape[0] - 1
        off = 1 if fit_intercept else 0
        d = w.shape[0] - off
        has_weight = sample_weight.shape[0] > 0
        scaled = inv_scale.shape[0] > 0
        per_coef = l1_of.shape[0] > 0
        has_l1 = l1 != 0.0
        plain = not has_l1 and not scaled
        inv_mean_weight = 1.0 / mean_weight
        t = counters[0]
        count = counters[2]
        eta = rate(t, schedule_params) * eta_scale
        vscale = 1.0
        acc = 0.0
        acc_last = np.zeros(d if has_l1 else 0)
        for pos in range(m):
            if pos + 2 * PREFETCH_DISTANCE < m:
                _prefetch(indptr, order[pos + 2 * PREFETCH_DISTANCE])
            if pos + PREFETCH_DISTANCE < m:
                ahead = order[pos + PREFETCH_DISTANCE]
                _prefetch_row(data, indices, indptr[ahead], indptr[ahead + 1])
                _prefetch(y, ahead)
                if has_weight:
                    _prefetch(sample_weight, ahead)
            i = order[pos]
            s = sample_weight[i] if has_weight else 1.0
            lo = indptr[i]
            hi = indptr[i + 1] if s != 0.0 else lo  # (a row of weight 0 touches nothing)
            pred = 0.0
            if plain:  # raw columns, no L1: the dot product alone, without a branch
                for q in range(lo, hi):
                    pred += data[q] * w[off + indices[q]]
            else:
                for q in range(lo, hi):
                    j = indices[q]
                    if has_l1 and acc_last[j] != acc:
                        w[off + j] = _soft_threshold(w[off + j],
                                                     (l1_of[j] if per_coef else l1) * (acc - acc_last[j]))
                        acc_last[j] = acc
                    x = data[q] * inv_scale[j] if scaled else data[q]
                    pred += x * w[off + j]
            pred *= vscale
            if fit_intercept:
                pred += w[0]
            dl = (s * dloss(pred, y[i], param)) * inv_mean_weight if s != 0.0 else 0.0
            eta = rate(t, schedule_params) * eta_scale
            if not (eta > 0.0 and eta < math.inf):  # (NaN fails both) the caller raises, naming the step
                break
            count += 1
            fcount = float(count)
            if fit_intercept:
                u, a, b = update(dl, first[0], second[0], fcount, hyper)
                if keep_first:
                    first[0] = a
                if keep_second:
                    second[0] = b
                w[0] = w[0] - eta * u
            new_scale = vscale * (1.0 - eta * l2) if l2 != 0.0 else vscale
            if has_l1:  # ST(a v, t) = a ST(v, t / |a|)
                acc += eta / abs(new_scale)
            inv_new = 1.0 / new_scale
            if plain:  # the same update, no per-entry test but the loop-invariant l2 one
                for q in range(lo, hi):
                    j = indices[q]
                    wj = vscale * w[off + j]
                    gr = dl * data[q]
                    if l2 != 0.0:
                        gr += l2 * wj
                    u, a, b = update(gr, first[off + j], second[off + j], fcount, hyper)
                    if keep_first:
                        first[off + j] = a
                    if keep_second:
                        second[off + j] = b
                    w[off + j] = (wj - eta * u) * inv_new
                hi = lo  # (done)
            for q in range(lo, hi):
                j = indices[q]
                x = data[q] * inv_scale[j] if scaled else data[q]
                wj = vscale * w[off + j]
                gr = dl * x
                if l2 != 0.0:
                    gr += l2 * wj
                u, a, b = update(gr, first[off + j], second[off + j], fcount, hyper)
                if keep_first:
                    first[off + j] = a
                if keep_second:
                    second[off + j] = b
                wj = wj - eta * u
                if has_l1:
                    wj = _soft_threshold(wj, eta * (l1_of[j] if per_coef else l1))
                    acc_last[j] = acc
                w[off + j] = wj * inv_new
            vscale = new_scale
            if abs(vscale) < 1e-9:  # fold the scale into v before it underflows
                for j in range(d):
                    if has_l1:
                        thr = (l1_of[j] if per_coef else l1) * (acc - acc_last[j])
                        w[off + j] = _soft_threshold(w[off + j], thr)
                        acc_last[j] = 0.0
                    w[off + j] *= vscale
                acc = 0.0
                vscale = 1.0
            t += 1
        for j in range(d):  # the coefficients themselves again
            if has_l1:
                w[off + j] = _soft_threshold(w[off + j], (l1_of[j] if per_coef else l1) * (acc - acc_last[j]))
            w[off + j] *= vscale
        counters[0] = t
        counters[2] = count
        return eta

    def epoch(data, indices, indptr, Y, sample_weight, order, batch_size, theta, first, second, average, counters,
              fit_intercept, param, hyper, l1, l2, schedule_params,
              eta_scale, average_start, mean_weight, center, inv_scale, l1_of, l2_of, lazy):
        m = indptr.shape[0] - 1
        k = Y.shape[1]
        p = theta.shape[0]
        off = 1 if fit_intercept else 0
        d = p - off
        has_weight = sample_weight.shape[0] > 0
        scaled = inv_scale.shape[0] > 0
        per_coef = l1_of.shape[0] > 0
        centred = False
        if scaled:
            for j in range(d):
                if center[j] != 0.0:
                    centred = True
        has_l1 = l1 != 0.0
        t = counters[0]
        n_avg = counters[1]
        count = counters[2]
        eta = rate(t, schedule_params) * eta_scale
        gx = np.zeros((d, k))  # the batch's data gradient sum_i dl_i x_ij, on the touched columns (lazy)
        g0 = np.zeros(k)
        pred = np.zeros(k)
        stamp = np.full(d, -1, dtype=np.int64)  # the batch that last touched column j
        touched = np.empty(d, dtype=np.int64)
        shift = np.zeros(k)  # sum_j c_j w_j / s_j
        if centred:
            for j in range(d):
                cj = center[j] * inv_scale[j]
                for o in range(k):
                    shift[o] += cj * theta[off + j, o]
        # lazy: theta[off:] holds v, w = vscale * v; U the accumulated L1 threshold per unit l1 in v's units
        vscale = 1.0
        acc = 0.0
        acc_last = np.zeros(d)
        batch = 0
        start = 0
        while start < m:
            stop = min(start + batch_size, m)
            n_touched = 0
            for o in range(k):
                g0[o] = 0.0
            for pos in range(start, stop):
                if pos + 2 * PREFETCH_DISTANCE < m:
                    _prefetch(indptr, order[pos + 2 * PREFETCH_DISTANCE])
                if pos + PREFETCH_DISTANCE < m:
                    ahead = order[pos + PREFETCH_DISTANCE]
                    _prefetch_row(data, indices, indptr[ahead], indptr[ahead + 1])
                    _prefetch(Y, ahead * k)
                i = order[pos]
                s = sample_weight[i] if has_weight else 1.0
                if s == 0.0:
                    continue
                for o in range(k):
                    pred[o] = 0.0
                for q in range(indptr[i], indptr[i + 1]):
                    j = indices[q]
                    x = data[q] * inv_scale[j] if scaled else data[q]
                    if lazy:
                        if has_l1 and acc_last[j] != acc:  # catch up on the L1 steps since its last update
                            thr = (l1_of[j] if per_coef else l1) * (acc - acc_last[j])
                            for o in range(k):
                                theta[off + j, o] = _soft_threshold(theta[off + j, o], thr)
                            acc_last[j] = acc
                        if stamp[j] != batch:
                            stamp[j] = batch
                            touched[n_touched] = j
                            n_touched += 1
                            for o in range(k):
                                gx[j, o] = 0.0
                    for o in range(k):
                        pred[o] += x * theta[off + j, o]
                for o in range(k):
                    e = pred[o] * vscale if lazy else pred[o]
                    if fit_intercept:
                        e += theta[0, o]
                    if centred:
                        e -= shift[o]
                    dl = s * dloss(e, Y[i, o], param)
                    pred[o] = dl
                    g0[o] += dl
                for q in range(indptr[i], indptr[i + 1]):
                    j = indices[q]
                    x = data[q]
                    for o in range(k):
                        gx[j, o] += pred[o] * x
            scale = 1.0 / ((stop - start) * mean_weight)
            eta = rate(t, schedule_params) * eta_scale
            if not (eta > 0.0 and eta < math.inf):  # (NaN fails both) the caller raises, naming the step
                break
            count += 1
            fcount = float(count)
            if fit_intercept:
                for o in range(k):
                    u, a, b = update(g0[o] * scale, first[0, o], second[0, o], fcount, hyper)
                    if keep_first:
                        first[0, o] = a
                    if keep_second:
                        second[0, o] = b
                    theta[0, o] = theta[0, o] - eta * u
            if lazy:
                new_scale = vscale * (1.0 - eta * l2) if l2 != 0.0 else vscale
                if has_l1:  # ST(a v, t) = a ST(v, t / |a|)
                    acc += eta / abs(new_scale)
                for r in range(n_touched):
                    j = touched[r]
                    l2j = l2_of[j] if per_coef else l2
                    thr = eta * (l1_of[j] if per_coef else l1)
                    for o in range(k):
                        wj = vscale * theta[off + j, o]
                        gr = gx[j, o] * scale
                        if scaled:
                            gr *= inv_scale[j]
                        if l2j != 0.0:
                            gr += l2j * wj
                        u, a, b = update(gr, first[off + j, o], second[off + j, o], fcount, hyper)
                        if keep_first:
                            first[off + j, o] = a
                        if keep_second:
                            second[off + j, o] = b
                        wj = wj - eta * u
                        if thr != 0.0:
                            wj = _soft_threshold(wj, thr)
                        theta[off + j, o] = wj / new_scale
                    acc_last[j] = acc
                vscale = new_scale
                if abs(vscale) < 1e-9:  # fold the scale into v before it underflows
                    for j in range(d):
                        thr = (l1_of[j] if per_coef else l1) * (acc - acc_last[j]) if has_l1 else 0.0
                        for o in range(k):
                            v = _soft_threshold(theta[off + j, o], thr) if thr != 0.0 else theta[off + j, o]
                            theta[off + j, o] = v * vscale
                        acc_last[j] = 0.0
                    acc = 0.0
                    vscale = 1.0
            else:
                for o in range(k):
                    shift[o] = 0.0
                for j in range(d):
                    l2j = l2_of[j] if per_coef else l2
                    thr = eta * (l1_of[j] if per_coef else l1)
                    for o in range(k):
                        gr = gx[j, o]
                        gx[j, o] = 0.0
                        if centred:
                            gr -= center[j] * g0[o]
                        gr *= scale
                        if scaled:
                            gr *= inv_scale[j]
                        if l2j != 0.0:
                            gr += l2j * theta[off + j, o]
                        u, a, b = update(gr, first[off + j, o], second[off + j, o], fcount, hyper)
                        if keep_first:
                            first[off + j, o] = a
                        if keep_second:
                            second[off + j, o] = b
                        wj = theta[off + j, o] - eta * u
                        wj = _soft_threshold(wj, thr) if thr != 0.0 else wj
                        theta[off + j, o] = wj
                        if centred:
                            shift[o] += center[j] * inv_scale[j] * wj
            t += 1
            if average_start >= 0 and t > average_start:  # (never with lazy updates: the caller's rule)
                n_avg += 1
                inv = 1.0 / n_avg
                for r in range(p):
                    for o in range(k):
                        average[r, o] += (theta[r, o] - average[r, o]) * inv
            batch += 1
            start = stop
        if lazy:  # the coefficients themselves again
            for j in range(d):
                thr = (l1_of[j] if per_coef else l1) * (acc - acc_last[j]) if has_l1 else 0.0
                for o in range(k):
                    v = _soft_threshold(theta[off + j, o], thr) if thr != 0.0 else theta[off + j, o]
                    theta[off + j, o] = v * vscale
        counters[0] = t
        counters[1] = n_avg
        counters[2] = count
        return eta

    name = f"{derivative.__name__}_{rule.__name__}_{rate.__name__}_{n_state}_{_digest(derivative, rule, rate)}"
    name = name.strip("_")
    single.__qualname__ = f"sparse_single_output_epoch_{name}"
    epoch.__qualname__ = f"sparse_epoch_{name}"
    _SPARSE_EPOCHS[key] = (njit(cache=True, **_LOOP_OPTIONS)(single), njit(cache=True, **_LOOP_OPTIONS)(epoch))
    return _SPARSE_EPOCHS[key]


def rule_moves_nothing_on_a_zero_gradient(rule) -> bool:
    """Whether ``rule`` (a CoordinateRule) gives u = 0 and leaves its state as it was for g = 0 (gd, adagrad; not
    momentum, whose velocity decays and moves w, nor rmsprop/adam, whose averages decay): probed on a few states."""
    for a, b, count in ((0.0, 0.0, 1.0), (0.7, 0.3, 2.0), (2.5, 1.3, 5.0)):  # (states a rule can reach: s >= 0)
        with np.errstate(all="ignore"):
            u, a2, b2 = rule.update(0.0, a, b, count, rule.hyper)
        if u != 0.0 or (rule.n_state >= 1 and a2 != a) or (rule.n_state >= 2 and b2 != b):
            return False
    return True


def rule_is_the_gradient(rule) -> bool:
    """Whether ``rule`` is u = g with no state (gd): probed on a few gradients."""
    if rule.n_state:
        return False
    return all(rule.update(g, 0.0, 0.0, 1.0, rule.hyper)[0] == g for g in (0.0, 1.0, -2.5, 3e-7))


def sgd_epoch(X, Y, sample_weight, order, batch_size, theta, first, second, average, counters, fit_intercept,
              derivative, param, rule, n_state, hyper, l1, l2, rate, schedule_params, eta_scale, average_start,
              mean_weight, center, inv_scale, l1_of, l2_of):
    """One epoch of (mini-batch) stochastic descent, in place, with the compiled epoch for (derivative, rule, rate).

    Parameters
    ----------
    X : (m, d) float64, C-contiguous.  Y : (m, k) float64.  sample_weight : (m,) float64, or (0,) for none.
    order : (m,) int64 — the row order of this epoch (a permutation, or arange when not shuffling).
    batch_size : int — rows per update (the last batch may be smaller).
    theta : (p, k) — packed parameters, row 0 the intercept when ``fit_intercept``; updated in place.
    first, second : (p, k) — the optimizer's two state slots (CoordinateRule); updated in place.
    average : (p, k) — running mean of theta (averaged SGD); updated in place from update ``average_start`` on
        (``average_start < 0`` turns averaging off).
    counters : (3,) int64 — [t, n_averaged, count]: updates made so far (the schedule's step), iterates averaged
        so far, the optimizer's updates so far; updated in place.
    derivative, param : the loss's ``scalar_derivative`` and ``param``; rule, n_state, hyper : the optimizer's
        CoordinateRule. l1, l2 as in ``objectives.Penalty``. rate, schedule_params : the schedule's ``scalar_rate``
        and ``scalar_params`` (gdlab.schedules); eta_scale multiplies every rate ('adaptive' divides it by 5 on a
        stall). ``mean_weight`` s_bar (1.0 without weights).
    center, inv_scale : (d,) — standardized descent: each row is read as (x - center) * inv_scale (both (0,) for
        the raw rows). l1_of, l2_of : (d,) — per-coefficient penalty weights in those coordinates, replacing l1 and l2
        (both (0,) for the scalars).

    Returns
    -------
    float — the learning rate of the last update; or the first one that is not a positive finite number, before
    which the epoch stopped (counters[0] is then its step).
    """
    single, general = epoch_functions(derivative, rule, n_state, rate)
    if batch_size == 1 and Y.shape[1] == 1:
        return single(X, Y[:, 0], sample_weight, order, theta[:, 0], first[:, 0], second[:, 0], average[:, 0],
                      counters, fit_intercept, param, hyper, l1, l2, schedule_params, eta_scale, average_start,
                      mean_weight, center, inv_scale, l1_of, l2_of)
    return general(X, Y, sample_weight, order, batch_size, theta, first, second, average, counters, fit_intercept,
                   param, hyper, l1, l2, schedule_params, eta_scale, average_start, mean_weight, center, inv_scale,
                   l1_of, l2_of)


_NONE = np.zeros(0)  # "not given" for the kernel's optional arrays (center, inv_scale, l1_of, l2_of)


def warm_up(derivatives=None, rules=None, schedules=None) -> float:
    """Compile (or load from the cache) the epochs on a tiny problem; returns the seconds it took.

    derivatives, rules: the losses' scalar derivatives and the optimizers' CoordinateRules to prepare (default: the
    squared error with gd, momentum and adam, the log-loss with gd); schedules: the schedules (default: a
    constant step, which 'adaptive' shares)."""
    import time

    from gdlab import losses, optimizers, schedules as schedules_module

    t0 = time.perf_counter()
    if derivatives is None and rules is None:
        pairs = [(losses.SquaredError.scalar_derivative, optimizers.gd().direction.coordinate),
                 (losses.SquaredError.scalar_derivative, optimizers.momentum().direction.coordinate),
                 (losses.SquaredError.scalar_derivative, optimizers.adam().direction.coordinate),
                 (losses.LogLoss.scalar_derivative, optimizers.gd().direction.coordinate)]
    else:
        pairs = [(d, r) for d in (derivatives or [losses.SquaredError.scalar_derivative])
                 for r in (rules or [optimizers.gd().direction.coordinate])]
    X = np.zeros((2, 1))
    Y = np.ones((2, 1))
    for schedule in schedules or [schedules_module.constant(0.01)]:
        for derivative, rule in pairs:
            for batch_size in (1, 2):
                theta = np.zeros((2, 1))
                sgd_epoch(X, Y, _NONE, np.arange(2, dtype=np.int64), batch_size, theta, np.zeros_like(theta),
                          np.zeros_like(theta), np.zeros_like(theta), np.zeros(3, dtype=np.int64), True, derivative,
                          0.0, rule.update, rule.n_state, rule.hyper, 0.0, 0.0, type(schedule).scalar_rate,
                          schedule.scalar_params, 1.0, -1, 1.0, _NONE, _NONE, _NONE, _NONE)
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
