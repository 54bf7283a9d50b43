"""Fresh-process fits (issue 15, item 3): each measurement is its own `python -c`, as a user's script is.

Run: `python benchmarks/bench_fresh.py [--rounds 5] [--shapes 1000000x10 1000000x100 10000000x10] [--fresh-install]`.

What is timed, each in a new interpreter, the rounds interleaved (every task once per round, in turn), so that a busy
moment of this shared machine hits them alike; medians with [min-max]:
* `import gdlab` (the whole statement);
* `gdlab.descend(X, y)` and `gdlab.closed_form(X, y)`: the first call of the process, X already in memory;
* `descend` again with numba imported before the clock starts: what descend costs once its choice of epoch engine
  no longer imports numba for a full-batch fit (engines.choose_engine does, at this commit);
* one read of X (`X.sum()`) on one thread, and on two threads (each summing half of the rows);
* NumPy Cholesky: X_b^T X_b and X_b^T y (X_b = [1, X]) by BLAS, then `np.linalg.cholesky` and two solves;
* scikit-learn `LinearRegression().fit`.
Each process loads X from a .npy file (not timed) and reports the seconds of its timed call only. With
--fresh-install, gdlab is also installed from this checkout into an empty folder (`pip install --no-deps --target`)
and the first `import gdlab` and first fit there are timed: nothing is compiled at that point.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    from _results import machine, write_section
except ImportError:  # run from elsewhere
    from benchmarks._results import machine, write_section

DATA = Path(__file__).with_name("_data")
ROOT = Path(__file__).resolve().parent.parent

PRELUDE = """
import json, sys, time
t0 = time.perf_counter()
{imports}
t_import = time.perf_counter() - t0
import numpy as np
X = np.load({x!r}); y = np.load({y!r})
"""

TASKS = {
    "import": ("import gdlab", "t = t_import; extra = {}"),
    "descend": ("import gdlab", """
t0 = time.perf_counter(); r = gdlab.descend(X, y); t = time.perf_counter() - t0
extra = {"numba_loaded_by_fit": "numba" in sys.modules, "iters": r.n_iter, "converged": bool(r.converged)}"""),
    "descend_numba_preloaded": ("import gdlab, numba", """
t0 = time.perf_counter(); r = gdlab.descend(X, y); t = time.perf_counter() - t0
extra = {"iters": r.n_iter}"""),
    "closed_form": ("import gdlab", """
t0 = time.perf_counter(); r = gdlab.closed_form(X, y); t = time.perf_counter() - t0
extra = {"numba_loaded_by_fit": "numba" in sys.modules, "loss": r.loss}"""),
    "read1": ("", "X.sum(); t0 = time.perf_counter(); X.sum(); t = time.perf_counter() - t0; extra = {}"),
    "read2": ("import threading", """
h = X.shape[0] // 2
def part(a, b): X[a:b].sum()
def both():
    th = threading.Thread(target=part, args=(0, h)); th.start(); part(h, X.shape[0]); th.join()
both(); t0 = time.perf_counter(); both(); t = time.perf_counter() - t0; extra = {}"""),
    "cholesky": ("", """
t0 = time.perf_counter()
m, d = X.shape
G = np.empty((d + 1, d + 1)); G[0, 0] = m; s = X.sum(axis=0); G[0, 1:] = s; G[1:, 0] = s; G[1:, 1:] = X.T @ X
r = np.r_[y.sum(), X.T @ y]
L = np.linalg.cholesky(G); theta = np.linalg.solve(L.T, np.linalg.solve(L, r))
t = time.perf_counter() - t0; extra = {}"""),
    "linreg": ("from sklearn.linear_model import LinearRegression", """
t0 = time.perf_counter(); LinearRegression().fit(X, y); t = time.perf_counter() - t0; extra = {}"""),
}
# the reads are warmed once in their process (the first touch of freshly loaded pages is not a read of X)


def shape_files(m: int, d: int) -> tuple[str, str]:
    DATA.mkdir(exist_ok=True)
    xf, yf = DATA / f"fresh_X_{m}x{d}.npy", DATA / f"fresh_y_{m}x{d}.npy"
    if not xf.exists():
        rng = np.random.default_rng(0)
        X = rng.standard_normal((m, d))
        np.save(yf, X @ rng.standard_normal(d) + 0.5 + rng.standard_normal(m))
        np.save(xf, X)
        del X
    return str(xf), str(yf)


def run_task(task: str, xf: str, yf: str, env: dict | None = None) -> dict:
    imports, body = TASKS[task]
    code = PRELUDE.format(imports=imports, x=xf, y=yf) + body + "\nprint(json.dumps({'t': t, **extra}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False,
                         env=env)
    if out.returncode != 0:
        raise RuntimeError(f"{task} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def fresh_install(xf: str, yf: str) -> dict:
    """Install gdlab from this checkout into an empty folder, then time its first import and first fits."""
    with tempfile.TemporaryDirectory() as target:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-cache-dir", "--target",
                        target, str(ROOT)], check=True, capture_output=True, text=True, timeout=900)
        install_s = time.perf_counter() - t0
        built = any(p.name.startswith("_gram_pass") and p.suffix in (".so", ".pyd")
                    for p in (Path(target) / "gdlab").iterdir())
        env = dict(os.environ, PYTHONPATH=target)
        probe = subprocess.run([sys.executable, "-c", "import gdlab; print(gdlab.__file__)"], env=env,
                               capture_output=True, text=True, check=True).stdout.strip()
        assert probe.startswith(target), probe
        first = {task: run_task(task, xf, yf, env) for task in ("import", "closed_form", "descend")}
    return {"install_s": install_s, "built": built, **{k: v for k, v in first.items()}}


def summary(ts: list[float]) -> str:
    med = float(np.median(ts))
    ms = lambda s: f"{1e3 * s:.0f}" if s >= 0.1 else f"{1e3 * s:.1f}"
    return f"{ms(med)} ms [{ms(min(ts))}-{ms(max(ts))}]"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--shapes", nargs="+", default=["1000000x10", "1000000x100", "10000000x10"])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS))
    ap.add_argument("--fresh-install", action="store_true")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes]
    files = {s: shape_files(*s) for s in shapes}
    load = [os.getloadavg()]
    t_start = time.time()
    times: dict = {(s, t): [] for s in shapes for t in args.tasks}
    extras: dict = {}
    for _ in range(args.rounds):
        for s in shapes:
            for task in args.tasks:
                got = run_task(task, *files[s])
                times[(s, task)].append(got.pop("t"))
                extras[(s, task)] = got
        load.append(os.getloadavg())
    fresh = fresh_install(*files[shapes[0]]) if args.fresh_install else None
    load.append(os.getloadavg())
    text = report(shapes, args.tasks, times, extras, load, fresh, args.rounds, time.time() - t_start)
    print(text)
    if not args.no_write:
        write_section("Fresh processes: the statistics pass compiled ahead of time (issue 15)", text)


def report(shapes, tasks, times, extras, load, fresh, rounds, seconds) -> str:
    names = {"import": "`import gdlab`", "descend": "**`gdlab.descend(X, y)`**, first call",
             "descend_numba_preloaded": "`descend`, numba imported before the clock",
             "closed_form": "**`gdlab.closed_form(X, y)`**, first call", "read1": "one read of X, one thread",
             "read2": "one read of X, two threads", "cholesky": "NumPy Cholesky (BLAS X^T X, 2 threads)",
             "linreg": "`LinearRegression().fit`"}
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    loads = "; ".join("/".join(f"{v:.1f}" for v in la) for la in load)
    lines = [f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {machine()}, gdlab {commit} (the pass built "
             f"in place: `python setup.py build_ext --inplace`). Every figure is a fresh `python -c` process; "
             f"median [min-max] of {rounds} interleaved rounds (each round runs every task of every shape once, in "
             f"turn). Load average (1/5/15 min) at the start, after each round and at the end: {loads}. "
             f"X ~ N(0, 1), y = X w + 0.5 + N(0, 1), float64.", ""]
    head = "| task | " + " | ".join(f"{m:.0e} x {d}" for m, d in shapes) + " |"
    lines += [head, "|---|" + "---|" * len(shapes)]
    for task in tasks:
        cells = []
        for s in shapes:
            cell = summary(times[(s, task)])
            ex = extras.get((s, task), {})
            if ex.get("numba_loaded_by_fit"):
                cell += " (numba imported during the fit)"
            cells.append(cell)
        lines.append(f"| {names[task]} | " + " | ".join(cells) + " |")
    med = {k: float(np.median(v)) for k, v in times.items()}
    lines += ["", "Ratios of medians (target: at most 3x the two-thread read at d = 10, 4x at d = 100):", "",
              "| m x d | closed_form / read (2 threads) | closed_form / read (1 thread) | descend / read (2 threads) | "
              "descend, numba preloaded / read (2 threads) | Cholesky / closed_form | LinearRegression / closed_form |",
              "|---|---|---|---|---|---|---|"]
    g = lambda s, t: med.get((s, t), float("nan"))
    for s in shapes:
        m, d = s
        lines.append(f"| {m:.0e} x {d} | **{g(s, 'closed_form') / g(s, 'read2'):.1f}x** | "
                     f"{g(s, 'closed_form') / g(s, 'read1'):.1f}x | {g(s, 'descend') / g(s, 'read2'):.1f}x | "
                     f"**{g(s, 'descend_numba_preloaded') / g(s, 'read2'):.1f}x** | "
                     f"{g(s, 'cholesky') / g(s, 'closed_form'):.1f}x | {g(s, 'linreg') / g(s, 'closed_form'):.1f}x |")
    if fresh:
        (m, d) = shapes[0]
        lines += ["", f"After a fresh install (`pip install --no-deps --target <empty folder> .`, "
                  f"{fresh['install_s']:.1f} s, the C pass {'built' if fresh['built'] else 'NOT built'}): first "
                  f"`import gdlab` {1e3 * fresh['import']['t']:.0f} ms; first fit at {m:.0e} x {d}: closed_form "
                  f"{1e3 * fresh['closed_form']['t']:.1f} ms, descend {1e3 * fresh['descend']['t']:.1f} ms"
                  f"{' (numba imported during the fit)' if fresh['descend'].get('numba_loaded_by_fit') else ''}; "
                  "nothing is compiled at import or at fit time."]
    lines.append(f"\nThe whole benchmark took {seconds:.0f} s.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
