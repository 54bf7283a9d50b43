"""Warning classes of gdlab.

Every warning gdlab raises has its own category, so that a user can filter exactly what they mean to
(``warnings.simplefilter("error", gdlab.DivergenceWarning)``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["DivergenceWarning", "RankDeficiencyWarning", "SeparationWarning", "GDLabWarning"]  # and ConvergenceWarning, below


class GDLabWarning(UserWarning):
    """Base class of gdlab's own warnings."""


class DivergenceWarning(GDLabWarning, RuntimeWarning):
    """The loss became non-finite or exploded: the step is too large for the curvature (see ``stable_step``)."""


class RankDeficiencyWarning(GDLabWarning):
    """The design matrix is (numerically) rank deficient: the least-squares minimiser is not unique."""


class SeparationWarning(GDLabWarning):
    """The classes are linearly separable: without a penalty the log-loss has no minimiser (the weights grow
    without bound as the loss falls towards 0)."""


def __getattr__(name: str) -> Any:
    # ConvergenceWarning is scikit-learn's own class, so that one filter silences it for every estimator; it is
    # imported on first use, since importing scikit-learn costs about a second that `import gdlab` need not pay.
    if name == "ConvergenceWarning":
        from sklearn.exceptions import ConvergenceWarning

        return ConvergenceWarning
    raise AttributeError(f"module 'gdlab.exceptions' has no attribute {name!r}")
