"""The descent loop: one loop for every source and optimizer, with stop rules, divergence checks and recording.

``descend`` is gdlab's core call. It validates the input, builds the objective (loss + penalty), picks a source of
loss and gradient (``memory``: a pass over X per evaluation; ``gram``: one-pass statistics, then O(d^2) per
evaluation), builds the optimizer, runs the loop and returns a :class:`~gdlab.result.Result` with the trajectory.

Parameters are packed in one array theta of shape (p, k): row 0 is the intercept when there is one (the workshop's
w = [intercept, slope]), the next d rows the coefficients; k is the number of outputs.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdlab._validation import as_matrix, as_sample_weight, as_target, check_choice, check_positive
from gdlab.curvature import Curvature, curvature_from_stats
from gdlab import exceptions as _exceptions
from gdlab.exceptions import DivergenceWarning
from gdlab.objectives import Loss, Penalty, get_loss, make_penalty
from gdlab.optimizers import OPTIMIZERS, Optimizer, make_optimizer
from gdlab.result import Result, TrajectoryRecorder
from gdlab.schedules import adaptive, constant
from gdlab.sources.gram import GramSource
from gdlab.sources.memory import MemorySource

__all__ = ["descend", "IterationInfo", "SOURCES", "STATUS"]

SOURCES = ("auto", "memory", "gram")
STATUS = {0: "converged", 1: "max_iter reached", 2: "diverged", 3: "stopped by callback", 4: "exact"}
_AUTO_FALLBACK_STEP = {"adagrad": 0.1, "rmsprop": 0.01, "adam": 0.01}


@dataclass(frozen=True)
class IterationInfo:
    """What a callback sees after each iteration (return True from the callback to stop the run)."""

    iteration: int
    coef: np.ndarray
    intercept: Any
    loss: float
    grad_norm: float
    learning_rate: float


class _Problem:
    """The objective F = data loss (from a source) + penalty, over packed parameters theta (p, k)."""

    def __init__(self, source: Any, penalty: Penalty, fit_intercept: bool):
        self.source = source
        self.penalty = penalty
        self.fit_intercept = fit_intercept
        self.off = 1 if fit_intercept else 0
        self._packed = getattr(source, "packed_value_and_grad", None)
        # the full-batch hot path: the source's own packed evaluation when no penalty is added to it
        self.evaluate = self._packed if self._packed is not None and not penalty.active else self.value_and_grad

    def split(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.fit_intercept:
            return theta[1:], theta[0]
        return theta, np.zeros(theta.shape[1])

    def value_and_grad(self, theta: np.ndarray, source: Any = None) -> tuple[float, np.ndarray]:
        """F(theta) (penalty included) and the gradient of its smooth part (L1 is handled by the prox)."""
        src = source if source is not None else self.source
        packed = self._packed if source is None else getattr(src, "packed_value_and_grad", None)
        if packed is not None:
            loss, g = packed(theta)
        else:
            W, b = self.split(theta)
            loss, gW, gb = src.value_and_grad(W, b)
            g = np.empty_like(theta)
            if self.fit_intercept:
                g[0] = gb
                g[1:] = gW
            else:
                g[:] = gW
        if self.penalty.active:
            W = theta[self.off:]
            loss += self.penalty.value(W)
            if self.penalty.l2:
                g[self.off:] += self.penalty.l2 * W
        return loss, g

    def l1_value(self, theta: np.ndarray) -> float:
        """The L1 term of the penalty (the part the prox handles), 0 without one."""
        return self.penalty.l1 * float(np.abs(theta[self.off:]).sum()) if self.penalty.l1 else 0.0

    def prox(self, theta: np.ndarray, step: float) -> np.ndarray:
        if self.penalty.l1:
            theta[self.off:] = self.penalty.prox(theta[self.off:], step)
        return theta


def _choose_source(requested: str, loss: Loss, full_batch: bool, m: int, d: int, max_iter: int) -> tuple[str, str]:
    if requested == "gram":
        if loss.name != "squared_error":
            raise ValueError(f"source='gram' is exact only for loss='squared_error' (got loss={loss.name!r}); "
                             "use source='memory' or 'auto'.")
        if not full_batch:
            raise ValueError("source='gram' cannot draw mini-batches (it keeps only statistics); "
                             "use source='memory' or 'auto' with batch_size.")
        return "gram", "requested"
    if requested == "memory":
        return "memory", "requested"
    if loss.name != "squared_error":
        return "memory", f"loss={loss.name!r} needs the rows at every evaluation"
    if not full_batch:
        return "memory", "mini-batches are drawn from the rows"
    q = d + 1
    # cost model in units of one element read: the gram pass reads X once and does q/32 multiply-adds per element
    # (BLAS syrk on cache-resident blocks), then each iteration costs O(p^2); memory reads X twice per iteration.
    gram_cost = m * q * (1.0 + q / 32.0) + max_iter * (d + 1) ** 2
    memory_cost = max_iter * 2.0 * m * (d + 1)
    if gram_cost <= memory_cost:
        return "gram", (f"one pass for the statistics then O(d^2) per iteration (~{gram_cost:.2g} units) beats "
                        f"{max_iter} passes over X (~{memory_cost:.2g})")
    return "memory", f"{max_iter} passes over X (~{memory_cost:.2g} units) beat forming the statistics (~{gram_cost:.2g})"


def loss_stalled(f: float, f_prev: float, best: float, tol: float, adaptive_schedule: bool) -> bool:
    """The stop rule's test for one iteration. The 'adaptive' schedule (as in scikit-learn) counts any iteration
    that fails to beat the best loss by tol (and then divides the step by 5); otherwise the loss must have
    *settled*: changed by at most tol (relative). A rising loss is not settling."""
    if adaptive_schedule:
        return f > best - tol * abs(best)
    return abs(f_prev - f) <= tol * abs(f_prev) or f == f_prev


def _scale_advice(stats: Any) -> str:
    if stats is None or stats.n_features < 2:
        return ""
    sd = np.sqrt(np.maximum(np.diag(stats.cxx) / stats.n, 0))
    sd = sd[sd > 0]
    if sd.size >= 2 and sd.max() / sd.min() > 100:
        return (f" The features differ in scale by {sd.max() / sd.min():.3g}x, which makes the problem ill-conditioned:"
                " standardise them first (sklearn.preprocessing.StandardScaler, or gdlab fit --standardize).")
    return ""


def _divergence_text(iteration: int, loss: float, eta: float, curv: Curvature | None, optimizer: str,
                     advice: str) -> str:
    grew = "became non-finite" if not math.isfinite(loss) else f"grew to {loss:.3g}"
    text = f"gradient descent ({optimizer}) diverged at iteration {iteration}: the loss {grew}."
    if curv is not None and math.isfinite(curv.stable_step):
        where = "above" if eta >= curv.stable_step else "below"
        text += (f" The learning rate {eta:.4g} is {where} the stable bound 2/L = {curv.stable_step:.4g} "
                 f"(L = {curv.L:.4g} is the largest eigenvalue of the Hessian (2/m) X_b^T X_b); use a learning rate "
                 f"below {curv.stable_step:.4g}, e.g. the best constant step 2/(L+mu) = {curv.best_step:.4g}, or "
                 "learning_rate='auto'.")
    else:
        text += f" The learning rate {eta:.4g} is too large; try a smaller one."
    return text + advice


def descend(
    X: Any,
    y: Any = None,
    *,
    optimizer: str | Optimizer = "gd",
    learning_rate: Any = "auto",
    max_iter: int = 1000,
    tol: float | None = 1e-10,
    n_iter_no_change: int = 5,
    gtol: float | None = 1e-9,
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
    X : (m, d) array-like, or a source object (``gdlab.sources``) with y=None.
    y : (m,) or (m, k) targets (k outputs are fitted side by side, one objective each).
    optimizer : "gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", or an :class:`Optimizer`.
        Extra keyword arguments (``beta``, ``beta1``, ``beta2``, ``decay``, ``eps``) go to it.
    learning_rate : a positive number, a schedule (a function of the step, see ``gdlab.schedules``), a schedule
        name, or "auto": the best constant step 2/(L+mu) for gd; Polyak's optimal step and momentum for
        momentum; 1/L with momentum (sqrt k - 1)/(sqrt k + 1) for nesterov; 0.1 for adagrad and 0.01 for
        rmsprop and adam (which scale their steps themselves).
    max_iter : iterations, i.e. epochs (full passes over the data); with full batches one update each.
    tol : stop when the loss has changed by at most ``tol`` (relative) for ``n_iter_no_change`` iterations in a
        row. None: never, and no ConvergenceWarning at max_iter (run all max_iter iterations, as the workshop does).
    gtol : stop when the gradient norm falls to ``gtol`` times its initial value. None: never.
    batch_size : None (full batch, the default), k (mini-batches of k rows) or 1 (stochastic); rows are reshuffled
        each epoch by a generator seeded with ``random_state``. A batch_size of m or more is the full batch.
    fit_intercept, coef_init, intercept_init, sample_weight : the model and its starting point (default zeros).
    loss, epsilon : "squared_error" (the workshop's), "huber", "epsilon_insensitive", "squared_epsilon_insensitive".
    penalty, alpha, l1_ratio : None, "l2", "l1", "elasticnet" (scikit-learn's convention, intercept never
        penalised); L1 parts are applied by their proximal step, so exact zeros appear.
    source : "auto" (a cost model chooses; the Result says which and why), "memory", "gram", or a source object.
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

    # ---- data and source -------------------------------------------------------------------------------------
    single = True
    if hasattr(X, "value_and_grad") and y is None:
        src_obj = X
        m, d, k = src_obj.n_samples, src_obj.n_features, src_obj.n_outputs
        single = getattr(src_obj, "single_output", k == 1)
        source_name, source_reason = src_obj.name, "given"
        fit_intercept = src_obj.fit_intercept
        src_loss = getattr(src_obj, "loss", None)
        src_loss_name = "squared_error" if src_loss is None else getattr(src_loss, "name", src_loss)
        if isinstance(loss, str) and loss == "squared_error" and src_loss is not None:
            loss_obj = src_loss  # the source's own loss, unless the caller asked for another
        elif loss_obj.name != src_loss_name or (src_loss is not None and loss_obj != src_loss):
            raise ValueError(
                f"loss={loss_obj.name!r} (epsilon={loss_obj.epsilon:g}) differs from the loss the {src_obj.name!r} "
                f"source computes ({src_loss_name!r}); open the source with the loss you want "
                "(gdlab.scale.open_source(..., loss=...)) and leave descend's loss at its default.")
        if sample_weight is not None:
            raise ValueError(f"sample_weight cannot be given with a {src_obj.name!r} source object: weights belong "
                             "to the data; pass arrays (descend(X, y, sample_weight=...)) instead.")
    else:
        if y is None:
            raise ValueError("y is missing: pass the targets, descend(X, y), or a source object as X.")
        check_choice("source", source, SOURCES)
        Xa = as_matrix(X, check_finite=False)
        ya = as_target(y, Xa.shape[0])
        single = ya.ndim == 1
        Y = ya.reshape(-1, 1) if single else ya
        m, d = Xa.shape
        k = Y.shape[1]
        sw = as_sample_weight(sample_weight, m)
        full = batch_size is None or batch_size >= m
        source_name, source_reason = _choose_source(source, loss_obj, full, m, d, max_iter)
        mem = MemorySource(Xa, Y, sw, loss_obj, fit_intercept)
        if source_name == "gram":
            src_obj = GramSource(mem.gram_stats(), fit_intercept)  # the pass also checks X for NaN/inf
        else:
            from gdlab._validation import _all_finite, _nonfinite_error

            if not _all_finite(Xa):
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

    # ---- curvature (from the one-pass statistics when the rows are at hand or already summarised) ------------
    p = d + (1 if fit_intercept else 0)
    stats = None
    curv: Curvature | None = None
    smooth_c = loss_obj.curvature
    if hasattr(src_obj, "gram_stats") and (source_name == "gram" or p <= 64 * max_iter) and p <= 4000:
        stats = src_obj.gram_stats()
        if smooth_c is not None:
            curv = curvature_from_stats(stats, fit_intercept, smooth_c, pen.l2)
    optimum_loss = None
    if track_gap is None:
        track_gap = loss_obj.name == "squared_error" and not pen.l1 and stats is not None
    if track_gap:
        if stats is None or loss_obj.name != "squared_error" or pen.l1:
            raise ValueError("track_gap=True needs the squared error without an L1 penalty (the optimum is then "
                             "known exactly).")
        from gdlab.closed_form import closed_form_from_stats
        from gdlab.exceptions import RankDeficiencyWarning

        # the gram source solves for the optimum itself (its error form): reuse it rather than solve again
        ef = (src_obj._error_form() if isinstance(src_obj, GramSource) and src_obj.fit_intercept == fit_intercept
              and not pen.l2 else None)
        if ef is not None:
            optimum_loss = ef[2]
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RankDeficiencyWarning)
                optimum_loss = closed_form_from_stats(stats, fit_intercept=fit_intercept, l2=pen.l2,
                                                      curvature=curv if smooth_c == 2.0 else None).loss

    # ---- optimizer --------------------------------------------------------------------------------------------
    if isinstance(optimizer, Optimizer):
        opt = optimizer
    else:
        lr = learning_rate
        params = dict(optimizer_params)
        if auto_lr:
            if curv is None:
                if optimizer in _AUTO_FALLBACK_STEP:
                    lr = _AUTO_FALLBACK_STEP[optimizer]
                else:
                    raise ValueError("learning_rate='auto' needs the curvature of a smooth loss; "
                                     f"loss={loss_obj.name!r} has none: give a number or a schedule.")
            elif optimizer == "gd":
                lr = curv.best_step
            elif optimizer == "momentum":
                hb = curv.heavy_ball
                lr = hb["learning_rate"]
                params.setdefault("beta", hb["beta"])
            elif optimizer == "nesterov":
                lr = 1.0 / curv.L
                sk = math.sqrt(curv.condition_number) if math.isfinite(curv.condition_number) else math.inf
                params.setdefault("beta", 0.0 if sk == 1 else ((sk - 1) / (sk + 1) if math.isfinite(sk) else 0.99))
            else:
                lr = _AUTO_FALLBACK_STEP[optimizer]
            if not math.isfinite(lr):
                lr = 1.0
        opt = make_optimizer(optimizer, lr, **params)
    schedule = opt.learning_rate
    is_adaptive = isinstance(schedule, adaptive)

    # ---- starting point ---------------------------------------------------------------------------------------
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

    problem = _Problem(src_obj, pen, fit_intercept)
    recorder = TrajectoryRecorder(record_every, max_records)
    off = problem.off

    def unpack(th: np.ndarray) -> tuple[np.ndarray, Any]:
        W = th[off:]
        b = th[0] if fit_intercept else np.zeros(k)
        if single:
            return W[:, 0].copy(), (float(b[0]) if fit_intercept else 0.0)
        return W.copy(), b.copy()

    f, g = problem.value_and_grad(theta)
    if not math.isfinite(f):
        raise ValueError("the loss at the starting point is not finite; check coef_init/intercept_init and the data.")
    g_norm = math.sqrt(float(np.vdot(g, g)))
    g0_norm = g_norm
    f0 = f
    eta_scale = 1.0  # the 'adaptive' schedule's divisions by 5
    t = 0  # updates made
    recorder.add(0, theta, f, g_norm, math.nan)

    best = f_prev = f
    no_improve = 0
    rising = 0
    status, message = 1, f"max_iter={max_iter} reached"
    converged = diverged = False
    n_iter = 0
    opt_state = opt.direction.init(theta)
    eta = schedule(0) * eta_scale
    explode_at = 1e8 * (f0 if f0 > 0 else 1.0)

    # the hot path's lookups, made once (no proximal step without an L1 penalty)
    value_and_grad = problem.evaluate
    has_prox = bool(pen.l1)
    update = opt.direction.update
    record = recorder.add

    for it in range(1, max_iter + 1):
        n_iter = it
        if full_batch:
            eta = schedule(t) * eta_scale
            u, opt_state = update(g, opt_state, theta)
            if line_search:
                # backtracking on the (proximal) sufficient-decrease condition, with no slack: the gram source
                # computes the loss as F* + e^T H e, so comparisons near the optimum are exact enough
                # (on the smooth part of F only: the L1 term is the prox's, and a step that grows |w|_1 must not
                # be refused for it)
                eta_min = eta * 1e-12
                f_smooth = f - problem.l1_value(theta)
                while True:
                    cand = problem.prox(theta - eta * u, eta)
                    f_c, g_c = problem.value_and_grad(cand)
                    step = cand - theta
                    bound = f_smooth + float(np.vdot(g, step)) + float(np.vdot(step, step)) / (2 * eta)
                    if math.isfinite(f_c) and f_c - problem.l1_value(cand) <= bound:
                        break
                    eta *= 0.5
                    if eta < eta_min:
                        break
                if eta < eta_min:
                    converged, status = True, 0
                    message = ("converged: the line search finds no decrease (the loss is at machine precision; "
                               f"gradient norm {g_norm:.3g})")
                    n_iter = it - 1
                    break
                theta, f, g = cand, f_c, g_c
            else:
                theta = theta - eta * u
                if has_prox:
                    theta = problem.prox(theta, eta)
                f, g = value_and_grad(theta)
            t += 1
        else:
            for batch in src_obj.iter_batches(batch_size, rng, shuffle):
                eta = schedule(t) * eta_scale
                _, gb = problem.value_and_grad(theta, batch)
                u, opt_state = opt.direction.update(gb, opt_state, theta)
                theta = problem.prox(theta - eta * u, eta)
                t += 1
            f, g = problem.value_and_grad(theta)
        g_norm = math.sqrt(float(np.vdot(g, g)))  # non-finite whenever any component is
        record(it, theta, f, g_norm, eta)

        # divergence: non-finite, exploding, or rising steadily far above the start
        rising = rising + 1 if f > best else 0
        if not math.isfinite(f) or f > explode_at or (rising >= 10 and f > 10 * f0 and f > 0):
            diverged = True
            status = 2
            message = _divergence_text(it, f, eta, curv, opt.name, _scale_advice(stats))
            break
        if callback is not None:
            W, b = unpack(theta)
            if callback(IterationInfo(it, W, b, f, g_norm, eta)):
                status, message = 3, f"stopped by the callback at iteration {it}"
                break
        if gtol is not None and g_norm <= gtol * g0_norm:
            converged, status = True, 0
            message = f"converged: gradient norm {g_norm:.3g} <= gtol * initial ({gtol:g} x {g0_norm:.3g})"
            break
        if tol is not None:
            # n_iter_no_change stalled iterations in a row end the run (or divide an 'adaptive' step by 5)
            no_improve = no_improve + 1 if loss_stalled(f, f_prev, best, tol, is_adaptive) else 0
            if no_improve >= n_iter_no_change:
                if is_adaptive and schedule(t) * eta_scale > 1e-6:
                    eta_scale /= 5.0
                    no_improve = 0
                else:
                    converged, status = True, 0
                    message = (f"converged: the loss changed by at most tol={tol:g} (relative) for "
                               f"{n_iter_no_change} iterations")
                    break
        best = min(best, f)
        f_prev = f

    traj = recorder.finish(fit_intercept, single)
    if optimum_loss is not None:
        traj = type(traj)(**{**traj.__dict__, "gap": traj.loss - optimum_loss})

    if warn and diverged:
        warnings.warn(message, DivergenceWarning, stacklevel=2)
    elif warn and status == 1 and tol is not None:
        hint = ""
        if curv is not None and isinstance(schedule, constant) and opt.name == "gd":
            hint = (f" The predicted rate at this step is {curv.rate(schedule.eta0):.4g} per iteration; "
                    f"learning_rate='auto' uses 2/(L+mu) = {curv.best_step:.4g}.")
        warnings.warn(f"gradient descent ({opt.name}) did not converge in max_iter={max_iter} iterations "
                      f"(loss {f:.6g}); increase max_iter or the learning rate." + hint,
                      _exceptions.ConvergenceWarning, stacklevel=2)

    coef, intercept = unpack(theta)
    return Result(
        coef=coef, intercept=intercept, loss=float(f), n_iter=n_iter, n_updates=t, converged=converged,
        diverged=diverged, status=status, message=message, method=opt.name, source=source_name,
        source_reason=source_reason, curvature=curv, trajectory=traj, optimum_loss=optimum_loss,
        learning_rate=float(eta),
        extra={"seconds": time.perf_counter() - t_start, "optimizer": opt, "batch_size": batch_size,
               "fit_intercept": fit_intercept, "loss": loss_obj.name, "penalty": penalty},
    )
