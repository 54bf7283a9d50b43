"""The explorer's classification views and its Standardise toggle, through the HTTP API (Starlette's TestClient):
logistic regression's runs against a plain NumPy transcription of gradient descent on the log-loss, the decision
boundary against the line w0 + w . x = 0 solved by hand, the log-loss surface against the log-loss evaluated
directly, the hours-studied data against the coefficients Wikipedia's 'Logistic regression' article prints, and the
standardised twin against ``gdlab.descend(..., standardize=True)`` mapped into standardised coordinates."""

from __future__ import annotations

import io
import warnings

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

import gdlab
from gdlab.explorer import create_app
from gdlab.explorer.model import EXAM_HOURS, EXAM_PASSED, Limits, boundary_segment, builtin_datasets
from gdlab.scaling import Scaling

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url=BASE)


@pytest.fixture(scope="module")
def builtins():
    return {ds.id: ds for ds in builtin_datasets()}


def get(client, url, status=200):
    r = client.get(url)
    assert r.status_code == status, r.text
    return r.json()


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def numpy_log_loss(X, y, theta):
    """Mean log-loss of theta = [b, w] on 0/1 labels, straight from its definition."""
    eta = theta[0] + X @ theta[1:]
    return float(np.mean(np.logaddexp(0.0, eta) - y * eta))


def numpy_descent(X, y, theta, eta, n):
    """Gradient descent on the mean log-loss: grad = X_b^T (sigmoid(X_b theta) - y) / m."""
    X_b = np.column_stack([np.ones(len(X)), X])
    path = [np.array(theta, dtype=float)]
    for _ in range(n):
        theta = path[-1] - eta * X_b.T @ (sigmoid(X_b @ path[-1]) - y) / len(X)
        path.append(theta)
    return np.array(path)


def test_classification_data_sets_are_listed_with_their_task_and_minimum(client):
    info = {d["id"]: d for d in get(client, "/api/datasets")["datasets"]}
    for ds_id in ("exam", "classes", "separable"):
        assert info[ds_id]["task"] == "classification" and info[ds_id]["loss_name"] == "log_loss"
    # Wikipedia's worked example: w0 = -4.0777, w1 = 1.5046 (rounded there to 4 decimals)
    np.testing.assert_allclose(info["exam"]["optimum"]["params"], [-4.0777, 1.5046], atol=1e-4)
    assert info["exam"]["classes"] == ["failed", "passed"]
    assert info["separable"]["optimum"] is None and info["separable"]["separable"] is True
    assert info["separable"]["loss_star"] == 0.0
    # L = lambda_max(X_b^T X_b) / (4m), from numpy.linalg
    X_b = np.column_stack([np.ones(20), EXAM_HOURS])
    L = np.linalg.eigvalsh(X_b.T @ X_b / 20)[-1] / 4
    assert info["exam"]["curvature"]["L"] == pytest.approx(L, rel=1e-12)
    assert info["exam"]["curvature"]["stable_step"] == pytest.approx(2 / L, rel=1e-12)


def test_a_log_loss_run_is_numpys_gradient_descent_with_its_accuracy(client):
    body = get(client, "/api/descend?dataset=exam&lr=0.5&iterations=60&start=0.5,-0.25")
    run = body["runs"][0]
    ref = numpy_descent(EXAM_HOURS.reshape(-1, 1), EXAM_PASSED.astype(float), [0.5, -0.25], 0.5, 60)
    np.testing.assert_allclose(run["params"], ref, rtol=1e-10, atol=1e-12)
    losses = [numpy_log_loss(EXAM_HOURS.reshape(-1, 1), EXAM_PASSED, p) for p in ref]
    np.testing.assert_allclose(run["loss"], losses, rtol=1e-10)
    star = body["dataset"]["optimum"]["loss"]
    np.testing.assert_allclose(run["gap"], np.array(losses) - star, rtol=1e-8, atol=1e-14)
    acc = [np.mean(((p[0] + p[1] * EXAM_HOURS) > 0) == (EXAM_PASSED == 1)) for p in ref]
    np.testing.assert_allclose(run["accuracy"], acc)
    assert run["verdict"]["text"].startswith("descends: learning rate 0.5 is below 2/L = 0.75")


def test_the_decision_boundary_is_where_w0_plus_w_dot_x_is_zero(client, builtins):
    body = get(client, "/api/descend?dataset=classes&iterations=40")
    run = body["runs"][0]
    assert run["boundary"]["features"] == [0, 1]
    X = builtins["classes"].X
    lo, hi = X.min(axis=0), X.max(axis=0)
    box = np.column_stack([lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo)])
    sample = get(client, "/api/data?dataset=classes")
    np.testing.assert_allclose(sample["box"], box, rtol=1e-12)
    drawn = 0
    for p, seg in zip(run["params"], run["boundary"]["segments"]):
        # by hand: where the line meets the box's four edges
        w0, w1, w2 = p
        hits = [(x, -(w0 + w1 * x) / w2) for x in box[0] if box[1, 0] <= -(w0 + w1 * x) / w2 <= box[1, 1]]
        hits += [(-(w0 + w2 * y) / w1, y) for y in box[1] if box[0, 0] <= -(w0 + w2 * y) / w1 <= box[0, 1]]
        if len(hits) < 2:
            assert seg is None
            continue
        drawn += 1
        a, b = np.array(seg[:2]), np.array(seg[2:])
        for q in (a, b):
            assert abs(w0 + w1 * q[0] + w2 * q[1]) < 1e-9 * (1 + abs(w0))
            assert np.isclose(q, box[:, 0]).any() or np.isclose(q, box[:, 1]).any()  # on an edge of the view
        hits = np.array(hits)
        for q in (a, b):  # each end is where the line meets an edge...
            assert np.min(np.linalg.norm(hits - q, axis=1)) < 1e-9
        longest = max(np.linalg.norm(p - q) for p in hits for q in hits)
        assert np.linalg.norm(a - b) == pytest.approx(longest, rel=1e-12)  # ...and the segment spans the view
    assert drawn == len(run["params"])
    # one feature: P = 1/2 at x* = -w0/w1
    exam = get(client, "/api/descend?dataset=exam&iterations=300")["runs"][0]
    w0, w1 = exam["params"][-1]
    assert exam["boundary"]["segments"][-1] == pytest.approx([-w0 / w1, 0.0, -w0 / w1, 1.0], rel=1e-12)
    assert exam["boundary"]["segments"][0] is None  # w = 0: every point has P = 1/2, there is no boundary


def test_boundary_segment_edge_cases():
    box = np.array([[0.0, 1.0], [0.0, 1.0]])
    assert boundary_segment(0.0, 0.0, 1.0, box) is None       # no line at all
    assert boundary_segment(1.0, 0.0, -2.0, box) is None      # x = 2: outside
    np.testing.assert_allclose(boundary_segment(1.0, 0.0, -0.5, box), [0.5, 0.0, 0.5, 1.0])  # vertical
    np.testing.assert_allclose(boundary_segment(1.0, -1.0, 0.0, box), [0.0, 0.0, 1.0, 1.0])  # through corners


def test_the_log_loss_surface_is_the_log_loss(client, builtins):
    surf = get(client, "/api/surface?dataset=classes&grid=20")
    assert surf["kind"] == "contour" and surf["axes"] == [1, 2] and surf["loss_name"] == "log_loss"
    assert surf["labels"] == ["w1 (x1)", "w2 (x2)"] and surf["held"] == ["intercept w0"]
    ds = builtins["classes"]
    star = ds.optimum.loss
    w0 = ds.optimum.params[0]
    rng = np.random.default_rng(0)
    for _ in range(25):
        a, b = rng.integers(0, 20, 2)
        theta = np.array([w0, surf["x"][b], surf["y"][a]])
        want = np.log10(numpy_log_loss(ds.X, ds.y, theta) - star)
        assert surf["z"][a][b] == pytest.approx(want, abs=2e-5)
    # the separable classes: no minimum, the surface is log10 of the log-loss itself, held at the start
    sep = get(client, "/api/surface?dataset=separable&grid=12")
    assert sep["loss_star"] == 0.0 and sep["held_at"] == "start"
    d = builtins["separable"]
    theta = np.array([0.5, sep["x"][3], sep["y"][7]])
    assert sep["z"][7][3] == pytest.approx(np.log10(numpy_log_loss(d.X, d.y, theta)), abs=2e-5)


def test_separable_classes_are_diagnosed_in_the_pages_words(client):
    run = get(client, "/api/descend?dataset=separable&iterations=100")["runs"][0]
    assert run["status"] == 6 and run["n_iter"] < 100
    assert run["verdict"]["separable"] and run["verdict"]["text"].startswith("no minimum: the classes are separable")
    for text in (run["verdict"]["text"], run["message"]):
        assert "penalty=" not in text and "alpha" not in text and "log_loss" not in text
    assert run["accuracy"][-1] == 1.0


def test_standardising_makes_the_valley_round_and_the_same_descent_converge(client, builtins):
    raw = get(client, "/api/descend?dataset=houses")
    std = get(client, "/api/descend?dataset=houses&standardize=1")
    assert std["standardize"] is True and std["dataset"]["standardized"] is True
    ds = builtins["houses"]
    Z = (ds.X - ds.X.mean(axis=0)) / ds.X.std(axis=0)
    for X, body in ((ds.X, raw), (Z, std)):
        X_b = np.column_stack([np.ones(len(X)), X])
        ev = np.linalg.eigvalsh(2 * X_b.T @ X_b / len(X))
        assert body["dataset"]["curvature"]["condition_number"] == pytest.approx(ev[-1] / ev[0], rel=1e-6)
    assert raw["dataset"]["curvature"]["condition_number"] > 1e5
    assert std["dataset"]["curvature"]["condition_number"] < 1.5
    assert raw["dataset"]["condition_numbers"] == std["dataset"]["condition_numbers"]
    # the learning rate keeps its ratio to 2/(L+mu), and the start is the same model
    lr_raw, lr_std = raw["runs"][0]["learning_rate"], std["runs"][0]["learning_rate"]
    ratio = lr_raw / raw["dataset"]["curvature"]["best_step"]
    assert lr_std / std["dataset"]["curvature"]["best_step"] == pytest.approx(ratio, rel=2e-3)
    # the same descent as gdlab.descend(..., standardize=True), seen in standardised coordinates
    ref = gdlab.descend(ds.X, ds.y, standardize=True, learning_rate=lr_std, max_iter=100, tol=None, gtol=None,
                        coef_init=np.zeros(2), intercept_init=0.0, warn=False)
    sc = Scaling.from_stats(ds.stats, True)
    mapped = sc.to_descent(ref.trajectory.params[:, :, None])[:, :, 0]
    np.testing.assert_allclose(std["runs"][0]["params"], mapped, rtol=1e-9, atol=1e-9)
    # the raw descent crawls, the standardised one converges
    gap_raw, gap_std = raw["runs"][0]["gap"], std["runs"][0]["gap"]
    star = raw["dataset"]["optimum"]["loss"]
    assert gap_raw[-1] > 0.9 * star  # the MSE still about twice its minimum after 100 iterations...
    assert abs(raw["runs"][0]["params"][-1][0] - raw["dataset"]["optimum"]["params"][0]) > 30  # w0 hardly moved
    assert gap_std[-1] < 1e-9 * star  # ...where the standardised descent is at the minimum
    # the verdict says so: below 2/L, but crawling (the theory's rate 1 - 1.2e-5 per iteration)
    assert raw["runs"][0]["verdict"]["text"].startswith("crawls") and "1 − " in raw["runs"][0]["verdict"]["text"]
    assert std["runs"][0]["verdict"]["text"].startswith("converges")
    # the contour changes: other axes' values, other labels
    s_raw = get(client, "/api/surface?dataset=houses&grid=20")
    s_std = get(client, "/api/surface?dataset=houses&grid=20&standardize=1")
    assert s_std["labels"][1] == "w1 (size (m²), standardised)"
    assert not np.allclose(s_raw["z"], s_std["z"])
    # and the standardised rows are what the data view draws
    rows = get(client, "/api/data?dataset=houses&standardize=1")
    np.testing.assert_allclose(rows["X"], Z, atol=1e-12)


def test_standardised_logistic_regression_is_the_same_model(client, builtins):
    raw = get(client, "/api/datasets")
    info = {d["id"]: d for d in raw["datasets"]}["exam"]
    assert info["twin"]["standardized"] and info["twin"]["curvature"]["condition_number"] == pytest.approx(1.0)
    sc = info["twin"]["scaling"]
    # the same minimiser, in the other coordinates: b' = b + c w, w' = s w
    b, w = info["optimum"]["params"]
    np.testing.assert_allclose(info["twin"]["optimum"]["params"], [b + sc["center"][0] * w, sc["scale"][0] * w],
                               rtol=1e-8)
    assert info["twin"]["optimum"]["loss"] == pytest.approx(info["optimum"]["loss"], rel=1e-12)


def test_the_toggle_and_classification_requests_are_checked(client):
    r = client.get("/api/descend?dataset=line&standardize=2")
    assert r.status_code == 400 and r.json()["parameter"] == "standardize"
    assert "Standardise the features (standardize= in the link)" in r.json()["error"]
    r = client.get("/api/descend?dataset=mean&standardize=1")
    assert r.status_code == 400 and "no features to standardise" in r.json()["error"]
    app = create_app(limits=Limits(max_batch_row_visits=2000))
    small = TestClient(app, base_url=BASE)
    r = small.get("/api/descend?dataset=classes&iterations=11")
    assert r.status_code == 400 and r.json()["parameter"] == "iterations"
    assert "reads every row each iteration" in r.json()["error"] and "at most 10 iterations" in r.json()["error"]


def upload(client, text, **params):
    return client.post("/api/upload", params=params, content=text.encode(), headers={"content-type": "text/csv"})


def test_uploads_with_a_two_label_or_0_1_target_become_classes(client):
    rng = np.random.default_rng(3)
    x = rng.normal(size=60)
    label = np.where(x + 0.5 * rng.normal(size=60) > 0, "yes", "no")
    csv = pd.DataFrame({"x": x, "bought": label}).to_csv(index=False)
    info = upload(client, csv).json()["dataset"]
    assert info["task"] == "classification" and info["classes"] == ["no", "yes"] and info["kind"] == "classes"
    assert "bought = yes is class 1" in info["note"]
    body = get(client, f"/api/descend?dataset={info['id']}&iterations=30")
    y = (label == "yes").astype(float)
    ref = numpy_descent(x.reshape(-1, 1), y, [0.0, 0.0], body["runs"][0]["learning_rate"], 30)
    np.testing.assert_allclose(body["runs"][0]["params"], ref, rtol=1e-10, atol=1e-12)
    # 0/1 numbers are detected too; two other numbers are a measurement unless chosen
    numeric = pd.DataFrame({"x": x, "y": y}).to_csv(index=False)
    assert upload(client, numeric).json()["dataset"]["task"] == "classification"
    assert upload(client, numeric, task="regression").json()["dataset"]["task"] == "regression"
    threes = pd.DataFrame({"x": x, "y": 3 + 2 * y}).to_csv(index=False)
    assert upload(client, threes).json()["dataset"]["task"] == "regression"
    chosen = upload(client, threes, task="classification").json()["dataset"]
    assert chosen["task"] == "classification" and chosen["classes"] == ["3", "5"]
    # refused, with the page's words
    r = upload(client, csv, task="regression")
    assert r.status_code == 400 and "not numeric" in r.json()["error"]
    three = pd.DataFrame({"x": x, "y": rng.integers(0, 3, 60)}).to_csv(index=False)
    r = upload(client, three, task="classification")
    assert r.status_code == 400 and "has 3 distinct value(s)" in r.json()["error"]
    assert "Task: regression" in r.json()["error"]
    r = upload(client, csv, task="logistic")
    assert r.status_code == 400 and r.json()["parameter"] == "task"


def test_a_classification_upload_is_row_limited():
    app = create_app(limits=Limits(max_classification_rows=50))
    small = TestClient(app, base_url=BASE)
    text = "x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(60))
    r = upload(small, text)
    assert r.status_code == 400 and "at most 50" in r.json()["error"]


def test_a_parquet_upload_with_a_boolean_target_becomes_classes(client):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    frame = pd.DataFrame({"x1": np.arange(10.0), "x2": np.arange(10.0) ** 0.5, "spam": [True, False] * 5})
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame), sink)
    r = client.post("/api/upload", params={"name": "mail.parquet"}, content=sink.getvalue(),
                    headers={"content-type": "application/vnd.apache.parquet"})
    assert r.status_code == 200, r.text
    info = r.json()["dataset"]
    assert info["task"] == "classification" and info["classes"] == ["False", "True"]
    assert info["defaults"]["axes"] == [1, 2]
