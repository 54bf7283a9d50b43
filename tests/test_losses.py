"""The loss objects: derivatives against finite differences, curvature bounds against the second derivative met on
a grid, the compiled scalar derivative against the array one, the null-model intercept against a 1-D minimiser,
and the targets each loss accepts."""

import math

import numpy as np
import pytest
from scipy import optimize

import gdlab
from gdlab.losses import LOSSES, Multinomial, get_loss

ETA = np.linspace(-6.0, 6.0, 241) + 0.013  # off the kinks (hinge at 1, modified Huber at +-1, epsilons)
BINARY = [name for name, cls in LOSSES.items() if cls.task == "binary"]
SCALAR = [name for name, cls in LOSSES.items() if not cls.coupled]


def targets(loss):
    if loss.task == "binary":
        return np.array([-1.0, 1.0])
    if loss.task == "count":
        return np.array([0.0, 1.0, 3.0, 7.5])
    return np.array([-2.0, 0.0, 0.7, 3.0])


@pytest.mark.parametrize("name", SCALAR)
def test_each_derivative_matches_finite_differences_of_its_value(name):
    loss = get_loss(name, 0.3)
    for y in targets(loss):
        h = 1e-6
        fd = (loss.value(ETA + h, y) - loss.value(ETA - h, y)) / (2 * h)
        np.testing.assert_allclose(loss.derivative(ETA, y), fd, rtol=1e-6, atol=1e-6 * (1 + np.abs(fd).max()))
        v, dv = loss.value_and_derivative(ETA, y)
        np.testing.assert_allclose(v, loss.value(ETA, y), rtol=1e-14)
        np.testing.assert_allclose(dv, loss.derivative(ETA, y), rtol=1e-14)


@pytest.mark.parametrize("name", [n for n in SCALAR if LOSSES[n].smooth])
def test_each_second_derivative_matches_finite_differences_and_stays_below_the_curvature_bound(name):
    loss = get_loss(name, 0.3)
    for y in targets(loss):
        h = 1e-5
        fd = (loss.derivative(ETA + h, y) - loss.derivative(ETA - h, y)) / (2 * h)
        kinks = np.abs(fd - loss.second_derivative(ETA, y)) > 1e-4 * (1 + np.abs(fd))
        assert kinks.sum() <= 2 * 2, f"{name}: second derivative off finite differences at {ETA[kinks]}"
        if loss.curvature is not None:
            assert loss.second_derivative(ETA, y).max() <= loss.curvature * (1 + 1e-12)
    if name == "log_loss":  # the bound is attained: 1/4 at eta = 0
        assert loss.second_derivative(np.array([0.0]), 1.0)[0] == pytest.approx(0.25, rel=1e-15)


def test_the_poisson_loss_has_no_global_curvature_bound_so_it_reports_the_local_one():
    loss = get_loss("poisson")
    assert loss.curvature is None and loss.smooth
    eta = np.array([0.0, 1.0, 2.0])
    assert loss.local_curvature(eta, np.zeros(3)) == pytest.approx(math.exp(2.0), rel=1e-15)


@pytest.mark.parametrize("name", SCALAR)
def test_the_compiled_scalar_derivative_is_the_array_derivative(name):
    loss = get_loss(name, 0.3)
    for y in targets(loss):
        want = loss.derivative(ETA, y)
        got = np.array([loss.scalar_derivative(float(e), float(y), loss.param) for e in ETA])
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300)


def test_binary_losses_are_scikit_learns_sgdclassifier_definitions():
    # scikit-learn's SGDClassifier losses, written out from its documentation (z = y eta)
    z = ETA
    ref = {"log_loss": np.log1p(np.exp(-z)), "hinge": np.maximum(0, 1 - z), "perceptron": np.maximum(0, -z),
           "squared_hinge": np.maximum(0, 1 - z) ** 2,
           "modified_huber": np.where(z >= -1, np.maximum(0, 1 - z) ** 2, -4 * z)}
    for name in BINARY:
        np.testing.assert_allclose(get_loss(name).value(ETA, 1.0), ref[name], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(get_loss(name).value(-ETA, -1.0), ref[name], rtol=1e-12, atol=1e-15)


def test_the_poisson_value_is_the_half_deviance():
    y = np.array([0.0, 1.0, 4.0, 9.0])
    mu = np.array([0.5, 2.0, 4.0, 3.0])
    from sklearn.metrics import mean_poisson_deviance

    got = get_loss("poisson").value(np.log(mu), y)
    for i in range(4):
        assert got[i] == pytest.approx(0.5 * mean_poisson_deviance(y[i:i + 1], mu[i:i + 1]), rel=1e-12)


def test_the_multinomial_gradient_and_hessian_match_finite_differences_and_boehnings_bound():
    rng = np.random.default_rng(0)
    eta = rng.standard_normal((5, 3))
    y = np.eye(3)[[0, 2, 1, 1, 0]]
    loss = Multinomial()
    h = 1e-6
    for j in range(3):
        e = np.zeros((5, 3))
        e[:, j] = h
        fd = (loss.value(eta + e, y) - loss.value(eta - e, y)) / (2 * h)
        np.testing.assert_allclose(loss.derivative(eta, y)[:, j], fd, rtol=1e-7)
    p = loss.predict(eta)
    for i in range(5):
        H = np.diag(p[i]) - np.outer(p[i], p[i])
        assert np.linalg.eigvalsh(H).max() <= loss.curvature


@pytest.mark.parametrize("name", ["squared_error", "log_loss", "poisson"])
def test_the_null_intercept_minimises_the_loss_of_a_model_without_slopes(name):
    loss = get_loss(name)
    rng = np.random.default_rng(1)
    y = {"squared_error": rng.normal(3, 2, 50), "log_loss": np.where(rng.random(50) < 0.3, 1.0, -1.0),
         "poisson": rng.poisson(2.5, 50).astype(float)}[name]
    sw = rng.uniform(0.5, 2.0, 50)
    best = optimize.minimize_scalar(lambda b: np.dot(sw, loss.value(b, y)), bracket=(-1, 1), tol=1e-12).x
    assert float(loss.null_intercept(y, sw)) == pytest.approx(best, abs=1e-6)


def test_multinomial_null_intercept_gives_the_class_frequencies():
    y = np.eye(3)[[0, 0, 1, 2, 2, 2]]
    b = Multinomial().null_intercept(y)
    np.testing.assert_allclose(Multinomial().predict(b[None, :])[0], [2 / 6, 1 / 6, 3 / 6], rtol=1e-12)


def test_targets_are_read_as_each_loss_defines_them_or_refused_with_the_fix():
    assert np.array_equal(get_loss("log_loss").prepare_target(np.array([0.0, 1.0, 1.0])), [-1.0, 1.0, 1.0])
    assert np.array_equal(get_loss("hinge").prepare_target(np.array([-1.0, 1.0])), [-1.0, 1.0])
    with pytest.raises(ValueError, match="binary labels -1/\\+1 or 0/1; the target has values 1, 2, 3.*GDClassifier"):
        get_loss("log_loss").prepare_target(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="counts \\(y >= 0\\); the target has -1 at row 1"):
        get_loss("poisson").prepare_target(np.array([[2.0], [-1.0]]))
    with pytest.raises(ValueError, match="one-hot target of shape \\(m, K\\)"):
        get_loss("multinomial").prepare_target(np.array([[0.5, 0.5]]))
    with pytest.raises(ValueError, match="one-hot target of shape \\(m, K\\)"):
        gdlab.descend(np.ones((3, 1)), [0.0, 1.0, 2.0], loss="multinomial")


def test_every_registered_loss_is_one_class_with_its_own_name():
    assert len(set(LOSSES)) == len(LOSSES)
    for name, cls in LOSSES.items():
        assert cls.name == name and get_loss(name).name == name
    assert get_loss("huber", 0.5) == get_loss("huber", 0.5) != get_loss("huber", 0.4)
    assert get_loss("hinge") != get_loss("perceptron")
