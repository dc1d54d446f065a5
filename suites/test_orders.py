"""ORD: small-size experiments at the edges of the order filters (testing guide point 1).

Each check sends the smallest orders that probe one rule and compares the venue's answer with
what the rule requires: accepted, rejected with the venue's code, filled as the book allows.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from types import ModuleType

import pytest

from harness.checks import CheckContext, check
from harness.errors import Rejected
from harness.model import Instrument, Order, Side, TimeInForce
from harness.probes import (
    attempt,
    describe,
    fills_of,
    limit,
    market,
    min_qty_for_notional,
    need,
    new_fills,
    passive_price,
    position_of,
    published_unit,
)
from harness.venue import Account, Capability, Venue

SYMBOL = "BTCUSDT"


def _table(rows: list[list[str]]) -> dict[str, object]:
    return {
        "type": "table",
        "title": "Orders sent",
        "columns": ["order", "price", "quantity", "outcome"],
        "rows": rows,
    }


def _refusal(venue: Venue, reason: str) -> tuple[frozenset[int] | None, str]:
    """The venue's codes for refusing an order for ``reason`` (harness.venue.REJECT_REASONS) and
    the expectation as the report words it; ``None``: the venue's code for it is not known, any
    refusal counts."""
    codes = venue.rules.reject_codes.get(reason)
    if codes is None:
        return None, f"rejected (any code: {venue.name}'s code for {reason} is not known)"
    return codes, "rejected " + " or ".join(str(c) for c in sorted(codes, reverse=True))


def _refused(outcome: Order | Rejected, codes: frozenset[int] | None) -> bool:
    return isinstance(outcome, Rejected) and (codes is None or outcome.code in codes)


async def _expect_filter_rejection(
    venue: Venue,
    account: Account,
    ctx: CheckContext,
    label: str,
    price: Decimal,
    qty: Decimal,
    reason: str,
) -> None:
    """Send a resting limit buy that breaks a filter; it must be rejected and leave nothing."""
    outcome = await attempt(account, limit(SYMBOL, Side.BUY, qty, price))
    ctx.add_evidence("orders", _table([[label, str(price), str(qty), describe(outcome)]]))
    codes, expected = _refusal(venue, reason)
    ctx.require(
        f"limit buy of {qty} @ {price}, {label}, is rejected",
        _refused(outcome, codes),
        expected=expected,
        observed=describe(outcome),
    )
    left = await account.open_orders(SYMBOL)
    ctx.require(
        "no order rests after the rejection",
        not left,
        expected="no open orders",
        observed=f"{len(left)} open order(s)",
    )
    await account.cancel_all(SYMBOL)


async def _instrument(venue: Venue, symbol: str = SYMBOL) -> Instrument:
    return (await venue.instruments())[symbol]


def _exact_min_notional_order(
    inst: Instrument, best_bid: Decimal
) -> tuple[Decimal, Decimal] | None:
    """An on-tick price below the best bid and an on-step quantity whose product is the minimum."""
    qty = max(inst.min_qty, inst.step_size)
    while qty <= inst.max_qty:
        price = inst.min_notional / qty
        if price < best_bid / 2 or price < inst.min_price:
            return None
        if price < best_bid and inst.on_tick(price) and inst.on_step(qty):
            return price.quantize(inst.tick_size), qty
        qty += inst.step_size
    return None


@check("ORD-001", needs={Capability.TRADE})
async def test_min_notional_boundary(venue: Venue, account: Account, ctx: CheckContext) -> None:
    """An order at exactly the minimum notional is accepted; one quantity step below is rejected.

    The MIN_NOTIONAL filter requires price x quantity >= the symbol's minimum (Binance -4164
    below it). Probed with a resting limit buy whose notional equals the minimum exactly, then
    the same price with one quantity step less. A venue that publishes no minimum notional for
    any symbol (OKX limits sizes, not notionals) is skipped with that reason: the rule does not
    apply there.

    Source: binance-usdm-surface.md §2.1 (MIN_NOTIONAL) and §4 (-4164); perp-mechanics.md §11
    """
    instruments = await venue.instruments()
    if not any(inst.min_notional > 0 for inst in instruments.values()):
        pytest.skip(
            f"{venue.name} publishes no minimum notional for {', '.join(sorted(instruments))}"
            " (a zero minimum): the rule does not apply"
        )
    chosen: tuple[Instrument, Decimal, Decimal] | None = None
    for symbol in sorted(instruments):
        inst = instruments[symbol]
        book = await venue.order_book(symbol, 5)
        if book.best_bid is None:
            continue
        found = _exact_min_notional_order(inst, book.best_bid)
        if found is not None:
            chosen = (inst, *found)
            break
    if chosen is None:
        ctx.require(
            "a symbol with an on-tick, on-step order of exactly the minimum notional",
            False,
            expected="one exists below the best bid",
            observed="none found",
        )
        return
    inst, price, qty = chosen
    at_min = await attempt(account, limit(inst.symbol, Side.BUY, qty, price))
    below = await attempt(account, limit(inst.symbol, Side.BUY, qty - inst.step_size, price))
    ctx.add_evidence(
        "orders",
        _table(
            [
                ["at minimum", str(price), str(qty), describe(at_min)],
                ["one step below", str(price), str(qty - inst.step_size), describe(below)],
            ]
        ),
    )
    ctx.require(
        f"{inst.symbol} {qty} @ {price} (notional = {inst.min_notional}) is accepted",
        isinstance(at_min, Order),
        expected="accepted",
        observed=describe(at_min),
    )
    codes, expected = _refusal(venue, "min_notional")
    ctx.require(
        f"{inst.symbol} {qty - inst.step_size} @ {price} (below the minimum) is rejected",
        _refused(below, codes),
        expected=expected,
        observed=describe(below),
    )
    await account.cancel_all(inst.symbol)


@check("ORD-002", needs={Capability.TRADE})
async def test_price_off_tick_rejected(venue: Venue, account: Account, ctx: CheckContext) -> None:
    """A limit price that is not a multiple of the tick size is rejected, never rounded.

    PRICE_FILTER: (price - minPrice) % tickSize == 0; Binance answers -4014 (or -1111 when the
    price has more decimals than the symbol's precision). Probed half a tick off a resting price.

    Source: binance-usdm-surface.md §2.1 (PRICE_FILTER) and §4 (-4014, -1111); perp-mechanics.md §11
    """
    inst = await _instrument(venue)
    book = await venue.order_book(SYMBOL, 5)
    price = passive_price(inst, book, Side.BUY) + inst.tick_size / 2
    await _expect_filter_rejection(
        venue,
        account,
        ctx,
        f"half a tick off (tick {inst.tick_size})",
        price,
        min_qty_for_notional(inst, price),
        "price_tick",
    )


@check("ORD-003", needs={Capability.TRADE})
async def test_quantity_off_step_rejected(
    venue: Venue, account: Account, ctx: CheckContext
) -> None:
    """A quantity that is not a multiple of the step size is rejected, never rounded.

    LOT_SIZE: (quantity - minQty) % stepSize == 0; Binance answers -1111 (too many decimals) or
    -4023. Probed with half a step more than a valid quantity.

    Source: binance-usdm-surface.md §2.1 (LOT_SIZE) and §4 (-1111, -4023); perp-mechanics.md §11
    """
    inst = await _instrument(venue)
    book = await venue.order_book(SYMBOL, 5)
    price = passive_price(inst, book, Side.BUY)
    await _expect_filter_rejection(
        venue,
        account,
        ctx,
        f"half a step off (step {inst.step_size})",
        price,
        min_qty_for_notional(inst, price) + inst.step_size / 2,
        "qty_step",
    )


@check("ORD-004", needs={Capability.TRADE})
async def test_post_only_never_takes(venue: Venue, account: Account, ctx: CheckContext) -> None:
    """A post-only (GTX) order that would cross is rejected and never takes liquidity.

    Binance rejects such an order with -5022 (older behaviour: EXPIRED with nothing filled); a
    post-only order that does not cross rests as a maker order.

    Source: binance-usdm-surface.md §4 (-5022, GTX); perp-mechanics.md §5 (maker/taker)
    """
    inst = await _instrument(venue)
    book = await venue.order_book(SYMBOL, 5)
    best_ask = need(book.best_ask, f"an ask in {SYMBOL}")
    qty = min_qty_for_notional(inst, best_ask)
    before = await account.fills(SYMBOL)
    crossing = await attempt(account, limit(SYMBOL, Side.BUY, qty, best_ask, TimeInForce.GTX))
    fills = new_fills(before, await account.fills(SYMBOL))
    resting_price = passive_price(inst, book, Side.BUY)
    resting = await attempt(account, limit(SYMBOL, Side.BUY, qty, resting_price, TimeInForce.GTX))
    ctx.add_evidence(
        "orders",
        _table(
            [
                ["post-only at the best ask", str(best_ask), str(qty), describe(crossing)],
                ["post-only behind the bid", str(resting_price), str(qty), describe(resting)],
            ]
        ),
    )
    codes, expected = _refusal(venue, "post_only_would_take")
    crossing_ok = _refused(crossing, codes) or (
        isinstance(crossing, Order) and crossing.executed_qty == 0 and not crossing.status.is_open
    )
    ctx.require(
        "post-only buy at the best ask is refused",
        crossing_ok,
        expected=f"{expected} (or expired unfilled)",
        observed=describe(crossing),
    )
    ctx.require(
        "the crossing post-only order took no liquidity",
        not fills,
        expected="no fills",
        observed=f"{len(fills)} fill(s), {sum((f.qty for f in fills), Decimal(0))} filled",
    )
    ctx.require(
        "post-only buy behind the bid rests",
        isinstance(resting, Order) and resting.status.is_open and resting.executed_qty == 0,
        expected="NEW, unfilled",
        observed=describe(resting),
    )
    await account.cancel_all(SYMBOL)


@check("ORD-005", needs={Capability.TRADE})
async def test_ioc_and_fok(
    venue: Venue, account: Account, oracle: ModuleType, ctx: CheckContext
) -> None:
    """IOC fills what the book allows and cancels the rest; FOK fills all or nothing.

    IOC beyond the quantity at its limit must fill exactly the book-walk quantity and expire the
    remainder (no resting order); FOK beyond the available quantity must not fill at all
    (Binance -5021), and FOK within it must fill completely.

    Source: binance-usdm-surface.md §4 (-5021, IOC EXPIRED); perp-mechanics.md §14 (book walk)
    """
    inst = await _instrument(venue)
    book = await venue.order_book(SYMBOL, 50)
    price = need(book.best_ask, f"an ask in {SYMBOL}")
    walk_all = oracle.walk_book(book.asks, Decimal(10) ** 9, price, side=Side.BUY)
    qty = walk_all.filled_qty + 3 * inst.step_size
    expected_fill = oracle.walk_book(book.asks, qty, price, side=Side.BUY).filled_qty
    ioc = await attempt(account, limit(SYMBOL, Side.BUY, qty, price, TimeInForce.IOC))
    open_after_ioc = await account.open_orders(SYMBOL)

    book2 = await venue.order_book(SYMBOL, 50)
    fok_price = need(book2.best_ask, f"an ask in {SYMBOL} after the IOC")
    available = oracle.walk_book(book2.asks, Decimal(10) ** 9, fok_price, side=Side.BUY).filled_qty
    fok_big = await attempt(
        account, limit(SYMBOL, Side.BUY, available + inst.step_size, fok_price, TimeInForce.FOK)
    )
    fok_qty = max(min_qty_for_notional(inst, fok_price), inst.min_qty)
    fok_small_qty = min(fok_qty, available)
    fok_small = await attempt(
        account, limit(SYMBOL, Side.BUY, fok_small_qty, fok_price, TimeInForce.FOK)
    )
    ctx.add_evidence(
        "orders",
        _table(
            [
                ["IOC beyond the level", str(price), str(qty), describe(ioc)],
                [
                    "FOK beyond the level",
                    str(fok_price),
                    str(available + inst.step_size),
                    describe(fok_big),
                ],
                ["FOK within the level", str(fok_price), str(fok_small_qty), describe(fok_small)],
            ]
        ),
    )
    ctx.equal(
        "IOC filled quantity = book walk up to its limit",
        expected=expected_fill,
        observed=ioc.executed_qty if isinstance(ioc, Order) else None,
        unit=inst.base_asset,
    )
    ctx.require(
        "IOC remainder is cancelled, nothing rests",
        isinstance(ioc, Order) and not ioc.status.is_open and not open_after_ioc,
        expected="EXPIRED, no open orders",
        observed=f"{describe(ioc)}, {len(open_after_ioc)} open order(s)",
    )
    codes, expected = _refusal(venue, "fok_unfillable")
    ctx.require(
        "FOK larger than the book at its limit fills nothing",
        _refused(fok_big, codes)
        or (
            isinstance(fok_big, Order) and fok_big.executed_qty == 0 and not fok_big.status.is_open
        ),
        expected=f"{expected} (or expired unfilled)",
        observed=describe(fok_big),
    )
    ctx.equal(
        "FOK within the book fills completely",
        expected=fok_small_qty,
        observed=fok_small.executed_qty if isinstance(fok_small, Order) else None,
        unit=inst.base_asset,
    )


@check("ORD-006", needs={Capability.TRADE})
async def test_reduce_only_never_grows_or_flips(
    venue: Venue, account: Account, ctx: CheckContext
) -> None:
    """A reduce-only order can neither grow a position nor flip it.

    A reduce-only order on the position's own side is rejected (Binance -2022); a reduce-only
    order larger than the position closes it and no more.

    Source: binance-usdm-surface.md §4 (-2022, -4118); perp-mechanics.md §7
    """
    inst = await _instrument(venue)
    mark = (await venue.mark(SYMBOL)).mark_price
    qty = min_qty_for_notional(inst, mark)
    opened = await attempt(account, market(SYMBOL, Side.BUY, qty))
    start = await position_of(account, SYMBOL)
    start_qty = start.quantity if start else Decimal(0)
    grow = await attempt(account, market(SYMBOL, Side.BUY, qty, reduce_only=True))
    after_grow = await position_of(account, SYMBOL)
    flip = await attempt(account, market(SYMBOL, Side.SELL, 2 * start_qty or qty, reduce_only=True))
    after_flip = await position_of(account, SYMBOL)
    ctx.add_evidence(
        "orders",
        _table(
            [
                ["open long", "market", str(qty), describe(opened)],
                ["reduce-only buy (would grow)", "market", str(qty), describe(grow)],
                [
                    "reduce-only sell of 2x the position",
                    "market",
                    str(2 * start_qty),
                    describe(flip),
                ],
            ]
        ),
    )
    ctx.equal(
        "position after a reduce-only order on its own side",
        expected=start_qty,
        observed=after_grow.quantity if after_grow else Decimal(0),
        unit=inst.base_asset,
    )
    ctx.equal(
        "position after a reduce-only order larger than it",
        expected=Decimal(0),
        observed=after_flip.quantity if after_flip else Decimal(0),
        unit=inst.base_asset,
    )


@check("ORD-007", needs={Capability.TRADE})
async def test_duplicate_client_order_id(venue: Venue, account: Account, ctx: CheckContext) -> None:
    """A second order with a live order's client id is rejected; querying by client id works.

    Client order ids are unique per account (Binance -4116 "ClientOrderId is duplicated"), which
    is what makes reconciliation after a lost acknowledgement possible.

    Source: binance-usdm-surface.md §2.4 (newClientOrderId) and §4 (-4116)
    """
    inst = await _instrument(venue)
    book = await venue.order_book(SYMBOL, 5)
    price = passive_price(inst, book, Side.BUY, ticks=20)
    qty = min_qty_for_notional(inst, price)
    cid = f"pc-ord007-{venue.clock.now_ms()}"
    first = await attempt(account, limit(SYMBOL, Side.BUY, qty, price, client_order_id=cid))
    second = await attempt(
        account, limit(SYMBOL, Side.BUY, qty, price - inst.tick_size, client_order_id=cid)
    )
    queried: Order | Rejected | None = None
    if isinstance(first, Order):
        try:
            queried = await account.get_order(SYMBOL, client_order_id=first.client_order_id)
        except Rejected as exc:
            queried = exc
    ctx.add_evidence(
        "orders",
        _table(
            [
                [f"first, client id {cid}", str(price), str(qty), describe(first)],
                ["second, same client id", str(price - inst.tick_size), str(qty), describe(second)],
            ]
        ),
    )
    ctx.require(
        "the first order is accepted",
        isinstance(first, Order),
        expected="accepted",
        observed=describe(first),
    )
    codes, expected = _refusal(venue, "duplicate_client_id")
    ctx.require(
        "the duplicate client order id is rejected",
        _refused(second, codes),
        expected=expected,
        observed=describe(second),
    )
    ctx.require(
        "query by client order id returns the first order",
        isinstance(queried, Order)
        and isinstance(first, Order)
        and queried.order_id == first.order_id
        and queried.price == first.price,
        expected=f"order {first.order_id if isinstance(first, Order) else '?'} at {price}",
        observed=(
            f"order {queried.order_id} at {queried.price}"
            if isinstance(queried, Order)
            else "not queried"
            if queried is None
            else describe(queried)
        ),
    )
    await account.cancel_all(SYMBOL)


@check("ORD-008", needs={Capability.TRADE, Capability.CONTROL_ACCOUNTS})
async def test_fee_is_rate_times_notional(
    venue: Venue, account: Account, oracle: ModuleType, ctx: CheckContext
) -> None:
    """Each fill's fee is its maker or taker rate times its notional, to the atomic unit.

    Fee = |fill qty| x fill price x rate (taker for the aggressor, maker for the resting side),
    computed per fill on the fill price, never on the order price or position notional.

    Source: perp-mechanics.md §5(a), §5(d)
    """
    inst = await _instrument(venue)
    rates = await account.commission_rates(SYMBOL)
    unit = venue.rules.atomic_unit
    book = await venue.order_book(SYMBOL, 10)
    taker_qty = need(book.asks[0] if book.asks else None, f"an ask in {SYMBOL}")[1] + inst.step_size
    # one step more than the best level: the order reaches a second level
    before = await account.fills(SYMBOL)
    await account.place_order(market(SYMBOL, Side.BUY, taker_qty))
    taker_fills = new_fills(before, await account.fills(SYMBOL))

    # Maker side: rest an ask inside the spread and let another account lift it.
    book = await venue.order_book(SYMBOL, 10)
    best_bid = need(book.best_bid, f"a bid in {SYMBOL}")
    best_ask = need(book.best_ask, f"an ask in {SYMBOL}")
    maker_price = best_ask - inst.tick_size
    if maker_price <= best_bid:
        maker_price = best_ask
    maker_qty = min_qty_for_notional(inst, maker_price)
    before = await account.fills(SYMBOL)
    await account.place_order(limit(SYMBOL, Side.SELL, maker_qty, maker_price))
    control = need(venue.control, "a control interface (CONTROL_ACCOUNTS)")
    other = await control.create_account(Decimal(1_000_000), label="ORD-008 taker")
    await other.place_order(market(SYMBOL, Side.BUY, maker_qty))
    maker_fills = new_fills(before, await account.fills(SYMBOL))

    rows = []
    for fill in taker_fills + maker_fills:
        rate = rates.maker if fill.maker else rates.taker
        expected = oracle.round_to_unit(
            oracle.trading_fee(fill.qty, fill.price, rate), unit, ROUND_HALF_UP
        )
        role = "maker" if fill.maker else "taker"
        rows.append([role, str(fill.price), str(fill.qty), str(fill.commission), str(expected)])
        ctx.equal(
            f"{role} fee of {fill.qty} @ {fill.price}",
            expected=expected,
            observed=fill.commission,
            tolerance=unit,
            unit=inst.margin_asset,
        )
    ctx.add_evidence(
        "fills",
        {
            "type": "table",
            "title": "Fills and fees",
            "columns": ["role", "price", "qty", "fee charged", "rate x notional"],
            "rows": rows,
        },
    )
    ctx.require(
        "taker fills happened at two or more levels",
        len(taker_fills) >= 2 and not any(f.maker for f in taker_fills),
        expected=">= 2 taker fills",
        observed=f"{len(taker_fills)} fill(s), maker flags {[f.maker for f in taker_fills]}",
    )
    ctx.require(
        "the resting order filled as maker",
        bool(maker_fills) and all(f.maker for f in maker_fills),
        expected="maker fill(s)",
        observed=f"{len(maker_fills)} fill(s), maker flags {[f.maker for f in maker_fills]}",
    )


@check("ORD-009", needs={Capability.TRADE})
async def test_taker_fees_are_the_published_rate_times_each_fill(
    venue: Venue, account: Account, oracle: ModuleType, ctx: CheckContext
) -> None:
    """Each taker fill's fee is the account's published taker rate times that fill's notional.

    Observational, for any venue that trades: a small market buy, then the reduce-only market
    order that closes the position. Fee = |fill qty| x fill price x the taker rate the venue
    publishes for the account (rounded half up to the atomic unit; judged at the last decimal
    place the venue publishes the fee with, if coarser) — on the fill's own price, never the
    mark, the order or the position. Both orders must fill, as takers only; at least one fill
    must be at a price other than the mark before it (so the case can tell the fill's price
    from the mark).

    Source: perp-mechanics.md §5(a), §5(d)
    """
    inst = await _instrument(venue)
    rates = await account.commission_rates(SYMBOL)
    unit = venue.rules.atomic_unit
    rows = []
    telling = 0  # fills at a price other than the mark just before their order
    for leg in ("open", "close"):
        mark = (await venue.mark(SYMBOL)).mark_price
        if leg == "open":
            side, qty = Side.BUY, min_qty_for_notional(inst, mark, Decimal(2))
        else:  # the whole position, whichever way it points (an account may have held one)
            held = need(await position_of(account, SYMBOL), "the position the buy opened")
            side, qty = (Side.SELL if held.quantity > 0 else Side.BUY), abs(held.quantity)
        order = await account.place_order(market(SYMBOL, side, qty, reduce_only=leg == "close"))
        fills = await fills_of(venue, account, order)
        ctx.require(
            f"market {side.value.lower()} of {qty}: filled as a taker only",
            bool(fills) and not any(f.maker for f in fills),
            expected="taker fill(s)",
            observed=f"{len(fills)} fill(s), maker flags {[f.maker for f in fills]}",
        )
        for fill in fills:
            telling += fill.price != mark
            expected = oracle.round_to_unit(
                oracle.trading_fee(fill.qty, fill.price, rates.taker), unit, ROUND_HALF_UP
            )
            rows.append(
                [
                    side.value,
                    str(fill.price),
                    str(fill.qty),
                    str(mark),
                    str(rates.taker),
                    str(fill.commission),
                    str(expected),
                ]
            )
            ctx.equal(
                f"taker fee of {side.value.lower()} fill {fill.qty} @ {fill.price}",
                expected=expected,
                observed=fill.commission,
                tolerance=published_unit(fill.commission, unit),
                unit=inst.margin_asset,
            )
    ctx.require(
        "a fill at a price other than the mark before its order (it can tell them apart)",
        telling > 0,
        expected=">= 1 fill",
        observed=f"{telling} of {len(rows)} fills",
    )
    ctx.add_evidence(
        "fills",
        {
            "type": "table",
            "title": "Taker fills and their fees",
            "columns": [
                "order",
                "price",
                "qty",
                "mark before",
                "taker rate",
                "fee charged",
                "rate x notional",
            ],
            "rows": rows,
        },
    )
