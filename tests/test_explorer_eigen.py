"""The explorer's Eigen-directions view (issue 14, item 2): the error along the Hessian's eigenvectors, the
contour's slow and fast directions, and momentum's (eta, beta) stability region.

Every number is checked against an independent reference: numpy.linalg.eigh of the Hessian formed from the rows,
a plain NumPy transcription of the gd / heavy-ball loop, numpy.linalg.eigvals of each direction's 2 x 2 companion
matrix, the MSE evaluated on the rows, and a finite-difference Hessian of the log-loss."""

from __future__ import annotations

import math
import re
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
from gdlab.explorer.model import builtin_datasets, momentum_radius

BASE = "http://127.0.0.1"


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url=BASE)


@pytest.fixture(scope="module")
def data():
    return {ds.id: ds for ds in builtin_datasets()}


def design(X, standardize=False):
    X = np.asarray(X, dtype=float).reshape(len(X), -1)
    if standardize:
        X = (X - X.mean(axis=0)) / X.std(axis=0)
    return np.c_[np.ones(len(X)), X]


def numpy_hessian(X, standardize=False):
    X_b = design(X, standardize)
    return 2.0 / len(X_b) * X_b.T @ X_b


def numpy_loop(X_b, y, w0, eta, n, beta=None):
    """The workshop's loop: w <- w - eta (2/m) X_b^T (X_b w - y); with beta, heavy ball v <- g + beta v,
    w <- w - eta v."""
    w, v, out = np.array(w0, dtype=float), np.zeros(len(w0)), [np.array(w0, dtype=float)]
    for _ in range(n):
        g = 2.0 / len(y) * X_b.T @ (X_b @ w - y)
        v = g if beta is None else g + beta * v
        w = w - eta * v
        out.append(w.copy())
    return np.array(out)


def sizes(values):
    return np.array([np.nan if v is None else v for v in values], dtype=float)


@pytest.mark.parametrize("dataset,standardize", [("line", False), ("valley", False), ("houses", False),
                                                 ("houses", True), ("mean", False)])
def test_eigenvalues_and_vectors_are_those_of_the_hessian_from_the_rows(client, data, dataset, standardize):
    ds = data[dataset]
    q = f"dataset={dataset}&iterations=20" + ("&standardize=1" if standardize else "")
    body = client.get("/api/eigen?" + q).json()
    lam, V = np.linalg.eigh(numpy_hessian(ds.X, standardize))
    np.testing.assert_allclose(body["eigenvalues"], lam, rtol=1e-9, atol=1e-12 * lam[-1])
    got = np.array(body["eigenvectors"])
    # the same unit vectors up to sign: |v_i . u_i| = 1
    np.testing.assert_allclose(np.abs(np.sum(got * V, axis=0)), 1.0, atol=1e-8)
    assert body["condition_number"] == pytest.approx(lam[-1] / lam[0], rel=1e-8)


def test_gd_components_shrink_by_one_minus_eta_lambda_per_step(client, data):
    """descend's trajectory, and a plain NumPy loop, written in the eigenbasis: c_i(t) = (1 - eta lambda_i)^t c_i(0);
    the API's measured and predicted sizes are these."""
    ds = data["valley"]
    eta, n = 0.6, 80
    w0 = ds.default_start
    X_b = design(ds.X)
    lam, V = np.linalg.eigh(numpy_hessian(ds.X))
    opt = np.linalg.lstsq(X_b, ds.y, rcond=None)[0]
    res = descend(ds.X, ds.y, learning_rate=eta, max_iter=n, tol=None, gtol=None, coef_init=w0[1:],
                  intercept_init=w0[0], record_every=1, max_records=None, standardize=False, warn=False)
    loop = numpy_loop(X_b, ds.y, w0, eta, n)
    np.testing.assert_allclose(res.trajectory.params, loop, rtol=0, atol=1e-10)
    C = (res.trajectory.params - opt) @ V
    t = np.arange(n + 1)[:, None]
    np.testing.assert_allclose(C, (1 - eta * lam) ** t * C[0], rtol=0, atol=1e-9 * np.abs(C[0]).max())
    body = client.get(f"/api/eigen?dataset=valley&lr={eta}&iterations={n}").json()
    kept = np.array(body["iteration"])
    assert kept[0] == 0 and kept[-1] == n
    for i in range(3):
        meas, pred = sizes(body["measured"][i]), sizes(body["predicted"][i])
        ok = ~np.isnan(meas)
        assert ok.sum() > 10
        # to rounding: the optimum (closed form here, lstsq there) agrees to ~1e-15
        tol = 1e-9 * np.abs(C[0]).max()
        np.testing.assert_allclose(meas[ok], np.abs(C[kept, i])[ok], rtol=1e-7, atol=tol)
        np.testing.assert_allclose(pred[ok], np.abs(C[0, i]) * np.abs(1 - eta * lam[i]) ** kept[ok], rtol=1e-7,
                                   atol=tol)
    np.testing.assert_allclose(body["factors"], np.abs(1 - eta * lam), rtol=1e-12)
    assert body["slowest"] == int(np.argmax(np.abs(1 - eta * lam)))
    # the words: the slowest factor and its 10x count, as computed here
    r = np.abs(1 - eta * lam).max()
    words = " ".join(body["text"])
    assert f"{r:.3g} of itself per step" in words
    assert f"10× takes {math.log(10) / -math.log(r):.3g} iterations" in words


def test_long_runs_are_thinned_but_keep_both_ends(client):
    body = client.get("/api/eigen?dataset=houses&iterations=3000&lr=5e-5").json()
    kept = body["iteration"]
    assert kept[0] == 0 and kept[-1] == 3000 and len(kept) <= 401
    assert all(len(row) == len(kept) for row in body["measured"])


def test_heavy_ball_components_follow_the_two_by_two_recurrence(client, data):
    ds = data["line"]
    eta, beta, n = 0.1, 0.7, 60
    X_b = design(ds.X)
    lam, V = np.linalg.eigh(numpy_hessian(ds.X))
    opt = np.linalg.lstsq(X_b, ds.y, rcond=None)[0]
    loop = numpy_loop(X_b, ds.y, ds.default_start, eta, n, beta=beta)
    C = (loop - opt) @ V
    body = client.get(f"/api/eigen?dataset=line&optimizer=momentum&lr={eta}&beta={beta}&iterations={n}").json()
    for i in range(2):
        # the companion matrix of this direction, applied to (c(0), v = 0) by NumPy
        A = np.array([[1 - eta * lam[i], -eta * beta], [lam[i], beta]])
        state, ref = np.array([C[0, i], 0.0]), [C[0, i]]
        for _ in range(n):
            state = A @ state
            ref.append(state[0])
        np.testing.assert_allclose(C[:, i], ref, rtol=0, atol=1e-9 * abs(C[0, i]))
        meas, pred = sizes(body["measured"][i]), sizes(body["predicted"][i])
        ok = ~np.isnan(meas) & ~np.isnan(pred)
        np.testing.assert_allclose(meas[ok], np.abs(C[ok, i]), rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(pred[ok], np.abs(np.array(ref))[ok], rtol=1e-6, atol=1e-12)
        assert body["factors"][i] == pytest.approx(np.abs(np.linalg.eigvals(A)).max(), rel=1e-10)


@pytest.mark.parametrize("optimizer", ["momentum", "nesterov"])
def test_stability_region_is_the_companion_matrices_spectral_radius(optimizer):
    rng = np.random.default_rng(0)
    lam = np.array([0.05, 0.7, 3.0])
    etas = rng.uniform(0.0, 1.6, 13)
    betas = rng.uniform(0.0, 0.999, 11)
    got = momentum_radius(etas, betas, lam, optimizer)
    for b_i, beta in enumerate(betas):
        for e_i, eta in enumerate(etas):
            def companion(l):
                if optimizer == "momentum":
                    return np.array([[1 - eta * l, -eta * beta], [l, beta]])
                return np.array([[1 - eta * l * (1 + beta), -eta * beta * beta], [l, beta]])
            want = max(np.abs(np.linalg.eigvals(companion(l))).max() for l in lam)
            assert got[b_i, e_i] == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_region_edge_polyak_point_and_the_run_marked(client, data):
    eta, beta = 0.2, 0.8
    body = client.get(f"/api/eigen?dataset=line&optimizer=momentum&lr={eta}&beta={beta}&iterations=30").json()
    reg = body["region"]
    lam = np.linalg.eigvalsh(numpy_hessian(data["line"].X))
    L, mu = lam[-1], lam[0]
    radius = np.array(reg["radius"])
    etas, betas = np.array(reg["etas"]), np.array(reg["betas"])
    # stable exactly left of eta = 2(1 + beta)/L (away from rounding at the edge)
    edge = 2 * (1 + betas[:, None]) / L
    far = np.abs(etas[None, :] - edge) > 0.02 * edge
    assert np.array_equal((radius < 1)[far], (etas[None, :] < edge)[far])
    k = math.sqrt(L / mu)
    assert reg["polyak"]["beta"] == pytest.approx(((k - 1) / (k + 1)) ** 2, rel=1e-10)
    assert reg["polyak"]["eta"] == pytest.approx(4 / (math.sqrt(L) + math.sqrt(mu)) ** 2, rel=1e-10)
    # at Polyak's point both directions are critically damped: every root has size sqrt(beta*) = the rate
    pk = reg["polyak"]
    roots = [np.abs(np.linalg.eigvals(np.array([[1 - pk["eta"] * lv, -pk["eta"] * pk["beta"]], [lv, pk["beta"]]])))
             for lv in lam]
    np.testing.assert_allclose(np.concatenate(roots), (k - 1) / (k + 1), rtol=1e-6)
    cur = reg["current"]
    assert (cur["eta"], cur["beta"]) == (eta, beta)
    want = max(np.abs(np.linalg.eigvals(np.array([[1 - eta * lv, -eta * beta], [lv, beta]]))).max() for lv in lam)
    assert cur["radius"] == pytest.approx(want, rel=1e-10)
    # the critical-damping curve of the flattest direction: a double root there
    for b, e in list(zip(reg["critical_slow"]["beta"], reg["critical_slow"]["eta"]))[5:100:20]:
        z = np.linalg.eigvals(np.array([[1 - e * mu, -e * b], [mu, b]]))
        assert abs(z[0] - z[1]) < 1e-4


def test_contour_directions_are_the_axes_of_the_shown_slice(client, data):
    """In the shown plane (others at the optimum) the arrows are the eigenvectors of H's 2 x 2 block, and their
    ends lie on the contour line through the start: the MSE evaluated on the rows is the same there."""
    for dataset in ("line", "valley", "houses"):
        ds = data[dataset]
        body = client.get(f"/api/descend?dataset={dataset}&surface=view").json()
        d = body["directions"]
        i, j = d["axes"]
        H = numpy_hessian(ds.X)
        lam2, V2 = np.linalg.eigh(H[np.ix_([i, j], [i, j])])
        X_b = design(ds.X)
        opt = np.linalg.lstsq(X_b, ds.y, rcond=None)[0]
        np.testing.assert_allclose(d["center"], opt[[i, j]], rtol=1e-8, atol=1e-10)

        def mse(w):
            return float(np.mean((X_b @ w - ds.y) ** 2))

        start = opt.copy()
        start[[i, j]] = np.array(body["start"])[[i, j]]
        level = mse(start)
        for k, arrow in enumerate(d["directions"]):
            assert arrow["eigenvalue"] == pytest.approx(lam2[k], rel=1e-9)
            assert abs(float(np.dot(arrow["vector"], V2[:, k]))) == pytest.approx(1.0, abs=1e-9)
            end = opt.copy()
            end[[i, j]] += arrow["half_length"] * np.array(arrow["vector"])
            assert mse(end) == pytest.approx(level, rel=1e-7)
        assert d["directions"][0]["label"] == f"slow direction (λ_min = {lam2[0]:.4g})"
        assert d["directions"][1]["label"] == f"fast direction (λ_max = {lam2[1]:.4g})"


def test_standardise_changes_the_condition_number_and_the_directions(client, data):
    raw = client.get("/api/eigen?dataset=houses&iterations=20").json()
    std = client.get("/api/eigen?dataset=houses&iterations=20&standardize=1").json()
    for body, flag in ((raw, False), (std, True)):
        lam = np.linalg.eigvalsh(numpy_hessian(data["houses"].X, flag))
        assert body["condition_number"] == pytest.approx(lam[-1] / lam[0], rel=1e-8)
        assert f"κ = L/μ = {lam[-1] / lam[0]:.4g}" in body["text"][0]
    assert raw["condition_number"] > 1e5 > 10 > std["condition_number"]
    a = client.get("/api/descend?dataset=houses&surface=view").json()["directions"]
    b = client.get("/api/descend?dataset=houses&surface=view&standardize=1").json()["directions"]
    for d, flag in ((a, False), (b, True)):
        i, j = d["axes"]
        lam2 = np.linalg.eigvalsh(numpy_hessian(data["houses"].X, flag)[np.ix_([i, j], [i, j])])
        np.testing.assert_allclose([x["eigenvalue"] for x in d["directions"]], lam2, rtol=1e-8)
    ratio = [d["directions"][1]["eigenvalue"] / d["directions"][0]["eigenvalue"] for d in (a, b)]
    assert ratio[0] > 1e4 > 10 > ratio[1]


def test_measured_sentence_matches_the_run(client, data):
    ds = data["line"]
    body = client.get("/api/eigen?dataset=line&lr=0.1&iterations=25").json()
    X_b = design(ds.X)
    lam, V = np.linalg.eigh(numpy_hessian(ds.X))
    opt = np.linalg.lstsq(X_b, ds.y, rcond=None)[0]
    C = (numpy_loop(X_b, ds.y, ds.default_start, 0.1, 25) - opt) @ V
    s = next(p for p in body["text"] if p.startswith("Measured in this run"))
    got = float(re.search(r"slowest component is ([0-9.e+-]+) of", s).group(1))
    assert got == pytest.approx(abs(C[-1, 0] / C[0, 0]), rel=2e-3)


def test_logistic_regression_uses_the_hessian_at_the_minimum(client, data):
    """A central-difference Hessian of the mean log-loss at Newton's minimum, computed here from the rows."""
    ds = data["classes"]
    X_b = design(ds.X)
    opt = np.array(ds.optimum.params, dtype=float)

    def grad(w):
        return X_b.T @ (1 / (1 + np.exp(-(X_b @ w))) - ds.y) / len(ds.y)

    h = 1e-5
    H = np.array([(grad(opt + h * e) - grad(opt - h * e)) / (2 * h) for e in np.eye(3)])
    lam = np.linalg.eigvalsh(0.5 * (H + H.T))
    body = client.get("/api/eigen?dataset=classes&iterations=40").json()
    np.testing.assert_allclose(body["eigenvalues"], lam, rtol=1e-6)
    assert body["local"] is True
    assert any("Hessian at the minimum" in p for p in body["text"])
    r = client.get("/api/eigen?dataset=separable")
    assert r.status_code == 400 and "no minimum" in r.json()["error"]


def test_adaptive_optimizers_and_mini_batches_get_no_prediction(client):
    body = client.get("/api/eigen?dataset=line&optimizer=adam&lr=0.1&iterations=30").json()
    assert body["predicted"] is None and body["factors"] is None
    assert "adam rescales" in body["text"][1]
    body = client.get("/api/eigen?dataset=line&batch_size=10&iterations=5").json()
    assert body["predicted"] is None and "mini-batches" in body["text"][1]
