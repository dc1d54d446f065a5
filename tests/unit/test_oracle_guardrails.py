"""The guardrail oracle (harness/oracle/guardrails.py) on hand-worked decisions."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from harness.oracle.guardrails import band_crossings, expected_decision, reversals
from harness.params import AuditEntry, GuardrailVerdict, ParamChange, ParamSpec

D = Decimal
SPEC = ParamSpec(
    symbol="BTCUSDT",
    name="maint_margin_rate",
    base=D("0.004"),
    lower=D("0.004"),
    upper=D("0.006"),
    max_step=D("0.001"),
    tick=D("0.000001"),
    direction=1,
    signal="volatility",
    tighten_at=D("0.001"),
    relax_at=D("0.0004"),
    cooling_ms=300_000,
    lead_ms=120_000,
)
NOW = 1_000_000


def _decide(
    proposed: str | None,
    signal: str = "0.002",
    *,
    current: Decimal = D("0.004"),
    as_of_ms: int = NOW,
    previous_as_of_ms: int | None = None,
    last_announced_ms: int | None = None,
    pending: bool = False,
) -> tuple[object, ...]:
    out = expected_decision(
        SPEC,
        current=current,
        proposed=proposed,
        signal=D(signal),
        now_ms=NOW,
        as_of_ms=as_of_ms,
        previous_as_of_ms=previous_as_of_ms,
        last_announced_ms=last_announced_ms,
        pending=pending,
        decision_interval_ms=5_000,
    )
    return out.rejected_by, out.applied, out.effective_ms


@pytest.mark.parametrize(
    ("proposed", "kw", "expected"),
    [
        ("0.0043", {}, (None, D("0.004300"), NOW + 120_000)),
        ("4", {}, (None, D("0.005000"), NOW + 120_000)),  # bounds, then one step
        ("NaN", {}, ("valid", None, None)),
        (None, {}, ("valid", None, None)),
        ("-Infinity", {}, ("valid", None, None)),
        ("-0.005", {}, ("sign", None, None)),
        ("0.005", {"as_of_ms": NOW - 5_000}, ("fresh", None, None)),
        ("0.005", {"previous_as_of_ms": NOW}, ("fresh", None, None)),
        ("0.005", {"signal": "0.0009"}, ("trigger", None, None)),  # inside the band
        ("0.005", {"last_announced_ms": NOW - 299_999}, ("cooling", None, None)),
        ("0.005", {"pending": True}, ("cooling", None, None)),
        ("0.0040000001", {}, (None, None, None)),  # rounds back to the current value
    ],
)
def test_expected_decision_follows_the_documented_order(
    proposed: str | None, kw: dict[str, Any], expected: tuple[object, ...]
) -> None:
    assert _decide(proposed, **kw) == expected


def test_relaxing_needs_the_lower_threshold() -> None:
    assert _decide("0.004", signal="0.0005", current=D("0.005"))[0] == "trigger"
    assert _decide("0.001", signal="0.0004", current=D("0.005"))[1] == D("0.004")


def test_reversals_and_band_crossings() -> None:
    def change(old: str, new: str) -> ParamChange:
        return ParamChange(
            symbol="S", name="x", old=D(old), new=D(new), announced_ms=0, effective_ms=0
        )

    assert reversals([change("1", "2"), change("2", "3"), change("3", "2"), change("2", "3")]) == 2
    assert band_crossings([D(2), D("0.5"), D(2), D("0.5")], D(1), D("0.4")) == 0
    assert band_crossings([D(2), D("0.1"), D("0.5"), D(3)], D(1), D("0.4")) == 2


def test_an_audit_entry_round_trips_through_its_canonical_line() -> None:
    entry = AuditEntry(
        seq=0,
        time_ms=NOW,
        kind="decision",
        symbol="BTCUSDT",
        param="maint_margin_rate",
        inputs={"volatility": D("0.002")},
        advisor="scripted",
        proposed="NaN",
        as_of_ms=NOW,
        current=D("0.004"),
        verdicts=(GuardrailVerdict(name="valid", passed=False, detail="NaN is not"),),
        applied=None,
        effective_ms=None,
        reason="rejected",
    )
    assert AuditEntry.from_json(json.loads(entry.line)) == entry
    assert entry.line.startswith('{"advisor":"scripted","applied":null,')
    with pytest.raises(ValueError, match="kind"):
        AuditEntry.from_json({**json.loads(entry.line), "kind": "guess"})
