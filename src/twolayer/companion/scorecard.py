"""The scorecard page: every result of the papers, with the verdict of its notebook.

``book/results.yml`` lists the results the book sets out to reproduce, grouped by paper,
and the notebook that covers each one. The scorecard shows every listed result, covered
or not, with a status derived from the claims its notebook recorded (``claims.json``),
the counts of those claims and, per result, the claims themselves.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from twolayer.companion.claims import (
    CONSISTENCY,
    FAILED,
    REPRODUCTION,
    STATUSES,
    format_measured,
    mark,
    summarize,
    summary_line,
)

PAPERS = {
    "du2019": "Du, Zhai, Poczos and Singh (ICLR 2019)",
    "arora2019": "Arora, Du, Hu, Li and Wang (ICML 2019)",
    "bach2022": "Bach and Chizat (ICM 2022)",
    "akiyama2021": "Akiyama and Suzuki (ICML 2021)",
}
"""The papers, by their key in ``book/references.bib``."""
BRIDGE = "bridge"
OTHER = "other"
GROUPS = {**PAPERS, BRIDGE: "Across the papers", OTHER: "Other notebooks"}
"""Headings of the scorecard's groups: the papers, the notebooks across them, the rest."""

REPRODUCED = "reproduced"
PARTLY = "partly reproduced"
NOT_REPRODUCED = "not reproduced"
NEEDS_SCALE = "needs larger scale"
CHECKS_ONLY = "checks only"
NOT_RUN = "not run"
NO_NOTEBOOK = "no notebook yet"
RESULT_STATUSES = (
    REPRODUCED,
    PARTLY,
    NOT_REPRODUCED,
    NEEDS_SCALE,
    CHECKS_ONLY,
    NOT_RUN,
    NO_NOTEBOOK,
)
"""What the scorecard can say about a result, best first."""


@dataclass(frozen=True)
class Result:
    """One result of a paper (``label``, e.g. "Figure 1") and the notebook covering it."""

    group: str
    label: str
    notebook: str | None


def load_results(path: Path) -> list[Result]:
    """Read ``book/results.yml``: group key -> list of ``{result, notebook}``, in order."""
    groups = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(groups, dict):
        raise ValueError(f"{path}: expected a mapping from paper key to a list of results")
    results = []
    for group, entries in groups.items():
        if group not in GROUPS or group == OTHER:
            known = ", ".join(key for key in GROUPS if key != OTHER)
            raise ValueError(f"{path}: unknown group {group!r} (known: {known})")
        for entry in entries or []:
            label, notebook = entry.get("result"), entry.get("notebook")
            if not isinstance(label, str) or not label.strip():
                raise ValueError(f"{path}, {group}: every result needs a 'result' label")
            if notebook is not None and not str(notebook).startswith(f"{group}-"):
                raise ValueError(
                    f"{path}, {group}, {label}: notebook {notebook!r} is not named {group}-..."
                )
            results.append(Result(group, label, notebook))
    return results


def result_status(records: Sequence[Mapping[str, Any]] | None, notebook_exists: bool = True) -> str:
    """The verdict on one result from the claims of its notebook's run.

    ``records`` is None when the notebook has no run in the book; it is then ``not run``
    if the notebook exists and ``no notebook yet`` otherwise. Otherwise the reproductions
    decide: all hold, ``reproduced`` (``partly reproduced`` if a consistency check
    failed); some hold, ``partly reproduced``; none holds, ``not reproduced`` when one
    fails at or above its scale, else ``needs larger scale``; none recorded,
    ``checks only``.
    """
    if records is None:
        return NOT_RUN if notebook_exists else NO_NOTEBOOK
    summary = summarize(records)
    held, failed, needs_scale = (summary.reproductions[s] for s in STATUSES[REPRODUCTION])
    if held + failed + needs_scale == 0:
        return CHECKS_ONLY
    if held == held + failed + needs_scale:
        return PARTLY if summary.checks[FAILED] else REPRODUCED
    if held:
        return PARTLY
    return NOT_REPRODUCED if failed else NEEDS_SCALE


def badge(status: str) -> str:
    """A result's status as an inline HTML label, styled by book/_static/twolayer.css."""
    return f'<span class="claim-mark result-{status.replace(" ", "-")}">{status}</span>'


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _claim_cell(record: Mapping[str, Any]) -> str:
    text = f"`{record['id']}`: {record['statement']} ({record['source']})"
    if record["outside_assumptions"]:
        text += " *Outside the paper's assumptions:* " + "; ".join(record["outside_assumptions"])
    return text


def claims_table(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """One row per claim: status, statement, origin, measured and expected values."""
    lines = [
        "| status | claim | origin | measured | expected |",
        "| --- | --- | --- | --- | --- |",
    ]
    for record in records:
        status = mark(record["status"])
        if not record["holds"]:
            status += f" (holds from {record['holds_from']})"
        origin = "the paper" if record["origin"] == "paper" else "this book"
        cells = [
            _cell(_claim_cell(record)),
            origin,
            _cell(format_measured(record["measured"])),
            _cell(record["expected"]),
        ]
        lines.append(f"| {status} | " + " | ".join(cells) + " |")
    return lines


def _group_cell(group: str) -> str:
    return f"{{cite:t}}`{group}`" if group in PAPERS else GROUPS[group]


def _summary_row(
    result: Result, shown: str, records: Sequence[Mapping[str, Any]] | None, status: str
) -> str:
    """A row of the summary table; ``shown`` is the paper cell (empty after the first)."""
    name = result.notebook
    label = (
        f"[{_cell(result.label)}](notebooks/{name}.ipynb)"
        if records is not None
        else (_cell(result.label))
    )
    cells = [shown, label, badge(status)]
    if records is None:
        cells += [""] * 5
    else:
        summary = summarize(records)
        held, failed, needs_scale = (summary.reproductions[s] for s in STATUSES[REPRODUCTION])
        passed = summary.checks[STATUSES[CONSISTENCY][0]]
        profile = records[0]["profile"] if records else ""
        cells += [
            profile,
            f"{held} of {held + failed + needs_scale}",
            str(failed),
            str(needs_scale),
            f"{passed} of {sum(summary.checks.values())}",
        ]
    return "| " + " | ".join(cells) + " |"


def _result_section(
    result: Result,
    records: Sequence[Mapping[str, Any]] | None,
    status: str,
    title: str,
    profile: str,
) -> list[str]:
    """The heading, verdict and claims tables of one result."""
    name = result.notebook
    if records is None:
        heading = f"### {result.label}"
        if status == NO_NOTEBOOK:
            return [heading, "", f"{badge(status)} No notebook covers this result yet."]
        return [heading, "", f"{badge(status)} Its notebook, `{name}`, is not in this build."]
    lines = [f"### [{result.label}: {title}](notebooks/{name}.ipynb)", ""]
    if not records:
        return [*lines, f"{badge(status)} The notebook `{name}` recorded no claims."]
    lines.append(
        f"{badge(status)} at the {profile} profile. `{name}`: {summary_line(summarize(records))}."
    )
    for kind, heading in ((REPRODUCTION, "Reproductions"), (CONSISTENCY, "Consistency checks")):
        chosen = [record for record in records if record["kind"] == kind]
        if chosen:
            lines += ["", f"**{heading}**", "", *claims_table(chosen)]
    return lines


INTRODUCTION = """\
Every result of the papers that this book sets out to reproduce, with the verdict of the
notebook that covers it. The numbers come from the runs at the **{profile}** profile that this
book shows; {{doc}}`rerunning` explains the profiles and how to run a larger one.

A notebook turns a result into claims of two kinds. A *reproduction* is tested sharply enough
that a wrong implementation of the set-up fails it. A *consistency check* is a true statement,
often a bound with room to spare, that a correct computation must satisfy but that cannot tell
right from wrong by itself. Each claim says whose it is, the paper's or this book's own, and
where the run lies outside the paper's assumptions.

A result is *reproduced* when all its reproductions hold and no consistency check fails,
*partly reproduced* when some hold, *not reproduced* when none holds and one fails at or above
the scale from which it should hold, and *needs larger scale* when none holds and each is
expected to hold only at a larger profile than the one run. *Checks only* means that its
notebook checks no reproduction.
"""


def scorecard_markdown(
    profile: str,
    results: Sequence[Result],
    claims: Mapping[str, list[dict[str, Any]]],
    titles: Mapping[str, str] | None = None,
    existing: Collection[str] = (),
) -> str:
    """The scorecard page: a summary table of every result, then one section per result.

    ``results`` is the list of ``book/results.yml``; ``claims`` maps each notebook in the
    book to its claim records; ``titles`` maps a notebook to the title shown for it;
    ``existing`` names the notebooks that exist, run or not. A notebook in the book that no
    listed result names is shown under "Other notebooks".
    """
    titles = titles or {}
    listed = {result.notebook for result in results}
    results = [
        *results,
        *(Result(OTHER, titles.get(name, name), name) for name in claims if name not in listed),
    ]
    verdicts = [
        result_status(claims.get(result.notebook), result.notebook in existing)
        for result in results
    ]
    counts = Counter(verdicts)
    everything = [record for records in claims.values() for record in records]
    lines = [
        "# Scorecard",
        "",
        INTRODUCTION.format(profile=profile),
        f"**{len(results)} results: "
        + ", ".join(f"{counts[s]} {s}" for s in RESULT_STATUSES if counts[s])
        + f".** All claims: {summary_line(summarize(everything))}.",
        "",
        "| paper | result | status | profile | reproduced | not reproduced "
        "| needs larger scale | checks passed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    previous = None
    for result, status in zip(results, verdicts, strict=True):
        shown = _group_cell(result.group) if result.group != previous else ""
        previous = result.group
        lines.append(_summary_row(result, shown, claims.get(result.notebook), status))
    for group in dict.fromkeys(result.group for result in results):
        chosen = [(r, s) for r, s in zip(results, verdicts, strict=True) if r.group == group]
        if not chosen:
            continue
        lines += ["", f"## {GROUPS[group]}"]
        if group in PAPERS:
            lines += ["", f"Results of {{cite:t}}`{group}`."]
        for result, status in chosen:
            records = claims.get(result.notebook)
            title = titles.get(result.notebook, result.notebook or "")
            lines += ["", *_result_section(result, records, status, title, profile)]
    return "\n".join(lines) + "\n"
