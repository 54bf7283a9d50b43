"""The ``gram`` source: sufficient statistics from one pass, then every evaluation costs O(d^2) whatever m is.

The statistics of z = [x, y] are kept centred: the (weighted) count n, the mean, and the co-moment matrix
C = sum_i s_i (z_i - mean)(z_i - mean)^T. Centred statistics do not lose digits when columns have large means
(the raw X^T X does), and two sets merge exactly (Chan, Golub & LeVeque's pairwise update), so blocks of rows,
files of a stream and chunks on a Dask cluster all reduce to the same statistics.

With them, for residual r_i = x_i w + b - y_i and c = b + mean_x w - mean_y:

    sum_i s_i r_i^2 = w^T Cxx w - 2 w^T Cxy + Cyy + n c^2         (the cross terms vanish: centred sums are 0)
    grad_w MSE = (2/n)(Cxx w - Cxy) + 2 mean_x c,   grad_b MSE = 2 c
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gdlab._config import compiled_available, get_config, numba_installed
from gdlab._validation import first_nonfinite

__all__ = ["GramStats", "GramSource", "gram_block_rows", "use_compiled"]


# the compiled pass (gdlab._gram_kernel): below this many elements BLAS is as fast and no thread is woken; without
# the pass built at install, numba's kernel repays loading numba (~0.4 s a process) from COMPILED_LOAD_ELEMENTS on
COMPILED_MIN_ELEMENTS = 1 << 16
COMPILED_LOAD_ELEMENTS = 4e8


def use_compiled(X: np.ndarray, kernel: str = "auto") -> bool:
    """Whether :meth:`GramStats.from_arrays` should form the statistics of X with the compiled pass.

    ``kernel``: "auto" (gdlab's ``compiled`` setting decides, see :func:`gdlab.set_config`), "compiled" or
    "numpy". The compiled pass takes float64/float32 X in C or Fortran order.
    """
    if kernel not in ("auto", "compiled", "numpy"):
        raise ValueError(f"kernel must be 'auto', 'compiled' or 'numpy', got {kernel!r}.")
    if kernel == "numpy":
        return False
    suitable = (X.ndim == 2 and X.dtype in (np.float64, np.float32)
                and (X.flags.c_contiguous or X.flags.f_contiguous))
    if kernel == "compiled":
        if not suitable:
            raise ValueError(f"the compiled pass takes float64 or float32 X in C or Fortran order, got "
                             f"{X.dtype} with strides {X.strides}; use np.ascontiguousarray(X) or kernel='numpy'.")
        if not compiled_available():
            raise ImportError("kernel='compiled' needs gdlab's compiled pass (built when gdlab is installed with a C "
                              "compiler) or numba: pip install 'gdlab[fast]'.")
        return True
    setting = get_config()["compiled"]
    if setting is False or not suitable or not compiled_available():
        return False
    if setting is True:
        return True
    if X.size < COMPILED_MIN_ELEMENTS:
        return False
    from gdlab import _gram_kernel  # about a millisecond: the C pass, not numba

    return _gram_kernel.loaded() or (X.size >= COMPILED_LOAD_ELEMENTS and numba_installed())


def gram_block_rows(n_columns: int, target_bytes: int = 1 << 20) -> int:
    """Rows per block so that one float64 block of z = [x, y] stays in cache (about 1 MiB)."""
    return int(max(256, target_bytes // (8 * max(1, n_columns))))


@dataclass(frozen=True)
class GramStats:
    """Centred second-order statistics of z = [x (d columns), y (k columns)].

    n : sum of sample weights (the row count when unweighted); n_rows : rows seen;
    mean : (d + k,) weighted mean of z; comoment : (d + k, d + k) sum_i s_i (z_i - mean)(z_i - mean)^T.
    """

    n: float
    n_rows: int
    mean: np.ndarray
    comoment: np.ndarray
    n_features: int

    @property
    def n_outputs(self) -> int:
        return self.mean.shape[0] - self.n_features

    @property
    def mean_x(self) -> np.ndarray:
        return self.mean[: self.n_features]

    @property
    def mean_y(self) -> np.ndarray:
        return self.mean[self.n_features :]

    @property
    def cxx(self) -> np.ndarray:
        d = self.n_features
        return self.comoment[:d, :d]

    @property
    def cxy(self) -> np.ndarray:
        d = self.n_features
        return self.comoment[:d, d:]

    @property
    def cyy(self) -> np.ndarray:
        d = self.n_features
        return self.comoment[d:, d:]

    def design_gram(self, fit_intercept: bool) -> np.ndarray:
        """X_b^T S X_b with the intercept column first when ``fit_intercept`` (the workshop's X_b = [1, x])."""
        d = self.n_features
        mx = self.mean_x
        xtx = self.cxx + self.n * np.outer(mx, mx)
        if not fit_intercept:
            return xtx
        g = np.empty((d + 1, d + 1))
        g[0, 0] = self.n
        g[0, 1:] = g[1:, 0] = self.n * mx
        g[1:, 1:] = xtx
        return g

    def merge(self, other: "GramStats") -> "GramStats":
        """Statistics of the union of two disjoint sets of rows (Chan et al.'s pairwise update)."""
        if other.n_features != self.n_features or other.mean.shape != self.mean.shape:
            raise ValueError(
                f"cannot merge statistics of {self.n_features} features/{self.n_outputs} outputs with "
                f"{other.n_features} features/{other.n_outputs} outputs: the row batches have different columns."
            )
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        comoment = self.comoment + other.comoment + np.outer(delta, delta) * (self.n * other.n / n)
        return GramStats(n, self.n_rows + other.n_rows, mean, comoment, self.n_features)

    @classmethod
    def empty(cls, n_features: int, n_outputs: int) -> "GramStats":
        q = n_features + n_outputs
        return cls(0.0, 0, np.zeros(q), np.zeros((q, q)), n_features)

    @classmethod
    def from_sparse(cls, X: Any, Y: np.ndarray, sample_weight: np.ndarray | None = None) -> "GramStats":
        """The statistics of a scipy.sparse X from its stored entries: O(nnz + d^2) memory, X never densified and
        never centred (centring would fill it in). With S = diag(s) and the means m_x, m_y:

            Cxx = X^T S X - n m_x m_x^T,   Cxy = X^T S (Y - m_y),   Cyy = (Y - m_y)^T S (Y - m_y)

        The first subtraction loses digits when a column's mean is large against its spread (|mean| >> std), which
        sparse columns (mostly zeros) do not have; the dense pass shifts the data instead.
        """
        import scipy.sparse as sp

        m, d = X.shape
        k = Y.shape[1]
        if m == 0:
            return cls.empty(d, k)
        A = sp.csr_array(X, dtype=np.float64)
        w = np.ones(m) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        n = float(w.sum())
        mean_x = (A.T @ w) / n
        mean_y = (w @ Y) / n
        Yc = Y - mean_y
        WA = (A.multiply(w[:, None]) if sample_weight is not None else A).tocsc()
        comoment = np.empty((d + k, d + k))
        At = A.T.tocsr()
        for j0 in range(0, d, 256):  # X^T S X in column blocks: no d x d sparse intermediate
            j1 = min(j0 + 256, d)
            comoment[:d, j0:j1] = (At @ WA[:, j0:j1]).toarray()
        comoment[:d, :d] -= n * np.outer(mean_x, mean_x)
        comoment[:d, d:] = A.T @ (w[:, None] * Yc)
        comoment[d:, :d] = comoment[:d, d:].T
        comoment[d:, d:] = Yc.T @ (w[:, None] * Yc)
        return cls(n, m, np.concatenate([mean_x, mean_y]), comoment, d)

    @classmethod
    def from_arrays(cls, X: np.ndarray, Y: np.ndarray, sample_weight: np.ndarray | None = None,
                    block_rows: int | None = None, kernel: str = "auto") -> "GramStats":
        """One blocked pass over X and Y (2-D), each block's cross products formed while it is in cache.

        ``kernel``: "compiled" reads X once with gdlab's compiled pass (:mod:`gdlab._gram_kernel`, always on the
        shifted data), "numpy" uses BLAS as below, "auto" chooses (:func:`use_compiled`).

        When the first block shows every column centred well enough (|mean| <= 10 std, so the final centring
        loses at most two of sixteen digits), the products are taken on views of X itself (BLAS syrk/gemm): no
        copy of X, and no copy of a block either. Otherwise each block is copied, shifted by the first block's
        mean K, into a buffer and accumulated there: the 'shifted data' algorithm, whose raw sums hold only small
        numbers, so the centring loses no digits even when the columns have means of 1e8 and spreads of 1.
        """
        from gdlab._validation import is_sparse

        if is_sparse(X):
            return cls.from_sparse(X, Y, sample_weight)
        m, d = X.shape
        k = Y.shape[1]
        q = d + k
        if m == 0:
            return cls.empty(d, k)
        b = block_rows or gram_block_rows(q)
        first = min(b, m, 4096)  # enough rows to judge the columns' centring (and to shift by their mean)
        w0 = None if sample_weight is None else sample_weight[:first]
        Z0 = np.concatenate([np.asarray(X[:first], dtype=np.float64), Y[:first]], axis=1)
        tot = float(first) if w0 is None else float(w0.sum())
        if w0 is not None and not tot > 0:  # any shift will do: rows of zero weight still show the columns' scale
            w0, tot = None, float(first)
        with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf are reported after the pass, with their place
            mean0 = (Z0.sum(axis=0) if w0 is None else w0 @ Z0) / tot
            var0 = (((Z0 - mean0) ** 2).sum(axis=0) if w0 is None else w0 @ (Z0 - mean0) ** 2) / tot
            if not np.all(np.isfinite(mean0)):
                mean0 = np.zeros(q)
            needs_shift = bool(np.any(mean0 * mean0 > 100.0 * var0))
        # an overflow is reported below, with the column it comes from (not as NumPy warnings)
        with np.errstate(over="ignore", invalid="ignore"):
            S = np.zeros((q, q))
            s = np.zeros(q)
            M = None
            if use_compiled(X, kernel):
                from gdlab import _gram_kernel

                M = _gram_kernel.moments(X, Y, sample_weight, mean0)
            if M is not None:
                shift = mean0
                s = M[0, 1:]
                S = M[1:, 1:]
            elif needs_shift:
                shift = mean0
                buf = np.empty((b, q))
                shift_x, shift_y = shift[:d], shift[d:]
                for start in range(0, m, b):
                    stop = min(start + b, m)
                    z = buf[: stop - start]
                    np.subtract(X[start:stop], shift_x, out=z[:, :d])
                    np.subtract(Y[start:stop], shift_y, out=z[:, d:])
                    if sample_weight is None:
                        s += z.sum(axis=0)
                    else:
                        sw = sample_weight[start:stop]
                        s += sw @ z
                        z *= np.sqrt(sw)[:, None]
                    S += z.T @ z
            else:
                shift = np.zeros(q)
                cast = X.dtype != np.float64
                # V = [1; y^T] for a block: V @ Xb gives the column sums and y^T X in one product over the cached
                # block (two gemv's cost more), V @ V^T the y sums and y^T y
                V = np.ones((1 + k, b))
                for start in range(0, m, b):
                    stop = min(start + b, m)
                    Xb = X[start:stop]
                    if cast:
                        Xb = Xb.astype(np.float64)
                    v = V[:, : stop - start]
                    v[1:] = Y[start:stop].T
                    if sample_weight is None:
                        S[:d, :d] += Xb.T @ Xb  # BLAS syrk
                        r = v @ Xb
                        vv = v @ v.T
                    else:
                        wv = sample_weight[start:stop]
                        S[:d, :d] += (Xb * wv[:, None]).T @ Xb
                        vw = v * wv
                        r = vw @ Xb
                        vv = vw @ v.T
                    s[:d] += r[0]
                    S[d:, :d] += r[1:]
                    s[d:] += vv[0, 1:]
                    S[d:, d:] += vv[1:, 1:]
                S[:d, d:] = S[d:, :d].T
        n = float(m) if sample_weight is None else float(sample_weight.sum())
        if not (np.all(np.isfinite(S)) and np.all(np.isfinite(s))):
            from gdlab._validation import _nonfinite_error

            for name, arr in (("X", X), ("y", Y)):
                if first_nonfinite(arr) is not None:
                    raise _nonfinite_error(name, arr)
            with np.errstate(over="ignore", invalid="ignore"):
                squares = np.einsum("ij,ij->j", X, X, dtype=np.float64)
            j = int(np.argmax(~np.isfinite(squares))) if not np.all(np.isfinite(squares)) else None
            if j is not None:
                big = float(np.max(np.abs(X[:, j])))
                raise ValueError(f"column {j} of X holds values as large as {big:.3g}: their squares overflow "
                                 f"float64, so no statistic of the fit can be formed; rescale that column first "
                                 f"(e.g. divide it by 1e{int(np.floor(np.log10(big)))}).")
            raise ValueError("the data's second moments overflow float64; rescale the features (StandardScaler).")
        mean_shifted = s / n
        comoment = S - n * np.outer(mean_shifted, mean_shifted)
        comoment = 0.5 * (comoment + comoment.T)
        return cls(n, m, shift + mean_shifted, comoment, d)


class GramSource:
    """Loss and gradient of the squared error from :class:`GramStats`, O(d^2) per evaluation.

    Exact for the squared error only (any other loss needs the rows themselves). ``l2`` (a number, or one per
    coefficient): the ridge term l2/2 |w|^2 is part of the objective, so that the error form below is exact for
    it too (the descent then adds no penalty of its own).
    """

    name = "gram"
    supports_batches = False

    def __init__(self, stats: GramStats, fit_intercept: bool = True, l2: float | np.ndarray = 0.0):
        self.stats = stats
        self.fit_intercept = fit_intercept
        self.l2 = l2
        self.n_samples = stats.n_rows
        self.n_features = stats.n_features
        self.n_outputs = stats.n_outputs
        n = stats.n
        self._n = n
        if fit_intercept:
            self._A = stats.cxx / n
            self._B = stats.cxy / n
            self._c0 = np.diag(stats.cyy).copy() / n
            self._mx = stats.mean_x
            self._my = stats.mean_y
        else:
            mx, my = stats.mean_x, stats.mean_y
            self._A = (stats.cxx + n * np.outer(mx, mx)) / n
            self._B = (stats.cxy + n * np.outer(mx, my)) / n
            self._c0 = (np.diag(stats.cyy) + n * my * my) / n
        self._c0_sum = float(np.sum(self._c0))

    def gram_stats(self) -> GramStats:
        return self.stats

    def value_and_grad(self, W: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Mean squared error (summed over outputs) and its gradient; W is (d, k), b is (k,)."""
        if self.fit_intercept:
            theta = np.vstack([b[None, :], W])
            loss, g = self.packed_value_and_grad(theta)
            return loss, g[1:], g[0]
        loss, g = self.packed_value_and_grad(W)
        return loss, g, np.zeros_like(b)

    def _error_form(self) -> tuple[np.ndarray, np.ndarray, float] | None:
        """(H, theta*, F*) when the problem is well conditioned, else None (computed once).

        For any minimiser theta*, F(theta) = F* + e^T H e and grad F = 2 H e with e = theta - theta* and
        H = X_b^T S X_b / n: two O(d^2) operations per evaluation, and no cancellation near the optimum (the loss
        is F* plus a small non-negative term, rather than a difference of large sums).
        """
        if not hasattr(self, "_eform"):
            from gdlab.closed_form import _solve_stats

            self._eform = None
            if self.n_features > 0:
                import warnings

                from gdlab.exceptions import RankDeficiencyWarning

                with warnings.catch_warnings():  # a singular problem simply keeps the centred formula
                    warnings.simplefilter("ignore", RankDeficiencyWarning)
                    W, b, info = _solve_stats(self.stats, self.fit_intercept, self.l2)
                if info["solver"] == "cholesky":
                    theta_star = np.vstack([b[None, :], W]) if self.fit_intercept else W
                    H = self.stats.design_gram(self.fit_intercept) / self._n
                    if np.any(self.l2):
                        off = 1 if self.fit_intercept else 0
                        idx = np.arange(off, H.shape[0])
                        H[idx, idx] += 0.5 * np.broadcast_to(self.l2, (self.n_features,))
                    f_star, _ = self._centred_value_and_grad(theta_star)
                    self._eform = (H, theta_star, f_star)
        return self._eform

    def packed_value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """The same on packed parameters theta (p, k) = [b; W] (or W alone without an intercept): the descent
        loop's hot path, O(d^2)."""
        ef = self.__dict__.get("_eform", False)
        if ef is False:
            ef = self._error_form()
        if ef is None:
            return self._centred_value_and_grad(theta)
        H, theta_star, f_star = ef
        e = theta - theta_star
        He = H.dot(e)  # (np.dot has less call overhead than @ on these small arrays)
        # the gap itself, kept for the stop rule: F - F* read off F is quantized at an ulp of F*
        self.last_gap = gap = float(np.vdot(e, He))
        return f_star + gap, He + He

    def _centred_value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        if self.fit_intercept:
            W = theta[1:]
            c = theta[0] + self._mx @ W - self._my
            R = self._A @ W - self._B
            # w^T A w - 2 w^T B = w . (A w - B) - w . B
            loss = float(np.vdot(W, R - self._B)) + self._c0_sum + float(c @ c)
            g = np.empty_like(theta)
            g[0] = 2.0 * c
            np.multiply(2.0, R + self._mx[:, None] * c, out=g[1:])
        else:
            R = self._A @ theta - self._B
            loss = float(np.vdot(theta, R - self._B)) + self._c0_sum
            g = 2.0 * R
        # rounding can push a tiny loss below zero at an exact fit
        loss = max(loss, 0.0)
        if np.any(self.l2):
            off = 1 if self.fit_intercept else 0
            l2 = np.reshape(self.l2, (-1, 1)) if np.ndim(self.l2) else self.l2
            W = theta[off:]
            loss += 0.5 * float(np.sum(l2 * W * W))
            g[off:] += l2 * W
        return loss, g
