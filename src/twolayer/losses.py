"""Training losses L(u) of the predictions u = (f(x_1), ..., f(x_n)) and their derivatives.

Predictions have shape (R, n), one row per replica; labels have shape (n,) (shared) or
(R, n). ``reduction="sum"`` is the convention of du2019 eq. (2) and arora2019
(L = sum_i l(u_i, y_i)); ``"mean"`` divides by n.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

LOSSES = ("square", "logistic")
REDUCTIONS = ("sum", "mean")


@dataclass(frozen=True)
class Loss:
    """A per-sample loss l(u, y) summed (or averaged) over the training points.

    ``square``: l = (u - y)^2 / 2 (du2019 eq. (2)).
    ``logistic``: l = log(1 + exp(-y u)) for labels y in {-1, +1} (bach2022 Section 5).
    """

    name: str = "square"
    reduction: str = "sum"

    def __post_init__(self) -> None:
        if self.name not in LOSSES:
            raise ValueError(f"loss = {self.name!r} is not allowed: expected one of {LOSSES}")
        if self.reduction not in REDUCTIONS:
            raise ValueError(
                f"reduction = {self.reduction!r} is not allowed: expected one of {REDUCTIONS}"
            )

    def _normalizer(self, n: int) -> float:
        return 1.0 if self.reduction == "sum" else 1.0 / n

    def value(self, u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The loss of every replica, shape (R,)."""
        if self.name == "square":
            per_sample = 0.5 * (u - y) ** 2
        else:
            per_sample = F.softplus(-y * u)
        return per_sample.sum(dim=-1) * self._normalizer(u.shape[-1])

    def derivative(self, u: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """dL/du_i for every replica and point, shape (R, n)."""
        if self.name == "square":
            g = u - y
        else:
            g = -y * torch.sigmoid(-y * u)
        return g * self._normalizer(u.shape[-1])
