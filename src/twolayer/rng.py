"""Reproducible random streams.

Every random quantity in the package is drawn from a CPU ``torch.Generator`` whose seed is
derived from the user's seed plus a few keys naming what is drawn (``"data"``,
``"init"``, a width, ...). Two consequences:

* the same seed gives the same numbers on every device (draws happen on the CPU in float64
  and are then cast and moved), and
* a replica's initialization depends only on its own (seed, width), so a run batched with
  other replicas starts from exactly the weights it would get alone.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch


def _key_to_int(key: str | int) -> int:
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise TypeError(f"stream keys must be str or int, got {key!r}")
    if isinstance(key, int):
        if key < 0:
            raise ValueError(f"integer stream keys must be >= 0, got {key}")
        return key
    return zlib.crc32(key.encode("utf-8"))


def derive_seed(seed: int, *keys: str | int) -> int:
    """A 63-bit seed derived from ``seed`` and the stream ``keys`` (numpy's SeedSequence)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    entropy = [int(seed), *(_key_to_int(k) for k in keys)]
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


def generator(seed: int, *keys: str | int) -> torch.Generator:
    """A CPU generator for the stream named by ``keys`` under ``seed``."""
    return torch.Generator(device="cpu").manual_seed(derive_seed(seed, *keys))
