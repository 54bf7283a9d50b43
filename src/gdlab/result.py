"""One result type for every solver (gradient descent of any kind and the closed form), with its trajectory."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

    from gdlab.curvature import Curvature

__all__ = ["Result", "Trajectory", "TrajectoryRecorder", "ITERATE_BUDGET_BYTES"]


@dataclass(frozen=True)
class Trajectory:
    """What the descent went through, one row per recorded iteration.

    Attributes
    ----------
    iteration : (n,) int — the iteration (epoch) index; 0 is the starting point.
    coef : (n, d) or (n, d, k) — the weights w_t.
    intercept : (n,) or (n, k) — the intercept b_t (zeros when there is none).
    loss : (n,) — the objective at (w_t, b_t) (the data loss plus the penalty).
    grad_norm : (n,) — Euclidean norm of the gradient of the smooth part at (w_t, b_t).
    learning_rate : (n,) — the step that produced iterate t (the last one of its epoch; NaN at iteration 0).
    gap : (n,) or None — loss_t - loss* when the optimum is known.
    stride : int — a row was recorded every ``stride`` iterations (``record_every``, doubled each time
        ``max_records`` rows were exceeded), plus the last iteration.
    coef_iteration : (n_kept,) int — the iterations whose iterate ``coef`` and ``intercept`` hold. The same as
        ``iteration`` unless the iterates were thinned to stay within the recorder's byte budget
        (:data:`ITERATE_BUDGET_BYTES`); then ``coef`` and ``intercept`` have n_kept < n rows.
    coef_stride : int — the iterates kept are those of the iterations that are multiples of ``coef_stride``, plus
        the first and the last; ``coef_stride == stride`` when none were thinned (``coef_stride // stride``: one
        recorded iterate kept out of that many).
    """

    iteration: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    learning_rate: np.ndarray
    gap: np.ndarray | None = None
    stride: int = 1
    coef_iteration: np.ndarray | None = None  # None (when built by hand): every row's iterate, as `iteration`
    coef_stride: int | None = None  # None: `stride`

    def __post_init__(self) -> None:
        if self.coef_iteration is None:
            object.__setattr__(self, "coef_iteration", self.iteration)
        if self.coef_stride is None:
            object.__setattr__(self, "coef_stride", self.stride)
        if self.coef.shape[0] != self.coef_iteration.shape[0]:
            raise ValueError(f"coef has {self.coef.shape[0]} rows but coef_iteration names "
                             f"{self.coef_iteration.shape[0]} iterations; give one iteration per kept iterate.")

    def __len__(self) -> int:
        return int(self.iteration.shape[0])

    @property
    def thinned(self) -> bool:
        """True when some recorded iterations have no stored iterate (the byte budget was reached)."""
        return self.coef.shape[0] < self.iteration.shape[0]

    @property
    def coef_rows(self) -> np.ndarray:
        """(n_kept,) int: the row (index into ``iteration``, ``loss``, ...) of each kept iterate."""
        if not self.thinned:
            return np.arange(self.coef.shape[0])
        its, kept = np.asarray(self.iteration), np.asarray(self.coef_iteration)
        first = np.searchsorted(its, kept, side="left")
        # an iteration recorded twice (an L-BFGS end point) keeps its order: the i-th copy goes to the i-th row
        rank = np.arange(kept.shape[0]) - np.searchsorted(kept, kept, side="left")
        return np.minimum(first + rank, its.shape[0] - 1)

    @property
    def params(self) -> np.ndarray:
        """(n_kept, 1 + d) array [b_t, w_t] for single-output fits: the workshop's vector w = (intercept, slope...),
        at the iterations ``coef_iteration`` (every recorded one unless the iterates were thinned)."""
        if self.coef.ndim != 2:
            raise ValueError("params is defined for single-output trajectories; use coef and intercept.")
        return np.column_stack([self.intercept, self.coef])

    def to_dict(self) -> dict[str, Any]:
        out = {
            "iteration": self.iteration.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "loss": _floats(self.loss),
            "grad_norm": _floats(self.grad_norm),
            "learning_rate": _floats(self.learning_rate),
            "stride": self.stride,
            "coef_iteration": np.asarray(self.coef_iteration).tolist(),
            "coef_stride": self.coef_stride,
        }
        if self.gap is not None:
            out["gap"] = _floats(self.gap)
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per recorded iteration: iteration, intercept, w1..wd, loss, grad_norm, learning_rate, gap.

        The names are the workshop's: w = [w0, w1, ..., wd] with w0 the intercept (the column of ones of X_b), so
        the intercept's column is ``intercept`` and ``wj`` is the weight of feature j (``coef[:, j - 1]``). Several
        outputs: ``intercept_o`` and ``wj_o`` for output o. When the iterates were thinned (:attr:`thinned`), the
        weights' columns are NaN in the rows whose iterate was not kept.
        """
        import pandas as pd

        if self.thinned:
            rows = self.coef_rows
            coef = np.full((len(self),) + self.coef.shape[1:], np.nan)
            intercept = np.full((len(self),) + self.intercept.shape[1:], np.nan)
            coef[rows], intercept[rows] = self.coef, self.intercept
        else:
            coef, intercept = self.coef, self.intercept
        cols: dict[str, Any] = {"iteration": self.iteration}
        if coef.ndim == 2:
            cols["intercept"] = intercept
            for j in range(coef.shape[1]):
                cols[f"w{j + 1}"] = coef[:, j]
        else:
            for o in range(coef.shape[2]):
                cols[f"intercept_{o}"] = intercept[:, o]
                for j in range(coef.shape[1]):
                    cols[f"w{j + 1}_{o}"] = coef[:, j, o]
        cols["loss"] = self.loss
        cols["grad_norm"] = self.grad_norm
        cols["learning_rate"] = self.learning_rate
        if self.gap is not None:
            cols["gap"] = self.gap
        return pd.DataFrame(cols)

    def to_csv(self, path: Any = None) -> str | None:
        return self.to_frame().to_csv(path, index=False)


def _floats(a: np.ndarray) -> list[Any]:
    # JSON has no NaN/inf: write them as None so that every JSON parser reads the file.
    return [None if not np.isfinite(v) else float(v) for v in np.asarray(a, dtype=float).ravel()]


#: The most bytes of iterates a :class:`TrajectoryRecorder` holds by default (64 MiB): the losses, gradient norms
#: and steps of every recorded iteration are kept, but past this the stored iterates (coef and intercept) are
#: thinned. Read when a recorder is made, so setting ``gdlab.result.ITERATE_BUDGET_BYTES`` changes later fits.
ITERATE_BUDGET_BYTES: int = 64 * 2**20


class TrajectoryRecorder:
    """Keeps the loss, gradient norm and step of every ``stride``-th iteration, and its iterate while a byte budget
    allows.

    * Rows: when more than ``max_records`` are kept, every second one is dropped and the stride doubles, so the
      kept rows stay evenly spread over the run; the first and the last are always kept.
    * Iterates: when the ones kept (and room for the last) would take more than ``max_bytes``, every second one is
      dropped and ``coef_stride`` doubles; the losses of those iterations stay. The kept iterates stay evenly
      spread, and the first and the last are always kept (even when these two alone exceed the budget). A row of
      p x k packed parameters is counted as (p + 1) k float64 numbers, at least what the Trajectory's coef and
      intercept take for it, so the Trajectory's iterates never take more than ``max_bytes``.

    Parameters
    ----------
    record_every : int — the starting stride.
    max_records : int or None — the most rows kept (None: no bound).
    max_bytes : int or None — the most bytes of iterates kept; "default": :data:`ITERATE_BUDGET_BYTES` (read
        now); None: no bound.

    Rows hold the packed parameters as given; ``finish`` turns them into coefficients and intercepts.
    """

    def __init__(self, record_every: int = 1, max_records: int | None = 100_000,
                 max_bytes: int | None | str = "default"):
        self.stride = max(1, int(record_every))
        self.max_records = None if max_records is None else max(2, int(max_records))
        if isinstance(max_bytes, str):
            if max_bytes != "default":
                raise ValueError(f"max_bytes must be an int, None or 'default', got {max_bytes!r}.")
            max_bytes = ITERATE_BUDGET_BYTES
        self.max_bytes = None if max_bytes is None else int(max_bytes)
        self.coef_stride = self.stride
        self.rows: list[tuple[int, float, float, float]] = []  # (iteration, loss, grad_norm, learning_rate)
        self.iterates: list[tuple[int, np.ndarray]] = []  # (iteration, packed parameters)
        self._row_bytes = 0
        self._last: tuple | None = None

    @property
    def nbytes(self) -> int:
        """Bytes of iterates held now, counted as the Trajectory will hold them (see the class docstring)."""
        return len(self.iterates) * self._row_bytes

    def add(self, iteration: int, params: np.ndarray, loss: float, grad_norm: float, learning_rate: float) -> None:
        iteration = int(iteration)
        kept = params.copy()
        row = (iteration, float(loss), float(grad_norm), float(learning_rate))
        self._last = (row, kept)
        if iteration % self.stride:
            return
        self.rows.append(row)
        if not self.iterates or iteration % self.coef_stride == 0:
            if not self._row_bytes:
                k = kept.shape[-1] if kept.ndim > 1 else 1
                self._row_bytes = (kept.size + k) * 8
            self.iterates.append((iteration, kept))
        if self.max_records is not None and len(self.rows) > self.max_records:
            self.stride *= 2
            self.rows = self.rows[:1] + [r for r in self.rows[1:] if r[0] % self.stride == 0]
            if self.coef_stride < self.stride:
                self.coef_stride = self.stride
                self._thin_iterates()
        if self.max_bytes is not None:
            # room for the last iterate, which finish adds when it was not kept
            while len(self.iterates) > 1 and (len(self.iterates) + 1) * self._row_bytes > self.max_bytes:
                self.coef_stride *= 2
                self._thin_iterates()

    def _thin_iterates(self) -> None:
        first = self.iterates[0]
        self.iterates = [first] + [r for r in self.iterates[1:] if r[0] % self.coef_stride == 0]

    def finish(self, fit_intercept: bool, single: bool, transform: Any = None) -> Trajectory:
        """The Trajectory of the kept rows; packed rows are [b; W] (W alone without an intercept), each (p, k).

        ``transform``: maps the stacked rows (n, p, k) to the user's coordinates (a standardized descent)."""
        rows, iterates = list(self.rows), list(self.iterates)
        if self._last is not None:
            last_row, last_params = self._last
            if not rows or rows[-1][0] != last_row[0]:
                rows.append(last_row)
            if not iterates or iterates[-1][0] != last_row[0]:
                iterates.append((last_row[0], last_params))
        if not rows:
            raise RuntimeError("empty trajectory: nothing was recorded")
        P = np.stack([r[1] for r in iterates]).astype(float, copy=False)  # (n_kept, p, k)
        coef_iteration = np.array([r[0] for r in iterates], dtype=np.int64)
        if transform is not None:
            P = transform(P)
        W = P[:, 1:] if fit_intercept else P
        B = P[:, 0] if fit_intercept else np.zeros((P.shape[0], P.shape[2]))
        return Trajectory(
            iteration=np.array([r[0] for r in rows], dtype=np.int64),
            coef=np.ascontiguousarray(W[:, :, 0] if single else W),
            intercept=np.ascontiguousarray(B[:, 0] if single else B),
            loss=np.array([r[1] for r in rows]),
            grad_norm=np.array([r[2] for r in rows]),
            learning_rate=np.array([r[3] for r in rows]),
            stride=self.stride,
            coef_iteration=coef_iteration,
            coef_stride=self.coef_stride,
        )


@dataclass(frozen=True)
class Result:
    """The outcome of a fit, whatever the method (gradient descent of any kind, or the closed form).

    Attributes
    ----------
    coef : (d,) or (d, k) — learnt weights (k outputs when y was 2-D).
    intercept : float or (k,) — learnt intercept (0 when ``fit_intercept=False``).
    loss : float — the objective at the result (mean loss, in the workshop's MSE units, plus the penalty).
    n_iter : int — iterations (epochs: full passes over the data) run.
    n_updates : int — parameter updates made (n_iter * batches per epoch).
    converged : bool — the run ended near the optimum: its gap F - F* within tol * |F*| when the optimum is known,
        with L1 its strong-convexity bound |G|^2/(2 mu) on the gap within tol; for robust losses its gradient norm
        within tol of its start (or the method is exact).
    diverged : bool — the run was stopped because the loss became non-finite or exploded.
    status : int — 0 converged, 1 max_iter reached, 2 diverged, 3 stopped by the callback, 4 exact solve,
        5 stalled (the loss stopped changing, or gtol was met, away from the optimum).
    message : str — the status in words.
    method : str — the optimizer name, or "closed_form".
    source : str — where the loss and gradient came from ("memory", "gram", "stream", "dask").
    source_reason : str — why that source was chosen.
    curvature : Curvature or None — L, mu, stable step 2/L, ... of the Hessian the descent ran on (of the
        standardized problem when ``scaling`` is "standardize": its steps are in those coordinates; the raw
        problem's is ``extra["raw_curvature"]``).
    trajectory : Trajectory or None — what the descent went through.
    optimum_loss : float or None — the loss at the exact minimiser when it is known.
    learning_rate : float — the last step used.
    scaling : str — "standardize" (the descent ran on centred, unit-variance features; everything here is in the
        original units) or "none"; scaling_reason says why.
    """

    coef: np.ndarray
    intercept: Any
    loss: float
    n_iter: int
    converged: bool
    status: int
    message: str
    method: str
    source: str
    n_updates: int = 0
    diverged: bool = False
    source_reason: str = ""
    curvature: Curvature | None = None
    trajectory: Trajectory | None = None
    optimum_loss: float | None = None
    learning_rate: float = float("nan")
    scaling: str = "none"
    scaling_reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def success(self) -> bool:
        return self.converged

    @property
    def gap(self) -> float | None:
        """loss - loss* (None when the optimum is unknown)."""
        return None if self.optimum_loss is None else float(self.loss - self.optimum_loss)

    @property
    def params(self) -> np.ndarray:
        """The workshop's w: (1 + d,) [intercept, coef...] for a single output."""
        return np.concatenate([np.atleast_1d(self.intercept), np.ravel(self.coef)]) if np.ndim(self.coef) == 1 \
            else np.vstack([np.atleast_1d(self.intercept)[None, :], self.coef])

    def predict(self, X: Any) -> np.ndarray:
        """The linear predictor X w + b (X dense or scipy.sparse)."""
        from gdlab._validation import is_sparse

        X = X if is_sparse(X) else np.asarray(X, dtype=float)
        return X @ self.coef + self.intercept

    def to_dict(self, *, trajectory: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "coef": np.asarray(self.coef).tolist(),
            "intercept": np.asarray(self.intercept).tolist(),
            "loss": _floats(np.array([self.loss]))[0],
            "n_iter": self.n_iter,
            "n_updates": self.n_updates,
            "converged": self.converged,
            "diverged": self.diverged,
            "status": self.status,
            "message": self.message,
            "method": self.method,
            "source": self.source,
            "source_reason": self.source_reason,
            "scaling": self.scaling,
            "scaling_reason": self.scaling_reason,
            "learning_rate": _floats(np.array([self.learning_rate]))[0],
            "optimum_loss": None if self.optimum_loss is None else float(self.optimum_loss),
            "curvature": None if self.curvature is None else self.curvature.to_dict(),
        }
        if trajectory and self.trajectory is not None:
            out["trajectory"] = self.trajectory.to_dict()
        return out

    def to_json(self, path: Any = None, *, trajectory: bool = True, indent: int | None = 2) -> str:
        text = json.dumps(self.to_dict(trajectory=trajectory), indent=indent)
        if path is not None:
            from gdlab._io import atomic_write_text

            atomic_write_text(path, text)
        return text

    def to_frame(self) -> pd.DataFrame:
        if self.trajectory is None:
            raise ValueError("this result has no trajectory; fit with recording enabled.")
        return self.trajectory.to_frame()

    def __repr__(self) -> str:
        coef = np.array2string(np.asarray(self.coef), precision=6, threshold=8)
        return (f"Result(method={self.method!r}, source={self.source!r}, loss={self.loss:.6g}, n_iter={self.n_iter}, "
                f"converged={self.converged}, coef={coef}, intercept={np.round(self.intercept, 6)!r}, "
                f"message={self.message!r})")
