"""Claims: status logic, the claims.json schema, display rounding and input checks."""

import json

import numpy as np
import pytest

from twolayer.companion.claims import (
    FAILED,
    FIELDS,
    NEEDS_SCALE,
    NOT_REPRODUCED,
    PASSED,
    REPRODUCED,
    Claims,
    format_measured,
    load_claims,
    status_of,
    summarize,
    summary_line,
)


def make_claims(profile: str = "smoke") -> Claims:
    return Claims("demo-notebook", paper="du2019", profile=profile)


def add(claims: Claims, id: str = "c1", **changes) -> dict:
    fields = dict(
        id=id,
        statement="The loss decreases.",
        source="du2019, Figure 1(a)",
        origin="paper",
        kind="reproduction",
        measured=0.5,
        expected="< 1",
        holds=True,
    )
    fields.update(changes)
    return claims.check(**fields)


@pytest.mark.parametrize(
    ("holds", "profile", "holds_from", "status"),
    [
        (True, "smoke", "paper", REPRODUCED),
        (True, "paper", "smoke", REPRODUCED),
        (False, "smoke", "smoke", NOT_REPRODUCED),
        (False, "default", "default", NOT_REPRODUCED),
        (False, "paper", "default", NOT_REPRODUCED),
        (False, "smoke", "default", NEEDS_SCALE),
        (False, "default", "paper", NEEDS_SCALE),
    ],
)
def test_status(holds, profile, holds_from, status):
    assert status_of(holds, profile, holds_from) == status
    claims = make_claims(profile)
    assert add(claims, holds=holds, holds_from=holds_from)["status"] == status


@pytest.mark.parametrize(
    ("holds", "profile", "holds_from", "status"),
    [
        (True, "smoke", "paper", PASSED),
        (False, "default", "default", FAILED),
        (False, "smoke", "default", NEEDS_SCALE),
    ],
)
def test_status_of_consistency_checks(holds, profile, holds_from, status):
    assert status_of(holds, profile, holds_from, "consistency") == status
    claims = make_claims(profile)
    record = add(claims, holds=holds, holds_from=holds_from, kind="consistency")
    assert record["status"] == status


def test_origin_kind_and_assumptions_are_recorded():
    claims = make_claims()
    record = add(
        claims,
        origin="book",
        kind="consistency",
        assumptions="m = Omega(n^6 / (lambda_0^4 delta^3)), eta = O(lambda_0 / n^2)",
        outside_assumptions=("eta is 1e4 times too large", "m is 1e10 times too small"),
    )
    assert record["origin"] == "book" and record["kind"] == "consistency"
    assert record["assumptions"].startswith("m = Omega")
    assert record["outside_assumptions"] == [
        "eta is 1e4 times too large",
        "m is 1e10 times too small",
    ]
    assert "c1 is outside the paper's assumptions: eta is 1e4" in repr(claims)
    assert "*Outside the paper's assumptions:* eta is 1e4" in claims._repr_markdown_()


def test_written_file_has_the_schema_and_full_precision(tmp_path):
    claims = make_claims("default")
    add(claims, "a", measured=0.123456789012345)
    add(
        claims,
        "b",
        measured={"m=100": np.float64(0.25), "m=200": np.int64(3)},
        holds=np.bool_(False),
        holds_from="paper",
    )
    add(claims, "c", measured="linear", holds=np.True_)
    add(claims, "d", measured=np.bool_(True))
    path = claims.write(tmp_path / "claims.json")
    records = json.loads(path.read_text())
    assert [list(record) for record in records] == [list(FIELDS)] * 4
    first = records[0]
    assert first["measured"] == 0.123456789012345
    assert first["profile"] == "default" and first["notebook"] == "demo-notebook"
    assert first["paper"] == "du2019" and first["holds"] is True
    assert records[1]["measured"] == {"m=100": 0.25, "m=200": 3}
    assert records[1]["holds"] is False and records[1]["status"] == NEEDS_SCALE
    assert records[2]["holds"] is True
    assert records[3]["measured"] is True
    assert load_claims(path) == records


def test_write_defaults_to_the_run_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("TWOLAYER_RUN_DIR", str(tmp_path / "run"))
    claims = make_claims()
    add(claims)
    assert claims.write() == tmp_path / "run" / "claims.json"
    assert len(load_claims(tmp_path / "run" / "claims.json")) == 1


def test_non_finite_measurements_stay_valid_json(tmp_path):
    claims = make_claims()
    add(claims, "diverged", measured=float("nan"), holds=False)
    add(claims, "blown-up", measured={"loss": float("inf")}, holds=False)
    records = json.loads(claims.write(tmp_path / "claims.json").read_text())
    assert records[0]["measured"] == "nan"
    assert records[1]["measured"] == {"loss": "inf"}


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.93, "0.93"),
        (0.123456, "0.123"),
        (123456.0, "1.23e+05"),
        (1.5e-7, "1.5e-07"),
        (-0.0, "0"),
        (1000, "1000"),
        (True, "True"),
        ("linear", "linear"),
        ({"a": 0.33333, "b": 2}, "a=0.333, b=2"),
    ],
)
def test_display_rounds_to_three_significant_digits(value, shown):
    assert format_measured(value) == shown


def test_duplicate_ids_are_refused():
    claims = make_claims()
    add(claims, "same")
    with pytest.raises(ValueError, match="same"):
        add(claims, "same")


@pytest.mark.parametrize("holds", [1, 0, "yes", None, 0.0, np.array([True])])
def test_holds_must_be_a_boolean(holds):
    with pytest.raises(TypeError, match="holds"):
        add(make_claims(), holds=holds)


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"holds_from": "huge"}, ValueError),
        ({"measured": [1, 2]}, TypeError),
        ({"measured": {"a": "text"}}, TypeError),
        ({"statement": ""}, TypeError),
        ({"expected": 1.0}, TypeError),
        ({"id": 3}, TypeError),
        ({"origin": "folklore"}, ValueError),
        ({"kind": "vibes"}, ValueError),
        ({"assumptions": None}, TypeError),
        ({"outside_assumptions": "a string, not a list"}, TypeError),
        ({"outside_assumptions": [""]}, TypeError),
    ],
)
def test_malformed_claims_are_refused(changes, error):
    with pytest.raises(error):
        add(make_claims(), **changes)


def test_unknown_profile_is_refused():
    with pytest.raises(ValueError, match="profile"):
        Claims("nb", paper="du2019", profile="huge")


def test_display_is_a_rounded_deterministic_table():
    claims = make_claims("smoke")
    add(claims, "fast", measured=0.123456789)
    add(
        claims,
        "pipe|id",
        measured={"m": 2.0 / 3.0},
        expected="a | b",
        holds=False,
        holds_from="default",
    )
    add(claims, "wrong", measured=7, holds=False)
    assert repr(claims) == "\n".join(
        [
            "Claims of demo-notebook at profile smoke: "
            "1 of 3 reproduced, 1 not reproduced, 1 needs larger scale",
            "status              claim    origin, kind         measured  expected  holds from",
            "reproduced          fast     paper, reproduction  0.123     < 1       smoke",
            "needs larger scale  pipe|id  paper, reproduction  m=0.667   a | b     default",
            "not reproduced      wrong    paper, reproduction  7         < 1       smoke",
        ]
    )
    markdown = claims._repr_markdown_()
    statement = "The loss decreases. (du2019, Figure 1(a))"
    kind = "paper, reproduction"
    held = '<span class="claim-mark claim-reproduced">reproduced</span>'
    scale = '<span class="claim-mark claim-needs-larger-scale">needs scale</span>'
    piped = "`pipe\\|id`"
    failed = '<span class="claim-mark claim-not-reproduced">not reproduced</span>'
    assert f"| {held} | `fast`: {statement} | {kind} | 0.123 | < 1 | smoke |" in markdown
    assert f"| {scale} | {piped}: {statement} | {kind} | m=0.667 | a \\| b | default |" in markdown
    assert f"| {failed} | `wrong`: {statement} | {kind} | 7 | < 1 | smoke |" in markdown
    assert not any(ord(character) > 0x2000 for character in markdown)  # no emoji or symbols
    assert markdown == claims._repr_markdown_()


def test_summaries_count_reproductions_and_checks_apart():
    records = [
        {"kind": "reproduction", "status": REPRODUCED},
        {"kind": "reproduction", "status": REPRODUCED},
        {"kind": "reproduction", "status": NEEDS_SCALE},
        {"kind": "consistency", "status": PASSED},
        {"kind": "consistency", "status": FAILED},
    ]
    summary = summarize(records)
    assert summary.reproductions == {REPRODUCED: 2, NOT_REPRODUCED: 0, NEEDS_SCALE: 1}
    assert summary.checks == {PASSED: 1, FAILED: 1, NEEDS_SCALE: 0}
    assert summary_line(summary) == (
        "2 of 3 reproduced, 1 needs larger scale; 1 of 2 checks passed, 1 failed"
    )
    assert summary_line(summarize(records[:3])) == "2 of 3 reproduced, 1 needs larger scale"
    assert summary_line(summarize([])) == "0 of 0 reproduced"


def test_load_claims_rejects_incomplete_records(tmp_path):
    path = tmp_path / "claims.json"
    path.write_text(json.dumps([{"id": "x", "status": REPRODUCED}]))
    with pytest.raises(ValueError, match="lacks"):
        load_claims(path)
    path.write_text(json.dumps({"id": "x"}))
    with pytest.raises(ValueError, match="list"):
        load_claims(path)
