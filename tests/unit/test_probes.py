"""harness.probes helpers that judge what a venue publishes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import cast

import pytest

from harness.clock import VirtualClock
from harness.model import (
    ClientOrderId,
    Fill,
    Order,
    OrderId,
    OrderStatus,
    OrderType,
    Side,
)
from harness.probes import fills_of, new_fills, published_unit
from harness.venue import Account, Capability, Venue

D = Decimal
UNIT = D("0.00000001")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (D("-0.01220000"), UNIT),  # Binance: 8 places, the atomic unit
        (D("0E-8"), UNIT),
        (D("0.000000001"), UNIT),  # finer than the atomic unit: still the atomic unit
        (D("0.1269"), D("0.0001")),  # Bybit-style 4 places: judged at its own precision
        (D("10.003"), D("0.001")),
        (D("12"), D(1)),
        (D("1.2E+3"), D(100)),
        (D("NaN"), UNIT),
        (D("Infinity"), UNIT),
    ],
)
def test_published_unit_is_the_coarser_of_the_atomic_unit_and_the_last_place(
    value: Decimal, expected: Decimal
) -> None:
    assert published_unit(value, UNIT) == expected


# ---------------------------------------------------------------------------------- fills_of
def _order(order_id: str, executed: str) -> Order:
    return Order(
        order_id=OrderId(order_id),
        client_order_id=ClientOrderId(f"c{order_id}"),
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        time_in_force=None,
        price=None,
        orig_qty=D(executed),
        executed_qty=D(executed),
        cum_quote=D(0),
        status=OrderStatus.FILLED,
        reduce_only=False,
        time_ms=0,
        update_time_ms=0,
    )


def _fill(trade_id: int, order_id: str, qty: str) -> Fill:
    return Fill(
        trade_id=trade_id,
        order_id=OrderId(order_id),
        symbol="BTCUSDT",
        side=Side.BUY,
        price=D(60_000),
        qty=D(qty),
        quote_qty=D(60_000) * D(qty),
        commission=D(0),
        commission_asset="USDT",
        maker=False,
        realized_pnl=D(0),
        time_ms=0,
    )


@dataclass
class _Listing:
    """An account whose fills list shows more of them at each call (a venue's lag)."""

    pages: list[list[Fill]]
    calls: int = 0

    async def fills(self, symbol: str, since_ms: int | None = None) -> list[Fill]:
        page = self.pages[min(self.calls, len(self.pages) - 1)]
        self.calls += 1
        return page


@dataclass
class _Venue:
    """A venue with a wall clock (no ``CONTROL_CLOCK``), its time simulated for the test."""

    clock: VirtualClock = field(default_factory=VirtualClock)
    capabilities: frozenset[Capability] = frozenset({Capability.TRADE})


async def _fills_of(listing: _Listing, order: Order, venue: _Venue) -> list[Fill]:
    return await fills_of(cast(Venue, venue), cast(Account, listing), order)


@pytest.mark.asyncio
async def test_fills_of_finds_an_orders_fills_by_id_not_by_position() -> None:
    # The venue lists only its latest three fills: before the order the list was three long
    # too (trades 1-3), so slicing it from the old length would find nothing.
    after = [_fill(3, "c", "1"), _fill(4, "x", "0.4"), _fill(5, "x", "0.6")]
    venue = _Venue()
    start = venue.clock.now_ms()
    listing = _Listing([after])
    found = await _fills_of(listing, _order("x", "1"), venue)
    assert [f.trade_id for f in found] == [4, 5]
    assert listing.calls == 1
    assert venue.clock.now_ms() == start  # found at once: no waiting


@pytest.mark.asyncio
async def test_fills_of_asks_again_while_the_executions_lag_the_order() -> None:
    venue = _Venue()
    start = venue.clock.now_ms()
    listing = _Listing([[], [_fill(4, "x", "0.4")], [_fill(4, "x", "0.4"), _fill(5, "x", "0.6")]])
    found = await _fills_of(listing, _order("x", "1"), venue)
    assert [f.trade_id for f in found] == [4, 5]
    assert listing.calls == 3
    assert venue.clock.now_ms() == start + 400  # two waits of 0.2 s on the venue's clock


@pytest.mark.asyncio
async def test_fills_of_waits_for_a_market_orders_first_fill() -> None:
    """A venue that answers a market order before it shows it filled (executed 0)."""
    venue = _Venue()
    start = venue.clock.now_ms()
    listing = _Listing([[], [_fill(4, "x", "1")]])
    found = await _fills_of(listing, _order("x", "0"), venue)
    assert [f.trade_id for f in found] == [4]
    assert venue.clock.now_ms() == start + 200


@pytest.mark.asyncio
async def test_fills_of_does_not_wait_for_a_resting_limit_order() -> None:
    venue = _Venue()
    start = venue.clock.now_ms()
    resting = replace(_order("x", "0"), type=OrderType.LIMIT, price=D(59_000))
    listing = _Listing([[]])
    assert await _fills_of(listing, resting, venue) == []
    assert (listing.calls, venue.clock.now_ms()) == (1, start)


@pytest.mark.asyncio
async def test_fills_of_never_moves_a_driven_clock() -> None:
    """On a venue whose clock the harness drives, fills are there at once: one look, no wait."""
    venue = _Venue(capabilities=frozenset({Capability.TRADE, Capability.CONTROL_CLOCK}))
    start = venue.clock.now_ms()
    listing = _Listing([[], [_fill(4, "x", "1")]])
    assert await _fills_of(listing, _order("x", "1"), venue) == []
    assert (listing.calls, venue.clock.now_ms()) == (1, start)


@pytest.mark.asyncio
async def test_fills_of_gives_up_with_what_it_found() -> None:
    venue = _Venue()
    listing = _Listing([[_fill(4, "x", "0.4")]])
    found = await _fills_of(listing, _order("x", "1"), venue)
    assert [f.trade_id for f in found] == [4]
    assert listing.calls == 5


def test_new_fills_are_the_trade_ids_not_listed_before() -> None:
    before = [_fill(1, "a", "1"), _fill(2, "b", "1"), _fill(3, "c", "1")]
    # A venue listing its latest three: the list moved by two instead of growing.
    after = [_fill(3, "c", "1"), _fill(4, "x", "0.4"), _fill(5, "y", "0.6")]
    assert [f.trade_id for f in new_fills(before, after)] == [4, 5]
    assert new_fills(after, after) == []
    assert [f.trade_id for f in new_fills([], before)] == [1, 2, 3]
