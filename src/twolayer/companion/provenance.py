"""The provenance line that closes every notebook."""

from __future__ import annotations

import datetime as dt
import platform
import resource
import time

import matplotlib
import numpy
import scipy
import torch

import twolayer
from twolayer.devices import describe_device


class Clock:
    """Wall time since the notebook started."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self._start


def peak_memory(device: torch.device) -> dict[str, int]:
    """The process's peak resident memory and, on a GPU, the largest allocation, in bytes."""
    usage = {"peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}
    if device.type == "cuda":
        usage["peak_gpu_bytes"] = int(torch.cuda.max_memory_allocated(device))
    return usage


def _gib(count: int) -> str:
    return f"{count / 2**30:.2f} GiB"


def provenance(clock: Clock, *, seed: int, device: torch.device, profile: str) -> str:
    """Package versions, device, seed, profile, wall time and peak memory, on one line."""
    versions = (
        f"twolayer {twolayer.__version__}, torch {torch.__version__}, numpy {numpy.__version__}, "
        f"scipy {scipy.__version__}, matplotlib {matplotlib.__version__}, "
        f"python {platform.python_version()}"
    )
    today = dt.date.today().isoformat()
    usage = peak_memory(device)
    memory = f"peak memory {_gib(usage['peak_rss_bytes'])}"
    if "peak_gpu_bytes" in usage:
        memory += f" (GPU {_gib(usage['peak_gpu_bytes'])})"
    return (
        f"Computed with {versions}; device {describe_device(device)}; seed {seed}; "
        f"profile {profile}; wall time {clock.seconds:.1f} s; {memory}; {today}."
    )
