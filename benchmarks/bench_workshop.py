"""How long `gdlab workshop --out DIR` takes (the command `make demo` runs), in fresh processes.

Run: `python benchmarks/bench_workshop.py [--rounds 3] [--baseline REV]`.

Each round runs `python -m gdlab workshop -q --out DIR` once per variant, the variants interleaved so that a busy
moment of this shared machine hits them alike; the table gives the median wall time with [min-max] and the median
CPU time (user + system) of the process, and the load average (1 minute) before and after. With --baseline REV a
second variant runs the same source tree with the workshop's figure and computing modules (src/gdlab/plots.py,
src/gdlab/workshop.py) as they were at REV, everything else as in this checkout: the figures' cost before and after.
One untimed run of each variant first (numba's disk cache, the font cache). A last in-process run splits the time:
run_workshop (the fits), the GIF, and the figures with their words (_workshop_sections).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy  # noqa: F401  (loaded, so that machine() can name its BLAS)

try:
    from _results import machine, write_section
except ImportError:  # run from elsewhere
    from benchmarks._results import machine, write_section

ROOT = Path(__file__).resolve().parent.parent
SWAPPED = ("src/gdlab/plots.py", "src/gdlab/workshop.py")

SPLIT = """
import json, time
t0 = time.perf_counter()
from gdlab import plots, report, workshop
t_import = time.perf_counter() - t0
t0 = time.perf_counter(); ws = workshop.run_workshop(); t_run = time.perf_counter() - t0
t0 = time.perf_counter(); plots.descent_animation(ws.line, {gif!r}); t_gif = time.perf_counter() - t0
def add_png(name, fig, alt, caption):
    plots.figure_png(fig)
    fig.clear()
    return ""
t0 = time.perf_counter(); report._workshop_sections(ws, add_png, ""); t_fig = time.perf_counter() - t0
print(json.dumps({{"import": t_import, "run_workshop": t_run, "gif": t_gif, "figures": t_fig,
                  "parts": ws.timings}}))
"""


def _baseline_tree(rev: str, into: Path) -> Path:
    """A copy of this checkout's src/ with the files of SWAPPED as they were at ``rev``."""
    src = into / "src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in SWAPPED:
        old = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=ROOT, check=True, capture_output=True).stdout
        (into / name).write_bytes(old)
    return src


def _run(env: dict[str, str], out: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one `gdlab workshop` in a new interpreter."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gdlab", "workshop", "-q", "--out", str(out)], env=env, check=True,
                   stdout=subprocess.DEVNULL, cwd=out.parent)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", default=None, help="a git revision whose plots.py and workshop.py to time too")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md as it is")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gdlab-bench-workshop-"))
    try:
        variants = {"this checkout": {**os.environ, "PYTHONPATH": str(ROOT / "src")}}
        if args.baseline:
            rev = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout.strip()
            base = _baseline_tree(args.baseline, work / "baseline")
            variants = {f"plots.py, workshop.py at {rev}": {**os.environ, "PYTHONPATH": str(base)}, **variants}
        times: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
        for name, env in variants.items():  # untimed: numba's disk cache and matplotlib's font cache
            _run(env, work / "warm")
        load_before = os.getloadavg()[0]
        for _ in range(args.rounds):
            for name, env in variants.items():
                times[name].append(_run(env, work / "out"))
        load_after = os.getloadavg()[0]
        split = subprocess.run([sys.executable, "-c", SPLIT.format(gif=str(work / "split.gif"))],
                               env=variants["this checkout"], check=True, capture_output=True, text=True)
        parts = json.loads(split.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = ["| variant | wall, median [min-max] | CPU (user + sys), median |", "|---|---|---|"]
    for name, ts in times.items():
        walls, cpus = [t[0] for t in ts], [t[1] for t in ts]
        rows.append(f"| {name} | {statistics.median(walls):.2f} s [{min(walls):.2f}-{max(walls):.2f}] | "
                    f"{statistics.median(cpus):.2f} s |")
    inner = ", ".join(f"{k} {v:.2f} s" for k, v in parts["parts"].items() if v >= 0.05)
    body = "\n".join([
        f"Machine: {machine()}. `python -m gdlab workshop -q --out DIR` in a fresh process, {args.rounds} rounds, "
        f"the variants interleaved; load average (1 min) {load_before:.2f} before, {load_after:.2f} after "
        "(other work shares this machine: wall times move with it, CPU times less).",
        "",
        *rows,
        "",
        f"Where the time goes (this checkout, one in-process run): imports {parts['import']:.2f} s, run_workshop "
        f"{parts['run_workshop']:.2f} s ({inner}), the GIF {parts['gif']:.2f} s (drawn first: it carries matplotlib's "
        f"first-figure set-up, fonts and caches), the 18 figures with their words {parts['figures']:.2f} s.",
    ])
    print(body)
    if not args.no_write:
        write_section("Workshop report build time (issue 14)", body)


if __name__ == "__main__":
    main()
