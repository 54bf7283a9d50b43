"""The statistics pass compiled just in time by numba: gdlab's fallback where the pass compiled ahead of time
(:mod:`gdlab._gram_pass`, built at install) is missing, e.g. an install without a C compiler.

This kernel reads each row once, into a transposed tile that stays in cache (``TILE`` rows of
z = sqrt(s) [1, x - K, y - K] with K the shift; the tile's rows padded so that they do not alias in L1), and takes
the dot products of the tile's rows six against two (a 6 x 2 register block: twelve products for every eight
loads; the upper triangle of blocks only). The tile's dot products are added into a block total, and every
``FLUSH`` tiles the block total into the chunk's total (the same rounding as the ahead-of-time pass).

Importing numba costs about 0.4 s in a fresh process, and the first use on a machine compiles for several seconds
(``cache=True`` then keeps it), which is why gdlab only takes this path once it is loaded (see
:func:`gdlab.sources.gram.use_compiled`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["TILE", "TILE_STRIDE", "FLUSH", "shifted_moments"]

TILE = 128  # rows per transposed tile (measured best of 32..256 on 10..100 columns)
TILE_STRIDE = TILE + 4  # the tile's rows are not a power of two apart: no L1 set aliasing between them
FLUSH = 64  # tiles per block total


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
