"""The closed form against NIST's certified values (Statistical Reference Datasets, linear least squares)."""

import json
import warnings

import numpy as np
import pytest

import gdlab
from conftest import NIST_DIR

DATASETS = sorted(p.stem for p in NIST_DIR.glob("*.json"))


def load(name):
    meta = json.loads((NIST_DIR / f"{name}.json").read_text())
    data = np.genfromtxt(NIST_DIR / f"{name}.csv", delimiter=",", names=True)
    model = meta["model"]
    if model.get("class") == "polynomial":
        x = data["x"]
        X = np.column_stack([x**k for k in range(1, model["degree"] + 1)])
    else:
        X = np.column_stack([data[c] for c in data.dtype.names if c != "y"])
    return meta, X, data["y"]


def lre(estimate, certified):
    """NIST's log relative error: correct significant digits (absolute error where the certified value is 0)."""
    estimate, certified = np.asarray(estimate, float), np.asarray(certified, float)
    err = np.where(certified != 0, np.abs(estimate - certified) / np.abs(np.where(certified == 0, 1, certified)),
                   np.abs(estimate - certified))
    with np.errstate(divide="ignore"):
        return np.minimum(-np.log10(err), 15.0)


def test_all_eleven_datasets_are_present():
    assert len(DATASETS) == 11, f"expected the 11 NIST StRD linear datasets in {NIST_DIR}"


@pytest.mark.parametrize("name", DATASETS)
def test_closed_form_meets_nist_certified_values(name):
    meta, X, y = load(name)
    intercept = meta["model"]["intercept"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of them is rank deficient
        r = gdlab.closed_form(X, y, fit_intercept=intercept)
    est = r.params if intercept else np.ravel(r.coef)
    cert = meta["certified"]["estimates_float"]
    need = 6 if meta["level_of_difficulty"] == "higher" else 9
    digits = lre(est, cert)
    assert digits.min() >= need, f"{name}: LRE {digits.round(1)} < {need}"
    # residual standard deviation, as NIST defines it
    n, p = X.shape[0], len(cert)
    rsd = np.sqrt(r.loss * n / (n - p))
    cert_rsd = meta["certified"]["residual_std_dev_float"]
    if cert_rsd > 0:
        assert lre(rsd, cert_rsd) >= need - 1


def test_numpy_lstsq_defaults_fail_on_filip_where_gdlab_does_not():
    """The reason the closed form is careful: the naive solve loses every digit on Filip."""
    meta, X, y = load("Filip")
    Xb = np.c_[np.ones(len(X)), X]
    naive = np.linalg.lstsq(Xb, y, rcond=None)[0]
    cert = meta["certified"]["estimates_float"]
    assert lre(naive, cert).min() < 3
    assert lre(gdlab.closed_form(X, y).params, cert).min() >= 7


@pytest.mark.parametrize("name", ["Norris", "Pontius", "Longley"])
def test_gradient_descent_on_standardised_data_reaches_nist_values(name):
    meta, X, y = load(name)
    mean, sd = X.mean(0), X.std(0)
    Z = (X - mean) / sd
    r = gdlab.descend(Z, y, max_iter=200_000, tol=0.0, gtol=1e-13, warn=False, learning_rate="auto",
                      optimizer="momentum")
    coef = r.coef / sd
    params = np.r_[r.intercept - mean @ coef, coef]
    digits = lre(params, meta["certified"]["estimates_float"])
    assert digits.min() >= 6, digits
