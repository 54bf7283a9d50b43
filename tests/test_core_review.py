"""Review tests for the compiled statistics pass, the `compiled` setting and the faster descent loop.

Each test checks a property against an independent reference: the BLAS path (kernel="numpy"), exact rational
arithmetic, numpy.linalg.lstsq or scikit-learn.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import warnings

import numpy as np
import pytest
from conftest import exact_moments

import gdlab
from gdlab import _config
from gdlab.sources.gram import GramStats, use_compiled

numba = pytest.importorskip("numba")
from gdlab import _gram_kernel


def _assert_stats_close(a: GramStats, b: GramStats, rtol=1e-13):
    assert a.n_rows == b.n_rows
    assert a.n_features == b.n_features
    assert a.n == pytest.approx(b.n, rel=1e-14)
    assert a.comoment.shape == b.comoment.shape
    if a.comoment.size:
        scale = max(np.abs(b.comoment).max(), 1e-300)
        assert np.abs(a.comoment - b.comoment).max() <= rtol * scale
        mscale = max(np.abs(b.mean).max(), 1.0)
        assert np.abs(a.mean - b.mean).max() <= rtol * mscale


# ---- the kernel against exact arithmetic and the BLAS path, edge shapes --------------------------------------


@pytest.mark.parametrize("m", [1, 2, 6, 127, 128, 129, 131])
@pytest.mark.parametrize("d,k", [(0, 1), (1, 0), (5, 3), (6, 1), (11, 2)])
def test_small_shapes_equal_exact_arithmetic(m, d, k):
    rng = np.random.default_rng(100 * m + 10 * d + k)
    X = rng.standard_normal((m, d)) * 2 + 1.5
    Y = rng.standard_normal((m, k)) - 4
    n, mean, C = exact_moments(X, Y)
    got = GramStats.from_arrays(X, Y, kernel="compiled")
    assert got.n == n and got.n_rows == m
    assert got.comoment.shape == (d + k, d + k)
    np.testing.assert_allclose(got.mean, mean, rtol=1e-14, atol=1e-14)
    scale = max(np.abs(C).max(), 1.0)
    assert np.abs(got.comoment - C).max() <= 1e-13 * scale
    assert np.array_equal(got.comoment, got.comoment.T)


def test_no_columns_at_all():
    got = GramStats.from_arrays(np.zeros((500, 0)), np.zeros((500, 0)), kernel="compiled")
    assert got.n == 500 and got.n_rows == 500
    assert got.comoment.shape == (0, 0) and got.mean.shape == (0,)


def test_zero_rows_give_empty_statistics():
    got = GramStats.from_arrays(np.zeros((0, 3)), np.zeros((0, 2)), kernel="compiled")
    assert got.n == 0 and got.n_rows == 0
    assert got.comoment.shape == (5, 5) and not got.comoment.any()


@pytest.mark.parametrize("m", [128 * 64 - 1, 128 * 64, 128 * 64 + 1, 128 * 65 + 3])
def test_flush_boundaries_agree_with_blas(m):
    rng = np.random.default_rng(m)
    X = rng.standard_normal((m, 7)) * 3 + 2
    Y = rng.standard_normal((m, 2))
    _assert_stats_close(GramStats.from_arrays(X, Y, kernel="compiled"), GramStats.from_arrays(X, Y, kernel="numpy"))


def test_padding_of_the_tile_never_reaches_the_result():
    # q1 = 1 + 4 + 1 = 6 ... 1 + 5 + 1 = 7 (padded to 12): the kernel's padded rows and columns must stay zero
    rng = np.random.default_rng(9)
    for d in (4, 5, 9):
        m = 300  # the last tile is partial (300 = 2 * 128 + 44)
        X = rng.standard_normal((m, d)) + 100.0
        Y = rng.standard_normal((m, 1))
        full = _gram_kernel.shifted_moments(X, Y, np.zeros(0), np.zeros(d + 1), 0, m)
        q1 = 1 + d + 1
        assert full.shape[0] >= q1 and full.shape[0] % 2 == 0
        assert not full[q1:].any() and not full[:, q1:].any()
        Z = np.c_[np.ones(m), X, Y]
        np.testing.assert_allclose(full[:q1, :q1], Z.T @ Z, rtol=1e-13)


def test_many_chunks_cover_every_row_once(monkeypatch):
    # more chunks than the pool has threads, boundaries that are not multiples of a tile
    monkeypatch.setattr(_gram_kernel, "n_threads", lambda: 5)
    m = _gram_kernel.MIN_CHUNK_ROWS * 5 + 7
    rng = np.random.default_rng(21)
    X = rng.standard_normal((m, 3))
    X[np.arange(0, m, 997)] += 50.0  # rows that would be visible if counted twice or missed
    Y = rng.standard_normal((m, 1))
    w = rng.random(m)
    _assert_stats_close(GramStats.from_arrays(X, Y, w, kernel="compiled"),
                        GramStats.from_arrays(X, Y, w, kernel="numpy"))
    M = _gram_kernel.moments(X, Y, None, np.zeros(4))
    assert M[0, 0] == m


@pytest.mark.parametrize("layout", ["C", "F", "readonly", "memmap", "float32", "float32F"])
def test_layouts_agree_with_blas(layout, tmp_path):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((40_000, 5)) * [1, 2, 3, 4, 5] + [0, 1e3, -7, 0.5, 1e6]
    Y = rng.standard_normal((40_000, 3))
    if layout == "F":
        X = np.asfortranarray(X)
    elif layout == "readonly":
        X = X.copy()
        X.flags.writeable = False
    elif layout == "memmap":
        np.save(tmp_path / "x.npy", X)
        X = np.load(tmp_path / "x.npy", mmap_mode="r")
    elif layout == "float32":
        X = X.astype(np.float32)
    elif layout == "float32F":
        X = np.asfortranarray(X.astype(np.float32))
    ref = GramStats.from_arrays(np.ascontiguousarray(X, dtype=np.float64), Y, kernel="numpy")
    _assert_stats_close(GramStats.from_arrays(X, Y, kernel="compiled"), ref)


def test_non_contiguous_and_big_endian_x_fall_back_to_blas_under_auto():
    rng = np.random.default_rng(6)
    base = rng.standard_normal((80_000, 4))
    Y = rng.standard_normal((40_000, 1))
    view = base[::2]
    be = np.ascontiguousarray(base[:40_000]).astype(">f8")
    with gdlab.config_context(compiled=True):
        assert use_compiled(view) is False
        assert use_compiled(be) is False
        a = GramStats.from_arrays(view, Y)
        b = GramStats.from_arrays(be, Y)
    _assert_stats_close(a, GramStats.from_arrays(np.ascontiguousarray(view), Y, kernel="compiled"))
    _assert_stats_close(b, GramStats.from_arrays(base[:40_000].copy(), Y, kernel="compiled"))


def test_non_contiguous_y_and_weights():
    rng = np.random.default_rng(8)
    X = rng.standard_normal((30_000, 3))
    YY = rng.standard_normal((30_000, 6))
    Y = YY[:, ::2]  # a strided view
    ww = rng.random(60_000)
    w = ww[::2]
    _assert_stats_close(GramStats.from_arrays(X, Y, w, kernel="compiled"),
                        GramStats.from_arrays(X, np.ascontiguousarray(Y), np.ascontiguousarray(w), kernel="numpy"))


def test_zero_weights_equal_dropping_the_rows():
    rng = np.random.default_rng(12)
    m = 600
    X = rng.standard_normal((m, 3)) + [0.0, 1e8, -2e4]
    Y = rng.standard_normal((m, 2)) + 5
    w = rng.random(m) * 3
    w[rng.random(m) < 0.3] = 0.0
    w[:3] = 1.0  # the first block keeps some weight
    keep = w > 0
    n, mean, C = exact_moments(X[keep], Y[keep], w[keep])
    got = GramStats.from_arrays(X, Y, w, kernel="compiled")
    assert got.n == pytest.approx(n, rel=1e-15)
    assert got.n_rows == m
    np.testing.assert_allclose(got.mean, mean, rtol=1e-14)
    assert np.abs(got.comoment - C).max() <= 1e-11 * np.abs(C).max()


def test_huge_offsets_keep_their_digits():
    rng = np.random.default_rng(13)
    X = rng.standard_normal((400, 2)) + 1e8
    Y = rng.standard_normal((400, 1)) - 1e8
    _n, mean, C = exact_moments(X, Y)
    got = GramStats.from_arrays(X, Y, kernel="compiled")
    assert np.abs(got.comoment - C).max() <= 1e-9 * np.abs(C).max()
    np.testing.assert_allclose(got.mean, mean, rtol=1e-15)


def test_values_near_overflow():
    rng = np.random.default_rng(14)
    X = rng.standard_normal((5000, 2)) * 1e150  # squares near 1e300: finite
    Y = rng.standard_normal((5000, 1))
    _assert_stats_close(GramStats.from_arrays(X, Y, kernel="compiled"), GramStats.from_arrays(X, Y, kernel="numpy"))
    with pytest.raises(ValueError, match="overflow float64"):
        GramStats.from_arrays(X * 1e10, Y, kernel="compiled")


@pytest.mark.parametrize("name,row,col,value,kind", [
    ("X", 61_234, 1, np.inf, "inf"), ("X", 0, 0, -np.inf, "-inf"), ("y", 65_000, 1, np.nan, "NaN"),
    ("y", 69_999, 0, np.inf, "inf"),
])
def test_nonfinite_values_are_named_by_row_and_column(name, row, col, value, kind):
    rng = np.random.default_rng(15)
    X = rng.standard_normal((70_000, 3))
    Y = rng.standard_normal((70_000, 2))
    (X if name == "X" else Y)[row, col] = value
    with pytest.raises(ValueError, match=rf"^{name} contains {kind} at row {row}, column {col};"):
        GramStats.from_arrays(X, Y, kernel="compiled")


def test_nan_in_a_row_of_weight_zero_is_still_reported():
    rng = np.random.default_rng(16)
    X = rng.standard_normal((70_000, 3))
    X[100, 2] = np.nan
    w = np.ones(70_000)
    w[100] = 0.0
    with pytest.raises(ValueError, match="row 100, column 2"):
        GramStats.from_arrays(X, np.zeros((70_000, 1)), w, kernel="compiled")


# ---- threads -------------------------------------------------------------------------------------------------


def test_numba_num_threads_is_honoured_and_results_agree():
    code = textwrap.dedent("""
        import threading, numpy as np
        from gdlab.sources.gram import GramStats
        from gdlab import _gram_kernel
        rng = np.random.default_rng(3)
        X = rng.standard_normal((100_003, 4)) + 3.0
        Y = rng.standard_normal((100_003, 2))
        w = rng.random(100_003)
        a = GramStats.from_arrays(X, Y, w, kernel="compiled")
        b = GramStats.from_arrays(X, Y, w, kernel="numpy")
        err = np.abs(a.comoment - b.comoment).max() / np.abs(b.comoment).max()
        pool = sum(t.name.startswith("gdlab-gram") for t in threading.enumerate())
        print(_gram_kernel.n_threads(), pool, err)
    """)
    env = dict(os.environ, NUMBA_NUM_THREADS="3")
    out = subprocess.run([sys.executable, "-c", code], check=False, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    n, pool, err = out.stdout.split()
    assert int(n) == 3 and int(pool) == 3
    assert float(err) <= 1e-13


def test_threads_with_different_settings_do_not_see_each_other():
    seen = {}
    barrier = threading.Barrier(2)

    def work(name, value):
        with gdlab.config_context(compiled=value):
            barrier.wait()
            seen[name] = gdlab.get_config()["compiled"]
            barrier.wait()

    threads = [threading.Thread(target=work, args=("a", False)), threading.Thread(target=work, args=("b", True))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": False, "b": True}
    assert gdlab.get_config()["compiled"] == "auto"


# ---- config_context semantics --------------------------------------------------------------------------------


def test_config_context_nests_and_restores_after_an_exception():
    assert gdlab.get_config()["compiled"] == "auto"
    with pytest.raises(RuntimeError), gdlab.config_context(compiled=False):
        assert gdlab.get_config()["compiled"] is False
        with gdlab.config_context():
            assert gdlab.get_config()["compiled"] is False  # inherits the outer block
        with gdlab.config_context(compiled=True):
            assert gdlab.get_config()["compiled"] is True
            raise RuntimeError
    assert gdlab.get_config()["compiled"] == "auto"
    with gdlab.config_context(compiled=False):
        with pytest.raises(ValueError, match="compiled must be"), gdlab.config_context(compiled="fast"):
            pass  # pragma: no cover
        assert gdlab.get_config()["compiled"] is False  # a rejected value changes nothing
    assert gdlab.get_config()["compiled"] == "auto"


def test_get_config_returns_a_copy():
    cfg = gdlab.get_config()
    cfg["compiled"] = False
    assert gdlab.get_config()["compiled"] == "auto"


def test_without_numba_auto_falls_back_and_explicit_requests_fail(monkeypatch):
    monkeypatch.setattr(_config, "_numba_installed", False)
    monkeypatch.setattr(_config, "_built", False)  # nor the C pass built at install
    big = np.zeros((1 << 17, 2))
    assert use_compiled(big) is False
    with pytest.raises(ImportError, match="numba"):
        use_compiled(big, "compiled")
    with pytest.raises(ImportError, match="numba"):
        gdlab.set_config(compiled=True)
    with pytest.raises(ImportError, match="numba"):
        gdlab.load_compiled()
    assert gdlab.get_config()["compiled"] == "auto"
    rng = np.random.default_rng(1)
    X = rng.standard_normal((70_000, 2))
    y = X @ [1.0, -1.0] + 0.5
    r = gdlab.closed_form(X, y)  # BLAS path, still exact
    np.testing.assert_allclose(np.r_[r.intercept, r.coef], [0.5, 1.0, -1.0], atol=1e-10)


# ---- descend: the loop's results against independent references ----------------------------------------------


def _data(m=300, d=4, k=1, seed=0, spread=(0.5, 3), offset=(-2, 5)):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((m, d)) * np.linspace(*spread, d) + np.linspace(*offset, d)
    W = rng.standard_normal((d, k))
    Y = X @ W + 1.5 + 0.3 * rng.standard_normal((m, k))
    return X, (Y[:, 0] if k == 1 else Y)


@pytest.mark.parametrize("kw", [
    {}, {"penalty": "l2", "alpha": 0.2}, {"penalty": "l1", "alpha": 0.05}, {"penalty": "elasticnet", "alpha": 0.1},
    {"line_search": True, "learning_rate": 1.0}, {"fit_intercept": False}, {"optimizer": "nesterov"},
    {"optimizer": "adam", "learning_rate": 0.05}, {"sample_weight": "w"},
], ids=lambda kw: ",".join(f"{k}={v}" for k, v in kw.items()) or "plain")
@pytest.mark.parametrize("k", [1, 2])
def test_gram_and_memory_sources_run_the_same_descent(kw, k):
    X, y = _data(k=k)
    kw = dict(kw)
    if kw.get("sample_weight") == "w":
        kw["sample_weight"] = np.random.default_rng(1).random(len(X)) * 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rg = gdlab.descend(X, y, source="gram", max_iter=150, **kw)
        rm = gdlab.descend(X, y, source="memory", max_iter=150, **kw)
    assert rg.n_iter == rm.n_iter and rg.status == rm.status
    tg, tm = rg.trajectory, rm.trajectory
    np.testing.assert_array_equal(tg.iteration, tm.iteration)
    assert tg.coef.shape == tm.coef.shape == (len(tg),) + np.shape(rg.coef)
    assert tg.intercept.shape == tm.intercept.shape == (len(tg),) + np.shape(rg.intercept)
    np.testing.assert_allclose(tg.coef, tm.coef, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(tg.intercept, tm.intercept, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(tg.loss, tm.loss, rtol=1e-9)
    # the last recorded row is the returned model
    np.testing.assert_array_equal(tg.coef[-1], rg.coef)
    np.testing.assert_array_equal(tg.intercept[-1], rg.intercept)
    assert tg.loss[-1] == rg.loss
    if rg.optimum_loss is not None:
        assert rg.optimum_loss == pytest.approx(rm.optimum_loss, rel=1e-12)
        np.testing.assert_allclose(tg.gap, tg.loss - rg.optimum_loss, rtol=0, atol=0)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("k", [1, 3])
def test_gram_descent_optimum_equals_lstsq(fit_intercept, k):
    X, y = _data(m=500, d=5, k=k, seed=3, spread=(0.8, 1.5), offset=(-0.5, 0.5))
    r = gdlab.descend(X, y, source="gram", fit_intercept=fit_intercept, max_iter=5000, tol=None, gtol=1e-12)
    A = np.c_[np.ones(len(X)), X] if fit_intercept else X
    ref, *_ = np.linalg.lstsq(A, y, rcond=None)
    ref = ref.reshape(A.shape[1], -1)
    res = A @ ref - (y if k > 1 else y[:, None])
    loss_ref = float((res ** 2).sum() / len(X))
    assert r.optimum_loss == pytest.approx(loss_ref, rel=1e-12)
    got = np.vstack([np.reshape(r.intercept, (1, -1)), np.reshape(r.coef, (5, -1))]) if fit_intercept else \
        np.reshape(r.coef, (5, -1))
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-10)
    assert r.trajectory.gap[-1] >= 0.0
    assert r.trajectory.gap[-1] <= 1e-12 * loss_ref
    if not fit_intercept:
        assert not np.any(r.trajectory.intercept)


def test_l2_and_elasticnet_optima_match_scikit_learn():
    sklearn_lm = pytest.importorskip("sklearn.linear_model")
    X, y = _data(m=400, d=4, seed=5, spread=(0.8, 1.5), offset=(-0.5, 0.5))
    m = len(X)
    r = gdlab.descend(X, y, source="gram", penalty="l2", alpha=0.3, max_iter=5000, tol=None, gtol=1e-12)
    # gdlab: (1/m)|r|^2 + alpha/2 |w|^2  ==  Ridge on sum of squares with alpha_ridge = m * alpha / 2
    ridge = sklearn_lm.Ridge(alpha=m * 0.3 / 2).fit(X, y)
    np.testing.assert_allclose(r.coef, ridge.coef_, rtol=1e-8)
    assert r.intercept == pytest.approx(ridge.intercept_, rel=1e-8)
    assert r.trajectory.gap[-1] == pytest.approx(0.0, abs=1e-12)
    for src in ("gram", "memory"):
        e = gdlab.descend(X, y, source=src, penalty="elasticnet", alpha=0.2, l1_ratio=0.5, max_iter=20000,
                          tol=None, gtol=None)
        # gdlab / 2 == ElasticNet(alpha=alpha/2, l1_ratio)
        en = sklearn_lm.ElasticNet(alpha=0.1, l1_ratio=0.5, tol=1e-14, max_iter=100000).fit(X, y)
        np.testing.assert_allclose(e.coef, en.coef_, rtol=1e-6, atol=1e-8)
        assert e.intercept == pytest.approx(en.intercept_, rel=1e-6)


def test_callback_sees_the_recorded_iterates_and_can_stop():
    X, y = _data(k=2)
    seen = []

    def cb(info):
        seen.append((info.iteration, np.array(info.coef), np.array(info.intercept), info.loss))
        return info.iteration == 7

    r = gdlab.descend(X, y, source="gram", callback=cb, max_iter=100)
    assert r.status == 3 and r.n_iter == 7 and "callback" in r.message
    tr = r.trajectory
    assert list(tr.iteration) == list(range(8))
    for it, coef, intercept, loss in seen:
        np.testing.assert_array_equal(tr.coef[it], coef)
        np.testing.assert_array_equal(tr.intercept[it], intercept)
        assert tr.loss[it] == loss


def test_minibatch_trajectory_matches_a_plain_numpy_sgd():
    X, y = _data(m=64, d=3, seed=7)
    bs, lr, epochs = 16, 0.01, 4
    r = gdlab.descend(X, y, batch_size=bs, learning_rate=lr, max_iter=epochs, random_state=0, tol=None,
                      gtol=None, shuffle=False)
    w, b = np.zeros(3), 0.0
    for _ in range(epochs):
        for s in range(0, len(X), bs):
            Xb, yb = X[s:s + bs], y[s:s + bs]
            res = Xb @ w + b - yb
            gw, gb = 2 * Xb.T @ res / len(yb), 2 * res.mean()
            w, b = w - lr * gw, b - lr * gb
    np.testing.assert_allclose(r.coef, w, rtol=1e-12)
    assert r.intercept == pytest.approx(b, rel=1e-12)
    assert r.trajectory.coef.shape == (epochs + 1, 3)


def test_thinned_trajectory_keeps_shapes_and_the_last_iterate():
    X, y = _data(k=2)
    r = gdlab.descend(X, y, source="gram", max_iter=333, tol=None, gtol=None, record_every=2, max_records=20)
    tr = r.trajectory
    assert len(tr) <= 21 and tr.iteration[-1] == 333 and tr.iteration[0] == 0
    assert np.all(np.diff(tr.iteration) > 0)
    assert tr.coef.shape == (len(tr), 4, 2) and tr.intercept.shape == (len(tr), 2)
    assert tr.coef.flags.c_contiguous and tr.intercept.flags.c_contiguous
    np.testing.assert_array_equal(tr.coef[-1], r.coef)
    np.testing.assert_array_equal(tr.intercept[-1], r.intercept)
    # each kept iterate is the state of that iteration: rerun to it without thinning
    full = gdlab.descend(X, y, source="gram", max_iter=333, tol=None, gtol=None).trajectory
    np.testing.assert_array_equal(full.coef[tr.iteration], tr.coef)
    np.testing.assert_array_equal(full.loss[tr.iteration], tr.loss)


def test_compiled_and_blas_statistics_give_the_same_descent():
    X, y = _data(m=40_000, d=3, k=2, seed=11)
    with gdlab.config_context(compiled=True):
        rc = gdlab.descend(X, y, source="gram", max_iter=400, tol=None)
    with gdlab.config_context(compiled=False):
        rn = gdlab.descend(X, y, source="gram", max_iter=400, tol=None)
    assert rc.n_iter == rn.n_iter
    np.testing.assert_allclose(rc.trajectory.coef, rn.trajectory.coef, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rc.trajectory.loss, rn.trajectory.loss, rtol=1e-11)
    assert rc.optimum_loss == pytest.approx(rn.optimum_loss, rel=1e-12)
