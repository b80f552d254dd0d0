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
from twolayer.companion.paths import PROFILES

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


def claims_table(
    records: Sequence[Mapping[str, Any]], sweep: Mapping[str, Any] | None = None
) -> list[str]:
    """One row per claim: status, statement, origin, measured and expected values.

    With a ``sweep`` (a ``sweep.json``), a last column gives the seeds each claim held for.
    """
    rates = {claim["id"]: claim for claim in sweep["claims"]} if sweep else None
    lines = [
        "| status | claim | origin | measured | expected |" + (" fresh seeds |" if sweep else ""),
        "| --- | --- | --- | --- | --- |" + (" --- |" if sweep else ""),
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
        if rates is not None:
            rate = rates.get(record["id"])
            if rate is None:
                cells.append("not in the sweep")
            else:
                below = "" if _expected_at(rate, sweep["profile"]) else " (below its scale)"
                cells.append(f"{rate['held']} of {rate['runs']}{below}")
        lines.append(f"| {status} | " + " | ".join(cells) + " |")
    return lines


def _expected_at(claim: Mapping[str, Any], profile: str) -> bool:
    """Whether a claim is expected to hold at ``profile`` (its ``holds_from`` is not larger)."""
    return PROFILES.index(claim.get("holds_from", "smoke")) <= PROFILES.index(profile)


def _judged(sweep: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], str]:
    """The claims a sweep is judged by, and their noun.

    Those expected at the sweep's profile, reproductions first: a claim that holds only
    from a larger profile may fail at this one for most seeds without anything being wrong.
    """
    expected = [c for c in sweep["claims"] if c["runs"] and _expected_at(c, sweep["profile"])]
    reproductions = [claim for claim in expected if claim["kind"] == REPRODUCTION]
    return (reproductions, "reproduction") if reproductions else (expected, "claim")


def sweep_sentence(sweep: Mapping[str, Any], notebook: str, profile: str) -> str:
    """What a sweep found, in one sentence, with the command that repeats it."""
    seeds = len(sweep["seeds"])
    chosen, noun = _judged(sweep)
    done = sweep["succeeded"]
    command = f"`make sweep NB={notebook} SEEDS={seeds} PROFILE={sweep['profile']}`"
    scale = f"the {sweep['profile']} profile" + (
        "" if sweep["profile"] == profile else f" (this page shows the {profile} runs)"
    )
    missing = f" ({seeds - done} of the {seeds} runs did not finish)" if done < seeds else ""
    if not chosen:
        return (
            f"A sweep over {seeds} fresh seeds at {scale} recorded no claim expected at that "
            f"profile{missing} ({command})."
        )
    weakest = min(chosen, key=lambda claim: claim["held"] / claim["runs"])
    found = (
        f"every {noun} expected at that profile held for all {done} runs"
        if all(claim["held"] == claim["runs"] == done for claim in chosen)
        else f"the weakest {noun} expected at that profile held for {weakest['held']} of "
        f"{weakest['runs']} runs"
    )
    return (
        f"**Over {seeds} fresh seeds** at {scale}, {found}{missing}; the last column below "
        f"gives each claim's count ({command})."
    )


def _group_cell(group: str) -> str:
    return f"{{cite:t}}`{group}`" if group in PAPERS else GROUPS[group]


def _summary_row(
    result: Result,
    shown: str,
    records: Sequence[Mapping[str, Any]] | None,
    status: str,
    sweep: Mapping[str, Any] | None = None,
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
        cells += [""] * 3
    else:
        summary = summarize(records)
        held, failed, needs_scale = (summary.reproductions[s] for s in STATUSES[REPRODUCTION])
        passed = summary.checks[STATUSES[CONSISTENCY][0]]
        reproductions = f"{held} of {held + failed + needs_scale}"
        if failed:
            reproductions += f", {failed} not"
        if needs_scale:
            reproductions += f", {needs_scale} need{'s' if needs_scale == 1 else ''} scale"
        cells += [
            reproductions,
            f"{passed} of {sum(summary.checks.values())}",
            _weakest_cell(sweep),
        ]
    return "| " + " | ".join(cells) + " |"


def _weakest_cell(sweep: Mapping[str, Any] | None) -> str:
    """The summary table's seed column: the weakest count among the claims judged."""
    chosen, _ = _judged(sweep) if sweep else ([], "")
    if not chosen:
        return ""
    weakest = min(chosen, key=lambda claim: claim["held"] / claim["runs"])
    return f"{weakest['held']} of {weakest['runs']} ({sweep['profile']})"


def _result_section(
    result: Result,
    records: Sequence[Mapping[str, Any]] | None,
    status: str,
    title: str,
    profile: str,
    sweep: Mapping[str, Any] | None = None,
) -> list[str]:
    """The heading, verdict and claims tables of one result (with its sweep's counts)."""
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
    if sweep:
        lines += ["", sweep_sentence(sweep, name, profile)]
    for kind, heading in ((REPRODUCTION, "Reproductions"), (CONSISTENCY, "Consistency checks")):
        chosen = [record for record in records if record["kind"] == kind]
        if chosen:
            lines += ["", f"**{heading}**", "", *claims_table(chosen, sweep)]
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

One run says what happened for one seed. Where a notebook has been swept over fresh seeds
(`make sweep`, see {{doc}}`rerunning`), the column *fresh seeds* gives the count of its
weakest reproduction among those expected at the sweep's profile, and each claim's own count
appears beside it below.
"""


def scorecard_markdown(
    profile: str,
    results: Sequence[Result],
    claims: Mapping[str, list[dict[str, Any]]],
    titles: Mapping[str, str] | None = None,
    existing: Collection[str] = (),
    sweeps: Mapping[str, Mapping[str, Any]] | None = None,
) -> str:
    """The scorecard page: a summary table of every result, then one section per result.

    ``results`` is the list of ``book/results.yml``; ``claims`` maps each notebook in the
    book to its claim records; ``titles`` maps a notebook to the title shown for it;
    ``existing`` names the notebooks that exist, run or not; ``sweeps`` maps a notebook to
    the ``sweep.json`` shown for it. A notebook in the book that no listed result names is
    shown under "Other notebooks".
    """
    titles = titles or {}
    sweeps = sweeps or {}
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
        f"All at the {profile} profile:",
        "",
        "| paper | result | status | reproduced | checks passed | fresh seeds |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    previous = None
    for result, status in zip(results, verdicts, strict=True):
        shown = _group_cell(result.group) if result.group != previous else ""
        previous = result.group
        lines.append(
            _summary_row(
                result, shown, claims.get(result.notebook), status, sweeps.get(result.notebook)
            )
        )
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
            sweep = sweeps.get(result.notebook or "")
            lines += ["", *_result_section(result, records, status, title, profile, sweep)]
    return "\n".join(lines) + "\n"
