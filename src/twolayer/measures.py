"""The measure representation of a two-layer ReLU network and its distance to a teacher.

By the 1-homogeneity of the ReLU, a_j relu(w_j^T x) = r_j relu(theta_j^T x) with
r_j = a_j ||w_j|| and theta_j = w_j / ||w_j|| (akiyama2021 eq. (6)), so a network is the
signed measure nu = sum_j r_j delta_{theta_j} on the sphere (eq. (7)) and the L1 penalty
of eq. (4) is its total variation ||nu||_TV. The teacher of Assumption 3.2 is
nu° = sum_j r°_j delta_{theta°_j}. Angles are geodesic, dist(t, s) = arccos(<t, s>), as
in the paper's W_inf of Section 4.1.

The regression problem (8) on measures is convex: its dual certificate
eta(theta) = (1/(n lambda)) sum_i (y_i - f(x_i)) relu(<theta, x_i>) (Section 3.2) gives a
certified lower bound on its minimum J*, hence a bound on the optimization gap of a trained
network, and its optimum near the teacher has a first-order expansion in lambda.

Per-replica results carry the replica axis first; per-neuron inputs the neuron axis first,
as in :mod:`twolayer.model`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def mass_fraction_near(model: TwoLayerReLU, directions: torch.Tensor, max_angle: float):
    """Share of each replica's total variation within ``max_angle`` radians of a direction.

    Neuron r is the atom c_m a_r ||w_r|| at theta_r = w_r / ||w_r|| (eq. (6)); the result is
    sum of |c_m a_r| ||w_r|| over the neurons whose angle to the nearest of the k
    ``directions`` (k, d) is at most ``max_angle``, divided by the sum over all neurons:
    how concentrated the network's measure is on a teacher's directions (the particle
    picture of bach2022 Figure 2). Shape (R,), float64; 0 for a replica with no mass.
    """
    if directions.ndim != 2 or directions.shape[1] != model.W.shape[1]:
        raise ValueError(
            f"directions must be (k, d) with d = {model.W.shape[1]}, got {tuple(directions.shape)}"
        )
    W = model.W.to(torch.float64)
    norms = W.norm(dim=1)
    mass = (model.a * model.output_scale).to(torch.float64).abs() * norms
    unit = W / norms.clamp_min(torch.finfo(torch.float64).tiny)[:, None]
    dirs = directions.to(device=W.device, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    near = (unit @ dirs.T).amax(dim=1) >= math.cos(max_angle)
    total = model.neuron_sum(mass)
    inside = model.neuron_sum(mass * near.to(mass.dtype))
    return inside / torch.where(total > 0, total, torch.ones_like(total))


def gathered_directions(
    model: TwoLayerReLU, atoms: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Direction of the mass gathered at each teacher direction, and its angle to it.

    With the nodes assigned to their nearest teacher direction as in :func:`gather_at_atoms`,
    the gathered direction of atom k is sum_{j -> k} r_j theta_j normalized: the direction
    of the single node that the nodes near theta°_k replace to first order, the theta*_k whose
    distance dist(theta*_k, theta°_k) akiyama2021 eq. (9) bounds (Corollary 3.6 for wider
    students). Returns ``direction`` (R, m, d) and ``angle`` (R, m), radians (the angle is
    nan where no mass is assigned).
    """
    atoms = atoms.to(device=model.device, dtype=model.dtype)
    r, theta = measure_representation(model.a, model.W)
    nearest = angles(theta, atoms).argmin(dim=1)
    onehot = torch.nn.functional.one_hot(nearest, atoms.shape[0]).to(r.dtype)  # (M, m)
    summed = model.neuron_sum(onehot[:, :, None] * (r[:, None, None] * theta[:, None, :]))
    norms = summed.norm(dim=2, keepdim=True)
    direction = summed / torch.where(norms > 0, norms, torch.full_like(norms, float("nan")))
    cos = (direction * atoms[None]).sum(dim=2).clamp(-1.0, 1.0)
    return direction, torch.arccos(cos)


def dual_certificate(
    model: TwoLayerReLU,
    X: torch.Tensor,
    y: torch.Tensor,
    lam: float | torch.Tensor,
    theta: torch.Tensor,
) -> torch.Tensor:
    """eta(theta) = (1/(n lambda)) sum_i (y_i - f(x_i)) relu(<theta, x_i>) for every replica.

    The function f*(p_lambda) of akiyama2021 Section 3.2 with p_lambda = (y - f) / lambda:
    at the optimum nu* of eq. (8) it equals sgn(r*_j) at every atom theta*_j and has
    |eta| <= 1 everywhere (eq. (10) and the optimality condition above it). ``theta`` holds
    unit directions (T, d); ``lam`` is a number or one value per replica. Shape (R, T).
    """
    X = X.to(device=model.device, dtype=model.dtype)
    y = y.to(device=model.device, dtype=model.dtype)
    lam_r = torch.as_tensor(lam, dtype=model.dtype, device=model.device).reshape(-1, 1)
    residual = y - model(X)
    features = torch.relu(theta.to(device=model.device, dtype=model.dtype) @ X.T)  # (T, n)
    return residual @ features.T / (X.shape[0] * lam_r)


def _sup_on_circle(coef: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Exact sup over the unit circle of |sum_i coef_i relu(<theta, x_i>)|, every row of coef.

    Between two consecutive angles where some <theta, x_i> changes sign, the function is
    <g, theta> for a fixed g, whose extrema on the arc lie at its ends or at +-g/||g||: the
    largest value over all these candidates is the supremum.
    """
    phi = torch.atan2(X[:, 1], X[:, 0])
    breaks = torch.sort(
        torch.remainder(torch.cat([phi + math.pi / 2, phi - math.pi / 2]), 2 * math.pi)
    ).values
    ends = torch.cat([breaks[1:], breaks[:1] + 2 * math.pi])
    middle = (breaks + ends) / 2
    unit = torch.stack([middle.cos(), middle.sin()], dim=1)
    active = (unit @ X.T > 0).to(X.dtype)  # (arcs, n)
    g = torch.einsum("rn,an,nd->rad", coef, active, X)  # (R, arcs, 2)
    psi = torch.atan2(g[..., 1], g[..., 0])
    candidates = torch.cat([psi, psi + math.pi, breaks.expand(coef.shape[0], -1)], dim=1)
    directions = torch.stack([candidates.cos(), candidates.sin()], dim=2)  # (R, C, 2)
    values = torch.einsum("rn,rcn->rc", coef, torch.relu(directions @ X.T))
    return values.abs().amax(dim=1)


def certificate_sup(
    coef: torch.Tensor,
    X: torch.Tensor,
    *,
    samples: int = 20000,
    refine: int = 30,
    seed: int = 0,
    starts: torch.Tensor | None = None,
) -> torch.Tensor:
    """sup over unit theta of |sum_i coef_i relu(<theta, x_i>)|, for every row of ``coef``.

    ``coef`` has shape (R, n) and ``X`` (n, d). On the circle (d = 2) the supremum is exact
    (the function is a cosine between consecutive sign changes of <theta, x_i>). For d >= 3
    it is estimated from below: the best of ``samples`` uniform directions (and of ``starts``,
    (R, S, d) or (S, d), e.g. the network's own directions) for each sign, each refined by
    ``refine`` fixed-point steps theta <- g / ||g||, g = sum_i coef_i 1{<theta, x_i> > 0} x_i
    (the maximizer of <g, theta> when the sign pattern does not change).
    """
    coef = coef.to(X.dtype)
    if X.shape[1] == 2:
        return _sup_on_circle(coef, X)
    R, d = coef.shape[0], X.shape[1]
    gen = torch.Generator().manual_seed(seed)
    pool = torch.randn(samples, d, generator=gen, dtype=torch.float64).to(X)
    pool = (pool / pool.norm(dim=1, keepdim=True)).expand(R, -1, -1)
    if starts is not None:
        starts = starts.to(X).expand(R, -1, -1) if starts.dim() == 2 else starts.to(X)
        pool = torch.cat([pool, starts / starts.norm(dim=2, keepdim=True)], dim=1)
    best = torch.zeros(R, dtype=X.dtype, device=X.device)
    for sign in (1.0, -1.0):
        c = sign * coef
        values = torch.einsum("rn,rtn->rt", c, torch.relu(pool @ X.T))
        best = torch.maximum(best, values.amax(dim=1))
        top = values.topk(min(32, values.shape[1]), dim=1).indices
        theta = torch.gather(pool, 1, top[..., None].expand(-1, -1, d))
        for _ in range(refine):
            active = (theta @ X.T > 0).to(X.dtype)
            g = torch.einsum("rn,rkn,nd->rkd", c, active, X)
            theta = g / g.norm(dim=2, keepdim=True).clamp_min(1e-300)
            value = torch.einsum("rn,rkn->rk", c, torch.relu(theta @ X.T))
            best = torch.maximum(best, value.amax(dim=1))
    return best


def dual_lower_bound(
    model: TwoLayerReLU,
    X: torch.Tensor,
    y: torch.Tensor,
    lam: float | torch.Tensor,
    **sup_options,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A lower bound on J* = min of eq. (8) from the network's residual, for every replica.

    For the mean loss J(nu) = (1/2n) sum_i (y_i - f(x_i; nu))^2 + lambda ||nu||_TV, every
    q in R^n with sup_theta |sum_i q_i relu(<theta, x_i>)| <= lambda gives
    J* >= <q, y> - (n/2) ||q||^2 (weak duality: akiyama2021's dual problem D_lambda of
    Section 3.2 with p = n q / lambda). We take q = s (y - f) / n, scaled by
    s = min(1, 1 / sup|eta|) to be feasible (eta of :func:`dual_certificate`), so that

        J* >= (s/n) <y, y - f> - (s^2/2n) ||y - f||^2,

    with equality when f is optimal. J(nu_k) minus this bound is a certified upper bound
    on the optimization gap J(nu_k) - J*, and by the convexity of J and the optimality of nu*,
    ||f(.; nu_k) - f(.; nu*)||_n^2 <= 2 (J(nu_k) - J*). Exact on the circle; for d >= 3 the
    supremum is estimated (:func:`certificate_sup`), so the bound is an estimate too.
    Returns ``(bound, sup_eta)``, each (R,).
    """
    X = X.to(device=model.device, dtype=model.dtype)
    y = y.to(device=model.device, dtype=model.dtype)
    n = X.shape[0]
    lam_r = torch.as_tensor(lam, dtype=model.dtype, device=model.device).flatten()
    residual = y - model(X)
    if X.shape[1] > 2 and "starts" not in sup_options:
        _, theta = measure_representation(model.a, model.W)
        blocks = model.replica_blocks(theta)
        if len({b.shape[0] for b in blocks}) == 1:
            sup_options["starts"] = torch.stack(blocks)
    sup = certificate_sup(residual / n, X, **sup_options)
    sup_eta = sup / lam_r
    s = torch.clamp(1.0 / sup_eta, max=1.0)
    bound = s / n * (residual * y).sum(dim=1) - s**2 / (2 * n) * (residual**2).sum(dim=1)
    return bound, sup_eta


@dataclass(frozen=True)
class LinearizedOptimum:
    """First-order expansion in lambda of the optimum of eq. (8) around the teacher.

    r*_j = r°_j + lambda ``mass[j]`` and theta*_j = theta°_j + lambda ``direction[j]``
    (tangent to the sphere at theta°_j) up to O(lambda^2).
    """

    mass: torch.Tensor  # (m,)
    direction: torch.Tensor  # (m, d)

    def function_shift(
        self, X: torch.Tensor, r_teacher: torch.Tensor, atoms: torch.Tensor
    ) -> torch.Tensor:
        """(f(x; nu*) - f°(x)) / lambda to first order, at the points ``X`` (n, d): shape (n,)."""
        X = X.to(self.mass.dtype)
        z = X @ atoms.to(X).T  # (n, m)
        active = (z > 0).to(X.dtype)
        return torch.relu(z) @ self.mass + (active * (X @ self.direction.T)) @ r_teacher.to(X)


def linearized_optimum(
    X: torch.Tensor, r_teacher: torch.Tensor, atoms: torch.Tensor
) -> LinearizedOptimum:
    """The first-order shift of the optimum of eq. (8) for noiseless teacher labels.

    At lambda = 0 the teacher nu° = sum_j r°_j delta_{theta°_j} fits y_i = f°(x_i) exactly.
    For a small lambda > 0 and an optimum with one atom (r_j > 0, theta_j) near each
    theta°_j, away from the kinks <theta°_j, x_i> = 0 (akiyama2021 Assumption 4.3), the
    optimality conditions of F in (r_j, theta_j) are (1/n) J^T (f - y) + lambda (1, 0) = 0,
    with J the Jacobian of (f(x_i)) in the masses and the tangent directions at the teacher:
    columns relu(<theta°_j, x_i>) and r°_j 1{<theta°_j, x_i> > 0} P_j x_i (P_j the projection
    orthogonal to theta°_j). Linearizing f - y = J delta gives delta = -lambda H^-1 (1, 0) with
    the Gauss-Newton matrix H = J^T J / n, the strong convexity around the teacher on which
    the proof of Theorem 3.5 ends; then sum_j (r*_j - r°_j)^2 and sum_j dist^2(theta*_j,
    theta°_j) are lambda^2 times fixed numbers, the m lambda^2 order of eq. (9).
    ``atoms`` are the unit directions theta°_j (m, d), mutually orthogonal (Assumption 3.2).
    """
    X = X.to(torch.float64)
    atoms = atoms.to(X)
    r_teacher = r_teacher.to(X)
    m, d = atoms.shape
    z = X @ atoms.T  # (n, m)
    bases = []
    for j in range(m):  # orthonormal basis of the tangent space at theta°_j, (d, d - 1)
        projection = torch.eye(d, dtype=X.dtype) - torch.outer(atoms[j], atoms[j])
        bases.append(torch.linalg.eigh(projection).eigenvectors[:, 1:])
    tangent = [r_teacher[j] * (z[:, j : j + 1] > 0).to(X.dtype) * (X @ bases[j]) for j in range(m)]
    jacobian = torch.cat([torch.relu(z), *tangent], dim=1)  # (n, m + m (d - 1))
    hessian = jacobian.T @ jacobian / X.shape[0]
    rhs = torch.zeros(hessian.shape[0], dtype=X.dtype)
    rhs[:m] = 1.0
    delta = -torch.linalg.solve(hessian, rhs)
    steps = delta[m:].reshape(m, d - 1)
    direction = torch.stack([bases[j] @ steps[j] for j in range(m)])
    return LinearizedOptimum(mass=delta[:m], direction=direction)
