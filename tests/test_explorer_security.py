"""The explorer's perimeter (docs/explorer.md, "Security"): what a page on another origin, a hostile file, a slow
or vanished client and a careless command line can do to it. Each test states one promise of that section.

API cases go through Starlette's TestClient; the slow-client cases through raw sockets to a real uvicorn server;
the upload bomb in a subprocess (its memory is measured); cross-site requests and the Content-Security-Policy in
Debian's headless Chromium (no ``bypass_csp``: the page must work under its own policy); the command line in
subprocesses.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import re
import select
import socket
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from gdlab.explorer import create_app, running
from gdlab.explorer.model import Limits, builtin_datasets
from gdlab.explorer.server import CONTENT_SECURITY_POLICY, PLOTLY_STYLE_ATTRIBUTES, STATIC_DIR, plotly_js_path

BASE = "http://127.0.0.1"
CSV = "a,b,t\n1,2.1,u\n2,3.9,v\n3,6.2,w\n4,7.8,x\n"
ENV = {**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}
ARTIFACTS = Path(__file__).resolve().parent / "_artifacts"


def ids(client) -> list[str]:
    return [d["id"] for d in client.get("/api/datasets").json()["datasets"]]


def upload(client, text=CSV, headers=None, content_type="text/csv", **params):
    params = {"name": "mine.csv", "target": "b", **params}
    return client.post("/api/upload", params=params, content=text.encode() if isinstance(text, str) else text,
                       headers={**({"content-type": content_type} if content_type else {}), **(headers or {})})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- CSRF: state changes only from the explorer's own origin ----------------------------------------------------

@pytest.mark.parametrize("headers", [
    {"origin": "http://127.0.0.1:9999"},                                  # another port: another origin
    {"origin": "http://attacker.example"},
    {"origin": "null"},                                                   # a sandboxed frame, a data: URL
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},                                      # same host name, another port
    {"origin": "http://127.0.0.1", "sec-fetch-site": "same-site"},       # the headers disagree: refuse
])
def test_uploads_from_another_origin_are_refused_and_change_nothing(headers):
    client = TestClient(create_app(), base_url=BASE)
    before = ids(client)
    r = upload(client, headers=headers)
    assert r.status_code == 403 and r.json()["parameter"] == "origin"
    assert "only the explorer's own page (http://127.0.0.1/)" in r.json()["error"]
    assert ids(client) == before


def test_uploads_from_the_page_itself_and_from_non_browsers_are_accepted():
    client = TestClient(create_app(), base_url=BASE)
    own = upload(client, headers={"origin": "http://127.0.0.1", "sec-fetch-site": "same-origin"})
    assert own.status_code == 200, own.text
    curl = upload(client, CSV.replace("4,7.8", "5,9.9"))  # neither header: not a browser, so no web page sent it
    assert curl.status_code == 200, curl.text
    assert {own.json()["dataset"]["id"], curl.json()["dataset"]["id"]} <= set(ids(client))


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "POST"])
def test_every_state_changing_method_is_checked_before_routing(method):
    client = TestClient(create_app(), base_url=BASE)
    for path in ("/api/upload", "/api/descend", "/"):
        r = client.request(method, path, headers={"origin": "http://attacker.example"})
        assert r.status_code == 403, (method, path, r.status_code)


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
def test_uploads_need_the_csv_content_type_that_other_pages_cannot_send_unasked(content_type):
    client = TestClient(create_app(), base_url=BASE)
    before = ids(client)
    r = upload(client, content_type=content_type)
    assert r.status_code == 415 and r.json()["parameter"] == "content-type"
    assert "Content-Type: text/csv" in r.json()["error"]
    assert ids(client) == before
    assert upload(client, content_type="text/csv; charset=utf-8").status_code == 200


@pytest.mark.parametrize("headers,status", [
    ({"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "image"}, 403),
    ({"sec-fetch-site": "same-site", "sec-fetch-mode": "cors", "sec-fetch-dest": "empty"}, 403),
    ({"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "iframe"}, 403),
    ({"origin": "http://attacker.example"}, 403),
    ({"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}, 200),  # a link
    ({"sec-fetch-site": "same-origin", "sec-fetch-mode": "cors", "sec-fetch-dest": "empty"}, 200),
    ({"sec-fetch-site": "none", "sec-fetch-mode": "navigate", "sec-fetch-dest": "document"}, 200),  # typed URL
])
def test_other_sites_pages_cannot_make_the_api_work(headers, status):
    client = TestClient(create_app(), base_url=BASE)
    r = client.get("/api/descend?dataset=line&iterations=5000", headers=headers)
    assert r.status_code == status, r.text
    # the page itself may be linked to from anywhere: a shared link opens it
    assert client.get("/?dataset=line", headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate",
                                                 "sec-fetch-dest": "document"}).status_code == 200


def test_refused_uploads_do_not_push_out_the_users_own():
    client = TestClient(create_app(limits=Limits(max_uploads=2)), base_url=BASE)
    mine = [upload(client, CSV.replace("7.8", str(8 + k))).json()["dataset"]["id"] for k in range(2)]
    for k in range(6):
        attack = CSV.replace("7.8", str(20 + k))
        assert upload(client, attack, headers={"origin": "http://127.0.0.1:9999"}).status_code == 403
        assert upload(client, attack, content_type="text/plain").status_code == 415
        assert upload(client, "," * 10_000 + "\n1\n").status_code == 400
    assert [i for i in ids(client) if i.startswith("upload-")] == mine
    for ds in mine:
        assert client.get(f"/api/descend?dataset={ds}&iterations=3").status_code == 200


# ---- hostile files: limits checked on the bytes, before pandas --------------------------------------------------

BOMB = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
from starlette.testclient import TestClient
from gdlab.explorer import create_app

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20

client = TestClient(create_app(), base_url="http://127.0.0.1")
warm = client.post("/api/upload", content=b"x,y\n1,2\n2,3\n3,5\n", headers={"content-type": "text/csv"})
assert warm.status_code == 200, warm.text
bomb = b"," * 1_000_000 + b"\n" + b"1\n" * 500_000  # 2 MB: a million empty column names, then rows
before, peak_before = rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t, cpu = time.perf_counter(), time.process_time()
r = client.post("/api/upload", content=bomb, headers={"content-type": "text/csv"})
out = {"status": r.status_code, "error": r.json().get("error", ""), "wall_s": time.perf_counter() - t,
       "cpu_s": time.process_time() - cpu, "rss_before_mb": before, "rss_after_mb": rss_mb(),
       "peak_increase_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - peak_before,
       "datasets": len(client.get("/api/datasets").json()["datasets"])}
print(json.dumps(out))
"""


def test_a_header_of_a_million_empty_names_is_refused_in_bounded_time_and_memory():
    try:
        proc = subprocess.run([sys.executable, "-c", BOMB], capture_output=True, text=True, env=ENV, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the 2 MB upload bomb was still being parsed after 60 s")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    print(out)
    assert out["status"] == 400 and re.search(r"header line is longer than 64 KB \(at least 655\d\d columns\)",
                                              out["error"]), out
    assert "reads at most 200" in out["error"]
    assert out["datasets"] == len(builtin_datasets()) + 1  # the built-in ones and the warm-up upload: nothing new
    # generous bounds (the refusal takes milliseconds and a few MB; before the fix: minutes and gigabytes)
    assert out["wall_s"] < 5 and out["cpu_s"] < 5, out
    assert out["peak_increase_mb"] < 100, out
    assert out["rss_after_mb"] - out["rss_before_mb"] < 50, out  # the memory came back


def test_upload_shape_limits_are_checked_on_the_header_and_line_count():
    client = TestClient(create_app(limits=Limits(max_columns=6, max_cells=60)), base_url=BASE)
    r = upload(client, "a" * (64 * 1024 + 10) + "\n1\n2\n")
    assert r.status_code == 400 and "header line is longer than 64 KB" in r.json()["error"]
    r = upload(client, ",".join(f"c{k}" for k in range(7)) + "\n" + ",".join("1" * 7) + "\n")
    assert r.status_code == 400 and "7 columns in its header; the explorer reads at most 6" in r.json()["error"]
    r = upload(client, "a;b;c\n" + "".join(f"{k};{k + 1};{2 * k}\n" for k in range(25)), target="c")
    assert r.status_code == 413 and "25 rows x 3 columns" in r.json()["error"]  # 75 values > 60
    for sep in (",", ";", "\t", "|"):  # six columns, 20 rows (120 lines' worth would be refused): accepted
        text = sep.join("abcdef") + "\n" + "".join(sep.join(str(k + j) for j in range(6)) + "\n" for k in range(9))
        r = upload(client, text, target="f")
        assert r.status_code == 200, (sep, r.text)
        assert r.json()["dataset"]["n_features"] == 5
    r = upload(client, "a,b\r1,2\r2,3\r4,5\r", target="b")  # old Mac line ends count as lines too
    assert r.status_code == 200, r.text


# ---- bounded work per request --------------------------------------------------------------------------------------

def test_a_mini_batch_request_within_the_other_limits_has_bounded_work():
    client = TestClient(create_app(), base_url=BASE)
    # 5000 iterations x 200 rows x 2 runs = 2e6 rows read: within max_batch_row_visits, but 2e6 single-row updates
    # (minutes of work before the fix)
    t = time.perf_counter()
    r = client.get("/api/descend?dataset=valley&optimizer=adam&lr=0.01&batch_size=1&iterations=5000&race=adam")
    assert time.perf_counter() - t < 2
    assert r.status_code == 400 and r.json()["parameter"] == "iterations"
    error = r.json()["error"]
    assert "2000000 updates, over the limit of 50000 per request;" in error
    most = int(re.search(r"use at most (\d+) iterations", error).group(1))
    assert most == 50_000 // (200 * 2)
    t = time.perf_counter()
    ok = client.get(f"/api/descend?dataset=valley&optimizer=adam&lr=0.01&batch_size=1&iterations={most}&race=adam")
    assert ok.status_code == 200 and ok.json()["runs"][1]["n_iter"] == most
    assert time.perf_counter() - t < 20  # ~1.5 s on the development machine; generous for a loaded one
    small = TestClient(create_app(limits=Limits(max_batch_updates=100)), base_url=BASE)
    r = small.get("/api/descend?dataset=valley&batch_size=1&iterations=50")
    assert r.status_code == 400 and "use batches of at least 100 rows" in r.json()["error"]
    assert small.get("/api/descend?dataset=valley&batch_size=100&iterations=50").status_code == 200


# ---- slow and vanished clients ---------------------------------------------------------------------------------------

def _port(url: str) -> int:
    return int(url.rstrip("/").rsplit(":", 1)[1])


def _read_all(sock: socket.socket, limit: float) -> tuple[bytes, bool]:
    """What the server sends until it closes the connection (True) or ``limit`` seconds pass (False)."""
    sock.settimeout(0.2)
    data, deadline = b"", time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


HEAD = (b"POST /api/upload?name=slow.csv HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/csv\r\n"
        b"Content-Length: 100000\r\n\r\n")


def test_a_client_that_stops_sending_its_body_is_answered_408_and_cut_off():
    app = create_app(limits=Limits(body_read_timeout=0.5, body_total_timeout=2.0))
    with running(app) as url:
        port = _port(url)
        with socket.create_connection(("127.0.0.1", port)) as stalled:
            stalled.sendall(HEAD + b"x,y\n1,2\n")  # declares 100 kB, sends 12 bytes, then nothing
            t = time.monotonic()
            data, closed = _read_all(stalled, 8)
            assert closed, f"the connection was still open after 8 s (got {data[:80]!r})"
            assert time.monotonic() - t < 5
            assert data.startswith(b"HTTP/1.1 408") and b"stopped arriving" in data
        with socket.create_connection(("127.0.0.1", port)) as trickle:  # a byte every 0.3 s: the total bound
            trickle.sendall(HEAD)
            t, data = time.monotonic(), b""
            while time.monotonic() - t < 8:
                try:
                    trickle.sendall(b"1")
                except OSError:
                    break
                ready, _, _ = select.select([trickle], [], [], 0.3)
                if ready:
                    data, closed = _read_all(trickle, 2)
                    break
            assert data.startswith(b"HTTP/1.1 408"), data[:80]
            assert time.monotonic() - t < 6
        import httpx  # and the server kept answering everyone else

        assert httpx.get(url + "api/datasets").status_code == 200


def test_an_aborted_upload_logs_no_traceback(capfd):
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Keep(level=logging.DEBUG)
    loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.error", "asyncio", "starlette")]
    with running(create_app()) as url:
        for lg in loggers:
            lg.addHandler(handler)
        try:
            for _ in range(3):
                with socket.create_connection(("127.0.0.1", _port(url))) as sock:
                    sock.sendall(HEAD + b"x,y\n1,2\n")
                    time.sleep(0.2)  # the upload has started reading; then the client goes away
            time.sleep(0.5)
            import httpx

            assert httpx.get(url + "api/datasets").status_code == 200
        finally:
            for lg in loggers:
                lg.removeHandler(handler)
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception in ASGI application" not in err, err
    bad = [r.getMessage() for r in records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, bad


# ---- the Content-Security-Policy ----------------------------------------------------------------------------------

def _directives(policy: str) -> dict[str, list[str]]:
    out = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


def test_every_answer_carries_a_strict_content_security_policy():
    client = TestClient(create_app(), base_url=BASE)
    answers = [client.get(u) for u in ("/", "/static/app.js", "/static/plotly.css", "/vendor/plotly.min.js",
                                       "/api/datasets", "/api/descend?dataset=line&lr=-1", "/api/nothing")]
    answers.append(client.get("/", headers={"host": "attacker.example"}))  # the Host guard's refusal too
    answers.append(upload(client, headers={"origin": "http://attacker.example"}))
    for r in answers:
        assert r.headers.get("content-security-policy") == CONTENT_SECURITY_POLICY, (r.url, r.status_code)
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cross-origin-resource-policy"] == "same-origin"
    d = _directives(CONTENT_SECURITY_POLICY)
    assert d["default-src"] == ["'none'"] and d["script-src"] == ["'self'"] and d["style-src"] == ["'self'"]
    assert d["connect-src"] == ["'self'"] and d["frame-ancestors"] == ["'none'"] and d["base-uri"] == ["'none'"]
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY and "unsafe-eval" not in CONTENT_SECURITY_POLICY
    # the only style attributes allowed: plotly's two, named by the hashes of exactly these values
    hashes = [f"'sha256-{base64.b64encode(hashlib.sha256(v.encode()).digest()).decode()}'"
              for v in PLOTLY_STYLE_ATTRIBUTES]
    assert d["style-src-attr"] == ["'unsafe-hashes'", *hashes]
    # and the page holds nothing inline for it to refuse
    html = (STATIC_DIR / "index.html").read_text()
    assert all("src=" in tag for tag in re.findall(r"<script[^>]*>", html))
    assert "<style" not in html and " style=" not in html and " on" + "click=" not in html
    assert not re.search(r"""style=["$]""", (STATIC_DIR / "app.js").read_text())


# ---- in the browser ---------------------------------------------------------------------------------------------------

pytest.importorskip("test_explorer_browser", reason="the browser tests' helpers")
from test_explorer_browser import CHROMIUM, CHROMIUM_ARGS, REQUIRE, _missing  # noqa: E402

RECORD_VIOLATIONS = """window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) =>
  window.__csp.push(`${e.effectiveDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));"""


def _recording(app, log):
    async def recorded(scope, receive, send):
        async def keep(message):
            if message["type"] == "http.response.start":
                log.append((scope["method"], scope["path"], message["status"]))
            await send(message)
        await app(scope, receive, keep)
    return recorded


@pytest.fixture(scope="module")
def chromium():
    why = _missing()
    if why:
        if REQUIRE:
            pytest.fail(f"GDLAB_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


ATTACK = """<!doctype html><html><body><h1>a page on another origin</h1>
<iframe name="sink"></iframe>
<form id="f" method="POST" enctype="text/plain" target="sink" action="TARGETapi/upload?name=form.csv&amp;target=b">
<input name="a,b,t&#10;1,2,u&#10;2,3.9,v&#10;3,6.2,w&#10;4,7.9,q" value="z"></form>
<script>
const url = 'TARGETapi/upload?target=b&name=';
const body = (k) => 'a,b,t\\n1,2,u\\n2,3.9,v\\n3,6.2,w\\n4,' + k + ',x\\n';
const tries = [
  fetch(url + 'plain.csv', {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: body(11)}),
  fetch(url + 'blob.csv', {method: 'POST', mode: 'no-cors', body: new Blob([body(12)], {type: 'text/csv'})}),
  fetch(url + 'cors.csv', {method: 'POST', headers: {'Content-Type': 'text/csv'}, body: body(13)}),
  fetch('TARGETapi/descend?dataset=valley&batch_size=1&iterations=100', {mode: 'no-cors'}),
].map((p) => p.then(() => 'sent', (e) => 'failed: ' + e));
navigator.sendBeacon(url + 'beacon.csv', body(14));
document.querySelector('iframe').addEventListener('load', () => { window.formDone = true; });
document.getElementById('f').submit();
Promise.all(tries).then((r) => { window.results = r; document.title = 'done'; });
</script></body></html>"""


def test_a_page_on_another_local_origin_cannot_register_or_evict_data_sets(chromium):
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route
    import httpx

    log: list[tuple[str, str, int]] = []
    explorer = _recording(create_app(limits=Limits(max_uploads=2)), log)
    with running(explorer) as target:
        mine = []
        for k in range(2):  # the user's own uploads, which an attack must not push out of the two kept
            r = httpx.post(target + "api/upload", params={"name": f"mine{k}.csv", "target": "b"},
                           content=CSV.replace("7.8", str(8 + k)), headers={"content-type": "text/csv"})
            assert r.status_code == 200, r.text
            mine.append(r.json()["dataset"]["id"])
        before = [d["id"] for d in httpx.get(target + "api/datasets").json()["datasets"]]
        attacker = Starlette(routes=[Route("/", lambda request: HTMLResponse(ATTACK.replace("TARGET", target)))])
        with running(attacker) as evil:
            port = _port(evil)
            ctx = chromium.new_context()
            try:
                # same host, another port (same-site, cross-origin), and another host name (cross-site)
                for origin in (f"http://127.0.0.1:{port}/", f"http://localhost:{port}/"):
                    page = ctx.new_page()
                    page.goto(origin)
                    deadline = time.monotonic() + 15
                    while not page.evaluate("document.title === 'done' && window.formDone === true"):
                        assert time.monotonic() < deadline, "the attack page did not finish"
                        time.sleep(0.1)
                    page.close()
            finally:
                ctx.close()
        time.sleep(0.3)  # the beacons are sent in the background
        after = [d["id"] for d in httpx.get(target + "api/datasets").json()["datasets"]]
    assert after == before and all(m in after for m in mine)
    posts = [(path, status) for method, path, status in log if method == "POST"]
    assert len(posts) >= 2 + 2 * 4, posts  # the attack reached the server (the plain fetch, blob, beacon, form)...
    assert all(status == 403 for _, status in posts[2:]), posts  # ... and was refused there
    reads = [status for method, path, status in log if path == "/api/descend"]
    assert reads and all(status == 403 for status in reads), log


def _wait_renders(page, more_than: int, limit: float = 15) -> None:
    """Wait for the page to draw (polled from Python: under the page's CSP, Playwright's wait_for_function cannot
    evaluate its predicate)."""
    deadline = time.monotonic() + limit
    while int(page.evaluate("Number(document.body.dataset.renders || 0)")) <= more_than:
        assert time.monotonic() < deadline, "the page did not draw"
        time.sleep(0.05)


def test_the_page_works_under_its_own_policy_with_no_violation(chromium):
    with running(create_app()) as url:
        ctx = chromium.new_context(viewport={"width": 1440, "height": 1000})
        try:
            page = ctx.new_page()
            page.add_init_script(RECORD_VIOLATIONS)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            for query in ("?dataset=line&race=momentum", "?dataset=mean", "?dataset=valley&batch_size=20"):
                response = page.goto(url + query)
                assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
                page.wait_for_selector("body[data-ready='1']")
            page.goto(url + "?dataset=line&race=momentum")
            page.wait_for_selector("body[data-ready='1']")
            drawn = int(page.evaluate("Number(document.body.dataset.renders || 0)"))
            page.fill("#lr-value", "0.6")
            page.press("#lr-value", "Enter")
            _wait_renders(page, drawn)
            assert "gd — diverges: learning rate 0.6 is above 2/L" in page.inner_text("#verdict")
            box = page.locator("#plot-loss").bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # the mode bar shows
            time.sleep(0.3)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "explorer-security-csp.png"))
            assert page.evaluate("window.__csp") == []
            assert not errors, errors
            # what the policy would have refused is in place by other means:
            style = page.evaluate("""() => {
                const sw = getComputedStyle(document.querySelector('#legend-surface .swatch'));
                const bar = document.querySelector('#plot-loss .modebar');
                const sup = [...document.querySelectorAll('#plot-loss .ytick tspan')].find((t) => t.getAttribute('style'));
                return {swatch: sw.borderTopColor, width: sw.borderTopWidth,
                        modebar: bar && getComputedStyle(bar).position,
                        sup: sup && getComputedStyle(sup).fontSize};
            }""")
            assert style["swatch"] not in ("rgb(0, 0, 0)", "rgba(0, 0, 0, 0)") and style["width"] == "3px", style
            assert style["modebar"] == "absolute", style  # plotly's rules, from /static/plotly.css
            assert style["sup"] is not None, style  # the log axis' exponents, by their allowed style attribute
            # and the policy is enforced: an inline script injected now does not run, and is reported
            ran = page.evaluate("""() => { const s = document.createElement('script');
                s.textContent = 'window.__inline = 1'; document.body.appendChild(s); return window.__inline; }""")
            assert ran is None
            time.sleep(0.2)
            assert any(v.startswith("script-src-elem inline") for v in page.evaluate("window.__csp"))
        finally:
            ctx.close()


def test_plotly_css_holds_the_rules_plotly_would_insert(chromium):
    page = chromium.new_page()
    try:
        page.set_content("<html><head></head><body><div id='p'></div></body></html>")
        page.add_script_tag(content=plotly_js_path().read_text())
        page.evaluate("Plotly.newPlot('p', [{x: [1, 2], y: [1, 2]}])")
        ours = (STATIC_DIR / "plotly.css").read_text()
        inserted, parsed = page.evaluate("""(css) => {
            const sheet = document.getElementById('plotly.js-style-global').sheet;
            const mine = new CSSStyleSheet(); mine.replaceSync(css);
            return [[...sheet.cssRules].map((r) => r.cssText), [...mine.cssRules].map((r) => r.cssText)];
        }""", ours)
        assert inserted and parsed == inserted, "regenerate static/plotly.css for the installed plotly.js"
    finally:
        page.close()


# ---- the command line ---------------------------------------------------------------------------------------------

DRIVER = textwrap.dedent(r"""
    import contextlib, io, json, socket, sys
    from gdlab.cli import main
    results = []
    for argv in json.load(sys.stdin):
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(argv) or 0
            except SystemExit as exc:
                code = exc.code
        results.append({"code": code, "stderr": err.getvalue()})
    json.dump(results, sys.__stdout__)
""")


def test_explore_refuses_a_port_in_use_and_a_bad_host_with_one_line_and_exit_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cases = [["explore", "--port", str(port), "--no-browser"],
                 ["explore", "--host", "no-such-host.invalid", "--no-browser"],
                 ["explore", "--host", "198.51.100.77", "--port", "0", "--no-browser"],  # not this machine's
                 ["explore", "--allow-host", "*", "--port", "0", "--no-browser"]]
        proc = subprocess.run([sys.executable, "-c", DRIVER], input=json.dumps(cases), capture_output=True,
                              text=True, env=ENV, timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout)
    words = [f"port {port} on 127.0.0.1 is already in use", "cannot listen on host 'no-such-host.invalid'",
             "cannot listen on 198.51.100.77: it is not an address of this machine", "cannot be switched off"]
    for argv, result, expected in zip(cases, results, words):
        lines = result["stderr"].strip().splitlines()
        assert result["code"] == 2, (argv, result)
        assert len(lines) == 1 and lines[0].startswith("gdlab explore: error: ") and expected in lines[0], result
        assert "Traceback" not in result["stderr"] and "ERROR" not in result["stderr"]


def test_explore_on_every_interface_warns_and_keeps_the_host_guard():
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gdlab", "explore", "--host", "0.0.0.0", "--port", str(port),
                             "--allow-host", "explorer.test", "--no-browser"], stderr=subprocess.PIPE, bufsize=0,
                            env=ENV)
    try:
        err, deadline = b"", time.monotonic() + 60
        while b"gdlab explorer at" not in err:  # raw reads: a buffered readline could sit on the second line
            assert proc.poll() is None and time.monotonic() < deadline, err.decode()
            ready, _, _ = select.select([proc.stderr], [], [], 0.5)
            if ready:
                err += os.read(proc.stderr.fileno(), 65536)
        lines = err.decode().splitlines()
        warning = [line for line in lines if "warning" in line]
        assert len(warning) == 1 and warning[0].startswith("gdlab explore: warning: --host 0.0.0.0 makes the "
                                                           "explorer reachable from the network"), lines
        assert "explorer.test" in warning[0] and socket.gethostname().lower() in warning[0]

        def status(host: str) -> int:
            return httpx.get(f"http://127.0.0.1:{port}/api/datasets", headers={"host": host}).status_code

        assert status("attacker.example") == 400  # a rebound domain is still refused
        assert status(f"attacker.example:{port}") == 400
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"explorer.test:{port}",
                     f"{socket.gethostname()}:{port}"):
            assert status(host) == 200, host
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        proc.stderr.close()
