"""Measure how long each notebook takes per profile (``make timings``).

Every notebook is executed at the smoke and default profiles in a scratch results tree,
so that no checkpoint of an earlier run shortens the measurement; the wall times and a
description of the machine go to ``book/timings.json``, which the re-running page of the
book shows. ``make timings NB="name ..."`` measures only the named notebooks and keeps the
other entries of the file; the machine description is then that of the new measurement.

``make timings-exercises [NB="name ..."]`` runs, in the same way, every run that the
exercises of the notebooks' Try it sections name (``-p`` overrides in their text) and
records each one's wall time under ``exercises`` (notebook -> run tag -> seconds); the
teaching page of the book shows them.
"""

from __future__ import annotations

import argparse
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

    previous = json.loads(output.read_text()) if output.is_file() else {}
    seconds: dict[str, dict[str, float]] = previous.get("seconds", {}) if names else {}
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
    _write(output, {**previous, "machine": machine_description(), "seconds": seconds})
    return 0


def _write(output: Path, timings: dict[str, Any]) -> None:
    output.write_text(json.dumps(timings, indent=2) + "\n")
    print(f"timings written to {output}")


def measure_exercises(output: Path, names: Sequence[str] = ()) -> int:
    """Run every run named by the exercises of the notebooks; record its wall time.

    ``names`` chooses the notebooks (all of ``notebooks/`` when empty). The times go to
    ``output`` under ``exercises``: notebook -> run tag -> seconds; the other entries of
    the file are kept.
    """
    import nbformat

    from twolayer.companion.exercises import notebook_exercises
    from twolayer.companion.run import UsageError, requested_notebooks, run

    previous = json.loads(output.read_text()) if output.is_file() else {}
    measured: dict[str, dict[str, float]] = previous.get("exercises", {})
    try:
        paths = requested_notebooks(list(names), run_all=not names)
        with tempfile.TemporaryDirectory() as scratch:
            for path in paths:
                notebook = nbformat.read(path, as_version=4)
                for exercise in notebook_exercises(path.stem, notebook):
                    for request in exercise.runs:
                        [outcome] = run(
                            [path], request.profile, request.overrides, out_root=Path(scratch)
                        )
                        if outcome.exit_code:
                            print(f"error: {exercise.label}: {outcome.error}", file=sys.stderr)
                            return 1
                        record = json.loads((outcome.directory / "run.json").read_text())
                        measured.setdefault(path.stem, {})[outcome.tag] = record["wall_seconds"]
                _write(output, {**previous, "exercises": measured})  # kept if a later one fails
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m twolayer.companion.timings``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m twolayer.companion.timings", description=__doc__.split("\n")[0]
    )
    parser.add_argument("notebooks", nargs="*", metavar="NOTEBOOK", help="only these notebooks")
    parser.add_argument(
        "--exercises", action="store_true", help="time the runs the exercises ask for instead"
    )
    args = parser.parse_args(argv)
    output = repo_root() / "book" / "timings.json"
    if args.exercises:
        return measure_exercises(output, args.notebooks)
    return measure(output, names=args.notebooks)


if __name__ == "__main__":
    sys.exit(main())
