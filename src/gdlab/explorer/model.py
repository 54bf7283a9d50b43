"""What the explorer computes: its data sets (statistics cached), the runs, the loss surface and the theory.

Every descent goes through :func:`gdlab.descend` (the ``gram`` source for full batches, so that an update costs
O(d^2) per iteration whatever the number of rows; the rows only for mini-batches); the curvature, the step bounds
and the optimum come from the one-pass :class:`~gdlab.sources.gram.GramStats` of each data set, formed once and
cached. The browser only draws what this module returns.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gdlab import datasets
from gdlab.closed_form import closed_form_from_stats
from gdlab.curvature import Curvature, curvature_from_stats
from gdlab.descent import descend
from gdlab.exceptions import RankDeficiencyWarning
from gdlab.objectives import get_loss
from gdlab.result import Result
from gdlab.sources.gram import GramSource, GramStats
from gdlab.sources.memory import MemorySource

__all__ = [
    "ExplorerDataset", "RunSpec", "Limits", "builtin_datasets", "dataset_from_frame", "load_table", "read_csv_bytes",
    "read_parquet_bytes", "parquet_shape",
    "loss_on_grid", "step_bound", "predicted_rate", "verdict", "run_descent", "surface", "default_view",
    "OPTIMIZER_PARAMS",
]

#: The hyperparameters each optimizer takes besides its learning rate, with (default, lower, upper) bounds.
OPTIMIZER_PARAMS: dict[str, dict[str, tuple[float, float, float]]] = {
    "gd": {},
    "momentum": {"beta": (0.9, 0.0, 0.999)},
    "nesterov": {"beta": (0.9, 0.0, 0.999)},
    "adagrad": {"eps": (1e-10, 1e-12, 1.0)},
    "rmsprop": {"decay": (0.9, 0.0, 0.9999), "eps": (1e-8, 1e-12, 1.0)},
    "adam": {"beta1": (0.9, 0.0, 0.9999), "beta2": (0.999, 0.0, 0.99999), "eps": (1e-8, 1e-12, 1.0)},
}


@dataclass(frozen=True)
class Limits:
    """Bounds on what one request may ask of the server (each checked with a clear 4xx error)."""

    max_iterations: int = 5000
    max_grid: int = 150
    min_grid: int = 10
    max_upload_bytes: int = 50 * 1024 * 1024
    max_features: int = 50
    max_uploads: int = 8
    #: mini-batch descent reads the rows: iterations x rows is bounded so that one request stays interactive
    max_batch_row_visits: int = 20_000_000
    #: ... and each mini-batch is one update (tens of microseconds of Python each, whatever its size): iterations x
    #: batches per iteration, summed over the runs of a request, is bounded too (about 1.5 s of work)
    max_batch_updates: int = 50_000
    #: an upload's columns (counted on its header line before anything parses it) and rows x columns
    max_columns: int = 200
    max_cells: int = 10_000_000
    #: the longest pause while a request body arrives, and the longest a whole body may take (seconds)
    body_read_timeout: float = 10.0
    body_total_timeout: float = 120.0


@dataclass
class ExplorerDataset:
    """A data set the explorer can descend on: rows, names, and its cached one-pass statistics.

    X : (m, d) features (d = 0 for the workshop's 1-D mean, an intercept-only model); y : (m,) target.
    default_start : (1 + d,) the starting parameters [intercept, coef...] (the workshop's w).
    """

    id: str
    title: str
    kind: str  # "line" (one feature), "mean" (intercept only), "table" (any number of features)
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str
    default_start: np.ndarray
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stats = GramStats.from_arrays(self.X, self.y.reshape(-1, 1))
        self.gram_source = GramSource(self.stats, fit_intercept=True)
        self.curvature: Curvature = curvature_from_stats(self.stats, True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RankDeficiencyWarning)
            self.optimum: Result = closed_form_from_stats(self.stats, fit_intercept=True)
        self._memory: MemorySource | None = None
        m = self.X.shape[0]
        k = min(m, 1500)
        self.display_rows = np.arange(m) if k == m else np.sort(np.random.default_rng(0).choice(m, k, replace=False))

    @property
    def n_rows(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_params(self) -> int:
        return self.n_features + 1

    @property
    def param_names(self) -> list[str]:
        if self.kind == "mean":
            return ["c (candidate mean)"]
        if self.kind == "line":
            return ["intercept w0", f"slope w1 (of {self.feature_names[0]})"]
        # the workshop's w = [w0, w1, ...]: w0 the intercept, wj the weight of feature j (as Trajectory.to_frame())
        return ["intercept w0"] + [f"w{j + 1} ({name})" for j, name in enumerate(self.feature_names)]

    @property
    def memory_source(self) -> MemorySource:
        """The rows as a source (only mini-batches need it); made on first use."""
        if self._memory is None:
            self._memory = MemorySource(self.X, self.y.reshape(-1, 1), None, get_loss("squared_error"), True)
        return self._memory

    def info(self) -> dict[str, Any]:
        curv = self.curvature
        return {
            "id": self.id, "title": self.title, "kind": self.kind, "description": self.description,
            "n_rows": self.n_rows, "n_features": self.n_features, "feature_names": list(self.feature_names),
            "target_name": self.target_name, "param_names": self.param_names,
            "default_start": _floats(self.default_start), "defaults": dict(self.defaults),
            "curvature": curv.to_dict(),
            "optimum": {"params": _floats(self.optimum.params), "loss": float(self.optimum.loss)},
            "lr_range": lr_range(curv), **({"note": self.extra["note"]} if "note" in self.extra else {}),
        }

    def display_data(self) -> dict[str, Any]:
        """A bounded sample of the rows for the data view (all rows when there are at most 1500)."""
        rows = self.display_rows
        out: dict[str, Any] = {"id": self.id, "kind": self.kind, "n_rows": self.n_rows, "n_shown": int(rows.size),
                               "feature_names": list(self.feature_names), "target_name": self.target_name,
                               "X": self.X[rows].tolist(), "y": self.y[rows].tolist()}
        if "jitter" in self.extra:
            out["jitter"] = np.asarray(self.extra["jitter"])[rows].tolist()
        elif self.kind == "mean":  # one column: spread the points vertically, as the workshop's first figure does
            out["jitter"] = np.random.default_rng(0).random(rows.size).tolist()
        for key in ("lines", "best", "candidates", "axis"):
            if key in self.extra:
                out[key] = self.extra[key]
        return out


def _floats(a: Any) -> list[float | None]:
    a = np.asarray(a, dtype=float).ravel()
    if np.isfinite(a).all():
        return a.tolist()
    return [float(v) if math.isfinite(v) else None for v in a]


def _rows(a: Any) -> list[list[float | None]]:
    """A 2-D array as lists of rows, non-finite values as None (JSON null)."""
    a = np.asarray(a, dtype=float)
    if np.isfinite(a).all():
        return a.tolist()
    return [_floats(row) for row in a]


def lr_range(curv: Curvature) -> dict[str, Any]:
    """The learning-rate slider's range: four decades below 2/L up to 3 x 2/L, widened up to 3 (where adam & co.
    take their steps) when that is within three decades of 2/L; any value can still be typed in."""
    stable = curv.stable_step if math.isfinite(curv.stable_step) else 1.0
    return {"min": stable * 1e-4, "max": max(3.0 * stable, min(3.0, 1e3 * stable)), "stable_step": stable,
            "best_step": curv.best_step if math.isfinite(curv.best_step) else stable}


# ---- data sets --------------------------------------------------------------------------------------------------

def builtin_datasets() -> list[ExplorerDataset]:
    """The workshop's two data sets, exactly as its code makes them, and a two-feature valley for momentum."""
    line = datasets.workshop_line()
    mean = datasets.workshop_mean()
    valley = datasets.make_regression(200, 2, noise=0.5, condition_number=25.0, intercept=1.0, random_state=3)
    return [
        ExplorerDataset(
            "line", "Workshop: a line through 50 points", "line", line.X, line.y, ["x"], "y",
            np.concatenate([[line.intercept_init], line.coef_init]),
            "The workshop's data: X = 2 rand(50, 1), y = 8 + 6 X + noise (np.random.seed(42)), starting from its "
            "random w. It used learning rate 0.1 and 10 iterations.",
            defaults={"lr": line.eta, "iterations": line.n_iterations},
            extra={"axis": list(line.axis)}),
        ExplorerDataset(
            "mean", "Workshop: the 1-D mean (error curve)", "mean", mean.features, mean.y, [], "x",
            np.array([1.0]),
            "The workshop's first figure: 1000 points ~ N(2, 0.3^2). The model is one number c; its error "
            "MSE(c) = mean((c - x)^2) is the curve that gradient descent rolls down.",
            defaults={"lr": 0.1, "iterations": 30},
            extra={"jitter": mean.jitter, "lines": list(mean.lines), "best": mean.best,
                   "candidates": mean.candidates.tolist()}),
        ExplorerDataset(
            "valley", "Two features, a long narrow valley", "table", valley.X, valley.y, ["x1", "x2"], "y",
            np.array([1.0, -3.0, 3.0]),
            "200 points with two correlated features (condition number 25 for their covariance): plain gradient "
            "descent zig-zags across the valley; try momentum.",
            defaults={"lr": 0.5, "iterations": 60, "axes": [1, 2]}),
    ]


def dataset_from_frame(frame: Any, target: str | None = None, features: list[str] | None = None, *,
                       dataset_id: str = "data", title: str = "your data", max_features: int = 50) -> ExplorerDataset:
    """An explorer data set from a pandas DataFrame: the target column and the numeric feature columns.

    target defaults to the last column; features default to every other numeric column (non-numeric ones are
    left out and named in the data set's note).
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame or a file path, got {type(frame).__name__}.")
    if frame.shape[0] < 2:
        raise ValueError(f"the table has {frame.shape[0]} row(s); gradient descent needs at least 2 rows of data.")
    if frame.shape[1] < 1:
        raise ValueError("the table has no columns.")
    columns = [str(c) for c in frame.columns]
    frame = frame.set_axis(columns, axis=1)
    notes = []
    if target is None:
        target = columns[-1]
        notes.append(f"target: the last column {target!r} (choose another with target=...)")
    elif target not in columns:
        raise ValueError(f"target column {target!r} is not in the table; its columns are {', '.join(columns)}.")
    if features is None:
        features = [c for c in columns if c != target and pd.api.types.is_numeric_dtype(frame[c])]
        dropped = [c for c in columns if c != target and c not in features]
        if dropped:
            notes.append(f"left out non-numeric columns: {', '.join(dropped)}")
    else:
        features = [str(f) for f in features]
        missing = [f for f in features if f not in columns]
        if missing:
            raise ValueError(f"feature column(s) {', '.join(map(repr, missing))} not in the table; its columns are "
                             f"{', '.join(columns)}.")
        if target in features:
            raise ValueError(f"the target column {target!r} is also listed as a feature; drop it from the features.")
    for c in [target, *features]:
        if not pd.api.types.is_numeric_dtype(frame[c]):
            raise ValueError(f"column {c!r} is not numeric (dtype {frame[c].dtype}); encode it as numbers or "
                             "leave it out.")
    if len(features) > max_features:
        raise ValueError(f"the table has {len(features)} feature columns; the explorer shows at most {max_features}. "
                         "Keep the columns you want to explore (or name them on the command line: gdlab explore "
                         "FILE --target COL --features a,b,c).")
    X = frame[features].to_numpy(dtype=np.float64) if features else np.empty((frame.shape[0], 0))
    y = frame[target].to_numpy(dtype=np.float64)
    for name, col in [(target, y), *[(f, X[:, j]) for j, f in enumerate(features)]]:
        bad = ~np.isfinite(col)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"column {name!r} has {int(bad.sum())} missing or non-finite value(s) (first at data row "
                             f"{row + 1}); remove or fill them before exploring.")
    kind = "line" if len(features) == 1 else ("mean" if not features else "table")
    ds = ExplorerDataset(dataset_id, title, kind, X, y, features, target, np.zeros(len(features) + 1),
                         f"{frame.shape[0]} rows; target {target!r}; features: {', '.join(features) or 'none'}.",
                         defaults={"iterations": 50}, extra={"note": "; ".join(notes)} if notes else {})
    ds.defaults.setdefault("lr", float(f"{0.9 * ds.curvature.best_step:.2g}") if math.isfinite(
        ds.curvature.best_step) else 0.01)
    return ds


def read_csv_bytes(data: bytes, name: str = "upload.csv"):
    """Parse uploaded bytes as a CSV table, with one clear ValueError for a file that is not one."""
    import pandas as pd

    if not data.strip():
        raise ValueError(f"{name} is empty; upload a CSV file with a header row and numeric columns.")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name} is not UTF-8 text (byte {exc.start}); upload a CSV file.") from None
    try:
        # sniff the separator on the first lines only, then let pandas' C parser read the whole file (fast)
        sep = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sep)
    except Exception as exc:  # pandas raises several kinds (ParserError, EmptyDataError, csv.Error)
        raise ValueError(f"{name} could not be read as CSV: {str(exc).strip().splitlines()[0]}") from None
    return frame


PARQUET_MAGIC = b"PAR1"


def parquet_shape(data: bytes, name: str = "upload.parquet") -> tuple[int, int]:
    """(rows, columns) of Parquet bytes, read from the file's footer alone (nothing is decoded yet)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if len(data) < 12 or data[:4] != PARQUET_MAGIC or data[-4:] != PARQUET_MAGIC:
        raise ValueError(f"{name} is not a Parquet file (it does not begin and end with PAR1); upload a .parquet "
                         "file, or a CSV file.")
    try:
        meta = pq.read_metadata(pa.BufferReader(data))
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError...
        raise ValueError(f"{name} could not be read as Parquet: {str(exc).strip().splitlines()[0]}") from None
    return int(meta.num_rows), int(meta.num_columns)


def read_parquet_bytes(data: bytes, name: str = "upload.parquet"):
    """Parse uploaded bytes as a Parquet table, verifying page checksums where the file has them (a page whose
    bytes changed is refused, as ``gdlab fit`` refuses it), with one clear ValueError for a file that is not one."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet_shape(data, name)
    try:
        table = pq.ParquetFile(pa.BufferReader(data), page_checksum_verification=True).read()
    except Exception as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "checksum" in text.lower() or "crc" in text.lower():
            raise ValueError(f"{name}: a page of the file fails its checksum ({text}): its bytes changed after it "
                             "was written; upload an intact copy.") from None
        raise ValueError(f"{name} could not be read as Parquet: {text}") from None
    return table.to_pandas()


def load_table(path: Any, target: str | None = None, features: list[str] | None = None, *,
               max_features: int = 50) -> ExplorerDataset:
    """Read the one file the user named (CSV/TSV/TXT, or Parquet) into an explorer data set."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"data file {str(p)!r} does not exist (or is not a file).")
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        frame = pd.read_parquet(p)
    elif suffix in (".csv", ".tsv", ".txt", ".gz"):
        frame = read_csv_bytes(p.read_bytes(), p.name) if suffix != ".gz" else pd.read_csv(p)
    else:
        raise ValueError(f"cannot read {p.name!r}: the explorer reads .csv, .tsv, .txt and .parquet files.")
    return dataset_from_frame(frame, target, features, dataset_id="data", title=p.name, max_features=max_features)


def upload_id(data: bytes, target: str | None) -> str:
    """A stable id for an upload: the same file and target give the same id (so shared links keep working)."""
    h = hashlib.sha256(data)
    h.update(b"\0" + (target or "").encode())
    return "upload-" + h.hexdigest()[:12]


# ---- theory: step bounds and predicted rates --------------------------------------------------------------------

def step_bound(curv: Curvature, optimizer: str, beta: float | None = None) -> tuple[float, str] | None:
    """The largest stable constant learning rate on this quadratic, and its formula in words.

    gd: 2/L. Heavy-ball momentum (v = g + beta v, theta -= eta v): 2(1+beta)/L. Nesterov (theta -= eta (g + beta v)):
    2(1+beta)/((1+2 beta) L). Both from the Jury conditions on the 2x2 iteration of each eigen-direction; the
    adaptive methods (adagrad, rmsprop, adam) rescale their steps and have no such bound.
    """
    L = curv.L
    if not L > 0:
        return None
    if optimizer == "gd":
        return 2.0 / L, "2/L"
    if optimizer == "momentum":
        return 2.0 * (1 + beta) / L, f"2(1+β)/L (β = {beta:g})"
    if optimizer == "nesterov":
        return 2.0 * (1 + beta) / ((1 + 2 * beta) * L), f"2(1+β)/((1+2β)L) (β = {beta:g})"
    return None


def _iteration_matrix(optimizer: str, eta: float, lam: float, beta: float) -> np.ndarray:
    if optimizer == "momentum":  # state (e_t, v_{t-1})
        return np.array([[1 - eta * lam, -eta * beta], [lam, beta]])
    # nesterov
    return np.array([[1 - eta * lam * (1 + beta), -eta * beta * beta], [lam, beta]])


def predicted_rate(curv: Curvature, optimizer: str, eta: float, beta: float | None = None) -> float | None:
    """Worst-case contraction of the error per iteration at this constant step (the loss gap shrinks by its square).

    gd: max_i |1 - eta lambda_i| (``Curvature.rate``); momentum and nesterov: the largest spectral radius of the
    2x2 iteration matrix over the Hessian's eigenvalues; None for the adaptive methods (no fixed linear rate).
    """
    if optimizer == "gd":
        return curv.rate(eta)
    if optimizer in ("momentum", "nesterov"):
        return float(max(np.max(np.abs(np.linalg.eigvals(_iteration_matrix(optimizer, eta, lam, beta))))
                         for lam in np.maximum(curv.eigenvalues, 0.0)))
    return None


def _pair(eta: float, bound: float) -> tuple[str, str]:
    """The learning rate as given, and the bound with the fewest digits that keep the comparison true (so that
    'learning rate 0.5116 is above 2/L = 0.5115' never rounds into '0.512 is above 0.512')."""
    se = f"{eta:.6g}"
    for digits in range(2, 10):
        sb = f"{bound:.{digits}g}"
        if (float(sb) < float(se)) == (bound < eta) and float(sb) != float(se):
            return se, sb
    return se, f"{bound:.10g}"


def _factor(rate: float) -> str:
    return f"{rate:.3g}" if abs(rate - 1.0) > 0.01 else f"{rate:.6g}"


def verdict(curv: Curvature, optimizer: str, eta: float, beta: float | None, result: Result) -> dict[str, Any]:
    """What happens at this learning rate, in words, naming the bound: e.g. 'diverges: learning rate 0.6 is above
    2/L = 0.51'."""
    bound = step_bound(curv, optimizer, beta)
    rate = predicted_rate(curv, optimizer, eta, beta)
    out: dict[str, Any] = {"bound": None if bound is None else {"value": bound[0], "label": bound[1]},
                           "rate": rate, "diverges": False}
    if bound is not None and eta >= bound[0]:
        se, sb = _pair(eta, bound[0])
        out["diverges"] = True
        out["text"] = f"diverges: learning rate {se} is above {bound[1]} = {sb}"
        if not result.diverged and rate is not None and rate > 1:
            out["text"] += (f" (the error grows by {_factor(rate)}x per iteration; run more iterations to see it "
                            "blow up)")
        return out
    if result.diverged:
        out["diverges"] = True
        out["text"] = "diverges: " + result.message
        return out
    if bound is not None:
        se, sb = _pair(eta, bound[0])
        text = f"converges: learning rate {se} is below {bound[1]} = {sb}"
        if rate is not None and rate < 1e-12:
            text += "; it lands on the optimum in one step"
        elif rate is not None and 1 - rate < 1e-4:
            text += (f"; but the error shrinks by only 1 − {1 - rate:.2g} per iteration: the condition number "
                     f"κ = L/μ = {curv.condition_number:.3g} makes the valley extremely long (features on very "
                     "different scales, or nearly collinear: standardise them or drop one)")
        elif rate is not None and rate < 1:
            text += f"; the error shrinks by {_factor(rate)}x per iteration"
            best = curv.best_step
            if optimizer == "gd" and math.isfinite(best):
                text += (f" (fastest at 2/(L+μ) = {best:.3g}: {curv.best_rate:.3g}x)" if curv.best_rate > 1e-12
                         else f" (2/(L+μ) = {best:.3g} jumps straight to the bottom in one step)")
        out["text"] = text
        return out
    where = (f"loss {result.loss:.4g} after {result.n_iter} iterations"
             + (f" (optimum {result.optimum_loss:.4g})" if result.optimum_loss is not None else ""))
    out["text"] = f"no 2/L bound applies ({optimizer} rescales each step by its gradient statistics); {where}"
    return out


# ---- runs ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RunSpec:
    """One descent to run: optimizer, constant learning rate, its hyperparameters."""

    optimizer: str
    learning_rate: float
    params: dict[str, float]


def run_descent(ds: ExplorerDataset, spec: RunSpec, *, iterations: int, start: np.ndarray,
                batch_size: int | None, seed: int) -> Result:
    """Run :func:`gdlab.descend` on the data set: all ``iterations`` (no early stop), recording every iterate."""
    full = batch_size is None or batch_size >= ds.n_rows
    source = ds.gram_source if full else ds.memory_source
    return descend(source, None, optimizer=spec.optimizer, learning_rate=spec.learning_rate, max_iter=iterations,
                   tol=None, gtol=None, batch_size=None if full else batch_size, random_state=seed,
                   coef_init=start[1:], intercept_init=start[0], record_every=1, max_records=None, warn=False,
                   **spec.params)


def run_payload(ds: ExplorerDataset, spec: RunSpec, result: Result, label: str) -> dict[str, Any]:
    traj = result.trajectory
    beta = spec.params.get("beta")
    out = {
        "label": label, "optimizer": spec.optimizer, "learning_rate": spec.learning_rate,
        "hyperparameters": dict(spec.params),
        "iteration": traj.iteration.tolist(),
        "params": _rows(traj.params),
        "loss": _floats(traj.loss),
        "gap": _floats(traj.gap) if traj.gap is not None else None,
        "grad_norm": _floats(traj.grad_norm),
        "n_iter": result.n_iter, "diverged": result.diverged, "status": result.status, "message": result.message,
        "source": result.source, "seconds": result.extra.get("seconds"),
        "verdict": verdict(ds.curvature, spec.optimizer, spec.learning_rate, beta, result),
    }
    batch = result.extra.get("batch_size")
    if batch is not None and batch < ds.n_rows and not out["verdict"]["diverges"]:
        out["verdict"]["text"] += (f"; with mini-batches of {batch} rows each step is noisy, so the loss settles "
                                   "into a noise floor above the optimum")
    return out


# ---- the loss surface -----------------------------------------------------------------------------------------------

def loss_on_grid(stats: GramStats, theta: np.ndarray) -> np.ndarray:
    """The workshop's MSE at each row of theta (N, 1 + d) = [intercept, coef...], from the statistics alone.

    With c = b + mean_x . w - mean_y: MSE = (w^T Cxx w - 2 w^T Cxy + Cyy) / n + c^2 (the centred form of
    ``gdlab.sources.gram``), O(N d^2) and no pass over the rows.
    """
    n = stats.n
    b = theta[:, 0]
    W = theta[:, 1:]
    cxx, cxy, cyy = stats.cxx, stats.cxy[:, 0], float(stats.cyy[0, 0])
    quad = np.einsum("ij,ij->i", W @ cxx, W) - 2.0 * (W @ cxy) + cyy
    c = b + W @ stats.mean_x - stats.mean_y[0]
    return np.maximum(quad / n + c * c, 0.0)


def reference_box(ds: ExplorerDataset) -> np.ndarray:
    """(2, p) low/high corners holding the optimum, the default start and the gd path from it at the best step
    2/(L+mu) (a typical path, overshoot included); computed once per data set by gdlab.descend."""
    if "reference_box" not in ds.extra:
        pts = [np.asarray(ds.optimum.params, dtype=float), ds.default_start]
        step = ds.curvature.best_step
        if math.isfinite(step):
            with np.errstate(all="ignore"):
                res = descend(ds.gram_source, None, learning_rate=step, max_iter=200, tol=1e-12, gtol=1e-10,
                              coef_init=ds.default_start[1:], intercept_init=ds.default_start[0], warn=False)
            path = res.trajectory.params
            pts.append(path[np.all(np.isfinite(path), axis=1)])
        allp = np.vstack([np.atleast_2d(p) for p in pts])
        ds.extra["reference_box"] = np.array([allp.min(axis=0), allp.max(axis=0)])
    return ds.extra["reference_box"]


def default_view(ds: ExplorerDataset, axes: tuple[int, ...], start: np.ndarray) -> list[float]:
    """Plot bounds [x0, x1(, y0, y1)]: centred on the optimum and holding the reference box (default start, a
    typical path), grown only when the start lies outside it, so that a click inside the view never moves the axes."""
    box = reference_box(ds)
    opt = ds.optimum.params
    out: list[float] = []
    for a in axes:
        # centred on the optimum, so that the whole bowl shows around it
        c = float(opt[a])
        half = 1.1 * max(c - float(box[0, a]), float(box[1, a]) - c, 0.1 * abs(c), 1e-3)
        if ds.kind == "mean":  # the workshop's candidates run from 1 to 3
            half = max(half, 1.0)
        lo, hi = c - half, c + half
        if not lo <= start[a] <= hi:
            lo, hi = min(lo, start[a] - 0.1 * half), max(hi, start[a] + 0.1 * half)
        out += [float(lo), float(hi)]
    return out


def surface(ds: ExplorerDataset, axes: tuple[int, ...], start: np.ndarray, grid: int, *,
            values: bool = True) -> dict[str, Any]:
    """The loss over the chosen parameters (the others held at their optimal values).

    Two axes: a grid x grid contour of log10(loss - loss*); one axis (the 1-D mean): the error curve.
    ``values=False`` gives the description only (kind, axes, labels, view, ...) without the grid: the page asks for
    it on a slider move, and fetches the grid again only when the view has changed.
    """
    opt = np.asarray(ds.optimum.params, dtype=float)
    view = default_view(ds, axes, start)
    loss_star = float(ds.optimum.loss)
    names = ds.param_names
    if not values:
        held = [names[k] for k in range(ds.n_params) if k not in axes] if len(axes) == 2 else None
        out = {"kind": "curve" if len(axes) == 1 else "contour", "axes": list(axes),
               "labels": [names[a] for a in axes], "view": view, "loss_star": loss_star, "grid": grid}
        if held is not None:
            out["held"] = held
        return out
    if len(axes) == 1:
        xs = np.linspace(view[0], view[1], max(grid, 2) * 4)
        theta = np.tile(opt, (xs.size, 1))
        theta[:, axes[0]] = xs
        return {"kind": "curve", "axes": list(axes), "labels": [names[axes[0]]], "view": view, "grid": grid,
                "x": xs.tolist(), "loss": _floats(loss_on_grid(ds.stats, theta)), "loss_star": loss_star}
    i, j = axes
    xs = np.linspace(view[0], view[1], grid)
    ys = np.linspace(view[2], view[3], grid)
    gx, gy = np.meshgrid(xs, ys)  # rows follow y, as plotly's contour expects z[y][x]
    theta = np.tile(opt, (gx.size, 1))
    theta[:, i] = gx.ravel()
    theta[:, j] = gy.ravel()
    gap = loss_on_grid(ds.stats, theta) - loss_star
    floor = max(abs(loss_star), 1.0) * 1e-12
    z = np.log10(np.maximum(gap, floor)).reshape(grid, grid)
    held = [names[k] for k in range(ds.n_params) if k not in axes]
    return {"kind": "contour", "axes": [i, j], "labels": [names[i], names[j]], "view": view, "grid": grid,
            "x": xs.tolist(), "y": ys.tolist(), "z": np.round(z, 5).tolist(), "loss_star": loss_star,
            "held": held}
