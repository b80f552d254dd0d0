"""A paper's claims, checked by a notebook's own computation.

A notebook records each claim with what it measured and whether the claim holds; the
runner and the book's scorecard read the resulting ``claims.json``::

    claims = Claims("du2019-figure1", paper="du2019", profile=profile)
    claims.check(id="linear-convergence", statement="...", source="du2019, Figure 1(a)",
                 origin="paper", kind="reproduction",
                 measured=rate, expected="rate < 1 for every width", holds=bool(rate < 1))
    claims          # shows the table
    claims.write()  # run_dir("du2019-figure1")/claims.json
"""

from __future__ import annotations

import json
import math
import numbers
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twolayer.companion.paths import PROFILES, run_dir

ORIGINS = ("paper", "book")
"""Who makes a claim: the paper itself, or this book (a prediction or extension of ours)."""
REPRODUCTION = "reproduction"
CONSISTENCY = "consistency"
KINDS = (REPRODUCTION, CONSISTENCY)
"""A reproduction fails on a wrong implementation of the set-up; a consistency check need not."""

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NEEDS_SCALE = "needs larger scale"
PASSED = "check passed"
FAILED = "check failed"
STATUSES = {
    REPRODUCTION: (REPRODUCED, NOT_REPRODUCED, NEEDS_SCALE),
    CONSISTENCY: (PASSED, FAILED, NEEDS_SCALE),
}
"""The statuses of each kind of claim: holds, fails at or above its scale, fails below it."""
MARKS = {
    REPRODUCED: "reproduced",
    NOT_REPRODUCED: "not reproduced",
    NEEDS_SCALE: "needs scale",
    PASSED: "passed",
    FAILED: "failed",
}
"""The short text label shown for each status in tables (text, so no emoji font is needed)."""
FIELDS = (
    "id",
    "statement",
    "source",
    "origin",
    "kind",
    "assumptions",
    "outside_assumptions",
    "measured",
    "expected",
    "holds",
    "profile",
    "holds_from",
    "status",
    "notebook",
    "paper",
)

Measured = float | int | bool | str | dict[str, float | int]


def status_of(holds: bool, profile: str, holds_from: str, kind: str = REPRODUCTION) -> str:
    """Classify a claim: it holds, it fails at or above ``holds_from``, or it needs more scale."""
    held, failed, needs_scale = STATUSES[kind]
    if holds:
        return held
    if PROFILES.index(profile) >= PROFILES.index(holds_from):
        return failed
    return needs_scale


def mark(status: str) -> str:
    """A status as an inline HTML label, ``<span class="claim-mark claim-...">...</span>``.

    Jupyter shows the text; the book styles it as a coloured badge (book/_static/twolayer.css).
    """
    slug = status.replace(" ", "-")
    return f'<span class="claim-mark claim-{slug}">{MARKS[status]}</span>'


def _plain_number(value: Any) -> float | int | bool | str:
    """A JSON-safe Python scalar; non-finite floats become the strings 'nan', 'inf', '-inf'."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        number = float(value)
        return number if math.isfinite(number) else str(number)
    raise TypeError(f"a measured number must be int, float or bool, not {type(value).__name__}")


def _plain_measured(value: Any) -> Measured:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain_number(item) for key, item in value.items()}
    return _plain_number(value)


def _format_number(value: float | int | bool | str) -> str:
    if isinstance(value, bool | str | int):
        return str(value)
    text = f"{value:.3g}"
    return "0" if text == "-0" else text


def format_measured(value: Measured) -> str:
    """Render a measured value for display: floats to 3 significant digits."""
    if isinstance(value, dict):
        return ", ".join(f"{key}={_format_number(item)}" for key, item in value.items())
    return _format_number(value)


@dataclass(frozen=True)
class Summary:
    """Claim records counted by status, reproductions and consistency checks apart."""

    reproductions: Counter
    checks: Counter

    def of(self, kind: str) -> Counter:
        return self.reproductions if kind == REPRODUCTION else self.checks


def summarize(records: Iterable[Mapping[str, Any]]) -> Summary:
    """Count claim records by kind and status (every status present, possibly zero)."""
    summary = Summary(
        Counter(dict.fromkeys(STATUSES[REPRODUCTION], 0)),
        Counter(dict.fromkeys(STATUSES[CONSISTENCY], 0)),
    )
    for record in records:
        summary.of(record["kind"])[record["status"]] += 1
    return summary


def _counts_line(counts: Mapping[str, int], kind: str) -> str:
    held, failed, needs_scale = STATUSES[kind]
    total = sum(counts.values())
    if kind == REPRODUCTION:
        noun = "reproduced"
    else:
        noun = "check passed" if total == 1 else "checks passed"
    parts = [f"{counts[held]} of {total} {noun}"]
    if counts[failed]:
        parts.append(f"{counts[failed]} {'not reproduced' if kind == REPRODUCTION else 'failed'}")
    if counts[needs_scale]:
        verb = "needs" if counts[needs_scale] == 1 else "need"
        parts.append(f"{counts[needs_scale]} {verb} larger scale")
    return ", ".join(parts)


def summary_line(summary: Summary) -> str:
    """``'3 of 4 reproduced, 1 needs larger scale; 2 of 2 checks passed'``.

    The part on consistency checks is left out when there are none.
    """
    line = _counts_line(summary.reproductions, REPRODUCTION)
    if sum(summary.checks.values()):
        line += "; " + _counts_line(summary.checks, CONSISTENCY)
    return line


def _require_text(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(f"claim field {field!r} must be a non-empty string, not {value!r}")
    return value


class Claims:
    """The claims one notebook checks, in the order it checks them."""

    def __init__(self, notebook: str, *, paper: str, profile: str) -> None:
        if profile not in PROFILES:
            raise ValueError(f"profile {profile!r} is not one of {', '.join(PROFILES)}")
        self.notebook = _require_text("notebook", notebook)
        self.paper = _require_text("paper", paper)
        self.profile = profile
        self._records: list[dict[str, Any]] = []

    def check(
        self,
        *,
        id: str,
        statement: str,
        source: str,
        origin: str,
        kind: str,
        measured: Measured,
        expected: str,
        holds: bool,
        holds_from: str = "smoke",
        assumptions: str = "",
        outside_assumptions: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Record one claim and return its record.

        ``origin`` is ``"paper"`` when the paper states the claim (``source`` cites where)
        and ``"book"`` when it is this book's own prediction or extension. ``kind`` is
        ``"reproduction"`` when a wrong implementation of the set-up would fail it and
        ``"consistency"`` for a check that cannot tell right from wrong by itself.
        ``holds`` must be a boolean computed from ``measured`` (``numpy.bool_`` is
        accepted); ``holds_from`` is the smallest profile at which the claim is expected
        to hold. ``assumptions`` states the conditions under which the paper makes the
        claim, and ``outside_assumptions`` lists each way in which this run departs from
        them (empty when it satisfies them all).
        """
        _require_text("id", id)
        if any(record["id"] == id for record in self._records):
            raise ValueError(f"claim id {id!r} is used twice in {self.notebook}")
        if not isinstance(holds, bool | np.bool_):
            raise TypeError(f"holds must be a bool computed by the notebook, not {holds!r}")
        if holds_from not in PROFILES:
            raise ValueError(f"holds_from {holds_from!r} is not one of {', '.join(PROFILES)}")
        if origin not in ORIGINS:
            raise ValueError(f"origin {origin!r} is not one of {', '.join(ORIGINS)}")
        if kind not in KINDS:
            raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
        if not isinstance(assumptions, str):
            raise TypeError(f"assumptions must be a string, not {assumptions!r}")
        if isinstance(outside_assumptions, str) or not all(
            isinstance(item, str) and item.strip() for item in outside_assumptions
        ):
            raise TypeError(
                "outside_assumptions must be a list of non-empty strings, "
                f"not {outside_assumptions!r}"
            )
        record = {
            "id": id,
            "statement": _require_text("statement", statement),
            "source": _require_text("source", source),
            "origin": origin,
            "kind": kind,
            "assumptions": assumptions,
            "outside_assumptions": list(outside_assumptions),
            "measured": _plain_measured(measured),
            "expected": _require_text("expected", expected),
            "holds": bool(holds),
            "profile": self.profile,
            "holds_from": holds_from,
            "status": status_of(bool(holds), self.profile, holds_from, kind),
            "notebook": self.notebook,
            "paper": self.paper,
        }
        self._records.append(record)
        return record

    @property
    def records(self) -> list[dict[str, Any]]:
        """Copies of the recorded claims, as written to ``claims.json``."""
        return [dict(record) for record in self._records]

    def write(self, path: Path | None = None) -> Path:
        """Write ``claims.json`` (by default into ``run_dir(notebook)``); return its path."""
        target = path if path is not None else run_dir(self.notebook) / "claims.json"
        target.write_text(json.dumps(self.records, indent=2, allow_nan=False) + "\n")
        return target

    def _rows(self) -> list[tuple[str, str, str, str, str, str]]:
        return [
            (
                record["status"],
                record["id"],
                f"{record['origin']}, {record['kind']}",
                format_measured(record["measured"]),
                record["expected"],
                record["holds_from"],
            )
            for record in self._records
        ]

    def _caption(self) -> str:
        return (
            f"{self.notebook} at profile {self.profile}: {summary_line(summarize(self._records))}"
        )

    def _repr_markdown_(self) -> str:
        lines = [
            f"**Claims** of {self._caption()}",
            "",
            "| status | claim | origin, kind | measured | expected | holds from |",
            "|---|---|---|---|---|---|",
        ]
        for record, (status, *cells) in zip(self._records, self._rows(), strict=True):
            escaped = [cell.replace("|", "\\|") for cell in cells[1:]]
            claim = f"`{record['id']}`: {record['statement']} ({record['source']})"
            if record["outside_assumptions"]:
                claim += " *Outside the paper's assumptions:* " + "; ".join(
                    record["outside_assumptions"]
                )
            claim = claim.replace("|", "\\|")
            lines.append(f"| {mark(status)} | {claim} | " + " | ".join(escaped) + " |")
        return "\n".join(lines)

    def __repr__(self) -> str:
        header = ("status", "claim", "origin, kind", "measured", "expected", "holds from")
        rows = [header, *self._rows()]
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        table = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
        outside = [
            f"  {record['id']} is outside the paper's assumptions: "
            + "; ".join(record["outside_assumptions"])
            for record in self._records
            if record["outside_assumptions"]
        ]
        return "\n".join([f"Claims of {self._caption()}", *table, *outside])


def load_claims(path: Path) -> list[dict[str, Any]]:
    """Read a ``claims.json`` and check that every record has the expected fields."""
    records = json.loads(Path(path).read_text())
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of claims")
    for record in records:
        missing = [field for field in FIELDS if field not in record]
        if missing:
            raise ValueError(f"{path}: claim {record.get('id')!r} lacks {', '.join(missing)}")
        if record["kind"] not in KINDS or record["status"] not in STATUSES[record["kind"]]:
            raise ValueError(
                f"{path}: claim {record['id']!r} has unknown status {record['status']!r}"
            )
    return records
