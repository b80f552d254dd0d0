"""The dual certificate, the certified gap and the first-order optimum of akiyama2021 eq. (8)
(twolayer.measures)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from twolayer.data.synthetic import sphere
from twolayer.measures import (
    certificate_sup,
    dual_certificate,
    dual_lower_bound,
    gathered_directions,
    linearized_optimum,
)
from twolayer.model import Replica, TwoLayerReLU
from twolayer.norm_gd import balanced_init, norm_dependent_gd, objective

ATOMS = torch.eye(2, dtype=torch.float64)


def teacher_data(n: int, d: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    X = sphere(n, d, seed=seed)
    return X, torch.relu(X[:, :2]).sum(dim=1)  # a°_j = 1, w°_j = e_j, j = 1, 2


def brute_force_sup(coef: torch.Tensor, X: torch.Tensor, directions: torch.Tensor) -> torch.Tensor:
    return (coef @ torch.relu(directions @ X.T).T).abs().amax(dim=1)


def test_the_supremum_on_the_circle_is_exact():
    X, _ = teacher_data(30)
    coef = torch.randn(3, 30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    phi = torch.linspace(0, 2 * math.pi, 400_001, dtype=torch.float64)
    grid = brute_force_sup(coef, X, torch.stack([phi.cos(), phi.sin()], dim=1))
    exact = certificate_sup(coef, X)
    # the grid can only miss the maximum by (Lipschitz constant) x (half the spacing)
    slack = coef.abs().sum(dim=1) * math.pi / 400_000
    assert bool((exact >= grid - 1e-12).all())
    assert bool((exact <= grid + slack).all())


def test_the_supremum_in_three_dimensions_is_found_from_below():
    X, _ = teacher_data(40, d=3, seed=2)
    coef = torch.randn(2, 40, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    dense = torch.randn(400_000, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    dense = dense / dense.norm(dim=1, keepdim=True)
    reference = brute_force_sup(coef, X, dense)
    estimate = certificate_sup(coef, X, samples=2000)
    np.testing.assert_allclose(estimate.numpy(), reference.numpy(), rtol=2e-3)


def test_the_bound_is_exact_at_zero_when_lambda_exceeds_the_largest_correlation():
    X, y = teacher_data(50)
    model = balanced_init(2, [Replica(4, 0)])
    model.a.zero_()  # nu = 0
    n = X.shape[0]
    lam_max = float(certificate_sup((y / n)[None], X)[0])  # nu = 0 is optimal iff lambda >= this
    J0 = float(0.5 * (y**2).mean())
    bound, sup_eta = dual_lower_bound(model, X, y, 1.01 * lam_max)
    assert float(bound[0]) == pytest.approx(J0, rel=1e-12)
    assert float(sup_eta[0]) == pytest.approx(1 / 1.01, rel=1e-12)
    below, _ = dual_lower_bound(model, X, y, 0.5 * lam_max)
    assert float(below[0]) < J0 - 1e-3  # nu = 0 is no longer optimal: the bound drops below J


def test_weak_duality_for_arbitrary_networks():
    X, y = teacher_data(40)
    model = balanced_init(2, [Replica(6, s) for s in range(5)])
    model.a.mul_(torch.linspace(1.0, 20.0, 30, dtype=torch.float64))
    lam = [0.003, 0.01, 0.03, 0.1, 0.3]
    bound, _ = dual_lower_bound(model, X, y, torch.tensor(lam))
    assert bool((bound <= objective(model, X, y, lam, "l1")).all())


def two_node_network(p: np.ndarray) -> TwoLayerReLU:
    """The network r_1 relu(<theta(phi_1), x>) + r_2 relu(<theta(phi_2), x>), p = (r, phi)."""
    theta = torch.tensor(np.stack([np.cos(p[2:]), np.sin(p[2:])], axis=1))
    return TwoLayerReLU(theta, torch.tensor(p[:2]), [Replica(2, 0)], scaling="none",
                        trained="both")


def test_the_bound_is_tight_at_the_optimum_and_below_every_other_network():
    X, y = teacher_data(40)
    lam = 1e-3
    p = fitted_optimum(X, y, lam)  # direct minimization with one node per teacher direction
    optimum = two_node_network(p)
    bound, sup_eta = dual_lower_bound(optimum, X, y, lam)
    J = float(objective(optimum, X, y, lam, "l1")[0])
    # here |eta| <= 1 everywhere: the two-node minimizer is the optimum of eq. (8), J = J*
    assert float(sup_eta[0]) == pytest.approx(1.0, abs=1e-6)
    assert 0.0 <= J - float(bound[0]) < 1e-9
    eta = dual_certificate(optimum, X, y, lam, optimum.W)
    np.testing.assert_allclose(eta[0].numpy(), 1.0, atol=1e-6)  # eq. (10) at the atoms
    # turning one node by one degree: the certified gap opens
    moved = p.copy()
    moved[2] += math.radians(1.0)
    other = two_node_network(moved)
    moved_bound, _ = dual_lower_bound(other, X, y, lam)
    assert float(objective(other, X, y, lam, "l1")[0]) - float(moved_bound[0]) > 1e-4
    assert float(moved_bound[0]) <= J  # still below J* = J
    # Algorithm 1 from a few initializations never goes below the bound
    model = balanced_init(2, [Replica(12, s) for s in range(3)])
    norm_dependent_gd(model, X, y, alpha=1.0, lam=lam, steps=1000, progress=False)
    assert bool((objective(model, X, y, lam, "l1") >= float(bound[0])).all())


def test_gathered_directions_by_hand():
    model = balanced_init(2, [Replica(4, 0)])
    model.W = torch.tensor([[2.0, 0.2], [0.0, 1.0], [1.0, 0.0], [0.1, 1.0]], dtype=torch.float64)
    model.a = torch.tensor([0.25, 0.5, 0.5, -0.1], dtype=torch.float64)
    direction, angle = gathered_directions(model, ATOMS)
    # atom 1 gets nodes 0 and 2: 0.25 (2, 0.2) + 0.5 (1, 0) = (1, 0.05)
    expected0 = torch.tensor([1.0, 0.05], dtype=torch.float64)
    torch.testing.assert_close(direction[0, 0], expected0 / expected0.norm())
    assert float(angle[0, 0]) == pytest.approx(math.atan(0.05))
    # atom 2 gets nodes 1 and 3: 0.5 (0, 1) - 0.1 (0.1, 1) = (-0.01, 0.4)
    assert float(angle[0, 1]) == pytest.approx(math.atan(0.01 / 0.4))


def fitted_optimum(X, y, lam):
    """min over (r_1, r_2, phi_1, phi_2) of eq. (4)'s objective with one node per atom, d = 2."""

    def F(p):
        r, phi = p[:2], p[2:]
        theta = np.stack([np.cos(phi), np.sin(phi)], axis=1)
        f = np.maximum(X.numpy() @ theta.T, 0.0) @ r
        return 0.5 * np.mean((y.numpy() - f) ** 2) + lam * np.abs(r).sum()

    start = np.array([1.0, 1.0, 0.0, math.pi / 2])
    res = minimize(F, start, method="Nelder-Mead",
                   options={"xatol": 1e-12, "fatol": 1e-16, "maxiter": 40000, "maxfev": 40000})
    return res.x


def test_the_first_order_optimum_matches_a_direct_minimization():
    X, y = teacher_data(60, seed=5)
    first = linearized_optimum(X, torch.ones(2, dtype=torch.float64), ATOMS)
    # the directions are tangent: orthogonal to their atom
    np.testing.assert_allclose((first.direction * ATOMS).sum(dim=1).numpy(), 0.0, atol=1e-14)
    lam = 1e-4
    p = fitted_optimum(X, y, lam)
    np.testing.assert_allclose((p[:2] - 1) / lam, first.mass.numpy(), rtol=2e-2)
    shift = np.array([p[2] - 0.0, p[3] - math.pi / 2]) / lam  # signed angle per unit lambda
    # theta(phi) = (cos phi, sin phi): d theta / d phi is (0, 1) at e_1 and (-1, 0) at e_2
    tangent = np.array([float(first.direction[0, 1]), -float(first.direction[1, 0])])
    np.testing.assert_allclose(shift, tangent, rtol=5e-2)
    # the function shift is the derivative of f(.; nu*) in lambda at the teacher
    Xt, _ = teacher_data(200, seed=6)
    theta = np.stack([np.cos(p[2:]), np.sin(p[2:])], axis=1)
    f_star = np.maximum(Xt.numpy() @ theta.T, 0.0) @ p[:2]
    f_teacher = torch.relu(Xt).sum(dim=1).numpy()
    predicted = first.function_shift(Xt, torch.ones(2, dtype=torch.float64), ATOMS).numpy()
    tolerance = 0.05 * np.abs(predicted).max()
    np.testing.assert_allclose((f_star - f_teacher) / lam, predicted, atol=tolerance)
