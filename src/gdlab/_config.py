"""Global settings, in the manner of scikit-learn's ``set_config`` / ``config_context``.

``compiled`` decides where gdlab runs its compiled pass for the one-pass statistics of the gram source (every
full-batch squared-error fit, the closed form and the curvature). The pass is compiled ahead of time, when gdlab is
installed (C, :mod:`gdlab._gram_pass`); where that build was not possible (no C compiler) numba's kernel stands in
(:mod:`gdlab._gram_numba`), at the cost of loading numba (about 0.4 s a process, seconds on a machine's first use).

* ``"auto"`` (default): the compiled pass for X of 65 536 elements and more whenever it is built; without it,
  numba's kernel once loaded in this process (:func:`load_compiled`, an earlier pass with ``compiled=True``) or
  for X of 4e8 elements and more (where the faster pass repays loading numba); BLAS otherwise;
* ``True``: the compiled pass (or numba's) whenever the array suits it (float64 or float32 in C or Fortran order;
  any other array takes the BLAS pass), whatever the size of the data;
* ``False``: never; the statistics come from NumPy/BLAS.

The paths agree to rounding (about 1e-15 relative); the compiled one reads X once and is 2 to 3 times faster
(see benchmarks/RESULTS.md).
"""

from __future__ import annotations

import importlib.util
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

__all__ = ["get_config", "set_config", "config_context", "load_compiled", "numba_installed", "compiled_available"]

_DEFAULTS: dict[str, Any] = {"compiled": "auto"}
_local = threading.local()
_global: dict[str, Any] = dict(_DEFAULTS)
_numba_installed: bool | None = None
_built: bool | None = None


def numba_installed() -> bool:
    """Whether numba can be imported (checked once, without importing it)."""
    global _numba_installed
    if _numba_installed is None:
        _numba_installed = importlib.util.find_spec("numba") is not None
    return _numba_installed


def compiled_built() -> bool:
    """Whether the pass compiled at install (gdlab._gram_pass) is there (checked once, without loading it)."""
    global _built
    if _built is None:
        _built = importlib.util.find_spec("gdlab._gram_pass") is not None
    return _built


def compiled_available() -> bool:
    """Whether some compiled statistics pass can run: the one built at install, or numba's."""
    return compiled_built() or numba_installed()


def _current() -> dict[str, Any]:
    cfg = getattr(_local, "config", None)
    return _global if cfg is None else cfg


def get_config() -> dict[str, Any]:
    """The settings in force in this thread (a copy)."""
    return dict(_current())


def _check(compiled: Any) -> Any:
    """The setting's value, checked: "auto", True or False (numpy booleans count as booleans; 0 and 1 do not)."""
    if isinstance(compiled, (bool, np.bool_)):
        compiled = bool(compiled)
    elif not (isinstance(compiled, str) and compiled == "auto"):
        raise ValueError(f"compiled must be 'auto', True or False, got {compiled!r}.")
    if compiled is True and not compiled_available():
        raise ImportError("compiled=True needs gdlab's compiled statistics pass, which was not built when gdlab was "
                          "installed (no C compiler), or numba: reinstall gdlab with a C compiler, or pip install "
                          "'gdlab[fast]' (or leave compiled='auto').")
    return compiled


def set_config(*, compiled: Any = None) -> None:
    """Change gdlab's settings for the whole process, every thread (arguments left as None are unchanged).

    Inside a :func:`config_context` block the change holds in the block too, and stays after it.
    """
    if compiled is not None:
        compiled = _check(compiled)
        _global["compiled"] = compiled
        local = getattr(_local, "config", None)
        if local is not None:
            local["compiled"] = compiled


@contextmanager
def config_context(*, compiled: Any = None) -> Iterator[None]:
    """Settings for the ``with`` block, in this thread only; restored on leaving it."""
    old = getattr(_local, "config", None)
    new = dict(_current())
    if compiled is not None:
        new["compiled"] = _check(compiled)
    _local.config = new
    try:
        yield
    finally:
        _local.config = old


def load_compiled() -> float:
    """Load gdlab's compiled statistics pass now; returns the seconds it took.

    Where the pass was built at install this takes about a millisecond, and fits need no call to it. Without that
    build, it loads numba's kernel (compiling it the first time on a machine), and with ``compiled="auto"`` every
    later fit in this process then uses it. Raises ImportError when neither is there.
    """
    if not compiled_available():
        raise ImportError("gdlab's compiled pass was not built at install and numba is not installed: reinstall "
                          "gdlab with a C compiler, or pip install 'gdlab[fast]'.")
    t0 = time.perf_counter()
    from gdlab import _gram_kernel

    _gram_kernel.warm_up()
    return time.perf_counter() - t0
