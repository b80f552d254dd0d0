"""Paper-profile runs, recorded for the book.

Most of the paper profile is too large for a laptop CPU. Its runs are made where a GPU is
available (``make run NB=... PROFILE=paper``), and their results tree is brought back; the
notebooks whose paper profile fits a CPU are run there the same way. Then

    python -m twolayer.companion.paper_runs RESULTS_TAG_DIR [--machine machine.json]

reads ``<notebook>/run.json`` and ``<notebook>/claims.json`` of every notebook there and
merges them into ``book/paper_runs.json`` (one entry per notebook, the newest run
replacing an older one). The machine is the run's own record of its device unless
``--machine`` describes it. The re-running page of the book shows the table: wall time, the
machine, and which claims held at the paper profile; and the notebooks not run there yet.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from twolayer.companion.paths import repo_root


def collect(results: Path, machine: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One entry per notebook directory of ``results`` holding a run.json."""
    runs: dict[str, Any] = {}
    for run_file in sorted(results.glob("*/run.json")):
        record = json.loads(run_file.read_text())
        claims_file = run_file.parent / "claims.json"
        claims = json.loads(claims_file.read_text()) if claims_file.is_file() else []
        resources_file = run_file.parent / "resources.json"
        resources = json.loads(resources_file.read_text()) if resources_file.is_file() else {}
        runs[record["notebook"]] = {
            "profile": record["profile"],
            "tag": record["tag"],
            "status": record["status"],
            "started": record["started"],
            "wall_seconds": record["wall_seconds"],
            "versions": record.get("versions", {}),
            "machine": dict(machine) if machine else {"device": record.get("device")},
            # the notebook's peak memory: resident (CPU) and largest GPU allocation, in bytes
            "memory": {
                key: resources[key]
                for key in ("peak_rss_bytes", "peak_gpu_bytes")
                if key in resources
            },
            "claims": [
                {
                    key: claim.get(key)
                    for key in ("id", "origin", "kind", "holds", "holds_from", "measured")
                }
                for claim in claims
            ],
        }
    return runs


def merge(path: Path, runs: Mapping[str, Any]) -> dict[str, Any]:
    """``path``'s entries with those of ``runs`` added or replaced; written back."""
    known = json.loads(path.read_text()) if path.is_file() else {}
    known.update(runs)
    ordered = dict(sorted(known.items()))
    path.write_text(json.dumps(ordered, indent=2) + "\n")
    return ordered


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _memory(memory: Mapping[str, int]) -> str:
    parts = [
        f"{memory[key] / 2**30:.1f} GiB{label}"
        for key, label in (("peak_rss_bytes", ""), ("peak_gpu_bytes", " GPU"))
        if key in memory
    ]
    return ", ".join(parts) or "not recorded"


def paper_runs_markdown(runs: Mapping[str, Any] | None, notebooks: Sequence[str] = ()) -> str:
    """The table of the paper-profile runs for the re-running page, then the ``notebooks``
    of the book that have none yet."""
    missing = [name for name in notebooks if name not in (runs or {})]
    waiting = (
        "\nNot run at the paper profile yet: "
        + ", ".join(missing)
        + ". Their paper sizes are meant for a GPU.\n"
        if missing
        else ""
    )
    if not runs:
        return (
            "No paper-profile run has been recorded yet. Run a notebook with "
            "`PROFILE=paper` on a machine with a GPU, then record it with "
            "`python -m twolayer.companion.paper_runs results/paper`.\n" + waiting
        )
    lines = [
        "| notebook | machine | date | wall time | peak memory | claims held | not held |",
        "| --- | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for name, run in runs.items():
        machine = run.get("machine", {})
        where = machine.get("gpu") or machine.get("cpu") or machine.get("device")
        claims = run["claims"]
        held = sum(bool(c["holds"]) for c in claims)
        missed = ", ".join(f"`{c['id']}`" for c in claims if not c["holds"]) or "none"
        if run["status"] != "succeeded":
            missed = f"run {run['status']}"
        lines.append(
            f"| {name} | {where or 'not recorded'} | {run['started'][:10]} "
            f"| {_duration(run['wall_seconds'])} | {_memory(run.get('memory', {}))} "
            f"| {held} of {len(claims)} | {missed} |"
        )
    return "\n".join(lines) + "\n" + waiting


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m twolayer.companion.paper_runs",
        description="Record paper-profile runs (results/<tag>/) in book/paper_runs.json.",
    )
    parser.add_argument("results", type=Path, help="a results tag directory, e.g. results/paper")
    parser.add_argument("--machine", type=Path, help="JSON description of the machine used")
    args = parser.parse_args(argv)
    if not args.results.is_dir():
        print(f"error: {args.results} is not a directory", file=sys.stderr)
        return 2
    machine = json.loads(args.machine.read_text()) if args.machine else None
    runs = collect(args.results, machine)
    if not runs:
        print(f"error: no <notebook>/run.json under {args.results}", file=sys.stderr)
        return 1
    merge(repo_root() / "book" / "paper_runs.json", runs)
    print(f"recorded {', '.join(runs)} in book/paper_runs.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
