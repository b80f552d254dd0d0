"""The output scale m^-beta, its step rule and the measures of the lazy-to-mean-field chapter."""

import math

import pytest
import torch

from twolayer.kernels import g_infinity, h_infinity, limiting_tangent_kernel, tangent_kernel
from twolayer.losses import Loss
from twolayer.measures import mass_fraction_near
from twolayer.model import Replica, TwoLayerReLU
from twolayer.regimes import (
    initial_network,
    kernel_change,
    regime_network,
    relative_distance,
    relative_risk,
    step_sizes,
)
from twolayer.rng import generator
from twolayer.spectral import kernel_gradient_descent
from twolayer.training import gradient_descent

LOSS = Loss("square", "mean")


def _data(n=40, d=6, seed=0):
    g = generator(seed, "test data")
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.relu(X[:, 0]) - torch.relu(X[:, 1]) + 0.3 * X[:, 2]
    return X, y


# ---------------------------------------------------------------- the model's exponent
@pytest.mark.parametrize(("name", "beta"), [("ntk", 0.5), ("mean_field", 1.0), ("none", 0.0)])
def test_a_numeric_exponent_is_the_named_scaling(name, beta):
    replicas = [Replica(3, 0), Replica(8, 1)]
    named = TwoLayerReLU.initialize(4, replicas, scaling=name, dtype=torch.float64)
    numeric = TwoLayerReLU.initialize(4, replicas, scaling=beta, dtype=torch.float64)
    assert torch.allclose(named.output_scale, numeric.output_scale, rtol=1e-15)
    assert named.exponents == numeric.exponents == (beta, beta)


def test_one_exponent_per_replica_and_select_keeps_it():
    replicas = [Replica(4, 0), Replica(4, 0), Replica(9, 2)]
    model = TwoLayerReLU.initialize(3, replicas, scaling=[0.5, 0.75, 1.0], dtype=torch.float64)
    expected = [4**-0.5] * 4 + [4**-0.75] * 4 + [1 / 9] * 9
    assert torch.allclose(model.output_scale, torch.tensor(expected, dtype=torch.float64))
    X = torch.randn(5, 3, dtype=torch.float64)
    for i in range(3):
        single = model.select(i)
        assert single.exponents == (model.exponents[i],)
        assert torch.allclose(single(X)[0], model(X)[i])


@pytest.mark.parametrize("bad", [[0.5, 1.0], "lazy", float("nan"), True, ["a"]])
def test_bad_exponents_are_refused(bad):
    with pytest.raises(ValueError, match="scaling"):
        TwoLayerReLU.initialize(3, [Replica(2, 0)] * 3, scaling=bad)


def test_paired_initialization_starts_at_zero_output():
    model = regime_network(5, [0.5, 0.8, 1.0], [4, 10], seed=3, dtype=torch.float64)
    X, _ = _data(d=5)
    assert model(X).abs().max() < 1e-14  # zero up to the rounding of the sums
    first = model.W[:2]
    assert torch.equal(model.W[2:4], first) and torch.equal(model.a[2:4], -model.a[:2])
    with pytest.raises(ValueError, match="even widths"):
        TwoLayerReLU.initialize(3, [Replica(5, 0)], paired=True)


def test_replicas_of_one_width_share_their_start_across_beta():
    model = regime_network(4, [0.5, 1.0], [6], seed=1, dtype=torch.float64)
    assert torch.equal(model.W[:6], model.W[6:]) and torch.equal(model.a[:6], model.a[6:])


# ---------------------------------------------------------------- the step rule
def _first_decrease(betas, widths, eta0, rule):
    X, y = _data(n=30, d=5, seed=4)
    model = regime_network(5, betas, widths, seed=2, dtype=torch.float64)
    lr = rule(model, eta0)
    history = gradient_descent(model, X, y, lr=lr, steps=1, loss=LOSS, progress=False)
    loss = history["loss"]
    return (loss[0] - loss[1]).reshape(len(betas), len(widths))


@pytest.mark.parametrize("beta", [0.5, 0.75, 1.0])
def test_the_step_rule_makes_the_first_decrease_independent_of_the_width(beta):
    decrease = _first_decrease([beta], [512, 8192], 0.05, step_sizes)[0]
    assert decrease.min() > 0
    assert decrease[1] / decrease[0] == pytest.approx(1.0, abs=0.08)


def test_a_constant_step_would_not_be():
    """The same check fails for a step that ignores beta: the test has power."""
    decrease = _first_decrease([0.75], [512, 8192], 0.05, lambda model, eta0: eta0)[0]
    assert decrease[1] / decrease[0] == pytest.approx(16**-0.5, rel=0.1)


def test_without_pairs_the_starting_output_depends_on_the_width():
    X, _ = _data(n=200, d=5)
    sizes = []
    for m in (256, 4096):
        model = TwoLayerReLU.initialize(5, [Replica(m, s) for s in range(8)], scaling=0.75)
        sizes.append(model(X.float()).pow(2).mean().sqrt().item())
    assert sizes[0] / sizes[1] == pytest.approx(16**0.25, rel=0.15)  # m^(1/2 - beta)


def test_step_sizes_follow_eta0_m_to_the_two_beta_minus_one():
    model = regime_network(3, [0.5, 0.75, 1.0], [4, 16], seed=0)
    expected = [0.3 * m ** (2 * b - 1) for b in (0.5, 0.75, 1.0) for m in (4, 16)]
    assert torch.allclose(step_sizes(model, 0.3), torch.tensor(expected, dtype=torch.float64))
    with pytest.raises(ValueError, match="eta0"):
        step_sizes(model, 0.0)


@pytest.mark.parametrize(("trained", "kernel"), [("both", "both"), ("first", "first")])
def test_a_wide_kernel_regime_network_tracks_kernel_gradient_descent(trained, kernel):
    """beta = 1/2, small steps: GD on the network follows GD with the limiting kernel."""
    X, y = _data(n=20, d=5, seed=7)
    steps, eta0 = 60, 0.5
    K = limiting_tangent_kernel(X, trained=kernel)
    limit, _ = kernel_gradient_descent(K, K[:1], y, eta0, steps)
    gaps = []
    for m in (256, 8192):
        model = TwoLayerReLU.initialize(
            5,
            [Replica(m, s) for s in range(3)],
            scaling=0.5,
            paired=True,
            trained=trained,
            dtype=torch.float64,
        )
        gradient_descent(model, X, y, lr=eta0, steps=steps, loss=LOSS, progress=False)
        gaps.append(((model(X) - limit).norm(dim=1) / limit.norm()).mean().item())
    assert gaps[1] < 0.03, gaps
    assert gaps[1] < gaps[0] / 3, gaps  # about sqrt(32) = 5.7 times closer


# ---------------------------------------------------------------- kernels
def test_limiting_tangent_kernel_is_h_plus_g_on_one_set():
    X, _ = _data(n=12, d=4)
    assert torch.allclose(limiting_tangent_kernel(X, trained="first"), h_infinity(X))
    assert torch.allclose(limiting_tangent_kernel(X, trained="output"), g_infinity(X))
    assert torch.allclose(limiting_tangent_kernel(X), h_infinity(X) + g_infinity(X))


def test_limiting_tangent_kernel_between_two_sets_matches_a_very_wide_network():
    X, _ = _data(n=5, d=4, seed=1)
    Z, _ = _data(n=3, d=4, seed=2)
    model = TwoLayerReLU.initialize(
        4, [Replica(400_000, 5)], scaling="ntk", trained="both", dtype=torch.float64
    )
    both = torch.cat([X, Z])
    empirical = tangent_kernel(model, both)[0][5:, :5]
    assert torch.allclose(limiting_tangent_kernel(Z, X), empirical, atol=0.02)
    with pytest.raises(ValueError, match="trained"):
        limiting_tangent_kernel(X, trained="second")


def test_tangent_kernel_is_the_gram_of_the_autograd_gradients():
    X, _ = _data(n=7, d=3)
    model = TwoLayerReLU.initialize(
        3, [Replica(5, 1)], scaling=0.8, trained="both", dtype=torch.float64
    )
    W = model.W.clone().requires_grad_(True)
    a = model.a.clone().requires_grad_(True)
    rows = []
    for x in X:
        f = 5**-0.8 * (a * torch.relu(W @ x)).sum()
        gW, ga = torch.autograd.grad(f, (W, a))
        rows.append(torch.cat([gW.flatten(), ga]))
    J = torch.stack(rows)
    assert torch.allclose(tangent_kernel(model, X)[0], J @ J.T)


def test_kernel_gradient_descent_matches_the_iteration_and_tends_to_regression():
    X, y = _data(n=15, d=4, seed=3)
    Z, _ = _data(n=6, d=4, seed=5)
    K, Kc = limiting_tangent_kernel(X), limiting_tangent_kernel(Z, X)
    f0, g0 = 0.1 * torch.ones(15, dtype=torch.float64), -0.2 * torch.ones(6, dtype=torch.float64)
    u, v = f0.clone(), g0.clone()
    for _ in range(37):
        r = u - y
        u, v = u - 0.4 * K @ r / 15, v - 0.4 * Kc @ r / 15
    got_u, got_v = kernel_gradient_descent(K, Kc, y, 0.4, 37, f0=f0, f0_cross=g0)
    assert torch.allclose(got_u, u) and torch.allclose(got_v, v)
    _, late = kernel_gradient_descent(K, Kc, y, 0.4, 10**7)
    assert torch.allclose(late, Kc @ torch.linalg.solve(K, y), atol=1e-6)
    with pytest.raises(ValueError, match="steps"):
        kernel_gradient_descent(K, Kc, y, 0.4, -1)


# ---------------------------------------------------------------- measures
def test_relative_distance_and_kernel_change_against_direct_formulas():
    X, y = _data(n=25, d=4)
    model = regime_network(4, [0.5, 1.0], [8, 20], seed=2, dtype=torch.float64)
    assert torch.equal(kernel_change(model, X), torch.zeros(4, dtype=torch.float64))
    gradient_descent(model, X, y, lr=step_sizes(model, 0.2), steps=30, loss=LOSS, progress=False)
    for i, single in enumerate(model.select(j) for j in range(4)):
        moved = (single.W - single.W0).norm() / single.W0.norm()
        assert relative_distance(model)[i] == pytest.approx(moved.item(), rel=1e-12)
        K1 = tangent_kernel(single, X)[0]
        K0 = tangent_kernel(initial_network(single), X)[0]
        change = (K1 - K0).norm() / K0.norm()
        assert kernel_change(model, X)[i] == pytest.approx(change.item(), rel=1e-10)
    assert (relative_distance(model) > 0).all()


def test_mass_fraction_near_counts_the_atoms_inside_the_cone():
    # atoms: 2 e1 (inside), 1 at 10 degrees from e2 (inside for 15, not for 5), 1 at e3
    t = math.radians(10)
    W = torch.tensor([[2.0, 0, 0], [0, math.cos(t), math.sin(t)], [0, 0, 1.0]])
    a = torch.tensor([1.0, -1.0, 1.0])
    model = TwoLayerReLU(W, a, [Replica(3, 0)], scaling="none", trained="both")
    dirs = torch.tensor([[1.0, 0, 0], [0, 5.0, 0]])
    assert mass_fraction_near(model, dirs, math.radians(15)).item() == pytest.approx(3 / 4)
    assert mass_fraction_near(model, dirs, math.radians(5)).item() == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match="directions"):
        mass_fraction_near(model, dirs[:, :2], 0.1)


def test_relative_risk_is_one_for_the_mean_and_zero_for_the_teacher():
    y = torch.tensor([1.0, 2.0, 4.0, 5.0])
    predictions = torch.stack([y, torch.full_like(y, 3.0)])
    assert torch.allclose(
        relative_risk(predictions, y), torch.tensor([0.0, 1.0], dtype=torch.float64)
    )
