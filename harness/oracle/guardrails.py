"""Dynamic-parameter guardrails, re-derived from their published rules (perp-mechanics.md §10).

The oracle side of the PARAM checks: given a parameter's published :class:`ParamSpec`, the
inputs a venue logged and the advisor output it received, what must the guardrails have
decided? :func:`replay_audit` re-runs a venue's whole audit log through that rule and lists every
decision the venue logged differently. The rule (as the venue documents it, PROTOCOL.md
"Parameters"): an output must be a finite number, positive, and fresh (formed within one
decision interval, later than the previous output); a tightening change needs
``signal >= tighten_at`` and a relaxing one ``signal <= relax_at``; nothing may be pending and
``cooling_ms`` must have passed since the last announcement; the value is clamped into
``[lower, upper]``, then to ``current ± max_step``, then put on the tick grid (half-even); an
unchanged value announces nothing; a change is effective ``lead_ms`` after its decision.

Nothing here imports the simulator.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from harness.params import AuditEntry, ParamChange, ParamSpec

__all__ = [
    "ExpectedDecision",
    "GuardrailState",
    "ReplayMismatch",
    "band_crossings",
    "expected_decision",
    "replay_audit",
    "reversals",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectedDecision:
    """What the guardrails must decide: the first guardrail that rejects (``None``: none), the
    value announced (``None``: nothing) and when it takes effect."""

    rejected_by: str | None
    applied: Decimal | None
    effective_ms: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayMismatch:
    """One logged decision that the rule decides differently."""

    seq: int
    symbol: str
    param: str
    field: str
    expected: str
    logged: str


def _number(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def expected_decision(
    spec: ParamSpec,
    *,
    current: Decimal,
    proposed: str | None,
    signal: Decimal,
    now_ms: int,
    as_of_ms: int | None,
    previous_as_of_ms: int | None,
    last_announced_ms: int | None,
    pending: bool,
    decision_interval_ms: int,
) -> ExpectedDecision:
    """The guardrails' decision on one advisor output (module docstring)."""
    value = _number(proposed)
    if value is None or not value.is_finite():
        return ExpectedDecision(rejected_by="valid", applied=None, effective_ms=None)
    if value <= 0:
        return ExpectedDecision(rejected_by="sign", applied=None, effective_ms=None)
    if (
        as_of_ms is None
        or not now_ms - decision_interval_ms < as_of_ms <= now_ms
        or (previous_as_of_ms is not None and as_of_ms <= previous_as_of_ms)
    ):
        return ExpectedDecision(rejected_by="fresh", applied=None, effective_ms=None)
    tightening = (value - current) * spec.direction > 0
    triggered = signal >= spec.tighten_at if tightening else signal <= spec.relax_at
    if not triggered:
        return ExpectedDecision(rejected_by="trigger", applied=None, effective_ms=None)
    if pending or (last_announced_ms is not None and now_ms - last_announced_ms < spec.cooling_ms):
        return ExpectedDecision(rejected_by="cooling", applied=None, effective_ms=None)
    bounded = min(max(value, spec.lower), spec.upper)
    stepped = min(max(bounded, current - spec.max_step), current + spec.max_step)
    new = stepped.quantize(spec.tick, rounding=ROUND_HALF_EVEN)
    if new == current:
        return ExpectedDecision(rejected_by=None, applied=None, effective_ms=None)
    return ExpectedDecision(rejected_by=None, applied=new, effective_ms=now_ms + spec.lead_ms)


@dataclass(slots=True)
class GuardrailState:
    """What the rule needs to know about one parameter's past decisions: its current value (the
    last announced, else the base), the last announcement, when that change takes effect and
    the previous output's time. :meth:`decide` judges one decision, then follows the rule's
    outcome (never a venue's), so later expectations stay the rule's."""

    spec: ParamSpec
    decision_interval_ms: int
    current: Decimal
    last_announced_ms: int | None = None
    effective_ms: int | None = None
    previous_as_of_ms: int | None = None

    def decide(
        self, *, proposed: str | None, signal: Decimal, now_ms: int, as_of_ms: int | None
    ) -> ExpectedDecision:
        """The rule's decision on one advisor output at ``now_ms``; the state moves on with it."""
        expected = expected_decision(
            self.spec,
            current=self.current,
            proposed=proposed,
            signal=signal,
            now_ms=now_ms,
            as_of_ms=as_of_ms,
            previous_as_of_ms=self.previous_as_of_ms,
            last_announced_ms=self.last_announced_ms,
            pending=self.effective_ms is not None and self.effective_ms > now_ms,
            decision_interval_ms=self.decision_interval_ms,
        )
        self.previous_as_of_ms = as_of_ms
        if expected.applied is not None and expected.effective_ms is not None:
            self.current = expected.applied
            self.last_announced_ms = now_ms
            self.effective_ms = expected.effective_ms
        return expected


def _text(value: object) -> str:
    return "none" if value is None else str(value)


def replay_audit(
    entries: Iterable[AuditEntry],
    specs: Mapping[tuple[str, str], ParamSpec],
    *,
    decision_interval_ms: int,
) -> list[ReplayMismatch]:
    """Re-decide every logged ``decision`` entry from its logged inputs and advisor output.

    The state each decision depends on (current value, last announcement, pending change,
    previous output time) is tracked from the log itself, starting at each spec's base value;
    ``specs`` maps ``(symbol, parameter)`` to the published spec. Returns the fields where the
    venue's log differs from the rule: ``current``, ``rejected_by``, ``applied``,
    ``effective_ms``.
    """
    states = {
        k: GuardrailState(spec=s, decision_interval_ms=decision_interval_ms, current=s.base)
        for k, s in specs.items()
    }
    out: list[ReplayMismatch] = []
    for entry in entries:
        state = states.get((entry.symbol, entry.param))
        if entry.kind != "decision" or state is None:
            continue
        current = state.current
        expected = state.decide(
            proposed=entry.proposed,
            signal=entry.inputs.get(state.spec.signal, Decimal(0)),
            now_ms=entry.time_ms,
            as_of_ms=entry.as_of_ms,
        )
        compared = (
            ("current", current, entry.current),
            ("rejected_by", expected.rejected_by, entry.rejected_by),
            ("applied", expected.applied, entry.applied),
            ("effective_ms", expected.effective_ms, entry.effective_ms),
        )
        for name, want, got in compared:
            if want != got:
                out.append(
                    ReplayMismatch(
                        seq=entry.seq,
                        symbol=entry.symbol,
                        param=entry.param,
                        field=name,
                        expected=_text(want),
                        logged=_text(got),
                    )
                )
    return out


def reversals(changes: Sequence[ParamChange]) -> int:
    """How often consecutive changes of one parameter go opposite ways (a flip-flop)."""
    signs = [1 if c.new > c.old else -1 for c in changes if c.new != c.old]
    return sum(1 for a, b in itertools.pairwise(signs) if a != b)


def band_crossings(signal: Sequence[Decimal], tighten_at: Decimal, relax_at: Decimal) -> int:
    """How often ``signal`` crosses the whole hysteresis band (from ``>= tighten_at`` to
    ``<= relax_at`` or back): the most direction reversals a hysteresis may allow."""
    state: int | None = None
    count = 0
    for x in signal:
        side = 1 if x >= tighten_at else -1 if x <= relax_at else None
        if side is not None:
            if state is not None and side != state:
                count += 1
            state = side
    return count
