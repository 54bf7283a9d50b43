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


def _load(data: Path, target: Optional[str], features: Optional[str], min_rows: int = 1,
          command: str = "") -> Any:
    from gdlab.io import load_table

    if target is None:
        raise UserError("--target is missing: name the column to predict, e.g. --target y.")
    table = load_table(data, target, _split(features))
    if table.n_samples < min_rows:
        raise UserError(f"{data} has {table.n_samples} row of data; gdlab {command} needs at least {min_rows} "
                        "(R\u00b2 and scikit-learn's fits are not defined on fewer); add rows.")
    return table


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


def _fit_table(result: Any, names: list[str], target: str, data: str) -> Any:
    from rich.table import Table

    t = Table(title=f"gdlab fit: {target} ~ {', '.join(names[:6])}{', ...' if len(names) > 6 else ''}",
              show_header=True, header_style="bold")
    t.add_column("term")
    t.add_column("value", justify="right")
    t.add_row("intercept", f"{float(result.intercept):.8g}")
    for n, c in zip(names, [float(v) for v in result.coef]):
        t.add_row(n, f"{c:.8g}")
    t.add_section()
    status = "[red]diverged[/red]" if result.diverged else ("yes" if result.converged else "[yellow]no[/yellow]")
    from gdlab.descent import format_distinct
    t.add_row("loss (MSE)", f"{result.loss:.8g}" if math.isfinite(result.loss) else str(result.loss))
    t.add_row("iterations", str(result.n_iter))
    t.add_row("converged", status)
    curv = result.curvature
    if curv is not None:
        where = " (standardized)" if result.scaling == "standardize" else ""
        eta = result.learning_rate if math.isfinite(result.learning_rate) else curv.stable_step
        stable, used = format_distinct(curv.stable_step, eta, digits=6)
        t.add_row(f"stable bound 2/L{where}", stable)
        t.add_row(f"learning rate used{where}", used if math.isfinite(result.learning_rate) else "–")
    if result.gap is not None and math.isfinite(result.gap):
        t.add_row("gap to the minimum", f"{result.gap:.3g}")
    t.add_row("source", result.source)
    t.add_row("features", "standardized for the descent" if result.scaling == "standardize" else "raw")
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
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the report's path.")] = False,
) -> None:
    """Reproduce every figure of the workshop, answer its tasks, and write a self-contained HTML report."""
    from gdlab.report import write_workshop_report
    from gdlab.workshop import run_workshop

    _check_report_dir(out, "--out")
    t0 = time.perf_counter()
    console = _console()
    if quiet:
        ws = run_workshop()
        report = write_workshop_report(ws, out, gif=gif)
    else:
        with console.status("Running the workshop: fits, sweep, figures..."):
            ws = run_workshop()
            report = write_workshop_report(ws, out, gif=gif)
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
                                         "is streamed).", show_default=False)],
    target: Annotated[Optional[str], typer.Option("--target", "-t", help="Column to predict.")] = None,
    features: Annotated[Optional[str], typer.Option("--features", "-f", help="Feature columns, comma-separated "
                                                    "(default: all but the target).")] = None,
    optimizer: Annotated[str, typer.Option(help="gd, momentum, nesterov, adagrad, rmsprop or adam.")] = "gd",
    lr: Annotated[str, typer.Option("--lr", help="Learning rate eta (> 0), or 'auto' (2/(L+mu) for gd).")] = "auto",
    iters: Annotated[int, typer.Option("--iters", help="Maximum number of iterations (epochs).")] = 1000,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Rows per mini-batch (default: full "
                                                      "batch).")] = None,
    loss: Annotated[str, typer.Option(help="squared_error, huber, epsilon_insensitive or "
                                      "squared_epsilon_insensitive.")] = "squared_error",
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
    """Fit a linear model to a data file by gradient descent (or the closed form), and print what happened."""
    from gdlab.objectives import LOSSES, PENALTIES
    from gdlab.optimizers import OPTIMIZERS

    _check_format(fmt)
    if solver not in SOLVERS:
        raise UserError(f"--solver must be one of {', '.join(SOLVERS)}, got {solver!r}.")
    if optimizer not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {optimizer!r}; --optimizer must be one of {', '.join(OPTIMIZERS)}.")
    if loss not in LOSSES:
        raise UserError(f"unknown loss {loss!r}; --loss must be one of {', '.join(LOSSES)}.")
    pen = None if penalty.lower() == "none" else penalty
    if pen not in PENALTIES:
        raise UserError(f"unknown penalty {penalty!r}; --penalty must be one of none, l2, l1, elasticnet.")
    learning_rate = _parse_lr(lr)
    _positive_int(iters, "--iters", "1000")
    _positive_int(batch_size, "--batch-size", "32")
    _check_random_state(random_state)
    if alpha < 0 or not math.isfinite(alpha):
        raise UserError(f"--alpha must be >= 0, got {alpha}.")
    if tol < 0 or not math.isfinite(tol):
        raise UserError(f"--tol must be >= 0, got {tol}.")
    _check_writable_file(save, "--save")
    _check_report_dir(report, "--report")
    if target is None:
        raise UserError("--target is missing: name the column to predict, e.g. --target y.")

    streaming = stream or scheduler is not None or data.is_dir()
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
            except BaseException:
                rows_bar.close()
                raise
            names = list(getattr(source, "feature_names", None) or
                         [f"x{j}" for j in range(source.n_features)])
            try:
                if solver == "closed-form":
                    result = scale_closed_form(source)
                else:
                    result = gdlab.descend(source, None, callback=progress, **descend_kw)
            finally:
                rows_bar.close()
                if hasattr(source, "close"):  # a Dask source opened with a scheduler address owns its client
                    source.close()
        else:
            table = _load(data, target, features)
            X, y, names = table.X, table.y, table.feature_names
            if X.shape[1] == 0 and not fit_intercept:
                raise UserError("there are no feature columns and --no-intercept: nothing to fit; add features.")
            if solver == "closed-form":
                result = gdlab.closed_form(X, y, fit_intercept=fit_intercept)
            else:
                result = gdlab.descend(X, y, callback=progress, fit_intercept=fit_intercept, **descend_kw)
    finally:
        progress.close()

    if save is not None:
        from gdlab._io import atomic_write_text

        model = {
            "format": "gdlab-model", "version": 1, "target": target, "features": names,
            "coef": [float(v) for v in result.coef], "intercept": float(result.intercept),
            "settings": {"data": str(data), "solver": solver, "optimizer": optimizer, "learning_rate": lr,
                         "max_iter": iters, "batch_size": batch_size, "loss": loss, "penalty": pen, "alpha": alpha,
                         "l1_ratio": l1_ratio, "tol": tol, "standardize": result.scaling == "standardize",
                         "fit_intercept": fit_intercept, "random_state": random_state},
            "result": result.to_dict(trajectory=True),
        }
        atomic_write_text(save, json.dumps(model, indent=1))
    if report is not None:
        from gdlab.report import write_fit_report

        advice = _cli_warning(result, "fit")
        write_fit_report(result, report, X=X, y=y, feature_names=names, target_name=target, data_name=str(data),
                         advice=None if advice is None else "Try " + advice.split("; try ", 1)[1]
                         if "; try " in advice else None)

    if fmt == "json":
        typer.echo(json.dumps(result.to_dict(trajectory=False)))
    else:
        console = _console()
        console.print(_fit_table(result, names, target, str(data)))
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
    if version != 1:
        raise UserError(f"{model}: model format version {json.dumps(version)} is not one this gdlab reads (1); "
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
    if len(coef) != len(features):
        raise UserError(f"{model}: \"coef\" has {len(coef)} values but \"features\" names {len(features)} "
                        f"columns; a model has one coefficient per feature. {MODEL_FIX}.")
    spec["coef"] = [_model_number(model, c, f"the coefficient of {f!r}") for c, f in zip(coef, features)]
    spec["intercept"] = _model_number(model, spec["intercept"], "the intercept")
    target = spec.get("target")
    if target is not None and not isinstance(target, str):
        raise UserError(f"{model}: \"target\" must be a column name, got {json.dumps(target)[:80]}; {MODEL_FIX}.")
    return spec


@app.command(epilog="Example: [bold]gdlab predict model.json new.csv --out predictions.csv[/bold]")
def predict(
    model: Annotated[Path, typer.Argument(help="A model saved by gdlab fit --save.", show_default=False)],
    data: Annotated[Path, typer.Argument(help="CSV, Parquet, .npy or .npz file with the model's feature "
                                         "columns.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the predictions to this CSV file "
                                                "(default: print them).")] = None,
) -> None:
    """Predict with a saved model: one value per row of DATA."""
    import numpy as np

    from gdlab._io import atomic_write_text
    from gdlab.io import load_columns

    if out is not None and out.suffix.lower() not in (".csv", ".txt", ""):
        raise UserError(f"--out {out}: predictions are written as CSV; give a .csv file name.")
    _check_writable_file(out, "--out")
    spec = _read_model(model)
    X, _ = load_columns(data, spec["features"])
    with np.errstate(all="ignore"):
        pred = X @ np.asarray(spec["coef"], dtype=float) + float(spec["intercept"])
    bad = np.flatnonzero(~np.isfinite(pred))
    if bad.size:
        raise UserError(f"{data}: the prediction for row {int(bad[0])} overflows float64 ({pred[bad[0]]}); the "
                        "data are far outside the range the model was fitted on: rescale them as the training data.")
    name = f"{spec.get('target') or 'y'}_predicted"
    text = name + "\n" + "\n".join(repr(float(v)) for v in pred) + "\n"
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
    table = _load(data, target, features)
    console = _console()
    if quiet or fmt == "json":
        res = run_sweep(table.X, table.y, lrs, its, optimizer=optimizer, standardize=standardize)
    else:
        with _console(stderr=True).status(f"{len(lrs)} runs of up to {int(its.max())} iterations..."):
            res = run_sweep(table.X, table.y, lrs, its, optimizer=optimizer, standardize=standardize)
    if plot is not None:
        from gdlab.plots import save_figure, sweep_heatmap_figure

        save_figure(sweep_heatmap_figure(res), plot)
    if fmt == "json":
        typer.echo(json.dumps(res.to_dict()))
        return
    from rich.table import Table

    t = Table(title=f"Final MSE of {optimizer} on {data.name} ({table.target_name})", header_style="bold")
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
    console.print(f"2/L = {stable:.4g}: steps at or above it diverge (the line across the table); best constant "
                  f"step 2/(L+mu) = {res.best_step:.4g}" + (f"; minimum MSE {res.optimum_loss:.6g}."
                                                            if res.optimum_loss is not None else "."), soft_wrap=True)
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
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """gdlab's gradient descent beside the Normal Equation and scikit-learn, on your data."""
    _check_format(fmt)
    _positive_int(iters, "--iters", "1000")
    if tol < 0 or not math.isfinite(tol):
        raise UserError(f"--tol must be >= 0, got {tol}.")
    table = _load(data, target, features, min_rows=2, command="compare")
    from gdlab.compare import compare

    obj = compare(table.X, table.y, max_iter=iters, tol=tol, standardize=standardize,
                  feature_names=table.feature_names)
    frame = obj.to_frame()
    if fmt == "json":
        typer.echo(json.dumps(frame_records(frame)))
    else:
        _console().print(obj)
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
