"""The Normal Equation of the workshop, solved the way careful regression software solves it.

The least-squares (optionally ridge) minimiser of the MSE is w = (X_b^T X_b)^{-1} X_b^T y, but forming and inverting
X_b^T X_b squares the condition number. gdlab therefore

1. centres the columns (the intercept then separates: b = mean_y - mean_x . w) and scales them to unit norm;
2. solves the centred, scaled normal equations by Cholesky when they are well conditioned (condition number of the
   scaled co-moment matrix below 1e4, so at most ~4 of 16 digits are at stake);
3. otherwise solves the centred, scaled least-squares problem by Householder QR with column pivoting, refined by
   iterative refinement whose residuals are computed in extended precision (np.longdouble), and warns with a
   RankDeficiencyWarning when a column is (numerically) a combination of the others, returning the minimum-norm
   solution then.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
import scipy.linalg

from gdlab._validation import as_matrix, as_sample_weight, as_target, check_positive
from gdlab.curvature import Curvature, curvature_from_stats
from gdlab.exceptions import RankDeficiencyWarning
from gdlab.result import Result
from gdlab.sources.gram import GramStats

__all__ = ["closed_form", "closed_form_from_stats"]

CHOLESKY_MAX_CONDITION = 1e4


def _shape_output(W: np.ndarray, b: np.ndarray, single: bool) -> tuple[np.ndarray, Any]:
    if single:
        return W[:, 0].copy(), float(b[0])
    return W, b


def _loss_from_stats(stats: GramStats, W: np.ndarray, b: np.ndarray, fit_intercept: bool,
                     l2: float) -> tuple[float, bool]:
    """MSE(W, b) + l2/2 |W|^2 from the statistics alone, and whether it is known to 1e-10 of itself.

    With centred statistics and c = b + mean_x W - mean_y,  n MSE = tr(Cyy) - 2 tr(W^T Cxy) + tr(W^T Cxx W)
    + n |c|^2. Each term is known to a few ulps of its own size, so a loss much smaller than the terms (a nearly
    perfect fit: R^2 within about 1e-5 of 1) is left to the rows; otherwise this costs O(d^2 k), not a pass.
    """
    n = stats.n
    if fit_intercept:
        A, B, C = stats.cxx, stats.cxy, stats.cyy
        c = b + stats.mean_x @ W - stats.mean_y
    else:
        mx, my = stats.mean_x, stats.mean_y
        A = stats.cxx + n * np.outer(mx, mx)
        B = stats.cxy + n * np.outer(mx, my)
        C = stats.cyy + n * np.outer(my, my)
        c = np.zeros(stats.n_outputs)
    R = A @ W - B
    rss = float(np.vdot(W, R - B)) + float(np.trace(C))  # w.(A w - B) - w.B + tr C: the solve's residual kept
    absW = np.abs(W)
    size = float(np.vdot(absW, np.abs(A) @ absW)) + 2.0 * float(np.vdot(absW, np.abs(B))) + float(np.trace(np.abs(C)))
    known = rss > 0 and 64 * np.finfo(float).eps * size <= 1e-10 * rss
    loss = max(rss, 0.0) / n + float(c @ c) + 0.5 * l2 * float(np.vdot(W, W)) if n > 0 else 0.0
    return loss, known


def _solve_stats(stats: GramStats, fit_intercept: bool, l2: float) -> tuple[np.ndarray, np.ndarray, dict]:
    d, n = stats.n_features, stats.n
    if fit_intercept:
        A, B = stats.cxx, stats.cxy
    else:
        mx, my = stats.mean_x, stats.mean_y
        A = stats.cxx + n * np.outer(mx, mx)
        B = stats.cxy + n * np.outer(mx, my)
    if d == 0:
        W = np.zeros((0, stats.n_outputs))
        info = {"solver": "intercept only", "condition_number": 1.0, "rank": 0}
    else:
        # normal equations of MSE + l2/2 |w|^2:  (A + n l2 / 2 I) w = B
        A = A + (0.5 * n * l2) * np.eye(d)
        scale = np.sqrt(np.diag(A))
        scale[scale == 0] = 1.0
        As = A / np.outer(scale, scale)
        Bs = B / scale[:, None]
        eig = np.linalg.eigvalsh(As)
        cond = eig[-1] / eig[0] if eig[0] > 0 else np.inf
        if cond < CHOLESKY_MAX_CONDITION:
            c, low = scipy.linalg.cho_factor(As)
            Ws = scipy.linalg.cho_solve((c, low), Bs)
            info = {"solver": "cholesky", "condition_number": float(cond), "rank": d}
        else:
            Ws, _, rank, _ = scipy.linalg.lstsq(As, Bs, cond=None)
            Ws = np.asarray(Ws)
            rank = int(np.sum(eig > eig[-1] * d * np.finfo(float).eps))
            if rank < d:
                warnings.warn(
                    f"the design matrix is rank deficient (rank {rank} of {d} features): the least-squares "
                    "minimiser is not unique; returning the minimum-norm solution. Drop collinear features "
                    "or add an L2 penalty.", RankDeficiencyWarning, stacklevel=3)
            info = {"solver": "eigen (from statistics)", "condition_number": float(cond), "rank": rank}
        W = Ws / scale[:, None]
    if fit_intercept:
        b = stats.mean_y - stats.mean_x @ W
    else:
        b = np.zeros(stats.n_outputs)
    return W, b, info


def _solve_qr(X: np.ndarray, Y: np.ndarray, sw: np.ndarray | None, stats: GramStats, fit_intercept: bool,
              l2: float) -> tuple[np.ndarray, np.ndarray, dict, float | None]:
    """Least squares by pivoted QR of the centred, scaled design A1 = A0 T, refined on the augmented system.

    A0 = [1, X] (rows scaled by sqrt(s), ridge rows appended) is the design as given; T is the upper-triangular
    map that centres and scales its columns. theta = T z solves the problem once z solves it for A1. Refinement
    (Bjorck, 1967) iterates on [I A1; A1^T 0][r; z] = [y; 0], with the residuals f = y - r - A0 theta and
    g = -A1^T r computed in extended precision from the original data, so it also undoes the rounding of the
    centring. Each correction costs two triangular solves with the same factors.

    The fourth value is the objective at the solution from the final extended-precision residual (its ridge rows
    hold the penalty), or None for a rank-deficient design.
    """
    m, d = X.shape
    k = Y.shape[1]
    ld = np.longdouble
    root = None if sw is None else np.sqrt(sw)
    # A0 and y in extended precision, rows weighted, ridge rows appended
    A0 = X.astype(ld)
    if fit_intercept:
        A0 = np.hstack([np.ones((m, 1), dtype=ld), A0])
    y0 = Y.astype(ld)
    if root is not None:
        A0 = A0 * root[:, None].astype(ld)
        y0 = y0 * root[:, None].astype(ld)
    p = A0.shape[1]
    if l2:
        ridge = np.zeros((d, p), dtype=ld)
        ridge[:, p - d:] = np.sqrt(ld(0.5 * stats.n * l2)) * np.eye(d, dtype=ld)
        A0 = np.vstack([A0, ridge])
        y0 = np.vstack([y0, np.zeros((d, k), dtype=ld)])
    # T: centre the feature columns on the (weighted) means, scale every column to unit norm
    T = np.eye(p)
    if fit_intercept:
        T[0, 1:] = -stats.mean_x
    A1 = np.asarray(A0 @ T.astype(ld), dtype=np.float64)
    scale = np.linalg.norm(A1, axis=0)
    scale[scale == 0] = 1.0
    T = T / scale
    A1 = A1 / scale
    Q, R, perm = scipy.linalg.qr(A1, mode="economic", pivoting=True)
    diag = np.abs(np.diag(R))
    # the columns are only known to the rounding of the data as given: centring a column whose mean is c times
    # its spread leaves errors of about eps * c relative to it (an affine copy of a column, as Fahrenheit beside
    # Celsius, is dependent up to exactly that), so the numerical rank is judged at that level
    spread = np.sqrt(np.maximum(np.diag(stats.cxx), 0.0) / stats.n) if stats.n > 0 else np.zeros(d)
    mean_over_sd = np.abs(stats.mean_x) / np.where(spread > 0, spread, np.inf)
    amplify = float(np.sqrt(1.0 + np.max(mean_over_sd, initial=0.0) ** 2)) if fit_intercept else 1.0
    tol = diag[0] * max(A1.shape) * np.finfo(float).eps * amplify if diag.size else 0.0
    rank = int(np.sum(diag > tol))
    if rank < p:
        warnings.warn(
            f"the design matrix is rank deficient (rank {rank} of {p} columns): the least-squares minimiser is "
            "not unique; returning the minimum-norm solution. Drop collinear features or add an L2 penalty.",
            RankDeficiencyWarning, stacklevel=3)
        # minimum norm at the numerical rank judged above (gelsd's own cutoff would keep the rounding's directions)
        z, *_ = scipy.linalg.lstsq(A1, np.asarray(y0, dtype=np.float64), lapack_driver="gelsd",
                                   cond=tol / diag[0] if diag.size and diag[0] > 0 else None)
        theta = T @ z
        loss = None
    else:
        def solve_r(rhs: np.ndarray) -> np.ndarray:  # R^{-1} rhs, back in unpermuted order
            out = np.empty_like(rhs)
            out[perm] = scipy.linalg.solve_triangular(R, rhs)
            return out

        def solve_rt(rhs: np.ndarray) -> np.ndarray:  # R^{-T} rhs[perm]
            return scipy.linalg.solve_triangular(R, rhs[perm], trans="T")

        yd = np.asarray(y0, dtype=np.float64)
        z = solve_r(Q.T @ yd)
        theta = (T @ z).astype(ld)
        r = y0 - A0 @ theta
        Tl = T.astype(ld)
        for _ in range(4):
            f = np.asarray(y0 - r - A0 @ theta, dtype=np.float64)
            g = np.asarray(-(Tl.T @ (A0.T @ r)), dtype=np.float64)
            dz = solve_r(Q.T @ f - solve_rt(g))
            dr = f - A1 @ dz
            theta = theta + Tl @ dz.astype(ld)
            r = r + dr.astype(ld)
            if np.max(np.abs(dz)) <= 4 * np.finfo(float).eps * max(1e-300, float(np.max(np.abs(T @ z)))):
                break
        theta = np.asarray(theta, dtype=np.float64)
        r = y0 - A0 @ theta.astype(ld)  # the residual of the solution returned, in extended precision
        loss = float(np.sum(r * r)) / stats.n
    W = theta[p - d:]
    b = theta[0] if fit_intercept else np.zeros(k)
    cond = float(diag[0] / diag[rank - 1]) if rank else np.inf
    return W, b, {"solver": "qr", "condition_number": cond, "rank": rank}, loss


def closed_form_from_stats(stats: GramStats, *, fit_intercept: bool = True, l2: float = 0.0,
                           single_output: bool = True, source: str = "gram", curvature: Curvature | None = None
                           ) -> Result:
    """The exact minimiser from one-pass statistics (streamed files, Dask chunks): no rows needed.

    ``curvature``: the curvature of this problem when the caller has it already (saves an eigendecomposition).
    """
    t0 = time.perf_counter()
    W, b, info = _solve_stats(stats, fit_intercept, l2)
    loss, _ = _loss_from_stats(stats, W, b, fit_intercept, l2)  # the best there is without the rows
    curv = curvature if curvature is not None else curvature_from_stats(stats, fit_intercept, 2.0, l2)
    coef, intercept = _shape_output(W, b, single_output and stats.n_outputs == 1)
    info["seconds"] = time.perf_counter() - t0
    return Result(coef=coef, intercept=intercept, loss=loss, n_iter=0, converged=True, status=4,
                  message=f"exact solve of the normal equations ({info['solver']})", method="closed_form",
                  source=source, source_reason="the closed form needs only the statistics", curvature=curv,
                  optimum_loss=loss, extra=info)


def closed_form(X: Any, y: Any, *, fit_intercept: bool = True, sample_weight: Any = None, l2: float = 0.0,
                solver: str = "auto") -> Result:
    """The exact minimiser of MSE(w, b) + l2/2 |w|^2: the workshop's Normal Equation, solved stably.

    Parameters
    ----------
    X : (m, d) array-like; y : (m,) or (m, k); sample_weight : (m,) or None.
    l2 : ridge strength in gdlab's convention (the penalty l2/2 |w|^2 added to the MSE); the intercept is free.
    solver : "auto" (Cholesky when well conditioned, else pivoted QR with refinement), "cholesky" or "qr".

    Returns
    -------
    Result with method "closed_form", ``extra`` holding the solver used, the condition number and the rank.
    """
    if solver not in ("auto", "cholesky", "qr"):
        raise ValueError(f"unknown solver {solver!r}; valid values are 'auto', 'cholesky', 'qr'.")
    check_positive("l2", l2, allow_zero=True)
    t0 = time.perf_counter()
    Xa = as_matrix(X, accept_sparse=True)
    sparse = not isinstance(Xa, np.ndarray)
    if sparse and solver == "qr":
        raise ValueError("solver='qr' factors the dense X; for a sparse X use solver='auto' (the sparse normal "
                         "equations, or LSMR when they are ill-conditioned or too wide) or 'cholesky'.")
    ya = as_target(y, Xa.shape[0])
    single = ya.ndim == 1
    Y = ya.reshape(-1, 1) if single else ya
    sw = as_sample_weight(sample_weight, Xa.shape[0])
    if Xa.shape[1] == 0 and not fit_intercept:
        raise ValueError("X has no features and fit_intercept=False: there is nothing to fit. "
                         "Pass at least one feature or set fit_intercept=True.")
    if sparse and Xa.shape[1] + 1 > _SPARSE_NORMAL_MAX:
        return _sparse_lsmr(Xa, Y, sw, fit_intercept, l2, single, t0)
    stats = GramStats.from_arrays(Xa, Y, sw)
    loss = None
    if sparse and Xa.shape[1] > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RankDeficiencyWarning)
            W, b, info = _solve_stats(stats, fit_intercept, l2)
        if solver == "auto" and info["solver"] not in ("cholesky", "intercept only"):
            return _sparse_lsmr(Xa, Y, sw, fit_intercept, l2, single, t0)
        info["solver"] = f"sparse normal equations ({info['solver']})"
        loss, known = _loss_from_stats(stats, W, b, fit_intercept, l2)
        if not known:
            loss = None
    elif solver == "qr" and Xa.shape[1] > 0:
        W, b, info, loss = _solve_qr(Xa, Y, sw, stats, fit_intercept, l2)
    else:
        with warnings.catch_warnings():
            if solver == "auto":  # an ill-conditioned Gram goes on to QR, which gives its own warning
                warnings.simplefilter("ignore", RankDeficiencyWarning)
            W, b, info = _solve_stats(stats, fit_intercept, l2)
        if solver == "auto" and info["solver"] not in ("cholesky", "intercept only"):
            W, b, info, loss = _solve_qr(Xa, Y, sw, stats, fit_intercept, l2)
        else:
            loss, known = _loss_from_stats(stats, W, b, fit_intercept, l2)
            if not known:
                loss = None
    curv = curvature_from_stats(stats, fit_intercept, 2.0, l2)
    if loss is None:  # a nearly perfect fit or a rank-deficient design: the loss from the rows, a second pass
        R = Xa @ W.astype(Xa.dtype) + b - Y
        if sw is None:
            loss = float(np.einsum("ij,ij->", R, R)) / stats.n
        else:
            loss = float(np.einsum("ij,ij,i->", R, R, sw)) / stats.n
        loss += 0.5 * l2 * float(np.vdot(W, W))
    coef, intercept = _shape_output(W, b, single)
    info["seconds"] = time.perf_counter() - t0
    return Result(coef=coef, intercept=intercept, loss=loss, n_iter=0, converged=True, status=4,
                  message=f"exact solve of the normal equations ({info['solver']})", method="closed_form",
                  source="memory", source_reason="closed form on arrays in memory", curvature=curv,
                  optimum_loss=loss, extra=info)


#: above this many parameters a sparse X is solved by LSMR (the d x d normal equations would be dense)
_SPARSE_NORMAL_MAX = 4000


def _sparse_lsmr(A: Any, Y: np.ndarray, sw: np.ndarray | None, fit_intercept: bool, l2: float, single: bool,
                 t0: float) -> Result:
    """min (1/n) sum s_i (x_i w + b - y_i)^2 + l2/2 |w|^2 for a sparse X by LSMR (Fong & Saunders), one output at a
    time, on the operator S^(1/2) (X - 1 m_x^T): the centring is applied inside each product, never to X, and
    b = m_y - m_x . w. The ridge term is LSMR's damping, damp^2 = n l2 / 2."""
    from scipy.sparse.linalg import LinearOperator, lsmr

    m, d = A.shape
    w = np.ones(m) if sw is None else sw
    n = float(w.sum())
    root = np.sqrt(w)
    mean_x = (A.T @ w) / n if fit_intercept else np.zeros(d)
    mean_y = (w @ Y) / n if fit_intercept else np.zeros(Y.shape[1])

    def matvec(v: np.ndarray) -> np.ndarray:
        v = np.ravel(v)
        return root * (A @ v - mean_x @ v)

    def rmatvec(u: np.ndarray) -> np.ndarray:
        ru = root * np.ravel(u)
        return A.T @ ru - mean_x * ru.sum()

    op = LinearOperator((m, d), matvec=matvec, rmatvec=rmatvec, dtype=np.float64)
    W = np.zeros((d, Y.shape[1]))
    iterations, solved = [], True
    for j in range(Y.shape[1]):
        out = lsmr(op, root * (Y[:, j] - mean_y[j]), damp=math.sqrt(n * l2 / 2.0), atol=1e-14, btol=1e-14,
                   maxiter=max(10 * d, 1000))
        W[:, j] = out[0]
        iterations.append(int(out[2]))
        solved = solved and int(out[1]) in (0, 1, 2, 4, 5)  # 3: too ill-conditioned, 7: out of iterations
    b = mean_y - mean_x @ W if fit_intercept else np.zeros(Y.shape[1])
    R = A @ W + b - Y
    loss = float(np.einsum("ij,ij,i->", R, R, w)) / n + 0.5 * l2 * float(np.vdot(W, W))
    coef, intercept = _shape_output(W, b, single)
    info = {"solver": "LSMR (sparse least squares)", "iterations": iterations, "seconds": time.perf_counter() - t0}
    return Result(coef=coef, intercept=intercept, loss=loss, n_iter=max(iterations), converged=solved,
                  status=4 if solved else 1,
                  message=(f"sparse least squares by LSMR ({max(iterations)} iterations)" if solved else
                           f"LSMR stopped after {max(iterations)} iterations before reaching its tolerance"),
                  method="closed_form",
                  source="memory", source_reason="closed form on a sparse X in memory", curvature=None,
                  optimum_loss=loss, extra=info)
