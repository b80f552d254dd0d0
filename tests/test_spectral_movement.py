"""predicted_movement against an explicit iteration of arora2019 eq. (11) and its limit."""

import pytest
import torch

from twolayer.rng import generator
from twolayer.spectral import (
    interpolant_norm,
    label_projections,
    predicted_movement,
    spectrum,
)


def _iterate_eq11(Z: torch.Tensor, y: torch.Tensor, eta: float, steps: int) -> torch.Tensor:
    """||W̃(k)||_F for k = 0..steps by running eq. (11) step by step, y of shape (n,)."""
    w = torch.zeros(Z.shape[0], dtype=torch.float64)
    norms = [0.0]
    for _ in range(steps):
        w = w - eta * Z @ (Z.T @ w - y)
        norms.append(float(w.norm()))
    return torch.tensor(norms, dtype=torch.float64)


@pytest.fixture
def features():
    gen = generator(5, "movement-test")
    Z = torch.randn(40, 7, generator=gen, dtype=torch.float64) / 4.0  # (m d, n): n = 7
    Y = torch.randn(3, 7, generator=gen, dtype=torch.float64)
    return Z, Y


@pytest.mark.parametrize("factor", [0.3, 1.0, 1.7])
def test_matches_explicit_iteration_of_eq11(features, factor):
    Z, Y = features
    H = Z.T @ Z
    eigenvalues, V = spectrum(H)
    eta = factor / float(eigenvalues[0])
    steps = 60
    formula = predicted_movement(eigenvalues, label_projections(V, Y), eta, steps)
    assert formula.shape == (steps + 1, 3)
    for r in range(3):
        explicit = _iterate_eq11(Z, Y[r], eta, steps)
        torch.testing.assert_close(formula[:, r], explicit, rtol=1e-10, atol=1e-12)
    single = predicted_movement(eigenvalues, label_projections(V, Y[0]), eta, steps)
    torch.testing.assert_close(single, formula[:, 0])


def test_tends_to_the_interpolant_norm(features):
    Z, Y = features
    H = Z.T @ Z
    eigenvalues, V = spectrum(H)
    eta = 1.0 / float(eigenvalues[0])
    steps = int(60 / (eta * float(eigenvalues[-1])))  # (1 - eta λ_min)^k < e^-60
    limit = predicted_movement(eigenvalues, label_projections(V, Y), eta, steps)[-1]
    torch.testing.assert_close(limit, interpolant_norm(H, Y), rtol=1e-10, atol=0.0)
    # the movement grows monotonically to it when eta λ_i <= 1
    path = predicted_movement(eigenvalues, label_projections(V, Y), eta, 200)
    assert bool((path[1:] >= path[:-1] - 1e-14).all())
    assert bool((path <= interpolant_norm(H, Y) + 1e-12).all())


def test_singular_gram_matrix_more_points_than_features():
    gen = generator(6, "movement-test")
    Z = torch.randn(3, 6, generator=gen, dtype=torch.float64)  # rank 3 < n = 6
    y = torch.randn(6, generator=gen, dtype=torch.float64)
    eigenvalues, V = spectrum(Z.T @ Z)
    eta = 0.5 / float(eigenvalues[0])
    formula = predicted_movement(eigenvalues, label_projections(V, y), eta, 40)
    assert torch.isfinite(formula).all()
    torch.testing.assert_close(formula, _iterate_eq11(Z, y, eta, 40), rtol=1e-8, atol=1e-10)


def test_small_steps_keep_their_digits():
    # eta λ k = 1e-12: the movement is eta k |v^T y| sqrt(λ), not lost to cancellation
    eigenvalues = torch.tensor([2.0], dtype=torch.float64)
    projections = torch.tensor([3.0], dtype=torch.float64)
    out = predicted_movement(eigenvalues, projections, 5e-13, 1)
    torch.testing.assert_close(out[1], torch.tensor(5e-13 * 3.0 * 2.0**0.5, dtype=torch.float64))


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="do not match"):
        predicted_movement(torch.ones(3), torch.ones(4), 0.1, 5)
    with pytest.raises(ValueError, match="steps"):
        predicted_movement(torch.ones(3), torch.ones(3), 0.1, -1)
