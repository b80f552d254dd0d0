"""Closed-form Gram matrices against Monte Carlo estimates and independent computations."""

import math

import pytest
import torch

from twolayer import kernels
from twolayer.data import sphere, with_near_parallel_pair
from twolayer.kernels import (
    entry_variance,
    g_infinity,
    gram_deviation,
    gram_first_layer,
    gram_output_layer,
    h_infinity,
    kernel_prediction,
    lambda_min,
)
from twolayer.model import Replica, TwoLayerReLU, replica_grid
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


SMALL_ANGLES = [1e-3, 1e-6, 1e-8, 1e-10, 1e-12]


def _pair(theta, scale=1.0):
    """Two inputs of norm ``scale`` at angle ``theta`` (the stored angle is theta to ~1 ulp)."""
    X = torch.tensor([[1.0, 0.0], [math.cos(theta), math.sin(theta)]], dtype=torch.float64)
    return scale * X


def _close_pair_lambda_min(theta):
    """lambda_min of H∞ for two unit inputs at angle theta, in a form free of cancellation.

    The 2 x 2 matrix [[1/2, h], [h, 1/2]] with h = cos θ (pi - θ) / (2 pi) has the smallest
    eigenvalue 1/2 - h = (1 - cos θ)/2 + θ cos θ / (2 pi) = sin²(θ/2) + θ cos θ / (2 pi)
    = θ / (2 pi) + θ² / 4 + O(θ³).
    """
    return math.sin(theta / 2) ** 2 + theta * math.cos(theta) / (2 * math.pi)


def _arccos_formulas(X):
    """The closed forms evaluated the textbook way, θ = arccos(cosine), as a reference."""
    norms = X.norm(dim=1)
    outer = norms[:, None] * norms[None, :]
    cos = ((X @ X.T) / outer).clamp(-1.0, 1.0)
    theta = torch.arccos(cos)
    H = outer * cos * (math.pi - theta) / (2 * math.pi)
    G = outer * (torch.sin(theta) + (math.pi - theta) * cos) / (2 * math.pi)
    return H, G, cos


@pytest.mark.parametrize("scale", [1.0, 3.0])
@pytest.mark.parametrize("theta", SMALL_ANGLES)
def test_h_infinity_lambda_min_of_a_close_pair(theta, scale):
    exact = _close_pair_lambda_min(theta)
    series = theta / (2 * math.pi) + theta**2 / 4
    assert exact == pytest.approx(series, rel=theta**2, abs=0)
    lam = float(lambda_min(h_infinity(_pair(theta, scale)))) / scale**2
    # relative 1e-6, up to the rounding of an entry near 1/2 (2^-54), which any float64
    # H∞ carries; the old arccos form was off by 7e-5 at 1e-6 and gave 0 from 1e-8 down
    assert abs(lam - exact) <= 1e-6 * exact + 2.0**-53


@pytest.mark.parametrize("theta", SMALL_ANGLES)
def test_angles_keep_relative_accuracy_near_parallel_and_antiparallel(theta):
    X = torch.tensor(
        [[1.0, 0.0], [math.cos(theta), math.sin(theta)], [-math.cos(theta), math.sin(theta)]],
        dtype=torch.float64,
    )
    angle, rest, _ = kernels._angles(X)
    assert float(angle[0, 1]) == pytest.approx(theta, rel=1e-12, abs=0)  # near parallel: θ
    assert float(rest[0, 2]) == pytest.approx(theta, rel=1e-12, abs=0)  # antiparallel: pi - θ
    assert torch.equal(angle, angle.T) and torch.equal(rest, rest.T)
    assert (torch.diagonal(angle) == 0.0).all()
    # near antiparallel, H∞_ij = -cos(θ) θ / (2 pi) keeps its relative accuracy too
    H = h_infinity(X)
    expected = -math.cos(theta) * theta / (2 * math.pi)
    assert float(H[0, 2]) == pytest.approx(expected, rel=1e-12, abs=0)


def test_gram_matrices_psd_with_a_pair_at_angle_1e_9():
    X = torch.cat([sphere(50, 10, seed=6), sphere(1, 10, seed=7)])  # 50 points and a partner
    theta = 1e-9
    X = with_near_parallel_pair(X, 0, 50, theta)
    n = X.shape[0]
    lam_h = float(lambda_min(h_infinity(X)))
    assert lam_h >= -1e-15 * n
    assert float(lambda_min(g_infinity(X))) >= -1e-15 * n
    # the pair sets λ_min (the old arccos form gave a negative value here)
    assert lam_h == pytest.approx(theta / (2 * math.pi), rel=1e-4, abs=0)


def test_antiparallel_pair():
    X = sphere(6, 4, seed=9)
    X[1] = -X[0]
    H, G = h_infinity(X), g_infinity(X)
    # restricted to the pair, H∞ = diag(1/2, 1/2): x_i^T x_j (pi - pi) = 0 exactly, and the
    # off-diagonal entry of G∞ is (sin(pi) + 0) / (2 pi) = 0 exactly
    assert torch.allclose(H[:2, :2], torch.eye(2, dtype=torch.float64) / 2, rtol=0, atol=1e-15)
    assert H[0, 1] == 0.0 and H[1, 0] == 0.0
    assert G[0, 1] == 0.0 and G[1, 0] == 0.0
    # the same up to the scale for inputs of other norms
    Y = X * torch.arange(1.0, 7.0, dtype=torch.float64)[:, None]
    assert h_infinity(Y)[0, 1] == 0.0 and g_infinity(Y)[0, 1] == 0.0


def test_diagonals_are_exactly_half_the_squared_norms():
    X = sphere(30, 8, seed=10) * torch.linspace(0.5, 2.0, 30, dtype=torch.float64)[:, None]
    half = X.norm(dim=1) ** 2 / 2
    # θ_ii = 0 exactly; the arccos form had θ_ii ≈ 2e-8 from a cosine of 1 - 1 ulp
    assert torch.allclose(torch.diagonal(h_infinity(X)), half, rtol=1e-15, atol=0)
    assert torch.allclose(torch.diagonal(g_infinity(X)), half, rtol=1e-15, atol=0)


@pytest.mark.parametrize("d", [3, 50])
def test_agreement_with_the_arccos_formulas_at_generic_angles(d):
    X = sphere(40, d, seed=11) * torch.linspace(0.5, 2.0, 40, dtype=torch.float64)[:, None]
    H_ref, G_ref, cos = _arccos_formulas(X)
    generic = cos.abs() < 0.9  # away from parallel and antiparallel, arccos is accurate
    generic.fill_diagonal_(False)
    assert generic.sum() > 100
    H, G = h_infinity(X), g_infinity(X)
    assert torch.allclose(H[generic], H_ref[generic], rtol=0, atol=1e-12)
    assert torch.allclose(G[generic], G_ref[generic], rtol=0, atol=1e-12)
    assert torch.equal(H, H.T) and torch.equal(G, G.T)


def test_close_pairs_are_the_same_in_small_blocks(monkeypatch):
    X = sphere(300, 3, seed=12)  # crowded: hundreds of pairs within the arccos limit
    H, G = h_infinity(X), g_infinity(X)
    monkeypatch.setattr(kernels, "_CHORD_BLOCK", 7)  # a few pairs per block
    # the same up to an ulp (the vectorised norm may sum in another order)
    assert torch.allclose(h_infinity(X), H, rtol=0, atol=2.0**-53)
    assert torch.allclose(g_infinity(X), G, rtol=0, atol=2.0**-53)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu_with_close_pairs():
    X = with_near_parallel_pair(sphere(200, 3, seed=13), 0, 1, 1e-10)
    for f in (h_infinity, g_infinity):
        on_gpu = f(X.cuda())
        assert on_gpu.is_cuda and on_gpu.dtype == torch.float64
        assert torch.allclose(on_gpu.cpu(), f(X), rtol=0, atol=1e-14)
    lam = float(lambda_min(h_infinity(X.cuda())))
    assert lam == pytest.approx(1e-10 / (2 * math.pi), rel=1e-3, abs=0)


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


def test_entry_variance_is_the_variance_of_one_neurons_term():
    X = sphere(6, 3, seed=14) * torch.linspace(0.5, 2.0, 6, dtype=torch.float64)[:, None]
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(400_000, 3, generator=gen, dtype=torch.float64)
    active = (W @ X.T >= 0).to(torch.float64)  # (neurons, n)
    terms = (X @ X.T)[None] * active[:, :, None] * active[:, None, :]
    empirical = terms.var(dim=0)
    assert torch.allclose(entry_variance(X), empirical, rtol=0.02, atol=1e-4)
    # the diagonal term is ||x_i||^2 with probability 1/2
    assert torch.allclose(entry_variance(X).diagonal(), X.norm(dim=1) ** 4 / 4)


def test_standardized_entries_have_unit_mean_square():
    X = sphere(40, 30, seed=15)
    z = gram_deviation(X, [100, 3000], list(range(8)))["z_square_mean"]
    assert z.shape == (2, 8)
    assert float(z.mean()) == pytest.approx(1.0, abs=0.1)
    # a wrong mean (H∞ off by 10% of its off-diagonal) or a wrong 1/m shows at once
    H = h_infinity(X)
    wrong = H + 0.1 * (H - torch.diag(H.diagonal()))
    sigma2 = entry_variance(X)
    model = TwoLayerReLU.initialize(30, replica_grid([3000], range(4)), dtype=torch.float64)
    diff = gram_first_layer(model, X) - wrong
    upper = torch.triu(torch.ones(40, 40, dtype=torch.bool))
    assert float((3000 * diff[:, upper] ** 2 / sigma2[upper]).mean()) > 2.0
