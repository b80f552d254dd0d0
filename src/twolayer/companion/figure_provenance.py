"""The note under every figure of the book: how the run that drew it was made.

When the book is staged, every code cell of an executed notebook that shows an image gets
a small markdown cell after it (:func:`with_figure_provenance`), built from the run's
``run.json`` and the notebook's own ``parameters`` cell: the parameters that differ from
the notebook's, the seed, profile, device, package versions, the run's wall time, the hash
of its inputs and the ``make run`` command that reproduces it (:func:`figure_provenance`).
Nothing has to be added to a notebook for this.
"""

from __future__ import annotations

import ast
import copy
import shlex
from collections.abc import Mapping
from typing import Any

import nbformat

CSS_CLASS = "figure-provenance"
"""The class of the note's container, styled in ``book/_static/twolayer.css``."""
_HIDDEN = {"remove-cell", "remove-output"}
_PACKAGES = ("twolayer", "torch", "numpy")


def written_parameters(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    """The literal values assigned in the notebook's cell tagged ``parameters``.

    These are the notebook's own values (the default profile). Assignments that are not
    Python literals are left out; a notebook without such a cell gives ``{}``.
    """
    for cell in notebook.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            values = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and len(node.targets) == 1:
                    target = node.targets[0]
                    if isinstance(target, ast.Name):
                        try:
                            values[target.id] = ast.literal_eval(node.value)
                        except (ValueError, TypeError, SyntaxError):
                            pass
            return values
    return {}


def _command_value(value: Any) -> str:
    """A parameter value as the runner reads it back from ``-p NAME VALUE``."""
    from twolayer.companion.run import parse_value

    if isinstance(value, str) and parse_value(value) == value:
        return shlex.quote(value)
    return shlex.quote(repr(value))


def reproduce_command(name: str, profile: str, overrides: Mapping[str, Any]) -> str:
    """The ``make run`` command that repeats a run: ``make run NB=... PROFILE=... P="..."``."""
    command = f"make run NB={name} PROFILE={profile}"
    if overrides:
        pairs = " ".join(f"-p {key} {_command_value(value)}" for key, value in overrides.items())
        command += f' P="{pairs}"'
    return command


def changed_parameters(record: Mapping[str, Any], written: Mapping[str, Any]) -> dict[str, Any]:
    """The run's parameters whose values differ from the notebook's (``profile`` aside)."""
    return {
        key: value
        for key, value in record.get("parameters", {}).items()
        if key != "profile" and (key not in written or written[key] != value)
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "an unrecorded time"
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def figure_provenance(record: Mapping[str, Any], written: Mapping[str, Any]) -> str:
    """The markdown of the note under a figure, from a ``run.json`` record.

    ``written`` holds the notebook's own parameter values (:func:`written_parameters`):
    the note lists only the parameters that differ from them, and takes the seed and the
    device from them when the run did not change those. A record made before the runner
    recorded ``overrides`` is reproduced with every recorded parameter passed as ``-p``.
    """
    name, profile = record["notebook"], record["profile"]
    parameters = {**written, **record.get("parameters", {})}
    changed = changed_parameters(record, written)
    listed = ", ".join(f"`{key} = {value!r}`" for key, value in changed.items())
    listed = f"parameters changed from the notebook's: {listed}" if listed else ""
    if "overrides" in record:
        overrides = record["overrides"]
    else:
        overrides = {k: v for k, v in record.get("parameters", {}).items() if k != "profile"}
    versions = record.get("versions", {})
    packages = ", ".join(f"{p} {versions[p]}" for p in _PACKAGES if p in versions)
    device = record.get("device") or f"`{parameters.get('device', 'auto')}`"
    facts = [
        f"profile `{profile}`",
        f"seed {parameters['seed']}" if "seed" in parameters else "no seed parameter",
        listed or "the notebook's own parameters",
        f"device {device}",
        packages or "package versions not recorded",
        f"the whole notebook ran in {_duration(record.get('wall_seconds'))}",
        f"inputs hash `{record['inputs_hash'][:16]}`" if record.get("inputs_hash") else "",
    ]
    return "\n".join(
        [
            f"```{{container}} {CSS_CLASS}",
            "**How this figure was made:** " + "; ".join(fact for fact in facts if fact) + ".",
            "",
            f"Reproduce it: `{reproduce_command(name, profile, overrides)}`",
            "```",
        ]
    )


def shows_image(cell: nbformat.NotebookNode) -> bool:
    """Whether a code cell has an image among the outputs the book displays."""
    if cell.cell_type != "code" or _HIDDEN & set(cell.metadata.get("tags", [])):
        return False
    return any(
        key.startswith("image/")
        for output in cell.get("outputs", [])
        for key in output.get("data", {})
    )


def with_figure_provenance(
    notebook: nbformat.NotebookNode, record: Mapping[str, Any]
) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with the :func:`figure_provenance` note after every figure."""
    notebook = copy.deepcopy(notebook)
    note = figure_provenance(record, written_parameters(notebook))
    cells = []
    for cell in notebook.cells:
        cells.append(cell)
        if shows_image(cell):
            cells.append(nbformat.v4.new_markdown_cell(note, metadata={"tags": [CSS_CLASS]}))
    notebook.cells = cells
    return notebook
