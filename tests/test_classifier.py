"""GDClassifier against independent references, on scikit-learn's bundled data with raw (unscaled) features.

References: LogisticRegression (newton-cholesky and lbfgs at tight tolerances), a plain NumPy Newton / IRLS
transcription of the penalised logistic and softmax problems (statsmodels' method, kept here as scikit-learn's
test_sgd.py keeps its reference ASGD), OneVsRestClassifier(LogisticRegression), scipy.optimize on the margin losses
written out in NumPy, and SGDClassifier's and LogisticRegression's own predict_proba formulas.

The C <-> alpha rule under test (docs/estimator.md): LogisticRegression minimises C sum_i s_i loss_i + |w|^2 / 2,
GDClassifier (1/n) sum_i s_i loss_i + alpha |w|^2 / 2 with n = sum_i s_i: the same minimiser for alpha = 1 / (n C).

Tolerances. Coefficients are compared relative to their largest magnitude. GDClassifier runs with tol=1e-13 (the
Newton decrement, i.e. the objective gap to second order, within 1e-13 of the loss), which puts its coefficients
within ~1e-7 of Newton's (compared at 1e-6). lbfgs stops by its own rule: on raw iris it is within ~2e-6 of Newton at tol=1e-14 (so
it is compared at 5e-6), on raw wine (features from 0.1 to 1680) it stops 1e-4 away, so wine is compared with the
two Newton references only. The penalties (C <= 1) are those where plain gradient descent converges in a few
thousand iterations on raw features (weakly penalised, near-separable cases such as SGDClassifier's alpha=1e-4 on raw
iris need tens of thousands: first-order descent on a flat optimum; the fit warns that it did not converge).
"""

import warnings

import numpy as np
import pytest
from scipy import optimize
from scipy.special import expit, logsumexp, softmax
from sklearn.datasets import load_breast_cancer, load_iris, load_wine
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.multiclass import OneVsRestClassifier
from sklearn.utils.class_weight import compute_class_weight

from gdlab import GDClassifier, SeparationWarning
from gdlab.exceptions import ConvergenceWarning

TIGHT = dict(tol=1e-13, max_iter=50_000)


def relative_error(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(b)))


def iris_binary():
    """versicolor against virginica (the pair that overlaps), raw features."""
    X, y = load_iris(return_X_y=True)
    keep = y > 0
    return X[keep], np.where(y[keep] == 2, "virginica", "versicolor")


def wine_binary():
    X, y = load_wine(return_X_y=True)
    return X, (y == 0).astype(int)


# ---- a NumPy Newton / IRLS transcription -----------------------------------------------------------------------
def newton_reference(X, labels, alpha, sample_weight=None, multinomial=False, iterations=100):
    """Minimise (1/n) sum_i s_i loss_i + alpha/2 |W|^2 (intercepts unpenalised) by Newton's method.

    Binary (labels 0/1): loss = log(1 + exp(eta)) - y eta. Multinomial (labels 0..K-1): loss = logsumexp(eta) -
    eta_y, with the K columns coupled; its Hessian is singular along a common shift of the intercepts, so each step
    is the minimum-norm solution (lstsq), which keeps the intercepts' sum at zero from a zero start.
    Returns (coef (K, d) or (1, d), intercept (K,) or (1,)).
    """
    m, d = X.shape
    s = np.ones(m) if sample_weight is None else np.asarray(sample_weight, float)
    n = s.sum()
    Xb = np.c_[np.ones(m), X]
    K = int(labels.max()) + 1 if multinomial else 1
    Y = np.eye(K)[labels] if multinomial else labels.reshape(-1, 1).astype(float)
    theta = np.zeros((d + 1, K))
    pen = np.full(d + 1, alpha)
    pen[0] = 0.0
    for _ in range(iterations):
        eta = Xb @ theta
        P = softmax(eta, axis=1) if multinomial else expit(eta)
        G = Xb.T @ (s[:, None] * (P - Y)) / n + pen[:, None] * theta
        if multinomial:
            H = np.zeros(((d + 1) * K, (d + 1) * K))
            for i in range(m):  # sum_i s_i (diag p_i - p_i p_i^T) (x) x_i x_i^T / n, in column-major blocks
                H += s[i] * np.kron(np.diag(P[i]) - np.outer(P[i], P[i]), np.outer(Xb[i], Xb[i]))
            H = H / n + np.diag(np.tile(pen, K))
            step = np.linalg.lstsq(H, G.T.ravel(), rcond=1e-13)[0].reshape(K, d + 1).T
        else:
            H = (Xb * (s * P[:, 0] * (1 - P[:, 0]))[:, None]).T @ Xb / n + np.diag(pen)
            step = np.linalg.solve(H, G)
        theta -= step
        if np.max(np.abs(step)) <= 1e-15 * max(1.0, np.max(np.abs(theta))):
            break
    return theta[1:].T, theta[0]


def logistic(C, **kw):
    return LogisticRegression(C=C, tol=1e-14, max_iter=100_000, **kw)


# ---- the minimiser of LogisticRegression ---------------------------------------------------------------------------
@pytest.mark.parametrize("C", [0.1, 1.0])
def test_log_loss_with_alpha_one_over_n_c_is_logistic_regression_on_raw_iris(C):
    X, y = iris_binary()
    n = len(y)
    gd = GDClassifier(alpha=1 / (n * C), **TIGHT).fit(X, y)
    assert gd.converged_ and gd.coef_.shape == (1, 4)
    newton = logistic(C, solver="newton-cholesky").fit(X, y)
    lbfgs = logistic(C).fit(X, y)
    coef, intercept = newton_reference(X, (y == "virginica").astype(int), 1 / (n * C))
    np.testing.assert_array_equal(gd.classes_, newton.classes_)
    for ref_coef, ref_intercept, rtol in ((coef, intercept, 1e-6), (newton.coef_, newton.intercept_, 1e-6),
                                          (lbfgs.coef_, lbfgs.intercept_, 5e-6)):
        assert relative_error(gd.coef_, ref_coef) < rtol
        assert relative_error(gd.intercept_, ref_intercept) < rtol


@pytest.mark.parametrize("C", [0.1, 1.0])
def test_log_loss_with_alpha_one_over_n_c_is_newtons_minimiser_on_raw_wine(C):
    X, y = wine_binary()
    n = len(y)
    gd = GDClassifier(alpha=1 / (n * C), optimizer="nesterov", **TIGHT).fit(X, y)
    assert gd.converged_
    newton = logistic(C, solver="newton-cholesky").fit(X, y)
    coef, intercept = newton_reference(X, y, 1 / (n * C))
    for ref_coef, ref_intercept in ((coef, intercept), (newton.coef_, newton.intercept_)):
        assert relative_error(gd.coef_, ref_coef) < 1e-6
        assert relative_error(gd.intercept_, ref_intercept) < 1e-6


def test_multinomial_with_alpha_one_over_n_c_is_logistic_regression_on_raw_iris():
    X, y = load_iris(return_X_y=True)
    n, C = len(y), 1.0
    gd = GDClassifier(loss="multinomial", alpha=1 / (n * C), **TIGHT).fit(X, y)
    assert gd.converged_ and gd.coef_.shape == (3, 4) and gd.intercept_.shape == (3,)
    newton = logistic(C, solver="newton-cholesky").fit(X, y)
    lbfgs = logistic(C).fit(X, y)
    coef, intercept = newton_reference(X, y, 1 / (n * C), multinomial=True)
    # the intercepts are determined up to a common shift: every reference and GDClassifier centre them at sum 0
    for ref_coef, ref_intercept, rtol in ((coef, intercept, 1e-6), (newton.coef_, newton.intercept_, 1e-6),
                                          (lbfgs.coef_, lbfgs.intercept_, 5e-6)):
        assert relative_error(gd.coef_, ref_coef) < rtol
        assert relative_error(gd.intercept_ - gd.intercept_.mean(), ref_intercept - np.mean(ref_intercept)) < rtol
    np.testing.assert_allclose(gd.predict_proba(X), newton.predict_proba(X), atol=1e-6)


def test_multinomial_with_alpha_one_over_n_c_is_newtons_minimiser_on_raw_wine():
    X, y = load_wine(return_X_y=True)
    n, C = len(y), 0.1
    gd = GDClassifier(loss="multinomial", alpha=1 / (n * C), optimizer="nesterov", **TIGHT).fit(X, y)
    assert gd.converged_
    newton = logistic(C, solver="newton-cholesky").fit(X, y)
    coef, intercept = newton_reference(X, y, 1 / (n * C), multinomial=True)
    for ref_coef, ref_intercept in ((coef, intercept), (newton.coef_, newton.intercept_)):
        assert relative_error(gd.coef_, ref_coef) < 1e-6
        assert relative_error(gd.intercept_ - gd.intercept_.mean(), ref_intercept - np.mean(ref_intercept)) < 1e-6


def test_multinomial_with_two_classes_is_the_logistic_model_as_in_logistic_regression():
    X, y = iris_binary()
    n, C = len(y), 1.0
    gd = GDClassifier(loss="multinomial", alpha=1 / (n * C), **TIGHT).fit(X, y)
    binary = GDClassifier(alpha=1 / (n * C), **TIGHT).fit(X, y)
    newton = logistic(C, solver="newton-cholesky").fit(X, y)
    assert gd.coef_.shape == newton.coef_.shape == (1, 4)
    np.testing.assert_array_equal(gd.coef_, binary.coef_)
    assert relative_error(gd.coef_, newton.coef_) < 1e-6


def test_sample_and_class_weights_map_to_logistic_regression_with_n_the_weighted_count():
    X, y = iris_binary()
    rng = np.random.default_rng(0)
    sw = rng.uniform(0.2, 3.0, len(y))
    class_weight = {"versicolor": 1.0, "virginica": 2.5}
    C = 0.5
    n = float(np.sum(sw * np.where(y == "virginica", 2.5, 1.0)))  # the weighted sample count
    gd = GDClassifier(alpha=1 / (n * C), class_weight=class_weight, **TIGHT).fit(X, y, sample_weight=sw)
    newton = logistic(C, solver="newton-cholesky", class_weight=class_weight).fit(X, y, sample_weight=sw)
    coef, intercept = newton_reference(X, (y == "virginica").astype(int), 1 / (n * C),
                                       sample_weight=sw * np.where(y == "virginica", 2.5, 1.0))
    for ref_coef, ref_intercept in ((coef, intercept), (newton.coef_, newton.intercept_)):
        assert relative_error(gd.coef_, ref_coef) < 1e-6
        assert relative_error(gd.intercept_, ref_intercept) < 1e-6


def test_balanced_class_weight_is_the_explicit_dict_and_logistic_regressions():
    X, y = load_iris(return_X_y=True)
    keep = np.r_[np.arange(50), np.arange(50, 150, 3)]  # 50 setosa, 17 versicolor, 17 virginica
    X, y = X[keep], y[keep]
    weights = compute_class_weight("balanced", classes=np.unique(y), y=y)
    n, C = len(y), 1.0  # balanced weights keep the weighted count: sum_i cw_(y_i) = n
    assert np.isclose(np.sum(weights[y]), n)
    balanced = GDClassifier(loss="multinomial", alpha=1 / (n * C), class_weight="balanced", **TIGHT).fit(X, y)
    explicit = GDClassifier(loss="multinomial", alpha=1 / (n * C), class_weight=dict(enumerate(weights)),
                            **TIGHT).fit(X, y)
    np.testing.assert_allclose(balanced.coef_, explicit.coef_, rtol=1e-12, atol=1e-12)
    newton = logistic(C, solver="newton-cholesky", class_weight="balanced").fit(X, y)
    assert relative_error(balanced.coef_, newton.coef_) < 1e-6


def test_one_vs_rest_is_one_logistic_regression_per_class():
    X, y = load_iris(return_X_y=True)
    n, C = len(y), 0.1
    gd = GDClassifier(alpha=1 / (n * C), **TIGHT).fit(X, y)
    ovr = OneVsRestClassifier(logistic(C, solver="newton-cholesky")).fit(X, y)
    assert gd.coef_.shape == (3, 4)
    for k, est in enumerate(ovr.estimators_):
        assert relative_error(gd.coef_[k], est.coef_[0]) < 1e-6
        assert relative_error(gd.intercept_[k], est.intercept_) < 1e-6
    # the probabilities: each model's sigmoid, normalised over the classes (OneVsRestClassifier's rule too)
    np.testing.assert_allclose(gd.predict_proba(X), ovr.predict_proba(X), atol=1e-6)


# ---- the margin losses, against scipy on their formulas ----------------------------------------------------------
def margin_loss(name, z):
    if name == "modified_huber":
        return np.where(z >= -1, np.maximum(0, 1 - z) ** 2, -4 * z)
    return np.maximum(0, 1 - z) ** 2  # squared_hinge


@pytest.mark.parametrize("loss", ["modified_huber", "squared_hinge"])
def test_smooth_margin_losses_reach_the_scipy_minimum(loss):
    X, labels = iris_binary()
    y = np.where(labels == "virginica", 1.0, -1.0)
    alpha = 0.01

    def objective(theta):
        z = y * (X @ theta[1:] + theta[0])
        return margin_loss(loss, z).mean() + alpha / 2 * theta[1:] @ theta[1:]

    ref = optimize.minimize(objective, np.zeros(5), method="BFGS", options={"gtol": 1e-12, "maxiter": 10_000})
    gd = GDClassifier(loss=loss, alpha=alpha, **TIGHT).fit(X, labels)
    theta = np.r_[gd.intercept_, gd.coef_[0]]
    assert objective(theta) <= ref.fun * (1 + 1e-9)
    assert relative_error(theta, ref.x) < 1e-4
    assert np.isclose(gd.loss_, objective(theta), rtol=1e-10)  # loss_ is the objective, in scikit-learn's scale


# ---- predictions ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["log_loss", "modified_huber"])
@pytest.mark.parametrize("classes", [2, 3])
def test_predict_proba_is_sgdclassifiers_formula_on_the_same_weights(loss, classes):
    X, y = load_iris(return_X_y=True)
    if classes == 2:
        y = (y == 2).astype(int)
    gd = GDClassifier(loss=loss, alpha=0.01).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = SGDClassifier(loss=loss, max_iter=5, tol=None, random_state=0).fit(X, y)
    sk.coef_, sk.intercept_ = gd.coef_.copy(), gd.intercept_.copy()  # its formula on GDClassifier's weights
    np.testing.assert_allclose(gd.decision_function(X), sk.decision_function(X), rtol=1e-13)
    np.testing.assert_allclose(gd.predict_proba(X), sk.predict_proba(X), rtol=1e-12, atol=1e-15)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(gd.predict_log_proba(X), sk.predict_log_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(gd.predict(X), sk.predict(X))


def test_multinomial_probabilities_are_the_softmax_of_the_decision_function():
    X, y = load_iris(return_X_y=True)
    gd = GDClassifier(loss="multinomial", alpha=0.01).fit(X, y)
    scores = gd.decision_function(X)
    np.testing.assert_allclose(gd.predict_proba(X), softmax(scores, axis=1), rtol=1e-13)
    np.testing.assert_allclose(gd.predict_log_proba(X), scores - logsumexp(scores, axis=1, keepdims=True),
                               rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(gd.predict(X), gd.classes_[scores.argmax(axis=1)])


@pytest.mark.parametrize("loss", ["hinge", "squared_hinge", "perceptron", "squared_error", "huber"])
def test_losses_without_an_inverse_link_have_no_predict_proba(loss):
    assert not hasattr(SGDClassifier(loss=loss), "predict_proba")  # scikit-learn's behaviour
    model = GDClassifier(loss=loss)
    assert not hasattr(model, "predict_proba") and not hasattr(model, "predict_log_proba")
    with pytest.raises(AttributeError, match="has no attribute 'predict_proba'") as raised:
        model.predict_proba
    reason = str(raised.value.__cause__)  # scikit-learn's available_if chains the reason GDClassifier gives
    assert f"loss='{loss}'" in reason and "log_loss" in reason and "CalibratedClassifierCV" in reason


# ---- labels ---------------------------------------------------------------------------------------------------------
def test_labels_of_any_type_give_the_same_model():
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])
    fits = {}
    for kind, labels in (("int", y), ("str", names[y]), ("object", names[y].astype(object)),
                         ("float", y * 2.0 - 7.0)):
        model = GDClassifier(loss="multinomial", alpha=0.01).fit(X, labels)
        np.testing.assert_array_equal(model.classes_, np.unique(labels))
        assert set(model.predict(X)) <= set(np.unique(labels))
        fits[kind] = model
    for model in fits.values():
        np.testing.assert_array_equal(model.coef_, fits["int"].coef_)
    assert fits["str"].predict(X[:1])[0] == "setosa"


# ---- separation and honest stops ----------------------------------------------------------------------------------
def test_separable_classes_without_a_penalty_are_diagnosed():
    X, y = load_iris(return_X_y=True)
    with pytest.warns(SeparationWarning):
        model = GDClassifier(penalty=None).fit(X, y == 0)  # setosa is separable from the rest
    assert not model.converged_
    assert model.score(X, y == 0) == 1.0


def test_a_default_fit_that_stops_short_says_so_on_raw_breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.warns(ConvergenceWarning, match="max_iter=1000 epochs"):
        model = GDClassifier().fit(X, y)
    assert not model.converged_ and model.n_iter_ == 1000
    assert model.score(X, y) > 0.9  # a useful model, honestly labelled as not the optimum


# ---- partial_fit ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("loss", ["log_loss", "multinomial", "hinge"])
def test_partial_fit_calls_are_one_long_descent(loss):
    X, y = load_iris(return_X_y=True)
    common = dict(loss=loss, alpha=0.01, learning_rate="constant", eta0=0.01, batch_size=1, shuffle=False)
    model = GDClassifier(**common)
    for _ in range(3):
        model.partial_fit(X, y, classes=np.unique(y))
    whole = GDClassifier(max_iter=3, tol=None, **common).fit(X, y)
    np.testing.assert_allclose(model.coef_, whole.coef_, rtol=1e-12, atol=1e-14)
    assert model.t_ == whole.t_


def test_partial_fit_on_chunks_missing_a_class_keeps_every_class():
    X, y = load_iris(return_X_y=True)
    model = GDClassifier(alpha=0.01, batch_size=10, random_state=0)
    model.partial_fit(X[:100], y[:100], classes=[0, 1, 2])  # no virginica yet
    assert model.coef_.shape == (3, 4)
    model.partial_fit(X[100:], y[100:])
    np.testing.assert_array_equal(model.classes_, [0, 1, 2])
