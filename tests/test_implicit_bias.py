"""Ascent on the smoothed margin (twolayer.implicit_bias, bach2022 Section 5)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from twolayer.data import append_bias, cluster_task
from twolayer.implicit_bias import (
    margin_ascent,
    margin_network,
    margin_step,
    normalized_margin,
    smoothed_margin,
)
from twolayer.max_margin import kernel_max_margin
from twolayer.model import Replica, TwoLayerReLU, replica_grid


def _data(n: int = 24, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    X, y = cluster_task(2, 2, seed=seed).sample(n)
    return append_bias(X), y


@pytest.mark.parametrize("trained", ["both", "output"])
def test_the_step_is_mean_field_ascent_on_the_smoothed_margin(trained):
    X, y = _data()
    model = margin_network(3, replica_grid([5, 8], [0, 1]), trained)
    if trained == "output":
        model.a.normal_(generator=torch.Generator().manual_seed(3)).mul_(4.0)  # beta > 1
    W = model.W.clone().requires_grad_(True)
    a = model.a.clone().requires_grad_(True)
    twin = TwoLayerReLU(W, a, model.replicas, scaling="mean_field", trained=trained)
    S = -torch.logsumexp(-y * twin(X), dim=1) + math.log(X.shape[0])
    S.sum().backward()
    m = model.per_neuron(model.widths.double())
    beta = torch.ones(model.num_replicas, dtype=torch.float64)
    if trained == "output":
        beta = torch.clamp(model.neuron_sum(model.a**2).sqrt() / model.widths.double().sqrt(), 1)
        assert float(beta.max()) > 1
    speed = 0.3 * m * model.per_neuron(beta)
    expected_a = model.a + speed * a.grad
    expected_W = model.W + speed[:, None] * W.grad if trained == "both" else model.W.clone()
    margin_step(model, X, y, 0.3)
    torch.testing.assert_close(model.a, expected_a)
    torch.testing.assert_close(model.W, expected_W)
    torch.testing.assert_close(smoothed_margin(twin(X).detach(), y), S.detach())


def test_the_both_layers_step_is_the_authors_update():
    # bach2022's code: grad_w1 = a .* 1{act > 0} * (X .* gradR), grad_w2 = act * gradR with
    # gradR = y softmax(-y f), and W <- W + stepsize grad / sqrt(iter + 1) at iter = 1
    X, y = _data(n=15)
    model = margin_network(3, [Replica(6, 2)], "both")
    W, a = model.W.clone(), model.a.clone()
    act = torch.relu(W @ X.T)
    out = (a @ act) / 6
    perf = y * out
    temp = torch.exp(perf.min() - perf)
    gradR = temp * y / temp.sum()
    grad_w1 = (a[:, None] * (act > 0)) @ (X * gradR[:, None])
    grad_w2 = act @ gradR
    margin_step(model, X, y, 0.5 / math.sqrt(2))
    torch.testing.assert_close(model.W, W + 0.5 * grad_w1 / math.sqrt(2))
    torch.testing.assert_close(model.a, a + 0.5 * grad_w2 / math.sqrt(2))


def test_the_output_layer_tends_to_the_max_margin_of_its_random_features():
    X, y = _data(n=30)
    model = margin_network(3, [Replica(200, 0)], "output")
    features = torch.relu(model.W @ X.T)
    best = kernel_max_margin(features.T @ features / 200, y).margin  # the model's own RKHS
    run = margin_ascent(model, X, y, steps=20_000, step_size=0.5, record_every=2000, progress=False)
    assert run.normalized[-1, 0] <= best * (1 + 1e-9)  # nothing beats the max margin
    assert run.normalized[-1, 0] >= 0.85 * best  # 0.90 of it is reached by 20 000 steps
    assert np.all(np.diff(run.normalized[3:, 0]) > 0)


def test_padded_samples_change_nothing():
    X, y = _data(n=20)
    weights = torch.ones(2, 20, dtype=torch.float64)
    weights[1, 12:] = 0.0
    batch = margin_network(3, [Replica(7, 0), Replica(7, 1)], "both")
    run = margin_ascent(
        batch, X, y, steps=50, step_size=0.5, weights=weights, record_every=10, progress=False
    )
    alone = margin_network(3, [Replica(7, 1)], "both")
    single = margin_ascent(
        alone, X[:12], y[:12], steps=50, step_size=0.5, record_every=10, progress=False
    )
    torch.testing.assert_close(batch.W[7:], alone.W)
    np.testing.assert_allclose(run.normalized[:, 1], single.normalized[:, 0])
    np.testing.assert_allclose(run.smoothed[:, 1], single.smoothed[:, 0])
    n = np.array([20, 12])  # min margin <= S <= min margin + log n
    assert np.all(run.margin <= run.smoothed + 1e-12)
    assert np.all(run.smoothed <= run.margin + np.log(n) + 1e-12)


def test_the_record_is_the_full_run_subsampled_and_resumes(tmp_path):
    X, y = _data()
    full = margin_ascent(
        margin_network(3, [Replica(9, 0)], "both"),
        X,
        y,
        steps=40,
        step_size=0.5,
        record_every=1,
        progress=False,
    )
    sparse = margin_ascent(
        margin_network(3, [Replica(9, 0)], "both"),
        X,
        y,
        steps=40,
        step_size=0.5,
        record_every=15,
        checkpoint=tmp_path / "c.pt",
        checkpoint_every=15,
        progress=False,
    )
    again = margin_ascent(
        margin_network(3, [Replica(9, 0)], "both"),
        X,
        y,
        steps=40,
        step_size=0.5,
        record_every=15,
        checkpoint=tmp_path / "c.pt",
        progress=False,
    )
    np.testing.assert_array_equal(sparse.steps, [0, 15, 30, 40])
    np.testing.assert_allclose(sparse.normalized, full.normalized[sparse.steps])
    np.testing.assert_allclose(again.normalized, sparse.normalized)


def test_normalized_margins_are_scale_free():
    X, y = _data()
    model = margin_network(3, [Replica(9, 0)], "both")
    before = normalized_margin(model, model(X), y)
    model.W.mul_(3.0)
    model.a.mul_(0.5)
    torch.testing.assert_close(normalized_margin(model, model(X), y), before)


def test_bad_settings_name_the_setting():
    X, y = _data()
    model = margin_network(3, [Replica(4, 0)], "both")
    with pytest.raises(ValueError, match="trained = 'first' is not allowed"):
        margin_network(3, [Replica(4, 0)], "first")
    with pytest.raises(ValueError, match="step_size = 0"):
        margin_ascent(model, X, y, steps=1, step_size=0)
    with pytest.raises(ValueError, match="labels must be -1 or \\+1"):
        margin_ascent(model, X, 2 * y, steps=1, step_size=0.5)
    with pytest.raises(ValueError, match="at least one sample"):
        margin_ascent(model, X, y, steps=1, step_size=0.5, weights=torch.zeros(24))
