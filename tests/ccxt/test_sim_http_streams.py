"""sim-http event streams end to end: the simulator's WebSocket server through the ccxt venue.

One scripted session (leverage, orders, marks, a liquidation, every stream fault) runs on venue
``sim`` and on venue ``sim-http`` with the same seed: every drain must return the same events,
and both must reconnect the same number of times. Then what only the wire can show: a local book
kept from diff frames matches the REST snapshot, the listen key survives virtual hours through
keepalives and is replaced after it expired, and closing leaves nothing running.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio

from adapters.ccxt_venue.binance import BinanceVenue
from adapters.ccxt_venue.streams import BinanceEventStream, ListenKeys
from harness.errors import ConfigError
from harness.model import (
    ClientOrderId,
    MarginMode,
    OrderRequest,
    OrderType,
    PricePath,
    Side,
    TimeInForce,
)
from harness.safety import NotionalGuard, SafeAccount
from harness.streams import (
    AccountEvent,
    ConfigEvent,
    DepthEvent,
    EventStream,
    LiquidationOrderEvent,
    LocalBook,
    MarkEvent,
    OrderEvent,
    StreamEvent,
    TradeEvent,
    select,
)
from harness.venue import Capability, StreamFaults, Venue, VenueConfig, open_venue

D = Decimal
BTC, ETH = "BTCUSDT", "ETHUSDT"
MINUTE = 60_000


def market(side: Side, qty: str, symbol: str = BTC) -> OrderRequest:
    return OrderRequest(symbol=symbol, side=side, type=OrderType.MARKET, quantity=D(qty))


async def open_http(seed: int = 7) -> BinanceVenue:
    venue = await open_venue("sim-http", VenueConfig(seed=seed))
    assert isinstance(venue, BinanceVenue)
    return venue


@pytest_asyncio.fixture
async def venue() -> AsyncIterator[BinanceVenue]:
    opened = await open_http()
    yield opened
    await opened.close()


def stream_tasks() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("perpcheck-stream")]


# ---------------------------------------------------------------------------- parity with sim


class Session:
    """Drains every stream after each step and keeps what each drain returned."""

    def __init__(self) -> None:
        self.streams: list[EventStream] = []
        self.drains: list[list[StreamEvent]] = []

    async def step(self) -> None:
        for stream in self.streams:
            self.drains.append(await stream.drain())


async def session(venue: Venue) -> tuple[list[list[StreamEvent]], list[int]]:
    """The scripted session: every drain's events, and each stream's reconnects."""
    control = venue.control
    assert control is not None
    account = venue.account()
    victim = await control.create_account(D(1000), label="victim")
    await victim.set_margin_mode(BTC, MarginMode.ISOLATED)
    s = Session()
    s.streams.append(await venue.stream([BTC, ETH], account=account, depth=True))
    s.streams.append(await venue.stream([BTC], account=victim))
    await s.step()

    await account.set_leverage(BTC, 20)
    await s.step()
    await account.place_order(market(Side.BUY, "0.01"))
    await s.step()
    book = await venue.order_book(BTC, 5)
    assert book.best_bid is not None
    passive = OrderRequest(
        symbol=BTC,
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=D("0.002"),
        price=book.best_bid - D(50),
        time_in_force=TimeInForce.GTC,
        client_order_id=ClientOrderId("p-1"),
    )
    await account.place_order(passive)
    await account.cancel_order(BTC, client_order_id=ClientOrderId("p-1"))
    await s.step()
    await control.advance(3_000)
    await s.step()

    # A liquidation: the victim's isolated long at 50x, the index down 3 % over 20 s.
    await victim.set_leverage(BTC, 50)
    await victim.place_order(market(Side.BUY, "0.2"))
    index = (await venue.mark(BTC)).index_price
    await control.set_price_path(BTC, PricePath(points=((0, index), (20_000, index * D("0.97")))))
    await control.advance(25_000)
    await s.step()

    # Faults: late frames, a withheld diff, swapped diffs, dropped connections.
    await control.set_stream_faults(StreamFaults(delay_ms=2_000))
    await account.place_order(market(Side.SELL, "0.004"))
    await s.step()
    await control.advance(3_000)
    await s.step()
    await control.set_stream_faults(StreamFaults(gap_symbol=BTC, reorder=1))
    for _ in range(3):
        await account.place_order(market(Side.BUY, "0.002"))
    await s.step()
    await control.set_stream_faults(StreamFaults(drop_connections=True))
    await account.place_order(market(Side.SELL, "0.002"))  # lost on the wire
    await s.step()
    await account.place_order(market(Side.SELL, "0.002"))
    await control.advance(1_000)
    await s.step()
    return s.drains, [stream.reconnects for stream in s.streams]


@pytest.mark.asyncio
async def test_every_drain_returns_what_the_in_process_venue_streams() -> None:
    sim = await open_venue("sim", VenueConfig(seed=7))
    http = await open_http(seed=7)
    try:
        expected = await session(sim)
        received = await session(http)
    finally:
        await sim.close()
        await http.close()
    assert received == expected
    drains, reconnects = received
    assert reconnects == [1, 1]
    events = [e for drain in drains for e in drain]
    # The session shows every kind of event the streams carry, so the equality above means much.
    kinds = {type(e).__name__ for e in events}
    assert kinds >= {
        "MarkEvent",
        "TradeEvent",
        "DepthEvent",
        "LiquidationOrderEvent",
        "OrderEvent",
        "AccountEvent",
        "ConfigEvent",
    }
    assert select(events, OrderEvent, lambda e: e.liquidation)
    assert select(events, OrderEvent, lambda e: e.execution_type == "CANCELED")
    config = select(events, ConfigEvent)[0]
    assert (config.symbol, config.leverage, config.margin_mode) == (BTC, 20, None)


# ---------------------------------------------------------------------------- what the wire shows


@pytest.mark.asyncio
async def test_sim_http_claims_streams_and_stream_faults(venue: BinanceVenue) -> None:
    assert {Capability.READ_STREAMS, Capability.CONTROL_STREAM_FAULTS} <= venue.capabilities


@pytest.mark.asyncio
async def test_a_local_book_from_diff_frames_matches_the_snapshot_until_a_gap(
    venue: BinanceVenue,
) -> None:
    control = venue.control
    assert control is not None
    account = venue.account()
    stream = await venue.stream([BTC], depth=True)
    book = LocalBook(await venue.order_book(BTC, 1000))
    for side, qty in ((Side.BUY, "0.5"), (Side.SELL, "0.3"), (Side.BUY, "0.01")):
        await account.place_order(market(side, qty))
        await control.advance(2_000)  # the market maker requotes
    for event in select(await stream.drain(), DepthEvent):
        book.apply(event)
    assert book.applied > 3
    assert book.differences(await venue.order_book(BTC, 1000)) == []

    await control.set_stream_faults(StreamFaults(gap_symbol=BTC))
    await account.place_order(market(Side.BUY, "0.01"))
    await account.place_order(market(Side.BUY, "0.01"))
    for event in select(await stream.drain(), DepthEvent):
        book.apply(event)
    assert (book.gaps, book.in_sync) == (1, False)
    await stream.close()


@pytest.mark.asyncio
async def test_the_listen_key_lives_through_virtual_hours_by_keepalives(
    venue: BinanceVenue,
) -> None:
    control = venue.control
    assert control is not None
    stream = await venue.stream([BTC], account=venue.account())
    assert isinstance(stream, BinanceEventStream)
    key = stream.listen_key
    await control.advance(31 * MINUTE)  # kept alive at the drain
    assert len(select(await stream.drain(), MarkEvent)) == 31 * 60
    await control.advance(100 * MINUTE)  # and between the steps of one long advance
    await venue.clock.sleep(40 * 60)
    await venue.account().place_order(market(Side.BUY, "0.01"))
    events = await stream.drain()
    assert len(select(events, MarkEvent)) == 140 * 60
    assert [e.execution_type for e in select(events, OrderEvent)] == ["NEW", "TRADE"]
    assert (stream.listen_key, stream.reconnects) == (key, 0)
    await stream.close()


@pytest.mark.asyncio
async def test_a_listen_key_closed_elsewhere_is_replaced_at_the_next_drain(
    venue: BinanceVenue,
) -> None:
    stream = await venue.stream([BTC], account=venue.account())
    assert isinstance(stream, BinanceEventStream)
    key = stream.listen_key
    assert key is not None
    await ListenKeys(venue.account().exchange).delete(key)  # the venue ends the user stream
    await stream.drain()
    assert stream.reconnects == 1
    assert stream.listen_key not in (None, key)
    await venue.account().place_order(market(Side.BUY, "0.01"))
    events = await stream.drain()
    assert [e.execution_type for e in select(events, OrderEvent)] == ["NEW", "TRADE"]
    assert select(events, AccountEvent)[0].reason == "ORDER"
    await stream.close()


@pytest.mark.asyncio
async def test_a_wrapped_account_streams_its_own_events(venue: BinanceVenue) -> None:
    async def mark_of(symbol: str) -> Decimal:
        return (await venue.mark(symbol)).mark_price

    safe = SafeAccount(venue.account(), prefix="pc1-", guard=NotionalGuard(), mark_of=mark_of)
    stream = await venue.stream([ETH], account=safe)
    await safe.place_order(market(Side.BUY, "0.1", ETH))
    events = await stream.drain()
    # The venue has the run's prefix on it; the check sees the id it gave (or was given), as in
    # the REST answers.
    assert {e.client_order_id for e in select(events, OrderEvent)} == {"1"}
    mark = await mark_of(ETH)
    resting = OrderRequest(
        symbol=ETH,
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=D("0.1"),
        price=(mark * D("0.9")).quantize(D("0.01")),
        time_in_force=TimeInForce.GTC,
        client_order_id=ClientOrderId("mine"),
    )
    await safe.place_order(resting)
    assert [e.client_order_id for e in select(await stream.drain(), OrderEvent)] == ["mine"]
    raw = await venue.account().open_orders(ETH)
    assert [o.client_order_id for o in raw] == ["pc1-mine"]  # the venue's own view
    assert select(events, TradeEvent)
    await stream.close()


@pytest.mark.asyncio
async def test_an_unknown_symbol_is_refused(venue: BinanceVenue) -> None:
    with pytest.raises(ConfigError, match="nopeusdt@aggTrade"):
        await venue.stream(["NOPEUSDT"])
    with pytest.raises(ConfigError, match="at least one symbol"):
        await venue.stream([])
    assert stream_tasks() == []


@pytest.mark.asyncio
async def test_closing_the_venue_closes_its_streams() -> None:
    venue = await open_http()
    streams = [await venue.stream([BTC], account=venue.account()) for _ in range(2)]
    streams.append(await venue.stream([ETH], depth=True))
    await streams[0].close()
    assert len(stream_tasks()) == 2
    await venue.close()
    assert stream_tasks() == []
    for stream in streams:
        with pytest.raises(ConfigError, match="closed event stream"):
            await stream.drain()


@pytest.mark.asyncio
async def test_liquidation_orders_are_public_on_the_force_order_stream(
    venue: BinanceVenue,
) -> None:
    control = venue.control
    assert control is not None
    watcher = await venue.stream([BTC])  # no account: the market's view
    victim = await control.create_account(D(1000), label="victim")
    await victim.set_margin_mode(BTC, MarginMode.ISOLATED)
    await victim.set_leverage(BTC, 50)
    await victim.place_order(market(Side.BUY, "0.2"))
    index = (await venue.mark(BTC)).index_price
    await control.set_price_path(BTC, PricePath(points=((0, index), (20_000, index * D("0.97")))))
    await control.advance(25_000)
    events = await watcher.drain()
    forced = select(events, LiquidationOrderEvent)
    assert forced
    assert forced[0].side is Side.SELL
    assert not select(events, OrderEvent)  # nobody's private events without an account
    await watcher.close()
