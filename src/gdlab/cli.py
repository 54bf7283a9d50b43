"""The ``gdlab`` command: the workshop, fits, predictions, sweeps, comparisons and the explorer, from a terminal.

Each command parses its options, calls one library function, and renders the result (a rich table for people,
``--format json`` for scripts: the JSON is the library result's ``to_dict()``). A mistake in the input becomes one
line on stderr saying what is wrong and how to fix it, and exit code 2; nothing is left half-written (files go to
a temporary name and are renamed into place). A fit that diverges exits with code 1.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

__all__ = ["app", "main"]

FORMATS = ("table", "json")
SOLVERS = ("gd", "closed-form")

app = typer.Typer(
    name="gdlab",
    help="gdlab: a gradient-descent lab for linear models. Start with [bold]gdlab workshop[/bold].",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


class UserError(Exception):
    """A mistake in the command line or its input: reported as one line, exit code 2."""


# ---- helpers ---------------------------------------------------------------------------------------------------

def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # piped output (a file, a test) gets room for wide tables instead of rich's 80 columns
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 120
    return Console(stderr=stderr, highlight=False, soft_wrap=False, width=width)


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}.")
    return fmt


def _flag_words(text: str) -> str:
    """A library message in the command line's terms: loss='x' -> --loss x, penalty=... -> --penalty ..."""
    import re

    for name in ("loss", "penalty", "alpha", "l1_ratio", "methods", "max_iter", "tol"):
        flag = {"l1_ratio": "--l1-ratio", "max_iter": "--iters"}.get(name, f"--{name}")
        text = re.sub(rf"\b{name}=(?:'([^']*)'|(\S+?))(?=[,;.)\s]|$)",
                      lambda m, f=flag: f"{f} {m.group(1) if m.group(1) is not None else m.group(2)}", text)
    return text.replace("from methods", "from --methods")


def _split(text: Optional[str]) -> Optional[list[str]]:
    if text is None:
        return None
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UserError("--features is empty; give column names separated by commas, e.g. --features a,b.")
    return names


def _check_writable_file(path: Optional[Path], option: str) -> None:
    if path is None:
        return
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file name, e.g. {option} {path / 'model.json'}.")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UserError(f"{option} {path}: the folder {parent} does not exist; create it or choose another path.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: the folder {parent} is not writable; choose another path.")


def _check_report_dir(path: Optional[Path], option: str) -> None:
    if path is None:
        return
    from gdlab.report import _check_destination

    try:
        _check_destination(path)
    except ValueError as exc:
        raise UserError(f"{option}: {exc}") from None


def _parse_lr(text: str) -> Any:
    if text == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        raise UserError(f"--lr must be a positive number or 'auto', got {text!r}; e.g. --lr 0.1.") from None
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"--lr must be > 0 (the learning rate eta), got {text}; e.g. --lr 0.1, or --lr auto.")
    return value


#: the most iterations one fit may run (``--iters``): about a minute of full-batch descent on small data; a fit that
#: needs more wants a better step or better scaled features, not more time
MAX_ITERATIONS = 10_000_000
_MAXIMA = {"--iters": (MAX_ITERATIONS, "a fit that needs more wants a better step (--lr auto), --standardize or "
                                       "--solver closed-form")}


def _positive_int(value: Optional[int], option: str, example: str) -> None:
    if value is not None and value <= 0:
        raise UserError(f"{option} must be a positive integer, got {value}; e.g. {option} {example}.")
    limit = _MAXIMA.get(option)
    if value is not None and limit is not None and value > limit[0]:
        raise UserError(f"{option} must be at most {limit[0]:,} (gdlab's limit), got {value:,}; {limit[1]}.")


def _check_random_state(value: Optional[int]) -> None:
    if value is not None and value < 0:
        raise UserError(f"--random-state must be a non-negative integer (the seed of the shuffling), got {value}; "
                        "e.g. --random-state 0.")


#: the suffixes of a sparse X's target file
_TARGET_FILES = (".npy", ".csv", ".txt")


def _missing_target(sparse: bool) -> str:
    if sparse:
        return ("--target is missing: a sparse X (scipy.sparse.save_npz) holds no target; give its file, e.g. "
                "--target y.npy.")
    return "--target is missing: name the column to predict, e.g. --target y."


def _load(data: Path, target: Optional[str], features: Optional[str], min_rows: int = 1,
          command: str = "", labels: bool = False, feature_names: Optional[Path] = None) -> Any:
    """The table: columns of a file, or a sparse X (scipy.sparse.save_npz) with its target in a separate file."""
    from gdlab.io import is_sparse_file, load_sparse_table, load_table

    sparse = is_sparse_file(data)
    if target is None:
        raise UserError(_missing_target(sparse))
    if sparse:
        if Path(target).suffix.lower() not in _TARGET_FILES:
            raise UserError(f"--target {target}: {data} is a sparse matrix (scipy.sparse.save_npz), which has no "
                            "columns to name; give the target's file (.npy, or a CSV of one column), e.g. --target "
                            "y.npy.")
        if features is not None:
            raise UserError(f"--features selects columns of a table; {data} is a sparse matrix, fitted whole: "
                            "leave out --features (name its columns with --feature-names).")
        table = load_sparse_table(data, target, feature_names, labels=labels)
    else:
        if feature_names is not None:
            raise UserError(f"--feature-names names the columns of a sparse X (scipy.sparse.save_npz); {data} is a "
                            "table whose columns have their names: leave out --feature-names.")
        if (data.suffix.lower() == ".npz" and Path(target).suffix.lower() in _TARGET_FILES
                and Path(target).is_file()):
            raise UserError(f"--target {target} is a file, which goes with a sparse X saved by "
                            f"scipy.sparse.save_npz; {data} is a dense .npz archive of named arrays: name its target "
                            "column with --target COL, or save X with scipy.sparse.save_npz.")
        table = load_table(data, target, _split(features), labels=labels)
    if table.n_samples < min_rows:
        raise UserError(f"{data} has {table.n_samples} row of data; gdlab {command} needs at least {min_rows} "
                        "(R\u00b2 and scikit-learn's fits are not defined on fewer); add rows.")
    return table


# ---- the loss: regression, counts, or classes --------------------------------------------------------------------

def _check_loss(loss: str) -> Any:
    """The loss object of ``--loss``, refused in the flag's words when unknown."""
    from gdlab.losses import LOSSES, get_loss

    if loss not in LOSSES:
        raise UserError(f"unknown loss {loss!r}; --loss must be one of {', '.join(LOSSES)}.")
    return get_loss(loss)


def _check_penalty(penalty: str, alpha: float) -> Optional[str]:
    """--penalty as the library names it (None for none), and --alpha, checked."""
    from gdlab.objectives import PENALTIES

    pen = None if penalty.lower() == "none" else penalty
    if pen not in PENALTIES:
        raise UserError(f"unknown penalty {penalty!r}; --penalty must be one of none, l2, l1, elasticnet.")
    if alpha < 0 or not math.isfinite(alpha):
        raise UserError(f"--alpha must be >= 0, got {alpha}.")
    return pen


def _is_classifier(loss: Any) -> bool:
    return loss.task in ("binary", "multiclass")


def _gives_probabilities(loss: Any) -> bool:
    """Whether a classification loss reads eta as probabilities (an inverse link of its own: log_loss's sigmoid,
    modified_huber's clipped line, the softmax); hinge, squared_hinge and perceptron give classes only."""
    from gdlab.losses import Loss

    return _is_classifier(loss) and type(loss).predict is not Loss.predict


def _check_counts(y: Any, target: str, data: Path) -> None:
    """--loss poisson models counts: a negative target is refused with its row, in the flags' words."""
    import numpy as np

    bad = np.flatnonzero(np.asarray(y) < 0)
    if bad.size:
        raise UserError(f"{data}: --loss poisson models counts (>= 0), but --target {target} holds "
                        f"{float(y[bad[0]]):g} at row {int(bad[0])} ({bad.size} negative value"
                        f"{'s' if bad.size > 1 else ''}); use a regression --loss (squared_error, huber) for a "
                        "signed target.")


def _label(value: Any) -> Any:
    """A class label as JSON and people read it: an integral number as an int, a string as itself."""
    if isinstance(value, str):
        return value
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


#: how each classification scheme is said in the output
SCHEMES = {"binary": "binary", "multinomial": "multinomial (softmax over the classes)",
           "one-vs-rest": "one-vs-rest (one binary model per class)"}


class _Classes:
    """A label column encoded for the loss (scikit-learn's LabelEncoder: the classes in sorted order).

    scheme: "binary" (two classes: y is 0/1, class 1 the positive one), "multinomial" (one-hot y, the softmax) or
    "one-vs-rest" (one-hot y, one binary model per column). ``loss`` is the loss fitted: log_loss with more than two
    classes is the multinomial loss."""

    def __init__(self, labels: Any, loss: Any, target: str, data: Path):
        import numpy as np
        from sklearn.preprocessing import LabelEncoder

        from gdlab.losses import get_loss

        values = np.asarray(labels)
        if values.dtype != object:
            bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
            if bad.size:
                raise UserError(f"{data}: --target {target} holds {values[bad[0]]:g} at row {int(bad[0])}, not a "
                                f"class label; --loss {loss.name} sorts rows into classes (integers or names): for "
                                "a numeric target use a regression --loss (squared_error, huber) or poisson for "
                                "counts.")
        else:
            values = np.array([str(v) for v in values], dtype=object)  # one type, so that they sort
        encoder = LabelEncoder().fit(values)
        self.labels = [_label(c) for c in encoder.classes_]
        self.codes = encoder.transform(values)
        k = len(self.labels)
        if k < 2:
            raise UserError(f"{data}: --target {target} holds one label ({self.labels[0]!r}) in all its "
                            f"{len(values)} rows; a classifier (--loss {loss.name}) needs at least two classes: "
                            "check --target, or fit a regression --loss.")
        if loss.task == "multiclass":
            self.scheme = "multinomial"
        elif k == 2:
            self.scheme = "binary"
        else:
            self.scheme = "multinomial" if loss.name == "log_loss" else "one-vs-rest"
        self.loss = get_loss("multinomial") if self.scheme == "multinomial" else loss

    @property
    def names(self) -> list[str]:
        return [str(c) for c in self.labels]

    def target(self) -> Any:
        """y as the loss reads it: 0/1 for two classes, else one-hot (m, K)."""
        import numpy as np

        if self.scheme == "binary":
            return self.codes.astype(np.float64)
        return np.eye(len(self.labels))[self.codes]

    def describe(self, asked: str) -> str:
        names = ", ".join(self.names)
        text = f"{len(self.labels)} classes ({names}): {SCHEMES[self.scheme]}"
        if self.scheme == "binary":
            text += f", {self.names[1]!r} the positive class"
        if self.loss.name != asked:
            text += f"; --loss {asked} with more than two classes is the {self.loss.name} loss"
        return text


def class_predictions(loss: Any, scheme: str, eta: Any) -> tuple[Any, Any]:
    """(the index of each row's predicted class, the (m, K) class probabilities or None) from the linear predictor
    eta: (m,) for two classes (class 1 where eta > 0), else (m, K) (the largest eta). Probabilities are the loss's
    inverse link (its ``predict``): for one-vs-rest, each class's normalised to sum 1 (uniform where all are 0), as
    scikit-learn's SGDClassifier does."""
    import numpy as np

    eta = np.asarray(eta, dtype=float)
    if scheme == "binary":
        eta = eta.reshape(-1)
        index = (eta > 0).astype(np.int64)
        if not _gives_probabilities(loss):
            return index, None
        p = loss.predict(eta)
        return index, np.column_stack([1.0 - p, p])
    index = np.argmax(eta, axis=1)
    if not _gives_probabilities(loss):
        return index, None
    proba = loss.predict(eta)
    if scheme == "one-vs-rest":
        total = proba.sum(axis=1, keepdims=True)
        proba = np.where(total > 0, proba / np.where(total > 0, total, 1.0), 1.0 / proba.shape[1])
    return index, proba


def _load_for_loss(data: Path, target: Optional[str], features: Optional[str], loss: Any, min_rows: int = 1,
                   command: str = "", feature_names: Optional[Path] = None) -> tuple[Any, Any, Optional[_Classes]]:
    """(the table, y as the loss reads it, the classes or None): a classifier's target read as labels and encoded,
    a Poisson target checked for negative counts."""
    table = _load(data, target, features, min_rows=min_rows, command=command, labels=_is_classifier(loss),
                  feature_names=feature_names)
    assert target is not None
    if _is_classifier(loss):
        classes = _Classes(table.y, loss, target, data)
        return table, classes.target(), classes
    if loss.task == "count":
        _check_counts(table.y, target, data)
    return table, table.y, None


def _fit_quality(classes: _Classes, eta: Any) -> dict[str, Any]:
    """Accuracy on the data fitted, and the log-loss of its probabilities where the loss gives them."""
    import numpy as np

    index, proba = class_predictions(classes.loss, classes.scheme, eta)
    out: dict[str, Any] = {"accuracy": float(np.mean(index == classes.codes)), "log_loss": None}
    if proba is not None:
        from sklearn.metrics import log_loss

        out["log_loss"] = float(log_loss(classes.codes, proba, labels=list(range(len(classes.labels)))))
    return out


def _newton_reference(X: Any, y: Any, loss: Any, penalty: Optional[str], alpha: float, fit_intercept: bool
                      ) -> tuple[Any, str]:
    """(Newton's minimum of the objective fitted, as a Result, or None; why there is none): the reference the
    classifier's report measures the gap against (gdlab.solvers.newton certifies its own result)."""
    import numpy as np

    from gdlab.solvers import MAX_HESSIAN_PARAMETERS, newton

    if not loss.smooth:
        return None, f"the {loss.name} loss has a kink, so Newton's method (the reference) does not apply"
    if penalty not in (None, "l2"):
        return None, f"Newton's method (the reference) takes --penalty l2 or none, not {penalty}"
    size = (X.shape[1] + 1) * (1 if np.ndim(y) == 1 else np.shape(y)[1])
    if size > MAX_HESSIAN_PARAMETERS:
        return None, (f"{size:,} parameters are too many for Newton's dense Hessian (at most "
                      f"{MAX_HESSIAN_PARAMETERS:,})")
    ref = newton(X, y, loss=loss, penalty=penalty, alpha=alpha, fit_intercept=fit_intercept, tol=1e-14,
                 max_iter=200, warn=False)
    if not ref.converged:
        return None, f"Newton's method did not certify a minimum ({ref.message})"
    return ref, ""


def _stream_classes(source: Any, loss: Any, target: str, data: Path) -> _Classes:
    """The classes of a streamed target, from a pass over its values (every file, or every chunk on the cluster):
    two classes coded 0/1 or -1/+1, which the stream's loss reads as they are; anything else is refused in the
    flags' words."""
    import numpy as np

    labels: set[float] = set()
    for values in _chunks_map(source, _chunk_labels):
        labels.update(float(v) for v in values)
    classes = _Classes(np.array(sorted(labels)), loss, target, data)
    if classes.scheme != "binary":
        raise UserError(f"{data}: --target {target} holds {len(classes.labels)} classes "
                        f"({', '.join(classes.names[:6])}{', ...' if len(classes.labels) > 6 else ''}); a streamed "
                        f"classifier (--stream, --scheduler or a folder) fits two classes only: give one file "
                        f"without --stream for the {classes.scheme} fit.")
    if set(classes.labels) not in ({0, 1}, {-1, 1}):
        a, b = classes.names
        raise UserError(f"{data}: --target {target} holds the classes {a} and {b}; a streamed classifier (--stream, "
                        f"--scheduler or a folder) reads two classes coded 0 and 1 (or -1 and 1): recode the column "
                        f"({b} as 1, {a} as 0), or fit one file in memory without --stream.")
    return classes


def _chunks_map(source: Any, work: Any) -> list[Any]:
    """``work(X, y)`` on every chunk of a streamed source: each batch of the files read here, or each chunk where it
    lives on the Dask cluster (only the results travel); y is the first target column as stored."""
    import numpy as np

    d = source.n_features
    if hasattr(source, "map_batches"):
        return source.map_batches(lambda X, Y: work(X, Y[:, 0]))
    import dask
    from dask import delayed

    parts = [delayed(_on_chunk, pure=True)(block, d, work) for block in source.Z.to_delayed().ravel()]
    if source.client is not None:
        return list(source.client.gather(source.client.compute(parts)))
    return list(dask.compute(*parts))


def _on_chunk(block: Any, d: int, work: Any) -> Any:
    return work(block[:, :d], block[:, d])


def _chunk_labels(X: Any, y: Any) -> Any:
    import numpy as np

    return np.unique(y)


def _chunk_quality(X: Any, y: Any, coef: Any, intercept: float, positive: float, loss: Any) -> tuple[int, int, Any]:
    """(rows right, rows, the summed log-loss of the probabilities or None) of a binary classifier on one chunk."""
    import numpy as np

    codes = (y == positive).astype(np.int64)
    index, proba = class_predictions(loss, "binary", X @ coef + intercept)
    total = None
    if proba is not None:
        from sklearn.metrics import log_loss

        total = float(log_loss(codes, proba, labels=[0, 1], normalize=False))
    return int(np.sum(index == codes)), len(codes), total


def _stream_quality(source: Any, result: Any, classes: _Classes) -> dict[str, Any]:
    """Accuracy (and log-loss) of a streamed binary classifier on the data fitted: one more pass, as _fit_quality
    computes them in memory."""
    from functools import partial

    import numpy as np

    coef = np.ravel(np.asarray(result.coef, dtype=float))
    intercept = float(np.ravel(result.intercept)[0])
    work = partial(_chunk_quality, coef=coef, intercept=intercept, positive=float(classes.labels[1]),
                   loss=classes.loss)
    parts = _chunks_map(source, work)
    right, rows = sum(p[0] for p in parts), sum(p[1] for p in parts)
    losses = [p[2] for p in parts]
    return {"accuracy": right / rows, "log_loss": None if losses[0] is None else sum(losses) / rows}


def _objective_label(loss: str, penalty: Optional[str]) -> str:
    if loss == "squared_error" and penalty is None:
        return "loss (MSE)"
    return f"objective (mean {loss}{f' + {penalty} penalty' if penalty else ''})"


class _ProgressCallback:
    """A rich progress bar on stderr that appears only once a fit has run for about a second."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.total = total
        self.label = label
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.progress: Any = None
        self.task: Any = None

    def __call__(self, info: Any) -> None:
        if not self.enabled:
            return None
        if self.progress is None:
            if time.perf_counter() - self.t0 < 1.0:
                return None
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(),
                                     console=_console(stderr=True), transient=True)
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=self.total, loss="")
        self.progress.update(self.task, completed=info.iteration, loss=f"{info.loss:.6g}")
        return None

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


class _RowsProgress:
    """A rich bar of rows read per second while files are streamed (``open_source``'s ``progress`` callback),
    shown once a pass has run for about a second."""

    def __init__(self, label: str, enabled: bool):
        self.label = label
        self.enabled = enabled
        self.t0 = time.perf_counter()
        self.progress: Any = None
        self.task: Any = None

    def __call__(self, rows_done: int, rows_total: Any) -> None:
        if not self.enabled:
            return
        if self.progress is None:
            if time.perf_counter() - self.t0 < 1.0:
                return
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                     TextColumn("{task.completed:,.0f} rows, {task.fields[rate]} rows/s"),
                                     TimeRemainingColumn(), console=_console(stderr=True), transient=True)
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=rows_total, rate="")
        elapsed = max(time.perf_counter() - self.t0, 1e-9)
        # a new pass starts over at 0 rows
        self.progress.update(self.task, completed=rows_done, total=rows_total, rate=f"{rows_done / elapsed:,.0f}")
        if rows_total is not None and rows_done >= rows_total:
            self.t0 = time.perf_counter()

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


#: the core's remedies (gdlab.descent.Diagnosis) as this command line's flags
_REMEDY_FLAGS = {"standardize": lambda v: "--standardize", "max_iter": lambda v: f"--iters {v}",
                 "learning_rate": lambda v: "--lr auto", "solver": lambda v: "--solver closed-form"}


def _gap_words(result: Any, diagnosis: Any) -> str:
    from gdlab.descent import format_distinct

    if not diagnosis.gap_text:
        return ""
    return f": the loss {format_distinct(result.loss, result.optimum_loss, digits=6)[0]} is {diagnosis.gap_text}"


def _status_line(result: Any) -> str:
    """How the fit ended, for the table (the remedies, in flags, go to stderr)."""
    diagnosis = result.extra.get("diagnosis")
    if result.converged or result.diverged or diagnosis is None:
        return result.message
    return result.extra.get("summary", result.message)


def _cli_warning(result: Any, command: str, who: Optional[str] = None, flags: tuple[str, ...] = (
        "standardize", "max_iter", "learning_rate", "solver")) -> Optional[str]:
    """The one-line warning for a fit that ended away from the optimum, in the ``flags`` this command has (None
    when it did not)."""
    diagnosis = result.extra.get("diagnosis")
    if result.converged or result.diverged or diagnosis is None:
        return None
    text = f"gdlab {command}: warning: {who or result.method} did not reach the optimum"
    text += f" in {result.n_iter} iterations" if result.status == 1 else f" ({result.message.split(';')[0]})"
    text += _gap_words(result, diagnosis)
    if diagnosis.reason:
        text += f" ({diagnosis.reason})"
    tries = [_REMEDY_FLAGS[k](v) for k, v in diagnosis.remedies if k in _REMEDY_FLAGS and k in flags]
    if tries:
        text += "; try " + (tries[0] if len(tries) == 1 else ", ".join(tries[:-1]) + " or " + tries[-1])
    return text + "."


def _fit_table(result: Any, names: list[str], target: str, data: str, *, objective: str = "loss (MSE)",
               classes: Optional[_Classes] = None, quality: Optional[dict[str, Any]] = None) -> Any:
    """The fit as a table: one column of coefficients (for a classifier of several classes, one per class), then
    the summary."""
    import numpy as np
    from rich.table import Table

    t = Table(title=f"gdlab fit: {target} ~ {', '.join(names[:6])}{', ...' if len(names) > 6 else ''}",
              show_header=True, header_style="bold")
    t.add_column("term")
    coef = np.asarray(result.coef, dtype=float).reshape(len(names), -1)
    intercept = np.atleast_1d(np.asarray(result.intercept, dtype=float))
    if classes is None:
        headers = ["value"]
    elif classes.scheme == "binary":
        headers = [f"{classes.names[1]} (vs {classes.names[0]})"]
    else:
        headers = classes.names
    filler = [""] * (len(headers) - 1)
    for h in headers:
        t.add_column(h, justify="right")
    t.add_row("intercept", *(f"{v:.8g}" for v in intercept))
    for n, row in zip(names, coef):
        t.add_row(n, *(f"{v:.8g}" for v in row))
    t.add_section()
    if classes is not None:
        t.add_row("classes", f"{len(classes.labels)}, {classes.scheme}", *filler)
    status = "[red]diverged[/red]" if result.diverged else ("yes" if result.converged else "[yellow]no[/yellow]")
    from gdlab.descent import format_distinct
    t.add_row(objective, f"{result.loss:.8g}" if math.isfinite(result.loss) else str(result.loss), *filler)
    if quality is not None:
        t.add_row("accuracy (the data fitted)", f"{quality['accuracy']:.4f}", *filler)
        if quality["log_loss"] is not None:
            t.add_row("log-loss (the data fitted)", f"{quality['log_loss']:.6g}", *filler)
    t.add_row("iterations", str(result.n_iter), *filler)
    t.add_row("converged", status, *filler)
    curv = result.curvature
    if curv is not None:
        where = " (standardized)" if result.scaling == "standardize" else ""
        eta = result.learning_rate if math.isfinite(result.learning_rate) else curv.stable_step
        stable, used = format_distinct(curv.stable_step, eta, digits=6)
        t.add_row(f"stable bound 2/L{where}", stable, *filler)
        t.add_row(f"learning rate used{where}", used if math.isfinite(result.learning_rate) else "–", *filler)
    if result.gap is not None and math.isfinite(result.gap):
        t.add_row("gap to the minimum", f"{result.gap:.3g}", *filler)
    t.add_row("source", result.source, *filler)
    t.add_row("features", "standardized for the descent" if result.scaling == "standardize" else "raw", *filler)
    return t


def frame_records(frame: Any) -> list[dict[str, Any]]:
    """A DataFrame as JSON-ready records at full precision (NaN/inf as null, NumPy scalars as Python ones)."""
    out = []
    for row in frame.to_dict(orient="records"):
        rec = {}
        for k, v in row.items():
            if hasattr(v, "item"):
                v = v.item()
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            rec[str(k)] = v
        out.append(rec)
    return out


# ---- commands --------------------------------------------------------------------------------------------------

def _version(value: bool) -> None:
    if value:
        from gdlab import __version__

        typer.echo(f"gdlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", "-V", help="Print gdlab's version and exit.",
                                          callback=_version, is_eager=True)] = False,
) -> None:
    """gdlab: a gradient-descent lab for linear models. Start with [bold]gdlab workshop[/bold]."""


@app.command(epilog="Example: [bold]gdlab workshop --out gdlab-report[/bold], then open gdlab-report/index.html.")
def workshop(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder of the report (replaced if it holds an earlier "
                                      "gdlab report).")] = Path("gdlab-report"),
    gif: Annotated[bool, typer.Option("--gif/--no-gif", help="Write the animated GIF of the descent.")] = True,
    dpi: Annotated[int, typer.Option("--dpi", help="Resolution of the figures in dots per inch (110 for the screen, "
                                     "200-300 for slides; 50 to 600).")] = 110,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the report's path.")] = False,
) -> None:
    """Reproduce every figure of the workshop, answer its tasks, and write a self-contained HTML report."""
    from gdlab.report import _check_dpi, write_workshop_report
    from gdlab.workshop import run_workshop

    try:  # before the workshop runs, in the flag's words
        _check_dpi(dpi)
    except ValueError:
        raise UserError(f"--dpi must be an integer between 50 and 600 (110 for the screen, 200-300 for slides), "
                        f"got {dpi}.") from None
    _check_report_dir(out, "--out")
    t0 = time.perf_counter()
    console = _console()
    if quiet:
        ws = run_workshop()
        report = write_workshop_report(ws, out, gif=gif, dpi=dpi)
    else:
        with console.status("Running the workshop: fits, sweep, figures..."):
            ws = run_workshop()
            report = write_workshop_report(ws, out, gif=gif, dpi=dpi)
    seconds = time.perf_counter() - t0
    path = report.index.resolve()
    if quiet:
        typer.echo(str(path))
        return
    from rich.table import Table

    ln = ws.line
    w, wn = ln.descent.params, ln.closed.params
    curv = ln.curvature
    t = Table(title="The workshop, answered", show_header=True, header_style="bold")
    t.add_column("question")
    t.add_column("answer")
    t.add_row("mean of the 1000 points (minimum of the error curve)", f"{ws.mean.mean:.4f}")
    t.add_row("w after 10 iterations at eta = 0.1", f"[{w[0]:.4f}, {w[1]:.4f}]")
    t.add_row("w from the Normal Equation", f"[{wn[0]:.4f}, {wn[1]:.4f}]")
    t.add_row("stable bound 2/L (larger steps diverge)", f"{curv.stable_step:.4f}")
    t.add_row("best constant step 2/(L+mu)", f"{curv.best_step:.4f}")
    best_label = next(k for k in ws.iterations.runs if "2/(L+mu)" in k)
    t.add_row("iterations to shrink the gap 1e8-fold at the best step",
              f"{ws.iterations.actual_iterations[best_label]:.0f} "
              f"(predicted {ws.iterations.predicted_iterations[best_label]:.0f})")
    console.print(t)
    console.print(f"{len(report.files)} files written in {seconds:.1f} s (figures, descent.gif, index.html).")
    console.print(f"Report: {path}", soft_wrap=True)


@app.command(epilog="Example: [bold]gdlab fit data.csv --target price --features area,rooms --lr 0.1 --iters 500 "
                    "--save model.json[/bold]")
def fit(
    data: Annotated[Path, typer.Argument(help="CSV, Parquet, .npy or .npz file (a folder of Parquet/CSV files "
                                         "is streamed; a sparse X: scipy.sparse.save_npz's .npz).",
                                         show_default=False)],
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Column to predict (for a sparse X: "
                                                  "its file, .npy or a one-column CSV).")] = None,
    features: Annotated[Optional[str], typer.Option("--features", "-f", help="Feature columns, comma-separated "
                                                    "(default: all but the target).")] = None,
    feature_names: Annotated[Optional[Path], typer.Option("--feature-names", help="A sparse X's column names: a "
                             "text file, one a line (default: f0, f1, ...).", show_default=False)] = None,
    optimizer: Annotated[str, typer.Option(help="gd, momentum, nesterov, adagrad, rmsprop or adam.")] = "gd",
    lr: Annotated[str, typer.Option("--lr", help="Learning rate eta (> 0), or 'auto' (2/(L+mu) for gd).")] = "auto",
    iters: Annotated[int, typer.Option("--iters", help="Maximum number of iterations (epochs).")] = 1000,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Rows per mini-batch (default: full "
                                                      "batch).")] = None,
    loss: Annotated[str, typer.Option(help="Regression: squared_error, huber, epsilon_insensitive, "
                                      "squared_epsilon_insensitive; counts: poisson; classes (a label column): "
                                      "log_loss, multinomial, hinge, squared_hinge, modified_huber, "
                                      "perceptron.")] = "squared_error",
    penalty: Annotated[str, typer.Option(help="none, l2, l1 or elasticnet.")] = "none",
    alpha: Annotated[float, typer.Option(help="Penalty strength (scikit-learn's alpha).")] = 0.0001,
    l1_ratio: Annotated[float, typer.Option("--l1-ratio", help="Elastic-net mixing (scikit-learn's).")] = 0.15,
    tol: Annotated[float, typer.Option(help="The relative gap to the minimum loss at which the fit has converged "
                                       "(1e-10: ten digits).")] = 1e-10,
    standardize: Annotated[Optional[bool], typer.Option("--standardize/--no-standardize", help="Run the descent on "
                           "centred, unit-variance features (everything is reported in the original units). "
                           "Default: on with --lr auto, off with an explicit --lr.", show_default=False)] = None,
    solver: Annotated[str, typer.Option(help="gd (gradient descent) or closed-form (the Normal Equation).")] = "gd",
    fit_intercept: Annotated[bool, typer.Option("--intercept/--no-intercept", help="Fit an intercept.")] = True,
    random_state: Annotated[Optional[int], typer.Option("--random-state", help="Seed for mini-batch "
                                                        "shuffling.")] = None,
    report: Annotated[Optional[Path], typer.Option("--report", help="Write an HTML report to this folder.")] = None,
    save: Annotated[Optional[Path], typer.Option("--save", help="Save the model (coefficients, settings, "
                                                 "trajectory) as JSON.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    stream: Annotated[bool, typer.Option("--stream", help="Stream the data from disk in row batches (bounded "
                                         "memory).")] = False,
    scheduler: Annotated[Optional[str], typer.Option("--scheduler", help="Address of a Dask scheduler to compute "
                                                     "on (implies streaming).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; print only the result.")] = False,
) -> None:
    """Fit a linear model to a data file by gradient descent (or the closed form), and print what happened.

    A classification --loss reads --target as class labels (names or integers) and fits a classifier."""
    from gdlab.optimizers import OPTIMIZERS

    _check_format(fmt)
    if solver not in SOLVERS:
        raise UserError(f"--solver must be one of {', '.join(SOLVERS)}, got {solver!r}.")
    if optimizer not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {optimizer!r}; --optimizer must be one of {', '.join(OPTIMIZERS)}.")
    loss_obj = _check_loss(loss)
    classifier = _is_classifier(loss_obj)
    if solver == "closed-form" and not loss_obj.quadratic:
        raise UserError(f"--solver closed-form solves least squares only (--loss squared_error); --loss {loss} has "
                        "no closed form: leave out --solver (gradient descent).")
    pen = _check_penalty(penalty, alpha)
    learning_rate = _parse_lr(lr)
    _positive_int(iters, "--iters", "1000")
    _positive_int(batch_size, "--batch-size", "32")
    _check_random_state(random_state)
    if tol < 0 or not math.isfinite(tol):
        raise UserError(f"--tol must be >= 0, got {tol}.")
    _check_writable_file(save, "--save")
    _check_report_dir(report, "--report")
    from gdlab.io import is_sparse_file

    if target is None:
        raise UserError(_missing_target(is_sparse_file(data)))

    streaming = stream or scheduler is not None or data.is_dir()
    if is_sparse_file(data) and (streaming or report is not None):
        flag = "--report" if report is not None and not streaming else ("--stream" if stream else "--scheduler")
        raise UserError(f"{flag} is not supported for a sparse X ({data}, scipy.sparse.save_npz): it is fitted in "
                        f"memory from its stored entries; leave out {flag}.")
    if classifier and streaming and report is not None:
        raise UserError(f"--report for a classifier (--loss {loss}) needs the rows in memory (its confusion matrix "
                        "and decision boundary); it is not supported yet with --stream, --scheduler or a folder: "
                        "leave out --report, or give one file without --stream.")
    if classifier and streaming and batch_size is not None:
        raise UserError(f"--batch-size is not supported yet for a streamed classifier (--loss {loss} with --stream, "
                        "--scheduler or a folder): leave out --batch-size (full-batch descent), or give one file "
                        "without --stream.")
    if classifier and streaming and loss_obj.task == "multiclass":
        raise UserError(f"--loss {loss} is not supported yet with --stream, --scheduler or a folder: a streamed "
                        "classifier fits two classes (--loss log_loss, hinge, ...); give one file without --stream "
                        "for the softmax.")
    classes: Optional[_Classes] = None
    quality: Optional[dict[str, Any]] = None
    X = y = None
    names: list[str]
    descend_kw: dict[str, Any] = dict(
        optimizer=optimizer, learning_rate=learning_rate, max_iter=iters, tol=tol, batch_size=batch_size,
        loss=loss, penalty=pen, alpha=alpha, l1_ratio=l1_ratio, random_state=random_state, warn=False,
        standardize="auto" if standardize is None else standardize)
    import gdlab

    progress = _ProgressCallback(iters, f"{optimizer} on {data.name}", enabled=not quiet and fmt == "table")
    try:
        if streaming:
            try:
                from gdlab.scale import closed_form as scale_closed_form
                from gdlab.scale import open_source
            except ImportError:
                raise UserError("streaming (--stream, --scheduler, or a folder of files) needs gdlab.scale, which "
                                "this installation lacks; give a single file without --stream.") from None
            if not data.exists():
                raise UserError(f"{data}: no such file or folder; check the path.")
            rows_bar = _RowsProgress(f"reading {data.name}", enabled=not quiet and fmt == "table"
                                     and scheduler is None)
            try:
                source = open_source(str(data), target, features=_split(features), fit_intercept=fit_intercept,
                                     scheduler=scheduler, loss=loss, progress=rows_bar if scheduler is None else None)
            except BaseException as exc:
                rows_bar.close()
                if classifier and f"target column {target!r} is not numeric" in str(exc):
                    raise UserError(f"{getattr(exc, 'path', None) or data}: --target {target} holds class names, "
                                    "not numbers; a streamed classifier (--stream, --scheduler or a folder) reads "
                                    "numbers: code the two classes as 0 and 1, or fit one file in memory (without "
                                    "--stream), which reads names.") from None
                raise
            names = list(getattr(source, "feature_names", None) or
                         [f"x{j}" for j in range(source.n_features)])
            try:
                if classifier:
                    classes = _stream_classes(source, loss_obj, target, data)
                if solver == "closed-form":
                    result = scale_closed_form(source)
                else:
                    result = gdlab.descend(source, None, callback=progress, **descend_kw)
                if classes is not None:
                    quality = _stream_quality(source, result, classes)
            finally:
                rows_bar.close()
                if hasattr(source, "close"):  # a Dask source opened with a scheduler address owns its client
                    source.close()
        else:
            table, y, classes = _load_for_loss(data, target, features, loss_obj, feature_names=feature_names)
            X, names = table.X, table.feature_names
            if is_sparse_file(data):  # the target's file named by its stem (y.npy: "y") in the table and the model
                target = table.target_name
            if X.shape[1] == 0 and not fit_intercept:
                raise UserError("there are no feature columns and --no-intercept: nothing to fit; add features.")
            if classes is not None:
                descend_kw["loss"] = classes.loss.name
            if solver == "closed-form":
                result = gdlab.closed_form(X, y, fit_intercept=fit_intercept)
            else:
                result = gdlab.descend(X, y, callback=progress, fit_intercept=fit_intercept, **descend_kw)
    finally:
        progress.close()

    if classes is not None and not streaming:
        quality = _fit_quality(classes, result.predict(X))
    if save is not None:
        from gdlab._io import atomic_write_text

        model = _model_fields(result, names, target, loss_obj, classes)
        model.update({
            "settings": {"data": str(data), "solver": solver, "optimizer": optimizer, "learning_rate": lr,
                         "max_iter": iters, "batch_size": batch_size, "loss": loss, "penalty": pen, "alpha": alpha,
                         "l1_ratio": l1_ratio, "tol": tol, "standardize": result.scaling == "standardize",
                         "fit_intercept": fit_intercept, "random_state": random_state},
            "result": result.to_dict(trajectory=True),
        })
        atomic_write_text(save, json.dumps(model, indent=1))
    if report is not None:
        from gdlab.report import write_classifier_report, write_fit_report

        advice = _cli_warning(result, "fit")
        advice = None if advice is None else "Try " + advice.split("; try ", 1)[1] if "; try " in advice else None
        if classes is None:
            write_fit_report(result, report, X=X, y=y, feature_names=names, target_name=target, data_name=str(data),
                             advice=advice)
        else:
            reference, note = _newton_reference(X, y, classes.loss, pen, alpha, fit_intercept)
            fitted_classes = classes

            def classify(eta: Any) -> tuple[Any, Any]:
                return class_predictions(fitted_classes.loss, fitted_classes.scheme, eta)

            write_classifier_report(result, report, X=X, codes=classes.codes, class_names=classes.names,
                                    scheme=classes.scheme, classify=classify, reference=reference,
                                    reference_note=note, feature_names=names, target_name=target,
                                    data_name=str(data), objective=_objective_label(classes.loss.name, pen),
                                    advice=advice)

    if fmt == "json":
        out = result.to_dict(trajectory=False)
        if classes is not None:
            out["classification"] = {"loss": classes.loss.name, "scheme": classes.scheme, "classes": classes.labels,
                                     **quality}
        typer.echo(json.dumps(out))
    else:
        console = _console()
        fitted = loss if classes is None else classes.loss.name
        console.print(_fit_table(result, names, target, str(data), objective=_objective_label(fitted, pen),
                                 classes=classes, quality=quality))
        if classes is not None:
            console.print(f"{target}: {classes.describe(loss)}.", soft_wrap=True, markup=False)
        style = "red" if result.diverged else ("green" if result.converged else "yellow")
        console.print(f"[{style}]{_status_line(result)}[/{style}]", soft_wrap=True, markup=True)
        if save is not None and not quiet:
            console.print(f"Model saved to {save}")
        if report is not None and not quiet:
            console.print(f"Report: {(report / 'index.html').resolve()}", soft_wrap=True)
    warning = _cli_warning(result, "fit")
    if warning is not None:  # the result stands (exit 0), but stderr says how far it is and what would fix it
        typer.echo(warning, err=True)
    if result.diverged:
        raise typer.Exit(1)


MODEL_FIX = "save a model with gdlab fit DATA --target COL --save MODEL.json"


def _model_fields(result: Any, names: list[str], target: str, loss: Any, classes: Optional[_Classes]
                  ) -> dict[str, Any]:
    """The model file's prediction fields. Version 1: eta = x.w + b is the prediction (the regression losses);
    version 2 adds the loss, whose inverse link reads eta (poisson: the mean exp(eta)), and for a classifier its
    scheme and classes, with one row of coefficients and one intercept per class unless it is binary."""
    import numpy as np

    fields: dict[str, Any] = {"format": "gdlab-model", "version": 1, "target": target, "features": names,
                              "loss": loss.name}
    if classes is None and loss.task == "regression":
        fields.update(coef=[float(v) for v in result.coef], intercept=float(result.intercept))
        return fields
    fields["version"] = 2
    if classes is None or classes.scheme == "binary":
        fields.update(coef=[float(v) for v in np.ravel(result.coef)], intercept=float(np.ravel(result.intercept)[0]))
    else:
        fields.update(coef=np.asarray(result.coef, dtype=float).T.tolist(),
                      intercept=[float(v) for v in result.intercept])
    if classes is not None:
        fields.update(loss=classes.loss.name, scheme=classes.scheme, classes=classes.labels)
    return fields


def _model_number(model: Path, value: Any, what: str) -> float:
    """A coefficient or the intercept of a model file, checked: a finite number."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UserError(f"{model}: {what} is {json.dumps(value)}, not a number; the file is not a model gdlab "
                        f"wrote (or was edited): {MODEL_FIX}.")
    v = float(value)
    if not math.isfinite(v):
        raise UserError(f"{model}: {what} is {v}; a model with non-finite coefficients predicts nothing (was it "
                        "saved from a fit that diverged?); fit again, e.g. with --lr auto, and save it with --save.")
    return v


def _read_model(model: Path) -> dict[str, Any]:
    """The model file, validated as strictly as a data file: every field of the right type, finite coefficients,
    one per feature."""
    from gdlab.io import check_regular_file

    if not model.exists():
        raise UserError(f"{model}: no such model file; save one with gdlab fit DATA --target COL --save {model}.")
    kind = "a folder" if model.is_dir() else check_regular_file(model)
    if kind is not None:
        raise UserError(f"{model} is {kind}, not a model file; give the JSON file written by gdlab fit --save.")
    try:
        spec = json.loads(model.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{model} is not a gdlab model (not valid JSON: {exc}); {MODEL_FIX}.") from None
    if not isinstance(spec, dict) or spec.get("format") != "gdlab-model" or not {"coef", "intercept",
                                                                                  "features"} <= set(spec):
        raise UserError(f"{model} is not a gdlab model (it lacks format/coef/intercept/features); {MODEL_FIX}.")
    version = spec.get("version", 1)
    if version not in (1, 2) or isinstance(version, bool):
        raise UserError(f"{model}: model format version {json.dumps(version)} is not one this gdlab reads (1 or 2); "
                        "fit and save the model again with this gdlab.")
    features, coef = spec["features"], spec["coef"]
    if not isinstance(features, list) or not all(isinstance(f, str) and f for f in features):
        raise UserError(f"{model}: \"features\" must be a list of column names, got {json.dumps(features)[:80]}; "
                        f"{MODEL_FIX}.")
    dup = sorted({f for f in features if features.count(f) > 1})
    if dup:
        raise UserError(f"{model}: \"features\" names {dup[0]!r} twice; each column must appear once. {MODEL_FIX}.")
    if not isinstance(coef, list):
        raise UserError(f"{model}: \"coef\" must be a list of numbers, got {json.dumps(coef)[:80]}; {MODEL_FIX}.")
    spec["loss_object"] = _model_loss(model, spec) if version == 2 else None
    classes = spec.get("classes") if version == 2 else None
    if classes is not None and spec.get("scheme") != "binary":  # one row of coefficients per class
        if len(coef) != len(classes) or not all(isinstance(row, list) for row in coef):
            raise UserError(f"{model}: \"coef\" must hold one list of coefficients per class ({len(classes)}), "
                            f"got {json.dumps(coef)[:80]}; {MODEL_FIX}.")
        rows = []
        for row, label in zip(coef, classes):
            if len(row) != len(features):
                raise UserError(f"{model}: \"coef\" of class {label!r} has {len(row)} values but \"features\" "
                                f"names {len(features)} columns; a model has one coefficient per feature. "
                                f"{MODEL_FIX}.")
            rows.append([_model_number(model, c, f"the coefficient of {f!r} for class {label!r}")
                         for c, f in zip(row, features)])
        spec["coef"] = rows
        intercept = spec["intercept"]
        if not isinstance(intercept, list) or len(intercept) != len(classes):
            raise UserError(f"{model}: \"intercept\" must hold one number per class ({len(classes)}), got "
                            f"{json.dumps(intercept)[:80]}; {MODEL_FIX}.")
        spec["intercept"] = [_model_number(model, b, f"the intercept of class {label!r}")
                             for b, label in zip(intercept, classes)]
    else:
        if len(coef) != len(features):
            raise UserError(f"{model}: \"coef\" has {len(coef)} values but \"features\" names {len(features)} "
                            f"columns; a model has one coefficient per feature. {MODEL_FIX}.")
        spec["coef"] = [_model_number(model, c, f"the coefficient of {f!r}") for c, f in zip(coef, features)]
        spec["intercept"] = _model_number(model, spec["intercept"], "the intercept")
    target = spec.get("target")
    if target is not None and not isinstance(target, str):
        raise UserError(f"{model}: \"target\" must be a column name, got {json.dumps(target)[:80]}; {MODEL_FIX}.")
    return spec


def _model_loss(model: Path, spec: dict[str, Any]) -> Any:
    """A version 2 model's loss (and, for a classifier, its scheme and classes), checked."""
    from gdlab.losses import LOSSES, get_loss

    name = spec.get("loss")
    if not isinstance(name, str) or name not in LOSSES:
        raise UserError(f"{model}: \"loss\" must be one of {', '.join(LOSSES)}, got {json.dumps(name)[:80]}; "
                        f"{MODEL_FIX}.")
    loss = get_loss(name)
    if not _is_classifier(loss):
        return loss
    scheme, classes = spec.get("scheme"), spec.get("classes")
    if scheme not in SCHEMES or (scheme == "multinomial") != (loss.task == "multiclass"):
        wanted = "multinomial" if loss.task == "multiclass" else "binary or one-vs-rest"
        raise UserError(f"{model}: \"scheme\" must be {wanted} for loss {name!r}, got {json.dumps(scheme)[:80]}; "
                        f"{MODEL_FIX}.")
    if not isinstance(classes, list) or len(classes) < 2 or not all(
            isinstance(c, (str, int, float)) and not isinstance(c, bool) for c in classes):
        raise UserError(f"{model}: \"classes\" must be a list of at least two class labels, got "
                        f"{json.dumps(classes)[:80]}; {MODEL_FIX}.")
    if len({str(c) for c in classes}) != len(classes):
        raise UserError(f"{model}: \"classes\" names a class twice; {MODEL_FIX}.")
    if (scheme == "binary") != (len(classes) == 2):
        raise UserError(f"{model}: a {scheme} model has {'two' if scheme == 'binary' else 'more than two'} classes, "
                        f"but \"classes\" lists {len(classes)}; {MODEL_FIX}.")
    return loss


def _prediction_columns(spec: dict[str, Any], eta: Any) -> tuple[list[str], list[Any]]:
    """The predictions of a model as named columns: the value (regression), the mean exp(eta) (poisson), or the
    class and one probability per class where the loss gives them."""
    target = spec.get("target") or "y"
    loss = spec["loss_object"]
    if loss is None or not _is_classifier(loss):
        mean = eta if loss is None else loss.predict(eta)
        return [f"{target}_predicted"], [[repr(float(v))] for v in mean]
    classes = spec["classes"]
    index, proba = class_predictions(loss, spec["scheme"], eta)
    header = [f"{target}_predicted"]
    rows: list[Any] = [[classes[i]] for i in index]
    if proba is not None:
        header += [f"p_{c}" for c in classes]
        rows = [row + [repr(float(p)) for p in ps] for row, ps in zip(rows, proba)]
    return header, rows


@app.command(epilog="Example: [bold]gdlab predict model.json new.csv --out predictions.csv[/bold]")
def predict(
    model: Annotated[Path, typer.Argument(help="A model saved by gdlab fit --save.", show_default=False)],
    data: Annotated[Path, typer.Argument(help="CSV, Parquet, .npy or .npz file with the model's feature "
                                         "columns.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the predictions to this CSV file "
                                                "(default: print them).")] = None,
) -> None:
    """Predict with a saved model: one value per row of DATA (a classifier's: the class, and one probability per
    class where its loss gives them)."""
    import csv
    import io

    import numpy as np

    from gdlab._io import atomic_write_text
    from gdlab.io import load_columns

    if out is not None and out.suffix.lower() not in (".csv", ".txt", ""):
        raise UserError(f"--out {out}: predictions are written as CSV; give a .csv file name.")
    _check_writable_file(out, "--out")
    from gdlab.io import is_sparse_file, load_sparse_matrix

    spec = _read_model(model)
    if is_sparse_file(data):  # a sparse X's columns are the model's features by position
        X = load_sparse_matrix(data)
        if X.shape[1] != len(spec["features"]):
            raise UserError(f"DATA {data} has {X.shape[1]} columns but the model {model} was fitted on "
                            f"{len(spec['features'])} features; give the matrix of the same columns, in the same "
                            "order.")
    else:
        X, _ = load_columns(data, spec["features"])
    coef = np.asarray(spec["coef"], dtype=float)
    loss = spec["loss_object"]
    with np.errstate(all="ignore"):
        eta = X @ (coef if coef.ndim == 1 else coef.T) + np.asarray(spec["intercept"], dtype=float)
        # what must be finite: eta, and for poisson its mean exp(eta)
        checked = np.reshape(eta if loss is None or _is_classifier(loss) else loss.predict(eta), (len(eta), -1))
    bad = np.flatnonzero(~np.isfinite(checked).all(axis=1))
    if bad.size:
        value = checked[bad[0]][~np.isfinite(checked[bad[0]])][0]
        raise UserError(f"{data}: the prediction for row {int(bad[0])} overflows float64 ({value}); the "
                        "data are far outside the range the model was fitted on: rescale them as the training data.")
    header, rows = _prediction_columns(spec, eta)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    text = buffer.getvalue()
    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(out, text)


@app.command(epilog="Example: [bold]gdlab sweep data.csv --target y --lr 1e-3:1:20 --iters 10,100,1000 "
                    "--plot sweep.png[/bold]")
def sweep(
    data: Annotated[Path, typer.Argument(help="CSV, Parquet, .npy or .npz file.", show_default=False)],
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Column to predict.")] = None,
    features: Annotated[Optional[str], typer.Option("--features", "-f", help="Feature columns, comma-separated "
                                                    "(default: all but the target).")] = None,
    lr: Annotated[str, typer.Option("--lr", help="START:STOP:COUNT (log-spaced) or a list a,b,c.")] = "1e-3:1:20",
    iters: Annotated[str, typer.Option("--iters", help="Iteration counts, comma-separated.")] = "10,100,1000",
    optimizer: Annotated[str, typer.Option(help="gd, momentum, nesterov, adagrad, rmsprop or adam.")] = "gd",
    loss: Annotated[str, typer.Option(help="The loss descended (as in gdlab fit; a classification loss reads "
                                      "--target as class labels).")] = "squared_error",
    penalty: Annotated[str, typer.Option(help="none, l2, l1 or elasticnet (as in gdlab fit).")] = "none",
    alpha: Annotated[float, typer.Option(help="Penalty strength (scikit-learn's alpha).")] = 0.0001,
    standardize: Annotated[bool, typer.Option("--standardize/--no-standardize", help="Descend on centred, "
                           "unit-variance features: the learning rates are then steps in those units (2/L too).")
                           ] = False,
    plot: Annotated[Optional[Path], typer.Option("--plot", help="Write the heatmap to this PNG file.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress messages.")] = False,
) -> None:
    """Final loss of gradient descent over a grid of learning rates and iteration counts, with 2/L marked."""
    from gdlab.optimizers import OPTIMIZERS
    from gdlab.sweep import check_grid, parse_iterations, parse_learning_rates
    from gdlab.sweep import sweep as run_sweep

    _check_format(fmt)
    if optimizer not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {optimizer!r}; --optimizer must be one of {', '.join(OPTIMIZERS)}.")
    loss_obj = _check_loss(loss)
    pen = _check_penalty(penalty, alpha)
    try:
        lrs = parse_learning_rates(lr)
    except ValueError as exc:
        raise UserError(f"--lr: {exc}") from None
    try:
        its = parse_iterations(iters)
    except ValueError as exc:
        raise UserError(f"--iters: {exc}") from None
    try:
        check_grid(lrs, its)
    except ValueError as exc:
        raise UserError(f"--lr and --iters: {exc}") from None
    if plot is not None and plot.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UserError(f"--plot {plot}: give a .png, .svg or .pdf file name.")
    _check_writable_file(plot, "--plot")
    table, y, classes = _load_for_loss(data, target, features, loss_obj)
    fitted = loss_obj.name if classes is None else classes.loss.name
    console = _console()
    settings = dict(optimizer=optimizer, standardize=standardize, loss=fitted, penalty=pen, alpha=alpha)
    if quiet or fmt == "json":
        res = run_sweep(table.X, y, lrs, its, **settings)
    else:
        with _console(stderr=True).status(f"{len(lrs)} runs of up to {int(its.max())} iterations..."):
            res = run_sweep(table.X, y, lrs, its, **settings)
    if plot is not None:
        from gdlab.plots import save_figure, sweep_heatmap_figure

        save_figure(sweep_heatmap_figure(res), plot)
    if fmt == "json":
        out = res.to_dict()
        if classes is not None:
            out["classification"] = {"loss": classes.loss.name, "scheme": classes.scheme, "classes": classes.labels}
        typer.echo(json.dumps(out))
        return
    from rich.table import Table

    measure = "MSE" if fitted == "squared_error" else f"mean {fitted}"
    t = Table(title=f"Final {measure} of {optimizer} on {data.name} ({table.target_name})", header_style="bold")
    t.add_column("learning rate")
    for n in res.iterations:
        t.add_column(f"{n} iter.", justify="right")
    stable = res.stable_step
    marked = False
    for i, eta in enumerate(res.learning_rates):
        if not marked and eta >= stable:
            t.add_section()
            marked = True
        cells = []
        for j in range(len(res.iterations)):
            v = res.final_loss[i, j]
            cells.append("[red]diverged[/red]" if res.diverged[i, j] else (f"{v:.5g}" if math.isfinite(v) else "–"))
        t.add_row(f"{eta:.4g}", *cells)
    console.print(t)
    if classes is not None:
        console.print(f"{table.target_name}: {classes.describe(loss)}.", soft_wrap=True, markup=False)
    bound = ("steps at or above it diverge (the line across the table)" if loss_obj.quadratic else
             f"steps below it descend for sure (the line across the table; for the {fitted} loss it is a bound from "
             "the largest curvature, so larger steps may descend too)")
    console.print(f"2/L = {stable:.4g}: {bound}; best constant step 2/(L+mu) = {res.best_step:.4g}"
                  + (f"; minimum {measure} {res.optimum_loss:.6g}." if res.optimum_loss is not None else "."),
                  soft_wrap=True)
    import numpy as np

    if np.any(np.isnan(res.final_loss) & ~res.diverged):
        console.print("–: the run ended before that iteration without diverging (gdlab.descend stopped it; for "
                      "a classifier, usually because the classes are separated and the loss has no minimum "
                      "without a penalty: try --penalty l2).", soft_wrap=True)
    if plot is not None and not quiet:
        console.print(f"Heatmap: {plot.resolve()}", soft_wrap=True)


@app.command(epilog="Example: [bold]gdlab compare data.csv --target y[/bold]")
def compare(
    data: Annotated[Path, typer.Argument(help="CSV, Parquet, .npy or .npz file.", show_default=False)],
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Column to predict.")] = None,
    features: Annotated[Optional[str], typer.Option("--features", "-f", help="Feature columns, comma-separated "
                                                    "(default: all but the target).")] = None,
    iters: Annotated[int, typer.Option("--iters", help="Maximum number of iterations of each gdlab "
                                       "optimizer.")] = 1000,
    tol: Annotated[float, typer.Option(help="The relative gap to the minimum loss at which a gdlab optimizer has "
                                       "converged (1e-10: ten digits).")] = 1e-10,
    standardize: Annotated[bool, typer.Option("--standardize/--no-standardize", help="Run gdlab's descent on "
                           "centred, unit-variance features (reported in the original units).")] = True,
    loss: Annotated[str, typer.Option(help="The loss every row minimises (as in gdlab fit; a classification loss "
                                      "reads --target as class labels).")] = "squared_error",
    penalty: Annotated[str, typer.Option(help="none, l2, l1 or elasticnet: every row minimises the loss plus this "
                                         "penalty.")] = "none",
    alpha: Annotated[float, typer.Option(help="Penalty strength (scikit-learn's alpha).")] = 0.0001,
    l1_ratio: Annotated[float, typer.Option("--l1-ratio", help="Elastic-net mixing (scikit-learn's).")] = 0.15,
    methods: Annotated[Optional[str], typer.Option("--methods", help="The rows, comma-separated (default: those "
                       "that fit this loss and penalty), from: closed_form, gd, momentum, nesterov, adagrad, "
                       "rmsprop, adam, newton, lbfgs, LinearRegression, SGDRegressor, LogisticRegression, "
                       "SGDClassifier.")] = None,
    feature_names: Annotated[Optional[Path], typer.Option("--feature-names", help="A sparse X (.npz): a text "
                             "file with one feature name a line.", show_default=False)] = None,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """gdlab's gradient descent beside the Normal Equation and scikit-learn, on your data (or, with --loss, beside
    the reference solvers of that loss)."""
    import inspect

    from gdlab.compare import compare

    _check_format(fmt)
    _positive_int(iters, "--iters", "1000")
    if tol < 0 or not math.isfinite(tol):
        raise UserError(f"--tol must be >= 0, got {tol}.")
    loss_obj = _check_loss(loss)
    options: dict[str, Any] = {}
    if loss_obj.name != "squared_error":
        if "loss" not in inspect.signature(compare).parameters:
            raise UserError(f"compare --loss {loss} is not supported yet (this gdlab.compare fits least squares "
                            f"only); fit it with gdlab fit --loss {loss}.")
    from gdlab.compare import METHODS
    from gdlab.io import is_sparse_file

    pen = _check_penalty(penalty, alpha)
    if not 0 <= l1_ratio <= 1:
        raise UserError(f"--l1-ratio must be between 0 and 1, got {l1_ratio}.")
    chosen = _split(methods)
    if chosen is not None:
        for name in chosen:
            if name not in METHODS:
                raise UserError(f"unknown method {name!r} in --methods; choose from {', '.join(METHODS)}.")
    if feature_names is not None and not is_sparse_file(data):
        raise UserError("--feature-names names the columns of a sparse X (.npz); a table names its own columns.")
    table, y, classes = _load_for_loss(data, target, features, loss_obj, min_rows=2, command="compare",
                                       feature_names=feature_names)
    if loss_obj.name != "squared_error":
        options["loss"] = loss_obj.name if classes is None else classes.loss.name
    try:
        obj = compare(table.X, y, max_iter=iters, tol=tol, standardize=standardize, methods=chosen, penalty=pen,
                      alpha=alpha, l1_ratio=l1_ratio, feature_names=table.feature_names, **options)
    except ValueError as exc:  # a method that cannot fit this objective: said in the flags' terms
        raise UserError(_flag_words(str(exc))) from None
    frame = obj.to_frame()
    if classes is not None and classes.scheme != "binary":  # the outputs' columns named after their classes
        frame = frame.rename(columns={c: c.replace(f"[{o}]", f"[{name}]") for c in frame.columns
                                      for o, name in enumerate(classes.names) if c.endswith(f"[{o}]")})
    if fmt == "json":
        typer.echo(json.dumps(frame_records(frame)))
    else:
        _console().print(obj)
        if classes is not None:
            outputs = "" if classes.scheme == "binary" else "; output o of the coefficients is class o: " + \
                ", ".join(f"{o} = {name}" for o, name in enumerate(classes.names))
            _console().print(f"{table.target_name}: {classes.describe(loss)}{outputs}.", soft_wrap=True,
                             markup=False)
    for row in obj.rows:  # a gdlab row away from the optimum: how far, why, and the flag that would fix it
        warning = None if row.result is None else _cli_warning(row.result, "compare", who=row.method,
                                                                 flags=("standardize", "max_iter"))
        if warning is not None:
            diagnosis = row.result.extra["diagnosis"]
            if any(key == "solver" for key, _ in diagnosis.remedies):
                warning = warning[:-1] + "; the closed form's row is exact (gdlab fit --solver closed-form)."
            typer.echo(warning, err=True)


@app.command(epilog="Example: [bold]gdlab explore data.csv --target y --port 8765[/bold] (or just "
                    "[bold]gdlab explore[/bold] for the workshop's data)")
def explore(
    data: Annotated[Optional[Path], typer.Argument(help="Optional data file (default: the workshop's line "
                                                   "data).", show_default=False)] = None,
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Column to predict.")] = None,
    features: Annotated[Optional[str], typer.Option("--features", "-f", help="Feature columns, "
                                                    "comma-separated.")] = None,
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8765,
    host: Annotated[str, typer.Option(help="Address to listen on (another than 127.0.0.1 makes the explorer "
                                      "reachable from the network: it has no login).")] = "127.0.0.1",
    allow_host: Annotated[Optional[list[str]], typer.Option(
        "--allow-host", help="Another host name the page may be reached by (repeatable; with a non-loopback "
        "--host, e.g. the name other machines use for this one).", show_default=False)] = None,
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser.")] = False,
) -> None:
    """Open the explorer: gradient descent you can play with, in the browser."""
    if not 0 <= port < 65536:
        raise UserError(f"--port must be between 0 (any free port) and 65535, got {port}.")
    if data is not None and target is None:
        raise UserError("--target is missing: name the column to predict, e.g. --target y.")
    try:
        from gdlab.explorer.server import host_names, is_loopback, serve
    except ImportError as exc:
        raise UserError(f"the explorer is not available in this installation ({exc}); install gdlab[explorer].") \
            from None
    extra = [name for value in allow_host or [] for name in value.split(",") if name.strip()]

    def ready(url: str) -> None:
        if not is_loopback(host):  # said once it listens, so that a refused port or host gives one line only
            typer.echo(f"gdlab explore: warning: --host {host} makes the explorer reachable from the network, and it "
                       "has no login: anyone who can reach this machine can use it. It answers requests addressed to "
                       f"{', '.join(host_names(host, extra))} (add names with --allow-host).", err=True)
        typer.echo(f"gdlab explorer at {url} (Ctrl-C to stop)", err=True)

    try:
        serve(data=None if data is None else str(data), target=target, features=_split(features), host=host,
              port=port, open_browser=not no_browser, allowed_hosts=extra, on_ready=ready)
    except ValueError as exc:
        raise UserError(str(exc)) from None


# ---- entry point -----------------------------------------------------------------------------------------------

def _one_line(text: str) -> str:
    return " ".join(str(text).split())


class _OneLineWarnings:
    """Warnings as one line each on stderr, once per message: gdlab's own at once (``gdlab fit: warning: ...``);
    those of other libraries (NumPy's floating-point ones, scikit-learn's) held back and shown when the command
    ends, unless it ends in an error, whose one line says what went wrong instead."""

    MAX_HELD = 20

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.seen: set[str] = set()
        self.held: list[str] = []

    def show(self, message: Any, category: Any, filename: str, lineno: int, file: Any = None,
             line: Any = None) -> None:
        from gdlab.exceptions import GDLabWarning

        text = _one_line(str(message))
        if text in self.seen:
            return
        self.seen.add(text)
        if isinstance(category, type) and issubclass(category, GDLabWarning):
            typer.echo(f"{self.prefix}: warning: {text}", err=True)
        elif len(self.held) < self.MAX_HELD:
            self.held.append(f"{self.prefix}: warning: {text} ({getattr(category, '__name__', 'warning')})")

    def flush(self) -> None:
        for text in self.held:
            typer.echo(text, err=True)
        self.held.clear()


def _error_exit(prefix: str, message: str, warnings_shown: _OneLineWarnings) -> None:
    warnings_shown.held.clear()
    typer.echo(f"{prefix}: error: {_one_line(message)}", err=True)
    sys.exit(2)


#: the option that names the report folder of each command that writes one
_REPORT_OPTION = {"workshop": "--out", "fit": "--report"}


def main(argv: Optional[list[str]] = None) -> int:
    """Run the gdlab command line (the ``gdlab`` entry point); returns the exit code when it does not exit.

    Exit codes: 0 done, 1 a fit diverged, 2 bad input (one line on stderr), 130 interrupted (Ctrl-C), 143
    terminated (SIGTERM). On every one of them, temporary files and folders are removed.
    """
    import signal
    import warnings

    from gdlab._io import SPACE_ERRORS, install_signal_handlers, received_signal

    try:  # typer >= 0.25 vendors click as typer._click
        from typer._click import exceptions as click_exceptions
    except ImportError:  # pragma: no cover
        from click import exceptions as click_exceptions

    args = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in args if not a.startswith("-")), "")
    prefix = f"gdlab {command}".strip() if command in {c.name for c in app.registered_commands} or \
        command in {getattr(c.callback, "__name__", "") for c in app.registered_commands} else "gdlab"
    shown = _OneLineWarnings(prefix)

    def interrupted() -> None:
        shown.held.clear()
        if received_signal() == signal.SIGTERM:
            typer.echo(f"{prefix}: terminated", err=True)
            sys.exit(128 + signal.SIGTERM)
        typer.echo(f"{prefix}: interrupted", err=True)
        sys.exit(130)

    def error_exit(message: str) -> None:
        if received_signal() is not None:  # a signal came while the error was being handled: it is the answer
            raise KeyboardInterrupt
        _error_exit(prefix, message, shown)

    code: Any = 0
    try:
        with install_signal_handlers(), warnings.catch_warnings():
            warnings.showwarning = shown.show
            try:
                code = app(args=args, prog_name="gdlab", standalone_mode=False)
            except click_exceptions.UsageError as exc:
                if not exc.format_message().strip():  # bare `gdlab`: the help was shown
                    return 0
                hint = f" (see {prefix} --help)"
                error_exit(f"{exc.format_message()}{hint}")
            except (UserError, ValueError) as exc:
                from gdlab.report import ReportError

                if isinstance(exc, ReportError) and command in _REPORT_OPTION:
                    exc = ValueError(f"cannot write the report to {exc.folder} ({_REPORT_OPTION[command]}): "
                                     f"{exc.reason}; {exc.advice}.")
                error_exit(str(exc))
            except OSError as exc:
                where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
                if exc.errno in SPACE_ERRORS:
                    error_exit(f"{where}no space left on the device; free some space or write to another "
                               "folder. Nothing was left half-written.")
                error_exit(f"{where}{exc.strerror or exc}; check the path and its permissions.")
            # typer turns KeyboardInterrupt (Ctrl-C, or SIGTERM here) into exit code 130; a signal that was held
            # where it could not be raised (a finaliser swallows exceptions) is acted on here
            if code == 130 or received_signal() is not None:
                raise KeyboardInterrupt
            shown.flush()
    except KeyboardInterrupt:  # wherever it landed, even while the handlers were being set up or put back
        interrupted()
    if received_signal() is not None:
        interrupted()
    if isinstance(code, int) and code != 0:
        sys.exit(code)
    return 0


if __name__ == "__main__":  # pragma: no cover
    main()
