"""How long one explorer update (a slider move: GET /api/descend) takes, on the workshop data and on 10^6 rows.

The statistics of each data set are formed once (when the data set is loaded) and cached, so an update costs
O(iterations * d^2) whatever the number of rows. Figures are reported next to their peers measured in the same run:

* the explorer's update vs. the bare ``gdlab.descend`` call on the cached gram source (the HTTP + JSON overhead);
* the same descent through ``gdlab.descend`` on the rows (``source="memory"``: one pass over X per iteration), which
  is what an update would cost without the cached statistics.

Run: ``python benchmarks/bench_explorer.py [--rows 1000000] [--repeat 15] [--browser]``. Prints one table (this is a script).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
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
    from starlette.testclient import TestClient

    import gdlab
    from gdlab.explorer import create_app
    from gdlab.explorer.model import RunSpec, run_descent

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--features", type=int, default=2)
    ap.add_argument("--iterations", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--browser", action="store_true", help="also time slider -> redrawn page in headless Chromium")
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
        api_ms = _median_ms(lambda: client.get(url), args.repeat)
        race_ms = _median_ms(lambda: client.get(url + f"&race=momentum&race_lr={lr}"), args.repeat)
        spec = RunSpec("gd", lr, {})
        core_ms = _median_ms(lambda: run_descent(ds, spec, iterations=it, start=ds.default_start, batch_size=None,
                                                 seed=0), args.repeat)
        mem_repeat = max(3, args.repeat // 5) if ds.n_rows > 100_000 else args.repeat
        memory_ms = _median_ms(lambda: gdlab.descend(ds.X, ds.y, learning_rate=lr, max_iter=it, tol=None, gtol=None,
                                                     source="memory", warn=False,
                                                     coef_init=ds.default_start[1:],
                                                     intercept_init=ds.default_start[0]), mem_repeat)
        rows.append((ds_id, ds.n_rows, it, api_ms, race_ms, core_ms, memory_ms))
    if args.browser:
        browser_rows = _browser_latency(app, args.repeat)
    print(f"data set 'data' ({args.rows} rows x {args.features} features) loaded with its statistics in "
          f"{load_s:.2f} s (once)")
    print(f"{'dataset':8} {'rows':>9} {'iter':>5} {'update ms':>10} {'race ms':>8} {'descend ms':>11} "
          f"{'memory ms':>10} {'update/descend':>15} {'memory/update':>14}")
    for ds_id, n, it, api, race, core, mem in rows:
        print(f"{ds_id:8} {n:9d} {it:5d} {api:10.2f} {race:8.2f} {core:11.2f} {mem:10.2f} {api / core:15.2f} "
              f"{mem / api:14.1f}")
    if args.browser:
        print("\nheadless Chromium (software rendering): slider move -> page redrawn, median ms")
        print(f"{'dataset':8} {'verdict shown ms':>17} {'all plots drawn ms':>19} {'of which server ms':>19}")
        for ds_id, drawn, server, shown in browser_rows:
            print(f"{ds_id:8} {shown:17.1f} {drawn:19.1f} {server:19.1f}")


def _browser_latency(app, repeat: int) -> list[tuple[str, float, float, float]]:
    """Time, in the page, from a learning-rate slider 'input' event to the redrawn page (all three plots)."""
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
                const drawn = [], server = [], verdict = [];
                const s = document.getElementById('lr-slider');
                for (let i = 0; i < repeat + 1; i++) {
                  const n = Number(document.body.dataset.renders);
                  const t0 = performance.now();
                  let tv = null;
                  s.value = String(500 + 20 * (i % 10));
                  s.dispatchEvent(new Event('input'));
                  while (Number(document.body.dataset.renders) === n) {
                    if (tv === null && Number(document.body.dataset.verdicts) > n) tv = performance.now() - t0;
                    await new Promise((r) => setTimeout(r, 1));
                  }
                  if (i > 0) { drawn.push(performance.now() - t0); server.push(current.timing_ms.total);
                               verdict.push(tv === null ? performance.now() - t0 : tv); }
                }
                const med = (a) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)];
                return [med(drawn), med(server), med(verdict)];
            }""", repeat)
            out.append((ds_id, times[0], times[1], times[2]))
        browser.close()
    return out


if __name__ == "__main__":
    main()
