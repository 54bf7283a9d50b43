"""GDRegressor: gdlab as a scikit-learn estimator, a drop-in for SGDRegressor that shows its work.

Switch by changing one import::

    from gdlab import GDRegressor            # instead of: from sklearn.linear_model import SGDRegressor
    model = GDRegressor().fit(X, y)
    model.trajectory_.to_frame()              # loss, weights, gradient norm and step per iteration
    model.curvature_.stable_step              # 2/L: the largest constant step that converges

Scale conventions (see docs/estimator.md)
-----------------------------------------
gdlab's squared error is the workshop's MSE, (1/m) sum r_i^2; scikit-learn's SGDRegressor uses half of it. For
``loss="squared_error"`` GDRegressor therefore minimises MSE + 2 alpha R(w), twice SGDRegressor's objective
(1/2m) sum r_i^2 + alpha R(w): the same minimiser for the same ``alpha``. Its gradient is twice
scikit-learn's, so a step ``eta0`` here moves the weights as far as ``2 * eta0`` does in SGDRegressor: to replay
an SGDRegressor run, halve its eta0 (the 'optimal' schedule is converted for you). Huber and both
epsilon-insensitive losses have the same scale in both libraries: alpha and eta0 carry over unchanged.

Where a fit runs
----------------
Always in :func:`gdlab.descend`, the one loop, which decides the step, the stop, divergence and the coordinates;
the estimator only translates its parameters. Mini-batch epochs of gd, momentum and nesterov run in the compiled
kernel of :mod:`gdlab._sgd_kernel` (numba), driven by that loop (:mod:`gdlab.engines`); other mini-batch fits,
and every fit without numba, run its NumPy epochs (see :data:`KERNEL_MAX_BATCH`).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import DataConversionWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from gdlab.curvature import Curvature
from gdlab.descent import descend
from gdlab.exceptions import ConvergenceWarning, DivergenceWarning
from gdlab.objectives import LOSSES
from gdlab.result import Trajectory
from gdlab.schedules import adaptive, constant, invscaling, optimal

__all__ = ["GDRegressor", "KERNEL_MAX_BATCH", "sklearn_optimal_t0"]

logger = logging.getLogger("gdlab")

#: Mini-batches up to this size run in the compiled epochs (gd, momentum, nesterov); None: every size. Measured
#: (10^5 x 10 rows, 3 epochs): the kernel beats the NumPy epochs 12x at 32 rows, 5x at 256, 3x at 4096, so every
#: size goes to it; set a number to send larger batches to the NumPy epochs instead.
KERNEL_MAX_BATCH: int | None = None
_OPTIMIZERS = ("gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def sklearn_optimal_t0(alpha: float) -> float:
    """t0 of scikit-learn's 'optimal' schedule for its regression losses: 1 / (typw alpha), typw = alpha^(-1/4).

    scikit-learn picks t0 so that the first step is typw / max(1, |loss'(-typw, 1)|); for its regression losses
    that maximum is 1 (gdlab's core default uses the hinge loss's 1 + typw, the classifier's choice).
    """
    typw = math.sqrt(1.0 / math.sqrt(alpha))
    return 1.0 / (typw * alpha)


class GDRegressor(RegressorMixin, BaseEstimator):
    """Linear regression by gradient descent, with scikit-learn's SGDRegressor interface and the whole story.

    Minimises ``(1/n) sum_i s_i loss(x_i . w + b - y_i) + alpha' R(w)`` (``R`` as in scikit-learn: l2 = |w|^2 / 2,
    l1 = |w|_1, elasticnet = l1_ratio |w|_1 + (1 - l1_ratio) |w|^2 / 2; the intercept is never penalised) with
    ``alpha' = 2 alpha`` for ``loss="squared_error"`` (gdlab's MSE is twice scikit-learn's half squared error, so
    the minimiser is SGDRegressor's) and ``alpha' = alpha`` for the other losses. L1 parts are applied by their
    proximal step (soft thresholding), so exact zeros appear.

    Parameters
    ----------
    loss : {"squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive"}, default="squared_error"
        The loss of the residual r = prediction - target. "squared_error" is the workshop's r^2.
    penalty : {"l2", "l1", "elasticnet"} or None, default="l2"
    alpha : float >= 0, default=0.0001
        Regularisation strength, in SGDRegressor's units (see above).
    l1_ratio : float in [0, 1] or None, default=0.15
        The L1 share of the elastic net. None (as in SGDRegressor) only with a penalty that does not use it.
    fit_intercept : bool, default=True
    max_iter : int >= 1, default=1000
        Iterations, i.e. epochs (passes over the data); a full-batch epoch is one update.
    tol : float >= 0, "auto" or None, default="auto"
        The relative objective gap to reach, as in :func:`gdlab.descend`: a full-batch fit stops, converged, when
        F - F* <= tol * |F*| (the squared error without L1, whose optimum F* the statistics give), otherwise when
        the strong-convexity bound on the gap (with L1) or the gradient norm (robust losses, relative to its
        start) is within tol. Mini-batch fits also stop when the objective
        changes by at most ``tol`` (relative) for ``n_iter_no_change`` epochs in a row (with ``early_stopping``:
        when the validation R^2 fails to beat its best by ``tol`` that often; with the "adaptive" schedule: divide
        the step by 5 instead, until it falls below 1e-6), and are called converged only if the test above holds.
        None runs all ``max_iter`` epochs. "auto": 1e-10 for full batches (cheap, exact iterations: run to the
        optimum), 1e-4 for mini-batches (noisy losses). SGDRegressor's 1e-3 is an absolute change of its running
        loss.
    shuffle : bool, default=True
        Reshuffle the rows each epoch (mini-batch and stochastic fits).
    verbose : int, default=0
        > 0: log the progress of each epoch through the ``logging`` module (logger ``"gdlab"``, level INFO; to see
        it, configure logging, e.g. ``logging.basicConfig(level=logging.INFO)``). Nothing is printed.
    epsilon : float >= 0, default=0.1
        The Huber threshold, or the width of the epsilon-insensitive zone.
    random_state : int, RandomState instance or None, default=None
        Seeds the row shuffling and the validation split.
    learning_rate : {"auto", "constant", "optimal", "invscaling", "adaptive"}, default="auto"
        "auto": full batch, the step from the curvature (2/(L+mu) for gd; Polyak's heavy ball for momentum;
        1/L and (sqrt k - 1)/(sqrt k + 1) for nesterov; 0.1 for adagrad, 0.01 for rmsprop and adam);
        mini-batches, scikit-learn's "adaptive" schedule started at 1 / (2 L_B), with L_B the expected
        smoothness of a batch (Gower et al., 2019: between L for the full batch and max_i loss'' |x_i|^2 for
        one row), times (1 - beta) with momentum; for the non-smooth epsilon-insensitive loss, "invscaling"
        with power 1/2 from the same scale. "constant": eta0. "invscaling": eta0 / (t + 1)^power_t.
        "optimal": 1 / (alpha' (t0 + t)) with scikit-learn's t0. "adaptive": eta0, divided by 5 each time the
        loss stalls for ``n_iter_no_change`` epochs. (t counts updates from 0.)
    eta0 : float > 0, default=0.01
        The initial step for "constant", "invscaling" and "adaptive", in gdlab's scale: an SGDRegressor eta0
        of e is eta0 = e / 2 here for the squared error (same for the other losses).
    power_t : float >= 0, default=0.25
        The exponent of "invscaling". Negative values, which scikit-learn 1.8 deprecated (an error from 1.10),
        are refused with a ValueError (see docs/estimator.md).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (SGDRegressor's split: the same rows for the same
        ``random_state``) and stop when their R^2 stops improving; the training rows keep their order. Not with
        ``partial_fit`` (a ValueError, as in SGDRegressor).
    validation_fraction : float in (0, 1), default=0.1
    n_iter_no_change : int >= 1, default=5
    warm_start : bool, default=False
        ``fit`` starts from the previous solution (the schedule starts again, as in scikit-learn).
    average : bool or int > 0, default=False
        Averaged SGD: ``coef_`` is the mean of the iterates after ``average`` updates (True = 1).
    optimizer : {"gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"}, default="gd"
        Not in SGDRegressor: the update rule (see ``gdlab.optimizers``).
    batch_size : int >= 1 or None, default=None
        None: full batch (every update sees all rows). k: mini-batches of k rows. 1: stochastic.
    beta : float in [0, 1) or None, default=None
        Momentum for "momentum" and "nesterov" (None: 0.9, or the curvature's choice with learning_rate="auto").
    beta1, beta2 : float in [0, 1), default=0.9, 0.999
        Adam's moment decays.
    decay : float in [0, 1), default=0.9
        RMSProp's decay of the running mean square.
    eps : float > 0 or None, default=None
        The optimizer's denominator guard (None: its default: 1e-10 adagrad, 1e-8 rmsprop and adam).
    standardize : "auto", bool, default="auto"
        Not in SGDRegressor: run the descent on centred features of unit variance, and report ``coef_``,
        ``intercept_`` and ``trajectory_`` in the original units (the objective, penalty included, is unchanged;
        the statistics the fit forms anyway give the means and spreads, so no extra pass over X). "auto":
        standardize with ``learning_rate="auto"`` (the default), not with an explicit schedule, whose ``eta0`` is
        a step in the raw features' units (so SGDRegressor's settings replay exactly). Full-batch and mini-batch
        fits (the compiled epochs read each row as (x - mean) / sd, no copy of X); ``partial_fit`` keeps the raw
        features, since each chunk would have its own means and spreads.
    record_every : int >= 1, default=1
        Keep every k-th iterate in ``trajectory_``.
    max_records : int >= 2, default=10000
        Bound on the iterates kept (beyond it the kept ones are thinned, evenly).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
        In X's dtype (float32 or float64), as in SGDRegressor; the fit itself runs in float64. A y of shape
        (n_samples, 1) is one target (shape (n_features,)), with a DataConversionWarning, as in SGDRegressor.
    intercept_ : ndarray of shape (1,) or (n_outputs,), float64 (as SGDRegressor's)
    n_iter_ : int — epochs run by the last fit (or partial_fit).
    t_ : int — weight updates made, plus one (scikit-learn's convention: n_iter_ * batches + 1 after ``fit``).
    n_features_in_ : int;  feature_names_in_ : ndarray of str (when X had string column names).
    trajectory_ : gdlab.Trajectory — iteration, coef, intercept, loss, grad_norm, learning_rate (and gap to the
        optimum for squared loss without L1) per recorded epoch of the last fit.
    curvature_ : gdlab.Curvature or None — L, mu, condition number, stable_step = 2/L of the objective
        (None for the non-smooth epsilon-insensitive loss).
    loss_ : float — the objective at the returned weights (in gdlab's scale).
    converged_ : bool;  diverged_ : bool — the descent blew up; the weights returned are those of the lowest loss
        recorded, and a DivergenceWarning says why (2/L, feature scales).
    message_ : str — how the last fit ended.
    solver_ : str — where the fit ran: "descend (memory source)", "descend (gram source)" or "numba kernel".

    Examples
    --------
    >>> import gdlab
    >>> ds = gdlab.datasets.workshop_line()
    >>> model = gdlab.GDRegressor(penalty=None, tol=None, max_iter=10, learning_rate="constant", eta0=0.1)
    >>> model = model.fit(ds.X, ds.y, coef_init=ds.coef_init, intercept_init=ds.intercept_init)
    >>> model.trajectory_.params.shape   # the workshop's w = [intercept, slope] at iterations 0..10
    (11, 2)
    """

    _parameter_constraints: dict = {
        "loss": [StrOptions(set(LOSSES))],
        "penalty": [StrOptions({"l2", "l1", "elasticnet"}), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both"), None],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"}), None],
        "shuffle": ["boolean"],
        "verbose": ["verbose"],
        "epsilon": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "learning_rate": [StrOptions({"auto", "constant", "optimal", "invscaling", "adaptive"})],
        "eta0": [Interval(Real, 0, None, closed="neither")],
        # any real, as SGDRegressor's: a negative one is refused in _check_settings with the reason and the fix
        "power_t": [Interval(Real, None, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "warm_start": ["boolean"],
        "average": [Interval(Integral, 0, None, closed="neither"), "boolean"],
        "optimizer": [StrOptions(set(_OPTIMIZERS))],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "beta": [Interval(Real, 0, 1, closed="left"), None],
        "beta1": [Interval(Real, 0, 1, closed="left")],
        "beta2": [Interval(Real, 0, 1, closed="left")],
        "decay": [Interval(Real, 0, 1, closed="left")],
        "eps": [Interval(Real, 0, None, closed="neither"), None],
        "standardize": [StrOptions({"auto"}), "boolean"],
        "record_every": [Interval(Integral, 1, None, closed="left")],
        "max_records": [Interval(Integral, 2, None, closed="left")],
    }

    def __init__(self, loss="squared_error", *, penalty="l2", alpha=0.0001, l1_ratio=0.15, fit_intercept=True,
                 max_iter=1000, tol="auto", shuffle=True, verbose=0, epsilon=0.1, random_state=None,
                 learning_rate="auto", eta0=0.01, power_t=0.25, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, warm_start=False, average=False, optimizer="gd", batch_size=None, beta=None,
                 beta1=0.9, beta2=0.999, decay=0.9, eps=None, standardize="auto", record_every=1,
                 max_records=10000):
        self.loss = loss
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.max_iter = max_iter
        self.tol = tol
        self.shuffle = shuffle
        self.verbose = verbose
        self.epsilon = epsilon
        self.random_state = random_state
        self.learning_rate = learning_rate
        self.eta0 = eta0
        self.power_t = power_t
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.warm_start = warm_start
        self.average = average
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.beta = beta
        self.beta1 = beta1
        self.beta2 = beta2
        self.decay = decay
        self.eps = eps
        self.standardize = standardize
        self.record_every = record_every
        self.max_records = max_records

    # ---- scikit-learn plumbing ------------------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        return tags

    def _validate_xy(self, X: Any, y: Any, reset: bool, stacklevel: int) -> tuple[np.ndarray, np.ndarray]:
        _check_missing(X, "X")
        X, y = validate_data(self, X, y, reset=reset, dtype=[np.float64, np.float32], multi_output=True,
                             y_numeric=True, order="C")
        if y.ndim == 2 and y.shape[1] == 1:
            # SGDRegressor's rule (column_or_1d): one target, coef_ of shape (n_features,), predictions (n,)
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the shape of y "
                          "to (n_samples, ), for example using ravel(). GDRegressor fits it as one target, as "
                          "SGDRegressor does; pass y of shape (n_samples, n_outputs) with n_outputs >= 2 for "
                          "several targets.", DataConversionWarning, stacklevel=stacklevel)
            y = y[:, 0]
        return X, y

    # ---- the objective in gdlab's terms ---------------------------------------------------------------------
    @property
    def _objective_alpha(self) -> float:
        """alpha' of gdlab's objective: 2 alpha for the squared error (MSE = 2 x half squared error)."""
        return 2.0 * float(self.alpha) if self.loss == "squared_error" else float(self.alpha)

    def _check_settings(self, partial: bool = False) -> None:
        if partial and self.early_stopping:
            # SGDRegressor's message: partial_fit has no held-out rows to stop on
            raise ValueError("early_stopping should be False with partial_fit: each call is one epoch on the rows "
                             "given, with no validation rows held out. Set early_stopping=False, or use fit.")
        if self.learning_rate == "optimal" and self.alpha == 0:
            raise ValueError("learning_rate='optimal' needs alpha > 0 (its step is 1 / (alpha (t0 + t))); "
                             "got alpha=0. Set alpha > 0 or choose another learning_rate.")
        if self.penalty == "elasticnet" and self.l1_ratio is None:
            raise ValueError("l1_ratio must be set when penalty is 'elasticnet' (l1_ratio=None is only for 'l1', "
                             "'l2' and None, which do not use it); pass a value in [0, 1], e.g. l1_ratio=0.15 "
                             "(the default).")
        if self.power_t < 0:
            # SGDRegressor (scikit-learn 1.8, 1.9) still takes it with a FutureWarning; see docs/estimator.md
            raise ValueError(f"power_t={self.power_t!r} is negative: the 'invscaling' step eta0 (t + 1)^"
                             f"{-self.power_t:g} would grow without bound. scikit-learn deprecated negative "
                             "power_t in 1.8 and refuses it from 1.10; GDRegressor refuses it now. Use "
                             "power_t >= 0 (0 is a constant step, 0.25 the default).")

    def _optimizer_params(self, auto_beta: float | None = None) -> dict[str, float]:
        name = self.optimizer
        if name in ("momentum", "nesterov"):
            beta = self.beta if self.beta is not None else auto_beta
            return {} if beta is None else {"beta": float(beta)}
        params: dict[str, float] = {}
        if name == "adam":
            params = {"beta1": float(self.beta1), "beta2": float(self.beta2)}
        elif name == "rmsprop":
            params = {"decay": float(self.decay)}
        if self.eps is not None and name in ("adagrad", "rmsprop", "adam"):
            params["eps"] = float(self.eps)
        return params

    def _named_schedule(self) -> Any:
        """The schedule for an explicit ``learning_rate`` (not "auto"), in gdlab's scale."""
        if self.learning_rate == "constant":
            return constant(float(self.eta0))
        if self.learning_rate == "invscaling":
            return invscaling(float(self.eta0), float(self.power_t))
        if self.learning_rate == "adaptive":
            return adaptive(float(self.eta0))
        # 'optimal': scikit-learn's step 1 / (alpha (t0 + t)) on its objective is 1 / (alpha' (t0 + t)) on
        # gdlab's, whose gradient is alpha'/alpha times larger: the same move of the weights.
        return optimal(self._objective_alpha, sklearn_optimal_t0(float(self.alpha)))

    # ---- public API -------------------------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None, coef_init=None, intercept_init=None, sample_weight=None):
        """Fit the model by gradient descent.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features); or data that need not fit in memory: a Parquet/CSV
            file or folder (with y the target column's name), a Dask array (with y a Dask array) or dataframe
            (with y the column's name), or a source from ``gdlab.scale.open_source`` (with y=None).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs); a column name for files and dataframes
        coef_init : array-like of shape (n_features,) or (n_outputs, n_features), optional
            The starting weights (default: zeros, or the previous solution with ``warm_start``).
        intercept_init : float or array-like of shape (n_outputs,), optional
        sample_weight : array-like of shape (n_samples,), optional
            The objective is the weighted mean sum_i s_i loss_i / sum_i s_i.

        Returns
        -------
        self
        """
        self._check_settings()
        source = _as_source(X, y, self)
        if source is not None:
            return self._fit_source(source, coef_init, intercept_init, sample_weight)
        X, y = self._validate_xy(X, y, reset=True, stacklevel=4)
        self._coef_dtype = X.dtype  # float32 input gives float32 coef_, as in SGDRegressor
        warm = self.warm_start and hasattr(self, "coef_")
        # the core's own start (with standardization the intercept starts at the best one for zero slopes)
        self._default_start = coef_init is None and intercept_init is None and not warm
        start = self._starting_point(X.shape[1], y, coef_init, intercept_init,
                                     previous=self._theta if warm else None)
        self._reset_progress()
        self._run(X, y, sample_weight, start, max_iter=self.max_iter, partial=False, stacklevel=5)
        return self

    def _fit_source(self, source: Any, coef_init: Any, intercept_init: Any, sample_weight: Any) -> "GDRegressor":
        """Fit on a source of loss and gradient (streamed files, a Dask collection): see :func:`_as_source`."""
        unsupported = [name for name, on in (("sample_weight", sample_weight is not None),
                                             ("early_stopping", self.early_stopping),
                                             ("average", bool(self.average))) if on]
        if unsupported:
            raise ValueError(f"{', '.join(unsupported)} cannot be used when fitting files or Dask collections "
                             "(they are fitted from one-pass statistics or streamed batches); load the data into "
                             "memory for these options.")
        t_start = time.perf_counter()
        single = bool(getattr(source, "single_output", source.n_outputs == 1))
        k, d = source.n_outputs, source.n_features
        y_shape = np.empty(0) if single else np.empty((0, k))
        warm = self.warm_start and hasattr(self, "coef_")
        theta0 = self._starting_point(d, y_shape, coef_init, intercept_init, previous=self._theta if warm else None)
        self._reset_progress()
        self._seed_rng()
        self._coef_dtype = np.dtype(np.float64)
        self._tol = (1e-10 if self.batch_size is None else 1e-4) if self.tol == "auto" else self.tol
        if self.learning_rate == "auto":
            lr: Any = "auto"
            params = self._optimizer_params()
        else:
            lr, params = self._named_schedule(), self._optimizer_params()
            self._schedule = lr
        off = 1 if self.fit_intercept else 0

        def callback(info) -> bool:
            self._log(info.iteration, info.loss, info.grad_norm, info.learning_rate)
            return False

        res = descend(
            source, None, optimizer=self.optimizer, learning_rate=lr, max_iter=self.max_iter, tol=self._tol,
            n_iter_no_change=self.n_iter_no_change, batch_size=self.batch_size, shuffle=self.shuffle,
            random_state=self._rng, standardize=self.standardize,
            coef_init=theta0[off:], intercept_init=theta0[0] if self.fit_intercept else None,
            penalty=self.penalty, alpha=self._objective_alpha, l1_ratio=self.l1_ratio,
            record_every=self.record_every, max_records=self.max_records, callback=callback, warn=False, **params)
        if self._schedule is None:
            self._schedule = res.extra["optimizer"].learning_rate
        out = _RunOutput(theta=_pack(res.coef, res.intercept, self.fit_intercept, k), trajectory=res.trajectory,
                         curvature=res.curvature, loss=res.loss, n_iter=res.n_iter, n_updates=res.n_updates,
                         status=res.status, message=res.message, diverged=res.diverged, avg_theta=None,
                         n_averaged=0, solver=f"descend ({res.source} source)", learning_rate=res.learning_rate)
        self._finish(out, single, time.perf_counter() - t_start, stacklevel=4)
        self.n_features_in_ = d
        names = getattr(source, "feature_names", None)
        if names is not None:
            self.feature_names_in_ = np.asarray(list(names), dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights, schedule and optimizer state.

        Unlike SGDRegressor's, the learning-rate schedule (and momentum or Adam's moments) carries on across
        calls: calling ``partial_fit`` on the chunks of a data set is one long stochastic descent. With
        ``batch_size=None`` each call is one full-batch step on the chunk given.

        Returns
        -------
        self
        """
        first = not hasattr(self, "coef_")
        if first:  # as SGDRegressor, the parameters are checked on the first call
            self._validate_params()
            self._check_settings(partial=True)
        X, y = self._validate_xy(X, y, reset=first, stacklevel=3)
        if first:
            self._coef_dtype = X.dtype  # coef_ keeps the first call's dtype, as SGDRegressor allocates it then
            start = self._starting_point(X.shape[1], y, None, None, previous=None)
            self._reset_progress()
        else:
            k_prev = self._theta.shape[1]
            k_now = 1 if y.ndim == 1 else y.shape[1]
            if k_now != k_prev or (y.ndim == 1) != self._single_output:
                raise ValueError(f"y has {k_now} output(s) in this partial_fit call but the model was fitted with "
                                 f"{k_prev}; pass targets of the same shape each time.")
            start = self._theta.copy()
        self._run(X, y, sample_weight, start, max_iter=1, partial=True, stacklevel=4)
        return self

    def predict(self, X):
        """Predictions X w + b, of shape (n_samples,) or (n_samples, n_outputs), in float64 (as SGDRegressor's)."""
        check_is_fitted(self, "coef_")
        X = validate_data(self, X, reset=False, dtype=[np.float64, np.float32])
        if self.coef_.ndim == 1:
            return np.asarray(X @ self.coef_.astype(X.dtype, copy=False), dtype=np.float64) + self.intercept_[0]
        return np.asarray(X @ self.coef_.T.astype(X.dtype, copy=False), dtype=np.float64) + self.intercept_

    # ---- state --------------------------------------------------------------------------------------------------
    def _reset_progress(self) -> None:
        self.t_ = 1
        self._state = None  # gdlab.engines.DescentState: where partial_fit goes on from
        self._schedule = None
        self._schedule_params: dict[str, float] = {}
        self._rng = None  # drawn by _seed_rng, after the validation split (which draws from random_state first)

    def _seed_rng(self) -> None:
        """The generator of the row shuffling, seeded from random_state as SGDRegressor draws its seeds.

        SGDRegressor draws the validation split from ``random_state`` first (see _run), then its shuffling seed,
        randint(0, 2^31 - 1), then one more, randint(1, 2^31 - 1) (``make_dataset``'s); both are drawn here, so
        a RandomState instance shared with later fits advances as it does in SGDRegressor (and holds out the same
        rows in a second fit). The shuffling itself is gdlab's (the compiled epochs' Fisher-Yates shuffle).
        """
        state = check_random_state(self.random_state)
        seed = state.randint(0, np.iinfo(np.int32).max)
        state.randint(1, np.iinfo(np.int32).max)
        self._rng = np.random.default_rng(seed)

    def _starting_point(self, d: int, y: np.ndarray, coef_init: Any, intercept_init: Any,
                        previous: np.ndarray | None) -> np.ndarray:
        """theta (p, k): row 0 the intercept when fitted, then the coefficients."""
        k = 1 if y.ndim == 1 else y.shape[1]
        p = d + (1 if self.fit_intercept else 0)
        off = p - d
        if previous is not None and previous.shape == (p, k):
            theta = previous.copy()
        else:
            theta = np.zeros((p, k))
        if coef_init is not None:
            ci = np.asarray(coef_init, dtype=np.float64)
            if ci.size != d * k or (k > 1 and ci.ndim == 2 and ci.shape != (k, d)):
                want = f"({d},)" if k == 1 else f"({k}, {d}) (n_outputs, n_features)"
                raise ValueError(f"coef_init has shape {ci.shape}; expected {want}, the shape of coef_.")
            theta[off:] = ci.reshape(k, d).T if k > 1 else ci.reshape(d, 1)
        if intercept_init is not None:
            if not self.fit_intercept:
                raise ValueError("intercept_init was given but fit_intercept=False; drop one of them.")
            ii = np.asarray(intercept_init, dtype=np.float64).ravel()
            if ii.size != k:
                raise ValueError(f"intercept_init has {ii.size} values; expected {k} (one per output).")
            theta[0] = ii
        return theta

    # ---- the fit ---------------------------------------------------------------------------------------------
    def _run(self, X: np.ndarray, y: np.ndarray, sample_weight: Any, theta0: np.ndarray, *, max_iter: int,
             partial: bool, stacklevel: int) -> None:
        t_start = time.perf_counter()
        single = y.ndim == 1
        Y = y.reshape(-1, 1) if single else y
        m = X.shape[0]
        sw = None if sample_weight is None else _check_sample_weight(sample_weight, X, dtype=np.float64)
        if sw is not None and sw.sum() <= 0:
            from gdlab._validation import check_sample_weight_values

            check_sample_weight_values(sw)  # names the cause: NaN, all negative, or all zero
            raise ValueError("sample_weight sums to zero or less; at least one row must have a positive weight.")

        # hold out the validation rows (early_stopping) as SGDRegressor does: scikit-learn's ShuffleSplit on
        # random_state itself, before any other draw from it (so RandomState(42) holds out the rows 42 does);
        # the training rows keep their order (with shuffle=False they are visited as given)
        val = None
        if self.early_stopping and not partial:
            from sklearn.model_selection import ShuffleSplit

            n_val = int(math.ceil(self.validation_fraction * m))
            if n_val < 1 or m - n_val < 1:
                raise ValueError(f"early_stopping with validation_fraction={self.validation_fraction} leaves an "
                                 f"empty training or validation set for {m} samples; use more samples or "
                                 "another validation_fraction.")
            split = ShuffleSplit(n_splits=1, test_size=n_val, random_state=self.random_state)
            train_idx, val_idx = (np.sort(idx) for idx in next(split.split(X)))
            val = (X[val_idx], Y[val_idx], None if sw is None else sw[val_idx])
            X, Y = X[train_idx], Y[train_idx]
            sw = None if sw is None else sw[train_idx]
            m = X.shape[0]
        if self._rng is None:
            self._seed_rng()

        bs = self.batch_size
        full_batch = bs is None or bs >= m
        # tol='auto': full-batch iterations are cheap and exact, so run to the optimum; stochastic losses are
        # noisy, so stop when they settle to 1e-4
        self._tol = (1e-10 if full_batch else 1e-4) if self.tol == "auto" else self.tol
        average: bool | int = False if not self.average else int(self.average)
        engine = ("numpy" if not full_batch and KERNEL_MAX_BATCH is not None and bs > KERNEL_MAX_BATCH
                  else "auto")
        out = self._run_descend(X, Y if not single else Y[:, 0], sw, theta0, max_iter=max_iter, partial=partial,
                                val=val, full_batch=full_batch, average=average, engine=engine)
        out.partial_call = partial
        self._finish(out, single, time.perf_counter() - t_start, stacklevel)

    def _validation_score(self, theta: np.ndarray, val: tuple) -> float:
        from sklearn.metrics import r2_score

        Xv, Yv, swv = val
        off = 1 if self.fit_intercept else 0
        pred = Xv @ theta[off:].astype(Xv.dtype, copy=False) + (theta[0] if off else 0.0)
        return float(r2_score(Yv, pred, sample_weight=swv))

    def _early_stop_step(self, theta: np.ndarray, val: tuple) -> bool:
        """scikit-learn's rule: no improvement of the validation score by tol for n_iter_no_change epochs
        (never with tol=None, as in SGDRegressor)."""
        score = self._validation_score(theta, val)
        if self._tol is None:
            return False
        tol = float(self._tol)
        if score < self._best_val + tol:
            self._val_no_improve += 1
        else:
            self._val_no_improve = 0
        self._best_val = max(self._best_val, score)
        return self._val_no_improve >= self.n_iter_no_change

    def _log(self, it: int, loss: float, grad_norm: float, eta: float) -> None:
        if self.verbose:
            logger.info("GDRegressor epoch %d: loss %.6g, |grad| %.3g, learning rate %.4g", it, loss, grad_norm,
                        eta)

    def _run_descend(self, X, y, sw, theta0: np.ndarray, *, max_iter: int, partial: bool, val, full_batch: bool,
                     average: bool | int, engine: str) -> "_RunOutput":
        """One call of the core loop with this estimator's parameters (partial_fit: one epoch, going on from the
        state the previous call left)."""
        k = 1 if y.ndim == 1 else y.shape[1]
        off = 1 if self.fit_intercept else 0
        if self._schedule is None:
            lr: Any = "auto" if self.learning_rate == "auto" else self._named_schedule()
            params = self._optimizer_params()
        else:  # later partial_fit calls go on with the schedule the first one settled
            lr, params = self._schedule, dict(self._schedule_params)

        def callback(info) -> bool:
            self._log(info.iteration, info.loss, info.grad_norm, info.learning_rate)
            if val is not None:
                return self._early_stop_step(_pack(info.coef, info.intercept, self.fit_intercept, k), val)
            return False

        if val is not None:
            self._best_val, self._val_no_improve = -math.inf, 0
        default_start = not partial and getattr(self, "_default_start", False)
        res = descend(
            X, y, optimizer=self.optimizer, learning_rate=lr, max_iter=max_iter, tol=self._tol,
            n_iter_no_change=self.n_iter_no_change, batch_size=None if full_batch else self.batch_size,
            shuffle=self.shuffle, random_state=self._rng, fit_intercept=self.fit_intercept,
            coef_init=None if default_start else theta0[off:],
            intercept_init=theta0[0] if self.fit_intercept and not default_start else None, sample_weight=sw,
            loss=self.loss, epsilon=self.epsilon, penalty=self.penalty, alpha=self._objective_alpha,
            # (partial_fit: each chunk would have its own means and spreads, so the coordinates stay raw)
            l1_ratio=self.l1_ratio, standardize=False if partial else self.standardize,
            average=average, engine=engine, state=self._state if partial else None,
            record_every=self.record_every, max_records=self.max_records, callback=callback, warn=False, **params)
        used = res.extra["optimizer"]
        self._schedule, self._schedule_params = used.learning_rate, dict(used.hyperparameters)
        self._state = res.extra["state"]
        status, message = res.status, res.message
        if status == 3 and val is not None:
            # a stop on the held-out rows (SGDRegressor's convergence), not a claim about the training objective:
            # the message says how far that is from its minimum when the minimum is known
            # status 3 (stopped, not converged): converged_ is a claim about the training objective's optimum
            status, message = 3, (f"early stopping: the validation R^2 did not improve by tol={self._tol} for "
                                  f"{self.n_iter_no_change} epochs")
            if res.optimum_loss is not None and res.optimum_loss > 0 and math.isfinite(res.loss):
                message += (f"; the training loss {res.loss:.6g} is {res.loss / res.optimum_loss:.4g}x its "
                            f"minimum {res.optimum_loss:.6g}")
        averaged = self._state.average is not None and not res.diverged
        solver = "numba kernel" if res.extra["engine"] == "compiled" else f"descend ({res.source} source)"
        return _RunOutput(theta=_pack_theta(res.extra["theta"], k), trajectory=res.trajectory,
                          curvature=res.curvature, loss=res.loss, n_iter=res.n_iter, n_updates=res.n_updates,
                          status=status, message=message, diverged=res.diverged,
                          avg_theta=_pack(res.coef, res.intercept, self.fit_intercept, k) if averaged else None,
                          n_averaged=self._state.n_averaged, solver=solver, learning_rate=res.learning_rate)

    def _finish(self, out: "_RunOutput", single: bool, seconds: float, stacklevel: int) -> None:
        # stacklevel: the frames between the user's fit/partial_fit call and the warnings below
        theta = out.theta
        loss = out.loss
        if out.diverged:
            # the lowest loss recorded in the trajectory
            traj = out.trajectory
            losses = np.where(np.isfinite(traj.loss), traj.loss, np.inf)
            i = int(np.argmin(losses))
            theta = _pack(traj.coef[i], traj.intercept[i], self.fit_intercept, theta.shape[1])
            best_it, loss = int(traj.iteration[i]), float(traj.loss[i])
            warnings.warn(f"{out.message} GDRegressor keeps the weights of iteration {best_it}, the lowest loss "
                          "recorded, and sets diverged_=True.", DivergenceWarning, stacklevel=stacklevel)
        elif out.status in (1, 5) and self._tol is not None and not out.partial_call:
            warnings.warn(f"GDRegressor ({self.optimizer}) {_estimator_terms(out.message, self.max_iter)}",
                          ConvergenceWarning, stacklevel=stacklevel)
        self._theta = theta.copy()
        self._single_output = single
        final = theta if out.avg_theta is None or out.diverged else out.avg_theta
        off = 1 if self.fit_intercept else 0
        W = final[off:]
        b = final[0] if self.fit_intercept else np.zeros(final.shape[1])
        # coef_ in the input's dtype, intercept_ in float64: SGDRegressor's dtypes (its float32 fit returns the
        # intercept as a C double); the fit itself ran in float64
        self.coef_ = (W[:, 0] if single else W.T).astype(getattr(self, "_coef_dtype", np.float64), copy=True)
        self.intercept_ = np.atleast_1d(np.asarray(b, dtype=np.float64)).copy()
        self.n_iter_ = int(out.n_iter)
        self.t_ = int(self.t_ + out.n_updates)
        self.trajectory_ = out.trajectory
        self.curvature_ = out.curvature
        self.loss_ = float(loss)
        self.converged_ = out.status == 0
        self.diverged_ = bool(out.diverged)
        self.message_ = out.message
        self.solver_ = out.solver
        if self.verbose:
            logger.info("GDRegressor: %s after %d epoch(s), %d updates, %.3g s (%s)", out.message, out.n_iter,
                        out.n_updates, seconds, out.solver)


def _check_missing(X: Any, name: str) -> None:
    """A DataFrame with missing values (NaN, None, pd.NA) gets one error naming the column and the row; pd.NA in
    an object column would otherwise reach NumPy as a TypeError ("float() argument must be ... not 'NAType'")."""
    isna = getattr(X, "isna", None)
    if isna is None or not hasattr(X, "columns"):
        return
    mask = isna()
    if not bool(mask.to_numpy().any()):
        return
    col = next(c for c in X.columns if bool(mask[c].any()))
    row = int(np.flatnonzero(mask[col].to_numpy())[0])
    raise ValueError(f"{name} column {col!r} holds a missing value ({X[col].iloc[row]!r}) at row {row}: gradient "
                     "descent needs numbers in every cell; drop or fill the missing values first (e.g. "
                     "DataFrame.dropna, or sklearn.impute.SimpleImputer in a Pipeline).")


def _estimator_terms(message: str, max_iter: int) -> str:
    """The core's message in the estimator's words (epochs; the closed form is LinearRegression or Ridge)."""
    message = message.replace(f"max_iter={max_iter} iterations", f"max_iter={max_iter} epochs")
    return message.replace("the closed form (gdlab.closed_form(X, y))",
                           "the closed form (gdlab.closed_form, or scikit-learn's LinearRegression/Ridge)")


@dataclass
class _RunOutput:
    theta: np.ndarray
    trajectory: Trajectory
    curvature: Curvature | None
    loss: float
    n_iter: int
    n_updates: int
    status: int
    message: str
    diverged: bool
    avg_theta: np.ndarray | None
    n_averaged: int
    solver: str
    learning_rate: float
    partial_call: bool = False


def _as_source(X: Any, y: Any, est: "GDRegressor") -> Any:
    """A source of loss and gradient when X is data that need not fit in memory, else None.

    * ``fit(source)``: a source object (``gdlab.scale.open_source(...)``, with y=None);
    * ``fit("data/", "price")``: a Parquet/CSV file or folder and the name of the target column (or a list of
      names); every other column is a feature (name them with ``open_source(..., features=[...])``);
    * ``fit(dask_X, dask_y)`` or ``fit(dask_dataframe, "price")``: Dask collections on the current client.
    """
    if hasattr(X, "value_and_grad") and hasattr(X, "n_features"):
        if y is not None:
            raise ValueError("y must be None when X is a source object (the source holds the targets).")
        if getattr(X, "fit_intercept", est.fit_intercept) != est.fit_intercept:
            raise ValueError(f"the source was opened with fit_intercept={X.fit_intercept} but the estimator has "
                             f"fit_intercept={est.fit_intercept}; open it with the same setting.")
        return X
    from gdlab import scale

    try:
        scalable = scale.is_scalable(X)
    except ImportError:  # dask not installed: nothing can be a dask collection
        scalable = scale.is_path(X)
    if not scalable:
        return None
    if y is None:
        raise ValueError("name the target: fit(path, 'column') for files and dataframes, or fit(dask_X, dask_y).")
    return scale.open_source(X, target=y, fit_intercept=est.fit_intercept, loss=est.loss, epsilon=est.epsilon)


def _pack(coef: Any, intercept: Any, fit_intercept: bool, k: int) -> np.ndarray:
    W = np.asarray(coef, dtype=np.float64).reshape(-1, k)
    if not fit_intercept:
        return W.copy()
    return np.vstack([np.asarray(intercept, dtype=np.float64).reshape(1, k), W])


def _pack_theta(theta: np.ndarray, k: int) -> np.ndarray:
    """descend's packed parameters (p,) or (p, k) as (p, k)."""
    return np.asarray(theta, dtype=np.float64).reshape(-1, k).copy()


def _unpack(theta: np.ndarray, fit_intercept: bool, single: bool) -> tuple[np.ndarray, Any]:
    W = theta[1:] if fit_intercept else theta
    b = theta[0] if fit_intercept else np.zeros(theta.shape[1])
    if single:
        return W[:, 0].copy(), float(b[0])
    return W.copy(), b.copy()
