"""LIQ: liquidation math with fees and conservative assumptions (testing guide point 3).

The oracle computes liquidation and bankruptcy prices from the venue's own brackets, wallet and
positions; the checks compare the venue's reported prices to the tick, then drive the index and
judge when the venue liquidates, what it charges, and who bears a shortfall.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from types import ModuleType
from typing import Any

from harness.checks import CheckContext, check
from harness.model import (
    Instrument,
    LiquidationEvent,
    MarginMode,
    Position,
    PricePath,
    Side,
    quantize_down,
)
from harness.probes import (
    drive_to_liquidation,
    limit,
    market,
    need,
    open_isolated,
    position_input,
    position_of,
)
from harness.streams import (
    AccountEvent,
    LiquidationOrderEvent,
    MarkEvent,
    OrderEvent,
    TradeEvent,
    select,
)
from harness.venue import Account, Capability, Venue, VenueControl

BTC = "BTCUSDT"
ETH = "ETHUSDT"
DRIVE = {
    Capability.TRADE,
    Capability.CONTROL_CLOCK,
    Capability.CONTROL_PRICES,
    Capability.READ_LIQUIDATIONS,
    Capability.READ_BRACKETS,
}


async def _isolated_quote(venue: Venue, oracle: ModuleType, pos: Position) -> Any:
    brackets = await venue.brackets(pos.symbol)
    return oracle.isolated_liquidation(position_input(pos, brackets), pos.isolated_wallet)


async def _close(account: Account, symbol: str) -> None:
    pos = await position_of(account, symbol)
    if pos is not None:
        side = Side.SELL if pos.quantity > 0 else Side.BUY
        await account.place_order(market(symbol, side, abs(pos.quantity), reduce_only=True))


@check("LIQ-001", needs={Capability.TRADE, Capability.READ_BRACKETS})
async def test_isolated_liquidation_price(
    venue: Venue, account: Account, oracle: ModuleType, ctx: CheckContext
) -> None:
    """The isolated liquidation price equals the oracle's to the tick, tier taken at the LP.

    LP = (WB + cum - s x Q x EP) / (Q x mmr - s x Q) with WB the isolated wallet and the bracket
    of the notional Q x LP (not Q x entry). Cases: a long and a short whose tier is the same at
    entry and at LP, and a long and a short whose tier at entry differs from the tier at LP.

    Source: perp-mechanics.md §6(a) Binance one-way formula, §6(d) tier fixed point, §4
    """
    inst = (await venue.instruments())[BTC]
    mark = (await venue.mark(BTC)).mark_price
    brackets = await venue.brackets(BTC)
    floor = brackets[1].notional_floor  # first tier boundary
    cases = [
        ("long, same tier", Side.BUY, Decimal("0.05")),
        ("short, same tier", Side.SELL, Decimal("0.05")),
        ("long, entry above the tier boundary, LP below", Side.BUY, floor * Decimal("1.02") / mark),
        (
            "short, entry below the tier boundary, LP above",
            Side.SELL,
            floor * Decimal("0.985") / mark,
        ),
    ]
    rows = []
    for label, side, raw_qty in cases:
        qty = raw_qty.quantize(inst.step_size)
        pos = await open_isolated(account, BTC, side, qty, leverage=20)
        quote = await _isolated_quote(venue, oracle, pos)
        entry_tier = oracle.bracket_for(brackets, abs(pos.quantity) * pos.entry_price).bracket
        lp_tier = quote.bracket.bracket if quote.bracket is not None else None
        rows.append(
            [
                label,
                str(pos.quantity),
                str(pos.entry_price),
                str(pos.isolated_wallet),
                str(entry_tier),
                str(lp_tier),
                str(quote.liquidation_price),
                str(pos.liquidation_price),
            ]
        )
        tiers = f"tier {entry_tier} at entry, {lp_tier} at LP"
        ctx.equal(
            f"{label}: LP of {pos.quantity} @ {pos.entry_price} ({tiers})",
            expected=quote.liquidation_price,
            observed=pos.liquidation_price,
            tolerance=inst.tick_size,
            unit="USDT",
        )
        if "boundary" in label:
            ctx.require(
                f"{label}: the case really crosses a tier boundary",
                lp_tier is not None and lp_tier != entry_tier,
                expected="tier at LP != tier at entry",
                observed=f"entry tier {entry_tier}, LP tier {lp_tier}",
            )
        await _close(account, BTC)
    ctx.add_evidence(
        "cases",
        {
            "type": "table",
            "title": "Isolated positions",
            "columns": [
                "case",
                "qty",
                "entry",
                "isolated wallet",
                "tier at entry",
                "tier at LP",
                "oracle LP",
                "venue LP",
            ],
            "rows": rows,
        },
    )


@check(
    "LIQ-002",
    needs={
        Capability.TRADE,
        Capability.READ_BRACKETS,
        Capability.CONTROL_PRICES,
        Capability.CONTROL_CLOCK,
    },
)
async def test_cross_liquidation_price_two_symbols(
    venue: Venue, account: Account, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """Cross liquidation prices equal the oracle's with positions in two symbols.

    For position B: LP = (WB - TMM1 + UPNL1 + cum_B - s x Q x EP) / (Q x mmr_B - s x Q), where
    TMM1 and UPNL1 are the other position's maintenance and PnL at its mark. Checked before and
    after the other symbol's mark moves (cross coupling).

    Source: perp-mechanics.md §6(a) Binance one-way formula, §6(d) cross coupling
    """
    instruments = await venue.instruments()
    await account.place_order(market(BTC, Side.BUY, Decimal("1.5")))
    await account.place_order(market(ETH, Side.SELL, Decimal("20")))
    rows = []
    for phase in ("after opening", "after ETH +3 %"):
        if phase != "after opening":
            eth_index = (await venue.mark(ETH)).index_price
            await control.set_price_path(ETH, PricePath(points=((0, eth_index * Decimal("1.03")),)))
            await control.advance(5 * venue.rules.mark_update_interval_ms)
        positions = [p for p in await account.positions() if p.margin_mode is MarginMode.CROSS]
        balance = await account.balance()
        inputs = [
            position_input(
                p, await venue.brackets(p.symbol), mark=(await venue.mark(p.symbol)).mark_price
            )
            for p in positions
        ]
        quotes = oracle.cross_liquidation(inputs, balance.cross_wallet_balance)
        for pos, quote in zip(positions, quotes, strict=True):
            rows.append(
                [
                    phase,
                    pos.symbol,
                    str(pos.quantity),
                    str(pos.entry_price),
                    str(balance.cross_wallet_balance),
                    str(quote.liquidation_price),
                    str(pos.liquidation_price),
                ]
            )
            ctx.equal(
                f"{phase}: cross LP of {pos.symbol} {pos.quantity} @ {pos.entry_price}",
                expected=quote.liquidation_price,
                observed=pos.liquidation_price,
                tolerance=instruments[pos.symbol].tick_size,
                unit="USDT",
            )
    ctx.add_evidence(
        "positions",
        {
            "type": "table",
            "title": "Cross positions",
            "columns": ["phase", "symbol", "qty", "entry", "cross wallet", "oracle LP", "venue LP"],
            "rows": rows,
        },
    )


@check("LIQ-003", needs=DRIVE | {Capability.CONTROL_ACCOUNTS})
async def test_no_liquidation_on_last_price_wick(
    venue: Venue, account: Account, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """No liquidation while the mark stays safe, even when the last price trades beyond the LP.

    The trigger is margin balance <= maintenance at the mark, never at the last price: a wick in a
    thin book that prints below a long's liquidation price must not liquidate it while the mark
    (median rule) stays above.

    Source: perp-mechanics.md §6(a) trigger table, §6(d) trigger consistency, §13.2
    """
    pos = await open_isolated(account, BTC, Side.BUY, Decimal("0.05"), leverage=50)
    quote = await _isolated_quote(venue, oracle, pos)
    lp = need(quote.liquidation_price, "an oracle liquidation price for a 50x long")
    await control.set_depth_profile(BTC, "thin")
    # A resting bid 1 % below the LP, then a seller sweeping every bid down to it.
    inst = (await venue.instruments())[BTC]
    deep_price = quantize_down(lp * Decimal("0.99"), inst.tick_size)
    bidder = await control.create_account(Decimal(1_000_000), label="deep bidder")
    await bidder.place_order(limit(BTC, Side.BUY, inst.min_qty * 5, deep_price))
    book = await venue.order_book(BTC, 1000)
    sweep = sum((q for _, q in book.bids), Decimal(0))
    seller = await control.create_account(Decimal(10_000_000), label="wick seller")
    await seller.place_order(market(BTC, Side.SELL, sweep))
    snapshot = await venue.mark(BTC)
    marks = [snapshot.mark_price]
    for _ in range(5):
        await control.advance(venue.rules.mark_update_interval_ms)
        marks.append((await venue.mark(BTC)).mark_price)
    events = [e for e in await venue.liquidations(BTC) if e.own]
    still = await position_of(account, BTC)
    ctx.at_most(
        "last price printed below the LP (precondition)",
        limit=lp,
        observed=snapshot.last_price or Decimal(0),
        unit="USDT",
    )
    ctx.at_least(
        "lowest mark during and after the wick stays above the LP",
        limit=lp,
        observed=min(marks),
        unit="USDT",
    )
    ctx.require(
        "no liquidation of the position",
        not events and still is not None and still.quantity == pos.quantity,
        expected=f"position {pos.quantity} intact, no liquidation",
        observed=(f"{len(events)} liquidation(s), position {still.quantity if still else 0}"),
    )
    ctx.add_evidence(
        "wick",
        {
            "type": "series",
            "title": "Mark after a last-price wick below the liquidation price",
            "x_label": "update",
            "y_label": "BTCUSDT price",
            "series": {"mark": [[str(i), format(m, "f")] for i, m in enumerate(marks)]},
            "hlines": [
                {"y": format(lp, "f"), "label": "liquidation price"},
                {"y": format(snapshot.last_price or 0, "f"), "label": "wick (last)"},
            ],
        },
    )


@check("LIQ-004", needs=DRIVE)
async def test_liquidation_at_first_mark_beyond_lp(
    venue: Venue, account: Account, oracle: ModuleType, ctx: CheckContext
) -> None:
    """Liquidation happens at the first mark at or beyond the liquidation price, not before.

    While the mark stays above a long's LP, equity > maintenance: no liquidation; at the first
    update whose mark is at or below it, equity <= maintenance: liquidation (non-strict trigger).
    One tick of tolerance either way.

    Source: perp-mechanics.md §6(a) trigger, §6(d) trigger consistency and LP identity, §13.1
    """
    inst = (await venue.instruments())[BTC]
    pos = await open_isolated(account, BTC, Side.BUY, Decimal("0.05"), leverage=20)
    quote = await _isolated_quote(venue, oracle, pos)
    lp = need(quote.liquidation_price, "an oracle liquidation price for a 20x long")
    drive = await drive_to_liquidation(venue, account, BTC, lp * Decimal("0.985"), updates=150)
    ctx.add_evidence(
        "drive",
        drive.evidence(
            BTC,
            "Index walked down through the liquidation price",
            hlines=[{"y": format(lp, "f"), "label": "oracle LP"}],
        ),
    )
    event = drive.event
    ctx.require(
        "the position was liquidated",
        event is not None,
        expected="a liquidation",
        observed="liquidated" if event else "none",
    )
    if event is None:
        return
    held = [s.mark for s in drive.steps if s.position is not None]
    ctx.at_least(
        "lowest mark seen before the liquidation (no liquidation was late)",
        limit=lp,
        observed=min(held),
        tolerance=inst.tick_size,
        unit="USDT",
    )
    ctx.at_most(
        "mark that triggered the liquidation (not premature)",
        limit=lp,
        observed=event.trigger_mark if event.trigger_mark is not None else drive.steps[-1].mark,
        tolerance=inst.tick_size,
        unit="USDT",
    )


def _liquidation_fills_total(fills: list[Any]) -> tuple[Decimal, Decimal]:
    realized = sum((f.realized_pnl for f in fills), Decimal(0))
    commission = sum((f.commission for f in fills), Decimal(0))
    return realized, commission


@check("LIQ-005", needs=DRIVE)
async def test_liquidation_fee(
    venue: Venue, account: Account, oracle: ModuleType, ctx: CheckContext
) -> None:
    """The liquidation fee is rate x liquidated notional, capped by the collateral left.

    Charged on the amount liquidated (fill price x quantity, not the position's notional),
    once, to the insurance fund; where the venue caps it, never more than what remains of the
    position's collateral after the close. Judged on the wallet change, the income record and
    the liquidation report.

    Source: perp-mechanics.md §5(a) liquidation fees, §5(d), §13.6
    """
    inst: Instrument = (await venue.instruments())[BTC]
    unit = venue.rules.atomic_unit
    pos = await open_isolated(account, BTC, Side.BUY, Decimal("0.05"), leverage=20)
    quote = await _isolated_quote(venue, oracle, pos)
    lp = need(quote.liquidation_price, "an oracle liquidation price for a 20x long")
    since = venue.clock.now_ms()
    drive = await drive_to_liquidation(venue, account, BTC, lp * Decimal("0.99"), updates=60)
    event: LiquidationEvent | None = drive.event
    ctx.require(
        "the position was liquidated",
        event is not None,
        expected="a liquidation",
        observed="liquidated" if event else "none",
    )
    if event is None:
        return
    before = need(drive.before, "the account just before the liquidating update")
    before_position = need(before.position, f"the {BTC} position before its liquidation")
    fills = [f for f in await account.fills(BTC, since_ms=since) if f.liquidation]
    realized, commission = _liquidation_fills_total(fills)
    wallet_after = (await account.balance()).wallet_balance
    charged = -(wallet_after - before.balance.wallet_balance - realized + commission)
    book_notional = (event.avg_price or Decimal(0)) * event.filled_qty
    rate = inst.liquidation_fee_rate or Decimal(0)
    surplus = before_position.isolated_wallet + realized - commission
    expected = oracle.round_to_unit(
        oracle.liquidation_fee(
            Decimal(1), book_notional, rate, surplus if venue.rules.liquidation_fee_capped else None
        ),
        unit,
        ROUND_HALF_UP,
    )
    recorded = -sum(
        (
            r.amount
            for r in await account.income(symbol=BTC, since_ms=since)
            if r.income_type.value == "INSURANCE_CLEAR"
        ),
        Decimal(0),
    )
    ctx.equal(
        "fee taken from the wallet",
        expected=expected,
        observed=charged,
        tolerance=unit,
        unit="USDT",
    )
    ctx.equal(
        "fee in the income history (INSURANCE_CLEAR)",
        expected=expected,
        observed=recorded,
        tolerance=unit,
        unit="USDT",
    )
    if event.fee is not None:
        ctx.equal(
            "fee in the liquidation report",
            expected=expected,
            observed=event.fee,
            tolerance=unit,
            unit="USDT",
        )
    ctx.add_evidence(
        "liquidation",
        {
            "type": "table",
            "title": "Liquidation accounting",
            "columns": [
                "liquidated qty",
                "avg price",
                "notional",
                "rate",
                "collateral left",
                "expected fee",
                "wallet change beyond PnL",
            ],
            "rows": [
                [
                    str(event.filled_qty),
                    str(event.avg_price),
                    str(book_notional),
                    str(rate),
                    str(surplus),
                    str(expected),
                    str(charged),
                ]
            ],
        },
    )
    ctx.add_evidence("drive", drive.evidence(BTC, "Walk to liquidation"))


@check("LIQ-006", needs=DRIVE | {Capability.READ_INSURANCE})
async def test_loss_capped_at_collateral(
    venue: Venue, account: Account, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """A liquidated position never loses more than its collateral; any shortfall is recorded.

    An isolated position's loss is bounded by its isolated margin even when the market gaps
    through the bankruptcy price; the deficit falls to the insurance fund, whose balance moves by
    fee - shortfall as reported.

    Source: perp-mechanics.md §8(a), §8(d) conservation and "reset to 0, never left negative", §13.7
    """
    unit = venue.rules.atomic_unit
    pos = await open_isolated(account, BTC, Side.BUY, Decimal("0.05"), leverage=20)
    quote = await _isolated_quote(venue, oracle, pos)
    bankruptcy = need(quote.bankruptcy_price, "an oracle bankruptcy price for a 20x long")
    await control.set_depth_profile(BTC, "thin")
    collateral = pos.isolated_wallet
    wallet_before = (await account.balance()).wallet_balance
    fund_before = (await venue.insurance_fund()).balance
    index = (await venue.mark(BTC)).index_price
    await control.set_price_path(
        BTC, PricePath(points=((0, index * Decimal("0.88")),), name="gap -12%")
    )
    await control.advance(venue.rules.mark_update_interval_ms)
    events = [e for e in await venue.liquidations(BTC) if e.own]
    gap_mark = (await venue.mark(BTC)).mark_price
    wallet_after = (await account.balance()).wallet_balance
    fund_after = (await venue.insurance_fund()).balance
    ctx.require(
        "the position was liquidated",
        bool(events),
        expected="a liquidation",
        observed=f"{len(events)} liquidation(s)",
    )
    ctx.at_most(
        "the gap took the mark through the bankruptcy price (precondition)",
        limit=bankruptcy,
        observed=gap_mark,
        unit="USDT",
    )
    ctx.at_most(
        "trader's loss (wallet before - after)",
        limit=collateral,
        observed=wallet_before - wallet_after,
        tolerance=unit,
        unit="USDT",
    )
    ctx.at_least("trader's wallet after", limit=Decimal(0), observed=wallet_after, unit="USDT")
    if events and events[0].fee is not None and events[0].shortfall is not None:
        event = events[0]
        ctx.at_least(
            "shortfall recorded for a gap through bankruptcy",
            limit=unit,
            observed=event.shortfall or Decimal(0),
            unit="USDT",
        )
        ctx.equal(
            "insurance fund change = fee - shortfall",
            expected=(event.fee or Decimal(0)) - (event.shortfall or Decimal(0)),
            observed=fund_after - fund_before,
            tolerance=unit,
            unit="USDT",
        )
    ctx.add_evidence(
        "gap",
        {
            "type": "table",
            "title": "Gap through the bankruptcy price",
            "columns": [
                "collateral",
                "bankruptcy price",
                "mark after gap",
                "wallet before",
                "wallet after",
                "fund change",
                "shortfall reported",
            ],
            "rows": [
                [
                    str(collateral),
                    str(bankruptcy),
                    str(gap_mark),
                    str(wallet_before),
                    str(wallet_after),
                    str(fund_after - fund_before),
                    str(events[0].shortfall if events else None),
                ]
            ],
        },
    )


@check("LIQ-009", needs=DRIVE | {Capability.READ_STREAMS})
async def test_liquidation_on_the_streams(
    venue: Venue, account: Account, oracle: ModuleType, ctx: CheckContext
) -> None:
    """Every liquidation appears on the liquidation-order stream and on the account's own stream.

    A trader learns of a forced close from the streams: each liquidation step of the account is
    one ``forceOrder`` event (side, quantity, average price, time as the venue's liquidation
    record); the user stream carries each liquidation execution (``x=CALCULATED``, order type
    ``LIQUIDATION``) with the fill's price, quantity and commission as the trade history has
    them, then the ``ACCOUNT_UPDATE`` whose balance change is the liquidation fee and whose
    position is what the venue shows afterwards — in that order.

    Source: binance-usdm-surface.md (forceOrder, ORDER_TRADE_UPDATE, ACCOUNT_UPDATE);
    perp-mechanics.md §5(a) liquidation fees, §6(a), §8
    """
    unit = venue.rules.atomic_unit
    inst = (await venue.instruments())[BTC]
    pos = await open_isolated(account, BTC, Side.BUY, Decimal("0.05"), leverage=20)
    quote = await _isolated_quote(venue, oracle, pos)
    lp = need(quote.liquidation_price, "an oracle liquidation price for a 20x long")
    stream = await venue.stream([BTC], account=account)
    try:
        await stream.drain()
        since = venue.clock.now_ms()
        drive = await drive_to_liquidation(venue, account, BTC, lp * Decimal("0.99"), updates=60)
        events = await stream.drain()
    finally:
        await stream.close()
    ctx.require(
        "the position was liquidated (precondition)",
        drive.event is not None,
        expected="a liquidation",
        observed="liquidated" if drive.event else "none",
    )
    steps = await account.liquidations(BTC, since_ms=since)
    fills = [f for f in await account.fills(BTC, since_ms=since) if f.liquidation]
    fee = -sum(
        (
            r.amount
            for r in await account.income(symbol=BTC, since_ms=since)
            if r.income_type.value == "INSURANCE_CLEAR"
        ),
        Decimal(0),
    )
    after = await position_of(account, BTC)
    forced = select(events, LiquidationOrderEvent, lambda e: e.symbol == BTC)
    reports = select(
        events, OrderEvent, lambda e: e.liquidation and e.execution_type == "CALCULATED"
    )
    ctx.equal(
        "forceOrder events = liquidation steps",
        expected=Decimal(len(steps)),
        observed=Decimal(len(forced)),
    )
    for i, (step, seen) in enumerate(zip(steps, forced, strict=False)):
        ctx.require(
            f"forceOrder {i + 1}: side, quantity and time as the liquidation record",
            (seen.side, seen.quantity, seen.time_ms) == (step.side, step.quantity, step.time_ms),
            expected=f"{step.side.value} {step.quantity} at {step.time_ms}",
            observed=f"{seen.side.value} {seen.quantity} at {seen.time_ms}",
        )
        if step.avg_price is not None and seen.avg_price is not None:
            ctx.equal(
                f"forceOrder {i + 1}: average price",
                expected=step.avg_price,
                observed=seen.avg_price,
                tolerance=inst.tick_size,
                unit="USDT",
            )
    ctx.equal(
        "liquidation executions on the user stream = liquidation fills",
        expected=Decimal(len(fills)),
        observed=Decimal(len(reports)),
    )
    for i, (fill, report) in enumerate(zip(fills, reports, strict=False)):
        ctx.require(
            f"execution {i + 1}: price, quantity, commission as the trade history",
            (report.last_price, report.last_qty, report.commission)
            == (fill.price, fill.qty, fill.commission),
            expected=f"{fill.qty} @ {fill.price}, commission {fill.commission}",
            observed=f"{report.last_qty} @ {report.last_price}, commission {report.commission}",
        )
    first_report = next((i for i, e in enumerate(events) if e in reports), None)
    updates = [
        (i, e)
        for i, e in enumerate(events)
        if isinstance(e, AccountEvent) and first_report is not None and i > first_report
    ]
    ctx.require(
        "an ACCOUNT_UPDATE follows the liquidation executions",
        bool(updates),
        expected="at least one, after the first execution",
        observed=f"{len(updates)}",
    )
    ctx.equal(
        "balance change on the user stream = -(liquidation fee)",
        expected=-fee,
        observed=sum((e.balance_change for _, e in updates), Decimal(0)),
        tolerance=unit,
        unit="USDT",
    )
    shown = [p.quantity for _, e in updates for p in e.positions if p.symbol == BTC]
    remaining = after.quantity if after is not None else Decimal(0)
    ctx.require(
        "position on the user stream after the liquidation = the venue's position",
        bool(shown) and shown[-1] == remaining,
        expected=f"{remaining} {inst.base_asset}",
        observed=f"{shown[-1]} {inst.base_asset}" if shown else "no position on the stream",
    )
    ctx.add_evidence(
        "streams",
        {
            "type": "table",
            "title": "What the streams showed",
            "columns": ["time", "stream", "event", "detail"],
            "rows": [_stream_row(e) for e in events if not isinstance(e, MarkEvent)][:60],
        },
    )
    ctx.add_evidence("drive", drive.evidence(BTC, "Walk to liquidation, watched on the streams"))


def _stream_row(event: object) -> list[str]:
    match event:
        case LiquidationOrderEvent():
            detail = f"{event.side.value} {event.quantity} avg {event.avg_price}"
            return [str(event.time_ms), "forceOrder", "liquidation order", detail]
        case OrderEvent():
            detail = f"{event.execution_type} {event.status} {event.last_qty} @ {event.last_price}"
            kind = "liquidation" if event.liquidation else "order"
            return [str(event.time_ms), "user", kind, detail]
        case AccountEvent():
            pos = ", ".join(f"{p.symbol} {p.quantity}" for p in event.positions)
            detail = f"{event.reason} wallet {event.wallet_balance} bc {event.balance_change} {pos}"
            return [str(event.time_ms), "user", "ACCOUNT_UPDATE", detail]
        case TradeEvent():
            detail = f"{event.qty} @ {event.price}"
            return [str(event.time_ms), "aggTrade", "trade", detail]
    return ["", "", type(event).__name__, ""]
