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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from gdlab._validation import check_choice, check_positive
from gdlab.schedules import Schedule, as_schedule

__all__ = [
    "GradientTransformation", "Optimizer", "chain", "identity", "trace", "scale_by_adagrad", "scale_by_rms",
    "scale_by_adam", "gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "OPTIMIZERS", "make_optimizer",
]


class GradientTransformation(NamedTuple):
    """init(params) -> state; update(grads, state, params) -> (directions, new_state)."""

    init: Callable[[np.ndarray], Any]
    update: Callable[[np.ndarray, Any, np.ndarray], tuple[np.ndarray, Any]]


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


def identity() -> GradientTransformation:
    return GradientTransformation(lambda p: EmptyState(), lambda g, s, p=None: (g, s))


def trace(decay: float, nesterov: bool = False) -> GradientTransformation:
    """Momentum: v_t = g_t + decay v_{t-1}; the direction is v_t, or g_t + decay v_t with ``nesterov``."""

    def init(params: np.ndarray) -> TraceState:
        return TraceState(np.zeros_like(params))

    def update(g: np.ndarray, state: TraceState, params: np.ndarray | None = None):
        v = g + decay * state.velocity
        u = g + decay * v if nesterov else v
        return u, TraceState(v)

    return GradientTransformation(init, update)


def scale_by_adagrad(eps: float = 1e-10, initial_accumulator_value: float = 0.0) -> GradientTransformation:
    def init(params: np.ndarray) -> AccumulatorState:
        return AccumulatorState(np.full_like(params, initial_accumulator_value, dtype=float))

    def update(g: np.ndarray, state: AccumulatorState, params: np.ndarray | None = None):
        s = state.sum_of_squares + g * g
        return g / (np.sqrt(s) + eps), AccumulatorState(s)

    return GradientTransformation(init, update)


def scale_by_rms(decay: float = 0.9, eps: float = 1e-8) -> GradientTransformation:
    def init(params: np.ndarray) -> AccumulatorState:
        return AccumulatorState(np.zeros_like(params, dtype=float))

    def update(g: np.ndarray, state: AccumulatorState, params: np.ndarray | None = None):
        s = decay * state.sum_of_squares + (1.0 - decay) * (g * g)
        return g / (np.sqrt(s) + eps), AccumulatorState(s)

    return GradientTransformation(init, update)


def scale_by_adam(b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> GradientTransformation:
    def init(params: np.ndarray) -> AdamState:
        return AdamState(0, np.zeros_like(params, dtype=float), np.zeros_like(params, dtype=float))

    def update(g: np.ndarray, state: AdamState, params: np.ndarray | None = None):
        count = state.count + 1
        mu = b1 * state.mu + (1.0 - b1) * g
        nu = b2 * state.nu + (1.0 - b2) * (g * g)
        mu_hat = mu / (1.0 - b1**count)
        nu_hat = nu / (1.0 - b2**count)
        return mu_hat / (np.sqrt(nu_hat) + eps), AdamState(count, mu, nu)

    return GradientTransformation(init, update)


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
