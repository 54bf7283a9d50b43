"""The ``memory`` source: NumPy arrays in memory, a pass over X for each evaluation (any loss)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from gdlab.losses import Loss
from gdlab.sources.gram import GramStats

__all__ = ["MemorySource"]


class MemorySource:
    """Loss and gradient from the rows themselves.

    X : (m, d) float32/float64 (float32 stays float32: its products are formed in float32, sums in float64), or a
    scipy.sparse CSR array (each pass walks its stored entries only);
    Y : (m, k) float64, as the loss reads it (:meth:`~gdlab.losses.Loss.prepare_target`); sample_weight : (m,) or
    None; loss : a :class:`~gdlab.losses.Loss`.
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
        """The mean loss (1/n) sum_i s_i loss(eta_i, y_i) and its gradient, eta = X W + b: one pass over X to form
        eta, one for X^T (s * dloss/deta)."""
        X = self.X
        one = W.shape[1] == 1 and isinstance(X, np.ndarray)  # one output: BLAS's matrix-vector product (gemv)
        E = (X @ W[:, 0].astype(X.dtype, copy=False))[:, None] if one else X @ W.astype(X.dtype, copy=False)
        E = E.astype(np.float64, copy=False)
        E += b
        values, G = self.loss.value_and_derivative(E, self.Y)
        if self.sample_weight is not None:
            loss = float(np.dot(self.sample_weight, values if values.ndim == 1 else values.sum(axis=1))) / self._n
            G = G * self.sample_weight[:, None]
        else:
            loss = float(values.sum()) / self._n
        inv_n = 1.0 / self._n
        if one:
            gW = (X.T @ G[:, 0].astype(X.dtype, copy=False)).astype(np.float64, copy=False)[:, None] * inv_n
        else:
            gW = (X.T @ G.astype(X.dtype, copy=False)).astype(np.float64, copy=False) * inv_n
        gb = G.sum(axis=0) * inv_n if self.fit_intercept else np.zeros_like(b)
        return loss, gW, gb

    def hessian(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The data term's Hessian in the packed parameters theta = [b; W] (intercept first when fitted).

        Independent outputs: (k, p, p), one X_b^T diag(s loss''(eta_j)) X_b / n per output. A coupled loss (the
        softmax): (p k, p k) over theta.ravel() (row-major), blocks X_b^T diag(s (P_j delta_jl - P_j P_l)) X_b / n.
        One pass over X per block; used by the stop rule's Newton decrement and by the Newton solver.
        """
        X = self.X
        eta = (X @ W.astype(X.dtype, copy=False)).astype(np.float64, copy=False) + b
        sw = np.ones(X.shape[0]) if self.sample_weight is None else self.sample_weight
        k = W.shape[1]
        off = 1 if self.fit_intercept else 0
        p = X.shape[1] + off

        sparse = not isinstance(X, np.ndarray)

        def weighted_gram(w: np.ndarray) -> np.ndarray:
            """X_b^T diag(w) X_b / n without forming X_b (a sparse X stays sparse: X^T (w X) from its entries). A
            dense X goes through the statistics pass (compiled where built: ~10x BLAS's X^T (w X) at 10^6 x 100),
            the weights w >= 0 being second derivatives."""
            if not sparse and float(w.sum()) > 0:
                stats = GramStats.from_arrays(X, np.zeros((X.shape[0], 0)), w)
                return stats.design_gram(off == 1) / self._n
            G = np.empty((p, p))
            xw = (X.T @ w.astype(X.dtype, copy=False)).astype(np.float64, copy=False)
            if sparse:
                G[off:, off:] = (X.T @ X.multiply(w[:, None]).tocsr()).toarray()
            else:
                G[off:, off:] = (X.T @ (X * w[:, None].astype(X.dtype, copy=False))).astype(np.float64, copy=False)
            if off:
                G[0, 0] = w.sum()
                G[0, 1:] = G[1:, 0] = xw
            return G / self._n

        if not self.loss.coupled:
            D = self.loss.second_derivative(eta, self.Y) * sw[:, None]
            return np.stack([weighted_gram(D[:, j]) for j in range(k)])
        P = self.loss.predict(eta)
        H = np.empty((p, k, p, k))
        for j in range(k):
            for l in range(j, k):
                H[:, j, :, l] = weighted_gram(sw * (P[:, j] * ((j == l) - P[:, l])))
                H[:, l, :, j] = H[:, j, :, l].T
        return H.reshape(p * k, p * k)

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
