"""FUND: small funding transfers compound over cycles (testing guide point 5) — several cycles.

An isolated position is followed through successive settlements and compared with the oracle's
compounded projection; a funding-interval change is followed across its announced funding time.
One settlement at a time (rate, payment, zero-sum) is in ``test_funding.py``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from types import ModuleType
from typing import Any

from harness.checks import CheckContext, check
from harness.funding_probe import (
    HOUR_MS,
    IntervalObservation,
    PremiumSampler,
    advance_to,
    funding_paid,
    funding_symbol,
    hourly_symbol,
    settlement_at,
)
from harness.model import Position, Side, quantize_down
from harness.oracle import FundingCycle, FundingProjection
from harness.probes import need, open_isolated, position_input, position_of
from harness.venue import Capability, Venue, VenueControl

D = Decimal
OBSERVE = {
    Capability.READ_FUNDING,
    Capability.CONTROL_CLOCK,
    Capability.CONTROL_PRICES,
    Capability.CONTROL_FUNDING,
}
TRADING = OBSERVE | {Capability.TRADE, Capability.CONTROL_ACCOUNTS}


def _shown(value: Decimal | None, unit: Decimal) -> str:
    return "--" if value is None else format(value.quantize(unit, rounding=ROUND_HALF_EVEN), "f")


@check("FUND-004", needs=TRADING | {Capability.READ_BRACKETS})
async def test_funding_compounds_into_the_maintenance_buffer(
    venue: Venue, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """Over N ≥ 3 settlements an isolated position's wallet follows the compounded projection.

    Under a persistent premium an isolated long pays every interval. After each settlement the
    venue's isolated wallet must equal the oracle's projection exactly (each payment s × Q ×
    mark × F rounded by the venue's rule, with the venue's published marks and rates), and its
    equity, maintenance margin and liquidation price must equal the projection's to the published
    precision (half a unit); margin ratio and distance to the liquidation price follow. Evidence:
    the cycles to liquidation if the last observed rate and mark persisted.

    Source: perp-mechanics.md §3(a) payment, §3(d) proportionality, §4 tiers, §6 isolated
    liquidation price, §10 funding drain; testing guide point 5
    """
    rules = venue.rules
    unit = rules.atomic_unit
    symbol, info = await hourly_symbol(venue)
    inst = (await venue.instruments())[symbol]
    await control.set_quote_skew(symbol, D(100))
    await control.advance(60_000)  # the mark's basis window follows the premium before entry
    mark0 = (await venue.mark(symbol)).mark_price
    trader = await control.create_account(D(10_000), label="isolated long under funding")
    pos = await open_isolated(
        trader,
        symbol,
        Side.BUY,
        max(quantize_down(D(5000) / mark0, inst.step_size), inst.min_qty),
        leverage=50,
    )
    brackets = await venue.brackets(symbol)
    position = position_input(pos, brackets)
    wallet0 = pos.isolated_wallet
    funding_time = info.next_funding_time_ms
    rates: list[Decimal] = []
    marks: list[Decimal] = []
    rows: list[list[str]] = []
    for cycle in range(1, 4):
        await advance_to(venue, funding_time)
        event = await settlement_at(venue, symbol, funding_time)
        now = need(await position_of(trader, symbol), f"the position after cycle {cycle}")
        rates.append(event.funding_rate)
        marks.append(event.mark_price)
        ctx.equal(
            f"cycle {cycle}: the position is valued at the settlement's mark",
            expected=event.mark_price,
            observed=now.mark_price,
            unit="USDT",
        )
        projected = oracle.funding_projection(
            position,
            wallet0,
            rate=rates,
            mark=marks,
            unit=unit,
            rounding=rules.funding_payment_rounding,
        ).cycles[-1]
        paid, _ = await funding_paid(trader, symbol, funding_time)
        equity = now.isolated_wallet + now.unrealized_pnl
        _compare_cycle(ctx, cycle, projected, now, paid, equity, unit)
        rows.append(
            [
                str(cycle),
                str(event.funding_rate),
                str(event.mark_price),
                str(projected.payment),
                str(paid),
                str(projected.wallet),
                str(now.isolated_wallet),
                _shown(projected.equity, unit),
                str(equity),
                _shown(projected.maint_margin, unit),
                str(now.maint_margin),
                _shown(projected.liquidation_price, unit),
                str(now.liquidation_price),
            ]
        )
        funding_time = (await venue.mark(symbol)).next_funding_time_ms
    horizon = oracle.funding_projection(
        position,
        wallet0,
        rate=rates + [rates[-1]] * 997,
        mark=marks + [marks[-1]] * 997,
        unit=unit,
        rounding=rules.funding_payment_rounding,
    )
    left = horizon.cycles_to_liquidation
    ctx.add_evidence("drift", _drift_chart(symbol, horizon, observed=len(rows), last=left))
    ctx.add_evidence(
        "outlook",
        {
            "type": "table",
            "title": "If the last observed rate and mark persisted (oracle projection)",
            "columns": ["rate per interval", "interval (h)", "mark", "cycles to liquidation"],
            "rows": [
                [
                    str(rates[-1]),
                    str(info.interval_hours),
                    str(marks[-1]),
                    str(left) if left else "none within 1000",
                ]
            ],
        },
    )
    ctx.add_evidence(
        "cycles",
        {
            "type": "table",
            "title": "Projection (oracle) vs venue after each settlement",
            "columns": [
                "cycle",
                "F",
                "mark",
                "payment (oracle)",
                "paid (venue)",
                "wallet (oracle)",
                "wallet (venue)",
                "equity (oracle)",
                "equity (venue)",
                "maint. (oracle)",
                "maint. (venue)",
                "LP (oracle)",
                "LP (venue)",
            ],
            "rows": rows,
        },
    )


def _compare_cycle(
    ctx: CheckContext,
    cycle: int,
    projected: FundingCycle,
    now: Position,
    paid: Decimal,
    equity: Decimal,
    unit: Decimal,
) -> None:
    half = unit / 2
    ctx.equal(
        f"cycle {cycle}: payment = s × Q × mark × F rounded",
        expected=projected.payment,
        observed=paid,
        unit="USDT",
    )
    ctx.equal(
        f"cycle {cycle}: isolated wallet = compounded projection",
        expected=projected.wallet,
        observed=now.isolated_wallet,
        unit="USDT",
    )
    ctx.equal(f"cycle {cycle}: equity", expected=projected.equity, observed=equity, tolerance=half)
    ctx.equal(
        f"cycle {cycle}: maintenance margin",
        expected=projected.maint_margin,
        observed=now.maint_margin,
        tolerance=half,
    )
    lp = need(projected.liquidation_price, "a projected liquidation price")
    ctx.equal(
        f"cycle {cycle}: liquidation price",
        expected=lp,
        observed=now.liquidation_price,
        tolerance=half,
    )
    ratio = need(projected.margin_ratio, "a positive projected equity")
    # Published figures are within half a unit of the exact ones: propagate to the ratio.
    ctx.equal(
        f"cycle {cycle}: margin ratio = maintenance / equity",
        expected=ratio,
        observed=now.maint_margin / equity,
        tolerance=half * (1 + ratio) / (equity - half),
    )
    ctx.equal(
        f"cycle {cycle}: distance of the mark to the liquidation price",
        expected=need(projected.liquidation_distance, "a projected liquidation price"),
        observed=now.sign * (now.mark_price - need(now.liquidation_price, "a liquidation price")),
        tolerance=half,
    )


def _drift_chart(
    symbol: str, projection: FundingProjection, *, observed: int, last: int | None
) -> dict[str, Any]:
    shown = projection.cycles[: (last + 2) if last else 30]
    return {
        "type": "series",
        "title": f"{symbol} isolated long: equity and maintenance per funding cycle",
        "x_label": "funding cycle",
        "y_label": "USDT",
        "series": {
            "equity": [[str(c.cycle), format(c.equity, ".8f")] for c in shown],
            "maintenance": [[str(c.cycle), format(c.maint_margin, ".8f")] for c in shown],
            "wallet": [[str(c.cycle), format(c.wallet, ".8f")] for c in shown],
        },
        "vlines": [{"x": str(observed), "label": "observed until here"}]
        + ([{"x": str(last), "label": "liquidatable"}] if last else []),
    }


@check("FUND-005", needs=OBSERVE - {Capability.CONTROL_PRICES})
async def test_interval_switch_applies_from_its_announced_funding_time(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """A funding-interval change applies from its announced funding time, not before.

    The change is announced for the first funding time at least the venue's notice away. Until
    then the old schedule holds — including the time to funding and interval the venue publishes
    for P1 — and the settlement at the announced time still closes the old interval with the old
    scaling; after it no settlement follows on the old schedule and the next one comes exactly one
    new interval later with the new scaling. Rates are compared with the oracle on premiums the
    harness samples itself; the published schedule is checked at every 5 s sample.

    Source: perp-mechanics.md §10 funding-interval switching; §3(a) F = F8 / (8/N); §2(a) V1 P1
    """
    rules = venue.rules
    symbol = await funding_symbol(venue)
    before = await venue.funding_info(symbol)
    old_ms = before.interval_hours * HOUR_MS
    new_hours = 2 if before.interval_hours == 1 else 1
    new_ms = new_hours * HOUR_MS
    effective = before.next_funding_time_ms
    while effective < venue.clock.now_ms() + rules.funding_announcement_ms:
        effective += old_ms
    await control.schedule_funding_interval(symbol, new_hours, effective)
    announced = await venue.funding_info(symbol)
    ctx.require(
        "the venue shows the pending change",
        (announced.pending_interval_hours, announced.pending_effective_ms)
        == (new_hours, effective),
        expected=f"{new_hours} h from {effective}",
        observed=f"{announced.pending_interval_hours} h from {announced.pending_effective_ms}",
    )
    sampler = PremiumSampler(venue, symbol)
    tolerance = D(1).scaleb(-rules.funding_rate_decimals) / 2
    while venue.clock.now_ms() < effective:
        obs = await sampler.observe_interval()
        _expect_settlement(ctx, obs, tolerance, f"old {before.interval_hours} h schedule")
    first_new = await sampler.observe_interval()
    ctx.equal(
        "the interval after the switch is announced with the new length",
        expected=D(new_hours),
        observed=D(first_new.info.interval_hours),
        unit="h",
    )
    _expect_settlement(ctx, first_new, tolerance, f"new {new_hours} h schedule")
    settled = [e.funding_time_ms for e in await venue.funding_history(symbol, since_ms=effective)]
    ctx.require(
        "settlements from the switch on: at the switch, then one new interval later only",
        settled == [effective, effective + new_ms],
        expected=f"[{effective}, {effective + new_ms}]",
        observed=str(settled),
    )

    def scheduled(t: int) -> tuple[int, int]:
        """(next funding time, interval) the announced schedule gives at time ``t``."""
        if t < effective:
            return effective - (effective - t - 1) // old_ms * old_ms, old_ms
        return effective + ((t - effective) // new_ms + 1) * new_ms, new_ms

    samples = [s for obs in sampler.intervals for s in obs.samples]
    off = [s for s in samples if (s.next_funding_ms, s.interval_ms) != scheduled(s.time_ms)]
    ctx.equal(
        f"samples whose published time to funding or interval is off the schedule (of "
        f"{len(samples)})",
        expected=D(0),
        observed=D(len(off)),
    )
    shown = {effective - 5_000, effective, effective + 5_000, effective + new_ms - 5_000}
    shown.update(s.time_ms for s in off[:5])
    ctx.add_evidence("premium", sampler.evidence(f"{symbol} premiums around the switch"))
    ctx.add_evidence(
        "schedule",
        {
            "type": "table",
            "title": f"{symbol}: {before.interval_hours} h → {new_hours} h from {effective}",
            "columns": ["time", "next funding (venue)", "interval ms (venue)", "announced"],
            "rows": [
                [
                    str(s.time_ms),
                    str(s.next_funding_ms),
                    str(s.interval_ms),
                    str(scheduled(s.time_ms)),
                ]
                for s in samples
                if s.time_ms in shown or s is samples[0] or s is samples[-1]
            ],
        },
    )


def _expect_settlement(
    ctx: CheckContext, obs: IntervalObservation, tolerance: Decimal, schedule: str
) -> None:
    event = obs.event
    ctx.require(
        f"a settlement at {obs.funding_time_ms} ({schedule})",
        event is not None,
        expected="a funding event",
        observed="none" if event is None else str(event.funding_rate),
    )
    if event is not None:
        ctx.equal(
            f"rate at {obs.funding_time_ms} scaled for N = {obs.info.interval_hours} h",
            expected=obs.expected_rate,
            observed=event.funding_rate,
            tolerance=tolerance,
        )
