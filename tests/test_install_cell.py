"""The cell that installs twolayer where a notebook is opened without it."""

import builtins
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from twolayer.companion.install_cell import (
    INSTALL_TAG,
    configured_source,
    install_cell_source,
    install_cells,
    with_install_cell,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_every_notebook_opens_with_the_current_install_cell(path):
    notebook = nbformat.read(path, as_version=4)
    found = install_cells(notebook)
    hint = f"run: python -m twolayer.companion.install_cell {path.stem}"
    assert len(found) == 1 and found[0].source == configured_source(), hint
    first_code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert first_code is found[0], f"{path.name}: the install cell must be the first code cell"
    assert "remove-cell" in found[0].metadata["tags"]


def run_cell(source: str, tmp_path: Path, monkeypatch, *, installed: bool) -> list[str]:
    """Execute the cell in ``tmp_path``; return the pip commands it ran."""
    calls = []
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "twolayer" and not installed:
            raise ModuleNotFoundError("No module named 'twolayer'")
        return real_import(name, *args, **kwargs)

    def fake_run(command, check):
        assert command[:3] == [sys.executable, "-m", "pip"] and check
        calls.append(" ".join(command[3:]))

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(subprocess, "run", fake_run)
    exec(compile(source, "install-cell", "exec"), {})
    return calls


def test_the_cell_does_nothing_where_twolayer_is_installed(tmp_path, monkeypatch):
    source = install_cell_source("https://github.com/someone/twolayer")
    assert run_cell(source, tmp_path, monkeypatch, installed=True) == []


def test_the_cell_installs_from_the_clone_or_the_repository(tmp_path, monkeypatch):
    source = install_cell_source("https://github.com/someone/twolayer/", branch="main")
    assert run_cell(source, tmp_path, monkeypatch, installed=False) == [
        "install --quiet twolayer @ git+https://github.com/someone/twolayer@main"
    ]
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "notebooks").mkdir()
    clone = run_cell(source, tmp_path / "notebooks", monkeypatch, installed=False)
    assert clone == ["install --quiet .."]


def test_without_a_repository_url_the_cell_says_how_to_install(tmp_path, monkeypatch):
    with pytest.raises(ModuleNotFoundError, match=r"install twolayer: pip install \. in its clone"):
        run_cell(install_cell_source(""), tmp_path, monkeypatch, installed=False)


def test_the_cell_goes_after_the_title_and_replaces_an_older_one():
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# Title"),
            nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
        ]
    )
    once = with_install_cell(notebook, "old")
    twice = with_install_cell(once, "new")
    assert [cell.source for cell in twice.cells] == ["# Title", "new", "x = 1"]
    assert twice.cells[1].metadata["tags"] == ["remove-cell", INSTALL_TAG]
    nbformat.validate(twice)
