import os
import warnings
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
