"""Fits used to turn curves into numbers: lines, power laws and linear convergence rates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Fit:
    """A least-squares line in transformed coordinates.

    For a power law y = C x^p: ``slope`` is p, ``intercept`` is log C.
    For a linear rate y_k = C rho^k: ``slope`` is log rho.
    ``stderr`` is the standard error of the slope and ``r2`` the coefficient of
    determination of the fit.
    """

    slope: float
    intercept: float
    stderr: float
    r2: float

    def interval(self, z: float = 2.0) -> tuple[float, float]:
        """slope ± z standard errors."""
        return self.slope - z * self.stderr, self.slope + z * self.stderr


def line(x, y) -> Fit:
    """Least-squares line y = intercept + slope x, with the slope's standard error.

    Two points give the exact line and a standard error of nan (no spread to estimate it).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of one length, got {x.shape} and {y.shape}")
    if x.size < 2:
        raise ValueError(f"a fit needs at least 2 points, got {x.size}")
    if x.size == 2:
        slope = float((y[1] - y[0]) / (x[1] - x[0]))
        return Fit(slope, float(y[0] - slope * x[0]), float("nan"), 1.0)
    res = stats.linregress(x, y)
    return Fit(float(res.slope), float(res.intercept), float(res.stderr), float(res.rvalue**2))


def power_law(x, y) -> Fit:
    """Fit y = C x^p on a log-log scale; ``slope`` is the exponent p."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if not (np.isfinite(x).all() and np.isfinite(y).all()) or (x <= 0).any() or (y <= 0).any():
        raise ValueError("a power-law fit needs finite, positive x and y")
    return line(np.log(x), np.log(y))


def linear_rate(steps, values, floor: float = 0.0) -> tuple[float, Fit]:
    """Per-iteration contraction factor rho of values_k ≈ C rho^k (log-linear fit).

    Only finite points with values above ``floor`` enter the fit, so the flat part of a
    curve that has reached the floating-point floor does not bias the rate. A curve with
    fewer than two such points (for instance a diverging run) gives rho = nan.
    Returns (rho, fit).
    """
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(values) & (values > max(floor, 0.0))
    if keep.sum() < 2:
        nan = float("nan")
        return nan, Fit(nan, nan, nan, nan)
    fit = line(steps[keep], np.log(values[keep]))
    return float(np.exp(fit.slope)), fit
