"""The explorer's Step-by-step mode (issue 14, item 6): one update written out as arithmetic.

Every number the API and the page show is checked against a plain NumPy transcription of the optimizer's
equations (written here, from gdlab.optimizers' docstring) and against gdlab.descend's trajectory."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from gdlab import descend
from gdlab.explorer import create_app
from gdlab.explorer.model import builtin_datasets

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url=BASE)


def numpy_run(X, y, w0, optimizer, eta, n, classification=False, **h):
    """A plain NumPy loop of ``n`` full-batch updates; returns the iterates and, per update, (g, extra terms, step)."""
    X_b = np.c_[np.ones(len(X)), X]
    w = np.array(w0, dtype=float)
    a = np.zeros_like(w)
    b = np.zeros_like(w)
    ws, details = [w.copy()], []
    for k in range(n):
        z = X_b @ w
        g = (X_b.T @ (1 / (1 + np.exp(-z)) - y) / len(y) if classification
             else 2 / len(y) * X_b.T @ (z - y))
        if optimizer == "gd":
            u, extra = g, []
        elif optimizer == "momentum":
            prev = a.copy()
            a = g + h["beta"] * a
            u, extra = a, [prev, a]
        elif optimizer == "nesterov":
            prev = a.copy()
            a = g + h["beta"] * a
            u = g + h["beta"] * a
            extra = [prev, a, u]
        elif optimizer == "adam":
            a = h["beta1"] * a + (1 - h["beta1"]) * g
            b = h["beta2"] * b + (1 - h["beta2"]) * g ** 2
            mh, vh = a / (1 - h["beta1"] ** (k + 1)), b / (1 - h["beta2"] ** (k + 1))
            u = mh / (np.sqrt(vh) + h["eps"])
            extra = [a, b, mh, vh, u]
        elif optimizer == "rmsprop":
            a = h["decay"] * a + (1 - h["decay"]) * g ** 2
            u = g / (np.sqrt(a) + h["eps"])
            extra = [a, u]
        elif optimizer == "adagrad":
            a = a + g ** 2
            u = g / (np.sqrt(a) + h["eps"])
            extra = [a, u]
        details.append((w.copy(), g, extra, eta * u))
        w = w - eta * u
        ws.append(w.copy())
    return np.array(ws), details


HYPER = {"gd": {}, "momentum": {"beta": 0.9}, "nesterov": {"beta": 0.9}, "adam": {"beta1": 0.9, "beta2": 0.999,
         "eps": 1e-8}, "rmsprop": {"decay": 0.9, "eps": 1e-8}, "adagrad": {"eps": 1e-10}}


@pytest.mark.parametrize("optimizer", list(HYPER))
@pytest.mark.parametrize("dataset", ["line", "classes"])
def test_each_number_of_the_step_is_numpy_s_update_and_descend_s_next_iterate(client, optimizer, dataset):
    ds = next(d for d in builtin_datasets() if d.key == dataset)
    eta, t, n = 0.05, 4, 8
    query = "&".join([f"dataset={dataset}", f"optimizer={optimizer}", f"lr={eta}", f"iterations={n}", f"t={t}"]
                     + [f"{k}={v}" for k, v in HYPER[optimizer].items()])
    ans = client.get("/api/step?" + query).json()
    start = np.array(ds.default_start, dtype=float)
    ws, details = numpy_run(ds.X, ds.y, start, optimizer, eta, n, ds.classification, **HYPER[optimizer])
    w, g, extra, step = details[t]
    values = [np.array(r["values"]) for r in ans["rows"]]
    expected = [w, g] + extra + [step, w - step]
    assert [r["name"] for r in ans["rows"]][:2] == ["weights w", "gradient g = ∇F(w)"]
    assert len(values) == len(expected)
    for got, want, row in zip(values, expected, ans["rows"]):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12, err_msg=row["name"])
    # and descend's own trajectory at that iteration (the explorer's run, recomputed here)
    kw = {} if optimizer == "gd" else HYPER[optimizer]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = descend(ds.X, ds.y, optimizer=optimizer, learning_rate=eta, max_iter=n, tol=None, gtol=None,
                      standardize=False, coef_init=start[1:], intercept_init=start[0], warn=False,
                      loss="log_loss" if ds.classification else "squared_error", **kw)
    np.testing.assert_allclose(values[-1], res.trajectory.params[t + 1], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ans["next"], res.trajectory.params[t + 1], rtol=1e-10, atol=1e-12)


def test_step_refuses_mini_batches_and_a_step_outside_the_run(client):
    r = client.get("/api/step?dataset=line&iterations=5&batch_size=10&t=1")
    assert r.status_code == 400 and "full-batch" in r.json()["error"] and r.json()["parameter"] == "batch_size"
    r = client.get("/api/step?dataset=line&iterations=5&t=5")
    assert r.status_code == 400 and "between 0 and 4" in r.json()["error"]
    r = client.get("/api/step?dataset=line&iterations=5&t=x")
    assert r.status_code == 400 and r.json()["parameter"] == "t"
