"""Stochastic and mini-batch epochs (issue 15): gdlab's two epoch engines against plain loops and scikit-learn.

One epoch = one pass of updates over m = 10^6 rows in a shuffled order, d = 10 and 100 (Gaussian features, noise
0.5), batch 1, 32 and 256, for gd, momentum (beta 0.9) and adam, constant step, no penalty, from zero weights. We
time what the one loop of ``gdlab.descend`` calls once per epoch:

* gdlab compiled: ``CompiledEpochs.epoch`` (numba, the loss's scalar derivative, the optimizer's coordinate
  rule and the schedule's scalar rate compiled into the loop), shuffle included;
* gdlab compiled, rows in order: the same epoch without shuffling (shuffle=False), the floor that the prefetching
  of a shuffled epoch's rows can approach (each row read from memory once, in sequence);
* gdlab NumPy: ``NumpyEpochs.epoch`` (the path without numba), shuffle included;
* plain NumPy: the eight-line loop over the slices of ``rng.permutation(m)`` (the same shuffles and arithmetic);
* PyTorch CPU, when installed: the same plain loop on torch tensors (one thread; never a dependency of gdlab);
* SGDRegressor (batch 1 only): a whole ``fit`` with max_iter=1 (its epoch is all of its fit; its default
  invscaling schedule, which costs it nothing measurable).

And one logistic-regression epoch (batch 1, y in {-1, +1}) against SGDClassifier(loss='log_loss', max_iter=1).

Rounds are interleaved (each round runs every candidate once) and the medians are reported with the min-max spread
and the load average. Compiled code (gdlab's kernel, scikit-learn's Cython) and BLAS code (the NumPy loops) run in
separate rounds, and BLAS is held to one thread (OPENBLAS_NUM_THREADS=1, set before NumPy loads): OpenBLAS's
threads spin after each call and would steal the single-threaded kernel's core on this 2-core machine, and every
candidate here is single-threaded. Batch-1 NumPy loops take about 10 us per update: they run on the first 10^4
rows and are reported per 10^6 rows (x100).

Run: ``python benchmarks/bench_sgd.py [--quick] [--rounds N]``; writes the "Mini-batch epochs (issue 15)" section
of RESULTS.md (the "Stochastic epochs (issue 3)" section above it is the previous kernel's record).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import machine, write_section  # noqa: E402

HEADING = "Mini-batch epochs (issue 15)"
OPTIMIZERS = ("gd", "momentum", "adam")
BATCHES = (1, 32, 256)
RATE = {"gd": 0.01, "momentum": 0.001, "adam": 0.001}
SMALL = 10_000  # rows for the batch-1 NumPy and PyTorch loops (about 10 us per update)


def make_data(m: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d))
    y = X @ rng.standard_normal(d) + 2.0 + 0.5 * rng.standard_normal(m)
    return X, y


# ---- the plain loops (what a user would write) -------------------------------------------------------------------
def plain_numpy(X, y, batch, opt, lr, seed):
    """Plain mini-batch descent on the MSE, one epoch; returns (w, b)."""
    rng = np.random.default_rng(seed)
    m, d = X.shape
    w, b = np.zeros(d), 0.0
    vw, vb, sw, sb = np.zeros(d), 0.0, np.zeros(d), 0.0
    order = rng.permutation(m)
    for t, start in enumerate(range(0, m, batch), 1):
        rows = order[start:start + batch]
        Xb = X[rows]
        r = Xb @ w + b - y[rows]
        gw, gb = (2.0 / len(rows)) * (Xb.T @ r), 2.0 * r.mean()
        if opt == "gd":
            w -= lr * gw
            b -= lr * gb
        elif opt == "momentum":
            vw = gw + 0.9 * vw
            vb = gb + 0.9 * vb
            w -= lr * vw
            b -= lr * vb
        else:
            vw = 0.9 * vw + 0.1 * gw
            vb = 0.9 * vb + 0.1 * gb
            sw = 0.999 * sw + 0.001 * gw * gw
            sb = 0.999 * sb + 0.001 * gb * gb
            c1, c2 = 1 - 0.9**t, 1 - 0.999**t
            w -= lr * (vw / c1) / (np.sqrt(sw / c2) + 1e-8)
            b -= lr * (vb / c1) / (math.sqrt(sb / c2) + 1e-8)
    return w, b


def plain_torch(torch, X, y, batch, opt, lr, seed):
    """The same loop on torch tensors (manual gradients: no autograd graph per step)."""
    rng = np.random.default_rng(seed)
    m, d = X.shape
    w, b = torch.zeros(d, dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    vw, vb, sw, sb = torch.zeros_like(w), torch.zeros_like(b), torch.zeros_like(w), torch.zeros_like(b)
    order = torch.from_numpy(rng.permutation(m))
    for t, start in enumerate(range(0, m, batch), 1):
        rows = order[start:start + batch]
        Xb = X[rows]
        r = Xb @ w + b - y[rows]
        gw, gb = (2.0 / len(rows)) * (Xb.T @ r), 2.0 * r.mean()
        if opt == "gd":
            w -= lr * gw
            b -= lr * gb
        elif opt == "momentum":
            vw = gw + 0.9 * vw
            vb = gb + 0.9 * vb
            w -= lr * vw
            b -= lr * vb
        else:
            vw = 0.9 * vw + 0.1 * gw
            vb = 0.9 * vb + 0.1 * gb
            sw = 0.999 * sw + 0.001 * gw * gw
            sb = 0.999 * sb + 0.001 * gb * gb
            c1, c2 = 1 - 0.9**t, 1 - 0.999**t
            w -= lr * (vw / c1) / (torch.sqrt(sw / c2) + 1e-8)
            b -= lr * (vb / c1) / (torch.sqrt(sb / c2) + 1e-8)
    return w.numpy(), float(b)


# ---- gdlab's engines, as the one loop drives them ----------------------------------------------------------------
def gdlab_engine(kind, X, Y, batch, opt_name, lr, seed, loss="squared_error", shuffle=True):
    """A function running one epoch of gdlab's ``kind`` engine ('compiled' or 'numpy') from zero weights."""
    from gdlab import losses, optimizers
    from gdlab.descent import _Problem
    from gdlab.engines import Averager, CompiledEpochs, NumpyEpochs
    from gdlab.objectives import Penalty
    from gdlab.sources.memory import MemorySource

    loss_obj = losses.get_loss(loss)
    opt = optimizers.make_optimizer(opt_name, lr, **({"beta": 0.9} if opt_name == "momentum" else {}))
    mem = MemorySource(X, Y, None, loss_obj, True)
    rng = np.random.default_rng(seed)
    if kind == "compiled":
        eng = CompiledEpochs(mem, True, loss_obj, Penalty(), opt.learning_rate, opt, batch, rng, shuffle)
    else:
        eng = NumpyEpochs(_Problem(mem, Penalty(), True), mem, batch, rng, True, opt.learning_rate,
                          opt.direction.update)

    def run():
        theta = np.zeros((X.shape[1] + 1, Y.shape[1]))
        theta, _, _, _ = eng.epoch(theta, eng.init_state(theta, opt.direction.init), 0, 1.0, Averager())
        return theta[1:, 0], float(theta[0, 0])

    return run


def mse(X, y, w, b):
    r = X @ w + b - y
    return float(np.mean(r * r))


def summary(times):
    med = statistics.median(times)
    return med, min(times), max(times)


def fmt(s):
    med, lo, hi = s
    return f"{med * 1e3:.0f} ({lo * 1e3:.0f}–{hi * 1e3:.0f})"


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="m = 10^5, d = 10 only, 2 rounds (a smoke run)")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = 2 if args.quick else args.rounds
    m = 100_000 if args.quick else 1_000_000
    dims = (10,) if args.quick else (10, 100)

    from sklearn.linear_model import SGDClassifier, SGDRegressor

    from gdlab import _sgd_kernel

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        torch = None
    _sgd_kernel.warm_up()
    load_before = os.getloadavg()
    rows = []  # (d, optimizer, batch, {candidate: (median, min, max) per 10^6 rows}, {candidate: mse})
    for d in dims:
        X, y = make_data(m, d)
        Y = y[:, None]
        small = min(SMALL, m)
        Xs, ys = X[:small], y[:small]
        Xt = yt = None
        if torch is not None:
            Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        for opt in OPTIMIZERS:
            for batch in BATCHES:
                lr = RATE[opt]
                compiled_c = {"gdlab compiled": gdlab_engine("compiled", X, Y, batch, opt, lr, 0),
                              "compiled, in order": gdlab_engine("compiled", X, Y, batch, opt, lr, 0, shuffle=False)}
                if batch == 1 and opt == "gd":
                    compiled_c["SGDRegressor"] = lambda: _sk_fit(SGDRegressor(max_iter=1, tol=None, random_state=0,
                                                                              alpha=0.0, eta0=lr / 2), X, y)
                scale = m / small if batch == 1 else 1.0
                Xn, yn = (Xs, ys) if batch == 1 else (X, y)
                blas_c = {"gdlab NumPy": gdlab_engine("numpy", Xn, yn[:, None], batch, opt, lr, 0),
                          "plain NumPy": lambda Xn=Xn, yn=yn: plain_numpy(Xn, yn, batch, opt, lr, 0)}
                if torch is not None:
                    Xtn, ytn = (Xt[:small], yt[:small]) if batch == 1 else (Xt, yt)
                    blas_c["PyTorch CPU"] = lambda Xtn=Xtn, ytn=ytn: plain_torch(torch, Xtn, ytn, batch, opt, lr, 0)
                times: dict[str, list[float]] = {}
                losses: dict[str, float] = {}
                for group, factor in ((compiled_c, 1.0), (blas_c, scale)):
                    for _ in range(rounds):
                        for name, fn in group.items():
                            sec, (w, b) = timed(fn)
                            times.setdefault(name, []).append(sec * factor)
                            losses[name] = mse(X, y, w, b)
                stats = {k: summary(v) for k, v in times.items()}
                rows.append((d, opt, batch, stats, losses))
                print(d, opt, batch, {k: fmt(v) for k, v in stats.items()}, flush=True)
        # logistic regression: one epoch of batch 1, labels -1/+1
        lab = np.where(y > np.median(y), 1.0, -1.0)
        logi = {"gdlab compiled (log_loss)": gdlab_engine("compiled", X, lab[:, None], 1, "gd", 0.01, 0, "log_loss"),
                "SGDClassifier (log_loss)": lambda: _sk_fit(SGDClassifier(loss="log_loss", max_iter=1, tol=None,
                                                                          random_state=0, alpha=1e-6,
                                                                          learning_rate="constant", eta0=0.01),
                                                            X, lab)}
        times = {}
        for _ in range(rounds):
            for name, fn in logi.items():
                sec, _ = timed(fn)
                times.setdefault(name, []).append(sec)
        rows.append((d, "logistic", 1, {k: summary(v) for k, v in times.items()}, {}))
        print(d, "logistic", {k: fmt(summary(v)) for k, v in times.items()}, flush=True)
    load_after = os.getloadavg()
    write_section(HEADING, _report(rows, m, rounds, load_before, load_after, torch, args.quick))


def _sk_fit(model, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    coef = np.ravel(model.coef_)
    return coef, float(np.ravel(model.intercept_)[0])


def _targets(rows) -> str:
    """Issue 15's targets against this run's medians, in words computed from the table."""
    def ratio(d, opt, batch, peer):
        stats = next((st for dd, o, b, st, _ in rows if (dd, o, b) == (d, opt, batch)), None)
        if stats is None or peer not in stats:
            return None
        return stats[peer][0] / stats["gdlab compiled"][0]

    met, missed = [], []
    for d in sorted({r[0] for r in rows}):
        for opt in OPTIMIZERS:
            for batch in (32, 256):
                x = ratio(d, opt, batch, "plain NumPy")
                if x is not None:
                    (met if x >= 3.0 else missed).append(f"d = {d} {opt} batch {batch} {x:.2f}x")
        x = ratio(d, "gd", 1, "SGDRegressor")
        if x is not None:
            (met if x >= 3.0 else missed).append(f"d = {d} batch-1 gd {x:.2f}x SGDRegressor's one-epoch fit")
    return (f"- Issue 15's targets (3x the plain NumPy loop for mini-batches, 3x SGDRegressor for batch 1), this run: "
            f"met for {'; '.join(met) or 'none'}; not met for {'; '.join(missed) or 'none'}.")


def _report(rows, m, rounds, load_before, load_after, torch, quick) -> str:
    names = ["gdlab compiled", "compiled, in order", "gdlab NumPy", "plain NumPy", "PyTorch CPU",
             "SGDRegressor"]
    if torch is None:
        names.remove("PyTorch CPU")
    lines = []
    if quick:
        lines += ["_Quick run (m = 10^5): regenerate without --quick for the issue's figures._", ""]
    lines += [
        f"One epoch over m = {m:,} rows, shuffled, MSE loss, constant step, from zero weights; milliseconds per "
        f"epoch, median (min–max) of {rounds} interleaved rounds. Compiled code (gdlab's kernel, scikit-learn's "
        "Cython) and the BLAS loops ran in separate rounds, BLAS on one thread (OPENBLAS_NUM_THREADS=1; every "
        "candidate is single-threaded). Batch-1 NumPy/PyTorch loops ran on 10^4 rows, reported x100. SGDRegressor: "
        "a whole fit with max_iter=1 (batch 1 is all it does). 'x plain' = plain NumPy loop / gdlab compiled; "
        "'NumPy/plain' = gdlab's NumPy engine / the plain loop (<= 1 means no slower). 'compiled, in order': the "
        "same compiled epoch without shuffling (every other column is shuffled). MSE after the epoch, gdlab "
        "compiled / plain NumPy: for batch 32 and 256 the same to the noise of the row order; for batch 1 the plain "
        "loop's is after its 10^4 rows only. The steps are the same for d = 10 and 100 (gd 0.01, momentum and adam "
        "0.001), too large for batch-1 gd and momentum at d = 100 (|x|^2 ~ 100), which diverge there (inf or "
        "huge MSE): their times are those of the same arithmetic.",
        "",
        "| d | optimizer | batch | " + " | ".join(names) + " | x plain | NumPy/plain | MSE (compiled / plain) |",
        "|---|---|---:|" + "---:|" * len(names) + "---:|---:|---|",
    ]
    for d, opt, batch, stats, losses in rows:
        if opt == "logistic":
            continue
        cells = [fmt(stats[n]) if n in stats else "" for n in names]
        ratio = stats["plain NumPy"][0] / stats["gdlab compiled"][0]
        np_ratio = stats["gdlab NumPy"][0] / stats["plain NumPy"][0]
        lines.append(f"| {d} | {opt} | {batch} | " + " | ".join(cells) + f" | **{ratio:.1f}x** | {np_ratio:.2f} | "
                     f"{losses['gdlab compiled']:.4g} / {losses['plain NumPy']:.4g} |")
    lines += ["", "Logistic regression, one epoch of batch 1 (labels -1/+1, constant step 0.01):", "",
              "| d | gdlab compiled (log_loss) | SGDClassifier (log_loss), whole fit | speed-up |",
              "|---|---:|---:|---:|"]
    for d, opt, batch, stats, _ in rows:
        if opt == "logistic":
            a, b = stats["gdlab compiled (log_loss)"], stats["SGDClassifier (log_loss)"]
            lines.append(f"| {d} | {fmt(a)} | {fmt(b)} | **{b[0] / a[0]:.1f}x** |")
    lines += [
        "",
        f"- Load average (1, 5, 15 min) before: {', '.join(f'{v:.2f}' for v in load_before)}; after: "
        f"{', '.join(f'{v:.2f}' for v in load_after)}. Machine: {machine()}; shared with other jobs while measured.",
        _targets(rows),
        "- gdlab compiled: the kernel built from the loss's scalar_derivative, the optimizer's CoordinateRule and the "
        "schedule's scalar_rate (no loss, optimizer or schedule codes), its row loops compiled with reassociation and "
        "contraction only (SIMD dot products and updates), loaded from numba's cache before timing.",
    ]
    if torch is None:
        lines.append("- PyTorch was not installed in this run (it is never a dependency of gdlab).")
    else:
        lines.append(f"- PyTorch {torch.__version__}, CPU, one thread, the same plain loop on tensors.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
