"""Posterior-predictive success counts (twolayer.online_sgd.predictive_successes, bach2022)."""

from __future__ import annotations

from math import comb, exp, lgamma

import numpy as np
import pytest

from twolayer.online_sgd import predictive_successes


@pytest.mark.parametrize(("successes", "runs", "reps"), [(5, 30, 8), (28, 30, 30), (0, 30, 3)])
def test_counts_follow_the_beta_binomial_law(successes, runs, reps):
    draws = predictive_successes([successes], runs, reps, draws=200_000, seed=3)[:, 0]
    alpha, beta = successes + 0.5, runs - successes + 0.5
    mean = alpha / (alpha + beta)
    variance = reps * mean * (1 - mean) * (alpha + beta + reps) / (alpha + beta + 1)
    assert draws.min() >= 0 and draws.max() <= reps
    assert draws.mean() == pytest.approx(reps * mean, abs=4 * np.sqrt(variance / draws.size))
    assert draws.var() == pytest.approx(variance, rel=0.02)


def test_the_probability_of_each_count_is_the_beta_binomial_one():
    def log_beta(a, b):
        return lgamma(a) + lgamma(b) - lgamma(a + b)

    s, n, reps = 12, 30, 5
    a, b = s + 0.5, n - s + 0.5
    exact = [comb(reps, k) * exp(log_beta(k + a, reps - k + b) - log_beta(a, b)) for k in range(6)]
    draws = predictive_successes([s], n, reps, draws=400_000, seed=1)[:, 0]
    frequencies = np.bincount(draws, minlength=reps + 1) / draws.size
    np.testing.assert_allclose(frequencies, exact, atol=3e-3)


def test_widths_are_independent_and_the_seed_fixes_the_draws():
    first = predictive_successes([0, 15, 30], 30, 10, draws=50_000, seed=7)
    again = predictive_successes([0, 15, 30], 30, 10, draws=50_000, seed=7)
    np.testing.assert_array_equal(first, again)
    assert abs(np.corrcoef(first[:, 1], first[:, 2])[0, 1]) < 0.02
    assert (first[:, 0] == 0).mean() > 0.8 and (first[:, 2] == 10).mean() > 0.8


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="between 0 and runs = 30"):
        predictive_successes([31], 30, 5)
    with pytest.raises(ValueError, match=">= 1"):
        predictive_successes([3], 30, 0)
