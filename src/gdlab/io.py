"""Load a table of numbers (CSV, Parquet, .npy, .npz) into memory, with one clear error for each way it can be wrong.

``load_table(path, target, features=None)`` returns a :class:`Table`: the feature matrix X (m, d), the target y (m,),
and the column names. Every problem is a :class:`DataError` (a ``ValueError``) whose message says what is wrong,
where (file, column, row) and how to fix it: a missing file, a corrupt or unreadable file, an unknown or non-numeric
column, a NaN or an infinity, an empty file, a header with no rows, ragged rows.

Only regular files are read (a named pipe or a device is refused: gdlab reads a file more than once). Complex
numbers are refused unless every imaginary part is 0, and a column whose squares overflow float64 (values near
1e154 and above) is refused before any fit is attempted. Parquet pages written with checksums are verified; a Parquet
file written without them gets one :class:`IntegrityWarning` (a corrupted page in it would be read as other numbers).

Rows are numbered from 0 over the data rows (the header is not a row); for CSV the line of the file is given too.
Column names of a .npy array are their indices ("0", "1", ...; a negative index counts from the end); a .npz
archive is read either as one 2-D array (its only array, or the array named ``data``), as ``X`` and ``y`` arrays,
or as one 1-D array per column.

A sparse X is an .npz written by ``scipy.sparse.save_npz`` (CSR, CSC or COO; recognised by its ``format`` and
``shape`` entries), read by :func:`load_sparse_table` as a CSR array, never densified: its target is in a separate
.npy (1-D) or one-column .csv file, and its features are named f0 ... f{d-1} or by a text file of d names, one a line.
"""

from __future__ import annotations

import csv
import math
import os
import re
import stat
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gdlab.exceptions import GDLabWarning

__all__ = ["DataError", "IntegrityWarning", "Table", "load_table", "load_columns", "read_frame", "FORMATS",
           "parquet_page_checksums", "check_regular_file", "is_sparse_file", "load_sparse_matrix",
           "load_sparse_table"]

FORMATS = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npy": "npy",
           ".npz": "npz"}


class DataError(ValueError):
    """The data file cannot be used as it is; the message says why and how to fix it."""


class IntegrityWarning(GDLabWarning):
    """A data file cannot be checked for corruption (a Parquet file written without page checksums)."""


CHECKSUM_ADVICE = ("a corrupted page would be read as other numbers, unnoticed; write Parquet files with page "
                   "checksums: pyarrow.parquet.write_table(table, path, write_page_checksum=True)")


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_regular_file(path: Path) -> str | None:
    """None for a regular file (or a folder), else what it is ("a named pipe (FIFO)", "a device", ...)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    return _file_kind(mode)


def _page_header_has_crc(buf: bytes) -> bool | None:
    """Whether a Parquet PageHeader (Thrift compact protocol) holds its optional field 4, the page's CRC.

    Fields 1-3 (type, uncompressed and compressed size) are i32 and always come first; field 4 is the crc, and the
    next fields are structs. None when the bytes do not look like a page header."""
    pos, fid = 0, 0

    def varint() -> None:
        nonlocal pos
        while pos < len(buf) and buf[pos] & 0x80:
            pos += 1
        pos += 1

    while pos < len(buf):
        b = buf[pos]
        pos += 1
        if b == 0:  # STOP: a header of only the required fields
            return False
        delta, kind = b >> 4, b & 0x0F
        if delta == 0:
            return None  # long-form field ids are not written for these fields
        fid += delta
        if fid >= 4:
            return fid == 4
        if kind not in (4, 5, 6):  # i16, i32, i64: the required fields are i32
            return None
        varint()
    return None


def parquet_page_checksums(path: Any, metadata: Any = None) -> bool | None:
    """Whether a Parquet file was written with page checksums (read from its first page header), None when it
    cannot tell (no rows, an unreadable file). ``metadata``: the file's ``FileMetaData`` if already read."""
    try:
        if metadata is None:
            import pyarrow.parquet as pq

            metadata = pq.ParquetFile(path).metadata
        if metadata.num_row_groups == 0 or metadata.num_columns == 0:
            return None
        col = metadata.row_group(0).column(0)
        offsets = [o for o in (col.dictionary_page_offset, col.data_page_offset) if o is not None and o >= 0]
        if not offsets:
            return None
        with open(path, "rb") as fh:
            fh.seek(min(offsets))
            head = fh.read(64)
    except Exception:  # noqa: BLE001 - a file that cannot be read is reported by its reader
        return None
    return _page_header_has_crc(head)


@dataclass(frozen=True)
class Table:
    """Numbers loaded from a file.

    X : (m, d) float64 features (a scipy.sparse CSR array from :func:`load_sparse_table`); y : (m,) float64 target
    (with ``load_table(..., labels=True)``: its class labels, float64 or an object array of strings), or None when
    no target was asked for;
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
    kind = check_regular_file(path)
    if kind is not None:
        raise DataError(f"{path} is {kind}, not a regular file; gdlab reads its data from a file (more than once): "
                        f"save the data to a file first, e.g. cat {path} > data{path.suffix or '.csv'}.")
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
        pf = pq.ParquetFile(path, page_checksum_verification=True)
        table = pf.read()
    except (pa.ArrowInvalid, OSError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "checksum" in text.lower():
            raise DataError(f"{path}: a page of the file fails its checksum ({text}): its bytes changed after it "
                            "was written (a bad disk, copy or download); restore it from a good copy.") from None
        raise DataError(f"{path} could not be read as Parquet ({text}); is the file complete "
                        "and really Parquet? Write it again, e.g. with pandas DataFrame.to_parquet.") from None
    if parquet_page_checksums(path, pf.metadata) is False:
        warnings.warn(f"{path} was written without page checksums: {CHECKSUM_ADVICE}.", IntegrityWarning,
                      stacklevel=4)
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


def _where(i: int, fmt: str) -> str:
    return f"row {i}" + (f" (line {i + 2} of the file)" if fmt == "csv" else "")


def _numeric(path: Path, name: str, col: np.ndarray, fmt: str) -> np.ndarray:
    if np.iscomplexobj(col):
        imag = np.asarray(col).imag
        bad = np.flatnonzero(imag != 0)
        if bad.size:
            i = int(bad[0])
            raise DataError(f"{path}: column {name!r} holds complex numbers ({_where(i, fmt)} is "
                            f"{complex(col[i])!r}); "
                            "gdlab fits real numbers: split the column into its real and imaginary parts "
                            "(numpy .real and .imag), or leave it out with --features.")
        col = np.asarray(col).real
    if col.dtype != object:
        if np.issubdtype(col.dtype, np.number) or col.dtype == bool:
            return col.astype(np.float64, copy=False)
        col = col.astype(object)
    out = np.empty(len(col))
    for i, v in enumerate(col):
        if isinstance(v, complex) and v.imag != 0:
            raise DataError(f"{path}: column {name!r} holds complex numbers ({_where(i, fmt)} is {v!r}); gdlab "
                            "fits real numbers: split the column into its real and imaginary parts, or leave it "
                            "out with --features.")
        try:
            out[i] = np.nan if v is None else float(v.real if isinstance(v, complex) else v)
        except (TypeError, ValueError):
            where = _where(i, fmt)
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


def _check_magnitude(path: Path, name: str, values: np.ndarray, fmt: str) -> None:
    """Refuse a (finite) column whose sum of squares overflows float64: every statistic of the fit would."""
    with np.errstate(over="ignore", invalid="ignore"):
        if math.isfinite(float(np.dot(values, values))):
            return
    i = int(np.argmax(np.abs(values)))
    big = abs(float(values[i]))
    scale = f"1e{int(math.floor(math.log10(big)))}"
    raise DataError(f"{path}: column {name!r} holds values as large as {big:.3g} at {_where(i, fmt)}: their squares "
                    f"overflow float64 (largest {np.finfo(np.float64).max:.3g}), so no fit can be computed; "
                    f"rescale the column first, e.g. divide it by {scale}.")


def _labels(path: Path, name: str, col: np.ndarray, fmt: str) -> np.ndarray:
    """A column of class labels as it is (numbers as float64, anything else as an object array of its values),
    refused with its row where a label is missing."""
    if col.dtype != object:
        values = np.asarray(col)
        missing = np.isnan(values) if np.issubdtype(values.dtype, np.floating) else np.zeros(len(values), bool)
        values = values.astype(np.float64, copy=False) if values.dtype != bool else values.astype(np.float64)
    else:
        values = col
        missing = np.array([v is None or (isinstance(v, float) and math.isnan(v)) or
                            (isinstance(v, str) and not v.strip()) for v in col], dtype=bool)
    if missing.any():
        i = int(np.argmax(missing))
        n_bad = int(missing.sum())
        more = f" ({n_bad} rows lack one)" if n_bad > 1 else ""
        raise DataError(f"{path}: column {name!r} has no label at {_where(i, fmt)}{more}; every row needs its "
                        "class: drop or fill those rows first.")
    return values


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


def load_table(path: Any, target: str | None, features: list[str] | str | None = None, *,
               labels: bool = False) -> Table:
    """Load a data file into memory as features X and target y.

    Parameters
    ----------
    path : a .csv/.tsv/.txt, .parquet/.pq, .npy or .npz file.
    target : the name of the target column (for .npy: its index, e.g. "-1" for the last column). None: no target.
    features : the feature columns (a list, or one comma-separated string). None: every column but the target.
    labels : read the target as class labels (a classifier's): y is then the column as it is, strings (an object
        array) or numbers (float64), checked for missing values only (None, NaN or an empty string).

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
    numeric = [_numeric(p, names[i], cols[i], fmt) for i in f_idx]  # views where the file's columns are float64
    # copied in blocks of rows, so that source (a .npy file's rows, or contiguous columns) and X stay in cache: a
    # column at a time would stride through the whole of X once per column (4.7 s at 10^6 x 100, against 0.3 s)
    block = max(1, (1 << 18) // max(1, len(f_idx)))
    for start in range(0, m, block):
        stop = min(start + block, m)
        for j, col in enumerate(numeric):
            X[start:stop, j] = col[start:stop]
    # one pass for every column's sum and sum of squares; only a column they flag is scanned again, to name it
    with np.errstate(over="ignore", invalid="ignore"):
        sums = X.sum(axis=0)
        squares = np.einsum("ij,ij->j", X, X)
    for j in np.flatnonzero(~np.isfinite(sums)):
        _check_finite(p, names[f_idx[j]], X[:, j], fmt)
    for j in np.flatnonzero(~np.isfinite(squares)):
        _check_magnitude(p, names[f_idx[j]], X[:, j], fmt)
    y = None
    if t_idx is not None and labels:
        y = _labels(p, names[t_idx], cols[t_idx], fmt)
    elif t_idx is not None:
        y = _numeric(p, names[t_idx], cols[t_idx], fmt)
        _check_finite(p, names[t_idx], y, fmt)
        _check_magnitude(p, names[t_idx], y, fmt)
    return Table(X=X, y=y, feature_names=[names[i] for i in f_idx],
                 target_name=None if t_idx is None else names[t_idx], path=str(p))


# ---- a sparse X (scipy.sparse.save_npz) ----------------------------------------------------------------------------

#: what scipy.sparse.save_npz writes besides the format and the shape, per format
_SPARSE_PARTS = {b"csr": ("data", "indices", "indptr"), b"csc": ("data", "indices", "indptr"),
                 b"coo": ("data", "row", "col")}


def is_sparse_file(path: Any) -> bool:
    """Whether path is an .npz archive written by scipy.sparse.save_npz (its ``format`` and ``shape`` entries)."""
    p = Path(path)
    if p.suffix.lower() != ".npz" or not p.is_file():
        return False
    try:
        with zipfile.ZipFile(p) as z:
            names = {n.removesuffix(".npy") for n in z.namelist()}
    except (OSError, zipfile.BadZipFile):
        return False
    return {"format", "shape", "data"} <= names


def load_sparse_matrix(path: Any, option: str = "DATA") -> Any:
    """The sparse X of a scipy.sparse.save_npz file as a float64 CSR array, checked (every stored entry finite,
    duplicates summed); never densified. ``option`` names the argument in the errors."""
    import scipy.sparse as sp

    p = Path(path)
    _check_exists(p)
    if not is_sparse_file(p):
        raise DataError(f"{option} {p} is not a sparse matrix saved by scipy.sparse.save_npz (a dense .npz archive "
                        "holds named columns: name the target column with --target COL); save a sparse X with "
                        "scipy.sparse.save_npz(path, X).")
    try:
        with np.load(p, allow_pickle=False) as z:
            fmt = bytes(z["format"].item()) if z["format"].dtype.kind == "S" else str(z["format"]).encode()
            if fmt not in _SPARSE_PARTS:
                raise DataError(f"{option} {p}: a sparse matrix of format {fmt.decode()!r}; gdlab reads CSR, CSC and "
                                "COO (save X.tocsr() with scipy.sparse.save_npz).")
            shape = tuple(int(v) for v in z["shape"])
            parts = [z[k] for k in _SPARSE_PARTS[fmt]]
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise DataError(f"{option} {p} could not be read as a sparse matrix ({str(exc).splitlines()[0]}); write it "
                        "again with scipy.sparse.save_npz.") from None
    try:
        if fmt == b"coo":
            A = sp.coo_array((parts[0], (parts[1], parts[2])), shape=shape).tocsr()
        else:
            A = (sp.csr_array if fmt == b"csr" else sp.csc_array)(tuple(parts), shape=shape).tocsr()
    except (ValueError, TypeError, IndexError) as exc:
        raise DataError(f"{option} {p} is not a valid sparse matrix ({str(exc).splitlines()[0]}); write it again "
                        "with scipy.sparse.save_npz.") from None
    if np.iscomplexobj(A.data) or not (np.issubdtype(A.dtype, np.number) or A.dtype == bool):
        raise DataError(f"{option} {p}: the stored entries are {A.dtype}, not real numbers; save a float matrix.")
    A = A.astype(np.float64, copy=False)
    A.sum_duplicates()
    if A.shape[0] == 0:
        raise DataError(f"{option} {p} has no rows of data; it needs at least one row.")
    bad = np.flatnonzero(~np.isfinite(A.data))
    if bad.size:
        row = int(np.searchsorted(A.indptr, bad[0], side="right") - 1)
        v = A.data[bad[0]]
        kind = "a missing value (NaN)" if np.isnan(v) else ("inf" if v > 0 else "-inf")
        raise DataError(f"{option} {p} holds {kind} at row {row}, column {int(A.indices[bad[0]])} (a stored entry; "
                        f"{bad.size} such in all); gradient descent needs finite numbers: drop or fill them first.")
    with np.errstate(over="ignore", invalid="ignore"):
        if not math.isfinite(float(np.dot(A.data, A.data))):
            raise DataError(f"{option} {p} holds values as large as {np.abs(A.data).max():.3g}: their squares "
                            "overflow float64; rescale the matrix first.")
    return A


def _read_target_file(path: Path, n_rows: int, labels: bool) -> tuple[np.ndarray, str]:
    """A sparse X's target: a .npy of shape (m,) or (m, 1), or a CSV of one column (with its header)."""
    _check_exists(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt not in ("npy", "csv"):
        raise DataError(f"--target {path}: a sparse X's target is a .npy or .csv file of one column, got "
                        f"{path.suffix or '(no extension)'!r}.")
    names, cols = read_columns(path)
    if len(cols) != 1:
        raise DataError(f"--target {path} has {len(cols)} columns; a target file holds one value per row of X, in "
                        "one column.")
    name = path.stem if fmt == "npy" else names[0]
    col = cols[0]
    if len(col) != n_rows:
        raise DataError(f"--target {path} has {len(col)} rows but DATA has {n_rows}: give one target value per "
                        "row of X, in the same order.")
    if labels:
        return _labels(path, name, col, fmt), name
    y = _numeric(path, name, col, fmt)
    _check_finite(path, name, y, fmt)
    _check_magnitude(path, name, y, fmt)
    return y, name


def _read_feature_names(path: Path, d: int) -> list[str]:
    _check_exists(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"--feature-names {path} could not be read as UTF-8 text ({exc}); write one name a "
                        "line.") from None
    names = [line.strip() for line in lines if line.strip()]
    if len(names) != d:
        raise DataError(f"--feature-names {path} holds {len(names)} names but X has {d} columns; write one name a "
                        "line, one for each column of X.")
    if len(set(names)) != d:
        twice = next(n for n in names if names.count(n) > 1)
        raise DataError(f"--feature-names {path} names {twice!r} twice; give each column its own name.")
    return names


def load_sparse_table(path: Any, target: Any, feature_names: Any = None, *, labels: bool = False) -> Table:
    """A sparse X (scipy.sparse.save_npz) and its target from a separate file, as a :class:`Table` whose X is a
    float64 CSR array (never densified).

    Parameters
    ----------
    path : the .npz written by scipy.sparse.save_npz (CSR, CSC or COO).
    target : a .npy file of shape (m,) or (m, 1), or a CSV of one column with its header; None: no target.
    feature_names : a text file of d names, one a line; None: f0, ..., f{d-1}.
    labels : read the target as class labels, as :func:`load_table` does.

    Raises
    ------
    DataError
        Naming the argument (DATA, --target, --feature-names) and the fix.
    """
    X = load_sparse_matrix(path)
    d = X.shape[1]
    names = [f"f{j}" for j in range(d)] if feature_names is None else _read_feature_names(Path(feature_names), d)
    y, target_name = (None, None) if target is None else _read_target_file(Path(target), X.shape[0], labels)
    return Table(X=X, y=y, feature_names=names, target_name=target_name, path=str(path))


def read_frame(path: Any):  # pragma: no cover - convenience for notebooks
    """The whole file as a pandas DataFrame (numeric columns as float64)."""
    import pandas as pd

    names, cols = read_columns(path)
    return pd.DataFrame(dict(zip(names, cols)))
