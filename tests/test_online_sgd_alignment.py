"""Mass of a mean-field student's measure near given directions (twolayer.online_sgd)."""

from __future__ import annotations

import math

import pytest
import torch

from twolayer.model import Replica, TwoLayerReLU
from twolayer.online_sgd import mass_at_directions, mean_field_student, teacher_network


def test_masses_match_a_neuron_by_neuron_sum():
    student = mean_field_student(3, [4, 7], [0, 1])  # four replicas, two groups (seeds)
    student.W.mul_(torch.linspace(0.5, 2.0, student.W.shape[0], dtype=torch.float64)[:, None])
    directions = torch.randn(
        2, 3, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64
    )
    angle = 1.0
    masses = mass_at_directions(student, directions, angle)
    first = 0
    for r, rep in enumerate(student.replicas):
        group = r // 2
        for k in range(3):
            expected = 0.0
            for j in range(first, first + rep.width):
                w, a = student.W[j], float(student.a[j])
                u = directions[group, k] / directions[group, k].norm()
                if math.acos(max(-1.0, min(1.0, float(w @ u / w.norm())))) <= angle:
                    expected += a * float(w.norm()) / rep.width
            assert float(masses[r, k]) == pytest.approx(expected, abs=1e-12)
        first += rep.width


def test_a_student_equal_to_its_teacher_carries_the_teacher_masses():
    teacher = teacher_network(2, 4, [3])
    m = 12  # three copies of every teacher neuron, theta2 = m / 3 times the teacher's
    student = TwoLayerReLU(
        teacher.W.repeat(3, 1),
        m / 3 * teacher.a.repeat(3),
        [Replica(m, 0)],
        scaling="mean_field",
        trained="both",
    )
    masses = mass_at_directions(student, teacher.W, 1e-6)
    # teacher seed 3 has two directions 3 degrees apart: a window of 5 degrees merges them
    torch.testing.assert_close(masses[0], teacher.a)
    wide = mass_at_directions(student, teacher.W, math.radians(5.0))
    assert float(wide[0, 0]) == pytest.approx(float(teacher.a[0] + teacher.a[2]))
    opposite = mass_at_directions(student, -teacher.W, 1e-6)
    torch.testing.assert_close(opposite[0], torch.zeros(4, dtype=torch.float64))


def test_directions_must_match_the_input_dimension():
    student = mean_field_student(2, [3], [0])
    with pytest.raises(ValueError, match="directions must be"):
        mass_at_directions(student, torch.ones(2, 3), 0.1)
