"""Online SGD of a mean-field student against a teacher network (bach2022 Section 4).

The student is f(x) = (1/m) sum_j theta2(j) relu(theta1(:, j)^T x) (``scaling="mean_field"``)
and the teacher y(x) = sum_{j <= m0} theta2°(j) relu(theta1°(:, j)^T x) with +-1 output
weights and unit-norm input weights, no 1/m0 factor (bach2022 Figures 2 and 3, as in the
authors' code). Inputs are standard Gaussian, and every step draws a fresh batch, so the
iteration is SGD on the population risk R(f) = (1/2) E[(f(x) - y(x))^2].

The step is the mean-field one, theta <- theta - lr m grad L_batch with
L_batch = (1/2B) sum_i (f(x_i) - y_i)^2: every particle moves at a speed that does not
depend on m. The authors' code sums the input-layer gradient over the batch instead of
averaging it (``input_gradient="sum"``), which makes the input-layer step B times larger
than the output-layer one; ``input_gradient="mean"`` is the rule of the paper's text.

Repetitions run as one batch: the teacher has one replica per repetition (its seed), the
student's replicas split into as many consecutive groups (see
:meth:`twolayer.model.TwoLayerReLU.input_groups`), e.g. every width of a repetition, and
each group draws its own batches from its own stream (so a run alone reproduces the same
numbers). Batches are drawn on the CPU in chunks and moved at once; the risk on a fixed
test set per group and the particles (theta2, theta1) are recorded at a stride into
preallocated arrays, with no host-device synchronization in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from twolayer.model import Replica, TwoLayerReLU
from twolayer.rng import derive_seed, generator
from twolayer.training import Checkpoint, progress_bar, run_fingerprint

INPUT_GRADIENTS = ("mean", "sum")
_CODE_FILES = ("model.py", "online_sgd.py")
_CHUNK_ELEMENTS = 1 << 18  # inputs drawn per group and chunk (float64 on the CPU: 2 MiB)


def teacher_network(
    d: int,
    m0: int,
    seeds: Sequence[int],
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> TwoLayerReLU:
    """One teacher per seed: m0 units, output weights +-1, input weights on the unit sphere."""
    return TwoLayerReLU.initialize(
        d,
        [Replica(m0, int(s)) for s in seeds],
        scaling="none",
        first_init="sphere",
        output_init="sign",
        trained="output",
        dtype=dtype,
        device=device,
    )


def mean_field_student(
    d: int,
    widths: Sequence[int],
    seeds: Sequence[int],
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> TwoLayerReLU:
    """Students of every width for every seed, grouped by seed (one group per repetition).

    theta2(j) = +-1 and theta1(:, j) uniform on the unit sphere, so every particle
    |theta2(j)| theta1(:, j) starts on the unit circle (bach2022 Figure 2, the black circle).
    """
    return TwoLayerReLU.initialize(
        d,
        [Replica(int(m), int(s)) for s in seeds for m in widths],
        scaling="mean_field",
        first_init="sphere",
        output_init="sign",
        trained="both",
        dtype=dtype,
        device=device,
    )


def sgd_step(
    student: TwoLayerReLU,
    X: torch.Tensor,
    y: torch.Tensor,
    lr: float,
    input_gradient: str = "sum",
) -> None:
    """One mean-field SGD step on the batch ``X`` (G, B, d) with labels ``y`` (R, B).

    theta2 <- theta2 - lr m dL/dtheta2 and theta1 <- theta1 - lr m c dL/dtheta1, with
    L = (1/2B) sum_i (f(x_i) - y_i)^2 per replica, c = B for ``"sum"`` and 1 for ``"mean"``.
    """
    Z = student.preactivations(X)
    u = student.outputs(Z)
    dW, da = student.gradients(X, Z, (u - y) / X.shape[-2])
    assert dW is not None and da is not None, "the student trains both layers"
    speed = lr * student.neuron_widths
    factor = float(X.shape[-2]) if input_gradient == "sum" else 1.0
    student.a.sub_(speed * da)
    student.W.sub_((speed * factor)[:, None] * dW)


def risk(student: TwoLayerReLU, teacher: TwoLayerReLU, X: torch.Tensor) -> torch.Tensor:
    """(1/2) mean_i (f(x_i) - y(x_i))^2 for every student replica, on inputs (G, n, d): (R,)."""
    y = _labels(student, teacher, X)
    return 0.5 * ((student(X) - y) ** 2).mean(dim=1)


def _labels(student: TwoLayerReLU, teacher: TwoLayerReLU, X: torch.Tensor) -> torch.Tensor:
    per = student.num_replicas // teacher.num_replicas
    return teacher(X).repeat_interleave(per, dim=0)


@dataclass
class OnlineRun:
    """What :func:`online_sgd` recorded.

    Attributes:
        risk_steps: iterations at which the risk was measured, (K,).
        risk: (1/2) mean (f - y)^2 on the fixed test set of each group, (K, R).
        steps: iterations of the stored particles, (T,).
        a: output weights theta2 along the run, (T, M).
        W: input weights theta1 along the run, (T, M, d).
    """

    risk_steps: np.ndarray
    risk: np.ndarray
    steps: np.ndarray
    a: np.ndarray
    W: np.ndarray


def _check(student: TwoLayerReLU, teacher: TwoLayerReLU, input_gradient: str) -> None:
    if student.scaling != "mean_field" or student.trained != "both":
        raise ValueError(
            "the student must be f(x) = (1/m) sum_j theta2(j) relu(theta1(:, j)^T x) with both "
            f"layers trained (got scaling={student.scaling!r}, trained={student.trained!r})"
        )
    if input_gradient not in INPUT_GRADIENTS:
        raise ValueError(
            f"input_gradient = {input_gradient!r} is not allowed: expected one of "
            f"{list(INPUT_GRADIENTS)}"
        )
    if teacher.W.shape[1] != student.W.shape[1]:
        raise ValueError(
            f"teacher and student inputs differ: d = {teacher.W.shape[1]} and {student.W.shape[1]}"
        )
    student.input_groups(teacher.num_replicas)


def _draw(teacher: TwoLayerReLU, seed: int, key: tuple, count: int, n: int) -> torch.Tensor:
    """Standard Gaussian inputs (count, G, n, d), each group from its own stream."""
    d = teacher.W.shape[1]
    parts = [
        torch.randn(
            count, n, d, generator=generator(seed, *key, rep.seed, n, d), dtype=torch.float64
        )
        for rep in teacher.replicas
    ]
    return torch.stack(parts, dim=1)


def online_sgd(
    student: TwoLayerReLU,
    teacher: TwoLayerReLU,
    *,
    steps: int,
    lr: float,
    batch_size: int = 100,
    input_gradient: str = "sum",
    test_size: int = 1000,
    record_every: int = 100,
    trajectory_every: int | None = None,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    checkpoint_every: int | None = None,
    progress: bool | None = None,
) -> OnlineRun:
    """Run ``steps`` steps of online SGD for every student replica at once (in place).

    Args:
        student: built by :func:`mean_field_student` (or any mean-field model training
            both layers) whose replicas split into one group per teacher replica.
        teacher: built by :func:`teacher_network`; group g learns teacher g.
        lr: the step size (bach2022's code: 0.002 for Figure 2, 0.005 for Figure 3).
        batch_size: fresh Gaussian inputs per step and group.
        input_gradient: ``"sum"`` (the authors' code) or ``"mean"`` (the paper's text).
        test_size: fixed fresh inputs per group on which the risk is measured.
        record_every: stride of the risk record (plus the last step).
        trajectory_every: stride of the stored particles (default: record_every).
        seed: the seed of the batch and test streams.
        checkpoint, checkpoint_every: resumable runs, as in
            :func:`twolayer.training.gradient_descent`.
    """
    _check(student, teacher, input_gradient)
    for name, value, low in (
        ("steps", steps, 0),
        ("batch_size", batch_size, 1),
        ("test_size", test_size, 1),
        ("record_every", record_every, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} = {value!r} is not allowed: expected an integer >= {low}")
    if not lr > 0:
        raise ValueError(f"lr = {lr!r} is not allowed: expected a number > 0")
    stride = trajectory_every or record_every
    dev, dtype = student.device, student.dtype
    d = teacher.W.shape[1]
    chunk = max(1, _CHUNK_ELEMENTS // (batch_size * d))  # the same for every G and steps
    X_test = _draw(teacher, seed, ("test",), 1, test_size)[0].to(device=dev, dtype=dtype)
    risk_at = sorted(set(range(0, steps + 1, record_every)) | {steps})
    traj_at = sorted(set(range(0, steps + 1, stride)) | {steps})
    risk_slot = {k: i for i, k in enumerate(risk_at)}
    traj_slot = {k: i for i, k in enumerate(traj_at)}
    risks = torch.empty(len(risk_at), student.num_replicas, dtype=dtype, device=dev)
    traj_a = torch.empty(len(traj_at), *student.a.shape, dtype=dtype, device=dev)
    traj_W = torch.empty(len(traj_at), *student.W.shape, dtype=dtype, device=dev)

    spec = {
        "steps": steps,
        "lr": lr,
        "batch_size": batch_size,
        "input_gradient": input_gradient,
        "test_size": test_size,
        "record_every": record_every,
        "stride": stride,
        "seed": seed,
    }
    spec["replicas"] = [[r.width, r.seed] for r in student.replicas]
    spec["teachers"] = [[r.width, r.seed] for r in teacher.replicas]
    spec["dtype"], spec["device"] = str(dtype), dev.type
    store = Checkpoint(
        checkpoint,
        run_fingerprint((student.W0, student.a0, teacher.W, teacher.a), spec, _CODE_FILES)
        if checkpoint is not None
        else "",
    )
    start = 0
    saved = store.load()
    if saved is not None:
        student.load_state_dict(saved["model"])
        for target, key in ((risks, "risks"), (traj_a, "traj_a"), (traj_W, "traj_W")):
            target.copy_(saved[key])
        start = int(saved["step"])
    every = max(chunk, (checkpoint_every or max(1, steps // 20)) // chunk * chunk)

    def save(step: int) -> None:
        state = {"model": student.state_dict(), "risks": risks, "traj_a": traj_a, "traj_W": traj_W}
        store.save(step, state)

    def record(k: int) -> None:
        if k in risk_slot:
            risks[risk_slot[k]] = risk(student, teacher, X_test)
        if k in traj_slot:
            traj_a[traj_slot[k]] = student.a
            traj_W[traj_slot[k]] = student.W

    bar = progress_bar(steps, start, progress, "online SGD")
    with torch.no_grad(), bar:
        k = start
        while k < steps:
            count = min(chunk, steps - k)
            key = ("batches", chunk, k // chunk)
            batches = _draw(teacher, seed, key, chunk, batch_size)[:count]
            batches = batches.to(device=dev, dtype=dtype)
            for X in batches:
                record(k)
                sgd_step(student, X, _labels(student, teacher, X), lr, input_gradient)
                k += 1
            bar.update(count)
            if k % every == 0 and k < steps:
                save(k)
        record(steps)
    if start < steps:
        save(steps)
    return OnlineRun(
        risk_steps=np.asarray(risk_at),
        risk=risks.double().cpu().numpy(),
        steps=np.asarray(traj_at),
        a=traj_a.double().cpu().numpy(),
        W=traj_W.double().cpu().numpy(),
    )


def predictive_successes(
    successes: Sequence[int],
    runs: int,
    reps: int,
    *,
    draws: int = 20000,
    seed: int = 0,
) -> np.ndarray:
    """Success counts of ``reps`` new runs per width, given a reference (bach2022 Figure 3).

    At width k the reference saw ``successes[k]`` of ``runs`` runs end below the success
    threshold. The success probability p_k is drawn from its Jeffreys posterior
    Beta(successes[k] + 1/2, runs - successes[k] + 1/2), then the count of ``reps`` new runs
    from Binomial(reps, p_k): the posterior predictive, which carries the sampling noise of
    the reference and of the new runs. Returns integers of shape (draws, widths).
    """
    counts = np.asarray(successes, dtype=np.int64)
    if counts.ndim != 1 or (counts < 0).any() or (counts > runs).any():
        raise ValueError(f"successes must be counts between 0 and runs = {runs}, got {counts}")
    if runs < 1 or reps < 1 or draws < 1:
        raise ValueError(f"runs, reps and draws must be >= 1, got {runs}, {reps}, {draws}")
    rng = np.random.default_rng(derive_seed(seed, "predictive successes"))
    p = rng.beta(counts + 0.5, runs - counts + 0.5, size=(draws, counts.size))
    return rng.binomial(reps, p)


def mass_at_directions(
    student: TwoLayerReLU, directions: torch.Tensor, max_angle: float
) -> torch.Tensor:
    """Signed mass of every replica's measure within ``max_angle`` radians of each direction.

    By the 1-homogeneity of the ReLU, neuron j of f(x) = c_m sum_j theta2(j)
    relu(theta1(:, j)^T x) is the atom c_m theta2(j) ||theta1(:, j)|| at the direction
    theta1(:, j) / ||theta1(:, j)|| (bach2022 Section 2; c_m = 1/m for the mean-field
    student, so a teacher neuron +-1 relu(theta°^T x) with ||theta°|| = 1 is an atom of mass
    +-1). ``directions`` is (k, d), shared by every replica, or (G, k, d), one set per group
    of consecutive replicas (each group's teacher); they need not have unit norm. Returns
    (R, k): the summed mass of the neurons whose angle to direction k is at most ``max_angle``.
    """
    dirs = directions.to(device=student.device, dtype=student.dtype)
    if dirs.ndim == 2:
        dirs = dirs[None]
    if dirs.ndim != 3 or dirs.shape[2] != student.W.shape[1]:
        raise ValueError(
            f"directions must be (k, d) or (G, k, d) with d = {student.W.shape[1]}, "
            f"got {tuple(directions.shape)}"
        )
    per = student.input_groups(dirs.shape[0])
    norms = student.W.norm(dim=1)
    mass = student.output_scale * student.a * norms
    unit = student.W / norms.clamp_min(torch.finfo(student.dtype).tiny)[:, None]
    dirs = dirs / dirs.norm(dim=2, keepdim=True)
    cos = torch.bmm(unit.view(dirs.shape[0], per, -1), dirs.transpose(1, 2)).reshape(
        student.W.shape[0], dirs.shape[1]
    )
    near = (cos >= float(np.cos(max_angle))) & (norms > 0)[:, None]
    return student.neuron_sum(mass[:, None] * near.to(mass.dtype))
