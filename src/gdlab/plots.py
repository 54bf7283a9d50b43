"""Figures of gradient descent (matplotlib, drawn on the Agg canvas: no window, no pyplot global state).

Every function returns a :class:`matplotlib.figure.Figure` built with the object API, so that figures never leak
into (or depend on) pyplot's current-figure state; ``save_figure`` writes one atomically (temporary name, then
rename), and ``descent_animation`` writes an animated GIF with Pillow.

The figures of the workshop take the parts of :class:`gdlab.workshop.Workshop`; the others take a
:class:`~gdlab.result.Result` or a :class:`~gdlab.sweep.SweepResult`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from gdlab.result import Result
    from gdlab.sweep import SweepResult
    from gdlab.workshop import (
        ContourPart,
        EigenPart,
        IterationsInPicturesPart,
        IterationsPart,
        LearningRatePart,
        LinePart,
        MeanPart,
        NoClosedFormPart,
        NoisePart,
        ScalingPart,
    )

__all__ = [
    "new_figure", "save_figure", "figure_png", "mean_data_figure", "error_curve_figure", "line_iterations_figure",
    "learning_rate_figure", "learning_rate_panels_figure", "iterations_figure", "iterations_in_pictures_figure",
    "scaling_figure", "contour_figure", "boundaries_figure", "log_loss_surface_figure", "logistic_learning_rate_figure",
    "newton_figure", "log_loss_surface", "eigen_directions_figure", "eigen_rates_figure", "momentum_region_figure",
    "momentum_component", "noise_band_figure", "noise_floor_figure",
    "sweep_heatmap_figure", "loss_curve_figure", "fit_line_figure", "descent_animation", "mse_surface",
]

OPTIMIZER_COLOURS = {"gd": "#1f77b4", "momentum": "#ff7f0e", "nesterov": "#2ca02c", "adam": "#9467bd",
                     "adagrad": "#8c564b", "rmsprop": "#e377c2"}
_STYLE = {
    "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8.5, "xtick.labelsize": 9,
    "ytick.labelsize": 9, "axes.grid": True, "grid.alpha": 0.25, "axes.spines.top": False,
    "axes.spines.right": False, "figure.dpi": 100, "savefig.dpi": 110,
}


def new_figure(width: float = 7.0, height: float = 4.2, nrows: int = 1, ncols: int = 1, **kwargs: Any
               ) -> tuple[Figure, Any]:
    """A Figure on its own Agg canvas, and its axes (one Axes, or an array for a grid), in gdlab's style."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=True, **kwargs)
    return fig, axes


def _styled(func: Callable[..., Any]) -> Callable[..., Any]:
    """Draw inside gdlab's rc settings (read when each artist is made), leaving the global ones untouched."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(_STYLE):
            return func(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def _laid_out(fig: Figure, dpi: float) -> Iterator[None]:
    """Run the figure's layout engine once, at ``dpi``, and hold the positions while the body draws it.

    ``savefig`` on a figure with a layout engine draws it twice: once with rendering disabled only so that the
    engine (constrained layout) can measure the text, then for real. The engine measures by asking each Axes for
    its tight bounding box itself, so running it directly, at the dpi and on the Agg renderer that savefig would
    give it, places every Axes where savefig's first draw would (the pixels are the same) for less: the disabled
    draw goes."""
    engine = fig.get_layout_engine()
    if engine is None:
        yield
        return
    original_dpi = fig.dpi
    fig.dpi = dpi
    try:
        engine.execute(fig)
    finally:
        fig.dpi = original_dpi
    import matplotlib

    # no engine at all while it draws: savefig measures again (its disabled draw) whenever there is one, even
    # set_layout_engine("none")'s placeholder; the rc settings keep None from meaning a default engine
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)
    try:
        yield
    finally:
        fig.set_layout_engine(engine)


#: zlib level 3 instead of Pillow's 6: the same pixels, a third less time encoding, and on the workshop's figures
#: (flat colours, thin lines) files about 5% smaller
_PNG_OPTIONS = {"compress_level": 3}


def figure_png(fig: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    with _laid_out(fig, dpi):
        fig.savefig(buf, format="png", dpi=dpi, pil_kwargs=dict(_PNG_OPTIONS))
    return buf.getvalue()


def save_figure(fig: Figure, path: Any, dpi: int = 110) -> Path:
    """Write the figure (format from the extension) to a temporary name, then rename it into place."""
    from gdlab._io import atomic_path

    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    # the PNG is drawn on Agg, whose text measures the layout can take directly; other formats keep savefig's
    with atomic_path(path) as tmp, _laid_out(fig, dpi) if fmt == "png" else contextlib.nullcontext():
        fig.savefig(tmp, format=fmt, dpi=dpi, **({"pil_kwargs": dict(_PNG_OPTIONS)} if fmt == "png" else {}))
    return path


def _colormaps() -> Any:
    import matplotlib

    return matplotlib.colormaps


# ---- the MSE surface over (intercept, slope) ------------------------------------------------------------------

def mse_surface(X: np.ndarray, y: np.ndarray, intercepts: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    """MSE(b, w) = (1/m) sum (b + w x_i - y_i)^2 on a grid: (len(slopes), len(intercepts)), single feature.

    Computed from the five sums of the quadratic, so a fine grid costs nothing whatever m is.
    """
    x = np.asarray(X, dtype=float).reshape(len(X), -1)[:, 0]
    y = np.asarray(y, dtype=float)
    B, W = np.meshgrid(intercepts, slopes)
    mx, my, mxx, mxy, myy = x.mean(), y.mean(), (x * x).mean(), (x * y).mean(), (y * y).mean()
    return B * B + W * W * mxx + myy + 2 * B * W * mx - 2 * B * my - 2 * W * mxy


def log_loss_surface(X: np.ndarray, y: np.ndarray, w1s: np.ndarray, w2s: np.ndarray, tol: float = 1e-12
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The log-loss over a grid of (w1, w2) with the intercept w0 re-fitted at each point (two features).

    Returns (F, B), both (len(w2s), len(w1s)): F = min over w0 of (1/m) sum [log(1 + e^eta) - y eta] with
    eta = w0 + w1 x1 + w2 x2 (y in 0/1), and B the minimising w0. The 1-D problem in w0 is convex; its root
    mean(sigmoid(eta)) = mean(y) is found by Newton's method, each step clipped to 4 (so that it cannot overshoot
    where the curvature is tiny), until |mean(sigmoid(eta)) - mean(y)| <= tol.
    """
    from scipy.special import expit

    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    W1, W2 = np.meshgrid(np.asarray(w1s, dtype=float), np.asarray(w2s, dtype=float))
    S = W1[..., None] * X[:, 0] + W2[..., None] * X[:, 1]  # (len(w2s), len(w1s), m)
    ybar = float(y.mean())
    B = np.zeros(W1.shape)
    for _ in range(100):
        p = expit(B[..., None] + S)
        g = p.mean(axis=-1) - ybar
        if float(np.max(np.abs(g))) <= tol:
            break
        h = np.maximum((p * (1.0 - p)).mean(axis=-1), 1e-300)
        B -= np.clip(g / h, -4.0, 4.0)
    eta = B[..., None] + S
    F = (np.logaddexp(0.0, eta) - y * eta).mean(axis=-1)
    return F, B


def _contour(ax: Axes, X: np.ndarray, y: np.ndarray, optimum: np.ndarray, extent: tuple[float, float, float, float],
             n_levels: int = 14, labels: bool = False) -> None:
    b0, b1, w0, w1 = extent
    bs = np.linspace(b0, b1, 200)
    ws = np.linspace(w0, w1, 200)
    Z = mse_surface(X, y, bs, ws)
    zmin = float(mse_surface(X, y, np.array([optimum[0]]), np.array([optimum[1]]))[0, 0])
    # levels spaced evenly in log(MSE - min): the ellipses near the minimum stay visible
    span = max(float(Z.max()) - zmin, 1e-12)
    levels = zmin + np.geomspace(span * 1e-3, span, n_levels)
    cs = ax.contour(bs, ws, Z, levels=levels, colors="0.55", linewidths=0.7)
    if labels:
        ax.clabel(cs, cs.levels[::3], fmt=lambda v: f"{v:.3g}", fontsize=7, inline=True)
    ax.set_xlim(b0, b1)
    ax.set_ylim(w0, w1)
    ax.set_xlabel("intercept w0")
    ax.set_ylabel("slope w1")


def _line_extent(X: np.ndarray, y: np.ndarray, points: list[np.ndarray]) -> tuple[float, float, float, float]:
    pts = np.vstack([np.atleast_2d(p) for p in points])
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    pad = 0.15 * np.maximum(hi - lo, 1.0)
    return float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1])


def _centred_extent(optimum: np.ndarray, points: list[np.ndarray], pad: float = 0.12
                    ) -> tuple[float, float, float, float]:
    """Bounds centred on the minimum that hold every point: the star sits in the middle, whole ellipses round it."""
    pts = np.vstack([np.atleast_2d(p) for p in points])
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    opt = np.asarray(optimum, dtype=float)
    half = (1.0 + pad) * np.maximum(np.max(np.abs(pts - opt), axis=0), 1e-3)
    return float(opt[0] - half[0]), float(opt[0] + half[0]), float(opt[1] - half[1]), float(opt[1] + half[1])


def _lines_ylim(axis: tuple[float, ...], lines: list[tuple[float, float]], x: np.ndarray) -> tuple[float, float]:
    """The workshop's y-range, widened (to a round number) so that every line (b, w) over ``x`` shows."""
    ys = np.array([b + w * xv for b, w in lines for xv in x], dtype=float)
    ys = ys[np.isfinite(ys)]
    lo = min(float(axis[2]), math.floor(float(ys.min()) - 0.5)) if ys.size else float(axis[2])
    hi = max(float(axis[3]), math.ceil(float(ys.max()) + 0.5)) if ys.size else float(axis[3])
    return lo, hi


def _first_step(trajectory: Any) -> float:
    """The first learning rate recorded (the trajectory holds NaN where no step applies)."""
    steps = np.asarray(trajectory.learning_rate, dtype=float)
    steps = steps[np.isfinite(steps)]
    return float(steps[0]) if steps.size else math.nan


def _draw_path(ax: Axes, params: np.ndarray, colour: str, label: str, marker_size: float = 3.5) -> None:
    ax.plot(params[:, 0], params[:, 1], "-o", color=colour, lw=1.4, ms=marker_size, label=label, zorder=3)


# ---- the workshop's figures ------------------------------------------------------------------------------------

@_styled
def mean_data_figure(part: MeanPart) -> Figure:
    """Figure 1: the 1000 points around 2.0 (random vertical jitter), candidate lines 1.5 and 2.5, the best 2.0."""
    d = part.data
    fig, ax = new_figure(7.0, 3.8)
    ax.plot(d.X[:, 0], d.jitter, "x", color="#1f77b4", ms=4, alpha=0.6, label="data: 1000 draws of N(2, 0.3²)")
    for i, m in enumerate(d.lines):
        ax.plot([m, m], [0, 1], "k--", lw=1.3, label="candidate estimates 1.5 and 2.5" if i == 0 else None)
    ax.plot([d.best, d.best], [0, 1], "r--", lw=2, label="the best estimate, 2.0")
    ax.set_xlabel("value x")
    ax.set_ylabel("random height (jitter, no meaning)")
    ax.set_title("Data around 2.0 and three candidate estimates of its centre")
    ax.set_ylim(0, 1.25)
    ax.legend(loc="upper center", ncols=2, frameon=False)
    return fig


@_styled
def error_curve_figure(part: MeanPart) -> Figure:
    """Figure 2: MSE over 40 candidate means in [1, 3], the minimum at the mean, and GD's steps down the curve."""
    d = part.data
    fig, ax = new_figure(7.0, 4.2)
    ax.plot(d.candidates, part.errors, "-", color="#1f77b4", lw=2, label="MSE(c) over 40 candidates c in [1, 3]")
    ax.plot(d.candidates, part.errors, ".", color="#1f77b4", ms=4)
    steps = part.steps
    err = d.mse(steps)
    ax.plot(steps, err, "-", color="#d62728", lw=1, alpha=0.6)
    ax.scatter(steps, err, s=28, color="#d62728", zorder=4,
               label=f"gradient descent steps (eta = {part.learning_rate:g}, start c = {part.start:g})")
    for t in (0, 1, 2):
        ax.annotate("start" if t == 0 else f"step {t}", (steps[t], err[t]), textcoords="offset points",
                    xytext=(8, 4), fontsize=8, color="#d62728")
    best = float(d.mse(part.mean))
    ax.axvline(part.mean, color="k", ls=":", lw=1)
    ax.plot([part.mean], [best], "k*", ms=12, zorder=5, label=f"minimum at the mean, c = {part.mean:.4f}")
    ax.set_xlabel("candidate estimate c")
    ax.set_ylabel("MSE(c) = mean of (c - x)²")
    ax.set_title("The error curve: gradient descent rolls down to the mean")
    ax.legend(loc="upper center", frameon=False)
    ax.set_ylim(bottom=0)
    return fig


@_styled
def line_iterations_figure(part: LinePart) -> Figure:
    """Figure 3: the 50 points and the fitted line after each of the 10 iterations (axes [0, 2, 8, 22])."""
    d = part.data
    W = part.weights
    fig, ax = new_figure(7.0, 4.6)
    ax.scatter(d.X[:, 0], d.y, color="red", marker="o", s=18, label="raw data (50 points)", zorder=4)
    x_new = np.array([0.0, 2.0])
    colours = [_colormaps()["Blues"](v) for v in np.linspace(0.35, 1.0, len(W) - 1)]
    for i, (w, c) in enumerate(zip(W[1:], colours), start=1):
        ax.plot(x_new, w[0] + w[1] * x_new, "-", color=c, lw=1.3,
                label="GD iterations 1 to 10 (darker = later)" if i == len(W) - 1 else None)
        if i in (1, 2, 3, len(W) - 1):
            ax.annotate(f"{i}", (2.0, w[0] + 2 * w[1]), textcoords="offset points", xytext=(4, 0), fontsize=8,
                        color=c, ha="left", va="center", annotation_clip=False)
    cf = part.closed.params
    ax.plot(x_new, cf[0] + cf[1] * x_new, "--", color="k", lw=1.6, label="Normal Equation (the exact minimum)")
    ax.axis(d.axis)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"{d.n_iterations} iterations of gradient descent at eta = {d.eta:g}")
    w = part.descent.params
    text = (f"{'after ' + str(d.n_iterations) + ' iterations:':<22}w = [{w[0]:.3f}, {w[1]:.3f}]\n"
            f"{'Normal Equation:':<22}w = [{cf[0]:.3f}, {cf[1]:.3f}]\n"
            "w = [w0, w1] = [intercept, slope]; data: y = 8 + 6x + noise")
    ax.text(0.98, 0.03, text, transform=ax.transAxes, ha="right", va="bottom", multialignment="left",
            family="monospace", fontsize=8,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.7"})
    ax.legend(loc="upper left", frameon=True, framealpha=0.9)
    return fig


@_styled
def learning_rate_figure(part: LearningRatePart) -> Figure:
    """Task 1: final loss against the learning rate, one line per iteration budget, 2/L and 2/(L+mu) marked.

    Left: every rate of the sweep (log axes); right: the rates near 2/L on a linear axis, where the runs go from
    fastest to oscillating to diverging. The legend sits below both, so the plots keep the width."""
    return _loss_vs_eta(part.sweep, "What happens when you alter the learning rate?", zoom=True)


def _loss_vs_eta(sw: SweepResult, title: str, zoom: bool = False) -> Figure:
    near = np.zeros(0, dtype=bool)
    if zoom and math.isfinite(sw.stable_step):
        near = (sw.learning_rates >= 0.55 * sw.stable_step) & (sw.learning_rates <= 1.25 * sw.stable_step)
    two = int(near.sum()) >= 4
    if two:
        fig, (ax, ax_zoom) = new_figure(10.0, 4.9, 1, 2, width_ratios=[1.25, 1])
        axes = [ax, ax_zoom]
    else:
        fig, ax = new_figure(9.0, 4.6)
        axes = [ax]
    cmap = _colormaps()["viridis"]
    start = sw.initial_loss if math.isfinite(sw.initial_loss) else np.nanmax(sw.final_loss)
    ceiling = 10.0 * start  # runs above ten times the starting loss are drawn as crosses at the top
    for a, keep in zip(axes, [np.ones_like(sw.learning_rates, dtype=bool), near]):
        for j, n in enumerate(sw.iterations):
            c = cmap(0.85 * j / max(1, len(sw.iterations) - 1))
            loss = sw.final_loss[:, j]
            ok = ~sw.diverged[:, j] & np.isfinite(loss) & (loss <= ceiling)
            a.plot(sw.learning_rates[ok & keep], loss[ok & keep], "-o", ms=3, color=c,
                   label=f"after {n} iterations" if a is ax else None)
            bad = ~ok & keep
            if bad.any():
                a.plot(sw.learning_rates[bad], np.full(int(bad.sum()), ceiling), "x", color=c, ms=8, mew=2)
        a.axhline(start, color="0.5", lw=1, ls="-.", label=f"the starting loss {start:.4g}" if a is ax else None)
        if sw.optimum_loss is not None:
            a.axhline(sw.optimum_loss, color="k", lw=1, ls=":",
                      label=f"the minimum MSE {sw.optimum_loss:.4g}" if a is ax else None)
        if math.isfinite(sw.stable_step):
            a.axvline(sw.stable_step, color="#d62728", lw=1.6,
                      label=f"2/L = {sw.stable_step:.3g}: stability limit" if a is ax else None)
            a.axvline(sw.best_step, color="#2ca02c", lw=1.6, ls="--",
                      label=f"2/(L+mu) = {sw.best_step:.3g}: best constant step" if a is ax else None)
        a.set_yscale("log")
        a.set_ylim(top=ceiling * 2.5)
        a.set_ylabel("MSE after the run (log scale)")
    if (~np.isfinite(sw.final_loss) | sw.diverged | (sw.final_loss > ceiling)).any():
        ax.plot([], [], "x", color="0.3", ms=8, mew=2, ls="none", label="diverged (drawn at 10x the starting loss)")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate eta (log scale)")
    if two:
        ax.set_title("every learning rate of the sweep", fontsize=10)
        ax.axvspan(sw.learning_rates[near].min(), sw.learning_rates[near].max(), color="0.85", alpha=0.5, lw=0)
        ax_zoom.set_xlabel("learning rate eta (linear scale)")
        ax_zoom.set_title("zoom on the grey band: the rates near 2/L", fontsize=10)
        ax_zoom.set_ylim(ax.get_ylim())
        at = np.nonzero(np.isclose(sw.learning_rates, sw.stable_step, rtol=1e-12, atol=0))[0]
        if at.size and np.isfinite(sw.final_loss[at[0], -1]) and not sw.diverged[at[0], -1]:
            v = float(sw.final_loss[at[0], -1])
            ax_zoom.annotate(f"at 2/L exactly: MSE {v:.4g} after {sw.iterations[-1]}\niterations, neither down nor up",
                             (sw.stable_step, v), xytext=(-12, 28), textcoords="offset points", ha="right",
                             fontsize=8.5, color="#d62728", arrowprops={"arrowstyle": "->", "color": "#d62728"})
    fig.suptitle(title, fontsize=12)
    fig.legend(loc="outside lower center", ncols=3, frameon=False)
    return fig


@_styled
def learning_rate_panels_figure(part: LearningRatePart, line: LinePart) -> Figure:
    """Task 1, four panels: a slow, a fast, an oscillating and a diverging run on the contour of the MSE."""
    d = line.data
    opt = line.closed.params
    fig, axes = new_figure(9.0, 7.6, 2, 2)
    colours = ["#1f77b4", "#2ca02c", "#ff7f0e", "#d62728"]
    extent_pts = [opt, d.w_init]
    for r in part.runs.values():
        if not r.diverged:
            extent_pts.append(r.trajectory.params)
    extent = _line_extent(d.X, d.y, extent_pts)
    for ax, (label, r), c in zip(axes.ravel(), part.runs.items(), colours):
        _contour(ax, d.X, d.y, opt, extent, labels=False)
        P = r.trajectory.params
        _draw_path(ax, P, c, None, marker_size=3)
        ax.plot(*P[0], "ks", ms=6, zorder=4)
        ax.plot(*opt, "*", color="gold", mec="k", ms=14, zorder=5)
        kind, _, eta = label.partition(": ")
        status = (f"diverged at iteration {r.n_iter}" if r.diverged else f"after {r.n_iter} iterations: MSE "
                  f"{r.loss:.3g}")
        ax.set_title(f"{kind.capitalize()} ({eta})\n{status}", fontsize=10)
    axes[0, 0].plot([], [], "ks", label="start (the workshop's random w)")
    axes[0, 0].plot([], [], "*", color="gold", mec="k", ms=10, label="minimum (Normal Equation)")
    axes[0, 0].legend(loc="upper left", fontsize=8, framealpha=0.9)
    fig.suptitle("Four learning rates, 30 iterations each, on the contour of the MSE", fontsize=12)
    return fig


@_styled
def iterations_figure(part: IterationsPart, line: LinePart) -> Figure:
    """Task 2: the gap MSE - min against iteration (log scale), measured and predicted (rate^(2t))."""
    curv = line.curvature
    fig, ax = new_figure(7.0, 4.4)
    cmap = _colormaps()["tab10"]
    for i, (label, r) in enumerate(part.runs.items()):
        tr = r.trajectory
        gap = np.maximum(tr.gap, 1e-300)
        keep = tr.gap > 0
        eta = _first_step(tr)
        rate = curv.rate(eta)
        ax.plot(tr.iteration[keep], gap[keep], "-", color=cmap(i), lw=2, label=f"{label}: measured")
        t = np.arange(0, int(tr.iteration[-1]) + 1)
        ax.plot(t, gap[0] * rate ** (2 * t), "--", color=cmap(i), lw=1,
                label=f"predicted: gap x {rate:.3f}² per iteration")
    ax.set_yscale("log")
    ax.set_xlim(0, max(int(r.trajectory.iteration[-1]) for r in part.runs.values()) * 0.75)
    ax.set_ylim(bottom=1e-14)
    ax.set_xlabel("iteration")
    ax.set_ylabel("MSE - minimum MSE (log scale)")
    ax.set_title("What happens when you alter the number of iterations?")
    ax.legend(loc="upper right", frameon=True, framealpha=0.9, ncols=1)
    return fig


@_styled
def iterations_in_pictures_figure(part: IterationsInPicturesPart, line: LinePart) -> Figure:
    """Task 2 in pictures. Left: the data and the fitted line after each of ``part.snapshots`` iterations at the
    workshop's eta, with the Normal Equation's. Right: the MSE against iteration (both axes log, so that the first
    tens of iterations are as wide as the last hundreds) at each learning rate of ``part.runs``, the snapshots
    marked on the workshop's run and the iteration where each run comes within ``part.close_enough`` of the
    minimum."""
    d = line.data
    cf = line.closed.params
    fig, (ax_l, ax_r) = new_figure(10.0, 4.6, 1, 2, width_ratios=[1, 1.15])
    x_new = np.array([0.0, 2.0])
    ax_l.scatter(d.X[:, 0], d.y, color="red", marker="o", s=14, zorder=4, label="data (50 points)")
    colours = [_colormaps()["plasma"](v) for v in np.linspace(0.0, 0.8, len(part.snapshots))]
    lines = []
    for n, c in zip(part.snapshots, colours):
        w = part.weights_after(n)
        lines.append((w[0], w[1]))
        ax_l.plot(x_new, w[0] + w[1] * x_new, "-", color=c, lw=1.8 if n < part.snapshots[-1] else 2.6,
                  label=f"after {n:>4} iteration{'s' if n != 1 else ' '}: w = [{w[0]:.2f}, {w[1]:.2f}]", zorder=3)
    ax_l.plot(x_new, cf[0] + cf[1] * x_new, "--", color="k", lw=1.4, zorder=5,
              label=f"Normal Equation:     w = [{cf[0]:.2f}, {cf[1]:.2f}]")
    ax_l.set_xlim(d.axis[0], d.axis[1])
    ax_l.set_ylim(*_lines_ylim(d.axis, lines, x_new))
    ax_l.set_xlabel("x")
    ax_l.set_ylabel("y")
    ws_label = next(iter(part.runs))
    ax_l.set_title(f"the fitted line, {ws_label}", fontsize=10)
    ax_l.legend(loc="lower right", fontsize=7.5, prop={"family": "monospace", "size": 7.5}, framealpha=0.92)

    run_colours = ["#1f77b4", "#9467bd", "#2ca02c", "#ff7f0e"]
    opt_loss = float(line.closed.loss)
    for (label, r), c in zip(part.runs.items(), run_colours):
        tr = r.trajectory
        keep = tr.iteration >= 1
        ax_r.plot(tr.iteration[keep], tr.loss[keep], "-", color=c, lw=1.8 if label == ws_label else 1.3,
                  label=label)
        n = part.enough[label]
        if math.isfinite(n):
            v = float(tr.loss[int(np.searchsorted(tr.iteration, n))])
            ax_r.plot([n], [v], "v", color=c, ms=8, mec="k", mew=0.6, zorder=5)
    tr = part.workshop_run.trajectory
    for n, c in zip(part.snapshots, colours):
        ax_r.plot([n], [tr.loss[int(np.searchsorted(tr.iteration, n))]], "o", color=c, mec="k", ms=7, zorder=6)
    ax_r.plot([], [], "o", color="0.6", mec="k", ms=7, ls="none", label="the lines drawn on the left")
    ax_r.plot([], [], "v", color="0.6", mec="k", ms=8, ls="none",
              label=f"from here the MSE is within {100 * part.close_enough:g}% of the minimum")
    ax_r.axhline(opt_loss, color="k", ls=":", lw=1, label=f"the minimum MSE {opt_loss:.4f} (Normal Equation)")
    ax_r.set_xscale("log")
    ax_r.set_yscale("log")
    ax_r.set_xlim(1, part.snapshots[-1])
    ax_r.set_xlabel("iteration (log scale)")
    ax_r.set_ylabel("MSE (log scale)")
    ax_r.set_title("the MSE at four learning rates", fontsize=10)
    ax_r.legend(loc="center right", fontsize=7.5, framealpha=0.92)
    fig.suptitle("What happens when you alter the number of iterations? The line after 1 to 1000 of them",
                 fontsize=12)
    return fig


@_styled
def scaling_figure(part: ScalingPart, line: LinePart) -> Figure:
    """The workshop's line data raw (left) and standardised (right): the contour of the MSE over each coordinate
    system's (intercept, slope), its condition number, and gd at its best constant step from the same start."""
    from gdlab.workshop import first_within

    d = line.data
    fig, axes = new_figure(10.0, 4.6, 1, 2)
    panels = [(d.X, part.line_raw, "raw x", "intercept w0", "slope w1"),
              (part.z, part.line_standardized, "standardised z = (x - mean) / std",
               "intercept w0' (z's coordinates)", "slope w1' (z's coordinates)")]
    for ax, (X, r, what, xl, yl) in zip(axes, panels):
        opt = np.asarray(r.trajectory.params[-1] if r.optimum_loss is None else _optimum(X, d.y), dtype=float)
        P = r.trajectory.params
        extent = _centred_extent(opt, [P])
        # equal scales on both axes: circles look round and ellipses show their true stretch
        half = max(extent[1] - opt[0], extent[3] - opt[1])
        extent = (opt[0] - half, opt[0] + half, opt[1] - half, opt[1] + half)
        _contour(ax, X, d.y, opt, extent)
        ax.set_aspect("equal", adjustable="box")
        _draw_path(ax, P, "#1f77b4", None, marker_size=3)
        ax.plot(*P[0], "ks", ms=6, zorder=4)
        ax.plot(*opt, "*", color="gold", mec="k", ms=14, zorder=5)
        curv = r.curvature
        eta = _first_step(r.trajectory)
        n = first_within(r, part.close_enough)
        when = f"within {100 * part.close_enough:g}% of the minimum from iteration {n:.0f}" if math.isfinite(n) \
            else f"MSE {r.loss:.4g} after {r.n_iter} iterations"
        ax.set_title(f"{what}: condition number L/mu = {curv.condition_number:.3g}\n"
                     f"gd at 2/(L+mu) = {eta:.3g}: {when}", fontsize=10)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
    axes[0].plot([], [], "ks", label="start (the workshop's w, in each panel's coordinates)")
    axes[0].plot([], [], "*", color="gold", mec="k", ms=10, label="minimum (Normal Equation)")
    axes[0].plot([], [], "-o", color="#1f77b4", ms=3, label="gradient descent")
    fig.legend(loc="outside lower center", ncols=3, frameon=False)
    fig.suptitle("The same data, raw and standardised: ellipses become circles", fontsize=12)
    return fig


def _optimum(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    X_b = np.c_[np.ones(len(X)), np.asarray(X, dtype=float).reshape(len(X), -1)]
    return np.linalg.lstsq(X_b, np.asarray(y, dtype=float), rcond=None)[0]


@_styled
def contour_figure(part: ContourPart, line: LinePart) -> Figure:
    """Figure 5: the MSE contour over (intercept, slope) with each optimizer's path and the closed form."""
    d = line.data
    opt = part.closed.params
    pts = [opt, d.w_init] + [r.trajectory.params for r in part.paths.values() if not r.diverged]
    extent = _line_extent(d.X, d.y, pts)
    fig, ax = new_figure(8.0, 6.0)
    _contour(ax, d.X, d.y, opt, extent)
    ax.plot([], [], "-", color="0.55", lw=0.7, label="contours: weights of equal MSE")
    for name, r in part.paths.items():
        P = r.trajectory.params
        _draw_path(ax, P, OPTIMIZER_COLOURS.get(name, None), f"{name}: {part.settings.get(name, '')}",
                   marker_size=2.5)
    ax.plot(*d.w_init, "ks", ms=7, zorder=5, label=f"start w = [{d.w_init[0]:.2f}, {d.w_init[1]:.2f}]")
    ax.plot(*opt, "*", color="gold", mec="k", ms=16, zorder=6,
            label=f"closed form (Normal Equation) w = [{opt[0]:.3f}, {opt[1]:.3f}]")
    n = len(next(iter(part.paths.values())).trajectory.iteration) - 1
    ax.set_title(f"The MSE over (intercept, slope): {n} iterations of four optimizers")
    ax.legend(loc="lower right", frameon=True, framealpha=0.92, fontsize=8)
    return fig


# ---- the chapter "When there is no closed form" ----------------------------------------------------------------

CLASS_STYLE = ({"color": "#1f77b4", "marker": "o", "label": "class 0"},
               {"color": "#ff7f0e", "marker": "^", "label": "class 1"})
NEWTON_COLOUR = "#d62728"
_GAP_FLOOR = 1e-16  # gaps at or below it are at the minimum to rounding; drawn on the floor of a log axis


def _shown_gap(gap: np.ndarray) -> np.ndarray:
    return np.maximum(np.asarray(gap, dtype=float), _GAP_FLOOR)


def _floor_note(ax: Axes, x: float = 0.015, ha: str = "left") -> None:
    # above the x axis and clear of the markers drawn on the floor itself
    ax.text(x, 0.06, f"gaps at rounding (≤ {_GAP_FLOOR:.0e}) are drawn at {_GAP_FLOOR:.0e}",
            transform=ax.transAxes, ha=ha, va="bottom", fontsize=7, color="0.35")


def _class_box(X: np.ndarray, pad: float = 0.3) -> tuple[float, float, float, float]:
    lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def _scatter_classes(ax: Axes, X: np.ndarray, y: np.ndarray, size: float = 22) -> None:
    for k, style in enumerate(CLASS_STYLE):
        pts = X[y == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=size, color=style["color"], marker=style["marker"], alpha=0.75,
                   edgecolors="white", linewidths=0.4, label=f"{style['label']} ({len(pts)} points)", zorder=3)


@_styled
def boundaries_figure(part: NoClosedFormPart) -> Figure:
    """The chapter's first figure. Left: the two classes and gd's decision boundary (w0 + w1 x1 + w2 x2 = 0, where
    P(class 1) = 1/2) after each of ``part.snapshots`` iterations at 2/L, with the minimum's (Newton's). Right: the
    log-loss against iteration (log axis), the snapshots marked."""
    from gdlab.workshop import decision_boundary

    d = part.data
    box = _class_box(d.X)
    fig, (ax_l, ax_r) = new_figure(10.0, 4.8, 1, 2, width_ratios=[1.1, 1])
    _scatter_classes(ax_l, d.X, d.y)
    colours = [_colormaps()["plasma"](v) for v in np.linspace(0.0, 0.8, len(part.snapshots))]
    for n, c in zip(part.snapshots, colours):
        w = part.weights_after(n)
        seg = decision_boundary(w, box)
        label = f"after {n:>4} iteration{'s' if n != 1 else ' '}: w = [{w[0]:5.2f}, {w[1]:5.2f}, {w[2]:5.2f}]"
        if seg is not None:
            ax_l.plot(seg[:, 0], seg[:, 1], "-", color=c, lw=1.8, label=label, zorder=4)
    opt = part.optimum
    seg = decision_boundary(opt, box)
    if seg is not None:
        ax_l.plot(seg[:, 0], seg[:, 1], "--", color="k", lw=1.5, zorder=5,
                  label=f"the minimum (Newton):  w = [{opt[0]:5.2f}, {opt[1]:5.2f}, {opt[2]:5.2f}]")
    ax_l.set_xlim(box[0], box[1])
    ax_l.set_ylim(box[2], box[3])
    ax_l.set_aspect("equal", adjustable="box")
    ax_l.set_xlabel("feature x1")
    ax_l.set_ylabel("feature x2")
    eta = _first_step(part.descent.trajectory)
    ax_l.set_title(f"the decision boundary, gd at eta = 2/L = {eta:.3g}", fontsize=10)

    tr = part.descent.trajectory
    keep = tr.iteration >= 1
    ax_r.plot(tr.iteration[keep], tr.loss[keep], "-", color="#1f77b4", lw=1.8, label="gd at 2/L: log-loss")
    for n, c in zip(part.snapshots, colours):
        ax_r.plot([n], [tr.loss[int(np.searchsorted(tr.iteration, n))]], "o", color=c, mec="k", ms=7, zorder=5)
    ax_r.plot([], [], "o", color="0.6", mec="k", ms=7, ls="none", label="the boundaries drawn on the left")
    ax_r.axhline(part.optimum_loss, color="k", ls=":", lw=1, label=f"the minimum {part.optimum_loss:.4f}")
    ax_r.axhline(float(tr.loss[0]), color="0.5", ls="-.", lw=1, label=f"at w = 0: log 2 = {tr.loss[0]:.4f}")
    ax_r.set_xscale("log")
    ax_r.set_xlim(1, tr.iteration[-1])
    ax_r.set_xlabel("iteration (log scale)")
    ax_r.set_ylabel("log-loss")
    ax_r.set_title("the log-loss against iteration", fontsize=10)
    ax_r.legend(loc="center right", fontsize=8, framealpha=0.92)
    fig.legend(*ax_l.get_legend_handles_labels(), loc="outside lower center", ncols=2,
               prop={"family": "monospace", "size": 7.5}, frameon=False)
    fig.suptitle("Logistic regression by gradient descent: the boundary after 1 to "
                 f"{part.snapshots[-1]} iterations", fontsize=12)
    return fig


def _surface_extent(points: list[np.ndarray], optimum: np.ndarray, pad: float = 0.15
                    ) -> tuple[float, float, float, float]:
    pts = np.vstack([np.atleast_2d(p) for p in points] + [np.atleast_2d(optimum)])
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    half = 0.5 * float(np.max(hi - lo)) * (1 + 2 * pad)  # a square: equal scales on both axes
    mid = (lo + hi) / 2
    return float(mid[0] - half), float(mid[0] + half), float(mid[1] - half), float(mid[1] + half)


@_styled
def log_loss_surface_figure(part: NoClosedFormPart, n_grid: int = 121) -> Figure:
    """The log-loss over (w1, w2), the intercept w0 re-fitted at each point (:func:`log_loss_surface`), with gd's
    path at 2/L and Newton's from w = 0 (each drawn at its own (w1, w2)), the minimum starred."""
    d = part.data
    P = part.descent.trajectory.params
    N = part.newton.params
    opt = part.optimum
    # a margin round the minimum too, so that its innermost ellipses are whole
    ring = opt[1:] + 0.25 * np.linalg.norm(opt[1:]) * np.array([[1, 1], [-1, -1], [1, -1], [-1, 1]])
    a, b, c, e = _surface_extent([P[:, 1:], N[:, 1:], ring], opt[1:], pad=0.04)
    w1s, w2s = np.linspace(a, b, n_grid), np.linspace(c, e, n_grid)
    F, _ = log_loss_surface(d.X, d.y, w1s, w2s)
    fig, ax = new_figure(7.4, 6.6)
    fmin = part.optimum_loss
    span = max(float(F.max()) - fmin, 1e-12)
    levels = fmin + np.geomspace(span * 2e-3, span, 13)
    cs = ax.contour(w1s, w2s, F, levels=levels, colors="0.55", linewidths=0.7)
    ax.clabel(cs, cs.levels[::3], fmt=lambda v: f"{v:.3g}", fontsize=7, inline=True)
    ax.plot([], [], "-", color="0.55", lw=0.7, label="contours: the log-loss, w0 re-fitted at each point")
    ax.plot(P[:, 1], P[:, 2], "-o", color="#1f77b4", lw=1.2, ms=1.8, zorder=3,
            label=f"gradient descent at 2/L: {part.descent.n_iter} iterations (they crowd where it crawls)")
    shown = [n for n in part.snapshots if n <= P.shape[0] - 1]
    idx = [int(np.searchsorted(part.descent.trajectory.iteration, n)) for n in shown]
    ax.plot(P[idx, 1], P[idx, 2], "o", color="#1f77b4", ms=5, zorder=4,
            label=f"gradient descent after {', '.join(map(str, shown[:-1]))} and {shown[-1]} iterations")
    for n, i in zip(shown, idx):
        if n < shown[-1]:
            ax.annotate(f"{n}", (P[i, 1], P[i, 2]), textcoords="offset points", xytext=(-4, -11), fontsize=8,
                        color="#1f77b4", ha="right")
    ax.plot(N[:, 1], N[:, 2], "-o", color=NEWTON_COLOUR, lw=1.4, ms=6, mfc="white", mew=1.6, zorder=5,
            label=f"Newton's method: {part.newton.n_iter} hops (1 to 3 labelled)")
    for k in range(1, min(4, N.shape[0])):
        ax.annotate(f"{k}", (N[k, 1], N[k, 2]), textcoords="offset points", xytext=(6, 4), fontsize=8,
                    color=NEWTON_COLOUR, fontweight="bold")
    ax.plot(*N[0, 1:], "ks", ms=7, zorder=6, label="start: w = 0 (log-loss log 2)")
    ax.plot(*opt[1:], "*", color="gold", mec="k", ms=16, zorder=7,
            label=f"minimum: w1 = {opt[1]:.3f}, w2 = {opt[2]:.3f}")
    ax.set_xlim(a, b)
    ax.set_ylim(c, e)
    ax.set_aspect("equal")
    ax.set_xlabel("weight w1 (of feature x1)")
    ax.set_ylabel("weight w2 (of feature x2)")
    ax.set_title("The log-loss over (w1, w2), and two ways down", fontsize=11)
    ax.legend(loc="lower left", fontsize=8, framealpha=0.92)
    return fig


@_styled
def logistic_learning_rate_figure(part: NoClosedFormPart) -> Figure:
    """The log-loss's learning-rate panel. Left: the gap F - F* against iteration for each of ``part.rate_runs``.
    Right: the gap after each budget of ``part.sweep`` against the step, 2/L and 2/lambda* (the Hessian's largest
    eigenvalue at the minimum) marked."""
    fig, (ax_l, ax_r) = new_figure(10.0, 5.0, 1, 2, width_ratios=[1.15, 1])
    colours = ["#9467bd", "#1f77b4", "#2ca02c", "#ff7f0e", "#d62728"]
    for (label, r), c in zip(part.rate_runs.items(), colours):
        tr = r.trajectory
        ax_l.plot(tr.iteration, _shown_gap(part.gap(tr.loss)), "-", color=c, lw=1.3, label=label)
    ax_l.set_yscale("log")
    ax_l.set_ylim(_GAP_FLOOR / 3, None)
    ax_l.set_xlim(0, max(int(r.trajectory.iteration[-1]) for r in part.rate_runs.values()))
    ax_l.set_xlabel("iteration")
    ax_l.set_ylabel("log-loss − its minimum (log scale)")
    ax_l.set_title("five constant steps from w = 0", fontsize=10)
    _floor_note(ax_l)
    sw = part.sweep
    cmap = _colormaps()["viridis"]
    top = 10.0 * float(sw.initial_loss)
    for j, n in enumerate(sw.iterations):
        col = cmap(0.85 * j / max(1, len(sw.iterations) - 1))
        gap = part.gap(sw.final_loss[:, j])
        ok = ~sw.diverged[:, j] & np.isfinite(gap)
        ax_r.plot(sw.learning_rates[ok], _shown_gap(gap[ok]), "-o", ms=3, color=col, label=f"after {n} iterations")
        if (~ok).any():
            ax_r.plot(sw.learning_rates[~ok], np.full(int((~ok).sum()), top), "x", color=col, ms=8, mew=2)
    if (sw.diverged | ~np.isfinite(sw.final_loss)).any():
        ax_r.plot([], [], "x", color="0.3", ms=8, mew=2, ls="none", label="stopped by gdlab as diverged")
    two_L = float(part.descent.curvature.stable_step)
    ax_r.axvline(two_L, color="#d62728", lw=1.6, label=f"2/L = {two_L:.3g}: the guarantee")
    ax_r.axvline(part.local_stable_step, color="#9467bd", lw=1.6, ls="--",
                 label=f"2/λ* = {part.local_stable_step:.3g}: the limit near the minimum")
    for (label, r), c in zip(part.rate_runs.items(), colours):
        ax_r.plot([float(r.learning_rate)], [0.0], "^", color=c, ms=8, mec="k", mew=0.5, clip_on=False,
                  zorder=5, transform=ax_r.get_xaxis_transform())
    ax_r.plot([], [], "^", color="0.6", mec="k", ms=8, ls="none", label="the five steps on the left")
    ax_r.set_xscale("log")
    ax_r.set_yscale("log")
    finite = _shown_gap(part.gap(sw.final_loss[np.isfinite(sw.final_loss)]))
    ax_r.set_ylim(max(_GAP_FLOOR, float(finite.min())) / 20, top * 3)
    ax_r.set_xlabel("learning rate eta (log scale)")
    ax_r.set_ylabel("log-loss − its minimum (log scale)")
    ax_r.set_title("every step of a sweep", fontsize=10)
    handles, labels = ax_l.get_legend_handles_labels()
    h2, l2 = ax_r.get_legend_handles_labels()
    fig.legend(handles + h2, labels + l2, loc="outside lower center", ncols=3, frameon=False, fontsize=8)
    fig.suptitle("The learning rate for the log-loss: 2/L is a guarantee, not the limit", fontsize=12)
    return fig


@_styled
def newton_figure(part: NoClosedFormPart, line: LinePart, line_descent: Result | None = None) -> Figure:
    """Newton against gradient descent. Left: the log-loss's gap against iteration (log axes) for gd at 2/L and at
    the fastest step of the panel, and Newton's hops. Right: least squares on the workshop's line data, where one
    Newton hop from the workshop's start lands on the Normal Equation's solution, beside gd's steps
    (``line_descent``, default the workshop's 10 iterations at eta = 0.1)."""
    fig, (ax_l, ax_r) = new_figure(10.0, 4.8, 1, 2, width_ratios=[1.1, 1])
    tr = part.descent.trajectory
    keep = tr.iteration >= 1
    ax_l.plot(tr.iteration[keep], _shown_gap(part.gap(tr.loss[keep])), "-", color="#1f77b4", lw=1.8,
              label=f"gradient descent, eta = 2/L = {_first_step(tr):.3g}")
    label, fast = list(part.rate_runs.items())[2]
    ft = fast.trajectory
    keep = ft.iteration >= 1
    ax_l.plot(ft.iteration[keep], _shown_gap(part.gap(ft.loss[keep])), "-", color="#2ca02c", lw=1.3,
              label=f"gradient descent, {label}")
    k = np.arange(part.newton.n_iter + 1)
    ax_l.plot(k[1:], _shown_gap(part.gap(part.newton.loss[1:])), "-o", color=NEWTON_COLOUR, lw=1.6, ms=6,
              mfc="white", mew=1.6, label="Newton's method (IRLS)", zorder=5)
    ax_l.set_xscale("log")
    ax_l.set_yscale("log")
    ax_l.set_ylim(_GAP_FLOOR / 3, None)
    ax_l.set_xlim(0.8, tr.iteration[-1])
    ax_l.set_xlabel("iteration (log scale)")
    ax_l.set_ylabel("log-loss − its minimum (log scale)")
    ax_l.set_title("logistic regression: a few hops against many steps", fontsize=10)
    ax_l.legend(loc="upper right", fontsize=8, framealpha=0.92)
    _floor_note(ax_l, 0.31, "left")  # between Newton's last hop and gd's descent

    d = line.data
    opt = line.closed.params
    gd = line_descent if line_descent is not None else line.descent
    G = gd.trajectory.params
    hop = part.one_hop.params
    extent = _centred_extent(opt, [G, hop])
    _contour(ax_r, d.X, d.y, opt, extent)
    _draw_path(ax_r, G, "#1f77b4", f"gradient descent: {gd.n_iter} steps at eta = {_first_step(gd.trajectory):g}",
               marker_size=3)
    ax_r.annotate("", xy=hop[1], xytext=hop[0], zorder=6,
                  arrowprops={"arrowstyle": "-|>", "color": NEWTON_COLOUR, "lw": 2.0, "shrinkA": 0, "shrinkB": 0})
    ax_r.plot([], [], "-", color=NEWTON_COLOUR, lw=2, label="Newton: one hop")
    ax_r.plot(*hop[0], "ks", ms=7, zorder=5, label=f"start w = [{hop[0][0]:.2f}, {hop[0][1]:.2f}]")
    ax_r.plot(*opt, "*", color="gold", mec="k", ms=16, zorder=7,
              label=f"Normal Equation w = [{opt[0]:.3f}, {opt[1]:.3f}]")
    ax_r.set_title("least squares: one Newton hop lands on the minimum", fontsize=10)
    ax_r.legend(loc="lower right", fontsize=8, framealpha=0.92)
    fig.suptitle("Newton's method against gradient descent", fontsize=12)
    return fig


# ---- figures of the command line -----------------------------------------------------------------------------

@_styled
def sweep_heatmap_figure(sw: SweepResult) -> Figure:
    """Heatmap of log10(final MSE) over (learning rate, iterations); diverged cells crossed; 2/L drawn."""
    from matplotlib.colors import LogNorm

    a, b = sw.final_loss.shape
    lr = sw.learning_rates
    if a > 1:
        mid = np.sqrt(lr[:-1] * lr[1:])
        x_edges = np.concatenate([[lr[0] ** 2 / mid[0]], mid, [lr[-1] ** 2 / mid[-1]]])
    else:
        x_edges = np.array([lr[0] / 1.5, lr[0] * 1.5])
    fig, ax = new_figure(max(7.0, 0.3 * a + 3), max(3.6, 0.45 * b + 2.6))
    Z = np.where(sw.diverged | ~np.isfinite(sw.final_loss), np.nan, sw.final_loss).T
    finite = Z[np.isfinite(Z) & (Z > 0)]
    norm = LogNorm(vmin=finite.min(), vmax=finite.max()) if finite.size and finite.max() > finite.min() else None
    y_edges = np.arange(b + 1) - 0.5
    cmap = _colormaps()["viridis_r"].with_extremes(bad="0.88")
    mesh = ax.pcolormesh(x_edges, y_edges, Z, cmap=cmap, norm=norm, shading="flat")
    fig.colorbar(mesh, ax=ax, label="MSE after the run (log colour scale)")
    for i in range(a):
        for j in range(b):
            if sw.diverged[i, j]:
                ax.plot(lr[i], j, "x", color="#d62728", ms=8, mew=2)
    ax.plot([], [], "x", color="#d62728", ms=8, mew=2, ls="none", label="diverged (grey cell)")
    if math.isfinite(sw.stable_step):
        ax.axvline(sw.stable_step, color="#d62728", lw=2, label=f"2/L = {sw.stable_step:.3g}: larger steps diverge")
        ax.axvline(sw.best_step, color="k", lw=1.5, ls="--", label=f"2/(L+mu) = {sw.best_step:.3g}: best step")
    ax.set_xscale("log")
    ax.set_xlim(x_edges[0], x_edges[-1])
    ax.set_yticks(np.arange(b), [str(n) for n in sw.iterations])
    ax.set_xlabel("learning rate eta (log scale)")
    ax.set_ylabel("iterations")
    ax.set_title(f"Final MSE of {sw.optimizer} over learning rate and iterations")
    ax.grid(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=3, frameon=False, fontsize=8.5)
    return fig


@_styled
def loss_curve_figure(result: Result, title: str | None = None) -> Figure:
    """Loss (and gap to the optimum, when known) against iteration, log scale."""
    tr = result.trajectory
    if tr is None:
        raise ValueError("this result has no trajectory to draw; fit with gdlab.descend (the closed form has none).")
    fig, ax = new_figure(7.0, 4.0)
    loss = np.where(np.isfinite(tr.loss), tr.loss, np.nan)
    if tr.gap is not None and np.any(tr.gap > 0):
        g = np.where(tr.gap > 0, tr.gap, np.nan)
        ax.plot(tr.iteration, g, "-", lw=2, label="MSE - minimum MSE (gap)")
        ax.set_ylabel("gap to the minimum (log scale)")
    else:
        ax.plot(tr.iteration, loss, "-", lw=2, label="loss")
        ax.set_ylabel("loss (log scale)")
    steps = tr.learning_rate[np.isfinite(tr.learning_rate)]
    if result.curvature is not None and tr.gap is not None and steps.size and result.method == "gd" \
            and np.allclose(steps, steps[0]) and tr.gap[0] > 0:
        rate = result.curvature.rate(float(steps[0]))
        if rate < 1:
            ax.plot(tr.iteration, tr.gap[0] * rate ** (2.0 * tr.iteration), "--", color="0.4", lw=1,
                    label=f"predicted: x {rate:.4f}² per iteration")
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    if not result.converged and len(tr.loss) > 1 and np.isfinite(tr.loss[-1]):
        # a fit that stopped short: say on the plot how far it is, and how little the loss still moved (on a log
        # axis of the loss itself a change of 1e-6 is a flat line)
        tail = max(1, len(tr.loss) // 10)
        change = abs(float(tr.loss[-1 - tail] - tr.loss[-1])) / max(abs(float(tr.loss[-1])), np.finfo(float).tiny)
        words = [f"the loss changed by {change:.2g} (relative) over the last {int(tr.iteration[-1] - tr.iteration[-1 - tail])} iterations"]
        if result.optimum_loss is not None and result.optimum_loss > 0:
            words.insert(0, f"not converged: {float(tr.loss[-1] - result.optimum_loss) / result.optimum_loss:.2g}"
                            " of the minimum away")
        ax.text(0.02, 0.04, "\n".join(words), transform=ax.transAxes, fontsize=9, color="#b00020",
                va="bottom", ha="left")
    short = result.extra.get("summary", result.message).split(";")[0]
    ax.set_title(title or f"{result.method}: {short}"[:90])
    ax.legend(loc="upper right", frameon=False)
    return fig


@_styled
def fit_line_figure(X: np.ndarray, y: np.ndarray, result: Result, feature: str = "x", target: str = "y") -> Figure:
    """The data (one feature) and the fitted line."""
    x = np.asarray(X, dtype=float).reshape(len(X), -1)[:, 0]
    fig, ax = new_figure(7.0, 4.2)
    step = max(1, len(x) // 5000)  # draw at most ~5000 points
    ax.scatter(x[::step], np.asarray(y)[::step], s=10, alpha=0.5, color="#d62728", label="data")
    xs = np.array([x.min(), x.max()])
    coef = float(np.ravel(result.coef)[0])
    ax.plot(xs, result.intercept + coef * xs, "-", color="#1f77b4", lw=2,
            label=f"fit: {target} = {result.intercept:.4g} + {coef:.4g} {feature}")
    ax.set_xlabel(feature)
    ax.set_ylabel(target)
    ax.set_title("The data and the fitted line")
    ax.legend(loc="best", frameon=False)
    return fig


# ---- the animation ---------------------------------------------------------------------------------------------

@_styled
def descent_animation(line: LinePart, path: Any, *, result: Result | None = None, frame_ms: int = 350,
                      dpi: int = 100) -> Path:
    """Animated GIF of gradient descent on the line data: the line (left) and the path on the contour (right).

    One frame per recorded iteration of ``result`` (default: the workshop's 10 iterations at eta = 0.1), the last
    one held longer. Written to a temporary name and renamed.
    """
    from PIL import Image

    from gdlab._io import atomic_path

    r = result if result is not None else line.descent
    d = line.data
    P = r.trajectory.params
    opt = line.closed.params
    extent = _centred_extent(opt, [d.w_init, P])
    fig, (ax_l, ax_r) = new_figure(9.0, 3.8, 1, 2)
    x_new = np.array([0.0, 2.0])
    ax_l.scatter(d.X[:, 0], d.y, color="red", s=12, zorder=3, label="data")
    ax_l.plot(x_new, opt[0] + opt[1] * x_new, "k--", lw=1.2, label="Normal Equation")
    (fit_line,) = ax_l.plot(x_new, P[0, 0] + P[0, 1] * x_new, "-", color="#1f77b4", lw=2.2, label="GD line")
    ax_l.set_xlim(d.axis[0], d.axis[1])
    # the workshop's axes [0, 2, 8, 22] would hide the first lines (the random start is far below the data)
    ax_l.set_ylim(*_lines_ylim(d.axis, [tuple(p) for p in P], x_new))
    ax_l.set_xlabel("x")
    ax_l.set_ylabel("y")
    ax_l.legend(loc="upper left", fontsize=8, frameon=False)
    _contour(ax_r, d.X, d.y, opt, extent, labels=False)
    ax_r.plot(*opt, "*", color="gold", mec="k", ms=13, zorder=5, label="minimum (Normal Equation)")
    ax_r.legend(loc="lower right", fontsize=8, framealpha=0.9)
    (trail,) = ax_r.plot(P[:1, 0], P[:1, 1], "-o", color="#1f77b4", ms=3.5, lw=1.4, zorder=4)
    title = fig.suptitle("", fontsize=11)
    eta = _first_step(r.trajectory)
    frames: list[Any] = []
    palette = None

    def show(t: int) -> None:
        fit_line.set_ydata(P[t, 0] + P[t, 1] * x_new)
        trail.set_data(P[: t + 1, 0], P[: t + 1, 1])
        title.set_text(f"gradient descent, eta = {eta:g}: iteration {int(r.trajectory.iteration[t])}   "
                       f"MSE = {r.trajectory.loss[t]:.3f}   w = [{P[t, 0]:.2f}, {P[t, 1]:.2f}]")

    show(0)
    fig.set_dpi(dpi)  # (9 inches wide: 900 pixels at the default)
    # one layout for every frame: only the data and the one-line title change, so the Axes stay where they are
    with _laid_out(fig, fig.dpi):
        for t in range(len(P)):
            show(t)
            fig.canvas.draw()
            rgba = np.asarray(fig.canvas.buffer_rgba())
            rgb = Image.fromarray(np.ascontiguousarray(rgba[..., :3]))
            if palette is None:  # one palette for every frame: colours stay put and the file stays small
                palette = rgb.quantize(colors=128, method=Image.Quantize.FASTOCTREE)
            frames.append(rgb.quantize(palette=palette, dither=Image.Dither.NONE))
    durations = [frame_ms] * (len(frames) - 1) + [frame_ms * 6]
    path = Path(path)
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0,
                       optimize=False)
    return path


# ---- eigen-directions and stochastic noise (issue 14, items 2 and 4) ---------------------------------------------

_DIRECTION_COLOURS = ("#2ca02c", "#d62728")  # flat (mu), steep (L)


@_styled
def eigen_directions_figure(part: EigenPart, line: LinePart) -> Figure:
    """Left: the contour with the Hessian's two eigen-directions drawn from the minimum and gd's path. Right: the
    error's component along each, |c_i(t)|, measured (markers) and predicted |1 - eta lam_i|^t |c_i(0)| (lines)."""
    d = line.data
    opt = part.optimum
    (label0, run0), (label1, run1) = list(part.gd_runs.items())[:2]
    fig, (ax, bx) = new_figure(11.0, 4.8, 1, 2)
    extent = _centred_extent(opt, [d.w_init, run0.trajectory.params])
    _contour(ax, d.X, d.y, opt, extent)
    P = run0.trajectory.params
    _draw_path(ax, P, OPTIMIZER_COLOURS["gd"], f"gd, {label0}", marker_size=2.5)
    ax.plot(*d.w_init, "ks", ms=6, zorder=5, label="start")
    ax.plot(*opt, "*", color="gold", mec="k", ms=14, zorder=6, label="minimum")
    span = min(extent[1] - extent[0], extent[3] - extent[2]) * 0.42
    names = ("flat: lambda = mu", "steep: lambda = L")
    for i, (colour, name) in enumerate(zip(_DIRECTION_COLOURS, names)):
        v = part.eigenvectors[:, i]
        ax.annotate("", xy=(opt[0] + span * v[0], opt[1] + span * v[1]), xytext=(opt[0], opt[1]),
                    arrowprops={"arrowstyle": "-|>", "color": colour, "lw": 2.2}, zorder=7)
        ax.plot([], [], "-", color=colour, lw=2.2,
                label=f"{name} = {part.eigenvalues[i]:.3g}: x {abs(1 - run0.learning_rate * part.eigenvalues[i]):.3f}"
                      " per step")
    ax.set_title("The Hessian's eigen-directions at the minimum", fontsize=10.5)
    ax.legend(loc="lower left", fontsize=7.5, framealpha=0.92)
    for run, style, label in ((run0, "-", label0), (run1, "--", label1)):
        C = np.abs(part.components(run))
        t = run.trajectory.iteration
        eta = float(run.learning_rate)
        for i, colour in enumerate(_DIRECTION_COLOURS):
            factor = abs(1 - eta * part.eigenvalues[i])
            shown = np.where(C[:, i] > 1e-14, C[:, i], np.nan)
            bx.plot(t, shown, "o", color=colour, ms=3.2 if style == "-" else 2.4,
                    mfc=colour if style == "-" else "white")
            bx.plot(t, C[0, i] * factor ** t, style, color=colour, lw=1.1,
                    label=f"{('flat', 'steep')[i]}, {label}: x {factor:.3f}")
    bx.set_yscale("log")
    bx.set_xlabel("iteration")
    bx.set_ylabel("|error along the direction|")
    bx.set_title("Each component shrinks by |1 - eta lambda| per step\n(markers: measured; lines: predicted)",
                 fontsize=10.5)
    bx.legend(loc="lower left", fontsize=7.5, framealpha=0.92)
    return fig


@_styled
def eigen_rates_figure(part: EigenPart, line: LinePart, scaling: ScalingPart | None = None,
                       reduction: float = 1e-8) -> Figure:
    """Left: |1 - eta lam| against eta for the flat and steep directions; their maximum is the rate, lowest at
    2/(L + mu). Right: iterations to shrink the gap by ``reduction`` at the best step, against the condition
    number, with the data sets of the report marked."""
    lam = part.eigenvalues
    mu, L = float(lam[0]), float(lam[-1])
    fig, (ax, bx) = new_figure(11.0, 4.4, 1, 2)
    etas = np.linspace(0, 2.3 / L, 400)
    for i, (colour, name) in enumerate(zip(_DIRECTION_COLOURS, ("flat", "steep"))):
        ax.plot(etas, np.abs(1 - etas * lam[i]), color=colour, lw=1.6, label=f"{name}: |1 - eta {lam[i]:.3g}|")
    ax.plot(etas, np.max(np.abs(1 - np.outer(etas, lam)), axis=1), "k:", lw=1.4,
            label="rate: the larger of the two")
    best, best_rate = 2 / (L + mu), (L - mu) / (L + mu)
    ax.axvline(best, color="#2ca02c", ls="--", lw=1)
    ax.axvline(2 / L, color="#d62728", ls="-", lw=1)
    ax.plot([best], [best_rate], "o", color="k", ms=5, zorder=5)
    ax.annotate(f"2/(L+mu) = {best:.3f}\nrate {best_rate:.3f}", (best, best_rate), xytext=(-12, 26),
                textcoords="offset points", ha="right", fontsize=8, arrowprops={"arrowstyle": "-", "lw": 0.6})
    ax.annotate(f"2/L = {2 / L:.3f}: rate 1", (2 / L, 1.0), xytext=(-8, 30), textcoords="offset points", fontsize=8,
                ha="right", arrowprops={"arrowstyle": "-", "lw": 0.6})
    ax.axhline(1.0, color="0.6", lw=0.8)
    ax.set_ylim(0, 1.6)
    ax.set_xlim(0, etas[-1])
    ax.set_xlabel("learning rate eta")
    ax.set_ylabel("error kept per step")
    ax.set_title("Why the best constant step is 2/(L+mu)", fontsize=10.5)
    ax.legend(loc="upper left", fontsize=7.5, framealpha=0.92, ncol=1)
    kappa = np.geomspace(1.0001, 1e8, 300)
    rate = (kappa - 1) / (kappa + 1)
    bx.plot(kappa, np.log(reduction) / (2 * np.log(rate)), "k-", lw=1.4,
            label=f"predicted: ln({reduction:g}) / (2 ln((κ-1)/(κ+1))) ≈ κ ln(1/{reduction:g})/4")
    marks = [(line.curvature.condition_number, "the workshop's line")]
    if scaling is not None:
        for name, (r_raw, r_std) in scaling.real.items():
            marks += [(r_raw.curvature.condition_number, f"{name}, raw"),
                      (r_std.curvature.condition_number, f"{name}, standardised")]
    for k, name in marks:
        n = math.log(reduction) / (2 * math.log((k - 1) / (k + 1)))
        bx.plot([k], [n], "o", ms=6, zorder=5)
        bx.annotate(f"{name}\nκ = {k:.3g}: {n:.3g}", (k, n), xytext=(6, -14), textcoords="offset points",
                    fontsize=7.5)
    bx.set_xscale("log")
    bx.set_yscale("log")
    bx.set_xlabel("condition number κ = L/mu")
    bx.set_ylabel(f"iterations to shrink the gap {1 / reduction:.0e}-fold")
    bx.set_title("A large condition number makes gd crawl\n(gd at its best constant step)", fontsize=10.5)
    bx.legend(loc="upper left", fontsize=7.5, framealpha=0.92)
    return fig


def momentum_component(eta: float, beta: float, lam: float, c0: float, n: int) -> np.ndarray:
    """(n + 1,) the error along one eigen-direction under heavy-ball momentum from rest: (c, v) <- A (c, v) with
    A = [[1 - eta lam, -eta beta], [lam, beta]] (v' = lam c + beta v, c' = c - eta v')."""
    A = np.array([[1 - eta * lam, -eta * beta], [lam, beta]])
    state = np.array([c0, 0.0])
    out = [c0]
    for _ in range(n):
        state = A @ state
        out.append(state[0])
    return np.array(out)


@_styled
def momentum_region_figure(part: EigenPart, line: LinePart) -> Figure:
    """Left: heavy-ball momentum's rate (spectral radius) over (eta, beta) on the workshop's line: stable inside
    the 1 contour, critical damping of the flat direction on the dashed curve. Right: the flat direction's error
    under momentum at the workshop's eta for several beta, measured (markers) and from the recurrence (lines)."""
    from gdlab.workshop import MOMENTUM_BETA

    etas, betas, radius = part.region
    lam = part.eigenvalues
    mu, L = float(lam[0]), float(lam[-1])
    fig, (ax, bx) = new_figure(11.0, 4.8, 1, 2)
    shown = np.where(radius < 1, radius, np.nan)
    im = ax.pcolormesh(etas, betas, shown, cmap="viridis_r", shading="auto", vmin=0, vmax=1)
    ax.contourf(etas, betas, np.where(radius >= 1, 1.0, np.nan), levels=[0.5, 1.5], colors=["#f4cccc"])
    ax.contour(etas, betas, radius, levels=[1.0], colors="#d62728", linewidths=1.4)
    cb = fig.colorbar(im, ax=ax, pad=0.01)
    cb.set_label("error kept per step (spectral radius)")
    bb = np.linspace(0, 0.99, 200)
    ax.plot((1 - np.sqrt(bb)) ** 2 / mu, bb, "w--", lw=1.3)
    ax.plot((1 + np.sqrt(bb)) ** 2 / L, bb, "w:", lw=1.3)
    hb = line.curvature.heavy_ball
    ax.plot([hb["learning_rate"]], [hb["beta"]], "*", color="gold", mec="k", ms=13, zorder=6)
    ax.plot([part.momentum_eta], [MOMENTUM_BETA], "o", color="w", mec="k", ms=7, zorder=6)
    ax.plot([part.momentum_eta], [part.critical_beta], "D", color="w", mec="k", ms=6, zorder=6)
    ax.set_xlim(0, etas[-1])
    ax.set_ylim(0, betas[-1])
    ax.set_xlabel("learning rate eta")
    ax.set_ylabel("momentum beta")
    ax.set_title("Momentum's stability region on the workshop's line", fontsize=10.5)
    handles = [
        ax.plot([], [], "-", color="#d62728", lw=1.4, label="rate 1: eta = 2(1 + beta)/L (pink: diverges)")[0],
        ax.plot([], [], "--", color="0.3", lw=1.3, label="flat direction critically damped")[0],
        ax.plot([], [], ":", color="0.3", lw=1.3, label="steep direction critically damped")[0],
        ax.plot([], [], "*", color="gold", mec="k", ms=10, label=f"Polyak's heavy ball (rate {hb['rate']:.3f})")[0],
        ax.plot([], [], "o", color="w", mec="k", ms=6, label=f"eta {part.momentum_eta:g}, beta "
                f"{MOMENTUM_BETA:g} (the default)")[0],
        ax.plot([], [], "D", color="w", mec="k", ms=5, label=f"eta {part.momentum_eta:g}, beta "
                f"{part.critical_beta:.3g} (critical)")[0],
    ]
    ax.legend(handles=handles, loc="upper right", fontsize=7, framealpha=0.92)
    colours = ["#1f77b4", "#9467bd", "#2ca02c", "#ff7f0e"]
    for (label, run), colour in zip(part.momentum_runs.items(), colours):
        C = part.components(run)[:, 0]
        t = run.trajectory.iteration
        beta = float(run.extra["optimizer"].hyperparameters.get("beta", 0.0)) if run.extra.get("optimizer") else 0.0
        pred = momentum_component(part.momentum_eta, beta, mu, C[0], len(t) - 1)
        bx.plot(t, C / C[0], "o", color=colour, ms=2.6)
        rate = line.curvature.spectral_radius(part.momentum_eta, "momentum", beta)
        bx.plot(t, pred / C[0], "-", color=colour, lw=1.1, label=f"{label}: rate {rate:.3f}")
    bx.axhline(0, color="0.5", lw=0.8)
    bx.set_xlabel("iteration")
    bx.set_ylabel("error along the flat direction / its start")
    bx.set_title(f"Damping the flat direction (eta = {part.momentum_eta:g})\n(markers: measured; lines: "
                 "the 2 x 2 recurrence)", fontsize=10.5)
    bx.legend(loc="upper right", fontsize=7.5, framealpha=0.92)
    return fig



@_styled
def noise_band_figure(part: NoisePart, line: LinePart) -> Figure:
    """Left: mini-batch paths of many seeds on the contour around full-batch gd with as many updates. Right: the
    MSE above its minimum against epoch: the seeds' 10-90% band and median at a constant step and at a decaying
    one, full-batch gd, and the constant step's noise floor (formula)."""
    from gdlab.workshop import noise_floor

    d = line.data
    opt = line.closed.params
    band, dec, full = part.band, part.decaying, part.full_batch
    m = d.X.shape[0]
    n = m // band.batch_size
    P_full = full.trajectory.params[::n]
    fig, (ax, bx) = new_figure(11.0, 4.9, 1, 2)
    extent = _centred_extent(opt, [d.w_init, P_full, band.params[:, :, :].reshape(-1, 2)], pad=0.05)
    _contour(ax, d.X, d.y, opt, extent)
    for P in band.params:
        ax.plot(P[:, 0], P[:, 1], "-", color="#ff7f0e", lw=0.5, alpha=0.25, zorder=2)
    ax.plot([], [], "-", color="#ff7f0e", lw=1.2, label=f"{band.params.shape[0]} seeds, batches of "
            f"{band.batch_size}, eta = {band.learning_rate:g}")
    ax.plot(P_full[:, 0], P_full[:, 1], "-o", color=OPTIMIZER_COLOURS["gd"], lw=1.3, ms=2.5, zorder=3,
            label=f"full batch, eta = {band.learning_rate:g}, every {n} updates")
    ax.plot(*d.w_init, "ks", ms=6, zorder=5, label="start")
    ax.plot(*opt, "*", color="gold", mec="k", ms=14, zorder=6, label="minimum")
    ax.set_title(f"One point per epoch ({n} updates of a batch of {band.batch_size})", fontsize=10.5)
    ax.legend(loc="lower left", fontsize=7.5, framealpha=0.92)
    epochs = np.arange(band.loss.shape[1])
    f_star = part.optimum_loss
    for runs, colour, name in ((band, "#ff7f0e", f"constant eta = {band.learning_rate:g}"),
                               (dec, "#9467bd", f"decaying eta_t = 1/(alpha (t0 + t)), t0 = "
                                                f"{part.decay['t0']:.0f} updates")):
        lo, hi = runs.quantiles((0.1, 0.9), optimum_loss=f_star)
        bx.fill_between(epochs, np.maximum(lo, 1e-12), hi, color=colour, alpha=0.25, lw=0)
        bx.plot(epochs, np.mean(runs.loss - f_star, axis=0), "-", color=colour, lw=1.5,
                label=f"{name}: mean, 10-90% of seeds")
    bx.plot(epochs, full.trajectory.loss[::n] - f_star, "-", color=OPTIMIZER_COLOURS["gd"], lw=1.3,
            label="full batch, as many updates")
    floor = noise_floor(d.X, d.y, band.learning_rate, band.batch_size)
    bx.axhline(floor, color="k", ls="--", lw=1, label=f"noise floor of the constant step (formula, a mean): "
               f"{floor:.3g}")
    bx.set_yscale("log")
    bx.set_ylim(max(1e-7, floor / 1e3), None)
    bx.set_xlabel("epoch (one pass over the 50 points)")
    bx.set_ylabel("MSE above its minimum")
    bx.set_title("A constant step stalls at a noise floor; a decaying one goes on", fontsize=10.5)
    bx.legend(loc="upper right", fontsize=7.5, framealpha=0.92)
    return fig


@_styled
def noise_floor_figure(part: NoisePart, line: LinePart) -> Figure:
    """Left and middle: the measured floor (mean over seeds and epochs, +-2 standard errors) against the batch size
    and against the step, with the formula. Right: the batch-size trade-off: the seeds' mean MSE above its minimum
    against epoch for several B at one step, each with its floor."""
    from gdlab.workshop import noise_floor

    d = line.data
    m = d.X.shape[0]
    f_star = part.optimum_loss
    fig, (ax, cx, bx) = new_figure(13.0, 4.5, 1, 3)
    rows = part.floors
    eta_b = rows[0]["learning_rate"]
    by_b = [r for r in rows if r["learning_rate"] == eta_b]
    B_ref = rows[-1]["batch_size"]
    by_eta = [r for r in rows if r["batch_size"] == B_ref]
    for axis, series, key, colour, grid, fixed in (
            (ax, by_b, "batch_size", "#1f77b4", np.array([b for b in range(1, m) if m % b == 0]),
             f"eta = {eta_b:g}"),
            (cx, by_eta, "learning_rate", "#d62728", np.geomspace(0.005, 0.15, 40), f"B = {B_ref}")):
        xs = [r[key] for r in series]
        axis.errorbar(xs, [r["measured"] for r in series], yerr=[2 * r["standard_error"] for r in series], fmt="o",
                      color=colour, ms=5, capsize=3, label=f"measured ({part.floor_seeds} seeds), ±2 s.e.")
        ys = [noise_floor(d.X, d.y, eta_b, int(g)) if key == "batch_size" else noise_floor(d.X, d.y, g, B_ref)
              for g in grid]
        axis.plot(grid, ys, "-", color=colour, lw=1.1, label="formula (reshuffled epochs)")
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_ylabel("noise floor: mean MSE above its minimum")
        axis.legend(loc="lower left" if key == "batch_size" else "upper left", fontsize=7.5, framealpha=0.92)
        axis.set_title(f"Against the {'batch size' if key == 'batch_size' else 'step'} ({fixed})", fontsize=10.5)
    ax.set_xlabel("batch size B (rows per update)")
    cx.set_xlabel("learning rate eta")
    colours = {1: "#d62728", 5: "#ff7f0e", 25: "#2ca02c"}
    for b, runs in part.tradeoff.items():
        mean = np.mean(runs.loss - f_star, axis=0)
        epochs = np.arange(mean.size)
        c = colours.get(b, None)
        bx.plot(epochs, mean, "-", color=c, lw=1.5, label=f"B = {b}: {m // b} updates per epoch")
        bx.axhline(noise_floor(d.X, d.y, runs.learning_rate, b), color=c, ls="--", lw=0.9)
    full = part.full_batch
    epochs = np.arange(next(iter(part.tradeoff.values())).loss.shape[1])
    bx.plot(epochs, full.trajectory.loss[: epochs.size] - f_star, "-", color=OPTIMIZER_COLOURS["gd"], lw=1.5,
            label=f"full batch (B = {m}): 1 update per epoch")
    bx.set_yscale("log")
    bx.set_xlabel("epoch (every row read once)")
    bx.set_ylabel("MSE above its minimum (mean of seeds)")
    bx.set_title(f"The batch-size trade-off (eta = {part.band.learning_rate:g})\ndashed: each B's floor",
                 fontsize=10.5)
    bx.legend(loc="upper right", fontsize=7.5, framealpha=0.92)
    return fig
