"""Default fits on badly scaled data (issue 10): GDRegressor(), gdlab.descend and gdlab fit, against scikit-learn.

The data: m = 10^6 rows, d = 10 and 100 features x_j = s_j (z_j + c_j), z ~ N(0, 1), the scales s_j spread
log-uniformly over four decades (10^-2 .. 10^2, endpoints included), the offsets c_j ~ U(-5, 5) spreads (non-zero
means); y = z . beta + 3 + N(0, 1). Every fit is timed in this run, in interleaved rounds; a figure is the median
of its rounds with the range [min - max]. Run: `python benchmarks/bench_defaults.py [--rounds 7] [--no-write]`.

What is timed:
* one read of X (`X.sum()`): the memory-bandwidth floor, measured in every block of rounds;
* scikit-learn's input check of X (`check_array`: its finite test is one `X.sum()`), which `GDRegressor.fit` runs;
* `GDRegressor().fit(X, y)` with every default (penalty='l2', alpha=1e-4: the optimum is Ridge's with alpha * m),
  and `GDRegressor(penalty=None)` (the optimum is LinearRegression's);
* `gdlab.descend(X, y)` with its defaults, and the library path `gdlab fit` takes (descend with the CLI's default
  settings, read from `gdlab.cli.fit`'s signature, and its progress callback);
* once: a real `gdlab fit X.npy --target=-1` subprocess, end to end (start-up, reading the file, the fit, output);
* scikit-learn `LinearRegression().fit`, `Ridge(alpha=1e-4 * m).fit`, `SGDRegressor(max_iter=6, tol=None)` (the
  shortest run SGDRegressor's defaults can make: tol=1e-3 stops after n_iter_no_change + 1 = 6 epochs at the
  earliest; its default run on these raw features takes hundreds of epochs, see --sgd-defaults) and
  `make_pipeline(StandardScaler(), SGDRegressor())`, the scaling scikit-learn's documentation asks for;
* the scaling check: the passes over X of each default fit are counted (GramStats.from_arrays, Scaling.from_columns,
  MemorySource.value_and_grad), and `descend(standardize=True)` is timed against `standardize=False` at a fixed
  200 iterations (tol=None): standardizing must add no pass over X;
* scikit-learn's diabetes (scaled=False) and breast cancer data: GDRegressor() against LinearRegression, Ridge and
  SGDRegressor() defaults.

The gdlab fits run twice, in separate blocks of rounds: with the statistics from gdlab's compiled pass
(`compiled=True`, what the default 'auto' does once `gdlab.load_compiled()` has run) and from NumPy/BLAS
(`compiled=False`, the default in a fresh process for X under 4e8 elements). The scikit-learn peers run in a block
of their own: OpenBLAS's workers spin for a while after each multi-threaded call and take a core from whatever runs
next. The gap of a fit is (F - F*)/F*, F = MSE + alpha |w|^2 (twice scikit-learn's SGD objective; alpha = 0 without
a penalty), F* the lower of the peer's (LinearRegression, Ridge) and gdlab.closed_form's objective.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

import gdlab
from gdlab.estimator import GDRegressor
from gdlab.scaling import Scaling
from gdlab.sources.gram import GramStats
from gdlab.sources.memory import MemorySource

try:
    from _results import RESULTS, machine, write_section
except ImportError:  # run from elsewhere
    from benchmarks._results import RESULTS, machine, write_section

ALPHA = 1e-4  # GDRegressor's and SGDRegressor's default alpha
HEADING = "Default fits (issue 10)"


# ---- data and objective --------------------------------------------------------------------------------------
def make_data(m: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scale = rng.permutation(np.logspace(-2, 2, d))
    offset = rng.uniform(-5.0, 5.0, d)  # means of up to 5 spreads (below the 10 at which the BLAS pass shifts blocks)
    X = rng.standard_normal((m, d))
    y = X @ rng.standard_normal(d) + 3.0 + rng.standard_normal(m)
    X += offset
    X *= scale
    return X, y


def objective(X, y, coef, intercept, alpha: float) -> float:
    coef = np.asarray(coef, dtype=np.float64).ravel()
    r = X @ coef
    r += float(np.ravel(intercept)[0]) - y
    return float(r @ r) / len(y) + alpha * float(coef @ coef)


def rel(f: float, f_star: float) -> float:
    return (f - f_star) / f_star


# ---- timing --------------------------------------------------------------------------------------------------
def run_rounds(items: dict, n: int) -> tuple[dict[str, list[float]], dict]:
    """Call every item once per round, in order, n rounds; returns the times and the last round's outputs."""
    times: dict[str, list[float]] = {k: [] for k in items}
    outs: dict = {}
    for _ in range(n):
        for name, fn in items.items():
            t0 = time.perf_counter()
            out = fn()
            times[name].append(time.perf_counter() - t0)
            outs[name] = out
    return times, outs


def med(ts) -> float:
    return float(np.median(ts))


def ms(ts, spread: bool = True) -> str:
    if ts is None:
        return "n/a"
    ts = np.atleast_1d(np.asarray(ts, dtype=float))
    fmt = (lambda s: f"{1e3 * s:.0f}") if np.median(ts) >= 1.0 else (lambda s: f"{1e3 * s:.1f}")
    if not spread or len(ts) == 1:
        return f"{fmt(np.median(ts))} ms"
    return f"{fmt(np.median(ts))} ms [{fmt(ts.min())}-{fmt(ts.max())}]"


def quiet(fn):
    """fn() with warnings recorded instead of shown; returns (value, [warning class names])."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fn()
    return value, sorted({w.category.__name__ for w in caught})


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


# ---- the CLI's library path ----------------------------------------------------------------------------------
def cli_settings() -> tuple[dict, object]:
    """descend's keyword arguments as `gdlab fit FILE --target T` builds them from its defaults, and its callback."""
    from gdlab import cli

    p = {k: v.default for k, v in inspect.signature(cli.fit).parameters.items()}
    pen = None if str(p["penalty"]).lower() == "none" else p["penalty"]
    kw = dict(optimizer=p["optimizer"], learning_rate=cli._parse_lr(p["lr"]), max_iter=p["iters"], tol=p["tol"],
              batch_size=p["batch_size"], loss=p["loss"], penalty=pen, alpha=p["alpha"], l1_ratio=p["l1_ratio"],
              random_state=p["random_state"], warn=False, fit_intercept=p["fit_intercept"],
              standardize="auto" if p.get("standardize") is None else p["standardize"])
    return kw, cli._ProgressCallback


# ---- counting passes over X ----------------------------------------------------------------------------------
class PassCounter:
    """Counts, while active, gdlab's reads of an X with m rows: statistics passes (GramStats.from_arrays), column
    moment passes (Scaling.from_columns) and row evaluations (MemorySource.value_and_grad)."""

    def __init__(self, m: int):
        self.m = m
        self.counts = {"stats": 0, "columns": 0, "rows": 0}

    def __enter__(self):
        self._saved = (GramStats.__dict__["from_arrays"], Scaling.__dict__["from_columns"],
                       MemorySource.value_and_grad)
        stats_fn, cols_fn, vg = self._saved[0].__func__, self._saved[1].__func__, self._saved[2]
        counter = self

        def from_arrays(cls, X, *a, **k):
            counter.counts["stats"] += X.shape[0] == counter.m
            return stats_fn(cls, X, *a, **k)

        def from_columns(cls, X, *a, **k):
            counter.counts["columns"] += X.shape[0] == counter.m
            return cols_fn(cls, X, *a, **k)

        def value_and_grad(src, *a, **k):
            counter.counts["rows"] += src.X.shape[0] == counter.m
            return vg(src, *a, **k)

        GramStats.from_arrays = classmethod(from_arrays)
        Scaling.from_columns = classmethod(from_columns)
        MemorySource.value_and_grad = value_and_grad
        return self

    def __exit__(self, *exc):
        GramStats.from_arrays, Scaling.from_columns, MemorySource.value_and_grad = self._saved
        return False


# ---- one shape -----------------------------------------------------------------------------------------------
def run_shape(m: int, d: int, args) -> dict:
    from sklearn.linear_model import LinearRegression, Ridge, SGDRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils import check_array

    out: dict = {"m": m, "d": d, "load": {"start": load()}}
    t0 = time.perf_counter()
    X, y = make_data(m, d)
    out["gen_s"] = time.perf_counter() - t0
    ridge_alpha = ALPHA * m

    # the scikit-learn peers, interleaved with the read of X
    def sgd_min():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return SGDRegressor(max_iter=6, tol=None, random_state=0).fit(X, y)

    peers = {"read": lambda: X.sum(),
             "linreg": lambda: LinearRegression().fit(X, y),
             "ridge": lambda: Ridge(alpha=ridge_alpha).fit(X, y),
             "sgd6": sgd_min,
             "sgd_pipe": lambda: quiet(lambda: make_pipeline(StandardScaler(), SGDRegressor(random_state=0)).fit(X, y))}
    out["peers"], peer_out = run_rounds(peers, args.slow_rounds)
    out["load"]["peers"] = load()

    # the gdlab fits, one block of rounds per statistics path
    cli_kw, Progress = cli_settings()
    gd_items = {
        "read": lambda: X.sum(),
        "check": lambda: check_array(X, dtype=[np.float64, np.float32], order="C"),
        "stats": lambda: GramStats.from_arrays(X, y[:, None]),
        "gdr": lambda: quiet(lambda: GDRegressor().fit(X, y)),
        "gdr_ols": lambda: quiet(lambda: GDRegressor(penalty=None).fit(X, y)),
        "descend": lambda: quiet(lambda: gdlab.descend(X, y)),
        "cli": lambda: gdlab.descend(X, y, callback=Progress(cli_kw["max_iter"], "bench", enabled=False), **cli_kw),
        "std200": lambda: gdlab.descend(X, y, standardize=True, max_iter=200, tol=None, warn=False),
        "raw200": lambda: gdlab.descend(X, y, standardize=False, max_iter=200, tol=None, warn=False),
    }
    gd_out = {}
    for key, compiled in (("blas", False), ("compiled", True)):
        with gdlab.config_context(compiled=compiled):
            out[key], gd_out[key] = run_rounds(gd_items, args.rounds)
        out["load"][key] = load()

    # outcomes, after the rounds (the residuals' BLAS products would leave OpenBLAS's workers spinning)
    lr, rd = peer_out["linreg"], peer_out["ridge"]
    cf = gdlab.closed_form(X, y)
    cf2 = gdlab.closed_form(X, y, l2=2 * ALPHA)  # gdlab's l2/2 |w|^2 on the MSE = alpha |w|^2
    f_lr, f_cf = objective(X, y, lr.coef_, lr.intercept_, 0.0), objective(X, y, cf.coef, cf.intercept, 0.0)
    f_rd, f_cf2 = objective(X, y, rd.coef_, rd.intercept_, ALPHA), objective(X, y, cf2.coef, cf2.intercept, ALPHA)
    f_ols, f_ridge = min(f_lr, f_cf), min(f_rd, f_cf2)
    out["kappa_raw"] = float(cf.curvature.condition_number) if cf.curvature is not None else float("nan")
    out["ref"] = {"ols": f_ols, "ridge": f_ridge, "ols_agree": abs(f_lr - f_cf) / f_ols,
                  "ridge_agree": abs(f_rd - f_cf2) / f_ridge, "lr_gap": rel(f_lr, f_ols),
                  "ridge_gap": rel(f_rd, f_ridge)}
    s6 = peer_out["sgd6"]
    out["sgd6_gap"] = rel(objective(X, y, s6.coef_, s6.intercept_, ALPHA), f_ridge)
    pipe, pipe_warn = peer_out["sgd_pipe"]
    r = pipe.predict(X) - y
    out["sgd_pipe"] = {"mse_gap": rel(float(r @ r) / m, f_ols), "n_iter": int(pipe[-1].n_iter_), "warnings": pipe_warn}
    for key in ("blas", "compiled"):
        o = gd_out[key]
        res = {}
        for name, alpha, f_star in (("gdr", ALPHA, f_ridge), ("gdr_ols", 0.0, f_ols)):
            est, warns = o[name]
            res[name] = {"gap": rel(objective(X, y, est.coef_, est.intercept_, alpha), f_star), "n_iter": est.n_iter_,
                         "converged": est.converged_, "solver": est.solver_, "warnings": warns}
        for name in ("descend", "cli"):
            r_, warns = o[name] if name == "descend" else (o[name], [])
            res[name] = {"gap": rel(objective(X, y, r_.coef, r_.intercept, 0.0), f_ols), "n_iter": r_.n_iter,
                         "converged": r_.converged, "scaling": r_.scaling, "source": r_.source, "warnings": warns,
                         "lr": r_.learning_rate,
                         "kappa": float(r_.curvature.condition_number) if r_.curvature is not None else float("nan")}
        for name in ("std200", "raw200"):
            r_ = o[name]
            res[name] = {"gap": rel(objective(X, y, r_.coef, r_.intercept, 0.0), f_ols), "scaling": r_.scaling,
                         "source": r_.source}
        out[key + "_res"] = res

    # passes over X of each default fit
    passes = {}
    for name in ("gdr", "gdr_ols", "descend", "cli", "std200", "raw200"):
        with PassCounter(m) as pc, gdlab.config_context(compiled=True):
            gd_items[name]()
        passes[name] = dict(pc.counts)
    out["passes"] = passes

    # one real `gdlab fit` subprocess, end to end
    if not args.no_cli:
        out["cli_proc"] = run_cli(X, y, f_ols)
    out["load"]["end"] = load()
    return out


def run_cli(X: np.ndarray, y: np.ndarray, f_ols: float) -> dict:
    env = dict(os.environ)
    pkg_root = str(Path(gdlab.__file__).resolve().parents[1])  # the same gdlab as this process
    env["PYTHONPATH"] = pkg_root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    with tempfile.TemporaryDirectory(prefix="gdlab_bench_") as tmp:
        path = Path(tmp) / "data.npy"
        np.save(path, np.column_stack([X, y]))  # the page cache holds it: the read is from memory
        cmd = [sys.executable, "-m", "gdlab", "fit", str(path), "--target=-1", "--format", "json", "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import gdlab.cli"], env=env, check=True)
        startup = time.perf_counter() - t0
        from gdlab.io import load_table

        t0 = time.perf_counter()
        table = load_table(path, "-1")
        read = time.perf_counter() - t0
        del table
    out = {"wall": wall, "startup": startup, "read": read, "rc": proc.returncode, "stderr": proc.stderr.strip()[-300:]}
    if proc.returncode == 0:
        res = json.loads(proc.stdout)
        out.update(gap=rel(objective(X, y, res["coef"], res["intercept"], 0.0), f_ols), n_iter=res["n_iter"],
                   converged=res["converged"], scaling=res["scaling"], source=res["source"])
    return out


# ---- real data -----------------------------------------------------------------------------------------------
def run_real(rounds: int) -> list[dict]:
    from sklearn.datasets import load_breast_cancer, load_diabetes
    from sklearn.linear_model import LinearRegression, Ridge, SGDRegressor

    rows = []
    for name, (X, y) in (("diabetes (scaled=False)", load_diabetes(return_X_y=True, scaled=False)),
                         ("breast cancer", load_breast_cancer(return_X_y=True))):
        X = np.ascontiguousarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        m = X.shape[0]

        def sgd():
            try:
                return quiet(lambda: SGDRegressor(random_state=0).fit(X, y))
            except Exception as exc:  # overflow on raw features
                return exc, []

        items = {"gdr": lambda: quiet(lambda: GDRegressor().fit(X, y)),
                 "gdr_ols": lambda: quiet(lambda: GDRegressor(penalty=None).fit(X, y)),
                 "descend": lambda: quiet(lambda: gdlab.descend(X, y)),
                 "linreg": lambda: LinearRegression().fit(X, y),
                 "ridge": lambda: Ridge(alpha=ALPHA * m).fit(X, y),
                 "sgd": sgd}
        times, o = run_rounds(items, rounds)
        lr, rd = o["linreg"], o["ridge"]
        cf, cf2 = gdlab.closed_form(X, y), gdlab.closed_form(X, y, l2=2 * ALPHA)
        f_ols = min(objective(X, y, lr.coef_, lr.intercept_, 0.0), objective(X, y, cf.coef, cf.intercept, 0.0))
        f_ridge = min(objective(X, y, rd.coef_, rd.intercept_, ALPHA),
                      objective(X, y, cf2.coef, cf2.intercept, ALPHA))
        row = {"name": name, "m": m, "d": X.shape[1], "times": times,
               "lr_gap": rel(objective(X, y, lr.coef_, lr.intercept_, 0.0), f_ols),
               "ridge_gap": rel(objective(X, y, rd.coef_, rd.intercept_, ALPHA), f_ridge)}
        for key, alpha, f_star in (("gdr", ALPHA, f_ridge), ("gdr_ols", 0.0, f_ols)):
            est, warns = o[key]
            row[key] = {"gap": rel(objective(X, y, est.coef_, est.intercept_, alpha), f_star), "n_iter": est.n_iter_,
                        "converged": est.converged_, "warnings": warns}
        res, warns = o["descend"]
        row["descend"] = {"gap": rel(objective(X, y, res.coef, res.intercept, 0.0), f_ols), "n_iter": res.n_iter,
                          "converged": res.converged, "scaling": res.scaling, "warnings": warns}
        s, warns = o["sgd"]
        if isinstance(s, Exception):
            row["sgd"] = {"error": f"{type(s).__name__}: {str(s)[:80]}"}
        else:
            row["sgd"] = {"gap": rel(objective(X, y, s.coef_, s.intercept_, ALPHA), f_ridge), "n_iter": s.n_iter_,
                          "warnings": warns}
        rows.append(row)
    return rows


# ---- the report ----------------------------------------------------------------------------------------------
def g(x: float) -> str:
    return f"{x:.1e}"


def yes(b) -> str:
    return "yes" if b else "**no**"


def report(results: list[dict], real: list[dict], args, meta: dict) -> str:
    n, ns = args.rounds, args.slow_rounds
    L = [f"{meta['date']}, {meta['machine']}; gdlab {meta['label']}. Load average (1/5/15 min) at the start "
         f"{meta['load_start']}, at the end {meta['load_end']} (2 cores; other jobs ran on the machine). "
         f"Data: m x d with x_j = s_j (z_j + c_j), scales s_j over 10^-2..10^2 (log-uniform), offsets c_j ~ U(-5, 5), "
         f"y = z . beta + 3 + N(0, 1), float64. Times: median [min-max] of {n} interleaved rounds for the gdlab fits "
         f"and the reads of X, {ns} for the scikit-learn peers (a block of their own); gdlab's blocks with the "
         "compiled and with the BLAS statistics pass are separate. 'gap' = (F - F*)/F*, F = MSE + alpha |w|^2 "
         "(alpha = 1e-4 for the l2 defaults, 0 otherwise), F* the optimum (Ridge(alpha = 1e-4 m) or "
         "LinearRegression, checked against gdlab.closed_form).", ""]
    hdr = "| fit | " + " | ".join(f"{r['m']:.0e} x {r['d']}: time | gap | iters, converged" for r in results) + " |"
    L += [hdr, "|---|" + "---|---|---|" * len(results)]

    def row(label, cells):
        L.append(f"| {label} | " + " | ".join(cells) + " |")

    row("one read of X (`X.sum()`), in the peers' / BLAS / compiled block",
        [f"{ms(r['peers']['read'])} / {ms(r['blas']['read'])} / {ms(r['compiled']['read'])} | | " for r in results])
    row("scikit-learn's input check (`check_array`, in GDRegressor.fit)",
        [f"{ms(r['compiled']['check'])} | | " for r in results])
    row("gdlab's statistics pass alone (`GramStats.from_arrays`), compiled / BLAS",
        [f"{ms(r['compiled']['stats'])} / {ms(r['blas']['stats'])} | | " for r in results])
    for key, label in (("gdr", "**`GDRegressor().fit`** (l2, alpha=1e-4; vs Ridge)"),
                       ("gdr_ols", "`GDRegressor(penalty=None).fit` (vs LinearRegression)"),
                       ("descend", "**`gdlab.descend(X, y)`**"),
                       ("cli", "`gdlab fit`'s library path (descend with the CLI's settings)")):
        for cfg, cl in (("compiled", "compiled"), ("blas", "BLAS")):
            cells = []
            for r in results:
                x = r[cfg + "_res"][key]
                extra = f", {x['scaling']}" if "scaling" in x else ""
                cells.append(f"{ms(r[cfg][key])} | {g(x['gap'])} | {x['n_iter']}, {yes(x['converged'])}{extra}")
            row(f"{label}, {cl} statistics", cells)
    cells = []
    for r in results:
        c = r.get("cli_proc")
        if c is None:
            cells.append("not run | | ")
        elif c["rc"] != 0:
            cells.append(f"{ms(c['wall'])}, exit {c['rc']} | | ")
        else:
            cells.append(f"{ms(c['wall'])} (one run) | {g(c['gap'])} | {c['n_iter']}, {yes(c['converged'])}, "
                         f"{c['scaling']}")
    row("`gdlab fit X.npy --target=-1` subprocess, end to end", cells)
    row("`LinearRegression().fit`", [f"{ms(r['peers']['linreg'])} | {g(r['ref']['lr_gap'])} | " for r in results])
    row("`Ridge(alpha=1e-4 m).fit`", [f"{ms(r['peers']['ridge'])} | {g(r['ref']['ridge_gap'])} | " for r in results])
    row("`SGDRegressor(max_iter=6, tol=None)` (the shortest default run; vs Ridge)",
        [f"{ms(r['peers']['sgd6'])} | {g(r['sgd6_gap'])} | 6, no" for r in results])
    row("`make_pipeline(StandardScaler(), SGDRegressor())` (MSE gap vs LinearRegression)",
        [f"{ms(r['peers']['sgd_pipe'])} | {g(r['sgd_pipe']['mse_gap'])} | {r['sgd_pipe']['n_iter']} epochs"
         for r in results])

    L += ["", "Ratios of medians (peer / gdlab: higher is better for gdlab), compiled statistics (BLAS in brackets):",
          ""]
    L.append("| m x d | LinearRegression / GDRegressor(penalty=None) | Ridge / GDRegressor() | LinearRegression / "
             "descend | StandardScaler+SGDRegressor / GDRegressor() | SGDRegressor, 6 epochs / GDRegressor() | "
             "GDRegressor() / one read | descend / one read | descend / one read, best of rounds | "
             "LinearRegression / `gdlab fit` subprocess |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        def ratio(peer, key, fmt="{:.1f}x"):
            return " ".join([fmt.format(peer / med(r["compiled"][key])),
                             "(" + fmt.format(peer / med(r["blas"][key])) + ")"])

        def per_read(key):
            return (f"{med(r['compiled'][key]) / med(r['compiled']['read']):.1f}x "
                    f"({med(r['blas'][key]) / med(r['blas']['read']):.1f}x)")
        def best_read(key):
            return (f"{min(r['compiled'][key]) / min(r['compiled']['read']):.1f}x "
                    f"({min(r['blas'][key]) / min(r['blas']['read']):.1f}x)")
        p = {k: med(v) for k, v in r["peers"].items()}
        c = r.get("cli_proc")
        cli_ratio = f"{p['linreg'] / c['wall']:.2f}x" if c and c["rc"] == 0 else "n/a"
        L.append(f"| {r['m']:.0e} x {r['d']} | {ratio(p['linreg'], 'gdr_ols')} | {ratio(p['ridge'], 'gdr')} | "
                 f"{ratio(p['linreg'], 'descend')} | {ratio(p['sgd_pipe'], 'gdr')} | {ratio(p['sgd6'], 'gdr')} | "
                 f"{per_read('gdr')} | {per_read('descend')} | {best_read('descend')} | {cli_ratio} |")

    L += ["", "Scaling costs no extra pass: gdlab's passes over X counted in each fit (statistics passes / column "
          "passes / row evaluations), and `descend` at a fixed 200 iterations (tol=None) with and without "
          "standardizing (the gap shows what the 200 iterations reached):", ""]
    L.append("| m x d | passes: GDRegressor() | GDRegressor(penalty=None) | descend() | CLI path | standardize=True, "
             "200 it. | standardize=False, 200 it. | time standardize=True | time standardize=False | difference, "
             "in reads of X |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        pc = lambda k: "/".join(str(r["passes"][k][j]) for j in ("stats", "columns", "rows"))
        cells = []
        for cfg, cl in (("compiled", "compiled"), ("blas", "BLAS")):
            a, b = r[cfg]["std200"], r[cfg]["raw200"]
            diff = (med(a) - med(b)) / med(r[cfg]["read"])
            cells.append((f"{ms(a)} ({cl}; gap {g(r[cfg + '_res']['std200']['gap'])})",
                          f"{ms(b)} ({cl}; gap {g(r[cfg + '_res']['raw200']['gap'])})", f"{diff:+.2f} ({cl})"))
        L.append(f"| {r['m']:.0e} x {r['d']} | {pc('gdr')} | {pc('gdr_ols')} | {pc('descend')} | {pc('cli')} | "
                 f"{pc('std200')} | {pc('raw200')} | " + "<br>".join(c[0] for c in cells) + " | "
                 + "<br>".join(c[1] for c in cells) + " | " + "<br>".join(c[2] for c in cells) + " |")

    L += ["", f"Real data (scikit-learn's, features as they come), median [min-max] of {args.real_rounds} interleaved "
          "rounds; gaps as above (GDRegressor() and SGDRegressor() against Ridge(alpha=1e-4 m), the others against "
          "LinearRegression):", ""]
    L.append("| data (m x d) | GDRegressor() | GDRegressor(penalty=None) | descend() | LinearRegression | "
             "Ridge(alpha=1e-4 m) | SGDRegressor() (random_state=0) |")
    L.append("|---|---|---|---|---|---|---|")
    for r in real:
        t = r["times"]
        cell = lambda k: (f"{ms(t[k])}; gap {g(r[k]['gap'])}, {r[k]['n_iter']} it., converged "
                          f"{yes(r[k]['converged'])}")
        s = r["sgd"]
        sgd_cell = (f"{ms(t['sgd'])}; {s['error']}" if "error" in s else
                    f"{ms(t['sgd'])}; gap {g(s['gap'])}, {s['n_iter']} epochs"
                    + (f" ({', '.join(s['warnings'])})" if s["warnings"] else ""))
        L.append(f"| {r['name']} ({r['m']} x {r['d']}) | {cell('gdr')} | {cell('gdr_ols')} | {cell('descend')} | "
                 f"{ms(t['linreg'])}; gap {g(r['lr_gap'])} | {ms(t['ridge'])}; gap {g(r['ridge_gap'])} | {sgd_cell} |")

    L.append("")
    for r in results:
        c = r.get("cli_proc")
        notes = [f"{r['m']:.0e} x {r['d']}: load average {r['load']['start']} at the start, "
                 f"{r['load']['peers']} after the peers, {r['load']['blas']} / {r['load']['compiled']} after the BLAS "
                 f"/ compiled blocks"]
        notes.append(f"condition number of the problem {r['kappa_raw']:.1e} on the raw features, "
                     f"{r['compiled_res']['descend']['kappa']:.2f} standardized (what the descent sees: hence its "
                     "few iterations; the time is the statistics pass)")
        notes.append(f"the optimum's two references agree to {g(r['ref']['ols_agree'])} (LinearRegression vs "
                     f"closed_form) and {g(r['ref']['ridge_agree'])} (Ridge vs closed_form(l2=2 alpha))")
        if c and c["rc"] == 0:
            notes.append(f"the `gdlab fit` subprocess ({ms(c['wall'], False)}) holds the interpreter's start-up and "
                         f"imports (`python -c 'import gdlab.cli'`: {ms(c['startup'], False)}) and reading the file "
                         f"(`gdlab.io.load_table` in-process: {ms(c['read'], False)}); it takes the BLAS statistics "
                         f"(a fresh process does not load numba for X under 4e8 elements)")
        elif c:
            notes.append(f"the `gdlab fit` subprocess failed (exit {c['rc']}): {c['stderr']}")
        warned = sorted({w for cfg in ("compiled", "blas") for x in r[cfg + "_res"].values()
                         for w in x.get("warnings", [])})
        if warned:
            notes.append("warnings from the gdlab default fits: " + ", ".join(warned))
        if r["sgd_pipe"]["warnings"]:
            notes.append("StandardScaler+SGDRegressor warned: " + ", ".join(r["sgd_pipe"]["warnings"]))
        L.append("- " + "; ".join(notes) + ".")
    if meta.get("sgd_defaults"):
        s = meta["sgd_defaults"]
        L.append(f"- `SGDRegressor()` with every default (random_state=0) on {s['m']:.0e} x {s['d']}, one run "
                 f"(--sgd-defaults): {s['seconds']:.1f} s, {s['n_iter']} epochs, gap {g(s['gap'])} against Ridge.")
    return "\n".join(L)


def sgd_defaults(m: int, d: int) -> dict:
    from sklearn.linear_model import Ridge, SGDRegressor

    X, y = make_data(m, d)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = SGDRegressor(random_state=0).fit(X, y)
    seconds = time.perf_counter() - t0
    rd = Ridge(alpha=ALPHA * m).fit(X, y)
    f_star = objective(X, y, rd.coef_, rd.intercept_, ALPHA)
    return {"m": m, "d": d, "seconds": seconds, "n_iter": int(s.n_iter_),
            "gap": rel(objective(X, y, s.coef_, s.intercept_, ALPHA), f_star)}


def blas_probe() -> dict:
    """Rate of X^T X for a 200000 x 100 block (the peers' kind of product) on a thread per core and on one, best
    of 3 each: on a loaded machine the multi-threaded rate falls below the single-threaded one (OpenBLAS's threads
    wait for each other at every step)."""
    from threadpoolctl import threadpool_limits

    B = np.random.default_rng(1).standard_normal((200_000, 100))
    out = {}
    for key, limit in (("all", os.cpu_count()), ("one", 1)):
        with threadpool_limits(limit):
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                B.T @ B
                best = min(best, time.perf_counter() - t0)
        out[key] = B.shape[0] * B.shape[1] ** 2 / best / 1e9  # multiply-adds of the full product
    return out


def subsection_title(args) -> str:
    if args.blas_threads is None:
        return "BLAS on its own threads (the method of the other sections)"
    return f"BLAS limited to {args.blas_threads} thread(s) (--blas-threads {args.blas_threads})"


def merge_subsection(title: str, text: str) -> str:
    """The section's body with this run's subsection (``### title``) replaced or added, the other runs' kept."""
    import re

    intro = ("Written by `benchmarks/bench_defaults.py`, one subsection per BLAS thread setting (on a loaded "
             "machine OpenBLAS's threads can slow each other far below one thread's speed; each subsection says "
             "how its run found the machine).")
    parts: dict[str, str] = {}
    existing = RESULTS.read_text() if RESULTS.exists() else ""
    m = re.search(rf"^## {re.escape(HEADING)}\n(.*?)(?=^## |\Z)", existing, re.S | re.M)
    if m:
        for sub in re.finditer(r"^### (.+?)\n(.*?)(?=^### |\Z)", m.group(1), re.S | re.M):
            parts[sub.group(1).strip()] = sub.group(2).strip()
    parts[title] = text.strip()
    return intro + "\n\n" + "\n\n".join(f"### {t}\n\n{body}" for t, body in parts.items())


def source_label() -> str:
    here = Path(gdlab.__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "-C", str(here), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(here), "status", "--porcelain", "--", "."], capture_output=True,
                               text=True, check=True).stdout.strip()
        return f"at {rev}" + (" with uncommitted changes in src/gdlab" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return f"from {here}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the gdlab fits (each block)")
    ap.add_argument("--slow-rounds", type=int, default=3, help="interleaved rounds of the scikit-learn peers")
    ap.add_argument("--real-rounds", type=int, default=11, help="interleaved rounds on the real data sets")
    ap.add_argument("--no-cli", action="store_true", help="skip the `gdlab fit` subprocess")
    ap.add_argument("--sgd-defaults", action="store_true",
                    help="also run SGDRegressor() with every default on rows x first features once (minutes)")
    ap.add_argument("--blas-threads", type=int, default=None,
                    help="limit the BLAS to this many threads for the whole run (default: the BLAS's own setting)")
    ap.add_argument("--label", default=None, help="what gdlab is measured (default: its git revision)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        _limits = threadpool_limits(args.blas_threads)  # noqa: F841 (for the rest of the process)
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.blas_threads)  # the CLI's

    meta = {"date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
            "label": args.label or source_label(), "load_start": load()}
    if args.blas_threads is not None:
        meta["machine"] += f"; BLAS limited to {args.blas_threads} thread(s) for this run (--blas-threads)"
    t_start = time.perf_counter()
    meta["load_compiled_s"] = gdlab.load_compiled()
    meta["blas_start"] = blas_probe()
    results = []
    for d in args.features:
        results.append(run_shape(args.rows, d, args))
        print(f"{args.rows} x {d} done at {time.perf_counter() - t_start:.0f} s", flush=True)
    real = run_real(args.real_rounds)
    if args.sgd_defaults:
        meta["sgd_defaults"] = sgd_defaults(args.rows, args.features[0])
    meta["blas_end"] = blas_probe()
    meta["load_end"] = load()
    meta["seconds"] = time.perf_counter() - t_start
    text = report(results, real, args, meta)
    text += ("\n- BLAS health (X^T X of a 200000 x 100 block, best of 3, on one BLAS thread per core / on one): "
             f"{meta['blas_start']['all']:.1f} / {meta['blas_start']['one']:.1f} G multiply-adds/s at the start, "
             f"{meta['blas_end']['all']:.1f} / {meta['blas_end']['one']:.1f} at the end; where the first falls below "
             "the second, other jobs hold a core and OpenBLAS's threads wait for each other, which slows every "
             "multi-threaded BLAS call (the peers, and gdlab's BLAS statistics pass) far more than the load suggests.")
    text += f"\n- The whole benchmark took {meta['seconds']:.0f} s (loading the compiled kernel: " \
            f"{meta['load_compiled_s']:.2f} s)."
    print(text)
    failed = [f"{r['m']:.0e} x {r['d']} {k}: {v}" for r in results for k, v in r["passes"].items()
              if k in ("std200", "raw200") and v != {"stats": 1, "columns": 0, "rows": 0}]
    if failed:
        text += "\n- **FAILED**: standardizing read X more than once: " + "; ".join(failed) + "."
    if not args.no_write:
        write_section(HEADING, merge_subsection(subsection_title(args), text))
    if failed:
        sys.exit("scaling read X more than once: " + "; ".join(failed))


if __name__ == "__main__":
    main()
