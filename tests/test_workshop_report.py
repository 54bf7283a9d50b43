"""The workshop computed (gdlab.workshop) against independent references, and its HTML report (gdlab.report)."""

import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

from gdlab import report as report_mod
from gdlab.report import MARKER, write_fit_report, write_workshop_report
from gdlab.workshop import run_workshop


@pytest.fixture(scope="module")
def ws():
    return run_workshop(sweep_points=10, contour_iterations=30)


def workshop_loop(eta=0.1, n_iterations=10):
    np.random.seed(42)
    X = 2 * np.random.rand(50, 1)
    X_b = np.c_[np.ones((50, 1)), X]
    y = 8 + 6 * X + np.random.randn(50, 1)
    w = np.random.randn(2, 1)
    w_old = [w.copy()]
    for _ in range(n_iterations):
        w = w - eta * 2 / len(X) * X_b.T.dot(X_b.dot(w) - y)
        w_old.append(w.copy())
    return X_b, y, np.array(w_old)[:, :, 0]


def test_line_part_is_the_workshop_loop_and_the_normal_equation(ws):
    X_b, y, w_old = workshop_loop()
    np.testing.assert_allclose(ws.line.weights, w_old, rtol=1e-12)
    w_ne = np.linalg.lstsq(X_b, y[:, 0], rcond=None)[0]
    np.testing.assert_allclose(ws.line.closed.params, w_ne, rtol=1e-10)
    H = 2 / 50 * X_b.T @ X_b
    assert ws.line.curvature.stable_step == pytest.approx(2 / np.linalg.eigvalsh(H)[-1], rel=1e-12)


def test_mean_part_descends_to_the_mean_at_the_predicted_rate(ws):
    m = ws.mean
    x = m.data.X[:, 0]
    assert m.mean == pytest.approx(x.mean(), rel=1e-15)
    # MSE(c) = mean (c - x)^2 has gradient 2 (c - mean): each step shrinks c - mean by (1 - 2 eta)
    t = np.arange(len(m.steps))
    expected = x.mean() + (1 - 2 * m.learning_rate) ** t * (m.start - x.mean())
    np.testing.assert_allclose(m.steps, expected, rtol=1e-12)
    assert m.best_candidate == m.data.candidates[np.argmin([np.mean((c - x) ** 2) for c in m.data.candidates])]


def test_learning_rate_runs_diverge_exactly_above_two_over_L(ws):
    curv = ws.line.curvature
    for label, r in ws.learning_rate.runs.items():
        eta = r.learning_rate
        assert r.diverged == (eta > curv.stable_step), label
    sw = ws.learning_rate.sweep
    above = sw.learning_rates > sw.stable_step * 1.001
    assert sw.diverged[above, -1].all() and not sw.diverged[~above, -1].any()


def test_measured_gap_never_exceeds_the_predicted_bound(ws):
    curv = ws.line.curvature
    for label, r in ws.iterations.runs.items():
        tr = r.trajectory
        rate = curv.rate(r.learning_rate)
        bound = tr.gap[0] * rate ** (2.0 * tr.iteration)
        # at the best step the bound is tight (both extreme directions shrink by exactly r), so allow the
        # rounding of the loss itself: a few ulps of the minimum MSE
        slack = 1e-13 * r.optimum_loss
        assert np.all(tr.gap <= bound * (1 + 1e-9) + slack), label
        assert ws.iterations.actual_iterations[label] <= np.ceil(ws.iterations.predicted_iterations[label]) + 1


def test_optimizers_on_the_contour_all_get_closer_than_they_started(ws):
    opt = ws.contour.closed.params
    for name, r in ws.contour.paths.items():
        assert r.trajectory.gap[-1] < r.trajectory.gap[0] / 10, name
    assert np.allclose(opt, ws.line.closed.params)


def test_comparison_table_agrees_with_the_normal_equation(ws):
    frame = ws.comparison_frame
    assert len(frame) >= 4
    names = " ".join(frame["method"].astype(str)).lower()
    for needle in ("closed", "sgd", "linearregression"):
        assert needle in names.replace(" ", ""), needle
    mse = frame[[c for c in frame.columns if c.lower() == "mse"][0]].to_numpy(dtype=float)
    assert np.nanmin(mse) == pytest.approx(ws.line.closed.loss, rel=1e-9)


def test_answers_quote_the_numbers(ws):
    a = ws.answers()
    w = ws.line.descent.params
    assert f"{w[0]:.4f}" in a["weights"] and f"{ws.line.closed.params[0]:.4f}" in a["weights"]
    assert f"{ws.line.curvature.stable_step:.4f}" in a["learning_rate"]
    assert "iterations" in a["iterations"]


@pytest.fixture(scope="module")
def written(ws, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "gdlab-report"
    return write_workshop_report(ws, out)


def test_report_holds_every_section_and_every_image_decodes(written):
    html = written.index.read_text(encoding="utf-8")
    for anchor in ("data", "error-curve", "line", "learning-rate", "iterations", "optimizers", "comparison",
                   "scaling", "animation", "no-closed-form", "eigen-directions", "stochastic-noise"):
        assert f'id="{anchor}"' in html, anchor
    images = re.findall(r'src="data:image/(png|gif);base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 19
    for kind, data in images:
        img = Image.open(io.BytesIO(base64.b64decode(data)))
        img.load()
        assert img.format.lower() == kind
    # self-contained: nothing is fetched from the network
    assert not re.search(r'(src|href)="(https?:)?//', html)
    files = {p.name for p in written.folder.iterdir()}
    assert {"index.html", "descent.gif", "01_data.png", "06_contour.png", MARKER} <= files
    for name in written.files:
        if name.endswith(".png"):
            assert Image.open(written.folder / name).format == "PNG"


FIGURES = ("mean_data_figure", "error_curve_figure", "line_iterations_figure", "learning_rate_figure",
           "learning_rate_panels_figure", "iterations_in_pictures_figure", "iterations_figure", "scaling_figure",
           "boundaries_figure", "log_loss_surface_figure", "logistic_learning_rate_figure", "newton_figure",
           "contour_figure", "eigen_directions_figure", "eigen_rates_figure", "momentum_region_figure",
           "noise_band_figure", "noise_floor_figure")


@pytest.fixture
def cheap_figures(monkeypatch):
    """Tiny stand-in figures: these tests are about files and folders, not drawing."""
    from gdlab import plots

    def tiny(*args, **kwargs):
        fig, ax = plots.new_figure(1, 1)
        return fig

    for name in FIGURES:
        monkeypatch.setattr(plots, name, tiny)


def test_report_replaces_an_earlier_report_but_not_a_foreign_folder(ws, tmp_path, cheap_figures):
    out = tmp_path / "r"
    write_workshop_report(ws, out, gif=False)
    (out / "stale.png").write_bytes(b"old")
    write_workshop_report(ws, out, gif=False)
    assert not (out / "stale.png").exists() and (out / "index.html").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not a gdlab report"):
        write_workshop_report(ws, foreign, gif=False)
    assert (foreign / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "r"]


def test_a_failure_half_way_leaves_no_partial_report(ws, tmp_path, monkeypatch):
    from gdlab import plots

    def boom(*args, **kwargs):
        raise RuntimeError("drawing failed")

    for name in FIGURES[:-1]:
        monkeypatch.setattr(plots, name, lambda *a, **k: plots.new_figure(1, 1)[0])
    monkeypatch.setattr(plots, "contour_figure", boom)
    with pytest.raises(RuntimeError):
        write_workshop_report(ws, tmp_path / "out", gif=False)
    assert list(tmp_path.iterdir()) == []


def test_fit_report_for_one_feature(tmp_path):
    import gdlab

    ds = gdlab.datasets.workshop_line()
    r = gdlab.descend(ds.X, ds.y, max_iter=100, warn=False)
    rep = write_fit_report(r, tmp_path / "fit", X=ds.X, y=ds.y, feature_names=["x"], target_name="y")
    html = rep.index.read_text()
    assert "Coefficients" in html and f"{r.intercept:.8g}" in html
    assert {"loss.png", "fit.png", "index.html"} <= set(rep.files)


def test_report_html_escapes_text():
    page = report_mod.render_html("<t>", "sub", [("a", "<h>", "<p>ok</p>")])
    assert "<title>&lt;t&gt;</title>" in page and "&lt;h&gt;" in page


# ---- issue 14: every sentence against its figure, and the numbers behind the new figures ----------------------

def workshop_losses(eta, n_iterations):
    """The workshop's loop (slips fixed) at ``eta``: the MSE at the start and after each iteration."""
    X_b, y, _ = workshop_loop(eta=0.1, n_iterations=0)
    np.random.seed(42)
    np.random.rand(50, 1), np.random.randn(50, 1)
    w = np.random.randn(2, 1)
    losses, ws_ = [], []
    for _ in range(n_iterations + 1):
        losses.append(float(np.mean((X_b @ w - y) ** 2)))
        ws_.append(w[:, 0].copy())
        w = w - eta * 2 / len(y) * X_b.T.dot(X_b.dot(w) - y)
    return np.array(losses), np.array(ws_), X_b, y


def test_iterations_in_pictures_are_the_workshop_loop_run_longer(ws):
    pic = ws.iterations_in_pictures
    losses, weights, X_b, y = workshop_losses(0.1, max(pic.snapshots))
    for n in pic.snapshots:
        np.testing.assert_allclose(pic.weights_after(n), weights[n], rtol=1e-9)
    best = np.linalg.lstsq(X_b, y[:, 0], rcond=None)[0]
    opt = float(np.mean((X_b @ best - y[:, 0]) ** 2))
    for label, r in pic.runs.items():
        eta = r.learning_rate
        losses, _, _, _ = workshop_losses(eta, max(pic.snapshots))
        np.testing.assert_allclose(r.trajectory.loss, losses, rtol=1e-9)
        within = np.nonzero(losses - opt <= pic.close_enough * opt)[0]
        assert pic.enough[label] == within[0], label
    # the answer in words quotes those iteration counts
    answer = ws.answers()["iterations"]
    for label, n in pic.enough.items():
        assert f"{n:.0f}" in answer, label


def test_each_error_component_shrinks_by_one_minus_eta_lambda_per_step(ws):
    from gdlab.workshop import eigen_error_ratios

    X_b, y, _ = workshop_loop()
    lam = np.linalg.eigvalsh(2 / 50 * X_b.T @ X_b)
    for label, r in ws.learning_rate.runs.items():
        got_lam, ratio = eigen_error_ratios(r, ws.line)
        np.testing.assert_allclose(got_lam, lam, rtol=1e-12)
        T = r.trajectory.iteration[-1]
        np.testing.assert_allclose(ratio, np.abs(1 - r.learning_rate * lam) ** T, rtol=1e-6), label


def test_at_exactly_two_over_L_the_sweep_neither_converges_nor_diverges(ws):
    sw = ws.learning_rate.sweep
    i = np.nonzero(np.isclose(sw.learning_rates, sw.stable_step, rtol=1e-12, atol=0))[0]
    assert i.size == 1
    losses, _, _, _ = workshop_losses(sw.stable_step, 1000)
    assert not sw.diverged[i[0]].any() and np.isfinite(sw.final_loss[i[0]]).all()
    assert sw.final_loss[i[0], -1] == pytest.approx(losses[1000], rel=1e-6)
    assert losses[1000] > 100 * ws.line.closed.loss  # stuck high: the steep direction's error never shrinks
    assert "above 2/L every run diverges" in ws.answers()["learning_rate"]
    assert "at 2/L and above" not in ws.answers()["learning_rate"]


def test_scaling_condition_numbers_against_numpy(ws):
    sc = ws.scaling
    X_b, y, _ = workshop_loop()
    x = X_b[:, 1]
    z = (x - x.mean()) / x.std()
    Z_b = np.c_[np.ones(50), z]
    for r, A in ((sc.line_raw, X_b), (sc.line_standardized, Z_b)):
        lam = np.linalg.eigvalsh(2 / 50 * A.T @ A)
        assert r.curvature.condition_number == pytest.approx(lam[-1] / lam[0], rel=1e-9)
    assert sc.line_standardized.curvature.condition_number == pytest.approx(1.0, abs=1e-9)
    # the standardised descent is the same line: mapped back, its weights are the Normal Equation's
    wz = sc.line_standardized.trajectory.params[-1]
    np.testing.assert_allclose([wz[0] - wz[1] * sc.center / sc.scale, wz[1] / sc.scale], ws.line.closed.params,
                               rtol=1e-9)
    from sklearn.datasets import load_diabetes

    Xd, yd = load_diabetes(return_X_y=True, scaled=False)
    for r, A in zip(sc.real["diabetes"], (Xd, (Xd - Xd.mean(0)) / Xd.std(0))):
        A_b = np.c_[np.ones(len(A)), A]
        lam = np.linalg.eigvalsh(2 / len(A) * A_b.T @ A_b)
        assert r.curvature.condition_number == pytest.approx(lam[-1] / lam[0], rel=1e-4)
        opt = np.linalg.lstsq(A_b, yd, rcond=None)[0]
        assert r.optimum_loss == pytest.approx(np.mean((A_b @ opt - yd) ** 2), rel=1e-9)
    raw, std = sc.real["diabetes"]
    assert raw.loss > 2 * raw.optimum_loss and std.loss < 1.001 * std.optimum_loss


def section(html, anchor):
    m = re.search(rf'<section id="{anchor}">(.*?)</section>', html, re.S)
    assert m, anchor
    return re.sub(r'<img [^>]*>', '', m.group(1))


def test_report_sentences_state_the_numbers_of_their_figures(ws, written):
    html = written.index.read_text(encoding="utf-8")
    ct = ws.contour
    opt = section(html, "optimizers")
    beta = ct.paths["momentum"].extra["optimizer"].hyperparameters["beta"]
    assert beta == 0.9 and "beta = 0.9" in opt and "a little" not in opt
    swing = ct.paths["momentum"].trajectory.params[:, 1].max()
    assert f"slope reaches {swing:.1f}" in opt and swing - ws.line.closed.params[1] > 5  # a large swing, said so
    for name, r in ct.paths.items():
        assert f"MSE {r.loss:.5f} after {r.n_iter} iterations" in opt, name
    # section 7 states every gdlab row's learning rate, so it cannot silently contradict section 6
    comp = section(html, "comparison")
    for row in ws.comparison.rows:
        if row.result is not None:
            assert report_mod._esc(row.result.extra.get("auto") or "") in comp, row.method
            assert f"{row.n_iter} iteration" in comp
    assert 'class="scroll"' in comp
    lr = section(html, "learning-rate")
    slow = next(iter(ws.learning_rate.runs.values()))
    assert "crawls along the valley" not in lr and f"(MSE {slow.loss:.3g})" in lr
    assert "Exactly at 2/L the run neither converges nor diverges" in lr


def test_a_report_for_slides_has_sharper_figures_at_the_same_size_on_the_page(ws, tmp_path, monkeypatch):
    from gdlab import plots

    def one_figure(*args, **kwargs):
        fig, ax = plots.new_figure(7.0, 4.0)
        ax.plot([0, 1], [0, 1])
        return fig

    for name in FIGURES:
        monkeypatch.setattr(plots, name, one_figure)
    low = write_workshop_report(ws, tmp_path / "low", gif=False)
    high = write_workshop_report(ws, tmp_path / "high", gif=False, dpi=220)
    a = Image.open(low.folder / "01_data.png").size
    b = Image.open(high.folder / "01_data.png").size
    assert b[0] == pytest.approx(2 * a[0], abs=2) and b[1] == pytest.approx(2 * a[1], abs=2)
    assert 'width="770"' in high.index.read_text() and 'width="770"' in low.index.read_text()
    with pytest.raises(ValueError, match="dpi must be an integer between 50 and 600"):
        write_workshop_report(ws, tmp_path / "bad", gif=False, dpi=5000)


def test_the_animation_follows_the_resolution_asked_for(ws, tmp_path):
    """--dpi reached the figures but not the GIF (it was always 900 pixels wide): now it scales too."""
    from gdlab import plots

    low = Image.open(plots.descent_animation(ws.line, tmp_path / "low.gif")).size
    high = Image.open(plots.descent_animation(ws.line, tmp_path / "high.gif", dpi=200)).size
    assert low[0] == 900 and high[0] == pytest.approx(2 * low[0], abs=2) and high[1] == pytest.approx(2 * low[1], abs=2)


def test_the_animation_shows_every_line_and_centres_the_minimum(ws, tmp_path):
    from gdlab import plots

    path = plots.descent_animation(ws.line, tmp_path / "d.gif")
    assert Image.open(path).n_frames == len(ws.line.weights)
    # the drawing's own limits: recompute them as the function does and check what they hold
    P, opt = ws.line.weights, ws.line.closed.params
    lo, hi = plots._lines_ylim(ws.line.data.axis, [tuple(p) for p in P], np.array([0.0, 2.0]))
    for b, w in P:
        assert lo <= b <= hi and lo <= b + 2 * w <= hi
    b0, b1, w0, w1 = plots._centred_extent(opt, [ws.line.data.w_init, P])
    assert (b0 + b1) / 2 == pytest.approx(opt[0]) and (w0 + w1) / 2 == pytest.approx(opt[1])
    assert np.all((P[:, 0] > b0) & (P[:, 0] < b1) & (P[:, 1] > w0) & (P[:, 1] < w1))
