"""Execute notebooks with papermill into the results tree.

Usage::

    python -m twolayer.companion.run NOTEBOOK... | --all  [--profile smoke|default|paper]
                           [-p NAME VALUE]... [--out DIR] [--reuse] [--progress]

A notebook runs with the values of its ``parameters`` cell, replaced by those of the
chosen profile (``profiles.yml`` beside the notebook), replaced in turn by ``-p`` values.
The kernel finds its output directory in ``TWOLAYER_RUN_DIR``; ``TWOLAYER_PROGRESS=0``
keeps progress bars out of the executed notebook unless ``--progress`` is given.
Exit status: 0 when every notebook succeeded, 2 for a bad request or a rejected
parameter value, 1 for any other failure.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import hashlib
import json
import logging
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from twolayer.companion.claims import load_claims, summarize, summary_line
from twolayer.companion.paths import (
    PROFILES,
    notebooks_dir,
    repo_root,
    result_dir,
    results_root,
    run_tag,
)

PROFILES_FILE = "profiles.yml"
Profiles = dict[str, dict[str, dict[str, Any]]]


class UsageError(Exception):
    """A request the runner refuses before executing anything (exit status 2)."""


# ---------------------------------------------------------------------------
# Pure parts: values, profiles, parameter names, input hash


def parse_value(text: str) -> Any:
    """Read a command-line value as a Python literal when it is one, else keep the string.

    ``"3" -> 3``, ``"1e-3" -> 0.001``, ``"[100, 200]" -> [100, 200]``, ``"True" -> True``,
    ``"cuda:0" -> "cuda:0"``.
    """
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _profile_value(value: Any) -> Any:
    """A profiles.yml value read like a command-line one, inside lists too ([8e-3, 1e-2])."""
    if isinstance(value, str):
        return parse_value(value)
    if isinstance(value, list):
        return [_profile_value(item) for item in value]
    return value


def load_profiles(path: Path) -> Profiles:
    """Read a ``profiles.yml``: profile -> notebook -> {parameter: value}.

    A missing file means no overrides. The ``default`` profile is by definition the
    notebooks' own parameter values, so its section must be empty. A string value is read
    like a command-line value, so ``1e-3`` (a string to YAML) becomes ``0.001``, also
    inside a list.
    """
    if not path.is_file():
        return {profile: {} for profile in PROFILES}
    content = yaml.safe_load(path.read_text()) or {}
    if not isinstance(content, dict):
        raise UsageError(f"{path}: expected a mapping from profile to notebooks")
    unknown = sorted(set(content) - set(PROFILES))
    if unknown:
        raise UsageError(
            f"{path}: unknown profile {unknown[0]!r}; profiles are {', '.join(PROFILES)}"
        )
    profiles: Profiles = {}
    for profile in PROFILES:
        section = content.get(profile) or {}
        if not isinstance(section, dict):
            raise UsageError(f"{path}: profile {profile!r} must map notebook names to parameters")
        for notebook, values in section.items():
            if values is not None and not isinstance(values, dict):
                raise UsageError(f"{path}: {profile}.{notebook} must map parameter names to values")
        profiles[profile] = {
            notebook: {name: _profile_value(value) for name, value in (values or {}).items()}
            for notebook, values in section.items()
        }
    if any(profiles["default"].values()):
        raise UsageError(
            f"{path}: the default profile is the notebooks' own parameter values; "
            "leave its section empty"
        )
    return profiles


def describe_parameters(valid: Mapping[str, Mapping[str, Any]]) -> str:
    """One line per parameter: name, type, default and help, from papermill's inspection."""
    lines = []
    for name, info in valid.items():
        default = info.get("default", "")
        kind = info.get("inferred_type_name")
        if kind in (None, "None"):
            literal = parse_value(default)
            kind = type(literal).__name__ if literal is not default else "expression"
        help_text = info.get("help") or ""
        lines.append(f"  {name} ({kind}, default {default}{': ' + help_text if help_text else ''})")
    return "\n".join(lines)


def check_names(
    notebook: str, names: Sequence[str], valid: Mapping[str, Mapping[str, Any]], origin: str
) -> None:
    """Raise UsageError for the first name that is not a parameter of ``notebook``."""
    for name in names:
        if name not in valid:
            close = difflib.get_close_matches(name, list(valid), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UsageError(
                f"{notebook} has no parameter {name!r} ({origin}).{hint} "
                f"Valid parameters:\n{describe_parameters(valid)}"
            )


def effective_parameters(
    notebook: str,
    valid: Mapping[str, Mapping[str, Any]],
    profiles: Profiles,
    profile: str,
    overrides: Mapping[str, Any],
) -> dict[str, Any]:
    """Merge the profile's values for ``notebook`` and the overrides, after checking names.

    Overrides win over profile values. ``profile`` is set unless it equals the value in
    the parameters cell, so that a default run with no overrides leaves the notebook
    exactly as written (papermill then injects no cell).
    """
    if "profile" in overrides:
        raise UsageError("choose the profile with --profile, not with -p profile")
    from_profile = profiles.get(profile, {}).get(notebook, {})
    check_names(notebook, ["profile"], valid, "every notebook needs a 'profile' parameter")
    check_names(notebook, list(from_profile), valid, f"{PROFILES_FILE}, profile {profile}")
    check_names(notebook, list(overrides), valid, "command line")
    merged = {**from_profile, **overrides}
    written = valid["profile"].get("default")
    if written is None or ast.literal_eval(written) != profile:
        merged = {"profile": profile, **merged}
    return merged


def unreadable_parameters(path: Path, valid: Mapping[str, Any]) -> list[str]:
    """Names assigned in the ``parameters`` cell that papermill's inspection missed.

    Papermill skips any line of that cell with more than one ``=``, so a comment such as
    ``# (>= 2)`` hides its parameter from overrides.
    """
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    cells = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    if not cells:
        return []
    assigned = [
        target.id
        for node in ast.parse(cells[0].source).body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Name)
    ]
    return [name for name in assigned if name not in valid]


def _package_dir() -> Path:
    """The directory of the whole ``twolayer`` package, mathematics and machinery."""
    return Path(__file__).resolve().parents[1]


def _package_files() -> list[Path]:
    package = _package_dir()
    return sorted(
        path for path in package.rglob("*") if path.is_file() and "__pycache__" not in path.parts
    )


def inputs_hash(notebook: Path, profiles_file: Path, parameters: Mapping[str, Any]) -> str:
    """SHA-256 over everything a run's result depends on in this repository.

    That is the notebook, every file of the ``twolayer`` package, the profiles file and
    the effective parameters.
    """
    digest = hashlib.sha256()
    package = _package_dir()
    files = [(notebook.name, notebook), (PROFILES_FILE, profiles_file)]
    files += [(path.relative_to(package).as_posix(), path) for path in _package_files()]
    for label, path in files:
        digest.update(label.encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"")
        digest.update(b"\0")
    digest.update(json.dumps(dict(parameters), sort_keys=True, default=repr).encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------
# Execution


@dataclass
class Outcome:
    """What happened to one notebook."""

    notebook: str
    tag: str
    directory: Path
    status: str  # "succeeded", "skipped", "failed", "rejected" (bad parameter), "interrupted"
    lines: list[str] = field(default_factory=list)
    error: str = ""
    error_in_cell: bool = False  # the failure came from a cell, not from the kernel

    @property
    def exit_code(self) -> int:
        return {"succeeded": 0, "skipped": 0, "rejected": 2, "interrupted": 130}.get(self.status, 1)


def _shown(path: Path) -> str:
    """A path relative to the repository root when it lies inside, else absolute."""
    try:
        return str(path.resolve().relative_to(repo_root()))
    except ValueError:
        return str(path.resolve())


def resolve_notebook(argument: str) -> Path:
    """Turn a notebook name (``du2019-figure1``) or a path to an ``.ipynb`` into a path."""
    if argument.endswith(".ipynb") or os.sep in argument:
        path = Path(argument)
    else:
        path = notebooks_dir() / f"{argument}.ipynb"
    if not path.is_file():
        known = ", ".join(p.stem for p in sorted(notebooks_dir().glob("*.ipynb"))) or "none"
        raise UsageError(f"no notebook {argument!r} (notebooks: {known})")
    return path


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# Several runs on one machine at once (a local sweep, tests on several workers) each start a
# kernel whose ports jupyter_client picks by binding port 0 and letting them go; a kernel
# starting at the same moment in another process can draw the same port and fail. So kernels
# start one at a time on a machine: a file lock is held until the kernel has answered.
# TWOLAYER_KERNEL_LOCK names another lock file (one shared by several users, for instance).
KERNEL_LOCK_VARIABLE = "TWOLAYER_KERNEL_LOCK"


def kernel_lock_path() -> Path:
    """The machine-wide kernel-start lock file: $TWOLAYER_KERNEL_LOCK, else one per user."""
    import getpass
    import tempfile

    configured = os.environ.get(KERNEL_LOCK_VARIABLE)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir()) / f"twolayer-kernel-start-{getpass.getuser()}.lock"


@contextmanager
def kernel_start_lock() -> Iterator[Callable[..., None]]:
    """Hold the kernel-start lock; yields its release, to call once the kernel is up.

    The release accepts and ignores nbclient's hook arguments. Whatever happens, the lock
    is released on leaving the block; a process that dies releases it too (flock).
    """
    from filelock import FileLock

    lock = FileLock(kernel_lock_path())
    lock.acquire()

    def release(**_: Any) -> None:
        if lock.is_locked:
            lock.release(force=True)

    try:
        yield release
    finally:
        release()


def _versions() -> dict[str, str]:
    return {
        "twolayer": version("twolayer"),
        "torch": version("torch"),
        "numpy": version("numpy"),
        "python": platform.python_version(),
    }


def describe_run_device(name: Any) -> str:
    """The device a notebook's ``device`` parameter resolves to here, in words.

    A value the notebook would refuse is returned as written (the run then stops at its
    parameter check).
    """
    from twolayer.devices import describe_device, device_error, resolve_device

    if device_error(name) is not None:
        return str(name)
    return describe_device(resolve_device(name))


def _write_record(directory: Path, record: Mapping[str, Any]) -> None:
    (directory / "run.json").write_text(json.dumps(record, indent=2, default=repr) + "\n")


def read_record(directory: Path) -> dict[str, Any] | None:
    """The ``run.json`` of a run directory, or None when there is none."""
    path = directory / "run.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _claims_line(directory: Path) -> str:
    path = directory / "claims.json"
    if not path.is_file():
        return "  claims:   none written"
    return f"  claims:   {_shown(path)} ({summary_line(summarize(load_claims(path)))})"


@dataclass(frozen=True)
class Request:
    """One notebook to run, with everything resolved before execution starts."""

    path: Path
    profile: str
    overrides: dict[str, Any]
    parameters: dict[str, Any]
    profiles_file: Path
    out_root: Path
    device: Any = "auto"  # the device parameter's value for this run

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def tag(self) -> str:
        return run_tag(self.profile, self.overrides)

    @property
    def directory(self) -> Path:
        return result_dir(self.name, self.tag, self.out_root)


def prepare(
    path: Path, profile: str, overrides: Mapping[str, Any], out_root: Path | None = None
) -> Request:
    """Check a notebook's parameter names against its profile values and overrides."""
    import papermill

    profiles_file = path.parent / PROFILES_FILE
    valid = papermill.inspect_notebook(str(path))
    hidden = unreadable_parameters(path, valid)
    if hidden:
        raise UsageError(
            f"{path.stem}: papermill cannot read the parameters cell lines that set "
            f"{', '.join(hidden)}; a comment there must not contain '='"
        )
    parameters = effective_parameters(
        path.stem, valid, load_profiles(profiles_file), profile, overrides
    )
    written_device = parse_value(valid.get("device", {}).get("default", "'auto'"))
    return Request(
        path=path,
        profile=profile,
        overrides=dict(overrides),
        parameters=parameters,
        profiles_file=profiles_file,
        out_root=out_root if out_root is not None else results_root(),
        device=parameters.get("device", written_device),
    )


def execute(request: Request, *, reuse: bool = False, progress: bool = False) -> Outcome:
    """Run one prepared notebook with papermill and record the run in ``run.json``."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    name, directory = request.name, request.directory
    digest = inputs_hash(request.path, request.profiles_file, request.parameters)
    final = directory / f"{name}.ipynb"
    failed = directory / f"{name}.failed.ipynb"
    outcome = Outcome(name, request.tag, directory, "succeeded")

    previous = read_record(directory)
    if (
        reuse
        and final.is_file()
        and previous is not None
        and previous.get("status") == "succeeded"
        and previous.get("inputs_hash") == digest
    ):
        outcome.status = "skipped"
        outcome.lines = [
            f"{name} [{request.tag}] up to date, skipped",
            f"  notebook: {_shown(final)}",
        ]
        return outcome

    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "claims.json").unlink(missing_ok=True)
    running = directory / f"{name}.running.ipynb"
    record: dict[str, Any] = {
        "notebook": name,
        "profile": request.profile,
        "tag": request.tag,
        "parameters": request.parameters,
        "overrides": request.overrides,
        "device": describe_run_device(request.device),
        "status": "running",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_seconds": None,
        "versions": _versions(),
        "inputs_hash": digest,
    }
    _write_record(directory, record)
    environment = {
        "TWOLAYER_RUN_DIR": str(directory.resolve()),
        "TWOLAYER_PROGRESS": "1" if progress else "0",
    }
    start = time.perf_counter()
    try:
        with _environment(environment), kernel_start_lock() as started:
            papermill.execute_notebook(
                str(request.path),
                str(running),
                parameters=request.parameters,
                kernel_name="python3",
                progress_bar=sys.stdout.isatty(),
                log_output=progress,
                stdout_file=sys.stdout if progress else None,
                stderr_file=sys.stderr if progress else None,
                cwd=str(request.path.parent),
                # The kernel's own log (plain-TCP notice, the interrupt sent at shutdown)
                # would land on the terminal; errors in cells are reported by papermill.
                extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
                on_notebook_start=started,  # nbclient: the kernel is up and has answered
            )
    except PapermillExecutionError as error:
        outcome.error = f"{error.ename}: {error.evalue}"
        outcome.error_in_cell = True
        if error.ename == "ParameterError":
            outcome.status = "rejected"
            outcome.lines = [f"error: {error.evalue}"]
        else:
            outcome.status = "failed"
            outcome.lines = [
                f"error: {name} failed in cell {error.exec_count}: {outcome.error}",
                f"  notebook: {_shown(failed)}",
            ]
    except KeyboardInterrupt:
        outcome.status = "interrupted"
        outcome.error = "interrupted"
        outcome.lines = [
            f"error: {name} was interrupted; its checkpoints stay in "
            f"{_shown(directory / 'checkpoints')} for the next run"
        ]
    except Exception as error:  # the kernel died or could not start
        outcome.status = "failed"
        outcome.error = f"{type(error).__name__}: {error}"
        outcome.lines = [f"error: {name} failed: {outcome.error}"]
    wall = time.perf_counter() - start

    if outcome.status == "succeeded":
        running.replace(final)
        failed.unlink(missing_ok=True)
        outcome.lines = [
            f"{name} [{request.tag}] finished in {wall:.1f} s",
            f"  notebook: {_shown(final)}",
            _claims_line(directory),
        ]
    else:
        final.unlink(missing_ok=True)
        if running.is_file():
            running.replace(failed)
        record["error"] = outcome.error
    record.update(status=outcome.status, wall_seconds=round(wall, 2))
    _write_record(directory, record)
    if outcome.status == "rejected" and created:
        _remove_run_dir(directory)
    return outcome


def _remove_run_dir(directory: Path) -> None:
    """Remove a run directory this run created for nothing (a rejected parameter value)."""
    shutil.rmtree(directory)
    with suppress(OSError):
        directory.parent.rmdir()


# ---------------------------------------------------------------------------
# Command line


def add_run_options(parser: argparse.ArgumentParser, parameter_help: str) -> None:
    """The options every command that runs notebooks shares: ``--profile`` and ``-p``."""
    parser.add_argument(
        "--profile", choices=PROFILES, default="default", help="run scale (default: %(default)s)"
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help=parameter_help,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m twolayer.companion.run",
        description="Execute notebooks into results/<profile>[+overrides]/<notebook>/.",
    )
    parser.add_argument(
        "notebooks",
        nargs="*",
        metavar="NOTEBOOK",
        help="notebook name (du2019-figure1) or path to an .ipynb file",
    )
    parser.add_argument("--all", action="store_true", help="run every notebook in notebooks/")
    add_run_options(parser, "override a parameter; VALUE is read as a Python literal if it is one")
    parser.add_argument("--out", type=Path, help="results root instead of <repo>/results")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="skip notebooks whose last successful run had the same inputs",
    )
    parser.add_argument(
        "--progress",
        action="store_true",
        help="show progress bars and stream the notebooks' output",
    )
    return parser


def requested_notebooks(names: Sequence[str], run_all: bool) -> list[Path]:
    """The notebook paths named on the command line, or all of notebooks/ with --all."""
    if run_all == bool(names):
        raise UsageError("name notebooks or give --all (not both)")
    if run_all:
        paths = sorted(notebooks_dir().glob("*.ipynb"))
        if not paths:
            raise UsageError(f"no notebooks in {_shown(notebooks_dir())}/")
        return paths
    return [resolve_notebook(name) for name in names]


def run(
    paths: Sequence[Path],
    profile: str,
    overrides: Mapping[str, Any],
    *,
    out_root: Path | None = None,
    reuse: bool = False,
    progress: bool = False,
) -> list[Outcome]:
    """Prepare every notebook first (so a bad name stops all), then execute them in turn.

    Each outcome's lines are printed as soon as that notebook ends.
    """
    logging.getLogger("papermill").setLevel(logging.CRITICAL)
    requests = [prepare(path, profile, overrides, out_root) for path in paths]
    outcomes = []
    for request in requests:
        if len(requests) > 1:
            print(f"{request.name} [{request.tag}] ...", flush=True)
        outcome = execute(request, reuse=reuse, progress=progress)
        stream = (
            sys.stderr if outcome.status in ("failed", "rejected", "interrupted") else sys.stdout
        )
        print("\n".join(outcome.lines), file=stream, flush=True)
        outcomes.append(outcome)
        if outcome.status == "interrupted":
            break
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m twolayer.companion.run``; returns the exit status."""
    args = _parser().parse_args(argv)
    overrides = {name: parse_value(value) for name, value in args.parameter}
    try:
        paths = requested_notebooks(args.notebooks, args.all)
        outcomes = run(
            paths,
            args.profile,
            overrides,
            out_root=args.out,
            reuse=args.reuse,
            progress=args.progress,
        )
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    bad = [outcome for outcome in outcomes if outcome.exit_code]
    if len(outcomes) > 1 and bad:
        listed = ", ".join(f"{outcome.notebook} [{outcome.tag}]" for outcome in bad)
        print(f"error: {len(bad)} of {len(outcomes)} notebooks failed: {listed}", file=sys.stderr)
    return max((outcome.exit_code for outcome in outcomes), default=0)


if __name__ == "__main__":
    sys.exit(main())
