"""The book builder: staging checks, the generated pages, and one real build."""

import json
import shutil
from pathlib import Path

import pytest

from twolayer.companion.book import (
    BookError,
    build_html,
    check_runs,
    stage,
    timings_markdown,
    toc_notebooks,
)
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


def test_the_book_builds_from_an_executed_notebook(tmp_path):
    """Stage the real book configuration with the fixture as its only chapter, and build."""
    book = tmp_path / "book"
    shutil.copytree(repo_root() / "book", book, ignore=shutil.ignore_patterns("timings.json"))
    (book / "_toc.yml").write_text(TOC)
    results = tmp_path / "results"
    [outcome] = run([FIXTURE], "smoke", {}, out_root=results)
    assert outcome.status == "succeeded"

    source = stage(book, results, tmp_path / "_build", "smoke")
    assert (source / "notebooks" / "fixture-gd.ipynb").is_file()
    assert "0 of 1 reproduced, 1 needs larger scale; 1 of 1 check passed" in (
        source / "scorecard.md"
    ).read_text()
    assert "No timings" in (source / "_timings.md").read_text()

    index = build_html(source, tmp_path / "_build")
    assert index == tmp_path / "_build" / "html" / "index.html"
    html = index.parent
    assert (html / "notebooks" / "fixture-gd.html").is_file()
    scorecard = (html / "scorecard.html").read_text()
    assert "tiny-final-loss" in scorecard and "needs larger scale" in scorecard
    # The claims table of the notebook is rendered as a table, not as text.
    assert "<table" in (html / "notebooks" / "fixture-gd.html").read_text()


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


def test_the_real_book_builds_at_the_smoke_profile(tmp_path, smoke_runs):
    """Every chapter of book/_toc.yml, executed at the smoke profile, builds without warnings."""
    root = repo_root()
    names = toc_notebooks(root / "book" / "_toc.yml")
    for name in names:
        smoke_runs.directory(name)  # executed once per session, shared with the power tests

    source = stage(root / "book", smoke_runs.root, tmp_path / "_build", "smoke")
    html = build_html(source, tmp_path / "_build").parent
    for name in names:
        page = (html / "notebooks" / f"{name}.html").read_text()
        assert "<table" in page  # the claims table is rendered
        assert "{glue" not in page  # every glued value was resolved
    scorecard = (html / "scorecard.html").read_text()
    assert all(name in scorecard for name in names)
