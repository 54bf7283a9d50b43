"""gdlab.plots: every figure draws on its own Agg canvas (no pyplot state), saves atomically, and shows the numbers
it claims to."""

import io
import sys

import matplotlib
import numpy as np
import pytest
from PIL import Image

import gdlab
from gdlab import plots
from gdlab.sweep import sweep
from gdlab.workshop import run_workshop


@pytest.fixture(scope="module")
def ws():
    return run_workshop(sweep_points=8, contour_iterations=20)


def test_mse_surface_equals_the_direct_sum():
    ds = gdlab.datasets.workshop_line()
    bs = np.linspace(0, 10, 7)
    ws_ = np.linspace(-2, 8, 5)
    Z = plots.mse_surface(ds.X, ds.y, bs, ws_)
    direct = np.array([[np.mean((b + w * ds.X[:, 0] - ds.y) ** 2) for b in bs] for w in ws_])
    np.testing.assert_allclose(Z, direct, rtol=1e-12)


def test_every_workshop_figure_renders_without_touching_pyplot_or_rcparams(ws):
    before = dict(matplotlib.rcParams)
    pyplot_loaded = "matplotlib.pyplot" in sys.modules
    figures = [
        plots.mean_data_figure(ws.mean), plots.error_curve_figure(ws.mean), plots.line_iterations_figure(ws.line),
        plots.learning_rate_figure(ws.learning_rate), plots.learning_rate_panels_figure(ws.learning_rate, ws.line),
        plots.iterations_figure(ws.iterations, ws.line), plots.contour_figure(ws.contour, ws.line),
        plots.iterations_in_pictures_figure(ws.iterations_in_pictures, ws.line),
        plots.scaling_figure(ws.scaling, ws.line),
        plots.boundaries_figure(ws.no_closed_form), plots.log_loss_surface_figure(ws.no_closed_form),
        plots.logistic_learning_rate_figure(ws.no_closed_form), plots.newton_figure(ws.no_closed_form, ws.line),
    ]
    for fig in figures:
        png = plots.figure_png(fig)
        img = Image.open(io.BytesIO(png))
        assert img.format == "PNG" and img.size[0] > 500 and img.size[1] > 300
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                continue
            assert ax.get_xlabel() and ax.get_ylabel(), "every axis is labelled"
    assert dict(matplotlib.rcParams) == before
    if not pyplot_loaded:
        assert "matplotlib.pyplot" not in sys.modules
    else:  # pragma: no cover - another test loaded pyplot; at least no figure of ours is registered there
        import matplotlib.pyplot as plt

        assert not any(plt.figure(n) in figures for n in plt.get_fignums())


def test_line_figure_draws_the_workshop_axes_and_one_line_per_iteration(ws):
    fig = plots.line_iterations_figure(ws.line)
    ax = fig.axes[0]
    assert tuple(ax.axis()) == (0.0, 2.0, 8.0, 22.0)
    blue = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    assert len(blue) == ws.line.data.n_iterations
    # the last blue line is the workshop's final w: y = w0 + w1 x at x = 0 and 2
    w = ws.line.descent.params
    np.testing.assert_allclose(blue[-1].get_ydata(), [w[0], w[0] + 2 * w[1]])


def test_learning_rate_figure_marks_two_over_L_and_the_best_step(ws):
    fig = plots.learning_rate_figure(ws.learning_rate)
    ax = fig.axes[0]
    xs = {float(ln.get_xdata()[0]) for ln in ax.get_lines() if len(ln.get_xdata()) == 2
          and ln.get_xdata()[0] == ln.get_xdata()[1]}
    curv = ws.line.curvature
    assert any(np.isclose(x, curv.stable_step) for x in xs)
    assert any(np.isclose(x, curv.best_step) for x in xs)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"


def test_save_figure_writes_atomically_and_leaves_no_temporary_file(tmp_path, ws):
    path = plots.save_figure(plots.error_curve_figure(ws.mean), tmp_path / "curve.png")
    assert Image.open(path).format == "PNG"
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]


def test_save_figure_into_a_missing_folder_fails_cleanly(tmp_path, ws):
    with pytest.raises(OSError):
        plots.save_figure(plots.error_curve_figure(ws.mean), tmp_path / "nope" / "curve.png")
    assert list(tmp_path.iterdir()) == []


def test_animation_has_one_frame_per_iteration(tmp_path, ws):
    path = plots.descent_animation(ws.line, tmp_path / "descent.gif")
    img = Image.open(path)
    assert img.format == "GIF" and img.n_frames == ws.line.data.n_iterations + 1
    assert img.info.get("loop") == 0
    assert [p.name for p in tmp_path.iterdir()] == ["descent.gif"]


def test_sweep_heatmap_marks_every_diverged_cell():
    ds = gdlab.datasets.workshop_line()
    res = sweep(ds.X, ds.y, [0.01, 0.1, 0.4, 0.6, 1.0], [10, 100])
    fig = plots.sweep_heatmap_figure(res)
    ax = fig.axes[0]
    crosses = [ln for ln in ax.get_lines() if ln.get_marker() == "x" and len(ln.get_xdata())]
    assert len(crosses) == int(res.diverged.sum()) > 0
    assert Image.open(io.BytesIO(plots.figure_png(fig))).format == "PNG"


def test_loss_curve_and_fit_line_figures():
    ds = gdlab.datasets.workshop_line()
    r = gdlab.descend(ds.X, ds.y, learning_rate=0.1, max_iter=50, tol=None, warn=False)
    for fig in (plots.loss_curve_figure(r), plots.fit_line_figure(ds.X, ds.y, r)):
        assert Image.open(io.BytesIO(plots.figure_png(fig))).format == "PNG"
    with pytest.raises(ValueError, match="no trajectory"):
        plots.loss_curve_figure(gdlab.closed_form(ds.X, ds.y))
