"""Build the HTML book from notebooks the runner has already executed.

Usage::

    python -m twolayer.companion.book [--profile default]

``book/`` is copied to ``_build/book-src/`` together with the executed notebooks of
``results/<profile>/``, a generated scorecard of their claims and the timing table of the
re-running page; Sphinx, configured by jupyter-book, renders that copy into
``_build/html/``, treating every warning as an error. The book never executes a notebook
itself.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from twolayer.companion.claims import (
    CONSISTENCY,
    MARKS,
    REPRODUCTION,
    STATUSES,
    format_measured,
    load_claims,
    summarize,
    summary_line,
)
from twolayer.companion.paper_runs import paper_runs_markdown
from twolayer.companion.paths import PROFILES, repo_root
from twolayer.companion.run import read_record

PAPERS = {
    "du2019": "Du, Zhai, Poczos and Singh (ICLR 2019)",
    "arora2019": "Arora, Du, Hu, Li and Wang (ICML 2019)",
    "bach2022": "Bach and Chizat (ICM 2022)",
    "akiyama2021": "Akiyama and Suzuki (ICML 2021)",
}


class BookError(Exception):
    """The book cannot be built from the results at hand."""


def toc_notebooks(toc: Path) -> list[str]:
    """Names of the notebooks listed in a jb-book ``_toc.yml`` (``notebooks/<name>``)."""

    def files(node: Any) -> Iterable[str]:
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                yield node["file"]
            for value in node.values():
                yield from files(value)
        elif isinstance(node, list):
            for item in node:
                yield from files(item)

    entries = files(yaml.safe_load(toc.read_text()))
    return [entry.removeprefix("notebooks/") for entry in entries if entry.startswith("notebooks/")]


def check_runs(results: Path, profile: str, notebooks: Sequence[str]) -> dict[str, Path]:
    """Find the executed copy of every notebook; refuse failed or missing runs.

    Returns notebook name -> run directory, in the order given.
    """
    profile_dir = results / profile
    for record_path in sorted(profile_dir.glob("*/run.json")):
        directory = record_path.parent
        status = (read_record(directory) or {}).get("status")
        if status != "succeeded":
            raise BookError(
                f"the {profile} run of {directory.name} did not succeed (status: {status}); "
                f"see {directory}. Fix it and run: make run NB={directory.name} PROFILE={profile}"
            )
    found = {}
    for name in notebooks:
        directory = profile_dir / name
        if not (directory / f"{name}.ipynb").is_file() or not (directory / "run.json").is_file():
            raise BookError(
                f"notebooks/{name} has no executed copy for profile {profile} in {directory}. "
                f"Create it with: make run NB={name} PROFILE={profile}"
            )
        found[name] = directory
    return found


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def notebook_title(path: Path) -> str | None:
    """The first level-one heading of a notebook, or None."""
    notebook = json.loads(path.read_text())
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None


def _claim_cell(record: Mapping[str, Any]) -> str:
    text = f"`{record['id']}`: {record['statement']} ({record['source']})"
    if record["outside_assumptions"]:
        text += " *Outside the paper's assumptions:* " + "; ".join(record["outside_assumptions"])
    return text


def _claims_table(records: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = [
        "| status | claim | origin | measured | expected |",
        "| --- | --- | --- | --- | --- |",
    ]
    for record in records:
        status = f"{MARKS[record['status']]} {record['status']}"
        if not record["holds"]:
            status += f" (expected from {record['holds_from']})"
        origin = "the paper" if record["origin"] == "paper" else "this book"
        cells = [
            status,
            _claim_cell(record),
            origin,
            format_measured(record["measured"]),
            record["expected"],
        ]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return lines


def scorecard_markdown(
    profile: str,
    claims: Mapping[str, list[dict[str, Any]]],
    titles: Mapping[str, str] | None = None,
) -> str:
    """The scorecard page: a summary table, then one section per notebook grouped by paper.

    ``claims`` maps notebook name -> its claim records, in book order; ``titles`` maps
    notebook name -> the title shown for it (the name itself when missing). Reproductions
    and consistency checks are counted and listed apart.
    """
    titles = titles or {}
    everything = [record for records in claims.values() for record in records]
    held, failed, needs_scale = STATUSES[REPRODUCTION]
    lines = [
        "# Scorecard",
        "",
        f"Every claim checked by the notebooks of this book, as computed by the runs at "
        f"the **{profile}** profile that the book displays. Claims are of two kinds. A "
        "*reproduction* is a result of the paper (or a prediction of this book) tested "
        "sharply enough that a wrong implementation of the set-up fails it; it is "
        "*reproduced* when the computation confirms it, *not reproduced* when it does not "
        "although the run is at or above the scale from which it should hold, and *needs "
        "larger scale* when the run is smaller than that scale. A *consistency check* is a "
        "true statement, often a bound with room to spare, that a correct computation must "
        "satisfy but that cannot tell right from wrong by itself; checks are listed apart "
        "and not counted as reproduced results. Each claim says whether it is the paper's "
        "or this book's own, and where the run lies outside the paper's assumptions. "
        "{doc}`rerunning` explains how to run a larger profile.",
        "",
        f"**All notebooks: {summary_line(summarize(everything))}.**",
        "",
        "| result | reproductions | reproduced | not reproduced | needs larger scale "
        "| consistency checks passed |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for notebook, records in claims.items():
        summary = summarize(records)
        counts, checks = summary.reproductions, summary.checks
        link = f"[{_cell(titles.get(notebook, notebook))}](notebooks/{notebook}.ipynb)"
        cells = [
            link,
            str(sum(counts.values())),
            str(counts[held]),
            str(counts[failed]),
            str(counts[needs_scale]),
            f"{checks[STATUSES[CONSISTENCY][0]]} of {sum(checks.values())}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    by_paper: dict[str, list[str]] = {}
    for notebook, records in claims.items():
        paper = records[0]["paper"] if records else "other"
        by_paper.setdefault(paper, []).append(notebook)
    for paper, notebooks in by_paper.items():
        lines += ["", f"## {PAPERS.get(paper, paper)}"]
        if paper in PAPERS:
            lines += ["", f"Claims from {{cite}}`{paper}`."]
        for notebook in notebooks:
            records = claims[notebook]
            title = titles.get(notebook, notebook)
            lines += ["", f"### [{title}](notebooks/{notebook}.ipynb)", ""]
            if not records:
                lines.append("This notebook recorded no claims.")
                continue
            lines += [f"`{notebook}`: {summary_line(summarize(records))}."]
            for kind, heading in ((REPRODUCTION, "Reproductions"), (CONSISTENCY, "Checks")):
                chosen = [record for record in records if record["kind"] == kind]
                if chosen:
                    lines += ["", f"**{heading}**", "", *_claims_table(chosen)]
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def timings_markdown(timings: Mapping[str, Any] | None) -> str:
    """The table of wall time per notebook and profile, from ``book/timings.json``."""
    if not timings:
        return (
            "No timings have been measured yet. `make timings` runs every notebook at the "
            "smoke and default profiles and records the wall times in `book/timings.json`.\n"
        )
    machine = timings["machine"]
    seconds: Mapping[str, Mapping[str, float]] = timings["seconds"]
    profiles = [p for p in PROFILES if any(p in row for row in seconds.values())]
    gpu = machine.get("gpu") or "no GPU"
    lines = [
        f"Wall time of each run, kernel start included, measured with `make timings` on "
        f"{machine['date']} on a machine with {machine['cpu']} and {gpu}:",
        "",
        "| notebook | " + " | ".join(profiles) + " |",
        "| --- |" + " ---: |" * len(profiles),
    ]
    for notebook, row in seconds.items():
        cells = [_duration(row[p]) if p in row else "" for p in profiles]
        lines.append(f"| {notebook} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def stage(book: Path, results: Path, build: Path, profile: str) -> Path:
    """Assemble the book's sources in ``<build>/book-src`` and return that directory."""
    notebooks = toc_notebooks(book / "_toc.yml")
    runs = check_runs(results, profile, notebooks)
    source = build / "book-src"
    if source.exists():
        shutil.rmtree(source)
    shutil.copytree(
        book, source, ignore=shutil.ignore_patterns("timings.json", "paper_runs.json", "_build")
    )
    (source / "notebooks").mkdir(exist_ok=True)
    claims, titles = {}, {}
    for name, directory in runs.items():
        staged = source / "notebooks" / f"{name}.ipynb"
        shutil.copyfile(directory / f"{name}.ipynb", staged)
        titles[name] = notebook_title(staged) or name
        path = directory / "claims.json"
        claims[name] = load_claims(path) if path.is_file() else []
    (source / "scorecard.md").write_text(scorecard_markdown(profile, claims, titles))
    timings_file = book / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else None
    (source / "_timings.md").write_text(timings_markdown(timings))
    paper_file = book / "paper_runs.json"
    paper = json.loads(paper_file.read_text()) if paper_file.is_file() else None
    (source / "_paper_runs.md").write_text(paper_runs_markdown(paper))
    return source


def build_html(source: Path, build: Path) -> Path:
    """Render the staged sources into ``<build>/html`` (warnings are errors); return index.html.

    ``jupyter-book config sphinx`` turns ``_config.yml`` and ``_toc.yml`` into a Sphinx
    ``conf.py`` next to the sources, and Sphinx builds from it. Calling Sphinx directly
    (rather than ``jupyter-book build``, which always adds a ``_build`` level of its own)
    puts the HTML where the README says it is.
    """
    bin_dir = Path(sys.executable).parent
    configure = [str(bin_dir / "jupyter-book"), "config", "sphinx", str(source)]
    if subprocess.run(configure, check=False, stdout=subprocess.DEVNULL).returncode != 0:
        raise BookError("jupyter-book could not turn book/_config.yml into a Sphinx configuration")
    html = build / "html"
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "--builder",
        "html",
        "--doctree-dir",
        str(build / "doctrees"),
        "--fresh-env",
        "--write-all",
        "--fail-on-warning",
        "--nitpicky",
        "--keep-going",
        "--quiet",
        str(source),
        str(html),
    ]
    if subprocess.run(command, check=False).returncode != 0:
        raise BookError("Sphinx reported errors or warnings (see above)")
    return html / "index.html"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m twolayer.companion.book``; returns the exit status."""
    root = repo_root()
    parser = argparse.ArgumentParser(
        prog="python -m twolayer.companion.book", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        default="default",
        help="which executed notebooks to show (default: %(default)s)",
    )
    parser.add_argument("--book", type=Path, default=root / "book", help="book sources")
    parser.add_argument("--results", type=Path, default=root / "results", help="results root")
    parser.add_argument("--build", type=Path, default=root / "_build", help="build directory")
    args = parser.parse_args(argv)
    try:
        source = stage(args.book, args.results, args.build, args.profile)
        index = build_html(source, args.build)
    except BookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"book [{args.profile}]: {index.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
