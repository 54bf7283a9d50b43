"""The ``dask`` source: dask arrays and dataframes on any dask.distributed cluster (or dask's local schedulers).

The data are turned once into one float64 dask array Z = [X, Y] of shape (m, d + k), chunked by rows only, and
persisted on the workers. After that only small things travel:

* the statistics (squared error): each chunk returns its :class:`~gdlab.sources.gram.GramStats` ((d + k)^2
  numbers), merged by Chan's update in a tree of tasks; every later iteration is O(d^2) on the client, no traffic;
* any other loss: each iteration sends (W, b) (d x k + k numbers) to every chunk, and each chunk returns its partial
  sums (loss, X^T g, sum g), added in a tree of tasks: per iteration d-sized vectors and scalars, never rows.

Each chunk is shifted by one common K (the first chunk's mean) before it is centred on its own mean, so that the
merge keeps its digits when columns have large means (see :func:`gdlab.sources.stream.batch_stats`).

A worker that dies mid-fit costs nothing but time: the scheduler recomputes the lost chunks from their recipe and
retries the task; the fit goes on to the same answer. A NaN, an infinity or a missing value (NA) is reported with
its row and column.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gdlab.losses import Loss, get_loss
from gdlab.sources.gram import GramSource, GramStats
from gdlab.sources.stream import batch_buffer, batch_stats, unshift

__all__ = ["DaskSource", "is_dask_collection", "check_scheduler_address"]

_TREE_WIDTH = 8  # partial results merged 8 at a time
CONNECT_TIMEOUT = "10s"  # how long to try a scheduler address before giving up


def is_dask_collection(obj: Any) -> bool:
    """True for a dask array or dask dataframe/series (without importing dask when it is not loaded)."""
    mod = type(obj).__module__ or ""
    if not mod.startswith(("dask", "dask_expr")):
        return False
    try:
        import dask

        return bool(dask.is_dask_collection(obj))
    except ImportError:  # pragma: no cover
        return False


# ---- the tasks run on the workers (module level, so they pickle by reference) -----------------------------------
def _nonfinite_message(Zt: np.ndarray, offset: int, columns: Sequence[str]) -> str:
    for j in range(Zt.shape[0]):
        bad = np.flatnonzero(~np.isfinite(Zt[j]))
        if bad.size:
            v = Zt[j, bad[0]]
            kind = "NaN (or a missing value)" if np.isnan(v) else ("inf" if v > 0 else "-inf")
            return (f"column {columns[j]!r} holds {kind} at row {offset + int(bad[0])}; gradient descent needs "
                    "finite numbers. Remove or impute those rows first (e.g. dataframe.dropna()).")
    return f"the second moments of the chunk starting at row {offset} overflow float64; rescale the columns."


def _chunk_mean(chunk: np.ndarray) -> np.ndarray:
    mean = chunk.mean(axis=0)
    return mean if np.all(np.isfinite(mean)) else np.zeros(chunk.shape[1])


def _chunk_stats(chunk: np.ndarray, n_features: int, shift: np.ndarray, offset: int,
                 columns: Sequence[str], loss: Loss | None = None) -> GramStats:
    rows, q = chunk.shape
    if rows == 0:
        return GramStats.empty(n_features, q - n_features)
    Zt = batch_buffer(q, rows)
    np.subtract(chunk.T, shift[:, None], out=Zt[:q])
    if loss is not None and loss.recodes_target:  # the target as the loss reads it (0/1 labels as -1/+1)
        d = n_features
        Zt[d:q] = loss.prepare_target(Zt[d:q] + shift[d:q, None]) - shift[d:q, None]
    stats = batch_stats(Zt, n_features, n_columns=q)
    if not (np.all(np.isfinite(stats.comoment)) and np.all(np.isfinite(stats.mean))):
        raise ValueError(_nonfinite_message(np.asarray(chunk.T), offset, columns))
    return stats


def _read_piece(path: str, file_format: str, row_groups: list[int] | None, first_row: int,
                columns: Sequence[str]) -> np.ndarray:
    """Rows of one file (Parquet: some of its row groups) as a (rows, d + k) float64 array, read on a worker.

    Every fault names the file: a read error (corrupt page, truncated file), a null, a value that is not a number,
    a NaN or an infinity (with its row in the file). Runs once per piece: the result is persisted."""
    import pyarrow as pa

    try:
        if file_format == "parquet":
            import pyarrow.parquet as pq

            table = pq.ParquetFile(path, page_checksum_verification=True).read_row_groups(
                row_groups, columns=list(columns))
        else:
            import pyarrow.csv as pa_csv

            table = pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
                include_columns=list(columns), column_types={c: pa.float64() for c in columns}))
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{path}: reading failed ({exc}); the file is corrupt or truncated, or holds a value that "
                         "is not a number. Rewrite or remove it.") from exc
    out = np.empty((table.num_rows, len(columns)))
    for j, c in enumerate(columns):
        col = table.column(c)
        if col.null_count:
            i = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise ValueError(f"{path}: column {c!r} is missing a value (null) at row {first_row + i}; fill or drop "
                             "the missing values first.")
        out[:, j] = col.to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(~np.isfinite(out[:, j]))
        if bad.size:
            v = out[bad[0], j]
            kind = "NaN" if np.isnan(v) else ("inf" if v > 0 else "-inf")
            raise ValueError(f"{path}: column {c!r} holds {kind} at row {first_row + int(bad[0])}; gradient descent "
                             "needs finite numbers. Remove or impute those rows first.")
    return out


def _merge_stats(parts: list[GramStats]) -> GramStats:
    out = parts[0]
    for p in parts[1:]:
        out = out.merge(p)
    return out


def _chunk_loss_grad(chunk: np.ndarray, W: np.ndarray, b: np.ndarray, loss: Loss, n_features: int,
                     offset: int, columns: Sequence[str]) -> tuple[float, np.ndarray, np.ndarray]:
    d = n_features
    E = chunk[:, :d] @ W
    E += b
    if not np.all(np.isfinite(E)) and np.all(np.isfinite(W)) and np.all(np.isfinite(b)):
        raise ValueError(_nonfinite_message(np.asarray(chunk.T), offset, columns))
    values, G = loss.value_and_derivative(E, loss.prepare_target(chunk[:, d:]))
    return float(values.sum()), chunk[:, :d].T @ G, G.sum(axis=0)


def _chunk_hessian(chunk: np.ndarray, W: np.ndarray, b: np.ndarray, loss: Loss, n_features: int,
                   fit_intercept: bool) -> np.ndarray:
    """rows x the data term's Hessian on one chunk (MemorySource.hessian of its rows)."""
    from gdlab.sources.memory import MemorySource

    d = n_features
    chunk = np.asarray(chunk)
    part = MemorySource(np.ascontiguousarray(chunk[:, :d]), loss.prepare_target(chunk[:, d:]), None, loss,
                        fit_intercept)
    return part.hessian(W, b) * chunk.shape[0]


def _add(parts: list[np.ndarray]) -> np.ndarray:
    out = parts[0].copy()
    for h in parts[1:]:
        out += h
    return out


def _sum_parts(parts: list[tuple[float, np.ndarray, np.ndarray]]) -> tuple[float, np.ndarray, np.ndarray]:
    total, gW, gb = parts[0]
    gW, gb = gW.copy(), gb.copy()
    for t, w, c in parts[1:]:
        total += t
        gW += w
        gb += c
    return total, gW, gb


def _tree(parts: list[Any], combine: Any) -> Any:
    from dask import delayed

    while len(parts) > 1:
        parts = [delayed(combine, pure=True)(parts[i : i + _TREE_WIDTH]) for i in range(0, len(parts), _TREE_WIDTH)]
    return parts[0]


# ---- turning user data into one persisted float64 array ----------------------------------------------------------
def _numeric_columns(dtypes: Any, columns: Sequence[str]) -> None:
    import pandas as pd

    for c in columns:
        t = dtypes[c]
        if not (pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t)):
            raise ValueError(f"column {c!r} is not numeric (dtype {t}); encode it as numbers, or leave it out "
                             "with features=[...].")


def _as_row_array(a: Any, name: str) -> Any:
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(a, (dd.DataFrame, dd.Series)):
        if isinstance(a, dd.DataFrame):
            _numeric_columns(a.dtypes, list(a.columns))
        elif not np.issubdtype(np.dtype(a.dtype) if not hasattr(a.dtype, "numpy_dtype") else a.dtype.numpy_dtype,
                               np.number):
            raise ValueError(f"{name} is not numeric (dtype {a.dtype}); encode it as numbers.")
        a = a.astype("float64").to_dask_array()
    elif not isinstance(a, da.Array):
        arr = np.asarray(a)
        a = da.from_array(arr, chunks=(max(1, arr.shape[0]),) + arr.shape[1:] if arr.ndim else ())
    if not np.issubdtype(a.dtype, np.number) and a.dtype != bool:
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}; encode it as numbers.")
    return a.astype(np.float64)


class DaskSource:
    """Loss and gradient from data on a Dask cluster: per-chunk partial sums, reduced by Dask.

    Build it with :meth:`from_data` (or :func:`gdlab.scale.open_source`). ``client`` is a
    ``distributed.Client`` (None: dask's current default scheduler).

    Attributes
    ----------
    Z : the persisted (m, d + k) float64 dask array; feature_names, target_names, n_samples, n_features,
    n_outputs, fit_intercept, loss, single_output; passes (how many times the chunks were visited).
    """

    name = "dask"
    supports_batches = False

    def __init__(self, Z: Any, n_features: int, *, feature_names: Sequence[str], target_names: Sequence[str],
                 single_output: bool = True, fit_intercept: bool = True, loss: str | Loss = "squared_error",
                 epsilon: float = 0.1, client: Any = None, owns_client: bool = False):
        self.client = client
        self._owns_client = owns_client
        self.fit_intercept = bool(fit_intercept)
        self.loss = get_loss(loss, epsilon)
        self.feature_names = list(feature_names)
        self.target_names = list(target_names)
        self.single_output = single_output
        Z = self._persist(Z.rechunk({1: -1}))
        self._persisted = Z  # holds the futures: the chunks stay on the workers while the source lives
        if any(np.isnan(c) for c in Z.chunks[0]):
            # rows per chunk unknown (dataframes, CSV files): ask the persisted chunks, only their lengths travel
            import dask.array as da
            from dask import delayed

            blocks = list(Z.to_delayed().ravel())
            sizes = self._compute([delayed(len, pure=True)(blk) for blk in blocks])
            Z = da.concatenate([da.from_delayed(blk, shape=(int(n), Z.shape[1]), dtype=Z.dtype)
                                for blk, n in zip(blocks, sizes)], axis=0)
        self.Z = Z
        self.n_samples = int(Z.shape[0])
        self.n_features = int(n_features)
        self.n_outputs = int(Z.shape[1]) - self.n_features
        if self.n_samples == 0:
            raise ValueError("the dask collection holds no rows; gradient descent needs at least one row of data.")
        if self.n_outputs < 1:
            raise ValueError("no target column: name the target with target=...")
        self._blocks = list(Z.to_delayed().ravel())
        self._offsets = np.concatenate([[0], np.cumsum(Z.chunks[0])[:-1]]).astype(int).tolist()
        self._columns = self.feature_names + self.target_names
        self._stats: GramStats | None = None
        self._gram: GramSource | None = None
        self.passes = 0

    # ---- construction --------------------------------------------------------------------------------------------
    @classmethod
    def from_data(cls, data: Any, target: Any = None, features: Sequence[str] | None = None, *,
                  fit_intercept: bool = True, loss: str | Loss = "squared_error", epsilon: float = 0.1,
                  scheduler: Any = None) -> "DaskSource":
        """A source from a dask dataframe (``target``: column name or names) or a dask array X (``target``: the
        target as a dask/NumPy array aligned with X's rows, or an int column index of X).

        ``scheduler``: None (the current distributed client if there is one, else dask's default scheduler), a
        ``distributed.Client``, or a scheduler address such as "tcp://10.0.0.5:8786" (a client is opened and
        closed with :meth:`close`).
        """
        import dask.array as da
        import dask.dataframe as dd

        client, owns = _resolve_client(scheduler)
        try:
            if isinstance(data, dd.DataFrame):
                if target is None or not isinstance(target, (str, list, tuple)):
                    raise ValueError("target must name the target column(s) of the dataframe, e.g. target='y'.")
                targets = [target] if isinstance(target, str) else list(target)
                cols = list(data.columns)
                missing = [c for c in targets + list(features or []) if c not in cols]
                if missing:
                    raise ValueError(f"the dataframe has no column {missing[0]!r}; its columns are {cols}.")
                feats = list(features) if features is not None else [c for c in cols if c not in targets]
                _numeric_columns(data.dtypes, feats + targets)
                Z = data[feats + targets].astype("float64").to_dask_array()
                return cls(Z, len(feats), feature_names=[str(c) for c in feats], target_names=[str(t) for t in targets],
                           single_output=isinstance(target, str), fit_intercept=fit_intercept, loss=loss,
                           epsilon=epsilon, client=client, owns_client=owns)
            if isinstance(data, da.Array):
                X = _as_row_array(data, "X")
                if X.ndim != 2:
                    raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}.")
                if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
                    j = int(target) % X.shape[1]
                    keep = [i for i in range(X.shape[1]) if i != j]
                    Z = da.concatenate([X[:, keep], X[:, j : j + 1]], axis=1)
                    names = [str(i) for i in keep]
                    return cls(Z, len(keep), feature_names=names, target_names=[str(j)], single_output=True,
                               fit_intercept=fit_intercept, loss=loss, epsilon=epsilon, client=client,
                               owns_client=owns)
                if target is None:
                    raise ValueError("y is missing: pass the target as target=<dask or NumPy array>, or the index "
                                     "of the target column of X.")
                Y = _as_row_array(target, "y")
                single = Y.ndim == 1
                if Y.ndim == 1:
                    Y = Y[:, None]
                if Y.ndim != 2:
                    raise ValueError(f"y must be 1-D or 2-D, got shape {Y.shape}.")
                if any(np.isnan(c) for c in X.chunks[0]):
                    X = X.compute_chunk_sizes()
                if any(np.isnan(c) for c in Y.chunks[0]):
                    Y = Y.compute_chunk_sizes()
                if X.shape[0] != Y.shape[0]:
                    raise ValueError(f"X and y have different numbers of samples: X has {X.shape[0]} rows, y has "
                                     f"{Y.shape[0]}. Pass one target value per row of X.")
                X = X.rechunk({1: -1})
                Y = Y.rechunk({0: X.chunks[0], 1: -1})
                Z = da.concatenate([X, Y], axis=1)
                names = list(features) if features is not None else [f"x{i}" for i in range(X.shape[1])]
                tnames = ["y"] if single else [f"y{i}" for i in range(Y.shape[1])]
                return cls(Z, X.shape[1], feature_names=names, target_names=tnames, single_output=single,
                           fit_intercept=fit_intercept, loss=loss, epsilon=epsilon, client=client, owns_client=owns)
            raise ValueError(f"expected a dask array or dask dataframe, got {type(data).__name__}.")
        except BaseException:
            if owns:
                client.close()
            raise

    @classmethod
    def from_files(cls, checked: Any, *, scheduler: Any = None, piece_rows: int = 1_000_000) -> "DaskSource":
        """Files read by the workers of a cluster, as checked by a :class:`~gdlab.sources.stream.StreamSource`
        (whose opening read every footer/header here, so that a faulty file is named before work is sent out).

        One task reads a piece: consecutive Parquet row groups of about ``piece_rows`` rows, or a CSV file. The
        workers must see the files at the same paths.
        """
        import dask.array as da
        from dask import delayed

        columns = checked.feature_names + checked.target_names
        q = len(columns)
        pieces = []  # (path, row groups, first row, rows or nan)
        for index, path in enumerate(checked.files):
            if checked.file_format == "parquet":
                meta = checked._fragments[index].metadata
                groups: list[int] = []
                first = rows = 0
                for g in range(meta.num_row_groups):
                    groups.append(g)
                    rows += meta.row_group(g).num_rows
                    if rows >= piece_rows or g == meta.num_row_groups - 1:
                        pieces.append((path, groups, first, rows))
                        first += rows
                        groups, rows = [], 0
            else:
                pieces.append((path, None, 0, np.nan))
        client, owns = _resolve_client(scheduler)
        try:
            blocks = [da.from_delayed(delayed(_read_piece, pure=True)(path, checked.file_format, groups, first,
                                                                        columns),
                                      shape=(rows, q), dtype=np.float64)
                      for path, groups, first, rows in pieces if not rows == 0]
            Z = da.concatenate(blocks, axis=0) if len(blocks) > 1 else blocks[0]
            return cls(Z, checked.n_features, feature_names=checked.feature_names,
                       target_names=checked.target_names, single_output=checked.single_output,
                       fit_intercept=checked.fit_intercept, loss=checked.loss, client=client, owns_client=owns)
        except BaseException:
            if owns:
                client.close()
            raise

    # ---- running things ------------------------------------------------------------------------------------------
    def _persist(self, Z: Any) -> Any:
        if self.client is not None:
            return self.client.persist(Z)
        import dask

        (Z,) = dask.persist(Z)
        return Z

    def _compute(self, obj: Any) -> Any:
        if self.client is not None:
            return self.client.gather(self.client.compute(obj))
        import dask

        (out,) = dask.compute(obj)
        return out

    def close(self) -> None:
        """Release the persisted data, and close the client when this source opened it."""
        self.Z = self._persisted = None
        self._blocks = []
        if self._owns_client and self.client is not None:
            self.client.close()
            self.client = None

    def __enter__(self) -> "DaskSource":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- the source protocol -------------------------------------------------------------------------------------
    def gram_stats(self) -> GramStats:
        """Statistics of all rows: one task per chunk, merged by Chan's update in a tree of tasks (cached)."""
        if self._stats is None:
            from dask import delayed

            d = self.n_features
            shift = self._compute(delayed(_chunk_mean, pure=True)(self._blocks[0]))
            parts = [delayed(_chunk_stats, pure=True)(blk, d, shift, off, self._columns, self.loss)
                     for blk, off in zip(self._blocks, self._offsets)]
            self._stats = unshift(self._compute(_tree(parts, _merge_stats)), shift)
            self.passes += 1
        return self._stats

    def value_and_grad(self, W: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Mean loss (summed over outputs) and its gradient; W is (d, k), b is (k,).

        Squared error: from the statistics, O(d^2) on the client. Other losses: one task per chunk, partial sums
        added in a tree; only (W, b) and the sums travel.
        """
        if self.loss.quadratic:
            if self._gram is None:
                self._gram = GramSource(self.gram_stats(), self.fit_intercept)
            return self._gram.value_and_grad(W, b)
        from dask import delayed

        W = np.ascontiguousarray(W, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        parts = [delayed(_chunk_loss_grad, pure=True)(blk, W, b, self.loss, self.n_features, off, self._columns)
                 for blk, off in zip(self._blocks, self._offsets)]
        total, gW, gb = self._compute(_tree(parts, _sum_parts))
        self.passes += 1
        n = float(self.n_samples)
        if not self.fit_intercept:
            gb = np.zeros_like(gb)
        return total / n, gW / n, gb / n

    def hessian(self, W: np.ndarray, b: np.ndarray) -> np.ndarray:
        """The data term's Hessian in the packed parameters [b; W], as MemorySource.hessian: one task per chunk,
        the (p, p) parts added in a tree; used by the stop rule's Newton decrement."""
        from dask import delayed

        W = np.ascontiguousarray(W, dtype=np.float64)
        b = np.asarray(b, dtype=np.float64)
        parts = [delayed(_chunk_hessian, pure=True)(blk, W, b, self.loss, self.n_features, self.fit_intercept)
                 for blk in self._blocks]
        H = self._compute(_tree(parts, _add))
        self.passes += 1
        return H / float(self.n_samples)

    def __repr__(self) -> str:
        where = ("local scheduler" if self.client is None
                 else f"scheduler {getattr(self.client.scheduler, 'address', '?')}")
        return (f"DaskSource({self.n_samples} rows in {len(self._offsets)} chunks, features={self.feature_names}, "
                f"target={self.target_names}, loss={self.loss.name!r}, {where})")


PROBE_TIMEOUT = 3.0  # seconds to wait for a TCP connection to a scheduler address before calling it unreachable
_SCHEMES = ("tcp", "tls", "ws", "wss", "inproc", "ucx")
_EXAMPLE = "give one such as tcp://127.0.0.1:8786 (host:port; `dask scheduler` prints it)"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def check_scheduler_address(address: str) -> str:
    """The address, checked before any client is made: its form (scheme://host:port), then, for TCP-based
    schemes, that something accepts a connection there within :data:`PROBE_TIMEOUT` seconds. A malformed or dead
    address is one ValueError at once, not a client that waits for its timeouts (and leaves threads behind)."""
    import socket

    text = address.strip()
    if not text or any(c.isspace() for c in text):
        raise ValueError(f"{address!r} is not a Dask scheduler address; {_EXAMPLE}.")
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "tcp", text
    if scheme not in _SCHEMES:
        raise ValueError(f"{address!r} is not a Dask scheduler address (unknown protocol {scheme!r}; Dask speaks "
                         f"{', '.join(_SCHEMES)}); {_EXAMPLE}.")
    if scheme in ("inproc", "ucx"):
        return text
    host, colon, port_text = rest.rpartition(":")
    host = host.strip("[]")
    if not colon or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536 or "/" in host:
        raise ValueError(f"{address!r} is not a Dask scheduler address (it needs a host and a port from 1 to "
                         f"65535); {_EXAMPLE}.")
    try:
        with socket.create_connection((host, int(port_text)), timeout=PROBE_TIMEOUT):
            pass
    except socket.gaierror:
        raise ValueError(f"cannot reach the Dask scheduler at {address!r}: the host {host!r} is not known; check "
                         "the address.") from None
    except OSError as exc:
        why = "nothing answers there" if isinstance(exc, ConnectionRefusedError) else \
            f"no answer within {PROBE_TIMEOUT:g} s" if isinstance(exc, TimeoutError) else _first_line(exc)
        raise ValueError(f"cannot reach the Dask scheduler at {address!r} ({why}); start one with `dask scheduler` "
                         "(and workers with `dask worker ADDRESS`), or check the address.") from None
    return text


_OWNED_CLIENT: Any = None


def _owned_client_class() -> Any:
    """``distributed.Client``, except that one whose connection failed is stopped at once: the plain class's
    ``__del__`` would wait twice the connect timeout for a close that cannot happen (and print a traceback)."""
    global _OWNED_CLIENT
    if _OWNED_CLIENT is None:
        from distributed import Client

        class OwnedClient(Client):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                try:
                    super().__init__(*args, **kwargs)
                except BaseException:
                    self._gdlab_failed = True
                    try:
                        self._loop_runner.stop()
                    except Exception:  # noqa: BLE001 - best effort: the error that matters is re-raised
                        pass
                    raise

            def __del__(self) -> None:
                if not getattr(self, "_gdlab_failed", False):
                    super().__del__()

        _OWNED_CLIENT = OwnedClient
    return _OWNED_CLIENT


def _resolve_client(scheduler: Any) -> tuple[Any, bool]:
    """(client, owned): the client to run on, and whether this source opened it (and must close it)."""
    if scheduler is None:
        try:
            from distributed import default_client

            return default_client(), False
        except (ImportError, ValueError):
            return None, False
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover
        raise ImportError("running on a Dask cluster needs distributed: pip install 'gdlab[dask]'.") from exc
    if isinstance(scheduler, Client):
        return scheduler, False
    if isinstance(scheduler, str):
        address = check_scheduler_address(scheduler)
        try:
            return _owned_client_class()(address, set_as_default=False, timeout=CONNECT_TIMEOUT), True
        except OSError as exc:  # TimeoutError is an OSError
            raise ValueError(f"cannot reach the Dask scheduler at {scheduler!r} ({_first_line(exc)}); start one "
                             "with `dask scheduler` (and workers with `dask worker ADDRESS`), or check the address."
                             ) from None
        except Exception as exc:  # noqa: BLE001 - the handshake failed: whatever answers is not a scheduler
            raise ValueError(f"something answers at {scheduler!r} but it is not a Dask scheduler (the handshake "
                             f"failed: {type(exc).__name__}); check the address and port.") from None
    raise ValueError(f"scheduler must be None, a distributed.Client or an address like 'tcp://host:8786', "
                     f"got {type(scheduler).__name__}.")
