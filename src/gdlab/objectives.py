"""Penalties (value and proximal step), and the losses' names for older imports (the losses live in
:mod:`gdlab.losses`).

The objective gdlab minimises is

    F(w, b) = (1/n) sum_i s_i * loss(x_i . w + b, y_i)  +  penalty(w),      n = sum_i s_i

The squared error is the workshop's MSE, loss = (eta - y)^2, whose gradient is the workshop's
(2/m) X_b^T (X_b w - y). (scikit-learn's SGDRegressor uses half of it, r^2 / 2; see GDRegressor.) The intercept b is
never penalised. Multi-output targets add one such objective per output column (the multinomial loss couples them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gdlab._validation import check_choice, check_positive
from gdlab.losses import LOSSES, Loss, get_loss

__all__ = ["Loss", "Penalty", "LOSSES", "PENALTIES", "get_loss", "make_penalty"]

PENALTIES = (None, "l2", "l1", "elasticnet")


@dataclass(frozen=True)
class Penalty:
    """penalty(w) = l1 * |w|_1 + l2 / 2 * |w|_2^2 (scikit-learn's convention: l2 = alpha for penalty="l2",
    l1 = alpha for "l1", and for "elasticnet" l1 = alpha * l1_ratio, l2 = alpha * (1 - l1_ratio))."""

    l1: float = 0.0
    l2: float = 0.0

    @property
    def active(self) -> bool:
        return self.l1 > 0 or self.l2 > 0

    def value(self, coef: np.ndarray) -> float:
        v = 0.0
        if self.l1:
            v += self.l1 * float(np.abs(coef).sum())
        if self.l2:
            v += 0.5 * self.l2 * float(np.vdot(coef, coef))
        return v

    def prox(self, coef: np.ndarray, step: float | np.ndarray) -> np.ndarray:
        """Proximal step of the L1 part (soft thresholding at step * l1); it makes exact zeros."""
        if not self.l1:
            return coef
        t = step * self.l1
        return np.sign(coef) * np.maximum(np.abs(coef) - t, 0.0)


def make_penalty(penalty: str | None, alpha: float = 0.0001, l1_ratio: float = 0.15) -> Penalty:
    check_choice("penalty", penalty, PENALTIES)
    if penalty is None:
        return Penalty()
    check_positive("alpha", alpha, allow_zero=True)
    if penalty == "l2":
        return Penalty(l2=float(alpha))
    if penalty == "l1":
        return Penalty(l1=float(alpha))
    if not (0.0 <= l1_ratio <= 1.0):
        raise ValueError(f"l1_ratio must be in [0, 1], got {l1_ratio!r}.")
    return Penalty(l1=float(alpha * l1_ratio), l2=float(alpha * (1.0 - l1_ratio)))
