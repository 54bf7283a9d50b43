import os
import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

# NIST's Statistical Reference Datasets (public domain), copied from shared/reference/nist-strd so that the suite
# runs from any clone; GDLAB_NIST_DIR points elsewhere if wanted.
NIST_DIR = Path(os.environ.get("GDLAB_NIST_DIR", Path(__file__).resolve().parent / "data" / "nist-strd"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def exact_moments(X, Y, w=None):
    """n, mean and co-moment of [X, Y] in exact rational arithmetic (small problems only)."""
    Z = np.concatenate([np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)], axis=1)
    m, q = Z.shape
    W = [Fraction(1)] * m if w is None else [Fraction(float(v)) for v in w]
    F = [[Fraction(float(v)) for v in row] for row in Z]
    n = sum(W)
    mean = [sum(W[i] * F[i][j] for i in range(m)) / n for j in range(q)]
    C = np.empty((q, q))
    for a in range(q):
        for b in range(a, q):
            C[a, b] = C[b, a] = float(sum(W[i] * (F[i][a] - mean[a]) * (F[i][b] - mean[b]) for i in range(m)))
    return float(n), np.array([float(v) for v in mean]), C
