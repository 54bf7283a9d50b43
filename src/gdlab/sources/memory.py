"""The ``memory`` source: NumPy arrays in memory, a pass over X for each evaluation (any loss)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from gdlab.objectives import Loss
from gdlab.sources.gram import GramStats

__all__ = ["MemorySource"]


class MemorySource:
    """Loss and gradient from the rows themselves.

    X : (m, d) float32/float64 (float32 stays float32: its products are formed in float32, sums in float64);
    Y : (m, k) float64; sample_weight : (m,) or None; loss : a :class:`~gdlab.objectives.Loss`.
    """

    name = "memory"
    supports_batches = True

    def __init__(self, X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray | None, loss: Loss,
                 fit_intercept: bool = True):
        self.X = X
        self.Y = Y
        self.sample_weight = sample_weight
        self.loss = loss
        self.fit_intercept = fit_intercept
        self.n_samples, self.n_features = X.shape
        self.n_outputs = Y.shape[1]
        self._n = float(X.shape[0]) if sample_weight is None else float(sample_weight.sum())
        self._stats: GramStats | None = None

    def gram_stats(self) -> GramStats:
        """Statistics of the whole data set (one pass, cached)."""
        if self._stats is None:
            self._stats = GramStats.from_arrays(self.X, self.Y, self.sample_weight)
        return self._stats

    def value_and_grad(self, W: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        X = self.X
        Wx = W.astype(X.dtype, copy=False)
        R = X @ Wx
        R += b
        R -= self.Y
        if self.loss.name == "squared_error":
            if self.sample_weight is None:
                loss = float(np.einsum("ij,ij->", R, R)) / self._n
                G = R
                scale = 2.0 / self._n
            else:
                SR = R * self.sample_weight[:, None]
                loss = float(np.einsum("ij,ij->", SR, R)) / self._n
                G = SR
                scale = 2.0 / self._n
        else:
            values = self.loss.value(R)
            G = self.loss.derivative(R)
            if self.sample_weight is not None:
                values = values * self.sample_weight[:, None]
                G = G * self.sample_weight[:, None]
            loss = float(values.sum()) / self._n
            scale = 1.0 / self._n
        gW = (X.T @ G.astype(X.dtype, copy=False)).astype(np.float64, copy=False) * scale
        gb = G.sum(axis=0) * scale if self.fit_intercept else np.zeros_like(b)
        return loss, gW, gb

    def take(self, rows: np.ndarray | slice) -> "MemorySource":
        """A source over a subset of the rows (a mini-batch)."""
        sw = None if self.sample_weight is None else self.sample_weight[rows]
        out = MemorySource.__new__(MemorySource)
        out.X = self.X[rows]
        out.Y = self.Y[rows]
        out.sample_weight = sw
        out.loss = self.loss
        out.fit_intercept = self.fit_intercept
        out.n_samples, out.n_features = out.X.shape
        out.n_outputs = self.n_outputs
        # divide by |B| x the mean weight of the whole data (not by the batch's own weight sum), so that the batch
        # gradient is an unbiased estimate of the full one (with batch_size=1 the weights would otherwise cancel)
        out._n = float(out.n_samples) if sw is None else out.n_samples * self._n / self.n_samples
        out._stats = None
        return out

    def iter_batches(self, batch_size: int, rng: np.random.Generator, shuffle: bool = True
                     ) -> Iterator["MemorySource"]:
        """One epoch of mini-batches; the row order is drawn anew from ``rng`` each epoch when ``shuffle``."""
        m = self.n_samples
        order = rng.permutation(m) if shuffle else None
        for start in range(0, m, batch_size):
            rows = order[start : start + batch_size] if order is not None else slice(start, start + batch_size)
            yield self.take(rows)
