"""The compiled statistics pass (gdlab._gram_kernel: the C pass built at install, and numba's fallback) against
exact references, and gdlab's `compiled` setting."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import exact_moments

import gdlab
import gdlab.sources.gram
from gdlab.sources.gram import COMPILED_MIN_ELEMENTS, GramStats, use_compiled

from gdlab import _config, _gram_kernel


@pytest.fixture(params=["ahead_of_time", "numba"])
def implementation(request, monkeypatch):
    """Each compiled implementation in turn: the C pass built at install, and numba's kernel standing in for it."""
    if request.param == "ahead_of_time":
        if not _gram_kernel.ahead_of_time():
            pytest.skip("the C pass was not built (no C compiler at install)")
    else:
        pytest.importorskip("numba")
        monkeypatch.setattr(_gram_kernel, "_AOT", None)
    return request.param

CASES = [  # rows (not multiples of the tile or of the chunk), features, outputs, column offset
    (1, 1, 1, 0.0), (63, 3, 1, 0.0), (65, 4, 2, 0.0), (300, 7, 0, 0.0), (257, 2, 1, 1e8), (129, 5, 1, -3e4),
]


@pytest.mark.parametrize("m,d,k,offset", CASES)
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_statistics_equal_exact_arithmetic(m, d, k, offset, weighted, implementation):
    rng = np.random.default_rng(m * 31 + d)
    X = rng.standard_normal((m, d)) + offset
    Y = rng.standard_normal((m, k)) * 3 + offset
    w = rng.random(m) * 2 if weighted else None
    n, mean, C = exact_moments(X, Y, w)
    got = GramStats.from_arrays(X, Y, w, kernel="compiled")
    assert got.n == pytest.approx(n, rel=1e-15)
    assert got.n_rows == m
    np.testing.assert_allclose(got.mean, mean, rtol=1e-14, atol=1e-14 * (1 + abs(offset)))
    # the co-moment of data with an offset of 1e8 keeps its digits because the pass works on shifted data
    scale = max(np.abs(C).max(), 1e-300)
    assert np.abs(got.comoment - C).max() <= 1e-12 * scale


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_and_blas_paths_agree_on_a_large_problem(dtype, order, weighted, implementation):
    rng = np.random.default_rng(7)
    m, d = 200_003, 12  # several chunks, several flushes of the block total
    X = np.asarray(rng.standard_normal((m, d)) * rng.uniform(0.1, 10, d) + rng.uniform(-5, 5, d), dtype=dtype,
                   order=order)
    Y = X[:, :2].astype(np.float64) @ np.array([[1.0, -2.0], [0.5, 3.0]]) + rng.standard_normal((m, 2))
    w = rng.random(m) if weighted else None
    a = GramStats.from_arrays(X, Y, w, kernel="compiled")
    b = GramStats.from_arrays(X, Y, w, kernel="numpy")
    assert a.n == pytest.approx(b.n, rel=1e-13)
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-12, atol=1e-12)
    assert np.abs(a.comoment - b.comoment).max() <= 1e-12 * np.abs(b.comoment).max()


def test_compiled_descent_reaches_the_closed_form_like_the_blas_path():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((100_000, 6)) + 0.5
    y = X @ rng.standard_normal(6) + 1.5 + rng.standard_normal(100_000)
    with gdlab.config_context(compiled=True):
        rc = gdlab.descend(X, y, tol=None, max_iter=3000)
    with gdlab.config_context(compiled=False):
        rn = gdlab.descend(X, y, tol=None, max_iter=3000)
    ref, *_ = np.linalg.lstsq(np.c_[np.ones(len(y)), X], y, rcond=None)
    for r in (rc, rn):
        assert r.source == "gram"
        np.testing.assert_allclose(np.r_[r.intercept, r.coef], ref, rtol=1e-8)
    np.testing.assert_allclose(rc.coef, rn.coef, rtol=1e-10)


@pytest.mark.parametrize("kernel", ["compiled", "numpy"])
def test_a_first_block_of_zero_weight_still_shifts_the_data(kernel):
    # the shift comes from the first rows; weights of zero there must not leave columns with a mean of 1e8 unshifted
    rng = np.random.default_rng(0)
    m = 40_000
    X = rng.standard_normal((m, 2)) + 1e8
    y = (X - 1e8) @ [1.0, 2.0] + 0.5 + rng.standard_normal(m)
    w = np.ones(m)
    w[:4096] = 0.0
    st = GramStats.from_arrays(X, y[:, None], w, kernel=kernel)
    keep = X[4096:] - 1e8  # exact: the offsets are representable, the noise is what is left
    ref = np.cov(np.c_[keep, y[4096:]].T, bias=True) * (m - 4096)
    np.testing.assert_allclose(st.comoment, ref, rtol=1e-9)
    np.testing.assert_allclose(st.mean[:2] - 1e8, keep.mean(axis=0), atol=1e-7)


def test_nonfinite_data_is_reported_by_the_compiled_path():
    X = np.random.default_rng(0).standard_normal((70_000, 3))
    X[54_321, 2] = np.nan
    with pytest.raises(ValueError, match=r"row 54321.*column 2|column 2.*row 54321"):
        GramStats.from_arrays(X, np.zeros((70_000, 1)), kernel="compiled")


def test_the_kernel_may_run_from_many_threads_at_once():
    rng = np.random.default_rng(11)
    X = rng.standard_normal((150_000, 5))
    Y = rng.standard_normal((150_000, 1))
    ref = GramStats.from_arrays(X, Y, kernel="numpy")
    results, errors = [], []

    def work():
        try:
            for _ in range(3):
                results.append(GramStats.from_arrays(X, Y, kernel="compiled"))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 12
    for r in results:
        assert np.abs(r.comoment - ref.comoment).max() <= 1e-12 * np.abs(ref.comoment).max()


def _fork_child(queue):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((100_000, 4))
    st = GramStats.from_arrays(X, np.zeros((100_000, 1)), kernel="compiled")
    queue.put(float(st.comoment[0, 0]) / float(((X[:, 0] - X[:, 0].mean()) ** 2).sum()))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_a_forked_child_runs_the_kernel_on_its_own_threads():
    import multiprocessing

    X = np.random.default_rng(4).standard_normal((100_000, 4))
    GramStats.from_arrays(X, np.zeros((100_000, 1)), kernel="compiled")  # the parent's thread pool exists now
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_fork_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    alive = child.is_alive()
    if alive:
        child.kill()
    assert not alive, "the forked child hung on the parent's thread pool"
    assert child.exitcode == 0
    assert queue.get(timeout=5) == pytest.approx(1.0, rel=1e-12)


def test_use_compiled_rules():
    big = np.zeros((COMPILED_MIN_ELEMENTS, 2))
    small = np.zeros((10, 2))
    gdlab.load_compiled()
    assert _gram_kernel.loaded()
    assert use_compiled(big) is True  # auto: the kernel is loaded and the data are big enough
    assert use_compiled(small) is False  # auto: BLAS is as fast on small data
    assert use_compiled(big[:, :1]) is False  # a strided view: the BLAS path takes it as it is
    assert use_compiled(big.astype(np.int64)) is False
    assert use_compiled(big, "numpy") is False
    assert use_compiled(small, "compiled") is True
    with gdlab.config_context(compiled=False):
        assert use_compiled(big) is False
    with gdlab.config_context(compiled=True):
        assert use_compiled(small) is True
    assert gdlab.get_config()["compiled"] == "auto"  # restored on leaving the context
    with pytest.raises(ValueError, match="Fortran order.*ascontiguousarray"):
        use_compiled(big[:, :1], "compiled")
    with pytest.raises(ValueError, match="kernel must be"):
        use_compiled(big, "fast")
    with pytest.raises(ValueError, match="compiled must be 'auto', True or False"):
        gdlab.set_config(compiled="yes")
    for not_a_bool in (0, 1, 1.0, "True"):
        with pytest.raises(ValueError, match="compiled must be"):
            gdlab.set_config(compiled=not_a_bool)
    with gdlab.config_context(compiled=np.False_):
        assert gdlab.get_config()["compiled"] is False
        assert use_compiled(big) is False


def test_auto_takes_the_built_pass_at_once():
    if not _gram_kernel.ahead_of_time():
        pytest.skip("the C pass was not built")
    big = np.zeros((COMPILED_MIN_ELEMENTS, 2))
    assert _gram_kernel.loaded()  # nothing to load: importing the C pass is all
    assert use_compiled(big) is True
    assert _gram_kernel.TILE == _gram_kernel._aot().TILE and _gram_kernel.FLUSH == _gram_kernel._aot().FLUSH


def test_without_the_built_pass_auto_waits_for_numba_to_be_loaded(monkeypatch):
    # numba imported by something else is not enough: loading the kernel still costs a fraction of a second
    pytest.importorskip("numba")
    big = np.zeros((COMPILED_MIN_ELEMENTS, 2))
    monkeypatch.setattr(_gram_kernel, "_AOT", None)
    monkeypatch.setattr(_gram_kernel, "_LOADED", False)
    assert use_compiled(big) is False
    monkeypatch.setattr(gdlab.sources.gram, "COMPILED_LOAD_ELEMENTS", big.size)
    assert use_compiled(big) is True  # big data repays the load
    monkeypatch.setattr(gdlab.sources.gram, "COMPILED_LOAD_ELEMENTS", 4e8)
    gdlab.load_compiled()
    assert _gram_kernel._LOADED and use_compiled(big) is True


def test_without_any_compiled_pass_auto_falls_back_and_explicit_requests_fail(monkeypatch):
    monkeypatch.setattr(_config, "_numba_installed", False)
    monkeypatch.setattr(_config, "_built", False)
    big = np.zeros((1 << 17, 2))
    assert use_compiled(big) is False
    with pytest.raises(ImportError, match="C compiler.*numba|numba.*C compiler"):
        use_compiled(big, "compiled")
    with pytest.raises(ImportError, match="C compiler"):
        gdlab.set_config(compiled=True)
    with pytest.raises(ImportError, match="C compiler"):
        gdlab.load_compiled()
    rng = np.random.default_rng(1)
    X = rng.standard_normal((70_000, 2))
    r = gdlab.closed_form(X, X @ [1.0, -1.0] + 0.5)  # BLAS path, still exact
    np.testing.assert_allclose(np.r_[r.intercept, r.coef], [0.5, 1.0, -1.0], atol=1e-10)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_result_is_the_same_bits_for_any_number_of_threads(monkeypatch, weighted, implementation):
    rng = np.random.default_rng(8)
    m = 5 * _gram_kernel.MIN_CHUNK_ROWS + 321
    X = rng.standard_normal((m, 9)) * 4 + 2
    Y = rng.standard_normal((m, 1))
    w = rng.random(m) if weighted else None
    results = []
    for threads in (1, 2, 3, 7):
        monkeypatch.setattr(_gram_kernel, "n_threads", lambda threads=threads: threads)
        results.append(_gram_kernel.moments(X, Y, w, np.full(10, 2.0)))
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    U = np.c_[np.ones(m), X - 2.0, Y - 2.0]
    s = np.ones(m) if w is None else w
    np.testing.assert_allclose(results[0], (U * s[:, None]).T @ U, rtol=1e-12, atol=1e-9)


def test_chunks_depend_on_the_shape_only():
    for m, q1 in ((1, 3), (10**6, 12), (10**6, 102), (10**7, 12), (10**5, 1002)):
        rows = _gram_kernel.chunk_rows(m, q1)
        assert rows % (_gram_kernel.TILE * _gram_kernel.FLUSH) == 0 and rows >= _gram_kernel.MIN_CHUNK_ROWS
        assert -(-m // rows) <= _gram_kernel.MAX_CHUNKS


def test_set_config_inside_a_context_holds_in_it_and_after_it():
    try:
        with gdlab.config_context(compiled=False):
            gdlab.set_config(compiled=True)
            assert gdlab.get_config()["compiled"] is True
        assert gdlab.get_config()["compiled"] is True
    finally:
        gdlab.set_config(compiled="auto")
    assert gdlab.get_config()["compiled"] == "auto"


def test_the_setting_decides_which_path_runs(monkeypatch):
    calls = []
    real = _gram_kernel.moments
    monkeypatch.setattr(_gram_kernel, "moments", lambda *a: calls.append(1) or real(*a))
    X = np.random.default_rng(2).standard_normal((40_000, 3))
    y = X.sum(axis=1)
    with gdlab.config_context(compiled=False):
        gdlab.closed_form(X, y)
    assert calls == []
    with gdlab.config_context(compiled=True):
        gdlab.closed_form(X, y)
    assert len(calls) == 1
    gdlab.set_config(compiled=False)
    try:
        gdlab.curvature(X)
        assert len(calls) == 1
    finally:
        gdlab.set_config(compiled="auto")
    assert gdlab.load_compiled() >= 0.0
