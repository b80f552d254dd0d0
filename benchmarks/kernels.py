"""The core computations of the book, each next to a plain reference written the obvious way.

Every case builds, on one device, a *fast* closure (the package's batched code, as the
notebooks call it) and a *reference* closure doing the same work the obvious way: a Python
loop over the replicas, each step by autograd. Both do one step of the same size on the
same replicas, so the ratio of their times is what batching and hand-written gradients buy.
The du2019 step is also compared with the two matrix products of the same shapes, the work
it cannot avoid, to say how close it runs to the hardware's limit.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import yaml

from twolayer.companion.paths import notebooks_dir
from twolayer.data import gaussian_labels, sphere
from twolayer.implicit_bias import margin_network, margin_step
from twolayer.kernels import h_infinity
from twolayer.losses import Loss
from twolayer.model import Replica, TwoLayerReLU, replica_grid
from twolayer.norm_gd import norm_gd_step
from twolayer.online_sgd import mean_field_student, sgd_step
from twolayer.rng import generator
from twolayer.training import gradient_step

Step = Callable[[], object]


@dataclass
class Case:
    """One benchmark: what it measures, the fast and reference steps, and their sizes."""

    name: str
    description: str
    fast: Step
    reference: Step | None = None
    reference_label: str = ""
    flops: float | None = None  # floating-point operations of one fast step, where known
    matmul: Step | None = None  # the unavoidable matrix products of one step, where known
    details: dict[str, object] = field(default_factory=dict)


def _paper_profile(notebook: str) -> dict:
    profiles = yaml.safe_load((notebooks_dir() / "profiles.yml").read_text())
    return profiles["paper"][notebook]


def _autograd_step(params: list[torch.Tensor], loss_fn: Callable[[], torch.Tensor], lr: float):
    """params <- params - lr grad(loss): one plain gradient step by autograd."""
    loss = loss_fn()
    grads = torch.autograd.grad(loss, params)
    with torch.no_grad():
        for p, g in zip(params, grads, strict=True):
            p.sub_(lr * g)


def _leaf_blocks(model: TwoLayerReLU) -> list[tuple[torch.Tensor, torch.Tensor, float]]:
    """Every replica's (W, a, c_m) as separate leaf tensors for an autograd loop."""
    blocks = zip(model.replica_blocks(model.W), model.replica_blocks(model.a), strict=True)
    scales = model.replica_blocks(model.output_scale)
    return [
        (W.clone().requires_grad_(True), a.clone().requires_grad_(True), float(c[0]))
        for (W, a), c in zip(blocks, scales, strict=True)
    ]


def du2019_step(device: torch.device) -> Case:
    """One gradient-descent step of du2019 Figure 1 at the paper profile (first layer)."""
    widths = list(_paper_profile("du2019-figure1")["widths"])
    n = d = 1000
    X = sphere(n, d, 0).to(device, torch.float32)
    y = gaussian_labels(n, 0).to(device, torch.float32)
    model = TwoLayerReLU.initialize(d, replica_grid(widths), device=device)
    lr_neuron = torch.full((model.W.shape[0],), 0.2, device=device)
    loss = Loss()

    def fast() -> None:
        with torch.no_grad():
            Z = model.preactivations(X)
            gradient_step(model, X, y, Z, model.outputs(Z), lr_neuron, loss)

    blocks = _leaf_blocks(model)

    def reference() -> None:
        for W, a, c in blocks:

            def loss_fn(W=W, a=a, c=c):
                return 0.5 * ((c * torch.relu(X @ W.T) @ a - y) ** 2).sum()

            _autograd_step([W], loss_fn, 0.2)

    M = model.W.shape[0]
    G = torch.randn(M, n, device=device)

    def matmul() -> None:
        torch.mm(model.W, X.T)
        torch.mm(G, X)

    return Case(
        "du2019-gd-step",
        f"du2019 Figure 1, paper profile: one GD step, n = d = {n}, widths {widths} "
        f"({M} neurons) in one batch",
        fast,
        reference,
        "loop over the widths, autograd",
        flops=2 * (2.0 * M * n * d),
        matmul=matmul,
        details={"neurons": M, "n": n, "d": d},
    )


def bach2022_sgd_step(device: torch.device) -> Case:
    """One online SGD step of bach2022 Figure 3: 30 repetitions x widths 1..30 batched."""
    paper = _paper_profile("bach2022-figure3")
    d, reps, B = int(paper["d"]), int(paper["reps"]), 100
    widths = list(range(1, 31))
    dtype = torch.float64 if paper.get("precision") == "float64" else torch.float32
    student = mean_field_student(d, widths, range(reps), dtype=dtype, device=device)
    X = torch.randn(reps, B, d, generator=generator(0, "bench"), dtype=dtype).to(device)
    y = torch.randn(student.num_replicas, B, generator=generator(1, "bench"), dtype=dtype)
    y = y.to(device)
    lr = 0.005

    def fast() -> None:
        with torch.no_grad():
            sgd_step(student, X, y, lr, "sum")

    blocks = _leaf_blocks(student)
    per = len(widths)

    def reference() -> None:
        for r, (W, a, c) in enumerate(blocks):
            x, target, m = X[r // per], y[r], W.shape[0]

            def risk(W=W, a=a, c=c, x=x, target=target):
                return 0.5 * ((c * torch.relu(x @ W.T) @ a - target) ** 2).mean()

            grads = torch.autograd.grad(risk(), [W, a])
            with torch.no_grad():  # the authors' step: m lr on a, m lr B on the input layer
                a.sub_(lr * m * grads[1])
                W.sub_(lr * m * B * grads[0])

    return Case(
        "bach2022-sgd-step",
        f"bach2022 Figure 3, paper profile: one SGD step, {reps} repetitions x widths 1..30 "
        f"({student.num_replicas} students, {student.W.shape[0]} neurons), d = {d}, batch {B}, "
        f"{str(dtype).removeprefix('torch.')}",
        fast,
        reference,
        "loop over the 900 students, autograd",
        details={"students": student.num_replicas, "d": d, "batch": B},
    )


def bach2022_margin_step(device: torch.device) -> Case:
    """One margin-ascent step of bach2022 Figures 5-6: m = 1000, 20 repetitions batched."""
    m, reps, n, d = 1000, 20, 256, 15
    g = generator(2, "bench")
    X = torch.randn(n, d, generator=g).to(device)
    y = torch.where(torch.randn(n, generator=g) > 0, 1.0, -1.0).to(device)
    model = margin_network(
        d, [Replica(m, s) for s in range(reps)], "both", dtype=torch.float32, device=device
    )
    step = 0.5

    def fast() -> None:
        with torch.no_grad():
            margin_step(model, X, y, step)

    blocks = _leaf_blocks(model)

    def reference() -> None:
        for W, a, c in blocks:

            def minus_smoothed(W=W, a=a, c=c):
                u = c * torch.relu(X @ W.T) @ a
                return torch.logsumexp(-y * u, dim=0) - math.log(n)

            _autograd_step([W, a], minus_smoothed, step * m)

    return Case(
        "bach2022-margin-step",
        f"bach2022 Figure 6: one ascent step on the smoothed margin, m = {m}, {reps} "
        f"repetitions batched, n = {n}, d = {d}, both layers",
        fast,
        reference,
        "loop over the repetitions, autograd",
        details={"neurons": model.W.shape[0], "n": n, "d": d},
    )


def akiyama2021_step(device: torch.device) -> Case:
    """One step of akiyama2021's Algorithm 1 over seeds and widths (n = 100, d = 5)."""
    n, d, seeds, widths = 100, 5, 64, [10, 20, 40]
    X = sphere(n, d, 3).to(device, torch.float64)
    y = torch.relu(X).sum(dim=1)
    model = TwoLayerReLU.initialize(
        d,
        [Replica(m, s) for m in widths for s in range(seeds)],
        scaling="none",
        first_init="sphere",
        output_init="balanced_sign",
        output_scale=0.2,
        trained="both",
        dtype=torch.float64,
        device=device,
    )
    alpha, lam = 0.5, 0.01

    def fast() -> None:
        with torch.no_grad():
            Z = model.preactivations(X)
            norm_gd_step(model, X, y, Z, model.outputs(Z), alpha, lam, "l1")

    blocks = _leaf_blocks(model)

    def reference() -> None:
        for W, a, _ in blocks:
            u = torch.relu(X @ W.T) @ a
            objective = 0.5 * ((u - y) ** 2).mean() + lam * (a.abs() * W.norm(dim=1)).sum()
            gW, ga = torch.autograd.grad(objective, [W, a])
            with torch.no_grad():  # eq. (11): eta_j = alpha |a_j| ||w_j|| / (a_j^2 + ||w_j||^2)
                norms = W.norm(dim=1)
                eta = alpha * a.abs() * norms / (a * a + norms * norms)
                a.sub_(eta * ga)
                W.sub_(eta[:, None] * gW)

    return Case(
        "akiyama2021-step",
        f"akiyama2021 Algorithm 1: one step, {seeds} seeds x widths {widths} "
        f"({model.num_replicas} replicas), n = {n}, d = {d}, float64",
        fast,
        reference,
        "loop over the replicas, autograd",
        details={"replicas": model.num_replicas, "n": n, "d": d},
    )


def h_infinity_case(device: torch.device, n: int) -> Case:
    """H∞ of n MNIST-sized inputs (d = 784) by blocks, against the one-line formula."""
    d = 784
    X = torch.randn(n, d, generator=generator(4, "bench"), dtype=torch.float64).to(device)
    out = torch.empty(n, n, dtype=torch.float64, device=device)

    def fast() -> None:
        h_infinity(X, out=out)

    def reference() -> None:
        norms = X.norm(dim=1)
        cos = ((X @ X.T) / torch.outer(norms, norms)).clamp(-1.0, 1.0)
        (X @ X.T) * (math.pi - torch.arccos(cos)) / (2 * math.pi)

    return Case(
        "h-infinity",
        f"arora2019: H∞ of n = {n} inputs in d = {d}, float64, by blocks",
        fast,
        reference,
        "the closed form in one expression",
        details={"n": n, "d": d},
    )


def eigh_case(device: torch.device, n: int) -> Case:
    """The eigendecomposition of an n x n H∞ (float64), which arora2019's chapter needs."""
    X = torch.randn(n, 784, generator=generator(5, "bench"), dtype=torch.float64).to(device)
    H = h_infinity(X, block_rows=1024)

    def fast() -> None:
        torch.linalg.eigh(H)

    return Case(
        "h-infinity-eigh", f"eigendecomposition of H∞, n = {n}, float64", fast, details={"n": n}
    )


def all_cases(device: torch.device, gram_n: int) -> list[Callable[[], Case]]:
    """Every case, built lazily (a case allocates its tensors only when it runs)."""
    return [
        lambda: du2019_step(device),
        lambda: bach2022_sgd_step(device),
        lambda: bach2022_margin_step(device),
        lambda: akiyama2021_step(device),
        lambda: h_infinity_case(device, gram_n),
        lambda: eigh_case(device, gram_n),
    ]
