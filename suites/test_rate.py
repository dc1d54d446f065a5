"""RATE: degraded mode under rate limits, throttling and faults (testing guide point 7).

The venue's published usage must match its documented weights, its limits must answer as
documented (429 with Retry-After, then a 418 ban for clients that ignore it, order windows apart
from weight), and the harness's own behaviour under those answers — back off, never duplicate,
reconcile by client order id — must leave exactly the orders it meant to place.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from decimal import Decimal
from types import ModuleType
from typing import Any

from harness.backoff import Backoff
from harness.checks import CheckContext, check
from harness.errors import Banned, RateLimited, Rejected, Unavailable
from harness.model import ClientOrderId, Order, OrderRequest, PricePath, Side
from harness.probes import limit, market, min_qty_for_notional, need, passive_price
from harness.rate_probe import WeightLog, limit_answer, used_weight
from harness.venue import Account, Capability, Faults, RateLimits, Venue, VenueControl

SYMBOL = "BTCUSDT"
LIMITS = {Capability.CONTROL_RATE_LIMITS, Capability.CONTROL_CLOCK, Capability.READ_RATE_LIMITS}
FAULTS = {Capability.CONTROL_FAULTS, Capability.CONTROL_CLOCK, Capability.TRADE}


async def _resting(venue: Venue, cid: str, ticks: int = 30) -> OrderRequest:
    """A small limit buy behind the best bid, with client order id ``cid``."""
    inst = (await venue.instruments())[SYMBOL]
    book = await venue.order_book(SYMBOL, 5)
    price = passive_price(inst, book, Side.BUY, ticks=ticks)
    return limit(SYMBOL, Side.BUY, min_qty_for_notional(inst, price), price, client_order_id=cid)


async def _ours(account: Account, prefix: str) -> list[Order]:
    return [o for o in await account.open_orders(SYMBOL) if o.client_order_id.startswith(prefix)]


def _events_table(backoff: Backoff, start_ms: int) -> dict[str, Any]:
    return {
        "type": "table",
        "title": "What the harness did",
        "columns": ["t (s)", "event", "detail", "Retry-After (s)"],
        "rows": [
            [
                format(Decimal(e.time_ms - start_ms) / 1000, "f"),
                e.kind,
                e.detail,
                "" if e.retry_after is None else str(e.retry_after),
            ]
            for e in backoff.events
        ],
    }


@check("RATE-001", needs={Capability.READ_RATE_LIMITS, Capability.TRADE})
async def test_used_weight_matches_documented_weights(
    venue: Venue, account: Account, ctx: CheckContext
) -> None:
    """The used-weight header grows by the documented weight of each call made.

    Binance publishes ``X-MBX-USED-WEIGHT-1M`` with every response; each endpoint has a
    documented weight (depth by its limit, account and positions 5, …). Cheap calls only, so it
    is safe on a testnet: a call whose window rolled over in between is measured again.

    Source: binance-usdm-surface.md §4 (rate limits, endpoint weights)
    """
    weights = venue.rules.method_weights
    calls: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("order_book:5", lambda: venue.order_book(SYMBOL, 5)),
        ("order_book:100", lambda: venue.order_book(SYMBOL, 100)),
        ("mark", lambda: venue.mark(SYMBOL)),
        ("positions", account.positions),
        ("balance", account.balance),
        ("open_orders", lambda: account.open_orders(SYMBOL)),
        ("brackets", lambda: venue.brackets(SYMBOL)),
    ]
    await venue.mark(SYMBOL)  # a first response to read the usage from
    rows = []
    for name, call in calls:
        documented = weights.get(name)
        if documented is None:
            ctx.note(f"{venue.name} documents no weight for {name}; not measured")
            continue
        for _ in range(3):
            before = used_weight(venue)
            await call()
            delta = used_weight(venue) - before
            if delta >= 0:  # a negative delta means the minute window rolled over: measure again
                break
        rows.append([name, str(documented), str(delta)])
        ctx.equal(
            f"used weight added by {name}", expected=Decimal(documented), observed=Decimal(delta)
        )
    ctx.add_evidence(
        "weights",
        {
            "type": "table",
            "title": "Documented vs published weight",
            "rows": rows,
            "columns": ["call", "documented weight", "used-weight delta"],
        },
    )


@check("RATE-002", needs={Capability.READ_RATE_LIMITS, Capability.TRADE})
async def test_429_with_retry_after_and_backoff_loses_nothing(
    venue: Venue, account: Account, ctx: CheckContext
) -> None:
    """Over the weight limit the venue answers 429 with Retry-After; backing off loses nothing.

    Where the limit can be tightened (a simulator), a burst of reads and orders must be answered
    429 with a positive Retry-After; the harness waits exactly that long and goes on, and every
    order it meant to place exists exactly once. On a real venue (testnet-safe) the burst is
    paced below half the documented limit: no 429 may be provoked, the published usage must stay
    under it, and again every order exists exactly once.

    Source: binance-usdm-surface.md §4 (429 + Retry-After); testing guide point 7
    """
    start = venue.clock.now_ms()
    control = venue.control
    provoke = control is not None and Capability.CONTROL_RATE_LIMITS in venue.capabilities
    if control is not None and provoke:
        await control.set_rate_limits(RateLimits(weight_per_minute=40))
    backoff = Backoff(venue.clock)
    weights = WeightLog(venue)
    wanted = [f"r2-{i}" for i in range(8 if provoke else 3)]
    peak = 0
    for cid in wanted:
        request = await backoff.call("prepare", lambda c=cid: _resting(venue, c))  # type: ignore[misc]
        weights.after(backoff)
        await backoff.place(account, request)
        weights.after(backoff)
        await backoff.call("positions", account.positions)
        weights.after(backoff)
        peak = max(peak, venue.rate_usage.used_weight_1m or 0)
    limited = [e for e in backoff.events if e.kind == "rate-limited"]
    if control is not None and provoke:
        await control.set_rate_limits(RateLimits())
    mine = await _ours(account, "r2-")
    ids = sorted(o.client_order_id for o in mine)
    limit = 40 if provoke else venue.rules.rate_limits.weight_per_minute
    ctx.add_evidence(
        "weight",
        weights.evidence(
            "Used weight over the burst, with the venue's limit answers",
            [{"y": str(limit), "label": f"weight limit {limit} / min"}],
        ),
    )
    ctx.add_evidence("backoff", _events_table(backoff, start))
    if provoke:
        ctx.require(
            "the burst hit the limit (429)",
            bool(limited),
            expected=">= 1 rate-limited answer",
            observed=f"{len(limited)}",
        )
        ctx.require(
            "every 429 carried a positive Retry-After",
            bool(limited) and all(e.retry_after is not None and e.retry_after > 0 for e in limited),
            expected="Retry-After > 0 on each",
            observed=str([str(e.retry_after) for e in limited]),
        )
    else:
        ctx.require(
            "no 429 was provoked on a real venue",
            not limited,
            expected="none",
            observed=f"{len(limited)}",
        )
        ctx.at_most(
            "peak published used weight",
            limit=Decimal(venue.rules.rate_limits.weight_per_minute) / 2,
            observed=Decimal(peak),
        )
    ctx.equal("orders placed", expected=Decimal(len(wanted)), observed=Decimal(len(mine)))
    ctx.require(
        "each order exists exactly once",
        ids == sorted(wanted),
        expected=", ".join(sorted(wanted)),
        observed=", ".join(ids),
    )
    await account.cancel_all(SYMBOL)


@check("RATE-003", needs=LIMITS)
async def test_ignoring_retry_after_escalates_to_a_ban(
    venue: Venue, account: Account, control: VenueControl, ctx: CheckContext
) -> None:
    """A client that sends again inside Retry-After is banned (418), and the harness stops.

    After a 429, one more request before Retry-After has passed must be answered 418 with the
    ban's length; the harness's back-off never sends after a 418; once the ban has passed, the
    venue answers again.

    Source: binance-usdm-surface.md §4 (429 then 418 IP ban)
    """
    await control.set_rate_limits(RateLimits(weight_per_minute=20))
    weights = WeightLog(venue)
    first: RateLimited | None = None
    for _ in range(10):
        try:
            await account.positions()
        except RateLimited as exc:
            first = exc
            weights.after(answer=limit_answer(exc))
            break
        weights.after()
    ctx.require(
        "the limit answered 429 first",
        first is not None and not isinstance(first, Banned),
        expected="429",
        observed=type(first).__name__ if first else "no limit hit",
    )
    ban: Banned | None = None
    with contextlib.suppress(RateLimited):
        try:
            await account.positions()  # inside Retry-After: the venue must escalate
        except Banned as exc:
            ban = exc
    weights.after(answer="418 banned" if ban is not None else "no 418 (429 again or answered)")
    ctx.require(
        "sending inside Retry-After is answered 418",
        ban is not None,
        expected="418 ban",
        observed="banned" if ban else "no ban",
    )
    backoff = Backoff(venue.clock)
    stopped = False
    try:
        await backoff.call("positions during the ban", account.positions)
    except Banned:
        stopped = True
    weights.after(backoff)
    ctx.require(
        "the harness stops at a ban: one attempt, no retries",
        stopped and len(backoff.events) == 1,
        expected="1 attempt then stop",
        observed=f"{len(backoff.events)} attempt(s)",
    )
    if ban is not None and ban.retry_after is not None:
        ctx.at_least(
            "ban length (Retry-After)", limit=Decimal(1), observed=ban.retry_after, unit="s"
        )
        await venue.clock.sleep(float(ban.retry_after) + 1)
    await control.set_rate_limits(RateLimits())
    answered = True
    try:
        await account.positions()
    except (Banned, RateLimited) as exc:
        answered = False
        weights.after(answer=limit_answer(exc))
    else:
        weights.after()
    ctx.add_evidence(
        "weight",
        weights.evidence(
            "Used weight, the 429, the 418 ban and the answer after it",
            [{"y": "20", "label": "weight limit 20 / min"}],
        ),
    )
    ctx.require(
        "after the ban the venue answers again",
        answered,
        expected="an answer",
        observed="answered" if answered else "still refused",
    )


@check("RATE-004", needs=LIMITS | {Capability.TRADE})
async def test_order_windows_apart_from_weight(
    venue: Venue, account: Account, control: VenueControl, ctx: CheckContext
) -> None:
    """Order-count windows are enforced on their own, whatever the request weight.

    With orders per 10 s tightened to 5 and a generous weight limit, the sixth order inside the
    window is refused (Binance -1015) while the used weight is far below its limit; after the
    window has passed, orders are accepted again.

    Source: binance-usdm-surface.md §4 (ORDERS 300/10s, -1015)
    """
    await control.set_rate_limits(RateLimits(weight_per_minute=2400, orders_per_10s=5))
    weights = WeightLog(venue)
    outcomes: list[str] = []
    refused: RateLimited | None = None
    for i in range(6):
        try:
            await account.place_order(await _resting(venue, f"r4-{i}"))
            outcomes.append("accepted")
            weights.after()
        except RateLimited as exc:
            refused = exc
            outcomes.append(f"refused {exc.code}")
            weights.after(answer=limit_answer(exc))
    usage = venue.rate_usage
    await venue.clock.sleep(11)
    after = "accepted"
    try:
        await account.place_order(await _resting(venue, "r4-late"))
        weights.after()
    except RateLimited as exc:
        after = f"refused {exc.code}"
        weights.after(answer=limit_answer(exc))
    ctx.add_evidence(
        "usage",
        weights.evidence(
            "Orders in the 10 s window and the used weight, order by order (the last after 11 s)",
            [{"y": "5", "label": "order limit 5 / 10 s"}],
        ),
    )
    await control.set_rate_limits(RateLimits())
    ctx.require(
        "the first five orders are accepted",
        outcomes[:5] == ["accepted"] * 5,
        expected="5 accepted",
        observed=", ".join(outcomes[:5]),
    )
    ctx.require(
        "the sixth inside 10 s is refused by the order window (-1015)",
        refused is not None and refused.code == -1015,
        expected="429 -1015",
        observed=outcomes[5] if len(outcomes) > 5 else "none",
    )
    ctx.at_most(
        "used weight when the order window refused",
        limit=Decimal(100),
        observed=Decimal(usage.used_weight_1m or 0),
    )
    ctx.require(
        "after the window passes, orders are accepted again",
        after == "accepted",
        expected="accepted",
        observed=after,
    )


@check("RATE-005", needs=FAULTS)
async def test_lost_ack_reconciled_by_client_id(
    venue: Venue, account: Account, control: VenueControl, ctx: CheckContext
) -> None:
    """After a lost acknowledgement, reconciling by client order id leaves exactly one order.

    The venue executes the order and drops the answer; the harness must not resend blindly: it
    looks the order up by its client id first. Afterwards exactly one order with that id exists.

    Source: DESIGN.md testnet safety; binance-usdm-surface.md §4 (5xx: execution status unknown)
    """
    start = venue.clock.now_ms()
    await control.set_faults(Faults(lost_ack=1))
    backoff = Backoff(venue.clock)
    order = await backoff.place(account, await _resting(venue, "r5-once"))
    await control.set_faults(Faults())
    mine = await _ours(account, "r5-")
    ctx.add_evidence("backoff", _events_table(backoff, start))
    ctx.require(
        "the acknowledgement was lost",
        backoff.count("unavailable") >= 1,
        expected="a network error on placing",
        observed=f"{backoff.count('unavailable')}",
    )
    ctx.equal("orders with that client id", expected=Decimal(1), observed=Decimal(len(mine)))
    ctx.require(
        "the order found is the one placed",
        [o.order_id for o in mine] == [order.order_id],
        expected=str(order.order_id),
        observed=str([o.order_id for o in mine]),
    )


@check("RATE-006", needs=FAULTS | {Capability.CONTROL_CLOCK})
async def test_state_intact_after_errors_and_maintenance(
    venue: Venue, account: Account, control: VenueControl, ctx: CheckContext
) -> None:
    """Under 5xx bursts and maintenance nothing executes; state is intact afterwards.

    A 503 means the request was not executed: orders, positions and balances must be exactly
    what they were before the burst and the maintenance window, and an order whose every attempt
    failed must not exist.

    Source: binance-usdm-surface.md §4 (5xx); testing guide point 7
    """
    await account.place_order(market(SYMBOL, Side.BUY, Decimal("0.01")))
    await account.place_order(await _resting(venue, "r6-keep"))

    async def state() -> str:
        """Open orders, positions and wallet, as one readable line."""
        orders = sorted(f"{o.order_id} {o.status.value}" for o in await account.open_orders(SYMBOL))
        positions = sorted(
            f"{p.symbol} {p.quantity} @ {p.entry_price}" for p in await account.positions()
        )
        wallet = (await account.balance()).wallet_balance
        return f"orders [{', '.join(orders)}]; positions [{', '.join(positions)}]; wallet {wallet}"

    before = await state()
    request = await _resting(venue, "r6-lost")  # prepared before the burst: it spends no request
    await control.set_faults(Faults(error_burst=3))
    failed = 0
    for _ in range(3):
        try:
            await account.place_order(request)
        except Unavailable:
            failed += 1
    await control.set_faults(Faults(maintenance=True))
    for call in (account.positions, account.balance, lambda: account.place_order(request)):
        with contextlib.suppress(Unavailable):
            await call()
            failed -= 100  # answered during maintenance
    await control.set_faults(Faults())
    after = await state()
    try:
        ghost: Order | None = await account.get_order(
            SYMBOL, client_order_id=ClientOrderId("r6-lost")
        )
    except Rejected:
        ghost = None
    ctx.require(
        "every request of the burst and the maintenance failed (503)",
        failed == 3,
        expected="3 failures, maintenance refused all",
        observed=str(failed),
    )
    ctx.require(
        "orders, positions and balance unchanged",
        after == before,
        expected=str(before),
        observed=str(after),
    )
    ctx.require(
        "the order whose attempts all failed does not exist",
        ghost is None,
        expected="no order",
        observed=str(ghost.order_id) if ghost else "no order",
    )


@check("RATE-007", needs=FAULTS | {Capability.CONTROL_PRICES, Capability.READ_BRACKETS})
async def test_throttled_costs_rerun_the_risk_math(
    venue: Venue, account: Account, control: VenueControl, oracle: ModuleType, ctx: CheckContext
) -> None:
    """Under throttling, fills stay within the risk math re-run with the measured costs.

    "If throttled, assume your strategy changed": the harness measures the effective latency
    (the venue's execution time minus the sending time) and the market's drift meanwhile, then
    re-runs the conservative fill, the liquidation distance, the expected liquidation loss and the
    safe size with them. The throttled order must fill no worse than that degraded estimate —
    which holds only if the venue reports when it really executed.

    Source: testing guide point 7; perp-mechanics.md §14 (book walk), §6 (liquidation price)
    """
    inst = (await venue.instruments())[SYMBOL]
    qty = Decimal("0.3")
    floor = Decimal(1)

    async def measured(label: str) -> dict[str, Any]:
        book = await venue.order_book(SYMBOL, 50)
        mark0 = (await venue.mark(SYMBOL)).mark_price
        sent = venue.clock.now_ms()
        order = await account.place_order(market(SYMBOL, Side.BUY, qty))
        mark1 = (await venue.mark(SYMBOL)).mark_price
        now = venue.clock.now_ms()
        latency = max(order.update_time_ms - sent, 0)
        drift = (mark1 - mark0) / Decimal(now - sent) if now > sent else Decimal(0)
        costs = oracle.DegradedCosts(latency_ms=latency, drift_per_ms=drift, floor_bps=floor)
        estimate = oracle.degraded_fill_price(book.asks, qty, Side.BUY, mark0, costs)
        await account.place_order(market(SYMBOL, Side.SELL, qty, reduce_only=True))
        return {
            "label": label,
            "book": book,
            "mark": mark0,
            "costs": costs,
            "fill": need(order.avg_price, "an average fill"),
            "estimate": estimate,
        }

    calm = await measured("calm")
    index = (await venue.mark(SYMBOL)).index_price
    await control.set_price_path(
        SYMBOL, PricePath(points=((0, index), (60_000, index * Decimal("1.012"))), linear=True)
    )
    await control.set_faults(Faults(latency_ms=4_000))
    slow = await measured("throttled")
    await control.set_faults(Faults())
    ctx.at_most(
        "throttled fill above the degraded estimate",
        limit=Decimal(0),
        observed=slow["fill"] - slow["estimate"],
        tolerance=inst.tick_size,
        unit="USDT",
    )
    ctx.at_least(
        "effective latency measured under throttling",
        limit=Decimal(1),
        observed=Decimal(slow["costs"].latency_ms),
        unit="ms",
    )
    rows = []
    brackets = await venue.brackets(SYMBOL)
    for m in (calm, slow):
        pos = oracle.PositionInput(
            symbol=SYMBOL,
            side=oracle.PositionSide.LONG,
            quantity=qty,
            entry_price=m["fill"],
            brackets=brackets,
        )
        wallet = qty * m["fill"] / 20
        slip = (m["estimate"] - m["mark"]) / m["mark"]
        loss = oracle.expected_liquidation_loss(
            pos, wallet, close_slippage=slip, fee_rate=inst.liquidation_fee_rate or Decimal(0)
        )
        rows.append(
            [
                m["label"],
                str(m["costs"].latency_ms),
                f"{m['costs'].drift_per_ms:.6f}",
                f"{slip * 10_000:.3f}",
                f"{oracle.liquidation_distance(pos, wallet, m['mark']):.6f}",
                f"{loss:.4f}",
                str(
                    oracle.safe_size(
                        m["book"].asks, Side.BUY, m["mark"], Decimal(3), inst.step_size, m["costs"]
                    )
                ),
            ]
        )
    ctx.add_evidence(
        "risk",
        {
            "type": "table",
            "title": "Risk math, calm vs throttled",
            "rows": rows,
            "columns": [
                "conditions",
                "latency (ms)",
                "drift (USDT/ms)",
                "slippage (bps)",
                "liquidation distance",
                "expected liquidation loss",
                "safe size (3 bps)",
            ],
        },
    )
