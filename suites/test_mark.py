"""MARK: mark against index under fast moves (testing guide point 2).

The harness rebuilds each update's mark inputs from what it observes (index, funding rate, time
to funding, its own window of book-mid basis samples) and asks the oracle what the median rule
allows; the venue's published mark must stay inside that.
"""

from __future__ import annotations

import itertools
from decimal import ROUND_HALF_EVEN, Decimal
from types import ModuleType

from harness.checks import CheckContext, check
from harness.model import PricePath, Side
from harness.probes import (
    MarkTracker,
    fills_of,
    market,
    min_qty_for_notional,
    need,
    position_of,
    published_unit,
)
from harness.streams import MarkEvent, select
from harness.venue import Account, Capability, Venue, VenueControl

SYMBOL = "BTCUSDT"
CONTROL = {Capability.CONTROL_CLOCK, Capability.CONTROL_PRICES}


def _outside(mark: Decimal, band: tuple[Decimal, Decimal]) -> Decimal:
    """How far ``mark`` lies outside ``band`` (0 inside)."""
    low, high = band
    return max(low - mark, mark - high, Decimal(0))


async def _tick(venue: Venue) -> Decimal:
    return (await venue.instruments())[SYMBOL].tick_size


async def _sweep_bids(venue: Venue, control: VenueControl) -> Decimal:
    """Thin the book and sell into every bid from a fresh account; returns the last price."""
    await control.set_depth_profile(SYMBOL, "thin")
    book = await venue.order_book(SYMBOL, 1000)
    qty = sum((q for _, q in book.bids), Decimal(0))
    seller = await control.create_account(Decimal(10_000_000), label="wick seller")
    await seller.place_order(market(SYMBOL, Side.SELL, qty))
    return need((await venue.mark(SYMBOL)).last_price, f"a last price in {SYMBOL} after the sweep")


@check("MARK-001", needs=CONTROL)
async def test_mark_inside_band_under_fast_move(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """Under a fast index move, every mark stays inside [min(P1, P2), max(P1, P2)].

    V1 mark = median(P1, P2, last) with P1 = index x (1 + F x tau/T) and P2 = index + MA(basis);
    the median of three always lies between P1 and P2, whatever the last price does. Checked at
    every update while the index falls 8 % in 30 s, one tick of tolerance.

    Source: perp-mechanics.md §2(a) V1, §2(d) median bracketing
    """
    tick = await _tick(venue)
    tracker = MarkTracker(venue, SYMBOL)
    start = await tracker.warm_up()
    path = PricePath(
        points=((0, start.index), (30_000, start.index * Decimal("0.92"))),
        linear=True,
        name="fast move -8% in 30 s",
    )
    await control.set_price_path(SYMBOL, path)
    worst, worst_obs = Decimal(-1), start
    for _ in range(40):
        obs = await tracker.step()
        distance = _outside(obs.mark, obs.band)
        if distance > worst:
            worst, worst_obs = distance, obs
    end = tracker.observations[-1]
    worst_at = (worst_obs.time_ms - tracker.start_ms) / 1000
    ctx.add_evidence("mark under a fast move", tracker.evidence("Mark, index, last and the band"))
    ctx.at_most(
        f"largest distance of mark outside the band (at t={worst_at:g} s)",
        limit=Decimal(0),
        observed=worst,
        tolerance=tick,
        unit="USDT",
    )
    ctx.at_most(
        "index moved by the scenario (index end / start)",
        limit=Decimal("0.93"),
        observed=(end.index / start.index).quantize(Decimal("0.0001")),
    )


@check("MARK-002", needs=CONTROL | {Capability.CONTROL_ACCOUNTS})
async def test_wick_does_not_drag_mark(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """A last-price wick through a thin book moves the mark at most to the edge of the band.

    With P1 and P2 unchanged by a trade, mark = clamp(last, min(P1, P2), max(P1, P2)) exactly:
    one extreme print cannot drag the mark beyond the median rule.

    Source: perp-mechanics.md §2(d) exact closed form and median bracketing
    """
    tick = await _tick(venue)
    await control.set_depth_profile(SYMBOL, "thin")
    tracker = MarkTracker(venue, SYMBOL)
    await tracker.warm_up()
    last = await _sweep_bids(venue, control)
    obs = await tracker.now()
    for _ in range(3):
        await tracker.step()
    ctx.add_evidence("wick", tracker.evidence("Mark through a last-price wick"))
    ctx.at_most(
        "the wick printed below the band (precondition)",
        limit=obs.band[0],
        observed=last,
        unit="USDT",
    )
    ctx.equal(
        "mark right after the wick = clamp(last, P1, P2)",
        expected=obs.expected_mark,
        observed=obs.mark,
        tolerance=tick,
        unit="USDT",
    )
    ctx.at_least(
        "mark stays at or above the band's lower edge",
        limit=obs.band[0],
        observed=obs.mark,
        tolerance=tick,
        unit="USDT",
    )


@check("MARK-003", needs=CONTROL)
async def test_mark_follows_index_within_one_update(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """After an index jump, the next mark update lands inside the band around the new index.

    The mark is recomputed on every index update; P1 and P2 both move with the index, so one
    update after a jump the mark must be inside [min(P1, P2), max(P1, P2)] of the new index —
    checked for three consecutive jumps (-5 %, +5 %, -3 %).

    Source: perp-mechanics.md §2(d) monotonic response; binance-usdm-surface.md (markPrice@1s)
    """
    tick = await _tick(venue)
    tracker = MarkTracker(venue, SYMBOL)
    start = await tracker.warm_up()
    level = start.index
    for factor in (Decimal("0.95"), Decimal("1.05"), Decimal("0.97")):
        level = level * factor
        await control.set_price_path(
            SYMBOL, PricePath(points=((0, level),), name=f"jump x{factor}")
        )
        before = tracker.observations[-1].mark
        obs = await tracker.step()
        ctx.within(
            f"mark one update after a jump to {level:.1f} (mark before {before})",
            low=obs.band[0],
            high=obs.band[1],
            observed=obs.mark,
            tolerance=tick,
            unit="USDT",
        )
    ctx.add_evidence("index jumps", tracker.evidence("Mark following index jumps"))


@check("MARK-004", needs={Capability.TRADE, Capability.CONTROL_ACCOUNTS, Capability.CONTROL_PRICES})
async def test_pnl_and_margin_use_mark(
    venue: Venue,
    account: Account,
    control: VenueControl,
    oracle: ModuleType,
    ctx: CheckContext,
) -> None:
    """Unrealized PnL and maintenance margin are computed on the mark, not the last price.

    UPNL = s x Q x (mark - entry); maintenance = MM(Q x mark) from the brackets; margin balance =
    wallet + UPNL. Checked right after a wick moves the last price far from the mark.

    Source: perp-mechanics.md §2(d) (UPNL from mark, realized from execution), §4(a), §6(a)
    """
    inst = (await venue.instruments())[SYMBOL]
    unit = venue.rules.atomic_unit
    mark0 = (await venue.mark(SYMBOL)).mark_price
    await account.place_order(
        market(SYMBOL, Side.BUY, min_qty_for_notional(inst, mark0, Decimal(20)))
    )
    last = await _sweep_bids(venue, control)
    snapshot = await venue.mark(SYMBOL)
    pos = await position_of(account, SYMBOL)
    balance = await account.balance()
    pos = need(pos, f"the {SYMBOL} position the market buy opened")
    mark = snapshot.mark_price
    expected_upnl = oracle.round_to_unit(
        pos.quantity * (mark - pos.entry_price), unit, ROUND_HALF_EVEN
    )
    expected_mm = oracle.maintenance_margin(await venue.brackets(SYMBOL), abs(pos.quantity) * mark)
    ctx.add_evidence(
        "prices",
        {
            "type": "table",
            "title": "Position after the wick",
            "columns": ["quantity", "entry", "mark", "last", "UPNL reported", "UPNL on mark"],
            "rows": [
                [
                    str(pos.quantity),
                    str(pos.entry_price),
                    str(mark),
                    str(last),
                    str(pos.unrealized_pnl),
                    str(expected_upnl),
                ]
            ],
        },
    )
    ctx.at_least(
        "last price diverged from the mark (precondition)",
        limit=10 * inst.tick_size,
        observed=abs(mark - last),
        unit="USDT",
    )
    ctx.equal(
        "unrealized PnL = Q x (mark - entry)",
        expected=expected_upnl,
        observed=pos.unrealized_pnl,
        tolerance=unit,
        unit="USDT",
    )
    ctx.equal(
        "maintenance margin = MM(Q x mark)",
        expected=expected_mm,
        observed=pos.maint_margin,
        tolerance=unit,
        unit="USDT",
    )
    ctx.equal(
        "margin balance = wallet + UPNL on mark",
        expected=balance.wallet_balance + expected_upnl,
        observed=balance.margin_balance,
        tolerance=unit,
        unit="USDT",
    )


@check("MARK-005", needs=CONTROL | {Capability.READ_STREAMS})
async def test_mark_stream_cadence_and_never_ahead(
    venue: Venue, control: VenueControl, ctx: CheckContext
) -> None:
    """The mark-price stream publishes every update, on time, with the mark the venue applies.

    ``<symbol>@markPrice@1s`` carries one event per mark update (the documented interval apart,
    none missing, none repeated); each event is there once the update happened (before the next
    one) and carries the mark and index the venue's REST view shows for that update — so it is
    neither stale nor ahead of the index: the event's mark lies inside the median-rule band of
    its own update. Checked through an 8 % index fall in 30 s, one tick of tolerance.

    Source: binance-usdm-surface.md (markPrice@1s, premiumIndex); perp-mechanics.md §2(a) V1,
    §2(d) median bracketing
    """
    tick = await _tick(venue)
    interval = venue.rules.mark_update_interval_ms
    tracker = MarkTracker(venue, SYMBOL)
    stream = await venue.stream([SYMBOL])
    try:
        start = await tracker.warm_up()
        await stream.drain()
        path = PricePath(
            points=((0, start.index), (30_000, start.index * Decimal("0.92"))),
            linear=True,
            name="fast move -8% in 30 s",
        )
        await control.set_price_path(SYMBOL, path)
        events: list[MarkEvent] = []
        late, stale, worst = [], [], Decimal(0)
        for _ in range(35):
            obs = await tracker.step()
            arrived = select(await stream.drain(), MarkEvent, lambda e: e.symbol == SYMBOL)
            events.extend(arrived)
            mine = [e for e in arrived if e.time_ms == obs.time_ms]
            if not mine:
                late.append(obs.time_ms)
                continue
            event = mine[-1]
            if abs(event.mark - obs.mark) > tick or abs(event.index - obs.index) > tick:
                stale.append(
                    f"t={event.time_ms}: stream {event.mark}/{event.index}, "
                    f"REST {obs.mark}/{obs.index}"
                )
            worst = max(worst, _outside(event.mark, obs.band))
    finally:
        await stream.close()
    gaps = [b.time_ms - a.time_ms for a, b in itertools.pairwise(events)]
    off_cadence = [g for g in gaps if g != interval]
    chart = tracker.evidence("Mark from REST and from the stream, index, last and the band")
    chart["series"]["mark (stream)"] = [
        [format(Decimal(e.time_ms - tracker.start_ms) / 1000, "f"), format(e.mark, "f")]
        for e in events
    ]
    ctx.add_evidence("mark stream", chart)
    ctx.equal(
        "stream events during 35 updates", expected=Decimal(35), observed=Decimal(len(events))
    )
    ctx.require(
        f"consecutive events {interval} ms apart",
        not off_cadence,
        expected=f"every gap {interval} ms",
        observed=f"{len(off_cadence)} gap(s) off cadence, e.g. {off_cadence[:3]}",
    )
    ctx.require(
        "each update's event delivered before the next update",
        not late,
        expected="all",
        observed=f"{len(late)} update(s) without their event, e.g. t={late[:2]}",
    )
    ctx.require(
        "stream mark and index = the venue's mark and index of that update (one tick)",
        not stale,
        expected="equal",
        observed=f"{len(stale)} differ, e.g. {stale[:2]}",
    )
    ctx.at_most(
        "largest distance of a stream mark outside its update's band",
        limit=Decimal(0),
        observed=worst,
        tolerance=tick,
        unit="USDT",
    )


@check("MARK-006", needs={Capability.TRADE})
async def test_reported_upnl_is_valued_at_the_reported_mark(
    venue: Venue, account: Account, ctx: CheckContext
) -> None:
    """A position's reported unrealized PnL is its signed size times (its mark - its entry).

    Observational, for any venue that trades: a small long, then a small short, each opened with
    a market order and read back as the venue reports it. UPNL = Q x (mark - entry) with Q, the
    mark and the entry of that same record, to the venue's atomic unit (or to the last decimal
    place the venue publishes UPNL with, if coarser). Right after one's own market order the
    last price is that order's fill, so a venue that values positions at the last price reports
    about zero here while its mark sits elsewhere; at least one of the two cases must have a
    mark other than its own fill price (the median rule can make the mark equal the last price
    for a moment; a case where it does cannot tell the two apart).

    Source: perp-mechanics.md §2(d) (UPNL = side x (mark - entry) x size; realized PnL from
    execution prices)
    """
    inst = (await venue.instruments())[SYMBOL]
    unit = venue.rules.atomic_unit
    rows = []
    telling = 0  # cases whose mark differs from their own fill price
    for side in (Side.BUY, Side.SELL):
        mark0 = (await venue.mark(SYMBOL)).mark_price
        qty = min_qty_for_notional(inst, mark0, Decimal(2))
        order = await account.place_order(market(SYMBOL, side, qty))
        pos = need(
            await position_of(account, SYMBOL), f"the {SYMBOL} position the market order opened"
        )
        last = order.avg_price
        telling += last is not None and last != pos.mark_price
        expected = pos.quantity * (pos.mark_price - pos.entry_price)
        rows.append(
            [
                side.value,
                str(pos.quantity),
                str(pos.entry_price),
                str(pos.mark_price),
                "-" if last is None else str(last),
                str(pos.unrealized_pnl),
                str(expected),
            ]
        )
        ctx.equal(
            f"{side.value.lower()} {pos.quantity} @ {pos.entry_price}, mark {pos.mark_price}: "
            "UPNL = Q x (mark - entry)",
            expected=expected,
            observed=pos.unrealized_pnl,
            tolerance=published_unit(pos.unrealized_pnl, unit),
            unit="USDT",
        )
        close = Side.SELL if pos.quantity > 0 else Side.BUY
        await account.place_order(market(SYMBOL, close, abs(pos.quantity), reduce_only=True))
    ctx.require(
        "a case whose mark differs from its own fill price (it can tell mark from last)",
        telling > 0,
        expected=">= 1 of 2",
        observed=f"{telling} of 2",
    )
    ctx.add_evidence(
        "positions",
        {
            "type": "table",
            "title": "Each position as the venue reported it right after opening",
            "columns": [
                "side",
                "quantity",
                "entry",
                "mark",
                "own fill (average)",
                "UPNL reported",
                "Q x (mark - entry)",
            ],
            "rows": rows,
        },
    )


@check("MARK-007", needs={Capability.TRADE})
async def test_realized_pnl_uses_the_execution_price(
    venue: Venue, account: Account, ctx: CheckContext
) -> None:
    """A closing fill's realized PnL is closed size x (its own price - the entry), never the mark.

    Observational, for any venue that trades: a small long opened and closed with market orders,
    then a small short likewise. Each closing fill's realized PnL = s x q x (fill price - entry)
    with the entry the venue reported for the position before the close, to the venue's atomic
    unit (or the last decimal place it publishes the PnL with, if coarser); the opening fills
    realize nothing. At least one closing fill must be at a price other than the mark before its
    order (so the case can tell the execution price from the mark).

    Source: perp-mechanics.md §2(d) (realized PnL from execution prices, unrealized from the
    mark)
    """
    inst = (await venue.instruments())[SYMBOL]
    unit = venue.rules.atomic_unit
    rows = []
    telling = 0  # closing fills at a price other than the mark just before their order
    for side in (Side.BUY, Side.SELL):
        mark0 = (await venue.mark(SYMBOL)).mark_price
        opening = await account.place_order(market(SYMBOL, side, min_qty_for_notional(inst, mark0)))
        pos = need(
            await position_of(account, SYMBOL), f"the {SYMBOL} position the market order opened"
        )
        opened = await fills_of(venue, account, opening)
        ctx.equal(
            f"{side.value.lower()} {pos.quantity}: PnL realized by the opening fills",
            expected=Decimal(0),
            observed=sum((f.realized_pnl for f in opened), Decimal(0)),
            tolerance=unit,
            unit="USDT",
        )
        mark = (await venue.mark(SYMBOL)).mark_price
        close = Side.SELL if pos.quantity > 0 else Side.BUY
        order = await account.place_order(
            market(SYMBOL, close, abs(pos.quantity), reduce_only=True)
        )
        closing = await fills_of(venue, account, order)
        ctx.require(
            f"{close.value.lower()} closing {pos.quantity}: filled",
            sum((f.qty for f in closing), Decimal(0)) == abs(pos.quantity),
            expected=str(abs(pos.quantity)),
            observed=str(sum((f.qty for f in closing), Decimal(0))),
        )
        for fill in closing:
            telling += fill.price != mark
            expected = pos.sign * fill.qty * (fill.price - pos.entry_price)
            rows.append(
                [
                    str(pos.quantity),
                    str(pos.entry_price),
                    str(mark),
                    str(fill.price),
                    str(fill.qty),
                    str(fill.realized_pnl),
                    str(expected),
                ]
            )
            ctx.equal(
                f"close of {pos.quantity} @ {pos.entry_price}: fill {fill.qty} @ {fill.price} "
                "realizes s x q x (fill price - entry)",
                expected=expected,
                observed=fill.realized_pnl,
                tolerance=published_unit(fill.realized_pnl, unit),
                unit="USDT",
            )
    ctx.require(
        "a closing fill at a price other than the mark before its order (it can tell them apart)",
        telling > 0,
        expected=">= 1 fill",
        observed=f"{telling} of {len(rows)} fills",
    )
    ctx.add_evidence(
        "closes",
        {
            "type": "table",
            "title": "Closing fills and the PnL they realized",
            "columns": [
                "position",
                "entry",
                "mark before the close",
                "fill price",
                "fill qty",
                "realized PnL reported",
                "s x q x (price - entry)",
            ],
            "rows": rows,
        },
    )
