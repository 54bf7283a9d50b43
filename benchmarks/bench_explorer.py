"""How long one explorer update (a slider move: GET /api/descend) takes, on the workshop data and on 10^6 rows.

The statistics of each data set are formed once (when the data set is loaded) and cached, so an update costs
O(iterations * d^2) whatever the number of rows. Figures are reported next to their peers measured in the same run:

* the explorer's update vs. the bare ``gdlab.descend`` call on the cached gram source (the HTTP + JSON overhead);
* the same descent through ``gdlab.descend`` on the rows (``source="memory"``: one pass over X per iteration), which
  is what an update would cost without the cached statistics.

Run: ``python benchmarks/bench_explorer.py [--rows 1000000] [--repeat 15] [--browser] [--no-write]``; prints its
table and writes the "Explorer updates (issue 5)" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

import pandas as pd


def _median_ms(fn, repeat: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main() -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette may suggest another HTTP client for its TestClient
        from starlette.testclient import TestClient

    import gdlab
    from gdlab.explorer import create_app
    from gdlab.explorer.model import RunSpec, run_descent

    try:
        from _results import machine, write_section
    except ImportError:  # run from the repository root
        from benchmarks._results import machine, write_section

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--browser", action="store_true", help="also time slider -> redrawn page in headless Chromium")
    ap.add_argument("--browser-repeat", type=int, default=30, help="slider steps timed per browser run")
    ap.add_argument("--browser-runs", type=int, default=3, help="browser runs (each reported)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = ap.parse_args()

    syn = gdlab.datasets.make_regression(args.rows, args.features, noise=0.5, condition_number=10.0, intercept=3.0)
    frame = pd.DataFrame(syn.X, columns=[f"x{j}" for j in range(args.features)])
    frame["y"] = syn.y
    t0 = time.perf_counter()
    app = create_app(frame, target="y")
    load_s = time.perf_counter() - t0
    client = TestClient(app, base_url="http://127.0.0.1")
    rows = []
    for ds_id, it in [("line", 10), ("line", args.iterations), ("mean", args.iterations), ("data", args.iterations)]:
        ds = app.state.registry[ds_id]
        lr = float(ds.defaults.get("lr", 0.1))
        url = f"/api/descend?dataset={ds_id}&lr={lr}&iterations={it}"
        assert client.get(url).status_code == 200
        server = []
        api_ms = _median_ms(lambda: server.append(client.get(url).json()["timing_ms"]["total"]), args.repeat)
        server_ms = statistics.median(server)
        race_ms = _median_ms(lambda: client.get(url + f"&race=momentum&race_lr={lr}"), args.repeat)
        spec = RunSpec("gd", lr, {})
        core_ms = _median_ms(lambda: run_descent(ds, spec, iterations=it, start=ds.default_start, batch_size=None,
                                                 seed=0), args.repeat)
        mem_repeat = max(3, args.repeat // 5) if ds.n_rows > 100_000 else args.repeat
        memory_ms = _median_ms(lambda: gdlab.descend(ds.X, ds.y, learning_rate=lr, max_iter=it, tol=None, gtol=None,
                                                     source="memory", warn=False,
                                                     coef_init=ds.default_start[1:],
                                                     intercept_init=ds.default_start[0]), mem_repeat)
        rows.append((ds.title if ds_id != "data" else f"synthetic, {args.features} features", ds.n_rows, it,
                     server_ms, api_ms, race_ms, core_ms, memory_ms))
    lines = [
        f"One update = `GET /api/descend` for a new learning rate (what a slider move asks), gd, median of "
        f"{args.repeat}. The {args.rows:,}-row data set's statistics were formed once, when it was loaded "
        f"({load_s:.2f} s). *server*: the app's own time (descent, verdict, surface, JSON); *through TestClient*: "
        "the whole HTTP round trip in-process; *descend*: the bare `gdlab.descend` call on the cached gram source; "
        "*memory*: the same descent reading the rows (`source=\"memory\"`), i.e. without cached statistics.",
        "",
        "| data set | rows | iterations | server | through TestClient | race of two | descend | memory "
        "| memory / server |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for title, n, it, server_ms, api_ms, race_ms, core_ms, memory_ms in rows:
        lines.append(f"| {title} | {n:,} | {it} | {server_ms:.1f} ms | {api_ms:.1f} ms | {race_ms:.1f} ms | "
                     f"{core_ms:.1f} ms | {memory_ms:.1f} ms | {memory_ms / server_ms:.1f}x |")
    if args.browser:
        lines += ["", "Headless Chromium (Debian's, software rendering): from a learning-rate slider `input` event "
                  "to the verdict in the page, to all three plots redrawn, and to the next frame painted after "
                  f"them; median (and 90th percentile) of {args.browser_repeat} slider steps per run, "
                  f"{args.browser_runs} runs (one browser each), each run's figure listed. The verdict and the "
                  "plots are drawn in the same task, so their times agree:", "",
                  "| data set | verdict shown | all plots drawn | next frame painted | painted, 90th percentile "
                  "| of which server |", "|---|---:|---:|---:|---:|---:|"]
        import os

        load0 = os.getloadavg()[0]
        per_run = [_browser_latency(app, args.browser_repeat) for _ in range(args.browser_runs)]
        load = f"load average {load0:.1f} before the browser runs, {os.getloadavg()[0]:.1f} after"

        for k, ds_id in enumerate(("line", "data")):
            cols = list(zip(*[run[k][1:] for run in per_run]))
            cell = lambda vals, d=0: " / ".join(f"{v:.{d}f}" for v in vals) + " ms"  # noqa: E731
            lines.append(f"| {ds_id} | {cell(cols[0])} | {cell(cols[1])} | {cell(cols[2])} | {cell(cols[3])} "
                         f"| {cell(cols[4], 1)} |")
        lines += ["", f"({load} on the 2 cores.)"]
    lines += ["", f"- Target (issue 5): the page updates within 100 ms of a slider move, on the workshop data and on "
              f"10^6 rows. Machine: {machine()}; shared with other jobs while measured, so expect noise."]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section("Explorer updates (issue 5)", text)


def _browser_latency(app, repeat: int) -> list[tuple[str, float, float, float, float, float]]:
    """Time, in the page, from a learning-rate slider 'input' event to the verdict shown, to all three plots drawn,
    and to the next frame (the browser has laid out and painted the page after them).

    The slider steps as a drag does: 2% of its length at a time, back to the start after every 10 steps. The page's
    own counters (``data-verdicts``, ``data-renders``) are watched with a MutationObserver: no polling delay.
    Returns (data set, verdict ms, drawn ms, next frame ms, next frame's 90th percentile ms, server ms), medians.
    """
    from playwright.sync_api import sync_playwright

    from gdlab.explorer import running

    out = []
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"]
    with running(app) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=args)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        for ds_id in ("line", "data"):
            page.goto(url + f"?dataset={ds_id}&iterations=100")
            page.wait_for_selector("body[data-ready='1']")
            times = page.evaluate("""async (repeat) => {
                const drawn = [], server = [], verdict = [], painted = [];
                const s = document.getElementById('lr-slider');
                const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
                for (let i = 0; i < repeat + 2; i++) {
                  await frame();
                  const n = Number(document.body.dataset.renders);
                  let tv = null;
                  const t0 = performance.now();
                  const done = new Promise((resolve) => {
                    const watch = new MutationObserver(() => {
                      const now = performance.now() - t0;
                      if (tv === null && Number(document.body.dataset.verdicts) > n) tv = now;
                      if (Number(document.body.dataset.renders) > n) { watch.disconnect(); resolve(now); }
                    });
                    watch.observe(document.body, { attributes: true });
                  });
                  s.value = String(500 + 20 * (i % 10));
                  s.dispatchEvent(new Event('input'));
                  const td = await done;
                  await frame();
                  const tp = performance.now() - t0;
                  if (i > 1) { drawn.push(td); painted.push(tp); verdict.push(tv === null ? td : tv);
                               server.push(current.timing_ms.total); }
                }
                const q = (a, f) => a.slice().sort((x, y) => x - y)[Math.floor(f * a.length)];
                const med = (a) => q(a, 0.5);
                return [med(verdict), med(drawn), med(painted), q(painted, 0.9), med(server)];
            }""", repeat)
            out.append((ds_id, *times))
        browser.close()
    return out


if __name__ == "__main__":
    main()
