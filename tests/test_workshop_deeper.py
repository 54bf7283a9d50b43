"""Report sections 11 (eigen-directions) and 12 (stochastic noise): each number against an independent NumPy
computation (numpy.linalg.eigh, the 2 x 2 momentum recurrence, companion-matrix eigenvalues, a NumPy simulation of
the reshuffled-batch noise) and the measured noise floor against its formula within the sampling error."""

import numpy as np
import pytest

from gdlab.workshop import momentum_critical_beta, noise_floor, run_workshop


@pytest.fixture(scope="module")
def ws():
    return run_workshop(sweep_points=8, contour_iterations=20)


def hessian(ws):
    X_b = np.c_[np.ones(50), ws.line.data.X]
    return X_b, 2 / 50 * X_b.T @ X_b


def test_eigen_components_shrink_by_one_minus_eta_lambda_against_eigh(ws):
    e = ws.eigen
    X_b, H = hessian(ws)
    lam, V = np.linalg.eigh(H)
    np.testing.assert_allclose(e.eigenvalues, lam, rtol=1e-12)
    np.testing.assert_allclose(np.abs(e.eigenvectors.T @ V), np.eye(2), atol=1e-12)  # the same up to sign
    w_star = np.linalg.lstsq(X_b, ws.line.data.y, rcond=None)[0]
    for label, run in e.gd_runs.items():
        eta = run.learning_rate
        C = (run.trajectory.params - w_star) @ V
        t = run.trajectory.iteration[:, None]
        np.testing.assert_allclose(np.abs(C), np.abs(C[0]) * np.abs(1 - eta * lam) ** t, rtol=1e-8, atol=1e-12,
                                   err_msg=label)
        np.testing.assert_allclose(np.abs(e.components(run)), np.abs(C), rtol=1e-9, atol=1e-12)


def test_momentum_components_follow_the_two_by_two_recurrence_and_critical_damping(ws):
    e = ws.eigen
    X_b, H = hessian(ws)
    lam, V = np.linalg.eigh(H)
    eta = e.momentum_eta
    assert e.critical_beta == pytest.approx((1 - np.sqrt(eta * lam[0])) ** 2, rel=1e-12)
    # double root of z^2 - (1 + beta - eta mu) z + beta at the critical beta
    b = e.critical_beta
    assert (1 + b - eta * lam[0]) ** 2 - 4 * b == pytest.approx(0, abs=1e-12)
    assert momentum_critical_beta(eta, lam[0]) == b
    for label, run in e.momentum_runs.items():
        beta = run.extra["optimizer"].hyperparameters.get("beta", 0.0)
        c = e.components(run)
        for i in range(2):
            ci, vi = c[0, i], 0.0
            expect = [ci]
            for _ in range(len(c) - 1):
                vi = lam[i] * ci + beta * vi
                ci = ci - eta * vi
                expect.append(ci)
            np.testing.assert_allclose(c[:, i], expect, rtol=1e-7, atol=1e-9 * abs(c[0, i]), err_msg=label)


def test_momentum_region_is_the_largest_companion_eigenvalue(ws):
    etas, betas, radius = ws.eigen.region
    lam = ws.eigen.eigenvalues
    rng = np.random.default_rng(0)
    for _ in range(40):
        i, j = rng.integers(len(betas)), rng.integers(len(etas))
        eta, beta = etas[j], betas[i]
        rho = max(np.max(np.abs(np.linalg.eigvals(np.array([[1 - eta * l, -eta * beta], [l, beta]])))) for l in lam)
        assert radius[i, j] == pytest.approx(rho, rel=1e-9)
    stable = radius < 1
    bound = 2 * (1 + betas[:, None]) / lam[-1]
    inside = etas[None, :] < bound * (1 - 1e-9)
    outside = etas[None, :] > bound * (1 + 1e-9)
    assert np.all(stable[inside]) and not np.any(stable[outside])


def test_measured_noise_floor_agrees_with_the_formula_within_the_sampling_error(ws):
    X_b = np.c_[np.ones(50), ws.line.data.X]
    row_curvature = float(np.max(2 * np.sum(X_b ** 2, axis=1)))
    tight = 0
    for r in ws.noise.floors:
        # the formula leaves out the noise that grows with the error: a relative O(eta |x|^2 / B)
        left_out = r["learning_rate"] * row_curvature / r["batch_size"]
        allowed = 3 * r["standard_error"] + (left_out * r["formula"] if left_out > 0.05 else 0.0)
        assert abs(r["measured"] - r["formula"]) <= allowed, r
        tight += left_out <= 0.05
    assert tight >= 2
    # the floor grows with eta and falls with B, as measured
    by_b = [r["measured"] for r in ws.noise.floors if r["learning_rate"] == 0.02]
    assert by_b == sorted(by_b, reverse=True)


def test_noise_floor_formula_against_a_numpy_simulation_of_reshuffled_batches(ws):
    """The additive-noise model the formula solves, simulated in plain NumPy: 4000 chains, each epoch a fresh
    permutation of the 50 rows in batches of B, e <- (I - eta H) e - eta (mean of the batch's gradients at w*)."""
    X, y = ws.line.data.X, ws.line.data.y
    X_b, H = hessian(ws)
    w_star = np.linalg.lstsq(X_b, y, rcond=None)[0]
    g = 2 * X_b * (X_b @ w_star - y)[:, None]
    rng = np.random.default_rng(1)
    for eta, B in ((0.1, 5), (0.05, 2)):
        chains, n = 4000, 50 // B
        e = np.zeros((chains, 2))
        A = np.eye(2) - eta * H
        excess = []
        for epoch in range(40):
            order = np.argsort(rng.random((chains, 50)), axis=1)
            for k in range(n):
                xi = g[order[:, k * B:(k + 1) * B]].mean(axis=1)
                e = e @ A.T - eta * xi
            if epoch >= 20:
                excess.append(0.5 * np.einsum("ci,ij,cj->c", e, H, e))
        excess = np.array(excess)
        se = excess.mean(axis=0).std(ddof=1) / np.sqrt(chains)
        assert abs(excess.mean() - noise_floor(X, y, eta, B)) <= 4 * se, (eta, B)


def test_noise_floor_tends_to_the_independent_draws_value_and_refuses_a_ragged_batch(ws):
    X, y = ws.line.data.X, ws.line.data.y
    X_b, H = hessian(ws)
    lam, V = np.linalg.eigh(H)
    w_star = np.linalg.lstsq(X_b, y, rcond=None)[0]
    s = np.mean((2 * X_b * (X_b @ w_star - y)[:, None] @ V) ** 2, axis=0)
    # B = 1: an epoch of 50 steps at eta = 0.2 is long against 1/(eta lambda) for the steep direction; the value
    # of independent draws (with the finite-population factor) is approached from below
    eta, B = 0.2, 1
    independent = np.sum(eta * (50 - B) * s / (2 * B * 49 * (2 - eta * lam)))
    assert 0.85 * independent < noise_floor(X, y, eta, B) < independent
    with pytest.raises(ValueError, match="divide"):
        noise_floor(X, y, 0.1, 7)


def test_decaying_step_goes_below_the_constant_step_s_floor(ws):
    nz = ws.noise
    f_star = nz.optimum_loss
    const = np.mean(nz.band.loss[:, -10:] - f_star)
    dec = np.mean(nz.decaying.loss[:, -10:] - f_star)
    assert dec < const / 10
    floor = noise_floor(ws.line.data.X, ws.line.data.y, nz.band.learning_rate, nz.band.batch_size)
    assert 0.7 * floor < np.mean(nz.band.loss[:, 30:] - f_star) < 1.3 * floor
