"""PARAM (continued): what an applied parameter change leaves behind (testing guide point 6).

Every change must be explained by the venue's audit log, which an independent re-implementation
of the documented guardrails must reproduce decision by decision, and a tightened margin
requirement must wait for its announced effective time before it can liquidate an open position.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import ROUND_HALF_EVEN, Decimal
from types import ModuleType

from harness.checks import CheckContext, check
from harness.model import Bracket, PricePath, Side, quantize_down
from harness.oracle.guardrails import replay_audit
from harness.param_probe import (
    CALM,
    NEEDS,
    STRESSED,
    ParamProbe,
    changes_since,
    decision_of,
    signal_levels,
)
from harness.params import GUARDRAILS, PARAM_NAMES, ParamChange, ParamSpec
from harness.probes import need, open_isolated, position_input, position_of
from harness.venue import Capability, Venue, VenueControl

D = Decimal


def _script_value(spec: ParamSpec, steps: Decimal) -> Decimal:
    """``steps`` maximum steps from the base in the stress direction."""
    return spec.base + spec.direction * steps * spec.max_step


@check("PARAM-005", needs=NEEDS)
async def test_the_audit_log_explains_every_change_and_replays(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """The audit log explains every applied change, and re-deciding it reproduces it.

    A scripted advisor sends valid, oversized, NaN, negative and infinite outputs, then the
    venue's own advisor relaxes. Every change the venue applied must have a decision entry
    listing every guardrail (valid, sign, fresh, trigger, cooling, bounds, max step, lead),
    all passed, whose applied value equals the change and what the venue shows. Re-running
    every logged decision from its logged inputs and output through an independent
    implementation of the documented guardrails must give the same outcome, value and
    effective time; the log is append-only (sequence 0, 1, 2, … in time order).

    Source: perp-mechanics.md §10; DESIGN.md guide point 6 (auditable guardrails)
    """
    probe = await ParamProbe.open(venue, control)
    state0 = await probe.state()
    specs = {n: s for n, s in state0.specs.items() if n in PARAM_NAMES}
    mmr, lev = specs["maint_margin_rate"], specs["max_leverage"]
    notional, cap = specs["max_notional"], specs["funding_cap"]
    start = venue.clock.now_ms()
    await probe.set_signals(signal_levels(specs, STRESSED))
    first: list[dict[str, Decimal]] = [
        {mmr.name: _script_value(mmr, D(3)), notional.name: D("NaN")},
        {lev.name: -lev.base, cap.name: D("Infinity")},
        {notional.name: _script_value(notional, D("0.5"))},
        {},
    ]
    await control.configure_params(probe.symbol, advisor="scripted", script=first)
    await control.advance(20_000)
    cooling = max(s.cooling_ms for s in specs.values())
    await control.advance(cooling)
    second: list[dict[str, Decimal]] = [
        {mmr.name: _script_value(mmr, D("1.5")), cap.name: _script_value(cap, D("0.5"))},
    ]
    await control.configure_params(probe.symbol, advisor="scripted", script=second)
    await control.advance(cooling + 5_000)
    await probe.set_signals(signal_levels(specs, CALM))
    await control.configure_params(probe.symbol, advisor="default")
    await control.advance(cooling + max(s.lead_ms for s in specs.values()) + 10_000)
    state = await probe.state()
    entries = await probe.source.param_audit()
    applied = [c for c in state.history if c.name in specs and c.announced_ms >= start]
    ctx.require(
        "changes were applied (precondition)",
        len(applied) >= 3,
        expected=">= 3 changes",
        observed=str(len(applied)),
    )
    for c in applied:
        entry = decision_of(entries, c)
        label = f"{c.name} {c.old} -> {c.new} at {c.effective_ms}"
        names = tuple(v.name for v in entry.verdicts) if entry else ()
        ctx.require(
            f"{label}: its decision lists every guardrail",
            names == GUARDRAILS,
            expected=", ".join(GUARDRAILS),
            observed=", ".join(names) if entry else "no decision entry",
        )
        ctx.require(
            f"{label}: every verdict passed",
            entry is not None and all(v.passed is True for v in entry.verdicts),
            expected="all passed",
            observed="no entry"
            if entry is None
            else ", ".join(f"{v.name}={v.passed}" for v in entry.verdicts),
        )
        ctx.equal(
            f"{label}: applied value in the log",
            expected=c.new,
            observed=None if entry is None else entry.applied,
        )
    shown = await probe.visible()
    for name, spec in specs.items():
        last = next((c for c in reversed(state.history) if c.name == name), None)
        ctx.equal(
            f"{name}: the venue shows the last applied value",
            expected=spec.base if last is None else last.new,
            observed=shown[name],
        )
    ours = [e for e in entries if e.time_ms >= start]
    mismatches = replay_audit(
        ours,
        {(probe.symbol, n): s for n, s in specs.items()},
        decision_interval_ms=state.decision_interval_ms,
    )
    ctx.equal(
        "logged decisions the replay decides differently",
        expected=D(0),
        observed=D(len(mismatches)),
    )
    seqs = [e.seq for e in entries]
    ctx.require(
        "the log is append-only: sequence 0..n-1 in time order",
        seqs == list(range(len(entries)))
        and all(a.time_ms <= b.time_ms for a, b in itertools.pairwise(entries)),
        expected=f"0..{len(entries) - 1}",
        observed=", ".join(map(str, seqs[:10])) + (" …" if len(seqs) > 10 else ""),
    )
    ctx.add_evidence(
        "replay",
        {
            "type": "table",
            "title": "Replay mismatches (logged vs re-decided)",
            "columns": ["seq", "parameter", "field", "replay", "logged"],
            "rows": [[str(m.seq), m.param, m.field, m.expected, m.logged] for m in mismatches[:20]],
        },
    )
    ctx.add_evidence(
        "decisions",
        {
            "type": "table",
            "title": "Decisions",
            "columns": ["seq", "t (s)", "parameter", "output", "first failed", "applied"],
            "rows": [
                [
                    str(e.seq),
                    format(D(e.time_ms - start) / 1000, "f"),
                    e.param,
                    str(e.proposed),
                    e.rejected_by or "-",
                    str(e.applied),
                ]
                for e in ours
                if e.kind == "decision"
            ][:40],
        },
    )


def _rescaled(brackets: tuple[Bracket, ...], first_rate: Decimal) -> tuple[Bracket, ...]:
    """The bracket table with every rate scaled so the first is ``first_rate`` (``cum`` by the
    recurrence, §4(a))."""
    factor = first_rate / brackets[0].maint_margin_ratio
    out, cum, prev = [], D(0), D(0)
    for i, b in enumerate(brackets):
        rate = b.maint_margin_ratio * factor
        if i:
            cum += b.notional_floor * (rate - prev)
        out.append(replace(b, maint_margin_ratio=rate, cum=cum))
        prev = rate
    return tuple(out)


@check(
    "PARAM-006",
    needs=NEEDS
    | {
        Capability.TRADE,
        Capability.CONTROL_ACCOUNTS,
        Capability.CONTROL_PRICES,
        Capability.READ_LIQUIDATIONS,
    },
)
async def test_a_tightened_requirement_waits_for_its_announced_time(
    venue: Venue, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """A position gets the announced grace before a tightened requirement can liquidate it.

    An isolated long is moved to a mark between its liquidation price under the current
    maintenance rate and the one under the next (one maximum step higher). The rate is then
    raised through the controller; until the announced effective time the position must not be
    liquidated by the new requirement and the venue's liquidation price must stay the old one.
    What the venue does at the effective time is recorded.

    Source: perp-mechanics.md §10 (an MMR increase can make accounts liquidatable without a
    price move; parameter changes as first-class events), §6 isolated liquidation price
    """
    probe = await ParamProbe.open(venue, control)
    specs = await probe.specs()
    mmr = specs["maint_margin_rate"]
    symbol = probe.symbol
    inst = (await venue.instruments())[symbol]
    mark0 = (await venue.mark(symbol)).mark_price
    trader = await control.create_account(D(10_000), label="isolated long at max leverage")
    qty = max(quantize_down(D(5000) / mark0, inst.step_size), inst.min_qty)
    pos = await open_isolated(trader, symbol, Side.BUY, qty, leverage=inst.max_leverage)
    brackets = await venue.brackets(symbol)
    new_rate = mmr.base + mmr.max_step
    old_lp = need(
        oracle.isolated_liquidation(
            position_input(pos, brackets), pos.isolated_wallet
        ).liquidation_price,
        "the liquidation price under the current rate",
    )
    new_lp = need(
        oracle.isolated_liquidation(
            position_input(pos, _rescaled(brackets, new_rate)), pos.isolated_wallet
        ).liquidation_price,
        "the liquidation price under the tightened rate",
    )
    old_lp = old_lp.quantize(inst.tick_size / 100, rounding=ROUND_HALF_EVEN)
    new_lp = new_lp.quantize(inst.tick_size / 100, rounding=ROUND_HALF_EVEN)
    target = ((old_lp + new_lp) / 2).quantize(inst.tick_size, rounding=ROUND_HALF_EVEN)
    index = (await venue.mark(symbol)).index_price
    await control.set_price_path(
        symbol, PricePath(points=((0, index), (20_000, target)), linear=True, name="to the gap")
    )
    await control.advance(60_000)
    settled = await venue.mark(symbol)
    ctx.within(
        "the mark sits between the old and the new liquidation price (precondition)",
        low=old_lp,
        high=new_lp,
        observed=settled.mark_price,
        unit="USDT",
    )
    start = venue.clock.now_ms()
    await probe.set_signals(signal_levels(specs, STRESSED))
    await control.configure_params(symbol, advisor="scripted", script=[{mmr.name: new_rate}])
    change: ParamChange | None = None
    while change is None and venue.clock.now_ms() < start + 30_000:
        await control.advance(5_000)
        found = changes_since(await probe.state(), start, mmr.name)
        change = found[0] if found else None
    announced = need(change, "the announced rate change")
    await probe.advance_to(announced.effective_ms - 1_000)
    early = [
        e
        for e in await trader.liquidations(symbol, since_ms=start)
        if e.time_ms < announced.effective_ms
    ]
    early_by_new = [e for e in early if e.trigger_mark is None or e.trigger_mark > old_lp]
    ctx.require(
        "no liquidation by the tightened requirement before its effective time",
        not early_by_new,
        expected=f"none before {announced.effective_ms}",
        observed=", ".join(f"at {e.time_ms} (mark {e.trigger_mark})" for e in early_by_new)
        or "none",
    )
    held = await position_of(trader, symbol)
    if held is not None:
        ctx.equal(
            "the venue's liquidation price 1 s before the effective time (old rate)",
            expected=old_lp,
            observed=held.liquidation_price,
            tolerance=inst.tick_size,
            unit="USDT",
        )
    await probe.advance_to(announced.effective_ms + 5_000)
    later = await trader.liquidations(symbol, since_ms=start)
    outcome = (
        f"liquidated at {later[0].time_ms} ({later[0].time_ms - announced.effective_ms} ms "
        "after the effective time)"
        if later
        else "not liquidated within 5 s of the effective time"
    )
    ctx.note(
        f"rate {announced.old} -> {announced.new} announced at {announced.announced_ms}, "
        f"effective {announced.effective_ms}; old LP {old_lp}, new LP {new_lp}, mark "
        f"{settled.mark_price}: {outcome}"
    )
    ctx.add_evidence(
        "grace",
        {
            "type": "table",
            "title": "Tightened maintenance rate and an open position",
            "columns": ["old rate", "new rate", "old LP", "new LP", "mark", "lead (ms)", "outcome"],
            "rows": [
                [
                    str(announced.old),
                    str(announced.new),
                    str(old_lp),
                    str(new_lp),
                    str(settled.mark_price),
                    str(announced.effective_ms - announced.announced_ms),
                    outcome,
                ]
            ],
        },
    )
