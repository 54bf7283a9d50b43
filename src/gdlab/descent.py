"""The descent loop: one loop for every source and optimizer, with stop rules, divergence checks and recording.

``descend`` is gdlab's core call. It validates the input, builds the objective (loss + penalty), picks a source of
loss and gradient (``memory``: a pass over X per evaluation; ``gram``: one-pass statistics, then O(d^2) per
evaluation), decides the coordinates (standardized or raw, :mod:`gdlab.scaling`), the step
(:func:`gdlab.curvature.auto_parameters`), builds the optimizer, runs the loop and returns a
:class:`~gdlab.result.Result` with the trajectory, in the user's units whatever coordinates the descent ran in.

Each decision is made once, here, for every face (GDRegressor, the CLI, compare, sweep, the explorer):

* the coordinates: :func:`_choose_scaling`;
* the step: :func:`gdlab.curvature.auto_parameters`;
* the stop: :class:`_StopRule` (the gap to the optimum when it is known, the first-order condition otherwise);
* divergence: :func:`_is_diverging`;
* what a failed fit says: :func:`_diagnose`.

Parameters are packed in one array theta of shape (p, k): row 0 is the intercept when there is one (the workshop's
w = [intercept, slope]), the next d rows the coefficients; k is the number of outputs.
"""

from __future__ import annotations

import collections
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdlab._validation import as_matrix, as_sample_weight, as_target, check_choice, check_positive
from gdlab.curvature import (Curvature, auto_parameters, batch_smoothness, curvature_from_operator,
                             curvature_from_stats)
from gdlab import exceptions as _exceptions
from gdlab.exceptions import DivergenceWarning
from gdlab.objectives import Loss, Penalty, get_loss, make_penalty
from gdlab.optimizers import OPTIMIZERS, Optimizer, make_optimizer
from gdlab.engines import Averager, CompiledEpochs, DescentState, NumpyEpochs, check_step, choose_engine
from gdlab.result import Result, TrajectoryRecorder
from gdlab.scaling import Scaling, ScaledSource
from gdlab.schedules import adaptive, constant, invscaling
from gdlab.sources.gram import GramSource
from gdlab.sources.memory import MemorySource

__all__ = ["descend", "Diagnosis", "IterationInfo", "SOURCES", "STATUS", "format_distinct"]

SOURCES = ("auto", "memory", "gram")
STATUS = {0: "converged", 1: "max_iter reached", 2: "diverged", 3: "stopped by callback", 4: "exact",
          5: "stalled", 6: "separable"}
# the raw-coordinate 'auto' steps of the per-coordinate methods (no statistics to scale them by)
_AUTO_FALLBACK_STEP = {"adagrad": 0.1, "rmsprop": 0.01, "adam": 0.01}
# the stop rule: the rounding floor of a measured gap, and how long a loss may fail to decrease (full batch)
_ROUNDING_ULPS = 4
_MEASURED_ULPS = 64
_FLOOR_ULPS = 256
_NO_PROGRESS_ITERATIONS = 50
# wide data: above this many parameters the p x p statistics are not formed (L comes from Lanczos)
_MAX_STATS_PARAMETERS = 4000
# how often (iterations) an unpenalised log-loss fit checks whether the classes are already separated
_SEPARATION_EVERY = 10
# the Barzilai-Borwein step of the smooth GLM losses' 'auto' gd: the nonmonotone test's memory and sufficient decrease
_BB_MEMORY = 10
_BB_SIGMA = 1e-4
# ... and its choice between the long step s's/s'y and the short one s'y/y'y: the short one when they differ by more
# than this ratio (the adaptive BB rule, Zhou, Gao & Dai 2006). Measured: ABBmin's minimum over the last few short
# steps is faster on breast cancer's log-loss (1255 iterations against 2259) but can stall for 50000 iterations on
# a softmax fit (raw iris, alpha = 1/n, tol = 1e-13) that this rule finishes in 75
_BB_TAU = 0.5


@dataclass(frozen=True)
class IterationInfo:
    """What a callback sees after each iteration (return True from the callback to stop the run)."""

    iteration: int
    coef: np.ndarray
    intercept: Any
    loss: float
    grad_norm: float
    learning_rate: float


@dataclass(frozen=True)
class Diagnosis:
    """Why a fit did not reach the optimum, and remedies that would.

    reason : the cause in words (feature scales, condition number, a constant column, ...).
    remedies : (parameter, value) pairs, best first: ("standardize", True), ("max_iter", 25000),
        ("learning_rate", "auto"), ("solver", "closed_form"). Each face renders them in its own terms (a Python
        parameter, a CLI flag); a remedy is listed only when it would work (``max_iter`` from the predicted rate).
    gap_text : "8.5x above the minimum MSE 2859.7" when the optimum is known, else "".
    """

    reason: str = ""
    remedies: tuple[tuple[str, Any], ...] = ()
    gap_text: str = ""

    def python_text(self) -> str:
        """The remedies as Python parameters."""
        words = {"standardize": lambda v: f"standardize={v!r}", "max_iter": lambda v: f"max_iter={v}",
                 "learning_rate": lambda v: f"learning_rate={v!r}",
                 "solver": lambda v: "the closed form (gdlab.closed_form(X, y))",
                 "method": lambda v: f"Newton's method (gdlab.solvers.newton(X, y, loss={v!r}, ...))"}
        return _join_remedies([words[k](v) for k, v in self.remedies if k in words])

    def to_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "remedies": [list(r) for r in self.remedies], "gap_text": self.gap_text}


def _join_remedies(items: list[str]) -> str:
    if not items:
        return ""
    return "use " + (items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1])


def format_distinct(*values: float, digits: int = 4, max_digits: int = 17) -> list[str]:
    """The numbers with enough significant digits (at least ``digits``, at most ``max_digits``) that different
    values never read alike (2/L = 0.99997 and 2/(L+mu) = 0.99999 must not both read "1")."""
    for g in range(digits, max_digits + 1):
        texts = [f"{v:.{g}g}" for v in values]
        if all(texts[i] != texts[j] for i in range(len(values)) for j in range(i) if values[i] != values[j]):
            return texts
    return [f"{v:.{max_digits}g}" for v in values]


class _Problem:
    """The objective F = data loss (from a source) + penalty, over packed parameters theta (p, k).

    ``coef_scale`` (d,): the descent runs in standardized coordinates, where the user's coefficients are
    w = w' / coef_scale; the penalty stays on the user's w (so the minimiser is the user's problem's).
    """

    def __init__(self, source: Any, penalty: Penalty, fit_intercept: bool, coef_scale: np.ndarray | None = None):
        self.source = source
        self.penalty = penalty
        self.fit_intercept = fit_intercept
        self.off = 1 if fit_intercept else 0
        self.inv_scale = None if coef_scale is None else (1.0 / coef_scale)[:, None]
        self._packed = getattr(source, "packed_value_and_grad", None)
        # the full-batch hot path: the source's own packed evaluation when no penalty is added to it
        self.evaluate = self._packed if self._packed is not None and not penalty.active else self.value_and_grad

    def user_coef(self, W: np.ndarray) -> np.ndarray:
        return W if self.inv_scale is None else W * self.inv_scale

    def value_and_grad(self, theta: np.ndarray, source: Any = None) -> tuple[float, np.ndarray]:
        """F(theta) (penalty included) and the gradient of its smooth part (L1 is handled by the prox)."""
        src = source if source is not None else self.source
        packed = self._packed if source is None else getattr(src, "packed_value_and_grad", None)
        if packed is not None:
            loss, g = packed(theta)
        else:
            W = theta[self.off:]
            b = theta[0] if self.fit_intercept else np.zeros(theta.shape[1])
            loss, gW, gb = src.value_and_grad(W, b)
            g = np.empty_like(theta)
            if self.fit_intercept:
                g[0] = gb
                g[1:] = gW
            else:
                g[:] = gW
        if self.penalty.active:
            W = theta[self.off:]
            Wu = self.user_coef(W)
            loss += self.penalty.value(Wu)
            if self.penalty.l2:
                g[self.off:] += self.penalty.l2 * (Wu if self.inv_scale is None else Wu * self.inv_scale)
        return loss, g

    def l1_value(self, theta: np.ndarray) -> float:
        """The L1 term of the penalty (the part the prox handles), 0 without one."""
        if not self.penalty.l1:
            return 0.0
        return self.penalty.l1 * float(np.abs(self.user_coef(theta[self.off:])).sum())

    def prox(self, theta: np.ndarray, step: float) -> np.ndarray:
        if self.penalty.l1:
            t = step if self.inv_scale is None else step * self.inv_scale
            theta[self.off:] = self.penalty.prox(theta[self.off:], t)
        return theta

    def gradient_mapping_norm(self, theta: np.ndarray, g: np.ndarray, step: float) -> float:
        """|theta - prox(theta - step g)| / step: the first-order optimality measure (the gradient's norm without
        an L1 term; it vanishes exactly at a minimiser of the composite objective)."""
        if not self.penalty.l1:
            return math.sqrt(float(np.vdot(g, g)))
        moved = self.prox(theta - step * g, step)
        diff = theta - moved
        return math.sqrt(float(np.vdot(diff, diff))) / step


def _choose_source(requested: str, loss: Loss, full_batch: bool, m: int, d: int, max_iter: int,
                   standardize: bool = False) -> tuple[str, str]:
    if requested == "gram":
        if not loss.quadratic:
            raise ValueError(f"source='gram' is exact only for loss='squared_error' (got loss={loss.name!r}); "
                             "use source='memory' or 'auto'.")
        if not full_batch:
            raise ValueError("source='gram' cannot draw mini-batches (it keeps only statistics); "
                             "use source='memory' or 'auto' with batch_size.")
        return "gram", "requested"
    if requested == "memory":
        return "memory", "requested"
    if not loss.quadratic:
        return "memory", f"loss={loss.name!r} needs the rows at every evaluation"
    if not full_batch:
        return "memory", "mini-batches are drawn from the rows"
    if standardize and d + 1 <= _MAX_STATS_PARAMETERS:
        return "gram", "standardizing reads the statistics (means, spreads) anyway; then O(d^2) per iteration"
    q = d + 1
    # cost model in units of one element read: the gram pass reads X once and does q/32 multiply-adds per element
    # (BLAS syrk on cache-resident blocks), then each iteration costs O(p^2); memory reads X twice per iteration.
    gram_cost = m * q * (1.0 + q / 32.0) + max_iter * (d + 1) ** 2
    memory_cost = max_iter * 2.0 * m * (d + 1)
    if gram_cost <= memory_cost:
        return "gram", (f"one pass for the statistics then O(d^2) per iteration (~{gram_cost:.2g} units) beats "
                        f"{max_iter} passes over X (~{memory_cost:.2g})")
    return "memory", f"{max_iter} passes over X (~{memory_cost:.2g} units) beat forming the statistics (~{gram_cost:.2g})"


def read_target(y: Any, n_samples: int, loss: Loss) -> tuple[np.ndarray, bool]:
    """(Y (m, k) as the loss reads it, whether y was one column): the checks every solver makes of a target."""
    ya = as_target(y, n_samples)
    single = ya.ndim == 1
    if single and loss.coupled:
        raise ValueError(f"loss={loss.name!r} takes a one-hot target of shape (m, K); got shape {ya.shape}. "
                         "GDClassifier encodes class labels itself.")
    return loss.prepare_target(ya.reshape(-1, 1) if single else ya), single


def initial_parameters(coef_init: Any, intercept_init: Any, d: int, k: int, fit_intercept: bool) -> np.ndarray:
    """The packed start theta (p, k), zeros where nothing is given; one error for a start of the wrong size."""
    p = d + (1 if fit_intercept else 0)
    theta = np.zeros((p, k))
    if coef_init is not None:
        ci = np.asarray(coef_init, dtype=float)
        if ci.size != d * k:
            raise ValueError(f"coef_init has {ci.size} values; expected {d * k} (n_features={d} x n_outputs={k}).")
        theta[p - d:] = ci.reshape(d, k)
    if intercept_init is not None:
        if not fit_intercept:
            raise ValueError("intercept_init was given but fit_intercept=False; drop one of them.")
        ii = np.asarray(intercept_init, dtype=float)
        if ii.size != k:
            raise ValueError(f"intercept_init has {ii.size} values; expected {k} (one per output).")
        theta[0] = ii.reshape(k)
    return theta


def loss_stalled(f: float, f_prev: float, best: float, tol: float, adaptive_schedule: bool) -> bool:
    """The stall test of stochastic descent (scikit-learn's rule), for one epoch. The 'adaptive' schedule counts
    any epoch that fails to beat the best loss by tol (and then divides the step by 5); otherwise the loss must
    have *settled*: changed by at most tol (relative). A rising loss is not settling. A stall ends a noisy run; it
    is not a claim of convergence (:class:`_StopRule` checks that)."""
    if adaptive_schedule:
        return f > best - tol * abs(best)
    return abs(f_prev - f) <= tol * abs(f_prev) or f == f_prev


def _choose_scaling(requested: Any, *, auto_lr: bool, named_optimizer: bool, d: int) -> tuple[bool, str]:
    """Whether the descent runs on standardized features, and why (the one place this is decided)."""
    if requested not in ("auto", True, False) or isinstance(requested, (int, float)) and not isinstance(
            requested, bool):
        raise ValueError(f"standardize must be 'auto', True or False, got {requested!r}.")
    if d == 0:
        return False, "no features to scale"
    if requested is False:
        return False, "standardize=False: the descent runs on the raw features"
    if requested is True:
        return True, "standardize=True"
    if not auto_lr or not named_optimizer:
        return False, ("an explicit learning rate is a step in the raw features' units, so the descent runs on them "
                       "(standardize='auto' standardizes only with learning_rate='auto')")
    return True, ("learning_rate='auto': the descent runs on centred, unit-variance features (as glmnet and glum "
                  "do), and reports everything in the original units")


class _NewtonCertificate:
    """The gap of a smooth convex loss whose optimum is not known (logistic, multinomial, Poisson), from the Newton
    decrement: F - F* = (1/2) g^T H^-1 g + O(|g|^3) near the minimiser (H the Hessian there).

    The first estimates use the curvature bound c X_b^T S X_b / n from the statistics (free, and at least the
    Hessian, so they never claim too early); once such an estimate is within tol, the Hessian is formed at the
    current point (one pass) and the claim is made only if the decrement with it is within tol too. A failed check
    keeps the fresh Hessian, and the next one waits for the estimate to fall 4x further, so a fit makes a handful of
    Hessian passes.
    """

    def __init__(self, hessian_at: Callable[[np.ndarray], np.ndarray], bound: np.ndarray | None):
        self.hessian_at = hessian_at
        self.factor = None if bound is None else self._factor(bound)
        self.fresh_at: np.ndarray | None = None
        self.wait_below = math.inf
        self.passes = 0

    @staticmethod
    def _factor(H: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per block: the eigen-decomposition of D H D with D = diag(H)^(-1/2) (Jacobi scaling: raw features of
        very different scales keep their digits; g^T H^-1 g = (D g)^T (D H D)^-1 (D g))."""
        blocks = H if H.ndim == 3 else H[None]
        out = []
        for B in blocks:
            diag = np.diag(B).copy()
            D = np.where(diag > 0, 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0)), 1.0)
            lam, V = np.linalg.eigh(0.5 * (B + B.T) * np.outer(D, D))
            out.append((lam, V, D))
        return out

    def decrement(self, g: np.ndarray) -> float:
        """(1/2) g^T H^+ g. A direction of (numerically) zero curvature counts only if the gradient has a part
        along it, and then the decrement is infinite (nothing can be certified): the softmax's common shift and
        a duplicated column are such directions, with no gradient along them."""
        if len(self.factor) == 1 and g.shape[1] > 1 and self.factor[0][1].shape[0] == g.size:
            cols = [g.ravel()]
        else:
            cols = [g[:, j] for j in range(g.shape[1])]
        total = 0.0
        for (lam, V, D), col in zip(self.factor, cols):
            c = V.T @ (D * col)
            floor = max(float(lam[-1]), 0.0) * 1e-12
            flat = lam <= floor
            if np.any(flat) and float(np.sum(c[flat] ** 2)) > 1e-20 * float(np.sum(c * c)):
                return math.inf
            total += 0.5 * float(np.sum(c[~flat] ** 2 / lam[~flat]))
        return total

    def certify(self, theta: np.ndarray, g: np.ndarray, f: float, tol: float) -> bool:
        # a gap below the rounding of F itself (a few dozen ulps) cannot be asked for: tol=0 means that floor
        target = max(tol, _MEASURED_ULPS * np.finfo(float).eps) * max(abs(f), np.finfo(float).tiny)
        if self.factor is None:
            self.factor = self._factor(self.hessian_at(theta))
            self.fresh_at, self.passes = theta.copy(), self.passes + 1
        est = self.decrement(g)
        if est > target:
            return False
        if self.fresh_at is not None and np.array_equal(self.fresh_at, theta):
            return True
        if est > self.wait_below:
            return False
        self.factor = self._factor(self.hessian_at(theta))
        self.fresh_at, self.passes = theta.copy(), self.passes + 1
        est = self.decrement(g)
        self.last = est
        if est <= target:
            return True
        self.wait_below = est / 4.0
        return False

    last: float = math.nan


class _StopRule:
    """When to stop, and whether that is convergence: decided here for every run.

    * The optimum known (the squared error without an L1 term, on statistics): converged when the gap itself is
      small, F - F* <= tol * max(|F*|, eps F_0) (tol is a relative objective gap: 1e-10 means ten digits of the
      minimum).
    * The squared error with an L1 term on a full-rank design: mu-strongly convex, so F - F* <= |G|^2 / (2 mu)
      for the proximal gradient mapping G; converged when that bound is within tol of the loss.
    * Otherwise (robust losses): converged when the first-order measure (the gradient's norm, or the proximal
      gradient mapping's with an L1 term) has fallen to tol of its start: no bound on the gap exists without a
      strong convexity constant, so the test is strict.
    * Mini-batches: the loss is noisy, so the run ends when it stalls (scikit-learn's rule, ``loss_stalled``) or
      at max_iter; it is called converged only if the test above holds at that point.
    * ``gtol``: also stop when the gradient norm falls to gtol times its start (a claim of convergence only if the
      gap, when known, is within tol as well).
    """

    def __init__(self, tol: float | None, gtol: float | None, optimum: float | None, f0: float, g0: float,
                 n_iter_no_change: int, adaptive_schedule: bool):
        self.tol, self.gtol, self.optimum = tol, gtol, optimum
        self.g0 = g0
        self.adaptive_schedule = adaptive_schedule
        self.n_iter_no_change = n_iter_no_change
        self.no_improve = 0
        self.gap_bound = None
        if tol is not None and optimum is not None:
            # a gap below the rounding of F itself (a few dozen ulps of F*) cannot be measured
            # (tol=0 asks for the floor itself: see full_batch_stop). A gap read off as F - F* cannot be known
            # better than the rounding of F, a few dozen ulps of the start's scale (an interpolating fit has
            # F* ~ 0, where tol x F* is below it); the gram source's exact gap is set later (exact_gap)
            self.gap_bound = 0.0 if tol == 0 else max(tol * abs(optimum),
                                                      _ROUNDING_ULPS * np.finfo(float).eps * abs(optimum),
                                                      _MEASURED_ULPS * np.finfo(float).eps * max(abs(f0),
                                                                                                 abs(optimum)))
            self._exact_bound = 0.0 if tol == 0 else max(tol * abs(optimum),
                                                         _ROUNDING_ULPS * np.finfo(float).eps * abs(optimum))
        # without the optimum: the first-order measure at tol of its start, unless a strong-convexity bound turns
        # it into a gap bound (set_strong_convexity)
        self.grad_bound = None if tol is None else tol * g0
        self.mu = None
        self.newton: _NewtonCertificate | None = None
        self.best = f0
        self.since_best = 0

    #: the gap of the last evaluation when the source measures it exactly (the gram source's error form)
    exact_gap: Callable[[], float] | None = None

    def measure_gap_exactly(self, gap_of: Callable[[], float]) -> None:
        """The source measures the gap itself (no rounding floor of F to allow for)."""
        self.exact_gap = gap_of
        if self.gap_bound is not None:
            self.gap_bound = self._exact_bound

    def gap(self, f: float) -> float:
        return self.exact_gap() if self.exact_gap is not None else f - self.optimum

    def set_strong_convexity(self, mu: float) -> None:
        """The objective is mu-strongly convex (the squared error with a full-rank design; an L1 term keeps it so):
        then F - F* <= |G|^2 / (2 mu) for the gradient mapping G, a bound on the gap itself."""
        if mu > 0 and math.isfinite(mu):
            self.mu = mu

    def gap_upper_bound(self, g_map: float) -> float:
        return g_map * g_map / (2.0 * self.mu)

    def certified(self, f: float, g_map: float, theta: np.ndarray | None = None, g: np.ndarray | None = None
                  ) -> bool:
        if self.gap_bound is not None:
            return self.gap(f) <= self.gap_bound
        if self.newton is not None and self.tol is not None and theta is not None:
            return self.newton.certify(theta, g, f, self.tol)
        if self.tol is not None and self.mu is not None:
            bound = self.gap_upper_bound(g_map)
            return bound <= self.tol * max(abs(f) - bound, 0.0)
        return self.grad_bound is not None and g_map <= self.grad_bound

    def certificate_text(self, f: float, g_map: float) -> str:
        if self.gap_bound is not None:
            return (f"the gap to the optimum {self.gap(f):.3g} is within tol={self.tol:g} of the minimum "
                    f"{self.optimum:.6g}")
        if self.newton is not None and math.isfinite(self.newton.last):
            return (f"the Newton decrement g^T H^-1 g / 2 = {self.newton.last:.3g}, the gap to the optimum to second "
                    f"order, is within tol={self.tol:g} of the loss")
        if self.mu is not None:
            return (f"the gap to the optimum is at most |G|^2/(2 mu) = {self.gap_upper_bound(g_map):.3g}, within "
                    f"tol={self.tol:g} of the loss (strong convexity mu = {self.mu:.3g})")
        return f"the gradient norm {g_map:.3g} fell to tol = {self.tol:g} of its start {self.g0:.3g}"

    def full_batch_stop(self, f: float, g_map: float, g_norm: float, theta: np.ndarray | None = None,
                        g: np.ndarray | None = None) -> tuple[bool, bool, str]:
        """(stop, converged, message) after a full-batch iteration."""
        if self.tol is not None and self.certified(f, g_map, theta, g):
            return True, True, "converged: " + self.certificate_text(f, g_map)
        if f < self.best:
            self.best, self.since_best = f, 0
        else:
            self.since_best += 1
        if (self.gap_bound is not None and self.since_best >= _NO_PROGRESS_ITERATIONS
                and self.gap(f) <= _FLOOR_ULPS * np.finfo(float).eps * abs(self.optimum)):
            # the loss has not decreased for a while and its gap is within F's own rounding: that is the floor
            return True, True, (f"converged: the gap to the optimum {f - self.optimum:.3g} is at the rounding "
                                f"floor of the loss (it has not decreased for {_NO_PROGRESS_ITERATIONS} iterations)")
        if self.gtol is not None and g_norm <= self.gtol * self.g0:
            text = f"gradient norm {g_norm:.3g} <= gtol * initial ({self.gtol:g} x {self.g0:.3g})"
            if self.tol is None or self.gap_bound is None:
                return True, True, "converged: " + text
            return True, False, (f"stopped: {text}, but the gap to the optimum {self.gap(f):.3g} is above "
                                 f"tol x minimum = {self.gap_bound:.3g}")
        return False, False, ""

    def stall(self, f: float, f_prev: float, best: float) -> bool:
        """Count one (mini-batch) epoch; True once the loss has stalled for n_iter_no_change epochs in a row."""
        if self.tol is None:
            return False
        self.no_improve = self.no_improve + 1 if loss_stalled(f, f_prev, best, self.tol, self.adaptive_schedule) \
            else 0
        if self.no_improve >= self.n_iter_no_change:
            self.no_improve = 0
            return True
        return False


def _is_diverging(f: float, f0: float, rising: int, expect_stable: bool) -> bool:
    """Divergence: a non-finite or exploded loss; or a loss rising for 10 iterations to 10x its start, unless the
    theory says these constant parameters converge on this quadratic (heavy ball's transients rise, then fall)."""
    if not math.isfinite(f) or f > 1e8 * (f0 if f0 > 0 else 1.0):
        return True
    return not expect_stable and rising >= 10 and f > 10 * f0 and f > 0


def collinear(stats: Any, fit_intercept: bool) -> bool:
    """Whether the design is (numerically) rank deficient once scaled: a constant column beside the intercept, a
    duplicated column, one-hot columns beside the intercept, more features than rows. Judged on the correlation-scaled statistics, as closed_form
    judges rank, so that mere differences of units do not count."""
    if stats is None or stats.n_features == 0 or not stats.n > 0:
        return False
    mx = stats.mean_x
    A = stats.cxx if fit_intercept else stats.cxx + stats.n * np.outer(mx, mx)
    s = np.sqrt(np.diag(A))
    s[~(s > 0)] = 1.0
    eig = np.linalg.eigvalsh(A / np.outer(s, s))
    if fit_intercept and np.any(np.diag(A) == 0):
        return True  # a constant column is the intercept's copy
    return bool(eig[-1] > 0 and np.sum(eig > eig[-1] * stats.n_features * 1e-13) < stats.n_features)


def _feature_facts(stats: Any, fit_intercept: bool) -> tuple[float, list[int]]:
    """(spread of the feature scales max/min, indices of constant columns) from the raw statistics."""
    if stats is None or stats.n_features == 0 or not stats.n > 0:
        return 1.0, []
    sd = np.sqrt(np.maximum(np.diag(stats.cxx) / stats.n, 0))
    if not fit_intercept:
        sd = np.sqrt(sd**2 + stats.mean_x**2)
    const = [int(j) for j in np.flatnonzero(sd == 0)] if fit_intercept else []
    pos = sd[sd > 0]
    spread = float(pos.max() / pos.min()) if pos.size >= 2 else 1.0
    return spread, const


def _diagnose(*, raw_stats: Any, curv: Curvature | None, fit_intercept: bool, standardized: bool, f: float,
              optimum: float | None, tol: float | None, n_iter: int, rate: float | None, quadratic: bool,
              explicit_step: bool, l1: bool, eta: float | None = None, loss_curvature: float = 2.0,
              l2: float = 0.0, max_iter: int | None = None, diverged: bool = False,
              replan: Callable[[int], float] | None = None, newton_for: str | None = None) -> Diagnosis:
    """Why a full run ended away from the optimum, and what would get there (each remedy checked by theory)."""
    reasons: list[str] = []
    remedies: list[tuple[str, Any]] = []
    spread, const = _feature_facts(raw_stats, fit_intercept)
    if spread > 100 and not standardized:
        reasons.append(f"the feature scales spread by {spread:.2g}x")
    if curv is not None and curv.mu_known and math.isfinite(curv.condition_number) and curv.condition_number > 1e3:
        where = "standardized " if standardized else ""
        reasons.append(f"the {where}problem's condition number is {curv.condition_number:.2g}")
    if explicit_step and eta is not None and curv is not None and math.isfinite(curv.stable_step) and (
            eta >= curv.stable_step):
        e, two_l = format_distinct(eta, curv.stable_step, max_digits=6)
        reasons.append(f"the learning rate {e} is above the stable bound 2/L = {two_l}")
    if const:
        reasons.append(f"feature(s) {', '.join(map(str, const[:5]))} are constant")
    if (collinear(raw_stats, fit_intercept) and not const) if raw_stats is not None else (
            curv is not None and curv.rank_deficient):
        reasons.append("the features are collinear (mu = 0: a duplicated column, or one-hot columns beside the "
                       "intercept)")
    if not standardized and raw_stats is not None and (spread > 100 or reasons):
        # a claim that the fix works: with an explicit constant step, standardizing helps only if that step is
        # stable on the standardized problem (otherwise learning_rate='auto' standardizes and picks the step)
        ok = not explicit_step
        if explicit_step and eta is not None and raw_stats.n_features > 0:
            sc = Scaling.from_stats(raw_stats, fit_intercept)
            sc_curv = curvature_from_stats(sc.transform_stats(raw_stats), fit_intercept, loss_curvature,
                                           l2 / sc.scale**2)
            r = sc_curv.rate(eta)
            need = math.inf if r >= 1 else (1.0 if r == 0 else math.log(tol or 1e-10) / (2.0 * math.log(r)))
            # a divergence is fixed once the step is stable; a slow fit only if it then finishes in the budget
            # (predicted by the quadratic's rate; for other losses the bound's rate is no promise, so stability)
            ok = r < 1 if diverged or not quadratic else need <= max(max_iter or n_iter, 1)
        if ok:
            remedies.append(("standardize", True))
    gap_text = ""
    if optimum is not None:
        ratio = f / optimum if optimum > 0 else math.inf
        shown = format_distinct(f, optimum, digits=6)[1]
        gap_text = (f"{ratio:.3g}x the minimum {shown}" if ratio < 1e6 and ratio >= 1.01
                    else f"{f - optimum:.3g} above the minimum {shown}")
        target = 0.0 if tol is None else tol * max(abs(optimum), np.finfo(float).eps * abs(f))
        if quadratic and rate is not None and 0 < rate < 1 and target > 0 and f > optimum:
            total = None
            if replan is not None:  # 'auto' plans its step for the budget: find a budget its own plan finishes
                total = _budget_that_finishes(replan, target)
            else:  # an explicit constant step: the rerun takes the same path, at the theory's worst-case rate
                more = math.log(target / (f - optimum)) / (2.0 * math.log(rate))
                total = int(math.ceil(1.2 * (n_iter + max(more, 0.0)))) + 10
            if total is not None and total <= 10_000_000:
                remedies.append(("max_iter", total))
        if not l1:
            remedies.append(("solver", "closed_form"))
    if explicit_step and (not quadratic or not any(k == "standardize" for k, _ in remedies)):
        remedies.insert(0, ("learning_rate", "auto"))
    if newton_for is not None and not diverged:
        # a smooth convex loss with few parameters: Newton's steps use the Hessian itself, whatever the
        # condition number (gdlab.solvers.newton certifies its own result)
        remedies.append(("method", newton_for))  # 'auto' standardizes and plans the step for the budget
    return Diagnosis("; ".join(reasons), tuple(remedies), gap_text)


def _budget_that_finishes(predicted_gap: Callable[[int], float], target: float) -> int | None:
    """The smallest budget T (to 10%) whose own plan finishes: the theory's gap after T iterations with the step
    planned for T is at most the target (a doubling search, then bisection)."""
    if not target > 0:
        return None
    lo, hi = 1, 100
    while predicted_gap(hi) > target:
        lo, hi = hi, 2 * hi
        if hi > 10_000_000:
            return None
    while hi - lo > max(1, hi // 20):
        mid = (lo + hi) // 2
        if predicted_gap(mid) <= target:
            hi = mid
        else:
            lo = mid
    return int(math.ceil(1.1 * hi)) + 10


def _divergence_text(iteration: int, loss: float, eta: float, curv: Curvature | None, optimizer: str,
                     auto_text: str | None, diagnosis: Diagnosis, loss_curvature: float = 2.0,
                     quadratic: bool = True, bounded: bool = True) -> str:
    grew = "became non-finite" if not math.isfinite(loss) else f"grew to {loss:.3g}"
    text = f"gradient descent ({optimizer}) diverged at iteration {iteration}: the loss {grew}."
    if auto_text is not None:
        text += f" learning_rate='auto' chose {auto_text}; please report this as a bug."
    elif curv is not None and math.isfinite(curv.stable_step) and not bounded:
        # (Poisson: exp(eta) has no global bound; L is the curvature at the start, which the descent left behind)
        e, two_l = format_distinct(eta, curv.stable_step, max_digits=6)
        text += (f" The loss's curvature has no global bound: 2/L = {two_l} is the stable step at the start only "
                 f"(L = {curv.L:.4g}, from the Hessian there), and the learning rate {e} met a steeper curvature "
                 "further on; use a smaller learning rate, or "
                 + ("learning_rate='auto'" if optimizer == "gd" else "optimizer='gd' with learning_rate='auto'")
                 + ", which backtracks.")
    elif curv is not None and math.isfinite(curv.stable_step):
        where = "above" if eta >= curv.stable_step else "below"
        e, two_l, best = format_distinct(eta, curv.stable_step, curv.best_step, max_digits=6)
        best_text = (f"e.g. the best constant step 2/(L+mu) = {best}" if best != two_l else
                     "e.g. 1/L (2/(L+mu) is 2/L to six digits here: mu is tiny)")
        text += (f" The learning rate {e} is {where} the stable bound 2/L = {two_l} "
                 f"(L = {curv.L:.4g} is the largest eigenvalue of "
                 + ("the Hessian (2/m) X_b^T X_b" if quadratic else
                    f"({format_distinct(loss_curvature)[0]}/m) X_b^T X_b, a bound on the Hessian")
                 + f"); use a learning rate "
                 f"below {two_l}, {best_text}, or learning_rate='auto'.")
    else:
        text += f" The learning rate {eta:.4g} is too large; use a smaller one, or learning_rate='auto'."
    if diagnosis.reason:
        text += f" ({diagnosis.reason}.)"
    if any(key == "standardize" for key, _ in diagnosis.remedies):
        text += (" Standardize the features: standardize=True runs the descent on centred, unit-variance features "
                 "(or scale them yourself with sklearn.preprocessing.StandardScaler).")
    return text


def descend(
    X: Any,
    y: Any = None,
    *,
    optimizer: str | Optimizer = "gd",
    learning_rate: Any = "auto",
    max_iter: int = 1000,
    tol: float | None = 1e-10,
    n_iter_no_change: int = 5,
    gtol: float | None = None,
    batch_size: int | None = None,
    shuffle: bool = True,
    random_state: int | np.random.Generator | None = None,
    fit_intercept: bool = True,
    coef_init: Any = None,
    intercept_init: Any = None,
    sample_weight: Any = None,
    loss: str | Loss = "squared_error",
    epsilon: float = 0.1,
    penalty: str | None = None,
    alpha: float = 0.0001,
    l1_ratio: float = 0.15,
    source: str | Any = "auto",
    standardize: bool | str = "auto",
    average: bool | int | str = "auto",
    engine: str = "auto",
    state: DescentState | None = None,
    line_search: bool = False,
    record_every: int = 1,
    max_records: int | None = 100_000,
    track_gap: bool | None = None,
    callback: Callable[[IterationInfo], bool | None] | None = None,
    warn: bool = True,
    **optimizer_params: Any,
) -> Result:
    """Fit a linear model by gradient descent and return the whole story.

    Minimises F(w, b) = (1/n) sum_i s_i loss(x_i . w + b - y_i) + penalty(w); for the default squared error this is
    the workshop's MSE, with gradient (2/m) X_b^T (X_b w - y).

    Parameters
    ----------
    X : (m, d) array-like or scipy.sparse matrix/array (never densified: the statistics, passes and mini-batches
        read its stored entries), or a source object (``gdlab.sources``) with y=None.
    y : (m,) or (m, k) targets (k outputs are fitted side by side, one objective each).
    optimizer : "gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", or an :class:`Optimizer`.
        Extra keyword arguments (``beta``, ``beta1``, ``beta2``, ``decay``, ``eps``) go to it.
    learning_rate : a positive number, a schedule (a function of the step, see ``gdlab.schedules``), a schedule
        name, or "auto" (:func:`gdlab.curvature.auto_parameters`): 2/(L + mu_eff) for gd, Polyak's heavy ball
        for momentum, 1/L with (sqrt k - 1)/(sqrt k + 1) for nesterov, a fraction of the target's spread for
        adagrad, rmsprop and adam; mu_eff is mu, raised to what the budget of max_iter iterations can use.
    max_iter : iterations, i.e. epochs (full passes over the data); with full batches one update each.
    tol : the relative objective gap to reach: converged when F - F* <= tol * |F*| (the optimum F* is known for
        the squared error without an L1 term); with an L1 term, when the strong-convexity bound |G|^2/(2 mu) on
        the gap (G the proximal gradient mapping) is within tol of the loss; for the robust losses, when the
        gradient norm falls to tol of its start. With mini-batches the run also ends when the loss stalls
        (changes by at most tol, relative, for ``n_iter_no_change`` epochs), and is called converged only if the
        test above holds then. None: never stop early, and no ConvergenceWarning (the workshop's fixed budget).
    gtol : also stop when the gradient norm falls to ``gtol`` times its start (None, the default: never).
    batch_size : None (full batch, the default), k (mini-batches of k rows) or 1 (stochastic); rows are reshuffled
        each epoch by a generator seeded with ``random_state``. A batch_size of m or more is the full batch.
    fit_intercept, coef_init, intercept_init, sample_weight : the model and its starting point (default zeros;
        with standardization the intercept starts at the best one for zero slopes, the target's mean).
    loss, epsilon : "squared_error" (the workshop's), "huber", "epsilon_insensitive", "squared_epsilon_insensitive".
    penalty, alpha, l1_ratio : None, "l2", "l1", "elasticnet" (scikit-learn's convention, intercept never
        penalised); L1 parts are applied by their proximal step, so exact zeros appear.
    source : "auto" (a cost model chooses; the Result says which and why), "memory", "gram", or a source object.
    standardize : "auto" (the default: True with learning_rate="auto", False with an explicit learning rate,
        whose step is in the raw features' units), True or False. True runs the descent on centred features of
        unit variance (without an intercept: unit root mean square), from the statistics the fit forms anyway;
        coefficients, intercept, trajectory and losses are reported in the original units, and the objective (the
        penalty included) is the original one. ``Result.scaling`` says which was used and why.
    average : "auto" (the default: for mini-batches with learning_rate="auto" and gd, momentum or nesterov, whose
        'auto' step is then the constant 1/(2 L_B), the mean from half an epoch on, k = ceil(m / (2 batch_size));
        else False), False, True or k: averaged descent
        (Polyak-Ruppert, scikit-learn's ``average``): the returned coefficients (and ``Result.loss``) are the mean
        of the iterates after update k (True = 1); the trajectory keeps the iterates; with mini-batches the stall
        test and the convergence claim are about the averaged iterate.
    engine : how mini-batch epochs run: "auto" (the compiled kernel for every optimizer with a coordinate rule (all
        the named ones), every loss that does not couple its outputs, raw or standardized rows in memory (dense, or
        a sparse X's stored entries) and every schedule with a scalar form (all of gdlab.schedules'); else NumPy;
        ``Result.extra["engine"]`` says which and why), "numpy" or "compiled".
    state : a :class:`~gdlab.engines.DescentState` from an earlier run's ``Result.extra["state"]``: go on from
        there (the optimizer's state, the schedule's step counter, the averaged iterate, the stall counter); the
        parameters themselves come from coef_init/intercept_init.
    line_search : Armijo backtracking (halving from the scheduled step) for optimizer="gd" with full batches.
    record_every, max_records : keep every k-th iterate; past max_records the kept ones are thinned to stay
        within bounds (the stride doubles).
    track_gap : record loss_t - loss* (default: when the optimum is cheap to know: squared loss, no L1).
    callback : called after each iteration with an :class:`IterationInfo`; returning True stops the run.
    warn : emit ConvergenceWarning/DivergenceWarning (set False when the caller reports the status itself).

    Returns
    -------
    Result
    """
    t_start = time.perf_counter()
    # ---- settings ------------------------------------------------------------------------------------------
    opt_name = optimizer.name if isinstance(optimizer, Optimizer) else optimizer
    if not isinstance(optimizer, Optimizer):
        check_choice("optimizer", optimizer, tuple(OPTIMIZERS))
    max_iter = check_positive("max_iter", max_iter, integer=True)
    if tol is not None:
        tol = check_positive("tol", tol, allow_zero=True)
    if gtol is not None:
        gtol = check_positive("gtol", gtol, allow_zero=True)
    n_iter_no_change = check_positive("n_iter_no_change", n_iter_no_change, integer=True)
    record_every = check_positive("record_every", record_every, integer=True)
    loss_obj = get_loss(loss, epsilon)
    pen = make_penalty(penalty, alpha, l1_ratio)
    auto_lr = isinstance(learning_rate, str) and learning_rate == "auto"
    if not auto_lr and not callable(learning_rate) and not isinstance(learning_rate, str):
        check_positive("learning_rate", learning_rate)
    if line_search and opt_name != "gd":
        raise ValueError(f"line_search=True is defined for optimizer='gd' (got {opt_name!r}); "
                         "drop line_search or use optimizer='gd'.")

    # ---- data and source (in the user's coordinates) ----------------------------------------------------------
    single = True
    mem: MemorySource | None = None
    if hasattr(X, "value_and_grad") and y is None:
        src_obj = X
        m, d, k = src_obj.n_samples, src_obj.n_features, src_obj.n_outputs
        single = getattr(src_obj, "single_output", k == 1)
        source_name, source_reason = src_obj.name, "given"
        fit_intercept = src_obj.fit_intercept
        src_loss = getattr(src_obj, "loss", None) or get_loss("squared_error")
        if isinstance(loss, str) and loss == "squared_error":
            loss_obj = src_loss  # the source's own loss, unless the caller asked for another
        elif loss_obj != src_loss:
            raise ValueError(
                f"loss={loss_obj!r} differs from the loss the {src_obj.name!r} source computes ({src_loss!r}); "
                "open the source with the loss you want (gdlab.scale.open_source(..., loss=...)) and leave "
                "descend's loss at its default.")
        if sample_weight is not None:
            raise ValueError(f"sample_weight cannot be given with a {src_obj.name!r} source object: weights belong "
                             "to the data; pass arrays (descend(X, y, sample_weight=...)) instead.")
        full = batch_size is None or batch_size >= m
        scaled, scaling_reason = _choose_scaling(standardize, auto_lr=auto_lr,
                                                 named_optimizer=not isinstance(optimizer, Optimizer), d=d)
        if scaled and not hasattr(src_obj, "gram_stats"):
            if standardize is True:
                raise ValueError(f"standardize=True needs the means and spreads of the features, which the "
                                 f"{src_obj.name!r} source does not provide; standardize the data first or pass "
                                 "standardize=False.")
            scaled, scaling_reason = False, f"the {src_obj.name!r} source has no statistics to standardize with"
    else:
        if y is None:
            raise ValueError("y is missing: pass the targets, descend(X, y), or a source object as X.")
        check_choice("source", source, SOURCES)
        Xa = as_matrix(X, check_finite=False, accept_sparse=True)
        Y, single = read_target(y, Xa.shape[0], loss_obj)
        m, d = Xa.shape
        k = Y.shape[1]
        sw = as_sample_weight(sample_weight, m)
        full = batch_size is None or batch_size >= m
        scaled, scaling_reason = _choose_scaling(standardize, auto_lr=auto_lr,
                                                 named_optimizer=not isinstance(optimizer, Optimizer), d=d)
        source_name, source_reason = _choose_source(source, loss_obj, full, m, d, max_iter, standardize=scaled)
        mem = MemorySource(Xa, Y, sw, loss_obj, fit_intercept)
        if source_name == "gram":
            src_obj = GramSource(mem.gram_stats(), fit_intercept)  # the pass also checks X for NaN/inf
        else:
            from gdlab._validation import _all_finite, _nonfinite_error

            if isinstance(Xa, np.ndarray) and not _all_finite(Xa):  # (a sparse X was checked as it was read)
                raise _nonfinite_error("X", Xa)
            src_obj = mem
    if d == 0 and not fit_intercept:
        raise ValueError("X has no features and fit_intercept=False: there is nothing to fit. "
                         "Pass at least one feature or set fit_intercept=True.")
    if batch_size is not None:
        batch_size = check_positive("batch_size", batch_size, integer=True)
        if batch_size > m:
            raise ValueError(f"batch_size={batch_size} is larger than the number of samples m={m}; "
                             f"use batch_size <= {m}, or batch_size=None for full-batch descent.")
    full_batch = batch_size is None or batch_size >= m
    if not full_batch and not getattr(src_obj, "supports_batches", False):
        raise ValueError(f"source {source_name!r} cannot draw mini-batches; use source='memory' or a streaming source.")
    if line_search and not full_batch:
        raise ValueError("line_search=True needs full batches (batch_size=None).")
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)

    # ---- statistics, coordinates and curvature ---------------------------------------------------------------
    p = d + (1 if fit_intercept else 0)
    stats = None
    if hasattr(src_obj, "gram_stats") and p <= _MAX_STATS_PARAMETERS and (
            source_name == "gram" or scaled or p <= 64 * max_iter):
        stats = src_obj.gram_stats()
    scaling: Scaling | None = None
    if scaled:
        if stats is not None:
            scaling = Scaling.from_stats(stats, fit_intercept)
        elif mem is not None:  # wide data: the column moments alone (the d x d statistics are not formed)
            scaling = Scaling.from_columns(mem.X, mem.sample_weight, fit_intercept)
        else:
            scaled, scaling_reason = False, f"{p} parameters: too many for the {source_name!r} source's statistics"
    if (scaling is not None and auto_lr and full_batch and not loss_obj.quadratic and loss_obj.curvature
            and pen.l2 and not pen.l1):
        # a ridge term on the user's w: equal curvature per coordinate, penalty included (Scaling.with_ridge);
        # (an explicit step, and mini-batches, keep unit-variance coordinates, in which their steps are read)
        scaling = scaling.with_ridge(pen.l2, loss_obj.curvature)
    quadratic = loss_obj.quadratic
    stats_d = stats if scaling is None or stats is None else scaling.transform_stats(stats)
    l2_d: Any = pen.l2 if scaling is None else pen.l2 / scaling.scale**2
    # a ridge term on statistics joins the source's error form (exact near the optimum); the loop adds no penalty
    fold_l2 = bool(pen.l2) and not pen.l1 and quadratic and full_batch and stats_d is not None and (
        scaling is not None or isinstance(src_obj, GramSource))
    if scaling is None and not fold_l2:
        src_d = src_obj
    elif quadratic and full_batch and stats_d is not None:
        # the (standardized) problem straight from the statistics
        src_d = GramSource(stats_d, fit_intercept, l2=l2_d if fold_l2 else 0.0)
    else:
        src_d = ScaledSource(src_obj, scaling)
    # ---- starting point (the user's coordinates, then the descent's) -----------------------------------------
    theta = initial_parameters(coef_init, intercept_init, d, k, fit_intercept)
    if intercept_init is None and scaling is not None and fit_intercept and stats is not None and stats.n > 0:
        # the best intercept for the starting slopes (glmnet's null model): for the squared error centring
        # decouples it (the target's mean less the slopes' share); for the other losses, with zero slopes
        if quadratic:
            theta[0] = stats.mean_y - stats.mean_x @ theta[1:]
        elif coef_init is None:
            null = loss_obj.null_intercept_from_mean(stats.mean_y)
            if null is not None:
                theta[0] = null
    theta_start_user = theta.copy()
    if scaling is not None:
        theta = scaling.to_descent(theta)
    smooth_c = loss_obj.curvature
    curv: Curvature | None = None
    raw_curv: Curvature | None = None
    smooth = loss_obj.smooth
    if smooth_c is not None:
        c_eff = smooth_c
    elif smooth:  # no global bound (Poisson's exp(eta)): the curvature met at the start
        c_eff = _start_curvature(loss_obj, mem, theta_start_user, fit_intercept, stats)
    else:
        c_eff = 1.0  # a non-smooth loss: the scale of its smooth part
    if stats_d is not None:
        curv = curvature_from_stats(stats_d, fit_intercept, c_eff, l2_d)
        raw_curv = curv if scaling is None else curvature_from_stats(stats, fit_intercept, c_eff, pen.l2)
    elif auto_lr and mem is not None and not isinstance(optimizer, Optimizer) and opt_name in (
            "gd", "momentum", "nesterov"):
        curv = _lanczos_curvature(mem, scaling, fit_intercept, c_eff, l2_d)
    if not smooth and curv is not None:
        curv_report = None  # a non-smooth loss has no curvature to report (the step uses its smooth scale)
    else:
        curv_report = curv

    optimum_loss = None
    if track_gap is None:
        track_gap = quadratic and not pen.l1 and stats is not None
    if track_gap:
        if stats is None or not quadratic or pen.l1:
            raise ValueError("track_gap=True needs the squared error without an L1 penalty (the optimum is then "
                             "known exactly).")
        from gdlab.closed_form import closed_form_from_stats
        from gdlab.exceptions import RankDeficiencyWarning

        # the gram source solves for the optimum itself (its error form): reuse it rather than solve again
        ef = (src_d._error_form() if isinstance(src_d, GramSource) and src_d.fit_intercept == fit_intercept
              and (not pen.l2 or fold_l2) else None)
        if ef is not None:
            optimum_loss = ef[2]
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RankDeficiencyWarning)
                optimum_loss = closed_form_from_stats(stats, fit_intercept=fit_intercept, l2=pen.l2,
                                                      curvature=raw_curv if smooth_c == 2.0 else None).loss


    # stochastic 'auto' (gd, momentum, nesterov): a constant step 1/(2 L_B) with the iterates averaged
    # (Polyak-Ruppert; Bach & Moulines 2013: for least squares it reaches the statistical rate O(1/n) without a
    # decaying step, and it only improves with more epochs), the fit returning the average
    if isinstance(average, str):
        if average != "auto":
            raise ValueError(f"average must be 'auto', True, False or a positive integer, got {average!r}.")
        average = bool(auto_lr and not full_batch and not isinstance(optimizer, Optimizer)
                       and opt_name in ("gd", "momentum", "nesterov"))
        if average:
            # tail averaging (Jain et al. 2018): the mean from the second half of the first epoch on, so that the
            # start's transient is not averaged in (from update 1 on, 400 rows x 10 epochs ended 2.4e-2 above the
            # minimum, SGDRegressor's defaults 1.9e-4; from half an epoch on 4.5e-5)
            average = max(1, math.ceil(m / (2 * min(int(batch_size), m))))
    # full-batch 'auto' gd, every smooth loss: a constant step is held back by the worst curvature (the largest
    # eigenvalue; for logistic, softmax and Poisson the bound is the Hessian's worst case, often several times the
    # curvature met near the optimum), so the slow directions crawl at 1 - mu/L per iteration (raw diabetes: over
    # 2000 iterations). 'auto' gd starts from the planned step, then steps by Barzilai-Borwein (the inverse of the
    # curvature met along the last step, the adaptive rule's choice of the long and the short one) under a nonmonotone
    # sufficient-decrease test, backtracking by halves (never below 1/L). Every update is still w - eta_t grad F(w):
    # only the step varies. Raw diabetes converges in 97 iterations (2430); breast cancer's log-loss in 2259 (66425).
    auto_line_search = (auto_lr and smooth and full_batch and opt_name == "gd"
                        and not isinstance(optimizer, Optimizer) and not line_search)
    line_search = line_search or auto_line_search

    # ---- optimizer --------------------------------------------------------------------------------------------
    auto_text: str | None = None
    budget_plan = None
    if isinstance(optimizer, Optimizer):
        opt = optimizer
    else:
        lr = learning_rate
        params = dict(optimizer_params)
        if auto_lr and not full_batch and opt_name in ("gd", "momentum", "nesterov"):
            lr, why = _stochastic_auto_step(curv, mem, scaling, fit_intercept, c_eff, l2_d, m, batch_size,
                                            opt_name, params, smooth, averaged=bool(average))
        elif auto_lr:
            if opt_name in _AUTO_FALLBACK_STEP and scaling is None:
                lr, why = _AUTO_FALLBACK_STEP[opt_name], "its raw-coordinate default"
            else:
                spread = 1.0
                if stats_d is not None and stats_d.n > 0 and stats_d.n_outputs:
                    spread = float(np.sqrt(np.max(np.diag(stats_d.cyy)) / stats_d.n)) or 1.0
                budget_plan = _budget_plan(src_d, theta, opt_name, quadratic, full_batch, fold_l2 or not pen.active)
                lr, auto_params, why = auto_parameters(curv, opt_name, max_iter=max_iter, tol=tol,
                                                       target_scale=spread, smooth=smooth,
                                                       error_weights=budget_plan)
                power = auto_params.pop("decay_power", None)
                if power is not None:
                    lr = invscaling(float(lr), power)
                for key, value in auto_params.items():
                    params.setdefault(key, value)
            if not callable(lr) and not math.isfinite(lr):
                lr = 1.0
            if not smooth and opt_name in ("gd", "momentum", "nesterov") and not callable(lr):
                lr = invscaling(float(lr), 0.5)  # a subgradient method needs a decaying step
        if auto_lr:
            shown = ", ".join([f"learning rate {float(getattr(lr, 'eta0', lr)):.6g}"]
                              + [f"{key} {value:.6g}" for key, value in params.items()
                                 if isinstance(value, float)])
            if auto_line_search:
                why += ("; then each iteration steps by Barzilai-Borwein (the inverse of the curvature met along the "
                        "last step) and backtracks under a nonmonotone sufficient-decrease test"
                        + ("" if smooth_c is None or curv is None or not curv.L > 0 else
                           f", never below 1/L = {1.0 / curv.L:.6g}"))
            auto_text = f"{shown} ({why})"
        opt = make_optimizer(optimizer, lr, **params)
    schedule = opt.learning_rate
    is_adaptive = isinstance(schedule, adaptive)

    problem = _Problem(src_d, Penalty() if fold_l2 else pen, fit_intercept,
                       None if scaling is None else scaling.scale)
    recorder = TrajectoryRecorder(record_every, max_records)
    off = problem.off
    to_user = (lambda th: th) if scaling is None else scaling.to_user
    user_grad_norm = ((lambda g, n: n) if scaling is None
                      else (lambda g, n: math.sqrt(float(np.vdot(gu := scaling.grad_to_user(g), gu)))))

    def unpack(th: np.ndarray) -> tuple[np.ndarray, Any]:
        thu = to_user(th)
        W = thu[off:]
        b = thu[0] if fit_intercept else np.zeros(k)
        if single:
            return W[:, 0].copy(), (float(b[0]) if fit_intercept else 0.0)
        return W.copy(), b.copy()

    f, g = problem.value_and_grad(theta)
    if not math.isfinite(f):
        raise ValueError("the loss at the starting point is not finite; check coef_init/intercept_init and the data.")
    eta0_value = float(schedule(0 if state is None else int(state.t)))
    check_step(eta0_value, 0 if state is None else int(state.t))
    g_norm = math.sqrt(float(np.vdot(g, g)))
    has_prox = bool(pen.l1)
    g_map = problem.gradient_mapping_norm(theta, g, eta0_value) if has_prox else g_norm
    f0 = f
    eta_scale = 1.0  # the 'adaptive' schedule's divisions by 5
    t = 0  # updates made
    recorder.add(0, theta, f, user_grad_norm(g, g_norm), math.nan)

    stop_rule = _StopRule(tol, gtol, optimum_loss, f0, g_map, n_iter_no_change, is_adaptive)
    if optimum_loss is None and quadratic and curv is not None and curv.mu_known and not curv.rank_deficient:
        stop_rule.set_strong_convexity(curv.mu)  # (an L1 term: the optimum is not known, but the gap is bounded)
    if (optimum_loss is None and smooth and not quadratic and not has_prox and hasattr(src_d, "hessian")
            and p * (k if loss_obj.coupled else 1) <= _MAX_STATS_PARAMETERS):
        stop_rule.newton = _NewtonCertificate(
            _hessian_function(src_d, fit_intercept, l2_d),
            _bound_hessian(stats_d, fit_intercept, c_eff, l2_d, k, loss_obj.coupled))
    if (isinstance(src_d, GramSource) and problem.evaluate == src_d.packed_value_and_grad
            and src_d._error_form() is not None and optimum_loss is not None):
        stop_rule.measure_gap_exactly(lambda: src_d.last_gap)
    beta_used = float(opt.hyperparameters.get("beta", 0.0)) if isinstance(opt.hyperparameters, dict) else 0.0
    rate = None
    if curv is not None and quadratic and isinstance(schedule, constant) and opt.name in ("gd", "momentum",
                                                                                         "nesterov"):
        rate = curv.spectral_radius(schedule.eta0, opt.name, beta_used)
    expect_stable = full_batch and rate is not None and rate < 1.0 and not line_search

    engine_name, engine_reason = choose_engine(engine, full_batch=full_batch, optimizer=opt, source=src_d,
                                               scaled=scaling is not None, loss=loss_obj, schedule=schedule,
                                               penalty=pen, average=average)
    if engine_name == "compiled":
        epochs: Any = CompiledEpochs(src_d if scaling is None else src_d.source, fit_intercept, loss_obj, pen,
                                     schedule, opt, batch_size, rng, shuffle, scaling=scaling)
    elif engine_name == "numpy":
        epochs = NumpyEpochs(problem, src_d, batch_size, rng, shuffle, schedule, opt.direction.update)
    else:
        epochs = None
    avg = Averager(-1 if average is False or average is None else max(int(average), 1) - 1)
    if state is not None:  # go on from an earlier run
        if state.engine and state.engine != engine_name:
            raise ValueError(f"state comes from a run with the {state.engine!r} engine, not {engine_name!r}; "
                             "continue with the same settings.")
        t, eta_scale = int(state.t), float(state.eta_scale)
        stop_rule.no_improve = state.no_improve
        if state.average is not None and avg.active:
            avg.theta, avg.n = state.average.copy(), int(state.n_averaged)
    t_begin = t
    best = f_prev = f
    # the log-loss and the softmax without a penalty: separated classes leave them with no minimiser
    check_separation = loss_obj.unbounded_when_separable and not pen.active and mem is not None
    separation = -math.inf
    if state is not None and math.isfinite(state.best):
        best = min(best, state.best)
    rising = 0
    status, message = 1, f"max_iter={max_iter} reached"
    converged = diverged = False
    n_iter = 0
    if state is not None and state.opt_state is not None:
        opt_state = state.opt_state
    else:
        opt_state = opt.direction.init(theta) if epochs is None else epochs.init_state(theta, opt.direction.init)
    eta = schedule(t) * eta_scale

    f_avg = f_avg_prev = f_avg_best = math.inf  # the averaged iterate's loss (mini-batches with averaging)
    eta_accepted: float | None = None  # the line search's last accepted step
    # 'auto''s search: with a global curvature bound L the step never goes below 1/L, where the sufficient-decrease
    # condition holds in exact arithmetic; and a loss evaluated from the rows is compared with a few ulps of slack
    ls_floor = (1.0 / curv.L if auto_line_search and smooth_c is not None and curv is not None and curv.L > 0
                else 0.0)
    ls_slack = 16 * np.finfo(float).eps if auto_line_search else 0.0
    # the longest secant step: 1/mu_+ where the spectrum is known (a quadratic on statistics: a Rayleigh quotient
    # never exceeds it, so a longer one only moves along directions of zero curvature, which rounding puts into the
    # gradient; on a perfect fit with a duplicated column such steps left the rows' MSE 3e-13 while the statistics'
    # error form read 0), else 1e6/L
    bb_cap = math.inf
    if auto_line_search and curv is not None and curv.mu_known and quadratic and curv.mu_positive > 0:
        bb_cap = 1.0 / curv.mu_positive
    elif ls_floor > 0:
        bb_cap = 1e6 * ls_floor
    bb_step: float | None = None  # 'auto''s next trial step (Barzilai-Borwein), once two iterates are known
    f_recent: collections.deque[float] = collections.deque([f], maxlen=_BB_MEMORY)
    # the hot path's lookups, made once (no proximal step without an L1 penalty)
    value_and_grad = problem.evaluate
    update = opt.direction.update
    record = recorder.add

    for it in range(1, max_iter + 1):
        n_iter = it
        if full_batch:
            eta = schedule(t) * eta_scale
            if not eta > 0 or not math.isfinite(eta):
                check_step(eta, t)
            u, opt_state = update(g, opt_state, theta)
            if line_search:
                # backtracking on the (proximal) sufficient-decrease condition, with no slack: the gram source
                # computes the loss as F* + e^T H e, so comparisons near the optimum are exact enough
                # (on the smooth part of F only: the L1 term is the prox's, and a step that grows |w|_1 must not
                # be refused for it)
                eta_min = eta * 1e-12
                if auto_line_search and eta_accepted is not None:
                    # (no secant step where the gradient did not change along the last step: at the optimum, or
                    # at rounding's floor; then the last accepted step again)
                    eta = max(bb_step, ls_floor) if bb_step is not None else eta_accepted
                f_smooth = f - problem.l1_value(theta)
                f_ref = max(f_recent) if f_recent else f
                while True:
                    cand = problem.prox(theta - eta * u, eta)
                    f_c, g_c = problem.value_and_grad(cand)
                    step = cand - theta
                    if not math.isfinite(f_c):
                        pass
                    elif bb_step is not None:
                        # the nonmonotone test (Grippo et al. 1986; SpaRSA, Wright et al. 2009): a decrease on the
                        # largest of the last few losses, which lets the Barzilai-Borwein step through
                        if f_c <= f_ref - _BB_SIGMA * float(np.vdot(step, step)) / (2 * eta) + ls_slack * abs(f):
                            break
                    elif (f_c - problem.l1_value(cand) <= f_smooth + float(np.vdot(g, step))
                          + float(np.vdot(step, step)) / (2 * eta) + ls_slack * abs(f)):
                        break
                    if math.isfinite(f_c) and eta <= ls_floor:
                        break  # 1/L satisfies the condition in exact arithmetic: a failure there is rounding
                    eta = max(eta * 0.5, ls_floor)
                    if eta < eta_min:
                        break
                if eta < eta_min:
                    converged = stop_rule.tol is None or stop_rule.certified(f, g_map, theta, g)
                    status = 0 if converged else 5
                    message = (("converged: " if converged else "stalled: ")
                               + "the line search finds no decrease (the loss is at machine precision; "
                               f"gradient norm {g_norm:.3g})")
                    n_iter = it - 1
                    break
                if auto_line_search:
                    # the next trial step: Barzilai-Borwein's s's / s'y, the inverse of the curvature met along
                    # the last step (a secant estimate), within [1/L, 1/mu_+] (or 1e6/L where mu is not known)
                    yv = g_c - g
                    sy = float(np.vdot(step, yv))
                    if sy > 0 and math.isfinite(sy):
                        bb_long, bb_short = float(np.vdot(step, step)) / sy, sy / float(np.vdot(yv, yv))
                        bb_step = bb_short if bb_short < _BB_TAU * bb_long else bb_long
                        bb_step = min(bb_step, bb_cap)
                        if not math.isfinite(bb_step):
                            bb_step = None
                    else:
                        bb_step = None
                    f_recent.append(f_c)
                theta, f, g = cand, f_c, g_c
                eta_accepted = eta
            else:
                theta = theta - eta * u
                if has_prox:
                    theta = problem.prox(theta, eta)
                f, g = value_and_grad(theta)
            t += 1
            if avg.start >= 0:
                avg.add(theta, t)
        else:
            theta, opt_state, t, eta = epochs.epoch(theta, opt_state, t, eta_scale, avg)
            with np.errstate(over="ignore", invalid="ignore"):
                f, g = problem.value_and_grad(theta)
                if avg.theta is not None:  # the stall and the claim are about what the fit returns: the average
                    f_avg, g_avg = problem.value_and_grad(avg.theta)
        g_norm = math.sqrt(float(np.vdot(g, g)))  # non-finite whenever any component is
        record(it, theta, f, user_grad_norm(g, g_norm) if scaling is not None else g_norm, eta)

        rising = rising + 1 if f > best else 0
        if _is_diverging(f, f0, rising, expect_stable):
            diverged = True
            status = 2
            break
        if check_separation and it % _SEPARATION_EVERY == 0:
            separation = _smallest_margin(mem, to_user(theta), loss_obj, fit_intercept)
            if separation > 0:
                status = 6
                break
        if callback is not None:
            W, b = unpack(theta)
            if callback(IterationInfo(it, W, b, f, g_norm, eta)):
                status, message = 3, f"stopped by the callback at iteration {it}"
                break
        g_map = problem.gradient_mapping_norm(theta, g, eta0_value) if has_prox else g_norm
        if full_batch and not is_adaptive:
            stop, converged, text = stop_rule.full_batch_stop(f, g_map, g_norm, theta, g)
            if stop:
                status, message = (0 if converged else 5), text
                break
        elif stop_rule.stall(*((f, f_prev, best) if avg.theta is None or full_batch
                               else (f_avg, f_avg_prev, f_avg_best))):
            if is_adaptive and schedule(t) * eta_scale > 1e-6:
                eta_scale /= 5.0  # scikit-learn's 'adaptive': a stall divides the step by 5
            else:
                if avg.theta is not None and not full_batch:
                    g_map_avg = (problem.gradient_mapping_norm(avg.theta, g_avg, eta0_value) if has_prox
                                 else math.sqrt(float(np.vdot(g_avg, g_avg))))
                    converged = stop_rule.certified(f_avg, g_map_avg, avg.theta, g_avg)
                    claim = stop_rule.certificate_text(f_avg, g_map_avg) + " at the averaged iterate"
                else:
                    converged = stop_rule.certified(f, g_map, theta, g)
                    claim = stop_rule.certificate_text(f, g_map)
                status = 0 if converged else 5
                what = "the averaged iterate's loss" if avg.theta is not None and not full_batch else "the loss"
                stalled = (f"{what} changed by at most tol={tol:g} (relative) for {n_iter_no_change} "
                           f"{'iterations' if full_batch else 'epochs'}")
                message = ("converged: " + claim + f" ({stalled})" if converged else f"stalled: {stalled}")
                break
        best = min(best, f)
        f_prev = f
        if avg.theta is not None and not full_batch:
            f_avg_best = min(f_avg_best, f_avg)
            f_avg_prev = f_avg

    if (converged and quadratic and full_batch and mem is not None and optimum_loss is not None
            and isinstance(src_d, GramSource) and abs(optimum_loss) <= 1e-8 * abs(f0)):
        # a (nearly) perfect fit: the statistics' error form reads the gap at the rounding of F0, not of F* ~ 0, so
        # the claim is checked on the rows (one pass), as closed_form takes such a loss from the rows
        W_u, b_u = unpack(theta if avg.theta is None else avg.theta)
        W2 = np.asarray(W_u, dtype=float).reshape(d, -1)
        b2 = np.atleast_1d(np.asarray(b_u, dtype=float))
        f_rows = float(mem.value_and_grad(W2, b2)[0]) + pen.value(W2)
        if f_rows - optimum_loss > tol * max(abs(optimum_loss), np.finfo(float).eps * abs(f0)) + 256 * np.finfo(
                float).eps * abs(f0):
            converged, status = False, 5
            f = f_rows
            message = (f"stalled: at the rounding floor of a nearly perfect fit (the rows' loss {f_rows:.3g}, the "
                       f"minimum {optimum_loss:.3g})")
    traj = recorder.finish(fit_intercept, single, transform=None if scaling is None else scaling.to_user)
    if optimum_loss is not None:
        traj = type(traj)(**{**traj.__dict__, "gap": traj.loss - optimum_loss})

    replan: Callable[[int], float] | None = None
    if auto_lr and curv is not None and quadratic and full_batch and opt_name in ("gd", "momentum", "nesterov"):
        def predicted_gap(budget: int) -> float:
            """The gap the theory predicts after ``budget`` iterations with the step 'auto' plans for it."""
            eta_T, params_T, _ = auto_parameters(curv, opt_name, max_iter=budget, tol=tol,
                                                 error_weights=budget_plan)
            if budget_plan is not None:  # the start's error along each eigen-direction is known
                lam, g0 = budget_plan
                return float(np.sum(g0 * np.abs(1.0 - eta_T * lam) ** (2.0 * budget)))
            r = curv.spectral_radius(eta_T, opt_name, float(params_T.get("beta", 0.0)))
            # heavy ball and nesterov at their planned parameters are critically damped at the extremes: a double
            # root, whose error goes as t r^t, so their gap bound carries (1 + t)^2
            transient = 1.0 if opt_name == "gd" else (1.0 + budget) ** 2
            return (f0 - optimum_loss) * transient * r ** (2.0 * budget) if r < 1 else math.inf

        replan = predicted_gap
    diagnosis = None
    if diverged or (status in (1, 5) and tol is not None):
        diagnosis = _diagnose(raw_stats=stats, curv=curv, fit_intercept=fit_intercept, standardized=scaling is not None,
                              f=f, optimum=optimum_loss, tol=tol, n_iter=n_iter,
                              # (a mini-batch run has a noise floor, not the full batch's rate)
                              rate=rate if full_batch else None, quadratic=quadratic,
                              explicit_step=not auto_lr, l1=has_prox,
                              eta=schedule.eta0 if isinstance(schedule, constant) else None, loss_curvature=c_eff,
                              l2=pen.l2, max_iter=max_iter, diverged=diverged, replan=replan,
                              newton_for=loss_obj.name if (smooth and not quadratic and not has_prox and mem is not None
                                                           and p * k <= _MAX_STATS_PARAMETERS) else None)
    if check_separation and status in (1, 5):
        separation = _smallest_margin(mem, to_user(theta), loss_obj, fit_intercept)
        if separation > 0:
            status = 6
    if status == 6:
        diagnosis = None
        message = (f"the classes are linearly separable: after iteration {n_iter} every training sample is on its "
                   f"side of the decision boundary (smallest margin {separation:.3g}), so without a penalty the "
                   f"{loss_obj.name} loss has no minimum: it falls towards 0 as the weights grow without bound; use "
                   "a penalty (penalty='l2' with alpha > 0), which has a finite minimiser")
        if loss_obj.coupled:
            off = 1 if fit_intercept else 0
            th = to_user(theta)
            eta_now = mem.X @ th[off:].astype(mem.X.dtype, copy=False) + (th[0] if fit_intercept else 0.0)
            full = float(loss_obj.margins(eta_now, mem.Y).min())
            part, k = _separated_class(eta_now, mem.Y, loss_obj)
            if k is not None and not full > 0:
                message = (f"class {k} (column {k} of the one-hot target) is linearly separable from the others: "
                           f"after iteration {n_iter} a hyperplane has all its samples on one side and every other "
                           f"sample on the other (smallest margin {part:.3g}), so without a penalty the "
                           f"{loss_obj.name} loss has no minimum: it keeps falling as that class's weights grow "
                           "without bound (towards the loss of the other classes alone); use a penalty "
                           "(penalty='l2' with alpha > 0), which has a finite minimiser")
    if diverged:
        message = _divergence_text(n_iter, f, eta, curv, opt.name, auto_text, diagnosis, c_eff, quadratic,
                                   bounded=smooth_c is not None or not smooth)
        if not full_batch:
            message += (f" With mini-batches of {batch_size} row(s) the safe step is smaller than for the full "
                        "batch: learning_rate='auto' plans for their expected smoothness L_B.")
    elif diagnosis is not None:
        if status == 1:
            message = f"did not converge in the {max_iter} iterations allowed"
        if diagnosis.gap_text:
            message += f"; the loss {format_distinct(f, optimum_loss, digits=6)[0]} is {diagnosis.gap_text}"
        if diagnosis.reason:
            message += f" ({diagnosis.reason})"
    summary = message  # how it ended, without the remedies (each face names those in its own terms)
    if diagnosis is not None and status == 1:
        message = message.replace(f"the {max_iter} iterations allowed", f"max_iter={max_iter} iterations")
    if diagnosis is not None and not diverged and diagnosis.remedies:
        message += "; " + diagnosis.python_text()
    notes = []
    # (a ridge term curves every direction of the coefficients: the minimiser is then unique, whatever the design)
    ridged = bool(np.all(np.asarray(pen.l2) > 0)) if pen.l2 is not None else False
    if not ridged and (collinear(stats, fit_intercept) if stats is not None
                       else curv is not None and curv.rank_deficient):
        notes.append("the problem is rank deficient (mu = 0): the minimiser is not unique, and descent from the "
                     "start converges to the minimum-norm one" + (" in the standardized coordinates, as closed_form "
                                                                 "does" if scaling is not None else ""))
    if notes and not diverged:
        message += f" ({notes[0]})"
    if warn and diverged:
        warnings.warn(message, DivergenceWarning, stacklevel=2)
    elif warn and status == 6:
        warnings.warn(f"gradient descent ({opt.name}): {message}", _exceptions.SeparationWarning, stacklevel=2)
    elif warn and diagnosis is not None:
        warnings.warn(f"gradient descent ({opt.name}) {message}", _exceptions.ConvergenceWarning, stacklevel=2)

    final = theta if avg.theta is None or diverged else avg.theta
    if final is not theta:  # the loss of what is returned
        with np.errstate(over="ignore", invalid="ignore"):
            f = problem.value_and_grad(final)[0]
    coef, intercept = unpack(final)
    end_state = DescentState(opt_state=opt_state, t=t, eta_scale=eta_scale, average=avg.theta,
                             n_averaged=avg.n, best=min(best, f) if math.isfinite(f) else best,
                             no_improve=stop_rule.no_improve, engine=engine_name)
    return Result(
        coef=coef, intercept=intercept, loss=float(f), n_iter=n_iter, n_updates=t - t_begin, converged=converged,
        diverged=diverged, status=status, message=message, method=opt.name, source=source_name,
        source_reason=source_reason, curvature=curv_report, trajectory=traj, optimum_loss=optimum_loss,
        learning_rate=float(eta), scaling="standardize" if scaling is not None else "none",
        scaling_reason=scaling_reason,
        extra={"seconds": time.perf_counter() - t_start, "optimizer": opt, "batch_size": batch_size,
               "fit_intercept": fit_intercept, "loss": loss_obj.name, "penalty": penalty, "scaling": scaling,
               "raw_curvature": raw_curv if smooth else None, "auto": auto_text,
               "diagnosis": diagnosis, "notes": notes, "summary": summary, "state": end_state,
               "engine": engine_name, "engine_reason": engine_reason, "theta": to_user(theta)},
    )


#: the finite-budget step is planned from the start's error along the eigen-directions up to this many parameters
_BUDGET_PLAN_MAX_PARAMETERS = 1000


def _budget_plan(src: Any, theta0: np.ndarray, optimizer: str, quadratic: bool, full_batch: bool,
                 exact: bool) -> tuple[np.ndarray, np.ndarray] | None:
    """(Hessian eigenvalues, the start's gap along each eigen-direction) when they are known: the squared error on
    statistics, whose error form holds the optimum (gd only, full batch, no penalty outside the error form)."""
    if not (optimizer == "gd" and quadratic and full_batch and exact and isinstance(src, GramSource)):
        return None
    ef = src._error_form()
    if ef is None or ef[0].shape[0] > _BUDGET_PLAN_MAX_PARAMETERS:
        return None
    H, theta_star, _ = ef
    lam, V = np.linalg.eigh(0.5 * (H + H.T))
    c = V.T @ (theta0 - theta_star)
    # F - F* = e^T H e = sum_i lam_i c_i^2; the Hessian of F is 2H
    return 2.0 * lam, np.maximum(lam, 0.0) * np.sum(c * c, axis=1)


def _max_row_square(mem: MemorySource | None, scaling: Scaling | None, fit_intercept: bool) -> float | None:
    """max_i (s_i / s_bar) |x_b,i|^2 in the descent's coordinates (one pass, in blocks); None without rows."""
    if mem is None:
        return None
    X, sw = mem.X, mem.sample_weight
    m = X.shape[0]
    best = 0.0
    block = 1 << 15
    rel = None if sw is None else sw / (float(sw.sum()) / m)
    sparse = not isinstance(X, np.ndarray)
    for start in range(0, m, block):
        xb = X[start:start + block]
        if sparse:  # |(x - c)/s|^2 = |x/s|^2 - 2 x.(c/s^2) + |c/s|^2, from the stored entries
            inv = 1.0 if scaling is None else 1.0 / scaling.scale
            xs = xb.multiply(inv) if scaling is not None else xb
            sq = np.asarray(xs.multiply(xs).sum(axis=1)).ravel()
            if scaling is not None:
                c = scaling.center * inv * inv
                sq = sq - 2.0 * (xb @ c) + float(np.sum((scaling.center * inv) ** 2))
            sq = sq + (1.0 if fit_intercept else 0.0)
        else:
            if scaling is not None:
                xb = (xb - scaling.center) / scaling.scale
            sq = np.einsum("ij,ij->i", xb, xb, dtype=np.float64) + (1.0 if fit_intercept else 0.0)
        if rel is not None:
            sq = sq * rel[start:start + block]
        best = max(best, float(sq.max()) if sq.size else 0.0)
    return best


def _stochastic_auto_step(curv: Curvature | None, mem: MemorySource | None, scaling: Scaling | None,
                          fit_intercept: bool, c: float, l2: Any, m: int, batch_size: int, optimizer: str,
                          params: dict[str, Any], smooth: bool, averaged: bool = False) -> tuple[Any, str]:
    """learning_rate='auto' for mini-batches of gd, momentum and nesterov: scikit-learn's 'adaptive' schedule
    started at 1 / (2 L_B) (times 1 - beta with momentum), L_B the expected smoothness of a batch
    (:func:`gdlab.curvature.batch_smoothness`); for a non-smooth loss, 1/sqrt(t) decay from the same step.
    Without the rows (a streamed source) the largest row's curvature is estimated by the mean one, tr(H)."""
    if curv is None:
        raise ValueError("learning_rate='auto' for mini-batches needs the curvature (the statistics of X); give a "
                         "number or a schedule.")
    row = _max_row_square(mem, scaling, fit_intercept)
    l2max = float(np.max(l2)) if np.ndim(l2) else float(l2)
    L_max = c * row + l2max if row is not None else float(np.sum(curv.eigenvalues))
    L_B = batch_smoothness(curv.L, L_max, m, batch_size)
    step = 1.0 / (2.0 * L_B)
    if optimizer != "gd":
        params.setdefault("beta", 0.9)
        step *= 1.0 - float(params["beta"])
    why = f"1/(2 L_B) with L_B = {L_B:.6g}" + (" x (1 - beta)" if optimizer != "gd" else "")
    if smooth and averaged:
        return constant(step), why + ", constant, the iterates averaged (Polyak-Ruppert)"
    if smooth:
        return adaptive(step), why + ", divided by 5 when the loss stalls"
    return invscaling(step, 0.5), why + ", decaying as 1/sqrt(t)" + (", the iterates averaged" if averaged else "")


def _lanczos_curvature(mem: MemorySource, scaling: Scaling | None, fit_intercept: bool, c: float,
                       l2: Any) -> Curvature:
    """L of the (standardized) problem from Hessian-vector products on the rows: wide data, where the p x p
    statistics are not formed."""
    X, sw = mem.X, mem.sample_weight
    n = float(X.shape[0]) if sw is None else float(sw.sum())
    d = X.shape[1]
    off = 1 if fit_intercept else 0
    inv_s = np.ones(d) if scaling is None else 1.0 / scaling.scale
    center = np.zeros(d) if scaling is None else scaling.center
    l2v = np.broadcast_to(np.asarray(l2, dtype=float), (d,))

    def matvec(v: np.ndarray) -> np.ndarray:
        v = np.ravel(v)
        vw = v[off:] * inv_s
        z = X @ vw.astype(X.dtype, copy=False) + ((v[0] if off else 0.0) - center @ vw)
        if sw is not None:
            z = z * sw
        out = np.empty(d + off)
        xz = X.T @ z.astype(X.dtype, copy=False)
        out[off:] = (xz - center * z.sum()) * inv_s
        if off:
            out[0] = z.sum()
        out *= c / n
        out[off:] += l2v * v[off:]
        return out

    return curvature_from_operator(matvec, d + off, fit_intercept)


def _start_curvature(loss: Loss, mem: MemorySource | None, theta_user: np.ndarray, fit_intercept: bool,
                     stats: Any) -> float:
    """max_i loss''(eta_i) at the start, for a loss with no global curvature bound (Poisson's exp(eta)): one pass
    over the rows when they are here, else the start's intercept with zero slopes (the null model)."""
    off = 1 if fit_intercept else 0
    b = theta_user[0] if fit_intercept else np.zeros(theta_user.shape[1])
    if mem is not None:
        eta = mem.X @ theta_user[off:].astype(mem.X.dtype, copy=False) + b
        return max(loss.local_curvature(eta, mem.Y), np.finfo(float).tiny)
    mean_y = stats.mean_y if stats is not None else np.zeros(theta_user.shape[1])
    return max(loss.local_curvature(np.broadcast_to(b, mean_y.shape), mean_y), np.finfo(float).tiny)


def _penalty_hessian(p: int, fit_intercept: bool, l2: Any) -> np.ndarray:
    """The ridge term's Hessian on packed parameters (the intercept is not penalised): diag(0, l2 ...)."""
    off = 1 if fit_intercept else 0
    diag = np.zeros(p)
    diag[off:] = np.broadcast_to(np.asarray(l2, dtype=float), (p - off,))
    return diag


def _hessian_function(src: Any, fit_intercept: bool, l2: Any) -> Callable[[np.ndarray], np.ndarray]:
    """theta -> the Hessian of F's smooth part in the descent's coordinates (the source's data term + ridge)."""
    off = 1 if fit_intercept else 0

    def hessian_at(theta: np.ndarray) -> np.ndarray:
        k = theta.shape[1]
        b = theta[0] if fit_intercept else np.zeros(k)
        H = src.hessian(theta[off:], b)
        pen = _penalty_hessian(theta.shape[0], fit_intercept, l2)
        if H.ndim == 3:
            return H + np.diag(pen)[None]
        return H + np.diag(np.repeat(pen, k))

    return hessian_at


def _bound_hessian(stats: Any, fit_intercept: bool, c: float, l2: Any, k: int, coupled: bool) -> np.ndarray | None:
    """The curvature bound c X_b^T S X_b / n (+ ridge) from the statistics: at least the Hessian everywhere (for the
    softmax, Boehning's (1/2)(I - 1 1^T / K) in the class index), so a decrement with it never overstates progress."""
    if stats is None or not stats.n > 0:
        return None
    A = c * stats.design_gram(fit_intercept) / stats.n
    pen = np.diag(_penalty_hessian(A.shape[0], fit_intercept, l2))
    if coupled:
        B = np.eye(k) - np.full((k, k), 1.0 / k)
        return np.kron(A, B) + np.kron(pen, np.eye(k))
    return np.repeat((A + pen)[None], k, axis=0)


def _smallest_margin(mem: MemorySource, theta_user: np.ndarray, loss: Loss, fit_intercept: bool) -> float:
    """The smallest margin over the samples, for the best-separated output column: positive exactly when theta
    separates the classes of some column."""
    off = 1 if fit_intercept else 0
    b = theta_user[0] if fit_intercept else np.zeros(theta_user.shape[1])
    eta = mem.X @ theta_user[off:].astype(mem.X.dtype, copy=False) + b
    rows = np.ones(mem.n_samples, dtype=bool) if mem.sample_weight is None else mem.sample_weight > 0
    margins = loss.margins(eta, mem.Y)[rows]
    # one-vs-rest fits one model per column: any column separated leaves that model without a minimiser
    full = float(margins.min(axis=0).max()) if margins.size else -math.inf
    return max(full, _separated_class(eta[rows], mem.Y[rows], loss)[0])


def _separated_class(eta: np.ndarray, Y: np.ndarray, loss: Loss) -> tuple[float, int | None]:
    """The softmax's partial separation: one class k on its own side of the hyperplane h(x) = eta_k - mean_j eta_j
    (a linear function of x: theta_k less the mean column) from every other class. Then adding t (theta_k -
    theta_mean) to column k lowers every sample's loss for all t > 0, so the loss has no minimiser even though it
    does not fall to 0 (Albert & Anderson 1984). Returns (the smallest margin of the best-separated class, k), or
    (-inf, None) for other losses or when no class is separated."""
    if not loss.coupled or Y.shape[1] < 3 or not eta.size:
        return -math.inf, None
    h = eta - eta.mean(axis=1, keepdims=True)
    best, which = -math.inf, None
    for k in range(Y.shape[1]):
        mine = Y[:, k] > 0
        if mine.all() or not mine.any():
            continue
        margin = min(float(h[mine, k].min()), float(-h[~mine, k].max()))
        if margin > best:
            best, which = margin, k
    return best, which
