"""Logistic regression at scale (issue 11): time to a relative objective gap of 1e-8.

Data: m x d standardised Gaussian features, labels drawn from a logistic model; an l2 penalty alpha = 1e-4
(LogisticRegression's C = 1 / (m alpha)), so the minimiser exists and is unique.
Contenders, interleaved in each round:

* gdlab.descend(loss="log_loss") with 'auto' steps for gd, nesterov and momentum, tol=1e-8 (its own claim; the gap
  measured here against the reference), and the reference solvers gdlab.solvers.newton and .lbfgs at tol=1e-8;
* LogisticRegression(solver="lbfgs") at the loosest tol in {1e-4, ..., 1e-10} that reaches the gap (found once,
  before the timed rounds: a user would have to know it);
* SGDClassifier(loss="log_loss", alpha) with its defaults (its gap reported; it does not aim at 1e-8).

The reference optimum F* is Newton's method (IRLS) written in NumPy, run to machine precision.
Medians of the rounds, with min-max, and the load average. Usage: python benchmarks/bench_glm.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

import gdlab


def make(m: int, d: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d))
    w = rng.standard_normal(d) / np.sqrt(d)
    y = (rng.random(m) < 1 / (1 + np.exp(-(2 * X @ w + 0.3)))).astype(float)
    return X, y


def objective(X, y, w, b, alpha):
    z = (2 * y - 1) * (X @ w + b)
    return float(np.mean(np.logaddexp(0, -z)) + 0.5 * alpha * w @ w)


def newton(X, y, alpha, iters=30):
    m, d = X.shape
    beta = np.zeros(d + 1)
    P = np.r_[0.0, np.full(d, alpha)]
    for _ in range(iters):
        eta = X @ beta[1:] + beta[0]
        p = 1 / (1 + np.exp(-eta))
        r = p - y
        g = np.r_[r.sum(), X.T @ r] / m + P * beta
        w = p * (1 - p)
        H = np.empty((d + 1, d + 1))
        H[0, 0] = w.sum()
        H[0, 1:] = H[1:, 0] = X.T @ w
        H[1:, 1:] = X.T @ (X * w[:, None])
        H = H / m + np.diag(P)
        step = np.linalg.solve(H, g)
        beta -= step
        if np.abs(step).max() < 1e-14:
            break
    return beta


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def run(m: int, d: int, rounds: int) -> list[str]:
    from sklearn.linear_model import LogisticRegression, SGDClassifier

    X, y = make(m, d)
    alpha = 1e-4
    beta = newton(X, y, alpha)
    f_star = objective(X, y, beta[1:], beta[0], alpha)
    gap = lambda w, b: (objective(X, y, w, b, alpha) - f_star) / f_star
    C = 1.0 / (m * alpha)
    lbfgs_tol = None
    for tol in (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10):
        lr = LogisticRegression(C=C, tol=tol, max_iter=10_000).fit(X, y)
        if gap(lr.coef_[0], lr.intercept_[0]) <= 1e-8:
            lbfgs_tol = tol
            break
    contenders = {
        f"gdlab {opt}": (lambda opt=opt: gdlab.descend(X, y, loss="log_loss", penalty="l2", alpha=alpha,
                                                       optimizer=opt, tol=1e-8, max_iter=10_000, warn=False))
        for opt in ("gd", "nesterov", "momentum")}
    for solver in ("newton", "lbfgs"):
        contenders[f"gdlab.solvers.{solver}"] = (lambda solver=solver: getattr(gdlab.solvers, solver)(
            X, y, loss="log_loss", penalty="l2", alpha=alpha, tol=1e-8, warn=False))
    contenders[f"LogisticRegression(lbfgs, tol={lbfgs_tol:g})"] = lambda: LogisticRegression(
        C=C, tol=lbfgs_tol, max_iter=10_000).fit(X, y)
    contenders["SGDClassifier(log_loss) defaults"] = lambda: SGDClassifier(loss="log_loss", alpha=alpha,
                                                                           random_state=0).fit(X, y)
    times: dict[str, list[float]] = {k: [] for k in contenders}
    gaps: dict[str, float] = {}
    iters: dict[str, int] = {}
    loads = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(rounds):
            loads.append(os.getloadavg()[0])
            for name, fn in contenders.items():
                sec, out = timed(fn)
                times[name].append(sec)
                if hasattr(out, "coef_"):
                    gaps[name] = gap(out.coef_[0], out.intercept_[0])
                    iters[name] = int(np.max(out.n_iter_))
                else:
                    gaps[name] = gap(out.coef, out.intercept)
                    iters[name] = out.n_iter
    lbfgs_name = next(k for k in contenders if k.startswith("LogisticRegression"))
    ref = float(np.median(times[lbfgs_name]))
    lines = [f"### {m:,} x {d} (load average {min(loads):.2f}-{max(loads):.2f} over the rounds)", "",
             "| method | median s | min-max s | vs lbfgs | iterations | relative gap |", "|---|---|---|---|---|---|"]
    for name, ts in times.items():
        med = float(np.median(ts))
        lines.append(f"| {name} | {med:.3f} | {min(ts):.3f}-{max(ts):.3f} | {ref / med:.2f}x | {iters[name]} | "
                     f"{gaps[name]:.1e} |")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", default="1000000x10,1000000x100")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md as it is")
    args = ap.parse_args()
    out = []
    for size in args.sizes.split(","):
        m, d = (int(v) for v in size.split("x"))
        block = run(m, d, args.rounds)
        print("\n".join(block), flush=True)
        out += block
    if args.no_write:
        return
    from _results import machine, write_section

    write_section("Logistic regression (issue 11)",
                  f"Time to a relative objective gap of 1e-8 ({machine()}); 'vs lbfgs' > 1 means faster than "
                  "LogisticRegression(lbfgs). Medians of the rounds, interleaved.\n\n" + "\n".join(out))


if __name__ == "__main__":
    main()
