"""The scorecard: the list of the papers' results, each result's status, the page."""

import pytest

from twolayer.companion.paths import repo_root
from twolayer.companion.scorecard import (
    CHECKS_ONLY,
    NEEDS_SCALE,
    NO_NOTEBOOK,
    NOT_REPRODUCED,
    NOT_RUN,
    PARTLY,
    REPRODUCED,
    Result,
    load_results,
    result_status,
    scorecard_markdown,
)

ROOT = repo_root()


def claim(id: str, status: str, paper: str = "du2019", **changes) -> dict:
    record = {
        "id": id,
        "statement": "A statement.",
        "source": "du2019, Theorem 3.1",
        "origin": "paper",
        "kind": "consistency" if status.startswith("check") else "reproduction",
        "assumptions": "",
        "outside_assumptions": [],
        "measured": 0.5,
        "expected": "< 1",
        "holds": status in ("reproduced", "check passed"),
        "profile": "smoke",
        "holds_from": "default",
        "status": status,
        "notebook": "nb",
        "paper": paper,
    }
    record.update(changes)
    return record


HELD = claim("a", "reproduced")
FAILED = claim("b", "not reproduced")
SCALE = claim("c", "needs larger scale")
CHECK = claim("d", "check passed")
BROKEN_CHECK = claim("e", "check failed")


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([HELD, HELD, CHECK], REPRODUCED),
        ([HELD, BROKEN_CHECK], PARTLY),
        ([HELD, FAILED], PARTLY),
        ([HELD, SCALE], PARTLY),
        ([FAILED, SCALE], NOT_REPRODUCED),
        ([FAILED], NOT_REPRODUCED),
        ([SCALE, SCALE, CHECK], NEEDS_SCALE),
        ([CHECK], CHECKS_ONLY),
        ([], CHECKS_ONLY),
    ],
)
def test_status_of_a_result_from_its_claims(records, expected):
    assert result_status(records) == expected


def test_status_of_a_result_without_a_run():
    assert result_status(None, notebook_exists=True) == NOT_RUN
    assert result_status(None, notebook_exists=False) == NO_NOTEBOOK


def test_the_results_list_covers_every_paper_result_and_every_notebook():
    results = load_results(ROOT / "book" / "results.yml")
    labels = {(r.group, r.label) for r in results}
    expected = {
        ("du2019", "Theorem 3.1"),
        ("du2019", "Figure 1"),
        ("du2019", "Theorem 4.1"),
        ("arora2019", "Figure 1"),
        ("arora2019", "Theorem 4.1"),
        ("arora2019", "Figure 2"),
        ("arora2019", "Theorem 6.1"),
        ("bach2022", "Figure 2"),
        ("bach2022", "Figure 3"),
        ("bach2022", "Figure 5"),
        ("bach2022", "Figure 6"),
        ("akiyama2021", "Figure 1"),
        ("akiyama2021", "Figure 2"),
        ("akiyama2021", "Figure 3"),
        ("akiyama2021", "Theorem 3.5"),
        ("bridge", "From the lazy to the mean-field regime"),
    }
    assert expected <= labels
    covered = {r.notebook for r in results}
    notebooks = {path.stem for path in (ROOT / "notebooks").glob("*.ipynb")}
    assert notebooks <= covered, f"not in book/results.yml: {sorted(notebooks - covered)}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("du2020:\n  - {result: Figure 1, notebook: null}\n", "unknown group 'du2020'"),
        ("du2019:\n  - {notebook: du2019-figure1}\n", "needs a 'result' label"),
        ("du2019:\n  - {result: Figure 1, notebook: arora2019-figure1}\n", "is not named du2019-"),
    ],
)
def test_a_bad_results_list_is_refused(tmp_path, text, message):
    path = tmp_path / "results.yml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_results(path)


def test_scorecard_lists_every_result_with_status_counts_and_claims():
    results = [
        Result("du2019", "Figure 1", "du2019-figure1"),
        Result("du2019", "Theorem 4.1", None),
        Result("arora2019", "Figure 1", "arora2019-figure1"),
        Result("bridge", "From the lazy to the mean-field regime", "bridge-lazy-to-mean-field"),
    ]
    claims = {
        "du2019-figure1": [
            claim("fast", "reproduced"),
            claim("wide", "needs larger scale", measured={"m": 0.25}, origin="book"),
            claim("bound", "check passed", outside_assumptions=["step 10x too large"]),
        ],
        "arora2019-figure1": [claim("gap", "not reproduced", paper="arora2019", statement="a | b")],
        "du2019-extra": [],
    }
    page = scorecard_markdown(
        "smoke",
        results,
        claims,
        titles={"du2019-figure1": "Wider networks"},
        existing={"du2019-figure1", "arora2019-figure1", "bridge-lazy-to-mean-field"},
    )
    assert "the **smoke** profile" in page
    assert "**5 results: 1 partly reproduced, 1 not reproduced, 1 checks only, 1 not run, " in page
    assert "1 no notebook yet.**" in page
    assert "All claims: 1 of 3 reproduced, 1 not reproduced, 1 needs larger scale" in page
    # the summary table: one row per result, the paper named on its first row only
    partly = '<span class="claim-mark result-partly-reproduced">partly reproduced</span>'
    assert (
        "| {cite:t}`du2019` | [Figure 1](notebooks/du2019-figure1.ipynb) | "
        f"{partly} | 1 of 2, 1 needs scale | 1 of 1 |  |" in page
    )
    assert ">not reproduced</span> | 0 of 1, 1 not | 0 of 0 |  |" in page
    none_yet = '<span class="claim-mark result-no-notebook-yet">no notebook yet</span>'
    assert f"|  | Theorem 4.1 | {none_yet} |  |  |  |" in page
    assert "fresh seeds" not in page.split("## Du, Zhai")[1]  # no sweep, no seed column
    not_run = '<span class="claim-mark result-not-run">not run</span>'
    assert f"| Across the papers | From the lazy to the mean-field regime | {not_run} |" in page
    assert "| Other notebooks | [du2019-extra](notebooks/du2019-extra.ipynb) |" in page
    # one section per group, in the list's order, one per result
    order = ["## Du, Zhai", "## Arora", "## Across the papers", "## Other notebooks"]
    assert [page.index(heading) for heading in order] == sorted(
        page.index(heading) for heading in order
    )
    assert "### [Figure 1: Wider networks](notebooks/du2019-figure1.ipynb)" in page
    assert "No notebook covers this result yet." in page
    assert "Its notebook, `bridge-lazy-to-mean-field`, is not in this build." in page
    assert "The notebook `du2019-extra` recorded no claims." in page
    # per claim: status, statement, origin, measured and expected; kinds apart
    held = '<span class="claim-mark claim-reproduced">reproduced</span>'
    assert (
        f"| {held} | `fast`: A statement. (du2019, Theorem 3.1) | the paper | 0.5 | < 1 |" in page
    )
    scale = '<span class="claim-mark claim-needs-larger-scale">needs scale</span>'
    assert f"| {scale} (holds from default) | `wide`: A statement." in page
    assert "| this book | m=0.25 |" in page
    checks = page.index("**Consistency checks**")
    assert page.index("`fast`") < checks < page.index("`bound`")
    assert "*Outside the paper's assumptions:* step 10x too large" in page
    assert "`gap`: a \\| b" in page


def sweep_of(counts, profile="smoke", seeds=20, succeeded=None):
    """A sweep.json's content: claim id -> (kind, held) over ``seeds`` runs."""
    return {
        "notebook": "du2019-figure1",
        "profile": profile,
        "seeds": [1000 * (i + 1) for i in range(seeds)],
        "succeeded": seeds if succeeded is None else succeeded,
        "claims": [
            {
                "id": name,
                "kind": kind,
                "held": held,
                "runs": seeds if succeeded is None else succeeded,
                "holds_from": "default" if name.startswith("late") else "smoke",
            }
            for name, (kind, held) in counts.items()
        ],
    }


def test_a_sweep_adds_each_claims_seed_count_and_the_weakest_to_the_summary():
    results = [Result("du2019", "Figure 1", "du2019-figure1")]
    claims = {
        "du2019-figure1": [
            claim("fast", "reproduced"),
            claim("wide", "reproduced"),
            claim("bound", "check passed"),
        ]
    }
    sweep = sweep_of(
        {
            "fast": ("reproduction", 20),
            "wide": ("reproduction", 17),
            "bound": ("consistency", 9),
            "late": ("reproduction", 2),  # expected from the default profile only
        }
    )
    claims["du2019-figure1"].append(claim("late", "reproduced"))
    page = scorecard_markdown("default", results, claims, sweeps={"du2019-figure1": sweep})
    # the weakest reproduction, not the weaker consistency check, goes into the summary
    assert "</span> | 3 of 3 | 1 of 1 | 17 of 20 (smoke) |" in page
    assert "| fresh seeds |" in page.split("**Reproductions**")[1]
    assert "| 0.5 | < 1 | 20 of 20 |" in page and "| 17 of 20 |" in page and "| 9 of 20 |" in page
    assert "**Over 20 fresh seeds** at the smoke profile (this page shows the default runs)" in page
    assert "the weakest reproduction expected at that profile held for 17 of 20 runs" in page
    assert "| 2 of 20 (below its scale) |" in page
    assert "`make sweep NB=du2019-figure1 SEEDS=20 PROFILE=smoke`" in page


def test_a_sweep_sentence_says_when_every_claim_held_and_when_runs_are_missing():
    results = [Result("du2019", "Figure 1", "du2019-figure1")]
    claims = {"du2019-figure1": [claim("fast", "reproduced"), claim("new", "reproduced")]}
    complete = sweep_of({"fast": ("reproduction", 5)}, profile="default", seeds=5)
    page = scorecard_markdown("default", results, claims, sweeps={"du2019-figure1": complete})
    assert (
        "**Over 5 fresh seeds** at the default profile, every reproduction expected at that "
        "profile held for all 5" in page
    )
    assert "| not in the sweep |" in page  # a claim added after the sweep ran
    partial = sweep_of({"fast": ("reproduction", 3)}, seeds=5, succeeded=3)
    page = scorecard_markdown("smoke", results, claims, sweeps={"du2019-figure1": partial})
    assert "held for all 3 runs (2 of the 5 runs did not finish)" in page
