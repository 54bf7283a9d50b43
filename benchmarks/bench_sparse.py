"""Sparse, text-like X (issue 12): a stochastic epoch and a full-batch fit against scikit-learn; a fit's memory.

Data: m rows (10^6 by default), d = 2^18 hashed features, 20 stored entries a row at column indices drawn uniformly
(generated directly as CSR; a hashing vectorizer's output has this shape), positive tf-idf-like values
(lognormal / sqrt(20)); y = X w* + 0.1 noise, w* ~ N(0, 1).

* Stochastic epoch (batch 1, shuffled, squared error with L2, invscaling eta0 / (t+1)^0.25, no averaging, raw
  columns): ``gdlab.descend(..., max_iter=1)`` end to end (its loss and gradient passes at the start and the end
  included), the engine's epoch alone (``CompiledEpochs.epoch``, the shuffle included), and
  ``SGDRegressor(max_iter=1, tol=None)`` (its whole fit is its epoch). gdlab's squared error is twice
  scikit-learn's, so gdlab runs eta0/2 and alpha*2: the same update.
* The loss after the same epochs (1 and 5): scikit-learn's objective 1/2 mean r^2 + alpha/2 |w|^2 for both.
  (scikit-learn moves the intercept of a sparse X by 0.01 of the step, SPARSE_INTERCEPT_DECAY: not the same
  update for the intercept.)
* Full-batch fit of the same ridge problem: ``gdlab.descend`` with its defaults (full batch, 'auto' step; on 2^18
  parameters the statistics are not formed, so it uses the memory source with a Lanczos estimate of L), against
  Ridge(solver='sparse_cg') and Ridge(solver='sag') with alpha = m * alpha_gdlab / 2 (the same minimiser).
* Memory: a 10^6 x 10^5 CSR at 0.01% density (10 entries a row), in a fresh process: one stochastic epoch and a
  short full-batch fit, tracemalloc's peak and the peak RSS against the CSR's own bytes (asserted below: far below
  the dense 800 GB, and within a few times the stored bytes).

Rounds are interleaved (each round runs every candidate once); medians with the min-max spread and the load average.
Run: ``python benchmarks/bench_sparse.py [--rows N] [--rounds R] [--fit-rounds R] [--no-write]``; writes the section
"Sparse input (issue 12)" of RESULTS.md.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine, write_section  # noqa: E402

HEADING = "Sparse input (issue 12)"
D = 2**18
NNZ = 20
ALPHA_SK = 1e-5  # scikit-learn's alpha; gdlab's is twice it (its squared error is twice scikit-learn's)
ETA0_SK = 0.01  # SGDRegressor's default eta0 and power_t
POWER_T = 0.25


def hashed_rows(m: int, d: int, nnz: int, seed: int = 0) -> sp.csr_array:
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, d, m * nnz).astype(np.int32)
    data = rng.lognormal(0.0, 0.5, m * nnz) / np.sqrt(nnz)
    indptr = np.arange(0, m * nnz + 1, nnz, dtype=np.int32 if m * nnz < 2**31 else np.int64)
    X = sp.csr_array((data, indices, indptr), shape=(m, d))
    X.sum_duplicates()  # (a hashed row can repeat a column: canonical CSR, as scikit-learn's vectorizers give)
    return X


def spread(ts: list[float]) -> str:
    return f"{statistics.median(ts):.3f} s ({min(ts):.3f}-{max(ts):.3f})"


def sk_objective(X, y, coef, intercept, alpha):
    r = X @ coef + intercept - y
    return 0.5 * float(np.mean(r * r)) + 0.5 * alpha * float(coef @ coef)


def gdlab_epoch_kwargs(epochs: int) -> dict:
    from gdlab.schedules import invscaling

    return dict(optimizer="gd", learning_rate=invscaling(ETA0_SK / 2, POWER_T), batch_size=1, penalty="l2",
                alpha=2 * ALPHA_SK, standardize=False, average=False, shuffle=True, max_iter=epochs, tol=None,
                random_state=0, warn=False, engine="compiled")


def sgd_regressor(epochs: int):
    from sklearn.linear_model import SGDRegressor

    return SGDRegressor(max_iter=epochs, tol=None, alpha=ALPHA_SK, eta0=ETA0_SK, power_t=POWER_T,
                        learning_rate="invscaling", penalty="l2", random_state=0)


def engine_epoch(X, y):
    """The engine alone: one CompiledEpochs.epoch (the shuffle included), as gdlab.descend's loop calls it."""
    import gdlab
    from gdlab.engines import Averager, CompiledEpochs
    from gdlab.objectives import Penalty
    from gdlab.optimizers import make_optimizer
    from gdlab.schedules import invscaling
    from gdlab.sources.memory import MemorySource

    loss = gdlab.losses.get_loss("squared_error")
    schedule = invscaling(ETA0_SK / 2, POWER_T)
    mem = MemorySource(X, y[:, None], None, loss)
    opt = make_optimizer("gd", schedule)
    epochs = CompiledEpochs(mem, True, loss, Penalty(0.0, 2 * ALPHA_SK), schedule, opt, 1,
                            np.random.default_rng(0), True)
    theta = np.zeros((X.shape[1] + 1, 1))
    state = epochs.init_state(theta, None)

    def run():
        t0 = time.perf_counter()
        epochs.epoch(theta.copy(), state, 0, 1.0, Averager())
        return time.perf_counter() - t0

    return run


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def stochastic(X, y, rounds: int) -> dict:
    import gdlab

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SGDRegressor's ConvergenceWarning at max_iter=1
        gdlab.descend(X[:1000], y[:1000], **gdlab_epoch_kwargs(1))  # compile (or load the cache) first
        sgd_regressor(1).fit(X[:1000], y[:1000])  # (and scikit-learn's first-call costs)
        run_engine = engine_epoch(X, y)
        run_engine()
        times = {"gdlab descend (1 epoch)": [], "gdlab engine epoch": [], "SGDRegressor fit (1 epoch)": []}
        for _ in range(rounds):
            times["gdlab descend (1 epoch)"].append(timed(lambda: gdlab.descend(X, y, **gdlab_epoch_kwargs(1)))[0])
            times["gdlab engine epoch"].append(run_engine())
            times["SGDRegressor fit (1 epoch)"].append(timed(lambda: sgd_regressor(1).fit(X, y))[0])
        losses = {}
        for epochs in (1, 5):
            r = gdlab.descend(X, y, **gdlab_epoch_kwargs(epochs))
            s = sgd_regressor(epochs).fit(X, y)
            losses[epochs] = (sk_objective(X, y, r.coef, r.intercept, ALPHA_SK),
                              sk_objective(X, y, s.coef_, s.intercept_[0], ALPHA_SK), r.extra["engine_reason"])
    return {"times": times, "losses": losses}


def full_batch(X, y, rounds: int) -> dict:
    import gdlab
    from sklearn.linear_model import Ridge

    m = X.shape[0]
    alpha_g = 2 * ALPHA_SK
    ridge_alpha = m * alpha_g / 2  # m (mean r^2 + alpha_g / 2 |w|^2) = |r|^2 + ridge_alpha |w|^2

    def objective(coef, intercept):
        r = X @ coef + intercept - y
        return float(np.mean(r * r)) + 0.5 * alpha_g * float(coef @ coef)

    runs = {"gdlab descend (full batch, defaults)": lambda: gdlab.descend(X, y, penalty="l2", alpha=alpha_g,
                                                                           warn=False),
            "Ridge(solver='sparse_cg')": lambda: Ridge(alpha=ridge_alpha, solver="sparse_cg").fit(X, y),
            "Ridge(solver='sag')": lambda: Ridge(alpha=ridge_alpha, solver="sag", random_state=0).fit(X, y)}
    times = {k: [] for k in runs}
    detail = {}
    for _ in range(rounds):
        for name, fn in runs.items():
            t, out = timed(fn)
            times[name].append(t)
            if name.startswith("gdlab"):
                detail[name] = dict(objective=objective(out.coef, out.intercept), n_iter=out.n_iter,
                                    converged=bool(out.converged), source=out.source,
                                    message=str(out.message)[:160])
            else:
                detail[name] = dict(objective=objective(out.coef_, out.intercept_),
                                    n_iter="-" if out.n_iter_ is None else int(np.max(out.n_iter_)))
    return {"times": times, "detail": detail}


def memory_child() -> None:
    """In a fresh process: a 10^6 x 10^5 CSR at 0.01% density, one stochastic epoch and a short full-batch fit."""
    import tracemalloc

    def peak_rss():  # VmHWM: this process's own high-water mark (ru_maxrss is inherited across exec)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return 0

    import gdlab

    m, d, nnz = 1_000_000, 100_000, 10
    X = hashed_rows(m, d, nnz, seed=1)
    y = X @ np.random.default_rng(1).standard_normal(d)
    stored = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    gdlab.descend(X[:1000], y[:1000], **gdlab_epoch_kwargs(1))  # compile outside the measurement
    rss0 = peak_rss()
    out = {"stored_bytes": stored, "dense_bytes": m * d * 8, "nnz": int(X.nnz)}
    for name, kw in (("stochastic epoch", gdlab_epoch_kwargs(1)),
                     ("full batch, 20 iterations", dict(penalty="l2", alpha=2 * ALPHA_SK, max_iter=20, tol=None,
                                                        warn=False))):
        tracemalloc.start()
        t0 = time.perf_counter()
        r = gdlab.descend(X, y, **kw)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out[name] = {"tracemalloc_peak": peak, "seconds": seconds, "engine": r.extra.get("engine"),
                     "source": r.source}
    out["peak_rss"] = peak_rss()
    out["rss_before_fits"] = rss0
    print(json.dumps(out))


def memory() -> dict:
    res = subprocess.run([sys.executable, __file__, "--memory-child"], capture_output=True, text=True, check=True)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    for name in ("stochastic epoch", "full batch, 20 iterations"):
        # the fit never densifies: its allocations stay within a few times X's stored bytes
        assert out[name]["tracemalloc_peak"] < 4 * out["stored_bytes"], (name, out)
    assert out["peak_rss"] - out["rss_before_fits"] < 4 * out["stored_bytes"], out
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--fit-rounds", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--memory-child", action="store_true")
    args = ap.parse_args()
    if args.memory_child:
        memory_child()
        return
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    X = hashed_rows(args.rows, D, NNZ)
    y = X @ np.random.default_rng(0).standard_normal(D) + 0.1 * np.random.default_rng(1).standard_normal(args.rows)
    gen = time.perf_counter() - t0
    sto = stochastic(X, y, args.rounds)
    fb = full_batch(X, y, args.fit_rounds)
    mem = memory()
    load1 = os.getloadavg()

    st = sto["times"]
    sk = statistics.median(st["SGDRegressor fit (1 epoch)"])
    lines = [f"Machine: {machine()}. Load average {load0[0]:.2f} at the start, {load1[0]:.2f} at the end "
             f"(1-minute). X: {args.rows:,} x 2^18 CSR, {X.nnz:,} stored entries ({NNZ} a row, uniform hashed "
             f"columns; generated in {gen:.1f} s). {args.rounds} interleaved rounds for the epochs, "
             f"{args.fit_rounds} for the full-batch fits; median (min-max).", "",
             "### A stochastic epoch (batch 1, shuffled, squared error + L2, invscaling, raw columns)", "",
             "| candidate | time per epoch | SGDRegressor / candidate |", "|---|---|---|"]
    for name, ts in st.items():
        lines.append(f"| {name} | {spread(ts)} | {sk / statistics.median(ts):.2f}x |")
    lines += ["", f"gdlab's engine: {sto['losses'][1][2]}.", "",
              "| epochs | gdlab objective | SGDRegressor objective | relative difference |", "|---|---|---|---|"]
    for epochs, (g, s, _) in sto["losses"].items():
        lines.append(f"| {epochs} | {g:.6g} | {s:.6g} | {(g - s) / s:+.2e} |")
    lines += ["", "(scikit-learn's objective 1/2 mean r^2 + alpha/2 |w|^2 on the training rows, alpha = 1e-5.)", "",
              "### Full-batch ridge fit (alpha_gdlab = 2e-5, Ridge alpha = m alpha_gdlab / 2: the same minimiser)", "",
              "| candidate | time | objective mean r^2 + alpha/2 |w|^2 | iterations | notes |", "|---|---|---|---|---|"]
    best = min(v["objective"] for v in fb["detail"].values())
    for name, ts in fb["times"].items():
        det = fb["detail"][name]
        note = (f"source {det['source']}, converged={det['converged']}: {det['message']}" if "source" in det
                else "")
        lines.append(f"| {name} | {spread(ts)} | {det['objective']:.8g} (+{(det['objective'] - best) / best:.1e}) "
                     f"| {det['n_iter']} | {note} |")
    lines += ["", "### Memory: a 10^6 x 10^5 CSR at 0.01% density, in a fresh process", "",
              f"Stored entries {mem['nnz']:,}; the CSR's arrays {mem['stored_bytes'] / 2**20:.0f} MiB "
              f"(dense: {mem['dense_bytes'] / 2**30:.0f} GiB). Peak RSS before the fits "
              f"{mem['rss_before_fits'] / 2**20:.0f} MiB, after {mem['peak_rss'] / 2**20:.0f} MiB.", "",
              "| fit | tracemalloc peak | peak / CSR bytes | time | engine / source |", "|---|---|---|---|---|"]
    for name in ("stochastic epoch", "full batch, 20 iterations"):
        r = mem[name]
        lines.append(f"| {name} | {r['tracemalloc_peak'] / 2**20:.0f} MiB | "
                     f"{r['tracemalloc_peak'] / mem['stored_bytes']:.2f} | {r['seconds']:.2f} s | "
                     f"{r['engine']} / {r['source']} |")
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(HEADING, body)


if __name__ == "__main__":
    main()
