"""The nbval references laid out as smoke runs, so the book can be built without running.

``tests/references/<nb>.ipynb`` is a smoke-profile run of each notebook that keeps only
the outputs of the cells tagged ``nbval-check-output`` (:mod:`twolayer.companion.references`).
Among those is the claims table, from which :func:`claims_from_table` recovers the claim
records. :func:`results_from_references` writes, for every reference, what
:func:`twolayer.companion.book.stage` reads from a run directory: the executed notebook,
``run.json`` and ``claims.json``.

A book built this way has the notebooks' current prose and code (the references' outputs
are put into the notebooks of ``notebooks/``, whose code must match theirs), claims tables
and printed checks, but no figures, and every value a page glues into its prose from a
cell whose output the reference dropped shows as ``nan`` (:data:`GLUE_PLACEHOLDER`). It is
for testing how the site renders, not for reading.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat

from twolayer.companion.claims import CONSISTENCY, FIELDS, REPRODUCTION, STATUSES
from twolayer.companion.references import INJECTED_TAG, code_sources, references_dir

GLUE_PLACEHOLDER = "nan"
"""What a glued value the reference does not hold shows as (any number format accepts it)."""
GLUE_MARKDOWN_PLACEHOLDER = r"$\mathrm{nan}$"
"""The same for glued markdown: a formula, so that a ``{glue:md}`` role whose markdown is
not read as MyST (``{glue:md}`key:myst```) shows as raw TeX, as its real values would."""
GLUE_MIME_PREFIX = "application/papermill.record/"
"""The prefix of the MIME types under which myst-nb's ``glue`` stores a value."""
_GLUE_ROLE = re.compile(r"\{glue(?::(text|md|any))?\}`([^`]+)`")
_TABLE_START = "**Claims** of "
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")
_STATUS_CLASS = re.compile(r'class="claim-mark claim-([a-z-]+)"')
_CLAIM_ID = re.compile(r"^`([^`]+)`: (.*)$", re.DOTALL)
_OUTSIDE = " *Outside the paper's assumptions:* "
_HELD = {STATUSES[REPRODUCTION][0], STATUSES[CONSISTENCY][0]}


class ReferenceError(Exception):
    """A reference notebook cannot be read as a smoke run."""


def _split_row(row: str) -> list[str]:
    """The cells of a markdown table row, ``\\|`` read as a literal bar."""
    cells = _CELL_SEPARATOR.split(row.strip())[1:-1]
    return [cell.strip().replace("\\|", "|") for cell in cells]


def _split_source(text: str) -> tuple[str, str]:
    """``'statement (source)'`` -> (statement, source); the source's parentheses may nest."""
    if not text.endswith(")"):
        raise ReferenceError(f"no '(source)' at the end of the claim text {text!r}")
    depth = 0
    for index in range(len(text) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[index], 0)
        if depth == 0:
            return text[:index].rstrip(), text[index + 1 : -1]
    raise ReferenceError(f"unbalanced parentheses in the claim text {text!r}")


def _claim_record(cells: Sequence[str], notebook: str, paper: str, profile: str) -> dict[str, Any]:
    """One claim record from the cells of a row of :meth:`Claims._repr_markdown_`'s table."""
    mark, claim, origin_kind, measured, expected, holds_from = cells
    status_class = _STATUS_CLASS.search(mark)
    identified = _CLAIM_ID.match(claim)
    if status_class is None or identified is None:
        raise ReferenceError(f"{notebook}: cannot read the claims table row {cells!r}")
    status = status_class.group(1).replace("-", " ")
    claim_id, text = identified.groups()
    text, _, outside = text.partition(_OUTSIDE)
    statement, source = _split_source(text)
    origin, _, kind = origin_kind.partition(", ")
    record = {
        "id": claim_id,
        "statement": statement,
        "source": source,
        "origin": origin,
        "kind": kind,
        "assumptions": "",
        "outside_assumptions": [outside] if outside else [],
        "measured": measured,
        "expected": expected,
        "holds": status in _HELD,
        "profile": profile,
        "holds_from": holds_from,
        "status": status,
        "notebook": notebook,
        "paper": paper,
    }
    if kind not in STATUSES or status not in STATUSES[kind]:
        raise ReferenceError(f"{notebook}: claim {claim_id!r} has kind {kind!r}, status {status!r}")
    return {field: record[field] for field in FIELDS}


def claims_from_table(markdown: str, paper: str) -> list[dict[str, Any]]:
    """The claim records behind a claims table as a notebook shows it (``Claims`` markdown).

    The table gives every field of ``claims.json`` except the assumptions (left empty);
    each measured value comes back as the text the table shows, and the ways the run
    departs from the assumptions as one item (the table joins them with ``'; '``).
    """
    lines = markdown.strip().splitlines()
    caption = lines[0].removeprefix(_TABLE_START)
    notebook, _, rest = caption.partition(" at profile ")
    profile = rest.partition(":")[0]
    rows = [line for line in lines[4:] if line.startswith("|")]
    return [_claim_record(_split_row(row), notebook, paper, profile) for row in rows]


def claims_table(notebook: nbformat.NotebookNode) -> str | None:
    """The markdown of the claims table among a notebook's outputs, or None."""
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            markdown = output.get("data", {}).get("text/markdown", "")
            if markdown.startswith(_TABLE_START):
                return markdown
    return None


def injected_parameters(notebook: nbformat.NotebookNode) -> dict[str, Any]:
    """The values of the cell papermill injected (the profile's parameters), as literals."""
    values: dict[str, Any] = {}
    for cell in notebook.cells:
        if INJECTED_TAG in cell.metadata.get("tags", []):
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def glue_keys(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """Every key the notebook's markdown glues from itself -> the MIME type it needs."""
    keys: dict[str, str] = {}
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for role, content in _GLUE_ROLE.findall(cell.source):
                key = content.rsplit(":", 1)[0] if role in ("text", "md") else content
                if "::" not in key:
                    keys[key] = "text/markdown" if role == "md" else "text/plain"
    return keys


def glued_keys(notebook: nbformat.NotebookNode) -> set[str]:
    """The keys whose glued values the notebook's outputs hold."""
    return {
        output["metadata"]["scrapbook"]["name"]
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "scrapbook" in output.get("metadata", {})
    }


def with_glue_placeholders(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook with a removed last cell gluing :data:`GLUE_PLACEHOLDER` for lost keys."""
    missing = {
        key: mime for key, mime in glue_keys(notebook).items() if key not in glued_keys(notebook)
    }
    if not missing:
        return notebook
    cell = nbformat.v4.new_code_cell(
        "# The values glued here were not kept in the reference.",
        metadata={"tags": ["remove-cell"]},
    )
    placeholder = {"text/plain": GLUE_PLACEHOLDER, "text/markdown": GLUE_MARKDOWN_PLACEHOLDER}
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={GLUE_MIME_PREFIX + mime: placeholder[mime]},
            metadata={"scrapbook": {"name": key, "mime_prefix": GLUE_MIME_PREFIX}},
        )
        for key, mime in sorted(missing.items())
    ]
    notebook.cells.append(cell)
    return notebook


def with_current_prose(
    reference: nbformat.NotebookNode, source: nbformat.NotebookNode, name: str
) -> nbformat.NotebookNode:
    """The source notebook with the reference's injected parameters and code outputs.

    The markdown, the tags and the code are those of ``source`` (``notebooks/<nb>``), so a
    page shows the prose as it is now, not as it was when the reference was stored.
    """
    if code_sources(reference) != code_sources(source):
        raise ReferenceError(
            f"the code of notebooks/{name}.ipynb differs from its reference; "
            f"refresh it with: make refresh-refs NB={name}"
        )
    merged = copy.deepcopy(source)
    executed = [
        cell
        for cell in reference.cells
        if cell.cell_type == "code" and INJECTED_TAG not in cell.metadata.get("tags", [])
    ]
    cells = []
    for cell in merged.cells:
        cells.append(cell)
        if cell.cell_type == "code":
            ran = executed.pop(0)
            cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
            if "parameters" in cell.metadata.get("tags", []):
                cells += [c for c in reference.cells if INJECTED_TAG in c.metadata.get("tags", [])]
    merged.cells = cells
    merged.metadata = reference.metadata
    return merged


def run_record(name: str, notebook: nbformat.NotebookNode, profile: str) -> dict[str, Any]:
    """The ``run.json`` of a run rebuilt from its reference.

    A reference keeps no start time, wall time, device, versions or inputs hash.
    """
    return {
        "notebook": name,
        "profile": profile,
        "tag": profile,
        "parameters": injected_parameters(notebook),
        "overrides": {},
        "device": None,
        "status": "succeeded",
        "started": None,
        "wall_seconds": None,
        "versions": {},
        "inputs_hash": None,
        "from_reference": True,
    }


def paper_of(name: str) -> str:
    """The paper key of a notebook name: ``du2019-figure1`` -> ``du2019``."""
    return name.split("-", 1)[0]


def write_run(
    reference: Path, results: Path, profile: str = "smoke", source: Path | None = None
) -> Path:
    """Write ``results/<profile>/<nb>/`` from one reference notebook; return that directory.

    With ``source`` (the notebook in ``notebooks/``), its prose replaces the reference's
    (:func:`with_current_prose`).
    """
    name = reference.stem
    notebook = nbformat.read(reference, as_version=4)
    if source is not None:
        notebook = with_current_prose(notebook, nbformat.read(source, as_version=4), name)
    table = claims_table(notebook)
    if table is None:
        raise ReferenceError(f"{reference} shows no claims table")
    directory = results / profile / name
    directory.mkdir(parents=True, exist_ok=True)
    nbformat.write(with_glue_placeholders(notebook), directory / f"{name}.ipynb")
    claims = claims_from_table(table, paper_of(name))
    (directory / "claims.json").write_text(json.dumps(claims, indent=2) + "\n")
    record = run_record(name, notebook, profile)
    (directory / "run.json").write_text(json.dumps(record, indent=2) + "\n")
    return directory


def results_from_references(
    references: Path,
    names: Sequence[str],
    results: Path,
    profile: str = "smoke",
    sources: Path | None = None,
) -> dict[str, Path]:
    """Lay out the references of ``names`` as a results tree under ``results``.

    With ``sources`` (``notebooks/``), each page gets the current prose of its notebook
    there. Returns notebook name -> run directory. A name without a reference is refused.
    """
    missing = [name for name in names if not (references / f"{name}.ipynb").is_file()]
    if missing:
        raise ReferenceError(
            f"no reference for {', '.join(missing)} in {references}; "
            f"create it with: make refresh-refs NB={missing[0]}"
        )
    return {
        name: write_run(
            references / f"{name}.ipynb",
            results,
            profile,
            sources / f"{name}.ipynb" if sources is not None else None,
        )
        for name in names
    }


def build_reference_book(build: Path, profile: str = "smoke") -> Path:
    """Build the book of ``book/`` from the references and the notebooks' current prose.

    The results tree goes to ``<build>/results``, the staged sources to
    ``<build>/book-src`` and the site to ``<build>/html``; returns its index.html.
    """
    from twolayer.companion.book import build_html, stage, toc_notebooks
    from twolayer.companion.paths import notebooks_dir, repo_root

    book = repo_root() / "book"
    results = build / "results"
    if results.exists():
        shutil.rmtree(results)
    names = toc_notebooks(book / "_toc.yml")
    results_from_references(references_dir(), names, results, profile, notebooks_dir())
    return build_html(stage(book, results, build, profile), build)
