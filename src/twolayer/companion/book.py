"""Build the HTML book from notebooks the runner has already executed.

Usage::

    python -m twolayer.companion.book [--profile default] [--student]

``book/`` is copied to ``_build/book-src/`` together with the executed notebooks of
``results/<profile>/`` (each with a copy of its source, without outputs, to download, and
a note under every figure saying how its run was made), a generated scorecard of every
result of ``book/results.yml``, the timing table of the re-running page and the exercise
table of the teaching page; Sphinx, configured by jupyter-book, renders that copy into
``_build/html/``, treating every warning as an error. ``--student`` builds the same book
without the exercises' solutions into ``_build/student/html/``. The built pages must not need
anything from the network: a page that loads a script, stylesheet, font or image from
another site stops the build. The book never executes a notebook itself.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import yaml

from twolayer.companion.claims import load_claims
from twolayer.companion.exercises import (
    Exercise,
    notebook_exercises,
    strip_solutions,
    without_solutions,
)
from twolayer.companion.figure_provenance import with_figure_provenance
from twolayer.companion.install_cell import after_title
from twolayer.companion.paper_runs import paper_runs_markdown
from twolayer.companion.paths import PROFILES, notebooks_dir, repo_root, run_tag
from twolayer.companion.references import INJECTED_TAG, VOLATILE_CELL_METADATA
from twolayer.companion.run import read_record
from twolayer.companion.scorecard import load_results, scorecard_markdown
from twolayer.companion.sweep import find_sweep


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


def toc_parts(toc: Path) -> list[tuple[str, list[str]]]:
    """The parts of a jb-book ``_toc.yml``: caption and the names of its notebooks."""
    parts = yaml.safe_load(toc.read_text()).get("parts", [])
    return [
        (
            part.get("caption", ""),
            [
                chapter["file"].removeprefix("notebooks/")
                for chapter in part.get("chapters", [])
                if chapter.get("file", "").startswith("notebooks/")
            ],
        )
        for part in parts
    ]


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


def notebook_title(path: Path) -> str | None:
    """The first level-one heading of a notebook, or None."""
    notebook = json.loads(path.read_text())
    for cell in notebook.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", "")).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return None


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


SESSION_SECONDS = 300
"""An exercise fits a 50-minute class when its runs take at most this long together."""


def exercise_seconds(exercise: Exercise, timings: Mapping[str, Any]) -> tuple[float | None, bool]:
    """How long an exercise's runs take, and whether every one of them was measured.

    A run measured by ``make timings-exercises`` (``timings["exercises"]``, by run tag)
    counts with its own time. A run without overrides, and an exercise that names no run
    (it asks for a change of code), is estimated by the notebook's time at that profile
    with its own values. None when a run with overrides was not measured (its time can be
    far from the notebook's) or there is nothing to estimate from.
    """
    measured = timings.get("exercises", {}).get(exercise.notebook, {})
    own = timings.get("seconds", {}).get(exercise.notebook, {})
    total, exact = 0.0, True
    for run in exercise.runs or [None]:
        profile = run.profile if run else "default"
        tag = run_tag(profile, run.overrides) if run else None
        if tag in measured:
            total += measured[tag]
        elif profile in own and not (run and run.overrides):
            total, exact = total + own[profile], False
        else:
            return None, False
    return total, exact


def _exercise_row(exercise: Exercise, timings: Mapping[str, Any], chapter: str) -> str:
    """One table row: chapter (on its first exercise only), exercise, runs, time, fit."""
    seconds, exact = exercise_seconds(exercise, timings)
    title = exercise.title.replace("$", "").replace("|", "/") or exercise.label
    link = f"{{ref}}`{title} <{exercise.label}>`" if exercise.label else title
    if seconds is None:
        time, fits = "not measured", ""
    else:
        time = _duration(seconds) if exact else f"about {_duration(seconds)}"
        fits = "yes" if seconds <= SESSION_SECONDS else "as homework"
    runs = len(exercise.runs) or "a code change"
    return f"| {chapter} | {link} | {runs} | {time} | {fits} |"


def exercises_markdown(
    parts: Sequence[tuple[str, Sequence[str]]],
    exercises: Mapping[str, Sequence[Exercise]],
    timings: Mapping[str, Any] | None,
) -> str:
    """Per part of the book, each notebook's exercises with the time their runs take.

    An exercise whose runs take at most five minutes together fits a 50-minute class.
    """
    timings = timings or {}
    lines = []
    for caption, names in parts:
        rows = [
            _exercise_row(
                exercise, timings, f"{{doc}}`{name} <notebooks/{name}>`" if i == 0 else ""
            )
            for name in names
            for i, exercise in enumerate(exercises.get(name, []))
        ]
        if rows:
            lines += [
                f"**{caption}**",
                "",
                "| chapter | exercise | runs | time | in a 50-minute class |",
                "| --- | --- | ---: | ---: | --- |",
                *rows,
                "",
            ]
    if not lines:
        return "No notebook of this book has exercises yet.\n"
    return "\n".join(lines)


LAUNCH_SERVICES = ("binderhub_url", "colab_url", "jupyterhub_url", "deepnote_url")
"""The launch buttons of ``book/_config.yml``, each a service's URL (empty: no button)."""
_HOSTS = ("https://github.com/", "https://gitlab.com/")
_GITHUB_ONLY = ("colab_url", "deepnote_url")


def launch_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The book's configuration with launch buttons only where they can work.

    ``repository.url`` of ``book/_config.yml`` is the one setting. Empty, every launch
    service is turned off. Set to a GitHub or GitLab repository, each notebook page gets a
    button for every service named under ``launch_buttons`` (Colab and Deepnote open GitHub
    repositories only) that opens ``notebooks/<name>.ipynb`` from that repository, and the
    page header links to the repository.
    """
    config = copy.deepcopy(dict(config))
    repository = config.setdefault("repository", {})
    launch = config.setdefault("launch_buttons", {})
    url = (repository.get("url") or "").strip().rstrip("/")
    if url and not (url.startswith(_HOSTS) and url.count("/") == 4):
        raise BookError(
            f"repository.url {url!r} in book/_config.yml is not a GitHub or GitLab "
            "repository (https://github.com/<owner>/<name>)"
        )
    repository["url"] = url
    repository["path_to_book"] = ""  # pages sit at the notebooks' own paths
    for service in LAUNCH_SERVICES:
        off = not url or (service in _GITHUB_ONLY and not url.startswith(_HOSTS[0]))
        launch[service] = "" if off else (launch.get(service) or "")
    config.setdefault("html", {})["use_repository_button"] = bool(url)
    return config


def source_notebook(executed: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of an executed notebook as its source: no outputs, no injected parameters."""
    notebook = copy.deepcopy(executed)
    notebook.metadata.pop("papermill", None)
    notebook.cells = [
        cell for cell in notebook.cells if INJECTED_TAG not in cell.metadata.get("tags", [])
    ]
    for cell in notebook.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return notebook


def download_note(name: str, profile: str) -> str:
    """The line under a notebook page's title offering the notebook for download."""
    return (
        f"This page is the notebook `notebooks/{name}.ipynb`, run at the {profile} profile. "
        f"Download it [as run here](path:{name}.ipynb) or "
        f"[as a source, without outputs](path:source/{name}.ipynb)."
    )


def with_download_note(
    notebook: nbformat.NotebookNode, name: str, profile: str
) -> nbformat.NotebookNode:
    """A copy of ``notebook`` with :func:`download_note` as a cell after its title cell."""
    notebook = copy.deepcopy(notebook)
    notebook.cells.insert(
        after_title(notebook.cells), nbformat.v4.new_markdown_cell(download_note(name, profile))
    )
    return notebook


def _stage_notebook(
    executed: Path, staged: Path, profile: str, *, student: bool = False
) -> nbformat.NotebookNode:
    """Stage an executed notebook and its source (under ``source/``); return the notebook.

    The staged page gets the download note under its title and a provenance note under
    every figure; with ``student``, both copies lose the exercises' solutions.
    """
    name = staged.stem
    notebook = nbformat.read(executed, as_version=4)
    if student:
        notebook = without_solutions(notebook)
    source = staged.parent / "source" / f"{name}.ipynb"
    source.parent.mkdir(exist_ok=True)
    nbformat.write(source_notebook(notebook), source)
    page = with_download_note(notebook, name, profile)
    record = {"notebook": name, "profile": profile, **(read_record(executed.parent) or {})}
    nbformat.write(with_figure_provenance(page, record), staged)
    return notebook


def stage(
    book: Path,
    results: Path,
    build: Path,
    profile: str,
    notebooks: Path | None = None,
    *,
    student: bool = False,
) -> Path:
    """Assemble the book's sources in ``<build>/book-src`` and return that directory.

    ``notebooks`` is where the source notebooks live (``notebooks/`` of the repository by
    default): a result of ``book/results.yml`` whose notebook exists there but is not in
    the book shows as not run, one whose notebook does not exist as having none yet.
    ``student`` removes every ``solution`` directive from the notebooks and the pages.
    """
    runs = check_runs(results, profile, toc_notebooks(book / "_toc.yml"))
    source = build / "book-src"
    if source.exists():
        shutil.rmtree(source)
    shutil.copytree(
        book,
        source,
        ignore=shutil.ignore_patterns(
            "timings.json", "paper_runs.json", "results.yml", "sweeps.json", "_build"
        ),
    )
    config = yaml.safe_load((book / "_config.yml").read_text())
    (source / "_config.yml").write_text(yaml.safe_dump(launch_config(config), sort_keys=False))
    if student:
        for page in source.rglob("*.md"):
            page.write_text(strip_solutions(page.read_text()))
    (source / "notebooks").mkdir(exist_ok=True)
    claims, titles, exercises = {}, {}, {}
    for name, directory in runs.items():
        staged = source / "notebooks" / f"{name}.ipynb"
        executed = _stage_notebook(directory / f"{name}.ipynb", staged, profile, student=student)
        exercises[name] = notebook_exercises(name, executed)
        titles[name] = notebook_title(staged) or name
        path = directory / "claims.json"
        claims[name] = load_claims(path) if path.is_file() else []
    results_file = book / "results.yml"
    listed = load_results(results_file) if results_file.is_file() else []
    existing = {path.stem for path in (notebooks or notebooks_dir()).glob("*.ipynb")}
    sweeps = {name: find_sweep(name, profile, results, book) for name in runs}
    shown = {name: sweep for name, sweep in sweeps.items() if sweep is not None}
    (source / "scorecard.md").write_text(
        scorecard_markdown(profile, listed, claims, titles, existing, shown)
    )
    timings_file = book / "timings.json"
    timings = json.loads(timings_file.read_text()) if timings_file.is_file() else None
    (source / "_timings.md").write_text(timings_markdown(timings))
    parts = toc_parts(book / "_toc.yml")
    (source / "_exercises.md").write_text(exercises_markdown(parts, exercises, timings))
    paper_file = book / "paper_runs.json"
    paper = json.loads(paper_file.read_text()) if paper_file.is_file() else None
    (source / "_paper_runs.md").write_text(paper_runs_markdown(paper, list(runs)))
    return source


_LOADING_ATTRIBUTES = {
    "script": "src",
    "link": "href",
    "img": "src",
    "iframe": "src",
    "source": "src",
    "video": "src",
    "audio": "src",
    "embed": "src",
}
"""The attribute by which each HTML element loads a resource."""
_NOT_LOADED = {"alternate", "author", "canonical", "help", "license", "next", "prev", "search"}
"""``<link rel=...>`` values that only name another page and load nothing."""
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""")


def _is_external(url: str) -> bool:
    return url.strip().lower().startswith(("http://", "https://", "//"))


def css_external_urls(css: str) -> list[str]:
    """The network addresses a stylesheet loads (``url(...)`` and ``@import``)."""
    return [
        url
        for match in _CSS_URL.finditer(css)
        for url in match.groups()
        if url and _is_external(url)
    ]


class _PageResources(HTMLParser):
    """Collects the network addresses an HTML page loads: elements, inline and style CSS."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        self._in_style = tag == "style"
        self.urls += css_external_urls(values.get("style", ""))
        rels = set(values.get("rel", "").lower().split())
        if tag == "link" and rels and rels <= _NOT_LOADED:
            return
        url = values.get(_LOADING_ATTRIBUTES.get(tag, ""), "")
        if url and _is_external(url):
            self.urls.append(url)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls += css_external_urls(data)


def external_resources(html_dir: Path) -> list[str]:
    """Everything a built site would fetch from the network, as ``'<file>: <url>'``.

    Scans every HTML page for scripts, stylesheets, images and frames with an absolute
    address, and every stylesheet (files, ``<style>`` blocks and ``style`` attributes) for
    ``url(...)`` and ``@import`` of one. Links that a reader follows (``<a href>``) are
    not resources and are not listed.
    """
    found = []
    for path in sorted(html_dir.rglob("*")):
        if path.suffix == ".html":
            parser = _PageResources()
            parser.feed(path.read_text(errors="replace"))
            urls = parser.urls
        elif path.suffix == ".css":
            urls = css_external_urls(path.read_text(errors="replace"))
        else:
            continue
        found += [f"{path.relative_to(html_dir)}: {url}" for url in urls]
    return found


def build_html(source: Path, build: Path) -> Path:
    """Render the staged sources into ``<build>/html`` (warnings are errors); return index.html.

    The build fails when a page would need a resource from the network
    (:func:`external_resources`).

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
    external = external_resources(html)
    if external:
        raise BookError(
            f"{len(external)} resources of the built book would come from the network, "
            "so it would not read offline: " + "; ".join(external[:5])
        )
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
    parser.add_argument(
        "--student",
        action="store_true",
        help="leave out the exercises' solutions; build into <build>/student/html",
    )
    args = parser.parse_args(argv)
    build = args.build / "student" if args.student else args.build
    try:
        source = stage(args.book, args.results, build, args.profile, student=args.student)
        index = build_html(source, build)
    except BookError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    kind = "student book, without solutions" if args.student else "book"
    print(f"{kind} [{args.profile}]: {index.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
