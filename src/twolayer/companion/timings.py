"""Measure how long each notebook takes per profile (``make timings``).

Every notebook is executed at the smoke and default profiles in a scratch results tree,
so that no checkpoint of an earlier run shortens the measurement; the wall times and a
description of the machine go to ``book/timings.json``, which the re-running page of the
book shows. ``make timings NB="name ..."`` measures only the named notebooks and keeps the
other entries of the file; the machine description is then that of the new measurement.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from twolayer.companion.paths import repo_root

MEASURED_PROFILES = ("smoke", "default")


def machine_description() -> dict[str, Any]:
    """CPU model, cores and torch threads, the GPU if there is one, and today's date."""
    import torch

    from twolayer.devices import describe_device

    gpu = describe_device(torch.device("cuda")) if torch.cuda.is_available() else None
    return {
        "cpu": describe_device(torch.device("cpu")),
        "gpu": gpu,
        "date": date.today().isoformat(),
    }


def measure(
    output: Path, notebooks: Sequence[Path] | None = None, names: Sequence[str] = ()
) -> int:
    """Run notebooks at each measured profile and write their wall times to ``output``.

    ``notebooks`` (paths) or ``names`` (of book notebooks) choose what is measured, all
    book notebooks when neither is given. With ``names``, the entries of the other
    notebooks already in ``output`` are kept.
    """
    from twolayer.companion.run import UsageError, requested_notebooks, run

    seconds: dict[str, dict[str, float]] = {}
    if names and output.is_file():
        seconds = json.loads(output.read_text()).get("seconds", {})
    try:
        if notebooks:
            paths = list(notebooks)
        else:
            paths = requested_notebooks(list(names), run_all=not names)
        with tempfile.TemporaryDirectory() as scratch:
            for profile in MEASURED_PROFILES:
                for outcome in run(paths, profile, {}, out_root=Path(scratch)):
                    if outcome.exit_code:
                        print(
                            f"error: timings not written; inspect the failure with "
                            f"make run NB={outcome.notebook} PROFILE={profile}",
                            file=sys.stderr,
                        )
                        return 1
                    record = json.loads((outcome.directory / "run.json").read_text())
                    seconds.setdefault(outcome.notebook, {})[profile] = record["wall_seconds"]
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    timings = {"machine": machine_description(), "seconds": seconds}
    output.write_text(json.dumps(timings, indent=2) + "\n")
    print(f"timings written to {output}")
    return 0


if __name__ == "__main__":
    sys.exit(measure(repo_root() / "book" / "timings.json", names=sys.argv[1:]))
