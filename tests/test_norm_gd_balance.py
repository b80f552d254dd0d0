"""Balance of the nodes under Algorithm 1 (akiyama2021 eq. (5)): twolayer.norm_gd.balance_nodes
and the one-step laws of the imbalance a_j^2 - ||w_j||^2 under the L1 and L2 penalties."""

from __future__ import annotations

import pytest
import torch

from twolayer.model import Replica
from twolayer.norm_gd import (
    balance_nodes,
    balanced_init,
    norm_gd_step,
    penalty_subgradients,
    penalty_value,
    step_sizes,
)


def sphere_data(n: int = 50, d: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    X = X / X.norm(dim=1, keepdim=True)
    return X, torch.relu(X).sum(dim=1)


def test_balancing_keeps_the_network_and_equalizes_the_two_penalties():
    X, _ = sphere_data()
    model = balanced_init(3, [Replica(6, 0), Replica(9, 1)])
    before = model(X).clone()
    l1 = penalty_value(model, 0.2, "l1").clone()
    assert bool((penalty_value(model, 0.2, "l2") > l1).all())  # a = 2/M, ||w|| = 1: off balance
    balance_nodes(model)
    torch.testing.assert_close(model(X), before)
    torch.testing.assert_close(model.a.abs(), model.W.norm(dim=1))
    torch.testing.assert_close(penalty_value(model, 0.2, "l1"), l1)
    torch.testing.assert_close(penalty_value(model, 0.2, "l2"), l1)
    torch.testing.assert_close(model.a0, model.a)
    torch.testing.assert_close(model.W0, model.W)
    # at the balanced point the two subgradients are the same (why L1 and L2 runs then agree)
    for got, expected in zip(
        penalty_subgradients(model.a, model.W, 0.2, "l1"),
        penalty_subgradients(model.a, model.W, 0.2, "l2"),
        strict=True,
    ):
        torch.testing.assert_close(got, expected)


def test_a_dead_node_is_left_alone():
    model = balanced_init(2, [Replica(4, 0)])
    model.a[1] = 0.0
    model.W[2] = 0.0
    W, a = model.W.clone(), model.a.clone()
    balance_nodes(model)
    torch.testing.assert_close(model.W[1:3], W[1:3])
    torch.testing.assert_close(model.a[1:3], a[1:3])
    assert bool(torch.isfinite(model.W).all() and torch.isfinite(model.a).all())


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_one_step_moves_the_imbalance_by_the_derived_law(penalty):
    """D_j = a_j^2 - ||w_j||^2 after one step, from autograd's subgradients (g_j, h_j):

    D' = (1 - 2 lambda eta_j [L2]) D + eta_j^2 (g_j^2 - ||h_j||^2), because
    a_j g_j - w_j^T h_j = 0 for the data term and the L1 penalty (homogeneity) and
    lambda D_j for the L2 penalty.
    """
    X, y = sphere_data()
    lam, alpha = 0.05, 1.5
    model = balanced_init(3, [Replica(8, 2)])
    model.a.mul_(torch.linspace(0.5, 4.0, 8, dtype=torch.float64))  # unequal imbalances
    a = model.a.clone().requires_grad_()
    W = model.W.clone().requires_grad_()
    f = (a[:, None] * torch.relu(W @ X.T)).sum(dim=0)
    fit = 0.5 * ((y - f) ** 2).mean()
    if penalty == "l1":
        pen = lam * (a.abs() * W.norm(dim=1)).sum()
    else:
        pen = 0.5 * lam * (a**2 + (W**2).sum(dim=1)).sum()
    (fit + pen).backward()
    g, h = a.grad, W.grad
    a0, W0 = a.detach(), W.detach()
    D = a0**2 - (W0**2).sum(dim=1)
    eta = step_sizes(a0, W0, alpha)
    factor = 1 - 2 * lam * eta if penalty == "l2" else torch.ones_like(eta)
    expected = factor * D + eta**2 * (g**2 - (h**2).sum(dim=1))
    Z = model.preactivations(X)
    norm_gd_step(model, X, y, Z, model.outputs(Z), alpha, lam, penalty)
    torch.testing.assert_close(model.a**2 - (model.W**2).sum(dim=1), expected)
