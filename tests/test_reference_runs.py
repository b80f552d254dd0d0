"""The nbval references read back as smoke runs: claims, parameters, glued values."""

import copy
import json

import nbformat
import pytest

from twolayer.companion.book import check_runs, toc_notebooks
from twolayer.companion.claims import Claims, load_claims
from twolayer.companion.paths import notebooks_dir, repo_root
from twolayer.companion.reference_runs import (
    GLUE_MARKDOWN_PLACEHOLDER,
    GLUE_MIME_PREFIX,
    GLUE_PLACEHOLDER,
    ReferenceError,
    claims_from_table,
    glue_keys,
    glued_keys,
    injected_parameters,
    results_from_references,
    with_current_prose,
    with_glue_placeholders,
)
from twolayer.companion.references import references_dir


def some_claims() -> Claims:
    claims = Claims("du2019-figure1", paper="du2019", profile="smoke")
    claims.check(
        id="rate-below-one",
        statement="The loss falls linearly (rate rho < 1) for every width (all of them).",
        source="du2019, Theorem 4.1 (eq. (5))",
        origin="paper",
        kind="reproduction",
        measured={"rho": 0.91234, "R^2": 0.99},
        expected="rho < 1 | R^2 >= 0.98",
        holds=True,
    )
    claims.check(
        id="exponent-fit",
        statement="Pattern changes fall like m^-1/2.",
        source="this book",
        origin="book",
        kind="consistency",
        measured=-0.41,
        expected="|exponent + 0.5| <= 0.05",
        holds=False,
        holds_from="default",
        assumptions="m >= n^6",
        outside_assumptions=["m = 100 is far below n^6", "eta = 0.2; a constant step"],
    )
    return claims


def test_the_claims_table_gives_back_the_records():
    claims = some_claims()
    records = claims_from_table(claims._repr_markdown_(), paper="du2019")
    expected = claims.records
    expected[0]["measured"] = "rho=0.912, R^2=0.99"  # the table shows formatted numbers
    expected[1]["measured"] = "-0.41"
    expected[1]["assumptions"] = ""  # the table does not show them
    expected[1]["outside_assumptions"] = ["m = 100 is far below n^6; eta = 0.2; a constant step"]
    assert records == expected
    assert [record["status"] for record in records] == ["reproduced", "needs larger scale"]


def test_a_table_row_without_a_source_is_refused():
    table = some_claims()._repr_markdown_().replace("(du2019, Theorem 4.1 (eq. (5)))", "")
    with pytest.raises(ReferenceError, match="no '\\(source\\)'"):
        claims_from_table(table, paper="du2019")


def glue_notebook() -> nbformat.NotebookNode:
    kept = nbformat.v4.new_code_cell("glue('kept', 3)")
    kept.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={GLUE_MIME_PREFIX + "text/plain": "3"},
            metadata={"scrapbook": {"name": "kept", "mime_prefix": GLUE_MIME_PREFIX}},
        )
    ]
    prose = (
        "Rate {glue:text}`rate:.3f`, kept {glue:text}`kept`, table {glue:md}`table:myst`, "
        "other page {glue:text}`other.ipynb::x:.2f`, plain {glue}`plain`."
    )
    return nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                '# Parameters\nprofile = "smoke"\nwidths = [10, 20]\n',
                metadata={"tags": ["injected-parameters"]},
            ),
            kept,
            nbformat.v4.new_markdown_cell(prose),
        ]
    )


def test_glued_values_the_reference_lost_get_placeholders():
    notebook = glue_notebook()
    assert glue_keys(notebook) == {
        "rate": "text/plain",
        "kept": "text/plain",
        "table": "text/markdown",
        "plain": "text/plain",
    }
    assert glued_keys(notebook) == {"kept"}
    filled = with_glue_placeholders(notebook)
    assert glued_keys(filled) == {"kept", "plain", "rate", "table"}
    last = filled.cells[-1]
    assert last.metadata.tags == ["remove-cell"]
    placed = {output.metadata.scrapbook.name: dict(output.data) for output in last.outputs}
    assert placed == {
        "plain": {GLUE_MIME_PREFIX + "text/plain": GLUE_PLACEHOLDER},
        "rate": {GLUE_MIME_PREFIX + "text/plain": GLUE_PLACEHOLDER},
        "table": {GLUE_MIME_PREFIX + "text/markdown": GLUE_MARKDOWN_PLACEHOLDER},
    }
    nbformat.validate(filled)
    assert f"{float(GLUE_PLACEHOLDER):.3f}" == "nan"  # every number format takes it


def test_the_injected_parameters_are_read_as_values():
    assert injected_parameters(glue_notebook()) == {"profile": "smoke", "widths": [10, 20]}


def test_every_book_notebook_has_a_reference_the_book_can_be_staged_from(tmp_path):
    names = toc_notebooks(repo_root() / "book" / "_toc.yml")
    runs = results_from_references(references_dir(), names, tmp_path, sources=notebooks_dir())
    assert check_runs(tmp_path, "smoke", names) == runs
    for name, directory in runs.items():
        claims = load_claims(directory / "claims.json")
        assert claims and {claim["notebook"] for claim in claims} == {name}
        assert {claim["profile"] for claim in claims} == {"smoke"}
        record = json.loads((directory / "run.json").read_text())
        assert record["status"] == "succeeded" and record["parameters"]["profile"] == "smoke"
        notebook = nbformat.read(directory / f"{name}.ipynb", as_version=4)
        assert set(glue_keys(notebook)) <= glued_keys(notebook)


def test_a_page_shows_the_current_prose_with_the_reference_outputs():
    reference = glue_notebook()
    reference.cells.insert(0, nbformat.v4.new_code_cell("profile = 'default'"))
    reference.cells[0].metadata["tags"] = ["parameters"]
    source = copy.deepcopy(reference)
    del source.cells[1]  # the source has no injected cell
    source.cells[1].outputs = []
    source.cells[2].source = "New prose, {glue:text}`kept`."
    merged = with_current_prose(reference, source, "a-notebook")
    assert [cell.source for cell in merged.cells] == [
        "profile = 'default'",
        reference.cells[1].source,  # the injected parameters, after the parameters cell
        "glue('kept', 3)",
        "New prose, {glue:text}`kept`.",
    ]
    assert merged.cells[2].outputs == reference.cells[2].outputs
    source.cells[1].source = "glue('kept', 4)"
    with pytest.raises(ReferenceError, match="make refresh-refs NB=a-notebook"):
        with_current_prose(reference, source, "a-notebook")


def test_a_notebook_without_a_reference_is_refused(tmp_path):
    with pytest.raises(ReferenceError, match="make refresh-refs NB=no-such-notebook"):
        results_from_references(references_dir(), ["no-such-notebook"], tmp_path)
