"""The compiled pass behind :meth:`gdlab.sources.gram.GramStats.from_arrays`: every second moment of [1, x, y] in
one read of X.

The NumPy path forms the statistics with BLAS (syrk for X^T X, one more product for the sums and X^T y). For a
few columns BLAS is far from the memory limit: its kernels are built for large square blocks, and a 10 x 10
output leaves them packing more than multiplying (on 10^6 x 10, about 5 reads' worth of time for the pass).

This kernel reads each row once, into a transposed tile that stays in cache (``TILE`` rows of
z = sqrt(s) [1, x - K, y - K] with K the shift; the tile's rows padded so that they do not alias in L1), and takes
the dot products of the tile's rows six against two (a 6 x 2 register block: twelve products for every eight
loads, so the adds run at the FMA units' rate, not at the loads'; the upper triangle of blocks only). The tile's dot
products are added into a block total, and every ``FLUSH`` tiles the block total into the chunk's total: a sum of
a million rows is a sum of sums of at most 128 x 64 terms, so the rounding stays at a few ulps (the result agrees
with the BLAS path to about 1e-15).

Row chunks run on plain Python threads (the compiled function releases the GIL) and their totals are added at the
end (all chunks use the same shift, so they add exactly as raw sums). Plain threads, not numba's
``parallel=True``: its OpenMP workers spin after each call and then fight OpenBLAS's own spinning workers for the
same cores, and its default "workqueue" pool must not be entered from two threads at once, while this kernel may
be called from any number of threads together (a server, Dask's threaded scheduler).

Output of :func:`moments`: M (q1 x q1), q1 = 1 + d + k: M[0, 0] = sum s, M[0, 1:] = sum s (z - K),
M[1:, 1:] = sum s (z - K)(z - K)^T.

Loading numba and this kernel costs about half a second in a fresh process (compiling it, once per machine and
array layout, a few seconds; ``cache=True``), so :func:`gdlab.sources.gram.GramStats.from_arrays` uses this pass
only where that is paid already (:func:`loaded`) or pays for itself; see ``use_compiled`` there.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import njit

__all__ = ["TILE", "TILE_STRIDE", "FLUSH", "MIN_CHUNK_ROWS", "shifted_moments", "moments", "n_threads", "warm_up"]

TILE = 128  # rows per transposed tile (measured best of 32..256 on 10..100 columns)
TILE_STRIDE = TILE + 4  # the tile's rows are not a power of two apart: no L1 set aliasing between them
FLUSH = 64  # tiles per block total
MIN_CHUNK_ROWS = 16384  # rows per thread at least


@njit(fastmath={"reassoc", "contract"}, cache=True, nogil=True)
def shifted_moments(X, Y, w, shift, start, stop):  # pragma: no cover - compiled
    """sum over rows start:stop of s z z^T, z = [1, x - K, y - K] (padded to a multiple of 6; see the module)."""
    d = X.shape[1]
    k = Y.shape[1]
    q1 = 1 + d + k
    qp = (q1 + 5) // 6 * 6
    has_w = w.shape[0] > 0
    total = np.zeros((qp, qp))
    block = np.zeros((qp, qp))
    zt = np.zeros((qp, TILE_STRIDE))
    n_tiles = 0
    for r0 in range(start, stop, TILE):
        nt = min(TILE, stop - r0)
        for t in range(nt):
            s = np.sqrt(w[r0 + t]) if has_w else 1.0
            zt[0, t] = s
            for j in range(d):
                zt[1 + j, t] = s * (X[r0 + t, j] - shift[j])
            for j in range(k):
                zt[1 + d + j, t] = s * (Y[r0 + t, j] - shift[d + j])
        for t in range(nt, TILE):
            for j in range(q1):
                zt[j, t] = 0.0
        for i in range(0, qp, 6):  # a 6 x 2 block of dot products: 12 products for every 8 loads
            for j in range(i, qp, 2):
                s00 = 0.0
                s01 = 0.0
                s10 = 0.0
                s11 = 0.0
                s20 = 0.0
                s21 = 0.0
                s30 = 0.0
                s31 = 0.0
                s40 = 0.0
                s41 = 0.0
                s50 = 0.0
                s51 = 0.0
                for t in range(TILE):
                    b0 = zt[j, t]
                    b1 = zt[j + 1, t]
                    a0 = zt[i, t]
                    a1 = zt[i + 1, t]
                    a2 = zt[i + 2, t]
                    a3 = zt[i + 3, t]
                    a4 = zt[i + 4, t]
                    a5 = zt[i + 5, t]
                    s00 += a0 * b0
                    s01 += a0 * b1
                    s10 += a1 * b0
                    s11 += a1 * b1
                    s20 += a2 * b0
                    s21 += a2 * b1
                    s30 += a3 * b0
                    s31 += a3 * b1
                    s40 += a4 * b0
                    s41 += a4 * b1
                    s50 += a5 * b0
                    s51 += a5 * b1
                block[i, j] += s00
                block[i, j + 1] += s01
                block[i + 1, j] += s10
                block[i + 1, j + 1] += s11
                block[i + 2, j] += s20
                block[i + 2, j + 1] += s21
                block[i + 3, j] += s30
                block[i + 3, j + 1] += s31
                block[i + 4, j] += s40
                block[i + 4, j + 1] += s41
                block[i + 5, j] += s50
                block[i + 5, j + 1] += s51
        n_tiles += 1
        if n_tiles == FLUSH:
            total += block
            block[:, :] = 0.0
            n_tiles = 0
    total += block
    for i in range(qp):
        for j in range(i + 1, qp):
            total[j, i] = total[i, j]
    return total


_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0  # the process that made _POOL: a forked child (multiprocessing, Dask's process workers) inherits
# the executor but not its threads, and would wait on it forever; it makes its own
_POOL_LOCK = threading.Lock()


def _after_fork_in_child() -> None:  # a fork while another thread held the lock must not leave it held
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def n_threads() -> int:
    """Threads for the pass: numba's setting for the calling thread (``numba.set_num_threads``, at most
    NUMBA_NUM_THREADS, by default the CPUs this process may use)."""
    return max(1, int(numba.get_num_threads()))


_LOADED = False


def loaded() -> bool:
    """Whether the kernel has run (or been loaded by :func:`warm_up`) in this process."""
    return _LOADED


def _pool() -> ThreadPoolExecutor:
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_PID != os.getpid():
            _POOL = ThreadPoolExecutor(max_workers=max(1, int(numba.config.NUMBA_NUM_THREADS)),
                                       thread_name_prefix="gdlab-gram")
            _POOL_PID = os.getpid()
        return _POOL


def moments(X: np.ndarray, Y: np.ndarray, w: np.ndarray | None, shift: np.ndarray) -> np.ndarray:
    """sum_i s_i z_i z_i^T for z = [1, x - K, y - K] (q1 x q1), the rows split over ``n_threads()`` threads."""
    global _LOADED
    m = X.shape[0]
    Yf = np.ascontiguousarray(Y, dtype=np.float64)
    wf = np.zeros(0) if w is None else np.ascontiguousarray(w, dtype=np.float64)
    K = np.ascontiguousarray(shift, dtype=np.float64)
    n_chunks = max(1, min(n_threads(), m // MIN_CHUNK_ROWS))
    bounds = [m * c // n_chunks for c in range(n_chunks + 1)]
    if n_chunks == 1:
        total = shifted_moments(X, Yf, wf, K, 0, m)
    else:  # the kernel releases the GIL: the chunks run in parallel, on any number of callers' threads at once
        futures = [_pool().submit(shifted_moments, X, Yf, wf, K, a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        total = sum(f.result() for f in futures)
    _LOADED = True
    q1 = 1 + X.shape[1] + Y.shape[1]
    return total[:q1, :q1]


def warm_up() -> None:
    """Compile (or load from numba's cache) the kernel for float64 and float32 X."""
    for dtype in (np.float64, np.float32):
        moments(np.zeros((3, 1), dtype=dtype), np.zeros((3, 1)), None, np.zeros(2))
