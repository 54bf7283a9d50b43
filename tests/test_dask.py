"""The dask source on a LocalCluster (two worker processes on loopback) against the same data in memory."""

import os
import signal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

import gdlab
import gdlab.sources.dask
from gdlab.scale import closed_form, is_scalable, open_source

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                       host="127.0.0.1")
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(4000, 4)) * [1.0, 2.0, 0.5, 3.0]
    y = X @ [1.0, -2.0, 0.5, 0.25] + 3.0 + rng.standard_t(3, size=4000)
    return X, y


def rel(a, b):
    return np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b)))


def test_closed_form_on_dask_arrays_equals_the_in_memory_closed_form(client, data):
    X, y = data
    # uneven chunks, and y chunked differently from X
    src = open_source(da.from_array(X, chunks=(700, 2)), target=da.from_array(y, chunks=900), scheduler=client)
    assert src.name == "dask" and src.n_samples == 4000 and src.n_features == 4
    got, want = closed_form(src), gdlab.closed_form(X, y)
    assert rel(got.coef, want.coef) < 1e-10
    assert abs(got.intercept - want.intercept) / abs(want.intercept) < 1e-10


def test_a_dask_dataframe_is_fitted_by_column_names(client, data):
    X, y = data
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(y=y, city="Oslo")
    ddf = dd.from_pandas(df, npartitions=5)
    with pytest.raises(ValueError, match="column 'city' is not numeric"):
        open_source(ddf, target="y", scheduler=client)
    src = open_source(ddf, target="y", features=["a", "c", "d"], scheduler=client)
    got, want = closed_form(src), gdlab.closed_form(X[:, [0, 2, 3]], y)
    assert src.feature_names == ["a", "c", "d"]
    assert rel(got.coef, want.coef) < 1e-10


def test_full_batch_descent_on_dask_gives_the_in_memory_iterates(client, data):
    X, y = data
    kw = dict(learning_rate=0.05, max_iter=30, tol=None, gtol=None)
    src = open_source(da.from_array(X, chunks=1000), target=da.from_array(y, chunks=1000), scheduler=client)
    got = gdlab.descend(src, None, **kw)
    want = gdlab.descend(X, y, source="memory", **kw)
    np.testing.assert_allclose(got.trajectory.params, want.trajectory.params, rtol=1e-10, atol=1e-12)
    assert src.passes == 1  # the squared error: one round of tasks, then O(d^2) on the client


def test_a_robust_loss_is_reduced_chunk_by_chunk_and_matches_memory(client, data):
    X, y = data
    kw = dict(loss="huber", epsilon=1.0, learning_rate=0.3, max_iter=8, tol=None, gtol=None)
    src = open_source(da.from_array(X, chunks=1000), target=da.from_array(y, chunks=1000), scheduler=client,
                      loss="huber", epsilon=1.0)
    got = gdlab.descend(src, None, **kw)
    want = gdlab.descend(X, y, source="memory", **kw)
    np.testing.assert_allclose(got.trajectory.params, want.trajectory.params, rtol=1e-10, atol=1e-12)
    assert src.passes >= 9


def test_statistics_keep_their_digits_when_columns_have_means_of_1e8(client, data):
    X, y = data
    X = X + [1e8, -2e8, 0.0, 3e7]
    src = open_source(da.from_array(X, chunks=500), target=da.from_array(y, chunks=500), scheduler=client)
    stats = src.gram_stats()
    Z = np.column_stack([X, y]).astype(np.longdouble)
    C = (Z - Z.mean(axis=0)).T @ (Z - Z.mean(axis=0))
    scale = np.sqrt(np.outer(np.diag(C), np.diag(C))).astype(float)
    assert np.max(np.abs(stats.comoment - C.astype(float)) / scale) < 1e-12


def test_a_worker_that_dies_mid_fit_costs_time_not_the_answer(client, data):
    X, y = data
    kw = dict(loss="huber", epsilon=1.0, learning_rate=0.3, max_iter=6, tol=None, gtol=None)
    src = open_source(da.from_array(X, chunks=500), target=da.from_array(y, chunks=500), scheduler=client,
                      loss="huber", epsilon=1.0)
    victim = sorted(client.scheduler_info()["workers"])[0]
    pid = client.run(os.getpid, workers=[victim])[victim]  # a worker process of this test's own cluster
    killed = []

    def kill_one_worker(info):
        if info.iteration == 2 and not killed:
            os.kill(pid, signal.SIGKILL)  # dies at once, its chunks with it; its nanny starts a fresh one
            killed.append(victim)

    got = gdlab.descend(src, None, callback=kill_one_worker, **kw)
    want = gdlab.descend(X, y, source="memory", **kw)
    assert killed and got.n_iter == 6
    np.testing.assert_allclose(got.trajectory.params, want.trajectory.params, rtol=1e-10, atol=1e-12)
    client.wait_for_workers(2, timeout=60)


def test_nan_is_reported_with_its_row_and_column(client, data):
    X, y = data
    X = X.copy()
    X[2345, 1] = np.nan
    src = open_source(da.from_array(X, chunks=1000), target=da.from_array(y, chunks=1000), scheduler=client,
                      features=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match=r"column 'b' holds NaN \(or a missing value\) at row 2345"):
        src.gram_stats()


def write_parts(folder, X, y, fmt="parquet", n=3, **kw):
    folder.mkdir(exist_ok=True)
    paths = []
    for i, rows in enumerate(np.array_split(np.arange(len(y)), n)):
        table = pa.table({"a": X[rows, 0], "b": X[rows, 1], "c": X[rows, 2], "d": X[rows, 3], "y": y[rows]})
        path = folder / f"part-{i}.{fmt}"
        if fmt == "parquet":
            pq.write_table(table, path, row_group_size=500, **kw)
        else:
            pa_csv.write_csv(table, path)
        paths.append(path)
    return paths


def test_a_missing_value_in_a_dataframe_is_reported_with_its_row(client, data):
    X, y = data
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"]).assign(y=y)
    df["b"] = df["b"].astype("Float64")
    df.loc[3001, "b"] = pd.NA
    src = open_source(dd.from_pandas(df, npartitions=4), target="y", scheduler=client)
    with pytest.raises(ValueError, match=r"column 'b' holds NaN \(or a missing value\) at row 3001"):
        src.gram_stats()


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_files_read_by_the_cluster_give_the_same_fit(client, data, tmp_path, fmt):
    X, y = data
    write_parts(tmp_path, X, y, fmt)
    src = open_source(tmp_path, target="y", scheduler=client)
    assert src.name == "dask" and src.n_samples == len(y)
    assert rel(closed_form(src).coef, gdlab.closed_form(X, y).coef) < 1e-10


def test_faulty_files_read_by_the_cluster_are_named(client, data, tmp_path):
    X, y = data
    paths = write_parts(tmp_path, X, y, write_page_checksum=True)
    # found here, from the footers, before any work goes to the cluster
    pq.write_table(pa.table({"a": X[:5, 0], "y": y[:5]}), tmp_path / "part-9.parquet")
    with pytest.raises(ValueError, match=r"part-9.parquet: the file has no column 'b'"):
        open_source(tmp_path, target="y", scheduler=client)
    (tmp_path / "part-9.parquet").unlink()
    # found by the worker that reads the file
    raw = bytearray(paths[1].read_bytes())
    raw[200:240] = bytes(b ^ 0xFF for b in raw[200:240])
    paths[1].write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"part-1.parquet: reading failed"):
        open_source(tmp_path, target="y", scheduler=client).gram_stats()


def test_a_scheduler_address_opens_a_client_that_close_releases(client, data, monkeypatch):
    X, y = data
    address = client.scheduler.address
    src = open_source(da.from_array(X, chunks=2000), target=da.from_array(y, chunks=2000), scheduler=address)
    try:
        assert rel(closed_form(src).coef, gdlab.closed_form(X, y).coef) < 1e-10
    finally:
        src.close()
    assert src.client is None
    monkeypatch.setattr(gdlab.sources.dask, "CONNECT_TIMEOUT", "1s")
    with pytest.raises(ValueError, match="cannot reach the Dask scheduler"):
        open_source(da.from_array(X, chunks=2000), target=da.from_array(y, chunks=2000),
                    scheduler="tcp://127.0.0.1:9")


def test_without_a_cluster_dask_local_scheduler_is_used(data):
    X, y = data
    src = open_source(da.from_array(X, chunks=1500), target=da.from_array(y, chunks=1500))
    assert src.client is None and is_scalable(da.from_array(X))
    assert rel(closed_form(src).coef, gdlab.closed_form(X, y).coef) < 1e-10


@pytest.mark.parametrize("loss", ["log_loss", "poisson"])
def test_logistic_and_poisson_on_dask_give_the_in_memory_iterates(client, loss):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(3000, 3)) * [1.0, 3.0, 0.5]
    eta = X @ [0.4, -0.2, 0.8] + 0.3
    y = ((rng.random(3000) < 1 / (1 + np.exp(-eta))).astype(float) if loss == "log_loss"
         else rng.poisson(np.exp(eta)).astype(float))
    kw = dict(loss=loss, learning_rate=0.2, max_iter=8, tol=None, gtol=None)
    src = open_source(da.from_array(X, chunks=1000), target=da.from_array(y, chunks=1000), scheduler=client,
                      loss=loss)
    got = gdlab.descend(src, None, **kw)
    want = gdlab.descend(X, y, source="memory", **kw)
    np.testing.assert_allclose(got.trajectory.params, want.trajectory.params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.trajectory.loss, want.trajectory.loss, rtol=1e-10)


def test_a_dask_glm_with_the_default_step_claims_convergence_from_its_own_hessian_pass(client):
    """The default (standardized, 'auto', tol) log-loss fit checks its claim with the Newton decrement: the Dask
    source's Hessian (a task per chunk, added in a tree) equals the in-memory one, and the minimum is the same."""
    from gdlab.sources.memory import MemorySource

    rng = np.random.default_rng(13)
    X = rng.normal(size=(3000, 3)) * [1.0, 30.0, 0.05] + [0.0, 100.0, 0.0]
    y = (rng.random(3000) < 1 / (1 + np.exp(-(X @ [0.4, -0.01, 8.0] + 0.3)))).astype(float)
    src = open_source(da.from_array(X, chunks=1000), target=da.from_array(y, chunks=1000), scheduler=client,
                      loss="log_loss")
    W, b = rng.normal(size=(3, 1)), np.array([0.2])
    mem = MemorySource(X, 2.0 * y[:, None] - 1.0, None, src.loss, True)
    np.testing.assert_allclose(src.hessian(W, b), mem.hessian(W, b), rtol=1e-12)
    got = gdlab.descend(src, None, loss="log_loss", penalty="l2", alpha=1e-3)
    want = gdlab.descend(X, y, loss="log_loss", penalty="l2", alpha=1e-3)
    assert got.converged and want.converged, got.message
    assert abs(got.loss - want.loss) <= 1e-9 * want.loss
    np.testing.assert_allclose(got.coef, want.coef, rtol=1e-5)
