"""GDClassifier as a drop-in for SGDClassifier: each contract point beside SGDClassifier's own behaviour.

Every test runs scikit-learn's estimator on the same data and asserts what it does, then what GDClassifier does:
the same, or the deliberate difference that docs/estimator.md ("Switching from SGDClassifier / LogisticRegression")
documents. The replay settings are GDRegressor's (batch_size=1, shuffle=False, an explicit schedule, tol=None;
eta0 halved for the squared error, whose gdlab form is twice scikit-learn's).
"""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import DataConversionWarning
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler

from gdlab import GDClassifier, _sgd_kernel
from gdlab.losses import LOSSES

needs_numba = pytest.mark.skipif(not _sgd_kernel.HAVE_NUMBA, reason="numba is not installed")


def iris(classes=3, labels="int"):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    if classes == 2:
        y = (y == 2).astype(int)
    if labels == "str":
        y = np.array(["setosa", "versicolor", "virginica"])[y]
    return X, y


def quiet_fit(model, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, y, **kw)


# ---- shapes and classes_ -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("labels", ["int", "str"])
def test_shapes_and_classes_are_sgdclassifiers(classes, labels):
    X, y = iris(classes, labels)
    sk = quiet_fit(SGDClassifier(loss="log_loss", max_iter=5, tol=None, random_state=0), X, y)
    for gd in (GDClassifier().fit(X, y), GDClassifier(loss="multinomial").fit(X, y)):
        np.testing.assert_array_equal(gd.classes_, sk.classes_)
        assert gd.classes_.dtype == sk.classes_.dtype
        assert gd.coef_.shape == sk.coef_.shape and gd.intercept_.shape == sk.intercept_.shape
        assert gd.decision_function(X).shape == sk.decision_function(X).shape
        assert gd.predict_proba(X).shape == sk.predict_proba(X).shape
        assert gd.predict(X).dtype == sk.predict(X).dtype
        assert isinstance(gd.n_iter_, int)


def test_float32_input_gives_float32_coef_as_sgdclassifier():
    X, y = iris()
    X32 = X.astype(np.float32)
    sk = quiet_fit(SGDClassifier(max_iter=5, tol=None, random_state=0), X32, y)
    gd = GDClassifier().fit(X32, y)
    assert (gd.coef_.dtype, gd.intercept_.dtype) == (sk.coef_.dtype, sk.intercept_.dtype)
    assert gd.decision_function(X32).dtype == sk.decision_function(X32).dtype


def test_a_column_y_warns_as_sgdclassifier():
    X, y = iris(2)
    with pytest.warns(DataConversionWarning):
        quiet_fit_warns = SGDClassifier(max_iter=5, tol=None)
        quiet_fit_warns.fit(X, y.reshape(-1, 1))
    with pytest.warns(DataConversionWarning):
        gd = GDClassifier().fit(X, y.reshape(-1, 1))
    assert gd.coef_.shape == (1, 4)


def test_one_class_is_refused_as_sgdclassifier():
    X, y = iris()
    message = "The number of classes has to be greater than one; got 1 class"
    with pytest.raises(ValueError, match=message):
        SGDClassifier().fit(X, np.zeros(len(y)))
    with pytest.raises(ValueError, match=message):
        GDClassifier().fit(X, np.zeros(len(y)))


def test_class_weight_naming_an_unknown_class_is_refused_as_sgdclassifier():
    X, y = iris()
    with pytest.raises(ValueError, match="not in class_weight"):
        SGDClassifier(class_weight={5: 1.0}).fit(X, y)
    with pytest.raises(ValueError, match="not in class_weight"):
        GDClassifier(class_weight={5: 1.0}).fit(X, y)


def test_regression_targets_are_refused_as_sgdclassifier():
    X, y = iris()
    target = X[:, 0] * 1.37
    with pytest.raises(ValueError, match="Unknown label type"):
        SGDClassifier().fit(X, target)
    with pytest.raises(ValueError, match="Unknown label type"):
        GDClassifier().fit(X, target)


# ---- partial_fit and classes --------------------------------------------------------------------------------------
def test_partial_fit_needs_classes_on_the_first_call_as_sgdclassifier():
    X, y = iris()
    message = "classes must be passed on the first call to partial_fit"
    with pytest.raises(ValueError, match=message):
        SGDClassifier().partial_fit(X, y)
    model = GDClassifier()
    with pytest.raises(ValueError, match=message) as raised:
        model.partial_fit(X, y)
    assert "classes=np.unique" in str(raised.value)  # and the fix
    assert not hasattr(model, "coef_") and not hasattr(model, "classes_")


def test_partial_fit_with_other_classes_later_is_refused_as_sgdclassifier():
    X, y = iris()
    message = "is not the same as on last call to partial_fit"
    sk = SGDClassifier().partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=message):
        sk.partial_fit(X, y, classes=[0, 1])
    gd = GDClassifier().partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=message):
        gd.partial_fit(X, y, classes=[0, 1])
    gd.partial_fit(X, y, classes=[2, 1, 0])  # the same set, in any order, as scikit-learn's unique_labels
    gd.partial_fit(X, y)  # leaving it out after the first call


def test_partial_fit_labels_outside_classes_are_refused_as_sgdclassifier():
    X, y = iris()
    message = "classes should include all valid labels that can be in y"
    with pytest.raises(ValueError, match=message):
        SGDClassifier().partial_fit(X, y, classes=[0, 1])
    model = GDClassifier()
    with pytest.raises(ValueError, match=message) as raised:
        model.partial_fit(X, y, classes=[0, 1])
    assert "2" in str(raised.value)  # the label that is not in classes
    assert not hasattr(model, "classes_")  # the first call failed: nothing is kept


def test_partial_fit_refuses_balanced_class_weight_as_sgdclassifier():
    X, y = iris()
    message = "class_weight 'balanced' is not supported for partial_fit"
    with pytest.raises(ValueError, match=message):
        SGDClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=message) as raised:
        GDClassifier(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])
    assert "compute_class_weight" in str(raised.value)


def test_partial_fit_with_early_stopping_raises_as_sgdclassifier():
    X, y = iris()
    message = "early_stopping should be False with partial_fit"
    with pytest.raises(ValueError, match=message):
        SGDClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])
    with pytest.raises(ValueError, match=message):
        GDClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


def test_parameters_are_sgdclassifiers():
    """Every SGDClassifier parameter is a GDClassifier parameter; the defaults differ only where documented."""
    sk, gd = SGDClassifier().get_params(), GDClassifier().get_params()
    assert set(sk) <= set(gd)
    different = {name for name in sk if sk[name] != gd[name]}
    # log_loss, a relative gap, the curvature's step, averaging with that step (docs/estimator.md)
    assert different == {"loss", "tol", "learning_rate", "average"}
    for loss in ("hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron", "squared_error", "huber",
                 "epsilon_insensitive", "squared_epsilon_insensitive"):
        assert loss in LOSSES
        GDClassifier(loss=loss)._validate_params()
        SGDClassifier(loss=loss)._validate_params()


# ---- the updates, one by one --------------------------------------------------------------------------------------
@needs_numba
@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("loss", ["hinge", "log_loss", "modified_huber", "squared_hinge", "perceptron",
                                  "squared_error"])
@pytest.mark.parametrize("penalty", [None, "l2"])
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "optimal"])
def test_stochastic_epochs_replay_sgdclassifier_step_by_step(classes, loss, penalty, learning_rate):
    """Binary and one-vs-rest: each of the K models repeats SGDClassifier's updates (the hinge and the perceptron
    take scikit-learn's subgradient -y at the kink z = threshold, so the perceptron moves from w = 0)."""
    if loss == "squared_error" and learning_rate == "optimal":
        pytest.skip("the 'optimal' first step alpha^(-1/4) diverges on the squared error in both libraries")
    X, y = iris(classes)
    alpha = 0.1 if learning_rate == "optimal" else 0.01  # (at 0.01 the first optimal steps amplify rounding)
    common = dict(loss=loss, penalty=penalty, alpha=alpha, learning_rate=learning_rate, shuffle=False, tol=None,
                  max_iter=3)
    ratio = LOSSES[loss].sklearn_ratio
    sk = SGDClassifier(eta0=0.01, **common).fit(X, y)
    gd = GDClassifier(eta0=0.01 / ratio, batch_size=1, **common).fit(X, y)
    np.testing.assert_allclose(gd.coef_, sk.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gd.intercept_, sk.intercept_, rtol=1e-10, atol=1e-12)
    assert gd.t_ == sk.t_


@needs_numba
def test_early_stopping_holds_out_sgdclassifiers_stratified_rows():
    """Two classes: the same held-out rows (StratifiedShuffleSplit on random_state) and the same training updates
    (tol=None: every epoch runs, as in SGDClassifier)."""
    X, y = iris(2)
    common = dict(loss="hinge", penalty="l2", alpha=0.01, learning_rate="constant", eta0=0.01, shuffle=False,
                  tol=None, max_iter=3, early_stopping=True, validation_fraction=0.2, random_state=3)
    sk = SGDClassifier(**common).fit(X, y)
    gd = GDClassifier(batch_size=1, **common).fit(X, y)
    np.testing.assert_allclose(gd.coef_, sk.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gd.intercept_, sk.intercept_, rtol=1e-10, atol=1e-12)
