"""Learning rate x iterations experiments: the workshop's two tasks ("what happens when you alter the learning rate?
... the number of iterations?") answered on a grid.

One run per learning rate, of max(iterations) steps of full-batch descent with a constant step; the loss after each
requested number of iterations is read off that run (the first n steps of a longer run are exactly the run of n
steps), so the grid costs len(learning_rates) runs, not len(learning_rates) x len(iterations).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np


if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from gdlab.curvature import Curvature

__all__ = ["sweep", "SweepResult", "parse_learning_rates", "parse_iterations", "check_grid", "MAX_LEARNING_RATES",
           "MAX_ITERATION_COUNTS", "MAX_ITERATIONS", "MAX_STEPS"]

# Bounds on a grid read from text (the command line): checked before anything is allocated or run.
MAX_LEARNING_RATES = 1_000  # learning rates in one sweep (a heatmap of 1000 rows is already unreadable)
MAX_ITERATION_COUNTS = 100  # iteration counts (columns of the table)
MAX_ITERATIONS = 10_000_000  # the longest run, as for `gdlab fit --iters`
MAX_STEPS = 100_000_000  # learning rates x the longest run: about 10 minutes of descent on small data


@dataclass(frozen=True)
class SweepResult:
    """The final loss of gradient descent over a grid of (learning rate, iterations).

    Attributes
    ----------
    learning_rates : (a,) the constant steps eta tried, ascending.
    iterations : (b,) the iteration counts, ascending.
    final_loss : (a, b) the loss after iterations[j] steps at learning_rates[i]; NaN where the run had diverged
        and was stopped before that many steps.
    diverged : (a, b) bool: the run at learning_rates[i] had diverged by iterations[j] steps (non-finite or
        exploding loss, as ``gdlab.descend`` detects it).
    diverged_at : (a,) the iteration at which each run was stopped for divergence (0 when it never diverged).
    initial_loss : the loss at the starting point (the same for every run).
    optimum_loss : the loss at the exact minimiser (the Normal Equation), or None when it is unknown.
    curvature : L, mu, stable step 2/L, best step 2/(L+mu) of the problem.
    optimizer : the optimizer used.
    """

    learning_rates: np.ndarray
    iterations: np.ndarray
    final_loss: np.ndarray
    diverged: np.ndarray
    diverged_at: np.ndarray
    initial_loss: float
    optimum_loss: float | None
    curvature: Curvature | None
    optimizer: str = "gd"
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def stable_step(self) -> float:
        """2 / L: constant steps at or above it diverge."""
        return self.curvature.stable_step if self.curvature is not None else math.inf

    @property
    def best_step(self) -> float:
        """2 / (L + mu): the constant step with the fastest worst-case rate."""
        return self.curvature.best_step if self.curvature is not None else math.inf

    @property
    def gap(self) -> np.ndarray:
        """(a, b) final_loss - optimum_loss (NaN when the optimum is unknown)."""
        if self.optimum_loss is None:
            return np.full_like(self.final_loss, np.nan)
        return self.final_loss - self.optimum_loss

    def best(self) -> tuple[float, int, float]:
        """(learning rate, iterations, loss) of the lowest finite loss on the grid."""
        loss = np.where(np.isfinite(self.final_loss) & ~self.diverged, self.final_loss, np.inf)
        i, j = np.unravel_index(int(np.argmin(loss)), loss.shape)
        return float(self.learning_rates[i]), int(self.iterations[j]), float(loss[i, j])

    def best_at(self, iterations: int) -> tuple[float, float]:
        """(learning rate, loss) of the lowest loss after the given number of iterations (one of ``iterations``)."""
        hits = np.nonzero(self.iterations == int(iterations))[0]
        if not hits.size:
            raise ValueError(f"iterations={iterations} is not on the grid; choose one of {self.iterations.tolist()}.")
        col = self.final_loss[:, hits[0]]
        col = np.where(np.isfinite(col) & ~self.diverged[:, hits[0]], col, np.inf)
        i = int(np.argmin(col))
        return float(self.learning_rates[i]), float(col[i])

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per cell, columns learning_rate, iterations, final_loss, gap, diverged."""
        import pandas as pd

        a, b = self.final_loss.shape
        return pd.DataFrame({
            "learning_rate": np.repeat(self.learning_rates, b),
            "iterations": np.tile(self.iterations, a),
            "final_loss": self.final_loss.ravel(),
            "gap": self.gap.ravel(),
            "diverged": self.diverged.ravel(),
        })

    def to_dict(self) -> dict[str, Any]:
        def f(v: float | None) -> float | None:
            return None if v is None or not math.isfinite(v) else float(v)

        return {
            "learning_rates": [float(v) for v in self.learning_rates],
            "iterations": [int(v) for v in self.iterations],
            "final_loss": [[f(v) for v in row] for row in self.final_loss],
            "diverged": self.diverged.tolist(),
            "diverged_at": [int(v) for v in self.diverged_at],
            "initial_loss": f(self.initial_loss),
            "optimum_loss": f(self.optimum_loss),
            "stable_step": f(self.stable_step),
            "best_step": f(self.best_step),
            "optimizer": self.optimizer,
        }


def _as_grid(name: str, values: Any, integer: bool) -> np.ndarray:
    try:
        arr = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a list of numbers, got {values!r}.") from None
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty list of numbers, got {values!r}.")
    bad = ~np.isfinite(arr) | (arr <= 0)
    if integer:
        bad |= arr != np.round(arr)
    if bad.any():
        rule = "positive integers" if integer else "positive numbers"
        raise ValueError(f"{name} must be {rule}, got {arr[bad][0]!r}.")
    return np.unique(arr.astype(np.int64) if integer else arr)


def sweep(X: Any, y: Any, learning_rates: Any, iterations: Any, *, optimizer: str = "gd",
          fit_intercept: bool = True, coef_init: Any = None, intercept_init: Any = None, **descend_params: Any
          ) -> SweepResult:
    """Final loss of constant-step gradient descent over a grid of learning rates and iteration counts.

    Parameters
    ----------
    X : (m, d) array-like; y : (m,) targets.
    learning_rates : positive constant steps eta (sorted and de-duplicated).
    iterations : positive iteration counts (sorted and de-duplicated).
    optimizer : any optimizer ``gdlab.descend`` knows (default "gd", the workshop's update).
    fit_intercept, coef_init, intercept_init : the model and its starting point (default zeros).
    **descend_params : further settings for ``gdlab.descend`` (e.g. ``source``, ``beta``, ``standardize=True``:
        the grid's steps are then in the standardized coordinates, and so is the curvature's 2/L; the default
        keeps the raw ones, the workshop's); stopping rules are switched off, so every run makes max(iterations)
        steps unless it diverges.

    Returns
    -------
    SweepResult
    """
    from gdlab.descent import descend

    lrs = _as_grid("learning_rates", learning_rates, integer=False)
    its = _as_grid("iterations", iterations, integer=True)
    for key in ("learning_rate", "max_iter", "tol", "gtol", "callback", "warn", "record_every", "max_records"):
        if key in descend_params:
            raise ValueError(f"sweep sets {key!r} itself; leave it out of the keyword arguments.")
    n_max = int(its[-1])
    # Record every g-th iterate, g the gcd of the requested counts: every count is then on the record, and the
    # loop runs without a per-iteration callback (10, 100, 1000 keep 101 rows, not 1001).
    stride = int(np.gcd.reduce(its))
    loss = np.full((lrs.size, its.size), np.nan)
    diverged = np.zeros((lrs.size, its.size), dtype=bool)
    diverged_at = np.zeros(lrs.size, dtype=np.int64)
    curv = None
    optimum = None
    initial = math.nan
    for i, eta in enumerate(lrs):
        with np.errstate(all="ignore"):
            r = descend(X, y, optimizer=optimizer, learning_rate=float(eta), max_iter=n_max, tol=None, gtol=None,
                        fit_intercept=fit_intercept, coef_init=coef_init, intercept_init=intercept_init,
                        warn=False, record_every=stride, max_records=None, **descend_params)
        tr = r.trajectory
        at = dict(zip(tr.iteration.tolist(), tr.loss.tolist()))
        loss[i] = [at.get(int(n), np.nan) for n in its]
        if r.diverged:
            diverged_at[i] = r.n_iter
            diverged[i] = its >= r.n_iter
            # past the iteration that diverged there is no loss; at it, the loss that gave it away (if finite)
            loss[i, its > r.n_iter] = np.nan
        loss[i, ~np.isfinite(loss[i])] = np.nan
        curv = curv or r.curvature
        optimum = r.optimum_loss if optimum is None else optimum
        initial = float(tr.loss[0])
    return SweepResult(learning_rates=lrs, iterations=its, final_loss=loss, diverged=diverged,
                       diverged_at=diverged_at, initial_loss=initial, optimum_loss=optimum, curvature=curv,
                       optimizer=optimizer if isinstance(optimizer, str) else getattr(optimizer, "name", "custom"),
                       settings={"fit_intercept": fit_intercept, **{k: v for k, v in descend_params.items()}})


def parse_learning_rates(text: str) -> np.ndarray:
    """``"1e-3:1:20"`` -> 20 log-spaced steps from 1e-3 to 1; ``"0.01,0.1,0.5"`` -> those steps."""
    text = text.strip()
    try:
        if ":" in text:
            parts = text.split(":")
            if len(parts) != 3:
                raise ValueError
            lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
            if lo <= 0 or hi <= 0 or n <= 0 or not (math.isfinite(lo) and math.isfinite(hi)):
                raise ValueError(f"learning rates must be > 0 and the count > 0, got {text!r}; "
                                 "e.g. --lr 1e-3:1:20.")
            if n > MAX_LEARNING_RATES:
                raise ValueError(f"{n:,} learning rates asked for ({text!r}); a sweep takes at most "
                                 f"{MAX_LEARNING_RATES:,}: lower the COUNT, e.g. --lr {parts[0]}:{parts[1]}:20.")
            return np.geomspace(lo, hi, n) if n > 1 else np.array([lo])
        items = [v for v in text.split(",") if v.strip()]
        if len(items) > MAX_LEARNING_RATES:
            raise ValueError(f"{len(items):,} learning rates given; a sweep takes at most {MAX_LEARNING_RATES:,}: "
                             "give fewer, or START:STOP:COUNT.")
        values = np.array([float(v) for v in items])
    except ValueError as exc:
        if str(exc):
            raise
        raise ValueError(f"cannot read learning rates {text!r}; write START:STOP:COUNT (log-spaced, e.g. "
                         "1e-3:1:20) or a list such as 0.01,0.1,0.5.") from None
    if values.size == 0 or np.any(~np.isfinite(values)) or np.any(values <= 0):
        raise ValueError(f"learning rates must be positive numbers, got {text!r}; e.g. --lr 1e-3:1:20.")
    return values


def _count(text: str) -> int:
    """An iteration count: an integer, also written as 1e4 (but not 1.5)."""
    try:
        return int(text)
    except ValueError:
        value = float(text)  # ValueError for words
        if not math.isfinite(value) or value != math.floor(value):
            raise ValueError from None
        return int(value)


def parse_iterations(text: str) -> np.ndarray:
    """``"10,100,1000"`` -> those iteration counts (positive integers, at most :data:`MAX_ITERATIONS` each and
    :data:`MAX_ITERATION_COUNTS` of them)."""
    items = [v for v in text.split(",") if v.strip()]
    if len(items) > MAX_ITERATION_COUNTS:
        raise ValueError(f"{len(items):,} iteration counts given; a sweep takes at most {MAX_ITERATION_COUNTS}: "
                         "give fewer, e.g. --iters 10,100,1000.")
    try:
        values = [_count(v.strip()) for v in items]
    except ValueError:
        raise ValueError(f"cannot read iteration counts {text!r}; write positive integers separated by commas, "
                         "e.g. --iters 10,100,1000.") from None
    if not values or min(values) <= 0:
        raise ValueError(f"iteration counts must be positive integers, got {text!r}; e.g. --iters 10,100,1000.")
    if max(values) > MAX_ITERATIONS:
        raise ValueError(f"an iteration count of {max(values):,} is above gdlab's limit of {MAX_ITERATIONS:,} per "
                         "run; give smaller counts, e.g. --iters 10,100,1000.")
    return np.array(values, dtype=np.int64)


def check_grid(learning_rates: np.ndarray, iterations: np.ndarray) -> None:
    """Refuse a grid whose runs would make more than :data:`MAX_STEPS` descent steps in all (one run of
    max(iterations) steps per learning rate), before any is run."""
    steps = int(np.size(learning_rates)) * int(np.max(iterations))
    if steps > MAX_STEPS:
        raise ValueError(f"{np.size(learning_rates):,} learning rates x {int(np.max(iterations)):,} iterations is "
                         f"{steps:,} descent steps, above gdlab's limit of {MAX_STEPS:,} for one sweep; use fewer "
                         "learning rates (--lr START:STOP:COUNT) or fewer iterations (--iters).")
