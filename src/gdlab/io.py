"""Load a table of numbers (CSV, Parquet, .npy, .npz) into memory, with one clear error for each way it can be wrong.

``load_table(path, target, features=None)`` returns a :class:`Table`: the feature matrix X (m, d), the target y (m,),
and the column names. Every problem is a :class:`DataError` (a ``ValueError``) whose message says what is wrong,
where (file, column, row) and how to fix it: a missing file, a corrupt or unreadable file, an unknown or non-numeric
column, a NaN or an infinity, an empty file, a header with no rows, ragged rows.

Rows are numbered from 0 over the data rows (the header is not a row); for CSV the line of the file is given too.
Column names of a .npy array are their indices ("0", "1", ...; a negative index counts from the end); a .npz
archive is read either as one 2-D array (its only array, or the array named ``data``), as ``X`` and ``y`` arrays,
or as one 1-D array per column.
"""

from __future__ import annotations

import csv
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["DataError", "Table", "load_table", "load_columns", "read_frame", "FORMATS"]

FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npy": "npy",
           ".npz": "npz"}


class DataError(ValueError):
    """The data file cannot be used as it is; the message says why and how to fix it."""


@dataclass(frozen=True)
class Table:
    """Numbers loaded from a file.

    X : (m, d) float64 features; y : (m,) float64 target, or None when no target was asked for;
    feature_names : the d column names of X; target_name : the target's column name (or None); path : the file.
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str]
    target_name: str | None
    path: str

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])


def _format_of(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        valid = ", ".join(sorted(FORMATS))
        raise DataError(f"{path}: unknown file type {path.suffix or '(no extension)'!r}; gdlab reads {valid} "
                        "(rename the file with the extension of its format).")
    return fmt


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file; check the path (the current folder is {os.getcwd()}).")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a file; give a CSV, Parquet, .npy or .npz file "
                        "(a folder of Parquet files needs `gdlab fit --stream`).")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: permission denied; make the file readable (chmod u+r).")


# ---- readers: each returns (names, columns) with columns a list of 1-D arrays (numeric or object) ---------------

def _ragged_line(path: Path, delimiter: str) -> tuple[int, int, int] | None:
    """(line number, fields found, fields expected) of the first row whose length differs from the header."""
    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        expected = None
        for row in reader:
            if not row:  # blank lines are skipped by every reader
                continue
            if expected is None:
                expected = len(row)
            elif len(row) != expected:
                return reader.line_num, len(row), expected
    return None


def _read_csv(path: Path) -> tuple[list[str], list[np.ndarray]]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes); it needs a header line and at least one row of numbers.")
    with open(path, "rb") as fh:
        head = fh.read(65536)
    if b"\x00" in head:
        raise DataError(f"{path} is not a text file (it holds binary bytes); is it really CSV? "
                        "Parquet files should end in .parquet, NumPy files in .npy/.npz.")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # a multi-byte character cut by the 64 KiB read is fine
            raise DataError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV.") from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    if delimiter == "," and b"," not in head.split(b"\n", 1)[0] and b";" in head.split(b"\n", 1)[0]:
        delimiter = ";"
    try:
        table = pacsv.read_csv(
            path, parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(strings_can_be_null=False))
    except pa.ArrowInvalid as exc:
        text = str(exc)
        if "Empty CSV file" in text:
            raise DataError(f"{path} holds no header line and no rows; it needs a header line and rows of "
                            "numbers.") from None
        if re.search(r"Expected \d+ columns, got \d+", text):
            bad = _ragged_line(path, delimiter)
            if bad is not None:
                line, got, want = bad
                raise DataError(f"{path}: line {line} has {got} fields but the header has {want} (ragged rows); "
                                "give every row one value per column.") from None
        raise DataError(f"{path} could not be read as CSV: {text.splitlines()[0]}") from None
    names = [str(n) for n in table.column_names]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"{path}: the header repeats the column name(s) {', '.join(map(repr, dup))}; "
                        "give every column its own name.")
    if table.num_rows == 0:
        raise DataError(f"{path} has a header ({', '.join(names)}) but no rows of data; add rows below the header.")
    cols = []
    for col in table.columns:
        if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_boolean(col.type) \
                or pa.types.is_null(col.type):
            cols.append(col.to_numpy(zero_copy_only=False).astype(np.float64))
        else:
            cols.append(np.asarray(col.to_pylist(), dtype=object))
    return names, cols


def _read_parquet(path: Path) -> tuple[list[str], list[np.ndarray]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if path.stat().st_size == 0:
        raise DataError(f"{path} is empty (0 bytes); it is not a Parquet file.")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"{path} could not be read as Parquet ({str(exc).splitlines()[0]}); is the file complete "
                        "and really Parquet? Write it again, e.g. with pandas DataFrame.to_parquet.") from None
    names = [str(n) for n in table.column_names]
    if not names:
        raise DataError(f"{path} has no columns; it needs a target column and feature columns.")
    if table.num_rows == 0:
        raise DataError(f"{path} has columns ({', '.join(names)}) but no rows of data.")
    cols = []
    for col in table.columns:
        t = col.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t):
            cols.append(np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.float64))
        else:
            cols.append(np.asarray(col.to_pylist(), dtype=object))
    return names, cols


def _matrix_columns(arr: np.ndarray, path: Path, what: str) -> tuple[list[str], list[np.ndarray]]:
    if arr.dtype.names:  # structured array: its fields are named columns
        return list(arr.dtype.names), [np.asarray(arr[n]) for n in arr.dtype.names]
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise DataError(f"{path}: {what} has shape {arr.shape}; gdlab needs a 2-D table (rows x columns).")
    if arr.shape[1] == 0:
        raise DataError(f"{path}: {what} has no columns (shape {arr.shape}).")
    return [str(j) for j in range(arr.shape[1])], [arr[:, j] for j in range(arr.shape[1])]


def _read_npy(path: Path) -> tuple[list[str], list[np.ndarray]]:
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path} could not be read as a NumPy .npy file ({str(exc).splitlines()[0]}); write it "
                        "again with numpy.save (object arrays are not read: save numbers).") from None
    return _matrix_columns(arr, path, "the array")


def _read_npz(path: Path) -> tuple[list[str], list[np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path} could not be read as a NumPy .npz archive ({str(exc).splitlines()[0]}); write "
                        "it again with numpy.savez.") from None
    if not arrays:
        raise DataError(f"{path} is an empty .npz archive (no arrays); save the data with numpy.savez.")
    if set(arrays) >= {"X", "y"}:
        X = arrays["X"].reshape(len(arrays["X"]), -1) if arrays["X"].ndim == 1 else arrays["X"]
        names, cols = _matrix_columns(X, path, "array 'X'")
        y = arrays["y"]
        if y.ndim != 1:
            raise DataError(f"{path}: array 'y' has shape {y.shape}; save one target value per row (1-D).")
        return names + ["y"], cols + [y]
    if len(arrays) == 1 or "data" in arrays:
        key = "data" if "data" in arrays else next(iter(arrays))
        return _matrix_columns(arrays[key], path, f"array {key!r}")
    names, cols = [], []
    for k, a in arrays.items():
        if a.ndim != 1:
            raise DataError(f"{path}: array {k!r} has shape {a.shape}; a .npz of several arrays needs one 1-D "
                            "array per column (or arrays named 'X' and 'y').")
        names.append(k)
        cols.append(a)
    lengths = {len(c) for c in cols}
    if len(lengths) > 1:
        detail = ", ".join(f"{n!r}: {len(c)}" for n, c in zip(names, cols))
        raise DataError(f"{path}: the arrays have different lengths ({detail}); give every column the same rows.")
    return names, cols


_READERS = {"csv": _read_csv, "parquet": _read_parquet, "npy": _read_npy, "npz": _read_npz}


def read_columns(path: Any) -> tuple[list[str], list[np.ndarray]]:
    """All columns of a file: (names, 1-D arrays), numeric ones as float64, others as object arrays."""
    p = Path(path)
    fmt = _format_of(p)
    _check_exists(p)
    names, cols = _READERS[fmt](p)
    if cols and len(cols[0]) == 0:
        raise DataError(f"{p} has no rows of data; it needs at least one row.")
    return names, cols


# ---- choosing and checking columns ------------------------------------------------------------------------------

def _resolve(path: Path, names: list[str], wanted: str, role: str) -> int:
    if wanted in names:
        return names.index(wanted)
    if re.fullmatch(r"-?\d+", wanted.strip()) and names == [str(j) for j in range(len(names))]:
        j = int(wanted)
        if -len(names) <= j < len(names):
            return j % len(names)
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    hint = ""
    close = [n for n in names if n.lower() == wanted.lower() or n.strip() == wanted.strip()]
    if close:
        hint = f" (did you mean {close[0]!r}?)"
    raise DataError(f"{path}: {role} column {wanted!r} not found{hint}; the columns are: {shown}.")


def _numeric(path: Path, name: str, col: np.ndarray, fmt: str) -> np.ndarray:
    if col.dtype != object:
        if np.issubdtype(col.dtype, np.number) or col.dtype == bool:
            return col.astype(np.float64, copy=False)
        col = col.astype(object)
    out = np.empty(len(col))
    for i, v in enumerate(col):
        try:
            out[i] = np.nan if v is None else float(v)
        except (TypeError, ValueError):
            where = f"row {i}" + (f" (line {i + 2} of the file)" if fmt == "csv" else "")
            raise DataError(f"{path}: column {name!r} is not numeric: {where} holds {v!r}; encode it as numbers "
                            "or leave the column out with --features.") from None
    return out


def _check_finite(path: Path, name: str, values: np.ndarray, fmt: str) -> None:
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(values.sum()):  # NaN/inf propagate into the sum; only an overflow needs the full scan
            return
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        v = values[i]
        kind = "a missing value (NaN)" if np.isnan(v) else ("inf" if v > 0 else "-inf")
        where = f"row {i}" + (f" (line {i + 2} of the file)" if fmt == "csv" else "")
        n_bad = int(bad.sum())
        more = f" ({n_bad} such values in that column)" if n_bad > 1 else ""
        raise DataError(f"{path}: column {name!r} holds {kind} at {where}{more}; gradient descent needs finite "
                        "numbers: drop or fill those rows first.")


def load_columns(path: Any, columns: list[str]) -> tuple[np.ndarray, list[str]]:
    """The named columns of a file as an (m, len(columns)) float64 matrix, checked finite."""
    p = Path(path)
    names, cols = read_columns(p)
    fmt = _format_of(p)
    idx = [_resolve(p, names, c, "feature") for c in columns]
    out = np.empty((len(cols[0]), len(idx)))
    for j, i in enumerate(idx):
        v = _numeric(p, names[i], cols[i], fmt)
        _check_finite(p, names[i], v, fmt)
        out[:, j] = v
    return out, [names[i] for i in idx]


def load_table(path: Any, target: str | None, features: list[str] | str | None = None) -> Table:
    """Load a data file into memory as features X and target y.

    Parameters
    ----------
    path : a .csv/.tsv/.txt, .parquet/.pq, .npy or .npz file.
    target : the name of the target column (for .npy: its index, e.g. "-1" for the last column). None: no target.
    features : the feature columns (a list, or one comma-separated string). None: every column but the target.

    Returns
    -------
    Table

    Raises
    ------
    DataError
        With a message that names the file, the column and the row at fault and says how to fix it.
    """
    p = Path(path)
    names, cols = read_columns(p)
    fmt = _format_of(p)
    if isinstance(features, str):
        features = [f.strip() for f in features.split(",") if f.strip()]
        if not features:
            raise DataError("--features is empty; give column names separated by commas, e.g. --features a,b.")
    t_idx = _resolve(p, names, str(target), "target") if target is not None else None
    if features is None:
        f_idx = [j for j in range(len(names)) if j != t_idx]
    else:
        f_idx = [_resolve(p, names, str(f), "feature") for f in features]
        if t_idx is not None and t_idx in f_idx:
            raise DataError(f"{p}: column {names[t_idx]!r} is both the target and a feature; leave it out of "
                            "--features.")
        if len(set(f_idx)) != len(f_idx):
            raise DataError(f"{p}: a feature is listed twice in --features; list each column once.")
    m = len(cols[0])
    X = np.empty((m, len(f_idx)))
    for j, i in enumerate(f_idx):
        X[:, j] = _numeric(p, names[i], cols[i], fmt)
    for j, i in enumerate(f_idx):
        _check_finite(p, names[i], X[:, j], fmt)
    y = None
    if t_idx is not None:
        y = _numeric(p, names[t_idx], cols[t_idx], fmt)
        _check_finite(p, names[t_idx], y, fmt)
    return Table(X=X, y=y, feature_names=[names[i] for i in f_idx],
                 target_name=None if t_idx is None else names[t_idx], path=str(p))


def read_frame(path: Any):  # pragma: no cover - convenience for notebooks
    """The whole file as a pandas DataFrame (numeric columns as float64)."""
    import pandas as pd

    names, cols = read_columns(path)
    return pd.DataFrame(dict(zip(names, cols)))
