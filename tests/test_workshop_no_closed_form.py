"""The report's chapter "When there is no closed form" (logistic regression, gd against Newton) against independent
references: a plain NumPy transcription of the workshop's loop with sigmoid put round the prediction, IRLS written
as weighted least squares, scikit-learn's LogisticRegression, a direct evaluation of the log-loss minimised over
the intercept by scipy, and the Normal Equation."""

import base64
import io
import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from scipy.optimize import linprog, minimize_scalar
from scipy.special import expit

from gdlab import plots
from gdlab.datasets import workshop_classes, workshop_line
from gdlab.report import write_workshop_report
from gdlab.workshop import decision_boundary, newton_path, repeating_cycle, run_workshop


@pytest.fixture(scope="module")
def ws():
    return run_workshop(sweep_points=6, contour_iterations=10)


@pytest.fixture(scope="module")
def part(ws):
    return ws.no_closed_form


def design():
    d = workshop_classes()
    return np.c_[np.ones(len(d.X)), d.X], d.y


def log_loss(X_b, y, w):
    eta = X_b @ w
    return float(np.mean(np.logaddexp(0.0, eta) - y * eta))


def numpy_gd(eta, n):
    """The workshop's loop for logistic regression: w <- w - eta X_b^T (sigmoid(X_b w) - y) / m, from w = 0."""
    X_b, y = design()
    w = np.zeros(3)
    ws_, losses = [w.copy()], [log_loss(X_b, y, w)]
    for _ in range(n):
        w = w - eta * X_b.T @ (expit(X_b @ w) - y) / len(y)
        ws_.append(w.copy())
        losses.append(log_loss(X_b, y, w))
    return np.array(ws_), np.array(losses)


def numpy_irls(n=12):
    """IRLS as weighted least squares: z = eta + (y - p) / (p (1 - p)), w = (X^T S X)^-1 X^T S z, from w = 0."""
    X_b, y = design()
    w = np.zeros(3)
    out = [w.copy()]
    for _ in range(n):
        eta = X_b @ w
        p = expit(eta)
        s = p * (1 - p)
        z = eta + (y - p) / s
        w = np.linalg.lstsq(X_b * np.sqrt(s)[:, None], z * np.sqrt(s), rcond=None)[0]
        out.append(w.copy())
    return np.array(out)


def two_over_L():
    X_b, y = design()
    return 2.0 / (np.linalg.eigvalsh(X_b.T @ X_b)[-1] / (4 * len(y)))


def test_the_classes_are_seeded_rounded_and_overlap():
    d = workshop_classes()
    rs = np.random.RandomState(0)
    A = np.linalg.cholesky(np.array([[1.0, 0.9], [0.9, 1.0]]))
    X = np.round(np.vstack([rs.randn(50, 2) @ A.T + [-0.6, 0], rs.randn(50, 2) @ A.T + [0.6, 0]]), 2)
    np.testing.assert_array_equal(d.X, X)
    assert d.y.tolist() == [0.0] * 50 + [1.0] * 50
    # no line separates them: y_i (w . x_b,i) >= 1 for every i has no solution (so the log-loss has a minimiser)
    X_b, _ = design()
    s = 2 * d.y - 1
    lp = linprog(np.zeros(3), A_ub=-(s[:, None] * X_b), b_ub=-np.ones(100), bounds=[(None, None)] * 3)
    assert lp.status == 2  # infeasible


def test_gradient_descent_is_the_plain_numpy_loop_at_two_over_L(part):
    assert part.descent.curvature.stable_step == pytest.approx(two_over_L(), rel=1e-12)
    W, losses = numpy_gd(two_over_L(), part.descent.n_iter)
    np.testing.assert_allclose(part.descent.trajectory.params, W, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(part.descent.trajectory.loss, losses, rtol=1e-12)
    for n in part.snapshots:
        np.testing.assert_allclose(part.weights_after(n), W[n], rtol=1e-9, atol=1e-12)


def test_newton_is_irls_and_its_minimum_is_logistic_regressions(part):
    from sklearn.linear_model import LogisticRegression

    X_b, y = design()
    irls = numpy_irls()
    N = part.newton.params
    np.testing.assert_allclose(N, irls[: len(N)], rtol=1e-9, atol=1e-12)
    # Newton stops on the loss (decrement <= 1e-15 F), where the weights are known to about the square root of it
    np.testing.assert_allclose(N[-1], irls[-1], rtol=1e-10)
    assert np.all(np.diff(part.newton.loss) <= 0)  # full steps, no line search: the loss falls at every hop
    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X_b[:, 1:], y)
    np.testing.assert_allclose(N[-1], np.r_[lr.intercept_, lr.coef_[0]], rtol=1e-5)
    assert part.optimum_loss == pytest.approx(log_loss(X_b, y, irls[-1]), rel=1e-14)
    p = expit(X_b @ irls[-1])
    lam = np.linalg.eigvalsh(X_b.T @ (X_b * (p * (1 - p))[:, None]) / len(y))
    np.testing.assert_allclose(part.hessian_eigenvalues, lam, rtol=1e-10)
    assert part.local_stable_step == pytest.approx(2 / lam[-1], rel=1e-10)
    # quadratic convergence: near the minimum each hop at least 1.5x the correct digits of the last
    g = part.gap(part.newton.loss)
    last = g[(g > 1e-15)][-3:]
    assert np.all(np.log(last[1:]) / np.log(last[:-1]) >= 1.5)


def test_newton_path_matches_gdlab_solvers_newton_where_it_exists(part):
    solvers = pytest.importorskip("gdlab.solvers")
    d = workshop_classes()
    r = solvers.newton(d.X, d.y, loss="log_loss", coef_init=[0, 0], intercept_init=0.0, tol=1e-14, warn=False)
    np.testing.assert_allclose(r.params, part.optimum, rtol=1e-9)


def test_one_newton_hop_lands_on_the_normal_equation(part):
    dl = workshop_line()
    X_b = np.c_[np.ones(50), dl.X]
    w_ne = np.linalg.solve(X_b.T @ X_b, X_b.T @ dl.y)
    hop = part.one_hop
    assert hop.n_iter == 1
    np.testing.assert_allclose(hop.params[0], dl.w_init, rtol=0)
    np.testing.assert_allclose(hop.params[1], w_ne, rtol=1e-12, atol=1e-12)
    assert hop.loss[1] == pytest.approx(np.mean((X_b @ w_ne - dl.y) ** 2), rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(st.floats(-1e3, 1e3), st.floats(-1e3, 1e3))
def test_from_any_start_one_hop_is_the_normal_equation(b, w):
    dl = workshop_line()
    X_b = np.c_[np.ones(50), dl.X]
    w_ne = np.linalg.solve(X_b.T @ X_b, X_b.T @ dl.y)
    hop = newton_path(dl.X, dl.y, "squared_error", start=[b, w], max_iter=1)
    np.testing.assert_allclose(hop.params[-1], w_ne, rtol=1e-12, atol=1e-12 * (1 + abs(b) + abs(w)))


def test_decision_boundary_is_the_line_of_the_weights():
    box = (-3.0, 3.0, -2.0, 2.5)
    for w in ([0.4, 5.8, -5.4], [0.0, 1.08, 0.0035], [0.2, 0.0, 1.0], [1.0, 2.0, 0.0]):
        seg = decision_boundary(w, box)
        assert seg is not None
        np.testing.assert_allclose(w[0] + seg @ np.asarray(w[1:]), 0.0, atol=1e-12)
        on_edge = np.isclose(seg[:, :1], [box[0], box[1]]).any(axis=1) | np.isclose(seg[:, 1:],
                                                                                     [box[2], box[3]]).any(axis=1)
        assert on_edge.all()
        assert np.all((seg[:, 0] >= box[0]) & (seg[:, 0] <= box[1]) & (seg[:, 1] >= box[2]) & (seg[:, 1] <= box[3]))
    assert decision_boundary([10.0, 1.0, 1.0], box) is None  # the line misses the box
    assert decision_boundary([0.0, 0.0, 0.0], box) is None   # w = 0: no line


def test_the_figure_draws_each_snapshots_boundary(part):
    fig = plots.boundaries_figure(part)
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if len(ln.get_xdata()) == 2]
    W, _ = numpy_gd(two_over_L(), max(part.snapshots))
    for n, ln in zip(part.snapshots, lines):
        x1, x2 = np.asarray(ln.get_xdata()), np.asarray(ln.get_ydata())
        np.testing.assert_allclose(W[n][0] + W[n][1] * x1 + W[n][2] * x2, 0.0, atol=1e-9)
        assert f"after {n:>4} iteration" in ln.get_label()
    x1, x2 = np.asarray(lines[-1].get_xdata()), np.asarray(lines[-1].get_ydata())
    w = numpy_irls()[-1]
    np.testing.assert_allclose(w[0] + w[1] * x1 + w[2] * x2, 0.0, atol=1e-9)


def test_log_loss_surface_is_the_log_loss_minimised_over_the_intercept(part):
    X_b, y = design()
    w1s, w2s = np.array([-1.0, 0.0, 3.0, 5.8]), np.array([-6.0, -2.0, 0.5])
    F, B = plots.log_loss_surface(X_b[:, 1:], y, w1s, w2s)
    for i, w2 in enumerate(w2s):
        for j, w1 in enumerate(w1s):
            best = minimize_scalar(lambda b: log_loss(X_b, y, np.array([b, w1, w2])), bracket=(-5, 5),
                                   options={"xtol": 1e-12})
            assert F[i, j] == pytest.approx(best.fun, rel=1e-11, abs=1e-13)
            assert B[i, j] == pytest.approx(best.x, abs=1e-5)
    # every iterate's own log-loss is at or above the surface at its (w1, w2): the surface is a lower envelope
    P = part.descent.trajectory.params
    rows = np.r_[0:20, 20:len(P):50]
    for k in rows:
        Fk, _ = plots.log_loss_surface(X_b[:, 1:], y, P[k, 1:2], P[k, 2:3])
        assert part.descent.trajectory.loss[k] >= Fk[0, 0] - 1e-13
    Fo, _ = plots.log_loss_surface(X_b[:, 1:], y, part.optimum[1:2], part.optimum[2:3])
    assert Fo[0, 0] == pytest.approx(part.optimum_loss, rel=1e-12)


def test_learning_rate_runs_converge_below_two_over_lambda_star_and_cycle_above(part):
    local = part.local_stable_step
    for label, r in part.rate_runs.items():
        eta = float(r.learning_rate)
        W, losses = numpy_gd(eta, r.n_iter)
        np.testing.assert_allclose(r.trajectory.loss, losses, rtol=1e-8, atol=1e-12)
        gap = losses[-1] - part.optimum_loss
        if eta < local and eta > two_over_L() * 0.99:
            assert gap < 1e-5, label
        if eta > local:
            assert gap > 1e-3, label
            # a 2-cycle: every second iterate is the same, its neighbours are not
            assert np.linalg.norm(W[-1] - W[-3]) < 1e-6 * np.linalg.norm(W[-1])
            assert np.linalg.norm(W[-1] - W[-2]) > 1e-2
            assert repeating_cycle(r.trajectory.params) == 2
    assert not any(r.diverged for r in part.rate_runs.values())


def section(html, anchor):
    m = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.S)
    assert m, anchor
    return m.group(1)


@pytest.fixture(scope="module")
def chapter(ws, tmp_path_factory):
    out = write_workshop_report(ws, tmp_path_factory.mktemp("nc") / "report", gif=False)
    return section(out.index.read_text(encoding="utf-8"), "no-closed-form"), out


def test_the_chapter_has_its_four_figures(chapter):
    text, out = chapter
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 4
    for data in images:
        img = Image.open(io.BytesIO(base64.b64decode(data)))
        img.load()
        assert img.size[0] > 700
    assert {"10a_logistic_boundaries.png", "10b_logistic_surface.png", "10c_logistic_learning_rate.png",
            "10d_newton.png"} <= set(out.files)


def test_the_chapters_sentences_state_the_numbers_of_their_runs(chapter, part, ws):
    text = re.sub(r"<img [^>]*>", "", chapter[0])
    X_b, y = design()
    w_opt = numpy_irls()[-1]
    f_opt = log_loss(X_b, y, w_opt)
    wrong = int(np.sum((X_b @ w_opt > 0) != (y == 1)))
    assert f"2/L = {two_over_L():.4g}" in text
    assert f"leaves {wrong} points on the wrong side" in text and wrong > 0
    assert f"minimum log-loss, {f_opt:.4f}" in text
    W, losses = numpy_gd(two_over_L(), max(part.snapshots))
    first = int(np.nonzero(losses - f_opt <= 1e-3 * f_opt)[0][0])
    assert f"from iteration {first}." in text
    # the table: each snapshot's weights and log-loss
    for n in part.snapshots:
        cells = "".join(f"<td>{round(v, 3) + 0.0:.3f}</td>" for v in W[n])
        assert f"<td>{n}</td>{cells}<td>{losses[n]:.4f}</td>" in text
    # "from iteration k on the boundary stays within 2 degrees": true from k, false just before
    k = int(re.search(r"From iteration (\d+) on the boundary stays within 2°", text).group(1))
    cos = (W[:, 1:] @ w_opt[1:]) / (np.linalg.norm(W[:, 1:], axis=1) * np.linalg.norm(w_opt[1:]) + 1e-300)
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    assert np.all(angle[k:] < 2.0) and angle[k - 1] >= 2.0
    # Newton's gaps after each hop, from the IRLS
    irls = numpy_irls()
    gaps = [log_loss(X_b, y, w) - f_opt for w in irls[1:part.newton.n_iter + 1]]
    assert ", ".join(f"{g:.1e}" if g > 1e-15 else "0 (rounding)" for g in gaps) in text
    assert f"gets there in {part.newton.n_iter} hops" in text
    # the learning-rate runs: the cycles' two losses, from the NumPy loop
    for label, r in part.rate_runs.items():
        _, lo = numpy_gd(float(r.learning_rate), r.n_iter)
        if r.learning_rate > part.local_stable_step:
            assert f"alternating between {lo[-2:].min():.4f} and {lo[-2:].max():.4f}" in text, label
    assert f"2/λ* = {part.local_stable_step:.4g}" in text
    # the one hop, against the Normal Equation
    dl = workshop_line()
    A = np.c_[np.ones(50), dl.X]
    w_ne = np.linalg.solve(A.T @ A, A.T @ dl.y)
    assert f"the hop lands on [{w_ne[0]:.4f}, {w_ne[1]:.4f}]" in text
    assert "a second hop finds nothing left to do" in text
    n_ws = ws.iterations_in_pictures.enough[next(iter(ws.iterations_in_pictures.runs))]
    assert math.isfinite(n_ws) and f"takes {n_ws:.0f} iterations" in text
