"""The explorer's web server: a small Starlette app over :mod:`gdlab.explorer.model`, served by uvicorn.

Routes (every API error is a 4xx JSON object ``{"error": ..., "parameter": ...}``):

* ``GET /`` the page; ``GET /static/...`` its files (from this package's ``static`` folder only);
  ``GET /vendor/plotly.min.js`` plotly.js from the installed ``plotly`` package (no CDN: it works offline).
* ``GET /api/datasets`` the data sets and their curvature facts; ``GET /api/data?dataset=ID`` a bounded sample
  of the rows for the data view.
* ``GET /api/descend?<state>[&surface=full|view]`` run the descent(s) of a page state (the page's own query
  string: shareable); ``surface=view`` leaves the loss surface's grid out (its description and view stay in), for a
  page that already holds it: a slider move does not change it.
* ``GET /api/surface?<state>`` the loss surface (grid included) of a page state, alone.
* ``GET /api/eigen?<state>`` run A's error along the Hessian's eigen-directions, the theory's prediction and
  momentum's (eta, beta) stability region (the Eigen-directions card).
* ``GET /api/export?format=csv|json&<state>`` the same runs as a file to download.
* ``POST /api/upload?name=FILE.csv[&target=COLUMN]`` a CSV file as the request body, sent with
  ``Content-Type: text/csv``, or a Parquet file sent with ``Content-Type: application/vnd.apache.parquet`` (size,
  columns and cells limited before anything parses it; Parquet page checksums verified).

Security (docs/explorer.md, "Security"): requests must name a host the explorer answers to (DNS rebinding); a
state-changing request (any method but GET, HEAD and OPTIONS) must come from the explorer's own origin (``Origin``
and ``Sec-Fetch-Site``; a request with neither is not from a browser and passes); the API answers no other site's
page except a top-level navigation; every answer carries a strict Content-Security-Policy; a request body that stops
arriving is answered 408 and its connection closed.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import math
import socket
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gdlab.explorer.model import (
    OPTIMIZER_PARAMS,
    ExplorerDataset,
    Limits,
    TASKS,
    RunSpec,
    builtin_datasets,
    contour_directions,
    dataset_from_frame,
    default_axes as default_axes_of,
    eigen_view,
    load_table,
    parquet_shape,
    read_csv_bytes,
    read_parquet_bytes,
    run_descent,
    run_payload,
    step_arithmetic,
    surface,
    upload_id,
)

__all__ = ["create_app", "serve", "running", "ApiError", "STATIC_DIR", "plotly_js_path", "parse_state",
           "CONTENT_SECURITY_POLICY", "is_loopback", "host_names", "check_upload_shape"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]", "::1"]

#: Style attributes plotly.js writes as markup (d3's attr("style", ...)), allowed by their hashes and nothing else:
#: the colour bar's empty style (sha256 of "") and the superscripts of its log-axis tick labels ("font-size:70%").
PLOTLY_STYLE_ATTRIBUTES = {"": "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
                           "font-size:70%": "S+l+cz1wXqs2B0FcjqqT7NvjwGmhD1UjJswXjlSkj0s="}
#: The page loads only its own scripts, styles and data: no inline script or style sheet, nothing from elsewhere, no
#: frames, no forms. plotly's own style rules come as /static/plotly.css; app.js sets styles through the CSSOM,
#: which CSP allows; the only style attributes allowed are plotly's two above.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-hashes' "
                           + " ".join(f"'sha256-{h}'" for h in PLOTLY_STYLE_ATTRIBUTES.values())
                           + "; img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
                           "form-action 'none'; frame-ancestors 'none'")
#: an upload's header line must end within this many bytes (it names at most Limits.max_columns columns)
MAX_HEADER_BYTES = 64 * 1024
PARQUET_TYPE = "application/vnd.apache.parquet"
UPLOAD_TYPES = ("text/csv", PARQUET_TYPE)


class ApiError(Exception):
    """A request the explorer refuses: HTTP status, message in words, and the parameter at fault."""

    def __init__(self, message: str, parameter: str | None = None, status: int = 400, *, close: bool = False):
        super().__init__(message)
        self.message = message
        self.parameter = parameter
        self.status = status
        self.close = close  # answer with "Connection: close" (the request's body was not read to its end)


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the installed ``plotly`` Python package."""
    try:
        import plotly
    except ImportError:  # pragma: no cover - plotly is a dependency of the explorer extra
        raise ImportError("the explorer needs plotly: pip install 'gdlab[explorer]'") from None
    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    if not path.is_file():  # pragma: no cover
        raise FileNotFoundError(f"plotly.min.js is missing from the installed plotly package ({path}); "
                                "reinstall plotly.")
    return path


# ---- the page state (query string) ------------------------------------------------------------------------------

_HYPER = sorted({name for params in OPTIMIZER_PARAMS.values() for name in params})
STATE_KEYS = {"dataset", "optimizer", "lr", "iterations", "batch_size", "seed", "start", "axes", "grid", "race",
              "race_lr", "t", "standardize", *_HYPER, *(f"race_{h}" for h in _HYPER)}


#: what the page calls each setting of its link: messages name the control a reader sees, then the link's key
_LABELS = {"lr": "The learning rate η", "iterations": "Iterations", "batch_size": "Batch size", "seed": "Seed",
           "grid": "The surface's grid size", "beta": "β (momentum)", "beta1": "β1 (Adam)", "beta2": "β2 (Adam)",
           "eps": "ε", "decay": "The decay (RMSprop)", "start": "The starting point", "axes": "The surface axes",
           "optimizer": "Optimizer", "race": "The second optimizer", "dataset": "Data set", "t": "The iteration shown",
           "standardize": "Standardise the features"}


def _label(key: str) -> str:
    """The setting as the page names it, with its key in the link: 'The learning rate η (lr= in the link)'."""
    if key.startswith("race_"):
        base = _LABELS.get(key[5:], key[5:])
        words = f"the second optimizer's {base[0].lower() + base[1:] if base.startswith('The ') else base}"
        words = words.replace("the second optimizer's the ", "the second optimizer's ")
        return f"{words[0].upper() + words[1:]} ({key}= in the link)"
    return f"{_LABELS.get(key, key)} ({key}= in the link)"


def _number(q: dict[str, str], key: str, default: float | None, lo: float, hi: float, *, integer: bool = False,
            lo_open: bool = False) -> Any:
    raw = q.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(f"{_label(key)} must be a number, got {raw!r}.", key) from None
    kind = "an integer" if integer else "a number"
    if not math.isfinite(value) or (integer and not value.is_integer()):
        raise ApiError(f"{_label(key)} must be {kind}, got {raw!r}.", key)
    if value < lo or value > hi or (lo_open and value == lo):
        left = "(" if lo_open else "["
        raise ApiError(f"{_label(key)} must be {kind} in {left}{lo:g}, {hi:g}], got {raw}.", key)
    return int(value) if integer else value


def _optimizer(q: dict[str, str], prefix: str, lr_default: float) -> RunSpec:
    key = "race" if prefix else "optimizer"
    name = q.get(key) or "gd"
    if name not in OPTIMIZER_PARAMS:
        raise ApiError(f"{_label(key)}: unknown optimizer {name!r}; valid values are {', '.join(OPTIMIZER_PARAMS)}.",
                       key)
    lr = _number(q, prefix + "lr", lr_default, 0.0, 1e6, lo_open=True)
    params = {}
    for hp, (default, lo, hi) in OPTIMIZER_PARAMS[name].items():
        params[hp] = _number(q, prefix + hp, default, lo, hi, lo_open=(hp == "eps"))
    return RunSpec(name, float(lr), params)


def parse_state(query: Any, registry: dict[str, ExplorerDataset], limits: Limits, default_dataset: str
                ) -> dict[str, Any]:
    """Validate a page state (the query string) into the runs to make; raise :class:`ApiError` on a bad value."""
    q = {k: v for k, v in query.items()}
    unknown = sorted(set(q) - STATE_KEYS - {"format"})
    if unknown:
        raise ApiError(f"unknown parameter {unknown[0]!r}; valid parameters are {', '.join(sorted(STATE_KEYS))}.",
                       unknown[0])
    ds_id = q.get("dataset") or default_dataset
    ds = registry.get(ds_id)
    if ds is None:
        raise ApiError(f"unknown dataset {ds_id!r} (an uploaded file is forgotten when the server restarts: upload "
                       f"it again); available: {', '.join(registry)}.", "dataset", 404)
    standardize = q.get("standardize") or "0"
    if standardize not in ("0", "1"):
        raise ApiError(f"{_label('standardize')} must be 1 (ticked) or 0, got {standardize!r}.", "standardize")
    if standardize == "1":
        if ds.n_features == 0:
            raise ApiError(f"{_label('standardize')}: the data set {ds.title!r} has no features to standardise "
                           "(its model is one number); untick it.", "standardize")
        ds = ds.standardized()
    p = ds.n_params
    lr_default = float(ds.defaults.get("lr", 0.1))
    spec_a = _optimizer(q, "", lr_default)
    race = q.get("race") or ""
    spec_b = _optimizer(q, "race_", lr_default) if race else None
    iterations = _number(q, "iterations", int(ds.defaults.get("iterations", 50)), 1, limits.max_iterations,
                         integer=True)
    batch_size = _number(q, "batch_size", 0, 0, ds.n_rows, integer=True) or None
    seed = _number(q, "seed", 0, 0, 2**32 - 1, integer=True)
    grid = _number(q, "grid", 60, limits.min_grid, limits.max_grid, integer=True)
    if ds.classification and (batch_size is None or batch_size >= ds.n_rows):
        runs = 2 if spec_b else 1
        if iterations * ds.n_rows * runs > limits.max_batch_row_visits:
            most = max(1, limits.max_batch_row_visits // (ds.n_rows * runs))
            raise ApiError(f"logistic regression reads every row each iteration (the log-loss has no statistics "
                           f"shortcut): {iterations} iterations over {ds.n_rows} rows"
                           f"{' for each of 2 runs' if runs == 2 else ''} is too much for one interactive request; "
                           f"use at most {most} iterations.", "iterations")
    if batch_size is not None and batch_size < ds.n_rows:
        visits = iterations * ds.n_rows * (2 if spec_b else 1)
        if visits > limits.max_batch_row_visits:
            most = max(1, limits.max_batch_row_visits // (ds.n_rows * (2 if spec_b else 1)))
            raise ApiError(f"mini-batch descent reads every row each iteration: {iterations} iterations over "
                           f"{ds.n_rows} rows is too much for one interactive request; use at most {most} "
                           "iterations, or full batches (an empty Batch size), which cost O(d^2) per iteration.",
                           "iterations")
        runs = 2 if spec_b else 1
        per_iteration = math.ceil(ds.n_rows / batch_size) * runs
        updates = iterations * per_iteration
        if updates > limits.max_batch_updates:
            most = limits.max_batch_updates // per_iteration
            fewest_rows = math.ceil(ds.n_rows / max(1, limits.max_batch_updates // (iterations * runs)))
            how = (f"use at most {most} iterations, batches of at least {fewest_rows} rows" if most else
                   f"use batches of at least {fewest_rows} rows")
            raise ApiError(f"mini-batches of {batch_size} rows make {per_iteration // runs} updates per iteration"
                           f"{' for each of 2 runs' if runs == 2 else ''}: {iterations} iterations are {updates} "
                           f"updates, over the limit of {limits.max_batch_updates} per request; "
                           f"{how}, or full batches (an empty Batch size).", "iterations")
    start = np.array(ds.default_start, dtype=float)
    if q.get("start"):
        parts = q["start"].split(",")
        if len(parts) != p:
            raise ApiError(f"{_label('start')} must hold {p} comma-separated numbers ({', '.join(ds.param_names)}), got "
                           f"{len(parts)}.", "start")
        try:
            start = np.array([float(v) for v in parts])
        except ValueError:
            raise ApiError(f"{_label('start')} must hold numbers, got {q['start']!r}.", "start") from None
        if not np.all(np.isfinite(start)) or np.max(np.abs(start)) > 1e12:
            raise ApiError(f"{_label('start')} must hold finite numbers of magnitude at most 1e12.", "start")
    default_axes = list(default_axes_of(ds))
    if q.get("axes"):
        try:
            axes = [int(v) for v in q["axes"].split(",")]
        except ValueError:
            raise ApiError(f"{_label('axes')} must be parameter indices like '0,1', got {q['axes']!r}.",
                           "axes") from None
        want = 1 if p == 1 else 2
        if len(axes) != want or len(set(axes)) != want or not all(0 <= a < p for a in axes):
            raise ApiError(f"{_label('axes')} must be {want} distinct parameter indices between 0 and {p - 1} "
                           f"({', '.join(f'{k}: {n}' for k, n in enumerate(ds.param_names))}), got {q['axes']!r}.",
                           "axes")
    else:
        axes = list(default_axes)
    return {"dataset": ds, "runs": [spec_a] + ([spec_b] if spec_b else []), "iterations": iterations,
            "batch_size": batch_size, "seed": seed, "grid": grid, "start": start, "axes": tuple(axes)}


def info_with_twin(ds: ExplorerDataset) -> dict[str, Any]:
    """A data set's facts, with those of its standardised twin (``twin``) when it has features: the page's
    Standardise toggle needs the twin's slider range and scaling before it asks for a run."""
    info = ds.info()
    if ds.n_features:
        info["twin"] = ds.standardized().info()
        info["condition_numbers"] = info["twin"]["condition_numbers"]
    return info


def compute(state: dict[str, Any], surface_values: bool = True) -> tuple[list[Any], dict[str, Any]]:
    """Run the state's descents through gdlab.descend and build the response body (``surface_values=False``: the
    surface's description without its grid)."""
    t0 = time.perf_counter()
    ds: ExplorerDataset = state["dataset"]
    results = []
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for spec in state["runs"]:
            try:
                results.append(run_descent(ds, spec, iterations=state["iterations"], start=state["start"],
                                           batch_size=state["batch_size"], seed=state["seed"]))
            except ValueError as exc:
                raise ApiError(str(exc), None) from None
    t_descent = time.perf_counter() - t0
    if ds.n_features:
        ds.standardized()  # made once: its condition number goes beside this one's (info()["condition_numbers"])
    runs = [run_payload(ds, spec, res, label, state["axes"]) for spec, res, label in zip(state["runs"], results, "AB")]
    surf = surface(ds, state["axes"], state["start"], state["grid"], values=surface_values)
    body = {
        "dataset": ds.info(), "standardize": ds.scaling is not None, "runs": runs, "surface": surf,
        # the Hessian's eigen-directions in the surface's plane, drawn through the optimum (None: no contour/minimum)
        "directions": contour_directions(ds, state["axes"], state["start"]) if surf["kind"] == "contour" else None,
        "start": [float(v) for v in state["start"]],
        "iterations": state["iterations"], "batch_size": state["batch_size"], "seed": state["seed"],
        "timing_ms": {"descent": 1e3 * t_descent, "total": 1e3 * (time.perf_counter() - t0)},
    }
    return results, body


# ---- uploads: limits checked on the bytes, before anything parses them -------------------------------------------

def check_upload_shape(raw: bytes, name: str, limits: Limits) -> None:
    """Refuse an upload whose header line, column count or rows x columns exceed the limits, looking only at its
    bytes (O(size), no allocation beyond the header line): pandas, which would build every column first, never sees
    such a file. Columns are counted on the header line with the separator that gives the most ("," ";" tab "|"),
    an upper bound on what the parser will find; rows are counted as line ends."""
    head = raw[:MAX_HEADER_BYTES + 1]
    ends = [i for i in (head.find(b"\n"), head.find(b"\r")) if i >= 0]
    end = min(ends) if ends else len(head)
    header = head[:end]
    columns = max(header.count(sep) for sep in (b",", b";", b"\t", b"|")) + 1
    if end > MAX_HEADER_BYTES:
        at_least = f" (at least {columns} columns)" if columns > 1 else ""
        raise ApiError(f"{name}'s header line is longer than {MAX_HEADER_BYTES // 1024} KB{at_least}; the first "
                       f"line of a CSV file names its columns, and the explorer reads at most {limits.max_columns}.",
                       "file")
    lines = raw.count(b"\n") or raw.count(b"\r")
    rows = max(0, lines + (0 if raw.endswith((b"\n", b"\r")) else 1) - 1)
    check_shape(rows, columns, name, limits, where=" in its header")


def check_shape(rows: int, columns: int, name: str, limits: Limits, where: str = "") -> None:
    """Refuse an upload of more columns, or rows x columns, than the limits allow (CSV: counted on its bytes;
    Parquet: read from its footer)."""
    if columns > limits.max_columns:
        raise ApiError(f"{name} has {columns} columns{where}; the explorer reads at most {limits.max_columns} "
                       f"(and uses at most {limits.max_features} as features). Keep the columns you want to explore.",
                       "file")
    if rows * columns > limits.max_cells:
        raise ApiError(f"{name} has about {rows} rows x {columns} columns = {rows * columns:.3g} values; an upload "
                       f"may hold at most {limits.max_cells:.3g}. Upload a sample, or pass the file on the command "
                       "line: gdlab explore FILE --target COL.", "file", 413)


# ---- the app ------------------------------------------------------------------------------------------------------

def create_app(data: Any = None, target: str | None = None, features: Any = None, *,
               limits: Limits | None = None, allowed_hosts: list[str] | None = None) -> Any:
    """The explorer as a Starlette application.

    Parameters
    ----------
    data : None (the workshop's data sets only), a path to a CSV/TSV/Parquet file (read once, and no other file),
        or a pandas DataFrame; it becomes the data set ``"data"`` and the page opens on it.
    target : the target column (default: the last column); features : column names, a list or a comma-separated
        string (default: every other numeric column).
    limits : :class:`~gdlab.explorer.model.Limits` (iterations, grid size, upload size, ...).
    allowed_hosts : Host headers to answer (default: the loopback names; guards against DNS rebinding). A bare
        ``"*"`` (no guard) is refused; ``"*.example.org"`` patterns are allowed.

    Returns
    -------
    starlette.applications.Starlette
    """
    import anyio
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.datastructures import Headers
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import ClientDisconnect, Request
    from starlette.responses import FileResponse, JSONResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    limits = limits or Limits()
    hosts = list(allowed_hosts) if allowed_hosts is not None else list(LOOPBACK_HOSTS)
    if "*" in hosts:
        raise ValueError("allowed_hosts may not hold '*': the Host-header guard (against DNS rebinding) cannot be "
                         "switched off; name the hosts the page is reached by.")
    if isinstance(features, str):
        features = [f.strip() for f in features.split(",") if f.strip()]
    registry: dict[str, ExplorerDataset] = {ds.id: ds for ds in builtin_datasets()}
    default_dataset = "line"
    if data is not None:
        if isinstance(data, (str, Path)):
            user = load_table(data, target, features, max_features=limits.max_features)
        else:
            user = dataset_from_frame(data, target, features, max_features=limits.max_features)
        registry[user.id] = user
        default_dataset = user.id
    uploads: OrderedDict[str, ExplorerDataset] = OrderedDict()
    lock = threading.Lock()
    plotly_path = plotly_js_path()

    def lookup() -> dict[str, ExplorerDataset]:
        with lock:
            return {**registry, **uploads}

    def error(exc: ApiError) -> JSONResponse:
        body = {"error": exc.message}
        if exc.parameter:
            body["parameter"] = exc.parameter
        return JSONResponse(body, status_code=exc.status, headers={"Connection": "close"} if exc.close else None)

    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error(exc)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": f"{exc.detail}: {request.method} {request.url.path}"},
                                status_code=exc.status_code)
        return Response(f"{exc.status_code} {exc.detail}\n", status_code=exc.status_code, media_type="text/plain")

    def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html",
                            headers={"Cache-Control": "no-cache"})

    def plotly_js(request: Request) -> Response:
        return FileResponse(plotly_path, media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    def api_datasets(request: Request) -> JSONResponse:
        return JSONResponse({"default": default_dataset, "datasets": [info_with_twin(ds) for ds in lookup().values()],
                             "optimizers": {k: {h: {"default": v[0], "min": v[1], "max": v[2]} for h, v in p.items()}
                                            for k, p in OPTIMIZER_PARAMS.items()},
                             "limits": {"max_iterations": limits.max_iterations,
                                        "max_upload_bytes": limits.max_upload_bytes,
                                        "min_grid": limits.min_grid, "max_grid": limits.max_grid}})

    def api_data(request: Request) -> JSONResponse:
        unknown = sorted(set(request.query_params) - {"dataset", "standardize"})
        if unknown:
            raise ApiError(f"unknown parameter {unknown[0]!r}; /api/data takes dataset and standardize.", unknown[0])
        ds_id = request.query_params.get("dataset") or default_dataset
        ds = lookup().get(ds_id)
        if ds is None:
            raise ApiError(f"unknown dataset {ds_id!r}; available: {', '.join(lookup())}.", "dataset", 404)
        standardize = request.query_params.get("standardize") or "0"
        if standardize not in ("0", "1"):
            raise ApiError(f"{_label('standardize')} must be 1 (ticked) or 0, got {standardize!r}.", "standardize")
        if standardize == "1" and ds.n_features:
            ds = ds.standardized()
        return JSONResponse(ds.display_data())

    def api_descend(request: Request) -> JSONResponse:
        query = dict(request.query_params)
        mode = query.pop("surface", "full")
        if mode not in ("full", "view"):
            raise ApiError(f"surface must be 'full' (with its grid) or 'view' (without), got {mode!r}.", "surface")
        state = parse_state(query, lookup(), limits, default_dataset)
        _, body = compute(state, surface_values=mode == "full")
        return JSONResponse(body)

    def api_step(request: Request) -> JSONResponse:
        query = dict(request.query_params)
        raw_t = query.pop("t", "0")
        state = parse_state(query, lookup(), limits, default_dataset)
        try:
            t = int(raw_t)
        except ValueError:
            raise ApiError(f"the step shown (t) must be a whole number, got {raw_t!r}.", "t") from None
        if state["batch_size"] is not None and state["batch_size"] < state["dataset"].n_rows:
            raise ApiError("Step by step shows full-batch updates: with mini-batches each step's gradient is of a "
                           "random batch; empty the Batch size box.", "batch_size")
        results, _ = compute(state, surface_values=False)
        res, spec = results[0], state["runs"][0]
        params = res.trajectory.params
        if not 0 <= t < len(params) - 1:
            raise ApiError(f"the step shown must be between 0 and {len(params) - 2} (the run has "
                           f"{len(params) - 1} updates), got {t}.", "t")
        return JSONResponse(step_arithmetic(state["dataset"], spec, params, t))

    def api_eigen(request: Request) -> JSONResponse:
        state = parse_state(request.query_params, lookup(), limits, default_dataset)
        state["runs"] = state["runs"][:1]  # the card shows run A
        results, _ = compute(state, surface_values=False)
        ds = state["dataset"]
        full = state["batch_size"] is None or state["batch_size"] >= ds.n_rows
        try:
            return JSONResponse(eigen_view(ds, state["runs"][0], results[0], full_batch=full))
        except ValueError as exc:
            raise ApiError(str(exc), "dataset") from None

    def api_surface(request: Request) -> JSONResponse:
        state = parse_state(request.query_params, lookup(), limits, default_dataset)
        return JSONResponse(surface(state["dataset"], state["axes"], state["start"], state["grid"]))

    def api_export(request: Request) -> Response:
        fmt = request.query_params.get("format", "csv")
        if fmt not in ("csv", "json"):
            raise ApiError(f"format must be 'csv' or 'json', got {fmt!r}.", "format")
        state = parse_state(request.query_params, lookup(), limits, default_dataset)
        results, body = compute(state)
        ds = state["dataset"]
        if fmt == "csv":
            import pandas as pd

            frames = []
            for spec, res, label in zip(state["runs"], results, "AB"):
                frame = res.trajectory.to_frame()
                # the surface's names: "w1 (x1)" (to_frame() has w1, w0 is the intercept)
                if ds.kind in ("table", "classes"):
                    frame = frame.rename(columns={f"w{j + 1}": name for j, name in enumerate(ds.param_names[1:])})
                frame.insert(0, "learning_rate_setting", spec.learning_rate)
                frame.insert(0, "optimizer", spec.optimizer)
                frame.insert(0, "run", label)
                frames.append(frame)
            text = pd.concat(frames, ignore_index=True).to_csv(index=False)
            return Response(text, media_type="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="gdlab-{ds.id}-trajectory.csv"'})
        import json

        payload = {
            "dataset": {k: body["dataset"][k] for k in ("id", "title", "n_rows", "n_features", "feature_names",
                                                        "target_name", "param_names", "curvature", "optimum")},
            "settings": {"iterations": state["iterations"], "batch_size": state["batch_size"], "seed": state["seed"],
                         "start": body["start"]},
            "runs": [{"label": run["label"], "optimizer": spec.optimizer, "learning_rate": spec.learning_rate,
                      "hyperparameters": spec.params, "verdict": run["verdict"], "result": res.to_dict()}
                     for spec, res, run in zip(state["runs"], results, body["runs"])],
        }
        return Response(json.dumps(payload, indent=1), media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="gdlab-{ds.id}-trajectory.json"'})

    async def api_upload(request: Request) -> JSONResponse:
        q = request.query_params
        unknown = sorted(set(q) - {"name", "target", "task"})
        if unknown:
            raise ApiError(f"unknown parameter {unknown[0]!r}; the upload takes name, target and task.", unknown[0])
        target = q.get("target") or None
        task = q.get("task") or "auto"
        if task not in TASKS:
            raise ApiError(f"The task (task= in the upload) must be one of {', '.join(TASKS)} (auto: a target with "
                           f"two values is fitted as classes), got {task!r}.", "task")
        # a page on another origin can send text/plain, form encodings or multipart without asking (no CORS
        # preflight); text/csv and the Parquet type it cannot, so this is a second wall behind the same-origin check
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in UPLOAD_TYPES:
            raise ApiError(f"an upload must be sent with Content-Type: text/csv (or {PARQUET_TYPE} for a Parquet "
                           f"file), got {media or 'none'!r}; the page does this, and so does curl --data-binary "
                           "@FILE.csv -H 'Content-Type: text/csv'.", "content-type", 415)
        parquet = media == PARQUET_TYPE
        name = (q.get("name") or ("upload.parquet" if parquet else "upload.csv"))[:120]
        limit = limits.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise ApiError(f"the file is {int(declared) / 1e6:.1f} MB; the upload limit is {limit / 1e6:.1f} MB. Use a "
                           "smaller sample, or pass the file on the command line: gdlab explore FILE --target COL.",
                           "file", 413, close=True)
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(f"the file is larger than the upload limit of {limit / 1e6:.1f} MB. Use a smaller "
                                   "sample, or pass the file on the command line: gdlab explore FILE --target COL.",
                                   "file", 413, close=True)
                chunks.append(chunk)
        except ClientDisconnect:  # the client went away mid-upload: nobody to answer, nothing to log
            return Response(status_code=400)
        raw = b"".join(chunks)
        del chunks
        if parquet:  # the footer says how many rows and columns, before any column is decoded
            try:
                rows, columns = parquet_shape(raw, name)
            except ValueError as exc:
                raise ApiError(str(exc), "file") from None
            check_shape(rows, columns, name, limits)
        else:
            check_upload_shape(raw, name, limits)  # before pandas: a header of a million names costs nothing here

        def build() -> ExplorerDataset:
            frame = read_parquet_bytes(raw, name) if parquet else read_csv_bytes(raw, name)
            ds = dataset_from_frame(frame, target, None, dataset_id=upload_id(raw, target, task), title=name,
                                    max_features=limits.max_features, task=task,
                                    max_classification_rows=limits.max_classification_rows)
            if "note" in ds.extra:  # the page has a box for the target, not a Python argument
                ds.extra["note"] = ds.extra["note"].replace("(choose another with target=...)",
                                                            "(choose another in the Target column box)")
            return ds

        try:  # parsing and the statistics pass run in a worker thread: the server keeps answering meanwhile
            ds = await run_in_threadpool(build)
        except ValueError as exc:
            text = str(exc).replace("fit it as regression", "choose Task: regression")
            raise ApiError(text, "target" if "target" in text else "file") from None
        ds_id = ds.id
        with lock:
            uploads[ds_id] = ds
            uploads.move_to_end(ds_id)
            while len(uploads) > limits.max_uploads:
                uploads.popitem(last=False)
        return JSONResponse({"dataset": info_with_twin(ds)})

    def _wrap(fn):
        # sync endpoints: turn ApiError into its JSON answer (exception handlers see it too, this keeps it local)
        def endpoint(request: Request) -> Response:
            try:
                return fn(request)
            except ApiError as exc:
                return error(exc)
        return endpoint

    security_headers = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
                        (b"x-frame-options", b"DENY"),
                        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                        # other sites may not embed the answers (script/img tags) nor keep a handle on the window
                        (b"cross-origin-resource-policy", b"same-origin"),
                        (b"cross-origin-opener-policy", b"same-origin")]

    def _security_headers(app):  # (named app: older starlette passes it by keyword)
        # a plain ASGI middleware (starlette's BaseHTTPMiddleware costs every request a task and a stream)
        async def middleware(scope, receive, send):
            if scope["type"] != "http":
                await app(scope, receive, send)
                return

            async def send_with_headers(message):
                if message["type"] == "http.response.start":
                    have = {k.lower() for k, _ in message.get("headers", [])}
                    message["headers"] = list(message.get("headers", [])) + [
                        (k, v) for k, v in security_headers if k not in have]
                await send(message)

            await app(scope, receive, send_with_headers)
        return middleware

    async def _refuse(scope, send, status: int, message: str, parameter: str | None = None) -> None:
        body = {"error": message, **({"parameter": parameter} if parameter else {})}
        await JSONResponse(body, status_code=status)(scope, None, send)

    def _same_origin(app):
        # CSRF: a page on another origin, open in the same browser, may send requests here (the browser adds no
        # login to steal, but it would register data sets and cost work). Browsers name the page a request comes
        # from (Origin on every POST; Sec-Fetch-Site on every request of current browsers); the Host header has
        # passed the guard, so "http://" + Host is the explorer's own origin. A request with neither header is not
        # from a browser (curl, a script): a hostile web page cannot send one, so it passes.
        async def middleware(scope, receive, send):
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            headers = Headers(scope=scope)
            origin, site = headers.get("origin"), headers.get("sec-fetch-site")
            own = f"{scope.get('scheme', 'http')}://{headers.get('host', '')}".lower()
            method, path = scope["method"], scope["path"]
            problem = None
            if method not in ("GET", "HEAD", "OPTIONS"):
                if site is not None and site != "same-origin":
                    problem = f"{method} {path} came from another page (Sec-Fetch-Site: {site})"
                elif origin is not None and origin.lower() != own:
                    problem = f"{method} {path} came from a page on {origin}"
                if problem:
                    await _refuse(scope, send, 403, f"{problem}; only the explorer's own page ({own}/) may change "
                                  "its state. Open it there and upload from it.", "origin")
                    return
            elif path.startswith("/api/"):
                # reads change nothing, but cost work: other sites' pages get them only as a top-level navigation
                # (a link the user follows to an export, say)
                navigation = headers.get("sec-fetch-mode") == "navigate" and \
                    headers.get("sec-fetch-dest", "document") == "document"
                if site in ("cross-site", "same-site") and not navigation:
                    problem = f"a page on another site asked for {path} (Sec-Fetch-Site: {site})"
                elif origin is not None and origin.lower() != own:
                    problem = f"a page on {origin} asked for {path}"
                if problem:
                    await _refuse(scope, send, 403, f"{problem}; the explorer's API answers only its own page "
                                  f"({own}/).", "origin")
                    return
            await app(scope, receive, send)
        return middleware

    def _body_timeout(app):
        # uvicorn has no read timeout: a client that declares a body and stops sending would hold its request (and
        # the upload's buffer) for ever. Each wait for body data is bounded, and so is the whole body; then the
        # request gets 408 and its connection is closed.
        async def middleware(scope, receive, send):
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            deadline = time.monotonic() + limits.body_total_timeout
            done = False

            async def timed_receive():
                nonlocal done
                if done:
                    return await receive()
                wait = min(limits.body_read_timeout, deadline - time.monotonic())
                message = None
                with anyio.move_on_after(max(wait, 0.0)):
                    message = await receive()
                if message is None:
                    raise ApiError(f"the request body stopped arriving (no data for {limits.body_read_timeout:g} s, or "
                                   f"not all of it within {limits.body_total_timeout:g} s); send it again.", "file",
                                   408, close=True)
                if message["type"] != "http.request" or not message.get("more_body", False):
                    done = True
                return message

            await app(scope, timed_receive, send)
        return middleware

    routes = [
        Route("/", index),
        Route("/vendor/plotly.min.js", plotly_js),
        Route("/api/datasets", _wrap(api_datasets)),
        Route("/api/data", _wrap(api_data)),
        Route("/api/descend", _wrap(api_descend)),
        Route("/api/surface", _wrap(api_surface)),
        Route("/api/step", _wrap(api_step)),
        Route("/api/eigen", _wrap(api_eigen)),
        Route("/api/export", _wrap(api_export)),
        Route("/api/upload", api_upload, methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    app = Starlette(
        routes=routes,
        # outermost first: every answer (refusals included) gets the security headers; the Host guard runs before
        # the same-origin check, which trusts the Host header it has passed
        middleware=[Middleware(_security_headers), Middleware(_body_timeout),
                    Middleware(TrustedHostMiddleware, allowed_hosts=hosts), Middleware(_same_origin)],
        exception_handlers={ApiError: api_error, HTTPException: http_error},
    )
    app.state.registry = registry
    app.state.uploads = uploads
    app.state.limits = limits
    return app


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host
    if ":" in shown and not shown.startswith("["):
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the explorer to this machine (localhost, 127.0.0.0/8, ::1)."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def _host_form(name: str) -> str:
    """A name or address as a Host header holds it (IPv6 literals in brackets), lower case."""
    name = name.strip().lower()
    try:
        if ipaddress.ip_address(name.strip("[]")).version == 6:
            return f"[{name.strip('[]')}]"
    except ValueError:
        pass
    return name


def _own_addresses() -> list[str]:
    """This machine's names and the addresses it is reached by, found without touching the network: its host name,
    fully qualified name and their addresses, and the address of the interface that routes outwards (a UDP socket
    'connected' to a documentation address sends nothing)."""
    out: list[str] = []
    with contextlib.suppress(OSError):
        name = socket.gethostname()
        out += [name, socket.getfqdn()]
        out += [info[4][0] for info in socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)]
    for family, probe in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.connect((probe, 9))
            out.append(udp.getsockname()[0])
    return out


def host_names(host: str, extra: list[str] | None = None) -> list[str]:
    """The Host headers the explorer answers when it listens on ``host``.

    Always the loopback names. Listening on another address also answers that address, this machine's names and
    (for 0.0.0.0 or ::) the addresses it is reached by; ``extra`` adds names (``gdlab explore --allow-host``), e.g.
    the name other machines use for it, or ``*.example.org``. The guard is never switched off: a page that rebinds
    its own domain to this machine's address still sends its own domain as the Host header, and is refused.
    """
    names = list(LOOPBACK_HOSTS)
    if not is_loopback(host):
        h = host.strip().strip("[]")
        if h not in ("", "0.0.0.0", "::"):
            names.append(h)
        names += _own_addresses()
    for name in extra or []:
        name = name.strip()
        if not name or name == "*" or "*" in name[1:] or (name.startswith("*") and not name.startswith("*.")):
            raise ValueError(f"--allow-host {name!r} is not a host name: give a name or address (or *.domain) that "
                             "the page is reached by; the Host-header guard cannot be switched off with '*'.")
        names.append(name)
    seen: dict[str, None] = {}
    for name in names:
        seen.setdefault(_host_form(name), None)
    return list(seen)


def _listen(host: str, port: int) -> list[socket.socket]:
    """Bind and listen on host:port, turning every failure into one ValueError that says what to do (uvicorn would
    log its own message and exit with code 3)."""
    where = host or "0.0.0.0"
    try:
        infos = socket.getaddrinfo(host.strip("[]") or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        raise ValueError(f"cannot listen on host {host!r} ({why}): give an address or name of this machine, "
                         "e.g. 127.0.0.1 (the default) or 0.0.0.0 for every network interface.") from None
    sockets: list[socket.socket] = []
    seen = set()
    try:
        for family, kind, proto, _, addr in infos:
            if (family, addr[0]) in seen:
                continue
            seen.add((family, addr[0]))
            if sockets and port == 0:  # the other addresses of a name (localhost: 127.0.0.1 and ::1) on one port
                addr = (addr[0], sockets[0].getsockname()[1], *addr[2:])
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPV6_V6ONLY"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(addr)
            sock.listen(2048)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            message = (f"port {port} on {where} is already in use (another gdlab explore?); choose another with "
                       "--port, or --port 0 for any free port.")
        elif exc.errno == errno.EADDRNOTAVAIL:
            message = (f"cannot listen on {where}: it is not an address of this machine; use 127.0.0.1 (the "
                       "default), or 0.0.0.0 for every network interface.")
        elif exc.errno == errno.EACCES:
            message = (f"port {port} on {where} needs administrator rights (ports below 1024 usually do); choose "
                       "another with --port.")
        else:
            message = f"cannot listen on {where} port {port}: {exc.strerror or exc}."
        raise ValueError(message) from None
    return sockets


def _config(app: Any, **kwargs: Any) -> Any:
    import uvicorn

    # timeout_keep_alive closes an idle connection 5 s after its last answer; the app bounds body reads itself
    return uvicorn.Config(app, log_level="warning", lifespan="off", timeout_keep_alive=5, **kwargs)


@contextlib.contextmanager
def running(app: Any = None, host: str = "127.0.0.1", port: int = 0, timeout: float = 20.0) -> Iterator[str]:
    """Serve ``app`` (default: ``create_app()``) with uvicorn in a background thread; yields its URL.

    port=0 takes a free port. Used by the end-to-end tests and the benchmark.
    """
    import uvicorn

    app = app if app is not None else create_app()
    server = uvicorn.Server(_config(app, host=host, port=port))
    thread = threading.Thread(target=server.run, name="gdlab-explorer", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the explorer server did not start on {host}:{port}.")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield _url(host, bound)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serve(data: Any = None, target: str | None = None, features: Any = None, host: str = "127.0.0.1",
          port: int = 8765, open_browser: bool = True, on_ready: Any = None,
          allowed_hosts: list[str] | None = None) -> None:
    """Serve the explorer until interrupted (Ctrl-C), opening the page in the browser unless told not to.

    ``on_ready(url)``, when given, is called once the server listens (the CLI prints the address with it).

    Listens on 127.0.0.1 unless ``host`` says otherwise (another host makes the page reachable from the network:
    the explorer has no login; it then answers the Host names of :func:`host_names`, plus ``allowed_hosts``).
    Raises ValueError, with one line saying what to do, for bad data, a bad port or host, or a port in use, before
    anything is served.
    """
    import uvicorn

    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer between 0 and 65535, got {port!r}.")
    names = host_names(host, allowed_hosts)
    app = create_app(data, target, features, allowed_hosts=names)
    sockets = _listen(host, port)
    server = uvicorn.Server(_config(app))
    if open_browser or on_ready is not None:
        def _when_ready() -> None:
            deadline = time.monotonic() + 30
            while not server.started and time.monotonic() < deadline and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                url = _url(host, sockets[0].getsockname()[1])
                if on_ready is not None:
                    on_ready(url)
                if open_browser:
                    import webbrowser

                    webbrowser.open(url)

        threading.Thread(target=_when_ready, daemon=True).start()
    try:
        server.run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
