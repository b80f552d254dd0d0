"""How robust is each claim: one notebook run over many fresh seeds, on Dask distributed.

Usage::

    python -m twolayer.companion.sweep NOTEBOOK --seeds 20 [--profile smoke|default|paper]
        [-p NAME VALUE]... [--scheduler ADDRESS] [--workers K] [--out DIR]

A sweep runs the notebook once per seed, each run an ordinary runner run that lands in the
results tree under its own tag (``results/smoke+seed=3000/<nb>/``), and then counts, for
every claim, the seeds for which it held. The summary is written beside the notebook's
own run at that profile, ``results/<profile>[+overrides]/<nb>/sweep.json``, after every
finished run, so an interrupted sweep keeps what it has; running the same sweep again
skips the seeds whose runs are up to date (the runner's ``--reuse``).

The seeds are ``1000, 2000, ..., 1000 N``: never the notebooks' own seed 0, and far enough
apart that the replica seeds a notebook derives from its seed (``seed + s`` for a few
hundred ``s`` at most) never overlap between two runs of a sweep.

One run is one Dask task. Without ``--scheduler`` the tasks go to a ``LocalCluster`` on this
machine's cores (one worker process per concurrent run, the cores shared out between
them). With ``--scheduler tcp://host:8786`` they go to an existing Dask cluster, e.g. one
``dask worker --nworkers 1 --nthreads 1`` per GPU or machine, each with this repository
installed at the same version; every run's files come back and are written into the local
results tree, and a worker whose notebook or package differs from this one is refused.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twolayer.companion.claims import REPRODUCTION, load_claims
from twolayer.companion.paths import PROFILES, repo_root, result_dir, results_root, run_tag
from twolayer.companion.run import (
    UsageError,
    add_run_options,
    execute,
    inputs_hash,
    parse_value,
    prepare,
    resolve_notebook,
)

SEED_STRIDE = 1000
"""Distance between two seeds of a sweep (see the module docstring)."""
SUMMARY = "sweep.json"
"""File name of a sweep's summary, in the run directory of the unseeded tag."""
PUBLISHED = "sweeps.json"
"""File of ``book/`` holding the sweeps published with the book."""
RUN_DONE = ("succeeded", "skipped")
"""Statuses of a run that produced claims (``skipped``: up to date from an earlier sweep)."""
SKIPPED_PARTS = ("checkpoints",)
"""Parts of a run directory that stay on the worker (resumable state, not results)."""


def sweep_seeds(count: int) -> list[int]:
    """The seeds of a sweep over ``count`` runs: ``1000, 2000, ..., 1000 * count``."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise UsageError(f"--seeds must be a positive whole number of runs, not {count!r}")
    return [SEED_STRIDE * (index + 1) for index in range(count)]


def summary_path(notebook: str, profile: str, overrides: Mapping[str, Any], root: Path) -> Path:
    """Where the sweep of ``notebook`` at ``profile`` with ``overrides`` writes its summary."""
    return result_dir(notebook, run_tag(profile, overrides), root) / SUMMARY


# ---------------------------------------------------------------------------
# One run: a Dask task


def run_seed(
    notebook: str, profile: str, overrides: Mapping[str, Any], out_root: str | None
) -> dict[str, Any]:
    """Run ``notebook`` once (on a worker) and return its outcome and its run's files.

    ``overrides`` includes the seed. ``out_root`` is the results root the client uses; a
    worker on another machine runs into its own results tree instead. The files of the run
    directory (executed notebook, ``claims.json``, ``run.json``, figures) come back as
    bytes keyed by their path inside that directory.
    """
    path = resolve_notebook(notebook)
    root = None
    if out_root is not None:
        try:
            Path(out_root).mkdir(parents=True, exist_ok=True)
            root = Path(out_root)
        except OSError:  # another machine without that path: its own results tree
            root = None
    request = prepare(path, profile, overrides, root)
    outcome = execute(request, reuse=True)
    directory = outcome.directory
    files = {}
    if directory.is_dir():
        for item in sorted(directory.rglob("*")):
            relative = item.relative_to(directory)
            if item.is_file() and relative.parts[0] not in SKIPPED_PARTS:
                files[relative.as_posix()] = item.read_bytes()
    return {
        "seed": overrides["seed"],
        "tag": outcome.tag,
        "status": outcome.status,
        "error": outcome.error,
        # The kernel died or did not start (out of memory, a port taken by a process that
        # does not use the runner's kernel-start lock): no cell failed, and the same run
        # may well succeed when tried again.
        "retry": outcome.status == "failed" and not outcome.error_in_cell,
        "host": os.uname().nodename,
        "files": files,
    }


def store_files(directory: Path, files: Mapping[str, bytes]) -> None:
    """Write a run's returned files under ``directory``, leaving identical files untouched."""
    for relative, content in files.items():
        target = directory / relative
        if target.is_file() and target.read_bytes() == content:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


# ---------------------------------------------------------------------------
# Counting


def claim_rates(runs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """For every claim, the seeds for which it held among the runs that recorded it.

    ``runs`` are ``{"seed": s, "claims": [records]}`` of the successful runs. Claims keep the
    order in which the first run recorded them.
    """
    rates: dict[str, dict[str, Any]] = {}
    for run in runs:
        for record in run["claims"]:
            entry = rates.setdefault(
                record["id"],
                {
                    key: record[key]
                    for key in ("id", "statement", "origin", "kind", "holds_from", "profile")
                }
                | {"held": 0, "runs": 0, "failed_seeds": []},
            )
            entry["runs"] += 1
            if record["holds"]:
                entry["held"] += 1
            else:
                entry["failed_seeds"].append(run["seed"])
    return list(rates.values())


def weakest(claims: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The reproduction (else any claim) that held for the smallest share of its runs."""
    chosen = [c for c in claims if c["kind"] == REPRODUCTION and c["runs"]] or [
        c for c in claims if c["runs"]
    ]
    return min(chosen, key=lambda c: c["held"] / c["runs"], default=None)


def rate_text(claim: Mapping[str, Any]) -> str:
    """``'19 of 20 seeds'``."""
    return f"{claim['held']} of {claim['runs']} seed{'s' if claim['runs'] != 1 else ''}"


def summary(
    notebook: str,
    profile: str,
    overrides: Mapping[str, Any],
    seeds: Sequence[int],
    finished: Mapping[int, Mapping[str, Any]],
    started: str,
) -> dict[str, Any]:
    """The content of ``sweep.json`` for the runs finished so far."""
    succeeded = [finished[seed] for seed in seeds if finished.get(seed, {}).get("claims")]
    return {
        "notebook": notebook,
        "profile": profile,
        "overrides": dict(overrides),
        "seeds": list(seeds),
        "started": started,
        "updated": datetime.now(UTC).isoformat(timespec="seconds"),
        "complete": len(finished) == len(seeds),
        "succeeded": len(succeeded),
        "runs": {
            str(seed): {
                key: finished[seed][key] for key in ("tag", "status", "error", "host", "seconds")
            }
            for seed in seeds
            if seed in finished
        },
        "versions": next((run["versions"] for run in succeeded if run.get("versions")), {}),
        "claims": claim_rates(succeeded),
    }


def published_path(book: Path) -> Path:
    """The sweeps published with the book: ``book/sweeps.json``."""
    return book / PUBLISHED


def publish(content: Mapping[str, Any], book: Path) -> Path:
    """Add a finished sweep without overrides to ``book/sweeps.json`` (notebook -> profile).

    The runs' details stay in the results tree; the book needs the counts.
    """
    if content["overrides"]:
        raise UsageError("only a sweep without -p overrides can be published with the book")
    if not content["complete"]:
        raise UsageError("the sweep has runs left; finish it before publishing it")
    path = published_path(book)
    published = json.loads(path.read_text()) if path.is_file() else {}
    entry = {key: value for key, value in content.items() if key != "runs"}
    entry["failed_runs"] = sorted(
        int(seed) for seed, run in content["runs"].items() if run["status"] not in RUN_DONE
    )
    published.setdefault(content["notebook"], {})[content["profile"]] = entry
    ordered = {name: dict(sorted(published[name].items())) for name in sorted(published)}
    path.write_text(json.dumps(ordered, indent=2) + "\n")
    return path


def find_sweep(
    notebook: str, profile: str, results: Path, book: Path | None = None
) -> dict[str, Any] | None:
    """The sweep to show beside ``notebook``'s runs at ``profile``, or None.

    A sweep at that profile wins over one at another; at the same profile, the results
    tree (``results/<profile>/<nb>/sweep.json``) wins over ``book/sweeps.json``; among
    other profiles, the larger wins.
    """
    published = {}
    if book is not None and published_path(book).is_file():
        published = json.loads(published_path(book).read_text()).get(notebook, {})
    order = [profile, *(other for other in reversed(PROFILES) if other != profile)]
    for candidate in order:
        local = summary_path(notebook, candidate, {}, results)
        if local.is_file():
            return load_summary(local)
        if candidate in published:
            return dict(published[candidate])
    return None


def load_summary(path: Path) -> dict[str, Any]:
    """Read a ``sweep.json`` and check that its claims carry the counts the book shows."""
    content = json.loads(Path(path).read_text())
    keys = ("notebook", "profile", "seeds", "succeeded", "claims")
    if not isinstance(content, dict) or any(key not in content for key in keys):
        raise ValueError(f"{path}: not a sweep summary (expected the keys {', '.join(keys)})")
    for claim in content["claims"]:
        missing = [key for key in ("id", "kind", "held", "runs") if key not in claim]
        if missing:
            raise ValueError(f"{path}: claim {claim.get('id')!r} lacks {', '.join(missing)}")
    return content


def table(content: Mapping[str, Any]) -> str:
    """The summary as aligned text: one line per claim, with its hold rate."""
    rows = [("claim", "kind", "held", "failed for seeds")]
    for claim in content["claims"]:
        failed = ", ".join(str(seed) for seed in claim["failed_seeds"]) or "-"
        rows.append((claim["id"], claim["kind"], rate_text(claim), failed))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


# ---------------------------------------------------------------------------
# The sweep


def _client(scheduler: str | None, workers: int):
    """A Dask client: to ``scheduler`` when given, else to a new local cluster."""
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="30s")
    threads = max(1, (os.cpu_count() or 1) // workers)
    cluster = LocalCluster(
        n_workers=workers,
        silence_logs=logging.ERROR,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",
        # Each run's kernel inherits these: the cores are shared out between the runs.
        env={"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)},
    )
    return Client(cluster)


def sweep(
    notebook: str,
    count: int,
    profile: str = "default",
    overrides: Mapping[str, Any] | None = None,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    out_root: Path | None = None,
    echo=print,
) -> Path:
    """Run ``notebook`` for ``count`` fresh seeds and write its ``sweep.json``; return the path.

    Every request is checked before anything runs (a bad name, a ``seed`` override, an
    unknown parameter). A run whose kernel died or did not start is tried once more. A run
    whose files come from a worker with other inputs (another version of the notebook or
    the package) counts as failed.
    """
    from distributed import as_completed

    overrides = dict(overrides or {})
    if "seed" in overrides:
        raise UsageError("a sweep chooses its own seeds; leave out -p seed")
    if profile not in PROFILES:
        raise UsageError(f"--profile must be one of {', '.join(PROFILES)}, not {profile!r}")
    seeds = sweep_seeds(count)
    if workers is not None and (isinstance(workers, bool) or workers < 1):
        raise UsageError(f"--workers must be a positive whole number, not {workers!r}")
    path = resolve_notebook(notebook)
    root = out_root if out_root is not None else results_root()
    requests = {seed: prepare(path, profile, {**overrides, "seed": seed}, root) for seed in seeds}
    expected = {
        seed: inputs_hash(request.path, request.profiles_file, request.parameters)
        for seed, request in requests.items()
    }
    target = summary_path(path.stem, profile, overrides, root)
    target.parent.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC).isoformat(timespec="seconds")
    finished: dict[int, dict[str, Any]] = {}
    argument = notebook if path.parent.resolve() == _notebooks().resolve() else str(path.resolve())

    workers = workers or min(count, os.cpu_count() or 1)
    engine = f"the scheduler at {scheduler}" if scheduler else f"{workers} local Dask workers"
    echo(f"{path.stem}: {count} seeds at the {profile} profile on {engine}")
    with _client(scheduler, workers) as client:

        def submit(seed: int):
            arguments = (argument, profile, {**overrides, "seed": seed}, str(root.resolve()))
            return client.submit(run_seed, *arguments, pure=False)

        futures = {submit(seed): seed for seed in seeds}
        retried: set[int] = set()
        running = as_completed(futures)
        for future in running:
            seed = futures[future]
            try:
                result = future.result()
                if result.get("retry") and seed not in retried:
                    retried.add(seed)
                    echo(f"  seed {seed}: {result['error']}; trying once more")
                    again = submit(seed)
                    futures[again] = seed
                    running.add(again)
                    continue
            except Exception as error:  # the task itself failed (worker lost, import error)
                result = {
                    "seed": seed,
                    "tag": requests[seed].tag,
                    "status": "failed",
                    "error": f"{type(error).__name__}: {error}",
                    "host": "",
                    "files": {},
                }
            finished[seed] = _gather(result, requests[seed].directory, expected[seed])
            content = summary(path.stem, profile, overrides, seeds, finished, started)
            target.write_text(json.dumps(content, indent=2) + "\n")
            status = finished[seed]["status"]
            detail = f": {finished[seed]['error']}" if finished[seed]["error"] else ""
            echo(f"  seed {seed} {status}{detail} ({len(finished)} of {count})")
    if all(run["status"] == "rejected" for run in finished.values()):
        # A value the notebook refuses: nothing ran, so nothing is kept.
        target.unlink(missing_ok=True)
        with suppress(OSError):
            target.parent.rmdir()
            target.parent.parent.rmdir()
        error = next(iter(finished.values()))["error"]
        raise UsageError(error.removeprefix("ParameterError: "))
    content = json.loads(target.read_text())
    echo(table(content))
    echo(f"  summary: {target}")
    return target


def _notebooks() -> Path:
    from twolayer.companion.paths import notebooks_dir

    return notebooks_dir()


def _gather(result: Mapping[str, Any], directory: Path, expected_hash: str) -> dict[str, Any]:
    """Store a run's files locally and read its claims; refuse runs made from other inputs."""
    gathered = {key: result[key] for key in ("seed", "tag", "status", "error", "host")}
    files = result["files"]
    record = json.loads(files["run.json"]) if "run.json" in files else None
    gathered["seconds"] = record.get("wall_seconds") if record is not None else None
    gathered["versions"] = record.get("versions", {}) if record is not None else {}
    if record is not None and record.get("inputs_hash") != expected_hash:
        gathered["status"] = "failed"
        gathered["error"] = (
            f"the worker on {result['host']} ran other inputs than the sweep started with: "
            "the notebook or the twolayer package changed since, or differs on that worker"
        )
        gathered["claims"] = []
        return gathered
    store_files(directory, files)
    claims = directory / "claims.json"
    ok = gathered["status"] in RUN_DONE and claims.is_file()
    gathered["claims"] = load_claims(claims) if ok else []
    return gathered


# ---------------------------------------------------------------------------
# Command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m twolayer.companion.sweep",
        description="Run a notebook over fresh seeds and count, per claim, the seeds it held for.",
    )
    parser.add_argument("notebook", metavar="NOTEBOOK", help="notebook name or .ipynb path")
    parser.add_argument("--seeds", type=int, default=20, help="number of runs (default 20)")
    add_run_options(parser, "override a parameter for every run (not seed)")
    parser.add_argument(
        "--scheduler",
        default=os.environ.get("TWOLAYER_SCHEDULER") or None,
        help="address of a running Dask scheduler (default: a local cluster on this machine)",
    )
    parser.add_argument(
        "--workers", type=int, help="local runs at a time (default: one per core, at most SEEDS)"
    )
    parser.add_argument("--out", type=Path, help="results root instead of <repo>/results")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="also record the counts in book/sweeps.json, shown by every build of the book",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m twolayer.companion.sweep``; returns the exit status."""
    args = _parser().parse_args(argv)
    overrides = {name: parse_value(value) for name, value in args.parameter}
    try:
        if args.publish and overrides:
            raise UsageError("only a sweep without -p overrides can be published with the book")
        target = sweep(
            args.notebook,
            args.seeds,
            args.profile,
            overrides,
            scheduler=args.scheduler,
            workers=args.workers,
            out_root=args.out,
        )
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    content = load_summary(target)
    runs = content["runs"].values()
    try:
        if args.publish:
            publish(content, repo_root() / "book")
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 1 if any(run["status"] not in RUN_DONE for run in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
