"""Gradient ascent on the smoothed margin: the implicit-bias experiments of bach2022 Section 5.

A mean-field network f(x) = (1/m) sum_j a_j relu(w_j^T x) (``scaling="mean_field"``) is
trained without regularization on the exponential loss, written as ascent on the smoothed
margin

    S(f) = -log( (1/n) sum_i exp(-y_i f(x_i)) ),   min_i y_i f(x_i) <= S <= min_i y_i f(x_i) + log n

with the step size eta / sqrt(k + 1) at step k = 1, 2, ... and the mean-field speed-up
(every particle's gradient multiplied by m), as in the code behind bach2022 Figures 5 and 6:

* both layers (``trained="both"``): w_j, a_j ~ N(0, 1) at the start; the direction of f
  tends to a max-margin classifier for the variation norm (bach2022 Section 5.4);
* the output layer alone (``trained="output"``): w_j ~ N(0, I) frozen, a = 0 at the start,
  and the step multiplied by beta_k = max(1, ||a|| / sqrt(m)); f tends in direction to the
  max-margin classifier of the random-features RKHS (Theorem 4), which
  :func:`twolayer.max_margin.kernel_max_margin` computes directly.

Normalized margins divide min_i y_i f(x_i) by a norm of f: the path norm
(1/m) sum_j |a_j| ||w_j||, which bounds the variation norm, for both layers, and the
random-features RKHS norm ||a|| / sqrt(m) for the output layer. (The authors' code divides by
sum_j (a_j^2 + ||w_j||^2) / m and by ||a|| / m: the same curves up to a factor 2 near
balance and a constant sqrt(m).)

Replicas (seeds, widths, data sets) run as one batch; inputs may come one set per group
of replicas (:meth:`twolayer.model.TwoLayerReLU.input_groups`), and ``weights`` (0/1 per
sample) give replicas training sets of different sizes inside one padded array.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from twolayer.model import Replica, TwoLayerReLU
from twolayer.training import Checkpoint, progress_bar, run_fingerprint

VARIANTS = ("both", "output")
_CODE_FILES = ("model.py", "implicit_bias.py")


def margin_network(
    d: int,
    replicas: Sequence[Replica],
    trained: str,
    *,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> TwoLayerReLU:
    """The starting point of either variant (see the module docstring)."""
    if trained not in VARIANTS:
        raise ValueError(f"trained = {trained!r} is not allowed: expected one of {list(VARIANTS)}")
    return TwoLayerReLU.initialize(
        d,
        replicas,
        scaling="mean_field",
        first_init="gaussian",
        output_init="gaussian" if trained == "both" else "zero",
        trained=trained,
        dtype=dtype,
        device=device,
    )


def smoothed_margin(
    u: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """S = -log((1/n) sum_i exp(-y_i u_i)) per replica, over the samples with weight 1, (R,).

    Evaluated stably as min margin - log(mean exp(min margin - y_i u_i)).
    """
    margins = y * u
    if weights is None:
        low = margins.min(dim=1).values
        return low - torch.log(torch.exp(low[:, None] - margins).mean(dim=1))
    low = torch.where(weights > 0, margins, torch.inf).min(dim=1).values
    mean = (weights * torch.exp(low[:, None] - margins)).sum(dim=1) / weights.sum(dim=1)
    return low - torch.log(mean)


def normalized_margin(
    model: TwoLayerReLU, u: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """min_i y_i f(x_i) divided by the path norm (both layers) or ||a||/sqrt(m) (output), (R,)."""
    margins = y * u
    if weights is not None:
        margins = torch.where(weights > 0, margins, torch.inf)
    low = margins.min(dim=1).values
    m = model.widths.to(model.dtype)
    if model.trained == "output":
        norm = model.neuron_sum(model.a * model.a).sqrt() / m.sqrt()
    else:
        norm = model.neuron_sum(model.a.abs() * model.W.norm(dim=1)) / m
    return low / norm


def margin_step(
    model: TwoLayerReLU,
    X: torch.Tensor,
    y: torch.Tensor,
    step: float,
    weights: torch.Tensor | None = None,
    Z: torch.Tensor | None = None,
) -> torch.Tensor:
    """One ascent step on S with the given step size, in place; returns the outputs (R, n).

    The gradient of S with respect to f(x_i) is y_i p_i, p the softmax of -y_i f(x_i) over
    the samples. Each particle moves by step * m * dS/d(particle); for the output layer
    alone the step is also multiplied by beta = max(1, ||a|| / sqrt(m)) of each replica.
    """
    Z = model.preactivations(X) if Z is None else Z
    u = model.outputs(Z)
    margins = y * u
    if weights is not None:
        margins = torch.where(weights > 0, margins, torch.inf)
    p = torch.exp(margins.min(dim=1, keepdim=True).values - margins)
    p = p / p.sum(dim=1, keepdim=True)
    dW, da = model.gradients(X, Z, -(y * p))  # gradients of -S
    m = model.neuron_widths
    if model.trained == "output":
        norms = model.neuron_sum(model.a * model.a).sqrt()
        beta = torch.clamp(norms / model.widths.to(model.dtype).sqrt(), min=1.0)
        speed = step * m * model.per_neuron(beta.to(model.dtype))
    else:
        speed = step * m
    if dW is not None:
        model.W.sub_(speed[:, None] * dW)
    if da is not None:
        model.a.sub_(speed * da)
    return u


@dataclass
class MarginRun:
    """What :func:`margin_ascent` recorded at its stride, each (K, R) with ``steps`` (K,).

    ``smoothed``: S; ``margin``: min_i y_i f(x_i); ``normalized``: the normalized margin.
    """

    steps: np.ndarray
    smoothed: np.ndarray
    margin: np.ndarray
    normalized: np.ndarray


def margin_ascent(
    model: TwoLayerReLU,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    step_size: float,
    weights: torch.Tensor | None = None,
    record_every: int = 100,
    checkpoint: str | Path | None = None,
    checkpoint_every: int | None = None,
    progress: bool | None = None,
) -> MarginRun:
    """Run ``steps`` ascent steps eta / sqrt(k + 1), k = 1..steps, on every replica (in place).

    Args:
        model: from :func:`margin_network` (mean-field scaling).
        X: inputs (n, d) or one set per group of replicas (G, n, d).
        y: labels +-1, (n,) or one row per replica (R, n).
        step_size: eta (the authors' code uses 0.5).
        weights: 1 for the samples each replica trains on and 0 for padding, (R, n).
        record_every: stride of the record (plus the last step).
        checkpoint, checkpoint_every: resumable runs.
    """
    if model.scaling != "mean_field" or model.trained not in VARIANTS:
        raise ValueError(
            "margin ascent needs a mean-field model training both layers or the output layer "
            f"(got scaling={model.scaling!r}, trained={model.trained!r})"
        )
    for name, value, low in (("steps", steps, 0), ("record_every", record_every, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} = {value!r} is not allowed: expected an integer >= {low}")
    if not step_size > 0:
        raise ValueError(f"step_size = {step_size!r} is not allowed: expected a number > 0")
    dev, dtype = model.device, model.dtype
    X = X.to(device=dev, dtype=dtype)
    R = model.num_replicas
    y = y.to(device=dev, dtype=dtype).expand(R, X.shape[-2])
    if not bool((y.abs() == 1).all()):
        raise ValueError("labels must be -1 or +1")
    if weights is not None:
        weights = weights.to(device=dev, dtype=dtype).expand(R, X.shape[-2])
        if bool((weights.sum(dim=1) == 0).any()):
            raise ValueError("every replica needs at least one sample with weight 1")
    at = sorted(set(range(0, steps + 1, record_every)) | {steps})
    slot = {k: i for i, k in enumerate(at)}
    record = torch.empty(3, len(at), R, dtype=dtype, device=dev)

    spec = {"steps": steps, "step_size": step_size, "record_every": record_every}
    spec["replicas"] = [[r.width, r.seed] for r in model.replicas]
    spec["trained"], spec["dtype"], spec["device"] = model.trained, str(dtype), dev.type
    inputs = (model.W0, model.a0, X, y) + ((weights,) if weights is not None else ())
    store = Checkpoint(
        checkpoint, run_fingerprint(inputs, spec, _CODE_FILES) if checkpoint is not None else ""
    )
    start = 0
    saved = store.load()
    if saved is not None:
        model.load_state_dict(saved["model"])
        record.copy_(saved["record"])
        start = int(saved["step"])
    every = checkpoint_every or max(1, steps // 20)

    def keep(k: int, u: torch.Tensor) -> None:
        record[0, slot[k]] = smoothed_margin(u, y, weights)
        margins = y * u if weights is None else torch.where(weights > 0, y * u, torch.inf)
        record[1, slot[k]] = margins.min(dim=1).values
        record[2, slot[k]] = normalized_margin(model, u, y, weights)

    bar = progress_bar(steps, start, progress, "margin ascent")
    with torch.no_grad(), bar:
        for k in range(start, steps):
            if k in slot:
                keep(k, model(X))
            margin_step(model, X, y, step_size / np.sqrt(k + 2), weights)
            bar.update(1)
            if (k + 1) % every == 0 and k + 1 < steps:
                store.save(k + 1, {"model": model.state_dict(), "record": record})
        keep(steps, model(X))
    if start < steps:
        store.save(steps, {"model": model.state_dict(), "record": record})
    values = record.double().cpu().numpy()
    return MarginRun(np.asarray(at), values[0], values[1], values[2])
