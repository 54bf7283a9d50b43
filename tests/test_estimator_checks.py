"""scikit-learn's own contract checks, on the full-batch defaults and on the compiled stochastic path, for both
estimators (GDRegressor and GDClassifier share one base, so each check runs the shared code twice)."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from gdlab import GDClassifier, GDRegressor


def expected_failed_checks(estimator):
    """Checks that do not apply, and why (scikit-learn >= 1.6 takes them here rather than from a tag). The sample
    weight equivalence is checked on dense and on sparse X (input_tags.sparse): a reason for one is the reason for
    the other, since a sparse fit is the dense fit (tests/test_sparse_estimators.py)."""
    return {check: reason for name, reason in _expected_failures(estimator).items()
            for check in ([name, name.replace("_dense_", "_sparse_")] if name.endswith("_on_dense_data") else [name])}


def _expected_failures(estimator):
    if estimator.batch_size is None and getattr(estimator, "loss", None) in ("squared_error", "poisson"):
        # The check's data have more features (30) than rows (15): only the ridge term (alpha = 1e-4) curves half
        # the directions, against L ~ 30. Both fits converge (Barzilai-Borwein steps, ~800 iterations) and certify
        # a gap of ~2e-14; that leaves the coefficients ~2e-5 apart along those flat directions, and predictions
        # 3e-6 apart, above the check's rtol=1e-7. At tol=1e-14 the squared error passes it (tests/test_bb_step.py).
        # (Before, both runs took the same constant steps and stopped at max_iter 3% above the minimum.)
        reason = "a certified objective gap on a ridge-only-curved problem leaves predictions 3e-6 apart"
        failures = {"check_sample_weight_equivalence_on_dense_data": reason}
        if estimator.loss == "poisson":
            failures["check_regressor_multioutput"] = "the check draws negative targets for a counts-only loss"
        return failures
    if getattr(estimator, "loss", None) == "poisson":
        # scikit-learn 1.9's check_regressor_multioutput draws signed targets from make_regression whatever the
        # positive_only tag says (it does not call _enforce_estimator_tags_y, as every other regressor check
        # does); the Poisson loss refuses y < 0 with a ValueError, as PoissonRegressor does. Multi-output Poisson
        # fits on counts are tested in tests/test_estimator.py.
        return {"check_regressor_multioutput": "the check draws negative targets for a counts-only loss"}
    if getattr(estimator, "loss", None) == "multinomial" and estimator.batch_size is None:
        # Both fits converge and certify the objective gap (tol=1e-10; still so at 1e-13): the probabilities
        # they give agree to ~1e-9 absolute, but the smallest (~4e-5) then differ by 1.5e-7 relative, just above
        # the check's rtol=1e-7. A certified gap bounds the loss, not the relative error of a tiny probability.
        return {"check_sample_weight_equivalence_on_dense_data":
                "the smallest probabilities differ by 1.5e-7 relative at a certified objective gap"}
    if getattr(estimator, "loss", None) == "modified_huber" and estimator.batch_size is None:
        # The check's data leave the modified-Huber problem rank deficient (mu = 0, 'the features are collinear'):
        # gradient descent warns that it did not converge in max_iter (still so at 20000), and the two runs end
        # 1e-4 apart. The warning is the honest outcome; the minimiser there is not unique.
        return {"check_sample_weight_equivalence_on_dense_data":
                "a rank-deficient modified-Huber problem: neither run converges, each says so"}
    if estimator.batch_size is not None:
        # A stochastic epoch makes one update per row: 15 weighted rows and their 30 repetitions are different
        # runs, so the two fits differ by the noise of SGD (SGDRegressor and SGDClassifier mark the same check as
        # failing). Full-batch fits, the default, pass it.
        return {"check_sample_weight_equivalence_on_dense_data":
                "stochastic epochs over repeated rows are different runs than over weighted rows"}
    return {}


@parametrize_with_checks(
    [
        GDRegressor(),
        GDRegressor(batch_size=1, tol=1e-3, random_state=0),
        GDRegressor(optimizer="adam", batch_size=16, max_iter=100, tol=1e-3, random_state=0),
        GDRegressor(loss="poisson"),
        GDClassifier(),
        GDClassifier(loss="multinomial"),
        GDClassifier(loss="hinge", batch_size=1, tol=1e-3, random_state=0),
        GDClassifier(loss="modified_huber"),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_contract(estimator, check):
    check(estimator)
