"""Random streams, devices, synthetic data and fits."""

import math

import numpy as np
import pytest
import torch

from twolayer.data import gaussian_labels, sphere, with_near_parallel_pair
from twolayer.devices import device_error, resolve_device
from twolayer.fitting import line, linear_rate, power_law
from twolayer.rng import derive_seed


def test_streams_are_deterministic_and_distinct():
    assert derive_seed(1, "init", 10) == derive_seed(1, "init", 10)
    seeds = {derive_seed(s, k, m) for s in (0, 1) for k in ("init", "data") for m in (10, 20)}
    assert len(seeds) == 8
    with pytest.raises(ValueError, match="seed"):
        derive_seed(-1)


def test_sphere_points():
    X = sphere(50, 7, seed=2)
    assert X.shape == (50, 7) and X.dtype == torch.float64
    assert torch.allclose(X.norm(dim=1), torch.ones(50, dtype=torch.float64))
    assert torch.equal(X, sphere(50, 7, seed=2))
    assert not torch.equal(X, sphere(50, 7, seed=3))
    big = sphere(20000, 3, seed=0)
    assert big.mean(0).abs().max() < 0.02  # uniform on the sphere: centred


def test_gaussian_labels():
    y = gaussian_labels(20000, seed=1)
    assert abs(y.mean().item()) < 0.03 and abs(y.std().item() - 1) < 0.03


def test_near_parallel_pair_sets_the_angle():
    X = sphere(5, 4, seed=0)
    for angle in (1e-3, 0.3, 2.0):
        Y = with_near_parallel_pair(X, 1, 3, angle)
        assert math.isclose(float(Y[1] @ Y[3]), math.cos(angle), abs_tol=1e-12)
        assert math.isclose(float(Y[3].norm()), 1.0, abs_tol=1e-12)
        assert torch.equal(Y[[0, 1, 2, 4]], X[[0, 1, 2, 4]])
    with pytest.raises(ValueError, match="angle"):
        with_near_parallel_pair(X, 0, 1, -0.1)


def test_devices():
    assert device_error("cpu") is None and device_error("auto") is None
    assert resolve_device("cpu") == torch.device("cpu")
    assert "expected 'auto', 'cpu'" in device_error("quantum")
    with pytest.raises(ValueError, match="device = 'quantum'"):
        resolve_device("quantum")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        assert "not available" in device_error("cuda")


def test_power_law_recovers_exponent():
    x = np.array([100, 200, 400, 800, 1600.0])
    fit = power_law(x, 3.0 * x**-0.5)
    assert fit.slope == pytest.approx(-0.5) and fit.r2 == pytest.approx(1.0)
    assert math.exp(fit.intercept) == pytest.approx(3.0)
    noisy = power_law(x, x**-0.5 * np.array([1.1, 0.9, 1.05, 0.95, 1.0]))
    low, high = noisy.interval()
    assert low < -0.5 < high


def test_fits_reject_or_flag_bad_values():
    with pytest.raises(ValueError, match="positive"):
        power_law([1.0, 2.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="finite"):
        power_law([1.0, 2.0], [1.0, np.inf])
    rho, fit = linear_rate([0, 1, 2], [1.0, np.inf, np.nan])
    assert np.isnan(rho) and np.isnan(fit.r2)


def test_linear_rate_ignores_the_floor():
    k = np.arange(60)
    values = np.maximum(5.0 * 0.8**k, 1e-9)
    rho, fit = linear_rate(k, values, floor=1e-8)
    assert rho == pytest.approx(0.8) and fit.r2 == pytest.approx(1.0)


def test_line_slope_and_its_standard_error():
    rng = np.random.default_rng(0)
    x = np.repeat(np.arange(5.0), 200)
    noise = 0.1
    fits = [line(x, 1.0 - 0.02 * x + noise * rng.standard_normal(x.size)) for _ in range(300)]
    slopes = np.array([fit.slope for fit in fits])
    assert slopes.mean() == pytest.approx(-0.02, abs=2e-3)
    # the reported standard error is the spread of the slope over repetitions
    expected = noise / math.sqrt(((x - x.mean()) ** 2).sum())
    assert np.mean([fit.stderr for fit in fits]) == pytest.approx(expected, rel=0.05)
    assert slopes.std() == pytest.approx(expected, rel=0.15)
    two = line([0.0, 2.0], [1.0, 5.0])
    assert (two.slope, two.intercept) == (2.0, 1.0) and np.isnan(two.stderr)
    with pytest.raises(ValueError, match="one length"):
        line([0.0, 1.0], [1.0])
