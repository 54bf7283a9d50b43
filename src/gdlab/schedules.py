"""Learning-rate schedules: a learning rate is a number or a function of the step t = 0, 1, 2, ...

Each schedule is a small frozen dataclass (picklable, with a readable repr) that is called with the step count.

Each is also written once as a *scalar form*, which is what the compiled epochs of :mod:`gdlab._sgd_kernel` run:

* ``scalar_rate``: a module-level function ``rate(t, params) -> float`` in plain arithmetic (``math``, no
  attributes, no Python objects), t the step (an integer) and params a tuple of floats;
* ``scalar_params``: that tuple for this schedule's settings.

Calling the schedule is ``scalar_rate(t, scalar_params)``, so the NumPy path and the compiled one evaluate the same
function (numba compiles it into the epoch, one compiled epoch per function, like a loss's ``scalar_derivative``
and an optimizer's ``CoordinateRule``). A new schedule is one class with these two members; any other callable of
t also works, on the NumPy epochs only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

from gdlab._validation import check_choice, check_positive

__all__ = [
    "Schedule", "ScalarSchedule", "constant", "invscaling", "optimal", "exponential", "step", "cosine", "adaptive",
    "SCHEDULES", "make_schedule", "as_schedule",
]

Schedule = Callable[[int], float]
LearningRate = Union[float, Schedule]


# ---- the scalar forms: each rate written once, for Python and numba alike --------------------------------------
def constant_rate(t, params):
    """eta_t = eta0 (params = (eta0,))."""
    return params[0]


def invscaling_rate(t, params):
    """eta_t = eta0 / (t + 1)^power_t (params = (eta0, power_t))."""
    # the common exponents by square roots: a general power costs as much as the rest of a batch-1 update
    if params[1] == 0.5:
        return params[0] / math.sqrt(t + 1.0)
    if params[1] == 0.25:
        return params[0] / math.sqrt(math.sqrt(t + 1.0))
    return params[0] / (t + 1.0) ** params[1]


def optimal_rate(t, params):
    """eta_t = 1 / (alpha (t0 + t)) (params = (alpha, t0))."""
    return 1.0 / (params[0] * (params[1] + t))


def exponential_rate(t, params):
    """eta_t = eta0 decay_rate^(t / decay_steps) (params = (eta0, decay_rate, decay_steps))."""
    return params[0] * params[1] ** (t / params[2])


def step_rate(t, params):
    """eta_t = eta0 gamma^floor(t / step_size) (params = (eta0, step_size, gamma))."""
    return params[0] * params[2] ** (t // params[1])


def cosine_rate(t, params):
    """eta_t = eta_min + (eta0 - eta_min) (1 + cos(pi min(t, T) / T)) / 2 (params = (eta0, T, eta_min))."""
    frac = min(t * 1.0, params[1]) / params[1]
    return params[2] + (params[0] - params[2]) * 0.5 * (1.0 + math.cos(math.pi * frac))


class ScalarSchedule:
    """A schedule given by its scalar form: ``schedule(t) = scalar_rate(t, scalar_params)``.

    Subclasses (frozen dataclasses) set ``scalar_rate = staticmethod(a_rate_function)`` and define the property
    ``scalar_params`` (a tuple of floats)."""

    scalar_rate: Callable[[int, tuple], float]

    @property
    def scalar_params(self) -> tuple[float, ...]:  # pragma: no cover - overridden
        raise NotImplementedError

    def __call__(self, t: int) -> float:
        return type(self).scalar_rate(t, self.scalar_params)


@dataclass(frozen=True)
class constant(ScalarSchedule):
    """eta_t = eta0 (the workshop's step)."""

    eta0: float

    def __post_init__(self) -> None:
        check_positive("learning_rate", self.eta0)

    scalar_rate = staticmethod(constant_rate)

    @property
    def scalar_params(self) -> tuple[float, ...]:
        return (float(self.eta0),)


@dataclass(frozen=True)
class invscaling(ScalarSchedule):
    """eta_t = eta0 / (t + 1)^power_t (scikit-learn's 'invscaling', counting steps from 1)."""

    eta0: float
    power_t: float = 0.25

    def __post_init__(self) -> None:
        check_positive("eta0", self.eta0)
        check_positive("power_t", self.power_t, allow_zero=True)

    scalar_rate = staticmethod(invscaling_rate)

    @property
    def scalar_params(self) -> tuple[float, ...]:
        return (float(self.eta0), float(self.power_t))


@dataclass(frozen=True)
class optimal(ScalarSchedule):
    """eta_t = 1 / (alpha (t0 + t)) (scikit-learn's 'optimal', with its default t0 for regression losses).

    For the squared-error scale of scikit-learn (r^2 / 2) and gdlab's (r^2), pass the alpha of the objective.
    """

    alpha: float
    t0: float | None = None

    def __post_init__(self) -> None:
        check_positive("alpha", self.alpha)

    def _t0(self) -> float:
        if self.t0 is not None:
            return self.t0
        # scikit-learn: typw = sqrt(1/sqrt(alpha)); eta0 = typw / max(1, dloss(-typw, 1)); t0 = 1/(eta0 alpha).
        # For every regression loss dloss(-typw, 1) < 0 < 1, so eta0 = typw.
        typw = math.sqrt(1.0 / math.sqrt(self.alpha))
        return 1.0 / (typw * self.alpha)

    scalar_rate = staticmethod(optimal_rate)

    @property
    def scalar_params(self) -> tuple[float, ...]:
        return (float(self.alpha), float(self._t0()))


@dataclass(frozen=True)
class exponential(ScalarSchedule):
    """eta_t = eta0 * decay_rate^(t / decay_steps)."""

    eta0: float
    decay_rate: float = 0.99
    decay_steps: int = 1

    def __post_init__(self) -> None:
        check_positive("eta0", self.eta0)
        check_positive("decay_rate", self.decay_rate)
        check_positive("decay_steps", self.decay_steps, integer=True)

    scalar_rate = staticmethod(exponential_rate)

    @property
    def scalar_params(self) -> tuple[float, ...]:
        return (float(self.eta0), float(self.decay_rate), float(self.decay_steps))


@dataclass(frozen=True)
class step(ScalarSchedule):
    """eta_t = eta0 * gamma^floor(t / step_size) (piecewise constant)."""

    eta0: float
    step_size: int = 100
    gamma: float = 0.5

    def __post_init__(self) -> None:
        check_positive("eta0", self.eta0)
        check_positive("step_size", self.step_size, integer=True)
        check_positive("gamma", self.gamma)

    scalar_rate = staticmethod(step_rate)

    @property
    def scalar_params(self) -> tuple[float, ...]:
        return (float(self.eta0), float(self.step_size), float(self.gamma))


@dataclass(frozen=True)
class cosine(ScalarSchedule):
    """eta_t = eta_min + (eta0 - eta_min) (1 + cos(pi min(t, T) / T)) / 2 (Loshchilov & Hutter, SGDR, 2017)."""

    eta0: float
    decay_steps: int = 1000
    eta_min: float = 0.0

    def __post_init__(self) -> None:
        check_positive("eta0", self.eta0)
        check_positive("decay_steps", self.decay_steps, integer=True)
        check_positive("eta_min", self.eta_min, allow_zero=True)

    scalar_rate = staticmethod(cosine_rate)

    @property
    def scalar_params(self) -> tuple[float, ...]:
        return (float(self.eta0), float(self.decay_steps), float(self.eta_min))


@dataclass(frozen=True)
class adaptive(ScalarSchedule):
    """scikit-learn's 'adaptive': eta0 while the loss keeps improving; divided by 5 each time it stalls for
    ``n_iter_no_change`` epochs; the run stops when eta falls below 1e-6. The descent loop does the dividing
    (it sees the loss); as a function of t alone this is the constant eta0."""

    eta0: float

    def __post_init__(self) -> None:
        check_positive("eta0", self.eta0)

    scalar_rate = staticmethod(constant_rate)

    @property
    def scalar_params(self) -> tuple[float, ...]:
        return (float(self.eta0),)


SCHEDULES = ("constant", "invscaling", "optimal", "exponential", "step", "cosine", "adaptive")


def make_schedule(name: str, eta0: float = 0.01, **params: Any) -> Schedule:
    """A schedule by name: ``make_schedule("invscaling", eta0=0.01, power_t=0.25)``."""
    check_choice("learning-rate schedule", name, SCHEDULES)
    cls = {"constant": constant, "invscaling": invscaling, "exponential": exponential, "step": step,
           "cosine": cosine, "adaptive": adaptive}.get(name)
    if name == "optimal":
        return optimal(**params)
    try:
        return cls(eta0, **params)  # type: ignore[misc]
    except TypeError as exc:
        raise ValueError(f"bad parameters for schedule {name!r}: {exc}") from None


def as_schedule(learning_rate: Any) -> Schedule:
    """A number becomes a constant schedule; a callable is used as it is; a name makes that schedule."""
    if isinstance(learning_rate, str):
        return make_schedule(learning_rate)
    if callable(learning_rate):
        return learning_rate
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, (int, float)) and not hasattr(
            learning_rate, "__float__"):
        raise ValueError(f"learning_rate must be a positive number, a schedule or 'auto', got {learning_rate!r}.")
    return constant(float(learning_rate))
