"""The book builder: staging checks, the generated pages, and one real build."""

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from twolayer.companion.book import (
    BookError,
    build_html,
    check_runs,
    exercise_seconds,
    exercises_markdown,
    stage,
    timings_markdown,
    toc_notebooks,
    toc_parts,
)
from twolayer.companion.exercises import Exercise, Run
from twolayer.companion.paths import repo_root
from twolayer.companion.run import run
from twolayer.companion.timings import measure

FIXTURE = Path(__file__).parent / "fixtures" / "fixture-gd.ipynb"
TOC = """\
format: jb-book
root: intro
parts:
  - caption: Fixture
    chapters:
      - file: notebooks/fixture-gd
  - caption: About the results
    chapters:
      - file: rerunning
      - file: scorecard
      - file: bibliography
"""


def fake_run(results: Path, profile: str, name: str, status: str = "succeeded") -> Path:
    directory = results / profile / name
    directory.mkdir(parents=True)
    (directory / f"{name}.ipynb").write_text("{}")
    (directory / "run.json").write_text(json.dumps({"status": status}))
    return directory


def test_toc_lists_the_book_notebooks_in_order():
    assert toc_notebooks(repo_root() / "book" / "_toc.yml") == [
        "du2019-theorem3-1",
        "du2019-figure1",
        "du2019-theorem4-1",
        "arora2019-figure1",
        "arora2019-theorem4-1",
        "arora2019-figure2",
        "arora2019-theorem6-1",
        "akiyama2021-figure1",
        "akiyama2021-figure2",
        "akiyama2021-figure3",
        "akiyama2021-theorem3-5",
        "bach2022-figure2",
        "bach2022-figure3",
        "bach2022-figure5",
        "bach2022-figure6",
        "bridge-lazy-to-mean-field",
    ]


def test_missing_executed_notebook_names_the_command(tmp_path):
    fake_run(tmp_path, "smoke", "a")
    with pytest.raises(BookError, match="make run NB=b PROFILE=smoke"):
        check_runs(tmp_path, "smoke", ["a", "b"])
    assert check_runs(tmp_path, "smoke", ["a"]) == {"a": tmp_path / "smoke" / "a"}


def test_failed_run_stops_the_book(tmp_path):
    fake_run(tmp_path, "default", "a")
    fake_run(tmp_path, "default", "unlisted", status="failed")
    with pytest.raises(BookError, match="unlisted did not succeed"):
        check_runs(tmp_path, "default", ["a"])


def test_timings_table():
    assert "No timings have been measured yet" in timings_markdown(None)
    page = timings_markdown(
        {
            "machine": {
                "cpu": "CPU Example, 2 torch threads of 2 cores",
                "gpu": None,
                "date": "2026-01-02",
            },
            "seconds": {"nb-a": {"smoke": 4.2, "default": 185.0}, "nb-b": {"smoke": 12.0}},
        }
    )
    assert "2026-01-02" in page and "CPU Example" in page and "no GPU" in page
    assert "| notebook | smoke | default |" in page
    assert "| nb-a | 4 s | 3.1 min |" in page
    assert "| nb-b | 12 s |  |" in page


def test_toc_parts_group_the_notebooks_by_part():
    parts = toc_parts(repo_root() / "book" / "_toc.yml")
    assert parts[0] == ("Du et al. (ICLR 2019)", toc_notebooks_of("du2019"))
    assert parts[-1] == ("About the results", [])
    assert [name for _, names in parts for name in names] == toc_notebooks(
        repo_root() / "book" / "_toc.yml"
    )


def toc_notebooks_of(paper: str) -> list[str]:
    names = toc_notebooks(repo_root() / "book" / "_toc.yml")
    return [name for name in names if name.startswith(f"{paper}-")]


def exercise(notebook: str, label: str, *runs: Run) -> Exercise:
    return Exercise(notebook, label, f"Title of {label}", list(runs), ("dropdown",))


TIMINGS = {
    "machine": {"cpu": "CPU Example", "gpu": None, "date": "2026-01-02"},
    "seconds": {"nb-a": {"smoke": 5.0, "default": 100.0}},
    "exercises": {"nb-a": {"default+lr=1.7": 400.0, "smoke+n=3": 7.0}},
}


def test_exercise_time_is_measured_or_estimated_from_the_notebook():
    measured = exercise("nb-a", "a-lr", Run("default", {"lr": 1.7}))
    assert exercise_seconds(measured, TIMINGS) == (400.0, True)
    both = exercise("nb-a", "a-two", Run("smoke", {"n": 3}), Run("default", {}))
    assert exercise_seconds(both, TIMINGS) == (107.0, False)
    unmeasured = exercise("nb-a", "a-big", Run("default", {"n": 1000}))
    assert exercise_seconds(unmeasured, TIMINGS) == (None, False)
    assert exercise_seconds(exercise("nb-a", "a-code"), TIMINGS) == (100.0, False)
    assert exercise_seconds(exercise("nb-b", "b-code"), TIMINGS) == (None, False)


def test_exercises_table_names_what_fits_a_class():
    page = exercises_markdown(
        [("Part A", ["nb-a", "nb-b"]), ("Part C", ["nb-c"])],
        {
            "nb-a": [
                exercise("nb-a", "a-lr", Run("default", {"lr": 1.7})),
                exercise("nb-a", "a-code"),
            ],
            "nb-b": [exercise("nb-b", "b-code")],
            "nb-c": [],
        },
        TIMINGS,
    )
    lines = page.splitlines()
    assert lines[0] == "**Part A**" and "Part C" not in page
    assert (
        "| {doc}`nb-a <notebooks/nb-a>` | {ref}`Title of a-lr <a-lr>` | 1 | 6.7 min | as homework |"
        in lines
    )
    assert "|  | {ref}`Title of a-code <a-code>` | a code change | about 1.7 min | yes |" in lines
    no_time = "| a code change | not measured |  |"
    assert (
        f"| {{doc}}`nb-b <notebooks/nb-b>` | {{ref}}`Title of b-code <b-code>` {no_time}" in lines
    )
    assert "No notebook" in exercises_markdown([("Part", ["nb-a"])], {}, None)


@pytest.fixture(scope="module")
def fixture_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture notebook run once at the smoke profile, with an exercise added."""
    results = tmp_path_factory.mktemp("results")
    [outcome] = run([FIXTURE], "smoke", {}, out_root=results)
    assert outcome.status == "succeeded"
    executed = outcome.directory / "fixture-gd.ipynb"
    notebook = nbformat.read(executed, as_version=4)
    notebook.cells[-1].source += (
        "\n\n```{exercise} Larger steps\n:label: fixture-ex-lr\n\nRun with `-p lr 1.9`.\n```\n"
        "\n```{solution} fixture-ex-lr\n:class: dropdown\n\nIt slows down.\n```\n"
    )
    nbformat.write(notebook, executed)
    return results


def book_copy(tmp_path: Path) -> Path:
    book = tmp_path / "book"
    shutil.copytree(repo_root() / "book", book, ignore=shutil.ignore_patterns("timings.json"))
    (book / "_toc.yml").write_text(TOC)
    # The real first page links to chapters that this one-chapter book does not have.
    (book / "intro.md").write_text("# Fixture book\n\nOne chapter {cite}`du2019`.\n")
    return book


def test_the_student_book_has_no_solutions(tmp_path, fixture_results):
    book = book_copy(tmp_path)
    (book / "rerunning.md").write_text(
        "# Page\n\n```{solution} x\n:class: dropdown\n\nHidden.\n```\n\nKept.\n"
    )
    full = stage(book, fixture_results, tmp_path / "full", "smoke")
    student = stage(book, fixture_results, tmp_path / "student", "smoke", student=True)
    for source in (full, student):
        for page in ("fixture-gd.ipynb", "source/fixture-gd.ipynb"):
            text = (source / "notebooks" / page).read_text()
            assert ("It slows down." in text) == (source == full)
            assert "Larger steps" in text
    assert "Hidden." in (full / "rerunning.md").read_text()
    assert (student / "rerunning.md").read_text() == "# Page\n\nKept.\n"
    assert "fixture-ex-lr" in (student / "_exercises.md").read_text()


def test_the_book_builds_from_an_executed_notebook(tmp_path, fixture_results):
    """Stage the real book configuration with the fixture as its only chapter, and build."""
    book = book_copy(tmp_path)
    results = fixture_results
    # a sweep published with the book: its counts appear beside the claims
    sweep = {
        "notebook": "fixture-gd",
        "profile": "smoke",
        "overrides": {},
        "seeds": [1000, 2000, 3000],
        "complete": True,
        "succeeded": 3,
        "failed_runs": [],
        "claims": [
            {"id": "tiny-final-loss", "kind": "reproduction", "held": 2, "runs": 3},
            {"id": "rate-below-bound", "kind": "consistency", "held": 3, "runs": 3},
        ],
    }
    (book / "sweeps.json").write_text(json.dumps({"fixture-gd": {"smoke": sweep}}))

    source = stage(book, results, tmp_path / "_build", "smoke")
    assert (source / "notebooks" / "fixture-gd.ipynb").is_file()
    assert (
        "0 of 1 reproduced, 1 needs larger scale; 1 of 1 check passed"
        in (source / "scorecard.md").read_text()
    )
    assert "No timings" in (source / "_timings.md").read_text()

    index = build_html(source, tmp_path / "_build")
    assert index == tmp_path / "_build" / "html" / "index.html"
    html = index.parent
    assert (html / "notebooks" / "fixture-gd.html").is_file()
    scorecard = (html / "scorecard.html").read_text()
    assert "tiny-final-loss" in scorecard and "needs larger scale" in scorecard
    assert "Over 3 fresh seeds" in scorecard and "2 of 3 (smoke)" in scorecard
    assert "sweeps.json" not in {path.name for path in source.iterdir()}
    page = (html / "notebooks" / "fixture-gd.html").read_text()
    # The claims table of the notebook is rendered as a table, not as text.
    assert "<table" in page
    # The one figure has its provenance note, with the command that reproduces it.
    assert page.count('class="figure-provenance') == 1
    command = '<span class="pre">NB=fixture-gd</span> <span class="pre">PROFILE=smoke</span></code>'
    assert command in page


def test_timings_are_measured_per_profile(tmp_path):
    output = tmp_path / "timings.json"
    assert measure(output, [FIXTURE]) == 0
    timings = json.loads(output.read_text())
    assert set(timings["machine"]) == {"cpu", "gpu", "date"}
    assert set(timings["seconds"]["fixture-gd"]) == {"smoke", "default"}
    assert all(seconds > 0 for seconds in timings["seconds"]["fixture-gd"].values())
    assert "| fixture-gd |" in timings_markdown(timings)


def test_timings_of_named_notebooks_keep_the_others(tmp_path, monkeypatch):
    import twolayer.companion.run as runner

    output = tmp_path / "timings.json"
    kept = {"other-notebook": {"smoke": 1.5, "default": 9.0}}
    output.write_text(json.dumps({"machine": {}, "seconds": kept}))
    monkeypatch.setattr(runner, "requested_notebooks", lambda names, run_all: [FIXTURE])
    assert measure(output, names=["fixture-gd"]) == 0
    seconds = json.loads(output.read_text())["seconds"]
    assert seconds["other-notebook"] == kept["other-notebook"]
    assert set(seconds["fixture-gd"]) == {"smoke", "default"}


def test_the_real_book_builds_at_the_smoke_profile(smoke_book):
    """Every chapter of book/_toc.yml, executed at the smoke profile, builds without warnings."""
    names = toc_notebooks(repo_root() / "book" / "_toc.yml")
    html = smoke_book
    for name in names:
        page = (html / "notebooks" / f"{name}.html").read_text()
        assert "<table" in page  # the claims table is rendered
        assert "{glue" not in page  # every glued value was resolved
    scorecard = (html / "scorecard.html").read_text()
    assert all(name in scorecard for name in names)
    teaching = (html / "teaching.html").read_text()
    assert "in a 50-minute class" in teaching and "{ref}" not in teaching


def test_exercise_runs_are_timed_and_the_other_entries_kept(tmp_path, monkeypatch):
    import twolayer.companion.run as runner
    from twolayer.companion.timings import measure_exercises

    notebook = nbformat.read(FIXTURE, as_version=4)
    notebook.cells.append(
        nbformat.v4.new_markdown_cell(
            "## Try it\n\n```{exercise} Fewer steps\n:label: fixture-ex-steps\n\n"
            "Run `-p steps 5 PROFILE=smoke`.\n```\n"
        )
    )
    copy = tmp_path / "fixture-gd.ipynb"
    nbformat.write(notebook, copy)
    shutil.copy(FIXTURE.parent / "profiles.yml", tmp_path / "profiles.yml")
    monkeypatch.setattr(runner, "requested_notebooks", lambda names, run_all: [copy])
    output = tmp_path / "timings.json"
    output.write_text(json.dumps({"machine": {}, "seconds": {"other": {"smoke": 1.0}}}))
    assert measure_exercises(output) == 0
    timings = json.loads(output.read_text())
    assert timings["seconds"] == {"other": {"smoke": 1.0}}
    assert list(timings["exercises"]) == ["fixture-gd"]
    assert list(timings["exercises"]["fixture-gd"]) == ["smoke+steps=5"]
    assert timings["exercises"]["fixture-gd"]["smoke+steps=5"] > 0
