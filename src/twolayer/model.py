"""Two-layer ReLU networks, many independent replicas evaluated as one tensor computation.

One network of width m computes

    f(x) = c_m * sum_{r=1}^m a_r * relu(w_r^T x),

which is du2019 eq. (1) and arora2019 Section 3.1 with c_m = 1/sqrt(m) (the kernel regime),
bach2022 Section 2 with c_m = 1/m (the mean-field regime), and akiyama2021 eq. (1) with
c_m = 1. Between the two regimes, c_m = m^(-beta) with any exponent beta (one per replica
if wanted), the knob of the chapter that moves from the lazy to the mean-field regime.

Layout. A :class:`TwoLayerReLU` holds R replicas: independent networks that share the
input dimension but may differ in width and seed. Their neurons are stored one after the
other along a single neuron axis of length M = sum of the widths, so that the whole batch
is evaluated with one matrix product ``W @ X.T`` of shape (M, n), without padding narrow
replicas to the widest one. Sums and maxima over the neurons of each replica are
taken block by block (:meth:`TwoLayerReLU.neuron_sum`), which is deterministic on every
device. Per-neuron arrays carry the neuron axis first, (M, ...); per-replica arrays carry
the replica axis first: predictions have shape (R, n).

Inputs are shared by every replica, X of shape (n, d), or come one set per group of
consecutive replicas, X of shape (G, n, d): repetitions with their own data set or their
own stream of fresh samples then still train as one batch (a batched matrix product).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from twolayer.rng import generator

SCALINGS: dict[str, Callable[[int], float]] = {
    "ntk": lambda m: 1.0 / math.sqrt(m),
    "mean_field": lambda m: 1.0 / m,
    "none": lambda m: 1.0,
}
# the exponent beta of c_m = m^(-beta) that each named scaling stands for
SCALING_EXPONENTS = {"ntk": 0.5, "mean_field": 1.0, "none": 0.0}
Scaling = str | float | Sequence[float]
FIRST_LAYER_INITS = ("gaussian", "sphere")
OUTPUT_LAYER_INITS = ("sign", "balanced_sign", "gaussian", "zero")
TRAINED_LAYERS = ("first", "output", "both")
# Up to this many runs of equal-width replicas, reductions loop over the runs; beyond it
# (many replicas of mixed widths) they gather into one padded array.
_FEW_BLOCKS = 8


@dataclass(frozen=True)
class Replica:
    """One independent network of the batch: its width and the seed of its initialization."""

    width: int
    seed: int


def replica_grid(widths: Sequence[int], seeds: Sequence[int] = (0,)) -> list[Replica]:
    """Every (width, seed) pair, widths outermost, so that equal widths sit side by side."""
    return [Replica(int(m), int(s)) for m in widths for s in seeds]


def _check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} = {value!r} is not allowed: expected one of {list(allowed)}")


def _scaling_exponents(scaling: Scaling, replicas: int) -> list[float]:
    """The exponent beta of c_m = m^(-beta) of every replica, checked."""
    if isinstance(scaling, str):
        _check_choice("scaling", scaling, tuple(SCALINGS))
        return [SCALING_EXPONENTS[scaling]] * replicas
    values = [scaling] if isinstance(scaling, (int, float)) else list(scaling)
    if isinstance(scaling, bool) or not all(
        isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in values
    ):
        raise ValueError(
            f"scaling = {scaling!r} is not allowed: expected one of {list(SCALINGS)}, an "
            "exponent beta (c_m = m^-beta) or one exponent per replica"
        )
    if len(values) == 1:
        values = values * replicas
    if len(values) != replicas:
        raise ValueError(
            f"scaling has {len(values)} exponents for {replicas} replicas: give one, or one "
            "per replica"
        )
    return [float(b) for b in values]


def _init_first_layer(
    width: int, d: int, gen: torch.Generator, kind: str, scale: float
) -> torch.Tensor:
    w = torch.randn(width, d, generator=gen, dtype=torch.float64)
    if kind == "sphere":
        w = w / w.norm(dim=1, keepdim=True)
    return scale * w


def _init_output_layer(width: int, gen: torch.Generator, kind: str, scale: float) -> torch.Tensor:
    if kind == "sign":
        a = 2.0 * torch.randint(0, 2, (width,), generator=gen).to(torch.float64) - 1.0
    elif kind == "balanced_sign":
        a = torch.ones(width, dtype=torch.float64)
        a[(width + 1) // 2 :] = -1.0
    elif kind == "gaussian":
        a = torch.randn(width, generator=gen, dtype=torch.float64)
    else:
        a = torch.zeros(width, dtype=torch.float64)
    return scale * a


class TwoLayerReLU:
    """A batch of R two-layer ReLU networks with explicit scaling, initialization and training.

    Attributes:
        W: first-layer weights of every neuron, shape (M, d).
        a: output weights, shape (M,).
        W0, a0: copies of the initial weights (distances from initialization use them).
        replicas: the R replicas, in the order of the neuron blocks.
        scaling: ``"ntk"`` (1/sqrt(m)), ``"mean_field"`` (1/m), ``"none"``, or an
            exponent beta (c_m = m^-beta) shared by every replica or one per replica.
        exponents: the exponent beta of every replica (0.5 for ``"ntk"``, ...).
        neuron_widths: the width m of the replica each neuron belongs to, shape (M,).
        trained: which layers gradient descent moves: ``"first"``, ``"output"`` or ``"both"``.
    """

    def __init__(
        self,
        W: torch.Tensor,
        a: torch.Tensor,
        replicas: Sequence[Replica],
        *,
        scaling: Scaling = "ntk",
        trained: str = "first",
    ) -> None:
        exponents = _scaling_exponents(scaling, len(replicas))
        _check_choice("trained", trained, TRAINED_LAYERS)
        widths = [r.width for r in replicas]
        if W.ndim != 2 or a.shape != (W.shape[0],) or sum(widths) != W.shape[0]:
            raise ValueError(
                f"shapes do not match the replicas: W {tuple(W.shape)}, a {tuple(a.shape)}, "
                f"widths {widths}"
            )
        self.W = W
        self.a = a
        self.W0 = W.clone()
        self.a0 = a.clone()
        self.replicas = list(replicas)
        self.scaling = scaling if isinstance(scaling, str) else tuple(exponents)
        self.exponents = tuple(exponents)
        self.trained = trained
        device = W.device
        self.widths = torch.tensor(widths, device=device)
        self.replica_of_neuron = torch.repeat_interleave(
            torch.arange(len(widths), device=device), self.widths
        )
        if isinstance(scaling, str):
            factors = [SCALINGS[scaling](m) for m in widths]
        else:
            factors = [float(m) ** -beta for m, beta in zip(widths, exponents, strict=True)]
        per_replica = torch.tensor(factors, dtype=W.dtype)
        self.output_scale = per_replica.to(device)[self.replica_of_neuron]
        # the width m of each neuron's replica, (M,): the mean-field steps scale by it
        self.neuron_widths = self.widths.to(W.dtype)[self.replica_of_neuron]
        self._blocks = self._equal_width_blocks(widths)
        self._group_cache: dict[tuple[str, int], int] = {}
        self._padded: torch.Tensor | None = None

    @staticmethod
    def _equal_width_blocks(widths: Sequence[int]) -> list[tuple[int, int, int]]:
        """Runs of consecutive replicas with the same width: (first neuron, count, width)."""
        blocks: list[tuple[int, int, int]] = []  # (first neuron, replicas, width)
        start = 0
        for m in widths:
            if blocks and blocks[-1][2] == m:
                first, count, _ = blocks[-1]
                blocks[-1] = (first, count + 1, m)
            else:
                blocks.append((start, 1, m))
            start += m
        return blocks

    @classmethod
    def initialize(
        cls,
        d: int,
        replicas: Sequence[Replica],
        *,
        scaling: Scaling = "ntk",
        first_init: str = "gaussian",
        first_scale: float | Sequence[float] = 1.0,
        output_init: str = "sign",
        output_scale: float = 1.0,
        paired: bool = False,
        trained: str = "first",
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> TwoLayerReLU:
        """Random initialization, each replica from its own stream ``(seed, "init", width)``.

        ``first_init="gaussian"`` draws w_r ~ N(0, first_scale^2 I) (du2019 Theorem 3.2,
        arora2019 with first_scale = kappa); ``"sphere"`` draws w_r uniformly on the sphere
        of radius first_scale (akiyama2021 Algorithm 1). ``first_scale`` is one number for
        every replica or one per replica (a sweep over the initialization scale kappa in one
        batch); a replica's draw does not depend on its scale, only its size does.
        ``output_init="sign"`` draws
        a_r uniformly in {-1, +1}; ``"balanced_sign"`` gives +1 to the first half of the
        neurons and -1 to the rest; ``"gaussian"`` draws N(0, 1); ``"zero"`` starts at 0.
        The output weights are multiplied by ``output_scale``.

        ``paired=True`` gives the symmetric initialization of Chizat, Oyallon and Bach
        ("On lazy training", 2019): each replica draws m/2 neurons, and the other m/2 copy
        their input weights with the opposite output weights, so that every network starts
        at f = 0 (up to the rounding of the sums) whatever its scaling. Widths must be even.
        """
        _check_choice("first_init", first_init, FIRST_LAYER_INITS)
        _check_choice("output_init", output_init, OUTPUT_LAYER_INITS)
        if not replicas:
            raise ValueError("need at least one replica")
        scales = [float(s) for s in first_scale] if isinstance(first_scale, Sequence) else None
        if scales is not None and len(scales) != len(replicas):
            raise ValueError(
                f"first_scale has {len(scales)} values for {len(replicas)} replicas: give one "
                "number, or one per replica"
            )
        Ws, As = [], []
        for j, rep in enumerate(replicas):
            if rep.width < 1:
                raise ValueError(f"replica widths must be >= 1, got {rep.width}")
            gen = generator(rep.seed, "init", rep.width, d)
            scale = scales[j] if scales is not None else float(first_scale)
            if paired:
                if rep.width % 2:
                    raise ValueError(f"paired initialization needs even widths, got {rep.width}")
                half = rep.width // 2
                w = _init_first_layer(half, d, gen, first_init, scale)
                a = _init_output_layer(half, gen, output_init, output_scale)
                Ws.append(torch.cat([w, w]))
                As.append(torch.cat([a, -a]))
                continue
            Ws.append(_init_first_layer(rep.width, d, gen, first_init, scale))
            As.append(_init_output_layer(rep.width, gen, output_init, output_scale))
        W = torch.cat(Ws).to(device=device, dtype=dtype)
        a = torch.cat(As).to(device=device, dtype=dtype)
        return cls(W, a, replicas, scaling=scaling, trained=trained)

    # ------------------------------------------------------------------ bookkeeping
    @property
    def num_replicas(self) -> int:
        return len(self.replicas)

    @property
    def device(self) -> torch.device:
        return self.W.device

    @property
    def dtype(self) -> torch.dtype:
        return self.W.dtype

    def neuron_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Sum over the neurons of each replica: (M, ...) -> (R, ...)."""
        return self._reduce(values, torch.sum)

    def neuron_max(self, values: torch.Tensor) -> torch.Tensor:
        """Maximum over the neurons of each replica: (M, ...) -> (R, ...)."""
        return self._reduce(values, torch.amax)

    def _reduce(self, values: torch.Tensor, op: Callable[..., torch.Tensor]) -> torch.Tensor:
        rest = values.shape[1:]
        if len(self._blocks) > _FEW_BLOCKS:
            # many short runs of equal width (e.g. widths 1..30 in every repetition): one
            # gather into a padded (R, max width, ...) array instead of a loop over runs
            filler = values.new_zeros((1, *rest))
            if op is not torch.sum:  # the padding must never win a maximum
                low = values.min() if values.numel() else 0
                filler.fill_(low)
            return op(torch.cat([values, filler])[self._padded_index()], dim=1)
        parts = [
            op(values[first : first + count * m].reshape(count, m, *rest), dim=1)
            for first, count, m in self._blocks
        ]
        return torch.cat(parts, dim=0)

    def _padded_index(self) -> torch.Tensor:
        """Neuron index (R, max width) of every replica, padded with the index M."""
        if self._padded is None:
            widths = self.widths.cpu()
            width = int(widths.max())
            starts = torch.cumsum(widths, 0) - widths
            column = torch.arange(width)
            index = starts[:, None] + column[None, :]
            index = torch.where(column[None, :] < widths[:, None], index, int(widths.sum()))
            self._padded = index.to(self.W.device)
        return self._padded

    def per_neuron(self, values: torch.Tensor) -> torch.Tensor:
        """Repeat per-replica values for each of its neurons: (R, ...) -> (M, ...)."""
        return values.index_select(0, self.replica_of_neuron)

    def scale_by_replica_(self, values: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
        """Multiply in place every neuron's row by its replica's row: (M, n) by (R, n).

        The same as ``values *= per_neuron(factors)`` without building the (M, n) copy.
        """
        if len(self._blocks) > _FEW_BLOCKS:
            return values.mul_(factors.index_select(0, self.replica_of_neuron))
        replica = 0
        for first, count, m in self._blocks:
            block = values[first : first + count * m].view(count, m, -1)
            block.mul_(factors[replica : replica + count, None, :])
            replica += count
        return values

    def replica_blocks(self, values: torch.Tensor) -> list[torch.Tensor]:
        """Split the neuron axis (first) into one tensor per replica."""
        return list(torch.split(values, [r.width for r in self.replicas], dim=0))

    # ------------------------------------------------------------------ the network
    def input_groups(self, groups: int) -> int:
        """Check that the replicas split into ``groups`` runs of equal neuron count.

        Inputs of shape (G, n, d) feed the g-th run of replicas with ``X[g]``: one data set
        (or one stream of fresh samples) per group, e.g. per repetition, with every width
        of the repetition trained on it. Returns the neuron count of one group.
        """
        key = ("groups", groups)
        cached = self._group_cache.get(key)
        if cached is not None:
            return cached
        R = self.num_replicas
        if groups < 1 or R % groups:
            raise ValueError(
                f"inputs come in {groups} groups, which does not divide the {R} replicas: "
                "give one input set per group of consecutive replicas"
            )
        per = R // groups
        widths = [r.width for r in self.replicas]
        sizes = {sum(widths[g * per : (g + 1) * per]) for g in range(groups)}
        if len(sizes) != 1:
            raise ValueError(
                f"the {groups} input groups hold different neuron counts {sorted(sizes)}: "
                "every group of consecutive replicas must have the same widths in total"
            )
        self._group_cache[key] = sizes.pop()
        return self._group_cache[key]

    def preactivations(self, X: torch.Tensor) -> torch.Tensor:
        """z_{ri} = w_r^T x_i for every neuron and input, shape (M, n).

        ``X`` is (n, d), shared by every replica, or (G, n, d): one input set per group of
        consecutive replicas (see :meth:`input_groups`).
        """
        if X.ndim == 3:
            per = self.input_groups(X.shape[0])
            Z = torch.bmm(self.W.view(X.shape[0], per, -1), X.transpose(1, 2))
            return Z.reshape(self.W.shape[0], X.shape[1])
        return self.W @ X.T

    def outputs(self, Z: torch.Tensor) -> torch.Tensor:
        """Predictions u_i = f(x_i) of every replica from the preactivations: (R, n)."""
        weights = (self.a * self.output_scale)[:, None]
        activations = torch.relu(Z)
        if activations.requires_grad or weights.requires_grad:  # keep autograd's inputs intact
            activations = activations * weights
        else:  # training loop: no gradient graph, save a copy of the (M, n) array
            activations.mul_(weights)
        return self.neuron_sum(activations)

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        """Predictions of every replica on the inputs ``X`` (n, d) or (G, n, d): shape (R, n)."""
        return self.outputs(self.preactivations(X))

    def gradients(
        self, X: torch.Tensor, Z: torch.Tensor, dloss_du: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Gradients of a loss with respect to the trained layers, by the chain rule.

        With g_i = dL/du_i (shape (R, n)), du2019 eq. (4) generalizes to

            dL/dw_r = c_m a_r sum_i g_i 1{w_r^T x_i >= 0} x_i,
            dL/da_r = c_m sum_i g_i relu(w_r^T x_i)         (du2019 Appendix A.1).

        Returns ``(dW, da)`` with None for a layer that is not trained.
        """
        dW = da = None
        if self.trained in ("first", "both"):
            # 1{z_ri >= 0} written straight into a float array: a boolean mask converted
            # afterwards costs about five times as much (the same numbers)
            G = torch.ge(Z, 0, out=torch.empty_like(Z)).mul_((self.a * self.output_scale)[:, None])
            dW = self._times_inputs(self.scale_by_replica_(G, dloss_du), X)
        if self.trained in ("output", "both"):
            weighted = self.scale_by_replica_(torch.relu(Z), dloss_du)
            da = self.output_scale * weighted.sum(dim=1)
        return dW, da

    def _times_inputs(self, values: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """sum_i values_ri x_i for every neuron: (M, n) @ (n, d), or group by group."""
        if X.ndim == 3:
            per = self.input_groups(X.shape[0])
            out = torch.bmm(values.view(X.shape[0], per, -1), X)
            return out.reshape(values.shape[0], X.shape[2])
        return values @ X

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, torch.Tensor]:
        return {"W": self.W, "a": self.a, "W0": self.W0, "a0": self.a0}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for key in ("W", "a", "W0", "a0"):
            if state[key].shape != getattr(self, key).shape:
                raise ValueError(f"saved {key} has shape {tuple(state[key].shape)}")
            setattr(self, key, state[key].to(device=self.device, dtype=self.dtype).clone())

    def select(self, index: int) -> TwoLayerReLU:
        """Replica ``index`` alone, as a new one-replica model (weights copied)."""
        first = int(self.widths[:index].sum())
        stop = first + self.replicas[index].width
        single = TwoLayerReLU(
            self.W[first:stop].clone(),
            self.a[first:stop].clone(),
            [self.replicas[index]],
            scaling=self.scaling if isinstance(self.scaling, str) else self.exponents[index],
            trained=self.trained,
        )
        single.W0 = self.W0[first:stop].clone()
        single.a0 = self.a0[first:stop].clone()
        return single
