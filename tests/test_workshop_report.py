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
                   "animation"):
        assert f'id="{anchor}"' in html, anchor
    images = re.findall(r'src="data:image/(png|gif);base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 8
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
           "learning_rate_panels_figure", "iterations_figure", "contour_figure")


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
