"""The nbval references must match the notebooks they were made from."""

import nbformat
import pytest

from twolayer.companion.references import (
    CHECKED_TAG,
    code_sources,
    references_dir,
    source_notebooks,
    strip_for_reference,
)

SOURCES = source_notebooks()


@pytest.mark.parametrize("source", SOURCES, ids=[path.stem for path in SOURCES])
def test_reference_is_current(source):
    reference = references_dir() / source.name
    shown = f"tests/references/{source.name}"
    assert reference.is_file(), f"{shown} is missing: run make refresh-refs"
    current = code_sources(nbformat.read(source, as_version=4))
    stored = code_sources(nbformat.read(reference, as_version=4))
    assert stored == current, f"{shown} is stale: run make refresh-refs"


def test_every_reference_has_a_notebook():
    names = {path.name for path in SOURCES}
    orphans = [path.name for path in references_dir().glob("*.ipynb") if path.name not in names]
    assert not orphans, f"references without a notebook: {orphans}; run make refresh-refs"


@pytest.mark.parametrize("source", SOURCES, ids=[path.stem for path in SOURCES])
def test_reference_keeps_only_checked_outputs(source):
    reference = nbformat.read(references_dir() / source.name, as_version=4)
    for cell in reference.cells:
        if cell.cell_type == "code" and CHECKED_TAG not in cell.metadata.get("tags", []):
            assert cell.outputs == [], f"{source.name}: untagged cell with stored outputs"
    assert "papermill" not in reference.metadata


def test_stripping_keeps_tags_and_checked_outputs():
    notebook = nbformat.v4.new_notebook(metadata={"papermill": {"start_time": "now"}})
    checked = nbformat.v4.new_code_cell(
        "print(1)", metadata={"tags": [CHECKED_TAG]}, execution_count=3
    )
    checked.outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    plain = nbformat.v4.new_code_cell(
        "x = 1",
        metadata={"tags": ["parameters"], "papermill": {"duration": 1.0}},
        execution_count=2,
    )
    plain.outputs = [nbformat.v4.new_output("stream", name="stdout", text="noise\n")]
    injected = nbformat.v4.new_code_cell("x = 2", metadata={"tags": ["injected-parameters"]})
    notebook.cells = [plain, injected, checked]
    stripped = strip_for_reference(notebook)
    assert stripped.metadata == {}
    assert stripped.cells[1].id == "injected-parameters"
    assert stripped.cells[0].outputs == [] and stripped.cells[0].execution_count is None
    assert stripped.cells[0].metadata == {"tags": ["parameters"]}
    assert stripped.cells[2].outputs[0]["text"] == "1\n"
    assert stripped.cells[2].execution_count == 3


def test_injected_parameters_are_not_part_of_the_code():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("a = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("a = 2", metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_markdown_cell("text"),
        nbformat.v4.new_code_cell("print(a)"),
    ]
    assert code_sources(notebook) == ["a = 1", "print(a)"]
