"""GDRegressor on data that need not fit in memory: Parquet/CSV paths, Dask collections and source objects give the
in-memory answer."""

import numpy as np
import pandas as pd
import pytest

import gdlab
from gdlab import GDRegressor


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((3000, 3)) * [1.0, 2.0, 0.5] + [1.0, -1.0, 0.0]
    y = X @ [1.5, -0.5, 2.0] + 4.0 + 0.3 * rng.standard_normal(3000)
    return X, y


@pytest.fixture(scope="module")
def parquet_dir(data, tmp_path_factory):
    X, y = data
    folder = tmp_path_factory.mktemp("parquet")
    frame = pd.DataFrame(X, columns=["a", "b", "c"]).assign(price=y)
    for i, start in enumerate(range(0, 3000, 1000)):
        frame.iloc[start:start + 1000].to_parquet(folder / f"part-{i}.parquet", index=False)
    frame.to_csv(folder.parent / "all.csv", index=False)
    return folder


def test_fit_on_a_parquet_folder_equals_the_in_memory_fit(data, parquet_dir):
    X, y = data
    mem = GDRegressor(learning_rate="auto").fit(X, y)
    est = GDRegressor(learning_rate="auto").fit(str(parquet_dir), "price")
    # the same planned first step; then Barzilai-Borwein steps, which amplify the last bits of the statistics (the
    # files' and the array's sums differ there): both converge, and agree to what the certified gap allows
    assert est.trajectory_.learning_rate[1] == pytest.approx(mem.trajectory_.learning_rate[1], rel=1e-12)
    assert est.converged_ and mem.converged_
    np.testing.assert_allclose(est.coef_, mem.coef_, rtol=1e-6)
    np.testing.assert_allclose(est.intercept_, mem.intercept_, rtol=1e-6)
    assert list(est.feature_names_in_) == ["a", "b", "c"] and est.n_features_in_ == 3
    assert est.solver_ == "descend (stream source)" and est.converged_
    np.testing.assert_allclose(est.predict(pd.DataFrame(X, columns=["a", "b", "c"])), mem.predict(X), rtol=1e-6,
                               atol=1e-6 * np.abs(mem.predict(X)).max())
    exact = gdlab.closed_form(X, y, l2=2 * est.alpha)  # MSE + 2 alpha |w|^2 / 2: SGDRegressor's minimiser
    np.testing.assert_allclose(est.coef_, exact.coef, rtol=1e-4)  # tol stops on the loss: ~sqrt(tol) in w


def test_fit_on_a_csv_file_with_a_robust_loss_equals_the_in_memory_fit(data, parquet_dir):
    X, y = data
    kw = dict(loss="huber", epsilon=1.0, learning_rate="constant", eta0=0.01, max_iter=30, tol=None)
    mem = GDRegressor(**kw).fit(X, y)
    est = GDRegressor(**kw).fit(parquet_dir.parent / "all.csv", "price")
    np.testing.assert_allclose(est.trajectory_.loss, mem.trajectory_.loss, rtol=1e-10)
    np.testing.assert_allclose(est.coef_, mem.coef_, rtol=1e-10)


def test_fit_on_dask_arrays_and_on_a_source_object(data):
    da = pytest.importorskip("dask.array")
    X, y = data
    kw = dict(penalty="l2", alpha=0.01, learning_rate="auto")
    mem = GDRegressor(**kw).fit(X, y)
    est = GDRegressor(**kw).fit(da.from_array(X, chunks=700), da.from_array(y, chunks=700))
    # (Barzilai-Borwein steps amplify the last bits of the chunked sums: both converge, to the certified gap)
    assert est.converged_ and mem.converged_
    np.testing.assert_allclose(est.coef_, mem.coef_, rtol=1e-6)
    src = gdlab.scale.open_source(da.from_array(X, chunks=1000), target=da.from_array(y, chunks=1000))
    est2 = GDRegressor(**kw).fit(src)
    np.testing.assert_allclose(est2.coef_, mem.coef_, rtol=1e-6)
    exact = gdlab.closed_form(X, y, l2=2 * kw["alpha"])
    np.testing.assert_allclose(est2.coef_, exact.coef, rtol=1e-5)


def test_out_of_core_fits_refuse_what_they_cannot_do(parquet_dir):
    with pytest.raises(ValueError, match="sample_weight cannot be used when fitting files"):
        GDRegressor().fit(str(parquet_dir), "price", sample_weight=np.ones(3000))
    with pytest.raises(ValueError, match="name the target"):
        GDRegressor().fit(str(parquet_dir), None)
    with pytest.raises(ValueError, match="price2"):
        GDRegressor().fit(str(parquet_dir), "price2")
