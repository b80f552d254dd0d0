"""A paper's claims, checked by a notebook's own computation.

A notebook records each claim with what it measured and whether the claim holds; the
runner and the book's scorecard read the resulting ``claims.json``::

    claims = Claims("du2019-figure1", paper="du2019", profile=profile)
    claims.check(id="linear-convergence", statement="...", source="du2019, Figure 1(a)",
                 measured=rate, expected="rate < 1 for every width", holds=bool(rate < 1))
    claims          # shows the table
    claims.write()  # run_dir("du2019-figure1")/claims.json
"""

from __future__ import annotations

import json
import math
import numbers
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from twolayer.companion.paths import PROFILES, run_dir

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
NEEDS_SCALE = "needs larger scale"
STATUSES = (REPRODUCED, NOT_REPRODUCED, NEEDS_SCALE)
MARKS = {REPRODUCED: "✅", NOT_REPRODUCED: "❌", NEEDS_SCALE: "⏳"}
FIELDS = (
    "id",
    "statement",
    "source",
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


def status_of(holds: bool, profile: str, holds_from: str) -> str:
    """Classify a claim: reproduced, not reproduced, or needing a larger profile."""
    if holds:
        return REPRODUCED
    if PROFILES.index(profile) >= PROFILES.index(holds_from):
        return NOT_REPRODUCED
    return NEEDS_SCALE


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


def summarize(records: Iterable[Mapping[str, Any]]) -> Counter:
    """Count claim records by status (every status present, possibly zero)."""
    counts = Counter(dict.fromkeys(STATUSES, 0))
    counts.update(record["status"] for record in records)
    return counts


def summary_line(counts: Mapping[str, int]) -> str:
    """``'3 of 4 reproduced, 1 needs larger scale'``: the non-zero counts in words."""
    total = sum(counts.values())
    parts = [f"{counts[REPRODUCED]} of {total} reproduced"]
    if counts[NOT_REPRODUCED]:
        parts.append(f"{counts[NOT_REPRODUCED]} not reproduced")
    if counts[NEEDS_SCALE]:
        verb = "needs" if counts[NEEDS_SCALE] == 1 else "need"
        parts.append(f"{counts[NEEDS_SCALE]} {verb} larger scale")
    return ", ".join(parts)


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
        measured: Measured,
        expected: str,
        holds: bool,
        holds_from: str = "smoke",
    ) -> dict[str, Any]:
        """Record one claim and return its record.

        ``holds`` must be a boolean computed from ``measured`` (``numpy.bool_`` is
        accepted); ``holds_from`` is the smallest profile at which the claim is expected
        to hold.
        """
        _require_text("id", id)
        if any(record["id"] == id for record in self._records):
            raise ValueError(f"claim id {id!r} is used twice in {self.notebook}")
        if not isinstance(holds, bool | np.bool_):
            raise TypeError(f"holds must be a bool computed by the notebook, not {holds!r}")
        if holds_from not in PROFILES:
            raise ValueError(f"holds_from {holds_from!r} is not one of {', '.join(PROFILES)}")
        record = {
            "id": id,
            "statement": _require_text("statement", statement),
            "source": _require_text("source", source),
            "measured": _plain_measured(measured),
            "expected": _require_text("expected", expected),
            "holds": bool(holds),
            "profile": self.profile,
            "holds_from": holds_from,
            "status": status_of(bool(holds), self.profile, holds_from),
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

    def _rows(self) -> list[tuple[str, str, str, str, str]]:
        return [
            (
                record["status"],
                record["id"],
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
            "| | claim | measured | expected | holds from |",
            "|---|---|---|---|---|",
        ]
        for record, (status, *cells) in zip(self._records, self._rows(), strict=True):
            escaped = [cell.replace("|", "\\|") for cell in cells]
            claim = (
                f"`{escaped[0]}`: " + record["statement"].replace("|", "\\|")
                + f" ({record['source']})"
            )
            lines.append(f"| {MARKS[status]} | {claim} | " + " | ".join(escaped[1:]) + " |")
        lines += ["", " · ".join(f"{MARKS[s]} {s}" for s in STATUSES)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        header = ("status", "claim", "measured", "expected", "holds from")
        rows = [header, *self._rows()]
        widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
        table = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
        return "\n".join([f"Claims of {self._caption()}", *table])


def load_claims(path: Path) -> list[dict[str, Any]]:
    """Read a ``claims.json`` and check that every record has the expected fields."""
    records = json.loads(Path(path).read_text())
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of claims")
    for record in records:
        missing = [field for field in FIELDS if field not in record]
        if missing:
            raise ValueError(f"{path}: claim {record.get('id')!r} lacks {', '.join(missing)}")
        if record["status"] not in STATUSES:
            raise ValueError(
                f"{path}: claim {record['id']!r} has unknown status {record['status']!r}"
            )
    return records
