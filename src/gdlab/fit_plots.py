"""Figures of one classifier's fit (``gdlab fit --loss log_loss --report``): the objective against iteration, the
confusion matrix on the data fitted, and the decision boundary over two features with the probabilities behind.

Each function takes the numbers it draws (the trajectory, a matrix of counts, the model's predictions on a grid)
and returns a :class:`matplotlib.figure.Figure` on its own Agg canvas, in the style of :mod:`gdlab.plots`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from gdlab.plots import _styled, new_figure

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from gdlab.result import Result

__all__ = ["objective_figure", "confusion_figure", "decision_boundary_figure", "confusion_matrix", "CLASS_COLOURS"]

#: one colour per class (matplotlib's tab10), the same in the confusion matrix's labels and the boundary's points
CLASS_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                 "#bcbd22", "#17becf")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "*")
#: the most points a scatter draws (every k-th row beyond it)
MAX_POINTS = 4000


def _colour(k: int) -> str:
    return CLASS_COLOURS[k % len(CLASS_COLOURS)]


def confusion_matrix(codes: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts C[i, j] of rows of class i predicted as class j (scikit-learn's ``confusion_matrix`` layout)."""
    codes = np.asarray(codes, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    return np.bincount(codes * n_classes + predicted, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


@_styled
def objective_figure(result: Result, optimum: float | None = None, objective: str = "objective") -> Figure:
    """The objective against iteration: its gap to ``optimum`` (Newton's minimum) on a log axis when given, else the
    objective itself. Gaps at or below zero (the minimum reached to rounding) are not drawn; the title says how
    the run ended."""
    tr = result.trajectory
    if tr is None or len(tr) < 1:
        raise ValueError("this result has no trajectory to draw; fit with gdlab.descend.")
    fig, ax = new_figure(7.0, 4.0)
    loss = np.where(np.isfinite(tr.loss), tr.loss, np.nan)
    if optimum is not None:
        gap = loss - optimum
        shown = np.where(gap > 0, gap, np.nan)
        ax.plot(tr.iteration, shown, "-", lw=2, color="#1f77b4")
        ax.set_ylabel("objective - its minimum (log scale)")
        ax.set_yscale("log")
        last = float(loss[-1] - optimum) if np.isfinite(loss[-1]) else float("nan")
        words = (f"last gap: {last:.3g}" if last > 0 else
                 "last gap: 0 to rounding (not drawn on the log axis)")
        ax.text(0.98, 0.96, f"minimum (Newton's method) {optimum:.10g}\n{words}", transform=ax.transAxes,
                ha="right", va="top", fontsize=8.5, color="0.25",
                bbox={"boxstyle": "round", "fc": "white", "ec": "0.8", "alpha": 0.9})
    else:
        ax.plot(tr.iteration, loss, "-", lw=2, color="#1f77b4")
        ax.set_ylabel(objective)
        if np.all(loss[np.isfinite(loss)] > 0):
            ax.set_yscale("log")
            ax.set_ylabel(f"{objective} (log scale)")
    ax.set_xlabel("iteration")
    short = result.extra.get("summary", result.message).split(";")[0].split(" (")[0]
    ax.set_title(f"{result.method}: {short}"[:90])
    fig.text(0.01, 0.0, objective, fontsize=8, color="0.35", ha="left", va="bottom")
    return fig


@_styled
def confusion_figure(matrix: np.ndarray, class_names: list[str]) -> Figure:
    """The confusion matrix: rows the true classes, columns the predicted ones, each cell its count and its share
    of the true class's rows; the diagonal (right) in green, the rest in red."""
    matrix = np.asarray(matrix)
    k = len(class_names)
    size = min(7.0, 2.6 + 0.75 * k)
    fig, ax = new_figure(size + 0.6, size)
    rows = np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    share = matrix / rows
    colours = np.ones((k, k, 3))
    right, wrong = np.array([0.17, 0.63, 0.17]), np.array([0.84, 0.15, 0.16])
    for i in range(k):
        for j in range(k):
            tint = right if i == j else wrong
            colours[i, j] = 1.0 - share[i, j] * (1.0 - tint) * 0.85
    ax.imshow(colours, interpolation="nearest")
    for i in range(k):
        for j in range(k):
            ax.text(j, i, f"{matrix[i, j]:,}\n{100 * share[i, j]:.0f}%", ha="center", va="center",
                    fontsize=9 if k <= 6 else 7, color="black")
    ax.set_xticks(range(k), [str(c) for c in class_names], rotation=30 if k > 3 else 0,
                  ha="right" if k > 3 else "center")
    ax.set_yticks(range(k), [str(c) for c in class_names])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    total = int(matrix.sum())
    correct = int(np.trace(matrix))
    ax.set_title(f"{correct:,} of {total:,} rows right (accuracy {correct / max(total, 1):.4f})")
    return fig


def _grid(X: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, tuple[float, float, float, float]]:
    lo, hi = X.min(axis=0), X.max(axis=0)
    pad = 0.06 * np.where(hi > lo, hi - lo, 1.0)
    lo, hi = lo - pad, hi + pad
    g0, g1 = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    G0, G1 = np.meshgrid(g0, g1)
    return G0, G1, (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]))


@_styled
def decision_boundary_figure(X: np.ndarray, codes: np.ndarray, class_names: list[str], feature_names: list[str],
                             predict: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray | None]],
                             n_grid: int = 300) -> Figure:
    """The data over its two features and the model's classes across the plane.

    ``predict(points)`` takes (n, 2) points and returns (the index of each point's class, the (n, K) class
    probabilities or None). With probabilities the background shows them: for two classes the probability of the
    second, on a blue-red scale with its colour bar; for more, each point of the plane in the colour of its class,
    paler where that class's probability is lower. Without them (hinge, perceptron) the background is the predicted
    class. The black line is the decision boundary (where the predicted class changes)."""
    from matplotlib.colors import LinearSegmentedColormap, to_rgb
    from matplotlib.lines import Line2D

    X = np.asarray(X, dtype=float)
    codes = np.asarray(codes, dtype=np.int64)
    k = len(class_names)
    G0, G1, extent = _grid(X, n_grid)
    points = np.column_stack([G0.ravel(), G1.ravel()])
    index, proba = predict(points)
    index = np.asarray(index).reshape(G0.shape)
    fig, ax = new_figure(7.6, 5.6)
    origin = {"origin": "lower", "extent": extent, "aspect": "auto", "interpolation": "bilinear"}
    if proba is not None and k == 2:
        cmap = LinearSegmentedColormap.from_list("classes", [_colour(0), "#ffffff", _colour(1)])
        image = ax.imshow(np.asarray(proba)[:, 1].reshape(G0.shape), cmap=cmap, vmin=0.0, vmax=1.0, alpha=0.55,
                          **origin)
        bar = fig.colorbar(image, ax=ax, shrink=0.85, pad=0.02)
        bar.set_label(f"P(class = {class_names[1]})")
        shading = f"shading: P({class_names[1]})"
    else:
        base = np.array([to_rgb(_colour(c)) for c in range(k)])
        strength = np.ones(G0.shape) if proba is None else np.asarray(proba).max(axis=1).reshape(G0.shape)
        # paler where the predicted class is less sure (1/K: no class preferred, white)
        weight = 0.45 * np.clip((strength - 1.0 / k) / (1.0 - 1.0 / k), 0.0, 1.0) if proba is not None else 0.22
        rgb = 1.0 - np.asarray(weight)[..., None] * (1.0 - base[index])
        ax.imshow(rgb, **origin)
        shading = ("shading: the predicted class, paler where its probability is lower" if proba is not None else
                   "shading: the predicted class (this loss gives classes, no probabilities)")
    if proba is not None and k == 2:  # the smooth line P = 1/2 (eta = 0), not the grid's staircase
        p1 = np.asarray(proba)[:, 1].reshape(G0.shape)
        if p1.min() < 0.5 < p1.max():
            ax.contour(G0, G1, p1, levels=[0.5], colors="black", linewidths=1.4)
    elif np.any(index != index.flat[0]):
        ax.contour(G0, G1, index, levels=np.arange(k - 1) + 0.5, colors="black", linewidths=1.4)
    step = max(1, len(X) // MAX_POINTS)
    handles = []
    for c in range(k):
        pts = X[::step][codes[::step] == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=16, color=_colour(c), marker=_MARKERS[c % len(_MARKERS)],
                   edgecolors="white", linewidths=0.4, alpha=0.85, zorder=3)
        handles.append(Line2D([], [], ls="none", marker=_MARKERS[c % len(_MARKERS)], color=_colour(c),
                              label=f"{class_names[c]} ({int(np.sum(codes == c)):,} rows)"))
    handles.append(Line2D([], [], color="black", lw=1.4, label="decision boundary"))
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel(feature_names[0])
    ax.set_ylabel(feature_names[1])
    ax.grid(False)
    drawn = "" if step == 1 else f"; every {step}th row drawn"
    fig.suptitle(f"The classes over {feature_names[0]} and {feature_names[1]}", fontsize=11)
    ax.set_title(f"{shading}{drawn}", fontsize=8.5, color="0.35")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncols=min(k + 1, 4), frameon=False)
    return fig
