"""The import rules of ARCHITECTURE.md, checked on the code as it stands."""

import ast
import re
from pathlib import Path

import nbformat
import pytest

import twolayer.companion

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "twolayer"
MACHINERY = PACKAGE / "companion"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
    (ROOT / "tests" / "fixtures").glob("*.ipynb")
)


def mathematics_units() -> dict[str, list[Path]]:
    """Top-level unit of the mathematics (module or subpackage) -> its source files."""
    units: dict[str, list[Path]] = {}
    for path in sorted(PACKAGE.iterdir()):
        if path.suffix == ".py" and path.name != "__init__.py":
            units[path.stem] = [path]
        elif path.is_dir() and path != MACHINERY and (path / "__init__.py").is_file():
            units[path.name] = sorted(path.rglob("*.py"))
    return units


def imported_modules(source: str, package: str | None = None) -> set[str]:
    """Absolute names of the modules a piece of code imports (relative imports resolved)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = (package or "").split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def package_of(path: Path) -> str:
    """The package a source file belongs to: ``src/twolayer/kernels.py`` -> ``twolayer``."""
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])


def twolayer_unit(module: str) -> str | None:
    """``twolayer.kernels.x`` -> ``kernels``; None for modules outside the package."""
    parts = module.split(".")
    if parts[0] != "twolayer" or len(parts) < 2:
        return None
    return parts[1]


def layers() -> list[set[str]]:
    """The layering line of ARCHITECTURE.md rule 4, lowest layer first."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    line = next(
        line.strip() for line in text.splitlines() if re.match(r"^\s*`\w+`(, `\w+`)* <", line)
    )
    line = line.rstrip(";")
    return [set(re.findall(r"`(\w+)`", group)) for group in line.split("<")]


@pytest.mark.parametrize("unit", sorted(mathematics_units()))
def test_the_mathematics_never_imports_the_machinery(unit):
    for path in mathematics_units()[unit]:
        imported = imported_modules(path.read_text(), package_of(path))
        machinery = sorted(m for m in imported if twolayer_unit(m) == "companion")
        assert not machinery, f"{path.relative_to(ROOT)} imports the machinery: {machinery}"


def test_the_layering_rule_names_every_unit_of_the_mathematics():
    named = set().union(*layers())
    units = set(mathematics_units()) - {"plotting"}
    assert named == units, (
        "ARCHITECTURE.md rule 4 must place every module of the mathematics: "
        f"missing {sorted(units - named)}, unknown {sorted(named - units)}"
    )


def test_lower_modules_do_not_import_higher_ones():
    level = {unit: i for i, group in enumerate(layers()) for unit in group}
    level["plotting"] = -1  # imports no other module of the package
    for unit, paths in mathematics_units().items():
        for path in paths:
            for module in imported_modules(path.read_text(), package_of(path)):
                target = twolayer_unit(module)
                if target is None or target == unit or target not in level:
                    continue
                assert level[target] < level[unit] and unit != "plotting", (
                    f"{path.relative_to(ROOT)} imports twolayer.{target}, "
                    "which ARCHITECTURE.md places at the same level or above"
                )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebooks_use_only_the_public_names_of_the_machinery(path):
    public = set(twolayer.companion.__all__)
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "twolayer.companion"
            ):
                assert node.module == "twolayer.companion", (
                    f"{path.name} imports {node.module}; use the names of twolayer.companion"
                )
                names = {alias.name for alias in node.names}
                assert names <= public, f"{path.name} imports {sorted(names - public)}"
            elif isinstance(node, ast.Import):
                inner = [a.name for a in node.names if a.name.startswith("twolayer.companion.")]
                assert not inner, f"{path.name} imports {inner}"


def test_the_public_names_resolve():
    for name in twolayer.companion.__all__:
        assert getattr(twolayer.companion, name) is not None
    with pytest.raises(AttributeError):
        twolayer.companion.no_such_name  # noqa: B018


def test_the_import_scanner_sees_relative_and_aliased_imports():
    source = "from ..companion import claims\nimport twolayer.companion.run as r\n"
    imported = imported_modules(source, "twolayer.training")  # a module of a subpackage
    assert "twolayer.companion.claims" in imported
    assert "twolayer.companion.run" in imported
