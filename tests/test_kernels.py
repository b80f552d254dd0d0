"""Closed-form Gram matrices against Monte Carlo estimates and independent computations."""

import math

import pytest
import torch

from twolayer.data import sphere
from twolayer.kernels import (
    g_infinity,
    gram_deviation,
    gram_first_layer,
    gram_output_layer,
    h_infinity,
    kernel_prediction,
    lambda_min,
)
from twolayer.model import Replica, TwoLayerReLU
from twolayer.rng import generator


@pytest.fixture
def points():
    return sphere(6, 5, seed=3)


def _monte_carlo(X, feature, samples=400_000):
    w = torch.randn(samples, X.shape[1], generator=generator(11, "mc"), dtype=torch.float64)
    F = feature(X @ w.T)  # (n, samples)
    return (F @ F.T) / samples


def test_h_infinity_matches_monte_carlo(points):
    mc = (points @ points.T) * _monte_carlo(points, lambda z: (z >= 0).double())
    assert torch.allclose(h_infinity(points), mc, atol=4e-3)


def test_g_infinity_matches_monte_carlo(points):
    mc = _monte_carlo(points, torch.relu)
    assert torch.allclose(g_infinity(points), mc, atol=4e-3)


def test_h_infinity_scale_and_diagonal():
    X = sphere(5, 4, seed=1)
    H = h_infinity(X)
    assert torch.allclose(torch.diagonal(H), torch.full((5,), 0.5, dtype=torch.float64))
    # the kernel is homogeneous of degree 2 in the inputs
    assert torch.allclose(h_infinity(3.0 * X), 9.0 * H)
    # orthogonal unit inputs: x_i^T x_j = 0 gives zero off-diagonal entries
    E = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(h_infinity(E), 0.5 * E)


def test_g_infinity_known_values():
    E = torch.eye(2, dtype=torch.float64)
    G = g_infinity(E)
    # E[relu(z)^2] = 1/2 and, for orthogonal inputs, E[relu(z1)] E[relu(z2)] = 1/(2 pi)
    off = 1 / (2 * math.pi)
    assert torch.allclose(G, torch.tensor([[0.5, off], [off, 0.5]], dtype=torch.float64))


def _model(widths, d, trained="first", dtype=torch.float64, **kw):
    reps = [Replica(m, s) for s, m in enumerate(widths)]
    return TwoLayerReLU.initialize(d, reps, trained=trained, dtype=dtype, **kw)


def test_gram_first_layer_equals_jacobian_product():
    X = sphere(7, 4, seed=2)
    model = _model([9, 13], 4, output_init="gaussian")
    H = gram_first_layer(model, X)
    for i in range(model.num_replicas):
        single = model.select(i)
        W = single.W.clone().requires_grad_(True)
        single.W = W
        rows = []
        for j in range(X.shape[0]):
            (grad,) = torch.autograd.grad(single(X)[0, j], W)
            rows.append(grad.reshape(-1))
        J = torch.stack(rows)
        assert torch.allclose(H[i], J @ J.T, atol=1e-12)


def test_gram_output_layer_equals_jacobian_product():
    X = sphere(5, 3, seed=4)
    model = _model([11], 3, scaling="mean_field")
    a = model.a.clone().requires_grad_(True)
    model.a = a
    J = torch.stack([torch.autograd.grad(model(X)[0, j], a)[0] for j in range(5)])
    assert torch.allclose(gram_output_layer(model, X)[0], J @ J.T, atol=1e-12)


def test_finite_width_gram_approaches_h_infinity():
    X = sphere(8, 6, seed=5)
    model = _model([200_000], 6)
    error = (gram_first_layer(model, X)[0] - h_infinity(X)).abs().max()
    assert error < 5e-3


def test_lambda_min_batched():
    H = torch.stack([torch.diag(torch.tensor([3.0, 1.0, 2.0])), torch.eye(3) * 5])
    assert torch.allclose(lambda_min(H), torch.tensor([1.0, 5.0], dtype=torch.float64))


def test_h_infinity_positive_definite_without_parallel_inputs():
    X = sphere(40, 10, seed=0)
    assert lambda_min(h_infinity(X)) > 1e-3
    X[1] = -X[0]  # antiparallel pairs are still allowed by Theorem 3.1 ...
    assert lambda_min(h_infinity(X)) > 1e-6
    X[1] = X[0]  # ... but a repeated input makes H∞ singular
    assert lambda_min(h_infinity(X)) < 1e-12


def test_kernel_prediction_matches_iterating_the_linear_map():
    X = sphere(6, 4, seed=7)
    H = h_infinity(X)
    r0 = torch.stack([torch.arange(6.0, dtype=torch.float64), torch.ones(6, dtype=torch.float64)])
    eta = 0.7
    pred = kernel_prediction(H, r0, eta, steps=5)
    r = r0.clone()
    for k in range(6):
        assert torch.allclose(pred[k], r.norm(dim=1), rtol=1e-12)
        r = r - eta * r @ H  # H is symmetric
    assert pred.shape == (6, 2)


def test_gram_deviation_shapes_and_consistency():
    X = sphere(10, 5, seed=8)
    out = gram_deviation(X, [50, 5000], [0, 1, 2])
    assert out["spectral"].shape == (2, 3)
    # the spectral norm is at least the largest entry and at most n times it
    assert (out["spectral"] >= out["entrywise"] - 1e-12).all()
    assert (out["spectral"] <= 10 * out["entrywise"] + 1e-12).all()
    # Weyl: |lambda_min(H(0)) - lambda_0| <= ||H(0) - H∞||_2
    lam0 = lambda_min(h_infinity(X))
    assert ((out["lambda_min"] - lam0).abs() <= out["spectral"] + 1e-12).all()
    # wider networks concentrate better on average
    assert out["spectral"][1].mean() < out["spectral"][0].mean()
