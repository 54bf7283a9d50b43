"""Losses as objects, defined on the linear predictor eta = x . w + b and the target y (after skglm's datafits and
glum's distributions).

The objective gdlab minimises is

    F(w, b) = (1/n) sum_i s_i * loss(eta_i, y_i)  +  penalty(w),      eta_i = x_i . w + b,   n = sum_i s_i

A loss knows its value, its derivative d loss / d eta, its second derivative where one exists (Newton, IRLS), a
bound on that second derivative (``curvature``: the Hessian of the data term is then at most
curvature/n * X_b^T S X_b, which gives the stable step 2/L), the best intercept of a model with zero slopes
(glmnet's null model, where the descent starts), and how to read eta as a prediction (the inverse link). The
squared error also has the *quadratic shortcut*: its value and gradient follow exactly from the one-pass statistics
(:class:`~gdlab.sources.GramSource`), so ``quadratic`` is True only there.

Nothing outside this module asks a loss for its name to decide what to compute: the sources, the descent, the
curvature, the compiled epochs (through each loss's ``scalar_derivative``, a plain function that numba compiles) and
the estimators read these attributes. A new loss is one class and one line in :data:`LOSSES`.

Targets, as each loss reads them:

* regression losses (squared error, Huber, epsilon-insensitive, squared epsilon-insensitive): real y, defined on
  the residual r = eta - y;
* binary classification losses (log-loss, hinge, squared hinge, modified Huber, perceptron): y in {-1, +1} and the
  margin z = y eta (scikit-learn's SGDClassifier's definitions, so that the same alpha means the same objective);
  a target of 0/1 labels is read as -1/+1 (:meth:`Loss.prepare_target`);
* Poisson with the log link: counts y >= 0, the mean exp(eta); the value is the half deviance (PoissonRegressor's
  objective, so the same alpha means the same objective);
* multinomial (softmax): eta and y are (m, K), y one-hot; the K columns are coupled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from gdlab._validation import check_choice, check_positive

def _special():
    """scipy.special, imported on first use (it costs `import gdlab` about 0.2 s)."""
    import scipy.special

    return scipy.special


__all__ = ["Loss", "SquaredError", "Huber", "EpsilonInsensitive", "SquaredEpsilonInsensitive", "LogLoss", "Hinge",
           "SquaredHinge", "ModifiedHuber", "Perceptron", "Poisson", "Multinomial", "LOSSES", "REGRESSION_LOSSES",
           "CLASSIFICATION_LOSSES", "get_loss"]


@dataclass(frozen=True)
class Loss:
    """A loss of the linear predictor eta and the target y; subclasses define the formulas.

    Attributes (class level)
    ------------------------
    name : the registry name ("squared_error", "log_loss", ...).
    curvature : a bound on d^2 loss / d eta^2 over all eta and y (2 for the squared error, 1/4 for the log-loss);
        None when the loss has no global bound (the Poisson loss's exp(eta)) or is not smooth.
    smooth : whether the derivative is continuous (a subgradient method needs a decaying step otherwise).
    quadratic : whether the one-pass statistics give value and gradient exactly (the squared error only).
    task : "regression", "binary", "multiclass" or "count".
    coupled : whether the K outputs are one model (softmax) rather than K independent ones.
    sklearn_ratio : gdlab's loss over scikit-learn's loss of the same name (2 for the squared error, whose
        scikit-learn form is r^2/2): alpha' = sklearn_ratio * alpha gives scikit-learn's minimiser.
    unbounded_when_separable : whether the loss keeps falling towards 0 as the weights grow once the classes are
        separated (log-loss, softmax): without a penalty it then has no minimiser.
    """

    name: ClassVar[str] = ""
    curvature: ClassVar[float | None] = None
    smooth: ClassVar[bool] = True
    quadratic: ClassVar[bool] = False
    task: ClassVar[str] = "regression"
    coupled: ClassVar[bool] = False
    sklearn_ratio: ClassVar[float] = 1.0
    unbounded_when_separable: ClassVar[bool] = False
    #: whether prepare_target changes the values (0/1 labels read as -1/+1), not only checks them
    recodes_target: ClassVar[bool] = False

    @property
    def param(self) -> float:
        """The loss's one shape parameter (epsilon), 0 when it has none; passed to ``scalar_derivative``."""
        return float(getattr(self, "epsilon", 0.0))

    # ---- the formulas (arrays of any shape, broadcast) ------------------------------------------------------
    def value(self, eta: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Per-sample loss values (per output; for a coupled loss, one per row)."""
        raise NotImplementedError

    def derivative(self, eta: np.ndarray, y: np.ndarray) -> np.ndarray:
        """d loss / d eta, per sample (a subgradient where the loss has a kink)."""
        raise NotImplementedError

    def second_derivative(self, eta: np.ndarray, y: np.ndarray) -> np.ndarray:
        """d^2 loss / d eta^2 per sample (IRLS's weights); defined for the smooth losses."""
        raise NotImplementedError(f"loss {self.name!r} has no second derivative")

    def value_and_derivative(self, eta: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.value(eta, y), self.derivative(eta, y)

    def local_curvature(self, eta: np.ndarray, y: np.ndarray) -> float:
        """max_i d^2 loss / d eta^2 at these predictors: the curvature bound where no global one exists."""
        if self.curvature is not None:
            return float(self.curvature)
        return float(np.max(self.second_derivative(eta, y))) if np.size(eta) else 0.0

    # ---- the model around the formulas ------------------------------------------------------------------------
    def prepare_target(self, y: np.ndarray) -> np.ndarray:
        """The target as the formulas read it (float64); raises ValueError naming what is wrong."""
        return np.asarray(y, dtype=np.float64)

    def null_intercept(self, y: np.ndarray, sample_weight: np.ndarray | None = None) -> np.ndarray | None:
        """The best intercept of the model with zero slopes (k,), or None where it has no closed form."""
        return None

    def null_intercept_from_mean(self, mean_y: np.ndarray) -> np.ndarray | None:
        """The same, from the (weighted) mean of the prepared target, where that determines it."""
        return None

    def predict(self, eta: np.ndarray) -> np.ndarray:
        """The prediction of the mean of y (the inverse link): eta itself for the regression losses."""
        return eta

    def margins(self, eta: np.ndarray, y: np.ndarray) -> np.ndarray:
        """How far each sample is on its right side of the decision boundary (classification losses): y eta for
        -1/+1 labels; for the softmax, the true class's eta less the largest other one. Positive everywhere means
        the classes are separated."""
        raise NotImplementedError(f"loss {self.name!r} has no decision boundary")

    @staticmethod
    def scalar_derivative(eta: float, y: float, param: float) -> float:  # pragma: no cover - overridden
        """d loss / d eta for one sample, in plain arithmetic that numba compiles (the compiled epochs use it)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        p = f"epsilon={self.param:g}" if hasattr(self, "epsilon") else ""
        return f"{type(self).__name__}({p})"


# ---- regression losses: the residual r = eta - y ---------------------------------------------------------------
def _squared_error_d(eta: float, y: float, param: float) -> float:
    return 2.0 * (eta - y)


@dataclass(frozen=True, repr=False)
class SquaredError(Loss):
    """loss = (eta - y)^2, the workshop's MSE (its gradient is the workshop's (2/m) X_b^T (X_b w - y))."""

    name: ClassVar[str] = "squared_error"
    curvature: ClassVar[float] = 2.0
    quadratic: ClassVar[bool] = True
    sklearn_ratio: ClassVar[float] = 2.0
    scalar_derivative = staticmethod(_squared_error_d)

    def value(self, eta, y):
        r = eta - y
        return r * r

    def derivative(self, eta, y):
        return 2.0 * (eta - y)

    def second_derivative(self, eta, y):
        return np.full(np.broadcast(eta, y).shape, 2.0)

    def value_and_derivative(self, eta, y):
        r = eta - y
        return r * r, 2.0 * r

    def null_intercept_from_mean(self, mean_y):
        return np.asarray(mean_y, dtype=float)

    def null_intercept(self, y, sample_weight=None):
        return np.average(y, axis=0, weights=sample_weight)


def _huber_d(eta: float, y: float, param: float) -> float:
    r = eta - y
    if r > param:
        return param
    if r < -param:
        return -param
    return r


@dataclass(frozen=True, repr=False)
class Huber(Loss):
    """loss = r^2 / 2 for |r| <= epsilon, epsilon (|r| - epsilon / 2) beyond (scikit-learn's huber)."""

    epsilon: float = 0.1
    name: ClassVar[str] = "huber"
    curvature: ClassVar[float] = 1.0
    scalar_derivative = staticmethod(_huber_d)

    def value(self, eta, y):
        r = eta - y
        a, e = np.abs(r), self.epsilon
        return np.where(a <= e, 0.5 * r * r, e * (a - 0.5 * e))

    def derivative(self, eta, y):
        return np.clip(eta - y, -self.epsilon, self.epsilon)

    def second_derivative(self, eta, y):
        return (np.abs(eta - y) <= self.epsilon).astype(float)


def _epsilon_insensitive_d(eta: float, y: float, param: float) -> float:
    r = eta - y
    if r > param:
        return 1.0
    if r < -param:
        return -1.0
    return 0.0


@dataclass(frozen=True, repr=False)
class EpsilonInsensitive(Loss):
    """loss = max(|r| - epsilon, 0) (support vector regression's; not smooth)."""

    epsilon: float = 0.1
    name: ClassVar[str] = "epsilon_insensitive"
    smooth: ClassVar[bool] = False
    scalar_derivative = staticmethod(_epsilon_insensitive_d)

    def value(self, eta, y):
        return np.maximum(np.abs(eta - y) - self.epsilon, 0.0)

    def derivative(self, eta, y):
        r = eta - y
        return np.sign(r) * (np.abs(r) > self.epsilon)


def _squared_epsilon_insensitive_d(eta: float, y: float, param: float) -> float:
    r = eta - y
    if r > param:
        return 2.0 * (r - param)
    if r < -param:
        return 2.0 * (r + param)
    return 0.0


@dataclass(frozen=True, repr=False)
class SquaredEpsilonInsensitive(Loss):
    """loss = max(|r| - epsilon, 0)^2."""

    epsilon: float = 0.1
    name: ClassVar[str] = "squared_epsilon_insensitive"
    curvature: ClassVar[float] = 2.0
    scalar_derivative = staticmethod(_squared_epsilon_insensitive_d)

    def value(self, eta, y):
        z = np.maximum(np.abs(eta - y) - self.epsilon, 0.0)
        return z * z

    def derivative(self, eta, y):
        r = eta - y
        return 2.0 * np.sign(r) * np.maximum(np.abs(r) - self.epsilon, 0.0)

    def second_derivative(self, eta, y):
        return 2.0 * (np.abs(eta - y) > self.epsilon)


# ---- binary classification: y in {-1, +1}, the margin z = y eta -----------------------------------------------
class _BinaryLoss(Loss):
    task: ClassVar[str] = "binary"
    recodes_target: ClassVar[bool] = True

    def prepare_target(self, y):
        y = np.asarray(y, dtype=np.float64)
        values = np.unique(y)
        if np.all(np.isin(values, (0.0, 1.0))):
            return 2.0 * y - 1.0
        if not np.all(np.isin(values, (-1.0, 1.0))):
            shown = ", ".join(f"{v:g}" for v in values[:5])
            raise ValueError(f"loss={self.name!r} takes binary labels -1/+1 or 0/1; the target has values {shown}"
                             f"{', ...' if values.size > 5 else ''}. Encode the two classes as 0/1, or use "
                             "GDClassifier, which encodes labels itself.")
        return y

    def null_intercept_from_mean(self, mean_y):
        p = np.clip((1.0 + np.asarray(mean_y, dtype=float)) / 2.0, 1e-12, 1 - 1e-12)
        return self._null_from_rate(p)

    def null_intercept(self, y, sample_weight=None):
        return self.null_intercept_from_mean(np.average(y, axis=0, weights=sample_weight))

    def _null_from_rate(self, p):
        return None

    def margins(self, eta, y):
        return y * eta


def _log_loss_d(eta: float, y: float, param: float) -> float:
    z = y * eta
    if z > 0.0:
        e = math.exp(-z)
        return -y * e / (1.0 + e)
    return -y / (1.0 + math.exp(z))


@dataclass(frozen=True, repr=False)
class LogLoss(_BinaryLoss):
    """loss = log(1 + exp(-y eta)): logistic regression (the negative log-likelihood of P(y = 1) = sigmoid(eta)).

    Its second derivative sigmoid(eta)(1 - sigmoid(eta)) is at most 1/4, so L = lambda_max(X_b^T S X_b) / (4n).
    """

    name: ClassVar[str] = "log_loss"
    curvature: ClassVar[float] = 0.25
    unbounded_when_separable: ClassVar[bool] = True
    scalar_derivative = staticmethod(_log_loss_d)

    def value(self, eta, y):
        return np.logaddexp(0.0, -y * eta)

    def derivative(self, eta, y):
        return -y * _special().expit(-y * eta)

    def second_derivative(self, eta, y):
        p = _special().expit(eta)
        return p * (1.0 - p)

    def value_and_derivative(self, eta, y):
        # one exp and one log1p for both, with e = exp(-|z|) in (0, 1] (no overflow): 3-5x logaddexp + expit
        z = y * eta
        e = np.abs(z)
        np.negative(e, out=e)
        np.exp(e, out=e)
        value = np.log1p(e)
        value += np.maximum(-z, 0.0)
        d = np.where(z > 0, e, 1.0)  # sigmoid(-z) = e / (1 + e) for z > 0, 1 / (1 + e) otherwise
        e += 1.0
        d /= e
        d *= y
        np.negative(d, out=d)
        return value, d

    def predict(self, eta):
        return _special().expit(eta)

    def _null_from_rate(self, p):
        return np.log(p) - np.log1p(-p)


def _hinge_d(eta: float, y: float, param: float) -> float:
    # at the kink z = threshold the subgradient -y, as scikit-learn's (the perceptron then moves from w = 0)
    return -y if y * eta <= param else 0.0


@dataclass(frozen=True, repr=False)
class Hinge(_BinaryLoss):
    """loss = max(0, threshold - y eta): the linear support vector machine's (threshold 1; not smooth)."""

    threshold: float = 1.0
    name: ClassVar[str] = "hinge"
    smooth: ClassVar[bool] = False
    scalar_derivative = staticmethod(_hinge_d)

    @property
    def param(self) -> float:
        return float(self.threshold)

    def value(self, eta, y):
        return np.maximum(self.threshold - y * eta, 0.0)

    def derivative(self, eta, y):
        return np.where(y * eta <= self.threshold, -y, 0.0)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(threshold={self.threshold:g})"


@dataclass(frozen=True, repr=False)
class Perceptron(Hinge):
    """loss = max(0, -y eta): the perceptron's (the hinge at threshold 0)."""

    threshold: float = 0.0
    name: ClassVar[str] = "perceptron"


def _squared_hinge_d(eta: float, y: float, param: float) -> float:
    z = 1.0 - y * eta
    return -2.0 * y * z if z > 0.0 else 0.0


@dataclass(frozen=True, repr=False)
class SquaredHinge(_BinaryLoss):
    """loss = max(0, 1 - y eta)^2."""

    name: ClassVar[str] = "squared_hinge"
    curvature: ClassVar[float] = 2.0
    scalar_derivative = staticmethod(_squared_hinge_d)

    def value(self, eta, y):
        z = np.maximum(1.0 - y * eta, 0.0)
        return z * z

    def derivative(self, eta, y):
        return -2.0 * y * np.maximum(1.0 - y * eta, 0.0)

    def second_derivative(self, eta, y):
        return 2.0 * (y * eta < 1.0)


def _modified_huber_d(eta: float, y: float, param: float) -> float:
    z = y * eta
    if z >= 1.0:
        return 0.0
    if z >= -1.0:
        return -2.0 * y * (1.0 - z)
    return -4.0 * y


@dataclass(frozen=True, repr=False)
class ModifiedHuber(_BinaryLoss):
    """loss = max(0, 1 - z)^2 for z = y eta >= -1, -4 z below (Zhang 2004; a smooth hinge with probabilities)."""

    name: ClassVar[str] = "modified_huber"
    curvature: ClassVar[float] = 2.0
    scalar_derivative = staticmethod(_modified_huber_d)

    def value(self, eta, y):
        z = y * eta
        return np.where(z >= -1.0, np.maximum(1.0 - z, 0.0) ** 2, -4.0 * z)

    def derivative(self, eta, y):
        z = y * eta
        return np.where(z >= 1.0, 0.0, np.where(z >= -1.0, -2.0 * y * (1.0 - z), -4.0 * y))

    def second_derivative(self, eta, y):
        z = y * eta
        return 2.0 * ((z >= -1.0) & (z < 1.0))

    def predict(self, eta):
        # scikit-learn's predict_proba for modified_huber: (clip(eta, -1, 1) + 1) / 2
        return (np.clip(eta, -1.0, 1.0) + 1.0) / 2.0


# ---- counts: Poisson with the log link ---------------------------------------------------------------------------
def _poisson_d(eta: float, y: float, param: float) -> float:
    return math.exp(eta) - y


@dataclass(frozen=True, repr=False)
class Poisson(Loss):
    """The half Poisson deviance with the log link: loss = exp(eta) - y eta + y log y - y (>= 0, zero at a perfect
    fit); the mean is exp(eta). PoissonRegressor minimises the same (1/(2n)) sum deviance + alpha/2 |w|^2.

    Its second derivative exp(eta) has no global bound: the stable step comes from the predictors met
    (:meth:`local_curvature`), and 'auto' adds a backtracking line search.
    """

    name: ClassVar[str] = "poisson"
    task: ClassVar[str] = "count"
    scalar_derivative = staticmethod(_poisson_d)

    def prepare_target(self, y):
        y = np.asarray(y, dtype=np.float64)
        if y.size and (np.nanmin(y) < 0):
            i = int(np.argmax(y.ravel() < 0))
            raise ValueError(f"loss='poisson' models counts (y >= 0); the target has {y.ravel()[i]:g} at row "
                             f"{i // max(y.shape[1] if y.ndim == 2 else 1, 1)}. Use a regression loss for signed "
                             "targets.")
        return y

    def value(self, eta, y):
        with np.errstate(over="ignore"):
            return np.exp(eta) - y * eta + _special().xlogy(y, y) - y

    def derivative(self, eta, y):
        with np.errstate(over="ignore"):
            return np.exp(eta) - y

    def second_derivative(self, eta, y):
        with np.errstate(over="ignore"):
            return np.exp(eta) + 0.0 * y

    def value_and_derivative(self, eta, y):
        with np.errstate(over="ignore"):
            mu = np.exp(eta)
        return mu - y * eta + _special().xlogy(y, y) - y, mu - y

    def null_intercept_from_mean(self, mean_y):
        m = np.asarray(mean_y, dtype=float)
        return np.log(np.maximum(m, 1e-300))

    def null_intercept(self, y, sample_weight=None):
        return self.null_intercept_from_mean(np.average(y, axis=0, weights=sample_weight))

    def predict(self, eta):
        return np.exp(eta)


# ---- several classes: the softmax ----------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class Multinomial(Loss):
    """loss = logsumexp(eta_i) - y_i . eta_i for one-hot y_i (the cross-entropy of softmax(eta_i)).

    eta and y are (m, K). Its Hessian in eta, diag(p) - p p^T, is at most 1/2 (Boehning's bound), so
    L = lambda_max(X_b^T S X_b) / (2n). The K columns of coefficients are determined up to a common shift without a
    penalty; descent from zero keeps their sum zero (each gradient's columns sum to zero), the minimum-norm one.
    """

    name: ClassVar[str] = "multinomial"
    curvature: ClassVar[float] = 0.5
    task: ClassVar[str] = "multiclass"
    coupled: ClassVar[bool] = True
    unbounded_when_separable: ClassVar[bool] = True

    def prepare_target(self, y):
        y = np.asarray(y, dtype=np.float64)
        if y.ndim != 2 or y.shape[1] < 2 or not np.all(np.isin(y, (0.0, 1.0))) or not np.allclose(y.sum(axis=1), 1):
            raise ValueError("loss='multinomial' takes a one-hot target of shape (m, K), K >= 2; GDClassifier "
                             "encodes class labels itself.")
        return y

    def value(self, eta, y):
        return _special().logsumexp(eta, axis=1) - np.einsum("ij,ij->i", y, eta)

    def derivative(self, eta, y):
        return _special().softmax(eta, axis=1) - y

    def value_and_derivative(self, eta, y):
        lse = _special().logsumexp(eta, axis=1, keepdims=True)
        p = np.exp(eta - lse)
        return lse[:, 0] - np.einsum("ij,ij->i", y, eta), p - y

    def null_intercept_from_mean(self, mean_y):
        lp = np.log(np.clip(np.asarray(mean_y, dtype=float), 1e-12, None))
        return lp - lp.mean()

    def null_intercept(self, y, sample_weight=None):
        return self.null_intercept_from_mean(np.average(y, axis=0, weights=sample_weight))

    def predict(self, eta):
        return _special().softmax(eta, axis=1)

    def margins(self, eta, y):
        true = np.einsum("ij,ij->i", y, eta)
        other = np.where(y > 0, -np.inf, eta).max(axis=1)
        return (true - other)[:, None]


# ---- the registry ----------------------------------------------------------------------------------------------------
#: every loss by name: the estimators, compare, the CLI and the explorer read this table
LOSSES: dict[str, type[Loss]] = {cls.name: cls for cls in (
    SquaredError, Huber, EpsilonInsensitive, SquaredEpsilonInsensitive, Poisson,
    LogLoss, Hinge, SquaredHinge, ModifiedHuber, Perceptron, Multinomial)}
REGRESSION_LOSSES = tuple(name for name, cls in LOSSES.items() if cls.task in ("regression", "count"))
CLASSIFICATION_LOSSES = tuple(name for name, cls in LOSSES.items() if cls.task == "binary")


def get_loss(loss: str | Loss, epsilon: float = 0.1) -> Loss:
    """The loss object for a name (``epsilon`` for the losses that have one), or the object itself."""
    if isinstance(loss, Loss):
        return loss
    check_choice("loss", loss, tuple(LOSSES))
    cls = LOSSES[loss]
    if "epsilon" in cls.__dataclass_fields__:
        check_positive("epsilon", epsilon, allow_zero=(loss != "huber"))
        return cls(epsilon=float(epsilon))
    return cls()
