import os
import warnings
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
NIST_DIR = Path(os.environ.get("GDLAB_NIST_DIR", SHARED / "reference" / "nist-strd"))


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
