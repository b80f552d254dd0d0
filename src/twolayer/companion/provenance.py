"""The provenance line that closes every notebook."""

from __future__ import annotations

import datetime as dt
import platform
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


def provenance(clock: Clock, *, seed: int, device: torch.device, profile: str) -> str:
    """Package versions, device, seed, profile and wall time, on one line."""
    versions = (
        f"twolayer {twolayer.__version__}, torch {torch.__version__}, numpy {numpy.__version__}, "
        f"scipy {scipy.__version__}, matplotlib {matplotlib.__version__}, "
        f"python {platform.python_version()}"
    )
    today = dt.date.today().isoformat()
    return (
        f"Computed with {versions}; device {describe_device(device)}; seed {seed}; "
        f"profile {profile}; wall time {clock.seconds:.1f} s; {today}."
    )
