"""End-to-end: the explorer page in Debian's headless Chromium, driven by Playwright's sync API.

The server runs in a background thread on 127.0.0.1 (a free port). Screenshots go to tests/_artifacts/ (git-ignored)
for a person to look at. Without Chromium or Playwright these tests skip and say why, except when
GDLAB_REQUIRE_BROWSER=1 (CI): then they fail.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pandas as pd
import pytest

import gdlab

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("GDLAB_CHROMIUM", "/usr/bin/chromium")
REQUIRE = os.environ.get("GDLAB_REQUIRE_BROWSER") == "1"
ARTIFACTS = Path(__file__).resolve().parent / "_artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; no browser download is needed)"
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        return "the explorer's dependencies are missing: pip install 'gdlab[explorer]'"
    if not Path(CHROMIUM).exists():
        return f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium, or set GDLAB_CHROMIUM)"
    return None


@pytest.fixture(scope="module")
def server():
    why = _missing()
    if why:
        if REQUIRE:
            pytest.fail(f"GDLAB_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    from gdlab.explorer import create_app, running

    with running(create_app()) as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def context(browser):
    # one context for the module: its HTTP cache keeps plotly.js (4.8 MB) parsed-once-per-test instead of fetched
    # the page is tested under its real CSP in test_explorer_security.py; here Playwright evaluates its predicates
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000}, bypass_csp=True)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context, server):
    ARTIFACTS.mkdir(exist_ok=True)
    pg = context.new_page()
    pg.set_default_timeout(15_000)
    errors: list[str] = []
    foreign: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and "status of 4" not in msg.text
          else None)
    pg.on("request", lambda req: foreign.append(req.url)
          if not (req.url.startswith(server) or req.url.startswith("data:") or req.url.startswith("blob:")) else None)
    yield pg
    pg.close()
    assert not errors, f"errors in the page: {errors}"
    assert not foreign, f"the page reached outside the server (it must work offline): {foreign}"


def open_page(page, server, query: str = "") -> None:
    page.goto(server + query)
    page.wait_for_selector("body[data-ready='1']")


def renders(page) -> int:
    return int(page.evaluate("document.body.dataset.renders || '0'"))


def after_update(page, action) -> None:
    """Do ``action`` and wait until the page has drawn the server's answer to it."""
    before = renders(page)
    action()
    page.wait_for_function(f"Number(document.body.dataset.renders || 0) > {before}")


def verdict(page) -> str:
    return page.inner_text("#verdict").strip()


def url_state(page) -> dict[str, str]:
    """The page's state as its URL holds it (once the throttled URL write has happened)."""
    page.wait_for_function("!document.body.dataset.urlPending")
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


def path_on_surface(page, label: str = "A") -> list[list[float]]:
    return page.evaluate(f"""() => {{
        const tr = document.getElementById('layer-surface').traces.find((d) => (d.name || '').startsWith('path {label}'));
        return tr.x.map((x, i) => [x, tr.y[i]]);
    }}""")


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"explorer-{name}.png"), full_page=True)


# ---- the tests -----------------------------------------------------------------------------------------------------

def test_page_opens_on_the_workshop_data(page, server):
    open_page(page, server)
    assert verdict(page).startswith("converges: learning rate 0.1 is below 2/L = 0.51")
    assert page.inner_text("#iteration-label") == "iteration 10 of 10"
    for plot in ("plot-data", "plot-surface", "plot-loss"):
        assert page.locator(f"#{plot} .main-svg").count() >= 1
    # the slider marks 2/(L+mu) and 2/L
    marks = page.inner_text("#lr-marks")
    assert "2/(L+μ) = 0.47" in marks and "2/L = 0.51" in marks
    # the page draws the workshop's path: compare with the workshop loop in NumPy
    ds = gdlab.datasets.workshop_line()
    X_b = np.column_stack([np.ones(50), ds.X])
    w = ds.w_init.copy()
    for _ in range(10):
        w = w - 0.1 * 2 / 50 * X_b.T @ (X_b @ w - ds.y)
    np.testing.assert_allclose(path_on_surface(page)[-1], w, rtol=1e-9)
    shot(page, "workshop-line")


def test_moving_the_learning_rate_past_2_over_L_says_it_diverges(page, server):
    open_page(page, server)
    lo, hi = page.evaluate("() => { const r = meta.datasets.line.lr_range; return [r.min, r.max]; }")
    box = page.locator("#lr-slider").bounding_box()
    frac = (np.log(0.8) - np.log(lo)) / (np.log(hi) - np.log(lo))
    x = box["x"] + 8 + frac * (box["width"] - 16)  # the thumb's centre travels between the track's ends
    after_update(page, lambda: page.mouse.click(x, box["y"] + box["height"] / 2))
    text = verdict(page)
    m = re.match(r"diverges: learning rate ([0-9.]+) is above 2/L = 0\.51", text)
    assert m, text
    lr = float(m.group(1))
    assert 0.6 < lr < 1.1
    assert float(page.input_value("#lr-value")) == pytest.approx(lr)
    assert page.get_attribute("#verdict", "class") == "bad"
    assert url_state(page)["lr"] == m.group(1)
    shot(page, "diverges")
    # back below the bound with the keyboard
    page.focus("#lr-slider")
    after_update(page, lambda: page.keyboard.press("Home"))
    # (the slider's smallest step is stable but crawls: 1 - 1.7e-4 per iteration, and the verdict says so)
    assert verdict(page).startswith("crawls: learning rate 5.11e-05 is below 2/L = 0.51, so it converges in theory")
    # and the exact example typed in
    page.fill("#lr-value", "0.6")
    after_update(page, lambda: page.press("#lr-value", "Enter"))
    assert verdict(page) == "diverges: learning rate 0.6 is above 2/L = 0.51"


def test_switching_optimizer_changes_the_path(page, server):
    open_page(page, server, "?dataset=valley&lr=0.5&iterations=40")
    gd_path = path_on_surface(page)
    after_update(page, lambda: page.select_option("#optimizer", "momentum"))
    assert page.input_value("#hp-beta") == "0.9"
    momentum_path = path_on_surface(page)
    assert len(momentum_path) == len(gd_path) == 41
    assert momentum_path[0] == gd_path[0]
    assert not np.allclose(momentum_path[5:], gd_path[5:])
    # what is drawn is what the core computed
    api = page.request.get(server + "api/descend?dataset=valley&lr=0.5&iterations=40&optimizer=momentum").json()
    drawn = np.array(momentum_path)
    np.testing.assert_allclose(drawn, np.array(api["runs"][0]["params"])[:, 1:3], rtol=1e-9)
    assert url_state(page)["optimizer"] == "momentum"
    # the export buttons download exactly what is drawn
    href = page.get_attribute("#export-csv", "href")
    assert "format=csv" in href and "optimizer=momentum" in href
    exported = page.request.get(server + href.lstrip("/"))
    assert exported.ok and exported.headers["content-type"].startswith("text/csv")
    frame = pd.read_csv(io.StringIO(exported.text()))
    np.testing.assert_allclose(frame[["w1 (x1)", "w2 (x2)"]].to_numpy(), drawn, rtol=1e-9)
    # change beta: the path changes again
    page.fill("#hp-beta", "0.5")
    after_update(page, lambda: page.press("#hp-beta", "Enter"))
    assert not np.allclose(path_on_surface(page), momentum_path)
    assert url_state(page)["beta"] == "0.5"
    # race: a second optimizer on the same contour
    after_update(page, lambda: page.check("#race-on"))
    assert path_on_surface(page, "B")[0] == path_on_surface(page, "A")[0]
    assert page.locator("#verdict .line").count() == 2
    shot(page, "race")


def test_stepping_through_the_iterations(page, server):
    open_page(page, server)
    for _ in range(3):
        page.click("#step-back")
    assert page.inner_text("#iteration-label") == "iteration 7 of 10"
    assert url_state(page)["t"] == "7"
    assert len(path_on_surface(page)) == 8  # the path is drawn up to the iteration shown
    api = page.request.get(server + "api/descend?dataset=line&lr=0.1&iterations=10").json()
    facts = page.inner_text("#facts")
    assert "Iteration 7".upper() in facts.upper()
    assert f"{api['runs'][0]['params'][7][1]:.5g}"[:5] in facts
    page.click("#step-forward")
    assert page.inner_text("#iteration-label") == "iteration 8 of 10"
    shot(page, "step")
    page.click("#play")
    page.wait_for_function("document.body.dataset.iteration === '10'")
    assert page.inner_text("#play") == "▶ play"  # stopped at the end
    assert "t" not in url_state(page)


def test_a_click_on_the_surface_moves_the_start(page, server):
    open_page(page, server)
    target = (2.0, 10.0)
    x, y = page.evaluate(f"""() => {{
        const gd = document.getElementById('plot-surface');
        const fl = gd._fullLayout, r = gd.getBoundingClientRect();
        return [r.left + fl._size.l + fl.xaxis.l2p({target[0]}), r.top + fl._size.t + fl.yaxis.l2p({target[1]})];
    }}""")
    after_update(page, lambda: page.mouse.click(x, y))
    start = [float(v) for v in url_state(page)["start"].split(",")]
    assert start == pytest.approx(list(target), abs=0.15)
    assert path_on_surface(page)[0] == pytest.approx(start)
    shot(page, "moved-start")
    after_update(page, lambda: page.click("#reset-start"))
    assert "start" not in url_state(page)


def test_uploading_a_csv(page, server, tmp_path):
    rng = np.random.default_rng(11)
    size = rng.uniform(0.5, 2.5, 200)
    price = 1.0 + 3.0 * size + 0.3 * rng.normal(size=200)
    path = tmp_path / "houses.csv"
    pd.DataFrame({"price": price, "size": size}).to_csv(path, index=False)
    open_page(page, server)
    page.click("#upload-box summary")
    page.set_input_files("#upload-file", str(path))
    page.fill("#upload-target", "price")
    after_update(page, lambda: page.click("#upload-button"))
    assert page.inner_text("#upload-status").startswith("Loaded houses.csv: 200 rows, target price")
    assert page.input_value("#dataset").startswith("upload-")
    w_star, *_ = np.linalg.lstsq(np.column_stack([np.ones(200), size]), price, rcond=None)
    optimum = page.evaluate("current.dataset.optimum.params")
    np.testing.assert_allclose(optimum, w_star, rtol=1e-9)
    assert "slope w1 (of size)" in page.inner_text("#facts")
    shot(page, "upload")
    # a target of two labels is a classification target: logistic regression, the boundary view
    two = tmp_path / "sold.csv"
    two.write_text("size,sold\n" + "".join(f"{v:.3f},{'yes' if v + 0.4 * np.sin(7 * v) > 1.5 else 'no'}\n"
                                             for v in size[:60]))
    page.set_input_files("#upload-file", str(two))
    page.fill("#upload-target", "")
    after_update(page, lambda: page.click("#upload-button"))
    assert "(two classes: logistic regression)" in page.inner_text("#upload-status")
    assert "sold = yes is class 1" in page.inner_text("#upload-status")
    assert layer_trace(page, "data", "P(yes)") is not None
    # a bad file is refused with a clear message, and the page stays usable
    bad = tmp_path / "bad.csv"
    bad.write_text("size,price\n1,cheap\n2,dear\n3,fair\n")
    page.set_input_files("#upload-file", str(bad))
    page.click("#upload-button")
    page.wait_for_selector("#upload-status.error")
    assert "Upload refused: column 'price' is not numeric" in page.inner_text("#upload-status")


def test_reloading_a_shared_url_restores_the_configuration(page, server):
    query = ("?dataset=valley&optimizer=momentum&beta=0.7&lr=0.3&iterations=40&batch_size=10&seed=3&race=gd&race_lr=0.5"
             "&start=0,-2,2.5&t=12")
    open_page(page, server, query)

    def check():
        assert page.input_value("#dataset") == "valley"
        assert page.input_value("#optimizer") == "momentum"
        assert page.input_value("#hp-beta") == "0.7"
        assert page.input_value("#lr-value") == "0.3"
        assert page.input_value("#iterations") == "40"
        assert page.is_checked("#race-on") and page.input_value("#race-optimizer") == "gd"
        assert page.input_value("#race-lr") == "0.5"
        assert page.input_value("#batch-size") == "10" and page.input_value("#seed") == "3"
        assert "mini-batches of 10" in page.inner_text("#facts")
        assert page.inner_text("#iteration-label") == "iteration 12 of 40"
        assert path_on_surface(page)[0] == [-2.0, 2.5]
        state = url_state(page)
        assert state["t"] == "12" and state["start"] == "0,-2,2.5" and state["race"] == "gd"
        assert state["batch_size"] == "10" and state["seed"] == "3"

    check()
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    check()
    shot(page, "shared-url")
    # a change made on the page lands in the URL and survives a reload
    page.fill("#iterations", "25")
    after_update(page, lambda: page.press("#iterations", "Enter"))
    assert url_state(page)["iterations"] == "25"
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    assert page.input_value("#iterations") == "25"
    assert page.inner_text("#iteration-label") == "iteration 25 of 25"


def test_the_workshop_mean_walks_down_the_error_curve(page, server):
    open_page(page, server, "?dataset=mean")
    title = page.text_content("#plot-surface .gtitle")
    assert "error curve" in title
    steps = page.evaluate("""() => document.getElementById('layer-surface').traces
        .find((d) => (d.name || '').startsWith('steps A')).y""")
    assert all(b < a for a, b in zip(steps, steps[1:]))  # every step goes down the curve
    shot(page, "mean")


def test_a_bad_shared_url_is_explained(page, server):
    open_page(page, server, "?dataset=line&lr=-1")
    page.wait_for_selector("#verdict.error")
    assert "The learning rate η (lr= in the link) must be a number in (0, 1e+06], got -1" in verdict(page)


def test_a_link_to_a_forgotten_upload_falls_back_and_says_why(page, server):
    open_page(page, server, "?dataset=upload-0123456789ab&lr=0.2")
    text = verdict(page)
    assert "data set 'upload-0123456789ab', which this server does not have" in text
    assert page.input_value("#dataset") == "line"


def test_a_dragged_slider_ends_on_its_last_value(page, server):
    # hundreds of input events: requests are coalesced, the URL writes throttled, and the last value wins
    open_page(page, server)
    page.evaluate("""() => {
        const s = document.getElementById('lr-slider');
        for (let i = 0; i < 300; i++) { s.value = String(700 + i); s.dispatchEvent(new Event('input')); }
    }""")
    expected = page.input_value("#lr-value")
    page.wait_for_function(f"current && current.runs[0].learning_rate === {float(expected)} && !pending && !inFlight")
    page.wait_for_function("document.body.dataset.renders === String(renders)")
    assert url_state(page)["lr"] == expected
    assert verdict(page).startswith(f"diverges: learning rate {float(expected):g} is above 2/L = 0.51")


def layer_pixel(page, plot: str, x: float, y: float) -> list[int]:
    """The RGBA of the light layer's canvas at (x, y) CSS pixels from the plot's top-left corner."""
    return page.evaluate(f"""() => {{
        const c = document.querySelector('#layer-{plot} canvas'), k = c.width / c.clientWidth;
        return Array.from(c.getContext('2d').getImageData(Math.round({x} * k), Math.round({y} * k), 1, 1).data);
    }}""")


def axis_px(page, plot: str, x: float, y: float) -> list[float]:
    """Where plotly's own axes of the plot under a layer put the point (x, y), from the plot's top-left corner."""
    return page.evaluate(f"""() => {{
        const fl = document.getElementById('plot-{plot}')._fullLayout;
        const lin = (ax, v) => ax.type === 'log' ? Math.log10(v) : v;
        return [fl.xaxis._offset + fl.xaxis.l2p(lin(fl.xaxis, {x})), fl.yaxis._offset + fl.yaxis.l2p(lin(fl.yaxis, {y}))];
    }}""")


def test_the_light_layers_are_drawn_on_plotlys_axes(page, server):
    open_page(page, server)
    api = page.request.get(server + "api/descend?dataset=line&lr=0.1&iterations=10").json()
    run = api["runs"][0]
    # the path's current point: a blue disc exactly where the contour's axes put the last iterate
    x, y = axis_px(page, "surface", *run["params"][-1])
    assert layer_pixel(page, "surface", x, y) == [0x1F, 0x5F, 0xBF, 255]
    # the optimum's star, yellow, where the closed form is
    x, y = axis_px(page, "surface", *api["dataset"]["optimum"]["params"])
    r, g, b, a = layer_pixel(page, "surface", x, y)
    assert r > 200 and g > 180 and b < 120 and a == 255
    # the loss plot's curve goes through its first point (log y axis), and nothing is drawn away from the curves
    x, y = axis_px(page, "loss", 0, run["gap"][0])
    assert layer_pixel(page, "loss", x, y)[3] > 0
    box = page.evaluate("plots.loss.box")
    assert layer_pixel(page, "loss", box["x1"] - 3, box["y0"] + 3)[3] == 0
    # the fitted line of the data plot at the right end of its x range: y = w0 + w1 x
    w0, w1 = run["params"][-1]
    xr = page.evaluate("document.getElementById('plot-data')._fullLayout.xaxis.range")
    x, y = axis_px(page, "data", xr[1] - 0.02, w0 + w1 * (xr[1] - 0.02))
    assert layer_pixel(page, "data", x - 1, y)[3] > 0


def test_a_zoomed_plot_keeps_its_layer_on_its_axes(page, server):
    open_page(page, server, "?dataset=line&iterations=40")
    page.evaluate("Plotly.relayout('plot-loss', {'xaxis.range': [0, 20]})")
    page.wait_for_function("Math.abs(plots.loss.spec.traces[0].px[20] - plots.loss.box.x1) < 0.5")
    gap20 = page.evaluate("current.runs[0].gap[20]")
    x, y = axis_px(page, "loss", 20, gap20)
    trace = page.evaluate("({x: plots.loss.spec.traces[0].px[20], y: plots.loss.spec.traces[0].py[20]})")
    assert trace["x"] == pytest.approx(x, abs=0.01) and trace["y"] == pytest.approx(y, abs=0.01)
    # more iterations (the axes follow, by relayout), a zoom by dragging, then a double click: back to 0..60
    page.fill("#iterations", "60")
    after_update(page, lambda: page.press("#iterations", "Enter"))
    assert page.evaluate("document.getElementById('plot-loss')._fullLayout.xaxis.range") == [0, 60]
    drag = page.locator("#plot-loss .nsewdrag").bounding_box()
    page.mouse.move(drag["x"] + 100, drag["y"] + 100)
    page.mouse.down()
    page.mouse.move(drag["x"] + 200, drag["y"] + 150, steps=5)
    page.mouse.up()
    page.wait_for_function("document.getElementById('plot-loss')._fullLayout.xaxis.range[1] < 59")
    page.mouse.dblclick(drag["x"] + 150, drag["y"] + 150)
    page.wait_for_function("document.getElementById('plot-loss')._fullLayout.xaxis.range[1] === 60")
    page.wait_for_function("Math.abs(plots.loss.spec.traces[0].px[60] - plots.loss.box.x1) < 0.5")


def live_axis_px(page, plot: str, x: float, y: float) -> list[float]:
    """Where plotly's axes put (x, y) as they are now, in the middle of a drag too: from their live ranges (during a
    drag plotly moves the ranges and its drawing, but keeps its pixel conversions, l2p, until the drag ends)."""
    return page.evaluate(f"""() => {{
        const fl = document.getElementById('plot-{plot}')._fullLayout;
        const at = (ax, v, up) => {{
            const l = ax.type === 'log' ? Math.log10(v) : v, r = ax.range.map((e) => ax.r2l(e));
            const f = (l - r[0]) / (r[1] - r[0]);
            return ax._offset + ax._length * (up ? 1 - f : f);
        }};
        return [at(fl.xaxis, {x}, false), at(fl.yaxis, {y}, true)];
    }}""")


def now_marker(page, plot: str, label: str = "A") -> list[float]:
    return page.evaluate(f"""() => {{
        const tr = plots['{plot}'].spec.traces.find((d) => d.name === 'now {label}');
        return [tr.px[0], tr.py[0]];
    }}""")


def next_frame(page) -> None:
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")


def test_a_dragged_plot_moves_its_layer_during_the_drag(page, server):
    # the loss plot panned by the mouse: before the button is released, the layer's marker of the iteration shown
    # is where plotly's live axes put it (the loss surface's plot does not zoom or pan: a click there moves the start)
    open_page(page, server, "?dataset=line&iterations=40&t=20")
    gap = page.evaluate("current.runs[0].gap[20]")
    before = axis_px(page, "loss", 20, gap)
    assert now_marker(page, "loss") == pytest.approx(before, abs=0.01)
    page.hover("#plot-loss .nsewdrag")  # the mode bar shows on hover
    page.click("#plot-loss .modebar-btn[data-attr='dragmode'][data-val='pan']")
    page.wait_for_function("document.getElementById('plot-loss')._fullLayout.dragmode === 'pan'")
    drag = page.locator("#plot-loss .nsewdrag").bounding_box()
    page.mouse.move(drag["x"] + 200, drag["y"] + 100)
    page.mouse.down()
    try:
        page.mouse.move(drag["x"] + 130, drag["y"] + 150, steps=7)
        page.wait_for_function("document.getElementById('plot-loss')._fullLayout.xaxis.range[0] > 0")  # panning
        next_frame(page)
        x, y = live_axis_px(page, "loss", 20, gap)
        assert x < before[0] - 40 and y > before[1] + 30  # the axes have moved with the mouse
        assert layer_pixel(page, "loss", x + 2, y) == [0x1F, 0x5F, 0xBF, 255]  # beside the dotted line at t
        assert now_marker(page, "loss") == pytest.approx([x, y], abs=0.01)
        assert layer_pixel(page, "loss", before[0] + 2, before[1]) != [0x1F, 0x5F, 0xBF, 255]  # not left behind
        live = page.evaluate("document.getElementById('plot-loss')._fullLayout.xaxis.range.slice()")
        shot(page, "dragging")
    finally:
        page.mouse.up()
    # released: plotly's final axes (their own conversions) and the layer agree, where the drag left them
    page.wait_for_function("!plots.loss.live && !plots.loss.liveFrame")
    next_frame(page)
    assert page.evaluate("document.getElementById('plot-loss')._fullLayout.xaxis.range") == pytest.approx(live)
    x, y = axis_px(page, "loss", 20, gap)
    assert now_marker(page, "loss") == pytest.approx([x, y], abs=0.01)
    assert layer_pixel(page, "loss", x + 2, y) == [0x1F, 0x5F, 0xBF, 255]
    # a slider move after the drag draws on the panned axes too
    page.click("#step-back")
    gap19 = page.evaluate("current.runs[0].gap[19]")
    assert now_marker(page, "loss") == pytest.approx(axis_px(page, "loss", 19, gap19), abs=0.01)


def test_hovering_the_middle_of_a_fitted_line_names_its_iteration(page, server):
    open_page(page, server)
    api = page.request.get(server + "api/descend?dataset=line&lr=0.1&iterations=10").json()
    w0, w1 = api["runs"][0]["params"][-1]
    xr = page.evaluate("document.getElementById('plot-data')._fullLayout.xaxis.range")
    xm = 0.45 * xr[0] + 0.55 * xr[1]  # far from both ends of the line
    x, y = axis_px(page, "data", xm, w0 + w1 * xm)
    box = page.locator("#layer-data").bounding_box()
    page.mouse.move(box["x"] + x + 1, box["y"] + y + 4)
    tip = page.locator("#layer-data .tip")
    tip.wait_for(state="visible")
    first, second = tip.inner_text().split("\n")
    assert first == "fit at iteration 10"
    m = re.match(r"x = ([-0-9.e]+), y = ([-0-9.e]+)$", second)
    assert m, second
    assert float(m.group(1)) == pytest.approx(xm, abs=0.02)
    assert float(m.group(2)) == pytest.approx(w0 + w1 * float(m.group(1)), rel=1e-3)
    shot(page, "hover-fit")
    page.mouse.move(box["x"] + x + 1, box["y"] + y + 40)  # well off the line
    tip.wait_for(state="hidden")


def test_hovering_a_path_point_names_its_iteration(page, server):
    open_page(page, server)
    api = page.request.get(server + "api/descend?dataset=line&lr=0.1&iterations=10").json()
    p3 = api["runs"][0]["params"][3]
    x, y = axis_px(page, "surface", *p3)
    box = page.locator("#layer-surface").bounding_box()
    page.mouse.move(box["x"] + x + 2, box["y"] + y + 1)
    tip = page.locator("#layer-surface .tip")
    tip.wait_for(state="visible")
    assert tip.inner_text().startswith("iteration 3")
    shot(page, "hover")
    page.mouse.move(box["x"] + 5, box["y"] + 5)  # far from every point
    tip.wait_for(state="hidden")


def test_a_slider_move_does_not_send_the_surface_grid_again(page, server):
    open_page(page, server, "?dataset=valley&iterations=30")
    asked: list[str] = []
    page.on("request", lambda req: asked.append(req.url) if "/api/" in req.url else None)
    title = page.text_content("#plot-surface .xtitle")
    after_update(page, lambda: page.evaluate("""() => {
        const s = document.getElementById('lr-slider'); s.value = '600'; s.dispatchEvent(new Event('input')); }"""))
    assert len(asked) == 1 and "/api/descend?" in asked[0] and "surface=view" in asked[0]
    assert page.evaluate("current.surface.z.length") == 60  # the grid held from before
    # other surface axes: the page fetches that grid and redraws the contour
    asked.clear()
    after_update(page, lambda: page.select_option("#axis-x", "0"))
    assert any("/api/surface?" in u for u in asked)
    assert page.text_content("#plot-surface .xtitle") != title
    assert page.evaluate("current.surface.axes") == [0, 2]


def test_a_resized_window_keeps_every_layer_on_its_plot(page, server):
    open_page(page, server)
    page.set_viewport_size({"width": 1000, "height": 900})  # one column: every plot gets wider
    try:
        page.wait_for_function("""() => ['data', 'surface', 'loss'].every((n) => {
            const fl = document.getElementById('plot-' + n)._fullLayout;
            const c = document.querySelector('#layer-' + n + ' canvas');
            return fl.width > 900 && c.clientWidth === fl.width && c.clientHeight === fl.height; })""")
        api = page.request.get(server + "api/descend?dataset=line&lr=0.1&iterations=10").json()
        x, y = axis_px(page, "surface", *api["runs"][0]["params"][-1])
        assert layer_pixel(page, "surface", x, y) == [0x1F, 0x5F, 0xBF, 255]
        shot(page, "narrow")
    finally:
        page.set_viewport_size({"width": 1440, "height": 1000})


def test_the_page_fits_a_400_pixel_screen(page, server):
    """Issue 14: at 400 px nothing is wider than the screen and the iteration slider keeps a usable width."""
    page.set_viewport_size({"width": 400, "height": 900})
    open_page(page, server, "?dataset=line&race=momentum")
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    box = page.locator("#t-slider").bounding_box()
    assert box["width"] > 250 and box["x"] >= 0 and box["x"] + box["width"] <= 400
    for sel in ("#lr-slider", "#iter-slider", "#play", "#step-forward", "#reset-start", "#export-json",
                "#plot-surface", "#plot-loss"):
        b = page.locator(sel).bounding_box()
        assert b is not None and b["x"] >= 0 and b["x"] + b["width"] <= 400 + 0.5, sel
    # the slider still moves the iteration shown
    page.locator("#t-slider").fill("3")
    page.wait_for_function("document.getElementById('iteration-label').textContent.includes('3')")
    shot(page, "narrow-400")


# ---- classification and the Standardise toggle (issues 11 and 14) ---------------------------------------------------

def layer_trace(page, plot: str, prefix: str) -> dict | None:
    return page.evaluate(f"""() => {{
        const tr = document.getElementById('layer-{plot}').traces.find((d) => (d.name || '').startsWith({prefix!r}));
        return tr ? {{ name: tr.name, x: tr.x, y: tr.y }} : null;
    }}""")


def test_the_classification_view_draws_the_boundary_at_the_iteration_shown(page, server):
    open_page(page, server, "?dataset=classes")
    assert verdict(page).startswith("converges: learning rate 2 is below 2/L = 3.3, so every step lowers the log-loss")
    api = page.request.get(server + "api/descend?dataset=classes").json()
    run = api["runs"][0]
    # the points in two colours, one trace per class, as the rows' labels say
    classes = page.evaluate("document.getElementById('plot-data').data.map((d) => [d.name, d.x.length])")
    assert classes == [["0", 100], ["1", 100]]
    line = layer_trace(page, "data", "boundary at iteration 100")
    seg = run["boundary"]["segments"][100]
    assert [line["x"][0], line["y"][0], line["x"][1], line["y"][1]] == pytest.approx(seg, rel=1e-12)
    # and it lies where w0 + w1 x1 + w2 x2 = 0
    w0, w1, w2 = run["params"][100]
    for x, y in zip(line["x"], line["y"]):
        assert abs(w0 + w1 * x + w2 * y) < 1e-9
    # drawn on the canvas where plotly's axes put it: the middle of the segment is blue
    mx, my = (seg[0] + seg[2]) / 2, (seg[1] + seg[3]) / 2
    px, py = axis_px(page, "data", mx, my)
    assert layer_pixel(page, "data", px, py)[:3] == [0x1F, 0x5F, 0xBF]
    assert "Log-loss surface" in page.evaluate("document.getElementById('plot-surface').layout.title.text")
    assert "accuracy" in page.inner_text("#facts")
    shot(page, "classes")
    # the boundary moves with the iteration slider
    page.locator("#t-slider").fill("3")
    page.wait_for_function("document.body.dataset.iteration === '3'")
    early = layer_trace(page, "data", "boundary at iteration 3")
    assert [early["x"][0], early["y"][0], early["x"][1], early["y"][1]] == pytest.approx(
        run["boundary"]["segments"][3], rel=1e-12)
    assert early["x"] != line["x"]


def test_one_feature_shows_the_fitted_probability_and_separable_classes_say_so(page, server):
    open_page(page, server, "?dataset=exam&iterations=300")
    api = page.request.get(server + "api/descend?dataset=exam&iterations=300").json()
    w0, w1 = api["runs"][0]["params"][-1]
    curve = layer_trace(page, "data", "P(passed)")
    xs, ps = np.array(curve["x"]), np.array(curve["y"])
    np.testing.assert_allclose(ps, 1 / (1 + np.exp(-(w0 + w1 * xs))), rtol=1e-12)
    boundary = layer_trace(page, "data", "boundary at iteration 300")
    assert boundary["x"] == pytest.approx([-w0 / w1, -w0 / w1])
    shot(page, "exam")
    open_page(page, server, "?dataset=separable")
    assert verdict(page).startswith("no minimum: the classes are separable")
    assert page.get_attribute("#verdict", "class") == "error"
    assert "classes separable" in page.inner_text("#iteration-label")
    shot(page, "separable")


def surface_z(page) -> list:
    return page.evaluate("document.getElementById('plot-surface').data[0].z")


def test_the_standardise_toggle_changes_the_contour_and_the_condition_number(page, server):
    open_page(page, server, "?dataset=houses")
    facts = page.inner_text("#facts")
    assert re.search(r"κ = L/μ\s+173200", facts), facts
    # raw: stable but crawling, and said so
    assert verdict(page).startswith("crawls: learning rate 5e-05 is below 2/L = 6e-05") and "1 − 9.6e-06" in verdict(page)
    raw_z = surface_z(page)
    raw_label = page.evaluate("document.getElementById('plot-surface').layout.yaxis.title.text")
    hint = page.inner_text("#standardize-hint")
    assert "173000 (raw) to 1.21 (standardised)" in hint, hint
    after_update(page, lambda: page.check("#standardize"))
    page.wait_for_function("document.getElementById('plot-surface').layout.yaxis.title.text.includes('standardised')")
    facts = page.inner_text("#facts")
    assert re.search(r"κ = L/μ\s+1\.211", facts) and "raw features: 173000" in facts, facts
    assert surface_z(page) != raw_z
    assert page.evaluate("document.getElementById('plot-surface').layout.yaxis.title.text") != raw_label
    text = verdict(page)
    assert text.startswith("converges: learning rate 0.415 is below 2/L = 0.91; the error shrinks by"), text
    state = url_state(page)
    assert state["standardize"] == "1" and state["lr"] == "0.415"
    # what is drawn is the core's standardised descent
    api = page.request.get(server + "api/descend?dataset=houses&standardize=1&lr=0.415").json()
    np.testing.assert_allclose(path_on_surface(page), np.array(api["runs"][0]["params"])[:, :2], rtol=1e-9)
    shot(page, "houses-standardised")
    # and back: the raw contour, the raw condition number, the learning rate where it was
    after_update(page, lambda: page.uncheck("#standardize"))
    page.wait_for_function("!document.getElementById('plot-surface').layout.yaxis.title.text.includes('standardised')")
    assert re.search(r"κ = L/μ\s+173200", page.inner_text("#facts"))
    assert float(url_state(page)["lr"]) == pytest.approx(5e-5, rel=2e-3)


def test_the_new_views_fit_a_400_pixel_screen(page, server):
    page.set_viewport_size({"width": 400, "height": 900})
    try:
        for query, name in (("?dataset=classes", "classes-400"), ("?dataset=houses&standardize=1", "houses-400")):
            open_page(page, server, query)
            assert page.evaluate("document.documentElement.scrollWidth") <= 400
            for sel in ("#standardize", "#plot-data", "#plot-surface", "#legend-data"):
                b = page.locator(sel).bounding_box()
                assert b is not None and b["x"] >= 0 and b["x"] + b["width"] <= 400 + 0.5, sel
            shot(page, name)
    finally:
        page.set_viewport_size({"width": 1440, "height": 1000})


def test_step_by_step_shows_the_update_numpy_computes(page, server):
    """The Step-by-step card: open it, step back once, and every number in its table is NumPy's momentum update."""
    from gdlab.explorer.model import builtin_datasets

    open_page(page, server, "?dataset=line&optimizer=momentum&lr=0.05&beta=0.9&iterations=10")
    page.click("#step-box summary")
    page.wait_for_function("document.body.dataset.stepShown === '9'")  # the page opens on the last iteration
    page.click("#step-back")
    page.click("#step-back")
    page.wait_for_function("document.body.dataset.stepShown === '8'")
    cells = page.evaluate("""() => [...document.querySelectorAll('.step-table tbody tr')].map((tr) =>
        [tr.querySelector('.step-name').textContent,
         ...[...tr.querySelectorAll('td')].map((td) => td.textContent)])""")
    ds = next(d for d in builtin_datasets() if d.key == "line")
    X_b = np.c_[np.ones(ds.n_rows), ds.X]
    w = np.array(ds.default_start, dtype=float)
    v = np.zeros(2)
    for _ in range(8):  # the updates before the one shown
        v = 2 / ds.n_rows * X_b.T @ (X_b @ w - ds.y) + 0.9 * v
        w = w - 0.05 * v
    g = 2 / ds.n_rows * X_b.T @ (X_b @ w - ds.y)
    v_new = g + 0.9 * v
    expected = [w, g, v, v_new, 0.05 * v_new, w - 0.05 * v_new]
    assert [c[0] for c in cells] == ["weights w", "gradient g = ∇F(w)", "previous velocity v",
                                     "velocity v ← g + β v", "step η·u", "new weights w − η·u"]
    for row, want in zip(cells, expected):
        np.testing.assert_allclose([float(x) for x in row[2:]], want, rtol=1e-5, atol=1e-9, err_msg=row[0])
    shot(page, "step-by-step")
    page.set_viewport_size({"width": 400, "height": 900})
    page.wait_for_timeout(400)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    table = page.evaluate("[document.querySelector('.step-table').scrollWidth, "
                          "document.getElementById('step-body').clientWidth]")
    assert table[0] <= table[1] + 1, f"the step table is cut off at 400 px: {table}"
    shot(page, "step-by-step-400")
    page.set_viewport_size({"width": 1440, "height": 1000})
