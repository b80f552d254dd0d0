"""The random-features kernel and the RKHS max-margin classifier (bach2022 Theorem 4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.linalg import cholesky, solve_triangular
from scipy.optimize import nnls

from twolayer.data import append_bias, cluster_task
from twolayer.kernels import g_infinity, random_features_kernel
from twolayer.max_margin import kernel_max_margin


@pytest.mark.parametrize("weights", ["gaussian", "sphere"])
def test_random_features_kernel_against_monte_carlo(weights):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(5, 3, generator=g, dtype=torch.float64)
    Y = torch.randn(4, 3, generator=g, dtype=torch.float64)
    w = torch.randn(400_000, 3, generator=g, dtype=torch.float64)
    if weights == "sphere":
        w = w / w.norm(dim=1, keepdim=True)
    estimate = torch.relu(X @ w.T) @ torch.relu(Y @ w.T).T / w.shape[0]
    exact = random_features_kernel(X, Y, weights=weights)
    # Monte Carlo error of 4e5 draws: about 0.3 % of the entries' scale
    scale = float(exact.abs().max())
    assert float((estimate - exact).abs().max()) < 0.01 * scale


def test_random_features_kernel_is_g_infinity_on_one_set():
    X = torch.randn(30, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(random_features_kernel(X), g_infinity(X), rtol=0, atol=1e-12)
    X[3] = 0.0
    K = random_features_kernel(X, X[:5])
    assert torch.isfinite(K).all() and float(K[3].abs().max()) == 0.0


def _brute_force_margin(X: np.ndarray, y: np.ndarray) -> float:
    angle = np.linspace(0, 2 * math.pi, 2_000_001)
    U = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return float((y[None, :] * (U @ X.T)).min(axis=1).max())


def test_linear_kernel_max_margin_matches_the_best_direction():
    # the separable toy of bach2022 Figure 4: a hyperplane through the origin
    X = np.array([[-3.0, -1.0], [-1.0, 1.0], [1.0, -2.0], [2.0, 1.0]])
    y = np.array([-1.0, -1.0, 1.0, 1.0])
    solution = kernel_max_margin(X @ X.T, y)
    best = _brute_force_margin(X, y)  # on a grid of directions: a lower bound, 1e-6 close
    assert best - 1e-12 <= solution.margin <= best + 1e-5
    assert solution.margin == pytest.approx(3 / math.sqrt(5), abs=1e-12)  # w ∝ (2, -1)
    assert solution.kkt < 1e-6
    w = solution.coef @ X  # f(x) = <w, x>
    assert np.linalg.norm(w) == pytest.approx(solution.norm, rel=1e-9)
    assert solution.norm**2 == pytest.approx(solution.alpha.sum(), rel=1e-6)
    # a wrong problem, with an intercept forced through sum alpha_i y_i = 0, differs here
    assert abs(float(solution.alpha @ y)) > 1e-3


def test_kernel_max_margin_equals_an_exact_nonnegative_least_squares_solution():
    # with Q = L L^T positive definite, the dual is min ||L^T alpha - L^{-1} 1||^2, alpha >= 0
    task = cluster_task(3, 2, seed=4)
    X, y = task.sample(40)
    K = random_features_kernel(append_bias(X)).numpy()
    solution = kernel_max_margin(K, y)
    Q = (y.numpy()[:, None] * K) * y.numpy()[None, :]
    L = cholesky(Q, lower=True)
    b = solve_triangular(L, np.ones(len(y)), lower=True)
    alpha, _ = nnls(L.T, b, maxiter=10_000)
    exact_norm = math.sqrt(float(alpha @ Q @ alpha))
    assert solution.norm == pytest.approx(exact_norm, rel=1e-6)
    assert solution.margin == pytest.approx(1.0 / exact_norm, rel=1e-6)
    assert solution.kkt < 1e-5
    grid = append_bias(task.sample(200, "grid")[0])
    f = solution.decision(random_features_kernel(append_bias(X), grid))
    g = (alpha * y.numpy()) @ random_features_kernel(append_bias(X), grid).numpy()
    np.testing.assert_allclose(f, g, rtol=1e-5, atol=1e-6 * float(np.abs(g).max()))


def test_inseparable_data_and_bad_input_are_refused():
    X = np.array([[1.0, 0.0], [2.0, 0.0]])
    with pytest.raises(ValueError, match="not separable"):
        kernel_max_margin(X @ X.T, np.array([1.0, -1.0]), max_iter=2000)
    with pytest.raises(ValueError, match="labels must be -1 or \\+1"):
        kernel_max_margin(np.eye(2), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="expected \\(3, 3\\)"):
        kernel_max_margin(np.eye(2), np.array([1.0, -1.0, 1.0]))
