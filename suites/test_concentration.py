"""CONC: concentration warnings as a sizing input (testing guide point 8).

A venue that warns about concentration publishes, per account and symbol, the position's share of
open interest and of the book depth inside its liquidation band, a warning level for each by its
documented thresholds, and a size advice: the largest position whose forced close stays within a
slippage budget (harness/concentration.py). The oracle recomputes all of it from what the venue
shows anyone: its book, every position (open interest) and the position's liquidation price
(harness/oracle/concentration.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from harness.checks import CheckContext, check
from harness.concentration import Concentration, ConcentrationThresholds, read_concentration
from harness.model import Instrument, MarginMode, Position, Side, quantize_down, quantize_up
from harness.oracle.concentration import (
    advised_size,
    close_slippage,
    expected_concentration,
    open_interest,
)
from harness.probes import attempt, describe, limit, market, need, position_of
from harness.venue import Account, Capability, Venue, VenueControl

BTC = "BTCUSDT"
SHARE_TOLERANCE = Decimal("1e-12")  # shares are exact ratios; this only absorbs precision
BPS = Decimal(10_000)


def _fmt(value: Decimal | None, places: str = "0.000001") -> str:
    return "—" if value is None else format(value.quantize(Decimal(places)), "f")


async def _positions(control: VenueControl) -> list[Position]:
    return [p for acct in await control.population() for p in acct.positions]


def _probes(
    inst: Instrument,
    thresholds: ConcentrationThresholds,
    *,
    crowd: Decimal,
    depth: Decimal,
    gap: Decimal,
) -> list[tuple[str, Decimal, Decimal]]:
    """``(threshold name, qty just below, qty at or above)`` for each threshold.

    With the crowd's long ``C`` and ours ``q`` the only open interest, our share is
    ``q / (q + C)``: it reaches ``t`` from ``q = t·C / (1 − t)``; our depth share ``q / D``
    reaches ``t`` from ``q = t·D``. The qty above is the first on the step grid at or past
    the threshold, the qty below ``gap`` (the smallest order the venue takes) under it.
    """
    step = inst.step_size
    out = []
    for name, level, value in (
        *((f"open interest {lv.value}", lv, t) for lv, t in thresholds.oi()),
        *((f"depth {lv.value}", lv, t) for lv, t in thresholds.depth()),
    ):
        del level
        start = value * crowd / (1 - value) if name.startswith("open") else value * depth
        above = quantize_up(start, step)
        out.append((f"{name} ({format(value, 'f')})", above - gap, above))
    return sorted(out, key=lambda p: p[1])


@check(
    "CONC-001",
    needs={
        Capability.TRADE,
        Capability.CONTROL_ACCOUNTS,
        Capability.CONTROL_PRICES,
        Capability.READ_CONCENTRATION,
        Capability.READ_POPULATION,
    },
)
async def test_warning_levels_at_documented_thresholds(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """Concentration levels change exactly at the venue's documented thresholds.

    On a thin BTCUSDT book, a crowd account holds a long of twice the bid depth (the only other
    open interest); our isolated 20x long then grows across each threshold of the open-interest
    share and of the depth share (closing-side depth at prices no worse than the position's
    liquidation price), and is read just below and at or above each one. At every probe the
    venue's shares and levels must equal the oracle's, computed from the venue's book, every
    account's positions and the position's liquidation price, with the thresholds the venue
    documents. A venue whose levels lag its documented thresholds warns too late.

    Source: perp-mechanics.md §14 forced flow vs depth; testing guide point 8 (DESIGN.md)
    """
    await control.set_depth_profile(BTC, "thin")
    inst = (await venue.instruments())[BTC]
    book = await venue.order_book(BTC, 500)
    bid, ask = need(book.best_bid, "a bid"), need(book.best_ask, "an ask")
    price = quantize_down((bid + ask) / 2, inst.tick_size)
    ctx.require(
        "(precondition) a price strictly inside the spread",
        bid < price < ask,
        expected=f"in ({bid}, {ask})",
        observed=str(price),
    )
    depth = sum((q for _, q in book.bids), Decimal(0))
    crowd_qty = quantize_down(2 * depth, inst.step_size)
    gap = quantize_up(inst.min_notional * Decimal("1.05") / price, inst.step_size)
    seller = await control.create_account(Decimal(100_000_000), label="conc seller")
    crowd = await control.create_account(Decimal(10_000_000), label="conc crowd")
    ours = await control.create_account(Decimal(100_000), label="conc trader")
    # Everything trades against the seller's offer inside the spread: the maker's book (the
    # depth measured) is never touched.
    await seller.place_order(limit(BTC, Side.SELL, 4 * crowd_qty, price))
    await crowd.place_order(market(BTC, Side.BUY, crowd_qty))
    await ours.set_margin_mode(BTC, MarginMode.ISOLATED)
    await ours.set_leverage(BTC, 20)
    thresholds = (await read_concentration(venue, ours.account_id, BTC)).thresholds
    probes = _probes(inst, thresholds, crowd=crowd_qty, depth=depth, gap=gap)
    targets = sorted({q for _, below, above in probes for q in (below, above)})
    ctx.require(
        "(precondition) probes far enough apart to be orders the venue takes",
        all(b - a >= gap for a, b in zip([Decimal(0), *targets], targets, strict=False)),
        expected=f"consecutive sizes >= {gap} apart",
        observed=", ".join(str(t) for t in targets),
    )
    held = Decimal(0)
    rows: list[list[str]] = []
    seen: dict[Decimal, tuple[Concentration, Any]] = {}
    for target in targets:
        if target - held < gap:
            continue
        order = await ours.place_order(market(BTC, Side.BUY, target - held))
        ctx.require(
            f"(precondition) bought {target - held} at {price}",
            order.executed_qty == target - held and order.avg_price == price,
            expected=f"{target - held} at {price}",
            observed=f"{order.executed_qty} at {order.avg_price}",
        )
        held = target
        pos = need(await position_of(ours, BTC), "our position")
        snapshot = await venue.order_book(BTC, 500)
        oi = open_interest(await _positions(control), BTC)
        report = await read_concentration(venue, ours.account_id, BTC)
        seen[target] = (report, expected_concentration(pos, snapshot, oi, report.thresholds))
    for name, below, above in probes:
        for where, qty in (("below", below), ("at/above", above)):
            if qty not in seen:
                continue
            report, exp = seen[qty]
            label = f"{name}, {where}: {qty} BTC"
            ctx.equal(
                f"{label}: open-interest share",
                expected=exp.oi_share,
                observed=report.oi_share,
                tolerance=SHARE_TOLERANCE,
            )
            ctx.equal(
                f"{label}: depth in the liquidation band",
                expected=exp.band_depth,
                observed=report.band_depth,
                unit=inst.base_asset,
            )
            for what, want, got in (
                ("open-interest level", exp.oi_level, report.oi_level),
                ("depth level", exp.depth_level, report.depth_level),
                ("level", exp.level, report.level),
            ):
                ctx.require(
                    f"{label}: {what}", want == got, expected=want.value, observed=got.value
                )
            rows.append(
                [
                    name,
                    where,
                    str(qty),
                    f"{_fmt(report.oi_share)} / {_fmt(exp.oi_share)}",
                    f"{_fmt(report.depth_share)} / {_fmt(exp.depth_share)}",
                    f"{report.oi_level.value} / {exp.oi_level.value}",
                    f"{report.depth_level.value} / {exp.depth_level.value}",
                    f"{report.level.value} / {exp.level.value}",
                ]
            )
        if below in seen and above in seen:
            low, high = seen[below][1], seen[above][1]
            ctx.require(
                f"(precondition) {name}: the probes straddle the threshold",
                (low.oi_level, low.depth_level) != (high.oi_level, high.depth_level),
                expected="a different level on each side",
                observed=f"{low.level.value} below, {high.level.value} at/above",
            )
    ctx.add_evidence(
        "levels",
        {
            "type": "table",
            "title": f"Levels on both sides of each threshold (venue / oracle); crowd "
            f"{crowd_qty} BTC, bid depth {depth} BTC",
            "columns": [
                "threshold",
                "side",
                "position (BTC)",
                "OI share",
                "depth share",
                "OI level",
                "depth level",
                "level",
            ],
            "rows": rows,
        },
    )


@check(
    "CONC-002",
    needs={
        Capability.TRADE,
        Capability.CONTROL_ACCOUNTS,
        Capability.READ_CONCENTRATION,
    },
)
async def test_size_advice_keeps_forced_close_within_budget(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """The advised size's forced close stays within the slippage budget on the live book.

    The venue advises the largest long whose forced close fits a 5 bp budget against the best
    bid. The oracle walks the same book: the advice must be its largest size on the step grid
    (the advice fits, one step more does not). Then the advice is used: an account opens the
    advised long (buying from the asks, so the bids are untouched) and closes it at once with a
    reduce-only market sell, whose average must lie within the budget of the best bid the advice
    was given against. An advice blind to depth sends the close deep into the book.

    Source: perp-mechanics.md §14 forced flow vs depth (book walk); testing guide point 8
    """
    budget = Decimal(5)
    inst = (await venue.instruments())[BTC]
    trader: Account = await control.create_account(Decimal(5_000_000), label="conc sizing")
    await trader.set_leverage(BTC, 20)
    report = await read_concentration(
        venue, trader.account_id, BTC, side=Side.BUY, budget_bps=budget
    )
    book = await venue.order_book(BTC, 500)
    advice = report.advice
    expected = advised_size(book, Side.BUY, budget, inst.step_size)
    ctx.equal(
        "advised long size = the oracle's largest within budget",
        expected=expected.max_qty,
        observed=advice.max_qty,
        unit=inst.base_asset,
    )
    walked = close_slippage(book, Side.BUY, advice.max_qty) if advice.max_qty else Decimal(0)
    ctx.at_most(
        f"oracle's walk: closing the advised {advice.max_qty} costs",
        limit=budget,
        observed=walked if walked is not None else Decimal(10**6),
        unit="bps",
    )
    beyond = close_slippage(book, Side.BUY, advice.max_qty + inst.step_size)
    ctx.require(
        "oracle's walk: one step more exceeds the budget",
        beyond is None or beyond > budget,
        expected=f"> {budget} bps (or more than the book holds)",
        observed="more than the book holds" if beyond is None else f"{_fmt(beyond)} bps",
    )
    best_bid = need(book.best_bid, "a bid")
    ctx.require(
        "(precondition) the advice is quoted against the best bid",
        advice.reference_price == best_bid and advice.max_qty > 0,
        expected=f"reference {best_bid}, a size > 0",
        observed=f"reference {advice.reference_price}, size {advice.max_qty}",
    )
    ctx.equal(
        "(precondition) a flat account's headroom is the whole advice",
        expected=advice.max_qty,
        observed=report.headroom,
        unit=inst.base_asset,
    )
    opened = await attempt(trader, market(BTC, Side.BUY, report.headroom))
    pos = await position_of(trader, BTC)
    ctx.require(
        f"(precondition) opened the advised {advice.max_qty}",
        pos is not None,
        expected="a long",
        observed=describe(opened),
    )
    rows = [["advice", str(advice.max_qty), _fmt(advice.slippage_bps), _fmt(walked)]]
    if pos is not None:
        close = await attempt(trader, market(BTC, Side.SELL, pos.size, reduce_only=True))
        avg = None if isinstance(close, Exception) else close.avg_price
        slippage = Decimal(10**6) if avg is None else (best_bid - avg) / best_bid * BPS
        ctx.require(
            "(precondition) the forced close filled",
            avg is not None and not isinstance(close, Exception) and close.executed_qty == pos.size,
            expected=f"{pos.size} filled",
            observed=describe(close),
        )
        ctx.at_most(
            f"live close of {pos.size}: slippage against the best bid {best_bid}",
            limit=budget,
            observed=slippage,
            unit="bps",
        )
        rows.append(["live close", str(pos.size), "—", _fmt(slippage)])
    ctx.add_evidence(
        "advice",
        {
            "type": "table",
            "title": f"Size advice for a {budget} bp forced-close budget (BTCUSDT long)",
            "columns": ["", "size (BTC)", "venue slippage (bps)", "walked slippage (bps)"],
            "rows": rows,
        },
    )
