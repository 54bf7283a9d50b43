"""The compiled pass behind :meth:`gdlab.sources.gram.GramStats.from_arrays`: every second moment of [1, x, y] in
one read of X.

The NumPy path forms the statistics with BLAS (syrk for X^T X, one more product for the sums and X^T y). For a
few columns BLAS is far from the memory limit (its kernels are built for large square blocks, and a 10 x 10 output
leaves them packing more than multiplying), and under load OpenBLAS's two threads wait for each other.

Two implementations of one pass, with the same tiles and the same rounding (``TILE`` rows per tile, a block total
flushed every ``FLUSH`` tiles, so that a sum of a million rows is a sum of sums of at most 8192 terms):

* :mod:`gdlab._gram_pass` (C, ``src/gdlab/_gram_pass.c``), compiled when gdlab is built or installed, for three
  x86-64 levels at once (the loader picks the machine's). Importing it costs about a millisecond, so the first fit
  of every process has it and nothing is compiled on the user's machine at fit time;
* :mod:`gdlab._gram_numba` (numba), the fallback where the C pass was not built (an install without a compiler).
  Importing numba costs about 0.4 s in a fresh process and the first use on a machine compiles for seconds, so
  ``compiled="auto"`` takes it only once loaded (:func:`gdlab.load_compiled`) or on big data.

Threads: the rows are cut into chunks whose size depends on m and the width only (:func:`chunk_rows`), and plain
Python threads run the kernel (it releases the GIL). The C pass lets its threads share the chunks through a
counter: a thread that another job keeps off its core takes fewer chunks instead of making the others wait for it.
The chunks' results are added in chunk order, so the result is the same, bit for bit, whatever the number of
threads. Nothing here spins: the workers sleep on the executor's queue between passes and take no core from
OpenBLAS's or numba's workers; the pass calls no BLAS. The kernel may be called from any number of threads at once
(a server, Dask's threaded scheduler).

Output of :func:`moments`: M (q1 x q1), q1 = 1 + d + k: M[0, 0] = sum s, M[0, 1:] = sum s (z - K),
M[1:, 1:] = sum s (z - K)(z - K)^T.
"""

from __future__ import annotations

import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import Any

import numpy as np

__all__ = ["TILE", "FLUSH", "MIN_CHUNK_ROWS", "MAX_CHUNKS", "chunk_rows", "moments", "n_threads", "loaded",
           "ahead_of_time", "warm_up"]

TILE = 128  # rows per tile (both implementations)
FLUSH = 64  # tiles per block total
MIN_CHUNK_ROWS = 16384  # rows per chunk at least
MAX_CHUNKS = 32  # chunks of a pass at most (fewer for wide X: each chunk keeps a q1 x q1 result until the sum)

_NOT_TRIED: Any = object()
_AOT: Any = _NOT_TRIED


def _aot() -> ModuleType | None:
    """The C pass, or None where it was not built."""
    global _AOT
    if _AOT is _NOT_TRIED:
        try:
            from gdlab import _gram_pass
        except ImportError:
            _gram_pass = None
        _AOT = _gram_pass
    return _AOT


def ahead_of_time() -> bool:
    """Whether the C pass, compiled when gdlab was installed, is there."""
    return _aot() is not None


_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0  # the process that made _POOL: a forked child (multiprocessing, Dask's process workers) inherits
# the executor but not its threads, and would wait on it forever; it makes its own
_POOL_LOCK = threading.Lock()


def _after_fork_in_child() -> None:  # a fork while another thread held the lock must not leave it held
    global _POOL, _POOL_LOCK
    _POOL, _POOL_LOCK = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _cpus() -> int:
    """CPUs this process may use, or NUMBA_NUM_THREADS where it is set (the one knob for gdlab's threads)."""
    setting = os.environ.get("NUMBA_NUM_THREADS", "").strip()
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def n_threads() -> int:
    """Threads for the pass: numba's setting for the calling thread where numba is loaded
    (``numba.set_num_threads``), else NUMBA_NUM_THREADS where set, else the CPUs this process may use."""
    numba = sys.modules.get("numba")
    if numba is not None:
        return max(1, int(numba.get_num_threads()))
    return _cpus()


_LOADED = False  # the numba kernel has run in this process


def loaded() -> bool:
    """Whether the pass runs in this process without loading anything slow: the C pass is built, or the numba
    kernel has run (or been loaded by :func:`warm_up`)."""
    return ahead_of_time() or _LOADED


def _pool() -> ThreadPoolExecutor:
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or _POOL_PID != os.getpid():
            n = _cpus()
            _POOL = ThreadPoolExecutor(max_workers=n, thread_name_prefix="gdlab-gram")
            _POOL_PID = os.getpid()
            # start every worker now (an executor starts them one submission at a time, and a pass whose first
            # worker finished before the last submission would run on fewer threads than asked)
            started = threading.Barrier(n)
            for _ in range(n):
                _POOL.submit(started.wait)
        return _POOL


def chunk_rows(m: int, q1: int) -> int:
    """Rows per chunk for m rows of q1 = 1 + d + k columns: a multiple of TILE * FLUSH, at least MIN_CHUNK_ROWS,
    at most MAX_CHUNKS chunks (4 for very wide X). It depends on the data's shape only, never on the threads."""
    block = TILE * FLUSH
    max_chunks = max(4, min(MAX_CHUNKS, (1 << 22) // (q1 * q1)))
    rows = -(-m // max_chunks)
    return max(MIN_CHUNK_ROWS, -(-rows // block) * block)


def moments(X: np.ndarray, Y: np.ndarray, w: np.ndarray | None, shift: np.ndarray) -> np.ndarray:
    """sum_i s_i z_i z_i^T for z = [1, x - K, y - K] (q1 x q1), the chunks of rows spread over ``n_threads()``
    threads."""
    global _LOADED
    m = X.shape[0]
    Yf = np.ascontiguousarray(Y, dtype=np.float64)
    K = np.ascontiguousarray(shift, dtype=np.float64)
    q1 = 1 + X.shape[1] + Yf.shape[1]
    if m == 0:
        return np.zeros((q1, q1))
    chunk = chunk_rows(m, q1)
    n_chunks = -(-m // chunk)
    workers = max(1, min(n_threads(), n_chunks))
    aot = _aot()
    if aot is not None:
        wf = None if w is None else np.ascontiguousarray(w, dtype=np.float64)
        out = np.empty((n_chunks, q1, q1))
        counter = np.zeros(1, dtype=np.int64)
        if workers == 1:
            aot.moments(X, Yf, wf, K, chunk, counter, out)
        else:  # the threads share the chunks through the counter (see gdlab/_gram_pass.c)
            for f in [_pool().submit(aot.moments, X, Yf, wf, K, chunk, counter, out) for _ in range(workers)]:
                f.result()
        return out.sum(axis=0)
    from gdlab._gram_numba import shifted_moments

    wf = np.zeros(0) if w is None else np.ascontiguousarray(w, dtype=np.float64)
    bounds = [min(m, c * chunk) for c in range(n_chunks + 1)]
    if workers == 1:
        parts = [shifted_moments(X, Yf, wf, K, a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    else:
        futures = [_pool().submit(shifted_moments, X, Yf, wf, K, a, b) for a, b in zip(bounds[:-1], bounds[1:])]
        parts = [f.result() for f in futures]
    _LOADED = True
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total[:q1, :q1]


def warm_up() -> None:
    """Load the pass now: the C pass where it is built, else numba's kernel (compiled on a machine's first run,
    then read from numba's cache) for float64 and float32 X."""
    if ahead_of_time():
        return
    global _LOADED
    from gdlab._gram_numba import shifted_moments

    for dtype in (np.float64, np.float32):
        shifted_moments(np.zeros((3, 1), dtype=dtype), np.zeros((3, 1)), np.zeros(0), np.zeros(2), 0, 3)
    _LOADED = True


def __getattr__(name: str) -> Any:  # the numba kernel itself, loaded only when asked for
    if name == "shifted_moments":
        from gdlab._gram_numba import shifted_moments

        return shifted_moments
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
