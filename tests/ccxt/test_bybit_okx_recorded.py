"""bybit-testnet and okx-demo offline: ccxt's requests and the venues' recorded answers.

As for Binance (test_binance_recorded.py): each fixture case is one adapter method; the test
checks the exact requests ccxt sent (v5 paths, parameters, signing headers, OKX's demo header)
and what the adapter made of the recorded answers, venue error codes included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import pytest
import pytest_asyncio

from adapters.ccxt_venue.bybit import BybitVenue
from adapters.ccxt_venue.okx import OkxVenue
from adapters.ccxt_venue.okx_wire import harness_symbol, inst_id
from harness.errors import AuthError, Banned, Missing, RateLimited, Rejected
from harness.model import (
    ClientOrderId,
    Fill,
    MarginMode,
    OrderId,
    OrderRequest,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from harness.probes import published_unit
from harness.venue import Capability, VenueConfig, open_venue
from tests.ccxt.transport import FakeTransport, load_fixture

T = TypeVar("T")
D = Decimal
BYBIT = load_fixture("bybit-testnet")
OKX = load_fixture("okx-demo")


async def replay(
    transport: FakeTransport, fixture: dict[str, Any], case: str, call: Callable[[], Awaitable[T]]
) -> T:
    exchanges = fixture["cases"][case]
    transport.serve(exchanges)
    try:
        return await call()
    finally:
        assert transport.actual() == transport.expected(exchanges)


async def rejected(
    transport: FakeTransport, fixture: dict[str, Any], case: str, call: Callable[[], Awaitable[Any]]
) -> Exception:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - each caller checks the type
        await replay(transport, fixture, case, call)
    return caught.value


# ------------------------------------------------------------------------------------ Bybit
@pytest_asyncio.fixture
async def bybit(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BybitVenue]:
    monkeypatch.setenv("PERPCHECK_BYBIT_TESTNET_API_KEY", "bybit-test-key")
    monkeypatch.setenv("PERPCHECK_BYBIT_TESTNET_SECRET", "bybit-test-secret")
    opened = await open_venue("bybit-testnet", VenueConfig())
    assert isinstance(opened, BybitVenue)
    yield opened
    await opened.close()


@pytest.fixture
def bybit_wire(bybit: BybitVenue) -> FakeTransport:
    return FakeTransport(bybit.exchange)


@pytest.mark.asyncio
async def test_bybit_reads_market_data_from_the_v5_testnet(
    bybit: BybitVenue, bybit_wire: FakeTransport
) -> None:
    assert Capability.READ_BRACKETS in bybit.capabilities
    assert not {c for c in bybit.capabilities if c.value.startswith("CONTROL_")}
    instruments = await replay(bybit_wire, BYBIT, "instruments", bybit.instruments)
    assert list(instruments) == ["BTCUSDT"]
    btc = instruments["BTCUSDT"]
    assert (btc.tick_size, btc.step_size, btc.min_notional, btc.market_max_qty) == (
        D("0.1"),
        D("0.001"),
        D(5),
        D(500),
    )
    assert btc.liquidation_fee_rate is None  # Bybit publishes none per symbol
    assert [
        (b.notional_floor, b.notional_cap, b.maint_margin_ratio, b.cum) for b in btc.brackets
    ] == [
        (D(0), D(2000000), D("0.005"), D(0)),
        (D(2000000), D(2600000), D("0.0056"), D(1200)),
        (D(2600000), D(3200000), D("0.0063"), D(3020)),
    ]
    assert btc.max_leverage == 100
    book = await replay(bybit_wire, BYBIT, "order_book", lambda: bybit.order_book("BTCUSDT", 50))
    assert (book.best_bid, book.best_ask, book.update_id) == (D("65485.4"), D("65485.5"), 2307041)
    mark = await replay(bybit_wire, BYBIT, "mark", lambda: bybit.mark("BTCUSDT"))
    assert (mark.mark_price, mark.index_price, mark.last_price) == (
        D("65487.31"),
        D("65490.12"),
        D("65485.5"),
    )
    assert (mark.next_funding_time_ms, mark.time_ms) == (1767254400000, 1767225600400)


@pytest.mark.asyncio
async def test_bybit_positions_and_balance(bybit: BybitVenue, bybit_wire: FakeTransport) -> None:
    account = bybit.account()
    (pos,) = await replay(bybit_wire, BYBIT, "positions", account.positions)
    # MARK-006's rule on the record as parsed (a short: the sign comes from side "Sell").
    assert pos.unrealized_pnl == pos.quantity * (pos.mark_price - pos.entry_price) == D("0.1269")
    assert (pos.quantity, pos.entry_price, pos.leverage, pos.margin_mode) == (
        D("-0.01"),
        D(65500),
        10,
        MarginMode.CROSS,
    )
    assert (pos.liquidation_price, pos.maint_margin, pos.initial_margin) == (
        D("1004321.55"),
        D("3.59863"),
        D("65.52043"),
    )
    assert pos.notional == D("-654.8731")
    balance = await replay(bybit_wire, BYBIT, "balance", account.balance)
    assert (balance.wallet_balance, balance.margin_balance, balance.unrealized_pnl) == (
        D(50000),
        D("50000.1269"),
        D("0.1269"),
    )
    assert (balance.initial_margin, balance.available_balance) == (
        D("67.02043"),
        D("49933.10647"),
    )


@pytest.mark.asyncio
async def test_bybit_place_cancel_and_query(bybit: BybitVenue, bybit_wire: FakeTransport) -> None:
    account = bybit.account()
    post_only = OrderRequest(
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=D("0.002"),
        price=D("60000.0"),
        time_in_force=TimeInForce.GTX,
        client_order_id=ClientOrderId("pcrun1-7"),
    )
    order = await replay(bybit_wire, BYBIT, "place_limit", lambda: account.place_order(post_only))
    assert (order.order_id, order.status, order.time_in_force) == (
        "1321003749386327552",
        OrderStatus.NEW,
        TimeInForce.GTX,
    )
    assert all("x-bapi-sign" in s.headers for s in bybit_wire.seen)
    cancelled = await replay(
        bybit_wire,
        BYBIT,
        "cancel_order",
        lambda: account.cancel_order("BTCUSDT", client_order_id=ClientOrderId("pcrun1-7")),
    )
    assert (cancelled.status, cancelled.update_time_ms) == (OrderStatus.CANCELED, 1767225600899)
    ioc = OrderRequest(
        symbol="BTCUSDT",
        side=Side.SELL,
        type=OrderType.LIMIT,
        quantity=D("0.010"),
        price=D(65000),
        time_in_force=TimeInForce.IOC,
        reduce_only=True,
        client_order_id=ClientOrderId("pcrun1-8"),
    )
    partial = await replay(bybit_wire, BYBIT, "place_ioc_partial", lambda: account.place_order(ioc))
    assert (partial.status, partial.executed_qty, partial.cum_quote) == (
        OrderStatus.EXPIRED,
        D("0.004"),
        D("261.9212"),
    )


@pytest.mark.asyncio
async def test_bybit_errors_keep_the_ret_code(bybit: BybitVenue, bybit_wire: FakeTransport) -> None:
    account = bybit.account()
    big = OrderRequest(
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        quantity=D(100),
        client_order_id=ClientOrderId("pcrun1-9"),
    )
    error = await rejected(
        bybit_wire, BYBIT, "reject_insufficient", lambda: account.place_order(big)
    )
    assert isinstance(error, Rejected)
    assert (error.code, error.msg) == (110007, "ab not enough for new order")
    limited = await rejected(bybit_wire, BYBIT, "rate_limited", account.positions)
    assert isinstance(limited, RateLimited)
    assert not isinstance(limited, Banned)
    assert (limited.code, limited.retry_after) == (10006, D("1.5"))
    banned = await rejected(bybit_wire, BYBIT, "ip_banned", lambda: bybit.mark("BTCUSDT"))
    assert isinstance(banned, Banned)
    assert banned.retry_after == D(600)
    assert isinstance(await rejected(bybit_wire, BYBIT, "bad_key", account.balance), AuthError)
    with pytest.raises(Missing):
        await bybit.funding_info("BTCUSDT")


# -------------------------------------------------------------------------------------- OKX
@pytest_asyncio.fixture
async def okx(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OkxVenue]:
    monkeypatch.setenv("PERPCHECK_OKX_DEMO_API_KEY", "okx-test-key")
    monkeypatch.setenv("PERPCHECK_OKX_DEMO_SECRET", "okx-test-secret")
    monkeypatch.setenv("PERPCHECK_OKX_DEMO_PASSWORD", "okx-test-passphrase")
    opened = await open_venue("okx-demo", VenueConfig(options={"symbols": "BTC-USDT-SWAP"}))
    assert isinstance(opened, OkxVenue)
    yield opened
    await opened.close()


@pytest.fixture
def okx_wire(okx: OkxVenue) -> FakeTransport:
    return FakeTransport(okx.exchange)


@pytest.mark.asyncio
async def test_okx_sizes_are_converted_from_contracts(
    okx: OkxVenue, okx_wire: FakeTransport
) -> None:
    assert Capability.READ_BRACKETS not in okx.capabilities  # OKX tiers are by size
    instruments = await replay(okx_wire, OKX, "instruments", okx.instruments)
    assert all(s.headers.get("x-simulated-trading") == "1" for s in okx_wire.seen)
    # The suites' names (BTCUSDT) on the way in and out; OKX's ids (BTC-USDT-SWAP) on the wire.
    assert list(instruments) == ["BTCUSDT"]
    btc = instruments["BTCUSDT"]
    assert btc.symbol == "BTCUSDT"
    assert (btc.step_size, btc.min_qty, btc.market_max_qty, btc.tick_size) == (
        D("0.0001"),
        D("0.0001"),
        D(120),
        D("0.1"),
    )
    # Size tiers (contracts) as notional at the mark 60000: 9000 contracts x 0.01 x 60000.
    assert [(b.notional_floor, b.notional_cap, b.maint_margin_ratio) for b in btc.brackets] == [
        (D(0), D(5400000), D("0.004")),
        (D(5400000), D(10800000), D("0.006")),
    ]
    assert btc.brackets[1].cum == D(10800)
    book = await replay(okx_wire, OKX, "order_book", lambda: okx.order_book("BTCUSDT", 20))
    assert book.symbol == "BTCUSDT"
    assert book.asks[0] == (D("60000.1"), D("8.1235"))
    assert book.bids == ((D(60000), D("1.5")),)
    mark = await replay(okx_wire, OKX, "mark", lambda: okx.mark("BTCUSDT"))
    assert mark.symbol == "BTCUSDT"
    # An OKX id given by a caller is sent as it is.
    again = await replay(okx_wire, OKX, "mark", lambda: okx.mark("BTC-USDT-SWAP"))
    assert again == mark
    assert (mark.mark_price, mark.index_price, mark.last_price) == (
        D("60000.3"),
        D("59998.7"),
        D("60000.1"),
    )
    assert (mark.last_funding_rate, mark.funding_interval_ms) == (D("0.0000792"), 8 * 3_600_000)


@pytest.mark.asyncio
async def test_okx_account_positions_balance_orders(okx: OkxVenue, okx_wire: FakeTransport) -> None:
    await replay(okx_wire, OKX, "instruments", okx.instruments)  # contract sizes
    account = okx.account()
    (pos,) = await replay(okx_wire, OKX, "positions", account.positions)
    assert pos.symbol == "BTCUSDT"
    # MARK-006's rule on the record as parsed (1 contract of 0.01 BTC).
    assert pos.unrealized_pnl == pos.quantity * (pos.mark_price - pos.entry_price) == D("10.003")
    assert (pos.quantity, pos.entry_price, pos.liquidation_price, pos.leverage) == (
        D("0.01"),
        D(59000),
        D("53421.9"),
        10,
    )
    assert (pos.maint_margin, pos.initial_margin, pos.margin_mode) == (
        D("2.40012"),
        D("60.003"),
        MarginMode.CROSS,
    )
    balance = await replay(okx_wire, OKX, "balance", account.balance)
    assert (balance.wallet_balance, balance.margin_balance, balance.available_balance) == (
        D("50000.1"),
        D("50010.103"),
        D("49940.097"),
    )
    post_only = OrderRequest(
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.LIMIT,
        quantity=D("0.002"),
        price=D("59000.5"),
        time_in_force=TimeInForce.GTX,
        client_order_id=ClientOrderId("pcrun17"),
    )
    order = await replay(okx_wire, OKX, "place_limit", lambda: account.place_order(post_only))
    assert order.symbol == "BTCUSDT"
    assert (order.orig_qty, order.status, order.time_in_force, order.price) == (
        D("0.002"),
        OrderStatus.NEW,
        TimeInForce.GTX,
        D("59000.5"),
    )
    cancelled = await replay(
        okx_wire,
        OKX,
        "cancel_order",
        lambda: account.cancel_order("BTCUSDT", order_id=OrderId("2270483145963831296")),
    )
    assert cancelled.status is OrderStatus.CANCELED
    filled = await replay(
        okx_wire,
        OKX,
        "get_filled_market",
        lambda: account.get_order("BTC-USDT-SWAP", client_order_id=ClientOrderId("pcrun18")),
    )
    assert (filled.type, filled.price, filled.executed_qty, filled.cum_quote) == (
        OrderType.MARKET,
        None,
        D("0.015"),
        D("900.003"),
    )
    assert filled.reduce_only


@pytest.mark.asyncio
async def test_okx_errors_keep_the_s_code(okx: OkxVenue, okx_wire: FakeTransport) -> None:
    await replay(okx_wire, OKX, "instruments", okx.instruments)
    account = okx.account()
    big = OrderRequest(
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        quantity=D(100),
        client_order_id=ClientOrderId("pcrun19"),
    )
    error = await rejected(okx_wire, OKX, "reject_insufficient", lambda: account.place_order(big))
    assert isinstance(error, Rejected)
    assert (error.code, error.msg) == (51008, "Order failed. Insufficient USDT margin in account")
    unknown = await rejected(
        okx_wire,
        OKX,
        "reject_unknown_order",
        lambda: account.get_order("BTC-USDT-SWAP", order_id=OrderId("1")),
    )
    assert isinstance(unknown, Rejected)
    assert unknown.code == 51603
    limited = await rejected(okx_wire, OKX, "rate_limited", account.positions)
    assert isinstance(limited, RateLimited)
    assert limited.code == 50011
    assert isinstance(await rejected(okx_wire, OKX, "bad_sign", account.balance), AuthError)


@pytest.mark.parametrize(
    ("symbol", "inst"),
    [
        ("BTCUSDT", "BTC-USDT-SWAP"),
        ("ETHUSDT", "ETH-USDT-SWAP"),
        ("1000PEPEUSDT", "1000PEPE-USDT-SWAP"),
    ],
)
def test_okx_instrument_ids_and_the_suites_names_map_both_ways(symbol: str, inst: str) -> None:
    assert inst_id(symbol) == inst
    assert harness_symbol(inst) == symbol
    assert inst_id(inst) == inst  # an OKX id passes through


@pytest.mark.parametrize("other", ["BTC-USDT", "BTC-USD-SWAP-X", "USDT", "BTCUSDC", ""])
def test_okx_names_outside_usdt_swaps_are_left_alone(other: str) -> None:
    """Not a USDT swap either way: passed on unchanged (OKX refuses an id it does not list)."""
    assert harness_symbol(other) == other
    assert inst_id(other) == other


# ------------------------------------------- fills and fee rates (ORD-009, MARK-007 read them)
def _fee_and_pnl_hold(fills: list[Fill], taker: Decimal, entry: Decimal) -> None:
    """The recorded fills obey what ORD-009 and MARK-007 check, at the venue's precision."""
    unit = D("1E-8")
    for f in fills:
        fee = f.qty * f.price * taker
        assert abs(f.commission - fee) <= published_unit(f.commission, unit), (f, fee)
    opening, closing = fills
    assert opening.realized_pnl == 0
    assert closing.realized_pnl == closing.qty * (closing.price - entry)  # a long closed


@pytest.mark.asyncio
async def test_bybit_fills_and_fee_rates(bybit: BybitVenue, bybit_wire: FakeTransport) -> None:
    account = bybit.account()
    rates = await replay(
        bybit_wire, BYBIT, "fee_rates", lambda: account.commission_rates("BTCUSDT")
    )
    assert (rates.maker, rates.taker) == (D("0.0002"), D("0.00055"))
    fills = await replay(bybit_wire, BYBIT, "fills", lambda: account.fills("BTCUSDT"))
    # The funding row is not a fill; the trades come oldest first, order ids and UUIDs kept.
    assert [(f.side, f.qty, f.price, f.maker) for f in fills] == [
        (Side.BUY, D("0.002"), D("66000.66"), False),
        (Side.SELL, D("0.002"), D("66010.66"), False),
    ]
    assert fills[0].order_id == OrderId("4e6a1b0d-9c2e-4a59-8b7d-0e1f2a3b4c5e")
    assert fills[0].trade_id == int("c3b2a1908f7e4d6c9b5a4f3e2d1c0b9a", 16)
    assert (fills[1].commission, fills[1].realized_pnl) == (D("0.07261173"), D("0.02"))
    _fee_and_pnl_hold(fills, rates.taker, entry=D("66000.66"))


@pytest.mark.asyncio
async def test_okx_fills_and_fee_rates(okx: OkxVenue, okx_wire: FakeTransport) -> None:
    await replay(okx_wire, OKX, "instruments", okx.instruments)  # contract sizes
    account = okx.account()
    rates = await replay(okx_wire, OKX, "fee_rates", lambda: account.commission_rates("BTCUSDT"))
    assert (rates.maker, rates.taker) == (D("0.0002"), D("0.0005"))  # OKX: negative = charged
    fills = await replay(okx_wire, OKX, "fills", lambda: account.fills("BTCUSDT"))
    # 2 contracts of 0.01 BTC; OKX's negative fee is a charge; oldest first; our symbol names.
    assert [(f.symbol, f.side, f.qty, f.price, f.commission) for f in fills] == [
        ("BTCUSDT", Side.BUY, D("0.02"), D("60000.1"), D("0.600001")),
        ("BTCUSDT", Side.SELL, D("0.02"), D("60010.1"), D("0.600101")),
    ]
    assert fills[1].order_id == OrderId("2270483145963831400")
    _fee_and_pnl_hold(fills, rates.taker, entry=D("60000.1"))
