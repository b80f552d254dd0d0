"""Choosing the device a computation runs on."""

from __future__ import annotations

import os
import platform
import re

import torch

_CUDA_NAME = re.compile(r"^cuda(:\d+)?$")


def device_error(name: object) -> str | None:
    """Why ``name`` is not a usable device here, or None when it is usable."""
    if not isinstance(name, str):
        return "expected a string: 'auto', 'cpu', 'cuda' or 'cuda:<index>'"
    if name in ("auto", "cpu"):
        return None
    if not _CUDA_NAME.match(name):
        return "expected 'auto', 'cpu', 'cuda' or 'cuda:<index>'"
    if not torch.cuda.is_available():
        return "CUDA is not available on this machine; use 'auto' or 'cpu'"
    index = int(name.split(":")[1]) if ":" in name else 0
    count = torch.cuda.device_count()
    if index >= count:
        return f"this machine has {count} CUDA device(s): use 'cuda:0' to 'cuda:{count - 1}'"
    return None


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The torch device for ``name``: ``"auto"`` is CUDA when present, else the CPU."""
    if isinstance(name, torch.device):
        return name
    problem = device_error(name)
    if problem is not None:
        raise ValueError(f"device = {name!r} is not allowed: {problem}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """A short human description: GPU model, or CPU model with its thread count."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} torch threads of {os.cpu_count()} cores"
