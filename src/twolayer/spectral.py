"""Spectral tools for a fixed Gram matrix such as H∞: the eigendecomposition, the labels'
components on the eigenvectors, the residual of the linearised gradient descent
(arora2019 Section 4) and the label complexity y^T (H∞)^-1 y (arora2019 Section 5).

Everything is float64. The functions take a Gram matrix (e.g. from
:func:`twolayer.kernels.h_infinity`, which builds H∞ by blocks of rows for large n) or its
eigendecomposition, never the inputs, so they serve H∞, a finite-width H(0) or any other
symmetric positive semi-definite kernel matrix alike.

Conventions: eigenvalues come in descending order, λ_1 >= ... >= λ_n, as the paper indexes
them (Figure 1(b) plots them so), with the eigenvectors as the columns v_i of V; a label
vector y has shape (n,), or (R, n) for R label vectors handled at once.
"""

from __future__ import annotations

import torch

# Entries of the (steps, n) table of powers (1 - eta λ_i)^(2k) formed at a time.
_POWER_BLOCK = 1 << 22


def spectrum(H: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending) and orthonormal eigenvectors of a symmetric H, in float64.

    Returns ``(eigenvalues, V)`` with ``H = V diag(eigenvalues) V^T``: the decomposition
    H∞ = sum_i λ_i v_i v_i^T behind arora2019 eq. (8), λ_1 >= ... >= λ_n, v_i = ``V[:, i]``.
    Batched input (..., n, n) gives (..., n) and (..., n, n). Only the lower triangle of H
    is read (torch.linalg.eigh). The sign of each eigenvector is arbitrary.

    Cost: LAPACK's divide-and-conquer (syevd) needs the eigenvectors' (n, n) output and a
    workspace of about 2 n^2 floats besides H, about four matrices in all, and O(n^3)
    time. Measured at n = 10^4 on 2 CPU cores (MKL): 110-118 s; the decomposition added
    2.2 GiB of peak memory to the 0.75 GiB of H (3.0 GiB in all). The flip to descending
    order copies V once after the workspace is freed, below that peak.
    """
    eigenvalues, V = torch.linalg.eigh(H.to(torch.float64))
    return eigenvalues.flip(-1), V.flip(-1)


def label_projections(
    eigenvectors: torch.Tensor, y: torch.Tensor, *, normalize: bool = False
) -> torch.Tensor:
    """The components v_i^T y of labels on the eigenvectors (arora2019 eq. (8), Figure 1(b)).

    ``eigenvectors`` is V from :func:`spectrum` (columns v_i, in its order); ``y`` has shape
    (n,) or (R, n), and so has the result, entry i being v_i^T y. Not normalised by
    default: the squares then sum to ||y||^2 (V is orthogonal), and they are what eq. (8)
    weights. With ``normalize=True`` each label vector is divided by its norm first, so the
    squares sum to 1 (a distribution of y over the eigenvectors). The signs follow the
    arbitrary signs of the eigenvectors; plots show |v_i^T y|.
    """
    V = eigenvectors.to(torch.float64)
    y = y.to(device=V.device, dtype=torch.float64)
    if y.shape[-1] != V.shape[0]:
        raise ValueError(f"labels of length {y.shape[-1]} for {V.shape[0]} eigenvectors")
    if normalize:
        y = y / torch.linalg.vector_norm(y, dim=-1, keepdim=True)
    return y @ V


def _spectral_inputs(
    eigenvalues: torch.Tensor, projections: torch.Tensor, steps: int
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Checked float64 λ (n,), squared components (v_i^T y)^2 as (R, n), and whether y was (n,)."""
    lam = eigenvalues.to(torch.float64)
    coeffs = projections.to(device=lam.device, dtype=torch.float64)
    if lam.dim() != 1 or coeffs.dim() not in (1, 2) or coeffs.shape[-1] != lam.shape[0]:
        raise ValueError(
            f"eigenvalues of shape {tuple(lam.shape)} and projections of shape "
            f"{tuple(coeffs.shape)} do not match: expected (n,) and (n,) or (R, n)"
        )
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    return lam, coeffs.reshape(-1, lam.shape[0]).square(), coeffs.dim() == 1


def predicted_residual(
    eigenvalues: torch.Tensor, projections: torch.Tensor, eta: float, steps: int
) -> torch.Tensor:
    """||y - ũ(k)|| for k = 0..steps: the prediction of arora2019 eq. (8) (Theorem 4.1).

    ũ(k) follows the linear recursion of arora2019 eq. (7), ũ(0) = 0 and
    ũ(k+1) = ũ(k) - eta H (ũ(k) - y), so y - ũ(k) = (I - eta H)^k y and

        ||y - ũ(k)||^2 = sum_i (1 - eta λ_i)^(2k) (v_i^T y)^2.

    ``eigenvalues`` (n,) and ``projections`` (n,) or (R, n), the v_i^T y of
    :func:`label_projections` unnormalised, in the same order. Returns (steps + 1,) or
    (steps + 1, R). Theorem 4.1 says the network's ||y - u(k)|| is within ε of this for
    wide enough networks, small initialization and eta = O(λ_0 / n^2); here eta is
    whatever the caller gives (the sum is exact for the linear recursion at any eta).
    The powers are taken directly, (1 - eta λ)^(2k), not by repeated multiplication, and
    formed in slices of k of at most 2^22 entries.
    """
    lam, squares, single = _spectral_inputs(eigenvalues, projections, steps)
    weights = squares.T  # (n, R)
    base = 1.0 - eta * lam
    k = torch.arange(steps + 1, dtype=torch.float64, device=lam.device)
    out = torch.empty(steps + 1, weights.shape[1], dtype=torch.float64, device=lam.device)
    rows = max(1, _POWER_BLOCK // max(1, lam.shape[0]))
    for start in range(0, steps + 1, rows):
        powers = torch.pow(base[None, :], 2.0 * k[start : start + rows, None])
        out[start : start + rows] = powers @ weights
    out = out.sqrt_()
    return out[:, 0] if single else out


def predicted_movement(
    eigenvalues: torch.Tensor, projections: torch.Tensor, eta: float, steps: int
) -> torch.Tensor:
    """||W̃(k) - W̃(0)||_F for k = 0..steps: the auxiliary sequence of arora2019 eq. (11).

    Eq. (11) is gradient descent on the first layer with the features frozen at Z:
    W̃(0) = 0, vec W̃(k+1) = vec W̃(k) - eta Z (Z^T vec W̃(k) - y), with H = Z^T Z =
    sum_i λ_i v_i v_i^T. As in arora2019 Section 5.2, Z^T vec W̃(k) = (I - (I - eta H)^k) y,
    so vec W̃(k) = Z H^+ (I - (I - eta H)^k) y and

        ||W̃(k)||_F^2 = sum_i (1 - (1 - eta λ_i)^k)^2 (v_i^T y)^2 / λ_i,

    which tends to y^T H^-1 y as k -> infinity when 0 < eta λ_i < 2 for all i (Section
    5.2's ||W̃(∞) - W̃(0)||_F = sqrt(y^T H^-1 y)). With H = H∞ in place of H(0) (the
    infinite-width kernel) it is the kernel regime's prediction of ||W(k) - W(0)||_F, the
    quantity Lemma 5.3 bounds, in the model's 1/sqrt(m) scaling. A zero eigenvalue
    contributes nothing (its limit (eta k)^2 λ -> 0); negative ones are treated as zero.

    ``eigenvalues`` (n,) and ``projections`` (n,) or (R, n), the unnormalised v_i^T y of
    :func:`label_projections`, as for :func:`predicted_residual`; returns (steps + 1,) or
    (steps + 1, R). 1 - (1 - eta λ)^k is taken as -expm1(k log1p(-eta λ)) where
    0 < eta λ < 1, which keeps its digits when eta λ k is small.
    """
    lam, squares, single = _spectral_inputs(eigenvalues, projections, steps)
    positive = lam > 0
    safe = torch.where(positive, lam, torch.ones_like(lam))
    weights = (squares / safe).T  # (n, R)
    weights[~positive] = 0.0
    rate = eta * safe
    small = (rate > 0) & (rate < 1)
    log_base = torch.log1p(-torch.where(small, rate, torch.zeros_like(rate)))
    k = torch.arange(steps + 1, dtype=torch.float64, device=lam.device)
    out = torch.empty(steps + 1, weights.shape[1], dtype=torch.float64, device=lam.device)
    rows = max(1, _POWER_BLOCK // max(1, lam.shape[0]))
    for start in range(0, steps + 1, rows):
        ks = k[start : start + rows, None]
        gained = torch.where(
            small[None, :],
            -torch.expm1(ks * log_base[None, :]),
            1.0 - torch.pow(1.0 - rate[None, :], ks),
        )
        out[start : start + rows] = gained.square() @ weights
    out = out.sqrt_()
    return out[:, 0] if single else out


def worst_case_labels(eigenvalues: torch.Tensor, eigenvectors: torch.Tensor) -> torch.Tensor:
    """The unit eigenvector of λ_min: arora2019's worst-case labels (Figure 1, Section 4).

    By eq. (8), labels y = v_n (||y|| = 1) have the slowest predicted decay of all unit
    labels, ||y - ũ(k)|| = |1 - eta λ_min|^k. The eigenvalues may be in either order (the
    smallest is looked up); the sign is fixed so that the entry of largest magnitude is
    positive. Returns a new (n,) float64 tensor.
    """
    if eigenvalues.dim() != 1 or eigenvectors.shape != (eigenvalues.shape[0],) * 2:
        raise ValueError(
            f"expected eigenvalues (n,) and eigenvectors (n, n), got "
            f"{tuple(eigenvalues.shape)} and {tuple(eigenvectors.shape)}"
        )
    v = eigenvectors[:, int(torch.argmin(eigenvalues))].to(torch.float64).clone()
    if v[int(torch.argmax(v.abs()))] < 0:
        v.neg_()
    return v


def _cholesky(H: torch.Tensor) -> torch.Tensor:
    """The lower Cholesky factor of H in float64, or a ValueError saying it is not PD."""
    if H.dim() != 2 or H.shape[0] != H.shape[1]:
        raise ValueError(f"H must be a square matrix, got shape {tuple(H.shape)}")
    L, info = torch.linalg.cholesky_ex(H.to(torch.float64))
    if int(info) != 0:
        raise ValueError(
            f"H ({H.shape[0]} x {H.shape[0]}) is not positive definite in float64: the "
            f"Cholesky factorization broke down at the leading minor of order {int(info)}. "
            "y^T H^-1 y needs λ_min(H) > 0; H∞ is singular when two inputs are parallel "
            "(du2019 Theorem 3.1), and numerically so when λ_min is below about n 1e-16."
        )
    return L


def inverse_quadratic_form(H: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """y^T H^-1 y by a Cholesky factorization, never an explicit inverse (arora2019 Sec. 5).

    With H = L L^T, y^T H^-1 y = ||L^-1 y||^2: one factorization and one triangular solve
    for all label vectors, and a sum of squares, so never negative. ``y`` of shape (n,)
    gives a scalar tensor, (R, n) gives (R,). Raises ValueError when H is not positive
    definite. Memory: the factor is a second (n, n) float64 matrix (0.8 GB at n = 10^4).
    """
    L = _cholesky(H)
    Y = y.to(device=L.device, dtype=torch.float64)
    if Y.shape[-1] != L.shape[0]:
        raise ValueError(f"labels of length {Y.shape[-1]} for a {L.shape[0]} x {L.shape[0]} H")
    Z = torch.linalg.solve_triangular(L, Y.reshape(-1, L.shape[0]).T, upper=False)
    values = Z.square().sum(dim=0)
    return values[0] if Y.dim() == 1 else values


def interpolant_norm(H: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sqrt(y^T H^-1 y): the leading term of arora2019 Lemma 5.3 (and Section 5.2).

    For H = H∞ it is the leading term of the bound on ||W(k) - W(0)||_F, how far gradient
    descent moves the first layer; for the linearised dynamics with H(0) it is that
    distance exactly at convergence. Same shapes and errors as
    :func:`inverse_quadratic_form`.
    """
    return inverse_quadratic_form(H, y).sqrt()


def complexity_measure(H: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """sqrt(2 y^T H^-1 y / n): arora2019 eq. (10), the leading term of Theorem 5.1's eq. (9).

    Theorem 5.1 bounds the population loss of the trained network by this plus
    O(sqrt(log(n / (λ_0 δ)) / n)); that term has no stated constant, so it cannot be
    evaluated, and only the leading term (10) is computed here: eq. (9) itself is not.
    Computed by :func:`inverse_quadratic_form` (Cholesky, no inverse). ``y`` of shape (n,)
    gives a scalar tensor, (R, n) gives (R,), e.g. one value per portion of random labels
    as in arora2019 Figure 2. Raises ValueError when H is not positive definite.
    """
    n = H.shape[-1]
    return (2.0 * inverse_quadratic_form(H, y) / n).sqrt()


def kernel_prediction(H: torch.Tensor, r0: torch.Tensor, eta: float, steps: int) -> torch.Tensor:
    """||r(k)||_2 for k = 0..steps under the linear dynamics r(k+1) = (I - eta H) r(k).

    With a fixed Gram matrix H = H∞ this is the infinite-width limit of gradient descent on
    the summed square loss, r(k) = y - u(k) (du2019 Remark 3.1; arora2019 eq. (8) when
    r(0) = y). ``r0`` may hold several initial residuals, shape (R, n); the result has
    shape (steps + 1, R). It is :func:`predicted_residual` on the decomposition of H.
    """
    eigenvalues, V = spectrum(H)
    start = r0.to(device=V.device, dtype=torch.float64).reshape(-1, V.shape[0])
    return predicted_residual(eigenvalues, label_projections(V, start), eta, steps)


def kernel_gradient_descent(
    K: torch.Tensor,
    K_cross: torch.Tensor,
    y: torch.Tensor,
    eta: float,
    steps: int,
    *,
    f0: torch.Tensor | None = None,
    f0_cross: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Predictions after ``steps`` of gradient descent in function space with a fixed kernel.

    On the mean square loss L = (1/2n) sum_i (u_i - y_i)^2 the predictions on the training
    set and on other points z follow

        u(k+1) = u(k) - (eta/n) K (u(k) - y),    v(k+1) = v(k) - (eta/n) K_cross (u(k) - y),

    the infinite-width limit of full-batch gradient descent in the kernel regime
    (du2019 Section 4 with the limiting kernel; Chizat, Oyallon and Bach 2019). With
    K/n = V diag(l) V^T the sum telescopes into

        u(k) = y - V (1 - eta l)^k V^T (y - u(0)),
        v(k) = v(0) + K_cross V diag(g) V^T (y - u(0)) / n,  g = (1 - (1 - eta l)^k) / l,

    with g = eta k where l = 0; as k grows, v tends to the kernel regression predictor
    v(0) + K_cross K^-1 (y - u(0)). ``K`` is (n, n), ``K_cross`` (p, n) between the other
    points and the training set, ``f0`` and ``f0_cross`` the starting predictions (0 when
    omitted). Returns (u(steps), v(steps)) in float64.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    K = K.to(torch.float64)
    n = K.shape[0]
    y = y.to(device=K.device, dtype=torch.float64)
    u0 = torch.zeros_like(y) if f0 is None else f0.to(device=K.device, dtype=torch.float64)
    K_cross = K_cross.to(device=K.device, dtype=torch.float64)
    v0 = (
        K_cross.new_zeros(K_cross.shape[0])
        if f0_cross is None
        else f0_cross.to(device=K.device, dtype=torch.float64)
    )
    eigenvalues, V = spectrum(K / n)
    eigenvalues = eigenvalues.clamp(min=0.0)
    r0 = V.T @ (y - u0)
    decay = (1.0 - eta * eigenvalues) ** steps
    small = eigenvalues * eta * steps < 1e-8
    gain = torch.where(
        small,
        torch.full_like(eigenvalues, eta * steps),
        (1.0 - decay) / eigenvalues.where(~small, 1.0),
    )
    u = y - V @ (decay * r0)
    v = v0 + K_cross @ (V @ (gain * r0)) / n
    return u, v
