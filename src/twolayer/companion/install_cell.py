"""The cell that installs ``twolayer`` where a notebook is opened without it.

Usage::

    python -m twolayer.companion.install_cell [NAME ...]

A notebook opened on Colab or a JupyterHub finds no ``twolayer``. Its first code cell,
placed right after the title and hidden from the book, installs the package there: from
the clone the notebook sits in when there is one, else from the repository named by
``repository.url`` in ``book/_config.yml``. Where the package is importable (``make lab``,
the runner, the tests) the cell only imports it. The command writes the current cell into
every notebook of ``notebooks/`` (or those named), replacing an older one.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

import nbformat
import yaml

from twolayer.companion.paths import notebooks_dir, repo_root

INSTALL_TAG = "install-twolayer"
"""Tag of the install cell; ``remove-cell`` keeps it off the book's pages."""
TAGS = ["remove-cell", INSTALL_TAG]

_HEADER = """\
# Installs twolayer where this notebook runs without it (Colab, a JupyterHub); where it is
# installed (make lab, the runner, the tests) this cell only imports it.
try:
    import twolayer  # noqa: F401
except ModuleNotFoundError:
    import subprocess
    import sys
    from pathlib import Path

    if Path("../pyproject.toml").is_file():  # a clone of the repository
        package = ".."
    else:
"""
_INSTALL = (
    '    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)'
)


def install_cell_source(repository_url: str = "", branch: str = "main") -> str:
    """The install cell's code: pip from the clone, else from ``repository_url``."""
    url = repository_url.strip().rstrip("/")
    if not url:
        missing = 'raise ModuleNotFoundError("install twolayer: pip install . in its clone")'
        return _HEADER + f"        {missing}\n" + _INSTALL
    return _HEADER + f'        package = "twolayer @ git+{url}@{branch}"\n' + _INSTALL


def configured_source(config_file: Path | None = None) -> str:
    """The install cell for the repository set in ``book/_config.yml``."""
    path = config_file or repo_root() / "book" / "_config.yml"
    repository = yaml.safe_load(path.read_text()).get("repository") or {}
    return install_cell_source(repository.get("url") or "", repository.get("branch") or "main")


def install_cells(notebook: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    """The cells of ``notebook`` tagged as install cells."""
    return [cell for cell in notebook.cells if INSTALL_TAG in cell.metadata.get("tags", [])]


def after_title(cells: Sequence[nbformat.NotebookNode]) -> int:
    """The index right after the first markdown cell with a level-one heading (else 0)."""
    for index, cell in enumerate(cells):
        if cell.cell_type == "markdown" and re.search(r"^# ", cell.source, flags=re.MULTILINE):
            return index + 1
    return 0


def with_install_cell(notebook: nbformat.NotebookNode, source: str) -> nbformat.NotebookNode:
    """``notebook`` with one install cell holding ``source``, right after the title cell."""
    cells = [cell for cell in notebook.cells if INSTALL_TAG not in cell.metadata.get("tags", [])]
    position = after_title(cells)
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(TAGS)})
    cell.id = INSTALL_TAG
    notebook.cells = [*cells[:position], cell, *cells[position:]]
    return notebook


def write_install_cells(names: Sequence[str] = ()) -> list[Path]:
    """Write the configured install cell into the notebooks (all, or those named)."""
    paths = sorted(notebooks_dir().glob("*.ipynb"))
    unknown = sorted(set(names) - {path.stem for path in paths})
    if unknown:
        raise ValueError(f"no notebook {unknown[0]!r} in {notebooks_dir()}")
    chosen = [path for path in paths if not names or path.stem in names]
    source = configured_source()
    for path in chosen:
        notebook = nbformat.read(path, as_version=4)
        nbformat.write(with_install_cell(notebook, source), path)
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m twolayer.companion.install_cell``."""
    names = list(sys.argv[1:] if argv is None else argv)
    try:
        written = write_install_cells(names)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"install cell written to {len(written)} notebooks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
