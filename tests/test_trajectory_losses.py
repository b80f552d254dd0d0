"""The test loss of akiyama2021 Figure 2 along a stored trajectory (twolayer.norm_gd)."""

from __future__ import annotations

import numpy as np
import torch

from twolayer.data.synthetic import sphere
from twolayer.model import Replica
from twolayer.norm_gd import balanced_init, norm_dependent_gd, trajectory_losses


def teacher_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    X = sphere(n, 3, seed=seed)
    return X, torch.relu(X).sum(dim=1)  # teacher a°_j = 1, w°_j = e_j


def test_on_the_training_set_it_gives_back_the_recorded_loss():
    X, y = teacher_data(30, 0)
    model = balanced_init(3, [Replica(4, 0), Replica(7, 1), Replica(4, 2)])
    run = norm_dependent_gd(
        model, X, y, alpha=1.0, lam=0.01, steps=60, record_every=20, progress=False
    )
    np.testing.assert_allclose(
        trajectory_losses(model, run, X, y), run.history["loss"], rtol=1e-12, atol=0
    )


def test_on_fresh_points_it_matches_a_direct_evaluation_node_by_node():
    X, y = teacher_data(30, 0)
    X_test, y_test = teacher_data(50, 1)
    replicas = [Replica(5, 3), Replica(2, 4)]
    model = balanced_init(3, replicas)
    run = norm_dependent_gd(
        model,
        X,
        y,
        alpha=1.0,
        lam=0.01,
        steps=40,
        record_every=40,
        trajectory_every=10,
        progress=False,
    )
    losses = trajectory_losses(model, run, X_test, y_test)
    assert losses.shape == (5, 2)
    Xn, yn = X_test.numpy(), y_test.numpy()
    for t in range(len(run.steps)):
        first = 0
        for r, rep in enumerate(replicas):
            f = np.zeros(len(yn))
            for j in range(first, first + rep.width):  # f(x) = sum_j a_j relu(w_j^T x), eq. (2)
                f += run.a[t, j] * np.maximum(Xn @ run.W[t, j], 0.0)
            expected = 0.5 * np.mean((yn - f) ** 2)
            np.testing.assert_allclose(losses[t, r], expected, rtol=1e-12)
            first += rep.width
    assert losses[-1].max() < losses[0].min()  # training lowered the test loss too
