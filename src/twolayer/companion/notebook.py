"""The one call that opens every notebook, right after its ``parameters`` cell.

::

    from twolayer.companion import params as p, setup

    nb = setup("du2019-figure1", globals(), n=p.integer(min=2), lr=p.real(above=0))

:func:`setup` checks every parameter (``profile``, ``seed`` and ``device``, which every
notebook has, and the notebook's own ones named in the call), writes the normalized values
back into the notebook's namespace, and returns a :class:`NotebookRun` that holds
everything else a notebook used to set up by hand: the torch device, the run directory,
the claims of this run, the clock, and the provenance line that closes the notebook. It
also applies the book's plotting style. A bad value stops the notebook with a one-line
:class:`~twolayer.companion.params.ParameterError` before anything is computed.
"""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from twolayer import plotting
from twolayer.companion import params
from twolayer.companion.claims import Claims
from twolayer.companion.paths import PROFILES, run_dir
from twolayer.companion.provenance import Clock, peak_memory, provenance
from twolayer.devices import resolve_device

COMMON = {
    "profile": params.choice(*PROFILES),
    "seed": params.integer(min=0),
    "device": params.device(),
}
"""The parameters every notebook has, with what each accepts."""


def paper_of(notebook: str) -> str:
    """The paper key a notebook belongs to: the part of its name before the first ``-``.

    ``paper_of("du2019-figure1") == "du2019"``; a notebook across the papers is named
    ``bridge-...`` and belongs to ``"bridge"``.
    """
    key, _, result = notebook.partition("-")
    if not key or not result:
        raise ValueError(
            f"notebook name {notebook!r} is not '<paper key>-<result>' (e.g. 'du2019-figure1')"
        )
    return key


@dataclass
class NotebookRun:
    """What a running notebook knows about itself once its parameters are checked.

    Attributes:
        name: the notebook's name, e.g. ``"du2019-figure1"``.
        paper: the paper key, e.g. ``"du2019"``.
        profile: ``"smoke"``, ``"default"`` or ``"paper"``.
        seed: the notebook's seed.
        device: the torch device its computations run on (``device="auto"`` resolved).
        out: the run directory (figures, checkpoints, ``claims.json``).
        claims: the claims this run checks; the Claims section fills and writes them.
        clock: wall time since :func:`setup`.
    """

    name: str
    paper: str
    profile: str
    seed: int
    device: torch.device
    out: Path
    claims: Claims
    clock: Clock = field(default_factory=Clock)

    def provenance(self) -> str:
        """The closing line: package versions, device, seed, profile, wall time, memory.

        Also writes the wall time and peak memory to ``resources.json`` in the run directory
        (read by the benchmark suite).
        """
        usage = {"notebook_s": round(self.clock.seconds, 3), **peak_memory(self.device)}
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "resources.json").write_text(json.dumps(usage) + "\n")
        return provenance(self.clock, seed=self.seed, device=self.device, profile=self.profile)


def setup(
    notebook: str, namespace: MutableMapping[str, Any], /, **specs: params.Spec
) -> NotebookRun:
    """Check the parameters of ``notebook`` in ``namespace`` and prepare its run.

    ``namespace`` is the notebook's ``globals()``; ``specs`` name the notebook's own
    parameters and what each accepts (see :mod:`twolayer.companion.params`). ``profile``,
    ``seed`` and ``device`` are always checked and need no spec. Every other variable of the
    parameters cell should have one, so that no value reaches the computation unchecked.
    """
    clash = sorted(set(specs) & set(COMMON))
    if clash:
        raise TypeError(f"setup(): {clash[0]!r} is checked by setup itself; drop its spec")
    params.validate(namespace, **COMMON, **specs)
    plotting.use_style()
    name = notebook
    profile = namespace["profile"]
    return NotebookRun(
        name=name,
        paper=paper_of(name),
        profile=profile,
        seed=namespace["seed"],
        device=resolve_device(namespace["device"]),
        out=run_dir(name),
        claims=Claims(name, paper=paper_of(name), profile=profile),
    )
