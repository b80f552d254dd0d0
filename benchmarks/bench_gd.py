"""Benchmarks of the gradient-descent core (run with `make bench`).

1. One full-batch gradient-descent step of du2019 Figure 1 at the paper's scale:
   n = d = 1000 and the widths of the paper profile, all trained as one batch.
2. Independent replicas (seeds) trained as one batched model against the same replicas
   trained one after the other, for a wide and a narrow width. The ratio of the two times is
   the speed-up that batching buys on this machine.

Timings use torch.utils.benchmark, which synchronizes CUDA and repeats each measurement until
it is stable. Pass --device cuda to time the GPU.
"""

from __future__ import annotations

import argparse

import torch
import torch.utils.benchmark as benchmark
import yaml

from twolayer.data import gaussian_labels, sphere
from twolayer.devices import describe_device, resolve_device
from twolayer.losses import Loss
from twolayer.model import TwoLayerReLU, replica_grid
from twolayer.companion.paths import notebooks_dir
from twolayer.training import gradient_step


def paper_widths() -> list[int]:
    """The widths du2019-figure1 uses at the paper profile (from notebooks/profiles.yml)."""
    profiles = yaml.safe_load((notebooks_dir() / "profiles.yml").read_text())
    return list(profiles["paper"]["du2019-figure1"]["widths"])


def step_runner(model: TwoLayerReLU, X: torch.Tensor, y: torch.Tensor, lr: float):
    """A closure doing one gradient-descent step of ``model`` (forward pass included)."""
    lr_neuron = torch.full((model.W.shape[0],), lr, dtype=model.dtype, device=model.device)
    loss = Loss()

    def run() -> None:
        with torch.no_grad():
            Z = model.preactivations(X)
            gradient_step(model, X, y, Z, model.outputs(Z), lr_neuron, loss)

    return run


def seconds(fn, label: str, min_run_time: float) -> float:
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn}, label=label)
    return timer.blocked_autorange(min_run_time=min_run_time).median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:<index>")
    parser.add_argument("--replicas", type=int, default=8, help="seeds in the batching benchmark")
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds per measurement")
    args = parser.parse_args()
    device = resolve_device(args.device)
    n = d = 1000
    X = sphere(n, d, 0).to(device, torch.float32)
    y = gaussian_labels(n, 0).to(device, torch.float32)
    print(f"device: {describe_device(device)}")

    widths = paper_widths()
    model = TwoLayerReLU.initialize(d, replica_grid(widths), device=device)
    t = seconds(step_runner(model, X, y, 0.2), "paper step", args.min_time)
    print(f"du2019 Figure 1, paper scale (n = d = {n}, widths {widths}, "
          f"{sum(widths)} neurons): {1e3 * t:.1f} ms per gradient-descent step")

    print(f"\n{args.replicas} replicas (seeds), one step each: batched vs one after the other")
    print("   width   batched (ms)   looped (ms)   speed-up")
    for m in (1000, 100):
        seeds = list(range(args.replicas))
        batched = TwoLayerReLU.initialize(d, replica_grid([m], seeds), device=device)
        singles = [TwoLayerReLU.initialize(d, replica_grid([m], [s]), device=device)
                   for s in seeds]
        runners = [step_runner(single, X, y, 0.2) for single in singles]
        t_batched = seconds(step_runner(batched, X, y, 0.2), "batched", args.min_time)
        t_looped = seconds(lambda runners=runners: [r() for r in runners], "looped",
                           args.min_time)
        print(f"{m:8d}   {1e3 * t_batched:12.2f}   {1e3 * t_looped:11.2f}   "
              f"{t_looped / t_batched:8.2f}x")


if __name__ == "__main__":
    main()
