"""gdlab.compare's scikit-learn rows for a classification loss (issue 11): LogisticRegression (lbfgs) must land on
gdlab's Newton minimum of the same objective, and SGDClassifier's row must report SGDClassifier's own fit and the
objective at its coefficients, both checked here against scikit-learn fitted directly and a NumPy transcription."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.preprocessing import StandardScaler

import gdlab

CLASSIFIER_METHODS = ["gd", "newton", "lbfgs", "LogisticRegression", "SGDClassifier"]


# ---- the independent reference: each loss and penalty written plainly in NumPy (z = y eta, y in -1/+1) ----------
def numpy_loss(name, z):
    if name == "log_loss":
        return np.logaddexp(0.0, -z)
    if name == "hinge":
        return np.maximum(0.0, 1.0 - z)
    if name == "perceptron":
        return np.maximum(0.0, -z)
    if name == "squared_hinge":
        return np.maximum(0.0, 1.0 - z) ** 2
    if name == "modified_huber":
        return np.where(z >= -1.0, np.maximum(0.0, 1.0 - z) ** 2, -4.0 * z)
    raise AssertionError(name)


def numpy_penalty(coef, penalty, alpha, l1_ratio=0.15):
    w = np.ravel(coef)
    if penalty is None:
        return 0.0
    if penalty == "l2":
        return 0.5 * alpha * w @ w
    if penalty == "l1":
        return alpha * np.abs(w).sum()
    return alpha * (l1_ratio * np.abs(w).sum() + 0.5 * (1 - l1_ratio) * w @ w)


def binary_objective(X, y01, coef, intercept, loss, penalty, alpha, sample_weight=None, l1_ratio=0.15):
    s = np.ones(len(y01)) if sample_weight is None else sample_weight
    z = (2 * y01 - 1) * (X @ coef + intercept)
    return float(s @ numpy_loss(loss, z) / s.sum() + numpy_penalty(coef, penalty, alpha, l1_ratio))


def softmax_objective(X, labels, coef, intercept, alpha):
    eta = X @ coef + intercept
    top = eta.max(axis=1, keepdims=True)
    lse = top[:, 0] + np.log(np.exp(eta - top).sum(axis=1))
    return float(np.mean(lse - eta[np.arange(len(labels)), labels]) + 0.5 * alpha * np.sum(coef * coef))


def onehot(labels):
    return (labels[:, None] == np.unique(labels)[None]).astype(float)


def iris_binary():
    X, y = load_iris(return_X_y=True)
    keep = y > 0  # versicolor against virginica: not separable, so the unpenalised minimum exists
    return X[keep], (y[keep] == 2).astype(float)


def breast_cancer_standardized():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y.astype(float)


# ---- LogisticRegression: the same minimum as Newton's --------------------------------------------------------------
@pytest.mark.parametrize("case", ["iris raw, no penalty", "iris raw, C=1", "iris raw, C=1, weighted",
                                  "breast cancer standardized, C=1", "breast cancer standardized, C=0.05"])
def test_logistic_regression_row_reaches_newtons_minimum(case):
    X, y = breast_cancer_standardized() if case.startswith("breast") else iris_binary()
    n = len(y)
    sw = np.random.default_rng(3).uniform(0.2, 3.0, n) if "weighted" in case else None
    C = None if "no penalty" in case else float(case.rsplit("C=", 1)[1].split(",")[0])
    penalty = None if C is None else "l2"
    alpha = 0.0 if C is None else 1.0 / (C * (n if sw is None else sw.sum()))  # LogisticRegression's C in gdlab's alpha
    table = gdlab.compare(X, y, loss="log_loss", penalty=penalty, alpha=alpha, sample_weight=sw,
                          methods=CLASSIFIER_METHODS)
    newton, lr_row = table["newton"], table["LogisticRegression"]
    assert newton.converged and table.settings["reference"] == "Newton's certified minimum"
    f_newton = binary_objective(X, y, newton.coef, newton.intercept, "log_loss", penalty, alpha, sw)
    f_lr = binary_objective(X, y, lr_row.coef, lr_row.intercept, "log_loss", penalty, alpha, sw)
    assert lr_row.loss == pytest.approx(f_lr, rel=1e-12)  # the row's objective is the one at its coefficients
    assert table.optimum_mse == pytest.approx(f_newton, rel=1e-12)
    assert abs(f_lr - f_newton) <= 1e-8 * f_newton
    assert lr_row.gap == pytest.approx(f_lr - f_newton, abs=1e-15) and lr_row.converged
    # the row is scikit-learn's own fit with that C (as compare computes it back from alpha, to the last bit)
    C_back = np.inf if C is None else 1.0 / (alpha * (n if sw is None else sw.sum()))
    direct = LogisticRegression(C=C_back, tol=1e-12, max_iter=1000).fit(X, y, sample_weight=sw)
    np.testing.assert_allclose(lr_row.coef, direct.coef_[0], rtol=1e-10, atol=1e-12)
    assert lr_row.intercept == pytest.approx(direct.intercept_[0], rel=1e-10) and lr_row.n_iter == direct.n_iter_[0]
    assert lr_row.library == "scikit-learn" and "lbfgs" in lr_row.note


@pytest.mark.parametrize("loader", [load_iris, load_wine])
def test_logistic_regression_row_reaches_the_softmax_minimum(loader):
    X, labels = loader(return_X_y=True)
    if loader is load_wine:
        X = StandardScaler().fit_transform(X)
    n = len(labels)
    alpha = 1.0 / n  # C = 1
    table = gdlab.compare(X, onehot(labels), loss="multinomial", penalty="l2", alpha=alpha,
                          methods=["newton", "LogisticRegression", "SGDClassifier"])
    newton, lr_row = table["newton"], table["LogisticRegression"]
    f_newton = softmax_objective(X, labels, newton.coef, newton.intercept, alpha)
    f_lr = softmax_objective(X, labels, lr_row.coef, lr_row.intercept, alpha)
    assert newton.converged and lr_row.loss == pytest.approx(f_lr, rel=1e-12)
    assert abs(f_lr - f_newton) <= 1e-8 * f_newton
    direct = LogisticRegression(C=1.0, tol=1e-12, max_iter=1000).fit(X, labels)
    np.testing.assert_allclose(lr_row.coef, direct.coef_.T, rtol=1e-10, atol=1e-12)
    sgd = table["SGDClassifier"]  # one-vs-rest is another objective: skipped, and said why
    assert sgd.skipped and "one-vs-rest" in sgd.note and np.isnan(sgd.loss)


@pytest.mark.parametrize("alpha", [0.0, 0.01])
def test_two_classes_as_a_softmax_are_the_binary_model_written_as_a_pair(alpha):
    X, y = iris_binary()
    labels = y.astype(int)
    table = gdlab.compare(X, onehot(labels), loss="multinomial", penalty="l2" if alpha else None, alpha=alpha,
                          methods=["newton", "LogisticRegression"])
    lr_row, newton = table["LogisticRegression"], table["newton"]
    assert lr_row.coef.shape == (4, 2)
    f_lr = softmax_objective(X, labels, lr_row.coef, lr_row.intercept, alpha)
    f_newton = softmax_objective(X, labels, newton.coef, newton.intercept, alpha)
    assert abs(f_lr - f_newton) <= 1e-8 * f_newton
    # the softmax's two columns differ by the binary model's w: the probabilities are LogisticRegression's
    C = np.inf if alpha == 0 else 2.0 / (alpha * len(y))
    binary = LogisticRegression(C=C, tol=1e-12, max_iter=1000).fit(X, labels)
    np.testing.assert_allclose(lr_row.coef[:, 1] - lr_row.coef[:, 0], binary.coef_[0], rtol=1e-10)


# ---- SGDClassifier: its own fit, and the objective at its coefficients, honestly --------------------------------
@pytest.mark.parametrize("loss", ["log_loss", "hinge", "modified_huber", "squared_hinge", "perceptron"])
@pytest.mark.parametrize("penalty", ["l2", "elasticnet", None])
def test_sgd_classifier_row_is_sgd_classifiers_fit_and_its_true_objective(loss, penalty):
    X, y = breast_cancer_standardized()
    alpha = 0.001
    table = gdlab.compare(X, y, loss=loss, penalty=penalty, alpha=alpha, methods=["gd", "SGDClassifier"],
                          max_iter=300)
    row = table["SGDClassifier"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        # without a penalty it keeps its default alpha, which then only sets its 'optimal' learning rate
        direct = SGDClassifier(loss=loss, penalty=penalty, alpha=alpha if penalty else 0.0001, random_state=0)
        direct.fit(X, y)
    np.testing.assert_allclose(row.coef, direct.coef_[0], rtol=1e-12)
    assert row.intercept == pytest.approx(direct.intercept_[0], rel=1e-12) and row.n_iter == direct.n_iter_
    assert row.converged == (not any(issubclass(w.category, ConvergenceWarning) for w in caught))
    f = binary_objective(X, y, direct.coef_[0], direct.intercept_[0], loss, penalty, alpha)
    assert row.loss == pytest.approx(f, rel=1e-12)
    assert row.gap == pytest.approx(f - table.optimum_mse, rel=1e-12, abs=1e-14)  # (squared_hinge may diverge)
    gd = table["gd"]
    assert gd.loss == pytest.approx(binary_objective(X, y, gd.coef, gd.intercept, loss, penalty, alpha), rel=1e-12)


def test_sgd_classifier_reads_minus_one_plus_one_labels_as_zero_one():
    X, y = breast_cancer_standardized()
    a = gdlab.compare(X, y, loss="hinge", methods=["SGDClassifier"])
    b = gdlab.compare(X, 2 * y - 1, loss="hinge", methods=["SGDClassifier"])
    np.testing.assert_array_equal(a["SGDClassifier"].coef, b["SGDClassifier"].coef)
    direct = SGDClassifier(loss="hinge", penalty=None, random_state=0).fit(X, 2 * y - 1)
    np.testing.assert_allclose(b["SGDClassifier"].coef, direct.coef_[0], rtol=1e-12)


def test_the_caption_states_the_penalised_objective():
    X, y = iris_binary()
    table = gdlab.compare(X, y, loss="log_loss", penalty="l2", alpha=0.01, methods=["newton", "LogisticRegression"])
    text = str(table)
    assert "(alpha/2) |w|² (alpha=0.01)" in text and "LogisticRegression" in text
    assert table.to_dict()["settings"]["penalty"] == "l2"
    assert "C=" + f"{1 / (0.01 * len(y)):.6g}" in table["LogisticRegression"].note


@pytest.mark.parametrize("kwargs, match", [
    ({"loss": "hinge", "methods": ["LogisticRegression"]}, "'LogisticRegression' minimises loss='log_loss'"),
    ({"loss": "log_loss", "penalty": "l1", "methods": ["LogisticRegression"]}, "penalty None or 'l2'"),
    ({"loss": "squared_error", "methods": ["SGDClassifier"]}, "'SGDClassifier' minimises the classification"),
    ({"loss": "poisson", "methods": ["SGDClassifier"]}, "'SGDClassifier' minimises the classification"),
    ({"loss": "log_loss", "penalty": "elasticnet", "methods": ["newton"]}, "'newton' needs a smooth objective"),
    ({"loss": "squared_error", "penalty": "l2", "methods": ["LinearRegression"]}, "fits no penalty"),
    ({"loss": "squared_error", "penalty": "l1", "methods": ["closed_form"]}, "an L1 part has no closed form"),
    ({"loss": "log_loss", "methods": ["SGDRegressor"]}, "least squares only.*'LogisticRegression', 'SGDClassifier'"),
])
def test_a_method_that_cannot_fit_the_objective_is_one_clear_error(kwargs, match):
    X, y = iris_binary()
    with pytest.raises(ValueError, match=match):
        gdlab.compare(X, y, **kwargs)


def test_an_l1_penalty_drops_the_smooth_solvers_from_the_defaults():
    X, y = breast_cancer_standardized()
    table = gdlab.compare(X, y, loss="log_loss", penalty="l1", alpha=0.01, max_iter=300)
    assert [r.method for r in table.rows] == ["gdlab gd", "gdlab momentum", "gdlab adam", "scikit-learn SGDClassifier"]
    assert "L1" in table.settings["reference"]
    assert table.optimum_mse == min(r.loss for r in table.rows)
    for row in table.rows:
        assert row.loss == pytest.approx(binary_objective(X, y, row.coef, row.intercept, "log_loss", "l1", 0.01),
                                         rel=1e-12)
