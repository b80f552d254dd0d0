"""Training in the span of the inputs is the same training (twolayer.data.span)."""

import torch

from twolayer.data import span_coordinates, sphere
from twolayer.model import Replica, TwoLayerReLU
from twolayer.training import gradient_descent


def test_coordinates_keep_inner_products_and_basis_is_orthonormal():
    X = sphere(7, 40, seed=3)
    coordinates, Q = span_coordinates(X, return_basis=True)
    assert coordinates.shape == (7, 7) and Q.shape == (40, 7)
    torch.testing.assert_close(coordinates @ coordinates.T, X @ X.T)
    torch.testing.assert_close(Q.T @ Q, torch.eye(7, dtype=torch.float64))
    torch.testing.assert_close(coordinates, X @ Q)


def test_more_points_than_dimensions_are_left_alone():
    X = sphere(9, 4, seed=1)
    assert torch.equal(span_coordinates(X), X)


def test_gradient_descent_in_the_span_follows_the_same_trajectory():
    X = sphere(6, 25, seed=0)
    y = torch.linspace(-1.0, 1.0, 6, dtype=torch.float64)
    coordinates, Q = span_coordinates(X, return_basis=True)
    reps = [Replica(300, 0), Replica(50, 1)]
    full = TwoLayerReLU.initialize(25, reps, first_scale=0.3, dtype=torch.float64)
    reduced = TwoLayerReLU(full.W @ Q, full.a.clone(), reps)
    record = {"residual_norm": "all", "frobenius_distance": "all", "pattern_change": "all"}
    a = gradient_descent(full, X, y, lr=0.5, steps=40, record=record, progress=False)
    b = gradient_descent(reduced, coordinates, y, lr=0.5, steps=40, record=record, progress=False)
    for name in record:
        torch.testing.assert_close(torch.as_tensor(a[name]), torch.as_tensor(b[name]))
    # the weights moved inside the span only
    torch.testing.assert_close((full.W - full.W0) @ Q, reduced.W - reduced.W0)
    torch.testing.assert_close((full.W - full.W0) @ Q @ Q.T, full.W - full.W0)
