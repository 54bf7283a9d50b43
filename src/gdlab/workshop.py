"""The workshop "Introduction to Gradient Descent", computed: every figure's numbers and every task's answer.

``run_workshop()`` does the computing and returns a :class:`Workshop` (data, fits, trajectories, the sweep, the
comparison); it draws nothing and prints nothing. ``gdlab.report.write_workshop_report`` turns it into figures and
an HTML page, and ``gdlab workshop`` on the command line does both.

The workshop's two code slips are fixed here (see ``shared/seed/NOTES.md``): the gradient is
``2/m * X_b.T.dot(X_b.dot(w) - y)``, and the weights after each iteration are kept (``w_old.append(w.copy())``) so
that the figure of "GD iterations" shows them.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from gdlab.closed_form import closed_form
from gdlab.curvature import Curvature, curvature
from gdlab.datasets import WorkshopClasses, WorkshopLine, WorkshopMean, workshop_classes, workshop_line, workshop_mean
from gdlab.descent import descend
from gdlab.losses import Loss, get_loss
from gdlab.result import Result

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from gdlab.sweep import SweepResult

__all__ = ["Workshop", "MeanPart", "LinePart", "LearningRatePart", "IterationsPart", "IterationsInPicturesPart",
           "ContourPart", "ScalingPart", "NoClosedFormPart", "NewtonPath", "newton_path", "decision_boundary",
           "repeating_cycle", "eigen_error_ratios", "run_workshop", "comparison_table", "first_within",
           "MOMENTUM_BETA", "EigenPart", "NoisePart", "NoiseRuns", "noise_floor", "momentum_critical_beta"]

#: momentum's beta in the workshop's figures: the default of gdlab.descend, gdlab.optimizers and the explorer
MOMENTUM_BETA = 0.9


@dataclass(frozen=True)
class MeanPart:
    """Figures 1 and 2: the 1000 points around 2.0, the MSE over 40 candidate means, and GD walking down it.

    data : the workshop's data; errors : (40,) MSE at each candidate; best_candidate : the candidate of least MSE;
    mean : the sample mean (the exact minimiser); descent : intercept-only GD from ``start`` at ``learning_rate``.
    """

    data: WorkshopMean
    errors: np.ndarray
    best_candidate: float
    mean: float
    descent: Result
    start: float
    learning_rate: float

    @property
    def steps(self) -> np.ndarray:
        """(n,) the candidate mean c_t after each GD step (c_0 = start)."""
        return self.descent.trajectory.intercept


@dataclass(frozen=True)
class LinePart:
    """Figure 3: 10 iterations of GD at eta = 0.1 on the 50-point line data, against the Normal Equation.

    weights : (11, 2) the workshop's w = [intercept, slope] at the start and after each iteration.
    """

    data: WorkshopLine
    descent: Result
    closed: Result
    curvature: Curvature

    @property
    def weights(self) -> np.ndarray:
        return self.descent.trajectory.params


@dataclass(frozen=True)
class LearningRatePart:
    """Task 1, "what happens when you alter the learning rate?": a sweep and four telling runs.

    sweep : final loss over (eta, iterations); runs : label -> Result for the slow, fast, oscillating and
    diverging runs drawn on the contour (label order is the order of the panels).
    """

    sweep: SweepResult
    runs: dict[str, Result]


@dataclass(frozen=True)
class IterationsPart:
    """Task 2, "what happens when you alter the number of iterations?": the loss gap against iteration.

    runs : label -> Result (long runs at a few constant steps); predicted_iterations : label -> iterations the
    theory predicts to shrink the gap by ``reduction``; actual_iterations : label -> iterations it took.
    """

    runs: dict[str, Result]
    reduction: float
    predicted_iterations: dict[str, float]
    actual_iterations: dict[str, float]


@dataclass(frozen=True)
class IterationsInPicturesPart:
    """Task 2 in pictures: the fitted line after a few iteration counts, and the MSE of whole runs at a few steps.

    runs : label -> Result of ``max(snapshots)`` iterations (no early stop) at each learning rate, the workshop's
    first; snapshots : the iteration counts drawn as lines (the workshop's eta); close_enough : the relative excess
    (MSE - min) / min below which more iterations no longer change the line visibly; enough : label -> the first
    iteration whose MSE is that close to the minimum (inf when never).
    """

    runs: dict[str, Result]
    snapshots: tuple[int, ...]
    close_enough: float
    enough: dict[str, float]

    @property
    def workshop_run(self) -> Result:
        return next(iter(self.runs.values()))

    def weights_after(self, n: int) -> np.ndarray:
        """(2,) the workshop's w = [w0, w1] after ``n`` iterations at its learning rate."""
        tr = self.workshop_run.trajectory
        return tr.params[int(np.searchsorted(tr.iteration, n))]


@dataclass(frozen=True)
class ContourPart:
    """Figure 5: the MSE over (intercept, slope) and the paths of several optimizers from the workshop's start."""

    paths: dict[str, Result]
    settings: dict[str, str]
    closed: Result


@dataclass(frozen=True)
class ScalingPart:
    """The same data raw and standardised (each feature centred and divided by its standard deviation).

    line_raw, line_standardized : gd at each coordinate system's best constant step 2/(L+mu) from the workshop's
    start (mapped into standardised coordinates: b' = b + w mean, w' = w std); their ``curvature`` is that of each
    coordinate system. z : (50, 1) the standardised feature. real : name -> (raw Result, standardised Result) of a
    real data set with unscaled features (scikit-learn's diabetes, ``scaled=False``), gd at each one's best step for
    ``real_iterations`` iterations.
    """

    z: np.ndarray
    center: float
    scale: float
    line_raw: Result
    line_standardized: Result
    real: dict[str, tuple[Result, Result]]
    real_iterations: int
    close_enough: float = 1e-3


@dataclass(frozen=True)
class NewtonPath:
    """Newton's method's iterates: params (k + 1, 1 + d) = [w0, w1, ..., wd] from the start, loss (k + 1,) at each."""

    params: np.ndarray
    loss: np.ndarray

    @property
    def n_iter(self) -> int:
        return int(self.loss.shape[0]) - 1


def newton_path(X: Any, y: Any, loss: str | Loss = "log_loss", *, start: Any = None, max_iter: int = 20,
                tol: float = 1e-15) -> NewtonPath:
    """Newton's method on the mean loss F(w) = (1/m) sum loss(x_b,i . w, y_i) of a linear model with an intercept.

    Each step is w <- w - H^-1 g with g = X_b^T loss'(eta) / m and H = X_b^T diag(loss''(eta)) X_b / m (eta = X_b w):
    for the log-loss loss'' = p (1 - p), p = sigmoid(eta), and the iteration is IRLS; for the squared error H =
    (2/m) X_b^T X_b is constant and the first step lands on the Normal Equation's solution from any start. Full
    steps, no line search (the chapter's data need none; its test checks that the loss falls at every step). It
    stops before a step when the Newton decrement g^T H^-1 g / 2 (F - F* to second order) is within ``tol`` of F.

    X : (m, d); y : (m,) (0/1 or -1/+1 labels for the log-loss); start : (1 + d,) [w0, w1, ...] (default zeros).
    """
    lossf = get_loss(loss)
    X_b = np.c_[np.ones(len(X)), np.asarray(X, dtype=float).reshape(len(X), -1)]
    t = np.asarray(lossf.prepare_target(y) if getattr(lossf, "recodes_target", False) else y, dtype=float)
    m = X_b.shape[0]
    w = np.zeros(X_b.shape[1]) if start is None else np.asarray(start, dtype=float).copy()
    params, values = [w.copy()], [float(np.mean(lossf.value(X_b @ w, t)))]
    for _ in range(max_iter):
        eta = X_b @ w
        g = X_b.T @ lossf.derivative(eta, t) / m
        H = X_b.T @ (X_b * lossf.second_derivative(eta, t)[:, None]) / m
        step = np.linalg.solve(H, g)
        if float(g @ step) / 2 <= tol * abs(values[-1]):
            break
        w = w - step
        params.append(w.copy())
        values.append(float(np.mean(lossf.value(X_b @ w, t))))
    return NewtonPath(params=np.array(params), loss=np.array(values))


def decision_boundary(params: Any, box: tuple[float, float, float, float]) -> np.ndarray | None:
    """The segment of the line w0 + w1 x1 + w2 x2 = 0 (where P(class 1) = 1/2) inside ``box`` = (x1 lo, x1 hi, x2 lo,
    x2 hi): (2, 2) array of its end points [[x1, x2], [x1, x2]], or None when the line misses the box (or w1 = w2 = 0,
    when every point gets the same probability)."""
    w0, w1, w2 = (float(v) for v in params)
    a, b, c, d = box
    pts = []
    if w2 != 0:
        for x1 in (a, b):
            x2 = -(w0 + w1 * x1) / w2
            if c <= x2 <= d:
                pts.append((x1, x2))
    if w1 != 0:
        for x2 in (c, d):
            x1 = -(w0 + w2 * x2) / w1
            if a <= x1 <= b:
                pts.append((x1, x2))
    pts = sorted(set(pts))
    if len(pts) < 2:
        return None
    return np.array([pts[0], pts[-1]])


def repeating_cycle(params: np.ndarray, longest: int = 8, rtol: float = 1e-6) -> int:
    """The period p <= ``longest`` of the cycle the last iterates repeat (|w_T - w_(T-p)| <= rtol |w_T| for the last
    ``2 longest`` of them), 1 for a fixed point, 0 when they repeat no short cycle."""
    P = np.asarray(params, dtype=float)
    if P.shape[0] < 3 * longest:
        return 0
    scale = max(float(np.linalg.norm(P[-1])), 1.0)
    tail = P[-2 * longest:]
    for p in range(1, longest + 1):
        if np.all(np.linalg.norm(tail - P[-2 * longest - p:-p], axis=1) <= rtol * scale):
            return p
    return 0


@dataclass(frozen=True)
class NoClosedFormPart:
    """The chapter "When there is no closed form": logistic regression on two overlapping classes in two features.

    data : the classes; descent : gd at 2/L (L = lambda_max(X_b^T X_b)/(4m), the log-loss's curvature bound) from
    w = 0, ``iterations`` steps with no early stop; snapshots : the iterations whose decision boundary is drawn;
    newton : Newton's method (IRLS) from the same start, to rounding; hessian_eigenvalues : (3,) of the log-loss's
    Hessian X_b^T diag(p(1-p)) X_b / m at the minimum, ascending; rate_runs : label -> gd at a few constant steps
    from w = 0 (the learning-rate panel); sweep : the log-loss after the rate runs' budgets over a grid of steps;
    one_hop : Newton on the workshop's line data (MSE) from the workshop's start; close_enough : the relative gap
    (F - F*) / F* that counts as "at the minimum" in the words.
    """

    data: WorkshopClasses
    descent: Result
    snapshots: tuple[int, ...]
    newton: NewtonPath
    hessian_eigenvalues: np.ndarray
    rate_runs: dict[str, Result]
    sweep: SweepResult
    one_hop: NewtonPath
    close_enough: float = 1e-3

    @property
    def optimum(self) -> np.ndarray:
        """(3,) the minimiser [w0, w1, w2]: Newton's last iterate."""
        return self.newton.params[-1]

    @property
    def optimum_loss(self) -> float:
        return float(self.newton.loss[-1])

    @property
    def local_stable_step(self) -> float:
        """2 / lambda_max of the Hessian at the minimum: near it, constant steps below this converge."""
        return 2.0 / float(self.hessian_eigenvalues[-1])

    def weights_after(self, n: int) -> np.ndarray:
        """(3,) gd's [w0, w1, w2] after ``n`` iterations."""
        tr = self.descent.trajectory
        return tr.params[int(np.searchsorted(tr.iteration, n))]

    def gap(self, loss: Any) -> np.ndarray:
        """The log-loss above its minimum (rounding can make it a few 1e-17 below zero)."""
        return np.asarray(loss, dtype=float) - self.optimum_loss

    def first_within(self, result: Result) -> float:
        """The first iteration of ``result`` whose gap is within ``close_enough`` of the minimum (inf if none)."""
        tr = result.trajectory
        with np.errstate(invalid="ignore"):
            hit = np.nonzero(self.gap(tr.loss) <= self.close_enough * self.optimum_loss)[0]
        return float(tr.iteration[hit[0]]) if hit.size else math.inf


def _no_closed_form_part(dl: WorkshopLine) -> NoClosedFormPart:
    from gdlab.sweep import sweep

    dc = workshop_classes()
    X, y = dc.X, dc.y
    zero = {"coef_init": np.zeros(2), "intercept_init": 0.0, "standardize": False}
    common = {"loss": "log_loss", "tol": None, "gtol": None, **zero}
    snapshots = (1, 5, 20, 100, 1000)
    # descend reports the curvature bound L it plans with; one call to learn it, then the runs at multiples of 2/L
    two_over_L = _quiet_descend(X, y, max_iter=1, learning_rate=1.0, **common).curvature.stable_step
    descent = _quiet_descend(X, y, learning_rate=two_over_L, max_iter=max(snapshots), **common)
    newton = newton_path(X, y, "log_loss", max_iter=20)
    X_b = np.c_[np.ones(len(X)), X]
    p = 1.0 / (1.0 + np.exp(-(X_b @ newton.params[-1])))
    lam = np.linalg.eigvalsh(X_b.T @ (X_b * (p * (1 - p))[:, None]) / len(X))
    local = 2.0 / float(lam[-1])
    steps = {
        f"eta = {two_over_L / 4:.3g} (2/L ÷ 4)": two_over_L / 4,
        f"eta = {two_over_L:.3g} (2/L)": two_over_L,
        f"eta = {0.9 * local:.3g} (0.9 × 2/λ*)": 0.9 * local,
        f"eta = {1.1 * local:.3g} (1.1 × 2/λ*)": 1.1 * local,
        f"eta = {3 * local:.3g} (3 × 2/λ*)": 3 * local,
    }
    budget = 300
    rate_runs = {label: _quiet_descend(X, y, learning_rate=eta, max_iter=budget, **common)
                 for label, eta in steps.items()}
    # the sweep beside them: shorter budgets on a coarser grid (it is the chapter's costliest part)
    grid = np.unique(np.concatenate([np.geomspace(two_over_L / 10, 4 * local, 20), [two_over_L, local]]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sw = sweep(X, y, grid, [10, 100], loss="log_loss", **zero)
    one_hop = newton_path(dl.X, dl.y, "squared_error", start=dl.w_init, max_iter=5)
    return NoClosedFormPart(data=dc, descent=descent, snapshots=snapshots, newton=newton, hessian_eigenvalues=lam,
                            rate_runs=rate_runs, sweep=sw, one_hop=one_hop)


@dataclass(frozen=True)
class Workshop:
    """Everything the workshop shows and answers (see the module docstring)."""

    mean: MeanPart
    line: LinePart
    learning_rate: LearningRatePart
    iterations: IterationsPart
    contour: ContourPart
    iterations_in_pictures: IterationsInPicturesPart
    scaling: ScalingPart
    comparison: Any
    comparison_frame: pd.DataFrame
    comparison_source: str
    no_closed_form: NoClosedFormPart | None = None
    eigen: EigenPart | None = None
    noise: NoisePart | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def _iterations_answer(self, eta_text: str) -> str:
        return _iterations_answer_text(self, eta_text)

    def answers(self) -> dict[str, str]:
        """The workshop's questions answered in one or two plain sentences each, with the numbers."""
        line, curv = self.line, self.line.curvature
        sw = self.learning_rate.sweep
        w = line.descent.params
        w_ne = line.closed.params
        it = self.iterations
        eta_text = "; ".join(f"eta = {k.split('=')[-1].strip()}: predicted {it.predicted_iterations[k]:.0f}, "
                             f"took {it.actual_iterations[k]:.0f} iterations" for k in it.runs)
        return {
            "weights": (f"After {line.descent.n_iter} iterations at eta = {line.data.eta:g} gradient descent has "
                        f"w = [{w[0]:.4f}, {w[1]:.4f}] (intercept, slope); the Normal Equation gives "
                        f"[{w_ne[0]:.4f}, {w_ne[1]:.4f}]. Ten steps are not enough to get there: the MSE is "
                        f"{line.descent.loss:.4f} against the minimum {line.closed.loss:.4f}."),
            "learning_rate": (f"Too small a learning rate crawls; the best constant one is 2/(L+mu) = "
                              f"{curv.best_step:.4f}; just below 2/L = {curv.stable_step:.4f} the weights overshoot "
                              f"and oscillate; above 2/L every run diverges, and at exactly 2/L the error along "
                              f"the steepest direction flips sign at every step without shrinking, so the loss "
                              f"stays high but finite (here L = {curv.L:.4f}, the largest eigenvalue of the Hessian "
                              f"(2/m) X_b^T X_b). With the workshop's 10 iterations "
                              f"the lowest loss of the sweep, {sw.best_at(10)[1]:.4f}, came from eta = "
                              f"{sw.best_at(10)[0]:.3g}."),
            "iterations": self._iterations_answer(eta_text),
        }


def _iteration_count(n: float) -> str:
    return "never" if not math.isfinite(n) else f"{n:.0f}"


def first_within(result: Result, close_enough: float) -> float:
    """The first recorded iteration whose loss exceeds the optimum by at most ``close_enough`` (relative); inf
    when none does (a run that diverged, or one too short)."""
    tr = result.trajectory
    opt = float(result.optimum_loss)
    with np.errstate(invalid="ignore"):
        hit = np.nonzero(tr.loss - opt <= close_enough * abs(opt))[0]
    return float(tr.iteration[hit[0]]) if hit.size else math.inf


def _iterations_answer_text(ws: Workshop, eta_text: str) -> str:
    pic, curv = ws.iterations_in_pictures, ws.line.curvature
    labels = list(pic.runs)
    workshop_label = labels[0]
    n_ws = pic.enough[workshop_label]
    others = "; ".join(f"{label}: {_iteration_count(pic.enough[label])}" for label in labels[1:])
    return (f"More iterations help until the line sits on the Normal Equation's, and then stop helping. At the "
            f"workshop's eta = {ws.line.data.eta:g} the MSE is within {100 * pic.close_enough:g}% of its minimum "
            f"from iteration {_iteration_count(n_ws)} on; after that the MSE can fall by at most another "
            f"{100 * pic.close_enough:g}% and the line barely moves. When that "
            f"happens depends on the learning rate, because each iteration shrinks the error along each "
            f"eigen-direction of the Hessian by |1 - eta lambda|: a small eta leaves the flattest direction "
            f"(lambda = mu = {curv.mu:.4f}) shrinking slowly, and an eta near 2/L leaves the steepest one "
            f"(lambda = L = {curv.L:.4f}) flipping back and forth. Iterations to get within "
            f"{100 * pic.close_enough:g}%: {others}. With a stable step the gap to the minimum falls along a "
            f"straight line on a log scale; to shrink it by {ws.iterations.reduction:g}: {eta_text}. More "
            "iterations never hurt a stable run; they cannot save an unstable one.")


def eigen_error_ratios(result: Result, line: LinePart) -> tuple[np.ndarray, np.ndarray]:
    """The error w_t - w* split along the eigenvectors of the Hessian (2/m) X_b^T X_b of the line data.

    Returns (lam, ratio): the eigenvalues in increasing order (2,), and for each eigen-direction |c_i(T)| / |c_i(0)|,
    the size of the error's component along it at the last iterate over its size at the start. For constant-step
    gd each component is multiplied by (1 - eta lam_i) at every step, so the ratio is |1 - eta lam_i|^T.
    """
    X_b = np.c_[np.ones(line.data.X.shape[0]), line.data.X]
    H = 2.0 / X_b.shape[0] * X_b.T @ X_b
    lam, V = np.linalg.eigh(H)
    P = result.trajectory.params
    e0, eT = V.T @ (P[0] - line.closed.params), V.T @ (P[-1] - line.closed.params)
    with np.errstate(divide="ignore", invalid="ignore"):
        return lam, np.abs(eT) / np.abs(e0)


def _scaling_part(dl: WorkshopLine, start_kw: dict[str, Any], real_iterations: int = 1000) -> ScalingPart:
    x = dl.X[:, 0]
    center, scale = float(x.mean()), float(x.std())
    z = ((x - center) / scale).reshape(-1, 1)
    raw_curv = curvature(dl.X)
    std_curv = curvature(z)
    common = {"max_iter": 30, "tol": None, "gtol": None, "standardize": False}
    line_raw = _quiet_descend(dl.X, dl.y, learning_rate=raw_curv.best_step, **common, **start_kw)
    b0, w0 = float(dl.intercept_init), float(np.ravel(dl.coef_init)[0])
    line_std = _quiet_descend(z, dl.y, learning_rate=std_curv.best_step, coef_init=[w0 * scale],
                              intercept_init=b0 + w0 * center, **common)
    real: dict[str, tuple[Result, Result]] = {}
    try:
        from sklearn.datasets import load_diabetes
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        load_diabetes = None
    if load_diabetes is not None:
        Xd, yd = load_diabetes(return_X_y=True, scaled=False)
        Zd = (Xd - Xd.mean(axis=0)) / Xd.std(axis=0)
        runs = []
        for A in (Xd, Zd):
            step = curvature(A).best_step
            runs.append(_quiet_descend(A, yd, learning_rate=step, max_iter=real_iterations, tol=None, gtol=None,
                                       standardize=False))
        real["diabetes"] = (runs[0], runs[1])
    return ScalingPart(z=z, center=center, scale=scale, line_raw=line_raw, line_standardized=line_std, real=real,
                       real_iterations=real_iterations)


# ---- eigen-directions (issue 14, item 2) -------------------------------------------------------------------------

@dataclass(frozen=True)
class EigenPart:
    """The error w_t - w* of the workshop's line written along the eigenvectors of its Hessian H = (2/m) X_b^T X_b.

    eigenvalues : (2,) ascending, [mu, L]; eigenvectors : (2, 2) their unit eigenvectors as columns (numpy's eigh,
    each signed so that its slope entry is positive); gd_runs : label -> Result of constant-step gd from the
    workshop's start; momentum_eta : momentum's step in ``momentum_runs`` (label -> Result, one per beta, beta = 0
    is gd); critical_beta : beta = (1 - sqrt(eta mu))^2, where the flat direction's error is critically damped;
    region : (etas (n,), betas (k,), radius (k, n)), momentum's spectral radius over the (eta, beta) plane.
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    optimum: np.ndarray
    gd_runs: dict[str, Result]
    momentum_eta: float
    momentum_runs: dict[str, Result]
    critical_beta: float
    region: tuple[np.ndarray, np.ndarray, np.ndarray]

    def components(self, result: Result) -> np.ndarray:
        """(n, 2) the error's components c_i(t) = v_i . (w_t - w*) along [flat, steep] at each recorded iterate."""
        return (result.trajectory.params - self.optimum) @ self.eigenvectors


def momentum_critical_beta(eta: float, lam: float) -> float:
    """The beta at which heavy-ball momentum critically damps an eigen-direction of curvature ``lam`` at step
    ``eta``: the recurrence z^2 - (1 + beta - eta lam) z + beta = 0 has a double root when eta lam = (1 - sqrt
    beta)^2, so beta = (1 - sqrt(eta lam))^2 (for eta lam < 1)."""
    return float((1.0 - math.sqrt(eta * lam)) ** 2)


def _eigen_part(dl: WorkshopLine, closed: Result, curv: Curvature, start_kw: dict[str, Any]) -> EigenPart:
    X_b = np.c_[np.ones(dl.X.shape[0]), dl.X]
    lam, V = np.linalg.eigh(2.0 / X_b.shape[0] * X_b.T @ X_b)
    V = V * np.where(V[1] < 0, -1.0, 1.0)  # a sign convention only: each arrow points to larger slopes
    common = {"max_iter": 40, "tol": None, "gtol": None, "standardize": False, **start_kw}
    gd_runs = {f"eta = {dl.eta:g} (the workshop's)": _quiet_descend(dl.X, dl.y, learning_rate=dl.eta, **common),
               f"eta = 2/(L+mu) = {curv.best_step:.3f}": _quiet_descend(dl.X, dl.y, learning_rate=curv.best_step,
                                                                         **common)}
    eta = dl.eta
    beta_c = momentum_critical_beta(eta, float(lam[0]))
    momentum_runs = {}
    for beta, word in ((0.0, "gd"), (0.3, "over-damped"), (beta_c, "critically damped"), (MOMENTUM_BETA,
                                                                                          "under-damped")):
        label = f"beta = {beta:.3g} ({word})"
        momentum_runs[label] = _quiet_descend(dl.X, dl.y, optimizer="momentum", learning_rate=eta, beta=beta,
                                              **{**common, "max_iter": 60})
    etas = np.linspace(0.0, 2.0 * 2.0 / curv.L, 161)[1:]
    betas = np.linspace(0.0, 0.99, 100)
    radius = np.array([[curv.spectral_radius(e, "momentum", b) for e in etas] for b in betas])
    return EigenPart(eigenvalues=lam, eigenvectors=V, optimum=closed.params, gd_runs=gd_runs, momentum_eta=eta,
                     momentum_runs=momentum_runs, critical_beta=beta_c, region=(etas, betas, radius))


# ---- stochastic noise (issue 14, item 4) -------------------------------------------------------------------------

def noise_floor(X: Any, y: Any, learning_rate: float, batch_size: int, epochs: Any = None) -> Any:
    """The mean excess MSE, E[F(w) - F*], of constant-step mini-batch gradient descent with reshuffled epochs,
    read at the end of each epoch (as gdlab records it), for least squares with an intercept.

    Near the minimum the error e = w - w* obeys e <- (I - eta H) e - eta xi_k, with H = (2/m) X_b^T X_b and xi_k
    the mean over the k-th batch of the rows' gradients at the minimum, g_j = 2 x_j (x_j . w* - y_j) (the noise's
    part that grows with e is left out: it adds a relative O(eta) correction). Along an eigenvector v_i of H
    (eigenvalue lam_i, rho_i = 1 - eta lam_i) one epoch of n = m / B batches, the rows drawn without replacement,
    gives the component the variance

        V_i = s_i / (m - 1) * ((m / B) sum_k a_k^2 - (sum_k a_k)^2),    a_k = eta rho_i^(n - k),  k = 1..n,

    with s_i = (1/m) sum_j (v_i . g_j)^2 (a batch mean has variance s_i (m - B) / (B (m - 1)), two batches of
    the same epoch covariance -s_i / (m - 1): the gradients at the minimum sum to zero over an epoch). Epochs are
    independent, so after k epochs from w* the variance is V_i (1 - rho_i^(2nk)) / (1 - rho_i^(2n)), and the excess
    is sum_i lam_i var_i / 2 (F is quadratic with Hessian H). When an epoch is long against the relaxation time
    1 / (eta lam_i) this tends to the stationary value of draws with replacement (Mandt, Hoffman & Blei, 2017,
    "Stochastic gradient descent as approximate Bayesian inference", JMLR 18, eq. 14, discretised):
    sum_i eta (m - B) s_i / (2 B (m - 1) (2 - eta lam_i)) ~ eta tr(Sigma_g) / (4 B) for small eta; when it is
    short, the reshuffled batches' noise cancels within the epoch and the floor is lower (Mishchenko, Khaled &
    Richtarik, 2020, "Random reshuffling: simple analysis with vast improvements", NeurIPS).

    X : (m, d); y : (m,); batch_size must divide m. epochs : None for the stationary floor, or epoch counts
    (from a start at w*) for the mean excess after each. Returns a float, or an array shaped like ``epochs``.
    """
    X = np.asarray(X, dtype=float).reshape(len(X), -1)
    y = np.asarray(y, dtype=float).ravel()
    m, B = X.shape[0], int(batch_size)
    if B < 1 or m % B:
        raise ValueError(f"batch_size must divide the number of rows ({m}) for this formula, got {batch_size!r}.")
    X_b = np.c_[np.ones(m), X]
    w_star = np.linalg.lstsq(X_b, y, rcond=None)[0]
    g = 2.0 * X_b * (X_b @ w_star - y)[:, None]
    lam, V = np.linalg.eigh(2.0 / m * X_b.T @ X_b)
    s = np.mean((g @ V) ** 2, axis=0)
    n = m // B
    k = np.arange(1, n + 1)
    total = 0.0 if epochs is None else np.zeros(np.shape(epochs))
    for lam_i, s_i in zip(lam, s):
        rho = 1.0 - learning_rate * lam_i
        a = learning_rate * rho ** (n - k)
        v = s_i / (m - 1) * ((m / B) * np.sum(a * a) - np.sum(a) ** 2) if m > 1 else 0.0
        per_epoch = rho ** (2 * n)
        grow = 1.0 if epochs is None else 1.0 - per_epoch ** np.asarray(epochs, dtype=float)
        total = total + 0.5 * lam_i * v * grow / (1.0 - per_epoch)
    return float(total) if epochs is None else total


@dataclass(frozen=True)
class NoiseRuns:
    """Mini-batch runs over many seeds: params (seeds, epochs + 1, 2) and loss (seeds, epochs + 1) per epoch."""

    learning_rate: Any
    batch_size: int
    params: np.ndarray
    loss: np.ndarray

    def quantiles(self, q: Any = (0.1, 0.5, 0.9), optimum_loss: float = 0.0) -> np.ndarray:
        """(len(q), epochs + 1) quantiles across seeds of the loss above ``optimum_loss``."""
        return np.quantile(self.loss - optimum_loss, q, axis=0)


@dataclass(frozen=True)
class NoisePart:
    """Stochastic (mini-batch) gradient descent on the workshop's line, many seeds.

    band : constant step, from the workshop's start; decaying : the same with eta_t = 1/(alpha (t0 + t)) (t counts
    updates) from the same eta; full_batch : gd at the same eta for as many updates, recorded once an epoch's worth
    of updates; floors : one row per (eta, B) of runs started at the minimum: the measured mean excess over the
    epochs after ``burn_in`` (mean over seeds), its standard error (from the seeds' means) and the formula of
    :func:`noise_floor`; tradeoff : B -> NoiseRuns from the workshop's start at the band's eta.
    """

    seeds: int
    floor_seeds: int
    band: NoiseRuns
    decaying: NoiseRuns
    decay: dict[str, float]
    full_batch: Result
    optimum_loss: float
    floors: list[dict[str, float]]
    tradeoff: dict[int, NoiseRuns]


def _seeded_runs(X: Any, y: Any, learning_rate: Any, batch_size: int, epochs: int, seeds: int,
                 start: np.ndarray) -> NoiseRuns:
    params, loss = [], []
    for seed in range(seeds):
        r = _quiet_descend(X, y, learning_rate=learning_rate, batch_size=batch_size, max_iter=epochs, tol=None,
                           gtol=None, random_state=seed, coef_init=start[1:], intercept_init=float(start[0]),
                           standardize=False)
        params.append(r.trajectory.params)
        loss.append(r.trajectory.loss)
    return NoiseRuns(learning_rate=learning_rate, batch_size=batch_size, params=np.array(params),
                     loss=np.array(loss))


def _noise_part(dl: WorkshopLine, closed: Result, curv: Curvature, seeds: int = 50, floor_seeds: int = 30
                ) -> NoisePart:
    from gdlab.schedules import optimal

    X, y = dl.X, dl.y
    m = X.shape[0]
    start = np.asarray(dl.w_init, dtype=float)
    eta, B, epochs = dl.eta, 5, 60
    band = _seeded_runs(X, y, eta, B, epochs, seeds, start)
    # eta_t = 1/(alpha (t0 + t)): eta at t = 0, and alpha below mu so that the error still shrinks like 1/t
    alpha = curv.mu / 2.0
    t0 = 1.0 / (alpha * eta)
    decaying = _seeded_runs(X, y, optimal(alpha=alpha, t0=t0), B, epochs, seeds, start)
    n = m // B
    full = _quiet_descend(X, y, learning_rate=eta, max_iter=epochs * n, tol=None, gtol=None, standardize=False,
                          coef_init=start[1:], intercept_init=float(start[0]))
    floors = []
    w_star = np.asarray(closed.params, dtype=float)
    # the floor against B at one step, and against the step at one B (the formula leaves out the part of the noise
    # that grows with the error, a relative O(eta x^2 / B): the table shows where it starts to tell)
    settings = [(0.02, b) for b in (1, 2, 5, 10)] + [(e, 5) for e in (0.05, 0.1)]
    for eta_f, B_f in settings:
        # long enough for the flat direction to forget its start several times over (6 relaxation times)
        n_epochs = max(20, math.ceil(6.0 / (eta_f * curv.mu * (m // B_f))))
        burn_in = n_epochs // 4
        runs = _seeded_runs(X, y, eta_f, B_f, n_epochs, floor_seeds, w_star)
        excess = runs.loss[:, burn_in + 1:] - closed.loss
        per_seed = excess.mean(axis=1)
        expected = noise_floor(X, y, eta_f, B_f, epochs=np.arange(burn_in + 1, n_epochs + 1)).mean()
        floors.append({"learning_rate": eta_f, "batch_size": B_f, "measured": float(per_seed.mean()),
                       "standard_error": float(per_seed.std(ddof=1) / math.sqrt(floor_seeds)),
                       "formula": float(expected), "stationary": noise_floor(X, y, eta_f, B_f),
                       "epochs": n_epochs, "burn_in": burn_in})
    tradeoff = {b: _seeded_runs(X, y, eta, b, 30, 20, start) for b in (1, 5, 25)}
    return NoisePart(seeds=seeds, floor_seeds=floor_seeds, band=band, decaying=decaying,
                     decay={"alpha": alpha, "t0": t0}, full_batch=full, optimum_loss=float(closed.loss), floors=floors, tradeoff=tradeoff)


def _quiet_descend(*args: Any, **kwargs: Any) -> Result:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with np.errstate(all="ignore"):
            return descend(*args, warn=False, **kwargs)


def comparison_table(X: Any, y: Any) -> tuple[Any, pd.DataFrame, str]:
    """The comparison table (gdlab GD vs the Normal Equation vs scikit-learn), as (object, frame, provenance)."""
    from gdlab.compare import compare

    table = compare(X, y)
    return table, table.to_frame(), "gdlab.compare"


def run_workshop(*, sweep_points: int = 25, contour_iterations: int = 60) -> Workshop:
    """Compute every figure and answer of the workshop on its own data (a few seconds).

    Parameters
    ----------
    sweep_points : learning rates in the learning-rate sweep (log-spaced from 1e-3 to 1.2 x 2/L).
    contour_iterations : iterations of each optimizer drawn on the contour.

    Returns
    -------
    Workshop
    """
    from gdlab.sweep import sweep

    t_all = time.perf_counter()
    timings: dict[str, float] = {}

    # 1-2. the mean: MSE over the candidates, and GD on the intercept-only model (Hessian 2: 2/L = 1)
    t0 = time.perf_counter()
    dm = workshop_mean()
    errors = dm.mse(dm.candidates)
    start, eta_mean = 1.1, 0.15
    mean_descent = _quiet_descend(dm.features, dm.y, learning_rate=eta_mean, max_iter=12, tol=None, gtol=None,
                                  intercept_init=start)
    mean = MeanPart(data=dm, errors=errors, best_candidate=float(dm.candidates[np.argmin(errors)]),
                    mean=float(dm.X.mean()), descent=mean_descent, start=start, learning_rate=eta_mean)
    timings["mean"] = time.perf_counter() - t0

    # 3. the line: the workshop's loop (eta 0.1, 10 iterations, its random start) against the Normal Equation
    t0 = time.perf_counter()
    dl = workshop_line()
    start_kw = {"coef_init": dl.coef_init, "intercept_init": dl.intercept_init}
    line_descent = _quiet_descend(dl.X, dl.y, learning_rate=dl.eta, max_iter=dl.n_iterations, tol=None, gtol=None,
                                  **start_kw)
    closed = closed_form(dl.X, dl.y)
    curv = curvature(dl.X)
    line = LinePart(data=dl, descent=line_descent, closed=closed, curvature=curv)
    timings["line"] = time.perf_counter() - t0

    # 4a. learning rate: sweep, and four runs on the contour
    t0 = time.perf_counter()
    lrs = np.geomspace(1e-3, 1.5 * curv.stable_step, sweep_points)
    # the interesting part is near 2/L: a finer, linear spread there, and 2/L itself (neither converges nor
    # diverges: the steepest direction's error flips sign at every step and keeps its size)
    near = curv.stable_step * np.concatenate([np.linspace(0.6, 1.2, 25), [0.99, 1.01]])
    lrs = np.unique(np.concatenate([lrs, near, [dl.eta, curv.best_step, curv.stable_step]]))
    sw = sweep(dl.X, dl.y, lrs, [10, 100, 1000], **start_kw)
    panel_steps = {
        f"slow: eta = {0.02:g}": 0.02,
        f"fast: eta = 2/(L+mu) = {curv.best_step:.3f}": curv.best_step,
        f"oscillating: eta = {0.97 * curv.stable_step:.3f}": 0.97 * curv.stable_step,
        f"diverging: eta = {1.04 * curv.stable_step:.3f}": 1.04 * curv.stable_step,
    }
    runs = {label: _quiet_descend(dl.X, dl.y, learning_rate=eta, max_iter=30, tol=None, gtol=None, **start_kw)
            for label, eta in panel_steps.items()}
    lr_part = LearningRatePart(sweep=sw, runs=runs)
    timings["learning_rate"] = time.perf_counter() - t0

    # 4b. iterations: the gap falls by the predicted rate per iteration
    t0 = time.perf_counter()
    reduction = 1e-8
    it_steps = {f"eta = {0.05:g}": 0.05, f"eta = {dl.eta:g}": dl.eta, f"eta = 2/(L+mu) = {curv.best_step:.3f}":
                curv.best_step}
    it_runs, predicted, actual = {}, {}, {}
    for label, eta in it_steps.items():
        r = _quiet_descend(dl.X, dl.y, learning_rate=eta, max_iter=2000, tol=None, gtol=1e-13, **start_kw)
        it_runs[label] = r
        predicted[label] = curv.iterations_to(reduction, eta)
        gap = r.trajectory.gap
        hit = np.nonzero(gap <= reduction * gap[0])[0]
        actual[label] = float(r.trajectory.iteration[hit[0]]) if hit.size else math.inf
    iterations = IterationsPart(runs=it_runs, reduction=reduction, predicted_iterations=predicted,
                                actual_iterations=actual)
    timings["iterations"] = time.perf_counter() - t0

    # 4c. iterations in pictures: the line after 1, 10, 50, 200 and 1000 iterations, and whole runs' MSE
    t0 = time.perf_counter()
    snapshots = (1, 10, 50, 200, 1000)
    close_enough = 1e-3
    picture_steps = {f"eta = {dl.eta:g} (the workshop's)": dl.eta, f"eta = {0.02:g}": 0.02,
                     f"eta = 2/(L+mu) = {curv.best_step:.3f}": curv.best_step,
                     f"eta = {0.97 * curv.stable_step:.3f} (just under 2/L)": 0.97 * curv.stable_step}
    picture_runs = {label: _quiet_descend(dl.X, dl.y, learning_rate=eta, max_iter=max(snapshots), tol=None,
                                          gtol=None, **start_kw) for label, eta in picture_steps.items()}
    pictures = IterationsInPicturesPart(runs=picture_runs, snapshots=snapshots, close_enough=close_enough,
                                        enough={k: first_within(r, close_enough) for k, r in picture_runs.items()})
    timings["iterations_in_pictures"] = time.perf_counter() - t0

    # 5. the contour: gd, momentum, nesterov and adam from the same start
    t0 = time.perf_counter()
    beta = MOMENTUM_BETA
    settings = {
        "gd": f"eta = {dl.eta:g} (the workshop's)",
        "momentum": f"eta = {dl.eta:g}, beta = {beta:g}",
        "nesterov": f"eta = {dl.eta:g}, beta = {beta:g}",
        "adam": "eta = 0.5",
    }
    common = {"max_iter": contour_iterations, "tol": None, "gtol": None, **start_kw}
    paths = {
        "gd": _quiet_descend(dl.X, dl.y, learning_rate=dl.eta, **common),
        "momentum": _quiet_descend(dl.X, dl.y, optimizer="momentum", learning_rate=dl.eta, beta=beta, **common),
        "nesterov": _quiet_descend(dl.X, dl.y, optimizer="nesterov", learning_rate=dl.eta, beta=beta, **common),
        "adam": _quiet_descend(dl.X, dl.y, optimizer="adam", learning_rate=0.5, **common),
    }
    contour = ContourPart(paths=paths, settings=settings, closed=closed)
    timings["contour"] = time.perf_counter() - t0

    # 6. scaling: the same data raw and standardised
    t0 = time.perf_counter()
    scaling = _scaling_part(dl, start_kw)
    timings["scaling"] = time.perf_counter() - t0

    # 7. the comparison table
    t0 = time.perf_counter()
    table, frame, provenance = comparison_table(dl.X, dl.y)
    timings["comparison"] = time.perf_counter() - t0

    # 10. when there is no closed form: logistic regression, gd against Newton
    t0 = time.perf_counter()
    no_closed_form = _no_closed_form_part(dl)
    timings["no_closed_form"] = time.perf_counter() - t0

    # 11. eigen-directions: the error along the Hessian's eigenvectors, gd and momentum
    t0 = time.perf_counter()
    eigen = _eigen_part(dl, closed, curv, start_kw)
    timings["eigen"] = time.perf_counter() - t0

    # 12. stochastic noise: mini-batches over many seeds, the noise floor, decaying steps, the batch size
    t0 = time.perf_counter()
    noise = _noise_part(dl, closed, curv)
    timings["noise"] = time.perf_counter() - t0

    return Workshop(mean=mean, line=line, learning_rate=lr_part, iterations=iterations, contour=contour,
                    iterations_in_pictures=pictures, scaling=scaling, comparison=table, comparison_frame=frame, comparison_source=provenance,
                    no_closed_form=no_closed_form, eigen=eigen, noise=noise, seconds=time.perf_counter() - t_all, timings=timings)
