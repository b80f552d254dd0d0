"""Recorder metrics on small hand-made cases with known answers."""

import math

import pytest
import torch

from twolayer.kernels import gram_first_layer, lambda_min
from twolayer.losses import Loss
from twolayer.metrics import Snapshot, evaluate
from twolayer.model import Replica, TwoLayerReLU


def _snapshot(model, X, y):
    Z = model.preactivations(X)
    u = model.outputs(Z)
    initial = (model.W0 @ X.T) >= 0
    return Snapshot(0, model, X, y, Z, u, Loss().value(u, y), initial)


@pytest.fixture
def case():
    # two replicas (widths 2 and 3) in R^2; inputs e1, e2
    X = torch.eye(2, dtype=torch.float64)
    W0 = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 2.0], [2.0, 3.0], [0.5, -0.5]],
                      dtype=torch.float64)
    a0 = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0], dtype=torch.float64)
    model = TwoLayerReLU(W0.clone(), a0.clone(), [Replica(2, 0), Replica(3, 0)], trained="both")
    y = torch.tensor([0.5, -0.5], dtype=torch.float64)
    return model, X, y


def test_nothing_changed_at_initialization(case):
    model, X, y = case
    out = evaluate(["pattern_change", "max_distance", "frobenius_distance", "output_distance"],
                   _snapshot(model, X, y))
    for value in out.values():
        assert value.tolist() == [0.0, 0.0]


def test_pattern_change_counts_flipped_signs(case):
    model, X, y = case
    # neuron 1 of replica 0 flips its sign on x_2 (1 of 4 patterns);
    # neuron 0 of replica 1 flips on x_1 and neuron 2 on both inputs (3 of 6 patterns)
    model.W[1] = torch.tensor([1.0, 0.5])
    model.W[2] = torch.tensor([0.5, 2.0])
    model.W[4] = torch.tensor([-0.5, 0.5])
    out = evaluate(["pattern_change"], _snapshot(model, X, y))["pattern_change"]
    assert out.tolist() == pytest.approx([1 / 4, 3 / 6])


def test_distances(case):
    model, X, y = case
    model.W[0] += torch.tensor([3.0, 4.0])  # distance 5 in replica 0
    model.W[3] += torch.tensor([0.0, 1.0])  # distances 1 and 2 in replica 1
    model.W[4] += torch.tensor([2.0, 0.0])
    model.a[2] += 0.25
    out = evaluate(["max_distance", "frobenius_distance", "output_distance"],
                   _snapshot(model, X, y))
    assert out["max_distance"].tolist() == [5.0, 2.0]
    assert out["frobenius_distance"].tolist() == pytest.approx([5.0, math.sqrt(5.0)])
    assert out["output_distance"].tolist() == [0.0, 0.25]


def test_loss_residual_and_lambda_min(case):
    model, X, y = case
    snap = _snapshot(model, X, y)
    u = snap.u
    out = evaluate(["loss", "residual_norm", "lambda_min"], snap)
    assert out["loss"].tolist() == pytest.approx((0.5 * ((u - y) ** 2).sum(1)).tolist())
    assert out["residual_norm"].tolist() == pytest.approx((u - y).norm(dim=1).tolist())
    H = gram_first_layer(model, X)
    assert out["lambda_min"].tolist() == pytest.approx(lambda_min(H).tolist())
    # replica 0 (c = 1/sqrt(2)): neuron 0 is active on both inputs, neuron 1 on x_1 only,
    # and x_1 is orthogonal to x_2, so H = diag(1, 1/2) and lambda_min = 1/2
    assert torch.allclose(H[0], torch.tensor([[1.0, 0.0], [0.0, 0.5]], dtype=torch.float64))
