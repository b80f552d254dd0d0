"""Where the project lives on disk and where a run writes its results.

A run of notebook ``<nb>`` under profile ``<profile>`` lands in
``results/<tag>/<nb>/``, where ``<tag>`` is the profile name, followed by a slug of the
command-line overrides when there are any (``smoke+seed=3``). That directory holds the
executed notebook ``<nb>.ipynb``, ``claims.json``, ``run.json``, ``figures/`` and
``checkpoints/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

PROFILES = ("smoke", "default", "paper")
"""Run scales, smallest first: seconds on a CPU, minutes on a laptop CPU, the paper's own."""

RUN_DIR_VARIABLE = "TWOLAYER_RUN_DIR"
"""Environment variable naming the directory a running notebook writes into."""

_MAX_TAG_LENGTH = 80
_UNSAFE = re.compile(r"[^A-Za-z0-9._,=+-]")


def _is_root(directory: Path) -> bool:
    return (directory / "pyproject.toml").is_file() and (directory / "src" / "twolayer").is_dir()


def repo_root() -> Path:
    """Return the repository root: the directory holding ``pyproject.toml``.

    The package location is tried first (an editable install keeps this module in
    ``<root>/src/twolayer/companion``); otherwise the current directory and its parents are
    searched.
    """
    candidates = [Path(__file__).resolve().parents[3]]
    cwd = Path.cwd().resolve()
    candidates += [cwd, *cwd.parents]
    for candidate in candidates:
        if _is_root(candidate):
            return candidate
    raise FileNotFoundError(
        "cannot find the twolayer repository (a directory with pyproject.toml and "
        f"src/twolayer) above {cwd}; run from inside a clone or set {RUN_DIR_VARIABLE}"
    )


def notebooks_dir() -> Path:
    """Return the directory holding the source notebooks and ``profiles.yml``."""
    return repo_root() / "notebooks"


def results_root() -> Path:
    """Return the default root of the results tree, ``<repo>/results``."""
    return repo_root() / "results"


def run_dir(notebook: str) -> Path:
    """Return (and create) the directory where the running notebook writes its outputs.

    The runner sets ``TWOLAYER_RUN_DIR`` for the kernel; without it (a notebook opened in
    JupyterLab) the outputs go to ``<repo>/results/lab/<notebook>``.
    """
    configured = os.environ.get(RUN_DIR_VARIABLE)
    directory = Path(configured) if configured else results_root() / "lab" / notebook
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _slug_value(value: object) -> str:
    if isinstance(value, list | tuple):
        return ",".join(_slug_value(item) for item in value)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def run_tag(profile: str, overrides: Mapping[str, object]) -> str:
    """Return the results directory name for a profile plus command-line overrides.

    Overrides are sorted by name so that the same run always gets the same tag:
    ``run_tag("paper", {"widths": [100, 200], "lr": 0.5}) == "paper+lr=0.5+widths=100,200"``.
    Characters unsafe in file names become ``-``; a tag longer than 80 characters is cut
    and ends with a hash of the full overrides instead.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: expected one of {', '.join(PROFILES)}")
    parts = [profile] + [f"{name}={_slug_value(overrides[name])}" for name in sorted(overrides)]
    tag = _UNSAFE.sub("-", "+".join(parts))
    if len(tag) <= _MAX_TAG_LENGTH:
        return tag
    canonical = json.dumps(dict(overrides), sort_keys=True, default=str)
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:10]
    return f"{tag[: _MAX_TAG_LENGTH - 11]}-{digest}"


def result_dir(notebook: str, tag: str, root: Path | None = None) -> Path:
    """Return ``<root>/<tag>/<notebook>``, the run directory of one runner invocation."""
    return (root if root is not None else results_root()) / tag / notebook
