"""Online SGD of a mean-field student against a teacher (twolayer.online_sgd, bach2022)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from twolayer.model import Replica, TwoLayerReLU
from twolayer.online_sgd import (
    mean_field_student,
    online_sgd,
    risk,
    sgd_step,
    teacher_network,
)


def _batch(G: int, B: int, d: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(G, B, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("input_gradient", ["mean", "sum"])
def test_the_step_is_the_mean_field_gradient_step(input_gradient):
    teacher = teacher_network(3, 2, [7, 8])
    student = mean_field_student(3, [4, 6], [0, 1])
    X = _batch(2, 10, 3)
    y = teacher(X).repeat_interleave(2, dim=0)
    W = student.W.clone().requires_grad_(True)
    a = student.a.clone().requires_grad_(True)
    model = TwoLayerReLU(W, a, student.replicas, scaling="mean_field", trained="both")
    (0.5 * ((model(X) - y) ** 2).mean(dim=1)).sum().backward()
    m = student.per_neuron(student.widths.double())
    c = 10.0 if input_gradient == "sum" else 1.0
    expected_W = student.W - 0.01 * m[:, None] * c * W.grad
    expected_a = student.a - 0.01 * m * a.grad
    sgd_step(student, X, y, 0.01, input_gradient)
    torch.testing.assert_close(student.W, expected_W)
    torch.testing.assert_close(student.a, expected_a)


def test_the_sum_rule_is_the_authors_update_in_their_units():
    # bach2022's code: h = sum_j A_j relu(B_j^T x) with A = theta2 / m;
    # A <- A - (lr / m) mean_i(r_i relu_ij); B_j <- B_j - m lr sum_i r_i A_j 1{.} x_i
    teacher = teacher_network(4, 3, [5])
    student = mean_field_student(4, [7], [2])
    X = _batch(1, 20, 4, seed=3)
    y = teacher(X)
    m, lr = 7, 0.002
    A, B = student.a / m, student.W.clone()
    pre = B @ X[0].T  # (m, n)
    r = (A @ torch.relu(pre)) - y[0]
    grad_A = (r * torch.relu(pre)).mean(dim=1)
    grad_B = ((r * (pre > 0)) * A[:, None]) @ X[0]
    A_new, B_new = A - lr / m * grad_A, B - m * lr * grad_B
    sgd_step(student, X, y, lr, "sum")
    torch.testing.assert_close(student.a / m, A_new)
    torch.testing.assert_close(student.W, B_new)


def test_a_student_equal_to_its_teacher_has_zero_risk_and_stays():
    teacher = teacher_network(3, 4, [1])
    student = TwoLayerReLU(
        teacher.W.clone(),
        4 * teacher.a.clone(),
        [Replica(4, 0)],
        scaling="mean_field",
        trained="both",
    )
    X = _batch(1, 500, 3)
    assert float(risk(student, teacher, X)[0]) < 1e-28
    run = online_sgd(student, teacher, steps=20, lr=0.005, record_every=10, progress=False)
    assert float(run.risk.max()) < 1e-28
    torch.testing.assert_close(student.W, teacher.W)


def test_sgd_learns_a_teacher_in_two_dimensions():
    teacher = teacher_network(2, 2, [3])
    student = mean_field_student(2, [30], [0])
    run = online_sgd(student, teacher, steps=3000, lr=0.01, record_every=500, progress=False)
    assert run.risk[-1, 0] < 0.1 * run.risk[0, 0]


def test_the_stride_record_is_the_full_trajectory_subsampled():
    teacher = teacher_network(2, 3, [1])
    kw = dict(steps=30, lr=0.01, batch_size=8, test_size=50, progress=False)
    full = online_sgd(mean_field_student(2, [5], [0]), teacher, record_every=1, **kw)
    sparse = online_sgd(mean_field_student(2, [5], [0]), teacher, record_every=7, **kw)
    index = np.searchsorted(full.steps, sparse.steps)
    np.testing.assert_array_equal(sparse.steps, [0, 7, 14, 21, 28, 30])
    np.testing.assert_allclose(sparse.W, full.W[index])
    np.testing.assert_allclose(sparse.a, full.a[index])
    np.testing.assert_allclose(sparse.risk, full.risk[index])


def test_batched_repetitions_equal_separate_runs():
    kw = dict(steps=40, lr=0.01, batch_size=16, test_size=64, record_every=10, progress=False)
    teacher = teacher_network(3, 2, [11, 12])
    student = mean_field_student(3, [2, 5], [0, 1])
    batch = online_sgd(student, teacher, **kw)
    first = 0
    for j, rep in enumerate(student.replicas):
        alone = mean_field_student(3, [rep.width], [rep.seed])
        single = online_sgd(alone, teacher_network(3, 2, [11 + j // 2]), **kw)
        torch.testing.assert_close(student.W[first : first + rep.width], alone.W)
        np.testing.assert_allclose(batch.risk[:, j], single.risk[:, 0])
        first += rep.width


def test_a_run_resumes_from_its_checkpoint(tmp_path):
    kw = dict(steps=60, lr=0.01, batch_size=20, test_size=30, record_every=10, progress=False)
    teacher = teacher_network(100, 2, [1])  # d = 100: a chunk of 131 steps, so use 60 steps
    full = online_sgd(mean_field_student(100, [3], [0]), teacher, **kw)
    path = tmp_path / "run.pt"
    online_sgd(mean_field_student(100, [3], [0]), teacher, checkpoint=path, **kw)
    again = online_sgd(mean_field_student(100, [3], [0]), teacher, checkpoint=path, **kw)
    np.testing.assert_allclose(again.W, full.W)
    np.testing.assert_allclose(again.risk, full.risk)


def test_bad_settings_name_the_setting():
    teacher = teacher_network(2, 2, [1])
    student = mean_field_student(2, [3], [0])
    with pytest.raises(ValueError, match="input_gradient = 'total' is not allowed"):
        online_sgd(student, teacher, steps=1, lr=0.1, input_gradient="total")
    with pytest.raises(ValueError, match="batch_size = 0 is not allowed"):
        online_sgd(student, teacher, steps=1, lr=0.1, batch_size=0)
    with pytest.raises(ValueError, match="lr = -1"):
        online_sgd(student, teacher, steps=1, lr=-1)
    with pytest.raises(ValueError, match="does not divide"):
        online_sgd(
            mean_field_student(2, [3], [0, 1, 2]), teacher_network(2, 2, [1, 2]), steps=1, lr=0.1
        )
    ntk = TwoLayerReLU.initialize(2, [Replica(3, 0)], scaling="ntk", trained="both")
    with pytest.raises(ValueError, match="both\\s+layers trained"):
        online_sgd(ntk, teacher, steps=1, lr=0.1)
