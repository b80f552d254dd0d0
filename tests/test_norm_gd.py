"""Algorithm 1 of akiyama2021 (twolayer.norm_gd) and the measure distance (twolayer.measures)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from twolayer.measures import flat_distance, gather_at_atoms, measure_representation
from twolayer.model import Replica, TwoLayerReLU
from twolayer.norm_gd import (
    balanced_init,
    norm_dependent_gd,
    norm_gd_step,
    penalty_value,
    step_sizes,
)

ATOMS = torch.eye(2, dtype=torch.float64)


def circle_data(n: int = 40, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 2, generator=g, dtype=torch.float64)
    X = X / X.norm(dim=1, keepdim=True)
    return X, torch.relu(X @ ATOMS.T).sum(dim=1)


def autograd_objective(a, W, X, y, lam, penalty):
    f = (a[:, None] * torch.relu(W @ X.T)).sum(dim=0)
    fit = 0.5 * ((y - f) ** 2).mean()
    if penalty == "l1":
        return fit + lam * (a.abs() * W.norm(dim=1)).sum()
    return fit + 0.5 * lam * (a**2 + (W**2).sum(dim=1)).sum()


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_one_step_is_a_subgradient_step_scaled_by_the_norm_dependent_step(penalty):
    X, y = circle_data()
    model = balanced_init(2, [Replica(6, 3)])
    model.a.mul_(torch.linspace(0.5, 3.0, 6, dtype=torch.float64))  # away from balance
    a, W = model.a.clone().requires_grad_(), model.W.clone().requires_grad_()
    autograd_objective(a, W, X, y, 0.05, penalty).backward()
    norms = W.detach().norm(dim=1)
    eta = 0.7 * a.detach().abs() * norms / (a.detach() ** 2 + norms**2)  # eq. (11), by hand
    Z = model.preactivations(X)
    norm_gd_step(model, X, y, Z, model.outputs(Z), 0.7, 0.05, penalty)
    torch.testing.assert_close(model.a, a.detach() - eta * a.grad)
    torch.testing.assert_close(model.W, W.detach() - eta[:, None] * W.grad)


def test_step_sizes_match_eq_11():
    a = torch.tensor([0.5, -2.0], dtype=torch.float64)
    W = torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    expected = torch.tensor([2 * 0.5 / 1.25, 2 * 6.0 / 13.0], dtype=torch.float64)
    torch.testing.assert_close(step_sizes(a, W, 2.0), expected)


def test_l1_and_l2_penalties_agree_at_the_balanced_point_eq_5():
    model = balanced_init(3, [Replica(5, 1), Replica(4, 2)])
    norms = model.W.norm(dim=1)
    model.a = torch.sign(model.a) * norms * torch.arange(1, 10, dtype=torch.float64) / 9
    model.W = model.W * (torch.arange(1, 10, dtype=torch.float64) / 9)[:, None]
    torch.testing.assert_close(penalty_value(model, 0.3, "l1"), penalty_value(model, 0.3, "l2"))
    model.a = 2 * model.a  # off balance, the L2 penalty is strictly larger (AM-GM)
    assert bool((penalty_value(model, 0.3, "l2") > penalty_value(model, 0.3, "l1")).all())


def test_signs_are_kept_and_the_alpha_condition_is_enforced():
    X, y = circle_data()
    model = balanced_init(2, [Replica(8, s) for s in range(3)])
    signs = torch.sign(model.a).clone()
    run = norm_dependent_gd(model, X, y, alpha=1.0, lam=0.02, steps=400, progress=False)
    assert float(run.sign_factor.max()) < 1  # alpha (max |G| + lambda) < 1 ...
    assert bool((np.sign(run.a) == signs.numpy()).all())  # ... so no a_j changes sign
    with pytest.raises(ValueError, match="may flip the sign"):
        norm_dependent_gd(
            balanced_init(2, [Replica(8, 0)]),
            X,
            10 * y,
            alpha=3.0,
            lam=0.0,
            steps=5,
            progress=False,
        )
    with pytest.raises(ValueError, match="scaling='none'"):
        norm_dependent_gd(
            TwoLayerReLU.initialize(2, [Replica(4, 0)], dtype=torch.float64),
            X,
            y,
            alpha=1.0,
            lam=0.0,
            steps=1,
            progress=False,
        )


def test_batched_replicas_equal_separate_runs():
    X, y = circle_data()
    replicas = [Replica(6, 0), Replica(9, 1), Replica(6, 2)]
    batch = balanced_init(2, replicas)
    run = norm_dependent_gd(
        batch, X, y, alpha=1.0, lam=0.01, steps=150, record_every=50, progress=False
    )
    first = 0
    for j, rep in enumerate(replicas):
        alone = balanced_init(2, [rep])
        single = norm_dependent_gd(
            alone, X, y, alpha=1.0, lam=0.01, steps=150, record_every=50, progress=False
        )
        torch.testing.assert_close(batch.W[first : first + rep.width], alone.W)
        torch.testing.assert_close(batch.a[first : first + rep.width], alone.a)
        objective = single.history["objective"][:, 0]
        np.testing.assert_allclose(run.history["objective"][:, j], objective)
        first += rep.width


@pytest.mark.parametrize("penalty", ["l1", "l2"])
def test_a_lambda_per_replica_equals_separate_runs(penalty):
    X, y = circle_data()
    replicas = [Replica(6, 0), Replica(6, 0), Replica(9, 1)]
    lams = [0.0, 0.03, 0.01]
    batch = balanced_init(2, replicas)
    run = norm_dependent_gd(
        batch,
        X,
        y,
        alpha=1.0,
        lam=lams,
        steps=120,
        record_every=40,
        penalty=penalty,
        progress=False,
    )
    first = 0
    for j, (rep, lam) in enumerate(zip(replicas, lams, strict=True)):
        alone = balanced_init(2, [rep])
        single = norm_dependent_gd(
            alone,
            X,
            y,
            alpha=1.0,
            lam=lam,
            steps=120,
            record_every=40,
            penalty=penalty,
            progress=False,
        )
        torch.testing.assert_close(batch.W[first : first + rep.width], alone.W)
        np.testing.assert_allclose(
            run.history["objective"][:, j], single.history["objective"][:, 0]
        )
        np.testing.assert_allclose(run.sign_factor[j], single.sign_factor[0])
        first += rep.width
    # the same start with different lambdas must end apart (lambda reaches every replica)
    assert not torch.allclose(batch.W[:6], batch.W[6:12])


def test_a_bad_lambda_list_is_refused_with_its_count():
    X, y = circle_data()
    model = balanced_init(2, [Replica(6, 0), Replica(6, 1)])
    with pytest.raises(ValueError, match="3 values for 2 replicas"):
        norm_dependent_gd(model, X, y, alpha=1.0, lam=[0.1, 0.2, 0.3], steps=1, progress=False)
    with pytest.raises(ValueError, match="lambda must be finite and >= 0"):
        norm_dependent_gd(model, X, y, alpha=1.0, lam=[0.1, -0.2], steps=1, progress=False)


def test_initialization_is_algorithm_1s():
    model = balanced_init(3, [Replica(4, 0), Replica(5, 1)])
    np.testing.assert_allclose(model.a[:4].numpy(), [0.5, 0.5, -0.5, -0.5])
    np.testing.assert_allclose(model.a[4:].numpy(), [0.4, 0.4, 0.4, -0.4, -0.4])
    np.testing.assert_allclose(model.W.norm(dim=1).numpy(), 1.0)


def test_a_run_resumes_from_its_checkpoint(tmp_path):
    X, y = circle_data()
    full = norm_dependent_gd(
        balanced_init(2, [Replica(6, 0)]),
        X,
        y,
        alpha=1.0,
        lam=0.01,
        steps=60,
        record_every=10,
        progress=False,
    )
    path = tmp_path / "run.pt"
    model = balanced_init(2, [Replica(6, 0)])
    norm_dependent_gd(
        model,
        X,
        y,
        alpha=1.0,
        lam=0.01,
        steps=60,
        record_every=10,
        checkpoint=path,
        checkpoint_every=20,
        progress=False,
    )
    again = norm_dependent_gd(
        balanced_init(2, [Replica(6, 0)]),
        X,
        y,
        alpha=1.0,
        lam=0.01,
        steps=60,
        record_every=10,
        checkpoint=path,
        progress=False,
    )
    np.testing.assert_allclose(again.W, full.W)
    np.testing.assert_allclose(again.history["loss"], full.history["loss"])


def test_the_flat_distance_is_zero_at_the_teacher_and_grows_as_a_node_moves():
    r_t, th_t = np.ones(2), np.eye(2)
    assert flat_distance(r_t, th_t, r_t, th_t) == pytest.approx(0.0, abs=1e-12)
    # split one atom into two halves at the same place, and add a zero node: still zero
    r = np.array([0.5, 0.5, 1.0, 0.0])
    th = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert flat_distance(r, th, r_t, th_t) == pytest.approx(0.0, abs=1e-12)
    previous = 0.0
    for phi in (0.05, 0.2, 0.6):  # move the first atom by phi: costs phi per unit of mass
        th = np.array([[math.cos(phi), math.sin(phi)], [0.0, 1.0]])
        value = flat_distance(r_t, th, r_t, th_t)
        assert value == pytest.approx(phi, abs=1e-9)
        assert value > previous
        previous = value
    # missing mass costs 1 per unit; a negative node cancelling a positive one costs nothing
    assert flat_distance(np.array([0.9, 1.0]), th_t, r_t, th_t) == pytest.approx(0.1)
    r = np.array([1.3, -0.3, 1.0])
    th = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    assert flat_distance(r, th, r_t, th_t) == pytest.approx(0.0, abs=1e-12)


def test_mass_gathered_at_each_teacher_direction():
    model = balanced_init(2, [Replica(4, 0)])
    model.W = torch.tensor([[2.0, 0.1], [0.0, 1.0], [1.0, 1.1], [1.0, -0.3]], dtype=torch.float64)
    model.a = torch.tensor([0.25, 0.5, 0.1, -0.2], dtype=torch.float64)
    mass, spread, nearest = gather_at_atoms(model, ATOMS)
    r, _ = measure_representation(model.a, model.W)
    assert nearest.tolist() == [0, 1, 1, 0]
    np.testing.assert_allclose(mass.numpy(), [[r[0] + r[3], r[1] + r[2]]])
    ang01 = math.atan2(0.1, 2.0)
    expected0 = (abs(r[0]) * ang01 + abs(r[3]) * math.atan(0.3)) / (abs(r[0]) + abs(r[3]))
    assert float(spread[0, 0]) == pytest.approx(float(expected0))
