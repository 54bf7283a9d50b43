"""A fresh process fits with the compiled statistics pass from its first call: nothing compiled, numba not loaded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from gdlab import _gram_kernel

pytestmark = pytest.mark.skipif(not _gram_kernel.ahead_of_time(), reason="the C pass was not built")

CODE = textwrap.dedent("""
    import json, sys
    import numpy as np
    import gdlab
    from gdlab.sources import gram
    calls = []
    real = gram.use_compiled
    gram.use_compiled = lambda X, kernel="auto": calls.append(real(X, kernel)) or calls[-1]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200_000, 6)) + 3.0
    y = X @ np.arange(1.0, 7.0) + 0.5 + rng.standard_normal(200_000)
    fits = {"closed_form": gdlab.closed_form(X, y)}
    numba_after_closed_form = "numba" in sys.modules
    fits["descend"] = gdlab.descend(X, y)
    ref, *_ = np.linalg.lstsq(np.c_[np.ones(len(y)), X], y, rcond=None)
    r = np.c_[np.ones(len(y)), X] @ ref - y
    print(json.dumps({"compiled": calls, "numba": numba_after_closed_form,
                      "numba_kernel": "gdlab._gram_numba" in sys.modules,
                      "err": {k: float(np.max(np.abs(np.r_[f.intercept, f.coef] - ref))) for k, f in fits.items()},
                      "loss": fits["closed_form"].loss, "ref_loss": float(r @ r) / len(y)}))
""")


def test_a_fresh_process_fits_with_the_built_pass_without_loading_numba():
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["compiled"] and all(got["compiled"])  # every statistics pass took the compiled path
    assert got["numba"] is False  # the closed form's whole path
    assert got["numba_kernel"] is False  # descend's pass too (its choice of epoch engine is another module's)
    assert got["err"]["closed_form"] < 1e-9
    assert got["err"]["descend"] < 1e-3  # descend stops at its default tolerance
    assert got["loss"] == pytest.approx(got["ref_loss"], rel=1e-12)  # the closed form's loss, from the statistics
