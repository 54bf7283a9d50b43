"""gdlab — a gradient-descent lab for linear models.

The core::

    import gdlab
    ds = gdlab.datasets.workshop_line()
    result = gdlab.descend(ds.X, ds.y, learning_rate=0.1, max_iter=10, tol=None,
                           coef_init=ds.coef_init, intercept_init=ds.intercept_init)
    result.coef, result.intercept, result.trajectory.to_frame()
    gdlab.closed_form(ds.X, ds.y)          # the Normal Equation
    gdlab.curvature(ds.X).stable_step      # 2/L
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from gdlab import datasets, losses, optimizers, schedules
from gdlab._config import config_context, get_config, load_compiled, set_config
from gdlab.closed_form import closed_form
from gdlab.compare import Comparison, compare
from gdlab.curvature import Curvature, curvature
from gdlab.descent import IterationInfo, descend
from gdlab.exceptions import DivergenceWarning, GDLabWarning, RankDeficiencyWarning, SeparationWarning
from gdlab.result import Result, Trajectory
from gdlab.sweep import SweepResult, sweep
from gdlab import solvers  # the reference solvers: gdlab.solvers.newton, gdlab.solvers.lbfgs

__version__ = "0.1.0"

# Faces that pull in optional or heavier dependencies load on first use. (compare and sweep are imported eagerly:
# they are light, and importing them here keeps the names bound to the functions, not to their modules.)
_LAZY = {
    "GDRegressor": "gdlab.estimator",
    "GDClassifier": "gdlab.estimator",
}

__all__ = [
    "descend", "closed_form", "curvature", "compare", "Comparison", "sweep", "SweepResult", "Curvature", "Result", "Trajectory", "IterationInfo",
    "ConvergenceWarning", "DivergenceWarning", "RankDeficiencyWarning", "SeparationWarning", "GDLabWarning",
    "datasets", "losses", "optimizers", "schedules", "set_config", "get_config", "config_context", "load_compiled",
    "__version__", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name == "ConvergenceWarning":
        from gdlab.exceptions import ConvergenceWarning

        return ConvergenceWarning
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'gdlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
