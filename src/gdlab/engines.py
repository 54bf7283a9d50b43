"""Epoch engines: how one epoch of mini-batch or stochastic descent is carried out, for the one loop to drive.

:func:`gdlab.descend` owns every decision (the step, the stop, divergence, the coordinates, what is recorded);
an engine only runs the updates of one epoch and hands back the parameters, the optimizer's state and the step
counter. Two engines give the same updates:

* :class:`NumpyEpochs`: any source that draws batches, any optimizer, any penalty, in the descent's coordinates
  (standardized or raw); one Python call per batch;
* :class:`CompiledEpochs`: gdlab's numba kernel (:mod:`gdlab._sgd_kernel`), no Python call per update, for gd,
  momentum and nesterov on rows in memory, raw or standardized (each row read as (x - c) / s on the fly: no copy
  of X), with the schedules it knows.

Both keep the averaged iterate (averaged SGD: the running mean of theta after update ``average_start``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdlab.schedules import adaptive, constant, invscaling, optimal

__all__ = ["Averager", "CompiledEpochs", "DescentState", "NumpyEpochs", "choose_engine", "ENGINES"]

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
    """One epoch as a Python loop over the source's batches (any source, optimizer, penalty, coordinates)."""

    name = "numpy"

    def __init__(self, problem: Any, source: Any, batch_size: int, rng: np.random.Generator, shuffle: bool,
                 schedule: Any, update: Any):
        self.problem, self.source, self.batch_size = problem, source, batch_size
        self.rng, self.shuffle, self.schedule, self.update = rng, shuffle, schedule, update

    def init_state(self, theta: np.ndarray, init: Any) -> Any:
        return init(theta)

    def epoch(self, theta: np.ndarray, opt_state: Any, t: int, eta_scale: float, avg: Averager
              ) -> tuple[np.ndarray, Any, int, float]:
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


def _schedule_codes(schedule: Any) -> tuple[int, float, float, float, float] | None:
    """The kernel's encoding of a schedule (code, eta0, power_t, optimal alpha, optimal t0), None if it has none."""
    if type(schedule) is optimal:
        return 2, 0.0, 0.0, float(schedule.alpha), float(schedule._t0())
    if type(schedule) is invscaling:
        return 1, float(schedule.eta0), float(schedule.power_t), 1.0, 1.0
    if type(schedule) in (constant, adaptive):
        return 0, float(schedule.eta0), 0.0, 1.0, 1.0
    return None


def choose_engine(requested: str, *, full_batch: bool, optimizer: Any, source: Any, scaled: bool, loss: Any,
                  schedule: Any) -> tuple[str, str]:
    """Which engine runs the epochs, and why (the one place this is decided)."""
    from gdlab import _sgd_kernel
    from gdlab.sources.memory import MemorySource

    if requested not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {requested!r}.")
    if full_batch:
        return "full batch", "one update per iteration"
    why_not = None
    if optimizer.name not in _sgd_kernel.OPTIMIZER_CODES:
        why_not = f"the compiled epochs know gd, momentum and nesterov, not {optimizer.name!r}"
    elif not isinstance(getattr(source, "source", source) if scaled else source, MemorySource):
        why_not = "the compiled epochs read rows in memory"
    elif loss.name not in _sgd_kernel.LOSS_CODES:
        why_not = f"the compiled epochs do not know loss {loss.name!r}"
    elif _schedule_codes(schedule) is None:
        why_not = "the compiled epochs know constant, invscaling, optimal and adaptive schedules"
    elif not _sgd_kernel.HAVE_NUMBA:
        why_not = "numba is not installed"
    if requested == "compiled" and why_not:
        raise ValueError(f"engine='compiled' cannot run this fit: {why_not}; use engine='auto' or 'numpy'.")
    if requested == "numpy":
        return "numpy", "requested"
    if why_not:
        return "numpy", why_not
    return "compiled", "gd/momentum/nesterov on rows in memory: no Python call per update"


class CompiledEpochs:
    """One epoch in gdlab's numba kernel: the same updates as :class:`NumpyEpochs`, on rows in memory.

    ``scaling`` (a :class:`gdlab.scaling.Scaling`): the descent's coordinates are standardized; the kernel reads
    each row as (x - center) / scale, and the penalty (on the user's w = w' / scale) becomes per-coefficient:
    l2 / scale^2 and l1 / scale.
    """

    name = "compiled"

    def __init__(self, mem: Any, fit_intercept: bool, loss: Any, penalty: Any, schedule: Any, optimizer: Any,
                 batch_size: int, rng: np.random.Generator, shuffle: bool, scaling: Any = None):
        from gdlab import _sgd_kernel

        self.kernel = _sgd_kernel
        self.X = np.ascontiguousarray(mem.X, dtype=np.float64)
        self.Y = np.ascontiguousarray(mem.Y, dtype=np.float64)
        sw = mem.sample_weight
        self.sw = np.zeros(0) if sw is None else np.ascontiguousarray(sw, dtype=np.float64)
        self.mean_weight = 1.0 if sw is None else float(np.mean(sw))
        self.fit_intercept = bool(fit_intercept)
        self.loss_code = _sgd_kernel.LOSS_CODES[loss.name]
        self.epsilon = loss.param
        self.l1, self.l2 = float(penalty.l1), float(penalty.l2)
        none = np.zeros(0)
        if scaling is None:
            self.center = self.inv_scale = self.l1_of = self.l2_of = none
        else:
            self.center = np.ascontiguousarray(scaling.center, dtype=np.float64)
            self.inv_scale = np.ascontiguousarray(1.0 / scaling.scale, dtype=np.float64)
            self.l1_of = self.l1 * self.inv_scale
            self.l2_of = self.l2 * self.inv_scale**2
        self.codes = _schedule_codes(schedule)
        self.opt_code = _sgd_kernel.OPTIMIZER_CODES[optimizer.name]
        self.beta = float(optimizer.hyperparameters.get("beta", 0.0)) if optimizer.name != "gd" else 0.0
        self.batch_size = int(batch_size)
        self.rng, self.shuffle = rng, shuffle
        m = self.X.shape[0]
        self.order = np.arange(m, dtype=np.int64)  # shuffled in place each epoch, from the previous order

    def init_state(self, theta: np.ndarray, init: Any) -> np.ndarray:
        return np.zeros_like(theta)  # the momentum buffer v (unused by gd)

    def epoch(self, theta: np.ndarray, velocity: np.ndarray, t: int, eta_scale: float, avg: Averager
              ) -> tuple[np.ndarray, np.ndarray, int, float]:
        k = self.kernel
        m = self.X.shape[0]
        if self.shuffle:
            k.shuffle_rows(self.order, self.rng.random(m))
        else:
            self.order = np.arange(m, dtype=np.int64)
        theta = np.ascontiguousarray(theta, dtype=np.float64)
        average = avg.theta if avg.theta is not None else np.zeros_like(theta)
        counters = np.array([t, avg.n], dtype=np.int64)
        code, eta0, power_t, oa, ot0 = self.codes
        with np.errstate(over="ignore", invalid="ignore"):
            eta = k.sgd_epoch(self.X, self.Y, self.sw, self.order, self.batch_size, theta, velocity, average,
                              counters, self.fit_intercept, self.loss_code, self.epsilon, self.l1, self.l2, code,
                              eta0, power_t, oa, ot0, float(eta_scale), self.opt_code, self.beta, int(avg.start),
                              self.mean_weight, self.center, self.inv_scale, self.l1_of, self.l2_of)
        avg.n = int(counters[1])
        if avg.n > 0:
            avg.theta = average
        return theta, velocity, int(counters[0]), float(eta)
