"""What the explorer computes: its data sets (statistics cached), the runs, the loss surface and the theory.

Every descent goes through :func:`gdlab.descend` (the ``gram`` source for full batches, so that an update costs
O(d^2) per iteration whatever the number of rows; the rows only for mini-batches); the curvature, the step bounds
and the optimum come from the one-pass :class:`~gdlab.sources.gram.GramStats` of each data set, formed once and
cached. The browser only draws what this module returns.
"""

from __future__ import annotations

import csv
import dataclasses
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
from gdlab.losses import get_loss as get_glm_loss
from gdlab.result import Result
from gdlab.scaling import Scaling
from gdlab.solvers import newton
from gdlab.sources.gram import GramSource, GramStats
from gdlab.sources.memory import MemorySource

__all__ = [
    "ExplorerDataset", "RunSpec", "Limits", "builtin_datasets", "dataset_from_frame", "load_table", "read_csv_bytes",
    "read_parquet_bytes", "parquet_shape",
    "loss_on_grid", "log_loss_on_grid", "step_bound", "predicted_rate", "verdict", "run_descent", "surface",
    "default_view", "decision_boundary", "boundary_segment", "data_plane", "OPTIMIZER_PARAMS", "TASKS",
    "hessian", "contour_directions", "momentum_radius", "direction_factors", "predicted_components",
    "stability_region", "eigen_view",
]

#: what an uploaded table's target may be fitted as: "auto" takes a target of exactly two values as classes
TASKS = ("auto", "regression", "classification")

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
    #: the log-loss has no statistics shortcut: its surface is evaluated on the rows, grid^2 x rows at most this
    #: many (the grid is made coarser on a big table, down to min_grid), and an uploaded classification table has
    #: at most this many rows (every iteration reads them all)
    max_surface_evaluations: int = 40_000_000
    max_classification_rows: int = 100_000


@dataclass
class ExplorerDataset:
    """A data set the explorer can descend on: rows, names, and its cached one-pass statistics.

    X : (m, d) features (d = 0 for the workshop's 1-D mean, an intercept-only model); y : (m,) target (0/1 for a
    classification data set: class_labels[1] is class 1).
    default_start : (1 + d,) the starting parameters [intercept, coef...] (the workshop's w).
    task : "regression" (the workshop's MSE, through the gram statistics) or "classification" (logistic regression,
    the log-loss, on the rows).
    """

    id: str
    title: str
    kind: str  # "line" (one feature), "mean" (intercept only), "table" (any number of features), "classes"
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str
    default_start: np.ndarray
    description: str = ""
    defaults: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    task: str = "regression"
    class_labels: list[str] | None = None
    #: set on the standardised twin (:meth:`standardized`): the map from the original data set's parameters
    scaling: Scaling | None = None

    def __post_init__(self) -> None:
        self.stats = GramStats.from_arrays(self.X, self.y.reshape(-1, 1))
        self.gram_source = GramSource(self.stats, fit_intercept=True)
        self._memory: MemorySource | None = None
        self._twin: ExplorerDataset | None = None
        if self.classification:
            # the log-loss's Hessian is at most (1/(4m)) X_b^T X_b: L and the stable step 2/L come from X alone
            self.curvature: Curvature = curvature_from_stats(self.stats, True, get_glm_loss("log_loss").curvature)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = newton(self.X, self.y, loss="log_loss", tol=1e-13, max_iter=200, warn=False)
            # separable classes: the log-loss has no minimum (its infimum 0 is approached as |w| grows)
            self.optimum: Result | None = None if fit.status == 6 else fit
        else:
            self.curvature = curvature_from_stats(self.stats, True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RankDeficiencyWarning)
                self.optimum = closed_form_from_stats(self.stats, fit_intercept=True)
        m = self.X.shape[0]
        k = min(m, 1500)
        self.display_rows = np.arange(m) if k == m else np.sort(np.random.default_rng(0).choice(m, k, replace=False))

    @property
    def classification(self) -> bool:
        return self.task == "classification"

    @property
    def loss_name(self) -> str:
        return "log_loss" if self.classification else "squared_error"

    @property
    def separable(self) -> bool:
        """Classes that a line separates: the log-loss has no minimum."""
        return self.classification and self.optimum is None

    @property
    def optimum_params(self) -> np.ndarray | None:
        return None if self.optimum is None else np.asarray(self.optimum.params, dtype=float)

    @property
    def loss_star(self) -> float:
        """The smallest loss: the optimum's, or 0, the infimum of the log-loss on separable classes."""
        return 0.0 if self.optimum is None else float(self.optimum.loss)

    @property
    def key(self) -> str:
        """The id, and whether the features are standardised: what the page's drawings are kept by."""
        return self.id + ("|standardized" if self.scaling is not None else "")

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
        std = ", standardised" if self.scaling is not None else ""
        if self.kind == "mean":
            return ["c (candidate mean)"]
        if self.kind == "line":
            return ["intercept w0", f"slope w1 (of {self.feature_names[0]}{std})"]
        # the workshop's w = [w0, w1, ...]: w0 the intercept, wj the weight of feature j (as Trajectory.to_frame())
        return ["intercept w0"] + [f"w{j + 1} ({name}{std})" for j, name in enumerate(self.feature_names)]

    @property
    def memory_source(self) -> MemorySource:
        """The rows as a source (only mini-batches need it); made on first use."""
        if self._memory is None:
            self._memory = MemorySource(self.X, self.y.reshape(-1, 1), None, get_loss("squared_error"), True)
        return self._memory

    def standardized(self) -> ExplorerDataset:
        """The same data with each feature centred on its mean and divided by its (population) standard deviation,
        z = (x - mean) / std, as ``gdlab.descend(..., standardize=True)`` fits (:class:`gdlab.scaling.Scaling`).

        Its parameters are theta' = [b + mean . w, std * w] (the same models, other coordinates); its default start
        is the original one mapped so; its learning rate keeps the original's ratio to the best constant step
        2/(L+mu) of each (at 2/(L+mu) raw, it is at 2/(L+mu) standardised), so that "the same descent" runs in
        both, as in the workshop report's section on scaling. Made once and kept.
        """
        if self.scaling is not None:
            return self
        if self.n_features == 0:
            raise ValueError(f"the data set {self.title!r} has no features to standardise.")
        if self._twin is None:
            sc = Scaling.from_stats(self.stats, True)
            Z = (self.X - sc.center) / sc.scale
            start = sc.to_descent(self.default_start.reshape(-1, 1))[:, 0]
            defaults = dict(self.defaults)
            extra = {k: v for k, v in self.extra.items() if k in ("note", "jitter")}
            twin = ExplorerDataset(
                self.id, self.title, self.kind, Z, self.y, list(self.feature_names), self.target_name, start,
                self.description + " Standardised: each feature centred on its mean and divided by its standard "
                "deviation.", defaults=defaults, extra=extra, task=self.task, class_labels=self.class_labels,
                scaling=sc)
            twin.display_rows = self.display_rows
            if "lr" in self.defaults and math.isfinite(self.curvature.best_step) and math.isfinite(
                    twin.curvature.best_step):
                ratio = twin.curvature.best_step / self.curvature.best_step
                defaults["lr"] = float(f"{self.defaults['lr'] * ratio:.3g}")
            twin._twin = self
            self._twin = twin
        return self._twin

    def info(self) -> dict[str, Any]:
        curv = self.curvature
        opt = self.optimum
        out = {
            "id": self.id, "key": self.key, "title": self.title, "kind": self.kind, "task": self.task,
            "description": self.description,
            "n_rows": self.n_rows, "n_features": self.n_features, "feature_names": list(self.feature_names),
            "target_name": self.target_name, "param_names": self.param_names,
            "default_start": _floats(self.default_start), "defaults": dict(self.defaults),
            "curvature": curv.to_dict(),
            "optimum": None if opt is None else {"params": _floats(opt.params), "loss": float(opt.loss)},
            "loss_star": self.loss_star, "separable": self.separable, "loss_name": self.loss_name,
            "standardized": self.scaling is not None,
            "lr_range": lr_range(curv), **({"note": self.extra["note"]} if "note" in self.extra else {}),
        }
        if self.class_labels is not None:
            out["classes"] = list(self.class_labels)
        if self.n_features:
            # the condition number both ways, so that the page can say what the toggle changes
            raw = self._twin if self.scaling is not None else self
            std = self if self.scaling is not None else self._twin
            out["condition_numbers"] = {"raw": raw.curvature.to_dict()["condition_number"],
                                        "standardized": None if std is None else
                                        std.curvature.to_dict()["condition_number"]}
        if self.scaling is not None:
            out["scaling"] = {"center": self.scaling.center.tolist(), "scale": self.scaling.scale.tolist()}
        return out

    def display_data(self) -> dict[str, Any]:
        """A bounded sample of the rows for the data view (all rows when there are at most 1500)."""
        rows = self.display_rows
        out: dict[str, Any] = {"id": self.id, "key": self.key, "kind": self.kind, "n_rows": self.n_rows,
                               "n_shown": int(rows.size),
                               "feature_names": list(self.feature_names), "target_name": self.target_name,
                               "X": self.X[rows].tolist(), "y": self.y[rows].tolist()}
        if self.classification:
            out["classes"] = list(self.class_labels or ["0", "1"])
            out["box"] = _rows(data_box(self))
            if self.n_features == 1:  # one feature: the classes at 0 and 1, spread a little to show the crowd
                out["jitter"] = (0.06 * (np.random.default_rng(0).random(rows.size) - 0.5)).tolist()
        elif "jitter" in self.extra:
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

#: hours studied and exam passed (0/1) of 20 students: the worked example of Wikipedia's "Logistic regression"
#: article, whose fit is w0 = -4.0777, w1 = 1.5046
EXAM_HOURS = np.array([0.50, 0.75, 1.00, 1.25, 1.50, 1.75, 1.75, 2.00, 2.25, 2.50, 2.75, 3.00, 3.25, 3.50, 4.00,
                       4.25, 4.50, 4.75, 5.00, 5.50])
EXAM_PASSED = np.array([0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1])


def builtin_datasets() -> list[ExplorerDataset]:
    """The workshop's two data sets, exactly as its code makes them, a two-feature valley for momentum, two features
    in very different units (for the standardise toggle), and three classification data sets for logistic
    regression: hours studied against exam passed (one feature), two overlapping classes, two separable ones."""
    line = datasets.workshop_line()
    mean = datasets.workshop_mean()
    valley = datasets.make_regression(200, 2, noise=0.5, condition_number=25.0, intercept=1.0, random_state=3)
    rng = np.random.default_rng(7)
    size = rng.uniform(40.0, 200.0, 120)           # m^2
    distance = rng.uniform(0.5, 15.0, 120)         # km to the centre
    price = 40.0 + 2.2 * size - 6.0 * distance + rng.normal(0.0, 25.0, 120)   # thousands
    rng = np.random.default_rng(5)
    overlap = np.vstack([rng.normal([-1.0, -0.5], 1.0, (100, 2)), rng.normal([1.0, 0.8], 1.0, (100, 2))])
    rng = np.random.default_rng(2)
    apart = np.vstack([rng.normal([-1.5, -1.0], 0.55, (40, 2)), rng.normal([1.5, 1.2], 0.55, (40, 2))])
    two = np.r_[np.zeros(100), np.ones(100)]
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
        ExplorerDataset(
            "houses", "Two features in different units (try Standardise)", "table",
            np.column_stack([size, distance]), price, ["size (m²)", "distance (km)"], "price (k€)",
            np.zeros(3),
            "120 made-up houses: price = 40 + 2.2 size − 6 distance + noise. Size runs to 200 m², distance to "
            "15 km, "
            "and neither is centred, so the valley of the raw loss is extremely long: gradient descent at 0.83 of its "
            "best constant step crawls. Tick 'Standardise the features' to run the same descent on "
            "z = (x − mean)/std.",
            defaults={"lr": 5e-5, "iterations": 100, "axes": [0, 1]}),
        ExplorerDataset(
            "exam", "Classification: hours studied and exam passed", "classes", EXAM_HOURS.reshape(-1, 1),
            EXAM_PASSED.astype(float), ["hours studied"], "passed", np.array([0.0, 0.0]),
            "20 students (the example of Wikipedia's 'Logistic regression' article): P(pass) = σ(w0 + w1 hours). "
            "No closed form: gradient descent on the log-loss; its minimum (Newton's method) is w0 ≈ −4.08, "
            "w1 ≈ 1.50, the boundary P = 0.5 at 2.7 hours.",
            defaults={"lr": 0.5, "iterations": 300}, task="classification", class_labels=["failed", "passed"]),
        ExplorerDataset(
            "classes", "Classification: two overlapping classes", "classes", overlap, two, ["x1", "x2"], "class",
            np.array([0.5, -1.5, 1.0]),
            "200 points, two classes drawn around different centres that overlap: logistic regression's decision "
            "boundary w0 + w1 x1 + w2 x2 = 0 turns into place as gradient descent lowers the log-loss.",
            defaults={"lr": 2.0, "iterations": 100, "axes": [1, 2]}, task="classification",
            class_labels=["0", "1"]),
        ExplorerDataset(
            "separable", "Classification: two separable classes", "classes", apart, np.r_[np.zeros(40), np.ones(40)],
            ["x1", "x2"], "class", np.array([0.5, -1.5, 1.0]),
            "80 points that a line separates: the log-loss then has no minimum (it falls towards 0 as the weights "
            "grow without bound), and gradient descent says so once every point is on its side of the boundary.",
            defaults={"lr": 2.0, "iterations": 100, "axes": [1, 2]}, task="classification",
            class_labels=["0", "1"]),
    ]


def _two_classes(column: Any) -> list[Any] | None:
    """The two values of a column that holds exactly two (sorted: the second is class 1), or None."""
    values = column.dropna().unique()
    if len(values) != 2:
        return None
    try:
        return sorted(values.tolist())
    except TypeError:  # mixed types: keep their order of appearance
        return list(values)


def dataset_from_frame(frame: Any, target: str | None = None, features: list[str] | None = None, *,
                       dataset_id: str = "data", title: str = "your data", max_features: int = 50,
                       task: str = "auto", max_classification_rows: int | None = None) -> ExplorerDataset:
    """An explorer data set from a pandas DataFrame: the target column and the numeric feature columns.

    target defaults to the last column; features default to every other numeric column (non-numeric ones are
    left out and named in the data set's note). task: "auto" (a target of 0/1 or -1/+1, or of exactly two text
    labels, is a classification target: logistic regression on the log-loss; any other numeric target is
    regression), "regression" or "classification" (any two-valued target).
    """
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"data must be a pandas DataFrame or a file path, got {type(frame).__name__}.")
    if task not in TASKS:
        raise ValueError(f"the task must be one of {', '.join(TASKS)}, got {task!r}.")
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
    classes = _two_classes(frame[target]) if task != "regression" else None
    if task == "auto" and classes is not None and pd.api.types.is_numeric_dtype(frame[target]) and not (
            set(classes) <= {0, 1} or set(classes) <= {-1, 1}):
        classes = None  # two numbers other than 0/1 or -1/+1 (say 3 and 5): a measurement, unless chosen
    if task == "classification" and classes is None:
        n = frame[target].dropna().nunique()
        raise ValueError(f"classification needs a target with two classes; column {target!r} has {n} distinct "
                         "value(s). Choose a two-valued target column, or fit it as regression.")
    if classes is None and not pd.api.types.is_numeric_dtype(frame[target]):
        n = frame[target].dropna().nunique()
        raise ValueError(f"column {target!r} is not numeric (dtype {frame[target].dtype}) and has {n} distinct "
                         "values, not the two of a classification target; encode it as numbers or choose another "
                         "target column.")
    for c in features:
        if not pd.api.types.is_numeric_dtype(frame[c]):
            raise ValueError(f"column {c!r} is not numeric (dtype {frame[c].dtype}); encode it as numbers or "
                             "leave it out.")
    if len(features) > max_features:
        raise ValueError(f"the table has {len(features)} feature columns; the explorer shows at most {max_features}. "
                         "Keep the columns you want to explore (or name them on the command line: gdlab explore "
                         "FILE --target COL --features a,b,c).")
    if classes is not None:
        if not features:
            raise ValueError(f"the table has no numeric feature besides the target {target!r}; logistic regression "
                             "needs at least one feature.")
        if max_classification_rows is not None and frame.shape[0] > max_classification_rows:
            raise ValueError(f"the table has {frame.shape[0]} rows; a classification upload may have at most "
                             f"{max_classification_rows} (the log-loss has no statistics shortcut: every iteration "
                             "reads every row). Upload a sample.")
        labels = frame[target]
        if labels.isna().any():
            row = int(np.argmax(labels.isna().to_numpy()))
            raise ValueError(f"column {target!r} has {int(labels.isna().sum())} missing value(s) (first at data row "
                             f"{row + 1}); remove or fill them before exploring.")
        y = (labels == classes[1]).to_numpy(dtype=np.float64)
        class_labels = [_label_text(v) for v in classes]
        notes.append(f"classification: {target} = {class_labels[1]} is class 1, {class_labels[0]} class 0")
    else:
        y = frame[target].to_numpy(dtype=np.float64)
        class_labels = None
    X = frame[features].to_numpy(dtype=np.float64) if features else np.empty((frame.shape[0], 0))
    for name, col in [(target, y), *[(f, X[:, j]) for j, f in enumerate(features)]]:
        bad = ~np.isfinite(col)
        if bad.any():
            row = int(np.argmax(bad))
            raise ValueError(f"column {name!r} has {int(bad.sum())} missing or non-finite value(s) (first at data row "
                             f"{row + 1}); remove or fill them before exploring.")
    if class_labels is not None:
        kind, start = "classes", np.zeros(len(features) + 1)
        defaults: dict[str, Any] = {"iterations": 100}
        if len(features) >= 2:
            defaults["axes"] = [1, 2]
    else:
        kind = "line" if len(features) == 1 else ("mean" if not features else "table")
        start, defaults = np.zeros(len(features) + 1), {"iterations": 50}
    ds = ExplorerDataset(dataset_id, title, kind, X, y, features, target, start,
                         f"{frame.shape[0]} rows; target {target!r}"
                         f"{' (two classes: logistic regression)' if class_labels else ''}; features: "
                         f"{', '.join(features) or 'none'}.",
                         defaults=defaults, extra={"note": "; ".join(notes)} if notes else {},
                         task="classification" if class_labels else "regression", class_labels=class_labels)
    step = ds.curvature.stable_step if ds.classification else ds.curvature.best_step
    ds.defaults.setdefault("lr", float(f"{0.9 * step:.2g}") if math.isfinite(step) else 0.01)
    return ds


def _label_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


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
               max_features: int = 50, task: str = "auto") -> ExplorerDataset:
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
    return dataset_from_frame(frame, target, features, dataset_id="data", title=p.name, max_features=max_features,
                              task=task)


def upload_id(data: bytes, target: str | None, task: str = "auto") -> str:
    """A stable id for an upload: the same file, target and task give the same id (so shared links keep working)."""
    h = hashlib.sha256(data)
    h.update(b"\0" + (target or "").encode())
    if task != "auto":
        h.update(b"\0" + task.encode())
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
    if ds_task(result) == "classification":
        return _verdict_log_loss(curv, optimizer, eta, result)
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
        crawls = rate is not None and 1 - rate < 1e-4
        text = f"{'crawls' if crawls else 'converges'}: learning rate {se} is below {bound[1]} = {sb}"
        if rate is not None and rate < 1e-12:
            text += "; it lands on the optimum in one step"
        elif crawls:
            text += (f", so it converges in theory, but the error shrinks by only 1 − {1 - rate:.2g} per iteration: "
                     "the condition number "
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


def ds_task(result: Result) -> str:
    loss = result.extra.get("loss")
    return "classification" if str(getattr(loss, "name", loss)) == "log_loss" else "regression"


#: how close to the minimum (relative to the minimum log-loss) the page calls "at the minimum"
LOG_LOSS_AT_MINIMUM = 1e-6


def _verdict_log_loss(curv: Curvature, optimizer: str, eta: float, result: Result) -> dict[str, Any]:
    """The verdict for logistic regression. 2/L (L = lambda_max(X_b^T X_b)/(4m), the log-loss's curvature bound) is
    a guarantee, not an edge: below it every gd step lowers the log-loss; above it a step may still, where the model
    is confident and the loss flatter. So the verdict names the bound and then says what the run did."""
    bound = step_bound(curv, "gd", None) if optimizer == "gd" else None
    out: dict[str, Any] = {"bound": None if bound is None else {"value": bound[0], "label": bound[1]},
                           "rate": None, "diverges": False, "guarantee": True}
    se = f"{eta:.6g}"
    if result.diverged:
        out["diverges"] = True
        out["text"] = "diverges: " + result.message
        return out
    if result.status == 6:
        out["separable"] = True
        out["text"] = ("no minimum: the classes are separable — after iteration "
                       f"{result.n_iter} every point is on its side of the decision boundary, so the log-loss falls "
                       "towards 0 only as the weights grow without bound; gradient descent stops here (a penalty "
                       "would give a finite minimum)")
        return out
    optimum = result.optimum_loss
    where = f"log-loss {result.loss:.5g} after {result.n_iter} iterations"
    if optimum is not None and math.isfinite(optimum):
        gap = result.loss - optimum
        at_min = gap <= LOG_LOSS_AT_MINIMUM * max(abs(optimum), 1e-12)
        where += (f", at its minimum {optimum:.5g} (Newton's method)" if at_min else
                  f", {gap:.3g} above its minimum {optimum:.5g} (Newton's method)")
    else:
        at_min = False
    if bound is not None:
        _, sb = _pair(eta, bound[0])
        if eta < bound[0]:
            head = f"learning rate {se} is below 2/L = {sb}, so every step lowers the log-loss"
        else:
            head = (f"learning rate {se} is above 2/L = {sb}: the log-loss's curvature bound no longer promises "
                    "that each step lowers it (it may still, where the loss is flatter)")
    else:
        head = f"{optimizer} with learning rate {se}"
    out["text"] = ("converges: " if at_min else "descends: " if result.loss < result.trajectory.loss[0]
                   else "does not descend: ") + head + "; " + where
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
    """Run :func:`gdlab.descend` on the data set: all ``iterations`` (no early stop, except the core's diagnosis of
    separable classes), recording every iterate. Logistic regression reads the rows (the log-loss has no statistics
    shortcut); its features are used as given (the page's Standardise toggle makes a standardised data set)."""
    if ds.classification:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = descend(ds.X, ds.y, loss="log_loss", source="memory", standardize=False,
                          optimizer=spec.optimizer, learning_rate=spec.learning_rate, max_iter=iterations, tol=None,
                          gtol=None, batch_size=batch_size if batch_size and batch_size < ds.n_rows else None,
                          random_state=seed, coef_init=start[1:], intercept_init=start[0], record_every=1,
                          max_records=None, warn=False, **spec.params)
        if ds.optimum is not None:
            res = dataclasses.replace(res, optimum_loss=float(ds.optimum.loss))
        return res
    full = batch_size is None or batch_size >= ds.n_rows
    source = ds.gram_source if full else ds.memory_source
    return descend(source, None, optimizer=spec.optimizer, learning_rate=spec.learning_rate, max_iter=iterations,
                   tol=None, gtol=None, batch_size=None if full else batch_size, random_state=seed,
                   coef_init=start[1:], intercept_init=start[0], record_every=1, max_records=None, warn=False,
                   **spec.params)


def run_payload(ds: ExplorerDataset, spec: RunSpec, result: Result, label: str,
                axes: tuple[int, ...] | None = None) -> dict[str, Any]:
    traj = result.trajectory
    beta = spec.params.get("beta")
    if ds.classification:  # the gap to the minimum (or to 0, the infimum on separable classes) and the accuracy
        gap = _floats(traj.loss - ds.loss_star)
    else:
        gap = _floats(traj.gap) if traj.gap is not None else None
    out = {
        "label": label, "optimizer": spec.optimizer, "learning_rate": spec.learning_rate,
        "hyperparameters": dict(spec.params),
        "iteration": traj.iteration.tolist(),
        "params": _rows(traj.params),
        "loss": _floats(traj.loss),
        "gap": gap,
        "grad_norm": _floats(traj.grad_norm),
        "n_iter": result.n_iter, "diverged": result.diverged, "status": result.status, "message": result.message,
        "source": result.source, "seconds": result.extra.get("seconds"),
        "verdict": verdict(ds.curvature, spec.optimizer, spec.learning_rate, beta, result),
    }
    if ds.classification:
        out["accuracy"] = _floats(accuracy(ds, traj.params))
        plane = data_plane(ds, axes or default_axes(ds))
        out["boundary"] = {"features": list(plane),
                           "segments": [None if s is None else _floats(s)
                                        for s in decision_boundary(ds, traj.params, plane)]}
    if result.status == 6:  # the core's words name Python arguments; the page has no penalty control
        out["message"] = (f"stopped at iteration {result.n_iter}: the classes are separable (every training point is "
                          "on its side of the decision boundary), so the log-loss has no minimum")
    batch = result.extra.get("batch_size")
    if batch is not None and batch < ds.n_rows and not out["verdict"]["diverges"]:
        out["verdict"]["text"] += (f"; with mini-batches of {batch} rows each step is noisy, so the loss settles "
                                   "into a noise floor above the optimum")
    return out


# ---- classification: accuracy and the decision boundary ----------------------------------------------------------

def default_axes(ds: ExplorerDataset) -> tuple[int, ...]:
    return tuple(ds.defaults.get("axes", [0] if ds.n_params == 1 else [0, 1]))


def accuracy(ds: ExplorerDataset, params: np.ndarray) -> np.ndarray:
    """The fraction of rows on their class's side of the boundary (P(class 1) = sigmoid(eta) > 1/2 iff eta > 0),
    for each row of params (T, 1 + d); rows of params that are not finite give NaN."""
    P = np.asarray(params, dtype=float)
    out = np.full(P.shape[0], np.nan)
    ok = np.all(np.isfinite(P), axis=1)
    positive = ds.y > 0.5
    idx = np.flatnonzero(ok)
    chunk = max(1, 2_000_000 // max(ds.n_rows, 1))
    for k in range(0, idx.size, chunk):
        sel = idx[k:k + chunk]
        eta = ds.X @ P[sel, 1:].T + P[sel, 0]
        out[sel] = np.mean((eta > 0) == positive[:, None], axis=0)
    return out


def data_box(ds: ExplorerDataset) -> np.ndarray:
    """(d, 2) the data view's range of each feature: all rows, 5% of the spread added on each side."""
    lo, hi = ds.X.min(axis=0), ds.X.max(axis=0)
    pad = 0.05 * np.where(hi > lo, hi - lo, 1.0)
    return np.column_stack([lo - pad, hi + pad])


def data_plane(ds: ExplorerDataset, axes: tuple[int, ...]) -> tuple[int, ...]:
    """The features the data view draws: the one feature; or the two whose weights the surface shows, else the
    first two (any others are held at their means in the boundary)."""
    if ds.n_features == 1:
        return (0,)
    if len(axes) == 2 and min(axes) >= 1:
        return (axes[0] - 1, axes[1] - 1)
    return (0, 1)


def boundary_segment(a: float, b: float, c: float, box: np.ndarray) -> np.ndarray | None:
    """The part of the line a x + b y + c = 0 inside box [[x0, x1], [y0, y1]] as [xa, ya, xb, yb], or None when
    the line misses the box (or a = b = 0: every point is on one side)."""
    (x0, x1), (y0, y1) = box
    pts = []
    if b != 0:
        for x in (x0, x1):
            y = -(a * x + c) / b
            if y0 <= y <= y1:
                pts.append((x, y))
    if a != 0:
        for y in (y0, y1):
            x = -(b * y + c) / a
            if x0 <= x <= x1:
                pts.append((x, y))
    pts = [p for p in pts if all(math.isfinite(v) for v in p)]
    if len(pts) < 2:
        return None
    # the two points farthest apart (a corner may be found twice)
    best = max(((p, q) for i, p in enumerate(pts) for q in pts[i + 1:]),
               key=lambda pq: (pq[0][0] - pq[1][0]) ** 2 + (pq[0][1] - pq[1][1]) ** 2)
    if best[0] == best[1]:
        return None
    return np.array([*best[0], *best[1]])


def decision_boundary(ds: ExplorerDataset, params: np.ndarray, plane: tuple[int, ...]) -> list[np.ndarray | None]:
    """Where P(class 1) = 1/2, i.e. w0 + w . x = 0, at each row of params (T, 1 + d), in the data view.

    One feature: [x*, 0, x*, 1] with x* = -w0 / w1 (a vertical line on the view of P against x), None if x* is off
    the view. Two shown features (i, j), the others at their means: the segment of
    (w0 + sum_k w_k mean_k) + w_i x_i + w_j x_j = 0 inside the view (:func:`boundary_segment`).
    """
    box = data_box(ds)
    P = np.asarray(params, dtype=float)
    out: list[np.ndarray | None] = []
    if len(plane) == 1:
        j = plane[0]
        for p in P:
            x = -p[0] / p[1 + j] if np.all(np.isfinite(p)) and p[1 + j] != 0 else math.nan
            out.append(np.array([x, 0.0, x, 1.0]) if box[j, 0] <= x <= box[j, 1] else None)
        return out
    i, j = plane
    others = [k for k in range(ds.n_features) if k not in plane]
    means = ds.X.mean(axis=0)
    for p in P:
        if not np.all(np.isfinite(p)):
            out.append(None)
            continue
        c = p[0] + float(sum(p[1 + k] * means[k] for k in others))
        out.append(boundary_segment(p[1 + i], p[1 + j], c, box[[i, j]]))
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


def log_loss_on_grid(X: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """The mean log-loss (1/m) sum_i log(1 + exp(-s_i eta_i)), s_i = 2 y_i - 1, eta = b + x . w, at each row of theta
    (N, 1 + d), from the rows (chunks of theta, so that no more than about 4 million values are held at once)."""
    loss = get_glm_loss("log_loss")
    s = 2.0 * np.asarray(y, dtype=float) - 1.0
    theta = np.asarray(theta, dtype=float)
    out = np.empty(theta.shape[0])
    chunk = max(1, 4_000_000 // max(X.shape[0], 1))
    for k in range(0, theta.shape[0], chunk):
        t = theta[k:k + chunk]
        eta = X @ t[:, 1:].T + t[:, 0]
        value, _ = loss.value_and_derivative(eta, np.broadcast_to(s[:, None], eta.shape))  # one exp, one log1p
        out[k:k + chunk] = value.mean(axis=0)
    return out


def surface_loss(ds: ExplorerDataset, theta: np.ndarray) -> np.ndarray:
    """The data set's loss (MSE, or the mean log-loss) at each row of theta (N, 1 + d)."""
    if ds.classification:
        return log_loss_on_grid(ds.X, ds.y, theta)
    return loss_on_grid(ds.stats, theta)


def held_values(ds: ExplorerDataset, start: np.ndarray) -> np.ndarray:
    """Where the parameters not on the surface's axes are held: at the optimum, or, with no minimum (separable
    classes), at the start."""
    opt = ds.optimum_params
    return np.asarray(start, dtype=float).copy() if opt is None else opt.copy()


def reference_box(ds: ExplorerDataset) -> np.ndarray:
    """(2, p) low/high corners holding the optimum, the default start and the gd path from it at the best step
    2/(L+mu) (a typical path, overshoot included; for the log-loss, 2/L's half, a step its bound guarantees);
    computed once per data set by gdlab.descend."""
    if "reference_box" not in ds.extra:
        pts = [ds.default_start]
        if ds.optimum_params is not None:
            pts.append(ds.optimum_params)
        step = ds.curvature.best_step
        if math.isfinite(step):
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if ds.classification:
                    res = descend(ds.X, ds.y, loss="log_loss", source="memory", standardize=False,
                                  learning_rate=ds.curvature.stable_step / 2, max_iter=200, tol=1e-12, gtol=1e-10,
                                  coef_init=ds.default_start[1:], intercept_init=ds.default_start[0], warn=False)
                else:
                    res = descend(ds.gram_source, None, learning_rate=step, max_iter=200, tol=1e-12, gtol=1e-10,
                                  coef_init=ds.default_start[1:], intercept_init=ds.default_start[0], warn=False)
            path = res.trajectory.params
            pts.append(path[np.all(np.isfinite(path), axis=1)])
            if ds.separable:  # the path heads off to infinity: show where it is going
                end = path[-1]
                pts.append(ds.default_start + 2.0 * (end - ds.default_start))
        allp = np.vstack([np.atleast_2d(p) for p in pts])
        ds.extra["reference_box"] = np.array([allp.min(axis=0), allp.max(axis=0)])
    return ds.extra["reference_box"]


def default_view(ds: ExplorerDataset, axes: tuple[int, ...], start: np.ndarray) -> list[float]:
    """Plot bounds [x0, x1(, y0, y1)]: centred on the optimum (no minimum: on the reference box) and holding the
    reference box (default start, a typical path), grown only when the start lies outside it, so that a click
    inside the view never moves the axes."""
    box = reference_box(ds)
    opt = ds.optimum_params
    out: list[float] = []
    for a in axes:
        # centred on the optimum, so that the whole bowl shows around it
        c = float(opt[a]) if opt is not None else 0.5 * float(box[0, a] + box[1, a])
        half = 1.1 * max(c - float(box[0, a]), float(box[1, a]) - c, 0.1 * abs(c), 1e-3)
        if ds.kind == "mean":  # the workshop's candidates run from 1 to 3
            half = max(half, 1.0)
        lo, hi = c - half, c + half
        if not lo <= start[a] <= hi:
            lo, hi = min(lo, start[a] - 0.1 * half), max(hi, start[a] + 0.1 * half)
        out += [float(lo), float(hi)]
    return out


def surface_grid(ds: ExplorerDataset, grid: int, limits: Limits | None = None) -> int:
    """The grid the surface is drawn on: as asked, made coarser for the log-loss on a big table (it is evaluated on
    the rows: grid^2 x rows at most Limits.max_surface_evaluations)."""
    limits = limits or Limits()
    if not ds.classification:
        return grid
    most = int(math.sqrt(limits.max_surface_evaluations / max(ds.n_rows, 1)))
    return max(limits.min_grid, min(grid, most))


def surface(ds: ExplorerDataset, axes: tuple[int, ...], start: np.ndarray, grid: int, *,
            values: bool = True) -> dict[str, Any]:
    """The loss over the chosen parameters (the others held at their optimal values; with no minimum, at the
    start's).

    Two axes: a grid x grid contour of log10(loss - loss*) (loss* = 0 for separable classes); one axis (the 1-D
    mean): the error curve. ``values=False`` gives the description only (kind, axes, labels, view, ...) without the
    grid: the page asks for it on a slider move, and fetches the grid again only when the view has changed.
    """
    grid = surface_grid(ds, grid)
    held_at = held_values(ds, start)
    view = default_view(ds, axes, start)
    loss_star = ds.loss_star
    names = ds.param_names
    common = {"loss_name": ds.loss_name, "held_at": "optimum" if ds.optimum is not None else "start"}
    if ds.separable:  # the held values are the start's: the grid follows them
        common["held_values"] = _floats(held_at)
    if not values:
        held = [names[k] for k in range(ds.n_params) if k not in axes] if len(axes) == 2 else None
        out = {"kind": "curve" if len(axes) == 1 else "contour", "axes": list(axes),
               "labels": [names[a] for a in axes], "view": view, "loss_star": loss_star, "grid": grid, **common}
        if held is not None:
            out["held"] = held
        return out
    if len(axes) == 1:
        xs = np.linspace(view[0], view[1], max(grid, 2) * 4)
        theta = np.tile(held_at, (xs.size, 1))
        theta[:, axes[0]] = xs
        return {"kind": "curve", "axes": list(axes), "labels": [names[axes[0]]], "view": view, "grid": grid,
                "x": xs.tolist(), "loss": _floats(surface_loss(ds, theta)), "loss_star": loss_star, **common}
    i, j = axes
    xs = np.linspace(view[0], view[1], grid)
    ys = np.linspace(view[2], view[3], grid)
    gx, gy = np.meshgrid(xs, ys)  # rows follow y, as plotly's contour expects z[y][x]
    theta = np.tile(held_at, (gx.size, 1))
    theta[:, i] = gx.ravel()
    theta[:, j] = gy.ravel()
    cache = ds.extra.setdefault("surface_cache", {})  # the log-loss's grid costs a pass over the rows per point
    cache_key = (i, j, tuple(view), grid, tuple(held_at))
    if cache_key not in cache:
        if len(cache) >= 8:
            cache.pop(next(iter(cache)))
        cache[cache_key] = surface_loss(ds, theta)
    gap = cache[cache_key] - loss_star
    floor = max(abs(loss_star), 1.0) * 1e-12
    z = np.log10(np.maximum(gap, floor)).reshape(grid, grid)
    held = [names[k] for k in range(ds.n_params) if k not in axes]
    return {"kind": "contour", "axes": [i, j], "labels": [names[i], names[j]], "view": view, "grid": grid,
            "x": xs.tolist(), "y": ys.tolist(), "z": np.round(z, 5).tolist(), "loss_star": loss_star,
            "held": held, **common}


# ---- step by step: one update as arithmetic (issue 14, item 6) ----------------------------------------------------

def full_gradient(ds: ExplorerDataset, w: np.ndarray) -> np.ndarray:
    """(p,) the gradient of the data set's mean loss at w = [w0, w1, ...]: the workshop's (2/m) X_b^T (X_b w - y)
    for the MSE, (1/m) X_b^T (sigmoid(X_b w) - y) for the log-loss (labels 0/1)."""
    X = np.asarray(ds.X, dtype=float).reshape(ds.n_rows, -1)
    X_b = np.c_[np.ones(ds.n_rows), X]
    eta = X_b @ w
    y = np.asarray(ds.y, dtype=float).ravel()
    if ds.classification:
        return X_b.T @ (1.0 / (1.0 + np.exp(-eta)) - (y > 0)) / ds.n_rows
    return 2.0 / ds.n_rows * X_b.T @ (eta - y)


def step_arithmetic(ds: ExplorerDataset, spec: RunSpec, params: np.ndarray, t: int) -> dict[str, Any]:
    """The update from iteration t to t + 1 of a full-batch run, written out with its numbers.

    ``params`` (n + 1, p) are the run's iterates; the optimizer's state before step t is rebuilt by replaying its
    equations (gdlab.optimizers' docstring) over the gradients at params[0..t-1]. Returns ``rows``: (name, formula,
    values) in the order of the arithmetic, ending with the new weights, and ``next`` = params[t + 1] when recorded.
    """
    if not 0 <= t < len(params) - 1:
        raise ValueError(f"the step shown must be between 0 and {len(params) - 2}, got {t}.")
    eta, h = float(spec.learning_rate), spec.params
    p = params.shape[1]
    a, b = np.zeros(p), np.zeros(p)  # the optimizer's two state slots (velocity, or the moments)
    rows: list[tuple[str, str, np.ndarray]] = []
    for k in range(t + 1):
        g = full_gradient(ds, params[k])
        last = k == t
        if spec.optimizer == "gd":
            u = g
            terms = []
        elif spec.optimizer in ("momentum", "nesterov"):
            beta = h["beta"]
            v_prev = a
            a = g + beta * a
            u = a if spec.optimizer == "momentum" else g + beta * a
            terms = [("previous velocity v", "v (from the last step)", v_prev),
                     ("velocity v ← g + β v", f"β = {beta:g}", a)]
            if spec.optimizer == "nesterov":
                terms.append(("direction u = g + β v", "Nesterov looks ahead", u))
        elif spec.optimizer == "adagrad":
            a = a + g * g
            u = g / (np.sqrt(a) + h["eps"])
            terms = [("sum of squares s ← s + g²", "", a), ("direction u = g / (√s + ε)", f"ε = {h['eps']:g}", u)]
        elif spec.optimizer == "rmsprop":
            a = h["decay"] * a + (1 - h["decay"]) * g * g
            u = g / (np.sqrt(a) + h["eps"])
            terms = [("mean square s ← ρ s + (1−ρ) g²", f"ρ = {h['decay']:g}", a),
                     ("direction u = g / (√s + ε)", f"ε = {h['eps']:g}", u)]
        elif spec.optimizer == "adam":
            b1, b2, eps = h["beta1"], h["beta2"], h["eps"]
            a = b1 * a + (1 - b1) * g
            b = b2 * b + (1 - b2) * g * g
            m_hat, v_hat = a / (1 - b1 ** (k + 1)), b / (1 - b2 ** (k + 1))
            u = m_hat / (np.sqrt(v_hat) + eps)
            terms = [("first moment m ← β1 m + (1−β1) g", f"β1 = {b1:g}", a),
                     ("second moment v ← β2 v + (1−β2) g²", f"β2 = {b2:g}", b),
                     (f"m̂ = m / (1 − β1^{k + 1})", "bias correction", m_hat),
                     (f"v̂ = v / (1 − β2^{k + 1})", "bias correction", v_hat),
                     ("direction u = m̂ / (√v̂ + ε)", f"ε = {eps:g}", u)]
        else:  # pragma: no cover - parse_state allows only the names above
            raise ValueError(f"no step-by-step arithmetic for {spec.optimizer!r}")
        if last:
            w = params[t]
            step = eta * u
            rows = ([("weights w", f"iteration {t}", w),
                     ("gradient g = ∇F(w)", "(2/m) X_bᵀ(X_b w − y)" if not ds.classification else
                      "(1/m) X_bᵀ(σ(X_b w) − y)", g)]
                    + terms
                    + [("step η·u", f"η = {eta:g}", step), ("new weights w − η·u", f"iteration {t + 1}", w - step)])
    return {"t": t, "optimizer": spec.optimizer, "names": ds.param_names,
            "rows": [{"name": n, "note": note, "values": _floats(v)} for n, note, v in rows],
            "next": _floats(params[t + 1])}


# ---- eigen-directions (issue 14, item 2) --------------------------------------------------------------------------
#
# The workshop report's section 11 on the page's own data: the error e = w - w* written along the eigenvectors of
# the Hessian H, c = V^T e. On least squares the gradient is H e, so each component of gd moves on its own,
# c_i <- (1 - eta lambda_i) c_i; heavy-ball momentum multiplies each direction's pair (c_i, v_i) by a 2 x 2 matrix.

#: at most this many iterations of a run per curve of the Eigen-directions card (a longer run is thinned evenly)
EIGEN_MAX_POINTS = 400
#: the (eta, beta) grid of the stability region
REGION_ETAS, REGION_BETAS = 121, 100


def hessian(ds: ExplorerDataset) -> np.ndarray | None:
    """(p, p) the Hessian of the data set's mean loss, p = 1 + d (intercept first).

    Least squares: H = (2/m) X_b^T X_b, from the cached statistics (the loss is exactly F* + 1/2 e^T H e). Logistic
    regression: the Hessian at the minimum (Newton's), (1/m) X_b^T diag(p(1 - p)) X_b, p = sigmoid(X_b w*): the
    quadratic the log-loss approaches near its minimum. None when there is no minimum (separable classes).
    """
    if "hessian" not in ds.extra:
        if ds.classification:
            opt = ds.optimum_params
            if opt is None:
                return None
            X_b = np.c_[np.ones(ds.n_rows), np.asarray(ds.X, dtype=float).reshape(ds.n_rows, -1)]
            prob = 1.0 / (1.0 + np.exp(-(X_b @ opt)))
            h = X_b.T @ (X_b * (prob * (1.0 - prob))[:, None]) / ds.n_rows
        else:
            h = 2.0 * ds.stats.design_gram(True) / ds.stats.n
        ds.extra["hessian"] = 0.5 * (h + h.T)
    return ds.extra["hessian"]


def _eigh(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ascending eigenvalues and unit eigenvectors (columns), each signed so that its largest entry is positive."""
    lam, V = np.linalg.eigh(h)
    big = V[np.argmax(np.abs(V), axis=0), np.arange(V.shape[1])]
    return lam, V * np.where(big < 0, -1.0, 1.0)


def contour_directions(ds: ExplorerDataset, axes: tuple[int, ...], start: np.ndarray) -> dict[str, Any] | None:
    """The eigen-directions of the Hessian of the two parameters on the contour, H[axes][:, axes] (the loss over
    the shown plane, the others held at the optimum, is F* + 1/2 e^T H_2 e), for drawing through the optimum.

    Each direction comes with its eigenvalue and ``half_length`` = sqrt(q / lambda), the semi-axis of the ellipse
    e^T H_2 e = q through the start's position in the plane (the contour line the path starts on): the slow
    direction's is sqrt(kappa_2) times the fast one's. Each vector points towards the start's side. None when the
    surface is not a contour or there is no minimum.
    """
    h = hessian(ds)
    if len(axes) != 2 or h is None:
        return None
    ij = list(axes)
    lam, V = _eigh(h[np.ix_(ij, ij)])
    round_bowl = lam[1] - lam[0] <= 1e-9 * abs(lam[1])
    if round_bowl:  # equal eigenvalues: every direction is one, and eigh's pair is rounding; draw the axes
        V = np.eye(2)
    opt = ds.optimum_params
    e = np.asarray(start, dtype=float)[ij] - opt[ij]
    q = float(e @ h[np.ix_(ij, ij)] @ e)
    out = []
    for k, (name, sym) in enumerate((("slow", "λ_min"), ("fast", "λ_max"))):
        v = V[:, k] * (-1.0 if float(V[:, k] @ e) < 0 else 1.0)
        half = math.sqrt(q / lam[k]) if lam[k] > 0 and q > 0 else None
        out.append({"name": name, "eigenvalue": float(lam[k]), "vector": _floats(v), "half_length": half,
                    "label": f"{name} direction ({sym} = {lam[k]:.4g})"})
    local = "at the minimum, " if ds.classification else ""
    whose = "of the two shown parameters" if ds.n_params > 2 else "of the loss"
    return {"axes": ij, "center": _floats(opt[ij]), "directions": out, "level": q,
            "round": bool(round_bowl),
            "note": f"eigen-directions of the Hessian {local}{whose}: the axes of the contour's ellipses, drawn to "
                    "the ellipse through the start" + ("; here the two eigenvalues are equal (a round bowl): every "
                                                      "direction is one, and the axes are drawn" if round_bowl else "")}


def _radius_roots(tr: np.ndarray, det: np.ndarray) -> np.ndarray:
    """max |z| over the roots of z^2 - tr z + det = 0 (elementwise)."""
    disc = np.sqrt((tr * tr - 4.0 * det).astype(complex))
    return np.maximum(np.abs((tr + disc) / 2.0), np.abs((tr - disc) / 2.0))


def momentum_radius(etas: Any, betas: Any, eigenvalues: Any, optimizer: str = "momentum") -> np.ndarray:
    """(len(betas), len(etas)) the spectral radius of heavy-ball momentum (or Nesterov's) over an (eta, beta) grid:
    the largest |root| over the eigenvalues lambda > 0 of each direction's 2 x 2 iteration, whose characteristic
    polynomial is z^2 - tr z + det with

    momentum [[1 - eta l, -eta beta], [l, beta]]: tr = 1 + beta - eta l, det = beta;
    nesterov [[1 - eta l (1 + beta), -eta beta^2], [l, beta]]: tr = 1 + beta - eta l (1 + beta), det = beta (1 - eta l).

    Directions with lambda = 0 (to rounding) do not move and are left out, as in ``Curvature.spectral_radius``.
    """
    lam = np.asarray(eigenvalues, dtype=float)
    lam = lam[lam > lam.max() * 1e-13] if lam.size and lam.max() > 0 else np.zeros(0)
    E = np.asarray(etas, dtype=float)[None, :, None]
    B = np.asarray(betas, dtype=float)[:, None, None]
    if lam.size == 0:
        return np.zeros((B.shape[0], E.shape[1]))
    el = E * lam[None, None, :]
    if optimizer == "nesterov":
        tr, det = 1.0 + B - el * (1.0 + B), B * (1.0 - el)
    else:
        tr, det = 1.0 + B - el + 0.0 * B, B + 0.0 * el
    return _radius_roots(tr, det).max(axis=2)


def direction_factors(optimizer: str, eta: float, beta: float, eigenvalues: np.ndarray) -> np.ndarray:
    """(p,) the error kept per step along each eigen-direction: |1 - eta lambda| for gd, the 2 x 2 iteration's
    spectral radius for momentum and Nesterov."""
    lam = np.asarray(eigenvalues, dtype=float)
    if optimizer == "gd" or beta == 0.0:
        return np.abs(1.0 - eta * lam)
    return np.array([momentum_radius([eta], [beta], [max(lv, 0.0)], optimizer)[0, 0] if lv > 0 else 1.0
                     for lv in lam])


def predicted_components(optimizer: str, eta: float, beta: float, eigenvalues: np.ndarray, c0: np.ndarray,
                         n: int) -> np.ndarray:
    """(n + 1, p) the quadratic model's error components from c(0) = c0, at rest: gd c_i(t) = (1 - eta l_i)^t c_i(0);
    momentum and Nesterov the first entry of A_i^t (c_i(0), 0), A_i the direction's 2 x 2 iteration matrix."""
    lam = np.asarray(eigenvalues, dtype=float)
    out = np.empty((n + 1, lam.size))
    c, v = np.asarray(c0, dtype=float).copy(), np.zeros(lam.size)
    out[0] = c
    with np.errstate(all="ignore"):
        for k in range(1, n + 1):
            if optimizer == "gd":
                c = (1.0 - eta * lam) * c
            elif optimizer == "momentum":
                c, v = (1.0 - eta * lam) * c - eta * beta * v, lam * c + beta * v
            else:  # nesterov
                c, v = (1.0 - eta * lam * (1.0 + beta)) * c - eta * beta * beta * v, lam * c + beta * v
            out[k] = c
    return out


def _iterations_10x(rate: float) -> float:
    """Iterations for an error that keeps ``rate`` per step to shrink 10-fold: ln 10 / -ln rate."""
    if not rate < 1.0:
        return math.inf
    if rate <= 0.0:
        return 1.0
    return math.log(10.0) / -math.log(rate)


def _iterations(rate: float) -> str:
    """'N iterations' to shrink an error that keeps ``rate`` per step 10-fold ('one iteration' when one does)."""
    n = _iterations_10x(rate)
    if not math.isfinite(n):
        return "no number of iterations"
    if n <= 1.0:
        return "one iteration"
    return f"{n:.3g} iterations" if n < 1e4 else f"{n:.2g} iterations"


def _vec(v: np.ndarray, names: list[str]) -> str:
    if v.size > 4:
        big = np.argsort(-np.abs(v))[:2]
        return "mostly " + " and ".join(f"{names[k].split(' (')[0]} ({v[k]:+.2f})" for k in sorted(big))
    return "(" + ", ".join(f"{x:.3f}" for x in v) + ")"


def stability_region(ds: ExplorerDataset, optimizer: str, eta: float | None, beta: float | None) -> dict[str, Any]:
    """Momentum's (eta, beta) stability region on the data set's Hessian, for drawing: the spectral radius on a grid,
    the edge eta = 2(1 + beta)/L (Nesterov: 2(1 + beta)/((1 + 2 beta) L)), the curves where the slowest and the
    fastest direction are critically damped (heavy ball: eta lambda = (1 -/+ sqrt beta)^2), Polyak's point (heavy
    ball: eta = 4/(sqrt L + sqrt mu)^2, beta = ((sqrt kappa - 1)/(sqrt kappa + 1))^2, both critically damped) and the
    run's own (eta, beta), with its radius."""
    lam, _ = _eigh(hessian(ds))
    live = lam[lam > lam[-1] * 1e-13]
    L, mu = float(live[-1]), float(live[0])
    nesterov = optimizer == "nesterov"
    edge = (lambda b: 2.0 * (1 + b) / ((1 + 2 * b) * L)) if nesterov else (lambda b: 2.0 * (1 + b) / L)
    top = max(edge(0.0) * 2.1 if not nesterov else edge(0.0) * 1.2, 1.15 * (eta or 0.0))
    etas = np.linspace(0.0, top, REGION_ETAS)[1:]
    betas = np.linspace(0.0, 0.995, REGION_BETAS)
    radius = momentum_radius(etas, betas, lam, "nesterov" if nesterov else "momentum")
    bb = np.linspace(0.0, 0.995, 120)
    out: dict[str, Any] = {
        "optimizer": "nesterov" if nesterov else "momentum", "etas": etas.tolist(), "betas": betas.tolist(),
        "radius": np.round(np.minimum(radius, 9.99), 5).tolist(),
        "edge": {"beta": bb.tolist(), "eta": [edge(b) for b in bb]}, "L": L, "mu": mu,
    }
    if not nesterov:
        out["critical_slow"] = {"beta": bb.tolist(), "eta": ((1 - np.sqrt(bb)) ** 2 / mu).tolist()}
        out["critical_fast"] = {"beta": bb.tolist(), "eta": ((1 + np.sqrt(bb)) ** 2 / L).tolist()}
        r = (math.sqrt(L) - math.sqrt(mu)) / (math.sqrt(L) + math.sqrt(mu))
        out["polyak"] = {"eta": 4.0 / (math.sqrt(L) + math.sqrt(mu)) ** 2, "beta": r * r, "rate": r}
    if eta is not None and beta is not None:
        out["current"] = {"eta": eta, "beta": beta,
                          "radius": float(momentum_radius([eta], [beta], lam, out["optimizer"])[0, 0])}
    return out


def eigen_view(ds: ExplorerDataset, spec: RunSpec, result: Result, *, full_batch: bool = True) -> dict[str, Any]:
    """The Eigen-directions card for one run: the error along every eigenvector of the Hessian (all parameters),
    measured from the run, and the quadratic model's prediction (gd: |1 - eta lambda_i|^t |c_i(0)|; momentum and
    Nesterov: their 2 x 2 recurrence), the stability region of momentum, and the words, each computed here.

    Returns ``eigenvalues`` (p,) ascending, ``eigenvectors`` (p, p) columns, ``iteration`` (n,) the iterations kept
    (at most EIGEN_MAX_POINTS), ``measured`` and ``predicted`` (p, n) the components' sizes |c_i(t)| (None where
    not finite or below the rounding floor; ``predicted`` None for the adaptive optimizers and mini-batches),
    ``factors`` (p,) per step (None for the adaptive ones), ``slowest``/``fastest`` indices, ``text`` paragraphs
    and ``region``. For logistic regression the Hessian is the one at the minimum: the prediction holds near it.
    """
    h = hessian(ds)
    if h is None:
        raise ValueError("the classes are separable, so the log-loss has no minimum and no Hessian there: the "
                         "eigen-directions need a minimum (they are a least-squares view; try a regression data set).")
    lam, V = _eigh(h)
    opt = ds.optimum_params
    params = np.asarray(result.trajectory.params, dtype=float)
    iters = np.asarray(result.trajectory.iteration)
    with np.errstate(all="ignore"):
        C = (params - opt) @ V  # (n + 1, p): c(t) = V^T (w_t - w*)
    eta = float(spec.learning_rate)
    beta = float(spec.params.get("beta", 0.0))
    linear = spec.optimizer in ("gd", "momentum", "nesterov")
    theory = linear and full_batch
    factors = direction_factors(spec.optimizer, eta, beta, lam) if linear else None
    P = predicted_components(spec.optimizer, eta, beta, lam, C[0], int(iters[-1])) if theory else None
    n = len(iters)
    keep = np.unique(np.r_[np.linspace(0, n - 1, min(n, EIGEN_MAX_POINTS)).round().astype(int), n - 1])
    c0 = np.abs(C[0])
    floor = max(float(np.max(c0)) if np.all(np.isfinite(c0)) else 0.0,
                float(np.max(np.abs(opt))), 1e-300) * 1e-15

    def sizes(A: np.ndarray) -> list[list[float | None]]:
        a = np.abs(A[keep].T)
        return [[float(x) if math.isfinite(x) and floor <= x <= 1e300 else None for x in r] for r in a]

    curv = ds.curvature
    live = lam > lam[-1] * 1e-13
    L = float(lam[-1])
    mu = float(lam[live][0])
    kappa = L / mu
    names = ds.param_names
    p = lam.size
    if factors is not None:  # by the error kept per step (past 1/L the steepest direction can be the slowest)
        slow, fast = int(np.argmax(np.where(live, factors, -1.0))), int(np.argmin(np.where(live, factors, np.inf)))
        if fast == slow and p > 1:  # every direction keeps the same (momentum under-damped: |root| = sqrt(beta))
            fast = p - 1 if slow != p - 1 else 0
    else:
        slow, fast = int(np.argmax(live)), p - 1
    what = ("The Hessian of the log-loss at its minimum (Newton's), (1/m) X_bᵀ diag(p(1−p)) X_b,"
            if ds.classification else "The Hessian of the loss, H = (2/m) X_bᵀX_b,")
    if p == 1:
        head = f"{what} is one number, λ = {L:.4g} (κ = 1)."
    else:
        head = (f"{what} has {p} eigen-directions, at right angles, with eigenvalues λ from μ = {mu:.4g} to "
                f"L = {L:.4g}: the condition number κ = L/μ = {kappa:.4g}.")
    text = [head + " Write the error w − w* along them, c = Vᵀ(w − w*)"
            + (": the gradient is H (w − w*), so each component moves on its own." if not ds.classification else
               ": near the minimum the gradient is about H (w − w*), so each component moves about on its own "
               "(the log-loss is not a quadratic: the prediction holds as the run nears the minimum).")]
    if not linear:
        text.append(f"{spec.optimizer} rescales each coordinate's step by its own gradient statistics, so the "
                    "eigen-directions are not moved independently and no |1 − ηλ|^t line applies; the solid lines "
                    "are the run's components, measured.")
    elif not full_batch:
        text.append("With mini-batches each step's gradient is of a random batch: the dotted prediction is for full "
                    "batches and is left out; the solid lines are the run's components, measured.")
    if factors is not None:
        r = float(factors[slow])
        rule = "|1 − ηλ|" if spec.optimizer == "gd" or beta == 0.0 else "the spectral radius of its 2 × 2 iteration"
        sentence = (f"At η = {eta:.4g}{'' if spec.optimizer == 'gd' else f', β = {beta:g}'} the slowest direction "
                    f"is the one with λ = {lam[slow]:.4g}, {_vec(V[:, slow], names)}: its error keeps {rule} = "
                    f"{_factor(r)} of itself per step")
        if r < 1:
            sentence += f", so shrinking it 10× takes {_iterations(r)}"
        else:
            sentence += " and grows: the run diverges along it"
        if p > 1 and float(factors[slow]) - float(factors[fast]) <= 1e-9:
            sentence += (f"; so does every other direction (for momentum: complex roots of size √β = "
                         f"{math.sqrt(beta):.4g}, under-damped)." if beta > 0 else "; so does every other direction.")
        elif p > 1:
            sentence += (f"; the fastest (λ = {lam[fast]:.4g}) keeps {_factor(float(factors[fast]))}.")
        text.append(sentence + ("" if sentence.endswith(".") else "."))
        if theory and not ds.classification and n > 1 and np.all(np.isfinite(C[-1])):
            T = int(iters[-1])
            got = abs(C[-1, slow]) / abs(C[0, slow]) if C[0, slow] != 0 else float("nan")
            if math.isfinite(got) and abs(C[-1, slow]) > floor:
                want = abs(P[-1, slow]) / abs(C[0, slow])
                text.append(f"Measured in this run: after {T} iterations the slowest component is {_factor(got)} of "
                            f"its start, against {_factor(want)} predicted ({_factor(r)}^{T}).")
    if p > 1 and not ds.classification:
        best, best_rate = curv.best_step, curv.best_rate
        s = (f"Why the best constant step for gd is 2/(L+μ) = {best:.4g}: the run's rate is the larger of |1 − ημ| "
             f"(the slow end) and |1 − ηL| (the fast end); a larger step helps the slow end and, past 1/L = "
             f"{1 / L:.4g}, makes the fast end overshoot. They are equal where 1 − ημ = ηL − 1, at η = 2/(L+μ), and "
             f"there both keep (κ − 1)/(κ + 1) = {best_rate:.6g} per step")
        if spec.optimizer == "gd":
            s += (f"; at this η = {eta:.4g} the slow end keeps {_factor(abs(1 - eta * mu))} and the fast end "
                  f"{_factor(abs(1 - eta * L))}")
        text.append(s + ".")
        n_best = _iterations_10x(best_rate)
        s = (f"Why a large κ makes gradient descent crawl: with κ = {kappa:.4g}, even at the best step each 10× "
             f"takes {_iterations(best_rate)} (about κ·ln(10)/2 for large κ): the step is capped by the steepest "
             "direction (2/L) and progress is set by the flattest.")
        k = ds.info().get("condition_numbers") or {}
        other = k.get("raw") if ds.scaling is not None else k.get("standardized")
        if other:
            s += (f" {'Raw' if ds.scaling is not None else 'Standardised'}, κ = {other:.4g}: "
                  f"{_iterations((other - 1) / (other + 1))} per 10× at its best step.")
        text.append(s)
    mom = spec.optimizer in ("momentum", "nesterov")
    region = stability_region(ds, spec.optimizer, eta if linear else None, beta if mom else (0.0 if linear else None))
    text.append(_region_text(region, spec.optimizer, eta, beta, (kappa - 1) / (kappa + 1))
                + (" On logistic regression all of this is for the Hessian at the minimum: the picture near it."
                   if ds.classification else ""))
    return {"eigenvalues": _floats(lam), "eigenvectors": _rows(V), "names": names,
            "iteration": iters[keep].tolist(), "measured": sizes(C),
            "predicted": sizes(P) if P is not None else None,
            "factors": _floats(factors) if factors is not None else None, "slowest": slow, "fastest": fast,
            "optimizer": spec.optimizer, "learning_rate": eta, "beta": beta if spec.optimizer in ("momentum",
                                                                                              "nesterov") else None,
            "condition_number": kappa, "L": L, "mu": mu, "local": ds.classification, "text": text,
            "region": region}


def _region_text(region: dict[str, Any], optimizer: str, eta: float, beta: float, gd_best_rate: float) -> str:
    L, mu = region["L"], region["mu"]
    nesterov = region["optimizer"] == "nesterov"
    name = "Nesterov's momentum" if nesterov else "Heavy-ball momentum (v ← ∇F + βv, w ← w − ηv)"
    matrix = "[[1 − ηλ(1+β), −ηβ²], [λ, β]]" if nesterov else "[[1 − ηλ, −ηβ], [λ, β]]"
    edge = "2(1+β)/((1+2β)L)" if nesterov else "2(1+β)/L"
    s = (f"{name} multiplies each direction's pair (error, velocity) by {matrix} every step; the run converges "
         f"when every such matrix has spectral radius below 1, which for 0 ≤ β < 1 is η < {edge} (the red line).")
    cur = region.get("current")
    if cur is not None and optimizer in ("momentum", "nesterov"):
        r = cur["radius"]
        s += (f" Here η = {eta:.4g}, β = {beta:g}: radius {_factor(r)}, "
              + (f"stable: 10× in {_iterations(r)}." if r < 1 else "unstable: it diverges."))
        if not nesterov and eta * mu < 1:
            crit = (1 - math.sqrt(eta * mu)) ** 2
            s += (f" At this η the flattest direction is critically damped at β = (1 − √(ημ))² = {crit:.4g} (the "
                  "dashed curve): above it that direction oscillates as it shrinks, below it its larger root is "
                  f"slow; β = {beta:g} is " + ("above it (under-damped)." if beta > crit else
                                                "below it (over-damped)." if beta < crit else "on it."))
    elif cur is not None:
        s += f" gd is the line β = 0 (the marker: η = {eta:.4g}); choose momentum to move off it."
    if "polyak" in region:
        pk = region["polyak"]
        s += (f" Critical damping of both ends at once is Polyak's heavy ball (the star): η = 4/(√L + √μ)² = "
              f"{pk['eta']:.4g}, β* = ((√κ − 1)/(√κ + 1))² = {pk['beta']:.4g}, with rate (√κ − 1)/(√κ + 1) = "
              f"{pk['rate']:.6g} against gd's best (κ − 1)/(κ + 1) = {gd_best_rate:.6g}: 10× in "
              f"{_iterations(pk['rate'])} instead of {_iterations(gd_best_rate)} (iterations grow like √κ instead "
              "of κ).")
    else:
        s += " (Polyak's critical damping point is for heavy-ball momentum: choose momentum to see it.)"
    return s
