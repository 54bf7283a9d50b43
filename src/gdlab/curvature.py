"""The theory that explains gradient descent on least squares: curvature, step bounds and predicted rates.

For F(w, b) = (1/n) sum_i s_i (x_i w + b - y_i)^2 the Hessian is constant, H = (2/n) X_b^T S X_b (intercept column
included, plus l2 on the coefficients for an L2 penalty). With L and mu its largest and smallest eigenvalues and
k = L / mu its condition number, gradient descent with a constant step eta moves the error e_t = theta_t - theta* by
e_{t+1} = (I - eta H) e_t, so

* it converges iff eta < 2 / L (the *stable bound*);
* the error contracts per step by rate(eta) = max_i |1 - eta lambda_i| = max(|1 - eta L|, |1 - eta mu|);
* the best constant step is 2 / (L + mu), with rate (k - 1) / (k + 1);
* heavy-ball momentum at eta = 4 / (sqrt L + sqrt mu)^2, beta = ((sqrt k - 1)/(sqrt k + 1))^2 has rate
  (sqrt k - 1) / (sqrt k + 1) (Polyak, 1964).

The loss gap F(theta_t) - F* shrinks by rate^2 per step. For other smooth losses the same numbers, scaled by the
loss's curvature bound (1 for Huber instead of 2), bound the Hessian from above.

Every 'auto' step of gdlab is decided here (:func:`auto_parameters`), once, for every optimizer and face. The
worst-case optimal step 2/(L+mu) is right when the condition number k is moderate; when k is huge (raw features, a
constant or duplicated column: mu = 0) it is almost 2/L, where the steepest direction, which carries most of the
loss, oscillates and hardly decays. On a budget of T iterations to a gap tolerance tol, no step can finish the
directions with eigenvalues below L / k_T anyway, with k_T the condition number at which the best rate^(2T) = tol;
so the step is chosen for k_eff = min(k, k_T): the fast directions are finished within the budget, the slow ones
move as fast as any constant step allows, and mu = 0 is no longer a special case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdlab._validation import as_matrix, as_sample_weight
from gdlab.sources.gram import GramStats

__all__ = ["Curvature", "auto_parameters", "batch_smoothness", "best_budget_step", "budget_condition_number", "curvature", "curvature_from_operator",
           "curvature_from_stats", "ADAPTIVE_BASE_STEP"]

#: the 'auto' step of the optimizers that scale their steps per coordinate (they move each parameter by about this
#: much per iteration), times the spread of the target in the descent's coordinates (see :func:`auto_parameters`)
ADAPTIVE_BASE_STEP = {"adagrad": 0.5, "rmsprop": 0.03, "adam": 0.02}
#: rmsprop's step, normalised by a short running mean square, moves each parameter by about eta whatever the
#: gradient: with a constant step it hovers at that distance from the optimum, so 'auto' decays it as 1/sqrt(t)
#: (measured on five scikit-learn data sets: 1e-5 of the minimum in 1000 iterations, against 1e-3 constant)
ADAPTIVE_DECAY = {"rmsprop": 0.5}
#: the tolerance the budget is planned for when the caller gives none (tol=None runs every iteration)
_PLANNING_TOL = 1e-10


@dataclass(frozen=True)
class Curvature:
    """Curvature facts of a least-squares objective.

    eigenvalues : (p,) ascending eigenvalues of the Hessian H; L, mu : the largest and smallest.
    """

    eigenvalues: np.ndarray
    fit_intercept: bool = True
    #: False when only L is known (wide data: a few Lanczos iterations); mu is then reported as 0
    mu_known: bool = True

    @property
    def L(self) -> float:
        return float(self.eigenvalues[-1])

    @property
    def mu(self) -> float:
        return float(max(self.eigenvalues[0], 0.0))

    @property
    def condition_number(self) -> float:
        return self.L / self.mu if self.mu > 0 else math.inf

    @property
    def stable_step(self) -> float:
        """2 / L: every constant step below it converges, every step above it diverges."""
        return 2.0 / self.L if self.L > 0 else math.inf

    @property
    def best_step(self) -> float:
        """2 / (L + mu): the constant step with the fastest worst-case rate."""
        return 2.0 / (self.L + self.mu) if self.L > 0 else math.inf

    def rate(self, learning_rate: float) -> float:
        """Contraction of the error per step of GD at this constant step: max |1 - eta lambda_i|."""
        return float(max(abs(1.0 - learning_rate * self.L), abs(1.0 - learning_rate * self.mu)))

    @property
    def best_rate(self) -> float:
        """(k - 1) / (k + 1), the rate of GD at the best step."""
        k = self.condition_number
        return 1.0 if not math.isfinite(k) else (k - 1.0) / (k + 1.0)

    @property
    def heavy_ball(self) -> dict[str, float]:
        """Polyak's optimal heavy-ball parameters and rate: eta = 4/(sqrt L + sqrt mu)^2, beta = r^2,
        r = (sqrt k - 1)/(sqrt k + 1)."""
        sl, sm = math.sqrt(self.L), math.sqrt(self.mu)
        r = (sl - sm) / (sl + sm) if sl + sm > 0 else 1.0
        return {"learning_rate": 4.0 / (sl + sm) ** 2 if sl + sm > 0 else math.inf, "beta": r * r, "rate": r}

    def iterations_to(self, reduction: float, learning_rate: float | None = None) -> float:
        """Predicted GD iterations to shrink the loss gap by the factor ``reduction`` (e.g. 1e-10)."""
        r = self.rate(self.best_step if learning_rate is None else learning_rate)
        if r >= 1.0:
            return math.inf
        if r == 0.0:
            return 1.0
        return math.log(reduction) / (2.0 * math.log(r))

    @property
    def mu_positive(self) -> float:
        """The smallest eigenvalue above rounding (mu when the problem has full rank). Directions with eigenvalue 0
        do not move under descent and do not change the loss, so the step is planned for this one."""
        p = self.eigenvalues.shape[0]
        live = self.eigenvalues[self.eigenvalues > self.L * max(p, 1) * 1e-13]
        return float(live[0]) if live.size else self.mu

    @property
    def rank_deficient(self) -> bool:
        """mu = 0 to working precision: a constant or duplicated column, one-hot columns beside the intercept, or
        more features than rows. The minimiser is then not unique; descent from a point of the row space (zeros)
        converges to the minimum-norm one."""
        p = self.eigenvalues.shape[0]
        return self.mu_known and self.mu <= self.L * max(p, 1) * 1e-13

    def spectral_radius(self, learning_rate: float, optimizer: str = "gd", beta: float = 0.0) -> float:
        """The asymptotic contraction per step of the error of gd, momentum (heavy ball) or nesterov with these
        constant parameters, on this quadratic: the largest |root| of each eigen-direction's recurrence.

        gd: e' = (1 - eta l) e. momentum (v' = g + beta v, theta' = theta - eta v): the 2 x 2 matrix
        [[1 - eta l, -eta beta], [l, beta]]; nesterov (direction g + beta v'): [[1 - eta l (1 + beta),
        -eta beta^2], [l, beta]]. Above 1 the run diverges; directions with l = 0 do not move and are left out.
        """
        lam = self.eigenvalues[self.eigenvalues > self.L * 1e-13] if self.L > 0 else np.zeros(0)
        if lam.size == 0:
            return 0.0
        eta = float(learning_rate)
        if optimizer == "gd" or beta == 0.0 and optimizer in ("momentum", "nesterov"):
            return float(np.max(np.abs(1.0 - eta * lam)))
        if optimizer == "momentum":
            a, b, c, d = 1.0 - eta * lam, -eta * beta, lam, beta
        elif optimizer == "nesterov":
            a, b, c, d = 1.0 - eta * lam * (1.0 + beta), -eta * beta * beta, lam, beta
        else:
            raise ValueError(f"spectral_radius knows gd, momentum and nesterov, not {optimizer!r}.")
        tr, det = a + d, a * d - b * c
        disc = np.sqrt((tr * tr - 4.0 * det).astype(complex))
        return float(np.max(np.maximum(np.abs((tr + disc) / 2.0), np.abs((tr - disc) / 2.0))))

    def diverges(self, learning_rate: float) -> bool:
        return learning_rate >= self.stable_step

    def to_dict(self) -> dict[str, Any]:
        def f(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "L": f(self.L), "mu": f(self.mu), "condition_number": f(self.condition_number),
            "stable_step": f(self.stable_step), "best_step": f(self.best_step), "best_rate": f(self.best_rate),
            "heavy_ball": {k: f(v) for k, v in self.heavy_ball.items()},
            "eigenvalues": [float(v) for v in self.eigenvalues], "mu_known": self.mu_known,
            "rank_deficient": self.rank_deficient,
        }

    def __repr__(self) -> str:
        return (f"Curvature(L={self.L:.6g}, mu={self.mu:.6g}, condition_number={self.condition_number:.6g}, "
                f"stable_step={self.stable_step:.6g}, best_step={self.best_step:.6g})")


def budget_condition_number(max_iter: int, tol: float | None, optimizer: str = "gd") -> float:
    """k_T: the condition number at which the best constant-parameter rate r gives r^(2 T) = tol (T = max_iter).

    gd's best rate is (k - 1)/(k + 1), so k_T = (1 + r)/(1 - r); heavy ball and nesterov reach (sqrt k - 1) /
    (sqrt k + 1), so k_T is the square of that. Directions with eigenvalues below L / k_T cannot be finished within
    the budget by any constant step; planning for them only slows the others (see the module docstring).
    """
    t = _PLANNING_TOL if tol is None or not tol > 0 else min(float(tol), 0.5)
    r = t ** (1.0 / (2.0 * max(int(max_iter), 1)))
    if r >= 1.0:
        return math.inf
    k = (1.0 + r) / (1.0 - r)
    return k * k if optimizer in ("momentum", "nesterov") else k


def best_budget_step(eigenvalues: np.ndarray, gaps: np.ndarray, max_iter: int) -> float:
    """The constant gd step that minimises the predicted gap after T = max_iter steps from a known start:
    sum_i g_i (1 - eta l_i)^(2T), with l_i the Hessian's eigenvalues and g_i the start's gap along each
    eigen-direction. Directions that start at their optimum (g_i = 0: a constant column under a ridge penalty, the
    null space of collinear columns) then do not hold the step back, as they do in the worst case."""
    lam = np.asarray(eigenvalues, dtype=float)
    g = np.asarray(gaps, dtype=float)
    keep = (g > 0) & (lam > 0)
    L = float(lam.max())
    if not np.any(keep) or not L > 0:
        return 1.0 / L if L > 0 else 1.0
    lam, logg = lam[keep], np.log(g[keep])
    T2 = 2.0 * max(int(max_iter), 1)

    def log_gap(eta: np.ndarray) -> np.ndarray:
        z = logg[None, :] + T2 * np.log(np.maximum(np.abs(1.0 - eta[:, None] * lam[None, :]), 1e-300))
        top = z.max(axis=1)
        return top + np.log(np.exp(z - top[:, None]).sum(axis=1))

    upper = 2.0 / L * (1.0 - 1e-9)  # every step must stay stable: the other directions were ignored, not dropped
    grid = np.linspace(upper / 2000.0, upper, 2000)
    values = log_gap(grid)
    i = int(np.argmin(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    for _ in range(60):  # golden section on the bracket around the best grid point
        a = hi - 0.618 * (hi - lo)
        b = lo + 0.618 * (hi - lo)
        if log_gap(np.array([a]))[0] <= log_gap(np.array([b]))[0]:
            hi = b
        else:
            lo = a
    # to six digits: the minimum is flat, so its argmin moves with the last bits of the statistics; rounding keeps
    # two ways of forming them (the compiled and BLAS passes) on the same path, at no cost to the predicted gap
    return float(f"{0.5 * (lo + hi):.6g}")


def auto_parameters(curv: Curvature | None, optimizer: str, *, max_iter: int, tol: float | None,
                    target_scale: float = 1.0, smooth: bool = True,
                    error_weights: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[float, dict[str, float], str]:
    """learning_rate='auto': the step (and momentum) of each optimizer, and the reason in words.

    * gd: when the start's error along each eigen-direction is known (``error_weights``: the squared error on
      statistics), the step with the least predicted gap after max_iter iterations (:func:`best_budget_step`);
      otherwise 2 / (L + mu_eff), the best worst-case constant step for k_eff = min(k, k_T)
      (:func:`budget_condition_number`), with k = L / mu_+ and mu_+ the smallest eigenvalue above rounding
      (:attr:`Curvature.mu_positive`);
    * momentum: Polyak's heavy ball for k_eff, eta = 4 / (sqrt L + sqrt mu_eff)^2, beta = ((sqrt k_eff - 1) /
      (sqrt k_eff + 1))^2, step and beta chosen together;
    * nesterov: eta = 1 / L, beta = (sqrt k_eff - 1) / (sqrt k_eff + 1);
    * adagrad, rmsprop, adam: they move each parameter by about eta per step whatever the gradient's size, so the
      step is :data:`ADAPTIVE_BASE_STEP` times ``target_scale`` (the target's spread: in standardized
      coordinates every coefficient is of that order); rmsprop's decays as 1/sqrt(t) (:data:`ADAPTIVE_DECAY`,
      returned as the parameter ``"decay_power"`` for the caller's schedule);
    * a non-smooth loss (no curvature bound): 1 / L of its smooth part's scale, decaying as 1/sqrt(t) (the
      caller's schedule).
    Without a curvature (no statistics) gd, momentum and nesterov cannot choose: ValueError.
    """
    if optimizer in ADAPTIVE_BASE_STEP:
        eta = ADAPTIVE_BASE_STEP[optimizer] * (target_scale if target_scale > 0 and math.isfinite(target_scale)
                                               else 1.0)
        params = {"decay_power": ADAPTIVE_DECAY[optimizer]} if optimizer in ADAPTIVE_DECAY else {}
        decay = " / sqrt(t + 1)" if params else ""
        return eta, params, f"{ADAPTIVE_BASE_STEP[optimizer]:g} x the target's spread {target_scale:.4g}{decay}"
    if curv is None or not curv.L > 0:
        if curv is not None:  # L = 0: a loss that does not depend on the parameters; any step is stable
            return 1.0, ({} if optimizer == "gd" else {"beta": 0.0}), "L = 0 (the loss is flat)"
        raise ValueError("learning_rate='auto' needs the curvature (the statistics of X) for optimizer="
                         f"{optimizer!r}; give a number or a schedule.")
    L = curv.L
    k_budget = budget_condition_number(max_iter, tol, optimizer)
    # mu = 0 (a constant or duplicated column) is not a flat direction of the loss but no direction at all: the step
    # is planned on the smallest eigenvalue above rounding
    k = L / curv.mu_positive if curv.mu_known and curv.mu_positive > 0 else math.inf
    k_eff = min(k, k_budget)
    mu_eff = L / k_eff
    capped = "" if k <= k_budget else (f" (k_eff = {k_eff:.4g}: the budget of {max_iter} iterations cannot finish "
                                       f"directions flatter than L/{k_eff:.4g})")
    if not smooth:
        return 1.0 / L, ({} if optimizer == "gd" else {"beta": 0.0}), "1/L of the loss's smooth scale"
    if optimizer == "gd" and error_weights is not None:
        eta = best_budget_step(error_weights[0], error_weights[1], max_iter)
        return eta, {}, (f"the constant step with the least predicted gap after {max_iter} iterations from this "
                         f"start (its error along each eigen-direction; 2/L = {2.0 / L:.6g})")
    if optimizer == "gd":
        return 2.0 / (L + mu_eff), {}, f"2/(L+mu_eff) with L = {L:.6g}, mu_eff = {mu_eff:.6g}" + capped
    sk = math.sqrt(k_eff)
    if optimizer == "momentum":
        sl, sm = math.sqrt(L), math.sqrt(mu_eff)
        r = (sk - 1.0) / (sk + 1.0)
        return 4.0 / (sl + sm) ** 2, {"beta": r * r}, "Polyak's heavy ball for " + (capped.strip(" ()") or
                                                                                     f"k = {k_eff:.4g}")
    if optimizer == "nesterov":
        return 1.0 / L, {"beta": (sk - 1.0) / (sk + 1.0)}, "1/L and (sqrt k - 1)/(sqrt k + 1) for " + (
            capped.strip(" ()") or f"k = {k_eff:.4g}")
    raise ValueError(f"learning_rate='auto' has no rule for optimizer {optimizer!r}.")


def batch_smoothness(L: float, L_max: float, m: int, batch_size: int) -> float:
    """The expected smoothness of a mini-batch gradient, B rows drawn without replacement (Gower et al., 2019):
    L_B = m (B - 1) / (B (m - 1)) L + (m - B) / (B (m - 1)) L_max, between L (the full batch, B = m) and L_max, the
    largest single row's curvature (B = 1). A constant step below 1 / L_B keeps SGD stable in expectation."""
    B = min(int(batch_size), m)
    L_B = L if m == 1 else (m * (B - 1)) / (B * (m - 1)) * L + (m - B) / (B * (m - 1)) * L_max
    return max(L_B, np.finfo(float).tiny)


def curvature_from_operator(matvec: Any, p: int, fit_intercept: bool = True) -> Curvature:
    """L alone from Hessian-vector products (wide data, where the p x p Hessian is not formed): Lanczos
    (scipy's eigsh) to a relative accuracy of 1e-2 on a basis of 12 vectors, about twenty products. mu is unknown
    (``mu_known=False``); L is raised by 3% so that a step planned from it stays below the true 2/L. (A tolerance of
    1e-4 took 91 products and 2 s on 200000 x 65536 sparse rows, ARPACK's own work on the long basis half of it,
    for an L that 'auto' only needs for its first step and the line search's floor.)"""
    import scipy.sparse.linalg as spla

    op = spla.LinearOperator((p, p), matvec=matvec, dtype=np.float64)
    rng = np.random.default_rng(0)
    L = float(spla.eigsh(op, k=1, which="LA", tol=1e-2, ncv=min(p, 12), v0=rng.standard_normal(p),
                         return_eigenvectors=False)[0])
    return Curvature(np.array([0.0, 1.03 * max(L, 0.0)]), fit_intercept, mu_known=False)


def curvature_from_stats(stats: GramStats, fit_intercept: bool = True, loss_curvature: float = 2.0,
                         l2: float | np.ndarray = 0.0) -> Curvature:
    """Curvature of (loss_curvature/n) X_b^T S X_b + l2 (coefficients only; a number or one per coefficient),
    from the one-pass statistics."""
    if fit_intercept:
        # eigenvalues of the design Gram [[n, n mx^T], [n mx, Cxx + n mx mx^T]] / n, from the centred statistics
        g = stats.design_gram(True) / stats.n
    else:
        g = stats.design_gram(False) / stats.n
    h = loss_curvature * g
    if np.any(l2):
        idx = np.arange(1 if fit_intercept else 0, h.shape[0])
        h[idx, idx] += l2
    if h.shape[0] == 0:
        return Curvature(np.zeros(1), fit_intercept)
    eig = np.linalg.eigvalsh(0.5 * (h + h.T))
    return Curvature(eig, fit_intercept)


def curvature(X: Any, *, fit_intercept: bool = True, sample_weight: Any = None, loss: str = "squared_error",
              l2: float = 0.0) -> Curvature:
    """Curvature facts (L, mu, stable step 2/L, best step 2/(L+mu), rates) of the mean loss on X, from the loss's
    curvature bound c: the Hessian is at most (c/n) X_b^T S X_b (c = 2 for the squared error, 1/4 for the
    log-loss, 1/2 for the softmax).

    One pass over X (the Gram statistics); y is not needed, since the bound does not depend on it.
    """
    from gdlab.losses import get_loss

    Xa = as_matrix(X)
    sw = as_sample_weight(sample_weight, Xa.shape[0])
    lo = get_loss(loss)
    c = lo.curvature
    if c is None:
        why = ("is not smooth" if not lo.smooth else
               "has no global curvature bound (its second derivative grows without bound)")
        raise ValueError(f"loss {lo.name!r} {why}: it has no curvature bound L; use a loss with one "
                         "(squared_error, huber, log_loss, multinomial, ...).")
    stats = GramStats.from_arrays(Xa, np.zeros((Xa.shape[0], 0)), sw)
    return curvature_from_stats(stats, fit_intercept, c, l2)
