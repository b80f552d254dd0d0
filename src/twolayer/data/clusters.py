"""Clusters on a grid: the classification task of bach2022 Section 5.5 (Figures 5 and 6).

In the first two coordinates the inputs are a mixture of k^2 disks of radius
Delta = 1/(3k - 1) whose centres sit on a k x k grid of step 3 Delta inside [-1/2, 1/2]^2;
the remaining d - 2 coordinates are uniform on [-1/2, 1/2] and carry no information.
Each disk (cluster) gets a class in {-1, +1} at random, floor(k^2/2) of them -1.

Two laws for the distance to the centre are offered. The paper says "uniform on disks"
(``radius="disk"``: R = Delta sqrt(U)); the authors' code draws R = Delta U
(``radius="code"``), which piles points up near the centres (density proportional to
1/r in the plane). :func:`append_bias` adds the constant coordinate the authors' code
feeds to the network as a bias input.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from twolayer.rng import generator

RADIUS_LAWS = ("disk", "code")


@dataclass(frozen=True)
class ClusterTask:
    """One draw of the task: grid size k, dimension d, and the class of every cluster.

    Attributes:
        k: clusters per side (k^2 clusters); d: input dimension (>= 2).
        centres: cluster centres in the first two coordinates, shape (k^2, 2).
        classes: the class of every cluster, +-1, shape (k^2,).
        radius: ``"disk"`` (uniform on each disk) or ``"code"`` (uniform radius).
        seed: the seed the class assignment came from (samples use their own streams).
    """

    k: int
    d: int
    centres: torch.Tensor
    classes: torch.Tensor
    radius: str
    seed: int

    @property
    def delta(self) -> float:
        """The disks' radius 1/(3k - 1); the grid step is 3 Delta."""
        return 1.0 / (3 * self.k - 1)

    def sample(self, n: int, stream: str | int = "train") -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` labelled points, X of shape (n, d) and y of shape (n,), float64.

        ``stream`` names the draw (``"train"``, ``"test"``, a repetition index, ...): the
        same task and stream give the same points, and a prefix X[:n'] of a larger draw is
        not promised (ask for the largest n and slice it for nested training sets).
        """
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n = {n!r} is not allowed: expected an integer >= 1")
        gen = generator(self.seed, "clusters", self.k, self.d, stream, n)
        cluster = torch.randint(0, self.k * self.k, (n,), generator=gen)
        angle = 2.0 * math.pi * torch.rand(n, generator=gen, dtype=torch.float64)
        u = torch.rand(n, generator=gen, dtype=torch.float64)
        r = self.delta * (u.sqrt() if self.radius == "disk" else u)
        X = torch.rand(n, self.d, generator=gen, dtype=torch.float64) - 0.5
        X[:, 0] = self.centres[cluster, 0] + r * angle.cos()
        X[:, 1] = self.centres[cluster, 1] + r * angle.sin()
        return X, self.classes[cluster].clone()


def cluster_task(k: int, d: int, seed: int = 0, radius: str = "disk") -> ClusterTask:
    """Draw the class of each of the k^2 clusters (bach2022 Section 5.5).

    Centre p (p = 1..k) along each axis sits at Delta (1 + 3 (p - 1)) - 1/2, so the outer
    disks touch the square's edges. floor(k^2 / 2) clusters chosen at random get class -1.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k = {k!r} is not allowed: expected an integer >= 1")
    if isinstance(d, bool) or not isinstance(d, int) or d < 2:
        raise ValueError(f"d = {d!r} is not allowed: expected an integer >= 2")
    if radius not in RADIUS_LAWS:
        raise ValueError(f"radius = {radius!r} is not allowed: expected one of {RADIUS_LAWS}")
    delta = 1.0 / (3 * k - 1)
    axis = delta * (1.0 + 3.0 * torch.arange(k, dtype=torch.float64)) - 0.5
    cx, cy = torch.meshgrid(axis, axis, indexing="ij")
    centres = torch.stack([cx.flatten(), cy.flatten()], dim=1)
    order = torch.randperm(k * k, generator=generator(seed, "cluster-classes", k))
    classes = torch.ones(k * k, dtype=torch.float64)
    classes[order[: (k * k) // 2]] = -1.0
    return ClusterTask(k, d, centres, classes, radius, seed)


def append_bias(X: torch.Tensor) -> torch.Tensor:
    """(x, 1): the inputs with a constant last coordinate, so a ReLU unit gets a bias."""
    return torch.cat([X, torch.ones(*X.shape[:-1], 1, dtype=X.dtype, device=X.device)], dim=-1)
