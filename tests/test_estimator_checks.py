"""scikit-learn's own contract checks, on the full-batch default and on the compiled stochastic path."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from gdlab import GDRegressor


def expected_failed_checks(estimator):
    """Checks that do not apply, and why (scikit-learn >= 1.6 takes them here rather than from a tag)."""
    if estimator.batch_size is not None:
        # A stochastic epoch makes one update per row: 15 weighted rows and their 30 repetitions are different
        # runs, so the two fits differ by the noise of SGD (SGDRegressor marks the same check as failing).
        # Full-batch fits, the default, pass it.
        return {"check_sample_weight_equivalence_on_dense_data":
                "stochastic epochs over repeated rows are different runs than over weighted rows"}
    return {}


@parametrize_with_checks(
    [
        GDRegressor(),
        GDRegressor(batch_size=1, tol=1e-3, random_state=0),
        GDRegressor(optimizer="adam", batch_size=16, max_iter=100, tol=1e-3, random_state=0),
    ],
    expected_failed_checks=expected_failed_checks,
)
def test_sklearn_contract(estimator, check):
    check(estimator)
