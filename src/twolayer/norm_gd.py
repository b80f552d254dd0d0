"""Norm-dependent gradient descent on the L1- or L2-regularized square loss (akiyama2021).

The objective is akiyama2021 eq. (4),

    F(Theta) = (1/2n) sum_i (y_i - f(x_i))^2 + lambda sum_j |a_j| ||w_j||        ("l1"),

or eq. (13), whose penalty is (lambda/2) sum_j (a_j^2 + ||w_j||^2)               ("l2"),

for f(x) = sum_j a_j relu(w_j^T x) (a :class:`~twolayer.model.TwoLayerReLU` with
``scaling="none"`` and ``trained="both"``). Note the data term is the *mean*
(1/2n) sum_i, not the summed loss of du2019 and arora2019. Algorithm 1 moves every node
simultaneously,

    a_j <- a_j - eta_j g_j,   w_j <- w_j - eta_j h_j,
    eta_j = alpha |a_j| ||w_j|| / (a_j^2 + ||w_j||^2)                               (11),

with the subgradients g_j, h_j of Section 4.1. Every replica of the batch is updated at
once (one matrix product per step); metrics are recorded at a stride and the trajectory
(a_j, w_j) of every node into preallocated arrays; a checkpoint file makes long runs
resumable, as in :func:`twolayer.training.gradient_descent`.

Sign preservation. Writing G(theta) = (1/n) sum_i (f(x_i) - y_i) relu(theta^T x_i), one step
multiplies a_j by 1 - alpha rho_j (sgn(a_j) G(theta_j) + lambda) with
rho_j = ||w_j||^2 / (a_j^2 + ||w_j||^2) <= 1 for the L1 penalty, and by a factor at least
1 - alpha (|G(theta_j)| + lambda/2) for the L2 one. So the sign of every a_j is kept
whenever alpha (max_j |G(theta_j)| + lambda) < 1; the loop checks this at every step.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from twolayer.losses import Loss
from twolayer.model import TwoLayerReLU
from twolayer.training import History, _hash_tensor, _save, progress_bar

PENALTIES = ("l1", "l2")
CHECKS = ("raise", "warn", "off")
_LOSS = Loss("square", "mean")
_CODE_FILES = ("model.py", "losses.py", "training.py", "norm_gd.py")


def step_sizes(a: torch.Tensor, W: torch.Tensor, alpha: float) -> torch.Tensor:
    """eta_j = alpha |a_j| ||w_j|| / (a_j^2 + ||w_j||^2) of every node (akiyama2021 eq. (11))."""
    norms = W.norm(dim=1)
    denom = a * a + norms * norms
    return alpha * a.abs() * norms / torch.where(denom > 0, denom, torch.ones_like(denom))


def penalty_subgradients(
    a: torch.Tensor, W: torch.Tensor, lam: float | torch.Tensor, penalty: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """The penalty's part of g_j and h_j (akiyama2021 Section 4.1).

    ``"l1"``: lambda sgn(a_j) ||w_j|| and lambda |a_j| w_j / ||w_j|| (eq. (4));
    ``"l2"``: lambda a_j and lambda w_j (eq. (13)). Shapes (M,) and (M, d).
    ``lam`` is a number or one value per node, shape (M,).
    """
    lam_col = lam[:, None] if isinstance(lam, torch.Tensor) else lam
    if penalty == "l1":
        norms = W.norm(dim=1)
        safe = torch.where(norms > 0, norms, torch.ones_like(norms))
        return lam * torch.sign(a) * norms, lam_col * (a.abs() / safe)[:, None] * W
    if penalty == "l2":
        return lam * a, lam_col * W
    raise ValueError(f"penalty = {penalty!r} is not allowed: expected one of {PENALTIES}")


def replica_lambdas(
    model: TwoLayerReLU, lam: float | Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """lambda for every replica, shape (R,), from one number or one value per replica.

    A lambda sweep is then one batch: replica r is regularized with ``lam[r]``.
    """
    values = torch.as_tensor(lam, dtype=torch.float64).flatten()
    if values.numel() == 1:
        values = values.expand(model.num_replicas)
    if values.numel() != model.num_replicas:
        raise ValueError(
            f"lam has {values.numel()} values for {model.num_replicas} replicas: give one number "
            "or one value per replica"
        )
    if not bool(torch.isfinite(values).all()) or bool((values < 0).any()):
        raise ValueError(f"lambda must be finite and >= 0, got {values.tolist()}")
    return values


def _per_node(model: TwoLayerReLU, lam_r: torch.Tensor) -> torch.Tensor:
    return model.per_neuron(lam_r.to(device=model.device, dtype=model.dtype))


def penalty_value(
    model: TwoLayerReLU, lam: float | Sequence[float] | torch.Tensor, penalty: str
) -> torch.Tensor:
    """lambda sum_j |a_j| ||w_j|| (eq. (4)) or (lambda/2) sum_j (a_j^2 + ||w_j||^2) (eq. (13)).

    One value per replica, shape (R,). The two agree when |a_j| = ||w_j|| (eq. (5)).
    ``lam`` is one number, or one value per replica (see :func:`replica_lambdas`).
    """
    lam = _per_node(model, replica_lambdas(model, lam))
    norms = model.W.norm(dim=1)
    if penalty == "l1":
        per_node = lam * model.a.abs() * norms
    elif penalty == "l2":
        per_node = 0.5 * lam * (model.a**2 + norms**2)
    else:
        raise ValueError(f"penalty = {penalty!r} is not allowed: expected one of {PENALTIES}")
    return model.neuron_sum(per_node)


def objective(
    model: TwoLayerReLU,
    X: torch.Tensor,
    y: torch.Tensor,
    lam: float | Sequence[float] | torch.Tensor,
    penalty: str,
) -> torch.Tensor:
    """F(Theta) of eq. (4) or (13) for every replica: mean square loss plus penalty, (R,)."""
    return _LOSS.value(model(X), y) + penalty_value(model, lam, penalty)


def norm_gd_step(
    model: TwoLayerReLU,
    X: torch.Tensor,
    y: torch.Tensor,
    Z: torch.Tensor,
    u: torch.Tensor,
    alpha: float,
    lam: float | torch.Tensor,
    penalty: str,
) -> torch.Tensor:
    """One iteration of Algorithm 1 on every node, in place; returns max_j |G(theta_j)| per replica.

    ``Z`` (M, n) and ``u`` (R, n) are the preactivations and predictions at the current
    weights; ``lam`` is a number or one value per node, shape (M,). The data parts of g_j
    and h_j are the gradients of (1/2n) sum_i (y_i - f)^2,
    (1/n) sum_i (f - y_i) relu(w_j^T x_i) and (1/n) sum_i (f - y_i) a_j 1{w_j^T x_i >= 0} x_i.
    """
    a, W = model.a, model.W
    dW, da = model.gradients(X, Z, _LOSS.derivative(u, y))
    assert dW is not None and da is not None, "Algorithm 1 trains both layers"
    norms = W.norm(dim=1)
    G = (da / torch.where(norms > 0, norms, torch.ones_like(norms))).abs()
    pa, pW = penalty_subgradients(a, W, lam, penalty)
    eta = step_sizes(a, W, alpha)
    a.sub_(eta * (da + pa))
    W.sub_(eta[:, None] * (dW + pW))
    return model.neuron_max(G)


@dataclass
class NormGDRun:
    """What :func:`norm_dependent_gd` recorded.

    Attributes:
        history: ``"loss"`` (the mean square loss), ``"penalty"`` and ``"objective"`` F,
            each (K, R), at the record stride.
        steps: iterations of the stored trajectory, shape (T,).
        a: output weights along the trajectory, shape (T, M).
        W: first-layer weights along the trajectory, shape (T, M, d).
        sign_factor: max over the run of alpha (max_j |G(theta_j)| + lambda), per replica;
            below 1 the signs of the a_j are guaranteed to be kept.
    """

    history: History
    steps: np.ndarray
    a: np.ndarray
    W: np.ndarray
    sign_factor: np.ndarray


def _fingerprint(model, X, y, spec: dict) -> str:
    h = hashlib.sha256()
    for t in (model.W0, model.a0, X, y):
        _hash_tensor(h, t)
    spec = dict(spec)
    spec["replicas"] = [[r.width, r.seed] for r in model.replicas]
    spec["dtype"] = str(model.dtype)
    spec["device"] = model.device.type
    h.update(json.dumps(spec, sort_keys=True).encode())
    here = Path(__file__).parent
    for name in _CODE_FILES:
        h.update((here / name).read_bytes())
    return h.hexdigest()


def _check_model(model: TwoLayerReLU) -> None:
    if model.scaling != "none" or model.trained != "both":
        raise ValueError(
            "Algorithm 1 needs f(x) = sum_j a_j relu(w_j^T x) with both layers trained: build "
            f"the model with scaling='none', trained='both' (got {model.scaling!r}, "
            f"{model.trained!r})"
        )


def norm_dependent_gd(
    model: TwoLayerReLU,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    alpha: float,
    lam: float | Sequence[float],
    steps: int,
    penalty: str = "l1",
    record_every: int = 1,
    trajectory_every: int | None = None,
    check: str = "raise",
    checkpoint: str | Path | None = None,
    checkpoint_every: int | None = None,
    progress: bool | None = None,
) -> NormGDRun:
    """Run ``steps`` iterations of Algorithm 1 (akiyama2021) on every replica at once.

    Args:
        model: the replicas (``scaling="none"``, ``trained="both"``), updated in place.
            Algorithm 1 initializes it with ``first_init="sphere"``,
            ``output_init="balanced_sign"`` and ``output_scale = 2/M``.
        X: inputs (n, d); y: labels (n,) shared or (R, n).
        alpha: the step-size constant alpha of eq. (11), > 0.
        lam: the regularization parameter lambda >= 0, one number or one per replica.
        penalty: ``"l1"`` (eq. (4)) or ``"l2"`` (eq. (13)).
        record_every: stride of the loss/penalty/objective record (plus the last step).
        trajectory_every: stride of the stored (a, W) trajectory (default: record_every).
        check: what to do when alpha (max_j |G(theta_j)| + lambda) >= 1, where the signs of
            the a_j are no longer guaranteed: ``"raise"`` (default), ``"warn"`` or ``"off"``.
        checkpoint: file for resumable runs (a finished run with the same inputs is loaded).
        checkpoint_every: save every this many iterations (default steps // 20).
        progress: show a tqdm bar (default: unless TWOLAYER_PROGRESS=0).
    """
    _check_model(model)
    if penalty not in PENALTIES:
        raise ValueError(f"penalty = {penalty!r} is not allowed: expected one of {PENALTIES}")
    if check not in CHECKS:
        raise ValueError(f"check = {check!r} is not allowed: expected one of {CHECKS}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if not alpha > 0:
        raise ValueError(f"need alpha > 0, got alpha={alpha}")
    lam_r = replica_lambdas(model, lam)
    if record_every < 1 or (trajectory_every is not None and trajectory_every < 1):
        raise ValueError("record_every and trajectory_every must be >= 1")
    stride = trajectory_every or record_every
    dev, dtype = model.device, model.dtype
    lam_node = _per_node(model, lam_r)
    lam_check = lam_r.to(dev)
    X = X.to(device=dev, dtype=dtype)
    y = y.to(device=dev, dtype=dtype)
    record_at = set(range(0, steps + 1, record_every)) | {steps}
    traj_steps = sorted(set(range(0, steps + 1, stride)) | {steps})
    slot = {k: i for i, k in enumerate(traj_steps)}
    M, d = model.W.shape
    traj_a = torch.empty(len(traj_steps), M, dtype=dtype, device=dev)
    traj_W = torch.empty(len(traj_steps), M, d, dtype=dtype, device=dev)
    sign_factor = torch.zeros(model.num_replicas, dtype=torch.float64, device=dev)
    history = History(model.replicas, ("loss", "penalty", "objective"))

    spec = {
        "alpha": alpha,
        "lam": lam_r.tolist(),
        "steps": steps,
        "penalty": penalty,
        "record_every": record_every,
        "stride": stride,
    }
    path = Path(checkpoint) if checkpoint is not None else None
    fingerprint = _fingerprint(model, X, y, spec) if path else ""
    start, done = 0, False
    if path is not None and path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("fingerprint") == fingerprint:
            model.load_state_dict(saved["model"])
            history.load_state(saved["history"])
            traj_a.copy_(saved["traj_a"])
            traj_W.copy_(saved["traj_W"])
            sign_factor.copy_(saved["sign_factor"])
            start, done = int(saved["step"]), bool(saved["done"])
        else:
            warnings.warn(f"{path} belongs to a different run; starting over", stacklevel=2)
    every = checkpoint_every or max(1, steps // 20)

    def save(step: int, finished: bool = False) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        _save(
            path,
            {
                "fingerprint": fingerprint,
                "step": step,
                "done": finished,
                "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                "history": history.state(),
                "traj_a": traj_a.cpu(),
                "traj_W": traj_W.cpu(),
                "sign_factor": sign_factor.cpu(),
            },
        )

    def verify(k: int) -> None:
        worst = float(sign_factor.max())
        if check == "off" or worst < 1:
            return
        message = (
            f"alpha * (max_j |G(theta_j)| + lambda) reached {worst:.3g} >= 1 by iteration {k}: "
            f"Algorithm 1 may flip the sign of some a_j; lower alpha (now {alpha})"
        )
        if check == "raise":
            raise ValueError(message)
        warnings.warn(message, stacklevel=3)

    bar = progress_bar(steps, start, progress, "norm-dependent GD")
    warned = False
    with torch.no_grad(), bar:
        for k in range(start, steps + 1 if not done else start):
            Z = model.preactivations(X)
            u = model.outputs(Z)
            if k in slot:
                traj_a[slot[k]] = model.a
                traj_W[slot[k]] = model.W
            if k in record_at:
                fit = _LOSS.value(u, y)
                pen = penalty_value(model, lam_r, penalty)
                history.append(
                    k,
                    {
                        "loss": fit.double().cpu(),
                        "penalty": pen.double().cpu(),
                        "objective": (fit + pen).double().cpu(),
                    },
                )
                if not warned and float(sign_factor.max()) >= 1:
                    verify(k)
                    warned = True
            if k == steps:
                break
            G = norm_gd_step(model, X, y, Z, u, alpha, lam_node, penalty)
            torch.maximum(sign_factor, alpha * (G.double() + lam_check), out=sign_factor)
            bar.update(1)
            if (k + 1) % every == 0 and k + 1 < steps:
                save(k + 1)
    if not warned:
        verify(steps)
    if not done:
        save(steps, finished=True)
    return NormGDRun(
        history=history,
        steps=np.asarray(traj_steps),
        a=traj_a.double().cpu().numpy(),
        W=traj_W.double().cpu().numpy(),
        sign_factor=sign_factor.cpu().numpy(),
    )


def balanced_init(
    d: int, replicas, *, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
) -> TwoLayerReLU:
    """Algorithm 1's initialization: w_j ~ Unif(S^{d-1}), a_j = +2/M for the first
    ceil(M/2) nodes of each replica and -2/M for the others (M/2 each when M is even).

    Replicas may have different widths M; each gets its own 2/M.
    """
    model = TwoLayerReLU.initialize(
        d,
        replicas,
        scaling="none",
        first_init="sphere",
        output_init="balanced_sign",
        output_scale=1.0,
        trained="both",
        dtype=dtype,
        device=device,
    )
    model.a.div_(model.per_neuron(model.widths.to(dtype)) / 2.0)
    model.a0 = model.a.clone()
    return model


def trajectory_losses(
    model: TwoLayerReLU, run: NormGDRun, X: torch.Tensor, y: torch.Tensor
) -> np.ndarray:
    """The data term (1/2n) sum_i (y_i - f(x_i))^2 of eq. (4) along a stored trajectory.

    ``f`` is every replica's network at every step of ``run.steps``, rebuilt from
    ``run.a`` and ``run.W`` (the replicas of ``model``); ``X`` (n, d) and ``y`` (n,) are any
    points and their labels: the training set gives back the recorded ``"loss"``, fresh
    points give a test loss. Shape (T, R), float64.
    """
    dev, dtype = model.device, model.dtype
    X = X.to(device=dev, dtype=dtype)
    y = y.to(device=dev, dtype=dtype)
    out = np.empty((len(run.steps), model.num_replicas))
    with torch.no_grad():
        for t in range(len(run.steps)):
            a = torch.as_tensor(run.a[t], device=dev, dtype=dtype)
            W = torch.as_tensor(run.W[t], device=dev, dtype=dtype)
            u = model.neuron_sum(torch.relu(W @ X.T).mul_(a[:, None]))
            out[t] = _LOSS.value(u, y).double().cpu().numpy()
    return out


def balance_nodes(model: TwoLayerReLU) -> TwoLayerReLU:
    """Move every node to the balanced point |a_j| = ||w_j|| of its rescaling orbit, in place.

    By the 1-homogeneity of the ReLU, (a_j, w_j) -> (a_j / c, c w_j) with c > 0 leaves
    a_j relu(w_j^T x), the mass r_j = a_j ||w_j|| and the direction theta_j unchanged;
    c_j = sqrt(|a_j| / ||w_j||) gives |a_j| = ||w_j|| = sqrt(|r_j|), the minimizer in
    akiyama2021 eq. (5), where the L2 penalty of eq. (13) equals the L1 penalty of eq. (4).
    The copies ``a0``, ``W0`` become the balanced weights (a balanced start). Nodes with
    a_j = 0 or w_j = 0 are left as they are. Returns the model.
    """
    norms = model.W.norm(dim=1)
    alive = (norms > 0) & (model.a != 0)
    c = torch.where(alive, (model.a.abs() / torch.where(alive, norms, 1.0)).sqrt(), 1.0)
    model.a.div_(c)
    model.W.mul_(c[:, None])
    model.a0 = model.a.clone()
    model.W0 = model.W.clone()
    return model
