"""The compiled epochs on a sparse X (gdlab._sgd_kernel.sparse_epoch_function) against the plain NumPy transcription
of mini-batch descent in tests/test_engines.py, run on the same matrix dense.

The transcription knows nothing of sparsity: it updates every coefficient at every step. The compiled sparse epoch
walks the stored entries only, and updates the untouched coefficients lazily where that is exact (gd and adagrad on
raw columns), or in one pass per batch otherwise; either way the iterates after each epoch must be the
transcription's to 1e-11, and L1's zeros must be its exact zeros.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import gdlab
from gdlab.schedules import invscaling
from test_engines import (ETA0, HYPER, LOSS_FAMILIES, OPTIMIZERS, POWER_T, check_against_transcription, eta0,
                          needs_numba, packed, penalty_terms, transcription)

pytestmark = needs_numba


def sparse_data(loss, m=61, d=9, density=0.3, seed=0):
    """Columns of different scales and offsets, about ``density`` of them stored; one column stored in a single row
    (its coefficient is untouched for most updates), every row with at least one entry."""
    rng = np.random.default_rng(seed)
    mask = rng.random((m, d)) < density
    mask[np.arange(m), rng.integers(0, d, m)] = True
    mask[:, -1] = False
    mask[5, -1] = True
    X = np.where(mask, rng.standard_normal((m, d)) * rng.uniform(0.3, 3.0, d) + rng.uniform(-1, 2, d), 0.0)
    eta = X @ rng.standard_normal(d) * 0.2 + 0.2
    if loss in ("squared_error", "huber", "epsilon_insensitive"):
        y = eta + 0.5 * rng.standard_normal(m)
    elif loss == "poisson":
        y = rng.poisson(np.exp(np.clip(eta, -3, 2))).astype(float)
    else:
        y = np.where(eta + 0.7 * rng.standard_normal(m) > 0, 1.0, -1.0)
    return X, y, rng.uniform(0.2, 2.0, m)


def run_compiled(X, y, sw, loss, optimizer, penalty, batch_size, standardize, epochs=3, alpha=0.05, **kw):
    r = gdlab.descend(sp.csr_array(X), y, sample_weight=sw, loss=loss, epsilon=0.1, optimizer=optimizer,
                      learning_rate=invscaling(eta0(optimizer, loss), POWER_T), batch_size=batch_size,
                      penalty=penalty, alpha=alpha, l1_ratio=0.4, standardize=standardize, shuffle=False,
                      random_state=3, max_iter=epochs, tol=None, engine="compiled", warn=False, **HYPER[optimizer],
                      **kw)
    assert r.extra["engine"] == "compiled" and r.n_iter == epochs, (r.extra["engine_reason"], r.message)
    return r


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("penalty", [None, "l2", "l1", "elasticnet"])
@pytest.mark.parametrize("loss", LOSS_FAMILIES)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_the_compiled_sparse_epoch_gives_the_transcriptions_iterates(optimizer, loss, penalty, batch_size, weighted,
                                                                    standardize):
    X, y, sw = sparse_data(loss)
    sw = sw if weighted else None
    r = run_compiled(X, y, sw, loss, optimizer, penalty, batch_size, standardize)
    check_against_transcription({"compiled": r}, X, y, sw, loss, optimizer, penalty, batch_size, standardize)


@pytest.mark.parametrize("batch_size", [1, 8])
@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("optimizer", ["gd", "adagrad", "adam"])
def test_l1_keeps_the_transcriptions_exact_zeros_on_sparse_rows(optimizer, standardize, batch_size):
    X, y, sw = sparse_data("squared_error", m=80, d=15, density=0.15, seed=5)
    r = run_compiled(X, y, sw, "squared_error", optimizer, "l1", batch_size, standardize, epochs=4, alpha=0.3)
    traj = packed(r.trajectory)
    expected = np.array(transcription(X, y[:, None], sw, traj[0], [np.arange(len(X))] * 4, batch_size,
                                      "squared_error", optimizer, 0.3, 0.0, standardize))
    zeros = expected[:, 1:] == 0
    assert zeros[-1].sum() >= 2, "the test needs a penalty that sets coefficients to zero"
    assert np.array_equal(traj[1:, 1:] == 0, zeros)
    np.testing.assert_allclose(traj[1:], expected, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("batch_size", [1, 6])
@pytest.mark.parametrize("optimizer", ["gd", "adagrad", "momentum"])
def test_without_an_intercept_the_standardized_sparse_epoch_is_the_numpy_epochs(optimizer, batch_size):
    """No intercept: the columns are scaled but not centred, so gd and adagrad update lazily in the standardized
    coordinates; the NumPy epochs (tested against the dense rows in tests/test_sparse.py) are the reference."""
    X, y, sw = sparse_data("huber", seed=7)
    runs = {engine: gdlab.descend(sp.csr_array(X), y, sample_weight=sw, loss="huber", epsilon=0.1,
                                  optimizer=optimizer, learning_rate=invscaling(ETA0[optimizer], POWER_T),
                                  batch_size=batch_size, penalty="l1", alpha=0.05, standardize=True,
                                  fit_intercept=False, shuffle=False, max_iter=3, tol=None, engine=engine,
                                  warn=False, **HYPER[optimizer])
            for engine in ("numpy", "compiled")}
    np.testing.assert_allclose(runs["compiled"].trajectory.params, runs["numpy"].trajectory.params, rtol=1e-11,
                               atol=1e-12)
    assert np.array_equal(runs["compiled"].coef == 0, runs["numpy"].coef == 0)


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_sparse_outputs_are_independent_models_and_the_average_is_kept(optimizer):
    X, y, sw = sparse_data("log_loss", seed=2)
    Y = np.column_stack([y, -y, np.where(X[:, 0] > 0, 1.0, -1.0)])
    r = run_compiled(X, Y, sw, "log_loss", optimizer, "elasticnet", 5, False)
    check_against_transcription({"compiled": r}, X, Y, sw, "log_loss", optimizer, "elasticnet", 5, False)
    avg = run_compiled(X, y, sw, "log_loss", optimizer, "l2", 5, False, epochs=3, average=7)
    l1, l2 = penalty_terms("l2")
    start = packed(avg.trajectory)[0]
    expected = transcription(X, y[:, None], sw, start, [np.arange(len(X))] * 3, 5, "log_loss", optimizer, l1, l2,
                             False, average=7)
    np.testing.assert_allclose(np.r_[avg.intercept, avg.coef][:, None], expected[-1], rtol=1e-11, atol=1e-12)


def test_a_shuffled_sparse_epoch_is_the_dense_compiled_epoch():
    """Both compiled epochs draw the same Fisher-Yates orders: on the same matrix, sparse and dense agree."""
    X, y, sw = sparse_data("squared_error", m=97, seed=3)
    kw = dict(loss="squared_error", optimizer="gd", learning_rate=0.01, batch_size=1, penalty="elasticnet",
              alpha=0.05, standardize=False, shuffle=True, random_state=11, max_iter=3, tol=None, engine="compiled",
              warn=False)
    a = gdlab.descend(X, y, **kw)
    b = gdlab.descend(sp.csr_array(X), y, **kw)
    np.testing.assert_allclose(b.trajectory.params, a.trajectory.params, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("optimizer, standardize, penalty, average, cost", [
    ("gd", False, "elasticnet", False, "O(its stored entries)"),
    ("adagrad", False, "l1", False, "O(its stored entries)"),
    ("adagrad", False, "l2", False, "O(d): the L2 term"),
    ("adam", False, None, False, "O(d): the optimizer moves every coefficient"),
    ("gd", True, "l1", False, "O(d): the centring"),
    ("gd", False, None, 10, "O(d): the averaged iterate"),
])
def test_auto_runs_the_compiled_sparse_epoch_and_says_what_a_batch_costs(optimizer, standardize, penalty, average,
                                                                       cost):
    from gdlab.engines import choose_engine
    from gdlab.objectives import Penalty
    from gdlab.scaling import Scaling, ScaledSource
    from gdlab.sources.memory import MemorySource

    X, y, _ = sparse_data("squared_error")
    r = gdlab.descend(sp.csr_array(X), y, optimizer=optimizer, learning_rate=0.01, batch_size=4, penalty=penalty,
                      standardize=standardize, average=average, max_iter=1, tol=None, warn=False)
    reason = r.extra["engine_reason"]
    assert r.extra["engine"] == "compiled" and "sparse rows" in reason, reason
    assert "O(" in reason, reason
    # told the penalty and the averaging, the reason is exact
    loss = gdlab.losses.get_loss("squared_error")
    Xs = sp.csr_array(X)
    source = MemorySource(Xs, y[:, None], None, loss)
    if standardize:
        source = ScaledSource(source, Scaling.from_columns(Xs, None, True))
    opt = gdlab.optimizers.make_optimizer(optimizer, 0.01)
    l1, l2 = penalty_terms(penalty)
    name, reason = choose_engine("auto", full_batch=False, optimizer=opt, source=source, scaled=standardize,
                                 loss=loss, schedule=opt.learning_rate, penalty=Penalty(l1, l2), average=average)
    assert name == "compiled" and cost in reason, reason
