"""PARAM: dynamic margin parameters behind deterministic guardrails (testing guide point 6).

A venue that changes margin and funding parameters while positions are open must change them
only on their trigger, announce them before they apply, respect a cooling period, not flap
around a threshold, and never let one advisor (model) output push a parameter past its bounds or
its maximum step. The checks drive the venue's controller through its control API (plugging
adversarial advisors, overriding its input signals relative to the published thresholds) and
read the outcome from the venue's ordinary reads (brackets, funding info) and its parameter
state. The audit log and the grace of open positions are in ``test_params_effects.py``.
"""

from __future__ import annotations

import itertools
from collections import Counter
from decimal import Decimal
from typing import Any

from harness.checks import CheckContext, check
from harness.oracle.guardrails import band_crossings, reversals
from harness.param_probe import (
    CALM,
    NEEDS,
    STRESSED,
    ParamProbe,
    changes_since,
    changes_table,
    decision_of,
    signal_levels,
)
from harness.params import AuditEntry, ParamChange
from harness.venue import Venue, VenueControl

D = Decimal
INSIDE_BAND = D("0.9")  # just under the threshold: inside every parameter's hysteresis band


@check("PARAM-001", needs=NEEDS)
async def test_parameter_changes_only_on_its_trigger_after_its_lead(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """A parameter changes only when its trigger holds, and only after its announcement lead.

    With every input signal inside the hysteresis band (90 % of the tightening threshold) the
    venue's own advisor proposes tightening, and nothing may be announced. Stressed (twice the
    threshold), each parameter is announced with ``effective − announced >= lead``; the
    venue's brackets and funding info show the old value until the effective time and the new
    one from then on. Calm again, the relaxing changes follow the same rule. Every change the
    venue made must be logged with a signal that satisfied its trigger.

    Source: perp-mechanics.md §10 (triggers, announced changes as first-class events)
    """
    probe = await ParamProbe.open(venue, control)
    specs = await probe.specs()
    start = venue.clock.now_ms()
    await control.configure_params(probe.symbol, advisor="default")
    await probe.set_signals(signal_levels(specs, INSIDE_BAND))
    await control.advance(60_000)
    in_band = changes_since(await probe.state(), start)
    ctx.equal(
        "changes announced while every signal is inside the hysteresis band",
        expected=D(0),
        observed=D(len(in_band)),
    )
    all_changes: list[ParamChange] = list(in_band)
    for phase, factor in (("tightening", STRESSED), ("relaxing", CALM)):
        phase_start = venue.clock.now_ms()
        await probe.set_signals(signal_levels(specs, factor))
        deadline = phase_start + max(s.cooling_ms for s in specs.values()) + 10_000
        changes: list[ParamChange] = []
        while venue.clock.now_ms() < deadline and not changes:
            await control.advance(5_000)
            changes = changes_since(await probe.state(), phase_start)
        ctx.require(
            f"{phase}: the venue announces changes (precondition)",
            bool(changes),
            expected="at least one change",
            observed=f"{len(changes)} changes",
        )
        if not changes:
            continue
        before = await probe.visible()
        first_effective = min(c.effective_ms for c in changes)
        await probe.advance_to(first_effective - 1_000)
        still = await probe.visible()
        for c in changes:
            spec = specs[c.name]
            ctx.at_least(
                f"{phase} {c.name}: lead between announcement and effect",
                limit=D(spec.lead_ms),
                observed=D(c.effective_ms - c.announced_ms),
                unit="ms",
            )
            if c.effective_ms > venue.clock.now_ms():
                ctx.equal(
                    f"{phase} {c.name}: shown 1 s before its effective time (the old value)",
                    expected=c.old,
                    observed=still[c.name],
                )
        await probe.advance_to(max(c.effective_ms for c in changes))
        after = await probe.visible()
        for c in changes:
            ctx.equal(
                f"{phase} {c.name}: shown at its effective time (the new value)",
                expected=c.new,
                observed=after[c.name],
            )
        shown = ", ".join(f"{n} {before[n]} -> {after[n]}" for n in before)
        ctx.note(f"{phase}, as the venue shows them: {shown}")
        all_changes += changes
    entries = await probe.source.param_audit(start)
    rows = []
    for c in all_changes:
        spec = specs[c.name]
        entry = decision_of(entries, c)
        signal = None if entry is None else entry.inputs.get(spec.signal)
        tightening = spec.tightens(c.old, c.new)
        threshold = spec.tighten_at if tightening else spec.relax_at
        held = signal is not None and (signal >= threshold if tightening else signal <= threshold)
        rows.append([c.name, "tighten" if tightening else "relax", str(signal), str(threshold)])
        ctx.require(
            f"{c.name} {c.old} -> {c.new}: the trigger held at the decision",
            held,
            expected=f"{spec.signal} {'>=' if tightening else '<='} {threshold}",
            observed=f"{spec.signal} = {signal}" if entry else "no decision logged",
        )
    ctx.add_evidence("changes", changes_table("Changes announced", all_changes, start))
    ctx.add_evidence(
        "triggers",
        {
            "type": "table",
            "title": "Trigger at each change",
            "columns": ["parameter", "direction", "signal at decision", "threshold"],
            "rows": rows,
        },
    )


@check("PARAM-002", needs=NEEDS)
async def test_no_second_change_within_the_cooling_period(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """No parameter changes twice within its cooling period.

    An advisor that proposes the extreme every decision, under stressed signals, is held back
    by the cooling period alone: consecutive announcements (and effective times) of one
    parameter must be at least ``cooling_ms`` apart.

    Source: perp-mechanics.md §10 (cooling periods; oscillation risk)
    """
    probe = await ParamProbe.open(venue, control)
    specs = await probe.specs()
    start = venue.clock.now_ms()
    await probe.set_signals(signal_levels(specs, STRESSED))
    await control.configure_params(probe.symbol, advisor="extreme")
    cooling = max(s.cooling_ms for s in specs.values())
    await control.advance(2 * cooling + 30_000)
    state = await probe.state()
    rows = []
    pairs = 0
    for name, spec in specs.items():
        changes = changes_since(state, start, name)
        for a, b in itertools.pairwise(changes):
            pairs += 1
            gap = D(b.announced_ms - a.announced_ms)
            rows.append([name, str(a.new), str(b.new), str(gap), str(spec.cooling_ms)])
            ctx.at_least(
                f"{name}: time between announcements {a.new} and {b.new}",
                limit=D(spec.cooling_ms),
                observed=gap,
                unit="ms",
            )
            ctx.at_least(
                f"{name}: time between effective times {a.new} and {b.new}",
                limit=D(spec.cooling_ms),
                observed=D(b.effective_ms - a.effective_ms),
                unit="ms",
            )
    ctx.require(
        "consecutive changes were observed (precondition)",
        pairs > 0,
        expected="at least one pair",
        observed=str(pairs),
    )
    ctx.add_evidence(
        "gaps",
        {
            "type": "table",
            "title": "Consecutive changes",
            "columns": ["parameter", "first", "second", "gap (ms)", "cooling (ms)"],
            "rows": rows,
        },
    )


@check("PARAM-003", needs=NEEDS)
async def test_a_signal_oscillating_at_the_threshold_does_not_flip_parameters(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """A signal oscillating around its threshold produces no more flips than band crossings.

    The venue's own advisor runs while each signal alternates every 150 s between 120 % and
    80 % of its tightening threshold, never reaching the relaxing threshold. With hysteresis
    the parameters may tighten but must not reverse direction more often than the signal
    crosses the whole band (here: never).

    Source: perp-mechanics.md §10 (hysteresis prevents flapping; Binance's asymmetric rule)
    """
    probe = await ParamProbe.open(venue, control)
    specs = await probe.specs()
    start = venue.clock.now_ms()
    await control.configure_params(probe.symbol, advisor="default")
    high, low = D("1.2"), D("0.8")
    levels: list[tuple[int, Decimal]] = []
    for i in range(12):
        factor = high if i % 2 == 0 else low
        levels.append((venue.clock.now_ms(), factor))
        await probe.set_signals(signal_levels(specs, factor))
        await control.advance(150_000)
    state = await probe.state()
    rows = []
    for name, spec in specs.items():
        changes = changes_since(state, start, name)
        series = [spec.tighten_at * f for _, f in levels]
        allowed = band_crossings(series, spec.tighten_at, spec.relax_at)
        flips = reversals(changes)
        rows.append([name, str(len(changes)), str(flips), str(allowed)])
        ctx.at_most(
            f"{name}: direction reversals",
            limit=D(allowed),
            observed=D(flips),
        )
    ctx.add_evidence(
        "flips",
        {
            "type": "table",
            "title": "Changes under an oscillating signal",
            "columns": ["parameter", "changes", "reversals", "band crossings"],
            "rows": rows,
        },
    )
    ctx.add_evidence(
        "changes", changes_table("Changes announced", changes_since(state, start), start)
    )


async def _phase(
    probe: ParamProbe, advisor: str, ms: int, start: int
) -> tuple[list[AuditEntry], list[ParamChange]]:
    phase_start = probe.venue.clock.now_ms()
    await probe.control.configure_params(probe.symbol, advisor=advisor)
    await probe.control.advance(ms)
    entries = [e for e in await probe.source.param_audit(phase_start) if e.kind == "decision"]
    return entries, changes_since(await probe.state(), max(start, phase_start))


def _outcome(entry: AuditEntry) -> tuple[str, str]:
    """What a decision came to, and its tone in the report."""
    if entry.rejected_by is not None:
        return f"rejected by {entry.rejected_by}", "bad"
    return ("announced", "good") if entry.applied is not None else ("no change", "neutral")


def _guardrail_evidence(
    entries: list[AuditEntry], phases: list[tuple[str, int, int]], start: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """For the report: every decision with a pass/fail cell per guardrail, and a timeline of the
    decisions per parameter under each advisor."""

    def t(ms: int) -> str:
        return format(D(ms - start) / 1000, "f")

    def cell(entry: AuditEntry, name: str) -> str:
        verdict = entry.verdict(name)
        return "-" if verdict is None or verdict.passed is None else str(verdict.passed)

    names = list(dict.fromkeys(v.name for e in entries for v in e.verdicts))
    table = {
        "type": "table",
        "title": "Each decision's guardrail verdicts (- : not evaluated after a rejection)",
        "columns": ["t (s)", "advisor", "parameter", "output", *names, "applied"],
        "status_columns": names,
        "rows": [
            [
                t(e.time_ms),
                e.advisor or "-",
                e.param,
                str(e.proposed),
                *(cell(e, n) for n in names),
                "-" if e.applied is None else str(e.applied),
            ]
            for e in entries
        ],
    }
    timeline = {
        "type": "timeline",
        "title": "The controller's decisions over time, per parameter",
        "x_label": "time since the first advisor (s)",
        "lanes": ["advisor", *sorted({e.param for e in entries})],
        "spans": [{"x0": t(a), "x1": t(b), "lane": "advisor", "label": n} for n, a, b in phases],
        "events": [
            {
                "x": t(e.time_ms),
                "lane": e.param,
                "kind": _outcome(e)[0],
                "tone": _outcome(e)[1],
                "label": f"{e.advisor}: {e.proposed} -> {e.applied} ({_outcome(e)[0]})",
            }
            for e in entries
        ],
    }
    return table, timeline


@check("PARAM-004", needs=NEEDS)
async def test_one_advisor_output_cannot_move_a_parameter_past_its_guardrails(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """No advisor output moves a parameter past its bounds or by more than its maximum step.

    No output — NaN, infinite, negative, reversed, stale, extreme — may. Under stressed signals
    (every trigger holds) adversarial advisors are plugged in turn. Invalid outputs (NaN,
    infinity, negative) and a reversed advisor (relaxing under stress) must announce nothing; a
    stale advisor nothing after its first answer; extreme and flip-flopping outputs may move a
    parameter at most one step per change, inside ``[lower, upper]``. Every value the venue
    announced or shows must lie within the bounds.

    Source: perp-mechanics.md §10; DESIGN.md guide point 6 (no single model output can flip
    market behaviour)
    """
    probe = await ParamProbe.open(venue, control)
    specs = await probe.specs()
    start = venue.clock.now_ms()
    await probe.set_signals(signal_levels(specs, STRESSED))
    cooling = max(s.cooling_ms for s in specs.values())
    rows = []
    logged: list[AuditEntry] = []
    phases: list[tuple[str, int, int]] = []
    for advisor, ms, may_move in (
        ("nan", 20_000, False),
        ("infinity", 20_000, False),
        ("negative", 20_000, False),
        ("reversed", 20_000, False),
        ("stale", 20_000, True),
        ("flip-flop", 30_000, True),
        ("extreme", cooling + 10_000, True),
    ):
        phase_start = venue.clock.now_ms()
        entries, changes = await _phase(probe, advisor, ms, start)
        logged += entries
        phases.append((advisor, phase_start, venue.clock.now_ms()))
        rejected = Counter(e.rejected_by or "none" for e in entries)
        if not may_move:
            ctx.equal(f"{advisor}: changes announced", expected=D(0), observed=D(len(changes)))
        if advisor == "stale":
            ctx.at_most(
                "stale: decisions that announced changes (only its first, fresh answer)",
                limit=D(1),
                observed=D(len({c.announced_ms for c in changes})),
            )
        for c in changes:
            spec = specs[c.name]
            ctx.within(
                f"{advisor}: {c.name} {c.old} -> {c.new} within bounds",
                low=spec.lower,
                high=spec.upper,
                observed=c.new,
            )
            ctx.at_most(
                f"{advisor}: {c.name} {c.old} -> {c.new} step",
                limit=spec.max_step,
                observed=abs(c.new - c.old),
            )
        rows.append(
            [
                advisor,
                str(len(entries)),
                ", ".join(f"{k}: {n}" for k, n in sorted(rejected.items())),
                "; ".join(f"{c.name} {c.old} -> {c.new}" for c in changes) or "-",
            ]
        )
    await control.advance(max(s.lead_ms for s in specs.values()))
    shown = await probe.visible()
    for name, spec in specs.items():
        ctx.within(
            f"{name} as the venue shows it at the end",
            low=spec.lower,
            high=spec.upper,
            observed=shown[name],
        )
    ctx.add_evidence(
        "advisors",
        {
            "type": "table",
            "title": "Adversarial advisors under stressed signals",
            "columns": ["advisor", "decisions logged", "first failed guardrail", "changes"],
            "rows": rows,
        },
    )
    verdicts, timeline = _guardrail_evidence(logged, phases, start)
    ctx.add_evidence("decisions", timeline)
    ctx.add_evidence("verdicts", verdicts)
