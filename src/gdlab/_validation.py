"""Input checks shared by every entry point: one clear ValueError that says what is wrong, where, and the fix."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["as_matrix", "as_target", "as_sample_weight", "check_sample_weight_values", "check_choice",
           "check_positive", "first_nonfinite", "is_sparse", "as_sparse_matrix"]


def first_nonfinite(a: np.ndarray) -> tuple[int, int] | None:
    """Return (row, column) of the first NaN/inf in a 2-D array, or None; scans in blocks to bound memory."""
    a2 = a.reshape(a.shape[0], -1)
    step = max(1, (1 << 20) // max(1, a2.shape[1]))
    for start in range(0, a2.shape[0], step):
        block = a2[start : start + step]
        bad = ~np.isfinite(block)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            return int(start + r), int(c)
    return None


def _all_finite(a: np.ndarray) -> bool:
    # The sum is non-finite whenever any element is (NaN/inf propagate); an overflow of finite values is the
    # only false alarm, and the exact blocked scan settles it. No m x d boolean array is allocated.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(a.sum()):
            return True
    return first_nonfinite(a) is None


def _nonfinite_error(name: str, a: np.ndarray, columns: list[str] | None = None) -> ValueError:
    where = first_nonfinite(a)
    assert where is not None
    r, c = where
    value = a.reshape(a.shape[0], -1)[r, c]
    col = f"column {columns[c]!r}" if columns is not None and c < len(columns) else f"column {c}"
    kind = "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    where_txt = f"row {r}, {col}" if a.ndim == 2 else f"row {r}"
    return ValueError(
        f"{name} contains {kind} at {where_txt}; gradient descent needs finite numbers. "
        "Remove or impute the missing values first (e.g. sklearn.impute.SimpleImputer)."
    )


def _columns_of(a: Any) -> list[str] | None:
    cols = getattr(a, "columns", None)
    if cols is None:
        return None
    try:
        return [str(c) for c in cols]
    except TypeError:
        return None


def _where(arr: np.ndarray, flat: int, columns: list[str] | None) -> str:
    if arr.ndim != 2:
        return f"row {flat}" if arr.ndim < 2 else f"element {flat}"
    r, c = (int(v) for v in np.unravel_index(flat, arr.shape))
    col = f"column {columns[c]!r}" if columns is not None and c < len(columns) else f"column {c}"
    return f"row {r}, {col}"


def _missing_error(name: str, arr: np.ndarray, columns: list[str] | None) -> ValueError | None:
    """A missing value (pd.NA, None, pd.NaT) in an object array: say so, and where, instead of "not numeric"."""
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is installed with scikit-learn
        return None
    flat = arr.reshape(-1)
    for i, v in enumerate(flat):
        if v is None or v is pd.NA or v is pd.NaT:
            what = "None" if v is None else ("pd.NA" if v is pd.NA else "pd.NaT")
            return ValueError(f"{name} holds a missing value ({what}) at {_where(arr, i, columns)}; gradient descent "
                              "needs finite numbers. Remove or impute the missing values first (e.g. "
                              "DataFrame.dropna() or sklearn.impute.SimpleImputer).")
    return None


def is_sparse(a: Any) -> bool:
    """Whether a is a scipy.sparse matrix or array."""
    if isinstance(a, np.ndarray) or not hasattr(a, "tocsr"):
        return False
    import scipy.sparse as sp

    return sp.issparse(a)


def as_sparse_matrix(X: Any, name: str = "X") -> Any:
    """A scipy.sparse X as a CSR array of float32/float64 (stored entries only; duplicates summed), checked: 2-D,
    not empty, every stored value finite (the error names its row and column)."""
    import scipy.sparse as sp

    A = sp.csr_array(X)
    if A.dtype not in (np.float32, np.float64):
        A = A.astype(np.float64)
    if A.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples); gradient descent needs at least one row of data.")
    A.sum_duplicates()
    if not _all_finite(A.data):
        bad = int(np.flatnonzero(~np.isfinite(A.data))[0])
        row = int(np.searchsorted(A.indptr, bad, side="right") - 1)
        value = A.data[bad]
        kind = "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
        raise ValueError(f"{name} contains {kind} at row {row}, column {int(A.indices[bad])} (a stored entry of the "
                         "sparse matrix); gradient descent needs finite numbers. Remove or impute it first.")
    return A


def _to_float_array(a: Any, name: str) -> np.ndarray:
    if hasattr(a, "toarray") and not isinstance(a, np.ndarray):
        raise ValueError(f"{name} is a sparse matrix, which this function does not take; convert it with "
                         f"{name}.toarray() (gdlab.descend, gdlab.closed_form and the estimators take sparse X).")
    columns = _columns_of(a)
    arr = np.asarray(a)
    if np.iscomplexobj(arr):
        bad = np.flatnonzero(arr.imag != 0)
        if bad.size:
            raise ValueError(f"{name} holds complex numbers ({complex(arr.reshape(-1)[bad[0]])!r} at "
                             f"{_where(arr, int(bad[0]), columns)}); gdlab fits real numbers. Split them into real "
                             f"and imaginary parts ({name}.real, {name}.imag) as separate columns.")
        arr = arr.real
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            missing = _missing_error(name, arr, columns) if arr.dtype == object else None
            if missing is not None:
                raise missing from None
            raise ValueError(
                f"{name} must be numeric, got dtype {arr.dtype}; encode text columns as numbers first."
            ) from None
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    return arr


def as_matrix(X: Any, name: str = "X", *, check_finite: bool = True, accept_sparse: bool = False) -> Any:
    """X as a 2-D float32/float64 array (no copy when it already is one); with ``accept_sparse``, a scipy.sparse X
    as a checked CSR array (:func:`as_sparse_matrix`), never densified."""
    if accept_sparse and is_sparse(X):
        return as_sparse_matrix(X, name)
    arr = _to_float_array(X, name)
    if arr.ndim == 1:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got a 1-D array of shape {arr.shape}; "
            f"use {name}.reshape(-1, 1) for a single feature."
        )
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {arr.shape}.")
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples); gradient descent needs at least one row of data.")
    if check_finite and not _all_finite(arr):
        raise _nonfinite_error(name, arr)
    return arr


def as_target(y: Any, n_samples: int, name: str = "y", *, check_finite: bool = True) -> np.ndarray:
    """y as a 1-D (single output) or 2-D (n_samples, n_outputs) float64 array."""
    arr = _to_float_array(y, name)
    if arr.dtype != np.float64:
        arr = arr.astype(np.float64)
    if arr.ndim == 0 or arr.ndim > 2:
        raise ValueError(f"{name} must be 1-D (n_samples,) or 2-D (n_samples, n_outputs), got shape {arr.shape}.")
    if arr.shape[0] != n_samples:
        raise ValueError(
            f"X and {name} have different numbers of samples: X has {n_samples} rows, {name} has {arr.shape[0]}. "
            "Pass one target value per row of X."
        )
    if arr.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples); gradient descent needs at least one row of data.")
    if check_finite and not _all_finite(arr):
        raise _nonfinite_error(name, arr)
    return arr


def as_sample_weight(sample_weight: Any, n_samples: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    sw = np.asarray(sample_weight, dtype=np.float64)
    if sw.ndim == 0:
        sw = np.full(n_samples, float(sw))
    if sw.ndim != 1 or sw.shape[0] != n_samples:
        raise ValueError(
            f"sample_weight must have shape ({n_samples},), one weight per row of X, got shape {sw.shape}."
        )
    check_sample_weight_values(sw)
    return sw


def check_sample_weight_values(sw: np.ndarray) -> None:
    """One clear error for weights that cannot weigh a fit: NaN/inf, negative ones (all of them, or the first),
    all zero. (A sum of zero or less has three different causes; each is named.)"""
    sw = np.asarray(sw, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(sw)):
        i = int(np.argmax(~np.isfinite(sw)))
        raise ValueError(f"sample_weight holds {sw[i]} at row {i}; weights must be finite and non-negative.")
    negative = sw < 0
    if negative.all():
        raise ValueError(f"sample_weight is negative for every row (e.g. {sw[0]} at row 0); weights must be "
                         "non-negative: did you mean their absolute values, or the weights of another array?")
    if negative.any():
        i = int(np.argmax(negative))
        raise ValueError(f"sample_weight must be non-negative, got {sw[i]} at row {i} "
                         f"({int(negative.sum())} negative weights in all).")
    if not np.any(sw > 0):
        raise ValueError("sample_weight is zero for every row; at least one row must have a positive weight.")


def check_choice(name: str, value: Any, valid: list[str] | tuple[str, ...]) -> str:
    if value not in valid:
        listed = ", ".join(repr(v) for v in valid)
        raise ValueError(f"unknown {name} {value!r}; valid values are {listed}.")
    return value


def check_positive(name: str, value: Any, *, allow_zero: bool = False, integer: bool = False) -> Any:
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be {kind}, got {value!r}.")
    if integer and not float(value).is_integer():
        raise ValueError(f"{name} must be {kind}, got {value!r}.")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        rule = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {rule}, got {value!r}.")
    return int(value) if integer else float(value)
