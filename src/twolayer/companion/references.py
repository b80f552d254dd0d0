"""Reference copies of the notebooks for the nbval tests (``make refresh-refs``).

Each notebook (or each one named: ``python -m twolayer.companion.references NAME...``) is
executed at the smoke profile and stored as ``tests/references/<nb>.ipynb`` with the
outputs of the cells tagged ``nbval-check-output`` only; nbval re-executes the
reference and compares those outputs. Stripping everything else keeps the files small
and their diffs reviewable.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import nbformat

from twolayer.companion.paths import notebooks_dir, repo_root

CHECKED_TAG = "nbval-check-output"
INJECTED_TAG = "injected-parameters"
VOLATILE_CELL_METADATA = ("papermill", "execution")


def references_dir() -> Path:
    """Where the reference notebooks live: ``tests/references``."""
    return repo_root() / "tests" / "references"


def source_notebooks() -> list[Path]:
    """Every notebook that gets a reference: the book's notebooks and the test fixtures."""
    fixtures = repo_root() / "tests" / "fixtures"
    return sorted(notebooks_dir().glob("*.ipynb")) + sorted(fixtures.glob("*.ipynb"))


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def strip_for_reference(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop outputs of untagged cells, run timings and papermill's random bookkeeping."""
    notebook.metadata.pop("papermill", None)
    for cell in notebook.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if INJECTED_TAG in _tags(cell):
            cell.id = INJECTED_TAG  # papermill draws a random id on every run
        if cell.cell_type == "code" and CHECKED_TAG not in _tags(cell):
            cell.outputs = []
            cell.execution_count = None
    return notebook


def code_sources(notebook: nbformat.NotebookNode) -> list[str]:
    """The code cells' sources, without the cell papermill injects for the parameters."""
    return [
        cell.source
        for cell in notebook.cells
        if cell.cell_type == "code" and INJECTED_TAG not in _tags(cell)
    ]


def refresh(names: Sequence[str] = ()) -> int:
    """Execute source notebooks at the smoke profile and store their references.

    ``names`` picks notebooks by name; by default every source notebook is refreshed and
    references without a notebook are removed.
    """
    from twolayer.companion.run import UsageError, run

    target = references_dir()
    target.mkdir(parents=True, exist_ok=True)
    sources = source_notebooks()
    chosen = [path for path in sources if path.stem in names] if names else sources
    unknown = sorted(set(names) - {path.stem for path in sources})
    if unknown:
        known = ", ".join(path.stem for path in sources)
        print(f"error: no notebook {unknown[0]!r} (notebooks: {known})", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as scratch:
        try:
            outcomes = run(chosen, "smoke", {}, out_root=Path(scratch))
        except UsageError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        for outcome in outcomes:
            if outcome.status == "succeeded":
                executed = nbformat.read(outcome.directory / f"{outcome.notebook}.ipynb", 4)
                nbformat.write(strip_for_reference(executed), target / f"{outcome.notebook}.ipynb")
    if not names:
        for orphan in set(target.glob("*.ipynb")) - {target / path.name for path in sources}:
            orphan.unlink()
    written = [outcome.notebook for outcome in outcomes if outcome.status == "succeeded"]
    print(f"references written to {target.relative_to(repo_root())}/: {', '.join(written)}")
    return max((outcome.exit_code for outcome in outcomes), default=0)


if __name__ == "__main__":
    sys.exit(refresh(sys.argv[1:]))
