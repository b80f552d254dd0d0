"""Synthetic data sets: points on the unit sphere and Gaussian labels (du2019 Section 5)."""

from __future__ import annotations

import torch

from twolayer.rng import generator


def sphere(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """``n`` points drawn uniformly on the unit sphere of R^d, float64, shape (n, d).

    The set-up of du2019 Section 5: normalized standard Gaussian vectors.
    """
    if n < 1 or d < 1:
        raise ValueError(f"need n >= 1 and d >= 1, got n={n}, d={d}")
    x = torch.randn(n, d, generator=generator(seed, "sphere", n, d), dtype=torch.float64)
    return x / x.norm(dim=1, keepdim=True)


def gaussian_labels(n: int, seed: int = 0, std: float = 1.0) -> torch.Tensor:
    """``n`` labels y_i ~ N(0, std^2), float64 (du2019 Section 5 uses std = 1)."""
    return std * torch.randn(n, generator=generator(seed, "labels", n), dtype=torch.float64)


def with_near_parallel_pair(x: torch.Tensor, i: int, j: int, angle: float) -> torch.Tensor:
    """A copy of the unit-norm points ``x`` where x_j is moved to angle ``angle`` from x_i.

    The new x_j stays in the plane spanned by the old x_i and x_j, so only the angle
    between the pair changes. As ``angle`` tends to 0 the pair becomes parallel, the case
    excluded by du2019 Theorem 3.1.
    """
    if not 0.0 <= angle <= torch.pi:
        raise ValueError(f"angle must lie in [0, pi], got {angle}")
    xi, xj = x[i], x[j]
    ortho = xj - (xj @ xi) * xi
    norm = ortho.norm()
    if norm < 1e-12:
        raise ValueError(f"points {i} and {j} are already parallel")
    out = x.clone()
    out[j] = torch.cos(torch.tensor(angle, dtype=x.dtype)) * xi + torch.sin(
        torch.tensor(angle, dtype=x.dtype)
    ) * (ortho / norm)
    return out
