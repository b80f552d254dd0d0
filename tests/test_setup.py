"""Consistency of the project's set-up: dependencies, notebooks, profiles and the book."""

import os
import re
import tomllib
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from twolayer.companion.book import toc_notebooks
from twolayer.companion.run import load_profiles, unreadable_parameters

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
BOOK_NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FIXTURES = sorted((ROOT / "tests" / "fixtures").glob("*.ipynb"))
ALL_NOTEBOOKS = BOOK_NOTEBOOKS + FIXTURES


def project_requirements() -> list[str]:
    project = PYPROJECT["project"]
    extras = [req for group in project["optional-dependencies"].values() for req in group]
    return project["dependencies"] + extras


def environment_requirements() -> list[str]:
    environment = yaml.safe_load((ROOT / "environment.yml").read_text())
    [pip] = [item["pip"] for item in environment["dependencies"] if isinstance(item, dict)]
    return pip


def constraints() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, pinned = line.partition("==")
            pins[canonicalize_name(name)] = Version(pinned.strip())
    return pins


def as_key(requirement: str) -> tuple[str, frozenset[str]]:
    parsed = Requirement(requirement)
    return canonicalize_name(parsed.name), frozenset(str(spec) for spec in parsed.specifier)


def test_environment_yml_matches_pyproject():
    pip = environment_requirements()
    assert "-e ." in pip
    listed = sorted(as_key(req) for req in pip if req != "-e .")
    assert listed == sorted(as_key(req) for req in project_requirements())


def test_every_direct_dependency_is_pinned_within_its_range():
    pins = constraints()
    for requirement in map(Requirement, project_requirements()):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {name}=={pins[name]}, outside {requirement.specifier}"
        )


def test_torch_is_2_13_0_everywhere():
    for requirement in (*project_requirements(), *environment_requirements()):
        if requirement != "-e ." and canonicalize_name(Requirement(requirement).name) == "torch":
            assert requirement == "torch==2.13.0"
    assert constraints()["torch"] == Version("2.13.0")


def test_ci_runs_the_test_command():
    ci = ROOT / ".ci" / "run"
    assert os.access(ci, os.X_OK)
    assert "make test" in ci.read_text()


def tagged(notebook: nbformat.NotebookNode, tag: str) -> list[int]:
    return [i for i, cell in enumerate(notebook.cells) if tag in cell.metadata.get("tags", [])]


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=[path.stem for path in ALL_NOTEBOOKS])
def test_notebook_structure(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), (
        f"{path.name} is stored with outputs; clear them before committing"
    )
    parameter_cells = tagged(notebook, "parameters")
    assert len(parameter_cells) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
    index = parameter_cells[0]
    declared = papermill.inspect_notebook(str(path))
    assert {"profile", "seed", "device"} <= set(declared)
    hidden = unreadable_parameters(path, declared)
    assert not hidden, (
        f"{path.name}: papermill cannot see {sorted(hidden)}; "
        "keep '=' out of the comments of the parameters cell"
    )
    following = next(cell for cell in notebook.cells[index + 1 :] if cell.cell_type == "code")
    assert f'nb = setup(\n    "{path.stem}",' in following.source, (
        f"{path.name}: the cell after the parameters cell must open with "
        f'nb = setup("{path.stem}", globals(), ...)'
    )
    headings = {
        match.group(1).strip()
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        for match in re.finditer(r"^#+\s+(.+)$", cell.source, flags=re.MULTILINE)
    }
    assert {"Claims", "Try it"} <= headings, f"{path.name} needs 'Claims' and 'Try it' sections"


@pytest.mark.parametrize(
    "directory", [ROOT / "notebooks", ROOT / "tests" / "fixtures"], ids=["notebooks", "fixtures"]
)
def test_profiles_name_existing_notebooks_and_parameters(directory):
    profiles = load_profiles(directory / "profiles.yml")
    for profile, section in profiles.items():
        for notebook, values in section.items():
            path = directory / f"{notebook}.ipynb"
            assert path.is_file(), f"profiles.yml, {profile}: no notebook {notebook}"
            unknown = set(values) - set(papermill.inspect_notebook(str(path)))
            assert not unknown, f"profiles.yml, {profile}.{notebook}: unknown {sorted(unknown)}"


def test_every_notebook_is_in_the_book():
    in_toc = set(toc_notebooks(ROOT / "book" / "_toc.yml"))
    missing = [path.stem for path in BOOK_NOTEBOOKS if path.stem not in in_toc]
    assert not missing, f"not listed in book/_toc.yml: {missing}"
