"""The clusters-on-a-grid task of bach2022 Section 5.5 (twolayer.data.clusters)."""

from __future__ import annotations

import math

import pytest
import torch

from twolayer.data import append_bias, cluster_task


def test_centres_sit_on_the_grid_and_the_classes_are_balanced():
    task = cluster_task(4, 5, seed=3)
    delta = 1 / 11
    axis = sorted({round(float(c), 12) for c in task.centres[:, 0]})
    assert axis == pytest.approx([delta * (1 + 3 * p) - 0.5 for p in range(4)])
    assert task.centres.shape == (16, 2)
    assert int((task.classes == -1).sum()) == 8 and int((task.classes == 1).sum()) == 8
    odd = cluster_task(3, 5, seed=3)
    assert int((odd.classes == -1).sum()) == 4  # floor(9 / 2)
    # the outer disks touch the edges of [-1/2, 1/2]^2
    assert float(task.centres.min()) - delta == pytest.approx(-0.5)
    assert float(task.centres.max()) + delta == pytest.approx(0.5)


def test_a_sample_lies_in_its_disks_with_the_cluster_labels():
    task = cluster_task(3, 6, seed=1)
    X, y = task.sample(4000)
    dist = torch.cdist(X[:, :2], task.centres)
    nearest = dist.argmin(dim=1)
    assert float(dist.min(dim=1).values.max()) <= task.delta + 1e-12
    assert torch.equal(y, task.classes[nearest])
    rest = X[:, 2:]
    assert float(rest.min()) >= -0.5 and float(rest.max()) <= 0.5
    assert abs(float(rest.mean())) < 0.02  # uniform on [-1/2, 1/2]: mean 0, sd 0.0029
    assert float(rest.var()) == pytest.approx(1 / 12, rel=0.05)
    counts = torch.bincount(nearest, minlength=9).double()
    assert float(counts.min()) > 4000 / 9 * 0.8  # clusters drawn uniformly


@pytest.mark.parametrize(("law", "second_moment"), [("disk", 0.5), ("code", 1 / 3)])
def test_the_radius_law(law, second_moment):
    # E[R^2] = Delta^2 / 2 when uniform on the disk, Delta^2 / 3 for R = Delta U
    task = cluster_task(2, 2, seed=0, radius=law)
    X, _ = task.sample(20000)
    r2 = torch.cdist(X, task.centres).min(dim=1).values ** 2
    assert float(r2.mean()) / task.delta**2 == pytest.approx(second_moment, rel=0.03)


def test_streams_are_reproducible_and_distinct():
    task = cluster_task(3, 4, seed=2)
    a, _ = task.sample(50, "train")
    b, _ = task.sample(50, "train")
    c, _ = task.sample(50, "test")
    assert torch.equal(a, b) and not torch.equal(a, c)
    other = cluster_task(3, 4, seed=5)
    assert not torch.equal(task.classes, other.classes) or not torch.equal(a, other.sample(50)[0])


def test_bias_coordinate_and_bad_values():
    X = torch.zeros(3, 2, 4)
    assert append_bias(X).shape == (3, 2, 5) and float(append_bias(X)[..., -1].min()) == 1.0
    with pytest.raises(ValueError, match="k = 0 is not allowed"):
        cluster_task(0, 3)
    with pytest.raises(ValueError, match="d = 1 is not allowed"):
        cluster_task(3, 1)
    with pytest.raises(ValueError, match="radius = 'ring' is not allowed"):
        cluster_task(3, 3, radius="ring")
    with pytest.raises(ValueError, match="n = 0 is not allowed"):
        cluster_task(3, 3).sample(0)
    assert math.isclose(cluster_task(3, 3).delta, 1 / 8)
