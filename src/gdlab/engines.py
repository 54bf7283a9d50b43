"""Epoch engines: how one epoch of mini-batch or stochastic descent is carried out, for the one loop to drive.

:func:`gdlab.descend` owns every decision (the step, the stop, divergence, the coordinates, what is recorded);
an engine only runs the updates of one epoch and hands back the parameters, the optimizer's state and the step
counter. Two engines give the same updates:

* :class:`NumpyEpochs`: any source that draws batches, any optimizer, any penalty, in the descent's coordinates
  (standardized or raw); a few NumPy calls per batch (rows in memory are read straight from the arrays, with no
  object per batch), a source's own batches otherwise;
* :class:`CompiledEpochs`: gdlab's numba kernel (:mod:`gdlab._sgd_kernel`), no Python call per update, on rows in
  memory, raw or standardized (each row read as (x - c) / s on the fly: no copy of X), for every optimizer with a
  coordinate-wise rule (all the named ones), every loss with a scalar derivative (all but the coupled softmax),
  every penalty, weights, and every schedule with a scalar form (all the named ones). It compiles the loss's
  ``scalar_derivative``, the optimizer's ``CoordinateRule`` and the schedule's ``scalar_rate`` into its loop: the
  same functions as the NumPy path, never a name or a code.
  A sparse X runs :func:`gdlab._sgd_kernel.sparse_epoch_function`: each row's stored entries only, the centring
  implicit; a batch costs O(its stored entries) where the untouched coefficients can be updated lazily and
  exactly (gd, adagrad: see :func:`sparse_dense_terms`), O(d) otherwise, and ``engine_reason`` says which.

Both keep the averaged iterate (averaged SGD: the running mean of theta after update ``average_start``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from gdlab.losses import Loss

__all__ = ["Averager", "CompiledEpochs", "CoordinateState", "DescentState", "NumpyEpochs", "choose_engine",
           "schedule_form", "sparse_dense_terms", "ENGINES"]

ENGINES = ("auto", "numpy", "compiled")


@dataclass
class DescentState:
    """Where a run left off, to go on from there (``descend(..., state=...)``, GDRegressor.partial_fit).

    opt_state : the optimizer's state (the engine's own form); t : updates made (the schedule's step counter);
    eta_scale : the 'adaptive' schedule's divisions by 5 so far; average, n_averaged : the averaged iterate;
    best, no_improve : the stall counter of the stop rule; engine : which engine made opt_state.
    """

    opt_state: Any = None
    t: int = 0
    eta_scale: float = 1.0
    average: np.ndarray | None = None
    n_averaged: int = 0
    best: float = math.inf
    no_improve: int = 0
    engine: str = ""


@dataclass
class Averager:
    """The running mean of the iterates from update ``start + 1`` on (``start < 0``: off)."""

    start: int = -1
    theta: np.ndarray | None = None
    n: int = 0

    @property
    def active(self) -> bool:
        return self.start >= 0

    def add(self, theta: np.ndarray, t: int) -> None:
        if self.start >= 0 and t > self.start:
            self.n += 1
            if self.theta is None:
                self.theta = theta.copy()
            else:
                self.theta += (theta - self.theta) / self.n


def check_step(eta: float, t: int) -> None:
    if not (eta > 0 and math.isfinite(eta)):
        raise ValueError(f"the learning-rate schedule gave {eta!r} at step {t}; a learning rate must be a positive "
                         "finite number at every step: fix the schedule (or give a number).")


class NumpyEpochs:
    """One epoch as a Python loop over batches (any source, optimizer, penalty, coordinates).

    Rows in memory (a MemorySource, standardized or not) are read straight from its arrays: per batch one gather of
    the rows, eta = X_B w + b, the loss's derivative, X_B^T times it, the optimizer's update and the step, with the
    standardization folded into w and b (O(d k) per batch, no standardized copy of the rows). The same shuffles
    (``rng.permutation`` per epoch) and the same arithmetic as the source's own batches, which any other source
    (stream, Dask) draws.
    """

    name = "numpy"

    def __init__(self, problem: Any, source: Any, batch_size: int, rng: np.random.Generator, shuffle: bool,
                 schedule: Any, update: Any):
        from gdlab.scaling import ScaledSource
        from gdlab.sources.memory import MemorySource

        self.problem, self.source, self.batch_size = problem, source, batch_size
        self.rng, self.shuffle, self.schedule, self.update = rng, shuffle, schedule, update
        inner = source.source if isinstance(source, ScaledSource) else source
        self.rows = inner if type(inner) is MemorySource else None
        self.scaling = source.scaling if isinstance(source, ScaledSource) else None

    def init_state(self, theta: np.ndarray, init: Any) -> Any:
        return init(theta)

    def epoch(self, theta: np.ndarray, opt_state: Any, t: int, eta_scale: float, avg: Averager
              ) -> tuple[np.ndarray, Any, int, float]:
        if self.rows is not None:
            return self._rows_epoch(theta, opt_state, t, eta_scale, avg)
        problem, schedule, update = self.problem, self.schedule, self.update
        eta = math.nan
        for batch in self.source.iter_batches(self.batch_size, self.rng, self.shuffle):
            eta = schedule(t) * eta_scale
            if not eta > 0 or not math.isfinite(eta):
                check_step(eta, t)
            _, gb = problem.value_and_grad(theta, batch)
            u, opt_state = update(gb, opt_state, theta)
            theta = problem.prox(theta - eta * u, eta)
            t += 1
            if avg.start >= 0:
                avg.add(theta, t)
        return theta, opt_state, t, eta

    def _rows_epoch(self, theta: np.ndarray, opt_state: Any, t: int, eta_scale: float, avg: Averager
                    ) -> tuple[np.ndarray, Any, int, float]:
        # MemorySource.take + value_and_grad + ScaledSource + _Problem for one batch, without the loss value and
        # the objects: the same gradient, s_i-weighted and divided by |B| s_bar (s_bar the whole data's mean weight).
        # theta is updated in place (a copy made here, so that what the caller recorded stays as it was), which keeps
        # the views of w and b for the whole epoch: a batch costs about as many NumPy calls as a plain loop's.
        mem, problem, schedule, update = self.rows, self.problem, self.schedule, self.update
        X, Y, sw, derivative = mem.X, mem.Y, mem.sample_weight, mem.loss.derivative
        m, batch_size = mem.n_samples, self.batch_size
        mean_weight = mem._n / m
        off, fit_intercept = problem.off, problem.fit_intercept
        theta = np.array(theta, dtype=np.float64, order="C")
        # one output: 1-D views (BLAS's matrix-vector products; a (B, d) x (d, 1) product costs more per call)
        one = theta.shape[1] == 1
        col = (lambda a: a[..., 0]) if one else (lambda a: a)
        Yc = col(Y)
        sw_col = None if sw is None else (sw if one else sw[:, None])
        sc = self.scaling
        inv_s = None if sc is None else col((1.0 / sc.scale)[:, None])
        center = None if sc is None or not fit_intercept else sc.center
        shift = None if center is None else col(center[:, None]) * inv_s  # grad' = grad / s - (c / s) grad_b
        l2, l1 = problem.penalty.l2, problem.penalty.l1
        l2_of = None if not l2 else (l2 if inv_s is None else l2 * inv_s * inv_s)
        prox, add_reduce = problem.prox, np.add.reduce
        cast = X.dtype != np.float64
        sparse = not isinstance(X, np.ndarray)
        order = self.rng.permutation(m) if self.shuffle else None
        W_d = col(theta[off:])  # views, valid all epoch (theta changes in place)
        b_d = theta[0] if fit_intercept else None
        eta = math.nan
        for start in range(0, m, batch_size):
            rows = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
            eta = schedule(t) * eta_scale
            if not eta > 0 or not math.isfinite(eta):
                check_step(eta, t)
            Xb = X[rows]
            W = W_d if inv_s is None else W_d * inv_s  # the user's coefficients
            E = Xb @ W.astype(X.dtype) if cast else Xb @ W
            if cast:
                E = E.astype(np.float64)
            if fit_intercept:
                b = b_d[0] if one else b_d  # a scalar adds faster than a broadcast (1,) array
                E += b if center is None else b - center @ W
            G = derivative(E, Yc[rows])
            if sw is not None:
                G *= sw_col[rows]
            g = np.empty_like(theta)
            gc = col(g)
            if cast:
                gc[off:] = Xb.T @ G.astype(X.dtype)
            elif sparse:
                gc[off:] = Xb.T @ G  # the batch's stored entries only
            else:
                np.matmul(Xb.T, G, out=gc[off:])
            if fit_intercept:
                g[0] = add_reduce(G, axis=0)  # (G.sum's method wrapper costs as much as the sum)
            g *= 1.0 / (E.shape[0] * mean_weight)
            if inv_s is not None:  # the gradient in the descent's coordinates (Scaling.grad_to_descent)
                gc[off:] *= inv_s
                if shift is not None:
                    gc[off:] -= shift * g[0]
            if l2_of is not None:
                gc[off:] += l2_of * W_d
            u, opt_state = update(g, opt_state, theta)
            theta -= eta * u
            if l1:
                prox(theta, eta)  # in place
            t += 1
            if avg.start >= 0:
                avg.add(theta, t)
        return theta, opt_state, t, eta


def schedule_form(schedule: Any) -> tuple[Any, tuple[float, ...]] | None:
    """The schedule's scalar form for the compiled epochs, ``(scalar_rate, scalar_params)`` (gdlab.schedules), or
    None when it has none (any callable of t: the NumPy epochs run it)."""
    rate = getattr(type(schedule), "scalar_rate", None)
    if rate is None or not hasattr(rate, "__code__"):  # a plain function (a staticmethod reads as one)
        return None
    try:
        params = tuple(float(v) for v in schedule.scalar_params)
    except (AttributeError, TypeError, ValueError, NotImplementedError):
        return None
    return rate, params


def compiles(loss: Loss) -> bool:
    """Whether the compiled epochs can run this loss: each output its own model, with a scalar derivative."""
    return not loss.coupled and type(loss).scalar_derivative is not Loss.scalar_derivative


def sparse_dense_terms(rule: Any, *, centred: bool, per_coefficient_l2: bool, l2: float, averaging: bool
                       ) -> str | None:
    """Why a batch on sparse rows must update every coefficient (O(d)), or None where the compiled sparse epoch
    updates only the batch's stored columns, exactly (the lazy updates of
    :func:`gdlab._sgd_kernel.sparse_epoch_function`).

    rule : the optimizer's CoordinateRule; centred : standardized with an intercept (the centring puts
    -c_j / s_j g_b in every coefficient's gradient); per_coefficient_l2 : the L2 term differs per coefficient (the
    standardized coordinates' l2 / s_j^2); averaging : the averaged iterate is kept (it reads every coefficient)."""
    from gdlab import _sgd_kernel

    if centred:
        return ("the centring of the standardized columns reaches every coefficient's gradient (standardize=False "
                "avoids it)")
    if averaging:
        return "the averaged iterate reads every coefficient after each update (average=False avoids it)"
    if not _sgd_kernel.rule_moves_nothing_on_a_zero_gradient(rule):
        return "the optimizer moves every coefficient at each update, even on a zero gradient (gd and adagrad do not)"
    if l2 and (per_coefficient_l2 or not _sgd_kernel.rule_is_the_gradient(rule)):
        return ("the L2 term is in every coefficient's gradient (lazy only for gd in raw coordinates, where it is a "
                "common scale)")
    return None


def choose_engine(requested: str, *, full_batch: bool, optimizer: Any, source: Any, scaled: bool, loss: Any,
                  schedule: Any, penalty: Any = None, average: Any = None) -> tuple[str, str]:
    """Which engine runs the epochs, and why (the one place this is decided).

    penalty, average (optional): the fit's penalty and averaging, which make the reason for a sparse X exact
    (whether a batch costs O(nnz of the batch) or O(d)); without them the reason states the condition."""
    if requested not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {requested!r}.")
    if full_batch:  # (before importing the kernel: numba costs a fresh process ~0.3 s)
        return "full batch", "one update per iteration"
    from gdlab import _sgd_kernel
    from gdlab.sources.memory import MemorySource

    inner = getattr(source, "source", source) if scaled else source
    rule = getattr(optimizer.direction, "coordinate", None)
    why_not = None
    if rule is None:
        why_not = f"optimizer {optimizer.name!r} has no coordinate-wise rule (CoordinateRule) to compile"
    elif not isinstance(inner, MemorySource):
        why_not = "the compiled epochs read rows in memory"
    elif loss.coupled:
        why_not = (f"loss {loss.name!r} couples the outputs (each row's K predictors at once), and the compiled "
                   "epochs update each output on its own")
    elif not compiles(loss):
        why_not = f"loss {loss.name!r} has no scalar_derivative to compile"
    elif schedule_form(schedule) is None:
        why_not = (f"the schedule {schedule!r} has no scalar form (scalar_rate and scalar_params, "
                   "gdlab.schedules) to compile")
    elif not _sgd_kernel.HAVE_NUMBA:
        why_not = "numba is not installed"
    if requested == "compiled" and why_not:
        raise ValueError(f"engine='compiled' cannot run this fit: {why_not}; use engine='auto' or 'numpy'.")
    if requested == "numpy":
        return "numpy", "requested"
    if why_not:
        return "numpy", why_not
    if isinstance(inner.X, np.ndarray):
        return "compiled", f"{optimizer.name} on rows in memory: no Python call per update"
    scaling = getattr(source, "scaling", None) if scaled else None
    centred = scaling is not None and bool(np.any(scaling.center != 0))
    head = f"{optimizer.name} on sparse rows in memory, each row's stored entries only"
    if penalty is None or average is None:
        dense = sparse_dense_terms(rule, centred=centred, per_coefficient_l2=scaling is not None, l2=1.0,
                                   averaging=False)
        if dense is None:
            return "compiled", (f"{head}: a batch costs O(its stored entries) without averaging, O(d) with it (the "
                                "averaged iterate reads every coefficient)")
        without_l2 = sparse_dense_terms(rule, centred=centred, per_coefficient_l2=False, l2=0.0, averaging=False)
        if without_l2 is None:
            return "compiled", (f"{head}: a batch costs O(its stored entries) without an L2 term or averaging, "
                                f"otherwise O(d): {dense}")
        return "compiled", f"{head}; a batch costs O(d): {dense}"
    dense = sparse_dense_terms(rule, centred=centred, per_coefficient_l2=scaling is not None,
                               l2=float(penalty.l2), averaging=average is not False and average is not None)
    if dense is None:
        return "compiled", f"{head}: a batch costs O(its stored entries) (lazy updates of the untouched coefficients)"
    return "compiled", f"{head}; a batch costs O(d): {dense}"


class CoordinateState(NamedTuple):
    """The compiled epochs' optimizer state: updates made, and the rule's two slots per parameter (p, k)."""

    count: int
    first: np.ndarray
    second: np.ndarray


class CompiledEpochs:
    """One epoch in gdlab's numba kernel: the same updates as :class:`NumpyEpochs`, on rows in memory.

    The kernel is built for ``loss.scalar_derivative`` and ``optimizer.direction.coordinate`` (compiled once per
    pair, then cached on disk). ``scaling`` (a :class:`gdlab.scaling.Scaling`): the descent's coordinates are
    standardized; the kernel reads each row as (x - center) / scale, and the penalty (on the user's
    w = w' / scale) becomes per-coefficient: l2 / scale^2 and l1 / scale.
    """

    name = "compiled"

    def __init__(self, mem: Any, fit_intercept: bool, loss: Any, penalty: Any, schedule: Any, optimizer: Any,
                 batch_size: int, rng: np.random.Generator, shuffle: bool, scaling: Any = None):
        from gdlab import _sgd_kernel

        self.kernel = _sgd_kernel
        self.sparse = not isinstance(mem.X, np.ndarray)
        if self.sparse:  # the CSR arrays themselves (float32 data: one float64 copy of the stored values)
            self.X = mem.X
            self.csr = (np.ascontiguousarray(mem.X.data, dtype=np.float64), mem.X.indices, mem.X.indptr)
        else:
            self.X = np.ascontiguousarray(mem.X, dtype=np.float64)
        self.Y = np.ascontiguousarray(mem.Y, dtype=np.float64)
        sw = mem.sample_weight
        self.sw = np.zeros(0) if sw is None else np.ascontiguousarray(sw, dtype=np.float64)
        self.mean_weight = 1.0 if sw is None else float(np.mean(sw))
        self.fit_intercept = bool(fit_intercept)
        self.param = float(loss.param)
        self.rule = optimizer.direction.coordinate
        self.hyper = tuple(float(h) for h in self.rule.hyper)
        form = schedule_form(schedule)
        if form is None:
            raise ValueError(f"the compiled epochs need a schedule with a scalar form (gdlab.schedules), got "
                             f"{schedule!r}")
        rate, self.schedule_params = form
        self.single, self.general = _sgd_kernel.epoch_functions(loss.scalar_derivative, self.rule.update,
                                                                self.rule.n_state, rate)
        self.l1, self.l2 = float(penalty.l1), float(penalty.l2)
        none = np.zeros(0)
        if scaling is None:
            self.center = self.inv_scale = self.l1_of = self.l2_of = none
        else:
            self.center = np.ascontiguousarray(scaling.center, dtype=np.float64)
            self.inv_scale = np.ascontiguousarray(1.0 / scaling.scale, dtype=np.float64)
            self.l1_of = self.l1 * self.inv_scale
            self.l2_of = self.l2 * self.inv_scale**2
        if self.sparse:
            self.sparse_epoch = _sgd_kernel.sparse_epoch_function(loss.scalar_derivative, self.rule.update,
                                                                  self.rule.n_state, rate)
            centred = scaling is not None and bool(np.any(scaling.center != 0))
            # lazy (O(nnz) a batch) wherever it is exact; averaging is decided per epoch (avg.start)
            self.lazy_unless_averaging = sparse_dense_terms(self.rule, centred=centred,
                                                            per_coefficient_l2=scaling is not None, l2=self.l2,
                                                            averaging=False) is None
        self.batch_size = int(batch_size)
        self.rng, self.shuffle = rng, shuffle
        m = self.X.shape[0]
        self.order = np.arange(m, dtype=np.int64)  # shuffled in place each epoch, from the previous order

    def init_state(self, theta: np.ndarray, init: Any) -> CoordinateState:
        a, b = self.rule.initial
        return CoordinateState(0, np.full(theta.shape, float(a)), np.full(theta.shape, float(b)))

    def epoch(self, theta: np.ndarray, opt_state: CoordinateState, t: int, eta_scale: float, avg: Averager
              ) -> tuple[np.ndarray, CoordinateState, int, float]:
        m = self.X.shape[0]
        if self.shuffle:
            self.kernel.shuffle_rows(self.order, self.rng.random(m))
        else:
            self.order = np.arange(m, dtype=np.int64)
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        first, second = opt_state.first, opt_state.second
        average = avg.theta if avg.theta is not None else np.zeros_like(theta)
        counters = np.array([t, avg.n, opt_state.count], dtype=np.int64)
        args = (counters, self.fit_intercept, self.param, self.hyper, self.l1, self.l2, self.schedule_params,
                float(eta_scale), int(avg.start), self.mean_weight, self.center, self.inv_scale, self.l1_of,
                self.l2_of)
        with np.errstate(over="ignore", invalid="ignore"):
            if self.sparse:
                data, indices, indptr = self.csr
                lazy = self.lazy_unless_averaging and avg.start < 0
                single, general = self.sparse_epoch
                if lazy and self.batch_size == 1 and self.Y.shape[1] == 1:
                    eta = single(data, indices, indptr, self.Y[:, 0], self.sw, self.order, theta[:, 0], first[:, 0],
                                 second[:, 0], counters, self.fit_intercept, self.param, self.hyper, self.l1, self.l2,
                                 self.schedule_params, float(eta_scale), self.mean_weight, self.inv_scale,
                                 self.l1_of)
                else:
                    eta = general(data, indices, indptr, self.Y, self.sw, self.order, self.batch_size, theta,
                                  first, second, average, *args, lazy)
            elif self.batch_size == 1 and self.Y.shape[1] == 1:
                # 1-D views of the (p, 1) arrays: the kernel updates them in place
                eta = self.single(self.X, self.Y[:, 0], self.sw, self.order, theta[:, 0], first[:, 0],
                                  second[:, 0], average[:, 0], *args)
            else:
                eta = self.general(self.X, self.Y, self.sw, self.order, self.batch_size, theta, first, second,
                                   average, *args)
        if not (eta > 0 and math.isfinite(eta)):  # the kernel stopped before this step
            check_step(eta, int(counters[0]))
        avg.n = int(counters[1])
        if avg.n > 0:
            avg.theta = average
        return theta, CoordinateState(int(counters[2]), first, second), int(counters[0]), float(eta)
