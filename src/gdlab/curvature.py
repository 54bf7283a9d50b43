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
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdlab._validation import as_matrix, as_sample_weight
from gdlab.sources.gram import GramStats

__all__ = ["Curvature", "curvature", "curvature_from_stats"]


@dataclass(frozen=True)
class Curvature:
    """Curvature facts of a least-squares objective.

    eigenvalues : (p,) ascending eigenvalues of the Hessian H; L, mu : the largest and smallest.
    """

    eigenvalues: np.ndarray
    fit_intercept: bool = True

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

    def diverges(self, learning_rate: float) -> bool:
        return learning_rate >= self.stable_step

    def to_dict(self) -> dict[str, Any]:
        def f(x: float) -> float | None:
            return float(x) if math.isfinite(x) else None

        return {
            "L": f(self.L), "mu": f(self.mu), "condition_number": f(self.condition_number),
            "stable_step": f(self.stable_step), "best_step": f(self.best_step), "best_rate": f(self.best_rate),
            "heavy_ball": {k: f(v) for k, v in self.heavy_ball.items()},
            "eigenvalues": [float(v) for v in self.eigenvalues],
        }

    def __repr__(self) -> str:
        return (f"Curvature(L={self.L:.6g}, mu={self.mu:.6g}, condition_number={self.condition_number:.6g}, "
                f"stable_step={self.stable_step:.6g}, best_step={self.best_step:.6g})")


def curvature_from_stats(stats: GramStats, fit_intercept: bool = True, loss_curvature: float = 2.0,
                         l2: float = 0.0) -> Curvature:
    """Curvature of (loss_curvature/n) X_b^T S X_b + l2 (coefficients only), from the one-pass statistics."""
    if fit_intercept:
        # eigenvalues of the design Gram [[n, n mx^T], [n mx, Cxx + n mx mx^T]] / n, from the centred statistics
        g = stats.design_gram(True) / stats.n
    else:
        g = stats.design_gram(False) / stats.n
    h = loss_curvature * g
    if l2:
        idx = np.arange(1 if fit_intercept else 0, h.shape[0])
        h[idx, idx] += l2
    if h.shape[0] == 0:
        return Curvature(np.zeros(1), fit_intercept)
    eig = np.linalg.eigvalsh(0.5 * (h + h.T))
    return Curvature(eig, fit_intercept)


def curvature(X: Any, *, fit_intercept: bool = True, sample_weight: Any = None, loss: str = "squared_error",
              l2: float = 0.0) -> Curvature:
    """Curvature facts (L, mu, stable step 2/L, best step 2/(L+mu), rates) of the mean squared error on X.

    One pass over X (the Gram statistics); y is not needed, since the Hessian does not depend on it.
    """
    from gdlab.objectives import get_loss

    Xa = as_matrix(X)
    sw = as_sample_weight(sample_weight, Xa.shape[0])
    c = get_loss(loss).curvature
    if c is None:
        raise ValueError(f"loss {loss!r} is not smooth: it has no curvature bound L (use a smooth loss).")
    stats = GramStats.from_arrays(Xa, np.zeros((Xa.shape[0], 0)), sw)
    return curvature_from_stats(stats, fit_intercept, c, l2)
