"""GDRegressor and GDClassifier on Dask arrays (issue 11): a full-batch fit on X and y chunked by rows runs in passes
over the chunks (gdlab.sources.dask), never gathering X, and gives the in-memory fit's coefficients to 1e-8;
predictions on a dask array are dask arrays with X's row chunks (as dask-ml's estimators return), equal to the
in-memory predictions; what a Dask fit cannot do is one clear error. Dask's synchronous scheduler (no cluster)."""

import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402

from gdlab import GDClassifier, GDRegressor  # noqa: E402

CHUNK = 170  # rows per chunk: 600 rows in 4 chunks, the last one short


@pytest.fixture(autouse=True)
def synchronous_scheduler():
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((600, 4)) * [1.0, 3.0, 0.5, 10.0] + [0.0, 1.0, -2.0, 5.0]
    eta = X @ [0.8, -0.3, 1.0, 0.05] + 0.5
    y = eta + rng.standard_normal(600)
    counts = rng.poisson(np.exp(0.3 * np.tanh(eta)))
    labels = np.where(eta + rng.standard_normal(600) > 0.7, "spam", "ham")
    return X, y, counts, labels


def chunked(a):
    return da.from_array(a, chunks=(CHUNK,) + a.shape[1:])


@pytest.fixture
def never_gathered(monkeypatch):
    """Fail if anything turns a dask array into one NumPy array (np.asarray calls __array__)."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("a dask array was gathered into one NumPy array")

    monkeypatch.setattr(da.Array, "__array__", refuse)


def quiet_fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, y)


SETTINGS = {
    "auto": dict(),  # the defaults: standardized, the step from the curvature, run to the certified optimum
    "constant": dict(learning_rate="constant", eta0=0.002, max_iter=60, tol=None),
}


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("loss", ["squared_error", "poisson", "huber"])
def test_regressor_on_dask_arrays_gives_the_in_memory_fit(data, loss, setting, never_gathered):
    X, y, counts, _ = data
    target = counts if loss == "poisson" else y
    kw = SETTINGS[setting]
    if loss == "poisson" and setting == "constant":
        kw = dict(kw, eta0=0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mem = GDRegressor(loss=loss, **kw).fit(X, target)
        est = GDRegressor(loss=loss, **kw).fit(chunked(X), chunked(target))
    assert est.solver_ == "descend (dask source)" and mem.solver_.startswith("descend (")
    np.testing.assert_allclose(est.coef_, mem.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(est.intercept_, mem.intercept_, rtol=1e-8, atol=1e-10)
    assert est.n_iter_ == mem.n_iter_ and est.converged_ == mem.converged_
    np.testing.assert_allclose(est.trajectory_.loss, mem.trajectory_.loss, rtol=1e-10)
    assert not hasattr(est, "feature_names_in_") and est.n_features_in_ == 4
    pred = est.predict(chunked(X))
    assert isinstance(pred, da.Array) and pred.chunks == ((CHUNK, CHUNK, CHUNK, 90),)
    np.testing.assert_allclose(pred.compute(), mem.predict(X), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("loss", ["log_loss", "modified_huber", "hinge", "squared_hinge"])
def test_binary_classifier_on_dask_arrays_gives_the_in_memory_fit(data, loss, setting, never_gathered):
    X, _, _, labels = data
    kw = SETTINGS[setting]
    mem = quiet_fit(GDClassifier(loss=loss, **kw), X, labels)
    est = quiet_fit(GDClassifier(loss=loss, **kw), chunked(X), chunked(labels))
    assert est.solver_ == "descend (dask source)"
    assert list(est.classes_) == list(mem.classes_) == ["ham", "spam"]
    np.testing.assert_allclose(est.coef_, mem.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(est.intercept_, mem.intercept_, rtol=1e-8, atol=1e-10)
    assert est.n_iter_ == mem.n_iter_ and est.converged_ == mem.converged_
    methods = ["predict", "decision_function"] + (["predict_proba", "predict_log_proba"] if loss == "log_loss"
                                                  else ["predict_proba"] if loss == "modified_huber" else [])
    for method in methods:
        lazy = getattr(est, method)(chunked(X))
        assert isinstance(lazy, da.Array) and lazy.chunks[0] == (CHUNK, CHUNK, CHUNK, 90), method
        want = getattr(mem, method)(X)
        got = lazy.compute()
        assert got.shape == want.shape and got.dtype == want.dtype, method
        if method == "predict":
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10, err_msg=method)


def test_numpy_labels_with_a_dask_x_and_a_model_fitted_in_memory_predicting_on_dask(data):
    X, y, _, labels = data
    est = GDClassifier().fit(chunked(X), labels)  # y in memory is chunked as X
    mem = GDClassifier().fit(X, labels)
    np.testing.assert_allclose(est.coef_, mem.coef_, rtol=1e-8, atol=1e-10)
    Y2 = np.column_stack([y, -2 * y])
    reg = GDRegressor().fit(X, Y2)  # fitted in memory, asked on a dask array
    lazy = reg.predict(chunked(X))
    assert isinstance(lazy, da.Array) and lazy.shape == (600, 2)
    np.testing.assert_allclose(lazy.compute(), reg.predict(X), rtol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no feature-name warning: a dask array has no column names
        GDRegressor().fit(chunked(X), chunked(y)).predict(X)


def test_what_a_dask_fit_cannot_do_is_one_clear_error(data):
    X, y, _, labels = data
    dX, dy, dlabels = chunked(X), chunked(y), chunked(labels)
    with pytest.raises(ValueError, match=r"batch_size=32 cannot be used with a Dask collection.*batch_size=None"):
        GDRegressor(batch_size=32).fit(dX, dy)
    with pytest.raises(ValueError, match=r"batch_size=8 cannot be used with a Dask collection.*\.compute\(\)"):
        GDClassifier(batch_size=8).fit(dX, dlabels)
    with pytest.raises(ValueError, match="sample_weight cannot be used with a Dask collection"):
        GDRegressor().fit(dX, dy, sample_weight=np.ones(600))
    with pytest.raises(ValueError, match="sample_weight cannot be used with a Dask collection"):
        GDClassifier().fit(dX, dlabels, sample_weight=np.ones(600))
    with pytest.raises(ValueError, match="class_weight cannot be used when fitting a Dask array"):
        GDClassifier(class_weight="balanced").fit(dX, dlabels)
    with pytest.raises(ValueError, match="early_stopping cannot be used"):
        GDClassifier(early_stopping=True).fit(dX, dlabels)
    three = chunked(np.digitize(y, [0.0, 2.0]))
    with pytest.raises(ValueError, match=r"two classes only.*y holds 3.*\.compute\(\)"):
        GDClassifier().fit(dX, three)
    with pytest.raises(ValueError, match=r"partial_fit takes arrays in memory.*\.compute\(\)"):
        GDRegressor().partial_fit(dX, dy)
    with pytest.raises(ValueError, match=r"partial_fit takes arrays in memory.*\.compute\(\)"):
        GDClassifier().partial_fit(dX, dlabels, classes=["ham", "spam"])
    dd = pytest.importorskip("dask.dataframe")
    frame = dd.from_array(X, chunksize=CHUNK, columns=list("abcd"))
    with pytest.raises(ValueError, match=r"GDClassifier fits a Dask array X.*to_dask_array"):
        GDClassifier().fit(frame, dlabels)
