"""Issue 10, "right by default on real data": the table of real and awkward data sets, every face.

Each row is a data set with its features as they come (scikit-learn's bundled data sets unscaled, and synthetic
awkward ones). For each row and each face (``descend`` defaults and each optimizer, ``GDRegressor().fit``,
``gdlab fit``, ``gdlab compare``) the fit must either reach the optimum -- a relative objective gap of at most
1e-6 against an independent reference (scikit-learn's LinearRegression, Ridge with the matching alpha, NumPy's
minimum-norm lstsq on the centred design) -- or say so: ``converged`` False and a warning that names the gap.
It may never say ``converged`` with a gap above its tolerance, and learning_rate='auto' never diverges.

The references are computed here, from the rows, without gdlab; gdlab's own numbers (its optimum, its gap) are
checked against them, never used as the reference.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import datasets as skd
from sklearn.linear_model import LinearRegression, Ridge

import gdlab
from cli_driver import Outcome, run_cli_batch as _run_cli_batch
from gdlab.exceptions import ConvergenceWarning, DivergenceWarning

TOL = 1e-10  # descend's and GDRegressor's default tol: a relative objective gap
GAP_OK = 1e-6  # the table's bar: "reaches the optimum"
ALPHA = 1e-4  # GDRegressor's default alpha (penalty='l2'): its objective is MSE + ALPHA |w|^2
EPS = np.finfo(float).eps
OPTIMIZERS = ("gd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")

REAL_ROWS = ("diabetes", "linnerud", "iris", "wine", "breast_cancer")
SYNTHETIC_ROWS = ("constant_column", "duplicated_column", "one_hot", "times_1e6", "times_1e-6", "means_1e8", "wide",
                  "float32")
ROWS = REAL_ROWS + SYNTHETIC_ROWS
RANK_DEFICIENT_ROWS = ("constant_column", "duplicated_column", "one_hot", "wide")


# ---- the data ------------------------------------------------------------------------------------------------

def build_rows() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every row of the table: name -> (X with raw features, y)."""
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    X, y = skd.load_diabetes(return_X_y=True, scaled=False)
    rows["diabetes"] = (X, y)
    lin = skd.load_linnerud()
    rows["linnerud"] = (lin.data.astype(float), lin.target[:, 0].astype(float))  # weight from the exercises
    iris = skd.load_iris().data
    rows["iris"] = (iris[:, :3], iris[:, 3])  # petal width from the other three measurements
    wine = skd.load_wine().data
    rows["wine"] = (wine[:, 1:], wine[:, 0])  # alcohol from the other 12 columns (proline is in the 1000s)
    bc = skd.load_breast_cancer()
    rows["breast_cancer"] = (bc.data, bc.target.astype(float))

    rng = np.random.default_rng(20240610)

    def target(X, noise=0.5, intercept=3.0):
        return X @ rng.normal(size=X.shape[1]) + intercept + noise * rng.normal(size=X.shape[0])

    X = rng.normal(size=(200, 4))
    X[:, 2] = 5.0  # a constant column
    rows["constant_column"] = (X, target(X))
    X = rng.normal(size=(200, 4))
    X = np.c_[X, X[:, 1]]  # column 4 duplicates column 1
    rows["duplicated_column"] = (X, target(X))
    levels = rng.integers(0, 4, size=200)
    X = np.c_[rng.normal(size=(200, 2)), np.eye(4)[levels]]  # a full set of dummies beside the intercept
    rows["one_hot"] = (X, target(X))
    X = rng.normal(size=(200, 4))
    rows["times_1e6"] = (X * 1e6, target(X))
    X = rng.normal(size=(200, 4))
    rows["times_1e-6"] = (X * 1e-6, target(X))
    X = rng.normal(size=(200, 4))
    rows["means_1e8"] = (X + 1e8, target(X))
    X = rng.normal(size=(40, 120))  # more features than rows: the data are interpolated, F* = 0
    rows["wide"] = (X, target(X))
    X = rng.normal(size=(200, 5)) * [1e-2, 1.0, 10.0, 100.0, 1e3] + [0.0, 5.0, -3.0, 50.0, 1e3]
    rows["float32"] = (X.astype(np.float32), target(X))
    return rows


def objective(X, y, coef, intercept, l2: float = 0.0) -> float:
    """MSE + l2 |w|^2, in float64, on centred columns (so that columns with means of 1e8 keep their digits)."""
    X = np.asarray(X, dtype=np.float64)
    w = np.asarray(coef, dtype=np.float64).ravel()
    b = float(np.ravel(intercept)[0])
    c = X.mean(axis=0)
    r = (X - c) @ w + (b + c @ w) - np.asarray(y, dtype=np.float64)
    return float(r @ r) / r.shape[0] + l2 * float(w @ w)


@dataclass(frozen=True)
class Optimum:
    """An independent reference optimum F* of one objective, and the scale F0 (the variance of y: the objective
    at the best constant, where a standardized descent starts)."""

    f_star: float
    f0: float

    @property
    def interpolating(self) -> bool:
        return self.f_star <= 1e-9 * self.f0

    def gap(self, f: float) -> float:
        """(F - F*) / F*; relative to F0 where the data are interpolated (F* ~ 0)."""
        return (f - self.f_star) / (self.f0 if self.interpolating else self.f_star)

    def slack(self) -> float:
        """Float slack on a claim of convergence: 256 ulps of F0 (the rounding of F, and of the optimum gdlab
        solves for from the statistics, at the start's scale) and 1% of tol."""
        return 256 * EPS * self.f0 + 1e-2 * TOL * abs(self.f_star)

    def within_tol(self, f: float) -> bool:
        """What converged=True promises: F - F* <= tol * |F*| (F* ~ 0: tol * eps * F0), up to the slack."""
        return f - self.f_star <= TOL * max(abs(self.f_star), EPS * self.f0) + self.slack()


def least_squares_optimum(X, y) -> Optimum:
    """min over scikit-learn's LinearRegression and NumPy's minimum-norm lstsq on the centred design."""
    X = np.asarray(X, dtype=np.float64)
    lr = LinearRegression().fit(X, y)
    c, ybar = X.mean(axis=0), float(np.mean(y))
    w, *_ = np.linalg.lstsq(X - c, y - ybar, rcond=None)
    f = min(objective(X, y, lr.coef_, lr.intercept_), objective(X, y, w, ybar - c @ w))
    return Optimum(f, float(np.var(y)))


def ridge_optimum(X, y, alpha: float = ALPHA) -> Optimum:
    """GDRegressor's objective MSE + alpha |w|^2 = (1/m)(|r|^2 + m alpha |w|^2): scikit-learn's Ridge with
    alpha * m (checked in test_gdregressor_objective_is_ridge_with_alpha_times_m), and the same problem as an
    augmented lstsq on the centred design (the intercept is not penalised); the lower of the two."""
    X = np.asarray(X, dtype=np.float64)
    m, d = X.shape
    rd = Ridge(alpha=alpha * m).fit(X, y)
    c, ybar = X.mean(axis=0), float(np.mean(y))
    A = np.vstack([X - c, math.sqrt(alpha * m) * np.eye(d)])
    w, *_ = np.linalg.lstsq(A, np.r_[y - ybar, np.zeros(d)], rcond=None)
    f = min(objective(X, y, rd.coef_, rd.intercept_, alpha), objective(X, y, w, ybar - c @ w, alpha))
    return Optimum(f, float(np.var(y)))


@dataclass(frozen=True)
class Row:
    X: np.ndarray
    y: np.ndarray
    ls: Optimum  # the unpenalised least-squares optimum (descend, gdlab fit, gdlab compare)
    ridge: Optimum  # GDRegressor's objective


@pytest.fixture(scope="module")
def table() -> dict[str, Row]:
    rows = {}
    for name, (X, y) in build_rows().items():
        rows[name] = Row(X, y, least_squares_optimum(X, y), ridge_optimum(X, y))
    return rows


# ---- what "says so" means ------------------------------------------------------------------------------------

GAP_WORDS = re.compile(r"(x|above) the minimum")


def names_the_gap(text: str) -> bool:
    return bool(GAP_WORDS.search(text))


def check_honest(label: str, opt: Optimum, f: float, converged: bool, warning_texts: list[str]) -> None:
    """Reached (gap <= 1e-6), or said so (converged False and a warning naming the gap); never a claim of
    convergence above tol; a run that did not converge warns, one that did does not."""
    gap = opt.gap(f)
    if converged:
        assert opt.within_tol(f), (f"{label}: converged=True with F - F* = {f - opt.f_star:.3g} (relative gap "
                                   f"{gap:.3g}), above tol x |F*| = {TOL * abs(opt.f_star):.3g}")
        assert not warning_texts, f"{label}: converged=True, yet it warned: {warning_texts}"
    else:
        assert any(names_the_gap(t) for t in warning_texts), (
            f"{label}: converged=False (relative gap {gap:.3g}) without a warning naming the gap: {warning_texts}")
    assert gap <= GAP_OK or not converged, f"{label}: relative gap {gap:.3g}"


def run_recording(fn):
    """fn() with every warning recorded: (value, ConvergenceWarning texts, DivergenceWarnings)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = fn()
    conv = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    div = [str(w.message) for w in caught if issubclass(w.category, DivergenceWarning)]
    return value, conv, div


# ---- the library faces ---------------------------------------------------------------------------------------

DESCEND_FACES = ("defaults",) + OPTIMIZERS


@pytest.mark.parametrize("face", DESCEND_FACES)
@pytest.mark.parametrize("row", ROWS)
def test_descend_reaches_the_optimum_or_says_so(table, row, face):
    r = table[row]
    kwargs = {} if face == "defaults" else {"optimizer": face}
    res, conv, div = run_recording(lambda: gdlab.descend(r.X, r.y, **kwargs))
    assert not div and not res.diverged, f"{row}/{face}: learning_rate='auto' diverged: {div or res.message}"
    assert res.scaling == "standardize", res.scaling_reason
    f = objective(r.X, r.y, res.coef, res.intercept)
    check_honest(f"{row}/descend {face}", r.ls, f, res.converged, conv)
    # its own idea of the optimum (what `converged` and the warning's gap are measured from) is the true one
    assert res.optimum_loss is not None
    assert abs(res.optimum_loss - r.ls.f_star) <= TOL * abs(r.ls.f_star) + r.ls.slack(), (
        f"{row}/{face}: Result.optimum_loss {res.optimum_loss!r}, the minimum is {r.ls.f_star!r}")
    if not res.converged:
        assert isinstance(res.extra["diagnosis"], gdlab.descent.Diagnosis)


@pytest.mark.parametrize("row", ROWS)
def test_descend_on_gdregressors_objective_knows_its_optimum(table, row):
    """descend with penalty='l2', alpha=2 * ALPHA is GDRegressor's default objective (MSE + ALPHA |w|^2): its
    optimum_loss must be the Ridge minimum, or neither `converged` nor the warning's gap means anything."""
    r = table[row]
    res, conv, div = run_recording(lambda: gdlab.descend(r.X, r.y, penalty="l2", alpha=2 * ALPHA))
    assert not div and not res.diverged
    f = objective(r.X, r.y, res.coef, res.intercept, ALPHA)
    assert abs(res.loss - f) <= 1e-9 * abs(f), f"{row}: Result.loss {res.loss!r} is not MSE + alpha |w|^2 = {f!r}"
    assert abs(res.optimum_loss - r.ridge.f_star) <= TOL * abs(r.ridge.f_star) + r.ridge.slack(), (
        f"{row}: Result.optimum_loss {res.optimum_loss!r}, the Ridge minimum is {r.ridge.f_star!r} (off by "
        f"{res.optimum_loss - r.ridge.f_star:.3g}, {abs(res.optimum_loss / r.ridge.f_star - 1):.2g} relative)")
    check_honest(f"{row}/descend ridge", r.ridge, f, res.converged, conv)


def test_gdregressor_objective_is_ridge_with_alpha_times_m(table):
    """GDRegressor minimises MSE + 2 alpha R(w) = MSE + alpha |w|^2, i.e. Ridge(alpha * m); gdlab's closed form
    takes l2 with MSE + l2/2 |w|^2, so l2 = 2 alpha. On features of 1e-6 the penalty dominates, so a wrong
    factor shows."""
    r = table["times_1e-6"]
    m = r.X.shape[0]
    cf = gdlab.closed_form(r.X, r.y, l2=2 * ALPHA)
    ridge = Ridge(alpha=ALPHA * m).fit(r.X, r.y)
    np.testing.assert_allclose(cf.coef, ridge.coef_, rtol=1e-9)
    assert not np.allclose(cf.coef, Ridge(alpha=2 * ALPHA * m).fit(r.X, r.y).coef_, rtol=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = gdlab.GDRegressor().fit(r.X, r.y)
    # the estimator's reported objective is MSE + alpha |w|^2 at its coefficients
    f = objective(r.X, r.y, est.coef_, est.intercept_, ALPHA)
    assert est.loss_ == pytest.approx(f, rel=1e-9)


@pytest.mark.parametrize("row", ROWS)
def test_gdregressor_reaches_the_ridge_optimum_or_says_so(table, row):
    r = table[row]
    est, conv, div = run_recording(lambda: gdlab.GDRegressor().fit(r.X, r.y))
    assert not div and not est.diverged_, f"{row}: GDRegressor() diverged: {div or est.message_}"
    f = objective(r.X, r.y, est.coef_, est.intercept_, ALPHA)
    check_honest(f"{row}/GDRegressor", r.ridge, f, bool(est.converged_), conv)


# ---- rank deficiency: the minimum-norm solution ---------------------------------------------------------------

@pytest.mark.parametrize("row", RANK_DEFICIENT_ROWS)
def test_rank_deficient_descent_lands_on_the_minimum_norm_solution(table, row):
    """From the default start (intercept = mean of y, slopes 0) the standardized descent moves only in the row
    space of Z = (X - mean) / sd, so it converges to the minimum-norm solution IN THE STANDARDIZED COORDINATES:
    w' = pinv(Z) (y - mean y), w = w' / sd (a constant column keeps sd 1 and gets 0). That is also what
    gdlab.closed_form returns. It is not the minimum-|w| solution in raw units where the columns' spreads
    differ (one-hot dummies of unequal frequency, the wide row); for a duplicated column the two agree."""
    r = table[row]
    X = np.asarray(r.X, dtype=np.float64)
    c, s = X.mean(axis=0), X.std(axis=0)
    s[s == 0] = 1.0
    wz, *_ = np.linalg.lstsq((X - c) / s, r.y - r.y.mean(), rcond=None)
    w_min = wz / s
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = gdlab.descend(r.X, r.y, tol=1e-13, max_iter=3000)
    assert res.scaling == "standardize"

    def rel(w):  # relative distance in the standardized coordinates
        return float(np.linalg.norm((np.asarray(w) - w_min) * s) / np.linalg.norm(w_min * s))

    assert rel(res.coef) <= 1e-6, f"{row}: descend is {rel(res.coef):.3g} (relative) from the minimum-norm solution"
    # and says so
    assert "rank deficient" in " ".join(res.extra.get("notes", [])), res.extra.get("notes")
    with pytest.warns(gdlab.RankDeficiencyWarning):
        cf = gdlab.closed_form(r.X, r.y)
    assert rel(cf.coef) <= 1e-9
    np.testing.assert_allclose(res.coef, cf.coef, rtol=1e-5, atol=1e-6 * np.max(np.abs(cf.coef)))
    w_raw, *_ = np.linalg.lstsq(X - c, r.y - r.y.mean(), rcond=None)
    if np.linalg.norm(w_raw - w_min) > 1e-3 * np.linalg.norm(w_min):  # the coordinates matter on this row
        assert np.linalg.norm(res.coef - w_raw) > 1e-4 * np.linalg.norm(w_raw)


# ---- a remedy in a warning works ------------------------------------------------------------------------------

REMEDY_CASES = {
    # the real data set that stops short in the default 1000 iterations (breast cancer asks for ~5e5: too slow)
    "diabetes": {},
    # mu = 0: the 'auto' step is planned on the budget, so the suggested budget must still be enough once given
    "constant_column": {},
    "duplicated_column": {},
    "one_hot": {},
    # GDRegressor's default objective on columns with means of 1e8 (its optimum from the raw statistics)
    "means_1e8": {"penalty": "l2", "alpha": 2 * ALPHA},
}


def stopping_short(fn, budgets=(1000, 300, 100, 30, 10, 5, 3)):
    """The first budget (the default first) at which the fit stops short of the optimum: (budget, result,
    ConvergenceWarning texts)."""
    for budget in budgets:
        res, conv, _ = run_recording(lambda: fn(budget))
        if not getattr(res, "converged", getattr(res, "converged_", True)):
            return budget, res, conv
    raise AssertionError("the fit converges even in 3 iterations: nothing to remedy")


@pytest.mark.parametrize("row", list(REMEDY_CASES))
def test_the_suggested_max_iter_makes_it_converge(table, row):
    """A fit that stops short (in the default budget, else in a smaller one) suggests a max_iter; given it, the
    same fit converges, truly."""
    r = table[row]
    kwargs = REMEDY_CASES[row]
    opt = r.ls if not kwargs else r.ridge
    l2 = ALPHA if kwargs else 0.0
    budget, res, conv = stopping_short(lambda n: gdlab.descend(r.X, r.y, max_iter=n, **kwargs))
    assert conv and names_the_gap(conv[0]), conv
    remedies = dict(res.extra["diagnosis"].remedies)
    assert "max_iter" in remedies, f"{row}: no max_iter among the remedies {res.extra['diagnosis'].remedies}"
    n = int(remedies["max_iter"])
    assert budget < n <= 1_000_000
    assert f"max_iter={n}" in conv[0]
    again, _, _ = run_recording(lambda: gdlab.descend(r.X, r.y, max_iter=n, **kwargs))
    f = objective(r.X, r.y, again.coef, again.intercept, l2)
    assert again.converged, (f"{row}: stopped short with max_iter={budget} (true relative gap "
                             f"{opt.gap(objective(r.X, r.y, res.coef, res.intercept, l2)):.3g}); the remedy "
                             f"max_iter={n} did not work: {again.message} (true relative gap {opt.gap(f):.3g})")
    assert opt.within_tol(f)


@pytest.mark.parametrize("row", ["diabetes", "one_hot"])
def test_gdregressors_suggested_max_iter_makes_it_converge(table, row):
    r = table[row]
    budget, est, conv = stopping_short(lambda n: gdlab.GDRegressor(max_iter=n).fit(r.X, r.y))
    assert conv and names_the_gap(conv[0]), conv
    suggested = [int(v) for v in re.findall(r"max_iter=(\d+)", conv[0]) if int(v) != budget]
    assert suggested, conv[0]
    n = suggested[0]
    assert budget < n <= 1_000_000
    est2, conv2, _ = run_recording(lambda: gdlab.GDRegressor(max_iter=n).fit(r.X, r.y))
    assert est2.converged_ and not conv2, f"{row}: the remedy max_iter={n} did not work: {est2.message_}"
    assert r.ridge.within_tol(objective(r.X, r.y, est2.coef_, est2.intercept_, ALPHA))


# ---- the lab keeps raw descent: the workshop's iterates ----------------------------------------------------------

def workshop_transcription(X, y, w0, eta, n_iterations):
    """The workshop's loop, written out: w <- w - eta (2/m) X_b^T (X_b w - y)."""
    X_b = np.c_[np.ones((X.shape[0], 1)), X]
    yy = y.reshape(-1, 1)
    m = X.shape[0]
    w = np.asarray(w0, dtype=float).reshape(-1, 1)
    out = [w.copy()]
    for _ in range(n_iterations):
        gradients = 2 / m * X_b.T.dot(X_b.dot(w) - yy)
        w = w - eta * gradients
        out.append(w.copy())
    return np.array(out)[:, :, 0]


@pytest.mark.parametrize("source", ["auto", "memory", "gram"])
def test_explicit_settings_run_the_workshops_raw_loop(source):
    ds = gdlab.datasets.workshop_line()
    kw = dict(learning_rate=0.1, max_iter=10, tol=None, source=source, coef_init=ds.coef_init,
              intercept_init=ds.intercept_init)
    res = gdlab.descend(ds.X, ds.y, **kw)
    assert res.scaling == "none", res.scaling_reason
    expected = workshop_transcription(ds.X, ds.y, ds.w_init, 0.1, 10)
    # the same iterates to the last bits: the literal expression sums in another order (BLAS dot vs NumPy's
    # pairwise sum, or the gram statistics), which moves the last one or two bits
    np.testing.assert_array_max_ulp(res.trajectory.params, expected, maxulp=4)
    np.testing.assert_array_max_ulp(res.params, expected[-1], maxulp=4)
    # standardize='auto' with an explicit rate is exactly the raw descent, bit for bit
    raw = gdlab.descend(ds.X, ds.y, standardize=False, **kw)
    np.testing.assert_array_equal(res.trajectory.params, raw.trajectory.params)


# ---- hypothesis: converged means within tol, and 'auto' never diverges ---------------------------------------------

def random_problem(seed: int, m: int, d: int, log_noise: float, log_mean: float, duplicate: str):
    """A least-squares problem with column spreads of 10^-3..10^3 and means up to 10^log_mean spreads.
    duplicate: "none"; "exact" (the last column is the first, bit for bit); "affine" (the last column is an
    affine copy of the first in other units, like degrees F beside degrees C: collinear with the intercept up to
    the rounding of the data)."""
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-3, 3, size=d)
    means = rng.normal(size=d) * 10.0 ** log_mean * scales
    Z = rng.normal(size=(m, d))
    if duplicate == "affine" and d > 1:
        Z[:, -1] = Z[:, 0]
    X = Z * scales + means
    if duplicate == "exact" and d > 1:
        X[:, -1] = X[:, 0]
    y = Z @ rng.normal(size=d) + rng.normal() * 10 + 10.0 ** log_noise * rng.normal(size=m)
    return X, y


# The reference optimum must be well defined: an affine copy of a column leaves a direction whose singular value
# is the data's rounding (~1e-13 of the largest), where "the optimum" depends on the rank one decides; those
# problems are in test_an_affine_copy_of_a_column below, with a numerical-rank reference.
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), m=st.integers(3, 80), d=st.integers(1, 8),
       log_noise=st.floats(-4.0, 1.0), log_mean=st.floats(-3.0, 6.0), duplicate=st.sampled_from(["none", "exact"]))
def test_random_problems_converged_means_within_tol_and_auto_never_diverges(seed, m, d, log_noise, log_mean,
                                                                           duplicate):
    X, y = random_problem(seed, m, d, log_noise, log_mean, duplicate)
    opt = least_squares_optimum(X, y)
    res, conv, div = run_recording(lambda: gdlab.descend(X, y))
    assert not res.diverged and not div, res.message
    f = objective(X, y, res.coef, res.intercept)
    if res.converged:
        assert opt.within_tol(f), (f"converged=True with F - F* = {f - opt.f_star:.3g}, F* = {opt.f_star:.6g} "
                                   f"(relative gap {opt.gap(f):.3g}): {res.message}")
    else:
        assert any(names_the_gap(t) for t in conv), (res.message, conv)


def test_an_affine_copy_of_a_column():
    """Column 4 is column 0 in other units (x4 = a x0 + b, means ~1e3 spreads): the design is rank deficient but
    for the rounding of the data (a singular value ~7e-14 of the largest). The reference is the minimum-norm
    lstsq on the standardized centred design at numerical rank (singular values below 1e-10 of the largest
    dropped). Both gdlab's exact reference (closed_form) and the descent must land on that optimum."""
    X, y = random_problem(0, 8, 5, 0.0, 3.0, "affine")
    c, s = X.mean(axis=0), X.std(axis=0)
    Zs = (X - c) / s
    sv = np.linalg.svd(Zs, compute_uv=False)
    assert sv[-1] < 1e-10 * sv[0] < sv[-2]
    wz, *_ = np.linalg.lstsq(Zs, y - y.mean(), rcond=1e-10)
    opt = Optimum(objective(X, y, wz / s, y.mean() - c @ (wz / s)), float(np.var(y)))
    res, conv, div = run_recording(lambda: gdlab.descend(X, y))
    assert not div and not res.diverged
    check_honest("affine copy/descend", opt, objective(X, y, res.coef, res.intercept), res.converged, conv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gdlab.RankDeficiencyWarning)
        cf = gdlab.closed_form(X, y)
    f_cf = objective(X, y, cf.coef, cf.intercept)
    assert opt.gap(f_cf) <= GAP_OK, (
        f"closed_form ({cf.extra.get('solver')}, rank {cf.extra.get('rank')}) is {opt.gap(f_cf):.3g} (relative) "
        f"above the minimum {opt.f_star:.10g}; its coefficients {cf.coef}, intercept {cf.intercept:.4g}; "
        f"it reports the loss {cf.loss:.10g}")


# ---- the command line: gdlab fit and gdlab compare -----------------------------------------------------------------

_SCRIPT_ENV = {**os.environ, "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}
def run_cli_batch(cases: list[tuple[list[str], Path]]) -> list[Outcome]:
    """Every CLI case in one subprocess, through the entry point (tests/cli_driver.py)."""
    return _run_cli_batch(cases, _SCRIPT_ENV, timeout=300)


def feature_names(d: int) -> list[str]:
    return [f"f{j}" for j in range(d)]


@pytest.fixture(scope="module")
def cli(table, tmp_path_factory):
    """Every row as a CSV, then `gdlab fit` and `gdlab compare` on each (JSON output), in one subprocess."""
    folder = tmp_path_factory.mktemp("cli_rows")
    cases: list[tuple[list[str], Path]] = [(["fit", "--help"], folder), (["compare", "--help"], folder)]
    for name in ROWS:
        r = table[name]
        X = np.asarray(r.X, dtype=np.float64)  # float32 values are exact in float64; CSV has no dtype
        frame = pd.DataFrame(X, columns=feature_names(X.shape[1])).assign(target=r.y)
        path = folder / f"{name}.csv"
        frame.to_csv(path, index=False)
        back = np.loadtxt(path, delimiter=",", skiprows=1)  # Python's correctly rounded float parsing
        assert np.array_equal(back, frame.to_numpy()), f"{name}: the CSV does not round-trip"
        cases.append((["fit", path, "--target", "target", "--format", "json"], folder))
        cases.append((["compare", path, "--target", "target", "--format", "json"], folder))
    outcomes = run_cli_batch(cases)
    help_fit, help_compare = outcomes[0].stdout, outcomes[1].stdout
    fits = {name: outcomes[2 + 2 * i] for i, name in enumerate(ROWS)}
    compares = {name: outcomes[3 + 2 * i] for i, name in enumerate(ROWS)}
    return {"fit": fits, "compare": compares, "help": {"fit": help_fit, "compare": help_compare}}


PYTHON_WORDS = re.compile(r"\b(max_iter|learning_rate|standardize|solver)\s*=|gdlab\.closed_form|closed_form\(")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def check_cli_warning(label: str, line: str, helps: list[str]) -> None:
    """The warning names a remedy as a real flag of the command line, never a Python argument."""
    assert not PYTHON_WORDS.search(line), f"{label}: the warning names a Python argument: {line}"
    flags = FLAG.findall(line)
    assert flags, f"{label}: the warning names no flag as a remedy: {line}"
    for flag in flags:
        assert any(re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", h) for h in helps), (
            f"{label}: {flag} is not a flag of the command: {line}")
    assert re.search(r"--iters \d+|--standardize\b|--solver closed-form", line), line


def gap_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if names_the_gap(ln)]


@pytest.mark.parametrize("row", ROWS)
def test_gdlab_fit_reaches_the_optimum_or_says_so(table, cli, row):
    r, out = table[row], cli["fit"][row]
    assert out.returncode == 0, f"{row}: exit {out.returncode}: {out.stderr.strip()[-800:]}"
    result = json.loads(out.stdout)
    assert not result["diverged"]
    assert result["scaling"] == "standardize", f"{row}: gdlab fit did not standardize by default (--lr auto)"
    f = objective(r.X, r.y, result["coef"], result["intercept"])
    lines = gap_lines(out.stderr)
    check_honest(f"{row}/gdlab fit", r.ls, f, result["converged"], lines)
    for line in lines:
        check_cli_warning(f"{row}/gdlab fit", line, [cli["help"]["fit"]])


@pytest.mark.parametrize("row", ROWS)
def test_gdlab_compare_reaches_the_optimum_or_says_so(table, cli, row):
    r, out = table[row], cli["compare"][row]
    assert out.returncode == 0, f"{row}: exit {out.returncode}: {out.stderr.strip()[-800:]}"
    records = json.loads(out.stdout)
    names = feature_names(r.X.shape[1])
    gdlab_rows = [rec for rec in records if rec["library"] == "gdlab" and rec["method"].startswith("gdlab ")]
    assert gdlab_rows, records
    lines = gap_lines(out.stderr)
    for rec in gdlab_rows:
        optimizer = rec["method"].split()[-1]
        coef = [rec[n] if n in rec else rec[f"w{j + 1}"] for j, n in enumerate(names)]  # labelled w1.. or by name
        f = objective(r.X, r.y, coef, rec["intercept"])
        mine = [ln for ln in lines if re.search(rf"\b{optimizer}\b", ln)]
        check_honest(f"{row}/gdlab compare {optimizer}", r.ls, f, rec["converged"], mine)
        for line in mine:
            check_cli_warning(f"{row}/gdlab compare {optimizer}", line,
                              [cli["help"]["compare"], cli["help"]["fit"]])
