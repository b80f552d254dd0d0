"""The measure representation of a two-layer ReLU network and its distance to a teacher.

By the 1-homogeneity of the ReLU, a_j relu(w_j^T x) = r_j relu(theta_j^T x) with
r_j = a_j ||w_j|| and theta_j = w_j / ||w_j|| (akiyama2021 eq. (6)), so a network is the
signed measure nu = sum_j r_j delta_{theta_j} on the sphere (eq. (7)) and the L1 penalty
of eq. (4) is its total variation ||nu||_TV. The teacher of Assumption 3.2 is
nu° = sum_j r°_j delta_{theta°_j}. Angles are geodesic, dist(t, s) = arccos(<t, s>), as
in the paper's W_inf of Section 4.1.

Per-replica results carry the replica axis first; per-neuron inputs the neuron axis first,
as in :mod:`twolayer.model`.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import linprog

from twolayer.model import TwoLayerReLU


def measure_representation(a: torch.Tensor, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Masses r_j = a_j ||w_j|| and directions theta_j = w_j / ||w_j|| (akiyama2021 eq. (6)).

    ``a`` has shape (..., M) and ``W`` (..., M, d); a node with w_j = 0 gets theta_j = e_1
    (the paper sets it to an arbitrary fixed point) and r_j = 0.
    """
    norms = W.norm(dim=-1)
    r = a * norms
    safe = torch.where(norms > 0, norms, torch.ones_like(norms))
    theta = W / safe[..., None]
    e1 = torch.zeros_like(theta)
    e1[..., 0] = 1.0
    theta = torch.where((norms > 0)[..., None], theta, e1)
    return r, theta


def angles(theta: torch.Tensor, atoms: torch.Tensor) -> torch.Tensor:
    """Geodesic angles arccos(<theta_j, theta°_k>), radians: (..., M, d), (m, d) -> (..., M, m)."""
    cos = (theta @ atoms.to(theta.dtype).T).clamp(-1.0, 1.0)
    return torch.arccos(cos)


def gather_at_atoms(
    model: TwoLayerReLU, atoms: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mass and spread of the student gathered at each teacher direction, for every replica.

    Every node goes to the nearest teacher direction theta°_k (by angle). Returns

    - ``mass`` (R, m): sum of r_j over the nodes assigned to atom k (signed, so negative
      nodes count against it);
    - ``spread`` (R, m): the |r|-weighted mean angle (radians) of those nodes to theta°_k
      (0 where no mass is assigned);
    - ``nearest`` (M,): the atom of every node.

    This is the quantity Theorem 3.5 bounds: |r*_k - r°_k| and dist(theta*_k, theta°_k).
    """
    r, theta = measure_representation(model.a, model.W)
    ang = angles(theta, atoms)  # (M, m)
    nearest = ang.argmin(dim=1)
    onehot = torch.nn.functional.one_hot(nearest, atoms.shape[0]).to(r.dtype)
    mass = model.neuron_sum(onehot * r[:, None])
    weight = onehot * r.abs()[:, None]
    total = model.neuron_sum(weight)
    spread = model.neuron_sum(weight * ang.gather(1, nearest[:, None]))
    spread = torch.where(total > 0, spread / total.clamp_min(1e-300), torch.zeros_like(spread))
    return mass, spread, nearest


def flat_distance(
    r: np.ndarray, theta: np.ndarray, r_teacher: np.ndarray, theta_teacher: np.ndarray
) -> float:
    """Flat (bounded-Lipschitz) distance between the student's and the teacher's measures.

    For signed measures nu (student, eq. (7)) and nu° (teacher), with mu = nu - nu° split
    into its positive part mu+ and negative part mu-,

        D(nu, nu°) = sup { int phi d(nu - nu°) : |phi| <= 1, phi 1-Lipschitz for arccos }
                   = min_{gamma >= 0} sum_ij gamma_ij dist(s_i, t_j)
                                     + (|mu+| - |gamma|) + (|mu-| - |gamma|),

    a partial transport: gamma moves mass of mu+ (the positive student nodes) onto mu- (the
    teacher atoms and the negative student nodes) at the geodesic cost, and mass left
    unmatched costs 1 per unit. We use it instead of the paper's W_inf because the
    student's mass need not equal the teacher's (the L1 penalty shrinks it by O(lambda),
    and vanishing nodes keep a small mass), and its nodes carry both signs; D is zero
    exactly when the two measures are equal, grows with the angle a node is moved by
    (up to 2 units per unit of mass) and with every unit of surplus or missing mass.
    Solved as a linear program (SciPy's HiGHS).

    Args:
        r, theta: student masses (M,) and unit directions (M, d).
        r_teacher, theta_teacher: teacher masses (m,) and unit directions (m, d).
    """
    r = np.asarray(r, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    rt = np.asarray(r_teacher, dtype=np.float64)
    tt = np.asarray(theta_teacher, dtype=np.float64)
    plus_mass = np.concatenate([np.clip(r, 0, None), np.clip(-rt, 0, None)])
    minus_mass = np.concatenate([np.clip(-r, 0, None), np.clip(rt, 0, None)])
    points = np.concatenate([theta, tt])
    keep_p, keep_m = plus_mass > 0, minus_mass > 0
    p, q = plus_mass[keep_p], minus_mass[keep_m]
    if p.size == 0 or q.size == 0:
        return float(p.sum() + q.sum())
    cos = np.clip(points[keep_p] @ points[keep_m].T, -1.0, 1.0)
    cost = np.arccos(cos)
    # min sum gamma (cost - 2) + |p| + |q|, rows <= p, columns <= q, gamma >= 0
    a_rows = np.kron(np.eye(p.size), np.ones(q.size))
    a_cols = np.kron(np.ones(p.size), np.eye(q.size))
    res = linprog(
        (cost - 2.0).ravel(),
        A_ub=np.vstack([a_rows, a_cols]),
        b_ub=np.concatenate([p, q]),
        bounds=(0, None),
        method="highs",
    )
    if not res.success:
        raise RuntimeError(f"the transport linear program failed: {res.message}")
    return float(res.fun + p.sum() + q.sum())


def flat_distances(model: TwoLayerReLU, r_teacher: torch.Tensor, atoms: torch.Tensor) -> np.ndarray:
    """:func:`flat_distance` of every replica to the teacher, shape (R,)."""
    r, theta = measure_representation(model.a, model.W)
    rt, tt = r_teacher.cpu().numpy(), atoms.cpu().numpy()
    return np.array(
        [
            flat_distance(rr.cpu().numpy(), th.cpu().numpy(), rt, tt)
            for rr, th in zip(model.replica_blocks(r), model.replica_blocks(theta), strict=True)
        ]
    )
