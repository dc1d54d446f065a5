"""LIQ (continued): slippage and liquidation cost under conservative assumptions.

Testing guide point 3: liquidation math with fees *and conservative slippage*. The oracle's
conservative fill price is the worse of walking the published book and a floor of
``FLOOR_BPS`` from the reference price; fills must be no worse than it, and a liquidation's
realized loss must stay within the loss the oracle bounds with it.
"""

from __future__ import annotations

from decimal import Decimal
from types import ModuleType

from harness.checks import CheckContext, check
from harness.drive import drive_index
from harness.model import Side
from harness.probes import market, need, open_isolated
from harness.venue import Account, Capability, Venue

BTC = "BTCUSDT"
FLOOR_BPS = Decimal(1)  # the conservative floor: at least one basis point of slippage
PRICE_UNIT = Decimal("1e-8")  # average prices are compared at the venue's published precision


@check("LIQ-007", needs={Capability.TRADE})
async def test_fill_no_worse_than_conservative_estimate(
    venue: Venue, account: Account, oracle: ModuleType, ctx: CheckContext
) -> None:
    """A market order's average fill is no worse than the oracle's conservative estimate.

    Estimate = the worse of walking the venue's published book for the requested size and the
    reference (mark) price moved by the floor; a venue whose book overstates its depth, or that
    fills worse than its book, fills beyond it. Checked for a buy and a sell each taking the
    first two published levels.

    Source: perp-mechanics.md §14 forced flow vs depth (book walk); testing guide point 3
    """
    inst = (await venue.instruments())[BTC]
    rows = []
    for side in (Side.BUY, Side.SELL):
        book = await venue.order_book(BTC, 50)
        levels = book.asks if side is Side.BUY else book.bids
        qty = sum((q for _, q in levels[:2]), Decimal(0))
        mark = (await venue.mark(BTC)).mark_price
        estimate = oracle.conservative_fill_price(
            levels, qty, side, reference_price=mark, floor_bps=FLOOR_BPS
        )
        order = await account.place_order(market(BTC, side, qty))
        average = need(order.avg_price, "an average fill price")
        worse = (average - estimate) * side.sign
        rows.append([side.value, str(qty), str(mark), str(estimate), str(average)])
        ctx.at_most(
            f"market {side.value.lower()} of {qty}: how much worse than the estimate it filled",
            limit=Decimal(0),
            observed=worse,
            tolerance=PRICE_UNIT,
            unit="USDT",
        )
        ctx.equal(
            f"market {side.value.lower()} of {qty}: filled completely",
            expected=qty,
            observed=order.executed_qty,
            unit=inst.base_asset,
        )
    ctx.add_evidence(
        "fills",
        {
            "type": "table",
            "title": "Market orders against the estimate",
            "columns": ["side", "qty", "mark", "conservative estimate", "average fill"],
            "rows": rows,
        },
    )


@check(
    "LIQ-008",
    needs={
        Capability.TRADE,
        Capability.CONTROL_CLOCK,
        Capability.CONTROL_PRICES,
        Capability.READ_LIQUIDATIONS,
    },
)
async def test_liquidation_loss_within_oracle_bound(
    venue: Venue, account: Account, oracle: ModuleType, ctx: CheckContext
) -> None:
    """A liquidation's realized loss, fees and slippage included, stays within the oracle's bound.

    Bound = Q x (entry - P_c) + fee rate x Q x P_c for a long, where P_c is the conservative
    closing price: the worse of walking Q through the book of the update before the liquidation
    (shifted to the trigger mark) and the trigger mark less the floor. Loss = the account's wallet
    before the liquidation minus after it.

    Source: perp-mechanics.md §5(a) liquidation fee, §6(a), §14 book walk; testing guide point 3
    """
    inst = (await venue.instruments())[BTC]
    pos = await open_isolated(account, BTC, Side.BUY, Decimal("0.05"), leverage=20)
    drive = await drive_index(
        venue,
        BTC,
        pos.mark_price * Decimal("0.9"),
        updates=200,
        accounts={"trader": account},
        books=True,
        stop=lambda d: bool(d.events("trader")),
    )
    events = drive.events("trader")
    ctx.require(
        "the position was liquidated",
        bool(events),
        expected="liquidated",
        observed=f"{len(events)} step(s)",
    )
    if not events:
        return
    frame_index, event = events[0]
    before, after = drive.before(frame_index), drive.frames[frame_index]
    book = need(before.book, "the book before the liquidation")
    trigger = event.trigger_mark if event.trigger_mark is not None else after.mark
    shift = trigger / before.mark
    shifted = tuple((price * shift, qty) for price, qty in book.bids)
    qty = abs(pos.quantity)
    close = oracle.conservative_fill_price(
        shifted, qty, Side.SELL, reference_price=trigger, floor_bps=FLOOR_BPS
    )
    rate = inst.liquidation_fee_rate or Decimal(0)
    bound = qty * (pos.entry_price - close) + rate * qty * close
    loss = before.balances["trader"].wallet_balance - after.balances["trader"].wallet_balance
    ctx.at_most(
        "realized loss of the liquidated position (wallet before - after)",
        limit=bound,
        observed=loss,
        tolerance=qty * inst.tick_size,
        unit="USDT",
    )
    ctx.add_evidence("drive", drive.evidence("Walk to liquidation"))
    ctx.add_evidence(
        "bound",
        {
            "type": "table",
            "title": "Loss against the bound",
            "columns": [
                "qty",
                "entry",
                "trigger mark",
                "conservative close",
                "fee rate",
                "bound",
                "loss",
            ],
            "rows": [
                [
                    str(qty),
                    str(pos.entry_price),
                    str(trigger),
                    str(close),
                    str(rate),
                    str(bound),
                    str(loss),
                ]
            ],
        },
    )
