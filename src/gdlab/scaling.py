"""Standardization: the descent runs on centred, scaled features and reports everything in the user's units.

Gradient descent on raw features is at the mercy of their units: a column in the millions beside one in the
millionths gives a Hessian with a condition number of 10^24, and a column with a mean of 10^8 couples the intercept
to every slope. glmnet, H2O, Spark and glum therefore standardize inside the fit by default; gdlab does the same.

With c the centre and s the scale of each feature, the descent works in the coordinates theta' = [b', w'] of the
design [1, (x - c) / s]. The model is the same one, re-parametrised linearly::

    w = w' / s,    b = b' - c . w            (theta = T theta')
    grad' = T^T grad:   grad'_b = grad_b,    grad'_w = grad_w / s - (c / s) grad_b

so the objective (the penalty included, which stays on the user's w) and its minimisers are unchanged; only the
path, and how fast it gets there, differ. Without an intercept nothing can be centred: each column is divided by
its root mean square. A column that does not vary keeps the scale 1.

The centre and scale come from the one-pass statistics (:class:`~gdlab.sources.gram.GramStats`), which the fit
forms anyway for the curvature: standardizing costs no extra pass over X. For the squared error the descent then
reads the standardized statistics directly (:meth:`Scaling.transform_stats`, O(d^2) once); for other losses each
evaluation maps the parameters and the gradient (:class:`ScaledSource`, O(d k)).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdlab.sources.gram import GramStats

__all__ = ["Scaling", "ScaledSource", "STANDARDIZE_CHOICES"]

STANDARDIZE_CHOICES = ("auto", True, False)


@dataclass(frozen=True)
class Scaling:
    """The map between the descent's coordinates theta' and the user's theta (see the module docstring).

    center : (d,) subtracted from each feature (zeros without an intercept); scale : (d,) positive divisors.
    """

    center: np.ndarray
    scale: np.ndarray
    fit_intercept: bool

    @classmethod
    def from_stats(cls, stats: GramStats, fit_intercept: bool) -> "Scaling":
        """Centre on the (weighted) mean and scale by the (weighted, population) standard deviation; without an
        intercept, scale by the root mean square and do not centre."""
        n = stats.n
        var = np.maximum(np.diag(stats.cxx) / n, 0.0) if n > 0 else np.zeros(stats.n_features)
        if fit_intercept:
            center = stats.mean_x.copy()
            spread = np.sqrt(var)
        else:
            center = np.zeros(stats.n_features)
            spread = np.sqrt(var + stats.mean_x**2)
        return cls(center, _safe_scale(spread), fit_intercept)

    @classmethod
    def from_columns(cls, X: np.ndarray, sample_weight: np.ndarray | None, fit_intercept: bool) -> "Scaling":
        """The same from the rows (wide data, where the d x d statistics are not formed): one pass of column sums."""
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if not isinstance(X, np.ndarray):  # sparse: the moments from the stored entries, X never centred
            s = np.ones(X.shape[0]) if w is None else w
            n = float(s.sum())
            mean = (X.T @ s) / n
            ms = (X.multiply(X).T @ s) / n
            if fit_intercept:
                return cls(mean, _safe_scale(np.sqrt(np.maximum(ms - mean * mean, 0.0))), True)
            return cls(np.zeros(X.shape[1]), _safe_scale(np.sqrt(ms)), False)
        mean = np.average(X, axis=0, weights=w).astype(np.float64)
        if fit_intercept:
            var = np.average((X - mean) ** 2, axis=0, weights=w)
            return cls(mean, _safe_scale(np.sqrt(var)), True)
        ms = np.average(np.square(X, dtype=np.float64), axis=0, weights=w)
        return cls(np.zeros(X.shape[1]), _safe_scale(np.sqrt(ms)), False)

    def with_ridge(self, l2: float, curvature: float) -> "Scaling":
        """Scales that give every coefficient the same curvature of the bound objective, the ridge term included:
        s_j = sqrt(s_j^2 + l2 / c) for the loss's curvature bound c. In unit-variance coordinates a ridge penalty
        alpha on the user's w is alpha / s_j^2, huge for a feature of small spread (breast cancer's smoothness,
        sd 3e-3: the penalty then dominates that coordinate's curvature and the condition number grows with
        alpha); this is the Jacobi preconditioner of the bound Hessian's diagonal, a change of coordinates that
        leaves the minimiser as it is."""
        if not l2 > 0 or not curvature > 0:
            return self
        return Scaling(self.center, np.sqrt(self.scale**2 + l2 / curvature), self.fit_intercept)

    @property
    def n_features(self) -> int:
        return self.scale.shape[0]

    @property
    def off(self) -> int:
        return 1 if self.fit_intercept else 0

    # ---- parameters ------------------------------------------------------------------------------------------
    def to_user(self, theta: np.ndarray) -> np.ndarray:
        """theta = T theta' for packed parameters (p, k), or a stack of them (n, p, k)."""
        off = self.off
        out = np.array(theta, dtype=np.float64, copy=True)
        W = out[..., off:, :] / self.scale[:, None]
        out[..., off:, :] = W
        if self.fit_intercept:
            out[..., 0, :] -= np.einsum("j,...jk->...k", self.center, W)
        return out

    def to_descent(self, theta: np.ndarray) -> np.ndarray:
        """theta' = T^{-1} theta (the inverse map: w' = s w, b' = b + c . w)."""
        off = self.off
        out = np.array(theta, dtype=np.float64, copy=True)
        W = out[..., off:, :]
        if self.fit_intercept:
            out[..., 0, :] += np.einsum("j,...jk->...k", self.center, W)
        out[..., off:, :] = W * self.scale[:, None]
        return out

    def grad_to_descent(self, g: np.ndarray) -> np.ndarray:
        """grad' = T^T grad."""
        off = self.off
        out = np.empty_like(g)
        out[off:] = g[off:] / self.scale[:, None]
        if self.fit_intercept:
            out[0] = g[0]
            out[off:] -= (self.center / self.scale)[:, None] * g[0]
        return out

    def grad_to_user(self, g: np.ndarray) -> np.ndarray:
        """grad = T^{-T} grad' (the gradient in the user's coordinates, for the trajectory)."""
        off = self.off
        out = np.empty_like(g)
        out[off:] = g[off:] * self.scale[:, None]
        if self.fit_intercept:
            out[0] = g[0]
            out[off:] += self.center[:, None] * g[0]
        return out

    def matrix(self) -> np.ndarray:
        """T as a (p, p) matrix: theta = T theta' for one output column."""
        d, off = self.n_features, self.off
        T = np.zeros((d + off, d + off))
        T[off:, off:] = np.diag(1.0 / self.scale)
        if self.fit_intercept:
            T[0, 0] = 1.0
            T[0, 1:] = -self.center / self.scale
        return T

    # ---- statistics ----------------------------------------------------------------------------------------
    def transform_stats(self, stats: GramStats) -> GramStats:
        """The statistics of z' = [(x - c) / s, y]: the same rows, standardized, in O(d^2)."""
        d = stats.n_features
        div = np.concatenate([self.scale, np.ones(stats.n_outputs)])
        mean = stats.mean.copy()
        mean[:d] = (mean[:d] - self.center) / self.scale
        comoment = stats.comoment / np.outer(div, div)
        return GramStats(stats.n, stats.n_rows, mean, comoment, d)

    def to_dict(self) -> dict[str, Any]:
        return {"center": self.center.tolist(), "scale": self.scale.tolist(), "fit_intercept": self.fit_intercept}


def _safe_scale(spread: np.ndarray) -> np.ndarray:
    s = np.asarray(spread, dtype=np.float64).copy()
    s[~(s > 0) | ~np.isfinite(s)] = 1.0  # a constant (or empty) column keeps its units
    return s


class ScaledSource:
    """Any source, seen in the descent's coordinates: each evaluation maps theta' to theta and the gradient back.

    Used for the losses that need the rows (Huber, epsilon-insensitive) and for mini-batches; the squared error on
    statistics uses :meth:`Scaling.transform_stats` instead.
    """

    def __init__(self, source: Any, scaling: Scaling):
        self.source = source
        self.scaling = scaling
        self.name = source.name
        self.n_samples = source.n_samples
        self.n_features = source.n_features
        self.n_outputs = source.n_outputs
        self.fit_intercept = source.fit_intercept
        self.supports_batches = getattr(source, "supports_batches", False)
        self.loss = getattr(source, "loss", None)

    def value_and_grad(self, W: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        sc = self.scaling
        theta_d = np.vstack([b[None, :], W]) if sc.fit_intercept else W
        theta = sc.to_user(theta_d)
        Wu = theta[sc.off:]
        bu = theta[0] if sc.fit_intercept else np.zeros(W.shape[1])
        loss, gW, gb = self.source.value_and_grad(Wu, bu)
        g = np.vstack([gb[None, :], gW]) if sc.fit_intercept else gW
        g = sc.grad_to_descent(g)
        if sc.fit_intercept:
            return loss, g[1:], g[0]
        return loss, g, np.zeros_like(b)

    def hessian(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The Hessian in the descent's coordinates: T^T H T (per output), or kron(T, I)^T H kron(T, I) coupled."""
        sc = self.scaling
        theta = sc.to_user(np.vstack([b[None, :], W]) if sc.fit_intercept else W)
        H = self.source.hessian(theta[sc.off:], theta[0] if sc.fit_intercept else np.zeros(W.shape[1]))
        T = sc.matrix()
        if H.ndim == 3:
            return np.einsum("ai,kab,bj->kij", T, H, T)
        Tk = np.kron(T, np.eye(W.shape[1]))
        return Tk.T @ H @ Tk

    def iter_batches(self, batch_size: int, rng: np.random.Generator, shuffle: bool = True) -> Iterator[Any]:
        for batch in self.source.iter_batches(batch_size, rng, shuffle):
            yield ScaledSource(batch, self.scaling)
