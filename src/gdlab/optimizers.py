"""Optimizers as small pure ``(init, update)`` transforms, composed into the named ones (after optax).

A transform maps a gradient g to a direction u; the descent loop then moves ``theta <- theta - eta_t * u`` with
eta_t from the learning-rate schedule, so that the step actually taken is known and recorded. The state is an
immutable NamedTuple: ``update`` returns a new one and never changes its inputs.

Named optimizers (eta_t the learning rate, g_t the gradient at theta_t):

* ``gd``        u_t = g_t                                                     (the workshop's step)
* ``momentum``  v_t = g_t + beta v_{t-1};           u_t = v_t                 (Polyak's heavy ball, 1964)
* ``nesterov``  v_t = g_t + beta v_{t-1};           u_t = g_t + beta v_t      (Nesterov 1983, in Sutskever et al.'s form, 2013)
* ``adagrad``   s_t = s_{t-1} + g_t^2;              u_t = g_t / (sqrt(s_t) + eps)           (Duchi et al., 2011)
* ``rmsprop``   s_t = rho s_{t-1} + (1-rho) g_t^2;  u_t = g_t / (sqrt(s_t) + eps)           (Tieleman & Hinton, 2012)
* ``adam``      m_t = b1 m_{t-1} + (1-b1) g_t; v_t = b2 v_{t-1} + (1-b2) g_t^2;
                u_t = m_hat_t / (sqrt(v_hat_t) + eps), m_hat_t = m_t/(1-b1^t), v_hat_t = v_t/(1-b2^t)  (Kingma & Ba, 2015)

Each of these transforms is one coordinate-wise rule (:class:`CoordinateRule`): a plain function of the gradient,
two state slots, the update count and the hyperparameters, in arithmetic that runs on NumPy arrays (the
transform's ``update`` calls it on whole arrays) and that numba compiles for one coordinate (the compiled epochs
of :mod:`gdlab._sgd_kernel` call the very same function). So each update is written once; a new coordinate-wise
optimizer is one rule, one transform that carries it and one line in :data:`OPTIMIZERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from gdlab._validation import check_choice, check_positive
from gdlab.schedules import Schedule, as_schedule

__all__ = [
    "CoordinateRule", "GradientTransformation", "Optimizer", "chain", "identity", "trace", "scale_by_adagrad", "scale_by_rms",
    "scale_by_adam", "gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "OPTIMIZERS", "make_optimizer",
]


class CoordinateRule(NamedTuple):
    """A transform's update for each coordinate on its own: ``update(g, a, b, count, hyper) -> (u, a, b)``.

    g the gradient, a and b the transform's two state slots (unused ones pass through), count the number of this
    update (1, 2, ...), hyper the tuple of hyperparameters; ``initial`` the slots' starting values and ``n_state``
    how many slots the rule uses. ``update`` is a module-level function in plain arithmetic (np.sqrt, no
    branching on arrays), so that NumPy runs it on arrays and numba compiles it for one coordinate.
    """

    update: Callable[..., tuple[Any, Any, Any]]
    hyper: tuple[float, ...] = ()
    initial: tuple[float, float] = (0.0, 0.0)
    n_state: int = 0


class GradientTransformation(NamedTuple):
    """init(params) -> state; update(grads, state, params) -> (directions, new_state).

    ``coordinate``: the same update as a :class:`CoordinateRule` where it acts on each coordinate alone (every
    named optimizer), which the compiled epochs run; None for a transform that couples coordinates.
    """

    init: Callable[[np.ndarray], Any]
    update: Callable[[np.ndarray, Any, np.ndarray], tuple[np.ndarray, Any]]
    coordinate: CoordinateRule | None = None


class EmptyState(NamedTuple):
    pass


class TraceState(NamedTuple):
    velocity: np.ndarray


class AccumulatorState(NamedTuple):
    sum_of_squares: np.ndarray


class AdamState(NamedTuple):
    count: int
    mu: np.ndarray
    nu: np.ndarray


# ---- the coordinate-wise rules: each update written once, for NumPy arrays and numba scalars alike ----------
def gd_rule(g, a, b, count, hyper):
    """u = g."""
    return g, a, b


def momentum_rule(g, v, b, count, hyper):
    """v = g + beta v; u = v (hyper = (beta,))."""
    v = g + hyper[0] * v
    return v, v, b


def nesterov_rule(g, v, b, count, hyper):
    """v = g + beta v; u = g + beta v (hyper = (beta,))."""
    v = g + hyper[0] * v
    return g + hyper[0] * v, v, b


def adagrad_rule(g, s, b, count, hyper):
    """s = s + g^2; u = g / (sqrt(s) + eps) (hyper = (eps,))."""
    s = s + g * g
    return g / (np.sqrt(s) + hyper[0]), s, b


def rmsprop_rule(g, s, b, count, hyper):
    """s = rho s + (1 - rho) g^2; u = g / (sqrt(s) + eps) (hyper = (rho, eps))."""
    s = hyper[0] * s + (1.0 - hyper[0]) * (g * g)
    return g / (np.sqrt(s) + hyper[1]), s, b


def adam_rule(g, mu, nu, count, hyper):
    """mu = b1 mu + (1 - b1) g; nu = b2 nu + (1 - b2) g^2; u = mu_hat / (sqrt(nu_hat) + eps) with the bias
    corrections mu_hat = mu / (1 - b1^count), nu_hat = nu / (1 - b2^count) (hyper = (b1, b2, eps))."""
    b1, b2, eps = hyper[0], hyper[1], hyper[2]
    mu = b1 * mu + (1.0 - b1) * g
    nu = b2 * nu + (1.0 - b2) * (g * g)
    return (mu / (1.0 - b1**count)) / (np.sqrt(nu / (1.0 - b2**count)) + eps), mu, nu


def identity() -> GradientTransformation:
    return GradientTransformation(lambda p: EmptyState(), lambda g, s, p=None: (g, s), CoordinateRule(gd_rule))


def trace(decay: float, nesterov: bool = False) -> GradientTransformation:
    """Momentum: v_t = g_t + decay v_{t-1}; the direction is v_t, or g_t + decay v_t with ``nesterov``."""
    rule = CoordinateRule(nesterov_rule if nesterov else momentum_rule, (float(decay),), n_state=1)

    def init(params: np.ndarray) -> TraceState:
        return TraceState(np.zeros_like(params))

    def update(g: np.ndarray, state: TraceState, params: np.ndarray | None = None):
        u, v, _ = rule.update(g, state.velocity, None, 0, rule.hyper)
        return u, TraceState(v)

    return GradientTransformation(init, update, rule)


def scale_by_adagrad(eps: float = 1e-10, initial_accumulator_value: float = 0.0) -> GradientTransformation:
    rule = CoordinateRule(adagrad_rule, (float(eps),), (float(initial_accumulator_value), 0.0), n_state=1)

    def init(params: np.ndarray) -> AccumulatorState:
        return AccumulatorState(np.full_like(params, initial_accumulator_value, dtype=float))

    def update(g: np.ndarray, state: AccumulatorState, params: np.ndarray | None = None):
        u, s, _ = rule.update(g, state.sum_of_squares, None, 0, rule.hyper)
        return u, AccumulatorState(s)

    return GradientTransformation(init, update, rule)


def scale_by_rms(decay: float = 0.9, eps: float = 1e-8) -> GradientTransformation:
    rule = CoordinateRule(rmsprop_rule, (float(decay), float(eps)), n_state=1)

    def init(params: np.ndarray) -> AccumulatorState:
        return AccumulatorState(np.zeros_like(params, dtype=float))

    def update(g: np.ndarray, state: AccumulatorState, params: np.ndarray | None = None):
        u, s, _ = rule.update(g, state.sum_of_squares, None, 0, rule.hyper)
        return u, AccumulatorState(s)

    return GradientTransformation(init, update, rule)


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    rule = CoordinateRule(adam_rule, (float(b1), float(b2), float(eps)), n_state=2)

    def init(params: np.ndarray) -> AdamState:
        return AdamState(0, np.zeros_like(params, dtype=float), np.zeros_like(params, dtype=float))

    def update(g: np.ndarray, state: AdamState, params: np.ndarray | None = None):
        count = state.count + 1
        u, mu, nu = rule.update(g, state.mu, state.nu, float(count), rule.hyper)
        return u, AdamState(count, mu, nu)

    return GradientTransformation(init, update, rule)


def chain(*transforms: GradientTransformation) -> GradientTransformation:
    """Apply transforms in order; the state is the tuple of their states."""

    def init(params: np.ndarray) -> tuple:
        return tuple(t.init(params) for t in transforms)

    def update(g: np.ndarray, state: tuple, params: np.ndarray | None = None):
        new_states = []
        for t, s in zip(transforms, state):
            g, s = t.update(g, s, params)
            new_states.append(s)
        return g, tuple(new_states)

    return GradientTransformation(init, update)


@dataclass(frozen=True)
class Optimizer:
    """A named optimizer: a direction transform and a learning rate (a number or a schedule).

    ``init``/``update`` follow optax: ``update`` returns the additive update ``-eta_t * u_t``.
    """

    name: str
    direction: GradientTransformation = field(repr=False)
    learning_rate: Schedule
    hyperparameters: dict[str, float] = field(default_factory=dict)

    def init(self, params: np.ndarray) -> tuple[int, Any]:
        return 0, self.direction.init(params)

    def update(self, grads: np.ndarray, state: tuple[int, Any], params: np.ndarray | None = None):
        step, inner = state
        u, inner = self.direction.update(grads, inner, params)
        return -self.learning_rate(step) * u, (step + 1, inner)


def _check_unit(name: str, value: float, *, allow_zero: bool = True) -> float:
    lo_ok = value >= 0 if allow_zero else value > 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (lo_ok and value < 1):
        rule = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"{name} must be in {rule}, got {value!r}.")
    return float(value)


def gd(learning_rate: Any = 0.1) -> Optimizer:
    """Plain gradient descent, theta <- theta - eta_t g_t (the workshop's update)."""
    return Optimizer("gd", identity(), as_schedule(learning_rate))


def momentum(learning_rate: Any = 0.1, beta: float = 0.9) -> Optimizer:
    """Heavy ball (Polyak, 1964): v_t = g_t + beta v_{t-1}, theta <- theta - eta_t v_t."""
    beta = _check_unit("beta", beta)
    return Optimizer("momentum", trace(beta), as_schedule(learning_rate), {"beta": beta})


def nesterov(learning_rate: Any = 0.1, beta: float = 0.9) -> Optimizer:
    """Nesterov's accelerated gradient (Sutskever et al., 2013): theta <- theta - eta_t (g_t + beta v_t)."""
    beta = _check_unit("beta", beta)
    return Optimizer("nesterov", trace(beta, nesterov=True), as_schedule(learning_rate), {"beta": beta})


def adagrad(learning_rate: Any = 0.1, eps: float = 1e-10, initial_accumulator_value: float = 0.0) -> Optimizer:
    """AdaGrad (Duchi, Hazan & Singer, 2011): per-coordinate steps eta / sqrt(sum of squared gradients)."""
    check_positive("eps", eps)
    check_positive("initial_accumulator_value", initial_accumulator_value, allow_zero=True)
    return Optimizer("adagrad", scale_by_adagrad(eps, initial_accumulator_value), as_schedule(learning_rate),
                     {"eps": eps, "initial_accumulator_value": initial_accumulator_value})


def rmsprop(learning_rate: Any = 0.01, decay: float = 0.9, eps: float = 1e-8) -> Optimizer:
    """RMSProp (Tieleman & Hinton, 2012): steps scaled by a running RMS of the gradient."""
    decay = _check_unit("decay", decay)
    check_positive("eps", eps)
    return Optimizer("rmsprop", scale_by_rms(decay, eps), as_schedule(learning_rate), {"decay": decay, "eps": eps})


def adam(learning_rate: Any = 0.01, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> Optimizer:
    """Adam (Kingma & Ba, 2015): bias-corrected running moments of the gradient and its square."""
    beta1 = _check_unit("beta1", beta1)
    beta2 = _check_unit("beta2", beta2)
    check_positive("eps", eps)
    return Optimizer("adam", scale_by_adam(beta1, beta2, eps), as_schedule(learning_rate),
                     {"beta1": beta1, "beta2": beta2, "eps": eps})


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "gd": gd, "momentum": momentum, "nesterov": nesterov, "adagrad": adagrad, "rmsprop": rmsprop, "adam": adam,
}


def make_optimizer(name: str | Optimizer, learning_rate: Any, **hyperparameters: Any) -> Optimizer:
    """The named optimizer with this learning rate; unknown names and parameters are errors that list the valid ones."""
    if isinstance(name, Optimizer):
        if hyperparameters:
            raise ValueError("optimizer parameters go to the Optimizer's constructor when an Optimizer is given.")
        return name
    check_choice("optimizer", name, tuple(OPTIMIZERS))
    factory = OPTIMIZERS[name]
    import inspect

    valid = [p for p in inspect.signature(factory).parameters if p != "learning_rate"]
    unknown = sorted(set(hyperparameters) - set(valid))
    if unknown:
        listed = ", ".join(valid) if valid else "none"
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for optimizer {name!r}; its parameters are: {listed}.")
    return factory(learning_rate, **hyperparameters)
