"""GDRegressor and GDClassifier: gdlab as scikit-learn estimators, drop-ins for SGDRegressor and SGDClassifier that
show their work.

Switch by changing one import::

    from gdlab import GDRegressor            # instead of: from sklearn.linear_model import SGDRegressor
    from gdlab import GDClassifier           # instead of: SGDClassifier, or LogisticRegression (see docs/estimator.md)
    model = GDRegressor().fit(X, y)
    model.trajectory_.to_frame()              # loss, weights, gradient norm and step per iteration
    model.curvature_.stable_step              # 2/L: the largest constant step that converges

Both estimators share one base (:class:`_BaseGD`): the parameters, their validation, the call of
:func:`gdlab.descend`, ``partial_fit``'s state and the learnt attributes. Each face only says how its target
becomes descend's (real values; class labels as -1/+1 columns or one-hot rows) and how its predictions are read.

Scale conventions (see docs/estimator.md)
-----------------------------------------
gdlab's losses are :mod:`gdlab.losses` objects; each knows its ``sklearn_ratio``, gdlab's loss over
scikit-learn's loss of the same name (2 for the squared error: gdlab's is the workshop's MSE, r^2, scikit-learn's
r^2 / 2; 1 for every other loss). The estimators minimise ``(1/n) sum_i s_i loss_i + ratio * alpha * R(w)``, which
is ``ratio`` times scikit-learn's objective: the same minimiser for the same ``alpha``. The gradient is ``ratio``
times scikit-learn's, so a step ``eta0`` here moves the weights as far as ``ratio * eta0`` does there: to replay a
scikit-learn run with the squared error, halve its eta0 (the 'optimal' schedule is converted for you).

Where a fit runs
----------------
Always in :func:`gdlab.descend`, the one loop, which decides the step, the stop, divergence and the coordinates;
the estimators only translate their parameters. Mini-batch epochs of gd, momentum and nesterov run in the compiled
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
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, RegressorMixin, _fit_context
from sklearn.exceptions import DataConversionWarning
from sklearn.linear_model._base import LinearClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, unique_labels
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from gdlab.curvature import Curvature
from gdlab.descent import descend
from gdlab.exceptions import ConvergenceWarning, DivergenceWarning, SeparationWarning
from gdlab.losses import LOSSES, REGRESSION_LOSSES, Loss, get_loss
from gdlab.result import Trajectory
from gdlab.schedules import adaptive, constant, invscaling, optimal

__all__ = ["GDRegressor", "GDClassifier", "KERNEL_MAX_BATCH", "sklearn_optimal_t0"]

logger = logging.getLogger("gdlab")

#: Mini-batches up to this size run in the compiled epochs (gd, momentum, nesterov); None: every size. Measured
#: (10^5 x 10 rows, 3 epochs): the kernel beats the NumPy epochs 12x at 32 rows, 5x at 256, 3x at 4096, so every
#: size goes to it; set a number to send larger batches to the NumPy epochs instead.
KERNEL_MAX_BATCH: int | None = None
_OPTIMIZERS = ("gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
#: GDClassifier's losses: SGDClassifier's (the binary losses, and the regression losses on -1/+1 targets), and the
#: softmax, read from the registry by what each loss models
_CLASSIFIER_LOSSES = tuple(name for name, cls in LOSSES.items() if cls.task in ("binary", "multiclass", "regression"))
#: scipy.sparse formats taken as they are: fit reads CSR (rows for the hold-out split and the epochs; scikit-learn
#: converts CSC, COO, ... to it in O(nnz), never densifying); a prediction multiplies CSR or CSC as given
_FIT_SPARSE = "csr"
_PREDICT_SPARSE = ["csr", "csc"]


def sklearn_optimal_t0(alpha: float) -> float:
    """t0 of scikit-learn's 'optimal' schedule: 1 / (typw alpha), typw = alpha^(-1/4).

    scikit-learn picks t0 so that the first step is typw / max(1, loss'(-typw, 1)); for its regression losses and
    its classification losses alike that derivative is at most 1 (negative for the classification losses), so
    the maximum is 1 (gdlab's core default uses the hinge loss's 1 + typw, an older scikit-learn's choice).
    """
    typw = math.sqrt(1.0 / math.sqrt(alpha))
    return 1.0 / (typw * alpha)


_SHARED_PARAMETERS_DOC = """\
    penalty : {"l2", "l1", "elasticnet"} or None, default="l2"
    alpha : float >= 0, default=0.0001
        Regularisation strength, in scikit-learn's units (see above).
    l1_ratio : float in [0, 1] or None, default=0.15
        The L1 share of the elastic net. None (as in scikit-learn) only with a penalty that does not use it.
    fit_intercept : bool, default=True
    max_iter : int >= 1, default=1000
        Iterations, i.e. epochs (passes over the data); a full-batch epoch is one update.
    tol : float >= 0, "auto" or None, default="auto"
        The relative objective gap to reach, as in :func:`gdlab.descend`: a full-batch fit stops, converged, when
        F - F* <= tol * |F*| (the squared error without L1, whose optimum F* the statistics give), when the
        Newton decrement (the gap to second order) is within tol of the loss (the smooth losses: log-loss,
        softmax, Poisson, modified Huber, ...), when the strong-convexity bound on the gap is (with L1), or when
        the gradient norm has fallen to tol of its start (the other losses). Mini-batch fits also stop when the
        objective changes by at most ``tol`` (relative) for ``n_iter_no_change`` epochs in a row (with
        ``early_stopping``: when the validation score fails to beat its best by ``tol`` that often; with the
        "adaptive" schedule: divide the step by 5 instead, until it falls below 1e-6), and are called converged
        only if the test above holds. None runs all ``max_iter`` epochs. "auto": 1e-10 for full batches (cheap,
        exact iterations: run to the optimum; coefficients are then accurate to about sqrt(tol) relative), 1e-4
        for mini-batches (noisy losses). scikit-learn's SGD estimators' 1e-3 is an absolute change of their
        running loss.
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
        one row), times (1 - beta) with momentum; for a non-smooth loss (epsilon-insensitive, hinge,
        perceptron), "invscaling" with power 1/2 from the same scale. "constant": eta0. "invscaling":
        eta0 / (t + 1)^power_t. "optimal": 1 / (alpha' (t0 + t)) with scikit-learn's t0. "adaptive": eta0,
        divided by 5 each time the loss stalls for ``n_iter_no_change`` epochs. (t counts updates from 0.)
    eta0 : float > 0, default=0.01
        The initial step for "constant", "invscaling" and "adaptive", in gdlab's scale: a scikit-learn eta0 of e
        is eta0 = e / 2 here for the squared error (the same for the other losses).
    power_t : float >= 0
        The exponent of "invscaling" (the default is scikit-learn's: 0.25 for regression, 0.5 for
        classification). Negative values, which scikit-learn 1.8 deprecated (an error from 1.10), are refused
        with a ValueError (see docs/estimator.md).
    validation_fraction : float in (0, 1), default=0.1
    n_iter_no_change : int >= 1, default=5
    warm_start : bool, default=False
        ``fit`` starts from the previous solution (the schedule starts again, as in scikit-learn).
    average : bool, int > 0 or "auto", default="auto"
        Averaged SGD: ``coef_`` is the mean of the iterates after ``average`` updates (True = 1). "auto" (not in
        scikit-learn, whose default is False): averaged exactly when mini-batches run with learning_rate="auto"
        and gd, momentum or nesterov, whose step is then the constant 1/(2 L_B), from half an epoch on (the
        start's transient left out; Polyak-Ruppert averaging; one
        epoch of batch_size=1 ends ~700x nearer the optimum than SGDRegressor's defaults on 200000 x 10, and more
        epochs only bring it nearer). With an explicit learning rate "auto" is False, as in scikit-learn.
    optimizer : {"gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"}, default="gd"
        Not in scikit-learn: the update rule (see ``gdlab.optimizers``).
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
        Not in scikit-learn: run the descent on centred features of unit variance, and report ``coef_``,
        ``intercept_`` and ``trajectory_`` in the original units (the objective, penalty included, is unchanged;
        the statistics the fit forms anyway give the means and spreads, so no extra pass over X). "auto":
        standardize with ``learning_rate="auto"`` (the default), not with an explicit schedule, whose ``eta0`` is
        a step in the raw features' units (so scikit-learn's settings replay exactly). Full-batch and mini-batch
        fits (the compiled epochs read each row as (x - mean) / sd, no copy of X); ``partial_fit`` keeps the raw
        features, since each chunk would have its own means and spreads.
    record_every : int >= 1, default=1
        Keep every k-th iterate in ``trajectory_``.
    max_records : int >= 2, default=10000
        Bound on the rows kept (beyond it the kept ones are thinned, evenly). The iterates (coef, intercept) are
        also held within 64 MiB (``gdlab.result.ITERATE_BUDGET_BYTES``): past it every second one is dropped,
        the losses and gradient norms of every row stay, and ``trajectory_.coef_iteration`` and ``coef_stride``
        say which were kept (always the first and the last).
"""

_SHARED_ATTRIBUTES_DOC = """\
    n_iter_ : int — epochs run by the last fit (or partial_fit).
    t_ : int — weight updates made, plus one (scikit-learn's convention: n_iter_ * batches + 1 after ``fit``).
    n_features_in_ : int;  feature_names_in_ : ndarray of str (when X had string column names).
    trajectory_ : gdlab.Trajectory — iteration, coef, intercept, loss, grad_norm, learning_rate (and gap to the
        optimum for squared loss without L1) per recorded epoch of the last fit.
    curvature_ : gdlab.Curvature or None — L, mu, condition number, stable_step = 2/L of the objective
        (None for a non-smooth loss).
    loss_ : float — the objective at the returned weights (in gdlab's scale).
    converged_ : bool — the stop rule certified the gap to the optimum (never claimed unchecked).
    diverged_ : bool — the descent blew up; the weights returned are those of the lowest loss recorded, and a
        DivergenceWarning says why (2/L, feature scales).
    message_ : str — how the last fit ended.
    solver_ : str — where the fit ran: "descend (memory source)", "descend (gram source)" or "numba kernel".
"""

_SHARED_CONSTRAINTS: dict = {
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
    # any real, as scikit-learn's: a negative one is refused in _check_settings with the reason and the fix
    "power_t": [Interval(Real, None, None, closed="neither")],
    "early_stopping": ["boolean"],
    "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
    "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
    "warm_start": ["boolean"],
    "average": [Interval(Integral, 0, None, closed="neither"), "boolean", StrOptions({"auto"})],
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


class _BaseGD(BaseEstimator):
    """What GDRegressor and GDClassifier share: the parameters, their validation, the call of the core loop,
    partial_fit's state and the learnt attributes.

    A face says three things: the loss descend minimises (:meth:`_fit_loss`), how its target becomes descend's
    (done in its own ``fit``/``partial_fit`` before :meth:`_fit_arrays`/:meth:`_partial_fit_arrays`), and how a
    held-out score is read (:meth:`_validation_score`; :meth:`_strata` for a stratified split).
    """

    _parameter_constraints: dict = dict(_SHARED_CONSTRAINTS)
    #: coef_ is (n_outputs, n_features) even for one output (SGDClassifier's (1, n_features) for two classes)
    _coef_always_2d: ClassVar[bool] = False

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # scipy.sparse X (CSR, CSC, or any format scikit-learn converts) in fit, partial_fit and every prediction
        tags.input_tags.sparse = True
        return tags

    def _store_parameters(self, values: dict[str, Any]) -> None:
        """__init__'s only work, as scikit-learn asks: keep each parameter as given."""
        for name in self._get_param_names():
            setattr(self, name, values[name])

    # ---- what a face defines -------------------------------------------------------------------------------
    def _intercept_dtype(self, coef_dtype: np.dtype, n_models: int) -> np.dtype:
        """intercept_'s dtype: float64 (SGDRegressor's float32 fit returns its intercept as a C double)."""
        return np.dtype(np.float64)

    def _fit_loss(self) -> Loss:
        """The loss object descend minimises in this fit."""
        raise NotImplementedError

    def _strata(self, Y: np.ndarray) -> np.ndarray | None:
        """Labels to stratify the validation split on (None: a plain shuffle split)."""
        return None

    def _validation_score(self, theta: np.ndarray, val: tuple) -> float:
        raise NotImplementedError

    # ---- the objective in gdlab's terms ---------------------------------------------------------------------
    @property
    def _objective_alpha(self) -> float:
        """alpha' of gdlab's objective: the loss's sklearn_ratio times alpha (2 alpha for the squared error, whose
        gdlab form r^2 is twice scikit-learn's r^2 / 2), so that the minimiser is scikit-learn's."""
        return self._fit_loss().sklearn_ratio * float(self.alpha)

    def _check_settings(self, partial: bool = False) -> None:
        if partial and self.early_stopping:
            # scikit-learn's message: partial_fit has no held-out rows to stop on
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
            # scikit-learn (1.8, 1.9) still takes it with a FutureWarning; see docs/estimator.md
            raise ValueError(f"power_t={self.power_t!r} is negative: the 'invscaling' step eta0 (t + 1)^"
                             f"{-self.power_t:g} would grow without bound. scikit-learn deprecated negative "
                             f"power_t in 1.8 and refuses it from 1.10; {type(self).__name__} refuses it now. Use "
                             "power_t >= 0 (0 is a constant step).")

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

    # ---- fit and partial_fit, once the target is descend's ----------------------------------------------------
    def _sample_weight(self, sample_weight: Any, X: np.ndarray) -> np.ndarray | None:
        """The checked weights, or None; all rows weightless is an error naming the cause."""
        if sample_weight is None:
            return None
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if sw.sum() <= 0:
            from gdlab._validation import check_sample_weight_values

            check_sample_weight_values(sw)  # names the cause: NaN, all negative, or all zero
            raise ValueError("sample_weight sums to zero or less; at least one row must have a positive weight.")
        return sw

    def _fit_arrays(self, X: np.ndarray, Y: np.ndarray, sw: np.ndarray | None, coef_init: Any, intercept_init: Any,
                    stacklevel: int) -> "_BaseGD":
        """fit on arrays in memory; Y is descend's target, (m,) or (m, k). stacklevel: the frames between the
        warnings of :meth:`_finish` and the user's call."""
        self._coef_dtype = X.dtype  # float32 input gives float32 coef_, as in scikit-learn's SGD estimators
        warm = self.warm_start and hasattr(self, "coef_")
        # the core's own start (with standardization the intercept starts at the best one for zero slopes)
        self._default_start = coef_init is None and intercept_init is None and not warm
        start = self._starting_point(X.shape[1], Y, coef_init, intercept_init,
                                     previous=self._theta if warm else None)
        self._reset_progress()
        self._run(X, Y, sw, start, max_iter=self.max_iter, partial=False, stacklevel=stacklevel)
        return self

    def _begin_partial_fit(self) -> bool:
        """Whether this is the first partial_fit call; its parameters are checked then (as in scikit-learn)."""
        first = not hasattr(self, "coef_")
        if first:
            self._validate_params()
            self._check_settings(partial=True)
        return first

    def _partial_fit_arrays(self, X: np.ndarray, Y: np.ndarray, sw: np.ndarray | None, first: bool,
                            stacklevel: int) -> "_BaseGD":
        """One epoch, going on from the weights, schedule and optimizer state the previous call left."""
        if first:
            self._coef_dtype = X.dtype  # coef_ keeps the first call's dtype, as scikit-learn allocates it then
            start = self._starting_point(X.shape[1], Y, None, None, previous=None)
            self._reset_progress()
        else:
            start = self._theta.copy()
        self._run(X, Y, sw, start, max_iter=1, partial=True, stacklevel=stacklevel)
        return self

    # ---- state --------------------------------------------------------------------------------------------------
    def _reset_progress(self) -> None:
        self.t_ = 1
        self._state = None  # gdlab.engines.DescentState: where partial_fit goes on from
        self._schedule = None
        self._schedule_params: dict[str, float] = {}
        self._rng = None  # drawn by _seed_rng, after the validation split (which draws from random_state first)

    def _seed_rng(self) -> None:
        """The generator of the row shuffling, seeded from random_state as scikit-learn's SGD draws its seeds.

        scikit-learn draws the validation split from ``random_state`` first (see _run), then its shuffling seed,
        randint(0, 2^31 - 1), then one more, randint(1, 2^31 - 1) (``make_dataset``'s); both are drawn here, so
        a RandomState instance shared with later fits advances as it does in scikit-learn (and holds out the same
        rows in a second fit). The shuffling itself is gdlab's (the compiled epochs' Fisher-Yates shuffle).
        """
        state = check_random_state(self.random_state)
        seed = state.randint(0, np.iinfo(np.int32).max)
        state.randint(1, np.iinfo(np.int32).max)
        self._rng = np.random.default_rng(seed)

    def _coef_shape(self, k: int, d: int) -> tuple[int, ...]:
        return (d,) if k == 1 and not self._coef_always_2d else (k, d)

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
                raise ValueError(f"coef_init has shape {ci.shape}; expected {self._coef_shape(k, d)}, the shape of "
                                 "coef_.")
            theta[off:] = ci.reshape(k, d).T if k > 1 else ci.reshape(d, 1)
        if intercept_init is not None:
            if not self.fit_intercept:
                raise ValueError("intercept_init was given but fit_intercept=False; drop one of them.")
            ii = np.asarray(intercept_init, dtype=np.float64).ravel()
            if ii.size != k:
                raise ValueError(f"intercept_init has {ii.size} values; expected {k}, the shape of intercept_.")
            theta[0] = ii
        return theta

    # ---- fit on a source (files, Dask collections) ----------------------------------------------------------------
    def _fit_source(self, source: Any, coef_init: Any, intercept_init: Any, sample_weight: Any, *,
                    feature_names: bool = True, stacklevel: int = 5) -> "_BaseGD":
        """Fit on a source of loss and gradient (streamed files, a Dask collection): see :func:`_as_source`.

        feature_names: take the source's column names as ``feature_names_in_`` (not for a dask array, whose names
        x0, x1, ... are the source's own); stacklevel: the frames between the user's fit and :meth:`_finish`'s
        warnings."""
        unsupported = [name for name, on in (("sample_weight", sample_weight is not None),
                                             ("early_stopping", self.early_stopping),
                                             ("average", self.average not in ("auto", False, 0))) if on]
        if unsupported:
            raise ValueError(f"{', '.join(unsupported)} cannot be used when fitting files or Dask collections "
                             "(they are fitted from one-pass statistics or passes over their chunks); load the data "
                             "into memory for these options (X.compute() for a dask array).")
        t_start = time.perf_counter()
        single = bool(getattr(source, "single_output", source.n_outputs == 1))
        k, d = source.n_outputs, source.n_features
        y_shape = np.empty(0) if single else np.empty((0, k))
        warm = self.warm_start and hasattr(self, "coef_")
        theta0 = self._starting_point(d, y_shape, coef_init, intercept_init, previous=self._theta if warm else None)
        # the core's own start, as for arrays in memory (with standardization: the best intercept for zero slopes)
        default_start = coef_init is None and intercept_init is None and not warm
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
            coef_init=None if default_start else theta0[off:],
            intercept_init=theta0[0] if self.fit_intercept and not default_start else None,
            penalty=self.penalty, alpha=self._objective_alpha, l1_ratio=self.l1_ratio,
            record_every=self.record_every, max_records=self.max_records, callback=callback, warn=False, **params)
        if self._schedule is None:
            self._schedule = res.extra["optimizer"].learning_rate
        out = _RunOutput(theta=_pack(res.coef, res.intercept, self.fit_intercept, k), trajectory=res.trajectory,
                         curvature=res.curvature, loss=res.loss, n_iter=res.n_iter, n_updates=res.n_updates,
                         status=res.status, message=res.message, diverged=res.diverged, avg_theta=None,
                         n_averaged=0, solver=f"descend ({res.source} source)", learning_rate=res.learning_rate)
        self._finish(out, single, time.perf_counter() - t_start, stacklevel=stacklevel)
        self.n_features_in_ = d
        names = getattr(source, "feature_names", None) if feature_names else None
        if names is not None:
            self.feature_names_in_ = np.asarray(list(names), dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    # ---- coef_ as a sparse matrix (SGDRegressor's and SGDClassifier's SparseCoefMixin) -------------------------
    def sparsify(self) -> "_BaseGD":
        """Store ``coef_`` as a scipy.sparse CSR matrix of shape (n_outputs, n_features) (only its non-zeros: worth
        it when most coefficients are zero, e.g. after an L1 fit); predictions are unchanged. ``intercept_`` stays
        dense.

        One output gives a (1, n_features) matrix, as SGDClassifier's (SGDRegressor's is a 1-D sparse matrix, which
        its own ``predict`` cannot multiply a sparse X by). A later ``fit`` or ``partial_fit`` goes on from the
        weights and leaves ``coef_`` dense again (SGDRegressor's raises a TypeError until :meth:`densify`).

        Returns
        -------
        self
        """
        check_is_fitted(self, msg="Estimator, %(name)s, must be fitted before sparsifying.")
        if not sp.issparse(self.coef_):
            self.coef_ = _sparse_container(np.atleast_2d(self.coef_))
        return self

    def densify(self) -> "_BaseGD":
        """Store ``coef_`` as a dense ndarray again (of its shape after ``fit``: (n_features,) for one output of
        GDRegressor); a no-op unless :meth:`sparsify` was called.

        Returns
        -------
        self
        """
        check_is_fitted(self, msg="Estimator, %(name)s, must be fitted before densifying.")
        if sp.issparse(self.coef_):
            W = self.coef_.toarray()
            self.coef_ = W[0] if self._single_output and not self._coef_always_2d else W
        return self

    # ---- the fit ---------------------------------------------------------------------------------------------
    def _run(self, X: np.ndarray, y: np.ndarray, sw: np.ndarray | None, theta0: np.ndarray, *, max_iter: int,
             partial: bool, stacklevel: int) -> None:
        t_start = time.perf_counter()
        single = y.ndim == 1
        Y = y.reshape(-1, 1) if single else y
        m = X.shape[0]

        # hold out the validation rows (early_stopping) as scikit-learn does: its ShuffleSplit (regression) or
        # StratifiedShuffleSplit (classification) on random_state itself, before any other draw from it (so
        # RandomState(42) holds out the rows 42 does); the training rows keep their order (with shuffle=False
        # they are visited as given)
        val = None
        if self.early_stopping and not partial:
            from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit

            n_val = int(math.ceil(self.validation_fraction * m))
            if n_val < 1 or m - n_val < 1:
                raise ValueError(f"early_stopping with validation_fraction={self.validation_fraction} leaves an "
                                 f"empty training or validation set for {m} samples; use more samples or "
                                 "another validation_fraction.")
            strata = self._strata(Y)
            splitter = ShuffleSplit if strata is None else StratifiedShuffleSplit
            split = splitter(n_splits=1, test_size=n_val, random_state=self.random_state)
            train_idx, val_idx = (np.sort(idx) for idx in next(split.split(np.zeros((m, 1)), strata)))
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
        average: bool | int | str = ("auto" if self.average == "auto" else
                                     False if not self.average else int(self.average))
        engine = ("numpy" if not full_batch and KERNEL_MAX_BATCH is not None and bs > KERNEL_MAX_BATCH
                  else "auto")
        out = self._run_descend(X, Y if not single else Y[:, 0], sw, theta0, max_iter=max_iter, partial=partial,
                                val=val, full_batch=full_batch, average=average, engine=engine)
        out.partial_call = partial
        self._finish(out, single, time.perf_counter() - t_start, stacklevel)

    def _linear_predictor(self, theta: np.ndarray, X: np.ndarray) -> np.ndarray:
        """eta = X w + b for packed parameters theta (p, k): (m, k)."""
        off = 1 if self.fit_intercept else 0
        return X @ theta[off:].astype(X.dtype, copy=False) + (theta[0] if off else 0.0)

    def _early_stop_step(self, theta: np.ndarray, val: tuple) -> bool:
        """scikit-learn's rule: no improvement of the validation score by tol for n_iter_no_change epochs
        (never with tol=None, as in scikit-learn)."""
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
            logger.info("%s epoch %d: loss %.6g, |grad| %.3g, learning rate %.4g", type(self).__name__, it, loss,
                        grad_norm, eta)

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
            loss=self._fit_loss(), penalty=self.penalty, alpha=self._objective_alpha,
            # (partial_fit: each chunk would have its own means and spreads, so the coordinates stay raw)
            l1_ratio=self.l1_ratio, standardize=False if partial else self.standardize,
            average=average, engine=engine, state=self._state if partial else None,
            record_every=self.record_every, max_records=self.max_records, callback=callback, warn=False, **params)
        used = res.extra["optimizer"]
        self._schedule, self._schedule_params = used.learning_rate, dict(used.hyperparameters)
        self._state = res.extra["state"]
        status, message = res.status, res.message
        if status == 3 and val is not None:
            # a stop on the held-out rows (scikit-learn's convergence), not a claim about the training objective
            # (status 3, stopped, not converged): the message says how far that is from its minimum when known
            status, message = 3, (f"early stopping: the validation score did not improve by tol={self._tol} for "
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
        name = type(self).__name__
        theta = out.theta
        loss = out.loss
        if out.diverged:
            # the lowest loss among the iterates the trajectory kept (all of them unless its byte budget thinned
            # them: then the losses of the others are known but not their weights)
            traj = out.trajectory
            rows = traj.coef_rows
            losses = np.where(np.isfinite(traj.loss[rows]), traj.loss[rows], np.inf)
            i = int(np.argmin(losses))
            theta = _pack(traj.coef[i], traj.intercept[i], self.fit_intercept, theta.shape[1])
            best_it, loss = int(traj.coef_iteration[i]), float(traj.loss[rows[i]])
            warnings.warn(f"{out.message} {name} keeps the weights of iteration {best_it}, the lowest loss "
                          "recorded, and sets diverged_=True.", DivergenceWarning, stacklevel=stacklevel)
        elif out.status in (1, 5) and self._tol is not None and not out.partial_call:
            warnings.warn(f"{name} ({self.optimizer}) {_estimator_terms(out.message, self.max_iter)}",
                          ConvergenceWarning, stacklevel=stacklevel)
        elif out.status == 6 and not out.partial_call:
            warnings.warn(f"{name}: {out.message}", SeparationWarning, stacklevel=stacklevel)
        self._theta = theta.copy()
        self._single_output = single
        self._loss_obj = self._fit_loss()  # what predictions are read with (the inverse link)
        final = theta if out.avg_theta is None or out.diverged else out.avg_theta
        off = 1 if self.fit_intercept else 0
        W = final[off:]
        b = final[0] if self.fit_intercept else np.zeros(final.shape[1])
        # coef_ in the input's dtype, intercept_ as the face says (scikit-learn's dtypes); the fit itself ran in
        # float64
        coef = W[:, 0] if single and not self._coef_always_2d else W.T
        dtype = getattr(self, "_coef_dtype", np.float64)
        self.coef_ = coef.astype(dtype, copy=True)
        intercept_dtype = self._intercept_dtype(np.dtype(dtype), final.shape[1])
        self.intercept_ = np.atleast_1d(np.asarray(b, dtype=intercept_dtype)).copy()
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
            logger.info("%s: %s after %d epoch(s), %d updates, %.3g s (%s)", name, out.message, out.n_iter,
                        out.n_updates, seconds, out.solver)


class GDRegressor(RegressorMixin, _BaseGD):
    __doc__ = """Linear regression by gradient descent, with scikit-learn's SGDRegressor interface and the whole story.

    Minimises ``(1/n) sum_i s_i loss(x_i . w + b, y_i) + alpha' R(w)`` (``R`` as in scikit-learn: l2 = |w|^2 / 2,
    l1 = |w|_1, elasticnet = l1_ratio |w|_1 + (1 - l1_ratio) |w|^2 / 2; the intercept is never penalised) with
    ``alpha' = loss.sklearn_ratio * alpha``: 2 alpha for ``loss="squared_error"`` (gdlab's MSE is twice
    scikit-learn's half squared error, so the minimiser is SGDRegressor's), alpha for the other losses. L1 parts
    are applied by their proximal step (soft thresholding), so exact zeros appear.

    Parameters
    ----------
    loss : {"squared_error", "huber", "epsilon_insensitive", "squared_epsilon_insensitive", "poisson"}, \
default="squared_error"
        The loss of the linear predictor eta = x . w + b and the target (:mod:`gdlab.losses`). "squared_error" is
        the workshop's (eta - y)^2; the robust losses are defined on the residual eta - y. "poisson": counts
        (y >= 0) with the log link, the mean exp(eta); the loss is the half Poisson deviance, so that
        ``GDRegressor(loss="poisson", alpha=a)`` has the minimiser of scikit-learn's ``PoissonRegressor(alpha=a)``
        (both minimise (1/n) sum half-deviance + a/2 |w|^2) and ``predict`` returns exp(eta).
""" + _SHARED_PARAMETERS_DOC + """\
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (SGDRegressor's split: the same rows for the same
        ``random_state``) and stop when their R^2 stops improving; the training rows keep their order. Not with
        ``partial_fit`` (a ValueError, as in SGDRegressor).

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_outputs, n_features)
        In X's dtype (float32 or float64), as in SGDRegressor; the fit itself runs in float64. A y of shape
        (n_samples, 1) is one target (shape (n_features,)), with a DataConversionWarning, as in SGDRegressor.
    intercept_ : ndarray of shape (1,) or (n_outputs,), float64 (as SGDRegressor's)
""" + _SHARED_ATTRIBUTES_DOC + """
    Examples
    --------
    >>> import gdlab
    >>> ds = gdlab.datasets.workshop_line()
    >>> model = gdlab.GDRegressor(penalty=None, tol=None, max_iter=10, learning_rate="constant", eta0=0.1)
    >>> model = model.fit(ds.X, ds.y, coef_init=ds.coef_init, intercept_init=ds.intercept_init)
    >>> model.trajectory_.params.shape   # the workshop's w = [intercept, slope] at iterations 0..10
    (11, 2)
    """

    _parameter_constraints: dict = {**_BaseGD._parameter_constraints, "loss": [StrOptions(set(REGRESSION_LOSSES))]}

    def __init__(self, loss="squared_error", *, penalty="l2", alpha=0.0001, l1_ratio=0.15, fit_intercept=True,
                 max_iter=1000, tol="auto", shuffle=True, verbose=0, epsilon=0.1, random_state=None,
                 learning_rate="auto", eta0=0.01, power_t=0.25, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, warm_start=False, average="auto", optimizer="gd", batch_size=None, beta=None,
                 beta1=0.9, beta2=0.999, decay=0.9, eps=None, standardize="auto", record_every=1,
                 max_records=10000):
        self._store_parameters(locals())

    # ---- scikit-learn plumbing ------------------------------------------------------------------------------
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        # counts (Poisson) are y >= 0: scikit-learn's checks then draw non-negative targets, as for PoissonRegressor
        tags.target_tags.positive_only = LOSSES[self.loss].task == "count"
        return tags

    def _validate_xy(self, X: Any, y: Any, reset: bool, stacklevel: int) -> tuple[np.ndarray, np.ndarray]:
        _check_missing(X, "X")
        X, y = validate_data(self, X, y, reset=reset, accept_sparse=_FIT_SPARSE, dtype=[np.float64, np.float32],
                             multi_output=True, y_numeric=True, order="C")
        if y.ndim == 2 and y.shape[1] == 1:
            # SGDRegressor's rule (column_or_1d): one target, coef_ of shape (n_features,), predictions (n,)
            warnings.warn("A column-vector y was passed when a 1d array was expected. Please change the shape of y "
                          "to (n_samples, ), for example using ravel(). GDRegressor fits it as one target, as "
                          "SGDRegressor does; pass y of shape (n_samples, n_outputs) with n_outputs >= 2 for "
                          "several targets.", DataConversionWarning, stacklevel=stacklevel)
            y = y[:, 0]
        return X, y

    def _fit_loss(self) -> Loss:
        return get_loss(self.loss, self.epsilon)

    def _validation_score(self, theta: np.ndarray, val: tuple) -> float:
        from sklearn.metrics import r2_score

        Xv, Yv, swv = val
        return float(r2_score(Yv, self._fit_loss().predict(self._linear_predictor(theta, Xv)), sample_weight=swv))

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
        if _is_dask(X):
            _check_dask_fit(self, X, sample_weight)
        source = _as_source(X, y, self)
        if source is not None:
            # frames from _finish's warnings: _finish, _fit_source, fit, scikit-learn's _fit_context, the caller
            with _closing_opened(source, X):
                return self._fit_source(source, coef_init, intercept_init, sample_weight,
                                        feature_names=not _is_dask_array(X), stacklevel=5)
        X, y = self._validate_xy(X, y, reset=True, stacklevel=4)
        # frames from _finish's warnings: _finish, _run, _fit_arrays, fit, scikit-learn's _fit_context, the caller
        return self._fit_arrays(X, y, self._sample_weight(sample_weight, X), coef_init, intercept_init,
                                stacklevel=6)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights, schedule and optimizer state.

        Unlike SGDRegressor's, the learning-rate schedule (and momentum or Adam's moments) carries on across
        calls: calling ``partial_fit`` on the chunks of a data set is one long stochastic descent. With
        ``batch_size=None`` each call is one full-batch step on the chunk given.

        Returns
        -------
        self
        """
        _refuse_dask(X, y, "partial_fit")
        first = self._begin_partial_fit()
        X, y = self._validate_xy(X, y, reset=first, stacklevel=3)
        if not first:
            k_prev = self._theta.shape[1]
            k_now = 1 if y.ndim == 1 else y.shape[1]
            if k_now != k_prev or (y.ndim == 1) != self._single_output:
                raise ValueError(f"y has {k_now} output(s) in this partial_fit call but the model was fitted with "
                                 f"{k_prev}; pass targets of the same shape each time.")
        # frames from _finish's warnings: _finish, _run, _partial_fit_arrays, partial_fit, the caller
        return self._partial_fit_arrays(X, y, self._sample_weight(sample_weight, X), first, stacklevel=5)

    def predict(self, X):
        """Predictions of shape (n_samples,) or (n_samples, n_outputs), in float64 (as SGDRegressor's): X w + b,
        or for ``loss="poisson"`` the mean exp(X w + b) (the loss's inverse link). A dask array X gives a dask
        array, computed chunk by chunk of rows when asked (as dask-ml's estimators do)."""
        check_is_fitted(self, "coef_")
        if _is_dask_array(X):
            return _blockwise(self.predict, X)
        X = validate_data(self, X, reset=False, accept_sparse=_PREDICT_SPARSE, dtype=[np.float64, np.float32])
        coef = self.coef_.astype(X.dtype, copy=False)
        if sp.issparse(coef):  # after sparsify(): (n_outputs, n_features), a sparse product
            eta = np.asarray(safe_sparse_dot(X, coef.T, dense_output=True), dtype=np.float64) + self.intercept_
            if self._single_output:
                eta = eta[:, 0]
        elif coef.ndim == 1:
            eta = np.asarray(X @ coef, dtype=np.float64) + self.intercept_[0]
        else:
            eta = np.asarray(X @ coef.T, dtype=np.float64) + self.intercept_
        return self._loss_obj.predict(eta)


class GDClassifier(LinearClassifierMixin, _BaseGD):
    __doc__ = """Linear classification by gradient descent: SGDClassifier's interface, LogisticRegression's minimiser,
    and the whole story.

    Minimises ``(1/n) sum_i s_i loss(x_i . w + b, y_i) + alpha' R(w)`` over the classes encoded as scikit-learn
    encodes them (two classes: y = +1 for ``classes_[1]``, -1 for ``classes_[0]``, one model; K >= 3 classes:
    one-vs-rest, K independent models of class k against the rest, fitted side by side in one descent; or, with
    ``loss="multinomial"``, one softmax model of the K classes). ``s_i`` is ``sample_weight`` times the weight of
    the row's class (``class_weight``), ``n = sum_i s_i``, ``R`` and ``alpha' = loss.sklearn_ratio * alpha`` as in
    GDRegressor (alpha itself for every classification loss): the same minimiser as SGDClassifier for the same
    ``alpha``.

    **LogisticRegression.** For ``loss="log_loss"`` (two classes) or ``loss="multinomial"`` (any number) and
    ``penalty="l2"``, the objective is LogisticRegression's ``C sum_i s_i loss_i + |w|^2 / 2`` divided by
    ``n C``: the same minimiser when ``alpha = 1 / (n C)``, with n the weighted sample count (the number of rows
    when there are no weights; 'balanced' class weights keep it). ``penalty=None`` is ``C=inf``. Without a
    penalty, classes that a hyperplane separates have no minimiser: the fit stops with a SeparationWarning.

    Parameters
    ----------
    loss : str, default="log_loss"
        "log_loss" (logistic regression), "hinge" (linear SVM), "modified_huber", "squared_hinge",
        "perceptron", SGDClassifier's regression losses on the -1/+1 targets ("squared_error", "huber",
        "epsilon_insensitive", "squared_epsilon_insensitive"), or "multinomial" (the softmax: one coupled model
        of K classes, LogisticRegression's multi-class model; with two classes it is the logistic model, fitted as
        log_loss, with coef_ of shape (1, n_features) as in LogisticRegression). The default differs from
        SGDClassifier's "hinge" on purpose: gdlab's default is a full-batch descent with the step from the
        curvature and a stop certified by the gap to the optimum, which need a smooth loss; the log-loss is
        smooth (curvature at most 1/4), has a unique penalised minimiser (LogisticRegression's), and gives
        ``predict_proba``. Pass ``loss="hinge"`` for SGDClassifier's model.
""" + _SHARED_PARAMETERS_DOC + """\
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows, stratified by class (SGDClassifier's split: the same rows
        for the same ``random_state`` with two classes) and stop when their accuracy stops improving. Not with
        ``partial_fit`` (a ValueError, as in SGDClassifier).
    n_jobs : int or None, default=None
        Accepted for SGDClassifier's signature and unused: the one-vs-rest models are fitted together, in one
        vectorised descent, so there is nothing to spread over processes.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes, ``{label: weight}`` (classes not named weigh 1) or "balanced":
        n / (n_classes * n_class), with weighted counts when ``sample_weight`` is given (LogisticRegression's
        rule; SGDClassifier counts rows). Folded into the sample weights: row i weighs sample_weight_i times its
        class's weight, in every one-vs-rest model (LogisticRegression's rule, and SGDClassifier's with two
        classes; SGDClassifier's one-vs-rest weighs only the positive class of each model). "balanced" is
        refused by ``partial_fit``, as in SGDClassifier.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,) — the labels, sorted (any type: numbers, strings, ...).
    coef_ : ndarray of shape (1, n_features) for two classes, (n_classes, n_features) otherwise
        In X's dtype (float32 or float64), as in SGDClassifier.
    intercept_ : ndarray of shape (1,) or (n_classes,)
        float64 for two classes, X's dtype for more (SGDClassifier's dtypes: a float32 fit's decision_function
        and predict_proba are then float64 for two classes, float32 for more).
""" + _SHARED_ATTRIBUTES_DOC + """
    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> import gdlab
    >>> X, y = load_iris(return_X_y=True)
    >>> model = gdlab.GDClassifier(loss="multinomial").fit(X, y)
    >>> model.coef_.shape, model.predict_proba(X[:1]).shape
    ((3, 4), (1, 3))
    """

    _parameter_constraints: dict = {
        **_BaseGD._parameter_constraints,
        "loss": [StrOptions(set(_CLASSIFIER_LOSSES))],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "n_jobs": [Integral, None],
    }
    _coef_always_2d: ClassVar[bool] = True

    def _intercept_dtype(self, coef_dtype: np.dtype, n_models: int) -> np.dtype:
        """SGDClassifier's: float64 for one model (two classes: its binary fit returns the intercept as a C
        double), X's dtype for one model per class (it allocates the intercepts in X's dtype), so a float32 fit's
        decision_function and predict_proba are float64 for two classes, float32 for more."""
        return np.dtype(np.float64) if n_models == 1 else coef_dtype

    def __init__(self, loss="log_loss", *, penalty="l2", alpha=0.0001, l1_ratio=0.15, fit_intercept=True,
                 max_iter=1000, tol="auto", shuffle=True, verbose=0, epsilon=0.1, n_jobs=None, random_state=None,
                 learning_rate="auto", eta0=0.01, power_t=0.5, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=5, class_weight=None, warm_start=False, average="auto", optimizer="gd",
                 batch_size=None, beta=None, beta1=0.9, beta2=0.999, decay=0.9, eps=None, standardize="auto",
                 record_every=1, max_records=10000):
        self._store_parameters(locals())

    def _check_settings(self, partial: bool = False) -> None:
        super()._check_settings(partial)
        if partial and self.class_weight == "balanced":
            raise ValueError("class_weight 'balanced' is not supported for partial_fit: a chunk's class "
                             "frequencies are not the data set's. Compute the weights once, e.g. "
                             "compute_class_weight('balanced', classes=classes, y=y) on the full training "
                             "target (or a large enough sample of it), and pass them as class_weight="
                             "dict(zip(classes, weights)).")

    # ---- the target -----------------------------------------------------------------------------------------
    def _fit_loss(self) -> Loss:
        loss = get_loss(self.loss, self.epsilon)
        if loss.coupled and len(self.classes_) == 2:
            # the softmax of two classes is the logistic model (w = w_1 - w_0): fitted as such, as
            # LogisticRegression does, so that coef_ is (1, n_features) and the minimiser is unique
            return get_loss("log_loss")
        return loss

    def _validate_xy(self, X: Any, y: Any, reset: bool) -> tuple[np.ndarray, np.ndarray]:
        _check_missing(X, "X")
        X, y = validate_data(self, X, y, reset=reset, accept_sparse=_FIT_SPARSE, dtype=[np.float64, np.float32],
                             order="C")
        check_classification_targets(y)
        return X, y

    def _encode(self, X: np.ndarray, y: np.ndarray, sample_weight: Any) -> tuple[np.ndarray, np.ndarray | None]:
        """descend's target and weights: -1/+1 for two classes, K columns of -1/+1 (one-vs-rest) or one-hot rows
        (the softmax); the weights with the class weights folded in."""
        from sklearn.utils._encode import _check_unknown

        classes = self.classes_
        unknown = _check_unknown(y, classes)
        if len(unknown):
            shown = ", ".join(repr(v) for v in list(unknown)[:5])
            raise ValueError(f"y holds label(s) {shown} not in classes={list(classes)!r}: classes should include "
                             "all valid labels that can be in y. Pass every label the data can hold in the first "
                             "partial_fit call (classes=...), or use fit.")
        index = np.searchsorted(classes, y)
        K = len(classes)
        if K == 2:
            Y = np.where(index == 1, 1.0, -1.0)
        else:
            member = index[:, None] == np.arange(K)
            Y = member.astype(np.float64) if self._fit_loss().coupled else np.where(member, 1.0, -1.0)
        sw = self._sample_weight(sample_weight, X)
        if self.class_weight is not None:
            weights = compute_class_weight(self.class_weight, classes=classes, y=y, sample_weight=sw)
            sw = (np.ones(len(y)) if sw is None else sw) * weights[index]
        return Y, sw

    def _strata(self, Y: np.ndarray) -> np.ndarray:
        return (Y[:, 0] > 0).astype(int) if Y.shape[1] == 1 else Y.argmax(axis=1)

    def _validation_score(self, theta: np.ndarray, val: tuple) -> float:
        """Accuracy on the held-out rows (SGDClassifier's score), weighted by their sample weights."""
        Xv, Yv, swv = val
        scores = self._linear_predictor(theta, Xv)
        predicted = (scores[:, 0] > 0).astype(int) if scores.shape[1] == 1 else scores.argmax(axis=1)
        return float(np.average(predicted == self._strata(Yv), weights=swv))

    # ---- public API -------------------------------------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, coef_init=None, intercept_init=None, sample_weight=None):
        """Fit the model by gradient descent.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or a dask array chunked by rows (two classes, full
            batch: fitted in passes over its chunks, never gathered; see docs/estimator.md, "Dask arrays")
        y : array-like of shape (n_samples,) — class labels of any type (a dask or NumPy array with a dask X).
        coef_init : array-like of shape (1, n_features) for two classes, (n_classes, n_features) otherwise
            The starting weights (default: zeros, or the previous solution with ``warm_start``).
        intercept_init : array-like of shape (1,) or (n_classes,), optional
        sample_weight : array-like of shape (n_samples,), optional
            The objective is the weighted mean sum_i s_i loss_i / sum_i s_i (times the class weights).

        Returns
        -------
        self
        """
        self._check_settings()
        if _is_dask(X) or _is_dask(y):
            return self._fit_dask(X, y, coef_init, intercept_init, sample_weight)
        X, y = self._validate_xy(X, y, reset=True)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"The number of classes has to be greater than one; got 1 class ({classes[0]!r}): "
                             "y holds one class only, and a classifier needs rows of at least two.")
        self.classes_ = classes
        Y, sw = self._encode(X, y, sample_weight)
        if sw is not None:
            weighed = np.bincount(np.searchsorted(classes, y), weights=sw, minlength=len(classes)) > 0
            if weighed.sum() < 2:
                raise ValueError(f"only one class ({classes[weighed][0]!r}) has rows of positive weight "
                                 "(sample_weight times class_weight): a classifier needs at least two classes with "
                                 "weight. Give rows of another class a positive weight.")
        # frames from _finish's warnings: _finish, _run, _fit_arrays, fit, scikit-learn's _fit_context, the caller
        return self._fit_arrays(X, Y, sw, coef_init, intercept_init, stacklevel=6)

    def _fit_dask(self, X: Any, y: Any, coef_init: Any, intercept_init: Any, sample_weight: Any) -> "GDClassifier":
        """Two classes in a dask array, fitted in passes over its chunks (gdlab.sources.dask), never gathered: the
        labels' distinct values are computed first (a pass over y), then y is coded -1/+1 chunk by chunk. Every
        loss (the source computes any loss of one output; the softmax of two classes is the log-loss)."""
        if not _is_dask_array(X):
            raise ValueError(f"GDClassifier fits a Dask array X (with y a dask or NumPy array), got X of type "
                             f"{type(X).__name__}{' (a dask dataframe)' if _is_dask(X) else ''}; pass "
                             "dataframe.to_dask_array(lengths=True) and the label column as a dask array, or "
                             "call .compute() to fit in memory.")
        _check_dask_fit(self, X, sample_weight)
        if self.class_weight is not None:
            raise ValueError("class_weight cannot be used when fitting a Dask array (its passes take no row "
                             "weights); call .compute() on X and y to fit in memory.")
        import dask.array as da

        if np.ndim(y) != 1:
            raise ValueError(f"y must be 1-D class labels, got shape {tuple(np.shape(y))}.")
        y_dask = y if _is_dask_array(y) else da.from_array(np.asarray(y), chunks=(X.chunks[0],))
        classes = np.sort(np.asarray(da.unique(y_dask).compute()))
        check_classification_targets(classes)
        if len(classes) != 2:
            raise ValueError(f"GDClassifier fits a Dask array for two classes only (one model: the source's passes "
                             f"carry one output); y holds {len(classes)}: {list(classes[:5])}"
                             f"{' ...' if len(classes) > 5 else ''}. For more classes call .compute() on X and y "
                             "and fit in memory.")
        self.classes_ = classes
        Y = da.where(y_dask == classes[1], 1.0, -1.0)
        source = _open_dask_source(X, Y, self, self._fit_loss())
        # frames from _finish's warnings: _finish, _fit_source, _fit_dask, fit, scikit-learn's _fit_context, caller
        with _closing_opened(source, X):
            return self._fit_source(source, coef_init, intercept_init, sample_weight, feature_names=False,
                                    stacklevel=6)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over (X, y), continuing from the current weights, schedule and optimizer state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,)
            Every label the data can hold: required on the first call (a chunk need not hold them all), and
            if given later, the same (as in SGDClassifier).
        sample_weight : array-like of shape (n_samples,), optional

        The schedule and the optimizer's state go on across calls, as in GDRegressor.partial_fit (SGDClassifier
        restarts its schedule each call): the calls over a data set's chunks are one long descent.

        Returns
        -------
        self
        """
        _refuse_dask(X, y, "partial_fit")
        first = self._begin_partial_fit()
        if first:
            if classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit: pass every label the "
                                 "data can hold, e.g. partial_fit(X, y, classes=np.unique(y_all)).")
        elif classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(f"`classes={classes!r}` is not the same as on last call to partial_fit, was: "
                             f"{self.classes_!r}. Pass the same classes each time, or leave classes out after "
                             "the first call.")
        X, y = self._validate_xy(X, y, reset=first)
        if first:
            self.classes_ = unique_labels(classes)
            if len(self.classes_) < 2:
                del self.classes_
                raise ValueError(f"classes={classes!r} names one class: a classifier needs at least two.")
        try:
            Y, sw = self._encode(X, y, sample_weight)
        except ValueError:
            if first:
                del self.classes_
            raise
        # frames from _finish's warnings: _finish, _run, _partial_fit_arrays, partial_fit, the caller
        return self._partial_fit_arrays(X, Y, sw, first, stacklevel=5)

    def decision_function(self, X):
        """The linear predictors X w + b: shape (n_samples,) for two classes (positive: ``classes_[1]``),
        (n_samples, n_classes) otherwise. A dask array X gives a dask array (as for every prediction here)."""
        if _is_dask_array(X):
            check_is_fitted(self)
            return _blockwise(self.decision_function, X)
        _check_missing(X, "X")
        return super().decision_function(X)

    def predict(self, X):
        """The class of each row, from :meth:`decision_function` (a dask array X gives a dask array)."""
        if _is_dask_array(X):
            check_is_fitted(self)
            return _blockwise(self.predict, X)
        return super().predict(X)

    def _check_proba(self) -> bool:
        # a loss gives probabilities when it defines an inverse link (sigmoid, softmax, modified Huber's clip)
        loss = LOSSES[self.loss]
        if loss.predict is Loss.predict:
            raise AttributeError(f"probability estimates are not available for loss={self.loss!r}: its decision "
                                 "function is a margin, not a probability model. Use loss='log_loss', "
                                 "'modified_huber' or 'multinomial', or calibrate the margins "
                                 "(sklearn.calibration.CalibratedClassifierCV).")
        return True

    @available_if(_check_proba)
    def predict_proba(self, X):
        """Class probabilities, (n_samples, n_classes), columns in the order of ``classes_``.

        The loss's inverse link of the decision function: the sigmoid (log_loss), (clip(eta, -1, 1) + 1) / 2
        (modified_huber, Zhang 2004) or the softmax (multinomial). One-vs-rest models give one probability per
        class, normalised to sum to one (SGDClassifier's rule; rows where every modified-Huber probability is 0
        get 1 / n_classes).
        """
        check_is_fitted(self)
        if _is_dask_array(X):
            return _blockwise(self.predict_proba, X)
        scores = self.decision_function(X)
        link = self._loss_obj
        # in the decision function's dtype, as SGDClassifier's (float32 for a float32 fit of 3+ classes), computed
        # in float64
        if scores.ndim == 1:
            p = np.asarray(link.predict(scores.astype(np.float64, copy=False)), dtype=np.float64)
            return np.column_stack([1.0 - p, p]).astype(scores.dtype, copy=False)
        P = np.array(link.predict(scores.astype(np.float64, copy=False)), dtype=np.float64)
        if not link.coupled:
            total = P.sum(axis=1, keepdims=True)
            none = total[:, 0] == 0
            P[none], total[none] = 1.0, P.shape[1]
            P /= total
        return P.astype(scores.dtype, copy=False)

    @available_if(_check_proba)
    def predict_log_proba(self, X):
        """The logarithm of :meth:`predict_proba` (-inf where a modified-Huber probability is 0)."""
        if _is_dask_array(X):
            check_is_fitted(self)
            return _blockwise(self.predict_log_proba, X)
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

# ---- Dask arrays ---------------------------------------------------------------------------------------------------
def _is_dask(obj: Any) -> bool:
    """A dask collection (array, dataframe, series), without importing dask when it is not loaded."""
    from gdlab.sources.dask import is_dask_collection

    return is_dask_collection(obj)


def _is_dask_array(obj: Any) -> bool:
    if not _is_dask(obj):
        return False
    import dask.array as da

    return isinstance(obj, da.Array)


def _check_dask_fit(est: _BaseGD, X: Any, sample_weight: Any) -> None:
    """What a fit on a Dask collection cannot take, refused before anything is sent to the workers."""
    if est.batch_size is not None:
        raise ValueError(f"batch_size={est.batch_size} cannot be used with a Dask collection: the fit makes a pass "
                         "over its chunks per iteration (full batch) and draws no mini-batches. Use batch_size=None, "
                         "or call .compute() on X and y to fit mini-batches in memory.")
    if sample_weight is not None:
        raise ValueError("sample_weight cannot be used with a Dask collection (its passes take no row weights); "
                         "call .compute() on X and y to fit in memory.")


def _refuse_dask(X: Any, y: Any, method: str) -> None:
    if _is_dask(X) or _is_dask(y):
        raise ValueError(f"{method} takes arrays in memory, not Dask collections (each call is one epoch on the "
                         "rows given): call .compute() on the chunk, or use fit(dask_X, dask_y) with "
                         "batch_size=None for a full-batch fit in passes over the chunks.")


def _open_dask_source(X: Any, Y: Any, est: _BaseGD, loss: Loss) -> Any:
    from gdlab import scale

    return scale.open_source(X, target=Y, fit_intercept=est.fit_intercept, loss=loss)


class _closing_opened:
    """Close a source opened here from a dask collection (releasing its persisted chunks) once the fit is done;
    a source the user gave stays open."""

    def __init__(self, source: Any, given: Any):
        self.source = source
        self.opened = source is not given and hasattr(source, "close") and _is_dask(given)

    def __enter__(self) -> Any:
        return self.source

    def __exit__(self, *exc: Any) -> None:
        if self.opened:
            self.source.close()


def _blockwise(method: Any, X: Any) -> Any:
    """``method`` (a prediction) on each row chunk of the dask array X, lazily: a dask array with X's row chunks.

    The output's dtype and columns are read from the method on one row of zeros (cheap, no data)."""
    X = X.rechunk({1: -1})
    probe = method(np.zeros((1, X.shape[1]), dtype=X.dtype))
    if probe.ndim == 1:
        return X.map_blocks(method, dtype=probe.dtype, drop_axis=1, chunks=(X.chunks[0],),
                            meta=np.empty((0,), dtype=probe.dtype))
    return X.map_blocks(method, dtype=probe.dtype, chunks=(X.chunks[0], (probe.shape[1],)),
                        meta=np.empty((0, 0), dtype=probe.dtype))


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


def _sparse_container(W: np.ndarray) -> Any:
    """W (k, d) as a CSR matrix, or the sparse array scikit-learn's ``sparse_interface`` setting asks for."""
    try:
        from sklearn.utils._sparse import _align_api_if_sparse  # scikit-learn >= 1.8
    except ImportError:  # pragma: no cover - older scikit-learn: matrices
        return sp.csr_matrix(W)
    return _align_api_if_sparse(sp.csr_array(W))


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
