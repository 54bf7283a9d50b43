"""The ``stream`` source: Parquet and CSV files (or folders of them) read in row batches, memory bounded by a few.

For the squared error one pass over the files gives the :class:`~gdlab.sources.gram.GramStats`; the closed form and
every full-batch iteration then cost O(d^2) whatever the number of rows (the fit runs at the speed of reading).
Every batch is shifted by one vector K (the first batch's mean) and reduced to its own centred statistics
(:func:`batch_stats`; no digit is lost when a column has a mean of 1e8 and a spread of 1), and the batches are
merged by Chan, Golub & LeVeque's update (:meth:`GramStats.merge`) in a balanced tree, so that rounding grows with
log(#batches), not #batches. Batches are reduced in worker threads while pyarrow decodes the next ones; the
results are merged in file order, so the answer does not depend on the threads' timing.

Other losses (Huber, epsilon-insensitive, ...) need the rows: each evaluation of the loss is a pass over the files.
Mini-batches are streamed: each epoch visits the row groups (Parquet) or files (CSV) in a fresh random order and
shuffles the rows within each batch it reads (a *local* shuffle: memory stays bounded).

Faults never give a silent wrong answer. Every file's footer (Parquet) or header (CSV) is read when the source is
opened, so a truncated file, a file lacking a column or a column that is not numeric is reported at once, naming
the file. A read error in the middle of a file, a null, a NaN or an infinity are reported with the file and the row;
a file that changes between passes (a different number of rows) is reported too. Parquet pages written with
checksums (``pyarrow.parquet.write_table(..., write_page_checksum=True)``) are verified on reading; files written
without them get one :class:`~gdlab.io.IntegrityWarning` when the source is opened (a corrupted page in them would
be read as other numbers, and no reader can tell).

When the features are not named, every file must hold the same columns: a column that some files have and others
lack is an error whatever the order of the files (name the features to use the columns the files share).
"""

from __future__ import annotations

import itertools
import os
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from gdlab.losses import Loss, get_loss
from gdlab.sources.gram import GramSource, GramStats
from gdlab.sources.memory import MemorySource

__all__ = ["StreamSource", "StreamError", "FILE_FORMATS", "list_data_files", "batch_stats", "batch_buffer", "unshift"]

_READAHEAD = 4  # batches decoded ahead by pyarrow's threads while this thread accumulates the previous ones
FILE_FORMATS = {".parquet": "parquet", ".pq": "parquet", ".parq": "parquet", ".csv": "csv"}
Progress = Callable[[int, "int | None"], Any]


class StreamError(ValueError):
    """A data file cannot be streamed as it is. ``path`` names the file (None when the fault is not one file's)."""

    def __init__(self, message: str, path: str | None = None):
        super().__init__(message)
        self.path = path


def _pyarrow() -> tuple[Any, Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv
        import pyarrow.dataset as pa_ds
    except ImportError as exc:  # pragma: no cover - pyarrow is installed with gdlab[io]
        raise ImportError("streaming files needs pyarrow: pip install 'gdlab[io]'.") from exc
    return pa, pa_ds, pa_csv


def list_data_files(path: Any) -> tuple[list[str], str]:
    """The data files at ``path`` (a file, or a folder searched recursively) and their format ("parquet"/"csv").

    Names starting with "." or "_" (``_SUCCESS``, ``.crc`` files, hidden files) are skipped, as Spark and pyarrow do.
    A folder must hold files of one format only.
    """
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise StreamError(f"{p}: no such file or folder; give the path of a .parquet/.csv file or of a folder of them.",
                          str(p))
    from gdlab.io import check_regular_file

    kind = check_regular_file(p)
    if kind is not None:
        raise StreamError(f"{p} is {kind}, not a regular file; streaming reads files (more than once): save the "
                          "data to a file first.", str(p))
    if p.is_file():
        fmt = FILE_FORMATS.get(p.suffix.lower())
        if fmt is None:
            raise StreamError(f"{p}: unknown file type {p.suffix!r}; streaming reads "
                              f"{', '.join(sorted(FILE_FORMATS))} files.", str(p))
        return [str(p)], fmt
    found: dict[str, list[str]] = {}
    for root, dirs, files in os.walk(p):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "_")))
        for name in sorted(files):
            if name.startswith((".", "_")):
                continue
            fmt = FILE_FORMATS.get(Path(name).suffix.lower())
            if fmt is not None:
                full = os.path.join(root, name)
                kind = check_regular_file(Path(full))
                if kind is not None:
                    raise StreamError(f"{full} is {kind}, not a regular file; streaming reads files (more than "
                                      "once): replace it with a file, or move it out of the folder.", full)
                found.setdefault(fmt, []).append(full)
    if not found:
        raise StreamError(f"{p}: the folder holds no {', '.join(sorted(FILE_FORMATS))} files.", str(p))
    if len(found) > 1:
        counts = ", ".join(f"{len(v)} {k}" for k, v in sorted(found.items()))
        raise StreamError(f"{p}: the folder mixes file formats ({counts}); put one format per folder.", str(p))
    fmt, files = next(iter(found.items()))
    return files, fmt


def _is_numeric(pa: Any, t: Any) -> bool:
    return bool(pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
                or pa.types.is_decimal(t) or pa.types.is_null(t))


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS limited to one thread: the (d+k) x rows x (d+k) products of a batch are too small to gain from BLAS
    threads, which would compete with pyarrow's decoding threads and with the other batches' threads."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _compute_threads() -> int:
    """Threads that reduce batches: half the cores (pyarrow decodes on the others), at least 1, at most 8."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


class _PairwiseMerge:
    """Merge statistics in a balanced binary tree (like a binary counter): error grows with log of the count."""

    def __init__(self) -> None:
        self._stack: list[tuple[int, GramStats]] = []

    def add(self, stats: GramStats) -> None:
        level = 0
        while self._stack and self._stack[-1][0] == level:
            _, top = self._stack.pop()
            stats = top.merge(stats)
            level += 1
        self._stack.append((level, stats))

    def result(self, n_features: int, n_outputs: int) -> GramStats:
        out = GramStats.empty(n_features, n_outputs)
        for _, s in self._stack:
            out = out.merge(s)
        return out


def batch_buffer(n_columns: int, rows: int) -> np.ndarray:
    """A buffer for :func:`batch_stats`: n_columns rows for the data, then a row of ones (its product gives the
    column sums), then rows of zeros up to a multiple of 4 (BLAS kernels run fastest on such shapes)."""
    buf = np.zeros(((n_columns + 4) // 4 * 4, rows))
    buf[n_columns] = 1.0
    return buf


def batch_stats(Zt: np.ndarray, n_features: int, shift: np.ndarray | None = None,
                n_columns: int | None = None) -> GramStats:
    """Statistics of the shifted data z - K of one batch given column-wise, Zt = [x; y] of shape (d + k, rows).

    ``shift`` K is subtracted from Zt in place (None: Zt holds z - K already). ``n_columns``: Zt is a
    :func:`batch_buffer` (view) whose first n_columns rows hold the data. The sums s = sum (z - K) and
    S = sum (z - K)(z - K)^T come from one BLAS product, and C = S - s s^T / rows; this loses at most two of
    sixteen digits while every column's batch mean lies within 10 standard deviations of K. A batch farther away
    (sorted files, drifting columns) is centred on its own mean instead (two-pass, with the mean corrected by the
    mean of the centred values), which loses nothing. Batches shifted by the same K (the first batch's mean) then
    merge by Chan's update without loss, since their means are small numbers: add K back at the end
    (:func:`unshift`). Non-finite values leave Zt as it was (shifted), so that they can be located.
    """
    rows = Zt.shape[1]
    q = Zt.shape[0] if n_columns is None else n_columns
    if shift is not None:
        Zt[:q] -= shift[:, None]
    if n_columns is None:
        s = Zt.sum(axis=1)
        S = Zt @ Zt.T
    else:
        P = Zt @ Zt.T
        S, s = P[:q, :q], P[:q, q]
    mean = s / rows
    var = np.diag(S) / rows - mean * mean
    with np.errstate(invalid="ignore"):
        far = bool(np.any(mean * mean > 100.0 * np.maximum(var, 0.0)))
    if far:
        Z = Zt[:q]
        Z -= mean[:, None]
        s2 = Z.sum(axis=1)
        comoment = Z @ Z.T - np.outer(s2, s2) / rows
        mean = mean + s2 / rows
    else:
        comoment = S - np.outer(s, mean)
    comoment = 0.5 * (comoment + comoment.T)
    return GramStats(float(rows), rows, mean, comoment, n_features)


def unshift(stats: GramStats, shift: np.ndarray | None) -> GramStats:
    """Statistics of z from those of z - K."""
    if shift is None or stats.n == 0:
        return stats
    return GramStats(stats.n, stats.n_rows, stats.mean + shift, stats.comoment, stats.n_features)


class StreamSource:
    """Loss and gradient from data files too large for memory, read in row batches by pyarrow.

    Parameters
    ----------
    path : a .parquet/.csv file or a folder of them (searched recursively; one format per folder).
    target : the name of the target column, or a list of names (several outputs, fitted side by side).
    features : the feature columns; None takes every column but the target(s), in the first file's order.
    fit_intercept : fit the intercept b (the workshop's w0).
    batch_rows : rows read at a time; memory holds about 3 x batch_rows x (d + k) float64 values.
    loss, epsilon : the loss (see :mod:`gdlab.objectives`); the squared error is evaluated from one-pass
        statistics, any other loss by a pass over the files per evaluation.
    progress : optional callback ``progress(rows_done, rows_total)`` called after each batch of each pass
        (``rows_total`` is None while a CSV source's row count is still unknown).

    Attributes
    ----------
    files, file_format, feature_names, target_names, n_samples, n_features, n_outputs, passes (passes made so far).
    """

    name = "stream"
    supports_batches = True

    def __init__(self, path: Any, target: str | Sequence[str], features: Sequence[str] | None = None, *,
                 fit_intercept: bool = True, batch_rows: int = 65536, loss: str | Loss = "squared_error",
                 epsilon: float = 0.1, progress: Progress | None = None):
        pa, pa_ds, pa_csv = _pyarrow()
        if target is None:
            raise ValueError("target is missing: name the target column, e.g. target='y' (or a list of names).")
        if isinstance(batch_rows, bool) or not isinstance(batch_rows, (int, np.integer)) or batch_rows < 1:
            raise ValueError(f"batch_rows must be a positive integer, got {batch_rows!r}.")
        self.single_output = isinstance(target, str)
        self.target_names = [target] if isinstance(target, str) else [str(t) for t in target]
        if not self.target_names:
            raise ValueError("target is an empty list; name at least one target column.")
        self.files, self.file_format = list_data_files(path)
        self.path = str(path)
        self.fit_intercept = bool(fit_intercept)
        self.batch_rows = int(batch_rows)
        self.loss = get_loss(loss, epsilon)
        self.progress = progress
        self.passes = 0
        self._stats: GramStats | None = None
        self._gram: GramSource | None = None

        first_schema = None
        named = features is not None
        unchecked: list[str] = []  # Parquet files written without page checksums
        self._fragments = []
        self._file_rows: list[int | None] = []
        fmt = self._make_format(pa, pa_ds, pa_csv, None)
        import pyarrow.fs as pa_fs

        self._filesystem = pa_fs.LocalFileSystem()
        for f in self.files:
            try:
                frag = fmt.make_fragment(f, filesystem=self._filesystem)
                schema = frag.physical_schema  # reads the Parquet footer / the CSV header and first block
            except (pa.ArrowException, OSError) as exc:
                raise StreamError(f"{f}: cannot read this {self.file_format.upper()} file: it is corrupt, truncated "
                                  f"or not a {self.file_format.upper()} file ({exc}). Rewrite or remove it.", f
                                  ) from exc
            if first_schema is None:
                first_schema = schema
                if features is None:
                    features = [n for n in schema.names if n not in self.target_names]
                self.feature_names = [str(c) for c in features]
                self.columns = self.feature_names + self.target_names
                dup = sorted({c for c in self.columns if self.columns.count(c) > 1})
                if dup:
                    raise ValueError(f"column(s) {dup} appear twice among the features and targets; name each once.")
            if not named and set(schema.names) != set(first_schema.names):
                raise self._columns_differ(f, schema.names, self.files[0], first_schema.names)
            missing = [c for c in self.columns if c not in schema.names]
            if missing:
                raise StreamError(f"{f}: the file has no column {missing[0]!r}" +
                                  (f" (nor {missing[1:]})" if len(missing) > 1 else "") +
                                  f"; its columns are {schema.names}. Every file must hold the features and the "
                                  "target: fix the file, or choose the columns with features=[...].", f)
            for c in self.columns:
                t = schema.field(c).type
                if not _is_numeric(pa, t):
                    role = "target" if c in self.target_names else "feature"
                    raise StreamError(f"{f}: {role} column {c!r} is not numeric (type {t}); encode it as numbers, "
                                      "or leave it out with features=[...].", f)
            self._file_rows.append(frag.metadata.num_rows if self.file_format == "parquet" else None)
            if self.file_format == "parquet":
                from gdlab.io import parquet_page_checksums

                if parquet_page_checksums(f, frag.metadata) is False:
                    unchecked.append(f)
        if unchecked:
            from gdlab.io import CHECKSUM_ADVICE, IntegrityWarning

            n = len(self.files)
            which = (f"{unchecked[0]} was" if n == 1 else
                     f"{'all' if len(unchecked) == n else f'{len(unchecked)} of the'} {n} files (the first: "
                     f"{unchecked[0]}) were")
            warnings.warn(f"{which} written without page checksums: {CHECKSUM_ADVICE}.", IntegrityWarning,
                          stacklevel=2)
        self.n_features = len(self.feature_names)
        self.n_outputs = len(self.target_names)
        # Read every column as float64: a CSV value that is not a number then fails loudly, naming the file.
        self._format = self._make_format(pa, pa_ds, pa_csv, self.columns)
        self._fragments = [self._format.make_fragment(f, filesystem=self._filesystem) for f in self.files]
        known = all(r is not None for r in self._file_rows)
        self._n_rows: int | None = int(sum(self._file_rows)) if known else None  # type: ignore[arg-type]
        if self._n_rows == 0:
            raise StreamError(f"{self.path}: the files hold no rows of data.", self.path)

    @staticmethod
    def _columns_differ(path: str, names: list[str], first: str, first_names: list[str]) -> StreamError:
        extra = [n for n in names if n not in first_names]
        lacks = [n for n in first_names if n not in names]
        parts = []
        if lacks:
            parts.append(f"has no column {lacks[0]!r}" + (f" (nor {lacks[1:]})" if len(lacks) > 1 else "") +
                         f", which {first} has")
        if extra:
            parts.append(f"has column(s) {extra}, which {first} lacks")
        return StreamError(f"{path}: the file {' and '.join(parts)}; with the features not named (every column but "
                           "the target), every file must hold the same columns. Name the features the files share "
                           "(features=[...]; --features a,b on the command line), or fix the files.", path)

    # ---- reading -------------------------------------------------------------------------------------------------
    def _make_format(self, pa: Any, pa_ds: Any, pa_csv: Any, columns: list[str] | None) -> Any:
        if self.file_format == "parquet":
            # pre_buffer=False: read a column chunk page by page instead of buffering whole row groups ahead,
            # which keeps memory to a few batches (pre-buffering 1M-row row groups costs ~1 GB for no speed here)
            return pa_ds.ParquetFileFormat(default_fragment_scan_options=pa_ds.ParquetFragmentScanOptions(
                page_checksum_verification=True, pre_buffer=False))
        convert = pa_csv.ConvertOptions(column_types={c: pa.float64() for c in columns} if columns else None)
        return pa_ds.CsvFileFormat(convert_options=convert)

    @property
    def n_samples(self) -> int:
        """Rows in all files (Parquet: from the footers; CSV: counted by the first pass, made now if needed)."""
        if self._n_rows is None:
            self.gram_stats()
        return int(self._n_rows)  # type: ignore[arg-type]

    def _arrow_batches(self, index: int, fragment: Any = None, first_row: int = 0) -> Iterator[tuple[int, Any]]:
        """Yield (first row in the file, Arrow RecordBatch) for each batch of one file (or one row group)."""
        pa, _, _ = _pyarrow()
        path = self.files[index]
        frag = fragment if fragment is not None else self._fragments[index]
        row = first_row
        it = None
        while True:
            try:
                if it is None:  # opening the file can fail too (removed, unreadable)
                    it = frag.to_batches(columns=self.columns, batch_size=self.batch_rows,
                                         batch_readahead=_READAHEAD, fragment_readahead=1, use_threads=True)
                batch = next(it)
            except StopIteration:
                return
            except FileNotFoundError as exc:
                raise StreamError(f"{path}: the file was removed during the fit ({exc}); fit again on files that "
                                  "stay put.", path) from exc
            except (pa.ArrowException, OSError) as exc:
                raise StreamError(f"{path}: reading failed after row {row} ({exc}); the file is corrupt or "
                                  "truncated, or holds a value that is not a number. Rewrite or remove it.", path
                                  ) from exc
            if batch.num_rows:
                yield row, batch
                row += batch.num_rows

    def _fill(self, path: str, row: int, batch: Any, out: np.ndarray | None = None,
              shift: np.ndarray | None = None) -> np.ndarray:
        """The batch as Zt = [x; y] - K, (d + k, rows) float64: the copy out of Arrow and the shift in one pass.

        With ``out`` (a :func:`batch_buffer`), the view out[:, :rows] is returned, padding rows included."""
        n = batch.num_rows
        Zt = np.empty((len(self.columns), n)) if out is None else out[:, :n]
        for j, col in enumerate(batch.columns):
            if col.null_count:
                i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
                raise StreamError(f"{path}: column {self.columns[j]!r} is missing a value (null) at row "
                                  f"{row + i}; fill or drop the missing values first.", path)
            values = col.to_numpy(zero_copy_only=False)
            if shift is None:
                Zt[j] = values
            else:
                np.subtract(values, shift[j], out=Zt[j])
        return Zt

    def _read_file(self, index: int, fragment: Any = None, first_row: int = 0) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (first row in the file, Zt) for each batch of one file; each Zt is fresh."""
        path = self.files[index]
        for row, batch in self._arrow_batches(index, fragment, first_row):
            yield row, self._fill(path, row, batch)

    def _nonfinite_error(self, path: str, row: int, Zt: np.ndarray) -> StreamError:
        for j in range(Zt.shape[0]):
            bad = np.flatnonzero(~np.isfinite(Zt[j]))
            if bad.size:
                v = Zt[j, bad[0]]
                kind = "NaN" if np.isnan(v) else ("inf" if v > 0 else "-inf")
                return StreamError(f"{path}: column {self.columns[j]!r} holds {kind} at row {row + int(bad[0])}; "
                                   "gradient descent needs finite numbers. Remove or impute those rows first.", path)
        with np.errstate(all="ignore"):
            peaks = np.max(np.abs(Zt), axis=1) if Zt.size else np.zeros(0)
        if peaks.size:
            j = int(np.argmax(peaks))
            big = float(peaks[j])
            return StreamError(f"{path}: column {self.columns[j]!r} holds values of about {big:.2g} (in the rows from "
                               f"{row} on): their squares overflow float64, so no fit can be computed; rescale the "
                               f"column first, e.g. divide it by 1e{int(np.floor(np.log10(big)))}.", path)
        return StreamError(f"{path}: the second moments of rows {row}.. overflow float64; rescale the columns.", path)

    def _pass_batches(self) -> Iterator[tuple[str, int, Any]]:
        """One pass over every file: yields (path, first row in the file, RecordBatch); reports progress and
        checks each file's row count against the one seen when it was opened."""
        done = 0
        total = self._n_rows
        counts = []
        for index, path in enumerate(self.files):
            rows_in_file = 0
            for row, batch in self._arrow_batches(index):
                yield path, row, batch
                rows_in_file += batch.num_rows
                done += batch.num_rows
                if self.progress is not None:
                    self.progress(done, total)
            expected = self._file_rows[index]
            if expected is not None and rows_in_file != expected:
                raise StreamError(f"{path}: read {rows_in_file} rows but the file held {expected} when it was "
                                  "opened; the file changed during the fit. Fit again on files that stay put.", path)
            counts.append(rows_in_file)
        self._file_rows = counts
        if self._n_rows is None:
            self._n_rows = done
        self.passes += 1

    def _map_pass(self, work: Callable[[str, int, np.ndarray], Any], batches: Iterator[tuple[str, int, Any]],
                  shift: np.ndarray | None = None) -> Iterator[Any]:
        """``work(path, row, Zt)`` for every batch, in worker threads, results yielded in the batches' order.

        Zt is a view of a :func:`batch_buffer`: rows 0..d+k-1 hold [x; y] - K, then padding (ones, zeros).

        NumPy and BLAS release the GIL, so the copies and products of several batches run on several cores while
        pyarrow's own threads decode the next ones. At most 2 x threads batches are in flight, each in a buffer
        taken from a free list (memory stays bounded); BLAS is held to one thread per call meanwhile. The order of
        the results, hence of every sum, does not depend on the threads' timing: the answer is reproducible.
        """
        threads = _compute_threads()
        free: list[np.ndarray] = []
        q = len(self.columns)

        def task(path: str, row: int, batch: Any) -> Any:
            buf = free.pop() if free else batch_buffer(q, self.batch_rows)
            try:
                if buf.shape[1] < batch.num_rows:
                    buf = batch_buffer(q, batch.num_rows)
                with np.errstate(over="ignore", invalid="ignore"):  # a worker thread has its own error state;
                    return work(path, row, self._fill(path, row, batch, buf, shift))  # work reports overflows
            finally:
                free.append(buf)

        with _one_blas_thread(), ThreadPoolExecutor(threads, thread_name_prefix="gdlab-stream") as pool:
            pending: deque[Any] = deque()
            try:
                for path, row, batch in batches:
                    pending.append(pool.submit(task, path, row, batch))
                    if len(pending) >= 2 * threads:
                        yield pending.popleft().result()
                while pending:
                    yield pending.popleft().result()
            finally:
                for f in pending:
                    f.cancel()

    # ---- the source protocol -----------------------------------------------------------------------------------
    def gram_stats(self) -> GramStats:
        """Statistics of all rows: one pass over the files (cached); each batch shifted by K (the first batch's
        mean) and reduced by :func:`batch_stats`, the batches merged pairwise by Chan's update."""
        if self._stats is None:
            with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported below, naming the file
                self._stats = self._gram_pass()
        return self._stats

    def _gram_pass(self) -> GramStats:
        d, k = self.n_features, self.n_outputs
        batches = self._pass_batches()
        first = next(batches, None)
        if first is None:
            raise StreamError(f"{self.path}: the files hold no rows of data.", self.path)
        path, row, batch = first
        Z0 = self._fill(path, row, batch)
        shift = Z0.mean(axis=1)  # K: so that every batch's shifted mean is a small number
        if not np.all(np.isfinite(shift)):
            raise self._nonfinite_error(path, row, Z0)

        q = d + k

        recode = self.loss.recodes_target

        def work(path: str, row: int, Zt: np.ndarray) -> GramStats:
            if recode:  # the statistics of the target as the loss reads it (0/1 labels as -1/+1)
                Zt[d:q] = self.loss.prepare_target(Zt[d:q] + shift[d:q, None]) - shift[d:q, None]
            stats = batch_stats(Zt, d, n_columns=q)
            if not (np.all(np.isfinite(stats.comoment)) and np.all(np.isfinite(stats.mean))):
                raise self._nonfinite_error(path, row, Zt[:q])
            return stats

        merge = _PairwiseMerge()
        for stats in self._map_pass(work, itertools.chain([first], batches), shift):
            merge.add(stats)
        return unshift(merge.result(d, k), shift)

    def value_and_grad(self, W: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Mean loss (summed over outputs) and its gradient; W is (d, k), b is (k,).

        Squared error: from the one-pass statistics, O(d^2). Other losses: a pass over the files.
        """
        if self.loss.quadratic:
            if self._gram is None:
                self._gram = GramSource(self.gram_stats(), self.fit_intercept)
            return self._gram.value_and_grad(W, b)
        d = self.n_features
        q = d + self.n_outputs
        loss = self.loss
        finite_params = bool(np.all(np.isfinite(W)) and np.all(np.isfinite(b)))

        def work(path: str, row: int, Zt: np.ndarray) -> tuple[float, np.ndarray, np.ndarray, int]:
            E = Zt[:d].T @ W
            E += b
            if finite_params and not np.all(np.isfinite(E)):
                raise self._nonfinite_error(path, row, Zt[:q])
            values, G = loss.value_and_derivative(E, loss.prepare_target(Zt[d:q].T))
            return float(values.sum()), Zt[:d] @ G, G.sum(axis=0), Zt.shape[1]

        total = 0.0
        gW = np.zeros((d, W.shape[1]))
        gb = np.zeros(W.shape[1])
        n = 0
        for t, w, c, rows in self._map_pass(work, self._pass_batches()):
            total += t
            gW += w
            gb += c
            n += rows
        if not self.fit_intercept:
            gb[:] = 0.0
        return total / n, gW / n, gb / n

    def map_batches(self, work: Callable[[np.ndarray, np.ndarray], Any]) -> list[Any]:
        """``work(X, Y)`` on every batch of one pass, X (rows, d) and Y (rows, k) as stored (labels not recoded),
        the results in the files' order: for what the fit itself does not compute (the classes, a quality score)."""
        d, q = self.n_features, self.n_features + self.n_outputs
        return list(self._map_pass(lambda path, row, Zt: work(Zt[:d].T.copy(), Zt[d:q].T.copy()),
                                   self._pass_batches()))

    def hessian(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The data term's Hessian in the packed parameters [b; W], as MemorySource.hessian: one pass over the files,
        each batch's Hessian (a MemorySource of its rows) weighted by its rows and summed. Used by the stop rule's
        Newton decrement, so that a streamed GLM fit claims convergence as one in memory does."""
        d = self.n_features
        q = d + self.n_outputs
        loss, fit_intercept = self.loss, self.fit_intercept

        def work(path: str, row: int, Zt: np.ndarray) -> tuple[np.ndarray, int]:
            chunk = MemorySource(np.ascontiguousarray(Zt[:d].T), loss.prepare_target(Zt[d:q].T), None, loss,
                                 fit_intercept)
            return chunk.hessian(W, b) * Zt.shape[1], Zt.shape[1]

        total: np.ndarray | None = None
        n = 0
        for H, rows in self._map_pass(work, self._pass_batches()):
            total = H if total is None else total + H
            n += rows
        assert total is not None
        return total / n

    def iter_batches(self, batch_size: int, rng: np.random.Generator, shuffle: bool = True
                     ) -> Iterator[MemorySource]:
        """One epoch of mini-batches of ``batch_size`` rows (the last may be smaller), each a MemorySource.

        With ``shuffle`` the row groups (Parquet) or files (CSV) are visited in a new random order each epoch and
        the rows of each batch read are shuffled before being cut into mini-batches (a local shuffle: at most
        batch_rows + batch_size rows are held).
        """
        d = self.n_features
        units = self._units()
        order = rng.permutation(len(units)) if shuffle else np.arange(len(units))
        pending: np.ndarray | None = None  # rows carried over, shape (d + k, r)
        for u in order:
            index, fragment, first_row = units[u]
            for row, Zt in self._read_file(index, fragment, first_row):
                with np.errstate(over="ignore", invalid="ignore"):
                    finite = bool(np.isfinite(Zt.sum()))
                if not finite:
                    raise self._nonfinite_error(self.files[index], row, Zt)
                if shuffle:
                    Zt = Zt[:, rng.permutation(Zt.shape[1])]
                if pending is not None and pending.shape[1]:
                    Zt = np.concatenate([pending, Zt], axis=1)
                stop = (Zt.shape[1] // batch_size) * batch_size
                for start in range(0, stop, batch_size):
                    yield self._mini_batch(Zt[:, start : start + batch_size], d)
                pending = Zt[:, stop:]
        if pending is not None and pending.shape[1]:
            yield self._mini_batch(pending, d)
        self.passes += 1

    def _mini_batch(self, Zt: np.ndarray, d: int) -> MemorySource:
        X = np.ascontiguousarray(Zt[:d].T)
        Y = self.loss.prepare_target(np.ascontiguousarray(Zt[d:].T))  # (0/1 labels read as -1/+1, as in a pass)
        return MemorySource(X, Y, None, self.loss, self.fit_intercept)

    def _units(self) -> list[tuple[int, Any, int]]:
        """Pieces that can be read on their own, with their first row in the file: Parquet row groups, CSV files."""
        if getattr(self, "_unit_list", None) is None:
            units: list[tuple[int, Any, int]] = []
            for index, frag in enumerate(self._fragments):
                if self.file_format == "parquet":
                    first = 0
                    for piece in frag.split_by_row_group():
                        units.append((index, piece, first))
                        first += sum(rg.num_rows for rg in piece.row_groups)
                else:
                    units.append((index, frag, 0))
            self._unit_list = units
        return self._unit_list

    def close(self) -> None:
        """Nothing to release (files are opened per pass); here so that every source can be closed alike."""

    def __enter__(self) -> "StreamSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        rows = "?" if self._n_rows is None else f"{self._n_rows}"
        return (f"StreamSource({self.path!r}, {len(self.files)} {self.file_format} file(s), {rows} rows, "
                f"features={self.feature_names}, target={self.target_names}, loss={self.loss.name!r})")

