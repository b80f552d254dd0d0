"""Closed-form Gram matrices against Monte Carlo estimates and independent computations."""

import math

import pytest
import torch

from twolayer import kernels, spectral
from twolayer.data import sphere, with_near_parallel_pair
from twolayer.kernels import (
    entry_variance,
    g_infinity,
    gram_deviation,
    gram_first_layer,
    gram_output_layer,
    h_infinity,
    lambda_min,
)
from twolayer.model import Replica, TwoLayerReLU, replica_grid
from twolayer.rng import generator
from twolayer.spectral import kernel_prediction


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


# --- H∞ by blocks of rows ---------------------------------------------------------------


def _exact_product_inputs():
    """300 inputs whose unit vectors have exactly representable inner products.

    Rows of ±1 in d = 256 have norm 16, so u_i has entries ±1/16 and every u_i^T u_j is a
    multiple of 1/256 that any summation order computes exactly: the matrix product cannot
    round differently in blocks, and H∞ by blocks must equal H∞ bit for bit. Copies with one
    or two signs flipped (cos = 0.992, 0.984), duplicates, negations and negated flips put
    pairs of every kind into the near-parallel and near-antiparallel chord path.
    """
    gen = torch.Generator().manual_seed(21)
    X = torch.randint(0, 2, (300, 256), generator=gen).to(torch.float64).mul_(2).sub_(1)
    for k in range(40):
        i, j = 2 * k, 2 * k + 1
        X[j] = X[i]
        if k % 4 == 0:  # duplicate
            continue
        X[j, : 1 + k % 2] *= -1  # one or two signs flipped
        if k % 4 == 3:
            X[j] *= -1  # near antiparallel
    X[100] = -X[101]  # exactly antiparallel
    return X * (2.0 ** torch.randint(-3, 4, (300, 1), generator=gen)).to(torch.float64)


@pytest.mark.parametrize("block_rows", [1, 2, 7, 64, 300, None])
def test_h_infinity_by_blocks_is_bitwise_the_one_shot_matrix(block_rows):
    X = _exact_product_inputs()
    H = h_infinity(X)
    out = torch.full((300, 300), float("nan"), dtype=torch.float64)
    blocked = h_infinity(X, block_rows=block_rows, out=out)
    assert blocked is out
    assert torch.equal(blocked, H)
    assert torch.equal(blocked, blocked.T)
    theta, _, _ = kernels._angles(X)
    close = (theta < 0.2) | (theta > math.pi - 0.2)
    assert int(close.sum()) - 300 == 2 * 41  # pairs off the diagonal took the chord path


def test_h_infinity_by_blocks_keeps_close_pairs_exact_on_generic_inputs(monkeypatch):
    X = sphere(300, 20, seed=22) * torch.linspace(0.5, 2.0, 300, dtype=torch.float64)[:, None]
    X = with_near_parallel_pair(X, 0, 1, 1e-10)
    X[3] = -2.0 * X[2]
    H = h_infinity(X)
    monkeypatch.setattr(kernels, "_CHORD_BLOCK", 5)  # several batches of close pairs
    H_small_batches = h_infinity(X)
    for block_rows in (1, 7):
        blocked = h_infinity(X, block_rows=block_rows)
        assert torch.equal(blocked, blocked.T)
        # the close pairs and the diagonal do not go through the matrix product: bitwise
        for i, j in [(0, 1), (1, 0), (2, 3), (3, 2)]:
            assert blocked[i, j] == H_small_batches[i, j]
            # another batching may round atan2 in another lane of the vector unit
            assert float(blocked[i, j]) == pytest.approx(float(H[i, j]), rel=1e-15, abs=0)
        assert torch.equal(blocked.diagonal(), H.diagonal())
        # elsewhere BLAS may round a product of another shape differently (a few ulps)
        assert torch.allclose(blocked, H, rtol=0, atol=1e-14)
    lam = float(lambda_min(h_infinity(X, block_rows=7)))
    assert lam == pytest.approx(float(lambda_min(H)), rel=1e-9, abs=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_h_infinity_by_blocks_on_cuda():
    X = with_near_parallel_pair(sphere(200, 3, seed=13), 0, 1, 1e-10)
    blocked = h_infinity(X.cuda(), block_rows=7)
    assert blocked.is_cuda and torch.equal(blocked, blocked.T)
    assert torch.allclose(blocked.cpu(), h_infinity(X), rtol=0, atol=1e-14)
    H = h_infinity(sphere(100, 10, seed=14))  # well conditioned, unlike the pair above
    Y = _labels(100, R=2)
    measure = spectral.complexity_measure(H.cuda(), Y.cuda())
    assert torch.allclose(measure.cpu(), spectral.complexity_measure(H, Y), rtol=1e-10)


def test_h_infinity_by_blocks_checks_its_arguments():
    X = sphere(10, 3, seed=23)
    with pytest.raises(ValueError, match="float64 \\(10, 10\\)"):
        h_infinity(X, out=torch.empty(10, 10, dtype=torch.float32))
    with pytest.raises(ValueError, match="block_rows"):
        h_infinity(X, block_rows=0)


# --- spectral tools (twolayer.spectral) ---------------------------------------------------


@pytest.fixture
def gram():
    """H∞ of 40 points, unit and of other norms, with a close pair for a small λ_min."""
    X = sphere(40, 6, seed=24) * torch.linspace(0.5, 1.5, 40, dtype=torch.float64)[:, None]
    return h_infinity(with_near_parallel_pair(X, 0, 1, 1e-3))


def _labels(n, R=3, seed=25):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(R, n, generator=gen, dtype=torch.float64)


def test_spectrum_is_descending_and_reconstructs_the_matrix(gram):
    lam, V = spectral.spectrum(gram)
    assert lam.dtype == V.dtype == torch.float64
    assert (lam[:-1] >= lam[1:]).all()
    # eigvalsh (no vectors) takes another LAPACK path: the same to rounding
    assert float(lam[-1]) == pytest.approx(float(lambda_min(gram)), rel=0, abs=1e-14)
    assert torch.allclose(V.T @ V, torch.eye(40, dtype=torch.float64), rtol=0, atol=1e-13)
    assert torch.allclose(V @ torch.diag(lam) @ V.T, gram, rtol=0, atol=1e-13)
    assert torch.allclose(gram @ V, V * lam, rtol=0, atol=1e-13)  # H v_i = λ_i v_i


def test_label_projections_are_the_components_on_the_eigenvectors(gram):
    lam, V = spectral.spectrum(gram)
    Y = _labels(40)
    P = spectral.label_projections(V, Y)
    assert P.shape == (3, 40)
    assert torch.allclose(P[1], spectral.label_projections(V, Y[1]), rtol=0, atol=1e-14)
    assert torch.allclose(P @ V.T, Y, rtol=0, atol=1e-13)  # y = sum_i (v_i^T y) v_i
    assert torch.allclose(P.square().sum(dim=1), Y.square().sum(dim=1), rtol=1e-13)
    unit = spectral.label_projections(V, Y, normalize=True)
    assert torch.allclose(unit.square().sum(dim=1), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(unit * Y.norm(dim=1, keepdim=True), P, rtol=0, atol=1e-13)


@pytest.mark.parametrize("eta_lambda_max", [0.5, 1.0, 1.9])  # 1.9: some 1 - eta λ_i < 0
def test_predicted_residual_equals_iterating_equation_7(gram, eta_lambda_max):
    lam, V = spectral.spectrum(gram)
    eta = eta_lambda_max / float(lam[0])
    Y = _labels(40)
    steps = 60
    pred = spectral.predicted_residual(lam, spectral.label_projections(V, Y), eta, steps)
    assert pred.shape == (steps + 1, 3)
    u = torch.zeros_like(Y)  # ũ(0) = 0, ũ(k+1) = ũ(k) - eta H (ũ(k) - y), for 3 label vectors
    for k in range(steps + 1):
        assert torch.allclose(pred[k], (Y - u).norm(dim=1), rtol=1e-11, atol=0)
        u = u - eta * (u - Y) @ gram  # H is symmetric
    # the same as kernel_prediction, which decomposes H itself (r(0) = y - ũ(0) = y)
    assert torch.allclose(pred, kernel_prediction(gram, Y, eta, steps), rtol=1e-12, atol=0)
    single = spectral.predicted_residual(lam, spectral.label_projections(V, Y[0]), eta, steps)
    assert single.shape == (steps + 1,)
    assert torch.allclose(single, pred[:, 0], rtol=1e-14, atol=0)


def test_predicted_residual_in_slices_of_k(gram, monkeypatch):
    lam, V = spectral.spectrum(gram)
    P = spectral.label_projections(V, _labels(40))
    whole = spectral.predicted_residual(lam, P, 0.3, 500)
    monkeypatch.setattr(spectral, "_POWER_BLOCK", 100)  # 2 values of k at a time
    sliced = spectral.predicted_residual(lam, P, 0.3, 500)
    assert torch.allclose(sliced, whole, rtol=1e-14, atol=0)
    assert torch.allclose(whole[0], P.norm(dim=1), rtol=1e-15, atol=0)  # ||y - ũ(0)|| = ||y||
    with pytest.raises(ValueError, match="do not match"):
        spectral.predicted_residual(lam[:-1], P, 0.3, 5)


def _explicit_complexity(H, y):
    return torch.sqrt(2.0 * (y @ torch.linalg.inv(H) @ y) / H.shape[0])


@pytest.mark.parametrize("n", [2, 5, 20, 60])
def test_complexity_measure_equals_the_explicit_inverse_formula(n):
    X = sphere(n, 8, seed=26) * torch.linspace(0.5, 2.0, n, dtype=torch.float64)[:, None]
    H = h_infinity(X)
    Y = _labels(n, R=4, seed=27)
    measured = spectral.complexity_measure(H, Y)
    assert measured.shape == (4,)
    expected = torch.stack([_explicit_complexity(H, y) for y in Y])
    assert torch.allclose(measured, expected, rtol=1e-10, atol=0)
    one = spectral.complexity_measure(H, Y[2])
    assert one.shape == () and float(one) == pytest.approx(float(expected[2]), rel=1e-10)
    # the same quantity from the eigendecomposition, sum_i (v_i^T y)^2 / λ_i
    lam, V = spectral.spectrum(H)
    quadratic = (spectral.label_projections(V, Y).square() / lam).sum(dim=1)
    assert torch.allclose(spectral.inverse_quadratic_form(H, Y), quadratic, rtol=1e-10)
    # Lemma 5.3's sqrt(y^T H^-1 y) is the measure without the factor sqrt(2 / n)
    norms = spectral.interpolant_norm(H, Y)
    assert torch.allclose(norms * math.sqrt(2.0 / n), measured, rtol=1e-14, atol=0)


def test_complexity_measure_is_larger_for_labels_on_small_eigenvalues(gram):
    lam, V = spectral.spectrum(gram)
    top, bottom = V[:, 0], V[:, -1]
    # y = v_i gives sqrt(2 / (n λ_i)) exactly
    for v, value in ((top, lam[0]), (bottom, lam[-1])):
        c = spectral.complexity_measure(gram, v)
        assert float(c) == pytest.approx(math.sqrt(2.0 / (40 * float(value))), rel=1e-8)


@pytest.mark.parametrize(
    "H",
    [
        torch.diag(torch.tensor([1.0, 0.0, 1.0], dtype=torch.float64)),  # singular
        torch.tensor([[1.0, 2.0], [2.0, 1.0]], dtype=torch.float64),  # indefinite
    ],
)
def test_complexity_measure_refuses_a_matrix_that_is_not_positive_definite(H):
    with pytest.raises(ValueError, match="not positive definite"):
        spectral.complexity_measure(H, torch.ones(H.shape[0], dtype=torch.float64))


def test_worst_case_labels_are_the_lambda_min_eigenvector(gram):
    lam, V = spectral.spectrum(gram)
    v = spectral.worst_case_labels(lam, V)
    assert v.shape == (40,) and float(v.norm()) == pytest.approx(1.0, abs=1e-14)
    assert float(v[v.abs().argmax()]) > 0  # the sign convention
    lam_min = float(lam[-1])
    assert lam_min == pytest.approx(float(lambda_min(gram)), rel=0, abs=1e-14)
    assert torch.allclose(gram @ v, lam_min * v, rtol=0, atol=1e-14)
    # whatever the order of the eigenvalues it is handed
    ascending = spectral.worst_case_labels(lam.flip(0), V.flip(1))
    assert torch.equal(ascending, v)
    # its projections are e_n, and its residual decays at exactly (1 - eta λ_min)^k
    eta = 1.0 / float(lam[0])
    proj = spectral.label_projections(V, v)
    assert torch.allclose(proj.abs(), torch.eye(40, dtype=torch.float64)[-1], atol=1e-14)
    k = torch.arange(201, dtype=torch.float64)
    pred = spectral.predicted_residual(lam, proj, eta, 200)
    assert torch.allclose(pred, (1.0 - eta * lam_min) ** k, rtol=1e-12, atol=0)
    # and no unit label vector decays more slowly (eta λ_max <= 1)
    Y = _labels(40, R=20, seed=28)
    Y = Y / Y.norm(dim=1, keepdim=True)
    others = spectral.predicted_residual(lam, spectral.label_projections(V, Y), eta, 200)
    assert (others <= pred[:, None] * (1 + 1e-12)).all()
