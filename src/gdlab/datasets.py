"""The workshop's data, exactly as its code makes them, and a synthetic generator.

The workshop uses NumPy's legacy global generator; gdlab replays the same calls on a private ``RandomState(42)``
(bit-for-bit the same numbers as ``np.random.seed(42)`` followed by the same calls) so that it never disturbs the
caller's global random state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gdlab._validation import check_positive

__all__ = ["WorkshopLine", "WorkshopMean", "WorkshopClasses", "workshop_line", "workshop_mean", "workshop_classes",
           "Synthetic", "make_regression"]


@dataclass(frozen=True)
class WorkshopMean:
    """The first figure's data: 1000 points ~ N(2, 0.3^2) and the vertical jitter used to plot them.

    The "model" is one number, the candidate mean c, with error MSE(c) = (1/m) sum (c - x_i)^2. As a regression it
    is an intercept-only fit: ``descend(ds.features, ds.y)`` with ``features`` of shape (1000, 0).

    X : (1000, 1) the workshop's X; y : (1000,) the same values as targets; jitter : (1000,) plot jitter;
    candidates : (40,) the workshop's ``np.linspace(1, 3, 40)``; lines : (1.5, 2.5) the dashed candidates.
    """

    X: np.ndarray
    y: np.ndarray
    jitter: np.ndarray
    candidates: np.ndarray
    lines: tuple[float, float] = (1.5, 2.5)
    best: float = 2.0

    @property
    def features(self) -> np.ndarray:
        return np.empty((self.X.shape[0], 0))

    def mse(self, c: float | np.ndarray) -> np.ndarray:
        """The workshop's ``mse(X, m)`` at each candidate c."""
        c = np.asarray(c, dtype=float)
        x = self.X[:, 0]
        return np.mean(np.square(c[..., None] - x), axis=-1)


@dataclass(frozen=True)
class WorkshopLine:
    """The line data: X = 2 rand(50, 1), y = 8 + 6 X + N(0, 1), and the random starting weights.

    X : (50, 1); y : (50,); coef_init : (1,) starting slope; intercept_init : float starting intercept;
    w_init : (2,) the workshop's w = [intercept, slope] as ``np.random.randn(2, 1)`` drew it;
    eta, n_iterations : the workshop's 0.1 and 10; axis : its plot axes [0, 2, 8, 22].
    """

    X: np.ndarray
    y: np.ndarray
    coef_init: np.ndarray
    intercept_init: float
    w_init: np.ndarray
    eta: float = 0.1
    n_iterations: int = 10
    axis: tuple[float, float, float, float] = (0.0, 2.0, 8.0, 22.0)
    true_intercept: float = 8.0
    true_slope: float = 6.0


def workshop_mean() -> WorkshopMean:
    rs = np.random.RandomState(42)
    X = rs.normal(loc=2, scale=0.3, size=(1000, 1))
    jitter = rs.rand(len(X), 1)
    return WorkshopMean(X=X, y=X[:, 0].copy(), jitter=jitter[:, 0], candidates=np.linspace(1, 3, 40))


def workshop_line() -> WorkshopLine:
    rs = np.random.RandomState(42)
    X = 2 * rs.rand(50, 1)
    y = 8 + 6 * X + rs.randn(50, 1)
    w = rs.randn(2, 1)
    return WorkshopLine(X=X, y=y[:, 0], coef_init=w[1:, 0].copy(), intercept_init=float(w[0, 0]), w_init=w[:, 0].copy())


@dataclass(frozen=True)
class WorkshopClasses:
    """Two overlapping classes in two features: the data of the report's chapter "When there is no closed form".

    50 points of class 0 and 50 of class 1 from two normal clouds with the same covariance (unit variances,
    correlation ``correlation`` between x1 and x2) whose centres ``centres`` differ along x1 only, rounded to two
    decimals. The clouds overlap, so no line separates the classes and the log-loss has a minimiser.

    X : (100, 2) features [x1, x2]; y : (100,) labels 0/1 (class 0 first); seed : the RandomState's seed.
    """

    X: np.ndarray
    y: np.ndarray
    centres: tuple[tuple[float, float], tuple[float, float]] = ((-0.6, 0.0), (0.6, 0.0))
    correlation: float = 0.9
    seed: int = 0


def workshop_classes() -> WorkshopClasses:
    centres, rho, n = ((-0.6, 0.0), (0.6, 0.0)), 0.9, 50
    rs = np.random.RandomState(0)
    A = np.linalg.cholesky(np.array([[1.0, rho], [rho, 1.0]]))
    X = np.vstack([rs.randn(n, 2) @ A.T + centres[0], rs.randn(n, 2) @ A.T + centres[1]])
    return WorkshopClasses(X=np.round(X, 2), y=np.repeat([0.0, 1.0], n), centres=centres, correlation=rho)


@dataclass(frozen=True)
class Synthetic:
    """A synthetic linear problem: y = X coef + intercept + noise; ``condition_number`` is that of Cov(X)."""

    X: np.ndarray
    y: np.ndarray
    coef: np.ndarray
    intercept: float
    noise: float
    condition_number: float
    extra: dict = field(default_factory=dict)


def make_regression(n_samples: int = 1000, n_features: int = 10, *, noise: float = 0.1,
                    condition_number: float = 1.0, intercept: float = 0.0, n_outputs: int = 1,
                    dtype: type = np.float64, random_state: int | None = 0) -> Synthetic:
    """Gaussian features whose covariance has the given condition number (eigenvalues log-spaced from 1 to
    1/condition_number, in a random orthogonal basis), random coefficients ~ N(0, 1), Gaussian noise."""
    check_positive("n_samples", n_samples, integer=True)
    check_positive("n_features", n_features, integer=True, allow_zero=True)
    check_positive("noise", noise, allow_zero=True)
    if condition_number < 1:
        raise ValueError(f"condition_number must be >= 1, got {condition_number!r}.")
    rng = np.random.default_rng(random_state)
    d = int(n_features)
    X = rng.standard_normal((int(n_samples), d))
    if condition_number > 1 and d > 1:
        sd = np.sqrt(np.logspace(0, -np.log10(condition_number), d))
        Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        X = (X * sd) @ Q.T
    coef = rng.standard_normal((d, n_outputs)) if n_outputs > 1 else rng.standard_normal(d)
    y = X @ coef + intercept + noise * rng.standard_normal((int(n_samples),) + ((n_outputs,) if n_outputs > 1 else ()))
    return Synthetic(X=X.astype(dtype, copy=False), y=y, coef=coef, intercept=float(intercept), noise=float(noise),
                     condition_number=float(condition_number))
