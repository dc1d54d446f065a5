"""PARAM boundaries: each guardrail acts exactly at its published limit (perp-mechanics.md §10).

The other PARAM checks drive the controller with signals far from their thresholds and outputs
far past the limits. Off-by-one rules (``>`` where the venue publishes ``>=``, a cooling period
counted from the wrong end, a step clamped one tick short) pass all of those; they show only
where a signal sits exactly on its threshold, an output exactly one step or one tick past it,
or a decision one interval before the cooling period ends. This check walks one parameter
through that grid with a scripted advisor and judges every decision by the published rule
(:func:`harness.oracle.guardrails.expected_decision`).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest

from harness.checks import CheckContext, check
from harness.oracle.guardrails import ExpectedDecision, GuardrailState
from harness.param_probe import NEEDS, ParamProbe
from harness.params import PARAM_NAMES, AuditEntry, ParamSpec
from harness.venue import Venue, VenueControl

#: The most maximum steps between a parameter's base and its far bound the grid walks.
MAX_WALK = 6


def _just_past(threshold: Decimal) -> Decimal:
    """A signal difference far below the threshold's own precision (``0.001`` -> ``1E-6``)."""
    return Decimal(1).scaleb(min(threshold.as_tuple().exponent, 0) - 3)  # type: ignore[operator]


@dataclass(frozen=True, slots=True)
class Case:
    """One decision of the grid: what it probes, the signal and output it is given, and the
    outcome the grid is built to produce (the rule's, by construction)."""

    name: str
    signal: Decimal
    output: Decimal
    intended: ExpectedDecision


def _far(spec: ParamSpec) -> Decimal:
    """The bound in the stress (tightening) direction."""
    return spec.upper if spec.direction > 0 else spec.lower


def _toward(spec: ParamSpec, current: Decimal, steps: Decimal) -> Decimal:
    return current + spec.direction * steps * spec.max_step


def _rejected(by: str) -> ExpectedDecision:
    return ExpectedDecision(rejected_by=by, applied=None, effective_ms=None)


def _applied(value: Decimal) -> ExpectedDecision:
    return ExpectedDecision(rejected_by=None, applied=value, effective_ms=None)


def _same(got: ExpectedDecision, want: ExpectedDecision) -> bool:
    """Outcome and value (the effective time is judged separately)."""
    return (got.rejected_by, got.applied) == (want.rejected_by, want.applied)


def _describe(d: ExpectedDecision) -> str:
    if d.rejected_by is not None:
        return f"rejected by {d.rejected_by}"
    return "no change" if d.applied is None else f"announced {d.applied}"


def _choose(specs: dict[str, ParamSpec]) -> ParamSpec | None:
    """The first parameter whose far bound is at least two steps and at most ``MAX_WALK`` steps
    from its base: room for an exact step, the cooling edge and the bound."""
    for name in PARAM_NAMES:
        spec = specs.get(name)
        if spec is None:
            continue
        room = (_far(spec) - spec.base) * spec.direction
        if 2 * spec.max_step <= room <= MAX_WALK * spec.max_step:
            return spec
    return None


async def _decide(
    probe: ParamProbe,
    spec: ParamSpec,
    interval_ms: int,
    at_ms: int,
    cases: list[Case],
) -> list[AuditEntry | None]:
    """Give ``cases`` to the decisions at ``at_ms``, ``at_ms + interval``, ...: the scripted
    advisor is plugged in right after the decision before ``at_ms``. Returns the venue's logged
    decision on the parameter at each of those times (``None``: it logged none)."""
    control, symbol = probe.control, probe.symbol
    await probe.advance_to(at_ms - interval_ms)
    times = [at_ms + i * interval_ms for i in range(len(cases))]
    found: list[AuditEntry | None] = []
    for when, case in zip(times, cases, strict=True):
        await control.set_param_signal(symbol, spec.signal, case.signal)
        await control.configure_params(
            symbol, advisor="scripted", script=[{spec.name: case.output}]
        )
        await probe.advance_to(when)
        entries = await probe.source.param_audit(when)
        found.append(
            next(
                (
                    e
                    for e in entries
                    if e.kind == "decision" and e.param == spec.name and e.time_ms == when
                ),
                None,
            )
        )
    return found


@check("PARAM-007", needs=NEEDS)
async def test_each_guardrail_acts_exactly_at_its_published_limit(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """Each guardrail acts exactly at its published limit, not one step before or after.

    One parameter is walked through a grid of decisions with a scripted advisor: a tightening
    output with its signal just below ``tighten_at`` (refused by the trigger) and exactly at it,
    one tick past a maximum step (announced, clamped to exactly one step); maximum steps on to
    one step from the far bound; an output one tick past the bound one decision interval before
    the cooling period ends (refused) and exactly when it ends (announced, clamped onto the
    bound), then again at the bound (nothing to change); a relaxing output with its signal just
    above ``relax_at`` (refused) and exactly at it (announced). Every decision the venue logged
    must equal the published rule's — first failing guardrail and value — and the venue must
    have announced exactly the rule's changes, each ``lead_ms`` ahead.

    Source: perp-mechanics.md §10 (triggers, cooling periods, hysteresis); the guardrail rule
    as harness/oracle/guardrails.py derives it
    """
    probe = await ParamProbe.open(venue, control)
    state = await probe.state()
    specs = {n: s for n, s in state.specs.items() if n in PARAM_NAMES}
    spec = _choose(specs)
    if spec is None:
        pytest.skip(f"{venue.name}: no parameter has 2 to {MAX_WALK} steps of room to its bound")
    if any(c.name == spec.name for c in (*state.history, *state.pending)):
        pytest.skip(f"{venue.name}: {spec.name} has changed already; the grid starts at its base")
    interval = state.decision_interval_ms
    d, step, tick = spec.direction, spec.max_step, spec.tick
    tighten, relax = spec.tighten_at, spec.relax_at
    far = _far(spec)
    # From an announcement (at a decision time), the first decision the next change may pass:
    # the cooling period over and the announced change in force (nothing pending).
    cooled = -(-max(spec.cooling_ms, spec.lead_ms) // interval) * interval

    rule_state = GuardrailState(spec=spec, decision_interval_ms=interval, current=spec.base)
    rows: list[list[str]] = []
    announced: list[tuple[int, Decimal, int]] = []  # the rule's (time, value, effective)
    start = venue.clock.now_ms()
    first = (start // interval + 2) * interval

    async def run(at_ms: int, cases: list[Case]) -> int:
        """Run ``cases`` from ``at_ms``; judge each; returns the time of the last."""
        entries = await _decide(probe, spec, interval, at_ms, cases)
        for i, (case, entry) in enumerate(zip(cases, entries, strict=True)):
            when = at_ms + i * interval
            row = [format(Decimal(when - start) / 1000, "f"), case.name]
            row += [str(case.signal), str(case.output)]
            if entry is None:
                ctx.require(
                    f"{case.name}: the decision at {when - start} ms is logged",
                    False,
                    expected=_describe(case.intended),
                    observed="no decision logged",
                )
                rows.append([*row, "-", _describe(case.intended), "no decision logged"])
                continue
            current = rule_state.current
            rule = rule_state.decide(
                proposed=str(case.output),
                signal=case.signal,
                now_ms=entry.time_ms,
                as_of_ms=entry.as_of_ms,
            )
            got = ExpectedDecision(
                rejected_by=entry.rejected_by, applied=entry.applied, effective_ms=None
            )
            ctx.require(
                f"{case.name}: signal {case.signal}, output {case.output}, current {current}",
                _same(got, rule),
                expected=_describe(rule),
                observed=_describe(got),
            )
            ctx.require(
                f"{case.name}: the grid's case is the boundary it names (the rule's outcome)",
                _same(rule, case.intended),
                expected=_describe(case.intended),
                observed=f"the rule gives: {_describe(rule)}",
            )
            if rule.applied is not None and rule.effective_ms is not None:
                announced.append((entry.time_ms, rule.applied, rule.effective_ms))
            verdicts = ", ".join(
                f"{v.name} {'-' if v.passed is None else v.passed}" for v in entry.verdicts
            )
            rows.append([*row, verdicts, _describe(rule), _describe(got)])
        return at_ms + (len(cases) - 1) * interval

    c0 = spec.base
    c1 = _toward(spec, c0, Decimal(1))
    # Trigger edge, and a maximum step overshot by one tick.
    last = await run(
        first,
        [
            Case(
                "trigger: tightening, signal just below tighten_at",
                tighten - _just_past(tighten),
                c1,
                _rejected("trigger"),
            ),
            Case(
                "trigger: tightening, signal exactly tighten_at; max step + 1 tick",
                tighten,
                c1 + d * tick,
                _applied(c1),
            ),
        ],
    )
    current = c1
    while (far - current) * d > step:  # on to one step from the bound (_choose bounds it)
        nxt = _toward(spec, current, Decimal(1))
        last = await run(last + cooled, [Case("walk: one max step", tighten, nxt, _applied(nxt))])
        current = nxt
    # Cooling edge: one interval early (refused), then when it ends; the output one tick past
    # the bound, which is at most one step away: clamped onto the bound.
    beyond = far + d * tick
    last = await run(
        last + cooled - interval,
        [
            Case(
                "cooling: one decision interval before it ends",
                tighten,
                beyond,
                _rejected("cooling"),
            ),
            Case(
                "cooling: exactly when it ends; one tick past the bound, clamped onto it",
                tighten,
                beyond,
                _applied(far),
            ),
        ],
    )
    current = far
    nothing = ExpectedDecision(rejected_by=None, applied=None, effective_ms=None)
    last = await run(
        last + cooled,
        [Case("bounds: at the bound, one tick past it changes nothing", tighten, beyond, nothing)],
    )
    # Relaxing edge (hysteresis): just above relax_at (refused), exactly at it (announced).
    back = _toward(spec, current, Decimal(-1))
    await run(
        last + cooled,
        [
            Case(
                "trigger: relaxing, signal just above relax_at",
                relax + _just_past(relax),
                back,
                _rejected("trigger"),
            ),
            Case("trigger: relaxing, signal exactly relax_at", relax, back, _applied(back)),
        ],
    )
    # What the venue announced: exactly the rule's changes, each lead_ms ahead.
    final = await probe.state()
    venue_changes = sorted(
        (c.announced_ms, c.new, c.effective_ms)
        for c in (*final.history, *final.pending)
        if c.name == spec.name and c.announced_ms >= start
    )
    ctx.require(
        f"{spec.name}: the changes the venue announced (time, value, effective)",
        venue_changes == announced,
        expected="; ".join(f"{t - start} ms: {v} from {e - start} ms" for t, v, e in announced),
        observed="; ".join(f"{t - start} ms: {v} from {e - start} ms" for t, v, e in venue_changes)
        or "none",
    )
    ctx.add_evidence(
        "grid",
        {
            "type": "table",
            "title": (
                f"{spec.name} at its limits (base {spec.base}, [{spec.lower}, {spec.upper}], "
                f"max step {step}, tick {tick}, {spec.signal} tighten at {tighten}, relax at "
                f"{relax}, cooling {spec.cooling_ms} ms, lead {spec.lead_ms} ms)"
            ),
            "columns": ["t (s)", "case", "signal", "output", "verdicts", "rule", "venue"],
            "rows": rows,
        },
    )
