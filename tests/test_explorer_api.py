"""The explorer's HTTP API, through Starlette's TestClient: every number checked against an independent reference
(a plain NumPy transcription of the workshop loop, numpy.linalg, the rows themselves), and every bad input answered
by a clear 4xx JSON error."""

from __future__ import annotations

import inspect
import io
import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette may suggest another HTTP client for its TestClient
    from starlette.testclient import TestClient

import gdlab
from gdlab.explorer import create_app, serve
from gdlab.explorer.model import Limits, loss_on_grid, predicted_rate, step_bound
from gdlab.explorer.server import STATIC_DIR, plotly_js_path

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url=BASE)


def get(client, url, status=200):
    r = client.get(url)
    assert r.status_code == status, r.text
    return r.json()


def design(X):
    return np.column_stack([np.ones(len(X)), X])


def workshop_loop(X, y, w, eta, n_iterations):
    """The workshop's loop (with its gradient line restored, NOTES.md), keeping every w."""
    X_b = design(X)
    y = y.reshape(-1, 1)
    w = np.asarray(w, dtype=float).reshape(-1, 1)
    m = len(X)
    path = [w.ravel().copy()]
    for _ in range(n_iterations):
        gradients = 2 / m * X_b.T.dot(X_b.dot(w) - y)
        w = w - eta * gradients
        path.append(w.ravel().copy())
    return np.array(path)


# ---- numbers ------------------------------------------------------------------------------------------------------

def test_workshop_run_matches_the_workshop_loop(client):
    ds = gdlab.datasets.workshop_line()
    body = get(client, "/api/descend?dataset=line&lr=0.1&iterations=10")
    run = body["runs"][0]
    expected = workshop_loop(ds.X, ds.y, ds.w_init, 0.1, 10)
    np.testing.assert_allclose(np.array(run["params"]), expected, rtol=1e-12, atol=1e-12)
    assert run["iteration"] == list(range(11))
    mse = [float(np.mean((design(ds.X) @ w - ds.y) ** 2)) for w in expected]
    np.testing.assert_allclose(run["loss"], mse, rtol=1e-10)
    assert body["start"] == pytest.approx(list(ds.w_init))


def test_optimum_and_curvature_match_numpy_linear_algebra(client):
    ds = gdlab.datasets.workshop_line()
    info = {d["id"]: d for d in get(client, "/api/datasets")["datasets"]}["line"]
    X_b = design(ds.X)
    w_star, *_ = np.linalg.lstsq(X_b, ds.y, rcond=None)
    np.testing.assert_allclose(info["optimum"]["params"], w_star, rtol=1e-10)
    assert info["optimum"]["loss"] == pytest.approx(np.mean((X_b @ w_star - ds.y) ** 2), rel=1e-10)
    eig = np.linalg.eigvalsh(2 / len(ds.X) * X_b.T @ X_b)
    assert info["curvature"]["L"] == pytest.approx(eig[-1], rel=1e-12)
    assert info["curvature"]["mu"] == pytest.approx(eig[0], rel=1e-10)
    assert info["curvature"]["stable_step"] == pytest.approx(2 / eig[-1], rel=1e-12)
    assert info["lr_range"]["max"] > info["curvature"]["stable_step"]  # the slider reaches past 2/L


def test_divergence_is_said_in_words_naming_the_bound(client):
    ds = gdlab.datasets.workshop_line()
    L = np.linalg.eigvalsh(2 / 50 * design(ds.X).T @ design(ds.X))[-1]
    assert 2 / L == pytest.approx(0.5115, abs=1e-4)
    above = get(client, "/api/descend?dataset=line&lr=0.6&iterations=10")["runs"][0]["verdict"]
    assert above["diverges"] is True
    assert above["text"] == "diverges: learning rate 0.6 is above 2/L = 0.51"
    below = get(client, "/api/descend?dataset=line&lr=0.5&iterations=10")["runs"][0]["verdict"]
    assert below["diverges"] is False
    assert below["text"].startswith("converges: learning rate 0.5 is below 2/L = 0.51")
    # just either side of the bound the numbers get enough digits to differ
    close = get(client, "/api/descend?dataset=line&lr=0.5116&iterations=10")["runs"][0]["verdict"]["text"]
    assert close.startswith("diverges: learning rate 0.5116 is above 2/L = 0.51 (the error grows by 1.0005")
    close = get(client, "/api/descend?dataset=line&lr=0.5114&iterations=10")["runs"][0]["verdict"]["text"]
    assert close.startswith("converges: learning rate 0.5114 is below 2/L = 0.5115")


def test_long_divergent_run_is_stopped_and_reported(client):
    run = get(client, "/api/descend?dataset=line&lr=1.5&iterations=500")["runs"][0]
    assert run["diverged"] is True and run["n_iter"] < 500
    assert "2/L" in run["verdict"]["text"] and "diverged" in run["message"]


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov"])
def test_momentum_step_bounds_separate_convergence_from_divergence(client, optimizer):
    # the bound comes from the 2x2 iteration of each eigen-direction; the core's runs must agree on either side
    info = {d["id"]: d for d in get(client, "/api/datasets")["datasets"]}["valley"]
    curv = gdlab.Curvature(np.array(info["curvature"]["eigenvalues"]))
    beta = 0.6
    bound, label = step_bound(curv, optimizer, beta)
    assert "β = 0.6" in label
    url = f"/api/descend?dataset=valley&optimizer={optimizer}&beta={beta}&iterations=1500"
    inside = get(client, url + f"&lr={0.97 * bound}")["runs"][0]
    outside = get(client, url + f"&lr={1.03 * bound}")["runs"][0]
    assert not inside["verdict"]["diverges"] and not inside["diverged"]
    assert inside["gap"][-1] < 1e-6 * inside["gap"][0]
    assert outside["verdict"]["diverges"] and outside["diverged"]
    assert outside["verdict"]["text"].startswith(f"diverges: learning rate {1.03 * bound:.6g} is above {label}")


@pytest.mark.parametrize("optimizer,lr,params", [("gd", 0.3, {}), ("momentum", 0.2, {"beta": 0.5}),
                                                 ("nesterov", 0.2, {"beta": 0.5})])
def test_predicted_rate_is_the_observed_contraction(optimizer, lr, params):
    ds = gdlab.datasets.workshop_line()
    curv = gdlab.curvature(ds.X)
    rate = predicted_rate(curv, optimizer, lr, params.get("beta"))
    res = gdlab.descend(ds.X, ds.y, optimizer=optimizer, learning_rate=lr, max_iter=80, tol=None, gtol=None,
                        warn=False, coef_init=ds.coef_init, intercept_init=ds.intercept_init, **params)
    gap = res.trajectory.gap

    def envelope(k):  # momentum's error spirals: compare the peaks of short windows
        return gap[k - 6 : k + 1].max()

    k0, k1 = 30, 80  # past the transient, before rounding
    observed = (envelope(k1) / envelope(k0)) ** (1 / (2 * (k1 - k0)))
    assert observed == pytest.approx(rate, rel=2e-3)
    if optimizer == "gd":
        assert rate == pytest.approx(max(abs(1 - lr * curv.L), abs(1 - lr * curv.mu)))


def test_switching_optimizer_changes_the_path_and_adam_matches_a_numpy_transcription(client):
    ds = gdlab.datasets.workshop_line()
    gd = get(client, "/api/descend?dataset=line&lr=0.1&iterations=20")["runs"][0]["params"]
    adam = get(client, "/api/descend?dataset=line&optimizer=adam&lr=0.1&iterations=20")["runs"][0]["params"]
    assert not np.allclose(gd, adam)
    X_b, y, m = design(ds.X), ds.y, len(ds.y)
    w = ds.w_init.copy()
    mom, vel = np.zeros(2), np.zeros(2)
    path = [w.copy()]
    for t in range(1, 21):
        g = 2 / m * X_b.T @ (X_b @ w - y)
        mom = 0.9 * mom + 0.1 * g
        vel = 0.999 * vel + 0.001 * g * g
        w = w - 0.1 * (mom / (1 - 0.9**t)) / (np.sqrt(vel / (1 - 0.999**t)) + 1e-8)
        path.append(w.copy())
    np.testing.assert_allclose(adam, np.array(path), rtol=1e-10)


def test_race_runs_both_optimizers_from_the_same_start(client):
    body = get(client, "/api/descend?dataset=valley&lr=0.5&iterations=30&race=momentum&race_lr=0.3&race_beta=0.7"
                       "&start=0,-2,2")
    a, b = body["runs"]
    assert (a["label"], a["optimizer"], b["label"], b["optimizer"]) == ("A", "gd", "B", "momentum")
    assert a["params"][0] == b["params"][0] == [0.0, -2.0, 2.0]
    assert b["hyperparameters"] == {"beta": 0.7} and b["learning_rate"] == 0.3
    assert a["params"][-1] != b["params"][-1]


def test_surface_is_the_mse_computed_from_the_rows(client):
    ds = gdlab.datasets.workshop_line()
    surf = get(client, "/api/descend?dataset=line&grid=12")["surface"]
    assert surf["kind"] == "contour" and len(surf["z"]) == 12 and len(surf["z"][0]) == 12
    X_b = design(ds.X)
    w_star, *_ = np.linalg.lstsq(X_b, ds.y, rcond=None)
    loss_star = np.mean((X_b @ w_star - ds.y) ** 2)
    for r, c in [(0, 0), (3, 7), (11, 11), (6, 2)]:
        w = np.array([surf["x"][c], surf["y"][r]])  # z[row = y][column = x]
        direct = np.mean((X_b @ w - ds.y) ** 2) - loss_star
        assert surf["z"][r][c] == pytest.approx(math.log10(direct), abs=1e-4)
    # the view holds the start and the optimum
    view = surf["view"]
    for point in (ds.w_init, w_star):
        assert view[0] < point[0] < view[1] and view[2] < point[1] < view[3]


def test_loss_on_grid_matches_rows_with_many_features():
    syn = gdlab.datasets.make_regression(300, 4, noise=0.3, intercept=2.0, random_state=1)
    stats = gdlab.sources.gram.GramStats.from_arrays(syn.X, syn.y.reshape(-1, 1))
    theta = np.random.default_rng(0).normal(size=(25, 5))
    direct = np.mean((design(syn.X) @ theta.T - syn.y[:, None]) ** 2, axis=0)
    np.testing.assert_allclose(loss_on_grid(stats, theta), direct, rtol=1e-10)


def test_one_dimensional_mean_shows_the_workshops_error_curve(client):
    mean = gdlab.datasets.workshop_mean()
    body = get(client, "/api/descend?dataset=mean&lr=0.5&iterations=5")
    surf = body["surface"]
    assert surf["kind"] == "curve"
    np.testing.assert_allclose(surf["loss"], mean.mse(np.array(surf["x"])), rtol=1e-10)
    assert surf["view"][0] <= 1.0 and surf["view"][1] >= 3.0  # the workshop's candidates, linspace(1, 3, 40)
    run = body["runs"][0]
    # 2/(L+mu) = 0.5 here (L = mu = 2): the workshop's "jump straight to the bottom" in one step
    assert run["params"][1][0] == pytest.approx(mean.X.mean(), rel=1e-12)
    assert "one step" in run["verdict"]["text"]


def test_mini_batches_use_the_rows_and_the_seed(client):
    url = "/api/descend?dataset=line&lr=0.05&iterations=15&batch_size=10"
    one = get(client, url + "&seed=1")["runs"][0]
    again = get(client, url + "&seed=1")["runs"][0]
    other = get(client, url + "&seed=2")["runs"][0]
    assert one["source"] == "memory"
    assert "mini-batches of 10 rows" in one["verdict"]["text"]
    assert one["params"] == again["params"]
    assert one["params"] != other["params"]
    full = get(client, "/api/descend?dataset=line&lr=0.05&iterations=15")["runs"][0]
    assert full["source"] == "gram"


def test_export_csv_and_json_hold_the_trajectory(client):
    q = "dataset=line&lr=0.1&iterations=10&race=momentum&race_lr=0.05"
    body = get(client, "/api/descend?" + q)
    r = client.get("/api/export?format=csv&" + q)
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    frame = pd.read_csv(io.StringIO(r.text))
    a = frame[frame["run"] == "A"]
    b = frame[frame["run"] == "B"]
    assert list(a["iteration"]) == list(range(11)) and set(b["optimizer"]) == {"momentum"}
    np.testing.assert_allclose(a[["intercept", "w1"]].to_numpy(), body["runs"][0]["params"], rtol=1e-12)
    np.testing.assert_allclose(b["loss"], body["runs"][1]["loss"], rtol=1e-12)
    r = client.get("/api/export?format=json&" + q)
    data = r.json()
    assert [run["optimizer"] for run in data["runs"]] == ["gd", "momentum"]
    traj = data["runs"][0]["result"]["trajectory"]
    np.testing.assert_allclose(traj["coef"], [[p[1]] for p in body["runs"][0]["params"]], rtol=1e-12)
    assert data["dataset"]["curvature"]["stable_step"] == pytest.approx(body["dataset"]["curvature"]["stable_step"])


# ---- data from the user -----------------------------------------------------------------------------------------

def upload(client, text, **params):
    data = text.encode() if isinstance(text, str) else text
    return client.post("/api/upload", params=params, content=data, headers={"content-type": "text/csv"})


def test_uploaded_csv_is_fitted_like_numpy():
    client = TestClient(create_app(), base_url=BASE)
    rng = np.random.default_rng(7)
    X = rng.normal(size=(120, 2))
    y = 1.5 + X @ [2.0, -1.0] + 0.1 * rng.normal(size=120)
    frame = pd.DataFrame({"a": X[:, 0], "label": ["u"] * 120, "b": X[:, 1], "target": y})
    r = upload(client, frame.to_csv(index=False), name="mine.csv", target="target")
    assert r.status_code == 200, r.text
    info = r.json()["dataset"]
    assert info["feature_names"] == ["a", "b"] and info["target_name"] == "target"
    assert "label" in info["note"]  # the text column was left out, and the page says so
    w_star, *_ = np.linalg.lstsq(design(X), y, rcond=None)
    np.testing.assert_allclose(info["optimum"]["params"], w_star, rtol=1e-9)
    body = get(client, f"/api/descend?dataset={info['id']}&lr={info['defaults']['lr']}&iterations=3000")
    np.testing.assert_allclose(body["runs"][0]["params"][-1], w_star, rtol=1e-6)
    assert any(d["id"] == info["id"] for d in get(client, "/api/datasets")["datasets"])
    # the same file and target give the same id, so a shared link keeps working while the server runs
    assert upload(client, frame.to_csv(index=False), name="again.csv", target="target").json()["dataset"]["id"] == \
        info["id"]


@pytest.mark.parametrize("content,params,status,words", [
    ("", {}, 400, "empty"),
    (b"\xff\xfe\x00\x01binary", {}, 400, "not UTF-8"),
    ("x,y\n1,2\n3,4\n", {"target": "price"}, 400, "'price' is not in the table"),
    ("x,y\n1,2\n", {}, 400, "at least 2 rows"),
    ("x,y\n1,2\n3,\n5,6\n", {}, 400, "column 'y' has 1 missing"),
    ("x,y\n1,a\n3,b\n5,c\n", {"target": "y"}, 400, "not numeric"),
    ("x,y\n1,2\n3,4\n", {"bogus": "1"}, 400, "unknown parameter 'bogus'"),
])
def test_bad_uploads_get_one_clear_error(client, content, params, status, words):
    r = upload(client, content, **params)
    assert r.status_code == status
    assert words in r.json()["error"]


def test_uploads_are_size_limited():
    client = TestClient(create_app(limits=Limits(max_upload_bytes=100)), base_url=BASE)
    text = "x,y\n" + "".join(f"{i},{2 * i}\n" for i in range(100))
    r = upload(client, text)
    assert r.status_code == 413 and "upload limit" in r.json()["error"]

    def chunks():  # no Content-Length: the server counts as it reads
        yield text[:60].encode()
        yield text[60:].encode()

    r = client.post("/api/upload", content=chunks(), headers={"content-type": "text/csv"})
    assert r.status_code == 413 and r.json()["parameter"] == "file"


def test_uploads_are_bounded_in_number():
    client = TestClient(create_app(limits=Limits(max_uploads=2)), base_url=BASE)
    ids = [upload(client, f"x,y\n1,{k}\n2,{k + 1}\n3,{k + 5}\n").json()["dataset"]["id"] for k in range(3)]
    r = client.get(f"/api/descend?dataset={ids[0]}")
    assert r.status_code == 404 and "upload it again" in r.json()["error"]
    assert client.get(f"/api/descend?dataset={ids[2]}").status_code == 200


def test_data_named_on_the_command_line_is_the_default(tmp_path):
    path = tmp_path / "houses.csv"
    rng = np.random.default_rng(3)
    size = rng.uniform(50, 150, 80)
    pd.DataFrame({"size": size, "rooms": rng.integers(1, 6, 80), "price": 3 * size + 20 + rng.normal(size=80)}) \
        .to_csv(path, index=False)
    client = TestClient(create_app(path, target="price", features="size"), base_url=BASE)
    listing = get(client, "/api/datasets")
    assert listing["default"] == "data"
    body = get(client, "/api/descend")
    assert body["dataset"]["feature_names"] == ["size"] and body["dataset"]["kind"] == "line"
    with pytest.raises(ValueError, match="does not exist"):
        create_app(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="'cost' is not in the table"):
        create_app(path, target="cost")
    with pytest.raises(ValueError, match="not in the table"):
        create_app(path, target="price", features=["size", "area"])


# ---- every input is validated ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("query,parameter,words", [
    ("lr=0", "lr", "(0, 1e+06]"),
    ("lr=-1", "lr", "The learning rate η (lr= in the link) must be"),
    ("lr=abc", "lr", "must be a number"),
    ("lr=inf", "lr", "must be a number"),
    ("lr=nan", "lr", "must be a number"),
    ("iterations=0", "iterations", "[1, 5000]"),
    ("iterations=100000", "iterations", "[1, 5000]"),
    ("iterations=2.5", "iterations", "an integer"),
    ("grid=5", "grid", "[10, 150]"),
    ("grid=5000", "grid", "[10, 150]"),
    ("batch_size=51", "batch_size", "[0, 50]"),
    ("batch_size=-3", "batch_size", "[0, 50]"),
    ("seed=-1", "seed", "Seed (seed= in the link) must be"),
    ("start=1,2,3", "start", "2 comma-separated numbers"),
    ("start=1,x", "start", "must hold numbers"),
    ("start=1,nan", "start", "finite"),
    ("start=1,1e300", "start", "finite"),
    ("axes=0,0", "axes", "distinct"),
    ("axes=0,5", "axes", "between 0 and 1"),
    ("axes=a", "axes", "parameter indices"),
    ("optimizer=sgd", "optimizer", "valid values are gd, momentum"),
    ("optimizer=momentum&beta=1.5", "beta", "β (momentum) (beta= in the link) must be"),
    ("optimizer=adam&eps=0", "eps", "ε (eps= in the link) must be"),
    ("race=lbfgs", "race", "unknown optimizer"),
    ("race=gd&race_lr=-2", "race_lr", "learning rate η (race_lr= in the link) must be"),
    ("learning_rate=0.1", "learning_rate", "unknown parameter 'learning_rate'"),
])
def test_bad_inputs_get_a_clear_400(client, query, parameter, words):
    r = client.get("/api/descend?dataset=line&" + query)
    assert r.status_code == 400
    body = r.json()
    assert body["parameter"] == parameter
    assert words in body["error"]
    # the page's words, not Python's: no message starts with a bare argument name such as "lr must be"
    assert not re.match(r"[a-z_]+ must ", body["error"])


def test_unknown_dataset_and_format_and_route(client):
    r = client.get("/api/descend?dataset=nope")
    assert r.status_code == 404 and "available: line, mean, valley" in r.json()["error"]
    r = client.get("/api/export?dataset=line&format=xlsx")
    assert r.status_code == 400 and r.json()["parameter"] == "format"
    r = client.get("/api/nothing")
    assert r.status_code == 404 and "error" in r.json()
    assert client.post("/api/descend").status_code == 405


def test_mini_batch_work_is_bounded():
    client = TestClient(create_app(limits=Limits(max_batch_row_visits=1000)), base_url=BASE)
    r = client.get("/api/descend?dataset=line&batch_size=5&iterations=100")
    assert r.status_code == 400 and r.json()["parameter"] == "iterations"
    assert "use at most 20 iterations" in r.json()["error"]
    assert client.get("/api/descend?dataset=line&batch_size=5&iterations=20").status_code == 200
    assert client.get("/api/descend?dataset=line&iterations=100").status_code == 200  # full batch: no rows read


# ---- serving safely ------------------------------------------------------------------------------------------------

def test_page_and_plotly_are_served_locally(client):
    r = client.get("/")
    assert r.status_code == 200 and "gdlab explorer" in r.text
    assert "http://" not in r.text and "https://" not in r.text  # no CDN: it works offline
    js = client.get("/vendor/plotly.min.js")
    assert js.status_code == 200 and js.content == plotly_js_path().read_bytes()
    assert plotly_js_path().parent.name == "package_data"
    for name in ("app.js", "style.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and r.content == (STATIC_DIR / name).read_bytes()
    assert r.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/static/../server.py", "/static/%2e%2e/server.py", "/static/..%2fserver.py",
                                  "/static/%2e%2e%2f%2e%2e%2fdescent.py", "/static//etc/passwd",
                                  "/static/../../../../etc/passwd", "/vendor/../static/app.js/../../model.py"])
def test_static_files_come_only_from_the_static_folder(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert b"def " not in r.content and b"root:" not in r.content


def test_foreign_host_headers_are_refused(client):
    r = client.get("/api/datasets", headers={"host": "attacker.example"})
    assert r.status_code == 400


def test_binds_to_loopback_by_default_and_checks_the_port():
    assert inspect.signature(serve).parameters["host"].default == "127.0.0.1"
    with pytest.raises(ValueError, match="port must be"):
        serve(port=70000, open_browser=False)


def test_a_start_inside_the_view_keeps_the_view(client):
    default = get(client, "/api/descend?dataset=line&grid=10")["surface"]["view"]
    x0, x1, y0, y1 = default
    inside = get(client, f"/api/descend?dataset=line&grid=10&start={x0 + 0.1 * (x1 - x0)},{y1 - 0.05 * (y1 - y0)}")
    assert inside["surface"]["view"] == default
    outside = get(client, f"/api/descend?dataset=line&grid=10&start={x1 + 5},{y0 - 5}")["surface"]["view"]
    assert outside[1] > x1 + 5 and outside[2] < y0 - 5


def test_semicolon_files_and_a_single_column_upload(client):
    r = upload(client, "x;y\n1;2.1\n2;3.9\n3;6.2\n4;7.8\n", name="semi.csv")
    info = r.json()["dataset"]
    assert info["feature_names"] == ["x"] and info["target_name"] == "y"
    w_star, *_ = np.linalg.lstsq(design(np.array([[1.0], [2], [3], [4]])), [2.1, 3.9, 6.2, 7.8], rcond=None)
    np.testing.assert_allclose(info["optimum"]["params"], w_star, rtol=1e-10)
    # one column: the model is its mean, as in the workshop's first figure
    values = [1.5, 2.5, 2.0, 3.0]
    info = upload(client, "v\n" + "\n".join(map(str, values)) + "\n", name="one.csv").json()["dataset"]
    assert info["kind"] == "mean" and info["optimum"]["params"] == pytest.approx([np.mean(values)])
    assert get(client, f"/api/descend?dataset={info['id']}")["surface"]["kind"] == "curve"


def test_running_serves_on_loopback_with_a_free_port():
    import httpx

    from gdlab.explorer import running

    with running(create_app()) as url:
        assert url.startswith("http://127.0.0.1:")
        r = httpx.get(url + "api/descend?dataset=mean&lr=0.5&iterations=1")
        assert r.status_code == 200
        assert r.json()["runs"][0]["params"][-1][0] == pytest.approx(gdlab.datasets.workshop_mean().X.mean())


def test_every_core_optimizer_is_offered_with_its_parameters(client):
    from gdlab.optimizers import OPTIMIZERS

    offered = get(client, "/api/datasets")["optimizers"]
    assert set(offered) == set(OPTIMIZERS)
    for name, params in offered.items():
        factory = getattr(gdlab.optimizers, name)
        signature = inspect.signature(factory).parameters
        for hp, spec in params.items():
            assert signature[hp].default == spec["default"]  # the page starts from the core's defaults


def test_an_ill_conditioned_upload_gets_advice_and_a_usable_slider(client):
    rng = np.random.default_rng(0)
    x = rng.normal(size=60)
    frame = pd.DataFrame({"a": x * 1e4, "b": rng.normal(size=60), "y": 3 * x + 1})
    info = upload(client, frame.to_csv(index=False), name="scaled.csv").json()["dataset"]
    X_b = design(frame[["a", "b"]].to_numpy())
    eig = np.linalg.eigvalsh(2 / 60 * X_b.T @ X_b)
    assert info["curvature"]["condition_number"] == pytest.approx(eig[-1] / eig[0], rel=1e-6)
    assert info["lr_range"]["max"] <= 1e3 * info["curvature"]["stable_step"] * 1.0001  # 2/L is not squeezed
    run = get(client, f"/api/descend?dataset={info['id']}&lr={info['defaults']['lr']}")["runs"][0]
    assert "standardise" in run["verdict"]["text"] and not run["verdict"]["diverges"]


@pytest.mark.parametrize("query", ["dataset=line&grid=10", "dataset=valley&axes=1,2&start=0,-2,2.5",
                                   "dataset=line&start=40,-30", "dataset=mean"])
def test_surface_view_leaves_the_grid_out_and_api_surface_sends_it(client, query):
    # a slider move asks for the surface's description only; /api/surface gives the grid of the same state
    full = get(client, f"/api/descend?{query}&lr=0.2&iterations=7")
    view = get(client, f"/api/descend?{query}&lr=0.2&iterations=7&surface=view")
    alone = get(client, f"/api/surface?{query}&lr=0.2&iterations=7")
    assert alone == full["surface"]
    grid_keys = {"x", "y", "z", "loss"}
    assert not grid_keys & set(view["surface"])
    assert view["surface"] == {k: v for k, v in full["surface"].items() if k not in grid_keys}
    timeless = lambda runs: [{k: v for k, v in run.items() if k != "seconds"} for run in runs]  # noqa: E731
    assert timeless(view["runs"]) == timeless(full["runs"]) and view["start"] == full["start"]


def test_surface_parameter_is_validated(client):
    body = get(client, "/api/descend?dataset=line&surface=none", status=400)
    assert body["parameter"] == "surface" and "'full'" in body["error"] and "'view'" in body["error"]
    body = get(client, "/api/surface?dataset=line&grid=100000", status=400)
    assert body["parameter"] == "grid"
    body = get(client, "/api/surface?dataset=line&surface=view", status=400)
    assert body["parameter"] == "surface"


def test_security_headers_on_every_kind_of_answer(client):
    for url in ["/", "/static/app.js", "/api/datasets", "/api/descend?dataset=line&surface=view", "/api/nothing"]:
        r = client.get(url)
        assert r.headers["x-content-type-options"] == "nosniff", url
        assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "no-referrer", url
