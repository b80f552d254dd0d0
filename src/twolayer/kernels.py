"""Gram matrices of two-layer ReLU networks: infinite-width closed forms and finite-width ones.

All Gram matrices are computed in float64, as their smallest eigenvalues are the
quantities the theory is about.
"""

from __future__ import annotations

import math

import torch

from twolayer.model import TwoLayerReLU, replica_grid

# Pairs with |cos θ| above this (angle within about 11.5 degrees of 0 or pi; a chord
# ||u_i -+ u_j|| below 0.2) get their angle from the chords instead of arccos.
_ARCCOS_LIMIT = 0.98
# Elements of the (pairs, d) blocks gathered at a time when measuring those chords.
_CHORD_BLOCK = 1 << 21


def _set_symmetric(
    out: torch.Tensor, i: torch.Tensor, j: torch.Tensor, value: torch.Tensor
) -> None:
    """out[i, j] = out[j, i] = value, elementwise over the index tensors."""
    out[i, j] = value
    out[j, i] = value


def _angles(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Angles between the rows of ``X``: (θ, π - θ, row norms), all float64, O(n^2) memory.

    With u_i = x_i / ||x_i|| and c = U U^T (one matrix product), θ_ij = arccos(c_ij) wherever
    |c_ij| <= _ARCCOS_LIMIT. There the rounding error δc of the product moves θ by at most
    |δc| / sin θ <= 5 |δc|, i.e. to within a few ulps, and π - θ is formed by subtraction.

    Closer to parallel or antiparallel, arccos loses half of the digits (arccos(1 - ε) ≈
    sqrt(2ε), so θ = 1e-8 is indistinguishable from 0), and those pairs are redone as

        θ_ij = 2 atan2(||u_i - u_j||, ||u_i + u_j||),
        π - θ_ij = 2 atan2(||u_i + u_j||, ||u_i - u_j||),

    where the short chord (||u_i - u_j|| near parallel, ||u_i + u_j|| near antiparallel) is
    the norm of the difference (sum) of the two rows, which is accurate to a few ulps of its
    own size, and the long chord is sqrt(4 - short^2), where nothing cancels. So θ near 0
    and π - θ near π keep their relative accuracy, and the diagonal is θ = 0 exactly. For
    |c| <= _ARCCOS_LIMIT the same atan2 form with both chords sqrt(2 ∓ 2c) taken from the
    product would be arccos(c) again, so nothing is lost by using arccos there.

    The rows are gathered in blocks of at most _CHORD_BLOCK elements, so typical inputs
    (few close pairs) cost about the matrix product and an arccos, and a data set made of
    tight clusters costs O(pairs d) extra but no more than O(n^2) memory. Measuring every
    chord directly with ``torch.cdist(..., compute_mode="donot_use_mm_for_euclid_dist")``
    was 14x slower than the whole old kernel at n = 2000, d = 1000 on CPU (and twice that
    is needed, for the differences and the sums), as it does its O(n^2 d) work outside BLAS.
    """
    X = X.to(torch.float64)
    norms = torch.linalg.vector_norm(X, dim=1)
    U = X / norms[:, None]
    theta = U @ U.T
    pairs = (theta > _ARCCOS_LIMIT).logical_or_(theta < -_ARCCOS_LIMIT).triu_(1).nonzero()
    i, j = pairs.unbind(1)
    sign = theta[i, j].sign_()  # +1 for a pair near parallel, -1 near antiparallel
    theta = theta.clamp_(-1.0, 1.0).arccos_()
    theta.diagonal().zero_()
    rest = math.pi - theta
    step = max(1, _CHORD_BLOCK // max(1, U.shape[1]))
    for start in range(0, pairs.shape[0], step):
        bi, bj, bs = i[start : start + step], j[start : start + step], sign[start : start + step]
        angle, other = _chord_angles(U, bi, bj, bs)
        _set_symmetric(theta, bi, bj, angle)
        _set_symmetric(rest, bi, bj, other)
    return theta, rest, norms


def _chord_angles(
    U: torch.Tensor, i: torch.Tensor, j: torch.Tensor, sign: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(θ_ij, π - θ_ij) from the chords between unit rows, for pairs near (anti)parallel.

    ``sign`` is +1 for a pair near parallel and -1 near antiparallel; see ``_angles``. The
    short chord is ||u_i -+ u_j|| = ||u_j -+ u_i|| exactly, so (i, j) and (j, i) agree.
    """
    # the short chord ||u_i -+ u_j|| from the rows; the long one from a^2 + b^2 = 4
    short = torch.linalg.vector_norm(U[i].addcmul_(U[j], sign[:, None], value=-1.0), dim=1)
    long = (4.0 - short.square()).sqrt_()
    small = torch.atan2(short, long).mul_(2.0)  # the angle to the nearer of u_j, -u_j
    large = torch.atan2(long, short).mul_(2.0)  # pi minus that
    parallel = sign > 0
    return small.where(parallel, large), large.where(parallel, small)


def _h_of_angles(theta: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    """cos θ (π - θ) / (2π) from θ and π - θ, in place in ``theta``: H∞ for unit inputs."""
    return theta.cos_().mul_(rest).div_(2.0 * math.pi)


def h_infinity(
    X: torch.Tensor, *, block_rows: int | None = None, out: torch.Tensor | None = None
) -> torch.Tensor:
    """The limiting Gram matrix of the first layer, du2019 Assumption 3.1 / arora2019 eq. (3).

        H∞_ij = E_{w ~ N(0, I)}[x_i^T x_j 1{w^T x_i >= 0, w^T x_j >= 0}]
              = x_i^T x_j (pi - θ_ij) / (2 pi)
              = ||x_i|| ||x_j|| cos θ_ij (pi - θ_ij) / (2 pi),

    where θ_ij is the angle between x_i and x_j (for unit vectors cos θ_ij = x_i^T x_j).
    The expectation does not depend on the scale of w, so it also holds for N(0, κ² I).

    The angles come from ``_angles`` (accurate near parallel and antiparallel pairs). The
    factor x_i^T x_j is formed as ||x_i|| ||x_j|| cos θ_ij with cos θ_ij evaluated at that θ
    rather than taken from the product x_i^T x_j: near θ = 0 it is then correct to half an
    ulp and exactly 1 on the diagonal, while a computed dot product is off by up to about
    d ε ||x_i|| ||x_j||. For a close pair λ_min ≈ θ / (2 pi) is the difference H∞_ii - H∞_ij
    (unit inputs), so it inherits the absolute error of the entries: about 1e-16, the
    rounding of an entry near 1/2, i.e. a relative 1e-6 down to θ ≈ 1e-9 (the old arccos
    form lost all digits of λ_min below θ ≈ 1e-8 and was not PSD at θ = 1e-9).

    Memory: by default the whole matrix is formed at once, with (n, n) float64 temporaries
    that take the peak to about three times the result. With ``block_rows`` or ``out`` it
    is built by blocks of rows written into ``out`` (a float64 (n, n) tensor on the device
    of ``X``; allocated when not given): the peak is the result plus a few
    (block_rows, n) temporaries, the unit inputs and O(close pairs). ``block_rows``
    defaults to about 2^22 entries per block (32 MB). Measured at n = 10^4, d = 784 on 2
    CPU cores: 5.8 s and 2.2 GiB above the inputs by default; 1.7 s and 0.85 GiB (the
    result's 0.75 GiB and 0.1 GiB more) by blocks, which also does each pair's product and
    arc cosine once, not twice. The blocks give the same formulas in the same order, so
    the same bits wherever BLAS rounds the product of a block like that of the whole
    matrix (it may not: a few ulps of cos θ, moving entries by about 1e-15 ||x_i|| ||x_j||),
    and the result is exactly symmetric.
    """
    if block_rows is not None or out is not None:
        return _h_infinity_by_blocks(X, block_rows, out)
    theta, rest, norms = _angles(X)
    return _h_of_angles(theta, rest).mul_(torch.outer(norms, norms))


def _h_infinity_by_blocks(
    X: torch.Tensor, block_rows: int | None, out: torch.Tensor | None
) -> torch.Tensor:
    """h_infinity(X) built block of rows by block of rows into ``out``.

    Each block of rows i in a:s is formed against the columns j >= a only and mirrored into
    the columns a:s of the rows below it, so the result is exactly symmetric and the matrix
    product and arc cosines are done once per pair. The pairs that ``_angles`` redoes from
    the chords (|cos θ| > _ARCCOS_LIMIT, i < j) are collected in the same row-major order
    and redone afterwards in the same batches of pairs: a batch's elementwise functions
    (atan2) may round a pair differently by its position in the batch, so matching the
    batches is what makes the entries bitwise those of the one-shot computation.
    """
    X = X.to(torch.float64)
    n = X.shape[0]
    if out is None:
        out = torch.empty(n, n, dtype=torch.float64, device=X.device)
    elif out.shape != (n, n) or out.dtype != torch.float64 or out.device != X.device:
        raise ValueError(
            f"out must be a float64 ({n}, {n}) tensor on {X.device}, "
            f"got {out.dtype} {tuple(out.shape)} on {out.device}"
        )
    if block_rows is None:
        block_rows = max(1, (1 << 22) // max(1, n))
    if block_rows < 1:
        raise ValueError(f"block_rows must be a positive integer, got {block_rows}")
    norms = torch.linalg.vector_norm(X, dim=1)
    U = X / norms[:, None]
    close: list[torch.Tensor] = []  # (pairs, 2) global indices i < j, row-major
    signs: list[torch.Tensor] = []
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        m = stop - start
        cos = U[start:stop] @ U[start:].T  # rows start:stop, columns start:n
        near = (cos > _ARCCOS_LIMIT).logical_or_(cos < -_ARCCOS_LIMIT).triu_(1).nonzero()
        signs.append(cos[near[:, 0], near[:, 1]].sign_())
        close.append(near.add_(start))
        theta = cos.clamp_(-1.0, 1.0).arccos_()
        theta.diagonal().zero_()
        rest = math.pi - theta
        K = _h_of_angles(theta, rest)
        del rest
        K.mul_(torch.outer(norms[start:stop], norms[start:]))
        # the square block on the diagonal from its upper triangle, the rest mirrored
        upper = torch.ones(m, m, dtype=torch.bool, device=X.device).triu_()
        out[start:stop, start:stop] = torch.where(upper, K[:, :m], K[:, :m].T)
        out[start:stop, stop:] = K[:, m:]
        out[stop:, start:stop] = K[:, m:].T
        del K, theta, cos, upper
    pairs = torch.cat(close)
    sign = torch.cat(signs)
    del close, signs
    i, j = pairs.unbind(1)
    step = max(1, _CHORD_BLOCK // max(1, U.shape[1]))
    for first in range(0, pairs.shape[0], step):
        bi, bj, bs = i[first : first + step], j[first : first + step], sign[first : first + step]
        angle, other = _chord_angles(U, bi, bj, bs)
        value = _h_of_angles(angle, other).mul_(norms[bi] * norms[bj])
        _set_symmetric(out, bi, bj, value)
    return out


def g_infinity(X: torch.Tensor) -> torch.Tensor:
    """The limiting Gram matrix of the output layer (the order-1 arc-cosine kernel).

        G∞_ij = E_{w ~ N(0, I)}[relu(w^T x_i) relu(w^T x_j)]
              = ||x_i|| ||x_j|| (sin θ_ij + (pi - θ_ij) cos θ_ij) / (2 pi).

    It is the limit of the matrix G(t) of du2019 eq. (13) when both layers train.

    The angles come from ``_angles``; sin θ is evaluated as sin(min(θ, pi - θ)), which is
    accurate at both ends and exactly 0 for parallel and antiparallel pairs. For two unit
    inputs at a small angle the smallest eigenvalue of G∞ is only about θ² / 4, which is
    below the rounding of the entries once θ < 1e-8: G∞ is then PSD up to rounding only.
    """
    theta, rest, norms = _angles(X)
    sin = torch.minimum(theta, rest).sin_()
    K = theta.cos_().mul_(rest).add_(sin).div_(2.0 * math.pi)
    return K.mul_(torch.outer(norms, norms))


def _cosines(
    X: torch.Tensor, Y: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """cos of the angle between every row of X and of Y (Y = X when None), clamped to
    [-1, 1], and the rows' norms, all float64; a zero row has cosine 0 with everything."""
    X = X.to(torch.float64)
    Y = X if Y is None else Y.to(torch.float64)
    if X.shape[-1] != Y.shape[-1]:
        raise ValueError(f"X and Y have different dimensions {X.shape[-1]} and {Y.shape[-1]}")
    nx = torch.linalg.vector_norm(X, dim=1)
    ny = torch.linalg.vector_norm(Y, dim=1)
    ux = X / torch.where(nx > 0, nx, torch.ones_like(nx))[:, None]
    uy = Y / torch.where(ny > 0, ny, torch.ones_like(ny))[:, None]
    return (ux @ uy.T).clamp_(-1.0, 1.0), nx, ny


def random_features_kernel(
    X: torch.Tensor, Y: torch.Tensor | None = None, *, weights: str = "gaussian"
) -> torch.Tensor:
    """k(x, x') = E_w[relu(w^T x) relu(w^T x')] between the rows of X and Y, float64.

    The kernel of the random-features model f(x) = (1/m) sum_j a_j relu(w_j^T x) with the
    w_j frozen at their random start, as m grows (bach2022 Section 5.4, the RKHS whose
    max-margin classifier Theorem 4 is about). For w ~ N(0, I_d) it is the order-1
    arc-cosine kernel of :func:`g_infinity`,

        k(x, x') = ||x|| ||x'|| (sin φ + (π - φ) cos φ) / (2π),   φ = angle(x, x'),

    and for w uniform on the unit sphere S^{d-1} the same divided by d (E[w w^T] = I/d).
    Unlike :func:`g_infinity` it takes two sets of points (training set against a grid)
    and forms sin φ as sqrt(1 - cos² φ); the value is insensitive to the rounding of φ
    near φ = 0, where dk/dφ vanishes. A zero input gives k = 0.
    """
    if weights not in ("gaussian", "sphere"):
        raise ValueError(f"weights = {weights!r} is not allowed: expected 'gaussian' or 'sphere'")
    cos, nx, ny = _cosines(X, Y)
    sin = (1.0 - cos * cos).clamp_(min=0.0).sqrt_()
    K = (math.pi - torch.arccos(cos)).mul_(cos).add_(sin).div_(2.0 * math.pi)
    K.mul_(torch.outer(nx, ny))
    return K / X.shape[1] if weights == "sphere" else K


def limiting_tangent_kernel(
    X: torch.Tensor, Y: torch.Tensor | None = None, *, trained: str = "both"
) -> torch.Tensor:
    """The infinite-width tangent kernel between the rows of X and Y, float64.

    For f(x) = m^-1/2 sum_r a_r relu(w_r^T x) with w_r ~ N(0, I), a_r = ±1, the tangent
    kernel of the trained layers tends to

        H∞(x, x') = x^T x' (pi - φ) / (2 pi)                       (first layer, du2019 (6)),
        G∞(x, x') = ||x|| ||x'|| (sin φ + (pi - φ) cos φ) / (2 pi)  (output layer, du2019 (13)),

    or their sum when both layers train (du2019 Section 4 and Appendix A), φ = angle(x, x').
    Unlike :func:`h_infinity` and :func:`g_infinity` it takes two point sets (a training
    set against test points); it forms φ from the clamped cosine, so it is meant for
    inputs in general position, not for the nearly parallel pairs those two functions
    resolve. A zero input gives 0.
    """
    _check_trained(trained)
    cos, nx, ny = _cosines(X, Y)
    rest = math.pi - torch.arccos(cos)
    scale = torch.outer(nx, ny) / (2.0 * math.pi)
    K = torch.zeros_like(cos)
    if trained in ("first", "both"):
        K += cos * rest * scale
    if trained in ("output", "both"):
        K += ((1.0 - cos * cos).clamp_(min=0.0).sqrt_() + rest * cos) * scale
    return K


def _check_trained(trained: str) -> None:
    if trained not in ("first", "output", "both"):
        raise ValueError(
            f"trained = {trained!r} is not allowed: expected 'first', 'output' or 'both'"
        )


def tangent_kernel(model: TwoLayerReLU, X: torch.Tensor, Z: torch.Tensor | None = None):
    """The empirical tangent kernel of the layers that train, every replica, (R, n, n).

    sum over the trained parameters p of df(x_i)/dp df(x_j)/dp: the first-layer Gram
    matrix H (du2019 eq. (6)), the output-layer one G (eq. (13)) or H + G.
    """
    if Z is None:
        Z = model.preactivations(X.to(model.dtype))
    K = None
    if model.trained in ("first", "both"):
        K = gram_first_layer(model, X, Z)
    if model.trained in ("output", "both"):
        G = gram_output_layer(model, X, Z)
        K = G if K is None else K.add_(G)
    assert K is not None
    return K


def _per_replica_gram(model: TwoLayerReLU, features: torch.Tensor) -> torch.Tensor:
    """sum_r features_ri features_rj within each replica: (M, n) -> (R, n, n), float64."""
    grams = []
    for block in model.replica_blocks(features.to(torch.float64)):
        grams.append(block.T @ block)
    return torch.stack(grams)


def gram_first_layer(model: TwoLayerReLU, X: torch.Tensor, Z: torch.Tensor | None = None):
    """The finite-width Gram matrix H of the first layer for every replica, (R, n, n).

        H_ij = c_m^2 x_i^T x_j sum_r a_r^2 1{w_r^T x_i >= 0, w_r^T x_j >= 0},

    which is du2019 eq. (6) for c_m = 1/sqrt(m) and a_r = ±1. It only depends on the
    activation patterns (and on |a_r| when the output layer has moved).
    """
    if Z is None:
        Z = model.preactivations(X.to(model.dtype))
    weight = (model.a * model.output_scale).to(torch.float64).abs()
    features = (Z >= 0).to(torch.float64) * weight[:, None]
    X64 = X.to(device=Z.device, dtype=torch.float64)
    return (X64 @ X64.T) * _per_replica_gram(model, features)


def gram_output_layer(model: TwoLayerReLU, X: torch.Tensor, Z: torch.Tensor | None = None):
    """The finite-width Gram matrix of the output layer for every replica, (R, n, n).

    G_ij = c_m^2 sum_r relu(w_r^T x_i) relu(w_r^T x_j)     (du2019 eq. (13)).
    """
    if Z is None:
        Z = model.preactivations(X.to(model.dtype))
    features = torch.relu(Z).to(torch.float64) * model.output_scale.to(torch.float64)[:, None]
    return _per_replica_gram(model, features)


def lambda_min(H: torch.Tensor) -> torch.Tensor:
    """Smallest eigenvalue of symmetric matrices, shape (..., n, n) -> (...), in float64."""
    return torch.linalg.eigvalsh(H.to(torch.float64))[..., 0]


def entry_variance(X: torch.Tensor) -> torch.Tensor:
    """Variance of one neuron's term of H_ij(0), for every pair: (n, n), float64.

    H_ij(0) of du2019 eq. (6) averages m independent copies of
    x_i^T x_j 1{w^T x_i >= 0, w^T x_j >= 0}, w ~ N(0, I), which equals x_i^T x_j with
    probability p_ij = (pi - θ_ij) / (2 pi) and 0 otherwise, so its variance is
    (x_i^T x_j)^2 p_ij (1 - p_ij), and H_ij(0) has variance (that) / m. The angle is taken
    here as a plain arc cosine, independently of :func:`h_infinity`, so that comparing the
    two tests the closed form of H∞ as well.
    """
    X = X.to(torch.float64)
    norms = X.norm(dim=1)
    inner = X @ X.T
    cos = (inner / (norms[:, None] * norms[None, :])).clamp(-1.0, 1.0)
    p = (math.pi - torch.arccos(cos)) / (2.0 * math.pi)
    return inner**2 * p * (1.0 - p)


def gram_deviation(
    X: torch.Tensor,
    widths: list[int],
    seeds: list[int],
    *,
    device: torch.device | str = "cpu",
) -> dict[str, torch.Tensor]:
    """How far the Gram matrix at initialization, H(0), is from H∞ (du2019 Lemma 3.1).

    For every width, the networks of all ``seeds`` are drawn as one batch (w_r ~ N(0, I)).
    Returns tensors of shape (len(widths), len(seeds)):
    ``spectral`` = ||H(0) - H∞||_2, ``entrywise`` = max_ij |H_ij(0) - H∞_ij|,
    ``lambda_min`` = λ_min(H(0)) and ``z_square_mean``, the mean over the pairs i <= j of
    z_ij^2 with z_ij = sqrt(m) (H_ij(0) - H∞_ij) / sigma_ij and sigma_ij^2 from
    :func:`entry_variance`. Each z_ij has mean 0 and variance 1, so ``z_square_mean`` is
    close to 1 at every width when H∞ and H(0) are both right.
    """
    X = X.to(device=device, dtype=torch.float64)
    H = h_infinity(X)
    sigma2 = entry_variance(X)
    n = X.shape[0]
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool, device=X.device))
    upper &= sigma2 > 1e-12 * sigma2.diagonal().min()  # pairs whose term is not constant
    out: dict[str, list[torch.Tensor]] = {
        "spectral": [],
        "entrywise": [],
        "lambda_min": [],
        "z_square_mean": [],
    }
    for m in widths:
        model = TwoLayerReLU.initialize(
            X.shape[1], replica_grid([m], seeds), dtype=torch.float64, device=device
        )
        diff = gram_first_layer(model, X) - H
        out["spectral"].append(torch.linalg.matrix_norm(diff, ord=2))
        out["entrywise"].append(diff.abs().amax(dim=(-2, -1)))
        out["lambda_min"].append(lambda_min(diff + H))
        out["z_square_mean"].append((m * diff[:, upper] ** 2 / sigma2[upper]).mean(dim=-1))
    return {k: torch.stack(v).cpu() for k, v in out.items()}
