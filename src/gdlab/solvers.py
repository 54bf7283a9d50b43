"""Reference solvers beside gradient descent: Newton's method (IRLS) and L-BFGS, with the same Result and Trajectory.

The workshop remarks that the full update "jumps straight to the bottom": these are the solvers that do, for the
losses that have no closed form. Both minimise :func:`gdlab.descend`'s objective

    F(w, b) = (1/n) sum_i s_i loss(x_i . w + b, y_i)  +  alpha/2 |w|^2,      n = sum_i s_i

(the intercept unpenalised; a 2-D y adds one objective per column, the multinomial loss couples them), for every
smooth loss of :mod:`gdlab.losses` with ``penalty="l2"`` or None.

Newton / IRLS (:func:`newton`)
    theta_{t+1} = theta_t + s_t d_t,   H_t d_t = -g_t,   H = X_b^T diag(s_i loss''(eta_i)) X_b / n + ridge,
    the coupled block Hessian for the softmax. For a GLM with its canonical link (logistic, Poisson) this is
    iteratively reweighted least squares. The step s_t backtracks from 1 (halving) until Armijo's condition
    F(theta + s d) <= F(theta) + 1e-4 s g.d holds. For the squared error H is constant and the first step lands on
    the Normal Equation's solution from any start.
L-BFGS (:func:`lbfgs`)
    ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)`` on standardized features (as glum does; the
    objective and its minimiser are the user's), the iterates recorded through its callback.

"converged" is the same checked claim for both: the Newton decrement (1/2) g^T H^-1 g, which is F - F* to second
order, is within tol * |F| at the returned point, with H the Hessian formed there (and no part of the gradient
lies along a direction of zero curvature, where the decrement cannot see it). L-BFGS pays for that Hessian only
when the objective's decrease in one iteration has fallen to tol * |F|, and again only after it has fallen 4x
further. Without a penalty, classes that a hyperplane separates leave the log-loss and the softmax without a
minimiser: both solvers stop and say so (status 6, :class:`~gdlab.SeparationWarning`), as ``descend`` does.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdlab import exceptions as _exceptions
from gdlab._validation import as_matrix, as_sample_weight, check_positive
from gdlab.descent import IterationInfo, _hessian_function, _Problem, _smallest_margin, initial_parameters, read_target
from gdlab.losses import Loss, get_loss
from gdlab.objectives import Penalty, make_penalty
from gdlab.result import Result, TrajectoryRecorder
from gdlab.scaling import ScaledSource, Scaling
from gdlab.sources.memory import MemorySource

__all__ = ["newton", "lbfgs", "SOLVERS"]

#: the dense Hessian is formed up to this many parameters (n_features + 1) x n_outputs
MAX_HESSIAN_PARAMETERS = 4000
# Armijo's sufficient-decrease fraction, and the smallest step tried before the line search gives up
_ARMIJO = 1e-4
_MIN_STEP = 2.0 ** -40
# equilibrated curvatures below this fraction of the largest count as zero (a collinear column, the softmax's
# common shift), and a gradient with more than this fraction of its norm along them is not at a minimum
_ZERO_CURVATURE = 1e-12
_FLAT_GRADIENT = 1e-8
# an unpenalised L-BFGS fit of a separable loss checks the margins this often (iterations)
_SEPARATION_EVERY = 10


@dataclass
class _Fit:
    """The problem both solvers start from, checked: the rows, the loss, the penalty and the start."""

    mem: MemorySource
    loss: Loss
    penalty: Penalty
    fit_intercept: bool
    single: bool
    theta0: np.ndarray  # (p, k) packed [b; W] in the user's coordinates
    check_separation: bool

    @property
    def off(self) -> int:
        return 1 if self.fit_intercept else 0

    def unpack(self, theta: np.ndarray) -> tuple[np.ndarray, Any]:
        W = theta[self.off:]
        if self.single:
            return W[:, 0].copy(), (float(theta[0, 0]) if self.fit_intercept else 0.0)
        return W.copy(), (theta[0].copy() if self.fit_intercept else np.zeros(theta.shape[1]))

    def symmetric(self, theta: np.ndarray) -> np.ndarray:
        """The softmax is unchanged when every class's intercept (and, without a penalty, every class's weight of a
        feature) moves by one amount: keep them summing to zero over the classes (the minimum-norm parameters, which
        the equilibrated Newton step need not keep)."""
        if not self.loss.coupled:
            return theta
        if not self.penalty.active:
            rows = slice(None)
        elif self.fit_intercept:
            rows = slice(0, 1)
        else:
            return theta
        theta = theta.copy()
        theta[rows] -= theta[rows].mean(axis=1, keepdims=True)
        return theta

    def separated(self, theta: np.ndarray) -> float | None:
        """The smallest margin when theta separates the classes (no minimiser exists then), else None."""
        if not self.check_separation:
            return None
        margin = _smallest_margin(self.mem, theta, self.loss, self.fit_intercept)
        return margin if margin > 0 else None


def _prepare(method: str, X: Any, y: Any, *, loss: str | Loss, epsilon: float, penalty: str | None, alpha: float,
             l1_ratio: float, fit_intercept: bool, coef_init: Any, intercept_init: Any, sample_weight: Any,
             max_parameters: int | None) -> _Fit:
    loss_obj = get_loss(loss, epsilon)
    if not loss_obj.smooth:
        raise ValueError(f"loss={loss_obj.name!r} is not smooth (its derivative jumps), so {method} has no curvature "
                         f"to use; fit it with gdlab.descend(X, y, loss={loss_obj.name!r}), a subgradient method "
                         "with a decaying step.")
    pen = make_penalty(penalty, alpha, l1_ratio)
    if pen.l1:
        raise ValueError(f"penalty={penalty!r} has an L1 part (l1 = {pen.l1:g}), which is not differentiable at 0: "
                         f"{method} needs a smooth objective. Use penalty='l2' or None, or "
                         f"gdlab.descend(X, y, penalty={penalty!r}), whose proximal step handles L1.")
    if y is None:
        raise ValueError(f"y is missing: pass the targets, {method}(X, y).")
    Xa = as_matrix(X, accept_sparse=True)  # (a sparse X stays sparse: its passes and Hessian use the stored entries)
    Y, single = read_target(y, Xa.shape[0], loss_obj)
    m, d = Xa.shape
    k = Y.shape[1]
    sw = as_sample_weight(sample_weight, m)
    if d == 0 and not fit_intercept:
        raise ValueError("X has no features and fit_intercept=False: there is nothing to fit. "
                         "Pass at least one feature or set fit_intercept=True.")
    p = d + (1 if fit_intercept else 0)
    if max_parameters is not None and p * k > max_parameters:
        raise ValueError(f"{method} forms the dense Hessian of {p * k} parameters ((n_features + 1) x n_outputs), "
                         f"more than {max_parameters}; use gdlab.solvers.lbfgs or gdlab.descend, which need only "
                         "gradients.")
    theta = initial_parameters(coef_init, intercept_init, d, k, fit_intercept)
    if intercept_init is None and fit_intercept and coef_init is None:
        null = loss_obj.null_intercept(Y, sw)  # glmnet's null model: the best intercept with zero slopes
        if null is not None:
            theta[0] = null
    mem = MemorySource(Xa, Y, sw, loss_obj, fit_intercept)
    return _Fit(mem, loss_obj, pen, fit_intercept, single, theta,
                check_separation=loss_obj.unbounded_when_separable and not pen.active)


class _NewtonSystem:
    """H d = -g at one point, on the Jacobi-equilibrated Hessian D^-1/2 H D^-1/2 (raw features of very different
    scales would otherwise lose their small-curvature directions to rounding), by an eigendecomposition, so that
    directions of zero curvature are left out instead of divided by zero. H is (k, p, p) for independent outputs,
    (p k, p k) over theta.ravel() for a coupled loss."""

    def __init__(self, H: np.ndarray):
        self.coupled = H.ndim == 2
        self.parts = []
        for B in (H[None] if self.coupled else H):
            B = 0.5 * (B + B.T)
            diag = np.diag(B)
            scale = np.sqrt(np.where(diag > 0, diag, 1.0))
            lam, V = np.linalg.eigh(B / np.outer(scale, scale))
            top = float(lam[-1]) if lam.size and lam[-1] > 0 else 0.0
            keep = lam > top * _ZERO_CURVATURE
            self.parts.append((scale, lam[keep], V[:, keep], top if top > 0 else 1.0))

    def solve(self, g: np.ndarray, g_scale: float) -> tuple[np.ndarray, float, bool]:
        """The direction d (p, k), the decrement (1/2) g^T H^+ g = -g.d/2, and whether g has a part along zero
        curvature above rounding (more than 1e-8 of ``g_scale``, the larger of |g| and the start's |g|): then d
        also descends along that part, by a gradient step scaled by the largest curvature, and the decrement is no
        measure of the gap."""
        cols = [g.ravel()] if self.coupled else [g[:, j] for j in range(g.shape[1])]
        steps, decrement, flat = [], 0.0, False
        for (scale, lam, V, top), col in zip(self.parts, cols):
            ge = col / scale
            c = V.T @ ge
            rest = ge - V @ c
            de = -(V @ (c / lam))
            decrement += 0.5 * float(np.sum(c * c / lam))
            if _norm(rest * scale) > _FLAT_GRADIENT * g_scale:
                flat = True
                de = de - rest / top
            steps.append(de / scale)
        d = steps[0].reshape(g.shape) if self.coupled else np.column_stack(steps)
        return d, decrement, flat


def _target(tol: float, f: float, f0: float) -> float:
    """tol * |F|, floored at the rounding of the start's objective (a perfect fit has F* = 0)."""
    return tol * max(abs(f), np.finfo(float).eps * abs(f0), np.finfo(float).tiny)


def _check_settings(tol: float | None, max_iter: int, record_every: int) -> tuple[float | None, int, int]:
    if tol is not None:
        tol = check_positive("tol", tol, allow_zero=True)
    return (tol, check_positive("max_iter", max_iter, integer=True),
            check_positive("record_every", record_every, integer=True))


def _separation_text(fit: _Fit, n_iter: int, margin: float) -> str:
    return (f"the classes are linearly separable: after iteration {n_iter} every training sample lies on its side "
            f"of the decision boundary (smallest margin {margin:.3g}); without a penalty the {fit.loss.name} loss "
            "has no minimum (it falls towards 0 as the weights grow without bound). Use penalty='l2' with "
            "alpha > 0, which has a finite minimiser")


def _finish(fit: _Fit, method: str, theta: np.ndarray, f: float, recorder: TrajectoryRecorder, *, n_iter: int,
            status: int, message: str, converged: bool, step: float, warn: bool, t_start: float,
            transform: Callable[[np.ndarray], np.ndarray] | None = None, scaling: Scaling | None = None,
            scaling_reason: str = "", extra: dict[str, Any] | None = None) -> Result:
    if warn and status == 6:
        warnings.warn(f"{method}: {message}", _exceptions.SeparationWarning, stacklevel=3)
    elif warn and status in (1, 5):
        warnings.warn(f"{method}: {message}", _exceptions.ConvergenceWarning, stacklevel=3)
    coef, intercept = fit.unpack(theta)
    traj = recorder.finish(fit.fit_intercept, fit.single, transform=transform)
    info = {"seconds": time.perf_counter() - t_start, "fit_intercept": fit.fit_intercept, "loss": fit.loss.name,
            "penalty": "l2" if fit.penalty.l2 else None, "alpha": fit.penalty.l2, "scaling": scaling,
            "diagnosis": None, "summary": message, "theta": theta.copy()}
    info.update(extra or {})
    return Result(coef=coef, intercept=intercept, loss=float(f), n_iter=n_iter, n_updates=n_iter,
                  converged=converged, diverged=False, status=status, message=message, method=method,
                  source="memory", source_reason=f"{method} evaluates the loss on the rows in memory",
                  trajectory=traj, learning_rate=float(step),
                  scaling="standardize" if scaling is not None else "none", scaling_reason=scaling_reason,
                  extra=info)


def newton(X: Any, y: Any, *, loss: str | Loss = "squared_error", epsilon: float = 0.1, penalty: str | None = None,
           alpha: float = 0.0001, l1_ratio: float = 0.15, fit_intercept: bool = True, coef_init: Any = None,
           intercept_init: Any = None, sample_weight: Any = None, tol: float | None = 1e-10, max_iter: int = 100,
           record_every: int = 1, callback: Callable[[IterationInfo], bool | None] | None = None,
           warn: bool = True) -> Result:
    """Newton's method (IRLS) with a backtracking line search: the reference that "jumps straight to the bottom".

    Each iteration forms the Hessian H at theta (one pass over X per output; for the softmax the (p K) x (p K)
    block Hessian), solves H d = -g on its equilibrated form, and halves the step from 1 until Armijo's condition
    F(theta + s d) <= F(theta) + 1e-4 s g.d holds. For the squared error one step from any start lands on the
    Normal Equation's solution (``gdlab.closed_form``).

    Parameters
    ----------
    X : (m, d) array-like; y : (m,) or (m, k) (one-hot (m, K) for loss="multinomial"; 0/1 or -1/+1 labels for the
        binary losses).
    loss, epsilon : any smooth loss of :data:`gdlab.losses.LOSSES` ("squared_error", "huber",
        "squared_epsilon_insensitive", "poisson", "log_loss", "squared_hinge", "modified_huber", "multinomial") or
        a :class:`~gdlab.losses.Loss`; the hinge, perceptron and epsilon-insensitive losses are refused.
    penalty, alpha, l1_ratio : None or "l2" (alpha/2 |w|^2; scikit-learn's LogisticRegression(C) is alpha =
        1/(n C), PoissonRegressor(alpha) the same alpha); an L1 part is refused (use :func:`gdlab.descend`).
    fit_intercept, coef_init, intercept_init, sample_weight : as in :func:`gdlab.descend`; the default start is
        zero slopes with the null model's intercept.
    tol : converged when the Newton decrement (1/2) g^T H^-1 g (F - F* to second order) is within tol * |F|
        (None: never claim convergence; run until max_iter or until no step decreases F).
    max_iter : Newton steps allowed (the last point is still checked).
    record_every : keep every k-th iterate in the trajectory (all of them by default: there are few).
    callback : called after each step with an :class:`~gdlab.IterationInfo`; returning True stops the run.
    warn : ConvergenceWarning / SeparationWarning when the run ends short of a certified minimum.

    Returns
    -------
    Result with method "newton": status 0 converged, 1 max_iter reached, 3 stopped by the callback, 5 stalled (no
    step decreases F), 6 separable; ``learning_rate`` and the trajectory's ``learning_rate`` hold the line
    search's step s_t (1 for a full Newton step); ``extra`` holds ``decrement`` and ``hessian_evaluations``.
    """
    t_start = time.perf_counter()
    tol, max_iter, record_every = _check_settings(tol, max_iter, record_every)
    fit = _prepare("newton", X, y, loss=loss, epsilon=epsilon, penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                   fit_intercept=fit_intercept, coef_init=coef_init, intercept_init=intercept_init,
                   sample_weight=sample_weight, max_parameters=MAX_HESSIAN_PARAMETERS)
    problem = _Problem(fit.mem, fit.penalty, fit.fit_intercept)
    hessian_at = _hessian_function(fit.mem, fit.fit_intercept, fit.penalty.l2)
    theta = fit.theta0
    f, g = problem.value_and_grad(theta)
    if not math.isfinite(f):
        raise ValueError("the objective at the starting point is not finite; check coef_init/intercept_init and "
                         "the data.")
    f0, g0_norm = f, _norm(g)
    recorder = TrajectoryRecorder(record_every, max_records=None)
    recorder.add(0, theta, f, g0_norm, math.nan)
    status, message, converged = 1, f"max_iter={max_iter} Newton steps reached", False
    decrement, step, n_iter, hessians, evaluations = math.nan, math.nan, 0, 0, 1
    while True:
        d, decrement, flat = _NewtonSystem(hessian_at(theta)).solve(g, max(_norm(g), g0_norm))
        hessians += 1
        if tol is not None and not flat and decrement <= _target(tol, f, f0):
            status, converged = 0, True
            message = (f"converged: the Newton decrement (1/2) g^T H^-1 g = {decrement:.3g} is within tol={tol:g} of "
                       f"the objective {f:.10g} after {n_iter} Newton step(s)")
            break
        if n_iter >= max_iter:
            message += f" (Newton decrement {decrement:.3g})"
            break
        slope = float(np.vdot(g, d))
        s = 1.0
        while True:
            cand = theta + s * d
            with np.errstate(over="ignore", invalid="ignore"):
                f_c, g_c = problem.value_and_grad(cand)
            evaluations += 1
            if math.isfinite(f_c) and f_c <= f + _ARMIJO * s * slope:
                break
            s *= 0.5
            if s < _MIN_STEP:
                break
        if s < _MIN_STEP:
            status = 5
            message = (f"stalled: no step along the Newton direction decreases the objective {f:.10g} (Newton "
                       f"decrement {decrement:.3g}" + (f", above tol={tol:g} of it" if tol is not None else "")
                       + "): it is at the limit of floating-point precision")
            break
        theta, f, g, step = fit.symmetric(cand), f_c, g_c, s
        n_iter += 1
        recorder.add(n_iter, theta, f, math.sqrt(float(np.vdot(g, g))), s)
        margin = fit.separated(theta)
        if margin is not None:
            status, message = 6, _separation_text(fit, n_iter, margin)
            break
        if callback is not None:
            W, b = fit.unpack(theta)
            if callback(IterationInfo(n_iter, W, b, f, math.sqrt(float(np.vdot(g, g))), s)):
                status, message = 3, f"stopped by the callback at iteration {n_iter}"
                break
    return _finish(fit, "newton", theta, f, recorder, n_iter=n_iter, status=status, message=message,
                   converged=converged, step=step, warn=warn, t_start=t_start,
                   extra={"decrement": decrement, "hessian_evaluations": hessians,
                          "function_evaluations": evaluations})


def lbfgs(X: Any, y: Any, *, loss: str | Loss = "squared_error", epsilon: float = 0.1, penalty: str | None = None,
          alpha: float = 0.0001, l1_ratio: float = 0.15, fit_intercept: bool = True, coef_init: Any = None,
          intercept_init: Any = None, sample_weight: Any = None, tol: float | None = 1e-10, max_iter: int = 15000,
          memory_size: int = 10, standardize: bool = True, record_every: int = 1,
          callback: Callable[[IterationInfo], bool | None] | None = None, warn: bool = True) -> Result:
    """L-BFGS (``scipy.optimize.minimize(method="L-BFGS-B", jac=True)``) on the same objective as :func:`newton`.

    Parameters
    ----------
    X, y, loss, epsilon, penalty, alpha, l1_ratio, fit_intercept, coef_init, intercept_init, sample_weight :
        as in :func:`newton`.
    tol : converged when the Newton decrement (1/2) g^T H^-1 g is within tol * |F| at the returned point, H the
        Hessian formed there. It is formed once the objective's decrease in one iteration has fallen to tol * |F|
        (and, after a failed check, 4x further); a run that scipy ends first (its line search finds no decrease, or
        max_iter) is checked at its end. scipy's own ftol and gtol are 0, so the certificate decides. Above
        :data:`MAX_HESSIAN_PARAMETERS` parameters no Hessian is formed and the run is not certified (status 5 when
        scipy stops). None: never claim convergence.
    max_iter : L-BFGS iterations (scipy's maxiter; function evaluations are capped at 20 x max_iter).
    memory_size : the pairs (s, y) kept for the inverse-Hessian model (scipy's maxcor).
    standardize : run on centred, unit-variance features (as ``descend`` and glum do); coefficients, intercept,
        trajectory and objective are the user's. L-BFGS is not invariant to the features' units: on raw ones it
        needs many more iterations.
    record_every, callback, warn : as in :func:`newton`.

    Returns
    -------
    Result with method "lbfgs" (statuses as :func:`newton`'s); the trajectory's ``learning_rate`` is NaN (scipy does
    not expose its line search's step); ``extra`` holds ``decrement``, ``hessian_evaluations``,
    ``function_evaluations`` and scipy's ``scipy_message``.
    """
    from scipy.optimize import minimize

    t_start = time.perf_counter()
    tol, max_iter, record_every = _check_settings(tol, max_iter, record_every)
    memory_size = check_positive("memory_size", memory_size, integer=True)
    if standardize not in (True, False):
        raise ValueError(f"standardize must be True or False, got {standardize!r}.")
    fit = _prepare("lbfgs", X, y, loss=loss, epsilon=epsilon, penalty=penalty, alpha=alpha, l1_ratio=l1_ratio,
                   fit_intercept=fit_intercept, coef_init=coef_init, intercept_init=intercept_init,
                   sample_weight=sample_weight, max_parameters=None)
    mem, shape = fit.mem, fit.theta0.shape
    scaling = _preconditioner(fit) if standardize and shape[0] > fit.off else None
    if scaling is None:
        problem = _Problem(mem, fit.penalty, fit.fit_intercept)
        to_user, grad_to_user, reason = (lambda th: th), (lambda g: g), "standardize=False: L-BFGS runs on the raw " \
            "features"
    else:
        problem = _Problem(ScaledSource(mem, scaling), fit.penalty, fit.fit_intercept, scaling.scale)
        to_user, grad_to_user = scaling.to_user, scaling.grad_to_user
        reason = "standardize=True: L-BFGS runs on centred, unit-variance features, reported in the original units"
    can_certify = shape[0] * shape[1] <= MAX_HESSIAN_PARAMETERS
    hessian_at = _hessian_function(mem, fit.fit_intercept, fit.penalty.l2)
    theta_start = fit.theta0 if scaling is None else scaling.to_descent(fit.theta0)

    last: dict[str, Any] = {}

    def evaluate(x: np.ndarray) -> tuple[float, np.ndarray]:
        with np.errstate(over="ignore", invalid="ignore"):
            f_x, g_x = problem.value_and_grad(x.reshape(shape))
        last.update(x=x.copy(), f=f_x, g=g_x)
        return (f_x, g_x.ravel()) if math.isfinite(f_x) else (math.inf, np.zeros(x.size))

    def gradient_at(x: np.ndarray) -> np.ndarray:
        if "x" not in last or not np.array_equal(last["x"], x):
            evaluate(x)
        return last["g"]

    f0, g0 = problem.value_and_grad(theta_start)
    if not math.isfinite(f0):
        raise ValueError("the objective at the starting point is not finite; check coef_init/intercept_init and "
                         "the data.")
    g0_norm = _norm(grad_to_user(g0))
    recorder = TrajectoryRecorder(record_every, max_records=None)
    recorder.add(0, theta_start, f0, g0_norm, math.nan)
    state = {"n_iter": 0, "f": f0, "x": theta_start.ravel().copy(), "wait_below": math.inf, "hessians": 0,
             "certified": False, "decrement": math.nan, "flat": False, "status": None, "margin": None}

    def certify(x: np.ndarray, f_x: float) -> bool:
        """The Newton decrement with the Hessian at x (in the user's coordinates: the decrement is invariant)."""
        theta_u = to_user(x.reshape(shape))
        g_u = grad_to_user(gradient_at(x))
        _, dec, flat = _NewtonSystem(hessian_at(theta_u)).solve(g_u, max(_norm(g_u), g0_norm))
        state["hessians"] += 1
        state.update(decrement=dec, flat=flat)
        state["certified"] = not flat and dec <= _target(tol, f_x, f0)
        return state["certified"]

    def on_iteration(intermediate_result: Any) -> None:
        x, f_x = np.asarray(intermediate_result.x, dtype=float), float(intermediate_result.fun)
        it = state["n_iter"] = state["n_iter"] + 1
        decrease, state["f"], state["x"] = state["f"] - f_x, f_x, x.copy()
        g_x = gradient_at(x)
        recorder.add(it, x.reshape(shape), f_x, _norm(grad_to_user(g_x)), math.nan)
        if fit.check_separation and it % _SEPARATION_EVERY == 0:
            margin = fit.separated(to_user(x.reshape(shape)))
            if margin is not None:
                state.update(status=6, margin=margin)
                raise StopIteration
        if callback is not None:
            W, b = fit.unpack(to_user(x.reshape(shape)))
            if callback(IterationInfo(it, W, b, f_x, _norm(grad_to_user(g_x)), math.nan)):
                state["status"] = 3
                raise StopIteration
        if (tol is not None and can_certify and decrease <= tol * abs(f_x) and decrease <= state["wait_below"]):
            if certify(x, f_x):
                raise StopIteration
            state["wait_below"] = max(decrease, 0.0) / 4.0

    res = minimize(evaluate, theta_start.ravel(), jac=True, method="L-BFGS-B", callback=on_iteration,
                   options={"maxiter": max_iter, "maxfun": 20 * max_iter, "maxcor": memory_size, "ftol": 0.0,
                            "gtol": 0.0})
    x, f, n_iter = state["x"], state["f"], state["n_iter"]
    if not np.array_equal(np.asarray(res.x), x) and math.isfinite(res.fun) and res.fun <= f:
        x, f = np.asarray(res.x, dtype=float), float(res.fun)  # scipy's last point, if it went on without a callback
        n_iter = max(n_iter, int(res.nit))
        recorder.add(n_iter, x.reshape(shape), f, _norm(grad_to_user(gradient_at(x))), math.nan)
    status = state["status"]
    if status is None and fit.check_separation:
        margin = fit.separated(to_user(x.reshape(shape)))
        if margin is not None:
            status, state["margin"] = 6, margin
    if status is None and not state["certified"] and tol is not None and can_certify:
        certify(x, f)
    converged = status is None and state["certified"]
    dec = state["decrement"]
    scipy_message = str(res.message)
    if converged:
        status = 0
        message = (f"converged: the Newton decrement (1/2) g^T H^-1 g = {dec:.3g} is within tol={tol:g} of the "
                   f"objective {f:.10g} after {n_iter} L-BFGS iteration(s)")
    elif status == 6:
        message = _separation_text(fit, n_iter, state["margin"])
    elif status == 3:
        message = f"stopped by the callback at iteration {n_iter}"
    else:
        status = 1 if n_iter >= max_iter or res.nfev >= 20 * max_iter else 5
        why = (f"max_iter={max_iter} iterations reached" if status == 1 and n_iter >= max_iter
               else f"stalled: scipy's L-BFGS-B stopped ({scipy_message})")
        if tol is None:
            message = why
        elif not can_certify:
            message = (f"{why}; not certified: {shape[0] * shape[1]} parameters are more than the "
                       f"{MAX_HESSIAN_PARAMETERS} for which the Hessian is formed")
        else:
            message = (f"{why}; the Newton decrement {dec:.3g} is above tol={tol:g} of the objective {f:.10g}"
                       + (" (the gradient has a part along a direction of zero curvature)" if state["flat"] else ""))
    return _finish(fit, "lbfgs", to_user(x.reshape(shape)), f, recorder, n_iter=n_iter, status=status,
                   message=message, converged=converged, step=math.nan, warn=warn, t_start=t_start,
                   transform=None if scaling is None else scaling.to_user, scaling=scaling, scaling_reason=reason,
                   extra={"decrement": dec, "hessian_evaluations": state["hessians"],
                          "function_evaluations": int(res.nfev), "scipy_message": scipy_message})


def _preconditioner(fit: _Fit) -> Scaling:
    """Standardized features, each further scaled so that the curvature bound of the objective, data and ridge
    together, is the same along every coefficient: with x' = (x - c) / t, the Hessian's diagonal is
    (kappa s_j^2 + l2) / t_j^2 (kappa the loss's curvature, s_j the feature's spread), so t_j = sqrt(s_j^2 + l2 /
    kappa). Without a penalty this is plain standardization; with one, a feature of small spread no longer makes
    the ridge term dominate one direction (raw breast-cancer features: a condition number of 10^4 from it)."""
    mem, loss = fit.mem, fit.loss
    base = Scaling.from_columns(mem.X, mem.sample_weight, fit.fit_intercept)
    if not fit.penalty.l2:
        return base
    kappa = loss.curvature
    if kappa is None:  # no global bound (Poisson): the mean curvature at the start
        theta = fit.theta0
        eta = mem.X @ theta[fit.off:] + (theta[0] if fit.fit_intercept else 0.0)
        kappa = float(np.average(loss.second_derivative(eta, mem.Y).mean(axis=1), weights=mem.sample_weight))
    kappa = kappa if kappa > 0 and math.isfinite(kappa) else 1.0
    return Scaling(base.center, np.sqrt(base.scale ** 2 + fit.penalty.l2 / kappa), fit.fit_intercept)


def _norm(a: np.ndarray) -> float:
    return math.sqrt(float(np.vdot(a, a)))


#: the reference solvers by name (compare's racers)
SOLVERS: dict[str, Callable[..., Result]] = {"newton": newton, "lbfgs": lbfgs}
