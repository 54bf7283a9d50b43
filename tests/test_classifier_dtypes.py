"""GDClassifier's dtypes on float32 X are SGDClassifier's (issue 12): each estimator is fitted on the same float32 X,
dense and sparse, two classes and three, every loss with and without ``predict_proba``, by ``fit`` and by
``partial_fit``, and the dtypes of coef_, intercept_, decision_function, predict_proba, predict_log_proba and
predict are compared with scikit-learn's own.

SGDClassifier's rule, read from its behaviour (and its code: a binary fit returns the intercept as a C double, a
one-vs-rest fit allocates the intercepts in X's dtype): coef_ in X's dtype; intercept_ float64 for two classes, so
that decision_function and predict_proba are float64; X's dtype for three or more, so that they are float32."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression, SGDClassifier

from gdlab import GDClassifier

LOSSES = ["log_loss", "modified_huber", "hinge", "squared_hinge", "perceptron", "squared_error"]
FORMATS = {"dense": np.asarray, "csr": sp.csr_matrix, "csc": sp.csc_array}
METHODS = ["decision_function", "predict_proba", "predict_log_proba", "predict"]


def problem(n_classes, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((90, 5)) * [1.0, 3.0, 0.5, 2.0, 1.0]
    X[rng.random(X.shape) < 0.3] = 0.0  # zeros for the sparse formats to leave out
    y = np.argmax(X[:, :n_classes] + 0.5 * rng.standard_normal((90, n_classes)), axis=1)
    return X.astype(np.float32), y


def dtypes(model, X):
    out = {"coef_": model.coef_.dtype, "intercept_": model.intercept_.dtype}
    for method in METHODS:
        if hasattr(model, method):
            with np.errstate(divide="ignore"):  # log(0) of a modified-Huber probability: -inf, as intended
                out[method] = getattr(model, method)(X).dtype
    return out


def quiet(model, *args, partial=False, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.partial_fit(*args, **kw) if partial else model.fit(*args, **kw)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("loss", LOSSES)
def test_float32_fit_has_sgdclassifiers_dtypes(n_classes, fmt, loss):
    X, y = problem(n_classes)
    X = FORMATS[fmt](X)
    sk = quiet(SGDClassifier(loss=loss, max_iter=5, tol=None, random_state=0), X, y)
    gd = quiet(GDClassifier(loss=loss, max_iter=20), X, y)
    want, got = dtypes(sk, X), dtypes(gd, X)
    assert got == want
    # the rule itself, so that a change of scikit-learn's shows here rather than passing unnoticed
    assert want["coef_"] == np.float32
    assert want["intercept_"] == (np.float64 if n_classes == 2 else np.float32)
    assert want["decision_function"] == want["intercept_"]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("loss", ["log_loss", "modified_huber"])
def test_partial_fit_on_float32_has_sgdclassifiers_dtypes(n_classes, loss):
    X, y = problem(n_classes, seed=1)
    classes = np.arange(n_classes)
    sk, gd = SGDClassifier(loss=loss, random_state=0), GDClassifier(loss=loss, batch_size=10, random_state=0)
    for chunk in (slice(0, 45), slice(45, 90)):
        quiet(sk, X[chunk], y[chunk], partial=True, classes=classes)
        quiet(gd, X[chunk], y[chunk], partial=True, classes=classes)
        assert dtypes(gd, X) == dtypes(sk, X)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("loss", ["log_loss", "modified_huber"])
def test_float32_probabilities_are_the_float64_ones_rounded(n_classes, loss):
    """The dtype changes, the numbers do not: the probabilities of the float32 fit are its decision function
    through the loss's inverse link (NumPy's sigmoid or clip here), normalised as SGDClassifier's, computed in
    float64 and rounded once; the decision function is X w + b to float32's precision."""
    X, y = problem(n_classes, seed=2)
    gd = GDClassifier(loss=loss).fit(X, y)
    exact = X.astype(np.float64) @ gd.coef_.astype(np.float64).T + gd.intercept_.astype(np.float64)
    scores = gd.decision_function(X).astype(np.float64).reshape(exact.shape)
    scale = np.abs(X).astype(np.float64) @ np.abs(gd.coef_.astype(np.float64)).T + np.abs(gd.intercept_)
    assert np.all(np.abs(scores - exact) <= 8 * np.finfo(np.float32).eps * scale)
    link = (lambda s: 1 / (1 + np.exp(-s))) if loss == "log_loss" else (lambda s: (np.clip(s, -1, 1) + 1) / 2)
    if n_classes == 2:
        p = link(scores[:, 0])
        expected = np.column_stack([1 - p, p])
    else:
        P = link(scores)
        expected = P / P.sum(axis=1, keepdims=True)
    proba = gd.predict_proba(X)
    eps = np.finfo(proba.dtype).eps
    np.testing.assert_allclose(proba, expected, rtol=8 * eps, atol=8 * eps)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=8 * eps)


def test_the_softmax_of_three_classes_has_logisticregressions_dtypes():
    """loss='multinomial' is LogisticRegression's model (SGDClassifier has none): for 3+ classes its dtypes are
    LogisticRegression's, which keeps a float32 fit in float32 throughout."""
    X, y = problem(3, seed=3)
    sk = LogisticRegression().fit(X, y)
    gd = quiet(GDClassifier(loss="multinomial", max_iter=50), X, y)
    assert dtypes(gd, X) == dtypes(sk, X)
    assert dtypes(gd, X)["predict_proba"] == np.float32


def test_float64_fits_stay_float64_as_sgdclassifier():
    for n_classes in (2, 3):
        X, y = problem(n_classes, seed=4)
        X = X.astype(np.float64)
        sk = quiet(SGDClassifier(loss="log_loss", max_iter=5, tol=None, random_state=0), X, y)
        gd = GDClassifier().fit(X, y)
        assert dtypes(gd, X) == dtypes(sk, X)
        assert dtypes(gd, X)["predict_proba"] == np.float64
