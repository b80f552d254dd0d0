"""Full-batch gradient descent for a batch of replicas, with recorders and checkpoints.

The update is du2019 eq. (3), W(k+1) = W(k) - eta dL/dW(k), applied to whichever layers
the model trains, for every replica at once. Metrics (see :mod:`twolayer.metrics`) are
evaluated at chosen iterations. With a checkpoint path the state is saved every few
iterations, so an interrupted run resumes where it stopped; a finished run found on disk
with the same inputs is loaded instead of recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from twolayer.losses import Loss
from twolayer.metrics import METRICS, Snapshot, evaluate
from twolayer.model import Replica, TwoLayerReLU

Schedule = str | int | Iterable[int]
_FORMAT = 1
_CODE_FILES = ("model.py", "losses.py", "metrics.py", "kernels.py", "training.py")


def iterations(schedule: Schedule, steps: int) -> list[int]:
    """The iterations in 0..steps at which a metric is recorded.

    ``"all"``: every iteration; an integer e: every e-th iteration plus the last one;
    a sequence: those iterations (each must lie in 0..steps).
    """
    if isinstance(schedule, str):
        if schedule != "all":
            raise ValueError(f"schedule {schedule!r} is not allowed: use 'all', an int or a list")
        return list(range(steps + 1))
    if isinstance(schedule, int) and not isinstance(schedule, bool):
        if schedule < 1:
            raise ValueError(f"a record interval must be >= 1, got {schedule}")
        return sorted(set(range(0, steps + 1, schedule)) | {steps})
    chosen = sorted({int(k) for k in schedule})
    if chosen and (chosen[0] < 0 or chosen[-1] > steps):
        raise ValueError(f"record iterations must lie in 0..{steps}, got {chosen}")
    return chosen


class History:
    """Recorded metrics: for each name, the iterations and a (K, R) array of values."""

    def __init__(self, replicas: Sequence[Replica], names: Iterable[str]) -> None:
        self.replicas = list(replicas)
        self._steps: dict[str, list[int]] = {name: [] for name in names}
        self._values: dict[str, list[np.ndarray]] = {name: [] for name in self._steps}

    def append(self, step: int, values: Mapping[str, torch.Tensor]) -> None:
        for name, value in values.items():
            self._steps[name].append(step)
            self._values[name].append(value.numpy())

    @property
    def names(self) -> list[str]:
        return list(self._steps)

    def steps(self, name: str) -> np.ndarray:
        """The iterations at which ``name`` was recorded, shape (K,)."""
        return np.asarray(self._steps[name], dtype=np.int64)

    def __getitem__(self, name: str) -> np.ndarray:
        """The recorded values of ``name``, shape (K, R): one column per replica."""
        if name not in self._values:
            raise KeyError(f"{name!r} was not recorded; recorded: {self.names}")
        width = len(self.replicas)
        return np.asarray(self._values[name], dtype=np.float64).reshape(-1, width)

    def final(self, name: str) -> np.ndarray:
        """The last recorded value of ``name`` for every replica, shape (R,)."""
        return self[name][-1]

    def state(self) -> dict[str, object]:
        return {
            "steps": {k: list(v) for k, v in self._steps.items()},
            "values": {k: torch.from_numpy(self[k]) for k in self._values},
        }

    def load_state(self, state: Mapping[str, object]) -> None:
        steps = state["steps"]
        values = state["values"]
        for name in self._steps:
            self._steps[name] = [int(k) for k in steps[name]]  # type: ignore[index]
            self._values[name] = list(values[name].numpy())  # type: ignore[index]


def _hash_tensor(h: hashlib._Hash, t: torch.Tensor) -> None:
    h.update(str(tuple(t.shape)).encode())
    h.update(t.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())


def _fingerprint(model: TwoLayerReLU, X, y, lr, steps, loss: Loss, record) -> str:
    """A hash of everything that determines the run, including the package's own code."""
    h = hashlib.sha256()
    for t in (model.W0, model.a0, X, y, lr):
        _hash_tensor(h, t)
    spec = {
        "format": _FORMAT,
        "steps": steps,
        "loss": [loss.name, loss.reduction],
        "record": {k: v for k, v in sorted(record.items())},
        "replicas": [[r.width, r.seed] for r in model.replicas],
        "scaling": model.scaling,
        "trained": model.trained,
        "dtype": str(model.dtype),
        "device": model.device.type,
    }
    h.update(json.dumps(spec, sort_keys=True).encode())
    here = Path(__file__).parent
    for name in _CODE_FILES:
        h.update((here / name).read_bytes())
    return h.hexdigest()


def _save(path: Path, payload: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def run_fingerprint(tensors: Iterable[torch.Tensor], spec: dict, code_files: Iterable[str]) -> str:
    """A hash of a run's starting tensors, its settings and the package files it runs on."""
    h = hashlib.sha256()
    for t in tensors:
        _hash_tensor(h, t)
    h.update(json.dumps(spec, sort_keys=True).encode())
    here = Path(__file__).parent
    for name in code_files:
        h.update((here / name).read_bytes())
    return h.hexdigest()


class Checkpoint:
    """The state file of a resumable run, trusted only when its fingerprint matches.

    ``Checkpoint(None, ...)`` is a no-op, so a loop can call it unconditionally.
    """

    def __init__(self, path: str | Path | None, fingerprint: str) -> None:
        self.path = Path(path) if path is not None else None
        self.fingerprint = fingerprint

    def load(self) -> dict | None:
        """The saved state (a dict with ``"step"``), or None if there is none of this run."""
        if self.path is None or not self.path.exists():
            return None
        saved = torch.load(self.path, map_location="cpu", weights_only=True)
        if saved.get("fingerprint") != self.fingerprint:
            warnings.warn(f"{self.path} belongs to a different run; starting over", stacklevel=3)
            return None
        return saved

    def save(self, step: int, state: Mapping[str, torch.Tensor | dict]) -> None:
        """Write ``state`` (tensors moved to the CPU) and the step, atomically."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)

        def cpu(value):
            if isinstance(value, torch.Tensor):
                return value.detach().cpu()
            return {k: cpu(v) for k, v in value.items()}

        payload = {k: cpu(v) for k, v in state.items()}
        _save(self.path, {"fingerprint": self.fingerprint, "step": step, **payload})


def progress_bar(steps: int, start: int, progress: bool | None, desc: str) -> tqdm:
    """The tqdm bar of a training loop (off when ``progress`` is False or TWOLAYER_PROGRESS=0)."""
    return tqdm(
        total=steps,
        initial=start,
        disable=not _progress_enabled(progress),
        desc=desc,
        mininterval=1.0,
        leave=False,
    )


def _progress_enabled(progress: bool | None) -> bool:
    if progress is not None:
        return progress
    return os.environ.get("TWOLAYER_PROGRESS", "1") != "0"


def gradient_step(
    model: TwoLayerReLU,
    X: torch.Tensor,
    y: torch.Tensor,
    Z: torch.Tensor,
    u: torch.Tensor,
    lr_neuron: torch.Tensor,
    loss: Loss,
) -> None:
    """One update W <- W - eta dL/dW (and the same for a when it trains), du2019 eq. (3).

    ``Z`` and ``u`` are the preactivations and predictions at the current weights and
    ``lr_neuron`` holds the step size of every neuron, shape (M,).
    """
    dW, da = model.gradients(X, Z, loss.derivative(u, y))
    if dW is not None:
        model.W.sub_(dW.mul_(lr_neuron[:, None]))
    if da is not None:
        model.a.sub_(da.mul_(lr_neuron))


def gradient_descent(
    model: TwoLayerReLU,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float | Sequence[float] | torch.Tensor,
    steps: int,
    loss: Loss | str = "square",
    record: Mapping[str, Schedule] | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_every: int | None = None,
    progress: bool | None = None,
    callback: Callable[[int, TwoLayerReLU], None] | None = None,
) -> History:
    """Run ``steps`` iterations of full-batch gradient descent on every replica.

    Args:
        model: the replicas to train (updated in place).
        X: inputs, shape (n, d), shared by all replicas.
        y: labels, shape (n,) shared, or (R, n) one row per replica.
        lr: step size eta, one for all replicas or one per replica.
        steps: number of updates; metrics can be recorded at iterations 0..steps.
        loss: a :class:`~twolayer.losses.Loss` or a loss name (sum reduction).
        record: metric name -> schedule (``"all"``, every e-th iteration, or a list).
            Defaults to the loss at every iteration.
        checkpoint: file to save the state to; an existing checkpoint of the same run is
            resumed (or, if finished, loaded).
        checkpoint_every: save every this many iterations (default: steps // 20).
        progress: show a progress bar (default: unless TWOLAYER_PROGRESS=0).
        callback: called as ``callback(k, model)`` before update k.

    Returns:
        the :class:`History` of the recorded metrics.
    """
    if isinstance(loss, str):
        loss = Loss(loss)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    record = dict(record or {"loss": "all"})
    unknown = sorted(set(record) - set(METRICS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}: available are {sorted(METRICS)}")
    schedule = {name: set(iterations(spec, steps)) for name, spec in record.items()}
    record_spec = {
        k: v if isinstance(v, (str, int)) else sorted(schedule[k]) for k, v in record.items()
    }

    dev, dtype = model.device, model.dtype
    X = X.to(device=dev, dtype=dtype)
    y = y.to(device=dev, dtype=dtype)
    R = model.num_replicas
    lr_r = torch.as_tensor(lr, dtype=dtype, device=dev).reshape(-1)
    if lr_r.numel() == 1:
        lr_r = lr_r.expand(R).clone()
    if lr_r.numel() != R or not bool((lr_r > 0).all()):
        raise ValueError(f"lr must be one positive number or {R} positive numbers, one per replica")
    lr_neuron = model.per_neuron(lr_r)

    history = History(model.replicas, record)
    start = 0
    path = Path(checkpoint) if checkpoint is not None else None
    fingerprint = _fingerprint(model, X, y, lr_r, steps, loss, record_spec) if path else ""
    if path is not None and path.exists():
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("fingerprint") == fingerprint:
            model.load_state_dict(saved["model"])
            history.load_state(saved["history"])
            start = int(saved["step"])
            if saved.get("done"):
                return history
        else:
            warnings.warn(f"{path} belongs to a different run; starting over", stacklevel=2)
    every = checkpoint_every or max(1, steps // 20)

    initial_pattern = (model.W0 @ X.T) >= 0

    def save(step: int, done: bool) -> None:
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        payload = {
            "fingerprint": fingerprint,
            "step": step,
            "done": done,
            "model": state,
            "history": history.state(),
        }
        _save(path, payload)

    bar = progress_bar(steps, start, progress, "gradient descent")
    with torch.no_grad(), bar:
        for k in range(start, steps + 1):
            Z = model.preactivations(X)
            u = model.outputs(Z)
            names = [name for name in record if k in schedule[name]]
            if names:
                snap = Snapshot(k, model, X, y, Z, u, loss.value(u, y), initial_pattern)
                history.append(k, evaluate(names, snap))
            if k == steps:
                break
            if callback is not None:
                callback(k, model)
            gradient_step(model, X, y, Z, u, lr_neuron, loss)
            bar.update(1)
            if (k + 1) % every == 0 and k + 1 < steps:
                save(k + 1, done=False)
    save(steps, done=True)
    return history
