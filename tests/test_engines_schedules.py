"""Every learning-rate schedule runs compiled (gdlab._sgd_kernel) and gives the NumPy engine's iterates.

A schedule reaches the kernel as its scalar form (``scalar_rate(t, scalar_params)``, gdlab.schedules), never as a
name or a code. The references here are independent of gdlab: each schedule's formula written out below, and a plain
NumPy transcription of mini-batch gd and Adam on the squared error that takes its steps from those formulas. Both
engines must give the transcription's iterates after each epoch, to 1e-11, for batch 1 and 32 (and a sparse X);
a schedule defined in this file runs compiled with no change to the kernel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp

import gdlab
from gdlab import schedules
from gdlab.schedules import ScalarSchedule
from test_engines import needs_numba, packed

# ---- the schedules and their formulas, written out independently ---------------------------------------------------
ETA0 = {"gd": 0.05, "adam": 0.01}


def reference_rate(name, eta0, t):
    """The schedule's formula (its docstring's, and scikit-learn's for 'optimal'), t = 0, 1, 2, ..."""
    if name in ("constant", "adaptive"):
        return eta0
    if name == "invscaling":
        return eta0 / (t + 1) ** 0.3
    if name == "invscaling_sqrt":
        return eta0 / np.sqrt(t + 1)
    if name == "optimal":  # 1 / (alpha (t0 + t)) with alpha = 1 / (20 eta0): eta0 at t = 0 with t0 = 20
        return 1.0 / ((1.0 / (20.0 * eta0)) * (20.0 + t))
    if name == "exponential":
        return eta0 * 0.9 ** (t / 4)
    if name == "step":
        return eta0 * 0.7 ** np.floor(t / 5)
    if name == "cosine":  # T = 10 updates, floor 0.1 eta0
        return 0.1 * eta0 + 0.9 * eta0 * (1 + np.cos(np.pi * min(t, 10) / 10)) / 2
    if name == "warmup":
        return eta0 * (t + 1) / 6 if t < 6 else eta0 * np.sqrt(6 / (t + 1))
    raise KeyError(name)


def warmup_rate(t, params):
    """A linear warm-up over the first ``warmup_steps`` updates, then eta0 sqrt(warmup_steps / (t + 1))."""
    eta0, warmup_steps = params
    if t < warmup_steps:
        return eta0 * (t + 1.0) / warmup_steps
    return eta0 * math.sqrt(warmup_steps / (t + 1.0))


@dataclass(frozen=True)
class warmup(ScalarSchedule):
    """A schedule gdlab does not have: defined here, with its scalar form, and compiled as it is."""

    eta0: float
    warmup_steps: int = 6

    scalar_rate = staticmethod(warmup_rate)

    @property
    def scalar_params(self) -> tuple[float, ...]:
        return (float(self.eta0), float(self.warmup_steps))


def make(name, eta0):
    return {"constant": lambda: schedules.constant(eta0), "adaptive": lambda: schedules.adaptive(eta0),
            "invscaling": lambda: schedules.invscaling(eta0, 0.3),
            "invscaling_sqrt": lambda: schedules.invscaling(eta0, 0.5),
            "optimal": lambda: schedules.optimal(1.0 / (20.0 * eta0), t0=20.0),
            "exponential": lambda: schedules.exponential(eta0, 0.9, 4),
            "step": lambda: schedules.step(eta0, 5, 0.7),
            "cosine": lambda: schedules.cosine(eta0, 10, 0.1 * eta0), "warmup": lambda: warmup(eta0, 6)}[name]()


NAMES = ("constant", "adaptive", "invscaling", "invscaling_sqrt", "optimal", "exponential", "step", "cosine",
         "warmup")


@pytest.mark.parametrize("name", NAMES)
def test_each_schedule_is_its_formula(name):
    sched = make(name, 0.05)
    got = [sched(t) for t in range(400)]
    np.testing.assert_allclose(got, [reference_rate(name, 0.05, t) for t in range(400)], rtol=1e-14)
    assert sched(0) == type(sched).scalar_rate(0, sched.scalar_params)  # the call is the scalar form


def test_optimal_takes_scikit_learns_t0_by_default():
    alpha = 0.01  # scikit-learn's _init_t for a regression loss: typw = sqrt(1 / sqrt(alpha)), t0 = 1 / (typw alpha)
    t0 = 1.0 / (math.sqrt(1.0 / math.sqrt(alpha)) * alpha)
    np.testing.assert_allclose([schedules.optimal(alpha)(t) for t in range(50)],
                               [1.0 / (alpha * (t0 + t)) for t in range(50)], rtol=1e-14)


# ---- the transcription -----------------------------------------------------------------------------------------------
def data(m=100, d=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d)) * [1.0, 0.5, 1.5, 1.0][:d] + 0.3
    y = X @ rng.standard_normal(d) + 0.7 + 0.3 * rng.standard_normal(m)
    return X, y


def transcription(X, y, start, batch_size, optimizer, rate, n_epochs):
    """Mini-batch descent on sum (x.w + b - y)^2 / |B|, rows in order, the step rate(t) at update t; theta = [b; w]
    after each epoch. Adam: beta1 0.8, beta2 0.9, eps 1e-6 (Kingma & Ba, with bias corrections)."""
    m = len(X)
    Z = np.c_[np.ones(m), X]
    theta, mu, nu, t, out = start.copy(), 0.0, 0.0, 0, []
    for _ in range(n_epochs):
        for lo in range(0, m, batch_size):
            Zb, yb = Z[lo:lo + batch_size], y[lo:lo + batch_size]
            g = Zb.T @ (2.0 * (Zb @ theta - yb)) / len(yb)
            eta = rate(t)
            t += 1
            if optimizer == "gd":
                u = g
            else:
                mu = 0.8 * mu + 0.2 * g
                nu = 0.9 * nu + 0.1 * g**2
                u = (mu / (1 - 0.8**t)) / (np.sqrt(nu / (1 - 0.9**t)) + 1e-6)
            theta = theta - eta * u
        out.append(theta.copy())
    return np.array(out)


def fit(X, y, schedule, optimizer, batch_size, engine, epochs=3, tol=None, **kw):
    hyper = {"beta1": 0.8, "beta2": 0.9, "eps": 1e-6} if optimizer == "adam" else {}
    return gdlab.descend(X, y, optimizer=optimizer, learning_rate=schedule, batch_size=batch_size, shuffle=False,
                         standardize=False, max_iter=epochs, tol=tol, engine=engine, warn=False, **hyper, **kw)


# ---- every schedule, both engines ---------------------------------------------------------------------------------
@needs_numba
@pytest.mark.parametrize("batch_size", [1, 32])
@pytest.mark.parametrize("optimizer", ["gd", "adam"])
@pytest.mark.parametrize("name", NAMES)
def test_every_schedule_runs_compiled_with_the_numpy_engines_iterates(name, optimizer, batch_size):
    X, y = data()
    eta0 = ETA0[optimizer]
    runs = {engine: fit(X, y, make(name, eta0), optimizer, batch_size, engine) for engine in ("numpy", "compiled")}
    assert runs["compiled"].extra["engine"] == "compiled", runs["compiled"].extra["engine_reason"]
    assert runs["numpy"].extra["engine"] == "numpy"
    traj = {engine: packed(r.trajectory)[:, :, 0] for engine, r in runs.items()}
    expected = transcription(X, y, traj["numpy"][0], batch_size, optimizer, lambda t: reference_rate(name, eta0, t), 3)
    for engine in runs:
        np.testing.assert_allclose(traj[engine][1:], expected, rtol=1e-11, atol=1e-12, err_msg=engine)
        # the step of each epoch's last update, as recorded
        last = [reference_rate(name, eta0, (e + 1) * math.ceil(len(X) / batch_size) - 1) for e in range(3)]
        np.testing.assert_allclose(runs[engine].trajectory.learning_rate[1:], last, rtol=1e-13, err_msg=engine)
    np.testing.assert_allclose(traj["compiled"], traj["numpy"], rtol=1e-11, atol=1e-12)


@needs_numba
@pytest.mark.parametrize("optimizer", ["gd", "adam"])
@pytest.mark.parametrize("name", ["invscaling", "step", "cosine", "warmup"])
def test_every_schedule_runs_compiled_on_a_sparse_x(name, optimizer):
    X, y = data(m=60, d=4, seed=1)
    X[np.random.default_rng(2).random(X.shape) < 0.5] = 0.0
    eta0 = ETA0[optimizer]
    for batch_size in (1, 8):
        r = fit(sp.csr_array(X), y, make(name, eta0), optimizer, batch_size, "compiled")
        assert r.extra["engine"] == "compiled", r.extra["engine_reason"]
        traj = packed(r.trajectory)[:, :, 0]
        expected = transcription(X, y, traj[0], batch_size, optimizer, lambda t: reference_rate(name, eta0, t), 3)
        np.testing.assert_allclose(traj[1:], expected, rtol=1e-11, atol=1e-12)


@needs_numba
@pytest.mark.parametrize("batch_size", [1, 16])
def test_adaptive_runs_compiled_with_the_loops_divisions_by_five(batch_size):
    """'adaptive' is the constant eta0 in the kernel; the loop divides it by 5 when the loss stalls (here: a large
    tol, so that most epochs count as stalls), and both engines take the same divided steps."""
    X, y = data(seed=3)
    runs = {engine: fit(X, y, schedules.adaptive(0.05), "gd", batch_size, engine, epochs=8, tol=0.5,
                        n_iter_no_change=1) for engine in ("numpy", "compiled")}
    assert runs["compiled"].extra["engine"] == "compiled"
    rates = {engine: r.trajectory.learning_rate[1:] for engine, r in runs.items()}
    divisions = np.log(0.05 / rates["numpy"]) / np.log(5.0)
    assert divisions[-1] >= 2 and np.allclose(divisions, np.round(divisions), atol=1e-9), divisions
    np.testing.assert_allclose(rates["compiled"], rates["numpy"], rtol=1e-15)
    np.testing.assert_allclose(packed(runs["compiled"].trajectory), packed(runs["numpy"].trajectory), rtol=1e-11,
                               atol=1e-12)


# ---- what the compiled epochs refuse, the same way as the NumPy ones -------------------------------------------------
@needs_numba
@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("sparse", [False, True])
def test_a_step_that_reaches_zero_is_refused_by_both_engines_at_the_same_step(batch_size, sparse):
    X, y = data(m=40)
    Xs = sp.csr_array(X) if sparse else X
    sched = schedules.cosine(0.05, 12, 0.0)  # eta_12 = 0: no descent direction moves with it
    messages = {}
    for engine in ("numpy", "compiled"):
        with pytest.raises(ValueError, match="gave 0.0 at step 12") as raised:
            fit(Xs, y, sched, "gd", batch_size, engine, epochs=20)
        messages[engine] = str(raised.value)
    assert messages["numpy"] == messages["compiled"]


def test_a_schedule_without_a_scalar_form_runs_on_numpy_and_says_why():
    X, y = data(m=40)
    r = fit(X, y, lambda t: 0.05 / (1 + t), "gd", 4, "auto", epochs=2)
    assert r.extra["engine"] == "numpy" and "no scalar form" in r.extra["engine_reason"]
    with pytest.raises(ValueError, match="no scalar form"):
        fit(X, y, lambda t: 0.05 / (1 + t), "gd", 4, "compiled", epochs=2)


def test_the_kernel_has_no_schedule_codes():
    """The schedule is a compiled-in function and its parameter tuple, as the loss and the optimizer are."""
    from gdlab import _sgd_kernel, engines

    assert not hasattr(_sgd_kernel, "SCHEDULE_CODES") and not hasattr(engines, "_schedule_codes")
    for name in NAMES:
        rate, params = engines.schedule_form(make(name, 0.05))
        assert rate is type(make(name, 0.05)).scalar_rate and all(isinstance(v, float) for v in params)
