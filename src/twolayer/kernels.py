"""Gram matrices of two-layer ReLU networks: infinite-width closed forms and finite-width ones.

All Gram matrices are computed in float64, as their smallest eigenvalues are the
quantities the theory is about.
"""

from __future__ import annotations

import math

import torch

from twolayer.model import TwoLayerReLU, replica_grid


def _cosines(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    X = X.to(torch.float64)
    norms = X.norm(dim=1)
    outer = norms[:, None] * norms[None, :]
    cos = ((X @ X.T) / outer).clamp(-1.0, 1.0)
    return cos, outer


def h_infinity(X: torch.Tensor) -> torch.Tensor:
    """The limiting Gram matrix of the first layer, du2019 Assumption 3.1 / arora2019 eq. (3).

        H∞_ij = E_{w ~ N(0, I)}[x_i^T x_j 1{w^T x_i >= 0, w^T x_j >= 0}]
              = x_i^T x_j (pi - arccos(cos θ_ij)) / (2 pi),

    where θ_ij is the angle between x_i and x_j (for unit vectors cos θ_ij = x_i^T x_j).
    The expectation does not depend on the scale of w, so it also holds for N(0, κ² I).
    """
    cos, outer = _cosines(X)
    return outer * cos * (math.pi - torch.arccos(cos)) / (2.0 * math.pi)


def g_infinity(X: torch.Tensor) -> torch.Tensor:
    """The limiting Gram matrix of the output layer (the order-1 arc-cosine kernel).

        G∞_ij = E_{w ~ N(0, I)}[relu(w^T x_i) relu(w^T x_j)]
              = ||x_i|| ||x_j|| (sin θ_ij + (pi - θ_ij) cos θ_ij) / (2 pi).

    It is the limit of the matrix G(t) of du2019 eq. (13) when both layers train.
    """
    cos, outer = _cosines(X)
    theta = torch.arccos(cos)
    return outer * (torch.sin(theta) + (math.pi - theta) * cos) / (2.0 * math.pi)


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


def kernel_prediction(H: torch.Tensor, r0: torch.Tensor, eta: float, steps: int) -> torch.Tensor:
    """||r(k)||_2 for k = 0..steps under the linear dynamics r(k+1) = (I - eta H) r(k).

    With a fixed Gram matrix H = H∞ this is the infinite-width limit of gradient descent on
    the summed square loss, r(k) = y - u(k) (du2019 Remark 3.1; arora2019 Section 4, where
    ||y - u(k)|| ≈ sqrt(sum_i (1 - eta λ_i)^(2k) (v_i^T y)^2)). ``r0`` may hold several
    initial residuals, shape (R, n); the result has shape (steps + 1, R).
    """
    lam, V = torch.linalg.eigh(H.to(torch.float64))
    coeffs = r0.to(torch.float64).reshape(-1, H.shape[0]) @ V  # (R, n) components v_i^T r0
    k = torch.arange(steps + 1, dtype=torch.float64)[:, None]
    factors = (1.0 - eta * lam)[None, :] ** (2 * k)  # (steps + 1, n)
    return (factors @ (coeffs**2).T).sqrt()


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
    ``spectral`` = ||H(0) - H∞||_2, ``entrywise`` = max_ij |H_ij(0) - H∞_ij| and
    ``lambda_min`` = λ_min(H(0)).
    """
    X = X.to(device=device, dtype=torch.float64)
    H = h_infinity(X)
    out: dict[str, list[torch.Tensor]] = {"spectral": [], "entrywise": [], "lambda_min": []}
    for m in widths:
        model = TwoLayerReLU.initialize(
            X.shape[1], replica_grid([m], seeds), dtype=torch.float64, device=device
        )
        diff = gram_first_layer(model, X) - H
        out["spectral"].append(torch.linalg.matrix_norm(diff, ord=2))
        out["entrywise"].append(diff.abs().amax(dim=(-2, -1)))
        out["lambda_min"].append(lambda_min(diff + H))
    return {k: torch.stack(v).cpu() for k, v in out.items()}
