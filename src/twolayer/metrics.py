"""Quantities recorded along training, each evaluated for every replica at once.

Each metric maps a :class:`Snapshot` of iteration k to a tensor of shape (R,).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from twolayer.kernels import gram_first_layer, lambda_min
from twolayer.model import TwoLayerReLU


@dataclass
class Snapshot:
    """Everything known at iteration k before the k-th update."""

    step: int
    model: TwoLayerReLU
    X: torch.Tensor  # (n, d) inputs
    y: torch.Tensor  # (n,) or (R, n) labels
    Z: torch.Tensor  # (M, n) preactivations w_r(k)^T x_i
    u: torch.Tensor  # (R, n) predictions u(k)
    loss: torch.Tensor  # (R,) training loss L(k)
    initial_pattern: torch.Tensor  # (M, n) booleans 1{w_r(0)^T x_i >= 0}


def _pattern_change(s: Snapshot) -> torch.Tensor:
    """Fraction of the m*n activation patterns that differ from initialization (du2019 §5)."""
    changed = ((s.Z >= 0) != s.initial_pattern).sum(dim=1).to(torch.float64)
    n = s.Z.shape[1]
    return s.model.neuron_sum(changed) / (n * s.model.widths.to(torch.float64))


def _distances(model: TwoLayerReLU) -> torch.Tensor:
    """||w_r - w_r(0)||_2 of every neuron (computed in the model's precision)."""
    return (model.W - model.W0).norm(dim=1).to(torch.float64)


METRICS: dict[str, Callable[[Snapshot], torch.Tensor]] = {
    # L(k): the training objective
    "loss": lambda s: s.loss,
    # ||y - u(k)||_2, the quantity in du2019 Theorem 4.1
    "residual_norm": lambda s: (s.y - s.u).to(torch.float64).norm(dim=-1),
    # fraction of activation patterns changed since initialization (du2019 Figure 1b)
    "pattern_change": _pattern_change,
    # max_r ||w_r(k) - w_r(0)||_2 (du2019 Figure 1c, Lemma 3.3, Corollary 4.1)
    "max_distance": lambda s: s.model.neuron_max(_distances(s.model)),
    # ||W(k) - W(0)||_F (arora2019 Lemma 5.3)
    "frobenius_distance": lambda s: s.model.neuron_sum(_distances(s.model) ** 2).sqrt(),
    # max_r |a_r(k) - a_r(0)| (du2019 Lemma A.5, when both layers train)
    "output_distance": lambda s: s.model.neuron_max((s.model.a - s.model.a0).abs()),
    # lambda_min(H(k)) of the first-layer Gram matrix (du2019 Lemma 3.2); costs O(n^3)
    "lambda_min": lambda s: lambda_min(gram_first_layer(s.model, s.X, s.Z)),
}


def evaluate(names: list[str], snapshot: Snapshot) -> dict[str, torch.Tensor]:
    """The requested metrics of one snapshot, as float64 CPU tensors of shape (R,)."""
    return {
        name: METRICS[name](snapshot).detach().to(device="cpu", dtype=torch.float64)
        for name in names
    }
