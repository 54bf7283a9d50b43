"""Side by side: gdlab's gradient descent, the closed form, and scikit-learn, on the same data, in one call.

The workshop ends with "feel free to check that this produces the same result": ``gdlab.compare(X, y)`` does it::

    >>> import gdlab
    >>> ds = gdlab.datasets.workshop_line()
    >>> table = gdlab.compare(ds.X, ds.y)
    >>> table.to_frame()[["method", "intercept", "w1", "mse", "gap"]]   # doctest: +SKIP

Every row fits the same unpenalised least-squares problem (the workshop's MSE), so all of them should land on the
closed form's optimum: ``gap`` is each row's MSE minus the optimum's, the honest measure of "the same result".
With ``loss=`` another loss (``"log_loss"``, ``"poisson"``, ``"multinomial"``, ...; no closed form), the rows are
gdlab's optimizers and the reference solvers ``"newton"`` and ``"lbfgs"`` (:mod:`gdlab.solvers`), and ``gap`` is each
row's mean loss minus Newton's certified minimum: Newton's few steps against gradient descent's many, each row's
``result.trajectory`` holding its path. For a classification loss ``methods`` may add scikit-learn's
``"LogisticRegression"`` (lbfgs; log_loss and multinomial) and ``"SGDClassifier"`` (the binary losses), on the same
``penalty`` and ``alpha``. X may be a scipy.sparse matrix or array, never densified.
A :class:`Comparison` renders as a rich table in a terminal (``rich.print(table)``), as HTML in a notebook, and
converts to a pandas DataFrame or a plain dict for scripts.
"""

from __future__ import annotations

import dataclasses
import html
import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gdlab._validation import as_matrix, as_sample_weight, as_target, check_choice
from gdlab.losses import Loss, get_loss

__all__ = ["compare", "Comparison", "ComparisonRow", "METHODS"]

#: what ``compare`` can run, by name
METHODS = ("closed_form", "gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "newton", "lbfgs",
           "LinearRegression", "SGDRegressor", "LogisticRegression", "SGDClassifier")
_GDLAB_OPTIMIZERS = ("gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
_REFERENCE_SOLVERS = ("newton", "lbfgs")  # gdlab.solvers
_LEAST_SQUARES_ONLY = ("closed_form", "LinearRegression", "SGDRegressor")
_LOGISTIC_LOSSES = ("log_loss", "multinomial")  # what LogisticRegression minimises
_SGD_CLASSIFIER_LOSSES = ("log_loss", "hinge", "squared_hinge", "modified_huber", "perceptron")
_DEFAULT_METHODS = ("closed_form", "gd", "momentum", "adam", "LinearRegression", "SGDRegressor")
_DEFAULT_METHODS_OTHER_LOSS = ("gd", "momentum", "adam", "newton", "lbfgs")
_MAX_COEF_COLUMNS = 3  # in the text, rich and HTML tables; to_frame() keeps them all


@dataclass(frozen=True)
class ComparisonRow:
    """One method's fit.

    Attributes
    ----------
    method : str — the name shown ("closed form", "gdlab gd", "scikit-learn SGDRegressor", ...).
    library : str — "gdlab" or "scikit-learn".
    coef : (d,) or (d, k) array; intercept : float or (k,) array.
    mse : float — the workshop's mean squared error (1/n) sum s_i r_i^2 on the data given (NaN for another loss).
    r2 : float — the coefficient of determination (scikit-learn's ``r2_score``, outputs averaged; NaN for another
        loss).
    gap : float — the objective ``loss`` minus the reference's (the closed form's; for another loss Newton's
        certified minimum): >= 0 up to rounding, 0 means the optimum.
    n_iter : int or None — iterations (epochs) run; None for direct solvers.
    seconds : float — wall time of the fit.
    converged : bool — the method's own stop rule was met (direct solvers: True).
    note : str — how the fit ended, or why it was skipped.
    skipped : bool — the method does not apply here (e.g. SGDRegressor on several outputs, newton beyond 4000
        parameters).
    result : gdlab.Result or None — the gdlab optimizers' whole result (its ``extra["diagnosis"]`` says why a
        row did not converge, and what would fix it; ``trajectory`` is each iterate of newton and lbfgs).
    loss : float — the objective (1/n) sum s_i loss(eta_i, y_i) + penalty(w) of the compared loss at the row's
        coefficients, computed here from them, never taken from the method's own report (the MSE for the squared
        error without a penalty).
    """

    method: str
    library: str
    coef: np.ndarray
    intercept: Any
    mse: float
    r2: float
    gap: float
    n_iter: int | None
    seconds: float
    converged: bool
    note: str = ""
    skipped: bool = False
    result: Any = None
    loss: float = math.nan


@dataclass(frozen=True)
class Comparison:
    """The side-by-side table :func:`compare` returns.

    Attributes
    ----------
    rows : list of :class:`ComparisonRow`, in the order run (the closed form first when included).
    feature_names : the coefficient labels (w1, w2, ... or the DataFrame's column names; w0 is the intercept).
    n_samples, n_features, n_outputs : the data's shape.
    optimum_mse : the reference of ``gap``: the closed form's MSE (+ its penalty); for another loss, the minimum of
        its objective (Newton's, when certified; else the smallest of the rows', as ``settings["reference"]`` says:
        so with an L1 term, or beyond 4000 parameters).
    loss : the loss every row minimises ("squared_error" unless ``compare(loss=...)``).
    """

    rows: list[ComparisonRow]
    feature_names: list[str]
    n_samples: int
    n_features: int
    n_outputs: int
    optimum_mse: float
    settings: dict[str, Any] = field(default_factory=dict)
    loss: str = "squared_error"

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, method: str) -> ComparisonRow:
        """A row by its method name ("gdlab gd") or its short name ("gd", "SGDRegressor", "closed_form")."""
        for row in self.rows:
            if method in (row.method, _short(row.method)):
                return row
        names = ", ".join(repr(r.method) for r in self.rows)
        raise KeyError(f"no row {method!r}; the rows are {names}.")

    # ---- data ---------------------------------------------------------------------------------------------
    def _coef_columns(self) -> list[str]:
        if self.n_outputs == 1:
            return list(self.feature_names)
        return [f"{name}[{o}]" for o in range(self.n_outputs) for name in self.feature_names]

    def _intercept_columns(self) -> list[str]:
        return ["intercept"] if self.n_outputs == 1 else [f"intercept[{o}]" for o in range(self.n_outputs)]

    def _flat(self, row: ComparisonRow) -> tuple[list[float], list[float]]:
        coef = np.asarray(row.coef, dtype=float)
        b = np.atleast_1d(np.asarray(row.intercept, dtype=float))
        if self.n_outputs > 1:
            coef = coef.T  # (k, d): all of output 0's weights, then output 1's
        return b.ravel().tolist(), coef.ravel().tolist()

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (JSON-ready; NaN becomes None)."""
        def num(x: Any) -> Any:
            return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else x

        rows = []
        for r in self.rows:
            b, w = self._flat(r)
            rows.append({
                "method": r.method, "library": r.library, "intercept": [num(v) for v in b],
                "coef": [num(v) for v in w], "mse": num(r.mse), "r2": num(r.r2), "loss": num(r.loss), "gap": num(r.gap),
                "n_iter": r.n_iter, "seconds": r.seconds, "converged": r.converged, "note": r.note,
                "skipped": r.skipped,
            })
        return {"n_samples": self.n_samples, "n_features": self.n_features, "n_outputs": self.n_outputs,
                "feature_names": list(self.feature_names), "optimum_mse": num(self.optimum_mse), "loss": self.loss,
                "settings": dict(self.settings), "rows": rows}

    def to_frame(self):
        """One row per method: method, library, intercept, one column per coefficient, mse, r2, loss, gap, n_iter,
        seconds, converged, note (a pandas DataFrame)."""
        import pandas as pd

        records = []
        for r in self.rows:
            b, w = self._flat(r)
            rec: dict[str, Any] = {"method": r.method, "library": r.library}
            rec.update(dict(zip(self._intercept_columns(), b)))
            rec.update(dict(zip(self._coef_columns(), w)))
            rec.update({"mse": r.mse, "r2": r.r2, "loss": r.loss, "gap": r.gap, "n_iter": r.n_iter,
                        "seconds": r.seconds, "converged": r.converged, "note": r.note})
            records.append(rec)
        frame = pd.DataFrame.from_records(records)
        frame["n_iter"] = frame["n_iter"].astype("Int64")
        return frame

    # ---- rendering -------------------------------------------------------------------------------------------
    def _display(self, max_coefs: int = _MAX_COEF_COLUMNS) -> tuple[list[str], list[list[str]], str]:
        """Header, formatted cells and a caption, shared by the text, rich and HTML renderings (short method
        names, 5 significant digits, at most ``max_coefs`` coefficients)."""
        coef_cols = self._coef_columns()
        shown = coef_cols[:max_coefs]
        b_cols = self._intercept_columns()[:1]
        least_squares = self._least_squares
        fit_cols = ["MSE", "R²"] if least_squares else ["loss"]
        header = ["method", *b_cols, *shown, *fit_cols, "gap", "iter", "time"]
        cells = []
        for r in self.rows:
            label = _short(r.method).replace("_", " ")
            if r.skipped:
                cells.append([label] + ["—"] * (len(header) - 1))
                continue
            b, w = self._flat(r)
            cells.append([
                label, *[_fmt(v) for v in b[:1]], *[_fmt(v) for v in w[: len(shown)]],
                *([_fmt(r.mse), _fmt(r.r2)] if least_squares else [_fmt(r.loss)]), _fmt_gap(r.gap),
                "—" if r.n_iter is None else f"{r.n_iter}", _fmt_time(r.seconds),
            ])
        libraries = sorted({r.library for r in self.rows})
        by_lib = "; ".join(f"{lib}: " + ", ".join(_short(r.method).replace("_", " ") for r in self.rows
                                                    if r.library == lib) for lib in libraries)
        penalty = self._penalty_text()
        reference = f"{self.settings.get('reference', 'the reference')} ({self.optimum_mse:.6g})"
        measure = (f"MSE is the workshop's (1/m) Σ r²; gap = MSE{penalty} − {reference}" if least_squares
                   else f"loss is (1/m) Σ {self.loss}(x·w + w0, y){penalty}; gap = loss − {reference}")
        caption = (f"{self.n_samples} samples, {self.n_features} feature(s)"
                   + (f", {self.n_outputs} outputs" if self.n_outputs > 1 else "")
                   + f". {by_lib}. {measure}.")
        hidden = len(coef_cols) - len(shown) + (self.n_outputs - 1)
        if hidden > 0:
            caption += f" {hidden} more coefficient/intercept column(s) in to_frame()."
        notes = [f"{_short(r.method).replace('_', ' ')}: {r.note}." for r in self.rows
                 if r.note and (r.skipped or not r.converged)]
        if notes:
            caption += " Not converged or skipped — " + " ".join(notes)
        return header, cells, caption

    def _penalty_text(self) -> str:
        """' + the penalty' as the objective adds it, or '' without one."""
        alpha, penalty = self.settings.get("alpha"), self.settings.get("penalty")
        if alpha is None or penalty is None:
            return ""
        if penalty == "l2":
            return f" + (alpha/2) |w|² (alpha={alpha:g})"
        if penalty == "l1":
            return f" + alpha |w|₁ (alpha={alpha:g})"
        ratio = self.settings.get("l1_ratio")
        return f" + alpha (ρ |w|₁ + (1 − ρ)/2 |w|²) (alpha={alpha:g}, ρ = l1_ratio = {ratio:g})"

    @property
    def _least_squares(self) -> bool:
        return bool(self.settings.get("least_squares", True))

    def _title(self) -> str:
        problem = "least-squares" if self._least_squares else self.loss
        return f"gdlab.compare: one {problem} problem, several solvers"

    def __str__(self) -> str:
        header, cells, caption = self._display()
        widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
        line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
        body = ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
        return "\n".join([line, "-" * len(line), *body, "", caption])

    def __repr__(self) -> str:
        methods = ", ".join(r.method for r in self.rows)
        return (f"Comparison({self.n_samples} samples x {self.n_features} features; optimum MSE "
                f"{self.optimum_mse:.6g}; rows: {methods})")

    def __rich__(self, width: int | None = None):
        """A rich Table, for ``rich.print(comparison)`` or a rich Console. Numbers are never cut: coefficient
        columns are left out (to_frame() has them all) until the table fits ``width`` (default: the width of
        rich's console)."""
        from rich import get_console
        from rich.table import Table

        width = get_console().width if width is None else int(width)
        for max_coefs in range(_MAX_COEF_COLUMNS, -1, -1):
            header, cells, caption = self._display(max_coefs)
            widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
            if sum(widths) + 2 * (len(widths) - 1) <= width:
                break
        table = Table(title=self._title(), caption=caption,
                      caption_justify="left", box=None, pad_edge=False, header_style="bold underline")
        for i, h in enumerate(header):
            table.add_column(h, justify="left" if i == 0 else "right", no_wrap=True, min_width=widths[i])
        for r, row in zip(self.rows, cells):
            style = "dim" if r.skipped else ("yellow" if not r.converged else None)
            table.add_row(*row, style=style)
        return table

    def _repr_html_(self) -> str:
        """A self-contained HTML table for notebooks (inline styles only; rows that did not converge are shaded,
        hovering a row shows how its fit ended)."""
        header, cells, caption = self._display()
        cell = "padding:3px 10px;text-align:{align};white-space:nowrap"
        th = "".join(f"<th style='{cell.format(align='left' if i == 0 else 'right')};border-bottom:1px solid #888'>"
                     f"{html.escape(h)}</th>" for i, h in enumerate(header))
        body = []
        for r, row in zip(self.rows, cells):
            style = " style='color:#888'" if r.skipped else (" style='background:#fff3c4'" if not r.converged else "")
            tds = "".join(f"<td style='{cell.format(align='left' if i == 0 else 'right')}'>{html.escape(c)}</td>"
                          for i, c in enumerate(row))
            body.append(f"<tr{style} title='{html.escape(r.note, quote=True)}'>{tds}</tr>")
        return ("<table class='gdlab-comparison' style='border-collapse:collapse;font-variant-numeric:tabular-nums'>"
                "<caption style='caption-side:top;text-align:left;font-weight:bold;padding:4px 0'>"
                f"{html.escape(self._title())}</caption>"
                f"<thead><tr>{th}</tr></thead><tbody>{''.join(body)}</tbody>"
                f"<tfoot><tr><td colspan='{len(header)}' style='padding:6px 10px 0;color:#555;font-size:90%;"
                f"white-space:normal;max-width:60em'>{html.escape(caption)}</td></tr></tfoot></table>")


def _short(method: str) -> str:
    return method.split(" ", 1)[1] if method.startswith(("gdlab ", "scikit-learn ")) else method.replace(" ", "_")


def _fmt(v: float, digits: int = 5) -> str:
    if v is None or not math.isfinite(v):
        return "nan" if v is None or math.isnan(v) else ("inf" if v > 0 else "-inf")
    return f"{v:.{digits}g}"


def _fmt_gap(v: float) -> str:
    if not math.isfinite(v):
        return _fmt(v)
    return "0" if abs(v) < 5e-16 else f"{v:.1e}"


def _fmt_time(s: float) -> str:
    ms = s * 1e3
    if ms < 10:
        return f"{ms:.2g} ms"
    return f"{ms:.0f} ms" if ms < 1000 else f"{s:.3g} s"


#: LogisticRegression's gradient tolerance: tight, so that its row is scikit-learn's minimum, not an early stop
_LOGISTIC_TOL = 1e-12
#: LinearRegression's lsqr tolerance (atol = btol) on a sparse X (a dense X is solved by lstsq, without one)
_LSQR_TOL = 1e-12


def compare(X: Any, y: Any, *, methods: Sequence[str] | None = None, learning_rate: Any = "auto",
            max_iter: int = 1000, tol: float | None = 1e-10, fit_intercept: bool = True, sample_weight: Any = None,
            random_state: int | None = 0, feature_names: Sequence[str] | None = None,
            standardize: bool | str = "auto", loss: str | Loss = "squared_error", penalty: str | None = None,
            alpha: float = 0.0001, l1_ratio: float = 0.15) -> Comparison:
    """Fit the same problem several ways and put the results side by side.

    Every row minimises F(w, b) = (1/n) sum_i s_i loss(x_i . w + b, y_i) + penalty(w), n = sum_i s_i (the
    workshop's MSE by default); ``gap`` is each row's F minus the reference's.

    Parameters
    ----------
    X : (m, d) array-like, DataFrame, or scipy.sparse matrix/array (CSR, CSC, COO, ...: read as CSR and never
        densified; the closed form solves the sparse normal equations or LSMR, the gdlab optimizers read the stored
        entries, the reference solvers too).
    y : (m,) or (m, k).
    methods : names from :data:`METHODS`; default: the closed form, gdlab's gd, momentum and adam, scikit-learn's
        LinearRegression and SGDRegressor (for another loss: gd, momentum, adam, newton and lbfgs; for a
        classification loss also scikit-learn's rows: "LogisticRegression" for loss="log_loss" or "multinomial"
        without an L1 part, "SGDClassifier" for the binary losses). "newton" and "lbfgs" are the reference solvers
        of :mod:`gdlab.solvers`, whose trajectories record every iterate.
    learning_rate : the gdlab optimizers' step ("auto": from the curvature, see :func:`gdlab.descend`).
    max_iter, tol : the gdlab optimizers' and the reference solvers' limits. max_iter is also LogisticRegression's
        (its tol is 1e-12, on the gradient); SGDRegressor and SGDClassifier keep their own defaults (max_iter=1000,
        tol=1e-3; SGDClassifier's learning_rate="optimal").
    fit_intercept, sample_weight : the model, for every method.
    random_state : seeds SGDRegressor's and SGDClassifier's shuffling.
    feature_names : coefficient labels (default: the DataFrame's columns, else w1, w2, ...: the workshop's w, whose
        w0 is the intercept).
    standardize : the gdlab optimizers' coordinates, as in :func:`gdlab.descend` ("auto": standardized with
        learning_rate="auto"; each row's note says how it ended); lbfgs runs standardized unless it is False.
    loss : the loss every row minimises, a name of :data:`gdlab.losses.LOSSES` or a Loss ("squared_error", the
        workshop's MSE, by default). Another loss has no closed form: the closed form, LinearRegression and
        SGDRegressor are refused, and the reference of ``gap`` is Newton's certified minimum (one Newton fit, reused
        as the "newton" row); y as that loss reads it (0/1 or -1/+1 labels, counts, one-hot classes).
    penalty, alpha, l1_ratio : the penalty of every row, as in :func:`gdlab.descend` (None by default; "l2" is
        alpha/2 |w|^2, "l1" alpha |w|_1, "elasticnet" both). scikit-learn's rows get the same objective:
        LogisticRegression's C = 1/(alpha n), SGDClassifier's alpha as given, SGDRegressor's alpha / 2 (its squared
        error is r^2/2). The closed form takes "l2" only, LinearRegression no penalty, newton and lbfgs no L1 part.

    Returns
    -------
    Comparison
    """
    from sklearn.metrics import r2_score

    import gdlab

    from gdlab import solvers
    from gdlab.objectives import make_penalty

    loss_obj = get_loss(loss)
    pen = make_penalty(penalty, alpha, l1_ratio)
    least_squares = loss_obj.quadratic  # the one loss with a closed form
    if methods is None:
        methods = _DEFAULT_METHODS if least_squares else _DEFAULT_METHODS_OTHER_LOSS
        if not loss_obj.smooth or pen.l1:  # the reference solvers need a second derivative
            methods = tuple(mth for mth in methods if mth not in _REFERENCE_SOLVERS)
        methods = tuple(mth for mth in methods if not (mth == "closed_form" and pen.l1)
                        and not (mth == "LinearRegression" and pen.active))
        # a classification loss races scikit-learn too, as least squares races LinearRegression and SGDRegressor:
        # LogisticRegression where it minimises the same objective, SGDClassifier for its own (binary) losses
        if loss_obj.name in ("log_loss", "multinomial") and not pen.l1:
            methods += ("LogisticRegression",)
        if loss_obj.task == "binary":
            methods += ("SGDClassifier",)
    methods = list(methods)
    for name in methods:
        check_choice("method", name, METHODS)
        _check_method_applies(name, loss_obj, pen, penalty, least_squares)
    if feature_names is None and hasattr(X, "columns"):
        feature_names = [str(c) for c in X.columns]
    Xa = as_matrix(X, accept_sparse=True)
    sparse = not isinstance(Xa, np.ndarray)
    ya = as_target(y, Xa.shape[0])
    sw = as_sample_weight(sample_weight, Xa.shape[0])
    m, d = Xa.shape
    k = 1 if ya.ndim == 1 else ya.shape[1]
    if feature_names is None:
        feature_names = [f"w{j + 1}" for j in range(d)]
    feature_names = [str(f) for f in feature_names]
    if len(feature_names) != d:
        raise ValueError(f"feature_names has {len(feature_names)} names but X has {d} columns; give one per column.")
    weights = np.ones(m) if sw is None else sw

    def predictor(coef: Any, intercept: Any) -> np.ndarray:
        return Xa @ np.asarray(coef, dtype=float) + np.asarray(intercept, dtype=float)  # a sparse X stays sparse

    def mse_of(coef: Any, intercept: Any) -> tuple[float, float]:
        pred = predictor(coef, intercept)
        r = pred - ya
        sq = r * r if r.ndim == 1 else (r * r).sum(axis=1)
        return float(np.dot(weights, sq) / weights.sum()), float(r2_score(ya, pred, sample_weight=sw))

    def loss_of(coef: Any, intercept: Any) -> float:
        """The mean loss at these coefficients, computed here (not taken from each method's own report)."""
        eta = predictor(coef, intercept)
        values = loss_obj.value(eta.reshape(Y.shape), Y)
        return float(np.dot(weights, values if values.ndim == 1 else values.sum(axis=1)) / weights.sum())

    rows: list[ComparisonRow] = []
    reference_fit = None
    penalty_options = {"penalty": penalty, "alpha": alpha, "l1_ratio": l1_ratio}
    if least_squares:
        opt_mse, reference = math.nan, "the smallest objective of the rows (no closed form with an L1 term)"
        if not pen.l1:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", gdlab.RankDeficiencyWarning)
                exact = gdlab.closed_form(Xa, ya, fit_intercept=fit_intercept, sample_weight=sw, l2=pen.l2)
            exact_seconds = time.perf_counter() - t0
            opt_mse = mse_of(exact.coef, exact.intercept)[0] + pen.value(np.asarray(exact.coef, dtype=float))
            reference = "the closed form's MSE" if not pen.active else "the closed form's objective"
    else:
        Y = loss_obj.prepare_target(ya.reshape(-1, 1) if ya.ndim == 1 else ya)
        reference = f"the smallest loss of the rows (the {loss_obj.name} loss is not smooth: no certified minimum)"
        opt_mse = math.nan
        if loss_obj.smooth and pen.l1:
            reference = "the smallest objective of the rows (an L1 term: no certified minimum)"
        elif loss_obj.smooth and (Xa.shape[1] + int(fit_intercept)) * Y.shape[1] > solvers.MAX_HESSIAN_PARAMETERS:
            reference = (f"the smallest loss of the rows (more than {solvers.MAX_HESSIAN_PARAMETERS} parameters: no "
                         "dense Hessian, no Newton certificate)")
        elif loss_obj.smooth:
            t0 = time.perf_counter()
            reference_fit = solvers.newton(Xa, ya, loss=loss_obj, fit_intercept=fit_intercept, sample_weight=sw,
                                           tol=tol, max_iter=max_iter, warn=False, **penalty_options)
            reference_seconds = time.perf_counter() - t0
            if reference_fit.converged:
                opt_mse = loss_of(reference_fit.coef, reference_fit.intercept) + pen.value(reference_fit.coef)
                reference = "Newton's certified minimum"
            else:
                reference = f"the smallest loss of the rows (Newton certified no minimum: {reference_fit.message})"

    def add(method: str, library: str, coef: Any, intercept: Any, n_iter: int | None, seconds: float,
            converged: bool, note: str = "", result: Any = None) -> None:
        coef = np.asarray(coef, dtype=float)
        if least_squares:
            mse, r2 = mse_of(coef, intercept)
            value = mse + pen.value(coef)
        else:
            mse = r2 = math.nan
            value = loss_of(coef, intercept) + pen.value(coef)
        rows.append(ComparisonRow(method, library, coef, intercept, mse, r2, value - opt_mse,
                                  n_iter, seconds, converged, note, result=result, loss=value))

    def skip(method: str, library: str, note: str) -> None:
        coef_shape = (d,) if k == 1 else (d, k)
        rows.append(ComparisonRow(method, library, np.full(coef_shape, np.nan),
                                  math.nan if k == 1 else np.full(k, np.nan), math.nan, math.nan, math.nan, None,
                                  0.0, False, f"skipped: {note}", skipped=True))

    for name in methods:
        if name == "closed_form":
            add("closed form", "gdlab", exact.coef, exact.intercept, None, exact_seconds, True, exact.message)
        elif name in _GDLAB_OPTIMIZERS:
            t0 = time.perf_counter()
            res = gdlab.descend(Xa, ya, optimizer=name, learning_rate=learning_rate, max_iter=max_iter, tol=tol,
                                fit_intercept=fit_intercept, sample_weight=sw, warn=False, record_every=max_iter,
                                standardize=standardize, loss=loss_obj, **penalty_options)
            add(f"gdlab {name}", "gdlab", res.coef, res.intercept, res.n_iter, time.perf_counter() - t0,
                res.converged, res.extra.get("summary", res.message), result=res)
        elif name in _REFERENCE_SOLVERS:
            if name == "newton" and (Xa.shape[1] + int(fit_intercept)) * k > solvers.MAX_HESSIAN_PARAMETERS:
                skip(f"gdlab {name}", "gdlab", f"more than {solvers.MAX_HESSIAN_PARAMETERS} parameters: Newton's "
                     "dense Hessian is not formed (lbfgs needs only gradients)")
                continue
            t0 = time.perf_counter()
            if name == "newton" and reference_fit is not None:
                res, seconds = reference_fit, reference_seconds
            else:
                options = {} if name == "newton" else {"standardize": standardize is not False}
                res = solvers.SOLVERS[name](Xa, ya, loss=loss_obj, fit_intercept=fit_intercept, sample_weight=sw,
                                            tol=tol, max_iter=max_iter, warn=False, **penalty_options, **options)
                seconds = time.perf_counter() - t0
            add(f"gdlab {name}", "gdlab", res.coef, res.intercept, res.n_iter, seconds, res.converged, res.message,
                result=res)
        elif name == "LinearRegression":
            from sklearn.linear_model import LinearRegression

            t0 = time.perf_counter()
            lr = LinearRegression(fit_intercept=fit_intercept, tol=_LSQR_TOL).fit(Xa, ya, sample_weight=sw)
            coef = lr.coef_ if k == 1 else lr.coef_.T
            add("scikit-learn LinearRegression", "scikit-learn", coef, lr.intercept_, None,
                time.perf_counter() - t0, True,
                f"scipy.sparse.linalg.lsqr (atol = btol = {_LSQR_TOL:g})" if sparse else "scipy.linalg.lstsq")
        elif name == "SGDRegressor":
            from sklearn.linear_model import SGDRegressor

            if k > 1:
                skip("scikit-learn SGDRegressor", "scikit-learn", "SGDRegressor fits one output only")
                continue
            sgd = SGDRegressor(**_sgd_penalty(pen, penalty, alpha, l1_ratio, loss_obj), fit_intercept=fit_intercept,
                               random_state=random_state)
            fit = _fit_sgd(sgd, Xa, ya, sw, sparse)
            add("scikit-learn SGDRegressor", "scikit-learn", sgd.coef_, float(sgd.intercept_[0]), int(sgd.n_iter_),
                fit["seconds"], fit["converged"], fit["note"])
        elif name == "SGDClassifier":
            from sklearn.linear_model import SGDClassifier

            if loss_obj.coupled:
                skip("scikit-learn SGDClassifier", "scikit-learn", "SGDClassifier fits K one-vs-rest binary models, "
                     "not the softmax")
                continue
            if k > 1:
                skip("scikit-learn SGDClassifier", "scikit-learn", "SGDClassifier fits one binary output only here")
                continue
            sgd = SGDClassifier(loss=loss_obj.name, **_sgd_penalty(pen, penalty, alpha, l1_ratio, loss_obj),
                                fit_intercept=fit_intercept, random_state=random_state)
            fit = _fit_sgd(sgd, Xa, (Y[:, 0] > 0).astype(int), sw, sparse)  # classes_ [0, 1]: coef_ is +1's
            add("scikit-learn SGDClassifier", "scikit-learn", sgd.coef_[0], float(sgd.intercept_[0]),
                int(sgd.n_iter_), fit["seconds"], fit["converged"], fit["note"])
        else:  # LogisticRegression
            fit = _fit_logistic_regression(Xa, Y, sw, loss_obj.coupled, pen.l2, fit_intercept, max_iter)
            if "skipped" in fit:
                skip("scikit-learn LogisticRegression", "scikit-learn", fit["skipped"])
                continue
            add("scikit-learn LogisticRegression", "scikit-learn", fit["coef"], fit["intercept"], fit["n_iter"],
                fit["seconds"], fit["converged"], fit["note"])

    if not math.isfinite(opt_mse):  # no certified minimum: the best row is the reference
        opt_mse = min((r.loss for r in rows if math.isfinite(r.loss)), default=math.nan)
        rows = [dataclasses.replace(r, gap=r.loss - opt_mse) for r in rows]
    return Comparison(rows=rows, feature_names=feature_names, n_samples=m, n_features=d, n_outputs=k,
                      optimum_mse=opt_mse,
                      settings={"learning_rate": learning_rate if isinstance(learning_rate, (str, int, float))
                                else repr(learning_rate), "max_iter": max_iter, "tol": tol,
                                "fit_intercept": fit_intercept, "weighted": sw is not None,
                                "least_squares": least_squares, "reference": reference, "penalty": penalty,
                                "alpha": alpha if pen.active else None,
                                "l1_ratio": l1_ratio if penalty == "elasticnet" else None, "sparse": sparse},
                      loss=loss_obj.name)


def _check_method_applies(name: str, loss_obj: Loss, pen: Any, penalty: str | None, least_squares: bool) -> None:
    """One clear error for a method that cannot minimise this objective."""
    if not least_squares and name in _LEAST_SQUARES_ONLY:
        valid = ", ".join(repr(v) for v in (*_GDLAB_OPTIMIZERS, *_REFERENCE_SOLVERS, *_classifier_rows(loss_obj)))
        raise ValueError(f"method {name!r} fits least squares only, not loss={loss_obj.name!r}; with that loss "
                         f"choose from {valid}.")
    if name == "closed_form" and pen.l1:
        raise ValueError(f"method 'closed_form' solves least squares with penalty None or 'l2', not "
                         f"penalty={penalty!r} (an L1 part has no closed form); drop it from methods.")
    if name == "LinearRegression" and pen.active:
        raise ValueError(f"method 'LinearRegression' fits no penalty, not penalty={penalty!r}; drop it from methods "
                         "(the closed form takes penalty='l2').")
    if name in _REFERENCE_SOLVERS and pen.l1:
        raise ValueError(f"method {name!r} needs a smooth objective: penalty={penalty!r} has an L1 part; use "
                         "penalty='l2' or None, or drop it from methods.")
    if name == "LogisticRegression":
        if loss_obj.name not in _LOGISTIC_LOSSES or loss_obj != get_loss(loss_obj.name):
            raise ValueError(f"method 'LogisticRegression' minimises loss='log_loss' or 'multinomial', not "
                             f"loss={loss_obj!r}; choose one of those or drop it from methods.")
        if pen.l1:
            raise ValueError(f"method 'LogisticRegression' runs lbfgs here, with penalty None or 'l2', not "
                             f"penalty={penalty!r}; drop it from methods.")
    if name == "SGDClassifier" and not (loss_obj.name in _SGD_CLASSIFIER_LOSSES + ("multinomial",)
                                        and loss_obj == get_loss(loss_obj.name)):
        listed = ", ".join(repr(v) for v in _SGD_CLASSIFIER_LOSSES)
        raise ValueError(f"method 'SGDClassifier' minimises the classification losses {listed}, not "
                         f"loss={loss_obj!r}; choose one of those or drop it from methods.")


def _classifier_rows(loss_obj: Loss) -> tuple[str, ...]:
    """scikit-learn's rows that can minimise this loss."""
    names = ("LogisticRegression",) if loss_obj.name in _LOGISTIC_LOSSES else ()
    return names + (("SGDClassifier",) if loss_obj.name in _SGD_CLASSIFIER_LOSSES else ())


def _sgd_penalty(pen: Any, penalty: str | None, alpha: float, l1_ratio: float, loss_obj: Loss) -> dict[str, Any]:
    """SGDRegressor's / SGDClassifier's penalty, alpha and l1_ratio for gdlab's objective. Their loss is gdlab's
    divided by ``sklearn_ratio`` (the squared error's r^2/2 is half the workshop's r^2), so is their alpha. Without
    a penalty they keep their default alpha=0.0001, which then sets only their learning rate ("optimal":
    1/(alpha (t + t0)); it must be > 0)."""
    if not pen.active:
        return {"penalty": None}
    return {"penalty": penalty, "alpha": alpha / loss_obj.sklearn_ratio, "l1_ratio": l1_ratio}


def _fit_sgd(sgd: Any, Xa: Any, target: np.ndarray, sw: np.ndarray | None, sparse: bool) -> dict[str, Any]:
    """Fit SGDRegressor or SGDClassifier as it comes, recording whether it met its own stop rule."""
    from sklearn.exceptions import ConvergenceWarning

    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        sgd.fit(Xa, target, sample_weight=sw)
    seconds = time.perf_counter() - t0
    unconverged = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    note = ("max_iter reached (ConvergenceWarning)" if unconverged
            else f"stopped by its tol={sgd.tol:g} rule on the running loss")
    if sparse:  # scikit-learn's SGD on sparse X moves the intercept by 0.01 of the step (SPARSE_INTERCEPT_DECAY)
        note += "; on sparse X its intercept steps are damped by 0.01, so its path differs from the dense fit's"
    return {"seconds": seconds, "converged": not unconverged, "note": note}


def _fit_logistic_regression(Xa: Any, Y: np.ndarray, sw: np.ndarray | None, multinomial: bool, l2: float,
                             fit_intercept: bool, max_iter: int) -> dict[str, Any]:
    """scikit-learn's LogisticRegression(lbfgs) on gdlab's objective (1/n) sum s_i loss_i + l2/2 |w|^2.

    scikit-learn minimises C sum s_i loss_i + 1/2 |w|^2, the same minimiser for C = 1/(l2 n), n = sum s_i
    (C = inf without a penalty). With two classes it fits one logistic model w; the softmax's minimiser is the
    symmetric pair (-w/2, w/2), whose penalty l2/2 (2 |w/2|^2) is half the binary one's, hence C doubled.
    Y is the loss's prepared target: -1/+1 (m, 1), or one-hot (m, K) for the softmax.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    n = float(Y.shape[0] if sw is None else sw.sum())
    K = Y.shape[1]
    if multinomial:
        labels = Y.argmax(axis=1)
        missing = sorted(set(range(K)) - set(np.unique(labels).tolist()))
        if missing:
            return {"skipped": f"class column(s) {missing} of the one-hot target have no sample, and "
                               "LogisticRegression fits only the classes it sees"}
    else:
        labels = (Y[:, 0] > 0).astype(int)  # classes_ [0, 1]: coef_ is class +1's
    two_classes = multinomial and K == 2
    C = math.inf if l2 == 0 else (2.0 if two_classes else 1.0) / (l2 * n)
    lr = LogisticRegression(C=C, solver="lbfgs", tol=_LOGISTIC_TOL, max_iter=max_iter, fit_intercept=fit_intercept)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        lr.fit(Xa, labels, sample_weight=sw)
    seconds = time.perf_counter() - t0
    unconverged = any(issubclass(w.category, ConvergenceWarning) for w in caught)
    W = np.asarray(lr.coef_, dtype=float)
    b = np.broadcast_to(np.asarray(lr.intercept_, dtype=float), (W.shape[0],))
    if not multinomial:
        coef, intercept = W[0], float(b[0])
    elif two_classes:
        coef, intercept = np.column_stack([-W[0] / 2, W[0] / 2]), np.array([-b[0] / 2, b[0] / 2])
    else:
        coef, intercept = W.T, b.copy()
    note = (f"lbfgs, tol={_LOGISTIC_TOL:g}, C={C:.6g}" + (" = 1/(alpha n)" if l2 and not two_classes else "")
            + (" = 2/(alpha n): two classes as the binary model, written as the softmax's pair (-w/2, w/2)"
               if two_classes and l2 else "")
            + ("; max_iter reached (ConvergenceWarning)" if unconverged else ""))
    return {"coef": coef, "intercept": intercept, "n_iter": int(np.max(lr.n_iter_)), "seconds": seconds,
            "converged": not unconverged, "note": note}
