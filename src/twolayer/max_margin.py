"""Hard-margin classifiers in a reproducing-kernel Hilbert space, without a bias term.

bach2022 Theorem 4: training only the output layer of a wide network on the logistic or
exponential loss converges in direction to the max-margin classifier of the random-features
RKHS,

    min ||f||_H   subject to   y_i f(x_i) >= 1 for every i,

with f(x) = sum_i alpha_i y_i k(x_i, x) at the optimum. There is no bias term: a
scikit-learn SVC always fits an intercept (its dual carries the constraint
sum_i alpha_i y_i = 0), so it answers a different question. The dual here is

    max_{alpha >= 0}  sum_i alpha_i - (1/2) alpha^T Q alpha,   Q_ij = y_i y_j k(x_i, x_j),

a bound-constrained concave quadratic, solved with SciPy's L-BFGS-B and then polished by
an active-set step (the support vectors' equations Q_SS alpha_S = 1 solved exactly), which
matters for the nearly singular Gram matrices of smooth kernels. At the optimum
||f||^2 = alpha^T Q alpha = sum_i alpha_i, the smallest y_i f(x_i) is 1, and the normalized
margin min_i y_i f(x_i) / ||f|| of the max-margin classifier is 1/||f||.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits


@dataclass
class MaxMargin:
    """The RKHS max-margin classifier of a training set.

    Attributes:
        alpha: dual variables, >= 0, shape (n,); nonzero on the support vectors.
        coef: alpha_i y_i, so that f(x) = sum_i coef_i k(x_i, x), shape (n,).
        norm: ||f||_H = sqrt(alpha^T Q alpha).
        margin: the normalized margin min_i y_i f(x_i) / ||f||_H (= 1/||f|| at the optimum).
        kkt: the largest violation of the optimality conditions: a training margin below 1,
            or a support vector (alpha_i > 0) with margin above 1, relative to 1.
    """

    alpha: np.ndarray
    coef: np.ndarray
    norm: float
    margin: float
    kkt: float

    def decision(self, K_new: torch.Tensor | np.ndarray) -> np.ndarray:
        """f at new points from the kernel between training and new points, (n, n_new)."""
        K_new = K_new.cpu().numpy() if isinstance(K_new, torch.Tensor) else np.asarray(K_new)
        return self.coef @ K_new


def kernel_max_margin(
    K: torch.Tensor | np.ndarray,
    y: torch.Tensor | np.ndarray,
    *,
    tol: float = 1e-10,
    max_iter: int = 100_000,
) -> MaxMargin:
    """Solve min ||f||_H subject to y_i f(x_i) >= 1 from the Gram matrix ``K`` (n, n).

    Raises ValueError when the labels are not +-1, ``K`` is not a symmetric (n, n) matrix,
    or the data cannot be separated (the dual is unbounded: the margins never reach 1).
    """
    K = K.cpu().numpy() if isinstance(K, torch.Tensor) else np.asarray(K)
    y = y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    K = K.astype(np.float64)
    y = y.astype(np.float64).ravel()
    n = y.shape[0]
    if K.shape != (n, n):
        raise ValueError(f"K has shape {K.shape}, expected ({n}, {n}) for {n} labels")
    if not np.all(np.abs(y) == 1):
        raise ValueError("labels must be -1 or +1")
    if not np.allclose(K, K.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.abs(K).max()))):
        raise ValueError("K must be symmetric")
    Q = (y[:, None] * K) * y[None, :]
    scale = float(np.abs(np.diag(Q)).max()) or 1.0  # solve with Q / scale, alpha * scale

    def negative_dual(beta: np.ndarray) -> tuple[float, np.ndarray]:
        Qb = Q @ beta / scale
        return 0.5 * float(beta @ Qb) - float(beta.sum()), Qb - 1.0

    # thousands of small matrix-vector products: more BLAS threads only add waiting, badly so
    # where the cores are shared (3-4 times slower at n = 100 next to another busy process)
    with threadpool_limits(limits=1, user_api="blas"):
        result = minimize(
            negative_dual,
            np.full(n, 1.0 / n),
            jac=True,
            method="L-BFGS-B",
            bounds=[(0.0, None)] * n,
            options={"ftol": tol * 1e-3, "gtol": tol, "maxiter": max_iter, "maxfun": 2 * max_iter},
        )
        alpha = _polish(Q, result.x / scale)
    coef = alpha * y
    margins = y * (K @ coef)
    norm_sq = float(alpha @ Q @ alpha)
    if not np.isfinite(norm_sq) or norm_sq <= 0 or float(margins.min()) < 0.5:
        raise ValueError(
            "no separating function found: the training set is not separable in this RKHS "
            f"(smallest margin {float(margins.min()):.3g} after {result.nit} iterations)"
        )
    norm = float(np.sqrt(norm_sq))
    support = alpha > 1e-8 * float(alpha.max())
    violation = max(
        float(np.maximum(1.0 - margins, 0.0).max()),
        float(np.abs(margins[support] - 1.0).max()) if support.any() else 0.0,
    )
    return MaxMargin(alpha, coef, norm, float(margins.min()) / norm, violation)


def _polish(Q: np.ndarray, alpha: np.ndarray, rounds: int = 50) -> np.ndarray:
    """Refine an approximate dual solution by active-set steps (Lawson-Hanson style).

    On the support S the optimality conditions read (Q alpha)_S = 1 with alpha_S > 0, and
    (Q alpha)_i >= 1 off S. Starting from the support of ``alpha``, solve Q_SS alpha_S = 1,
    drop indices whose alpha turns non-positive, add the most violated margin, and stop
    when both conditions hold. If they never do, the first-order solution is returned.
    """
    support = alpha > 1e-6 * float(alpha.max()) if alpha.max() > 0 else alpha > 0
    for _ in range(rounds):
        index = np.flatnonzero(support)
        if index.size == 0:
            break
        sol, *_ = np.linalg.lstsq(Q[np.ix_(index, index)], np.ones(index.size), rcond=None)
        if (sol <= 0).any():
            support[index[sol <= 0]] = False
            continue
        candidate = np.zeros_like(alpha)
        candidate[index] = sol
        margins = Q @ candidate
        outside = np.flatnonzero(~support)
        if outside.size and float(margins[outside].min()) < 1.0 - 1e-9:
            support[outside[np.argmin(margins[outside])]] = True
            continue
        if float(np.abs(margins[index] - 1.0).max()) < 1e-7:
            return candidate
        break
    return alpha
